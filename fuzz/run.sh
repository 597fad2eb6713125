#!/bin/sh
# fuzz/run.sh SECONDS: builds the libFuzzer targets (clang, -fsanitize=fuzzer,address,undefined)
# and runs each for SECONDS (default 60) on a scratch copy of its seed corpus (fuzz/corpus/NAME).
# Exits non-zero if any target crashes, leaks or fails to build; a crashing input is kept in
# fuzz/crashes/ (not committed) so it can be replayed: build/fuzz/fuzz_NAME fuzz/crashes/FILE.
set -u
secs=${1:-60}
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
out=${FUZZ_BUILD:-$root/build-fuzz}
CC=${FUZZ_CC:-clang}
mkdir -p "$out" "$here/crashes"
if ! command -v "$CC" >/dev/null 2>&1; then
    echo "fuzz: $CC not found (apt-get install clang libclang-rt-14-dev)" >&2
    exit 1
fi
flags="-std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I$root/include -I$root/src"
lib="$root/src/train/safetensors.c $root/src/train/dataset.c $root/src/train/tokenizer.c $root/src/train/fileio.c $root/src/core/status.c"
lib="$lib $root/src/train/gguf_read.c"
status=0
for name in safetensors shard tokenizer gguf; do
    if ! $CC $flags "$here/fuzz_$name.c" $lib -lcjson -lm -o "$out/fuzz_$name"; then
        echo "fuzz: building fuzz_$name failed" >&2
        status=1
        continue
    fi
    work=$(mktemp -d)
    cp "$here/corpus/$name"/* "$work"/ 2>/dev/null
    dict=""; [ -f "$here/$name.dict" ] && dict="-dict=$here/$name.dict"
    echo "fuzz: fuzz_$name for ${secs}s"
    "$out/fuzz_$name" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
        $dict -artifact_prefix="$here/crashes/$name-" -print_final_stats=1 "$work" >"$work.log" 2>&1
    rc=$?
    grep -E '^#[0-9]+.*DONE|stat::number_of_executed_units|ERROR|SUMMARY' "$work.log" | tail -5
    if [ $rc -ne 0 ]; then
        echo "fuzz: fuzz_$name FAILED (exit $rc); log tail:" >&2
        tail -40 "$work.log" >&2
        status=1
    fi
    rm -rf "$work" "$work.log"
done
[ $status -eq 0 ] && echo "fuzz: all targets clean"
exit $status

#!/bin/sh
# tests/check_layers.sh: checks that the library's layers have no back edges, and that src/core
# builds and passes its tests alone.
#
#   sh tests/check_layers.sh BUILD      (BUILD: the build directory, e.g. build or build-san)
#
# The layers, lowest first; a layer may use itself and the layers before it, never one after:
#   core      src/core      formats, codecs, the reference quantizer, RHT, RNG, status
#   kernels   src/kernels   the dispatched SIMD quantizers and GEMMs
#   analysis  src/analysis  qdq, quantizer statistics and theory, run through the kernels
#   nn        src/nn        recipes, the quantized linear layer, the model, the optimizer
#   train     src/train     trainer, data, checkpoints, file formats
#   cli       tools/, bench/  the `halfs` command
# Three checks, each reporting every offence:
#   symbols   every undefined symbol of a layer's objects (nm -u on BUILD/obj/...) that is
#             defined only in a later layer is named with the file using it and the file
#             defining it;
#   includes  no file under src/<layer> includes a header of a later layer ("nn/...", ...);
#   core      BUILD/core-tests/test_* (core tests linked against libhalfs_core.a, which holds
#             src/core and nothing else) pass.
# Objects are located from the sources, so objects of deleted sources left in BUILD are ignored.
# The output ends in a cmocka-style "[  PASSED  ] 1 test(s)." or "[  FAILED  ] 1 test(s)" line,
# so tests/run.sh counts this check as one test (the Makefile installs it as
# BUILD/tests/test_layers). Exits non-zero on any offence.
set -u
build=${1:?usage: tests/check_layers.sh BUILD}
case $build in /*) ;; *) build=$(pwd)/$build ;; esac
cd "$(dirname "$0")/.." || exit 1

layers="core kernels analysis nn train cli"
sources_of() {
    case $1 in
    cli) ls tools/*.c bench/*.c 2>/dev/null ;;
    *) [ -d "src/$1" ] && find "src/$1" -name '*.c' | LC_ALL=C sort ;;
    esac
}

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
: >"$tmp/defs"; : >"$tmp/uses"; : >"$tmp/errors"
echo "[==========] Running 1 test(s)."
echo "[ RUN      ] layers"

# symbols: "rank layer symbol source" for every definition and every use
rank=0
for L in $layers; do
    for c in $(sources_of "$L"); do
        o=$build/obj/${c%.c}.o
        if [ ! -f "$o" ]; then
            echo "symbols: $o (of $c) is not built" >>"$tmp/errors"
            continue
        fi
        nm --defined-only -g "$o" | awk -v r=$rank -v L="$L" -v c="$c" \
            'NF == 3 { print r, L, $3, c }' >>"$tmp/defs"
        nm -u "$o" | awk -v r=$rank -v L="$L" -v c="$c" 'NF { print r, L, $NF, c }' >>"$tmp/uses"
    done
    rank=$((rank + 1))
done
awk 'NR == FNR {
         if (!($3 in lo) || $1 < lo[$3]) { lo[$3] = $1; layer[$3] = $2; file[$3] = $4 }
         next
     }
     ($3 in lo) && lo[$3] > $1 {
         printf "symbols: %s (%s) uses %s, defined in %s (%s, a later layer)\n",
                $4, $2, $3, file[$3], layer[$3]
     }' "$tmp/defs" "$tmp/uses" | LC_ALL=C sort -u >>"$tmp/errors"

# includes: "DIR/..." with DIR a later layer's directory under src/
later="kernels analysis nn train"
for L in core kernels analysis nn train; do
    later=${later#"$L"}; later=${later# }
    [ -d "src/$L" ] || continue
    find "src/$L" -name '*.[ch]' | LC_ALL=C sort | while read -r f; do
        awk -v later=" $later " -v f="$f" -v L="$L" '
            /^[ \t]*#[ \t]*include[ \t]*"/ {
                p = $0; sub(/^[^"]*"/, "", p); sub(/".*$/, "", p)
                while (p ~ /^\.\.\//) sub(/^\.\.\//, "", p)
                sub(/^src\//, "", p)
                d = p; sub(/\/.*$/, "", d)
                if (p ~ /\// && index(later, " " d " "))
                    printf "includes: %s:%d (%s) includes \"%s\" (%s, a later layer)\n",
                           f, FNR, L, p, d
            }' "$f"
    done >>"$tmp/errors"
done

# core alone: its tests, linked against libhalfs_core.a only
ncore=0
for t in "$build"/core-tests/test_*; do
    [ -x "$t" ] || continue
    ncore=$((ncore + 1))
    if ! "$t" >"$tmp/core.log" 2>&1; then
        echo "core: $t (linked against src/core alone) fails; its output:" >>"$tmp/errors"
        sed 's/^/  | /' "$tmp/core.log" >>"$tmp/errors"
    fi
done
[ "$ncore" -gt 0 ] || echo "core: no test programs in $build/core-tests (make core)" >>"$tmp/errors"

if [ -s "$tmp/errors" ]; then
    cat "$tmp/errors"
    echo "[  FAILED  ] layers"
    echo "[==========] 1 test(s) run."
    echo "[  FAILED  ] 1 test(s), listed below:"
    echo "[  FAILED  ] layers"
    exit 1
fi
echo "layers: no back edges among $layers; $ncore core test program(s) pass linked against src/core alone"
echo "[       OK ] layers"
echo "[==========] 1 test(s) run."
echo "[  PASSED  ] 1 test(s)."

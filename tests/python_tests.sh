#!/bin/sh
# tests/python_tests.sh: the Python package's pytest suite (python/tests) as one program of
# tests/run.sh (the Makefile installs it as BUILD/tests/test_python).
#
#   sh tests/python_tests.sh LIBHALFS.so HALFS_CLI
#
# Runs $HALFS_PYTHON (default /usr/bin/python3) -m pytest on python/tests with HALFS_LIB and
# HALFS_BIN pointing at this build, and prints cmocka-style "[  PASSED  ] N test(s)." and
# "[  FAILED  ] N test(s)" lines with pytest's counts, so run.sh sums them. Without numpy or
# pytest in that interpreter it prints why and counts nothing (skipped, not failed); tests that
# need torch, safetensors, tokenizers or transformers skip themselves when those are absent.
# A sanitizer build's library (BUILD is build-san*) is loaded with libasan and libubsan
# preloaded, leak checks off (the interpreter itself keeps memory until exit).
set -u
so=${1:?usage: tests/python_tests.sh LIBHALFS.so HALFS_CLI}
cli=${2:?usage: tests/python_tests.sh LIBHALFS.so HALFS_CLI}
py=${HALFS_PYTHON:-/usr/bin/python3}
root=$(cd "$(dirname "$0")/.." && pwd)
echo "[==========] python: pytest on python/tests with $py"
if ! "$py" -c "import numpy, pytest" >/dev/null 2>&1; then
    echo "python: skipped: $py cannot import numpy and pytest (apt-get install python3-numpy python3-pytest)"
    exit 0
fi
case $so in
*build-san*)
    asan=$(gcc -print-file-name=libasan.so)
    ubsan=$(gcc -print-file-name=libubsan.so)
    export LD_PRELOAD="$asan $ubsan"
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
    ;;
esac
log=$(mktemp) || exit 1
trap 'rm -f "$log"' EXIT
HALFS_LIB=$so HALFS_BIN=$cli PYTHONPATH="$root/python${PYTHONPATH:+:$PYTHONPATH}" \
    PYTHONDONTWRITEBYTECODE=1 "$py" -m pytest -q -p no:cacheprovider -rs "$root/python/tests" \
    >"$log" 2>&1
rc=$?
cat "$log"
summary=" $(tail -n 1 "$log")"
count() { echo "$summary" | sed -n "s/.* \([0-9][0-9]*\) $1.*/\1/p" | head -n 1; }
passed=$(count passed); failed=$(count failed); errors=$(count error)
passed=${passed:-0}; failed=$((${failed:-0} + ${errors:-0}))
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo "[  PASSED  ] $passed test(s)."
if [ "$failed" -gt 0 ]; then
    echo "[  FAILED  ] $failed test(s), listed above."
    exit 1
fi
exit 0

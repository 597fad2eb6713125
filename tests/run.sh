#!/bin/sh
# tests/run.sh: runs every test program in a directory and prints one summary line.
#
# Each test program is a cmocka group; cmocka prints "[  PASSED  ] N test(s)." and
# "[  FAILED  ] N test(s), listed below:" lines, which are summed here. A program that crashes
# or exits non-zero without a FAILED line counts as one failure. Exits non-zero on any failure.
dir=${1:?usage: tests/run.sh BUILD/tests}
passed=0; failed=0; bad=""
for t in "$dir"/test_*; do
    [ -x "$t" ] || continue
    log=$(mktemp)
    "$t" >"$log" 2>&1; rc=$?
    cat "$log"
    p=$(sed -n 's/^\[  PASSED  \] \([0-9][0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
    f=$(sed -n 's/^\[  FAILED  \] \([0-9][0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    passed=$((passed + p)); failed=$((failed + f))
    [ "$rc" -ne 0 ] && bad="$bad $(basename "$t")"
    rm -f "$log"
done
[ -n "$bad" ] && echo "failing programs:$bad"
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

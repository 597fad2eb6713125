#!/bin/sh
# tests/test_mpi.sh: data-parallel training under mpirun (docs/DISTRIBUTED.md), as a test program
# of tests/run.sh (cmocka-style "[  PASSED  ]" / "[  FAILED  ]" lines).
#
# Runs `mpirun --oversubscribe` jobs of the CLI ($HALFS_BIN) on the tiny nano model: 2 ranks equal
# one process with --accum 2 bit for bit (metrics.csv without its timing columns, the model and
# optimizer safetensors) in fp32, bf16 and mxfp4-halfs; 4 ranks are reproducible and equal
# --accum 4; 2 ranks × accum 2 stay within 1e-5 of --accum 4; --zero 1 equals --zero 0 over TCP
# (--mca btl self,tcp) with about half the AdamW state on rank 0; resuming across rank counts continues the same run bit for bit; ranks
# with different options, a global batch that does not divide, and a rank killed with -9 end
# the job with a message and a non-zero status, the last checkpoint intact.
# Skipped (0 tests) where mpirun is missing or the CLI was built without MPI.
set -u
BIN=${HALFS_BIN:?HALFS_BIN must name the halfs CLI}
PY=${HALFS_PYTHON:-/usr/bin/python3}
if ! command -v mpirun >/dev/null 2>&1 || ! ldd "$BIN" 2>/dev/null | grep -q libmpi; then
    echo "test_mpi: skipped (no mpirun, or $BIN built without MPI)"
    echo "[  PASSED  ] 0 test(s)."
    exit 0
fi
# as root, Open MPI refuses to start without these; ASan's leak check trips on MPI's own memory
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export ASAN_OPTIONS="${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}detect_leaks=0"
export OMPI_MCA_rmaps_base_oversubscribe=1
TMP=$(mktemp -d "${HALFS_TMP:-/tmp}/halfs-mpi.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
MPI="timeout 120 mpirun --oversubscribe --bind-to none"
ARGS="--model nano --batch 2 --seq 32 --eval-every 2 --eval-batches 3 --threads 1 --quiet"
passed=0
failed=0
failures=""

ok() { echo "[       OK ] $1"; passed=$((passed + 1)); }
bad() { echo "[  FAILED  ] $1: $2"; failed=$((failed + 1)); failures="$failures $1"; }
# run NAME CMD...: the command's status, its stderr in $TMP/NAME.err
run() {
    n=$1; shift
    "$@" >"$TMP/$n.out" 2>"$TMP/$n.err"
}
# same_run DIR1 DIR2 STEP: metrics.csv (less its timing columns) and the checkpoint's
# safetensors byte-identical
same_run() {
    cut -d, -f1-6 "$1/metrics.csv" >"$TMP/m1" && cut -d, -f1-6 "$2/metrics.csv" >"$TMP/m2" &&
        [ "$(wc -l <"$TMP/m1")" -gt 1 ] && cmp -s "$TMP/m1" "$TMP/m2" &&
        cmp -s "$1/ckpt-$3/model.safetensors" "$2/ckpt-$3/model.safetensors" &&
        cmp -s "$1/ckpt-$3/optimizer.safetensors" "$2/ckpt-$3/optimizer.safetensors"
}

# 2 ranks == 1 process with --accum 2, per recipe
for r in fp32 bf16 mxfp4-halfs; do
    t=np2_equals_accum2_$r
    if run "$t-a" $MPI -np 2 "$BIN" train $ARGS --recipe "$r" --steps 3 --out "$TMP/np2-$r" &&
        run "$t-b" "$BIN" train $ARGS --recipe "$r" --steps 3 --accum 2 --out "$TMP/acc2-$r" &&
        same_run "$TMP/np2-$r" "$TMP/acc2-$r" 000003; then ok "$t"
    else bad "$t" "$(tail -3 "$TMP/$t-a.err" "$TMP/$t-b.err" 2>/dev/null)"; fi
done

# 4 ranks: twice the same, and the bits of --accum 4
t=np4_reproducible_equals_accum4
if run "$t-a" $MPI -np 4 "$BIN" train $ARGS --steps 3 --out "$TMP/np4a" &&
    run "$t-b" $MPI -np 4 "$BIN" train $ARGS --steps 3 --out "$TMP/np4b" &&
    run "$t-c" "$BIN" train $ARGS --steps 3 --accum 4 --out "$TMP/acc4" &&
    same_run "$TMP/np4a" "$TMP/np4b" 000003 && same_run "$TMP/np4a" "$TMP/acc4" 000003; then ok "$t"
else bad "$t" "$(tail -3 "$TMP/$t-a.err" 2>/dev/null)"; fi

# 2 ranks × accum 2 sums (g0 + g1) + (g2 + g3), --accum 4 ((g0 + g1) + g2) + g3: fp32 rounding
t=np2_accum2_near_accum4
if run "$t" $MPI -np 2 "$BIN" train $ARGS --steps 3 --accum 2 --out "$TMP/np2a2" &&
    paste -d, "$TMP/np2a2/metrics.csv" "$TMP/acc4/metrics.csv" | awk -F, '
        NR > 1 { for (i = 3; i <= 6; i++) { if (i == 4 && $4 == "") continue;
                     d = $i - $(i + 8); if (d < 0) d = -d; if (d > 1e-5) bad = 1 } ; n++ }
        END { exit bad || n != 3 }'; then
    if "$PY" -c 'import numpy' 2>/dev/null; then
        if "$PY" - "$TMP/np2a2/ckpt-000003/model.safetensors" "$TMP/acc4/ckpt-000003/model.safetensors" <<'EOF'
import json, struct, sys
import numpy as np
def load(p):
    b = open(p, 'rb').read()
    n = struct.unpack('<Q', b[:8])[0]
    h = json.loads(b[8:8 + n])
    d = b[8 + n:]
    return {k: np.frombuffer(d[v['data_offsets'][0]:v['data_offsets'][1]], dtype=np.float32)
            for k, v in h.items() if k != '__metadata__'}
a, b = load(sys.argv[1]), load(sys.argv[2])
diff = max(float(np.max(np.abs(a[k] - b[k]))) for k in a)
sys.exit(0 if 0 < diff <= 1e-5 or diff == 0 else 1)
EOF
        then ok "$t"; else bad "$t" "weights differ by more than 1e-5"; fi
    else ok "$t"; fi
else bad "$t" "metrics differ by more than 1e-5 $(tail -3 "$TMP/$t.err")"; fi

# ZeRO-1 over TCP == ZeRO-0, and rank 0 holds about half of the AdamW state (the run's last line:
# "... AdamW state A MB on rank 0 (B MB in all)")
t=zero1_tcp_equals_zero0
if run "$t" $MPI --mca btl self,tcp -np 2 "$BIN" train ${ARGS% --quiet} --steps 3 --zero 1 \
        --out "$TMP/z1" &&
    same_run "$TMP/z1" "$TMP/np2-mxfp4-halfs" 000003 &&
    sed -n 's/.*AdamW state \([0-9.]*\) MB on rank 0 (\([0-9.]*\) MB in all).*/\1 \2/p' \
        "$TMP/$t.err" | awk '{ ok = $2 > 0 && $1 < 0.6 * $2 } END { exit !(NR == 1 && ok) }'
then ok "$t"
else bad "$t" "$(tail -3 "$TMP/$t.err")"; fi

# resume across rank counts, from step 2 of 4: 2 ranks, then 1 process; 1 process (accum 2),
# then 2 ranks with ZeRO-1: both the bits of 2 ranks running the 4 steps at once
t=resume_across_ranks
# cut_at RUN COPY: COPY is RUN as it was right after its step-2 checkpoint
cut_at() {
    mkdir -p "$2" && cp -r "$1/ckpt-000002" "$2/" && echo ckpt-000002 >"$2/latest" &&
        head -3 "$1/metrics.csv" >"$2/metrics.csv"
}
R="$ARGS --save-every 2 --steps 4"
if run "$t-full" $MPI -np 2 "$BIN" train $R --out "$TMP/full" &&
    run "$t-one" "$BIN" train $R --accum 2 --out "$TMP/one" &&
    cut_at "$TMP/full" "$TMP/r21" && cut_at "$TMP/one" "$TMP/r12" &&
    run "$t-a" "$BIN" train --resume "$TMP/r21" --quiet --threads 1 &&
    run "$t-b" $MPI -np 2 "$BIN" train --resume "$TMP/r12" --zero 1 --quiet --threads 1 &&
    same_run "$TMP/full" "$TMP/r21" 000004 && same_run "$TMP/full" "$TMP/r12" 000004; then ok "$t"
else bad "$t" "$(tail -2 "$TMP/$t-a.err" "$TMP/$t-b.err" 2>/dev/null)"; fi

# ranks started with different options: refused before any work
t=ranks_disagree
run "$t" $MPI -np 1 "$BIN" train $ARGS --steps 2 --seed 1 --out "$TMP/dis" : \
    -np 1 "$BIN" train $ARGS --steps 2 --seed 2 --out "$TMP/dis"
rc=$?
if [ "$rc" -ne 0 ] && grep -q "disagree on the training configuration" "$TMP/$t.err" &&
    [ ! -e "$TMP/dis/metrics.csv" ]; then ok "$t"
else bad "$t" "status $rc: $(tail -3 "$TMP/$t.err")"; fi

# a global batch (3 micro-batches) that 2 ranks cannot split
t=global_batch_not_dividing
run "$t-a" "$BIN" train $ARGS --steps 1 --accum 3 --out "$TMP/g3"
run "$t" $MPI -np 2 "$BIN" train --resume "$TMP/g3" --steps 2 --quiet
rc=$?
if [ "$rc" -ne 0 ] && grep -q "does not divide over 2 ranks" "$TMP/$t.err"; then ok "$t"
else bad "$t" "status $rc: $(tail -3 "$TMP/$t.err")"; fi

# kill -9 of one rank: the job ends (non-zero, a message), the last checkpoint resumes
t=rank_killed
$MPI -np 2 "$BIN" train $ARGS --steps 100000 --save-every 2 --eval-every 0 \
    --out "$TMP/kill" >"$TMP/$t.out" 2>"$TMP/$t.err" &
job=$!
i=0
while [ ! -e "$TMP/kill/ckpt-000004" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
victim=""
mpid=$(ps -o pid= --ppid "$job" | tr -d ' ' | head -1) # timeout's child: mpirun, whose children are the ranks
for p in $(ps -o pid= --ppid "${mpid:-0}"); do
    if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=1"; then
        victim=$p
    fi
done
[ -n "$victim" ] && kill -9 "$victim"
wait "$job"
rc=$?
step=$(sed 's/.*ckpt-0*//' "$TMP/kill/latest" 2>/dev/null)
if [ -n "$victim" ] && [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ -s "$TMP/$t.err" ] &&
    [ -n "$step" ] && run "$t-resume" "$BIN" train --resume "$TMP/kill" --steps $((step + 1)) \
        --quiet --threads 1 && [ -e "$TMP/kill/ckpt-$(printf %06d $((step + 1)))" ]; then ok "$t"
else bad "$t" "victim '${victim}', status $rc: $(tail -3 "$TMP/$t.err")"; fi

echo "[==========] $((passed + failed)) test(s) run."
echo "[  PASSED  ] $passed test(s)."
if [ "$failed" -gt 0 ]; then
    echo "[  FAILED  ] $failed test(s), listed below:"
    for f in $failures; do echo "[  FAILED  ] $f"; done
    exit 1
fi
exit 0

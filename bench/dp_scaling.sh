#!/bin/sh
# bench/dp_scaling.sh: data-parallel efficiency of `halfs train` under mpirun (docs/DISTRIBUTED.md).
#
# Trains the same global batch two ways in one script run, alternated ROUNDS times:
#   1 process  × THREADS threads:  --batch B --accum RANKS
#   RANKS ranks × THREADS/RANKS threads each: mpirun -np RANKS --batch B (accum 1)
# (the same micro-batches, the same bits), and prints per way the median tokens/s over the
# steps after the first two, the ratio, and for the ranks the share of the step time spent in
# the gradient exchange and the bytes each rank sends per step against the gradient's size.
#
#   sh bench/dp_scaling.sh                       # small, mxfp4-halfs, B 8, T 256, 12 steps
#   MODEL=tiny RECIPE=bf16 STEPS=20 sh bench/dp_scaling.sh
#   MPIRUN_ARGS="--mca btl self,tcp" sh bench/dp_scaling.sh   # over TCP, as between machines
#
# Environment: HALFS (the CLI, default build/halfs), MODEL, RECIPE, B, T, STEPS, RANKS (2),
# THREADS (total, 2), ROUNDS (1), MPIRUN_ARGS. As root it sets Open MPI's OMPI_ALLOW_RUN_AS_ROOT
# pair. Quiet machine wanted: figures go to docs/RESULTS.md with the CPU model.
set -eu
HALFS=${HALFS:-build/halfs}
MODEL=${MODEL:-small}
RECIPE=${RECIPE:-mxfp4-halfs}
B=${B:-8}
T=${T:-256}
STEPS=${STEPS:-12}
RANKS=${RANKS:-2}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-1}
MPIRUN_ARGS=${MPIRUN_ARGS:-}
[ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
per=$((THREADS / RANKS))
[ "$per" -ge 1 ] || per=1
TMP=$(mktemp -d "${TMPDIR:-/tmp}/halfs-dp.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
COMMON="--model $MODEL --recipe $RECIPE --batch $B --seq $T --steps $STEPS --eval-every 0
        --eval-batches 1 --save-every 0 --warmup 2"

# median tokens/s of metrics.csv's rows after the first two
tps() { awk -F, 'NR > 3 { print $8 }' "$1" | sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print 0; exit } print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

echo "dp_scaling: $MODEL $RECIPE, global batch $RANKS x $B x $T tokens, $STEPS steps; $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc) cores"
for r in $(seq "$ROUNDS"); do
    "$HALFS" train $COMMON --accum "$RANKS" --threads "$THREADS" --out "$TMP/one-$r" 2>"$TMP/one-$r.log"
    mpirun --oversubscribe --bind-to none $MPIRUN_ARGS -np "$RANKS" "$HALFS" train $COMMON \
        --threads "$per" --out "$TMP/dp-$r" 2>"$TMP/dp-$r.log"
    one=$(tps "$TMP/one-$r/metrics.csv")
    dp=$(tps "$TMP/dp-$r/metrics.csv")
    cut -d, -f1-6 "$TMP/dp-$r/metrics.csv" >"$TMP/dp-$r/metrics.cut"
    cut -d, -f1-6 "$TMP/one-$r/metrics.csv" | cmp -s - "$TMP/dp-$r/metrics.cut" && same=yes || same=NO
    echo "round $r: 1 process x $THREADS threads: $one tok/s; $RANKS ranks x $per thread(s): $dp tok/s;" \
         "ratio $(awk -v a="$dp" -v b="$one" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }');" \
         "same metrics: $same"
    grep '^ranks:' "$TMP/dp-$r.log" || true
done

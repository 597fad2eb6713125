#!/bin/sh
# demo.sh: the main job. Prepares the embedded corpus (tokenizer + shards, cached), trains a
# small Llama-style model for a few minutes with every linear layer in MXFP4 with Half-S
# scaling, evaluates it on held-out text and prints a sample. Needs `make` to have run.
#   sh scripts/demo.sh [RUN_DIR]      (default runs/demo; an existing run is resumed/extended)
# Environment: DEMO_MODEL (default tiny), DEMO_STEPS (default 600), DEMO_RECIPE (mxfp4-halfs).
set -eu
cd "$(dirname "$0")/.."
bin=build/halfs
[ -x "$bin" ] || { echo "demo: $bin not found; run make first" >&2; exit 1; }
run=${1:-runs/demo}
model=${DEMO_MODEL:-tiny}
steps=${DEMO_STEPS:-600}
recipe=${DEMO_RECIPE:-mxfp4-halfs}

echo "== preparing the embedded corpus (cached after the first run)"
$bin corpus

echo "== training $model in $recipe for $steps steps -> $run"
if [ -f "$run/latest" ]; then
    $bin train --resume "$run" --steps "$steps"
else
    $bin train --model "$model" --recipe "$recipe" --steps "$steps" --batch 16 --seq 128 \
        --warmup 60 --eval-every 100 --save-every 200 --out "$run"
fi

echo "== evaluating on the held-out chapters"
$bin eval "$run"

echo "== sampling"
$bin sample "$run" --prompt "And God said" --tokens 120 --seed 7
echo
echo "== metrics: $run/metrics.csv; checkpoints: $run/ckpt-*; docs/RESULTS.md for the evidence"

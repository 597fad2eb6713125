#!/bin/sh
# reproduce.sh: the evidence pipeline of issue 6. Reproduces the Half-S claims at small scale on
# this machine, from one command, and regenerates the evidence part of docs/RESULTS.md.
#
#   bench/reproduce.sh [--quick] [--jobs N] [--stages LIST] [--bin PATH]
#                      [--results DIR] [--doc FILE] [--fig DIR]
#
# Stages (in this order; --stages picks some, comma-separated):
#   theory    relative MSE vs clip/amax (halfs theory --curve) for Gaussian, Laplace, t(3) at
#             groups 16, 32, 1024, 4096, with the points of each scale rule (halfs theory --json)
#   pretrain  the same model and data in every recipe (+ --act-only variants), several seeds
#   ablation  (only when asked for) MXFP4 with Half-S plus each ingredient of the NVFP4 recipe,
#             one at a time and together, against mxfp4-max, mxfp4-halfs, nvfp4 and bf16, in
#             the pretraining setup with three seeds (the baselines' runs are shared with it)
#   scale     (only when asked for, after ablation) the ablation's best MXFP4 configuration,
#             mxfp4-halfs, mxfp4-max, nvfp4 and bf16 at `small`, one seed, ~2 hours
#   tensors   real tensors of the bf16 checkpoint on a held-out batch (halfs capture):
#             kurtosis and every rule's error in MXFP4-32, MXFP4-16, NVFP4, fp4row (halfs stats)
#   finetune  from the bf16 checkpoint, on a held-out text, in five recipes
#   speed     halfs bench train / gemm / quant
#   report    figures (gnuplot) and the text between the markers of docs/RESULTS.md
# Raw results go to results/ (small CSV/JSON, committed); run directories with checkpoints go
# to results/runs/ (git-ignored). A finished training run whose command is unchanged is not
# run again, so an interrupted pipeline resumes where it stopped (delete results/runs/ to
# start afresh). Same seeds => same losses: the trainer is deterministic whatever the thread
# count, so --jobs changes the wall time, not the numbers (tokens/s excepted).
#
# POSIX sh + awk + gnuplot only (no Python, no jq). Run from anywhere; paths are relative to
# the repository root.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
HERE=$ROOT/bench/reproduce
ORIG_CMD="bench/reproduce.sh${*:+ $*}"

usage() {
    cat <<'EOF'
usage: bench/reproduce.sh [--quick] [--jobs N] [--stages LIST] [--bin PATH]
                          [--results DIR] [--doc FILE] [--fig DIR]

Runs the evidence pipeline of issue 6 and regenerates docs/RESULTS.md's evidence section.
Relative paths are taken from the repository root.
  --quick        small model, few steps, one seed (about 10 minutes on 2 cores; CI runs it)
  --jobs N       training runs in parallel, each with nproc/N threads (default: 1)
  --stages LIST  comma-separated subset of: theory,pretrain,ablation,scale,tensors,
                 finetune,speed,report (default: all but ablation and scale, in that
                 order; the ablation adds 28 runs of the pretraining stage's size, the
                 scale check 5 runs of `small`: --stages ablation,scale,report)
  --bin PATH     the halfs binary (default: build/halfs, built with make if missing)
  --results DIR  raw results (default: results)
  --doc FILE     the document to update between its reproduce markers (default:
                 docs/RESULTS.md; created if missing)
  --fig DIR      figures (default: docs/fig)
EOF
}

die() {
    printf 'reproduce: error: %s\n' "$*" >&2
    exit 1
}
say() { printf 'reproduce: %s\n' "$*" >&2; }

QUICK=0
JOBS=1
STAGES=theory,pretrain,tensors,finetune,speed,report
BIN=
RESULTS=results
DOC=docs/RESULTS.md
FIG=docs/fig
while [ $# -gt 0 ]; do
    case $1 in
        --quick) QUICK=1 ;;
        --jobs) [ $# -ge 2 ] || die "--jobs needs a number"; JOBS=$2; shift ;;
        --stages) [ $# -ge 2 ] || die "--stages needs a list"; STAGES=$2; shift ;;
        --bin) [ $# -ge 2 ] || die "--bin needs a path"; BIN=$2; shift ;;
        --results) [ $# -ge 2 ] || die "--results needs a directory"; RESULTS=$2; shift ;;
        --doc) [ $# -ge 2 ] || die "--doc needs a file"; DOC=$2; shift ;;
        --fig) [ $# -ge 2 ] || die "--fig needs a directory"; FIG=$2; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option '$1'" ;;
    esac
    shift
done
case $JOBS in ''|*[!0-9]*) die "--jobs wants a positive integer, not '$JOBS'" ;; esac
[ "$JOBS" -ge 1 ] || die "--jobs wants a positive integer, not '$JOBS'"
for s in $(printf '%s' "$STAGES" | tr ',' ' '); do
    case $s in theory|pretrain|ablation|scale|tensors|finetune|speed|report) ;;
        *) die "unknown stage '$s' (theory, pretrain, ablation, scale, tensors, finetune, speed, report)" ;; esac
done
want() { case ",$STAGES," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

cd "$ROOT"
command -v gnuplot >/dev/null 2>&1 || ! want report || die "gnuplot is not installed (apt-get install gnuplot-nox)"
if [ -z "$BIN" ]; then
    BIN=build/halfs
    say "building $BIN"
    make -j"$(nproc)" build/halfs >/dev/null || die "make failed"
fi
[ -x "$BIN" ] || die "no halfs binary at $BIN (build it with make, or pass --bin)"
case $BIN in /*) ;; *) BIN=$ROOT/$BIN ;; esac
JSON=$HERE/json_flat.awk
abspath() { case $1 in /*) echo "$1" ;; *) echo "$ROOT/$1" ;; esac; }
RESULTS_ABS=$(abspath "$RESULTS")
mkdir -p "$RESULTS" "$FIG" "$RESULTS/runs"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/reproduce.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
trap 'rm -rf "$TMP"; exit 130' INT TERM

# The binary's checksum is part of a run's key: a rebuilt binary reruns everything.
BIN_SUM=$(cksum < "$BIN" | awk '{ print $1 }')
NPROC=$(nproc)
THREADS=$((NPROC / JOBS))
[ "$THREADS" -ge 1 ] || THREADS=1

# ------------------------------------------------------------------------------ the plan
# The full run must fit in about two hours on 2 cores: 20 pretraining runs (10 recipes x 2
# seeds) + 10 fine-tuning runs (5 x 2) + the other stages (~5 min). `halfs bench train` measured
# `tiny` (d=128, 4 layers, vocab 4096) at 6-13k tokens/s on 2 threads (the low end with other
# work on the machine) and `small` (~5M non-embedding parameters) at 2-4k: 20 x 1.6M tokens of
# `small` alone would take 2.5-5 h. So `tiny`, 600 steps x 16 x 256 = 2.5M tokens (about 2.5
# epochs of the KJV train split's 1M tokens) per pretraining run, 150 steps per fine-tuning
# run: 49M + 6M tokens, 1.2 h at 13k tokens/s, 2.5 h at 6k. docs/RESULTS.md ("Budget") redoes
# this arithmetic from the speeds measured in each run; --quick measures `tiny` for that too.
FULL_MODEL=tiny FULL_STEPS=600 FULL_BATCH=16 FULL_SEQ=256 FULL_SEEDS="1 2"
FULL_FT_STEPS=150 FULL_FT_SEEDS="1 2" FULL_EVAL_EVERY=50 FULL_EVAL_BATCHES=12 FULL_FT_EVAL_EVERY=25
if [ "$QUICK" = 1 ]; then
    MODE=quick
    THEORY_SAMPLES=131072
    MODEL=nano
    SEEDS="1"
    ABL_SEEDS="1"
    SCALE_MODEL=nano SCALE_STEPS=60 SCALE_EVAL_EVERY=20
    STEPS=150 BATCH=8 SEQ=128 LR=0.003 WARMUP=20 EVAL_EVERY=25 EVAL_BATCHES=4
    FT_SEEDS="1"
    FT_STEPS=60 FT_LR=0.001 FT_WARMUP=10 FT_EVAL_EVERY=20 FT_EVAL_BATCHES=4
    CAP_BATCH=4 CAP_SEQ=128
    BENCH_STEPS=2 SPEED_ROUNDS=2
    GEMM_ARGS="--m 1024 --n 512 --k 512 --reps 3"
    QUANT_ARGS="--rows 1024 --cols 1024 --reps 3"
else
    MODE=full
    THEORY_SAMPLES=1048576
    MODEL=$FULL_MODEL
    SEEDS=$FULL_SEEDS
    ABL_SEEDS="1 2 3"
    SCALE_MODEL=small SCALE_STEPS=1200 SCALE_EVAL_EVERY=100
    STEPS=$FULL_STEPS BATCH=$FULL_BATCH SEQ=$FULL_SEQ LR=0.003 WARMUP=60
    EVAL_EVERY=$FULL_EVAL_EVERY EVAL_BATCHES=$FULL_EVAL_BATCHES
    FT_SEEDS=$FULL_FT_SEEDS
    FT_STEPS=$FULL_FT_STEPS FT_LR=0.001 FT_WARMUP=10 FT_EVAL_EVERY=$FULL_FT_EVAL_EVERY
    # The fine-tuning validation split has ~9k tokens: 2 batches of 16 x 256 cover it once.
    FT_EVAL_BATCHES=2
    CAP_BATCH=8 CAP_SEQ=256
    BENCH_STEPS=5 SPEED_ROUNDS=3
    GEMM_ARGS=""
    QUANT_ARGS=""
fi
BENCH_TRAIN_ARGS="--model $FULL_MODEL --steps $BENCH_STEPS --batch $FULL_BATCH --seq $FULL_SEQ"
PRETRAIN_RECIPES="bf16 mxfp4-ocp mxfp4-max mxfp4-halfs nvfp4 nvfp4-4over6 fp4row-max fp4row-halfs mxfp4-max+act-only mxfp4-halfs+act-only"
FINETUNE_RECIPES="bf16 mxfp4-max mxfp4-halfs fp4row-max fp4row-halfs"

# ------------------------------------------------------------------------------ helpers
# Seconds since the epoch, for the timing table.
now() { date +%s; }
# Only a stage that did work records its time (a stage whose runs were all cached keeps the
# time of the run that did them).
RAN=1
timing() { # stage seconds
    [ "$RAN" = 1 ] || return 0
    [ -f "$RESULTS/timing.csv" ] || echo "stage,seconds,jobs,threads_per_job" > "$RESULTS/timing.csv"
    awk -F, -v s="$1" 'NR == 1 || $1 != s' "$RESULTS/timing.csv" > "$TMP/timing" &&
        echo "$1,$2,$JOBS,$THREADS" >> "$TMP/timing" && cp "$TMP/timing" "$RESULTS/timing.csv"
}
# Atomic write: stdin -> file.
put() { cat > "$1.tmp.$$" && mv "$1.tmp.$$" "$1"; }
# Value of a flattened-JSON key: jget FILE KEY
jget() { awk -F'\t' -v k="$2" '$1 == k { print $2; found = 1; exit } END { if (!found) exit 1 }' "$1"; }

corpus() {
    [ -f "$TMP/corpus" ] || "$BIN" corpus --json | awk -f "$JSON" > "$TMP/corpus" ||
        die "halfs corpus failed"
    jget "$TMP/corpus" "$1" || die "halfs corpus --json has no '$1'"
}

# Training jobs: job_add DIR STEPS ARGS... queues one `halfs train --steps STEPS ARGS` run
# into DIR; jobs_run runs the queue, $JOBS at a time. A run whose directory holds a finished
# run (all STEPS steps) of the same command and binary (threads aside: they do not change the
# numbers) is skipped.
JOBS_FILE=$TMP/jobs
: > "$JOBS_FILE"
# The last step in DIR/metrics.csv (0 if none).
last_step() { [ -f "$1/metrics.csv" ] && awk -F, 'NR > 1 { s = $1 } END { print s + 0 }' "$1/metrics.csv" || echo 0; }
job_add() {
    dir=$1
    steps=$2
    shift 2
    set -- --steps "$steps" "$@"
    key="$BIN_SUM $*"
    if [ -f "$dir.rc" ] && [ -f "$dir.cmd" ] && [ "$(cat "$dir.cmd")" = "$key" ] &&
        [ "$(cat "$dir.rc")" = 0 ] && [ "$(last_step "$dir")" = "$steps" ]; then
        say "skip $(basename "$dir") (already done with this command)"
        return 0
    fi
    n=$(wc -l < "$JOBS_FILE")
    js=$TMP/job$n.sh
    printf '%s\n' "$key" > "$js.key"
    {
        echo "rm -rf '$dir' '$dir.rc' '$dir.cmd'"
        printf "t0=\$(date +%%s)\n"
        printf "'%s' train" "$BIN"
        for a in "$@"; do printf " '%s'" "$a"; done
        printf " --threads %s --quiet --out '%s' > '%s.log' 2>&1 < /dev/null\n" "$THREADS" "$dir" "$dir"
        echo "rc=\$?"
        echo "cp '$js.key' '$dir.cmd'"
        echo "echo \$rc > '$dir.rc'"
        printf "echo \"reproduce: %s: exit \$rc, \$((\$(date +%%s) - t0)) s\" >&2\n" "$(basename "$dir")"
    } > "$js"
    echo "$js" >> "$JOBS_FILE"
}
jobs_run() {
    n=0
    [ -s "$JOBS_FILE" ] && RAN=1
    while IFS= read -r js; do
        sh "$js" < /dev/null &
        n=$((n + 1))
        if [ "$n" -ge "$JOBS" ]; then
            wait
            n=0
        fi
    done < "$JOBS_FILE"
    wait
    : > "$JOBS_FILE"
}
# The trainer's flags for a recipe label ("R" or "R+act-only").
recipe_flags() {
    case $1 in
        *+act-only) echo "--recipe ${1%+act-only} --act-only" ;;
        *) echo "--recipe $1" ;;
    esac
}
# A run of the pretraining setup: pre_job DIR MODEL STEPS SEED EVAL_EVERY RECIPE-FLAGS... (the
# same command, so the same run, from the pretraining, ablation and scale stages).
pre_job() {
    dir=$1 model=$2 steps=$3 seed=$4 every=$5
    shift 5
    job_add "$dir" "$steps" --model "$model" --vocab "$(corpus vocab)" "$@" --data "$(corpus train)" \
        --val "$(corpus val)" --batch "$BATCH" --seq "$SEQ" --lr "$LR" --warmup "$WARMUP" \
        --seed "$seed" --eval-every "$every" --eval-batches "$EVAL_BATCHES" --save-every "$steps"
}
# Check a finished run: exit 0 ok, 4 (diverged: a NaN/Inf loss or the divergence guard; a
# result, recorded as nan), else abort.
run_ok() {
    [ -f "$1.rc" ] || die "$(basename "$1") did not run (see $1.log)"
    rc=$(cat "$1.rc")
    if [ "$rc" = 4 ]; then
        say "$(basename "$1"): stopped as diverged (recorded as nan): $(grep -m1 'error:' "$1.log")"
        return 0
    fi
    [ "$rc" = 0 ] || { tail -n 5 "$1.log" >&2; die "$(basename "$1") failed (exit $rc, log $1.log)"; }
    # A run that stopped early (interrupted: exit 3) is not a result.
    [ "$(last_step "$1")" = "$2" ] || die "$(basename "$1") stopped at step $(last_step "$1") of $2 (interrupted?); rerun"
}
# Summary of one run's metrics.csv: recipe,seed,tokens,final_train_loss,final_val_loss,
# tokens_per_s. final_train_loss is the mean training loss over the last 5% of steps (at least
# one): one batch alone is too noisy to compare recipes. final_val_loss is the last evaluation
# (the trainer evaluates at the end). tokens_per_s = tokens / time in steps. A run stopped by a
# non-finite loss gets nan losses.
summarize() { # LABEL SEED DIR
    awk -F, -v recipe="$1" -v seed="$2" -v rc="$(cat "$3.rc")" '
        NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
        {
            n++
            tl[n] = $(col["train_loss"])
            if ($(col["val_loss"]) != "") vl = $(col["val_loss"])
            tok = $(col["tokens"])
            ms += $(col["ms_per_step"])
        }
        END {
            k = int(n / 20); if (k < 1) k = 1
            for (i = n - k + 1; i <= n; i++) s += tl[i]
            if (rc != 0) { ftl = "nan"; vl = "nan" } else ftl = sprintf("%.5f", s / k)
            printf "%s,%s,%d,%s,%s,%.1f\n", recipe, seed, tok, ftl, vl, (ms > 0 ? tok / (ms / 1000) : 0)
        }' "$3/metrics.csv"
}
curves() { # LABEL SEED DIR: recipe,seed,step,tokens,train_loss,val_loss
    awk -F, -v recipe="$1" -v seed="$2" '
        NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
        { printf "%s,%s,%s,%s,%s,%s\n", recipe, seed, $(col["step"]), $(col["tokens"]),
                 $(col["train_loss"]), $(col["val_loss"]) }' "$3/metrics.csv"
}

# ------------------------------------------------------------------------------ metadata
# Written by every run that produces results; the report quotes it. A run of some stages only
# (--stages) keeps, for every other stage, the line saying which command, commit and date last
# produced its results (ran.STAGE=COMMIT|DATE|DIRTY|COMMAND), so the report can say that results
# of different stages come from different runs; a meta.txt without those lines (older runs)
# counts for the stages it lists.
# Uncommitted changes to tracked files, not counting this pipeline's own outputs (the results,
# the document, the figures), which an earlier stage of the same work may have rewritten.
dirty_count() {
    set --
    for o in "$RESULTS" "$DOC" "$FIG"; do
        a=$(abspath "$o")
        case $a in "$ROOT"/*) set -- "$@" ":(exclude)${a#"$ROOT"/}" ;; esac
    done
    git -C "$ROOT" status --porcelain --untracked-files=no -- . "$@" 2>/dev/null | wc -l | tr -d ' '
}
if [ "$STAGES" != report ]; then
    NOW_COMMIT=$(git rev-parse HEAD 2>/dev/null || echo unknown)
    NOW_DIRTY=$(dirty_count)
    NOW_DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
    OLD_META=$TMP/meta.old
    : > "$OLD_META"
    [ -f "$RESULTS/meta.txt" ] && cp "$RESULTS/meta.txt" "$OLD_META"
    {
        for s in theory pretrain ablation scale tensors finetune speed; do
            if want $s; then
                echo "ran.$s=$NOW_COMMIT|$NOW_DATE|$NOW_DIRTY|$ORIG_CMD"
            else
                awk -F= -v s="$s" '
                    index($0, "=") { k = $1; v = substr($0, index($0, "=") + 1); m[k] = v }
                    END {
                        if (("ran." s) in m) { print "ran." s "=" m["ran." s]; exit }
                        if (index("," m["stages"] ",", "," s ","))
                            print "ran." s "=" m["commit"] "|" m["date"] "|" m["dirty"] "|" m["command"]
                    }' "$OLD_META"
            fi
        done
        echo "mode=$MODE"
        echo "command=$ORIG_CMD"
        echo "commit=$NOW_COMMIT"
        echo "dirty=$NOW_DIRTY"
        echo "date=$NOW_DATE"
        echo "nproc=$NPROC"
        echo "cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)"
        echo "isa=$("$BIN" help | awk '/^kernels:/ { print $2 }')"
        # Jobs and threads describe the training stages: a run without them keeps the old ones.
        if ! want pretrain && ! want finetune && grep -q '^jobs=' "$OLD_META"; then
            grep -E '^(jobs|threads_per_job)=' "$OLD_META"
        else
            echo "jobs=$JOBS"
            echo "threads_per_job=$THREADS"
        fi
        echo "model=$MODEL"
        echo "steps=$STEPS"
        echo "batch=$BATCH"
        echo "seq=$SEQ"
        echo "lr=$LR"
        echo "warmup=$WARMUP"
        echo "seeds=$SEEDS"
        echo "ablation_seeds=$ABL_SEEDS"
        echo "scale_model=$SCALE_MODEL"
        echo "scale_steps=$SCALE_STEPS"
        echo "ft_steps=$FT_STEPS"
        echo "ft_lr=$FT_LR"
        echo "ft_seeds=$FT_SEEDS"
        echo "theory_samples=$THEORY_SAMPLES"
        echo "eval_every=$EVAL_EVERY"
        echo "eval_batches=$EVAL_BATCHES"
        echo "full_model=$FULL_MODEL"
        echo "full_steps=$FULL_STEPS"
        echo "full_batch=$FULL_BATCH"
        echo "full_seq=$FULL_SEQ"
        echo "full_seeds=$FULL_SEEDS"
        echo "full_ft_steps=$FULL_FT_STEPS"
        echo "full_ft_seeds=$FULL_FT_SEEDS"
        echo "full_eval_every=$FULL_EVAL_EVERY"
        echo "full_eval_batches=$FULL_EVAL_BATCHES"
        echo "full_ft_eval_every=$FULL_FT_EVAL_EVERY"
        echo "ft_eval_batches=$FT_EVAL_BATCHES"
        echo "pretrain_recipes=$PRETRAIN_RECIPES"
        echo "finetune_recipes=$FINETUNE_RECIPES"
        echo "stages=$STAGES"
    } | put "$RESULTS/meta.txt"
fi

# ------------------------------------------------------------------------------ 1. theory
if want theory; then
    t0=$(now)
    say "theory: curves and rule points (samples $THEORY_SAMPLES per group size)"
    echo "dist,group,ratio,rel_mse" > "$TMP/curve.csv"
    echo "dist,group,rule,clip_over_amax,rel_mse,rel_mse_se,zero_collapse,halved_fraction" > "$TMP/points.csv"
    echo "dist,opt_clip_over_sigma,mse_at_opt" > "$TMP/opt.csv"
    for d in gauss laplace t:3; do
        "$BIN" theory --dist "$d" --group 16,32,1024,4096 --samples "$THEORY_SAMPLES" --curve \
            --ratio-min 0.2 --ratio-max 3 --ratio-step 0.01 > "$TMP/c" || die "halfs theory --curve failed"
        awk -F, -v d="$d" 'NR > 1 { print d "," $0 }' "$TMP/c" >> "$TMP/curve.csv"
        "$BIN" theory --dist "$d" --group 16,32,1024,4096 --samples "$THEORY_SAMPLES" --json \
            > "$TMP/j" || die "halfs theory --json failed"
        awk -f "$JSON" "$TMP/j" > "$TMP/jf"
        awk -F'\t' -v d="$d" '
            $1 == "opt_clip_over_sigma" { oc = $2 }
            $1 == "mse_at_opt" { om = $2 }
            { n = split($1, p, "/") }
            n == 5 && p[1] == "monte_carlo" && p[3] == "rules" {
                key = p[2] SUBSEP p[4]
                if (!(key in seen)) { seen[key] = 1; order[++m] = key }
                v[key, p[5]] = $2
            }
            END {
                print d "," oc "," om > "/dev/stderr"
                for (i = 1; i <= m; i++) {
                    split(order[i], k, SUBSEP)
                    printf "%s,%s,%s,%s,%s,%s,%s,%s\n", d, k[1], k[2], v[order[i], "clip_over_amax"],
                        v[order[i], "rel_mse"], v[order[i], "rel_mse_se"],
                        v[order[i], "zero_collapse"], v[order[i], "halved_fraction"]
                }
            }' "$TMP/jf" >> "$TMP/points.csv" 2>> "$TMP/opt.csv"
    done
    put "$RESULTS/theory_curve.csv" < "$TMP/curve.csv"
    put "$RESULTS/theory_points.csv" < "$TMP/points.csv"
    put "$RESULTS/theory_optimum.csv" < "$TMP/opt.csv"
    timing theory $(($(now) - t0))
fi

# ------------------------------------------------------------------------------ 2. pretraining
if want pretrain; then
    t0=$(now)
    say "pretrain: $MODEL, $STEPS steps of $BATCH x $SEQ tokens, seeds $SEEDS, $JOBS job(s) x $THREADS thread(s)"
    mkdir -p "$RESULTS/runs/pretrain"
    RAN=0
    for seed in $SEEDS; do
        for r in $PRETRAIN_RECIPES; do
            # shellcheck disable=SC2046 # recipe_flags is split on purpose
            pre_job "$RESULTS_ABS/runs/pretrain/$r-s$seed" "$MODEL" "$STEPS" "$seed" "$EVAL_EVERY" \
                $(recipe_flags "$r")
        done
    done
    jobs_run
    echo "recipe,seed,tokens,final_train_loss,final_val_loss,tokens_per_s" > "$TMP/pre.csv"
    echo "recipe,seed,step,tokens,train_loss,val_loss" > "$TMP/prec.csv"
    for seed in $SEEDS; do
        for r in $PRETRAIN_RECIPES; do
            d=$RESULTS/runs/pretrain/$r-s$seed
            run_ok "$d" "$STEPS"
            summarize "$r" "$seed" "$d" >> "$TMP/pre.csv"
            curves "$r" "$seed" "$d" >> "$TMP/prec.csv"
        done
    done
    put "$RESULTS/pretrain.csv" < "$TMP/pre.csv"
    put "$RESULTS/pretrain_curves.csv" < "$TMP/prec.csv"
    timing pretrain $(($(now) - t0))
    RAN=1
fi

# ------------------------------------------------------------------------------ 2b. ablation
# MXFP4 (E8M0 per 32, Half-S) with each tool of NVIDIA's NVFP4 recipe, one at a time and then
# together: a random Hadamard transform on the wgrad operands (16, 32, 128), stochastic rounding
# on the backward roles, 16-element blocks, a bf16 last block; and the `mse` rule (the full
# power-of-two search) in place of Half-S. Same model, data, schedule and seeds as the
# pretraining stage, whose runs of the four baselines are shared (same command, same directory).
# Labels: "halfs+X" is mxfp4-halfs plus X.
ablation_configs() { # LABEL|TRAINER FLAGS, one a line
    cat <<EOF
bf16|--recipe bf16
mxfp4-max|--recipe mxfp4-max
mxfp4-halfs|--recipe mxfp4-halfs
nvfp4|--recipe nvfp4
halfs+rht16|--recipe mxfp4-halfs --rht 16
halfs+rht32|--recipe mxfp4-halfs --rht 32
halfs+rht128|--recipe mxfp4-halfs --rht 128
halfs+sr|--recipe mxfp4-halfs --sr
halfs+b16|--recipe mxfp4-halfs --block 16
mxfp4-mse|--recipe mxfp4-halfs --role all=mxfp4:mse
halfs+hp-last|--recipe mxfp4-halfs --hp-layers last
halfs+all|--recipe mxfp4-halfs --rht 16 --sr --block 16 --hp-layers last
EOF
}
abl_dir() { # LABEL SEED: the baselines' runs are the pretraining stage's
    case $1 in
        bf16|mxfp4-max|mxfp4-halfs|nvfp4) echo "$RESULTS_ABS/runs/pretrain/$1-s$2" ;;
        *) echo "$RESULTS_ABS/runs/ablation/$1-s$2" ;;
    esac
}
if want ablation; then
    t0=$(now)
    say "ablation: $MODEL, $STEPS steps of $BATCH x $SEQ tokens, seeds $ABL_SEEDS, $JOBS job(s) x $THREADS thread(s)"
    mkdir -p "$RESULTS/runs/pretrain" "$RESULTS/runs/ablation"
    ablation_configs > "$TMP/abl.cfg"
    RAN=0
    for seed in $ABL_SEEDS; do
        while IFS='|' read -r label flags; do
            # shellcheck disable=SC2086 # $flags is split on purpose
            pre_job "$(abl_dir "$label" "$seed")" "$MODEL" "$STEPS" "$seed" "$EVAL_EVERY" $flags
        done < "$TMP/abl.cfg"
    done
    jobs_run
    echo "recipe,seed,tokens,final_train_loss,final_val_loss,tokens_per_s" > "$TMP/abl.csv"
    echo "recipe,seed,step,tokens,train_loss,val_loss" > "$TMP/ablc.csv"
    for seed in $ABL_SEEDS; do
        while IFS='|' read -r label flags; do
            d=$(abl_dir "$label" "$seed")
            run_ok "$d" "$STEPS"
            summarize "$label" "$seed" "$d" >> "$TMP/abl.csv"
            curves "$label" "$seed" "$d" >> "$TMP/ablc.csv"
        done < "$TMP/abl.cfg"
    done
    put "$RESULTS/ablation.csv" < "$TMP/abl.csv"
    put "$RESULTS/ablation_curves.csv" < "$TMP/ablc.csv"
    { echo "label,flags"; awk -F'|' '{ print $1 "," $2 }' "$TMP/abl.cfg"; } | put "$RESULTS/ablation_configs.csv"
    timing ablation $(($(now) - t0))
    RAN=1
fi

# ------------------------------------------------------------------------------ 2c. scale check
# The ablation's best MXFP4 configuration, mxfp4-halfs, mxfp4-max, nvfp4 and bf16 at a larger
# model (SCALE_MODEL), one seed, for as many steps as fit in about two hours on 2 cores (five
# runs, one at a time with every thread: 1200 steps of 16 x 256 tokens of `small` at the
# ~4k tokens/s `halfs bench train` measured there). The curves show whether the gaps hold,
# shrink or grow with scale. Needs the ablation's results (the best configuration).
if want scale; then
    t0=$(now)
    [ -f "$RESULTS/ablation.csv" ] && [ -f "$RESULTS/ablation_configs.csv" ] ||
        die "scale: no ablation results in $RESULTS (run --stages ablation first)"
    # the MXFP4 configuration with the lowest mean final val loss over its seeds
    BEST=$(awk -F, 'NR == 1 { next } $1 != "bf16" && $1 != "nvfp4" && $5 != "nan" && $5 != "" {
            s[$1] += $5; n[$1]++ }
        END { for (r in s) if (best == "" || s[r] / n[r] < bv) { best = r; bv = s[r] / n[r] }; print best }' \
        "$RESULTS/ablation.csv")
    BEST_FLAGS=$(awk -F, -v b="$BEST" '$1 == b { print $2 }' "$RESULTS/ablation_configs.csv")
    [ -n "$BEST" ] && [ -n "$BEST_FLAGS" ] || die "scale: no best configuration in $RESULTS/ablation.csv"
    say "scale: $SCALE_MODEL, $SCALE_STEPS steps of $BATCH x $SEQ tokens, seed 1, best MXFP4: $BEST ($BEST_FLAGS)"
    mkdir -p "$RESULTS/runs/scale"
    printf '%s\n' "bf16|--recipe bf16" "mxfp4-max|--recipe mxfp4-max" "mxfp4-halfs|--recipe mxfp4-halfs" \
        "nvfp4|--recipe nvfp4" "$BEST|$BEST_FLAGS" | awk -F'|' '!seen[$1]++' > "$TMP/scale.cfg"
    RAN=0
    SAVE_JOBS=$JOBS SAVE_THREADS=$THREADS
    JOBS=1 THREADS=$NPROC # one big run at a time
    while IFS='|' read -r label flags; do
        # shellcheck disable=SC2086 # $flags is split on purpose
        pre_job "$RESULTS_ABS/runs/scale/$label-s1" "$SCALE_MODEL" "$SCALE_STEPS" 1 "$SCALE_EVAL_EVERY" $flags
    done < "$TMP/scale.cfg"
    jobs_run
    echo "recipe,seed,tokens,final_train_loss,final_val_loss,tokens_per_s" > "$TMP/sc.csv"
    echo "recipe,seed,step,tokens,train_loss,val_loss" > "$TMP/scc.csv"
    while IFS='|' read -r label flags; do
        d=$RESULTS/runs/scale/$label-s1
        run_ok "$d" "$SCALE_STEPS"
        summarize "$label" 1 "$d" >> "$TMP/sc.csv"
        curves "$label" 1 "$d" >> "$TMP/scc.csv"
    done < "$TMP/scale.cfg"
    put "$RESULTS/scale.csv" < "$TMP/sc.csv"
    put "$RESULTS/scale_curves.csv" < "$TMP/scc.csv"
    { echo "label,flags"; awk -F'|' '{ print $1 "," $2 }' "$TMP/scale.cfg"; } | put "$RESULTS/scale_configs.csv"
    timing scale $(($(now) - t0))
    JOBS=$SAVE_JOBS THREADS=$SAVE_THREADS
    RAN=1
fi

# ------------------------------------------------------------------------------ 3. real tensors
# The bf16 checkpoint of seed 1, one held-out batch of the validation text: every linear
# layer's weight W [out, in], input X [tokens, in] and output gradient dY [tokens, out]
# (halfs capture). Each is measured along both axes its GEMMs quantize it on
# (docs/ARCHITECTURE.md, 'The three GEMMs of a linear layer'):
#   X: fprop along K (axis "row"), wgrad along M (axis "col");
#   W: fprop along K ("row"), dgrad along N ("col");  dY: dgrad along N ("row"), wgrad along M ("col").
if want tensors; then
    t0=$(now)
    CK=$RESULTS/runs/pretrain/bf16-s$(echo "$SEEDS" | awk '{ print $1 }')
    [ -f "$CK/metrics.csv" ] || die "tensors: no bf16 run at $CK (run the pretrain stage first)"
    "$BIN" capture --help > /dev/null 2>&1 || die "tensors: this halfs has no 'capture' command"
    CAP=$RESULTS/runs/capture
    rm -rf "$CAP"
    "$BIN" capture "$CK" --data "$(corpus val)" --batch "$CAP_BATCH" --seq "$CAP_SEQ" --out "$CAP" \
        > "$RESULTS/runs/capture.log" 2>&1 || { tail -n 5 "$RESULTS/runs/capture.log" >&2; die "halfs capture failed"; }
    [ -f "$CAP/manifest.csv" ] || die "halfs capture wrote no manifest.csv"
    say "tensors: $(($(wc -l < "$CAP/manifest.csv") - 1)) tensors x 4 formats x 2 axes (halfs stats)"
    echo "tensor,role,axis,rows,cols,kurtosis,format,rule,rel_mse,zero_collapse,halved_fraction" > "$TMP/ten.csv"
    # manifest.csv: name,layer,role,rows,cols,file (file relative to the capture directory)
    awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
             { print $(c["name"]), $(c["role"]), $(c["rows"]), $(c["cols"]), $(c["file"]) }' \
        "$CAP/manifest.csv" > "$TMP/manifest"
    while read -r name role rows cols file; do
        for fmt in mxfp4-32 mxfp4-16 nvfp4 fp4row; do
            case $fmt in
                mxfp4-32) fa="--format mxfp4 --block 32" ;;
                mxfp4-16) fa="--format mxfp4 --block 16" ;;
                *) fa="--format $fmt" ;;
            esac
            for axis in row col; do
                ta=
                [ $axis = col ] && ta=--transpose
                # shellcheck disable=SC2086 # $fa and $ta are split on purpose
                "$BIN" stats $fa $ta --cols "$cols" --json "$CAP/$file" > "$TMP/s" < /dev/null ||
                    die "halfs stats failed on $CAP/$file"
                awk -f "$JSON" "$TMP/s" | awk -F'\t' -v pre="$name,$role,$axis,$rows,$cols" -v fmt="$fmt" '
                    $1 == "kurtosis" { k = $2; next }
                    { n = split($1, p, "/") }
                    n == 2 { if (!(p[1] in seen)) { seen[p[1]] = 1; order[++m] = p[1] }; v[p[1], p[2]] = $2 }
                    END { for (i = 1; i <= m; i++) { r = order[i]
                        printf "%s,%s,%s,%s,%s,%s,%s\n", pre, k, fmt, r, v[r, "rel_mse"],
                            v[r, "zero_collapse"], v[r, "halved_fraction"] } }' >> "$TMP/ten.csv"
            done
        done
    done < "$TMP/manifest"
    put "$RESULTS/tensors.csv" < "$TMP/ten.csv"
    timing tensors $(($(now) - t0))
fi

# ------------------------------------------------------------------------------ 4. fine-tuning
# From the bf16 checkpoint of seed 1, on The Devil's Dictionary (never seen in pretraining);
# the seeds change the batch order (and SR/RHT streams), not the starting weights.
if want finetune; then
    t0=$(now)
    CK=$RESULTS_ABS/runs/pretrain/bf16-s$(echo "$SEEDS" | awk '{ print $1 }')
    [ -f "$CK/metrics.csv" ] || die "finetune: no bf16 run at $CK (run the pretrain stage first)"
    FT=$(corpus ft_train)
    FV=$(corpus ft_val)
    say "finetune: from $(basename "$CK"), $FT_STEPS steps, seeds $FT_SEEDS"
    # Where fine-tuning starts: the pretrained model on the held-out text's validation split.
    "$BIN" eval "$CK" --data "$FV" --seq "$SEQ" --json > "$TMP/fe.json" || die "halfs eval failed"
    { echo "key,value"; awk -f "$JSON" "$TMP/fe.json" | awk -F'\t' '$1 != "checkpoint" { gsub(",", ";", $2); print $1 "," $2 }'; } |
        put "$RESULTS/finetune_start.csv"
    mkdir -p "$RESULTS/runs/finetune"
    RAN=0
    for seed in $FT_SEEDS; do
        for r in $FINETUNE_RECIPES; do
            # shellcheck disable=SC2046
            job_add "$RESULTS_ABS/runs/finetune/$r-s$seed" "$FT_STEPS" --init "$CK" $(recipe_flags "$r") \
                --data "$FT" --val "$FV" --batch "$BATCH" --seq "$SEQ" \
                --lr "$FT_LR" --min-lr "$(awk -v l="$FT_LR" 'BEGIN { print l / 10 }')" \
                --warmup "$FT_WARMUP" --seed "$seed" --eval-every "$FT_EVAL_EVERY" \
                --eval-batches "$FT_EVAL_BATCHES" --save-every "$FT_STEPS"
        done
    done
    jobs_run
    echo "recipe,seed,tokens,final_train_loss,final_val_loss,tokens_per_s" > "$TMP/ft.csv"
    echo "recipe,seed,step,tokens,train_loss,val_loss" > "$TMP/ftc.csv"
    for seed in $FT_SEEDS; do
        for r in $FINETUNE_RECIPES; do
            d=$RESULTS/runs/finetune/$r-s$seed
            run_ok "$d" "$FT_STEPS"
            summarize "$r" "$seed" "$d" >> "$TMP/ft.csv"
            curves "$r" "$seed" "$d" >> "$TMP/ftc.csv"
        done
    done
    put "$RESULTS/finetune.csv" < "$TMP/ft.csv"
    put "$RESULTS/finetune_curves.csv" < "$TMP/ftc.csv"
    timing finetune $(($(now) - t0))
    RAN=1
fi

# ------------------------------------------------------------------------------ 5. speed
# Benchmarks run with OpenBLAS's own CPU detection (the environment's OPENBLAS_CORETYPE and
# OPENBLAS_L2_SIZE are for the tests only) and all cores; nothing else of ours runs meanwhile.
if want speed; then
    t0=$(now)
    say "speed: halfs bench train ($BENCH_TRAIN_ARGS), gemm, quant"
    LOAD=$(awk '{ print $1 }' /proc/loadavg 2>/dev/null || echo "")
    # Why rounds: other work on the machine slows whichever recipe happens to run meanwhile;
    # each round measures every recipe once (each in its own process), and each recipe keeps
    # its fastest round (the least disturbed one), with that round's time breakdown.
    : > "$TMP/bt.all"
    : > "$RESULTS/speed_train.json.tmp"
    r=1
    while [ "$r" -le "$SPEED_ROUNDS" ]; do
        # shellcheck disable=SC2086
        env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$BIN" bench train $BENCH_TRAIN_ARGS --json \
            > "$TMP/bt.json" || die "halfs bench train failed"
        # The --act-only variants trained in the pretraining stage.
        # shellcheck disable=SC2086
        env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$BIN" bench train $BENCH_TRAIN_ARGS --act-only \
            --recipes mxfp4-max,mxfp4-halfs --json > "$TMP/bta.json" || die "halfs bench train --act-only failed"
        cat "$TMP/bt.json" "$TMP/bta.json" >> "$RESULTS/speed_train.json.tmp"
        # round<TAB>key<TAB>value; the --act-only run's per-recipe keys get "+act-only".
        awk -f "$JSON" "$TMP/bt.json" | awk -F'\t' -v r="$r" '{ print r "\t" $0 }' >> "$TMP/bt.all" ||
            die "bad JSON from halfs bench train"
        awk -f "$JSON" "$TMP/bta.json" | awk -F'\t' -v r="$r" '{ n = split($1, p, "/"); if (n < 2) next
            k = p[1] "/" p[2] "+act-only"; for (i = 3; i <= n; i++) k = k "/" p[i]; print r "\t" k "\t" $2 }' \
            >> "$TMP/bt.all" || die "bad JSON from halfs bench train --act-only"
        r=$((r + 1))
    done
    mv "$RESULTS/speed_train.json.tmp" "$RESULTS/speed_train.json"
    # The cost of each ablation ingredient: every ablation configuration as a `bench train` item,
    # NAME+OPT[=VALUE]..., in one run per round; each keeps its fastest round, and its ratio is to
    # that of mxfp4-halfs.
    ablation_configs | awk -F'|' '{
        n = split($2, a, " "); name = ""; opts = ""
        for (i = 1; i <= n; i++) {
            if (a[i] == "--recipe") { name = a[++i]; continue }
            o = substr(a[i], 3)
            if (i < n && a[i + 1] !~ /^--/) opts = opts "+" o "=" a[++i]; else opts = opts "+" o
        }
        print $1 "\t" name opts }' > "$TMP/abl.items"
    : > "$TMP/bab.all"
    r=1
    while [ "$r" -le "$SPEED_ROUNDS" ]; do
        # shellcheck disable=SC2086
        env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$BIN" bench train $BENCH_TRAIN_ARGS --json \
            --recipes "$(cut -f2 "$TMP/abl.items" | paste -sd, -)" > "$TMP/bab.json" ||
            die "halfs bench train (ablation configurations) failed"
        awk -f "$JSON" "$TMP/bab.json" | awk -F'\t' '$1 ~ /^tokens_per_s\// { print substr($1, 14) "\t" $2 }' \
            >> "$TMP/bab.all" || die "bad JSON from halfs bench train"
        r=$((r + 1))
    done
    awk -F'\t' 'NR == FNR { if (!($1 in best) || $2 + 0 > best[$1]) best[$1] = $2 + 0; next }
        { lab[++n] = $1; item[n] = $2 }
        END {
            print "label,item,tokens_per_s,vs_mxfp4_halfs"
            h = best["mxfp4-halfs"]
            for (i = 1; i <= n; i++)
                printf "%s,%s,%.1f,%s\n", lab[i], item[i], best[item[i]],
                    (h > 0 ? sprintf("%.3f", best[item[i]] / h) : "")
        }' "$TMP/bab.all" "$TMP/abl.items" | put "$RESULTS/speed_ablation.csv"
    awk -F'\t' -v rounds="$SPEED_ROUNDS" -v load="$LOAD" '
        { n = split($2, p, "/") }
        n == 1 { if ($1 == 1) top[++nt] = $2 "," $3; next }
        { rec = p[2]; key[$1, rec, ++nk[$1, rec]] = $2; val[$1, rec, nk[$1, rec]] = $3
          if (!(rec in seen)) { seen[rec] = 1; order[++nr] = rec }
          if (p[1] == "tokens_per_s" && (!(rec in best) || $3 + 0 > bestv[rec])) { best[rec] = $1; bestv[rec] = $3 + 0 } }
        END {
            print "key,value"
            for (i = 1; i <= nt; i++) print top[i]
            print "rounds," rounds
            print "loadavg," load
            for (i = 1; i <= nr; i++) {
                rec = order[i]; b = (rec in best) ? best[rec] : 1
                for (j = 1; j <= nk[b, rec]; j++) { v = val[b, rec, j]; gsub(",", ";", v); print key[b, rec, j] "," v }
            }
        }' "$TMP/bt.all" | put "$RESULTS/speed_train.csv"
    # shellcheck disable=SC2086
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$BIN" bench gemm $GEMM_ARGS --json \
        > "$TMP/bg.json" || die "halfs bench gemm failed"
    # shellcheck disable=SC2086
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$BIN" bench quant $QUANT_ARGS --json \
        > "$TMP/bq.json" || die "halfs bench quant failed"
    for f in bg bq; do awk -f "$JSON" "$TMP/$f.json" > "$TMP/$f.flat" || die "bad JSON from halfs bench"; done
    put "$RESULTS/speed_gemm.json" < "$TMP/bg.json"
    put "$RESULTS/speed_quant.json" < "$TMP/bq.json"
    # Flat key,value tables for the report.
    { echo "key,value"; awk -F'\t' '{ gsub(",", ";", $2); print $1 "," $2 }' "$TMP/bg.flat"; } | put "$RESULTS/speed_gemm.csv"
    { echo "key,value"; awk -F'\t' '{ gsub(",", ";", $2); print $1 "," $2 }' "$TMP/bq.flat"; } | put "$RESULTS/speed_quant.csv"
    timing speed $(($(now) - t0))
fi

# ------------------------------------------------------------------------------ 6. report
# Figures: gnuplot reads data files cut from the results by awk (in $TMP).
GP_TERM="pngcairo size 1500,520 font 'sans,10' linewidth 1.5"
fig_theory() {
    [ -f "$RESULTS/theory_curve.csv" ] || return 0
    awk -F, -v dir="$TMP" 'NR > 1 { d = $1; sub(":", "", d); print $3, $4 > (dir "/tc_" d "_" $2) }' \
        "$RESULTS/theory_curve.csv"
    awk -F, -v dir="$TMP" 'NR > 1 { d = $1; sub(":", "", d); print $4, $5 > (dir "/tp_" d "_" $2 "_" $3) }' \
        "$RESULTS/theory_points.csv"
    {
        echo "set terminal $GP_TERM"
        echo "set output '$FIG/theory.png'"
        echo "set multiplot layout 1,3 title 'E2M1 relative MSE vs clip/amax: curve = one continuous scale r*amax/6 per group; points = E8M0 scale rules (at their mean clip/amax) and the per-group optimum'"
        echo "set logscale y; set xrange [0.2:3]; set grid; set xlabel 'clip / amax'"
        echo "set key top center font ',9' box opaque"
        echo "set yrange [0.003:1]"
        for d in gauss laplace t3; do
            case $d in gauss) t="Gaussian" ;; laplace) t="Laplace" ;; t3) t="Student-t(3)" ;; esac
            echo "set title '$t'"
            # One legend, in the first panel (its upper middle is empty).
            [ $d = gauss ] && echo "set ylabel 'relative MSE  (error energy / signal energy)'; set key" ||
                echo "unset ylabel; unset key"
            printf "plot "
            i=0
            for g in 16 32 1024 4096; do
                i=$((i + 1))
                printf "'%s' w l lc %d dt 1 t 'group %s', " "$TMP/tc_${d}_$g" "$i" "$g"
            done
            i=0
            for g in 16 32 1024 4096; do
                i=$((i + 1))
                for r in ocp ceil half halfs opt; do
                    case $r in ocp) pt=4 ;; ceil) pt=6 ;; half) pt=8 ;; halfs) pt=7 ;; opt) pt=3 ;; esac
                    printf "'%s' w p lc %d pt %d ps 1.6 notitle, " "$TMP/tp_${d}_${g}_$r" "$i" "$pt"
                done
            done
            # the rule legend, in black
            for r in ocp ceil half halfs opt; do
                case $r in ocp) pt=4 ;; ceil) pt=6 ;; half) pt=8 ;; halfs) pt=7 ;; opt) pt=3 ;; esac
                case $r in opt) lab="optimum" ;; *) lab=$r ;; esac
                printf "NaN w p lc 'black' pt %d ps 1.6 t '%s', " "$pt" "$lab"
            done
            echo "NaN notitle"
        done
        echo "unset multiplot"
    } > "$TMP/theory.gp"
    gnuplot "$TMP/theory.gp" || die "gnuplot failed on the theory figure"
}

# Loss curves of a set (pre|ft): training loss (mean over seeds, smoothed), validation loss,
# and the validation gap to bf16 at each evaluation (mean over seeds).
fig_losses() { # set csv png title
    [ -f "$2" ] || return 0
    rm -f "$TMP"/lt_* "$TMP"/lv_* "$TMP"/lg_*
    awk -F, -v dir="$TMP" '
        NR == 1 { next }
        {
            r = $1; st = $3 + 0
            if (!(r in seen)) { seen[r] = 1; order[++nr] = r }
            if (st > maxst[r]) maxst[r] = st
            tok[r, st] = $4; tl[r, st] += $5; tn[r, st]++
            if ($6 != "") { vl[r, st] += $6; vn[r, st]++ }
        }
        END {
            for (i = 1; i <= nr; i++) {
                r = order[i]; ema = ""
                # Why smooth: one batch per step is noisy; an EMA with a window of ~5% of the run
                # shows the trend (the table uses the raw mean of the last 5%).
                a = 20 / (maxst[r] + 20)
                for (st = 1; st <= maxst[r]; st++) {
                    if (!((r, st) in tn)) continue
                    x = tl[r, st] / tn[r, st]
                    ema = ema == "" ? x : ema + a * (x - ema)
                    print tok[r, st], ema > (dir "/lt_" r)
                    if ((r, st) in vn) {
                        y = vl[r, st] / vn[r, st]
                        print tok[r, st], y > (dir "/lv_" r)
                        if (("bf16", st) in vn) print tok[r, st], y - vl["bf16", st] / vn["bf16", st] > (dir "/lg_" r)
                    }
                }
            }
            for (i = 1; i <= nr; i++) print order[i] > (dir "/l_order")
        }' "$2"
    {
        echo "set terminal $GP_TERM"
        echo "set output '$3'"
        echo "set multiplot layout 1,3 title '$4'"
        echo "set grid; set xlabel 'tokens'; set key top right font ',8'"
        for panel in lt lv lg; do
            case $panel in
                lt) echo "set title 'training loss (mean over seeds, EMA-smoothed)'; set ylabel 'nats/token'" ;;
                lv) echo "set title 'validation loss (mean over seeds)'; unset ylabel" ;;
                lg) echo "set title 'validation loss minus bf16 (same step)'; set ylabel 'nats/token'" ;;
            esac
            printf "plot "
            i=0
            while read -r r; do
                i=$((i + 1))
                case $r in *act-only) dt=2 ;; *) dt=1 ;; esac
                case $i in 1) c='#000000' ;; 2) c='#e41a1c' ;; 3) c='#377eb8' ;; 4) c='#4daf4a' ;; 5) c='#984ea3' ;;
                    6) c='#ff7f00' ;; 7) c='#a65628' ;; 8) c='#f781bf' ;; 9) c='#377eb8' ;; *) c='#4daf4a' ;; esac
                # the ablation's twelve lines: the four baselines solid, the variants dashed
                if [ "$1" = abl ] && [ "$i" -gt 4 ]; then
                    dt=2
                    case $i in 5) c='#984ea3' ;; 6) c='#ff7f00' ;; 7) c='#a65628' ;; 8) c='#f781bf' ;;
                        9) c='#999999' ;; 10) c='#17becf' ;; 11) c='#bcbd22' ;; *) c='#e41a1c' ;; esac
                fi
                [ -f "$TMP/${panel}_$r" ] || continue
                w="w l"
                [ $panel = lt ] || w="w lp pt 7 ps 0.5"
                printf "'%s' %s lc rgb '%s' dt %d t '%s', " "$TMP/${panel}_$r" "$w" "$c" "$dt" "$r"
            done < "$TMP/l_order"
            echo "NaN notitle"
        done
        echo "unset multiplot"
    } > "$TMP/$1.gp"
    gnuplot "$TMP/$1.gp" || die "gnuplot failed on $3"
}

if want report; then
    t0=$(now)
    fig_theory
    fig_losses pre "$RESULTS/pretrain_curves.csv" "$FIG/pretrain.png" "Pretraining, model $MODEL ($MODE run)"
    fig_losses ft "$RESULTS/finetune_curves.csv" "$FIG/finetune.png" "Fine-tuning on the held-out text from the bf16 checkpoint ($MODE run)"
    fig_losses abl "$RESULTS/ablation_curves.csv" "$FIG/ablation.png" "Ablation: MXFP4 with Half-S and the tools of the NVFP4 recipe, model $MODEL ($MODE run)"
    fig_losses scale "$RESULTS/scale_curves.csv" "$FIG/scale.png" "Scale check: model $SCALE_MODEL, one seed ($MODE run)"
    set --
    for f in meta.txt timing.csv theory_points.csv theory_curve.csv theory_optimum.csv tensors.csv pretrain.csv \
        ablation.csv ablation_configs.csv scale.csv scale_configs.csv finetune.csv finetune_start.csv \
        speed_train.csv speed_gemm.csv speed_quant.csv speed_ablation.csv; do
        [ -f "$RESULTS/$f" ] && set -- "$@" "$RESULTS/$f"
    done
    # The figures' path as seen from the document.
    docdir=$(dirname "$DOC")
    fabs=$(abspath "$FIG")
    dabs=$(abspath "$docdir")
    case $fabs in "$dabs"/*) figrel=${fabs#"$dabs"/} ;; *) figrel=$fabs ;; esac
    : > "$TMP/head"
    awk -f "$HERE/report.awk" -v figdir="$figrel" -v headfile="$TMP/head" "$@" > "$TMP/body" ||
        die "report.awk failed"
    cat "$TMP/head" "$TMP/body" > "$TMP/section"
    # Splice between the markers; everything else in the document is kept as it is.
    B='<!-- reproduce:begin -->'
    E='<!-- reproduce:end -->'
    mkdir -p "$docdir"
    [ -f "$DOC" ] || printf '# halfs: results\n\n' > "$DOC"
    if ! grep -q "^$B" "$DOC"; then printf '\n%s\n%s\n' "$B" "$E" >> "$DOC"; fi
    awk -v b="$B" -v e="$E" -v sec="$TMP/section" '
        $0 == b { print; while ((getline l < sec) > 0) print l; skip = 1; next }
        $0 == e { skip = 0 }
        !skip' "$DOC" > "$TMP/doc"
    put "$DOC" < "$TMP/doc"
    say "wrote $DOC and $FIG/"
fi

say "done"

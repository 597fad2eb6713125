/* trainer.h: the training loop: fp32 master weights, AdamW (torch.optim.AdamW semantics),
 * warmup + cosine learning rate, global-norm clipping, gradient accumulation, periodic
 * evaluation on held-out data, metrics.csv, checkpoints, NaN/Inf detection.
 *
 * What a checkpoint must hold to resume a run exactly (the checkpoint module stores it):
 *   - the model parameters (hs_model.params, in the hs_param_tensor layout);
 *   - hs_train_config (plain data: model config, recipe options, schedule, seed, batch, ...);
 *   - hs_train_state: step, tokens, AdamW m and v (same layout as the parameters).
 * Nothing else is needed: batches are a pure function of (seed, step, micro-batch), and the
 * recipe's SR/RHT seeds a pure function of (seed, step, layer, role).
 *
 * Schedule (step s = 0, 1, ... counts optimizer steps; H = horizon, or `steps` when 0):
 *   s < warmup:  lr · (s+1) / warmup
 *   otherwise:   min_lr + (lr − min_lr) · ½(1 + cos(π · min(1, (s − warmup) / max(1, H − warmup))))
 * so past the horizon (a resumed run extended beyond its first --steps) lr stays min_lr.
 *
 * Divergence guard (checked in hs_trainer_step after the backward pass, before the update, so a
 * step it refuses leaves the weights as they were): the step fails with HS_ERR_NUMERIC when
 *   - guard_grad_norm > 0 and the gradient norm before clipping exceeds it, or
 *   - guard_loss_ratio > 0, s ≥ warmup, and the smoothed training loss (an exponential moving
 *     average, ema ← 0.9·ema + 0.1·loss, started at the first step's loss) exceeds
 *     guard_loss_ratio × the lowest smoothed loss of the run so far.
 * The moving average and its lowest value are run state (hs_train_state, saved in checkpoints),
 * so a resumed run guards exactly as the uninterrupted one.
 * metrics.csv: one row per step: step,tokens,train_loss,val_loss,lr,grad_norm,ms_per_step,
 * tokens_per_s (val_loss empty on steps without evaluation). step is 1-based (the number of
 * optimizer steps completed), tokens the total training tokens consumed after it.
 */
#ifndef HALFS_TRAIN_TRAINER_H
#define HALFS_TRAIN_TRAINER_H

#include <stdint.h>

#include "halfs/status.h"
#include "nn/model.h"
#include "train/dataset.h"
#include "nn/recipe.h"

/* Every field is listed once more, with its JSON key, default, `halfs train` option and resume
 * rule, in the table of src/train/train_config.c: a new field goes into both. */
typedef struct hs_train_config {
    char model_preset[32];  /* preset name the model config came from ("small") */
    hs_model_config model;  /* the architecture actually trained (preset + overrides) */
    hs_recipe_opts recipe;  /* recipe name + overrides (rebuilt with `seed` on resume) */
    int64_t steps;          /* total optimizer steps */
    int32_t batch;          /* B: sequences per micro-batch */
    int32_t seq;            /* T: tokens per sequence */
    int32_t accum;          /* micro-batches per optimizer step */
    double lr, min_lr;      /* peak and final learning rate */
    int64_t warmup;         /* warmup steps */
    int64_t horizon;        /* step where the decay reaches min_lr; 0 = steps */
    double wd;              /* decoupled weight decay (matrices only) */
    double beta1, beta2, eps; /* AdamW */
    double clip;            /* global gradient-norm clip; 0 = off */
    int64_t eval_every;     /* evaluate every N steps (and at the last); 0 = only at the end */
    int32_t eval_batches;   /* batches of B×T validation tokens per evaluation */
    int64_t save_every;     /* checkpoint every N steps (and at the end); 0 = only at the end */
    double guard_loss_ratio; /* divergence guard on the smoothed loss; 0 = off */
    double guard_grad_norm;  /* divergence guard on the gradient norm; 0 = off */
    uint64_t seed;          /* weights, batches, SR and RHT streams */
    int32_t threads;        /* OpenMP threads; 0 = the OpenMP default */
    int32_t ranks;          /* processes of the data-parallel run (mpirun -np); 1 alone. A step
                               is ranks × accum micro-batches of batch × seq tokens */
    int32_t zero;           /* ZeRO stage: 0, or 1 = the AdamW state sharded across the ranks */
    char out_dir[4096];     /* run directory (metrics.csv, checkpoints); "" = write nothing */
    char data_path[4096];   /* training shards (for the record) */
    char val_path[4096];    /* validation shards (for the record) */
} hs_train_config;

/* Defaults: those of the field table (src/train/train_config.c): model "nano", recipe
 * mxfp4-halfs, 1000 steps, B 16, T 256, lr 3e-3 with warmup 100, seed 1337, ... */
void hs_train_config_defaults(hs_train_config *c);

/* Refuse impossible configurations before any work: model config invalid, seq > max_seq,
 * batch/accum/steps < 1, lr ≤ 0, min_lr > lr, unknown recipe, RHT size not dividing the
 * quantized axis, ... HS_ERR_INVALID_ARG with a message naming the option. */
hs_status hs_train_config_validate(const hs_train_config *c);

typedef struct hs_train_state {
    int64_t step;     /* optimizer steps completed */
    int64_t tokens;   /* training tokens consumed */
    int64_t n_params; /* length of m and v */
    float *m;         /* (n_params) AdamW first moment, params layout */
    float *v;         /* (n_params) AdamW second moment */
    int32_t sharded;  /* 1 (ZeRO-1 with several ranks, from the first step on): m and v hold */
    int64_t shard_lo; /* only the elements [shard_lo, shard_lo + shard_n) of that layout, */
    int64_t shard_n;  /* this rank's shard (checkpoints gather them); 0: all n_params */
    double loss_ema;  /* the guard's smoothed training loss; 0 before the first step */
    double loss_best; /* its lowest value so far; 0 before the first step */
    double val_loss;  /* validation loss of the current weights, NAN when they were not
                         evaluated: a checkpoint records it, for pruning to keep the best */
} hs_train_state;

/* One metrics row. */
typedef struct hs_step_metrics {
    int64_t step;      /* 1-based */
    int64_t tokens;
    double train_loss; /* mean over the accumulated micro-batches */
    double val_loss;   /* NAN when not evaluated this step */
    double lr;
    double grad_norm;  /* before clipping */
    double ms_per_step;
    double tokens_per_s;
    double comm_ms;     /* of ms_per_step, the time inside the ranks' exchanges (not in
                           metrics.csv); 0 alone */
    int64_t comm_bytes; /* bytes this rank handed MPI for the other ranks in the step */
} hs_step_metrics;

typedef struct hs_trainer hs_trainer;

/* counts[r], displs[r] (r < ranks): the elements of the parameter layout rank r's shard holds
 * (ZeRO-1's AdamW state), for gathering it. */
void hs_trainer_shards(const hs_trainer *t, int *counts, int *displs);

/* Learning rate of optimizer step s (0-based) under c's schedule. */
double hs_train_lr(const hs_train_config *c, int64_t s);

/* Build a trainer: validates c against the data (vocab > max token id), builds the recipe,
 * creates the model (weights from c->seed), zero AdamW state, reserves every buffer.
 * val may be NULL (no evaluation). The datasets must outlive the trainer. */
hs_status hs_trainer_create(const hs_train_config *c, const hs_dataset *train,
                            const hs_dataset *val, hs_trainer **out);
void hs_trainer_free(hs_trainer *t);

hs_model *hs_trainer_model(hs_trainer *t);
hs_train_state *hs_trainer_state(hs_trainer *t);
const hs_train_config *hs_trainer_config(const hs_trainer *t);
const hs_recipe *hs_trainer_recipe(const hs_trainer *t);

/* Data parallelism (docs/DISTRIBUTED.md): with c->ranks = N > 1 (it must equal hs_dist_size(),
 * src/train/dist.h) every rank calls every function below in the same order. Rank r runs the
 * micro-batches r·accum .. r·accum + accum − 1 of the step's global sequence of N·accum, each
 * backward with loss scale 1/(N·accum) into a zeroed buffer; a rank's micro-batch gradients are
 * summed in order, then the ranks' sums in rank order ((S_0 + S_1) + S_2) + ..., bucket by
 * bucket while the last backward pass runs. So N ranks with accum 1 compute the bits of one
 * process with accum N. Alone with accum > 1, the micro-batch gradients are summed the same way
 * (g_0 + g_1) + g_2 ... The gradient norm is a sum over fixed 64K-element chunks added in chunk
 * order and the shards are chunk-aligned, so it is the same for any N and either ZeRO stage;
 * evaluation splits its batches over the ranks and adds their losses in batch order.
 * Only rank 0 writes metrics.csv; checkpoints gather the AdamW state (checkpoint.h). */

/* One optimizer step (accum micro-batches, clip, AdamW). Fills *out (val_loss NAN).
 * A non-finite loss or gradient norm, or a step the divergence guard refuses, returns
 * HS_ERR_NUMERIC without updating the weights (the message starts "divergence guard:" for
 * the guard). */
hs_status hs_trainer_step(hs_trainer *t, hs_step_metrics *out);

/* Mean validation loss over c->eval_batches batches (in the run's recipe). */
hs_status hs_trainer_eval(hs_trainer *t, double *val_loss);

/* Hooks of hs_trainer_run (any may be NULL).
 * progress: after every step (and its evaluation) with the row just logged; eta_s is the
 *           estimated time left. Return nonzero to stop early (the run then saves and returns).
 * save:     write a checkpoint of the trainer's current state (the checkpoint module's job);
 *           called every save_every steps and after the last step, never after a bad step. */
typedef struct hs_train_hooks {
    int (*progress)(void *ctx, const hs_step_metrics *row, int64_t total_steps, double eta_s);
    hs_status (*save)(void *ctx, hs_trainer *t);
    void *ctx;
} hs_train_hooks;

/* The loop: from the current state up to c->steps, evaluating and checkpointing as configured,
 * appending rows to out_dir/metrics.csv (rewritten up to the current step when resuming).
 * On a non-finite loss or gradient, or when the divergence guard fires: stops before touching
 * the weights (the last checkpoint stays the last good one) and returns HS_ERR_NUMERIC with a
 * message naming the step. */
hs_status hs_trainer_run(hs_trainer *t, const hs_train_hooks *hooks);

#endif

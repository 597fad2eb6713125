/* trainer.c: the training loop (trainer.h): AdamW on fp32 master weights, warmup + cosine
 * schedule, global-norm clipping, gradient accumulation, evaluation, metrics.csv.
 *
 * Determinism: batches come from (seed, step, micro-batch), recipe seeds from (seed, step,
 * layer, role), and every reduction here (loss mean, gradient norm) runs over fixed chunks in a
 * fixed order, so the same configuration gives the same metrics.csv for any thread count.
 */
#include "train/trainer.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/ops.h"
#include "train/dist.h"
#include "train/fileio.h"

enum { CHUNK = 1 << 16 }; // elements per partial sum of the gradient norm; shards align to it

struct hs_trainer {
    hs_train_config cfg;
    hs_recipe recipe;
    hs_model *model;
    hs_train_state state;
    const hs_dataset *train, *val;
    int32_t *inputs, *targets; // (B, T)
    int rank, nranks;
    int64_t *shard;          // (nranks + 1) chunk-aligned bounds: rank r owns [shard[r], shard[r+1])
    float *gsum;             // the model's gradient buffer: the step's sum
    float *gscratch;         // (n_params) when accum > 1: one micro-batch's gradient
    hs_dist_xchg *xchg;      // nranks > 1: the gradient exchange
    int64_t (*bucket)[2];    // the exchange's buckets, in the order backward finishes them
    int n_buckets, next_bucket;
    int adding;              // the hook adds gscratch into gsum before starting a bucket
    hs_status hook_st;       // the first failure inside the backward hook
    float *losses;           // (nranks · accum) the step's micro-batch losses, global order
    float *eval_losses;      // (eval_batches)
    int *counts, *displs;    // (nranks) scratch for the gathers
    double comm_s;           // this step's seconds inside the exchanges
    int64_t comm_bytes;      // this step's bytes sent
};

/* Every reduction axis a role with an RHT of size d transforms must be a multiple of d. */
static hs_status check_rht(const hs_train_config *c, const hs_recipe *r) {
    int64_t C = c->model.dim, F = c->model.ffn_dim, V = c->model.vocab;
    int64_t M = (int64_t)c->batch * c->seq;
    for (int role = 0; role < HS_ROLE_COUNT; role++) {
        int d = r->role[role].rht;
        if (!d || !hs_spec_quantizes(&r->role[role])) continue;
        int64_t axes[5];
        int n = 0;
        if (role == HS_ROLE_FWD_X || role == HS_ROLE_FWD_W) {
            axes[n++] = C;
            axes[n++] = F;
        } else if (role == HS_ROLE_DGRAD_DY || role == HS_ROLE_DGRAD_W) {
            axes[n++] = 3 * C;
            axes[n++] = C;
            axes[n++] = 2 * F;
            if (r->quant_lm_head) axes[n++] = V;
        } else {
            axes[n++] = M;
        }
        for (int i = 0; i < n; i++)
            if (axes[i] % d)
                return hs_fail(HS_ERR_INVALID_ARG,
                               "recipe role %s has an RHT of size %d, which does not divide its "
                               "reduction axis of length %lld (model dim %lld, ffn %lld, "
                               "batch×seq %lld)",
                               hs_role_name((hs_role)role), d, (long long)axes[i], (long long)C,
                               (long long)F, (long long)M);
    }
    return HS_OK;
}

hs_status hs_train_config_validate(const hs_train_config *c) {
    hs_status st = hs_model_config_validate(&c->model);
    if (st != HS_OK) return st;
    if (c->batch < 1) return hs_fail(HS_ERR_INVALID_ARG, "--batch must be ≥ 1, got %d", c->batch);
    if (c->seq < 1) return hs_fail(HS_ERR_INVALID_ARG, "--seq must be ≥ 1, got %d", c->seq);
    if (c->seq > c->model.max_seq)
        return hs_fail(HS_ERR_INVALID_ARG,
                       "--seq %d is longer than the model's context (max_seq %d)", c->seq,
                       c->model.max_seq);
    if (c->accum < 1) return hs_fail(HS_ERR_INVALID_ARG, "--accum must be ≥ 1, got %d", c->accum);
    if (c->steps < 1)
        return hs_fail(HS_ERR_INVALID_ARG, "--steps must be ≥ 1, got %lld", (long long)c->steps);
    if (!(c->lr > 0) || !isfinite(c->lr))
        return hs_fail(HS_ERR_INVALID_ARG, "--lr must be > 0, got %g", c->lr);
    if (!(c->min_lr >= 0) || c->min_lr > c->lr)
        return hs_fail(HS_ERR_INVALID_ARG, "--min-lr must be in [0, lr = %g], got %g", c->lr,
                       c->min_lr);
    if (c->warmup < 0) return hs_fail(HS_ERR_INVALID_ARG, "--warmup must be ≥ 0");
    if (!(c->wd >= 0) || !isfinite(c->wd)) return hs_fail(HS_ERR_INVALID_ARG, "--wd must be ≥ 0");
    if (!(c->beta1 >= 0 && c->beta1 < 1) || !(c->beta2 >= 0 && c->beta2 < 1))
        return hs_fail(HS_ERR_INVALID_ARG, "AdamW betas must be in [0, 1)");
    if (!(c->eps > 0)) return hs_fail(HS_ERR_INVALID_ARG, "AdamW eps must be > 0");
    if (!(c->clip >= 0) || !isfinite(c->clip))
        return hs_fail(HS_ERR_INVALID_ARG, "--clip must be ≥ 0 (0 = off)");
    if (c->eval_every < 0 || c->save_every < 0)
        return hs_fail(HS_ERR_INVALID_ARG, "--eval-every and --save-every must be ≥ 0");
    if (c->eval_batches < 1)
        return hs_fail(HS_ERR_INVALID_ARG, "--eval-batches must be ≥ 1");
    if (c->threads < 0) return hs_fail(HS_ERR_INVALID_ARG, "--threads must be ≥ 0");
    if (c->ranks < 1) return hs_fail(HS_ERR_INVALID_ARG, "ranks must be ≥ 1, got %d", c->ranks);
    if (c->zero < 0 || c->zero > 1)
        return hs_fail(HS_ERR_INVALID_ARG, "--zero must be 0 or 1, got %d", c->zero);
    if (c->horizon < 0) return hs_fail(HS_ERR_INVALID_ARG, "the schedule's horizon must be ≥ 0");
    if (!(c->guard_loss_ratio >= 0) || !isfinite(c->guard_loss_ratio) ||
        (c->guard_loss_ratio > 0 && c->guard_loss_ratio <= 1))
        return hs_fail(HS_ERR_INVALID_ARG, "--guard-loss-ratio must be > 1, or 0 (off)");
    if (!(c->guard_grad_norm >= 0) || !isfinite(c->guard_grad_norm))
        return hs_fail(HS_ERR_INVALID_ARG, "--guard-grad-norm must be ≥ 0 (0 = off)");
    hs_recipe r;
    hs_recipe_opts ro = c->recipe;
    ro.n_layers = c->model.n_layers; // what `last` in --hp-layers names
    if ((st = hs_recipe_build(&ro, c->seed, &r)) != HS_OK) return st;
    if (c->model.n_layers < HS_RECIPE_MAX_LAYERS && (r.hp_layers >> c->model.n_layers))
        return hs_fail(HS_ERR_INVALID_ARG, "--hp-layers '%s' names a block ≥ %d, the model's "
                       "number of layers", c->recipe.hp_layers, c->model.n_layers);
    return check_rht(c, &r);
}

double hs_train_lr(const hs_train_config *c, int64_t s) {
    if (s < c->warmup) return c->lr * (double)(s + 1) / (double)c->warmup;
    int64_t span = (c->horizon > 0 ? c->horizon : c->steps) - c->warmup;
    if (span < 1) span = 1;
    double frac = (double)(s - c->warmup) / (double)span;
    if (frac > 1) frac = 1;
    return c->min_lr + (c->lr - c->min_lr) * 0.5 * (1.0 + cos(M_PI * frac));
}

hs_status hs_trainer_create(const hs_train_config *c, const hs_dataset *train,
                            const hs_dataset *val, hs_trainer **out) {
    *out = NULL;
    hs_status st = hs_train_config_validate(c);
    if (st != HS_OK) return st;
    if (!train) return hs_fail(HS_ERR_INVALID_ARG, "trainer: no training data");
    const hs_dataset *ds[2] = {train, val};
    const char *what[2] = {"training", "validation"};
    for (int i = 0; i < 2; i++) {
        if (!ds[i]) continue;
        if (hs_dataset_size(ds[i]) < (int64_t)c->seq + 1)
            return hs_fail(HS_ERR_INVALID_ARG,
                           "the %s data has %lld tokens, fewer than seq+1 = %d", what[i],
                           (long long)hs_dataset_size(ds[i]), c->seq + 1);
        int mx = hs_dataset_max_token(ds[i]);
        if (mx >= c->model.vocab)
            return hs_fail(HS_ERR_INVALID_ARG,
                           "the %s data holds token id %d but the model's vocabulary has only "
                           "%d entries (--vocab must be ≥ %d)",
                           what[i], mx, c->model.vocab, mx + 1);
    }
    if (c->ranks != hs_dist_size())
        return hs_fail(HS_ERR_INVALID_ARG,
                       "the configuration is for %d rank(s) but this job has %d", c->ranks,
                       hs_dist_size());
    hs_trainer *t = calloc(1, sizeof *t);
    if (!t) return hs_fail(HS_ERR_NOMEM, "trainer: out of memory");
    t->cfg = *c;
    t->train = train;
    t->val = val;
    t->rank = hs_dist_rank();
    t->nranks = c->ranks;
    if (c->threads > 0) omp_set_num_threads(c->threads); // OpenBLAS runs 1-threaded (hs_gemm_ctx_create)
    hs_recipe_opts ro = c->recipe;
    ro.n_layers = c->model.n_layers;
    if ((st = hs_recipe_build(&ro, c->seed, &t->recipe)) != HS_OK) goto fail;
    if ((st = hs_model_create(&c->model, &t->model)) != HS_OK) goto fail;
    hs_model_init_weights(t->model, c->seed);
    int64_t n = t->model->n_params;
    t->state.n_params = n;
    t->state.val_loss = NAN;
    t->state.m = calloc((size_t)n, sizeof(float));
    t->state.v = calloc((size_t)n, sizeof(float));
    int64_t bt = (int64_t)c->batch * c->seq;
    t->inputs = malloc(sizeof(int32_t) * (size_t)bt);
    t->targets = malloc(sizeof(int32_t) * (size_t)bt);
    int N = t->nranks;
    t->gsum = t->model->grads;
    t->losses = malloc(sizeof(float) * (size_t)N * (size_t)c->accum);
    t->eval_losses = malloc(sizeof(float) * (size_t)c->eval_batches);
    t->counts = malloc(sizeof(int) * (size_t)N);
    t->displs = malloc(sizeof(int) * (size_t)N);
    t->shard = malloc(sizeof(int64_t) * (size_t)(N + 1));
    if (!t->state.m || !t->state.v || !t->inputs || !t->targets || !t->losses ||
        !t->eval_losses || !t->counts || !t->displs || !t->shard) {
        st = hs_fail(HS_ERR_NOMEM, "trainer: out of memory");
        goto fail;
    }
    if (c->accum > 1 && !(t->gscratch = malloc(sizeof(float) * (size_t)n))) {
        st = hs_fail(HS_ERR_NOMEM, "trainer: out of memory");
        goto fail;
    }
    // shards: whole chunks of the gradient norm's partial sums, split evenly
    int64_t nch = (n + CHUNK - 1) / CHUNK;
    for (int r = 0; r <= N; r++) {
        int64_t e = nch * r / N * CHUNK;
        t->shard[r] = e < n ? e : n;
    }
    if (N > 1) {
        // buckets: model.norm + lm_head, each block from the last, embed_tokens (model.h)
        const hs_model *m = t->model;
        int L = c->model.n_layers, nb = 0;
        t->bucket = malloc(sizeof *t->bucket * (size_t)(L + 2));
        if (!t->bucket) {
            st = hs_fail(HS_ERR_NOMEM, "trainer: out of memory");
            goto fail;
        }
        int norm = 1 + L * 9;
        t->bucket[nb][0] = m->tensors[norm].offset, t->bucket[nb++][1] = n;
        for (int l = L - 1; l >= 0; l--)
            t->bucket[nb][0] = m->tensors[1 + l * 9].offset,
            t->bucket[nb++][1] = m->tensors[1 + (l + 1) * 9].offset;
        t->bucket[nb][0] = 0, t->bucket[nb++][1] = m->tensors[0].numel;
        t->n_buckets = nb;
        if ((st = hs_dist_xchg_create(n, t->shard, nb, c->zero == 0, &t->xchg)) != HS_OK)
            goto fail;
    }
    if ((st = hs_model_reserve(t->model, c->batch, c->seq)) != HS_OK) goto fail;
    *out = t;
    return HS_OK;
fail:
    hs_trainer_free(t);
    return st;
}

void hs_trainer_free(hs_trainer *t) {
    if (!t) return;
    if (t->model) t->model->grads = t->gsum ? t->gsum : t->model->grads;
    hs_model_free(t->model);
    free(t->state.m);
    free(t->state.v);
    free(t->inputs);
    free(t->targets);
    free(t->gscratch);
    free(t->losses);
    free(t->eval_losses);
    free(t->counts);
    free(t->displs);
    free(t->shard);
    free(t->bucket);
    hs_dist_xchg_free(t->xchg);
    free(t);
}

void hs_trainer_shards(const hs_trainer *t, int *counts, int *displs) {
    for (int r = 0; r < t->nranks; r++) {
        counts[r] = (int)(t->shard[r + 1] - t->shard[r]);
        displs[r] = (int)t->shard[r];
    }
}

hs_model *hs_trainer_model(hs_trainer *t) { return t->model; }
hs_train_state *hs_trainer_state(hs_trainer *t) { return &t->state; }
const hs_train_config *hs_trainer_config(const hs_trainer *t) { return &t->cfg; }
const hs_recipe *hs_trainer_recipe(const hs_trainer *t) { return &t->recipe; }

/* part[c] = Σ g² in double over chunk c (elements [c·CHUNK, min((c+1)·CHUNK, n))), one serial
 * sum per chunk, for the chunks c0 ≤ c < c1. */
static void sumsq_chunks(const float *g, int64_t n, int64_t c0, int64_t c1, double *part) {
    enum { CH = CHUNK };
    g += c0 * CH;
    part += c0;
    n -= c0 * CH;
    int64_t nch = c1 - c0;
    if (nch <= 0) return;
    if (n > nch * CH) n = nch * CH;
    // Why four chunks at a time: each chunk's sum is one serial chain of dependent double adds
    // (its order is fixed), so a lone chain waits on the add latency; four independent chains
    // interleaved keep the adder busy. Each chunk's sum is computed exactly as before.
    enum { LANES = 4 };
    int64_t nfull = n / CH, ngrp = nfull / LANES; // groups of LANES full chunks
#pragma omp parallel for schedule(static)
    for (int64_t q = 0; q < ngrp + (nch - ngrp * LANES); q++) {
        if (q < ngrp) {
            const float *g0 = g + q * LANES * CH;
            double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            for (int64_t i = 0; i < CH; i++) {
                s0 += (double)g0[i] * g0[i];
                s1 += (double)g0[i + CH] * g0[i + CH];
                s2 += (double)g0[i + 2 * CH] * g0[i + 2 * CH];
                s3 += (double)g0[i + 3 * CH] * g0[i + 3 * CH];
            }
            part[q * LANES] = s0, part[q * LANES + 1] = s1;
            part[q * LANES + 2] = s2, part[q * LANES + 3] = s3;
        } else { // the chunks left over, one at a time
            int64_t c = ngrp * LANES + (q - ngrp);
            int64_t i0 = c * CH, i1 = i0 + CH < n ? i0 + CH : n;
            double s = 0;
            for (int64_t i = i0; i < i1; i++) s += (double)g[i] * g[i];
            part[c] = s;
        }
    }
}

/* Σ g² over n values in double, over fixed 64K-element chunks summed in order. */
static double sumsq_fixed(const float *g, int64_t n) {
    int64_t nch = (n + CHUNK - 1) / CHUNK;
    double *part = malloc(sizeof(double) * (size_t)(nch ? nch : 1));
    if (!part) { // fall back to one serial pass (same value, slower)
        double s = 0;
        for (int64_t i = 0; i < n; i++) s += (double)g[i] * g[i];
        return s;
    }
    sumsq_chunks(g, n, 0, nch, part);
    double s = 0;
    for (int64_t c = 0; c < nch; c++) s += part[c];
    free(part);
    return s;
}

/* The backward observer (hs_model.grad_ready) of the last micro-batch when nranks > 1: start
 * the exchange of each bucket the pass has finished (with the micro-batch's gradient added into
 * the sum first when accumulating). Buckets come in backward order; one the pass did not
 * report (a micro-batch without targets skips it) is started when the pass ends. */
static void start_bucket(hs_trainer *t, int k) {
    int64_t b0 = t->bucket[k][0], b1 = t->bucket[k][1];
    if (t->adding) {
        float *dst = t->gsum, *src = t->gscratch;
#pragma omp parallel for schedule(static) if (b1 - b0 > 65536)
        for (int64_t i = b0; i < b1; i++) dst[i] += src[i];
    }
    hs_status st = hs_dist_xchg_start(t->xchg, t->gsum, b0, b1);
    if (st != HS_OK && t->hook_st == HS_OK) t->hook_st = st;
}

static void on_grads_ready(void *ctx, int64_t offset, int64_t count) {
    hs_trainer *t = ctx;
    (void)count;
    // the bucket starting at offset, and any before it the pass did not report
    int k = t->next_bucket;
    while (k < t->n_buckets && t->bucket[k][0] != offset) k++;
    if (k == t->n_buckets) return;
    for (; t->next_bucket <= k; t->next_bucket++) start_bucket(t, t->next_bucket);
}

/* The AdamW update of the elements [lo, hi) of the parameters (m, v hold [mlo, ...)). */
static void update_range(hs_trainer *t, int64_t lo, int64_t hi, int64_t mlo, double coef,
                         double lr, int64_t s) {
    const hs_train_config *c = &t->cfg;
    hs_model *m = t->model;
    for (int i = 0; i < m->n_tensors; i++) {
        const hs_param_tensor *pt = &m->tensors[i];
        int64_t a = pt->offset > lo ? pt->offset : lo;
        int64_t b = pt->offset + pt->numel < hi ? pt->offset + pt->numel : hi;
        if (b <= a) continue;
        float *p = m->params + a, *g = m->grads + a;
        float *mo = t->state.m + (a - mlo), *vo = t->state.v + (a - mlo);
        double wd = pt->decay ? c->wd : 0.0;
        if (coef < 1.0)
            hs_adamw_update_scaled(p, g, mo, vo, b - a, (float)coef, lr, c->beta1, c->beta2,
                                   c->eps, wd, s + 1);
        else
            hs_adamw_update(p, g, mo, vo, b - a, lr, c->beta1, c->beta2, c->eps, wd, s + 1);
    }
}

/* counts/displs (in elements) of every rank's shard, for the gathers. */
static void shard_layout(hs_trainer *t, int64_t unit) {
    for (int r = 0; r < t->nranks; r++) {
        t->counts[r] = (int)((t->shard[r + 1] - t->shard[r] + unit - 1) / unit);
        t->displs[r] = (int)(t->shard[r] / unit);
    }
}

/* ZeRO-1 with several ranks: keep only this rank's shard of the AdamW state. */
static hs_status shard_state(hs_trainer *t) {
    hs_train_state *st = &t->state;
    if (t->cfg.zero != 1 || t->nranks == 1 || st->sharded) return HS_OK;
    int64_t lo = t->shard[t->rank], n = t->shard[t->rank + 1] - lo;
    float *m = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    float *v = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    if (!m || !v) {
        free(m);
        free(v);
        return hs_fail(HS_ERR_NOMEM, "trainer: out of memory");
    }
    memcpy(m, st->m + lo, sizeof(float) * (size_t)n);
    memcpy(v, st->v + lo, sizeof(float) * (size_t)n);
    free(st->m);
    free(st->v);
    st->m = m;
    st->v = v;
    st->sharded = 1;
    st->shard_lo = lo;
    st->shard_n = n;
    return HS_OK;
}

/* The micro-batches of this step on this rank: forward, backward into a zeroed buffer, summed in
 * order; with several ranks, the exchange of the last one's buckets started by the hook. */
static hs_status run_micro_batches(hs_trainer *t, int64_t s) {
    const hs_train_config *c = &t->cfg;
    hs_model *m = t->model;
    const int N = t->nranks, A = c->accum;
    const float scale = 1.0f / (float)(N * A);
    hs_status st;
    for (int j = 0; j < A; j++) {
        int micro = t->rank * A + j; // the global micro-batch index
        if ((st = hs_dataset_batch(t->train, c->seed, s, micro, c->batch, c->seq, t->inputs,
                                   t->targets)) != HS_OK)
            return st;
        float loss;
        if ((st = hs_model_forward(m, &t->recipe, (uint64_t)s, t->inputs, t->targets, c->batch,
                                   c->seq, &loss)) != HS_OK)
            return st;
        t->losses[micro] = loss;
        // alone, stop at once; with several ranks, every rank must reach the exchange first
        if (!isfinite(loss) && N == 1)
            return hs_fail(HS_ERR_NUMERIC,
                           "training loss is %s at step %lld (micro-batch %d); stopping without "
                           "updating the weights",
                           isnan(loss) ? "NaN" : "Inf", (long long)s + 1, micro);
        int last = j == A - 1;
        m->grads = j > 0 ? t->gscratch : t->gsum;
        hs_model_zero_grad(m);
        if (last && N > 1) {
            t->adding = j > 0;
            t->next_bucket = 0;
            t->hook_st = HS_OK;
            m->grad_ready = on_grads_ready;
            m->grad_ready_ctx = t;
        }
        st = hs_model_backward(m, &t->recipe, (uint64_t)s, scale);
        m->grad_ready = NULL;
        if (st == HS_OK && last && N > 1) {
            while (t->next_bucket < t->n_buckets) start_bucket(t, t->next_bucket++);
            st = t->hook_st;
        } else if (st == HS_OK && j > 0) {
            float *dst = t->gsum, *src = t->gscratch;
            int64_t n = m->n_params;
#pragma omp parallel for schedule(static)
            for (int64_t i = 0; i < n; i++) dst[i] += src[i];
        }
        m->grads = t->gsum;
        if (st != HS_OK) return st;
    }
    return HS_OK;
}

hs_status hs_trainer_step(hs_trainer *t, hs_step_metrics *out) {
    const hs_train_config *c = &t->cfg;
    hs_model *m = t->model;
    int64_t s = t->state.step; // 0-based index of this step
    const int N = t->nranks, A = c->accum, zero1 = c->zero == 1 && N > 1;
    double t0 = omp_get_wtime();
    double lr = hs_train_lr(c, s);
    hs_status st = shard_state(t);
    if (st != HS_OK) return st;
    t->comm_s = 0;
    t->comm_bytes = 0;
    if ((st = run_micro_batches(t, s)) != HS_OK) return st;
    if (N > 1) {
        if ((st = hs_dist_xchg_finish(t->xchg, &t->comm_s, &t->comm_bytes)) != HS_OK) return st;
        double tc = omp_get_wtime();
        if ((st = hs_dist_allgather_f32(t->losses + t->rank * A, A, t->losses)) != HS_OK)
            return st;
        t->comm_s += omp_get_wtime() - tc;
    }
    double loss_sum = 0;
    for (int g = 0; g < N * A; g++) {
        if (!isfinite(t->losses[g]))
            return hs_fail(HS_ERR_NUMERIC,
                           "training loss is %s at step %lld (micro-batch %d); stopping without "
                           "updating the weights",
                           isnan(t->losses[g]) ? "NaN" : "Inf", (long long)s + 1, g);
        loss_sum += t->losses[g];
    }
    double norm;
    if (zero1) { // the owners' chunk sums, gathered, added in chunk order
        int64_t n = m->n_params, nch = (n + CHUNK - 1) / CHUNK;
        double *part = malloc(sizeof(double) * (size_t)(nch ? nch : 1));
        if (!part) return hs_fail(HS_ERR_NOMEM, "trainer: out of memory");
        int64_t c0 = t->shard[t->rank] / CHUNK, c1 = (t->shard[t->rank + 1] + CHUNK - 1) / CHUNK;
        sumsq_chunks(m->grads, n, c0, c1, part);
        shard_layout(t, CHUNK);
        double tc = omp_get_wtime();
        st = hs_dist_allgatherv_f64(part, t->counts, t->displs);
        t->comm_s += omp_get_wtime() - tc;
        double sum = 0;
        for (int64_t k = 0; k < nch; k++) sum += part[k];
        free(part);
        if (st != HS_OK) return st;
        norm = sqrt(sum);
    } else {
        norm = sqrt(sumsq_fixed(m->grads, m->n_params));
    }
    if (!isfinite(norm))
        return hs_fail(HS_ERR_NUMERIC,
                       "gradient norm is %s at step %lld; stopping without updating the weights",
                       isnan(norm) ? "NaN" : "Inf", (long long)s + 1);
    double loss = loss_sum / (N * A);
    if (c->guard_grad_norm > 0 && norm > c->guard_grad_norm)
        return hs_fail(HS_ERR_NUMERIC,
                       "divergence guard: the gradient norm is %.4g at step %lld, above "
                       "--guard-grad-norm %g; stopping without updating the weights",
                       norm, (long long)s + 1, c->guard_grad_norm);
    double ema = s > 0 && t->state.loss_ema > 0 ? 0.9 * t->state.loss_ema + 0.1 * loss : loss;
    double best = t->state.loss_best > 0 && t->state.loss_best < ema ? t->state.loss_best : ema;
    if (c->guard_loss_ratio > 0 && s >= c->warmup && t->state.loss_best > 0 &&
        ema > c->guard_loss_ratio * t->state.loss_best)
        return hs_fail(HS_ERR_NUMERIC,
                       "divergence guard: the smoothed training loss is %.4f at step %lld "
                       "(this step %.4f), above --guard-loss-ratio %g times its best %.4f; "
                       "stopping without updating the weights",
                       ema, (long long)s + 1, loss, c->guard_loss_ratio, t->state.loss_best);
    // torch.nn.utils.clip_grad_norm_: coef = max_norm / (norm + 1e-6), applied if < 1; the
    // update then multiplies each gradient by (float)coef before using it and stores it back
    // (hs_adamw_update_scaled), the same values as a separate scaling pass.
    double coef = c->clip > 0 ? c->clip / (norm + 1e-6) : 1.0;
    if (zero1) { // update the own shard, then every rank's shard to every rank
        update_range(t, t->shard[t->rank], t->shard[t->rank + 1], t->state.shard_lo, coef, lr,
                     s);
        shard_layout(t, 1);
        double tc = omp_get_wtime();
        st = hs_dist_allgatherv_f32(m->params, t->counts, t->displs);
        t->comm_s += omp_get_wtime() - tc;
        t->comm_bytes += (int64_t)sizeof(float) * t->counts[t->rank] * (N - 1);
        if (st != HS_OK) return st;
    } else {
        update_range(t, 0, m->n_params, 0, coef, lr, s);
    }
    t->state.step = s + 1;
    t->state.tokens += (int64_t)N * A * c->batch * c->seq;
    t->state.loss_ema = ema;
    t->state.loss_best = best;
    t->state.val_loss = NAN;
    double dt = omp_get_wtime() - t0;
    if (out) {
        out->step = t->state.step;
        out->tokens = t->state.tokens;
        out->train_loss = loss;
        out->val_loss = NAN;
        out->lr = lr;
        out->grad_norm = norm;
        out->ms_per_step = dt * 1e3;
        out->tokens_per_s = (double)N * A * c->batch * c->seq / (dt > 0 ? dt : 1e-9);
        out->comm_ms = t->comm_s * 1e3;
        out->comm_bytes = t->comm_bytes;
    }
    return HS_OK;
}

hs_status hs_trainer_eval(hs_trainer *t, double *val_loss) {
    const hs_train_config *c = &t->cfg;
    if (!t->val) return hs_fail(HS_ERR_INVALID_ARG, "trainer: no validation data");
    hs_status st;
    // rank r evaluates the batches [E·r/N, E·(r+1)/N); the losses are added in batch order
    const int N = t->nranks, E = c->eval_batches;
    for (int r = 0; r < N; r++) {
        t->displs[r] = (int)((int64_t)E * r / N);
        t->counts[r] = (int)((int64_t)E * (r + 1) / N) - t->displs[r];
    }
    int k0 = t->displs[t->rank], k1 = k0 + t->counts[t->rank];
    for (int k = k0; k < k1; k++) {
        if ((st = hs_dataset_eval_batch(t->val, k, c->batch, c->seq, t->inputs, t->targets)))
            return st;
        float loss;
        // the step of the last update (its SR/RHT seeds), 0 before the first
        uint64_t step = t->state.step > 0 ? (uint64_t)(t->state.step - 1) : 0;
        if ((st = hs_model_forward(t->model, &t->recipe, step, t->inputs, t->targets, c->batch,
                                   c->seq, &loss)) != HS_OK)
            return st;
        t->eval_losses[k] = loss;
    }
    if ((st = hs_dist_allgatherv_f32(t->eval_losses, t->counts, t->displs)) != HS_OK) return st;
    double sum = 0;
    for (int k = 0; k < E; k++) sum += t->eval_losses[k];
    *val_loss = sum / c->eval_batches;
    return HS_OK;
}

/* metrics.csv */
#define METRICS_HEADER "step,tokens,train_loss,val_loss,lr,grad_norm,ms_per_step,tokens_per_s\n"

static void write_row(FILE *f, const hs_step_metrics *r) {
    char val[32] = "";
    if (!isnan(r->val_loss)) snprintf(val, sizeof val, "%.6f", r->val_loss);
    fprintf(f, "%lld,%lld,%.6f,%s,%.6e,%.6f,%.2f,%.1f\n", (long long)r->step,
            (long long)r->tokens, r->train_loss, val, r->lr, r->grad_norm, r->ms_per_step,
            r->tokens_per_s);
}

/* Open out_dir/metrics.csv for appending: fresh (header only) at step 0; when resuming, keep
 * the header and the rows up to the current step, atomically, so the file continues exactly. */
static hs_status open_metrics(hs_trainer *t, FILE **out) {
    *out = NULL;
    const hs_train_config *c = &t->cfg;
    if (!c->out_dir[0] || t->rank != 0) return HS_OK; // rank 0 alone writes it
    hs_status st = hs_mkdir_p(c->out_dir);
    if (st != HS_OK) return st;
    char path[4200];
    snprintf(path, sizeof path, "%s/metrics.csv", c->out_dir);
    char *old = NULL;
    size_t old_n = 0;
    size_t cap = 0, len = 0;
    char *keep = NULL;
    if (t->state.step > 0 && hs_is_file(path) &&
        hs_file_read_all(path, (size_t)1 << 30, &old, &old_n) == HS_OK) {
        keep = malloc(old_n + sizeof METRICS_HEADER);
        cap = old_n + sizeof METRICS_HEADER;
        if (!keep) {
            free(old);
            return hs_fail(HS_ERR_NOMEM, "out of memory");
        }
        char *line = old, *end = old + old_n;
        memcpy(keep, METRICS_HEADER, sizeof METRICS_HEADER - 1);
        len = sizeof METRICS_HEADER - 1;
        while (line < end) {
            char *nl = memchr(line, '\n', (size_t)(end - line));
            size_t ll = nl ? (size_t)(nl - line) + 1 : (size_t)(end - line);
            char *e;
            long long step = strtoll(line, &e, 10);
            if (e != line && *e == ',' && step >= 1 && step <= t->state.step && nl &&
                len + ll <= cap) {
                memcpy(keep + len, line, ll);
                len += ll;
            }
            line += ll;
        }
        free(old);
    } else {
        keep = malloc(sizeof METRICS_HEADER);
        if (!keep) return hs_fail(HS_ERR_NOMEM, "out of memory");
        memcpy(keep, METRICS_HEADER, sizeof METRICS_HEADER - 1);
        len = sizeof METRICS_HEADER - 1;
    }
    st = hs_file_write_atomic(path, keep, len);
    free(keep);
    if (st != HS_OK) return st;
    FILE *f = fopen(path, "a");
    if (!f) return hs_fail(HS_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    *out = f;
    return HS_OK;
}

hs_status hs_trainer_run(hs_trainer *t, const hs_train_hooks *hooks) {
    const hs_train_config *c = &t->cfg;
    hs_train_hooks none = {0};
    if (!hooks) hooks = &none;
    FILE *mf;
    hs_status st = open_metrics(t, &mf);
    if (st != HS_OK) return st;
    int64_t first = t->state.step;
    double t_start = omp_get_wtime();
    int stop = 0;
    while (t->state.step < c->steps && !stop) {
        hs_step_metrics row;
        if ((st = hs_trainer_step(t, &row)) != HS_OK) break;
        int64_t s = row.step;
        int last = s == c->steps;
        if (t->val && ((c->eval_every > 0 && s % c->eval_every == 0) || last)) {
            double vl;
            if ((st = hs_trainer_eval(t, &vl)) != HS_OK) break;
            if (!isfinite(vl)) {
                st = hs_fail(HS_ERR_NUMERIC, "validation loss is %s at step %lld; stopping",
                             isnan(vl) ? "NaN" : "Inf", (long long)s);
                break;
            }
            row.val_loss = vl;
            t->state.val_loss = vl;
        }
        if (mf) {
            write_row(mf, &row);
            fflush(mf);
        }
        double el = omp_get_wtime() - t_start;
        double eta = el / (double)(s - first) * (double)(c->steps - s);
        if (hooks->progress) stop = hooks->progress(hooks->ctx, &row, c->steps, eta);
        if (t->nranks > 1) stop = hs_dist_max_int(stop); // the ranks stop at the same step
        if (hooks->save && ((c->save_every > 0 && s % c->save_every == 0) || last || stop))
            if ((st = hooks->save(hooks->ctx, t)) != HS_OK) break;
    }
    if (mf && fclose(mf) != 0 && st == HS_OK)
        st = hs_fail(HS_ERR_IO, "writing metrics.csv failed: %s", strerror(errno));
    return st;
}

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
#include "train/fileio.h"

struct hs_trainer {
    hs_train_config cfg;
    hs_recipe recipe;
    hs_model *model;
    hs_train_state state;
    const hs_dataset *train, *val;
    int32_t *inputs, *targets; // (B, T)
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
    if (c->horizon < 0) return hs_fail(HS_ERR_INVALID_ARG, "the schedule's horizon must be ≥ 0");
    if (!(c->guard_loss_ratio >= 0) || !isfinite(c->guard_loss_ratio) ||
        (c->guard_loss_ratio > 0 && c->guard_loss_ratio <= 1))
        return hs_fail(HS_ERR_INVALID_ARG, "--guard-loss-ratio must be > 1, or 0 (off)");
    if (!(c->guard_grad_norm >= 0) || !isfinite(c->guard_grad_norm))
        return hs_fail(HS_ERR_INVALID_ARG, "--guard-grad-norm must be ≥ 0 (0 = off)");
    hs_recipe r;
    if ((st = hs_recipe_build(&c->recipe, c->seed, &r)) != HS_OK) return st;
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
    hs_trainer *t = calloc(1, sizeof *t);
    if (!t) return hs_fail(HS_ERR_NOMEM, "trainer: out of memory");
    t->cfg = *c;
    t->train = train;
    t->val = val;
    if (c->threads > 0) omp_set_num_threads(c->threads); // OpenBLAS runs 1-threaded (hs_gemm_ctx_create)
    if ((st = hs_recipe_build(&c->recipe, c->seed, &t->recipe)) != HS_OK) goto fail;
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
    if (!t->state.m || !t->state.v || !t->inputs || !t->targets) {
        st = hs_fail(HS_ERR_NOMEM, "trainer: out of memory");
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
    hs_model_free(t->model);
    free(t->state.m);
    free(t->state.v);
    free(t->inputs);
    free(t->targets);
    free(t);
}

hs_model *hs_trainer_model(hs_trainer *t) { return t->model; }
hs_train_state *hs_trainer_state(hs_trainer *t) { return &t->state; }
const hs_train_config *hs_trainer_config(const hs_trainer *t) { return &t->cfg; }
const hs_recipe *hs_trainer_recipe(const hs_trainer *t) { return &t->recipe; }

/* Σ g² over n values in double, over fixed 64K-element chunks summed in order. */
static double sumsq_fixed(const float *g, int64_t n) {
    enum { CH = 1 << 16 };
    int64_t nch = (n + CH - 1) / CH;
    double *part = malloc(sizeof(double) * (size_t)(nch ? nch : 1));
    if (!part) { // fall back to one serial pass (same value, slower)
        double s = 0;
        for (int64_t i = 0; i < n; i++) s += (double)g[i] * g[i];
        return s;
    }
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
    double s = 0;
    for (int64_t c = 0; c < nch; c++) s += part[c];
    free(part);
    return s;
}

hs_status hs_trainer_step(hs_trainer *t, hs_step_metrics *out) {
    const hs_train_config *c = &t->cfg;
    hs_model *m = t->model;
    int64_t s = t->state.step; // 0-based index of this step
    double t0 = omp_get_wtime();
    double lr = hs_train_lr(c, s);
    hs_model_zero_grad(m);
    double loss_sum = 0;
    hs_status st;
    for (int micro = 0; micro < c->accum; micro++) {
        if ((st = hs_dataset_batch(t->train, c->seed, s, micro, c->batch, c->seq, t->inputs,
                                   t->targets)) != HS_OK)
            return st;
        float loss;
        if ((st = hs_model_forward(m, &t->recipe, (uint64_t)s, t->inputs, t->targets, c->batch,
                                   c->seq, &loss)) != HS_OK)
            return st;
        if (!isfinite(loss))
            return hs_fail(HS_ERR_NUMERIC,
                           "training loss is %s at step %lld (micro-batch %d); stopping without "
                           "updating the weights",
                           isnan(loss) ? "NaN" : "Inf", (long long)s + 1, micro);
        if ((st = hs_model_backward(m, &t->recipe, (uint64_t)s, 1.0f / (float)c->accum)))
            return st;
        loss_sum += loss;
    }
    double norm = sqrt(sumsq_fixed(m->grads, m->n_params));
    if (!isfinite(norm))
        return hs_fail(HS_ERR_NUMERIC,
                       "gradient norm is %s at step %lld; stopping without updating the weights",
                       isnan(norm) ? "NaN" : "Inf", (long long)s + 1);
    double loss = loss_sum / c->accum;
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
    for (int i = 0; i < m->n_tensors; i++) {
        const hs_param_tensor *pt = &m->tensors[i];
        float *p = m->params + pt->offset, *g = m->grads + pt->offset;
        float *mo = t->state.m + pt->offset, *vo = t->state.v + pt->offset;
        double wd = pt->decay ? c->wd : 0.0;
        if (coef < 1.0)
            hs_adamw_update_scaled(p, g, mo, vo, pt->numel, (float)coef, lr, c->beta1, c->beta2,
                                   c->eps, wd, s + 1);
        else
            hs_adamw_update(p, g, mo, vo, pt->numel, lr, c->beta1, c->beta2, c->eps, wd, s + 1);
    }
    t->state.step = s + 1;
    t->state.tokens += (int64_t)c->accum * c->batch * c->seq;
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
        out->tokens_per_s = (double)c->accum * c->batch * c->seq / (dt > 0 ? dt : 1e-9);
    }
    return HS_OK;
}

hs_status hs_trainer_eval(hs_trainer *t, double *val_loss) {
    const hs_train_config *c = &t->cfg;
    if (!t->val) return hs_fail(HS_ERR_INVALID_ARG, "trainer: no validation data");
    double sum = 0;
    hs_status st;
    for (int k = 0; k < c->eval_batches; k++) {
        if ((st = hs_dataset_eval_batch(t->val, k, c->batch, c->seq, t->inputs, t->targets)))
            return st;
        float loss;
        // the step of the last update (its SR/RHT seeds), 0 before the first
        uint64_t step = t->state.step > 0 ? (uint64_t)(t->state.step - 1) : 0;
        if ((st = hs_model_forward(t->model, &t->recipe, step, t->inputs, t->targets, c->batch,
                                   c->seq, &loss)) != HS_OK)
            return st;
        sum += loss;
    }
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
    if (!c->out_dir[0]) return HS_OK;
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
        if (hooks->save && ((c->save_every > 0 && s % c->save_every == 0) || last || stop))
            if ((st = hooks->save(hooks->ctx, t)) != HS_OK) break;
    }
    if (mf && fclose(mf) != 0 && st == HS_OK)
        st = hs_fail(HS_ERR_IO, "writing metrics.csv failed: %s", strerror(errno));
    return st;
}

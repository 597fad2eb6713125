/* test_torch.c: halfs's model against PyTorch (tests/torch_ref.py), where Debian's
 * python3-torch is installed: same weights, same batches ⇒ same logits, loss, every gradient,
 * and the same 10-step AdamW loss trajectory (constant lr, weight decay on matrices only,
 * global-norm clipping). Skipped (not failed) when /usr/bin/python3 cannot import torch.
 * Run it alone with: make test  (or build/tests/test_torch from the repository root).
 *
 * Tolerances: both sides compute in fp32 with different summation orders (and halfs uses its
 * own vectorised exp), so values agree to a few float ulps scaled by the reduction lengths
 * (≤ 64 terms here): logits and loss to 1e-5 relative, each gradient tensor to 1e-4 relative in
 * 2-norm. AdamW divides by sqrt(v), which amplifies tiny gradient differences where g ≈ 0, so
 * the loss trajectory is held to 1e-4 relative per step.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "train/dataset.h"
#include "train/trainer.h"

#define PY "/usr/bin/python3"
enum { B = 2, T = 16, STEPS = 10 };

static int have_torch(void) {
    if (access(PY, X_OK) != 0) return 0;
    return system(PY " -c 'import torch, numpy' >/dev/null 2>&1") == 0;
}

/* tests/torch_ref.py next to this test's source: from the executable (BUILD/tests/test_torch
 * → ../../tests/) or from the working directory (the repository root under `make test`). */
static int find_script(char *out, size_t n) {
    char exe[PATH_MAX];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (k > 0) {
        exe[k] = '\0';
        char *s = strrchr(exe, '/');
        if (s) {
            *s = '\0';
            if (strlen(exe) + 32 < n) {
                memcpy(out, exe, strlen(exe));
                memcpy(out + strlen(exe), "/../../tests/torch_ref.py", 26);
                if (access(out, R_OK) == 0) return 1;
            }
        }
    }
    snprintf(out, n, "tests/torch_ref.py");
    return access(out, R_OK) == 0;
}

static void write_file(const char *dir, const char *name, const void *p, size_t bytes) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, bytes, f), bytes);
    fclose(f);
}

static float *read_f32(const char *dir, const char *name, size_t n) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("torch_ref.py did not write %s", name);
    float *p = malloc(n * sizeof(float));
    size_t got = fread(p, sizeof(float), n, f);
    fclose(f);
    if (got != n) fail_msg("%s: %zu floats, expected %zu", name, got, n);
    unlink(path);
    return p;
}

typedef struct {
    char dir[512];
    hs_dataset *d;
    hs_trainer *t;
    hs_train_config c;
    int32_t batches[STEPS][2][B * T];
} run_t;

/* Write the reference's inputs for one model (tied or not) into a fresh directory. */
static void prepare(run_t *R, int tied) {
    char *dir = R->dir;
    const char *base = getenv("TMPDIR");
    snprintf(dir, sizeof R->dir, "%s/halfs-torch-XXXXXX", base && *base ? base : "/tmp");
    assert_non_null(mkdtemp(dir));
    // data: a pseudo-random text of period 50, so ten steps already lower the loss
    enum { NTOK = 4000 };
    uint16_t tok[NTOK], period[50];
    uint64_t x = 12345;
    for (int i = 0; i < 50; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        period[i] = (uint16_t)((x >> 33) % 64);
    }
    for (int i = 0; i < NTOK; i++) tok[i] = period[i % 50];
    hs_dataset *d;
    assert_int_equal(hs_dataset_from_tokens(tok, NTOK, &d), HS_OK);
    hs_train_config c;
    hs_train_config_defaults(&c);
    c.model = (hs_model_config){64, 32, 2, 4, 64, 16, 10000.0f, 1e-5f, tied};
    snprintf(c.recipe.name, sizeof c.recipe.name, "fp32");
    c.batch = B;
    c.seq = T;
    c.steps = STEPS;
    c.lr = 1e-2;
    c.min_lr = 1e-2; // constant schedule
    c.warmup = 0;
    c.wd = 0.1;
    c.clip = 1.0;
    c.seed = 5;
    hs_trainer *t;
    assert_int_equal(hs_trainer_create(&c, d, NULL, &t), HS_OK);
    hs_model *m = hs_trainer_model(t);
    R->d = d;
    R->t = t;
    R->c = c;
    // inputs of the reference
    FILE *f;
    char path[600];
    snprintf(path, sizeof path, "%s/meta.txt", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "vocab %d\ndim %d\nlayers %d\nheads %d\nffn %d\nrope_theta %.1f\neps %.9e\n",
            c.model.vocab, c.model.dim, c.model.n_layers, c.model.n_heads, c.model.ffn_dim,
            (double)c.model.rope_theta, (double)c.model.norm_eps);
    fprintf(f, "batch %d\nseq %d\nsteps %d\nlr %.9e\nwd %.9e\nbeta1 %.9e\nbeta2 %.9e\n"
               "adam_eps %.9e\nclip %.9e\n",
            B, T, STEPS, c.lr, c.wd, c.beta1, c.beta2, c.eps, c.clip);
    for (int i = 0; i < m->n_tensors; i++) {
        const hs_param_tensor *pt = &m->tensors[i];
        fprintf(f, "tensor %s %lld %lld %d %lld", pt->name, (long long)pt->offset,
                (long long)pt->numel, pt->ndim, (long long)pt->shape[0]);
        if (pt->ndim == 2) fprintf(f, " %lld", (long long)pt->shape[1]);
        fprintf(f, "\n");
    }
    fclose(f);
    write_file(dir, "params.f32", m->params, sizeof(float) * (size_t)m->n_params);
    for (int s = 0; s < STEPS; s++)
        assert_int_equal(hs_dataset_batch(d, c.seed, s, 0, B, T, R->batches[s][0],
                                          R->batches[s][1]),
                         HS_OK);
    write_file(dir, "batches.i32", R->batches, sizeof R->batches);
}

/* Compare halfs with what the reference wrote. */
static void check(run_t *R, int tied) {
    const char *dir = R->dir;
    hs_trainer *t = R->t;
    hs_dataset *d = R->d;
    hs_train_config c = R->c;
    hs_model *m = hs_trainer_model(t);
    int32_t (*batches)[2][B * T] = R->batches;
    FILE *f;

    // step 0's batch: logits, loss, gradients
    float loss;
    hs_model_zero_grad(m);
    assert_int_equal(hs_model_forward(m, NULL, 0, batches[0][0], batches[0][1], B, T, &loss),
                     HS_OK);
    int64_t nl = (int64_t)B * T * c.model.vocab;
    float *tl = read_f32(dir, "logits.f32", (size_t)nl);
    const float *lg = hs_model_logits(m);
    double mx = 0, md = 0;
    for (int64_t i = 0; i < nl; i++) {
        mx = fmax(mx, fabs(tl[i]));
        md = fmax(md, fabs(tl[i] - lg[i]));
    }
    printf("  tied=%d: logits max |diff| %.3g (max |logit| %.3g)\n", tied, md, mx);
    assert_true(md <= 1e-5 * mx + 1e-7);
    float *tloss = read_f32(dir, "loss.f32", 1);
    printf("  loss halfs %.7f torch %.7f\n", loss, tloss[0]);
    assert_true(fabs(loss - tloss[0]) <= 1e-5 * fabs(tloss[0]));
    assert_int_equal(hs_model_backward(m, NULL, 0, 1.0f), HS_OK);
    float *tg = read_f32(dir, "grads.f32", (size_t)m->n_params);
    double worst = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const hs_param_tensor *pt = &m->tensors[i];
        double dn = 0, gn = 0;
        for (int64_t j = 0; j < pt->numel; j++) {
            double a = m->grads[pt->offset + j], b = tg[pt->offset + j];
            dn += (a - b) * (a - b);
            gn += b * b;
        }
        double rel = sqrt(dn) / (sqrt(gn) + 1e-30);
        worst = fmax(worst, rel);
        if (!(rel <= 1e-4)) fail_msg("gradient of %s differs from torch: relative %.3g", pt->name, rel);
    }
    printf("  gradients: worst relative 2-norm difference %.3g\n", worst);
    // the trajectory: the trainer from the same initial weights (restore them first)
    char pp[600];
    snprintf(pp, sizeof pp, "%s/params.f32", dir);
    f = fopen(pp, "rb");
    assert_non_null(f);
    assert_int_equal(fread(m->params, sizeof(float), (size_t)m->n_params, f), (size_t)m->n_params);
    fclose(f);
    unlink(pp);
    float *tlos = read_f32(dir, "losses.f32", STEPS);
    for (int s = 0; s < STEPS; s++) {
        hs_step_metrics r;
        assert_int_equal(hs_trainer_step(t, &r), HS_OK);
        printf("  step %d: halfs %.7f torch %.7f\n", s + 1, r.train_loss, tlos[s]);
        if (!(fabs(r.train_loss - tlos[s]) <= 1e-4 * fabs(tlos[s])))
            fail_msg("step %d: loss %.7f vs torch %.7f", s + 1, r.train_loss, tlos[s]);
    }
    assert_true(tlos[STEPS - 1] < tlos[0]); // it did train
    free(tl), free(tloss), free(tg), free(tlos);
    hs_trainer_free(t);
    hs_dataset_close(d);
    snprintf(pp, sizeof pp, "%s/meta.txt", dir);
    unlink(pp);
    snprintf(pp, sizeof pp, "%s/batches.i32", dir);
    unlink(pp);
    rmdir(dir);
}

/* One Python process (importing torch takes seconds) for both models. */
static void test_torch(void **state) {
    (void)state;
    if (!have_torch()) skip();
    static run_t R[2];
    prepare(&R[0], 0);
    prepare(&R[1], 1);
    char script[PATH_MAX], cmd[2 * PATH_MAX + 1200];
    assert_true(find_script(script, sizeof script));
    snprintf(cmd, sizeof cmd, PY " '%s' '%s' '%s'", script, R[0].dir, R[1].dir);
    assert_int_equal(system(cmd), 0);
    check(&R[0], 0);
    check(&R[1], 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_torch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

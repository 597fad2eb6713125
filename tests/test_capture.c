/* test_capture.c: `halfs capture` (tools/cmd_capture.c) and the model's operand hook
 * (hs_model.capture) it uses.
 *
 * A tiny model is trained for two steps through the CLI, then captured on a fixed batch in
 * fp32. The captured tensors must be the linear layers' real operands, in the documented
 * layout: the weights equal the checkpoint's (q,k,v and gate,up fused back to back), and for
 * every layer X and dY reproduce the weight gradient that the model itself computes on the same
 * batch, dW = dYᵀ·X, within the fp32 accumulation bound. Bad input exits 1 and leaves nothing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "nn/model.h"
#include "train/checkpoint.h"
#include "train/dataset.h"
#include "nn/recipe.h"
#include "util.h"

#define B 2
#define T 16
#define PATH_N 1024

static char shard[PATH_N], run_dir[PATH_N], cap_dir[PATH_N];

static int exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

/* Train 2 steps of a 1-layer model on random tokens, then capture it (once for all tests). */
static int setup(void **state) {
    if (util_scratch_setup(state) != 0 || !util_cli_bin()) return 0;
    util_path(shard, sizeof shard, "data.bin");
    util_path(run_dir, sizeof run_dir, "run");
    util_path(cap_dir, sizeof cap_dir, "cap");
    uint16_t tok[4096];
    uint64_t s = 7;
    for (int i = 0; i < 4096; i++) tok[i] = (uint16_t)(util_splitmix64(&s) % 200);
    if (hs_shard_write(shard, tok, 4096) != HS_OK) return -1;
    if (util_run(NULL, NULL, "train", "--model", "nano", "--dim", "32", "--layers", "1",
                 "--heads", "2", "--ffn", "64", "--vocab", "200", "--recipe", "fp32", "--data",
                 shard, "--val", shard, "--steps", "2", "--batch", "2", "--seq", "16",
                 "--eval-every", "0", "--eval-batches", "1", "--threads", "1", "--quiet", "--out",
                 run_dir, NULL) != 0)
        return -1;
    if (util_run(NULL, NULL, "capture", run_dir, "--data", shard, "--batch", "2", "--seq", "16",
                 "--window", "3", "--recipe", "fp32", "--out", cap_dir, NULL) != 0)
        return -1;
    return 0;
}

typedef struct {
    char name[128], role[8], file[192];
    long long rows, cols;
} entry;

/* manifest.csv → entries; returns the count. */
static int read_manifest(entry *e, int max) {
    char p[PATH_N + 32];
    snprintf(p, sizeof p, "%s/manifest.csv", cap_dir);
    char *text = util_read_file(p, NULL);
    assert_non_null(strstr(text, "name,layer,role,rows,cols,file\n"));
    int n = 0;
    for (char *line = strchr(text, '\n') + 1; *line && n < max; line = strchr(line, '\n') + 1) {
        int layer;
        assert_int_equal(sscanf(line, "%127[^,],%d,%7[^,],%lld,%lld,%191[^\n]", e[n].name, &layer,
                                e[n].role, &e[n].rows, &e[n].cols, e[n].file),
                         6);
        assert_int_equal(layer, 0);
        n++;
    }
    free(text);
    return n;
}

static float *load(const entry *e) {
    char p[PATH_N + 200];
    snprintf(p, sizeof p, "%s/%s", cap_dir, e->file);
    size_t n;
    float *d = (float *)util_read_file(p, &n);
    assert_int_equal(n, (size_t)(e->rows * e->cols) * sizeof(float));
    return d;
}

static const entry *find(const entry *e, int n, const char *name, const char *role) {
    for (int i = 0; i < n; i++)
        if (strstr(e[i].name, name) && !strcmp(e[i].role, role)) return &e[i];
    fail_msg("no %s %s in the manifest", name, role);
    return NULL;
}

/* Shapes of every tensor: C = 32, F = 64, B·T = 32 tokens. */
static void test_manifest_shapes(void **state) {
    (void)state;
    UTIL_NEED_CLI();
    entry e[32];
    int n = read_manifest(e, 32);
    assert_int_equal(n, 12); /* 1 layer × 4 linears × {w, x, dy} */
    static const struct { const char *name; long long out, in; } lin[4] = {
        {"self_attn.qkv_proj", 96, 32}, {"self_attn.o_proj", 32, 32},
        {"mlp.gate_up_proj", 128, 32}, {"mlp.down_proj", 32, 64}};
    for (int k = 0; k < 4; k++) {
        const entry *w = find(e, n, lin[k].name, "w"), *x = find(e, n, lin[k].name, "x"),
                    *dy = find(e, n, lin[k].name, "dy");
        assert_true(w->rows == lin[k].out && w->cols == lin[k].in);
        assert_true(x->rows == B * T && x->cols == lin[k].in);
        assert_true(dy->rows == B * T && dy->cols == lin[k].out);
        float *d = load(dy);
        double s = 0;
        for (long long i = 0; i < dy->rows * dy->cols; i++) {
            assert_true(isfinite(d[i]));
            s += fabs(d[i]);
        }
        assert_true(s > 0); /* a real gradient, not zeros */
        free(d);
    }
}

/* The weights are the checkpoint's, bit for bit, fused in table order. */
static void test_weights_match_checkpoint(void **state) {
    (void)state;
    UTIL_NEED_CLI();
    entry e[32];
    int n = read_manifest(e, 32);
    hs_model *m = NULL;
    assert_int_equal(hs_checkpoint_open_model(run_dir, &m, NULL, 0), HS_OK);
    static const char *const parts[4][3] = {
        {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"}, {"self_attn.o_proj"},
        {"mlp.gate_proj", "mlp.up_proj"}, {"mlp.down_proj"}};
    static const char *const fused[4] = {"self_attn.qkv_proj", "self_attn.o_proj",
                                         "mlp.gate_up_proj", "mlp.down_proj"};
    for (int k = 0; k < 4; k++) {
        const entry *w = find(e, n, fused[k], "w");
        float *d = load(w);
        int64_t off = 0;
        for (int p = 0; p < 3 && parts[k][p]; p++) {
            char name[96];
            snprintf(name, sizeof name, "model.layers.0.%s.weight", parts[k][p]);
            const hs_param_tensor *t = hs_model_find_tensor(m, name);
            assert_non_null(t);
            assert_memory_equal(d + off, m->params + t->offset, (size_t)t->numel * sizeof(float));
            off += t->numel;
        }
        assert_int_equal(off, w->rows * w->cols);
        free(d);
    }
    hs_model_free(m);
}

/* dW = dYᵀ·X for every layer, against the model's own gradient on the same batch. The model
 * accumulates in fp32 over the B·T = 32 tokens, so |error| ≤ 32·2⁻²³·Σ|dy||x| (plus the
 * reordering of the sum): the bound below is that times 4. */
static void test_gradients_reproduce_weight_grad(void **state) {
    (void)state;
    UTIL_NEED_CLI();
    entry e[32];
    int n = read_manifest(e, 32);
    hs_model *m = NULL;
    char ck[PATH_N];
    assert_int_equal(hs_checkpoint_open_model(run_dir, &m, ck, sizeof ck), HS_OK);
    hs_dataset *d = NULL;
    assert_int_equal(hs_dataset_open(shard, &d), HS_OK);
    int32_t in[B * T], tg[B * T];
    assert_int_equal(hs_dataset_eval_batch(d, 3, B, T, in, tg), HS_OK);
    hs_recipe_opts ro;
    hs_recipe_opts_defaults(&ro);
    snprintf(ro.name, sizeof ro.name, "fp32");
    hs_recipe r;
    assert_int_equal(hs_recipe_build(&ro, 0, &r), HS_OK);
    float loss;
    hs_model_zero_grad(m);
    assert_int_equal(hs_model_forward(m, &r, 0, in, tg, B, T, &loss), HS_OK);
    assert_int_equal(hs_model_backward(m, &r, 0, 1.0f), HS_OK);
    static const char *const first[4] = {"self_attn.q_proj", "self_attn.o_proj", "mlp.gate_proj",
                                         "mlp.down_proj"};
    static const char *const fused[4] = {"self_attn.qkv_proj", "self_attn.o_proj",
                                         "mlp.gate_up_proj", "mlp.down_proj"};
    for (int k = 0; k < 4; k++) {
        const entry *xe = find(e, n, fused[k], "x"), *ye = find(e, n, fused[k], "dy");
        float *x = load(xe), *dy = load(ye);
        char name[96];
        snprintf(name, sizeof name, "model.layers.0.%s.weight", first[k]);
        const hs_param_tensor *t = hs_model_find_tensor(m, name);
        assert_non_null(t);
        const float *g = m->grads + t->offset; /* fused: [out × in] back to back */
        long long N = ye->cols, K = xe->cols;
        for (long long o = 0; o < N; o++)
            for (long long i = 0; i < K; i++) {
                double s = 0, a = 0;
                for (int tk = 0; tk < B * T; tk++) {
                    s += (double)dy[tk * N + o] * x[tk * K + i];
                    a += fabs((double)dy[tk * N + o] * x[tk * K + i]);
                }
                double err = fabs(g[o * K + i] - s), bound = 4.0 * 32 * ldexp(1.0, -23) * a + 1e-30;
                if (err > bound)
                    fail_msg("%s: dW[%lld,%lld] = %g, dY^T X = %g (bound %g)", fused[k], o, i,
                             (double)g[o * K + i], s, bound);
            }
        free(x);
        free(dy);
    }
    hs_dataset_close(d);
    hs_model_free(m);
}

/* Usage and input errors: exit 1, one error line, no output directory left behind. */
static void test_errors(void **state) {
    (void)state;
    UTIL_NEED_CLI();
    char out[PATH_N];
    util_path(out, sizeof out, "cap-bad");
    UTIL_EXPECT_USAGE_ERROR("already exists", "capture", run_dir, "--data", shard, "--out", cap_dir);
    UTIL_EXPECT_USAGE_ERROR("--data", "capture", run_dir, "--out", out);
    UTIL_EXPECT_USAGE_ERROR("--out", "capture", run_dir, "--data", shard);
    UTIL_EXPECT_USAGE_ERROR("cannot open", "capture", run_dir, "--data", "/nonexistent/x.bin",
                            "--out", out);
    UTIL_EXPECT_USAGE_ERROR("context", "capture", run_dir, "--data", shard, "--seq", "100000",
                            "--out", out);
    UTIL_EXPECT_USAGE_ERROR("frobnicate", "capture", run_dir, "--frobnicate", "1");
    assert_false(exists(out));
    char *outs = NULL;
    assert_int_equal(util_run(&outs, NULL, "capture", "--help", NULL), 0);
    assert_non_null(strstr(outs, "manifest.csv"));
    free(outs);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_manifest_shapes),
        cmocka_unit_test(test_weights_match_checkpoint),
        cmocka_unit_test(test_gradients_reproduce_weight_grad),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, util_scratch_teardown);
}

/* test_recipe.c: recipes (presets, overrides, seeds) and the quantized linear layer.
 *
 * The central check: for every preset, a linear layer's three GEMMs equal a reference built
 * from the library's qdq of the same operands along the stated axes (same specs, same SR seeds,
 * same RHT signs) followed by a product in double:
 *   fprop  y  = qdq_fwd.x(x, groups along K) · qdq_fwd.w(w, along K)ᵀ
 *   dgrad  dx = qdq_dgrad.dy(dy, along N) · qdq_dgrad.w(w, along N: transposed)
 *   wgrad  dw = qdq_wgrad.dy(dy, along M: transposed)ᵀ · qdq_wgrad.x(x, along M: transposed)
 * Tolerance: the layer accumulates K (or N, M) products in fp32 (and an RHT, when present,
 * rotates in fp32), so an element may differ from the exact product by a few·K·u·‖a‖·‖b‖
 * (u = 2⁻²⁴; ‖·‖ the 2-norms of the row and column it combines). We allow 4·K·u·‖a‖·‖b‖ —
 * about 1e-5 relative here, while quantizing along a wrong axis, with a wrong seed or a
 * wrong format changes results by ~1e-2 relative.
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

#include "halfs/quant.h"
#include "nn/ops.h"
#include "nn/recipe.h"

static uint64_t rs = 99;
static double gauss(void) {
    double u1, u2;
    rs = rs * 6364136223846793005ull + 1442695040888963407ull;
    u1 = ((rs >> 11) + 1.0) * 0x1.0p-53;
    rs = rs * 6364136223846793005ull + 1442695040888963407ull;
    u2 = (rs >> 11) * 0x1.0p-53;
    return sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
}
/* Heavy-tailed-ish data: gaussian with a few outliers, like activations. */
static void fill(float *x, int64_t n, double scale) {
    for (int64_t i = 0; i < n; i++) {
        double g = gauss() * scale;
        if (i % 37 == 5) g *= 8;
        x[i] = (float)g;
    }
}

/* C[m×n] = A·B with A (m×k, element (i,l) at a[i*sai + l*sal]) and B (k×n, (l,j) at
 * b[l*sbl + j*sbj]); also the per-element bound 4·k·u·‖A_i‖·‖B_j‖. */
static void ref_product(double *c, double *tol, const float *a, int64_t sai, int64_t sal,
                        const float *b, int64_t sbl, int64_t sbj, int m, int n, int k) {
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0, na = 0, nb = 0;
            for (int l = 0; l < k; l++) {
                double x = a[i * sai + l * sal], y = b[l * sbl + j * sbj];
                s += x * y;
                na += x * x;
                nb += y * y;
            }
            c[i * n + j] = s;
            tol[i * n + j] = 4.0 * k * 0x1.0p-24 * sqrt(na * nb) + 1e-30;
        }
}

static void check(const char *what, const char *recipe, const float *got, const double *ref,
                  const double *tol, int n) {
    for (int i = 0; i < n; i++)
        if (!(fabs(got[i] - ref[i]) <= tol[i]))
            fail_msg("%s %s[%d]: got %.9g, reference %.9g (diff %.3g > tol %.3g)", recipe, what,
                     i, (double)got[i], ref[i], fabs(got[i] - ref[i]), tol[i]);
}

/* Run the layer under recipe r and compare the three GEMMs with the qdq reference. */
static void check_linear(const hs_recipe *r, const char *label, int M, int K, int N) {
    float *x = malloc(sizeof(float) * M * K), *w = malloc(sizeof(float) * N * K);
    float *dy = malloc(sizeof(float) * M * N), *y = malloc(sizeof(float) * M * N);
    float *dx = malloc(sizeof(float) * M * K), *dw = calloc((size_t)N * K, sizeof(float));
    float *qa = malloc(sizeof(float) * (M * K + M * N + N * K));
    float *qb = malloc(sizeof(float) * (M * K + M * N + N * K));
    double *ref = malloc(sizeof(double) * (M * K + M * N + N * K));
    double *tol = malloc(sizeof(double) * (M * K + M * N + N * K));
    fill(x, M * K, 1.0);
    fill(w, N * K, 0.05);
    fill(dy, M * N, 1e-3);
    hs_quant_spec spec[HS_ROLE_COUNT];
    for (int i = 0; i < HS_ROLE_COUNT; i++) hs_recipe_spec(r, 1, 2, (hs_role)i, 7, &spec[i]);
    hs_linear_ws *ws;
    assert_int_equal(hs_linear_ws_create(&ws), HS_OK);
    hs_linear_saved *saved = NULL;
    hs_status st = hs_linear_forward(ws, 0, spec, y, x, w, M, K, N, &saved, NULL);
    if (st != HS_OK) fail_msg("%s forward: %s", label, hs_last_error());
    st = hs_linear_backward(ws, 0, spec, dx, dw, dy, x, w, M, K, N, saved, NULL);
    if (st != HS_OK) fail_msg("%s backward: %s", label, hs_last_error());
    // fprop
    assert_int_equal(hs_qdq(&spec[HS_ROLE_FWD_X], x, M, K, K, 0, qa, K), HS_OK);
    assert_int_equal(hs_qdq(&spec[HS_ROLE_FWD_W], w, N, K, K, 0, qb, K), HS_OK);
    ref_product(ref, tol, qa, K, 1, qb, 1, K, M, N, K);
    check("fprop y", label, y, ref, tol, M * N);
    // dgrad: dY groups along N (its rows); W groups along N (its columns: transposed)
    assert_int_equal(hs_qdq(&spec[HS_ROLE_DGRAD_DY], dy, M, N, N, 0, qa, N), HS_OK);
    assert_int_equal(hs_qdq(&spec[HS_ROLE_DGRAD_W], w, N, K, K, 1, qb, K), HS_OK);
    ref_product(ref, tol, qa, N, 1, qb, K, 1, M, K, N);
    check("dgrad dx", label, dx, ref, tol, M * K);
    // wgrad: both along M (their columns: transposed)
    assert_int_equal(hs_qdq(&spec[HS_ROLE_WGRAD_DY], dy, M, N, N, 1, qa, N), HS_OK);
    assert_int_equal(hs_qdq(&spec[HS_ROLE_WGRAD_X], x, M, K, K, 1, qb, K), HS_OK);
    ref_product(ref, tol, qa, 1, N, qb, K, 1, N, K, M);
    check("wgrad dw", label, dw, ref, tol, N * K);
    // and the quantized recipes really quantize: y differs from the fp32 product
    if (hs_spec_quantizes(&spec[HS_ROLE_FWD_X]) && spec[HS_ROLE_FWD_X].elem != HS_ELEM_BF16) {
        ref_product(ref, tol, x, K, 1, w, 1, K, M, N, K);
        double diff = 0, norm = 0;
        for (int i = 0; i < M * N; i++) diff += (y[i] - ref[i]) * (y[i] - ref[i]), norm += ref[i] * ref[i];
        assert_true(diff > 1e-6 * norm);
    }
    hs_linear_saved_free(saved);
    hs_linear_ws_free(ws);
    free(x), free(w), free(dy), free(y), free(dx), free(dw), free(qa), free(qb), free(ref),
        free(tol);
}

static void test_presets_linear(void **state) {
    (void)state;
    for (int i = 0; hs_recipe_preset_names[i]; i++) {
        hs_recipe_opts o;
        hs_recipe_opts_defaults(&o);
        snprintf(o.name, sizeof o.name, "%s", hs_recipe_preset_names[i]);
        o.n_layers = 4; // a model of 4 blocks (layer 0 is checked): for presets naming `last`
        hs_recipe r;
        hs_status st = hs_recipe_build(&o, 1234, &r);
        if (st != HS_OK) fail_msg("%s: %s", o.name, hs_last_error());
        check_linear(&r, o.name, 64, 96, 160);
        o.act_only = 1;
        assert_int_equal(hs_recipe_build(&o, 1234, &r), HS_OK);
        char label[64];
        snprintf(label, sizeof label, "%s --act-only", o.name);
        check_linear(&r, label, 64, 96, 160);
    }
}

/* Switches and overrides through the same check: SR everywhere backward, RHT-32, block 16,
 * mixed formats in one GEMM, partial blocks (K = 80 is not a multiple of 32). */
static void test_variants_linear(void **state) {
    (void)state;
    struct {
        const char *name, *roles;
        int sr, rht, block, M, K, N;
    } v[] = {
        {"mxfp4-halfs", "", 1, 32, 0, 64, 96, 160},
        {"mxfp4-halfs", "", 0, 0, 16, 64, 96, 160},
        {"mxfp4-halfs", "fwd.x=nvfp4,dgrad.w=fp4row:halfs", 0, 0, 0, 64, 96, 160},
        {"mxfp4-ocp", "all=mxfp4:halfs:block=16:sr", 0, 0, 0, 48, 64, 32},
        {"mxfp4-halfs", "", 0, 0, 0, 40, 80, 48},
        {"nvfp4", "w=nvfp4:4over6:2d", 0, 0, 0, 64, 96, 160},
        {"fp32", "dy=mxfp4:ceil:sr", 0, 0, 0, 64, 96, 160},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        hs_recipe_opts o;
        hs_recipe_opts_defaults(&o);
        snprintf(o.name, sizeof o.name, "%s", v[i].name);
        snprintf(o.roles, sizeof o.roles, "%s", v[i].roles);
        o.sr = v[i].sr;
        o.rht = v[i].rht;
        o.block = v[i].block;
        hs_recipe r;
        hs_status st = hs_recipe_build(&o, 77, &r);
        if (st != HS_OK) fail_msg("variant %zu: %s", i, hs_last_error());
        char label[160];
        snprintf(label, sizeof label, "%s[%s sr=%d rht=%d block=%d]", v[i].name, v[i].roles,
                 v[i].sr, v[i].rht, v[i].block);
        check_linear(&r, label, v[i].M, v[i].K, v[i].N);
    }
}

/* The forward quantizes x for wgrad.x ahead and keeps it per x address until the backward.
 * Two layers share one workspace slot (as a model's blocks do): forwards 1, 2, then backwards
 * 2, 1, with stochastic rounding so that a copy made with the wrong seed or from the wrong x
 * would show. Then a backward whose wgrad.x spec differs from the forward's (another step's
 * seed) must requantize, not reuse. Each dW is checked against the qdq reference. */
static void check_wgrad(const hs_quant_spec *spec, const float *dy, const float *x,
                        const float *dw, int M, int K, int N, const char *label) {
    float *qa = malloc(sizeof(float) * M * N), *qb = malloc(sizeof(float) * M * K);
    double *ref = malloc(sizeof(double) * N * K), *tol = malloc(sizeof(double) * N * K);
    assert_int_equal(hs_qdq(&spec[HS_ROLE_WGRAD_DY], dy, M, N, N, 1, qa, N), HS_OK);
    assert_int_equal(hs_qdq(&spec[HS_ROLE_WGRAD_X], x, M, K, K, 1, qb, K), HS_OK);
    ref_product(ref, tol, qa, 1, N, qb, K, 1, N, K, M);
    check("wgrad dw", label, dw, ref, tol, N * K);
    free(qa), free(qb), free(ref), free(tol);
}

static void test_kept_wgrad_x(void **state) {
    (void)state;
    enum { M = 96, K = 64, N = 48 };
    hs_recipe_opts o;
    hs_recipe_opts_defaults(&o);
    o.sr = 1; // SR on wgrad.x: its codes depend on the seed
    hs_recipe r;
    assert_int_equal(hs_recipe_build(&o, 21, &r), HS_OK);
    hs_quant_spec s1[HS_ROLE_COUNT], s2[HS_ROLE_COUNT], s3[HS_ROLE_COUNT];
    for (int i = 0; i < HS_ROLE_COUNT; i++) {
        hs_recipe_spec(&r, 0, 1, (hs_role)i, 3, &s1[i]); // layer 0, step 3
        hs_recipe_spec(&r, 1, 1, (hs_role)i, 3, &s2[i]); // layer 1, step 3
        hs_recipe_spec(&r, 0, 1, (hs_role)i, 4, &s3[i]); // layer 0, step 4
    }
    assert_int_equal(s1[HS_ROLE_WGRAD_X].rounding, HS_ROUND_SR);
    float *x[2], *w[2], *dy[2], *y = malloc(sizeof(float) * M * N);
    float *dx = malloc(sizeof(float) * M * K), *dw[2];
    for (int i = 0; i < 2; i++) {
        x[i] = malloc(sizeof(float) * M * K), w[i] = malloc(sizeof(float) * N * K);
        dy[i] = malloc(sizeof(float) * M * N), dw[i] = calloc((size_t)N * K, sizeof(float));
        fill(x[i], M * K, 1.0), fill(w[i], N * K, 0.05), fill(dy[i], M * N, 1e-3);
    }
    hs_linear_ws *ws;
    hs_linear_saved *sv[2] = {NULL, NULL};
    assert_int_equal(hs_linear_ws_create(&ws), HS_OK);
    assert_int_equal(hs_linear_forward(ws, 0, s1, y, x[0], w[0], M, K, N, &sv[0], NULL), HS_OK);
    assert_int_equal(hs_linear_forward(ws, 0, s2, y, x[1], w[1], M, K, N, &sv[1], NULL), HS_OK);
    assert_int_equal(
        hs_linear_backward(ws, 0, s2, dx, dw[1], dy[1], x[1], w[1], M, K, N, sv[1], NULL), HS_OK);
    assert_int_equal(
        hs_linear_backward(ws, 0, s1, dx, dw[0], dy[0], x[0], w[0], M, K, N, sv[0], NULL), HS_OK);
    check_wgrad(s2, dy[1], x[1], dw[1], M, K, N, "kept: layer 1");
    check_wgrad(s1, dy[0], x[0], dw[0], M, K, N, "kept: layer 0");
    // forward with step 3's specs, backward with step 4's: wgrad.x must be requantized
    memset(dw[0], 0, sizeof(float) * N * K);
    assert_int_equal(hs_linear_forward(ws, 0, s1, y, x[0], w[0], M, K, N, &sv[0], NULL), HS_OK);
    assert_int_equal(
        hs_linear_backward(ws, 0, s3, dx, dw[0], dy[0], x[0], w[0], M, K, N, sv[0], NULL), HS_OK);
    check_wgrad(s3, dy[0], x[0], dw[0], M, K, N, "kept: other spec");
    // a second backward without a forward in between: recomputed, same result
    float *again = calloc((size_t)N * K, sizeof(float));
    assert_int_equal(
        hs_linear_backward(ws, 0, s3, dx, again, dy[0], x[0], w[0], M, K, N, sv[0], NULL), HS_OK);
    assert_memory_equal(again, dw[0], sizeof(float) * N * K);
    hs_linear_saved_free(sv[0]), hs_linear_saved_free(sv[1]);
    hs_linear_ws_free(ws);
    for (int i = 0; i < 2; i++) free(x[i]), free(w[i]), free(dy[i]), free(dw[i]);
    free(y), free(dx), free(again);
}

/* bf16 specs: the forward converts x both ways in one pass and keeps xᵀ for wgrad; dY's two
 * copies come from one pass too. The results must equal those of a workspace that never saw the
 * forward (every operand converted on its own), on shapes with partial 16 × 16 tiles; and a kept
 * entry must follow its x from an FP4 spec to bf16 and back. */
static void test_kept_wgrad_x_bf16(void **state) {
    (void)state;
    enum { M = 97, K = 61, N = 45 };
    hs_recipe r4, r16;
    assert_int_equal(hs_recipe_preset("bf16", &r16), HS_OK);
    assert_int_equal(hs_recipe_preset("mxfp4-halfs", &r4), HS_OK);
    float *x = malloc(sizeof(float) * M * K), *w = malloc(sizeof(float) * N * K);
    float *dy = malloc(sizeof(float) * M * N), *y[2], *dx[2], *dw[2];
    fill(x, M * K, 1.0), fill(w, N * K, 0.05), fill(dy, M * N, 1e-3);
    for (int i = 0; i < 2; i++) {
        y[i] = malloc(sizeof(float) * M * N), dx[i] = malloc(sizeof(float) * M * K);
        dw[i] = calloc((size_t)N * K, sizeof(float));
    }
    hs_linear_ws *kept, *fresh;
    hs_linear_saved *saved = NULL;
    assert_int_equal(hs_linear_ws_create(&kept), HS_OK);
    assert_int_equal(hs_linear_ws_create(&fresh), HS_OK);
    const hs_quant_spec *order[3] = {r16.role, r4.role, r16.role};
    for (int round = 0; round < 3; round++) {
        const hs_quant_spec *s = order[round];
        memset(dw[0], 0, sizeof(float) * N * K), memset(dw[1], 0, sizeof(float) * N * K);
        assert_int_equal(hs_linear_forward(kept, 0, s, y[0], x, w, M, K, N, &saved, NULL), HS_OK);
        assert_int_equal(
            hs_linear_backward(kept, 0, s, dx[0], dw[0], dy, x, w, M, K, N, saved, NULL), HS_OK);
        assert_int_equal(hs_linear_forward(fresh, 1, s, y[1], x, w, M, K, N, NULL, NULL), HS_OK);
        hs_linear_ws_free(fresh); // forget what the forward kept: the backward converts anew
        assert_int_equal(hs_linear_ws_create(&fresh), HS_OK);
        assert_int_equal(
            hs_linear_backward(fresh, 1, s, dx[1], dw[1], dy, x, w, M, K, N, NULL, NULL), HS_OK);
        assert_memory_equal(y[0], y[1], sizeof(float) * M * N);
        assert_memory_equal(dx[0], dx[1], sizeof(float) * M * K);
        assert_memory_equal(dw[0], dw[1], sizeof(float) * N * K);
        float nz = 0.0f;
        for (int i = 0; i < N * K; i++) nz += fabsf(dw[0][i]);
        assert_true(nz > 0.0f); // the comparison is not between two zero matrices
    }
    hs_linear_saved_free(saved);
    hs_linear_ws_free(kept);
    hs_linear_ws_free(fresh);
    for (int i = 0; i < 2; i++) free(y[i]), free(dx[i]), free(dw[i]);
    free(x), free(w), free(dy);
}

static void test_preset_fields(void **state) {
    (void)state;
    hs_recipe r;
    assert_int_equal(hs_recipe_preset("mxfp4-max", &r), HS_OK);
    for (int i = 0; i < HS_ROLE_COUNT; i++) {
        assert_int_equal(r.role[i].elem, HS_ELEM_E2M1);
        assert_int_equal(r.role[i].scale_fmt, HS_SCALE_E8M0);
        assert_int_equal(r.role[i].rule, HS_RULE_CEIL);
        assert_int_equal(r.role[i].block, 32);
        assert_int_equal(r.role[i].rounding, HS_ROUND_RNE);
    }
    assert_int_equal(hs_recipe_preset("mxfp4-ocp", &r), HS_OK);
    assert_int_equal(r.role[HS_ROLE_WGRAD_X].rule, HS_RULE_OCP);
    assert_int_equal(hs_recipe_preset("mxfp4-half", &r), HS_OK);
    assert_int_equal(r.role[HS_ROLE_FWD_W].rule, HS_RULE_HALF);
    assert_int_equal(hs_recipe_preset("mxfp4-halfs", &r), HS_OK);
    assert_int_equal(r.role[HS_ROLE_DGRAD_DY].rule, HS_RULE_HALFS);
    assert_int_equal(hs_recipe_preset("nvfp4", &r), HS_OK);
    assert_int_equal(r.role[HS_ROLE_FWD_X].scale_fmt, HS_SCALE_UE4M3);
    assert_int_equal(r.role[HS_ROLE_FWD_X].block, 16);
    assert_int_equal(r.role[HS_ROLE_FWD_X].tile2d, 0);
    assert_int_equal(r.role[HS_ROLE_FWD_X].rounding, HS_ROUND_RNE);
    assert_int_equal(r.role[HS_ROLE_FWD_X].rht, 0);
    assert_int_equal(r.role[HS_ROLE_FWD_W].tile2d, 16);
    assert_int_equal(r.role[HS_ROLE_DGRAD_W].tile2d, 16);
    assert_int_equal(r.role[HS_ROLE_DGRAD_DY].rounding, HS_ROUND_SR);
    assert_int_equal(r.role[HS_ROLE_WGRAD_DY].rounding, HS_ROUND_SR);
    assert_int_equal(r.role[HS_ROLE_WGRAD_DY].rht, 16);
    assert_int_equal(r.role[HS_ROLE_WGRAD_X].rht, 16);
    assert_int_equal(r.role[HS_ROLE_WGRAD_X].rounding, HS_ROUND_RNE);
    assert_int_equal(hs_recipe_preset("nvfp4-4over6", &r), HS_OK);
    assert_int_equal(r.role[HS_ROLE_FWD_X].rule, HS_RULE_4OVER6);
    assert_int_equal(hs_recipe_preset("fp4row-max", &r), HS_OK);
    assert_int_equal(r.role[HS_ROLE_FWD_X].group, HS_GROUP_ROW);
    assert_int_equal(r.role[HS_ROLE_FWD_X].rule, HS_RULE_CEIL);
    assert_int_equal(hs_recipe_preset("fp4row-halfs", &r), HS_OK);
    assert_int_equal(r.role[HS_ROLE_WGRAD_DY].rule, HS_RULE_HALFS);
    assert_int_equal(hs_recipe_preset("bf16", &r), HS_OK);
    assert_int_equal(r.role[HS_ROLE_FWD_X].elem, HS_ELEM_BF16);
    assert_int_equal(hs_recipe_preset("fp32", &r), HS_OK);
    assert_false(hs_spec_quantizes(&r.role[HS_ROLE_WGRAD_X]));
    assert_int_equal(hs_recipe_preset("mxfp4", &r), HS_ERR_INVALID_ARG);
    assert_int_equal(hs_recipe_preset("", &r), HS_ERR_INVALID_ARG);
    /* mxfp4-halfs-last-bf16 is exactly mxfp4-halfs --hp-layers last, for any depth, and needs
     * one; a user's --hp-layers adds to its last block */
    for (int L = 1; L <= 12; L += 5) {
        hs_recipe_opts a, b;
        hs_recipe ra, rb;
        hs_recipe_opts_defaults(&a);
        hs_recipe_opts_defaults(&b);
        snprintf(a.name, sizeof a.name, "mxfp4-halfs-last-bf16");
        snprintf(b.hp_layers, sizeof b.hp_layers, "last");
        a.n_layers = b.n_layers = L;
        assert_int_equal(hs_recipe_build(&a, 9, &ra), HS_OK);
        assert_int_equal(hs_recipe_build(&b, 9, &rb), HS_OK);
        assert_memory_equal(ra.role, rb.role, sizeof ra.role);
        assert_true(ra.hp_layers == rb.hp_layers && ra.hp_layers == 1ull << (L - 1));
        snprintf(a.hp_layers, sizeof a.hp_layers, "0");
        assert_int_equal(hs_recipe_build(&a, 9, &ra), HS_OK);
        assert_true(ra.hp_layers == (1ull | 1ull << (L - 1)));
    }
    hs_recipe_opts o;
    hs_recipe_opts_defaults(&o);
    snprintf(o.name, sizeof o.name, "mxfp4-halfs-last-bf16");
    assert_int_equal(hs_recipe_build(&o, 9, &r), HS_ERR_INVALID_ARG); /* no model: no last block */
}

static void test_switches(void **state) {
    (void)state;
    hs_recipe_opts o;
    hs_recipe r;
    hs_recipe_opts_defaults(&o);
    assert_string_equal(o.name, "mxfp4-halfs");
    o.block = 16;
    o.sr = 1;
    o.rht = 64;
    o.act_only = 1;
    snprintf(o.hp_layers, sizeof o.hp_layers, "0,3-5");
    assert_int_equal(hs_recipe_build(&o, 5, &r), HS_OK);
    assert_int_equal(r.role[HS_ROLE_FWD_X].block, 16);
    assert_int_equal(r.role[HS_ROLE_FWD_X].rounding, HS_ROUND_RNE);
    assert_int_equal(r.role[HS_ROLE_DGRAD_DY].rounding, HS_ROUND_SR);
    assert_int_equal(r.role[HS_ROLE_WGRAD_X].rounding, HS_ROUND_SR);
    assert_int_equal(r.role[HS_ROLE_WGRAD_X].rht, 64);
    assert_int_equal(r.role[HS_ROLE_WGRAD_DY].rht, 64);
    assert_int_equal(r.role[HS_ROLE_DGRAD_DY].rht, 0);
    assert_false(hs_spec_quantizes(&r.role[HS_ROLE_FWD_W]));
    assert_false(hs_spec_quantizes(&r.role[HS_ROLE_DGRAD_W]));
    assert_true(hs_spec_quantizes(&r.role[HS_ROLE_DGRAD_DY]));
    assert_true(r.hp_layers == (1u | 8u | 16u | 32u));
    hs_quant_spec s;
    hs_recipe_spec(&r, 4, 0, HS_ROLE_FWD_X, 0, &s); // hp layer: bf16
    assert_int_equal(s.elem, HS_ELEM_BF16);
    hs_recipe_spec(&r, 1, 0, HS_ROLE_FWD_X, 0, &s);
    assert_int_equal(s.elem, HS_ELEM_E2M1);
    hs_recipe_spec(&r, HS_LAYER_LM_HEAD, 0, HS_ROLE_FWD_X, 0, &s); // lm_head: bf16 by default
    assert_int_equal(s.elem, HS_ELEM_BF16);
    assert_int_equal(r.attn_bf16, 1);
    o.fp32_attn_lm_head = 1; // the previous numerics: fp32 attention and lm_head
    assert_int_equal(hs_recipe_build(&o, 5, &r), HS_OK);
    hs_recipe_spec(&r, HS_LAYER_LM_HEAD, 0, HS_ROLE_FWD_X, 0, &s);
    assert_false(hs_spec_quantizes(&s));
    assert_int_equal(r.attn_bf16, 0);
    o.fp32_attn_lm_head = 0;
    hs_recipe_opts f;
    hs_recipe_opts_defaults(&f);
    snprintf(f.name, sizeof f.name, "fp32");
    snprintf(f.roles, sizeof f.roles, "fwd.w=mxfp4"); // the fp32 preset stays fp32 there
    assert_int_equal(hs_recipe_build(&f, 5, &r), HS_OK);
    assert_int_equal(r.attn_bf16, 0);
    hs_recipe_spec(&r, HS_LAYER_LM_HEAD, 0, HS_ROLE_FWD_X, 0, &s);
    assert_false(hs_spec_quantizes(&s));
    o.quant_lm_head = 1;
    assert_int_equal(hs_recipe_build(&o, 5, &r), HS_OK);
    hs_recipe_spec(&r, HS_LAYER_LM_HEAD, 0, HS_ROLE_FWD_X, 0, &s);
    assert_int_equal(s.elem, HS_ELEM_E2M1);
    uint64_t mask;
    assert_int_equal(hs_recipe_parse_layers("7", 0, &mask), HS_OK);
    assert_true(mask == 128);
    assert_int_equal(hs_recipe_parse_layers("3-1", 0, &mask), HS_ERR_INVALID_ARG);
    assert_int_equal(hs_recipe_parse_layers("a", 0, &mask), HS_ERR_INVALID_ARG);
    assert_int_equal(hs_recipe_parse_layers("1,", 0, &mask), HS_OK);
    assert_int_equal(hs_recipe_parse_layers("64", 0, &mask), HS_ERR_INVALID_ARG);
    /* `last`: the model's last block; without a model, an error */
    assert_int_equal(hs_recipe_parse_layers("0,last", 6, &mask), HS_OK);
    assert_true(mask == (1u | 32u));
    assert_int_equal(hs_recipe_parse_layers("last", 0, &mask), HS_ERR_INVALID_ARG);
    assert_int_equal(hs_recipe_parse_layers("lastx", 6, &mask), HS_ERR_INVALID_ARG);
    hs_recipe_opts_defaults(&o);
    snprintf(o.hp_layers, sizeof o.hp_layers, "last");
    o.n_layers = 4;
    assert_int_equal(hs_recipe_build(&o, 5, &r), HS_OK);
    assert_true(r.hp_layers == 8u);
    hs_recipe_spec(&r, 3, 0, HS_ROLE_FWD_X, 0, &s);
    assert_int_equal(s.elem, HS_ELEM_BF16);
    o.n_layers = 0;
    assert_int_equal(hs_recipe_build(&o, 5, &r), HS_ERR_INVALID_ARG);
    hs_recipe_opts_defaults(&o);
    o.block = 24;
    assert_int_equal(hs_recipe_build(&o, 5, &r), HS_ERR_INVALID_ARG);
    hs_recipe_opts_defaults(&o);
    o.rht = 20;
    assert_int_equal(hs_recipe_build(&o, 5, &r), HS_ERR_INVALID_ARG);
}

static void test_overrides(void **state) {
    (void)state;
    hs_recipe r;
    assert_int_equal(hs_recipe_preset("mxfp4-ocp", &r), HS_OK);
    assert_int_equal(hs_recipe_apply_overrides(&r, "fwd.x=mxfp4:halfs:block=16:sr"), HS_OK);
    assert_int_equal(r.role[HS_ROLE_FWD_X].rule, HS_RULE_HALFS);
    assert_int_equal(r.role[HS_ROLE_FWD_X].block, 16);
    assert_int_equal(r.role[HS_ROLE_FWD_X].rounding, HS_ROUND_SR);
    assert_int_equal(r.role[HS_ROLE_WGRAD_X].rule, HS_RULE_OCP); // untouched
    assert_int_equal(hs_recipe_apply_overrides(&r, "w=nvfp4:4over6:2d,dy=mxfp4:ceil:sr"), HS_OK);
    assert_int_equal(r.role[HS_ROLE_FWD_W].rule, HS_RULE_4OVER6);
    assert_int_equal(r.role[HS_ROLE_DGRAD_W].tile2d, 16);
    assert_int_equal(r.role[HS_ROLE_DGRAD_DY].rule, HS_RULE_CEIL);
    assert_int_equal(r.role[HS_ROLE_WGRAD_DY].rounding, HS_ROUND_SR);
    assert_int_equal(hs_recipe_apply_overrides(&r, "x=bf16; wgrad.x=fp32"), HS_OK);
    assert_int_equal(r.role[HS_ROLE_FWD_X].elem, HS_ELEM_BF16);
    assert_false(hs_spec_quantizes(&r.role[HS_ROLE_WGRAD_X]));
    assert_int_equal(hs_recipe_apply_overrides(&r, "all=fp4row:halfs"), HS_OK);
    for (int i = 0; i < HS_ROLE_COUNT; i++) assert_int_equal(r.role[i].group, HS_GROUP_ROW);
    const char *bad[] = {"fwd.q=mxfp4",    "fwd.x=mxfp5",       "fwd.x=mxfp4:bogus",
                         "fwd.x",          "fwd.x=mxfp4:block=17", "fwd.x=",
                         "=mxfp4",         "fwd.x=mxfp4:rht=7",  "fwd.x=mxfp4::sr",
                         "fwd.x=fp4row:block=16"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        hs_recipe_preset("mxfp4-halfs", &r);
        hs_status st = hs_recipe_apply_overrides(&r, bad[i]);
        if (st != HS_ERR_INVALID_ARG) fail_msg("override '%s' was accepted", bad[i]);
        assert_true(strlen(hs_last_error()) > 0);
    }
    // one GEMM, two quantized operands, two RHT sizes: refused by validation
    hs_recipe_opts o;
    hs_recipe_opts_defaults(&o);
    snprintf(o.roles, sizeof o.roles, "wgrad.x=mxfp4:rht=32");
    assert_int_equal(hs_recipe_build(&o, 1, &r), HS_ERR_INVALID_ARG);
    assert_non_null(strstr(hs_last_error(), "RHT"));
    snprintf(o.roles, sizeof o.roles, "wgrad.x=mxfp4:rht=32,wgrad.dy=mxfp4:rht=32");
    assert_int_equal(hs_recipe_build(&o, 1, &r), HS_OK);
    char desc[1024];
    hs_recipe_describe(&r, desc, sizeof desc);
    assert_non_null(strstr(desc, "wgrad.x=mxfp4:halfs:rne:block=32:rht=32"));
}

static void test_seeds(void **state) {
    (void)state;
    hs_recipe_opts o;
    hs_recipe_opts_defaults(&o);
    snprintf(o.name, sizeof o.name, "nvfp4");
    hs_recipe r, r2;
    assert_int_equal(hs_recipe_build(&o, 11, &r), HS_OK);
    assert_int_equal(hs_recipe_build(&o, 12, &r2), HS_OK);
    hs_quant_spec a, b, c;
    hs_recipe_spec(&r, 2, 1, HS_ROLE_WGRAD_DY, 5, &a);
    hs_recipe_spec(&r, 2, 1, HS_ROLE_WGRAD_X, 5, &b);
    assert_true(a.rht_seed == b.rht_seed);           // one GEMM: same RHT signs
    assert_true(a.seed != b.seed || a.stream != b.stream); // distinct SR streams
    hs_recipe_spec(&r, 2, 1, HS_ROLE_WGRAD_DY, 6, &c);
    assert_true(c.seed != a.seed && c.rht_seed != a.rht_seed); // fresh every step
    hs_recipe_spec(&r, 3, 1, HS_ROLE_WGRAD_DY, 5, &c);
    assert_true(c.seed != a.seed && c.rht_seed != a.rht_seed); // and every layer
    hs_recipe_spec(&r, 2, 1, HS_ROLE_DGRAD_DY, 5, &c);
    assert_true(c.rht_seed != a.rht_seed);                      // and every GEMM
    hs_recipe_spec(&r2, 2, 1, HS_ROLE_WGRAD_DY, 5, &c);
    assert_true(c.seed != a.seed);                              // and every run seed
    hs_recipe_spec(&r, 2, 1, HS_ROLE_WGRAD_DY, 5, &c);
    assert_memory_equal(&a, &c, sizeof a);                      // and reproducible
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_preset_fields), cmocka_unit_test(test_switches),
        cmocka_unit_test(test_overrides),     cmocka_unit_test(test_seeds),
        cmocka_unit_test(test_presets_linear), cmocka_unit_test(test_variants_linear),
        cmocka_unit_test(test_kept_wgrad_x),
        cmocka_unit_test(test_kept_wgrad_x_bf16),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

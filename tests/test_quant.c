/* test_quant.c: the reference quantizer, dequantize and qdq (halfs/quant.h, docs/FORMATS.md §2-9).
 *
 * The power-of-two rules are checked bit for bit against an independent double-precision
 * implementation of the formulas of docs/FORMATS.md §6 (frexp exponents, brute-force nearest
 * E2M1 point); the search rules (halfs, mse, 4over6, continuous halfs) against a brute-force
 * squared-error evaluation of every candidate; then properties: idempotence, odd symmetry, SR
 * unbiasedness, transposition, 2D tiles, thread-count independence, NaN/Inf/zero/subnormal
 * groups, exponent clamping, the NVFP4 two-level scaling on a hand-computed case, the packed
 * layout, and spec validation.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "halfs/codec.h"
#include "halfs/quant.h"
#include "halfs/rht.h"
#include "halfs/rng.h"
#include "core/scale_rules.h" /* the internal contract shared with the SIMD kernels */

/* ---------------------------------------------------------------- data */
static float gauss(uint64_t seed, uint64_t i) {
    double u1 = (hs_rng_bits(seed, 1, i) >> 11) * 0x1p-53 + 0x1p-54; /* (0, 1) */
    double u2 = (hs_rng_bits(seed, 2, i) >> 11) * 0x1p-53;
    return (float)(sqrt(-2 * log(u1)) * cos(2 * M_PI * u2));
}

/* Heavy-tailed test data: Student-t(3)-like values (Gaussian over a chi-like denominator),
 * with a per-row magnitude 2^k (k in [-30, 30], a few rows near the float limits), exact zeros
 * and a few outliers. */
static float *heavy(uint64_t seed, int64_t rows, int64_t cols) {
    float *x = malloc((size_t)(rows * cols) * sizeof(float));
    for (int64_t r = 0; r < rows; r++) {
        int k = (int)(hs_rng_bits(seed, 10, (uint64_t)r) % 61) - 30;
        if (r % 17 == 5) k = -140; /* subnormal rows */
        if (r % 19 == 7) k = 120;  /* near the top of the float range */
        for (int64_t c = 0; c < cols; c++) {
            uint64_t i = (uint64_t)(r * cols + c);
            double g = gauss(seed, i);
            double chi = (pow(gauss(seed + 1, i), 2) + pow(gauss(seed + 2, i), 2) +
                          pow(gauss(seed + 3, i), 2)) / 3.0;
            double v = g / sqrt(chi + 1e-3);
            if (hs_rng_bits(seed, 11, i) % 23 == 0) v = 0.0;
            x[i] = (float)ldexp(v, k);
        }
    }
    return x;
}

static hs_quant_spec preset(hs_format f) {
    hs_quant_spec s;
    assert_int_equal(hs_quant_spec_init(&s, f), HS_OK);
    return s;
}

static float *qdq_alloc(const hs_quant_spec *s, const float *x, int64_t rows, int64_t cols,
                        int transpose) {
    float *y = malloc((size_t)(rows * cols) * sizeof(float));
    hs_status st = hs_qdq(s, x, rows, cols, cols, transpose, y, cols);
    if (st != HS_OK) fail_msg("qdq failed: %s", hs_last_error());
    return y;
}

static int same_bits(float a, float b) { return memcmp(&a, &b, 4) == 0; }
static int same_value(float a, float b) { /* bitwise, except the sign of zero */
    if (a == 0.0f && b == 0.0f) return 1;
    if (isnan(a) && isnan(b)) return 1;
    return same_bits(a, b);
}

/* ---------------------------------------------------------------- independent rules */
/* nearest E2M1 magnitude to |z| (double), ties to the even code, saturating at 6 */
static double e2m1_ref(double z) {
    static const double g[8] = {0, 0.5, 1, 1.5, 2, 3, 4, 6};
    double a = fabs(z);
    if (a >= 6) return copysign(6, z);
    int best = 0;
    for (int k = 1; k < 8; k++) {
        double d = fabs(a - g[k]), db = fabs(a - g[best]);
        if (d < db || (d == db && (k & 1) == 0)) best = k;
    }
    return copysign(g[best], z);
}

/* docs/FORMATS.md §6 exponent of a (> 0, finite) for the power-of-two rules, via frexp */
static int pow2_rule_exp(hs_rule r, double a) {
    int fe;
    double m = frexp(a, &fe); /* a = m·2^fe, m in [0.5, 1) */
    int fl = fe - 1, ce = m == 0.5 ? fe - 1 : fe;
    double sig = 2 * m;
    int e;
    switch (r) {
    case HS_RULE_OCP: e = fl - 2; break;
    case HS_RULE_CEIL: e = ce - 2; break;
    case HS_RULE_RCEIL:
        e = fl - 4;
        while (a > 6 * ldexp(1, e)) e++;
        break;
    case HS_RULE_EVEN: e = fl - 2 + (sig >= 1.75); break;
    case HS_RULE_HALF: e = ce - 3; break;
    default: e = 0; fail_msg("not a closed-form rule");
    }
    return e < -127 ? -127 : e;
}

/* One group through the formula: out[i] = 2^e · E2M1(x_i / 2^e) */
static void pow2_ref_group(hs_rule r, const float *x, int64_t n, int64_t stride, float *out) {
    double a = 0;
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(x[i * stride])) bad = 1;
        a = fmax(a, fabs((double)x[i * stride]));
    }
    int e = a == 0 ? -127 : pow2_rule_exp(r, a);
    for (int64_t i = 0; i < n; i++)
        out[i * stride] = bad ? NAN : (float)(ldexp(e2m1_ref(ldexp(x[i * stride], -e)), e));
}

static void check_pow2_rule(hs_rule rule, int block, hs_group group, int64_t rows, int64_t cols,
                            int transpose) {
    float *x = heavy(100 + (uint64_t)rule, rows, cols);
    hs_quant_spec s = preset(HS_FMT_MXFP4);
    s.rule = rule;
    s.group = group;
    s.block = block;
    float *y = qdq_alloc(&s, x, rows, cols, transpose);
    float *ref = malloc((size_t)(rows * cols) * sizeof(float));
    /* groups along rows of x, or along its columns when transposed */
    int64_t R = transpose ? cols : rows, C = transpose ? rows : cols;
    int64_t W = group == HS_GROUP_BLOCK ? block : C;
    for (int64_t r = 0; r < R; r++)
        for (int64_t c0 = 0; c0 < C; c0 += W) {
            int64_t n = C - c0 < W ? C - c0 : W;
            if (!transpose) pow2_ref_group(rule, x + r * cols + c0, n, 1, ref + r * cols + c0);
            else pow2_ref_group(rule, x + c0 * cols + r, n, cols, ref + c0 * cols + r);
        }
    int64_t bad = 0;
    for (int64_t i = 0; i < rows * cols; i++)
        if (!same_value(y[i], ref[i]) && bad++ < 5)
            print_error("rule %s: [%lld] x=%a got %a want %a\n", hs_rule_name(rule), (long long)i,
                        x[i], y[i], ref[i]);
    free(x);
    free(y);
    free(ref);
    if (bad) fail_msg("%lld mismatches for rule %s", (long long)bad, hs_rule_name(rule));
}

static void pow2_rules_exact(void **state) {
    (void)state;
    const hs_rule rules[] = {HS_RULE_OCP, HS_RULE_CEIL, HS_RULE_RCEIL, HS_RULE_EVEN, HS_RULE_HALF};
    for (size_t k = 0; k < 5; k++) {
        check_pow2_rule(rules[k], 32, HS_GROUP_BLOCK, 48, 100, 0); /* partial last block */
        check_pow2_rule(rules[k], 16, HS_GROUP_BLOCK, 40, 64, 1);  /* transposed */
        check_pow2_rule(rules[k], 128, HS_GROUP_BLOCK, 20, 300, 0);
        check_pow2_rule(rules[k], 32, HS_GROUP_ROW, 40, 513, 0);
    }
}

/* ---------------------------------------------------------------- search rules */
/* Group SSE of dequantized values: independent long-double sum */
static long double sse_ld(const float *x, const float *y, int64_t n) {
    long double s = 0;
    for (int64_t i = 0; i < n; i++) {
        long double d = (long double)x[i] - (long double)y[i];
        s += d * d;
    }
    return s;
}

/* x̂ of an E8M0 candidate exponent e */
static void cand_pow2(const float *x, int64_t n, int e, float *y) {
    for (int64_t i = 0; i < n; i++) y[i] = (float)ldexp(e2m1_ref(ldexp(x[i], -e)), e);
}

static int ceil_exp(const float *x, int64_t n) {
    double a = 0;
    for (int64_t i = 0; i < n; i++) a = fmax(a, fabs((double)x[i]));
    return a == 0 ? -127 : pow2_rule_exp(HS_RULE_CEIL, a);
}

/* tolerance for "equal" SSEs computed in different orders */
static int le_tol(long double a, long double b) { return a <= b + 1e-12L * (b > 0 ? b : 0); }

static void search_rules_e8m0(void **state) {
    (void)state;
    const int64_t rows = 64, cols = 256;
    const hs_group groups[] = {HS_GROUP_BLOCK, HS_GROUP_BLOCK, HS_GROUP_ROW};
    const int blocks[] = {32, 16, 32};
    for (int rr = 0; rr < 2; rr++)
        for (int gk = 0; gk < 3; gk++) {
            hs_rule rule = rr ? HS_RULE_MSE : HS_RULE_HALFS;
            hs_quant_spec s = preset(HS_FMT_MXFP4);
            s.rule = rule;
            s.group = groups[gk];
            s.block = blocks[gk];
            float *x = heavy(7 + (uint64_t)gk, rows, cols);
            hs_packed p;
            assert_int_equal(hs_packed_alloc(&p, &s, rows, cols), HS_OK);
            assert_int_equal(hs_quantize_ref(&s, x, rows, cols, cols, 0, &p), HS_OK);
            float *y = malloc(sizeof(float) * rows * cols), cand[512];
            assert_int_equal(hs_dequantize(&p, y, cols), HS_OK);
            int64_t W = s.group == HS_GROUP_BLOCK ? s.block : cols, halved = 0, ngroups = 0;
            for (int64_t r = 0; r < rows; r++)
                for (int64_t g = 0; g * W < cols; g++) {
                    const float *xg = x + r * cols + g * W;
                    const float *yg = y + r * cols + g * W;
                    int e = ((uint8_t *)p.scales)[r * p.groups_per_row + g] - 127;
                    int ec = ceil_exp(xg, W);
                    long double chosen = sse_ld(xg, yg, W);
                    /* the dequantized values are those of the stored exponent */
                    cand_pow2(xg, W, e, cand);
                    for (int64_t i = 0; i < W; i++) assert_true(same_value(cand[i], yg[i]));
                    int ncand = rule == HS_RULE_HALFS ? 2 : 4;
                    assert_true(e <= ec && e > ec - ncand);
                    for (int k = 0; k < ncand; k++) {
                        if (ec - k < -127) break;
                        cand_pow2(xg, W, ec - k, cand);
                        long double sk = sse_ld(xg, cand, W);
                        if (!le_tol(chosen, sk))
                            fail_msg("rule %s row %lld group %lld: chose e=%d (sse %Lg) but e=%d has %Lg",
                                     hs_rule_name(rule), (long long)r, (long long)g, e, chosen,
                                     ec - k, sk);
                        /* halfs halves only when strictly better; mse ties go to the larger scale */
                        if (ec - k > e && !(sk > chosen * (1 + 1e-12L)))
                            fail_msg("rule %s: e=%d not strictly better than e=%d", hs_rule_name(rule),
                                     e, ec - k);
                    }
                    halved += e < ec;
                    ngroups++;
                }
            assert_int_equal(p.groups_total, ngroups);
            assert_int_equal(p.groups_halved, halved);
            if (gk == 2) assert_true(halved > 0); /* heavy-tailed rows: Half-S halves some */
            hs_packed_free(&p);
            free(x);
            free(y);
        }
}

/* continuous scales: chosen X's SSE <= every candidate of the rule (fp4 FP32 and nvfp4 UE4M3) */
static void cand_cont(const float *x, int64_t n, float enc, float dec, float *y) {
    for (int64_t i = 0; i < n; i++) y[i] = (float)e2m1_ref(x[i] * enc) * dec;
}

static void search_rules_continuous(void **state) {
    (void)state;
    const int64_t rows = 32, cols = 256;
    const hs_rule rules[] = {HS_RULE_HALFS, HS_RULE_MSE, HS_RULE_4OVER6, HS_RULE_MAX, HS_RULE_HALF};
    for (int fmt = 0; fmt < 2; fmt++)
        for (size_t k = 0; k < 5; k++) {
            hs_quant_spec s = preset(fmt ? HS_FMT_NVFP4 : HS_FMT_FP4);
            s.rule = rules[k];
            if (!hs_rule_applies(&s, s.rule)) {
                assert_int_equal(s.rule, HS_RULE_4OVER6);
                assert_int_equal(hs_quant_spec_validate(&s), HS_ERR_INVALID_ARG);
                continue;
            }
            float *x = heavy(55 + k, rows, cols);
            for (int64_t i = 0; i < rows * cols; i++) /* keep the NVFP4 tensor range sane */
                if (fmt) x[i] = (float)ldexp(gauss(9, (uint64_t)i) / (0.3 + fabs(gauss(8, (uint64_t)i))), (int)(i / cols % 5));
            hs_packed p;
            assert_int_equal(hs_packed_alloc(&p, &s, rows, cols), HS_OK);
            assert_int_equal(hs_quantize_ref(&s, x, rows, cols, cols, 0, &p), HS_OK);
            float *y = malloc(sizeof(float) * rows * cols), cand[64];
            assert_int_equal(hs_dequantize(&p, y, cols), HS_OK);
            const int W = s.block;
            const float senc = p.tensor_scale;
            int64_t halved = 0;
            for (int64_t r = 0; r < rows; r++)
                for (int64_t g = 0; g * W < cols; g++) {
                    const float *xg = x + r * cols + g * W, *yg = y + r * cols + g * W;
                    float a = 0;
                    for (int i = 0; i < W; i++) a = fmaxf(a, fabsf(xg[i]));
                    /* candidate list of the rule, as (target amax t, T) pairs */
                    float ts[80], Ts[80];
                    int nc = 0;
                    ts[nc] = a, Ts[nc++] = 6.0f;
                    if (s.rule == HS_RULE_HALFS || s.rule == HS_RULE_HALF) ts[nc] = a, Ts[nc++] = 12.0f;
                    if (s.rule == HS_RULE_4OVER6) ts[nc] = a, Ts[nc++] = 4.0f;
                    if (s.rule == HS_RULE_MSE)
                        for (int q = 69; q >= 0; q--) ts[nc] = (float)(30 + q) / 100.0f * a, Ts[nc++] = 6.0f;
                    long double chosen = sse_ld(xg, yg, W), smax = -1;
                    float dmax = 0, dchosen = 0;
                    int found = 0;
                    for (int c = 0; c < nc; c++) {
                        float X = ts[c] / Ts[c], enc, dec;
                        if (fmt) {
                            float sb = hs_ue4m3_decode(hs_ue4m3_encode(X * senc));
                            enc = senc / sb, dec = sb / senc;
                        } else {
                            if (X < FLT_MIN) X = FLT_MIN;
                            enc = 1.0f / X, dec = X;
                        }
                        cand_cont(xg, W, enc, dec, cand);
                        long double sc = sse_ld(xg, cand, W);
                        if (c == 0) smax = sc, dmax = dec;
                        int same = 1;
                        for (int i = 0; i < W; i++) same &= same_value(cand[i], yg[i]);
                        if (same && !found) found = 1, dchosen = dec;
                        if (s.rule != HS_RULE_HALF && !le_tol(chosen, sc))
                            fail_msg("%s/%s: chosen sse %Lg > candidate %d sse %Lg", fmt ? "nvfp4" : "fp4",
                                     hs_rule_name(s.rule), chosen, c, sc);
                    }
                    if (!found) fail_msg("%s: dequantized group is none of the candidates", hs_rule_name(s.rule));
                    if (s.rule == HS_RULE_HALFS || s.rule == HS_RULE_4OVER6)
                        if (dchosen != dmax) assert_true(chosen < smax); /* strictly better only */
                    halved += dchosen < dmax;
                }
            if (s.rule != HS_RULE_4OVER6 && p.groups_halved != halved)
                fail_msg("%s/%s: groups_halved %lld, counted %lld", fmt ? "nvfp4" : "fp4",
                         hs_rule_name(s.rule), (long long)p.groups_halved, (long long)halved);
            if (s.rule == HS_RULE_HALF && !fmt) assert_true(p.groups_halved * 10 > p.groups_total * 9);
            hs_packed_free(&p);
            free(x);
            free(y);
        }
}


/* continuous mse, one FP32 scale per row of 4096: one value a = 10 and a bulk of ±3, ±2, ±0.25,
 * which E2M1 represents exactly only with the clip 0.30·a (z = 6, 4, 0.5); every clip from 0.31
 * to 1.00 leaves some bulk values off the grid, and the bulk outweighs the clipped maximum. So the
 * bottom of the grid must win; and the chosen clip beats all 71 candidates on every row. */
static void continuous_mse_grid(void **state) {
    (void)state;
    const int64_t rows = 4, cols = 4096;
    float *x = malloc(sizeof(float) * rows * cols), *y = malloc(sizeof(float) * rows * cols);
    float *cand = malloc(sizeof(float) * cols);
    static const float bulk[3] = {3.0f, 2.0f, 0.25f};
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < cols; i++)
            x[r * cols + i] = ldexpf(i == 0 ? 10.0f : (i & 1 ? -1 : 1) * bulk[i % 3], (int)r * 3 - 4);
    hs_quant_spec s = preset(HS_FMT_FP4);
    s.rule = HS_RULE_MSE;
    s.group = HS_GROUP_ROW;
    assert_int_equal(hs_qdq(&s, x, rows, cols, cols, 0, y, cols), HS_OK);
    int low = 0;
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols, *yr = y + r * cols;
        float a = 0;
        for (int64_t i = 0; i < cols; i++) a = fmaxf(a, fabsf(xr[i]));
        long double chosen = sse_ld(xr, yr, cols);
        int match = -1;
        for (int k = 70; k >= 0; k--) {
            float X = (float)(30 + k) / 100.0f * a / 6.0f;
            cand_cont(xr, cols, 1.0f / X, X, cand);
            long double sk = sse_ld(xr, cand, cols);
            assert_true(le_tol(chosen, sk));
            if (match < 0 && !memcmp(cand, yr, sizeof(float) * cols)) match = k;
        }
        assert_true(match >= 0);
        low += match == 0; /* the clip 0.30·amax won */
    }
    assert_int_equal(low, rows);
    free(x);
    free(y);
    free(cand);
}

/* halfs-sigma: the closed form, group by group */
static void halfs_sigma_rule(void **state) {
    (void)state;
    const int64_t rows = 32, cols = 128;
    float *x = heavy(3, rows, cols);
    hs_quant_spec s = preset(HS_FMT_MXFP4);
    s.rule = HS_RULE_HALFS_SIGMA;
    hs_packed p;
    assert_int_equal(hs_packed_alloc(&p, &s, rows, cols), HS_OK);
    assert_int_equal(hs_quantize_ref(&s, x, rows, cols, cols, 0, &p), HS_OK);
    int nh = 0, nc = 0;
    for (int64_t r = 0; r < rows; r++)
        for (int g = 0; g < 4; g++) {
            const float *xg = x + r * cols + g * 32;
            double a = 0, s2 = 0;
            for (int i = 0; i < 32; i++) a = fmax(a, fabs(xg[i])), s2 += (double)xg[i] * xg[i];
            double cs = 4.147 * sqrt(s2 / 32);
            int ec = ceil_exp(xg, 32);
            int want = fabs(a / 2 - cs) < fabs(a - cs) ? ec - 1 : ec;
            if (want < -127) want = -127;
            int got = ((uint8_t *)p.scales)[r * 4 + g] - 127;
            if (fabs(fabs(a / 2 - cs) - fabs(a - cs)) > 1e-9 * a) assert_int_equal(got, want);
            nh += got < ec;
            nc += got == ec;
        }
    assert_true(nh > 0 && nc > 0); /* both branches exercised */
    hs_packed_free(&p);
    free(x);
}


/* Exponents at every rule's decision boundary, and crafted groups for the search rules' ties
 * and far candidates (random data almost never lands there). */
static int e8m0_exp_of(const hs_quant_spec *s, const float *x, int64_t n) {
    hs_packed p;
    assert_int_equal(hs_packed_alloc(&p, s, 1, n), HS_OK);
    assert_int_equal(hs_quantize_ref(s, x, 1, n, n, 0, &p), HS_OK);
    int e = ((uint8_t *)p.scales)[0] - 127;
    hs_packed_free(&p);
    return e;
}

static void rule_boundaries(void **state) {
    (void)state;
    hs_quant_spec s = preset(HS_FMT_MXFP4);
    /* amax: expected e for ocp, ceil, rceil, even, half (docs/FORMATS.md §6 table) */
    static const struct { float a; int ocp, ceil, rceil, even, half; } t[] = {
        {1.0f, -2, -2, -2, -2, -3},  {1.5f, -2, -1, -2, -2, -2},     {1.75f, -2, -1, -1, -1, -2},
        {2.0f, -1, -1, -1, -1, -2},  {3.0f, -1, 0, -1, -1, -1},      {4.0f, 0, 0, 0, 0, -1},
        {6.0f, 0, 1, 0, 0, 0},       {7.0f, 0, 1, 1, 1, 0},          {8.0f, 1, 1, 1, 1, 0},
    };
    const hs_rule rules[5] = {HS_RULE_OCP, HS_RULE_CEIL, HS_RULE_RCEIL, HS_RULE_EVEN, HS_RULE_HALF};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        for (int k = -100; k <= 100; k += 50) {
            float x[32];
            for (int j = 0; j < 32; j++) x[j] = ldexpf(t[i].a, k) * (float)((j * 7) % 11 - 5) / 5.0f;
            x[0] = ldexpf(t[i].a, k);
            const int want[5] = {t[i].ocp, t[i].ceil, t[i].rceil, t[i].even, t[i].half};
            for (int r = 0; r < 5; r++) {
                s.rule = rules[r];
                int e = e8m0_exp_of(&s, x, 32) - k;
                if (e != want[r]) fail_msg("rule %s amax %g·2^%d: e = %d, want %d", hs_rule_name(rules[r]),
                                           t[i].a, k, e, want[r]);
                float y[32], ref[32];
                assert_int_equal(hs_qdq(&s, x, 1, 32, 32, 0, y, 32), HS_OK);
                pow2_ref_group(rules[r], x, 32, 1, ref);
                for (int j = 0; j < 32; j++) assert_true(same_value(y[j], ref[j]));
            }
            /* just below the boundaries that depend on the significand */
            float xb[32];
            memcpy(xb, x, sizeof xb);
            xb[0] = nextafterf(x[0], 0.0f);
            for (int r = 0; r < 5; r++) {
                s.rule = rules[r];
                float y[32], ref[32];
                assert_int_equal(hs_qdq(&s, xb, 1, 32, 32, 0, y, 32), HS_OK);
                pow2_ref_group(rules[r], xb, 32, 1, ref);
                for (int j = 0; j < 32; j++) assert_true(same_value(y[j], ref[j]));
            }
        }
    /* halfs and mse on a tie: every value exact at both ceil (X = 1) and ceil−1 (X = 1/2):
     * the squared errors are both 0, so the larger scale stays */
    float tie[32] = {3, 1.5f, -1, 0.5f, -3, 2, 0, 1};
    s.rule = HS_RULE_HALFS;
    assert_int_equal(e8m0_exp_of(&s, tie, 32), 0);
    s.rule = HS_RULE_MSE;
    assert_int_equal(e8m0_exp_of(&s, tie, 32), 0);
    /* and halfs does halve when strictly better: 0.75 rounds to 1 at X = 1, exact at X = 1/2 */
    tie[1] = 0.75f;
    s.rule = HS_RULE_HALFS;
    assert_int_equal(e8m0_exp_of(&s, tie, 32), -1);
    /* mse reaches ceil−3: one value just above 16 and 511 values of ±1.5, exact only at X = 1:
     * SSE at X = 8, 4, 2, 1: 2302, 128, 144, 100 */
    {
        float *row = malloc(512 * sizeof(float));
        for (int j = 0; j < 512; j++) row[j] = (j & 1) ? -1.5f : 1.5f;
        row[0] = 16.01f;
        s.rule = HS_RULE_MSE;
        s.group = HS_GROUP_ROW;
        assert_int_equal(e8m0_exp_of(&s, row, 512), 0); /* ceil is 5 − 2 = 3 */
        s.rule = HS_RULE_CEIL;
        assert_int_equal(e8m0_exp_of(&s, row, 512), 3);
        free(row);
        s.group = HS_GROUP_BLOCK;
    }
    /* halfs-sigma: a = 1 with 31 values b setting a/σ on either side of the threshold
     * a/σ = (4/3)·4.147 = 5.529: below it keep ceil, above it halve */
    s.rule = HS_RULE_HALFS_SIGMA;
    const double ratios[2] = {5.50, 5.56};
    for (int i = 0; i < 2; i++) {
        float g[32];
        double b = sqrt((32.0 / (ratios[i] * ratios[i]) - 1.0) / 31.0);
        for (int j = 0; j < 32; j++) g[j] = (float)b;
        g[0] = 1.0f;
        assert_int_equal(e8m0_exp_of(&s, g, 32), i ? -3 : -2); /* ceil: 0 − 2 */
    }
}


/* the internal error measure (scale_rules.h) equals the brute-force SSE of the codec's values */
static void group_sse_contract(void **state) {
    (void)state;
    const hs_elem elems[] = {HS_ELEM_E2M1, HS_ELEM_E4M3, HS_ELEM_INT4, HS_ELEM_E5M2};
    const float maxv[] = {6, 448, 7, 57344};
    for (int k = 0; k < 4; k++)
        for (int trial = 0; trial < 200; trial++) {
            float v[37];
            for (int i = 0; i < 37; i++) v[i] = (float)gauss(200 + (uint64_t)trial, (uint64_t)i) * maxv[k] / 3;
            v[trial % 37] = maxv[k] * 1.3f; /* one saturating value */
            float enc = ldexpf(1.0f, trial % 5 - 2) * (trial & 1 ? 1.0f : 0.8f), dec = 1.0f / enc;
            long double want = 0;
            for (int i = 0; i < 37; i++) {
                float z = v[i] * enc;
                float q = hs_elem_value(elems[k], hs_elem_encode(elems[k], z, HS_ROUND_RNE, 0));
                long double d = (long double)v[i] - (long double)(q * dec);
                want += d * d;
            }
            double got = hs_group_sse(elems[k], v, 37, enc, dec);
            if (fabsl(got - want) > 1e-14L * want) fail_msg("elem %d: sse %.17g want %.17Lg", k, got, want);
        }
    /* element values: INT4 nibbles are two's complement, E5M2 saturates in a quantizer */
    assert_true(hs_elem_value(HS_ELEM_INT4, hs_elem_encode(HS_ELEM_INT4, -7.0f, HS_ROUND_RNE, 0)) == -7.0f);
    assert_int_equal(hs_elem_encode(HS_ELEM_INT4, -1.0f, HS_ROUND_RNE, 0), 0xF);
    assert_int_equal(hs_elem_encode(HS_ELEM_E5M2, 1e9f, HS_ROUND_RNE, 0), 0x7B);
    assert_true(hs_group_amax((const float[]){1, -3, 2}, 3) == 3.0f);
    assert_true(isnan(hs_group_amax((const float[]){1, NAN, INFINITY}, 3)));
    assert_true(isinf(hs_group_amax((const float[]){1, -INFINITY, 2}, 3)));
}

/* ---------------------------------------------------------------- NVFP4 §6 by hand */
static void nvfp4_hand_case(void **state) {
    (void)state;
    float x[32] = {0};
    x[0] = 12.0f, x[1] = -3.0f, x[2] = 1.5f, x[3] = 0.2f; /* block 0: amax 12 */
    x[16] = 1.0f, x[17] = 0.5f, x[18] = -0.25f;            /* block 1: amax 1 */
    hs_quant_spec s = preset(HS_FMT_NVFP4);
    hs_packed p;
    assert_int_equal(hs_packed_alloc(&p, &s, 1, 32), HS_OK);
    assert_int_equal(hs_quantize_ref(&s, x, 1, 32, 32, 0, &p), HS_OK);
    /* s_enc = 6·448/12 = 224; block 0: s_b = UE4M3(12/6·224 = 448) = 0x7E; block 1:
     * s_b = UE4M3(1/6·224 = 37.33) = 36 (E4M3 step 4 in [32, 64)) */
    assert_true(p.tensor_scale == 224.0f);
    const uint8_t *sc = p.scales;
    assert_int_equal(sc[0], 0x7E);
    assert_int_equal(sc[1], 0x61); /* 36 = 1.125·2^5: (5+6)<<3 | 9 */
    /* block 0: x·224/448 = 6, −1.5, 0.75 (tie → 1), 0.1 (→ 0) */
    assert_int_equal(p.codes[0], 0x7 | (0xB << 4));
    assert_int_equal(p.codes[1], 0x2 | (0x0 << 4));
    /* block 1: x·224/36 = 6.22 (saturates to 6: the UE4M3 rounding shrank s_b), 3.11 → 3,
     * −1.56 → −1.5 */
    assert_int_equal(p.codes[8], 0x7 | (0x5 << 4));
    assert_int_equal(p.codes[9], 0xB);
    float y[32];
    assert_int_equal(hs_dequantize(&p, y, 32), HS_OK);
    const float d1 = 36.0f / 224.0f;
    assert_true(y[0] == 12.0f && y[1] == -3.0f && y[2] == 2.0f && y[3] == 0.0f);
    assert_true(y[16] == 6.0f * d1 && y[17] == 3.0f * d1 && y[18] == -1.5f * d1);
    assert_int_equal(p.groups_total, 2);
    /* 4over6: s_enc = 6·256/12 = 128; block 1 candidates: 6 → UE4M3(1/6·128 = 21.33) = 22,
     * 4 → UE4M3(1/4·128 = 32) = 32, exact for 1 and 0.5 and −0.25: strictly better */
    s.rule = HS_RULE_4OVER6;
    assert_int_equal(hs_quantize_ref(&s, x, 1, 32, 32, 0, &p), HS_OK);
    assert_true(p.tensor_scale == 128.0f);
    assert_int_equal(((uint8_t *)p.scales)[1], hs_ue4m3_encode(32.0f));
    assert_int_equal(hs_dequantize(&p, y, 32), HS_OK);
    assert_true(y[16] == 1.0f && y[17] == 0.5f && y[18] == -0.25f);
    /* all-zero tensor: s_enc = 1, block scales clamp to 2^-9, codes 0 */
    memset(x, 0, sizeof x);
    s.rule = HS_RULE_MAX;
    assert_int_equal(hs_quantize_ref(&s, x, 1, 32, 32, 0, &p), HS_OK);
    assert_true(p.tensor_scale == 1.0f);
    assert_int_equal(((uint8_t *)p.scales)[0], 0x01);
    for (int i = 0; i < 16; i++) assert_int_equal(p.codes[i], 0);
    hs_packed_free(&p);
}

/* ---------------------------------------------------------------- special groups */
static void nonfinite_zero_subnormal_groups(void **state) {
    (void)state;
    const hs_format fmts[] = {HS_FMT_MXFP4, HS_FMT_NVFP4, HS_FMT_FP4, HS_FMT_MXFP8_E4M3, HS_FMT_INT4};
    for (size_t k = 0; k < 5; k++) {
        hs_quant_spec s = preset(fmts[k]);
        int B = s.block;
        const int64_t cols = 4 * B;
        float x[4 * 32];
        for (int i = 0; i < cols; i++) x[i] = (float)(i % 7) - 3.0f;
        x[3] = NAN;            /* group 0: NaN */
        x[B + 5] = -INFINITY;  /* group 1: Inf */
        for (int i = 2 * B; i < 3 * B; i++) x[i] = (i & 1) ? -0.0f : 0.0f; /* group 2: zeros */
        hs_packed p;
        assert_int_equal(hs_packed_alloc(&p, &s, 1, cols), HS_OK);
        assert_int_equal(hs_quantize_ref(&s, x, 1, cols, cols, 0, &p), HS_OK);
        float y[4 * 32];
        assert_int_equal(hs_dequantize(&p, y, cols), HS_OK);
        int bytes_per = s.elem == HS_ELEM_E4M3 ? B : B / 2;
        for (int g = 0; g < 2; g++) {
            for (int i = 0; i < B; i++) assert_true(isnan(y[g * B + i]));
            for (int i = 0; i < bytes_per; i++) assert_int_equal(p.codes[g * bytes_per + i], 0);
            if (s.scale_fmt == HS_SCALE_E8M0) assert_int_equal(((uint8_t *)p.scales)[g], 0xFF);
            if (s.scale_fmt == HS_SCALE_UE4M3) assert_int_equal(((uint8_t *)p.scales)[g], 0x7F);
            if (s.scale_fmt == HS_SCALE_FP32) assert_true(isnan(((float *)p.scales)[g]));
        }
        for (int i = 2 * B; i < 3 * B; i++) assert_true(y[i] == 0.0f);
        if (s.scale_fmt == HS_SCALE_E8M0) assert_int_equal(((uint8_t *)p.scales)[2], 0);
        if (s.scale_fmt == HS_SCALE_UE4M3) assert_int_equal(((uint8_t *)p.scales)[2], 0x01);
        if (s.scale_fmt == HS_SCALE_FP32) assert_true(((float *)p.scales)[2] == FLT_MIN);
        /* the finite group is unaffected, and NVFP4's tensor scale ignores NaN/Inf: amax 3 */
        for (int i = 3 * B; i < 4 * B; i++) assert_true(isfinite(y[i]) && fabsf(y[i] - x[i]) <= 0.5f);
        if (s.two_level) assert_true(p.tensor_scale == 2688.0f / 3.0f);
        hs_packed_free(&p);
    }
    /* E8M0 exponent clamping at the bottom: amax 2^-130 wants e = -132, clamps to -127 */
    hs_quant_spec s = preset(HS_FMT_MXFP4);
    const hs_rule rules[] = {HS_RULE_OCP, HS_RULE_CEIL, HS_RULE_HALFS, HS_RULE_MSE, HS_RULE_HALF};
    for (size_t k = 0; k < 5; k++) {
        s.rule = rules[k];
        float x[32] = {0}, y[32];
        x[0] = 0x1p-130f, x[1] = -0x1p-126f * 0.75f, x[2] = 0x1p-149f;
        hs_packed p;
        assert_int_equal(hs_packed_alloc(&p, &s, 1, 32), HS_OK);
        assert_int_equal(hs_quantize_ref(&s, x, 1, 32, 32, 0, &p), HS_OK);
        assert_int_equal(hs_dequantize(&p, y, 32), HS_OK);
        /* amax = 0.75·2^-126: ceil e = -126-2 = -128 -> -127; ocp floor e = -127-2 -> -127 */
        assert_int_equal(((uint8_t *)p.scales)[0], 0);
        /* x/2^-127: 2^-3 -> 0; -1.5 -> -1.5; 2^-22 -> 0 */
        assert_true(y[0] == 0.0f && y[1] == -0x1p-126f * 0.75f && y[2] == 0.0f);
        assert_int_equal(p.groups_halved, 0);
        hs_packed_free(&p);
    }
    /* the top end: amax = 2^127 (ceil: e = 125, byte 252), FLT_MAX with ocp (e = 125) */
    {
        float x[32] = {0}, y[32];
        x[0] = 0x1p127f, x[1] = -0x1p126f;
        s.rule = HS_RULE_CEIL;
        hs_packed p;
        assert_int_equal(hs_packed_alloc(&p, &s, 1, 32), HS_OK);
        assert_int_equal(hs_quantize_ref(&s, x, 1, 32, 32, 0, &p), HS_OK);
        assert_int_equal(((uint8_t *)p.scales)[0], 252);
        assert_int_equal(hs_dequantize(&p, y, 32), HS_OK);
        assert_true(y[0] == 0x1p127f && y[1] == -0x1p126f);
        x[0] = FLT_MAX;
        s.rule = HS_RULE_OCP;
        assert_int_equal(hs_quantize_ref(&s, x, 1, 32, 32, 0, &p), HS_OK);
        assert_int_equal(((uint8_t *)p.scales)[0], 252);
        assert_int_equal(hs_dequantize(&p, y, 32), HS_OK);
        assert_true(y[0] == 0x1.8p127f); /* saturated to 6·2^125 */
        hs_packed_free(&p);
    }
}

/* per-tensor groups, FP32 scales and NaN poisoning the whole tensor */
static void tensor_groups(void **state) {
    (void)state;
    const int64_t rows = 8, cols = 48;
    float *x = heavy(21, rows, cols);
    for (int64_t i = 0; i < rows * cols; i++) x[i] = ldexpf(x[i], -hs_floor_log2(fabsf(x[i]) + 1e-30f) / 4);
    hs_quant_spec s = preset(HS_FMT_FP4);
    s.group = HS_GROUP_TENSOR;
    hs_packed p;
    assert_int_equal(hs_packed_alloc(&p, &s, rows, cols), HS_OK);
    assert_int_equal(hs_quantize_ref(&s, x, rows, cols, cols, 0, &p), HS_OK);
    assert_int_equal(p.groups_per_row, 1);
    assert_int_equal(p.groups_total, 1);
    float a = 0;
    for (int64_t i = 0; i < rows * cols; i++) a = fmaxf(a, fabsf(x[i]));
    for (int64_t r = 0; r < rows; r++) assert_true(((float *)p.scales)[r] == a / 6.0f);
    x[17] = NAN;
    assert_int_equal(hs_quantize_ref(&s, x, rows, cols, cols, 0, &p), HS_OK);
    float *y = malloc(sizeof(float) * rows * cols);
    assert_int_equal(hs_dequantize(&p, y, cols), HS_OK);
    for (int64_t i = 0; i < rows * cols; i++) assert_true(isnan(y[i]));
    hs_packed_free(&p);
    free(x);
    free(y);
}

/* ---------------------------------------------------------------- properties */
static hs_quant_spec spec_variant(int k) {
    hs_quant_spec s;
    switch (k) {
    case 0: s = preset(HS_FMT_MXFP4); break;
    case 1: s = preset(HS_FMT_MXFP4); s.rule = HS_RULE_OCP; s.block = 16; break;
    case 2: s = preset(HS_FMT_MXFP4); s.rule = HS_RULE_MSE; break;
    case 3: s = preset(HS_FMT_NVFP4); break;
    case 4: s = preset(HS_FMT_NVFP4); s.rule = HS_RULE_4OVER6; s.tile2d = 16; break;
    case 5: s = preset(HS_FMT_FP4); s.rule = HS_RULE_HALFS; break;
    case 6: s = preset(HS_FMT_FP4ROW); break;
    case 7: s = preset(HS_FMT_MXFP8_E4M3); break;
    case 8: s = preset(HS_FMT_INT4); break;
    case 9: s = preset(HS_FMT_BF16); break;
    case 10: s = preset(HS_FMT_MXFP4); s.rht = 32; s.rht_seed = 5; break;
    case 11: s = preset(HS_FMT_MXFP4); s.rounding = HS_ROUND_SR; s.seed = 3; s.stream = 9; break;
    case 12: s = preset(HS_FMT_NVFP4); s.rounding = HS_ROUND_SR; s.rht = 16; s.seed = 1; break;
    case 13: s = preset(HS_FMT_MXFP4); s.rule = HS_RULE_HALFS_SIGMA; s.block = 64; break;
    case 14: s = preset(HS_FMT_FP4); s.rule = HS_RULE_MSE; s.block = 128; break;
    case 15: s = preset(HS_FMT_MXFP4); s.block = 16; s.tile2d = 16; s.rounding = HS_ROUND_RNA; break;
    case 16: s = preset(HS_FMT_FP32); break;
    default: s = preset(HS_FMT_MXFP4); s.rounding = HS_ROUND_RTS; s.group = HS_GROUP_TENSOR; break;
    }
    assert_int_equal(hs_quant_spec_validate(&s), HS_OK);
    return s;
}
#define N_VARIANTS 18

static void packed_equal(const hs_packed *a, const hs_packed *b, const char *what) {
    assert_int_equal(a->rows, b->rows);
    assert_int_equal(a->cols, b->cols);
    size_t cb = (size_t)(a->rows * a->code_stride);
    if (memcmp(a->codes, b->codes, cb)) fail_msg("%s: codes differ", what);
    size_t sb = (size_t)(a->rows * a->groups_per_row) *
                (a->spec.scale_fmt == HS_SCALE_FP32 ? 4 : 1);
    if (sb && memcmp(a->scales, b->scales, sb)) fail_msg("%s: scales differ", what);
    assert_true(same_bits(a->tensor_scale, b->tensor_scale));
    assert_int_equal(a->groups_halved, b->groups_halved);
    assert_int_equal(a->groups_total, b->groups_total);
}

static void transpose_equals_explicit(void **state) {
    (void)state;
    const int64_t rows = 64, cols = 80; /* packed: 80 × 64 */
    float *x = heavy(31, rows, cols), *xt = malloc(sizeof(float) * rows * cols);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) xt[c * rows + r] = x[r * cols + c];
    for (int k = 0; k < N_VARIANTS; k++) {
        hs_quant_spec s = spec_variant(k);
        if (s.tile2d && s.rule != HS_RULE_MAX) continue; /* tile sums run in source order */
        hs_packed a, b;
        assert_int_equal(hs_packed_alloc(&a, &s, cols, rows), HS_OK);
        assert_int_equal(hs_packed_alloc(&b, &s, cols, rows), HS_OK);
        assert_int_equal(hs_quantize_ref(&s, x, rows, cols, cols, 1, &a), HS_OK);
        assert_int_equal(hs_quantize_ref(&s, xt, cols, rows, rows, 0, &b), HS_OK);
        char what[64];
        snprintf(what, sizeof what, "variant %d", k);
        packed_equal(&a, &b, what);
        /* qdq with transpose returns x's layout: equal to the transpose of qdq(xᵀ) */
        float *y = qdq_alloc(&s, x, rows, cols, 1), *yt = qdq_alloc(&s, xt, cols, rows, 0);
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = 0; c < cols; c++)
                assert_true(same_bits(y[r * cols + c], yt[c * rows + r]));
        free(y);
        free(yt);
        hs_packed_free(&a);
        hs_packed_free(&b);
    }
    free(x);
    free(xt);
}

static void tile2d_w_and_wt(void **state) {
    (void)state;
    const int64_t rows = 40, cols = 72; /* partial tiles on both axes */
    float *w = heavy(41, rows, cols);
    for (int64_t i = 0; i < rows * cols; i++) w[i] = ldexpf(w[i], -hs_floor_log2(fabsf(w[i]) + 1e-30f) / 2);
    const int variants[] = {4, 15, 3};
    for (int v = 0; v < 3; v++) {
        hs_quant_spec s = spec_variant(variants[v]);
        s.tile2d = 16, s.rounding = HS_ROUND_RNE;
        float *y0 = qdq_alloc(&s, w, rows, cols, 0), *y1 = qdq_alloc(&s, w, rows, cols, 1);
        for (int64_t i = 0; i < rows * cols; i++)
            if (!same_bits(y0[i], y1[i])) fail_msg("variant %d: W and Wᵀ differ at %lld", variants[v], (long long)i);
        /* one scale per 16×16 tile, replicated on the tile's rows */
        hs_packed p;
        assert_int_equal(hs_packed_alloc(&p, &s, rows, cols), HS_OK);
        assert_int_equal(hs_quantize_ref(&s, w, rows, cols, cols, 0, &p), HS_OK);
        assert_int_equal(p.groups_total, 3 * 5);
        for (int64_t r = 0; r < rows; r++)
            for (int64_t g = 0; g < p.groups_per_row; g++)
                assert_int_equal(((uint8_t *)p.scales)[r * p.groups_per_row + g],
                                 ((uint8_t *)p.scales)[(r / 16 * 16) * p.groups_per_row + g]);
        hs_packed_free(&p);
        free(y0);
        free(y1);
    }
    free(w);
}

static void threads_do_not_matter(void **state) {
    (void)state;
    const int64_t rows = 256, cols = 320;
    float *x = heavy(51, rows, cols);
    for (int k = 0; k < N_VARIANTS; k++) {
        hs_quant_spec s = spec_variant(k);
        for (int t = 0; t < 2; t++) {
            hs_packed a, b;
            assert_int_equal(hs_packed_alloc(&a, &s, t ? cols : rows, t ? rows : cols), HS_OK);
            assert_int_equal(hs_packed_alloc(&b, &s, t ? cols : rows, t ? rows : cols), HS_OK);
            omp_set_num_threads(1);
            assert_int_equal(hs_quantize_ref(&s, x, rows, cols, cols, t, &a), HS_OK);
            omp_set_num_threads(2);
            assert_int_equal(hs_quantize_ref(&s, x, rows, cols, cols, t, &b), HS_OK);
            packed_equal(&a, &b, "1 vs 2 threads");
            hs_packed_free(&a);
            hs_packed_free(&b);
        }
    }
    free(x);
}

static void odd_symmetry_and_idempotence(void **state) {
    (void)state;
    const int64_t rows = 48, cols = 128;
    float *x = heavy(61, rows, cols), *nx = malloc(sizeof(float) * rows * cols);
    for (int64_t i = 0; i < rows * cols; i++) nx[i] = -x[i];
    for (int k = 0; k < N_VARIANTS; k++) {
        hs_quant_spec s = spec_variant(k);
        float *y = qdq_alloc(&s, x, rows, cols, 0);
        if (s.rounding != HS_ROUND_SR) {
            float *ny = qdq_alloc(&s, nx, rows, cols, 0);
            for (int64_t i = 0; i < rows * cols; i++)
                /* integers have no -0, and an exact zero sum (inverse RHT) is +0: compare values */
                if (s.elem == HS_ELEM_INT4 || s.rht ? !same_value(ny[i], -y[i])
                                           : !same_bits(ny[i], -y[i]) && !(isnan(y[i]) && isnan(ny[i])))
                    fail_msg("variant %d: qdq(-x) != -qdq(x) at %lld: %a vs %a", k, (long long)i, ny[i], y[i]);
            free(ny);
        }
        /* idempotence: with power-of-two scales the dequantized values are a fixed point */
        int pow2_fixed = s.scale_fmt == HS_SCALE_E8M0 && s.rounding != HS_ROUND_SR && !s.rht &&
                         s.rule != HS_RULE_HALF && s.rule != HS_RULE_HALFS_SIGMA;
        if (pow2_fixed || s.scale_fmt == HS_SCALE_NONE) {
            float *yy = qdq_alloc(&s, y, rows, cols, 0);
            for (int64_t i = 0; i < rows * cols; i++)
                if (!same_value(yy[i], y[i]))
                    fail_msg("variant %d: qdq(qdq(x)) != qdq(x) at %lld: %a vs %a", k, (long long)i, yy[i], y[i]);
            free(yy);
        }
        free(y);
    }
    /* quantize(dequantize(q)) = q on the codes, for ocp (scale exponent is stable) */
    hs_quant_spec s = preset(HS_FMT_MXFP4);
    s.rule = HS_RULE_OCP;
    hs_packed p, q;
    float *y = malloc(sizeof(float) * rows * cols);
    assert_int_equal(hs_packed_alloc(&p, &s, rows, cols), HS_OK);
    assert_int_equal(hs_packed_alloc(&q, &s, rows, cols), HS_OK);
    assert_int_equal(hs_quantize_ref(&s, x, rows, cols, cols, 0, &p), HS_OK);
    assert_int_equal(hs_dequantize(&p, y, cols), HS_OK);
    assert_int_equal(hs_quantize_ref(&s, y, rows, cols, cols, 0, &q), HS_OK);
    /* codes may differ only in the sign of zero: compare magnitudes of zero codes */
    for (int64_t i = 0; i < rows * p.code_stride; i++)
        for (int h = 0; h < 2; h++) {
            int a = (p.codes[i] >> (4 * h)) & 0xF, b = (q.codes[i] >> (4 * h)) & 0xF;
            if ((a & 7) == 0 && (b & 7) == 0) continue;
            assert_int_equal(a, b);
        }
    assert_memory_equal(p.scales, q.scales, (size_t)(rows * p.groups_per_row));
    hs_packed_free(&p);
    hs_packed_free(&q);
    free(y);
    free(x);
    free(nx);
}

static void sr_unbiased(void **state) {
    (void)state;
    const int64_t n = 64;
    float x[64];
    for (int i = 0; i < n; i++) x[i] = (float)gauss(77, (uint64_t)i) * 3.0f;
    x[5] = 11.0f; /* a block maximum that RNE would round */
    const hs_format fmts[] = {HS_FMT_MXFP4, HS_FMT_NVFP4, HS_FMT_FP4};
    for (size_t k = 0; k < 3; k++) {
        hs_quant_spec s = preset(fmts[k]);
        s.rounding = HS_ROUND_SR;
        s.stream = 4;
        /* NVFP4 needs the 3/4 pre-scale to be unbiased at a block maximum: its UE4M3 block scale
         * can round down by up to 16/17, pushing the scaled maximum past 6 (docs/FORMATS.md §7) */
        if (fmts[k] == HS_FMT_NVFP4) s.sr_prescale = 1;
        const int S = 3000;
        double sum[64] = {0}, sum2[64] = {0};
        float y[64], y0[64];
        int differ = 0;
        for (int seed = 0; seed < S; seed++) {
            s.seed = (uint64_t)seed;
            assert_int_equal(hs_qdq(&s, x, 1, n, n, 0, y, n), HS_OK);
            if (seed == 0) memcpy(y0, y, sizeof y);
            else differ |= memcmp(y0, y, sizeof y) != 0;
            for (int i = 0; i < n; i++) sum[i] += y[i], sum2[i] += (double)y[i] * y[i];
        }
        assert_true(differ);
        /* same seed, same result */
        s.seed = 0;
        assert_int_equal(hs_qdq(&s, x, 1, n, n, 0, y, n), HS_OK);
        assert_memory_equal(y, y0, sizeof y);
        for (int i = 0; i < n; i++) {
            double mean = sum[i] / S, var = sum2[i] / S - mean * mean;
            double se = sqrt(fmax(var, 0) / S);
            /* 5 standard errors, plus float rounding of the scale arithmetic */
            if (fabs(mean - x[i]) > 5 * se + 1e-5 * fabs(x[i]))
                fail_msg("%s SR: mean %g for x=%g (se %g)", hs_format_name(fmts[k]), mean, x[i], se);
        }
    }
    /* the counter of packed element (r, c) is r·cols + c of the packed (output) matrix:
     * ocp with amax in [4, 8) gives X = 1, so the code is SR(x) with that counter's u */
    {
        hs_quant_spec s = preset(HS_FMT_MXFP4);
        s.rule = HS_RULE_OCP, s.rounding = HS_ROUND_SR, s.sr_prescale = 0;
        s.seed = 12345, s.stream = 77;
        const int64_t rows = 32, cols = 48; /* packed transposed: 48 × 32 */
        float xs[32 * 48];
        for (int i = 0; i < rows * cols; i++) xs[i] = (float)gauss(5, (uint64_t)i);
        /* every block's amax is 5: in row 0 (each column's block) and at columns 0 and 32 */
        for (int c = 0; c < cols; c++) xs[c] = 5.0f;
        for (int r = 0; r < rows; r++) xs[r * cols] = xs[r * cols + 32] = -5.0f;
        for (int t = 0; t < 2; t++) {
            int64_t R = t ? cols : rows, C = t ? rows : cols;
            hs_packed p;
            assert_int_equal(hs_packed_alloc(&p, &s, R, C), HS_OK);
            assert_int_equal(hs_quantize_ref(&s, xs, rows, cols, cols, t, &p), HS_OK);
            for (int64_t r = 0; r < R; r++)
                for (int64_t c = 0; c < C; c++) {
                    assert_int_equal(((uint8_t *)p.scales)[r * p.groups_per_row + c / 32], 127);
                    float v = t ? xs[c * cols + r] : xs[r * cols + c];
                    uint8_t want = hs_e2m1_encode(v, HS_ROUND_SR, hs_rng_uniform(12345, 77, (uint64_t)(r * C + c)));
                    uint8_t got = (p.codes[r * p.code_stride + c / 2] >> (4 * (c & 1))) & 0xF;
                    assert_int_equal(got, want);
                }
            hs_packed_free(&p);
        }
    }
    /* pre-scale is on for E8M0 by default, and decodes with 4/3 */
    hs_quant_spec s = preset(HS_FMT_MXFP4);
    s.rounding = HS_ROUND_SR;
    assert_true(hs_spec_sr_prescaled(&s));
    s.sr_prescale = 0;
    assert_false(hs_spec_sr_prescaled(&s));
    s = preset(HS_FMT_NVFP4);
    s.rounding = HS_ROUND_SR;
    assert_false(hs_spec_sr_prescaled(&s));
    s.sr_prescale = 1;
    assert_true(hs_spec_sr_prescaled(&s));
}

/* RHT fused in the quantizer = quantizing the explicitly rotated matrix */
static void rht_fused(void **state) {
    (void)state;
    const int64_t rows = 64, cols = 96;
    float *x = heavy(71, rows, cols), *xr = malloc(sizeof(float) * rows * cols);
    for (int t = 0; t < 2; t++) {
        hs_quant_spec s = preset(HS_FMT_MXFP4);
        s.rht = 32, s.rht_seed = 99;
        memcpy(xr, x, sizeof(float) * rows * cols);
        assert_int_equal(hs_rht_apply(xr, rows, cols, cols, 32, 99, t, 0), HS_OK);
        hs_quant_spec s0 = s;
        s0.rht = 0;
        int64_t R = t ? cols : rows, C = t ? rows : cols;
        hs_packed a, b;
        assert_int_equal(hs_packed_alloc(&a, &s, R, C), HS_OK);
        assert_int_equal(hs_packed_alloc(&b, &s0, R, C), HS_OK);
        assert_int_equal(hs_quantize_ref(&s, x, rows, cols, cols, t, &a), HS_OK);
        assert_int_equal(hs_quantize_ref(&s0, xr, rows, cols, cols, t, &b), HS_OK);
        assert_memory_equal(a.codes, b.codes, (size_t)(R * a.code_stride));
        assert_memory_equal(a.scales, b.scales, (size_t)(R * a.groups_per_row));
        /* qdq un-rotates: equals RHT⁻¹(qdq(RHT x)) */
        float *y = qdq_alloc(&s, x, rows, cols, t), *y0 = qdq_alloc(&s0, xr, rows, cols, t);
        assert_int_equal(hs_rht_apply(y0, rows, cols, cols, 32, 99, t, 1), HS_OK);
        for (int64_t i = 0; i < rows * cols; i++) assert_true(same_bits(y[i], y0[i]));
        /* and the rotation helps this heavy-tailed, per-row-scaled data no worse than 2x */
        free(y);
        free(y0);
        hs_packed_free(&a);
        hs_packed_free(&b);
    }
    /* the group axis must be a multiple of the RHT size */
    hs_quant_spec s = preset(HS_FMT_MXFP4);
    s.rht = 64;
    hs_packed p;
    assert_int_equal(hs_packed_alloc(&p, &s, rows, cols), HS_OK);
    assert_int_equal(hs_quantize_ref(&s, x, rows, cols, cols, 0, &p), HS_ERR_INVALID_ARG);
    assert_non_null(strstr(hs_last_error(), "multiple"));
    hs_packed_free(&p);
    free(x);
    free(xr);
}

/* ---------------------------------------------------------------- layout, formats */
static void packed_layout(void **state) {
    (void)state;
    hs_quant_spec s = preset(HS_FMT_MXFP4);
    s.rule = HS_RULE_OCP;
    float x[2 * 40];
    /* row 0: amax 6 -> ocp e = 2 - 2 = 0, X = 1: values land on codes directly */
    static const float v[16] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6, -0.0f, -0.5f, -1, -1.5f, -2, -3, -4, -6};
    for (int i = 0; i < 40; i++) x[i] = v[i % 16], x[40 + i] = v[i % 16] * 0.25f;
    hs_packed p;
    assert_int_equal(hs_packed_alloc(&p, &s, 2, 40), HS_OK);
    assert_int_equal(p.code_stride, 64);
    assert_int_equal(p.groups_per_row, 2);
    assert_int_equal(hs_packed_bytes(&s, 2, 40), 2 * 64 + 64);
    memset(p.codes, 0xAB, 128); /* padding must be rewritten to zero */
    assert_int_equal(hs_quantize_ref(&s, x, 2, 40, 40, 0, &p), HS_OK);
    for (int i = 0; i < 20; i++) /* element 2i low nibble, 2i+1 high nibble */
        assert_int_equal(p.codes[i], ((2 * i) % 16) | (((2 * i + 1) % 16) << 4));
    for (int i = 20; i < 64; i++) assert_int_equal(p.codes[i], 0);
    assert_int_equal(((uint8_t *)p.scales)[0], 127);
    assert_int_equal(((uint8_t *)p.scales)[2], 125); /* row 1: X = 2^-2 */
    assert_memory_equal(p.codes + 64, p.codes, 20);
    hs_packed_free(&p);
    /* 8-bit, bf16 and int4 layouts; strides multiples of 64 */
    const hs_format f[] = {HS_FMT_MXFP8_E4M3, HS_FMT_BF16, HS_FMT_FP32, HS_FMT_INT4, HS_FMT_NVFP4};
    const int64_t stride[] = {128, 192, 320, 64, 64};
    for (int k = 0; k < 5; k++) {
        s = preset(f[k]);
        assert_int_equal(hs_packed_alloc(&p, &s, 3, 70), HS_OK);
        assert_int_equal(p.code_stride, stride[k]);
        assert_true(((uintptr_t)p.codes & 63) == 0);
        if (p.groups_per_row) assert_true(((uintptr_t)p.scales & 63) == 0);
        hs_packed_free(&p);
    }
    /* int4: two's complement nibbles, X = a/7 */
    s = preset(HS_FMT_INT4);
    float xi[32] = {7, -7, 3, -1, 0.49f, -3.5f};
    assert_int_equal(hs_packed_alloc(&p, &s, 1, 32), HS_OK);
    assert_int_equal(hs_quantize_ref(&s, xi, 1, 32, 32, 0, &p), HS_OK);
    assert_true(((float *)p.scales)[0] == 1.0f);
    assert_int_equal(p.codes[0], 0x7 | (0x9 << 4));
    assert_int_equal(p.codes[1], 0x3 | (0xF << 4));
    assert_int_equal(p.codes[2], 0x0 | (0xC << 4)); /* -3.5 -> -4 (RNE) */
    float yi[32];
    assert_int_equal(hs_dequantize(&p, yi, 32), HS_OK);
    assert_true(yi[1] == -7 && yi[3] == -1 && yi[5] == -4);
    hs_packed_free(&p);
    /* bf16 and fp32 formats: element rounding only */
    float *xh = heavy(5, 4, 33);
    s = preset(HS_FMT_BF16);
    float *y = qdq_alloc(&s, xh, 4, 33, 0);
    for (int i = 0; i < 4 * 33; i++) assert_true(same_bits(y[i], hs_bf16_decode(hs_bf16_encode(xh[i]))));
    free(y);
    s = preset(HS_FMT_FP32);
    y = qdq_alloc(&s, xh, 4, 33, 1);
    assert_memory_equal(y, xh, sizeof(float) * 4 * 33);
    free(y);
    free(xh);
}

/* MXFP8 E4M3 with ocp: emax 8, a/X in [256, 512); brute-force nearest E4M3 */
static void mxfp8_ocp(void **state) {
    (void)state;
    const int64_t rows = 16, cols = 64;
    float *x = heavy(81, rows, cols);
    hs_quant_spec s = preset(HS_FMT_MXFP8_E4M3);
    float *y = qdq_alloc(&s, x, rows, cols, 0);
    for (int64_t r = 0; r < rows; r++)
        for (int g = 0; g < 2; g++) {
            const float *xg = x + r * cols + g * 32;
            double a = 0;
            for (int i = 0; i < 32; i++) a = fmax(a, fabs(xg[i]));
            int fe;
            frexp(a, &fe);
            int e = a == 0 ? -127 : fe - 1 - 8;
            if (e < -127) e = -127;
            for (int i = 0; i < 32; i++) {
                float z = (float)ldexp(xg[i], -e);
                float want = (float)ldexp(hs_e4m3_decode(hs_e4m3_encode(z, HS_ROUND_RNE, 0)), e);
                assert_true(same_value(y[r * cols + g * 32 + i], want));
            }
        }
    free(x);
    free(y);
}

/* ---------------------------------------------------------------- specs and names */
static void spec_validation(void **state) {
    (void)state;
    for (int f = 0; f < HS_FMT_COUNT; f++) {
        hs_quant_spec s = preset((hs_format)f);
        assert_int_equal(hs_quant_spec_validate(&s), HS_OK);
        hs_format back;
        assert_int_equal(hs_format_parse(hs_format_name((hs_format)f), &back), HS_OK);
        assert_int_equal(back, f);
    }
    for (int r = 0; r < HS_RULE_COUNT; r++) {
        hs_rule back;
        assert_int_equal(hs_rule_parse(hs_rule_name((hs_rule)r), &back), HS_OK);
        assert_int_equal(back, r);
    }
    for (int r = 0; r < HS_ROUND_COUNT; r++) {
        hs_rounding back;
        assert_int_equal(hs_rounding_parse(hs_rounding_name((hs_rounding)r), &back), HS_OK);
        assert_int_equal(back, r);
    }
    hs_format fb;
    hs_rule rb;
    hs_rounding ob;
    assert_int_equal(hs_format_parse("mxfp5", &fb), HS_ERR_INVALID_ARG);
    assert_int_equal(hs_rule_parse("nearest", &rb), HS_ERR_INVALID_ARG);
    assert_int_equal(hs_rounding_parse("nearest", &ob), HS_ERR_INVALID_ARG);
    assert_string_equal(hs_format_name(HS_FMT_MXFP8_E4M3), "mxfp8-e4m3");
    assert_string_equal(hs_rule_name(HS_RULE_HALFS_SIGMA), "halfs-sigma");
    /* presets: the decided defaults */
    hs_quant_spec s = preset(HS_FMT_MXFP4);
    assert_true(s.elem == HS_ELEM_E2M1 && s.scale_fmt == HS_SCALE_E8M0 && s.block == 32 &&
                s.rule == HS_RULE_HALFS && s.rounding == HS_ROUND_RNE && s.sr_prescale == -1);
    s = preset(HS_FMT_NVFP4);
    assert_true(s.scale_fmt == HS_SCALE_UE4M3 && s.block == 16 && s.two_level == 1 && s.rule == HS_RULE_MAX);
    s = preset(HS_FMT_FP4ROW);
    assert_true(s.group == HS_GROUP_ROW && s.rule == HS_RULE_HALFS);
    /* bad specs */
    s = preset(HS_FMT_MXFP4);
    s.block = 0;
    assert_int_equal(hs_quant_spec_validate(&s), HS_ERR_INVALID_ARG);
    assert_non_null(strstr(hs_last_error(), "block"));
    s.block = 7;
    assert_int_equal(hs_quant_spec_validate(&s), HS_ERR_INVALID_ARG);
    s = preset(HS_FMT_NVFP4);
    s.rule = HS_RULE_OCP;
    assert_int_equal(hs_quant_spec_validate(&s), HS_ERR_INVALID_ARG);
    assert_string_equal(hs_last_error(), "rule 'ocp' needs E8M0 scales; format nvfp4 has UE4M3 scales");
    s = preset(HS_FMT_MXFP4);
    s.rule = HS_RULE_MAX;
    assert_int_equal(hs_quant_spec_validate(&s), HS_ERR_INVALID_ARG);
    s.rule = HS_RULE_4OVER6;
    assert_int_equal(hs_quant_spec_validate(&s), HS_ERR_INVALID_ARG);
    s = preset(HS_FMT_FP4);
    s.rule = HS_RULE_HALFS_SIGMA;
    assert_int_equal(hs_quant_spec_validate(&s), HS_ERR_INVALID_ARG);
    s = preset(HS_FMT_MXFP4);
    s.tile2d = 16; /* block 32 */
    assert_int_equal(hs_quant_spec_validate(&s), HS_ERR_INVALID_ARG);
    assert_non_null(strstr(hs_last_error(), "tile2d"));
    s.block = 16;
    assert_int_equal(hs_quant_spec_validate(&s), HS_OK);
    s.group = HS_GROUP_ROW;
    assert_int_equal(hs_quant_spec_validate(&s), HS_ERR_INVALID_ARG);
    s = preset(HS_FMT_MXFP4);
    s.two_level = 1;
    assert_int_equal(hs_quant_spec_validate(&s), HS_ERR_INVALID_ARG);
    s = preset(HS_FMT_NVFP4);
    s.two_level = 0;
    assert_int_equal(hs_quant_spec_validate(&s), HS_ERR_INVALID_ARG);
    s = preset(HS_FMT_BF16);
    s.rounding = HS_ROUND_SR;
    assert_int_equal(hs_quant_spec_validate(&s), HS_ERR_INVALID_ARG);
    s = preset(HS_FMT_BF16);
    s.rule = HS_RULE_HALFS;
    assert_int_equal(hs_quant_spec_validate(&s), HS_ERR_INVALID_ARG);
    s = preset(HS_FMT_MXFP4);
    s.rht = 8;
    assert_int_equal(hs_quant_spec_validate(&s), HS_ERR_INVALID_ARG);
    s = preset(HS_FMT_INT4);
    s.scale_fmt = HS_SCALE_E8M0, s.rule = HS_RULE_OCP;
    assert_int_equal(hs_quant_spec_validate(&s), HS_ERR_INVALID_ARG);
    s = preset(HS_FMT_MXFP4);
    s.rounding = (hs_rounding)9;
    assert_int_equal(hs_quant_spec_validate(&s), HS_ERR_INVALID_ARG);
    /* hs_rule_applies lists exactly the rules of each scale format */
    int n8 = 0, nf = 0, nu = 0, nn = 0;
    hs_quant_spec e8 = preset(HS_FMT_MXFP4), f32 = preset(HS_FMT_FP4), u = preset(HS_FMT_NVFP4),
                  none = preset(HS_FMT_BF16);
    for (int r = 0; r < HS_RULE_COUNT; r++) {
        n8 += hs_rule_applies(&e8, (hs_rule)r);
        nf += hs_rule_applies(&f32, (hs_rule)r);
        nu += hs_rule_applies(&u, (hs_rule)r);
        nn += hs_rule_applies(&none, (hs_rule)r);
    }
    assert_int_equal(n8, 8);
    assert_int_equal(nf, 4);
    assert_int_equal(nu, 5);
    assert_int_equal(nn, 1);
    /* allocation and quantize argument checks */
    hs_packed p;
    s = preset(HS_FMT_MXFP4);
    assert_int_equal(hs_packed_alloc(&p, &s, 0, 10), HS_ERR_INVALID_ARG);
    assert_int_equal(hs_packed_alloc(&p, &s, 4, (int64_t)1 << 50), HS_ERR_INVALID_ARG);
    assert_int_equal(hs_packed_alloc(&p, &s, 4, 64), HS_OK);
    float x[4 * 64] = {0};
    assert_int_equal(hs_quantize_ref(&s, x, 64, 4, 4, 0, &p), HS_ERR_INVALID_ARG); /* shape */
    assert_int_equal(hs_quantize_ref(&s, x, 4, 64, 32, 0, &p), HS_ERR_INVALID_ARG); /* ld */
    hs_quant_spec s16 = s;
    s16.block = 16;
    assert_int_equal(hs_quantize_ref(&s16, x, 4, 64, 64, 0, &p), HS_ERR_INVALID_ARG); /* layout */
    assert_int_equal(hs_quantize_ref(&s, x, 64, 4, 4, 1, &p), HS_OK);                 /* xᵀ fits */
    hs_packed_free(&p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pow2_rules_exact),
        cmocka_unit_test(search_rules_e8m0),
        cmocka_unit_test(search_rules_continuous),
        cmocka_unit_test(continuous_mse_grid),
        cmocka_unit_test(halfs_sigma_rule),
        cmocka_unit_test(rule_boundaries),
        cmocka_unit_test(group_sse_contract),
        cmocka_unit_test(nvfp4_hand_case),
        cmocka_unit_test(nonfinite_zero_subnormal_groups),
        cmocka_unit_test(tensor_groups),
        cmocka_unit_test(transpose_equals_explicit),
        cmocka_unit_test(tile2d_w_and_wt),
        cmocka_unit_test(threads_do_not_matter),
        cmocka_unit_test(odd_symmetry_and_idempotence),
        cmocka_unit_test(sr_unbiased),
        cmocka_unit_test(rht_fused),
        cmocka_unit_test(packed_layout),
        cmocka_unit_test(mxfp8_ocp),
        cmocka_unit_test(spec_validation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_stats.c: the error statistics of halfs/stats.h on hand-made inputs whose numbers can be
 * worked out on paper, plus kurtosis of known distributions and the non-finite conventions. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "halfs/quant.h"
#include "halfs/rng.h"
#include "halfs/stats.h"

static hs_quant_spec preset(hs_format f) {
    hs_quant_spec s;
    assert_int_equal(hs_quant_spec_init(&s, f), HS_OK);
    return s;
}

static void close_to(double got, double want, double tol) {
    if (!(fabs(got - want) <= tol)) fail_msg("got %.17g, want %.17g (tol %g)", got, want, tol);
}

static void hand_made(void **state) {
    (void)state;
    /* one MXFP4 block: 6, 0.2, 0.1, -3, then zeros.
     * ceil: amax 6 -> X = 2^(3-2) = 2: 3, 0.1, 0.05, -1.5 -> 6, 0, 0, -3.
     * error 0.2² + 0.1² = 0.05; signal 36 + 0.04 + 0.01 + 9 = 45.05; 2 of 4 nonzero collapse. */
    float x[32] = {6.0f, 0.2f, 0.1f, -3.0f};
    hs_quant_spec s = preset(HS_FMT_MXFP4);
    s.rule = HS_RULE_CEIL;
    hs_qstats st;
    assert_int_equal(hs_quant_stats(&s, x, 1, 32, 32, 0, &st), HS_OK);
    double err = pow((double)0.2f, 2) + pow((double)0.1f, 2);
    double sig = 36 + pow((double)0.2f, 2) + pow((double)0.1f, 2) + 9;
    close_to(st.rel_mse, err / sig, 1e-15);
    close_to(st.sqnr_db, -10 * log10(err / sig), 1e-12);
    close_to(st.zero_collapse, 0.5, 0);
    close_to(st.halved_fraction, 0, 0);
    assert_int_equal(st.groups, 1);
    assert_int_equal(st.n, 32);
    assert_int_equal(st.n_nonfinite, 0);
    /* kurtosis of (6, 0.2, 0.1, -3, 0 × 28) by the formula, in double */
    double mu = 0, m2 = 0, m4 = 0;
    for (int i = 0; i < 32; i++) mu += x[i];
    mu /= 32;
    for (int i = 0; i < 32; i++) m2 += pow(x[i] - mu, 2) / 32, m4 += pow(x[i] - mu, 4) / 32;
    close_to(st.kurtosis, m4 / (m2 * m2), 1e-12);
    /* half: X = 1: 6, 0.2 -> 0, 0.1 -> 0, -3: the same values, but the group counts as halved */
    s.rule = HS_RULE_HALF;
    assert_int_equal(hs_quant_stats(&s, x, 1, 32, 32, 0, &st), HS_OK);
    close_to(st.rel_mse, err / sig, 1e-15);
    close_to(st.halved_fraction, 1, 0);
    /* fp32: lossless, SQNR infinite */
    s = preset(HS_FMT_FP32);
    assert_int_equal(hs_quant_stats(&s, x, 4, 8, 8, 0, &st), HS_OK);
    close_to(st.rel_mse, 0, 0);
    assert_true(isinf(st.sqnr_db) && st.sqnr_db > 0);
    close_to(st.zero_collapse, 0, 0);
    assert_int_equal(st.groups, 0);
    close_to(hs_kurtosis((const float[]){1, 2, 3, 4}, 4), 2.5625 / 1.5625, 1e-15);
}

static void nonfinite_and_groups(void **state) {
    (void)state;
    /* two rows × two blocks; a NaN and an Inf poison block 0 of each row */
    float x[2 * 64];
    for (int i = 0; i < 128; i++) x[i] = (float)((i * 5) % 13) - 6.0f;
    x[3] = NAN;
    x[64 + 10] = INFINITY;
    hs_quant_spec s = preset(HS_FMT_MXFP4);
    s.rule = HS_RULE_OCP; /* amax 6 -> X = 1: every integer in [-6, 6] but ±5 is exact */
    hs_qstats st;
    assert_int_equal(hs_quant_stats(&s, x, 2, 64, 64, 0, &st), HS_OK);
    assert_int_equal(st.n, 126);
    assert_int_equal(st.n_nonfinite, 2);
    assert_int_equal(st.groups, 4);
    /* error and signal from the two finite blocks only: ±5 -> ±4 (RNE tie to even) */
    double err = 0, sig = 0;
    int nz = 0;
    for (int r = 0; r < 2; r++)
        for (int i = 32; i < 64; i++) {
            double v = x[r * 64 + i];
            if (fabs(v) == 5) err += 1;
            sig += v * v;
        }
    for (int i = 0; i < 128; i++) nz += isfinite(x[i]) && x[i] != 0;
    close_to(st.rel_mse, err / sig, 1e-15);
    close_to(st.zero_collapse, 0, 0); /* NaN outputs are not zeros */
    (void)nz;
    /* ocp halves every block whose amax is not a power of two: 6 is not */
    close_to(st.halved_fraction, 0.5, 0); /* the two NaN blocks are not halved */
    /* transposed statistics = statistics of the explicit transpose */
    float xt[128];
    for (int r = 0; r < 2; r++)
        for (int c = 0; c < 64; c++) xt[c * 2 + r] = x[r * 64 + c];
    hs_qstats a, b;
    s.group = HS_GROUP_ROW;
    assert_int_equal(hs_quant_stats(&s, x, 2, 64, 64, 1, &a), HS_OK);
    assert_int_equal(hs_quant_stats(&s, xt, 64, 2, 2, 0, &b), HS_OK);
    assert_memory_equal(&a.rel_mse, &b.rel_mse, sizeof(double));
    assert_int_equal(a.groups, 64);
    assert_int_equal(a.n_nonfinite, b.n_nonfinite);
    /* errors are reported, not crashes */
    assert_int_equal(hs_quant_stats(&s, x, 2, 64, 32, 0, &a), HS_ERR_INVALID_ARG);
    s.block = 7;
    s.group = HS_GROUP_BLOCK;
    assert_int_equal(hs_quant_stats(&s, x, 2, 64, 64, 0, &a), HS_ERR_INVALID_ARG);
}

static void kurtosis_of_distributions(void **state) {
    (void)state;
    const int64_t n = 200000;
    float *g = malloc(sizeof(float) * n), *l = malloc(sizeof(float) * n);
    for (int64_t i = 0; i < n; i++) {
        double u1 = (hs_rng_bits(1, 0, (uint64_t)i) >> 11) * 0x1p-53 + 0x1p-54;
        double u2 = (hs_rng_bits(1, 1, (uint64_t)i) >> 11) * 0x1p-53;
        g[i] = (float)(sqrt(-2 * log(u1)) * cos(2 * M_PI * u2)) + 3.0f; /* shifted: μ removed */
        l[i] = (float)(u2 < 0.5 ? log(u1) : -log(u1));                 /* Laplace */
    }
    /* standard errors sqrt(24/n) = 0.011 (Gaussian) and larger for the Laplace */
    close_to(hs_kurtosis(g, n), 3.0, 0.06);
    close_to(hs_kurtosis(l, n), 6.0, 0.3);
    g[5] = NAN;
    g[6] = -INFINITY;
    close_to(hs_kurtosis(g, n), 3.0, 0.06); /* non-finite values skipped */
    assert_true(hs_kurtosis(g, 1) == 0.0);
    float c[4] = {2, 2, 2, 2};
    assert_true(hs_kurtosis(c, 4) == 0.0); /* constant: undefined, reported as 0 */
    float nn[3] = {NAN, 1, NAN};
    assert_true(hs_kurtosis(nn, 3) == 0.0); /* fewer than 2 finite values */
    /* a heavier tail has a larger kurtosis, and the stats of a rule see it */
    hs_quant_spec s = preset(HS_FMT_FP4ROW);
    hs_qstats st;
    assert_int_equal(hs_quant_stats(&s, l, 100, 2000, 2000, 0, &st), HS_OK);
    close_to(st.kurtosis, hs_kurtosis(l, n), 1e-9);
    assert_true(st.rel_mse > 0 && st.rel_mse < 0.1);
    assert_true(st.zero_collapse > 0 && st.zero_collapse < 0.5);
    free(g);
    free(l);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hand_made),
        cmocka_unit_test(nonfinite_and_groups),
        cmocka_unit_test(kurtosis_of_distributions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

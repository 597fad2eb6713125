/* test_rht.c: the random Hadamard transform (halfs/rht.h, docs/FORMATS.md §8).
 *
 * The transform's matrix, read off by transforming unit vectors, must be D·H with H the
 * Sylvester matrix scaled by fl(1/√d) and D the seeded signs; M·Mᵀ = I to fp32 precision; the
 * inverse undoes the forward transform; along-columns equals along-rows of the transpose bit for
 * bit; GEMM products are preserved; shapes that are not a multiple of d are rejected.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "halfs/rht.h"
#include "halfs/rng.h"

static const int sizes[4] = {16, 32, 64, 128};

static float *randm(uint64_t seed, int64_t n) {
    float *x = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) x[i] = hs_rng_uniform(seed, 0, (uint64_t)i) * 2 - 1;
    return x;
}

static void matrix_is_signed_sylvester(void **state) {
    (void)state;
    for (int k = 0; k < 4; k++) {
        int d = sizes[k];
        float *m = calloc((size_t)(d * d), sizeof(float)); /* row i = e_i·D·H */
        for (int i = 0; i < d; i++) m[i * d + i] = 1.0f;
        assert_int_equal(hs_rht_apply(m, d, d, d, d, 42, 0, 0), HS_OK);
        const float nrm = (float)(1.0 / sqrt((double)d));
        int neg = 0;
        for (int i = 0; i < d; i++) {
            float si = hs_rht_sign(42, i);
            assert_true(si == 1.0f || si == -1.0f);
            neg += si < 0;
            for (int j = 0; j < d; j++) {
                float h = (__builtin_popcount((unsigned)(i & j)) & 1) ? -nrm : nrm;
                if (m[i * d + j] != si * h) fail_msg("d=%d: M[%d][%d] = %a, want %a", d, i, j, m[i * d + j], si * h);
            }
        }
        assert_true(neg > 0 && neg < d); /* both signs occur */
        /* M·Mᵀ = I to fp32 precision */
        double worst = 0;
        for (int i = 0; i < d; i++)
            for (int j = 0; j < d; j++) {
                double s = 0;
                for (int l = 0; l < d; l++) s += (double)m[i * d + l] * m[j * d + l];
                worst = fmax(worst, fabs(s - (i == j)));
            }
        assert_true(worst < 4 * FLT_EPSILON);
        free(m);
    }
    /* signs depend on the seed */
    int diff = 0;
    for (int i = 0; i < 128; i++) diff += hs_rht_sign(1, i) != hs_rht_sign(2, i);
    assert_true(diff > 20);
}

static void inverse_and_norm(void **state) {
    (void)state;
    const int64_t rows = 128, cols = 256;
    for (int k = 0; k < 4; k++)
        for (int along = 0; along < 2; along++) {
            int d = sizes[k];
            float *x = randm((uint64_t)d, rows * cols), *y = malloc(sizeof(float) * rows * cols);
            memcpy(y, x, sizeof(float) * rows * cols);
            assert_int_equal(hs_rht_apply(y, rows, cols, cols, d, 7, along, 0), HS_OK);
            /* norms of each transformed block are preserved */
            double nx = 0, ny = 0, maxdiff = 0;
            for (int64_t i = 0; i < rows * cols; i++) nx += (double)x[i] * x[i], ny += (double)y[i] * y[i];
            assert_true(fabs(nx - ny) < 1e-5 * nx);
            assert_int_equal(hs_rht_apply(y, rows, cols, cols, d, 7, along, 1), HS_OK);
            for (int64_t i = 0; i < rows * cols; i++) maxdiff = fmax(maxdiff, fabs((double)y[i] - x[i]));
            /* log2(d) butterfly stages each round once: a few ulps of values of size <= 1 */
            if (maxdiff > 2 * log2(d) * FLT_EPSILON) fail_msg("d=%d along=%d: inverse error %g", d, along, maxdiff);
            /* a different seed does not undo it */
            memcpy(y, x, sizeof(float) * rows * cols);
            assert_int_equal(hs_rht_apply(y, rows, cols, cols, d, 7, along, 0), HS_OK);
            assert_int_equal(hs_rht_apply(y, rows, cols, cols, d, 8, along, 1), HS_OK);
            maxdiff = 0;
            for (int64_t i = 0; i < rows * cols; i++) maxdiff = fmax(maxdiff, fabs((double)y[i] - x[i]));
            assert_true(maxdiff > 0.1);
            free(x);
            free(y);
        }
}

static void cols_equal_rows_of_transpose(void **state) {
    (void)state;
    const int64_t rows = 128, cols = 300; /* ld > cols below */
    const int64_t ld = 310;
    float *x = randm(3, rows * ld), *xt = malloc(sizeof(float) * rows * cols);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) xt[c * rows + r] = x[r * ld + c];
    float *pad = malloc(sizeof(float) * rows * ld);
    memcpy(pad, x, sizeof(float) * rows * ld);
    for (int k = 0; k < 4; k++) {
        int d = sizes[k];
        for (int inv = 0; inv < 2; inv++) {
            float *a = malloc(sizeof(float) * rows * ld), *b = malloc(sizeof(float) * rows * cols);
            memcpy(a, x, sizeof(float) * rows * ld);
            memcpy(b, xt, sizeof(float) * rows * cols);
            omp_set_num_threads(1 + inv); /* thread count must not matter either */
            assert_int_equal(hs_rht_apply(a, rows, cols, ld, d, 11, 1, inv), HS_OK);
            assert_int_equal(hs_rht_apply(b, cols, rows, rows, d, 11, 0, inv), HS_OK);
            for (int64_t r = 0; r < rows; r++) {
                for (int64_t c = 0; c < cols; c++) assert_true(memcmp(&a[r * ld + c], &b[c * rows + r], 4) == 0);
                for (int64_t c = cols; c < ld; c++) assert_true(a[r * ld + c] == pad[r * ld + c]); /* untouched */
            }
            free(a);
            free(b);
        }
    }
    omp_set_num_threads(2);
    free(x);
    free(xt);
    free(pad);
}

/* (A·D·H)(B·D·H)ᵀ = A·Bᵀ */
static void gemm_product_preserved(void **state) {
    (void)state;
    const int64_t m = 8, n = 6, k = 128;
    float *a = randm(21, m * k), *b = randm(22, n * k);
    double ref[8 * 6];
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int l = 0; l < k; l++) s += (double)a[i * k + l] * b[j * k + l];
            ref[i * n + j] = s;
        }
    for (int q = 0; q < 4; q++) {
        float *ar = malloc(sizeof(float) * m * k), *br = malloc(sizeof(float) * n * k);
        memcpy(ar, a, sizeof(float) * m * k);
        memcpy(br, b, sizeof(float) * n * k);
        assert_int_equal(hs_rht_apply(ar, m, k, k, sizes[q], 5, 0, 0), HS_OK);
        assert_int_equal(hs_rht_apply(br, n, k, k, sizes[q], 5, 0, 0), HS_OK);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int l = 0; l < k; l++) s += (double)ar[i * k + l] * br[j * k + l];
                assert_true(fabs(s - ref[i * n + j]) < 1e-5);
            }
        free(ar);
        free(br);
    }
    free(a);
    free(b);
}

static void bad_shapes(void **state) {
    (void)state;
    float x[64 * 48] = {0};
    assert_int_equal(hs_rht_apply(x, 4, 48, 48, 32, 0, 0, 0), HS_ERR_INVALID_ARG);  /* 48 % 32 */
    assert_int_equal(hs_rht_apply(x, 48, 32, 32, 32, 0, 1, 0), HS_ERR_INVALID_ARG); /* rows 48 */
    assert_int_equal(hs_rht_apply(x, 4, 32, 32, 8, 0, 0, 0), HS_ERR_INVALID_ARG);   /* d = 8 */
    assert_int_equal(hs_rht_apply(x, 4, 32, 16, 16, 0, 0, 0), HS_ERR_INVALID_ARG);  /* ld < cols */
    assert_int_equal(hs_rht_apply(x, 4, 48, 48, 16, 0, 0, 0), HS_OK);
    assert_int_equal(hs_rht_apply(x, 0, 48, 48, 16, 0, 0, 0), HS_OK);
    /* a block is transformed on its own: a spike in block 1 leaves block 0 at zero */
    float y[64] = {0};
    y[40] = 1.0f;
    assert_int_equal(hs_rht_apply(y, 1, 64, 64, 32, 3, 0, 0), HS_OK);
    for (int i = 0; i < 32; i++) assert_true(y[i] == 0.0f);
    for (int i = 32; i < 64; i++) assert_true(fabsf(fabsf(y[i]) - 1.0f / sqrtf(32.0f)) < 1e-7f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(matrix_is_signed_sylvester),
        cmocka_unit_test(inverse_and_norm),
        cmocka_unit_test(cols_equal_rows_of_transpose),
        cmocka_unit_test(gemm_product_preserved),
        cmocka_unit_test(bad_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

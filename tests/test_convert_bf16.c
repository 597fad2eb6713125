/* test_convert_bf16.c: the bf16 operand conversion of the trainer's bf16 recipe
 * (kernels: hs_bf16_tile_ref and its AVX2 and AVX-512 twins). The reference must give
 * hs_bf16_encode's bits for every value class (rounding ties, overflow to Inf, subnormals, NaN
 * payloads); each SIMD kernel must equal the reference bit for bit, as is and transposed, on whole and
 * partial tiles, and must not write outside its tile.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "halfs/codec.h"
#include "kernels/kernels.h"

/* Values of every class: random bit patterns mixed with hand-picked edge cases. */
static void fill_values(float *x, int64_t n, uint32_t seed) {
    static const uint32_t edge[] = {
        0x00000000u, 0x80000000u, 0x7f800000u, 0xff800000u, 0x7fc00000u, 0xffc00001u,
        0x7f800001u, 0xff80ffffu, 0x7fbfffffu, 0x00000001u, 0x807fffffu, 0x00008000u,
        0x00018000u, 0x3f808000u, 0x3f818000u, 0x3f807fffu, 0x3f80ffffu, 0x7f7fffffu,
        0xff7f8000u, 0x7f7f7fffu, 0x40490fdbu, 0x3effffffu};
    uint32_t s = seed * 2654435761u + 1u;
    for (int64_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        uint32_t u = (s >> 8) % 3 == 0 ? edge[(s >> 12) % (sizeof edge / sizeof edge[0])]
                                       : s ^ (s << 13);
        memcpy(&x[i], &u, sizeof u);
    }
}

static void test_ref_matches_codec(void **state) {
    (void)state;
    enum { R = 37, C = 29, LD = 31 };
    float x[R * LD];
    fill_values(x, R * LD, 7);
    uint16_t dr[R * C], dt[C * R];
    for (int64_t r0 = 0; r0 < R; r0 += 32)
        for (int64_t c0 = 0; c0 < C; c0 += 16) hs_bf16_tile_ref(dr, dt, x, R, C, LD, r0, c0);
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) {
            assert_int_equal(dr[r * C + c], hs_bf16_encode(x[r * LD + c]));
            assert_int_equal(dt[c * R + r], dr[r * C + c]);
        }
}

static void simd_equals_ref(hs_isa isa, hs_bf16_tile_fn simd) {
    if (hs_isa_detect() < isa) skip();
    static const int64_t dims[] = {1, 2, 7, 15, 16, 17, 31, 32, 33, 48, 63, 64, 65};
    int cases = 0;
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
        for (size_t j = 0; j < sizeof dims / sizeof dims[0]; j++) {
            int64_t rows = dims[i], cols = dims[j], ld = cols + (int64_t)(i % 3);
            float *x = malloc(sizeof(float) * (size_t)(rows * ld));
            size_t n = (size_t)(rows * cols);
            uint16_t *ar = malloc(2 * n), *at = malloc(2 * n), *br = malloc(2 * n),
                     *bt = malloc(2 * n);
            fill_values(x, rows * ld, (uint32_t)(i * 16 + j));
            for (int mode = 0; mode < 3; mode++) { // both copies, row form only, transposed only
                memset(ar, 0xA5, 2 * n), memset(at, 0xA5, 2 * n);
                memset(br, 0xA5, 2 * n), memset(bt, 0xA5, 2 * n);
                uint16_t *dr_a = mode == 2 ? NULL : ar, *dt_a = mode == 1 ? NULL : at;
                uint16_t *dr_b = mode == 2 ? NULL : br, *dt_b = mode == 1 ? NULL : bt;
                // every tile but the first: the first stays unwritten (0xA5) in both outputs
                for (int64_t r0 = 0; r0 < rows; r0 += 32)
                    for (int64_t c0 = 0; c0 < cols; c0 += 16) {
                        if (r0 == 0 && c0 == 0 && (rows > 32 || cols > 16)) continue;
                        hs_bf16_tile_ref(dr_a, dt_a, x, rows, cols, ld, r0, c0);
                        simd(dr_b, dt_b, x, rows, cols, ld, r0, c0);
                    }
                assert_memory_equal(ar, br, 2 * n);
                assert_memory_equal(at, bt, 2 * n);
                cases++;
            }
            free(x), free(ar), free(at), free(br), free(bt);
        }
    assert_int_equal(cases, 3 * 13 * 13);
}

/* The conversion into fp32 containers (attention's bf16 values): the reference gives the bf16
 * bits of hs_bf16_encode, subnormal results as signed zeros, and the SIMD kernels equal it. */
static void test_bf16v(void **state) {
    (void)state;
    enum { R = 70, C = 40, LD = 43 };
    static float x[R * LD], ar[R * C], at[R * C], br[R * C], bt[R * C];
    fill_values(x, R * LD, 99);
    for (int64_t r0 = 0; r0 < R; r0 += 32)
        for (int64_t c0 = 0; c0 < C; c0 += 16) hs_bf16v_tile_ref(ar, at, x, R, C, LD, r0, c0);
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) {
            uint16_t h = hs_bf16_encode(x[r * LD + c]);
            if ((h & 0x7F80) == 0) h &= 0x8000;
            uint32_t u = (uint32_t)h << 16, v, w;
            memcpy(&v, &ar[r * C + c], 4);
            memcpy(&w, &at[c * R + r], 4);
            assert_int_equal(v, u);
            assert_int_equal(w, u);
        }
    static const hs_bf16v_tile_fn simd[] = {hs_bf16v_tile_avx2, hs_bf16v_tile_avx512};
    for (int l = 0; l < 2; l++) {
        if (hs_isa_detect() < (l ? HS_ISA_AVX512 : HS_ISA_AVX2)) return;
        memset(br, 0xA5, sizeof br), memset(bt, 0xA5, sizeof bt);
        for (int64_t r0 = 0; r0 < R; r0 += 32)
            for (int64_t c0 = 0; c0 < C; c0 += 16) simd[l](br, bt, x, R, C, LD, r0, c0);
        assert_memory_equal(ar, br, sizeof ar);
        assert_memory_equal(at, bt, sizeof at);
    }
}

static void test_avx2_equals_ref(void **state) {
    (void)state;
    simd_equals_ref(HS_ISA_AVX2, hs_bf16_tile_avx2);
}

static void test_avx512_equals_ref(void **state) {
    (void)state;
    simd_equals_ref(HS_ISA_AVX512, hs_bf16_tile_avx512);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ref_matches_codec),
        cmocka_unit_test(test_bf16v),
        cmocka_unit_test(test_avx2_equals_ref),
        cmocka_unit_test(test_avx512_equals_ref),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

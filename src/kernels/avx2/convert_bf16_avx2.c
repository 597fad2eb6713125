/* convert_bf16_avx2.c: the bf16 operand conversion with AVX2, bit-identical to hs_bf16_tile_ref
 * (kernels/ref/convert_bf16_ref.c): fp32 → bf16 by the same integer arithmetic (u + 0x7FFF +
 * bit 16 of u, then the top half; NaN → its top half with the quiet bit), 8 lanes at a time.
 * A whole tile (32 rows × 16 columns) is converted in registers and narrowed with packus for the
 * row-form store; for the transposed copy the converted dwords go through 8 × 8 transposes and
 * are narrowed 16 rows at a time, so each column gets two 32-byte stores. Partial tiles go to
 * the reference. hs_bf16v_tile_avx2 is the conversion into fp32 containers (hs_bf16v_tile_ref).
 */
#include <immintrin.h>

#include "kernels/avx2/transpose_avx2.h"
#include "kernels/kernels.h"

static inline __m256i bf16_bits(__m256i u) {
    const __m256i bias = _mm256_set1_epi32(0x7fff), one = _mm256_set1_epi32(1);
    __m256i rne =
        _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, bias),
                                           _mm256_and_si256(_mm256_srli_epi32(u, 16), one)),
                          16);
    __m256i nan = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
    __m256i isnan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)),
                                       _mm256_set1_epi32(0x7f800000));
    return _mm256_blendv_epi8(rne, nan, isnan);
}

void hs_bf16_tile_avx2(uint16_t *dr, uint16_t *dt, const float *x, int64_t rows, int64_t cols,
                       int64_t ld, int64_t r0, int64_t c0) {
    if (r0 + 32 > rows || c0 + 16 > cols) {
        hs_bf16_tile_ref(dr, dt, x, rows, cols, ld, r0, c0);
        return;
    }
    __m256 v[2][32]; /* [column half][row]: bf16 bits in the low half of each dword */
    for (int r = 0; r < 32; r++) {
        const float *src = x + (r0 + r) * ld + c0;
        __m256i a = bf16_bits(_mm256_loadu_si256((const __m256i *)src));
        __m256i b = bf16_bits(_mm256_loadu_si256((const __m256i *)(src + 8)));
        if (dr) /* packus interleaves 128-bit halves: [a0..3 b0..3 a4..7 b4..7] → [a0..7 b0..7] */
            _mm256_storeu_si256(
                (__m256i *)(dr + (r0 + r) * cols + c0),
                _mm256_permute4x64_epi64(_mm256_packus_epi32(a, b), _MM_SHUFFLE(3, 1, 2, 0)));
        v[0][r] = _mm256_castsi256_ps(a);
        v[1][r] = _mm256_castsi256_ps(b);
    }
    if (!dt) return;
    /* 8 × 8 dword transposes: v[h][8q..8q+7] becomes columns 8h..8h+7 over rows 8q..8q+7; two
     * row groups narrowed together give 16 rows of one column (32 bytes) */
    for (int h = 0; h < 2; h++) {
        for (int q = 0; q < 4; q++) hs_transpose8x8_ps(&v[h][8 * q]);
        for (int q = 0; q < 4; q += 2)
            for (int j = 0; j < 8; j++) {
                __m256i lo = _mm256_castps_si256(v[h][8 * q + j]),
                        hi = _mm256_castps_si256(v[h][8 * q + 8 + j]);
                _mm256_storeu_si256(
                    (__m256i *)(dt + (c0 + 8 * h + j) * rows + r0 + 8 * q),
                    _mm256_permute4x64_epi64(_mm256_packus_epi32(lo, hi), _MM_SHUFFLE(3, 1, 2, 0)));
            }
    }
}

/* hs_bf16v_tile: the same rounding, then a subnormal result becomes a zero of its sign, kept in
 * fp32 (the bits << 16); the transposed copy through 8 × 8 float transposes. */
void hs_bf16v_tile_avx2(float *dr, float *dt, const float *x, int64_t rows, int64_t cols,
                        int64_t ld, int64_t r0, int64_t c0) {
    if (r0 + 32 > rows || c0 + 16 > cols) {
        hs_bf16v_tile_ref(dr, dt, x, rows, cols, ld, r0, c0);
        return;
    }
    const __m256i expo = _mm256_set1_epi32(0x7F80), sign = _mm256_set1_epi32(0x8000);
    __m256 v[2][32];
    for (int r = 0; r < 32; r++) {
        const float *src = x + (r0 + r) * ld + c0;
        for (int h = 0; h < 2; h++) {
            __m256i b = bf16_bits(_mm256_loadu_si256((const __m256i *)(src + 8 * h)));
            const __m256i sub =
                _mm256_cmpeq_epi32(_mm256_and_si256(b, expo), _mm256_setzero_si256());
            b = _mm256_blendv_epi8(b, _mm256_and_si256(b, sign), sub);
            v[h][r] = _mm256_castsi256_ps(_mm256_slli_epi32(b, 16));
            if (dr) _mm256_storeu_ps(dr + (r0 + r) * cols + c0 + 8 * h, v[h][r]);
        }
    }
    if (!dt) return;
    for (int h = 0; h < 2; h++)
        for (int q = 0; q < 4; q++) {
            hs_transpose8x8_ps(&v[h][8 * q]);
            for (int j = 0; j < 8; j++)
                _mm256_storeu_ps(dt + (c0 + 8 * h + j) * rows + r0 + 8 * q, v[h][8 * q + j]);
        }
}

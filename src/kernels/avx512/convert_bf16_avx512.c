/* convert_bf16_avx512.c: the bf16 operand conversion with AVX-512, bit-identical to
 * hs_bf16_tile_ref (kernels/ref/convert_bf16_ref.c): fp32 → bf16 by the same integer
 * arithmetic (u + 0x7FFF + bit 16 of u, then the top half; NaN → its top half with the quiet
 * bit), 16 lanes at a time. A tile is 32 rows × 16 columns: converted in registers, narrowed with
 * vpmovdw for the row-form store, and transposed as 32-bit lanes (unpack / shuffle network)
 * before narrowing for the transposed store, so both copies come from one read of x; each
 * column of the transposed copy then gets one whole 64-byte store (16-row tiles wrote half
 * lines 2·rows bytes apart: twice as slow). Whole tiles use plain loads and stores: masked
 * stores measured several times slower here.
 * Why not vcvtneps2bf16: it treats subnormal inputs as zero, which the reference does not.
 * hs_bf16v_tile_avx512 is the conversion into fp32 containers (hs_bf16v_tile_ref).
 */
#include <immintrin.h>

#include "kernels/avx512/transpose_avx512.h"
#include "kernels/kernels.h"

static inline __m512i bf16_bits(__m512i u) {
    const __m512i bias = _mm512_set1_epi32(0x7fff), one = _mm512_set1_epi32(1);
    __m512i rne = _mm512_srli_epi32(
        _mm512_add_epi32(_mm512_add_epi32(u, bias), _mm512_and_si512(_mm512_srli_epi32(u, 16), one)),
        16);
    __m512i nan = _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
    __mmask16 isnan = _mm512_cmpgt_epi32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                              _mm512_set1_epi32(0x7f800000));
    return _mm512_mask_mov_epi32(rne, isnan, nan);
}

/* Rows r0..r0+15 (clipped); when 16 more rows follow, rows r0..r0+31 at once. */
static void tile16(uint16_t *dr, uint16_t *dt, const float *x, int64_t rows, int64_t cols,
                   int64_t ld, int64_t r0, int64_t c0) {
    int64_t nr = rows - r0 < 16 ? rows - r0 : 16, nc = cols - c0 < 16 ? cols - c0 : 16;
    if (nr == 16 && nc == 16 && r0 + 32 <= rows) {
        /* two tiles down (32 rows): each column of xᵀ gets a whole 64-byte store */
        __m512i h[16], o[16], g[16], p[16];
        for (int r = 0; r < 16; r++) {
            h[r] = bf16_bits(_mm512_loadu_si512(x + (r0 + r) * ld + c0));
            g[r] = bf16_bits(_mm512_loadu_si512(x + (r0 + 16 + r) * ld + c0));
            if (dr) {
                _mm256_storeu_si256((__m256i *)(dr + (r0 + r) * cols + c0), _mm512_cvtepi32_epi16(h[r]));
                _mm256_storeu_si256((__m256i *)(dr + (r0 + 16 + r) * cols + c0),
                                    _mm512_cvtepi32_epi16(g[r]));
            }
        }
        if (!dt) return;
        hs_transpose16x16_epi32(h, o);
        hs_transpose16x16_epi32(g, p);
        for (int c = 0; c < 16; c++)
            _mm512_storeu_si512(dt + (c0 + c) * rows + r0,
                                _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi32_epi16(o[c])),
                                                   _mm512_cvtepi32_epi16(p[c]), 1));
        return;
    }
    if (nr == 16 && nc == 16) { // whole tile: plain loads and stores (masked stores are slow)
        __m512i h[16], o[16];
        for (int r = 0; r < 16; r++) {
            h[r] = bf16_bits(_mm512_loadu_si512(x + (r0 + r) * ld + c0));
            if (dr)
                _mm256_storeu_si256((__m256i *)(dr + (r0 + r) * cols + c0),
                                    _mm512_cvtepi32_epi16(h[r]));
        }
        if (!dt) return;
        hs_transpose16x16_epi32(h, o);
        for (int c = 0; c < 16; c++)
            _mm256_storeu_si256((__m256i *)(dt + (c0 + c) * rows + r0), _mm512_cvtepi32_epi16(o[c]));
        return;
    }
    __mmask16 cm = (__mmask16)((1u << nc) - 1);
    __m512i h[16];
    for (int r = 0; r < 16; r++) {
        if (r >= nr) {
            h[r] = _mm512_setzero_si512();
            continue;
        }
        h[r] = bf16_bits(_mm512_maskz_loadu_epi32(cm, x + (r0 + r) * ld + c0));
        if (dr) _mm256_mask_storeu_epi16(dr + (r0 + r) * cols + c0, cm, _mm512_cvtepi32_epi16(h[r]));
    }
    if (!dt) return;
    __m512i o[16];
    hs_transpose16x16_epi32(h, o);
    __mmask16 rm = (__mmask16)((1u << nr) - 1);
    for (int c = 0; c < nc; c++)
        _mm256_mask_storeu_epi16(dt + (c0 + c) * rows + r0, rm, _mm512_cvtepi32_epi16(o[c]));
}

void hs_bf16_tile_avx512(uint16_t *dr, uint16_t *dt, const float *x, int64_t rows, int64_t cols,
                         int64_t ld, int64_t r0, int64_t c0) {
    if (r0 + 32 <= rows && c0 + 16 <= cols) { // whole 32 × 16 tile
        tile16(dr, dt, x, rows, cols, ld, r0, c0);
        return;
    }
    tile16(dr, dt, x, rows, cols, ld, r0, c0);
    if (r0 + 16 < rows) tile16(dr, dt, x, rows, cols, ld, r0 + 16, c0);
}

/* hs_bf16v_tile: the same rounding, then a subnormal result becomes a zero of its sign, kept in
 * fp32 (the bits << 16); the transposed copy through two 16 × 16 transposes, each column of the
 * tile one whole 128-byte run of xᵀ. Edge tiles: the reference. */
void hs_bf16v_tile_avx512(float *dr, float *dt, const float *x, int64_t rows, int64_t cols,
                          int64_t ld, int64_t r0, int64_t c0) {
    if (r0 + 32 > rows || c0 + 16 > cols) {
        hs_bf16v_tile_ref(dr, dt, x, rows, cols, ld, r0, c0);
        return;
    }
    const __m512i expo = _mm512_set1_epi32(0x7F80), sign = _mm512_set1_epi32(0x8000);
    __m512i v[2][16], o[16];
    for (int r = 0; r < 32; r++) {
        __m512i b = bf16_bits(_mm512_loadu_si512(x + (r0 + r) * ld + c0));
        const __mmask16 sub = _mm512_testn_epi32_mask(b, expo);
        b = _mm512_slli_epi32(_mm512_mask_and_epi32(b, sub, b, sign), 16);
        if (dr) _mm512_storeu_si512(dr + (r0 + r) * cols + c0, b);
        v[r >> 4][r & 15] = b;
    }
    if (!dt) return;
    for (int h = 0; h < 2; h++) {
        hs_transpose16x16_epi32(v[h], o);
        for (int c = 0; c < 16; c++) _mm512_storeu_si512(dt + (c0 + c) * rows + r0 + 16 * h, o[c]);
    }
}

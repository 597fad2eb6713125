/* gemm_bf16v_avx512_ukernel.c: the tiles of the AVX-512 bf16-values GEMM (gemm_bf16v_avx512.c is
 * the driver): D (m × n) = A (m × k, rows) · B (k × n, k-major), both read in place, 8 × 32
 * tiles of 16 zmm accumulators, A's element broadcast from memory into each FMA. The same
 * sequence per element as the AVX2 tiles and the reference: per k-pair (t, t + 1) an FMA with
 * element t + 1 first, then t (the vdpbf16ps order); an odd K's last pair adds the zero product
 * of the pad first. bf16 products are exact in fp32, so each FMA rounds only the sum. The caller
 * has set MXCSR.FTZ. Missing rows of an edge tile repeat row 0 (their results are dropped);
 * missing columns are masked loads and stores. Compiled with clang where installed (Makefile). */
#include <immintrin.h>

#include "kernels/gemm_kernels.h"

enum { MR = 8, NB = 32 };

static inline __attribute__((always_inline)) void tile(const float *a, int64_t lda, int rows,
                                                       const float *b, int64_t ldb, int cols,
                                                       int64_t k, float *d, int64_t ldd,
                                                       const int FULL) {
    const float *ar[MR];
    for (int r = 0; r < MR; r++) ar[r] = a + (r < rows ? r : 0) * lda;
    const __mmask16 m0 = (__mmask16)((1u << (cols < 16 ? cols : 16)) - 1);
    const __mmask16 m1 = (__mmask16)((1u << (cols > 16 ? cols - 16 : 0)) - 1);
    __m512 acc[MR][2];
    for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
#define STEP(t)                                                                                    \
    do {                                                                                           \
        const float *bt = b + (t)*ldb;                                                             \
        const __m512 b0 = FULL ? _mm512_loadu_ps(bt) : _mm512_maskz_loadu_ps(m0, bt);             \
        const __m512 b1 = FULL ? _mm512_loadu_ps(bt + 16) : _mm512_maskz_loadu_ps(m1, bt + 16);   \
        for (int r = 0; r < MR; r++) {                                                             \
            const __m512 av = _mm512_set1_ps(ar[r][t]);                                            \
            acc[r][0] = _mm512_fmadd_ps(av, b0, acc[r][0]);                                        \
            acc[r][1] = _mm512_fmadd_ps(av, b1, acc[r][1]);                                        \
        }                                                                                          \
    } while (0)
    int64_t t = 0;
    for (; t + 1 < k; t += 2) {
        STEP(t + 1);
        STEP(t);
    }
    if (t < k) { /* odd K: the pad's zero product, then element k − 1 */
        for (int r = 0; r < MR; r++) {
            acc[r][0] = _mm512_fmadd_ps(_mm512_setzero_ps(), _mm512_setzero_ps(), acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(_mm512_setzero_ps(), _mm512_setzero_ps(), acc[r][1]);
        }
        STEP(t);
    }
#undef STEP
    if (FULL) {
        for (int r = 0; r < MR; r++) {
            _mm512_storeu_ps(d + r * ldd, acc[r][0]);
            _mm512_storeu_ps(d + r * ldd + 16, acc[r][1]);
        }
    } else {
        for (int r = 0; r < rows; r++) {
            _mm512_mask_storeu_ps(d + r * ldd, m0, acc[r][0]);
            _mm512_mask_storeu_ps(d + r * ldd + 16, m1, acc[r][1]);
        }
    }
}

void hs_ukernel_bf16v_avx512(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                             const float *b, int64_t ldb, float *d, int64_t ldd) {
    for (int64_t j0 = 0; j0 < n; j0 += NB) {
        const int cols = n - j0 < NB ? (int)(n - j0) : NB;
        for (int64_t i0 = 0; i0 < m; i0 += MR) {
            const int rows = m - i0 < MR ? (int)(m - i0) : MR;
            if (rows == MR && cols == NB)
                tile(a + i0 * lda, lda, MR, b + j0, ldb, NB, k, d + i0 * ldd + j0, ldd, 1);
            else
                tile(a + i0 * lda, lda, rows, b + j0, ldb, cols, k, d + i0 * ldd + j0, ldd, 0);
        }
    }
}

/* gemm_bf16v_avx2_ukernel.c: the tiles of the AVX2 bf16-values GEMM (gemm_bf16v_avx2.c is the
 * driver): D (m × n) = A (m × k, rows) · B (k × n, k-major), both read in place, 6 × 16 tiles of
 * 12 ymm accumulators. Per k-pair (t, t + 1) the lane does fma with element t + 1 first, then t
 * (the vdpbf16ps order; an odd K's last pair adds the zero product of the pad first). The caller
 * has set MXCSR.FTZ. Missing rows of an edge tile repeat row 0 (their results are dropped);
 * missing columns are masked loads. Compiled with clang where installed (Makefile). */
#include <immintrin.h>

#include "kernels/gemm_kernels.h"

enum { MR = 6, NB = 16 };

static inline __attribute__((always_inline)) void tile(const float *a, int64_t lda, int rows,
                                                       const float *b, int64_t ldb, int cols,
                                                       int64_t k, float *d, int64_t ldd,
                                                       const int FULL) {
    const float *ar[MR];
    for (int r = 0; r < MR; r++) ar[r] = a + (r < rows ? r : 0) * lda;
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(cols), idx);
    const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(cols - 8), idx);
    __m256 acc[MR][2];
    for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
#define STEP(t)                                                                                    \
    do {                                                                                           \
        const float *bt = b + (t)*ldb;                                                             \
        const __m256 b0 = FULL ? _mm256_loadu_ps(bt) : _mm256_maskload_ps(bt, m0);                 \
        const __m256 b1 = FULL ? _mm256_loadu_ps(bt + 8) : _mm256_maskload_ps(bt + 8, m1);         \
        for (int r = 0; r < MR; r++) {                                                             \
            const __m256 av = _mm256_broadcast_ss(ar[r] + (t));                                    \
            acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);                                        \
            acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);                                        \
        }                                                                                          \
    } while (0)
    int64_t t = 0;
    for (; t + 1 < k; t += 2) {
        STEP(t + 1);
        STEP(t);
    }
    if (t < k) { /* odd K: the pad's zero product, then element k − 1 */
        for (int r = 0; r < MR; r++) {
            acc[r][0] = _mm256_fmadd_ps(_mm256_setzero_ps(), _mm256_setzero_ps(), acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(_mm256_setzero_ps(), _mm256_setzero_ps(), acc[r][1]);
        }
        STEP(t);
    }
#undef STEP
    if (FULL) {
        for (int r = 0; r < MR; r++) {
            _mm256_storeu_ps(d + r * ldd, acc[r][0]);
            _mm256_storeu_ps(d + r * ldd + 8, acc[r][1]);
        }
    } else {
        for (int r = 0; r < rows; r++) {
            float f[NB];
            _mm256_storeu_ps(f, acc[r][0]);
            _mm256_storeu_ps(f + 8, acc[r][1]);
            for (int j = 0; j < cols; j++) d[r * ldd + j] = f[j];
        }
    }
}

void hs_ukernel_bf16v_avx2(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
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

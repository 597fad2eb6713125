/* gemm_bf16v_avx2.c: the AVX2 bf16-values GEMM (gemm_kernels.h: hs_gemm_bf16v), bit-identical to
 * hs_gemm_bf16v_ref: the tiles (gemm_bf16v_avx2_ukernel.c) run under MXCSR.FTZ, the flushing of
 * the bf16 contract; the beta step runs after MXCSR is restored, unflushed, from a copy of the
 * products in per-thread workspace. One thread: attention calls it inside its per-head tasks.
 * The MXCSR writes are here and the tiles in another file, so no compiler can move arithmetic
 * across them (a call to another translation unit is opaque). */
#include <immintrin.h>

#include "kernels/kernels.h"

void hs_ukernel_bf16v_avx2(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                           const float *b, int64_t ldb, float *d, int64_t ldd);

void hs_gemm_bf16v_avx2(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                        const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    if (m <= 0 || n <= 0) return;
    float *d = c;
    int64_t ldd = ldc;
    if (beta != 0.0f) {
        d = hs_workspace(0, (size_t)m * (size_t)n * sizeof(float));
        ldd = n;
        if (!d) { /* no memory for the copy: the reference computes the same bits */
            hs_gemm_bf16v_ref(m, n, k, a, lda, b, ldb, beta, c, ldc);
            return;
        }
    }
    const unsigned csr = _mm_getcsr();
    _mm_setcsr(csr | 0x8000); /* FTZ */
    hs_ukernel_bf16v_avx2(m, n, k, a, lda, b, ldb, d, ldd);
    _mm_setcsr(csr);
    if (beta == 0.0f) return;
    const __m256 vb = _mm256_set1_ps(beta);
    for (int64_t i = 0; i < m; i++) {
        float *ci = c + i * ldc;
        const float *di = d + i * ldd;
        int64_t j = 0;
        for (; j + 8 <= n; j += 8)
            _mm256_storeu_ps(ci + j,
                             _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci + j), _mm256_loadu_ps(di + j)));
        for (; j < n; j++) ci[j] = __builtin_fmaf(beta, ci[j], di[j]);
    }
}

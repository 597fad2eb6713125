/* gemm_bf16v_avx512.c: the AVX-512 bf16-values GEMM (gemm_kernels.h: hs_gemm_bf16v), bit-identical
 * to hs_gemm_bf16v_ref and to the AVX2 kernel: the tiles (gemm_bf16v_avx512_ukernel.c) run under
 * MXCSR.FTZ, the flushing of the bf16 contract; the beta step runs after MXCSR is restored,
 * unflushed, from a copy of the products in per-thread workspace. One thread: attention calls it
 * inside its per-head tasks. The MXCSR writes are here and the tiles in another file, so no
 * compiler can move arithmetic across them (a call to another translation unit is opaque).
 * FMAs on fp32 containers rather than vdpbf16ps: attention's operands change every call and are
 * small (k or n of 32..128), so the pair-interleaved packing vdpbf16ps needs would cost more than
 * the second FMA it saves. */
#include <immintrin.h>

#include "kernels/kernels.h"

void hs_ukernel_bf16v_avx512(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                             const float *b, int64_t ldb, float *d, int64_t ldd);

void hs_gemm_bf16v_avx512(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
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
    hs_ukernel_bf16v_avx512(m, n, k, a, lda, b, ldb, d, ldd);
    _mm_setcsr(csr);
    if (beta == 0.0f) return;
    const __m512 vb = _mm512_set1_ps(beta);
    for (int64_t i = 0; i < m; i++) {
        float *ci = c + i * ldc;
        const float *di = d + i * ldd;
        int64_t j = 0;
        for (; j + 16 <= n; j += 16)
            _mm512_storeu_ps(ci + j,
                             _mm512_fmadd_ps(vb, _mm512_loadu_ps(ci + j), _mm512_loadu_ps(di + j)));
        for (; j < n; j++) ci[j] = __builtin_fmaf(beta, ci[j], di[j]);
    }
}

/* gemm_bf16v_driver.h: the driver shared by the SIMD bf16-values GEMMs (gemm_kernels.h:
 * hs_gemm_bf16v; avx2/gemm_bf16v_avx2.c, avx512/gemm_bf16v_avx512.c), included by each with its
 * own ISA flags. The tiles (the ISA's *_ukernel.c) run under MXCSR.FTZ, the flushing of the bf16
 * contract; the beta step runs after MXCSR is restored, unflushed, from a copy of the products
 * in per-thread workspace (slot 0). One thread: attention calls it inside its per-head tasks.
 * The MXCSR writes are here and the tiles in another translation unit, so no compiler can move
 * arithmetic across them (the call is opaque). */
#ifndef HALFS_KERNELS_GEMM_BF16V_DRIVER_H
#define HALFS_KERNELS_GEMM_BF16V_DRIVER_H

#include <immintrin.h>

#include "kernels/kernels.h"

/* D (m × n, row stride ldd) = A · B, the tiles of one ISA. */
typedef void (*hs_bf16v_ukernel_fn)(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                                    const float *b, int64_t ldb, float *d, int64_t ldd);

static inline void hs_gemm_bf16v_drive(hs_bf16v_ukernel_fn tiles, int64_t m, int64_t n, int64_t k,
                                       const float *a, int64_t lda, const float *b, int64_t ldb,
                                       float beta, float *c, int64_t ldc) {
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
    tiles(m, n, k, a, lda, b, ldb, d, ldd);
    _mm_setcsr(csr);
    if (beta == 0.0f) return;
    for (int64_t i = 0; i < m; i++) { /* one fmaf per element, in the ISA's vector FMA */
        float *ci = c + i * ldc;
        const float *di = d + i * ldd;
#pragma omp simd
        for (int64_t j = 0; j < n; j++) ci[j] = __builtin_fmaf(beta, ci[j], di[j]);
    }
}

#endif

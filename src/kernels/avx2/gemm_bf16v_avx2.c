/* gemm_bf16v_avx2.c: the AVX2 bf16-values GEMM (gemm_kernels.h: hs_gemm_bf16v), bit-identical to
 * hs_gemm_bf16v_ref: the shared driver (gemm_bf16v_driver.h: MXCSR.FTZ around the tiles, the
 * beta step after) over the 6 × 16 tiles of gemm_bf16v_avx2_ukernel.c. */
#include "kernels/gemm_bf16v_driver.h"

void hs_ukernel_bf16v_avx2(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                           const float *b, int64_t ldb, float *d, int64_t ldd);

void hs_gemm_bf16v_avx2(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                        const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    hs_gemm_bf16v_drive(hs_ukernel_bf16v_avx2, m, n, k, a, lda, b, ldb, beta, c, ldc);
}

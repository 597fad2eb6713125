/* gemm_bf16v_avx512.c: the AVX-512 bf16-values GEMM (gemm_kernels.h: hs_gemm_bf16v),
 * bit-identical to hs_gemm_bf16v_ref and to the AVX2 kernel: the shared driver
 * (gemm_bf16v_driver.h: MXCSR.FTZ around the tiles, the beta step after) over the 8 × 32 tiles
 * of gemm_bf16v_avx512_ukernel.c. FMAs on fp32 containers rather than vdpbf16ps: attention's
 * operands change every call and are small (k or n of 32..128), so the pair-interleaved packing
 * vdpbf16ps needs would cost more than the second FMA it saves. */
#include "kernels/gemm_bf16v_driver.h"

void hs_ukernel_bf16v_avx512(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                             const float *b, int64_t ldb, float *d, int64_t ldd);

void hs_gemm_bf16v_avx512(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                          const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    hs_gemm_bf16v_drive(hs_ukernel_bf16v_avx512, m, n, k, a, lda, b, ldb, beta, c, ldc);
}

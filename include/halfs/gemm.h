/* halfs/gemm.h: matrix products, C[M,N] = A[M,K] · B[N,K]ᵀ (+ beta·C), fp32 output.
 *
 * Quantized operands arrive packed (halfs/quant.h) with scale groups along K, i.e. along their
 * rows; hs_gemm_packed computes on the codes directly where a kernel exists (MXFP4 × MXFP4,
 * NVFP4 × NVFP4, fp4row × fp4row: E2M1 decoded to doubled int8 values, int8 dot products,
 * per-group scaling) and otherwise dequantizes and falls back to fp32. The result is the
 * product of the dequantized operands, accumulated in fp32 per group.
 * fp32 and bf16 paths exist so baseline recipes run at the best available speed too.
 */
#ifndef HALFS_GEMM_H
#define HALFS_GEMM_H

#include <stdint.h>

#include "halfs/quant.h"

#ifdef __cplusplus
extern "C" {
#endif

/* C = A·Bᵀ + beta·C for packed A (M × K) and B (N × K); C has row stride ldc. */
hs_status hs_gemm_packed(const hs_packed *a, const hs_packed *b, float beta, float *c,
                         int64_t ldc);

/* The scalar reference of hs_gemm_packed (the contract the SIMD kernels match). */
hs_status hs_gemm_packed_ref(const hs_packed *a, const hs_packed *b, float beta, float *c,
                             int64_t ldc);

/* fp32 GEMM through OpenBLAS sgemm: C = op(A)·op(B) + beta·C, row-major, where
 * op(A) is M×K (A stored K×M if trans_a), op(B) is K×N (B stored N×K if trans_b). */
hs_status hs_gemm_f32(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                      const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                      float *c, int64_t ldc);

/* bf16 GEMM, C = A·Bᵀ + beta·C with A (M × K) and B (N × K) bf16 (uint16) row-major,
 * fp32 accumulation (AVX512-BF16 vdpbf16ps where available, else a scalar loop). */
hs_status hs_gemm_bf16(int64_t m, int64_t n, int64_t k, const uint16_t *a, int64_t lda,
                       const uint16_t *b, int64_t ldb, float beta, float *c, int64_t ldc);

/* The instruction set the kernels dispatch to ("ref", "avx2", "avx512"); fixed at the first
 * call from CPUID, or forced by the environment variable HALFS_ISA=ref|avx2|avx512. */
const char *hs_isa_name(void);

#ifdef __cplusplus
}
#endif
#endif

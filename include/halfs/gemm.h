/* halfs/gemm.h: matrix products, C[M,N] = A[M,K] · B[N,K]ᵀ (+ beta·C), fp32 output.
 *
 * hs_gemm takes two operands in any form (fp32, bf16 or packed) and routes the pair to the
 * GEMM that fits; hs_gemm_packed, hs_gemm_bf16 and hs_gemm_f32 are the GEMMs it routes to.
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

#include <stddef.h>
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

/* ---- hs_gemm: one GEMM whose operands come in any form ----
 * C (m × n, row stride ldc) = A·Bᵀ + beta·C, A given as m × k and B as n × k (outer × reduction
 * axis), each in one of three forms. The pair is routed:
 *   both bf16                                       → hs_gemm_bf16;
 *   both packed bf16 without RHT                    → hs_gemm_bf16 on their codes;
 *   both packed, not bf16, with the same element and scale format, the same groups along k
 *   and the same RHT (or none)                      → hs_gemm_packed;
 *   anything else (both fp32, or mixed forms, e.g. FP4 activations × fp32 weights)
 *     → each bf16 or packed operand is expanded to fp32 in the context's scratch (dequantized,
 *       and rotated back if it carries an RHT: the fp32 partner is in the unrotated basis), then
 *       a tiled fp32 GEMM over a fixed grid of row blocks, one single-threaded OpenBLAS sgemm
 *       per block, so that the result does not depend on the thread count (OpenBLAS's own
 *       threading changes which micro-kernel computes an element with the thread count, and
 *       with it the last bits). */
typedef enum { HS_GEMM_F32 = 0, HS_GEMM_BF16, HS_GEMM_PACKED } hs_gemm_form;

typedef struct hs_gemm_operand {
    hs_gemm_form form;
    const float *f;     /* HS_GEMM_F32: stored outer × k (trans = 0) or k × outer (trans = 1) */
    int trans;
    const uint16_t *h;  /* HS_GEMM_BF16: outer × k */
    int64_t ld;         /* row stride of f or h, in elements */
    const hs_packed *p; /* HS_GEMM_PACKED: rows = outer, cols = k */
} hs_gemm_operand;

static inline hs_gemm_operand hs_gemm_op_f32(const float *f, int64_t ld, int trans) {
    hs_gemm_operand o = {HS_GEMM_F32, f, trans, NULL, ld, NULL};
    return o;
}
static inline hs_gemm_operand hs_gemm_op_bf16(const uint16_t *h, int64_t ld) {
    hs_gemm_operand o = {HS_GEMM_BF16, NULL, 0, h, ld, NULL};
    return o;
}
static inline hs_gemm_operand hs_gemm_op_packed(const hs_packed *p) {
    hs_gemm_operand o = {HS_GEMM_PACKED, NULL, 0, NULL, 0, p};
    return o;
}

/* What hs_gemm keeps between calls: the fp32 scratch of the expanded operands, grown on
 * demand. Creating one sets OpenBLAS to a single thread, process-wide: hs_gemm threads its fp32
 * GEMMs itself (OpenMP over the fixed grid). One context per thread of calls. */
typedef struct hs_gemm_ctx hs_gemm_ctx;
hs_status hs_gemm_ctx_create(hs_gemm_ctx **out);
void hs_gemm_ctx_free(hs_gemm_ctx *ctx);

/* Seconds spent, accumulated by hs_gemm when given: gemm in the GEMM itself, expand in turning
 * bf16 or packed operands into fp32 for the fp32 GEMM. */
typedef struct hs_gemm_time {
    double gemm;
    double expand;
} hs_gemm_time;

hs_status hs_gemm(hs_gemm_ctx *ctx, int64_t m, int64_t n, int64_t k, const hs_gemm_operand *a,
                  const hs_gemm_operand *b, float beta, float *c, int64_t ldc, hs_gemm_time *t);

/* The instruction set the kernels dispatch to ("ref", "avx2", "avx512"); fixed at the first
 * call from CPUID, or forced by the environment variable HALFS_ISA=ref|avx2|avx512. */
const char *hs_isa_name(void);

#ifdef __cplusplus
}
#endif
#endif

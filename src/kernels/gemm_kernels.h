/* gemm_kernels.h: the internal side of the GEMMs: the plan every packed E2M1 kernel computes,
 * the GEMM kernel slots of the dispatch table (kernels.h), every GEMM kernel variant, the
 * AVX-512 micro-kernel interfaces, and the deterministic tiled fp32 GEMM. The public entry
 * points are in include/halfs/gemm.h; docs/KERNELS.md describes each kernel.
 */
#ifndef HALFS_GEMM_KERNELS_H
#define HALFS_GEMM_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "halfs/gemm.h"
#include "halfs/quant.h"

/* ---- the plan of a packed E2M1 × E2M1 GEMM (shared by every ISA) ----
 * C[m,n] = post · Σ_g fmaf((float)isum_g · sb[n,g], sa[m,g], acc)   (acc starts at +0, fp32),
 * then C = beta == 0 ? v : fmaf(beta, C_old, v), where isum_g is the exact int32 dot product of
 * the doubled E2M1 values (hs_e2m1_doubled) of row m of A and row n of B over group g, sa / sb
 * are the decoded group scales, and post = 0.25 · pa · pb / (tsa · tsb) (0.25 undoes the
 * doubling, pa/pb = 4/3 for operands quantized with the SR 3/4 pre-scale, tsa/tsb the NVFP4
 * tensor scales s_enc), computed in double and rounded once. Every kernel computes exactly this,
 * so all ISAs and thread counts give bit-identical results. */
typedef struct hs_e2m1_plan {
    int64_t m, n, k;
    int64_t glen;   /* group length along K (k when a row holds one group) */
    int64_t groups; /* groups per row: ceil(k / glen) (1 when k = 0) */
    float post;
} hs_e2m1_plan;

/* Validate a GEMM's operands. Returns HS_OK and fills *plan when both are E2M1 with aligned
 * groups (the direct integer path); HS_ERR_UNSUPPORTED (no message) when the pair has no direct
 * kernel (the caller dequantizes); HS_ERR_INVALID_ARG (with a message) on mismatched K, group
 * sizes, RHT, null pointers or ldc < n. */
hs_status hs_gemm_packed_check(const hs_packed *a, const hs_packed *b, const float *c,
                               int64_t ldc, hs_e2m1_plan *plan);

/* The decoded (float) scale of group g of row r of a packed E2M1 tensor. */
float hs_packed_scale_f32(const hs_packed *p, int64_t r, int64_t g);

/* 4/3 if p was quantized with the SR 3/4 pre-scale (its dequantized value is q·s·4/3), else 1. */
double hs_packed_prescale_factor(const hs_packed *p);

/* Both operands dequantized to fp32 into fresh buffers *fa (M × K) and *fb (N × K), row stride K,
 * for the two fallback GEMMs below; the caller frees them. On failure nothing is left allocated. */
hs_status hs_gemm_dequant_operands(const hs_packed *a, const hs_packed *b, float **fa, float **fb);

/* The dequantize-then-fp32-GEMM path of hs_gemm_packed for pairs with no direct kernel: both
 * operands dequantized to fp32 (in their stored basis: an RHT the two share cancels in the
 * product), then OpenBLAS sgemm (gemm_dispatch.c). */
hs_status hs_gemm_packed_dequant(const hs_packed *a, const hs_packed *b, float beta, float *c,
                                 int64_t ldc);
/* Its reference (hs_gemm_packed_ref's fallback): the same dequantized operands, multiplied by a
 * scalar loop, fmaf over K in order (ref/gemm_ref.c). */
hs_status hs_gemm_packed_dequant_ref(const hs_packed *a, const hs_packed *b, float beta, float *c,
                                     int64_t ldc);

/* Scalar bf16 GEMM (the reference of hs_gemm_bf16): per element, the sequence of vdpbf16ps over
 * the k-pairs (ref/gemm_ref.c states it: each pair's second product first, subnormal inputs and
 * results flushed to zero), then the beta step. */
hs_status hs_gemm_bf16_ref(int64_t m, int64_t n, int64_t k, const uint16_t *a, int64_t lda,
                           const uint16_t *b, int64_t ldb, float beta, float *c, int64_t ldc);
/* One step of that sequence: acc after the pair (a0, a1)·(b0, b1), element 1's product first. */
float hs_bf16_pair_ref(float acc, uint16_t a0, uint16_t a1, uint16_t b0, uint16_t b1);
/* 1 if this CPU's vdpbf16ps computes that sequence on probes that tell the plausible readings of
 * its specification apart (pair order, one or two roundings, DAZ, FTZ and its tininess rule,
 * fused or flushed products); avx512/bf16_probe_avx512.c. The dispatcher uses the AVX-512 bf16
 * GEMM only then, else the AVX2 one, so the bits stay the contract's on every CPU. */
int hs_bf16_dp_matches_ref_avx512(void);

/* fp32 C (m × n) = op(A)·op(B) + beta·C (arguments as hs_gemm_f32) over a fixed grid of output
 * row blocks that depends on the shape only, one single-threaded sgemm per block, the blocks
 * shared among OpenMP threads: every element is computed by the same sgemm call whatever the
 * thread count, so the result is too. OpenBLAS must run single-threaded
 * (hs_gemm_f32_blas_single_thread; hs_gemm_ctx_create does it). gemm_f32.c. */
hs_status hs_gemm_f32_tiled(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                            const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                            float *c, int64_t ldc);

/* Sets OpenBLAS to one thread, process-wide (the callers thread around it). gemm_f32.c. */
void hs_gemm_f32_blas_single_thread(void);

/* ---- GEMM kernel slots (hs_kernel_table, kernels.h) ---- */
/* The packed E2M1 GEMM on a validated plan (operands already checked). */
typedef hs_status (*hs_gemm_e2m1_fn)(const hs_e2m1_plan *plan, const hs_packed *a,
                                     const hs_packed *b, float beta, float *c, int64_t ldc);
typedef hs_status (*hs_gemm_bf16_fn)(int64_t m, int64_t n, int64_t k, const uint16_t *a,
                                     int64_t lda, const uint16_t *b, int64_t ldb, float beta,
                                     float *c, int64_t ldc);
/* The bf16 GEMM on operands held as fp32 values that are bf16 values (low 16 bits zero; no
 * subnormals: hs_bf16v_tile makes them), for small products computed on one thread (attention):
 * C (m × n) = A (m × k, row stride lda) · B (k × n, row stride ldb) (+ beta·C), per element the
 * same sequence as hs_gemm_bf16 (the vdpbf16ps contract), so the same bits on every level.
 * With B stored k-major the SIMD kernels read both operands in place: no packing, which
 * dominated these products at attention's head sizes (k or n of 32..128). */
typedef void (*hs_gemm_bf16v_fn)(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                                 const float *b, int64_t ldb, float beta, float *c, int64_t ldc);
void hs_gemm_bf16v_ref(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                       const float *b, int64_t ldb, float beta, float *c, int64_t ldc);
void hs_gemm_bf16v_avx2(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                        const float *b, int64_t ldb, float beta, float *c, int64_t ldc);
void hs_gemm_bf16v_avx512(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                          const float *b, int64_t ldb, float beta, float *c, int64_t ldc);

/* ---- ISA kernels ---- */
hs_status hs_gemm_e2m1_avx512(const hs_e2m1_plan *plan, const hs_packed *a, const hs_packed *b,
                              float beta, float *c, int64_t ldc);
hs_status hs_gemm_e2m1_avx2(const hs_e2m1_plan *plan, const hs_packed *a, const hs_packed *b,
                            float beta, float *c, int64_t ldc);
hs_status hs_gemm_e2m1_ref(const hs_e2m1_plan *plan, const hs_packed *a, const hs_packed *b,
                           float beta, float *c, int64_t ldc);
hs_status hs_gemm_bf16_avx2(int64_t m, int64_t n, int64_t k, const uint16_t *a, int64_t lda,
                            const uint16_t *b, int64_t ldb, float beta, float *c, int64_t ldc);
hs_status hs_gemm_bf16_avx512(int64_t m, int64_t n, int64_t k, const uint16_t *a, int64_t lda,
                              const uint16_t *b, int64_t ldb, float beta, float *c, int64_t ldc);

/* ---- AVX-512 micro-kernels (avx512/gemm_*_ukernel.c; layouts in the matching driver files) ---- */
#define HS_E2M1_MR 4  /* rows of A per packed panel of the E2M1 GEMM */
#define HS_E2M1_NB 48 /* columns of B per packed panel */
#define HS_BF16_MR 8
#define HS_BF16_NB 48
/* Grouped formats: groups [0, ng) of one K chunk (the last may hold fewer than gs k-steps);
 * facc (MR, NB) fp32 accumulators in/out. */
void hs_ukernel_e2m1_grouped_avx512(const int32_t *ap, const int32_t *bp, int64_t ng, int64_t gs,
                                    int64_t steps_total, const float *sa, const int32_t *ca,
                                    const float *sb, float *facc);
/* bf16 (layouts in gemm_bf16_avx512.c): `steps` pairs of k of one 8 × 48 micro-tile on its
 * first nv = 1..3 column vectors (16·nv ≥ the panel's valid columns). A: arow = 0, ap is a
 * packed panel (steps, MR) of dwords; else ap is row 0 of 8 rows of bf16 arow bytes apart, each
 * read as `steps` consecutive pairs. B: bp (steps, NB) dwords. first: the accumulators
 * start at +0 (acc is not read); else they are loaded from acc (MR, NB). out: NULL, they are
 * stored to acc; else the tile is written to C: acc, or fmaf(beta, C_old, acc) if beta ≠ 0. */
typedef struct hs_bf16_out {
    float *c;       /* C + r0·ldc + j0: the tile's top-left element */
    int64_t ldc;    /* row stride of C */
    int rows, cols; /* valid rows 1..HS_BF16_MR, columns 1..HS_BF16_NB */
    float beta;
} hs_bf16_out;
void hs_ukernel_bf16_avx512(const void *ap, int64_t arow, const uint32_t *bp, int64_t steps,
                            float *acc, int nv, int first, const hs_bf16_out *out);

/* ---- AVX2 micro-kernel (avx2/gemm_e2m1_avx2_ukernel.c; layouts in avx2/gemm_e2m1_avx2.c) ---- */
#define HS_E2M1_AVX2_MR 6  /* rows of A per packed panel */
#define HS_E2M1_AVX2_NB 16 /* columns of B per packed panel */
/* One A panel ap (k4, MR) × one B panel bp (k4, NB) over all G groups of gs k-steps (the last
 * may hold fewer); sa, ca (G, MR) and sb (G, NB) the panels' scales and offset corrections; f
 * (MR, NB) receives the fp32 results (not read). */
void hs_ukernel_e2m1_avx2(const int32_t *ap, const int32_t *bp, int64_t k4, int64_t G, int64_t gs,
                          const float *sa, const int32_t *ca, const float *sb, float *f);

#define HS_BF16_AVX2_MR 6  /* rows of A per fp32 panel of the AVX2 bf16 GEMM */
#define HS_BF16_AVX2_NB 16 /* columns of B per fp32 panel */
/* One A panel ap (kc, MR) × one B panel bp (kc, NB) of fp32: tile (MR rows, stride ldt) =
 * fma chain over the kc steps, starting from +0 (first) or from the tile's values. The caller
 * sets MXCSR.FTZ around it (the flushing of the bf16 contract). */
void hs_ukernel_bf16_avx2(const float *ap, const float *bp, int64_t kc, float *tile, int64_t ldt,
                          int first);

#endif

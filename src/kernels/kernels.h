/* kernels.h: the internal kernel table of halfs and the prototypes of every kernel variant.
 *
 * Organisation (docs/KERNELS.md): src/kernels/ref/ holds the scalar twins (the contract),
 * src/kernels/avx2/ and src/kernels/avx512/ one file per kernel family and ISA, compiled with
 * that ISA's flags only. dispatch.c fills one table with the reference kernels, then overrides
 * the slots the CPU supports (BLIS-style), so every slot is always valid. Nothing here is public:
 * the library's users see include/halfs/ only; tests include this header to force an ISA.
 */
#ifndef HALFS_KERNELS_H
#define HALFS_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "halfs/gemm.h"
#include "halfs/quant.h"

/* ---- ISA levels ---- */
typedef enum { HS_ISA_REF = 0, HS_ISA_AVX2 = 1, HS_ISA_AVX512 = 2, HS_ISA_COUNT } hs_isa;

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

/* The dequantize-then-fp32-GEMM path for pairs with no direct kernel; `blas` = 1 uses
 * OpenBLAS sgemm, 0 a scalar loop (fmaf in K order: the reference). */
hs_status hs_gemm_packed_dequant(const hs_packed *a, const hs_packed *b, float beta, float *c,
                                 int64_t ldc, int blas);

/* Scalar bf16 GEMM (the reference of hs_gemm_bf16): per element, fmaf over k in order. */
hs_status hs_gemm_bf16_ref(int64_t m, int64_t n, int64_t k, const uint16_t *a, int64_t lda,
                           const uint16_t *b, int64_t ldb, float beta, float *c, int64_t ldc);

/* ---- kernel slots ---- */
/* The packed E2M1 GEMM on a validated plan (operands already checked). */
typedef hs_status (*hs_gemm_e2m1_fn)(const hs_e2m1_plan *plan, const hs_packed *a,
                                     const hs_packed *b, float beta, float *c, int64_t ldc);
typedef hs_status (*hs_gemm_bf16_fn)(int64_t m, int64_t n, int64_t k, const uint16_t *a,
                                     int64_t lda, const uint16_t *b, int64_t ldb, float beta,
                                     float *c, int64_t ldc);
/* fp32 → bf16 (RNE, quiet NaN) of one tile of at most 32 rows × 16 columns of x (rows × cols,
 * row stride ld) at rows r0.., columns c0..: into dr (rows × cols) as is and/or into dt (cols ×
 * rows) transposed; either may be NULL. */
typedef void (*hs_bf16_tile_fn)(uint16_t *dr, uint16_t *dt, const float *x, int64_t rows,
                                int64_t cols, int64_t ld, int64_t r0, int64_t c0);
void hs_bf16_tile_ref(uint16_t *dr, uint16_t *dt, const float *x, int64_t rows, int64_t cols,
                      int64_t ld, int64_t r0, int64_t c0);
void hs_bf16_tile_avx512(uint16_t *dr, uint16_t *dt, const float *x, int64_t rows, int64_t cols,
                         int64_t ld, int64_t r0, int64_t c0);

typedef struct hs_kernel_table {
    hs_isa isa;
    const char *name;
    hs_gemm_e2m1_fn gemm_e2m1;
    hs_gemm_bf16_fn gemm_bf16;
    hs_bf16_tile_fn bf16_tile; /* the bf16 recipe's operand conversion */
} hs_kernel_table;

/* The quantizers' kernels are chosen from per-level lists: kernels/quant_kernels.h. */

/* The table in use (chosen once: CPUID, or HALFS_ISA). */
const hs_kernel_table *hs_kernels(void);
/* The best ISA this CPU (and OS) supports. */
hs_isa hs_isa_detect(void);
/* Tests only: force an ISA level for this process (clamped to what the CPU supports); returns
 * the level actually selected. Not thread-safe against concurrent kernel calls. */
hs_isa hs_isa_force(hs_isa isa);

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

/* ---- AVX-512 micro-kernels (avx512/..._ukernel.c; layouts in the matching driver files) ---- */
#define HS_E2M1_MR 4  /* rows of A per packed panel of the E2M1 GEMM */
#define HS_E2M1_NB 48 /* columns of B per packed panel */
#define HS_BF16_MR 8
#define HS_BF16_NB 48
/* Grouped formats: groups [0, ng) of one K chunk (the last may hold fewer than gs k-steps);
 * facc (MR, NB) fp32 accumulators in/out. */
void hs_ukernel_e2m1_grouped_avx512(const int32_t *ap, const int32_t *bp, int64_t ng, int64_t gs,
                                    int64_t steps_total, const float *sa, const int32_t *ca,
                                    const float *sb, float *facc);
/* Row-wise MXFP4 quantizer (quant_e2m1_rows_avx512*.c): row r, x[0..C), of a spec the driver
 * checked (E8M0, block 16/32, RNE or SR, ocp..halfs), its codes (code_stride bytes, tail zeroed)
 * and ceil(C / block) scale bytes; returns the groups halved. */
int64_t hs_ukernel_qrows_avx512(const hs_quant_spec *s, const float *x, int64_t r, int64_t C,
                                uint8_t *codes, int64_t code_stride, uint8_t *scales);
/* bf16 (layouts in gemm_bf16_dpbf16.c): `steps` pairs of k of one 8 × 48 micro-tile on its
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

/* ---- workspace ----
 * A per-thread scratch buffer reused across calls (the first touch of fresh pages costs a page
 * fault each), 64-byte aligned, grown on demand, freed at thread exit. slot 0..3 are
 * independent buffers. Returns NULL on allocation failure. */
void *hs_workspace(int slot, size_t bytes);

/* NVFP4's tensor amax over finite values, as the reference computes it: one value per band of
 * rows, band_amax(ctx, b, t) with t = hs_workspace(2, tbytes) of the calling thread, the bands
 * run in parallel (if par) and reduced in band order, so the result is independent of the
 * thread count. Returns 0, or -1 when scratch memory could not be had. */
int hs_bands_finite_amax(int64_t nbands, size_t tbytes, int par,
                         float (*band_amax)(const void *ctx, int64_t b, float *t),
                         const void *ctx, float *amax);

#endif

/* gemm_e2m1_avx512.h: the interface between the packed E2M1 GEMM driver (gemm_e2m1_avx512.c) and
 * its micro-kernels that finish a tile straight into C and its operand packers
 * (gemm_e2m1_avx512_ukernel.c). Internal to those two files; the layouts are described in
 * gemm_e2m1_avx512.c.
 */
#ifndef HALFS_GEMM_E2M1_AVX512_H
#define HALFS_GEMM_E2M1_AVX512_H

#include <stdint.h>

#include "halfs/quant.h"

/* Panels of A whose codes hs_pack_e2m1_a_avx512 prefetches ahead of the one it packs. */
#define HS_E2M1_A_PREFETCH 4

/* What the operand packers need of one call: one operand's geometry and scale table. */
typedef struct hs_e2m1_pack {
    int64_t k, k4;      /* K; k-steps of 4 over all K */
    int64_t groups, gs; /* groups per row; k-steps per full group (k4 in row mode) */
    int row_mode;       /* one group per row */
    int64_t rows;       /* rows of the operand (M for A, N for B); rows past it pack as zeros */
    const float *tab;   /* [256] decoded byte scale codes (NaN codes included) */
} hs_e2m1_pack;

/* Pack panel p of A (rows 4p..4p+3) in one pass: dst (k4, MR) int32 words of 4 signed doubled
 * values, sa (groups, MR) decoded scales, ca (groups, MR) corrections −12·Σa. Rows ≥ rows are
 * zero codes and zero scales. Prefetches the codes of panel p + HS_E2M1_A_PREFETCH. */
void hs_pack_e2m1_a_avx512(const hs_e2m1_pack *x, const hs_packed *a, int64_t p,
                           int32_t *dst, float *sa, int32_t *ca);

/* Pack panel q of B (columns 48q..48q+47): dst (k4, NB) words of 4 unsigned bytes (doubled
 * value + 12), sb (groups, NB) decoded scales, and when nc is not NULL nc (groups, NB) =
 * −1.5·2^23·sb. Columns ≥ rows are zero codes (bytes 12) and zero scales. */
void hs_pack_e2m1_b_avx512(const hs_e2m1_pack *x, const hs_packed *b, int64_t q,
                           int32_t *dst, float *sb, float *nc);

/* Where a micro-tile's last K chunk writes its outputs: v = acc·post, then
 * C = beta == 0 ? v : fmaf(beta, C, v) (kernels.h: the plan's formula). */
typedef struct hs_e2m1_out {
    float *c;     /* C + r0·ldc + j0: the tile's top-left element */
    int64_t ldc;  /* row stride of C */
    int rows;     /* valid rows from c on: 1..HS_E2M1_MR per panel the kernel runs */
    int cols;     /* valid columns, 1..HS_E2M1_NB */
    float post, beta;
    int nt;       /* streaming stores for whole aligned vectors (beta = 0, C larger than caches) */
} hs_e2m1_out;

/* Grouped formats with the int32 → fp32 conversion folded into an FMA (nc = −1.5·2^23·sb,
 * exact for B scales E8M0 up to 2^100 or UE4M3; bit-identical to hs_ukernel_e2m1_grouped_avx512
 * followed by the store), for np consecutive A panels against one B micro-panel in one call
 * (panel i at ap + i·ap_stride, its scales and corrections at sa, ca + i·s_stride, its tile at
 * facc + i·f_stride, its rows of C from out->c + i·MR·ldc; out->rows counts the valid rows of
 * all np panels), on the first nv = 1..3 column vectors of the B panel
 * (16·nv ≥ the panel's valid columns: the padding vectors of a narrow last panel are skipped).
 * first: the fp32 accumulators start at +0 (facc is not read); else they are loaded from facc.
 * out: NULL, the accumulators are stored to facc (MR, NB); else the tiles are written to C. */
void hs_ukernel_e2m1_mx_avx512(const int32_t *ap, int64_t ap_stride, int64_t np,
                               const int32_t *bp, int64_t ng, int64_t gs, int64_t steps_total,
                               const float *sa, const int32_t *ca, int64_t s_stride,
                               const float *sb, const float *nc, float *facc, int64_t f_stride,
                               int nv, int first, const hs_e2m1_out *out);

/* Row mode (one group per row): int32 sums over all K for one A panel (ap1 = NULL) or two
 * (ap1 = ap0's next panel; 8 rows), on nv = 1..3 column vectors. iacc0 / iacc1: (MR, NB) int32
 * sums of each panel between chunks. first: the sums start at the rows' corrections ca
 * ((P·MR) values; else loaded from iacc). out: NULL, the sums are stored to iacc; else the
 * tile is converted with sa (P·MR) and sb (NB) and written to C (out->rows up to P·MR). */
void hs_ukernel_e2m1_rx_avx512(const int32_t *ap0, const int32_t *ap1, const int32_t *bp,
                               int64_t steps, int32_t *iacc0, int32_t *iacc1, const int32_t *ca,
                               const float *sa, const float *sb, int nv, int first,
                               const hs_e2m1_out *out);

#endif

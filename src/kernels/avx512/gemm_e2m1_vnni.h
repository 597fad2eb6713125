/* gemm_e2m1_vnni.h: the interface between the packed E2M1 GEMM driver (gemm_e2m1_vnni.c) and
 * its micro-kernels that finish a tile straight into C (gemm_e2m1_vnni_ukernel.c). Internal to
 * those two files; the layouts are described in gemm_e2m1_vnni.c.
 */
#ifndef HALFS_GEMM_E2M1_VNNI_H
#define HALFS_GEMM_E2M1_VNNI_H

#include <stdint.h>

/* Where a micro-tile's last K chunk writes its outputs: v = acc·post, then
 * C = beta == 0 ? v : fmaf(beta, C, v) (kernels.h: the plan's formula). */
typedef struct hs_e2m1_out {
    float *c;     /* C + r0·ldc + j0: the tile's top-left element */
    int64_t ldc;  /* row stride of C */
    int rows;     /* valid rows, 1..HS_E2M1_MR */
    int cols;     /* valid columns, 1..HS_E2M1_NB */
    float post, beta;
    int nt;       /* streaming stores for whole aligned vectors (beta = 0, C larger than caches) */
} hs_e2m1_out;

/* Grouped formats with the int32 → fp32 conversion folded into an FMA (nc = −1.5·2^23·sb,
 * exact for B scales E8M0 up to 2^100 or UE4M3; bit-identical to hs_ukernel_e2m1_grouped_avx512
 * followed by the store), on the first nv = 1..3 column vectors of the panel
 * (16·nv ≥ the panel's valid columns: the padding vectors of a narrow last panel are skipped).
 * first: the fp32 accumulators start at +0 (facc is not read); else they are loaded from facc.
 * out: NULL, the accumulators are stored to facc (MR, NB); else the tile is written to C. */
void hs_ukernel_e2m1_mx_avx512(const int32_t *ap, const int32_t *bp, int64_t ng, int64_t gs,
                               int64_t steps_total, const float *sa, const int32_t *ca,
                               const float *sb, const float *nc, float *facc, int nv, int first,
                               const hs_e2m1_out *out);

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

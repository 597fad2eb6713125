/* quant_mx.h (internal): the dedicated quantizers of MXFP4-style specs — E2M1 elements, E8M0
 * block scales, block 16 or 32, rules ocp / ceil / rceil / even / half / halfs, RNE or SR; no
 * RHT, 2D tiles or tensor scale — as one ISA-independent driver (quant_mx.c: coverage, argument
 * checks, row runs, column strips, the fused row + column walk, OpenMP) over a small table of
 * vector kernels that each ISA fills (avx2/quant_mx_avx2_ukernel.c, avx512/quant_mx_avx512_ukernel.c).
 *
 * The kernels compute every group alone (its scale from its own elements, its codes from that
 * scale, SR index r·C + c of the packed element), so how the driver splits the work, and the
 * thread count, never change a byte. Half-S is decided the same way at every level
 * (avx512/quant_mx_avx512_ukernel.c states it): a float sum of the two candidates' error
 * difference, with an error bound; a group too close to call goes to hs_scale_choose, the
 * reference itself.
 */
#ifndef HALFS_KERNELS_QUANT_MX_H
#define HALFS_KERNELS_QUANT_MX_H

#include <stdint.h>

#include "halfs/quant.h"

typedef struct hs_qmx_ops {
    /* Row-wise, rows [r0, r1) of x (row stride ld, C columns, C a multiple of s->block) as one
     * run of blocks (a vector step may hold the end of one row and the start of the next);
     * codes and scales of the whole packed matrix (row r at codes + r·code_stride,
     * scales + r·C/block); bytes of a row past C/2 untouched. Returns the groups halved. */
    int64_t (*rows_flat)(const hs_quant_spec *s, const float *x, int64_t ld, int64_t C,
                         int64_t r0, int64_t r1, uint8_t *codes, int64_t code_stride,
                         uint8_t *scales);
    /* Row-wise, one packed row r of any length C (x: its C floats), its codes (code_stride
     * bytes, the padding zeroed) and scales (ceil(C/block) bytes). Returns the groups halved. */
    int64_t (*row)(const hs_quant_spec *s, const float *x, int64_t r, int64_t C, uint8_t *codes,
                   int64_t code_stride, uint8_t *scales);
    /* Column-wise (packed row j = column j of x, packed group g = x rows g·B .. g·B+B−1):
     * groups [g0, g1) of packed rows [jb, je); R = x's columns, C = x's rows; codes and scales
     * of the whole packed matrix; the code bytes of groups only (B/2 per group). Returns the
     * groups halved. */
    int64_t (*cols)(const hs_quant_spec *s, const float *x, int64_t ld, int64_t R, int64_t C,
                    int64_t jb, int64_t je, int64_t g0, int64_t g1, uint8_t *codes,
                    int64_t code_stride, uint8_t *scales);
} hs_qmx_ops;

/* The rows_flat kernels' walk over a run of blocks: the next nblk blocks (from column block *cb
 * of row *row, both advanced) into the step's slots, their floats at bp[b] and their codes at
 * dp[b]; slots nblk .. nslots−1 get an all-zero group (zeros, at least B floats) whose codes go
 * to scratch + 16·b and are dropped. */
static inline void hs_qmx_flat_blocks(const float *x, int64_t ld, uint8_t *codes, int64_t code_stride,
                                      int64_t gpr, int B, int nblk, int nslots, int64_t *row,
                                      int64_t *cb, const float *zeros, uint8_t *scratch,
                                      const float **bp, uint8_t **dp) {
    for (int b = 0; b < nslots; b++) {
        if (b < nblk) {
            bp[b] = x + *row * ld + *cb * B;
            dp[b] = codes + *row * code_stride + *cb * (B / 2);
            if (++*cb == gpr) *cb = 0, ++*row;
        } else {
            bp[b] = zeros;
            dp[b] = scratch + 16 * b;
        }
    }
}

/* Is s such a spec. */
int hs_qmx_covers(const hs_quant_spec *s);

/* hs_quantize (transpose = 0: row-wise; 1: column-wise) and hs_quantize_both with the given
 * kernels; HS_ERR_UNSUPPORTED, touching nothing, for a call not covered or malformed. */
hs_status hs_qmx_quantize(const hs_qmx_ops *ops, const hs_quant_spec *s, const float *x,
                          int64_t rows, int64_t cols, int64_t ld, int transpose, hs_packed *out);
hs_status hs_qmx_quantize_both(const hs_qmx_ops *ops, const hs_quant_spec *sr,
                               const hs_quant_spec *sc, const float *x, int64_t rows,
                               int64_t cols, int64_t ld, hs_packed *out_row, hs_packed *out_col);

/* The tables (avx2/quant_mx_avx2_ukernel.c, avx512/quant_mx_avx512_ukernel.c). */
extern const hs_qmx_ops hs_qmx_ops_avx2;
extern const hs_qmx_ops hs_qmx_ops_avx512;

#endif

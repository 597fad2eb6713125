/* quant_e2m1_avx512.h (internal): the AVX-512 E2M1 quantizer kernels — the band kernels of the
 * AVX-512 table of kernels/quant_band.h (quant_e2m1_avx512_ukernel.c, compiled by clang where
 * available: see the Makefile) and the dedicated MXFP4 row-wise, column-wise and fused ones
 * (quant_e2m1_rows_avx512*.c). */
#ifndef HALFS_KERNELS_QUANT_E2M1_AVX512_H
#define HALFS_KERNELS_QUANT_E2M1_AVX512_H

#include <stdint.h>

#include "halfs/quant.h"
#include "kernels/quant_band.h"

enum { HS_QK_LANES = 16 }; /* packed rows per band */

/* The band kernels of the AVX-512 table (kernels/quant_band.h states their contract; ob:
 * (ceil(chunk/32)·4 + 4)·64 bytes). */
int64_t hs_qk_band(const hs_qk *q, hs_packed *out, int64_t r0, int nb, int64_t cb, int64_t ce,
                   float *t, uint8_t *ob, int preloaded);
void hs_qk_load_rows_t(const hs_qk *q, int64_t r0, int nbands, float *tiles, int64_t tstride);
float hs_qk_band_finite_amax(const hs_qk *q, int64_t r0, int nb, float *t);

/* Row-wise kernel over rows [r0, r1) of x as one run of blocks (steps across row ends), for
 * C a multiple of s->block (quant_e2m1_rows_avx512_ukernel.c): codes and scales of the whole
 * packed matrix (row r at codes + r·code_stride, scales + r·C/block); the same bytes as
 * hs_ukernel_qrows_avx512 on each row. Returns the groups halved. */
int64_t hs_ukernel_qrows_flat_avx512(const hs_quant_spec *s, const float *x, int64_t ld, int64_t C,
                                     int64_t r0, int64_t r1, uint8_t *codes, int64_t code_stride,
                                     uint8_t *scales);

/* Column-wise (transpose = 1) MXFP4 quantizer for the specs of the row-wise one (E8M0, block
 * 16/32, RNE or SR, ocp..halfs, no RHT/2D/tensor scale): quant_e2m1_rows_avx512.c. Returns
 * HS_ERR_UNSUPPORTED, touching nothing, for anything else (transpose = 0 included). */
hs_status hs_quantize_e2m1_cols_avx512(const hs_quant_spec *s, const float *x, int64_t rows,
                                       int64_t cols, int64_t ld, int transpose, hs_packed *out);
/* Its kernel: every group of packed rows [jb, je) (R = x's cols, C = x's rows); codes and
 * scales of the whole packed tensor; returns the groups halved. */
int64_t hs_ukernel_qcols_avx512(const hs_quant_spec *s, const float *x, int64_t ld, int64_t R,
                                int64_t C, int64_t jb, int64_t je, uint8_t *codes,
                                int64_t code_stride, uint8_t *scales);

/* The same for groups [g0, g1) of every packed row (used by the fused quantizer). */
int64_t hs_ukernel_qcols_groups_avx512(const hs_quant_spec *s, const float *x, int64_t ld,
                                       int64_t R, int64_t C, int64_t g0, int64_t g1,
                                       uint8_t *codes, int64_t code_stride, uint8_t *scales);
/* Fused row + column quantization (hs_quantize_both) for a pair of specs both covered by the
 * row-wise and column-wise kernels above; HS_ERR_UNSUPPORTED, touching nothing, otherwise. */
hs_status hs_quantize_both_e2m1_avx512(const hs_quant_spec *sr, const hs_quant_spec *sc,
                                       const float *x, int64_t rows, int64_t cols, int64_t ld,
                                       hs_packed *out_row, hs_packed *out_col);

#endif

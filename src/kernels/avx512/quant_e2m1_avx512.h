/* quant_e2m1_avx512.h (internal): the band kernels of the AVX-512 E2M1 quantizer, shared by
 * its driver (quant_e2m1_avx512.c: checks, OpenMP over bands, tensor scale) and the kernels
 * (quant_e2m1_avx512_ukernel.c, compiled by clang where available: see the Makefile). */
#ifndef HALFS_KERNELS_QUANT_E2M1_AVX512_H
#define HALFS_KERNELS_QUANT_E2M1_AVX512_H

#include <stdint.h>

#include "halfs/quant.h"

enum {
    HS_QK_LANES = 16,        /* packed rows per band */
    HS_QK_CHUNK = 256,       /* packed columns per chunk for block groups (a multiple of 128) */
    HS_QK_ROW_MAX = 1 << 16, /* longest one-scale-per-row group handled */
};

/* One quantization call, as the band kernels see it. */
typedef struct hs_qk {
    const hs_quant_spec *s;
    const float *x;
    int64_t ld, R, C;  /* packed shape R × C */
    int64_t W;         /* group width along a packed row (C for one group per row) */
    int64_t gpr;       /* groups per packed row */
    int64_t chunk;     /* packed columns per chunk */
    int transpose, tile2d, sr, prescale, rht;
    uint64_t key;      /* SR key of (seed, stream) */
    float s_enc;       /* NVFP4 tensor scale (1 otherwise) */
    float nrm;         /* fl(1/sqrt(d)) of the RHT */
    float signs[128];
} hs_qk;

/* Scratch per thread, 64-aligned: t holds (chunk + 8) × 16 floats, ob (ceil(chunk/32)·4 + 4)·64
 * bytes. */
/* Packed rows r0 .. r0+nb−1, packed columns [cb, ce) (chunk-aligned; cb = 0 also zeroes the row
 * tails); returns the groups halved. */
int64_t hs_qk_band(const hs_qk *q, hs_packed *out, int64_t r0, int nb, int64_t cb, int64_t ce,
                   float *t, uint8_t *ob, int preloaded);
/* Column-wise, one group per row: the tiles of nbands adjacent bands from r0, whole rows (C),
 * RHT applied, into tiles + b·tstride (tstride ≥ (C + 8)·16 floats); the x rows are read once,
 * nbands·64 contiguous bytes at a time. Then hs_qk_band(..., preloaded = 1) on each tile. */
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

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

#endif

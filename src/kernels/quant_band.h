/* quant_band.h (internal): the E2M1 band quantizer — MXFP4 / fp4row (E8M0 scales), NVFP4 (UE4M3
 * block scales, FP32 tensor scale, 2D tiles) and FP32-scaled fp4, row-wise and column-wise, RNE
 * and stochastic rounding, RHT fused — as one ISA-independent driver (quant_band.c: argument
 * checks, the call's constants, the NVFP4 tensor scale, tasks of bands, OpenMP) over a table of
 * band kernels that each ISA fills (avx512/quant_e2m1_avx512.c, avx2/quant_e2m1_avx2.c).
 *
 * The data path, common to every ISA: work is split in bands of L packed rows (L = the vector's
 * float lanes: 16 or 8). A band is processed in chunks of packed columns (HS_QK_CHUNK, or the
 * whole row for one-scale-per-row groups) loaded into a tile t[i][L] whose lanes are the band's
 * packed rows; from there everything is vertical (lane = packed row = independent group), so a
 * band's bytes do not depend on which task or thread computes it. Byte-identical to
 * hs_quantize_ref (core/scale_rules.h states the arithmetic).
 */
#ifndef HALFS_KERNELS_QUANT_BAND_H
#define HALFS_KERNELS_QUANT_BAND_H

#include <stddef.h>
#include <stdint.h>

#include "halfs/quant.h"

enum {
    HS_QK_MAXLANES = 16,     /* the widest band (AVX-512); also the rows of a 2D tile */
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

typedef struct hs_qband_ops {
    int lanes; /* L: packed rows per band (16 or 8) */
    /* Does the kernel implement spec s exactly for packed rows of C elements? */
    int (*covers)(const hs_quant_spec *s, int64_t C);
    /* Packed rows r0 .. r0+nb−1 (nb ≤ L; with 2D tiles a unit of nb ≤ 16 rows), packed columns
     * [cb, ce) (chunk-aligned; cb = 0 also zeroes the row tails past the last code byte).
     * t: scratch of (chunk + 8)·16 floats, 64-aligned, or (preloaded = 1) the band's tile of the
     * whole row, already loaded by load_rows_t; ob: ob_bytes(chunk) bytes of scratch. Writes the
     * band's codes and scales; returns the groups (2D: tiles) halved. */
    int64_t (*band)(const hs_qk *q, hs_packed *out, int64_t r0, int nb, int64_t cb, int64_t ce,
                    float *t, uint8_t *ob, int preloaded);
    /* The finite amax of the (rotated) values of packed rows r0 .. r0+nb−1, nb ≤ L, packed
     * columns [cb, ce) (chunk-aligned cb; NVFP4's tensor scale); t as for band. */
    float (*finite_amax)(const hs_qk *q, int64_t r0, int nb, int64_t cb, int64_t ce, float *t);
    /* Optional (NULL: none). Column-wise with one group per row: the tiles of nbands adjacent
     * bands from r0, whole rows, RHT applied, into tiles + b·tstride (tstride = (C + 8)·L
     * floats), each x row read once, nbands·L contiguous floats at a time. */
    void (*load_rows_t)(const hs_qk *q, int64_t r0, int nbands, float *tiles, int64_t tstride);
    /* Optional (NULL: no ob scratch): bytes of ob for a chunk. */
    size_t (*ob_bytes)(int64_t chunk);
} hs_qband_ops;

/* hs_quantize with the given band kernels; HS_ERR_UNSUPPORTED, touching nothing, for a call not
 * covered or malformed (the reference then reports it). */
hs_status hs_qband_quantize(const hs_qband_ops *ops, const hs_quant_spec *s, const float *x,
                            int64_t rows, int64_t cols, int64_t ld, int transpose, hs_packed *out);

/* The tables (avx512/quant_e2m1_avx512.c, avx2/quant_e2m1_avx2.c). */
extern const hs_qband_ops hs_qband_ops_avx512;
extern const hs_qband_ops hs_qband_ops_avx2;

#endif

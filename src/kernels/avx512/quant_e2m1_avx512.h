/* quant_e2m1_avx512.h (internal): the band kernels of the AVX-512 table of the E2M1 band
 * quantizer (kernels/quant_band.h), shared by the table (quant_e2m1_avx512.c) and the kernels
 * (quant_e2m1_avx512_ukernel.c, compiled by clang where available: see the Makefile). */
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
float hs_qk_band_finite_amax(const hs_qk *q, int64_t r0, int nb, int64_t cb, int64_t ce, float *t);

#endif

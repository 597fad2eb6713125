/* halfs/codec.h: scalar element and scale codecs (docs/FORMATS.md §1-3).
 *
 * These are the exact per-value rules every quantizer is built from. Encoders take a value
 * already divided by its scale; they saturate at the format's maximum (E2M1 ±6, E4M3 ±448,
 * INT4 ±7, INT8 ±127) except where the format has Inf. Stochastic rounding takes a uniform
 * number u in [0, 1) supplied by the caller (see halfs/rng.h), so results are reproducible.
 */
#ifndef HALFS_CODEC_H
#define HALFS_CODEC_H

#include <stdint.h>

#include "halfs/quant.h"

#ifdef __cplusplus
extern "C" {
#endif

/* E2M1: 4-bit code (bit 3 = sign). rounding: RNE, RNA, RTS, or SR with u in [0,1).
 * E2M1 has no NaN: a NaN element encodes as code 0x0, and quantizers mark a group holding
 * NaN/Inf through its scale instead (E8M0 0xFF, UE4M3 0x7F), which decodes to NaN. */
uint8_t hs_e2m1_encode(float v, hs_rounding r, float u);
float hs_e2m1_decode(uint8_t code);
/* The doubled E2M1 magnitudes {0,1,2,3,4,6,8,12}, signed, indexed by code: value·2 exactly. */
extern const int8_t hs_e2m1_doubled[16];

uint8_t hs_e4m3_encode(float v, hs_rounding r, float u); /* saturating; NaN -> 0x7F */
float hs_e4m3_decode(uint8_t code);
uint8_t hs_e5m2_encode(float v, hs_rounding r, float u); /* IEEE-like: overflow -> Inf with RNE */
float hs_e5m2_decode(uint8_t code);
int8_t hs_int4_encode(float v, hs_rounding r, float u); /* −7..7 */
int8_t hs_int8_encode(float v, hs_rounding r, float u); /* −127..127 */
uint16_t hs_bf16_encode(float v);                        /* RNE; NaN stays NaN (quiet) */
float hs_bf16_decode(uint16_t b);

/* E8M0 scale: byte e is 2^(e−127); 0xFF is NaN. */
float hs_e8m0_decode(uint8_t e);
/* UE4M3 scale (unsigned E4M3), RNE, clamped to [2^-9, 448]; NaN -> 0x7F. */
uint8_t hs_ue4m3_encode(float v);
float hs_ue4m3_decode(uint8_t code);

/* floor(log2 |a|) for finite nonzero a, read from the float's bits (subnormals handled). */
int hs_floor_log2(float a);
/* ceil(log2 |a|) for finite nonzero a, exact. */
int hs_ceil_log2(float a);

#ifdef __cplusplus
}
#endif
#endif

/* scale_rules.h (internal): one group's scale decision and element encoding, shared by the
 * reference quantizer (quantize_ref.c) and, so that they agree byte for byte, by the SIMD
 * quantizers of src/kernels/ (-Isrc).
 *
 * The contract (docs/FORMATS.md "Arithmetic of the reference quantizer"):
 *  - A group is a span of n floats in its canonical order (along the row for 1D groups; for a
 *    16×16 tile, row-major over the *source* matrix x; for a whole tensor, row-major over the
 *    packed matrix), already RHT-rotated.
 *  - hs_scale_choose returns the stored scale and two float multipliers: elements are encoded as
 *    code = elem(x · enc_mul) (with SR pre-scale: elem(fl(x · enc_mul) · 0.75f)), and decode as
 *    x̂ = fl(q · dec_mul) (with SR pre-scale then · HS_SR_UNSCALE).
 *  - Rules that compare candidates (halfs, mse, 4over6) measure each candidate's group squared
 *    error with RNE and hs_group_sse's exact summation order, whatever the spec's rounding.
 */
#ifndef HALFS_CORE_SCALE_RULES_H
#define HALFS_CORE_SCALE_RULES_H

#include <stdint.h>

#include "halfs/quant.h"

typedef struct hs_group_scale {
    uint32_t stored;  /* E8M0 byte, UE4M3 byte, or the FP32 scale's bits */
    float enc_mul;    /* elements are encoded from x · enc_mul */
    float dec_mul;    /* and decode to q · dec_mul */
    int halved;       /* 1 if the scale is below the `ceil` (E8M0) / `max` (continuous) scale */
    int nonfinite;    /* the group holds NaN/Inf: NaN scale, all codes 0 */
} hs_group_scale;

/* NVFP4 tensor scale s_enc (docs/FORMATS.md §7) from the amax over the tensor's finite values:
 * 6·448/amax (6·256/amax with 4over6), 1 if amax = 0, at most 2^117 so s_enc/s_b stays finite. */
float hs_two_level_senc(const hs_quant_spec *s, float amax_finite);

/* Choose the scale of one group v[0..n) (n >= 1) by s->rule. s_enc: the tensor scale of a
 * two-level spec (ignored otherwise). */
hs_group_scale hs_scale_choose(const hs_quant_spec *s, const float *v, int64_t n, float s_enc);

/* Multipliers of a stored scale when decoding (dec) — the same floats hs_scale_choose returns.
 * tensor_scale: s_enc for UE4M3. Returns NaN for a NaN scale. */
float hs_scale_dec_mul(hs_scale_fmt f, uint32_t stored, float tensor_scale);

/* Encode one scaled element z (saturating at the element's max) with rounding r and uniform u;
 * returns the code: E2M1/INT4 a nibble (INT4 two's complement), 8-bit formats a byte. */
uint8_t hs_elem_encode(hs_elem e, float z, hs_rounding r, float u);
/* The value of an element code (E2M1, E4M3, E5M2, INT4, INT8). */
float hs_elem_value(hs_elem e, uint8_t code);

/* Σ (v_i − x̂_i)² of the group in double, x̂_i = fl(RNE(v_i·enc_mul) · dec_mul); each term is
 * exact; summed in 8 lanes (term i into lane i mod 8, in increasing i), lanes combined as
 * ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)). */
double hs_group_sse(hs_elem e, const float *v, int64_t n, float enc_mul, float dec_mul);

/* max |v_i|, NaN if any v_i is NaN (Inf if any is infinite and none NaN). */
float hs_group_amax(const float *v, int64_t n);

#endif

/* quant_common.h (internal): the scalar definitions that the reference quantizer (core/) and the
 * SIMD quantizers (src/kernels/, -Isrc) share, defined once: the packed layout (code stride,
 * groups per row), the E8M0 exponent range, and the E8M0 rules decided by a group's amax.
 * The arithmetic is docs/FORMATS.md's ("Arithmetic of the reference quantizer").
 */
#ifndef HALFS_CORE_QUANT_COMMON_H
#define HALFS_CORE_QUANT_COMMON_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/formats_table.h"
#include "core/scale_rules.h"
#include "halfs/codec.h"
#include "halfs/quant.h"

/* The smallest E8M0 exponent (stored byte 0: 2^-127); every rule clamps to it. */
#define HS_E8M0_EMIN (-127)

/* Bytes between rows of codes of a packed row of `cols` elements of `bits` bits: the row's
 * bytes rounded up to a multiple of 64 (halfs/quant.h, hs_packed). */
static inline int64_t hs_code_stride_bits(int bits, int64_t cols) {
    int64_t bytes = (cols * bits + 7) / 8;
    return (bytes + 63) / 64 * 64;
}
/* The same for the elements of spec s. */
static inline int64_t hs_code_stride(const hs_quant_spec *s, int64_t cols) {
    return hs_code_stride_bits(hs_elem_info(s->elem)->bits, cols);
}

/* Scale groups per packed row of `cols` elements: ceil(cols / block) for blocks, 1 for one
 * scale per row or per tensor, 0 without scales. */
static inline int64_t hs_groups_per_row(const hs_quant_spec *s, int64_t cols) {
    if (s->scale_fmt == HS_SCALE_NONE) return 0;
    return s->group == HS_GROUP_BLOCK ? (cols + s->block - 1) / s->block : 1;
}

/* The E8M0 exponent that rule r gives a group of amax a (finite, > 0) of elements ed, for the
 * rules decided by the amax alone: ocp floor(log2 a) − emax; rceil the smallest e with
 * a ≤ max·2^e; even floor − emax, plus one if a's significand rounded to the element's
 * mantissa width carries (≥ 2 − 2^−(mbits+1)); half ceil − 1; ceil, and every other rule,
 * ceil(log2 a) − emax. Exponents come from the float's bits (hs_floor_log2, hs_ceil_log2) and
 * significands from exact ldexpf. *e_ceil receives ceil's exponent clamped to HS_E8M0_EMIN (the
 * scale below which a group counts as halved); the result is not clamped. */
static inline int hs_e8m0_rule_exp(const hs_elem_desc *ed, hs_rule r, float a, int *e_ceil) {
    const int emax = ed->emax, f = hs_floor_log2(a);
    int ec = hs_ceil_log2(a) - emax;
    if (ec < HS_E8M0_EMIN) ec = HS_E8M0_EMIN;
    *e_ceil = ec;
    switch (r) {
    case HS_RULE_OCP: return f - emax;
    case HS_RULE_RCEIL:
        /* max = msig·2^emax with msig in [1, 2): one more than floor − emax iff a's
         * significand exceeds msig */
        return f - emax + (ldexpf(a, -f) > ldexpf(ed->max, -emax) ? 1 : 0);
    case HS_RULE_EVEN: return f - emax + (ldexpf(a, -f) >= 2.0f - ldexpf(1.0f, -(ed->mbits + 1)) ? 1 : 0);
    case HS_RULE_HALF: return ec - 1;
    default: return ec;
    }
}

/* The group scale of E8M0 exponent e, clamped to HS_E8M0_EMIN first (e > 127 is the NaN scale
 * 0xFF: nonfinite, codes 0); halved when e < e_ceil. The multipliers are exact powers of two
 * built from their bits (2^-127 is subnormal), so x·enc_mul == x / 2^e. */
static inline hs_group_scale hs_e8m0_scale(int e, int e_ceil) {
    hs_group_scale g = {0};
    if (e < HS_E8M0_EMIN) e = HS_E8M0_EMIN;
    if (e > 127) {
        g.stored = 0xFF;
        g.nonfinite = 1;
        g.dec_mul = NAN;
        return g;
    }
    uint32_t enc = e <= 126 ? (uint32_t)(127 - e) << 23 : 0x00400000u;
    uint32_t dec = e >= -126 ? (uint32_t)(e + 127) << 23 : 0x00400000u;
    g.stored = (uint32_t)(e + 127);
    memcpy(&g.enc_mul, &enc, 4);
    memcpy(&g.dec_mul, &dec, 4);
    g.halved = e < e_ceil;
    return g;
}

#endif

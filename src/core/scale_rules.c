/* scale_rules.c: the scale rules of docs/FORMATS.md §6 (E8M0, FP32) and §7 (UE4M3 two-level) for
 * one group, and the element encode/decode and error measure they are built on.
 *
 * Everything here is a pure function of (spec, group values, tensor scale), written as plainly
 * as possible because the SIMD quantizers must reproduce it byte for byte (scale_rules.h states
 * the arithmetic contract). Exponents come from the float's bits (hs_floor_log2/hs_ceil_log2),
 * never from log2f. Rules that compare candidates use the same element rounding (RNE) and the
 * same dequantization arithmetic as the final encode/decode, so "the lowest group squared error
 * among the candidates" holds for the values hs_dequantize returns.
 */
#include "scale_rules.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "formats_table.h"
#include "core/quant_common.h"
#include "halfs/codec.h"

static inline uint32_t f2u(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}
static inline float u2f(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* ---------------------------------------------------------------- elements */
uint8_t hs_elem_encode(hs_elem e, float z, hs_rounding r, float u) {
    switch (e) {
    case HS_ELEM_E2M1: return hs_e2m1_encode(z, r, u);
    case HS_ELEM_E4M3: return hs_e4m3_encode(z, r, u);
    case HS_ELEM_E5M2:
        /* Why clamp: a scaled element is quantized saturating (as in MX), even though the bare
         * E5M2 codec overflows to Inf like IEEE. */
        if (z > 57344.0f) z = 57344.0f;
        else if (z < -57344.0f) z = -57344.0f;
        return hs_e5m2_encode(z, r, u);
    case HS_ELEM_INT4: return (uint8_t)(hs_int4_encode(z, r, u) & 0xF);
    case HS_ELEM_INT8: return (uint8_t)hs_int8_encode(z, r, u);
    default: return 0;
    }
}

float hs_elem_value(hs_elem e, uint8_t code) {
    switch (e) {
    case HS_ELEM_E2M1: return hs_e2m1_decode(code);
    case HS_ELEM_E4M3: return hs_e4m3_decode(code);
    case HS_ELEM_E5M2: return hs_e5m2_decode(code);
    case HS_ELEM_INT4: return (float)((int)((code & 0xF) ^ 0x8) - 8); /* sign-extend the nibble */
    case HS_ELEM_INT8: return (float)(int8_t)code;
    default: return 0.0f;
    }
}

float hs_group_amax(const float *v, int64_t n) {
    float a = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        float t = fabsf(v[i]);
        if (isnan(t)) return NAN;
        if (t > a) a = t;
    }
    return a;
}

/* |E2M1_RNE(z)|: the decision points of hs_e2m1_encode (ties to the even code), as a value */
static inline float e2m1_rne_mag(float a) {
    static const float val[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
    return val[(a > 0.25f) + (a >= 0.75f) + (a > 1.25f) + (a >= 1.75f) + (a > 2.5f) +
               (a >= 3.5f) + (a > 5.0f)];
}

double hs_group_sse(hs_elem e, const float *v, int64_t n, float enc_mul, float dec_mul) {
    double l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    if (e == HS_ELEM_E2M1) { /* the common case, without the per-element dispatch */
        for (int64_t i = 0; i < n; i++) {
            float xh = copysignf(e2m1_rne_mag(fabsf(v[i] * enc_mul)), v[i]) * dec_mul;
            double d = (double)v[i] - (double)xh;
            l[i & 7] += d * d;
        }
        return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
    }
    for (int64_t i = 0; i < n; i++) {
        float q = hs_elem_value(e, hs_elem_encode(e, v[i] * enc_mul, HS_ROUND_RNE, 0.0f));
        float xh = q * dec_mul;
        /* exact: both are floats within a few binades of each other (or xh = 0), and the
         * difference of two floats squared fits a double's 53 bits (docs/FORMATS.md) */
        double d = (double)v[i] - (double)xh;
        l[i & 7] += d * d;
    }
    return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
}

/* Σ v_i² in the same lane order (for halfs-sigma's RMS). */
static double group_sumsq(const float *v, int64_t n) {
    double l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t i = 0; i < n; i++) {
        double d = (double)v[i];
        l[i & 7] += d * d;
    }
    return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
}

/* ---------------------------------------------------------------- E8M0 */
static double e8m0_sse(hs_elem el, const float *v, int64_t n, int e) {
    hs_group_scale g = hs_e8m0_scale(e, e);
    return hs_group_sse(el, v, n, g.enc_mul, g.dec_mul);
}

static hs_group_scale choose_e8m0(const hs_quant_spec *s, const float *v, int64_t n, float a) {
    if (a == 0.0f) /* all zero: the smallest scale, zero codes */
        return hs_e8m0_scale(HS_E8M0_EMIN, HS_E8M0_EMIN);
    int e_ceil;
    int e = hs_e8m0_rule_exp(hs_elem_info(s->elem), s->rule, a, &e_ceil);
    switch (s->rule) {
    case HS_RULE_HALFS: {
        e = e_ceil;
        if (e_ceil - 1 >= HS_E8M0_EMIN &&
            e8m0_sse(s->elem, v, n, e_ceil - 1) < e8m0_sse(s->elem, v, n, e_ceil))
            e = e_ceil - 1; /* strictly lower squared error only */
        break;
    }
    case HS_RULE_HALFS_SIGMA: {
        /* closed-form Half-S: halve iff the Laplace-optimal clip c·σ is closer to a/2 than to a */
        const double c = 4.147;
        double sigma = sqrt(group_sumsq(v, n) / (double)n);
        double cs = c * sigma, ad = (double)a;
        e = fabs(0.5 * ad - cs) < fabs(ad - cs) ? e_ceil - 1 : e_ceil;
        break;
    }
    case HS_RULE_MSE: {
        e = e_ceil;
        double best = e8m0_sse(s->elem, v, n, e_ceil);
        for (int k = 1; k <= 3; k++) {
            int ek = e_ceil - k;
            if (ek < HS_E8M0_EMIN) break; /* clamped candidates repeat the last one */
            double sse = e8m0_sse(s->elem, v, n, ek);
            if (sse < best) { /* ties keep the larger scale */
                best = sse;
                e = ek;
            }
        }
        break;
    }
    default: break; /* decided by the amax alone (hs_e8m0_rule_exp) */
    }
    return hs_e8m0_scale(e, e_ceil);
}

/* ---------------------------------------------------------------- continuous scales */
float hs_two_level_senc(const hs_quant_spec *s, float amax_finite) {
    if (!(amax_finite > 0.0f)) return 1.0f;
    /* 6·448 (6·256 with 4over6, so the ×1.5 candidate never exceeds E4M3's 448) */
    const float num = s->rule == HS_RULE_4OVER6 ? 1536.0f : 2688.0f;
    float senc = num / amax_finite;
    if (!(senc <= 0x1p117f)) senc = 0x1p117f; /* keeps s_enc / s_b (s_b >= 2^-9) finite */
    return senc;
}

/* A candidate that maps the target amax t to T (X = t/T), in the spec's scale format. */
static hs_group_scale cont_scale(const hs_quant_spec *s, float t, float T, float s_enc) {
    hs_group_scale g = {0};
    float X = t / T;
    if (s->scale_fmt == HS_SCALE_UE4M3) {
        uint8_t c = hs_ue4m3_encode(X * s_enc);
        float sb = hs_ue4m3_decode(c);
        g.stored = c;
        g.enc_mul = s_enc / sb;
        g.dec_mul = sb / s_enc;
    } else {
        /* Why clamp: a scale below FLT_MIN has no finite float reciprocal (and an all-zero group
         * needs some scale); like E8M0's 2^-127 floor, tiny groups then quantize coarsely. */
        if (!(X >= FLT_MIN)) X = FLT_MIN;
        g.stored = f2u(X);
        g.enc_mul = 1.0f / X;
        g.dec_mul = X;
    }
    return g;
}

static double cont_sse(const hs_quant_spec *s, const float *v, int64_t n, hs_group_scale g) {
    return hs_group_sse(s->elem, v, n, g.enc_mul, g.dec_mul);
}

static hs_group_scale choose_cont(const hs_quant_spec *s, const float *v, int64_t n, float a,
                                  float s_enc) {
    const float mx = hs_elem_info(s->elem)->max;
    const hs_group_scale gmax = cont_scale(s, a, mx, s_enc);
    hs_group_scale g = gmax;
    switch (s->rule) {
    case HS_RULE_MAX: break;
    case HS_RULE_HALF: g = cont_scale(s, a, 2.0f * mx, s_enc); break;
    case HS_RULE_HALFS: {
        hs_group_scale h = cont_scale(s, a, 2.0f * mx, s_enc);
        if (h.stored != gmax.stored && cont_sse(s, v, n, h) < cont_sse(s, v, n, gmax)) g = h;
        break;
    }
    case HS_RULE_4OVER6: {
        /* Four-over-Six: map the block max to 4 instead of 6 (block scale ×1.5) only if the
         * block's squared error is strictly lower. */
        hs_group_scale f4 = cont_scale(s, a, 4.0f, s_enc);
        if (f4.stored != gmax.stored && cont_sse(s, v, n, f4) < cont_sse(s, v, n, gmax)) g = f4;
        break;
    }
    case HS_RULE_MSE: {
        /* clip grid r = 1.00, 0.99, ..., 0.30 (71 ratios, r = fl((30+k)/100)); the clip
         * t = fl(r·a) maps to the element max; largest scale first, so ties keep it */
        double best = cont_sse(s, v, n, gmax);
        uint32_t prev = gmax.stored;
        for (int k = 69; k >= 0; k--) {
            float r = (float)(30 + k) / 100.0f;
            hs_group_scale c = cont_scale(s, r * a, mx, s_enc);
            if (c.stored == prev) continue; /* same scale as the previous candidate */
            prev = c.stored;
            double sse = cont_sse(s, v, n, c);
            if (sse < best) {
                best = sse;
                g = c;
            }
        }
        break;
    }
    default: break;
    }
    g.halved = g.dec_mul < gmax.dec_mul;
    return g;
}

hs_group_scale hs_scale_choose(const hs_quant_spec *s, const float *v, int64_t n, float s_enc) {
    float a = hs_group_amax(v, n);
    if (!isfinite(a)) {
        /* NaN/Inf in the group: NaN scale, codes 0, every element dequantizes to NaN */
        hs_group_scale g = {0};
        g.nonfinite = 1;
        g.enc_mul = 0.0f;
        g.dec_mul = NAN;
        g.stored = s->scale_fmt == HS_SCALE_E8M0    ? 0xFFu
                   : s->scale_fmt == HS_SCALE_UE4M3 ? 0x7Fu
                                                    : f2u(NAN);
        return g;
    }
    if (s->scale_fmt == HS_SCALE_E8M0) return choose_e8m0(s, v, n, a);
    return choose_cont(s, v, n, a, s_enc);
}

float hs_scale_dec_mul(hs_scale_fmt f, uint32_t stored, float tensor_scale) {
    switch (f) {
    case HS_SCALE_E8M0: return hs_e8m0_decode((uint8_t)stored);
    case HS_SCALE_UE4M3: return hs_ue4m3_decode((uint8_t)stored) / tensor_scale;
    case HS_SCALE_FP32: return u2f(stored);
    default: return 1.0f;
    }
}

/* codec.c: the scalar element and scale codecs of halfs/codec.h (docs/FORMATS.md §1-3).
 *
 * Every quantizer in halfs is built from these per-value rules, so they are written to be
 * exact: no libm logarithms, no division except by powers of two, decisions taken by comparing
 * against exactly representable tie points. Small floating formats (E4M3, E5M2, UE4M3) share one
 * generic "round to a (mbits, emin) grid" routine; E2M1 uses its explicit 8-point grid.
 *
 * Rounding modes (halfs/quant.h): RNE ties to the even code, RNA ties away from zero, RTS ties to
 * the smaller magnitude, SR rounds up with probability equal to the distance from the lower grid
 * point over the grid step, using the caller's u in [0, 1) (round up iff u < p), so E[q] = v up
 * to the 2^-24 resolution of u.
 */
#include "halfs/codec.h"

#include <math.h>
#include <string.h>

/* ---- float bit helpers ---- */
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

int hs_floor_log2(float a) {
    uint32_t u = f2u(a) & 0x7FFFFFFFu;
    uint32_t ex = u >> 23, man = u & 0x7FFFFFu;
    if (ex == 0xFF) return 128;   /* Inf/NaN: above every finite exponent (documented) */
    if (ex != 0) return (int)ex - 127;
    if (man == 0) return -150;    /* zero: below every float (documented) */
    /* subnormal: value = man · 2^-149 */
    return (31 - __builtin_clz(man)) - 149;
}

int hs_ceil_log2(float a) {
    uint32_t u = f2u(a) & 0x7FFFFFFFu;
    uint32_t ex = u >> 23, man = u & 0x7FFFFFu;
    int f = hs_floor_log2(a);
    if (ex == 0xFF || u == 0) return f;
    int pow2 = ex != 0 ? man == 0 : (man & (man - 1)) == 0;
    return pow2 ? f : f + 1;
}

/* Round a non-negative magnitude r = n + frac (n integer part, frac in [0,1)) to an integer with
 * mode rm. `n_odd` tells RNE which neighbour is even. */
static inline int round_up_decision(float frac, int n_odd, hs_rounding rm, float u) {
    switch (rm) {
    case HS_ROUND_RNE: return frac > 0.5f || (frac == 0.5f && n_odd);
    case HS_ROUND_RNA: return frac >= 0.5f;
    case HS_ROUND_RTS: return frac > 0.5f;
    case HS_ROUND_SR: return u < frac;
    default: return frac > 0.5f || (frac == 0.5f && n_odd);
    }
}

/* ---- E2M1 ---- */
static const float e2m1_values[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};

const int8_t hs_e2m1_doubled[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

uint8_t hs_e2m1_encode(float v, hs_rounding r, float u) {
    if (isnan(v)) return 0x0; /* E2M1 has no NaN: the group's scale carries it */
    uint8_t sign = signbit(v) ? 0x8 : 0x0;
    float a = fabsf(v);
    if (a >= 6.0f) return sign | 0x7; /* saturate (also Inf); SR cannot be unbiased here */
    /* Nearest: count the decision points 0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5 (all exact floats)
     * that a is past. At a tie RNA goes up, RTS stays, and RNE goes to the even code: up at
     * 0.75, 1.75 and 3.5 (to codes 2, 4, 6), down at 0.25, 1.25, 2.5 and 5. */
    if (r == HS_ROUND_RNE)
        return sign | (uint8_t)((a > 0.25f) + (a >= 0.75f) + (a > 1.25f) + (a >= 1.75f) +
                                (a > 2.5f) + (a >= 3.5f) + (a > 5.0f));
    if (r == HS_ROUND_RNA)
        return sign | (uint8_t)((a >= 0.25f) + (a >= 0.75f) + (a >= 1.25f) + (a >= 1.75f) +
                                (a >= 2.5f) + (a >= 3.5f) + (a >= 5.0f));
    if (r == HS_ROUND_RTS)
        return sign | (uint8_t)((a > 0.25f) + (a > 0.75f) + (a > 1.25f) + (a > 1.75f) +
                                (a > 2.5f) + (a > 3.5f) + (a > 5.0f));
    /* SR: k = largest code with value <= a (a < 6, so k <= 6) */
    int k = (a >= 0.5f) + (a >= 1.0f) + (a >= 1.5f) + (a >= 2.0f) + (a >= 3.0f) + (a >= 4.0f);
    float lo = e2m1_values[k], hi = e2m1_values[k + 1];
    float d = a - lo;      /* exact: a and lo share a binade or lo = 0 */
    float step = hi - lo;  /* a power of two: 0.5, 1 or 2 */
    float frac = d / step; /* exact division by a power of two */
    int up = round_up_decision(frac, k & 1, r, u);
    return sign | (uint8_t)(k + up);
}

float hs_e2m1_decode(uint8_t code) {
    float m = e2m1_values[code & 0x7];
    return (code & 0x8) ? -m : m;
}

/* ---- generic small float: magnitude code on a grid with `mbits` mantissa bits and minimum
 * normal exponent `emin` (subnormals below). Returns the unsigned code ((E − emin) << mbits) + n,
 * where n ∈ [0, 2^(mbits+1)] is the rounded significand in units of the quantum; the formula is
 * continuous across the subnormal/normal boundary and across binades (n = 2^(mbits+1) carries
 * into the next exponent). `a` must be finite and >= 0 and small enough not to overflow int. */
static uint32_t minifloat_code(float a, int mbits, int emin, hs_rounding rm, float u) {
    if (a == 0.0f) return 0;
    int e = hs_floor_log2(a);
    if (e < emin) e = emin;
    float r = ldexpf(a, mbits - e); /* a / quantum, exact: power-of-two scaling into [0, 2^(m+1)) */
    float n = floorf(r);
    float frac = r - n; /* exact: r < 2^24 */
    int ni = (int)n;
    ni += round_up_decision(frac, ni & 1, rm, u);
    return ((uint32_t)(e - emin) << mbits) + (uint32_t)ni;
}

/* value of an unsigned minifloat code */
static float minifloat_value(uint32_t code, int mbits, int emin) {
    uint32_t ef = code >> mbits, man = code & ((1u << mbits) - 1);
    if (ef == 0) return ldexpf((float)man, emin - mbits);
    return ldexpf((float)((1u << mbits) | man), (int)ef - 1 + emin - mbits);
}

/* ---- E4M3 (OCP FP8 "E4M3FN"): bias 7, emin −6, max 448 = S.1111.110, NaN = S.1111.111 ---- */
uint8_t hs_e4m3_encode(float v, hs_rounding r, float u) {
    if (isnan(v)) return 0x7F;
    uint8_t sign = signbit(v) ? 0x80 : 0x00;
    float a = fabsf(v);
    if (a >= 448.0f) return sign | 0x7E; /* saturating (Inf too): E4M3 has no Inf */
    uint32_t c = minifloat_code(a, 3, -6, r, u);
    if (c > 0x7E) c = 0x7E; /* rounding up past 448 (values in (448, 464)) saturates */
    return sign | (uint8_t)c;
}

float hs_e4m3_decode(uint8_t code) {
    uint32_t m = code & 0x7F;
    if (m == 0x7F) return NAN;
    float v = minifloat_value(m, 3, -6);
    return (code & 0x80) ? -v : v;
}

/* ---- E5M2: bias 15, emin −14, max 57344 = S.11110.11, Inf S.11111.00, NaN S.11111.xx ---- */
uint8_t hs_e5m2_encode(float v, hs_rounding r, float u) {
    if (isnan(v)) return 0x7F;
    uint8_t sign = signbit(v) ? 0x80 : 0x00;
    float a = fabsf(v);
    if (isinf(a)) return sign | 0x7C;
    if (a >= 65536.0f) {
        /* at or beyond 2^16 every nearest mode overflows; SR saturates (documented) */
        return sign | (r == HS_ROUND_SR ? 0x7B : 0x7C);
    }
    uint32_t c = minifloat_code(a, 2, -14, r, u);
    if (c >= 0x7C && r == HS_ROUND_SR) c = 0x7B; /* SR never produces Inf */
    if (c > 0x7C) c = 0x7C;
    return sign | (uint8_t)c;
}

float hs_e5m2_decode(uint8_t code) {
    uint32_t m = code & 0x7F;
    float v;
    if (m == 0x7C) v = INFINITY;
    else if (m > 0x7C) return NAN;
    else v = minifloat_value(m, 2, -14);
    return (code & 0x80) ? -v : v;
}

/* ---- symmetric integers ---- */
static int int_encode(float v, int maxi, hs_rounding r, float u) {
    if (isnan(v)) return 0;
    int neg = signbit(v) != 0;
    float a = fabsf(v);
    if (a >= (float)maxi) return neg ? -maxi : maxi;
    float n = floorf(a);
    float frac = a - n; /* exact: a < 2^7 */
    int ni = (int)n + round_up_decision(frac, (int)n & 1, r, u);
    if (ni > maxi) ni = maxi;
    return neg ? -ni : ni;
}

int8_t hs_int4_encode(float v, hs_rounding r, float u) { return (int8_t)int_encode(v, 7, r, u); }
int8_t hs_int8_encode(float v, hs_rounding r, float u) { return (int8_t)int_encode(v, 127, r, u); }

/* ---- BF16 ---- */
uint16_t hs_bf16_encode(float v) {
    uint32_t x = f2u(v);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((x >> 16) | 0x0040u); /* quiet NaN */
    /* RNE on the low 16 bits; a carry into the exponent is the correct rounding (up to Inf) */
    uint32_t bias = 0x7FFFu + ((x >> 16) & 1u);
    return (uint16_t)((x + bias) >> 16);
}

float hs_bf16_decode(uint16_t b) { return u2f((uint32_t)b << 16); }

/* ---- E8M0 ---- */
float hs_e8m0_decode(uint8_t e) {
    if (e == 0xFF) return NAN;
    return ldexpf(1.0f, (int)e - 127); /* 2^-127 is a float subnormal: exact */
}

/* ---- UE4M3: the magnitude half of E4M3 (bit 7 is not part of the format) ---- */
uint8_t hs_ue4m3_encode(float v) {
    if (isnan(v)) return 0x7F;
    /* Clamp to [2^-9, 448] (docs/FORMATS.md §3): zero, negatives and values that RNE would flush to
     * zero all become the smallest subnormal 0x01; Inf and overflow become 448 (0x7E). */
    if (!(v > 0x1p-9f)) return 0x01;
    if (v >= 448.0f) return 0x7E;
    uint32_t c = minifloat_code(v, 3, -6, HS_ROUND_RNE, 0.0f);
    if (c > 0x7E) c = 0x7E;
    if (c < 0x01) c = 0x01;
    return (uint8_t)c;
}

float hs_ue4m3_decode(uint8_t code) {
    /* Codes with bit 7 set are not UE4M3 values (an encoder never writes them): NaN. 0x7F is the
     * NaN scale of a non-finite group; 0x00 decodes to 0 though the encoder clamps to 0x01. */
    if (code >= 0x7F) return NAN;
    return minifloat_value(code, 3, -6);
}

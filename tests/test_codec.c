/* test_codec.c: exhaustive tests of the scalar codecs (halfs/codec.h, docs/FORMATS.md §1-3) and of
 * the counter-based RNG (halfs/rng.h).
 *
 * Where a format is small (E2M1, E4M3, E5M2, UE4M3, E8M0, BF16) every code is decoded and
 * re-encoded; rounding is checked against a brute-force nearest-point search over the decoded
 * grid, and every E2M1 tie point of docs/FORMATS.md §2 is listed explicitly. Failures print codes
 * in hex.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "halfs/codec.h"
#include "halfs/rng.h"

static uint32_t f2u(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static float u2f(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* A deterministic stream of awkward floats: random bit patterns (all exponents) mixed with
 * values uniform in [-lim, lim]. */
static float test_float(uint64_t i, float lim) {
    uint64_t b = hs_rng_bits(1234, 99, i);
    if (b & 1) return u2f((uint32_t)(b >> 32));
    return (hs_rng_uniform(1234, 98, i) * 2.0f - 1.0f) * lim;
}

/* ---------------------------------------------------------------- E2M1 */
static void e2m1_all_codes(void **state) {
    (void)state;
    static const float want[16] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6, -0.0f, -0.5f, -1, -1.5f, -2, -3, -4, -6};
    for (int c = 0; c < 16; c++) {
        float v = hs_e2m1_decode((uint8_t)c);
        if (f2u(v) != f2u(want[c])) fail_msg("decode 0x%X = %a, want %a", c, v, want[c]);
        assert_int_equal(hs_e2m1_doubled[c], (int)(want[c] * 2));
        for (int r = 0; r < HS_ROUND_COUNT; r++) {
            uint8_t back = hs_e2m1_encode(v, (hs_rounding)r, 0.999f);
            if (back != c) fail_msg("re-encode 0x%X with rounding %d gave 0x%X", c, r, back);
        }
    }
}

static void e2m1_tie_points(void **state) {
    (void)state;
    /* x, RNE, RNA (away), RTS (to smaller) codes of the magnitude: docs/FORMATS.md §2 */
    static const struct { float x; int rne, rna, rts; } t[] = {
        {0.25f, 0, 1, 0}, {0.75f, 2, 2, 1}, {1.25f, 2, 3, 2}, {1.75f, 4, 4, 3},
        {2.5f, 4, 5, 4},  {3.5f, 6, 6, 5},  {5.0f, 6, 7, 6},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        for (int s = 0; s < 2; s++) {
            float x = s ? -t[i].x : t[i].x;
            int sg = s ? 8 : 0;
            uint8_t a = hs_e2m1_encode(x, HS_ROUND_RNE, 0), b = hs_e2m1_encode(x, HS_ROUND_RNA, 0),
                    c = hs_e2m1_encode(x, HS_ROUND_RTS, 0);
            if (a != (sg | t[i].rne) || b != (sg | t[i].rna) || c != (sg | t[i].rts))
                fail_msg("tie %g: rne 0x%X rna 0x%X rts 0x%X", x, a, b, c);
            /* just off the tie every nearest mode agrees */
            float lo = nextafterf(x, 0.0f), hi = nextafterf(x, s ? -INFINITY : INFINITY);
            for (int r = 0; r < 3; r++) {
                assert_int_equal(hs_e2m1_encode(lo, (hs_rounding)r, 0), sg | t[i].rts);
                assert_int_equal(hs_e2m1_encode(hi, (hs_rounding)r, 0), sg | t[i].rna);
            }
        }
    }
    /* explicitly the documented ones */
    assert_int_equal(hs_e2m1_decode(hs_e2m1_encode(0.25f, HS_ROUND_RNE, 0)), 0.0f);
    assert_true(hs_e2m1_decode(hs_e2m1_encode(0.75f, HS_ROUND_RNE, 0)) == 1.0f);
    assert_true(hs_e2m1_decode(hs_e2m1_encode(1.25f, HS_ROUND_RNE, 0)) == 1.0f);
    assert_true(hs_e2m1_decode(hs_e2m1_encode(1.75f, HS_ROUND_RNE, 0)) == 2.0f);
    assert_true(hs_e2m1_decode(hs_e2m1_encode(2.5f, HS_ROUND_RNE, 0)) == 2.0f);
    assert_true(hs_e2m1_decode(hs_e2m1_encode(3.5f, HS_ROUND_RNE, 0)) == 4.0f);
    assert_true(hs_e2m1_decode(hs_e2m1_encode(5.0f, HS_ROUND_RNE, 0)) == 4.0f);
}

static void e2m1_saturation_zero_nan(void **state) {
    (void)state;
    const float big[] = {6.0f, nextafterf(6.0f, 7), 6.5f, 7.0f, 1e30f, INFINITY};
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++)
        for (int r = 0; r < HS_ROUND_COUNT; r++) {
            assert_int_equal(hs_e2m1_encode(big[i], (hs_rounding)r, 0.0f), 0x7);
            assert_int_equal(hs_e2m1_encode(-big[i], (hs_rounding)r, 0.0f), 0xF);
        }
    assert_int_equal(hs_e2m1_encode(0.0f, HS_ROUND_RNE, 0), 0x0);
    assert_int_equal(hs_e2m1_encode(-0.0f, HS_ROUND_RNE, 0), 0x8); /* -0 kept */
    assert_int_equal(hs_e2m1_encode(-0.1f, HS_ROUND_RNE, 0), 0x8); /* small negative -> -0 */
    assert_int_equal(hs_e2m1_encode(-1e-45f, HS_ROUND_RNE, 0), 0x8);
    assert_int_equal(hs_e2m1_encode(NAN, HS_ROUND_RNE, 0), 0x0);
    assert_int_equal(hs_e2m1_encode(-NAN, HS_ROUND_SR, 0.5f), 0x0);
    assert_true(signbit(hs_e2m1_decode(0x8)));
}

/* brute force: nearest grid values to x (and how many there are) */
static void e2m1_nearest(float x, uint8_t *best, int *nbest) {
    double bd = INFINITY;
    *nbest = 0;
    for (int c = 0; c < 8; c++) {
        double d = fabs(fabs((double)x) - hs_e2m1_decode((uint8_t)c));
        if (d < bd) {
            bd = d;
            best[0] = (uint8_t)c;
            *nbest = 1;
        } else if (d == bd) {
            best[(*nbest)++] = (uint8_t)c;
        }
    }
}

static void e2m1_rne_is_nearest(void **state) {
    (void)state;
    for (uint64_t i = 0; i < 400000; i++) {
        float x = test_float(i, 8.0f);
        if (!isfinite(x)) continue; /* saturation of ±Inf is tested above */
        uint8_t c = hs_e2m1_encode(x, HS_ROUND_RNE, 0);
        assert_int_equal(c & 8, signbit(x) ? 8 : 0);
        uint8_t best[8];
        int nb = 0;
        uint8_t mag = c & 7;
        if (fabsf(x) < 6.0f) e2m1_nearest(x, best, &nb); /* at most 2 equidistant points */
        if (fabsf(x) >= 6.0f) {
            assert_int_equal(mag, 7);
        } else if (nb == 1) {
            if (mag != best[0]) fail_msg("x=%a: code 0x%X, nearest 0x%X", x, c, best[0]);
        } else {
            uint8_t even = (best[0] & 1) ? best[1] : best[0];
            if (mag != even) fail_msg("tie x=%a: code 0x%X, even 0x%X", x, c, even);
        }
    }
}

static void e2m1_sr(void **state) {
    (void)state;
    /* deterministic rule: up iff u < (x − lo)/(hi − lo) */
    assert_int_equal(hs_e2m1_encode(2.25f, HS_ROUND_SR, 0.2499f), 5); /* p = 0.25: up */
    assert_int_equal(hs_e2m1_encode(2.25f, HS_ROUND_SR, 0.25f), 4);
    assert_int_equal(hs_e2m1_encode(-5.5f, HS_ROUND_SR, 0.74f), 0xF); /* p = 0.75 */
    assert_int_equal(hs_e2m1_encode(-5.5f, HS_ROUND_SR, 0.75f), 0xE);
    assert_int_equal(hs_e2m1_encode(0.1f, HS_ROUND_SR, 0.0f), 1);
    assert_int_equal(hs_e2m1_encode(3.0f, HS_ROUND_SR, 0.0f), 5); /* grid points stay */
    /* unbiased: mean over N draws is within 5 standard errors of x */
    const float xs[] = {0.1f, 0.3f, 0.74f, 1.3f, 2.2f, 3.9f, 4.5f, 5.99f, -1.1f, -5.2f};
    const int N = 20000;
    for (size_t k = 0; k < sizeof xs / sizeof xs[0]; k++) {
        double s = 0, s2 = 0;
        for (int i = 0; i < N; i++) {
            float u = hs_rng_uniform(7, k, (uint64_t)i);
            double q = hs_e2m1_decode(hs_e2m1_encode(xs[k], HS_ROUND_SR, u));
            s += q;
            s2 += q * q;
        }
        double mean = s / N, var = s2 / N - mean * mean;
        double se = sqrt(var / N) + 1e-12;
        if (fabs(mean - xs[k]) > 5 * se) fail_msg("SR mean %g for x=%g (se %g)", mean, xs[k], se);
    }
}

/* ---------------------------------------------------------------- minifloats */
/* Independent decode: value of an 8-bit (sign, e, m) code by the textbook formula. */
static double mini_ref(int code, int ebits, int mbits, int bias) {
    int s = (code >> 7) & 1, e = (code >> mbits) & ((1 << ebits) - 1), m = code & ((1 << mbits) - 1);
    double v = e == 0 ? ldexp(m, 1 - bias - mbits) : ldexp((1 << mbits) + m, e - bias - mbits);
    return s ? -v : v;
}

static void e4m3_all_codes(void **state) {
    (void)state;
    for (int c = 0; c < 256; c++) {
        float v = hs_e4m3_decode((uint8_t)c);
        if ((c & 0x7F) == 0x7F) {
            assert_true(isnan(v));
            assert_int_equal(hs_e4m3_encode(v, HS_ROUND_RNE, 0), 0x7F);
            continue;
        }
        double want = mini_ref(c, 4, 3, 7);
        if ((double)v != want || (signbit(v) != 0) != (c >> 7)) fail_msg("e4m3 0x%02X = %a want %a", c, v, want);
        for (int r = 0; r < HS_ROUND_COUNT; r++) {
            uint8_t back = hs_e4m3_encode(v, (hs_rounding)r, 0.5f);
            if (back != c) fail_msg("e4m3 re-encode 0x%02X -> 0x%02X (r=%d)", c, back, r);
        }
    }
    assert_true(hs_e4m3_decode(0x7E) == 448.0f);
    assert_true(hs_e4m3_decode(0x01) == 0x1p-9f);
    assert_true(hs_e4m3_decode(0x08) == 0x1p-6f);
    assert_true(hs_e4m3_decode(0x38) == 1.0f);
    /* saturation (no Inf) */
    assert_int_equal(hs_e4m3_encode(449.0f, HS_ROUND_RNE, 0), 0x7E);
    assert_int_equal(hs_e4m3_encode(464.0f, HS_ROUND_RNE, 0), 0x7E);
    assert_int_equal(hs_e4m3_encode(1e9f, HS_ROUND_RNE, 0), 0x7E);
    assert_int_equal(hs_e4m3_encode(-INFINITY, HS_ROUND_RNE, 0), 0xFE);
    assert_int_equal(hs_e4m3_encode(NAN, HS_ROUND_RNE, 0), 0x7F);
    assert_int_equal(hs_e4m3_encode(-0.0f, HS_ROUND_RNE, 0), 0x80);
    /* below half the smallest subnormal: 0; the midpoint 2^-10 ties to even (0) */
    assert_int_equal(hs_e4m3_encode(0x1p-10f, HS_ROUND_RNE, 0), 0x00);
    assert_int_equal(hs_e4m3_encode(0x1.8p-9f, HS_ROUND_RNE, 0), 0x02); /* 1.5 ulp: tie to 2 */
    assert_int_equal(hs_e4m3_encode(0x1p-10f, HS_ROUND_RNA, 0), 0x01);
}

/* nearest-value check of an 8-bit float encoder against its own decoded grid */
static void check_mini_nearest(uint8_t (*enc)(float, hs_rounding, float), float (*dec)(uint8_t),
                               float maxv, int ieee_inf) {
    float grid[128];
    int ng = 0;
    for (int c = 0; c < 128; c++) {
        float v = dec((uint8_t)c);
        if (isfinite(v)) grid[ng++] = v;
    }
    for (uint64_t i = 0; i < 200000; i++) {
        float x = test_float(i, maxv * 1.2f);
        if (isnan(x)) continue;
        float a = fabsf(x);
        uint8_t c = enc(x, HS_ROUND_RNE, 0);
        assert_int_equal(c >> 7, signbit(x) ? 1 : 0);
        float q = fabsf(dec(c));
        if (a > maxv) {
            double half_ulp_over = maxv + (maxv - grid[ng - 2]) / 2.0;
            if (ieee_inf && a >= half_ulp_over) assert_true(isinf(q));
            else assert_true(q == maxv);
            continue;
        }
        double bd = INFINITY;
        for (int k = 0; k < ng; k++) bd = fmin(bd, fabs((double)a - grid[k]));
        double d = fabs((double)a - q);
        if (d != bd) fail_msg("x=%a: got %a (dist %g), best dist %g", x, q, d, bd);
        if (d == bd && d > 0) {
            /* a tie: the code must be even */
            double other = 2 * (double)a - q;
            int is_tie = 0;
            for (int k = 0; k < ng; k++) is_tie |= grid[k] == other;
            if (is_tie && (c & 1)) fail_msg("tie x=%a went to odd code 0x%02X", x, c);
        }
    }
}

static void e4m3_nearest(void **state) {
    (void)state;
    check_mini_nearest(hs_e4m3_encode, hs_e4m3_decode, 448.0f, 0);
}

static void e5m2_all_codes(void **state) {
    (void)state;
    for (int c = 0; c < 256; c++) {
        float v = hs_e5m2_decode((uint8_t)c);
        int m = c & 0x7F;
        if (m > 0x7C) {
            assert_true(isnan(v));
            continue;
        }
        if (m == 0x7C) {
            assert_true(isinf(v));
            assert_int_equal(signbit(v) != 0, c >> 7);
            assert_int_equal(hs_e5m2_encode(v, HS_ROUND_RNE, 0), c);
            continue;
        }
        double want = mini_ref(c, 5, 2, 15);
        if ((double)v != want) fail_msg("e5m2 0x%02X = %a want %a", c, v, want);
        for (int r = 0; r < HS_ROUND_COUNT; r++)
            assert_int_equal(hs_e5m2_encode(v, (hs_rounding)r, 0.5f), c);
    }
    assert_true(hs_e5m2_decode(0x7B) == 57344.0f);
    assert_int_equal(hs_e5m2_encode(61439.0f, HS_ROUND_RNE, 0), 0x7B);
    assert_int_equal(hs_e5m2_encode(61440.0f, HS_ROUND_RNE, 0), 0x7C); /* tie to even = Inf */
    assert_int_equal(hs_e5m2_encode(61440.0f, HS_ROUND_RTS, 0), 0x7B);
    assert_int_equal(hs_e5m2_encode(1e6f, HS_ROUND_RNE, 0), 0x7C);
    assert_int_equal(hs_e5m2_encode(1e6f, HS_ROUND_SR, 0.3f), 0x7B); /* SR saturates */
    assert_int_equal(hs_e5m2_encode(60000.0f, HS_ROUND_SR, 0.0f), 0x7B);
    assert_int_equal(hs_e5m2_encode(NAN, HS_ROUND_RNE, 0), 0x7F);
    check_mini_nearest(hs_e5m2_encode, hs_e5m2_decode, 57344.0f, 1);
}

static void ue4m3_all_codes(void **state) {
    (void)state;
    for (int c = 0; c < 256; c++) {
        float v = hs_ue4m3_decode((uint8_t)c);
        if (c >= 0x7F) {
            assert_true(isnan(v));
            continue;
        }
        assert_true(v == hs_e4m3_decode((uint8_t)c));
        uint8_t back = hs_ue4m3_encode(v);
        if (c == 0) assert_int_equal(back, 0x01); /* clamped to the smallest subnormal */
        else if (back != c) fail_msg("ue4m3 re-encode 0x%02X -> 0x%02X", c, back);
    }
    assert_int_equal(hs_ue4m3_encode(NAN), 0x7F);
    assert_int_equal(hs_ue4m3_encode(0.0f), 0x01);
    assert_int_equal(hs_ue4m3_encode(1e-20f), 0x01);
    assert_int_equal(hs_ue4m3_encode(-3.0f), 0x01);
    assert_int_equal(hs_ue4m3_encode(448.0f), 0x7E);
    assert_int_equal(hs_ue4m3_encode(1e10f), 0x7E);
    assert_int_equal(hs_ue4m3_encode(INFINITY), 0x7E);
    /* RNE ties between 1.0 (0x38) and 1.125 (0x39): 1.0625 -> 0x38; 1.1875 -> 0x3A */
    assert_int_equal(hs_ue4m3_encode(1.0625f), 0x38);
    assert_int_equal(hs_ue4m3_encode(1.1875f), 0x3A);
    /* random positive values: nearest with the clamp */
    for (uint64_t i = 0; i < 100000; i++) {
        float x = fabsf(test_float(i, 500.0f));
        if (isnan(x)) continue;
        uint8_t c = hs_ue4m3_encode(x);
        uint8_t e = x < 0x1p-9f ? 0x01 : hs_e4m3_encode(x, HS_ROUND_RNE, 0);
        if (e == 0) e = 0x01;
        if (c != e) fail_msg("ue4m3(%a) = 0x%02X, want 0x%02X", x, c, e);
    }
}

static void e8m0_all_codes(void **state) {
    (void)state;
    for (int e = 0; e < 256; e++) {
        float v = hs_e8m0_decode((uint8_t)e);
        if (e == 255) {
            assert_true(isnan(v));
            continue;
        }
        if ((double)v != ldexp(1.0, e - 127)) fail_msg("e8m0 0x%02X = %a", e, v);
        /* re-encode: the exponent read back from the bits */
        assert_int_equal(hs_floor_log2(v) + 127, e);
        assert_int_equal(hs_ceil_log2(v) + 127, e);
    }
}

static void log2_exact(void **state) {
    (void)state;
    for (int e = -149; e <= 127; e++) {
        float p = ldexpf(1.0f, e);
        assert_int_equal(hs_floor_log2(p), e);
        assert_int_equal(hs_ceil_log2(p), e);
        assert_int_equal(hs_floor_log2(-p), e);
        float up = nextafterf(p, INFINITY);
        if (isfinite(up) && up < 2 * p) {
            assert_int_equal(hs_floor_log2(up), e);
            assert_int_equal(hs_ceil_log2(up), e + 1);
        }
        float dn = nextafterf(p, 0.0f);
        if (dn > p / 2) {
            assert_int_equal(hs_floor_log2(dn), e - 1);
            assert_int_equal(hs_ceil_log2(dn), e);
        }
    }
    for (uint64_t i = 0; i < 100000; i++) {
        float x = fabsf(test_float(i, 1e6f));
        if (!isfinite(x) || x == 0) continue;
        int fe;
        double m = frexp((double)x, &fe); /* x = m·2^fe, m in [0.5, 1) */
        assert_int_equal(hs_floor_log2(x), fe - 1);
        assert_int_equal(hs_ceil_log2(x), m == 0.5 ? fe - 1 : fe);
    }
    assert_int_equal(hs_floor_log2(0.0f), -150);
}

/* ---------------------------------------------------------------- integers, bf16 */
static void ints(void **state) {
    (void)state;
    assert_int_equal(hs_int4_encode(0.5f, HS_ROUND_RNE, 0), 0);
    assert_int_equal(hs_int4_encode(1.5f, HS_ROUND_RNE, 0), 2);
    assert_int_equal(hs_int4_encode(2.5f, HS_ROUND_RNE, 0), 2);
    assert_int_equal(hs_int4_encode(-2.5f, HS_ROUND_RNE, 0), -2);
    assert_int_equal(hs_int4_encode(0.5f, HS_ROUND_RNA, 0), 1);
    assert_int_equal(hs_int4_encode(-2.5f, HS_ROUND_RNA, 0), -3);
    assert_int_equal(hs_int4_encode(1.5f, HS_ROUND_RTS, 0), 1);
    assert_int_equal(hs_int4_encode(6.6f, HS_ROUND_RNE, 0), 7);
    assert_int_equal(hs_int4_encode(8.0f, HS_ROUND_RNE, 0), 7);
    assert_int_equal(hs_int4_encode(-INFINITY, HS_ROUND_RNE, 0), -7);
    assert_int_equal(hs_int4_encode(NAN, HS_ROUND_RNE, 0), 0);
    assert_int_equal(hs_int4_encode(3.25f, HS_ROUND_SR, 0.2f), 4);
    assert_int_equal(hs_int4_encode(3.25f, HS_ROUND_SR, 0.3f), 3);
    assert_int_equal(hs_int8_encode(126.5f, HS_ROUND_RNE, 0), 126);
    assert_int_equal(hs_int8_encode(127.4f, HS_ROUND_RNE, 0), 127);
    assert_int_equal(hs_int8_encode(-1000.0f, HS_ROUND_RNE, 0), -127);
    for (uint64_t i = 0; i < 100000; i++) {
        float x = test_float(i, 140.0f);
        if (isnan(x)) continue;
        double r = nearbyint((double)x); /* default FE_TONEAREST: ties to even */
        r = fmax(-127, fmin(127, r));
        assert_int_equal(hs_int8_encode(x, HS_ROUND_RNE, 0), (int)r);
        assert_int_equal(hs_int4_encode(x, HS_ROUND_RNE, 0), (int)fmax(-7, fmin(7, r)));
    }
}

static void bf16(void **state) {
    (void)state;
    assert_int_equal(hs_bf16_encode(1.0f), 0x3F80);
    assert_int_equal(hs_bf16_encode(u2f(0x3F808000u)), 0x3F80); /* tie -> even */
    assert_int_equal(hs_bf16_encode(u2f(0x3F818000u)), 0x3F82); /* tie -> even (up) */
    assert_int_equal(hs_bf16_encode(u2f(0x3F808001u)), 0x3F81);
    assert_int_equal(hs_bf16_encode(-0.0f), 0x8000);
    assert_int_equal(hs_bf16_encode(INFINITY), 0x7F80);
    assert_int_equal(hs_bf16_encode(u2f(0x7F7FFFFFu)), 0x7F80); /* FLT_MAX rounds to Inf */
    assert_true(isnan(hs_bf16_decode(hs_bf16_encode(NAN))));
    assert_true(isnan(hs_bf16_decode(hs_bf16_encode(u2f(0x7F800001u))))); /* sNaN stays NaN */
    for (uint32_t b = 0; b < 65536; b++) {
        float v = hs_bf16_decode((uint16_t)b);
        assert_int_equal(f2u(v), b << 16);
        if (isnan(v)) assert_true(isnan(hs_bf16_decode(hs_bf16_encode(v))));
        else assert_int_equal(hs_bf16_encode(v), b);
    }
    /* random: result is one of the two neighbours and the nearer one */
    for (uint64_t i = 0; i < 200000; i++) {
        float x = test_float(i, 1e3f);
        if (!isfinite(x)) continue;
        uint32_t u = f2u(x);
        float lo = u2f(u & 0xFFFF0000u), hi = u2f((u & 0xFFFF0000u) + 0x10000u);
        float q = hs_bf16_decode(hs_bf16_encode(x));
        double dl = fabs((double)x - lo), dh = fabs((double)x - hi);
        if (isinf(hi)) dh = fabs((double)x - copysign(ldexp(1.0, 128), x)); /* Inf stands for 2^128 */
        float want = dl < dh ? lo : dh < dl ? hi : (((u >> 16) & 1) ? hi : lo);
        if (f2u(q) != f2u(want)) fail_msg("bf16(%a) = %a want %a", x, q, want);
    }
}

/* ---------------------------------------------------------------- RNG */
static void rng(void **state) {
    (void)state;
    assert_true(hs_rng_bits(1, 2, 3) == hs_rng_bits(1, 2, 3));
    assert_true(hs_rng_bits(1, 2, 3) != hs_rng_bits(1, 2, 4));
    assert_true(hs_rng_bits(1, 2, 3) != hs_rng_bits(1, 3, 3));
    assert_true(hs_rng_bits(1, 2, 3) != hs_rng_bits(2, 2, 3));
    uint64_t key = hs_rng_key(42, 7);
    double s = 0, s2 = 0;
    int ones[64] = {0};
    const int N = 100000;
    for (int i = 0; i < N; i++) {
        uint64_t b = hs_rng_bits(42, 7, (uint64_t)i);
        assert_true(b == hs_rng_bits_key(key, (uint64_t)i));
        float u = hs_rng_uniform(42, 7, (uint64_t)i);
        assert_true(f2u(u) == f2u(hs_rng_uniform_key(key, (uint64_t)i)));
        assert_true(u >= 0.0f && u < 1.0f);
        s += u;
        s2 += (double)u * u;
        for (int k = 0; k < 64; k++) ones[k] += (int)((b >> k) & 1);
    }
    /* mean 1/2, variance 1/12, each bit set half the time (5 sigma) */
    assert_true(fabs(s / N - 0.5) < 5 * sqrt(1.0 / 12 / N));
    assert_true(fabs(s2 / N - 1.0 / 3) < 0.01);
    for (int k = 0; k < 64; k++) assert_true(abs(ones[k] - N / 2) < 5 * (int)sqrt(N / 4.0));
    /* streams and seeds are not shifted copies of each other */
    int same = 0;
    for (int i = 0; i < 1000; i++)
        for (int d = -2; d <= 2; d++)
            same += hs_rng_bits(5, 0, (uint64_t)(i + 10)) == hs_rng_bits(5, 1, (uint64_t)(i + 10 + d));
    assert_int_equal(same, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(e2m1_all_codes),  cmocka_unit_test(e2m1_tie_points),
        cmocka_unit_test(e2m1_saturation_zero_nan), cmocka_unit_test(e2m1_rne_is_nearest),
        cmocka_unit_test(e2m1_sr),         cmocka_unit_test(e4m3_all_codes),
        cmocka_unit_test(e4m3_nearest),    cmocka_unit_test(e5m2_all_codes),
        cmocka_unit_test(ue4m3_all_codes), cmocka_unit_test(e8m0_all_codes),
        cmocka_unit_test(log2_exact),      cmocka_unit_test(ints),
        cmocka_unit_test(bf16),            cmocka_unit_test(rng),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* quant_e2m1_avx512_ukernel.c: the band kernels of the AVX-512 E2M1 quantizer (tile loading
 * with the fused RHT, group statistics, scale rules for 16 groups at once, element encoding, code
 * transposition): the AVX-512 table of the band quantizer, whose driver is kernels/quant_band.c;
 * the data path at 16 lanes is described in quant_e2m1_avx512.c.
 * Compiled with clang where available (Makefile: *_ukernel.c): gcc 12 spills the 16-register
 * transposes of this file.
 */
#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "core/quant_common.h"
#include "core/rht_impl.h"
#include "core/scale_rules.h"
#include "halfs/rng.h"
#include "kernels/avx512/quant_e2m1_avx512.h"
#include "kernels/avx512/sr_uniform_avx512.h"

enum {
    LANES = HS_QK_LANES,
    PF_AHEAD = 512, /* software prefetch distance along a row (floats) */
};

typedef hs_qk qk;

/* ------------------------------------------------------------------ tile loading */

/* 16×16 transpose of floats: in[r] (row r) → out[c] (column c). */
static inline void transpose16(__m512 r[16]) {
    __m512 t[16];
#pragma GCC unroll 8
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
        r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
        r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
        r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
    }
    /* now r[4q + j] holds, in 128-bit lane L, column 4L + j of rows 4q..4q+3 */
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        __m512 a = r[j], b = r[4 + j], c = r[8 + j], d = r[12 + j];
        __m512 ab_lo = _mm512_shuffle_f32x4(a, b, 0x44), ab_hi = _mm512_shuffle_f32x4(a, b, 0xEE);
        __m512 cd_lo = _mm512_shuffle_f32x4(c, d, 0x44), cd_hi = _mm512_shuffle_f32x4(c, d, 0xEE);
        t[j] = _mm512_shuffle_f32x4(ab_lo, cd_lo, 0x88);      /* lane 0: column j */
        t[4 + j] = _mm512_shuffle_f32x4(ab_lo, cd_lo, 0xDD);  /* lane 1: column 4 + j */
        t[8 + j] = _mm512_shuffle_f32x4(ab_hi, cd_hi, 0x88);  /* lane 2: column 8 + j */
        t[12 + j] = _mm512_shuffle_f32x4(ab_hi, cd_hi, 0xDD); /* lane 3: column 12 + j */
    }
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++) r[i] = t[i];
}

static void rht_tile(const qk *q, float *t, int64_t n);

/* t[i][l] = packed element (r0 + l, c0 + i) for i < n, l < nb (other lanes 0); RHT applied. */
static void load_tile(const qk *q, int64_t r0, int nb, int64_t c0, int64_t n, float *t) {
    const __mmask16 lanes = (__mmask16)((1u << nb) - 1);
    if (q->transpose) {
        /* packed row r is column r of x: 16 consecutive floats of x row c0 + i; the next band
         * reads the next 64 bytes of the same x rows: prefetch them (a hint, never faults) */
        for (int64_t i = 0; i < n; i++) {
            const float *src = q->x + (c0 + i) * q->ld + r0;
            _mm_prefetch((const char *)(src + LANES), _MM_HINT_T1);
            _mm512_store_ps(t + i * LANES, _mm512_maskz_loadu_ps(lanes, src));
        }
    } else {
        int64_t i0 = 0;
        if (nb == 16) /* full bands: straight-line loads, transpose in registers */
            for (; i0 + 16 <= n; i0 += 16) {
                const float *src = q->x + r0 * q->ld + c0 + i0;
                __m512 r[16];
#pragma GCC unroll 16
                for (int l = 0; l < 16; l++) {
                    /* 16 interleaved row streams: help the hardware prefetcher */
                    _mm_prefetch((const char *)(src + l * q->ld + PF_AHEAD), _MM_HINT_T0);
                    r[l] = _mm512_loadu_ps(src + l * q->ld);
                }
                transpose16(r);
#pragma GCC unroll 16
                for (int j = 0; j < 16; j++) _mm512_store_ps(t + (i0 + j) * LANES, r[j]);
            }
        for (; i0 < n; i0 += 16) {
            int w = n - i0 < 16 ? (int)(n - i0) : 16;
            __mmask16 m = (__mmask16)((1u << w) - 1);
            __m512 r[16];
            for (int l = 0; l < 16; l++)
                r[l] = l < nb ? _mm512_maskz_loadu_ps(m, q->x + (r0 + l) * q->ld + c0 + i0)
                              : _mm512_setzero_ps();
            transpose16(r);
            for (int j = 0; j < w; j++) _mm512_store_ps(t + (i0 + j) * LANES, r[j]);
        }
    }
    rht_tile(q, t, n);
}

/* The RHT of rht_impl.h along i on a tile t[i][16] (n a multiple of d), per lane. */
static void rht_tile(const qk *q, float *t, int64_t n) {
    if (q->rht) {
        /* rht_impl.h: ·sign_i, butterflies h = 1, 2, ..., d/2, then ·fl(1/√d) */
        const int d = q->rht;
        const __m512 nrm = _mm512_set1_ps(q->nrm);
        if (d == 16) { /* the NVFP4 recipe's size: the same operations, in 16 registers */
            for (int64_t o = 0; o < n; o += 16) {
                float *b = t + o * LANES;
                __m512 v[16];
#pragma GCC unroll 16
                for (int i = 0; i < 16; i++)
                    v[i] = _mm512_mul_ps(_mm512_load_ps(b + i * LANES), _mm512_set1_ps(q->signs[i]));
#pragma GCC unroll 4
                for (int h = 1; h < 16; h *= 2)
#pragma GCC unroll 16
                    for (int j = 0; j < 16; j++)
                        if (!(j & h)) {
                            const __m512 a = v[j], c = v[j + h];
                            v[j] = _mm512_add_ps(a, c);
                            v[j + h] = _mm512_sub_ps(a, c);
                        }
#pragma GCC unroll 16
                for (int i = 0; i < 16; i++) _mm512_store_ps(b + i * LANES, _mm512_mul_ps(v[i], nrm));
            }
            return;
        }
        for (int64_t o = 0; o < n; o += d) {
            float *b = t + o * LANES;
            for (int i = 0; i < d; i++)
                _mm512_store_ps(b + i * LANES, _mm512_mul_ps(_mm512_load_ps(b + i * LANES),
                                                             _mm512_set1_ps(q->signs[i])));
            for (int h = 1; h < d; h *= 2)
                for (int i = 0; i < d; i += 2 * h)
                    for (int j = i; j < i + h; j++) {
                        __m512 a = _mm512_load_ps(b + j * LANES), c = _mm512_load_ps(b + (j + h) * LANES);
                        _mm512_store_ps(b + j * LANES, _mm512_add_ps(a, c));
                        _mm512_store_ps(b + (j + h) * LANES, _mm512_sub_ps(a, c));
                    }
            for (int i = 0; i < d; i++)
                _mm512_store_ps(b + i * LANES, _mm512_mul_ps(_mm512_load_ps(b + i * LANES), nrm));
        }
    }
}

/* ------------------------------------------------------------------ E2M1 element rounding */

/* |z| clamped to 6, rounded RNE onto the E2M1 grid (a ≥ 0, finite). */
static inline __m512 e2m1_rne_mag(__m512 a) {
    /* magic = 2^(22 + max(floor(log2 a), 0)) from the exponent bits (a ≤ 6: exponent ≤ 2) */
    __m512i eb = _mm512_max_epi32(_mm512_and_si512(_mm512_castps_si512(a), _mm512_set1_epi32(0x7F800000)),
                                  _mm512_set1_epi32(0x3F800000));
    __m512 magic = _mm512_castsi512_ps(_mm512_add_epi32(eb, _mm512_set1_epi32(22 << 23)));
    return _mm512_sub_ps(_mm512_add_ps(a, magic), magic);
}

static inline __m512 abs_ps(__m512 v) {
    return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(0x7FFFFFFF)));
}

/* ------------------------------------------------------------------ group statistics */

/* max |v| over t[i], i in [0, n), as float bits (integer max: same order as float max for
 * non-negative values; ≥ 0x7F800000 means the group holds Inf or NaN). */
static inline __m512i group_amax_bits(const float *t, int64_t n) {
    __m512i m = _mm512_setzero_si512();
    const __m512i absm = _mm512_set1_epi32(0x7FFFFFFF);
    for (int64_t i = 0; i < n; i++)
        m = _mm512_max_epi32(m, _mm512_and_si512(_mm512_load_si512(t + i * LANES), absm));
    return m;
}

/* One term (v − x̂)² of hs_group_sse for 16 lanes, as two halves of 8 doubles, added to
 * accumulators lo, hi. f32diff: the caller guarantees x̂/2 ≤ v ≤ 2x̂ or x̂ = 0 (E8M0 halfs
 * candidates: a/X ≤ 8 and RNE moves a value by at most a factor 2/3..2), so v − x̂ is exact in
 * float (Sterbenz) and equals the reference's double difference. */
static inline __attribute__((always_inline)) void sse_term(__m512 v, __m512 enc, __m512 dec, int f32diff, __m512d *lo, __m512d *hi) {
    __m512 z = _mm512_mul_ps(v, enc);
    __m512 g = e2m1_rne_mag(_mm512_min_ps(abs_ps(z), _mm512_set1_ps(6.0f)));
    /* the code's signed value (−0 for small negatives): g with z's sign bit */
    __m512 q = _mm512_castsi512_ps(_mm512_ternarylogic_epi32(
        _mm512_castps_si512(g), _mm512_castps_si512(z), _mm512_set1_epi32((int)0x80000000u), 0xF8));
    __m512 xh = _mm512_mul_ps(q, dec);
    __m512d d0, d1;
    if (f32diff) {
        __m512 d = _mm512_sub_ps(v, xh);
        d0 = _mm512_cvtps_pd(_mm512_castps512_ps256(d));
        d1 = _mm512_cvtps_pd(_mm512_extractf32x8_ps(d, 1));
    } else {
        d0 = _mm512_sub_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(v)),
                           _mm512_cvtps_pd(_mm512_castps512_ps256(xh)));
        d1 = _mm512_sub_pd(_mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)),
                           _mm512_cvtps_pd(_mm512_extractf32x8_ps(xh, 1)));
    }
    if (f32diff) { /* d² of a float is exact in double: one FMA = the reference's mul + add */
        *lo = _mm512_fmadd_pd(d0, d0, *lo);
        *hi = _mm512_fmadd_pd(d1, d1, *hi);
    } else {
        *lo = _mm512_add_pd(*lo, _mm512_mul_pd(d0, d0));
        *hi = _mm512_add_pd(*hi, _mm512_mul_pd(d1, d1));
    }
}

/* hs_group_sse for 16 groups (lanes) of n elements t[i] (t zero-padded to a multiple of 8: a
 * zero adds +0): Σ (v − fl(q(v·enc)·dec))², term i into accumulator i mod 8, accumulators
 * combined ((0+4)+(2+6))+((1+5)+(3+7)). */
static inline __attribute__((always_inline)) void group_sse_impl(const float *t, int64_t n, __m512 enc, __m512 dec, int f32diff,
                                  __m512d *lo, __m512d *hi) {
    __m512d al[8], ah[8];
#pragma GCC unroll 8
    for (int k = 0; k < 8; k++) al[k] = ah[k] = _mm512_setzero_pd();
    for (int64_t i = 0; i < n; i += 8) {
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++)
            sse_term(_mm512_load_ps(t + (i + k) * LANES), enc, dec, f32diff, &al[k], &ah[k]);
    }
    *lo = _mm512_add_pd(_mm512_add_pd(_mm512_add_pd(al[0], al[4]), _mm512_add_pd(al[2], al[6])),
                        _mm512_add_pd(_mm512_add_pd(al[1], al[5]), _mm512_add_pd(al[3], al[7])));
    *hi = _mm512_add_pd(_mm512_add_pd(_mm512_add_pd(ah[0], ah[4]), _mm512_add_pd(ah[2], ah[6])),
                        _mm512_add_pd(_mm512_add_pd(ah[1], ah[5]), _mm512_add_pd(ah[3], ah[7])));
}
static void group_sse(const float *t, int64_t n, __m512 enc, __m512 dec, __m512d *lo, __m512d *hi) {
    group_sse_impl(t, n, enc, dec, 0, lo, hi);
}
static void group_sse_f32diff(const float *t, int64_t n, __m512 enc, __m512 dec, __m512d *lo,
                              __m512d *hi) {
    group_sse_impl(t, n, enc, dec, 1, lo, hi);
}

/* An estimate of hs_group_sse in float (two accumulators, any order): each step rounds once
 * (the FMA's product d·d is exact inside it), so for n terms the estimate is within
 * n·2⁻²⁴·SSE + n·2⁻¹⁵⁰ of the exact sum of the d² (Higham's bound for positive terms, plus
 * underflow); d = v − x̂ is exact in float for E8M0 candidates and within 2⁻²⁴ relative
 * otherwise. Only used to decide comparisons far from a tie (sse_est_order). */
static inline __m512 group_sse_est(const float *t, int64_t n, __m512 enc, __m512 dec) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 2) { /* n is even (padded to 8) */
#pragma GCC unroll 2
        for (int k = 0; k < 2; k++) {
            __m512 v = _mm512_load_ps(t + (i + k) * LANES);
            __m512 z = _mm512_mul_ps(v, enc);
            __m512 g = e2m1_rne_mag(_mm512_min_ps(abs_ps(z), _mm512_set1_ps(6.0f)));
            __m512 q = _mm512_castsi512_ps(_mm512_ternarylogic_epi32(
                _mm512_castps_si512(g), _mm512_castps_si512(z), _mm512_set1_epi32((int)0x80000000u), 0xF8));
            __m512 d = _mm512_sub_ps(v, _mm512_mul_ps(q, dec));
            if (k == 0) a0 = _mm512_fmadd_ps(d, d, a0);
            else a1 = _mm512_fmadd_ps(d, d, a1);
        }
    }
    return _mm512_add_ps(a0, a1);
}

/* Compare two candidates' errors by their float estimates: returns the lanes where the order is
 * certain (the estimates differ by more than their error bound, 2n·2⁻²⁴·(Sa + Sb) + 2n·2⁻¹⁴⁸,
 * which also covers a float-rounded v − x̂ (relative 2⁻²⁴ on each term) and the reference's
 * double rounding), and in *lt the lanes where a's error is certainly the smaller. Lanes where
 * the two candidates give bitwise the same x̂ for every element are certain too (with *lt
 * clear): their exact sums are the same sums, so neither is strictly lower. Such exact ties are
 * common — a group with one large element and small ones that round to 0 under both scales —
 * and would otherwise send the whole vector of groups to the exact double sums. Both estimates
 * are computed in one pass (group_sse_est's arithmetic for each). */
static inline __mmask16 sse_est_order(const float *t, int64_t n, __m512 enc_a, __m512 dec_a,
                                      __m512 enc_b, __m512 dec_b, __mmask16 *lt) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    __m512 b0 = _mm512_setzero_ps(), b1 = _mm512_setzero_ps();
    __mmask16 differ = 0;
    const __m512 six = _mm512_set1_ps(6.0f);
    const __m512i sgn = _mm512_set1_epi32((int)0x80000000u);
    for (int64_t i = 0; i < n; i += 2) { /* n is even (padded to 8) */
#pragma GCC unroll 2
        for (int k = 0; k < 2; k++) {
            __m512 v = _mm512_load_ps(t + (i + k) * LANES);
            __m512 za = _mm512_mul_ps(v, enc_a), zb = _mm512_mul_ps(v, enc_b);
            __m512 ga = e2m1_rne_mag(_mm512_min_ps(abs_ps(za), six));
            __m512 gb = e2m1_rne_mag(_mm512_min_ps(abs_ps(zb), six));
            __m512 qa = _mm512_castsi512_ps(_mm512_ternarylogic_epi32(_mm512_castps_si512(ga), _mm512_castps_si512(za), sgn, 0xF8));
            __m512 qb = _mm512_castsi512_ps(_mm512_ternarylogic_epi32(_mm512_castps_si512(gb), _mm512_castps_si512(zb), sgn, 0xF8));
            __m512 xa = _mm512_mul_ps(qa, dec_a), xb = _mm512_mul_ps(qb, dec_b);
            differ |= _mm512_cmpneq_epi32_mask(_mm512_castps_si512(xa), _mm512_castps_si512(xb));
            __m512 da = _mm512_sub_ps(v, xa), db = _mm512_sub_ps(v, xb);
            if (k == 0) {
                a0 = _mm512_fmadd_ps(da, da, a0);
                b0 = _mm512_fmadd_ps(db, db, b0);
            } else {
                a1 = _mm512_fmadd_ps(da, da, a1);
                b1 = _mm512_fmadd_ps(db, db, b1);
            }
        }
    }
    __m512 sa = _mm512_add_ps(a0, a1), sb = _mm512_add_ps(b0, b1);
    __m512 diff = _mm512_sub_ps(sa, sb);
    __m512 bound = _mm512_fmadd_ps(_mm512_add_ps(sa, sb), _mm512_set1_ps((float)(2 * n) * 0x1p-24f),
                                   _mm512_set1_ps((float)(2 * n) * 0x1p-148f));
    *lt = _mm512_cmp_ps_mask(diff, _mm512_sub_ps(_mm512_setzero_ps(), bound), _CMP_LT_OQ) & differ;
    return *lt | (_mm512_cmp_ps_mask(diff, bound, _CMP_GT_OQ) & differ) | (__mmask16)~differ;
}

/* Lanes where SSE a < SSE b. */
static inline __mmask16 sse_less(__m512d alo, __m512d ahi, __m512d blo, __m512d bhi) {
    __mmask8 l = _mm512_cmp_pd_mask(alo, blo, _CMP_LT_OQ), h = _mm512_cmp_pd_mask(ahi, bhi, _CMP_LT_OQ);
    return (__mmask16)(l | ((unsigned)h << 8));
}

/* A 16×16 tile (2D scales) as one group: lanes l < nb are its packed rows, t[j] (j < w) its
 * packed columns; padded lanes and columns are zero (they add +0). Is candidate a's squared error
 * strictly below candidate b's, in the reference's terms (hs_group_sse over the tile in its
 * canonical order: row-major over the source matrix x)? enc/dec are the same in every lane.
 * Float estimates first (any order: per lane, then across lanes; N = 16·w terms at most, each
 * estimate within N·2⁻²⁴·S + N·2⁻¹⁵⁰ of its exact sum, see group_sse_est); on a close call the
 * tile is gathered in canonical order and the reference's exact sums decide. */
static int tile_less(const qk *q, const float *t, int64_t w, int nb, __m512 enc_a, __m512 dec_a,
                     __m512 enc_b, __m512 dec_b) {
    const int64_t nw = w + (w & 1); /* group_sse_est reads pairs: t is zero-padded */
    double sa = _mm512_reduce_add_ps(group_sse_est(t, nw, enc_a, dec_a));
    double sb = _mm512_reduce_add_ps(group_sse_est(t, nw, enc_b, dec_b));
    const double N = 16.0 * (double)nw;
    double bound = 2.0 * N * 0x1p-24 * (sa + sb) + 2.0 * N * 0x1p-148;
    if (sa - sb < -bound) return 1;
    if (sa - sb > bound) return 0;
    float g[HS_QK_LANES * HS_QK_LANES];
    int64_t k = 0;
    if (!q->transpose) {
        for (int l = 0; l < nb; l++)
            for (int64_t j = 0; j < w; j++) g[k++] = t[j * LANES + l];
    } else {
        for (int64_t j = 0; j < w; j++)
            for (int l = 0; l < nb; l++) g[k++] = t[j * LANES + l];
    }
    float ea = _mm512_cvtss_f32(enc_a), da = _mm512_cvtss_f32(dec_a);
    float eb = _mm512_cvtss_f32(enc_b), db = _mm512_cvtss_f32(dec_b);
    return hs_group_sse(HS_ELEM_E2M1, g, k, ea, da) < hs_group_sse(HS_ELEM_E2M1, g, k, eb, db);
}

/* ------------------------------------------------------------------ scale choice (16 groups) */

typedef struct {
    __m512 enc, dec;    /* element multipliers */
    __m512i stored;     /* stored scale (byte or FP32 bits) */
    __mmask16 halved;   /* lanes below the ceil/max scale */
    __mmask16 finite;   /* lanes with a finite amax (others: NaN scale, zero codes) */
} gscale;

static inline __m512 pow2_ps(__m512i e) { /* 2^e, e in [−127, 127], exact */
    return _mm512_scalef_ps(_mm512_set1_ps(1.0f), _mm512_cvtepi32_ps(e));
}

static void choose_e8m0(const qk *q, const float *t, int64_t n, int nb, __m512i amax_bits, gscale *g) {
    const hs_rule rule = q->s->rule;
    __m512 a = _mm512_castsi512_ps(amax_bits);
    __mmask16 zero = _mm512_cmpeq_epi32_mask(amax_bits, _mm512_setzero_si512());
    /* floor(log2 a) and the significand in [1, 2), subnormal a included (a = 0 is masked) */
    __m512i f = _mm512_cvtps_epi32(_mm512_getexp_ps(a));
    __m512 sig = _mm512_getmant_ps(a, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_src);
    __mmask16 notpow2 = _mm512_cmp_ps_mask(sig, _mm512_set1_ps(1.0f), _CMP_NEQ_OQ);
    const __m512i emin = _mm512_set1_epi32(HS_E8M0_EMIN), one = _mm512_set1_epi32(1);
    const __m512i emax = _mm512_set1_epi32(2);
    __m512i fm = _mm512_sub_epi32(f, emax);
    __m512i e_ceil = _mm512_max_epi32(_mm512_mask_add_epi32(fm, notpow2, fm, one), emin);
    __m512i e;
    switch (rule) {
    case HS_RULE_OCP: e = fm; break;
    case HS_RULE_CEIL: e = e_ceil; break;
    case HS_RULE_RCEIL:
        e = _mm512_mask_add_epi32(fm, _mm512_cmp_ps_mask(sig, _mm512_set1_ps(1.5f), _CMP_GT_OQ), fm, one);
        break;
    case HS_RULE_EVEN:
        e = _mm512_mask_add_epi32(fm, _mm512_cmp_ps_mask(sig, _mm512_set1_ps(1.75f), _CMP_GE_OQ), fm, one);
        break;
    case HS_RULE_HALF: e = _mm512_sub_epi32(e_ceil, one); break;
    case HS_RULE_HALFS: {
        __m512i eh = _mm512_sub_epi32(e_ceil, one);
        __m512i ehc = _mm512_max_epi32(eh, emin); /* clamped lanes are not taken (below) */
        __m512 enc_c = pow2_ps(_mm512_sub_epi32(_mm512_setzero_si512(), e_ceil)), dec_c = pow2_ps(e_ceil);
        __m512 enc_h = pow2_ps(_mm512_sub_epi32(_mm512_setzero_si512(), ehc)), dec_h = pow2_ps(ehc);
        const __mmask16 valid = _mm512_cmpge_epi32_mask(eh, emin);
        /* Fast path: both errors estimated in float (any order): when they differ by more than
         * the estimates' error bound, the reference's exact double sums order the same way. */
        __mmask16 live = _mm512_cmpneq_epi32_mask(amax_bits, _mm512_setzero_si512()) &
                         _mm512_cmplt_epi32_mask(amax_bits, _mm512_set1_epi32(0x7F800000));
        __mmask16 take;
        if (q->tile2d) { /* one group: the whole tile (the amax is the same in every lane) */
            take = (live & 1) && tile_less(q, t, n, nb, enc_h, dec_h, enc_c, dec_c) ? valid : 0;
            e = _mm512_mask_mov_epi32(e_ceil, take, eh);
            break;
        }
        __mmask16 lt, far = sse_est_order(t, n, enc_h, dec_h, enc_c, dec_c, &lt);
        if ((__mmask16)(live & ~far) == 0) {
            take = lt & valid;
        } else { /* close call somewhere: the reference's exact sums */
            __m512d c_lo, c_hi, h_lo, h_hi;
            group_sse_f32diff(t, n, enc_c, dec_c, &c_lo, &c_hi);
            group_sse_f32diff(t, n, enc_h, dec_h, &h_lo, &h_hi);
            take = sse_less(h_lo, h_hi, c_lo, c_hi) & valid;
        }
        e = _mm512_mask_mov_epi32(e_ceil, take, eh);
        break;
    }
    case HS_RULE_HALFS_SIGMA: {
        /* sumsq in the reference's 8-accumulator order, then the closed-form test in double */
        __m512d al[8], ah[8];
        for (int k = 0; k < 8; k++) al[k] = ah[k] = _mm512_setzero_pd();
        for (int64_t i = 0; i < n; i += 8) { /* zero padding adds +0 */
#pragma GCC unroll 8
            for (int k = 0; k < 8; k++) {
                __m512 v = _mm512_load_ps(t + (i + k) * LANES);
                __m512d d0 = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
                __m512d d1 = _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1));
                al[k] = _mm512_add_pd(al[k], _mm512_mul_pd(d0, d0));
                ah[k] = _mm512_add_pd(ah[k], _mm512_mul_pd(d1, d1));
            }
        }
        __m512d ss[2] = {
            _mm512_add_pd(_mm512_add_pd(_mm512_add_pd(al[0], al[4]), _mm512_add_pd(al[2], al[6])),
                          _mm512_add_pd(_mm512_add_pd(al[1], al[5]), _mm512_add_pd(al[3], al[7]))),
            _mm512_add_pd(_mm512_add_pd(_mm512_add_pd(ah[0], ah[4]), _mm512_add_pd(ah[2], ah[6])),
                          _mm512_add_pd(_mm512_add_pd(ah[1], ah[5]), _mm512_add_pd(ah[3], ah[7])))};
        __mmask8 hm[2];
        const __m512d nd = _mm512_set1_pd((double)n), c = _mm512_set1_pd(4.147);
        const __m512d absd = _mm512_castsi512_pd(_mm512_set1_epi64(0x7FFFFFFFFFFFFFFFll));
        for (int hh = 0; hh < 2; hh++) {
            __m512d sigma = _mm512_sqrt_pd(_mm512_div_pd(ss[hh], nd));
            __m512d cs = _mm512_mul_pd(c, sigma);
            __m512d ad = _mm512_cvtps_pd(hh ? _mm512_extractf32x8_ps(a, 1) : _mm512_castps512_ps256(a));
            __m512d l = _mm512_and_pd(_mm512_sub_pd(_mm512_mul_pd(_mm512_set1_pd(0.5), ad), cs), absd);
            __m512d r = _mm512_and_pd(_mm512_sub_pd(ad, cs), absd);
            hm[hh] = _mm512_cmp_pd_mask(l, r, _CMP_LT_OQ);
        }
        __mmask16 take = (__mmask16)(hm[0] | ((unsigned)hm[1] << 8));
        e = _mm512_mask_sub_epi32(e_ceil, take, e_ceil, one);
        break;
    }
    case HS_RULE_MSE: {
        e = e_ceil;
        __m512d b_lo, b_hi;
        group_sse(t, n, pow2_ps(_mm512_sub_epi32(_mm512_setzero_si512(), e_ceil)), pow2_ps(e_ceil), &b_lo, &b_hi);
        __mmask16 alive = 0xFFFF;
        for (int k = 1; k <= 3; k++) {
            __m512i ek = _mm512_sub_epi32(e_ceil, _mm512_set1_epi32(k));
            alive &= _mm512_cmpge_epi32_mask(ek, emin); /* the reference stops at the first clamp */
            if (!alive) break;
            __m512i ekc = _mm512_max_epi32(ek, emin);
            __m512d s_lo, s_hi;
            group_sse(t, n, pow2_ps(_mm512_sub_epi32(_mm512_setzero_si512(), ekc)), pow2_ps(ekc), &s_lo, &s_hi);
            __mmask16 better = sse_less(s_lo, s_hi, b_lo, b_hi) & alive;
            b_lo = _mm512_mask_mov_pd(b_lo, (__mmask8)better, s_lo);
            b_hi = _mm512_mask_mov_pd(b_hi, (__mmask8)(better >> 8), s_hi);
            e = _mm512_mask_mov_epi32(e, better, ek);
        }
        break;
    }
    default: e = e_ceil; break;
    }
    e = _mm512_max_epi32(e, emin);
    e = _mm512_mask_mov_epi32(e, zero, emin); /* all-zero group: the smallest scale */
    g->finite = _mm512_cmplt_epi32_mask(amax_bits, _mm512_set1_epi32(0x7F800000));
    g->halved = _mm512_cmplt_epi32_mask(e, e_ceil) & ~zero & g->finite;
    g->stored = _mm512_mask_mov_epi32(_mm512_add_epi32(e, _mm512_set1_epi32(127)), (__mmask16)~g->finite,
                                      _mm512_set1_epi32(0xFF));
    g->enc = pow2_ps(_mm512_sub_epi32(_mm512_setzero_si512(), e));
    g->dec = pow2_ps(e);
}

/* hs_ue4m3_encode for finite v. */
static inline __m512i ue4m3_encode(__m512 v) {
    __m512i b = _mm512_castps_si512(v);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(b, 20), _mm512_set1_epi32(1));
    __m512i rn = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(b, _mm512_set1_epi32(0x7FFFF)), lsb), 20);
    __m512i code = _mm512_sub_epi32(rn, _mm512_set1_epi32(960));
    __mmask16 sub = _mm512_cmp_ps_mask(v, _mm512_set1_ps(0x1p-6f), _CMP_LT_OQ);
    code = _mm512_mask_mov_epi32(code, sub, _mm512_cvtps_epi32(_mm512_mul_ps(v, _mm512_set1_ps(512.0f))));
    code = _mm512_mask_mov_epi32(code, _mm512_cmp_ps_mask(v, _mm512_set1_ps(0x1p-9f), _CMP_NGT_UQ),
                                 _mm512_set1_epi32(1));
    code = _mm512_mask_mov_epi32(code, _mm512_cmp_ps_mask(v, _mm512_set1_ps(448.0f), _CMP_GE_OQ),
                                 _mm512_set1_epi32(0x7E));
    return _mm512_min_epi32(_mm512_max_epi32(code, _mm512_set1_epi32(1)), _mm512_set1_epi32(0x7E));
}

static inline __m512 ue4m3_decode(__m512i c) { /* c in [1, 0x7E] */
    __m512 normal = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(c, _mm512_set1_epi32(960)), 20));
    __m512 sub = _mm512_mul_ps(_mm512_cvtepi32_ps(c), _mm512_set1_ps(0x1p-9f));
    return _mm512_mask_mov_ps(normal, _mm512_cmplt_epi32_mask(c, _mm512_set1_epi32(8)), sub);
}

/* cont_scale(s, t, T, s_enc) of scale_rules.c for 16 lanes. */
static void cont_scale(const qk *q, __m512 tt, float T, gscale *g) {
    __m512 X = _mm512_div_ps(tt, _mm512_set1_ps(T));
    if (q->s->scale_fmt == HS_SCALE_UE4M3) {
        __m512 senc = _mm512_set1_ps(q->s_enc);
        __m512i c = ue4m3_encode(_mm512_mul_ps(X, senc));
        __m512 sb = ue4m3_decode(c);
        g->stored = c;
        g->enc = _mm512_div_ps(senc, sb);
        g->dec = _mm512_div_ps(sb, senc);
    } else {
        X = _mm512_mask_mov_ps(X, _mm512_cmp_ps_mask(X, _mm512_set1_ps(FLT_MIN), _CMP_NGE_UQ),
                               _mm512_set1_ps(FLT_MIN));
        g->stored = _mm512_castps_si512(X);
        g->enc = _mm512_div_ps(_mm512_set1_ps(1.0f), X);
        g->dec = X;
    }
}

/* The continuous `mse` rule of scale_rules.c for 16 groups (1D groups only): candidates gmax,
 * then the clips t = fl(r·a), r = fl((30+k)/100) for k = 69 .. 0, each mapped to the element max;
 * the reference keeps the first candidate (in that order) of smallest exact squared error,
 * skipping a candidate whose stored scale repeats the previous one (same error: never strictly
 * lower). The first minimum of a sequence does not change when elements above the minimum are
 * dropped, so exact double sums are computed only for candidates that may be minimal: pass 1
 * estimates every candidate's error in float (group_sse_est: within E = 2n·2⁻²⁴·S + 2n·2⁻¹⁴⁸
 * of the exact sum, generously), U = min (est + E); pass 2 takes the exact sums, in order, of
 * the candidates with est − E ≤ U in some lane and keeps, per lane, the first strict minimum.
 * A lane whose estimate overflowed (or is NaN) computes that candidate's exact sum. */
enum { MSE_CANDS = 71 };
static void cont_mse(const qk *q, const float *t, int64_t n, __m512 a, const gscale *gmax, gscale *g) {
    const float mx = 6.0f;
    gscale c[MSE_CANDS];
    __m512 lo[MSE_CANDS];
    __mmask16 distinct[MSE_CANDS];
    const int64_t ne = n + (n & 1); /* group_sse_est reads pairs: t is zero-padded */
    const __m512 rel = _mm512_set1_ps((float)(2 * ne) * 0x1p-24f);
    const __m512 abs_err = _mm512_set1_ps((float)(2 * ne) * 0x1p-148f);
    __m512 U = _mm512_set1_ps(INFINITY);
    c[0] = *gmax;
    distinct[0] = 0xFFFF;
    int nc = 0; /* candidates already listed (UE4M3 fast path) */
    if (q->s->scale_fmt == HS_SCALE_UE4M3) {
        /* The candidates' codes are non-increasing in candidate order. When every step is 0 or
         * 1 (checked here; the clip grid's steps, ≤ 3.4 %, are finer than UE4M3's, ≥ 6.25 %), the
         * distinct candidates are exactly the codes hi = code(gmax) down to lo = code(0.30·a),
         * in that order, and cost one estimate each instead of 71. */
        const __m512 senc = _mm512_set1_ps(q->s_enc);
        const __mmask16 fin = _mm512_cmp_ps_mask(a, _mm512_set1_ps(FLT_MAX), _CMP_LE_OQ);
        __m512i prev = gmax->stored;
        __mmask16 bad = 0;
        for (int i = 1; i < MSE_CANDS; i++) {
            float r = (float)(30 + (MSE_CANDS - 1 - i)) / 100.0f;
            __m512 X = _mm512_div_ps(_mm512_mul_ps(_mm512_set1_ps(r), a), _mm512_set1_ps(mx));
            __m512i code = ue4m3_encode(_mm512_mul_ps(X, senc));
            bad |= fin & _mm512_cmpgt_epu32_mask(_mm512_sub_epi32(prev, code), _mm512_set1_epi32(1));
            prev = code;
        }
        if (!bad) {
            const __m512i hi = gmax->stored, lo_code = prev;
            int span = _mm512_mask_reduce_max_epi32(fin, _mm512_sub_epi32(hi, lo_code));
            nc = 1 + (span > 0 ? span : 0);
            for (int d = 1; d < nc; d++) {
                __m512i cc = _mm512_sub_epi32(hi, _mm512_set1_epi32(d));
                distinct[d] = fin & _mm512_cmpge_epi32_mask(cc, lo_code);
                __m512 sb = ue4m3_decode(_mm512_max_epi32(cc, _mm512_set1_epi32(1)));
                c[d].stored = cc;
                c[d].enc = _mm512_div_ps(senc, sb); /* cont_scale's floats for code cc */
                c[d].dec = _mm512_div_ps(sb, senc);
            }
        }
    }
    if (nc == 0) {
        nc = MSE_CANDS;
        for (int i = 1; i < MSE_CANDS; i++) {
            float r = (float)(30 + (MSE_CANDS - 1 - i)) / 100.0f; /* k = 69 .. 0 */
            cont_scale(q, _mm512_mul_ps(_mm512_set1_ps(r), a), mx, &c[i]);
            distinct[i] = _mm512_cmpneq_epi32_mask(c[i].stored, c[i - 1].stored);
        }
    }
    for (int i = 0; i < nc; i++) {
        if (!distinct[i]) continue;
        __m512 est = group_sse_est(t, ne, c[i].enc, c[i].dec);
        __m512 err = _mm512_fmadd_ps(est, rel, abs_err);
        /* an estimate that overflowed (huge groups: d² beyond FLT_MAX) decides nothing */
        lo[i] = _mm512_mask_mov_ps(_mm512_sub_ps(est, err),
                                   _mm512_cmp_ps_mask(est, _mm512_set1_ps(FLT_MAX), _CMP_NLE_UQ),
                                   _mm512_set1_ps(-INFINITY));
        U = _mm512_mask_min_ps(U, distinct[i], U, _mm512_add_ps(est, err));
    }
    __m512d b_lo = _mm512_set1_pd(INFINITY), b_hi = b_lo;
    *g = *gmax;
    for (int i = 0; i < nc; i++) {
        if (!distinct[i]) continue;
        /* NaN lanes (non-finite groups) compare false: their scale is replaced later */
        __mmask16 need = distinct[i] & _mm512_cmp_ps_mask(lo[i], U, _CMP_LE_OQ);
        if (!need) continue;
        __m512d s_lo, s_hi;
        group_sse(t, n, c[i].enc, c[i].dec, &s_lo, &s_hi);
        __mmask16 better = need & sse_less(s_lo, s_hi, b_lo, b_hi);
        b_lo = _mm512_mask_mov_pd(b_lo, (__mmask8)better, s_lo);
        b_hi = _mm512_mask_mov_pd(b_hi, (__mmask8)(better >> 8), s_hi);
        g->stored = _mm512_mask_mov_epi32(g->stored, better, c[i].stored);
        g->enc = _mm512_mask_mov_ps(g->enc, better, c[i].enc);
        g->dec = _mm512_mask_mov_ps(g->dec, better, c[i].dec);
    }
}

static void choose_cont(const qk *q, const float *t, int64_t n, int nb, __m512i amax_bits, gscale *g) {
    const hs_rule rule = q->s->rule;
    __m512 a = _mm512_castsi512_ps(amax_bits);
    const float mx = 6.0f;
    gscale gmax;
    cont_scale(q, a, mx, &gmax);
    *g = gmax;
    if (rule == HS_RULE_HALF) {
        cont_scale(q, a, 2.0f * mx, g);
    } else if (rule == HS_RULE_MSE) {
        cont_mse(q, t, n, a, &gmax, g);
    } else if (rule == HS_RULE_HALFS || rule == HS_RULE_4OVER6) {
        gscale h;
        cont_scale(q, a, rule == HS_RULE_HALFS ? 2.0f * mx : 4.0f, &h);
        __mmask16 differ = _mm512_cmpneq_epi32_mask(h.stored, gmax.stored);
        if (differ) {
            /* float estimates first (see group_sse_est); exact double sums on a close call */
            __mmask16 live = differ & _mm512_cmpneq_epi32_mask(amax_bits, _mm512_setzero_si512()) &
                             _mm512_cmplt_epi32_mask(amax_bits, _mm512_set1_epi32(0x7F800000));
            __mmask16 take;
            if (q->tile2d) { /* one group: the whole tile (the same candidates in every lane) */
                take = (live & 1) && tile_less(q, t, n, nb, h.enc, h.dec, gmax.enc, gmax.dec) ? differ : 0;
            } else {
            __mmask16 lt, far = sse_est_order(t, n, h.enc, h.dec, gmax.enc, gmax.dec, &lt);
            if ((__mmask16)(live & ~far) == 0) {
                take = differ & lt;
            } else {
                __m512d h_lo, h_hi, m_lo, m_hi;
                group_sse(t, n, h.enc, h.dec, &h_lo, &h_hi);
                group_sse(t, n, gmax.enc, gmax.dec, &m_lo, &m_hi);
                take = differ & sse_less(h_lo, h_hi, m_lo, m_hi);
            }
            }
            g->stored = _mm512_mask_mov_epi32(gmax.stored, take, h.stored);
            g->enc = _mm512_mask_mov_ps(gmax.enc, take, h.enc);
            g->dec = _mm512_mask_mov_ps(gmax.dec, take, h.dec);
        }
    }
    g->finite = _mm512_cmplt_epi32_mask(amax_bits, _mm512_set1_epi32(0x7F800000));
    g->halved = _mm512_cmp_ps_mask(g->dec, gmax.dec, _CMP_LT_OQ) & g->finite;
    const __m512i nan_stored = q->s->scale_fmt == HS_SCALE_UE4M3 ? _mm512_set1_epi32(0x7F)
                                                                 : _mm512_set1_epi32(0x7FC00000);
    g->stored = _mm512_mask_mov_epi32(g->stored, (__mmask16)~g->finite, nan_stored);
}

/* ------------------------------------------------------------------ encoding and output */

/* Signed code of element vector v with the group's scale, placed at nibble j of each dword
 * (element j of 8 consecutive ones); 0 in non-finite lanes is applied by the caller. */
static inline __attribute__((always_inline)) __m512i
encode_vec(__m512 v, const gscale *g, int j, __m512i *b0, __m512i *b1, const int sr,
           const int prescale) {
    __m512 z = _mm512_mul_ps(v, g->enc);
    if (prescale) z = _mm512_mul_ps(z, _mm512_set1_ps(HS_SR_PRESCALE));
    __m512 a = _mm512_min_ps(abs_ps(z), _mm512_set1_ps(6.0f));
    __m512i code;
    if (!sr) {
        /* the code table, shifted to nibble j */
        const __m512i tab = _mm512_slli_epi32(
            _mm512_set_epi32(7, 6, 5, 4, 3, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0), 4 * j);
        __m512i idx = _mm512_subs_epu16(
            _mm512_srli_epi32(_mm512_castps_si512(e2m1_rne_mag(a)), 22), _mm512_set1_epi32(244));
        code = _mm512_permutexvar_epi32(idx, tab);
    } else {
        __m512 u = hs_sr_uniform16(*b0, *b1);
        const __m512i gam = _mm512_set1_epi64((long long)HS_RNG_GAMMA);
        *b0 = _mm512_add_epi64(*b0, gam);
        *b1 = _mm512_add_epi64(*b1, gam);
        __m512 ex = _mm512_min_ps(_mm512_max_ps(_mm512_getexp_ps(a), _mm512_setzero_ps()),
                                  _mm512_set1_ps(2.0f));
        __m512 tt = _mm512_scalef_ps(a, _mm512_sub_ps(_mm512_set1_ps(1.0f), ex)); /* exact */
        __m512 fl = _mm512_roundscale_ps(tt, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
        __mmask16 up = _mm512_cmp_ps_mask(u, _mm512_sub_ps(tt, fl), _CMP_LT_OQ);
        __m512i c = _mm512_cvttps_epi32(_mm512_fmadd_ps(ex, _mm512_set1_ps(2.0f), fl));
        code = _mm512_slli_epi32(_mm512_mask_add_epi32(c, up, c, _mm512_set1_epi32(1)), 4 * j);
    }
    /* sign bit 31 of z to bit 3 + 4j */
    return _mm512_ternarylogic_epi32(code, _mm512_srli_epi32(_mm512_castps_si512(z), 28 - 4 * j),
                                     _mm512_set1_epi32((int)(8u << (4 * j))), 0xF8);
}

/* Encode t[i], i in [0, n) (t zero-padded to a multiple of 8), of the group starting at packed
 * column c_abs (a multiple of 8) into dwords ob[i/8][16]: lane l's dword holds its elements
 * i..i+7 as 4 code bytes (element 2p in the low nibble of byte p). */
static inline __attribute__((always_inline)) void
encode_group_impl(const qk *q, const float *t, int64_t n, int64_t c_abs, int64_t r0,
                  const gscale *g, uint8_t *ob, const int sr, const int prescale) {
    __m512i b0 = _mm512_setzero_si512(), b1 = _mm512_setzero_si512();
    if (sr) {
        /* key + (idx + 1)·γ with idx = (r0 + l)·C + c_abs: per lane, then + γ per element */
        uint64_t b[16];
        for (int l = 0; l < 16; l++)
            b[l] = q->key + ((uint64_t)(r0 + l) * (uint64_t)q->C + (uint64_t)c_abs + 1) * HS_RNG_GAMMA;
        b0 = _mm512_loadu_si512(b);
        b1 = _mm512_loadu_si512(b + 8);
    }
    for (int64_t i = 0; i < n; i += 8) {
        const float *ti = t + i * LANES;
        __m512i c0 = encode_vec(_mm512_load_ps(ti + 0 * LANES), g, 0, &b0, &b1, sr, prescale);
        __m512i c1 = encode_vec(_mm512_load_ps(ti + 1 * LANES), g, 1, &b0, &b1, sr, prescale);
        __m512i c2 = encode_vec(_mm512_load_ps(ti + 2 * LANES), g, 2, &b0, &b1, sr, prescale);
        __m512i c3 = encode_vec(_mm512_load_ps(ti + 3 * LANES), g, 3, &b0, &b1, sr, prescale);
        __m512i c4 = encode_vec(_mm512_load_ps(ti + 4 * LANES), g, 4, &b0, &b1, sr, prescale);
        __m512i c5 = encode_vec(_mm512_load_ps(ti + 5 * LANES), g, 5, &b0, &b1, sr, prescale);
        __m512i c6 = encode_vec(_mm512_load_ps(ti + 6 * LANES), g, 6, &b0, &b1, sr, prescale);
        __m512i c7 = encode_vec(_mm512_load_ps(ti + 7 * LANES), g, 7, &b0, &b1, sr, prescale);
        __m512i d = _mm512_or_si512(_mm512_ternarylogic_epi32(c0, c1, c2, 0xFE),
                                    _mm512_ternarylogic_epi32(c3, c4, c5, 0xFE));
        d = _mm512_ternarylogic_epi32(d, c6, c7, 0xFE);
        /* past the row's end (odd C): zero elements encode as 0 already */
        _mm512_store_si512(ob + (i >> 3) * 64, _mm512_maskz_mov_epi32(g->finite, d));
    }
}

/* The loop specialised for the rounding mode and pre-scale (no branch per element). */
static void encode_group(const qk *q, const float *t, int64_t n, int64_t c_abs, int64_t r0,
                         const gscale *g, uint8_t *ob /* at this group's first dword vector */) {
    if (!q->sr && !q->prescale) encode_group_impl(q, t, n, c_abs, r0, g, ob, 0, 0);
    else if (!q->prescale) encode_group_impl(q, t, n, c_abs, r0, g, ob, 1, 0);
    else if (q->sr) encode_group_impl(q, t, n, c_abs, r0, g, ob, 1, 1);
    else encode_group_impl(q, t, n, c_abs, r0, g, ob, 0, 1);
}

/* Transpose the code dwords ob[k][16] (k < nd) into packed rows r0 + l (l < nb): row bytes
 * [b0 + 4k, b0 + 4k + 4) = dword k of lane l; np bytes in all. */
static void store_codes(hs_packed *out, int64_t r0, int nb, int64_t b0, int64_t np, const uint8_t *ob) {
    const __m512i i01lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i i01hi = _mm512_add_epi32(i01lo, _mm512_set1_epi32(8));
    const __m512i q_lo = _mm512_set_epi64(11, 3, 10, 2, 9, 1, 8, 0);
    const __m512i q_hi = _mm512_add_epi64(q_lo, _mm512_set1_epi64(4));
    for (int64_t p0 = 0; p0 < np; p0 += 16) {
        int w = np - p0 < 16 ? (int)(np - p0) : 16;
        const uint8_t *src = ob + p0 * 16; /* 4 dword vectors (the unused ones are stale) */
        __m512i D0 = _mm512_load_si512(src), D1 = _mm512_load_si512(src + 64),
                D2 = _mm512_load_si512(src + 128), D3 = _mm512_load_si512(src + 192);
        __m512i a_lo = _mm512_permutex2var_epi32(D0, i01lo, D1), a_hi = _mm512_permutex2var_epi32(D0, i01hi, D1);
        __m512i b_lo = _mm512_permutex2var_epi32(D2, i01lo, D3), b_hi = _mm512_permutex2var_epi32(D2, i01hi, D3);
        __m512i o[4] = {_mm512_permutex2var_epi64(a_lo, q_lo, b_lo), _mm512_permutex2var_epi64(a_lo, q_hi, b_lo),
                        _mm512_permutex2var_epi64(a_hi, q_lo, b_hi), _mm512_permutex2var_epi64(a_hi, q_hi, b_hi)};
        uint8_t *dst = out->codes + r0 * out->code_stride + b0 + p0;
        if (w == 16 && nb == 16) {
            for (int k = 0; k < 4; k++) {
                _mm_storeu_si128((__m128i *)(dst + (4 * k + 0) * out->code_stride), _mm512_castsi512_si128(o[k]));
                _mm_storeu_si128((__m128i *)(dst + (4 * k + 1) * out->code_stride), _mm512_extracti32x4_epi32(o[k], 1));
                _mm_storeu_si128((__m128i *)(dst + (4 * k + 2) * out->code_stride), _mm512_extracti32x4_epi32(o[k], 2));
                _mm_storeu_si128((__m128i *)(dst + (4 * k + 3) * out->code_stride), _mm512_extracti32x4_epi32(o[k], 3));
            }
        } else {
            __mmask16 m = (__mmask16)((1u << w) - 1);
            uint8_t rowbuf[64] __attribute__((aligned(64)));
            for (int k = 0; k < 4; k++) {
                _mm512_store_si512(rowbuf, o[k]);
                for (int j = 0; j < 4 && 4 * k + j < nb; j++)
                    _mm_mask_storeu_epi8(dst + (4 * k + j) * out->code_stride, m,
                                         _mm_load_si128((const __m128i *)(rowbuf + 16 * j)));
            }
        }
    }
}

/* Write lane l's stored scale of group g for the packed rows of the band. */
static void store_scales(hs_packed *out, int64_t r0, int nb, int64_t g, __m512i stored) {
    uint32_t v[16];
    _mm512_storeu_si512(v, stored);
    if (out->spec.scale_fmt == HS_SCALE_FP32) {
        for (int l = 0; l < nb; l++) memcpy((float *)out->scales + (r0 + l) * out->groups_per_row + g, &v[l], 4);
    } else {
        for (int l = 0; l < nb; l++) ((uint8_t *)out->scales)[(r0 + l) * out->groups_per_row + g] = (uint8_t)v[l];
    }
}

/* Column-wise, one group per row: the whole tiles of nbands adjacent bands. */
void hs_qk_load_rows_t(const qk *q, int64_t r0, int nbands, float *tiles, int64_t tstride) {
    /* x rows i: nbands·64 contiguous bytes each, scattered to the bands' tiles */
    for (int64_t i = 0; i < q->C; i++) {
        const float *src = q->x + i * q->ld + r0;
        for (int64_t b = 0; b < nbands; b++) {
            int64_t rb = r0 + b * LANES;
            int nb = q->R - rb < LANES ? (int)(q->R - rb) : LANES;
            _mm512_store_ps(tiles + b * tstride + i * LANES,
                            _mm512_maskz_loadu_ps((__mmask16)((1u << nb) - 1), src + b * LANES));
        }
    }
    for (int64_t b = 0; b < nbands; b++) rht_tile(q, tiles + b * tstride, q->C);
}

/* A 16×16 tile's scale by the reference itself (rules whose statistic is a sum over the tile
 * for every tile: mse, halfs-sigma): the tile gathered in canonical order (row-major over the
 * source matrix x) and hs_scale_choose, broadcast to every lane. One call per 256 elements. */
static void tile_scale_ref(const qk *q, const float *t, int64_t w, int nb, gscale *g) {
    float tile[HS_QK_LANES * HS_QK_LANES];
    int64_t k = 0;
    if (!q->transpose) {
        for (int l = 0; l < nb; l++)
            for (int64_t j = 0; j < w; j++) tile[k++] = t[j * LANES + l];
    } else {
        for (int64_t j = 0; j < w; j++)
            for (int l = 0; l < nb; l++) tile[k++] = t[j * LANES + l];
    }
    hs_group_scale r = hs_scale_choose(q->s, tile, k, q->s_enc);
    g->enc = _mm512_set1_ps(r.enc_mul);
    g->dec = _mm512_set1_ps(r.dec_mul);
    g->stored = _mm512_set1_epi32((int)r.stored);
    g->halved = r.halved ? 0xFFFF : 0;
    g->finite = r.nonfinite ? 0 : 0xFFFF;
}

/* One band of packed rows r0 .. r0+nb−1, packed columns [cb, ce); returns the groups halved. */
int64_t hs_qk_band(const qk *q, hs_packed *out, int64_t r0, int nb, int64_t cb, int64_t ce,
                   float *t, uint8_t *ob, int preloaded) {
    const int64_t C = q->C, W = q->W;
    const __mmask16 lanes = (__mmask16)((1u << nb) - 1);
    int64_t halved = 0;
    /* the row tails past the last code byte stay zero (kernels may read whole blocks) */
    int64_t used = (C + 1) / 2;
    if (cb == 0)
        for (int l = 0; l < nb; l++)
            memset(out->codes + (r0 + l) * out->code_stride + used, 0, (size_t)(out->code_stride - used));
    for (int64_t c0 = cb; c0 < ce; c0 += q->chunk) {
        int64_t n = ce - c0 < q->chunk ? ce - c0 : q->chunk;
        if (!preloaded) load_tile(q, r0, nb, c0, n, t);
        for (int64_t i = n; i % 8; i++) _mm512_store_ps(t + i * LANES, _mm512_setzero_ps());
        int64_t np = (n + 1) / 2;
        for (int64_t off = 0; off < n; off += W) {
            int64_t gn = n - off < W ? n - off : W;
            const float *tg = t + off * LANES;
            __m512i amax = group_amax_bits(tg, gn);
            if (q->tile2d) {
                /* one scale per 16×16 tile: the max over the band's rows (lanes) */
                __m512i m = _mm512_maskz_mov_epi32(lanes, amax);
                amax = _mm512_set1_epi32(_mm512_reduce_max_epi32(m));
            }
            gscale g;
            if (q->tile2d && (q->s->rule == HS_RULE_MSE || q->s->rule == HS_RULE_HALFS_SIGMA))
                tile_scale_ref(q, tg, gn, nb, &g);
            else if (q->s->scale_fmt == HS_SCALE_E8M0) choose_e8m0(q, tg, gn, nb, amax, &g);
            else choose_cont(q, tg, gn, nb, amax, &g);
            if (q->tile2d) halved += (g.halved & 1) != 0; /* counted once per tile */
            else halved += __builtin_popcount((unsigned)(g.halved & lanes));
            store_scales(out, r0, nb, (c0 + off) / W, g.stored);
            encode_group(q, tg, gn, c0 + off, r0, &g, ob + (off / 8) * 64);
        }
        store_codes(out, r0, nb, c0 / 2, np, ob);
    }
    return halved;
}

/* Finite amax of one band (rotated), packed columns [cb, ce), for the NVFP4 tensor scale. A max
 * does not depend on the order it is taken in: without an RHT the band's values are read
 * straight from x (no tile). */
float hs_qk_band_finite_amax(const qk *q, int64_t r0, int nb, int64_t cb, int64_t ce, float *t) {
    __m512i m = _mm512_setzero_si512();
    const __m512i absm = _mm512_set1_epi32(0x7FFFFFFF), inf = _mm512_set1_epi32(0x7F800000);
#define AMAX(v)                                                                                    \
    do {                                                                                           \
        const __m512i b_ = _mm512_and_si512((v), absm);                                            \
        m = _mm512_mask_max_epi32(m, _mm512_cmplt_epi32_mask(b_, inf), m, b_);                     \
    } while (0)
    if (!q->rht) {
        if (q->transpose) { /* packed rows r0.. are x columns r0..: 16 floats of every x row */
            const __mmask16 lanes = (__mmask16)((1u << nb) - 1);
            for (int64_t i = cb; i < ce; i++)
                AMAX(_mm512_maskz_loadu_epi32(lanes, q->x + i * q->ld + r0));
        } else {
            const __mmask16 tail = (__mmask16)((1u << ((ce - cb) & 15)) - 1);
            for (int l = 0; l < nb; l++) {
                const float *row = q->x + (r0 + l) * q->ld;
                int64_t c = cb;
                for (; c + 16 <= ce; c += 16) AMAX(_mm512_loadu_si512(row + c));
                if (c < ce) AMAX(_mm512_maskz_loadu_epi32(tail, row + c));
            }
        }
    } else {
        for (int64_t c0 = cb; c0 < ce; c0 += q->chunk) {
            int64_t n = ce - c0 < q->chunk ? ce - c0 : q->chunk;
            load_tile(q, r0, nb, c0, n, t);
            for (int64_t i = 0; i < n; i++) AMAX(_mm512_load_si512(t + i * LANES));
        }
    }
#undef AMAX
    int32_t r = _mm512_reduce_max_epi32(m);
    float f;
    memcpy(&f, &r, 4);
    return f;
}


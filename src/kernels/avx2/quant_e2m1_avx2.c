/* quant_e2m1_avx2.c: the AVX2 table of the E2M1 band quantizer (kernels/quant_band.h, whose
 * driver is kernels/quant_band.c), for CPUs without AVX-512 — MXFP4 / fp4row (E8M0, every rule),
 * NVFP4 (UE4M3 two-level; max, half, halfs, 4over6) and FP32-scaled fp4 (max, half, halfs); RNE
 * and stochastic rounding; row-wise and column-wise; RHT fused. Byte-identical to
 * hs_quantize_ref (core/scale_rules.h states the arithmetic).
 *
 * The band data path at 8 lanes: bands of 8 packed rows, a tile t[i][8] per chunk of packed
 * columns (transposed 8×8 blocks for row-wise), everything vertical (lane = packed row = group).
 * What AVX-512 does in one instruction is spelled out here: exponents and significands from the
 * float bits (subnormal amax rescaled by 2^64 first), powers of two from bits, 64-bit multiplies
 * of the SR generator from 32-bit ones, the code table through vpshufb. Codes are gathered per
 * row with scalar dword copies. 2D 16×16 tiles (every rule): a band call covers 16 rows, two
 * half bands (band16_tiles says how a tile's scale is chosen), the encoding vectorised.
 * Not covered (generic kernel or reference): per-tensor groups, RNA/RTS, the continuous `mse`
 * on 1D groups, rows longer than 1 << 16.
 */
#include <float.h>
#include <immintrin.h>
#include <string.h>

#include "core/quant_common.h"
#include "core/rht_impl.h"
#include "core/scale_rules.h"
#include "halfs/rng.h"
#include "kernels/quant_band.h"
#include "kernels/quant_kernels.h"
#include "kernels/avx2/sr_uniform_avx2.h"
#include "kernels/avx2/transpose_avx2.h"

enum { LANES = 8 };

typedef hs_qk qk2;

/* code-dword vectors of one chunk in ob: one per 8 elements, rounded up to a multiple of 8 */
static inline int64_t ob_vectors(int64_t chunk) { return ((chunk + 7) / 8 + 7) / 8 * 8; }

/* ------------------------------------------------------------------ small helpers */
#define I2F(v) _mm256_castsi256_ps(v)
#define F2I(v) _mm256_castps_si256(v)

static inline __m256 abs8(__m256 v) { return I2F(_mm256_and_si256(F2I(v), _mm256_set1_epi32(0x7FFFFFFF))); }

/* 2^e for e in [−127, 127], exact (2^-127 is a subnormal). */
static inline __m256 pow2_8(__m256i e) {
    __m256i nrm = _mm256_slli_epi32(_mm256_add_epi32(e, _mm256_set1_epi32(127)), 23);
    __m256i sub = _mm256_set1_epi32(0x00400000);
    __m256i is_sub = _mm256_cmpgt_epi32(_mm256_set1_epi32(-126), e);
    return I2F(_mm256_blendv_epi8(nrm, sub, is_sub));
}

/* floor(log2 a) and the significand of a in [1, 2) for finite a > 0 (subnormals included). */
static inline void log2_parts(__m256 a, __m256i *f, __m256 *sig) {
    __m256i b = F2I(a);
    __m256i is_sub = _mm256_cmpeq_epi32(_mm256_srli_epi32(b, 23), _mm256_setzero_si256());
    __m256i b2 = F2I(_mm256_mul_ps(a, _mm256_set1_ps(0x1p64f))); /* exact rescale */
    __m256i bb = _mm256_blendv_epi8(b, b2, is_sub);
    __m256i ex = _mm256_sub_epi32(_mm256_srli_epi32(bb, 23), _mm256_set1_epi32(127));
    *f = _mm256_sub_epi32(ex, _mm256_and_si256(is_sub, _mm256_set1_epi32(64)));
    *sig = I2F(_mm256_or_si256(_mm256_and_si256(bb, _mm256_set1_epi32(0x007FFFFF)),
                               _mm256_set1_epi32(0x3F800000)));
}

/* |z| clamped to 6 (a ≥ 0), rounded RNE onto the E2M1 grid: (a + M) − M, M = 2^(22 + ex). */
static inline __m256 rne_mag8(__m256 a) {
    __m256i eb = _mm256_max_epi32(_mm256_and_si256(F2I(a), _mm256_set1_epi32(0x7F800000)),
                                  _mm256_set1_epi32(0x3F800000));
    __m256 magic = I2F(_mm256_add_epi32(eb, _mm256_set1_epi32(22 << 23)));
    return _mm256_sub_ps(_mm256_add_ps(a, magic), magic);
}


/* ------------------------------------------------------------------ tile */
static void rht_tile8(const qk2 *q, float *t, int64_t n) {
    if (!q->rht) return;
    const int d = q->rht;
    const __m256 nrm = _mm256_set1_ps(q->nrm);
    if (d == 16) { /* the NVFP4 recipe's size: the same operations on 16 vectors in registers */
        for (int64_t o = 0; o < n; o += 16) {
            float *b = t + o * LANES;
            __m256 v[16];
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++) v[i] = _mm256_mul_ps(_mm256_load_ps(b + i * LANES), _mm256_set1_ps(q->signs[i]));
#pragma GCC unroll 4
            for (int h = 1; h < 16; h *= 2)
#pragma GCC unroll 16
                for (int i = 0; i < 16; i += 2 * h)
#pragma GCC unroll 8
                    for (int j = i; j < i + h; j++) {
                        const __m256 a = v[j], c = v[j + h];
                        v[j] = _mm256_add_ps(a, c);
                        v[j + h] = _mm256_sub_ps(a, c);
                    }
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++) _mm256_store_ps(b + i * LANES, _mm256_mul_ps(v[i], nrm));
        }
        return;
    }
    for (int64_t o = 0; o < n; o += d) {
        float *b = t + o * LANES;
        for (int i = 0; i < d; i++)
            _mm256_store_ps(b + i * LANES, _mm256_mul_ps(_mm256_load_ps(b + i * LANES), _mm256_set1_ps(q->signs[i])));
        for (int h = 1; h < d; h *= 2)
            for (int i = 0; i < d; i += 2 * h)
                for (int j = i; j < i + h; j++) {
                    __m256 a = _mm256_load_ps(b + j * LANES), c = _mm256_load_ps(b + (j + h) * LANES);
                    _mm256_store_ps(b + j * LANES, _mm256_add_ps(a, c));
                    _mm256_store_ps(b + (j + h) * LANES, _mm256_sub_ps(a, c));
                }
        for (int i = 0; i < d; i++)
            _mm256_store_ps(b + i * LANES, _mm256_mul_ps(_mm256_load_ps(b + i * LANES), nrm));
    }
}

static void load_tile8(const qk2 *q, int64_t r0, int nb, int64_t c0, int64_t n, float *t) {
    if (q->transpose) {
        const __m256i lanemask = _mm256_cmpgt_epi32(_mm256_set1_epi32(nb), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        for (int64_t i = 0; i < n; i++)
            _mm256_store_ps(t + i * LANES, _mm256_maskload_ps(q->x + (c0 + i) * q->ld + r0, lanemask));
    } else {
        for (int64_t i0 = 0; i0 < n; i0 += 8) {
            int w = n - i0 < 8 ? (int)(n - i0) : 8;
            __m256 r[8];
            if (nb == 8 && w == 8) {
                for (int l = 0; l < 8; l++) r[l] = _mm256_loadu_ps(q->x + (r0 + l) * q->ld + c0 + i0);
                hs_transpose8x8_ps(r);
                for (int j = 0; j < 8; j++) _mm256_store_ps(t + (i0 + j) * LANES, r[j]);
            } else {
                for (int j = 0; j < w; j++)
                    for (int l = 0; l < 8; l++)
                        t[(i0 + j) * LANES + l] = l < nb ? q->x[(r0 + l) * q->ld + c0 + i0 + j] : 0.0f;
            }
        }
    }
    rht_tile8(q, t, n);
}

/* ------------------------------------------------------------------ errors */
static inline void sse_term8(__m256 v, __m256 enc, __m256 dec, int f32diff, __m256d *lo, __m256d *hi) {
    __m256 z = _mm256_mul_ps(v, enc);
    __m256 g = rne_mag8(_mm256_min_ps(abs8(z), _mm256_set1_ps(6.0f)));
    __m256 q = _mm256_or_ps(g, _mm256_and_ps(z, _mm256_set1_ps(-0.0f)));
    __m256 xh = _mm256_mul_ps(q, dec);
    __m256d d0, d1;
    if (f32diff) { /* Sterbenz: exact in float for E8M0 halfs candidates (see the AVX-512 file) */
        __m256 d = _mm256_sub_ps(v, xh);
        d0 = _mm256_cvtps_pd(_mm256_castps256_ps128(d));
        d1 = _mm256_cvtps_pd(_mm256_extractf128_ps(d, 1));
    } else {
        d0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), _mm256_cvtps_pd(_mm256_castps256_ps128(xh)));
        d1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), _mm256_cvtps_pd(_mm256_extractf128_ps(xh, 1)));
    }
    if (f32diff) { /* d² of a float is exact in double: one FMA = the reference's mul + add */
        *lo = _mm256_fmadd_pd(d0, d0, *lo);
        *hi = _mm256_fmadd_pd(d1, d1, *hi);
    } else {
        *lo = _mm256_add_pd(*lo, _mm256_mul_pd(d0, d0));
        *hi = _mm256_add_pd(*hi, _mm256_mul_pd(d1, d1));
    }
}

/* hs_group_sse for 8 lanes (t zero-padded to a multiple of 8); out[l] the lane's SSE. */
static void group_sse8(const float *t, int64_t n, __m256 enc, __m256 dec, int f32diff, double out[8]) {
    __m256d al[8], ah[8];
    for (int k = 0; k < 8; k++) al[k] = ah[k] = _mm256_setzero_pd();
    for (int64_t i = 0; i < n; i += 8)
        for (int k = 0; k < 8; k++) sse_term8(_mm256_load_ps(t + (i + k) * LANES), enc, dec, f32diff, &al[k], &ah[k]);
    __m256d lo = _mm256_add_pd(_mm256_add_pd(_mm256_add_pd(al[0], al[4]), _mm256_add_pd(al[2], al[6])),
                               _mm256_add_pd(_mm256_add_pd(al[1], al[5]), _mm256_add_pd(al[3], al[7])));
    __m256d hi = _mm256_add_pd(_mm256_add_pd(_mm256_add_pd(ah[0], ah[4]), _mm256_add_pd(ah[2], ah[6])),
                               _mm256_add_pd(_mm256_add_pd(ah[1], ah[5]), _mm256_add_pd(ah[3], ah[7])));
    _mm256_storeu_pd(out, lo);
    _mm256_storeu_pd(out + 4, hi);
}

/* Lanes (as an all-ones int mask) where sse a < sse b. */
static inline __m256i sse_less8(const double a[8], const double b[8]) {
    int32_t m[8];
    for (int l = 0; l < 8; l++) m[l] = a[l] < b[l] ? -1 : 0;
    return _mm256_loadu_si256((const __m256i *)m);
}

/* ------------------------------------------------------------------ scale choice */
typedef struct {
    __m256 enc, dec;
    __m256i stored, halved, finite; /* halved, finite: all-ones lanes */
} gs8;

static void choose_e8m0_8(const qk2 *q, const float *t, int64_t n, __m256i amax_bits, gs8 *g) {
    const hs_rule rule = q->s->rule;
    const __m256i emin = _mm256_set1_epi32(HS_E8M0_EMIN), one = _mm256_set1_epi32(1);
    __m256 a = I2F(amax_bits);
    __m256i zero = _mm256_cmpeq_epi32(amax_bits, _mm256_setzero_si256());
    __m256i f;
    __m256 sig;
    log2_parts(a, &f, &sig);
    __m256i notpow2 = F2I(_mm256_cmp_ps(sig, _mm256_set1_ps(1.0f), _CMP_NEQ_OQ));
    __m256i fm = _mm256_sub_epi32(f, _mm256_set1_epi32(2));
    __m256i e_ceil = _mm256_max_epi32(_mm256_sub_epi32(fm, notpow2), emin); /* notpow2 = −1 */
    __m256i e;
    switch (rule) {
    case HS_RULE_OCP: e = fm; break;
    case HS_RULE_CEIL: e = e_ceil; break;
    case HS_RULE_RCEIL: e = _mm256_sub_epi32(fm, F2I(_mm256_cmp_ps(sig, _mm256_set1_ps(1.5f), _CMP_GT_OQ))); break;
    case HS_RULE_EVEN: e = _mm256_sub_epi32(fm, F2I(_mm256_cmp_ps(sig, _mm256_set1_ps(1.75f), _CMP_GE_OQ))); break;
    case HS_RULE_HALF: e = _mm256_sub_epi32(e_ceil, one); break;
    case HS_RULE_HALFS: {
        __m256i eh = _mm256_sub_epi32(e_ceil, one), ehc = _mm256_max_epi32(eh, emin);
        double sc[8], sh[8];
        group_sse8(t, n, pow2_8(_mm256_sub_epi32(_mm256_setzero_si256(), e_ceil)), pow2_8(e_ceil), 1, sc);
        group_sse8(t, n, pow2_8(_mm256_sub_epi32(_mm256_setzero_si256(), ehc)), pow2_8(ehc), 1, sh);
        __m256i take = _mm256_and_si256(sse_less8(sh, sc), _mm256_cmpgt_epi32(eh, _mm256_set1_epi32(HS_E8M0_EMIN - 1)));
        e = _mm256_blendv_epi8(e_ceil, eh, take);
        break;
    }
    case HS_RULE_HALFS_SIGMA: {
        double l8[8][8] = {{0}};
        float tv[8];
        for (int64_t i = 0; i < n; i += 8) /* zero padding adds +0 */
            for (int k = 0; k < 8; k++) {
                _mm256_storeu_ps(tv, _mm256_load_ps(t + (i + k) * LANES));
                for (int l = 0; l < 8; l++) l8[l][k] += (double)tv[l] * (double)tv[l];
            }
        float av[8];
        _mm256_storeu_ps(av, a);
        int32_t tk[8];
        for (int l = 0; l < 8; l++) {
            double *L = l8[l];
            double ss = ((L[0] + L[4]) + (L[2] + L[6])) + ((L[1] + L[5]) + (L[3] + L[7]));
            double sigma = __builtin_sqrt(ss / (double)n), cs = 4.147 * sigma, ad = (double)av[l];
            double x1 = 0.5 * ad - cs, x2 = ad - cs;
            tk[l] = (x1 < 0 ? -x1 : x1) < (x2 < 0 ? -x2 : x2) ? 1 : 0;
        }
        e = _mm256_sub_epi32(e_ceil, _mm256_loadu_si256((const __m256i *)tk));
        break;
    }
    case HS_RULE_MSE: {
        e = e_ceil;
        double best[8], cur[8];
        group_sse8(t, n, pow2_8(_mm256_sub_epi32(_mm256_setzero_si256(), e_ceil)), pow2_8(e_ceil), 0, best);
        __m256i alive = _mm256_set1_epi32(-1);
        for (int k = 1; k <= 3; k++) {
            __m256i ek = _mm256_sub_epi32(e_ceil, _mm256_set1_epi32(k));
            alive = _mm256_and_si256(alive, _mm256_cmpgt_epi32(ek, _mm256_set1_epi32(HS_E8M0_EMIN - 1)));
            if (_mm256_testz_si256(alive, alive)) break;
            __m256i ekc = _mm256_max_epi32(ek, emin);
            group_sse8(t, n, pow2_8(_mm256_sub_epi32(_mm256_setzero_si256(), ekc)), pow2_8(ekc), 0, cur);
            int32_t al[8];
            _mm256_storeu_si256((__m256i *)al, alive);
            int32_t bt[8];
            for (int l = 0; l < 8; l++) {
                bt[l] = al[l] && cur[l] < best[l] ? -1 : 0;
                if (bt[l]) best[l] = cur[l];
            }
            e = _mm256_blendv_epi8(e, ek, _mm256_loadu_si256((const __m256i *)bt));
        }
        break;
    }
    default: e = e_ceil; break;
    }
    e = _mm256_max_epi32(e, emin);
    e = _mm256_blendv_epi8(e, emin, zero);
    g->finite = _mm256_cmpgt_epi32(_mm256_set1_epi32(0x7F800000), amax_bits);
    g->halved = _mm256_andnot_si256(zero, _mm256_and_si256(g->finite, _mm256_cmpgt_epi32(e_ceil, e)));
    g->stored = _mm256_blendv_epi8(_mm256_set1_epi32(0xFF), _mm256_add_epi32(e, _mm256_set1_epi32(127)), g->finite);
    g->enc = pow2_8(_mm256_sub_epi32(_mm256_setzero_si256(), e));
    g->dec = pow2_8(e);
}

/* hs_ue4m3_encode / decode for finite v ≥ 0 / codes in [1, 0x7E]. */
static inline __m256i ue4m3_enc8(__m256 v) {
    __m256i b = F2I(v);
    __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(b, 20), _mm256_set1_epi32(1));
    __m256i code = _mm256_sub_epi32(_mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(b, _mm256_set1_epi32(0x7FFFF)), lsb), 20),
                                    _mm256_set1_epi32(960));
    __m256i sub = _mm256_cvtps_epi32(_mm256_mul_ps(v, _mm256_set1_ps(512.0f)));
    code = _mm256_blendv_epi8(code, sub, F2I(_mm256_cmp_ps(v, _mm256_set1_ps(0x1p-6f), _CMP_LT_OQ)));
    code = _mm256_blendv_epi8(code, _mm256_set1_epi32(1), F2I(_mm256_cmp_ps(v, _mm256_set1_ps(0x1p-9f), _CMP_NGT_UQ)));
    code = _mm256_blendv_epi8(code, _mm256_set1_epi32(0x7E), F2I(_mm256_cmp_ps(v, _mm256_set1_ps(448.0f), _CMP_GE_OQ)));
    return _mm256_min_epi32(_mm256_max_epi32(code, _mm256_set1_epi32(1)), _mm256_set1_epi32(0x7E));
}
static inline __m256 ue4m3_dec8(__m256i c) {
    __m256 nrm = I2F(_mm256_slli_epi32(_mm256_add_epi32(c, _mm256_set1_epi32(960)), 20));
    __m256 sub = _mm256_mul_ps(_mm256_cvtepi32_ps(c), _mm256_set1_ps(0x1p-9f));
    return _mm256_blendv_ps(nrm, sub, I2F(_mm256_cmpgt_epi32(_mm256_set1_epi32(8), c)));
}

static void cont_scale8(const qk2 *q, __m256 tt, float T, gs8 *g) {
    __m256 X = _mm256_div_ps(tt, _mm256_set1_ps(T));
    if (q->s->scale_fmt == HS_SCALE_UE4M3) {
        __m256 senc = _mm256_set1_ps(q->s_enc);
        __m256i c = ue4m3_enc8(_mm256_mul_ps(X, senc));
        __m256 sb = ue4m3_dec8(c);
        g->stored = c;
        g->enc = _mm256_div_ps(senc, sb);
        g->dec = _mm256_div_ps(sb, senc);
    } else {
        X = _mm256_blendv_ps(X, _mm256_set1_ps(FLT_MIN), _mm256_cmp_ps(X, _mm256_set1_ps(FLT_MIN), _CMP_NGE_UQ));
        g->stored = F2I(X);
        g->enc = _mm256_div_ps(_mm256_set1_ps(1.0f), X);
        g->dec = X;
    }
}

static void choose_cont8(const qk2 *q, const float *t, int64_t n, __m256i amax_bits, gs8 *g) {
    const hs_rule rule = q->s->rule;
    __m256 a = I2F(amax_bits);
    gs8 gmax;
    cont_scale8(q, a, 6.0f, &gmax);
    *g = gmax;
    if (rule == HS_RULE_HALF) {
        cont_scale8(q, a, 12.0f, g);
    } else if (rule == HS_RULE_HALFS || rule == HS_RULE_4OVER6) {
        gs8 h;
        cont_scale8(q, a, rule == HS_RULE_HALFS ? 12.0f : 4.0f, &h);
        __m256i differ = _mm256_xor_si256(_mm256_cmpeq_epi32(h.stored, gmax.stored), _mm256_set1_epi32(-1));
        if (!_mm256_testz_si256(differ, differ)) {
            double sh[8], sm[8];
            group_sse8(t, n, h.enc, h.dec, 0, sh);
            group_sse8(t, n, gmax.enc, gmax.dec, 0, sm);
            __m256i take = _mm256_and_si256(differ, sse_less8(sh, sm));
            g->stored = _mm256_blendv_epi8(gmax.stored, h.stored, take);
            g->enc = _mm256_blendv_ps(gmax.enc, h.enc, I2F(take));
            g->dec = _mm256_blendv_ps(gmax.dec, h.dec, I2F(take));
        }
    }
    g->finite = _mm256_cmpgt_epi32(_mm256_set1_epi32(0x7F800000), amax_bits);
    g->halved = _mm256_and_si256(F2I(_mm256_cmp_ps(g->dec, gmax.dec, _CMP_LT_OQ)), g->finite);
    __m256i nan_stored = q->s->scale_fmt == HS_SCALE_UE4M3 ? _mm256_set1_epi32(0x7F) : _mm256_set1_epi32(0x7FC00000);
    g->stored = _mm256_blendv_epi8(nan_stored, g->stored, g->finite);
}

/* ------------------------------------------------------------------ encode */
static inline __m256i encode8(const qk2 *q, __m256 v, const gs8 *g, __m256i *b0, __m256i *b1) {
    __m256 z = _mm256_mul_ps(v, g->enc);
    if (q->prescale) z = _mm256_mul_ps(z, _mm256_set1_ps(HS_SR_PRESCALE));
    __m256 a = _mm256_min_ps(abs8(z), _mm256_set1_ps(6.0f));
    __m256i code;
    if (!q->sr) {
        /* code of the grid value through its bits: 0.5, 1, ..., 6 → 8, 10..15 (0 → 0) */
        const __m256i tab = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2, 3, 4, 5, 6, 7,
                                             0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2, 3, 4, 5, 6, 7);
        __m256i idx = _mm256_subs_epu16(_mm256_srli_epi32(F2I(rne_mag8(a)), 22), _mm256_set1_epi32(244));
        code = _mm256_shuffle_epi8(tab, idx); /* bytes 1..3 index 0 → 0 */
    } else {
        __m256 u = hs_sr_uniform8(*b0, *b1);
        const __m256i gam = _mm256_set1_epi64x((long long)HS_RNG_GAMMA);
        *b0 = _mm256_add_epi64(*b0, gam);
        *b1 = _mm256_add_epi64(*b1, gam);
        /* ex = clamp(floor(log2 a), 0, 2) from the exponent bits; t = a·2^(1−ex) exact */
        __m256i exi = _mm256_sub_epi32(_mm256_srli_epi32(F2I(a), 23), _mm256_set1_epi32(127));
        exi = _mm256_min_epi32(_mm256_max_epi32(exi, _mm256_setzero_si256()), _mm256_set1_epi32(2));
        __m256 tt = _mm256_mul_ps(a, I2F(_mm256_slli_epi32(_mm256_sub_epi32(_mm256_set1_epi32(128), exi), 23)));
        __m256 fl = _mm256_floor_ps(tt);
        __m256i up = F2I(_mm256_cmp_ps(u, _mm256_sub_ps(tt, fl), _CMP_LT_OQ));
        code = _mm256_sub_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(fl), _mm256_slli_epi32(exi, 1)), up);
    }
    code = _mm256_or_si256(code, _mm256_and_si256(_mm256_srli_epi32(F2I(z), 28), _mm256_set1_epi32(8)));
    return _mm256_and_si256(code, g->finite);
}

/* Encode the group tg[i][8], i < gn (tg zero-padded to a multiple of 8), packed columns from
 * c_abs, of packed rows r0..: the codes of elements i..i+7 as one dword per lane (element j at
 * nibble j, 4 code bytes of that row) into ob[i/8]. */
static void encode_group8(const qk2 *q, int64_t r0, const float *tg, int64_t gn, int64_t c_abs,
                          const gs8 *g, __m256i *ob) {
    __m256i b0 = _mm256_setzero_si256(), b1 = _mm256_setzero_si256();
    if (q->sr) {
        uint64_t bb[8];
        for (int l = 0; l < 8; l++)
            bb[l] = q->key + ((uint64_t)(r0 + l) * (uint64_t)q->C + (uint64_t)c_abs + 1) * HS_RNG_GAMMA;
        b0 = _mm256_loadu_si256((const __m256i *)bb);
        b1 = _mm256_loadu_si256((const __m256i *)(bb + 4));
    }
    for (int64_t i = 0; i < gn; i += 8) {
        __m256i d = _mm256_setzero_si256();
        for (int j = 0; j < 8; j++) /* element j of 8 → nibble j of the lane's dword */
            d = _mm256_or_si256(d, _mm256_sllv_epi32(encode8(q, _mm256_load_ps(tg + (i + j) * LANES), g, &b0, &b1),
                                                     _mm256_set1_epi32(4 * j)));
        _mm256_store_si256(ob + i / 8, d);
    }
}

/* The chunk's code dwords ob[0 .. ceil(n/8)) back to rows: 8 vectors at a time transposed
 * (row l gets 8 dwords, 32 code bytes), stored to packed rows r0 .. r0+nb−1 from byte byte0;
 * np = ceil(n/2) bytes per row, never more. */
static void store_codes8(hs_packed *out, int64_t r0, int nb, int64_t byte0, int64_t np, __m256i *ob) {
    const int64_t nv = (np + 3) / 4;
    for (int64_t v = nv; v % 8; v++) ob[v] = _mm256_setzero_si256();
    for (int64_t v0 = 0; v0 < nv; v0 += 8) {
        __m256 r[8];
        for (int k = 0; k < 8; k++) r[k] = _mm256_castsi256_ps(_mm256_load_si256(ob + v0 + k));
        hs_transpose8x8_ps(r);
        const int64_t nbytes = np - v0 * 4 < 32 ? np - v0 * 4 : 32;
        for (int l = 0; l < nb; l++) {
            uint8_t *dst = out->codes + (r0 + l) * out->code_stride + byte0 + v0 * 4;
            if (nbytes == 32) _mm256_storeu_ps((float *)dst, r[l]);
            else {
                uint8_t tmp[32];
                _mm256_storeu_ps((float *)tmp, r[l]);
                memcpy(dst, tmp, (size_t)nbytes);
            }
        }
    }
}

static void store_scale8(hs_packed *out, int64_t r, int64_t gi, uint32_t st) {
    if (out->spec.scale_fmt == HS_SCALE_FP32) memcpy((float *)out->scales + r * out->groups_per_row + gi, &st, 4);
    else ((uint8_t *)out->scales)[r * out->groups_per_row + gi] = (uint8_t)st;
}

/* One band, packed columns [cb, ce); returns groups halved. t: (chunk + 8) × 8 floats,
 * aligned, or (preloaded) the band's whole-row tile; ob: ob_bytes(chunk) of code scratch. */
static int64_t band8(const qk2 *q, hs_packed *out, int64_t r0, int nb, int64_t cb, int64_t ce,
                     float *t, __m256i *ob, int preloaded) {
    const int64_t C = q->C, W = q->W;
    int64_t halved = 0, used = (C + 1) / 2;
    if (cb == 0)
        for (int l = 0; l < nb; l++)
            memset(out->codes + (r0 + l) * out->code_stride + used, 0, (size_t)(out->code_stride - used));
    for (int64_t c0 = cb; c0 < ce; c0 += q->chunk) {
        int64_t n = ce - c0 < q->chunk ? ce - c0 : q->chunk;
        if (!preloaded) load_tile8(q, r0, nb, c0, n, t);
        for (int64_t i = n; i % 8; i++) _mm256_store_ps(t + i * LANES, _mm256_setzero_ps());
        for (int64_t off = 0; off < n; off += W) {
            int64_t gn = n - off < W ? n - off : W;
            const float *tg = t + off * LANES;
            __m256i amax = _mm256_setzero_si256();
            for (int64_t i = 0; i < gn; i++)
                amax = _mm256_max_epi32(amax, _mm256_and_si256(_mm256_load_si256((const __m256i *)(tg + i * LANES)),
                                                               _mm256_set1_epi32(0x7FFFFFFF)));
            gs8 g;
            if (q->s->scale_fmt == HS_SCALE_E8M0) choose_e8m0_8(q, tg, gn, amax, &g);
            else choose_cont8(q, tg, gn, amax, &g);
            uint32_t st[8], hv[8];
            _mm256_storeu_si256((__m256i *)st, g.stored);
            _mm256_storeu_si256((__m256i *)hv, g.halved);
            int64_t gi = (c0 + off) / W;
            for (int l = 0; l < nb; l++) {
                halved += hv[l] != 0;
                store_scale8(out, r0 + l, gi, st[l]);
            }
            encode_group8(q, r0, tg, gn, c0 + off, &g, ob + off / 8);
        }
        store_codes8(out, r0, nb, c0 / 2, (n + 1) / 2, ob);
    }
    return halved;
}

/* 2D 16×16 tiles (block 16), packed columns [cb, ce): a tile spans two 8-row half bands, loaded
 * into t and t + (chunk + 8)·8. Rules whose scale is a function of the amax alone (max, half; the
 * E8M0 ocp .. half) take the tile's amax, a max over both halves broadcast to every lane, into the
 * 8-lane scale code. The others (halfs, 4over6, mse, halfs-sigma: sums over the tile) call the
 * reference's own hs_scale_choose on the tile gathered in canonical order (row-major over the
 * source matrix x): one call per 256 elements, the reference's decision by construction. The
 * elements are encoded 8 lanes at a time. Returns the tiles halved. */
static int64_t band16_tiles(const qk2 *q, hs_packed *out, int64_t r0, int nb, int64_t cb,
                            int64_t ce, float *t, __m256i *ob) {
    const int64_t C = q->C;
    const int nbh[2] = {nb < LANES ? nb : LANES, nb > LANES ? nb - LANES : 0};
    float *th[2] = {t, t + (q->chunk + 8) * LANES};
    __m256i *obh[2] = {ob, ob + ob_vectors(q->chunk)};
    /* rules whose scale is a function of the amax alone: the 8-lane scale code on the tile amax */
    const hs_rule rule = q->s->rule;
    const int amax_only = q->s->scale_fmt == HS_SCALE_E8M0
                              ? rule == HS_RULE_OCP || rule == HS_RULE_CEIL || rule == HS_RULE_RCEIL ||
                                    rule == HS_RULE_EVEN || rule == HS_RULE_HALF
                              : rule == HS_RULE_MAX || rule == HS_RULE_HALF;
    int64_t halved = 0, used = (C + 1) / 2;
    if (cb == 0)
        for (int l = 0; l < nb; l++)
            memset(out->codes + (r0 + l) * out->code_stride + used, 0, (size_t)(out->code_stride - used));
    for (int64_t c0 = cb; c0 < ce; c0 += q->chunk) {
        int64_t n = ce - c0 < q->chunk ? ce - c0 : q->chunk;
        for (int h = 0; h < 2; h++) {
            if (nbh[h]) load_tile8(q, r0 + h * LANES, nbh[h], c0, n, th[h]);
            else memset(th[h], 0, (size_t)n * LANES * sizeof(float));
            for (int64_t i = n; i % 8; i++) _mm256_store_ps(th[h] + i * LANES, _mm256_setzero_ps());
        }
        for (int64_t off = 0; off < n; off += 16) {
            int64_t w = n - off < 16 ? n - off : 16;
            gs8 g;
            uint32_t stored;
            if (amax_only) { /* the tile's amax (zero lanes and padding add nothing), broadcast */
                __m256i m = _mm256_setzero_si256();
                for (int h = 0; h < 2; h++)
                    for (int64_t j = 0; j < w; j++)
                        m = _mm256_max_epi32(m, _mm256_and_si256(_mm256_load_si256((const __m256i *)(th[h] + (off + j) * LANES)),
                                                                 _mm256_set1_epi32(0x7FFFFFFF)));
                m = _mm256_max_epi32(m, _mm256_permute2x128_si256(m, m, 1));
                m = _mm256_max_epi32(m, _mm256_shuffle_epi32(m, 0x4E));
                m = _mm256_max_epi32(m, _mm256_shuffle_epi32(m, 0xB1));
                if (q->s->scale_fmt == HS_SCALE_E8M0) choose_e8m0_8(q, NULL, 0, m, &g);
                else choose_cont8(q, NULL, 0, m, &g);
                halved += _mm256_extract_epi32(g.halved, 0) != 0;
                stored = (uint32_t)_mm256_extract_epi32(g.stored, 0);
            } else {
                float tile[256]; /* nb × w, canonical order */
                int64_t k = 0;
                if (!q->transpose) {
                    for (int l = 0; l < nb; l++)
                        for (int64_t j = 0; j < w; j++) tile[k++] = th[l / LANES][(off + j) * LANES + l % LANES];
                } else {
                    for (int64_t j = 0; j < w; j++)
                        for (int l = 0; l < nb; l++) tile[k++] = th[l / LANES][(off + j) * LANES + l % LANES];
                }
                hs_group_scale gsc = hs_scale_choose(q->s, tile, k, q->s_enc);
                halved += gsc.halved;
                g.enc = _mm256_set1_ps(gsc.enc_mul);
                g.dec = _mm256_set1_ps(gsc.dec_mul);
                g.stored = _mm256_set1_epi32((int)gsc.stored);
                g.halved = _mm256_set1_epi32(gsc.halved ? -1 : 0);
                g.finite = _mm256_set1_epi32(gsc.nonfinite ? 0 : -1);
                stored = gsc.stored;
            }
            int64_t gi = (c0 + off) / 16;
            for (int l = 0; l < nb; l++) store_scale8(out, r0 + l, gi, stored); /* per row */
            for (int h = 0; h < 2; h++)
                if (nbh[h])
                    encode_group8(q, r0 + h * LANES, th[h] + off * LANES, w, c0 + off, &g, obh[h] + off / 8);
        }
        for (int h = 0; h < 2; h++)
            if (nbh[h]) store_codes8(out, r0 + h * LANES, nbh[h], c0 / 2, (n + 1) / 2, obh[h]);
    }
    return halved;
}

/* Finite amax of one band (rotated), packed columns [cb, ce), for the NVFP4 tensor scale. A max
 * does not depend on the order it is taken in: without an RHT the band's values are read
 * straight from x (no tile). */
static float band8_finite_amax(const qk2 *q, int64_t r0, int nb, int64_t cb, int64_t ce, float *t) {
    __m256i m = _mm256_setzero_si256();
#define AMAX(v)                                                                                    \
    do {                                                                                           \
        const __m256i b_ = _mm256_and_si256((v), _mm256_set1_epi32(0x7FFFFFFF));                   \
        const __m256i fin_ = _mm256_cmpgt_epi32(_mm256_set1_epi32(0x7F800000), b_);                \
        m = _mm256_max_epi32(m, _mm256_and_si256(b_, fin_));                                       \
    } while (0)
    if (!q->rht) {
        if (q->transpose) { /* packed rows r0.. are x columns r0..: 8 floats of every x row */
            const __m256i lanes =
                _mm256_cmpgt_epi32(_mm256_set1_epi32(nb), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
            for (int64_t i = cb; i < ce; i++)
                AMAX(_mm256_maskload_epi32((const int *)(q->x + i * q->ld + r0), lanes));
        } else {
            const __m256i tail = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)((ce - cb) & 7)),
                                                    _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
            for (int l = 0; l < nb; l++) {
                const float *row = q->x + (r0 + l) * q->ld;
                int64_t c = cb;
                for (; c + 8 <= ce; c += 8) AMAX(_mm256_loadu_si256((const __m256i *)(row + c)));
                if (c < ce) AMAX(_mm256_maskload_epi32((const int *)(row + c), tail));
            }
        }
    } else {
        for (int64_t c0 = cb; c0 < ce; c0 += q->chunk) {
            int64_t n = ce - c0 < q->chunk ? ce - c0 : q->chunk;
            load_tile8(q, r0, nb, c0, n, t);
            for (int64_t i = 0; i < n; i++) AMAX(_mm256_load_si256((const __m256i *)(t + i * LANES)));
        }
    }
#undef AMAX
    int32_t v[8], r = 0;
    _mm256_storeu_si256((__m256i *)v, m);
    for (int l = 0; l < 8; l++) r = v[l] > r ? v[l] : r;
    float f;
    memcpy(&f, &r, 4);
    return f;
}

int hs_quantize_e2m1_avx2_covers(const hs_quant_spec *s, int64_t C) {
    if (s->elem != HS_ELEM_E2M1) return 0;
    if (s->tile2d) /* every rule: the tile's scale is the reference's hs_scale_choose */
        return s->tile2d == 16 && s->group == HS_GROUP_BLOCK && s->block == 16 &&
               (s->rounding == HS_ROUND_RNE || s->rounding == HS_ROUND_SR) &&
               (s->scale_fmt == HS_SCALE_E8M0 || s->scale_fmt == HS_SCALE_UE4M3 ||
                s->scale_fmt == HS_SCALE_FP32) &&
               (!s->rht || (s->rht >= 16 && s->rht <= 128 && !(s->rht & (s->rht - 1)) && C % s->rht == 0));
    if (s->rounding != HS_ROUND_RNE && s->rounding != HS_ROUND_SR) return 0;
    if (s->group != HS_GROUP_BLOCK && s->group != HS_GROUP_ROW) return 0;
    if (s->group == HS_GROUP_BLOCK && (s->block < 16 || s->block > 128 || HS_QK_CHUNK % s->block)) return 0;
    if (s->group == HS_GROUP_ROW && C > HS_QK_ROW_MAX) return 0;
    if (s->rht && (s->rht < 16 || s->rht > 128 || (s->rht & (s->rht - 1)) || C % s->rht)) return 0;
    if (s->scale_fmt == HS_SCALE_E8M0) return 1;
    if (s->scale_fmt != HS_SCALE_UE4M3 && s->scale_fmt != HS_SCALE_FP32) return 0;
    if (s->rule == HS_RULE_4OVER6) return s->scale_fmt == HS_SCALE_UE4M3;
    return s->rule == HS_RULE_MAX || s->rule == HS_RULE_HALF || s->rule == HS_RULE_HALFS;
}

/* Column-wise, one group per row: the whole tiles of nbands adjacent bands, each x row read
 * once (nbands·8 contiguous floats), then the RHT. */
static void load_rows_t8(const qk2 *q, int64_t r0, int nbands, float *tiles, int64_t tstride) {
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int64_t i = 0; i < q->C; i++) {
        const float *src = q->x + i * q->ld + r0;
        for (int64_t b = 0; b < nbands; b++) {
            int64_t rb = r0 + b * LANES;
            int nb = q->R - rb < LANES ? (int)(q->R - rb) : LANES;
            __m256 v = nb == LANES ? _mm256_loadu_ps(src + b * LANES)
                                   : _mm256_maskload_ps(src + b * LANES, _mm256_cmpgt_epi32(_mm256_set1_epi32(nb), idx));
            _mm256_store_ps(tiles + b * tstride + i * LANES, v);
        }
    }
    for (int64_t b = 0; b < nbands; b++) rht_tile8(q, tiles + b * tstride, q->C);
}

static int64_t band(const qk2 *q, hs_packed *out, int64_t r0, int nb, int64_t cb, int64_t ce,
                    float *t, uint8_t *ob, int preloaded) {
    __m256i *o = (__m256i *)(void *)ob;
    return q->tile2d ? band16_tiles(q, out, r0, nb, cb, ce, t, o) : band8(q, out, r0, nb, cb, ce, t, o, preloaded);
}

/* ob: the code dwords of a chunk, rounded up to whole 8-vector transposes, twice (2D tiles'
 * two half bands) */
static size_t ob_bytes(int64_t chunk) { return 2 * (size_t)ob_vectors(chunk) * sizeof(__m256i); }

const hs_qband_ops hs_qband_ops_avx2 = {
    .lanes = LANES,
    .covers = hs_quantize_e2m1_avx2_covers,
    .band = band,
    .finite_amax = band8_finite_amax,
    .load_rows_t = load_rows_t8,
    .ob_bytes = ob_bytes,
};

hs_status hs_quantize_e2m1_avx2(const hs_quant_spec *s, const float *x, int64_t rows, int64_t cols,
                                int64_t ld, int transpose, hs_packed *out) {
    return hs_qband_quantize(&hs_qband_ops_avx2, s, x, rows, cols, ld, transpose, out);
}

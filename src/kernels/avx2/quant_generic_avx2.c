/* quant_generic_avx2.c: AVX2 vector operations of the generic quantizer / dequantizer
 * (kernels/quant_generic.h, driver in kernels/quant_generic.c) — E4M3, E5M2, INT4, INT8 with E8M0 or
 * FP32 scales, BF16 and FP32 rows, and the E2M1 specs the E2M1 kernels decline (at this level:
 * RNA/RTS, per-tensor groups, the continuous `mse` on 1D groups, rows over 65 536) — plus the
 * AVX2 dequantizer of every packed format, E2M1 included. Byte-identical to hs_quantize_ref /
 * hs_dequantize_ref; every spec the reference accepts is covered (nothing returns
 * HS_ERR_UNSUPPORTED for a well-formed call).
 *
 * Elements, 8 at a time in element order (quant_generic.h states the grid): z = fl(v·enc) (then
 * fl(z·0.75) with the SR pre-scale), a = min(|z|, max); e from the exponent bits (zero and
 * subnormal a give −127, below every emin), r = a·2^(mbits−e) exact; RNE rounds r with
 * vroundps (ties to even), RNA/RTS compare r − floor(r) with 0.5, SR with u from the
 * counter-based generator (SplitMix64 of key + (index+1)·γ in 64-bit lanes, the multiplies built
 * from 32-bit ones). Squared errors: (double)v − (double)fl(q·dec) squared and added into 8
 * double lanes, element i of the group into lane i mod 8 — the reference's order exactly.
 * Dequantize: 4-bit codes through two vpermps of the 16-entry value table, 8-bit codes through a
 * gather from the 256-entry table (both filled by hs_elem_value), times the group multiplier,
 * then · 4/3 for SR pre-scaled tensors — the reference's two roundings.
 */
#include <immintrin.h>
#include <string.h>

#include "core/scale_rules.h"
#include "halfs/codec.h"
#include "halfs/rng.h"
#include "kernels/quant_kernels.h"
#include "kernels/quant_generic.h"
#include "kernels/avx2/sr_uniform_avx2.h"
#include "kernels/avx2/transpose_avx2.h"

#define I2F(v) _mm256_castsi256_ps(v)
#define F2I(v) _mm256_castps_si256(v)

/* v[0..n) (n ≤ 8) as 8 lanes, zeros past n */
static inline __m256 load8(const float *v, int64_t n) {
    if (n >= 8) return _mm256_loadu_ps(v);
    const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    return _mm256_maskload_ps(v, m);
}

/* ------------------------------------------------------------------ load, amax, sums */
void hs_qg_load_t_avx2(const float *x, int64_t ld, int64_t r0, int nb, int64_t C, float *band) {
    int64_t c0 = 0;
    if (nb == 16 || nb == 8)
        for (; c0 + 8 <= C; c0 += 8)
            for (int i0 = 0; i0 < nb; i0 += 8) { /* 8 × 8 block: x rows c0.., columns r0+i0.. */
                __m256 r[8];
                for (int k = 0; k < 8; k++) r[k] = _mm256_loadu_ps(x + (c0 + k) * ld + r0 + i0);
                hs_transpose8x8_ps(r);
                float *d = band + (int64_t)i0 * C + c0;
                for (int k = 0; k < 8; k++) _mm256_storeu_ps(d + k * C, r[k]);
            }
    for (; c0 < C; c0++) {
        const float *src = x + c0 * ld + r0;
        for (int i = 0; i < nb; i++) band[i * C + c0] = src[i];
    }
}

static uint32_t amax_avx2(const float *v, int64_t n) {
    const __m256i absm = _mm256_set1_epi32(0x7FFFFFFF);
    __m256i m = _mm256_setzero_si256();
    for (int64_t i = 0; i < n; i += 8)
        m = _mm256_max_epu32(m, _mm256_and_si256(F2I(load8(v + i, n - i)), absm));
    uint32_t l[8], r = 0;
    _mm256_storeu_si256((__m256i *)l, m);
    for (int k = 0; k < 8; k++) r = l[k] > r ? l[k] : r;
    return r;
}

float hs_qg_finite_amax_avx2(const float *v, int64_t n) {
    const __m256i absm = _mm256_set1_epi32(0x7FFFFFFF), inf = _mm256_set1_epi32(0x7F800000);
    __m256i m = _mm256_setzero_si256();
    for (int64_t i = 0; i < n; i += 8) {
        __m256i b = _mm256_and_si256(F2I(load8(v + i, n - i)), absm);
        m = _mm256_max_epi32(m, _mm256_and_si256(b, _mm256_cmpgt_epi32(inf, b)));
    }
    int32_t l[8], r = 0;
    _mm256_storeu_si256((__m256i *)l, m);
    for (int k = 0; k < 8; k++) r = l[k] > r ? l[k] : r;
    float f;
    memcpy(&f, &r, 4);
    return f;
}

/* lanes l[0..8) combined as the reference: ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)) */
static inline double combine8(__m256d lo, __m256d hi) {
    double l[8];
    _mm256_storeu_pd(l, lo);
    _mm256_storeu_pd(l + 4, hi);
    return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
}

double hs_qg_sumsq_avx2(const float *v, int64_t n) {
    __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
    for (int64_t i = 0; i < n; i += 8) { /* zeros past n add +0 */
        __m256 x = load8(v + i, n - i);
        __m256d d0 = _mm256_cvtps_pd(_mm256_castps256_ps128(x)), d1 = _mm256_cvtps_pd(_mm256_extractf128_ps(x, 1));
        lo = _mm256_add_pd(lo, _mm256_mul_pd(d0, d0));
        hi = _mm256_add_pd(hi, _mm256_mul_pd(d1, d1));
    }
    return combine8(lo, hi);
}

/* ------------------------------------------------------------------ element grid */
/* a (≥ 0, ≤ max) on the format's grid: r = a / quantum (exact) and the quantum's exponent. */
static inline __m256 grid_r(const hs_qg_fmt *f, __m256 a, __m256i *e) {
    if (f->is_int) return a;
    __m256i ex = _mm256_sub_epi32(_mm256_srli_epi32(F2I(a), 23), _mm256_set1_epi32(127));
    *e = _mm256_max_epi32(ex, _mm256_set1_epi32(f->emin));
    /* 2^(mbits − e): e − mbits ∈ [−16, 13], a normal float */
    __m256i sc = _mm256_slli_epi32(_mm256_sub_epi32(_mm256_set1_epi32(127 + f->mbits), *e), 23);
    return _mm256_mul_ps(a, I2F(sc));
}

static double sse_avx2(const hs_qg_fmt *f, const float *v, int64_t n, float enc, float dec) {
    const __m256 ve = _mm256_set1_ps(enc), vd = _mm256_set1_ps(dec), mx = _mm256_set1_ps(f->max);
    const __m256 sgn = _mm256_set1_ps(-0.0f);
    __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
    for (int64_t i = 0; i < n; i += 8) {
        __m256 x = load8(v + i, n - i);
        __m256 z = _mm256_mul_ps(x, ve);
        __m256 a = _mm256_min_ps(_mm256_andnot_ps(sgn, z), mx);
        __m256i e = _mm256_setzero_si256();
        __m256 r = _mm256_round_ps(grid_r(f, a, &e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m256 val = r; /* the RNE code's value: r · quantum */
        if (!f->is_int)
            val = _mm256_mul_ps(r, I2F(_mm256_slli_epi32(_mm256_add_epi32(e, _mm256_set1_epi32(127 - f->mbits)), 23)));
        __m256 xh = _mm256_mul_ps(_mm256_or_ps(val, _mm256_and_ps(z, sgn)), vd);
        __m256d d0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(x)), _mm256_cvtps_pd(_mm256_castps256_ps128(xh)));
        __m256d d1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(x, 1)), _mm256_cvtps_pd(_mm256_extractf128_ps(xh, 1)));
        lo = _mm256_add_pd(lo, _mm256_mul_pd(d0, d0));
        hi = _mm256_add_pd(hi, _mm256_mul_pd(d1, d1));
    }
    return combine8(lo, hi);
}
/* hs_rng_uniform_key for 8 lanes: b0, b1 hold key + (index + 1)·γ of lanes 0..3, 4..7 */

/* codes of 8 elements as dwords (hs_elem_encode) */
static inline __m256i codes8(const hs_qg_fmt *f, __m256 x, __m256 ve, __m256 u) {
    const __m256 sgn = _mm256_set1_ps(-0.0f);
    __m256 z = _mm256_mul_ps(x, ve);
    if (f->prescale) z = _mm256_mul_ps(z, _mm256_set1_ps(HS_SR_PRESCALE));
    __m256 a = _mm256_min_ps(_mm256_andnot_ps(sgn, z), _mm256_set1_ps(f->max));
    __m256i e = _mm256_setzero_si256();
    __m256 r = grid_r(f, a, &e);
    __m256 n;
    if (f->rounding == HS_ROUND_RNE) {
        n = _mm256_round_ps(r, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    } else {
        __m256 fl = _mm256_floor_ps(r), fr = _mm256_sub_ps(r, fl); /* exact */
        __m256 up = f->rounding == HS_ROUND_RNA   ? _mm256_cmp_ps(fr, _mm256_set1_ps(0.5f), _CMP_GE_OQ)
                    : f->rounding == HS_ROUND_RTS ? _mm256_cmp_ps(fr, _mm256_set1_ps(0.5f), _CMP_GT_OQ)
                                                  : _mm256_cmp_ps(u, fr, _CMP_LT_OQ);
        n = _mm256_add_ps(fl, _mm256_and_ps(up, _mm256_set1_ps(1.0f)));
    }
    __m256i mag = _mm256_cvttps_epi32(n);
    __m256i neg = _mm256_srai_epi32(F2I(z), 31);
    if (f->is_int) /* ±n in two's complement, then the element's bits */
        return _mm256_and_si256(_mm256_sub_epi32(_mm256_xor_si256(mag, neg), neg), _mm256_set1_epi32(f->bits == 4 ? 0xF : 0xFF));
    mag = _mm256_add_epi32(_mm256_slli_epi32(_mm256_sub_epi32(e, _mm256_set1_epi32(f->emin)), f->mbits), mag);
    return _mm256_or_si256(mag, _mm256_and_si256(neg, _mm256_set1_epi32((int)f->sign)));
}

static void encode_avx2(const hs_qg_fmt *f, const float *v, int64_t n, float enc, uint64_t idx0, uint8_t *dst) {
    const __m256 ve = _mm256_set1_ps(enc);
    const int sr = f->rounding == HS_ROUND_SR;
    __m256i b0 = _mm256_setzero_si256(), b1 = b0;
    const __m256i step = _mm256_set1_epi64x((long long)(8 * HS_RNG_GAMMA));
    if (sr) {
        uint64_t b[8];
        for (int l = 0; l < 8; l++) b[l] = f->key + (idx0 + (uint64_t)l + 1) * HS_RNG_GAMMA;
        b0 = _mm256_loadu_si256((const __m256i *)b);
        b1 = _mm256_loadu_si256((const __m256i *)(b + 4));
    }
    /* dword k's low byte → byte k (within each 128-bit half), then the halves joined */
    const __m256i pick = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                          0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
    for (int64_t i = 0; i < n; i += 8) {
        __m256 u = _mm256_setzero_ps();
        if (sr) {
            u = hs_sr_uniform8(b0, b1);
            b0 = _mm256_add_epi64(b0, step);
            b1 = _mm256_add_epi64(b1, step);
        }
        __m256i c = _mm256_shuffle_epi8(codes8(f, load8(v + i, n - i), ve, u), pick);
        __m128i bytes = _mm_unpacklo_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1));
        int64_t left = n - i < 8 ? n - i : 8;
        if (f->bits == 8) {
            if (left == 8) _mm_storel_epi64((__m128i *)(dst + i), bytes);
            else {
                uint8_t tmp[16];
                _mm_storeu_si128((__m128i *)tmp, bytes);
                memcpy(dst + i, tmp, (size_t)left);
            }
        } else { /* element 2p in the low nibble of byte p */
            __m128i w = _mm_or_si128(_mm_and_si128(bytes, _mm_set1_epi16(0x000F)),
                                     _mm_and_si128(_mm_srli_epi16(bytes, 4), _mm_set1_epi16(0x00F0)));
            uint32_t d = (uint32_t)_mm_cvtsi128_si32(_mm_packus_epi16(w, w));
            memcpy(dst + i / 2, &d, (size_t)(left + 1) / 2);
        }
    }
}

void hs_qg_plain_avx2(hs_elem e, const float *v, int64_t n, uint8_t *dst) {
    if (e == HS_ELEM_FP32) {
        memcpy(dst, v, (size_t)n * 4); /* little-endian bits */
        return;
    }
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) { /* hs_bf16_encode: RNE on the low 16 bits; NaN quieted */
        __m256i x = _mm256_loadu_si256((const __m256i *)(v + i));
        __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(1));
        __m256i rn = _mm256_srli_epi32(_mm256_add_epi32(x, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7FFF))), 16);
        __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(x, _mm256_set1_epi32(0x7FFFFFFF)), _mm256_set1_epi32(0x7F800000));
        __m256i qn = _mm256_or_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(0x40));
        __m256i b = _mm256_blendv_epi8(rn, qn, nan);
        _mm_storeu_si128((__m128i *)(dst + 2 * i), _mm_packus_epi32(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1)));
    }
    for (; i < n; i++) {
        uint16_t b = hs_bf16_encode(v[i]);
        dst[2 * i] = (uint8_t)(b & 0xFF);
        dst[2 * i + 1] = (uint8_t)(b >> 8);
    }
}

/* ------------------------------------------------------------------ decode */
static void decode_avx2(int bits, const float *vtab, const uint8_t *src, int64_t n, float m, int prescale, float *y) {
    const __m256 vm = _mm256_set1_ps(m), un = _mm256_set1_ps(HS_SR_UNSCALE);
    const __m256 tlo = _mm256_loadu_ps(vtab), thi = bits == 4 ? _mm256_loadu_ps(vtab + 8) : tlo;
    for (int64_t i = 0; i < n; i += 8) {
        int64_t left = n - i < 8 ? n - i : 8;
        uint8_t buf[8] = {0};
        const uint8_t *s = bits == 4 ? src + i / 2 : src + i;
        memcpy(buf, s, (size_t)(bits == 4 ? (left + 1) / 2 : left)); /* never past the row */
        __m256 v;
        if (bits == 4) {
            __m128i b = _mm_cvtsi32_si128(*(const int32_t *)buf);
            __m128i lo = _mm_and_si128(b, _mm_set1_epi8(0x0F)), hi = _mm_and_si128(_mm_srli_epi16(b, 4), _mm_set1_epi8(0x0F));
            __m256i idx = _mm256_cvtepu8_epi32(_mm_unpacklo_epi8(lo, hi));
            v = _mm256_blendv_ps(_mm256_permutevar8x32_ps(tlo, idx), _mm256_permutevar8x32_ps(thi, idx),
                                 I2F(_mm256_slli_epi32(idx, 28)));
        } else {
            __m256i idx = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)buf));
            v = _mm256_i32gather_ps(vtab, idx, 4);
        }
        __m256 out = _mm256_mul_ps(v, vm);
        if (prescale) out = _mm256_mul_ps(out, un);
        if (left == 8) _mm256_storeu_ps(y + i, out);
        else {
            float tmp[8];
            _mm256_storeu_ps(tmp, out);
            memcpy(y + i, tmp, (size_t)left * 4);
        }
    }
}

void hs_qg_decode_plain_avx2(hs_elem e, const uint8_t *src, int64_t n, float *y) {
    if (e == HS_ELEM_FP32) {
        memcpy(y, src, (size_t)n * 4);
        return;
    }
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_si256((__m256i *)(y + i),
                            _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(src + 2 * i))), 16));
    for (; i < n; i++) y[i] = hs_bf16_decode((uint16_t)(src[2 * i] | (src[2 * i + 1] << 8)));
}

static const hs_qg_ops ops_avx2 = {
    .load_t = hs_qg_load_t_avx2,
    .amax = amax_avx2,
    .finite_amax = hs_qg_finite_amax_avx2,
    .sse = sse_avx2,
    .sumsq = hs_qg_sumsq_avx2,
    .encode = encode_avx2,
    .plain = hs_qg_plain_avx2,
    .decode = decode_avx2,
    .decode_plain = hs_qg_decode_plain_avx2,
};

hs_status hs_quantize_generic_avx2(const hs_quant_spec *s, const float *x, int64_t rows, int64_t cols,
                                int64_t ld, int transpose, hs_packed *out) {
    return hs_qg_quantize(&ops_avx2, 1, s, x, rows, cols, ld, transpose, out);
}

hs_status hs_dequantize_generic_avx2(const hs_packed *p, float *y, int64_t ldy) {
    return hs_qg_dequantize(&ops_avx2, p, y, ldy);
}

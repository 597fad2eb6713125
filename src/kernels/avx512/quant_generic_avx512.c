/* quant_generic_avx512.c: AVX-512 vector operations of the generic quantizer / dequantizer
 * (kernels/quant_generic.h, driver in kernels/quant_generic.c) — E4M3, E5M2, INT4, INT8 with E8M0 or
 * FP32 scales, BF16 and FP32 rows, and the E2M1 specs the AVX-512 E2M1 kernels decline
 * (RNA/RTS, per-tensor groups, rows over 65 536) — and the dequantizer of every packed format the
 * E2M1 dequantizer declines. Byte-identical to hs_quantize_ref / hs_dequantize_ref; every spec
 * the reference accepts is covered.
 *
 * The arithmetic is the AVX2 file's (avx2/quant_generic_avx2.c) at 16 lanes, with masks for
 * the tails: a = min(|fl(v·enc)|, max), r = a·2^(mbits−e) exact, RNE by vrndscaleps (ties to
 * even), RNA/RTS/SR against the exact fraction r − floor(r); 16 codes narrowed with vpmovdb (and
 * two nibbles per byte for 4-bit elements). Squared errors: elements i..i+7 then i+8..i+15 into
 * one vector of 8 double lanes, so element i lands in lane i mod 8 in increasing i — the
 * reference's order. The SR generator uses vpmullq. Band gathering, the finite amax, Σv²
 * (halfs-sigma) and BF16/FP32 rows use the AVX2 operations (memory-bound or rare).
 */
#include <immintrin.h>
#include <string.h>

#include "core/scale_rules.h"
#include "halfs/rng.h"
#include "kernels/quant_kernels.h"
#include "kernels/quant_generic.h"
#include "kernels/avx512/sr_uniform_avx512.h"

static inline __mmask16 tail16(int64_t left) { return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1); }

static uint32_t amax_avx512(const float *v, int64_t n) {
    const __m512i absm = _mm512_set1_epi32(0x7FFFFFFF);
    __m512i m = _mm512_setzero_si512();
    for (int64_t i = 0; i < n; i += 16)
        m = _mm512_max_epu32(m, _mm512_and_si512(_mm512_castps_si512(_mm512_maskz_loadu_ps(tail16(n - i), v + i)), absm));
    return (uint32_t)_mm512_reduce_max_epu32(m);
}

/* a (≥ 0, ≤ max) divided by its grid quantum (exact); e the quantum's binade (floats) */
static inline __m512 grid_r(const hs_qg_fmt *f, __m512 a, __m512i *e) {
    if (f->is_int) return a;
    __m512i ex = _mm512_sub_epi32(_mm512_srli_epi32(_mm512_castps_si512(a), 23), _mm512_set1_epi32(127));
    *e = _mm512_max_epi32(ex, _mm512_set1_epi32(f->emin)); /* zero/subnormal a: −127 < emin */
    __m512i sc = _mm512_slli_epi32(_mm512_sub_epi32(_mm512_set1_epi32(127 + f->mbits), *e), 23);
    return _mm512_mul_ps(a, _mm512_castsi512_ps(sc));
}

static inline __m512 abs16(__m512 z) {
    return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(z), _mm512_set1_epi32(0x7FFFFFFF)));
}

static double sse_avx512(const hs_qg_fmt *f, const float *v, int64_t n, float enc, float dec) {
    const __m512 ve = _mm512_set1_ps(enc), vd = _mm512_set1_ps(dec), mx = _mm512_set1_ps(f->max);
    const __m512i sgn = _mm512_set1_epi32((int)0x80000000u);
    __m512d acc = _mm512_setzero_pd();
    for (int64_t i = 0; i < n; i += 16) {
        __m512 x = _mm512_maskz_loadu_ps(tail16(n - i), v + i); /* zeros add +0 */
        __m512 z = _mm512_mul_ps(x, ve);
        __m512i e = _mm512_setzero_si512();
        __m512 r = _mm512_roundscale_ps(grid_r(f, _mm512_min_ps(abs16(z), mx), &e),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m512 val = r; /* the RNE code's value */
        if (!f->is_int)
            val = _mm512_mul_ps(r, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(e, _mm512_set1_epi32(127 - f->mbits)), 23)));
        __m512 q = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(val), _mm512_and_si512(_mm512_castps_si512(z), sgn)));
        __m512 xh = _mm512_mul_ps(q, vd);
        __m512d d0 = _mm512_sub_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(x)), _mm512_cvtps_pd(_mm512_castps512_ps256(xh)));
        __m512d d1 = _mm512_sub_pd(_mm512_cvtps_pd(_mm512_extractf32x8_ps(x, 1)), _mm512_cvtps_pd(_mm512_extractf32x8_ps(xh, 1)));
        acc = _mm512_add_pd(acc, _mm512_mul_pd(d0, d0));
        acc = _mm512_add_pd(acc, _mm512_mul_pd(d1, d1));
    }
    double l[8];
    _mm512_storeu_pd(l, acc);
    return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
}

static void encode_avx512(const hs_qg_fmt *f, const float *v, int64_t n, float enc, uint64_t idx0, uint8_t *dst) {
    const __m512 ve = _mm512_set1_ps(enc), mx = _mm512_set1_ps(f->max), half = _mm512_set1_ps(0.5f);
    const int sr = f->rounding == HS_ROUND_SR;
    const __m512i emin = _mm512_set1_epi32(f->emin), sign = _mm512_set1_epi32((int)f->sign);
    const __m512i nib = _mm512_set1_epi32(f->bits == 4 ? 0xF : 0xFF);
    __m512i b0 = _mm512_setzero_si512(), b1 = b0;
    const __m512i step = _mm512_set1_epi64((long long)(16 * HS_RNG_GAMMA));
    if (sr) {
        uint64_t b[16];
        for (int l = 0; l < 16; l++) b[l] = f->key + (idx0 + (uint64_t)l + 1) * HS_RNG_GAMMA;
        b0 = _mm512_loadu_si512(b);
        b1 = _mm512_loadu_si512(b + 8);
    }
    for (int64_t i = 0; i < n; i += 16) {
        const int64_t left = n - i < 16 ? n - i : 16;
        __m512 z = _mm512_mul_ps(_mm512_maskz_loadu_ps(tail16(left), v + i), ve);
        if (f->prescale) z = _mm512_mul_ps(z, _mm512_set1_ps(HS_SR_PRESCALE));
        __m512i e = _mm512_setzero_si512();
        __m512 r = grid_r(f, _mm512_min_ps(abs16(z), mx), &e), nr;
        if (f->rounding == HS_ROUND_RNE) {
            nr = _mm512_roundscale_ps(r, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        } else {
            __m512 fl = _mm512_roundscale_ps(r, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
            __m512 fr = _mm512_sub_ps(r, fl); /* exact */
            __mmask16 up;
            if (f->rounding == HS_ROUND_RNA) up = _mm512_cmp_ps_mask(fr, half, _CMP_GE_OQ);
            else if (f->rounding == HS_ROUND_RTS) up = _mm512_cmp_ps_mask(fr, half, _CMP_GT_OQ);
            else {
                up = _mm512_cmp_ps_mask(hs_sr_uniform16(b0, b1), fr, _CMP_LT_OQ);
                b0 = _mm512_add_epi64(b0, step);
                b1 = _mm512_add_epi64(b1, step);
            }
            nr = _mm512_mask_add_ps(fl, up, fl, _mm512_set1_ps(1.0f));
        }
        __m512i mag = _mm512_cvttps_epi32(nr), code;
        __m512i neg = _mm512_srai_epi32(_mm512_castps_si512(z), 31);
        if (f->is_int) /* ±n, two's complement, in the element's bits */
            code = _mm512_and_si512(_mm512_sub_epi32(_mm512_xor_si512(mag, neg), neg), nib);
        else
            code = _mm512_or_si512(_mm512_add_epi32(_mm512_slli_epi32(_mm512_sub_epi32(e, emin), f->mbits), mag),
                                   _mm512_and_si512(neg, sign));
        __m128i bytes = _mm512_cvtepi32_epi8(code);
        if (f->bits == 8) {
            _mm_mask_storeu_epi8(dst + i, tail16(left), bytes);
        } else { /* element 2p in the low nibble of byte p */
            __m128i w = _mm_or_si128(_mm_and_si128(bytes, _mm_set1_epi16(0x000F)),
                                     _mm_and_si128(_mm_srli_epi16(bytes, 4), _mm_set1_epi16(0x00F0)));
            _mm_mask_storeu_epi8(dst + i / 2, tail16((left + 1) / 2), _mm_packus_epi16(w, w));
        }
    }
}

static void decode_avx512(int bits, const float *vtab, const uint8_t *src, int64_t n, float m, int prescale, float *y) {
    const __m512 vm = _mm512_set1_ps(m), un = _mm512_set1_ps(HS_SR_UNSCALE);
    const __m512 t16 = _mm512_loadu_ps(vtab); /* 4-bit: the whole table */
    for (int64_t i = 0; i < n; i += 16) {
        const int64_t left = n - i < 16 ? n - i : 16;
        __m512 v;
        if (bits == 4) {
            __m128i b = _mm_maskz_loadu_epi8(tail16((left + 1) / 2), src + i / 2); /* inside the row */
            __m128i lo = _mm_and_si128(b, _mm_set1_epi8(0x0F)), hi = _mm_and_si128(_mm_srli_epi16(b, 4), _mm_set1_epi8(0x0F));
            v = _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(_mm_unpacklo_epi8(lo, hi)), t16);
        } else {
            __m512i idx = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(tail16(left), src + i));
            v = _mm512_i32gather_ps(idx, vtab, 4);
        }
        __m512 out = _mm512_mul_ps(v, vm);
        if (prescale) out = _mm512_mul_ps(out, un);
        _mm512_mask_storeu_ps(y + i, tail16(left), out);
    }
}

static const hs_qg_ops ops_avx512 = {
    .load_t = hs_qg_load_t_avx2,
    .amax = amax_avx512,
    .finite_amax = hs_qg_finite_amax_avx2,
    .sse = sse_avx512,
    .sumsq = hs_qg_sumsq_avx2,
    .encode = encode_avx512,
    .plain = hs_qg_plain_avx2,
    .decode = decode_avx512,
    .decode_plain = hs_qg_decode_plain_avx2,
};

hs_status hs_quantize_generic_avx512(const hs_quant_spec *s, const float *x, int64_t rows, int64_t cols,
                                  int64_t ld, int transpose, hs_packed *out) {
    return hs_qg_quantize(&ops_avx512, 1, s, x, rows, cols, ld, transpose, out);
}

hs_status hs_dequantize_generic_avx512(const hs_packed *p, float *y, int64_t ldy) {
    return hs_qg_dequantize(&ops_avx512, p, y, ldy);
}

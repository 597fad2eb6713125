/* quant_mx_avx2_ukernel.c: the AVX2 vector kernels of the dedicated MXFP4-style quantizers
 * (kernels/quant_mx.h: E2M1, E8M0, block 16/32, rules ocp..halfs, RNE/SR; driver quant_mx.c),
 * the data paths of the AVX-512 kernels (avx512/quant_mx_avx512_ukernel.c) at 8 lanes.
 * Byte-identical to hs_quantize_ref (codes, scales, groups_halved).
 *
 * Row-wise: a step is 8 blocks of B floats (B/8 vectors each), read straight from the rows;
 * lane = element while encoding. The per-block amax (and for halfs the error difference) is
 * reduced across lanes with one 8 → 1 transpose-reduce (lane = block), so the scale of the 8
 * blocks is chosen 8 lanes at a time. Codes: 32 elements' dword codes packed to 16 bytes with
 * vpackusdw / vpackuswb, the nibble pairs joined by vpmaddubsw (1, 16), one vpunpcklwd.
 *
 * Column-wise: a step is one group of 8 adjacent packed rows (8 columns of x, B x rows), lane =
 * packed row; everything vertical. A strip is read in bands of BAND columns, B x rows copied
 * row after row into a tile (contiguous reads the prefetchers follow; walking 8 columns down B
 * rows 16 KB apart would keep all of them in the same L1 sets), the per-column amax taken on
 * the way. Codes: 8 elements per dword (element j at nibble j), a 4 × 8 dword transpose.
 *
 * Scale exponent from the amax bits (subnormal amax rescaled by 2^64 first), as scale_rules.c.
 * Half-S: (halved − ceil) squared errors summed in float in units of a quarter of the ceil
 * scale, where only elements below 1 and from 3.5 on contribute (halfs_delta: three sums, the
 * halved and the ceil candidates' errors below 1 and the terms from 3.5 on); outside the error
 * bound the
 * reference's exact double sums order the same way (halfs_call); inside it (a close call, or
 * identical candidates), or for a ceil exponent ≥ 126 or < −125, the group's scale comes from
 * hs_scale_choose itself. The proofs are the AVX-512 file's, scaled by 16 (halfs_call states
 * the float error of the three sums, below the AVX-512 kernel's scaled bound).
 *
 * SR: u from the counter-based generator (sr_uniform_avx2.h), index r·C + c of the packed
 * element; code = floor(t) + 2·ex (+1 if u < t − floor t), t = a·2^(1−ex), as hs_e2m1_encode.
 */
#include <immintrin.h>
#include <string.h>

#include "core/quant_common.h"
#include "core/scale_rules.h"
#include "halfs/rng.h"
#include "kernels/avx2/sr_uniform_avx2.h"
#include "kernels/quant_kernels.h"
#include "kernels/quant_mx.h"

#define I2F(v) _mm256_castsi256_ps(v)
#define F2I(v) _mm256_castps_si256(v)

enum { NBLK = 8 };   /* blocks per row-wise step */
enum { BAND = 128 }; /* x columns per band of the column-wise kernel (a multiple of 8) */

/* ------------------------------------------------------------------ element arithmetic */

static inline __m256 abs8(__m256 v) {
    return I2F(_mm256_and_si256(F2I(v), _mm256_set1_epi32(0x7FFFFFFF)));
}

/* 2^e for e in [−127, 127], exact (2^-127 is a subnormal). */
static inline __m256 pow2_8(__m256i e) {
    __m256i nrm = _mm256_slli_epi32(_mm256_add_epi32(e, _mm256_set1_epi32(127)), 23);
    __m256i is_sub = _mm256_cmpgt_epi32(_mm256_set1_epi32(-126), e);
    return I2F(_mm256_blendv_epi8(nrm, _mm256_set1_epi32(0x00400000), is_sub));
}

/* a (≥ 0, ≤ 6) rounded RNE onto the E2M1 grid: (a + M) − M, M = 2^(22 + max(exp a, 0)) */
static inline __m256 rne_mag8(__m256 a) {
    __m256i eb = _mm256_max_epi32(_mm256_and_si256(F2I(a), _mm256_set1_epi32(0x7F800000)),
                                  _mm256_set1_epi32(0x3F800000));
    __m256 magic = I2F(_mm256_add_epi32(eb, _mm256_set1_epi32(22 << 23)));
    return _mm256_sub_ps(_mm256_add_ps(a, magic), magic);
}

/* RNE code (sign in bit 3) of v·enc: the rounded magnitude's bits >> 22, minus 244 saturating,
 * index a byte table: 0 → 0, 0.5 .. 6 → 8, 10 .. 15 → codes 1 .. 7 */
static inline __m256i enc_rne8(__m256 v, __m256 enc) {
    const __m256i tab = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2, 3, 4, 5, 6, 7, 0, 0, 0, 0,
                                         0, 0, 0, 0, 1, 0, 2, 3, 4, 5, 6, 7);
    __m256 z = _mm256_mul_ps(v, enc);
    __m256 a = _mm256_min_ps(abs8(z), _mm256_set1_ps(6.0f));
    __m256i idx =
        _mm256_subs_epu16(_mm256_srli_epi32(F2I(rne_mag8(a)), 22), _mm256_set1_epi32(244));
    __m256i code = _mm256_shuffle_epi8(tab, idx); /* bytes 1..3 index 0 → 0 */
    return _mm256_or_si256(code,
                           _mm256_and_si256(_mm256_srli_epi32(F2I(z), 28), _mm256_set1_epi32(8)));
}

/* SR code of v·enc (with the pre-scale: fl(fl(v·enc)·0.75)); u: the 8 uniforms */
static inline __m256i enc_sr8(__m256 v, __m256 enc, __m256 u, const int prescale) {
    __m256 z = _mm256_mul_ps(v, enc);
    if (prescale) z = _mm256_mul_ps(z, _mm256_set1_ps(HS_SR_PRESCALE));
    __m256 a = _mm256_min_ps(abs8(z), _mm256_set1_ps(6.0f));
    /* ex = clamp(floor(log2 a), 0, 2) from the exponent bits; t = a·2^(1−ex) exact */
    __m256i exi = _mm256_sub_epi32(_mm256_srli_epi32(F2I(a), 23), _mm256_set1_epi32(127));
    exi = _mm256_min_epi32(_mm256_max_epi32(exi, _mm256_setzero_si256()), _mm256_set1_epi32(2));
    __m256 tt =
        _mm256_mul_ps(a, I2F(_mm256_slli_epi32(_mm256_sub_epi32(_mm256_set1_epi32(128), exi), 23)));
    __m256 fl = _mm256_floor_ps(tt);
    __m256i up = F2I(_mm256_cmp_ps(u, _mm256_sub_ps(tt, fl), _CMP_LT_OQ));
    __m256i code =
        _mm256_sub_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(fl), _mm256_slli_epi32(exi, 1)), up);
    return _mm256_or_si256(code,
                           _mm256_and_si256(_mm256_srli_epi32(F2I(z), 28), _mm256_set1_epi32(8)));
}

/* 32 dword codes (c0: elements 0..7, ..., c3: 24..31) → 16 packed bytes (even element in the
 * low nibble) */
static inline __m128i pack32(__m256i c0, __m256i c1, __m256i c2, __m256i c3) {
    /* bytes per 128-bit half h: c0[4h..4h+3], c1[..], c2[..], c3[..] */
    __m256i b = _mm256_packus_epi16(_mm256_packus_epi32(c0, c1), _mm256_packus_epi32(c2, c3));
    /* words: the byte pairs (2i, 2i+1) joined, then bytes: half h = pairs 2h, 2h+1 of c0..c3 */
    __m256i w = _mm256_maddubs_epi16(b, _mm256_set1_epi16(0x1001));
    __m256i q = _mm256_packus_epi16(w, w);
    return _mm_unpacklo_epi16(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
}

/* ------------------------------------------------------------------ scale decisions */

/* The scale exponents of 8 groups (lane = group) from their amax bits, as scale_rules.c
 * choose_e8m0: *zero and *finite (all-ones lanes), *e_ceil (the max rule, at least the E8M0
 * minimum), and the exponent of `rule` for the rules fixed by the amax; halfs: e_ceil (the
 * caller decides between e_ceil and e_ceil − 1). */
static inline __m256i rule_exp8(hs_rule rule, __m256i amax_bits, __m256i *zero, __m256i *finite,
                                __m256i *e_ceil) {
    const __m256i emin = _mm256_set1_epi32(HS_E8M0_EMIN), one = _mm256_set1_epi32(1);
    *zero = _mm256_cmpeq_epi32(amax_bits, _mm256_setzero_si256());
    *finite = _mm256_cmpgt_epi32(_mm256_set1_epi32(0x7F800000), amax_bits);
    /* floor(log2 a) and the significand in [1, 2) (subnormal a rescaled by 2^64, exact) */
    const __m256 a = I2F(amax_bits);
    __m256i is_sub = _mm256_cmpeq_epi32(_mm256_srli_epi32(amax_bits, 23), _mm256_setzero_si256());
    __m256i bb =
        _mm256_blendv_epi8(amax_bits, F2I(_mm256_mul_ps(a, _mm256_set1_ps(0x1p64f))), is_sub);
    __m256i f = _mm256_sub_epi32(_mm256_srli_epi32(bb, 23), _mm256_set1_epi32(127));
    f = _mm256_sub_epi32(f, _mm256_and_si256(is_sub, _mm256_set1_epi32(64)));
    __m256 sig = I2F(_mm256_or_si256(_mm256_and_si256(bb, _mm256_set1_epi32(0x007FFFFF)),
                                     _mm256_set1_epi32(0x3F800000)));
    __m256i notpow2 = F2I(_mm256_cmp_ps(sig, _mm256_set1_ps(1.0f), _CMP_NEQ_OQ)); /* −1 lanes */
    __m256i fm = _mm256_sub_epi32(f, _mm256_set1_epi32(2));                       /* emax 2 */
    *e_ceil = _mm256_max_epi32(_mm256_sub_epi32(fm, notpow2), emin);
    switch (rule) {
    case HS_RULE_OCP:
        return fm;
    case HS_RULE_RCEIL:
        return _mm256_sub_epi32(fm, F2I(_mm256_cmp_ps(sig, _mm256_set1_ps(1.5f), _CMP_GT_OQ)));
    case HS_RULE_EVEN:
        return _mm256_sub_epi32(fm, F2I(_mm256_cmp_ps(sig, _mm256_set1_ps(1.75f), _CMP_GE_OQ)));
    case HS_RULE_HALF:
        return _mm256_sub_epi32(*e_ceil, one);
    default:
        return *e_ceil; /* ceil; halfs: decided by the caller */
    }
}

/* Half-S sums of 8 elements in units of a quarter of the ceil scale X: Y = |v|·2^(2−e_ceil)
 * = 4y (y = |v|/X ≤ 4, the AVX-512 kernel's units; exact scaling). Below 1 (W = min(Y, 4) < 4)
 * the candidates round y to multiples of 1/2 and 1/4, i.e. W to multiples of 2 (2·RNE(W/2))
 * and of 1 (RNE(W)) — vroundps ties to even, hs_e2m1_encode's tie rule on these binades; on
 * [1, 3.5) the two grids agree (W = 4: both errors 0); from y = 3.5 (Y ≥ 14) on they are 3 and
 * 4: 16·((y − 3)² − (y − 4)²) = 8Y − 112 ≥ 0, exact. a->h += the halved candidate's errors²
 * below 1, a->c the ceil one's, a->t the terms from 3.5 on (three independent chains: one
 * chain of dependent adds measured latency-bound); 16 × the (halved − ceil) difference of the
 * squared errors is a->h − a->c + a->t. */
typedef struct {
    __m256 h, c, t;
} halfs_acc;
static inline void halfs_delta(__m256 Y, halfs_acc *a) {
#define RNE_ (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
    const __m256 W = _mm256_min_ps(Y, _mm256_set1_ps(4.0f));
    const __m256 eh = _mm256_sub_ps(W, _mm256_round_ps(W, RNE_));
    const __m256 ec =
        _mm256_fnmadd_ps(_mm256_round_ps(_mm256_mul_ps(W, _mm256_set1_ps(0.5f)), RNE_),
                         _mm256_set1_ps(2.0f), W); /* exact */
    a->h = _mm256_fmadd_ps(eh, eh, a->h);
    a->c = _mm256_fmadd_ps(ec, ec, a->c);
    a->t = _mm256_add_ps(
        a->t, _mm256_max_ps(_mm256_fmadd_ps(Y, _mm256_set1_ps(8.0f), _mm256_set1_ps(-112.0f)),
                            _mm256_setzero_ps()));
#undef RNE_
}
static inline __m256 halfs_sum(const halfs_acc *a) {
    return _mm256_add_ps(_mm256_sub_ps(a->h, a->c), a->t);
}

/* 2^(2 − e_ceil), the multiplier of halfs_delta's Y (lanes with e_ceil < −125, where it is not
 * a normal float, are decided by the reference: halfs_call) */
static inline __m256 halfs_mul(__m256i e_ceil) {
    return pow2_8(
        _mm256_sub_epi32(_mm256_set1_epi32(2), _mm256_max_epi32(e_ceil, _mm256_set1_epi32(-125))));
}

/* The call of 8 groups from D = halfs_sum (float, 16 × the AVX-512 kernel's sum in units of
 * X; its bound 4B²·2⁻²⁴ + 2B·2⁻¹⁴⁸ scaled alike. The float error here: the three sums of B
 * terms each (≤ 1/4, ≤ 1, ≤ 16 per term: partial sums ≤ 17.25B), one rounding per term, two
 * to combine them and three to reduce 8 lanes (row-wise), ≤ 2⁻²⁴·(17.25B² + 5·17.25B) <
 * 32B²·2⁻²⁴, the AVX-512 kernel's 2B² scaled by 16, so its margin for the reference's double
 * sums stands; subnormal terms add at most 2⁻¹⁵⁰ per rounding, inside the absolute term): take the
 * halved scale where D is below −bound; the reference decides where |D| ≤ bound (a close call, or
 * both candidates identical: D = 0), where e_ceil ≥ 126 (amax above 2^127: the ceil candidate's x̂
 * overflows to Inf in the reference) and where e_ceil < −125 (halfs_mul). Only `live` groups. Masks
 * as bit sets (lane l → bit l). */
static inline void halfs_call(__m256 D, int live, int B, __m256i e_ceil, int *take, int *patch) {
    const __m256i odd = _mm256_or_si256(_mm256_cmpgt_epi32(e_ceil, _mm256_set1_epi32(125)),
                                        _mm256_cmpgt_epi32(_mm256_set1_epi32(-125), e_ceil));
    const int huge = _mm256_movemask_ps(I2F(odd));
    const float bound = 16.0f * ((float)(4 * B * B) * 0x1p-24f + (float)(2 * B) * 0x1p-148f);
    const int lt = _mm256_movemask_ps(_mm256_cmp_ps(D, _mm256_set1_ps(-bound), _CMP_LT_OQ));
    const int gt = _mm256_movemask_ps(_mm256_cmp_ps(D, _mm256_set1_ps(bound), _CMP_GT_OQ));
    *take = lt & live & ~huge;
    *patch = live & (huge | (~lt & ~gt));
}

/* Clamp the chosen exponents *e to emin (all-zero groups: the smallest scale) and return the
 * E8M0 bytes (0xFF for non-finite groups) as dwords; *halved: the groups below e_ceil. */
static inline __m256i finish_scale(__m256i *e, __m256i e_ceil, __m256i zero, __m256i finite,
                                   int *halved) {
    const __m256i emin = _mm256_set1_epi32(HS_E8M0_EMIN);
    *e = _mm256_blendv_epi8(_mm256_max_epi32(*e, emin), emin, zero);
    *halved = _mm256_movemask_ps(
        I2F(_mm256_andnot_si256(zero, _mm256_and_si256(finite, _mm256_cmpgt_epi32(e_ceil, *e)))));
    return _mm256_blendv_epi8(_mm256_set1_epi32(0xFF), _mm256_add_epi32(*e, _mm256_set1_epi32(127)),
                              finite);
}

/* ------------------------------------------------------------------ row-wise: 8 blocks */

/* 8-lane transpose-reduce: m[j] holds partial values of block perm(j) = 4·(j & 1) + (j >> 1);
 * the result's lane b is OP over block b's partials. */
#define DEF_REDUCE(name, OP)                                                                       \
    static inline __m256 name(const __m256 *m) {                                                   \
        __m256 r[4], s[2];                                                                         \
        for (int i = 0; i < 4; i++)                                                                \
            r[i] = OP(_mm256_permute2f128_ps(m[2 * i], m[2 * i + 1], 0x20),                        \
                      _mm256_permute2f128_ps(m[2 * i], m[2 * i + 1], 0x31));                       \
        for (int i = 0; i < 2; i++)                                                                \
            s[i] = OP(_mm256_shuffle_ps(r[2 * i], r[2 * i + 1], 0x44),                             \
                      _mm256_shuffle_ps(r[2 * i], r[2 * i + 1], 0xEE));                            \
        return OP(_mm256_shuffle_ps(s[0], s[1], 0x88), _mm256_shuffle_ps(s[0], s[1], 0xDD));       \
    }
#define OP_MAXI(a, b) I2F(_mm256_max_epi32(F2I(a), F2I(b)))
#define OP_ADD(a, b) _mm256_add_ps(a, b)
DEF_REDUCE(reduce_max, OP_MAXI)
DEF_REDUCE(reduce_add, OP_ADD)
static inline int slot_block(int j) { return 4 * (j & 1) + (j >> 1); }

/* The SR generator states of elements i0 .. i0+7 (key + (i + 1)·γ), lanes 0..3 / 4..7. */
static inline void sr_state(uint64_t key, uint64_t i0, __m256i *b0, __m256i *b1) {
    const uint64_t g = HS_RNG_GAMMA;
    const __m256i base = _mm256_set1_epi64x((long long)(key + (i0 + 1) * g));
    *b0 = _mm256_add_epi64(
        base, _mm256_setr_epi64x(0, (long long)g, (long long)(2 * g), (long long)(3 * g)));
    *b1 = _mm256_add_epi64(base, _mm256_setr_epi64x((long long)(4 * g), (long long)(5 * g),
                                                    (long long)(6 * g), (long long)(7 * g)));
}

/* 8 elements at p of a block scaled by enc, SR index i0 (mode 0: RNE, 1: SR, 2: SR with the
 * 3/4 pre-scale) */
static inline __m256i enc_row8(const float *p, __m256 enc, const int mode, uint64_t key,
                               uint64_t i0) {
    if (mode == 0) return enc_rne8(_mm256_loadu_ps(p), enc);
    __m256i b0, b1;
    sr_state(key, i0, &b0, &b1);
    return enc_sr8(_mm256_loadu_ps(p), enc, hs_sr_uniform8(b0, b1), mode == 2);
}

/* Quantize 8 blocks: block b at bp[b] (B floats, zero padding where the caller has none), its
 * codes to dp[b] (B/2 bytes), its scale to sc[b]; SR index of block b's element i:
 * idx0 + b·B + i. tail: only the first nblk blocks are real (codes and scales written for
 * those; the rest read zeros and write to scratch); lastn: elements of block nblk − 1 (for the
 * reference's close calls). Returns the groups halved. */
static inline __attribute__((always_inline)) int64_t step8(const hs_quant_spec *s, const int B,
                                                           const int mode, const float *const *bp,
                                                           uint8_t *const *dp, int nblk,
                                                           const int tail, int lastn, uint8_t *sc,
                                                           uint64_t key, uint64_t idx0) {
    const int V = B / 8; /* vectors per block */
    const __m256i absm = _mm256_set1_epi32(0x7FFFFFFF);
    __m256 am[NBLK];
#pragma GCC unroll 8
    for (int j = 0; j < NBLK; j++) {
        const float *p = bp[slot_block(j)];
        __m256i m = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)p), absm);
        for (int t = 1; t < V; t++)
            m = _mm256_max_epi32(
                m, _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(p + 8 * t)), absm));
        am[j] = I2F(m);
    }
    const __m256i amax_bits = F2I(reduce_max(am));
    __m256i zero, finite, e_ceil;
    __m256i e = rule_exp8(s->rule, amax_bits, &zero, &finite, &e_ceil);
    int patch = 0;
    if (s->rule == HS_RULE_HALFS) {
        const __m256i eh = _mm256_sub_epi32(e_ceil, _mm256_set1_epi32(1));
        const __m256i valid = _mm256_cmpgt_epi32(eh, _mm256_set1_epi32(HS_E8M0_EMIN - 1));
        const int live =
            _mm256_movemask_ps(I2F(_mm256_andnot_si256(zero, _mm256_and_si256(valid, finite))));
        int take = 0;
        if (live) {
            float encc[8];
            _mm256_storeu_ps(encc, halfs_mul(e_ceil));
            __m256 dd[NBLK];
            for (int j = 0; j < NBLK; j++) {
                const int b = slot_block(j);
                if (tail && b >= nblk) { /* padding (all zero: not live), a lane of its own */
                    dd[j] = _mm256_setzero_ps();
                    continue;
                }
                const float *p = bp[b];
                const __m256 ec = _mm256_set1_ps(encc[b]);
                halfs_acc acc = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
                for (int t = 0; t < V; t++)
                    halfs_delta(_mm256_mul_ps(abs8(_mm256_loadu_ps(p + 8 * t)), ec), &acc);
                dd[j] = halfs_sum(&acc);
            }
            halfs_call(reduce_add(dd), live, B, e_ceil, &take, &patch);
        }
        e = _mm256_blendv_epi8(
            e_ceil, eh,
            _mm256_cmpgt_epi32(_mm256_and_si256(_mm256_set1_epi32(take),
                                                _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128)),
                               _mm256_setzero_si256()));
    }
    int halved;
    const __m256i stored = finish_scale(&e, e_ceil, zero, finite, &halved);
    float enc[8];
    _mm256_storeu_ps(enc, pow2_8(_mm256_sub_epi32(_mm256_setzero_si256(), e)));
    int32_t st[8];
    _mm256_storeu_si256((__m256i *)st, stored);
    while (patch) { /* rare: the reference decides (exact double sums) */
        const int b = __builtin_ctz((unsigned)patch);
        patch &= patch - 1;
        hs_group_scale g = hs_scale_choose(s, bp[b], tail && b == nblk - 1 ? lastn : B, 1.0f);
        st[b] = (int32_t)g.stored;
        enc[b] = g.enc_mul;
        halved = g.halved ? halved | 1 << b : halved & ~(1 << b);
    }
    for (int b = 0; b < (tail ? nblk : NBLK); b++) sc[b] = (uint8_t)st[b];

    /* codes: 32 elements at a time (block b for B = 32, blocks b and b + 1 for B = 16) */
    for (int b = 0; b < (tail ? nblk : NBLK); b += 32 / B) {
        const int b1 = V == 4 ? b : b + 1;
        const float *p0 = bp[b], *p1 = V == 4 ? p0 + 16 : bp[b1];
        const __m256 e0 = _mm256_set1_ps(enc[b]), e1 = _mm256_set1_ps(enc[b1]);
        const uint64_t i0 = idx0 + (uint64_t)(b * B), i1 = i0 + 16;
        __m128i o =
            pack32(enc_row8(p0, e0, mode, key, i0), enc_row8(p0 + 8, e0, mode, key, i0 + 8),
                   enc_row8(p1, e1, mode, key, i1), enc_row8(p1 + 8, e1, mode, key, i1 + 8));
        if (V == 4) {
            _mm_storeu_si128((__m128i *)dp[b], o);
        } else { /* blocks b and b + 1 may lie in different rows */
            _mm_storel_epi64((__m128i *)dp[b], o);
            _mm_storel_epi64((__m128i *)dp[b1], _mm_unpackhi_epi64(o, o));
        }
    }
    const int fin = _mm256_movemask_ps(I2F(finite));
    if (fin != 0xFF) /* non-finite blocks: all codes 0 */
        for (int b = 0; b < (tail ? nblk : NBLK); b++)
            if (!(fin >> b & 1)) memset(dp[b], 0, (size_t)B / 2);
    return __builtin_popcount((unsigned)halved & ((1u << nblk) - 1));
}

static const float zeros32[32] __attribute__((aligned(64)));

/* Rows [r0, r1) (C a multiple of B) as one run of blocks; see hs_qmx_ops.rows_flat. */
static inline __attribute__((always_inline)) int64_t
rows_flat_b(const hs_quant_spec *s, const int B, const int mode, const float *x, int64_t ld,
            int64_t C, int64_t r0, int64_t r1, uint8_t *codes, int64_t code_stride, uint8_t *scales,
            uint64_t key) {
    uint8_t scratch[NBLK * 16];
    const float *bp[NBLK];
    uint8_t *dp[NBLK];
    const int64_t gpr = C / B, total = (r1 - r0) * gpr, g0 = r0 * gpr;
    int64_t row = r0, cb = 0, halved = 0;
    for (int64_t i = 0; i < total; i += NBLK) {
        const int nblk = total - i < NBLK ? (int)(total - i) : NBLK;
        hs_qmx_flat_blocks(x, ld, codes, code_stride, gpr, B, nblk, NBLK, &row, &cb, zeros32, scratch, bp, dp);
        /* SR index r·C + c = (r·gpr + block)·B */
        const uint64_t idx0 = (uint64_t)(g0 + i) * (uint64_t)B;
        if (nblk == NBLK)
            halved += step8(s, B, mode, bp, dp, NBLK, 0, B, scales + g0 + i, key, idx0);
        else
            halved += step8(s, B, mode, bp, dp, nblk, 1, B, scales + g0 + i, key, idx0);
    }
    return halved;
}

/* One row of any length; see hs_qmx_ops.row. */
static inline __attribute__((always_inline)) int64_t
row_b(const hs_quant_spec *s, const int B, const int mode, const float *x, int64_t r, int64_t C,
      uint8_t *codes, int64_t code_stride, uint8_t *scales, uint64_t key) {
    const int64_t step = (int64_t)NBLK * B, idx = r * C;
    const float *bp[NBLK];
    uint8_t *dp[NBLK];
    int64_t halved = 0, c0 = 0;
    for (; c0 + step <= C; c0 += step) {
        for (int b = 0; b < NBLK; b++) {
            bp[b] = x + c0 + b * B;
            dp[b] = codes + (c0 + b * B) / 2;
        }
        halved += step8(s, B, mode, bp, dp, NBLK, 0, B, scales + c0 / B, key, (uint64_t)(idx + c0));
    }
    int64_t written = c0 / 2;
    if (c0 < C) { /* tail: a zero-padded copy */
        float buf[NBLK * 32] __attribute__((aligned(32)));
        uint8_t cb[NBLK * 16];
        const int64_t n = C - c0;
        memset(buf, 0, sizeof buf);
        memcpy(buf, x + c0, (size_t)n * sizeof(float));
        const int nblk = (int)((n + B - 1) / B), lastn = (int)(n - (int64_t)(nblk - 1) * B);
        for (int b = 0; b < NBLK; b++) {
            bp[b] = buf + b * B;
            dp[b] = cb + b * B / 2;
        }
        halved +=
            step8(s, B, mode, bp, dp, nblk, 1, lastn, scales + c0 / B, key, (uint64_t)(idx + c0));
        const int64_t nbytes = (n + 1) / 2;
        memcpy(codes + c0 / 2, cb, (size_t)nbytes);
        written += nbytes;
    }
    memset(codes + written, 0, (size_t)(code_stride - written));
    return halved;
}

/* ------------------------------------------------------------------ column-wise: 8 packed rows */

/* One group g of packed rows j0 .. j0+nb−1 (nb ≤ 8), its n ≤ B elements (x rows g·B ..) in
 * the tile tb (element i of the 8 lanes at tb + 8·i; zero rows past n, zero lanes past nb),
 * amax_bits: their per-lane amax. */
static inline __attribute__((always_inline)) int64_t
colstep(const hs_quant_spec *s, const int B, const int mode, int64_t C, int64_t g, int64_t j0,
        int nb, int n, const float *tb, __m256i amax_bits, uint8_t *codes, int64_t code_stride,
        uint8_t *scales, int64_t gpr, uint64_t key) {
    const int64_t c0 = g * B;
    const int lanes = nb >= 8 ? 0xFF : (1 << nb) - 1;
    __m256i zero, finite, e_ceil;
    __m256i e = rule_exp8(s->rule, amax_bits, &zero, &finite, &e_ceil);
    int patch = 0;
    if (s->rule == HS_RULE_HALFS) {
        const __m256i eh = _mm256_sub_epi32(e_ceil, _mm256_set1_epi32(1));
        const __m256i valid = _mm256_cmpgt_epi32(eh, _mm256_set1_epi32(HS_E8M0_EMIN - 1));
        const int live =
            lanes &
            _mm256_movemask_ps(I2F(_mm256_andnot_si256(zero, _mm256_and_si256(valid, finite))));
        __m256i takev = _mm256_setzero_si256();
        if (live) {
            const __m256 ec = halfs_mul(e_ceil);
            halfs_acc a0 = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()}, a1 = a0;
            for (int i = 0; i < B; i += 2) { /* two sets of chains */
                halfs_delta(_mm256_mul_ps(abs8(_mm256_load_ps(tb + 8 * i)), ec), &a0);
                halfs_delta(_mm256_mul_ps(abs8(_mm256_load_ps(tb + 8 * i + 8)), ec), &a1);
            }
            int take;
            halfs_call(_mm256_add_ps(halfs_sum(&a0), halfs_sum(&a1)), live, B, e_ceil, &take,
                       &patch);
            takev =
                _mm256_cmpgt_epi32(_mm256_and_si256(_mm256_set1_epi32(take),
                                                    _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128)),
                                   _mm256_setzero_si256());
        }
        e = _mm256_blendv_epi8(e_ceil, eh, takev);
    }
    int halved;
    const __m256i stored = finish_scale(&e, e_ceil, zero, finite, &halved);
    __m256 encv = pow2_8(_mm256_sub_epi32(_mm256_setzero_si256(), e));
    int32_t st[8];
    _mm256_storeu_si256((__m256i *)st, stored);
    if (patch) { /* rare: the reference decides on the gathered group */
        float enc[8], gv[32];
        _mm256_storeu_ps(enc, encv);
        while (patch) {
            const int l = __builtin_ctz((unsigned)patch);
            patch &= patch - 1;
            for (int i = 0; i < n; i++) gv[i] = tb[8 * i + l];
            hs_group_scale gs = hs_scale_choose(s, gv, n, 1.0f);
            st[l] = (int32_t)gs.stored;
            enc[l] = gs.enc_mul;
            halved = gs.halved ? halved | 1 << l : halved & ~(1 << l);
        }
        encv = _mm256_loadu_ps(enc);
    }
    for (int l = 0; l < nb; l++) scales[(j0 + l) * gpr + g] = (uint8_t)st[l];

    /* codes: dword k of lane l = elements 8k .. 8k+7 of packed row j0 + l, element j at nibble j */
    __m256i D[4];
    __m256i b0 = _mm256_setzero_si256(), b1 = b0;
    if (mode) { /* key + (r·C + c0 + 1)·γ, r = j0 + l (wrapping uint64 arithmetic) */
        uint64_t st0[8];
        for (int l = 0; l < 8; l++)
            st0[l] = key + ((uint64_t)(j0 + l) * (uint64_t)C + (uint64_t)c0 + 1) * HS_RNG_GAMMA;
        b0 = _mm256_loadu_si256((const __m256i *)st0);
        b1 = _mm256_loadu_si256((const __m256i *)(st0 + 4));
    }
    const __m256i gam = _mm256_set1_epi64x((long long)HS_RNG_GAMMA);
    for (int k = 0; k < B / 8; k++) {
        __m256i d = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
            const __m256 v = _mm256_load_ps(tb + 8 * (8 * k + j));
            __m256i c;
            if (mode == 0) {
                c = enc_rne8(v, encv);
            } else {
                c = enc_sr8(v, encv, hs_sr_uniform8(b0, b1), mode == 2);
                b0 = _mm256_add_epi64(b0, gam);
                b1 = _mm256_add_epi64(b1, gam);
            }
            d = _mm256_or_si256(d, _mm256_slli_epi32(c, 4 * j));
        }
        /* past the column's end: zero elements encode as +0 (RNE and SR) */
        D[k] = _mm256_and_si256(d, finite);
    }
    uint8_t *dst = codes + j0 * code_stride + c0 / 2;
    /* 4 × 8 (B = 32) or 2 × 8 (B = 16) dword transpose: lane l's dwords to packed row l */
    __m256i a_lo = _mm256_unpacklo_epi32(D[0], D[1]), a_hi = _mm256_unpackhi_epi32(D[0], D[1]);
    if (B == 16) { /* qwords: a_lo = rows 0, 1 | 4, 5; a_hi = rows 2, 3 | 6, 7 */
        uint64_t q[8];
        _mm256_storeu_si256((__m256i *)q, a_lo);
        _mm256_storeu_si256((__m256i *)(q + 4), a_hi);
        static const int row_of[8] = {0, 1, 4, 5, 2, 3, 6, 7};
        for (int i = 0; i < 8; i++)
            if (row_of[i] < nb) memcpy(dst + row_of[i] * code_stride, &q[i], 8);
    } else {
        __m256i c_lo = _mm256_unpacklo_epi32(D[2], D[3]), c_hi = _mm256_unpackhi_epi32(D[2], D[3]);
        /* rows 0 | 4, 1 | 5, 2 | 6, 3 | 7 */
        __m256i o[4] = {_mm256_unpacklo_epi64(a_lo, c_lo), _mm256_unpackhi_epi64(a_lo, c_lo),
                        _mm256_unpacklo_epi64(a_hi, c_hi), _mm256_unpackhi_epi64(a_hi, c_hi)};
        if (nb >= 8) {
            for (int i = 0; i < 4; i++) {
                _mm_storeu_si128((__m128i *)(dst + i * code_stride), _mm256_castsi256_si128(o[i]));
                _mm_storeu_si128((__m128i *)(dst + (i + 4) * code_stride),
                                 _mm256_extracti128_si256(o[i], 1));
            }
        } else {
            uint8_t rb[128];
            for (int i = 0; i < 4; i++) {
                _mm_storeu_si128((__m128i *)(rb + 16 * i), _mm256_castsi256_si128(o[i]));
                _mm_storeu_si128((__m128i *)(rb + 16 * (i + 4)), _mm256_extracti128_si256(o[i], 1));
            }
            for (int l = 0; l < nb; l++) memcpy(dst + l * code_stride, rb + 16 * l, 16);
        }
    }
    return __builtin_popcount((unsigned)halved & (unsigned)lanes);
}

/* Groups [g0, g1) of packed rows [jb, je); see hs_qmx_ops.cols. Each group's B x rows are read
 * in bands of BAND columns, row after row, into a tile (per 8 columns: B rows of 8 floats,
 * padded so that the slices do not share L1 sets), the per-column amax on the way; then the
 * steps run from the tile. */
static inline __attribute__((always_inline)) int64_t
cols_b(const hs_quant_spec *s, const int B, const int mode, const float *x, int64_t ld, int64_t C,
       int64_t jb, int64_t je, int64_t g0, int64_t g1, uint8_t *codes, int64_t code_stride,
       uint8_t *scales, uint64_t key) {
    enum { TS = 32 * 8 + 16 };
    float tile[BAND / 8 * TS] __attribute__((aligned(32)));
    __m256i am[BAND / 8];
    const __m256i absm = _mm256_set1_epi32(0x7FFFFFFF);
    const int64_t gpr = (C + B - 1) / B;
    int64_t halved = 0;
    for (int64_t g = g0; g < g1; g++) {
        const int64_t c0 = g * B;
        const int n = C - c0 < B ? (int)(C - c0) : B;
        for (int64_t bb = jb; bb < je; bb += BAND) {
            const int64_t be = je - bb < BAND ? je : bb + BAND;
            const int full = (int)((be - bb) / 8), rem = (int)((be - bb) % 8),
                      nv = full + (rem > 0);
            const __m256i remm = _mm256_cmpgt_epi32(_mm256_set1_epi32(rem),
                                                    _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
            for (int k = 0; k < nv; k++) am[k] = _mm256_setzero_si256();
            /* where the next band starts (prefetched while this one is read; a hint, never
             * faults): the same rows further right, or the next group's rows at jb */
            const int64_t pfo = be < je ? BAND : B * ld - (bb - jb);
            for (int i = 0; i < n; i++) {
                const float *row = x + (c0 + i) * ld + bb;
                int k = 0;
                for (; k < full; k++) {
                    if (k % 2 == 0) _mm_prefetch((const char *)(row + 8 * k + pfo), _MM_HINT_T0);
                    __m256i t = _mm256_loadu_si256((const __m256i *)(row + 8 * k));
                    _mm256_store_si256((__m256i *)(tile + k * TS + 8 * i), t);
                    am[k] = _mm256_max_epi32(am[k], _mm256_and_si256(t, absm));
                }
                if (rem) {
                    __m256i t = F2I(_mm256_maskload_ps(row + 8 * k, remm));
                    _mm256_store_si256((__m256i *)(tile + k * TS + 8 * i), t);
                    am[k] = _mm256_max_epi32(am[k], _mm256_and_si256(t, absm));
                }
            }
            for (int i = n; i < B; i++) /* a short last group: zero rows */
                for (int k = 0; k < nv; k++)
                    _mm256_store_ps(tile + k * TS + 8 * i, _mm256_setzero_ps());
            for (int k = 0; k < nv; k++) {
                const int64_t j0 = bb + 8 * k;
                const int nb = be - j0 < 8 ? (int)(be - j0) : 8;
                halved += colstep(s, B, mode, C, g, j0, nb, n, tile + k * TS, am[k], codes,
                                  code_stride, scales, gpr, key);
            }
        }
    }
    return halved;
}

/* ------------------------------------------------------------------ entry points: specialised
 * per block and rounding mode (no branch per element) */

static int mode_of(const hs_quant_spec *s) {
    return s->rounding != HS_ROUND_SR ? 0 : hs_spec_sr_prescaled(s) ? 2 : 1;
}
static uint64_t key_of(const hs_quant_spec *s) {
    return s->rounding == HS_ROUND_SR ? hs_rng_key(s->seed, s->stream) : 0;
}

#define DISPATCH(CALL)                                                                             \
    do {                                                                                           \
        const int m_ = mode_of(s);                                                                 \
        if (s->block == 32) return m_ == 0 ? CALL(32, 0) : m_ == 1 ? CALL(32, 1) : CALL(32, 2);    \
        return m_ == 0 ? CALL(16, 0) : m_ == 1 ? CALL(16, 1) : CALL(16, 2);                        \
    } while (0)

static int64_t qmx_rows_flat(const hs_quant_spec *s, const float *x, int64_t ld, int64_t C,
                             int64_t r0, int64_t r1, uint8_t *codes, int64_t code_stride,
                             uint8_t *scales) {
    const uint64_t key = key_of(s);
#define FLAT(B_, M_) rows_flat_b(s, B_, M_, x, ld, C, r0, r1, codes, code_stride, scales, key)
    DISPATCH(FLAT);
#undef FLAT
}

static int64_t qmx_row(const hs_quant_spec *s, const float *x, int64_t r, int64_t C, uint8_t *codes,
                       int64_t code_stride, uint8_t *scales) {
    const uint64_t key = key_of(s);
#define ROW(B_, M_) row_b(s, B_, M_, x, r, C, codes, code_stride, scales, key)
    DISPATCH(ROW);
#undef ROW
}

static int64_t qmx_cols(const hs_quant_spec *s, const float *x, int64_t ld, int64_t R, int64_t C,
                        int64_t jb, int64_t je, int64_t g0, int64_t g1, uint8_t *codes,
                        int64_t code_stride, uint8_t *scales) {
    const uint64_t key = key_of(s);
    (void)R;
#define COLS(B_, M_) cols_b(s, B_, M_, x, ld, C, jb, je, g0, g1, codes, code_stride, scales, key)
    DISPATCH(COLS);
#undef COLS
}

const hs_qmx_ops hs_qmx_ops_avx2 = {qmx_rows_flat, qmx_row, qmx_cols};

/* quant_mx_avx512_ukernel.c: the AVX-512 table of the dedicated MXFP4 quantizers
 * (kernels/quant_mx.h, whose driver is kernels/quant_mx.c) for MXFP4-style specs — E2M1
 * elements, E8M0 block scales, block 16 or 32, rules ocp / ceil / rceil / even / half / halfs,
 * RNE or SR, no RHT, no 2D tiles, no tensor scale: row-wise, column-wise and fused row + column.
 * Byte-identical to hs_quantize_ref (codes, scales, groups_halved); the dispatcher tries them
 * before the band quantizer (kernels/quant_band.h), which covers everything else.
 *
 * Why separate kernels: the band kernel makes 16 rows the 16 lanes of a vector, so row-wise
 * input must be transposed 16×16 first (most of its time). Here the data stay in row order:
 * a step is 16 consecutive blocks of one row (16·B floats, B/16 vectors per block, read straight
 * from the row). Lane = element while encoding; the per-block statistics (amax, and for halfs
 * the two candidates' float error estimates) are reduced across lanes with one 16→1 in-register
 * transpose-reduce per statistic, so the scale of the 16 blocks is chosen with lane = block
 * (the same vector code as the band kernel's choose_e8m0, written from scale_rules.c's rules).
 *
 * halfs: the difference of the two candidates' squared errors is summed in float, in units of
 * the ceil scale, where only elements below 1 and from 3.5 on contribute (halfs_q, halfs_delta);
 * when it is farther from 0 than its error bound the reference's exact double sums order the
 * same way (halfs_call_delta); when both candidates give the same x̂ everywhere neither is
 * strictly lower (the reference keeps ceil). Otherwise (a close call, or an amax above 2^127)
 * that block's scale is taken from hs_scale_choose itself — the reference, so exact.
 *
 * Rows whose blocks are whole but do not fill the 16-block steps are quantized as runs of rows
 * whose steps continue across row ends (rows_flat_b: the trainer's 256- to 1408-column rows);
 * rows of whole steps, or with a partial block, one at a time (row_b).
 *
 * Compiled with clang where available (Makefile: *_ukernel.c; gcc 12's code for these kernels
 * is ~1.4× slower); no OpenMP here (the driver splits the work).
 *
 * Encoding (RNE): a = min(|v·enc|, 6) rounded on the E2M1 grid by the float addition of
 * 2^(22+ex) (ties to even code, as hs_e2m1_encode), the code looked up from the rounded value's
 * bits; odd elements take their code pre-shifted to the high nibble, so a qword's byte sum
 * (vpsadbw) is the packed byte; vpermt2b gathers 16 bytes from two vectors.
 */
#include <immintrin.h>
#include <string.h>

#include "core/quant_common.h"
#include "core/scale_rules.h"
#include "halfs/rng.h"
#include "kernels/kernels.h"
#include "kernels/quant_mx.h"
#include "kernels/avx512/quant_e2m1_avx512.h"
#include "kernels/avx512/sr_uniform_avx512.h"

enum { NBLK = 16 }; /* blocks per step */
/* software prefetch distance along the row, floats (8 KB: the VM's hardware prefetcher alone
 * left a single row stream at ~60% of copy speed; 4 and 8 KB measured alike, 2 and 16 KB less) */
enum { PF = 2048 };

/* ------------------------------------------------------------------ 16 → 1 transpose-reduce */

/* m[j] (j < 16): 16 partial values of one block each; returns lane p = OP over m[j]'s lanes
 * with j = perm(p) = 4·(p & 3) + (p >> 2) — the callers load block perm(j) into slot j, so lane
 * b holds block b (perm is its own inverse). */
#define DEF_REDUCE(name, OP)                                                                    \
    static inline __m512 name(const __m512 *m) {                                                \
        __m512 r[8], s[4], u[2];                                                                \
        for (int i = 0; i < 8; i++)                                                             \
            r[i] = OP(_mm512_shuffle_f32x4(m[2 * i], m[2 * i + 1], 0x44),                       \
                      _mm512_shuffle_f32x4(m[2 * i], m[2 * i + 1], 0xEE));                      \
        for (int i = 0; i < 4; i++)                                                             \
            s[i] = OP(_mm512_shuffle_f32x4(r[2 * i], r[2 * i + 1], 0x88),                       \
                      _mm512_shuffle_f32x4(r[2 * i], r[2 * i + 1], 0xDD));                      \
        for (int i = 0; i < 2; i++)                                                             \
            u[i] = OP(_mm512_shuffle_ps(s[2 * i], s[2 * i + 1], 0x44),                          \
                      _mm512_shuffle_ps(s[2 * i], s[2 * i + 1], 0xEE));                         \
        return OP(_mm512_shuffle_ps(u[0], u[1], 0x88), _mm512_shuffle_ps(u[0], u[1], 0xDD));    \
    }
#define OP_MAXI(a, b)                                                                           \
    _mm512_castsi512_ps(_mm512_max_epu32(_mm512_castps_si512(a), _mm512_castps_si512(b)))
#define OP_ADD(a, b) _mm512_add_ps(a, b)
DEF_REDUCE(reduce_maxu, OP_MAXI)
DEF_REDUCE(reduce_add, OP_ADD)

static inline int slot_block(int j) { return 4 * (j & 3) + (j >> 2); }

/* ------------------------------------------------------------------ element arithmetic */

static inline __m512 abs_ps(__m512 v) {
    return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(0x7FFFFFFF)));
}

/* a (≥ 0, ≤ 6) rounded RNE onto the E2M1 grid: (a + 2^(22+ex)) − 2^(22+ex), ex = max(exp(a), 0) */
static inline __m512 e2m1_rne_mag(__m512 a) {
    __m512i eb = _mm512_max_epi32(_mm512_and_si512(_mm512_castps_si512(a), _mm512_set1_epi32(0x7F800000)),
                                  _mm512_set1_epi32(0x3F800000));
    __m512 magic = _mm512_castsi512_ps(_mm512_add_epi32(eb, _mm512_set1_epi32(22 << 23)));
    return _mm512_sub_ps(_mm512_add_ps(a, magic), magic);
}

/* The two Half-S candidates of 16 elements, rounded, in units of the ceil (max-rule) scale
 * X = 2^e_ceil. y = |v|·2^−e_ceil is the float fabsf(v·enc_ceil) that the reference rounds
 * (scale_rules.c hs_group_sse), 0 ≤ y ≤ 4. Returns Q(y), the ceil candidate's |x̂|/X, and in
 * *qh Q(min(2y, 6))/2, the halved candidate's |x̂|/X (its x̂ = Q(u)·X/2, u = fl(v·enc_half) = 2y
 * exactly when y is normal). Q is E2M1 RNE with hs_e2m1_encode's ties. The errors are then
 * y − Q(y) and y − *qh, both exact (Sterbenz, or Q = 0), and equal bitwise iff x̂_c = x̂_h.
 *
 * Why this equals the reference: on each binade of the E2M1 grid the rounding is to a fixed
 * step and the even code is the even multiple of the step, so Q on [0, 2) is RNE to a multiple
 * of 1/2 and Q on [2, 4] RNE to an integer: vrndscaleps with M = 1 and 0 fraction bits (RNE,
 * exact). In units of X the halved grid is {0, 1/4, 1/2, 3/4, 1, 3/2, 2, 3} (saturating at 3):
 * on [0, 1) RNE to a multiple of 1/4 (M = 2); on [1, 3] it is the ceil grid itself (the two
 * grids coincide there, ties included: 2y's ties 2.5 → 2, 3.5 → 4, 5 → 4 are y's 1.25 → 1,
 * 1.75 → 2, 2.5 → 2); above 3 it is 3 (2y > 6 saturates), where the ceil grid gives 3 below
 * 3.5 and 4 from 3.5 on. A subnormal y (|v| tiny against X) rounds to 0 under both, as in
 * the reference (whose d = v exactly; y − 0 is off by < 2^−150 in units of X, inside the
 * halfs_call bound's absolute term). NaN/Inf y give NaN (such groups are never live).
 * 3 roundings, 3 compares and a masked move, where two e2m1_rne_mag took 10 operations. */
#define HS_RND(M) (((M) << 4) | _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
static inline __m512 halfs_q(__m512 y, __m512 *qh) {
    const __mmask16 lt2 = _mm512_cmp_ps_mask(y, _mm512_set1_ps(2.0f), _CMP_LT_OQ);
    const __mmask16 lt1 = _mm512_cmp_ps_mask(y, _mm512_set1_ps(1.0f), _CMP_LT_OQ);
    const __mmask16 top = _mm512_cmp_ps_mask(y, _mm512_set1_ps(3.5f), _CMP_GE_OQ);
    __m512 qc = _mm512_roundscale_ps(y, HS_RND(0));
    qc = _mm512_mask_roundscale_ps(qc, lt2, y, HS_RND(1));
    const __m512 h = _mm512_mask_roundscale_ps(qc, lt1, y, HS_RND(2));
    *qh = _mm512_mask_mov_ps(h, top, _mm512_set1_ps(3.0f));
    return qc;
}

static inline __m512 pow2_ps(__m512i e) { /* 2^e, e in [−127, 127], exact */
    return _mm512_scalef_ps(_mm512_set1_ps(1.0f), _mm512_cvtepi32_ps(e));
}

/* Constants of the encoder: even lanes give the code in bits 0..3 (sign bit 31 → 3), odd lanes
 * in bits 4..7 (sign → 7). idx = rounded bits >> 22, minus 244 (even) / 228 (odd), saturating:
 * 0 → 0, 0.5 .. 6 → 8 .. 15 (even) / 24 .. 31 (odd) of the two-vector table. */
typedef struct {
    __m512i tab_lo, tab_hi, sub, shift, smask, six;
} enc_consts;

static inline void enc_consts_init(enc_consts *k) {
    k->tab_lo = _mm512_set_epi32(7, 6, 5, 4, 3, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    k->tab_hi = _mm512_slli_epi32(k->tab_lo, 4);
    k->sub = _mm512_set_epi32(228, 244, 228, 244, 228, 244, 228, 244, 228, 244, 228, 244, 228, 244,
                              228, 244);
    k->shift = _mm512_set_epi32(24, 28, 24, 28, 24, 28, 24, 28, 24, 28, 24, 28, 24, 28, 24, 28);
    k->smask = _mm512_set_epi32(0x80, 8, 0x80, 8, 0x80, 8, 0x80, 8, 0x80, 8, 0x80, 8, 0x80, 8,
                                0x80, 8);
    k->six = _mm512_castps_si512(_mm512_set1_ps(6.0f));
}

/* 16 elements → their codes (even element: low nibble of dword, odd: high nibble) */
static inline __m512i encode16(__m512 v, __m512 enc, const enc_consts *k) {
    __m512 z = _mm512_mul_ps(v, enc);
    __m512 a = _mm512_min_ps(abs_ps(z), _mm512_castsi512_ps(k->six));
    __m512i idx = _mm512_subs_epu16(_mm512_srli_epi32(_mm512_castps_si512(e2m1_rne_mag(a)), 22), k->sub);
    __m512i code = _mm512_permutex2var_epi32(k->tab_lo, idx, k->tab_hi);
    return _mm512_ternarylogic_epi32(code, _mm512_srlv_epi32(_mm512_castps_si512(z), k->shift), k->smask, 0xF8);
}

/* SR codes of 16 elements (as hs_e2m1_encode: t = a·2^(1−ex), up iff u < t − floor(t)), placed
 * like encode16's; z = fl(fl(v·enc)·0.75) with the pre-scale. idx0: index of element 0. */
static inline __m512i encode16_sr(__m512 v, __m512 enc, uint64_t key, uint64_t idx0, const int prescale,
                                  const enc_consts *k) {
    const __m512i g = _mm512_set1_epi64((long long)HS_RNG_GAMMA);
    const __m512i j0 = _mm512_set_epi64(8, 7, 6, 5, 4, 3, 2, 1); /* idx + 1 */
    __m512i base = _mm512_set1_epi64((long long)(key + idx0 * HS_RNG_GAMMA));
    __m512i b0 = _mm512_add_epi64(base, _mm512_mullo_epi64(j0, g));
    __m512i b1 = _mm512_add_epi64(b0, _mm512_set1_epi64((long long)(8 * HS_RNG_GAMMA)));
    __m512 u = hs_sr_uniform16(b0, b1);
    __m512 z = _mm512_mul_ps(v, enc);
    if (prescale) z = _mm512_mul_ps(z, _mm512_set1_ps(HS_SR_PRESCALE));
    __m512 a = _mm512_min_ps(abs_ps(z), _mm512_castsi512_ps(k->six));
    __m512 ex = _mm512_min_ps(_mm512_max_ps(_mm512_getexp_ps(a), _mm512_setzero_ps()), _mm512_set1_ps(2.0f));
    __m512 tt = _mm512_scalef_ps(a, _mm512_sub_ps(_mm512_set1_ps(1.0f), ex)); /* exact */
    __m512 fl = _mm512_roundscale_ps(tt, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    __mmask16 up = _mm512_cmp_ps_mask(u, _mm512_sub_ps(tt, fl), _CMP_LT_OQ);
    __m512i c = _mm512_cvttps_epi32(_mm512_fmadd_ps(ex, _mm512_set1_ps(2.0f), fl));
    c = _mm512_mask_add_epi32(c, up, c, _mm512_set1_epi32(1));
    c = _mm512_sllv_epi32(c, _mm512_set_epi32(4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0));
    return _mm512_ternarylogic_epi32(c, _mm512_srlv_epi32(_mm512_castps_si512(z), k->shift), k->smask, 0xF8);
}

/* ------------------------------------------------------------------ one step: 16 blocks */

/* The scale exponents of 16 groups (lane = group) from their amax bits, as scale_rules.c
 * choose_e8m0: the *zero and *finite masks, *e_ceil (the max rule, at least the E8M0 minimum),
 * and the returned exponent of `rule` for every rule fixed by the amax; for halfs it returns
 * e_ceil and the caller decides between e_ceil and e_ceil − 1. */
static inline __m512i rule_exponent(hs_rule rule, __m512i amax_bits, __mmask16 *zero,
                                    __mmask16 *finite, __m512i *e_ceil) {
    const __m512 a = _mm512_castsi512_ps(amax_bits);
    *zero = _mm512_cmpeq_epi32_mask(amax_bits, _mm512_setzero_si512());
    *finite = _mm512_cmplt_epi32_mask(amax_bits, _mm512_set1_epi32(0x7F800000));
    __m512i f = _mm512_cvtps_epi32(_mm512_getexp_ps(a));
    __m512 sig = _mm512_getmant_ps(a, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_src);
    __mmask16 notpow2 = _mm512_cmp_ps_mask(sig, _mm512_set1_ps(1.0f), _CMP_NEQ_OQ);
    const __m512i emin = _mm512_set1_epi32(HS_E8M0_EMIN), one = _mm512_set1_epi32(1);
    __m512i fm = _mm512_sub_epi32(f, _mm512_set1_epi32(2)); /* E2M1 emax = 2 */
    *e_ceil = _mm512_max_epi32(_mm512_mask_add_epi32(fm, notpow2, fm, one), emin);
    switch (rule) {
    case HS_RULE_OCP: return fm;
    case HS_RULE_RCEIL:
        return _mm512_mask_add_epi32(fm, _mm512_cmp_ps_mask(sig, _mm512_set1_ps(1.5f), _CMP_GT_OQ), fm, one);
    case HS_RULE_EVEN:
        return _mm512_mask_add_epi32(fm, _mm512_cmp_ps_mask(sig, _mm512_set1_ps(1.75f), _CMP_GE_OQ), fm, one);
    case HS_RULE_HALF: return _mm512_sub_epi32(*e_ceil, one);
    default: return *e_ceil; /* ceil; halfs: decided by the caller */
    }
}

/* The Half-S call of 16 groups from float estimates Sh (halved scale) and Sc (max scale) of
 * their squared errors, both in units of the ceil scale (halfs_q): each estimate is within
 * B·2⁻²⁴·S + B·2⁻¹⁵⁰ of its exact sum (positive terms, one rounding per step); with a margin
 * of 2B as in the band kernel, *take = the halved scale is certainly better, *patch = too
 * close to call (the reference decides). `differ`: the candidates' codes differ somewhere;
 * `live`: groups present. e_ceil = 126 (amax > 2^127): the reference's x̂ = 4·2^126 of the
 * ceil candidate overflows to Inf in float (its error, and sum, are then Inf), which the
 * exact errors in units of the scale do not see: such groups, when their candidates differ,
 * go to the reference too (x̂ = 6·2^125 of the halved one is finite, and identical
 * candidates overflow alike). */
static inline void halfs_call(__m512 Sh, __m512 Sc, __mmask16 differ, __mmask16 live, int B,
                              __m512i e_ceil, __mmask16 *take, __mmask16 *patch) {
    const __mmask16 huge = _mm512_cmpge_epi32_mask(e_ceil, _mm512_set1_epi32(126));
    const __m512 diff = _mm512_sub_ps(Sh, Sc);
    const __m512 bound = _mm512_fmadd_ps(_mm512_add_ps(Sh, Sc), _mm512_set1_ps((float)(2 * B) * 0x1p-24f),
                                         _mm512_set1_ps((float)(2 * B) * 0x1p-148f));
    const __mmask16 lt = _mm512_cmp_ps_mask(diff, _mm512_sub_ps(_mm512_setzero_ps(), bound), _CMP_LT_OQ);
    const __mmask16 gt = _mm512_cmp_ps_mask(diff, bound, _CMP_GT_OQ);
    *take = (__mmask16)(lt & differ & live & ~huge);
    *patch = (__mmask16)(live & differ & (huge | (~lt & ~gt)));
}

/* Half-S from the difference alone: acc += the elements' (halved − ceil) squared errors, in
 * units of the ceil scale (y as for halfs_q), *dk |= the lanes whose x̂ differ. By halfs_q's
 * grids the two errors are equal on [1, 3.5); below 1 they are w − RNE_{1/2}(w) and
 * w − RNE_{1/4}(w) with w = min(y, 1) (0 for y ≥ 1); from 3.5 on, (y − 3)² − (y − 4)² = 2y − 7,
 * exact in float (y ∈ [3.5, 4] on the 2^−22 grid), and the candidates differ (3 against 4)
 * even at y = 3.5, where the difference is 0. */
static inline __m512 halfs_delta(__m512 y, __m512 acc, __mmask16 *dk) {
    const __m512 w = _mm512_min_ps(y, _mm512_set1_ps(1.0f));
    const __m512 q2 = _mm512_roundscale_ps(w, HS_RND(1)), q4 = _mm512_roundscale_ps(w, HS_RND(2));
    const __m512 ec = _mm512_sub_ps(w, q2), eh = _mm512_sub_ps(w, q4);
    const __mmask16 top = _mm512_cmp_ps_mask(y, _mm512_set1_ps(3.5f), _CMP_GE_OQ);
    acc = _mm512_fmadd_ps(eh, eh, acc);
    acc = _mm512_fnmadd_ps(ec, ec, acc);
    acc = _mm512_mask_add_ps(acc, top, acc, _mm512_fmadd_ps(y, _mm512_set1_ps(2.0f), _mm512_set1_ps(-7.0f)));
    *dk |= (__mmask16)(_mm512_cmp_ps_mask(q2, q4, _CMP_NEQ_UQ) | top);
    return acc;
}

/* halfs_call from D, the float sum of halfs_delta's terms of each group (S_h − S_c in units of
 * the ceil scale X). The bound: every term and partial sum is at most B in magnitude (terms
 * ≤ 1/16 + 1/64 below 1, ≤ 1 from 3.5 on) and no lane's sum takes more than 2B roundings
 * (relative 2⁻²⁴, or absolute 2⁻¹⁵⁰ when subnormal), so |D − D_exact| ≤ 2B·B·2⁻²⁴ +
 * 2B·2⁻¹⁵⁰; the reference's double sums S_h, S_c (≤ 1.25·B·X² each, positive terms, < 2B
 * roundings of 2⁻⁵³) are off by far less than the margin 2B·2B·2⁻²⁴ − 2B·B·2⁻²⁴, so beyond
 * ±(2B·2B·2⁻²⁴ + 2B·2⁻¹⁴⁸) the reference orders them as D's sign; inside it, the reference
 * decides (as halfs_call; so do e_ceil = 126 groups). */
static inline void halfs_call_delta(__m512 D, __mmask16 differ, __mmask16 live, int B, __m512i e_ceil,
                                    __mmask16 *take, __mmask16 *patch) {
    const __mmask16 huge = _mm512_cmpge_epi32_mask(e_ceil, _mm512_set1_epi32(126));
    const float bound = (float)(4 * B * B) * 0x1p-24f + (float)(2 * B) * 0x1p-148f;
    const __mmask16 lt = _mm512_cmp_ps_mask(D, _mm512_set1_ps(-bound), _CMP_LT_OQ);
    const __mmask16 gt = _mm512_cmp_ps_mask(D, _mm512_set1_ps(bound), _CMP_GT_OQ);
    *take = (__mmask16)(lt & differ & live & ~huge);
    *patch = (__mmask16)(live & differ & (huge | (~lt & ~gt)));
}

/* Clamp the 16 chosen exponents *e to emin (all-zero groups: the smallest scale), mark the
 * groups stored below the max-rule exponent e_ceil in *halved, and return the E8M0 bytes
 * (0xFF for non-finite groups) as dwords. */
static inline __m512i finish_scale(__m512i *e, __m512i e_ceil, __m512i emin, __mmask16 zero,
                                   __mmask16 finite, __mmask16 *halved) {
    *e = _mm512_max_epi32(*e, emin);
    *e = _mm512_mask_mov_epi32(*e, zero, emin);
    *halved = _mm512_cmplt_epi32_mask(*e, e_ceil) & (__mmask16)~zero & finite;
    return _mm512_mask_mov_epi32(_mm512_add_epi32(*e, _mm512_set1_epi32(127)), (__mmask16)~finite,
                                 _mm512_set1_epi32(0xFF));
}

/* Quantize 16 blocks of B floats at v (v holds 16·B floats; padded with zeros past n_valid
 * elements), codes to dst (8·B bytes), scales to sc (16 bytes; nblk with tail). Returns the
 * groups halved among the first nblk blocks. tail (a row's zero-padded end, or a flat run's
 * last step): only the first nblk blocks' codes are written, the padding's halfs sums and
 * codes are not computed. flat (rows_flat_b): block b is at bp[b] (B floats) and its codes go
 * to dp[b] (B/2 bytes) instead of v + b·B and dst + b·B/2; all blocks whole (padding blocks
 * point to zeros and their codes to scratch). */
static inline __attribute__((always_inline)) int64_t
step16(const hs_quant_spec *s, const int B, const int mode, const float *v, int64_t n_valid,
       int nblk, const int tail, uint8_t *dst, uint8_t *sc, uint64_t key, uint64_t idx0,
       const enc_consts *k, const int flat, const float *const *bp, uint8_t *const *dp) {
    const int V = B / 16; /* vectors per block */
    const __m512i absm = _mm512_set1_epi32(0x7FFFFFFF);
#define LDV(q) _mm512_loadu_ps(q)
#define BLK(b) (flat ? bp[b] : v + (b) * B)
#define DST(b) (flat ? dp[b] : dst + (b) * B / 2)
    __m512 am[NBLK];
    /* unrolled: slot_block(j) and the block pointers are constants (rolled, the loop's index
     * arithmetic drew ~8% of a halfs step's profile samples) */
#pragma GCC unroll 16
    for (int j = 0; j < NBLK; j++) {
        const float *p = BLK(slot_block(j));
        /* software prefetch PF floats ahead along the row (a hint: never faults) */
        _mm_prefetch((const char *)(p + PF), _MM_HINT_T0);
        if (V == 2) _mm_prefetch((const char *)(p + PF + 16), _MM_HINT_T0);
        __m512i m = _mm512_and_si512(_mm512_castps_si512(LDV(p)), absm);
        if (V == 2) m = _mm512_max_epu32(m, _mm512_and_si512(_mm512_castps_si512(LDV(p + 16)), absm));
        am[j] = _mm512_castsi512_ps(m);
    }
    const __m512i amax_bits = _mm512_castps_si512(reduce_maxu(am));

    /* the scale exponent of 16 blocks (lane = block) */
    __mmask16 zero, finite;
    __m512i e_ceil;
    __m512i e = rule_exponent(s->rule, amax_bits, &zero, &finite, &e_ceil);
    const __m512i emin = _mm512_set1_epi32(HS_E8M0_EMIN), one = _mm512_set1_epi32(1);
    __mmask16 patch = 0; /* close halfs calls: decided by the reference */
    if (s->rule == HS_RULE_HALFS) {
        __m512i eh = _mm512_sub_epi32(e_ceil, one);
        const __mmask16 valid = _mm512_cmpge_epi32_mask(eh, emin);
        const __mmask16 live = (__mmask16)(valid & finite & ~zero);
        __mmask16 take = 0;
        if (live) {
            float encc[16];
            _mm512_storeu_ps(encc, pow2_ps(_mm512_sub_epi32(_mm512_setzero_si512(), e_ceil)));
            __m512 dd_[NBLK];
            unsigned differ = 0;
            for (int j = 0; j < NBLK; j++) {
                const int b = slot_block(j);
                if (tail && b >= nblk) { /* padding past the row's end (all zero: not live); a lane of
                                  * its own in the sums, so skipping it changes no other lane */
                    dd_[j] = _mm512_setzero_ps();
                    continue;
                }
                const float *p = BLK(b);
                const __m512 ec = _mm512_set1_ps(encc[b]);
                __m512 acc = _mm512_setzero_ps();
                __mmask16 dk = 0;
                for (int t = 0; t < V; t++) {
                    /* (v − x̂)² = (|v| − |x̂|)²: rounding is symmetric in sign; in units of the
                     * ceil scale, only the elements below 1 and from 3.5 on differ (halfs_delta) */
                    const __m512 y = _mm512_mul_ps(abs_ps(LDV(p + 16 * t)), ec);
                    acc = halfs_delta(y, acc, &dk);
                }
                dd_[j] = acc;
                differ |= (unsigned)(dk != 0) << b;
            }
            halfs_call_delta(reduce_add(dd_), (__mmask16)differ, live, B, e_ceil, &take, &patch);
        }
        e = _mm512_mask_mov_epi32(e_ceil, take, eh);
    }
    __mmask16 halved;
    const __m512i stored = finish_scale(&e, e_ceil, emin, zero, finite, &halved);
    float enc[16];
    _mm512_storeu_ps(enc, pow2_ps(_mm512_sub_epi32(_mm512_setzero_si512(), e)));
    uint8_t st8[16];
    _mm_storeu_si128((__m128i *)st8, _mm512_cvtepi32_epi8(stored));
    while (patch) { /* rare: the reference decides (exact double sums) */
        int b = __builtin_ctz(patch);
        patch &= (__mmask16)(patch - 1);
        int64_t nb = flat ? B : n_valid - (int64_t)b * B;
        if (nb > B) nb = B;
        hs_group_scale g = hs_scale_choose(s, BLK(b), nb, 1.0f);
        st8[b] = (uint8_t)g.stored;
        enc[b] = g.enc_mul;
        halved = g.halved ? (__mmask16)(halved | (1u << b)) : (__mmask16)(halved & ~(1u << b));
    }
    memcpy(sc, st8, tail ? (size_t)nblk : 16); /* tail: nblk groups left */

    /* codes: 16 bytes per 32 elements */
    const __m512i gather = _mm512_set_epi8(
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 120, 112, 104, 96, 88, 80, 72, 64, 56, 48,
        40, 32, 24, 16, 8, 0);
    const __m512i zz = _mm512_setzero_si512();
    /* tail: blocks from nblk on are padding (the caller keeps only the first nblk blocks'
     * codes), not encoded. A separate instantiation (tail is a constant): the bound test in
     * the full steps' loops measured ~15% slower on 4096² rows. */
    for (int b = 0; b < (tail ? nblk : NBLK); b += 2 / V) {
        /* 32 elements: block b (B = 32), or blocks b and b + 1 (B = 16; apart in flat runs) */
        const float *p = BLK(b), *p1 = V == 2 || !flat ? p + 16 : BLK(b + 1);
        __m512 e0 = _mm512_set1_ps(enc[b]), e1 = _mm512_set1_ps(enc[b + (V == 2 ? 0 : 1)]);
        __m512i c0, c1;
        if (mode == 0) {
            c0 = _mm512_sad_epu8(encode16(LDV(p), e0, k), zz);
            c1 = _mm512_sad_epu8(encode16(LDV(p1), e1, k), zz);
        } else { /* 1: SR, 2: SR with the 3/4 pre-scale */
            uint64_t i0 = idx0 + (uint64_t)(b * B);
            c0 = _mm512_sad_epu8(encode16_sr(LDV(p), e0, key, i0, mode == 2, k), zz);
            c1 = _mm512_sad_epu8(encode16_sr(LDV(p1), e1, key, i0 + 16, mode == 2, k), zz);
        }
        __m128i o = _mm512_castsi512_si128(_mm512_permutex2var_epi8(c0, gather, c1));
        if (flat && V == 1) { /* blocks b and b + 1 may lie in different rows */
            _mm_storel_epi64((__m128i *)dp[b], o);
            _mm_storel_epi64((__m128i *)dp[b + 1], _mm_unpackhi_epi64(o, o));
        } else {
            _mm_storeu_si128((__m128i *)DST(b), o);
        }
    }
    if (finite != 0xFFFF) { /* non-finite blocks: all codes 0 */
        for (int b = 0; b < NBLK; b++)
            if (!(finite >> b & 1)) memset(DST(b), 0, (size_t)B / 2);
    }
    return __builtin_popcount((unsigned)(halved & (__mmask16)((1u << nblk) - 1)));
#undef LDV
#undef BLK
#undef DST
}

/* One packed row. */
static inline __attribute__((always_inline)) int64_t
row_b(const hs_quant_spec *s, const int B, const int mode, const float *x, int64_t C,
      uint8_t *codes, int64_t code_stride, uint8_t *scales, uint64_t key, uint64_t idx0,
      const enc_consts *k) {
    const int64_t step = (int64_t)NBLK * B;
    int64_t halved = 0, c0 = 0;
    for (; c0 + step <= C; c0 += step)
        halved += step16(s, B, mode, x + c0, step, NBLK, 0, codes + c0 / 2, scales + c0 / B, key,
                         idx0 + (uint64_t)c0, k, 0, NULL, NULL);
    int64_t written = c0 / 2;
    if (c0 < C) { /* tail: zero-padded copy */
        float buf[NBLK * 32] __attribute__((aligned(64)));
        uint8_t cb[NBLK * 16], sb[16];
        int64_t n = C - c0;
        memset(buf, 0, sizeof buf);
        memcpy(buf, x + c0, (size_t)n * sizeof(float));
        int nblk = (int)((n + B - 1) / B);
        halved += step16(s, B, mode, buf, n, nblk, 1, cb, sb, key, idx0 + (uint64_t)c0, k, 0, NULL, NULL);
        int64_t nbytes = (n + 1) / 2;
        memcpy(codes + c0 / 2, cb, (size_t)nbytes);
        memcpy(scales + c0 / B, sb, (size_t)nblk);
        written += nbytes;
    }
    memset(codes + written, 0, (size_t)(code_stride - written));
    return halved;
}

static int64_t qmx_row(const hs_quant_spec *s, const float *x, int64_t r, int64_t C,
                       uint8_t *codes, int64_t code_stride, uint8_t *scales) {
    enc_consts k;
    enc_consts_init(&k);
    const int sr = s->rounding == HS_ROUND_SR, pre = hs_spec_sr_prescaled(s);
    const uint64_t key = sr ? hs_rng_key(s->seed, s->stream) : 0, idx0 = (uint64_t)r * (uint64_t)C;
    /* specialised per block and rounding mode: no branch per element */
#define ROW(B_, M_) row_b(s, B_, M_, x, C, codes, code_stride, scales, key, idx0, &k)
    if (s->block == 32) return !sr ? ROW(32, 0) : pre ? ROW(32, 2) : ROW(32, 1);
    return !sr ? ROW(16, 0) : pre ? ROW(16, 2) : ROW(16, 1);
#undef ROW
}

/* Rows [r0, r1) of x (row stride ld, C columns, C a multiple of B) as one run of blocks: the
 * steps of 16 blocks run on across row ends, so a row's last blocks share a step with the next
 * row's first ones instead of filling a zero-padded step of their own. Why: a step's cost is
 * mostly per step, not per block (the 16-lane reductions, the scale rules, the padding), and
 * the trainer's rows (256, 704, 768 or 1408 columns, block 32) all end in a partial step: a
 * 256-column row (8 blocks, all padding-filled tail) ran at ~55–60% of the speed per element of
 * a 512-column one. Each block is computed alone, exactly as by row_b (same scale, codes and
 * SR index r·C + c = (r·gpr + block)·B): same bytes. codes/scales: those of the whole matrix. */
static inline __attribute__((always_inline)) int64_t
rows_flat_b(const hs_quant_spec *s, const int B, const int mode, const float *x, int64_t ld,
            int64_t C, int64_t r0, int64_t r1, uint8_t *codes, int64_t code_stride, uint8_t *scales,
            uint64_t key, const enc_consts *k) {
    static const float zeros[32] __attribute__((aligned(64))) = {0};
    uint8_t scratch[NBLK * 16] __attribute__((aligned(64)));
    const float *bp[NBLK];
    uint8_t *dp[NBLK];
    const int64_t gpr = C / B, total = (r1 - r0) * gpr, g0 = r0 * gpr;
    int64_t row = r0, cb = 0, halved = 0;
    for (int64_t i = 0; i < total; i += NBLK) {
        const int nblk = total - i < NBLK ? (int)(total - i) : NBLK;
        hs_qmx_flat_blocks(x, ld, codes, code_stride, gpr, B, nblk, NBLK, &row, &cb, zeros, scratch, bp, dp);
        const uint64_t idx0 = (uint64_t)(g0 + i) * (uint64_t)B;
        if (nblk == NBLK)
            halved += step16(s, B, mode, NULL, 0, NBLK, 0, NULL, scales + g0 + i, key, idx0, k, 1, bp, dp);
        else
            halved += step16(s, B, mode, NULL, 0, nblk, 1, NULL, scales + g0 + i, key, idx0, k, 1, bp, dp);
    }
    return halved; /* the row tails past C/2: zeroed by the driver (quant_mx.c) */
}

static int64_t qmx_rows_flat(const hs_quant_spec *s, const float *x, int64_t ld, int64_t C,
                             int64_t r0, int64_t r1, uint8_t *codes, int64_t code_stride,
                             uint8_t *scales) {
    if (C % (16 * s->block) == 0) { /* rows of whole 16-block steps: one row at a time (faster) */
        int64_t halved = 0;
        for (int64_t r = r0; r < r1; r++)
            halved += qmx_row(s, x + r * ld, r, C, codes + r * code_stride, code_stride,
                              scales + r * (C / s->block));
        return halved;
    }
    enc_consts k;
    enc_consts_init(&k);
    const int sr = s->rounding == HS_ROUND_SR, pre = hs_spec_sr_prescaled(s);
    const uint64_t key = sr ? hs_rng_key(s->seed, s->stream) : 0;
#define FLAT(B_, M_) rows_flat_b(s, B_, M_, x, ld, C, r0, r1, codes, code_stride, scales, key, &k)
    if (s->block == 32) return !sr ? FLAT(32, 0) : pre ? FLAT(32, 2) : FLAT(32, 1);
    return !sr ? FLAT(16, 0) : pre ? FLAT(16, 2) : FLAT(16, 1);
#undef FLAT
}

/* ------------------------------------------------------------------ column-wise (transpose = 1)
 *
 * The same specs, groups running down the columns of x: packed row r = column r of x, packed
 * group g = x rows g·B .. g·B+B−1. A step is one group of 16 adjacent packed rows: B vectors,
 * vector i = 16 consecutive floats of x row g·B + i, so lane = packed row = one group and every
 * statistic is a vertical max/sum (no transpose of the input). The codes of 8 consecutive
 * elements are OR-ed into one dword per lane (element j at nibble j), then a dword transpose
 * writes B/2 bytes into each of the 16 packed rows. Scale rules as step16 (lane = group); SR
 * draws index (seed, stream, r·C + c) exactly as the reference. */

/* code of v with per-lane enc placed at nibble j (sign at bit 4j+3), RNE */
static inline __m512i col_enc_rne(__m512 v, __m512 enc, int j) {
    const __m512i tab = _mm512_slli_epi32(_mm512_set_epi32(7, 6, 5, 4, 3, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0), 4 * j);
    __m512 z = _mm512_mul_ps(v, enc);
    __m512 a = _mm512_min_ps(abs_ps(z), _mm512_set1_ps(6.0f));
    __m512i idx = _mm512_subs_epu16(_mm512_srli_epi32(_mm512_castps_si512(e2m1_rne_mag(a)), 22), _mm512_set1_epi32(244));
    __m512i code = _mm512_permutexvar_epi32(idx, tab);
    return _mm512_ternarylogic_epi32(code, _mm512_srli_epi32(_mm512_castps_si512(z), 28 - 4 * j),
                                     _mm512_set1_epi32((int)(8u << (4 * j))), 0xF8);
}

/* the code magnitude (bits 0..2) of r·2^h, r·2^h already rounded onto the E2M1 grid, at nibble
 * j (as col_enc_rne): h = 0, or 1 for halfs_q's halved candidate (r = Q/2: its bits >> 22 are
 * 2 below Q's, so the table index subtracts 242 instead of 244) */
static inline __m512i col_code_mag(__m512 r, int j, const int h) {
    const __m512i tab = _mm512_slli_epi32(_mm512_set_epi32(7, 6, 5, 4, 3, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0), 4 * j);
    __m512i idx = _mm512_subs_epu16(_mm512_srli_epi32(_mm512_castps_si512(r), 22), _mm512_set1_epi32(244 - 2 * h));
    return _mm512_permutexvar_epi32(idx, tab);
}

/* SR code at nibble j; b0/b1 = key + (idx + 1)·γ of lanes 0..7 / 8..15, advanced by γ */
static inline __m512i col_enc_sr(__m512 v, __m512 enc, int j, __m512i *b0, __m512i *b1, const int prescale) {
    __m512 u = hs_sr_uniform16(*b0, *b1);
    const __m512i gam = _mm512_set1_epi64((long long)HS_RNG_GAMMA);
    *b0 = _mm512_add_epi64(*b0, gam);
    *b1 = _mm512_add_epi64(*b1, gam);
    __m512 z = _mm512_mul_ps(v, enc);
    if (prescale) z = _mm512_mul_ps(z, _mm512_set1_ps(HS_SR_PRESCALE));
    __m512 a = _mm512_min_ps(abs_ps(z), _mm512_set1_ps(6.0f));
    __m512 ex = _mm512_min_ps(_mm512_max_ps(_mm512_getexp_ps(a), _mm512_setzero_ps()), _mm512_set1_ps(2.0f));
    __m512 tt = _mm512_scalef_ps(a, _mm512_sub_ps(_mm512_set1_ps(1.0f), ex)); /* exact */
    __m512 fl = _mm512_roundscale_ps(tt, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    __mmask16 up = _mm512_cmp_ps_mask(u, _mm512_sub_ps(tt, fl), _CMP_LT_OQ);
    __m512i c = _mm512_cvttps_epi32(_mm512_fmadd_ps(ex, _mm512_set1_ps(2.0f), fl));
    c = _mm512_slli_epi32(_mm512_mask_add_epi32(c, up, c, _mm512_set1_epi32(1)), 4 * j);
    return _mm512_ternarylogic_epi32(c, _mm512_srli_epi32(_mm512_castps_si512(z), 28 - 4 * j),
                                     _mm512_set1_epi32((int)(8u << (4 * j))), 0xF8);
}

/* One group g of packed rows j0 .. j0+nb−1 (n ≤ B elements: x rows g·B .. g·B+n−1), read
 * from x, or from tile tb (row i at tb + 16·i) with its amax *amx already taken (the band
 * pass of cols_b); pf: prefetch the next group. direct (a whole group of 16 packed rows, read
 * from x, in the fused kernel): the passes load x where they need it instead of from a copy in
 * v[], which the compiler kept on the stack (32 stores and loads more per step), and without
 * pf's prefetches: the row-wise part reads the next group's rows first anyway (its own
 * prefetch runs 8 KB ahead), and the 32 prefetches per step cost more than they saved (one
 * thread, 4096 × 704 `both`, interleaved with and against 7435cd3: ×1.15 → ×1.25). */
static inline __attribute__((always_inline)) int64_t
colstep(const hs_quant_spec *s, const int B, const int mode, const float *x, int64_t ld, int64_t C,
        int64_t g, int64_t j0, int nb, uint8_t *codes, int64_t code_stride, uint8_t *scales,
        int64_t gpr, uint64_t key, const int pf, const __m512i *amx, const float *tb,
        const int direct) {
    const int64_t c0 = g * B;
    const int n = C - c0 < B ? (int)(C - c0) : B;
    const __mmask16 lanes = nb >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nb) - 1);
    /* tb: the group's 16 columns copied to a tile (row i at tb + 16·i) by the band pass */
    const float *xb = tb ? tb : x + c0 * ld + j0;
    if (tb) ld = 16;
    /* the group's vectors: v[i], or with a tile straight from it (VX): B = 32 vectors do not
     * fit in the registers next to the rest, and a copy of the tile into v[] on the stack
     * (32 loads and stores per step) was what the compiler made of v[] */
    __m512 v[32];
#define VX(i) (tb ? _mm512_load_ps(tb + 16 * (i)) : direct ? _mm512_loadu_ps(xb + (i) * ld) : v[i])
    for (int i = 0; i < B && !tb && !direct; i++) {
        if (i < n) {
            /* pf (the fused kernel): prefetch the same columns of the next group (read one
             * pass over the packed rows later: each x row is read in short runs, which the
             * hardware prefetcher alone does not cover; a hint: never faults) */
            if (pf) _mm_prefetch((const char *)(xb + (B + i) * ld), _MM_HINT_T1);
            v[i] = nb >= 16 ? _mm512_loadu_ps(xb + i * ld) : _mm512_maskz_loadu_ps(lanes, xb + i * ld);
        } else {
            v[i] = _mm512_setzero_ps();
        }
    }
    const __m512i absm = _mm512_set1_epi32(0x7FFFFFFF);
    __m512i amax_bits = _mm512_setzero_si512();
    if (amx) /* the band pass's column amax: the same max over the same lanes (order-free) */
        amax_bits = *amx;
    else
        for (int i = 0; i < B; i++) amax_bits = _mm512_max_epu32(amax_bits, _mm512_and_si512(_mm512_castps_si512(VX(i)), absm));
    __mmask16 zero, finite;
    __m512i e_ceil;
    __m512i e = rule_exponent(s->rule, amax_bits, &zero, &finite, &e_ceil);
    const __m512i emin = _mm512_set1_epi32(HS_E8M0_EMIN), one = _mm512_set1_epi32(1);
    __mmask16 patch = 0;
    /* halfs with RNE: the decision pass also builds both candidates' codes (C0: ceil, C1:
     * halved) from the magnitudes it rounds anyway, and the sign nibbles SG once; the codes of
     * the chosen candidate are then selected per lane instead of encoded again (~7 of 33 vector
     * ops per 16 elements saved). Same bytes: the encoder rounds fl(|v|·2^−e) clamped to 6
     * exactly as these magnitudes (|v·enc| = |v|·enc, ≤ 4 for ceil), enc > 0 so the sign of
     * v·enc is v's, and both candidates are the only scales halfs can choose (the reference's
     * close calls included). */
    const int fused = s->rule == HS_RULE_HALFS && mode == 0;
    __m512i C0[4], C1[4], SG[4];
    __mmask16 sel1 = 0; /* lanes whose codes are C1's */
    if (s->rule == HS_RULE_HALFS) { /* as step16, the sums taken down the lanes */
        __m512i eh = _mm512_sub_epi32(e_ceil, one);
        const __mmask16 valid = _mm512_cmpge_epi32_mask(eh, emin);
        const __mmask16 live = (__mmask16)(valid & finite & ~zero & lanes);
        __mmask16 take = 0;
        if (fused || live) { /* errors under both scales (fused: and both candidates' codes) */
            /* y = |v|·2^−e_ceil ≤ 4 per lane; halfs_q: both candidates in units of the ceil
             * scale (a lane whose halved scale is below the E8M0 minimum is not live: its C1
             * codes are never selected) */
            const __m512 ec = pow2_ps(_mm512_sub_epi32(_mm512_setzero_si512(), e_ceil));
            __m512 accc = _mm512_setzero_ps(), acch = _mm512_setzero_ps();
            __m512i dif = _mm512_setzero_si512();
            if (fused) {
                for (int k = 0; k < B / 8; k++) {
                    __m512i c0 = _mm512_setzero_si512(), c1 = c0, sg = c0;
                    /* unrolled: j is the constant nibble position of each step's code */
#pragma GCC unroll 8
                    for (int j = 0; j < 8; j++) {
                        /* the sums exactly as below; qc, qh: the rounded magnitudes of both
                         * candidates in units of the ceil scale, whose codes they give */
                        const __m512 vi = VX(8 * k + j);
                        const __m512 y = _mm512_mul_ps(abs_ps(vi), ec);
                        __m512 qh, qc = halfs_q(y, &qh);
                        const __m512 d0 = _mm512_sub_ps(y, qc), d1 = _mm512_sub_ps(y, qh);
                        accc = _mm512_fmadd_ps(d0, d0, accc);
                        acch = _mm512_fmadd_ps(d1, d1, acch);
                        dif = _mm512_ternarylogic_epi32(dif, _mm512_castps_si512(d0), _mm512_castps_si512(d1), 0xF6);
                        c0 = _mm512_or_si512(c0, col_code_mag(qc, j, 0));
                        c1 = _mm512_or_si512(c1, col_code_mag(qh, j, 1));
                        sg = _mm512_ternarylogic_epi32(sg, _mm512_srli_epi32(_mm512_castps_si512(vi), 28 - 4 * j),
                                                       _mm512_set1_epi32((int)(8u << (4 * j))), 0xF8);
                    }
                    C0[k] = c0;
                    C1[k] = c1;
                    SG[k] = sg;
                }
            } else {
                for (int i = 0; i < B; i++) {
                    /* the arguments of step16: d exact, d_c = d_h iff x̂_c = x̂_h; zero padding adds 0 */
                    const __m512 y = _mm512_mul_ps(abs_ps(VX(i)), ec);
                    __m512 qh, qc = halfs_q(y, &qh);
                    const __m512 d0 = _mm512_sub_ps(y, qc), d1 = _mm512_sub_ps(y, qh);
                    accc = _mm512_fmadd_ps(d0, d0, accc);
                    acch = _mm512_fmadd_ps(d1, d1, acch);
                    dif = _mm512_ternarylogic_epi32(dif, _mm512_castps_si512(d0), _mm512_castps_si512(d1), 0xF6);
                }
            }
            const __mmask16 differ = _mm512_test_epi32_mask(dif, dif);
            if (live) halfs_call(acch, accc, differ, live, B, e_ceil, &take, &patch);
        }
        e = _mm512_mask_mov_epi32(e_ceil, take, eh);
        sel1 = take;
    }
    __mmask16 halved;
    const __m512i stored = finish_scale(&e, e_ceil, emin, zero, finite, &halved);
    __m512 encv = pow2_ps(_mm512_sub_epi32(_mm512_setzero_si512(), e));
    uint8_t st8[16];
    _mm_storeu_si128((__m128i *)st8, _mm512_cvtepi32_epi8(stored));
    if (patch) { /* rare: the reference decides (exact double sums) on the gathered group */
        float enc[16], gv[32];
        _mm512_storeu_ps(enc, encv);
        while (patch) {
            int l = __builtin_ctz(patch);
            patch &= (__mmask16)(patch - 1);
            for (int i = 0; i < n; i++) gv[i] = xb[i * ld + l];
            hs_group_scale gs = hs_scale_choose(s, gv, n, 1.0f);
            st8[l] = (uint8_t)gs.stored;
            enc[l] = gs.enc_mul;
            halved = gs.halved ? (__mmask16)(halved | (1u << l)) : (__mmask16)(halved & ~(1u << l));
            /* fused: the reference chose ceil or ceil − 1 (halfs has no other candidate) */
            sel1 = gs.halved ? (__mmask16)(sel1 | (1u << l)) : (__mmask16)(sel1 & ~(1u << l));
        }
        encv = _mm512_loadu_ps(enc);
    }
    for (int l = 0; l < nb; l++) scales[(j0 + l) * gpr + g] = st8[l];

    /* codes: dword k of lane l = elements 8k .. 8k+7 of packed row j0 + l */
    __m512i D[4];
    __m512i b0 = _mm512_setzero_si512(), b1 = _mm512_setzero_si512();
    if (mode) {
        const __m512i gam = _mm512_set1_epi64((long long)HS_RNG_GAMMA);
        const __m512i lidx = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
        /* key + (r·C + c0 + 1)·γ, r = j0 + l (wrapping uint64 arithmetic, as the reference) */
        __m512i rr = _mm512_add_epi64(_mm512_set1_epi64((long long)j0), lidx);
        __m512i idx = _mm512_add_epi64(_mm512_mullo_epi64(rr, _mm512_set1_epi64((long long)C)),
                                       _mm512_set1_epi64((long long)(c0 + 1)));
        b0 = _mm512_add_epi64(_mm512_set1_epi64((long long)key), _mm512_mullo_epi64(idx, gam));
        __m512i idx1 = _mm512_add_epi64(idx, _mm512_set1_epi64((long long)(8 * C)));
        b1 = _mm512_add_epi64(_mm512_set1_epi64((long long)key), _mm512_mullo_epi64(idx1, gam));
    }
    for (int k = 0; k < B / 8; k++) {
        if (fused) { /* the chosen candidate's codes, the signs */
            D[k] = _mm512_maskz_mov_epi32(finite, _mm512_or_si512(_mm512_mask_mov_epi32(C0[k], sel1, C1[k]), SG[k]));
            continue;
        }
        __m512i d = _mm512_setzero_si512();
        for (int j = 0; j < 8; j++) {
            __m512i c = mode == 0 ? col_enc_rne(VX(8 * k + j), encv, j)
                                  : col_enc_sr(VX(8 * k + j), encv, j, &b0, &b1, mode == 2);
            d = _mm512_or_si512(d, c);
        }
        /* past the column's end: zero elements encode as +0 (RNE); SR of 0 is 0 too */
        D[k] = _mm512_maskz_mov_epi32(finite, d);
    }
    uint8_t *dst = codes + j0 * code_stride + c0 / 2;
    const __m512i i01lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i i01hi = _mm512_add_epi32(i01lo, _mm512_set1_epi32(8));
    __m512i a_lo = _mm512_permutex2var_epi32(D[0], i01lo, D[1]), a_hi = _mm512_permutex2var_epi32(D[0], i01hi, D[1]);
    if (B == 16) { /* 8 bytes per packed row: qword p of a_lo / a_hi = row p / 8 + p */
        uint64_t q[16];
        _mm512_storeu_si512(q, a_lo);
        _mm512_storeu_si512(q + 8, a_hi);
        for (int l = 0; l < nb; l++) memcpy(dst + l * code_stride, &q[l], 8);
    } else {
        const __m512i q_lo = _mm512_set_epi64(11, 3, 10, 2, 9, 1, 8, 0);
        const __m512i q_hi = _mm512_add_epi64(q_lo, _mm512_set1_epi64(4));
        __m512i b_lo = _mm512_permutex2var_epi32(D[2], i01lo, D[3]), b_hi = _mm512_permutex2var_epi32(D[2], i01hi, D[3]);
        __m512i o[4] = {_mm512_permutex2var_epi64(a_lo, q_lo, b_lo), _mm512_permutex2var_epi64(a_lo, q_hi, b_lo),
                        _mm512_permutex2var_epi64(a_hi, q_lo, b_hi), _mm512_permutex2var_epi64(a_hi, q_hi, b_hi)};
        if (nb >= 16) {
            for (int kk = 0; kk < 4; kk++) {
                _mm_storeu_si128((__m128i *)(dst + (4 * kk + 0) * code_stride), _mm512_castsi512_si128(o[kk]));
                _mm_storeu_si128((__m128i *)(dst + (4 * kk + 1) * code_stride), _mm512_extracti32x4_epi32(o[kk], 1));
                _mm_storeu_si128((__m128i *)(dst + (4 * kk + 2) * code_stride), _mm512_extracti32x4_epi32(o[kk], 2));
                _mm_storeu_si128((__m128i *)(dst + (4 * kk + 3) * code_stride), _mm512_extracti32x4_epi32(o[kk], 3));
            }
        } else {
            uint8_t rb[256];
            for (int kk = 0; kk < 4; kk++) _mm512_storeu_si512(rb + 64 * kk, o[kk]);
            for (int l = 0; l < nb; l++) memcpy(dst + l * code_stride, rb + 16 * l, 16);
        }
    }
    return __builtin_popcount((unsigned)(halved & lanes));
#undef VX
}

/* Columns per band of the column-wise kernel (a multiple of 16). A band is B x rows ×
 * HS_QCOL_BAND columns (16 KB for B = 32): read from memory row by row, then encoded from
 * the tiles. 4096² single-threaded `halfs bench quant` (under load): 128 beat 64, 256 and the
 * former group-at-a-time walk (~+35% for ocp and halfs); the fused kernel keeps that walk
 * (its x rows are already in cache; the bands measured no better there: M = 4096 rows × 256,
 * 768 and 4096 columns, ocp and halfs, within noise). */
enum { HS_QCOL_BAND = 128 };

static inline __attribute__((always_inline)) int64_t
cols_b(const hs_quant_spec *s, const int B, const int mode, const float *x, int64_t ld, int64_t R,
       int64_t C, int64_t jb, int64_t je, int64_t g0, int64_t g1, uint8_t *codes, int64_t code_stride,
       uint8_t *scales, uint64_t key) {
    const int64_t gpr = (C + B - 1) / B;
    int64_t halved = 0;
    /* A strip of packed rows [jb, je), groups g0 .. g1−1 top to bottom, each group in bands of
     * HS_QCOL_BAND columns. Why bands: walking 16 columns down B rows at a time keeps B
     * strided streams (ld·4 bytes apart: the same L1 sets) in flight, which neither the
     * hardware prefetcher nor the L1 handles well; a band is read row after row instead.
     * tile: per 16 columns of the band, B rows of 16 floats (+16 floats of padding, so the
     * tiles do not all fall in the same L1 sets) */
    enum { TS = 32 * 16 + 16 };
    float tile[HS_QCOL_BAND / 16 * TS] __attribute__((aligned(64)));
    __m512i am[HS_QCOL_BAND / 16];
    const __m512i absm = _mm512_set1_epi32(0x7FFFFFFF);
    for (int64_t g = g0; g < g1; g++)
        for (int64_t bb = jb; bb < je; bb += HS_QCOL_BAND) {
            const int64_t be = je - bb < HS_QCOL_BAND ? je : bb + HS_QCOL_BAND;
            const int64_t c0 = g * B;
            const int n = C - c0 < B ? (int)(C - c0) : B;
            const int full = (int)((be - bb) / 16), rem = (int)((be - bb) % 16);
            const int nv = full + (rem > 0);
            /* where the next band starts (prefetched while this one is read; a hint, never
             * faults): the same rows further right, or the next group's rows at jb */
            const int64_t pfo = be < je ? HS_QCOL_BAND : B * ld - (bb - jb);
            /* pass 1: the band's n x rows read one after the other (contiguous runs of
             * (be − bb)·4 bytes: streams the prefetchers follow), copied to the tiles, the
             * per-column amax kept in am */
            for (int k = 0; k < nv; k++) am[k] = _mm512_setzero_si512();
            for (int i = 0; i < n; i++) {
                const float *row = x + (c0 + i) * ld + bb;
                int k = 0;
                for (; k < full; k++) {
                    _mm_prefetch((const char *)(row + 16 * k + pfo), _MM_HINT_T1);
                    __m512i t = _mm512_loadu_si512(row + 16 * k);
                    _mm512_store_si512(tile + k * TS + 16 * i, t);
                    am[k] = _mm512_max_epu32(am[k], _mm512_and_si512(t, absm));
                }
                if (rem) {
                    __m512i t = _mm512_maskz_loadu_epi32((__mmask16)((1u << rem) - 1), row + 16 * k);
                    _mm512_store_si512(tile + k * TS + 16 * i, t);
                    am[k] = _mm512_max_epu32(am[k], _mm512_and_si512(t, absm));
                }
            }
            /* a short last group (n < B): its tile rows past n read as zeros by colstep */
            for (int i = n; i < B; i++)
                for (int k = 0; k < nv; k++) _mm512_store_si512(tile + k * TS + 16 * i, _mm512_setzero_si512());
            /* pass 2: encode and transpose, 16 packed rows at a time, from the tiles. Each
             * step also prefetches one 64-byte line per x row of the next band (the same 16
             * columns of it): spread over the compute this way, the next band's reads overlap
             * it, where pass 1's prefetches alone leave most of them to the next pass 1 (one
             * thread, 4096², under load, separate runs: ocp ~59% → ~67% of copy). Hints only:
             * never fault, results unchanged. */
            const float *nxt = be < je ? x + c0 * ld + be : g + 1 < g1 ? x + (c0 + B) * ld + jb : NULL;
            const int nn = be < je ? n : g + 1 < g1 ? (int)(C - c0 - B < B ? C - c0 - B : B) : 0;
            for (int64_t j0 = bb; j0 < be; j0 += 16) {
                int nb = be - j0 < 16 ? (int)(be - j0) : 16;
                const int k = (int)((j0 - bb) / 16);
                for (int i = 0; i < nn; i++) _mm_prefetch((const char *)(nxt + i * ld + 16 * k), _MM_HINT_T1);
                halved += colstep(s, B, mode, x, ld, C, g, j0, nb, codes, code_stride, scales, gpr,
                                  key, 0, &am[k], tile + k * TS, 0);
            }
        }
    (void)R;
    return halved;
}

/* Groups [g0, g1) of every packed row (the fused row + column quantizer: a few x rows at a
 * time, just read by the row-wise kernel, so still in cache). */
static inline __attribute__((always_inline)) int64_t
cols_g_b(const hs_quant_spec *s, const int B, const int mode, const float *x, int64_t ld, int64_t R,
         int64_t C, int64_t g0, int64_t g1, uint8_t *codes, int64_t code_stride, uint8_t *scales,
         uint64_t key) {
    const int64_t gpr = (C + B - 1) / B;
    int64_t halved = 0;
    for (int64_t g = g0; g < g1; g++)
        for (int64_t j0 = 0; j0 < R; j0 += 16) {
            int nb = R - j0 < 16 ? (int)(R - j0) : 16;
            if (nb == 16 && C - g * B >= B) /* whole group */
                halved += colstep(s, B, mode, x, ld, C, g, j0, nb, codes, code_stride, scales, gpr, key, 1, NULL, NULL, 1);
            else
                halved += colstep(s, B, mode, x, ld, C, g, j0, nb, codes, code_stride, scales, gpr, key, 1, NULL, NULL, 0);
        }
    return halved;
}

static __attribute__((noinline)) int64_t
cols_strip(const hs_quant_spec *s, const float *x, int64_t ld, int64_t R, int64_t C, int64_t jb,
           int64_t je, int64_t g0, int64_t g1, uint8_t *codes, int64_t code_stride,
           uint8_t *scales) {
    const int sr = s->rounding == HS_ROUND_SR, pre = hs_spec_sr_prescaled(s);
    const uint64_t key = sr ? hs_rng_key(s->seed, s->stream) : 0;
#define COLS(B_, M_) cols_b(s, B_, M_, x, ld, R, C, jb, je, g0, g1, codes, code_stride, scales, key)
    if (s->block == 32) return !sr ? COLS(32, 0) : pre ? COLS(32, 2) : COLS(32, 1);
    return !sr ? COLS(16, 0) : pre ? COLS(16, 2) : COLS(16, 1);
#undef COLS
}

static __attribute__((noinline)) int64_t
cols_groups(const hs_quant_spec *s, const float *x, int64_t ld, int64_t R, int64_t C, int64_t g0,
            int64_t g1, uint8_t *codes, int64_t code_stride, uint8_t *scales) {
    const int sr = s->rounding == HS_ROUND_SR, pre = hs_spec_sr_prescaled(s);
    const uint64_t key = sr ? hs_rng_key(s->seed, s->stream) : 0;
#define COLS(B_, M_) cols_g_b(s, B_, M_, x, ld, R, C, g0, g1, codes, code_stride, scales, key)
    if (s->block == 32) return !sr ? COLS(32, 0) : pre ? COLS(32, 2) : COLS(32, 1);
    return !sr ? COLS(16, 0) : pre ? COLS(16, 2) : COLS(16, 1);
#undef COLS
}

/* Groups [g0, g1) of packed rows [jb, je). A call for one group of every packed row (the fused
 * quantizer's: its x rows were just read by the row-wise kernel, so they are in cache) walks
 * them 16 columns at a time (cols_g_b); otherwise a strip is read in bands (cols_b). */
static int64_t qmx_cols(const hs_quant_spec *s, const float *x, int64_t ld, int64_t R, int64_t C,
                        int64_t jb, int64_t je, int64_t g0, int64_t g1, uint8_t *codes,
                        int64_t code_stride, uint8_t *scales) {
    if (jb == 0 && je == R && g1 - g0 == 1)
        return cols_groups(s, x, ld, R, C, g0, g1, codes, code_stride, scales);
    return cols_strip(s, x, ld, R, C, jb, je, g0, g1, codes, code_stride, scales);
}

const hs_qmx_ops hs_qmx_ops_avx512 = {qmx_rows_flat, qmx_row, qmx_cols};

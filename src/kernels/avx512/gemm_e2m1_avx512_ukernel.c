/* gemm_e2m1_avx512_ukernel.c: the AVX512-VNNI micro-kernels and the operand packers of the
 * packed E2M1 GEMM (gemm_e2m1_avx512.c holds the blocking and threading, and describes the
 * layouts).
 *
 * Kept apart so the build compiles them with clang (Makefile: *_ukernel.c): gcc 12 turns this
 * loop into register copies and stack spills around every vpdpbusd. Check with
 * `objdump -d` that the k-loop is 3 loads, 4 broadcasts, 12 vpdpbusd and the loop counter.
 * Tile: MR = 4 rows × NB = 48 columns; 12 int32 accumulators (+ 12 fp32 in grouped mode).
 * The driver uses hs_ukernel_e2m1_mx_avx512 (grouped, FMA-folded conversion),
 * hs_ukernel_e2m1_rx_avx512 (row mode) and hs_ukernel_e2m1_grouped_avx512 (FP32 or huge
 * scales, accumulators in the driver's tile). The packers (hs_pack_e2m1_a_avx512,
 * hs_pack_e2m1_b_avx512) are here for the same reason: gcc 12 keeps their decoded rows and
 * permute results on the stack; clang keeps them in registers (A packs about 1.3x faster).
 */
#include <immintrin.h>
#include <stdint.h>

#include "kernels/avx512/transpose_avx512.h"
#include "kernels/avx512/ukernel_avx512.h"
#include "kernels/avx512/gemm_e2m1_avx512.h"
#include "kernels/kernels.h"

enum {
    MR = HS_E2M1_MR,
    NB = HS_E2M1_NB,
    B_OFFSET = 12, /* B bytes are stored as doubled value + 12 (unsigned) */
};

/* Grouped micro-kernel: groups [0, ng) of one chunk; the last may be short (steps_total).
 * facc: (MR, NB) fp32 accumulators in/out. */
void hs_ukernel_e2m1_grouped_avx512(const int32_t *ap /* (steps, MR) */, const int32_t *bp /* (steps, NB) */,
                            int64_t ng, int64_t gs, int64_t steps_total,
                            const float *sa /* (ng, MR) */, const int32_t *ca /* (ng, MR) */,
                            const float *sb /* (ng, NB) */, float *facc /* (MR, NB) */) {
    __m512 f00 = _mm512_loadu_ps(facc + 0 * NB + 0), f01 = _mm512_loadu_ps(facc + 0 * NB + 16),
           f02 = _mm512_loadu_ps(facc + 0 * NB + 32);
    __m512 f10 = _mm512_loadu_ps(facc + 1 * NB + 0), f11 = _mm512_loadu_ps(facc + 1 * NB + 16),
           f12 = _mm512_loadu_ps(facc + 1 * NB + 32);
    __m512 f20 = _mm512_loadu_ps(facc + 2 * NB + 0), f21 = _mm512_loadu_ps(facc + 2 * NB + 16),
           f22 = _mm512_loadu_ps(facc + 2 * NB + 32);
    __m512 f30 = _mm512_loadu_ps(facc + 3 * NB + 0), f31 = _mm512_loadu_ps(facc + 3 * NB + 16),
           f32 = _mm512_loadu_ps(facc + 3 * NB + 32);
    for (int64_t g = 0; g < ng; g++) {
        int64_t steps = steps_total - g * gs < gs ? steps_total - g * gs : gs;
        __m512i c0 = _mm512_set1_epi32(ca[g * MR + 0]), c1 = _mm512_set1_epi32(ca[g * MR + 1]),
                c2 = _mm512_set1_epi32(ca[g * MR + 2]), c3 = _mm512_set1_epi32(ca[g * MR + 3]);
        __m512i i00 = c0, i01 = c0, i02 = c0, i10 = c1, i11 = c1, i12 = c1;
        __m512i i20 = c2, i21 = c2, i22 = c2, i30 = c3, i31 = c3, i32 = c3;
        const int32_t *a = ap + g * gs * MR, *b = bp + g * gs * NB;
        for (int64_t s = 0; s < steps; s++, a += MR, b += NB) {
            __m512i b0 = _mm512_loadu_si512(b), b1 = _mm512_loadu_si512(b + 16),
                    b2 = _mm512_loadu_si512(b + 32);
            __m512i a0 = _mm512_set1_epi32(a[0]);
            i00 = _mm512_dpbusd_epi32(i00, b0, a0);
            i01 = _mm512_dpbusd_epi32(i01, b1, a0);
            i02 = _mm512_dpbusd_epi32(i02, b2, a0);
            __m512i a1 = _mm512_set1_epi32(a[1]);
            i10 = _mm512_dpbusd_epi32(i10, b0, a1);
            i11 = _mm512_dpbusd_epi32(i11, b1, a1);
            i12 = _mm512_dpbusd_epi32(i12, b2, a1);
            __m512i a2 = _mm512_set1_epi32(a[2]);
            i20 = _mm512_dpbusd_epi32(i20, b0, a2);
            i21 = _mm512_dpbusd_epi32(i21, b1, a2);
            i22 = _mm512_dpbusd_epi32(i22, b2, a2);
            __m512i a3 = _mm512_set1_epi32(a[3]);
            i30 = _mm512_dpbusd_epi32(i30, b0, a3);
            i31 = _mm512_dpbusd_epi32(i31, b1, a3);
            i32 = _mm512_dpbusd_epi32(i32, b2, a3);
        }
        /* t = (float)isum · sb; acc = fma(t, sa, acc): the reference's two roundings */
        const float *sbg = sb + g * NB;
        __m512 s0 = _mm512_loadu_ps(sbg), s1 = _mm512_loadu_ps(sbg + 16),
               s2 = _mm512_loadu_ps(sbg + 32);
        __m512 r;
        r = _mm512_set1_ps(sa[g * MR + 0]);
        f00 = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(i00), s0), r, f00);
        f01 = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(i01), s1), r, f01);
        f02 = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(i02), s2), r, f02);
        r = _mm512_set1_ps(sa[g * MR + 1]);
        f10 = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(i10), s0), r, f10);
        f11 = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(i11), s1), r, f11);
        f12 = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(i12), s2), r, f12);
        r = _mm512_set1_ps(sa[g * MR + 2]);
        f20 = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(i20), s0), r, f20);
        f21 = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(i21), s1), r, f21);
        f22 = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(i22), s2), r, f22);
        r = _mm512_set1_ps(sa[g * MR + 3]);
        f30 = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(i30), s0), r, f30);
        f31 = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(i31), s1), r, f31);
        f32 = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(i32), s2), r, f32);
    }
    _mm512_storeu_ps(facc + 0 * NB + 0, f00), _mm512_storeu_ps(facc + 0 * NB + 16, f01),
        _mm512_storeu_ps(facc + 0 * NB + 32, f02);
    _mm512_storeu_ps(facc + 1 * NB + 0, f10), _mm512_storeu_ps(facc + 1 * NB + 16, f11),
        _mm512_storeu_ps(facc + 1 * NB + 32, f12);
    _mm512_storeu_ps(facc + 2 * NB + 0, f20), _mm512_storeu_ps(facc + 2 * NB + 16, f21),
        _mm512_storeu_ps(facc + 2 * NB + 32, f22);
    _mm512_storeu_ps(facc + 3 * NB + 0, f30), _mm512_storeu_ps(facc + 3 * NB + 16, f31),
        _mm512_storeu_ps(facc + 3 * NB + 32, f32);
}

/* ---- grouped (magic) micro-kernel that starts at +0 and/or finishes into C ----
 * Per output element the operations of hs_ukernel_e2m1_grouped_avx512 with the int32 → fp32
 * conversion folded into an FMA, then the driver's store: the int32 sums start at the bits of
 * 1.5·2^23 (+ correction), t = fma(1.5·2^23 + isum, sb, −1.5·2^23·sb), acc = fma(t, sa, acc) per
 * group, then v = acc·post and fma(beta, C, v). What it saves: the round trip of the
 * accumulators through the per-thread tile (init, load, store, reload) when a tile has one K
 * chunk, the dot products of the padding columns of a narrow last panel (NV < 3), and the wait
 * for C's cache lines (prefetched for writing when the kernel starts, written when it ends). */

/* Row r, column vector j of a tile into C: v, or fma(beta, C, v) unless beta0; masked to the
 * tile's valid columns; a streaming store for a whole aligned vector when out->nt. */
static inline __attribute__((always_inline)) void store_c(const hs_e2m1_out *out, int r, int j,
                                                          __m512 v, __m512 vbeta, int beta0) {
    int w = out->cols - 16 * j;
    __mmask16 m = w >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << w) - 1);
    float *dst = out->c + r * out->ldc + 16 * j;
    if (!beta0) v = _mm512_fmadd_ps(vbeta, _mm512_maskz_loadu_ps(m, dst), v);
    if (out->nt && w >= 16 && ((uintptr_t)dst & 63) == 0) _mm512_stream_ps(dst, v);
    else _mm512_mask_storeu_ps(dst, m, v);
}

static inline __attribute__((always_inline)) void mx_tile(
    const int32_t *ap /* (steps, MR) */, const int32_t *bp /* (steps, NB) */, int64_t ng,
    int64_t gs, int64_t steps_total, const float *sa /* (ng, MR) */,
    const int32_t *ca /* (ng, MR) */, const float *sb /* (ng, NB) */,
    const float *nc /* (ng, NB) */, float *facc /* (MR, NB) */, int first,
    const hs_e2m1_out *out, const int64_t GS, const int NV) {
    __m512 f[MR][3];
UNROLL
    for (int r = 0; r < MR; r++)
UNROLL
        for (int j = 0; j < NV; j++)
            f[r][j] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(facc + r * NB + 16 * j);
    if (out) /* C's lines, for writing, while the dot products run */
        hs_prefetch_c_tile(out->c, out->ldc, out->rows, MR, NV);
    const int32_t M = 0x4B400000; /* bits of 1.5·2^23 */
    for (int64_t g = 0; g < ng; g++) {
        int64_t steps = GS ? GS : steps_total - g * gs < gs ? steps_total - g * gs : gs;
        __m512i i[MR][3];
UNROLL
        for (int r = 0; r < MR; r++) {
            __m512i c0 = _mm512_set1_epi32(ca[g * MR + r] + M);
UNROLL
            for (int j = 0; j < NV; j++) i[r][j] = c0;
        }
        const int32_t *a = ap + g * gs * MR, *b = bp + g * gs * NB;
#pragma GCC unroll 8
        for (int64_t s = 0; s < steps; s++, a += MR, b += NB) {
            __m512i bv[3]; /* every element set: clang keeps a partly set array in memory */
UNROLL
            for (int j = 0; j < 3; j++)
                bv[j] = j < NV ? _mm512_loadu_si512(b + 16 * j) : _mm512_setzero_si512();
UNROLL
            for (int r = 0; r < MR; r++) {
                __m512i av = _mm512_set1_epi32(a[r]);
UNROLL
                for (int j = 0; j < NV; j++) i[r][j] = _mm512_dpbusd_epi32(i[r][j], bv[j], av);
            }
        }
        const float *sbg = sb + g * NB, *ncg = nc + g * NB;
        __m512 s[3], n[3];
UNROLL
        for (int j = 0; j < 3; j++) {
            s[j] = j < NV ? _mm512_loadu_ps(sbg + 16 * j) : _mm512_setzero_ps();
            n[j] = j < NV ? _mm512_loadu_ps(ncg + 16 * j) : _mm512_setzero_ps();
        }
UNROLL
        for (int r = 0; r < MR; r++) {
            __m512 rv = _mm512_set1_ps(sa[g * MR + r]);
UNROLL
            for (int j = 0; j < NV; j++)
                f[r][j] = _mm512_fmadd_ps(
                    _mm512_fmadd_ps(_mm512_castsi512_ps(i[r][j]), s[j], n[j]), rv, f[r][j]);
        }
    }
    if (!out) {
UNROLL
        for (int r = 0; r < MR; r++)
UNROLL
            for (int j = 0; j < NV; j++) _mm512_storeu_ps(facc + r * NB + 16 * j, f[r][j]);
        return;
    }
    /* v = acc·post, then fma(beta, C, v): as the driver's store_tile, element for element */
    const __m512 vpost = _mm512_set1_ps(out->post), vbeta = _mm512_set1_ps(out->beta);
    const int beta0 = out->beta == 0.0f;
UNROLL
    for (int r = 0; r < MR; r++) {
        if (r >= out->rows) break;
UNROLL
        for (int j = 0; j < NV; j++) {
            if (out->cols <= 16 * j) break;
            store_c(out, r, j, _mm512_mul_ps(f[r][j], vpost), vbeta, beta0);
        }
    }
}

void hs_ukernel_e2m1_mx_avx512(const int32_t *ap, int64_t ap_stride, int64_t np,
                               const int32_t *bp, int64_t ng, int64_t gs, int64_t steps_total,
                               const float *sa, const int32_t *ca, int64_t s_stride,
                               const float *sb, const float *nc, float *facc, int64_t f_stride,
                               int nv, int first, const hs_e2m1_out *out) {
    /* blocks of 16 and 32 (4 and 8 k-steps) with whole groups get a fully unrolled loop; the
     * loop over the panels is inside each variant (one call and dispatch per B micro-panel) */
    int64_t GS = steps_total == ng * gs && (gs == 4 || gs == 8) ? gs : 0;
    hs_e2m1_out o = {0};
    if (out) o = *out;
#define MX(G, V)                                                                                  \
    for (int64_t i = 0; i < np; i++) {                                                            \
        if (out) {                                                                                \
            o.c = out->c + i * MR * out->ldc;                                                     \
            o.rows = out->rows - i * MR < MR ? out->rows - (int)(i * MR) : MR;                    \
        }                                                                                         \
        mx_tile(ap + i * ap_stride, bp, ng, gs, steps_total, sa + i * s_stride,                   \
                ca + i * s_stride, sb, nc, facc + i * f_stride, first, out ? &o : NULL, G, V);    \
    }
    if (nv >= 3) {
        if (GS == 8) MX(8, 3) else if (GS == 4) MX(4, 3) else MX(0, 3)
    } else if (nv == 2) {
        if (GS == 8) MX(8, 2) else if (GS == 4) MX(4, 2) else MX(0, 2)
    } else {
        if (GS == 8) MX(8, 1) else if (GS == 4) MX(4, 1) else MX(0, 1)
    }
#undef MX
}

/* ---- row mode (one scale per row): P = 1 or 2 panels (4 or 8 rows) × NV column vectors ----
 * int32 sums over the whole K, carried in iacc between chunks; the last chunk finishes into C
 * with the reference's operations for one group per row: t = (float)isum·sb,
 * acc = fma(t, sa, +0), v = acc·post, then fma(beta, C, v). */
static inline __attribute__((always_inline)) void rx_tile(
    const int32_t *ap0, const int32_t *ap1 /* (steps, MR) each */,
    const int32_t *bp /* (steps, NB) */, int64_t steps, int32_t *iacc0,
    int32_t *iacc1 /* (MR, NB) each */, const int32_t *ca /* (P·MR) */,
    const float *sa /* (P·MR) */, const float *sb /* (NB) */, int first,
    const hs_e2m1_out *out, const int P, const int NV) {
    __m512i i[2 * MR][3];
UNROLL
    for (int r = 0; r < P * MR; r++) {
        int32_t *src = r < MR ? iacc0 + r * NB : iacc1 + (r - MR) * NB;
        __m512i c0 = first ? _mm512_set1_epi32(ca[r]) : _mm512_setzero_si512();
UNROLL
        for (int j = 0; j < NV; j++)
            i[r][j] = first ? c0 : _mm512_loadu_si512(src + 16 * j);
    }
    if (out) hs_prefetch_c_tile(out->c, out->ldc, out->rows, P * MR, NV);
    for (int64_t s = 0; s < steps; s++, ap0 += MR, ap1 += MR, bp += NB) {
        __m512i bv[3];
UNROLL
        for (int j = 0; j < 3; j++)
            bv[j] = j < NV ? _mm512_loadu_si512(bp + 16 * j) : _mm512_setzero_si512();
UNROLL
        for (int r = 0; r < P * MR; r++) {
            __m512i av = _mm512_set1_epi32(r < MR ? ap0[r] : ap1[r - MR]);
UNROLL
            for (int j = 0; j < NV; j++) i[r][j] = _mm512_dpbusd_epi32(i[r][j], bv[j], av);
        }
    }
    if (!out) {
UNROLL
        for (int r = 0; r < P * MR; r++) {
            int32_t *dst = r < MR ? iacc0 + r * NB : iacc1 + (r - MR) * NB;
UNROLL
            for (int j = 0; j < NV; j++) _mm512_storeu_si512(dst + 16 * j, i[r][j]);
        }
        return;
    }
    const __m512 vpost = _mm512_set1_ps(out->post), vbeta = _mm512_set1_ps(out->beta);
    const int beta0 = out->beta == 0.0f;
    __m512 vsb[3];
UNROLL
    for (int j = 0; j < 3; j++) vsb[j] = j < NV ? _mm512_loadu_ps(sb + 16 * j) : _mm512_setzero_ps();
UNROLL
    for (int r = 0; r < P * MR; r++) {
        if (r >= out->rows) break;
        __m512 vsa = _mm512_set1_ps(sa[r]);
UNROLL
        for (int j = 0; j < NV; j++) {
            if (out->cols <= 16 * j) break;
            __m512 t = _mm512_mul_ps(_mm512_cvtepi32_ps(i[r][j]), vsb[j]);
            store_c(out, r, j, _mm512_mul_ps(_mm512_fmadd_ps(t, vsa, _mm512_setzero_ps()), vpost),
                    vbeta, beta0);
        }
    }
}

void hs_ukernel_e2m1_rx_avx512(const int32_t *ap0, const int32_t *ap1, const int32_t *bp,
                               int64_t steps, int32_t *iacc0, int32_t *iacc1, const int32_t *ca,
                               const float *sa, const float *sb, int nv, int first,
                               const hs_e2m1_out *out) {
#define RX(P, V) rx_tile(ap0, ap1, bp, steps, iacc0, iacc1, ca, sa, sb, first, out, P, V)
    if (ap1) {
        if (nv >= 3) RX(2, 3); else if (nv == 2) RX(2, 2); else RX(2, 1);
    } else {
        if (nv >= 3) RX(1, 3); else if (nv == 2) RX(1, 2); else RX(1, 1);
    }
#undef RX
}

/* ---- operand packing (gemm_e2m1_avx512.c describes the layouts) ---- */

/* Doubled E2M1 values by code, as bytes. */
static const int8_t dbl_tab[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

/* The byte-shuffle table of the decode: doubled value + off by code, in each 128-bit lane. */
static inline __m512i decode_table(int off) {
    __m128i t = _mm_add_epi8(_mm_loadu_si128((const __m128i *)dbl_tab), _mm_set1_epi8((char)off));
    return _mm512_broadcast_i32x4(t);
}

/* Elements [4s, 4s + 64) of one row of k codes decoded to bytes (doubled value + off), as the
 * 16 int32 words of k-steps s..s+15; elements ≥ k (the high nibble of an odd row's last byte,
 * the k-step padding) encode 0, i.e. are off. Needs s < k4 (at least one element). */
static inline __m512i decode_steps(const uint8_t *codes, int64_t k, int64_t s, __m512i tbl,
                                   __m512i offv) {
    const __m512i lo = _mm512_set1_epi16(0x000F), hi = _mm512_set1_epi16(0x0F00);
    int64_t nbytes = (k + 1) / 2 - 2 * s, ne = k - 4 * s;
    __m256i raw = nbytes >= 32 ? _mm256_loadu_si256((const __m256i *)(codes + 2 * s))
                               : _mm256_maskz_loadu_epi8((__mmask32)((1ull << nbytes) - 1),
                                                         codes + 2 * s);
    __m512i w = _mm512_cvtepu8_epi16(raw);
    /* word = code byte: low nibble (element 2i) to byte 0, high nibble to byte 1 */
    __m512i x = _mm512_or_si512(_mm512_and_si512(w, lo),
                                _mm512_and_si512(_mm512_slli_epi16(w, 4), hi));
    __m512i d = _mm512_shuffle_epi8(tbl, x);
    return ne >= 64 ? d : _mm512_mask_mov_epi8(offv, (__mmask64)((1ull << ne) - 1), d);
}

/* Four rows of 16 int32 words each to [i][r] order (word i of row r at 4·i + r), as four
 * vectors of 4 words × 4 rows: two rounds of two-source permutes. */
static inline void interleave4(__m512i r0, __m512i r1, __m512i r2, __m512i r3, __m512i o[4]) {
    const __m512i i01lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i i01hi = _mm512_add_epi32(i01lo, _mm512_set1_epi32(8));
    const __m512i q_lo = _mm512_set_epi64(11, 3, 10, 2, 9, 1, 8, 0);
    const __m512i q_hi = _mm512_add_epi64(q_lo, _mm512_set1_epi64(4));
    __m512i a_lo = _mm512_permutex2var_epi32(r0, i01lo, r1); /* words 0..7 of rows 0,1 */
    __m512i a_hi = _mm512_permutex2var_epi32(r0, i01hi, r1); /* words 8..15 */
    __m512i b_lo = _mm512_permutex2var_epi32(r2, i01lo, r3);
    __m512i b_hi = _mm512_permutex2var_epi32(r2, i01hi, r3);
    o[0] = _mm512_permutex2var_epi64(a_lo, q_lo, b_lo);
    o[1] = _mm512_permutex2var_epi64(a_lo, q_hi, b_lo);
    o[2] = _mm512_permutex2var_epi64(a_hi, q_lo, b_hi);
    o[3] = _mm512_permutex2var_epi64(a_hi, q_hi, b_hi);
}

/* Store the first n (1..16) items of 4 words of an interleave4 result to dst[4·i .. 4·i + 3]. */
static inline void store_interleaved(int32_t *dst, const __m512i o[4], int64_t n) {
    for (int t = 0; t < 4 && 4 * t < n; t++) {
        if (n - 4 * t >= 4)
            _mm512_storeu_si512(dst + 16 * t, o[t]);
        else
            _mm512_mask_storeu_epi32(dst + 16 * t, (__mmask16)((1u << ((n - 4 * t) * 4)) - 1),
                                     o[t]);
    }
}

/* Decoded scales of groups [g, g + n) (n ≤ 16) of row `row` as 16 floats (zero past n), each
 * the 256-entry table's value for its code (NaN codes included): E8M0 by arithmetic (code e in
 * 1..254 is 2^(e−127), the bits e << 23; codes 0 and 255 from the table), UE4M3 by permutes
 * over the table (8 × 32 entries), FP32 scales as they are. */
static inline __m512 scales16(const hs_packed *p, const float *tab, int64_t row, int64_t g,
                              int64_t n) {
    __mmask16 m = n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1);
    if (p->spec.scale_fmt == HS_SCALE_FP32)
        return _mm512_maskz_loadu_ps(m, (const float *)p->scales + row * p->groups_per_row + g);
    const uint8_t *src = (const uint8_t *)p->scales + row * p->groups_per_row + g;
    __m512i e = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, src));
    __m512 v;
    if (p->spec.scale_fmt == HS_SCALE_E8M0) {
        v = _mm512_castsi512_ps(_mm512_slli_epi32(e, 23));
        v = _mm512_mask_mov_ps(v, _mm512_cmpeq_epi32_mask(e, _mm512_setzero_si512()),
                               _mm512_set1_ps(tab[0]));
        v = _mm512_mask_mov_ps(v, _mm512_cmpeq_epi32_mask(e, _mm512_set1_epi32(255)),
                               _mm512_set1_ps(tab[255]));
    } else {
        __m512i hi = _mm512_srli_epi32(e, 5); /* which 32 entries */
        v = _mm512_permutex2var_ps(_mm512_loadu_ps(tab), e, _mm512_loadu_ps(tab + 16));
        for (int j = 1; j < 8; j++)
            v = _mm512_mask_mov_ps(v, _mm512_cmpeq_epi32_mask(hi, _mm512_set1_epi32(j)),
                                   _mm512_permutex2var_ps(_mm512_loadu_ps(tab + 32 * j), e,
                                                          _mm512_loadu_ps(tab + 32 * j + 16)));
    }
    return _mm512_maskz_mov_ps(m, v);
}

/* Corrections −12·Σa per (group, row) of one packed A panel from its packed words: a second
 * pass, for groups that are not whole multiples of 4 k-steps (blocks of 4 or 8 elements, which
 * no preset format has). */
static void corrections_pass(const hs_e2m1_pack *x, const int32_t *pa /* (k4, MR) */,
                             int32_t *ca /* (groups, MR) */) {
    const __m512i twelve = _mm512_set1_epi8(B_OFFSET);
    for (int64_t g = 0; g < x->groups; g++) {
        int64_t s0 = g * x->gs, s1 = s0 + x->gs < x->k4 ? s0 + x->gs : x->k4;
        __m512i acc = _mm512_setzero_si512();
        for (int64_t s = s0; s < s1; s += 4) {
            __m512i w = s + 4 <= s1 ? _mm512_loadu_si512(pa + s * MR)
                                    : _mm512_maskz_loadu_epi32(
                                          (__mmask16)((1u << ((s1 - s) * MR)) - 1), pa + s * MR);
            acc = _mm512_dpbusd_epi32(acc, twelve, w);
        }
        __m256i h = _mm256_add_epi32(_mm512_castsi512_si256(acc), _mm512_extracti64x4_epi64(acc, 1));
        __m128i q = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
        _mm_storeu_si128((__m128i *)(ca + g * MR), _mm_sub_epi32(_mm_setzero_si128(), q));
    }
}

/* Store −(the sum of acc's four 128-bit lanes): 4 rows' 12·Σa of one group. */
static inline void store_correction(int32_t *ca, __m512i acc) {
    __m256i h = _mm256_add_epi32(_mm512_castsi512_si256(acc), _mm512_extracti64x4_epi64(acc, 1));
    __m128i q = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
    _mm_storeu_si128((__m128i *)ca, _mm_sub_epi32(_mm_setzero_si128(), q));
}

/* A panel of MR = 4 rows in one pass: per 16 k-steps, decode each row into a register,
 * interleave the rows' words ([s][r] = row r's word s), store, and add the words into the
 * current group's correction 12·Σa (vpdpbusd against 12s; each 4-step vector lies in one group
 * when groups are whole multiples of 4 k-steps); then the scales, 16 groups × 4 rows at a
 * time with the same interleave. Rows past M are zero codes and zero scales. */
void hs_pack_e2m1_a_avx512(const hs_e2m1_pack *x, const hs_packed *a, int64_t p,
                           int32_t *dst /* (k4, MR) */, float *sa /* (groups, MR) */,
                           int32_t *ca /* (groups, MR) */) {
    int64_t k = x->k, k4 = x->k4, groups = x->groups, gs = x->gs;
    const float *tab = x->tab;
    int one_pass = x->row_mode || gs % 4 == 0;
    const __m512i tbl = decode_table(0), zero = _mm512_setzero_si512();
    const __m512i twelve = _mm512_set1_epi8(B_OFFSET);
    const uint8_t *rc[MR], *pf[MR];
    for (int r = 0; r < MR; r++) {
        int64_t row = p * MR + r, ahead = row + HS_E2M1_A_PREFETCH * MR;
        rc[r] = row < x->rows ? a->codes + row * a->code_stride : NULL;
        pf[r] = ahead < x->rows ? a->codes + ahead * a->code_stride : NULL;
    }
    __m512i acc = zero;
    int64_t g = 0;                               /* the group acc belongs to */
    int64_t gend = x->row_mode ? k4 : gs;        /* its end (k-steps) */
    /* the scales of the panel HS_E2M1_A_PREFETCH ahead (the codes: in the loop below) */
    int64_t sbytes = a->spec.scale_fmt == HS_SCALE_FP32 ? 4 : 1;
    for (int r = 0; r < MR; r++)
        for (int64_t o = 0; pf[r] && o < groups * sbytes; o += 64)
            _mm_prefetch((const char *)a->scales +
                             ((p + HS_E2M1_A_PREFETCH) * MR + r) * a->groups_per_row * sbytes + o,
                         _MM_HINT_T0);
    for (int64_t s = 0; s < k4; s += 16) {
        __m512i w[MR], o[4];
        /* The codes of the panel HS_E2M1_A_PREFETCH ahead: a task packs its rows between
         * micro-kernel runs, so the hardware prefetcher has no stream to follow into them. */
        for (int r = 0; r < MR; r++)
            if (pf[r]) _mm_prefetch((const char *)pf[r] + 2 * s, _MM_HINT_T0);
        for (int r = 0; r < MR; r++) w[r] = rc[r] ? decode_steps(rc[r], k, s, tbl, zero) : zero;
        interleave4(w[0], w[1], w[2], w[3], o);
        int64_t n = k4 - s < 16 ? k4 - s : 16;
        store_interleaved(dst + s * MR, o, n);
        if (!one_pass) continue;
        for (int t = 0; t < 4 && 4 * t < n; t++) {
            /* steps past k4 in o[t] are zero words: they add nothing */
            if (s + 4 * t >= gend) { /* the next group starts (one at a time: gs ≥ 4) */
                store_correction(ca + g * MR, acc);
                acc = zero;
                g++;
                gend += gs;
            }
            acc = _mm512_dpbusd_epi32(acc, twelve, o[t]);
        }
    }
    if (one_pass)
        store_correction(ca + g * MR, acc);
    else
        corrections_pass(x, dst, ca);
    for (int64_t g0 = 0; g0 < groups; g0 += 16) {
        int64_t n = groups - g0 < 16 ? groups - g0 : 16;
        __m512i f[MR], o[4];
        for (int r = 0; r < MR; r++)
            f[r] = rc[r] ? _mm512_castps_si512(scales16(a, tab, p * MR + r, g0, n)) : zero;
        interleave4(f[0], f[1], f[2], f[3], o);
        store_interleaved((int32_t *)sa + g0 * MR, o, n);
    }
}

/* A panel of NB = 48 columns of B, 16 at a time: per 16 k-steps, decode the 16 columns' rows
 * of B into registers and transpose them (16 k-steps × 16 columns) into the [k4][NB] layout;
 * the scales likewise, 16 groups × 16 columns per transpose (and nc = −1.5·2^23·sb).
 * Columns past N are zero codes (bytes 12) and zero scales. */
void hs_pack_e2m1_b_avx512(const hs_e2m1_pack *x, const hs_packed *b, int64_t q,
                           int32_t *dst /* (k4, NB) */, float *sb /* (groups, NB) */,
                           float *nc /* (groups, NB) */) {
    int64_t k = x->k, k4 = x->k4, groups = x->groups;
    const float *tab = x->tab;
    const __m512i tbl = decode_table(B_OFFSET), offv = _mm512_set1_epi8(B_OFFSET);
    for (int c0 = 0; c0 < NB; c0 += 16) {
        const uint8_t *rc[16], *pf[16];
        for (int i = 0; i < 16; i++) {
            int64_t col = q * NB + c0 + i;
            rc[i] = col < x->rows ? b->codes + col * b->code_stride : NULL;
            /* the next 16 columns' codes, prefetched while these are packed: 16 rows read in
             * parallel are more streams than the hardware prefetcher follows */
            pf[i] = c0 + 16 < NB && col + 16 < x->rows ? b->codes + (col + 16) * b->code_stride
                                                          : NULL;
        }
        int64_t nbytes = (k + 1) / 2;
        if (c0 == 0) /* the first 16 columns: their first 4 lines now, the rest runs ahead */
            for (int i = 0; i < 16; i++)
                for (int64_t o = 0; rc[i] && o < nbytes && o < 256; o += 64)
                    _mm_prefetch((const char *)rc[i] + o, _MM_HINT_T0);
        for (int64_t s = 0; s < k4; s += 16) {
            __m512i r[16], o[16];
            for (int i = 0; i < 16; i++) {
                if (pf[i]) _mm_prefetch((const char *)pf[i] + 2 * s, _MM_HINT_T0);
                if (c0 == 0 && rc[i] && 2 * s + 256 < nbytes)
                    _mm_prefetch((const char *)rc[i] + 2 * s + 256, _MM_HINT_T0);
            }
            for (int i = 0; i < 16; i++)
                r[i] = rc[i] ? decode_steps(rc[i], k, s, tbl, offv) : offv;
            hs_transpose16x16_epi32(r, o);
            int64_t n16 = k4 - s < 16 ? k4 - s : 16;
            for (int64_t t = 0; t < n16; t++) _mm512_storeu_si512(dst + (s + t) * NB + c0, o[t]);
        }
        for (int64_t g0 = 0; g0 < groups; g0 += 16) {
            int64_t n = groups - g0 < 16 ? groups - g0 : 16;
            __m512i r[16], o[16];
            for (int i = 0; i < 16; i++)
                r[i] = rc[i] ? _mm512_castps_si512(scales16(b, tab, q * NB + c0 + i, g0, n))
                             : _mm512_setzero_si512();
            hs_transpose16x16_epi32(r, o);
            /* nc exact: sb has ≤ 4 significant bits and is at most 2^100 (the driver passes
             * nc only then) */
            const __m512 mag = _mm512_set1_ps(-12582912.0f);
            for (int64_t t = 0; t < n; t++) {
                __m512 v = _mm512_castsi512_ps(o[t]);
                _mm512_storeu_ps(sb + (g0 + t) * NB + c0, v);
                if (nc) _mm512_storeu_ps(nc + (g0 + t) * NB + c0, _mm512_mul_ps(mag, v));
            }
        }
    }
}

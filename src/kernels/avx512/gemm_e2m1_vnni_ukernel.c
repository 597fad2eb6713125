/* gemm_e2m1_vnni_ukernel.c: the AVX512-VNNI micro-kernels of the packed E2M1 GEMM
 * (gemm_e2m1_vnni.c holds the packing, blocking and threading, and describes the layouts).
 *
 * Kept apart so the build compiles them with clang (Makefile: *_ukernel.c): gcc 12 turns this
 * loop into register copies and stack spills around every vpdpbusd. Check with
 * `objdump -d` that the k-loop is 3 loads, 4 broadcasts, 12 vpdpbusd and the loop counter.
 * Tile: MR = 4 rows × NB = 48 columns; 12 int32 accumulators (+ 12 fp32 in grouped mode).
 * The driver uses hs_ukernel_e2m1_mx_avx512 (grouped, FMA-folded conversion),
 * hs_ukernel_e2m1_rx_avx512 (row mode) and hs_ukernel_e2m1_grouped_avx512 (FP32 or huge
 * scales, accumulators in the driver's tile).
 */
#include <immintrin.h>
#include <stdint.h>

#include "kernels/avx512/gemm_e2m1_vnni.h"
#include "kernels/kernels.h"

enum { MR = HS_E2M1_MR, NB = HS_E2M1_NB };

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
/* Full unrolling of the short constant loops below (tile rows, column vectors, k-steps), so
 * that the accumulator arrays live in registers; clang needs its own spelling for that. */
#if defined(__clang__)
#define UNROLL _Pragma("clang loop unroll(full)")
#else
#define UNROLL _Pragma("GCC unroll 16")
#endif
/* Prefetch for writing the C lines of a tile's first `rows` rows (those < out->rows) and
 * first NV column vectors (both constants after inlining). */
static inline __attribute__((always_inline)) void prefetch_c(const hs_e2m1_out *out,
                                                             const int rows, const int NV) {
UNROLL
    for (int r = 0; r < rows; r++)
        if (r < out->rows)
UNROLL
            for (int j = 0; j < NV; j++) {
                const float *p = out->c + r * out->ldc + 16 * j;
                __builtin_prefetch(p, 1, 3);
                __builtin_prefetch(p + 15, 1, 3);
            }
}

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
    if (out) prefetch_c(out, MR, NV); /* C's lines, for writing, while the dot products run */
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

void hs_ukernel_e2m1_mx_avx512(const int32_t *ap, const int32_t *bp, int64_t ng, int64_t gs,
                               int64_t steps_total, const float *sa, const int32_t *ca,
                               const float *sb, const float *nc, float *facc, int nv, int first,
                               const hs_e2m1_out *out) {
    /* blocks of 16 and 32 (4 and 8 k-steps) with whole groups get a fully unrolled loop */
    int64_t GS = steps_total == ng * gs && (gs == 4 || gs == 8) ? gs : 0;
#define MX(G, V) mx_tile(ap, bp, ng, gs, steps_total, sa, ca, sb, nc, facc, first, out, G, V)
    if (nv >= 3) {
        if (GS == 8) MX(8, 3); else if (GS == 4) MX(4, 3); else MX(0, 3);
    } else if (nv == 2) {
        if (GS == 8) MX(8, 2); else if (GS == 4) MX(4, 2); else MX(0, 2);
    } else {
        if (GS == 8) MX(8, 1); else if (GS == 4) MX(4, 1); else MX(0, 1);
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
    if (out) prefetch_c(out, P * MR, NV);
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

/* gemm_e2m1_vnni_ukernel.c: the AVX512-VNNI micro-kernels of the packed E2M1 GEMM
 * (gemm_e2m1_vnni.c holds the packing, blocking and threading, and describes the layouts).
 *
 * Kept apart so the build compiles them with clang (Makefile: *_ukernel.c): gcc 12 turns this
 * loop into register copies and stack spills around every vpdpbusd. Check with
 * `objdump -d` that the k-loop is 3 loads, 4 broadcasts, 12 vpdpbusd and the loop counter.
 * Tile: MR = 4 rows × NB = 48 columns; 12 int32 accumulators (+ 12 fp32 in grouped mode).
 */
#include <immintrin.h>

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

static inline __attribute__((always_inline)) void grouped_magic(const int32_t *ap /* (steps, MR) */, const int32_t *bp /* (steps, NB) */,
                            int64_t ng, int64_t gs, int64_t steps_total,
                            const float *sa /* (ng, MR) */, const int32_t *ca /* (ng, MR) */,
                            const float *sb /* (ng, NB) */, const float *nc /* (ng, NB) */,
                            float *facc /* (MR, NB) */, const int64_t GS) {
    __m512 f00 = _mm512_loadu_ps(facc + 0 * NB + 0), f01 = _mm512_loadu_ps(facc + 0 * NB + 16),
           f02 = _mm512_loadu_ps(facc + 0 * NB + 32);
    __m512 f10 = _mm512_loadu_ps(facc + 1 * NB + 0), f11 = _mm512_loadu_ps(facc + 1 * NB + 16),
           f12 = _mm512_loadu_ps(facc + 1 * NB + 32);
    __m512 f20 = _mm512_loadu_ps(facc + 2 * NB + 0), f21 = _mm512_loadu_ps(facc + 2 * NB + 16),
           f22 = _mm512_loadu_ps(facc + 2 * NB + 32);
    __m512 f30 = _mm512_loadu_ps(facc + 3 * NB + 0), f31 = _mm512_loadu_ps(facc + 3 * NB + 16),
           f32 = _mm512_loadu_ps(facc + 3 * NB + 32);
    for (int64_t g = 0; g < ng; g++) {
        /* GS > 0: every group is full and has GS k-steps (unrolled); else the generic count */
        int64_t steps = GS ? GS : steps_total - g * gs < gs ? steps_total - g * gs : gs;
        /* int32 sums start at bits(1.5·2^23) + correction: as floats they read 1.5·2^23 + isum */
        const int32_t M = 0x4B400000;
        __m512i c0 = _mm512_set1_epi32(ca[g * MR + 0] + M), c1 = _mm512_set1_epi32(ca[g * MR + 1] + M),
                c2 = _mm512_set1_epi32(ca[g * MR + 2] + M), c3 = _mm512_set1_epi32(ca[g * MR + 3] + M);
        __m512i i00 = c0, i01 = c0, i02 = c0, i10 = c1, i11 = c1, i12 = c1;
        __m512i i20 = c2, i21 = c2, i22 = c2, i30 = c3, i31 = c3, i32 = c3;
        const int32_t *a = ap + g * gs * MR, *b = bp + g * gs * NB;
#pragma GCC unroll 8
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
        /* t = fma(1.5·2^23 + isum, sb, −1.5·2^23·sb) = fl(isum·sb) exactly as the reference
         * (one rounding of the exact product); acc = fma(t, sa, acc) */
        const float *sbg = sb + g * NB, *ncg = nc + g * NB;
        __m512 s0 = _mm512_loadu_ps(sbg), s1 = _mm512_loadu_ps(sbg + 16), s2 = _mm512_loadu_ps(sbg + 32);
        __m512 n0 = _mm512_loadu_ps(ncg), n1 = _mm512_loadu_ps(ncg + 16), n2 = _mm512_loadu_ps(ncg + 32);
#define EP(f, i, s, n) f = _mm512_fmadd_ps(_mm512_fmadd_ps(_mm512_castsi512_ps(i), s, n), r, f)
        __m512 r;
        r = _mm512_set1_ps(sa[g * MR + 0]);
        EP(f00, i00, s0, n0); EP(f01, i01, s1, n1); EP(f02, i02, s2, n2);
        r = _mm512_set1_ps(sa[g * MR + 1]);
        EP(f10, i10, s0, n0); EP(f11, i11, s1, n1); EP(f12, i12, s2, n2);
        r = _mm512_set1_ps(sa[g * MR + 2]);
        EP(f20, i20, s0, n0); EP(f21, i21, s1, n1); EP(f22, i22, s2, n2);
        r = _mm512_set1_ps(sa[g * MR + 3]);
        EP(f30, i30, s0, n0); EP(f31, i31, s1, n1); EP(f32, i32, s2, n2);
#undef EP
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

void hs_ukernel_e2m1_grouped_magic_avx512(const int32_t *ap, const int32_t *bp, int64_t ng,
                                          int64_t gs, int64_t steps_total, const float *sa,
                                          const int32_t *ca, const float *sb, const float *nc,
                                          float *facc) {
    /* blocks of 16 and 32 (4 and 8 k-steps) with whole groups get a fully unrolled loop */
    if (steps_total == ng * gs && gs == 4)
        grouped_magic(ap, bp, ng, 4, steps_total, sa, ca, sb, nc, facc, 4);
    else if (steps_total == ng * gs && gs == 8)
        grouped_magic(ap, bp, ng, 8, steps_total, sa, ca, sb, nc, facc, 8);
    else
        grouped_magic(ap, bp, ng, gs, steps_total, sa, ca, sb, nc, facc, 0);
}

/* Row-mode micro-kernel: int32 sums carried in iacc (MR, NB) across chunks. */
void hs_ukernel_e2m1_rows_avx512(const int32_t *ap /* (steps, MR) */, const int32_t *bp /* (steps, NB) */,
                         int64_t steps, int32_t *iacc /* (MR, NB) */) {
    __m512i i00 = _mm512_loadu_si512(iacc + 0 * NB + 0), i01 = _mm512_loadu_si512(iacc + 0 * NB + 16),
            i02 = _mm512_loadu_si512(iacc + 0 * NB + 32);
    __m512i i10 = _mm512_loadu_si512(iacc + 1 * NB + 0), i11 = _mm512_loadu_si512(iacc + 1 * NB + 16),
            i12 = _mm512_loadu_si512(iacc + 1 * NB + 32);
    __m512i i20 = _mm512_loadu_si512(iacc + 2 * NB + 0), i21 = _mm512_loadu_si512(iacc + 2 * NB + 16),
            i22 = _mm512_loadu_si512(iacc + 2 * NB + 32);
    __m512i i30 = _mm512_loadu_si512(iacc + 3 * NB + 0), i31 = _mm512_loadu_si512(iacc + 3 * NB + 16),
            i32 = _mm512_loadu_si512(iacc + 3 * NB + 32);
    const int32_t *a = ap, *b = bp;
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
    _mm512_storeu_si512(iacc + 0 * NB + 0, i00), _mm512_storeu_si512(iacc + 0 * NB + 16, i01),
        _mm512_storeu_si512(iacc + 0 * NB + 32, i02);
    _mm512_storeu_si512(iacc + 1 * NB + 0, i10), _mm512_storeu_si512(iacc + 1 * NB + 16, i11),
        _mm512_storeu_si512(iacc + 1 * NB + 32, i12);
    _mm512_storeu_si512(iacc + 2 * NB + 0, i20), _mm512_storeu_si512(iacc + 2 * NB + 16, i21),
        _mm512_storeu_si512(iacc + 2 * NB + 32, i22);
    _mm512_storeu_si512(iacc + 3 * NB + 0, i30), _mm512_storeu_si512(iacc + 3 * NB + 16, i31),
        _mm512_storeu_si512(iacc + 3 * NB + 32, i32);
}

/* Row mode, two A panels at once (8 rows × 48 columns, 24 accumulators): per k-step 3 loads of
 * B and 8 broadcasts for 24 vpdpbusd (0.46 loads per vpdpbusd instead of 0.58). */
void hs_ukernel_e2m1_rows8_avx512(const int32_t *ap0, const int32_t *ap1, const int32_t *bp,
                                  int64_t steps, int32_t *iacc0, int32_t *iacc1) {
    __m512i c[8][3];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
#pragma GCC unroll 3
        for (int j = 0; j < 3; j++) {
            c[r][j] = _mm512_loadu_si512(iacc0 + r * NB + 16 * j);
            c[4 + r][j] = _mm512_loadu_si512(iacc1 + r * NB + 16 * j);
        }
    for (int64_t s = 0; s < steps; s++, ap0 += MR, ap1 += MR, bp += NB) {
        __m512i b0 = _mm512_loadu_si512(bp), b1 = _mm512_loadu_si512(bp + 16),
                b2 = _mm512_loadu_si512(bp + 32);
#pragma GCC unroll 8
        for (int r = 0; r < 8; r++) {
            __m512i a = _mm512_set1_epi32(r < 4 ? ap0[r] : ap1[r - 4]);
            c[r][0] = _mm512_dpbusd_epi32(c[r][0], b0, a);
            c[r][1] = _mm512_dpbusd_epi32(c[r][1], b1, a);
            c[r][2] = _mm512_dpbusd_epi32(c[r][2], b2, a);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
#pragma GCC unroll 3
        for (int j = 0; j < 3; j++) {
            _mm512_storeu_si512(iacc0 + r * NB + 16 * j, c[r][j]);
            _mm512_storeu_si512(iacc1 + r * NB + 16 * j, c[4 + r][j]);
        }
}

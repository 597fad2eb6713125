/* gemm_e2m1_avx2_ukernel.c: the AVX2 micro-kernel of the packed E2M1 GEMM (layouts and the
 * formula in gemm_e2m1_avx2.c). Compiled with clang where installed (Makefile): gcc 12 spills
 * the twelve int16 accumulators of this loop to the stack.
 *
 * Per group: the int8 products of MR × NB outputs run in int16 lanes (vpmaddubsw + vpaddw),
 * widened to int32 (vpmaddwd by 1) once per CHUNK k-steps. A step adds to each lane one
 * vpmaddubsw pair sum, of magnitude at most 2·24·12 = 576 (B offset to 0..24, A in −12..12), so
 * CHUNK = 48 steps stay within 48·576 = 27648 < 32767: the integer sums are exact and the float
 * epilogue sees the same isum as the reference. Epilogue: t = (float)isum·sb; f = fma(t, sa, f).
 */
#include <immintrin.h>

#include "kernels/gemm_kernels.h"

enum { MR = HS_E2M1_AVX2_MR, NB = HS_E2M1_AVX2_NB, CHUNK = 48, SHORT = 32 };

/* k-steps [s0, s1) of the panels into the int16 accumulators h (vpmaddubsw, vpaddw). */
static inline __attribute__((always_inline)) void dot_steps(__m256i h[MR][2], const int32_t *ap,
                                                            const int32_t *bp, int64_t s0,
                                                            int64_t s1) {
    for (int64_t s = s0; s < s1; s++) {
        const __m256i b0 = _mm256_loadu_si256((const __m256i *)(bp + s * NB));
        const __m256i b1 = _mm256_loadu_si256((const __m256i *)(bp + s * NB + 8));
        for (int r = 0; r < MR; r++) {
            const __m256i a = _mm256_set1_epi32(ap[s * MR + r]);
            h[r][0] = _mm256_add_epi16(h[r][0], _mm256_maddubs_epi16(b0, a));
            h[r][1] = _mm256_add_epi16(h[r][1], _mm256_maddubs_epi16(b1, a));
        }
    }
}

void hs_ukernel_e2m1_avx2(const int32_t *ap, const int32_t *bp, int64_t k4, int64_t G, int64_t gs,
                          const float *sa, const int32_t *ca, const float *sb, float *f) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[MR][2];
    for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    if (gs <= SHORT) {
        /* Groups of at most SHORT k-steps (MX blocks of 16..128): one chunk, and the correction
         * goes into the int16 lanes at the start (half in each lane of a pair, which vpmaddwd
         * adds back together), so the int32 sums never leave registers: a lane holds at most
         * |ca|/2 + 2·gs·12·24 ≤ 864·gs ≤ 27648 < 32767, and the isum is the same integer. */
        for (int64_t g = 0; g < G; g++) {
            const int64_t s0 = g * gs, s1 = s0 + gs < k4 ? s0 + gs : k4;
            __m256i h[MR][2];
            for (int r = 0; r < MR; r++)
                h[r][0] = h[r][1] = _mm256_set1_epi16((short)(ca[g * MR + r] / 2));
            dot_steps(h, ap, bp, s0, s1);
            const __m256 sb0 = _mm256_loadu_ps(sb + g * NB), sb1 = _mm256_loadu_ps(sb + g * NB + 8);
            for (int r = 0; r < MR; r++) {
                const __m256 s = _mm256_set1_ps(sa[g * MR + r]);
                const __m256 t0 = _mm256_cvtepi32_ps(_mm256_madd_epi16(h[r][0], ones));
                const __m256 t1 = _mm256_cvtepi32_ps(_mm256_madd_epi16(h[r][1], ones));
                acc[r][0] = _mm256_fmadd_ps(_mm256_mul_ps(t0, sb0), s, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(_mm256_mul_ps(t1, sb1), s, acc[r][1]);
            }
        }
        for (int r = 0; r < MR; r++) {
            _mm256_storeu_ps(f + r * NB, acc[r][0]);
            _mm256_storeu_ps(f + r * NB + 8, acc[r][1]);
        }
        return;
    }
    for (int64_t g = 0; g < G; g++) {
        const int64_t s0 = g * gs, s1 = s0 + gs < k4 ? s0 + gs : k4;
        __m256i w[MR][2];
        for (int r = 0; r < MR; r++) w[r][0] = w[r][1] = _mm256_set1_epi32(ca[g * MR + r]);
        for (int64_t c0 = s0; c0 < s1; c0 += CHUNK) {
            const int64_t c1 = c0 + CHUNK < s1 ? c0 + CHUNK : s1;
            __m256i h[MR][2];
            for (int r = 0; r < MR; r++) h[r][0] = h[r][1] = _mm256_setzero_si256();
            dot_steps(h, ap, bp, c0, c1);
            for (int r = 0; r < MR; r++) {
                w[r][0] = _mm256_add_epi32(w[r][0], _mm256_madd_epi16(h[r][0], ones));
                w[r][1] = _mm256_add_epi32(w[r][1], _mm256_madd_epi16(h[r][1], ones));
            }
        }
        /* t = (float)isum · sb; acc = fma(t, sa, acc): the reference's two roundings */
        const __m256 sb0 = _mm256_loadu_ps(sb + g * NB), sb1 = _mm256_loadu_ps(sb + g * NB + 8);
        for (int r = 0; r < MR; r++) {
            const __m256 s = _mm256_set1_ps(sa[g * MR + r]);
            acc[r][0] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(w[r][0]), sb0), s, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(w[r][1]), sb1), s, acc[r][1]);
        }
    }
    for (int r = 0; r < MR; r++) {
        _mm256_storeu_ps(f + r * NB, acc[r][0]);
        _mm256_storeu_ps(f + r * NB + 8, acc[r][1]);
    }
}

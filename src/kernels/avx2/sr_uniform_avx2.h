/* sr_uniform_avx2.h: the stochastic-rounding uniforms of 8 lanes for the AVX2 quantizers, bit for
 * bit hs_rng_uniform_key (halfs/rng.h): SplitMix64 of key + (index + 1)·γ, its top 24 bits
 * times 2⁻²⁴. AVX2 has no 64-bit multiply, so it is built from 32 × 32 → 64 products. Include
 * only from files compiled with AVX2 enabled. */
#ifndef HALFS_KERNELS_SR_UNIFORM_AVX2_H
#define HALFS_KERNELS_SR_UNIFORM_AVX2_H

#include <immintrin.h>
#include <stdint.h>

/* a · c mod 2⁶⁴ per 64-bit lane. */
static inline __m256i hs_sr_mul64(__m256i a, uint64_t c) {
    const __m256i clo = _mm256_set1_epi64x((long long)(c & 0xFFFFFFFFu));
    const __m256i chi = _mm256_set1_epi64x((long long)(c >> 32));
    __m256i lo = _mm256_mul_epu32(a, clo);
    __m256i cross = _mm256_add_epi64(_mm256_mul_epu32(_mm256_srli_epi64(a, 32), clo),
                                     _mm256_mul_epu32(a, chi));
    return _mm256_add_epi64(lo, _mm256_slli_epi64(cross, 32));
}

/* The SplitMix64 finaliser per 64-bit lane. */
static inline __m256i hs_sr_mix64(__m256i z) {
    z = hs_sr_mul64(_mm256_xor_si256(z, _mm256_srli_epi64(z, 30)), 0xBF58476D1CE4E5B9ull);
    z = hs_sr_mul64(_mm256_xor_si256(z, _mm256_srli_epi64(z, 27)), 0x94D049BB133111EBull);
    return _mm256_xor_si256(z, _mm256_srli_epi64(z, 31));
}

/* b0 / b1 hold key + (index + 1)·γ of lanes 0..3 / 4..7. */
static inline __m256 hs_sr_uniform8(__m256i b0, __m256i b1) {
    __m256i u0 = _mm256_srli_epi64(hs_sr_mix64(b0), 40), u1 = _mm256_srli_epi64(hs_sr_mix64(b1), 40);
    /* the low dwords of the 4 + 4 qwords, in lane order */
    const __m256i pick = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);
    __m256i p0 = _mm256_permutevar8x32_epi32(u0, pick), p1 = _mm256_permutevar8x32_epi32(u1, pick);
    __m256i u = _mm256_blend_epi32(p0, p1, 0xF0);
    return _mm256_mul_ps(_mm256_cvtepi32_ps(u), _mm256_set1_ps(0x1p-24f)); /* exact: 24 bits */
}

#endif

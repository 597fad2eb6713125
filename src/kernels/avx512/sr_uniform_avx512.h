/* sr_uniform_avx512.h: the stochastic-rounding uniforms of 16 lanes for the AVX-512 quantizers,
 * bit for bit hs_rng_uniform_key (halfs/rng.h): SplitMix64 of key + (index + 1)·γ, its top 24
 * bits times 2⁻²⁴. Include only from files compiled with AVX-512 (F, DQ) enabled. */
#ifndef HALFS_KERNELS_SR_UNIFORM_AVX512_H
#define HALFS_KERNELS_SR_UNIFORM_AVX512_H

#include <immintrin.h>

/* b0 / b1 hold key + (index + 1)·γ of lanes 0..7 / 8..15. */
static inline __m512 hs_sr_uniform16(__m512i b0, __m512i b1) {
    const __m512i c1 = _mm512_set1_epi64((long long)0xBF58476D1CE4E5B9ull);
    const __m512i c2 = _mm512_set1_epi64((long long)0x94D049BB133111EBull);
    __m512i z0 = b0, z1 = b1;
    z0 = _mm512_mullo_epi64(_mm512_xor_si512(z0, _mm512_srli_epi64(z0, 30)), c1);
    z1 = _mm512_mullo_epi64(_mm512_xor_si512(z1, _mm512_srli_epi64(z1, 30)), c1);
    z0 = _mm512_mullo_epi64(_mm512_xor_si512(z0, _mm512_srli_epi64(z0, 27)), c2);
    z1 = _mm512_mullo_epi64(_mm512_xor_si512(z1, _mm512_srli_epi64(z1, 27)), c2);
    z0 = _mm512_srli_epi64(_mm512_xor_si512(z0, _mm512_srli_epi64(z0, 31)), 40);
    z1 = _mm512_srli_epi64(_mm512_xor_si512(z1, _mm512_srli_epi64(z1, 31)), 40);
    __m512 u = _mm512_castps256_ps512(_mm512_cvtepi64_ps(z0));
    u = _mm512_insertf32x8(u, _mm512_cvtepi64_ps(z1), 1);
    return _mm512_mul_ps(u, _mm512_set1_ps(0x1p-24f)); /* exact: 24-bit integers */
}

#endif

/* halfs/rng.h: the counter-based random numbers behind stochastic rounding and RHT signs.
 *
 * Every random number is a pure function of (seed, stream, index): no state, so results do
 * not depend on thread count or on the order in which elements are visited (docs/FORMATS.md §2).
 * The mixer is SplitMix64's finaliser applied to a combination of the three words.
 */
#ifndef HALFS_RNG_H
#define HALFS_RNG_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 64 well-mixed bits for (seed, stream, index). */
uint64_t hs_rng_bits(uint64_t seed, uint64_t stream, uint64_t index);
/* A float uniform on [0, 1) with 24 random bits, from hs_rng_bits. */
float hs_rng_uniform(uint64_t seed, uint64_t stream, uint64_t index);

/* The same numbers split in two steps, for kernels that draw many numbers of one
 * (seed, stream): hs_rng_bits(seed, stream, i) == hs_rng_bits_key(hs_rng_key(seed, stream), i)
 * and hs_rng_uniform(...) == hs_rng_uniform_key(key, i), bit for bit. The per-index step is
 * SplitMix64: the finaliser of key + (index + 1)·γ (one 64-bit add, one multiply-add, and the
 * finaliser's two multiplies, so it vectorises with 64-bit lanes). */
#define HS_RNG_GAMMA 0x9E3779B97F4A7C15ull
static inline uint64_t hs_rng_mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
uint64_t hs_rng_key(uint64_t seed, uint64_t stream);
static inline uint64_t hs_rng_bits_key(uint64_t key, uint64_t index) {
    return hs_rng_mix(key + (index + 1) * HS_RNG_GAMMA);
}
static inline float hs_rng_uniform_key(uint64_t key, uint64_t index) {
    return (float)(hs_rng_bits_key(key, index) >> 40) * 0x1p-24f; /* exact: 24-bit integer */
}

#ifdef __cplusplus
}
#endif
#endif

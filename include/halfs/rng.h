/* halfs/rng.h: the counter-based random numbers behind stochastic rounding and RHT signs.
 *
 * Every random number is a pure function of (seed, stream, index): no state, so results do
 * not depend on thread count or on the order in which elements are visited (NUMERICS.md §1).
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

#ifdef __cplusplus
}
#endif
#endif

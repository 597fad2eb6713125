/* rng.c: the counter-based generator of halfs/rng.h.
 *
 * A random number is a pure function of (seed, stream, index), so stochastic rounding and RHT
 * signs are reproducible and independent of thread count and visiting order (docs/FORMATS.md §2).
 * The (seed, stream) pair is first hashed into a 64-bit key with two SplitMix64 finaliser
 * rounds (so nearby seeds and streams give unrelated keys); the index then walks SplitMix64's
 * Weyl sequence from that key: bits = mix(key + (index + 1)·γ).
 */
#include "halfs/rng.h"

uint64_t hs_rng_key(uint64_t seed, uint64_t stream) {
    /* Why two rounds: seed and stream enter through different constants, and each passes a full
     * avalanche mix before the index is added, so (seed, stream) pairs do not alias. */
    uint64_t k = hs_rng_mix(seed + HS_RNG_GAMMA);
    return hs_rng_mix(k ^ (stream * 0xD1B54A32D192ED03ull + 0x8CB92BA72F3D8DD7ull));
}

uint64_t hs_rng_bits(uint64_t seed, uint64_t stream, uint64_t index) {
    return hs_rng_bits_key(hs_rng_key(seed, stream), index);
}

float hs_rng_uniform(uint64_t seed, uint64_t stream, uint64_t index) {
    return hs_rng_uniform_key(hs_rng_key(seed, stream), index);
}

/* rht_impl.h (internal): the exact arithmetic of the random Hadamard transform, shared by
 * hs_rht_apply, the reference quantizer and the SIMD quantizers (-Isrc), so that a fused RHT
 * gives the same floats everywhere.
 *
 * Forward, one block v[0..d): v_i ← v_i·sign_i; then the Sylvester butterflies in stages
 * h = 1, 2, 4, ..., d/2 (a, b ← a + b, a − b for v_j, v_{j+h}); then v_i ← v_i · fl(1/√d).
 * Inverse: butterflies, · fl(1/√d), then · sign_i (H is symmetric, so (D·H)ᵀ = H·D). */
#ifndef HALFS_CORE_RHT_IMPL_H
#define HALFS_CORE_RHT_IMPL_H

#include <stdint.h>

/* The RNG stream of the RHT signs (ASCII "RHT"). */
#define HS_RHT_STREAM 0x524854u

/* signs[0..d) = hs_rht_sign(seed, i). */
void hs_rht_signs(uint64_t seed, int d, float *signs);
/* fl(1/√d) for d in {16, 32, 64, 128}. */
float hs_rht_norm(int d);
/* Transform v[0..n) in place, block by block (n % d == 0). */
void hs_rht_vec(float *v, int64_t n, int d, const float *signs, int inverse);

#endif

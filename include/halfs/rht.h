/* halfs/rht.h: random Hadamard transform (docs/FORMATS.md §8).
 *
 * x ↦ x·D·H in consecutive blocks of d ∈ {16, 32, 64, 128} along one axis, with H the
 * orthonormal (1/sqrt(d)-normalised) Sylvester–Hadamard matrix and D a diagonal of random
 * signs drawn from (seed, block position within d) — the same signs for every block, so two
 * GEMM operands transformed with the same seed multiply to the untransformed product.
 */
#ifndef HALFS_RHT_H
#define HALFS_RHT_H

#include <stdint.h>

#include "halfs/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* In place on a rows × cols matrix (row stride ld). along_cols = 0: transform each row in
 * blocks of d (cols % d == 0 required); along_cols = 1: transform each column (rows % d == 0).
 * inverse = 1 applies (D·H)ᵀ, undoing the forward transform. */
hs_status hs_rht_apply(float *x, int64_t rows, int64_t cols, int64_t ld, int d, uint64_t seed,
                       int along_cols, int inverse);

/* The random sign (+1 or −1) of position i (0 ≤ i < d) for seed. */
float hs_rht_sign(uint64_t seed, int i);

#ifdef __cplusplus
}
#endif
#endif

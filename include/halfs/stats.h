/* halfs/stats.h: error statistics of a quantizer on a tensor (what `halfs stats` prints).
 *
 * rel_mse       = Σ(x − Q(x))² / Σx²  (error energy over signal energy)
 * sqnr_db       = −10·log10(rel_mse)
 * zero_collapse = fraction of nonzero inputs whose quantized value is ±0
 * halved_fraction = fraction of groups whose scale the rule set below the ceil/max scale
 * kurtosis      = E[(x−μ)⁴] / E[(x−μ)²]² of the input (3 for a Gaussian)
 * Non-finite inputs are excluded from the sums and counted in n_nonfinite.
 */
#ifndef HALFS_STATS_H
#define HALFS_STATS_H

#include <stdint.h>

#include "halfs/quant.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hs_qstats {
    double rel_mse;
    double sqnr_db;
    double zero_collapse;
    double halved_fraction;
    double kurtosis;
    int64_t n;           /* finite elements */
    int64_t n_nonfinite;
    int64_t groups;
} hs_qstats;

/* Statistics of spec s on x (rows × cols, row stride ld, groups along rows or columns). */
hs_status hs_quant_stats(const hs_quant_spec *s, const float *x, int64_t rows, int64_t cols,
                         int64_t ld, int transpose, hs_qstats *out);

/* Kurtosis of n values (non-finite values skipped); 0 if fewer than 2 finite values. */
double hs_kurtosis(const float *x, int64_t n);

#ifdef __cplusplus
}
#endif
#endif

/* halfs/theory.h: the MSE of 4-bit quantization for known input distributions
 * (docs/FORMATS.md §11).
 *
 * Two views of the same question, "how much error does clip α cost?":
 *   - infinite group, by numerical integration: a symmetric density p with unit variance, the
 *     clip α mapped to the format's largest code (E2M1: 6, INT4: 7), round to nearest (ties do not
 *     matter for a density), saturating beyond α. MSE(α) = rounding error inside the grid plus
 *     clipping error outside, integrated cell by cell (adaptive Gauss–Legendre) and over the tail
 *     in octaves with an analytic power-law remainder; the optimal clip α* minimises it;
 *   - finite groups of N iid draws, by Monte Carlo: each scale rule of the library (run through
 *     hs_quantize / hs_dequantize with one scale per group) and the exact per-group continuous
 *     optimum, so theory and library agree by construction.
 * Distributions have unit variance (σ = 1): Student-t(ν) is scaled by sqrt((ν−2)/ν), ν > 2.
 * Random draws are pure functions of (seed, index) through halfs/rng.h: reproducible and
 * independent of thread count.
 */
#ifndef HALFS_THEORY_H
#define HALFS_THEORY_H

#include <stddef.h>
#include <stdint.h>

#include "halfs/quant.h"
#include "halfs/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    HS_DIST_GAUSS = 0, /* N(0, 1) */
    HS_DIST_LAPLACE,   /* Laplace with b = 1/sqrt(2) (variance 1) */
    HS_DIST_STUDENT_T, /* Student-t(ν) · sqrt((ν−2)/ν) (variance 1), ν > 2 */
    HS_DIST_COUNT
} hs_dist_kind;

typedef struct hs_dist {
    hs_dist_kind kind;
    double nu; /* Student-t degrees of freedom, 2 < ν ≤ 1e6; ignored otherwise */
} hs_dist;

/* "gauss" (also "gaussian", "normal"), "laplace", or "t:NU" (e.g. "t:3", "t:4.5"). */
hs_status hs_dist_parse(const char *name, hs_dist *out);
/* The canonical name ("gauss", "laplace", "t:5") into buf (always NUL-terminated). */
void hs_dist_name(const hs_dist *d, char *buf, size_t size);
/* HS_OK if d is a valid distribution. */
hs_status hs_dist_validate(const hs_dist *d);
/* Density at x (unit variance). */
double hs_dist_pdf(const hs_dist *d, double x);
/* Draw number `index` of the stream (seed, stream): a pure function of its arguments.
 * d must be valid (hs_dist_validate); NaN otherwise. */
double hs_dist_sample(const hs_dist *d, uint64_t seed, uint64_t stream, uint64_t index);

/* MSE (in units of σ²) of quantizing d with clip `clip` (in units of σ) mapped to the largest
 * code of elem (HS_ELEM_E2M1 or HS_ELEM_INT4), by numerical integration. */
hs_status hs_theory_mse(const hs_dist *d, hs_elem elem, double clip, double *mse);

/* The clip α* minimising hs_theory_mse (log grid over [0.25, 200]σ, then golden section),
 * and the MSE there. Either output may be NULL. */
hs_status hs_theory_opt_clip(const hs_dist *d, hs_elem elem, double *clip, double *mse);

/* Monte Carlo check of hs_theory_mse: n draws quantized with the fixed clip `clip` (in σ)
 * through the element codec (RNE); mean squared error and its standard error. */
hs_status hs_theory_mc_clip(const hs_dist *d, hs_elem elem, double clip, int64_t n, uint64_t seed,
                            double *mse, double *std_err);

/* The exact continuous optimum scale of one group: the s > 0 minimising
 * Σ (x_i − s·q(x_i/s))² with q round-to-nearest onto elem's grid, saturating. The error is a
 * piecewise quadratic in s; all breakpoints are visited. *scale = 0 and *sse = Σ x_i² if the
 * group is all zero. Non-finite inputs are an error. */
hs_status hs_theory_group_opt(const float *x, int64_t n, hs_elem elem, double *scale, double *sse);

/* One row of a finite-group Monte Carlo: a library rule, or the per-group optimum. */
#define HS_THEORY_OPT ((int)HS_RULE_COUNT) /* `rule` value of the per-group continuous optimum */
typedef struct hs_theory_mc_row {
    int rule;               /* an hs_rule, or HS_THEORY_OPT */
    double rel_mse;         /* Σ err² / Σ x², pooled over all groups */
    double rel_mse_se;      /* its standard error (delta method over groups) */
    double clip_over_amax;  /* mean over groups of the effective clip / amax; the effective
                               clip is the value mapped to the largest code (6·X for E2M1) */
    double zero_collapse;   /* fraction of nonzero inputs quantized to zero */
    double halved_fraction; /* fraction of groups whose scale is below the ceil/max scale */
} hs_theory_mc_row;

typedef struct hs_theory_mc {
    int64_t group;  /* N, elements per group */
    int64_t groups; /* groups drawn */
    int n_rows;
    hs_theory_mc_row rows[HS_RULE_COUNT + 1]; /* every applicable rule in enum order, then opt */
} hs_theory_mc;

/* Monte Carlo of `groups` groups of `group` iid draws of d (group ≥ 2): every rule that applies
 * to elem with one scale per group (E2M1: E8M0 scales, INT4: FP32 scales), run through the
 * library's quantizer, plus the per-group continuous optimum (hs_theory_group_opt). */
hs_status hs_theory_mc_rules(const hs_dist *d, hs_elem elem, int64_t group, int64_t groups,
                             uint64_t seed, hs_theory_mc *out);

/* Relative MSE versus clip ratio r = clip/amax, one scale per group of `group` iid draws:
 * for each ratios[i] > 0, each group is quantized (continuous scale r·amax/max, RNE through the
 * element codec) and rel_mse[i] = Σ err² / Σ x² over all groups. Same draws as
 * hs_theory_mc_rules for the same (d, group, seed). */
hs_status hs_theory_curve(const hs_dist *d, hs_elem elem, int64_t group, int64_t groups,
                          uint64_t seed, const double *ratios, int n_ratios, double *rel_mse);

/* "opt" for HS_THEORY_OPT, else hs_rule_name(rule). */
const char *hs_theory_row_name(int rule);

#ifdef __cplusplus
}
#endif
#endif

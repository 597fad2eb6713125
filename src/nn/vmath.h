/* vmath.h: a vectorisable exponential for the model's elementwise layers (softmax in attention
 * and the loss, the sigmoid of SwiGLU).
 *
 * Why: glibc's expf is a scalar call unless -ffast-math (which halfs never uses), and these
 * layers evaluate tens of millions of exponentials per training step; as scalar calls they took
 * more time than the GEMMs of a quantized step. This version is branch-free so the compiler
 * vectorises it; its results depend only on the input (not on threads or vector width).
 * Accuracy: Cody-Waite reduction x = k·ln2 + r with |r| ≤ ln2/2, degree-7 Taylor polynomial
 * (truncation < 6e-9 relative), so within ~2 ulp of expf on [−87, 88]. Inputs are clamped to
 * that range: exp(x < −87) returns ≈ 1.6e-38 instead of a smaller value or 0, exp(x > 88)
 * returns ≈ 1.65e38; NaN inputs give unspecified finite values, so callers check for NaN
 * upstream (the trainer checks every loss).
 */
#ifndef HALFS_NN_VMATH_H
#define HALFS_NN_VMATH_H

/* y[i] = e^x[i] for i < n (y may equal x). Compiled for AVX-512, AVX2 and baseline x86-64
 * (gcc target_clones, picked once at load time); the three compute the same IEEE operations
 * in the same order (-std=c11 implies -ffp-contract=off: no FMA contraction), so results are
 * bit-identical whichever runs. */
void hs_vexp(float *y, const float *x, int n);

/* Sums in a fixed order, whatever the vector width of the clone that runs: term j goes into
 * lane j mod HS_SUM_LANES (a loop over the lanes that the compiler vectorises at 4, 8 or 16 lanes
 * alike), then the lanes are added pairwise, 8 apart, 4 apart, 2, 1. So every row kernel below
 * gives the same bits on every x86-64 CPU, not only the same bits for any thread count. */
enum { HS_SUM_LANES = 16 };
__attribute__((always_inline)) static inline float hs_sum_lanes(float *acc) {
    for (int w = HS_SUM_LANES / 2; w >= 1; w /= 2)
        for (int l = 0; l < w; l++) acc[l] += acc[l + w];
    return acc[0];
}

/* Attention's row kernels (attention.c), vectorised the same way, their sums as above. */
/* S (nq × nk) scaled scores of queries t0..t0+nq−1 against keys 0..nk−1, in place → causal
 * *unnormalised* probabilities exp(s − max) (row i keeps keys ≤ t0+i, zeros beyond); lse[i]
 * its log-sum-exp, inv[i] = 1 / Σ exp(s − max), by which the caller scales the row of P·V
 * (one multiply per output element instead of one more pass over the scores). */
void hs_softmax_causal_rows(float *S, int nq, int nk, int t0, float *lse, float *inv);
/* Backward: P (nq × nk) scaled scores → P = exp(S − lse) (masked); dS holds dP = dO·Vᵀ and
 * becomes P ∘ (dP − D) · scale, D[i] = dO_i·O_i. */
void hs_attn_bwd_rows(float *P, float *dS, int nq, int nk, int t0, const float *lse,
                      const float *D, float scale);

/* SwiGLU rows (swiglu.c): h = silu(g)·u, and its backward dg, du from dh (elementwise, so
 * bit-identical across clones). */
void hs_swiglu_row(float *h, const float *g, const float *u, int F);
void hs_swiglu_bwd_row(float *dg, float *du, const float *dh, const float *g, const float *u,
                       int F);

/* The same two with σ(g) kept: the forward also writes sg = σ(g) (the value it multiplies by),
 * the backward reads it instead of recomputing it (an exponential and a division per element,
 * most of the backward's time). Same operations on the same values: the same bits. */
void hs_swiglu_row_save(float *h, float *sg, const float *g, const float *u, int F);
void hs_swiglu_bwd_row_saved(float *dg, float *du, const float *dh, const float *g,
                             const float *u, const float *sg, int F);

/* Cross-entropy rows (crossentropy.c): log Σ exp(z) over n values (the sum in the fixed lane
 * order above), and z ← scale · exp(z − lse) in place (elementwise). */
float hs_logsumexp_row(const float *z, int n);
void hs_softmax_scaled_row(float *z, int n, float lse, float scale);

#endif

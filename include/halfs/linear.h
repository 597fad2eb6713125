/* halfs/linear.h: one linear layer y = x·wᵀ under a training recipe, for callers outside the
 * trainer (the Python package's halfs.torch.Linear, through libhalfs.so).
 *
 * It runs exactly the trainer's code path (src/nn/linear.c): the recipe is built from the same
 * options as `halfs train` (preset, --role overrides, --block, --sr, --rht, --act-only,
 * --hp-layers, --quant-lm-head, the run seed), each call takes the six role specs the trainer's
 * model would use for linear `linear` of block `layer` at step `step` (hs_recipe_spec: per-step
 * stochastic-rounding and RHT seeds), and the three GEMMs quantize each operand along its own
 * GEMM's reduction axis (docs/ARCHITECTURE.md, "The three GEMMs of a linear layer"):
 *   fprop  y  (M×N)  = Q_fwd.x(x) · Q_fwd.w(w)ᵀ           x: M×K, w: N×K
 *   dgrad  dx (M×K)  = Q_dgrad.dy(dy) · Q_dgrad.w(w)       dy: M×N
 *   wgrad  dw (N×K) += Q_wgrad.dy(dy)ᵀ · Q_wgrad.x(x)
 * The backward quantizes x itself (the trainer may reuse a copy its forward made in the same
 * pass; the bytes are the same either way). All arrays are row-major and contiguous.
 * A handle keeps operand buffers between calls: one handle per thread of calls.
 */
#ifndef HALFS_LINEAR_H
#define HALFS_LINEAR_H

#include <stddef.h>
#include <stdint.h>

#include "halfs/quant.h"
#include "halfs/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The number of operand roles: fwd.x, fwd.w, dgrad.dy, dgrad.w, wgrad.dy, wgrad.x. */
#define HS_LINEAR_ROLES 6

/* The lm_head's layer index: bf16 in every preset but fp32 (fp32 there, or with
 * fp32_attn_lm_head), or the block roles with quant_lm_head (as in the trainer's model). */
#define HS_LINEAR_LM_HEAD (-1)

typedef struct hs_linear_layer hs_linear_layer;

/* A layer running recipe `recipe` (a preset name: fp32, bf16, mxfp4-ocp, mxfp4-max,
 * mxfp4-halfs, mxfp4-half, nvfp4, nvfp4-4over6, fp4row-max, fp4row-halfs), with the
 * trainer's options: roles ("" or NULL: none; the --role grammar), block (0 = the preset's),
 * sr, rht (0 = the preset's), act_only, hp_layers ("" or NULL: none), quant_lm_head,
 * fp32_attn_lm_head, seed.
 * Errors (unknown names, bad values) are HS_ERR_INVALID_ARG with the trainer's message. */
hs_status hs_linear_layer_create(const char *recipe, const char *roles, int32_t block,
                                 int32_t sr, int32_t rht, int32_t act_only,
                                 const char *hp_layers, int32_t quant_lm_head,
                                 int32_t fp32_attn_lm_head, uint64_t seed, hs_linear_layer **out);
void hs_linear_layer_free(hs_linear_layer *l);

/* The six role specs (in the order above) of linear `linear` (0..7; the model's are 0 = qkv,
 * 1 = o, 2 = gate_up, 3 = down) of block `layer` (0..65535, or HS_LINEAR_LM_HEAD) at `step`. */
hs_status hs_linear_layer_specs(const hs_linear_layer *l, int32_t layer, int32_t linear,
                                uint64_t step, hs_quant_spec spec[HS_LINEAR_ROLES]);

/* fprop: y (M×N, overwritten) = Q(x)·Q(w)ᵀ. */
hs_status hs_linear_layer_forward(hs_linear_layer *l, int32_t layer, int32_t linear,
                                  uint64_t step, float *y, const float *x, const float *w,
                                  int64_t M, int64_t K, int64_t N);

/* dgrad and wgrad: dx (M×K) overwritten (skipped when dx is NULL), dw (N×K) accumulated into.
 * x and w must be what the forward saw; straight-through estimator. */
hs_status hs_linear_layer_backward(hs_linear_layer *l, int32_t layer, int32_t linear,
                                   uint64_t step, float *dx, float *dw, const float *dy,
                                   const float *x, const float *w, int64_t M, int64_t K,
                                   int64_t N);

/* A one-line description of the recipe's role specs into buf (always NUL-terminated). */
void hs_linear_layer_describe(const hs_linear_layer *l, char *buf, size_t n);

#ifdef __cplusplus
}
#endif
#endif

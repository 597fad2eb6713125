/* ops.h: the model's layers as free functions (llm.c style), forward and backward, fp32.
 *
 * N = B·T tokens; C = width; H = heads; hd = C/H; F = SwiGLU width; V = vocabulary.
 * Every backward *accumulates* into parameter gradients (dweight += ...) and, unless its
 * comment says "overwrites", into input gradients. All loops are OpenMP-parallel over rows or
 * heads; reductions across rows (weight gradients) run over a fixed number of chunks summed in
 * a fixed order, so results do not depend on the thread count.
 */
#ifndef HALFS_NN_OPS_H
#define HALFS_NN_OPS_H

#include <stdint.h>

#include "halfs/quant.h"
#include "halfs/status.h"
#include "nn/model.h"

/* Fixed number of token chunks for deterministic weight-gradient reductions. */
#define HS_NN_CHUNKS 64

/* ---- RMSNorm (HF LlamaRMSNorm): out = w · x / sqrt(mean(x²) + eps) ---- */
/* out, inp: (N, C); rstd: (N) saved for backward; w: (C) */
void hs_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *w, int64_t N,
                        int C, float eps);
/* The residual add fused with the norm that follows it: res (N, C) += add (N, C), then
 * out, rstd = RMSNorm(res) as above (the same bits as the add followed by hs_rmsnorm_forward,
 * one pass fewer over the residual stream). */
void hs_rmsnorm_residual_forward(float *out, float *rstd, float *res, const float *add,
                                 const float *w, int64_t N, int C, float eps);
/* dinp (N, C) +=; dw (C) +=; scratch: (HS_NN_CHUNKS, C) */
void hs_rmsnorm_backward(float *dinp, float *dw, float *scratch, const float *dout,
                         const float *inp, const float *w, const float *rstd, int64_t N, int C);

/* ---- RoPE (HF rotate_half convention) on the q and k parts of a (B, T, 3C) qkv buffer ---- */
/* cos, sin: (max_seq, hd/2) tables: angle(t, i) = t · theta^(-2i/hd) */
void hs_rope_tables(float *cos_t, float *sin_t, int max_seq, int hd, float theta);
/* In place: rotates q (cols [0, C)) and k (cols [C, 2C)) of each row of qkv. */
void hs_rope_forward(float *qkv, const float *cos_t, const float *sin_t, int B, int T, int C,
                     int H);
/* In place on dqkv: the transposed rotation (gradient w.r.t. the un-rotated q, k). */
void hs_rope_backward(float *dqkv, const float *cos_t, const float *sin_t, int B, int T, int C,
                      int H);

/* The rotation of n rows of one head (v0 → its first value; rows `stride` floats apart) at
 * positions 0..n−1; sign +1 forward, −1 backward. Elementwise: the same bits as the two above. */
void hs_rope_head_rows(float *v0, int64_t stride, int n, const float *cos_t, const float *sin_t,
                       int hd, float sign);

/* ---- causal multi-head attention, online softmax per query row ---- */
/* bf16 = 0: the products Q·Kᵀ, P·V and the backward's five in fp32 (OpenBLAS); bf16 = 1: with
 * bf16 operands and fp32 accumulation (hs_gemm_bf16, the same bits on every CPU); the softmax,
 * log-sum-exp and scaling are fp32 either way. attention.c. */
/* out: (B, T, C); lse: (B, H, T) log-sum-exp of each query's scaled scores (for backward);
 * qkv: (B, T, 3C) with RoPE already applied to q and k. Memory: one 64 × T score block per
 * thread (two in the backward; with bf16 also bf16 copies of the head's operands).
 * HS_ERR_NOMEM if those cannot be allocated. */
hs_status hs_attention_forward(float *out, float *lse, const float *qkv, int B, int T, int C,
                               int H, int bf16);
/* dqkv: (B, T, 3C) overwritten; dout, out: (B, T, C); lse: (B, H, T). */
hs_status hs_attention_backward(float *dqkv, const float *dout, const float *qkv, const float *out,
                                const float *lse, int B, int T, int C, int H, int bf16);
/* The same two with RoPE fused in (bit-identical to hs_rope_forward before the forward and
 * hs_rope_backward after the backward, one pass fewer over qkv / dqkv): the forward first rotates
 * q and k of qkv in place (qkv then holds what hs_rope_forward would leave), the backward
 * applies the transposed rotation to dq and dk; cos_t, sin_t as for hs_rope_forward. */
hs_status hs_attention_forward_rope(float *out, float *lse, float *qkv, const float *cos_t,
                                    const float *sin_t, int B, int T, int C, int H, int bf16);
hs_status hs_attention_backward_rope(float *dqkv, const float *dout, const float *qkv,
                                     const float *out, const float *lse, const float *cos_t,
                                     const float *sin_t, int B, int T, int C, int H, int bf16);

/* ---- SwiGLU: h = silu(gate) · up, gu = [gate | up] along the last axis ---- */
/* h: (N, F); gu: (N, 2F) */
void hs_swiglu_forward(float *h, const float *gu, int64_t N, int F);
/* dgu: (N, 2F) overwritten; dh: (N, F) */
void hs_swiglu_backward(float *dgu, const float *dh, const float *gu, int64_t N, int F);
/* The same two with σ(gate) saved by the forward in sg (N, F) and read by the backward: the
 * same bits, without the backward's exponentials (swiglu.c). */
void hs_swiglu_forward_save(float *h, float *sg, const float *gu, int64_t N, int F);
void hs_swiglu_backward_saved(float *dgu, const float *dh, const float *gu, const float *sg,
                              int64_t N, int F);

/* ---- cross-entropy over logits (N, V) ---- */
/* losses (N): −log softmax(logits)[target], 0 where target < 0; lse (N) saved. */
void hs_crossentropy_forward(float *losses, float *lse, const float *logits,
                             const int32_t *targets, int64_t N, int V);
/* In place: logits (N, V) become dlogits = dloss · (softmax − onehot(target)); rows with
 * target < 0 become 0. */
void hs_crossentropy_backward(float *logits, const float *lse, const int32_t *targets,
                              int64_t N, int V, float dloss);

/* ---- embedding ---- */
/* out (N, C) = wte[inputs] */
void hs_embedding_forward(float *out, const int32_t *inputs, const float *wte, int64_t N, int C);
/* dwte (V, C) += scatter of dout (N, C) (serial in token order: deterministic) */
void hs_embedding_backward(float *dwte, const float *dout, const int32_t *inputs, int64_t N,
                           int C);

/* ---- AdamW exactly as torch.optim.AdamW (1.13, single-tensor path) ----
 * https://pytorch.org/docs/stable/generated/torch.optim.AdamW.html
 * p ← p·(1 − lr·wd); m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²;
 * p ← p − (lr / (1−β1^t)) · m / (sqrt(v)/sqrt(1−β2^t) + eps).   t is 1-based. */
void hs_adamw_update(float *p, const float *g, float *m, float *v, int64_t n, double lr,
                     double beta1, double beta2, double eps, double wd, int64_t t);
/* The same update after g ← g · gscale (one fp32 multiply per element, stored back into g):
 * gradient clipping fused into the update, one pass fewer over the gradients. */
void hs_adamw_update_scaled(float *p, float *g, float *m, float *v, int64_t n, float gscale,
                            double lr, double beta1, double beta2, double eps, double wd,
                            int64_t t);

/* ---- linear layer under a recipe: its three GEMMs (fprop, dgrad, wgrad; linear.c) ---- */
typedef struct hs_linear_ws hs_linear_ws; /* packed operand buffers + hs_gemm's scratch, reused */
hs_status hs_linear_ws_create(hs_linear_ws **out);
void hs_linear_ws_free(hs_linear_ws *ws);

/* What one linear's forward keeps for its backward: x quantized (or converted) for wgrad.x when
 * the forward made that copy in the same pass as its own operand. One per linear call site
 * (per layer), created by the first forward that fills it, reused by later ones; free with
 * hs_linear_saved_free. */
typedef struct hs_linear_saved hs_linear_saved;
void hs_linear_saved_free(hs_linear_saved *s);

/* spec[HS_ROLE_COUNT] as in nn/recipe.h (fwd.x, fwd.w, dgrad.dy, dgrad.w, wgrad.dy,
 * wgrad.x). slot: which buffer set to use (one per distinct linear shape), < HS_LINEAR_SLOTS. */
#define HS_LINEAR_SLOTS 16
/* y (M, N) = Q(x) (M, K) · Q(w)ᵀ, w (N, K). saved: NULL, or the layer's handle (*saved NULL the
 * first time: created here); the forward fills it for hs_linear_backward when the recipe lets
 * it quantize x for wgrad.x ahead. */
hs_status hs_linear_forward(hs_linear_ws *ws, int slot, const hs_quant_spec *spec, float *y,
                            const float *x, const float *w, int64_t M, int64_t K, int64_t N,
                            hs_linear_saved **saved, hs_model_timers *tm);
/* dx (M, K) = Q(dy)·Q(w) (overwritten; skipped if dx is NULL); dw (N, K) += Q(dy)ᵀ·Q(x).
 * Straight-through estimator: the quantizers' own derivative is taken as the identity.
 * x and w must hold what the forward saw. saved: the handle the forward filled (its wgrad.x
 * copy is used once, if made for this shape and spec), or NULL: x is quantized here. */
hs_status hs_linear_backward(hs_linear_ws *ws, int slot, const hs_quant_spec *spec, float *dx,
                             float *dw, const float *dy, const float *x, const float *w,
                             int64_t M, int64_t K, int64_t N, hs_linear_saved *saved,
                             hs_model_timers *tm);

#endif

/* model.h: a Llama-style decoder-only language model whose linear layers run in a recipe.
 *
 *   embed → L × [RMSNorm → attention(q,k,v,o; RoPE; causal softmax) + residual,
 *                RMSNorm → SwiGLU(gate, up, down) + residual] → RMSNorm → lm_head → loss
 *
 * Conventions follow Hugging Face's LlamaForCausalLM so checkpoints load in a Llama loader:
 * tensor names and [out, in] shapes (hs_param_tensor), RMSNorm y = w·x/sqrt(mean(x²)+eps),
 * RoPE with rotate_half on the two halves of each head (inv_freq_i = theta^(-2i/hd)), no biases,
 * SiLU-gated MLP down(silu(gate(x))·up(x)).
 *
 * All parameters live in one float array carved by the tensor table; grads (and the AdamW
 * moments of the trainer) use the same layout. q, k, v are stored back to back, and so are gate
 * and up, so each pair runs as one fused linear ([3C × C] and [2F × C]); quantization groups along
 * the output axis (dgrad.dy, dgrad.w) therefore span the fused output, as in fused kernels.
 *
 * Activations are allocated once for the largest B×T seen (hs_model_reserve) and reused.
 * Threads: OpenMP; every reduction runs in a fixed order, so results do not depend on the
 * thread count.
 */
#ifndef HALFS_NN_MODEL_H
#define HALFS_NN_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "halfs/status.h"

struct hs_recipe;

typedef struct hs_model_config {
    int32_t vocab;           /* V: vocabulary size (HF vocab_size) */
    int32_t dim;             /* C: model width (hidden_size) */
    int32_t n_layers;        /* L (num_hidden_layers) */
    int32_t n_heads;         /* H (num_attention_heads = num_key_value_heads); C % H == 0 and
                                the head dim C/H is even (RoPE pairs) */
    int32_t ffn_dim;         /* F: SwiGLU width (intermediate_size) */
    int32_t max_seq;         /* longest sequence T (max_position_embeddings) */
    float rope_theta;        /* RoPE base (rope_theta), 10000 by default */
    float norm_eps;          /* RMSNorm epsilon (rms_norm_eps), 1e-5 by default */
    int32_t tied_embeddings; /* 1: lm_head is embed_tokens (tie_word_embeddings) */
} hs_model_config;

/* Names of the presets, NULL-terminated: "nano" (dim 64, 2 layers: trains in seconds), "tiny"
 * (128, 4), "small" (256, 6: ≈ 4.8M non-embedding parameters), "medium" (512, 8: ≈ 25M),
 * "base" (768, 12 layers, 12 heads, SwiGLU 2048: ≈ 85M non-embedding, 91M in all with V = 4096:
 * the size where the linear layers begin to dominate a step, as in real LLM training).
 * A preset's vocab is a default; the trainer sets it from the tokenizer/data when known. */
extern const char *const hs_model_preset_names[];
hs_status hs_model_config_preset(const char *name, hs_model_config *out);

/* HS_OK, or HS_ERR_INVALID_ARG naming the impossible field (dim % heads, odd head dim, ...). */
hs_status hs_model_config_validate(const hs_model_config *c);

/* Parameter counts: all, and without embed_tokens/lm_head. */
int64_t hs_model_config_params(const hs_model_config *c);
int64_t hs_model_config_params_nonembed(const hs_model_config *c);

/* One tensor of the parameter table. */
typedef struct hs_param_tensor {
    char name[64];    /* HF name: "model.layers.3.self_attn.q_proj.weight", ... */
    int32_t ndim;     /* 1 (norm weights) or 2 (matrices) */
    int64_t shape[2]; /* HF shape: [out, in] for matrices, [dim] for norms (shape[1] = 1) */
    int64_t offset;   /* first element in params (and grads, AdamW m, v), in floats */
    int64_t numel;
    int32_t decay;    /* 1: AdamW weight decay applies (matrices incl. embeddings); 0: norms */
    int32_t layer;    /* block index, or -1 for embed_tokens, model.norm, lm_head */
} hs_param_tensor;

/* Table order: model.embed_tokens.weight; per block i: input_layernorm, self_attn.q_proj,
 * k_proj, v_proj, o_proj, post_attention_layernorm, mlp.gate_proj, up_proj, down_proj;
 * model.norm.weight; lm_head.weight (absent when tied). */

typedef struct hs_model_timers {
    double gemm;     /* seconds in the GEMMs of linear layers (incl. lm_head) */
    double quant;    /* seconds quantizing / converting GEMM operands */
    double attention;/* seconds in attention forward + backward */
    double total;    /* seconds in hs_model_forward + hs_model_backward */
} hs_model_timers;

struct hs_model_acts; /* private: activations and workspaces */

/* Optional observer of the linear layers' operands (used by `halfs capture`): when set, the
 * forward pass calls it with each block linear's input X (rows = B·T tokens, cols = in) and the
 * backward pass with its output gradient dY (rows = B·T, cols = out), before the layer's GEMMs
 * quantize them. layer: block index; which: 0 q,k,v (fused), 1 o, 2 gate,up (fused), 3 down;
 * role: "x" or "dy". The data is only valid during the call. NULL (the default): no calls. */
typedef void (*hs_model_capture_fn)(void *ctx, int layer, int which, const char *role,
                                    const float *data, int64_t rows, int64_t cols);

/* Optional observer of the backward pass's progress (used by the data-parallel trainer to start
 * each bucket's gradient exchange while the pass goes on): called once the gradients
 * grads[offset, offset + count) of the pass are final, in the order the pass finishes them:
 * model.norm and lm_head, then each block from the last to the first (its nine tensors), then
 * embed_tokens (which the tied lm_head also writes). It only reads the gradients' positions;
 * the pass computes the same bits with or without it. NULL (the default): no calls. */
typedef void (*hs_model_grad_fn)(void *ctx, int64_t offset, int64_t count);

typedef struct hs_model {
    hs_model_config cfg;
    int32_t n_tensors;
    hs_param_tensor *tensors; /* (n_tensors) */
    int64_t n_params;
    float *params;            /* (n_params): one allocation, carved by tensors[] */
    float *grads;             /* (n_params): same layout; backward accumulates here */
    hs_model_timers timers;   /* accumulated since creation (or since the caller zeroed it) */
    struct hs_model_acts *acts;
    hs_model_capture_fn capture; /* NULL, or the operand observer above */
    void *capture_ctx;           /* its first argument */
    hs_model_grad_fn grad_ready; /* NULL, or the backward observer above */
    void *grad_ready_ctx;        /* its first argument */
} hs_model;

/* Create a model (parameters zero; call hs_model_init_weights or load a checkpoint). */
hs_status hs_model_create(const hs_model_config *c, hs_model **out);
void hs_model_free(hs_model *m);

/* Initialise weights from a seed (deterministic): matrices N(0, 0.02²), the residual output
 * projections (o_proj, down_proj) N(0, (0.02/sqrt(2L))²), norm weights 1. */
void hs_model_init_weights(hs_model *m, uint64_t seed);

/* The tensor named `name`, or NULL. */
const hs_param_tensor *hs_model_find_tensor(const hs_model *m, const char *name);

/* Allocate (and touch) the activations for up to B×T tokens, so the first step does not pay
 * for it; forward calls it itself when a larger B×T arrives. */
hs_status hs_model_reserve(hs_model *m, int B, int T);

/* Forward pass. inputs (B×T token ids, each < vocab), T ≤ max_seq. recipe NULL = fp32.
 * step: the training step number mixed into the recipe's SR and RHT seeds (the trainer passes
 * the 0-based index of the step; a forward and its backward take the same value).
 * If targets (B×T) is non-NULL, *loss receives the mean cross-entropy (nats per token) and the
 * pass keeps what hs_model_backward needs. targets < 0 are ignored (not counted in the mean).
 * Logits (B, T, V) are readable through hs_model_logits until the next backward/forward. */
hs_status hs_model_forward(hs_model *m, const struct hs_recipe *recipe, uint64_t step,
                           const int32_t *inputs, const int32_t *targets, int B, int T,
                           float *loss);

/* Logits of the last forward pass: (B, T, V) row-major. */
const float *hs_model_logits(const hs_model *m);

/* Backward of the last forward pass (which must have had targets), in the same recipe and step:
 * grads += loss_scale · d(mean loss)/d(params). loss_scale = 1/accum for accumulation. */
hs_status hs_model_backward(hs_model *m, const struct hs_recipe *recipe, uint64_t step,
                            float loss_scale);

void hs_model_zero_grad(hs_model *m);

#endif

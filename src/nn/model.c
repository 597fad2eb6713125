/* model.c: the Llama-style model: presets, parameter table, init, forward and backward.
 *
 * Written the llm.c way: one parameter allocation carved by a table, activations allocated
 * once (for the largest B×T seen) with their shapes written next to them, and the forward /
 * backward as a plain sequence of layer calls (ops.h). See model.h for the conventions.
 */
#include "nn/model.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "halfs/rng.h"
#include "nn/ops.h"
#include "nn/recipe.h"

/* ---------------------------------------------------------------- presets + config */

const char *const hs_model_preset_names[] = {"nano", "tiny", "small", "medium", "base", NULL};

hs_status hs_model_config_preset(const char *name, hs_model_config *c) {
    memset(c, 0, sizeof *c);
    c->rope_theta = 10000.0f;
    c->norm_eps = 1e-5f;
    c->tied_embeddings = 0;
    // FFN widths: ≈ 8/3·dim (Llama's SwiGLU sizing) rounded to a multiple of 32, so every
    // reduction axis holds whole MX blocks.
    if (!strcmp(name, "nano")) {
        *c = (hs_model_config){512, 64, 2, 4, 192, 256, 10000.0f, 1e-5f, 0};
    } else if (!strcmp(name, "tiny")) {
        *c = (hs_model_config){4096, 128, 4, 4, 352, 256, 10000.0f, 1e-5f, 0};
    } else if (!strcmp(name, "small")) {
        *c = (hs_model_config){4096, 256, 6, 8, 704, 512, 10000.0f, 1e-5f, 0};
    } else if (!strcmp(name, "medium")) {
        *c = (hs_model_config){4096, 512, 8, 8, 1376, 1024, 10000.0f, 1e-5f, 0};
    } else if (!strcmp(name, "base")) { // GPT-2 small / BERT-base shape: 12 × 768, SwiGLU 2048
        *c = (hs_model_config){4096, 768, 12, 12, 2048, 1024, 10000.0f, 1e-5f, 0};
    } else {
        return hs_fail(HS_ERR_INVALID_ARG, "unknown model '%s' (nano, tiny, small, medium, base)",
                       name);
    }
    return HS_OK;
}

hs_status hs_model_config_validate(const hs_model_config *c) {
    if (c->vocab < 2 || c->vocab > 65536)
        return hs_fail(HS_ERR_INVALID_ARG, "vocab must be in [2, 65536], got %d", c->vocab);
    if (c->dim < 2 || c->dim > 65536)
        return hs_fail(HS_ERR_INVALID_ARG, "dim must be in [2, 65536], got %d", c->dim);
    if (c->n_layers < 1 || c->n_layers > 1024)
        return hs_fail(HS_ERR_INVALID_ARG, "layers must be in [1, 1024], got %d", c->n_layers);
    if (c->n_heads < 1 || c->dim % c->n_heads != 0)
        return hs_fail(HS_ERR_INVALID_ARG, "heads (%d) must divide dim (%d)", c->n_heads, c->dim);
    if ((c->dim / c->n_heads) % 2 != 0)
        return hs_fail(HS_ERR_INVALID_ARG,
                       "head dim dim/heads = %d must be even (RoPE rotates pairs)",
                       c->dim / c->n_heads);
    if (c->ffn_dim < 1 || c->ffn_dim > 1 << 20)
        return hs_fail(HS_ERR_INVALID_ARG, "ffn must be in [1, 2^20], got %d", c->ffn_dim);
    if (c->max_seq < 1 || c->max_seq > 1 << 16)
        return hs_fail(HS_ERR_INVALID_ARG, "max_seq must be in [1, 65536], got %d", c->max_seq);
    if (!(c->rope_theta > 0.0f) || !isfinite(c->rope_theta))
        return hs_fail(HS_ERR_INVALID_ARG, "rope_theta must be > 0");
    if (!(c->norm_eps > 0.0f) || !isfinite(c->norm_eps))
        return hs_fail(HS_ERR_INVALID_ARG, "norm_eps must be > 0");
    return HS_OK;
}

int64_t hs_model_config_params_nonembed(const hs_model_config *c) {
    int64_t C = c->dim, F = c->ffn_dim;
    return (int64_t)c->n_layers * (2 * C + 4 * C * C + 3 * C * F) + C;
}

int64_t hs_model_config_params(const hs_model_config *c) {
    int64_t e = (int64_t)c->vocab * c->dim;
    return hs_model_config_params_nonembed(c) + e * (c->tied_embeddings ? 1 : 2);
}

/* ---------------------------------------------------------------- parameter table */

/* Per-block tensor order (also the index offset within a block). */
enum { P_LN1 = 0, P_Q, P_K, P_V, P_O, P_LN2, P_GATE, P_UP, P_DOWN, P_PER_LAYER };

static int tidx_layer(int l, int j) { return 1 + l * P_PER_LAYER + j; }
static int tidx_norm(const hs_model_config *c) { return 1 + c->n_layers * P_PER_LAYER; }
static int tidx_lm(const hs_model_config *c) { return 2 + c->n_layers * P_PER_LAYER; }

static float *P(hs_model *m, int idx) { return m->params + m->tensors[idx].offset; }
static float *G(hs_model *m, int idx) { return m->grads + m->tensors[idx].offset; }

static void add_tensor(hs_model *m, int *k, int64_t *off, const char *name, int64_t out,
                       int64_t in, int ndim, int layer) {
    hs_param_tensor *t = &m->tensors[(*k)++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    t->shape[0] = out;
    t->shape[1] = ndim == 2 ? in : 1;
    t->numel = out * t->shape[1];
    t->offset = *off;
    t->decay = ndim == 2;
    t->layer = layer;
    *off += t->numel;
}

/* Memory touched for the first time is slow (a page fault per 4 KiB page, measured on the
 * development VM): big buffers get transparent huge pages where possible and are zeroed
 * (touched) once, here, not during the first step. */
static void *big_alloc(size_t bytes) {
    if (bytes == 0) bytes = 64;
    size_t align = bytes >= (4u << 20) ? (2u << 20) : 64;
    bytes = (bytes + align - 1) / align * align;
    void *p = NULL;
    if (posix_memalign(&p, align, bytes) != 0) return NULL;
#ifdef MADV_HUGEPAGE
    if (align > 64) madvise(p, bytes, MADV_HUGEPAGE);
#endif
    memset(p, 0, bytes);
    return p;
}

struct hs_model_acts {
    int64_t cap;       // tokens (B·T) the buffers hold
    float *encoded;    // (N, C) embedding output = residual input of block 0
    float *ln1;        // (L, N, C)
    float *ln1_rstd;   // (L, N)
    float *qkv;        // (L, N, 3C) q, k after RoPE
    float *att;        // (L, N, C) attention output (input of o_proj)
    float *att_lse;    // (L, N·H) per (b, h, t) log-sum-exp
    float *res1;       // (L, N, C) residual after attention
    float *ln2;        // (L, N, C)
    float *ln2_rstd;   // (L, N)
    float *gu;         // (L, N, 2F) [gate | up]
    float *hmlp;       // (L, N, F) silu(gate)·up (input of down_proj)
    float *sig;        // (L, N, F) σ(gate), kept for the SwiGLU backward
    float *res2;       // (L, N, C) residual after the MLP (input of the next block)
    float *lnf;        // (N, C)
    float *lnf_rstd;   // (N)
    float *logits;     // (N, V) (dlogits in place during backward)
    float *losses;     // (N)
    float *ce_lse;     // (N)
    int32_t *inputs;   // (N)
    int32_t *targets;  // (N)
    // backward scratch, reused by every block
    float *dres;       // (N, C) gradient of the residual stream
    float *dbuf;       // (N, C) gradient of a norm output
    float *datt;       // (N, C)
    float *dqkv;       // (N, 3C)
    float *dgu;        // (N, 2F)
    float *dh;         // (N, F)
    float *norm_scratch; // (HS_NN_CHUNKS, C)
    float *rope_cos, *rope_sin; // (max_seq, hd/2)
    hs_linear_ws *lin;
    hs_linear_saved **saved; // (L·4 + 1): each linear's forward → backward handle (saved_for)
    int B, T;
    int have_targets;  // last forward had targets
    int64_t n_valid;   // targets ≥ 0 in the last forward
    float loss;
};

static void acts_free_buffers(struct hs_model_acts *a) {
    float **bufs[] = {&a->encoded, &a->ln1, &a->ln1_rstd, &a->qkv, &a->att, &a->att_lse,
                      &a->res1, &a->ln2, &a->ln2_rstd, &a->gu, &a->hmlp, &a->sig, &a->res2,
                      &a->lnf, &a->lnf_rstd, &a->logits, &a->losses, &a->ce_lse, &a->dres,
                      &a->dbuf, &a->datt, &a->dqkv, &a->dgu, &a->dh};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        free(*bufs[i]);
        *bufs[i] = NULL;
    }
    free(a->inputs);
    free(a->targets);
    a->inputs = a->targets = NULL;
    a->cap = 0;
}

hs_status hs_model_create(const hs_model_config *c, hs_model **out) {
    *out = NULL;
    hs_status st = hs_model_config_validate(c);
    if (st != HS_OK) return st;
    hs_model *m = calloc(1, sizeof *m);
    if (!m) return hs_fail(HS_ERR_NOMEM, "model: out of memory");
    m->cfg = *c;
    int L = c->n_layers;
    int64_t V = c->vocab, C = c->dim, F = c->ffn_dim;
    m->n_tensors = 2 + L * P_PER_LAYER + (c->tied_embeddings ? 0 : 1);
    m->tensors = calloc((size_t)m->n_tensors, sizeof *m->tensors);
    m->acts = calloc(1, sizeof *m->acts);
    if (!m->tensors || !m->acts) goto nomem;
    int k = 0;
    int64_t off = 0;
    char name[64];
    add_tensor(m, &k, &off, "model.embed_tokens.weight", V, C, 2, -1);
    for (int l = 0; l < L; l++) {
        // q, k, v back to back and gate, up back to back: each pair is one fused linear.
        static const char *const nm[P_PER_LAYER] = {
            "input_layernorm", "self_attn.q_proj", "self_attn.k_proj",
            "self_attn.v_proj", "self_attn.o_proj", "post_attention_layernorm",
            "mlp.gate_proj",   "mlp.up_proj",      "mlp.down_proj"};
        for (int j = 0; j < P_PER_LAYER; j++) {
            snprintf(name, sizeof name, "model.layers.%d.%s.weight", l, nm[j]);
            int64_t o = (j == P_GATE || j == P_UP) ? F : C;
            int64_t i = j == P_DOWN ? F : C;
            int nd = (j == P_LN1 || j == P_LN2) ? 1 : 2;
            add_tensor(m, &k, &off, name, o, i, nd, l);
        }
    }
    add_tensor(m, &k, &off, "model.norm.weight", C, 1, 1, -1);
    if (!c->tied_embeddings) add_tensor(m, &k, &off, "lm_head.weight", V, C, 2, -1);
    m->n_params = off;
    m->params = big_alloc((size_t)off * sizeof(float));
    m->grads = big_alloc((size_t)off * sizeof(float));
    if (!m->params || !m->grads) goto nomem;
    int hd = (int)(C / c->n_heads);
    m->acts->rope_cos = malloc(sizeof(float) * (size_t)c->max_seq * (size_t)(hd / 2));
    m->acts->rope_sin = malloc(sizeof(float) * (size_t)c->max_seq * (size_t)(hd / 2));
    m->acts->norm_scratch = malloc(sizeof(float) * HS_NN_CHUNKS * (size_t)C);
    m->acts->saved = calloc((size_t)L * 4 + 1, sizeof *m->acts->saved);
    if (!m->acts->rope_cos || !m->acts->rope_sin || !m->acts->norm_scratch || !m->acts->saved)
        goto nomem;
    hs_rope_tables(m->acts->rope_cos, m->acts->rope_sin, c->max_seq, hd, c->rope_theta);
    if ((st = hs_linear_ws_create(&m->acts->lin)) != HS_OK) {
        hs_model_free(m);
        return st;
    }
    *out = m;
    return HS_OK;
nomem:
    hs_model_free(m);
    return hs_fail(HS_ERR_NOMEM, "model: out of memory");
}

void hs_model_free(hs_model *m) {
    if (!m) return;
    if (m->acts) {
        acts_free_buffers(m->acts);
        free(m->acts->rope_cos);
        free(m->acts->rope_sin);
        free(m->acts->norm_scratch);
        hs_linear_ws_free(m->acts->lin);
        if (m->acts->saved)
            for (int i = 0; i < m->cfg.n_layers * 4 + 1; i++)
                hs_linear_saved_free(m->acts->saved[i]);
        free(m->acts->saved);
        free(m->acts);
    }
    free(m->tensors);
    free(m->params);
    free(m->grads);
    free(m);
}

const hs_param_tensor *hs_model_find_tensor(const hs_model *m, const char *name) {
    for (int i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return &m->tensors[i];
    return NULL;
}

/* SplitMix64 finaliser: counter-based normal numbers for initialisation. */
/* SplitMix64's output function after one step of its counter (halfs/rng.h). */
static uint64_t mix64(uint64_t x) { return hs_rng_mix(x + HS_RNG_GAMMA); }

void hs_model_init_weights(hs_model *m, uint64_t seed) {
    double resid_std = 0.02 / sqrt(2.0 * m->cfg.n_layers);
    for (int ti = 0; ti < m->n_tensors; ti++) {
        const hs_param_tensor *t = &m->tensors[ti];
        float *p = m->params + t->offset;
        if (t->ndim == 1) {
            for (int64_t i = 0; i < t->numel; i++) p[i] = 1.0f;
            continue;
        }
        int resid = strstr(t->name, "o_proj") || strstr(t->name, "down_proj");
        double std = resid ? resid_std : 0.02;
        uint64_t ts = mix64(seed ^ mix64((uint64_t)ti + 1));
        // Box-Muller on a counter-based generator: element i's value depends on (seed, tensor,
        // i) only, so initialisation is parallel and reproducible.
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < t->numel; i++) {
            uint64_t r = mix64(ts + (uint64_t)i);
            double u1 = ((r >> 11) + 1.0) * 0x1.0p-53; // (0, 1]
            double u2 = (mix64(r) >> 11) * 0x1.0p-53;  // [0, 1)
            p[i] = (float)(std * sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
        }
    }
}

/* ---------------------------------------------------------------- activations */

hs_status hs_model_reserve(hs_model *m, int B, int T) {
    struct hs_model_acts *a = m->acts;
    int64_t N = (int64_t)B * T;
    if (N <= a->cap) return HS_OK;
    acts_free_buffers(a);
    int64_t L = m->cfg.n_layers, C = m->cfg.dim, F = m->cfg.ffn_dim, V = m->cfg.vocab;
    int64_t H = m->cfg.n_heads;
    struct {
        float **p;
        int64_t n;
    } plan[] = {
        {&a->encoded, N * C},      {&a->ln1, L * N * C},   {&a->ln1_rstd, L * N},
        {&a->qkv, L * N * 3 * C},  {&a->att, L * N * C},   {&a->att_lse, L * N * H},
        {&a->res1, L * N * C},     {&a->ln2, L * N * C},   {&a->ln2_rstd, L * N},
        {&a->gu, L * N * 2 * F},   {&a->hmlp, L * N * F},  {&a->sig, L * N * F},
        {&a->res2, L * N * C},
        {&a->lnf, N * C},          {&a->lnf_rstd, N},      {&a->logits, N * V},
        {&a->losses, N},           {&a->ce_lse, N},        {&a->dres, N * C},
        {&a->dbuf, N * C},         {&a->datt, N * C},      {&a->dqkv, N * 3 * C},
        {&a->dgu, N * 2 * F},      {&a->dh, N * F},
    };
    for (size_t i = 0; i < sizeof plan / sizeof plan[0]; i++) {
        *plan[i].p = big_alloc((size_t)plan[i].n * sizeof(float));
        if (!*plan[i].p) goto nomem;
    }
    a->inputs = malloc(sizeof(int32_t) * (size_t)N);
    a->targets = malloc(sizeof(int32_t) * (size_t)N);
    if (!a->inputs || !a->targets) goto nomem;
    a->cap = N;
    return HS_OK;
nomem:
    acts_free_buffers(a);
    return hs_fail(HS_ERR_NOMEM, "model: out of memory for activations of %lld tokens",
                   (long long)N);
}

const float *hs_model_logits(const hs_model *m) { return m->acts->logits; }

void hs_model_zero_grad(hs_model *m) {
    memset(m->grads, 0, sizeof(float) * (size_t)m->n_params);
}

/* The six role specs of linear `lin` in block `layer` (HS_LAYER_LM_HEAD for the lm_head). */
static void specs_for(const hs_recipe *r, uint64_t step, int layer, int lin,
                      hs_quant_spec spec[HS_ROLE_COUNT]) {
    for (int i = 0; i < HS_ROLE_COUNT; i++) {
        if (r) {
            hs_recipe_spec(r, layer, lin, (hs_role)i, step, &spec[i]);
        } else {
            memset(&spec[i], 0, sizeof spec[i]); // fp32: no quantization at all
            spec[i].elem = HS_ELEM_FP32;
        }
    }
}

/* Slot of a linear's operand buffers: one per (linear, high-precision-or-not). */
static int slot_for(const hs_recipe *r, int layer, int lin) {
    if (layer == HS_LAYER_LM_HEAD) return 4;
    int hp = r && layer < HS_RECIPE_MAX_LAYERS && ((r->hp_layers >> layer) & 1);
    return lin + (hp ? 5 : 0);
}

/* The forward → backward handle of linear `lin` in block `layer` (HS_LAYER_LM_HEAD: the lm_head). */
static hs_linear_saved **saved_for(hs_model *m, int layer, int lin) {
    int i = layer == HS_LAYER_LM_HEAD ? m->cfg.n_layers * 4 : layer * 4 + lin;
    return &m->acts->saved[i];
}

/* ---------------------------------------------------------------- forward */

/* The operand observer (hs_model.capture), if any: X before a block linear's forward GEMM,
 * dY before its backward GEMMs. */
#define CAPTURE(m, l, which, role, data, rows, cols) \
    do { \
        if ((m)->capture) (m)->capture((m)->capture_ctx, (l), (which), (role), (data), (rows), (cols)); \
    } while (0)

hs_status hs_model_forward(hs_model *m, const hs_recipe *recipe, uint64_t step,
                           const int32_t *inputs, const int32_t *targets, int B, int T,
                           float *loss) {
    const hs_model_config *c = &m->cfg;
    if (B < 1 || T < 1)
        return hs_fail(HS_ERR_INVALID_ARG, "forward: batch %d × seq %d must both be ≥ 1", B, T);
    if (T > c->max_seq)
        return hs_fail(HS_ERR_INVALID_ARG, "forward: seq %d is longer than the model's context %d",
                       T, c->max_seq);
    int64_t N = (int64_t)B * T;
    for (int64_t i = 0; i < N; i++) {
        if (inputs[i] < 0 || inputs[i] >= c->vocab)
            return hs_fail(HS_ERR_INVALID_ARG, "forward: token %d at position %lld is outside the "
                           "vocabulary [0, %d)", inputs[i], (long long)i, c->vocab);
        if (targets && targets[i] >= c->vocab)
            return hs_fail(HS_ERR_INVALID_ARG, "forward: target %d at position %lld is outside "
                           "the vocabulary [0, %d)", targets[i], (long long)i, c->vocab);
    }
    hs_status st = hs_model_reserve(m, B, T);
    if (st != HS_OK) return st;
    double t0 = omp_get_wtime();
    struct hs_model_acts *a = m->acts;
    a->B = B;
    a->T = T;
    a->have_targets = 0;
    memcpy(a->inputs, inputs, sizeof(int32_t) * (size_t)N);
    int L = c->n_layers, C = c->dim, F = c->ffn_dim, V = c->vocab, H = c->n_heads;
    hs_quant_spec spec[HS_ROLE_COUNT];
    hs_model_timers *tm = &m->timers;

    hs_embedding_forward(a->encoded, inputs, P(m, 0), N, C);
    const float *x = a->encoded; // (N, C) residual stream entering the block
    // Why the norms sit at the end of the previous block: each residual add runs fused with the
    // RMSNorm that reads its result (hs_rmsnorm_residual_forward), one pass fewer per add.
    if (L > 0)
        hs_rmsnorm_forward(a->ln1, a->ln1_rstd, x, P(m, tidx_layer(0, P_LN1)), N, C, c->norm_eps);
    else
        hs_rmsnorm_forward(a->lnf, a->lnf_rstd, x, P(m, tidx_norm(c)), N, C, c->norm_eps);
    for (int l = 0; l < L; l++) {
        float *ln1 = a->ln1 + l * N * C, *qkv = a->qkv + l * N * 3 * C;
        float *att = a->att + l * N * C, *res1 = a->res1 + l * N * C;
        float *ln2 = a->ln2 + l * N * C, *gu = a->gu + l * N * 2 * F;
        float *hm = a->hmlp + l * N * F, *res2 = a->res2 + l * N * C;
        specs_for(recipe, step, l, 0, spec);
        CAPTURE(m, l, 0, "x", ln1, N, C);
        if ((st = hs_linear_forward(a->lin, slot_for(recipe, l, 0), spec, qkv, ln1,
                                    P(m, tidx_layer(l, P_Q)), N, C, 3 * C, saved_for(m, l, 0), tm)))
            return st;
        double ta = omp_get_wtime(); // RoPE runs inside attention's per-head tasks
        st = hs_attention_forward_rope(att, a->att_lse + l * N * H, qkv, a->rope_cos, a->rope_sin,
                                       B, T, C, H, recipe && recipe->attn_bf16);
        tm->attention += omp_get_wtime() - ta;
        if (st != HS_OK) return st;
        specs_for(recipe, step, l, 1, spec);
        CAPTURE(m, l, 1, "x", att, N, C);
        if ((st = hs_linear_forward(a->lin, slot_for(recipe, l, 1), spec, res1, att,
                                    P(m, tidx_layer(l, P_O)), N, C, C, saved_for(m, l, 1), tm)))
            return st;
        hs_rmsnorm_residual_forward(ln2, a->ln2_rstd + l * N, res1, x,
                                    P(m, tidx_layer(l, P_LN2)), N, C, c->norm_eps);
        specs_for(recipe, step, l, 2, spec);
        CAPTURE(m, l, 2, "x", ln2, N, C);
        if ((st = hs_linear_forward(a->lin, slot_for(recipe, l, 2), spec, gu, ln2,
                                    P(m, tidx_layer(l, P_GATE)), N, C, 2 * F,
                                    saved_for(m, l, 2), tm)))
            return st;
        if (targets) // σ(gate) kept for the backward
            hs_swiglu_forward_save(hm, a->sig + l * N * F, gu, N, F);
        else
            hs_swiglu_forward(hm, gu, N, F);
        specs_for(recipe, step, l, 3, spec);
        CAPTURE(m, l, 3, "x", hm, N, F);
        if ((st = hs_linear_forward(a->lin, slot_for(recipe, l, 3), spec, res2, hm,
                                    P(m, tidx_layer(l, P_DOWN)), N, F, C, saved_for(m, l, 3), tm)))
            return st;
        // res2 += res1, then the next block's input norm (or the final norm)
        if (l + 1 < L)
            hs_rmsnorm_residual_forward(a->ln1 + (l + 1) * N * C, a->ln1_rstd + (l + 1) * N, res2,
                                        res1, P(m, tidx_layer(l + 1, P_LN1)), N, C, c->norm_eps);
        else
            hs_rmsnorm_residual_forward(a->lnf, a->lnf_rstd, res2, res1, P(m, tidx_norm(c)), N, C,
                                        c->norm_eps);
        x = res2;
    }
    const float *wlm = c->tied_embeddings ? P(m, 0) : P(m, tidx_lm(c));
    specs_for(recipe, step, HS_LAYER_LM_HEAD, 0, spec);
    if ((st = hs_linear_forward(a->lin, slot_for(recipe, HS_LAYER_LM_HEAD, 0), spec, a->logits,
                                a->lnf, wlm, N, C, V, saved_for(m, HS_LAYER_LM_HEAD, 0), tm)))
        return st;
    if (targets) {
        memcpy(a->targets, targets, sizeof(int32_t) * (size_t)N);
        hs_crossentropy_forward(a->losses, a->ce_lse, a->logits, targets, N, V);
        double s = 0.0; // fixed order: the same sum for any thread count
        int64_t nv = 0;
        for (int64_t i = 0; i < N; i++)
            if (targets[i] >= 0) {
                s += a->losses[i];
                nv++;
            }
        a->n_valid = nv;
        a->loss = nv ? (float)(s / (double)nv) : 0.0f;
        a->have_targets = 1;
        if (loss) *loss = a->loss;
    }
    tm->total += omp_get_wtime() - t0;
    return HS_OK;
}

/* ---------------------------------------------------------------- backward */

/* The backward observer (hs_model.grad_ready), if any: tensors [t0, t1) of the table are final. */
static void grads_ready(hs_model *m, int t0, int t1) {
    if (!m->grad_ready || t1 <= t0) return;
    int64_t off = m->tensors[t0].offset;
    int64_t end = m->tensors[t1 - 1].offset + m->tensors[t1 - 1].numel;
    m->grad_ready(m->grad_ready_ctx, off, end - off);
}

hs_status hs_model_backward(hs_model *m, const hs_recipe *recipe, uint64_t step,
                            float loss_scale) {
    struct hs_model_acts *a = m->acts;
    if (!a->have_targets)
        return hs_fail(HS_ERR_INVALID_ARG, "backward: the last forward pass had no targets");
    a->have_targets = 0; // the logits become dlogits below
    double t0 = omp_get_wtime();
    const hs_model_config *c = &m->cfg;
    int B = a->B, T = a->T, L = c->n_layers, C = c->dim, F = c->ffn_dim, V = c->vocab;
    int H = c->n_heads;
    int64_t N = (int64_t)B * T;
    hs_model_timers *tm = &m->timers;
    hs_quant_spec spec[HS_ROLE_COUNT];
    hs_status st;
    if (a->n_valid == 0) return HS_OK;
    float dloss = loss_scale / (float)a->n_valid;

    hs_crossentropy_backward(a->logits, a->ce_lse, a->targets, N, V, dloss);
    float *wlm = c->tied_embeddings ? P(m, 0) : P(m, tidx_lm(c));
    float *dwlm = c->tied_embeddings ? G(m, 0) : G(m, tidx_lm(c));
    specs_for(recipe, step, HS_LAYER_LM_HEAD, 0, spec);
    if ((st = hs_linear_backward(a->lin, slot_for(recipe, HS_LAYER_LM_HEAD, 0), spec, a->dbuf,
                                 dwlm, a->logits, a->lnf, wlm, N, C, V,
                                 *saved_for(m, HS_LAYER_LM_HEAD, 0), tm)))
        return st;
    const float *xlast = L > 0 ? a->res2 + (int64_t)(L - 1) * N * C : a->encoded;
    memset(a->dres, 0, sizeof(float) * (size_t)(N * C));
    hs_rmsnorm_backward(a->dres, G(m, tidx_norm(c)), a->norm_scratch, a->dbuf, xlast,
                        P(m, tidx_norm(c)), a->lnf_rstd, N, C);
    grads_ready(m, tidx_norm(c), m->n_tensors); // model.norm (and lm_head unless tied)
    for (int l = L - 1; l >= 0; l--) {
        const float *xin = l == 0 ? a->encoded : a->res2 + (int64_t)(l - 1) * N * C;
        float *ln1 = a->ln1 + l * N * C, *qkv = a->qkv + l * N * 3 * C;
        float *att = a->att + l * N * C, *res1 = a->res1 + l * N * C;
        float *ln2 = a->ln2 + l * N * C, *gu = a->gu + l * N * 2 * F;
        float *hm = a->hmlp + l * N * F;
        // MLP: res2 = res1 + down(swiglu(gate_up(ln2(res1))))
        specs_for(recipe, step, l, 3, spec);
        CAPTURE(m, l, 3, "dy", a->dres, N, C);
        if ((st = hs_linear_backward(a->lin, slot_for(recipe, l, 3), spec, a->dh,
                                     G(m, tidx_layer(l, P_DOWN)), a->dres, hm,
                                     P(m, tidx_layer(l, P_DOWN)), N, F, C,
                                     *saved_for(m, l, 3), tm)))
            return st;
        hs_swiglu_backward_saved(a->dgu, a->dh, gu, a->sig + l * N * F, N, F);
        specs_for(recipe, step, l, 2, spec);
        CAPTURE(m, l, 2, "dy", a->dgu, N, 2 * F);
        if ((st = hs_linear_backward(a->lin, slot_for(recipe, l, 2), spec, a->dbuf,
                                     G(m, tidx_layer(l, P_GATE)), a->dgu, ln2,
                                     P(m, tidx_layer(l, P_GATE)), N, C, 2 * F,
                                     *saved_for(m, l, 2), tm)))
            return st;
        hs_rmsnorm_backward(a->dres, G(m, tidx_layer(l, P_LN2)), a->norm_scratch, a->dbuf, res1,
                            P(m, tidx_layer(l, P_LN2)), a->ln2_rstd + l * N, N, C);
        // attention: res1 = xin + o(attention(rope(qkv(ln1(xin)))))
        specs_for(recipe, step, l, 1, spec);
        CAPTURE(m, l, 1, "dy", a->dres, N, C);
        if ((st = hs_linear_backward(a->lin, slot_for(recipe, l, 1), spec, a->datt,
                                     G(m, tidx_layer(l, P_O)), a->dres, att,
                                     P(m, tidx_layer(l, P_O)), N, C, C, *saved_for(m, l, 1), tm)))
            return st;
        double ta = omp_get_wtime(); // with RoPE's backward on dq, dk fused in
        st = hs_attention_backward_rope(a->dqkv, a->datt, qkv, att, a->att_lse + l * N * H,
                                        a->rope_cos, a->rope_sin, B, T, C, H,
                                        recipe && recipe->attn_bf16);
        tm->attention += omp_get_wtime() - ta;
        if (st != HS_OK) return st;
        specs_for(recipe, step, l, 0, spec);
        CAPTURE(m, l, 0, "dy", a->dqkv, N, 3 * C);
        if ((st = hs_linear_backward(a->lin, slot_for(recipe, l, 0), spec, a->dbuf,
                                     G(m, tidx_layer(l, P_Q)), a->dqkv, ln1,
                                     P(m, tidx_layer(l, P_Q)), N, C, 3 * C,
                                     *saved_for(m, l, 0), tm)))
            return st;
        hs_rmsnorm_backward(a->dres, G(m, tidx_layer(l, P_LN1)), a->norm_scratch, a->dbuf, xin,
                            P(m, tidx_layer(l, P_LN1)), a->ln1_rstd + l * N, N, C);
        grads_ready(m, tidx_layer(l, 0), tidx_layer(l + 1, 0));
    }
    hs_embedding_backward(G(m, 0), a->dres, a->inputs, N, C);
    grads_ready(m, 0, 1);
    tm->total += omp_get_wtime() - t0;
    return HS_OK;
}

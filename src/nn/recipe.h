/* recipe.h: a training recipe: one quantizer spec for each of the six GEMM operand roles of a
 * linear layer (docs/ARCHITECTURE.md, "Recipes and roles"), plus the layers kept in high
 * precision, and how per-step random seeds (stochastic rounding, RHT signs) are derived.
 * recipe.c holds the roles, validation, seeds and descriptions the linear layer uses;
 * recipe_presets.c holds the presets and the `--role` override grammar, both as tables.
 *
 *   GEMM   computes      reduces  operand 1 (role)            operand 2 (role)
 *   fprop  Y  = X·Wᵀ     K        X,  groups along K (fwd.x)   W, groups along K (fwd.w)
 *   dgrad  dX = dY·W     N        dY, groups along N (dgrad.dy) W, groups along N (dgrad.w)
 *   wgrad  dW = dYᵀ·X    M        dY, groups along M (wgrad.dy) X, groups along M (wgrad.x)
 *
 * A role whose spec has elem HS_ELEM_FP32 is not quantized; HS_ELEM_BF16 rounds to bf16.
 *
 * Presets (names are part of the interface): fp32, bf16, mxfp4-ocp, mxfp4-max (`ceil` rule),
 * mxfp4-halfs, mxfp4-half, nvfp4, nvfp4-4over6, fp4row-max (`ceil` per row), fp4row-halfs,
 * mxfp4-halfs-last-bf16 (mxfp4-halfs, the model's last block in bf16: it needs n_layers).
 *
 * Building a recipe from options (hs_recipe_build) applies, in this order:
 *   1. the preset `name`;
 *   2. `block` (16/32/64/128): the block size of every MX-style (E8M0, block) role;
 *   3. `sr`: stochastic rounding on every backward-pass role (dgrad.*, wgrad.*), as in the
 *      MXFP4 recipe of Tseng et al. (arXiv 2502.20586); quantized roles only;
 *   4. `rht` = D: a random Hadamard transform of size D on both wgrad operands (wgrad.dy and
 *      wgrad.x), NVIDIA's placement; 0 leaves the preset's choice (nvfp4 has RHT-16 there);
 *   5. `act_only`: the weight roles (fwd.w, dgrad.w) become fp32 (Half-S paper's harness);
 *   6. `roles`: per-role overrides (grammar below), applied left to right;
 *   7. `hp_layers`: those blocks (and the preset's own, if any) run every role in bf16;
 *      `quant_lm_head`: the lm_head GEMMs use the block roles;
 *   8. the attention products and the lm_head (unless quant_lm_head): in every preset but
 *      `fp32`, bf16 operands with fp32 accumulation (`attn_bf16`), as GPU FP4 recipes keep
 *      them in BF16; `fp32_attn_lm_head` (and the fp32 preset) keeps both in fp32. Softmax,
 *      norms, the loss, master weights and AdamW are fp32 in every recipe.
 *
 * Override grammar (the `--role` option; several items separated by ',' or given repeatedly):
 *   ITEM    := TARGET '=' FORMAT { ':' FIELD }
 *   TARGET  := fwd.x | fwd.w | dgrad.dy | dgrad.w | wgrad.dy | wgrad.x
 *            | x (fwd.x, wgrad.x) | w (fwd.w, dgrad.w) | dy (dgrad.dy, wgrad.dy) | all
 *   FORMAT  := mxfp4 | nvfp4 | fp4 | fp4row | mxfp8-e4m3 | int4 | bf16 | fp32  (halfs/quant.h)
 *   FIELD   := RULE (ocp ceil rceil even half halfs halfs-sigma mse max 4over6)
 *            | rne | rna | rts | sr            element rounding
 *            | block=N                         N in {16, 32, 64, 128}
 *            | rht=D                           D in {0, 16, 32, 64, 128}
 *            | 2d                              16×16 tiles (NVFP4 weights)
 *   e.g.  --role fwd.x=mxfp4:halfs:block=16:sr   --role w=nvfp4:4over6:2d,dy=mxfp4:ceil:sr
 * A FORMAT starts from that format's preset spec (hs_quant_spec_init), then the FIELDs apply.
 *
 * Seeds. Every quantizer seed is a pure function of (run seed, step, layer, linear, role), so a
 * run is reproducible, independent of thread count, and a resumed run sees the same streams.
 * The RHT seed is shared by the two operands of one GEMM (it must be: the transform cancels in
 * the product only when both use the same signs) and is redrawn every step.
 */
#ifndef HALFS_NN_RECIPE_H
#define HALFS_NN_RECIPE_H

#include <stddef.h>
#include <stdint.h>

#include "halfs/quant.h"
#include "halfs/status.h"

typedef enum {
    HS_ROLE_FWD_X = 0, /* fprop operand X [M×K], groups along K */
    HS_ROLE_FWD_W,     /* fprop operand W [N×K], groups along K */
    HS_ROLE_DGRAD_DY,  /* dgrad operand dY [M×N], groups along N */
    HS_ROLE_DGRAD_W,   /* dgrad operand W [N×K], groups along N (W quantized transposed) */
    HS_ROLE_WGRAD_DY,  /* wgrad operand dY [M×N], groups along M (transposed) */
    HS_ROLE_WGRAD_X,   /* wgrad operand X [M×K], groups along M (transposed) */
    HS_ROLE_COUNT
} hs_role;

/* The GEMMs of a linear layer, for seed derivation and timers. */
typedef enum { HS_GEMM_FPROP = 0, HS_GEMM_DGRAD, HS_GEMM_WGRAD, HS_GEMM_COUNT } hs_gemm_kind;

/* Layer index of the lm_head in hs_recipe_spec (blocks are 0..L-1). */
#define HS_LAYER_LM_HEAD (-1)
/* Largest number of blocks hp_layers can name (bit mask). */
#define HS_RECIPE_MAX_LAYERS 64

/* What a user chooses on the command line; stored in checkpoints so a run can be resumed
 * with the same recipe. Plain data, no pointers. */
typedef struct hs_recipe_opts {
    char name[32];        /* preset name, e.g. "mxfp4-halfs" (default) */
    char roles[512];      /* override items, ';'- or ','-separated (grammar above); "" = none */
    int32_t block;        /* 0 = preset's block; else 16/32/64/128 for MX-style roles */
    int32_t sr;           /* 1: stochastic rounding on the backward roles */
    int32_t rht;          /* 0 = preset's; else RHT size on the wgrad operands */
    int32_t act_only;     /* 1: weights unquantized (quantize only X and dY roles) */
    char hp_layers[128];  /* blocks kept in bf16: "0,5", "0-1,7" or "last"; "" = none */
    int32_t quant_lm_head;/* 1: the lm_head uses the block roles instead of fp32 */
    int32_t fp32_attn_lm_head; /* 1: attention products and lm_head in fp32 also in low-precision
                                  presets (the numerics before bf16 became their default) */
    int32_t n_layers;     /* not an option: the model's number of blocks, which `last` names
                             (set by whoever builds the recipe for a model; 0: no model) */
} hs_recipe_opts;

/* A built recipe. */
typedef struct hs_recipe {
    char name[32];                     /* preset it came from */
    hs_quant_spec role[HS_ROLE_COUNT]; /* the specs for the L blocks (seeds filled per call) */
    uint64_t hp_layers;                /* bit i set: block i runs every role in bf16 */
    int32_t quant_lm_head;             /* 1: lm_head uses role[]; 0: bf16 if attn_bf16, else fp32 */
    int32_t attn_bf16;                 /* 1: attention products (and an unquantized lm_head) in
                                          bf16 operands with fp32 accumulation */
    uint64_t seed;                     /* run seed the per-step seeds derive from */
} hs_recipe;

/* Names of the presets, NULL-terminated (for --help and `bench train`). */
extern const char *const hs_recipe_preset_names[];

/* Role name <-> enum ("fwd.x", ...). */
const char *hs_role_name(hs_role r);
hs_status hs_role_parse(const char *name, hs_role *out);

/* Fill o with defaults (name "mxfp4-halfs", nothing overridden). */
void hs_recipe_opts_defaults(hs_recipe_opts *o);

/* A preset by name (HS_ERR_INVALID_ARG with the list of names otherwise). */
hs_status hs_recipe_preset(const char *name, hs_recipe *out);

/* Apply override items (grammar above) to r. Errors name the offending item. */
hs_status hs_recipe_apply_overrides(hs_recipe *r, const char *items);

/* Parse a layer list "0,3-5" into a bit mask (layers < HS_RECIPE_MAX_LAYERS); the item `last`
 * is block n_layers − 1 (an error when n_layers ≤ 0: no model to count). */
hs_status hs_recipe_parse_layers(const char *list, int n_layers, uint64_t *mask);

/* Build a recipe from options and the run seed (steps 1-7 above), then validate it. */
hs_status hs_recipe_build(const hs_recipe_opts *o, uint64_t seed, hs_recipe *out);

/* Check every role spec (hs_quant_spec_validate) and the RHT pairing: when both operands of a
 * GEMM are quantized, their RHT sizes must be equal. */
hs_status hs_recipe_validate(const hs_recipe *r);

/* The spec of one role for one linear at one step, with its SR seed/stream and the GEMM's RHT
 * seed filled in. layer: block index or HS_LAYER_LM_HEAD; linear: an id within the block
 * (the model uses 0 = qkv, 1 = o, 2 = gate_up, 3 = down). */
void hs_recipe_spec(const hs_recipe *r, int layer, int linear, hs_role role, uint64_t step,
                    hs_quant_spec *out);

/* 1 if the spec quantizes (elem other than FP32). */
int hs_spec_quantizes(const hs_quant_spec *s);

/* A one-line description of the recipe ("fwd.x=mxfp4:halfs:b32:rne ..."), for logs. */
void hs_recipe_describe(const hs_recipe *r, char *buf, size_t n);

#endif

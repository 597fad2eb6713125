/* recipe.c: the parts of a recipe the linear layer uses (recipe.h): role names, validation,
 * per-step seed derivation (hs_recipe_spec) and the one-line description. The presets and the
 * override grammar that build a recipe are in recipe_presets.c.
 */
#include "nn/recipe.h"

#include <stdio.h>
#include <string.h>

#include "halfs/rng.h"
static const char *const role_names[HS_ROLE_COUNT] = {"fwd.x",    "fwd.w",    "dgrad.dy",
                                                      "dgrad.w",  "wgrad.dy", "wgrad.x"};

const char *hs_role_name(hs_role r) {
    return (unsigned)r < HS_ROLE_COUNT ? role_names[r] : "?";
}

hs_status hs_role_parse(const char *name, hs_role *out) {
    for (int i = 0; i < HS_ROLE_COUNT; i++)
        if (!strcmp(name, role_names[i])) {
            *out = (hs_role)i;
            return HS_OK;
        }
    return hs_fail(HS_ERR_INVALID_ARG,
                   "unknown role '%s' (fwd.x, fwd.w, dgrad.dy, dgrad.w, wgrad.dy, wgrad.x)", name);
}

int hs_spec_quantizes(const hs_quant_spec *s) { return s->elem != HS_ELEM_FP32; }

hs_status hs_recipe_validate(const hs_recipe *r) {
    for (int i = 0; i < HS_ROLE_COUNT; i++) {
        const hs_quant_spec *s = &r->role[i];
        if (hs_quant_spec_validate(s) != HS_OK) {
            char why[512]; /* hs_fail writes the buffer hs_last_error returns: copy it first */
            snprintf(why, sizeof why, "%s", hs_last_error());
            return hs_fail(HS_ERR_INVALID_ARG, "recipe role %s: %s", role_names[i], why);
        }
        if (s->rht && (s->elem == HS_ELEM_FP32 || s->elem == HS_ELEM_BF16))
            return hs_fail(HS_ERR_INVALID_ARG,
                           "recipe role %s: an RHT needs a scaled (quantized) format", role_names[i]);
    }
    static const int pair[3][2] = {{HS_ROLE_FWD_X, HS_ROLE_FWD_W},
                                   {HS_ROLE_DGRAD_DY, HS_ROLE_DGRAD_W},
                                   {HS_ROLE_WGRAD_DY, HS_ROLE_WGRAD_X}};
    for (int g = 0; g < 3; g++) {
        const hs_quant_spec *a = &r->role[pair[g][0]], *b = &r->role[pair[g][1]];
        if (hs_spec_quantizes(a) && hs_spec_quantizes(b) && a->rht != b->rht)
            return hs_fail(HS_ERR_INVALID_ARG,
                           "recipe: %s and %s feed one GEMM but have different RHT sizes (%d, %d); "
                           "both quantized operands of a GEMM need the same transform",
                           role_names[pair[g][0]], role_names[pair[g][1]], a->rht, b->rht);
    }
    return HS_OK;
}

/* SplitMix64 finaliser: the seed mixer for (run seed, step, layer, linear, role). */
/* SplitMix64's output function after one step of its counter (halfs/rng.h). */
static uint64_t mix64(uint64_t x) { return hs_rng_mix(x + HS_RNG_GAMMA); }

static uint64_t derive(uint64_t seed, uint64_t step, int layer, int linear, int what) {
    uint64_t h = mix64(seed);
    h = mix64(h ^ step);
    h = mix64(h ^ (uint64_t)(int64_t)layer);
    h = mix64(h ^ (uint64_t)linear);
    return mix64(h ^ (uint64_t)what);
}

void hs_recipe_spec(const hs_recipe *r, int layer, int linear, hs_role role, uint64_t step,
                    hs_quant_spec *out) {
    if (layer == HS_LAYER_LM_HEAD && !r->quant_lm_head) {
        hs_quant_spec_init(out, r->attn_bf16 ? HS_FMT_BF16 : HS_FMT_FP32);
        return;
    }
    if (layer >= 0 && layer < HS_RECIPE_MAX_LAYERS && (r->hp_layers >> layer) & 1) {
        hs_quant_spec_init(out, HS_FMT_BF16);
        return;
    }
    *out = r->role[role];
    // SR stream: distinct per role; RHT signs: one draw per GEMM (shared by its two operands).
    int gemm = role <= HS_ROLE_FWD_W ? HS_GEMM_FPROP
               : role <= HS_ROLE_DGRAD_W ? HS_GEMM_DGRAD : HS_GEMM_WGRAD;
    out->seed = derive(r->seed, step, layer, linear, 16 + role);
    out->stream = (uint64_t)((layer + 2) * 64 + linear * 8 + role);
    out->rht_seed = derive(r->seed, step, layer, linear, 32 + gemm);
}

static const char *spec_format(const hs_quant_spec *s) {
    if (s->elem == HS_ELEM_FP32) return "fp32";
    if (s->elem == HS_ELEM_BF16) return "bf16";
    if (s->elem == HS_ELEM_E2M1) {
        if (s->scale_fmt == HS_SCALE_UE4M3) return "nvfp4";
        if (s->scale_fmt == HS_SCALE_E8M0) return s->group == HS_GROUP_ROW ? "fp4row" : "mxfp4";
        return "fp4";
    }
    return hs_elem_name(s->elem);
}

void hs_recipe_describe(const hs_recipe *r, char *buf, size_t n) {
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < HS_ROLE_COUNT && used < n; i++) {
        const hs_quant_spec *s = &r->role[i];
        int w;
        if (!hs_spec_quantizes(s) || s->elem == HS_ELEM_BF16)
            w = snprintf(buf + used, n - used, "%s%s=%s", i ? " " : "", role_names[i],
                         spec_format(s));
        else {
            char blk[24] = "", rht[16] = "";
            if (s->group == HS_GROUP_BLOCK) snprintf(blk, sizeof blk, ":block=%d", (int)s->block);
            if (s->rht) snprintf(rht, sizeof rht, ":rht=%d", (int)s->rht);
            w = snprintf(buf + used, n - used, "%s%s=%s:%s:%s%s%s%s", i ? " " : "",
                         role_names[i], spec_format(s), hs_rule_name(s->rule),
                         hs_rounding_name(s->rounding), blk, s->tile2d ? ":2d" : "", rht);
        }
        if (w < 0) break;
        used += (size_t)w;
    }
}

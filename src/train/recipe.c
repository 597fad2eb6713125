/* recipe.c: recipe presets, the override grammar, and per-step seed derivation (recipe.h).
 *
 * Presets follow DESIGN.md ("Recipe presets the trainer must offer"):
 *   fp32, bf16                   every role unquantized / rounded to bf16
 *   mxfp4-{ocp,max,halfs,half}   every role MXFP4 (E2M1, E8M0 per 32), RNE; max = `ceil` rule
 *   nvfp4                        fwd.x 1×16 RNE, W 16×16 2D RNE, dY stochastic rounding,
 *                                RHT-16 on both wgrad operands (NVIDIA, arXiv 2509.25149)
 *   nvfp4-4over6                 nvfp4 with the Four-over-Six rule (arXiv 2512.02010)
 *   fp4row-{max,halfs}           E2M1 with one E8M0 scale per row of the reduction axis
 */
#include "train/recipe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const hs_recipe_preset_names[] = {
    "fp32",  "bf16",         "mxfp4-ocp",  "mxfp4-max",    "mxfp4-halfs", "mxfp4-half",
    "nvfp4", "nvfp4-4over6", "fp4row-max", "fp4row-halfs", NULL};

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

void hs_recipe_opts_defaults(hs_recipe_opts *o) {
    memset(o, 0, sizeof *o);
    snprintf(o->name, sizeof o->name, "%s", "mxfp4-halfs");
}

static void set_all(hs_recipe *r, const hs_quant_spec *s) {
    for (int i = 0; i < HS_ROLE_COUNT; i++) r->role[i] = *s;
}

hs_status hs_recipe_preset(const char *name, hs_recipe *out) {
    memset(out, 0, sizeof *out);
    hs_quant_spec s;
    hs_status st = HS_OK;
    if (!strcmp(name, "fp32")) {
        st = hs_quant_spec_init(&s, HS_FMT_FP32);
        set_all(out, &s);
    } else if (!strcmp(name, "bf16")) {
        st = hs_quant_spec_init(&s, HS_FMT_BF16);
        set_all(out, &s);
    } else if (!strncmp(name, "mxfp4-", 6)) {
        const char *rn = name + 6;
        hs_rule rule;
        if (!strcmp(rn, "ocp")) rule = HS_RULE_OCP;
        else if (!strcmp(rn, "max")) rule = HS_RULE_CEIL; // DESIGN.md: mxfp4-max is `ceil`
        else if (!strcmp(rn, "halfs")) rule = HS_RULE_HALFS;
        else if (!strcmp(rn, "half")) rule = HS_RULE_HALF;
        else goto unknown;
        st = hs_quant_spec_init(&s, HS_FMT_MXFP4);
        s.rule = rule;
        s.rounding = HS_ROUND_RNE;
        set_all(out, &s);
    } else if (!strcmp(name, "nvfp4") || !strcmp(name, "nvfp4-4over6")) {
        st = hs_quant_spec_init(&s, HS_FMT_NVFP4);
        if (!strcmp(name, "nvfp4-4over6")) s.rule = HS_RULE_4OVER6;
        s.rounding = HS_ROUND_RNE;
        set_all(out, &s);                      // fwd.x: 1×16 blocks, RNE
        out->role[HS_ROLE_FWD_W].tile2d = 16;  // weights: 16×16 tiles, so W and Wᵀ agree
        out->role[HS_ROLE_DGRAD_W].tile2d = 16;
        out->role[HS_ROLE_DGRAD_DY].rounding = HS_ROUND_SR; // gradients: unbiased rounding
        out->role[HS_ROLE_WGRAD_DY].rounding = HS_ROUND_SR;
        out->role[HS_ROLE_WGRAD_DY].rht = 16;  // RHT-16 on the wgrad inputs only
        out->role[HS_ROLE_WGRAD_X].rht = 16;
    } else if (!strcmp(name, "fp4row-max") || !strcmp(name, "fp4row-halfs")) {
        st = hs_quant_spec_init(&s, HS_FMT_FP4ROW);
        s.rule = !strcmp(name, "fp4row-max") ? HS_RULE_CEIL : HS_RULE_HALFS;
        s.rounding = HS_ROUND_RNE;
        set_all(out, &s);
    } else {
        goto unknown;
    }
    if (st != HS_OK) return st;
    snprintf(out->name, sizeof out->name, "%s", name);
    return HS_OK;
unknown:
    return hs_fail(HS_ERR_INVALID_ARG,
                   "unknown recipe '%s' (fp32, bf16, mxfp4-ocp, mxfp4-max, mxfp4-halfs, "
                   "mxfp4-half, nvfp4, nvfp4-4over6, fp4row-max, fp4row-halfs)",
                   name);
}

/* Apply one FIELD of the grammar to s. */
static hs_status apply_field(hs_quant_spec *s, const char *f, const char *item) {
    hs_rule rule;
    hs_rounding rnd;
    char *end;
    if (!strncmp(f, "block=", 6)) {
        long b = strtol(f + 6, &end, 10);
        if (*end || (b != 16 && b != 32 && b != 64 && b != 128))
            return hs_fail(HS_ERR_INVALID_ARG, "--role '%s': block must be 16, 32, 64 or 128",
                           item);
        s->block = (int32_t)b;
        if (s->group != HS_GROUP_BLOCK)
            return hs_fail(HS_ERR_INVALID_ARG, "--role '%s': block= needs a block format", item);
        return HS_OK;
    }
    if (!strncmp(f, "rht=", 4)) {
        long d = strtol(f + 4, &end, 10);
        if (*end || (d != 0 && d != 16 && d != 32 && d != 64 && d != 128))
            return hs_fail(HS_ERR_INVALID_ARG, "--role '%s': rht must be 0, 16, 32, 64 or 128",
                           item);
        s->rht = (int32_t)d;
        return HS_OK;
    }
    if (!strcmp(f, "2d")) {
        s->tile2d = 16;
        return HS_OK;
    }
    hs_clear_error();
    if (hs_rounding_parse(f, &rnd) == HS_OK) {
        s->rounding = rnd;
        return HS_OK;
    }
    if (hs_rule_parse(f, &rule) == HS_OK) {
        s->rule = rule;
        return HS_OK;
    }
    return hs_fail(HS_ERR_INVALID_ARG,
                   "--role '%s': unknown field '%s' (a scale rule, rne|rna|rts|sr, block=N, "
                   "rht=D or 2d)",
                   item, f);
}

/* One ITEM: TARGET=FORMAT{:FIELD}. */
static hs_status apply_item(hs_recipe *r, char *item) {
    char orig[256];
    snprintf(orig, sizeof orig, "%s", item);
    char *eq = strchr(item, '=');
    if (!eq)
        return hs_fail(HS_ERR_INVALID_ARG, "--role '%s': expected ROLE=FORMAT[:FIELD...]", orig);
    *eq = '\0';
    const char *target = item;
    int mask = 0;
    if (!strcmp(target, "all")) mask = 0x3f;
    else if (!strcmp(target, "x")) mask = 1 << HS_ROLE_FWD_X | 1 << HS_ROLE_WGRAD_X;
    else if (!strcmp(target, "w")) mask = 1 << HS_ROLE_FWD_W | 1 << HS_ROLE_DGRAD_W;
    else if (!strcmp(target, "dy")) mask = 1 << HS_ROLE_DGRAD_DY | 1 << HS_ROLE_WGRAD_DY;
    else {
        hs_role role = HS_ROLE_FWD_X;
        if (hs_role_parse(target, &role) != HS_OK)
            return hs_fail(HS_ERR_INVALID_ARG,
                           "--role '%s': unknown role '%s' (fwd.x fwd.w dgrad.dy dgrad.w "
                           "wgrad.dy wgrad.x, or x w dy all)",
                           orig, target);
        mask = 1 << role;
    }
    char *rest = eq + 1;
    char *fmt = rest, *colon = strchr(rest, ':');
    if (colon) *colon = '\0';
    hs_format f;
    if (!*fmt || hs_format_parse(fmt, &f) != HS_OK)
        return hs_fail(HS_ERR_INVALID_ARG,
                       "--role '%s': unknown format '%s' (mxfp4 nvfp4 fp4 fp4row mxfp8-e4m3 int4 "
                       "bf16 fp32)",
                       orig, fmt);
    hs_quant_spec s;
    hs_status st = hs_quant_spec_init(&s, f);
    if (st != HS_OK) return st;
    while (colon) {
        char *field = colon + 1;
        colon = strchr(field, ':');
        if (colon) *colon = '\0';
        if (!*field) return hs_fail(HS_ERR_INVALID_ARG, "--role '%s': empty field", orig);
        if ((st = apply_field(&s, field, orig)) != HS_OK) return st;
    }
    if (hs_quant_spec_validate(&s) != HS_OK)
        return hs_fail(HS_ERR_INVALID_ARG, "--role '%s': %s", orig, hs_last_error());
    for (int i = 0; i < HS_ROLE_COUNT; i++)
        if (mask & (1 << i)) r->role[i] = s;
    return HS_OK;
}

hs_status hs_recipe_apply_overrides(hs_recipe *r, const char *items) {
    if (!items || !*items) return HS_OK;
    size_t n = strlen(items);
    char *buf = malloc(n + 1);
    if (!buf) return hs_fail(HS_ERR_NOMEM, "out of memory");
    memcpy(buf, items, n + 1);
    hs_status st = HS_OK;
    char *save = NULL;
    for (char *it = strtok_r(buf, ",; ", &save); it && st == HS_OK;
         it = strtok_r(NULL, ",; ", &save))
        st = apply_item(r, it);
    free(buf);
    return st;
}

hs_status hs_recipe_parse_layers(const char *list, uint64_t *mask) {
    *mask = 0;
    if (!list || !*list) return HS_OK;
    const char *p = list;
    while (*p) {
        char *end;
        long a = strtol(p, &end, 10), b = a;
        if (end == p) goto bad;
        if (*end == '-') {
            const char *q = end + 1;
            b = strtol(q, &end, 10);
            if (end == q) goto bad;
        }
        if (a < 0 || b < a || b >= HS_RECIPE_MAX_LAYERS)
            return hs_fail(HS_ERR_INVALID_ARG,
                           "--hp-layers '%s': layers must be in 0..%d, ranges low-high", list,
                           HS_RECIPE_MAX_LAYERS - 1);
        for (long i = a; i <= b; i++) *mask |= 1ull << i;
        if (*end == ',') end++;
        else if (*end) goto bad;
        p = end;
    }
    return HS_OK;
bad:
    return hs_fail(HS_ERR_INVALID_ARG, "--hp-layers '%s': expected a list like 0,3-5", list);
}

static int is_backward(int role) { return role >= HS_ROLE_DGRAD_DY; }

hs_status hs_recipe_build(const hs_recipe_opts *o, uint64_t seed, hs_recipe *out) {
    hs_status st = hs_recipe_preset(o->name[0] ? o->name : "mxfp4-halfs", out);
    if (st != HS_OK) return st;
    if (o->block) {
        if (o->block != 16 && o->block != 32 && o->block != 64 && o->block != 128)
            return hs_fail(HS_ERR_INVALID_ARG, "--block must be 16, 32, 64 or 128, got %d",
                           o->block);
        for (int i = 0; i < HS_ROLE_COUNT; i++)
            if (out->role[i].scale_fmt == HS_SCALE_E8M0 && out->role[i].group == HS_GROUP_BLOCK)
                out->role[i].block = o->block;
    }
    if (o->sr)
        for (int i = 0; i < HS_ROLE_COUNT; i++)
            if (is_backward(i) && hs_spec_quantizes(&out->role[i]) &&
                out->role[i].elem != HS_ELEM_BF16)
                out->role[i].rounding = HS_ROUND_SR;
    if (o->rht) {
        if (o->rht != 16 && o->rht != 32 && o->rht != 64 && o->rht != 128)
            return hs_fail(HS_ERR_INVALID_ARG, "--rht must be 16, 32, 64 or 128, got %d", o->rht);
        if (hs_spec_quantizes(&out->role[HS_ROLE_WGRAD_DY]) &&
            out->role[HS_ROLE_WGRAD_DY].elem != HS_ELEM_BF16) {
            out->role[HS_ROLE_WGRAD_DY].rht = o->rht;
            out->role[HS_ROLE_WGRAD_X].rht = o->rht;
        }
    }
    if (o->act_only) {
        hs_quant_spec f;
        if ((st = hs_quant_spec_init(&f, HS_FMT_FP32)) != HS_OK) return st;
        out->role[HS_ROLE_FWD_W] = f;
        out->role[HS_ROLE_DGRAD_W] = f;
    }
    if ((st = hs_recipe_apply_overrides(out, o->roles)) != HS_OK) return st;
    if ((st = hs_recipe_parse_layers(o->hp_layers, &out->hp_layers)) != HS_OK) return st;
    out->quant_lm_head = o->quant_lm_head ? 1 : 0;
    out->seed = seed;
    return hs_recipe_validate(out);
}

hs_status hs_recipe_validate(const hs_recipe *r) {
    for (int i = 0; i < HS_ROLE_COUNT; i++) {
        const hs_quant_spec *s = &r->role[i];
        if (hs_quant_spec_validate(s) != HS_OK)
            return hs_fail(HS_ERR_INVALID_ARG, "recipe role %s: %s", role_names[i],
                           hs_last_error());
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
static uint64_t mix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

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
        hs_quant_spec_init(out, HS_FMT_FP32);
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

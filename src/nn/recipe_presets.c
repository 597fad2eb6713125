/* recipe_presets.c: building a recipe from options (recipe.h): the preset table, the `--role`
 * override grammar, the high-precision layer list, and hs_recipe_build.
 *
 * Presets (a row of `presets` each; the names are part of the interface):
 *   fp32, bf16                   every role unquantized / rounded to bf16
 *   mxfp4-{ocp,max,halfs,half}   every role MXFP4 (E2M1, E8M0 per 32), RNE; max is the `ceil`
 *                                rule (the largest scale that does not clip)
 *   nvfp4                        fwd.x 1×16 RNE, W 16×16 2D RNE, dY stochastic rounding,
 *                                RHT-16 on both wgrad operands (NVIDIA, arXiv 2509.25149)
 *   nvfp4-4over6                 nvfp4 with the Four-over-Six rule (arXiv 2512.02010)
 *   fp4row-{max,halfs}           E2M1 with one E8M0 scale per row of the reduction axis
 *   mxfp4-halfs-last-bf16        mxfp4-halfs with the model's last block in bf16: the best MXFP4
 *                                configuration of the evidence's ablation (docs/RESULTS.md)
 *
 * The grammar's TARGETs are the role names (recipe.c) and the groups of `role_groups`; its
 * FORMATs are the named formats of halfs/quant.h (hs_format_parse); its FIELDs are the rows of
 * `fields`, then the rounding and scale-rule names (hs_rounding_parse, hs_rule_parse).
 */
#include "nn/recipe.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- presets */

#define KEEP (-1) /* preset table: leave the format's own value */

/* Changes a preset makes to one role after every role got the preset's spec (0: none). */
typedef struct {
    int32_t tile2d; /* 16: one scale per 16×16 tile, so W and Wᵀ quantize alike */
    int32_t sr;     /* 1: stochastic rounding (unbiased gradients) */
    int32_t rht;    /* RHT size */
} preset_role;

typedef struct {
    const char *name;
    hs_format format; /* every role starts from hs_quant_spec_init(format) */
    int rule;         /* KEEP or the hs_rule of every role */
    int rounding;     /* KEEP or the hs_rounding of every role */
    preset_role role[HS_ROLE_COUNT];
    int block;        /* 0, or the block size of every E8M0 block role */
    const char *hp;   /* NULL, or blocks kept in bf16 (hp_layers syntax, e.g. "last") */
} preset_def;

/* NVFP4 (NVIDIA's recipe): 16×16 tiles on the weights, SR on dY, RHT-16 on the wgrad inputs. */
#define NVFP4_ROLES                                                                              \
    {                                                                                            \
        [HS_ROLE_FWD_W] = {.tile2d = 16}, [HS_ROLE_DGRAD_W] = {.tile2d = 16},                    \
        [HS_ROLE_DGRAD_DY] = {.sr = 1}, [HS_ROLE_WGRAD_DY] = {.sr = 1, .rht = 16},               \
        [HS_ROLE_WGRAD_X] = {.rht = 16},                                                         \
    }

static const preset_def presets[] = {
    {"fp32", HS_FMT_FP32, KEEP, KEEP, {{0}}, 0, NULL},
    {"bf16", HS_FMT_BF16, KEEP, KEEP, {{0}}, 0, NULL},
    {"mxfp4-ocp", HS_FMT_MXFP4, HS_RULE_OCP, HS_ROUND_RNE, {{0}}, 0, NULL},
    {"mxfp4-max", HS_FMT_MXFP4, HS_RULE_CEIL, HS_ROUND_RNE, {{0}}, 0, NULL},
    {"mxfp4-halfs", HS_FMT_MXFP4, HS_RULE_HALFS, HS_ROUND_RNE, {{0}}, 0, NULL},
    {"mxfp4-half", HS_FMT_MXFP4, HS_RULE_HALF, HS_ROUND_RNE, {{0}}, 0, NULL},
    {"nvfp4", HS_FMT_NVFP4, KEEP, HS_ROUND_RNE, NVFP4_ROLES, 0, NULL},
    {"nvfp4-4over6", HS_FMT_NVFP4, HS_RULE_4OVER6, HS_ROUND_RNE, NVFP4_ROLES, 0, NULL},
    {"fp4row-max", HS_FMT_FP4ROW, HS_RULE_CEIL, HS_ROUND_RNE, {{0}}, 0, NULL},
    {"fp4row-halfs", HS_FMT_FP4ROW, HS_RULE_HALFS, HS_ROUND_RNE, {{0}}, 0, NULL},
    {"mxfp4-halfs-last-bf16", HS_FMT_MXFP4, HS_RULE_HALFS, HS_ROUND_RNE, {{0}}, 0, "last"},
};
#define N_PRESETS ((int)(sizeof presets / sizeof presets[0]))

/* The same names in the same order, for callers that list them. */
const char *const hs_recipe_preset_names[] = {
    "fp32",         "bf16",         "mxfp4-ocp",  "mxfp4-max",
    "mxfp4-halfs",  "mxfp4-half",   "nvfp4",      "nvfp4-4over6",
    "fp4row-max",   "fp4row-halfs", "mxfp4-halfs-last-bf16", NULL};
_Static_assert(sizeof hs_recipe_preset_names / sizeof hs_recipe_preset_names[0] ==
                   sizeof presets / sizeof presets[0] + 1,
               "hs_recipe_preset_names lists every row of presets");

void hs_recipe_opts_defaults(hs_recipe_opts *o) {
    memset(o, 0, sizeof *o);
    snprintf(o->name, sizeof o->name, "%s", "mxfp4-halfs");
}

static const preset_def *preset_find(const char *name) {
    for (int i = 0; i < N_PRESETS; i++)
        if (!strcmp(name, presets[i].name)) return &presets[i];
    return NULL;
}

hs_status hs_recipe_preset(const char *name, hs_recipe *out) {
    memset(out, 0, sizeof *out);
    const preset_def *d = preset_find(name);
    if (d) {
        hs_quant_spec s;
        hs_status st = hs_quant_spec_init(&s, d->format);
        if (st != HS_OK) return st;
        if (d->rule != KEEP) s.rule = (hs_rule)d->rule;
        if (d->rounding != KEEP) s.rounding = (hs_rounding)d->rounding;
        for (int r = 0; r < HS_ROLE_COUNT; r++) {
            const preset_role *pr = &d->role[r];
            out->role[r] = s;
            if (d->block && s.scale_fmt == HS_SCALE_E8M0 && s.group == HS_GROUP_BLOCK)
                out->role[r].block = d->block;
            if (pr->tile2d) out->role[r].tile2d = pr->tile2d;
            if (pr->sr) out->role[r].rounding = HS_ROUND_SR;
            if (pr->rht) out->role[r].rht = pr->rht;
        }
        snprintf(out->name, sizeof out->name, "%s", name);
        return HS_OK;
    }
    char list[256];
    size_t used = 0;
    list[0] = '\0';
    for (int i = 0; i < N_PRESETS && used < sizeof list; i++) {
        int w = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", presets[i].name);
        if (w < 0) break;
        used += (size_t)w;
    }
    return hs_fail(HS_ERR_INVALID_ARG, "unknown recipe '%s' (%s)", name, list);
}

/* ---------------------------------------------------------------- override grammar */

/* TARGETs naming several roles (single roles are named by hs_role_name). */
static const struct {
    const char *name;
    unsigned mask; /* bit r: role r */
} role_groups[] = {
    {"x", 1u << HS_ROLE_FWD_X | 1u << HS_ROLE_WGRAD_X},
    {"w", 1u << HS_ROLE_FWD_W | 1u << HS_ROLE_DGRAD_W},
    {"dy", 1u << HS_ROLE_DGRAD_DY | 1u << HS_ROLE_WGRAD_DY},
    {"all", (1u << HS_ROLE_COUNT) - 1},
};

/* Sizes accepted by block=N, --block and --rht; rht=D also takes 0 (no transform). */
static const int32_t sizes_16_128[] = {16, 32, 64, 128};
static const int32_t rht_sizes[] = {0, 16, 32, 64, 128};

/* FIELDs that set one int32_t member of hs_quant_spec. A field with values is written
 * NAME=N (N one of values); one without is a bare word that sets `fixed`. */
static const struct {
    const char *name;
    size_t member;            /* offsetof(hs_quant_spec, ...) */
    const int32_t *values;    /* NULL: a bare word */
    int n_values;
    const char *values_text;  /* the values, for the error message */
    int32_t fixed;            /* a bare word's value */
    int block_only;           /* 1: the format must have block groups */
} fields[] = {
    {"block", offsetof(hs_quant_spec, block), sizes_16_128, 4, "16, 32, 64 or 128", 0, 1},
    {"rht", offsetof(hs_quant_spec, rht), rht_sizes, 5, "0, 16, 32, 64 or 128", 0, 0},
    {"2d", offsetof(hs_quant_spec, tile2d), NULL, 0, NULL, 16, 0},
};

static int in_list(long v, const int32_t *list, int n) {
    for (int i = 0; i < n; i++)
        if (v == list[i]) return 1;
    return 0;
}

/* The role mask of a TARGET, 0 if it names none. */
static unsigned target_mask(const char *target) {
    for (int r = 0; r < HS_ROLE_COUNT; r++)
        if (!strcmp(target, hs_role_name((hs_role)r))) return 1u << r;
    for (size_t i = 0; i < sizeof role_groups / sizeof role_groups[0]; i++)
        if (!strcmp(target, role_groups[i].name)) return role_groups[i].mask;
    return 0;
}

/* Apply one FIELD of the grammar to s. */
static hs_status apply_field(hs_quant_spec *s, const char *f, const char *item) {
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        size_t len = strlen(fields[i].name);
        int32_t v;
        if (fields[i].values) {
            if (strncmp(f, fields[i].name, len) || f[len] != '=') continue;
            char *end;
            long n = strtol(f + len + 1, &end, 10);
            if (*end || !in_list(n, fields[i].values, fields[i].n_values))
                return hs_fail(HS_ERR_INVALID_ARG, "--role '%s': %s must be %s", item,
                               fields[i].name, fields[i].values_text);
            v = (int32_t)n;
        } else {
            if (strcmp(f, fields[i].name)) continue;
            v = fields[i].fixed;
        }
        memcpy((char *)s + fields[i].member, &v, sizeof v);
        if (fields[i].block_only && s->group != HS_GROUP_BLOCK)
            return hs_fail(HS_ERR_INVALID_ARG, "--role '%s': %s= needs a block format", item,
                           fields[i].name);
        return HS_OK;
    }
    hs_rule rule;
    hs_rounding rnd;
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
    unsigned mask = target_mask(target);
    if (!mask)
        return hs_fail(HS_ERR_INVALID_ARG,
                       "--role '%s': unknown role '%s' (fwd.x fwd.w dgrad.dy dgrad.w "
                       "wgrad.dy wgrad.x, or x w dy all)",
                       orig, target);
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
    if (hs_quant_spec_validate(&s) != HS_OK) {
        char why[512]; /* hs_fail writes the buffer hs_last_error returns: copy it first */
        snprintf(why, sizeof why, "%s", hs_last_error());
        return hs_fail(HS_ERR_INVALID_ARG, "--role '%s': %s", orig, why);
    }
    for (int i = 0; i < HS_ROLE_COUNT; i++)
        if (mask & (1u << i)) r->role[i] = s;
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

/* ---------------------------------------------------------------- building */

hs_status hs_recipe_parse_layers(const char *list, int n_layers, uint64_t *mask) {
    *mask = 0;
    if (!list || !*list) return HS_OK;
    const char *p = list;
    while (*p) {
        char *end;
        long a, b;
        if (!strncmp(p, "last", 4) && (p[4] == ',' || !p[4])) {
            if (n_layers <= 0)
                return hs_fail(HS_ERR_INVALID_ARG, "--hp-layers '%s': 'last' names a model's last "
                               "block, and there is no model here", list);
            a = b = n_layers - 1;
            end = (char *)p + 4;
        } else {
            a = b = strtol(p, &end, 10);
            if (end == p) goto bad;
        }
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
    return hs_fail(HS_ERR_INVALID_ARG, "--hp-layers '%s': expected a list like 0,3-5 or last", list);
}

static int is_backward(int role) { return role >= HS_ROLE_DGRAD_DY; }

hs_status hs_recipe_build(const hs_recipe_opts *o, uint64_t seed, hs_recipe *out) {
    hs_status st = hs_recipe_preset(o->name[0] ? o->name : "mxfp4-halfs", out);
    if (st != HS_OK) return st;
    if (o->block) {
        if (!in_list(o->block, sizes_16_128, 4))
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
        if (!in_list(o->rht, sizes_16_128, 4))
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
    const preset_def *d = preset_find(out->name);
    uint64_t own = 0;
    if (d && d->hp && o->n_layers <= 0)
        return hs_fail(HS_ERR_INVALID_ARG, "recipe '%s' keeps blocks of a model in bf16 (%s) and "
                       "there is no model here: use its base preset with explicit hp_layers",
                       d->name, d->hp);
    if (d && d->hp && (st = hs_recipe_parse_layers(d->hp, o->n_layers, &own)) != HS_OK) return st;
    if ((st = hs_recipe_parse_layers(o->hp_layers, o->n_layers, &out->hp_layers)) != HS_OK)
        return st;
    out->hp_layers |= own;
    out->quant_lm_head = o->quant_lm_head ? 1 : 0;
    out->attn_bf16 = strcmp(out->name, "fp32") != 0 && !o->fp32_attn_lm_head;
    out->seed = seed;
    return hs_recipe_validate(out);
}

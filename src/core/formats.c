/* formats.c: formats as data, names, presets and spec validation (halfs/quant.h).
 *
 * The element and scale descriptor tables (formats_table.h) are the single source of the
 * numbers the generic quantizer uses. The named formats of the CLI (`mxfp4`, `nvfp4`, ...) are
 * presets that fill an hs_quant_spec; hs_quant_spec_validate decides which combinations are
 * meaningful (docs/FORMATS.md lists them and why).
 */
#include "formats_table.h"

#include <string.h>

static const hs_elem_desc elem_table[HS_ELEM_COUNT] = {
    /*                name   bits  max       emax mbits float scaled */
    [HS_ELEM_E2M1] = {"e2m1", 4, 6.0f, 2, 1, 1, 1},
    [HS_ELEM_E4M3] = {"e4m3", 8, 448.0f, 8, 3, 1, 1},
    [HS_ELEM_E5M2] = {"e5m2", 8, 57344.0f, 15, 2, 1, 1},
    [HS_ELEM_INT4] = {"int4", 4, 7.0f, 2, 0, 0, 1},
    [HS_ELEM_INT8] = {"int8", 8, 127.0f, 6, 0, 0, 1},
    [HS_ELEM_BF16] = {"bf16", 16, 3.38953139e38f, 127, 7, 1, 0},
    [HS_ELEM_FP32] = {"fp32", 32, 3.40282347e38f, 127, 23, 1, 0},
};

static const hs_scale_desc scale_table[HS_SCALE_COUNT] = {
    [HS_SCALE_NONE] = {"none", 0, 0},
    [HS_SCALE_E8M0] = {"E8M0", 1, 1},
    [HS_SCALE_UE4M3] = {"UE4M3", 1, 0},
    [HS_SCALE_FP32] = {"FP32", 4, 0},
};

typedef struct {
    const char *name;
    hs_elem elem;
    hs_scale_fmt scale;
    hs_group group;
    int block;
    int two_level;
    hs_rule rule;
} preset;

/* The named formats of the CLI's --format (docs/FORMATS.md §5). */
static const preset presets[HS_FMT_COUNT] = {
    [HS_FMT_MXFP4] = {"mxfp4", HS_ELEM_E2M1, HS_SCALE_E8M0, HS_GROUP_BLOCK, 32, 0, HS_RULE_HALFS},
    [HS_FMT_NVFP4] = {"nvfp4", HS_ELEM_E2M1, HS_SCALE_UE4M3, HS_GROUP_BLOCK, 16, 1, HS_RULE_MAX},
    [HS_FMT_FP4] = {"fp4", HS_ELEM_E2M1, HS_SCALE_FP32, HS_GROUP_BLOCK, 32, 0, HS_RULE_MAX},
    [HS_FMT_FP4ROW] = {"fp4row", HS_ELEM_E2M1, HS_SCALE_E8M0, HS_GROUP_ROW, 32, 0, HS_RULE_HALFS},
    [HS_FMT_MXFP8_E4M3] = {"mxfp8-e4m3", HS_ELEM_E4M3, HS_SCALE_E8M0, HS_GROUP_BLOCK, 32, 0,
                           HS_RULE_OCP},
    [HS_FMT_INT4] = {"int4", HS_ELEM_INT4, HS_SCALE_FP32, HS_GROUP_BLOCK, 32, 0, HS_RULE_MAX},
    [HS_FMT_BF16] = {"bf16", HS_ELEM_BF16, HS_SCALE_NONE, HS_GROUP_TENSOR, 32, 0, HS_RULE_MAX},
    [HS_FMT_FP32] = {"fp32", HS_ELEM_FP32, HS_SCALE_NONE, HS_GROUP_TENSOR, 32, 0, HS_RULE_MAX},
};

static const char *const rule_names[HS_RULE_COUNT] = {
    [HS_RULE_OCP] = "ocp",         [HS_RULE_CEIL] = "ceil",   [HS_RULE_RCEIL] = "rceil",
    [HS_RULE_EVEN] = "even",       [HS_RULE_HALF] = "half",   [HS_RULE_HALFS] = "halfs",
    [HS_RULE_HALFS_SIGMA] = "halfs-sigma", [HS_RULE_MSE] = "mse", [HS_RULE_MAX] = "max",
    [HS_RULE_4OVER6] = "4over6",
};

static const char *const rounding_names[HS_ROUND_COUNT] = {
    [HS_ROUND_RNE] = "rne", [HS_ROUND_RNA] = "rna", [HS_ROUND_RTS] = "rts", [HS_ROUND_SR] = "sr"};

const hs_elem_desc *hs_elem_info(hs_elem e) {
    return (unsigned)e < HS_ELEM_COUNT ? &elem_table[e] : NULL;
}
const hs_scale_desc *hs_scale_info(hs_scale_fmt f) {
    return (unsigned)f < HS_SCALE_COUNT ? &scale_table[f] : NULL;
}
const char *hs_scale_fmt_name(hs_scale_fmt f) {
    return (unsigned)f < HS_SCALE_COUNT ? scale_table[f].name : "?";
}

const char *hs_format_name(hs_format f) {
    return (unsigned)f < HS_FMT_COUNT ? presets[f].name : "?";
}
const char *hs_rule_name(hs_rule r) { return (unsigned)r < HS_RULE_COUNT ? rule_names[r] : "?"; }
const char *hs_rounding_name(hs_rounding r) {
    return (unsigned)r < HS_ROUND_COUNT ? rounding_names[r] : "?";
}
const char *hs_elem_name(hs_elem e) { return (unsigned)e < HS_ELEM_COUNT ? elem_table[e].name : "?"; }

hs_status hs_format_parse(const char *name, hs_format *out) {
    if (name && out)
        for (int i = 0; i < HS_FMT_COUNT; i++)
            if (!strcmp(name, presets[i].name)) {
                *out = (hs_format)i;
                return HS_OK;
            }
    return hs_fail(HS_ERR_INVALID_ARG,
                   "unknown format '%s' (known: mxfp4 nvfp4 fp4 fp4row mxfp8-e4m3 int4 bf16 fp32)",
                   name ? name : "(null)");
}

hs_status hs_rule_parse(const char *name, hs_rule *out) {
    if (name && out)
        for (int i = 0; i < HS_RULE_COUNT; i++)
            if (!strcmp(name, rule_names[i])) {
                *out = (hs_rule)i;
                return HS_OK;
            }
    return hs_fail(HS_ERR_INVALID_ARG,
                   "unknown scale rule '%s' (known: ocp ceil rceil even half halfs halfs-sigma mse "
                   "max 4over6)",
                   name ? name : "(null)");
}

hs_status hs_rounding_parse(const char *name, hs_rounding *out) {
    if (name && out)
        for (int i = 0; i < HS_ROUND_COUNT; i++)
            if (!strcmp(name, rounding_names[i])) {
                *out = (hs_rounding)i;
                return HS_OK;
            }
    return hs_fail(HS_ERR_INVALID_ARG, "unknown rounding '%s' (known: rne rna rts sr)",
                   name ? name : "(null)");
}

hs_status hs_quant_spec_init(hs_quant_spec *s, hs_format f) {
    if (!s) return hs_fail(HS_ERR_INVALID_ARG, "spec is NULL");
    if ((unsigned)f >= HS_FMT_COUNT) return hs_fail(HS_ERR_INVALID_ARG, "unknown format %d", (int)f);
    const preset *p = &presets[f];
    memset(s, 0, sizeof *s);
    s->elem = p->elem;
    s->scale_fmt = p->scale;
    s->group = p->group;
    s->block = p->block;
    s->tile2d = 0;
    s->two_level = p->two_level;
    s->rule = p->rule;
    s->rounding = HS_ROUND_RNE;
    s->sr_prescale = -1;
    s->rht = 0;
    return HS_OK;
}

/* Which rules a scale format admits (docs/FORMATS.md §5-6). */
int hs_rule_applies(const hs_quant_spec *s, hs_rule r) {
    if (!s || (unsigned)r >= HS_RULE_COUNT) return 0;
    switch (s->scale_fmt) {
    case HS_SCALE_NONE: return r == HS_RULE_MAX; /* nothing to choose: `max` stands for "none" */
    case HS_SCALE_E8M0:
        return r == HS_RULE_OCP || r == HS_RULE_CEIL || r == HS_RULE_RCEIL || r == HS_RULE_EVEN ||
               r == HS_RULE_HALF || r == HS_RULE_HALFS || r == HS_RULE_HALFS_SIGMA ||
               r == HS_RULE_MSE;
    case HS_SCALE_FP32:
        return r == HS_RULE_MAX || r == HS_RULE_HALF || r == HS_RULE_HALFS || r == HS_RULE_MSE;
    case HS_SCALE_UE4M3:
        return r == HS_RULE_MAX || r == HS_RULE_HALF || r == HS_RULE_HALFS || r == HS_RULE_MSE ||
               (r == HS_RULE_4OVER6 && s->two_level == 1 && s->elem == HS_ELEM_E2M1);
    default: return 0;
    }
}

/* The preset whose element and scale format match s, for messages ("format nvfp4 has ..."). */
static const char *matching_format(const hs_quant_spec *s) {
    for (int i = 0; i < HS_FMT_COUNT; i++)
        if (presets[i].elem == s->elem && presets[i].scale == s->scale_fmt &&
            presets[i].group == s->group && presets[i].two_level == s->two_level)
            return presets[i].name;
    for (int i = 0; i < HS_FMT_COUNT; i++)
        if (presets[i].elem == s->elem && presets[i].scale == s->scale_fmt) return presets[i].name;
    return NULL;
}

static const char *rule_needs(hs_rule r) {
    switch (r) {
    case HS_RULE_OCP: case HS_RULE_CEIL: case HS_RULE_RCEIL: case HS_RULE_EVEN:
    case HS_RULE_HALFS_SIGMA: return "E8M0 scales";
    case HS_RULE_MAX: return "FP32 or UE4M3 scales (or none)";
    case HS_RULE_4OVER6: return "two-level UE4M3 scales with E2M1 elements (nvfp4)";
    default: return "E8M0, FP32 or UE4M3 scales";
    }
}

hs_status hs_quant_spec_validate(const hs_quant_spec *s) {
    if (!s) return hs_fail(HS_ERR_INVALID_ARG, "spec is NULL");
    if ((unsigned)s->elem >= HS_ELEM_COUNT)
        return hs_fail(HS_ERR_INVALID_ARG, "elem: unknown element format %d", (int)s->elem);
    if ((unsigned)s->scale_fmt >= HS_SCALE_COUNT)
        return hs_fail(HS_ERR_INVALID_ARG, "scale_fmt: unknown scale format %d", (int)s->scale_fmt);
    if ((unsigned)s->group >= HS_GROUP_COUNT)
        return hs_fail(HS_ERR_INVALID_ARG, "group: unknown group kind %d", (int)s->group);
    if ((unsigned)s->rule >= HS_RULE_COUNT)
        return hs_fail(HS_ERR_INVALID_ARG, "rule: unknown scale rule %d", (int)s->rule);
    if ((unsigned)s->rounding >= HS_ROUND_COUNT)
        return hs_fail(HS_ERR_INVALID_ARG, "rounding: unknown rounding %d", (int)s->rounding);

    const hs_elem_desc *ed = &elem_table[s->elem];
    const char *en = ed->name, *sn = scale_table[s->scale_fmt].name;
    /* element / scale pairs */
    if (!ed->scaled && s->scale_fmt != HS_SCALE_NONE)
        return hs_fail(HS_ERR_INVALID_ARG, "scale_fmt: %s elements take no scale, got %s", en, sn);
    if (ed->scaled && s->scale_fmt == HS_SCALE_NONE)
        return hs_fail(HS_ERR_INVALID_ARG, "scale_fmt: %s elements need a scale format", en);
    if (s->scale_fmt == HS_SCALE_UE4M3 && s->elem != HS_ELEM_E2M1)
        return hs_fail(HS_ERR_INVALID_ARG, "scale_fmt: UE4M3 scales are for E2M1 (nvfp4), not %s",
                       en);
    if (!ed->is_float && s->scale_fmt == HS_SCALE_E8M0)
        return hs_fail(HS_ERR_INVALID_ARG,
                       "scale_fmt: %s elements take FP32 scales (E8M0 is for floating elements)", en);
    /* groups */
    if (s->group == HS_GROUP_BLOCK && s->block != 16 && s->block != 32 && s->block != 64 &&
        s->block != 128)
        return hs_fail(HS_ERR_INVALID_ARG, "block must be 16, 32, 64 or 128, got %d",
                       (int)s->block);
    if (s->tile2d != 0 && s->tile2d != 16)
        return hs_fail(HS_ERR_INVALID_ARG, "tile2d must be 0 or 16, got %d", (int)s->tile2d);
    if (s->tile2d == 16 && (s->group != HS_GROUP_BLOCK || s->block != 16))
        return hs_fail(HS_ERR_INVALID_ARG,
                       "tile2d 16 needs block groups of 16 (group block, block 16)");
    if (s->tile2d == 16 && s->scale_fmt == HS_SCALE_NONE)
        return hs_fail(HS_ERR_INVALID_ARG, "tile2d needs a scale format");
    /* two-level scaling */
    if (s->two_level != 0 && s->two_level != 1)
        return hs_fail(HS_ERR_INVALID_ARG, "two_level must be 0 or 1, got %d", (int)s->two_level);
    if (s->two_level == 1 && s->scale_fmt != HS_SCALE_UE4M3)
        return hs_fail(HS_ERR_INVALID_ARG, "two_level needs UE4M3 block scales, got %s", sn);
    if (s->scale_fmt == HS_SCALE_UE4M3 && s->two_level != 1)
        return hs_fail(HS_ERR_INVALID_ARG,
                       "UE4M3 block scales need two_level = 1 (the FP32 tensor scale of nvfp4)");
    if (s->scale_fmt == HS_SCALE_UE4M3 && s->group != HS_GROUP_BLOCK)
        return hs_fail(HS_ERR_INVALID_ARG, "UE4M3 scales need block groups");
    /* rule */
    if (!hs_rule_applies(s, s->rule)) {
        const char *fmt = matching_format(s);
        if (fmt)
            return hs_fail(HS_ERR_INVALID_ARG, "rule '%s' needs %s; format %s has %s%s",
                           rule_names[s->rule], rule_needs(s->rule), fmt,
                           s->scale_fmt == HS_SCALE_NONE ? "no scale" : sn,
                           s->scale_fmt == HS_SCALE_NONE ? "" : " scales");
        return hs_fail(HS_ERR_INVALID_ARG, "rule '%s' needs %s; this spec has %s%s",
                       rule_names[s->rule], rule_needs(s->rule),
                       s->scale_fmt == HS_SCALE_NONE ? "no scale" : sn,
                       s->scale_fmt == HS_SCALE_NONE ? "" : " scales");
    }
    /* rounding */
    if (!ed->scaled && s->rounding != HS_ROUND_RNE)
        return hs_fail(HS_ERR_INVALID_ARG, "rounding '%s' is not available for %s (RNE only)",
                       rounding_names[s->rounding], en);
    if (s->sr_prescale < -1 || s->sr_prescale > 1)
        return hs_fail(HS_ERR_INVALID_ARG, "sr_prescale must be -1, 0 or 1, got %d",
                       (int)s->sr_prescale);
    /* RHT */
    if (s->rht != 0 && s->rht != 16 && s->rht != 32 && s->rht != 64 && s->rht != 128)
        return hs_fail(HS_ERR_INVALID_ARG, "rht must be 0, 16, 32, 64 or 128, got %d", (int)s->rht);
    return HS_OK;
}

/* linear_api.c: the public one-layer interface of halfs/linear.h over the trainer's linear
 * layer (linear.c) and recipes (recipe.c, recipe_presets.c): builds the recipe as the trainer
 * does and calls hs_linear_forward / hs_linear_backward with the specs hs_recipe_spec gives. */
#include "halfs/linear.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/ops.h"
#include "nn/recipe.h"

_Static_assert(HS_LINEAR_ROLES == HS_ROLE_COUNT, "halfs/linear.h role count");
_Static_assert(HS_LINEAR_LM_HEAD == HS_LAYER_LM_HEAD, "halfs/linear.h lm_head index");

struct hs_linear_layer {
    hs_recipe recipe;
    hs_linear_ws *ws;
};

/* Copy a string option into a fixed field, refusing one that does not fit. */
static hs_status copy_opt(char *dst, size_t n, const char *src, const char *what) {
    if (!src) src = "";
    if (strlen(src) >= n)
        return hs_fail(HS_ERR_INVALID_ARG, "%s is too long (%zu characters, at most %zu)", what,
                       strlen(src), n - 1);
    memcpy(dst, src, strlen(src) + 1);
    return HS_OK;
}

hs_status hs_linear_layer_create(const char *recipe, const char *roles, int32_t block,
                                 int32_t sr, int32_t rht, int32_t act_only,
                                 const char *hp_layers, int32_t quant_lm_head,
                                 int32_t fp32_attn_lm_head, uint64_t seed, hs_linear_layer **out) {
    if (!out) return hs_fail(HS_ERR_INVALID_ARG, "linear layer: out is NULL");
    *out = NULL;
    if (!recipe || !recipe[0]) return hs_fail(HS_ERR_INVALID_ARG, "linear layer: no recipe name");
    hs_recipe_opts o;
    hs_recipe_opts_defaults(&o);
    hs_status st;
    if ((st = copy_opt(o.name, sizeof o.name, recipe, "the recipe name")) ||
        (st = copy_opt(o.roles, sizeof o.roles, roles, "the role overrides")) ||
        (st = copy_opt(o.hp_layers, sizeof o.hp_layers, hp_layers, "the hp_layers list")))
        return st;
    if (sr < 0 || sr > 1 || act_only < 0 || act_only > 1 || quant_lm_head < 0 || quant_lm_head > 1 ||
        fp32_attn_lm_head < 0 || fp32_attn_lm_head > 1)
        return hs_fail(HS_ERR_INVALID_ARG, "linear layer: sr, act_only, quant_lm_head and "
                                           "fp32_attn_lm_head are 0 or 1");
    o.block = block;
    o.sr = sr;
    o.rht = rht;
    o.act_only = act_only;
    o.quant_lm_head = quant_lm_head;
    o.fp32_attn_lm_head = fp32_attn_lm_head;
    hs_linear_layer *l = calloc(1, sizeof *l);
    if (!l) return hs_fail(HS_ERR_NOMEM, "linear layer: out of memory");
    if ((st = hs_recipe_build(&o, seed, &l->recipe)) || (st = hs_linear_ws_create(&l->ws))) {
        free(l);
        return st;
    }
    *out = l;
    return HS_OK;
}

void hs_linear_layer_free(hs_linear_layer *l) {
    if (!l) return;
    hs_linear_ws_free(l->ws);
    free(l);
}

static hs_status check_ids(int32_t layer, int32_t linear) {
    if (layer < HS_LAYER_LM_HEAD || layer > 65535)
        return hs_fail(HS_ERR_INVALID_ARG, "linear layer: layer %d is outside -1..65535", layer);
    if (linear < 0 || linear > 7)
        return hs_fail(HS_ERR_INVALID_ARG, "linear layer: linear id %d is outside 0..7", linear);
    return HS_OK;
}

hs_status hs_linear_layer_specs(const hs_linear_layer *l, int32_t layer, int32_t linear,
                                uint64_t step, hs_quant_spec spec[HS_LINEAR_ROLES]) {
    if (!l || !spec) return hs_fail(HS_ERR_INVALID_ARG, "linear layer: NULL argument");
    hs_status st = check_ids(layer, linear);
    if (st != HS_OK) return st;
    for (int i = 0; i < HS_ROLE_COUNT; i++)
        hs_recipe_spec(&l->recipe, layer, linear, (hs_role)i, step, &spec[i]);
    return HS_OK;
}

static hs_status check_shape(int64_t M, int64_t K, int64_t N) {
    const int64_t lim = (int64_t)1 << 40; // element counts stay far from int64 overflow
    if (M < 1 || K < 1 || N < 1)
        return hs_fail(HS_ERR_INVALID_ARG, "linear layer: M %lld, K %lld, N %lld must be ≥ 1",
                       (long long)M, (long long)K, (long long)N);
    if (M > lim / K || N > lim / K || M > lim / N)
        return hs_fail(HS_ERR_INVALID_ARG, "linear layer: M %lld × K %lld × N %lld is too large",
                       (long long)M, (long long)K, (long long)N);
    return HS_OK;
}

hs_status hs_linear_layer_forward(hs_linear_layer *l, int32_t layer, int32_t linear,
                                  uint64_t step, float *y, const float *x, const float *w,
                                  int64_t M, int64_t K, int64_t N) {
    hs_quant_spec spec[HS_ROLE_COUNT];
    hs_status st = hs_linear_layer_specs(l, layer, linear, step, spec);
    if (st != HS_OK || (st = check_shape(M, K, N)) != HS_OK) return st;
    if (!y || !x || !w) return hs_fail(HS_ERR_INVALID_ARG, "linear layer forward: NULL array");
    return hs_linear_forward(l->ws, 0, spec, y, x, w, M, K, N, NULL, NULL);
}

hs_status hs_linear_layer_backward(hs_linear_layer *l, int32_t layer, int32_t linear,
                                   uint64_t step, float *dx, float *dw, const float *dy,
                                   const float *x, const float *w, int64_t M, int64_t K,
                                   int64_t N) {
    hs_quant_spec spec[HS_ROLE_COUNT];
    hs_status st = hs_linear_layer_specs(l, layer, linear, step, spec);
    if (st != HS_OK || (st = check_shape(M, K, N)) != HS_OK) return st;
    if (!dw || !dy || !x || !w)
        return hs_fail(HS_ERR_INVALID_ARG, "linear layer backward: NULL array");
    return hs_linear_backward(l->ws, 0, spec, dx, dw, dy, x, w, M, K, N, NULL, NULL);
}

void hs_linear_layer_describe(const hs_linear_layer *l, char *buf, size_t n) {
    if (!buf || n == 0) return;
    if (!l) {
        buf[0] = '\0';
        return;
    }
    hs_recipe_describe(&l->recipe, buf, n);
}

/* linear.c: a linear layer y = x·wᵀ whose three GEMMs run under a recipe (docs/ARCHITECTURE.md,
 * 'Recipes and roles'): each GEMM operand has a role, and the recipe gives each role a spec.
 *
 *   fprop  y  (M×N) = Q_fwd.x(x)   (M×K, groups along K) · Q_fwd.w(w)   (N×K, groups along K)ᵀ
 *   dgrad  dx (M×K) = Q_dgrad.dy(dy)(M×N, groups along N) · Q_dgrad.w(w) (groups along N)
 *   wgrad  dw (N×K) += Q_wgrad.dy(dy)ᵀ (groups along M)   · Q_wgrad.x(x)  (groups along M)
 * The backward uses the straight-through estimator: each GEMM's operands are quantized along
 * that GEMM's own reduction axis, and the quantizer's derivative is taken as the identity.
 *
 * This file turns each operand into what its spec asks for (left fp32, converted to bf16, or
 * quantized into a packed tensor) and hands the pair to hs_gemm (halfs/gemm.h), which picks the
 * GEMM for the pair. Packed and bf16 buffers are allocated once per (slot, role) and reused
 * every step; a buffer is reallocated only when the spec's layout or the shape changes. When
 * fwd.x and wgrad.x are both FP4 (no RHT), or both bf16, the forward quantizes (converts) x in
 * both layouts in one pass and returns the wgrad copy in the caller's hs_linear_saved, which
 * the backward consumes: x must not change in between (the wgrad needs the forward's x
 * anyway). The backward likewise makes both forms of dY in one pass.
 */
#include <omp.h>
#include <stdlib.h>

#include "halfs/gemm.h"
#include "kernels/kernels.h"
#include "nn/ops.h"
#include "nn/recipe.h"

typedef struct {
    hs_packed p;
    int valid;
    hs_quant_spec key; /* layout-relevant fields of the spec it was allocated for */
    int64_t rows, cols;
    uint16_t *h;       /* bf16 operands: (rows, cols) = (outer, reduction), row stride cols */
    size_t h_n;
} pslot;

/* x quantized (or converted) for wgrad.x by the forward, for the backward of the same pair. */
struct hs_linear_saved {
    pslot ps;
    hs_quant_spec spec; /* the wgrad.x spec it was made for */
    int64_t rows, cols; /* x's shape */
    int ready;          /* 1 from the forward that filled it until the backward that uses it */
};

struct hs_linear_ws {
    pslot slot[HS_LINEAR_SLOTS][HS_ROLE_COUNT];
    hs_gemm_ctx *gemm; /* hs_gemm's scratch */
};

static void pslot_free(pslot *ps) {
    if (ps->valid) hs_packed_free(&ps->p);
    free(ps->h);
}

hs_status hs_linear_ws_create(hs_linear_ws **out) {
    *out = calloc(1, sizeof **out);
    if (!*out) return hs_fail(HS_ERR_NOMEM, "linear workspace: out of memory");
    hs_status st = hs_gemm_ctx_create(&(*out)->gemm);
    if (st != HS_OK) {
        free(*out);
        *out = NULL;
    }
    return st;
}

void hs_linear_ws_free(hs_linear_ws *ws) {
    if (!ws) return;
    for (int s = 0; s < HS_LINEAR_SLOTS; s++)
        for (int r = 0; r < HS_ROLE_COUNT; r++) pslot_free(&ws->slot[s][r]);
    hs_gemm_ctx_free(ws->gemm);
    free(ws);
}

void hs_linear_saved_free(hs_linear_saved *s) {
    if (!s) return;
    pslot_free(&s->ps);
    free(s);
}

static int same_layout(const hs_quant_spec *a, const hs_quant_spec *b) {
    return a->elem == b->elem && a->scale_fmt == b->scale_fmt && a->group == b->group &&
           a->block == b->block && a->tile2d == b->tile2d && a->two_level == b->two_level;
}

static double now(void) { return omp_get_wtime(); }

/* bf16 copies of x (rows × cols, row stride ld), by 32 × 16 tiles shared among the threads
 * (kernels: hs_bf16_tile_*; the same bits as hs_bf16_encode): dr = x (rows × cols) and/or
 * dt = xᵀ (cols × rows), either may be NULL; with both, one read of x makes both copies.
 * Why not hs_quantize: bf16 needs no scale search, and through the generic quantizer the bf16
 * recipe spends more time converting than multiplying (measured). */
static void to_bf16_tiles(uint16_t *dr, uint16_t *dt, const float *x, int64_t rows, int64_t cols,
                          int64_t ld) {
    hs_bf16_tile_fn tile = hs_kernels()->bf16_tile;
    int64_t tr = (rows + 31) / 32, tc = (cols + 15) / 16; // tiles of 32 rows × 16 columns
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < tr * tc; t++) tile(dr, dt, x, rows, cols, ld, t / tc * 32, t % tc * 16);
}

/* bf16 copy of x with the reduction axis last: dst = x if red_cols, else dst = xᵀ. */
static void to_bf16(uint16_t *dst, const float *x, int64_t rows, int64_t cols, int64_t ld,
                    int red_cols) {
    to_bf16_tiles(red_cols ? dst : NULL, red_cols ? NULL : dst, x, rows, cols, ld);
}

/* The packed buffer of a slot, (re)allocated for spec's layout and the packed shape pr × pc. */
static hs_status ensure_packed(pslot *ps, const hs_quant_spec *spec, int64_t pr, int64_t pc) {
    if (ps->valid && (!same_layout(&ps->key, spec) || ps->rows != pr || ps->cols != pc)) {
        hs_packed_free(&ps->p);
        ps->valid = 0;
    }
    if (!ps->valid) {
        hs_status st = hs_packed_alloc(&ps->p, spec, pr, pc);
        if (st != HS_OK) return st;
        ps->valid = 1;
        ps->key = *spec;
        ps->rows = pr;
        ps->cols = pc;
    }
    return HS_OK;
}

/* The bf16 buffer of a slot, grown to n elements if smaller. */
static hs_status ensure_h(pslot *ps, size_t n) {
    if (ps->h_n < n) {
        free(ps->h);
        ps->h = malloc(n * sizeof(uint16_t));
        ps->h_n = ps->h ? n : 0;
        if (!ps->h) return hs_fail(HS_ERR_NOMEM, "linear: out of memory for a bf16 operand");
    }
    return HS_OK;
}

static int is_plain_bf16(const hs_quant_spec *s) { return s->elem == HS_ELEM_BF16 && !s->rht; }

/* Quantize x (rows × cols stored, row stride ld) for `role` if its spec quantizes; red_cols
 * says whether the GEMM reduces along x's columns (groups along rows) or along its rows. */
static hs_status prepare(hs_linear_ws *ws, int slot, hs_role role, const hs_quant_spec *spec,
                         const float *x, int64_t rows, int64_t cols, int64_t ld, int red_cols,
                         hs_gemm_operand *op, hs_model_timers *tm) {
    *op = hs_gemm_op_f32(x, ld, !red_cols);
    if (!hs_spec_quantizes(spec)) return HS_OK;
    double t0 = now();
    pslot *ps = &ws->slot[slot][role];
    int64_t pr = red_cols ? rows : cols, pc = red_cols ? cols : rows; // packed: outer × red
    if (spec->elem == HS_ELEM_BF16 && !spec->rht) {
        hs_status st = ensure_h(ps, (size_t)(pr * pc));
        if (st != HS_OK) return st;
        to_bf16(ps->h, x, rows, cols, ld, red_cols);
        *op = hs_gemm_op_bf16(ps->h, pc);
        if (tm) tm->quant += now() - t0;
        return HS_OK;
    }
    hs_status st = ensure_packed(ps, spec, pr, pc);
    if (st != HS_OK) return st;
    st = hs_quantize(spec, x, rows, cols, ld, !red_cols, &ps->p);
    if (st != HS_OK) return st;
    *op = hs_gemm_op_packed(&ps->p);
    if (tm) tm->quant += now() - t0;
    return HS_OK;
}

/* x quantized for two roles at once: role_r along its rows (red_cols = 1) and role_c along its
 * columns (red_cols = 0), by hs_quantize_both (one pass over x where a fused kernel covers the
 * pair; byte-identical to two prepare calls either way). Pairs involving an unquantized or bf16
 * spec take the two prepare calls. */
static hs_status prepare_both(hs_linear_ws *ws, int slot, hs_role role_r, hs_role role_c,
                              const hs_quant_spec *spec, const float *x, int64_t rows,
                              int64_t cols, int64_t ld, pslot *col, hs_gemm_operand *op_r,
                              hs_gemm_operand *op_c, hs_model_timers *tm) {
    const hs_quant_spec *sr = &spec[role_r], *sc = &spec[role_c];
    if (is_plain_bf16(sr) && is_plain_bf16(sc)) { // both bf16 copies from one pass over x
        double t0 = now();
        pslot *pr = &ws->slot[slot][role_r], *pc = col ? col : &ws->slot[slot][role_c];
        hs_status st = ensure_h(pr, (size_t)(rows * cols));
        if (st != HS_OK || (st = ensure_h(pc, (size_t)(rows * cols))) != HS_OK) return st;
        to_bf16_tiles(pr->h, pc->h, x, rows, cols, ld);
        *op_r = hs_gemm_op_bf16(pr->h, cols);
        *op_c = hs_gemm_op_bf16(pc->h, rows);
        if (tm) tm->quant += now() - t0;
        return HS_OK;
    }
    if (!hs_spec_quantizes(sr) || !hs_spec_quantizes(sc) || sr->elem == HS_ELEM_BF16 ||
        sc->elem == HS_ELEM_BF16) {
        hs_status st = prepare(ws, slot, role_r, sr, x, rows, cols, ld, 1, op_r, tm);
        if (st != HS_OK) return st;
        return prepare(ws, slot, role_c, sc, x, rows, cols, ld, 0, op_c, tm);
    }
    double t0 = now();
    pslot *pr = &ws->slot[slot][role_r], *pc = col ? col : &ws->slot[slot][role_c];
    hs_status st = ensure_packed(pr, sr, rows, cols);
    if (st != HS_OK) return st;
    if ((st = ensure_packed(pc, sc, cols, rows)) != HS_OK) return st;
    if ((st = hs_quantize_both(sr, sc, x, rows, cols, ld, &pr->p, &pc->p)) != HS_OK) return st;
    *op_r = hs_gemm_op_packed(&pr->p);
    *op_c = hs_gemm_op_packed(&pc->p);
    if (tm) tm->quant += now() - t0;
    return HS_OK;
}

/* Every field of two specs equal (together they decide the codes). */
static int same_spec(const hs_quant_spec *a, const hs_quant_spec *b) {
    return same_layout(a, b) && a->rule == b->rule && a->rounding == b->rounding &&
           a->sr_prescale == b->sr_prescale && a->rht == b->rht && a->rht_seed == b->rht_seed &&
           a->seed == b->seed && a->stream == b->stream;
}

/* Whether the forward also quantizes x for wgrad.x: when fwd.x and wgrad.x are both FP4 specs
 * without an RHT, hs_quantize_both reads x once for both layouts instead of the backward
 * reading it again. */
static int keep_x_ahead(const hs_quant_spec *spec) {
    const hs_quant_spec *r = &spec[HS_ROLE_FWD_X], *c = &spec[HS_ROLE_WGRAD_X];
    if (is_plain_bf16(r) && is_plain_bf16(c)) return 1; // the bf16 copies likewise
    return hs_spec_quantizes(r) && hs_spec_quantizes(c) && r->elem == HS_ELEM_E2M1 &&
           c->elem == HS_ELEM_E2M1 && !r->rht && !c->rht;
}

/* C (m × n, row stride ldc) = A (m × k) · B (n × k)ᵀ + beta·C, timed into tm. */
static hs_status gemm(hs_linear_ws *ws, const hs_gemm_operand *a, const hs_gemm_operand *b,
                      int64_t m, int64_t n, int64_t k, float beta, float *c, int64_t ldc,
                      hs_model_timers *tm) {
    hs_gemm_time t = {0.0, 0.0};
    hs_status st = hs_gemm(ws->gemm, m, n, k, a, b, beta, c, ldc, tm ? &t : NULL);
    if (tm) {
        tm->gemm += t.gemm;
        tm->quant += t.expand;
    }
    return st;
}

hs_status hs_linear_forward(hs_linear_ws *ws, int slot, const hs_quant_spec *spec, float *y,
                            const float *x, const float *w, int64_t M, int64_t K, int64_t N,
                            hs_linear_saved **saved, hs_model_timers *tm) {
    // y: (M, N); x: (M, K); w: (N, K)
    hs_gemm_operand a, b;
    hs_status st;
    if (saved && *saved) (*saved)->ready = 0;
    if (saved && keep_x_ahead(spec)) {
        // x along its rows for this GEMM and along its columns for the backward's wgrad, in
        // one pass; the wgrad copy waits in *saved for hs_linear_backward.
        if (!*saved && !(*saved = calloc(1, sizeof **saved)))
            return hs_fail(HS_ERR_NOMEM, "linear: out of memory for a saved operand");
        hs_linear_saved *k = *saved;
        hs_gemm_operand xc;
        if ((st = prepare_both(ws, slot, HS_ROLE_FWD_X, HS_ROLE_WGRAD_X, spec, x, M, K, K, &k->ps,
                               &a, &xc, tm)))
            return st;
        k->spec = spec[HS_ROLE_WGRAD_X];
        k->rows = M;
        k->cols = K;
        k->ready = 1;
    } else if ((st = prepare(ws, slot, HS_ROLE_FWD_X, &spec[HS_ROLE_FWD_X], x, M, K, K, 1, &a,
                             tm))) {
        return st;
    }
    if ((st = prepare(ws, slot, HS_ROLE_FWD_W, &spec[HS_ROLE_FWD_W], w, N, K, K, 1, &b, tm)))
        return st;
    return gemm(ws, &a, &b, M, N, K, 0.0f, y, N, tm);
}

hs_status hs_linear_backward(hs_linear_ws *ws, int slot, const hs_quant_spec *spec, float *dx,
                             float *dw, const float *dy, const float *x, const float *w,
                             int64_t M, int64_t K, int64_t N, hs_linear_saved *saved,
                             hs_model_timers *tm) {
    // dx: (M, K) overwritten; dw: (N, K) accumulated; dy: (M, N); x: (M, K); w: (N, K)
    hs_gemm_operand a, b;
    hs_status st;
    if (dx) { // dgrad: reduces over N. dY along its rows; W along its columns (transposed).
        // dY is needed along its rows (dgrad) and its columns (wgrad): both in one pass over it.
        hs_gemm_operand dyr;
        if ((st = prepare_both(ws, slot, HS_ROLE_DGRAD_DY, HS_ROLE_WGRAD_DY, spec, dy, M, N, N,
                               NULL, &dyr, &a, tm)))
            return st;
        if ((st = prepare(ws, slot, HS_ROLE_DGRAD_W, &spec[HS_ROLE_DGRAD_W], w, N, K, K, 0, &b,
                          tm)))
            return st;
        if ((st = gemm(ws, &dyr, &b, M, K, N, 0.0f, dx, K, tm))) return st;
    } else if ((st = prepare(ws, slot, HS_ROLE_WGRAD_DY, &spec[HS_ROLE_WGRAD_DY], dy, M, N, N, 0,
                             &a, tm))) {
        return st;
    }
    // wgrad: reduces over M (tokens): both operands quantized along their columns (dY's
    // already, above; x's by the forward when it saved it: same x, same spec, same bytes).
    if (saved && saved->ready && saved->rows == M && saved->cols == K &&
        same_spec(&saved->spec, &spec[HS_ROLE_WGRAD_X])) {
        b = saved->ps.h && is_plain_bf16(&saved->spec) ? hs_gemm_op_bf16(saved->ps.h, M)
                                                       : hs_gemm_op_packed(&saved->ps.p);
        saved->ready = 0;
    } else if ((st = prepare(ws, slot, HS_ROLE_WGRAD_X, &spec[HS_ROLE_WGRAD_X], x, M, K, K, 0,
                             &b, tm))) {
        return st;
    }
    return gemm(ws, &a, &b, N, K, M, 1.0f, dw, K, tm);
}

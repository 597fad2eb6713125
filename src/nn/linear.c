/* linear.c: a linear layer y = x·wᵀ whose three GEMMs run under a recipe (DESIGN.md table).
 *
 *   fprop  y  (M×N) = Q_fwd.x(x)   (M×K, groups along K) · Q_fwd.w(w)   (N×K, groups along K)ᵀ
 *   dgrad  dx (M×K) = Q_dgrad.dy(dy)(M×N, groups along N) · Q_dgrad.w(w) (groups along N)
 *   wgrad  dw (N×K) += Q_wgrad.dy(dy)ᵀ (groups along M)   · Q_wgrad.x(x)  (groups along M)
 * The backward uses the straight-through estimator: each GEMM's operands are quantized along
 * that GEMM's own reduction axis, and the quantizer's derivative is taken as the identity.
 *
 * How a GEMM runs depends on what its two operands became:
 *   both unquantized (fp32)             → hs_gemm_f32 (OpenBLAS) on the original layouts, over
 *                                         a fixed grid of output tiles (sgemm_tiled);
 *   both bf16                           → hs_gemm_bf16 (operands converted here, transposed
 *                                         where the GEMM needs it);
 *   both packed alike (same element and scale format, same groups, same RHT or none)
 *                                       → hs_gemm_packed on the codes and scales;
 *   anything else (e.g. act-only: FP4 activations × fp32 weights) → the packed operands are
 *     dequantized (and un-rotated if they carry an RHT) into fp32 scratch, then sgemm.
 * Packed buffers are allocated once per (slot, role) and reused every step; a buffer is
 * reallocated only when the spec's layout or the shape changes. When fwd.x and wgrad.x are both
 * FP4 (no RHT), or both bf16, the forward quantizes (converts) x in both layouts in one pass and
 * keeps the wgrad copy, keyed by x's address, for the backward: x must not change in between
 * (the wgrad needs the forward's x anyway). The backward likewise makes both forms of dY in one
 * pass.
 */
#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "halfs/gemm.h"
#include "halfs/rht.h"
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

/* x quantized for wgrad.x during the forward (see hs_linear_forward), kept until the backward
 * of the same call pair. Keyed by the x pointer, its shape and the spec: each layer's saved
 * activation has its own address, so each layer has its own entry. */
typedef struct {
    const float *x;
    int64_t rows, cols, ld;
    hs_quant_spec spec;
    int ready;          /* 1 from the forward that filled it until the backward that uses it */
    pslot ps;
} kept_x;

struct hs_linear_ws {
    pslot slot[HS_LINEAR_SLOTS][HS_ROLE_COUNT];
    kept_x *kept;      /* wgrad.x operands quantized ahead by the forward */
    int n_kept, cap_kept, next_evict;
    float *scratch[2]; /* fp32 dequantized operands of the fallback path */
    size_t scratch_n[2];
};

/* An operand of C = A·Bᵀ: either an fp32 matrix in its stored layout, or a packed one
 * (rows = the GEMM's outer dimension, cols = the reduction dimension). */
typedef struct {
    const float *f;     /* fp32 storage (when p and h are NULL) */
    int64_t ld;         /* its row stride */
    int red_cols;       /* 1: the reduction axis runs along the stored rows' columns */
    hs_packed *p;       /* packed form, or NULL */
    const uint16_t *h;  /* bf16 form (outer × reduction, row stride h_cols), or NULL */
    int64_t h_rows, h_cols;
} operand;

hs_status hs_linear_ws_create(hs_linear_ws **out) {
    // The fp32 GEMMs are threaded by sgemm_tiled; OpenBLAS itself must run single-threaded.
    openblas_set_num_threads(1);
    *out = calloc(1, sizeof **out);
    return *out ? HS_OK : hs_fail(HS_ERR_NOMEM, "linear workspace: out of memory");
}

void hs_linear_ws_free(hs_linear_ws *ws) {
    if (!ws) return;
    for (int s = 0; s < HS_LINEAR_SLOTS; s++)
        for (int r = 0; r < HS_ROLE_COUNT; r++)
        {
            if (ws->slot[s][r].valid) hs_packed_free(&ws->slot[s][r].p);
            free(ws->slot[s][r].h);
        }
    for (int i = 0; i < ws->n_kept; i++) {
        if (ws->kept[i].ps.valid) hs_packed_free(&ws->kept[i].ps.p);
        free(ws->kept[i].ps.h);
    }
    free(ws->kept);
    free(ws->scratch[0]);
    free(ws->scratch[1]);
    free(ws);
}

static int same_layout(const hs_quant_spec *a, const hs_quant_spec *b) {
    return a->elem == b->elem && a->scale_fmt == b->scale_fmt && a->group == b->group &&
           a->block == b->block && a->tile2d == b->tile2d && a->two_level == b->two_level;
}

static float *scratch(hs_linear_ws *ws, int i, size_t n) {
    if (ws->scratch_n[i] < n) {
        free(ws->scratch[i]);
        ws->scratch[i] = malloc(n * sizeof(float));
        ws->scratch_n[i] = ws->scratch[i] ? n : 0;
    }
    return ws->scratch[i];
}

static double now(void) { return omp_get_wtime(); }

/* fp32 GEMM C (m × n) = op(A)·op(B) + beta·C over a fixed grid of output tiles, one
 * single-threaded sgemm per tile, tiles shared among OpenMP threads.
 * Why: OpenBLAS's own threading changes which micro-kernel (main or edge) computes an element
 * depending on the thread count, so its results differ in the last bits between 1 and 2
 * threads (measured). With a grid that depends only on the shape, every element is computed by
 * the same call whatever the thread count: training is reproducible bit for bit. */
static hs_status sgemm_tiled(int ta, int tb, int64_t m, int64_t n, int64_t k, const float *a,
                             int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                             int64_t ldc) {
    // Row blocks of about m/8 (a multiple of 16, at least 64) with every column: each call
    // packs op(B) once for many rows (measured faster than square-ish tiles, and on par with
    // OpenBLAS's own threading), and 8 blocks balance 2-4 threads.
    int64_t TM = (m + 7) / 8;
    TM = (TM + 15) / 16 * 16;
    if (TM < 64) TM = 64;
    int64_t tm = (m + TM - 1) / TM;
    int bad = 0;
#pragma omp parallel for schedule(dynamic, 1) reduction(| : bad)
    for (int64_t i = 0; i < tm; i++) {
        int64_t mi = m - i * TM < TM ? m - i * TM : TM;
        const float *as = ta ? a + i * TM : a + i * TM * lda; // op(A) rows i·TM..
        bad |= hs_gemm_f32(ta, tb, mi, n, k, as, lda, b, ldb, beta, c + i * TM * ldc, ldc) !=
               HS_OK;
    }
    return bad ? hs_fail(HS_ERR_INTERNAL, "linear: sgemm failed") : HS_OK;
}

/* bf16 copies of x (rows × cols, row stride ld), by 32 × 16 tiles shared among the threads
 * (kernels: hs_bf16_tile_*; the same bits as hs_bf16_encode): dr = x (rows × cols) and/or
 * dt = xᵀ (cols × rows), either may be NULL; with both, one read of x makes both copies.
 * Why not hs_quantize: bf16 needs no scale search, and the generic quantizer's reference path
 * made the bf16 baseline spend more time converting than multiplying. */
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
                         operand *op, hs_model_timers *tm) {
    op->f = x;
    op->ld = ld;
    op->red_cols = red_cols;
    op->p = NULL;
    op->h = NULL;
    if (!hs_spec_quantizes(spec)) return HS_OK;
    double t0 = now();
    pslot *ps = &ws->slot[slot][role];
    int64_t pr = red_cols ? rows : cols, pc = red_cols ? cols : rows; // packed: outer × red
    if (spec->elem == HS_ELEM_BF16 && !spec->rht) {
        hs_status st = ensure_h(ps, (size_t)(pr * pc));
        if (st != HS_OK) return st;
        to_bf16(ps->h, x, rows, cols, ld, red_cols);
        op->h = ps->h;
        op->h_rows = pr;
        op->h_cols = pc;
        if (tm) tm->quant += now() - t0;
        return HS_OK;
    }
    hs_status st = ensure_packed(ps, spec, pr, pc);
    if (st != HS_OK) return st;
    st = hs_quantize(spec, x, rows, cols, ld, !red_cols, &ps->p);
    if (st != HS_OK) return st;
    op->p = &ps->p;
    if (tm) tm->quant += now() - t0;
    return HS_OK;
}

/* x quantized for two roles at once: role_r along its rows (red_cols = 1) and role_c along its
 * columns (red_cols = 0), by hs_quantize_both (one pass over x where a fused kernel covers the
 * pair; byte-identical to two prepare calls either way). Pairs involving an unquantized or bf16
 * spec take the two prepare calls. */
static hs_status prepare_both(hs_linear_ws *ws, int slot, hs_role role_r, hs_role role_c,
                              const hs_quant_spec *spec, const float *x, int64_t rows,
                              int64_t cols, int64_t ld, pslot *col, operand *op_r,
                              operand *op_c, hs_model_timers *tm) {
    const hs_quant_spec *sr = &spec[role_r], *sc = &spec[role_c];
    if (is_plain_bf16(sr) && is_plain_bf16(sc)) { // both bf16 copies from one pass over x
        double t0 = now();
        pslot *pr = &ws->slot[slot][role_r], *pc = col ? col : &ws->slot[slot][role_c];
        hs_status st = ensure_h(pr, (size_t)(rows * cols));
        if (st != HS_OK || (st = ensure_h(pc, (size_t)(rows * cols))) != HS_OK) return st;
        to_bf16_tiles(pr->h, pc->h, x, rows, cols, ld);
        *op_r = (operand){.f = x, .ld = ld, .red_cols = 1, .h = pr->h, .h_rows = rows,
                          .h_cols = cols};
        *op_c = (operand){.f = x, .ld = ld, .red_cols = 0, .h = pc->h, .h_rows = cols,
                          .h_cols = rows};
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
    *op_r = (operand){.f = x, .ld = ld, .red_cols = 1, .p = &pr->p};
    *op_c = (operand){.f = x, .ld = ld, .red_cols = 0, .p = &pc->p};
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

enum { MAX_KEPT = 1024 }; /* entries; beyond it the oldest is reused (its backward recomputes) */

static kept_x *find_kept(hs_linear_ws *ws, const float *x, int64_t rows, int64_t cols,
                         int64_t ld) {
    for (int i = 0; i < ws->n_kept; i++) {
        kept_x *k = &ws->kept[i];
        if (k->x == x && k->rows == rows && k->cols == cols && k->ld == ld) return k;
    }
    return NULL;
}

/* The kept entry for x, created (or recycled) if there is none. */
static hs_status kept_entry(hs_linear_ws *ws, const float *x, int64_t rows, int64_t cols,
                            int64_t ld, kept_x **out) {
    kept_x *k = find_kept(ws, x, rows, cols, ld);
    if (!k && ws->n_kept == MAX_KEPT) {
        k = &ws->kept[ws->next_evict];
        ws->next_evict = (ws->next_evict + 1) % MAX_KEPT;
    }
    if (!k) {
        if (ws->n_kept == ws->cap_kept) {
            int cap = ws->cap_kept ? 2 * ws->cap_kept : 16;
            kept_x *grown = realloc(ws->kept, sizeof *grown * (size_t)cap);
            if (!grown) return hs_fail(HS_ERR_NOMEM, "linear: out of memory for kept operands");
            ws->kept = grown;
            ws->cap_kept = cap;
        }
        k = &ws->kept[ws->n_kept++];
        memset(k, 0, sizeof *k);
    }
    k->x = x;
    k->rows = rows;
    k->cols = cols;
    k->ld = ld;
    k->ready = 0;
    *out = k;
    return HS_OK;
}

/* Turn a packed (or bf16) operand into fp32 (outer × red, un-rotated) in scratch buffer i. */
static hs_status unpack(hs_linear_ws *ws, int i, operand *op) {
    if (op->h) {
        int64_t n = op->h_rows * op->h_cols;
        float *buf = scratch(ws, i, (size_t)n);
        if (!buf) return hs_fail(HS_ERR_NOMEM, "linear: out of memory for a bf16 operand");
        const uint16_t *h = op->h;
#pragma omp parallel for schedule(static)
        for (int64_t j = 0; j < n; j++) {
            uint32_t u = (uint32_t)h[j] << 16;
            memcpy(&buf[j], &u, sizeof u);
        }
        op->f = buf;
        op->ld = op->h_cols;
        op->red_cols = 1;
        op->h = NULL;
        return HS_OK;
    }
    hs_packed *p = op->p;
    float *buf = scratch(ws, i, (size_t)(p->rows * p->cols));
    if (!buf) return hs_fail(HS_ERR_NOMEM, "linear: out of memory for a dequantized operand");
    hs_status st = hs_dequantize(p, buf, p->cols);
    if (st != HS_OK) return st;
    if (p->spec.rht) {
        // The packed values live in the rotated basis; the partner operand does not, so rotate
        // back (the transform is orthonormal: this is exactly what the GEMM would have seen).
        st = hs_rht_apply(buf, p->rows, p->cols, p->cols, p->spec.rht, p->spec.rht_seed, 0, 1);
        if (st != HS_OK) return st;
    }
    op->f = buf;
    op->ld = p->cols;
    op->red_cols = 1;
    op->p = NULL;
    return HS_OK;
}

/* C (m × n, row stride ldc) = A (m × k) · B (n × k)ᵀ + beta·C. */
static hs_status gemm(hs_linear_ws *ws, operand *a, operand *b, int64_t m, int64_t n,
                      int64_t k, float beta, float *c, int64_t ldc, hs_model_timers *tm) {
    hs_status st;
    if (a->h && b->h) {
        double t0 = now();
        st = hs_gemm_bf16(m, n, k, a->h, a->h_cols, b->h, b->h_cols, beta, c, ldc);
        if (tm) tm->gemm += now() - t0;
        return st;
    }
    if (a->p && b->p) {
        const hs_quant_spec *sa = &a->p->spec, *sb = &b->p->spec;
        int a16 = sa->elem == HS_ELEM_BF16, b16 = sb->elem == HS_ELEM_BF16;
        if (a16 && b16 && !sa->rht && !sb->rht) {
            double t0 = now();
            st = hs_gemm_bf16(m, n, k, (const uint16_t *)a->p->codes, a->p->code_stride / 2,
                              (const uint16_t *)b->p->codes, b->p->code_stride / 2, beta, c, ldc);
            if (tm) tm->gemm += now() - t0;
            return st;
        }
        // the packed kernels need the two operands' groups to line up along the reduction
        int same_groups = sa->elem == sb->elem && sa->scale_fmt == sb->scale_fmt &&
                          sa->group == sb->group &&
                          (sa->group != HS_GROUP_BLOCK || sa->block == sb->block);
        if (!a16 && !b16 && same_groups && sa->rht == sb->rht &&
            (!sa->rht || sa->rht_seed == sb->rht_seed)) {
            double t0 = now();
            st = hs_gemm_packed(a->p, b->p, beta, c, ldc);
            if (tm) tm->gemm += now() - t0;
            return st;
        }
    }
    double t0 = now();
    if ((a->p || a->h) && (st = unpack(ws, 0, a)) != HS_OK) return st;
    if ((b->p || b->h) && (st = unpack(ws, 1, b)) != HS_OK) return st;
    double t1 = now();
    if (tm) tm->quant += t1 - t0;
    st = sgemm_tiled(!a->red_cols, b->red_cols, m, n, k, a->f, a->ld, b->f, b->ld, beta, c, ldc);
    if (tm) tm->gemm += now() - t1;
    return st;
}

hs_status hs_linear_forward(hs_linear_ws *ws, int slot, const hs_quant_spec *spec, float *y,
                            const float *x, const float *w, int64_t M, int64_t K, int64_t N,
                            hs_model_timers *tm) {
    // y: (M, N); x: (M, K); w: (N, K)
    operand a, b;
    hs_status st;
    if (keep_x_ahead(spec)) {
        // x along its rows for this GEMM and along its columns for the backward's wgrad, in
        // one pass; the wgrad copy waits in ws->kept for hs_linear_backward.
        kept_x *k = NULL;
        operand xc;
        if ((st = kept_entry(ws, x, M, K, K, &k))) return st;
        if ((st = prepare_both(ws, slot, HS_ROLE_FWD_X, HS_ROLE_WGRAD_X, spec, x, M, K, K, &k->ps,
                               &a, &xc, tm)))
            return st;
        k->spec = spec[HS_ROLE_WGRAD_X];
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
                             int64_t M, int64_t K, int64_t N, hs_model_timers *tm) {
    // dx: (M, K) overwritten; dw: (N, K) accumulated; dy: (M, N); x: (M, K); w: (N, K)
    operand a, b;
    hs_status st;
    if (dx) { // dgrad: reduces over N. dY along its rows; W along its columns (transposed).
        // dY is needed along its rows (dgrad) and its columns (wgrad): both in one pass over it.
        operand dyr;
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
    // already, above; x's by the forward when it kept it: same x, same spec, same bytes).
    kept_x *k = find_kept(ws, x, M, K, K);
    if (k && k->ready && same_spec(&k->spec, &spec[HS_ROLE_WGRAD_X])) {
        b = k->ps.h && is_plain_bf16(&k->spec)
                ? (operand){.f = x, .ld = K, .red_cols = 0, .h = k->ps.h, .h_rows = K, .h_cols = M}
                : (operand){.f = x, .ld = K, .red_cols = 0, .p = &k->ps.p};
        k->ready = 0;
    } else if ((st = prepare(ws, slot, HS_ROLE_WGRAD_X, &spec[HS_ROLE_WGRAD_X], x, M, K, K, 0,
                             &b, tm))) {
        return st;
    }
    return gemm(ws, &a, &b, N, K, M, 1.0f, dw, K, tm);
}

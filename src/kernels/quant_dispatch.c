/* quant_dispatch.c: hs_quantize, hs_dequantize and hs_quantize_both (halfs/quant.h): each call
 * is validated once into a plan, then the kernel list of the ISA level in use (hs_kernels()->isa,
 * chosen by CPUID or HALFS_ISA, switched by hs_isa_force in tests) is walked in order and the
 * first kernel that covers the plan runs (quant_kernels.h states the protocol). The lists, most
 * specialised kernel first, the reference last:
 *   avx512  e2m1_rows_avx512, e2m1_cols_avx512, e2m1_avx512, generic_avx512, ref
 *   avx2    e2m1_rows_avx2, e2m1_cols_avx2, e2m1_avx2, generic_avx2, ref
 *   ref     ref
 * dequantize: e2m1_avx512, generic_avx512, ref / generic_avx2, ref / ref; hs_quantize_both: the
 * fused e2m1_both_avx512 / e2m1_both_avx2, then `separate` (the two hs_quantize calls the
 * function is defined by). The e2m1_rows/cols/both kernels of both levels are the driver of
 * kernels/quant_mx.h with that level's vector table; e2m1_avx512 / e2m1_avx2 are the band
 * quantizer of kernels/quant_band.h with that level's table. HALFS_TRACE=1 (read once) prints "halfs: trace: <entry> <spec> -> <kernel>" to stderr
 * the first time each (entry point, kernel) pair runs; otherwise the library never prints.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/formats_table.h"
#include "core/quant_common.h"
#include "halfs/quant.h"
#include "halfs/rng.h"
#include "kernels/quant_kernels.h"
#include "kernels/quant_mx.h"

/* ---------------------------------------------------------------- plans */
hs_status hs_quant_plan_init(hs_quant_plan *p, const hs_quant_spec *s, const float *x,
                             int64_t rows, int64_t cols, int64_t ld, int transpose,
                             const hs_packed *out) {
    if (!s || !x || !out || hs_quant_spec_validate(s) != HS_OK) return HS_ERR_INVALID_ARG;
    if (rows < 1 || cols < 1 || ld < cols) return HS_ERR_INVALID_ARG;
    const int64_t R = transpose ? cols : rows, C = transpose ? rows : cols;
    const int64_t gpr = hs_groups_per_row(s, C);
    const hs_scale_desc *os = hs_scale_info(out->spec.scale_fmt);
    if (out->rows != R || out->cols != C || !out->codes || out->code_stride != hs_code_stride(s, C) ||
        out->groups_per_row != gpr || (gpr && !out->scales) || !os ||
        os->bytes != hs_scale_info(s->scale_fmt)->bytes)
        return HS_ERR_INVALID_ARG;
    if (s->rht && C % s->rht != 0) return HS_ERR_INVALID_ARG;
    p->spec = s;
    p->x = x;
    p->x_rows = rows;
    p->x_cols = cols;
    p->ld = ld;
    p->transpose = transpose != 0;
    p->rows = R;
    p->cols = C;
    p->glen = s->group == HS_GROUP_BLOCK ? s->block : C;
    p->groups_per_row = gpr;
    p->code_stride = out->code_stride;
    p->bits = hs_elem_info(s->elem)->bits;
    p->scale = s->scale_fmt;
    p->prescale = hs_spec_sr_prescaled(s);
    p->key = hs_rng_key(s->seed, s->stream);
    return HS_OK;
}

hs_status hs_dequant_plan_init(hs_dequant_plan *p, const hs_packed *pk, float *y, int64_t ldy) {
    if (!pk || !y || hs_quant_spec_validate(&pk->spec) != HS_OK) return HS_ERR_INVALID_ARG;
    const hs_quant_spec *s = &pk->spec;
    const int64_t R = pk->rows, C = pk->cols;
    if (R < 1 || C < 1 || ldy < C || !pk->codes || pk->code_stride != hs_code_stride(s, C) ||
        pk->groups_per_row != hs_groups_per_row(s, C) || (pk->groups_per_row && !pk->scales))
        return HS_ERR_INVALID_ARG;
    p->pk = pk;
    p->y = y;
    p->ldy = ldy;
    p->rows = R;
    p->cols = C;
    p->glen = s->group == HS_GROUP_BLOCK ? s->block : C;
    p->groups_per_row = pk->groups_per_row;
    p->code_stride = pk->code_stride;
    p->bits = hs_elem_info(s->elem)->bits;
    p->scale = s->scale_fmt;
    return HS_OK;
}

/* ---------------------------------------------------------------- quantizers */
static int q_all(const hs_quant_plan *p) {
    (void)p;
    return 1;
}
static int q_e2m1_rows(const hs_quant_plan *p) { return !p->transpose && hs_qmx_covers(p->spec); }
static int q_e2m1_cols(const hs_quant_plan *p) { return p->transpose && hs_qmx_covers(p->spec); }
static int q_e2m1_avx512(const hs_quant_plan *p) {
    return hs_quantize_e2m1_avx512_covers(p->spec, p->cols);
}
static int q_e2m1_avx2(const hs_quant_plan *p) {
    return hs_quantize_e2m1_avx2_covers(p->spec, p->cols);
}

/* run: the kernel on the plan's call */
#define QRUN(fn)                                                                                   \
    static hs_status run_##fn(const hs_quant_plan *p, hs_packed *out) {                           \
        return fn(p->spec, p->x, p->x_rows, p->x_cols, p->ld, p->transpose, out);                  \
    }
QRUN(hs_quantize_e2m1_rows_avx512)
QRUN(hs_quantize_e2m1_cols_avx512)
QRUN(hs_quantize_e2m1_avx512)
QRUN(hs_quantize_generic_avx512)
QRUN(hs_quantize_e2m1_rows_avx2)
QRUN(hs_quantize_e2m1_cols_avx2)
QRUN(hs_quantize_e2m1_avx2)
QRUN(hs_quantize_generic_avx2)
QRUN(hs_quantize_ref)

static const hs_quant_kernel quant_ref[] = {
    {"ref", q_all, run_hs_quantize_ref},
};
static const hs_quant_kernel quant_avx2[] = {
    {"e2m1_rows_avx2", q_e2m1_rows, run_hs_quantize_e2m1_rows_avx2},
    {"e2m1_cols_avx2", q_e2m1_cols, run_hs_quantize_e2m1_cols_avx2},
    {"e2m1_avx2", q_e2m1_avx2, run_hs_quantize_e2m1_avx2},
    {"generic_avx2", q_all, run_hs_quantize_generic_avx2},
    {"ref", q_all, run_hs_quantize_ref},
};
static const hs_quant_kernel quant_avx512[] = {
    {"e2m1_rows_avx512", q_e2m1_rows, run_hs_quantize_e2m1_rows_avx512},
    {"e2m1_cols_avx512", q_e2m1_cols, run_hs_quantize_e2m1_cols_avx512},
    {"e2m1_avx512", q_e2m1_avx512, run_hs_quantize_e2m1_avx512},
    {"generic_avx512", q_all, run_hs_quantize_generic_avx512},
    {"ref", q_all, run_hs_quantize_ref},
};

/* ---------------------------------------------------------------- dequantizers */
static int d_all(const hs_dequant_plan *p) {
    (void)p;
    return 1;
}
static int d_e2m1_avx512(const hs_dequant_plan *p) {
    const hs_quant_spec *s = &p->pk->spec;
    return s->elem == HS_ELEM_E2M1 &&
           (s->scale_fmt == HS_SCALE_E8M0 || s->scale_fmt == HS_SCALE_UE4M3 ||
            s->scale_fmt == HS_SCALE_FP32) &&
           (s->group == HS_GROUP_BLOCK || s->group == HS_GROUP_ROW);
}
#define DRUN(fn)                                                                                   \
    static hs_status run_##fn(const hs_dequant_plan *p) { return fn(p->pk, p->y, p->ldy); }
DRUN(hs_dequantize_e2m1_avx512)
DRUN(hs_dequantize_generic_avx512)
DRUN(hs_dequantize_generic_avx2)
DRUN(hs_dequantize_ref)

static const hs_dequant_kernel dequant_ref[] = {
    {"ref", d_all, run_hs_dequantize_ref},
};
static const hs_dequant_kernel dequant_avx2[] = {
    {"generic_avx2", d_all, run_hs_dequantize_generic_avx2}, /* E2M1 included */
    {"ref", d_all, run_hs_dequantize_ref},
};
static const hs_dequant_kernel dequant_avx512[] = {
    {"e2m1_avx512", d_e2m1_avx512, run_hs_dequantize_e2m1_avx512},
    {"generic_avx512", d_all, run_hs_dequantize_generic_avx512},
    {"ref", d_all, run_hs_dequantize_ref},
};

/* ---------------------------------------------------------------- row + column */
static int b_all(const hs_quant_plan *r, const hs_quant_plan *c) {
    (void)r;
    (void)c;
    return 1;
}
static int b_e2m1(const hs_quant_plan *r, const hs_quant_plan *c) {
    return hs_qmx_covers(r->spec) && hs_qmx_covers(c->spec);
}
static hs_status run_both_e2m1_avx512(const hs_quant_plan *r, const hs_quant_plan *c,
                                      hs_packed *out_row, hs_packed *out_col) {
    return hs_quantize_both_e2m1_avx512(r->spec, c->spec, r->x, r->x_rows, r->x_cols, r->ld,
                                        out_row, out_col);
}
static hs_status run_both_e2m1_avx2(const hs_quant_plan *r, const hs_quant_plan *c,
                                    hs_packed *out_row, hs_packed *out_col) {
    return hs_quantize_both_e2m1_avx2(r->spec, c->spec, r->x, r->x_rows, r->x_cols, r->ld,
                                      out_row, out_col);
}
static hs_status run_separate(const hs_quant_plan *r, const hs_quant_plan *c, hs_packed *out_row,
                              hs_packed *out_col) {
    hs_status st = hs_quantize(r->spec, r->x, r->x_rows, r->x_cols, r->ld, 0, out_row);
    if (st != HS_OK) return st;
    return hs_quantize(c->spec, c->x, c->x_rows, c->x_cols, c->ld, 1, out_col);
}

static const hs_quant_both_kernel both_ref[] = {
    {"separate", b_all, run_separate},
};
static const hs_quant_both_kernel both_avx2[] = {
    {"e2m1_both_avx2", b_e2m1, run_both_e2m1_avx2},
    {"separate", b_all, run_separate},
};
static const hs_quant_both_kernel both_avx512[] = {
    {"e2m1_both_avx512", b_e2m1, run_both_e2m1_avx512},
    {"separate", b_all, run_separate},
};

/* ---------------------------------------------------------------- lists */
#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

const hs_quant_kernel *hs_quant_kernel_list(hs_isa isa, int *n) {
    switch (isa) {
    case HS_ISA_AVX512: *n = COUNT(quant_avx512); return quant_avx512;
    case HS_ISA_AVX2: *n = COUNT(quant_avx2); return quant_avx2;
    default: *n = COUNT(quant_ref); return quant_ref;
    }
}

const hs_dequant_kernel *hs_dequant_kernel_list(hs_isa isa, int *n) {
    switch (isa) {
    case HS_ISA_AVX512: *n = COUNT(dequant_avx512); return dequant_avx512;
    case HS_ISA_AVX2: *n = COUNT(dequant_avx2); return dequant_avx2;
    default: *n = COUNT(dequant_ref); return dequant_ref;
    }
}

const hs_quant_both_kernel *hs_quant_both_kernel_list(hs_isa isa, int *n) {
    if (isa == HS_ISA_AVX512) {
        *n = COUNT(both_avx512);
        return both_avx512;
    }
    if (isa == HS_ISA_AVX2) {
        *n = COUNT(both_avx2);
        return both_avx2;
    }
    *n = COUNT(both_ref);
    return both_ref;
}

const char *hs_quant_kernel_pick(hs_isa isa, const hs_quant_plan *p) {
    int n;
    const hs_quant_kernel *k = hs_quant_kernel_list(isa, &n);
    for (int i = 0; i < n; i++)
        if (k[i].covers(p)) return k[i].name;
    return NULL;
}

const char *hs_dequant_kernel_pick(hs_isa isa, const hs_dequant_plan *p) {
    int n;
    const hs_dequant_kernel *k = hs_dequant_kernel_list(isa, &n);
    for (int i = 0; i < n; i++)
        if (k[i].covers(p)) return k[i].name;
    return NULL;
}

const char *hs_quant_both_kernel_pick(hs_isa isa, const hs_quant_plan *row,
                                      const hs_quant_plan *col) {
    int n;
    const hs_quant_both_kernel *k = hs_quant_both_kernel_list(isa, &n);
    for (int i = 0; i < n; i++)
        if (k[i].covers(row, col)) return k[i].name;
    return NULL;
}

/* ---------------------------------------------------------------- trace */
enum { ENTRY_QUANTIZE, ENTRY_DEQUANTIZE, ENTRY_BOTH, ENTRY_COUNT, TRACE_NAMES = 16 };
static const char *const entry_names[ENTRY_COUNT] = {"hs_quantize", "hs_dequantize",
                                                     "hs_quantize_both"};
static pthread_once_t trace_once = PTHREAD_ONCE_INIT;
static int trace_enabled;
static pthread_mutex_t trace_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *trace_seen[ENTRY_COUNT][TRACE_NAMES]; /* kernel names printed, per entry */

static void trace_init(void) {
    const char *e = getenv("HALFS_TRACE");
    trace_enabled = e && !strcmp(e, "1");
}

static inline int trace_on(void) {
    pthread_once(&trace_once, trace_init);
    return trace_enabled;
}

/* "e2m1/e8m0/b32" (+ "/sr", "/tile16", "/rht16"): what a spec is, for the trace */
static int spec_text(char *buf, size_t cap, const hs_quant_spec *s) {
    char scale[8];
    const char *sn = hs_scale_fmt_name(s->scale_fmt);
    size_t i = 0;
    for (; sn && sn[i] && i + 1 < sizeof scale; i++)
        scale[i] = (char)(sn[i] >= 'A' && sn[i] <= 'Z' ? sn[i] - 'A' + 'a' : sn[i]);
    scale[i] = 0;
    char group[16];
    if (s->group == HS_GROUP_BLOCK) snprintf(group, sizeof group, "b%d", (int)s->block);
    else snprintf(group, sizeof group, "%s", s->group == HS_GROUP_ROW ? "row" : "tensor");
    int w = snprintf(buf, cap, "%s/%s/%s", hs_elem_name(s->elem), scale, group);
    if (s->rounding != HS_ROUND_RNE && w >= 0 && (size_t)w < cap)
        w += snprintf(buf + w, cap - (size_t)w, "/%s", hs_rounding_name(s->rounding));
    if (s->tile2d && w >= 0 && (size_t)w < cap)
        w += snprintf(buf + w, cap - (size_t)w, "/tile%d", (int)s->tile2d);
    if (s->rht && w >= 0 && (size_t)w < cap)
        w += snprintf(buf + w, cap - (size_t)w, "/rht%d", (int)s->rht);
    return w;
}

/* Prints the line of (entry, kernel) the first time; `what` describes the call. */
static void trace(int entry, const char *kernel, const hs_quant_spec *s1, int transpose,
                  const hs_quant_spec *s2) {
    pthread_mutex_lock(&trace_lock);
    int i = 0;
    while (i < TRACE_NAMES && trace_seen[entry][i] && strcmp(trace_seen[entry][i], kernel)) i++;
    if (i < TRACE_NAMES && !trace_seen[entry][i]) {
        trace_seen[entry][i] = kernel;
        char a[64], b[64];
        spec_text(a, sizeof a, s1);
        if (s2) {
            spec_text(b, sizeof b, s2);
            fprintf(stderr, "halfs: trace: %s %s rows + %s cols -> %s\n", entry_names[entry], a, b,
                    kernel);
        } else if (transpose >= 0) {
            fprintf(stderr, "halfs: trace: %s %s %s -> %s\n", entry_names[entry], a,
                    transpose ? "cols" : "rows", kernel);
        } else {
            fprintf(stderr, "halfs: trace: %s %s -> %s\n", entry_names[entry], a, kernel);
        }
    }
    pthread_mutex_unlock(&trace_lock);
}

/* ---------------------------------------------------------------- entry points */
hs_status hs_quantize(const hs_quant_spec *s, const float *x, int64_t rows, int64_t cols,
                      int64_t ld, int transpose, hs_packed *out) {
    hs_quant_plan p;
    if (hs_quant_plan_init(&p, s, x, rows, cols, ld, transpose, out) != HS_OK)
        return hs_quantize_ref(s, x, rows, cols, ld, transpose, out); /* reports the error */
    int n;
    const hs_quant_kernel *k = hs_quant_kernel_list(hs_kernels()->isa, &n);
    for (int i = 0;; i++) {
        if (i < n - 1 && !k[i].covers(&p)) continue;
        hs_status st = k[i].run(&p, out);
        if (st == HS_ERR_UNSUPPORTED && i < n - 1) continue;
        if (trace_on()) trace(ENTRY_QUANTIZE, k[i].name, s, p.transpose, NULL);
        return st;
    }
}

hs_status hs_dequantize(const hs_packed *pk, float *y, int64_t ldy) {
    hs_dequant_plan p;
    if (hs_dequant_plan_init(&p, pk, y, ldy) != HS_OK) return hs_dequantize_ref(pk, y, ldy);
    int n;
    const hs_dequant_kernel *k = hs_dequant_kernel_list(hs_kernels()->isa, &n);
    for (int i = 0;; i++) {
        if (i < n - 1 && !k[i].covers(&p)) continue;
        hs_status st = k[i].run(&p);
        if (st == HS_ERR_UNSUPPORTED && i < n - 1) continue;
        if (trace_on()) trace(ENTRY_DEQUANTIZE, k[i].name, &pk->spec, -1, NULL);
        return st;
    }
}

hs_status hs_quantize_both(const hs_quant_spec *spec_row, const hs_quant_spec *spec_col,
                           const float *x, int64_t rows, int64_t cols, int64_t ld,
                           hs_packed *out_row, hs_packed *out_col) {
    hs_quant_plan pr, pc;
    int n;
    const hs_quant_both_kernel *k = hs_quant_both_kernel_list(hs_kernels()->isa, &n);
    int valid = hs_quant_plan_init(&pr, spec_row, x, rows, cols, ld, 0, out_row) == HS_OK &&
                hs_quant_plan_init(&pc, spec_col, x, rows, cols, ld, 1, out_col) == HS_OK;
    if (!valid) { /* the separate calls report the error */
        hs_status st = hs_quantize(spec_row, x, rows, cols, ld, 0, out_row);
        if (st != HS_OK) return st;
        return hs_quantize(spec_col, x, rows, cols, ld, 1, out_col);
    }
    for (int i = 0;; i++) {
        if (i < n - 1 && !k[i].covers(&pr, &pc)) continue;
        hs_status st = k[i].run(&pr, &pc, out_row, out_col);
        if (st == HS_ERR_UNSUPPORTED && i < n - 1) continue;
        if (trace_on()) trace(ENTRY_BOTH, k[i].name, spec_row, 0, spec_col);
        return st;
    }
}

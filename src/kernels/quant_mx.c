/* quant_mx.c: the ISA-independent driver of the dedicated MXFP4-style quantizers
 * (kernels/quant_mx.h): which specs they cover, the argument checks, and how a call is cut into
 * kernel calls and OpenMP work —
 *  - row-wise: rows whose length is a multiple of the block as runs of MX_RUN rows whose vector
 *    steps continue across row ends (ops->rows_flat; the trainer's rows of 256 to 1408 columns
 *    do not fill whole steps); other rows one at a time (ops->row);
 *  - column-wise: strips of packed rows (disjoint code and scale rows), all groups of each;
 *  - fused row + column (hs_quantize_both): units of 128 x rows (each unit owns one 64-byte line
 *    of every column-wise code row); within a unit, each column group's rows are quantized
 *    row-wise, then column-wise while they are still in cache.
 * Every group is computed alone by the kernels, so the cut and the thread count never change
 * a byte: the outputs are hs_quantize_ref's. The kernels' entry points of each level (the
 * driver with that level's table) are at the end.
 */
#include "kernels/quant_mx.h"

#include <omp.h>
#include <string.h>

#include "core/quant_common.h"
#include "kernels/quant_kernels.h"

enum { MX_RUN = 32 }; /* rows per OpenMP unit of the row-wise runs */

int hs_qmx_covers(const hs_quant_spec *s) {
    if (s->elem != HS_ELEM_E2M1 || s->scale_fmt != HS_SCALE_E8M0) return 0;
    if (s->group != HS_GROUP_BLOCK || (s->block != 16 && s->block != 32)) return 0;
    if (s->rounding != HS_ROUND_RNE && s->rounding != HS_ROUND_SR) return 0;
    if (s->rht || s->tile2d || s->two_level) return 0;
    switch (s->rule) {
    case HS_RULE_OCP:
    case HS_RULE_CEIL:
    case HS_RULE_RCEIL:
    case HS_RULE_EVEN:
    case HS_RULE_HALF:
    case HS_RULE_HALFS: return 1;
    default: return 0;
    }
}

/* out fits the packed R × C result of spec s */
static int packed_fits(const hs_quant_spec *s, const hs_packed *p, int64_t R, int64_t C) {
    const int64_t gpr = (C + s->block - 1) / s->block;
    return p && p->rows == R && p->cols == C && p->codes && p->scales &&
           p->code_stride == hs_code_stride_bits(4, C) && p->groups_per_row == gpr &&
           p->spec.scale_fmt == s->scale_fmt && p->spec.elem == s->elem;
}

static int call_ok(const hs_quant_spec *s, const float *x, int64_t rows, int64_t cols, int64_t ld) {
    return s && x && hs_quant_spec_validate(s) == HS_OK && rows >= 1 && cols >= 1 && ld >= cols &&
           hs_qmx_covers(s);
}

static void finish(hs_packed *out, const hs_quant_spec *s, int64_t halved, int64_t R) {
    out->spec = *s;
    out->tensor_scale = 1.0f;
    out->groups_halved = halved;
    out->groups_total = R * out->groups_per_row;
}

/* Rows [r0, r1) of x, row-wise. */
static int64_t rows_range(const hs_qmx_ops *ops, const hs_quant_spec *s, const float *x,
                          int64_t ld, int64_t C, int64_t r0, int64_t r1, hs_packed *out) {
    int64_t halved = 0;
    if (C % s->block == 0) {
        halved = ops->rows_flat(s, x, ld, C, r0, r1, out->codes, out->code_stride,
                                (uint8_t *)out->scales);
        const int64_t used = C / 2; /* C is even (a multiple of the block) */
        for (int64_t r = r0; r < r1; r++)
            memset(out->codes + r * out->code_stride + used, 0, (size_t)(out->code_stride - used));
    } else {
        for (int64_t r = r0; r < r1; r++)
            halved += ops->row(s, x + r * ld, r, C, out->codes + r * out->code_stride,
                               out->code_stride, (uint8_t *)out->scales + r * out->groups_per_row);
    }
    return halved;
}

/* Zero the column-wise code bytes past the last group (the kernels write B/2 per group). */
static void zero_col_tails(hs_packed *out, int64_t B) {
    const int64_t used = out->groups_per_row * B / 2;
    for (int64_t r = 0; r < out->rows; r++)
        memset(out->codes + r * out->code_stride + used, 0, (size_t)(out->code_stride - used));
}

hs_status hs_qmx_quantize(const hs_qmx_ops *ops, const hs_quant_spec *s, const float *x,
                          int64_t rows, int64_t cols, int64_t ld, int transpose, hs_packed *out) {
    if (!call_ok(s, x, rows, cols, ld)) return HS_ERR_UNSUPPORTED;
    const int64_t R = transpose ? cols : rows, C = transpose ? rows : cols, B = s->block;
    if (!packed_fits(s, out, R, C)) return HS_ERR_UNSUPPORTED;
    const int par = R * C > (1 << 15);
    int64_t halved = 0;
    if (!transpose) {
        const int64_t nruns = (R + MX_RUN - 1) / MX_RUN;
#pragma omp parallel for schedule(static) if (par) reduction(+ : halved)
        for (int64_t u = 0; u < nruns; u++) {
            const int64_t r0 = u * MX_RUN, r1 = r0 + MX_RUN < R ? r0 + MX_RUN : R;
            halved += rows_range(ops, s, x, ld, C, r0, r1, out);
        }
    } else {
        zero_col_tails(out, B);
        /* strips of JW packed rows (a multiple of 16, 64 .. 2048), at least two per thread
         * when R allows; the kernel reads a strip in bands of x rows */
        const int64_t threads = par ? omp_get_max_threads() : 1;
        int64_t JW = (R / (2 * threads) + 15) / 16 * 16;
        JW = JW > 2048 ? 2048 : JW < 64 ? 64 : JW;
        const int64_t nstrips = (R + JW - 1) / JW, gpr = out->groups_per_row;
#pragma omp parallel for schedule(dynamic, 1) if (par) reduction(+ : halved)
        for (int64_t k = 0; k < nstrips; k++) {
            const int64_t jb = k * JW, je = jb + JW < R ? jb + JW : R;
            halved += ops->cols(s, x, ld, R, C, jb, je, 0, gpr, out->codes, out->code_stride,
                                (uint8_t *)out->scales);
        }
    }
    finish(out, s, halved, R);
    return HS_OK;
}

hs_status hs_qmx_quantize_both(const hs_qmx_ops *ops, const hs_quant_spec *sr,
                               const hs_quant_spec *sc, const float *x, int64_t rows,
                               int64_t cols, int64_t ld, hs_packed *out_row, hs_packed *out_col) {
    if (!call_ok(sr, x, rows, cols, ld) || !call_ok(sc, x, rows, cols, ld)) return HS_ERR_UNSUPPORTED;
    if (!packed_fits(sr, out_row, rows, cols) || !packed_fits(sc, out_col, cols, rows) ||
        out_row == out_col)
        return HS_ERR_UNSUPPORTED;
    const int64_t R = cols, C = rows, B = sc->block, gpr = out_col->groups_per_row;
    zero_col_tails(out_col, B);
    const int64_t gu = 128 / B, nunits = (gpr + gu - 1) / gu;
    const int par = rows * cols > (1 << 15);
    int64_t hrow = 0, hcol = 0;
    /* static: each thread a contiguous range of units (the column-wise scales of neighbouring
     * units share cache lines) */
#pragma omp parallel for schedule(static) if (par) reduction(+ : hrow, hcol)
    for (int64_t u = 0; u < nunits; u++) {
        const int64_t g1 = (u + 1) * gu < gpr ? (u + 1) * gu : gpr;
        for (int64_t g = u * gu; g < g1; g++) {
            const int64_t r0 = g * B, r1 = (g + 1) * B < rows ? (g + 1) * B : rows;
            hrow += rows_range(ops, sr, x, ld, cols, r0, r1, out_row);
            hcol += ops->cols(sc, x, ld, R, C, 0, R, g, g + 1, out_col->codes,
                              out_col->code_stride, (uint8_t *)out_col->scales);
        }
    }
    finish(out_row, sr, hrow, rows);
    finish(out_col, sc, hcol, R);
    return HS_OK;
}

/* The kernels' entry points (kernels/quant_kernels.h): the driver with each level's table. */
hs_status hs_quantize_e2m1_rows_avx2(const hs_quant_spec *s, const float *x, int64_t rows,
                                     int64_t cols, int64_t ld, int transpose, hs_packed *out) {
    return transpose ? HS_ERR_UNSUPPORTED : hs_qmx_quantize(&hs_qmx_ops_avx2, s, x, rows, cols, ld, 0, out);
}
hs_status hs_quantize_e2m1_cols_avx2(const hs_quant_spec *s, const float *x, int64_t rows,
                                     int64_t cols, int64_t ld, int transpose, hs_packed *out) {
    return !transpose ? HS_ERR_UNSUPPORTED : hs_qmx_quantize(&hs_qmx_ops_avx2, s, x, rows, cols, ld, 1, out);
}
hs_status hs_quantize_both_e2m1_avx2(const hs_quant_spec *sr, const hs_quant_spec *sc,
                                     const float *x, int64_t rows, int64_t cols, int64_t ld,
                                     hs_packed *out_row, hs_packed *out_col) {
    return hs_qmx_quantize_both(&hs_qmx_ops_avx2, sr, sc, x, rows, cols, ld, out_row, out_col);
}
hs_status hs_quantize_e2m1_rows_avx512(const hs_quant_spec *s, const float *x, int64_t rows,
                                       int64_t cols, int64_t ld, int transpose, hs_packed *out) {
    return transpose ? HS_ERR_UNSUPPORTED : hs_qmx_quantize(&hs_qmx_ops_avx512, s, x, rows, cols, ld, 0, out);
}
hs_status hs_quantize_e2m1_cols_avx512(const hs_quant_spec *s, const float *x, int64_t rows,
                                       int64_t cols, int64_t ld, int transpose, hs_packed *out) {
    return !transpose ? HS_ERR_UNSUPPORTED : hs_qmx_quantize(&hs_qmx_ops_avx512, s, x, rows, cols, ld, 1, out);
}
hs_status hs_quantize_both_e2m1_avx512(const hs_quant_spec *sr, const hs_quant_spec *sc,
                                       const float *x, int64_t rows, int64_t cols, int64_t ld,
                                       hs_packed *out_row, hs_packed *out_col) {
    return hs_qmx_quantize_both(&hs_qmx_ops_avx512, sr, sc, x, rows, cols, ld, out_row, out_col);
}

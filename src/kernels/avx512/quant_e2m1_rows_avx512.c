/* quant_e2m1_rows_avx512.c: drivers of the dedicated AVX-512 quantizers for MXFP4-style specs
 * (E2M1 elements, E8M0 scales, block 16 or 32, rules ocp / ceil / rceil / even / half / halfs,
 * RNE or SR; no RHT, 2D tiles or tensor scale):
 *  - row-wise (hs_quantize_e2m1_rows_avx512: OpenMP over rows, or runs of rows), tried by the
 *    dispatcher before the general AVX-512 quantizer (quant_e2m1_avx512.c);
 *  - column-wise (hs_quantize_e2m1_cols_avx512: OpenMP over strips of packed rows), tried by
 *    the general AVX-512 quantizer when transpose = 1;
 *  - fused row + column (hs_quantize_both_e2m1_avx512, behind hs_quantize_both): both layouts
 *    from one pass over x, 128 rows at a time.
 * Each checks that it covers the call and returns HS_ERR_UNSUPPORTED, touching nothing, if not.
 * The kernels and their data paths are described in quant_e2m1_rows_avx512_ukernel.c. All are
 * byte-identical to hs_quantize_ref, and every output byte is a function of its own group, so
 * the thread count does not matter.
 */

#include <omp.h>
#include <string.h>

#include "core/quant_common.h"
#include "kernels/avx512/quant_e2m1_avx512.h"
#include "kernels/quant_mx.h"
#include "kernels/quant_kernels.h"


/* Rows whose blocks are all whole but do not fill the kernel's 16-block steps (every shape of
 * the trainer: 256, 704, 768, 1408 columns with block 32) are quantized as runs of rows whose
 * steps continue across row ends (hs_ukernel_qrows_flat_avx512); rows of whole steps, or with
 * a partial block, one at a time. Runs of FLAT_ROWS rows (a multiple of 16, so that runs are
 * whole steps) are the unit of OpenMP work. */
enum { FLAT_ROWS = 32 };
static int flat_rows(int64_t C, int64_t B) { return C % B == 0 && C % (16 * B) != 0; }

/* The same specs as the AVX2 MXFP4 kernels: the shared driver's coverage (kernels/quant_mx.c). */
int hs_quantize_e2m1_rows_avx512_covers(const hs_quant_spec *s) { return hs_qmx_covers(s); }

hs_status hs_quantize_e2m1_rows_avx512(const hs_quant_spec *s, const float *x, int64_t rows,
                                       int64_t cols, int64_t ld, int transpose, hs_packed *out) {
    if (!s || !x || !out || transpose || hs_quant_spec_validate(s) != HS_OK) return HS_ERR_UNSUPPORTED;
    if (rows < 1 || cols < 1 || ld < cols || !hs_quantize_e2m1_rows_avx512_covers(s)) return HS_ERR_UNSUPPORTED;
    const int64_t R = rows, C = cols, B = s->block;
    const int64_t gpr = (C + B - 1) / B;
    if (out->rows != R || out->cols != C || !out->codes || !out->scales ||
        out->code_stride != hs_code_stride_bits(4, C) || out->groups_per_row != gpr ||
        out->spec.scale_fmt != s->scale_fmt || out->spec.elem != s->elem)
        return HS_ERR_UNSUPPORTED;
    int64_t halved = 0;
    const int par = R * C > (1 << 15);
    if (flat_rows(C, B)) { /* runs of FLAT_ROWS rows, steps across row ends (same bytes) */
        const int64_t nruns = (R + FLAT_ROWS - 1) / FLAT_ROWS;
#pragma omp parallel for schedule(static) if (par) reduction(+ : halved)
        for (int64_t u = 0; u < nruns; u++) {
            const int64_t r0 = u * FLAT_ROWS, r1 = r0 + FLAT_ROWS < R ? r0 + FLAT_ROWS : R;
            halved += hs_ukernel_qrows_flat_avx512(s, x, ld, C, r0, r1, out->codes, out->code_stride,
                                                   (uint8_t *)out->scales);
        }
    } else {
#pragma omp parallel for schedule(static) if (par) reduction(+ : halved)
        for (int64_t r = 0; r < R; r++)
            halved += hs_ukernel_qrows_avx512(s, x + r * ld, r, C, out->codes + r * out->code_stride,
                                              out->code_stride, (uint8_t *)out->scales + r * gpr);
    }
    out->spec = *s;
    out->tensor_scale = 1.0f;
    out->groups_halved = halved;
    out->groups_total = R * gpr;
    return HS_OK;
}

/* Column-wise: the same specs, groups down the columns of x (packed row r = column r of x).
 * OpenMP over strips of packed rows (disjoint rows of codes and scales); every group is
 * computed alone, so the thread count does not matter. */
hs_status hs_quantize_e2m1_cols_avx512(const hs_quant_spec *s, const float *x, int64_t rows,
                                       int64_t cols, int64_t ld, int transpose, hs_packed *out) {
    if (!s || !x || !out || !transpose || hs_quant_spec_validate(s) != HS_OK) return HS_ERR_UNSUPPORTED;
    if (rows < 1 || cols < 1 || ld < cols || !hs_quantize_e2m1_rows_avx512_covers(s)) return HS_ERR_UNSUPPORTED;
    const int64_t R = cols, C = rows, B = s->block;
    const int64_t gpr = (C + B - 1) / B;
    if (out->rows != R || out->cols != C || !out->codes || !out->scales ||
        out->code_stride != hs_code_stride_bits(4, C) || out->groups_per_row != gpr ||
        out->spec.scale_fmt != s->scale_fmt || out->spec.elem != s->elem)
        return HS_ERR_UNSUPPORTED;
    /* bytes past the last group stay zero (the kernel writes B/2 bytes per group) */
    const int64_t used = gpr * B / 2;
    for (int64_t r = 0; r < R; r++) memset(out->codes + r * out->code_stride + used, 0, (size_t)(out->code_stride - used));
    /* strips of JW packed rows (a multiple of 16), at most 2048 (the kernel reads each strip
     * in bands of 128 columns; 2048 measured ahead of 128 and 512 single-threaded at 4096²),
     * at least two per thread when R allows */
    const int par = R * C > (1 << 15);
    const int64_t threads = par ? omp_get_max_threads() : 1;
    int64_t JW = (R / (2 * threads) + 15) / 16 * 16;
    JW = JW > 2048 ? 2048 : JW < 64 ? 64 : JW;
    const int64_t nstrips = (R + JW - 1) / JW;
    int64_t halved = 0;
#pragma omp parallel for schedule(dynamic, 1) if (par) reduction(+ : halved)
    for (int64_t k = 0; k < nstrips; k++) {
        int64_t jb = k * JW, je = jb + JW < R ? jb + JW : R;
        halved += hs_ukernel_qcols_avx512(s, x, ld, R, C, jb, je, out->codes, out->code_stride,
                                          (uint8_t *)out->scales);
    }
    out->spec = *s;
    out->tensor_scale = 1.0f;
    out->groups_halved = halved;
    out->groups_total = R * gpr;
    return HS_OK;
}

static int packed_fits(const hs_quant_spec *s, const hs_packed *p, int64_t R, int64_t C) {
    const int64_t gpr = (C + s->block - 1) / s->block;
    return p && p->rows == R && p->cols == C && p->codes && p->scales &&
           p->code_stride == hs_code_stride_bits(4, C) && p->groups_per_row == gpr &&
           p->spec.scale_fmt == s->scale_fmt && p->spec.elem == s->elem;
}

/* Fused: x is read from memory once. Units of 128 x rows (OpenMP over units: each unit owns one
 * 64-byte line of every column-wise code row); within a unit, each column group's Bc x rows are
 * quantized row-wise, then column-wise while they are still in cache. Every row and every group
 * is computed alone, exactly as by the two separate kernels, so the outputs are theirs byte for
 * byte whatever the thread count. */
hs_status hs_quantize_both_e2m1_avx512(const hs_quant_spec *sr, const hs_quant_spec *sc,
                                       const float *x, int64_t rows, int64_t cols, int64_t ld,
                                       hs_packed *out_row, hs_packed *out_col) {
    if (!sr || !sc || !x || hs_quant_spec_validate(sr) != HS_OK || hs_quant_spec_validate(sc) != HS_OK)
        return HS_ERR_UNSUPPORTED;
    if (rows < 1 || cols < 1 || ld < cols || !hs_quantize_e2m1_rows_avx512_covers(sr) || !hs_quantize_e2m1_rows_avx512_covers(sc)) return HS_ERR_UNSUPPORTED;
    if (!packed_fits(sr, out_row, rows, cols) || !packed_fits(sc, out_col, cols, rows) ||
        out_row == out_col)
        return HS_ERR_UNSUPPORTED;
    const int64_t R = cols, C = rows, B = sc->block, gpr = (C + B - 1) / B;
    const int64_t gpr_row = (cols + sr->block - 1) / sr->block;
    const int64_t used = gpr * B / 2;
    for (int64_t r = 0; r < R; r++)
        memset(out_col->codes + r * out_col->code_stride + used, 0,
               (size_t)(out_col->code_stride - used));
    const int64_t gu = 128 / B, nunits = (gpr + gu - 1) / gu;
    const int flat = flat_rows(cols, sr->block);
    int64_t hrow = 0, hcol = 0;
    const int par = rows * cols > (1 << 15);
    /* static: each thread a contiguous range of units. The column-wise scales of unit u are
     * bytes 4u .. 4u+3 (B = 32) of every scale row, so units handed out one at a time
     * (dynamic, 1) had both threads writing the same cache lines of the scales, row after row */
#pragma omp parallel for schedule(static) if (par) reduction(+ : hrow, hcol)
    for (int64_t u = 0; u < nunits; u++) {
        int64_t g1 = (u + 1) * gu < gpr ? (u + 1) * gu : gpr;
        for (int64_t g = u * gu; g < g1; g++) {
            int64_t r1 = (g + 1) * B < rows ? (g + 1) * B : rows;
            if (flat) /* B (16 or 32) rows: whole 16-block steps, but for a short last group */
                hrow += hs_ukernel_qrows_flat_avx512(sr, x, ld, cols, g * B, r1, out_row->codes,
                                                     out_row->code_stride, (uint8_t *)out_row->scales);
            else
                for (int64_t r = g * B; r < r1; r++)
                    hrow += hs_ukernel_qrows_avx512(sr, x + r * ld, r, cols,
                                                    out_row->codes + r * out_row->code_stride,
                                                    out_row->code_stride,
                                                    (uint8_t *)out_row->scales + r * gpr_row);
            hcol += hs_ukernel_qcols_groups_avx512(sc, x, ld, R, C, g, g + 1, out_col->codes,
                                                   out_col->code_stride, (uint8_t *)out_col->scales);
        }
    }
    out_row->spec = *sr;
    out_row->tensor_scale = 1.0f;
    out_row->groups_halved = hrow;
    out_row->groups_total = rows * gpr_row;
    out_col->spec = *sc;
    out_col->tensor_scale = 1.0f;
    out_col->groups_halved = hcol;
    out_col->groups_total = R * gpr;
    return HS_OK;
}

/* quant_e2m1_rows_avx512.c: driver of the dedicated ROW-WISE AVX-512 quantizer for MXFP4-style
 * specs (E2M1 elements, E8M0 scales, block 16 or 32, rules ocp / ceil / rceil / even / half /
 * halfs, RNE; no RHT, 2D tiles or tensor scale): checks that it covers the call, then OpenMP over
 * rows. The kernel and its data path are described in quant_e2m1_rows_avx512_ukernel.c. The
 * dispatcher tries it before the general AVX-512 quantizer (quant_e2m1_avx512.c); anything it
 * does not cover returns HS_ERR_UNSUPPORTED, touching nothing. Byte-identical to
 * hs_quantize_ref; rows are independent, so the thread count does not matter.
 */

#include "kernels/kernels.h"

static int64_t code_stride_of(int64_t cols) { return ((cols + 1) / 2 + 63) / 64 * 64; }

static int covers(const hs_quant_spec *s) {
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

hs_status hs_quantize_e2m1_rows_avx512(const hs_quant_spec *s, const float *x, int64_t rows,
                                       int64_t cols, int64_t ld, int transpose, hs_packed *out) {
    if (!s || !x || !out || transpose || hs_quant_spec_validate(s) != HS_OK) return HS_ERR_UNSUPPORTED;
    if (rows < 1 || cols < 1 || ld < cols || !covers(s)) return HS_ERR_UNSUPPORTED;
    const int64_t R = rows, C = cols, B = s->block;
    const int64_t gpr = (C + B - 1) / B;
    if (out->rows != R || out->cols != C || !out->codes || !out->scales ||
        out->code_stride != code_stride_of(C) || out->groups_per_row != gpr ||
        out->spec.scale_fmt != s->scale_fmt || out->spec.elem != s->elem)
        return HS_ERR_UNSUPPORTED;
    int64_t halved = 0;
    const int par = R * C > (1 << 15);
#pragma omp parallel for schedule(static) if (par) reduction(+ : halved)
    for (int64_t r = 0; r < R; r++)
        halved += hs_ukernel_qrows_avx512(s, x + r * ld, r, C, out->codes + r * out->code_stride,
                                          out->code_stride, (uint8_t *)out->scales + r * gpr);
    out->spec = *s;
    out->tensor_scale = 1.0f;
    out->groups_halved = halved;
    out->groups_total = R * gpr;
    return HS_OK;
}

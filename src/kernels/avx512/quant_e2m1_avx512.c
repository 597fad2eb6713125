/* quant_e2m1_avx512.c: the AVX-512 table of the E2M1 band quantizer (kernels/quant_band.h:
 * MXFP4 / fp4row, NVFP4, FP32-scaled fp4; row-wise and column-wise; RNE and SR; RHT fused) —
 * its coverage and its band kernels (quant_e2m1_avx512_ukernel.c, 16 lanes).
 *
 * At 16 lanes: row-wise tiles transpose 16×16 blocks in registers, column-wise tiles are 16
 * consecutive floats of an x row. Group statistics: an amax is a max over vectors, the scale of
 * 16 groups is computed at once, squared errors accumulate in 8 double accumulators per lane
 * (term i into accumulator i mod 8, the reference's summation order), and the codes of 8
 * consecutive elements are OR-ed into one dword per lane (4 code bytes of that row), transposed
 * back to rows with dword permutes.
 * Element rounding: with a = min(|z|, 6) and ex = clamp(floor(log2 a), 0, 2) the E2M1 grid step
 * near a is 2^(ex−1), so (a + 2^(22+ex)) − 2^(22+ex) is a rounded to the grid, ties to even
 * code (the float addition's own RNE); stochastic rounding uses t = a·2^(1−ex), floor(t) and the
 * exact fraction t − floor(t) against u, as hs_e2m1_encode does.
 * Not covered (the dispatcher falls back to the generic kernel or the reference): other
 * elements, per-tensor groups, RNA/RTS rounding, and one-scale-per-row groups longer than
 * 1 << 16. 2D 16×16 tiles: the error-comparing rules halfs / 4over6 decide a tile from float
 * estimates (exact reference sums in canonical order on a close call); mse and halfs-sigma call
 * hs_scale_choose per tile.
 */
#include "kernels/quant_band.h"
#include "kernels/avx512/quant_e2m1_avx512.h"
#include "kernels/quant_kernels.h"


/* Does this kernel implement spec s exactly? */
int hs_quantize_e2m1_avx512_covers(const hs_quant_spec *s, int64_t C) {
    if (s->elem != HS_ELEM_E2M1) return 0;
    if (s->rounding != HS_ROUND_RNE && s->rounding != HS_ROUND_SR) return 0;
    if (s->group != HS_GROUP_BLOCK && s->group != HS_GROUP_ROW) return 0;
    if (s->group == HS_GROUP_BLOCK && (s->block < 16 || s->block > 128 || HS_QK_CHUNK % s->block)) return 0;
    if (s->group == HS_GROUP_ROW && C > HS_QK_ROW_MAX) return 0;
    if (s->rht && (s->rht < 16 || s->rht > 128 || (s->rht & (s->rht - 1)))) return 0;
    switch (s->scale_fmt) {
    case HS_SCALE_E8M0: break; /* every E8M0 rule */
    case HS_SCALE_UE4M3:
    case HS_SCALE_FP32:
        if (s->rule != HS_RULE_MAX && s->rule != HS_RULE_HALF && s->rule != HS_RULE_HALFS &&
            s->rule != HS_RULE_4OVER6 && s->rule != HS_RULE_MSE)
            return 0;
        if (s->rule == HS_RULE_4OVER6 && s->scale_fmt != HS_SCALE_UE4M3) return 0;
        break;
    default: return 0;
    }
    if (s->tile2d) {
        if (s->tile2d != 16 || s->group != HS_GROUP_BLOCK || s->block != 16) return 0;
    }
    return 1;
}

static size_t ob_bytes(int64_t chunk) {
    /* 64 bytes per 8 elements, read back in groups of four vectors */
    return (size_t)((chunk + 31) / 32 * 4 + 4) * 64;
}

const hs_qband_ops hs_qband_ops_avx512 = {
    .lanes = HS_QK_LANES,
    .covers = hs_quantize_e2m1_avx512_covers,
    .band = hs_qk_band,
    .finite_amax = hs_qk_band_finite_amax,
    .load_rows_t = hs_qk_load_rows_t,
    .ob_bytes = ob_bytes,
};

hs_status hs_quantize_e2m1_avx512(const hs_quant_spec *s, const float *x, int64_t rows,
                                  int64_t cols, int64_t ld, int transpose, hs_packed *out) {
    return hs_qband_quantize(&hs_qband_ops_avx512, s, x, rows, cols, ld, transpose, out);
}

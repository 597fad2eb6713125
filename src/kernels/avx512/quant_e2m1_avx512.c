/* quant_e2m1_avx512.c: AVX-512 quantizer for E2M1 (FP4) elements — MXFP4 / fp4row (E8M0
 * scales), NVFP4 (UE4M3 block scales, FP32 tensor scale, 2D tiles) and FP32-scaled fp4 — row-wise
 * and column-wise, RNE and stochastic rounding, with the random Hadamard transform fused.
 * Byte-identical to hs_quantize_ref (codes, scales, tensor_scale, groups_halved): it performs the
 * same float operations in the same order (core/scale_rules.h states that contract).
 *
 * Data path. Work is split in bands of 16 packed rows (OpenMP over bands, like the reference).
 * A band is processed in chunks of packed columns (256, or the whole row for one-scale-per-row
 * groups): the chunk is loaded into a tile t[i][16] whose 16 lanes are the 16 packed rows —
 * column-wise quantization reads it straight from x (16 consecutive floats of an x row), row-wise
 * quantization transposes 16×16 blocks. Everything after that is vertical, lane = packed row =
 * independent group: the RHT butterflies act on whole vectors (exactly the reference's per-element
 * operations), a group's amax is a max over vectors, the scale of 16 groups is computed at once,
 * squared errors accumulate in 8 double accumulators per lane (term i into accumulator i mod 8,
 * the reference's summation order), and the codes of 8 consecutive elements are OR-ed into one
 * dword per lane (4 code bytes of that row), transposed back to rows with dword permutes.
 * Column-wise, tasks span several adjacent bands so that each x row is read in runs of up to
 * 2 KB (see the driver below).
 * Element rounding: with a = min(|z|, 6) and ex = clamp(floor(log2 a), 0, 2) the E2M1 grid step
 * near a is 2^(ex−1), so (a + 2^(22+ex)) − 2^(22+ex) is a rounded to the grid, ties to even
 * code (the float addition's own RNE); stochastic rounding uses t = a·2^(1−ex), floor(t) and the
 * exact fraction t − floor(t) against u, as hs_e2m1_encode does.
 * Not covered (the dispatcher falls back to the reference): other elements, per-tensor groups,
 * RNA/RTS rounding, and one-scale-per-row groups longer than 1 << 16. 2D 16×16 tiles: the
 * error-comparing rules halfs / 4over6 decide a tile from float estimates (exact reference sums
 * in canonical order on a close call); mse and halfs-sigma call hs_scale_choose per tile.
 */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/quant_common.h"
#include "core/rht_impl.h"
#include "core/scale_rules.h"
#include "halfs/rng.h"
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

/* band b's finite amax, for hs_bands_finite_amax (NVFP4's tensor scale) */
static float band_amax(const void *ctx, int64_t b, float *t) {
    const hs_qk *q = ctx;
    int64_t r0 = b * HS_QK_LANES;
    int nb = q->R - r0 < HS_QK_LANES ? (int)(q->R - r0) : HS_QK_LANES;
    return hs_qk_band_finite_amax(q, r0, nb, t);
}

hs_status hs_quantize_e2m1_avx512(const hs_quant_spec *s, const float *x, int64_t rows,
                                  int64_t cols, int64_t ld, int transpose, hs_packed *out) {
    /* Anything unusual (including every error) goes to the reference, which reports it. */
    if (!s || !x || !out || hs_quant_spec_validate(s) != HS_OK) return HS_ERR_UNSUPPORTED;
    if (rows < 1 || cols < 1 || ld < cols) return HS_ERR_UNSUPPORTED;
    if (transpose) { /* column-wise MXFP4: the dedicated vertical kernel, when it covers s */
        hs_status cst = hs_quantize_e2m1_cols_avx512(s, x, rows, cols, ld, transpose, out);
        if (cst != HS_ERR_UNSUPPORTED) return cst;
    }
    const int64_t R = transpose ? cols : rows, C = transpose ? rows : cols;
    if (!hs_quantize_e2m1_avx512_covers(s, C)) return HS_ERR_UNSUPPORTED;
    const int64_t gpr = hs_groups_per_row(s, C);
    if (out->rows != R || out->cols != C || !out->codes || !out->scales ||
        out->code_stride != hs_code_stride_bits(4, C) || out->groups_per_row != gpr ||
        out->spec.scale_fmt != s->scale_fmt || out->spec.elem != s->elem)
        return HS_ERR_UNSUPPORTED;
    if (s->rht && C % s->rht != 0) return HS_ERR_UNSUPPORTED;

    hs_qk q;
    memset(&q, 0, sizeof q);
    q.s = s;
    q.x = x;
    q.ld = ld;
    q.R = R;
    q.C = C;
    q.transpose = transpose != 0;
    q.W = s->group == HS_GROUP_BLOCK ? s->block : C;
    q.gpr = gpr;
    q.chunk = s->group == HS_GROUP_BLOCK ? HS_QK_CHUNK : C;
    q.tile2d = s->tile2d;
    q.sr = s->rounding == HS_ROUND_SR;
    q.prescale = hs_spec_sr_prescaled(s);
    q.key = hs_rng_key(s->seed, s->stream);
    q.s_enc = 1.0f;
    q.rht = s->rht;
    if (s->rht) {
        hs_rht_signs(s->rht_seed, s->rht, q.signs);
        q.nrm = hs_rht_norm(s->rht);
    }
    const int64_t nbands = (R + HS_QK_LANES - 1) / HS_QK_LANES;
    /* t: chunk (+ 8 rows of zero padding) × 16 floats; ob: 64 bytes per 8 elements, read back
     * in groups of four vectors */
    const size_t tbytes = (size_t)(q.chunk + 8) * HS_QK_LANES * sizeof(float);
    const size_t obytes = (size_t)((q.chunk + 31) / 32 * 4 + 4) * 64;
    const int par = R * C > (1 << 15);
    int nomem = 0;

    if (s->two_level) {
        float amax;
        if (hs_bands_finite_amax(nbands, tbytes, par, band_amax, &q, &amax) != 0)
            return HS_ERR_UNSUPPORTED;
        q.s_enc = hs_two_level_senc(s, amax);
    }

    int64_t halved = 0;
    /* Column-wise, the x rows must be read in long contiguous runs (measured on 4096 × 4096:
     * 512 bytes per row run at half the speed of 2 KB). Block groups: a task is SB adjacent
     * bands walked chunk by chunk (each chunk reads SB·64 bytes of each x row). One group per
     * row: a task preloads the whole tiles of SB bands (≤ 8 MB) in one pass over x. Row-wise
     * tasks are single bands. */
    int64_t SB = 1;
    const int threads = par ? omp_get_max_threads() : 1;
    const int rows_t = q.transpose && s->group == HS_GROUP_ROW;
    if (q.transpose) {
        SB = nbands / (4 * (int64_t)threads);
        int64_t cap = rows_t ? ((int64_t)8 << 20) / ((C + 8) * HS_QK_LANES * 4) : 32;
        if (cap > 32) cap = 32;
        SB = SB > cap ? cap : SB;
        SB = SB < 1 ? 1 : SB;
    }
    const int64_t ntasks = (nbands + SB - 1) / SB;
    const int64_t tstride = (C + 8) * HS_QK_LANES;
    const size_t tb = rows_t ? (size_t)SB * (size_t)tstride * sizeof(float) : tbytes;
#pragma omp parallel if (par) reduction(+ : halved)
    {
        float *t = hs_workspace(2, tb);
        uint8_t *ob = hs_workspace(3, obytes);
        if (!t || !ob) {
#pragma omp atomic write
            nomem = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t k = 0; k < ntasks; k++) {
            if (!t || !ob) continue;
            int64_t b0 = k * SB, b1 = (k + 1) * SB < nbands ? (k + 1) * SB : nbands;
            if (rows_t) {
                hs_qk_load_rows_t(&q, b0 * HS_QK_LANES, (int)(b1 - b0), t, tstride);
                for (int64_t b = b0; b < b1; b++) {
                    int64_t r0 = b * HS_QK_LANES;
                    int nb = R - r0 < HS_QK_LANES ? (int)(R - r0) : HS_QK_LANES;
                    halved += hs_qk_band(&q, out, r0, nb, 0, C, t + (b - b0) * tstride, ob, 1);
                }
                continue;
            }
            for (int64_t c0 = 0; c0 < C; c0 += SB > 1 ? q.chunk : C)
                for (int64_t b = b0; b < b1; b++) {
                    int64_t r0 = b * HS_QK_LANES;
                    int nb = R - r0 < HS_QK_LANES ? (int)(R - r0) : HS_QK_LANES;
                    int64_t ce = SB > 1 && c0 + q.chunk < C ? c0 + q.chunk : C;
                    halved += hs_qk_band(&q, out, r0, nb, c0, ce, t, ob, 0);
                }
        }
    }
    if (nomem) return hs_fail(HS_ERR_NOMEM, "quantize: out of memory for kernel scratch");
    out->spec = *s;
    out->tensor_scale = q.s_enc;
    out->groups_halved = halved;
    out->groups_total = s->tile2d ? nbands * gpr : R * gpr;
    return HS_OK;
}

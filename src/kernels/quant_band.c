/* quant_band.c: the ISA-independent driver of the E2M1 band quantizer (quant_band.h): argument
 * checks, the call's constants (groups, chunk, SR key, RHT signs), the NVFP4 tensor scale from
 * the bands' finite amax, the split of the bands into tasks, OpenMP. The ISA's table supplies
 * the band kernels. Every band is computed alone, so neither the task split nor the thread
 * count changes a byte; the tensor amax is a max, which no order of reading or reduction
 * changes.
 */
#include <omp.h>
#include <string.h>

#include "core/quant_common.h"
#include "core/rht_impl.h"
#include "core/scale_rules.h"
#include "halfs/rng.h"
#include "kernels/kernels.h"
#include "kernels/quant_band.h"

typedef struct {
    const hs_qband_ops *ops;
    const hs_qk *q;
} amax_ctx;

/* band b's finite amax (bands of L rows), for hs_bands_finite_amax */
static float band_amax(const void *ctx, int64_t b, float *t) {
    const amax_ctx *a = ctx;
    const int L = a->ops->lanes;
    const int64_t r0 = b * L;
    const int nb = a->q->R - r0 < L ? (int)(a->q->R - r0) : L;
    return a->ops->finite_amax(a->q, r0, nb, 0, a->q->C, t);
}

/* Adjacent bands per column-wise task: about four tasks per thread, at most 32 bands. */
static int64_t bands_per_task(int64_t nbands, int threads) {
    int64_t SB = nbands / (4 * (int64_t)threads);
    return SB > 32 ? 32 : SB < 1 ? 1 : SB;
}

/* NVFP4's tensor amax: the finite amax of every (rotated) value, a max, so taken in whatever
 * order reads x best. Without an RHT: along x's own rows, whatever the orientation. Row-wise
 * with an RHT: band by band. Column-wise with an RHT: tasks of adjacent bands walked chunk by
 * chunk, as the quantization reads them. Returns 0, or −1 without memory for the scratch. */
static int tensor_amax(const hs_qband_ops *ops, const hs_qk *q, int64_t rows, int64_t cols,
                       int par, size_t tbytes, float *amax) {
    const int L = ops->lanes;
    hs_qk qa = *q;
    if (!q->rht) {
        qa.transpose = 0;
        qa.R = rows;
        qa.C = cols;
    }
    if (!qa.transpose) {
        amax_ctx ac = {ops, &qa};
        return hs_bands_finite_amax((qa.R + L - 1) / L, tbytes, par, band_amax, &ac, amax);
    }
    const int64_t nbands = (q->R + L - 1) / L;
    const int64_t SB = bands_per_task(nbands, par ? omp_get_max_threads() : 1);
    const int64_t ntasks = (nbands + SB - 1) / SB;
    float a = 0.0f;
    int nomem = 0;
#pragma omp parallel if (par) reduction(max : a) reduction(| : nomem)
    {
        float *t = hs_workspace(2, tbytes);
        nomem = !t;
#pragma omp for schedule(dynamic, 1)
        for (int64_t k = 0; k < ntasks; k++) {
            if (!t) continue;
            const int64_t b0 = k * SB, b1 = (k + 1) * SB < nbands ? (k + 1) * SB : nbands;
            for (int64_t c0 = 0; c0 < q->C; c0 += q->chunk)
                for (int64_t b = b0; b < b1; b++) {
                    const int64_t r0 = b * L, ce = c0 + q->chunk < q->C ? c0 + q->chunk : q->C;
                    const int nb = q->R - r0 < L ? (int)(q->R - r0) : L;
                    const float m = ops->finite_amax(q, r0, nb, c0, ce, t);
                    a = m > a ? m : a;
                }
        }
    }
    *amax = a;
    return nomem ? -1 : 0;
}

hs_status hs_qband_quantize(const hs_qband_ops *ops, const hs_quant_spec *s, const float *x,
                            int64_t rows, int64_t cols, int64_t ld, int transpose, hs_packed *out) {
    /* Anything unusual (including every error) goes to the reference, which reports it. */
    if (!s || !x || !out || hs_quant_spec_validate(s) != HS_OK) return HS_ERR_UNSUPPORTED;
    if (rows < 1 || cols < 1 || ld < cols) return HS_ERR_UNSUPPORTED;
    const int64_t R = transpose ? cols : rows, C = transpose ? rows : cols;
    if (!ops->covers(s, C)) return HS_ERR_UNSUPPORTED;
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
    const int L = ops->lanes;
    /* t: chunk (+ 8 rows of zero padding) × 16 floats (one band of 16 lanes, or the two 8-lane
     * halves of a 2D tile's rows); ob: what the ISA asks for */
    const size_t tbytes = (size_t)(q.chunk + 8) * HS_QK_MAXLANES * sizeof(float);
    const size_t obytes = ops->ob_bytes ? ops->ob_bytes(q.chunk) : 64;
    const int par = R * C > (1 << 15);
    int nomem = 0;

    if (s->two_level) {
        float amax;
        if (tensor_amax(ops, &q, rows, cols, par, tbytes, &amax) != 0) return HS_ERR_UNSUPPORTED;
        q.s_enc = hs_two_level_senc(s, amax);
    }

    /* A unit is what one band call covers: L rows, or the 16 rows of a row of 2D tiles. */
    const int unit = s->tile2d ? HS_QK_MAXLANES : L;
    const int64_t nbands = (R + unit - 1) / unit;
    int64_t halved = 0;
    /* Column-wise, the x rows must be read in long contiguous runs (measured on 4096 × 4096
     * with 16 lanes: 512 bytes per row run at half the speed of 2 KB). Block groups: a task is
     * SB adjacent bands walked chunk by chunk (each chunk reads SB·L floats of each x row). One
     * group per row, where the ISA can preload: a task preloads the whole tiles of SB bands
     * (≤ 8 MB) in one pass over x. Row-wise tasks are single bands. */
    int64_t SB = 1;
    const int threads = par ? omp_get_max_threads() : 1;
    const int rows_t = q.transpose && s->group == HS_GROUP_ROW && ops->load_rows_t;
    const int64_t tstride = (C + 8) * L;
    if (q.transpose) {
        SB = bands_per_task(nbands, threads);
        const int64_t cap = rows_t ? ((int64_t)8 << 20) / (tstride * 4) : 32;
        SB = SB > cap ? cap : SB;
        SB = SB < 1 ? 1 : SB;
    }
    const int64_t ntasks = (nbands + SB - 1) / SB;
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
                ops->load_rows_t(&q, b0 * unit, (int)(b1 - b0), t, tstride);
                for (int64_t b = b0; b < b1; b++) {
                    int64_t r0 = b * unit;
                    int nb = R - r0 < unit ? (int)(R - r0) : unit;
                    halved += ops->band(&q, out, r0, nb, 0, C, t + (b - b0) * tstride, ob, 1);
                }
                continue;
            }
            for (int64_t c0 = 0; c0 < C; c0 += SB > 1 ? q.chunk : C)
                for (int64_t b = b0; b < b1; b++) {
                    int64_t r0 = b * unit;
                    int nb = R - r0 < unit ? (int)(R - r0) : unit;
                    int64_t ce = SB > 1 && c0 + q.chunk < C ? c0 + q.chunk : C;
                    halved += ops->band(&q, out, r0, nb, c0, ce, t, ob, 0);
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

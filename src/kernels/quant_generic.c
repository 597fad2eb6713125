/* quant_generic.c: the ISA-independent driver of the generic SIMD quantizer / dequantizer
 * (quant_generic.h): E4M3, E5M2, INT4, INT8 with E8M0 or FP32 scales, BF16 and FP32 rows, and the
 * E2M1 specs the E2M1 band kernels decline (RNA/RTS, per-tensor groups, the AVX2 continuous
 * `mse`, very long rows). Byte-identical to hs_quantize_ref / hs_dequantize_ref.
 *
 * Structure follows the reference (core/quantize_ref.c): bands of 16 packed rows, OpenMP over
 * bands, every value a function of its own band (and of the NVFP4 tensor amax, a max: order
 * free), SR indices r·C + c of the packed element. A band's rows are read in place (row-wise, no
 * RHT) or gathered into a per-thread buffer (column-wise, or RHT: the reference's hs_rht_vec).
 * Per group: amax (vector op), then the scale:
 *  - rules fixed by the amax alone (ocp, ceil, rceil, even, half, max) are computed from it:
 *    E8M0 by the reference's own decision (core/quant_common.h), FP32 in a few exact float steps
 *    (the reference's cont_scale); UE4M3 by hs_scale_choose on the one-element group {amax};
 *  - halfs, halfs-sigma, mse build their candidates the same way and compare exact double error
 *    sums from the vector op `sse` (the reference's summation order), in the reference's order
 *    with its tie rules; 4over6 calls hs_scale_choose on the group itself.
 * 2D tiles gather the tile in its canonical order (row-major over x) only for the rules that
 * sum over it. Elements are encoded by the vector op `encode`.
 */
#include "kernels/quant_generic.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/formats_table.h"
#include "core/quant_common.h"
#include "core/rht_impl.h"
#include "core/scale_rules.h"
#include "halfs/codec.h"
#include "halfs/rng.h"
#include "kernels/quant_kernels.h"

#define BAND 16
static inline uint32_t f2u(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static inline float u2f(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

typedef struct {
    const hs_qg_ops *ops;
    const hs_quant_spec *s;
    hs_quant_spec s_top, s_half; /* s with rule ceil/max and half (one-element groups) */
    hs_qg_fmt f;
    const float *x;
    int64_t ld, R, C, W, gpr;
    int transpose, bits;
    float s_enc;
    float signs[128];
} qw;

/* ---------------------------------------------------------------- scales */
/* A rule decided by the amax a (finite) alone: ocp, ceil, rceil, even, half (E8M0);
 * max, half (FP32, UE4M3). Mirrors choose_e8m0 / choose_cont of core/scale_rules.c. */
static hs_group_scale scale_of_amax(const qw *q, hs_rule rule, float a) {
    const hs_quant_spec *s = q->s;
    if (s->scale_fmt == HS_SCALE_E8M0) {
        if (a == 0.0f) return hs_e8m0_scale(HS_E8M0_EMIN, HS_E8M0_EMIN);
        int e_ceil;
        int e = hs_e8m0_rule_exp(hs_elem_info(s->elem), rule, a, &e_ceil);
        return hs_e8m0_scale(e, e_ceil);
    }
    if (s->scale_fmt == HS_SCALE_FP32) {
        /* cont_scale(a, T) with T = max (or 2·max for half): X = a/T, at least FLT_MIN */
        const float mx = hs_elem_info(s->elem)->max;
        float Xm = a / mx, X = rule == HS_RULE_HALF ? a / (2.0f * mx) : Xm;
        if (!(Xm >= FLT_MIN)) Xm = FLT_MIN;
        if (!(X >= FLT_MIN)) X = FLT_MIN;
        hs_group_scale g = {0};
        g.stored = f2u(X);
        g.enc_mul = 1.0f / X;
        g.dec_mul = X;
        g.halved = X < Xm;
        return g;
    }
    /* UE4M3: the reference on the one-element group {a} (same amax, same decision) */
    return hs_scale_choose(rule == HS_RULE_HALF ? &q->s_half : &q->s_top, &a, 1, q->s_enc);
}

static double sse_of(const qw *q, const float *v, int64_t n, const hs_group_scale *g) {
    return q->ops->sse(&q->f, v, n, g->enc_mul, g->dec_mul);
}

/* The scale of group v[0..n) (canonical order) with amax bits am. */
static hs_group_scale choose(const qw *q, const float *v, int64_t n, uint32_t am) {
    const hs_quant_spec *s = q->s;
    float a = u2f(am);
    if (am >= 0x7F800000u) return hs_scale_choose(s, &a, 1, q->s_enc); /* NaN/Inf: NaN scale */
    const hs_rule top = s->scale_fmt == HS_SCALE_E8M0 ? HS_RULE_CEIL : HS_RULE_MAX;
    switch (s->rule) {
    case HS_RULE_HALFS: { /* half only if strictly lower squared error */
        hs_group_scale c = scale_of_amax(q, top, a), h = scale_of_amax(q, HS_RULE_HALF, a);
        if (h.stored != c.stored && sse_of(q, v, n, &h) < sse_of(q, v, n, &c)) return h;
        return c;
    }
    case HS_RULE_HALFS_SIGMA: { /* E8M0 only; the reference's closed-form test, in double */
        if (a == 0.0f) return scale_of_amax(q, HS_RULE_CEIL, a);
        const double c = 4.147;
        double sigma = sqrt(q->ops->sumsq(v, n) / (double)n);
        double cs = c * sigma, ad = (double)a;
        return scale_of_amax(q, fabs(0.5 * ad - cs) < fabs(ad - cs) ? HS_RULE_HALF : HS_RULE_CEIL, a);
    }
    case HS_RULE_MSE: {
        hs_group_scale g = scale_of_amax(q, top, a);
        if (s->scale_fmt == HS_SCALE_E8M0) {
            if (a == 0.0f) return g;
            const int e_ceil = (int)g.stored - 127;
            double best = sse_of(q, v, n, &g);
            for (int k = 1; k <= 3; k++) {
                if (e_ceil - k < HS_E8M0_EMIN) break; /* clamped candidates repeat the last one */
                hs_group_scale c = hs_e8m0_scale(e_ceil - k, e_ceil);
                double e = sse_of(q, v, n, &c);
                if (e < best) { /* ties keep the larger scale */
                    best = e;
                    g = c;
                }
            }
            return g;
        }
        /* continuous: clips t = fl(r·a), r = fl((30+k)/100), k = 69 .. 0, each mapped to the
         * element max (= rule max on the amax t); repeats of the previous scale skipped */
        const hs_group_scale gmax = g;
        double best = sse_of(q, v, n, &gmax);
        uint32_t prev = gmax.stored;
        for (int k = 69; k >= 0; k--) {
            float r = (float)(30 + k) / 100.0f;
            hs_group_scale c = scale_of_amax(q, HS_RULE_MAX, r * a);
            if (c.stored == prev) continue;
            prev = c.stored;
            double e = sse_of(q, v, n, &c);
            if (e < best) {
                best = e;
                g = c;
            }
        }
        g.halved = g.dec_mul < gmax.dec_mul;
        return g;
    }
    case HS_RULE_4OVER6: return hs_scale_choose(s, v, n, q->s_enc);
    default: return scale_of_amax(q, s->rule, a);
    }
}

static inline int sums_over_group(hs_rule r) {
    return r == HS_RULE_HALFS || r == HS_RULE_HALFS_SIGMA || r == HS_RULE_MSE || r == HS_RULE_4OVER6;
}

static inline void put_scale(const qw *q, hs_packed *out, int64_t r, int64_t g, uint32_t stored) {
    int64_t i = r * out->groups_per_row + g;
    if (q->s->scale_fmt == HS_SCALE_FP32) memcpy((float *)out->scales + i, &stored, 4);
    else ((uint8_t *)out->scales)[i] = (uint8_t)stored;
}

/* ---------------------------------------------------------------- bands */
/* Pointers to packed rows r0 .. r0+nb−1 (RHT applied): x itself, or gathered into buf (nb × C). */
static void band_rows(const qw *q, int64_t r0, int nb, float *buf, const float **rows) {
    const int64_t C = q->C;
    const int rht = q->s->rht;
    if (q->transpose) q->ops->load_t(q->x, q->ld, r0, nb, C, buf);
    else if (rht)
        for (int i = 0; i < nb; i++) memcpy(buf + i * C, q->x + (r0 + i) * q->ld, (size_t)C * sizeof(float));
    for (int i = 0; i < nb; i++) {
        if (q->transpose || rht) {
            rows[i] = buf + i * C;
            if (rht) hs_rht_vec(buf + i * C, C, rht, q->signs, 0);
        } else {
            rows[i] = q->x + (r0 + i) * q->ld;
        }
    }
}

static inline uint8_t *code_at(const qw *q, hs_packed *out, int64_t r, int64_t c) {
    return out->codes + r * out->code_stride + c * q->bits / 8; /* c even for 4-bit */
}

static void encode_group(const qw *q, hs_packed *out, const float *v, int64_t n,
                         const hs_group_scale *g, int64_t r, int64_t c0) {
    if (g->nonfinite) return; /* codes stay 0 */
    q->ops->encode(&q->f, v, n, g->enc_mul, (uint64_t)r * (uint64_t)q->C + (uint64_t)c0,
                   code_at(q, out, r, c0));
}

/* One band of packed rows; returns the groups (tiles) halved. */
static int64_t quant_band(const qw *q, hs_packed *out, int64_t r0, int nb, float *buf) {
    const hs_quant_spec *s = q->s;
    const int64_t C = q->C, W = q->W;
    const float *rows[BAND];
    band_rows(q, r0, nb, buf, rows);
    for (int i = 0; i < nb; i++) memset(out->codes + (r0 + i) * out->code_stride, 0, (size_t)out->code_stride);
    if (s->scale_fmt == HS_SCALE_NONE) {
        for (int i = 0; i < nb; i++) q->ops->plain(s->elem, rows[i], C, out->codes + (r0 + i) * out->code_stride);
        return 0;
    }
    int64_t halved = 0;
    if (s->tile2d) { /* one scale per tile of nb × w (w ≤ 16) */
        const int64_t T = s->tile2d;
        float tile[BAND * BAND];
        for (int64_t g = 0; g * T < C; g++) {
            const int64_t c0 = g * T, w = C - c0 < T ? C - c0 : T;
            uint32_t am = 0;
            for (int i = 0; i < nb; i++) {
                uint32_t m = q->ops->amax(rows[i] + c0, w);
                am = m > am ? m : am;
            }
            int64_t k = 0;
            if (sums_over_group(s->rule)) { /* canonical order: row-major over x */
                if (!q->transpose) {
                    for (int i = 0; i < nb; i++)
                        for (int64_t j = 0; j < w; j++) tile[k++] = rows[i][c0 + j];
                } else {
                    for (int64_t j = 0; j < w; j++)
                        for (int i = 0; i < nb; i++) tile[k++] = rows[i][c0 + j];
                }
            }
            hs_group_scale gs = choose(q, tile, nb * w, am);
            halved += gs.halved;
            for (int i = 0; i < nb; i++) {
                put_scale(q, out, r0 + i, g, gs.stored); /* replicated on each row of the tile */
                encode_group(q, out, rows[i] + c0, w, &gs, r0 + i, c0);
            }
        }
        return halved;
    }
    for (int i = 0; i < nb; i++)
        for (int64_t g = 0; g * W < C; g++) {
            const int64_t c0 = g * W, n = C - c0 < W ? C - c0 : W;
            const float *v = rows[i] + c0;
            hs_group_scale gs = choose(q, v, n, q->ops->amax(v, n));
            halved += gs.halved;
            put_scale(q, out, r0 + i, g, gs.stored);
            encode_group(q, out, v, n, &gs, r0 + i, c0);
        }
    return halved;
}

/* band b's finite amax (NVFP4 tensor scale), t = hs_workspace(2, ...) of the calling thread */
static float band_finite_amax(const void *ctx, int64_t b, float *t) {
    const qw *q = ctx;
    const int64_t r0 = b * BAND;
    const int nb = q->R - r0 < BAND ? (int)(q->R - r0) : BAND;
    const float *rows[BAND];
    band_rows(q, r0, nb, t, rows);
    float m = 0.0f;
    for (int i = 0; i < nb; i++) {
        float a = q->ops->finite_amax(rows[i], q->C);
        m = a > m ? a : m;
    }
    return m;
}

/* The element format of spec s as an encoding grid (core/codec.c: E2M1 emin 0 (0.5 steps below
 * 1), E4M3 bias 7 (emin −6), E5M2 bias 15 (emin −14)). */
static void fmt_of(const hs_quant_spec *s, hs_qg_fmt *f) {
    memset(f, 0, sizeof *f);
    f->elem = s->elem;
    f->bits = hs_elem_info(s->elem)->bits;
    f->max = hs_elem_info(s->elem)->max;
    f->mbits = hs_elem_info(s->elem)->mbits;
    f->rounding = s->rounding;
    f->prescale = hs_spec_sr_prescaled(s);
    f->key = hs_rng_key(s->seed, s->stream);
    switch (s->elem) {
    case HS_ELEM_E2M1: f->emin = 0; f->sign = 0x8; break;
    case HS_ELEM_E4M3: f->emin = -6; f->sign = 0x80; break;
    case HS_ELEM_E5M2: f->emin = -14; f->sign = 0x80; break;
    default: f->is_int = 1; f->mbits = 0; break;
    }
}

hs_status hs_qg_quantize(const hs_qg_ops *ops, int e2m1, const hs_quant_spec *s, const float *x,
                         int64_t rows, int64_t cols, int64_t ld, int transpose, hs_packed *out) {
    /* anything unusual goes to the reference, which reports it */
    hs_quant_plan pl;
    if (hs_quant_plan_init(&pl, s, x, rows, cols, ld, transpose, out) != HS_OK) return HS_ERR_UNSUPPORTED;
    if (s->elem == HS_ELEM_E2M1 && !e2m1) return HS_ERR_UNSUPPORTED;
    const int64_t R = pl.rows, C = pl.cols, gpr = pl.groups_per_row;

    qw q;
    memset(&q, 0, sizeof q);
    q.ops = ops;
    q.s = s;
    q.s_top = *s;
    q.s_top.rule = s->scale_fmt == HS_SCALE_E8M0 ? HS_RULE_CEIL : HS_RULE_MAX;
    q.s_half = *s;
    q.s_half.rule = HS_RULE_HALF;
    fmt_of(s, &q.f);
    q.x = x;
    q.ld = ld;
    q.R = R;
    q.C = C;
    q.W = s->group == HS_GROUP_BLOCK ? s->block : C;
    q.gpr = gpr;
    q.transpose = transpose != 0;
    q.bits = hs_elem_info(s->elem)->bits;
    q.s_enc = 1.0f;
    if (s->rht) hs_rht_signs(s->rht_seed, s->rht, q.signs);

    const int64_t nbands = (R + BAND - 1) / BAND;
    const int par = R * C > (1 << 15);
    const size_t bbytes = (size_t)BAND * (size_t)C * sizeof(float);
    if (s->two_level) {
        float amax;
        if (hs_bands_finite_amax(nbands, bbytes, par, band_finite_amax, &q, &amax) != 0)
            return HS_ERR_UNSUPPORTED;
        q.s_enc = hs_two_level_senc(s, amax);
    }

    if (s->group == HS_GROUP_TENSOR && s->scale_fmt != HS_SCALE_NONE) {
        /* one group: the whole packed matrix in row-major order (gathered, as the reference) */
        float *all = malloc((size_t)R * (size_t)C * sizeof(float));
        if (!all) return HS_ERR_UNSUPPORTED;
        for (int64_t b = 0; b < nbands; b++) {
            int64_t r0 = b * BAND;
            int nb = R - r0 < BAND ? (int)(R - r0) : BAND;
            const float *rw[BAND];
            band_rows(&q, r0, nb, all + r0 * C, rw);
            for (int i = 0; i < nb; i++)
                if (rw[i] != all + (r0 + i) * C) memcpy(all + (r0 + i) * C, rw[i], (size_t)C * sizeof(float));
        }
        hs_group_scale gs = choose(&q, all, R * C, ops->amax(all, R * C));
#pragma omp parallel for schedule(static) if (par)
        for (int64_t r = 0; r < R; r++) {
            memset(out->codes + r * out->code_stride, 0, (size_t)out->code_stride);
            put_scale(&q, out, r, 0, gs.stored); /* replicated on every row */
            encode_group(&q, out, all + r * C, C, &gs, r, 0);
        }
        free(all);
        out->spec = *s;
        out->tensor_scale = q.s_enc;
        out->groups_halved = gs.halved;
        out->groups_total = 1;
        return HS_OK;
    }

    int64_t halved = 0;
    int nomem = 0;
    const int need_buf = q.transpose || s->rht;
#pragma omp parallel if (par) reduction(+ : halved)
    {
        float *buf = need_buf ? hs_workspace(2, bbytes) : NULL;
        if (need_buf && !buf) {
#pragma omp atomic write
            nomem = 1;
        }
#pragma omp for schedule(static)
        for (int64_t b = 0; b < nbands; b++) {
            if (need_buf && !buf) continue;
            int64_t r0 = b * BAND;
            int nb = R - r0 < BAND ? (int)(R - r0) : BAND;
            halved += quant_band(&q, out, r0, nb, buf);
        }
    }
    if (nomem) return hs_fail(HS_ERR_NOMEM, "quantize: out of memory for kernel scratch");
    out->spec = *s;
    out->tensor_scale = q.s_enc;
    out->groups_halved = halved;
    if (s->scale_fmt == HS_SCALE_NONE) out->groups_total = 0;
    else if (s->tile2d) out->groups_total = nbands * gpr;
    else out->groups_total = R * gpr;
    return HS_OK;
}

/* ---------------------------------------------------------------- dequantize */
hs_status hs_qg_dequantize(const hs_qg_ops *ops, const hs_packed *p, float *y, int64_t ldy) {
    hs_dequant_plan pl;
    if (hs_dequant_plan_init(&pl, p, y, ldy) != HS_OK) return HS_ERR_UNSUPPORTED;
    const hs_quant_spec *s = &p->spec;
    const int64_t R = p->rows, C = p->cols;
    const int bits = hs_elem_info(s->elem)->bits;
    const int prescale = hs_spec_sr_prescaled(s);
    const int64_t W = s->group == HS_GROUP_BLOCK ? s->block : C, gpr = p->groups_per_row;
    /* the reference's floats: element values by hs_elem_value, byte scales by hs_scale_dec_mul */
    float vtab[256], mtab[256];
    if (s->scale_fmt != HS_SCALE_NONE)
        for (int c = 0; c < (bits == 4 ? 16 : 256); c++) vtab[c] = hs_elem_value(s->elem, (uint8_t)c);
    if (s->scale_fmt == HS_SCALE_E8M0 || s->scale_fmt == HS_SCALE_UE4M3)
        for (int b = 0; b < 256; b++) mtab[b] = hs_scale_dec_mul(s->scale_fmt, (uint32_t)b, p->tensor_scale);
#pragma omp parallel for schedule(static) if (R * C > (1 << 15))
    for (int64_t r = 0; r < R; r++) {
        const uint8_t *row = p->codes + r * p->code_stride;
        float *yr = y + r * ldy;
        if (s->scale_fmt == HS_SCALE_NONE) {
            ops->decode_plain(s->elem, row, C, yr);
            continue;
        }
        for (int64_t g = 0; g < gpr; g++) {
            const int64_t c0 = g * W, n = C - c0 < W ? C - c0 : W;
            float m;
            if (s->scale_fmt == HS_SCALE_FP32) memcpy(&m, (const float *)p->scales + r * gpr + g, 4);
            else m = mtab[((const uint8_t *)p->scales)[r * gpr + g]];
            ops->decode(bits, vtab, row + c0 * bits / 8, n, m, prescale, yr + c0);
        }
    }
    return HS_OK;
}

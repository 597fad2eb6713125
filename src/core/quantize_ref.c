/* quantize_ref.c: packed tensors, the reference (scalar) quantizer and dequantize
 * (halfs/quant.h; docs/FORMATS.md §4, §6, §9 and "Arithmetic of the reference quantizer").
 *
 * hs_quantize_ref is the contract every SIMD quantizer matches byte for byte. It is one generic
 * path driven by the format table: for each packed row (groups along it), gather the row
 * (transposing if asked), apply the RHT, then for each group choose its scale
 * (scale_rules.c) and encode the elements. Rows are processed in bands of 16 (the 2D tile
 * height, and 16 source rows per cache line when transposing). The work is split over bands with
 * OpenMP; every value is a function of its own band only (and of the tensor-level amax, reduced
 * in band order), and SR draws its random numbers from (seed, stream, r·cols + c) of the packed
 * element, so the result never depends on the number of threads.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/quant_common.h"
#include "formats_table.h"
#include "halfs/codec.h"
#include "halfs/quant.h"
#include "halfs/rht.h"
#include "halfs/rng.h"
#include "rht_impl.h"
#include "scale_rules.h"

#define BAND 16                      /* packed rows per unit of work (= the 2D tile size) */
#define HS_MAX_DIM ((int64_t)1 << 40) /* a sanity bound on rows and cols */

/* ---------------------------------------------------------------- layout */
/* (code stride and groups per row: core/quant_common.h) */
/* group width along a packed row (the last group of a row may be shorter) */
static int64_t group_width_of(const hs_quant_spec *s, int64_t cols) {
    return s->group == HS_GROUP_BLOCK ? s->block : cols;
}

static int layout_sizes(const hs_quant_spec *s, int64_t rows, int64_t cols, size_t *codes_bytes,
                        size_t *scales_bytes) {
    if (rows < 1 || cols < 1 || rows > HS_MAX_DIM || cols > HS_MAX_DIM) return 0;
    size_t cb, sb, n;
    if (__builtin_mul_overflow((size_t)rows, (size_t)hs_code_stride(s, cols), &cb)) return 0;
    if (__builtin_mul_overflow((size_t)rows, (size_t)hs_groups_per_row(s, cols), &n)) return 0;
    if (__builtin_mul_overflow(n, (size_t)hs_scale_info(s->scale_fmt)->bytes, &sb)) return 0;
    sb = (sb + 63) / 64 * 64;
    if (cb + sb < cb || cb + sb > ((size_t)1 << 46)) return 0;
    *codes_bytes = cb;
    *scales_bytes = sb;
    return 1;
}

size_t hs_packed_bytes(const hs_quant_spec *s, int64_t rows, int64_t cols) {
    size_t cb, sb;
    if (!s || hs_quant_spec_validate(s) != HS_OK) return 0;
    if (!layout_sizes(s, rows, cols, &cb, &sb)) return 0;
    return cb + sb;
}

hs_status hs_packed_alloc(hs_packed *p, const hs_quant_spec *s, int64_t rows, int64_t cols) {
    if (!p) return hs_fail(HS_ERR_INVALID_ARG, "packed tensor is NULL");
    memset(p, 0, sizeof *p);
    hs_status st = hs_quant_spec_validate(s);
    if (st != HS_OK) return st;
    size_t cb, sb;
    if (!layout_sizes(s, rows, cols, &cb, &sb))
        return hs_fail(HS_ERR_INVALID_ARG, "cannot allocate a packed %lld x %lld tensor",
                       (long long)rows, (long long)cols);
    /* One 64-byte-aligned block: codes (rows × code_stride) then scales. Zeroed, so padding
     * bytes are zero even before the first quantize. Why huge pages from 2 MiB on: on VMs where
     * the first touch of a fresh 4 KiB page costs ~11 µs, zeroing a new 8 MiB tensor page by
     * page takes longer than quantizing into it; 2 MiB pages make that a few faults. */
    const size_t bytes = cb + sb, huge = (size_t)2 << 20;
    void *mem = NULL;
    if (bytes >= huge) {
        if (posix_memalign(&mem, huge, bytes) != 0) mem = NULL;
        if (mem) (void)madvise(mem, bytes, MADV_HUGEPAGE);
    } else {
        mem = aligned_alloc(64, bytes);
    }
    uint8_t *buf = mem;
    if (!buf) return hs_fail(HS_ERR_NOMEM, "out of memory for a packed %lld x %lld tensor",
                             (long long)rows, (long long)cols);
    memset(buf, 0, bytes);
    p->spec = *s;
    p->rows = rows;
    p->cols = cols;
    p->groups_per_row = hs_groups_per_row(s, cols);
    p->code_stride = hs_code_stride(s, cols);
    p->codes = buf;
    p->scales = p->groups_per_row ? (void *)(buf + cb) : NULL;
    p->tensor_scale = 1.0f;
    return HS_OK;
}

void hs_packed_free(hs_packed *p) {
    if (!p) return;
    free(p->codes);
    p->codes = NULL;
    p->scales = NULL;
}

/* ---------------------------------------------------------------- element storage */
static inline void put_code(uint8_t *row, int bits, int64_t c, uint8_t code) {
    if (bits == 4) row[c >> 1] |= (uint8_t)((code & 0xF) << ((c & 1) * 4));
    else row[c] = code;
}

static inline uint8_t get_code(const uint8_t *row, int bits, int64_t c) {
    if (bits == 4) return (row[c >> 1] >> ((c & 1) * 4)) & 0xF;
    return row[c];
}

static inline void put_scale(hs_packed *p, int64_t r, int64_t g, uint32_t stored) {
    int64_t i = r * p->groups_per_row + g;
    if (p->spec.scale_fmt == HS_SCALE_FP32) memcpy((float *)p->scales + i, &stored, 4);
    else ((uint8_t *)p->scales)[i] = (uint8_t)stored;
}

static inline uint32_t get_scale(const hs_packed *p, int64_t r, int64_t g) {
    int64_t i = r * p->groups_per_row + g;
    uint32_t v;
    if (p->spec.scale_fmt == HS_SCALE_FP32) memcpy(&v, (const float *)p->scales + i, 4);
    else v = ((const uint8_t *)p->scales)[i];
    return v;
}

/* ---------------------------------------------------------------- quantize */
typedef struct {
    const hs_quant_spec *s;
    const float *x;
    int64_t ld, R, C;  /* packed shape R × C */
    int transpose;
    int bits;
    int prescale;
    uint64_t key;      /* SR key of (seed, stream) */
    float s_enc;       /* NVFP4 tensor scale (1 otherwise) */
    float signs[128];
} qctx;

/* Packed rows r0 .. r0+nb−1 into band (nb × C), RHT applied along each row. */
static void load_band(const qctx *q, int64_t r0, int64_t nb, float *band) {
    const int64_t C = q->C;
    if (!q->transpose) {
        for (int64_t i = 0; i < nb; i++) memcpy(band + i * C, q->x + (r0 + i) * q->ld, C * sizeof(float));
    } else {
        /* packed row r is column r of x: read nb consecutive floats of each x row */
        for (int64_t c = 0; c < C; c++) {
            const float *src = q->x + c * q->ld + r0;
            for (int64_t i = 0; i < nb; i++) band[i * C + c] = src[i];
        }
    }
    if (q->s->rht)
        for (int64_t i = 0; i < nb; i++) hs_rht_vec(band + i * C, C, q->s->rht, q->signs, 0);
}

/* Encode v[0..n) = packed elements (r, c0 .. c0+n−1) with the group's scale. */
static void encode_span(const qctx *q, const float *v, int64_t n, const hs_group_scale *g, int64_t r,
                        int64_t c0, uint8_t *row) {
    if (g->nonfinite) return; /* codes stay 0 (the row was zeroed) */
    const hs_quant_spec *s = q->s;
    const int sr = s->rounding == HS_ROUND_SR;
    for (int64_t i = 0; i < n; i++) {
        float z = v[i] * g->enc_mul;
        if (q->prescale) z *= HS_SR_PRESCALE;
        float u = sr ? hs_rng_uniform_key(q->key, (uint64_t)r * (uint64_t)q->C + (uint64_t)(c0 + i))
                     : 0.0f;
        put_code(row, q->bits, c0 + i, hs_elem_encode(s->elem, z, s->rounding, u));
    }
}

/* Unscaled formats: BF16 (RNE) or a copy of the FP32 bits, little-endian. */
static void encode_plain(const qctx *q, const float *v, uint8_t *row) {
    for (int64_t c = 0; c < q->C; c++) {
        if (q->s->elem == HS_ELEM_BF16) {
            uint16_t b = hs_bf16_encode(v[c]);
            row[2 * c] = (uint8_t)(b & 0xFF);
            row[2 * c + 1] = (uint8_t)(b >> 8);
        } else {
            uint32_t b;
            memcpy(&b, &v[c], 4);
            for (int k = 0; k < 4; k++) row[4 * c + k] = (uint8_t)(b >> (8 * k));
        }
    }
}

/* One band of packed rows with 1D groups (row or block) or 2D tiles; returns groups halved. */
static int64_t quantize_band(const qctx *q, hs_packed *out, int64_t r0, int64_t nb, float *band,
                             float *tile) {
    const hs_quant_spec *s = q->s;
    const int64_t C = q->C;
    load_band(q, r0, nb, band);
    for (int64_t i = 0; i < nb; i++) memset(out->codes + (r0 + i) * out->code_stride, 0, out->code_stride);
    if (s->scale_fmt == HS_SCALE_NONE) {
        for (int64_t i = 0; i < nb; i++) encode_plain(q, band + i * C, out->codes + (r0 + i) * out->code_stride);
        return 0;
    }
    int64_t halved = 0;
    if (s->tile2d) {
        const int64_t T = s->tile2d;
        for (int64_t g = 0; g * T < C; g++) {
            int64_t c0 = g * T, w = C - c0 < T ? C - c0 : T, k = 0;
            /* canonical order: row-major over the source matrix x, so W and its transposed
             * quantization sum the tile's errors in the same order */
            if (!q->transpose) {
                for (int64_t i = 0; i < nb; i++)
                    for (int64_t j = 0; j < w; j++) tile[k++] = band[i * C + c0 + j];
            } else {
                for (int64_t j = 0; j < w; j++)
                    for (int64_t i = 0; i < nb; i++) tile[k++] = band[i * C + c0 + j];
            }
            hs_group_scale gs = hs_scale_choose(s, tile, nb * w, q->s_enc);
            halved += gs.halved;
            for (int64_t i = 0; i < nb; i++) {
                put_scale(out, r0 + i, g, gs.stored); /* replicated on each row of the tile */
                encode_span(q, band + i * C + c0, w, &gs, r0 + i, c0,
                            out->codes + (r0 + i) * out->code_stride);
            }
        }
        return halved;
    }
    const int64_t W = group_width_of(s, C);
    for (int64_t i = 0; i < nb; i++) {
        const float *v = band + i * C;
        uint8_t *row = out->codes + (r0 + i) * out->code_stride;
        for (int64_t g = 0; g * W < C; g++) {
            int64_t c0 = g * W, n = C - c0 < W ? C - c0 : W;
            hs_group_scale gs = hs_scale_choose(s, v + c0, n, q->s_enc);
            halved += gs.halved;
            put_scale(out, r0 + i, g, gs.stored);
            encode_span(q, v + c0, n, &gs, r0 + i, c0, row);
        }
    }
    return halved;
}

static float finite_amax(const float *v, int64_t n) {
    float a = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        float t = fabsf(v[i]);
        if (t > a && t != INFINITY) a = t; /* NaN compares false */
    }
    return a;
}

hs_status hs_quantize_ref(const hs_quant_spec *s, const float *x, int64_t rows, int64_t cols,
                          int64_t ld, int transpose, hs_packed *out) {
    hs_status st = hs_quant_spec_validate(s);
    if (st != HS_OK) return st;
    if (!x || !out) return hs_fail(HS_ERR_INVALID_ARG, "quantize: x or out is NULL");
    if (rows < 1 || cols < 1 || ld < cols)
        return hs_fail(HS_ERR_INVALID_ARG, "quantize: bad shape %lld x %lld (ld %lld)",
                       (long long)rows, (long long)cols, (long long)ld);
    const int64_t R = transpose ? cols : rows, C = transpose ? rows : cols;
    if (out->rows != R || out->cols != C)
        return hs_fail(HS_ERR_INVALID_ARG,
                       "quantize: output is %lld x %lld, need %lld x %lld%s", (long long)out->rows,
                       (long long)out->cols, (long long)R, (long long)C,
                       transpose ? " (transposed)" : "");
    if (!out->codes || out->code_stride != hs_code_stride(s, C) ||
        out->groups_per_row != hs_groups_per_row(s, C) ||
        (out->groups_per_row && !out->scales) || !hs_scale_info(out->spec.scale_fmt) ||
        hs_scale_info(out->spec.scale_fmt)->bytes != hs_scale_info(s->scale_fmt)->bytes)
        return hs_fail(HS_ERR_INVALID_ARG,
                       "quantize: output was not allocated for this spec (hs_packed_alloc)");
    if (s->rht && C % s->rht != 0)
        return hs_fail(HS_ERR_INVALID_ARG,
                       "rht %d needs the group axis length (%lld) to be a multiple of %d",
                       (int)s->rht, (long long)C, (int)s->rht);

    qctx q;
    memset(&q, 0, sizeof q);
    q.s = s;
    q.x = x;
    q.ld = ld;
    q.R = R;
    q.C = C;
    q.transpose = transpose != 0;
    q.bits = hs_elem_info(s->elem)->bits;
    q.prescale = hs_spec_sr_prescaled(s);
    q.key = hs_rng_key(s->seed, s->stream);
    q.s_enc = 1.0f;
    if (s->rht) hs_rht_signs(s->rht_seed, s->rht, q.signs);

    out->spec = *s;
    out->tensor_scale = 1.0f;
    out->groups_halved = 0;
    const int64_t gpr = hs_groups_per_row(s, C);
    const int64_t nbands = (R + BAND - 1) / BAND;
    const int par = R * C > (1 << 15);
    int nomem = 0;

    /* NVFP4 level 2: the tensor amax over finite values, reduced in band order */
    if (s->two_level) {
        float *bandmax = malloc((size_t)nbands * sizeof(float));
        if (!bandmax) return hs_fail(HS_ERR_NOMEM, "quantize: out of memory");
#pragma omp parallel if (par)
        {
            float *band = malloc((size_t)BAND * C * sizeof(float));
            if (!band) {
#pragma omp atomic write
                nomem = 1;
            }
#pragma omp for schedule(static)
            for (int64_t b = 0; b < nbands; b++) {
                if (!band) continue;
                int64_t r0 = b * BAND, nb = R - r0 < BAND ? R - r0 : BAND;
                load_band(&q, r0, nb, band);
                bandmax[b] = finite_amax(band, nb * C);
            }
            free(band);
        }
        float amax = 0.0f;
        for (int64_t b = 0; b < nbands && !nomem; b++)
            if (bandmax[b] > amax) amax = bandmax[b];
        free(bandmax);
        if (nomem) return hs_fail(HS_ERR_NOMEM, "quantize: out of memory");
        q.s_enc = hs_two_level_senc(s, amax);
        out->tensor_scale = q.s_enc;
    }

    if (s->group == HS_GROUP_TENSOR && s->scale_fmt != HS_SCALE_NONE) {
        /* one group: the whole packed matrix, in row-major order */
        float *all = malloc((size_t)R * C * sizeof(float));
        if (!all) return hs_fail(HS_ERR_NOMEM, "quantize: out of memory for a per-tensor group");
        for (int64_t b = 0; b < nbands; b++) {
            int64_t r0 = b * BAND, nb = R - r0 < BAND ? R - r0 : BAND;
            load_band(&q, r0, nb, all + r0 * C);
        }
        hs_group_scale gs = hs_scale_choose(s, all, R * C, q.s_enc);
#pragma omp parallel for schedule(static) if (par)
        for (int64_t r = 0; r < R; r++) {
            uint8_t *row = out->codes + r * out->code_stride;
            memset(row, 0, out->code_stride);
            put_scale(out, r, 0, gs.stored); /* replicated on every row */
            encode_span(&q, all + r * C, C, &gs, r, 0, row);
        }
        free(all);
        out->groups_halved = gs.halved;
        out->groups_total = 1;
        return HS_OK;
    }

    int64_t halved = 0;
#pragma omp parallel if (par) reduction(+ : halved)
    {
        float *band = malloc((size_t)BAND * C * sizeof(float));
        float *tile = malloc((size_t)BAND * BAND * sizeof(float));
        if (!band || !tile) {
#pragma omp atomic write
            nomem = 1;
        }
#pragma omp for schedule(static)
        for (int64_t b = 0; b < nbands; b++) {
            if (!band || !tile) continue;
            int64_t r0 = b * BAND, nb = R - r0 < BAND ? R - r0 : BAND;
            halved += quantize_band(&q, out, r0, nb, band, tile);
        }
        free(band);
        free(tile);
    }
    if (nomem) return hs_fail(HS_ERR_NOMEM, "quantize: out of memory");
    out->groups_halved = halved;
    if (s->scale_fmt == HS_SCALE_NONE) out->groups_total = 0;
    else if (s->tile2d) out->groups_total = nbands * gpr;
    else out->groups_total = R * gpr;
    return HS_OK;
}

/* ---------------------------------------------------------------- dequantize */
/* the reference; hs_dequantize (src/kernels/dispatch.c) picks a SIMD kernel when one covers p */
hs_status hs_dequantize_ref(const hs_packed *p, float *y, int64_t ldy) {
    if (!p || !y) return hs_fail(HS_ERR_INVALID_ARG, "dequantize: p or y is NULL");
    hs_status st = hs_quant_spec_validate(&p->spec);
    if (st != HS_OK) return st;
    const hs_quant_spec *s = &p->spec;
    const int64_t R = p->rows, C = p->cols;
    if (R < 1 || C < 1 || ldy < C || !p->codes || p->code_stride != hs_code_stride(s, C) ||
        p->groups_per_row != hs_groups_per_row(s, C) || (p->groups_per_row && !p->scales))
        return hs_fail(HS_ERR_INVALID_ARG, "dequantize: malformed packed tensor or ldy < cols");
    const int bits = hs_elem_info(s->elem)->bits;
    const int prescale = hs_spec_sr_prescaled(s);
    const int64_t W = group_width_of(s, C);
#pragma omp parallel for schedule(static) if (R * C > (1 << 15))
    for (int64_t r = 0; r < R; r++) {
        const uint8_t *row = p->codes + r * p->code_stride;
        float *yr = y + r * ldy;
        if (s->scale_fmt == HS_SCALE_NONE) {
            for (int64_t c = 0; c < C; c++) {
                if (s->elem == HS_ELEM_BF16) {
                    yr[c] = hs_bf16_decode((uint16_t)(row[2 * c] | (row[2 * c + 1] << 8)));
                } else {
                    uint32_t b = 0;
                    for (int k = 0; k < 4; k++) b |= (uint32_t)row[4 * c + k] << (8 * k);
                    memcpy(&yr[c], &b, 4);
                }
            }
            continue;
        }
        for (int64_t g = 0; g * W < C; g++) {
            int64_t c0 = g * W, n = C - c0 < W ? C - c0 : W;
            float m = hs_scale_dec_mul(s->scale_fmt, get_scale(p, r, g), p->tensor_scale);
            for (int64_t c = c0; c < c0 + n; c++) {
                float v = hs_elem_value(s->elem, get_code(row, bits, c)) * m;
                yr[c] = prescale ? v * HS_SR_UNSCALE : v;
            }
        }
    }
    return HS_OK;
}

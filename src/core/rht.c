/* rht.c: random Hadamard transform (halfs/rht.h, docs/FORMATS.md §8).
 *
 * x ↦ x·D·H in blocks of d along one axis: D a diagonal of seeded random signs (the same for
 * every block), H the orthonormal Sylvester–Hadamard matrix, computed by the in-place fast
 * Walsh–Hadamard butterflies (d·log2 d additions per block). The exact operation order is fixed
 * in rht_impl.h so that the quantizers' fused RHT matches this one bit for bit.
 */
#include "halfs/rht.h"

#include <math.h>

#include "halfs/rng.h"
#include "rht_impl.h"

float hs_rht_sign(uint64_t seed, int i) {
    return (hs_rng_bits(seed, HS_RHT_STREAM, (uint64_t)i) >> 63) ? -1.0f : 1.0f;
}

void hs_rht_signs(uint64_t seed, int d, float *signs) {
    for (int i = 0; i < d; i++) signs[i] = hs_rht_sign(seed, i);
}

float hs_rht_norm(int d) { return (float)(1.0 / sqrt((double)d)); }

static void fwht(float *v, int d) {
    for (int h = 1; h < d; h *= 2)
        for (int i = 0; i < d; i += 2 * h)
            for (int j = i; j < i + h; j++) {
                float a = v[j], b = v[j + h];
                v[j] = a + b;
                v[j + h] = a - b;
            }
}

void hs_rht_vec(float *v, int64_t n, int d, const float *signs, int inverse) {
    const float nrm = hs_rht_norm(d);
    for (int64_t o = 0; o < n; o += d) {
        float *b = v + o;
        if (!inverse)
            for (int i = 0; i < d; i++) b[i] *= signs[i];
        fwht(b, d);
        for (int i = 0; i < d; i++) b[i] *= nrm;
        if (inverse)
            for (int i = 0; i < d; i++) b[i] *= signs[i];
    }
}

/* Along columns: the same per-element operations, with whole rows as the butterflies' operands
 * (so each column sees exactly the sequence hs_rht_vec would apply to it). */
static void rht_cols(float *x, int64_t rows, int64_t cols, int64_t ld, int d, const float *signs,
                     int inverse) {
    const float nrm = hs_rht_norm(d);
    for (int64_t o = 0; o < rows; o += d) {
        float *blk = x + o * ld;
        if (!inverse)
            for (int i = 0; i < d; i++)
                for (int64_t c = 0; c < cols; c++) blk[i * ld + c] *= signs[i];
        for (int h = 1; h < d; h *= 2)
            for (int i = 0; i < d; i += 2 * h)
                for (int j = i; j < i + h; j++) {
                    float *ra = blk + (int64_t)j * ld, *rb = blk + (int64_t)(j + h) * ld;
                    for (int64_t c = 0; c < cols; c++) {
                        float a = ra[c], b = rb[c];
                        ra[c] = a + b;
                        rb[c] = a - b;
                    }
                }
        for (int i = 0; i < d; i++)
            for (int64_t c = 0; c < cols; c++) blk[i * ld + c] *= nrm;
        if (inverse)
            for (int i = 0; i < d; i++)
                for (int64_t c = 0; c < cols; c++) blk[i * ld + c] *= signs[i];
    }
}

hs_status hs_rht_apply(float *x, int64_t rows, int64_t cols, int64_t ld, int d, uint64_t seed,
                       int along_cols, int inverse) {
    if (d != 16 && d != 32 && d != 64 && d != 128)
        return hs_fail(HS_ERR_INVALID_ARG, "rht size must be 16, 32, 64 or 128, got %d", d);
    if (rows < 0 || cols < 0 || ld < cols)
        return hs_fail(HS_ERR_INVALID_ARG, "rht: bad shape %lld x %lld (ld %lld)", (long long)rows,
                       (long long)cols, (long long)ld);
    if (rows == 0 || cols == 0) return HS_OK;
    if (!x) return hs_fail(HS_ERR_INVALID_ARG, "rht: x is NULL");
    int64_t axis = along_cols ? rows : cols;
    if (axis % d != 0)
        return hs_fail(HS_ERR_INVALID_ARG,
                       "rht %d needs the transformed axis (%lld %s) to be a multiple of %d", d,
                       (long long)axis, along_cols ? "rows" : "cols", d);
    float signs[128];
    hs_rht_signs(seed, d, signs);
    if (along_cols) {
        /* column blocks are independent: split the columns across threads */
        const int64_t chunk = 256;
        int64_t nchunks = (cols + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) if (rows * cols > (1 << 16))
        for (int64_t k = 0; k < nchunks; k++) {
            int64_t c0 = k * chunk, cn = cols - c0 < chunk ? cols - c0 : chunk;
            rht_cols(x + c0, rows, cn, ld, d, signs, inverse);
        }
    } else {
#pragma omp parallel for schedule(static) if (rows * cols > (1 << 16))
        for (int64_t r = 0; r < rows; r++) hs_rht_vec(x + r * ld, cols, d, signs, inverse);
    }
    return HS_OK;
}

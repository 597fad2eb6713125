/* stats.c: error statistics of a quantizer on a tensor (halfs/stats.h), what `halfs stats`
 * prints for every rule. It sits in src/analysis, above src/kernels, because it runs the
 * dispatched quantizer (the layer is described in src/analysis/qdq.c).
 *
 * The tensor is quantized once (hs_quantize), dequantized, un-rotated if the spec has an RHT,
 * and compared with the input in double precision, sequentially in row-major order so the
 * numbers do not depend on the thread count. Non-finite inputs are data, not errors: they are
 * counted in n_nonfinite and left out of every sum; finite inputs that share a group with a
 * NaN/Inf dequantize to NaN and are left out of the error sums too (they are still counted in n
 * and in the zero-collapse denominator).
 */
#include "halfs/stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "halfs/rht.h"

/* Two-pass central moments over the finite values of a strided rows × cols matrix. */
static double kurtosis_strided(const float *x, int64_t rows, int64_t cols, int64_t ld) {
    double s = 0;
    int64_t n = 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            float v = x[r * ld + c];
            if (isfinite(v)) {
                s += v;
                n++;
            }
        }
    if (n < 2) return 0.0;
    double mu = s / (double)n, m2 = 0, m4 = 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            float v = x[r * ld + c];
            if (!isfinite(v)) continue;
            double d = (double)v - mu, d2 = d * d;
            m2 += d2;
            m4 += d2 * d2;
        }
    m2 /= (double)n;
    m4 /= (double)n;
    /* a constant input has no defined kurtosis: report 0 like the "too few values" case */
    return m2 > 0 ? m4 / (m2 * m2) : 0.0;
}

double hs_kurtosis(const float *x, int64_t n) {
    if (!x || n < 2) return 0.0;
    return kurtosis_strided(x, 1, n, n);
}

hs_status hs_quant_stats(const hs_quant_spec *s, const float *x, int64_t rows, int64_t cols,
                         int64_t ld, int transpose, hs_qstats *out) {
    if (!out) return hs_fail(HS_ERR_INVALID_ARG, "stats: out is NULL");
    memset(out, 0, sizeof *out);
    hs_status st = hs_quant_spec_validate(s);
    if (st != HS_OK) return st;
    if (!x) return hs_fail(HS_ERR_INVALID_ARG, "stats: x is NULL");
    if (rows < 1 || cols < 1 || ld < cols)
        return hs_fail(HS_ERR_INVALID_ARG, "stats: bad shape %lld x %lld (ld %lld)",
                       (long long)rows, (long long)cols, (long long)ld);
    const int64_t R = transpose ? cols : rows, C = transpose ? rows : cols;
    hs_packed p;
    st = hs_packed_alloc(&p, s, R, C);
    if (st != HS_OK) return st;
    float *y = malloc((size_t)R * C * sizeof(float)); /* (R, C): the packed orientation */
    if (!y) {
        hs_packed_free(&p);
        return hs_fail(HS_ERR_NOMEM, "stats: out of memory");
    }
    st = hs_quantize(s, x, rows, cols, ld, transpose, &p);
    if (st == HS_OK) st = hs_dequantize(&p, y, C);
    if (st == HS_OK && s->rht) st = hs_rht_apply(y, R, C, C, s->rht, s->rht_seed, 0, 1);
    if (st == HS_OK) {
        double err = 0, sig = 0;
        int64_t n = 0, nonfin = 0, nonzero = 0, collapsed = 0;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = 0; c < cols; c++) {
                float xv = x[r * ld + c];
                float yv = transpose ? y[c * C + r] : y[r * C + c];
                if (!isfinite(xv)) {
                    nonfin++;
                    continue;
                }
                n++;
                if (xv != 0.0f) {
                    nonzero++;
                    if (yv == 0.0f) collapsed++;
                }
                if (!isfinite(yv)) continue;
                double d = (double)xv - (double)yv;
                err += d * d;
                sig += (double)xv * (double)xv;
            }
        out->rel_mse = sig > 0 ? err / sig : (err > 0 ? INFINITY : 0.0);
        out->sqnr_db = out->rel_mse > 0 ? -10.0 * log10(out->rel_mse) : INFINITY;
        out->zero_collapse = nonzero ? (double)collapsed / (double)nonzero : 0.0;
        out->halved_fraction =
            p.groups_total ? (double)p.groups_halved / (double)p.groups_total : 0.0;
        out->kurtosis = kurtosis_strided(x, rows, cols, ld);
        out->n = n;
        out->n_nonfinite = nonfin;
        out->groups = p.groups_total;
    }
    free(y);
    hs_packed_free(&p);
    return st;
}

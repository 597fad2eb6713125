/* qdq.c: hs_qdq (halfs/quant.h), quantize then dequantize in one call, values returned in x's
 * own layout; an RHT in the spec is undone after dequantizing.
 *
 * src/analysis is the layer between the kernels and the model: code that measures or
 * round-trips a quantizer through the dispatched fast path (hs_quantize / hs_dequantize,
 * src/kernels/dispatch.c) rather than implementing one. It may use src/core and src/kernels;
 * src/nn and above may use it. Its results equal the reference's bit for bit, because every
 * dispatched kernel matches hs_quantize_ref / hs_dequantize_ref byte for byte.
 */
#include <stdlib.h>

#include "halfs/quant.h"
#include "halfs/rht.h"

hs_status hs_qdq(const hs_quant_spec *s, const float *x, int64_t rows, int64_t cols, int64_t ld,
                 int transpose, float *y, int64_t ldy) {
    hs_status st = hs_quant_spec_validate(s);
    if (st != HS_OK) return st;
    if (!x || !y) return hs_fail(HS_ERR_INVALID_ARG, "qdq: x or y is NULL");
    if (rows < 1 || cols < 1 || ld < cols || ldy < cols)
        return hs_fail(HS_ERR_INVALID_ARG, "qdq: bad shape %lld x %lld (ld %lld, ldy %lld)",
                       (long long)rows, (long long)cols, (long long)ld, (long long)ldy);
    const int64_t R = transpose ? cols : rows, C = transpose ? rows : cols;
    hs_packed p;
    st = hs_packed_alloc(&p, s, R, C);
    if (st != HS_OK) return st;
    st = hs_quantize(s, x, rows, cols, ld, transpose, &p);
    if (st != HS_OK) goto done;
    if (!transpose) {
        /* x has been read entirely: y may alias it */
        st = hs_dequantize(&p, y, ldy);
        if (st == HS_OK && s->rht) st = hs_rht_apply(y, rows, cols, ldy, s->rht, s->rht_seed, 0, 1);
    } else {
        float *tmp = malloc((size_t)R * C * sizeof(float));
        if (!tmp) {
            st = hs_fail(HS_ERR_NOMEM, "qdq: out of memory");
            goto done;
        }
        st = hs_dequantize(&p, tmp, C);
        if (st == HS_OK && s->rht) st = hs_rht_apply(tmp, R, C, C, s->rht, s->rht_seed, 0, 1);
        if (st == HS_OK)
            for (int64_t i = 0; i < C; i++) /* y row i (x's layout) = column i of the packed rows */
                for (int64_t j = 0; j < R; j++) y[i * ldy + j] = tmp[j * C + i];
        free(tmp);
    }
done:
    hs_packed_free(&p);
    return st;
}

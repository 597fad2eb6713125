/* quant_both.c: hs_quantize_both (halfs/quant.h), the row-wise and column-wise quantization of
 * one matrix in one pass over it. The fused AVX-512 kernel (quant_e2m1_rows_avx512.c) runs when
 * the kernel table in use is the AVX-512 one and it covers both specs; anything else is the two
 * hs_quantize calls the function is defined by (byte-identical results either way).
 */
#include "halfs/quant.h"
#include "kernels/avx512/quant_e2m1_avx512.h"
#include "kernels/kernels.h"

hs_status hs_quantize_both(const hs_quant_spec *spec_row, const hs_quant_spec *spec_col,
                           const float *x, int64_t rows, int64_t cols, int64_t ld,
                           hs_packed *out_row, hs_packed *out_col) {
    if (hs_kernels()->isa >= HS_ISA_AVX512) {
        hs_status st = hs_quantize_both_e2m1_avx512(spec_row, spec_col, x, rows, cols, ld,
                                                    out_row, out_col);
        if (st != HS_ERR_UNSUPPORTED) return st;
    }
    hs_status st = hs_quantize(spec_row, x, rows, cols, ld, 0, out_row);
    if (st != HS_OK) return st;
    return hs_quantize(spec_col, x, rows, cols, ld, 1, out_col);
}

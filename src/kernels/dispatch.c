/* dispatch.c: picks the kernel behind each public entry point (hs_quantize, hs_gemm_packed).
 *
 * Starts with the scalar reference kernels only; SIMD kernels register here, chosen once from
 * CPUID or forced with HALFS_ISA=ref|avx2|avx512. */
#include "halfs/gemm.h"
#include "halfs/quant.h"

const char *hs_isa_name(void) { return "ref"; }

hs_status hs_quantize(const hs_quant_spec *s, const float *x, int64_t rows, int64_t cols,
                      int64_t ld, int transpose, hs_packed *out) {
    return hs_quantize_ref(s, x, rows, cols, ld, transpose, out);
}

hs_status hs_gemm_packed(const hs_packed *a, const hs_packed *b, float beta, float *c,
                         int64_t ldc) {
    return hs_gemm_packed_ref(a, b, beta, c, ldc);
}

/* gemm_f32.c: the fp32 GEMM of the baseline recipe, through OpenBLAS cblas_sgemm. */
#include <cblas.h>

#include "halfs/gemm.h"

hs_status hs_gemm_f32(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                      const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                      float *c, int64_t ldc) {
    if (m < 0 || n < 0 || k < 0)
        return hs_fail(HS_ERR_INVALID_ARG, "gemm_f32: negative size %lldx%lldx%lld",
                       (long long)m, (long long)n, (long long)k);
    if (m == 0 || n == 0) return HS_OK;
    if (!a || !b || !c) return hs_fail(HS_ERR_INVALID_ARG, "gemm_f32: null operand");
    if (ldc < n || lda < (trans_a ? m : k) || ldb < (trans_b ? k : n))
        return hs_fail(HS_ERR_INVALID_ARG, "gemm_f32: leading dimension too small");
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, (blasint)m, (blasint)n, (blasint)k, 1.0f,
                a, (blasint)lda, b, (blasint)ldb, beta, c, (blasint)ldc);
    return HS_OK;
}

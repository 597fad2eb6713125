/* gemm_f32.c: the fp32 GEMMs, through OpenBLAS cblas_sgemm: hs_gemm_f32 (one sgemm call) and
 * hs_gemm_f32_tiled (the deterministic one hs_gemm uses: a fixed grid of row blocks shared among
 * OpenMP threads), and the OpenBLAS thread policy that the tiled GEMM needs. */
#include <cblas.h>

#include "halfs/gemm.h"
#include "kernels/gemm_kernels.h"

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

void hs_gemm_f32_blas_single_thread(void) { openblas_set_num_threads(1); }

/* Why a fixed grid: OpenBLAS's own threading changes which micro-kernel (main or edge) computes
 * an element depending on the thread count, so its results differ in the last bits between 1
 * and 2 threads (measured). With a grid that depends only on the shape, every element is
 * computed by the same call whatever the thread count: training is reproducible bit for bit. */
hs_status hs_gemm_f32_tiled(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                            const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                            float *c, int64_t ldc) {
    // Row blocks of about m/8 (a multiple of 16, at least 64) with every column: each call
    // packs op(B) once for many rows (measured faster than square-ish tiles, and on par with
    // OpenBLAS's own threading), and 8 blocks balance 2-4 threads.
    int64_t TM = (m + 7) / 8;
    TM = (TM + 15) / 16 * 16;
    if (TM < 64) TM = 64;
    int64_t tm = (m + TM - 1) / TM;
    int bad = 0;
#pragma omp parallel for schedule(dynamic, 1) reduction(| : bad)
    for (int64_t i = 0; i < tm; i++) {
        int64_t mi = m - i * TM < TM ? m - i * TM : TM;
        const float *as = trans_a ? a + i * TM : a + i * TM * lda; // op(A) rows i·TM..
        bad |= hs_gemm_f32(trans_a, trans_b, mi, n, k, as, lda, b, ldb, beta, c + i * TM * ldc,
                           ldc) != HS_OK;
    }
    return bad ? hs_fail(HS_ERR_INTERNAL, "gemm_f32: sgemm failed") : HS_OK;
}

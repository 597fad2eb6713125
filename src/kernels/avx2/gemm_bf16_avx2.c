/* gemm_bf16_avx2.c: bf16 × bf16 → fp32 GEMM for CPUs without AVX512-BF16, C = A·Bᵀ (+ beta·C),
 * bit-identical to hs_gemm_bf16_ref: every output lane performs the reference's sequence
 * acc = fma(a_k, b_k, acc) for k in order (bf16 → fp32 is exact: a 16-bit shift).
 *
 * A is repacked as fp32 panels of MR = 4 rows [k][MR], B as fp32 panels of NB = 16 columns
 * [k][NB]; the micro-kernel keeps 4 × 16 accumulators (8 ymm) over all of K. OpenMP over tasks
 * of MC rows × one B panel.
 */
#include <immintrin.h>
#include <string.h>

#include "kernels/kernels.h"

enum { MR = 4, NB = 16, MC = 64 };

static inline float bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

hs_status hs_gemm_bf16_avx2(int64_t m, int64_t n, int64_t k, const uint16_t *a, int64_t lda,
                            const uint16_t *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    if (m == 0 || n == 0) return HS_OK;
    if (k == 0) return hs_gemm_bf16_ref(m, n, k, a, lda, b, ldb, beta, c, ldc);
    const int64_t mp = (m + MR - 1) / MR, np = (n + NB - 1) / NB;
    float *pa = hs_workspace(0, (size_t)(mp * MR) * (size_t)k * 4); /* (mp, k, MR) */
    float *pb = hs_workspace(1, (size_t)(np * NB) * (size_t)k * 4); /* (np, k, NB) */
    if (!pa || !pb) return hs_fail(HS_ERR_NOMEM, "gemm_bf16: no memory for packed operands");
    const int64_t tm = (mp * MR + MC - 1) / MC, tasks = tm * np;
    const int par = (double)m * n * k > 4e6;
#pragma omp parallel if (par)
    {
#pragma omp for schedule(dynamic, 4)
        for (int64_t p = 0; p < mp; p++)
            for (int r = 0; r < MR; r++) {
                int64_t row = p * MR + r;
                for (int64_t t = 0; t < k; t++)
                    pa[(p * k + t) * MR + r] = row < m ? bf16_to_f32(a[row * lda + t]) : 0.0f;
            }
#pragma omp for schedule(dynamic, 4)
        for (int64_t q = 0; q < np; q++)
            for (int j = 0; j < NB; j++) {
                int64_t col = q * NB + j;
                for (int64_t t = 0; t < k; t++)
                    pb[(q * k + t) * NB + j] = col < n ? bf16_to_f32(b[col * ldb + t]) : 0.0f;
            }
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < tasks; task++) {
            int64_t q = task % np, m0 = (task / np) * MC;
            const float *bp = pb + q * k * NB;
            for (int64_t p = m0 / MR; p < (m0 + MC) / MR && p < mp; p++) {
                const float *ap = pa + p * k * MR;
                __m256 acc[MR][2];
                for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
                for (int64_t t = 0; t < k; t++) {
                    __m256 b0 = _mm256_loadu_ps(bp + t * NB), b1 = _mm256_loadu_ps(bp + t * NB + 8);
                    for (int r = 0; r < MR; r++) {
                        __m256 av = _mm256_broadcast_ss(ap + t * MR + r);
                        acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);
                        acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);
                    }
                }
                float out[MR][NB];
                for (int r = 0; r < MR; r++) {
                    _mm256_storeu_ps(out[r], acc[r][0]);
                    _mm256_storeu_ps(out[r] + 8, acc[r][1]);
                }
                for (int r = 0; r < MR && p * MR + r < m; r++)
                    for (int j = 0; j < NB && q * NB + j < n; j++) {
                        float *cij = c + (p * MR + r) * ldc + q * NB + j;
                        *cij = beta == 0.0f ? out[r][j] : __builtin_fmaf(beta, *cij, out[r][j]);
                    }
            }
        }
    }
    return HS_OK;
}

/* gemm_bf16_avx2.c: bf16 × bf16 → fp32 GEMM for CPUs without AVX512-BF16, C = A·Bᵀ (+ beta·C),
 * bit-identical to hs_gemm_bf16_ref: every output lane performs the reference's sequence
 * acc = fma(a_k, b_k, acc) for k in increasing order from +0 (bf16 → fp32 is exact: a 16-bit
 * shift), then C = acc or fma(beta, C_old, acc).
 *
 * Operands are converted once to fp32 panels: A in panels of MR = 6 rows stored [k][MR], B in
 * panels of NB = 16 columns stored [k][NB] (zero padding past m, n). A task is MC rows × NC
 * columns of C; it walks K in chunks of KC, and per chunk sweeps each B panel (KC·NB·4 = 16 KiB,
 * L1) against the task's A panels (L2), with the 6 × 16 micro-kernel
 * (gemm_bf16_avx2_ukernel.c). Its accumulators are parked in a per-thread tile between chunks;
 * storing and reloading an fp32 value is exact, so the chunking does not change a bit, and
 * neither does the thread count (every element belongs to one task).
 */
#include <immintrin.h>
#include <string.h>

#include "kernels/gemm_kernels.h"
#include "kernels/kernels.h"

enum { MR = HS_BF16_AVX2_MR, NB = HS_BF16_AVX2_NB, KC = 256, MC = 16 * MR, NC = 8 * NB };

static inline float bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Rows [r0, r0 + R) of x (bf16, stride ld) → panel [k][R] (fp32), rows past `rows` zero. */
static void pack_panel(const uint16_t *x, int64_t ld, int64_t rows, int64_t r0, int R, int64_t k,
                       float *out) {
    for (int r = 0; r < R; r++) {
        const int64_t row = r0 + r;
        if (row >= rows) {
            for (int64_t t = 0; t < k; t++) out[t * R + r] = 0.0f;
            continue;
        }
        const uint16_t *src = x + row * ld;
        int64_t t = 0;
        for (; t + 8 <= k; t += 8) {
            __m256i v = _mm256_slli_epi32(
                _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(src + t))), 16);
            float f[8];
            _mm256_storeu_si256((__m256i *)f, v);
            for (int e = 0; e < 8; e++) out[(t + e) * R + r] = f[e];
        }
        for (; t < k; t++) out[t * R + r] = bf16_to_f32(src[t]);
    }
}

/* C rows [i0, i0 + rows) × columns [j0, j0 + cols) from the tile (stride ldt). */
static void store_tile(const float *tile, int64_t ldt, int64_t rows, int64_t cols, float beta,
                       float *c, int64_t ldc) {
    const __m256 vb = _mm256_set1_ps(beta);
    for (int64_t r = 0; r < rows; r++) {
        const float *src = tile + r * ldt;
        float *dst = c + r * ldc;
        int64_t j = 0;
        if (beta == 0.0f) {
            for (; j + 8 <= cols; j += 8) _mm256_storeu_ps(dst + j, _mm256_loadu_ps(src + j));
            for (; j < cols; j++) dst[j] = src[j];
        } else {
            for (; j + 8 <= cols; j += 8)
                _mm256_storeu_ps(dst + j, _mm256_fmadd_ps(vb, _mm256_loadu_ps(dst + j),
                                                          _mm256_loadu_ps(src + j)));
            for (; j < cols; j++) dst[j] = __builtin_fmaf(beta, dst[j], src[j]);
        }
    }
}

hs_status hs_gemm_bf16_avx2(int64_t m, int64_t n, int64_t k, const uint16_t *a, int64_t lda,
                            const uint16_t *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    if (m == 0 || n == 0) return HS_OK;
    if (k == 0) return hs_gemm_bf16_ref(m, n, k, a, lda, b, ldb, beta, c, ldc);
    const int64_t mp = (m + MR - 1) / MR, np = (n + NB - 1) / NB;
    float *pa = hs_workspace(0, (size_t)(mp * MR) * (size_t)k * 4); /* (mp, k, MR) */
    float *pb = hs_workspace(1, (size_t)(np * NB) * (size_t)k * 4); /* (np, k, NB) */
    if (!pa || !pb) return hs_fail(HS_ERR_NOMEM, "gemm_bf16: no memory for packed operands");
    const int64_t tm = (m + MC - 1) / MC, tn = (n + NC - 1) / NC, tasks = tm * tn;
    const int par = (double)m * n * k > 4e6;
    int failed = 0;
#pragma omp parallel if (par)
    {
        float *tile = hs_workspace(2, (size_t)MC * NC * 4);
        if (!tile) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 4)
        for (int64_t p = 0; p < mp; p++) pack_panel(a, lda, m, p * MR, MR, k, pa + p * k * MR);
#pragma omp for schedule(dynamic, 4)
        for (int64_t q = 0; q < np; q++) pack_panel(b, ldb, n, q * NB, NB, k, pb + q * k * NB);
        /* the implicit barrier above also publishes `failed` */
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < tasks; task++) {
            if (failed) continue;
            const int64_t i0 = (task / tn) * MC, j0 = (task % tn) * NC;
            const int64_t rows = m - i0 < MC ? m - i0 : MC, cols = n - j0 < NC ? n - j0 : NC;
            const int64_t pn = (rows + MR - 1) / MR, qn = (cols + NB - 1) / NB;
            for (int64_t k0 = 0; k0 < k; k0 += KC) {
                const int64_t kc = k - k0 < KC ? k - k0 : KC;
                for (int64_t qq = 0; qq < qn; qq++) {
                    const float *bp = pb + ((j0 / NB + qq) * k + k0) * NB;
                    for (int64_t pp = 0; pp < pn; pp++)
                        hs_ukernel_bf16_avx2(pa + ((i0 / MR + pp) * k + k0) * MR, bp, kc,
                                             tile + pp * MR * NC + qq * NB, NC, k0 == 0);
                }
            }
            store_tile(tile, NC, rows, cols, beta, c + i0 * ldc + j0, ldc);
        }
    }
    if (failed) return hs_fail(HS_ERR_NOMEM, "gemm_bf16: no memory for the kernel's tile");
    return HS_OK;
}

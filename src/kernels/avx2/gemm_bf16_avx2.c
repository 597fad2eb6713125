/* gemm_bf16_avx2.c: bf16 × bf16 → fp32 GEMM for CPUs without AVX512-BF16, C = A·Bᵀ (+ beta·C),
 * bit-identical to hs_gemm_bf16_ref and so to the AVX-512 kernel: every output lane performs
 * the sequence of vdpbf16ps (ref/gemm_ref.c) with one fp32 FMA per product (a product of two
 * bf16 is exact in fp32, so fma(a, b, acc) is vdpbf16ps' accumulation step):
 *   - the pair order is a packing choice: panel step 2s holds element 2s + 1, step 2s + 1
 *     element 2s, and an odd K gets a zero step in place of element K;
 *   - subnormal bf16 inputs become zeros of their sign at packing (DAZ);
 *   - the micro-kernel runs with MXCSR.FTZ set, so each FMA flushes a tiny result to zero by
 *     x86's own rule; the beta step (store_tile) runs after MXCSR is restored, unflushed.
 *
 * Operands are converted once to fp32 panels: A in panels of MR = 6 rows stored [kp][MR], B in
 * panels of NB = 16 columns stored [kp][NB] (kp = K rounded up to even; zero padding past m,
 * n). A task is MC rows × NC columns of C; it walks K in chunks of KC, and per chunk sweeps each
 * B panel (KC·NB·4 = 16 KiB, L1) against the task's A panels (L2), with the 6 × 16 micro-kernel
 * (gemm_bf16_avx2_ukernel.c). Its accumulators are parked in a per-thread tile between chunks;
 * storing and reloading an fp32 value is exact, so the chunking does not change a bit, and
 * neither does the thread count (every element belongs to one task).
 */
#include <immintrin.h>
#include <string.h>

#include "kernels/avx2/transpose_avx2.h"
#include "kernels/gemm_kernels.h"
#include "kernels/kernels.h"

enum { MR = HS_BF16_AVX2_MR, NB = HS_BF16_AVX2_NB, KC = 256, MC = 16 * MR, NC = 8 * NB };

/* bf16 → fp32 with a subnormal input read as a zero of its sign. */
static inline float bf16_daz_f32(uint16_t h) {
    if ((h & 0x7F80) == 0) h &= 0x8000;
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* 8 bf16 from src as fp32, pairs swapped (lane 2i ← element 2i + 1, lane 2i + 1 ← element 2i),
 * subnormals as zeros of their sign. */
static inline __m256 load8(const uint16_t *src) {
    const __m256i expo = _mm256_set1_epi32(0x7F800000), sign = _mm256_set1_epi32((int)0x80000000u);
    __m256i v = _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)src)), 16);
    v = _mm256_shuffle_epi32(v, _MM_SHUFFLE(2, 3, 0, 1));
    const __m256i sub = _mm256_cmpeq_epi32(_mm256_and_si256(v, expo), _mm256_setzero_si256());
    return _mm256_castsi256_ps(_mm256_blendv_epi8(v, _mm256_and_si256(v, sign), sub));
}

/* Rows [r0, r0 + R) of x (bf16, stride ld, k elements) → panel [kp][R] (fp32, kp = k rounded up
 * to even) in pair-swapped order: step t holds element t ^ 1 (zero past k), subnormals flushed
 * to signed zeros; rows past `rows` zero. Groups of 8 rows × 8 steps go through an 8 × 8
 * transpose, so each step's R values are stored together. */
static void pack_panel(const uint16_t *x, int64_t ld, int64_t rows, int64_t r0, int R, int64_t k,
                       float *out) {
    const int64_t kp = (k + 1) & ~(int64_t)1;
    for (int g = 0; g < R; g += 8) {
        const int nr = R - g < 8 ? R - g : 8;
        int64_t t = 0;
        for (; t + 8 <= k; t += 8) {
            __m256 v[8];
            for (int i = 0; i < 8; i++) {
                const int64_t row = r0 + g + i;
                v[i] = i < nr && row < rows ? load8(x + row * ld + t) : _mm256_setzero_ps();
            }
            hs_transpose8x8_ps(v);
            for (int e = 0; e < 8; e++) {
                /* fewer than 8 rows: whole-vector stores spill into the next step's first
                 * lanes, which its own store then overwrites; only the panel's last step is
                 * stored lane by lane (masked stores are slow on AMD) */
                if (nr == 8 || t + e + 1 < kp) {
                    _mm256_storeu_ps(out + (t + e) * R + g, v[e]);
                } else {
                    float f[8];
                    _mm256_storeu_ps(f, v[e]);
                    for (int i = 0; i < nr; i++) out[(t + e) * R + g + i] = f[i];
                }
            }
        }
        for (; t < kp; t++) {
            const int64_t e = t ^ 1;
            for (int i = 0; i < nr; i++) {
                const int64_t row = r0 + g + i;
                out[t * R + g + i] = row < rows && e < k ? bf16_daz_f32(x[row * ld + e]) : 0.0f;
            }
        }
    }
}

/* C rows [i0, i0 + rows) × columns [j0, j0 + cols) from the tile (stride ldt). Not inlined: it
 * must run after the caller restored MXCSR (its beta step is not flushed). */
__attribute__((noinline)) static void store_tile(const float *tile, int64_t ldt, int64_t rows,
                                                 int64_t cols, float beta,
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
    const int64_t mp = (m + MR - 1) / MR, np = (n + NB - 1) / NB, kp = (k + 1) & ~(int64_t)1;
    float *pa = hs_workspace(0, (size_t)(mp * MR) * (size_t)kp * 4); /* (mp, kp, MR) */
    float *pb = hs_workspace(1, (size_t)(np * NB) * (size_t)kp * 4); /* (np, kp, NB) */
    if (!pa || !pb) return hs_fail(HS_ERR_NOMEM, "gemm_bf16: no memory for packed operands");
    const int64_t tm = (m + MC - 1) / MC, tn = (n + NC - 1) / NC, tasks = tm * tn;
    const int par = (double)m * n * k > 4e6;
    int failed = 0;
#pragma omp parallel if (par)
    {
        float *tile = hs_workspace(2, (size_t)MC * NC * 4);
        const unsigned csr = _mm_getcsr();
        if (!tile) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 4)
        for (int64_t p = 0; p < mp; p++) pack_panel(a, lda, m, p * MR, MR, k, pa + p * kp * MR);
#pragma omp for schedule(dynamic, 4)
        for (int64_t q = 0; q < np; q++) pack_panel(b, ldb, n, q * NB, NB, k, pb + q * kp * NB);
        /* the implicit barrier above also publishes `failed` */
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < tasks; task++) {
            if (failed) continue;
            const int64_t i0 = (task / tn) * MC, j0 = (task % tn) * NC;
            const int64_t rows = m - i0 < MC ? m - i0 : MC, cols = n - j0 < NC ? n - j0 : NC;
            const int64_t pn = (rows + MR - 1) / MR, qn = (cols + NB - 1) / NB;
            _mm_setcsr(csr | 0x8000); /* FTZ for the products' accumulation */
            for (int64_t k0 = 0; k0 < kp; k0 += KC) {
                const int64_t kc = kp - k0 < KC ? kp - k0 : KC;
                for (int64_t qq = 0; qq < qn; qq++) {
                    const float *bp = pb + ((j0 / NB + qq) * kp + k0) * NB;
                    for (int64_t pp = 0; pp < pn; pp++)
                        hs_ukernel_bf16_avx2(pa + ((i0 / MR + pp) * kp + k0) * MR, bp, kc,
                                             tile + pp * MR * NC + qq * NB, NC, k0 == 0);
                }
            }
            _mm_setcsr(csr);
            store_tile(tile, NC, rows, cols, beta, c + i0 * ldc + j0, ldc);
        }
    }
    if (failed) return hs_fail(HS_ERR_NOMEM, "gemm_bf16: no memory for the kernel's tile");
    return HS_OK;
}

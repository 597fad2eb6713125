/* gemm_bf16_dpbf16.c: bf16 × bf16 → fp32 GEMM with AVX512-BF16 vdpbf16ps,
 * C[M,N] = A[M,K] · B[N,K]ᵀ (+ beta·C). Debian's OpenBLAS 0.3.21 has no sbgemm, so this is the
 * bf16 baseline of the trainer's `bf16` recipe and of `halfs bench gemm` (named `bf16_dpbf16`).
 *
 * Same organisation as gemm_e2m1_vnni.c: A is repacked in panels of MR = 8 rows stored
 * [k/2][MR] (one dword = two consecutive bf16 of a row), B in panels of NB = 48 columns stored
 * [k/2][NB]; odd K is padded with a zero. The micro-kernel keeps 8 × 48 fp32 accumulators
 * (24 zmm); per k-pair it loads 3 vectors of B and broadcasts 8 dwords of A into 24 vdpbf16ps.
 * K is cut into chunks of KC; accumulators persist in a per-thread tile between chunks; OpenMP
 * hands out MC × NC tiles of C. Each element's additions happen in a fixed order (pairs of k in
 * increasing order), so the result does not depend on the thread count.
 * Numerics: vdpbf16ps adds two exact bf16 products to the fp32 accumulator with round-to-nearest
 * and flushes denormal inputs/outputs to zero; the result is close to, not bitwise equal to, the
 * scalar reference (which uses fmaf per k). tests/test_gemm.c bounds the difference.
 */
#include <immintrin.h>
#include <omp.h>
#include <string.h>

#include "kernels/kernels.h"

enum {
    MR = HS_BF16_MR, /* rows of A per micro-panel */
    NB = HS_BF16_NB, /* columns of B per micro-panel */
    KC = 256, /* K elements per chunk */
    KC2 = KC / 2,
    MC = 64,  /* rows of C per task */
    NC = 192, /* columns of C per task */
};

typedef struct {
    int64_t m, n, k, k2, mp, np;
    uint32_t *pa; /* (mp, k2, MR) */
    uint32_t *pb; /* (np, k2, NB) */
} bf_ctx;

static uint32_t pair_at(const uint16_t *row, int64_t k, int64_t s) {
    uint32_t lo = row[2 * s];
    uint32_t hi = 2 * s + 1 < k ? row[2 * s + 1] : 0;
    return lo | (hi << 16);
}

static void pack_a(const bf_ctx *x, const uint16_t *a, int64_t lda, int64_t p) {
    uint32_t *dst = x->pa + p * x->k2 * MR;
    for (int r = 0; r < MR; r++) {
        int64_t row = p * MR + r;
        if (row >= x->m) {
            for (int64_t s = 0; s < x->k2; s++) dst[s * MR + r] = 0;
            continue;
        }
        const uint16_t *src = a + row * lda;
        int64_t full = x->k / 2;
        for (int64_t s = 0; s < full; s++) {
            uint32_t w;
            memcpy(&w, src + 2 * s, 4);
            dst[s * MR + r] = w;
        }
        if (full < x->k2) dst[full * MR + r] = pair_at(src, x->k, full);
    }
}

static void pack_b(const bf_ctx *x, const uint16_t *b, int64_t ldb, int64_t q) {
    uint32_t *dst = x->pb + q * x->k2 * NB;
    for (int c = 0; c < NB; c++) {
        int64_t col = q * NB + c;
        if (col >= x->n) {
            for (int64_t s = 0; s < x->k2; s++) dst[s * NB + c] = 0;
            continue;
        }
        const uint16_t *src = b + col * ldb;
        int64_t full = x->k / 2;
        for (int64_t s = 0; s < full; s++) {
            uint32_t w;
            memcpy(&w, src + 2 * s, 4);
            dst[s * NB + c] = w;
        }
        if (full < x->k2) dst[full * NB + c] = pair_at(src, x->k, full);
    }
}

static void run_task(const bf_ctx *x, int64_t m0, int64_t n0, float beta, float *c, int64_t ldc,
                     float *tile /* (MC/MR, NC/NB, MR, NB) */) {
    int64_t p0 = m0 / MR, p1 = (m0 + MC < x->m ? m0 + MC : x->m + MR - 1) / MR;
    int64_t q0 = n0 / NB, q1 = (n0 + NC < x->n ? n0 + NC : x->n + NB - 1) / NB;
    int64_t nq = q1 - q0;
    const int64_t T = MR * NB;
    memset(tile, 0, (size_t)((p1 - p0) * nq * T) * sizeof(float));
    for (int64_t s0 = 0; s0 < x->k2; s0 += KC2) {
        int64_t steps = x->k2 - s0 < KC2 ? x->k2 - s0 : KC2;
        for (int64_t q = q0; q < q1; q++)
            for (int64_t p = p0; p < p1; p++)
                hs_ukernel_bf16_avx512(x->pa + (p * x->k2 + s0) * MR, x->pb + (q * x->k2 + s0) * NB, steps,
                        tile + ((p - p0) * nq + (q - q0)) * T);
    }
    __m512 vbeta = _mm512_set1_ps(beta);
    for (int64_t p = p0; p < p1; p++)
        for (int64_t q = q0; q < q1; q++) {
            const float *t = tile + ((p - p0) * nq + (q - q0)) * T;
            for (int r = 0; r < MR && p * MR + r < x->m; r++)
                for (int j = 0; j < NB && q * NB + j < x->n; j += 16) {
                    int64_t w = x->n - (q * NB + j);
                    __mmask16 msk = (__mmask16)(w >= 16 ? 0xFFFF : (1u << w) - 1);
                    float *dst = c + (p * MR + r) * ldc + q * NB + j;
                    __m512 v = _mm512_loadu_ps(t + r * NB + j);
                    if (beta != 0.0f)
                        v = _mm512_fmadd_ps(vbeta, _mm512_maskz_loadu_ps(msk, dst), v);
                    _mm512_mask_storeu_ps(dst, msk, v);
                }
        }
}

hs_status hs_gemm_bf16_avx512(int64_t m, int64_t n, int64_t k, const uint16_t *a, int64_t lda,
                              const uint16_t *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    if (m == 0 || n == 0) return HS_OK;
    if (k == 0) return hs_gemm_bf16_ref(m, n, k, a, lda, b, ldb, beta, c, ldc);
    bf_ctx x = {m, n, k, (k + 1) / 2, (m + MR - 1) / MR, (n + NB - 1) / NB, NULL, NULL};
    x.pa = hs_workspace(0, (size_t)x.mp * x.k2 * MR * 4);
    x.pb = hs_workspace(1, (size_t)x.np * x.k2 * NB * 4);
    if (!x.pa || !x.pb) return hs_fail(HS_ERR_NOMEM, "gemm_bf16: no memory for packed operands");
    int64_t tm = (m + MC - 1) / MC, tn = (n + NC - 1) / NC, tasks = tm * tn;
    size_t tile_bytes = (size_t)MC * NC * sizeof(float);
    int par = (double)m * n * k > 4e6;
    int failed = 0;
#pragma omp parallel if (par)
    {
        float *tile = hs_workspace(3, tile_bytes);
        if (!tile) {
#pragma omp atomic write
            failed = 1; /* packing needs no scratch; this thread skips its tasks */
        }
        /* Two barriers in all (each can cost a whole time slice when a thread is descheduled
         * on a loaded machine): both operands are packed in one loop, then the tasks. */
#pragma omp for schedule(dynamic, 4)
        for (int64_t i = 0; i < x.mp + x.np; i++) {
            if (i < x.mp) pack_a(&x, a, lda, i);
            else pack_b(&x, b, ldb, i - x.mp);
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t t = 0; t < tasks; t++)
            if (tile) run_task(&x, (t / tn) * MC, (t % tn) * NC, beta, c, ldc, tile);
    }
    if (failed) return hs_fail(HS_ERR_NOMEM, "gemm_bf16: no memory for kernel scratch");
    return HS_OK;
}

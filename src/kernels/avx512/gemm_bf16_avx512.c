/* gemm_bf16_avx512.c: bf16 × bf16 → fp32 GEMM with AVX512-BF16 vdpbf16ps,
 * C[M,N] = A[M,K] · B[N,K]ᵀ (+ beta·C). Debian's OpenBLAS 0.3.21 has no sbgemm, so this is the
 * bf16 baseline of the trainer's `bf16` recipe and of `halfs bench gemm` (named `bf16_dpbf16`).
 *
 * Same organisation as gemm_e2m1_avx512.c:
 * 1. Operands. The micro-kernel reads A as dwords (two consecutive bf16 of a row, a k-pair),
 *    eight rows (MR) at a time, and B as panels of NB = 48 columns stored [k/2][NB].
 *    Even K: A is read in place (row r's pair s at a + r·lda + 2s; no copy of the largest
 *    operand of the trainer's M = 4096 GEMMs); only a last panel of fewer than 8 rows is
 *    packed. Odd K: every A panel is packed [k/2][MR] with its last pair padded with a zero.
 *    B is always packed (into per-thread workspace, once per call), 16 columns × 16 k-pairs per
 *    16 × 16 dword transpose, prefetching its 16 rows ahead; A panels are packed 16 k-pairs of
 *    their 8 rows at a time with two rounds of unpacks and one of permutes. Rows/columns beyond
 *    M/N and the pad of odd K are zeros.
 * 2. Micro-kernel (gemm_bf16_avx512_ukernel.c): 8 × 48 fp32 accumulators (24 zmm); per k-pair
 *    it loads 3 vectors of B and broadcasts 8 dwords of A into 24 vdpbf16ps. It starts the
 *    accumulators at +0 on a tile's first K chunk and writes C on its last (acc, or
 *    fma(beta, C, acc)) after prefetching C's lines, so with K ≤ KC they never leave
 *    registers; a last panel narrower than NB runs only its valid column vectors.
 * 3. Blocking: K in chunks of KC = 1024 (so the trainer's K = 256..768 are one chunk); a task is
 *    MC = 64 rows (32 or 16 where that leaves fewer than 16 tasks: the trainer's wgrad shapes)
 *    × up to NCP = 8 B panels (384 columns: N ≤ 384 is one task column, so A is read once);
 *    per chunk, each B panel (L2) is swept against the task's A panels, whose accumulators
 *    wait in a per-thread tile between chunks. OpenMP packs B (then the A panels
 *    that need it), then hands out tasks. Each element's additions happen in a fixed order
 *    (vdpbf16ps over the k-pairs in increasing order from +0, then the beta step), so the result
 *    depends neither on the thread count nor on KC, MC, NCP nor on whether A was packed (a
 *    chunk boundary only parks the fp32 accumulators in memory).
 * Numerics: vdpbf16ps adds two exact bf16 products to the fp32 accumulator with round-to-nearest
 * and flushes denormal inputs/outputs to zero; the result is close to, not bitwise equal to, the
 * scalar reference (which uses fmaf per k). tests/test_gemm.c bounds the difference, and checks
 * this kernel bit for bit against a one-lane model of the sequence above.
 */
#include <immintrin.h>
#include <omp.h>
#include <string.h>

#include "kernels/avx512/transpose_avx512.h"
#include "kernels/kernels.h"

enum {
    MR = HS_BF16_MR, /* rows of A per micro-panel */
    NB = HS_BF16_NB, /* columns of B per micro-panel */
    KC = 1024,       /* K elements per chunk (K ≤ 1024 is one chunk) */
    KC2 = KC / 2,    /* k-pairs per chunk */
    MC = 64,         /* rows of C per task (32 or 16 when that leaves too few tasks) */
    MIN_TASKS = 16,  /* tasks wanted for 2 threads to even out on a loaded machine */
    NCP = 8,         /* B panels (8 × 48 = 384 columns of C) per task at most */
    A_ITEM = 4,      /* A panels per packing work item */
    PF_B = 256,      /* prefetch distance of pack_b, bf16 elements (8 lines) */
};

typedef struct {
    int64_t m, n, k, k2, mp, np;
    const uint16_t *a; /* the caller's A (direct) */
    int64_t lda;
    int direct;   /* even K: full A panels are read in place; only a last partial one is packed */
    uint32_t *pa; /* (mp, k2, MR), direct: (1, k2, MR) for the last panel */
    uint32_t *pb; /* (np, k2, NB) */
    int64_t ncp;  /* B panels per task */
    int64_t mc;   /* rows of C per task */
} bf_ctx;

/* 16 k-pairs (32 bf16) of row `src` from element e0 on, zero past element k (odd K's pad). */
static inline __m512i load_pairs(const uint16_t *src, int64_t e0, int64_t k) {
    if (!src) return _mm512_setzero_si512();
    if (k - e0 >= 32) return _mm512_loadu_si512(src + e0);
    return _mm512_maskz_loadu_epi16((__mmask32)((1u << (k - e0)) - 1), src + e0);
}

/* A panel of MR = 8 rows into [k2][MR]: 16 k-pairs of each row at a time; unpacks of dwords
 * and qwords give, per 128-bit lane L, rows 0..3 (u) and 4..7 (v) of step 4L + e; a permute
 * puts u and v of one step side by side. */
static void pack_a(const bf_ctx *x, const uint16_t *a, int64_t lda, int64_t p, uint32_t *dst) {
    const uint16_t *src[MR];
    for (int r = 0; r < MR; r++) src[r] = p * MR + r < x->m ? a + (p * MR + r) * lda : NULL;
    const __m512i idx_lo = _mm512_set_epi64(11, 10, 3, 2, 9, 8, 1, 0); /* u.L0 v.L0 u.L1 v.L1 */
    const __m512i idx_hi = _mm512_set_epi64(15, 14, 7, 6, 13, 12, 5, 4); /* u.L2 v.L2 u.L3 v.L3 */
    for (int64_t s = 0; s < x->k2; s += 16) {
        __m512i r[MR], t[MR];
        for (int i = 0; i < MR; i++) r[i] = load_pairs(src[i], 2 * s, x->k);
        for (int i = 0; i < MR; i += 2) {
            t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);     /* lane L: steps 4L, 4L+1 */
            t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]); /* steps 4L+2, 4L+3 */
        }
        __m512i u[4] = {_mm512_unpacklo_epi64(t[0], t[2]), _mm512_unpackhi_epi64(t[0], t[2]),
                        _mm512_unpacklo_epi64(t[1], t[3]), _mm512_unpackhi_epi64(t[1], t[3])};
        __m512i v[4] = {_mm512_unpacklo_epi64(t[4], t[6]), _mm512_unpackhi_epi64(t[4], t[6]),
                        _mm512_unpacklo_epi64(t[5], t[7]), _mm512_unpackhi_epi64(t[5], t[7])};
        int64_t n16 = x->k2 - s < 16 ? x->k2 - s : 16;
        for (int e = 0; e < 4; e++) {
            __m512i lo = _mm512_permutex2var_epi64(u[e], idx_lo, v[e]); /* steps e, 4 + e */
            __m512i hi = _mm512_permutex2var_epi64(u[e], idx_hi, v[e]); /* 8 + e, 12 + e */
            __m256i o[4] = {_mm512_castsi512_si256(lo), _mm512_extracti64x4_epi64(lo, 1),
                            _mm512_castsi512_si256(hi), _mm512_extracti64x4_epi64(hi, 1)};
            for (int h = 0; h < 4; h++)
                if (4 * h + e < n16)
                    _mm256_storeu_si256((__m256i *)(dst + (s + 4 * h + e) * MR), o[h]);
        }
    }
}

/* A panel of NB = 48 columns of B into [k2][NB]: 16 columns × 16 k-pairs per transpose, one
 * group of 16 columns over all of K at a time (16 read streams). */
static void pack_b(const bf_ctx *x, const uint16_t *b, int64_t ldb, int64_t q) {
    uint32_t *dst = x->pb + q * x->k2 * NB;
    for (int c0 = 0; c0 < NB; c0 += 16) {
        const uint16_t *src[16];
        for (int c = 0; c < 16; c++) {
            int64_t col = q * NB + c0 + c;
            src[c] = col < x->n ? b + col * ldb : NULL;
        }
        for (int64_t s = 0; s < x->k2; s += 16) {
            __m512i r[16], o[16];
            for (int i = 0; i < 16; i++) r[i] = load_pairs(src[i], 2 * s, x->k);
            if (2 * s + PF_B < x->k) /* the rows of B come from memory: 16 streams */
                for (int i = 0; i < 16; i++)
                    if (src[i]) _mm_prefetch((const char *)(src[i] + 2 * s + PF_B), _MM_HINT_T0);
            hs_transpose16x16_epi32(r, o);
            int64_t n16 = x->k2 - s < 16 ? x->k2 - s : 16;
            for (int64_t t = 0; t < n16; t++) _mm512_storeu_si512(dst + (s + t) * NB + c0, o[t]);
        }
    }
}

/* One task: rows [m0, m0 + mc) × columns [n0, n0 + ncp·NB) of C (clipped). Each micro-tile is
 * started by its first chunk's micro-kernel and written to C by its last one, so the tile stays
 * in L1 and the stores of C overlap the next micro-kernel's work. */
static void run_task(const bf_ctx *x, int64_t m0, int64_t n0, float beta, float *c, int64_t ldc,
                     float *tile /* (mc/MR, ncp, MR, NB), NULL when K is one chunk */) {
    int64_t p0 = m0 / MR, p1 = (m0 + x->mc < x->m ? m0 + x->mc : x->m + MR - 1) / MR;
    int64_t q0 = n0 / NB, q1 = q0 + x->ncp < x->np ? q0 + x->ncp : x->np;
    int64_t nq = q1 - q0;
    const int64_t T = MR * NB;
    for (int64_t s0 = 0; s0 < x->k2; s0 += KC2) {
        int64_t steps = x->k2 - s0 < KC2 ? x->k2 - s0 : KC2;
        int first = s0 == 0, last = s0 + steps >= x->k2;
        for (int64_t q = q0; q < q1; q++) {
            int64_t j0 = q * NB, cols = x->n - j0 < NB ? x->n - j0 : NB;
            const uint32_t *bp = x->pb + (q * x->k2 + s0) * NB;
            for (int64_t p = p0; p < p1; p++) {
                int64_t r0 = p * MR;
                int rows = (int)(x->m - r0 < MR ? x->m - r0 : MR);
                hs_bf16_out o = {c + r0 * ldc + j0, ldc, rows, (int)cols, beta};
                int inplace = x->direct && rows == MR;
                const void *ap = inplace ? (const void *)(x->a + r0 * x->lda + 2 * s0)
                                 : x->direct ? (const void *)(x->pa + s0 * MR)
                                             : (const void *)(x->pa + (p * x->k2 + s0) * MR);
                float *acc = tile ? tile + ((p - p0) * nq + (q - q0)) * T : NULL; /* 1 chunk */
                hs_ukernel_bf16_avx512(ap, inplace ? 2 * x->lda : 0, bp, steps, acc,
                                       (int)((cols + 15) / 16), first, last ? &o : NULL);
            }
        }
    }
}

hs_status hs_gemm_bf16_avx512(int64_t m, int64_t n, int64_t k, const uint16_t *a, int64_t lda,
                              const uint16_t *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    if (m == 0 || n == 0) return HS_OK;
    if (k == 0) return hs_gemm_bf16_ref(m, n, k, a, lda, b, ldb, beta, c, ldc);
    bf_ctx x = {m, n, k, (k + 1) / 2, (m + MR - 1) / MR, (n + NB - 1) / NB, a, lda, k % 2 == 0,
                NULL, NULL, 0, MC};
    x.ncp = x.np < NCP ? x.np : NCP;
    int64_t tn = (x.np + x.ncp - 1) / x.ncp;
    while (x.mc > 16 && (m + x.mc - 1) / x.mc * tn < MIN_TASKS) x.mc /= 2;
    x.pa = hs_workspace(0, (size_t)(x.direct ? 1 : x.mp) * x.k2 * MR * 4);
    x.pb = hs_workspace(1, (size_t)x.np * x.k2 * NB * 4);
    if (!x.pa || !x.pb) return hs_fail(HS_ERR_NOMEM, "gemm_bf16: no memory for packed operands");
    int64_t tm = (m + x.mc - 1) / x.mc, tasks = tm * tn;
    size_t tile_bytes = (size_t)x.mc * x.ncp * NB * sizeof(float);
    int par = (double)m * n * k > 4e6;
    int failed = 0;
    /* direct: only a last partial panel is packed (into panel 0 of pa) */
    int64_t a_first = x.direct ? (m % MR ? x.mp - 1 : x.mp) : 0;
    int64_t a_items = (x.mp - a_first + A_ITEM - 1) / A_ITEM;
#pragma omp parallel if (par)
    {
        float *tile = x.k2 > KC2 ? hs_workspace(3, tile_bytes) : NULL; /* one chunk: no tile */
        int ok = tile || x.k2 <= KC2;
        if (!ok) {
#pragma omp atomic write
            failed = 1; /* packing needs no scratch; this thread skips its tasks */
        }
        /* Two barriers in all (each can cost a whole time slice when a thread is descheduled
         * on a loaded machine): both operands are packed in one loop, then the tasks. The B
         * panels (48 columns) first, then the A panels (8 rows) in fours: the heavy items are
         * handed out while there is work left to even them out. */
#pragma omp for schedule(dynamic, 1)
        for (int64_t i = 0; i < x.np + a_items; i++) {
            if (i < x.np) {
                pack_b(&x, b, ldb, i);
                continue;
            }
            for (int64_t p = a_first + A_ITEM * (i - x.np);
                 p < a_first + A_ITEM * (i - x.np + 1) && p < x.mp; p++)
                pack_a(&x, a, lda, p, x.pa + (x.direct ? 0 : p) * x.k2 * MR);
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t t = 0; t < tasks; t++)
            if (ok) run_task(&x, (t / tn) * x.mc, (t % tn) * x.ncp * NB, beta, c, ldc, tile);
    }
    if (failed) return hs_fail(HS_ERR_NOMEM, "gemm_bf16: no memory for kernel scratch");
    return HS_OK;
}

/* gemm_e2m1_avx2.c: packed E2M1 × E2M1 GEMM for CPUs with AVX2 but without AVX512-VNNI,
 * bit-identical to hs_gemm_e2m1_ref (kernels.h states the formula).
 *
 * Same scheme as avx512/gemm_e2m1_avx512.c at half the width: nibbles are decoded to doubled int8
 * values with vpshufb; A is repacked in panels of MR = 6 rows stored [k/4][MR] (int32 words of 4
 * signed bytes), B in panels of NB = 16 columns stored [k/4][NB] with bytes offset by +12
 * (unsigned). The micro-kernel (gemm_e2m1_avx2_ukernel.c) multiplies one A panel by one B panel:
 * vpmaddubsw (u8 × s8 → pairs summed in int16) accumulated in int16 within a group, widened to
 * int32 by vpmaddwd; the per-(row, group) correction −12·Σa starts each group's int32 sums.
 * Group epilogue: t = cvt(isum)·sb; acc = fma(t, sa, acc).
 * OpenMP over tasks of MC rows × one B panel; each element is computed by one task in a fixed
 * order, so the result does not depend on the thread count.
 */
#include <immintrin.h>
#include <string.h>

#include "halfs/codec.h"
#include "kernels/gemm_kernels.h"
#include "kernels/kernels.h"

enum { MR = HS_E2M1_AVX2_MR, NB = HS_E2M1_AVX2_NB, MC = 10 * MR, B_OFFSET = 12 };

static const int8_t dbl_tab[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

/* k elements of a row of codes → k4·4 bytes (doubled value + off), padding with off. */
static void decode_row(const uint8_t *codes, int64_t k, int64_t k4, int off, uint8_t *out) {
    const __m128i tbl = _mm_add_epi8(_mm_loadu_si128((const __m128i *)dbl_tab), _mm_set1_epi8((char)off));
    const __m128i lo4 = _mm_set1_epi8(0x0F);
    int64_t nbytes = (k + 1) / 2, i = 0;
    for (; i + 16 <= nbytes; i += 16) {
        __m128i c = _mm_loadu_si128((const __m128i *)(codes + i));
        __m128i lo = _mm_and_si128(c, lo4), hi = _mm_and_si128(_mm_srli_epi16(c, 4), lo4);
        _mm_storeu_si128((__m128i *)(out + 2 * i), _mm_shuffle_epi8(tbl, _mm_unpacklo_epi8(lo, hi)));
        _mm_storeu_si128((__m128i *)(out + 2 * i + 16), _mm_shuffle_epi8(tbl, _mm_unpackhi_epi8(lo, hi)));
    }
    for (; i < nbytes; i++) {
        out[2 * i] = (uint8_t)(dbl_tab[codes[i] & 0xF] + off);
        out[2 * i + 1] = (uint8_t)(dbl_tab[codes[i] >> 4] + off);
    }
    for (int64_t e = k; e < k4 * 4; e++) out[e] = (uint8_t)off; /* odd k, k-step padding */
}

typedef struct {
    const hs_e2m1_plan *plan;
    int64_t k4, gs, groups, mp, np;
    int32_t *pa; /* (mp, k4, MR) */
    float *sa;   /* (mp, groups, MR) */
    int32_t *ca; /* (mp, groups, MR) */
    int32_t *pb; /* (np, k4, NB) */
    float *sb;   /* (np, groups, NB) */
    float tab_a[256], tab_b[256]; /* byte-coded scales decoded (scale_of) */
} ctx;

/* Σ of n signed bytes in −12..12: vpmaddubsw by 1 into int16 lanes (each adds at most 24 per 32
 * bytes, so 1024 blocks stay below 32767), widened to int32 every 1024 blocks. */
static int32_t sum_i8(const uint8_t *v, int64_t n) {
    const __m256i one8 = _mm256_set1_epi8(1), one16 = _mm256_set1_epi16(1);
    __m256i w = _mm256_setzero_si256();
    int64_t i = 0;
    while (i + 32 <= n) {
        __m256i acc = _mm256_setzero_si256();
        for (int j = 0; j < 1024 && i + 32 <= n; j++, i += 32)
            acc = _mm256_add_epi16(acc, _mm256_maddubs_epi16(one8, _mm256_loadu_si256((const __m256i *)(v + i))));
        w = _mm256_add_epi32(w, _mm256_madd_epi16(acc, one16));
    }
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4E));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xB1));
    int32_t sum = _mm_cvtsi128_si32(h);
    for (; i < n; i++) sum += (int8_t)v[i];
    return sum;
}

/* The decoded scale of group g of row r: hs_packed_scale_f32's value, byte-coded scales through
 * the operand's 256-entry table (filled from the same decoders). */
static inline float scale_of(const hs_packed *p, const float *tab, int64_t r, int64_t g) {
    const int64_t i = r * p->groups_per_row + g;
    switch (p->spec.scale_fmt) {
    case HS_SCALE_E8M0:
    case HS_SCALE_UE4M3:
        return tab[((const uint8_t *)p->scales)[i]];
    default:
        return hs_packed_scale_f32(p, r, g);
    }
}

static void fill_tab(const hs_packed *p, float tab[256]) {
    for (int e = 0; e < 256; e++)
        tab[e] = p->spec.scale_fmt == HS_SCALE_E8M0    ? hs_e8m0_decode((uint8_t)e)
                 : p->spec.scale_fmt == HS_SCALE_UE4M3 ? hs_ue4m3_decode((uint8_t)e)
                                                       : 0.0f;
}

static void pack_a(const ctx *x, const hs_packed *a, int64_t p, uint8_t *tmp) {
    const int64_t k = x->plan->k, k4 = x->k4, G = x->groups, glen = x->plan->glen;
    for (int r = 0; r < MR; r++) {
        int64_t row = p * MR + r;
        int live = row < x->plan->m;
        if (live) decode_row(a->codes + row * a->code_stride, k, k4, 0, tmp);
        else memset(tmp, 0, (size_t)k4 * 4);
        const int32_t *w = (const int32_t *)tmp;
        for (int64_t s = 0; s < k4; s++) x->pa[(p * k4 + s) * MR + r] = w[s];
        for (int64_t g = 0; g < G; g++) {
            int64_t k0 = g * glen, k1 = k0 + glen < k ? k0 + glen : k;
            x->ca[(p * G + g) * MR + r] = live ? -B_OFFSET * sum_i8(tmp + k0, k1 - k0) : 0;
            x->sa[(p * G + g) * MR + r] = live ? scale_of(a, x->tab_a, row, g) : 0.0f;
        }
    }
}

static void pack_b(const ctx *x, const hs_packed *b, int64_t q, uint8_t *tmp) {
    const int64_t k = x->plan->k, k4 = x->k4, G = x->groups;
    for (int c = 0; c < NB; c++) {
        int64_t col = q * NB + c;
        int live = col < x->plan->n;
        if (live) decode_row(b->codes + col * b->code_stride, k, k4, B_OFFSET, tmp);
        else memset(tmp, B_OFFSET, (size_t)k4 * 4);
        const int32_t *w = (const int32_t *)tmp;
        for (int64_t s = 0; s < k4; s++) x->pb[(q * k4 + s) * NB + c] = w[s];
        for (int64_t g = 0; g < G; g++)
            x->sb[(q * G + g) * NB + c] = live ? scale_of(b, x->tab_b, col, g) : 0.0f;
    }
}

/* MR × NB outputs of panel p × panel q over all K, into f (the micro-kernel). */
static void kernel(const ctx *x, int64_t p, int64_t q, float f[MR][NB]) {
    const int64_t G = x->groups;
    hs_ukernel_e2m1_avx2(x->pa + p * x->k4 * MR, x->pb + q * x->k4 * NB, x->k4, G, x->gs,
                         x->sa + p * G * MR, x->ca + p * G * MR, x->sb + q * G * NB, &f[0][0]);
}

/* C tile of panel p × panel q: v = out·post, then C = v (beta = 0) or fma(beta, C, v). */
static void store_tile(float out[MR][NB], int64_t p, int64_t q, int64_t m, int64_t n, float post,
                       float beta, float *c, int64_t ldc) {
    const int rows = m - p * MR < MR ? (int)(m - p * MR) : MR;
    const int cols = n - q * NB < NB ? (int)(n - q * NB) : NB;
    const __m256 vp = _mm256_set1_ps(post), vb = _mm256_set1_ps(beta);
    for (int r = 0; r < rows; r++) {
        float *cr = c + (p * MR + r) * ldc + q * NB;
        int j = 0;
        for (; j + 8 <= cols; j += 8) {
            __m256 v = _mm256_mul_ps(_mm256_loadu_ps(out[r] + j), vp);
            if (beta != 0.0f) v = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr + j), v);
            _mm256_storeu_ps(cr + j, v);
        }
        for (; j < cols; j++) {
            float v = out[r][j] * post;
            cr[j] = beta == 0.0f ? v : __builtin_fmaf(beta, cr[j], v);
        }
    }
}

hs_status hs_gemm_e2m1_avx2(const hs_e2m1_plan *plan, const hs_packed *a, const hs_packed *b,
                            float beta, float *c, int64_t ldc) {
    const int64_t m = plan->m, n = plan->n, k = plan->k;
    if (m == 0 || n == 0) return HS_OK;
    if (k == 0 || (plan->glen % 4 != 0 && plan->groups > 1))
        return hs_gemm_e2m1_ref(plan, a, b, beta, c, ldc);
    ctx x = {0};
    x.plan = plan;
    x.k4 = (k + 3) / 4;
    x.groups = plan->groups;
    x.gs = plan->groups > 1 ? plan->glen / 4 : x.k4;
    fill_tab(a, x.tab_a);
    fill_tab(b, x.tab_b);
    x.mp = (m + MR - 1) / MR;
    x.np = (n + NB - 1) / NB;
    const int64_t G = x.groups;
    uint8_t *wa = hs_workspace(0, (size_t)x.mp * (size_t)(x.k4 * MR * 4 + G * MR * 8));
    uint8_t *wb = hs_workspace(1, (size_t)x.np * (size_t)(x.k4 * NB * 4 + G * NB * 4));
    if (!wa || !wb) return hs_fail(HS_ERR_NOMEM, "gemm_packed: no memory for packed operands");
    x.pa = (int32_t *)wa;
    x.sa = (float *)(wa + (size_t)x.mp * x.k4 * MR * 4);
    x.ca = (int32_t *)(x.sa + x.mp * G * MR);
    x.pb = (int32_t *)wb;
    x.sb = (float *)(wb + (size_t)x.np * x.k4 * NB * 4);
    const int64_t tm = (x.mp * MR + MC - 1) / MC, tasks = tm * x.np;
    const size_t tmp_bytes = (size_t)x.k4 * 4 + 64;
    const int par = (double)m * n * k > 4e6;
    int failed = 0;
#pragma omp parallel if (par)
    {
        uint8_t *tmp = hs_workspace(2, tmp_bytes);
        if (!tmp) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp barrier
        if (!failed) {
#pragma omp for schedule(dynamic, 4)
            for (int64_t p = 0; p < x.mp; p++) pack_a(&x, a, p, tmp);
#pragma omp for schedule(dynamic, 4)
            for (int64_t q = 0; q < x.np; q++) pack_b(&x, b, q, tmp);
#pragma omp for schedule(dynamic, 1)
            for (int64_t t = 0; t < tasks; t++) {
                int64_t q = t % x.np, m0 = (t / x.np) * MC;
                for (int64_t p = m0 / MR; p < (m0 + MC) / MR && p < x.mp; p++) {
                    float out[MR][NB];
                    kernel(&x, p, q, out);
                    store_tile(out, p, q, m, n, plan->post, beta, c, ldc);
                }
            }
        }
    }
    if (failed) return hs_fail(HS_ERR_NOMEM, "gemm_packed: no memory for kernel scratch");
    return HS_OK;
}

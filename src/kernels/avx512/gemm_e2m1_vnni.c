/* gemm_e2m1_vnni.c: packed E2M1 × E2M1 GEMM (MXFP4, NVFP4, fp4row, FP32-scaled fp4) on
 * AVX512-VNNI, C[M,N] = A[M,K] · B[N,K]ᵀ, bit-identical to hs_gemm_e2m1_ref (kernels.h).
 *
 * 1. Repacking (once per call, into per-thread workspace). Nibbles are decoded to doubled
 *    int8 values with one byte shuffle against the 16-entry table {0,1,2,3,4,6,8,12,-0,...}.
 *    A (M × K) is cut into panels of MR = 4 rows stored [k/4][MR] as int32 words of 4 signed
 *    bytes; B (N × K) into panels of NB = 48 columns stored [k/4][NB], its bytes offset by +12
 *    so they are unsigned (0..24). vpdpbusd multiplies unsigned × signed bytes, so
 *    Σ (b+12)·a = Σ a·b + 12·Σ a: the per-(row, group) correction −12·Σa is stored with A and
 *    is the initial value of every int32 accumulator of that group (no extra instruction).
 *    Group scales are decoded to float per (row, group); padding rows/columns/k are zero codes.
 *    B is packed 16 columns at a time: 16 decoded rows, then 16 × 16 word transposes.
 * 2. Micro-kernel (gemm_e2m1_vnni_ukernel.c): MR × NB = 4 × 48 outputs, 12 int32
 *    accumulators (one zmm per 4 rows × 16 columns), and for grouped formats 12 fp32
 *    accumulators. Per k-step of 4: 3 vector loads of B, 4 broadcast dwords of A, 12 vpdpbusd.
 *    At each group's end, t = fl(isum·sb) and acc = fma(t, sa, acc), exactly the reference's
 *    operations: the int32 sums start at the bits of 1.5·2^23 (+ correction), so as floats they
 *    hold 1.5·2^23 + isum and t = fma(that, sb, −1.5·2^23·sb) needs no conversion (exact when
 *    −1.5·2^23·sb is: byte scales up to 2^100; otherwise t = cvt(isum)·sb through the tile).
 *    Row-scaled operands (fp4row: one group per row) keep int32 sums across the whole K and
 *    scale once, two A panels (8 rows) at a time. The kernels start their accumulators
 *    themselves on a tile's first K chunk and, on its last, write C (v = acc·post, then
 *    fma(beta, C, v)) after prefetching its lines for writing when they start: with K ≤ KC the
 *    accumulators never leave registers. A last panel narrower than NB runs only its 1 or 2
 *    valid column vectors (N = 256 has a 16-column last panel).
 *    C larger than 16 MB with beta = 0 is written with streaming stores.
 * 3. Blocking: K in chunks of KC (a multiple of every block size, so groups never straddle a
 *    chunk); a task is MC rows × NC columns of C; per chunk, each B micro-panel (NB × KC bytes,
 *    L1/L2) is swept against all A micro-panels of the task (MC × KC bytes, L2). The
 *    accumulators of the task live in a per-thread tile between chunks. OpenMP hands out tasks;
 *    every C element is computed by one task in a fixed order: results do not depend on the
 *    number of threads (nor on KC, MC, NC: a chunk boundary only moves where the fp32
 *    accumulators are parked; the per-element operation sequence is the plan's).
 */
#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

#include "halfs/codec.h"
#include "kernels/avx512/gemm_e2m1_vnni.h"
#include "kernels/kernels.h"

enum {
    MR = HS_E2M1_MR,    /* rows of A per micro-panel */
    NB = HS_E2M1_NB,    /* columns of B per micro-panel (3 zmm of int32 lanes) */
    KC = 1024,          /* K elements per chunk (multiple of 128; K ≤ 1024 is one chunk) */
    KC4 = KC / 4,       /* k-steps of 4 per chunk */
    MC = 64,            /* rows of C per task */
    NC = 192,           /* columns of C per task */
    B_OFFSET = 12,      /* B bytes are stored as doubled value + 12 (unsigned) */
};

/* Doubled E2M1 values by code, as bytes. */
static const int8_t dbl_tab[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

/* Decode the first k elements of one row of codes into k4·4 bytes (doubled value + off),
 * padding elements k..4·k4−1 with off (the encoding of 0). */
static void decode_row(const uint8_t *codes, int64_t k, int64_t k4, int off,
                       uint8_t *out /* [k4*4] */) {
    __m128i t = _mm_add_epi8(_mm_loadu_si128((const __m128i *)dbl_tab), _mm_set1_epi8((char)off));
    __m512i tbl = _mm512_broadcast_i32x4(t);
    const __m512i lo = _mm512_set1_epi16(0x000F), hi = _mm512_set1_epi16(0x0F00);
    int64_t nbytes = (k + 1) / 2, i = 0;
    for (; i + 32 <= nbytes; i += 32) {
        __m512i w = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(codes + i)));
        /* word = code byte: low nibble (element 2i) to byte 0, high nibble to byte 1 */
        __m512i x = _mm512_or_si512(_mm512_and_si512(w, lo),
                                    _mm512_and_si512(_mm512_slli_epi16(w, 4), hi));
        _mm512_storeu_si512(out + 2 * i, _mm512_shuffle_epi8(tbl, x));
    }
    if (i < nbytes) {
        __mmask32 m = (__mmask32)((1ull << (nbytes - i)) - 1);
        __m512i w = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, codes + i));
        __m512i x = _mm512_or_si512(_mm512_and_si512(w, lo),
                                    _mm512_and_si512(_mm512_slli_epi16(w, 4), hi));
        _mm512_mask_storeu_epi8(out + 2 * i, (__mmask64)((1ull << (2 * (nbytes - i))) - 1),
                                _mm512_shuffle_epi8(tbl, x));
    }
    /* element k (odd k: the high nibble of the last byte) and the k-step padding encode 0 */
    for (int64_t e = k; e < k4 * 4; e++) out[e] = (uint8_t)off;
}

/* Shared state of one GEMM call. */
typedef struct {
    const hs_e2m1_plan *plan;
    int64_t k4;      /* k-steps of 4 over all K */
    int64_t gs;      /* k-steps per full group (grouped mode) */
    int64_t groups;  /* groups per row */
    int row_mode;    /* one group per row: int32 sums over all K */
    int64_t mp, np;  /* micro-panels of A and B */
    int32_t *pa;     /* (mp, k4, MR) packed A words */
    float *sa;       /* (mp, groups, MR) decoded A scales */
    int32_t *ca;     /* (mp, groups, MR) corrections −12·Σa */
    int32_t *pb;     /* (np, k4, NB) packed B words */
    float *sb;       /* (np, groups, NB) decoded B scales */
    float *nc;       /* (np, groups, NB) −1.5·2^23·sb when `magic` */
    int magic;       /* grouped kernel with the conversion folded into an FMA */
    int nt;          /* streaming stores for C */
} gemm_ctx;

/* Decoded scales of row `row`, groups [0, groups), written to dst[g·stride]. */
static void decode_scales(const hs_packed *p, const float *tab /* [256] or NULL */, int64_t row,
                          int64_t groups, float *dst, int64_t stride) {
    if (p->spec.scale_fmt == HS_SCALE_FP32) {
        const float *src = (const float *)p->scales + row * p->groups_per_row;
        for (int64_t g = 0; g < groups; g++) dst[g * stride] = src[g];
    } else {
        const uint8_t *src = (const uint8_t *)p->scales + row * p->groups_per_row;
        for (int64_t g = 0; g < groups; g++) dst[g * stride] = tab[src[g]];
    }
}

/* A panel of MR = 4 rows: decode each row, interleave the rows' k-step words
 * ([s][r] = row r's word s) with two rounds of permutes, and compute the per-group
 * corrections −12·Σa from the interleaved words (one zmm holds 4 k-steps × 4 rows). */
static void pack_a_panel(const gemm_ctx *x, const hs_packed *a, const float *tab, int64_t p,
                         uint8_t *tmp /* MR × k4pad words */) {
    int64_t k = x->plan->k, k4 = x->k4, groups = x->groups, gs = x->gs;
    int64_t k4pad = (k4 + 15) / 16 * 16;
    int32_t *dst = x->pa + p * k4 * MR;
    int32_t *rw[MR];
    for (int r = 0; r < MR; r++) {
        int64_t row = p * MR + r;
        rw[r] = (int32_t *)(tmp + (size_t)r * k4pad * 4);
        float *sa = x->sa + p * groups * MR + r;
        if (row >= x->plan->m) {
            memset(rw[r], 0, (size_t)k4pad * 4);
            for (int64_t g = 0; g < groups; g++) sa[g * MR] = 0.0f;
            continue;
        }
        decode_row(a->codes + row * a->code_stride, k, k4, 0, (uint8_t *)rw[r]);
        memset(rw[r] + k4, 0, (size_t)(k4pad - k4) * 4);
        decode_scales(a, tab, row, groups, sa, MR);
    }
    const __m512i i01lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i i01hi = _mm512_add_epi32(i01lo, _mm512_set1_epi32(8));
    const __m512i q_lo = _mm512_set_epi64(11, 3, 10, 2, 9, 1, 8, 0);
    const __m512i q_hi = _mm512_add_epi64(q_lo, _mm512_set1_epi64(4));
    for (int64_t s = 0; s < k4; s += 16) {
        __m512i r0 = _mm512_loadu_si512(rw[0] + s), r1 = _mm512_loadu_si512(rw[1] + s);
        __m512i r2 = _mm512_loadu_si512(rw[2] + s), r3 = _mm512_loadu_si512(rw[3] + s);
        __m512i a_lo = _mm512_permutex2var_epi32(r0, i01lo, r1); /* steps 0..7 of rows 0,1 */
        __m512i a_hi = _mm512_permutex2var_epi32(r0, i01hi, r1); /* steps 8..15 */
        __m512i b_lo = _mm512_permutex2var_epi32(r2, i01lo, r3);
        __m512i b_hi = _mm512_permutex2var_epi32(r2, i01hi, r3);
        __m512i o[4] = {_mm512_permutex2var_epi64(a_lo, q_lo, b_lo),
                        _mm512_permutex2var_epi64(a_lo, q_hi, b_lo),
                        _mm512_permutex2var_epi64(a_hi, q_lo, b_hi),
                        _mm512_permutex2var_epi64(a_hi, q_hi, b_hi)};
        for (int t = 0; t < 4; t++) {
            int64_t s0 = s + 4 * t;
            if (s0 >= k4) break;
            if (s0 + 4 <= k4)
                _mm512_storeu_si512(dst + s0 * MR, o[t]);
            else
                _mm512_mask_storeu_epi32(dst + s0 * MR, (__mmask16)((1u << ((k4 - s0) * MR)) - 1),
                                         o[t]);
        }
    }
    /* corrections: 12·Σa per (group, row) with vpdpbusd(12, a) over the group's words */
    const __m512i twelve = _mm512_set1_epi8(B_OFFSET);
    for (int64_t g = 0; g < groups; g++) {
        int64_t s0 = g * gs, s1 = s0 + gs < k4 ? s0 + gs : k4;
        __m512i acc = _mm512_setzero_si512();
        for (int64_t s = s0; s < s1; s += 4) {
            __m512i w = s + 4 <= s1 ? _mm512_loadu_si512(dst + s * MR)
                                    : _mm512_maskz_loadu_epi32(
                                          (__mmask16)((1u << ((s1 - s) * MR)) - 1), dst + s * MR);
            acc = _mm512_dpbusd_epi32(acc, twelve, w);
        }
        __m256i h = _mm256_add_epi32(_mm512_castsi512_si256(acc), _mm512_extracti64x4_epi64(acc, 1));
        __m128i q = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
        _mm_storeu_si128((__m128i *)(x->ca + (p * groups + g) * MR), _mm_sub_epi32(_mm_setzero_si128(), q));
    }
}

/* Transpose a 16 × 16 block of int32 words: r[i] holds row i, out[j] gets column j. */
static inline void transpose16(const __m512i r[16], __m512i out[16]) {
    __m512i t[16], u[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);     /* per lane: r_i[0] r_i+1[0] r_i[1] r_i+1[1] */
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]); /* ... [2], [3] */
    }
    for (int g = 0; g < 16; g += 4) { /* u[g + e], lane L: rows g..g+3 of column 4L + e */
        u[g + 0] = _mm512_unpacklo_epi64(t[g], t[g + 2]);
        u[g + 1] = _mm512_unpackhi_epi64(t[g], t[g + 2]);
        u[g + 2] = _mm512_unpacklo_epi64(t[g + 1], t[g + 3]);
        u[g + 3] = _mm512_unpackhi_epi64(t[g + 1], t[g + 3]);
    }
    for (int e = 0; e < 4; e++) {
        __m512i v0 = _mm512_shuffle_i32x4(u[e], u[4 + e], 0x88);  /* lanes 0, 2 of each */
        __m512i w0 = _mm512_shuffle_i32x4(u[e], u[4 + e], 0xDD);  /* lanes 1, 3 */
        __m512i v1 = _mm512_shuffle_i32x4(u[8 + e], u[12 + e], 0x88);
        __m512i w1 = _mm512_shuffle_i32x4(u[8 + e], u[12 + e], 0xDD);
        out[0 + e] = _mm512_shuffle_i32x4(v0, v1, 0x88);
        out[8 + e] = _mm512_shuffle_i32x4(v0, v1, 0xDD);
        out[4 + e] = _mm512_shuffle_i32x4(w0, w1, 0x88);
        out[12 + e] = _mm512_shuffle_i32x4(w0, w1, 0xDD);
    }
}

/* A panel of NB = 48 columns of B, 16 at a time: decode 16 rows of B into tmp, then transpose
 * 16 k-steps × 16 columns per block into the [k4][NB] layout. */
static void pack_b_panel(const gemm_ctx *x, const hs_packed *b, const float *tab, int64_t q,
                         uint8_t *tmp /* 16 × k4pad words */) {
    int64_t k = x->plan->k, k4 = x->k4, groups = x->groups;
    int64_t k4pad = (k4 + 15) / 16 * 16;
    int32_t *dst = x->pb + q * k4 * NB;
    for (int c0 = 0; c0 < NB; c0 += 16) {
        for (int c = c0; c < c0 + 16; c++) {
            int64_t col = q * NB + c;
            int32_t *row = (int32_t *)tmp + (c - c0) * k4pad;
            float *sb = x->sb + q * groups * NB + c;
            if (col >= x->plan->n) {
                for (int64_t s = 0; s < k4pad; s++) row[s] = 0x0C0C0C0C; /* four zeros + 12 */
                for (int64_t g = 0; g < groups; g++) sb[g * NB] = 0.0f;
                if (x->magic)
                    for (int64_t g = 0; g < groups; g++) x->nc[(q * groups + g) * NB + c] = -0.0f;
                continue;
            }
            decode_row(b->codes + col * b->code_stride, k, k4, B_OFFSET, (uint8_t *)row);
            for (int64_t s = k4; s < k4pad; s++) row[s] = 0x0C0C0C0C;
            decode_scales(b, tab, col, groups, sb, NB);
            if (x->magic) /* exact: sb has ≤ 4 significant bits and is at most 2^100 */
                for (int64_t g = 0; g < groups; g++)
                    x->nc[(q * groups + g) * NB + c] = -12582912.0f * sb[g * NB];
        }
        for (int64_t s = 0; s < k4; s += 16) {
            __m512i r[16], o[16];
            for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_si512((const int32_t *)tmp + i * k4pad + s);
            transpose16(r, o);
            int64_t n16 = k4 - s < 16 ? k4 - s : 16;
            for (int64_t t = 0; t < n16; t++) _mm512_storeu_si512(dst + (s + t) * NB + c0, o[t]);
        }
    }
}

/* Write v = acc·post (then fma(beta, C, v)) for an (rows, cols) corner of one micro-tile.
 * nt: a large C written with beta = 0 — whole aligned vectors use streaming stores (no
 * read-for-ownership of C; the caller fences). The micro-kernels that finish into C
 * (hs_ukernel_e2m1_mx_avx512, hs_ukernel_e2m1_rx_avx512) do exactly this, element for element. */
static void store_tile(const float *facc /* (MR, NB) */, int rows, int64_t cols, float post,
                       float beta, float *c, int64_t ldc, int nt) {
    __m512 vpost = _mm512_set1_ps(post), vbeta = _mm512_set1_ps(beta);
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < NB && j < cols; j += 16) {
            int64_t w = cols - j < 16 ? cols - j : 16;
            __mmask16 m = (__mmask16)((1u << w) - 1);
            float *dst = c + r * ldc + j;
            __m512 v = _mm512_mul_ps(_mm512_loadu_ps(facc + r * NB + j), vpost);
            if (beta != 0.0f) v = _mm512_fmadd_ps(vbeta, _mm512_maskz_loadu_ps(m, dst), v);
            if (nt && w == 16 && ((uintptr_t)dst & 63) == 0) _mm512_stream_ps(dst, v);
            else _mm512_mask_storeu_ps(dst, m, v);
        }
}

/* One task: rows [m0, m0 + MC) × columns [n0, n0 + NC) of C (clipped). Each micro-tile is
 * started just before its first chunk's micro-kernel and written to C right after its last
 * one, so the tile stays in L1 and the stores of C overlap the next micro-kernel's work. */
static void run_task(const gemm_ctx *x, int64_t m0, int64_t n0, float beta, float *c, int64_t ldc,
                     void *tile /* (MC/MR, NC/NB, MR, NB) 4-byte accumulators */) {
    const hs_e2m1_plan *pl = x->plan;
    int64_t p0 = m0 / MR, p1 = (m0 + MC < pl->m ? m0 + MC : pl->m + MR - 1) / MR;
    int64_t q0 = n0 / NB, q1 = (n0 + NC < pl->n ? n0 + NC : pl->n + NB - 1) / NB;
    int64_t nq = q1 - q0;
    float *ftile = tile;   /* grouped: fp32 accumulators */
    int32_t *itile = tile; /* row mode: int32 sums */
    const int64_t T = MR * NB; /* accumulators per micro-tile */
    for (int64_t s0 = 0; s0 < x->k4; s0 += KC4) {
        int64_t steps = x->k4 - s0 < KC4 ? x->k4 - s0 : KC4;
        int first = s0 == 0, last = s0 + steps >= x->k4;
        for (int64_t q = q0; q < q1; q++) {
            const int32_t *bp = x->pb + (q * x->k4 + s0) * NB;
            for (int64_t p = p0; p < p1; p++) {
                const int32_t *ap = x->pa + (p * x->k4 + s0) * MR;
                int64_t t = ((p - p0) * nq + (q - q0)) * T;
                if (x->row_mode) { /* two panels at once where there are two */
                    int two = p + 1 < p1;
                    int64_t r0 = p * MR, j0 = q * NB;
                    int64_t cols = pl->n - j0 < NB ? pl->n - j0 : NB;
                    int64_t rows = pl->m - r0 < (two ? 2 * MR : MR) ? pl->m - r0 : (two ? 2 * MR : MR);
                    hs_e2m1_out o = {c + r0 * ldc + j0, ldc, (int)rows, (int)cols, pl->post, beta,
                                     x->nt};
                    hs_ukernel_e2m1_rx_avx512(ap, two ? ap + x->k4 * MR : NULL, bp, steps, itile + t,
                                              itile + t + nq * T, x->ca + p * MR, x->sa + p * MR,
                                              x->sb + q * NB, (int)((cols + 15) / 16), first,
                                              last ? &o : NULL);
                    p += two;
                    continue;
                }
                if (x->magic) { /* starts at +0 itself, and its last chunk writes C */
                    int64_t g0 = s0 / x->gs, ng = (steps + x->gs - 1) / x->gs;
                    int64_t r0 = p * MR, j0 = q * NB;
                    int64_t cols = pl->n - j0 < NB ? pl->n - j0 : NB;
                    hs_e2m1_out o = {c + r0 * ldc + j0, ldc, (int)(pl->m - r0 < MR ? pl->m - r0 : MR),
                                     (int)cols, pl->post, beta, x->nt};
                    hs_ukernel_e2m1_mx_avx512(ap, bp, ng, x->gs, steps,
                                              x->sa + (p * x->groups + g0) * MR,
                                              x->ca + (p * x->groups + g0) * MR,
                                              x->sb + (q * x->groups + g0) * NB,
                                              x->nc + (q * x->groups + g0) * NB, ftile + t,
                                              (int)((cols + 15) / 16), first, last ? &o : NULL);
                    continue;
                }
                /* FP32 scales, or E8M0 beyond 2^100: the plain grouped kernel, through the tile */
                if (first) memset(ftile + t, 0, sizeof(float) * MR * NB); /* acc starts at +0 */
                int64_t g0 = s0 / x->gs, ng = (steps + x->gs - 1) / x->gs;
                hs_ukernel_e2m1_grouped_avx512(ap, bp, ng, x->gs, steps,
                                               x->sa + (p * x->groups + g0) * MR,
                                               x->ca + (p * x->groups + g0) * MR,
                                               x->sb + (q * x->groups + g0) * NB, ftile + t);
                if (last) {
                    int64_t r0 = p * MR, j0 = q * NB;
                    store_tile(ftile + t, (int)(pl->m - r0 < MR ? pl->m - r0 : MR), pl->n - j0,
                               pl->post, beta, c + r0 * ldc + j0, ldc, x->nt);
                }
            }
        }
    }
}

hs_status hs_gemm_e2m1_avx512(const hs_e2m1_plan *plan, const hs_packed *a, const hs_packed *b,
                              float beta, float *c, int64_t ldc) {
    int64_t m = plan->m, n = plan->n, k = plan->k;
    if (m == 0 || n == 0) return HS_OK;
    gemm_ctx x = {0};
    x.plan = plan;
    x.k4 = (k + 3) / 4;
    x.groups = plan->groups;
    x.row_mode = plan->groups <= 1;
    if (!x.row_mode) {
        /* Groups must be whole k-steps and tile a chunk exactly (blocks 16..128 all do). */
        if (plan->glen % 4 != 0 || KC % plan->glen != 0)
            return hs_gemm_e2m1_ref(plan, a, b, beta, c, ldc);
        x.gs = plan->glen / 4;
    } else {
        x.gs = x.k4 > 0 ? x.k4 : 1;
    }
    if (k == 0) { /* empty sum: C = beta·C through the common store path */
        float zero[MR * NB] = {0};
        for (int64_t i = 0; i < m; i += MR)
            for (int64_t j = 0; j < n; j += NB)
                store_tile(zero, (int)(m - i < MR ? m - i : MR), n - j, plan->post, beta,
                           c + i * ldc + j, ldc, 0);
        return HS_OK;
    }
    x.mp = (m + MR - 1) / MR;
    x.np = (n + NB - 1) / NB;
    int64_t G = x.groups;
    size_t bytes_a = (size_t)x.mp * (size_t)(x.k4 * MR * 4 + G * MR * 8);
    /* The FMA-folded conversion needs −1.5·2^23·sb exact: byte scales (≤ 4 significant bits)
     * no larger than 2^100 (E8M0 codes ≤ 227, or the NaN code). */
    x.magic = !x.row_mode && b->spec.scale_fmt != HS_SCALE_FP32;
    if (x.magic && b->spec.scale_fmt == HS_SCALE_E8M0)
        for (int64_t j = 0; j < n && x.magic; j++) {
            const uint8_t *sc = (const uint8_t *)b->scales + j * b->groups_per_row;
            for (int64_t g = 0; g < G; g++)
                if (sc[g] > 227 && sc[g] != 0xFF) x.magic = 0;
        }
    size_t bytes_b = (size_t)x.np * (size_t)(x.k4 * NB * 4 + G * NB * 8);
    uint8_t *wa = hs_workspace(0, bytes_a), *wb = hs_workspace(1, bytes_b);
    if (!wa || !wb) return hs_fail(HS_ERR_NOMEM, "gemm_packed: no memory for packed operands");
    x.pa = (int32_t *)wa;
    x.sa = (float *)(wa + (size_t)x.mp * x.k4 * MR * 4);
    x.ca = (int32_t *)(x.sa + x.mp * G * MR);
    x.pb = (int32_t *)wb;
    x.sb = (float *)(wb + (size_t)x.np * x.k4 * NB * 4);
    x.nc = x.sb + x.np * G * NB;

    int64_t tm = (m + MC - 1) / MC, tn = (n + NC - 1) / NC, tasks = tm * tn;
    size_t tile_bytes = (size_t)(MC / MR) * (NC / NB) * MR * NB * 4;
    /* C larger than the caches and not read (beta = 0): stream it out */
    x.nt = beta == 0.0f && (double)m * (double)ldc * 4.0 > 16e6;
    size_t row_bytes = (size_t)16 * ((x.k4 + 15) / 16 * 16) * 4 + 64; /* 16 rows (B), MR (A) */
    /* byte scale codes decode through a table (NaN code included) */
    float tab_a[256], tab_b[256];
    for (int i = 0; i < 256; i++) {
        tab_a[i] = a->spec.scale_fmt == HS_SCALE_UE4M3 ? hs_ue4m3_decode((uint8_t)i)
                                                      : hs_e8m0_decode((uint8_t)i);
        tab_b[i] = b->spec.scale_fmt == HS_SCALE_UE4M3 ? hs_ue4m3_decode((uint8_t)i)
                                                      : hs_e8m0_decode((uint8_t)i);
    }
    /* Small products are not worth waking the thread team. */
    int par = (double)m * n * k > 4e6;
    int failed = 0;
#pragma omp parallel if (par)
    {
        uint8_t *tmp = hs_workspace(2, row_bytes);
        void *tile = hs_workspace(3, tile_bytes);
        int ok = tmp && tile;
        if (!ok) {
#pragma omp atomic write
            failed = 1; /* this thread skips its share; the call reports the failure */
        }
        /* Two barriers in all (each can cost a whole time slice when a thread is descheduled
         * on a loaded machine): both operands are packed in one loop, then the tasks. */
        /* The B panels (48 columns each) first, one per item, then the A panels (4 rows) in
         * fours: the heavy items are handed out while there is work left to even them out. */
#pragma omp for schedule(dynamic, 1)
        for (int64_t i = 0; i < x.np + (x.mp + 3) / 4; i++) {
            if (!ok) continue;
            if (i < x.np) {
                pack_b_panel(&x, b, tab_b, i, tmp);
                continue;
            }
            for (int64_t p = 4 * (i - x.np); p < 4 * (i - x.np) + 4 && p < x.mp; p++)
                pack_a_panel(&x, a, tab_a, p, tmp);
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t t = 0; t < tasks; t++)
            if (ok) run_task(&x, (t / tn) * MC, (t % tn) * NC, beta, c, ldc, tile);
    }
    if (x.nt) _mm_sfence(); /* streaming stores visible before C is used */
    if (failed) return hs_fail(HS_ERR_NOMEM, "gemm_packed: no memory for kernel scratch");
    return HS_OK;
}

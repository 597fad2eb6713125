/* gemm_e2m1_avx512.c: packed E2M1 × E2M1 GEMM (MXFP4, NVFP4, fp4row, FP32-scaled fp4) on
 * AVX512-VNNI, C[M,N] = A[M,K] · B[N,K]ᵀ, bit-identical to hs_gemm_e2m1_ref (kernels.h).
 *
 * 1. Repacking (gemm_e2m1_avx512_ukernel.c: hs_pack_e2m1_a/b_avx512, compiled with the
 *    micro-kernels). Nibbles are decoded to doubled int8 values in registers with one byte
 *    shuffle against the 16-entry table {0,1,2,3,4,6,8,12,-0,...}.
 *    A (M × K) is cut into panels of MR = 4 rows stored [k/4][MR] as int32 words of 4 signed
 *    bytes; B (N × K) into panels of NB = 48 columns stored [k/4][NB], its bytes offset by +12
 *    so they are unsigned (0..24). vpdpbusd multiplies unsigned × signed bytes, so
 *    Σ (b+12)·a = Σ a·b + 12·Σ a: the per-(row, group) correction −12·Σa is stored with A and
 *    is the initial value of every int32 accumulator of that group (no extra instruction).
 *    Group scales are decoded to float per (row, group); padding rows/columns/k are zero codes.
 *    An A panel is packed in one pass: per 16 k-steps, its 4 rows are decoded into registers,
 *    interleaved with two rounds of permutes, stored, and added into the group's correction;
 *    its scales go through the same interleave (16 groups × 4 rows). B is packed 16 columns
 *    at a time: per 16 k-steps, 16 rows decoded into registers and a 16 × 16 word transpose
 *    (the scales likewise). Byte scales are decoded in vectors (E8M0 by shifting the exponent
 *    into place, UE4M3 by permutes over the 256-entry table). B is packed once per call, all
 *    of it, before the tasks; A by the tasks themselves (3.).
 * 2. Micro-kernel (gemm_e2m1_avx512_ukernel.c): MR × NB = 4 × 48 outputs, 12 int32
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
 *    C larger than 16 MB with beta = 0 is written with streaming stores. The grouped kernel
 *    takes all the row block's A panels against one B micro-panel per call.
 * 3. Blocking: K in chunks of KC (a multiple of every block size, so groups never straddle a
 *    chunk); a task is a row block of MC rows × a group of NC-column blocks (all of N when
 *    there are enough row blocks for the threads). The task first packs its MC rows of A (all
 *    of K) into its thread's buffer (L2), then per NC block and chunk sweeps each B micro-panel
 *    (NB × KC bytes, L1/L2) against the A micro-panels (MC × KC bytes, L2): packed A never
 *    goes through memory, and one thread's packing overlaps the other's micro-kernels. The
 *    accumulators of an NC block live in a per-thread tile between chunks. OpenMP hands out tasks;
 *    every C element is computed by one task in a fixed order: results do not depend on the
 *    number of threads (nor on KC, MC, NC: a chunk boundary only moves where the fp32
 *    accumulators are parked; the per-element operation sequence is the plan's).
 */
#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

#include "halfs/codec.h"
#include "kernels/avx512/gemm_e2m1_avx512.h"
#include "kernels/kernels.h"

enum {
    MR = HS_E2M1_MR,    /* rows of A per micro-panel */
    NB = HS_E2M1_NB,    /* columns of B per micro-panel (3 zmm of int32 lanes) */
    KC = 1024,          /* K elements per chunk (multiple of 128; K ≤ 1024 is one chunk) */
    KC4 = KC / 4,       /* k-steps of 4 per chunk */
    MC = 64,            /* rows of C per row block (a task's rows) */
    NC = 192,           /* columns of C per column block */
};

/* Shared state of one GEMM call. */
typedef struct {
    const hs_e2m1_plan *plan;
    int64_t k4;      /* k-steps of 4 over all K */
    int64_t gs;      /* k-steps per full group (grouped mode) */
    int64_t groups;  /* groups per row */
    int row_mode;    /* one group per row: int32 sums over all K */
    int64_t mp, np;  /* micro-panels of A and B */
    int32_t *pb;     /* (np, k4, NB) packed B words */
    float *sb;       /* (np, groups, NB) decoded B scales */
    float *nc;       /* (np, groups, NB) −1.5·2^23·sb when `magic` */
    int magic;       /* grouped kernel with the conversion folded into an FMA */
    int nt;          /* streaming stores for C */
} gemm_ctx;

/* One task's packed A panels p0, p0 + 1, ... (each thread packs the rows of its task into its
 * own buffer, in L2: a panel of A is used by the tasks of one row block only). */
typedef struct {
    int64_t p0;     /* first panel held */
    int32_t *pa;    /* (MC/MR, k4, MR) packed A words */
    float *sa;      /* (MC/MR, groups, MR) decoded A scales */
    int32_t *ca;    /* (MC/MR, groups, MR) corrections −12·Σa */
} a_block;

/* Whether no E8M0 code among the first G of each of n rows (row stride ld) lies in 228..254
 * (2^101..2^127; 255 is the NaN code), 64 codes per compare. */
static int e8m0_none_huge(const uint8_t *sc, int64_t n, int64_t G, int64_t ld) {
    const __m512i first = _mm512_set1_epi8((char)228), span = _mm512_set1_epi8(27);
    int64_t len = ld == G ? n * G : G, rows = ld == G ? 1 : n; /* contiguous: one run */
    for (int64_t j = 0; j < rows; j++)
        for (int64_t i = 0; i < len; i += 64) {
            __mmask64 m = len - i >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << (len - i)) - 1;
            __m512i v = _mm512_maskz_loadu_epi8(m, sc + j * ld + i);
            /* 228 ≤ v ≤ 254 ⇔ (v − 228) mod 256 < 27 */
            if (_mm512_mask_cmplt_epu8_mask(m, _mm512_sub_epi8(v, first), span)) return 0;
        }
    return 1;
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

/* One block of C: rows [m0, m0 + MC) × columns [n0, n0 + NC) (clipped), with the row block's
 * packed A panels in ab. Each micro-tile is started just before its first chunk's micro-kernel
 * and written to C right after its last one, so the tile stays in L1 and the stores of C
 * overlap the next micro-kernel's work. */
static void run_task(const gemm_ctx *x, const a_block *ab, int64_t m0, int64_t n0, float beta,
                     float *c, int64_t ldc,
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
            if (x->magic) { /* starts at +0 itself, its last chunk writes C; all the row
                             * block's panels in one call */
                int64_t g0 = s0 / x->gs, ng = (steps + x->gs - 1) / x->gs;
                int64_t lp = p0 - ab->p0, r0 = p0 * MR, j0 = q * NB;
                int64_t cols = pl->n - j0 < NB ? pl->n - j0 : NB;
                int64_t rows = pl->m - r0 < MC ? pl->m - r0 : MC;
                hs_e2m1_out o = {c + r0 * ldc + j0, ldc, (int)rows, (int)cols, pl->post, beta,
                                 x->nt};
                hs_ukernel_e2m1_mx_avx512(
                    ab->pa + (lp * x->k4 + s0) * MR, x->k4 * MR, p1 - p0, bp, ng, x->gs, steps,
                    ab->sa + (lp * x->groups + g0) * MR, ab->ca + (lp * x->groups + g0) * MR,
                    x->groups * MR, x->sb + (q * x->groups + g0) * NB,
                    x->nc + (q * x->groups + g0) * NB, ftile + (q - q0) * T, nq * T,
                    (int)((cols + 15) / 16), first, last ? &o : NULL);
                continue;
            }
            for (int64_t p = p0; p < p1; p++) {
                int64_t lp = p - ab->p0; /* panel index in the task's A block */
                const int32_t *ap = ab->pa + (lp * x->k4 + s0) * MR;
                int64_t t = ((p - p0) * nq + (q - q0)) * T;
                if (x->row_mode) { /* two panels at once where there are two */
                    int two = p + 1 < p1;
                    int64_t r0 = p * MR, j0 = q * NB;
                    int64_t cols = pl->n - j0 < NB ? pl->n - j0 : NB;
                    int64_t rows = pl->m - r0 < (two ? 2 * MR : MR) ? pl->m - r0 : (two ? 2 * MR : MR);
                    hs_e2m1_out o = {c + r0 * ldc + j0, ldc, (int)rows, (int)cols, pl->post, beta,
                                     x->nt};
                    hs_ukernel_e2m1_rx_avx512(ap, two ? ap + x->k4 * MR : NULL, bp, steps, itile + t,
                                              itile + t + nq * T, ab->ca + lp * MR,
                                              ab->sa + lp * MR,
                                              x->sb + q * NB, (int)((cols + 15) / 16), first,
                                              last ? &o : NULL);
                    p += two;
                    continue;
                }
                /* FP32 scales, or E8M0 beyond 2^100: the plain grouped kernel, through the tile */
                if (first) memset(ftile + t, 0, sizeof(float) * MR * NB); /* acc starts at +0 */
                int64_t g0 = s0 / x->gs, ng = (steps + x->gs - 1) / x->gs;
                hs_ukernel_e2m1_grouped_avx512(ap, bp, ng, x->gs, steps,
                                               ab->sa + (lp * x->groups + g0) * MR,
                                               ab->ca + (lp * x->groups + g0) * MR,
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
    /* The FMA-folded conversion needs −1.5·2^23·sb exact: byte scales (≤ 4 significant bits)
     * no larger than 2^100 (E8M0 codes ≤ 227, or the NaN code). */
    x.magic = !x.row_mode && b->spec.scale_fmt != HS_SCALE_FP32;
    if (x.magic && b->spec.scale_fmt == HS_SCALE_E8M0)
        x.magic = e8m0_none_huge((const uint8_t *)b->scales, n, G, b->groups_per_row);
    size_t bytes_b = (size_t)x.np * (size_t)(x.k4 * NB * 4 + G * NB * 8);
    uint8_t *wb = hs_workspace(1, bytes_b);
    if (!wb) return hs_fail(HS_ERR_NOMEM, "gemm_packed: no memory for packed operands");
    x.pb = (int32_t *)wb;
    x.sb = (float *)(wb + (size_t)x.np * x.k4 * NB * 4);
    x.nc = x.sb + x.np * G * NB;

    size_t tile_bytes = (size_t)(MC / MR) * (NC / NB) * MR * NB * 4;
    /* one row block of packed A: (MC/MR) panels of words, scales and corrections */
    size_t ablock_bytes = (size_t)(MC / MR) * (size_t)(x.k4 * MR * 4 + G * MR * 8);
    /* C larger than the caches and not read (beta = 0): stream it out */
    x.nt = beta == 0.0f && (double)m * (double)ldc * 4.0 > 16e6;
    /* byte scale codes decode through a table (NaN code included) */
    float tab_a[256], tab_b[256];
    for (int i = 0; i < 256; i++) {
        tab_a[i] = a->spec.scale_fmt == HS_SCALE_UE4M3 ? hs_ue4m3_decode((uint8_t)i)
                                                      : hs_e8m0_decode((uint8_t)i);
        tab_b[i] = b->spec.scale_fmt == HS_SCALE_UE4M3 ? hs_ue4m3_decode((uint8_t)i)
                                                      : hs_e8m0_decode((uint8_t)i);
    }
    hs_e2m1_pack xa = {k, x.k4, G, x.gs, x.row_mode, m, tab_a};
    hs_e2m1_pack xb = {k, x.k4, G, x.gs, x.row_mode, n, tab_b};
    /* Small products are not worth waking the thread team. */
    int par = (double)m * n * k > 4e6;
    /* A task is a row block (MC rows) × a group of consecutive column blocks (NC columns).
     * The task packs its rows of A itself, into its thread's buffer (L2), right before using
     * them: no pass of packed A through memory, and the packing of one thread overlaps the
     * other's micro-kernels. One group (all of N) when there are enough row blocks to share
     * out; otherwise N is split into up to tn groups, and a row block whose groups go to
     * different threads is packed by each (a thread that gets two tasks of one row block in a
     * row packs it once). */
    int64_t tm = (m + MC - 1) / MC, tn = (n + NC - 1) / NC;
    int64_t nth = par ? omp_get_max_threads() : 1;
    int64_t cg = tm >= 2 * nth ? 1 : (2 * nth + tm - 1) / tm;
    if (cg > tn) cg = tn;
    int64_t tasks = tm * cg;
    int failed = 0;
#pragma omp parallel if (par)
    {
        void *tile = hs_workspace(3, tile_bytes);
        uint8_t *wa = hs_workspace(0, ablock_bytes);
        int ok = tile && wa;
        if (!ok) {
#pragma omp atomic write
            failed = 1; /* this thread skips its share; the call reports the failure */
        }
        a_block ab = {-1, NULL, NULL, NULL};
        if (ok) {
            ab.pa = (int32_t *)wa;
            ab.sa = (float *)(wa + (size_t)(MC / MR) * x.k4 * MR * 4);
            ab.ca = (int32_t *)(ab.sa + (MC / MR) * G * MR);
        }
        /* Two barriers in all (each can cost a whole time slice when a thread is descheduled
         * on a loaded machine): the B panels (48 columns each), one per item, then the tasks. */
#pragma omp for schedule(dynamic, 1)
        for (int64_t i = 0; i < x.np; i++)
            if (ok)
                hs_pack_e2m1_b_avx512(&xb, b, i, x.pb + i * x.k4 * NB, x.sb + i * G * NB,
                                      x.magic ? x.nc + i * G * NB : NULL);
#pragma omp for schedule(dynamic, 1)
        for (int64_t t = 0; t < tasks; t++) {
            if (!ok) continue;
            int64_t i = t / cg, jg = t % cg;
            int64_t p0 = i * (MC / MR);
            if (ab.p0 != p0) {
                /* the first panels' codes (the packing prefetches the later ones) */
                for (int64_t r = i * MC; r < i * MC + HS_E2M1_A_PREFETCH * MR && r < m; r++)
                    for (int64_t o = 0; o < (k + 1) / 2 && o < 256; o += 64)
                        _mm_prefetch((const char *)a->codes + r * a->code_stride + o, _MM_HINT_T0);
                for (int64_t p = p0; p < p0 + MC / MR && p < x.mp; p++)
                    hs_pack_e2m1_a_avx512(&xa, a, p, ab.pa + (p - p0) * x.k4 * MR,
                                          ab.sa + (p - p0) * G * MR, ab.ca + (p - p0) * G * MR);
                ab.p0 = p0;
            }
            for (int64_t jb = jg * tn / cg; jb < (jg + 1) * tn / cg; jb++)
                run_task(&x, &ab, i * MC, jb * NC, beta, c, ldc, tile);
        }
    }
    if (x.nt) _mm_sfence(); /* streaming stores visible before C is used */
    if (failed) return hs_fail(HS_ERR_NOMEM, "gemm_packed: no memory for kernel scratch");
    return HS_OK;
}

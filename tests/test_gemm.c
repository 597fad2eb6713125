/* test_gemm.c: the packed-FP4 GEMM, the bf16 GEMM and the GEMM dispatcher.
 *
 * - Exactness: operands made of E2M1 codes × power-of-two scales whose products and partial
 *   sums fit in 24 bits give an exact result: every ISA must equal the exact (double) product
 *   and the reference bit for bit, on shapes around every tile (MR = 4, NB = 48 columns,
 *   MC = 64, NC = 192, K chunks of 512, k-steps of 4, blocks 16..128, one scale per row).
 * - Wide-range operands (E8M0 over a wide range, UE4M3 + tensor scales, FP32 scales, SR
 *   pre-scale): every ISA equals the reference bit for bit, and the reference agrees with a
 *   double GEMM of the dequantized operands within (groups + 3)·2⁻²⁴·Σ|a·b| per element (each
 *   group adds at most two fp32 roundings, plus the final scaling).
 * - bf16: vdpbf16ps against a double GEMM of the bf16 values, within (K + 2)·2⁻²⁴·Σ|a·b|; the
 *   AVX-512 kernel bit for bit against a one-lane model of its per-element sequence (vdpbf16ps
 *   over k-pairs in order, then the beta step) on shapes around each of its blocks.
 * - Results do not depend on the thread count (1 vs 2 threads, bitwise), nor on how the
 *   AVX-512 driver splits the work into tasks (row blocks × column groups).
 * - Every scale byte code (E8M0, UE4M3, NaN codes) decodes as the codec says.
 * - Errors: mismatched K, group sizes or RHT; bad ldc.
 * - hs_gemm routes fp32, bf16 and packed operand pairs to the GEMM above that fits, or to the
 *   tiled fp32 GEMM of the expanded operands.
 * Operands are built directly in the packed layout (include/halfs/quant.h), so these tests
 * depend only on that layout and the codecs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "halfs/halfs.h"
#include "kernels/kernels.h"

/* ---- a small deterministic generator ---- */
static uint64_t rng_state = 0x243F6A8885A308D3ull;
static uint64_t next_u64(void) {
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static int rand_int(int lo, int hi) { return lo + (int)(next_u64() % (uint64_t)(hi - lo + 1)); }

/* ---- packed operands built by hand ---- */
typedef struct {
    hs_packed p;
} operand;

/* A rows × k E2M1 operand; group: 0 = one scale per row, else a block size.
 * scale_fmt E8M0: exponents in [e_lo, e_hi] (biased = e + 127); UE4M3: random codes 0x08..0x7E;
 * FP32: random floats in [0.5, 2). */
static void make_operand(operand *o, int64_t rows, int64_t k, int block, hs_scale_fmt sf,
                         int e_lo, int e_hi) {
    memset(o, 0, sizeof *o);
    hs_packed *p = &o->p;
    p->spec.elem = HS_ELEM_E2M1;
    p->spec.scale_fmt = sf;
    p->spec.group = block ? HS_GROUP_BLOCK : HS_GROUP_ROW;
    p->spec.block = block;
    p->spec.rule = HS_RULE_MAX;
    p->spec.rounding = HS_ROUND_RNE;
    p->spec.sr_prescale = -1;
    p->rows = rows;
    p->cols = k;
    p->groups_per_row = block ? (k + block - 1) / block : 1;
    if (p->groups_per_row == 0) p->groups_per_row = 1;
    p->code_stride = (((k + 1) / 2) + 63) / 64 * 64;
    if (p->code_stride == 0) p->code_stride = 64;
    p->codes = calloc((size_t)(rows * p->code_stride + 64), 1);
    size_t ssz = sf == HS_SCALE_FP32 ? 4 : 1;
    p->scales = calloc((size_t)(rows * p->groups_per_row + 1), ssz);
    assert_non_null(p->codes);
    assert_non_null(p->scales);
    p->tensor_scale = 1.0f;
    p->groups_total = rows * p->groups_per_row;
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t e = 0; e < k; e++) {
            uint8_t code = (uint8_t)(next_u64() & 0xF);
            p->codes[r * p->code_stride + e / 2] |= (uint8_t)(e & 1 ? code << 4 : code);
        }
        for (int64_t g = 0; g < p->groups_per_row; g++) {
            int64_t i = r * p->groups_per_row + g;
            if (sf == HS_SCALE_E8M0)
                ((uint8_t *)p->scales)[i] = (uint8_t)(127 + rand_int(e_lo, e_hi));
            else if (sf == HS_SCALE_UE4M3)
                ((uint8_t *)p->scales)[i] = (uint8_t)rand_int(0x08, 0x7E);
            else
                ((float *)p->scales)[i] = 0.5f + (float)(next_u64() >> 40) * 0x1p-24f * 1.5f;
        }
    }
}

static void free_operand(operand *o) {
    free(o->p.codes);
    free(o->p.scales);
}

/* The dequantized value of element (r, e), exactly, in double. */
static double deq(const hs_packed *p, int64_t r, int64_t e) {
    uint8_t byte = p->codes[r * p->code_stride + e / 2];
    uint8_t code = e & 1 ? byte >> 4 : byte & 0xF;
    int64_t glen = p->spec.group == HS_GROUP_BLOCK ? p->spec.block : p->cols;
    double s = hs_packed_scale_f32(p, r, glen ? e / glen : 0);
    return (double)hs_e2m1_decode(code) * s * hs_packed_prescale_factor(p) / p->tensor_scale;
}

/* Double GEMM of the dequantized operands: out[i,j] and sum of |products| in absout. */
static void gemm_double(const hs_packed *a, const hs_packed *b, double *out, double *absout) {
    int64_t m = a->rows, n = b->rows, k = a->cols;
    double *da = malloc(sizeof(double) * (size_t)(m * k + 1));
    double *db = malloc(sizeof(double) * (size_t)(n * k + 1));
    for (int64_t i = 0; i < m; i++)
        for (int64_t e = 0; e < k; e++) da[i * k + e] = deq(a, i, e);
    for (int64_t j = 0; j < n; j++)
        for (int64_t e = 0; e < k; e++) db[j * k + e] = deq(b, j, e);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0, sa = 0;
            for (int64_t e = 0; e < k; e++) {
                s += da[i * k + e] * db[j * k + e];
                sa += fabs(da[i * k + e] * db[j * k + e]);
            }
            out[i * n + j] = s;
            absout[i * n + j] = sa;
        }
    free(da);
    free(db);
}

static int bits_equal(float x, float y) {
    uint32_t ux, uy;
    memcpy(&ux, &x, 4);
    memcpy(&uy, &y, 4);
    return ux == uy;
}

/* Run hs_gemm_packed on every available ISA and compare with the reference bit for bit.
 * C starts from `init` (for beta != 0); ldc = n + pad. Returns the reference result. */
static float *check_all_isas(const hs_packed *a, const hs_packed *b, float beta, int pad) {
    int64_t m = a->rows, n = b->rows, ldc = n + pad;
    size_t cn = (size_t)(m * ldc);
    float *init = malloc(sizeof(float) * cn), *ref = malloc(sizeof(float) * cn),
          *got = malloc(sizeof(float) * cn);
    for (size_t i = 0; i < cn; i++) init[i] = (float)rand_int(-8, 8) * 0.25f;
    memcpy(ref, init, sizeof(float) * cn);
    assert_int_equal(hs_gemm_packed_ref(a, b, beta, ref, ldc), HS_OK);
    for (int isa = HS_ISA_REF; isa < HS_ISA_COUNT; isa++) {
        if ((int)hs_isa_force((hs_isa)isa) != isa) continue;
        for (int threads = 1; threads <= 2; threads++) {
            omp_set_num_threads(threads);
            memcpy(got, init, sizeof(float) * cn);
            assert_int_equal(hs_gemm_packed(a, b, beta, got, ldc), HS_OK);
            for (int64_t i = 0; i < m; i++)
                for (int64_t j = 0; j < ldc; j++) {
                    float r = ref[i * ldc + j], g = got[i * ldc + j];
                    if (!bits_equal(r, g)) {
                        print_error("isa %s threads %d M=%lld N=%lld K=%lld: C[%lld,%lld] = %a, "
                                    "reference %a\n",
                                    hs_isa_name(), threads, (long long)m, (long long)n,
                                    (long long)a->cols, (long long)i, (long long)j, g, r);
                        fail();
                    }
                }
        }
    }
    hs_isa_force(hs_isa_detect());
    omp_set_num_threads(2);
    free(init);
    free(got);
    /* compact to (m, n) */
    float *out = malloc(sizeof(float) * (size_t)(m * n + 1));
    for (int64_t i = 0; i < m; i++) memcpy(out + i * n, ref + i * ldc, sizeof(float) * (size_t)n);
    free(ref);
    return out;
}

/* Shapes around the tiles: (M, N, K). */
static const int64_t shapes[][3] = {
    {1, 1, 1},      {1, 1, 32},    {3, 47, 31},    {4, 48, 32},    {5, 49, 33},
    {7, 95, 64},    {8, 96, 100},  {9, 97, 127},   {63, 191, 128}, {64, 192, 129},
    {65, 193, 255}, {2, 17, 511},  {13, 50, 512},  {6, 33, 513},   {70, 200, 1030},
    {3, 5, 2048},   {11, 60, 3000}, {130, 7, 96},  {4, 400, 64},   {2, 49, 4100},
};
static const int nshapes = sizeof shapes / sizeof shapes[0];

/* E8M0 scales in 2^[-1, 1]: with K ≤ 4100 every partial sum is a multiple of 2^-4 below 2^20,
 * so the fp32 accumulation is exact and the result must equal the exact product. */
static void run_exact(int block) {
    for (int s = 0; s < nshapes; s++) {
        int64_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        operand a, b;
        make_operand(&a, m, k, block, HS_SCALE_E8M0, -1, 1);
        make_operand(&b, n, k, block, HS_SCALE_E8M0, -1, 1);
        float *c = check_all_isas(&a.p, &b.p, 0.0f, s % 3);
        double *ex = malloc(sizeof(double) * (size_t)(m * n)), *ab = malloc(sizeof(double) * (size_t)(m * n));
        gemm_double(&a.p, &b.p, ex, ab);
        for (int64_t i = 0; i < m * n; i++)
            if ((double)c[i] != ex[i]) {
                print_error("block %d M=%lld N=%lld K=%lld: C[%lld] = %.9g, exact %.9g\n", block,
                            (long long)m, (long long)n, (long long)k, (long long)i, c[i], ex[i]);
                fail();
            }
        free(c);
        free(ex);
        free(ab);
        free_operand(&a);
        free_operand(&b);
    }
}

static void test_exact_block16(void **st) { (void)st; run_exact(16); }
static void test_exact_block32(void **st) { (void)st; run_exact(32); }
static void test_exact_block64(void **st) { (void)st; run_exact(64); }
static void test_exact_block128(void **st) { (void)st; run_exact(128); }
static void test_exact_row(void **st) { (void)st; run_exact(0); }

/* Wide-range or non-power-of-two scales: SIMD = reference bitwise, reference ≈ double. */
static void run_rounded(int block, hs_scale_fmt sf, int e_lo, int e_hi, float tsa, float tsb,
                        int sr_a, float beta) {
    for (int s = 0; s < nshapes; s += 2) {
        int64_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        operand a, b;
        make_operand(&a, m, k, block, sf, e_lo, e_hi);
        make_operand(&b, n, k, block, sf, e_lo, e_hi);
        a.p.tensor_scale = tsa;
        b.p.tensor_scale = tsb;
        if (sr_a) a.p.spec.rounding = HS_ROUND_SR; /* codes carry the 3/4 pre-scale */
        float *c = check_all_isas(&a.p, &b.p, 0.0f, 1);
        double *ex = malloc(sizeof(double) * (size_t)(m * n)), *ab = malloc(sizeof(double) * (size_t)(m * n));
        gemm_double(&a.p, &b.p, ex, ab);
        int64_t groups = block && block < k ? (k + block - 1) / block : 1;
        for (int64_t i = 0; i < m * n; i++) {
            double bound = (double)(groups + 3) * 0x1p-24 * ab[i] + 0x1p-140;
            if (fabs((double)c[i] - ex[i]) > bound) {
                print_error("block %d M=%lld N=%lld K=%lld: C[%lld] = %.9g, double %.9g, bound %.3g\n",
                            block, (long long)m, (long long)n, (long long)k, (long long)i, c[i],
                            ex[i], bound);
                fail();
            }
        }
        if (beta != 0.0f) { /* the beta path: bitwise against the reference */
            float *cb = check_all_isas(&a.p, &b.p, beta, 2);
            free(cb);
        }
        free(c);
        free(ex);
        free(ab);
        free_operand(&a);
        free_operand(&b);
    }
}

static void test_mxfp4_wide_scales(void **st) {
    (void)st;
    run_rounded(32, HS_SCALE_E8M0, -30, 30, 1.0f, 1.0f, 0, 0.5f);
    run_rounded(16, HS_SCALE_E8M0, -12, 12, 1.0f, 1.0f, 0, -1.25f);
}
static void test_nvfp4(void **st) {
    (void)st;
    /* UE4M3 block scales and two tensor scales s_enc */
    run_rounded(16, HS_SCALE_UE4M3, 0, 0, 6.0f * 448.0f / 3.7f, 6.0f * 448.0f / 0.01f, 0, 0.75f);
}
static void test_fp32_scales_and_sr_prescale(void **st) {
    (void)st;
    run_rounded(32, HS_SCALE_FP32, 0, 0, 1.0f, 1.0f, 0, 0.0f);
    run_rounded(32, HS_SCALE_E8M0, -3, 3, 1.0f, 1.0f, 1, 0.0f);
    run_rounded(0, HS_SCALE_E8M0, -3, 3, 1.0f, 1.0f, 1, 2.0f);
}

/* A NaN scale (E8M0 0xFF) poisons exactly the outputs whose row or column holds it. */
static void test_nan_scale(void **st) {
    (void)st;
    operand a, b;
    make_operand(&a, 9, 100, 32, HS_SCALE_E8M0, -2, 2);
    make_operand(&b, 50, 100, 32, HS_SCALE_E8M0, -2, 2);
    ((uint8_t *)a.p.scales)[3 * a.p.groups_per_row + 1] = 0xFF;
    float *c = check_all_isas(&a.p, &b.p, 0.0f, 0);
    for (int64_t i = 0; i < 9; i++)
        for (int64_t j = 0; j < 50; j++) assert_int_equal(isnan(c[i * 50 + j]) != 0, i == 3);
    free(c);
    free_operand(&a);
    free_operand(&b);
}

/* Larger than one task in both directions, odd tails: 2 threads vs 1 bitwise, every ISA. */
static void test_thread_independence(void **st) {
    (void)st;
    operand a, b;
    make_operand(&a, 203, 1100, 32, HS_SCALE_UE4M3, 0, 0);
    make_operand(&b, 410, 1100, 32, HS_SCALE_UE4M3, 0, 0);
    a.p.tensor_scale = 3.0f;
    float *c = check_all_isas(&a.p, &b.p, 0.0f, 5);
    free(c);
    free_operand(&a);
    free_operand(&b);
}

/* The small model's GEMM shapes (d = 256, ffn 704; fused qkv 768 and gate_up 1408; 4096
 * tokens): fprop (tokens, out, in), dgrad (tokens, in, out), wgrad (out, in, tokens, beta = 1).
 * The token dimension is cut when it is M (a few tasks plus a tail keep the test fast); the
 * full K = 4096 of wgrad is kept. Scales span 2^±8 (E8M0) or random UE4M3 codes, so the fp32
 * accumulation across groups rounds: only the plan's exact operation order gives equal bits,
 * on every ISA, with 1 and 2 threads (check_all_isas). */
static void test_trainer_shapes(void **st) {
    (void)st;
    static const int64_t ts[][4] = {
        /* M, N, K, beta */
        {132, 768, 256, 0}, {132, 256, 768, 0}, {100, 256, 4096, 1}, {70, 1408, 256, 0},
        {70, 256, 1408, 0}, {70, 256, 704, 0},  {70, 704, 256, 0},   {36, 704, 4096, 1},
        {132, 256, 256, 0},
    };
    for (int s = 0; s < (int)(sizeof ts / sizeof ts[0]); s++) {
        for (int f = 0; f < 3; f++) {
            if ((s + f) % 3 == 2 && ts[s][2] == 4096) continue; /* keep the test short */
            int block = f == 0 ? 32 : f == 1 ? 16 : 0;
            hs_scale_fmt sf = f == 1 ? HS_SCALE_UE4M3 : HS_SCALE_E8M0;
            operand a, b;
            make_operand(&a, ts[s][0], ts[s][2], block, sf, -8, 8);
            make_operand(&b, ts[s][1], ts[s][2], block, sf, -8, 8);
            if (f == 1) {
                a.p.tensor_scale = 3.0f;
                b.p.tensor_scale = 0.75f;
            }
            float *c = check_all_isas(&a.p, &b.p, (float)ts[s][3], s % 2);
            free(c);
            free_operand(&a);
            free_operand(&b);
        }
    }
}

/* The AVX-512 kernel's own edges: panels of 16, 32 and 48 valid columns (the micro-kernel
 * skips the padding vectors of a narrow last panel), K at and around its chunk length 1024 (one
 * chunk, where accumulators never leave registers, or several), an odd number of 4-row panels
 * in a task (row mode pairs panels), with beta = 1 and a padded ldc: bitwise against the
 * reference on every ISA with 1 and 2 threads. */
/* C = A·Bᵀ (M × N, reduction K) in MXFP4 (block 32, E8M0), NVFP4-style (block 16, UE4M3) and
 * fp4row (one E8M0 scale per row), codes in [−8, 8], bitwise against the reference on every
 * ISA (check_all_isas, C's row padding `pad`); beta is 1 when (beta0 + flip·format) is odd,
 * else 0. */
static void check_three_formats(int64_t m, int64_t n, int64_t k, int beta0, int flip, int pad) {
    for (int f = 0; f < 3; f++) {
        int block = f == 0 ? 32 : f == 1 ? 16 : 0;
        hs_scale_fmt sf = f == 1 ? HS_SCALE_UE4M3 : HS_SCALE_E8M0;
        operand a, b;
        make_operand(&a, m, k, block, sf, -8, 8);
        make_operand(&b, n, k, block, sf, -8, 8);
        float *c = check_all_isas(&a.p, &b.p, (beta0 + flip * f) % 2 ? 1.0f : 0.0f, pad);
        free(c);
        free_operand(&a);
        free_operand(&b);
    }
}

static void test_panel_and_chunk_edges(void **st) {
    (void)st;
    static const int64_t es[][3] = {
        /* M, N, K */
        {9, 16, 1024}, {13, 33, 1025}, {5, 65, 1023}, {21, 80, 2080}, {67, 112, 992},
        {3, 256, 1056},
    };
    for (int s = 0; s < (int)(sizeof es / sizeof es[0]); s++)
        check_three_formats(es[s][0], es[s][1], es[s][2], s % 2, 0, 3);
}

/* Blocks of 4 and 8 elements (1 or 2 k-steps per group: the AVX-512 packer computes those
 * corrections in a second pass over the packed panel), exact as run_exact. */
static void test_exact_block4_block8(void **st) {
    (void)st;
    run_exact(8);
    run_exact(4);
}

/* The AVX-512 driver's task split: a task is a row block of 64 rows × a group of 192-column
 * blocks, and packs its rows of A itself; with few row blocks (M ≤ 192 on 2 threads) N is split
 * into groups and a row block is packed by every task that takes one of its groups (or once by
 * a thread that takes two in a row). Shapes large enough to run threaded, M of 1..3 row blocks
 * with tails, N of 2..4 column blocks, K of one chunk or several: bitwise against the
 * reference, every ISA, 1 and 2 threads, beta 0 and 1. */
static void test_task_split(void **st) {
    (void)st;
    static const int64_t ts[][3] = {
        /* M, N, K */
        {130, 400, 200}, {64, 700, 300}, {190, 250, 1100}, {33, 580, 2100}, {129, 385, 256},
    };
    for (int s = 0; s < (int)(sizeof ts / sizeof ts[0]); s++)
        check_three_formats(ts[s][0], ts[s][1], ts[s][2], s % 2, 1, s % 3);
}

/* Every scale byte code decodes as the codec says, NaN codes included: the AVX-512 packer
 * decodes E8M0 by arithmetic (codes 0 and 255 apart) and UE4M3 through permutes of the
 * table. Row r of one operand has the code r in all its groups (19 or 38 groups: more than
 * the packer's 16 at a time, with a tail), so each code alone scales a row of C; the other
 * operand has ordinary scales. B's codes are then all 256 (the plain conversion path) or, for
 * E8M0, those up to 2^100 and the NaN code (the FMA-folded conversion). Infinities and NaNs
 * in C must match the reference bit for bit too. */
static void test_scale_codes_all(void **st) {
    (void)st;
    for (int f = 0; f < 2; f++)
        for (int side = 0; side < 3; side++) {
            if (f == 1 && side == 2) continue;
            int block = f == 1 ? 16 : 32;
            hs_scale_fmt sf = f == 1 ? HS_SCALE_UE4M3 : HS_SCALE_E8M0;
            int64_t k = 600, nr = 256, no = 21; /* rows of the all-codes operand, of the other */
            operand a, b;
            make_operand(&a, side == 0 ? nr : no, k, block, sf, -4, 4);
            make_operand(&b, side == 0 ? no : nr, k, block, sf, -4, 4);
            hs_packed *all = side == 0 ? &a.p : &b.p;
            for (int64_t r = 0; r < nr; r++) {
                uint8_t code = (uint8_t)r;
                if (side == 2 && code > 227 && code != 0xFF) code = (uint8_t)(code - 120);
                memset((uint8_t *)all->scales + r * all->groups_per_row, code,
                       (size_t)all->groups_per_row);
            }
            float *c = check_all_isas(&a.p, &b.p, side == 1 ? 1.0f : 0.0f, 1);
            free(c);
            free_operand(&a);
            free_operand(&b);
        }
    /* The FMA-folded conversion is chosen only when no B code lies in 2^101..2^127: one such
     * code in B (the first, middle and last of the range), in a group where A is all zeros.
     * The reference gives t = 0·sb = 0 there; the folded FMA with −1.5·2^23·2^127 = −inf
     * would not. */
    for (int code = 228; code <= 254; code += 13) {
        operand a, b;
        make_operand(&a, 5, 96, 32, HS_SCALE_E8M0, -2, 2);
        make_operand(&b, 40, 96, 32, HS_SCALE_E8M0, -2, 2);
        for (int64_t r = 0; r < 5; r++) memset(a.p.codes + r * a.p.code_stride + 16, 0, 16);
        ((uint8_t *)b.p.scales)[7 * b.p.groups_per_row + 1] = (uint8_t)code;
        float *c = check_all_isas(&a.p, &b.p, 0.0f, 0);
        for (int64_t i = 0; i < 5 * 40; i++) assert_true(isfinite(c[i]));
        free(c);
        free_operand(&a);
        free_operand(&b);
    }
}

static void test_errors(void **st) {
    (void)st;
    operand a, b;
    float c[64 * 64];
    make_operand(&a, 4, 64, 32, HS_SCALE_E8M0, 0, 0);
    make_operand(&b, 4, 96, 32, HS_SCALE_E8M0, 0, 0);
    assert_int_equal(hs_gemm_packed(&a.p, &b.p, 0.0f, c, 4), HS_ERR_INVALID_ARG); /* K */
    assert_int_equal(hs_gemm_packed_ref(&a.p, &b.p, 0.0f, c, 4), HS_ERR_INVALID_ARG);
    assert_non_null(strstr(hs_last_error(), "K"));
    free_operand(&b);
    make_operand(&b, 4, 64, 16, HS_SCALE_E8M0, 0, 0);
    assert_int_equal(hs_gemm_packed(&a.p, &b.p, 0.0f, c, 4), HS_ERR_INVALID_ARG); /* groups */
    assert_int_equal(hs_gemm_packed_ref(&a.p, &b.p, 0.0f, c, 4), HS_ERR_INVALID_ARG);
    free_operand(&b);
    make_operand(&b, 4, 64, 32, HS_SCALE_E8M0, 0, 0);
    assert_int_equal(hs_gemm_packed(&a.p, &b.p, 0.0f, c, 3), HS_ERR_INVALID_ARG); /* ldc < N */
    b.p.spec.rht = 16; /* one operand rotated, the other not */
    assert_int_equal(hs_gemm_packed(&a.p, &b.p, 0.0f, c, 4), HS_ERR_INVALID_ARG);
    a.p.spec.rht = 16;
    a.p.spec.rht_seed = 1;
    b.p.spec.rht_seed = 2;
    assert_int_equal(hs_gemm_packed(&a.p, &b.p, 0.0f, c, 4), HS_ERR_INVALID_ARG);
    b.p.spec.rht_seed = 1;
    assert_int_equal(hs_gemm_packed(&a.p, &b.p, 0.0f, c, 4), HS_OK);
    assert_int_equal(hs_gemm_packed(NULL, &b.p, 0.0f, c, 4), HS_ERR_INVALID_ARG);
    free_operand(&a);
    free_operand(&b);
    /* a block at least as long as K is one group per row: compatible with a ROW operand */
    make_operand(&a, 5, 20, 32, HS_SCALE_E8M0, -1, 1);
    make_operand(&b, 6, 20, 0, HS_SCALE_E8M0, -1, 1);
    float *cc = check_all_isas(&a.p, &b.p, 0.0f, 0);
    free(cc);
    free_operand(&a);
    free_operand(&b);
}

/* K = 0: C = beta·C (the empty sum is +0). */
/* One scale per row over K = 70 001 with every A code negative of the largest magnitude (−6,
 * doubled −12): the longest integer sums the kernels form (the AVX2 kernel's int16 lanes are
 * widened every 48 steps, its −12·Σa correction sums 70 001 bytes), against the reference. */
static void test_long_rows(void **st) {
    (void)st;
    operand a, b;
    const int64_t k = 70001;
    make_operand(&a, 7, k, 0, HS_SCALE_E8M0, -3, 3);
    make_operand(&b, 9, k, 0, HS_SCALE_E8M0, -3, 3);
    for (int64_t r = 0; r < 7; r++)
        for (int64_t e = 0; e < k; e++) {
            uint8_t *byte = &a.p.codes[r * a.p.code_stride + e / 2];
            *byte = (uint8_t)(e & 1 ? (*byte & 0x0F) | 0xF0 : (*byte & 0xF0) | 0x0F);
        }
    float *c = check_all_isas(&a.p, &b.p, 0.0f, 1);
    free(c);
    free_operand(&a);
    free_operand(&b);
}

static void test_empty_k(void **st) {
    (void)st;
    operand a, b;
    make_operand(&a, 5, 0, 32, HS_SCALE_E8M0, 0, 0);
    make_operand(&b, 7, 0, 32, HS_SCALE_E8M0, 0, 0);
    float c[35];
    for (int i = 0; i < 35; i++) c[i] = 2.0f;
    assert_int_equal(hs_gemm_packed(&a.p, &b.p, 0.5f, c, 7), HS_OK);
    for (int i = 0; i < 35; i++) assert_true(c[i] == 1.0f);
    assert_int_equal(hs_gemm_packed(&a.p, &b.p, 0.0f, c, 7), HS_OK);
    for (int i = 0; i < 35; i++) assert_true(c[i] == 0.0f);
    free_operand(&a);
    free_operand(&b);
}

/* ---- bf16 ---- */
static uint16_t rand_bf16(void) {
    float v = (float)((double)(int64_t)(next_u64() >> 11) * 0x1p-53 * 4.0 - 2.0);
    return hs_bf16_encode(v);
}

static void run_bf16(int64_t m, int64_t n, int64_t k, int pad) {
    int64_t lda = k + pad, ldb = k + 2 * pad, ldc = n + pad;
    uint16_t *a = malloc(sizeof(uint16_t) * (size_t)(m * lda + 1));
    uint16_t *b = malloc(sizeof(uint16_t) * (size_t)(n * ldb + 1));
    float *c1 = malloc(sizeof(float) * (size_t)(m * ldc + 1)), *c2 = malloc(sizeof(float) * (size_t)(m * ldc + 1));
    float *cr = malloc(sizeof(float) * (size_t)(m * ldc + 1));
    for (int64_t i = 0; i < m * lda; i++) a[i] = rand_bf16();
    for (int64_t i = 0; i < n * ldb; i++) b[i] = rand_bf16();
    for (int64_t i = 0; i < m * ldc; i++) cr[i] = 1.5f;
    assert_int_equal(hs_gemm_bf16_ref(m, n, k, a, lda, b, ldb, 0.5f, cr, ldc), HS_OK);
    for (int isa = HS_ISA_REF; isa < HS_ISA_COUNT; isa++) {
        if ((int)hs_isa_force((hs_isa)isa) != isa) continue;
        for (int64_t i = 0; i < m * ldc; i++) c1[i] = c2[i] = 1.5f;
        omp_set_num_threads(1);
        assert_int_equal(hs_gemm_bf16(m, n, k, a, lda, b, ldb, 0.5f, c1, ldc), HS_OK);
        omp_set_num_threads(2);
        assert_int_equal(hs_gemm_bf16(m, n, k, a, lda, b, ldb, 0.5f, c2, ldc), HS_OK);
        for (int64_t i = 0; i < m; i++) {
            for (int64_t j = 0; j < n; j++) {
                double s = 0, sa = 0;
                for (int64_t e = 0; e < k; e++) {
                    double p = (double)hs_bf16_decode(a[i * lda + e]) * hs_bf16_decode(b[j * ldb + e]);
                    s += p;
                    sa += fabs(p);
                }
                s += 0.75; /* beta · C_old */
                double bound = (double)(k + 3) * 0x1p-24 * (sa + 0.75);
                float g = c1[i * ldc + j];
                /* every level computes the reference's sequence: bitwise equal */
                if (fabs((double)g - s) > bound || !bits_equal(g, c2[i * ldc + j]) ||
                    !bits_equal(g, cr[i * ldc + j])) {
                    print_error("bf16 %s %lldx%lldx%lld C[%lld,%lld] = %.9g (2 threads %.9g), double %.9g\n",
                                hs_isa_name(), (long long)m, (long long)n, (long long)k,
                                (long long)i, (long long)j, g, c2[i * ldc + j], s);
                    fail();
                }
            }
            for (int64_t j = n; j < ldc; j++) assert_true(c1[i * ldc + j] == 1.5f); /* untouched */
        }
    }
    hs_isa_force(hs_isa_detect());
    free(a);
    free(b);
    free(c1);
    free(c2);
    free(cr);
}

static void test_bf16(void **st) {
    (void)st;
    run_bf16(1, 1, 1, 0);
    run_bf16(7, 47, 3, 1);
    run_bf16(8, 48, 256, 0);
    run_bf16(9, 49, 257, 3);
    run_bf16(65, 193, 515, 2);
    run_bf16(130, 100, 1000, 0);
    assert_int_equal(hs_gemm_bf16(-1, 1, 1, NULL, 1, NULL, 1, 0.0f, NULL, 1), HS_ERR_INVALID_ARG);
    uint16_t x[4] = {0};
    float y[4];
    assert_int_equal(hs_gemm_bf16(2, 2, 2, x, 1, x, 2, 0.0f, y, 2), HS_ERR_INVALID_ARG);
}

/* The AVX-512 bf16 GEMM's per-element contract, modelled with the instruction itself on one
 * lane: vdpbf16ps over the k-pairs in increasing order from +0 (odd K: the last pair's second
 * element is 0), then fmaf(beta, C_old, acc) if beta ≠ 0. Bitwise, whatever the blocking. */
__attribute__((target("avx512f,avx512bf16"))) static float bf16_dp_model(
    const uint16_t *a, const uint16_t *b, int64_t k, float beta, float c_old) {
    __m512 acc = _mm512_setzero_ps();
    for (int64_t e = 0; e < k; e += 2) {
        uint32_t wa = a[e] | (e + 1 < k ? (uint32_t)a[e + 1] << 16 : 0);
        uint32_t wb = b[e] | (e + 1 < k ? (uint32_t)b[e + 1] << 16 : 0);
        acc = _mm512_dpbf16_ps(acc, (__m512bh)_mm512_set1_epi32((int)wa),
                               (__m512bh)_mm512_set1_epi32((int)wb));
    }
    float v = _mm512_cvtss_f32(acc);
    return beta != 0.0f ? fmaf(beta, c_old, v) : v;
}

/* m × n × k with row strides k + pad (A), k + pad2 (B), n + pad (C): the AVX-512 kernel at 1
 * and 2 threads equals the model bit for bit and leaves C's padding alone. An odd pad2 puts
 * B's rows, and an odd pad A's rows, at 2-byte offsets (A is read in place when K is even). */
static void run_bf16_exact(int64_t m, int64_t n, int64_t k, int pad, int pad2, float beta) {
    int64_t lda = k + pad, ldb = k + pad2, ldc = n + pad;
    uint16_t *a = malloc(sizeof(uint16_t) * (size_t)(m * lda + 1));
    uint16_t *b = malloc(sizeof(uint16_t) * (size_t)(n * ldb + 1));
    float *c0 = malloc(sizeof(float) * (size_t)(m * ldc + 1));
    float *c1 = malloc(sizeof(float) * (size_t)(m * ldc + 1));
    float *c2 = malloc(sizeof(float) * (size_t)(m * ldc + 1));
    for (int64_t i = 0; i < m * lda; i++) a[i] = rand_bf16();
    for (int64_t i = 0; i < n * ldb; i++) b[i] = rand_bf16();
    for (int64_t i = 0; i < m * ldc; i++) /* full significands: beta·C rounds unless fused */
        c0[i] = (float)((double)(int64_t)(next_u64() >> 11) * 0x1p-53 * 6.0 - 3.0);
    memcpy(c1, c0, sizeof(float) * (size_t)(m * ldc));
    memcpy(c2, c0, sizeof(float) * (size_t)(m * ldc));
    omp_set_num_threads(1);
    assert_int_equal(hs_gemm_bf16_avx512(m, n, k, a, lda, b, ldb, beta, c1, ldc), HS_OK);
    omp_set_num_threads(2);
    assert_int_equal(hs_gemm_bf16_avx512(m, n, k, a, lda, b, ldb, beta, c2, ldc), HS_OK);
    for (int64_t i = 0; i < m; i++) {
        for (int64_t j = 0; j < n; j++) {
            float want = bf16_dp_model(a + i * lda, b + j * ldb, k, beta, c0[i * ldc + j]);
            float g1 = c1[i * ldc + j], g2 = c2[i * ldc + j];
            if (!bits_equal(g1, want) || !bits_equal(g2, want)) {
                print_error("bf16 exact %lldx%lldx%lld beta %g C[%lld,%lld] = %a (2 threads %a), "
                            "model %a\n", (long long)m, (long long)n, (long long)k, (double)beta,
                            (long long)i, (long long)j, (double)g1, (double)g2, (double)want);
                fail();
            }
        }
        for (int64_t j = n; j < ldc; j++) /* untouched */
            assert_true(bits_equal(c1[i * ldc + j], c0[i * ldc + j]) &&
                        bits_equal(c2[i * ldc + j], c0[i * ldc + j]));
    }
    free(a);
    free(b);
    free(c0);
    free(c1);
    free(c2);
}

/* Shapes around every block of the AVX-512 bf16 GEMM: MR = 8 rows, NB = 48 columns (and the
 * 16- and 32-column last panels that run 1 or 2 vectors), K chunks of 1024 (512 pairs), tasks
 * of 64, 32 or 16 rows × up to 384 columns (several tasks run in parallel when M·N·K > 4e6),
 * odd K (A packed) and even K (A read in place, a last partial panel packed), odd row
 * strides, beta 0, 1 and 0.7. */
static void test_bf16_exact_sequence(void **st) {
    (void)st;
    if (hs_isa_force(HS_ISA_AVX512) != HS_ISA_AVX512) {
        hs_isa_force(hs_isa_detect());
        skip();
    }
    static const struct {
        int64_t m, n, k;
        int pad, pad2;
        float beta;
    } cs[] = {
        {1, 1, 1, 0, 0, 0.0f},        {1, 1, 2, 0, 1, 1.0f},         {7, 16, 3, 1, 0, 0.7f},
        {8, 48, 2, 0, 0, 0.0f},       {9, 49, 5, 1, 1, 1.0f},        {15, 17, 64, 0, 3, 0.0f},
        {16, 64, 33, 1, 0, 1.0f},     {17, 80, 32, 1, 1, 0.0f},      {8, 256, 70, 0, 0, 1.0f},
        {63, 95, 1023, 0, 1, 0.0f},   {64, 96, 1024, 1, 0, 1.0f},    {65, 97, 1025, 0, 0, 0.7f},
        {24, 40, 1026, 0, 0, 0.0f},   {9, 112, 2049, 1, 1, 1.0f},    {16, 33, 2050, 0, 2, 0.0f},
        {129, 383, 40, 1, 0, 0.0f},   {72, 384, 18, 0, 1, 1.0f},     {66, 385, 37, 0, 0, 0.7f},
        {130, 770, 12, 2, 1, 1.0f},   {200, 256, 100, 0, 0, 0.0f},   {3, 400, 1500, 1, 1, 1.0f},
        {40, 200, 1100, 1, 0, 0.7f},  {96, 130, 516, 0, 1, 1.0f},
    };
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++)
        run_bf16_exact(cs[i].m, cs[i].n, cs[i].k, cs[i].pad, cs[i].pad2, cs[i].beta);
    hs_isa_force(hs_isa_detect());
}

static uint16_t bfv(float f) { /* the bf16 of a value exact in bf16 */
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)(u >> 16);
}

/* The bf16 contract's edge cases (ref/gemm_ref.c), as 1 × 1 × 4 GEMMs at every level: the first
 * pair sets the accumulator (element 0's product), the second is the case (element 3's product
 * first, then element 2's). Each expected value is worked out by hand in the comment. */
static void test_bf16_contract_edges(void **st) {
    (void)st;
    static const struct {
        float acc, a2, a3, b2, b3, want;
        uint16_t a3_bits; /* non-zero: a3's bits (a subnormal or −0) */
    } cs[] = {
        {1.0f, 0x1p-30f, -1.0f, 1.0f, 1.0f, 0x1p-30f, 0},        /* (1 − 1) + 2⁻³⁰: 3 before 2 */
        {1.0f, 0x1.8p-25f, 0x1.8p-25f, 1.0f, 1.0f, 1.0f, 0},     /* two roundings, each down */
        {0.0f, 0.0f, 0.0f, 0.0f, 0x1p100f, 0.0f, 0x0001},        /* subnormal input: zero */
        {0.0f, 0.0f, 0x1p-70f, 0.0f, 0x1p-70f, 0.0f, 0},         /* 2⁻¹⁴⁰ flushed */
        {0x1p-125f, 0.0f, 0x1p-65f, 0.0f, 0x1p-65f, 0x1.08p-125f, 0}, /* tiny product fused */
        {0x1p-126f, 0.0f, -0x1.8p-76f, 0.0f, 0x1p-75f, 0.0f, 0}, /* tiny after rounding */
        {0x1p-126f, 0.0f, -0x1p-76f, 0.0f, 0x1p-76f, 0x1p-126f, 0}, /* rounds up to 2⁻¹²⁶ */
        {0.0f, -1.0f, 0.0f, 0.0f, 1.0f, 0.0f, 0x8000},           /* +0 + −0·1 + −1·0 = +0 */
    };
    for (int isa = HS_ISA_REF; isa < HS_ISA_COUNT; isa++) {
        if ((int)hs_isa_force((hs_isa)isa) != isa) continue;
        for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
            /* acc = a0·b0: 1 = 1·1, 2⁻¹²⁵ = 2⁻⁶³·2⁻⁶², 2⁻¹²⁶ = 2⁻⁶³·2⁻⁶³, 0 = 0·0 */
            float a0 = cs[i].acc == 0.0f ? 0.0f : cs[i].acc == 1.0f ? 1.0f : 0x1p-63f;
            float b0 = cs[i].acc == 0.0f ? 0.0f : cs[i].acc == 1.0f ? 1.0f
                     : cs[i].acc == 0x1p-125f ? 0x1p-62f : 0x1p-63f;
            uint16_t a[4] = {bfv(a0), 0, bfv(cs[i].a2), cs[i].a3_bits ? cs[i].a3_bits : bfv(cs[i].a3)};
            uint16_t b[4] = {bfv(b0), 0, bfv(cs[i].b2), bfv(cs[i].b3)};
            float c = 7.0f;
            assert_int_equal(hs_gemm_bf16(1, 1, 4, a, 4, b, 4, 0.0f, &c, 1), HS_OK);
            if (!bits_equal(c, cs[i].want)) {
                print_error("bf16 contract %s case %zu: %a, want %a\n", hs_isa_name(), i,
                            (double)c, (double)cs[i].want);
                fail();
            }
        }
        /* the beta step is not flushed: C = fmaf(1, 2⁻¹⁴⁰, +0) keeps the subnormal */
        uint16_t z[2] = {0, 0};
        float c = 0x1p-140f;
        assert_int_equal(hs_gemm_bf16(1, 1, 2, z, 2, z, 2, 1.0f, &c, 1), HS_OK);
        assert_true(bits_equal(c, 0x1p-140f));
    }
    hs_isa_force(hs_isa_detect());
}

/* 200,000 random pairs and accumulators: vdpbf16ps against hs_bf16_pair_ref (AVX-512 code, so
 * in a function of its own that runs only on such CPUs). Products from 2⁻²⁵² (flushed) to 2¹²³. */
__attribute__((target("avx512f,avx512bf16"), noinline)) static void bf16_probe_random(void) {
    for (int i = 0; i < 200000; i++) {
        /* exponent fields 0..188 (subnormals and zeros included; every sum stays finite:
         * NaN payloads are not part of the contract) */
        uint16_t v[4];
        for (int e = 0; e < 4; e++) {
            uint64_t r = next_u64();
            v[e] = (uint16_t)((r & 0x807F) | (((r >> 16) % 189) << 7));
        }
        uint64_t r = next_u64();
        uint32_t ub = (uint32_t)(r & 0x807FFFFF) | (uint32_t)((r >> 32) % 188 + 1) << 23;
        float acc;
        memcpy(&acc, &ub, 4);
        if (i % 4 == 0) acc = 0.0f;
        const uint32_t wa = v[0] | (uint32_t)v[1] << 16, wb = v[2] | (uint32_t)v[3] << 16;
        float got = _mm512_cvtss_f32(_mm512_dpbf16_ps(_mm512_set1_ps(acc),
                                                      (__m512bh)_mm512_set1_epi32((int)wa),
                                                      (__m512bh)_mm512_set1_epi32((int)wb)));
        float want = hs_bf16_pair_ref(acc, v[0], v[1], v[2], v[3]);
        if (!bits_equal(got, want)) {
            print_error("vdpbf16ps %a + (%04x,%04x)·(%04x,%04x) = %a, reference %a\n", (double)acc,
                        v[0], v[1], v[2], v[3], (double)got, (double)want);
            fail();
        }
    }
}

/* Where the CPU has AVX512-BF16: the probe's verdict decides the kernel of the avx512 level, and
 * when it accepts the instruction, the instruction equals the reference's pair step on random
 * pairs over the whole exponent range (subnormals, tiny and huge products included). */
static void test_bf16_probe(void **st) {
    (void)st;
    if (hs_isa_force(HS_ISA_AVX512) != HS_ISA_AVX512) {
        hs_isa_force(hs_isa_detect());
        skip();
    }
    const int ok = hs_bf16_dp_matches_ref_avx512();
    assert_true(hs_kernels()->gemm_bf16 == (ok ? hs_gemm_bf16_avx512 : hs_gemm_bf16_avx2));
    if (ok) bf16_probe_random();
    hs_isa_force(hs_isa_detect());
}

/* hs_gemm_bf16v (attention's products on bf16 values in fp32, B k-major): at every level equal
 * bit for bit to hs_gemm_bf16 on the same values (A as is, B transposed), on shapes around its
 * 6 × 16 tiles, odd K, beta 0 / 1 / 0.7, row strides wider than the rows, and values whose
 * products underflow (the flushing). */
static void test_bf16v(void **st) {
    (void)st;
    static const struct {
        int64_t m, n, k;
        float beta;
    } cs[] = {{1, 1, 1, 0.0f},   {1, 1, 2, 1.0f},   {5, 15, 3, 0.7f},  {6, 16, 32, 0.0f},
              {7, 17, 33, 1.0f}, {12, 32, 64, 0.0f}, {13, 40, 65, 0.7f}, {64, 96, 31, 1.0f},
              {64, 256, 64, 0.0f}, {100, 12, 257, 1.0f}};
    for (size_t ci = 0; ci < sizeof cs / sizeof cs[0]; ci++) {
        const int64_t m = cs[ci].m, n = cs[ci].n, k = cs[ci].k, lda = k + 3, ldb = n + 2, ldc = n + 1;
        uint16_t *a16 = malloc(2 * (size_t)(m * k)), *bt16 = malloc(2 * (size_t)(n * k));
        float *a = malloc(4 * (size_t)(m * lda)), *b = malloc(4 * (size_t)(k * ldb));
        float *c0 = malloc(4 * (size_t)(m * ldc)), *cr = malloc(4 * (size_t)(m * ldc));
        float *cv = malloc(4 * (size_t)(m * ldc));
        for (int64_t i = 0; i < m * k; i++) {
            uint16_t h = rand_bf16();
            if (i % 7 == 3) h = (uint16_t)((h & 0x807F) | 0x0800); /* 2⁻¹¹¹·x: tiny products */
            a16[i] = h;
        }
        for (int64_t i = 0; i < n * k; i++) bt16[i] = rand_bf16();
        for (int64_t i = 0; i < m; i++)
            for (int64_t t = 0; t < k; t++) a[i * lda + t] = hs_bf16_decode(a16[i * k + t]);
        for (int64_t j = 0; j < n; j++)
            for (int64_t t = 0; t < k; t++) b[t * ldb + j] = hs_bf16_decode(bt16[j * k + t]);
        for (int64_t i = 0; i < m * ldc; i++)
            c0[i] = (float)((double)(int64_t)(next_u64() >> 11) * 0x1p-53 * 6.0 - 3.0);
        memcpy(cr, c0, 4 * (size_t)(m * ldc));
        assert_int_equal(hs_gemm_bf16_ref(m, n, k, a16, k, bt16, k, cs[ci].beta, cr, ldc), HS_OK);
        for (int isa = HS_ISA_REF; isa < HS_ISA_COUNT; isa++) {
            if ((int)hs_isa_force((hs_isa)isa) != isa) continue;
            memcpy(cv, c0, 4 * (size_t)(m * ldc));
            hs_kernels()->gemm_bf16v(m, n, k, a, lda, b, ldb, cs[ci].beta, cv, ldc);
            for (int64_t i = 0; i < m; i++)
                for (int64_t j = 0; j < ldc; j++)
                    if (!bits_equal(cv[i * ldc + j], j < n ? cr[i * ldc + j] : c0[i * ldc + j])) {
                        print_error("bf16v %s %lldx%lldx%lld C[%lld,%lld] = %a, want %a\n",
                                    hs_isa_name(), (long long)m, (long long)n, (long long)k,
                                    (long long)i, (long long)j, (double)cv[i * ldc + j],
                                    (double)cr[i * ldc + j]);
                        fail();
                    }
        }
        hs_isa_force(hs_isa_detect());
        free(a16), free(bt16), free(a), free(b), free(c0), free(cr), free(cv);
    }
}

/* Operands quantized by hs_quantize: the direct FP4 kernels, and every pair without one (FP8,
 * INT4, bf16, fp32, mixed) through the fallback, against the reference (which dequantizes and
 * runs fmaf over K) within (K + 3)·2⁻²⁴·Σ|a·b|, and against a double GEMM of hs_dequantize's
 * values for the FP4 pairs (bound as in run_rounded). */
static void test_quantized_operands_and_fallback(void **st) {
    (void)st;
    static const struct { hs_format fa, fb; } pairs[] = {
        {HS_FMT_MXFP4, HS_FMT_MXFP4}, {HS_FMT_NVFP4, HS_FMT_NVFP4}, {HS_FMT_FP4ROW, HS_FMT_FP4ROW},
        {HS_FMT_MXFP8_E4M3, HS_FMT_MXFP8_E4M3}, {HS_FMT_INT4, HS_FMT_INT4}, {HS_FMT_BF16, HS_FMT_BF16},
        {HS_FMT_FP32, HS_FMT_FP32}, {HS_FMT_MXFP8_E4M3, HS_FMT_MXFP4}, {HS_FMT_FP4, HS_FMT_FP4},
    };
    const int64_t m = 37, n = 53, k = 320;
    float *x = malloc(sizeof(float) * (size_t)(m * k)), *w = malloc(sizeof(float) * (size_t)(n * k));
    for (int64_t i = 0; i < m * k; i++) x[i] = (float)((double)(int64_t)(next_u64() >> 11) * 0x1p-53 * 4 - 2);
    for (int64_t i = 0; i < n * k; i++) w[i] = (float)((double)(int64_t)(next_u64() >> 11) * 0x1p-53 * 2 - 1);
    float *c = malloc(sizeof(float) * (size_t)(m * n)), *cr = malloc(sizeof(float) * (size_t)(m * n));
    float *da = malloc(sizeof(float) * (size_t)(m * k)), *db = malloc(sizeof(float) * (size_t)(n * k));
    for (size_t pi = 0; pi < sizeof pairs / sizeof pairs[0]; pi++) {
        hs_quant_spec sa, sb;
        assert_int_equal(hs_quant_spec_init(&sa, pairs[pi].fa), HS_OK);
        assert_int_equal(hs_quant_spec_init(&sb, pairs[pi].fb), HS_OK);
        hs_packed pa, pb;
        assert_int_equal(hs_packed_alloc(&pa, &sa, m, k), HS_OK);
        assert_int_equal(hs_packed_alloc(&pb, &sb, n, k), HS_OK);
        assert_int_equal(hs_quantize(&sa, x, m, k, k, 0, &pa), HS_OK);
        assert_int_equal(hs_quantize(&sb, w, n, k, k, 0, &pb), HS_OK);
        assert_int_equal(hs_dequantize(&pa, da, k), HS_OK);
        assert_int_equal(hs_dequantize(&pb, db, k), HS_OK);
        assert_int_equal(hs_gemm_packed(&pa, &pb, 0.0f, c, n), HS_OK);
        assert_int_equal(hs_gemm_packed_ref(&pa, &pb, 0.0f, cr, n), HS_OK);
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                double s = 0, sabs = 0;
                for (int64_t e = 0; e < k; e++) {
                    double p = (double)da[i * k + e] * db[j * k + e];
                    s += p;
                    sabs += fabs(p);
                }
                /* K roundings of a sequential fp32 sum (fallbacks), 2 per group otherwise */
                double bound = (double)(k + 3) * 0x1p-24 * sabs + 1e-30;
                double got = c[i * n + j], ref = cr[i * n + j];
                if (fabs(got - s) > bound || fabs(ref - s) > bound) {
                    print_error("%s x %s: C[%lld,%lld] = %.9g, reference %.9g, double %.9g\n",
                                hs_format_name(pairs[pi].fa), hs_format_name(pairs[pi].fb),
                                (long long)i, (long long)j, got, ref, s);
                    fail();
                }
            }
        hs_packed_free(&pa);
        hs_packed_free(&pb);
    }
    free(x);
    free(w);
    free(c);
    free(cr);
    free(da);
    free(db);
}

/* hs_gemm routes each operand pair: bf16 × bf16 and packed × packed give what hs_gemm_bf16 and
 * hs_gemm_packed give, bit for bit; mixed pairs (packed with or without RHT × fp32, bf16 × fp32
 * stored transposed) give the tiled fp32 GEMM of the expanded operands (dequantized, RHT undone,
 * bf16 decoded), bit for bit; fp32 × fp32 (either layout) agrees with a double GEMM and does not
 * depend on the thread count; operands of the wrong shape or form are refused. */
static void test_hs_gemm_routing(void **st) {
    (void)st;
    const int64_t m = 37, n = 53, k = 320;
    size_t mk = (size_t)(m * k), nk = (size_t)(n * k), mn = (size_t)(m * n);
    float *x = malloc(sizeof(float) * mk), *w = malloc(sizeof(float) * nk);
    float *wt = malloc(sizeof(float) * nk), *da = malloc(sizeof(float) * mk);
    float *db = malloc(sizeof(float) * nk), *c = malloc(sizeof(float) * mn);
    float *ce = malloc(sizeof(float) * mn), *c2 = malloc(sizeof(float) * mn);
    uint16_t *xh = malloc(sizeof(uint16_t) * mk), *wh = malloc(sizeof(uint16_t) * nk);
    for (size_t i = 0; i < mk; i++) x[i] = (float)((double)(next_u64() >> 11) * 0x1p-53 * 4 - 2);
    for (size_t i = 0; i < nk; i++) w[i] = (float)((double)(next_u64() >> 11) * 0x1p-53 * 2 - 1);
    for (int64_t j = 0; j < n; j++)
        for (int64_t e = 0; e < k; e++) wt[e * n + j] = w[j * k + e]; // W stored k × n
    for (size_t i = 0; i < mk; i++) xh[i] = hs_bf16_encode(x[i]);
    for (size_t i = 0; i < nk; i++) wh[i] = hs_bf16_encode(w[i]);
    hs_gemm_ctx *ctx;
    assert_int_equal(hs_gemm_ctx_create(&ctx), HS_OK);
    hs_quant_spec s4, s4r;
    assert_int_equal(hs_quant_spec_init(&s4, HS_FMT_MXFP4), HS_OK);
    s4r = s4;
    s4r.rht = 16;
    s4r.rht_seed = 77;
    hs_packed pa, pb, par;
    assert_int_equal(hs_packed_alloc(&pa, &s4, m, k), HS_OK);
    assert_int_equal(hs_packed_alloc(&pb, &s4, n, k), HS_OK);
    assert_int_equal(hs_packed_alloc(&par, &s4r, m, k), HS_OK);
    assert_int_equal(hs_quantize(&s4, x, m, k, k, 0, &pa), HS_OK);
    assert_int_equal(hs_quantize(&s4, w, n, k, k, 0, &pb), HS_OK);
    assert_int_equal(hs_quantize(&s4r, x, m, k, k, 0, &par), HS_OK);
    hs_gemm_operand opa = hs_gemm_op_packed(&pa), opb = hs_gemm_op_packed(&pb);
    hs_gemm_operand opar = hs_gemm_op_packed(&par), oxh = hs_gemm_op_bf16(xh, k);
    hs_gemm_operand owh = hs_gemm_op_bf16(wh, k), ox = hs_gemm_op_f32(x, k, 0);
    hs_gemm_operand ow = hs_gemm_op_f32(w, k, 0), owt = hs_gemm_op_f32(wt, n, 1);
    hs_gemm_time t = {0.0, 0.0};
    // packed × packed, bf16 × bf16: the direct GEMMs
    assert_int_equal(hs_gemm(ctx, m, n, k, &opa, &opb, 0.0f, c, n, &t), HS_OK);
    assert_int_equal(hs_gemm_packed(&pa, &pb, 0.0f, ce, n), HS_OK);
    assert_memory_equal(c, ce, sizeof(float) * mn);
    assert_int_equal(hs_gemm(ctx, m, n, k, &oxh, &owh, 0.0f, c, n, NULL), HS_OK);
    assert_int_equal(hs_gemm_bf16(m, n, k, xh, k, wh, k, 0.0f, ce, n), HS_OK);
    assert_memory_equal(c, ce, sizeof(float) * mn);
    // packed × fp32 (W stored k × n): dequantize A, then the tiled fp32 GEMM
    assert_int_equal(hs_dequantize(&pa, da, k), HS_OK);
    assert_int_equal(hs_gemm(ctx, m, n, k, &opa, &owt, 0.0f, c, n, &t), HS_OK);
    assert_int_equal(hs_gemm_f32_tiled(0, 0, m, n, k, da, k, wt, n, 0.0f, ce, n), HS_OK);
    assert_memory_equal(c, ce, sizeof(float) * mn);
    // packed with an RHT × fp32: dequantized and rotated back
    assert_int_equal(hs_dequantize(&par, da, k), HS_OK);
    assert_int_equal(hs_rht_apply(da, m, k, k, 16, 77, 0, 1), HS_OK);
    assert_int_equal(hs_gemm(ctx, m, n, k, &opar, &ow, 0.0f, c, n, NULL), HS_OK);
    assert_int_equal(hs_gemm_f32_tiled(0, 1, m, n, k, da, k, w, k, 0.0f, ce, n), HS_OK);
    assert_memory_equal(c, ce, sizeof(float) * mn);
    // packed with an RHT × packed without: both expanded
    assert_int_equal(hs_dequantize(&pb, db, k), HS_OK);
    assert_int_equal(hs_gemm(ctx, m, n, k, &opar, &opb, 0.0f, c, n, NULL), HS_OK);
    assert_int_equal(hs_gemm_f32_tiled(0, 1, m, n, k, da, k, db, k, 0.0f, ce, n), HS_OK);
    assert_memory_equal(c, ce, sizeof(float) * mn);
    // fp32 × bf16, beta = 0.5 on the previous C
    for (size_t i = 0; i < nk; i++) db[i] = hs_bf16_decode(wh[i]);
    memcpy(ce, c, sizeof(float) * mn);
    assert_int_equal(hs_gemm(ctx, m, n, k, &ox, &owh, 0.5f, c, n, NULL), HS_OK);
    assert_int_equal(hs_gemm_f32_tiled(0, 1, m, n, k, x, k, db, k, 0.5f, ce, n), HS_OK);
    assert_memory_equal(c, ce, sizeof(float) * mn);
    assert_true(t.gemm > 0.0 && t.expand > 0.0);
    // fp32 × fp32, W in either layout: a double GEMM's value, the same bits at 1 and 2 threads
    int saved = omp_get_max_threads();
    for (int threads = 1; threads <= 2; threads++) {
        omp_set_num_threads(threads);
        assert_int_equal(hs_gemm(ctx, m, n, k, &ox, threads == 1 ? &ow : &owt, 0.0f,
                                 threads == 1 ? c : c2, n, NULL), HS_OK);
    }
    omp_set_num_threads(saved);
    assert_memory_equal(c, c2, sizeof(float) * mn);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0, sabs = 0;
            for (int64_t e = 0; e < k; e++) {
                s += (double)x[i * k + e] * w[j * k + e];
                sabs += fabs((double)x[i * k + e] * w[j * k + e]);
            }
            assert_true(fabs(c[i * n + j] - s) <= (double)(k + 1) * 0x1p-24 * sabs + 1e-30);
        }
    // errors: a packed operand of the wrong shape, an unknown form
    assert_int_equal(hs_gemm(ctx, m, n, k, &opb, &opb, 0.0f, c, n, NULL), HS_ERR_INVALID_ARG);
    hs_gemm_operand bad = ox;
    bad.form = (hs_gemm_form)7;
    assert_int_equal(hs_gemm(ctx, m, n, k, &bad, &ow, 0.0f, c, n, NULL), HS_ERR_INVALID_ARG);
    hs_gemm_ctx_free(ctx);
    hs_packed_free(&pa);
    hs_packed_free(&pb);
    hs_packed_free(&par);
    free(x), free(w), free(wt), free(da), free(db), free(c), free(ce), free(c2), free(xh), free(wh);
}

/* The ISA override: forcing a level never selects one the CPU lacks. */
static void test_isa_force(void **st) {
    (void)st;
    hs_isa best = hs_isa_detect();
    assert_int_equal(hs_isa_force(HS_ISA_REF), HS_ISA_REF);
    assert_string_equal(hs_isa_name(), "ref");
    assert_true(hs_isa_force(HS_ISA_AVX512) <= best);
    assert_int_equal(hs_isa_force(best), best);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_isa_force),
        cmocka_unit_test(test_exact_block16),
        cmocka_unit_test(test_exact_block32),
        cmocka_unit_test(test_exact_block64),
        cmocka_unit_test(test_exact_block128),
        cmocka_unit_test(test_exact_row),
        cmocka_unit_test(test_mxfp4_wide_scales),
        cmocka_unit_test(test_nvfp4),
        cmocka_unit_test(test_fp32_scales_and_sr_prescale),
        cmocka_unit_test(test_nan_scale),
        cmocka_unit_test(test_thread_independence),
        cmocka_unit_test(test_trainer_shapes),
        cmocka_unit_test(test_panel_and_chunk_edges),
        cmocka_unit_test(test_exact_block4_block8),
        cmocka_unit_test(test_task_split),
        cmocka_unit_test(test_scale_codes_all),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_long_rows),
        cmocka_unit_test(test_empty_k),
        cmocka_unit_test(test_bf16),
        cmocka_unit_test(test_bf16_exact_sequence),
        cmocka_unit_test(test_bf16_contract_edges),
        cmocka_unit_test(test_bf16v),
        cmocka_unit_test(test_bf16_probe),
        cmocka_unit_test(test_quantized_operands_and_fallback),
        cmocka_unit_test(test_hs_gemm_routing), /* last: its context sets OpenBLAS to 1 thread */
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

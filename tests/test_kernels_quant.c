/* test_kernels_quant.c: every SIMD quantizer against the reference, byte for byte.
 *
 * For every E2M1 format (MXFP4 with blocks 16..128, fp4row, NVFP4 two-level with 1D blocks and
 * 2D tiles, FP32-scaled fp4), every scale rule that applies, RNE and stochastic rounding (with
 * and without the SR pre-scale), row-wise and column-wise, RHT off and on, on shapes around the
 * kernels' vector width and tiles (16 lanes, 256-column chunks, blocks; n = w−1, w, w+1, several
 * w) and on data with zeros, NaN/Inf, huge and subnormal values: the codes (whole rows, padding
 * included), scales, tensor_scale, groups_halved and groups_total must equal hs_quantize_ref's.
 * Each ISA the CPU supports is exercised by calling its kernel directly (a covered spec must not
 * fall back) and through hs_quantize with the ISA forced. The dedicated MXFP4 kernels (row,
 * column, fused) also get Half-S groups on the decision boundary and on every rounding boundary
 * of both candidates' grids, and the trainer's shapes (test_mx_*).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "halfs/halfs.h"
#include "kernels/quant_kernels.h"
#include "util.h"

static uint64_t rs = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) { return util_rand_next(&rs); }
static void fill(float *x, int64_t n, int kind) { util_fill_kind(x, n, kind, &rs); }

typedef hs_status (*qfn)(const hs_quant_spec *, const float *, int64_t, int64_t, int64_t, int,
                         hs_packed *);

static int n_checked, n_kernel_calls;

static void describe(char *buf, size_t sz, const hs_quant_spec *s, int64_t rows, int64_t cols,
                     int tr, int kind) {
    snprintf(buf, sz, "elem %s scale %d group %d block %d tile2d %d rule %s %s pre %d rht %d "
             "%lldx%lld tr %d data %d",
             hs_elem_name(s->elem), (int)s->scale_fmt, (int)s->group, (int)s->block, (int)s->tile2d,
             hs_rule_name(s->rule), hs_rounding_name(s->rounding), (int)s->sr_prescale, (int)s->rht,
             (long long)rows, (long long)cols, tr, kind);
}

/* Compare kernel(s) against the reference on x (rows × cols, ld). must_cover: the kernel must
 * accept the spec. */
static void check_one(const hs_quant_spec *s, const float *x, int64_t rows, int64_t cols,
                      int64_t ld, int tr, int kind, qfn kernel, int must_cover) {
    int64_t R = tr ? cols : rows, C = tr ? rows : cols;
    hs_packed ref, got;
    assert_int_equal(hs_packed_alloc(&ref, s, R, C), HS_OK);
    assert_int_equal(hs_packed_alloc(&got, s, R, C), HS_OK);
    assert_int_equal(hs_quantize_ref(s, x, rows, cols, ld, tr, &ref), HS_OK);
    memset(got.codes, 0xA5, (size_t)(R * got.code_stride)); /* the kernel must overwrite all */
    hs_status st = kernel(s, x, rows, cols, ld, tr, &got);
    char what[256];
    describe(what, sizeof what, s, rows, cols, tr, kind);
    if (st == HS_ERR_UNSUPPORTED) {
        if (must_cover) {
            print_error("kernel does not cover: %s\n", what);
            fail();
        }
        hs_packed_free(&ref);
        hs_packed_free(&got);
        return;
    }
    n_kernel_calls++;
    if (st != HS_OK) {
        print_error("kernel failed (%s): %s\n", hs_last_error(), what);
        fail();
    }
    for (int64_t r = 0; r < R; r++)
        for (int64_t b = 0; b < ref.code_stride; b++) {
            uint8_t e = ref.codes[r * ref.code_stride + b], g = got.codes[r * got.code_stride + b];
            if (e != g) {
                print_error("code byte (%lld, %lld) = 0x%02x, reference 0x%02x: %s\n", (long long)r,
                            (long long)b, g, e, what);
                fail();
            }
        }
    size_t sb = (size_t)(R * ref.groups_per_row) * (s->scale_fmt == HS_SCALE_FP32 ? 4 : 1);
    if (memcmp(ref.scales, got.scales, sb) != 0) {
        for (size_t i = 0; i < sb; i++)
            if (((uint8_t *)ref.scales)[i] != ((uint8_t *)got.scales)[i]) {
                print_error("scale byte %zu = 0x%02x, reference 0x%02x: %s\n", i,
                            ((uint8_t *)got.scales)[i], ((uint8_t *)ref.scales)[i], what);
                break;
            }
        fail();
    }
    if (memcmp(&ref.tensor_scale, &got.tensor_scale, 4) != 0) {
        print_error("tensor_scale %a, reference %a: %s\n", got.tensor_scale, ref.tensor_scale, what);
        fail();
    }
    if (ref.groups_halved != got.groups_halved || ref.groups_total != got.groups_total) {
        print_error("groups halved/total %lld/%lld, reference %lld/%lld: %s\n",
                    (long long)got.groups_halved, (long long)got.groups_total,
                    (long long)ref.groups_halved, (long long)ref.groups_total, what);
        fail();
    }
    n_checked++;
    hs_packed_free(&ref);
    hs_packed_free(&got);
}

/* The kernels to test: each ISA's slot that the CPU supports, called directly. */
typedef struct {
    const char *name;
    qfn fn;
    hs_isa isa;
    int tiles2d; /* covers NVFP4 2D 16×16 tiles */
    int cont_mse; /* covers the continuous (UE4M3/FP32) mse grid search */
    int rows_mx;  /* covers only row-wise MXFP4-like specs (test_rows_kernel says which) */
    int cols_mx;  /* covers only column-wise MXFP4-like specs (the same) */
} kern;
static const kern kernels[] = {
    {"avx2", hs_quantize_e2m1_avx2, HS_ISA_AVX2, 1, 0, 0, 0},
    {"avx512", hs_quantize_e2m1_avx512, HS_ISA_AVX512, 1, 1, 0, 0},
    {"avx512-rows", hs_quantize_e2m1_rows_avx512, HS_ISA_AVX512, 0, 0, 1, 0},
    {"avx2-rows", hs_quantize_e2m1_rows_avx2, HS_ISA_AVX2, 0, 0, 1, 0},
    {"avx2-cols", hs_quantize_e2m1_cols_avx2, HS_ISA_AVX2, 0, 0, 0, 1},
};
static const int nkernels = sizeof kernels / sizeof kernels[0];

/* The dedicated MXFP4 kernels of each ISA level (E8M0, block 16/32, ocp..halfs, RNE/SR): the
 * mx tests below run once per level the CPU has, with hs_quantize and hs_quantize_both forced
 * to that level (so that the dispatcher picks that level's kernels). */
typedef struct {
    const char *name;
    hs_isa isa;
    qfn rows, cols;
} mxk;
static const mxk mx_levels[] = {
    {"avx2", HS_ISA_AVX2, hs_quantize_e2m1_rows_avx2, hs_quantize_e2m1_cols_avx2},
    {"avx512", HS_ISA_AVX512, hs_quantize_e2m1_rows_avx512, hs_quantize_e2m1_cols_avx512},
};
static const mxk *mx_cur;

/* body() once per level of mx_levels the CPU has (skipped if none) */
static void for_mx_levels(void (*body)(void)) {
    int ran = 0;
    for (size_t i = 0; i < sizeof mx_levels / sizeof mx_levels[0]; i++) {
        if (hs_isa_detect() < mx_levels[i].isa) continue;
        assert_int_equal(hs_isa_force(mx_levels[i].isa), mx_levels[i].isa);
        mx_cur = &mx_levels[i];
        body();
        ran++;
    }
    hs_isa_force(hs_isa_detect());
    if (!ran) skip();
}

/* The spec variants of one named format. */
static void for_format(hs_format f, int block, int tile2d, const hs_rule *rules, int nrules,
                       const int64_t (*shapes)[2], int nshapes, int with_rht) {
    static const int rhts[] = {0, 16, 32, 128};
    for (int k = 0; k < nkernels; k++) {
        if (hs_isa_detect() < kernels[k].isa) continue;
        for (int ri = 0; ri < nrules; ri++)
            for (int rnd_mode = 0; rnd_mode < 3; rnd_mode++)
                for (int tr = 0; tr < 2; tr++)
                    for (int h = 0; h < (with_rht ? 4 : 1); h++)
                        for (int si = 0; si < nshapes; si++) {
                            hs_quant_spec s;
                            assert_int_equal(hs_quant_spec_init(&s, f), HS_OK);
                            if (block) s.block = block;
                            s.tile2d = tile2d;
                            if (tile2d) s.group = HS_GROUP_BLOCK; /* fp4 defaults to one per row */
                            s.rule = rules[ri];
                            s.rounding = rnd_mode ? HS_ROUND_SR : HS_ROUND_RNE;
                            s.sr_prescale = rnd_mode == 2 ? (s.scale_fmt == HS_SCALE_E8M0 ? 0 : 1) : -1;
                            s.seed = 1234 + (uint64_t)si;
                            s.stream = 7;
                            s.rht = rhts[h];
                            s.rht_seed = 99;
                            int64_t rows = shapes[si][0], cols = shapes[si][1];
                            int64_t C = tr ? rows : cols;
                            if (s.rht && C % s.rht) continue;
                            if (hs_quant_spec_validate(&s) != HS_OK) continue;
                            int64_t ld = cols + (si % 3);
                            int kind = (int)((ri + si + tr + h) % 5);
                            float *x = malloc(sizeof(float) * (size_t)(rows * ld));
                            fill(x, rows * ld, kind);
                            check_one(&s, x, rows, cols, ld, tr, kind, kernels[k].fn,
                                      !kernels[k].rows_mx && !kernels[k].cols_mx && (!tile2d || kernels[k].tiles2d) &&
                                          (s.rule != HS_RULE_MSE || s.scale_fmt == HS_SCALE_E8M0 ||
                                           kernels[k].cont_mse));
                            free(x);
                        }
    }
}

static const int64_t shapes_block[][2] = {
    {1, 1},   {1, 15},  {3, 17},   {15, 31},  {16, 32},  {17, 33},  {31, 64},
    {33, 100}, {16, 255}, {5, 256}, {18, 257}, {47, 129}, {2, 600},  {64, 128},
};
static const int nshapes_block = sizeof shapes_block / sizeof shapes_block[0];
static const int64_t shapes_rht[][2] = {{16, 128}, {33, 256}, {128, 48}, {5, 512}, {256, 17}};

static const hs_rule e8m0_rules[] = {HS_RULE_OCP,  HS_RULE_CEIL,  HS_RULE_RCEIL,       HS_RULE_EVEN,
                                     HS_RULE_HALF, HS_RULE_HALFS, HS_RULE_HALFS_SIGMA, HS_RULE_MSE};
static const hs_rule ue4m3_rules[] = {HS_RULE_MAX, HS_RULE_HALF, HS_RULE_HALFS, HS_RULE_4OVER6,
                                      HS_RULE_MSE};
static const hs_rule fp32_rules[] = {HS_RULE_MAX, HS_RULE_HALF, HS_RULE_HALFS, HS_RULE_MSE};

static void test_mxfp4_blocks(void **st) {
    (void)st;
    static const int blocks[] = {16, 32, 64, 128};
    for (int b = 0; b < 4; b++)
        for_format(HS_FMT_MXFP4, blocks[b], 0, e8m0_rules, 8, shapes_block, nshapes_block, 0);
}
static void test_mxfp4_rht(void **st) {
    (void)st;
    for_format(HS_FMT_MXFP4, 32, 0, e8m0_rules, 8, shapes_rht, 5, 1);
}
static void test_fp4row(void **st) {
    (void)st;
    for_format(HS_FMT_FP4ROW, 0, 0, e8m0_rules, 8, shapes_block, nshapes_block, 0);
    for_format(HS_FMT_FP4ROW, 0, 0, e8m0_rules, 8, shapes_rht, 5, 1);
}
static void test_nvfp4(void **st) {
    (void)st;
    for_format(HS_FMT_NVFP4, 0, 0, ue4m3_rules, 5, shapes_block, nshapes_block, 0);
    for_format(HS_FMT_NVFP4, 0, 0, ue4m3_rules, 5, shapes_rht, 5, 1);
}
static void test_nvfp4_2d(void **st) {
    (void)st;
    /* 2D tiles: the error-comparing rules decide per tile (the sum over the tile in source
     * order), the others from the tile's amax; E8M0 (MXFP4 block 16) as well as UE4M3 */
    static const hs_rule r[] = {HS_RULE_MAX, HS_RULE_HALF, HS_RULE_HALFS, HS_RULE_4OVER6,
                                HS_RULE_MSE};
    for_format(HS_FMT_NVFP4, 16, 16, r, 5, shapes_block, nshapes_block, 0);
    static const hs_rule re[] = {HS_RULE_OCP,   HS_RULE_CEIL,        HS_RULE_RCEIL, HS_RULE_EVEN,
                                 HS_RULE_HALF,  HS_RULE_HALFS,       HS_RULE_HALFS_SIGMA,
                                 HS_RULE_MSE};
    for_format(HS_FMT_MXFP4, 16, 16, re, 8, shapes_block, nshapes_block, 0);
    static const hs_rule rf[] = {HS_RULE_MAX, HS_RULE_HALF, HS_RULE_HALFS};
    for_format(HS_FMT_FP4, 16, 16, rf, 3, shapes_block, nshapes_block, 0);
}
static void test_fp4_fp32_scales(void **st) {
    (void)st;
    for_format(HS_FMT_FP4, 0, 0, fp32_rules, 4, shapes_block, nshapes_block, 0);
}

/* Specs a kernel does not cover still give the reference's bytes through hs_quantize. */
static void test_dispatch_fallback_and_forced_isa(void **st) {
    (void)st;
    static const hs_format fmts[] = {HS_FMT_MXFP8_E4M3, HS_FMT_INT4, HS_FMT_NVFP4, HS_FMT_MXFP4};
    for (int isa = HS_ISA_REF; isa < HS_ISA_COUNT; isa++) {
        if ((int)hs_isa_force((hs_isa)isa) != isa) continue;
        for (int f = 0; f < 4; f++) {
            hs_quant_spec s;
            assert_int_equal(hs_quant_spec_init(&s, fmts[f]), HS_OK);
            if (fmts[f] == HS_FMT_NVFP4) s.rounding = HS_ROUND_RTS; /* no kernel rounds so */
            if (fmts[f] == HS_FMT_MXFP4) s.rounding = HS_ROUND_RNA;
            for (int tr = 0; tr < 2; tr++) {
                float x[37 * 45];
                fill(x, 37 * 45, 1);
                check_one(&s, x, 37, 45, 45, tr, 1, hs_quantize, 0);
            }
        }
        /* a covered spec through the public entry point */
        hs_quant_spec s;
        assert_int_equal(hs_quant_spec_init(&s, HS_FMT_MXFP4), HS_OK);
        float x[40 * 70];
        fill(x, 40 * 70, 0);
        check_one(&s, x, 40, 70, 70, 1, 0, hs_quantize, 0);
    }
    hs_isa_force(hs_isa_detect());
    /* errors are the reference's: a wrong output shape */
    hs_quant_spec s;
    assert_int_equal(hs_quant_spec_init(&s, HS_FMT_MXFP4), HS_OK);
    hs_packed p;
    assert_int_equal(hs_packed_alloc(&p, &s, 8, 64), HS_OK);
    float x[64 * 8] = {0};
    assert_int_equal(hs_quantize(&s, x, 8, 64, 64, 1, &p), HS_ERR_INVALID_ARG);
    hs_packed_free(&p);
}

/* Thread count must not matter (bands are independent; the NVFP4 amax is reduced in order). */
static void test_threads(void **st) {
    (void)st;
    if (hs_isa_detect() < HS_ISA_AVX2) skip();
    const int avx512 = hs_isa_detect() >= HS_ISA_AVX512;
    static const hs_format fmts[] = {HS_FMT_MXFP4, HS_FMT_NVFP4, HS_FMT_FP4ROW};
    for (int f = 0; f < 3; f++) {
        hs_quant_spec s;
        assert_int_equal(hs_quant_spec_init(&s, fmts[f]), HS_OK);
        s.rounding = HS_ROUND_SR;
        s.seed = 5;
        int64_t rows = 300, cols = 512;
        float *x = malloc(sizeof(float) * (size_t)(rows * cols));
        fill(x, rows * cols, 0);
        for (int threads = 1; threads <= 3; threads++) {
            omp_set_num_threads(threads);
            for (int tr = 0; tr < 2; tr++) {
                if (avx512) check_one(&s, x, rows, cols, cols, tr, 0, hs_quantize_e2m1_avx512, 1);
                check_one(&s, x, rows, cols, cols, tr, 0, hs_quantize_e2m1_avx2, 1);
                /* the dedicated MXFP4 kernels (MXFP4 only) */
                check_one(&s, x, rows, cols, cols, tr, 0,
                          tr ? hs_quantize_e2m1_cols_avx2 : hs_quantize_e2m1_rows_avx2, f == 0);
            }
        }
        omp_set_num_threads(2);
        free(x);
    }
}

/* Near-ties of Half-S: groups whose two candidate errors are equal to a few ulps. The SIMD
 * kernels decide most comparisons from float estimates and must fall back to the reference's
 * exact double sums on close calls; these groups sit on the decision boundary. Block 32, scale
 * X = 1 (amax 3.9): the amax favours the ceil scale by 0.8, 21 elements at 0.3 and one at y
 * favour the halved scale by 0.7875 + 0.1875 − 0.5·y; the reference's decision flips near
 * y = 0.35, found by bisection on float y, then rows take y at ±1..16 ulps of the flip, with
 * the elements in several orders (the summation order matters at a tie). */
static int halfs_takes_half(const hs_quant_spec *s, const float *g) {
    hs_packed p;
    assert_int_equal(hs_packed_alloc(&p, s, 1, 32), HS_OK);
    assert_int_equal(hs_quantize_ref(s, g, 1, 32, 32, 0, &p), HS_OK);
    int half = ((uint8_t *)p.scales)[0] == 126; /* e = −1 rather than 0 */
    hs_packed_free(&p);
    return half;
}

static void group_at(float *g, float y, int order) {
    for (int i = 0; i < 32; i++) g[i] = 0.0f;
    int pos = 0;
    int idx[32];
    for (int i = 0; i < 32; i++) idx[i] = (i * (2 * order + 1) + order) % 32; /* a permutation */
    g[idx[pos++]] = 3.9f;
    for (int i = 0; i < 21; i++) g[idx[pos++]] = (i & 1) ? -0.3f : 0.3f;
    g[idx[pos++]] = y;
}

static void test_halfs_near_ties(void **st) {
    (void)st;
    hs_quant_spec s;
    assert_int_equal(hs_quant_spec_init(&s, HS_FMT_MXFP4), HS_OK);
    s.rule = HS_RULE_HALFS;
    enum { ORDERS = 8, ULPS = 64, ROWS = ORDERS * 2 * ULPS };
    float *x = malloc(sizeof(float) * ROWS * 32);
    int row = 0, flips = 0;
    float g[32];
    for (int order = 0; order < ORDERS; order++) {
        float lo = 0.26f, hi = 0.49f;
        group_at(g, lo, order);
        int lo_half = halfs_takes_half(&s, g);
        group_at(g, hi, order);
        if (halfs_takes_half(&s, g) == lo_half) continue; /* no flip in range for this order */
        flips++;
        while (nextafterf(lo, hi) < hi) { /* bisection on floats */
            float mid = lo + (hi - lo) / 2;
            if (mid <= lo || mid >= hi) mid = nextafterf(lo, hi);
            group_at(g, mid, order);
            if (halfs_takes_half(&s, g) == lo_half) lo = mid;
            else hi = mid;
        }
        float y = lo;
        for (int k = 0; k < ULPS; k++) y = nextafterf(y, 0.0f);
        for (int k = 0; k < 2 * ULPS; k++, y = nextafterf(y, 1.0f)) group_at(x + 32 * row++, y, order);
    }
    assert_true(flips > 0);
    for (int k = 0; k < nkernels; k++) {
        if (hs_isa_detect() < kernels[k].isa) continue;
        for (int tr = 0; tr < 2; tr++) {
            if (tr) { /* the same groups, column-wise */
                float *xt = malloc(sizeof(float) * ROWS * 32);
                for (int r = 0; r < row; r++)
                    for (int c = 0; c < 32; c++) xt[c * row + r] = x[r * 32 + c];
                check_one(&s, xt, 32, row, row, 1, 4, kernels[k].fn, !kernels[k].rows_mx);
                free(xt);
            } else {
                check_one(&s, x, row, 32, 32, 0, 4, kernels[k].fn, !kernels[k].cols_mx);
            }
        }
    }
    free(x);
}

/* The row-wise MXFP4 kernel of each level (kernels/quant_mx.c with avx512/quant_mx_avx512_ukernel.c
 * or avx2/quant_mx_avx2_ukernel.c) on every spec it must cover — E8M0,
 * block 16/32, RNE and SR (with and without the 3/4 pre-scale), rules ocp..halfs — with row lengths around its 16-block step (16·B) and the
 * vector width (16, 32, 64 columns, ±1), tails, odd ld, every data kind (NaN/Inf, zeros,
 * subnormals, huge values, grid ties); then halfs groups whose float error estimates are too
 * close to decide (random grid data scaled so both candidates are near), which take the
 * kernel's exact fallback. Specs outside its scope must be declined (HS_ERR_UNSUPPORTED). */
static void rows_kernel_body(void) {
    static const hs_rule rules[] = {HS_RULE_OCP, HS_RULE_CEIL, HS_RULE_RCEIL,
                                    HS_RULE_EVEN, HS_RULE_HALF, HS_RULE_HALFS};
    static const int64_t colsv[] = {1,   2,   15,  16,  17,  31,  32,  33,  63,  64,  65,
                                    255, 256, 257, 511, 512, 513, 543, 1024, 1056, 1100};
    const int ncols = (int)(sizeof colsv / sizeof colsv[0]);
    for (int bi = 0; bi < 2; bi++)
        for (int ri = 0; ri < 6; ri++)
            for (int ci = 0; ci < ncols; ci++) {
                hs_quant_spec s;
                assert_int_equal(hs_quant_spec_init(&s, HS_FMT_MXFP4), HS_OK);
                s.block = bi ? 32 : 16;
                s.rule = rules[ri];
                /* RNE, SR with the automatic 3/4 pre-scale (E8M0: on), SR without it */
                int rm = (ci + ri) % 3;
                s.rounding = rm ? HS_ROUND_SR : HS_ROUND_RNE;
                s.sr_prescale = rm == 2 ? 0 : -1;
                s.seed = 77 + (uint64_t)ci;
                s.stream = 3;
                int64_t rows = 1 + (ci % 4) * 3, cols = colsv[ci], ld = cols + (ci % 3);
                int kind = (ri + ci + bi) % 5;
                float *x = malloc(sizeof(float) * (size_t)(rows * ld));
                fill(x, rows * ld, kind);
                check_one(&s, x, rows, cols, ld, 0, kind, mx_cur->rows, 1);
                /* and through the public entry point */
                check_one(&s, x, rows, cols, ld, 0, kind, hs_quantize, 1);
                free(x);
            }
    /* halfs close calls: elements on a fine grid so many groups' two errors are near-equal */
    for (int bi = 0; bi < 2; bi++) {
        hs_quant_spec s;
        assert_int_equal(hs_quant_spec_init(&s, HS_FMT_MXFP4), HS_OK);
        s.block = bi ? 32 : 16;
        s.rule = HS_RULE_HALFS;
        int64_t rows = 64, cols = 512;
        float *x = malloc(sizeof(float) * (size_t)(rows * cols));
        for (int64_t i = 0; i < rows * cols; i++) {
            int q = (int)(rnd() % 33) - 16; /* multiples of 1/8 up to ±2, some at ±3.9 */
            x[i] = (rnd() % 16 == 0) ? (q < 0 ? -3.9f : 3.9f) : (float)q * 0.125f;
        }
        check_one(&s, x, rows, cols, cols, 0, 4, mx_cur->rows, 1);
        free(x);
    }
    /* rows are independent: the thread count does not matter (OpenMP above 2^15 elements) */
    {
        hs_quant_spec s;
        assert_int_equal(hs_quant_spec_init(&s, HS_FMT_MXFP4), HS_OK);
        int64_t rows = 300, cols = 520;
        float *x = malloc(sizeof(float) * (size_t)(rows * cols));
        fill(x, rows * cols, 0);
        for (int threads = 1; threads <= 3; threads++) {
            omp_set_num_threads(threads);
            s.rounding = HS_ROUND_RNE;
            check_one(&s, x, rows, cols, cols, 0, 0, mx_cur->rows, 1);
            s.rounding = HS_ROUND_SR; /* the random stream is indexed by (row, column) */
            s.seed = 11;
            check_one(&s, x, rows, cols, cols, 0, 0, mx_cur->rows, 1);
        }
        omp_set_num_threads(2);
        free(x);
    }
    /* declined: column-wise, RNA, mse, RHT, NVFP4 */
    hs_quant_spec s;
    float x[64 * 64] = {0};
    hs_packed p;
    assert_int_equal(hs_quant_spec_init(&s, HS_FMT_MXFP4), HS_OK);
    assert_int_equal(hs_packed_alloc(&p, &s, 64, 64), HS_OK);
    assert_int_equal(mx_cur->rows(&s, x, 64, 64, 64, 1, &p), HS_ERR_UNSUPPORTED);
    hs_quant_spec v = s;
    v.rounding = HS_ROUND_RNA;
    assert_int_equal(mx_cur->rows(&v, x, 64, 64, 64, 0, &p), HS_ERR_UNSUPPORTED);
    v = s;
    v.rule = HS_RULE_MSE;
    assert_int_equal(mx_cur->rows(&v, x, 64, 64, 64, 0, &p), HS_ERR_UNSUPPORTED);
    v = s;
    v.rht = 32;
    assert_int_equal(mx_cur->rows(&v, x, 64, 64, 64, 0, &p), HS_ERR_UNSUPPORTED);
    hs_packed_free(&p);
    assert_int_equal(hs_quant_spec_init(&v, HS_FMT_NVFP4), HS_OK);
    assert_int_equal(hs_packed_alloc(&p, &v, 64, 64), HS_OK);
    assert_int_equal(mx_cur->rows(&v, x, 64, 64, 64, 0, &p), HS_ERR_UNSUPPORTED);
    hs_packed_free(&p);
}

static void test_rows_kernel(void **st) {
    (void)st;
    for_mx_levels(rows_kernel_body);
}

/* ------------------------------------------------------------------ MXFP4 Half-S decisions
 *
 * The dedicated MXFP4 kernels (avx512/quant_mx_avx512_ukernel.c; at AVX2 quant_mx_avx2_ukernel.c,
 * in quarter units of X) decide Half-S from float sums in
 * units of the ceil scale X (halfs_q, halfs_delta: the two candidates' grids coincide on
 * [1, 3.5) in those units, so only elements below 1 and from 3.5 on count), and send close
 * calls, and groups whose amax exceeds 2^127, to the reference. These tests put groups where
 * that is easiest to get wrong, and compare every path that takes them (row-wise kernel and
 * hs_quantize, column-wise kernel and hs_quantize, hs_quantize_both) with the reference. */

/* hs_quantize_both of x against the reference, both outputs */
static void check_both(const hs_quant_spec *s, const float *x, int64_t rows, int64_t cols, int64_t ld) {
    hs_packed pr, pc, rr, rc;
    assert_int_equal(hs_packed_alloc(&pr, s, rows, cols), HS_OK);
    assert_int_equal(hs_packed_alloc(&pc, s, cols, rows), HS_OK);
    assert_int_equal(hs_packed_alloc(&rr, s, rows, cols), HS_OK);
    assert_int_equal(hs_packed_alloc(&rc, s, cols, rows), HS_OK);
    memset(pr.codes, 0xA5, (size_t)(pr.rows * pr.code_stride));
    memset(pc.codes, 0x5A, (size_t)(pc.rows * pc.code_stride));
    assert_int_equal(hs_quantize_both(s, s, x, rows, cols, ld, &pr, &pc), HS_OK);
    assert_int_equal(hs_quantize_ref(s, x, rows, cols, ld, 0, &rr), HS_OK);
    assert_int_equal(hs_quantize_ref(s, x, rows, cols, ld, 1, &rc), HS_OK);
    const hs_packed *got[2] = {&pr, &pc}, *ref[2] = {&rr, &rc};
    for (int t = 0; t < 2; t++) {
        char what[256];
        describe(what, sizeof what, s, rows, cols, t, -1);
        if (memcmp(got[t]->codes, ref[t]->codes, (size_t)(ref[t]->rows * ref[t]->code_stride)) ||
            memcmp(got[t]->scales, ref[t]->scales, (size_t)(ref[t]->rows * ref[t]->groups_per_row)) ||
            got[t]->groups_halved != ref[t]->groups_halved) {
            print_error("hs_quantize_both differs from the reference: %s\n", what);
            fail();
        }
        n_checked++;
    }
    hs_packed_free(&pr);
    hs_packed_free(&pc);
    hs_packed_free(&rr);
    hs_packed_free(&rc);
}

/* every path of an MXFP4 spec (E8M0, block 16/32) on x: rows × cols, row stride ld */
static void check_mx_paths(const hs_quant_spec *s, const float *x, int64_t rows, int64_t cols,
                           int64_t ld, int kind) {
    check_one(s, x, rows, cols, ld, 0, kind, mx_cur->rows, 1);
    check_one(s, x, rows, cols, ld, 0, kind, hs_quantize, 1);
    check_one(s, x, rows, cols, ld, 1, kind, mx_cur->cols, 1);
    check_one(s, x, rows, cols, ld, 1, kind, hs_quantize, 1);
    check_both(s, x, rows, cols, ld);
}

/* Near-tie families: a group of B floats (scale X = 1: amax in (2, 4]) whose Half-S decision
 * flips as p moves through [lo, hi]. fam 0: one element p at 3.5+ (halved − ceil error
 * 2p − 7 ≥ 0) against two at ±0.3 (−0.0375 each): flip near 3.5375. fam 1: 3.75 (+0.5)
 * against m elements at ±p in (5/8, 3/4) (−(p/2 − 5/16) each): flip near 0.6875 (B = 32),
 * 0.7083 (B = 16). fam 2: the group of test_halfs_near_ties (3.9, 21 × ±0.3, p), B = 32.
 * `order` permutes the elements (the reference's sums depend on the order at a tie). */
static void tie_group(float *g, int B, int fam, float p, int order) {
    int idx[32];
    for (int i = 0; i < B; i++) idx[i] = (i * (2 * order + 1) + order) % B;
    for (int i = 0; i < B; i++) g[i] = 0.0f;
    int pos = 0;
    if (fam == 0) {
        g[idx[pos++]] = order & 1 ? -p : p;
        g[idx[pos++]] = 0.3f;
        g[idx[pos++]] = -0.3f;
    } else if (fam == 1) {
        g[idx[pos++]] = -3.75f;
        for (int i = 0; i < (B == 32 ? 16 : 12); i++) g[idx[pos++]] = (i & 1) ? -p : p;
    } else {
        g[idx[pos++]] = 3.9f;
        for (int i = 0; i < 21; i++) g[idx[pos++]] = (i & 1) ? -0.3f : 0.3f;
        g[idx[pos++]] = p;
    }
}

static int ref_halves(const hs_quant_spec *s, const float *g) {
    hs_packed p;
    assert_int_equal(hs_packed_alloc(&p, s, 1, s->block), HS_OK);
    assert_int_equal(hs_quantize_ref(s, g, 1, s->block, s->block, 0, &p), HS_OK);
    int h = p.groups_halved == 1;
    hs_packed_free(&p);
    return h;
}

/* MXFP4 with the halfs rule and blocks of B (RNE, E8M0). */
static hs_quant_spec mx_halfs_spec(int B) {
    hs_quant_spec s;
    assert_int_equal(hs_quant_spec_init(&s, HS_FMT_MXFP4), HS_OK);
    s.block = B;
    s.rule = HS_RULE_HALFS;
    return s;
}

static void mx_halfs_near_ties_body(void) {
    enum { ULPS = 48, MAXROWS = 8 * 3 * 2 * ULPS * 3 };
    static const float lo[3] = {3.5f, 0.626f, 0.26f}, hi[3] = {3.7f, 0.749f, 0.49f};
    /* the ties at X = 1, and again at X = 2^−120 and 2^90 (the same decisions, scaled) */
    static const int shifts[3] = {0, -120, 90};
    for (int bi = 0; bi < 2; bi++) {
        const int B = bi ? 32 : 16;
        hs_quant_spec s = mx_halfs_spec(B);
        float *x = malloc(sizeof(float) * (size_t)MAXROWS * 32);
        int rows = 0, flips = 0;
        float g[32];
        for (int fam = 0; fam < 3; fam++) {
            if (fam == 2 && B == 16) continue;
            for (int order = 0; order < 8; order++) {
                float a = lo[fam], b = hi[fam];
                tie_group(g, B, fam, a, order);
                const int ha = ref_halves(&s, g);
                tie_group(g, B, fam, b, order);
                if (ref_halves(&s, g) == ha) continue;
                flips++;
                while (nextafterf(a, b) < b) { /* bisection on floats */
                    float mid = a + (b - a) / 2;
                    if (mid <= a || mid >= b) mid = nextafterf(a, b);
                    tie_group(g, B, fam, mid, order);
                    if (ref_halves(&s, g) == ha) a = mid;
                    else b = mid;
                }
                float y = a;
                for (int k = 0; k < ULPS; k++) y = nextafterf(y, 0.0f);
                for (int k = 0; k < 2 * ULPS; k++, y = nextafterf(y, 8.0f))
                    for (int sh = 0; sh < 3; sh++) {
                        tie_group(x + (size_t)rows * B, B, fam, y, order);
                        for (int i = 0; i < B; i++) x[(size_t)rows * B + i] = ldexpf(x[(size_t)rows * B + i], shifts[sh]);
                        rows++;
                    }
            }
        }
        assert_true(flips >= 8);
        assert_true(rows <= MAXROWS);
        /* one group per row (row-wise), and the same groups down the columns (column-wise) */
        check_mx_paths(&s, x, rows, B, B, 4);
        float *xt = malloc(sizeof(float) * (size_t)rows * 32);
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < B; c++) xt[(size_t)c * rows + r] = x[(size_t)r * B + c];
        check_mx_paths(&s, xt, B, rows, rows, 4);
        /* and several groups per row: the rows kernel's 16-block steps, across row ends */
        const int per = 22; /* groups per row: 704 columns with B = 32 */
        const int nr = rows / per;
        check_mx_paths(&s, x, nr, (int64_t)per * B, (int64_t)per * B, 4);
        free(xt);
        free(x);
    }
}

static void test_mx_halfs_near_ties(void **st) {
    (void)st;
    for_mx_levels(mx_halfs_near_ties_body);
}

/* Elements on every rounding boundary of both candidate grids, in units of the ceil scale X
 * (1/8, 1/4, 3/8, 5/8, 3/4, 7/8, 1, 5/4, 3/2, 7/4, 2, 5/2, 3, 7/2, 4) and one ulp either side,
 * signed, at X = 2^e for e from the smallest E8M0 exponents (the halved scale below 2^−127
 * is not allowed; elements subnormal) to 126 (amax > 2^127: the reference's 4·2^126 is Inf),
 * each group with amax 4, 7/2 or just above 2 in units of X so e_ceil is e. */
static void mx_halfs_boundaries_body(void) {
    static const float bnd[] = {0.125f, 0.25f, 0.375f, 0.625f, 0.75f, 0.875f, 1.0f, 1.25f,
                                1.5f, 1.75f, 2.0f, 2.5f, 3.0f, 3.5f, 4.0f};
    static const int es[] = {-127, -126, -125, -110, -3, 0, 1, 60, 124, 125, 126};
    const int nb = (int)(sizeof bnd / sizeof bnd[0]), ne = (int)(sizeof es / sizeof es[0]);
    for (int bi = 0; bi < 2; bi++) {
        const int B = bi ? 32 : 16;
        hs_quant_spec s = mx_halfs_spec(B);
        const int64_t rows = 48, cols = 22 * (int64_t)B;
        float *x = malloc(sizeof(float) * (size_t)(rows * cols));
        for (int64_t gi = 0; gi < rows * cols / B; gi++) {
            float *g = x + gi * B;
            const int e = es[gi % ne];
            for (int i = 0; i < B; i++) {
                float v = bnd[rnd() % (uint64_t)nb];
                int d = (int)(rnd() % 3); /* one ulp below, on, above */
                if (d == 0) v = nextafterf(v, 0.0f);
                if (d == 2 && v < 4.0f) v = nextafterf(v, 8.0f);
                if (rnd() % 4 == 0) v = 0.0f;
                g[i] = ldexpf(rnd() & 1 ? -v : v, e);
            }
            /* the amax: 4, 7/2 or 2 + ulp (e_ceil = e), at a random place */
            const float am[3] = {4.0f, 3.5f, nextafterf(2.0f, 3.0f)};
            g[rnd() % (uint64_t)B] = ldexpf(am[gi % 3], e);
        }
        check_mx_paths(&s, x, rows, cols, cols, 4);
        check_mx_paths(&s, x, rows, cols - B, cols, 4); /* ld > cols */
        free(x);
    }
}

static void test_mx_halfs_boundaries(void **st) {
    (void)st;
    for_mx_levels(mx_halfs_boundaries_body);
}

/* The trainer's shapes (every row ends in a partial 16-block step, so the row-wise kernels run
 * their steps across row ends) and their neighbours: columns 256, 704, 768, 1408 and others
 * whose rows hold an odd number of blocks or end a step exactly, ld = cols or more, row counts
 * that leave a short last run and a short last column group, every rule of the kernels, RNE
 * and SR, 1 and 2 threads. */
static void mx_trainer_shapes_body(void) {
    static const int64_t colsv[] = {256, 704, 768, 1408, 48, 240, 272, 496, 512, 528, 1040};
    static const hs_rule rules[] = {HS_RULE_OCP, HS_RULE_CEIL, HS_RULE_RCEIL, HS_RULE_EVEN,
                                    HS_RULE_HALF, HS_RULE_HALFS};
    const int ncols = (int)(sizeof colsv / sizeof colsv[0]);
    int k = 0;
    for (int ci = 0; ci < ncols; ci++)
        for (int bi = 0; bi < 2; bi++)
            for (int v = 0; v < 3; v++, k++) {
                hs_quant_spec s;
                assert_int_equal(hs_quant_spec_init(&s, HS_FMT_MXFP4), HS_OK);
                s.block = bi ? 32 : 16;
                /* halfs RNE (the trainer's) every time, then the other rules and SR in turn */
                s.rule = v == 0 ? HS_RULE_HALFS : rules[k % 6];
                s.rounding = v == 2 ? HS_ROUND_SR : HS_ROUND_RNE;
                s.sr_prescale = (k & 1) ? 0 : -1;
                s.seed = 100 + (uint64_t)k;
                s.stream = 5;
                const int64_t rows = v == 1 ? 70 : 67, cols = colsv[ci], ld = cols + (k % 2) * 5;
                const int kind = k % 5;
                float *x = malloc(sizeof(float) * (size_t)(rows * ld));
                fill(x, rows * ld, kind);
                omp_set_num_threads(1 + (k & 1));
                check_mx_paths(&s, x, rows, cols, ld, kind);
                free(x);
            }
    omp_set_num_threads(2);
}

static void test_mx_trainer_shapes(void **st) {
    (void)st;
    for_mx_levels(mx_trainer_shapes_body);
}

/* Dequantize: the AVX-512 kernel (called directly, and through hs_dequantize at every ISA level)
 * returns the reference's floats bit for bit, for E8M0 / UE4M3 / FP32 scales, blocks and one
 * group per row, 2D tiles, the SR pre-scale, NaN groups, and row lengths around 16. */
static void check_dequant(const hs_packed *p, int must_cover) {
    int64_t R = p->rows, C = p->cols, ldy = C + 3;
    float *ref = malloc(sizeof(float) * (size_t)(R * ldy)), *got = malloc(sizeof(float) * (size_t)(R * ldy));
    for (int64_t i = 0; i < R * ldy; i++) ref[i] = got[i] = -7.0f; /* padding must stay */
    assert_int_equal(hs_dequantize_ref(p, ref, ldy), HS_OK);
    for (int k = -1; k < HS_ISA_COUNT; k++) {
        if (k >= 0 && (int)hs_isa_force((hs_isa)k) != k) continue;
        if (k < 0 && hs_isa_detect() < HS_ISA_AVX512) continue;
        hs_status st = k < 0 ? hs_dequantize_e2m1_avx512(p, got, ldy) : hs_dequantize(p, got, ldy);
        if (k < 0 && st == HS_ERR_UNSUPPORTED) {
            assert_false(must_cover);
            continue;
        }
        assert_int_equal(st, HS_OK);
        if (k < 0) n_kernel_calls++;
        if (memcmp(ref, got, sizeof(float) * (size_t)(R * ldy)) != 0) {
            for (int64_t i = 0; i < R * ldy; i++)
                if (memcmp(ref + i, got + i, 4)) {
                    print_error("dequantize (isa %d) element %lld: %a, reference %a (scale %d block %d, "
                                "%lld x %lld)\n", k, (long long)i, got[i], ref[i], (int)p->spec.scale_fmt,
                                (int)p->spec.block, (long long)R, (long long)C);
                    break;
                }
            fail();
        }
        n_checked++;
    }
    hs_isa_force(hs_isa_detect());
    free(ref);
    free(got);
}

static void test_dequantize(void **st) {
    (void)st;
    static const hs_format fmts[] = {HS_FMT_MXFP4, HS_FMT_NVFP4, HS_FMT_FP4ROW, HS_FMT_FP4};
    static const int64_t shapes[][2] = {{1, 1}, {3, 15}, {5, 16}, {7, 17}, {16, 33}, {9, 100}, {33, 257}};
    for (int f = 0; f < 4; f++)
        for (int var = 0; var < 5; var++)
            for (int si = 0; si < 7; si++) {
                hs_quant_spec s;
                assert_int_equal(hs_quant_spec_init(&s, fmts[f]), HS_OK);
                if (var == 1) { /* SR with the 3/4 pre-scale */
                    s.rounding = HS_ROUND_SR;
                    s.sr_prescale = 1;
                }
                if (var == 2 && s.group == HS_GROUP_BLOCK) s.block = s.block == 16 ? 32 : 64;
                if (var == 3) { /* 2D tiles: the tile scale on each row */
                    s.group = HS_GROUP_BLOCK;
                    s.block = 16;
                    s.tile2d = 16;
                }
                if (var == 4 && fmts[f] == HS_FMT_FP4) { /* blocks not a multiple of 16 */
                    s.group = HS_GROUP_BLOCK;
                    s.block = 24;
                }
                if (hs_quant_spec_validate(&s) != HS_OK) continue;
                int64_t rows = shapes[si][0], cols = shapes[si][1];
                float *x = malloc(sizeof(float) * (size_t)(rows * cols));
                fill(x, rows * cols, (f + var + si) % 5);
                hs_packed p;
                assert_int_equal(hs_packed_alloc(&p, &s, rows, cols), HS_OK);
                assert_int_equal(hs_quantize_ref(&s, x, rows, cols, cols, 0, &p), HS_OK);
                check_dequant(&p, 1);
                hs_packed_free(&p);
                free(x);
            }
    /* not covered: other elements go to the reference, through hs_dequantize too */
    hs_quant_spec s;
    assert_int_equal(hs_quant_spec_init(&s, HS_FMT_MXFP8_E4M3), HS_OK);
    float x[5 * 40];
    fill(x, 5 * 40, 1);
    hs_packed p;
    assert_int_equal(hs_packed_alloc(&p, &s, 5, 40), HS_OK);
    assert_int_equal(hs_quantize_ref(&s, x, 5, 40, 40, 0, &p), HS_OK);
    check_dequant(&p, 0);
    hs_packed_free(&p);
}

static int report(void **st) {
    (void)st;
    printf("test_kernels_quant: %d kernel results compared with the reference (%d kernel calls)\n",
           n_checked, n_kernel_calls);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mxfp4_blocks),
        cmocka_unit_test(test_mxfp4_rht),
        cmocka_unit_test(test_fp4row),
        cmocka_unit_test(test_nvfp4),
        cmocka_unit_test(test_nvfp4_2d),
        cmocka_unit_test(test_fp4_fp32_scales),
        cmocka_unit_test(test_dispatch_fallback_and_forced_isa),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_halfs_near_ties),
        cmocka_unit_test(test_rows_kernel),
        cmocka_unit_test(test_mx_halfs_near_ties),
        cmocka_unit_test(test_mx_halfs_boundaries),
        cmocka_unit_test(test_mx_trainer_shapes),
        cmocka_unit_test(test_dequantize),
    };
    return cmocka_run_group_tests(tests, NULL, report);
}

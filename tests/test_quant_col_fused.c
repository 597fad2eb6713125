/* test_quant_col_fused.c: the column-wise (transpose = 1) MXFP4 quantizers of AVX2 and AVX-512
 * (hs_quantize_e2m1_cols_avx2: kernels/quant_mx.c with avx2/quant_mx_avx2_ukernel.c;
 * hs_quantize_e2m1_cols_avx512: the same driver with avx512/quant_mx_avx512_ukernel.c) against hs_quantize_ref, byte for
 * byte: codes (whole code rows, padding included), scales, tensor_scale, groups_halved and
 * groups_total. Every spec it covers (E8M0, block 16 / 32, rules ocp ceil rceil even half halfs,
 * RNE, SR with and without the 3/4 pre-scale), shapes around the 16 lanes, the strip width and
 * the block heights (n = w−1, w, w+1 and tails), ld > cols, special values (±0, subnormals,
 * NaN, ±Inf, huge and tiny groups, exact halfs ties), the dispatcher's path (hs_quantize), and
 * thread-count independence. Each test runs once per level the CPU has (hs_quantize and
 * hs_quantize_both forced to it).
 * hs_quantize_both (the fused row + column quantizer): both outputs against two
 * hs_quantize_ref calls, byte for byte, on covered pairs (every rule / block / rounding
 * combination of the two specs, shapes around the blocks and the 128-row units) and on pairs it
 * must hand to the fallback (NVFP4, RHT, mse), whatever the thread count.
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

#include "halfs/quant.h"
#include "kernels/quant_kernels.h"

static uint64_t rng_state = 0x1234567;
static uint32_t next_u32(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}
static float unif(void) { return (float)(next_u32() >> 8) * 0x1p-24f; }

/* kind 0: gaussian-ish; 1: wide dynamic range; 2: specials sprinkled; 3: few distinct values
 * (many exact halfs ties); 4: tiny (subnormal) values */
static void fill(float *x, int64_t n, int kind) {
    for (int64_t i = 0; i < n; i++) {
        float u = unif() + unif() + unif() - 1.5f;
        switch (kind) {
        case 0: x[i] = u; break;
        case 1: x[i] = u * ldexpf(1.0f, (int)(next_u32() % 40) - 20); break;
        case 2: {
            uint32_t r = next_u32() % 64;
            x[i] = r == 0 ? NAN : r == 1 ? INFINITY : r == 2 ? -INFINITY : r == 3 ? -0.0f
                 : r == 4 ? 0.0f : r == 5 ? 1e-40f : r == 6 ? 3.0e38f : u;
            break;
        }
        case 3: x[i] = (float)((int)(next_u32() % 9) - 4) * 0.75f; break;
        default: x[i] = u * 1e-39f; break;
        }
    }
}

typedef hs_status (*qfn)(const hs_quant_spec *, const float *, int64_t, int64_t, int64_t, int,
                         hs_packed *);

/* The column-wise MXFP4 kernel of each ISA level (and, with hs_quantize_both forced to that
 * level, its fused kernel): every test below runs once per level the CPU has. */
static const struct {
    hs_isa isa;
    qfn cols;
} levels[] = {{HS_ISA_AVX2, hs_quantize_e2m1_cols_avx2}, {HS_ISA_AVX512, hs_quantize_e2m1_cols_avx512}};
static qfn cols_k; /* the level's column-wise kernel */

static void for_levels(void (*body)(void)) {
    int ran = 0;
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
        if (hs_isa_detect() < levels[i].isa) continue;
        assert_int_equal(hs_isa_force(levels[i].isa), levels[i].isa);
        cols_k = levels[i].cols;
        body();
        ran++;
    }
    hs_isa_force(hs_isa_detect());
    if (!ran) skip();
}

static long compared;

/* x (rows × cols, ld) column-wise by fn vs the reference; must_cover: fn may not decline. */
static void check(const hs_quant_spec *s, const float *x, int64_t rows, int64_t cols, int64_t ld,
                  qfn fn, int must_cover) {
    hs_packed ref, got;
    assert_int_equal(hs_packed_alloc(&ref, s, cols, rows), HS_OK);
    assert_int_equal(hs_packed_alloc(&got, s, cols, rows), HS_OK);
    /* garbage in the output: the kernel must write every byte the reference writes */
    memset(got.codes, 0xA5, (size_t)(got.rows * got.code_stride));
    memset(got.scales, 0x5A, (size_t)(got.rows * got.groups_per_row));
    assert_int_equal(hs_quantize_ref(s, x, rows, cols, ld, 1, &ref), HS_OK);
    hs_status st = fn(s, x, rows, cols, ld, 1, &got);
    if (!must_cover && st == HS_ERR_UNSUPPORTED) goto done;
    assert_int_equal(st, HS_OK);
    for (int64_t r = 0; r < ref.rows; r++) {
        const uint8_t *a = ref.codes + r * ref.code_stride, *b = got.codes + r * got.code_stride;
        if (memcmp(a, b, (size_t)ref.code_stride)) {
            for (int64_t i = 0; i < ref.code_stride; i++)
                if (a[i] != b[i]) {
                    print_error("%lldx%lld rule %s block %d rnd %d pre %d: codes of packed row %lld "
                                "byte %lld: ref %02x got %02x\n", (long long)rows, (long long)cols,
                                hs_rule_name(s->rule), s->block, s->rounding, s->sr_prescale,
                                (long long)r, (long long)i, a[i], b[i]);
                    break;
                }
            fail();
        }
    }
    size_t ns = (size_t)(ref.rows * ref.groups_per_row);
    if (memcmp(ref.scales, got.scales, ns)) {
        for (size_t i = 0; i < ns; i++)
            if (((uint8_t *)ref.scales)[i] != ((uint8_t *)got.scales)[i]) {
                print_error("%lldx%lld rule %s block %d: scale %zu: ref %02x got %02x\n",
                            (long long)rows, (long long)cols, hs_rule_name(s->rule), s->block, i,
                            ((uint8_t *)ref.scales)[i], ((uint8_t *)got.scales)[i]);
                break;
            }
        fail();
    }
    assert_true(ref.tensor_scale == got.tensor_scale);
    assert_int_equal(ref.groups_halved, got.groups_halved);
    assert_int_equal(ref.groups_total, got.groups_total);
    compared++;
done:
    hs_packed_free(&ref);
    hs_packed_free(&got);
}

static const hs_rule rules[] = {HS_RULE_OCP, HS_RULE_CEIL, HS_RULE_RCEIL,
                                HS_RULE_EVEN, HS_RULE_HALF, HS_RULE_HALFS};
enum { NRULES = sizeof rules / sizeof rules[0] };

static void spec_of(hs_quant_spec *s, int block, hs_rule rule, int mode, uint64_t seed) {
    assert_int_equal(hs_quant_spec_init(s, HS_FMT_MXFP4), HS_OK);
    s->block = block;
    s->rule = rule;
    s->rounding = mode ? HS_ROUND_SR : HS_ROUND_RNE;
    s->sr_prescale = mode == 2 ? 0 : -1; /* mode 1: automatic (on for E8M0), 2: off */
    s->seed = seed;
    s->stream = 11;
}

/* every covered spec on shapes around the lanes (16), the strips (64..512) and blocks */
static void cols_sweep_body(void) {
    /* rows = the group axis (x rows), cols = packed rows (lanes) */
    static const int64_t shapes[][2] = {
        {1, 1},   {15, 15}, {16, 16}, {17, 17},  {31, 33},  {32, 32},  {33, 47},
        {63, 64}, {64, 65}, {65, 1},  {1, 129},  {100, 31}, {96, 513}, {129, 100},
        {7, 300}, {160, 48}, {33, 1040},
        /* around the 128-column bands and the strips (the next-band prefetch's edges) */
        {70, 127}, {65, 128}, {64, 129}, {33, 255}, {40, 257}, {31, 2049},
    };
    const int nshapes = sizeof shapes / sizeof shapes[0];
    for (int b = 16; b <= 32; b += 16)
        for (int ri = 0; ri < NRULES; ri++)
            for (int mode = 0; mode < 3; mode++)
                for (int si = 0; si < nshapes; si++) {
                    int64_t rows = shapes[si][0], cols = shapes[si][1], ld = cols + si % 3;
                    hs_quant_spec s;
                    spec_of(&s, b, rules[ri], mode, 77 + (uint64_t)si);
                    float *x = malloc(sizeof(float) * (size_t)(rows * ld));
                    assert_non_null(x);
                    fill(x, rows * ld, (int)((si + ri + mode) % 5));
                    check(&s, x, rows, cols, ld, cols_k, 1);
                    check(&s, x, rows, cols, ld, hs_quantize, 1);
                    free(x);
                }
}

/* specials: whole groups of zeros, of NaN / Inf, of one huge value, of subnormals; and the
 * values E8M0 clamps (amax near FLT_MAX and near the smallest subnormal) */
static void cols_specials_body(void) {
    const int64_t rows = 64, cols = 48;
    float *x = calloc((size_t)(rows * cols), sizeof(float));
    assert_non_null(x);
    for (int64_t c = 0; c < cols; c++)
        for (int64_t r = 0; r < rows; r++) {
            float *v = &x[r * cols + c];
            switch (c % 8) {
            case 0: *v = 0.0f; break;
            case 1: *v = r == 5 ? NAN : 1.0f; break;
            case 2: *v = r == 40 ? -INFINITY : -2.5f; break;
            case 3: *v = r % 2 ? 3.4e38f : -3.0e38f; break;
            case 4: *v = (r % 3 ? 1.4e-45f : -2.8e-45f); break;
            case 5: *v = r == 0 ? 6.0f : 0.25f * (float)(r % 4); break;
            case 6: *v = (r & 1) ? -0.0f : 0.0f; break;
            default: *v = ldexpf(1.0f, (int)(r % 30) - 15) * (r % 2 ? 1.0f : -1.5f); break;
            }
        }
    for (int b = 16; b <= 32; b += 16)
        for (int ri = 0; ri < NRULES; ri++)
            for (int mode = 0; mode < 3; mode++) {
                hs_quant_spec s;
                spec_of(&s, b, rules[ri], mode, 5);
                check(&s, x, rows, cols, cols, cols_k, 1);
            }
    free(x);
}

static void both_check(const hs_quant_spec *sr, const hs_quant_spec *sc, const float *x,
                       int64_t rows, int64_t cols, int64_t ld);

/* halfs close calls: groups whose two candidates' exact error sums differ by 2^-20 (halved
 * better) or −2^-20 (ceil better), or tie exactly (ceil kept), well inside the float estimates'
 * bound, so the kernel hands them to the reference; the codes must then be the chosen scale's
 * (the RNE kernel selects between the candidates' codes built in its decision pass). A group
 * of 32: one ±4 (clamped to 3 under the halved scale: error 1), sixteen ±0.25 (ceil: error
 * 1/16 each, halved: exact) and one a = 0.375 ∓ 2^-19 (ceil − halved error: ±2^-20), zeros
 * elsewhere, in a column-dependent order. */
static void cols_halfs_close_calls_body(void) {
    const int64_t rows = 96, cols = 53; /* three groups per column, a lane tail */
    float *x = calloc((size_t)(rows * cols), sizeof(float));
    assert_non_null(x);
    int64_t want_halved = 0;
    for (int64_t c = 0; c < cols; c++)
        for (int64_t g = 0; g < rows / 32; g++) {
            const int kind = (int)((c + g) % 4); /* 0: halved wins, 1: ceil wins, 2: tie, 3: noise */
            float v[32] = {0};
            if (kind == 3) {
                for (int i = 0; i < 32; i++) v[i] = unif() - 0.5f;
            } else {
                v[0] = 4.0f;
                for (int i = 1; i <= 16; i++) v[i] = 0.25f;
                v[17] = kind == 0 ? 0.375f - 0x1p-19f : kind == 1 ? 0.375f + 0x1p-19f : 0.0f;
                want_halved += kind == 0;
            }
            for (int i = 0; i < 32; i++) {
                /* rotate by the column, signs from the rng: neither changes the errors */
                float e = v[(i + c * 7) % 32];
                x[(g * 32 + i) * cols + c] = next_u32() & 1 ? -e : e;
            }
        }
    for (int mode = 0; mode < 3; mode++) {
        hs_quant_spec s;
        spec_of(&s, 32, HS_RULE_HALFS, mode, 21);
        if (mode == 0) { /* the construction: the reference halves exactly the kind-0 groups */
            hs_packed ref;
            assert_int_equal(hs_packed_alloc(&ref, &s, cols, rows), HS_OK);
            assert_int_equal(hs_quantize_ref(&s, x, rows, cols, cols, 1, &ref), HS_OK);
            for (int64_t c = 0; c < cols; c++)
                for (int64_t g = 0; g < rows / 32; g++) {
                    const int kind = (int)((c + g) % 4);
                    const uint8_t sc = ((uint8_t *)ref.scales)[c * ref.groups_per_row + g];
                    if (kind == 0) assert_int_equal(sc, 127 - 1); /* 2^-1: halved */
                    if (kind == 1 || kind == 2) assert_int_equal(sc, 127); /* 2^0: ceil */
                }
            assert_true(ref.groups_halved >= want_halved);
            hs_packed_free(&ref);
        }
        check(&s, x, rows, cols, cols, cols_k, 1);
        both_check(&s, &s, x, rows, cols, cols);
    }
    free(x);
}

/* the result does not depend on the thread count (a large shape: the parallel path) */
static void cols_threads_body(void) {
    const int64_t rows = 300, cols = 1100;
    float *x = malloc(sizeof(float) * (size_t)(rows * cols));
    assert_non_null(x);
    fill(x, rows * cols, 0);
    for (int mode = 0; mode < 2; mode++) {
        hs_quant_spec s;
        spec_of(&s, 32, HS_RULE_HALFS, mode, 9);
        hs_packed p1, p2;
        assert_int_equal(hs_packed_alloc(&p1, &s, cols, rows), HS_OK);
        assert_int_equal(hs_packed_alloc(&p2, &s, cols, rows), HS_OK);
        int saved = omp_get_max_threads();
        omp_set_num_threads(1);
        assert_int_equal(cols_k(&s, x, rows, cols, cols, 1, &p1), HS_OK);
        omp_set_num_threads(3);
        assert_int_equal(cols_k(&s, x, rows, cols, cols, 1, &p2), HS_OK);
        omp_set_num_threads(saved);
        assert_memory_equal(p1.codes, p2.codes, (size_t)(p1.rows * p1.code_stride));
        assert_memory_equal(p1.scales, p2.scales, (size_t)(p1.rows * p1.groups_per_row));
        assert_int_equal(p1.groups_halved, p2.groups_halved);
        check(&s, x, rows, cols, cols, cols_k, 1);
        hs_packed_free(&p1);
        hs_packed_free(&p2);
    }
    free(x);
}

/* what it must decline (touching nothing): row-wise calls and specs outside its set */
static void cols_declines_body(void) {
    float x[64 * 64];
    fill(x, 64 * 64, 0);
    hs_quant_spec s;
    spec_of(&s, 32, HS_RULE_OCP, 0, 1);
    hs_packed p;
    assert_int_equal(hs_packed_alloc(&p, &s, 64, 64), HS_OK);
    memset(p.codes, 0x33, (size_t)(p.rows * p.code_stride));
    assert_int_equal(cols_k(&s, x, 64, 64, 64, 0, &p), HS_ERR_UNSUPPORTED);
    hs_quant_spec v = s;
    v.rule = HS_RULE_MSE;
    assert_int_equal(cols_k(&v, x, 64, 64, 64, 1, &p), HS_ERR_UNSUPPORTED);
    v = s;
    v.rht = 16;
    assert_int_equal(cols_k(&v, x, 64, 64, 64, 1, &p), HS_ERR_UNSUPPORTED);
    v = s;
    v.rounding = HS_ROUND_RNA;
    assert_int_equal(cols_k(&v, x, 64, 64, 64, 1, &p), HS_ERR_UNSUPPORTED);
    for (int64_t i = 0; i < p.rows * p.code_stride; i++) assert_int_equal(p.codes[i], 0x33);
    hs_packed_free(&p);
}

/* out (allocated for spec s) equal to the reference quantization of x, transposed or not */
static void same_as_ref(const hs_quant_spec *s, const float *x, int64_t rows, int64_t cols,
                        int64_t ld, int tr, const hs_packed *got) {
    hs_packed ref;
    int64_t R = tr ? cols : rows, C = tr ? rows : cols;
    assert_int_equal(hs_packed_alloc(&ref, s, R, C), HS_OK);
    assert_int_equal(hs_quantize_ref(s, x, rows, cols, ld, tr, &ref), HS_OK);
    if (memcmp(ref.codes, got->codes, (size_t)(R * ref.code_stride))) {
        print_error("fused %s %lldx%lld rule %s block %d rnd %d: codes differ\n", tr ? "col" : "row",
                    (long long)rows, (long long)cols, hs_rule_name(s->rule), s->block, s->rounding);
        fail();
    }
    size_t sb = (size_t)(R * ref.groups_per_row) * (s->scale_fmt == HS_SCALE_FP32 ? 4 : 1);
    assert_memory_equal(ref.scales, got->scales, sb);
    assert_true(ref.tensor_scale == got->tensor_scale);
    assert_int_equal(ref.groups_halved, got->groups_halved);
    assert_int_equal(ref.groups_total, got->groups_total);
    compared++;
    hs_packed_free(&ref);
}

static void both_check(const hs_quant_spec *sr, const hs_quant_spec *sc, const float *x,
                       int64_t rows, int64_t cols, int64_t ld) {
    hs_packed pr, pc;
    assert_int_equal(hs_packed_alloc(&pr, sr, rows, cols), HS_OK);
    assert_int_equal(hs_packed_alloc(&pc, sc, cols, rows), HS_OK);
    memset(pr.codes, 0xA5, (size_t)(pr.rows * pr.code_stride));
    memset(pc.codes, 0xA5, (size_t)(pc.rows * pc.code_stride));
    assert_int_equal(hs_quantize_both(sr, sc, x, rows, cols, ld, &pr, &pc), HS_OK);
    same_as_ref(sr, x, rows, cols, ld, 0, &pr);
    same_as_ref(sc, x, rows, cols, ld, 1, &pc);
    hs_packed_free(&pr);
    hs_packed_free(&pc);
}

/* covered pairs (the fused kernel on AVX-512; the fallback elsewhere: both must match) */
static void both_covered_body(void) {
    static const int64_t shapes[][2] = {{1, 1},    {15, 17},  {32, 33},  {33, 31},  {127, 64},
                                        {128, 48}, {129, 65}, {130, 513}, {300, 100}, {64, 1040}};
    const int nshapes = sizeof shapes / sizeof shapes[0];
    for (int si = 0; si < nshapes; si++)
        for (int k = 0; k < 12; k++) {
            int64_t rows = shapes[si][0], cols = shapes[si][1], ld = cols + si % 2;
            hs_quant_spec sr, sc;
            spec_of(&sr, k & 1 ? 16 : 32, rules[(k + si) % NRULES], k % 3, 3 + (uint64_t)k);
            spec_of(&sc, k & 2 ? 16 : 32, rules[(k / 2 + si) % NRULES], (k + 1) % 3, 40 + (uint64_t)si);
            float *x = malloc(sizeof(float) * (size_t)(rows * ld));
            assert_non_null(x);
            fill(x, rows * ld, (si + k) % 5);
            both_check(&sr, &sc, x, rows, cols, ld);
            free(x);
        }
}

/* pairs no fused kernel covers: the two hs_quantize calls */
static void both_fallback_body(void) {
    const int64_t rows = 64, cols = 96;
    float *x = malloc(sizeof(float) * (size_t)(rows * cols));
    assert_non_null(x);
    fill(x, rows * cols, 0);
    hs_quant_spec mx, nv, rht, mse;
    spec_of(&mx, 32, HS_RULE_HALFS, 0, 1);
    assert_int_equal(hs_quant_spec_init(&nv, HS_FMT_NVFP4), HS_OK);
    rht = mx;
    rht.rht = 16;
    mse = mx;
    mse.rule = HS_RULE_MSE;
    both_check(&nv, &nv, x, rows, cols, cols);
    both_check(&mx, &rht, x, rows, cols, cols);
    both_check(&mse, &mx, x, rows, cols, cols);
    both_check(&mx, &nv, x, rows, cols, cols);
    free(x);
}

/* the fused outputs do not depend on the thread count */
static void both_threads_body(void) {
    const int64_t rows = 520, cols = 300;
    float *x = malloc(sizeof(float) * (size_t)(rows * cols));
    assert_non_null(x);
    fill(x, rows * cols, 1);
    hs_quant_spec sr, sc;
    spec_of(&sr, 32, HS_RULE_HALFS, 0, 1);
    spec_of(&sc, 32, HS_RULE_HALFS, 1, 2);
    int saved = omp_get_max_threads();
    for (int t = 1; t <= 3; t += 2) {
        omp_set_num_threads(t);
        both_check(&sr, &sc, x, rows, cols, cols);
    }
    omp_set_num_threads(saved);
    free(x);
}

static void test_cols_sweep(void **state) {
    (void)state;
    for_levels(cols_sweep_body);
}

static void test_cols_specials(void **state) {
    (void)state;
    for_levels(cols_specials_body);
}

static void test_cols_halfs_close_calls(void **state) {
    (void)state;
    for_levels(cols_halfs_close_calls_body);
}

static void test_cols_threads(void **state) {
    (void)state;
    for_levels(cols_threads_body);
}

static void test_cols_declines(void **state) {
    (void)state;
    for_levels(cols_declines_body);
}

static void test_both_covered(void **state) {
    (void)state;
    for_levels(both_covered_body);
}

static void test_both_fallback(void **state) {
    (void)state;
    for_levels(both_fallback_body);
}

static void test_both_threads(void **state) {
    (void)state;
    for_levels(both_threads_body);
}

static int report(void **state) {
    (void)state;
    printf("test_quant_col_fused: %ld column-wise / fused results compared with the reference\n", compared);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cols_sweep),
        cmocka_unit_test(test_cols_specials),
        cmocka_unit_test(test_cols_threads),
        cmocka_unit_test(test_cols_halfs_close_calls),
        cmocka_unit_test(test_cols_declines),
        cmocka_unit_test(test_both_covered),
        cmocka_unit_test(test_both_fallback),
        cmocka_unit_test(test_both_threads),
    };
    return cmocka_run_group_tests(tests, NULL, report);
}

/* test_quant_generic_simd.c: the generic SIMD quantizer / dequantizer (kernels/quant_generic.h:
 * E4M3, E5M2, INT4, INT8, BF16, FP32, and the E2M1 specs the E2M1 kernels decline) against the
 * reference, byte for byte.
 *
 * For every element format × scale format × rule the reference accepts, every group kind (blocks
 * 16..128, one per row, per tensor, 2D 16×16 tiles), every rounding (RNE, RNA, RTS, SR with the
 * pre-scale off / on / automatic), row-wise and column-wise, RHT on some: codes (whole rows, padding
 * included), scales, tensor_scale and the halved/total counts equal hs_quantize_ref's, for each ISA
 * kernel the CPU supports called directly (it must cover the spec) and through hs_quantize with
 * the ISA forced. Shapes sweep n = w−1, w, w+1 for w = 8, 16, 32, 64 and odd tails; data hold
 * ±0, subnormals, NaN/Inf, huge and tiny magnitudes, grid ties and all-zero groups. Dequantize is
 * compared bit for bit on the quantizers' outputs and on random codes and scales. Results must not
 * depend on the thread count.
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

static uint64_t rs = 0x2545F4914F6CDD1Dull;
static uint64_t rnd(void) { return util_rand_next(&rs); }
static double unif(void) { return util_rand_unif(&rs); }
static void fill(float *x, int64_t n, int kind) { util_fill_kind(x, n, kind, &rs); }

typedef hs_status (*qfn)(const hs_quant_spec *, const float *, int64_t, int64_t, int64_t, int, hs_packed *);
typedef hs_status (*dfn)(const hs_packed *, float *, int64_t);
static int n_checked, n_deq;

static void describe(char *b, size_t n, const hs_quant_spec *s, int64_t rows, int64_t cols, int tr, int kind) {
    snprintf(b, n, "elem %s scale %d group %d block %d tile2d %d rule %s %s pre %d rht %d %lldx%lld tr %d data %d",
             hs_elem_name(s->elem), (int)s->scale_fmt, (int)s->group, (int)s->block, (int)s->tile2d,
             hs_rule_name(s->rule), hs_rounding_name(s->rounding), (int)s->sr_prescale, (int)s->rht,
             (long long)rows, (long long)cols, tr, kind);
}

static void same_packed(const hs_packed *ref, const hs_packed *got, const char *what) {
    for (int64_t r = 0; r < ref->rows; r++)
        if (memcmp(ref->codes + r * ref->code_stride, got->codes + r * got->code_stride, (size_t)ref->code_stride)) {
            for (int64_t b = 0; b < ref->code_stride; b++)
                if (ref->codes[r * ref->code_stride + b] != got->codes[r * got->code_stride + b]) {
                    print_error("code byte (%lld, %lld) = 0x%02x, reference 0x%02x: %s\n", (long long)r, (long long)b,
                                got->codes[r * got->code_stride + b], ref->codes[r * ref->code_stride + b], what);
                    break;
                }
            fail();
        }
    size_t sb = (size_t)(ref->rows * ref->groups_per_row) * (ref->spec.scale_fmt == HS_SCALE_FP32 ? 4 : 1);
    if (sb && memcmp(ref->scales, got->scales, sb)) {
        print_error("scales differ: %s\n", what);
        fail();
    }
    if (memcmp(&ref->tensor_scale, &got->tensor_scale, 4) || ref->groups_halved != got->groups_halved ||
        ref->groups_total != got->groups_total) {
        print_error("tensor scale / halved %lld/%lld vs %lld/%lld: %s\n", (long long)got->groups_halved,
                    (long long)got->groups_total, (long long)ref->groups_halved, (long long)ref->groups_total, what);
        fail();
    }
}

static void same_deq(const hs_packed *p, dfn d, const char *what) {
    size_t n = (size_t)(p->rows * p->cols);
    float *a = malloc(n * 4), *b = malloc(n * 4);
    assert_non_null(a);
    assert_non_null(b);
    memset(b, 0xA5, n * 4);
    assert_int_equal(hs_dequantize_ref(p, a, p->cols), HS_OK);
    assert_int_equal(d(p, b, p->cols), HS_OK);
    if (memcmp(a, b, n * 4)) {
        for (size_t i = 0; i < n; i++)
            if (memcmp(a + i, b + i, 4)) {
                print_error("dequantized element %zu = %a, reference %a: %s\n", i, b[i], a[i], what);
                break;
            }
        fail();
    }
    n_deq++;
    free(a);
    free(b);
}

/* the kernels under test: each ISA the CPU supports, direct and through the dispatcher */
static int nk;
static qfn kq[4];
static dfn kd[4];
static hs_isa kisa[4];
static hs_status via_dispatch(const hs_quant_spec *s, const float *x, int64_t r, int64_t c, int64_t ld, int tr, hs_packed *o) {
    return hs_quantize(s, x, r, c, ld, tr, o);
}
static void setup_kernels(void) {
    nk = 0;
    hs_isa best = hs_isa_detect();
    if (best >= HS_ISA_AVX2) {
        kq[nk] = hs_quantize_generic_avx2; kd[nk] = hs_dequantize_generic_avx2; kisa[nk++] = HS_ISA_AVX2;
    }
    if (best >= HS_ISA_AVX512) {
        kq[nk] = hs_quantize_generic_avx512; kd[nk] = hs_dequantize_generic_avx512; kisa[nk++] = HS_ISA_AVX512;
    }
}

/* Quantize x with every kernel and compare; dequantize likewise. */
static void check(const hs_quant_spec *s, const float *x, int64_t rows, int64_t cols, int64_t ld, int tr, int kind) {
    const int64_t R = tr ? cols : rows, C = tr ? rows : cols;
    char what[300];
    describe(what, sizeof what, s, rows, cols, tr, kind);
    hs_packed ref, got;
    assert_int_equal(hs_packed_alloc(&ref, s, R, C), HS_OK);
    assert_int_equal(hs_packed_alloc(&got, s, R, C), HS_OK);
    assert_int_equal(hs_quantize_ref(s, x, rows, cols, ld, tr, &ref), HS_OK);
    for (int k = 0; k < nk; k++)
        for (int via = 0; via < 2; via++) {
            memset(got.codes, 0xA5, (size_t)(R * got.code_stride));
            got.groups_halved = -1;
            hs_isa_force(kisa[k]);
            hs_status st = (via ? via_dispatch : kq[k])(s, x, rows, cols, ld, tr, &got);
            if (st != HS_OK) {
                print_error("kernel %d (via %d) returned %d: %s\n", (int)kisa[k], via, (int)st, what);
                fail();
            }
            char w2[340];
            snprintf(w2, sizeof w2, "%s isa %d%s", what, (int)kisa[k], via ? " (hs_quantize)" : "");
            same_packed(&ref, &got, w2);
            n_checked++;
        }
    for (int k = 0; k < nk; k++) {
        same_deq(&ref, kd[k], what);
        hs_isa_force(kisa[k]);
        same_deq(&ref, hs_dequantize, what);
    }
    hs_isa_force(hs_isa_detect());
    hs_packed_free(&ref);
    hs_packed_free(&got);
}

static const hs_rule e8m0_rules[] = {HS_RULE_OCP, HS_RULE_CEIL, HS_RULE_RCEIL, HS_RULE_EVEN,
                                     HS_RULE_HALF, HS_RULE_HALFS, HS_RULE_HALFS_SIGMA, HS_RULE_MSE};
static const hs_rule fp32_rules[] = {HS_RULE_MAX, HS_RULE_HALF, HS_RULE_HALFS, HS_RULE_MSE};
static const int64_t shapes[][2] = {{17, 33}, {16, 64}, {9, 130}, {33, 31}, {1, 257}, {40, 48}, {5, 129}, {18, 16}};
enum { NSHAPES = sizeof shapes / sizeof shapes[0] };

/* group configurations: block 16/32/64/128, per row, per tensor, 2D tiles */
static void set_group(hs_quant_spec *s, int gc) {
    s->tile2d = 0;
    switch (gc) {
    case 0: s->group = HS_GROUP_BLOCK; s->block = 16; break;
    case 1: s->group = HS_GROUP_BLOCK; s->block = 32; break;
    case 2: s->group = HS_GROUP_BLOCK; s->block = 64; break;
    case 3: s->group = HS_GROUP_BLOCK; s->block = 128; break;
    case 4: s->group = HS_GROUP_ROW; break;
    case 5: s->group = HS_GROUP_TENSOR; break;
    default: s->group = HS_GROUP_BLOCK; s->block = 16; s->tile2d = 16; break;
    }
}

/* every rule × group × rounding × orientation of one element/scale pair */
static void sweep(hs_elem e, hs_scale_fmt sf, const hs_rule *rules, int nrules) {
    static int counter;
    float *x = malloc(64 * 300 * sizeof(float));
    assert_non_null(x);
    for (int ri = 0; ri < nrules; ri++)
        for (int gc = 0; gc < 7; gc++)
            for (int rm = 0; rm < HS_ROUND_COUNT; rm++)
                for (int tr = 0; tr < 2; tr++) {
                    hs_quant_spec s;
                    hs_quant_spec_init(&s, HS_FMT_INT4);
                    s.elem = e;
                    s.scale_fmt = sf;
                    s.rule = rules[ri];
                    set_group(&s, gc);
                    s.rounding = (hs_rounding)rm;
                    s.sr_prescale = (int)(counter % 3) - 1;
                    s.seed = 11 + (uint64_t)counter;
                    s.stream = (uint64_t)counter % 5;
                    int c = counter++;
                    const int64_t *sh = shapes[c % NSHAPES];
                    int64_t rows = sh[0], cols = sh[1], ld = cols + (c % 3);
                    int64_t C = tr ? rows : cols;
                    s.rht = (c % 5 == 0 && C % 16 == 0) ? 16 : 0;
                    int kind = c % 5;
                    fill(x, rows * ld, kind);
                    if (hs_quant_spec_validate(&s) != HS_OK) continue;
                    check(&s, x, rows, cols, ld, tr, kind);
                }
    free(x);
}

static void test_e4m3(void **st) {
    (void)st;
    sweep(HS_ELEM_E4M3, HS_SCALE_E8M0, e8m0_rules, 8);
    sweep(HS_ELEM_E4M3, HS_SCALE_FP32, fp32_rules, 4);
}
static void test_e5m2(void **st) {
    (void)st;
    sweep(HS_ELEM_E5M2, HS_SCALE_E8M0, e8m0_rules, 8);
    sweep(HS_ELEM_E5M2, HS_SCALE_FP32, fp32_rules, 4);
}
static void test_int(void **st) {
    (void)st;
    sweep(HS_ELEM_INT4, HS_SCALE_FP32, fp32_rules, 4);
    sweep(HS_ELEM_INT8, HS_SCALE_FP32, fp32_rules, 4);
}
/* E2M1 through the generic kernel: the specs the E2M1 kernels decline land here */
static void test_e2m1_leftovers(void **st) {
    (void)st;
    sweep(HS_ELEM_E2M1, HS_SCALE_E8M0, e8m0_rules, 8);
    sweep(HS_ELEM_E2M1, HS_SCALE_FP32, fp32_rules, 4);
    static const hs_rule ue[] = {HS_RULE_MAX, HS_RULE_HALF, HS_RULE_HALFS, HS_RULE_MSE, HS_RULE_4OVER6};
    float *x = malloc(40 * 300 * sizeof(float));
    assert_non_null(x);
    for (int ri = 0; ri < 5; ri++)
        for (int rm = 0; rm < HS_ROUND_COUNT; rm++)
            for (int tr = 0; tr < 2; tr++)
                for (int t2 = 0; t2 < 2; t2++) {
                    hs_quant_spec s;
                    hs_quant_spec_init(&s, HS_FMT_NVFP4);
                    s.rule = ue[ri];
                    s.rounding = (hs_rounding)rm;
                    s.tile2d = t2 ? 16 : 0;
                    s.seed = 5;
                    int64_t rows = 33 + ri, cols = 47 + 16 * tr;
                    fill(x, rows * cols, (ri + rm) % 5);
                    check(&s, x, rows, cols, cols, tr, (ri + rm) % 5);
                }
    free(x);
}

static void test_plain(void **st) {
    (void)st;
    float *x = malloc(70 * 70 * sizeof(float));
    assert_non_null(x);
    for (int f = 0; f < 2; f++)
        for (int kind = 0; kind < 5; kind++)
            for (int tr = 0; tr < 2; tr++) {
                hs_quant_spec s;
                hs_quant_spec_init(&s, f ? HS_FMT_FP32 : HS_FMT_BF16);
                s.rht = kind == 0 ? 32 : 0;
                int64_t rows = 64, cols = kind == 0 ? 64 : 63 + kind;
                fill(x, rows * cols, kind);
                check(&s, x, rows, cols, cols, tr, kind);
            }
    /* every bf16 rounding case: ties, carries into the exponent, NaN payloads, subnormals */
    for (int i = 0; i < 70 * 70; i++) {
        uint32_t b = (uint32_t)rnd();
        if (i % 3 == 0) b = (b & 0xFFFF0000u) | 0x8000u | ((uint32_t)i & 0x10000u);
        memcpy(&x[i], &b, 4);
    }
    hs_quant_spec s;
    hs_quant_spec_init(&s, HS_FMT_BF16);
    check(&s, x, 70, 70, 70, 0, 9);
    free(x);
}

/* Sizes around the vector widths: n = w−1, w, w+1 (w = 8, 16, 32, 64) and odd tails. */
static void test_sizes(void **st) {
    (void)st;
    static const int64_t ns[] = {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 129};
    static const int64_t ms[] = {1, 15, 16, 17, 33};
    float *x = malloc(129 * 33 * sizeof(float));
    assert_non_null(x);
    for (int f = 0; f < 4; f++)
        for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
            for (size_t j = 0; j < sizeof ms / sizeof ms[0]; j++) {
                hs_quant_spec s;
                hs_quant_spec_init(&s, f == 0 ? HS_FMT_MXFP8_E4M3 : HS_FMT_INT4);
                if (f == 1) s.elem = HS_ELEM_INT8, s.rule = HS_RULE_HALFS;
                if (f == 2) s.rounding = HS_ROUND_SR, s.group = HS_GROUP_ROW;
                if (f == 3) s.elem = HS_ELEM_E5M2, s.scale_fmt = HS_SCALE_E8M0, s.rule = HS_RULE_HALFS, s.block = 16;
                int kind = (int)((i + j) % 5);
                fill(x, ns[i] * ms[j], kind);
                check(&s, x, ms[j], ns[i], ns[i], (int)(i & 1), kind);
                check(&s, x, ns[i], ms[j], ms[j], (int)(j & 1), kind);
            }
    free(x);
}

/* random codes and scales (NaN scales included): dequantize bit for bit */
static void test_dequant_random(void **st) {
    (void)st;
    static const hs_format fm[] = {HS_FMT_MXFP8_E4M3, HS_FMT_INT4, HS_FMT_MXFP4, HS_FMT_NVFP4, HS_FMT_FP4, HS_FMT_BF16, HS_FMT_FP32};
    for (int f = 0; f < 7; f++)
        for (int ev = 0; ev < 4; ev++) {
            hs_quant_spec s;
            hs_quant_spec_init(&s, fm[f]);
            if (f == 0 && ev >= 2) s.elem = HS_ELEM_E5M2;
            if (f == 1 && ev >= 2) s.elem = HS_ELEM_INT8;
            if (s.scale_fmt == HS_SCALE_FP32 && (ev & 1)) s.group = HS_GROUP_ROW;
            if (s.scale_fmt == HS_SCALE_E8M0 && (ev & 1)) { s.rounding = HS_ROUND_SR; s.block = 64; }
            hs_packed p;
            int64_t R = 19, C = 77 + ev;
            assert_int_equal(hs_packed_alloc(&p, &s, R, C), HS_OK);
            int64_t used = (C * (s.elem == HS_ELEM_BF16 ? 16 : s.elem == HS_ELEM_FP32 ? 32 : s.elem == HS_ELEM_E2M1 || s.elem == HS_ELEM_INT4 ? 4 : 8) + 7) / 8;
            for (int64_t r = 0; r < R; r++)
                for (int64_t b = 0; b < used; b++) p.codes[r * p.code_stride + b] = (uint8_t)rnd();
            if (s.elem == HS_ELEM_FP32)
                for (int64_t r = 0; r < R; r++)
                    for (int64_t c = 0; c < C; c++) { float v = (float)(unif() - 0.5); memcpy(p.codes + r * p.code_stride + 4 * c, &v, 4); }
            for (int64_t g = 0; g < R * p.groups_per_row; g++) {
                if (s.scale_fmt == HS_SCALE_FP32) {
                    float v = g % 17 == 0 ? NAN : (float)ldexp(unif() + 0.5, (int)(rnd() % 60) - 30);
                    memcpy((float *)p.scales + g, &v, 4);
                } else {
                    ((uint8_t *)p.scales)[g] = (uint8_t)(s.scale_fmt == HS_SCALE_UE4M3 ? rnd() % 0x80 : rnd());
                }
            }
            if (s.two_level) p.tensor_scale = 3.0f;
            for (int k = 0; k < nk; k++) {
                /* E2M1 at AVX-512 belongs to the E2M1 dequantizer: dispatch only */
                if (!(s.elem == HS_ELEM_E2M1 && kisa[k] == HS_ISA_AVX512)) same_deq(&p, kd[k], "random codes");
                hs_isa_force(kisa[k]);
                same_deq(&p, hs_dequantize, "random codes (dispatch)");
            }
            hs_isa_force(hs_isa_detect());
            hs_packed_free(&p);
        }
}

/* 1 and 3 threads on matrices past the OpenMP threshold: same bytes as the reference */
static void test_threads(void **st) {
    (void)st;
    const int64_t rows = 200, cols = 330;
    float *x = malloc((size_t)rows * cols * sizeof(float));
    assert_non_null(x);
    fill(x, rows * cols, 0);
    int saved = omp_get_max_threads();
    static const hs_format fm[] = {HS_FMT_MXFP8_E4M3, HS_FMT_INT4, HS_FMT_BF16};
    for (int f = 0; f < 3; f++)
        for (int t = 1; t <= 3; t += 2)
            for (int tr = 0; tr < 2; tr++) {
                omp_set_num_threads(t);
                hs_quant_spec s;
                hs_quant_spec_init(&s, fm[f]);
                if (f == 0) s.rule = HS_RULE_HALFS, s.rounding = HS_ROUND_SR;
                check(&s, x, rows, cols, cols, tr, 0);
            }
    omp_set_num_threads(saved);
    free(x);
}

static int report(void **st) {
    (void)st;
    print_message("wide kernels: %d quantizations and %d dequantizations compared (%d ISA levels)\n", n_checked, n_deq, nk);
    return 0;
}

int main(void) {
    setup_kernels();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_e4m3),         cmocka_unit_test(test_e5m2),
        cmocka_unit_test(test_int),          cmocka_unit_test(test_e2m1_leftovers),
        cmocka_unit_test(test_plain),        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_dequant_random), cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, report);
}

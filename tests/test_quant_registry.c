/* test_quant_registry.c: how hs_quantize, hs_dequantize and hs_quantize_both choose their kernel
 * (kernels/quant_kernels.h): the plan a call is validated into, the kernel each ISA level's list
 * picks for a few plans (at every level this CPU has), and HALFS_TRACE=1, which prints each
 * (entry point, kernel) pair once to stderr, while without it the library prints nothing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "halfs/quant.h"
#include "halfs/rng.h"
#include "kernels/quant_kernels.h"
#include "util.h"

enum { ROWS = 64, COLS = 96 };
static float X[ROWS * COLS];

static void fill_x(void) {
    uint64_t st = 7;
    util_fill_kind(X, ROWS * COLS, 0, &st);
}

static hs_quant_spec spec_of(hs_format f) {
    hs_quant_spec s;
    assert_int_equal(hs_quant_spec_init(&s, f), HS_OK);
    return s;
}

/* The plan of hs_quantize(s, X, ROWS, COLS, COLS, transpose, out) with out allocated for it. */
static void plan_of(const hs_quant_spec *s, int transpose, hs_packed *out, hs_quant_plan *p) {
    int64_t R = transpose ? COLS : ROWS, C = transpose ? ROWS : COLS;
    assert_int_equal(hs_packed_alloc(out, s, R, C), HS_OK);
    assert_int_equal(hs_quant_plan_init(p, s, X, ROWS, COLS, COLS, transpose, out), HS_OK);
}

/* lines of text equal to line */
static int count_lines(const char *text, const char *line) {
    int n = 0;
    size_t len = strlen(line);
    for (const char *t = text; t && *t;) {
        const char *e = strchr(t, '\n');
        size_t l = e ? (size_t)(e - t) : strlen(t);
        if (l == len && !memcmp(t, line, len)) n++;
        t = e ? e + 1 : NULL;
    }
    return n;
}

static void test_plan(void **state) {
    (void)state;
    hs_quant_spec s = spec_of(HS_FMT_MXFP4);
    s.seed = 11;
    s.stream = 3;
    hs_packed out;
    hs_quant_plan p;
    plan_of(&s, 1, &out, &p);
    assert_int_equal(p.rows, COLS);
    assert_int_equal(p.cols, ROWS);
    assert_int_equal(p.glen, 32);
    assert_int_equal(p.groups_per_row, 2);
    assert_int_equal(p.code_stride, 64);
    assert_int_equal(p.bits, 4);
    assert_int_equal(p.scale, HS_SCALE_E8M0);
    assert_true(p.key == hs_rng_key(11, 3));
    /* an output allocated for the other orientation: invalid, and hs_quantize reports it */
    hs_quant_plan q;
    assert_int_equal(hs_quant_plan_init(&q, &s, X, ROWS, COLS, COLS, 0, &out), HS_ERR_INVALID_ARG);
    assert_int_equal(hs_quantize(&s, X, ROWS, COLS, COLS, 0, &out), HS_ERR_INVALID_ARG);
    hs_dequant_plan d;
    float y[ROWS * COLS];
    assert_int_equal(hs_dequant_plan_init(&d, &out, y, ROWS - 1), HS_ERR_INVALID_ARG);
    assert_int_equal(hs_dequant_plan_init(&d, &out, y, ROWS), HS_OK);
    assert_int_equal(d.rows, COLS);
    assert_int_equal(d.glen, 32);
    hs_packed_free(&out);
}

/* The kernel each level picks: {ref, avx2, avx512}. */
typedef struct {
    hs_format f;
    int transpose;
    hs_rounding rounding; /* HS_ROUND_COUNT: the preset's */
    hs_rule rule;         /* HS_RULE_COUNT: the preset's */
    const char *want[HS_ISA_COUNT];
} pick_case;

static const pick_case picks[] = {
    {HS_FMT_MXFP4, 0, HS_ROUND_COUNT, HS_RULE_COUNT, {"ref", "e2m1_rows_avx2", "e2m1_rows_avx512"}},
    {HS_FMT_MXFP4, 1, HS_ROUND_COUNT, HS_RULE_COUNT, {"ref", "e2m1_cols_avx2", "e2m1_cols_avx512"}},
    {HS_FMT_MXFP4, 0, HS_ROUND_SR, HS_RULE_OCP, {"ref", "e2m1_rows_avx2", "e2m1_rows_avx512"}},
    {HS_FMT_MXFP4, 1, HS_ROUND_SR, HS_RULE_HALF, {"ref", "e2m1_cols_avx2", "e2m1_cols_avx512"}},
    {HS_FMT_MXFP4, 0, HS_ROUND_COUNT, HS_RULE_HALFS_SIGMA, {"ref", "e2m1_avx2", "e2m1_avx512"}},
    {HS_FMT_MXFP4, 0, HS_ROUND_RNA, HS_RULE_COUNT, {"ref", "generic_avx2", "generic_avx512"}},
    {HS_FMT_MXFP4, 1, HS_ROUND_SR, HS_RULE_MSE, {"ref", "e2m1_avx2", "e2m1_avx512"}},
    {HS_FMT_NVFP4, 0, HS_ROUND_COUNT, HS_RULE_COUNT, {"ref", "e2m1_avx2", "e2m1_avx512"}},
    {HS_FMT_NVFP4, 1, HS_ROUND_COUNT, HS_RULE_MSE, {"ref", "generic_avx2", "e2m1_avx512"}},
    {HS_FMT_MXFP8_E4M3, 0, HS_ROUND_COUNT, HS_RULE_COUNT, {"ref", "generic_avx2", "generic_avx512"}},
    {HS_FMT_BF16, 1, HS_ROUND_COUNT, HS_RULE_COUNT, {"ref", "generic_avx2", "generic_avx512"}},
};

static void test_picks(void **state) {
    (void)state;
    const hs_isa best = hs_isa_detect();
    for (size_t c = 0; c < sizeof picks / sizeof picks[0]; c++) {
        const pick_case *k = &picks[c];
        hs_quant_spec s = spec_of(k->f);
        if (k->rounding != HS_ROUND_COUNT) s.rounding = k->rounding;
        if (k->rule != HS_RULE_COUNT) s.rule = k->rule;
        hs_packed out, ref;
        hs_quant_plan p;
        plan_of(&s, k->transpose, &out, &p);
        assert_int_equal(hs_packed_alloc(&ref, &s, p.rows, p.cols), HS_OK);
        assert_int_equal(hs_quantize_ref(&s, X, ROWS, COLS, COLS, k->transpose, &ref), HS_OK);
        for (int isa = 0; isa < HS_ISA_COUNT; isa++) {
            const char *got = hs_quant_kernel_pick((hs_isa)isa, &p);
            assert_non_null(got);
            if (strcmp(got, k->want[isa])) fail_msg("case %zu isa %d: %s, want %s", c, isa, got, k->want[isa]);
            if (isa > (int)best) continue;
            /* and the call through the list at that level gives the reference's bytes */
            assert_int_equal(hs_isa_force((hs_isa)isa), isa);
            assert_int_equal(hs_quantize(&s, X, ROWS, COLS, COLS, k->transpose, &out), HS_OK);
            assert_memory_equal(out.codes, ref.codes, (size_t)(p.rows * p.code_stride));
        }
        /* dequantizers: the E2M1 kernel at AVX-512, else the generic one (E2M1 included) */
        hs_dequant_plan d;
        float y[ROWS * COLS];
        assert_int_equal(hs_dequant_plan_init(&d, &ref, y, p.cols), HS_OK);
        assert_string_equal(hs_dequant_kernel_pick(HS_ISA_REF, &d), "ref");
        assert_string_equal(hs_dequant_kernel_pick(HS_ISA_AVX2, &d), "generic_avx2");
        int e2m1 = s.elem == HS_ELEM_E2M1;
        assert_string_equal(hs_dequant_kernel_pick(HS_ISA_AVX512, &d),
                            e2m1 ? "e2m1_avx512" : "generic_avx512");
        hs_packed_free(&out);
        hs_packed_free(&ref);
    }
    hs_isa_force(best);
}

static void test_both_picks(void **state) {
    (void)state;
    const hs_format fs[2] = {HS_FMT_MXFP4, HS_FMT_NVFP4};
    for (int i = 0; i < 2; i++) {
        hs_quant_spec s = spec_of(fs[i]);
        hs_packed orow, ocol;
        hs_quant_plan pr, pc;
        plan_of(&s, 0, &orow, &pr);
        plan_of(&s, 1, &ocol, &pc);
        assert_string_equal(hs_quant_both_kernel_pick(HS_ISA_REF, &pr, &pc), "separate");
        assert_string_equal(hs_quant_both_kernel_pick(HS_ISA_AVX2, &pr, &pc),
                            i == 0 ? "e2m1_both_avx2" : "separate");
        assert_string_equal(hs_quant_both_kernel_pick(HS_ISA_AVX512, &pr, &pc),
                            i == 0 ? "e2m1_both_avx512" : "separate");
        hs_packed_free(&orow);
        hs_packed_free(&ocol);
    }
}

/* HALFS_TRACE=1 (set by main before the first call): one line per (entry point, kernel) pair,
 * however often it runs. Runs first, so that no kernel has been traced yet. */
static void test_trace(void **state) {
    (void)state;
    char path[4096];
    util_path(path, sizeof path, "trace.txt");
    fflush(stderr);
    int saved = dup(2), fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    close(fd);

    const hs_isa best = hs_isa_detect();
    hs_quant_spec s = spec_of(HS_FMT_MXFP4);
    hs_packed out, col;
    hs_quant_plan p, pc;
    plan_of(&s, 0, &out, &p);
    plan_of(&s, 1, &col, &pc);
    float y[ROWS * COLS];
    int calls_ok = 1;
    for (int isa = 0; isa <= (int)best; isa++) {
        hs_isa_force((hs_isa)isa);
        for (int k = 0; k < 3; k++) {
            calls_ok &= hs_quantize(&s, X, ROWS, COLS, COLS, 0, &out) == HS_OK;
            calls_ok &= hs_dequantize(&out, y, COLS) == HS_OK;
            calls_ok &= hs_quantize_both(&s, &s, X, ROWS, COLS, COLS, &out, &col) == HS_OK;
        }
    }
    hs_isa_force(best);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    assert_true(calls_ok);

    char *text = util_read_file(path, NULL);
    print_message("%s", text);
    for (int isa = 0; isa <= (int)best; isa++) {
        char line[256];
        snprintf(line, sizeof line, "halfs: trace: hs_quantize e2m1/e8m0/b32 rows -> %s",
                 hs_quant_kernel_pick((hs_isa)isa, &p));
        assert_int_equal(count_lines(text, line), 1);
        hs_dequant_plan d;
        assert_int_equal(hs_dequant_plan_init(&d, &out, y, COLS), HS_OK);
        snprintf(line, sizeof line, "halfs: trace: hs_dequantize e2m1/e8m0/b32 -> %s",
                 hs_dequant_kernel_pick((hs_isa)isa, &d));
        assert_int_equal(count_lines(text, line), 1);
        snprintf(line, sizeof line,
                 "halfs: trace: hs_quantize_both e2m1/e8m0/b32 rows + e2m1/e8m0/b32 cols -> %s",
                 hs_quant_both_kernel_pick((hs_isa)isa, &p, &pc));
        assert_int_equal(count_lines(text, line), 1);
    }
    assert_true(util_count_lines_starting(text, "halfs: trace: ") >= 3);
    assert_int_equal(util_count_lines_starting(text, "halfs: trace: "),
                     util_count_lines_starting(text, "halfs:"));
    free(text);
    hs_packed_free(&out);
    hs_packed_free(&col);
}

/* Without HALFS_TRACE the same calls print nothing: a child process, forked before any OpenMP
 * region ran, with its stderr in a pipe. Returns the bytes it wrote, or -1. */
static int quiet_child_bytes(void) {
    int fds[2];
    if (pipe(fds)) return -1;
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        unsetenv("HALFS_TRACE");
        dup2(fds[1], 2);
        close(fds[0]);
        hs_quant_spec s;
        hs_quant_spec_init(&s, HS_FMT_MXFP4);
        hs_packed a, b;
        float y[ROWS * COLS];
        int ok = hs_packed_alloc(&a, &s, ROWS, COLS) == HS_OK &&
                 hs_packed_alloc(&b, &s, COLS, ROWS) == HS_OK &&
                 hs_quantize(&s, X, ROWS, COLS, COLS, 0, &a) == HS_OK &&
                 hs_dequantize(&a, y, COLS) == HS_OK &&
                 hs_quantize_both(&s, &s, X, ROWS, COLS, COLS, &a, &b) == HS_OK;
        fflush(stderr);
        _exit(ok ? 0 : 3);
    }
    close(fds[1]);
    char buf[256];
    int n = 0;
    ssize_t r;
    while ((r = read(fds[0], buf, sizeof buf)) > 0) n += (int)r;
    close(fds[0]);
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return -1;
    return n;
}

static int quiet_bytes = -2;

static void test_quiet_without_trace(void **state) {
    (void)state;
    assert_int_equal(quiet_bytes, 0);
}

int main(void) {
    fill_x();
    quiet_bytes = quiet_child_bytes();
    setenv("HALFS_TRACE", "1", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trace),
        cmocka_unit_test(test_quiet_without_trace),
        cmocka_unit_test(test_plan),
        cmocka_unit_test(test_picks),
        cmocka_unit_test(test_both_picks),
    };
    return cmocka_run_group_tests(tests, util_scratch_setup, util_scratch_teardown);
}

/* test_cli.c: the `halfs` command-line contract (tools/cli.h) for qdq, stats and theory (and the
 * keys of `bench quant --json`, the recipe items of `bench train`).
 *
 * Runs the binary named by $HALFS_BIN (set by `make test`) through tests/util.h on files in the
 * program's scratch directory ($HALFS_TMP, $TMPDIR or /tmp; removed at the end) and checks: qdq
 * writes exactly what the library's hs_qdq computes, in IN's shape; stats/theory JSON parses and
 * holds the documented keys with sane values; NaN/Inf inputs are data; every bad input exits 1 with
 * exactly one "halfs: error:" line on stderr and leaves no output file (nor temp file) behind.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "halfs/halfs.h"
#include "util.h"

/* ---------------------------------------------------------------- helpers */

static void write_f32(const char *p, const float *x, size_t n) {
    util_write_file(p, x, n * sizeof *x);
}

/* No file in the scratch directory whose name starts with `prefix` (the output, its temp). */
static void assert_no_file_like(const char *prefix) {
    DIR *d = opendir(util_scratch_dir());
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (!strncmp(e->d_name, prefix, strlen(prefix))) {
            print_error("unexpected file left behind: %s\n", e->d_name);
            closedir(d);
            fail();
        }
    }
    closedir(d);
}

/* Deterministic heavy-tailed test data (rows × cols). */
static float *make_data(int64_t rows, int64_t cols, uint64_t seed) {
    float *x = malloc((size_t)(rows * cols) * sizeof *x);
    assert_non_null(x);
    hs_dist d;
    assert_int_equal(hs_dist_parse("t:4", &d), HS_OK);
    for (int64_t i = 0; i < rows * cols; i++)
        x[i] = (float)hs_dist_sample(&d, seed, 0, (uint64_t)i);
    return x;
}

/* ---------------------------------------------------------------- qdq */

/* Run qdq with the given extra options and compare its output with hs_qdq in-process. */
static void check_qdq_matches(const float *x, int64_t rows, int64_t cols, const hs_quant_spec *s,
                              int transpose, const char *fmt, const char *rule,
                              const char *extra1, const char *extra2) {
    char in[600], out[600], cs[32];
    util_path(in, sizeof in, "in.f32");
    util_path(out, sizeof out, "out.f32");
    snprintf(cs, sizeof cs, "%lld", (long long)cols);
    unlink(out);
    int rc = extra2 ? util_run(NULL, NULL, "qdq", "--format", fmt, "--scale", rule, "--cols", cs,
                               extra1, extra2, in, out, NULL)
             : extra1 ? util_run(NULL, NULL, "qdq", "--format", fmt, "--scale", rule, "--cols", cs,
                                 extra1, in, out, NULL)
                      : util_run(NULL, NULL, "qdq", "--format", fmt, "--scale", rule, "--cols", cs,
                                 in, out, NULL);
    util_expect_exit_ok(rc);
    size_t n;
    char *got = util_read_file(out, &n);
    assert_int_equal(n, (size_t)(rows * cols) * sizeof(float));
    float *want = malloc(n);
    assert_non_null(want);
    assert_int_equal(hs_qdq(s, x, rows, cols, cols, transpose, want, cols), HS_OK);
    /* Bit for bit (NaN patterns included): the CLI is the library plus file I/O. */
    assert_memory_equal(got, want, n);
    free(want);
    free(got);
}

static void test_qdq_roundtrip(void **state) {
    (void)state;
    UTIL_NEED_CLI();
    const int64_t rows = 8, cols = 256;
    float *x = make_data(rows, cols, 1);
    char in[600];
    util_path(in, sizeof in, "in.f32");
    write_f32(in, x, (size_t)(rows * cols));

    hs_quant_spec s;
    assert_int_equal(hs_quant_spec_init(&s, HS_FMT_MXFP4), HS_OK);
    s.rule = HS_RULE_HALFS;
    check_qdq_matches(x, rows, cols, &s, 0, "mxfp4", "halfs", NULL, NULL);
    s.rule = HS_RULE_OCP;
    check_qdq_matches(x, rows, cols, &s, 0, "mxfp4", "ocp", NULL, NULL);
    s.block = 16;
    check_qdq_matches(x, rows, cols, &s, 0, "mxfp4", "ocp", "--block", "16");
    s.block = 32;
    check_qdq_matches(x, rows, cols, &s, 1, "mxfp4", "ocp", "--transpose", NULL);
    s.rht = 64;
    check_qdq_matches(x, rows, cols, &s, 0, "mxfp4", "ocp", "--rht", "64");
    s.rht = 0;
    s.rounding = HS_ROUND_SR;
    s.seed = 0;
    check_qdq_matches(x, rows, cols, &s, 0, "mxfp4", "ocp", "--rounding", "sr");
    s.rounding = HS_ROUND_RNA;
    check_qdq_matches(x, rows, cols, &s, 0, "mxfp4", "ocp", "--rounding=rna", NULL);

    assert_int_equal(hs_quant_spec_init(&s, HS_FMT_NVFP4), HS_OK);
    s.rule = HS_RULE_4OVER6;
    check_qdq_matches(x, rows, cols, &s, 0, "nvfp4", "4over6", NULL, NULL);
    assert_int_equal(hs_quant_spec_init(&s, HS_FMT_FP4ROW), HS_OK);
    s.rule = HS_RULE_HALFS_SIGMA;
    check_qdq_matches(x, rows, cols, &s, 0, "fp4row", "halfs-sigma", NULL, NULL);
    assert_int_equal(hs_quant_spec_init(&s, HS_FMT_INT4), HS_OK);
    s.rule = HS_RULE_MAX;
    check_qdq_matches(x, rows, cols, &s, 0, "int4", "max", NULL, NULL);

    /* Seeded SR is reproducible and the seed matters. */
    char out[600], *a, *b;
    util_path(out, sizeof out, "out.f32");
    util_expect_exit_ok(util_run(NULL, NULL, "qdq", "--format", "mxfp4", "--scale", "ceil",
                                 "--rounding", "sr", "--seed", "5", "--cols", "256", in, out,
                                 NULL));
    size_t na, nb;
    a = util_read_file(out, &na);
    util_expect_exit_ok(util_run(NULL, NULL, "qdq", "--format", "mxfp4", "--scale", "ceil",
                                 "--rounding", "sr", "--seed", "5", "--cols", "256", in, out,
                                 NULL));
    b = util_read_file(out, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na);
    free(b);
    util_expect_exit_ok(util_run(NULL, NULL, "qdq", "--format", "mxfp4", "--scale", "ceil",
                                 "--rounding", "sr", "--seed", "6", "--cols", "256", in, out,
                                 NULL));
    b = util_read_file(out, NULL);
    assert_true(memcmp(a, b, na) != 0);
    free(a);
    free(b);
    /* The quantized values are not the input (the test would pass on a copy otherwise) but
     * close to it. */
    util_expect_exit_ok(util_run(NULL, NULL, "qdq", "--format", "mxfp4", "--cols", "256", in, out,
                                 NULL));
    a = util_read_file(out, NULL);
    const float *y = (const float *)a;
    double e2 = 0, s2 = 0;
    int differ = 0;
    for (int64_t i = 0; i < rows * cols; i++) {
        e2 += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
        s2 += (double)x[i] * x[i];
        differ += x[i] != y[i];
    }
    assert_true(differ > rows * cols / 2);
    assert_true(e2 / s2 > 1e-4 && e2 / s2 < 0.1);
    free(a);
    assert_no_file_like("out.f32.tmp");
    free(x);
}

/* NaN and Inf are data: qdq succeeds; an MX block holding one dequantizes to NaN throughout
 * (E8M0 NaN scale), other blocks stay finite; bf16 keeps NaN and Inf. */
static void test_qdq_nonfinite(void **state) {
    (void)state;
    UTIL_NEED_CLI();
    const int64_t rows = 2, cols = 64;
    float *x = make_data(rows, cols, 2);
    x[3] = NAN;        /* row 0, block 0 */
    x[64 + 40] = INFINITY; /* row 1, block 1 */
    char in[600], out[600];
    util_path(in, sizeof in, "nf.f32");
    util_path(out, sizeof out, "nf_out.f32");
    write_f32(in, x, (size_t)(rows * cols));
    util_expect_exit_ok(util_run(NULL, NULL, "qdq", "--format", "mxfp4", "--scale", "halfs",
                                 "--cols", "64", in, out, NULL));
    size_t nbuf;
    char *buf = util_read_file(out, &nbuf);
    assert_int_equal(nbuf, (size_t)(rows * cols) * 4);
    const float *y = (const float *)buf;
    for (int i = 0; i < 32; i++) assert_true(isnan(y[i]));          /* row 0 block 0 */
    for (int i = 32; i < 64; i++) assert_true(isfinite(y[i]));      /* row 0 block 1 */
    for (int i = 64; i < 96; i++) assert_true(isfinite(y[i]));      /* row 1 block 0 */
    for (int i = 96; i < 128; i++) assert_true(isnan(y[i]));        /* row 1 block 1 */
    free(buf);
    util_expect_exit_ok(util_run(NULL, NULL, "qdq", "--format", "bf16", "--cols", "64", in, out,
                                 NULL));
    buf = util_read_file(out, NULL);
    y = (const float *)buf;
    assert_true(isnan(y[3]));
    assert_true(isinf(y[64 + 40]) && y[64 + 40] > 0);
    assert_true(isfinite(y[0]));
    free(buf);
    unlink(out);
    free(x);
}

/* ---------------------------------------------------------------- stats */

static void test_stats_json(void **state) {
    (void)state;
    UTIL_NEED_CLI();
    const int64_t rows = 16, cols = 512;
    float *x = make_data(rows, cols, 3);
    char in[600];
    util_path(in, sizeof in, "st.f32");
    write_f32(in, x, (size_t)(rows * cols));
    char *out = NULL;
    util_expect_exit_ok(util_run(&out, NULL, "stats", "--format", "mxfp4", "--cols", "512",
                                 "--json", in, NULL));
    cJSON *root = cJSON_Parse(out);
    assert_non_null(root);
    hs_quant_spec s;
    assert_int_equal(hs_quant_spec_init(&s, HS_FMT_MXFP4), HS_OK);
    int rules = 0;
    for (int r = 0; r < HS_RULE_COUNT; r++) {
        cJSON *o = cJSON_GetObjectItemCaseSensitive(root, hs_rule_name((hs_rule)r));
        if (!hs_rule_applies(&s, (hs_rule)r)) {
            assert_null(o);
            continue;
        }
        rules++;
        assert_non_null(o);
        const char *keys[] = {"rel_mse", "sqnr_db", "zero_collapse", "halved_fraction"};
        for (int k = 0; k < 4; k++) assert_true(cJSON_IsNumber(cJSON_GetObjectItem(o, keys[k])));
        /* Same numbers as the library computes in-process. */
        hs_qstats q;
        s.rule = (hs_rule)r;
        assert_int_equal(hs_quant_stats(&s, x, rows, cols, cols, 0, &q), HS_OK);
        assert_true(fabs(cJSON_GetObjectItem(o, "rel_mse")->valuedouble - q.rel_mse) <=
                    1e-12 * q.rel_mse);
        assert_true(fabs(cJSON_GetObjectItem(o, "zero_collapse")->valuedouble -
                         q.zero_collapse) <= 1e-12);
    }
    assert_true(rules >= 8); /* ocp ceil rceil even half halfs halfs-sigma mse */
    assert_null(cJSON_GetObjectItem(root, "max"));
    cJSON *k = cJSON_GetObjectItem(root, "kurtosis");
    assert_true(cJSON_IsNumber(k));
    assert_true(fabs(k->valuedouble - hs_kurtosis(x, rows * cols)) <= 1e-9 * k->valuedouble);
    assert_true(k->valuedouble > 3.0); /* t(4) is heavy-tailed */
    double halfs = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "halfs"), "rel_mse")->valuedouble;
    double ceil_ = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "ceil"), "rel_mse")->valuedouble;
    assert_true(halfs <= ceil_);
    assert_true(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "ceil"), "halved_fraction")
                    ->valuedouble == 0.0);
    cJSON_Delete(root);
    free(out);

    /* NVFP4 lists its own rules. */
    util_expect_exit_ok(util_run(&out, NULL, "stats", "--format", "nvfp4", "--cols", "512",
                                 "--json", in, NULL));
    root = cJSON_Parse(out);
    assert_non_null(root);
    assert_non_null(cJSON_GetObjectItem(root, "4over6"));
    assert_non_null(cJSON_GetObjectItem(root, "max"));
    assert_null(cJSON_GetObjectItem(root, "ocp"));
    cJSON_Delete(root);
    free(out);

    /* The table: one line per rule, a best-rule mark, the kurtosis. */
    util_expect_exit_ok(util_run(&out, NULL, "stats", "--format", "fp4row", "--cols", "512", in,
                                 NULL));
    assert_non_null(strstr(out, "kurtosis"));
    assert_non_null(strstr(out, " halfs "));
    assert_non_null(strstr(out, " ceil "));
    assert_int_equal(util_count_lines_starting(out, "*"), 1);
    free(out);
    free(x);
}

/* ---------------------------------------------------------------- theory */

static void test_theory_json(void **state) {
    (void)state;
    UTIL_NEED_CLI();
    char *out = NULL;
    util_expect_exit_ok(util_run(&out, NULL, "theory", "--dist", "gauss", "--group", "32",
                                 "--samples", "32768", "--json", NULL));
    cJSON *root = cJSON_Parse(out);
    assert_non_null(root);
    cJSON *a = cJSON_GetObjectItem(root, "opt_clip_over_sigma");
    cJSON *m = cJSON_GetObjectItem(root, "mse_at_opt");
    assert_true(cJSON_IsNumber(a) && cJSON_IsNumber(m));
    assert_true(fabs(a->valuedouble / 2.9225 - 1) < 0.002);
    assert_true(fabs(m->valuedouble / 0.01268 - 1) < 0.002);
    cJSON *g = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "monte_carlo"), "32");
    assert_non_null(g);
    assert_int_equal((int)cJSON_GetObjectItem(g, "groups")->valuedouble, 1024);
    cJSON *rules = cJSON_GetObjectItem(g, "rules");
    const char *want[] = {"ocp", "ceil", "half", "halfs", "halfs-sigma", "mse", "opt"};
    for (int i = 0; i < 7; i++) {
        cJSON *o = cJSON_GetObjectItem(rules, want[i]);
        if (!o) print_error("missing rule %s\n", want[i]);
        assert_non_null(o);
        double rel = cJSON_GetObjectItem(o, "rel_mse")->valuedouble;
        assert_true(rel > 0.0 && rel < 0.2);
        assert_true(cJSON_IsNumber(cJSON_GetObjectItem(o, "clip_over_amax")));
        assert_true(cJSON_IsNumber(cJSON_GetObjectItem(o, "zero_collapse")));
    }
    double opt = cJSON_GetObjectItem(cJSON_GetObjectItem(rules, "opt"), "rel_mse")->valuedouble;
    double ocp = cJSON_GetObjectItem(cJSON_GetObjectItem(rules, "ocp"), "rel_mse")->valuedouble;
    assert_true(opt <= ocp);
    cJSON_Delete(root);
    free(out);

    /* Student-t(3): its optimum and int4. */
    util_expect_exit_ok(util_run(&out, NULL, "theory", "--dist", "t:3", "--group", "64",
                                 "--samples", "8192", "--json", NULL));
    root = cJSON_Parse(out);
    assert_non_null(root);
    assert_true(fabs(cJSON_GetObjectItem(root, "opt_clip_over_sigma")->valuedouble / 7.22 - 1) <
                0.002);
    cJSON_Delete(root);
    free(out);
    util_expect_exit_ok(util_run(&out, NULL, "theory", "--format", "int4", "--group", "64",
                                 "--samples", "8192", "--json", NULL));
    root = cJSON_Parse(out);
    assert_non_null(root);
    rules = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "monte_carlo"),
                                                    "64"), "rules");
    assert_non_null(cJSON_GetObjectItem(rules, "max"));
    assert_null(cJSON_GetObjectItem(rules, "ocp"));
    cJSON_Delete(root);
    free(out);

    /* --curve: CSV with a header and 86 ratios (0.20 .. 1.05) per group. */
    util_expect_exit_ok(util_run(&out, NULL, "theory", "--curve", "--group", "16,64", "--samples",
                                 "4096", NULL));
    assert_true(!strncmp(out, "group,ratio,rel_mse\n", 20));
    assert_int_equal(util_count_lines_starting(out, "16,"), 86);
    assert_int_equal(util_count_lines_starting(out, "64,"), 86);
    assert_non_null(strstr(out, "16,0.2000,"));
    assert_non_null(strstr(out, "64,1.0500,"));
    free(out);

    /* The table mode runs and names the optimum. */
    util_expect_exit_ok(util_run(&out, NULL, "theory", "--dist", "laplace", "--samples", "4096",
                                 NULL));
    assert_non_null(strstr(out, "4.14"));
    assert_non_null(strstr(out, "groups of 32"));
    assert_non_null(strstr(out, "groups of 1024"));
    free(out);

    /* --draw writes exactly the library's draws. */
    char p[600];
    util_path(p, sizeof p, "draw.f32");
    util_expect_exit_ok(util_run(NULL, NULL, "theory", "--dist", "t:3", "--seed", "9", "--draw",
                                 "100", p, NULL));
    size_t nbuf;
    char *buf = util_read_file(p, &nbuf);
    assert_int_equal(nbuf, 400);
    hs_dist d;
    hs_dist_parse("t:3", &d);
    for (int i = 0; i < 100; i++)
        assert_true(((float *)buf)[i] == (float)hs_dist_sample(&d, 9, 0, (uint64_t)i));
    free(buf);
    unlink(p);
}

/* ---------------------------------------------------------------- bench --isa */

/* `bench gemm --isa LEVEL` runs at that level with OpenBLAS's AVX2 kernels for ref/avx2, and says
 * so in its JSON; an unknown level is a usage error. (avx512 is refused or runs, depending on
 * the CPU: not asserted here.) */
static void test_bench_isa(void **state) {
    (void)state;
    UTIL_NEED_CLI();
    const char *levels[] = {"ref", "avx2"};
    for (int i = 0; i < 2; i++) {
        char *out = NULL;
        int rc = util_run(&out, NULL, "bench", "gemm", "--m", "16", "--n", "16", "--k", "64",
                          "--reps", "1", "--threads", "1", "--json", "--isa", levels[i], NULL);
        if (rc == 1 && i == 1) { /* a CPU without AVX2: refused with a message */
            free(out);
            continue;
        }
        util_expect_exit_ok(rc);
        cJSON *root = cJSON_Parse(out);
        assert_non_null(root);
        cJSON *isa = cJSON_GetObjectItem(root, "isa"), *core = cJSON_GetObjectItem(root, "openblas_core");
        assert_true(cJSON_IsString(isa) && cJSON_IsString(core));
        assert_string_equal(isa->valuestring, levels[i]);
        assert_string_equal(core->valuestring, "Haswell");
        cJSON_Delete(root);
        free(out);
    }
    UTIL_EXPECT_USAGE_ERROR("unknown level", "bench", "gemm", "--isa", "avx1024");
}

/* ---------------------------------------------------------------- bench quant */

/* `bench quant --json` on a small matrix: every documented key family is there with a positive
 * speed, the fused row + column key (`-both`) for the MXFP4 rules only, the other formats'
 * keys (mxfp8-e4m3/-e5m2, int4, int8, bf16), and fraction_of_copy = gbps / copy_gbps. */
static void test_bench_quant_json(void **state) {
    (void)state;
    UTIL_NEED_CLI();
    char *out = NULL;
    util_expect_exit_ok(util_run(&out, NULL, "bench", "quant", "--rows", "48", "--cols", "80",
                                 "--threads", "1", "--reps", "1", "--json", NULL));
    cJSON *root = cJSON_Parse(out);
    assert_non_null(root);
    cJSON *copy = cJSON_GetObjectItem(root, "copy_gbps");
    cJSON *g = cJSON_GetObjectItem(root, "gbps"), *fr = cJSON_GetObjectItem(root, "fraction_of_copy");
    assert_true(cJSON_IsNumber(copy) && copy->valuedouble > 0);
    assert_true(cJSON_IsObject(g) && cJSON_IsObject(fr));
    const char *want[] = {"mxfp4-ocp-row", "mxfp4-halfs-col", "mxfp4-halfs-both", "mxfp4-ocp-both",
                          "nvfp4-4over6-2d-row", "fp4row-halfs-col", "mxfp8-e4m3-ocp-row",
                          "mxfp8-e5m2-halfs-col", "int4-max-row", "int8-halfs-col",
                          "bf16-max-row", "bf16-max-col"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        cJSON *v = cJSON_GetObjectItem(g, want[i]), *f = cJSON_GetObjectItem(fr, want[i]);
        if (!cJSON_IsNumber(v) || !cJSON_IsNumber(f)) {
            print_error("bench quant --json: no number for %s\n", want[i]);
            fail();
        }
        assert_true(v->valuedouble > 0);
        /* both printed with 3 decimals: equal to within their rounding */
        assert_true(fabs(f->valuedouble - v->valuedouble / copy->valuedouble) <
                    1e-3 + 1e-3 * v->valuedouble / copy->valuedouble);
    }
    assert_null(cJSON_GetObjectItem(g, "nvfp4-max-both")); /* no fused kernel: not measured */
    cJSON_Delete(root);
    free(out);
}

/* ---------------------------------------------------------------- bench train */

/* `bench train` recipe items NAME+OPT[=VALUE]: one run measures a preset and the same preset with
 * trainer recipe options, each under its own JSON key with no error; every malformed item is a
 * usage error before any work. */
static void test_bench_train_items(void **state) {
    (void)state;
    UTIL_NEED_CLI();
    char *out = NULL;
    util_expect_exit_ok(util_run(&out, NULL, "bench", "train", "--model", "nano", "--steps", "1",
                                 "--batch", "2", "--seq", "32", "--threads", "1", "--json",
                                 "--recipes", "mxfp4-halfs,mxfp4-halfs+rht=16+sr", NULL));
    cJSON *root = cJSON_Parse(out);
    assert_non_null(root);
    cJSON *tps = cJSON_GetObjectItem(root, "tokens_per_s");
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(tps, "mxfp4-halfs")));
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(tps, "mxfp4-halfs+rht=16+sr")));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(root, "errors")), 0);
    cJSON_Delete(root);
    free(out);
    UTIL_EXPECT_USAGE_ERROR("not a recipe option", "bench", "train", "--recipes", "mxfp4-halfs+foo");
    UTIL_EXPECT_USAGE_ERROR("takes no value", "bench", "train", "--recipes", "mxfp4-halfs+sr=1");
    UTIL_EXPECT_USAGE_ERROR("needs =VALUE", "bench", "train", "--recipes", "mxfp4-halfs+rht");
    UTIL_EXPECT_USAGE_ERROR("expected an integer", "bench", "train", "--recipes", "bf16,mxfp4-halfs+block=x");
    UTIL_EXPECT_USAGE_ERROR("--rht must be", "bench", "train", "--recipes", "mxfp4-halfs+rht=17");
    UTIL_EXPECT_USAGE_ERROR("not a recipe option", "bench", "train", "--recipes", "mxfp4-halfs+recipe=bf16");
}

/* ---------------------------------------------------------------- help */

static void test_help(void **state) {
    (void)state;
    UTIL_NEED_CLI();
    static const struct {
        const char *cmd;
        const char *opts[12];
    } h[] = {
        {"qdq", {"--format", "--scale", "--block", "--rounding", "--seed", "--transpose", "--rht",
                 "--cols", "default", NULL}},
        {"stats", {"--format", "--block", "--cols", "--json", "kurtosis", "rel_mse", "sqnr_db",
                   "zero_collapse", "halved_fraction", "default", NULL}},
        {"theory", {"--dist", "--group", "--format", "--samples", "--seed", "--json", "--curve",
                    "opt_clip_over_sigma", "mse_at_opt", "group,ratio,rel_mse", "default", NULL}},
        {"eval", {"--data", "--batches", "--recipe", "--json", "--threads", NULL}},
        {"sample", {"--prompt", "--tokens", "--recipe", "--tokenizer", "--threads", NULL}},
        {"train", {"--resume", "--replan-decay", "--force", "--guard-loss-ratio",
                   "--guard-grad-norm", "interrupted", "diverged", "docs/RUNS.md", NULL}},
    };
    for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) {
        char *out = NULL, *err = NULL;
        util_expect_exit_ok(util_run(&out, &err, h[i].cmd, "--help", NULL));
        assert_string_equal(err, "");
        assert_non_null(strstr(out, "usage: halfs"));
        for (int k = 0; h[i].opts[k]; k++)
            if (!strstr(out, h[i].opts[k])) {
                print_error("%s --help does not mention %s\n", h[i].cmd, h[i].opts[k]);
                fail();
            }
        free(out);
        free(err);
    }
    char *out = NULL;
    util_expect_exit_ok(util_run(&out, NULL, "help", NULL));
    assert_non_null(strstr(out, "qdq"));
    assert_non_null(strstr(out, "stats"));
    assert_non_null(strstr(out, "theory"));
    free(out);
}

/* ---------------------------------------------------------------- bad input */

/* Expect exit status 1, exactly one "halfs: error:" line, no output file. */
static void expect_usage_error(const char *what, const char *out_name, char **argv) {
    util_expect_usage_error(what, util_run_cli(NULL, NULL, argv), NULL);
    if (out_name) assert_no_file_like(out_name);
}

static void test_bad_input(void **state) {
    (void)state;
    UTIL_NEED_CLI();
    char in[600], odd[600], out[600], nodir[600], empty[600];
    util_path(in, sizeof in, "good.f32");
    util_path(odd, sizeof odd, "odd.f32");
    util_path(out, sizeof out, "bad_out.f32");
    util_path(nodir, sizeof nodir, "no/such/dir/bad_out.f32");
    util_path(empty, sizeof empty, "empty.f32");
    float *x = make_data(4, 64, 4);
    write_f32(in, x, 256);
    write_f32(odd, x, 10); /* 10 values: not a multiple of --cols 64 */
    write_f32(empty, x, 0);
    free(x);
    char missing[600];
    util_path(missing, sizeof missing, "does_not_exist.f32");
    char junk[2] = {1, 2}; /* a 2-byte file: not whole floats */
    char odd_bytes[600];
    util_path(odd_bytes, sizeof odd_bytes, "bytes.f32");
    util_write_file(odd_bytes, junk, sizeof junk);

#define Q(...) (char *[]){"qdq", __VA_ARGS__, NULL}
#define S(...) (char *[]){"stats", __VA_ARGS__, NULL}
#define T(...) (char *[]){"theory", __VA_ARGS__, NULL}
    struct {
        const char *what;
        char **argv;
    } cases[] = {
        {"missing input", Q("--format", "mxfp4", "--cols", "64", missing, out)},
        {"not a multiple of --cols", Q("--format", "mxfp4", "--cols", "64", odd, out)},
        {"not whole floats", Q("--format", "mxfp4", "--cols", "64", odd_bytes, out)},
        {"empty input", Q("--format", "mxfp4", "--cols", "64", empty, out)},
        {"unknown format", Q("--format", "mxfp5", "--cols", "64", in, out)},
        {"unknown rule", Q("--format", "mxfp4", "--scale", "best", "--cols", "64", in, out)},
        {"rule not for nvfp4", Q("--format", "nvfp4", "--scale", "ocp", "--cols", "64", in, out)},
        {"rule not for mxfp4", Q("--format", "mxfp4", "--scale", "max", "--cols", "64", in, out)},
        {"4over6 not for mxfp4",
         Q("--format", "mxfp4", "--scale", "4over6", "--cols", "64", in, out)},
        {"block 0", Q("--format", "mxfp4", "--block", "0", "--cols", "64", in, out)},
        {"block 7", Q("--format", "mxfp4", "--block", "7", "--cols", "64", in, out)},
        {"block negative", Q("--format", "mxfp4", "--block", "-32", "--cols", "64", in, out)},
        {"block for fp4row", Q("--format", "fp4row", "--block", "32", "--cols", "64", in, out)},
        {"huge cols", Q("--format", "mxfp4", "--cols", "99999999999999", in, out)},
        {"overflowing cols", Q("--format", "mxfp4", "--cols", "999999999999999999999999", in, out)},
        {"negative cols", Q("--format", "mxfp4", "--cols", "-64", in, out)},
        {"zero cols", Q("--format", "mxfp4", "--cols", "0", in, out)},
        {"non-numeric cols", Q("--format", "mxfp4", "--cols", "6x4", in, out)},
        {"negative seed",
         Q("--format", "mxfp4", "--rounding", "sr", "--seed", "-1", "--cols", "64", in, out)},
        {"unknown rounding",
         Q("--format", "mxfp4", "--rounding", "nearest", "--cols", "64", in, out)},
        {"bad rht size", Q("--format", "mxfp4", "--rht", "24", "--cols", "64", in, out)},
        {"rht larger than row", Q("--format", "mxfp4", "--rht", "128", "--cols", "64", in, out)},
        {"unknown option", Q("--format", "mxfp4", "--frobnicate", "--cols", "64", in, out)},
        {"missing operand", Q("--format", "mxfp4", "--cols", "64", in)},
        {"missing --cols", Q("--format", "mxfp4", in, out)},
        {"missing --format", Q("--cols", "64", in, out)},
        {"option without value", Q("--format", "mxfp4", in, out, "--cols")},
        {"extra operand", Q("--format", "mxfp4", "--cols", "64", in, out, in)},
        {"output directory missing", Q("--format", "mxfp4", "--cols", "64", in, nodir)},
        {"stats missing input", S("--format", "mxfp4", "--cols", "64", missing)},
        {"stats not a multiple", S("--format", "mxfp4", "--cols", "64", odd)},
        {"stats unknown format", S("--format", "e2m1", "--cols", "64", in)},
        {"stats block 7", S("--format", "mxfp4", "--block", "7", "--cols", "64", in)},
        {"stats huge cols", S("--format", "mxfp4", "--cols", "99999999999999", in)},
        {"stats negative cols", S("--format", "mxfp4", "--cols", "-1", in)},
        {"stats unknown option", S("--format", "mxfp4", "--cols", "64", "--csv", in)},
        {"stats missing operand", S("--format", "mxfp4", "--cols", "64")},
        {"theory bad dist", T("--dist", "cauchy")},
        {"theory t:2", T("--dist", "t:2")},
        {"theory group 0", T("--group", "0")},
        {"theory group 1", T("--group", "1")},
        {"theory negative group", T("--group", "-32")},
        {"theory huge group", T("--group", "99999999999999")},
        {"theory format", T("--format", "e4m3")},
        {"theory negative samples", T("--samples", "-5")},
        {"theory unknown option", T("--bogus")},
        {"theory operand", T("stray")},
        {"theory json+curve", T("--json", "--curve")},
        {"theory draw no file", T("--draw", "10")},
    };
#undef Q
#undef S
#undef T
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_usage_error(cases[i].what, "bad_out", cases[i].argv);

    /* An existing output is left untouched by a failing run. */
    float keep[3] = {1, 2, 3};
    write_f32(out, keep, 3);
    expect_usage_error("bad rule keeps old output",
                       NULL, (char *[]){"qdq", "--format", "nvfp4", "--scale", "ocp", "--cols",
                                        "64", in, out, NULL});
    size_t nbuf;
    char *buf = util_read_file(out, &nbuf);
    assert_int_equal(nbuf, sizeof keep);
    assert_memory_equal(buf, keep, sizeof keep);
    free(buf);
    assert_no_file_like("bad_out.f32.tmp");
    unlink(out);
    unlink(in);
    unlink(odd);
    unlink(odd_bytes);
    unlink(empty);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_qdq_roundtrip),
        cmocka_unit_test(test_qdq_nonfinite),
        cmocka_unit_test(test_stats_json),
        cmocka_unit_test(test_theory_json),
        cmocka_unit_test(test_bench_isa),
        cmocka_unit_test(test_bench_quant_json),
        cmocka_unit_test(test_bench_train_items),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, util_scratch_setup, util_scratch_teardown);
}

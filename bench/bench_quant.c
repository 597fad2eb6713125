/* bench_quant.c: `halfs bench quant`: quantization throughput next to memory-copy bandwidth.
 *
 * For each format × scale rule, quantizes a Gaussian fp32 matrix (rows × cols) row-wise
 * (groups along rows) and column-wise (groups along columns: the transposed quantization of
 * the backward GEMMs), and reports GB/s of fp32 input consumed (4·rows·cols bytes / time),
 * median of --reps timed runs after a warm-up. The baseline, `copy_gbps`, is a copy of the same
 * matrix into another buffer with the same threads, in the same run: quantization reads as
 * much and writes 8× less, so it can in principle run at or above copy speed.
 * Keys: FORMAT-RULE-row / FORMAT-RULE-col, e.g. mxfp4-halfs-row, nvfp4-4over6-col; NVFP4 with
 * 2D 16×16 weight tiles: FORMAT-RULE-2d-row / -col, e.g. nvfp4-4over6-2d-row.
 * `dequant_gbps` (keyed by format): hs_dequantize of the row-wise packed matrix, GB/s of fp32
 * output written, same conventions.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tools/cli.h"
#include "bench.h"
#include "halfs/halfs.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: halfs bench quant [--rows R] [--cols C] [--threads T] [--reps N] [--json]\n\n"
            "GB/s of float32 input consumed by each quantizer (format x scale rule, row-wise and\n"
            "column-wise), next to a memory copy of the same matrix measured in the same run.\n"
            "Defaults: R=4096 C=4096, threads = OpenMP default, N=5. The quantization targets are\n"
            "stated for one thread: `halfs bench quant --threads 1`.\n");
}

static void fill_gauss(float *x, int64_t n, uint64_t seed) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i += 2) {
        double u1 = ((double)(hs_rng_bits(seed, 1, (uint64_t)i) >> 11) + 1.0) * 0x1p-53;
        double u2 = (double)(hs_rng_bits(seed, 2, (uint64_t)i) >> 11) * 0x1p-53;
        double r = sqrt(-2.0 * log(u1));
        x[i] = (float)(r * cos(6.283185307179586 * u2));
        if (i + 1 < n) x[i + 1] = (float)(r * sin(6.283185307179586 * u2));
    }
}

/* What is measured: format, rule, and the key prefix. */
static const struct {
    hs_format fmt;
    hs_rule rule;
    int tile2d; /* 16: one scale per 16×16 tile (NVFP4 weights) */
} cases[] = {
    {HS_FMT_MXFP4, HS_RULE_OCP, 0},   {HS_FMT_MXFP4, HS_RULE_CEIL, 0},
    {HS_FMT_MXFP4, HS_RULE_RCEIL, 0}, {HS_FMT_MXFP4, HS_RULE_EVEN, 0},
    {HS_FMT_MXFP4, HS_RULE_HALF, 0},  {HS_FMT_MXFP4, HS_RULE_HALFS, 0},
    {HS_FMT_MXFP4, HS_RULE_HALFS_SIGMA, 0}, {HS_FMT_MXFP4, HS_RULE_MSE, 0},
    {HS_FMT_NVFP4, HS_RULE_MAX, 0},   {HS_FMT_NVFP4, HS_RULE_4OVER6, 0},
    {HS_FMT_NVFP4, HS_RULE_HALFS, 0}, {HS_FMT_NVFP4, HS_RULE_MSE, 0},
    {HS_FMT_NVFP4, HS_RULE_MAX, 16}, {HS_FMT_NVFP4, HS_RULE_4OVER6, 16},
    {HS_FMT_NVFP4, HS_RULE_HALFS, 16},
    {HS_FMT_FP4ROW, HS_RULE_OCP, 0},  {HS_FMT_FP4ROW, HS_RULE_CEIL, 0},
    {HS_FMT_FP4ROW, HS_RULE_HALFS, 0}, {HS_FMT_FP4ROW, HS_RULE_HALFS_SIGMA, 0},
};
enum { NCASES = sizeof cases / sizeof cases[0] };

int bench_quant_main(int argc, char **argv) {
    int64_t rows = 4096, cols = 4096, threads = 0, reps = 5;
    int json = 0;
    const bench_int_opt opts[] = {{"--rows", 1, 1 << 24, &rows},
                                  {"--cols", 1, 1 << 24, &cols},
                                  {"--threads", 1, 1024, &threads},
                                  {"--reps", 1, 10000, &reps},
                                  {NULL, 0, 0, NULL}};
    int done = 0, st = bench_parse_args(argc, argv, "quant", usage, opts, &json, &done);
    if (st != CLI_OK || done) return st;
    double nel = (double)rows * (double)cols;
    /* input + copy (4 + 4 bytes) + six packed outputs (≈ 0.6 byte each) per element */
    if (bench_check_memory(nel * (8 + 6 * 0.6), "bench quant")) return CLI_USAGE;
    int nthreads = bench_set_threads((int)threads);

    float *x = malloc(sizeof(float) * (size_t)nel), *y = malloc(sizeof(float) * (size_t)nel);
    double *times = malloc(sizeof(double) * (size_t)reps);
    if (!x || !y || !times) {
        cli_error("bench quant: out of memory");
        free(x), free(y), free(times);
        return CLI_INTERNAL;
    }
    fill_gauss(x, (int64_t)nel, 7);
    double gbytes = 4.0 * nel * 1e-9;

    /* Baseline: copy x into y, rows split over the threads like the quantizers. */
    for (int64_t r = -1; r < reps; r++) {
        double t0 = bench_now();
        /* threads only where the quantizers use them too (more than 2^15 elements) */
#pragma omp parallel for schedule(static) if (nel > 32768.0)
        for (int64_t i = 0; i < rows; i++)
            memcpy(y + i * cols, x + i * cols, sizeof(float) * (size_t)cols);
        double t1 = bench_now();
        if (r >= 0) times[r] = t1 - t0;
    }
    double copy_gbps = gbytes / bench_median(times, (int)reps);

    /* One output per format and orientation, reused across rules (first touch is slow). */
    static const hs_format fmts[3] = {HS_FMT_MXFP4, HS_FMT_NVFP4, HS_FMT_FP4ROW};
    hs_packed out[3][2];
    memset(out, 0, sizeof out);
    int rc = CLI_OK;
    for (int f = 0; f < 3 && rc == CLI_OK; f++)
        for (int t = 0; t < 2 && rc == CLI_OK; t++) {
            hs_quant_spec s;
            hs_status st = hs_quant_spec_init(&s, fmts[f]);
            if (st == HS_OK)
                st = t ? hs_packed_alloc(&out[f][t], &s, cols, rows)
                       : hs_packed_alloc(&out[f][t], &s, rows, cols);
            if (st != HS_OK) rc = cli_fail_status(st, "bench quant");
        }
    double gbps[NCASES][2];
    for (int c = 0; c < NCASES && rc == CLI_OK; c++) {
        int f = cases[c].fmt == HS_FMT_MXFP4 ? 0 : cases[c].fmt == HS_FMT_NVFP4 ? 1 : 2;
        hs_quant_spec s;
        hs_status st = hs_quant_spec_init(&s, cases[c].fmt);
        s.rule = cases[c].rule;
        s.tile2d = cases[c].tile2d;
        for (int t = 0; t < 2 && st == HS_OK; t++) {
            for (int64_t r = -1; r < reps && st == HS_OK; r++) {
                double t0 = bench_now();
                st = hs_quantize(&s, x, rows, cols, cols, t, &out[f][t]);
                double t1 = bench_now();
                if (r >= 0) times[r] = t1 - t0;
            }
            if (st == HS_OK) gbps[c][t] = gbytes / bench_median(times, (int)reps);
        }
        if (st != HS_OK) rc = cli_fail_status(st, "bench quant");
    }
    /* Dequantize each format's row-wise output (the last rule quantized into it) into y. */
    double dq_gbps[3] = {0, 0, 0};
    for (int f = 0; f < 3 && rc == CLI_OK; f++) {
        hs_status st = HS_OK;
        for (int64_t r = -1; r < reps && st == HS_OK; r++) {
            double t0 = bench_now();
            st = hs_dequantize(&out[f][0], y, cols);
            double t1 = bench_now();
            if (r >= 0) times[r] = t1 - t0;
        }
        if (st == HS_OK) dq_gbps[f] = gbytes / bench_median(times, (int)reps);
        else rc = cli_fail_status(st, "bench quant");
    }
    if (rc == CLI_OK) {
        if (json) {
            printf("{\"rows\": %lld, \"cols\": %lld, \"threads\": %d, \"reps\": %lld, "
                   "\"isa\": \"%s\", \"copy_gbps\": %.3f,\n \"gbps\": {",
                   (long long)rows, (long long)cols, nthreads, (long long)reps, hs_isa_name(),
                   copy_gbps);
            for (int c = 0; c < NCASES; c++)
                for (int t = 0; t < 2; t++)
                    printf("%s\"%s-%s%s-%s\": %.3f", c || t ? ", " : "",
                           hs_format_name(cases[c].fmt), hs_rule_name(cases[c].rule),
                           cases[c].tile2d ? "-2d" : "", t ? "col" : "row", gbps[c][t]);
            printf("},\n \"fraction_of_copy\": {");
            for (int c = 0; c < NCASES; c++)
                for (int t = 0; t < 2; t++)
                    printf("%s\"%s-%s%s-%s\": %.3f", c || t ? ", " : "",
                           hs_format_name(cases[c].fmt), hs_rule_name(cases[c].rule),
                           cases[c].tile2d ? "-2d" : "", t ? "col" : "row", gbps[c][t] / copy_gbps);
            printf("},\n \"dequant_gbps\": {");
            for (int f = 0; f < 3; f++)
                printf("%s\"%s\": %.3f", f ? ", " : "", hs_format_name(fmts[f]), dq_gbps[f]);
            printf("}}\n");
        } else {
            printf("bench quant: %lld x %lld float32 (%.1f MB), %d threads, kernels %s, median of "
                   "%lld runs\n",
                   (long long)rows, (long long)cols, 4.0 * nel / 1e6, nthreads, hs_isa_name(),
                   (long long)reps);
            printf("copy: %.2f GB/s\n", copy_gbps);
            printf("%-8s %-12s %10s %7s %10s %7s\n", "format", "rule", "row GB/s", "%copy",
                   "col GB/s", "%copy");
            for (int c = 0; c < NCASES; c++) {
                char rule[32];
                snprintf(rule, sizeof rule, "%s%s", hs_rule_name(cases[c].rule),
                         cases[c].tile2d ? " 2d" : "");
                printf("%-8s %-12s %10.2f %6.0f%% %10.2f %6.0f%%\n", hs_format_name(cases[c].fmt),
                       rule, gbps[c][0], 100 * gbps[c][0] / copy_gbps,
                       gbps[c][1], 100 * gbps[c][1] / copy_gbps);
            }
            printf("dequantize (row-wise packed -> fp32):");
            for (int f = 0; f < 3; f++)
                printf(" %s %.2f GB/s (%.0f%%)%s", hs_format_name(fmts[f]), dq_gbps[f],
                       100 * dq_gbps[f] / copy_gbps, f < 2 ? "," : "\n");
        }
    }
    for (int f = 0; f < 3; f++)
        for (int t = 0; t < 2; t++) hs_packed_free(&out[f][t]);
    free(x);
    free(y);
    free(times);
    return rc;
}

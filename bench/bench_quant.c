/* bench_quant.c: `halfs bench quant`: quantization throughput next to memory-copy bandwidth.
 *
 * For each format × scale rule, quantizes a Gaussian fp32 matrix (rows × cols) row-wise
 * (groups along rows) and column-wise (groups along columns: the transposed quantization of
 * the backward GEMMs), and reports GB/s of fp32 input consumed (4·rows·cols bytes / time),
 * median of --reps timed runs after a warm-up. The baseline, `copy_gbps`, is a copy of the same
 * matrix into another buffer with the same threads, in the same run (the median of --reps
 * copies at the start and one before every quantizer measurement, so that a machine whose
 * speed drifts during the run moves both sides): quantization reads as much and writes 8×
 * less, so it can in principle run at or above copy speed.
 * Keys: FORMAT-RULE-row / FORMAT-RULE-col, e.g. mxfp4-halfs-row, nvfp4-4over6-col; NVFP4 with
 * 2D 16×16 weight tiles: FORMAT-RULE-2d-row / -col, e.g. nvfp4-4over6-2d-row. MXFP4 rules also
 * get FORMAT-RULE-both: hs_quantize_both (row-wise and column-wise from one call, the trainer's
 * path), GB/s of fp32 input (read once), so its gain over the -row and -col calls of the same
 * run is 1/(1/row + 1/col) against it. The 8-bit, INT and BF16 quantizers follow the same scheme:
 * mxfp8-e4m3 / mxfp8-e5m2 (E8M0 scales, block 32), int4 / int8 (FP32 scales, block 32), bf16
 * (no scale: rule `max` stands for none), e.g. mxfp8-e5m2-ocp-row, int8-max-col, bf16-max-row.
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

/* What the options set. */
typedef struct {
    int64_t rows, cols, threads, reps;
    int json;
    const char *isa;
} quant_args;

enum { QUANT_NOPTS = 7 };

/* Defaults into *t and the option table over it into opts[QUANT_NOPTS]. */
static void quant_table(quant_args *t, cli_opt *opts) {
    *t = (quant_args){.rows = 4096, .cols = 4096, .threads = 0, .reps = 5};
    const cli_opt o[QUANT_NOPTS] = {
        {.name = "--rows", .type = CLI_I64, .dst = &t->rows, .lo = 1, .hi = 1 << 24, .arg = "R",
         .help = "rows of the matrix (default: 4096)"},
        {.name = "--cols", .type = CLI_I64, .dst = &t->cols, .lo = 1, .hi = 1 << 24, .arg = "C",
         .help = "columns of the matrix (default: 4096)"},
        {.name = "--threads", .type = CLI_I64, .dst = &t->threads, .lo = 1, .hi = 1024,
         .arg = "T", .help = "threads (default: the OpenMP default)"},
        {.name = "--reps", .type = CLI_I64, .dst = &t->reps, .lo = 1, .hi = 10000, .arg = "N",
         .help = "timed runs, the median reported (default: 5)"},
        {.name = "--json", .type = CLI_FLAG, .dst = &t->json, .help = "print one JSON object"},
        BENCH_ISA_OPT(&t->isa),
        {.name = NULL},
    };
    memcpy(opts, o, sizeof o);
}

static void usage(FILE *out) {
    fprintf(out,
            "usage: halfs bench quant [--rows R] [--cols C] [--threads T] [--reps N] [--json]\n\n"
            "GB/s of float32 input consumed by each quantizer (format x scale rule, row-wise and\n"
            "column-wise), next to a memory copy of the same matrix measured in the same run.\n"
            "Formats: mxfp4, nvfp4 (also with 2D tiles), fp4row, mxfp8-e4m3, mxfp8-e5m2, int4,\n"
            "int8, bf16; keys FORMAT-RULE-row / -col (e.g. mxfp4-halfs-row, int8-max-col), and\n"
            "FORMAT-RULE-both for the fused row + column quantizer (MXFP4 rules), GB/s of input.\n"
            "The quantization targets are stated for one thread: `halfs bench quant --threads 1`.\n"
            "\noptions:\n");
    quant_args t;
    cli_opt opts[QUANT_NOPTS];
    quant_table(&t, opts);
    cli_opts_help(out, opts);
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
    int tile2d;       /* 16: one scale per 16×16 tile (NVFP4 weights) */
    const char *name; /* key prefix when the element differs from the preset's (else NULL) */
    hs_elem elem;     /* that element, when name is set */
} cases[] = {
/* P: a preset's own element; E: the preset with element el, keyed name */
#define P(fmt, rule, tile) {HS_FMT_##fmt, HS_RULE_##rule, tile, NULL, HS_ELEM_E2M1}
#define E(fmt, rule, name, el) {HS_FMT_##fmt, HS_RULE_##rule, 0, name, HS_ELEM_##el}
    P(MXFP4, OCP, 0),     P(MXFP4, CEIL, 0),   P(MXFP4, RCEIL, 0),  P(MXFP4, EVEN, 0),
    P(MXFP4, HALF, 0),    P(MXFP4, HALFS, 0),  P(MXFP4, HALFS_SIGMA, 0), P(MXFP4, MSE, 0),
    P(NVFP4, MAX, 0),     P(NVFP4, 4OVER6, 0), P(NVFP4, HALFS, 0),  P(NVFP4, MSE, 0),
    P(NVFP4, MAX, 16),    P(NVFP4, 4OVER6, 16), P(NVFP4, HALFS, 16),
    P(FP4ROW, OCP, 0),    P(FP4ROW, CEIL, 0),  P(FP4ROW, HALFS, 0), P(FP4ROW, HALFS_SIGMA, 0),
    /* the generic SIMD quantizers (quant_generic.c); outputs allocated per case */
    P(MXFP8_E4M3, OCP, 0), P(MXFP8_E4M3, CEIL, 0), P(MXFP8_E4M3, HALFS, 0),
    E(MXFP8_E4M3, OCP, "mxfp8-e5m2", E5M2), E(MXFP8_E4M3, CEIL, "mxfp8-e5m2", E5M2),
    E(MXFP8_E4M3, HALFS, "mxfp8-e5m2", E5M2),
    P(INT4, MAX, 0),      P(INT4, HALFS, 0),
    E(INT4, MAX, "int8", INT8), E(INT4, HALFS, "int8", INT8),
    P(BF16, MAX, 0),
#undef P
#undef E
};
enum { NCASES = sizeof cases / sizeof cases[0] };

/* The key prefix of case c: its own name, or its format's. */
static const char *case_name(int c) {
    return cases[c].name ? cases[c].name : hs_format_name(cases[c].fmt);
}

/* One timed copy of x (rows × cols) into y, rows split over the threads like the quantizers
 * (threads only where the quantizers use them too: more than 2^15 elements). Seconds. */
static double copy_once(const float *x, float *y, int64_t rows, int64_t cols) {
    double t0 = bench_now();
#pragma omp parallel for schedule(static) if ((double)rows * (double)cols > 32768.0)
    for (int64_t i = 0; i < rows; i++)
        memcpy(y + i * cols, x + i * cols, sizeof(float) * (size_t)cols);
    return bench_now() - t0;
}

int bench_quant_main(int argc, char **argv) {
    quant_args t;
    cli_opt opts[QUANT_NOPTS];
    quant_table(&t, opts);
    const cli_command cmd = {"bench quant", opts, usage, 0, "bench quant takes only options"};
    int st = cli_parse(&cmd, argc, argv, NULL, NULL);
    if (st != CLI_OK) return st == CLI_HELP ? CLI_OK : st;
    if (bench_apply_isa(t.isa)) return CLI_USAGE;
    int64_t rows = t.rows, cols = t.cols, threads = t.threads, reps = t.reps;
    int json = t.json;
    double nel = (double)rows * (double)cols;
    /* input + copy (4 + 4 bytes) + six packed outputs (≈ 0.6 byte each) + the two outputs of
     * one of the other formats (at most bf16's 2 bytes each) per element */
    if (bench_check_memory(nel * (8 + 6 * 0.6 + 2 * 2), "bench quant")) return CLI_USAGE;
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

    /* Baseline: copy x into y, rows split over the threads like the quantizers; timed reps
     * times here and once more before every quantizer measurement below, so that copy_gbps
     * (the median of all of them) spans the same minutes as the quantizers it is compared to. */
    double *ctimes = malloc(sizeof(double) * (size_t)(reps + 3 * NCASES));
    int nct = 0;
    if (!ctimes) {
        cli_error("bench quant: out of memory");
        free(x), free(y), free(times);
        return CLI_INTERNAL;
    }
    copy_once(x, y, rows, cols); /* warm-up */
    for (int64_t r = 0; r < reps; r++) ctimes[nct++] = copy_once(x, y, rows, cols);

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
    /* gbps[c][0 / 1 / 2]: row-wise / column-wise / both (MXFP4 cases only; 0: not measured) */
    double gbps[NCASES][3];
    memset(gbps, 0, sizeof gbps);
    for (int c = 0; c < NCASES && rc == CLI_OK; c++) {
        const hs_format fc = cases[c].fmt;
        const int f = fc == HS_FMT_MXFP4 ? 0 : fc == HS_FMT_NVFP4 ? 1 : fc == HS_FMT_FP4ROW ? 2 : -1;
        hs_quant_spec s;
        hs_status st = hs_quant_spec_init(&s, fc);
        s.rule = cases[c].rule;
        s.tile2d = cases[c].tile2d;
        if (cases[c].name) s.elem = cases[c].elem;
        /* the other formats: outputs of this case only (warm-up run: first touch) */
        hs_packed own[2];
        memset(own, 0, sizeof own);
        if (st == HS_OK && f < 0) st = hs_packed_alloc(&own[0], &s, rows, cols);
        if (st == HS_OK && f < 0) st = hs_packed_alloc(&own[1], &s, cols, rows);
        hs_packed *o = f < 0 ? own : out[f];
        const int nt = fc == HS_FMT_MXFP4 && !cases[c].tile2d ? 3 : 2;
        for (int t = 0; t < nt && st == HS_OK; t++) {
            ctimes[nct++] = copy_once(x, y, rows, cols);
            for (int64_t r = -1; r < reps && st == HS_OK; r++) {
                double t0 = bench_now();
                st = t < 2 ? hs_quantize(&s, x, rows, cols, cols, t, &o[t])
                           : hs_quantize_both(&s, &s, x, rows, cols, cols, &o[0], &o[1]);
                double t1 = bench_now();
                if (r >= 0) times[r] = t1 - t0;
            }
            if (st == HS_OK) gbps[c][t] = gbytes / bench_median(times, (int)reps);
        }
        hs_packed_free(&own[0]);
        hs_packed_free(&own[1]);
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
    double copy_gbps = gbytes / bench_median(ctimes, nct);
    if (rc == CLI_OK) {
        static const char *const orient[3] = {"row", "col", "both"};
        if (json) {
            printf("{\"rows\": %lld, \"cols\": %lld, \"threads\": %d, \"reps\": %lld, "
                   "\"isa\": \"%s\", \"openblas_core\": \"%s\", \"copy_gbps\": %.3f,\n \"gbps\": {",
                   (long long)rows, (long long)cols, nthreads, (long long)reps, hs_isa_name(), bench_blas_core(),
                   copy_gbps);
            for (int pass = 0; pass < 2; pass++) { /* gbps, then fraction_of_copy */
                if (pass) printf("},\n \"fraction_of_copy\": {");
                int first = 1;
                for (int c = 0; c < NCASES; c++)
                    for (int t = 0; t < 3; t++) {
                        if (gbps[c][t] <= 0) continue; /* not measured (both: MXFP4 only) */
                        printf("%s\"%s-%s%s-%s\": %.3f", first ? "" : ", ", case_name(c),
                               hs_rule_name(cases[c].rule), cases[c].tile2d ? "-2d" : "",
                               orient[t], pass ? gbps[c][t] / copy_gbps : gbps[c][t]);
                        first = 0;
                    }
            }
            printf("},\n \"dequant_gbps\": {");
            for (int f = 0; f < 3; f++)
                printf("%s\"%s\": %.3f", f ? ", " : "", hs_format_name(fmts[f]), dq_gbps[f]);
            printf("}}\n");
        } else {
            printf("bench quant: %lld x %lld float32 (%.1f MB), %d threads, kernels %s, fp32 on OpenBLAS %s, median of "
                   "%lld runs\n",
                   (long long)rows, (long long)cols, 4.0 * nel / 1e6, nthreads, hs_isa_name(), bench_blas_core(),
                   (long long)reps);
            printf("copy: %.2f GB/s\n", copy_gbps);
            printf("(both: row + column in one hs_quantize_both call, GB/s of input; x2: its speed\n"
                   " over the -row and -col calls one after the other)\n");
            printf("%-10s %-12s %10s %7s %10s %7s %10s %7s %6s\n", "format", "rule", "row GB/s",
                   "%copy", "col GB/s", "%copy", "both GB/s", "%copy", "x2");
            for (int c = 0; c < NCASES; c++) {
                char rule[32];
                snprintf(rule, sizeof rule, "%s%s", hs_rule_name(cases[c].rule),
                         cases[c].tile2d ? " 2d" : "");
                printf("%-10s %-12s %10.2f %6.0f%% %10.2f %6.0f%%", case_name(c), rule,
                       gbps[c][0], 100 * gbps[c][0] / copy_gbps, gbps[c][1],
                       100 * gbps[c][1] / copy_gbps);
                if (gbps[c][2] > 0)
                    printf(" %10.2f %6.0f%% %6.2f\n", gbps[c][2], 100 * gbps[c][2] / copy_gbps,
                           gbps[c][2] * (1 / gbps[c][0] + 1 / gbps[c][1]));
                else
                    printf(" %10s %7s %6s\n", "-", "-", "-");
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
    free(ctimes);
    return rc;
}

/* bench_gemm.c: `halfs bench gemm`: GFLOP/s of every GEMM path on one shape, in one process.
 *
 *   sgemm_openblas  fp32 OpenBLAS cblas_sgemm (C = A·Bᵀ), the baseline
 *   bf16_dpbf16     our bf16 GEMM: the vdpbf16ps contract, that instruction at the avx512
 *                   level, its FMA twin at avx2 (Debian's OpenBLAS has no sbgemm)
 *   mxfp4           packed MXFP4 × MXFP4 (E8M0 per 32), int8 dot products on the codes
 *   nvfp4           packed NVFP4 × NVFP4 (UE4M3 per 16 + FP32 tensor scale)
 *   fp4row          packed E2M1 with one E8M0 scale per row
 * GFLOP/s counts 2·M·N·K per call (the dense product, whatever the format), from the median
 * of --reps timed calls after one warm-up call. The operands are quantized from Gaussian data
 * with each format's default rule; quantization is not timed (see `halfs bench quant`). The
 * kernels run one after the other with a 0.3 s pause between them, so that one's idle threads
 * (OpenBLAS busy-waits after a call) do not steal the cores of the next.
 * Run with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset so OpenBLAS uses its AVX-512 kernels.
 *
 * `--shapes trainer` times instead the twelve GEMMs of one block of the trainer's `small` model
 * (4096 tokens, dim 256, ffn 704, fused qkv and gate-up; fprop, dgrad and wgrad with beta = 1)
 * in one run, and their sum: what one layer's linears cost per step in each recipe.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../tools/cli.h"
#include "bench.h"
#include "halfs/halfs.h"

/* What the options set. */
typedef struct {
    int64_t m, n, k, threads, reps;
    const char *shapes;
    int json;
    const char *isa;
} gemm_args;

enum { GEMM_NOPTS = 9 };
enum { OPT_M, OPT_N, OPT_K }; /* their entries in the table */

/* Defaults into *t and the option table over it into opts[GEMM_NOPTS]. */
static void gemm_table(gemm_args *t, cli_opt *opts) {
    *t = (gemm_args){.m = 4096, .n = 1536, .k = 1536, .threads = 0, .reps = 10};
    const cli_opt o[GEMM_NOPTS] = {
        [OPT_M] = {.name = "--m", .type = CLI_I64, .dst = &t->m, .lo = 1, .hi = 1 << 20,
                   .arg = "M", .help = "rows of A and C (default: 4096)"},
        [OPT_N] = {.name = "--n", .type = CLI_I64, .dst = &t->n, .lo = 1, .hi = 1 << 20,
                   .arg = "N", .help = "rows of B, columns of C (default: 1536)"},
        [OPT_K] = {.name = "--k", .type = CLI_I64, .dst = &t->k, .lo = 1, .hi = 1 << 20,
                   .arg = "K", .help = "the reduction length (default: 1536)"},
        {.name = "--shapes", .type = CLI_STR, .dst = &t->shapes, .arg = "trainer",
         .help = "the 12 GEMMs of one block of the trainer's `small` model instead"},
        {.name = "--threads", .type = CLI_I64, .dst = &t->threads, .lo = 1, .hi = 1024,
         .arg = "T", .help = "threads (default: the OpenMP default)"},
        {.name = "--reps", .type = CLI_I64, .dst = &t->reps, .lo = 1, .hi = 10000, .arg = "R",
         .help = "timed runs, the median reported (default: 10)"},
        {.name = "--json", .type = CLI_FLAG, .dst = &t->json, .help = "print one JSON object"},
        BENCH_ISA_OPT(&t->isa),
        {.name = NULL},
    };
    memcpy(opts, o, sizeof o);
}

static void usage(FILE *out) {
    fprintf(out,
            "usage: halfs bench gemm [--m M] [--n N] [--k K] [--threads T] [--reps R] [--json]\n"
            "       halfs bench gemm --shapes trainer [--threads T] [--reps R] [--json]\n\n"
            "GFLOP/s (2*M*N*K per call, median of R runs after a warm-up) of C[M,N] = A[M,K]*B[N,K]^T\n"
            "for sgemm_openblas (fp32), bf16_dpbf16 (our bf16 GEMM: vdpbf16ps at avx512, its FMA\n"
            "twin at avx2), and the packed FP4 GEMMs mxfp4, nvfp4, fp4row; plus each one's ratio\n"
            "to sgemm_openblas.\n"
            "--shapes trainer: the 12 GEMMs of one block of the trainer's `small` model (M = 4096\n"
            "tokens; fprop, dgrad, and wgrad with beta = 1), one row each, and their total ms.\n"
            "For OpenBLAS's AVX-512 kernels run it as\n"
            "  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE halfs bench gemm ...\n"
            "\noptions:\n");
    gemm_args t;
    cli_opt opts[GEMM_NOPTS];
    gemm_table(&t, opts);
    cli_opts_help(out, opts);
}

/* Gaussian values (Box-Muller on a SplitMix64 stream), deterministic. */
static void fill_gauss(float *x, int64_t n, uint64_t seed) {
    for (int64_t i = 0; i < n; i += 2) {
        double u1 = ((double)(hs_rng_bits(seed, 1, (uint64_t)i) >> 11) + 1.0) * 0x1p-53;
        double u2 = (double)(hs_rng_bits(seed, 2, (uint64_t)i) >> 11) * 0x1p-53;
        double r = sqrt(-2.0 * log(u1));
        x[i] = (float)(r * cos(6.283185307179586 * u2));
        if (i + 1 < n) x[i + 1] = (float)(r * sin(6.283185307179586 * u2));
    }
}

typedef struct {
    const char *name;
    double ms, gflops;
} result;

enum { NKERN = 5 }; /* sgemm, bf16, mxfp4, nvfp4, fp4row */

/* Time every kernel on C[m,n] = A[m,k]·B[n,k]ᵀ + beta·C into res[NKERN]. Returns CLI_OK or an
 * exit code after printing the error. */
static int run_shape(int64_t m, int64_t n, int64_t k, float beta, int64_t reps, result *res) {
    double mk = (double)m * k, nk = (double)n * k, mn = (double)m * n;
    float *a = malloc(sizeof(float) * (size_t)mk), *b = malloc(sizeof(float) * (size_t)nk);
    float *c = calloc((size_t)mn, sizeof(float));
    uint16_t *a16 = malloc(2 * (size_t)mk), *b16 = malloc(2 * (size_t)nk);
    double *times = malloc(sizeof(double) * (size_t)reps);
    if (!a || !b || !c || !a16 || !b16 || !times) {
        free(a), free(b), free(c), free(a16), free(b16), free(times);
        cli_error("bench gemm: out of memory");
        return CLI_INTERNAL;
    }
    fill_gauss(a, (int64_t)mk, 1);
    fill_gauss(b, (int64_t)nk, 2);
    for (int64_t i = 0; i < (int64_t)mk; i++) a16[i] = hs_bf16_encode(a[i]);
    for (int64_t i = 0; i < (int64_t)nk; i++) b16[i] = hs_bf16_encode(b[i]);

    static const struct {
        const char *name;
        hs_format fmt;
    } fp4[] = {{"mxfp4", HS_FMT_MXFP4}, {"nvfp4", HS_FMT_NVFP4}, {"fp4row", HS_FMT_FP4ROW}};
    enum { NF = 3 };
    hs_packed pa[NF], pb[NF];
    memset(pa, 0, sizeof pa);
    memset(pb, 0, sizeof pb);
    int rc = CLI_OK;
    for (int f = 0; f < NF && rc == CLI_OK; f++) {
        hs_quant_spec s;
        hs_status st = hs_quant_spec_init(&s, fp4[f].fmt);
        if (st == HS_OK) st = hs_packed_alloc(&pa[f], &s, m, k);
        if (st == HS_OK) st = hs_packed_alloc(&pb[f], &s, n, k);
        if (st == HS_OK) st = hs_quantize(&s, a, m, k, k, 0, &pa[f]);
        if (st == HS_OK) st = hs_quantize(&s, b, n, k, k, 0, &pb[f]);
        if (st != HS_OK) rc = cli_fail_status(st, fp4[f].name);
    }

    double flop = 2.0 * m * n * k;
    for (int kern = 0; kern < NKERN && rc == CLI_OK; kern++) {
        const char *name = kern == 0 ? "sgemm_openblas" : kern == 1 ? "bf16_dpbf16" : fp4[kern - 2].name;
        hs_status st = HS_OK;
        /* Let the previous kernel's idle threads stop spinning before timing the next one
         * (OpenBLAS's pthreads busy-wait about 2^28 cycles after a call; OpenMP's briefly). */
        if (kern > 0) usleep(300000);
        for (int64_t r = -1; r < reps && st == HS_OK; r++) { /* r = -1: warm-up */
            double t0 = bench_now();
            if (kern == 0)
                st = hs_gemm_f32(0, 1, m, n, k, a, k, b, k, beta, c, n);
            else if (kern == 1)
                st = hs_gemm_bf16(m, n, k, a16, k, b16, k, beta, c, n);
            else
                st = hs_gemm_packed(&pa[kern - 2], &pb[kern - 2], beta, c, n);
            double t1 = bench_now();
            if (r >= 0) times[r] = t1 - t0;
        }
        if (st != HS_OK) {
            rc = cli_fail_status(st, name);
            break;
        }
        double t = bench_median(times, (int)reps);
        res[kern].name = name;
        res[kern].ms = 1e3 * t;
        res[kern].gflops = flop / t * 1e-9;
    }
    for (int f = 0; f < NF; f++) {
        hs_packed_free(&pa[f]);
        hs_packed_free(&pb[f]);
    }
    free(times);
    free(a);
    free(b);
    free(c);
    free(a16);
    free(b16);
    return rc;
}

/* The trainer's `small` model, one block: C[M,N] = A[M,K]·B[N,K]ᵀ (+ C for wgrad). */
static const struct {
    const char *name;
    int64_t m, n, k;
    int beta;
} trainer_shapes[] = {
    {"fprop.qkv", 4096, 768, 256, 0},   {"fprop.o", 4096, 256, 256, 0},
    {"fprop.gate_up", 4096, 1408, 256, 0}, {"fprop.down", 4096, 256, 704, 0},
    {"dgrad.qkv", 4096, 256, 768, 0},   {"dgrad.o", 4096, 256, 256, 0},
    {"dgrad.gate_up", 4096, 256, 1408, 0}, {"dgrad.down", 4096, 704, 256, 0},
    {"wgrad.qkv", 768, 256, 4096, 1},   {"wgrad.o", 256, 256, 4096, 1},
    {"wgrad.gate_up", 1408, 256, 4096, 1}, {"wgrad.down", 256, 704, 4096, 1},
};
enum { NSHAPES = sizeof trainer_shapes / sizeof trainer_shapes[0] };

static void print_kernels(const result *res, const char *key, int what) {
    printf("%s\"%s\": {", what ? ",\n  " : "", key);
    for (int i = 0; i < NKERN; i++) {
        double v = what == 0 ? res[i].gflops : what == 1 ? res[i].ms : res[i].gflops / res[0].gflops;
        printf(what == 1 ? "%s\"%s\": %.4f" : what == 0 ? "%s\"%s\": %.2f" : "%s\"%s\": %.3f",
               i ? ", " : "", res[i].name, v);
    }
    printf("}");
}

static int run_trainer_shapes(int64_t reps, int json, int nthreads) {
    result res[NSHAPES][NKERN], tot[NKERN];
    for (int s = 0; s < NSHAPES; s++) {
        int rc = run_shape(trainer_shapes[s].m, trainer_shapes[s].n, trainer_shapes[s].k,
                           (float)trainer_shapes[s].beta, reps, res[s]);
        if (rc != CLI_OK) return rc;
    }
    double flop = 0;
    for (int s = 0; s < NSHAPES; s++)
        flop += 2.0 * trainer_shapes[s].m * trainer_shapes[s].n * trainer_shapes[s].k;
    for (int i = 0; i < NKERN; i++) {
        tot[i].name = res[0][i].name;
        tot[i].ms = 0;
        for (int s = 0; s < NSHAPES; s++) tot[i].ms += res[s][i].ms;
        tot[i].gflops = flop / (tot[i].ms * 1e-3) * 1e-9;
    }
    if (json) {
        printf("{\"shapes\": \"trainer\", \"threads\": %d, \"reps\": %lld, \"isa\": \"%s\", \"openblas_core\": \"%s\",\n"
               " \"per_shape\": [\n",
               nthreads, (long long)reps, hs_isa_name(), bench_blas_core());
        for (int s = 0; s < NSHAPES; s++) {
            printf("  {\"name\": \"%s\", \"m\": %lld, \"n\": %lld, \"k\": %lld, \"beta\": %d,\n  ",
                   trainer_shapes[s].name, (long long)trainer_shapes[s].m,
                   (long long)trainer_shapes[s].n, (long long)trainer_shapes[s].k,
                   trainer_shapes[s].beta);
            print_kernels(res[s], "gflops", 0);
            print_kernels(res[s], "ms", 1);
            print_kernels(res[s], "ratio_vs_sgemm", 2);
            printf("}%s\n", s + 1 < NSHAPES ? "," : "");
        }
        printf(" ],\n \"total\": {");
        print_kernels(tot, "gflops", 0);
        print_kernels(tot, "ms", 1);
        print_kernels(tot, "ratio_vs_sgemm", 2);
        printf("}}\n");
        return CLI_OK;
    }
    printf("bench gemm --shapes trainer: one block of `small` (M = 4096 tokens), %d threads, "
           "kernels %s, fp32 on OpenBLAS %s, median of %lld runs; GFLOP/s (ratio to sgemm_openblas)\n",
           nthreads, hs_isa_name(), bench_blas_core(), (long long)reps);
    printf("%-14s %5s %5s %5s", "shape", "M", "N", "K");
    for (int i = 0; i < NKERN; i++) printf(" %17s", res[0][i].name);
    printf("\n");
    for (int s = 0; s <= NSHAPES; s++) {
        const result *r = s < NSHAPES ? res[s] : tot;
        if (s < NSHAPES)
            printf("%-14s %5lld %5lld %5lld", trainer_shapes[s].name, (long long)trainer_shapes[s].m,
                   (long long)trainer_shapes[s].n, (long long)trainer_shapes[s].k);
        else
            printf("%-32s", "all 12");
        for (int i = 0; i < NKERN; i++)
            printf(" %9.1f (%5.2fx)", r[i].gflops, r[i].gflops / r[0].gflops);
        printf("\n");
    }
    printf("%-32s", "all 12, ms");
    for (int i = 0; i < NKERN; i++) printf(" %17.3f", tot[i].ms);
    printf("\n");
    return CLI_OK;
}

int bench_gemm_main(int argc, char **argv) {
    gemm_args t;
    cli_opt opts[GEMM_NOPTS];
    gemm_table(&t, opts);
    const cli_command cmd = {"bench gemm", opts, usage, 0, "bench gemm takes only options"};
    int st = cli_parse(&cmd, argc, argv, NULL, NULL);
    if (st != CLI_OK) return st == CLI_HELP ? CLI_OK : st;
    if (bench_apply_isa(t.isa)) return CLI_USAGE;
    int64_t m = t.m, n = t.n, k = t.k, threads = t.threads, reps = t.reps;
    int json = t.json, trainer = t.shapes != NULL;
    int sized = opts[OPT_M].given || opts[OPT_N].given || opts[OPT_K].given;
    if (trainer && strcmp(t.shapes, "trainer")) {
        cli_error("bench gemm: --shapes takes 'trainer'");
        cli_hint("see `halfs bench gemm --help`");
        return CLI_USAGE;
    }
    if (trainer && sized) {
        cli_error("bench gemm: --shapes trainer fixes the sizes; drop --m/--n/--k");
        cli_hint("see `halfs bench gemm --help`");
        return CLI_USAGE;
    }
    if (trainer) {
        int nthreads = bench_set_threads((int)threads);
        return run_trainer_shapes(reps, json, nthreads);
    }
    /* fp32 A, B, C; bf16 A, B; packed codes (½ byte) and the kernels' repacked int8 (1 byte)
     * per element of A and B, three formats; scales are small. */
    double mk = (double)m * k, nk = (double)n * k, mn = (double)m * n;
    double bytes = 4 * (mk + nk + mn) + 2 * (mk + nk) + 3 * 0.6 * (mk + nk) + 4.2 * (mk + nk);
    if (bench_check_memory(bytes, "bench gemm")) return CLI_USAGE;
    int nthreads = bench_set_threads((int)threads);

    result res[NKERN];
    int rc = run_shape(m, n, k, 0.0f, reps, res);
    if (rc != CLI_OK) return rc;
    double base = res[0].gflops;
    if (json) {
        printf("{\"m\": %lld, \"n\": %lld, \"k\": %lld, \"threads\": %d, \"reps\": %lld, "
               "\"isa\": \"%s\", \"openblas_core\": \"%s\",\n \"gflops\": {",
               (long long)m, (long long)n, (long long)k, nthreads, (long long)reps,
               hs_isa_name(), bench_blas_core());
        for (int i = 0; i < NKERN; i++)
            printf("%s\"%s\": %.2f", i ? ", " : "", res[i].name, res[i].gflops);
        printf("},\n \"ms\": {");
        for (int i = 0; i < NKERN; i++)
            printf("%s\"%s\": %.4f", i ? ", " : "", res[i].name, res[i].ms);
        printf("},\n \"ratio_vs_sgemm\": {");
        for (int i = 0; i < NKERN; i++)
            printf("%s\"%s\": %.3f", i ? ", " : "", res[i].name, res[i].gflops / base);
        printf("}}\n");
    } else {
        printf("bench gemm: C[%lld,%lld] = A[%lld,%lld]*B[%lld,%lld]^T, %d threads, kernels %s, fp32 on OpenBLAS %s, "
               "median of %lld runs\n",
               (long long)m, (long long)n, (long long)m, (long long)k, (long long)n,
               (long long)k, nthreads, hs_isa_name(), bench_blas_core(), (long long)reps);
        printf("%-16s %10s %10s %9s\n", "kernel", "ms", "GFLOP/s", "vs sgemm");
        for (int i = 0; i < NKERN; i++)
            printf("%-16s %10.3f %10.1f %8.2fx\n", res[i].name, res[i].ms, res[i].gflops,
                   res[i].gflops / base);
    }
    return CLI_OK;
}

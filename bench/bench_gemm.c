/* bench_gemm.c: `halfs bench gemm`: GFLOP/s of every GEMM path on one shape, in one process.
 *
 *   sgemm_openblas  fp32 OpenBLAS cblas_sgemm (C = A·Bᵀ), the baseline
 *   bf16_dpbf16     our bf16 GEMM (AVX512-BF16 vdpbf16ps; Debian's OpenBLAS has no sbgemm)
 *   mxfp4           packed MXFP4 × MXFP4 (E8M0 per 32), int8 VNNI on the codes
 *   nvfp4           packed NVFP4 × NVFP4 (UE4M3 per 16 + FP32 tensor scale)
 *   fp4row          packed E2M1 with one E8M0 scale per row
 * GFLOP/s counts 2·M·N·K per call (the dense product, whatever the format), from the median
 * of --reps timed calls after one warm-up call. The operands are quantized from Gaussian data
 * with each format's default rule; quantization is not timed (see `halfs bench quant`). The
 * kernels run one after the other with a 0.3 s pause between them, so that one's idle threads
 * (OpenBLAS busy-waits after a call) do not steal the cores of the next.
 * Run with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset so OpenBLAS uses its AVX-512 kernels.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../tools/cli.h"
#include "bench.h"
#include "halfs/halfs.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: halfs bench gemm [--m M] [--n N] [--k K] [--threads T] [--reps R] [--json]\n\n"
            "GFLOP/s (2*M*N*K per call, median of R runs after a warm-up) of C[M,N] = A[M,K]*B[N,K]^T\n"
            "for sgemm_openblas (fp32), bf16_dpbf16 (our AVX512-BF16 GEMM), and the packed FP4\n"
            "GEMMs mxfp4, nvfp4, fp4row; plus each one's ratio to sgemm_openblas.\n"
            "Defaults: M=4096 N=1536 K=1536, threads = OpenMP default, R=10.\n"
            "For OpenBLAS's AVX-512 kernels run it as\n"
            "  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE halfs bench gemm ...\n");
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

int bench_gemm_main(int argc, char **argv) {
    int64_t m = 4096, n = 1536, k = 1536, threads = 0, reps = 10;
    int json = 0;
    const bench_int_opt opts[] = {{"--m", 1, 1 << 20, &m},
                                  {"--n", 1, 1 << 20, &n},
                                  {"--k", 1, 1 << 20, &k},
                                  {"--threads", 1, 1024, &threads},
                                  {"--reps", 1, 10000, &reps},
                                  {NULL, 0, 0, NULL}};
    int done = 0, st = bench_parse_args(argc, argv, "gemm", usage, opts, &json, &done);
    if (st != CLI_OK || done) return st;
    /* fp32 A, B, C; bf16 A, B; packed codes (½ byte) and the kernels' repacked int8 (1 byte)
     * per element of A and B, three formats; scales are small. */
    double mk = (double)m * k, nk = (double)n * k, mn = (double)m * n;
    double bytes = 4 * (mk + nk + mn) + 2 * (mk + nk) + 3 * 0.6 * (mk + nk) + 4.2 * (mk + nk);
    if (bench_check_memory(bytes, "bench gemm")) return CLI_USAGE;
    int nthreads = bench_set_threads((int)threads);

    float *a = malloc(sizeof(float) * (size_t)mk), *b = malloc(sizeof(float) * (size_t)nk);
    float *c = malloc(sizeof(float) * (size_t)mn);
    uint16_t *a16 = malloc(2 * (size_t)mk), *b16 = malloc(2 * (size_t)nk);
    if (!a || !b || !c || !a16 || !b16) {
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

    result res[2 + NF];
    int nres = 0;
    double *times = malloc(sizeof(double) * (size_t)reps);
    double flop = 2.0 * m * n * k;
    for (int kern = 0; kern < 2 + NF && rc == CLI_OK && times; kern++) {
        const char *name = kern == 0 ? "sgemm_openblas" : kern == 1 ? "bf16_dpbf16" : fp4[kern - 2].name;
        hs_status st = HS_OK;
        /* Let the previous kernel's idle threads stop spinning before timing the next one
         * (OpenBLAS's pthreads busy-wait about 2^28 cycles after a call; OpenMP's briefly). */
        if (kern > 0) usleep(300000);
        for (int64_t r = -1; r < reps && st == HS_OK; r++) { /* r = -1: warm-up */
            double t0 = bench_now();
            if (kern == 0)
                st = hs_gemm_f32(0, 1, m, n, k, a, k, b, k, 0.0f, c, n);
            else if (kern == 1)
                st = hs_gemm_bf16(m, n, k, a16, k, b16, k, 0.0f, c, n);
            else
                st = hs_gemm_packed(&pa[kern - 2], &pb[kern - 2], 0.0f, c, n);
            double t1 = bench_now();
            if (r >= 0) times[r] = t1 - t0;
        }
        if (st != HS_OK) {
            rc = cli_fail_status(st, name);
            break;
        }
        double t = bench_median(times, (int)reps);
        res[nres].name = name;
        res[nres].ms = 1e3 * t;
        res[nres].gflops = flop / t * 1e-9;
        nres++;
    }
    if (rc == CLI_OK && nres == 2 + NF) {
        double base = res[0].gflops;
        if (json) {
            printf("{\"m\": %lld, \"n\": %lld, \"k\": %lld, \"threads\": %d, \"reps\": %lld, "
                   "\"isa\": \"%s\",\n \"gflops\": {",
                   (long long)m, (long long)n, (long long)k, nthreads, (long long)reps,
                   hs_isa_name());
            for (int i = 0; i < nres; i++)
                printf("%s\"%s\": %.2f", i ? ", " : "", res[i].name, res[i].gflops);
            printf("},\n \"ms\": {");
            for (int i = 0; i < nres; i++)
                printf("%s\"%s\": %.4f", i ? ", " : "", res[i].name, res[i].ms);
            printf("},\n \"ratio_vs_sgemm\": {");
            for (int i = 0; i < nres; i++)
                printf("%s\"%s\": %.3f", i ? ", " : "", res[i].name, res[i].gflops / base);
            printf("}}\n");
        } else {
            printf("bench gemm: C[%lld,%lld] = A[%lld,%lld]*B[%lld,%lld]^T, %d threads, kernels %s, "
                   "median of %lld runs\n",
                   (long long)m, (long long)n, (long long)m, (long long)k, (long long)n,
                   (long long)k, nthreads, hs_isa_name(), (long long)reps);
            printf("%-16s %10s %10s %9s\n", "kernel", "ms", "GFLOP/s", "vs sgemm");
            for (int i = 0; i < nres; i++)
                printf("%-16s %10.3f %10.1f %8.2fx\n", res[i].name, res[i].ms, res[i].gflops,
                       res[i].gflops / base);
        }
    } else if (rc == CLI_OK) {
        cli_error("bench gemm: out of memory");
        rc = CLI_INTERNAL;
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

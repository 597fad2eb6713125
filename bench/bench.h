/* bench.h: the benchmarks behind `halfs bench` (the files of bench/) and their shared helpers.
 *
 * Every benchmark measures its baseline in the same process and run (sgemm for GEMMs, a
 * memory copy for quantizers), reports the median of repeated timed runs after a warm-up, and
 * checks sizes against physical memory before allocating anything.
 */
#ifndef HALFS_BENCH_H
#define HALFS_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Subcommands of `halfs bench` (argv[0] is the subcommand's name). */
int bench_gemm_main(int argc, char **argv);
int bench_quant_main(int argc, char **argv);
int bench_train_main(int argc, char **argv); /* bench/bench_train.c */

/* Monotonic time in seconds. */
double bench_now(void);
/* Median of n values (sorts v in place). */
double bench_median(double *v, int n);
/* 0 if `bytes` fit in (most of) physical memory, else prints an error with `what` and returns 1. */
int bench_check_memory(double bytes, const char *what);
/* Set OpenMP and OpenBLAS thread counts (t > 0), or leave the defaults (t = 0). Returns the
 * number of OpenMP threads that will run. */
int bench_set_threads(int t);
/* --isa LEVEL (ref, avx2, avx512; "" = leave the environment as it is): runs the process again
 * with HALFS_ISA=LEVEL and OpenBLAS on kernels of the same width (avx2, ref:
 * OPENBLAS_CORETYPE=Haswell; avx512: OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset, OpenBLAS's
 * own choice), so each ratio is one ISA level against the same. Returns 0 once the process runs
 * at that level, 1 after printing an error (unknown level, a level this CPU lacks). */
int bench_apply_isa(const char *isa);
/* The --isa entry of every benchmark's option table (where: a const char **). */
#define BENCH_ISA_OPT(where)                                                                    \
    {.name = "--isa", .type = CLI_STR, .dst = (where), .arg = "LEVEL",                          \
     .help = "ref | avx2 | avx512: halfs' kernels at that level and the fp32 baseline\n"      \
             "on OpenBLAS kernels of the same width (avx2: OPENBLAS_CORETYPE=Haswell;\n"     \
             "avx512: OpenBLAS's own choice); default: the environment as it is"}
/* The name of the OpenBLAS kernels that the fp32 baseline runs ("Haswell", "SkylakeX", ...). */
const char *bench_blas_core(void);

#endif

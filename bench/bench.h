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

#endif

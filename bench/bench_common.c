/* bench_common.c: timing, medians, memory checks and thread setup shared by the benchmarks. */
#include "bench.h"

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "../tools/cli.h"

double bench_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int bench_check_memory(double bytes, const char *what) {
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    double phys = pages > 0 && psize > 0 ? (double)pages * (double)psize : 8e9;
    /* Leave a quarter of the machine to the system and the other processes. */
    if (bytes > 0.75 * phys) {
        cli_error("%s needs about %.1f GiB, more than this machine can spare (%.1f GiB physical)",
                  what, bytes / (1 << 30), phys / (1 << 30));
        cli_hint("use smaller sizes");
        return 1;
    }
    return 0;
}

int bench_set_threads(int t) {
    if (t > 0) {
        omp_set_num_threads(t);
        openblas_set_num_threads(t);
    }
    return omp_get_max_threads();
}

/* bench_common.c: timing, medians, memory checks, thread setup and the --isa level shared by the
 * benchmarks. */
#include "bench.h"

#include <cblas.h>
#include <errno.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../tools/cli.h"
#include "halfs/halfs.h"

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

/* Why a re-execution: OpenBLAS chooses its kernels once, when the library is loaded, from
 * OPENBLAS_CORETYPE, and the kernel level is fixed at the first call; so the benchmark sets both
 * in the environment and runs itself again (HALFS_BENCH_ISA marks the second run). */
int bench_apply_isa(const char *isa) {
    if (!isa || !isa[0]) return 0;
    if (strcmp(isa, "ref") && strcmp(isa, "avx2") && strcmp(isa, "avx512")) {
        cli_error("--isa '%s': unknown level", isa);
        cli_hint("levels: ref, avx2, avx512");
        return 1;
    }
    const char *done = getenv("HALFS_BENCH_ISA");
    if (done && !strcmp(done, isa)) {
        if (strcmp(hs_isa_name(), isa)) {
            cli_error("--isa %s: this CPU cannot run it (its best level is %s)", isa, hs_isa_name());
            cli_hint("run `grep -o 'avx512[a-z_0-9]*' /proc/cpuinfo | sort -u` to see what it has");
            return 1;
        }
        return 0;
    }
    setenv("HALFS_ISA", isa, 1);
    setenv("HALFS_BENCH_ISA", isa, 1);
    if (!strcmp(isa, "avx512")) { // OpenBLAS's own choice: its AVX-512 kernels on such a CPU
        unsetenv("OPENBLAS_CORETYPE");
        unsetenv("OPENBLAS_L2_SIZE");
    } else { // AVX2 sgemm, so that the ratio is AVX2 against AVX2 on any machine
        setenv("OPENBLAS_CORETYPE", "Haswell", 1);
        unsetenv("OPENBLAS_L2_SIZE");
    }
    fflush(NULL);
    execv("/proc/self/exe", cli_full_argv);
    cli_error("--isa: cannot run again at level %s: %s", isa, strerror(errno));
    return 1;
}

const char *bench_blas_core(void) {
    const char *name = openblas_get_corename();
    return name ? name : "unknown";
}

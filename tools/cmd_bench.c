/* cmd_bench.c: `halfs bench SUB`: the benchmarks (the files of bench/), one line per subcommand below.
 * Each prints a human table, or JSON with --json, and measures its baseline in the same run. */
#include <stdio.h>
#include <string.h>

#include "../bench/bench.h"
#include "cli.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} bench_cmd;

/* Add a benchmark here (e.g. the trainer's `train`). */
static const bench_cmd benches[] = {
    {"quant", bench_quant_main, "GB/s of each quantizer (format x rule, row/col) vs a memory copy"},
    {"gemm", bench_gemm_main, "GFLOP/s of sgemm, bf16 and the packed FP4 GEMMs on one shape"},
    {"train", bench_train_main, "training tokens/s, peak RSS and time breakdown of every recipe"},
};

static void usage(FILE *out) {
    fprintf(out, "usage: halfs bench SUBCOMMAND [options]   (`halfs bench SUBCOMMAND --help`)\n\n");
    for (size_t i = 0; i < sizeof benches / sizeof benches[0]; i++)
        fprintf(out, "  %-8s %s\n", benches[i].name, benches[i].summary);
    fprintf(out, "\nRun with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for OpenBLAS's AVX-512\n"
                 "kernels: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE halfs bench gemm\n");
}

int cmd_bench(int argc, char **argv) {
    if (argc < 2) {
        cli_error("bench: which benchmark?");
        usage(stderr);
        return CLI_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof benches / sizeof benches[0]; i++)
        if (!strcmp(argv[1], benches[i].name)) return benches[i].run(argc - 1, argv + 1);
    cli_error("bench: unknown benchmark '%s'", argv[1]);
    cli_hint("run `halfs bench --help` for the list");
    return CLI_USAGE;
}

/* halfs.c: the `halfs` command-line tool: dispatches to one subcommand per file (cmd_*.c).
 * `halfs help` lists them; `halfs CMD --help` describes one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "halfs/halfs.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} subcommand;

/* One line per subcommand; keep in the order `halfs help` should show them. */
static const subcommand commands[] = {
    {"qdq", cmd_qdq, "quantize and dequantize a float32 file with a format and scale rule"},
    {"stats", cmd_stats, "error of every applicable scale rule on a float32 tensor"},
    {"theory", cmd_theory, "optimal clip and MSE of each rule for a known distribution"},
    {"tokenizer", cmd_tokenizer, "train a byte-level BPE tokenizer; encode text to token shards, decode"},
    {"train", cmd_train, "train a Llama-style model with FP4 linear layers (a recipe)"},
    {"sample", cmd_sample, "generate text from a checkpoint (run directory or checkpoint)"},
    {"eval", cmd_eval, "loss and perplexity of a checkpoint on token shards"},
    {"corpus", cmd_corpus, "prepare and locate the embedded corpus: tokenizer and token shards"},
    {"export", cmd_export, "write a trained model as a GGUF file for llama.cpp (MXFP4 weights)"},
    {"capture", cmd_capture, "dump a model's linear-layer weights, inputs and output gradients"},
    {"vectors", cmd_vectors, "conformance vectors: expected codes and scales of every quantizer case"},
    {"bench", cmd_bench, "benchmarks: quantizer GB/s and GEMM GFLOP/s against copy and sgemm"},
};

static void usage(FILE *out) {
    fprintf(out,
            "halfs: 4-bit floating-point (FP4) numerics and LLM training with Half-S scaling\n\n"
            "usage: halfs COMMAND [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "  %-10s %s\n", "help", "this list; `halfs COMMAND --help` for one command");
    fprintf(out, "\nkernels: %s\n", hs_isa_name());
}

/* OpenMP's default wait policy spins idle threads; on a machine whose cores are shared (a
 * 2-core VM with other jobs) that made a training step up to 7× slower than sleeping waits
 * (measured: nano 85 → 12 ms/step) and `sample` 8× slower. libgomp reads OMP_WAIT_POLICY once,
 * at program load, so when the user has not chosen one we set `passive` and re-execute
 * ourselves, once, before any OpenMP region runs. */
void cli_omp_passive_reexec(char **full_argv) {
    if (getenv("OMP_WAIT_POLICY") || getenv("HALFS_NO_REEXEC")) return;
    setenv("OMP_WAIT_POLICY", "passive", 1);
    setenv("HALFS_NO_REEXEC", "1", 1);
    execv("/proc/self/exe", full_argv);
}

char **cli_full_argv;

int main(int argc, char **argv) {
    cli_full_argv = argv;
    cli_omp_passive_reexec(argv);
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        if (argc >= 3) {
            for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
                if (!strcmp(argv[2], commands[i].name)) {
                    char *sub[] = {argv[2], "--help", NULL};
                    return commands[i].run(2, sub);
                }
        }
        usage(stdout);
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(cmd, commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    cli_error("unknown command '%s'", cmd);
    cli_hint("run `halfs help` for the list of commands");
    return CLI_USAGE;
}

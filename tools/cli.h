/* cli.h: shared helpers of the `halfs` command-line tool and the list of its subcommands.
 *
 * Contract of every command: exit 0 on success, 1 on a usage or input error (one clear
 * "halfs: error:" line on stderr, with a hint, and no output file left behind), 2 on an
 * internal failure. Output files are written to a temporary name in the same directory and
 * renamed into place.
 */
#ifndef HALFS_CLI_H
#define HALFS_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "halfs/quant.h"
#include "halfs/status.h"

/* `halfs train` adds CLI_INTERRUPTED (SIGINT/SIGTERM: it saved a checkpoint; --resume goes on)
 * and CLI_DIVERGED (a NaN/Inf loss or the divergence guard; docs/RUNS.md). */
enum { CLI_OK = 0, CLI_USAGE = 1, CLI_INTERNAL = 2, CLI_INTERRUPTED = 3, CLI_DIVERGED = 4 };

/* Subcommands: each takes argc/argv starting at its own name and returns an exit status. */
int cmd_qdq(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_theory(int argc, char **argv);
int cmd_tokenizer(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_corpus(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_capture(int argc, char **argv);
int cmd_vectors(int argc, char **argv);
int cmd_export(int argc, char **argv);

/* OpenMP's passive wait policy for every command (tools/halfs.c): unless OMP_WAIT_POLICY is
 * set, set it to passive and re-execute the program once with full_argv (the process's argv).
 * Returns only when nothing is to be done or exec fails. */
void cli_omp_passive_reexec(char **full_argv);
/* The process's whole argv, NULL-terminated (main sets it first), for a command that
 * re-executes itself with a changed environment (`bench --isa`). */
extern char **cli_full_argv;

/* Print "halfs: error: <msg>" (and optionally a "hint: ..." line) to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_hint(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Map a library status to an exit code (1 for input problems, 2 for internal ones), printing
 * the library's last error with `what` as context. */
int cli_fail_status(hs_status st, const char *what);

/* Parse a whole-string integer / real in [lo, hi]; on failure print an error naming `opt`
 * and return 0 (1 on success). */
int cli_parse_i64(const char *opt, const char *val, int64_t lo, int64_t hi, int64_t *out);
int cli_parse_u64(const char *opt, const char *val, uint64_t *out);
int cli_parse_f64(const char *opt, const char *val, double lo, double hi, double *out);

/* JSON output (cli_json.c). cli_json_number: add key: v to obj, null when v is not finite (the
 * SQNR of an exact result). cli_json_print: print root to stdout and delete it; CLI_OK, or
 * CLI_INTERNAL (message printed) when it cannot be printed. cli_json_put_string: s as a JSON
 * string literal on stdout, quotes included (quotes, backslashes, control bytes escaped). */
struct cJSON;
void cli_json_number(struct cJSON *obj, const char *key, double v);
int cli_json_print(struct cJSON *root);
void cli_json_put_string(const char *s);

/* Options (cli_opts.c): every command and benchmark describes its options in one table of
 * cli_opt, ended by an entry with name NULL; cli_parse reads argv with it and cli_opts_help
 * prints the options part of --help from it. A value is "--name value" or "--name=value"; the
 * last occurrence wins, except for CLI_LIST. */
typedef enum {
    CLI_STR,  /* const char *: the argument itself */
    CLI_BUF,  /* char[size]: a copy; a longer value is an error */
    CLI_LIST, /* char[size]: the values of every occurrence, joined with ',' */
    CLI_I32,  /* int32_t in [lo, hi] */
    CLI_I64,  /* int64_t in [lo, hi] */
    CLI_U64,  /* uint64_t */
    CLI_F64,  /* double in [flo, fhi], finite */
    CLI_FLAG, /* int set to 1; the option takes no value */
    CLI_FN,   /* fn(option, value, dst): 1, or 0 after printing why the value is bad */
} cli_type;

typedef struct cli_opt {
    const char *name; /* "--steps" */
    cli_type type;
    void *dst;
    int64_t lo, hi;   /* CLI_I32, CLI_I64 */
    double flo, fhi;  /* CLI_F64 */
    size_t size;      /* CLI_BUF, CLI_LIST: bytes at dst */
    int (*fn)(const char *opt, const char *val, void *dst); /* CLI_FN */
    const char *arg;     /* the value in --help ("N"); NULL for a flag */
    const char *help;    /* --help text, lines separated by '\n'; NULL: not listed */
    const char *hint;    /* printed after the error when a value is refused */
    const char *alias;   /* another spelling ("-o" for "--out") */
    const char *section; /* --help heading the option is listed under (NULL: none) */
    int given;           /* times it was on the command line (cli_parse counts) */
} cli_opt;

/* A command's arguments: its name as typed after `halfs` ("qdq", "bench gemm", named in
 * hints), its option table, its --help printer, and how many operands (arguments that do not
 * start with '-', or "-") it takes: max_operands, -1 for any number; one more is an error
 * "unexpected operand 'X' (<operands>)". */
typedef struct {
    const char *name;
    cli_opt *opts;
    void (*help)(FILE *);
    int max_operands;
    const char *operands;
} cli_command;

enum { CLI_HELP = -1 }; /* cli_parse printed --help: the command exits 0 */

/* Parse argv[1..argc) (argv[0] is the command's name): options into their destinations (each
 * option's `given` counted), operands in order into operands[] (room for max_operands, or argc
 * when any number) and their count into *n_operands (may be NULL when none are taken).
 * --help or -h prints cmd->help to stdout and returns CLI_HELP. An unknown option, a missing
 * or refused value, or one operand too many prints one error with a hint and returns
 * CLI_USAGE; otherwise CLI_OK. */
int cli_parse(const cli_command *cmd, int argc, char **argv, const char **operands,
              int *n_operands);
/* The options of the table with help text, one "  --name ARG  text" entry each, under their
 * section headings, then "--help". */
void cli_opts_help(FILE *out, const cli_opt *opts);

/* The arguments of `halfs CMD DIR [options]` (sample, eval, capture): cli_parse with one DIR
 * operand into *dir. --help returns CLI_OK with *dir NULL. A missing DIR is an error whose hint
 * shows `usage` ("DIR --data PATH"). Returns CLI_OK, or the exit code after printing why. */
int cli_model_args(int argc, char **argv, const char *cmd, const char *usage, cli_opt *opts,
                   void (*help)(FILE *), const char **dir);

/* A trained model opened from the command line (cli_model.c), for `sample` and `eval`. */
struct hs_model;
struct hs_train_config;
struct hs_recipe_opts;
struct hs_recipe;
typedef struct {
    struct hs_model *model;
    struct hs_train_config *run; /* the run's training config; NULL when the checkpoint has none */
    char ckpt[4096];             /* the checkpoint directory DIR resolved to, or the GGUF file */
    int gguf;                    /* 1: DIR is a GGUF file (no run config) */
    char *tokenizer_json;        /* a GGUF file's tokenizer.json text, or NULL */
} cli_model;
/* Open DIR, a run directory (its latest checkpoint), a checkpoint directory or a GGUF file
 * (src/train/gguf.h): the model with its weights and, when recorded, the run's training config.
 * Returns CLI_OK, or the exit code after printing why (then nothing is left to close). */
int cli_model_open(const char *dir, cli_model *cm);
/* The forward-pass recipe: `name` when given, else the run's training recipe, else fp32; built
 * with the run's seed, else with `seed`. *opts receives what it was built from. Returns CLI_OK,
 * or the exit code after printing why. */
int cli_model_recipe(const cli_model *cm, const char *name, uint64_t seed,
                     struct hs_recipe_opts *opts, struct hs_recipe *recipe);
void cli_model_close(cli_model *cm);

/* Quantizer options shared by `qdq` and `stats` (cli_quant.c), as given on the command line. */
typedef struct {
    const char *format;   /* --format F (required) */
    const char *rule;     /* --scale RULE (qdq only); NULL: the format's preset */
    const char *rounding; /* --rounding MODE; NULL: the preset's (rne) */
    int64_t block;        /* --block N, any integer until cli_quant_spec_from_opts checks it */
    int block_set;        /* --block was given */
    int64_t rht;          /* --rht D: 0 (none), 16, 32, 64 or 128 */
    uint64_t rht_seed;    /* --rht-seed S */
    uint64_t seed;        /* --seed S (stochastic rounding) */
    int transpose;        /* --transpose: scale groups run down the columns */
    int64_t cols;         /* --cols C, 1..INT32_MAX; 0 until given (required) */
} cli_quant_opts;

/* The entries of these options (--scale only when with_scale) into opts[], which has room for
 * CLI_QUANT_NOPTS; returns how many were written. cli_quant_opts_done copies the `given`
 * counts the parser left in them back into *o (block_set). */
enum { CLI_QUANT_NOPTS = 9 };
int cli_quant_opts_table(cli_quant_opts *o, int with_scale, cli_opt *opts);
void cli_quant_opts_done(cli_quant_opts *o, const cli_opt *opts, int n);
/* --format and --cols were given; otherwise print which is missing and return CLI_USAGE. */
int cli_quant_opts_require(const cli_quant_opts *o, const char *cmd);
/* The validated spec of the options (format preset, then rule, rounding, block, RHT, seeds)
 * and its format (fmt may be NULL). Returns CLI_OK, or the exit code after printing why. */
int cli_quant_spec_from_opts(const cli_quant_opts *o, const char *cmd, hs_quant_spec *spec,
                             hs_format *fmt);
/* Read IN (raw float32) as a row-major matrix of o->cols columns: *x (rows × cols, caller
 * frees), *n values, *rows. Exit 1 when it is empty, not whole rows, or when --rht does not
 * divide the group axis. Returns CLI_OK, or the exit code after printing why. */
int cli_quant_read_matrix(const char *path, const cli_quant_opts *o, float **x, int64_t *n,
                          int64_t *rows);

/* Read a whole file of little-endian float32 values. Returns 0 on success (caller frees
 * *data), prints an error and returns 1 otherwise (missing file, size not a multiple of 4). */
int cli_read_f32(const char *path, float **data, int64_t *n);

/* Write bytes to path atomically (temp file in the same directory, fsync, rename).
 * Returns 0 on success; prints an error and removes the temp file otherwise. */
int cli_write_atomic(const char *path, const void *data, size_t bytes);

#endif

/* cli.h: shared helpers of the `halfs` command-line tool and the list of its subcommands.
 *
 * Contract (DESIGN.md): exit 0 on success, 1 on a usage or input error (one clear line on
 * stderr, with a hint, and no output file left behind), 2 on an internal failure. Output files
 * are written to a temporary name in the same directory and renamed into place.
 */
#ifndef HALFS_CLI_H
#define HALFS_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "halfs/quant.h"
#include "halfs/status.h"

enum { CLI_OK = 0, CLI_USAGE = 1, CLI_INTERNAL = 2 };

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

/* Option scanning. `cmd` names the subcommand for the hint "run `halfs CMD --help`".
 * cli_opt_next: the value of option argv[*i] is the next argument: returns it and advances *i,
 * or prints "<option> needs a value" (+ hint) and returns NULL when there is none.
 * cli_opt_value: argv[*i] as option `name` with a value, "--name value" or "--name=value";
 * returns the value (advancing *i past a separate one), or NULL when argv[*i] is not that
 * option, or when its value is missing: then *missing is set to 1 and the error printed. */
const char *cli_opt_next(int argc, char **argv, int *i, const char *cmd);
const char *cli_opt_value(int argc, char **argv, int *i, const char *name, const char *cmd,
                          int *missing);
/* "unknown option '<a>'" with the hint "run `halfs CMD --help` for the options"; CLI_USAGE. */
int cli_unknown_option(const char *a, const char *cmd);

/* JSON output (cli_json.c). cli_json_number: add key: v to obj, null when v is not finite (the
 * SQNR of an exact result). cli_json_print: print root to stdout and delete it; CLI_OK, or
 * CLI_INTERNAL (message printed) when it cannot be printed. cli_json_put_string: s as a JSON
 * string literal on stdout, quotes included (quotes, backslashes, control bytes escaped). */
struct cJSON;
void cli_json_number(struct cJSON *obj, const char *key, double v);
int cli_json_print(struct cJSON *root);
void cli_json_put_string(const char *s);

/* One "--name value" option of a command's table (cli_model_args): type 's' a string, 'i' an
 * integer in [lo, hi], 'u' an unsigned 64-bit integer, 'f' a real in [lo, hi]; 'b' a flag
 * without a value (set to 1). dst points to a const char *, int64_t, uint64_t, double or int. */
typedef struct {
    const char *name;
    char type;
    void *dst;
    double lo, hi;
} cli_opt;

/* The arguments of `halfs CMD DIR [options]` (sample, eval): one DIR operand into *dir and the
 * options of the NULL-terminated table opts. Any other "--name" takes the next argument as its
 * value and is then an unknown option. --help/-h calls help(stdout) and returns CLI_OK with
 * *dir NULL. A missing DIR is an error whose hint shows `usage` ("DIR --data PATH"). Returns
 * CLI_OK, or the exit code after printing why. */
int cli_model_args(int argc, char **argv, const char *cmd, const char *usage, const cli_opt *opts,
                   void (*help)(FILE *), const char **dir);

/* A trained model opened from the command line (cli_model.c), for `sample` and `eval`. */
struct hs_model;
struct hs_train_config;
struct hs_recipe_opts;
struct hs_recipe;
typedef struct {
    struct hs_model *model;
    struct hs_train_config *run; /* the run's training config; NULL when the checkpoint has none */
    char ckpt[4096];             /* the checkpoint directory DIR resolved to */
} cli_model;
/* Open DIR, a run directory (its latest checkpoint) or a checkpoint directory: the model with
 * its weights and, when recorded, the run's training config. Returns CLI_OK, or the exit code
 * after printing why (then nothing is left to close). */
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

/* Try argv[*i] as one of the options above (--scale only when with_scale). Returns 1 when it
 * was one (its value consumed), 0 when it is not, -1 on a usage error (printed). */
int cli_quant_opt(cli_quant_opts *o, int argc, char **argv, int *i, const char *cmd,
                  int with_scale);
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

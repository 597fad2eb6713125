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

/* Read a whole file of little-endian float32 values. Returns 0 on success (caller frees
 * *data), prints an error and returns 1 otherwise (missing file, size not a multiple of 4). */
int cli_read_f32(const char *path, float **data, int64_t *n);

/* Write bytes to path atomically (temp file in the same directory, fsync, rename).
 * Returns 0 on success; prints an error and removes the temp file otherwise. */
int cli_write_atomic(const char *path, const void *data, size_t bytes);

#endif

/* util.h: helpers shared by the cmocka test programs (tests/util_*.c, linked into every one):
 * a scratch directory per test program, whole-file reads and writes that fail the test on error,
 * running the `halfs` CLI ($HALFS_BIN) with its exit status, stdout and stderr captured, and the
 * CLI's usage-error contract (README.md, 'Using it': exit 1, exactly one "halfs: error:" line).
 *
 * Include after the cmocka headers (stdarg, stddef, stdint, setjmp, cmocka).
 */
#ifndef HALFS_TESTS_UTIL_H
#define HALFS_TESTS_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------- scratch directory */

/* Make a fresh directory "<base>/halfs-<tag>-XXXXXX", base = $HALFS_TMP, else $TMPDIR, else /tmp,
 * into dir (n bytes). Returns 0, or -1 when it cannot. */
int util_mkdtemp(const char *tag, char *dir, size_t n);
/* Remove path and everything below it (no shell, symbolic links not followed). A path that does
 * not exist is not an error. Returns 0, or -1 when something could not be removed. */
int util_rm_rf(const char *path);

/* The test program's scratch directory, named after the program: cmocka group setup and
 * teardown (pass them to cmocka_run_group_tests); teardown removes the directory. */
int util_scratch_setup(void **state);
int util_scratch_teardown(void **state);
const char *util_scratch_dir(void);
/* "<scratch dir>/<name>" into buf (n bytes); fails the test if it does not fit. */
void util_path(char *buf, size_t n, const char *name);

/* ---------------------------------------------------------------- files */

/* Write n bytes to path (created or truncated); fails the test on any error. */
void util_write_file(const char *path, const void *data, size_t n);
/* The whole file at path, NUL-terminated (caller frees); *n (may be NULL) gets its size. Fails
 * the test when the file cannot be read. */
char *util_read_file(const char *path, size_t *n);

/* ---------------------------------------------------------------- the CLI */

/* $HALFS_BIN (set by `make test`), or NULL. */
const char *util_cli_bin(void);
/* Skip the current test when $HALFS_BIN is not set. */
#define UTIL_NEED_CLI()                                                                    \
    do {                                                                                   \
        if (!util_cli_bin()) {                                                             \
            print_message("HALFS_BIN is not set (run through `make test`); skipping\n");   \
            skip();                                                                        \
        }                                                                                  \
    } while (0)

/* Run $HALFS_BIN with args (a NULL-terminated list, the binary's own name excluded). Its stdout
 * and stderr are captured: returned malloc'ed in *out / *err (either may be NULL), and stderr
 * is also kept for util_expect_usage_error. Returns the exit status, or -1 when the program did
 * not exit normally (a signal). */
int util_run_cli(char **out, char **err, char *const *args);
/* The same with the arguments listed: util_run(&out, &err, "qdq", "--help", NULL). */
int util_run(char **out, char **err, ...);

/* Lines of s that start with prefix. */
int util_count_lines_starting(const char *s, const char *prefix);
/* The last run exited with rc == 1 and wrote exactly one line starting "halfs: error: " to
 * stderr, which contains needle (unless NULL); otherwise print what (may be NULL), the command
 * line and its stderr, and fail the test. */
void util_expect_usage_error(const char *what, int rc, const char *needle);

/* The last run exited with status 0 (rc); otherwise print the command line, the status and its
 * stderr, and fail the test. */
void util_expect_exit_ok(int rc);
/* Run the CLI with the listed arguments (no NULL needed) and expect a usage error whose stderr
 * holds needle: UTIL_EXPECT_USAGE_ERROR("--vocab", "corpus", "--vocab", "7"). */
#define UTIL_EXPECT_USAGE_ERROR(needle, ...) \
    util_expect_usage_error(NULL, util_run(NULL, NULL, __VA_ARGS__, NULL), (needle))

/* ---------------------------------------------------------------- training runs */

/* The deterministic columns of RUN/metrics.csv, step,tokens,train_loss,val_loss,lr,grad_norm
 * (all but the timings ms_per_step and tokens_per_s), one line per row, header included:
 * equal for two runs that computed the same thing. Caller frees. */
char *util_metrics_det(const char *run_dir);

/* ---------------------------------------------------------------- random numbers */

/* SplitMix64: advances *state and returns the next 64 random bits (test data only). */
uint64_t util_splitmix64(uint64_t *state);

/* ---------------------------------------------------------------- random data */

/* SplitMix64: the next value of the stream whose state is *s. */
uint64_t util_rand_next(uint64_t *s);
/* Uniform in [0, 1) with 53 random bits. */
double util_rand_unif(uint64_t *s);
/* n floats of a kind: 0 Gaussian with 5% outliers (×20), 1 the same with NaN, ±Inf and ±0
 * mixed in, 2 subnormal magnitudes, 3 huge magnitudes (~1e37), 4 exact grid values (ties for
 * every rounding); when n > 64, 40 zeros from n/3 on (all-zero groups). */
void util_fill_kind(float *x, int64_t n, int kind, uint64_t *s);

#endif

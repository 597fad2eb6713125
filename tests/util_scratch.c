/* util_scratch.c: the test helpers declared in tests/util.h: scratch directories, whole-file I/O,
 * running the `halfs` CLI with its output captured, the CLI's usage-error contract (README.md,
 * 'Using it': exit 1, exactly one "halfs: error:" line on stderr), and the comparable part of a
 * run's metrics.csv.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

#define MAX_ARGS 63

static char g_scratch[512];
static char *g_last_err; /* stderr of the last util_run_cli */
static char g_last_cmd[2048]; /* its command line, for failure messages */

/* ---------------------------------------------------------------- scratch directory */

int util_mkdtemp(const char *tag, char *dir, size_t n) {
    const char *base = getenv("HALFS_TMP");
    if (!base || !*base) base = getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    int len = snprintf(dir, n, "%s/halfs-%s-XXXXXX", base, tag);
    if (len < 0 || (size_t)len >= n) return -1;
    return mkdtemp(dir) ? 0 : -1;
}

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw) {
    (void)sb;
    (void)type;
    (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

int util_rm_rf(const char *path) {
    if (access(path, F_OK) != 0 && errno == ENOENT) return 0;
    /* Depth first (children before their directory); FTW_PHYS: a link is removed, not followed. */
    return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

int util_scratch_setup(void **state) {
    (void)state;
    return util_mkdtemp(program_invocation_short_name, g_scratch, sizeof g_scratch);
}

int util_scratch_teardown(void **state) {
    (void)state;
    free(g_last_err);
    g_last_err = NULL;
    int rc = g_scratch[0] ? util_rm_rf(g_scratch) : 0;
    g_scratch[0] = '\0';
    return rc;
}

const char *util_scratch_dir(void) {
    assert_true(g_scratch[0] != '\0'); /* util_scratch_setup ran */
    return g_scratch;
}

void util_path(char *buf, size_t n, const char *name) {
    int len = snprintf(buf, n, "%s/%s", util_scratch_dir(), name);
    assert_true(len >= 0 && (size_t)len < n);
}

/* ---------------------------------------------------------------- files */

void util_write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) fail_msg("cannot create '%s': %s", path, strerror(errno));
    if (n) assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* All of fd from its start, NUL-terminated; NULL on a read error. */
static char *read_fd(int fd, size_t *n) {
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (!buf || lseek(fd, 0, SEEK_SET) < 0) {
        free(buf);
        return NULL;
    }
    for (;;) {
        if (cap - len < 2) {
            char *more = realloc(buf, cap *= 2);
            if (!more) {
                free(buf);
                return NULL;
            }
            buf = more;
        }
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            free(buf);
            return NULL;
        }
        if (r == 0) break;
        len += (size_t)r;
    }
    buf[len] = '\0';
    if (n) *n = len;
    return buf;
}

char *util_read_file(const char *path, size_t *n) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) fail_msg("cannot open '%s': %s", path, strerror(errno));
    char *buf = read_fd(fd, n);
    close(fd);
    if (!buf) fail_msg("cannot read '%s'", path);
    return buf;
}

/* ---------------------------------------------------------------- the CLI */

const char *util_cli_bin(void) {
    const char *bin = getenv("HALFS_BIN");
    return bin && *bin ? bin : NULL;
}

/* An unnamed temporary file (created in the scratch directory, or /tmp, and unlinked at once):
 * nothing is left behind, whatever happens to the test. */
static int anon_file(void) {
    char p[600];
    snprintf(p, sizeof p, "%s/.capture-XXXXXX", g_scratch[0] ? g_scratch : "/tmp");
    int fd = mkstemp(p);
    if (fd < 0) fail_msg("cannot create a capture file '%s': %s", p, strerror(errno));
    unlink(p);
    return fd;
}

int util_run_cli(char **out, char **err, char *const *args) {
    const char *bin = util_cli_bin();
    if (!bin) fail_msg("HALFS_BIN is not set");
    char *argv[MAX_ARGS + 2];
    int argc = 0;
    argv[argc++] = (char *)bin;
    size_t at = (size_t)snprintf(g_last_cmd, sizeof g_last_cmd, "halfs");
    for (; args[argc - 1]; argc++) {
        if (argc > MAX_ARGS) fail_msg("util_run_cli: more than %d arguments", MAX_ARGS);
        argv[argc] = args[argc - 1];
        if (at < sizeof g_last_cmd)
            at += (size_t)snprintf(g_last_cmd + at, sizeof g_last_cmd - at, " %s", argv[argc]);
    }
    argv[argc] = NULL;
    int fo = anon_file(), fe = anon_file();
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (dup2(fo, 1) < 0 || dup2(fe, 2) < 0) _exit(127);
        close(fo);
        close(fe);
        execv(bin, argv);
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) fail_msg("waitpid: %s", strerror(errno));
    char *o = read_fd(fo, NULL), *e = read_fd(fe, NULL);
    close(fo);
    close(fe);
    assert_non_null(o);
    assert_non_null(e);
    free(g_last_err);
    g_last_err = strdup(e);
    assert_non_null(g_last_err);
    if (out) *out = o; else free(o);
    if (err) *err = e; else free(e);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int util_run(char **out, char **err, ...) {
    char *args[MAX_ARGS + 1];
    int n = 0;
    va_list ap;
    va_start(ap, err);
    for (char *a; (a = va_arg(ap, char *)) != NULL;) {
        if (n >= MAX_ARGS) {
            va_end(ap);
            fail_msg("util_run: more than %d arguments", MAX_ARGS);
        }
        args[n++] = a;
    }
    va_end(ap);
    args[n] = NULL;
    return util_run_cli(out, err, args);
}

int util_count_lines_starting(const char *s, const char *prefix) {
    int n = 0;
    size_t len = strlen(prefix);
    for (const char *p = s; p && *p;) {
        if (!strncmp(p, prefix, len)) n++;
        p = strchr(p, '\n');
        if (p) p++;
    }
    return n;
}

void util_expect_exit_ok(int rc) {
    if (rc != 0) {
        print_error("%s: exit %d (want 0); stderr:\n%s", g_last_cmd, rc,
                    g_last_err ? g_last_err : "");
        fail();
    }
}

void util_expect_usage_error(const char *what, int rc, const char *needle) {
    const char *err = g_last_err ? g_last_err : "";
    int lines = util_count_lines_starting(err, "halfs: error: ");
    if (rc != 1 || lines != 1 || (needle && !strstr(err, needle))) {
        print_error("%s%s%s: exit %d (want 1), %d error lines (want 1)%s%s%s; stderr:\n%s",
                    what ? what : "", what ? ": " : "", g_last_cmd, rc, lines,
                    needle ? ", wanted '" : "", needle ? needle : "", needle ? "'" : "", err);
        fail();
    }
}

/* ---------------------------------------------------------------- training runs */

char *util_metrics_det(const char *run_dir) {
    enum { DET_COLS = 6 }; /* the columns before ms_per_step */
    char p[4200];
    snprintf(p, sizeof p, "%s/metrics.csv", run_dir);
    size_t n;
    char *text = util_read_file(p, &n);
    char *out = malloc(n + 1), *o = out;
    assert_non_null(out);
    int commas = 0;
    for (const char *c = text; *c; c++) {
        if (*c == '\n') {
            commas = 0;
            *o++ = '\n';
        } else if (*c == ',' && ++commas >= DET_COLS) {
            continue;
        } else if (commas < DET_COLS) {
            *o++ = *c;
        }
    }
    *o = '\0';
    free(text);
    return out;
}

/* ---------------------------------------------------------------- random numbers */

uint64_t util_splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* cli_util.c: error printing, number parsing and atomic file I/O shared by every subcommand. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void cli_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("halfs: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void cli_hint(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("hint: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int cli_fail_status(hs_status st, const char *what) {
    const char *msg = hs_last_error();
    cli_error("%s: %s", what, msg[0] ? msg : hs_status_str(st));
    switch (st) {
    case HS_ERR_INVALID_ARG:
    case HS_ERR_UNSUPPORTED:
    case HS_ERR_IO:
    case HS_ERR_CORRUPT:
    case HS_ERR_NUMERIC:
        return CLI_USAGE;
    default:
        return CLI_INTERNAL;
    }
}

int cli_parse_i64(const char *opt, const char *val, int64_t lo, int64_t hi, int64_t *out) {
    if (!val || !*val) {
        cli_error("%s needs a value", opt);
        return 0;
    }
    errno = 0;
    char *end = NULL;
    long long v = strtoll(val, &end, 10);
    if (errno || *end != '\0') {
        cli_error("%s: '%s' is not an integer", opt, val);
        return 0;
    }
    if (v < lo || v > hi) {
        cli_error("%s: %lld is out of range [%lld, %lld]", opt, v, (long long)lo, (long long)hi);
        return 0;
    }
    *out = (int64_t)v;
    return 1;
}

int cli_parse_u64(const char *opt, const char *val, uint64_t *out) {
    if (!val || !*val || val[0] == '-') {
        cli_error("%s: '%s' is not a non-negative integer", opt, val ? val : "");
        return 0;
    }
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(val, &end, 10);
    if (errno || *end != '\0') {
        cli_error("%s: '%s' is not a non-negative integer", opt, val);
        return 0;
    }
    *out = (uint64_t)v;
    return 1;
}

int cli_parse_f64(const char *opt, const char *val, double lo, double hi, double *out) {
    if (!val || !*val) {
        cli_error("%s needs a value", opt);
        return 0;
    }
    errno = 0;
    char *end = NULL;
    double v = strtod(val, &end);
    if (errno || *end != '\0' || !isfinite(v)) {
        cli_error("%s: '%s' is not a finite number", opt, val);
        return 0;
    }
    if (v < lo || v > hi) {
        cli_error("%s: %g is out of range [%g, %g]", opt, v, lo, hi);
        return 0;
    }
    *out = v;
    return 1;
}

int cli_read_f32(const char *path, float **data, int64_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        cli_error("cannot open '%s': %s", path, strerror(errno));
        return 1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        cli_error("'%s' is not a regular file", path);
        fclose(f);
        return 1;
    }
    if (st.st_size % 4 != 0) {
        cli_error("'%s' has %lld bytes, not a whole number of float32 values", path,
                  (long long)st.st_size);
        cli_hint("inputs are raw little-endian float32 arrays");
        fclose(f);
        return 1;
    }
    int64_t count = st.st_size / 4;
    float *buf = malloc(count ? (size_t)count * 4 : 4);
    if (!buf) {
        cli_error("out of memory reading '%s' (%lld bytes)", path, (long long)st.st_size);
        fclose(f);
        return 1;
    }
    if (count && fread(buf, 4, (size_t)count, f) != (size_t)count) {
        cli_error("short read on '%s'", path);
        free(buf);
        fclose(f);
        return 1;
    }
    fclose(f);
    *data = buf;
    *n = count;
    return 0;
}

int cli_write_atomic(const char *path, const void *data, size_t bytes) {
    size_t len = strlen(path);
    char *tmp = malloc(len + 16);
    if (!tmp) {
        cli_error("out of memory");
        return 1;
    }
    snprintf(tmp, len + 16, "%s.tmpXXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        cli_error("cannot create '%s': %s", tmp, strerror(errno));
        free(tmp);
        return 1;
    }
    const char *p = data;
    size_t left = bytes;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR) continue;
            cli_error("cannot write '%s': %s", path, strerror(errno));
            close(fd);
            unlink(tmp);
            free(tmp);
            return 1;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fchmod(fd, 0644) != 0 || fsync(fd) != 0 || close(fd) != 0) {
        cli_error("cannot finish writing '%s': %s", path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return 1;
    }
    if (rename(tmp, path) != 0) {
        cli_error("cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return 1;
    }
    free(tmp);
    return 0;
}

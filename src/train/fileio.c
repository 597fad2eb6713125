/* fileio.c: whole-file reads, atomic writes, mkdir -p and a content hash (fileio.h). */
#include "train/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

hs_status hs_file_read_all(const char *path, size_t max_bytes, char **data, size_t *size) {
    *data = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return hs_fail(HS_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return hs_fail(HS_ERR_IO, "'%s' is not a regular file", path);
    }
    if ((uint64_t)st.st_size > (uint64_t)max_bytes) {
        close(fd);
        return hs_fail(HS_ERR_IO, "'%s' is too large (%lld bytes, limit %zu)", path,
                       (long long)st.st_size, max_bytes);
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        close(fd);
        return hs_fail(HS_ERR_NOMEM, "out of memory reading '%s' (%zu bytes)", path, n);
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            int e = errno;
            free(buf);
            close(fd);
            return hs_fail(HS_ERR_IO, "short read on '%s'%s%s", path, r < 0 ? ": " : "",
                           r < 0 ? strerror(e) : "");
        }
        got += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    *data = buf;
    *size = n;
    return HS_OK;
}

/* The directory part of path ("." when there is none), in a fresh string. */
static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    if (slash == path) return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

hs_status hs_dir_fsync(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return hs_fail(HS_ERR_IO, "cannot open directory '%s': %s", dir, strerror(errno));
    /* Some file systems refuse fsync on directories (EINVAL); the rename is still atomic. */
    if (fsync(fd) != 0 && errno != EINVAL) {
        int e = errno;
        close(fd);
        return hs_fail(HS_ERR_IO, "cannot fsync directory '%s': %s", dir, strerror(e));
    }
    close(fd);
    return HS_OK;
}

hs_status hs_file_write_atomic_parts(const char *path, const void *const *parts,
                                     const size_t *sizes, int n_parts) {
    size_t len = strlen(path);
    char *tmp = malloc(len + 16);
    if (!tmp) return hs_fail(HS_ERR_NOMEM, "out of memory");
    snprintf(tmp, len + 16, "%s.tmpXXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        hs_status st = hs_fail(HS_ERR_IO, "cannot create a temporary file next to '%s': %s", path,
                               strerror(errno));
        free(tmp);
        return st;
    }
    for (int i = 0; i < n_parts; i++) {
        const char *p = parts[i];
        size_t left = sizes[i];
        while (left > 0) {
            ssize_t w = write(fd, p, left);
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) {
                hs_status st = hs_fail(HS_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
                close(fd);
                unlink(tmp);
                free(tmp);
                return st;
            }
            p += w;
            left -= (size_t)w;
        }
    }
    if (fchmod(fd, 0644) != 0 || fsync(fd) != 0) {
        hs_status st = hs_fail(HS_ERR_IO, "cannot finish writing '%s': %s", path, strerror(errno));
        close(fd);
        unlink(tmp);
        free(tmp);
        return st;
    }
    if (close(fd) != 0) {
        hs_status st = hs_fail(HS_ERR_IO, "cannot close '%s': %s", path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return st;
    }
    if (rename(tmp, path) != 0) {
        hs_status st =
            hs_fail(HS_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return st;
    }
    free(tmp);
    char *dir = dir_of(path);
    if (!dir) return hs_fail(HS_ERR_NOMEM, "out of memory");
    hs_status st = hs_dir_fsync(dir);
    free(dir);
    return st;
}

hs_status hs_file_write_atomic(const char *path, const void *data, size_t bytes) {
    const void *parts[1] = {data};
    size_t sizes[1] = {bytes};
    return hs_file_write_atomic_parts(path, parts, sizes, 1);
}

hs_status hs_mkdir_p(const char *path) {
    if (!path || !*path) return hs_fail(HS_ERR_INVALID_ARG, "empty directory name");
    char *p = strdup(path);
    if (!p) return hs_fail(HS_ERR_NOMEM, "out of memory");
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                hs_status st =
                    hs_fail(HS_ERR_IO, "cannot create directory '%s': %s", p, strerror(errno));
                free(p);
                return st;
            }
            *s = c;
            if (c == '\0') break;
        }
    }
    free(p);
    if (!hs_is_dir(path)) return hs_fail(HS_ERR_IO, "'%s' exists and is not a directory", path);
    return HS_OK;
}

int hs_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int hs_is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

uint64_t hs_fnv1a(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

hs_status hs_dir_lock(const char *dir, int *fd_out) {
    *fd_out = -1;
    hs_status st = hs_mkdir_p(dir);
    if (st != HS_OK) return st;
    char p[4200];
    if (snprintf(p, sizeof p, "%s/lock", dir) >= (int)sizeof p)
        return hs_fail(HS_ERR_IO, "'%s': path too long", dir);
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return hs_fail(HS_ERR_IO, "cannot open the lock file '%s': %s", p, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char pid[32] = "";
        ssize_t n = e == EWOULDBLOCK ? pread(fd, pid, sizeof pid - 1, 0) : -1;
        close(fd);
        if (e != EWOULDBLOCK)
            return hs_fail(HS_ERR_IO, "cannot lock '%s': %s", p, strerror(e));
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        return hs_fail(HS_ERR_IO, "'%s' is in use by another halfs process (pid %s, holding %s)",
                       dir, pid[0] ? pid : "unknown", p);
    }
    char line[32];
    int k = snprintf(line, sizeof line, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, line, (size_t)k, 0) != k) {
        int e = errno;
        close(fd);
        return hs_fail(HS_ERR_IO, "cannot write the lock file '%s': %s", p, strerror(e));
    }
    *fd_out = fd;
    return HS_OK;
}

void hs_dir_unlock(int fd) {
    if (fd >= 0) close(fd);
}

void hs_buf_put(hs_buf *b, const void *data, size_t bytes) {
    if (b->oom) return;
    if (b->n + bytes + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + bytes + 1) cap *= 2;
        uint8_t *q = realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, data, bytes);
    b->n += bytes;
    b->p[b->n] = 0;
}

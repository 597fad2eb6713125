/* fileio.h: small file helpers shared by the data, tokenizer and checkpoint code of src/train.
 *
 * Everything here returns hs_status and records a message (the library never prints).
 * Atomic writes go to a temporary file in the destination's directory, are fsync'ed, renamed
 * into place, and the directory is fsync'ed, so a crash leaves either the old file or the new.
 */
#ifndef HALFS_TRAIN_FILEIO_H
#define HALFS_TRAIN_FILEIO_H

#include <stddef.h>
#include <stdint.h>

#include "halfs/status.h"

/* Read a whole regular file into a fresh buffer (NUL-terminated one byte past *size, so text
 * parsers can use it directly). Files larger than max_bytes are refused (HS_ERR_IO). */
hs_status hs_file_read_all(const char *path, size_t max_bytes, char **data, size_t *size);

/* Write n_parts buffers back to back into path atomically (temp + fsync + rename + dir fsync). */
hs_status hs_file_write_atomic_parts(const char *path, const void *const *parts,
                                     const size_t *sizes, int n_parts);
hs_status hs_file_write_atomic(const char *path, const void *data, size_t bytes);

/* A growing byte buffer for writers that build a file in memory (safetensors header, GGUF),
 * kept NUL-terminated one byte past n so text can be read as a string. oom is sticky: after a
 * failed allocation appends do nothing, and the writer checks oom once at the end. Start from
 * {0}; free(p) when done. */
typedef struct {
    uint8_t *p;
    size_t n, cap;
    int oom;
} hs_buf;
void hs_buf_put(hs_buf *b, const void *data, size_t bytes);

/* fsync a directory (after a rename inside it). */
hs_status hs_dir_fsync(const char *dir);

/* mkdir -p; existing directories are fine. */
hs_status hs_mkdir_p(const char *path);

/* Take the advisory lock of directory dir (created if needed): flock(LOCK_EX | LOCK_NB) on
 * dir/lock, which then holds the holder's pid as text. The lock lasts while *fd stays open
 * (hs_dir_unlock, or the process's exit, even by kill -9). A directory locked by another
 * process is refused at once: HS_ERR_IO naming that process's pid; a directory that cannot be
 * created or a lock file that cannot be opened is HS_ERR_IO too. */
hs_status hs_dir_lock(const char *dir, int *fd);
void hs_dir_unlock(int fd);

/* 1 if path exists and is a directory / a regular file. */
int hs_is_dir(const char *path);
int hs_is_file(const char *path);

/* FNV-1a 64-bit hash of bytes, continuing from h (start with HS_FNV_INIT). */
#define HS_FNV_INIT 0xcbf29ce484222325ULL
uint64_t hs_fnv1a(uint64_t h, const void *data, size_t n);

#endif

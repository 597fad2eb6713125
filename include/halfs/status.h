/* halfs/status.h: status codes and the last-error message of the halfs library.
 *
 * The library never prints and never exits. Every fallible function returns an
 * hs_status; on failure it also records a one-line, human-readable message that
 * hs_last_error() returns (per thread, so concurrent callers do not mix messages).
 */
#ifndef HALFS_STATUS_H
#define HALFS_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    HS_OK = 0,
    HS_ERR_INVALID_ARG,  /* a bad argument: shape, option value, unknown name */
    HS_ERR_UNSUPPORTED,  /* a valid combination that this build does not implement */
    HS_ERR_NOMEM,        /* allocation failed */
    HS_ERR_IO,           /* a file could not be opened, read or written */
    HS_ERR_CORRUPT,      /* a file was read but its contents are malformed */
    HS_ERR_NUMERIC,      /* a NaN/Inf where none may be (e.g. a training loss) */
    HS_ERR_INTERNAL      /* a broken invariant: a bug in halfs */
} hs_status;

/* A short constant name for a status ("invalid argument", ...). */
const char *hs_status_str(hs_status st);

/* The message recorded by the last failing call on this thread ("" if none). */
const char *hs_last_error(void);

/* Record a message (printf-style) and return st. Used inside the library and
 * by the model/trainer code built on it; returns st so callers can write
 * `return hs_fail(HS_ERR_INVALID_ARG, "cols must be > 0, got %d", c);`. */
hs_status hs_fail(hs_status st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Clear the message of this thread. */
void hs_clear_error(void);

#ifdef __cplusplus
}
#endif
#endif

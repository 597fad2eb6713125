/* status.c: status names and the per-thread last-error message (halfs/status.h). */
#include "halfs/status.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char last_error[512];

const char *hs_status_str(hs_status st) {
    switch (st) {
    case HS_OK: return "ok";
    case HS_ERR_INVALID_ARG: return "invalid argument";
    case HS_ERR_UNSUPPORTED: return "unsupported";
    case HS_ERR_NOMEM: return "out of memory";
    case HS_ERR_IO: return "i/o error";
    case HS_ERR_CORRUPT: return "corrupt data";
    case HS_ERR_NUMERIC: return "numeric error";
    case HS_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

const char *hs_last_error(void) { return last_error; }

void hs_clear_error(void) { last_error[0] = '\0'; }

hs_status hs_fail(hs_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return st;
}

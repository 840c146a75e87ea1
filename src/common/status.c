#include "common/status.h"

#include <stdarg.h>
#include <string.h>

static _Thread_local char last_msg[512];
static _Thread_local cai_status last_st;

const char *cai_strerror(cai_status st) {
    switch (st) {
    case CAI_OK: return "success";
    case CAI_ERR_INVALID_ARG: return "invalid argument";
    case CAI_ERR_NOMEM: return "out of memory";
    case CAI_ERR_IO: return "input/output error";
    case CAI_ERR_FORMAT: return "malformed input";
    case CAI_ERR_UNSUPPORTED: return "unsupported";
    case CAI_ERR_LIMIT: return "limit exceeded";
    case CAI_ERR_AUTH: return "authentication failed (data was tampered with or corrupted)";
    case CAI_ERR_WRONG_KEY: return "wrong key";
    case CAI_ERR_TRUNCATED: return "input is truncated";
    case CAI_ERR_TRAILING: return "unexpected bytes after the end of input";
    case CAI_ERR_CRYPTO: return "cryptographic library failure";
    case CAI_ERR_NOT_FOUND: return "not found";
    case CAI_ERR_EXISTS: return "already exists";
    case CAI_ERR_INTERNAL: return "internal error";
    }
    return "unknown error";
}

/* The new detail is formatted into a buffer of its own, then copied: an
 * argument may be the current detail (`cai_fail(st, "x: %s", cai_errmsg(st))`
 * wraps a callee's message), and formatting into the buffer it reads from
 * would garble it (and is undefined behaviour for vsnprintf). */
cai_status cai_fail(cai_status st, const char *fmt, ...) {
    char tmp[sizeof(last_msg)];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        tmp[0] = '\0';
    memcpy(last_msg, tmp, sizeof(last_msg));
    last_st = st;
    return st;
}

void cai_errmsg_set(cai_status st, const char *msg) {
    if (msg != last_msg) {
        size_t n = strnlen(msg, sizeof(last_msg) - 1);
        memmove(last_msg, msg, n); /* |msg| may lie inside last_msg */
        last_msg[n] = '\0';
    }
    last_st = st;
}

const char *cai_errmsg(cai_status st) {
    if (st != CAI_OK && st == last_st && last_msg[0] != '\0')
        return last_msg;
    return cai_strerror(st);
}

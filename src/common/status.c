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

cai_status cai_fail(cai_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_msg, sizeof(last_msg), fmt, ap);
    va_end(ap);
    last_st = st;
    return st;
}

void cai_errmsg_set(cai_status st, const char *msg) {
    snprintf(last_msg, sizeof(last_msg), "%s", msg);
    last_st = st;
}

const char *cai_errmsg(cai_status st) {
    if (st != CAI_OK && st == last_st && last_msg[0] != '\0')
        return last_msg;
    return cai_strerror(st);
}

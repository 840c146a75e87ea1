/* status.h - cai's single error convention.
 *
 * Every fallible function returns a cai_status: CAI_OK (0) on success, a
 * negative code on failure. Outputs go through out_* parameters. A function
 * that fails may attach a human-readable detail with cai_fail(); callers show
 * it with cai_errmsg(). This is the one channel for a detail: no char *why
 * out-parameters (docs/ARCHITECTURE.md, "Errors"). Details never contain
 * secrets. */
#ifndef CAI_COMMON_STATUS_H
#define CAI_COMMON_STATUS_H

#include <stdio.h>
#include <stdlib.h>

typedef enum {
    CAI_OK = 0,
    CAI_ERR_INVALID_ARG = -1, /* the caller passed something unusable */
    CAI_ERR_NOMEM = -2,
    CAI_ERR_IO = -3,          /* read/write/open failed */
    CAI_ERR_FORMAT = -4,      /* malformed input */
    CAI_ERR_UNSUPPORTED = -5, /* well-formed but not supported (version...) */
    CAI_ERR_LIMIT = -6,       /* exceeds a named limit */
    CAI_ERR_AUTH = -7,        /* authentication tag or MAC mismatch */
    CAI_ERR_WRONG_KEY = -8,   /* key does not match the key commitment */
    CAI_ERR_TRUNCATED = -9,   /* input ends early */
    CAI_ERR_TRAILING = -10,   /* bytes after the end */
    CAI_ERR_CRYPTO = -11,     /* the crypto library failed */
    CAI_ERR_NOT_FOUND = -12,
    CAI_ERR_EXISTS = -13,
    CAI_ERR_INTERNAL = -14,
} cai_status;

/* cai_strerror returns a static, generic description of |st|. */
const char *cai_strerror(cai_status st);

/* cai_fail records a detail message for the calling thread and returns |st|,
 * so that `return cai_fail(CAI_ERR_FORMAT, "chunk %u: ...", i);` reads well.
 * An argument may be the current detail: `cai_fail(st, "token: %s",
 * cai_errmsg(st))` prefixes a callee's message (at most 511 bytes kept). */
cai_status cai_fail(cai_status st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* cai_errmsg returns the calling thread's last detail if it was recorded for
 * |st|, else cai_strerror(st). The pointer is valid until the next cai_fail on
 * this thread. */
const char *cai_errmsg(cai_status st);

/* cai_errmsg_set copies another thread's detail into this one (used to carry a
 * worker's failure back to the caller). */
void cai_errmsg_set(cai_status st, const char *msg);

/* CAI_ASSERT aborts on a broken invariant: a programmer error, never bad
 * input (bad input is returned as a status). */
#define CAI_ASSERT(x)                                                          \
    do {                                                                       \
        if (!(x)) {                                                            \
            fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__,         \
                    __LINE__, #x);                                             \
            abort();                                                           \
        }                                                                      \
    } while (0)

#define CAI_UNUSED(x) (void)(x)
#define CAI_WUR __attribute__((warn_unused_result))

#endif

#include "common/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/secure.h"

void buf_init(buf *b, size_t max) {
    memset(b, 0, sizeof(*b));
    b->max = max;
}

void buf_free(buf *b) {
    if (b == NULL)
        return;
    if (b->data != NULL) {
        secure_wipe(b->data, b->cap);
        free(b->data);
    }
    size_t max = b->max;
    buf_init(b, max);
}

static size_t buf_limit(const buf *b) { return b->max ? b->max : SIZE_MAX / 2; }

cai_status buf_reserve(buf *b, size_t extra) {
    size_t limit = buf_limit(b);
    if (extra > limit || b->len > limit - extra)
        return CAI_ERR_LIMIT;
    size_t need = b->len + extra + 1; /* room for a terminator */
    if (need <= b->cap)
        return CAI_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    /* Not realloc: the old block may hold secrets and must be wiped. */
    uint8_t *p = malloc(cap);
    if (p == NULL)
        return CAI_ERR_NOMEM;
    if (b->data != NULL) {
        memcpy(p, b->data, b->len);
        secure_wipe(b->data, b->cap);
        free(b->data);
    }
    b->data = p;
    b->cap = cap;
    return CAI_OK;
}

cai_status buf_append(buf *b, const void *data, size_t n) {
    cai_status st = buf_reserve(b, n);
    if (st != CAI_OK)
        return st;
    if (n > 0)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = 0;
    return CAI_OK;
}

cai_status buf_append_u8(buf *b, uint8_t v) { return buf_append(b, &v, 1); }

static cai_status append_le(buf *b, uint64_t v, size_t n) {
    uint8_t tmp[8];
    for (size_t i = 0; i < n; i++)
        tmp[i] = (uint8_t)(v >> (8 * i));
    return buf_append(b, tmp, n);
}

cai_status buf_append_u16le(buf *b, uint16_t v) { return append_le(b, v, 2); }
cai_status buf_append_u32le(buf *b, uint32_t v) { return append_le(b, v, 4); }
cai_status buf_append_u64le(buf *b, uint64_t v) { return append_le(b, v, 8); }

cai_status buf_append_str(buf *b, const char *s) { return buf_append(b, s, strlen(s)); }

cai_status buf_terminate(buf *b) {
    cai_status st = buf_reserve(b, 0);
    if (st == CAI_OK)
        b->data[b->len] = 0;
    return st;
}

cai_status buf_printf(buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return CAI_ERR_INVALID_ARG;
    cai_status st = buf_reserve(b, (size_t)n);
    if (st != CAI_OK)
        return st;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return CAI_OK;
}

#include "common/cursor.h"

#include <string.h>

void cursor_init(cursor *c, const void *data, size_t len) {
    c->ptr = data;
    c->len = len;
}

int cursor_skip(cursor *c, size_t n) {
    if (n > c->len)
        return 0;
    c->ptr += n;
    c->len -= n;
    return 1;
}

static int get_le(cursor *c, size_t n, uint64_t *out) {
    if (n > c->len)
        return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)c->ptr[i] << (8 * i);
    *out = v;
    return cursor_skip(c, n);
}

static int get_be(cursor *c, size_t n, uint64_t *out) {
    if (n > c->len)
        return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | c->ptr[i];
    *out = v;
    return cursor_skip(c, n);
}

int cursor_get_u8(cursor *c, uint8_t *out) {
    uint64_t v;
    if (!get_le(c, 1, &v))
        return 0;
    *out = (uint8_t)v;
    return 1;
}

#define CURSOR_GETTER(name, type, n, fn)                                       \
    int name(cursor *c, type *out) {                                           \
        uint64_t v;                                                            \
        if (!fn(c, n, &v))                                                     \
            return 0;                                                          \
        *out = (type)v;                                                        \
        return 1;                                                              \
    }

CURSOR_GETTER(cursor_get_u16le, uint16_t, 2, get_le)
CURSOR_GETTER(cursor_get_u32le, uint32_t, 4, get_le)
CURSOR_GETTER(cursor_get_u64le, uint64_t, 8, get_le)
CURSOR_GETTER(cursor_get_u16be, uint16_t, 2, get_be)
CURSOR_GETTER(cursor_get_u32be, uint32_t, 4, get_be)
CURSOR_GETTER(cursor_get_u64be, uint64_t, 8, get_be)

int cursor_copy(cursor *c, void *out, size_t n) {
    if (n > c->len)
        return 0;
    if (n > 0)
        memcpy(out, c->ptr, n);
    return cursor_skip(c, n);
}

int cursor_get_span(cursor *c, cursor *out, size_t n) {
    if (n > c->len)
        return 0;
    cursor_init(out, c->ptr, n);
    return cursor_skip(c, n);
}

static int get_prefixed(cursor *c, cursor *out, size_t width) {
    cursor save = *c;
    uint64_t n;
    if (!get_le(c, width, &n))
        return 0;
    if (n > c->len) {
        *c = save;
        return 0;
    }
    return cursor_get_span(c, out, (size_t)n);
}

int cursor_get_u16le_prefixed(cursor *c, cursor *out) { return get_prefixed(c, out, 2); }
int cursor_get_u32le_prefixed(cursor *c, cursor *out) { return get_prefixed(c, out, 4); }
int cursor_get_u64le_prefixed(cursor *c, cursor *out) { return get_prefixed(c, out, 8); }

/* cbor.c - definite-length CBOR over a cursor and a buf. */
#include "ratls/cbor.h"

#include <string.h>

int cbor_get_head(cursor *c, int *major, uint64_t *arg) {
    cursor t = *c;
    uint8_t ib;
    if (!cursor_get_u8(&t, &ib))
        return 0;
    int m = ib >> 5, ai = ib & 31;
    uint64_t v;
    if (ai < 24) {
        v = (uint64_t)ai;
    } else if (ai == 24) {
        uint8_t x;
        if (!cursor_get_u8(&t, &x))
            return 0;
        v = x;
    } else if (ai == 25) {
        uint16_t x;
        if (!cursor_get_u16be(&t, &x))
            return 0;
        v = x;
    } else if (ai == 26) {
        uint32_t x;
        if (!cursor_get_u32be(&t, &x))
            return 0;
        v = x;
    } else if (ai == 27) {
        if (!cursor_get_u64be(&t, &v))
            return 0;
    } else {
        return 0; /* 28-30 reserved, 31 indefinite length or break */
    }
    /* Simple values: only those in the initial byte (false, true, null,
     * undefined); a float (ai 25-27) or a two-byte simple is not ours. */
    if (m == CBOR_SIMPLE && ai >= 24)
        return 0;
    *major = m;
    *arg = v;
    *c = t;
    return 1;
}

int cbor_peek_major(const cursor *c) {
    return cursor_len(c) ? cursor_data(c)[0] >> 5 : -1;
}

static int get_typed(cursor *c, int want, uint64_t *arg) {
    cursor t = *c;
    int m;
    if (!cbor_get_head(&t, &m, arg) || m != want)
        return 0;
    *c = t;
    return 1;
}

int cbor_get_uint(cursor *c, uint64_t *out) { return get_typed(c, CBOR_UINT, out); }
int cbor_get_array(cursor *c, uint64_t *n) { return get_typed(c, CBOR_ARRAY, n); }
int cbor_get_map(cursor *c, uint64_t *n) { return get_typed(c, CBOR_MAP, n); }
int cbor_get_tag(cursor *c, uint64_t *tag) { return get_typed(c, CBOR_TAG, tag); }

static int get_string(cursor *c, int want, cursor *out) {
    cursor t = *c;
    uint64_t n;
    if (!get_typed(&t, want, &n) || n > cursor_len(&t) || !cursor_get_span(&t, out, (size_t)n))
        return 0;
    *c = t;
    return 1;
}

int cbor_get_bytes(cursor *c, cursor *out) { return get_string(c, CBOR_BYTES, out); }
int cbor_get_text(cursor *c, cursor *out) { return get_string(c, CBOR_TEXT, out); }

int cbor_get_null(cursor *c) {
    cursor t = *c;
    uint64_t v;
    if (!get_typed(&t, CBOR_SIMPLE, &v) || v != CBOR_NULL)
        return 0;
    *c = t;
    return 1;
}

int cbor_skip(cursor *c, int depth) {
    if (depth <= 0)
        return 0;
    cursor t = *c;
    int m;
    uint64_t arg;
    if (!cbor_get_head(&t, &m, &arg))
        return 0;
    switch (m) {
    case CBOR_UINT:
    case CBOR_NINT:
    case CBOR_SIMPLE:
        break;
    case CBOR_BYTES:
    case CBOR_TEXT:
        if (arg > cursor_len(&t) || !cursor_skip(&t, (size_t)arg))
            return 0;
        break;
    case CBOR_TAG:
        if (!cbor_skip(&t, depth - 1))
            return 0;
        break;
    case CBOR_ARRAY:
    case CBOR_MAP: {
        /* Every item takes at least one byte: a count beyond what is left
         * is refused before the loop, so it cannot spin. */
        uint64_t items = arg;
        if (m == CBOR_MAP && items > UINT64_MAX / 2)
            return 0;
        if (m == CBOR_MAP)
            items *= 2;
        if (items > cursor_len(&t))
            return 0;
        for (uint64_t i = 0; i < items; i++)
            if (!cbor_skip(&t, depth - 1))
                return 0;
        break;
    }
    default:
        return 0;
    }
    *c = t;
    return 1;
}

cai_status cbor_put_head(buf *b, int major, uint64_t arg) {
    uint8_t h[9];
    size_t n;
    uint8_t m = (uint8_t)(major << 5);
    if (arg < 24) {
        h[0] = m | (uint8_t)arg;
        n = 1;
    } else if (arg <= 0xff) {
        h[0] = m | 24;
        h[1] = (uint8_t)arg;
        n = 2;
    } else if (arg <= 0xffff) {
        h[0] = m | 25;
        n = 3;
    } else if (arg <= 0xffffffffu) {
        h[0] = m | 26;
        n = 5;
    } else {
        h[0] = m | 27;
        n = 9;
    }
    for (size_t i = 1; n > 2 && i < n; i++)
        h[i] = (uint8_t)(arg >> (8 * (n - 1 - i)));
    return buf_append(b, h, n);
}

cai_status cbor_put_bytes(buf *b, const void *p, size_t n) {
    cai_status st = cbor_put_head(b, CBOR_BYTES, n);
    return st == CAI_OK ? buf_append(b, p, n) : st;
}

cai_status cbor_put_text(buf *b, const char *s, size_t n) {
    cai_status st = cbor_put_head(b, CBOR_TEXT, n);
    return st == CAI_OK ? buf_append(b, s, n) : st;
}

cai_status cbor_put_null(buf *b) { return cbor_put_head(b, CBOR_SIMPLE, CBOR_NULL); }

/* jcs.c - RFC 8785 canonical JSON. */
#include "common/jcs.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/codec.h"

/* Next UTF-16 code unit of the UTF-8 string |*p|..|end|, with |*pending|
 * holding a low surrogate still to deliver. Returns -1 on invalid UTF-8. */
static int32_t next_unit(const unsigned char **p, const unsigned char *end, int32_t *pending) {
    if (*pending) {
        int32_t u = *pending;
        *pending = 0;
        return u;
    }
    const unsigned char *s = *p;
    uint32_t cp;
    size_t n;
    if (s[0] < 0x80) {
        cp = s[0], n = 1;
    } else if ((s[0] & 0xe0) == 0xc0) {
        cp = s[0] & 0x1f, n = 2;
    } else if ((s[0] & 0xf0) == 0xe0) {
        cp = s[0] & 0x0f, n = 3;
    } else if ((s[0] & 0xf8) == 0xf0) {
        cp = s[0] & 0x07, n = 4;
    } else {
        return -1;
    }
    if ((size_t)(end - s) < n)
        return -1;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return -1;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return -1;
    *p = s + n;
    if (cp < 0x10000)
        return (int32_t)cp;
    cp -= 0x10000;
    *pending = (int32_t)(0xdc00 + (cp & 0x3ff));
    return (int32_t)(0xd800 + (cp >> 10));
}

/* Compares two valid UTF-8 names by their UTF-16 code units. */
static int cmp_keys(const void *x, const void *y) {
    const char *a = *(const char *const *)x, *b = *(const char *const *)y;
    const unsigned char *pa = (const unsigned char *)a, *pb = (const unsigned char *)b;
    const unsigned char *ea = pa + strlen(a), *eb = pb + strlen(b);
    int32_t qa = 0, qb = 0;
    for (;;) {
        int da = pa == ea && !qa, db = pb == eb && !qb;
        if (da || db)
            return da && db ? 0 : da ? -1 : 1;
        int32_t ua = next_unit(&pa, ea, &qa), ub = next_unit(&pb, eb, &qb);
        if (ua != ub)
            return ua < ub ? -1 : 1;
    }
}

static cai_status put_string(buf *out, const char *s, size_t n) {
    cai_status st = buf_append_u8(out, '"');
    size_t run = 0; /* bytes copied verbatim in one append */
    for (size_t i = 0; st == CAI_OK && i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            run++;
            continue;
        }
        if (run && (st = buf_append(out, s + i - run, run)) != CAI_OK)
            break;
        run = 0;
        switch (c) {
        case '"': st = buf_append_str(out, "\\\""); break;
        case '\\': st = buf_append_str(out, "\\\\"); break;
        case '\b': st = buf_append_str(out, "\\b"); break;
        case '\t': st = buf_append_str(out, "\\t"); break;
        case '\n': st = buf_append_str(out, "\\n"); break;
        case '\f': st = buf_append_str(out, "\\f"); break;
        case '\r': st = buf_append_str(out, "\\r"); break;
        default: st = buf_printf(out, "\\u%04x", c); break;
        }
    }
    if (st == CAI_OK && run)
        st = buf_append(out, s + n - run, run);
    return st == CAI_OK ? buf_append_u8(out, '"') : st;
}

/* ECMAScript Number::toString (ES2015 7.1.12.1) for a finite double: the
 * shortest digits that round-trip, placed by the exponent rules. */
static cai_status put_number(buf *out, double d) {
    if (!isfinite(d))
        return cai_fail(CAI_ERR_FORMAT, "jcs: NaN and infinities are not JSON");
    if (d == 0)
        return buf_append_str(out, "0"); /* also -0 */
    char tmp[48];
    for (int p = 1; p <= 17; p++) {
        snprintf(tmp, sizeof(tmp), "%.*e", p - 1, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    const char *s = tmp;
    char digits[24];
    int k = 0, neg = *s == '-';
    s += neg;
    for (; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9')
            digits[k++] = *s;
    int n = atoi(s + 1) + 1; /* the decimal point sits after n digits */
    while (k > 1 && digits[k - 1] == '0')
        k--;
    cai_status st = neg ? buf_append_u8(out, '-') : CAI_OK;
    if (st != CAI_OK)
        return st;
    if (k <= n && n <= 21) {
        st = buf_append(out, digits, (size_t)k);
        for (int i = k; st == CAI_OK && i < n; i++)
            st = buf_append_u8(out, '0');
    } else if (0 < n && n <= 21) {
        if ((st = buf_append(out, digits, (size_t)n)) == CAI_OK &&
            (st = buf_append_u8(out, '.')) == CAI_OK)
            st = buf_append(out, digits + n, (size_t)(k - n));
    } else if (-6 < n && n <= 0) {
        st = buf_append_str(out, "0.");
        for (int i = 0; st == CAI_OK && i < -n; i++)
            st = buf_append_u8(out, '0');
        if (st == CAI_OK)
            st = buf_append(out, digits, (size_t)k);
    } else {
        st = buf_append_u8(out, (uint8_t)digits[0]);
        if (st == CAI_OK && k > 1 && (st = buf_append_u8(out, '.')) == CAI_OK)
            st = buf_append(out, digits + 1, (size_t)(k - 1));
        if (st == CAI_OK)
            st = buf_printf(out, "e%c%d", n - 1 < 0 ? '-' : '+', abs(n - 1));
    }
    return st;
}

static cai_status put_value(buf *out, const json_t *v, int depth) {
    if (depth > 64)
        return cai_fail(CAI_ERR_LIMIT, "jcs: nesting deeper than 64");
    switch (json_typeof(v)) {
    case JSON_NULL: return buf_append_str(out, "null");
    case JSON_TRUE: return buf_append_str(out, "true");
    case JSON_FALSE: return buf_append_str(out, "false");
    case JSON_STRING: return put_string(out, json_string_value(v), json_string_length(v));
    case JSON_REAL: return put_number(out, json_real_value(v));
    case JSON_INTEGER: {
        json_int_t i = json_integer_value(v);
        if (i >= -(1LL << 53) && i <= (1LL << 53))
            return buf_printf(out, "%lld", (long long)i);
        return put_number(out, (double)i);
    }
    case JSON_ARRAY: {
        cai_status st = buf_append_u8(out, '[');
        for (size_t i = 0; st == CAI_OK && i < json_array_size(v); i++) {
            if (i && (st = buf_append_u8(out, ',')) != CAI_OK)
                break;
            st = put_value(out, json_array_get(v, i), depth + 1);
        }
        return st == CAI_OK ? buf_append_u8(out, ']') : st;
    }
    case JSON_OBJECT: {
        size_t n = json_object_size(v);
        const char **keys = n ? malloc(n * sizeof(*keys)) : NULL;
        if (n && keys == NULL)
            return CAI_ERR_NOMEM;
        size_t i = 0;
        const char *k;
        json_t *m;
        int bad = 0;
        json_object_foreach((json_t *)v, k, m) {
            bad |= !utf8_valid(k, strlen(k));
            keys[i++] = k;
        }
        if (!bad && n > 1)
            qsort(keys, n, sizeof(*keys), cmp_keys);
        cai_status st = bad ? cai_fail(CAI_ERR_FORMAT, "jcs: a member name is not UTF-8")
                            : buf_append_u8(out, '{');
        for (i = 0; st == CAI_OK && i < n; i++) {
            if (i && (st = buf_append_u8(out, ',')) != CAI_OK)
                break;
            if ((st = put_string(out, keys[i], strlen(keys[i]))) != CAI_OK ||
                (st = buf_append_u8(out, ':')) != CAI_OK)
                break;
            st = put_value(out, json_object_get(v, keys[i]), depth + 1);
        }
        free(keys);
        return st == CAI_OK ? buf_append_u8(out, '}') : st;
    }
    }
    return cai_fail(CAI_ERR_FORMAT, "jcs: unknown JSON type");
}

cai_status jcs_serialize(const json_t *v, buf *out) {
    if (v == NULL)
        return cai_fail(CAI_ERR_INVALID_ARG, "jcs: no value");
    cai_status st = put_value(out, v, 0);
    return st == CAI_OK ? buf_terminate(out) : st;
}

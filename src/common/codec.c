#include "common/codec.h"

#include <string.h>

static const char hex_digits[] = "0123456789abcdef";

void hex_encode(char *out, const void *in, size_t n) {
    const uint8_t *p = in;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex_digits[p[i] >> 4];
        out[2 * i + 1] = hex_digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

cai_status hex_decode(const char *in, size_t in_len, uint8_t *out, size_t cap,
                      size_t *out_len) {
    if (in_len % 2 != 0)
        return cai_fail(CAI_ERR_FORMAT, "hex string has an odd number of digits");
    if (in_len / 2 > cap)
        return cai_fail(CAI_ERR_LIMIT, "hex string is longer than %zu bytes", cap);
    for (size_t i = 0; i < in_len / 2; i++) {
        int hi = hex_value(in[2 * i]), lo = hex_value(in[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return cai_fail(CAI_ERR_FORMAT, "invalid hex digit at offset %zu",
                            hi < 0 ? 2 * i : 2 * i + 1);
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    *out_len = in_len / 2;
    return CAI_OK;
}

static const char b64_std[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t b64_encoded_len(size_t n, b64_alphabet a) {
    if (a == B64_STD)
        return (n + 2) / 3 * 4;
    return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

size_t b64_decoded_max(size_t in_len) { return in_len / 4 * 3 + 3; }

void b64_encode(char *out, const void *in, size_t n, b64_alphabet a) {
    const char *tab = a == B64_STD ? b64_std : b64_url;
    const uint8_t *p = in;
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
        out[o++] = tab[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        if (a == B64_STD) {
            out[o++] = '=';
            out[o++] = '=';
        }
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
        if (a == B64_STD)
            out[o++] = '=';
    }
    out[o] = '\0';
}

static int b64_value(char c, b64_alphabet a) {
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (a == B64_STD ? '+' : '-'))
        return 62;
    if (c == (a == B64_STD ? '/' : '_'))
        return 63;
    return -1;
}

cai_status b64_decode(const char *in, size_t in_len, uint8_t *out, size_t cap,
                      size_t *out_len, b64_alphabet a) {
    size_t n = in_len;
    if (a == B64_STD) {
        if (n % 4 != 0)
            return cai_fail(CAI_ERR_FORMAT, "base64 length is not a multiple of 4");
        if (n > 0 && in[n - 1] == '=')
            n--;
        if (n > 0 && in[n - 1] == '=')
            n--;
    } else if (n % 4 == 1) {
        return cai_fail(CAI_ERR_FORMAT, "base64url has an impossible length");
    }
    size_t need = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
    if (need > cap)
        return cai_fail(CAI_ERR_LIMIT, "base64 data is longer than %zu bytes", cap);
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value(in[i], a);
        if (v < 0)
            return cai_fail(CAI_ERR_FORMAT, "invalid base64 character at offset %zu", i);
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
        return cai_fail(CAI_ERR_FORMAT, "base64 has non-zero trailing bits");
    *out_len = o;
    return CAI_OK;
}

/* The length of the valid UTF-8 character at |p| (|n| bytes left), or 0. */
static size_t utf8_char(const uint8_t *p, size_t n) {
    uint8_t c = p[0];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || len > n)
        return 0;
    uint32_t v = len == 1 ? c : len == 2 ? (c & 0x1Fu) : len == 3 ? (c & 0x0Fu) : (c & 0x07u);
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (p[i] & 0x3Fu);
    }
    static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < min[len] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    return len;
}

int utf8_valid(const void *in, size_t n) {
    const uint8_t *p = in;
    for (size_t i = 0, k; i < n; i += k)
        if ((k = utf8_char(p + i, n - i)) == 0)
            return 0;
    return 1;
}

int hex_byte(const char *s) {
    int v = 0;
    for (int i = 0; i < 2; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return -1; /* also at a NUL: no read past the end of a string */
        v = v << 4 | d;
    }
    return v;
}

cai_status utf8_sanitize(const void *in, size_t n, buf *out) {
    const uint8_t *p = in;
    cai_status st = CAI_OK;
    for (size_t i = 0; i < n && st == CAI_OK;) {
        size_t k = utf8_char(p + i, n - i);
        st = k ? buf_append(out, p + i, k) : buf_append(out, "\xef\xbf\xbd", 3);
        i += k ? k : 1;
    }
    return st;
}

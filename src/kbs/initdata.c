/* initdata.c - CoCo init-data (TOML) and its digest. */
#include "kbs/initdata.h"

#include <string.h>

#include <openssl/evp.h>

#include "common/buf.h"
#include "common/codec.h"

/* The TOML being read: a bounds-checked position over untrusted bytes. */
typedef struct {
    const char *p;
    size_t n;    /* bytes left */
    size_t line; /* 1-based, for messages */
} toml;

static int peek(const toml *t, size_t i) {
    return i < t->n ? (unsigned char)t->p[i] : -1;
}

static void adv(toml *t, size_t k) {
    for (size_t i = 0; i < k && t->n; i++) {
        if (*t->p == '\n')
            t->line++;
        t->p++;
        t->n--;
    }
}

static int starts(const toml *t, const char *s) {
    size_t k = strlen(s);
    return t->n >= k && memcmp(t->p, s, k) == 0;
}

static cai_status err_at(size_t line, cai_status st, const char *what) {
    return cai_fail(st, "init-data line %zu: %s", line, what);
}

static cai_status err(const toml *t, cai_status st, const char *what) {
    return err_at(t->line, st, what);
}

static void skip_ws(toml *t) {
    while (peek(t, 0) == ' ' || peek(t, 0) == '\t')
        adv(t, 1);
}

/* After a value or header: blanks, an optional comment, then a newline or
 * the end. */
static cai_status end_of_line(toml *t) {
    skip_ws(t);
    if (peek(t, 0) == '#')
        while (t->n && peek(t, 0) != '\n')
            adv(t, 1);
    if (peek(t, 0) == '\r' && peek(t, 1) == '\n')
        adv(t, 1);
    if (t->n == 0)
        return CAI_OK;
    if (peek(t, 0) != '\n')
        return err(t, CAI_ERR_FORMAT, "expected the end of the line");
    adv(t, 1);
    return CAI_OK;
}

static int hexval(int c) {
    return c >= '0' && c <= '9' ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* A backslash escape of a basic string, at t (after the '\'). */
static cai_status escape(toml *t, buf *out) {
    int c = peek(t, 0);
    const char *simple = "btnfr\"\\";
    const char *to = "\b\t\n\f\r\"\\";
    const char *s = c > 0 ? strchr(simple, c) : NULL;
    if (s) {
        adv(t, 1);
        return buf_append_u8(out, (uint8_t)to[s - simple]);
    }
    if (c != 'u' && c != 'U')
        return err(t, CAI_ERR_FORMAT, "unknown escape in a string");
    size_t digits = c == 'u' ? 4 : 8;
    uint32_t cp = 0;
    for (size_t i = 1; i <= digits; i++) {
        int h = hexval(peek(t, i));
        if (h < 0)
            return err(t, CAI_ERR_FORMAT, "bad \\u escape");
        cp = cp << 4 | (uint32_t)h;
    }
    adv(t, digits + 1);
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return err(t, CAI_ERR_FORMAT, "\\u escape is not a Unicode scalar value");
    uint8_t u[4];
    size_t k;
    if (cp < 0x80) {
        u[0] = (uint8_t)cp;
        k = 1;
    } else if (cp < 0x800) {
        u[0] = (uint8_t)(0xC0 | cp >> 6);
        u[1] = (uint8_t)(0x80 | (cp & 0x3F));
        k = 2;
    } else if (cp < 0x10000) {
        u[0] = (uint8_t)(0xE0 | cp >> 12);
        u[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (uint8_t)(0x80 | (cp & 0x3F));
        k = 3;
    } else {
        u[0] = (uint8_t)(0xF0 | cp >> 18);
        u[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (uint8_t)(0x80 | (cp & 0x3F));
        k = 4;
    }
    return buf_append(out, u, k);
}

/* A control character other than tab may not appear raw in a string (TOML
 * 1.0); in multi-line strings newlines may. */
static int bad_control(int c, int multiline) {
    return (c < 0x20 && c != '\t' && !(multiline && (c == '\n' || c == '\r'))) || c == 0x7F;
}

/* One string of any of TOML's four kinds into |out| (NUL-terminated). */
static cai_status string(toml *t, buf *out) {
    cai_status st = CAI_OK;
    int q = peek(t, 0);
    if (q != '"' && q != '\'')
        return err(t, CAI_ERR_UNSUPPORTED, "only string values are supported");
    int basic = q == '"';
    int multi = starts(t, basic ? "\"\"\"" : "'''");
    adv(t, multi ? 3 : 1);
    if (multi && peek(t, 0) == '\n')
        adv(t, 1); /* a newline right after the opening is trimmed */
    else if (multi && peek(t, 0) == '\r' && peek(t, 1) == '\n')
        adv(t, 2);
    for (;;) {
        int c = peek(t, 0);
        if (c < 0)
            return err(t, CAI_ERR_FORMAT, "unterminated string");
        if (c == q) {
            if (!multi) {
                adv(t, 1);
                break;
            }
            size_t k = 0;
            while (peek(t, k) == q)
                k++;
            if (k >= 3) {
                if (k > 5)
                    return err(t, CAI_ERR_FORMAT, "too many quotes closing a string");
                for (size_t i = 3; i < k && st == CAI_OK; i++)
                    st = buf_append_u8(out, (uint8_t)q);
                adv(t, k);
                break;
            }
            for (size_t i = 0; i < k && st == CAI_OK; i++)
                st = buf_append_u8(out, (uint8_t)q);
            adv(t, k);
        } else if (basic && c == '\\') {
            adv(t, 1);
            int n = peek(t, 0);
            if (multi && (n == ' ' || n == '\t' || n == '\n' || n == '\r')) {
                /* line-ending backslash: trims the newline and blanks after */
                size_t i = 0;
                while (peek(t, i) == ' ' || peek(t, i) == '\t')
                    i++;
                if (peek(t, i) == '\r')
                    i++;
                if (peek(t, i) != '\n')
                    return err(t, CAI_ERR_FORMAT, "a backslash must end the line");
                while (peek(t, 0) == ' ' || peek(t, 0) == '\t' || peek(t, 0) == '\n' ||
                       peek(t, 0) == '\r')
                    adv(t, 1);
            } else {
                st = escape(t, out);
            }
        } else if (!multi && (c == '\n' || c == '\r')) {
            return err(t, CAI_ERR_FORMAT, "unterminated string");
        } else if (bad_control(c, multi)) {
            return err(t, CAI_ERR_FORMAT, "control character in a string");
        } else {
            st = buf_append_u8(out, (uint8_t)c);
            adv(t, 1);
        }
        if (st != CAI_OK)
            return st;
    }
    if (!utf8_valid(out->data, out->len))
        return err(t, CAI_ERR_FORMAT, "a string is not valid UTF-8");
    return buf_terminate(out);
}

/* A key: bare (A-Za-z0-9_-) or a single-line quoted string. Dotted keys
 * are refused. */
static cai_status key(toml *t, buf *out) {
    int c = peek(t, 0);
    if (c == '"' || c == '\'') {
        if (starts(t, "\"\"\"") || starts(t, "'''"))
            return err(t, CAI_ERR_FORMAT, "a key cannot be a multi-line string");
        return string(t, out);
    }
    size_t k = 0;
    while (k < t->n && ((t->p[k] >= 'A' && t->p[k] <= 'Z') || (t->p[k] >= 'a' && t->p[k] <= 'z') ||
                        (t->p[k] >= '0' && t->p[k] <= '9') || t->p[k] == '_' || t->p[k] == '-'))
        k++;
    if (k == 0)
        return err(t, CAI_ERR_FORMAT, "expected a key");
    cai_status st = buf_append(out, t->p, k);
    adv(t, k);
    return st == CAI_OK ? buf_terminate(out) : st;
}

static const struct {
    const char *name;
    const char *md;
} ALGS[] = {{"sha256", "SHA256"}, {"sha384", "SHA384"}, {"sha512", "SHA512"}};

cai_status kbs_initdata_parse(const char *body, size_t len, kbs_initdata *out) {
    memset(out, 0, sizeof(*out));
    if (len > KBS_INITDATA_MAX)
        return cai_fail(CAI_ERR_LIMIT, "init-data is larger than %u bytes", KBS_INITDATA_MAX);
    toml t = {body, len, 1};
    json_t *top = json_object(), *data = json_object();
    buf k, v;
    buf_init(&k, 4096);
    buf_init(&v, KBS_INITDATA_MAX);
    int in_data = 0, seen_data = 0;
    cai_status st = top && data ? CAI_OK : CAI_ERR_NOMEM;
    while (st == CAI_OK && t.n) {
        skip_ws(&t);
        int c = peek(&t, 0);
        if (c == '\n' || c == '\r' || c == '#' || c < 0) {
            st = end_of_line(&t);
            continue;
        }
        if (c == '[') {
            adv(&t, 1);
            skip_ws(&t);
            k.len = 0;
            if (peek(&t, 0) == '[') {
                st = err(&t, CAI_ERR_UNSUPPORTED, "arrays of tables are not supported");
                break;
            }
            if ((st = key(&t, &k)) != CAI_OK)
                break;
            skip_ws(&t);
            if (peek(&t, 0) != ']' || strcmp((const char *)k.data, "data") != 0 || seen_data) {
                st = err(&t, CAI_ERR_UNSUPPORTED, "the only table is one [data]");
                break;
            }
            adv(&t, 1);
            in_data = seen_data = 1;
            st = end_of_line(&t);
            continue;
        }
        k.len = 0;
        v.len = 0;
        size_t line = t.line;
        if ((st = key(&t, &k)) != CAI_OK)
            break;
        skip_ws(&t);
        if (peek(&t, 0) == '.') {
            st = err(&t, CAI_ERR_UNSUPPORTED, "dotted keys are not supported");
            break;
        }
        if (peek(&t, 0) != '=') {
            st = err(&t, CAI_ERR_FORMAT, "expected '=' after a key");
            break;
        }
        adv(&t, 1);
        skip_ws(&t);
        if ((st = string(&t, &v)) != CAI_OK || (st = end_of_line(&t)) != CAI_OK)
            break;
        const char *name = (const char *)k.data;
        json_t *into = in_data ? data : top;
        if (!in_data && strcmp(name, "version") != 0 && strcmp(name, "algorithm") != 0) {
            st = err_at(line, CAI_ERR_UNSUPPORTED,
                        "unknown top-level key (version, algorithm, [data])");
            break;
        }
        if (json_object_get(into, name)) {
            st = err_at(line, CAI_ERR_FORMAT, "a key is defined twice");
            break;
        }
        if (in_data && json_object_size(data) >= KBS_INITDATA_ENTRIES_MAX) {
            st = err_at(line, CAI_ERR_LIMIT, "too many [data] entries");
            break;
        }
        if (strlen(name) != k.len || strlen((const char *)v.data) != v.len) {
            st = err_at(line, CAI_ERR_FORMAT, "a key or value holds a NUL character");
            break;
        }
        if (json_object_set_new(into, name, json_stringn((const char *)v.data, v.len)) != 0)
            st = CAI_ERR_NOMEM;
    }
    const char *ver = json_string_value(json_object_get(top, "version"));
    const char *alg = json_string_value(json_object_get(top, "algorithm"));
    if (st == CAI_OK && (ver == NULL || strcmp(ver, "0.1.0") != 0))
        st = cai_fail(CAI_ERR_UNSUPPORTED, "init-data: version must be \"0.1.0\"");
    if (st == CAI_OK && !seen_data)
        st = cai_fail(CAI_ERR_FORMAT, "init-data: no [data] table");
    size_t ai = 0;
    while (st == CAI_OK && alg && ai < sizeof(ALGS) / sizeof(ALGS[0]) &&
           strcmp(alg, ALGS[ai].name) != 0)
        ai++;
    if (st == CAI_OK && (alg == NULL || ai == sizeof(ALGS) / sizeof(ALGS[0])))
        st = cai_fail(CAI_ERR_UNSUPPORTED,
                      "init-data: algorithm must be \"sha256\", \"sha384\" or \"sha512\"");
    if (st == CAI_OK) {
        uint8_t d[EVP_MAX_MD_SIZE];
        unsigned dn = 0;
        EVP_MD *md = EVP_MD_fetch(NULL, ALGS[ai].md, NULL);
        if (md == NULL || !EVP_Digest(body, len, d, &dn, md, NULL))
            st = cai_fail(CAI_ERR_CRYPTO, "init-data: digest failed");
        EVP_MD_free(md);
        /* regularize_data: zero padded or cut to MRCONFIGID's 48 bytes. */
        memcpy(out->digest, d, dn < KBS_INITDATA_DIGEST_LEN ? dn : KBS_INITDATA_DIGEST_LEN);
        out->algorithm = ALGS[ai].name;
    }
    if (st == CAI_OK) {
        out->data = data;
        data = NULL;
    }
    json_decref(top);
    json_decref(data);
    buf_free(&k);
    buf_free(&v);
    if (st != CAI_OK)
        kbs_initdata_cleanup(out);
    return st;
}

cai_status kbs_initdata_from_json(const json_t *j, kbs_initdata *out) {
    memset(out, 0, sizeof(*out));
    const json_t *fmt = json_object_get(j, "format"), *body = json_object_get(j, "body");
    if (!json_is_object(j) || !json_is_string(fmt) || !json_is_string(body) ||
        json_object_size(j) != 2)
        return cai_fail(CAI_ERR_FORMAT,
                        "init-data must be {\"format\": \"toml\", \"body\": \"<TOML>\"}");
    if (strcmp(json_string_value(fmt), "toml") != 0)
        return cai_fail(CAI_ERR_UNSUPPORTED, "Unsupported initdata format: %.20s (toml)",
                        json_string_value(fmt));
    return kbs_initdata_parse(json_string_value(body), json_string_length(body), out);
}

void kbs_initdata_cleanup(kbs_initdata *d) {
    json_decref(d->data);
    memset(d, 0, sizeof(*d));
}

/* pccs.c - DCAP collateral from a PCS/PCCS v4 API, cached; see pccs.h. */
#include "attest/pccs.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/codec.h"
#include "common/cursor.h"
#include "common/file.h"
#include "net/httpc.h"
#include "common/log.h"

#define PCCS_CACHE_SLOTS 16
#define JSON_DEPTH_MAX 64

typedef struct {
    int used, processor_ca;
    uint8_t fmspc[6];
    tdx_collateral *c;
    time_t expires, stored;
} pccs_slot;

struct pccs {
    char *base, *cache_dir, *root_crl_url, *ca_file;
    int insecure_http;
    long timeout_s;
    pthread_mutex_t mu;
    pccs_slot slots[PCCS_CACHE_SLOTS];
    pccs_stats stats;
};

/* ---- JSON member span ---------------------------------------------------- */

static void skip_ws(cursor *c) {
    while (cursor_len(c) && (c->ptr[0] == ' ' || c->ptr[0] == '\t' || c->ptr[0] == '\n' ||
                             c->ptr[0] == '\r'))
        cursor_skip(c, 1);
}

static int peek(const cursor *c, uint8_t *ch) {
    if (!cursor_len(c))
        return 0;
    *ch = c->ptr[0];
    return 1;
}

/* Skips a string starting at its opening quote; |raw| gets its contents. */
static int skip_string(cursor *c, cursor *raw) {
    uint8_t ch;
    if (!cursor_get_u8(c, &ch) || ch != '"')
        return 0;
    const uint8_t *start = cursor_data(c);
    for (;;) {
        if (!cursor_get_u8(c, &ch) || ch < 0x20)
            return 0;
        if (ch == '"')
            break;
        if (ch == '\\' && !cursor_skip(c, 1))
            return 0;
    }
    cursor_init(raw, start, (size_t)(cursor_data(c) - start - 1));
    return 1;
}

static int skip_value(cursor *c, int depth) {
    uint8_t ch;
    cursor raw;
    if (depth > JSON_DEPTH_MAX || !peek(c, &ch))
        return 0;
    if (ch == '"')
        return skip_string(c, &raw);
    if (ch == '{' || ch == '[') {
        uint8_t close = ch == '{' ? '}' : ']';
        cursor_skip(c, 1);
        skip_ws(c);
        if (peek(c, &ch) && ch == close)
            return cursor_skip(c, 1);
        for (;;) {
            skip_ws(c);
            if (close == '}') {
                if (!skip_string(c, &raw))
                    return 0;
                skip_ws(c);
                if (!cursor_get_u8(c, &ch) || ch != ':')
                    return 0;
                skip_ws(c);
            }
            if (!skip_value(c, depth + 1))
                return 0;
            skip_ws(c);
            if (!cursor_get_u8(c, &ch))
                return 0;
            if (ch == close)
                return 1;
            if (ch != ',')
                return 0;
        }
    }
    /* number, true, false, null: a run of these characters */
    size_t n = 0;
    while (n < cursor_len(c) && strchr("0123456789+-.eEtrufalsn", c->ptr[n]) && c->ptr[n])
        n++;
    return n > 0 && cursor_skip(c, n);
}

cai_status pccs_json_member(const char *json, size_t len, const char *key, size_t *off,
                            size_t *n) {
    cursor c, raw;
    uint8_t ch;
    size_t klen = strlen(key);
    int found = 0;
    cursor_init(&c, json, len);
    skip_ws(&c);
    if (!cursor_get_u8(&c, &ch) || ch != '{')
        return cai_fail(CAI_ERR_FORMAT, "JSON: not an object");
    skip_ws(&c);
    if (peek(&c, &ch) && ch == '}')
        cursor_skip(&c, 1);
    else
        for (;;) {
            skip_ws(&c);
            if (!skip_string(&c, &raw))
                return cai_fail(CAI_ERR_FORMAT, "JSON: bad member name");
            skip_ws(&c);
            if (!cursor_get_u8(&c, &ch) || ch != ':')
                return cai_fail(CAI_ERR_FORMAT, "JSON: expected ':'");
            skip_ws(&c);
            const uint8_t *start = cursor_data(&c);
            if (!skip_value(&c, 1))
                return cai_fail(CAI_ERR_FORMAT, "JSON: bad value");
            if (cursor_len(&raw) == klen && memcmp(cursor_data(&raw), key, klen) == 0) {
                if (found)
                    return cai_fail(CAI_ERR_FORMAT, "JSON: \"%s\" appears twice", key);
                found = 1;
                *off = (size_t)(start - (const uint8_t *)json);
                *n = (size_t)(cursor_data(&c) - start);
            }
            skip_ws(&c);
            if (!cursor_get_u8(&c, &ch) || (ch != ',' && ch != '}'))
                return cai_fail(CAI_ERR_FORMAT, "JSON: expected ',' or '}'");
            if (ch == '}')
                break;
        }
    skip_ws(&c);
    if (cursor_len(&c))
        return cai_fail(CAI_ERR_FORMAT, "JSON: bytes after the object");
    return found ? CAI_OK : cai_fail(CAI_ERR_NOT_FOUND, "JSON: no member \"%s\"", key);
}

static int hexval(char ch) {
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

cai_status pccs_url_decode(const char *in, size_t len, buf *out) {
    buf_init(out, PCCS_HEADER_MAX);
    cai_status st = buf_reserve(out, len + 1);
    for (size_t i = 0; st == CAI_OK && i < len; i++) {
        uint8_t ch = (uint8_t)in[i];
        if (ch == '%') {
            int hi = len - i >= 3 ? hexval(in[i + 1]) : -1;
            int lo = len - i >= 3 ? hexval(in[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return cai_fail(CAI_ERR_FORMAT, "URL-encoded value: bad escape at %zu", i);
            ch = (uint8_t)(hi * 16 + lo);
            i += 2;
        }
        if (ch == 0)
            return cai_fail(CAI_ERR_FORMAT, "URL-encoded value: NUL byte");
        st = buf_append_u8(out, ch);
    }
    if (st == CAI_OK)
        st = buf_terminate(out);
    return st;
}

/* ---- HTTP ------------------------------------------------------------------ */

typedef struct {
    buf body;
    const char *want; /* header to capture, or NULL */
    buf header;       /* its raw (URL-encoded) value */
    int header_seen, too_big;
} http_resp;

static int on_body(void *ud, const void *p, size_t n) {
    http_resp *r = ud;
    if (buf_append(&r->body, p, n) != CAI_OK) {
        r->too_big = 1;
        return 1;
    }
    return 0;
}

static int on_header(void *ud, const char *p, size_t n) {
    http_resp *r = ud;
    size_t k = r->want ? strlen(r->want) : 0;
    if (k && n > k + 1 && strncasecmp(p, r->want, k) == 0 && p[k] == ':') {
        size_t a = k + 1, b = n;
        while (a < b && (p[a] == ' ' || p[a] == '\t'))
            a++;
        while (b > a && p[b - 1] == ' ')
            b--;
        r->header.len = 0;
        if (buf_append(&r->header, p + a, b - a) != CAI_OK) {
            r->too_big = 1;
            return 1;
        }
        r->header_seen++;
    }
    return 0;
}

/* A client for one fetch's requests (they share its connections). */
static cai_status http_client(const pccs *p, httpc **out) {
    httpc_opts o = {.ca_file = p->ca_file, .timeout_s = p->timeout_s,
                    .connect_timeout_s = p->timeout_s, .user_agent = "cai-attest/1",
                    .https_only = !p->insecure_http};
    return httpc_new(&o, out);
}

/* GETs |url| with |c| into |r| (initialised here; free body and header). */
static cai_status http_get(httpc *c, const char *url, const char *want_header, http_resp *r) {
    memset(r, 0, sizeof(*r));
    buf_init(&r->body, PCCS_BODY_MAX);
    buf_init(&r->header, PCCS_HEADER_MAX);
    r->want = want_header;
    httpc_request rq = {.method = "GET", .url = url};
    httpc_sink sink = {.on_header = on_header, .on_data = on_body, .arg = r};
    long code = 0;
    cai_status st = httpc_stream(c, &rq, &sink, &code);
    if (r->too_big)
        return cai_fail(CAI_ERR_LIMIT, "PCCS: the answer to %s is too large", url);
    if (st != CAI_OK) /* a refused TLS handshake too: the PCCS is unavailable, not the quote bad */
        return cai_fail(CAI_ERR_IO, "PCCS: %s", cai_errmsg(st));
    if (code != 200)
        return cai_fail(code == 404 ? CAI_ERR_NOT_FOUND : CAI_ERR_IO,
                        "PCCS: GET %s answered HTTP %ld%s", url, code,
                        code == 404 ? " (unknown FMSPC, or not a PCS/PCCS v4 API?)" : "");
    if (want_header && r->header_seen != 1)
        return cai_fail(CAI_ERR_FORMAT, "PCCS: GET %s: %s header %s", url,
                        r->header_seen ? "more than one" : "no", want_header);
    return CAI_OK;
}

static void resp_free(http_resp *r) {
    buf_free(&r->body);
    buf_free(&r->header);
}

/* ---- assembling collateral ------------------------------------------------- */

static cai_status issuer_chain(const http_resp *r, const char *what, char **out) {
    buf pem;
    cai_status st = pccs_url_decode((const char *)r->header.data, r->header.len, &pem);
    if (st != CAI_OK) {
        buf_free(&pem);
        return cai_fail(st, "PCCS: %s issuer chain: %s", what, cai_errmsg(st));
    }
    if (strstr((const char *)pem.data, "-----BEGIN CERTIFICATE-----") == NULL) {
        buf_free(&pem);
        return cai_fail(CAI_ERR_FORMAT, "PCCS: %s issuer chain is not PEM", what);
    }
    *out = (char *)pem.data; /* NUL-terminated by pccs_url_decode */
    return CAI_OK;
}

/* A CRL as served (DER, PEM or hex) -> DER hex in |hex_out| (malloc'd). */
static cai_status crl_hex(const buf *body, const char *what, char **hex_out) {
    buf der;
    buf_init(&der, PCCS_BODY_MAX);
    cai_status st = CAI_OK;
    const char *s = (const char *)body->data;
    size_t n = body->len;
    if (n > 10 && memcmp(s, "-----BEGIN", 10) == 0) {
        BIO *bio = n <= INT32_MAX ? BIO_new_mem_buf(s, (int)n) : NULL;
        X509_CRL *crl = bio ? PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL) : NULL;
        unsigned char *d = NULL;
        int dn = crl ? i2d_X509_CRL(crl, &d) : -1;
        st = dn > 0 ? buf_append(&der, d, (size_t)dn) : CAI_ERR_FORMAT;
        OPENSSL_free(d);
        X509_CRL_free(crl);
        BIO_free(bio);
    } else if (n > 0 && (uint8_t)s[0] == 0x30) {
        st = buf_append(&der, s, n);
    } else {
        while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
            n--;
        size_t got = 0;
        st = buf_reserve(&der, n / 2 + 1);
        if (st == CAI_OK)
            st = hex_decode(s, n, der.data, n / 2 + 1, &got);
        der.len = st == CAI_OK ? got : 0;
    }
    const unsigned char *dp = der.data;
    X509_CRL *check = st == CAI_OK && der.len <= INT32_MAX
                          ? d2i_X509_CRL(NULL, &dp, (long)der.len)
                          : NULL;
    if (check == NULL || dp != der.data + der.len)
        st = cai_fail(CAI_ERR_FORMAT, "PCCS: the %s is not a CRL (DER, PEM or hex)", what);
    X509_CRL_free(check);
    ERR_clear_error();
    if (st == CAI_OK) {
        *hex_out = malloc(2 * der.len + 1);
        if (*hex_out == NULL)
            st = CAI_ERR_NOMEM;
        else
            hex_encode(*hex_out, der.data, der.len);
    }
    buf_free(&der);
    return st;
}

/* {"<member>":{...},"signature":"hex"} -> the member's exact text and the signature. */
static cai_status signed_body(const http_resp *r, const char *member, const char *what,
                              char **text, const char **sig, json_t **doc) {
    json_error_t e;
    const char *body = (const char *)r->body.data;
    *doc = json_loadb(body, r->body.len, JSON_REJECT_DUPLICATES, &e);
    json_t *m = json_object_get(*doc, member);
    *sig = json_string_value(json_object_get(*doc, "signature"));
    if (!json_is_object(m) || *sig == NULL || strlen(*sig) != 128)
        return cai_fail(CAI_ERR_FORMAT, "PCCS: the %s answer is not {\"%s\":{..},\"signature\":hex}",
                        what, member);
    size_t off, n;
    cai_status st = pccs_json_member(body, r->body.len, member, &off, &n);
    if (st != CAI_OK)
        return cai_fail(CAI_ERR_FORMAT, "PCCS: the %s answer: %s", what, cai_errmsg(st));
    *text = strndup(body + off, n);
    if (*text == NULL)
        return CAI_ERR_NOMEM;
    return CAI_OK;
}

static void fmspc_hex(char out[13], const uint8_t fmspc[6]) {
    static const char digits[] = "0123456789ABCDEF";
    for (int i = 0; i < 6; i++) {
        out[2 * i] = digits[fmspc[i] >> 4];
        out[2 * i + 1] = digits[fmspc[i] & 15];
    }
    out[12] = '\0';
}

/* Fetches all pieces and assembles them into collateral JSON text. */
static cai_status fetch(const pccs *p, const uint8_t fmspc[6], int processor_ca, char **out) {
    char fm[13], url[4096];
    const char *ca = processor_ca ? "processor" : "platform";
    http_resp tcb, qe, pck, root;
    json_t *tcb_doc = NULL, *qe_doc = NULL, *all = NULL;
    char *tcb_text = NULL, *qe_text = NULL, *tcb_chain = NULL, *qe_chain = NULL,
         *pck_chain = NULL, *pck_hex = NULL, *root_hex = NULL;
    const char *tcb_sig = NULL, *qe_sig = NULL;
    httpc *c = NULL;
    cai_status st;
    memset(&tcb, 0, sizeof(tcb));
    memset(&qe, 0, sizeof(qe));
    memset(&pck, 0, sizeof(pck));
    memset(&root, 0, sizeof(root));
    fmspc_hex(fm, fmspc);
    *out = NULL;

    snprintf(url, sizeof(url), "%s/tdx/certification/v4/tcb?fmspc=%s", p->base, fm);
    if ((st = http_client(p, &c)) || (st = http_get(c, url, "TCB-Info-Issuer-Chain", &tcb)) ||
        (st = issuer_chain(&tcb, "TCB info", &tcb_chain)) ||
        (st = signed_body(&tcb, "tcbInfo", "TCB info", &tcb_text, &tcb_sig, &tcb_doc)))
        goto out;
    const char *got_fm = json_string_value(json_object_get(json_object_get(tcb_doc, "tcbInfo"),
                                                           "fmspc"));
    if (got_fm == NULL || strcasecmp(got_fm, fm) != 0) {
        st = cai_fail(CAI_ERR_FORMAT, "PCCS: asked for the TCB info of FMSPC %s, got %.20s", fm,
                      got_fm ? got_fm : "none");
        goto out;
    }
    snprintf(url, sizeof(url), "%s/tdx/certification/v4/qe/identity", p->base);
    if ((st = http_get(c, url, "SGX-Enclave-Identity-Issuer-Chain", &qe)) ||
        (st = issuer_chain(&qe, "QE identity", &qe_chain)) ||
        (st = signed_body(&qe, "enclaveIdentity", "QE identity", &qe_text, &qe_sig, &qe_doc)))
        goto out;
    snprintf(url, sizeof(url), "%s/sgx/certification/v4/pckcrl?ca=%s&encoding=der", p->base, ca);
    if ((st = http_get(c, url, "SGX-PCK-CRL-Issuer-Chain", &pck)) ||
        (st = issuer_chain(&pck, "PCK CRL", &pck_chain)) ||
        (st = crl_hex(&pck.body, "PCK CRL", &pck_hex)))
        goto out;
    if (p->root_crl_url)
        snprintf(url, sizeof(url), "%s", p->root_crl_url);
    else if (strcmp(p->base, PCCS_INTEL_PCS) == 0)
        snprintf(url, sizeof(url), "%s", PCCS_INTEL_ROOT_CRL);
    else
        snprintf(url, sizeof(url), "%s/sgx/certification/v4/rootcacrl", p->base);
    if ((st = http_get(c, url, NULL, &root)) || (st = crl_hex(&root.body, "root CA CRL", &root_hex)))
        goto out;

    all = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "pck_crl_issuer_chain",
                    pck_chain, "root_ca_crl", root_hex, "pck_crl", pck_hex,
                    "tcb_info_issuer_chain", tcb_chain, "tcb_info", tcb_text,
                    "tcb_info_signature", tcb_sig, "qe_identity_issuer_chain", qe_chain,
                    "qe_identity", qe_text, "qe_identity_signature", qe_sig, "fmspc", fm, "ca",
                    ca, "source", p->base);
    *out = all ? json_dumps(all, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    st = *out ? CAI_OK : CAI_ERR_NOMEM;
out:
    json_decref(all);
    json_decref(tcb_doc);
    json_decref(qe_doc);
    free(tcb_text);
    free(qe_text);
    free(tcb_chain);
    free(qe_chain);
    free(pck_chain);
    free(pck_hex);
    free(root_hex);
    resp_free(&tcb);
    resp_free(&qe);
    resp_free(&pck);
    resp_free(&root);
    httpc_free(c);
    return st;
}

/* ---- the provider ------------------------------------------------------------ */

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

void pccs_free(pccs *p) {
    if (p == NULL)
        return;
    for (int i = 0; i < PCCS_CACHE_SLOTS; i++)
        tdx_collateral_free(p->slots[i].c);
    pthread_mutex_destroy(&p->mu);
    free(p->base);
    free(p->cache_dir);
    free(p->root_crl_url);
    free(p->ca_file);
    free(p);
}

cai_status pccs_new(const pccs_config *cfg, pccs **out) {
    *out = NULL;
    const char *base = cfg->base_url;
    if (base && strncmp(base, "https://", 8) != 0 &&
        !(cfg->insecure_http && strncmp(base, "http://", 7) == 0))
        return cai_fail(CAI_ERR_INVALID_ARG,
                        "PCCS URL '%.100s' is not https:// (plain http needs the insecure flag)",
                        base);
    if (base == NULL && cfg->cache_dir == NULL)
        return cai_fail(CAI_ERR_INVALID_ARG, "PCCS: neither a URL nor a collateral directory");
    pccs *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return CAI_ERR_NOMEM;
    pthread_mutex_init(&p->mu, NULL);
    p->insecure_http = cfg->insecure_http;
    p->timeout_s = cfg->timeout_s > 0 ? cfg->timeout_s : 30;
    p->base = dup_or_null(base);
    p->cache_dir = dup_or_null(cfg->cache_dir);
    p->root_crl_url = dup_or_null(cfg->root_crl_url);
    p->ca_file = dup_or_null(cfg->ca_file);
    if ((base && !p->base) || (cfg->cache_dir && !p->cache_dir) ||
        (cfg->root_crl_url && !p->root_crl_url) || (cfg->ca_file && !p->ca_file)) {
        pccs_free(p);
        return CAI_ERR_NOMEM;
    }
    if (p->base) {
        size_t n = strlen(p->base);
        while (n > 0 && p->base[n - 1] == '/')
            p->base[--n] = '\0';
        static const char *const suffixes[] = {"/sgx/certification/v4", "/tdx/certification/v4"};
        for (int i = 0; i < 2; i++) {
            size_t k = strlen(suffixes[i]);
            if (n >= k && strcmp(p->base + n - k, suffixes[i]) == 0)
                p->base[n -= k] = '\0';
        }
    }
    if (p->cache_dir && p->base && mkdir(p->cache_dir, 0700) != 0 && errno != EEXIST) {
        cai_status st = cai_fail(CAI_ERR_IO, "PCCS: cannot create the cache directory %s: %s",
                                 p->cache_dir, strerror(errno));
        pccs_free(p);
        return st;
    }
    *out = p;
    return CAI_OK;
}

void pccs_get_stats(pccs *p, pccs_stats *out) {
    pthread_mutex_lock(&p->mu);
    *out = p->stats;
    pthread_mutex_unlock(&p->mu);
}

static pccs_slot *slot_find(pccs *p, const uint8_t fmspc[6], int processor_ca) {
    for (int i = 0; i < PCCS_CACHE_SLOTS; i++)
        if (p->slots[i].used && p->slots[i].processor_ca == processor_ca &&
            memcmp(p->slots[i].fmspc, fmspc, 6) == 0)
            return &p->slots[i];
    return NULL;
}

static void slot_store(pccs *p, const uint8_t fmspc[6], int processor_ca, tdx_collateral *c,
                       time_t expires) {
    pccs_slot *s = slot_find(p, fmspc, processor_ca);
    for (int i = 0; s == NULL && i < PCCS_CACHE_SLOTS; i++)
        if (!p->slots[i].used)
            s = &p->slots[i];
    if (s == NULL) { /* full: replace the oldest */
        s = &p->slots[0];
        for (int i = 1; i < PCCS_CACHE_SLOTS; i++)
            if (p->slots[i].stored < s->stored)
                s = &p->slots[i];
    }
    tdx_collateral_free(s->c);
    s->used = 1;
    s->processor_ca = processor_ca;
    memcpy(s->fmspc, fmspc, 6);
    s->c = tdx_collateral_ref(c);
    s->expires = expires;
    s->stored = time(NULL);
}

static cai_status cache_path(const pccs *p, const uint8_t fmspc[6], int processor_ca,
                             char *out, size_t cap) {
    char fm[13];
    fmspc_hex(fm, fmspc);
    if ((size_t)snprintf(out, cap, "%s/tdx-%s-%s.json", p->cache_dir, fm,
                         processor_ca ? "processor" : "platform") >= cap)
        return cai_fail(CAI_ERR_LIMIT, "PCCS: cache path too long");
    return CAI_OK;
}

/* Parses collateral text and its window. */
static cai_status load_text(const char *text, size_t n, tdx_collateral **c, time_t *expires) {
    time_t issued;
    cai_status st = tdx_collateral_parse(text, n, c);
    if (st == CAI_OK && (st = tdx_collateral_window(*c, &issued, expires)) != CAI_OK) {
        tdx_collateral_free(*c);
        *c = NULL;
    }
    return st;
}

static cai_status get_locked(pccs *p, const uint8_t fmspc[6], int processor_ca, time_t now,
                             tdx_collateral **out) {
    char fm[13], path[4200];
    fmspc_hex(fm, fmspc);
    pccs_slot *s = slot_find(p, fmspc, processor_ca);
    if (s && (now <= s->expires || p->base == NULL)) {
        p->stats.memory_hits++;
        *out = tdx_collateral_ref(s->c);
        return CAI_OK;
    }
    tdx_collateral *c = NULL;
    time_t expires = 0;
    cai_status st;
    if (p->cache_dir) {
        buf b;
        if ((st = cache_path(p, fmspc, processor_ca, path, sizeof(path))) != CAI_OK)
            return st;
        st = file_read_all(path, 4 * PCCS_BODY_MAX, &b);
        if (st == CAI_OK)
            st = load_text((const char *)b.data, b.len, &c, &expires);
        buf_free(&b);
        if (st == CAI_OK && (now <= expires || p->base == NULL)) {
            p->stats.disk_hits++;
            slot_store(p, fmspc, processor_ca, c, expires);
            *out = c;
            return CAI_OK;
        }
        if (st != CAI_OK && p->base == NULL)
            return cai_fail(CAI_ERR_NOT_FOUND,
                            "no usable collateral for FMSPC %s in %s (offline): %s", fm,
                            p->cache_dir, cai_errmsg(st));
        tdx_collateral_free(c);
        c = NULL;
    }
    char *text = NULL;
    if ((st = fetch(p, fmspc, processor_ca, &text)) != CAI_OK)
        return st;
    if ((st = load_text(text, strlen(text), &c, &expires)) != CAI_OK) {
        st = cai_fail(st, "PCCS: the collateral for FMSPC %s is malformed: %s", fm,
                      cai_errmsg(st));
        free(text);
        return st;
    }
    p->stats.fetches++;
    if (p->cache_dir) {
        file_atomic fa;
        cai_status wst = file_atomic_open(&fa, path, 0644);
        if (wst == CAI_OK && (wst = file_write_full(fa.fd, text, strlen(text))) == CAI_OK)
            wst = file_atomic_commit(&fa);
        else
            file_atomic_abort(&fa);
        if (wst != CAI_OK)
            log_warn("PCCS: could not cache the collateral in %s: %s", path, cai_errmsg(wst));
    }
    free(text);
    if (expires < now)
        log_warn("PCCS: the collateral just fetched for FMSPC %s is already past its nextUpdate",
                 fm);
    slot_store(p, fmspc, processor_ca, c, expires);
    *out = c;
    return CAI_OK;
}

cai_status pccs_get(pccs *p, const uint8_t fmspc[6], int processor_ca, time_t now,
                    tdx_collateral **out) {
    *out = NULL;
    pthread_mutex_lock(&p->mu);
    cai_status st = get_locked(p, fmspc, processor_ca ? 1 : 0, now, out);
    pthread_mutex_unlock(&p->mu);
    return st;
}

cai_status pccs_get_for_quote(pccs *p, const uint8_t *quote, size_t len, time_t now,
                              tdx_collateral **out) {
    tdx_pck_info info;
    *out = NULL;
    cai_status st = tdx_pck_info_get(quote, len, &info);
    if (st != CAI_OK)
        return st;
    return pccs_get(p, info.fmspc, info.processor_ca, now, out);
}

/* verify.c - Intel TDX DCAP quote verification; see verify.h. */
#include "attest/verify.h"

#include "attest/pck_ext.h"
#include "attest/sim.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/buf.h"
#include "common/codec.h"
#include "common/file.h"

#define COLLATERAL_MAX (1u << 20)

/* The subject CN of Intel's TCB Signing certificate, the one signer of TCB
 * info and QE identity under Intel's root (QVL TCBSigningChain). */
#define INTEL_TCB_SIGNING_CN "Intel SGX TCB Signing"

/* SubjectPublicKeyInfo of Intel's SGX Root CA ("CN=Intel SGX Root CA,
 * O=Intel Corporation", SHA-256 fingerprint 44:A0:19:6B:...:74:D3). */
static const uint8_t intel_root_spki[91] = {
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
    0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04, 0x0b,
    0xa9, 0xc4, 0xc0, 0xc0, 0xc8, 0x61, 0x93, 0xa3, 0xfe, 0x23, 0xd6, 0xb0, 0x2c, 0xda,
    0x10, 0xa8, 0xbb, 0xd4, 0xe8, 0x8e, 0x48, 0xb4, 0x45, 0x85, 0x61, 0xa3, 0x6e, 0x70,
    0x55, 0x25, 0xf5, 0x67, 0x91, 0x8e, 0x2e, 0xdc, 0x88, 0xe4, 0x0d, 0x86, 0x0b, 0xd0,
    0xcc, 0x4e, 0xe2, 0x6a, 0xac, 0xc9, 0x88, 0xe5, 0x05, 0xa9, 0x53, 0x55, 0x8c, 0x45,
    0x3f, 0x6b, 0x09, 0x04, 0xae, 0x73, 0x94};

struct tdx_collateral {
    atomic_int refs;
    char *pck_crl_chain, *tcb_chain, *qe_chain; /* PEM */
    buf root_crl, pck_crl;                      /* DER */
    char *tcb_info, *qe_identity;               /* signed JSON text */
    uint8_t tcb_sig[64], qe_sig[64];
    /* parsed once (immutable, shared by concurrent verifications); NULL if
     * malformed, which tdx_verify reports with the check it belongs to */
    X509_CRL *root_crl_x, *pck_crl_x;
    STACK_OF(X509) *tcb_sk, *qe_sk, *pck_crl_sk;
    json_t *tcb_j, *qe_j;
};

static STACK_OF(X509) *pem_chain(const char *pem, size_t len);
static X509_CRL *der_crl(const buf *b);

static const char *const error_names[] = {
    "ok", "quote format", "collateral format", "PCK chain", "root untrusted", "revoked",
    "QE report signature", "QE report binding", "quote signature", "PCK extension",
    "TCB info signature", "TCB info mismatch", "TCB level", "QE identity signature",
    "QE identity mismatch", "collateral expired", "collateral unavailable", "REPORTDATA",
    "debug TD", "collateral not yet valid", "TCB revoked"};
_Static_assert(sizeof(error_names) / sizeof(error_names[0]) == TDX_VERIFY_ERROR_COUNT,
               "every tdx_verify_error has a name");

const char *tdx_verify_error_str(tdx_verify_error e) {
    if ((size_t)e >= sizeof(error_names) / sizeof(error_names[0]))
        return "unknown";
    return error_names[e];
}

/* ---- collateral ---------------------------------------------------------- */

tdx_collateral *tdx_collateral_ref(tdx_collateral *c) {
    atomic_fetch_add(&c->refs, 1);
    return c;
}

void tdx_collateral_free(tdx_collateral *c) {
    if (c == NULL || atomic_fetch_sub(&c->refs, 1) > 1)
        return;
    free(c->pck_crl_chain);
    free(c->tcb_chain);
    free(c->qe_chain);
    free(c->tcb_info);
    free(c->qe_identity);
    buf_free(&c->root_crl);
    buf_free(&c->pck_crl);
    X509_CRL_free(c->root_crl_x);
    X509_CRL_free(c->pck_crl_x);
    sk_X509_pop_free(c->tcb_sk, X509_free);
    sk_X509_pop_free(c->qe_sk, X509_free);
    sk_X509_pop_free(c->pck_crl_sk, X509_free);
    json_decref(c->tcb_j);
    json_decref(c->qe_j);
    free(c);
}

static cai_status get_str(json_t *j, const char *key, char **out) {
    const char *s = json_string_value(json_object_get(j, key));
    if (s == NULL)
        return cai_fail(CAI_ERR_FORMAT, "collateral: missing string \"%s\"", key);
    *out = strdup(s);
    return *out ? CAI_OK : CAI_ERR_NOMEM;
}

static cai_status get_hex(json_t *j, const char *key, buf *out, size_t exact) {
    const char *s = json_string_value(json_object_get(j, key));
    if (s == NULL)
        return cai_fail(CAI_ERR_FORMAT, "collateral: missing string \"%s\"", key);
    size_t n = strlen(s), got;
    cai_status st = buf_reserve(out, n / 2 + 1);
    if (st == CAI_OK)
        st = hex_decode(s, n, out->data, n / 2 + 1, &got);
    if (st != CAI_OK)
        return cai_fail(CAI_ERR_FORMAT, "collateral: \"%s\" is not hex", key);
    out->len = got;
    if (exact && got != exact)
        return cai_fail(CAI_ERR_FORMAT, "collateral: \"%s\" is %zu bytes, want %zu", key, got,
                        exact);
    return CAI_OK;
}

cai_status tdx_collateral_parse(const char *json, size_t len, tdx_collateral **out) {
    *out = NULL;
    json_error_t e;
    json_t *j = json_loadb(json, len, 0, &e);
    if (!json_is_object(j)) {
        json_decref(j);
        return cai_fail(CAI_ERR_FORMAT, "collateral: not a JSON object (line %d: %s)", e.line,
                        e.text);
    }
    tdx_collateral *c = calloc(1, sizeof(*c));
    cai_status st = CAI_ERR_NOMEM;
    buf sig;
    buf_init(&sig, 0);
    if (c == NULL)
        goto out;
    atomic_init(&c->refs, 1);
    buf_init(&c->root_crl, 0);
    buf_init(&c->pck_crl, 0);
    if ((st = get_str(j, "pck_crl_issuer_chain", &c->pck_crl_chain)) ||
        (st = get_str(j, "tcb_info_issuer_chain", &c->tcb_chain)) ||
        (st = get_str(j, "qe_identity_issuer_chain", &c->qe_chain)) ||
        (st = get_str(j, "tcb_info", &c->tcb_info)) ||
        (st = get_str(j, "qe_identity", &c->qe_identity)) ||
        (st = get_hex(j, "root_ca_crl", &c->root_crl, 0)) ||
        (st = get_hex(j, "pck_crl", &c->pck_crl, 0)))
        goto out;
    if ((st = get_hex(j, "tcb_info_signature", &sig, 64)))
        goto out;
    memcpy(c->tcb_sig, sig.data, 64);
    sig.len = 0;
    if ((st = get_hex(j, "qe_identity_signature", &sig, 64)))
        goto out;
    memcpy(c->qe_sig, sig.data, 64);
    json_error_t je;
    c->root_crl_x = der_crl(&c->root_crl);
    c->pck_crl_x = der_crl(&c->pck_crl);
    c->tcb_sk = pem_chain(c->tcb_chain, strlen(c->tcb_chain));
    c->qe_sk = pem_chain(c->qe_chain, strlen(c->qe_chain));
    c->pck_crl_sk = pem_chain(c->pck_crl_chain, strlen(c->pck_crl_chain));
    c->tcb_j = json_loads(c->tcb_info, 0, &je);
    c->qe_j = json_loads(c->qe_identity, 0, &je);
    ERR_clear_error();
    *out = c;
    c = NULL;
    st = CAI_OK;
out:
    buf_free(&sig);
    tdx_collateral_free(c);
    json_decref(j);
    return st;
}

cai_status tdx_collateral_load(const char *path, tdx_collateral **out) {
    *out = NULL;
    char p[4096];
    struct stat s;
    if (stat(path, &s) != 0)
        return cai_fail(CAI_ERR_IO, "collateral: cannot stat %s", path);
    if (S_ISDIR(s.st_mode)) {
        if ((size_t)snprintf(p, sizeof(p), "%s/collateral.json", path) >= sizeof(p))
            return cai_fail(CAI_ERR_LIMIT, "collateral: path too long");
        path = p;
    }
    buf b;
    cai_status st = file_read_all(path, COLLATERAL_MAX, &b);
    if (st != CAI_OK)
        return st;
    st = tdx_collateral_parse((const char *)b.data, b.len, out);
    buf_free(&b);
    return st;
}

/* ---- helpers ------------------------------------------------------------- */

static cai_status vfail(tdx_verify_result *res, tdx_verify_error e, cai_status st,
                        const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static cai_status vfail(tdx_verify_result *res, tdx_verify_error e, cai_status st,
                        const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap); /* an argument may be cai_errmsg's */
    va_end(ap);
    res->error = e;
    return cai_fail(st, "tdx verify: %s: %s", tdx_verify_error_str(e), msg);
}

static STACK_OF(X509) *pem_chain(const char *pem, size_t len) {
    if (len > INT32_MAX)
        return NULL;
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    STACK_OF(X509) *sk = sk_X509_new_null();
    X509 *x;
    while (bio && sk && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
        if (!sk_X509_push(sk, x)) {
            X509_free(x);
            break;
        }
    ERR_clear_error();
    BIO_free(bio);
    if (sk && sk_X509_num(sk) == 0) {
        sk_X509_free(sk);
        sk = NULL;
    }
    return sk;
}

/* Is |pem| exactly the canonical PEM of the certificates in |sk| (as
 * PEM_write makes it; the final newline may be missing), optionally followed
 * by one NUL as DCAP writes it? Then no byte of the chain is outside what
 * the certificate signatures cover (no whitespace, base64 slack or trailing
 * garbage). */
static int pem_canonical(STACK_OF(X509) *sk, const char *pem, size_t len) {
    BIO *bio = BIO_new(BIO_s_mem());
    int ok = bio != NULL;
    for (int i = 0; ok && i < sk_X509_num(sk); i++)
        ok = PEM_write_bio_X509(bio, sk_X509_value(sk, i)) == 1;
    char *p = NULL;
    long n = ok ? BIO_get_mem_data(bio, &p) : -1;
    if (len > 0 && pem[len - 1] == '\0')
        len--;
    ok = n > 0 && ((size_t)n == len || ((size_t)n == len + 1 && p[len] == '\n')) &&
         memcmp(p, pem, len) == 0;
    BIO_free(bio);
    return ok;
}

static int spki_eq(X509 *x, const uint8_t *spki, size_t n) {
    unsigned char *der = NULL;
    int len = i2d_PUBKEY(X509_get0_pubkey(x), &der);
    int eq = len > 0 && (size_t)len == n && memcmp(der, spki, n) == 0;
    OPENSSL_free(der);
    return eq;
}

/* The CRL in |b|, which must hold exactly one DER CRL (no trailing bytes). */
static X509_CRL *der_crl(const buf *b) {
    const unsigned char *p = b->data;
    X509_CRL *crl = b->len <= INT32_MAX ? d2i_X509_CRL(NULL, &p, (long)b->len) : NULL;
    if (crl && p != b->data + b->len) {
        X509_CRL_free(crl);
        crl = NULL;
    }
    return crl;
}

/* Is every CRL in |crls| signed by the key of the certificate in |chain|
 * that it names as its issuer? (To tell a stale CRL from a forged one:
 * OpenSSL checks a CRL's dates before its signature.) */
static int crls_signed_in(STACK_OF(X509_CRL) *crls, STACK_OF(X509) *chain) {
    for (int k = 0; k < sk_X509_CRL_num(crls); k++) {
        X509_CRL *crl = sk_X509_CRL_value(crls, k);
        int ok = 0;
        for (int i = 0; !ok && i < sk_X509_num(chain); i++) {
            X509 *x = sk_X509_value(chain, i);
            ok = X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(x)) == 0 &&
                 X509_CRL_verify(crl, X509_get0_pubkey(x)) == 1;
        }
        if (!ok)
            return 0;
    }
    return 1;
}

/* Verifies |chain| (leaf first, root last) up to |root_spki| at |now| with
 * |crls| (may be empty). CAI_OK, else CAI_ERR_AUTH with res->error the
 * failed check (|chain_err| when it is the chain itself) and the detail,
 * after |what| (a prefix naming the chain, may be ""), in cai_errmsg. */
static cai_status verify_chain(STACK_OF(X509) *chain, const uint8_t *root_spki, size_t root_len,
                               STACK_OF(X509_CRL) *crls, time_t now, tdx_verify_error chain_err,
                               const char *what, tdx_verify_result *res) {
    int n = sk_X509_num(chain);
    X509 *root = sk_X509_value(chain, n - 1);
    if (!spki_eq(root, root_spki, root_len))
        return vfail(res, TDX_VERIFY_ROOT_UNTRUSTED, CAI_ERR_AUTH,
                     "%schain ends at a root whose key is not the trusted one", what);
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    cai_status st = CAI_OK;
    int ok = store && ctx && untrusted && X509_STORE_add_cert(store, root);
    for (int i = 1; ok && i < n - 1; i++)
        ok = sk_X509_push(untrusted, sk_X509_value(chain, i)) > 0;
    if (ok && X509_STORE_CTX_init(ctx, store, sk_X509_value(chain, 0), untrusted)) {
        X509_VERIFY_PARAM *vp = X509_STORE_CTX_get0_param(ctx);
        X509_VERIFY_PARAM_set_time(vp, now);
        /* the root's own signature too: every byte of the chain counts */
        X509_VERIFY_PARAM_set_flags(vp, X509_V_FLAG_CHECK_SS_SIGNATURE);
        if (crls && sk_X509_CRL_num(crls) > 0) {
            X509_STORE_CTX_set0_crls(ctx, crls);
            X509_VERIFY_PARAM_set_flags(vp, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
        }
        if (X509_verify_cert(ctx) != 1) {
            int err = X509_STORE_CTX_get_error(ctx);
            const char *detail = X509_verify_cert_error_string(err);
            tdx_verify_error e = chain_err;
            if (err == X509_V_ERR_CERT_REVOKED)
                e = TDX_VERIFY_REVOKED;
            else if ((err == X509_V_ERR_CRL_HAS_EXPIRED || err == X509_V_ERR_CRL_NOT_YET_VALID) &&
                     !crls_signed_in(crls, chain))
                detail = "a CRL's signature does not verify with its issuer's key";
            else if (err == X509_V_ERR_CERT_HAS_EXPIRED || err == X509_V_ERR_CRL_HAS_EXPIRED)
                e = TDX_VERIFY_COLLATERAL_EXPIRED;
            else if (err == X509_V_ERR_CERT_NOT_YET_VALID || err == X509_V_ERR_CRL_NOT_YET_VALID)
                e = TDX_VERIFY_COLLATERAL_NOT_YET_VALID;
            st = vfail(res, e, CAI_ERR_AUTH, "%s%s", what, detail);
        }
    } else
        st = vfail(res, chain_err, CAI_ERR_AUTH, "%scannot set up chain verification", what);
    ERR_clear_error();
    sk_X509_free(untrusted);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return st;
}

static int verify_raw(EVP_PKEY *key, const void *msg, size_t n, const uint8_t sig[64]) {
    ECDSA_SIG *s = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, 32, NULL), *ss = BN_bin2bn(sig + 32, 32, NULL);
    unsigned char *der = NULL;
    int dlen = -1;
    if (s && r && ss && ECDSA_SIG_set0(s, r, ss)) {
        r = ss = NULL;
        dlen = i2d_ECDSA_SIG(s, &der);
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = dlen > 0 && md && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
             EVP_DigestVerify(md, der, (size_t)dlen, msg, n) == 1;
    ERR_clear_error();
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    BN_free(r);
    BN_free(ss);
    ECDSA_SIG_free(s);
    return ok;
}

static EVP_PKEY *raw_p256(const uint8_t xy[64]) {
    uint8_t pt[65] = {0x04};
    memcpy(pt + 1, xy, 64);
    EVP_PKEY *k = NULL;
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"prime256v1", 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt)),
        OSSL_PARAM_construct_end()};
    if (c == NULL || EVP_PKEY_fromdata_init(c) != 1 ||
        EVP_PKEY_fromdata(c, &k, EVP_PKEY_PUBLIC_KEY, params) != 1)
        k = NULL;
    ERR_clear_error();
    EVP_PKEY_CTX_free(c);
    return k;
}

/* ---- TCB info / QE identity ---------------------------------------------- */

static int parse_time(const char *s, time_t *out) {
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *end = s ? strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm) : NULL;
    if (end == NULL || *end)
        return 0;
    *out = timegm(&tm);
    return 1;
}

static const char *jstr(json_t *o, const char *key) {
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static int hex_get(const char *hex, uint8_t *p, size_t n) {
    size_t got;
    return hex && hex_decode(hex, strlen(hex), p, n, &got) == CAI_OK && got == n;
}

static int hex_eq(const char *hex, const uint8_t *p, size_t n) {
    uint8_t b[64];
    return n <= sizeof(b) && hex_get(hex, b, n) && memcmp(b, p, n) == 0;
}

static int svn_at(json_t *arr, size_t i, unsigned *out) {
    json_t *v = json_object_get(json_array_get(arr, i), "svn");
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 255)
        return 0;
    *out = (unsigned)json_integer_value(v);
    return 1;
}

static void copy_str(char *dst, size_t cap, const char *s) {
    snprintf(dst, cap, "%s", s ? s : "");
}

/* Checks the window of a TCB info / QE identity object. */
static cai_status check_window(json_t *j, const char *what, time_t now, tdx_verify_result *res) {
    time_t issue, next;
    if (!parse_time(json_string_value(json_object_get(j, "issueDate")), &issue) ||
        !parse_time(json_string_value(json_object_get(j, "nextUpdate")), &next))
        return vfail(res, TDX_VERIFY_COLLATERAL_FORMAT, CAI_ERR_FORMAT, "%s", what);
    if (now < issue) {
        res->error = TDX_VERIFY_COLLATERAL_NOT_YET_VALID;
        return cai_fail(CAI_ERR_AUTH,
                        "tdx verify: collateral not yet valid: %s issued %s (valid to %s), after "
                        "the verification time: check the clock or --at",
                        what, jstr(j, "issueDate"), jstr(j, "nextUpdate"));
    }
    if (now > next) {
        res->error = TDX_VERIFY_COLLATERAL_EXPIRED;
        return cai_fail(CAI_ERR_AUTH,
                        "tdx verify: collateral expired: %s valid %s to %s: fetch fresh collateral",
                        what, jstr(j, "issueDate"), jstr(j, "nextUpdate"));
    }
    if (res->collateral_expires == 0 || next < res->collateral_expires)
        res->collateral_expires = next;
    return CAI_OK;
}

/* TCB statuses a TCB info / QE identity level may carry, best first. */
static const char *const statuses[] = {"UpToDate",
                                       "SWHardeningNeeded",
                                       "ConfigurationNeeded",
                                       "ConfigurationAndSWHardeningNeeded",
                                       "OutOfDate",
                                       "OutOfDateConfigurationNeeded",
                                       "Revoked"};

static int status_known(const char *s) {
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
        if (strcmp(s, statuses[i]) == 0)
            return 1;
    return 0;
}

/* QVL convergeTcbStatusWithTdxModuleStatus / ...WithQeTcbStatus: an
 * OutOfDate module or QE makes an up-to-date (or only SW-hardening) level
 * OutOfDate and a configuration-needed one OutOfDateConfigurationNeeded; a
 * Revoked one revokes; otherwise the level's status stands. */
static const char *converge(const char *level, const char *other) {
    if (strcmp(other, "OutOfDate") == 0) {
        if (strcmp(level, "UpToDate") == 0 || strcmp(level, "SWHardeningNeeded") == 0)
            return "OutOfDate";
        if (strcmp(level, "ConfigurationNeeded") == 0 ||
            strcmp(level, "ConfigurationAndSWHardeningNeeded") == 0)
            return "OutOfDateConfigurationNeeded";
    }
    if (strcmp(other, "Revoked") == 0)
        return "Revoked";
    return level;
}

/* Appends the "advisoryIDs" of TCB level |lv| (optional) to |res|, each once. */
static cai_status add_advisories(json_t *lv, tdx_verify_result *res) {
    json_t *ids = json_object_get(lv, "advisoryIDs");
    if (ids == NULL)
        return CAI_OK;
    if (!json_is_array(ids))
        return vfail(res, TDX_VERIFY_COLLATERAL_FORMAT, CAI_ERR_FORMAT, "advisoryIDs is no array");
    for (size_t i = 0; i < json_array_size(ids); i++) {
        const char *id = json_string_value(json_array_get(ids, i));
        if (id == NULL || strlen(id) == 0 || strlen(id) >= TDX_ADVISORY_LEN)
            return vfail(res, TDX_VERIFY_COLLATERAL_FORMAT, CAI_ERR_FORMAT, "bad advisory ID");
        int seen = 0;
        for (size_t k = 0; k < res->n_advisory_ids && !seen; k++)
            seen = strcmp(res->advisory_ids[k], id) == 0;
        if (seen)
            continue;
        if (res->n_advisory_ids == TDX_ADVISORY_MAX)
            return vfail(res, TDX_VERIFY_COLLATERAL_FORMAT, CAI_ERR_LIMIT, "too many advisory IDs");
        copy_str(res->advisory_ids[res->n_advisory_ids++], TDX_ADVISORY_LEN, id);
    }
    return CAI_OK;
}

/* Checks a SEAM signer and attributes against an identity {mrsigner,
 * attributes, attributesMask}. */
static cai_status match_seam(json_t *m, const tdx_td_report *b, const char *what,
                             tdx_verify_result *res) {
    uint8_t attr[8], mask[8];
    if (!hex_eq(jstr(m, "mrsigner"), b->mr_signer_seam, 48) ||
        !hex_get(jstr(m, "attributes"), attr, 8) || !hex_get(jstr(m, "attributesMask"), mask, 8))
        return vfail(res, TDX_VERIFY_TCB_LEVEL, CAI_ERR_AUTH, "%.80s: MRSIGNERSEAM mismatch",
                     what);
    for (int i = 0; i < 8; i++)
        if ((b->seam_attributes[i] & mask[i]) != (attr[i] & mask[i]))
            return vfail(res, TDX_VERIFY_TCB_LEVEL, CAI_ERR_AUTH,
                         "%.80s: SEAMATTRIBUTES mismatch", what);
    return CAI_OK;
}

/* TDX module identity (QVL TdxModuleCheck): for module major version
 * TEE_TCB_SVN[1] > 0 the identity "TDX_<version>" must match the SEAM
 * signer and attributes, and its first level with isvsvn <= TEE_TCB_SVN[0]
 * gives the module's status; version 0 is checked against "tdxModule". */
static cai_status match_module(json_t *tcb, const tdx_quote *q, tdx_verify_result *res) {
    const tdx_td_report *b = &q->body;
    if (b->tee_tcb_svn[1] == 0) {
        json_t *m = json_object_get(tcb, "tdxModule");
        return m ? match_seam(m, b, "TDX module", res) : CAI_OK;
    }
    char id[16];
    snprintf(id, sizeof(id), "TDX_%02X", b->tee_tcb_svn[1]);
    json_t *ids = json_object_get(tcb, "tdxModuleIdentities"), *m = NULL;
    for (size_t i = 0; i < json_array_size(ids); i++)
        if (strcasecmp(jstr(json_array_get(ids, i), "id"), id) == 0)
            m = json_array_get(ids, i);
    if (m == NULL)
        return vfail(res, TDX_VERIFY_TCB_LEVEL, CAI_ERR_NOT_FOUND,
                     "no TDX module identity for this module version");
    cai_status st = match_seam(m, b, "TDX module identity", res);
    if (st != CAI_OK)
        return st;
    json_t *lv = json_object_get(m, "tcbLevels");
    for (size_t i = 0; i < json_array_size(lv); i++) {
        json_t *l = json_array_get(lv, i);
        json_t *isv = json_object_get(json_object_get(l, "tcb"), "isvsvn");
        if (json_is_integer(isv) && json_integer_value(isv) <= b->tee_tcb_svn[0]) {
            const char *status = jstr(l, "tcbStatus");
            if (!status_known(status))
                return vfail(res, TDX_VERIFY_COLLATERAL_FORMAT, CAI_ERR_FORMAT,
                             "TDX module level with an unknown tcbStatus");
            copy_str(res->tdx_module_status, sizeof(res->tdx_module_status), status);
            return add_advisories(l, res);
        }
    }
    return vfail(res, TDX_VERIFY_TCB_LEVEL, CAI_ERR_NOT_FOUND,
                 "TDX module SVN below every module TCB level");
}

/* Do TCB level |lv|'s components admit the platform? (QVL matchTcbLevels:
 * every SGX component and PCESVN of the PCK certificate; every TEE_TCB_SVN
 * byte, from byte 2 when the module version byte is set - the module's own
 * SVN is judged by its identity.) Sets |*sgx|, |*tdx|; 0 on bad collateral. */
static int level_admits(json_t *lv, const tdx_quote *q, const pck_ext *x, int *sgx, int *tdx) {
    json_t *t = json_object_get(lv, "tcb");
    json_t *sc = json_object_get(t, "sgxtcbcomponents"), *tc = json_object_get(t, "tdxtcbcomponents"),
           *pce = json_object_get(t, "pcesvn");
    if (json_array_size(sc) != 16 || json_array_size(tc) != 16 || !json_is_integer(pce))
        return 0;
    *sgx = (json_int_t)x->pce_svn >= json_integer_value(pce);
    *tdx = 1;
    for (size_t k = 0; k < 16; k++) {
        unsigned vs, vt;
        if (!svn_at(sc, k, &vs) || !svn_at(tc, k, &vt))
            return 0;
        if (x->sgx_tcb[k] < vs)
            *sgx = 0;
        if ((k >= 2 || q->body.tee_tcb_svn[1] == 0) && q->body.tee_tcb_svn[k] < vt)
            *tdx = 0;
    }
    return 1;
}

static cai_status match_tcb(const tdx_collateral *coll, const tdx_quote *q, const pck_ext *x,
                            time_t now, tdx_verify_result *res) {
    json_t *tcb = coll->tcb_j;
    cai_status st;
    if (!json_is_object(tcb)) {
        st = vfail(res, TDX_VERIFY_COLLATERAL_FORMAT, CAI_ERR_FORMAT, "tcb_info is not JSON");
        goto out;
    }
    if ((st = check_window(tcb, "TCB info", now, res)))
        goto out;
    json_t *version = json_object_get(tcb, "version");
    if (strcmp(jstr(tcb, "id"), "TDX") != 0 || !json_is_integer(version) ||
        json_integer_value(version) < 3 || !hex_eq(jstr(tcb, "fmspc"), x->fmspc, 6) ||
        !hex_eq(jstr(tcb, "pceId"), x->pce_id, 2)) {
        st = vfail(res, TDX_VERIFY_TCB_INFO_MISMATCH, CAI_ERR_AUTH,
                   "TCB info is not TDX TCB info (v3+) for this FMSPC and PCE ID");
        goto out;
    }
    /* Intel's TDX level matching (QVL TcbLevelCheck, levels in the order
     * given, best first): the SGX level is the first level the PCK
     * certificate's SGX components and PCESVN meet; the TDX level is the
     * first such level that TEE_TCB_SVN meets too. */
    json_t *levels = json_object_get(tcb, "tcbLevels"), *sgx_level = NULL, *tdx_level = NULL;
    for (size_t i = 0; i < json_array_size(levels) && !tdx_level; i++) {
        json_t *lv = json_array_get(levels, i);
        int sgx, tdx;
        if (!level_admits(lv, q, x, &sgx, &tdx)) {
            st = vfail(res, TDX_VERIFY_COLLATERAL_FORMAT, CAI_ERR_FORMAT, "bad TCB level");
            goto out;
        }
        if (!sgx)
            continue;
        if (!sgx_level)
            sgx_level = lv;
        if (tdx)
            tdx_level = lv;
    }
    if (!sgx_level) {
        st = vfail(res, TDX_VERIFY_TCB_LEVEL, CAI_ERR_NOT_FOUND,
                   "the PCK certificate's SGX TCB is below every TCB level (TCB not supported)");
        goto out;
    }
    if (!tdx_level) {
        st = vfail(res, TDX_VERIFY_TCB_LEVEL, CAI_ERR_NOT_FOUND,
                   "TEE_TCB_SVN is below every TDX TCB level (TCB not supported)");
        goto out;
    }
    const char *status = jstr(tdx_level, "tcbStatus");
    if (!status_known(status)) {
        st = vfail(res, TDX_VERIFY_COLLATERAL_FORMAT, CAI_ERR_FORMAT,
                   "TCB level without a known tcbStatus");
        goto out;
    }
    copy_str(res->platform_tcb_status, sizeof(res->platform_tcb_status), status);
    copy_str(res->tcb_date, sizeof(res->tcb_date), jstr(tdx_level, "tcbDate"));
    if ((st = add_advisories(tdx_level, res)) || (st = match_module(tcb, q, res)))
        goto out;
    st = CAI_OK;
out:
    return st;
}

static cai_status match_qe(const tdx_collateral *coll, const tdx_quote *q, time_t now,
                           tdx_verify_result *res) {
    json_t *j = coll->qe_j;
    const tdx_qe_report *r = &q->qe_report;
    cai_status st;
    if (!json_is_object(j)) {
        st = vfail(res, TDX_VERIFY_COLLATERAL_FORMAT, CAI_ERR_FORMAT, "qe_identity is not JSON");
        goto out;
    }
    if ((st = check_window(j, "QE identity", now, res)))
        goto out;
    uint8_t misc[4], misc_mask[4], attr[16], attr_mask[16], m[4];
    json_t *prod = json_object_get(j, "isvprodid");
    if (strcmp(jstr(j, "id"), "TD_QE") != 0 || !hex_get(jstr(j, "miscselect"), misc, 4) ||
        !hex_get(jstr(j, "miscselectMask"), misc_mask, 4) ||
        !hex_get(jstr(j, "attributes"), attr, 16) ||
        !hex_get(jstr(j, "attributesMask"), attr_mask, 16) || !json_is_integer(prod)) {
        st = vfail(res, TDX_VERIFY_COLLATERAL_FORMAT, CAI_ERR_FORMAT, "bad TD_QE identity");
        goto out;
    }
    /* miscselect is a u32 printed big-endian; the report holds it little-endian. */
    m[0] = (uint8_t)(r->misc_select >> 24);
    m[1] = (uint8_t)(r->misc_select >> 16);
    m[2] = (uint8_t)(r->misc_select >> 8);
    m[3] = (uint8_t)r->misc_select;
    int ok = hex_eq(jstr(j, "mrsigner"), r->mr_signer, 32) &&
             json_integer_value(prod) == r->isv_prod_id;
    for (int i = 0; ok && i < 4; i++)
        ok = (m[i] & misc_mask[i]) == (misc[i] & misc_mask[i]);
    for (int i = 0; ok && i < 16; i++)
        ok = (r->attributes[i] & attr_mask[i]) == (attr[i] & attr_mask[i]);
    if (!ok) {
        st = vfail(res, TDX_VERIFY_QE_IDENTITY_MISMATCH, CAI_ERR_AUTH,
                   "QE report does not match the TD_QE identity");
        goto out;
    }
    json_t *lv = json_object_get(j, "tcbLevels");
    for (size_t i = 0; i < json_array_size(lv); i++) {
        json_t *l = json_array_get(lv, i);
        json_t *isv = json_object_get(json_object_get(l, "tcb"), "isvsvn");
        if (json_is_integer(isv) && json_integer_value(isv) <= r->isv_svn) {
            const char *status = jstr(l, "tcbStatus");
            if (!status_known(status)) {
                st = vfail(res, TDX_VERIFY_COLLATERAL_FORMAT, CAI_ERR_FORMAT,
                           "QE identity level with an unknown tcbStatus");
                goto out;
            }
            copy_str(res->qe_tcb_status, sizeof(res->qe_tcb_status), status);
            st = add_advisories(l, res);
            goto out;
        }
    }
    st = vfail(res, TDX_VERIFY_QE_IDENTITY_MISMATCH, CAI_ERR_NOT_FOUND,
               "QE SVN below every QE identity level");
out:
    return st;
}

/* Is the subject of |x| exactly one common name, and that |cn|? */
static int subject_cn_is(X509 *x, const char *cn) {
    X509_NAME *name = X509_get_subject_name(x);
    int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (i < 0 || X509_NAME_get_index_by_NID(name, NID_commonName, i) >= 0)
        return 0;
    const ASN1_STRING *v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
    return (size_t)ASN1_STRING_length(v) == strlen(cn) &&
           memcmp(ASN1_STRING_get0_data(v), cn, strlen(cn)) == 0;
}

/* Verifies a signed collateral item as Intel's QVL does (TCBSigningChain):
 * its issuer chain |ch| (parsed from |chain_pem|, which must be exactly its
 * PEM) is exactly [signer, root], the signer is the TCB Signing certificate
 * (subject CN |signer_cn|, not a CA) and chains to the pinned root; then
 * |sig| over |text| verifies with the signer's key. CAI_OK, else
 * CAI_ERR_AUTH with res->error the failed check (|sig_err| for this item). */
static cai_status verify_signed(STACK_OF(X509) *ch, const char *chain_pem, const char *text,
                                const uint8_t sig[64], const char *signer_cn,
                                const uint8_t *root, size_t root_len, STACK_OF(X509_CRL) *crls,
                                time_t now, tdx_verify_error sig_err, tdx_verify_result *res) {
    cai_status st;
    X509 *signer = ch ? sk_X509_value(ch, 0) : NULL;
    if (ch == NULL || sk_X509_num(ch) != 2)
        st = vfail(res, sig_err, CAI_ERR_AUTH, "issuer chain is not two PEM certificates (the "
                   "TCB Signing certificate and the root)");
    else if (!pem_canonical(ch, chain_pem, strlen(chain_pem)))
        st = vfail(res, sig_err, CAI_ERR_AUTH,
                   "issuer chain is not exactly the PEM of its certificates");
    else if (!subject_cn_is(signer, signer_cn) || X509_check_ca(signer) != 0)
        st = vfail(res, sig_err, CAI_ERR_AUTH, "the signer is not the TCB Signing certificate "
                   "(subject CN \"%s\", not a CA)", signer_cn);
    else if ((st = verify_chain(ch, root, root_len, crls, now, sig_err, "", res)) == CAI_OK &&
             !verify_raw(X509_get0_pubkey(signer), text, strlen(text), sig))
        st = vfail(res, sig_err, CAI_ERR_AUTH, "signature does not verify");
    ERR_clear_error();
    return st;
}

/* Do |a| and |b| have the same subject and the same public key? */
static int same_subject_and_key(X509 *a, X509 *b) {
    return X509_NAME_cmp(X509_get_subject_name(a), X509_get_subject_name(b)) == 0 &&
           EVP_PKEY_eq(X509_get0_pubkey(a), X509_get0_pubkey(b)) == 1;
}

/* Checks the collateral's pck_crl_issuer_chain: exactly the canonical PEM of
 * [CA, root], verified to the pinned root (with the root CA CRL); the CA is
 * the one that issued the PCK leaf (|pck_ca|, subject and key), and it
 * issued and signed the PCK CRL. CAI_OK, else CAI_ERR_AUTH with res->error
 * the failed check. */
static cai_status verify_pck_crl_chain(const tdx_collateral *coll, X509 *pck_ca,
                                       const uint8_t *root, size_t root_len,
                                       STACK_OF(X509_CRL) *root_crls, time_t now,
                                       tdx_verify_result *res) {
    STACK_OF(X509) *ch = coll->pck_crl_sk;
    if (ch == NULL || sk_X509_num(ch) != 2 ||
        !pem_canonical(ch, coll->pck_crl_chain, strlen(coll->pck_crl_chain)))
        return vfail(res, TDX_VERIFY_COLLATERAL_FORMAT, CAI_ERR_AUTH,
                     "pck_crl_issuer_chain is not exactly the PEM of two certificates (the PCK "
                     "CA and the root)");
    cai_status st = verify_chain(ch, root, root_len, root_crls, now, TDX_VERIFY_PCK_CHAIN,
                                 "pck_crl_issuer_chain: ", res);
    if (st != CAI_OK)
        return st;
    X509 *ca = sk_X509_value(ch, 0);
    if (!same_subject_and_key(ca, pck_ca))
        st = vfail(res, TDX_VERIFY_PCK_CHAIN, CAI_ERR_AUTH,
                   "pck_crl_issuer_chain is not the chain of the PCK certificate's CA");
    else if (X509_NAME_cmp(X509_CRL_get_issuer(coll->pck_crl_x), X509_get_subject_name(ca)) !=
                 0 ||
             X509_CRL_verify(coll->pck_crl_x, X509_get0_pubkey(ca)) != 1)
        st = vfail(res, TDX_VERIFY_PCK_CHAIN, CAI_ERR_AUTH,
                   "the PCK CRL is not issued and signed by the CA of pck_crl_issuer_chain");
    ERR_clear_error();
    return st;
}

/* Parses the one SGX extension of |pck| into |x|; on failure
 * CAI_ERR_FORMAT (or pck_ext_parse's status) with the reason in cai_errmsg. */
static cai_status pck_extension(X509 *pck, pck_ext *x) {
    ASN1_OBJECT *oid = OBJ_txt2obj("1.2.840.113741.1.13.1", 1);
    int idx = oid ? X509_get_ext_by_OBJ(pck, oid, -1) : -1;
    int dup = oid && idx >= 0 ? X509_get_ext_by_OBJ(pck, oid, idx) : -1;
    ASN1_OBJECT_free(oid);
    ASN1_OCTET_STRING *ext = idx >= 0 ? X509_EXTENSION_get_data(X509_get_ext(pck, idx)) : NULL;
    if (ext == NULL)
        return cai_fail(CAI_ERR_FORMAT, "PCK certificate has no SGX extension");
    if (dup >= 0)
        return cai_fail(CAI_ERR_FORMAT, "PCK certificate has two SGX extensions");
    return pck_ext_parse(ASN1_STRING_get0_data(ext), (size_t)ASN1_STRING_length(ext), x);
}

/* ---- the verifier -------------------------------------------------------- */

/* (long: the six steps of DCAP quote verification, numbered, in the order a
 * reviewer checks them against Intel's; each step's helpers are above, and
 * one exit path frees what the steps hold.) */
cai_status tdx_verify(const uint8_t *quote, size_t len, const tdx_collateral *coll,
                      const tdx_trust *trust, time_t now, tdx_verify_result *res) {
    memset(res, 0, sizeof(*res));
    if (coll == NULL || (quote == NULL && len != 0))
        return cai_fail(CAI_ERR_INVALID_ARG, "tdx verify: no quote or no collateral");
    tdx_quote *q = NULL;
    STACK_OF(X509) *chain = NULL, *sim = NULL;
    STACK_OF(X509_CRL) *crls = sk_X509_CRL_new_null(), *root_only = sk_X509_CRL_new_null();
    X509_CRL *rc = NULL, *pc = NULL;
    EVP_PKEY *att = NULL;
    unsigned char *sim_spki = NULL;
    const uint8_t *root = intel_root_spki;
    size_t root_len = sizeof(intel_root_spki);
    cai_status st;

    if (crls == NULL || root_only == NULL) {
        st = CAI_ERR_NOMEM;
        goto out;
    }
    if (trust && trust->sim_root_pem) {
        sim = pem_chain(trust->sim_root_pem, strlen(trust->sim_root_pem));
        int n = sim ? i2d_PUBKEY(X509_get0_pubkey(sk_X509_value(sim, 0)), &sim_spki) : -1;
        if (n <= 0) {
            st = cai_fail(CAI_ERR_INVALID_ARG, "tdx verify: sim_root_pem is not a certificate");
            goto out;
        }
        root = sim_spki;
        root_len = (size_t)n;
    }
    if ((st = tdx_quote_parse(quote, len, TDX_QUOTE_ALLOW_ZERO_PAD, &q)) != CAI_OK) {
        res->error = TDX_VERIFY_QUOTE_FORMAT;
        goto out;
    }

    /* 1. PCK chain to the pinned root, with both CRLs. */
    rc = coll->root_crl_x;
    pc = coll->pck_crl_x;
    if (rc == NULL || pc == NULL) {
        st = vfail(res, TDX_VERIFY_COLLATERAL_FORMAT, CAI_ERR_FORMAT, "CRL is not DER");
        goto out;
    }
    if (!sk_X509_CRL_push(crls, rc) || !sk_X509_CRL_push(crls, pc) ||
        !sk_X509_CRL_push(root_only, rc)) {
        st = CAI_ERR_NOMEM;
        goto out;
    }
    chain = pem_chain(q->pck_chain, q->pck_chain_len);
    if (chain == NULL || sk_X509_num(chain) != 3) {
        st = vfail(res, TDX_VERIFY_PCK_CHAIN, CAI_ERR_FORMAT,
                   "the quote's PCK chain is not three PEM certificates");
        goto out;
    }
    if (!pem_canonical(chain, q->pck_chain, q->pck_chain_len)) {
        st = vfail(res, TDX_VERIFY_PCK_CHAIN, CAI_ERR_FORMAT,
                   "the quote's PCK chain is not exactly the PEM of its certificates");
        goto out;
    }
    if ((st = verify_chain(chain, root, root_len, crls, now, TDX_VERIFY_PCK_CHAIN, "", res)))
        goto out;
    X509 *pck = sk_X509_value(chain, 0);
    /* The collateral's PCK CRL issuer chain: the PCK leaf's CA to the root. */
    if ((st = verify_pck_crl_chain(coll, sk_X509_value(chain, 1), root, root_len, root_only, now,
                                   res)))
        goto out;

    /* 2. QE report signed by the PCK key, binding the attestation key. */
    if (!verify_raw(X509_get0_pubkey(pck), q->qe_report_raw, TDX_SGX_REPORT_LEN,
                    q->qe_report_sig)) {
        st = vfail(res, TDX_VERIFY_QE_REPORT_SIGNATURE, CAI_ERR_AUTH,
                   "QE report signature does not verify with the PCK key");
        goto out;
    }
    uint8_t h[32];
    static const uint8_t zero[32];
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) &&
             EVP_DigestUpdate(md, q->att_key, 64) &&
             EVP_DigestUpdate(md, q->qe_auth, q->qe_auth_len) && EVP_DigestFinal_ex(md, h, NULL);
    EVP_MD_CTX_free(md);
    if (!ok) {
        st = cai_fail(CAI_ERR_CRYPTO, "tdx verify: SHA-256 failed");
        goto out;
    }
    if (memcmp(q->qe_report.report_data, h, 32) != 0 ||
        memcmp(q->qe_report.report_data + 32, zero, 32) != 0) {
        st = vfail(res, TDX_VERIFY_QE_REPORT_BINDING, CAI_ERR_AUTH,
                   "QE report data is not SHA-256(attestation key || QE auth data)");
        goto out;
    }

    /* 3. The quote signature over header || body. */
    att = raw_p256(q->att_key);
    if (att == NULL || !verify_raw(att, q->raw, q->signed_len, q->signature)) {
        st = vfail(res, TDX_VERIFY_QUOTE_SIGNATURE, CAI_ERR_AUTH,
                   "quote signature does not verify with the attestation key");
        goto out;
    }

    /* 4. The PCK certificate's SGX extension (exactly one). */
    pck_ext x;
    if ((st = pck_extension(pck, &x)) != CAI_OK) {
        st = vfail(res, TDX_VERIFY_PCK_EXTENSION, CAI_ERR_FORMAT, "%s", cai_errmsg(st));
        goto out;
    }
    memcpy(res->fmspc, x.fmspc, 6);
    memcpy(res->pce_id, x.pce_id, 2);
    memcpy(res->cpu_svn, x.cpu_svn, 16);
    res->pce_svn = x.pce_svn;

    /* 5. TCB info and QE identity: issuer chains (root CRL), signatures. */
    const char *signer_cn = sim ? SIM_TCB_SIGNING_CN : INTEL_TCB_SIGNING_CN;
    if ((st = verify_signed(coll->tcb_sk, coll->tcb_chain, coll->tcb_info, coll->tcb_sig,
                            signer_cn, root, root_len, root_only, now,
                            TDX_VERIFY_TCB_INFO_SIGNATURE, res)) ||
        (st = verify_signed(coll->qe_sk, coll->qe_chain, coll->qe_identity, coll->qe_sig,
                            signer_cn, root, root_len, root_only, now,
                            TDX_VERIFY_QE_IDENTITY_SIGNATURE, res)))
        goto out;

    /* 6. Windows, TCB level, TDX module, QE identity; one status. */
    if ((st = match_tcb(coll, q, &x, now, res)) || (st = match_qe(coll, q, now, res)))
        goto out;
    const char *status = res->platform_tcb_status;
    if (res->tdx_module_status[0])
        status = converge(status, res->tdx_module_status);
    status = converge(status, res->qe_tcb_status);
    copy_str(res->tcb_status, sizeof(res->tcb_status), status);
    if (strcmp(status, "Revoked") == 0) {
        st = vfail(res, TDX_VERIFY_TCB_REVOKED, CAI_ERR_AUTH, "%s",
                   strcmp(res->platform_tcb_status, "Revoked") == 0
                       ? "the platform TCB is revoked (its TCB level's status is Revoked)"
                   : strcmp(res->qe_tcb_status, "Revoked") == 0
                       ? "the QE's TCB is revoked (its QE identity level's status is Revoked)"
                       : "the TDX module is revoked (its module identity level's status is "
                         "Revoked)");
        goto out;
    }
    res->error = TDX_VERIFY_OK;
    st = CAI_OK;
out:
    EVP_PKEY_free(att);
    OPENSSL_free(sim_spki);
    sk_X509_pop_free(sim, X509_free);
    sk_X509_pop_free(chain, X509_free);
    sk_X509_CRL_free(crls);
    sk_X509_CRL_free(root_only);
    tdx_quote_free(q);
    return st;
}

/* ---- collateral window, PCK info ------------------------------------------ */

static int crl_times(const buf *der, time_t *last, time_t *next) {
    X509_CRL *crl = der_crl(der);
    struct tm a, b;
    const ASN1_TIME *l = crl ? X509_CRL_get0_lastUpdate(crl) : NULL;
    const ASN1_TIME *n = crl ? X509_CRL_get0_nextUpdate(crl) : NULL;
    int ok = l && n && ASN1_TIME_to_tm(l, &a) == 1 && ASN1_TIME_to_tm(n, &b) == 1;
    if (ok) {
        *last = timegm(&a);
        *next = timegm(&b);
    }
    ERR_clear_error();
    X509_CRL_free(crl);
    return ok;
}

static int json_dates(const char *text, time_t *issue, time_t *next) {
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    int ok = parse_time(json_string_value(json_object_get(j, "issueDate")), issue) &&
             parse_time(json_string_value(json_object_get(j, "nextUpdate")), next);
    json_decref(j);
    return ok;
}

cai_status tdx_collateral_window(const tdx_collateral *c, time_t *issued, time_t *expires) {
    time_t from[4], to[4];
    if (!json_dates(c->tcb_info, &from[0], &to[0]) ||
        !json_dates(c->qe_identity, &from[1], &to[1]) ||
        !crl_times(&c->root_crl, &from[2], &to[2]) || !crl_times(&c->pck_crl, &from[3], &to[3]))
        return cai_fail(CAI_ERR_FORMAT, "collateral: a date is missing or malformed");
    *issued = from[0];
    *expires = to[0];
    for (int i = 1; i < 4; i++) {
        if (from[i] > *issued)
            *issued = from[i];
        if (to[i] < *expires)
            *expires = to[i];
    }
    return CAI_OK;
}

cai_status tdx_pck_info_get(const uint8_t *quote, size_t len, tdx_pck_info *out) {
    memset(out, 0, sizeof(*out));
    tdx_quote *q = NULL;
    STACK_OF(X509) *chain = NULL;
    char cn[256] = "";
    pck_ext x;
    cai_status st = tdx_quote_parse(quote, len, TDX_QUOTE_ALLOW_ZERO_PAD, &q);
    if (st != CAI_OK)
        return st;
    chain = pem_chain(q->pck_chain, q->pck_chain_len);
    if (chain == NULL || sk_X509_num(chain) < 2) {
        st = cai_fail(CAI_ERR_FORMAT, "the quote's PCK chain is not PEM certificates");
        goto out;
    }
    X509 *pck = sk_X509_value(chain, 0);
    if ((st = pck_extension(pck, &x)) != CAI_OK) {
        st = cai_fail(CAI_ERR_FORMAT, "%s", cai_errmsg(st));
        goto out;
    }
    memcpy(out->fmspc, x.fmspc, 6);
    X509_NAME_get_text_by_NID(X509_get_issuer_name(pck), NID_commonName, cn, sizeof(cn));
    ERR_clear_error();
    if (strstr(cn, "PCK Processor CA"))
        out->processor_ca = 1;
    else if (!strstr(cn, "PCK Platform CA")) {
        st = cai_fail(CAI_ERR_FORMAT, "the PCK certificate's issuer '%.80s' is no PCK CA", cn);
        goto out;
    }
    out->intel_root = spki_eq(sk_X509_value(chain, sk_X509_num(chain) - 1), intel_root_spki,
                              sizeof(intel_root_spki));
    st = CAI_OK;
out:
    sk_X509_pop_free(chain, X509_free);
    tdx_quote_free(q);
    return st;
}

/* server.c - attested TLS identities and their renewal. */
#include "ratls/server.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/codec.h"
#include "common/log.h"
#include "crypto/kdf.h"
#include "ratls/evidence.h"

struct ratls_identity {
    atomic_int refs;
    EVP_PKEY *key;
    X509 *cert;
    uint8_t *der;
    size_t der_len;
};

static cai_status spki_sha256(EVP_PKEY *k, uint8_t out[32]) {
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(k, &der);
    if (n <= 0)
        return cai_fail(CAI_ERR_CRYPTO, "RA-TLS: cannot encode the public key");
    cai_status st = kdf_sha256(der, (size_t)n, out);
    OPENSSL_free(der);
    return st;
}

/* The evidence extension for key |k|: quote from |src| over the runtime
 * data that binds |k| and the model. */
static cai_status make_extension(const attest_source *src, EVP_PKEY *k,
                                 const uint8_t model_digest[ATTEST_DIGEST_LEN], buf *ext) {
    ratls_binding b;
    buf rd, quote, aa;
    buf_init(&rd, RATLS_RUNTIME_DATA_MAX);
    buf_init(&quote, 0);
    buf_init(&aa, RATLS_AA_EVIDENCE_MAX);
    uint8_t report_data[ATTEST_REPORT_DATA_LEN];
    memcpy(b.model_digest, model_digest, ATTEST_DIGEST_LEN);
    cai_status st;
    ratls_evidence ev = {.hash_algo = RATLS_HASH_SHA384};
    if ((st = spki_sha256(k, b.pubkey_hash)) != CAI_OK ||
        (st = ratls_runtime_data_make(&b, &rd)) != CAI_OK)
        goto out;
    cursor_init(&ev.runtime_data, rd.data, rd.len);
    cursor_init(&ev.tee_type, "tdx", 3);
    if ((st = ratls_report_data(&ev, report_data)) != CAI_OK ||
        (st = attest_evidence(src, report_data, &quote)) != CAI_OK ||
        (st = ratls_tdx_evidence_make(quote.data, quote.len, &aa)) != CAI_OK)
        goto out;
    cursor_init(&ev.aa_evidence, aa.data, aa.len);
    st = ratls_evidence_encode(&ev, ext);
out:
    buf_free(&rd);
    buf_free(&quote);
    buf_free(&aa);
    return st;
}

static int add_ext_nid(X509 *x, int nid, const char *value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    int ok = e != NULL && X509_add_ext(x, e, -1) == 1;
    X509_EXTENSION_free(e);
    return ok;
}

static int add_evidence_ext(X509 *x, const buf *ext) {
    ASN1_OBJECT *obj = OBJ_txt2obj(RATLS_EXT_OID, 1);
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
    X509_EXTENSION *e = NULL;
    int ok = obj && os && ASN1_OCTET_STRING_set(os, ext->data, (int)ext->len) == 1 &&
             (e = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os)) != NULL &&
             X509_add_ext(x, e, -1) == 1;
    X509_EXTENSION_free(e);
    ASN1_OCTET_STRING_free(os);
    ASN1_OBJECT_free(obj);
    return ok;
}

/* A self-signed certificate for |k|: random serial, valid [now, now +
 * lifetime], CN "cai serve (attested)", the evidence extension. */
static cai_status make_cert(EVP_PKEY *k, const buf *ext, long lifetime_s, X509 **out) {
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    BIGNUM *serial = BN_new();
    int ok = x && name && serial && X509_set_version(x, 2) == 1 &&
             BN_rand(serial, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1 &&
             BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) != NULL &&
             X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"cai", -1, -1, 0) == 1 &&
             X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                        (const unsigned char *)"cai serve (attested)", -1, -1, 0) == 1 &&
             X509_set_subject_name(x, name) == 1 && X509_set_issuer_name(x, name) == 1 &&
             X509_gmtime_adj(X509_getm_notBefore(x), 0) != NULL &&
             X509_gmtime_adj(X509_getm_notAfter(x), lifetime_s) != NULL &&
             X509_set_pubkey(x, k) == 1 &&
             add_ext_nid(x, NID_basic_constraints, "critical,CA:FALSE") &&
             add_ext_nid(x, NID_key_usage, "critical,digitalSignature") &&
             add_ext_nid(x, NID_ext_key_usage, "serverAuth") && add_evidence_ext(x, ext) &&
             X509_sign(x, k, EVP_sha256()) > 0;
    BN_free(serial);
    X509_NAME_free(name);
    if (!ok) {
        X509_free(x);
        return cai_fail(CAI_ERR_CRYPTO, "RA-TLS: cannot issue the certificate");
    }
    *out = x;
    return CAI_OK;
}

cai_status ratls_identity_new(const attest_source *src,
                              const uint8_t model_digest[ATTEST_DIGEST_LEN], long lifetime_s,
                              ratls_identity **out) {
    *out = NULL;
    ratls_identity *id = calloc(1, sizeof(*id));
    buf ext;
    buf_init(&ext, RATLS_EXT_MAX);
    cai_status st = CAI_OK;
    if (id == NULL)
        return CAI_ERR_NOMEM;
    atomic_init(&id->refs, 1);
    if ((id->key = EVP_EC_gen("P-256")) == NULL) {
        st = cai_fail(CAI_ERR_CRYPTO, "RA-TLS: cannot make a P-256 key");
        goto out;
    }
    if ((st = make_extension(src, id->key, model_digest, &ext)) != CAI_OK ||
        (st = make_cert(id->key, &ext, lifetime_s, &id->cert)) != CAI_OK)
        goto out;
    unsigned char *der = NULL;
    int n = i2d_X509(id->cert, &der);
    if (n <= 0 || (id->der = malloc((size_t)n)) == NULL) {
        OPENSSL_free(der);
        st = CAI_ERR_NOMEM;
        goto out;
    }
    memcpy(id->der, der, (size_t)n);
    id->der_len = (size_t)n;
    OPENSSL_free(der);
out:
    buf_free(&ext);
    if (st != CAI_OK) {
        ratls_identity_free(id);
        return st;
    }
    *out = id;
    return CAI_OK;
}

ratls_identity *ratls_identity_ref(ratls_identity *id) {
    if (id)
        atomic_fetch_add(&id->refs, 1);
    return id;
}

void ratls_identity_free(ratls_identity *id) {
    if (id == NULL || atomic_fetch_sub(&id->refs, 1) != 1)
        return;
    EVP_PKEY_free(id->key); /* OpenSSL cleanses private key material */
    X509_free(id->cert);
    free(id->der);
    free(id);
}

const uint8_t *ratls_identity_cert_der(const ratls_identity *id, size_t *len) {
    *len = id->der_len;
    return id->der;
}

cai_status ratls_identity_sign(const ratls_identity *id, const void *data, size_t len, buf *sig) {
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    size_t n = 0;
    cai_status st = CAI_OK;
    if (md == NULL || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, id->key) != 1 ||
        EVP_DigestSign(md, NULL, &n, data, len) != 1) {
        st = cai_fail(CAI_ERR_CRYPTO, "RA-TLS: cannot sign");
        goto out;
    }
    if ((st = buf_reserve(sig, n)) != CAI_OK)
        goto out;
    if (EVP_DigestSign(md, sig->data + sig->len, &n, data, len) != 1) {
        st = cai_fail(CAI_ERR_CRYPTO, "RA-TLS: cannot sign");
        goto out;
    }
    sig->len += n;
out:
    EVP_MD_CTX_free(md);
    return st;
}

/* ---- the server: current identity and renewal ------------------------- */

struct ratls_server {
    SSL_CTX *ctx;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    ratls_identity *cur; /* under mu */
    int stop;            /* under mu */
    pthread_t th;
    int started;
    attest_source src;
    uint8_t digest[ATTEST_DIGEST_LEN];
    long refresh_s;
};

/* Each handshake takes the newest certificate (loop thread). SSL_use_*
 * take their own references, so a renewal never pulls a key from under a
 * connection. */
static int on_cert(SSL *ssl, void *arg) {
    ratls_server *s = arg;
    pthread_mutex_lock(&s->mu);
    ratls_identity *id = s->cur;
    int ok = id && SSL_use_certificate(ssl, id->cert) == 1 && SSL_use_PrivateKey(ssl, id->key) == 1;
    pthread_mutex_unlock(&s->mu);
    return ok;
}

cai_status ratls_server_new(ratls_server **out) {
    *out = NULL;
    ratls_server *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return CAI_ERR_NOMEM;
    if ((s->ctx = SSL_CTX_new(TLS_server_method())) == NULL ||
        SSL_CTX_set_min_proto_version(s->ctx, TLS1_3_VERSION) != 1) {
        SSL_CTX_free(s->ctx);
        free(s);
        return cai_fail(CAI_ERR_CRYPTO, "RA-TLS: cannot make the TLS context");
    }
    /* No session tickets: every connection shows (and a client verifies or
     * finds in its cache) the current certificate. */
    SSL_CTX_set_options(s->ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(s->ctx, 0); /* TLS 1.3 sends tickets despite NO_TICKET */
    SSL_CTX_set_session_cache_mode(s->ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_cert_cb(s->ctx, on_cert, s);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    *out = s;
    return CAI_OK;
}

void *ratls_server_ssl_ctx(ratls_server *s) { return s->ctx; }

static cai_status renew(ratls_server *s) {
    ratls_identity *id = NULL;
    cai_status st = ratls_identity_new(&s->src, s->digest, 2 * s->refresh_s, &id);
    if (st != CAI_OK)
        return st;
    uint8_t fp[32];
    char hex[65];
    if (kdf_sha256(id->der, id->der_len, fp) == CAI_OK) {
        hex_encode(hex, fp, sizeof(fp));
        log_info("attested TLS: new certificate sha256:%s (%s evidence, renewed every %ld s)", hex,
                 attest_tee_name(s->src.tee), s->refresh_s);
    }
    pthread_mutex_lock(&s->mu);
    ratls_identity *old = s->cur;
    s->cur = id;
    pthread_mutex_unlock(&s->mu);
    ratls_identity_free(old);
    return CAI_OK;
}

static void *renew_main(void *arg) {
    ratls_server *s = arg;
    long wait_s = s->refresh_s;
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        t.tv_sec += wait_s;
        int rc = 0;
        while (!s->stop && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&s->cv, &s->mu, &t);
        if (s->stop)
            break;
        pthread_mutex_unlock(&s->mu);
        cai_status st = renew(s);
        if (st != CAI_OK)
            log_warn("attested TLS: cannot renew the certificate (retrying in 30 s): %s",
                     cai_errmsg(st));
        wait_s = st == CAI_OK ? s->refresh_s : 30;
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

cai_status ratls_server_start(ratls_server *s, const attest_source *src,
                              const uint8_t model_digest[ATTEST_DIGEST_LEN], long refresh_s) {
    CAI_ASSERT(!s->started && refresh_s > 0);
    s->src = *src;
    memcpy(s->digest, model_digest, ATTEST_DIGEST_LEN);
    s->refresh_s = refresh_s;
    cai_status st = renew(s);
    if (st != CAI_OK)
        return st;
    if (pthread_create(&s->th, NULL, renew_main, s) != 0)
        return cai_fail(CAI_ERR_INTERNAL, "RA-TLS: cannot start the renewal thread");
    s->started = 1;
    return CAI_OK;
}

ratls_identity *ratls_server_current(ratls_server *s) {
    pthread_mutex_lock(&s->mu);
    ratls_identity *id = ratls_identity_ref(s->cur);
    pthread_mutex_unlock(&s->mu);
    return id;
}

void ratls_server_free(ratls_server *s) {
    if (s == NULL)
        return;
    if (s->started) {
        pthread_mutex_lock(&s->mu);
        s->stop = 1;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->th, NULL);
    }
    ratls_identity_free(s->cur);
    SSL_CTX_free(s->ctx);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

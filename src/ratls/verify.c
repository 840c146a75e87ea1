/* verify.c - attested TLS certificates checked against evidence and policy. */
#include "ratls/verify.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "attest/quote.h"
#include "common/codec.h"
#include "common/secure.h"
#include "crypto/kdf.h"
#include "ratls/evidence.h"

typedef struct {
    uint8_t fp[32]; /* SHA-256 of the certificate's DER */
    json_t *claims; /* NULL: an empty slot */
    time_t not_before, not_after;
} cache_entry;

struct ratls_verifier {
    attest_verifier av;
    const kbs_policy *policy;
    long max_age_s;
    pthread_mutex_t mu;
    cache_entry cache[RATLS_CACHE_MAX];
    size_t next; /* the slot the next insertion takes (oldest first) */
};

cai_status ratls_verifier_new(const ratls_verifier_config *c, ratls_verifier **out) {
    *out = NULL;
    if (c->verifier == NULL || c->policy == NULL)
        return cai_fail(CAI_ERR_INVALID_ARG, "RA-TLS: a verifier needs trust roots and a policy");
    ratls_verifier *v = calloc(1, sizeof(*v));
    if (v == NULL)
        return CAI_ERR_NOMEM;
    v->av = *c->verifier;
    v->av.expected_report_data = NULL;
    v->av.allow_debug = kbs_policy_allows_debug(c->policy);
    v->policy = c->policy;
    v->max_age_s = c->max_age_s > 0 ? c->max_age_s : RATLS_MAX_AGE_DEFAULT;
    pthread_mutex_init(&v->mu, NULL);
    *out = v;
    return CAI_OK;
}

void ratls_verifier_free(ratls_verifier *v) {
    if (v == NULL)
        return;
    for (size_t i = 0; i < RATLS_CACHE_MAX; i++)
        json_decref(v->cache[i].claims);
    pthread_mutex_destroy(&v->mu);
    free(v);
}

static int asn1_time(const ASN1_TIME *t, time_t *out) {
    struct tm tm;
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    *out = timegm(&tm);
    return 1;
}

static cai_status fresh(const ratls_verifier *v, time_t nb, time_t na, time_t now) {
    if (nb > now + RATLS_CLOCK_SKEW)
        return cai_fail(CAI_ERR_AUTH, "attested TLS: freshness: the certificate is issued %lld s "
                        "in the future", (long long)(nb - now));
    if (now > na)
        return cai_fail(CAI_ERR_AUTH, "attested TLS: freshness: the certificate expired %lld s ago",
                        (long long)(now - na));
    if (now - nb > v->max_age_s)
        return cai_fail(CAI_ERR_AUTH, "attested TLS: freshness: the certificate was issued %lld s "
                        "ago, more than the %ld s allowed (stale)", (long long)(now - nb), v->max_age_s);
    return CAI_OK;
}

static json_t *cache_get(ratls_verifier *v, const uint8_t fp[32], time_t *nb, time_t *na) {
    json_t *c = NULL;
    pthread_mutex_lock(&v->mu);
    for (size_t i = 0; i < RATLS_CACHE_MAX && c == NULL; i++)
        if (v->cache[i].claims && memcmp(v->cache[i].fp, fp, 32) == 0) {
            c = json_incref(v->cache[i].claims);
            *nb = v->cache[i].not_before;
            *na = v->cache[i].not_after;
        }
    pthread_mutex_unlock(&v->mu);
    return c;
}

static void cache_put(ratls_verifier *v, const uint8_t fp[32], json_t *claims, time_t nb, time_t na) {
    pthread_mutex_lock(&v->mu);
    cache_entry *e = &v->cache[v->next];
    v->next = (v->next + 1) % RATLS_CACHE_MAX;
    json_decref(e->claims);
    memcpy(e->fp, fp, 32);
    e->claims = json_incref(claims);
    e->not_before = nb;
    e->not_after = na;
    pthread_mutex_unlock(&v->mu);
}

/* Steps 2-5 of verify.h for the parsed certificate |x|. */
static cai_status verify_evidence(ratls_verifier *v, X509 *x, time_t now, json_t **out) {
    ASN1_OBJECT *obj = OBJ_txt2obj(RATLS_EXT_OID, 1);
    if (obj == NULL)
        return CAI_ERR_NOMEM;
    int idx = X509_get_ext_by_OBJ(x, obj, -1);
    int again = idx >= 0 ? X509_get_ext_by_OBJ(x, obj, idx) : -1;
    ASN1_OBJECT_free(obj);
    if (idx < 0)
        return cai_fail(CAI_ERR_AUTH, "attested TLS: evidence: the certificate carries no evidence "
                        "extension (%s): not an attested server", RATLS_EXT_OID);
    if (again >= 0)
        return cai_fail(CAI_ERR_FORMAT, "attested TLS: evidence: two evidence extensions");
    const ASN1_OCTET_STRING *data = X509_EXTENSION_get_data(X509_get_ext(x, idx));
    ratls_evidence ev;
    ratls_binding b;
    uint8_t spki[32], rd[ATTEST_REPORT_DATA_LEN];
    cai_status st = ratls_evidence_parse(ASN1_STRING_get0_data(data), (size_t)ASN1_STRING_length(data), &ev);
    if (st != CAI_OK)
        return st;
    if (cursor_len(&ev.tee_type) != 3 || memcmp(cursor_data(&ev.tee_type), "tdx", 3) != 0)
        return cai_fail(CAI_ERR_UNSUPPORTED, "attested TLS: evidence: tee_type '%.*s' (only tdx is verified)",
                        (int)(cursor_len(&ev.tee_type) > 16 ? 16 : cursor_len(&ev.tee_type)),
                        (const char *)cursor_data(&ev.tee_type));
    if ((st = ratls_runtime_data_parse(&ev.runtime_data, &b)) != CAI_OK)
        return st;
    unsigned char *der = NULL;
    int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
    if (n <= 0)
        return cai_fail(CAI_ERR_FORMAT, "attested TLS: the certificate's public key does not encode");
    st = kdf_sha256(der, (size_t)n, spki);
    OPENSSL_free(der);
    if (st != CAI_OK)
        return st;
    if (!secure_memeq(spki, b.pubkey_hash, 32))
        return cai_fail(CAI_ERR_AUTH, "attested TLS: key binding: the evidence binds another public "
                        "key than this certificate's");
    if ((st = ratls_report_data(&ev, rd)) != CAI_OK)
        return st;
    buf quote;
    if ((st = ratls_tdx_evidence_quote(&ev.aa_evidence, &quote)) != CAI_OK)
        return st;
    attest_verifier av = v->av;
    av.expected_report_data = rd;
    json_t *claims = NULL;
    st = attest_verify_claims(&av, quote.data, quote.len, now, &claims, NULL);
    buf_free(&quote);
    if (st != CAI_OK)
        return cai_fail(st, "attested TLS: quote: %s", cai_errmsg(st));
    char md[2 * ATTEST_DIGEST_LEN + 1];
    hex_encode(md, b.model_digest, ATTEST_DIGEST_LEN);
    json_object_set_new(claims, "model_digest", json_string(md));
    if ((st = kbs_policy_check_server(v->policy, claims)) != CAI_OK) {
        json_decref(claims);
        return cai_fail(st, "attested TLS: policy: %s", cai_errmsg(st));
    }
    *out = claims;
    return CAI_OK;
}

cai_status ratls_verify_der(ratls_verifier *v, const uint8_t *der, size_t len, time_t now,
                            json_t **out, int *cached) {
    if (out)
        *out = NULL;
    if (cached)
        *cached = 0;
    uint8_t fp[32];
    time_t nb, na;
    cai_status st = kdf_sha256(der, len, fp);
    if (st != CAI_OK)
        return st;
    json_t *claims = cache_get(v, fp, &nb, &na);
    if (claims) {
        if ((st = fresh(v, nb, na, now)) != CAI_OK) {
            json_decref(claims);
            return st;
        }
        if (cached)
            *cached = 1;
        goto done;
    }
    const unsigned char *p = der;
    X509 *x = len <= RATLS_EXT_MAX + 64 * 1024 ? d2i_X509(NULL, &p, (long)len) : NULL;
    if (x == NULL || p != der + len) {
        X509_free(x);
        return cai_fail(CAI_ERR_FORMAT, "attested TLS: the certificate does not parse (or is too large)");
    }
    EVP_PKEY *pk = X509_get0_pubkey(x);
    if (pk == NULL || X509_verify(x, pk) != 1) {
        st = cai_fail(CAI_ERR_AUTH, "attested TLS: the certificate is not self-signed by its key");
        goto out;
    }
    if (!asn1_time(X509_get0_notBefore(x), &nb) || !asn1_time(X509_get0_notAfter(x), &na)) {
        st = cai_fail(CAI_ERR_FORMAT, "attested TLS: the certificate's validity does not parse");
        goto out;
    }
    if ((st = fresh(v, nb, na, now)) != CAI_OK || (st = verify_evidence(v, x, now, &claims)) != CAI_OK)
        goto out;
    char hex[65];
    hex_encode(hex, fp, sizeof(fp));
    json_object_set_new(claims, "cert_sha256", json_string(hex));
    json_object_set_new(claims, "cert_not_before", json_integer((json_int_t)nb));
    cache_put(v, fp, claims, nb, na);
out:
    X509_free(x);
    if (st != CAI_OK)
        return st;
done:
    if (out)
        *out = claims;
    else
        json_decref(claims);
    return CAI_OK;
}

/* ---- OpenSSL glue --------------------------------------------------------- */

/* What on_verify decided, for ratls_last_take: the handshake's caller
 * (curl) records a failure of its own after the callback, so a refusal's
 * detail is kept here and handed back through cai_errmsg_set. */
static _Thread_local json_t *last_claims;
static _Thread_local cai_status last_st;
static _Thread_local char last_msg[512];

cai_status ratls_last_take(json_t **claims) {
    cai_status st = last_st;
    if (claims)
        *claims = last_claims;
    else
        json_decref(last_claims);
    last_claims = NULL;
    last_st = CAI_OK;
    if (st != CAI_OK)
        cai_errmsg_set(st, last_msg);
    last_msg[0] = '\0';
    return st;
}

static int on_verify(X509_STORE_CTX *xs, void *arg) {
    ratls_verifier *v = arg;
    X509 *leaf = X509_STORE_CTX_get0_cert(xs);
    unsigned char *der = NULL;
    int n = leaf ? i2d_X509(leaf, &der) : -1;
    json_t *claims = NULL;
    cai_status st = n > 0 ? ratls_verify_der(v, der, (size_t)n, time(NULL), &claims, NULL)
                          : cai_fail(CAI_ERR_FORMAT, "attested TLS: no peer certificate");
    OPENSSL_free(der);
    json_decref(last_claims);
    last_claims = NULL;
    last_st = st;
    if (st != CAI_OK) {
        snprintf(last_msg, sizeof(last_msg), "%s", cai_errmsg(st));
        X509_STORE_CTX_set_error(xs, X509_V_ERR_APPLICATION_VERIFICATION);
        return 0;
    }
    last_msg[0] = '\0';
    last_claims = claims;
    return 1;
}

cai_status ratls_ssl_ctx_setup(void *ssl_ctx, void *v) {
    SSL_CTX *ctx = ssl_ctx;
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1)
        return cai_fail(CAI_ERR_CRYPTO, "attested TLS: cannot require TLS 1.3");
    /* The chain check is ours alone, and a failed one ends the handshake
     * before a request byte is sent. No resumption: every connection shows
     * its certificate. */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_cert_verify_callback(ctx, on_verify, v);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    /* Evidence with an event log can pass OpenSSL's 100 KiB default; our
     * parser's limits govern (a larger certificate message is refused). */
    SSL_CTX_set_max_cert_list(ctx, RATLS_EXT_MAX + 64 * 1024);
    return CAI_OK;
}

/* test_ratls.c - attested TLS: the CBOR reader and writer, the evidence
 * extension, and the verifier's refusal table on certificates made by a
 * simulated TEE (each row: the check that fails is the one named). */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "attest/sim.h"
#include "attest/trust.h"
#include "common/codec.h"
#include "kbs/policy.h"
#include "ratls/cbor.h"
#include "crypto/kdf.h"
#include "ratls/evidence.h"
#include "ratls/receipt.h"
#include "ratls/server.h"
#include "ratls/verify.h"
#include "test.h"

/* ---- CBOR ------------------------------------------------------------------ */

static int hex_cursor(const char *hex, uint8_t *out, size_t cap, cursor *c) {
    size_t n = 0;
    if (hex_decode(hex, strlen(hex), out, cap, &n) != CAI_OK)
        return 0;
    cursor_init(c, out, n);
    return 1;
}

static void test_cbor_heads(void) {
    static const struct { uint64_t v; const char *hex; } cases[] = {
        {0, "00"}, {23, "17"}, {24, "1818"}, {255, "18ff"}, {256, "190100"},
        {65535, "19ffff"}, {65536, "1a00010000"}, {0xffffffffu, "1affffffff"},
        {0x100000000ull, "1b0000000100000000"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        buf b;
        buf_init(&b, 0);
        CHECK_OK(cbor_put_head(&b, CBOR_UINT, cases[i].v));
        char hex[32];
        hex_encode(hex, b.data, b.len);
        CHECK(strcmp(hex, cases[i].hex) == 0);
        cursor c;
        uint64_t v = 0;
        cursor_init(&c, b.data, b.len);
        CHECK(cbor_get_uint(&c, &v) && v == cases[i].v && cursor_len(&c) == 0);
        buf_free(&b);
    }
}

static void test_cbor_refusals(void) {
    static const char *const bad[] = {
        "5f",           /* indefinite byte string */
        "9f",           /* indefinite array */
        "1c", "1d", "1e", /* reserved additional information */
        "19ff",         /* truncated argument */
        "4301",         /* byte string past the end */
        "f97e00",       /* a half float */
        "f820",         /* a two-byte simple value */
        "831b7fffffffffffffff", /* a count far beyond the input */
    };
    uint8_t raw[64];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cursor c;
        CHECK(hex_cursor(bad[i], raw, sizeof(raw), &c));
        const uint8_t *before = cursor_data(&c);
        CHECK(!cbor_skip(&c, 8));
        CHECK(cursor_data(&c) == before); /* no advance on failure */
    }
    /* depth: [[[[1]]]] needs 5 levels */
    cursor c;
    CHECK(hex_cursor("8181818101", raw, sizeof(raw), &c));
    CHECK(!cbor_skip(&c, 4));
    CHECK(cbor_skip(&c, 5) && cursor_len(&c) == 0);
}

/* rats-cert's own test vectors (rats-cert/src/cert/dice/cbor.rs). */
static void test_cbor_rats_cert_vectors(void) {
    uint8_t raw[64];
    cursor c, e, cl, h;
    uint64_t tag, n, algo;
    CHECK(hex_cursor("d9ea608244010203044405060708", raw, sizeof(raw), &c));
    CHECK(cbor_get_tag(&c, &tag) && tag == 60000);
    CHECK(cbor_get_array(&c, &n) && n == 2 && cbor_get_bytes(&c, &e) && cbor_get_bytes(&c, &cl));
    CHECK(cursor_len(&e) == 4 && memcmp(cursor_data(&e), "\x01\x02\x03\x04", 4) == 0);
    CHECK(cursor_len(&c) == 0);
    /* a well-formed envelope with another tag is not CoCo evidence */
    ratls_evidence ev;
    CHECK_ST(ratls_evidence_parse(raw, 14, &ev), CAI_ERR_UNSUPPORTED);
    CHECK(hex_cursor("82014400010203", raw, sizeof(raw), &c));
    CHECK(cbor_get_array(&c, &n) && n == 2 && cbor_get_uint(&c, &algo) && algo == 1 &&
          cbor_get_bytes(&c, &h) && cursor_len(&h) == 4);
}

/* ---- the evidence extension -------------------------------------------------- */

static void make_evidence(buf *out) {
    ratls_binding b;
    memset(&b, 0x11, sizeof(b));
    buf rd, aa;
    buf_init(&rd, 0);
    buf_init(&aa, 0);
    CHECK_OK(ratls_runtime_data_make(&b, &rd));
    CHECK_OK(ratls_tdx_evidence_make((const uint8_t *)"quote", 5, &aa));
    ratls_evidence ev = {.hash_algo = RATLS_HASH_SHA384};
    cursor_init(&ev.tee_type, "tdx", 3);
    cursor_init(&ev.aa_evidence, aa.data, aa.len);
    cursor_init(&ev.runtime_data, rd.data, rd.len);
    buf_init(out, 0);
    CHECK_OK(ratls_evidence_encode(&ev, out));
    buf_free(&rd);
    buf_free(&aa);
}

static void test_evidence_round_trip(void) {
    buf ext;
    make_evidence(&ext);
    ratls_evidence ev;
    ratls_binding b;
    CHECK_OK(ratls_evidence_parse(ext.data, ext.len, &ev));
    CHECK(ev.hash_algo == RATLS_HASH_SHA384);
    CHECK(cursor_len(&ev.tee_type) == 3 && memcmp(cursor_data(&ev.tee_type), "tdx", 3) == 0);
    CHECK_OK(ratls_runtime_data_parse(&ev.runtime_data, &b));
    for (int i = 0; i < 32; i++)
        CHECK(b.pubkey_hash[i] == 0x11 && b.model_digest[i] == 0x11);
    /* the runtime data is canonical JSON with the two members */
    CHECK(cursor_len(&ev.runtime_data) > 0 && cursor_data(&ev.runtime_data)[0] == '{');
    CHECK(memmem(cursor_data(&ev.runtime_data), cursor_len(&ev.runtime_data),
                 "{\"model-digest\":\"1111", 21) != NULL);
    buf q;
    CHECK_OK(ratls_tdx_evidence_quote(&ev.aa_evidence, &q));
    CHECK(q.len == 5 && memcmp(q.data, "quote", 5) == 0);
    buf_free(&q);
    uint8_t rd[64];
    CHECK_OK(ratls_report_data(&ev, rd));
    for (int i = 48; i < 64; i++)
        CHECK(rd[i] == 0); /* SHA-384, zero-padded */
    buf_free(&ext);
}

static void test_evidence_refusals(void) {
    buf ext;
    make_evidence(&ext);
    ratls_evidence ev;
    /* every truncation, and a trailing byte */
    for (size_t n = 0; n < ext.len; n++)
        CHECK(ratls_evidence_parse(ext.data, n, &ev) != CAI_OK);
    CHECK_OK(buf_append_u8(&ext, 0));
    CHECK_ST(ratls_evidence_parse(ext.data, ext.len, &ev), CAI_ERR_TRAILING);
    ext.len--;
    /* every single flipped byte is refused or still parses to something
     * well-formed (a flip inside a string's contents) */
    for (size_t i = 0; i < ext.len; i++) {
        ext.data[i] ^= 0x40;
        cai_status st = ratls_evidence_parse(ext.data, ext.len, &ev);
        CHECK(st == CAI_OK || st == CAI_ERR_FORMAT || st == CAI_ERR_UNSUPPORTED ||
              st == CAI_ERR_TRAILING || st == CAI_ERR_LIMIT);
        ext.data[i] ^= 0x40;
    }
    uint8_t big[16];
    CHECK_ST(ratls_evidence_parse(big, RATLS_EXT_MAX + 1, &ev), CAI_ERR_LIMIT);
    buf_free(&ext);
    /* runtime data with another member, or a hash of another algorithm */
    cursor c;
    const char *extra = "{\"model-digest\":\"00\",\"pubkey-hash\":\"x\",\"nonce\":\"1\"}";
    cursor_init(&c, extra, strlen(extra));
    ratls_binding b;
    CHECK_ST(ratls_runtime_data_parse(&c, &b), CAI_ERR_FORMAT);
    const char *sha384 = "{\"model-digest\":\"0000000000000000000000000000000000000000000000000000000000000000\","
                         "\"pubkey-hash\":\"ggdEAAECAw==\"}"; /* [7, h'00010203'] */
    cursor_init(&c, sha384, strlen(sha384));
    CHECK_ST(ratls_runtime_data_parse(&c, &b), CAI_ERR_UNSUPPORTED);
}

/* ---- the verifier's refusal table ---------------------------------------------- */

static char sim_dir[64], other_dir[64];
static const uint8_t DIGEST[32] = {1, 2, 3};

static kbs_policy *policy(const char *extra_set) {
    char doc[1024];
    snprintf(doc, sizeof(doc),
             "{\"version\":1,\"tee\":[\"sim\"],\"reference_values\":{\"s\":{%s}},\"servers\":[\"s\"]}",
             extra_set);
    kbs_policy *p = NULL;
    CHECK_OK(kbs_policy_parse(doc, strlen(doc), &p));
    return p;
}

typedef struct {
    attest_trust *t;
    kbs_policy *p;
    ratls_verifier *v;
} verifier;

static void verifier_new(verifier *vf, const char *dir, const char *extra_set, long max_age) {
    attest_trust_opts o = {.trust_sim = dir};
    CHECK_OK(attest_trust_new(&o, &vf->t));
    vf->p = policy(extra_set);
    ratls_verifier_config c = {.verifier = attest_trust_verifier(vf->t), .policy = vf->p,
                               .max_age_s = max_age};
    CHECK_OK(ratls_verifier_new(&c, &vf->v));
}

static void verifier_free(verifier *vf) {
    ratls_verifier_free(vf->v);
    kbs_policy_free(vf->p);
    attest_trust_free(vf->t);
}

static ratls_identity *identity(const char *dir, const sim_td *td, const uint8_t digest[32]) {
    attest_source src = {.tee = ATTEST_TEE_SIM, .sim_dir = dir, .sim_td = td};
    ratls_identity *id = NULL;
    CHECK_OK(ratls_identity_new(&src, digest, 600, &id));
    return id;
}

static cai_status verify_id(verifier *vf, ratls_identity *id, time_t now, json_t **claims) {
    size_t len;
    const uint8_t *der = ratls_identity_cert_der(id, &len);
    return ratls_verify_der(vf->v, der, len, now, claims, NULL);
}

/* A self-signed certificate for a new key carrying |ext| (NULL: none) as
 * the evidence extension. */
static buf forged_cert(const uint8_t *ext, size_t ext_len) {
    buf out;
    buf_init(&out, 0);
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_NAME *n = X509_NAME_new();
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"forged", -1, -1, 0);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
    X509_set_subject_name(x, n);
    X509_set_issuer_name(x, n);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 600);
    X509_set_pubkey(x, k);
    if (ext) {
        ASN1_OBJECT *obj = OBJ_txt2obj(RATLS_EXT_OID, 1);
        ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
        ASN1_OCTET_STRING_set(os, ext, (int)ext_len);
        X509_EXTENSION *e = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os);
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
        ASN1_OCTET_STRING_free(os);
        ASN1_OBJECT_free(obj);
    }
    X509_sign(x, k, EVP_sha256());
    unsigned char *der = NULL;
    int len = i2d_X509(x, &der);
    CHECK(len > 0 && buf_append(&out, der, (size_t)len) == CAI_OK);
    OPENSSL_free(der);
    X509_NAME_free(n);
    X509_free(x);
    EVP_PKEY_free(k);
    return out;
}

/* The evidence extension's bytes of |id|'s certificate. */
static buf extension_of(ratls_identity *id) {
    size_t len;
    const uint8_t *der = ratls_identity_cert_der(id, &len);
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    ASN1_OBJECT *obj = OBJ_txt2obj(RATLS_EXT_OID, 1);
    const ASN1_OCTET_STRING *d = X509_EXTENSION_get_data(X509_get_ext(x, X509_get_ext_by_OBJ(x, obj, -1)));
    buf out;
    buf_init(&out, 0);
    CHECK_OK(buf_append(&out, ASN1_STRING_get0_data(d), (size_t)ASN1_STRING_length(d)));
    ASN1_OBJECT_free(obj);
    X509_free(x);
    return out;
}

static int msg_has(cai_status st, const char *what) {
    const char *m = cai_errmsg(st);
    if (strstr(m, what) == NULL) {
        printf("  message: %s (want %s)\n", m, what);
        return 0;
    }
    return 1;
}

static void test_verify_accepts(void) {
    verifier vf;
    char set[200];
    char hex[65];
    hex_encode(hex, DIGEST, 32);
    snprintf(set, sizeof(set), "\"model_digest\":[\"%s\"]", hex);
    verifier_new(&vf, sim_dir, set, 0);
    ratls_identity *id = identity(sim_dir, NULL, DIGEST);
    json_t *claims = NULL;
    int cached = -1;
    CHECK_OK(verify_id(&vf, id, time(NULL), &claims));
    CHECK(strcmp(json_string_value(json_object_get(claims, "model_digest")), hex) == 0);
    CHECK(strcmp(json_string_value(json_object_get(claims, "tee")), "sim") == 0);
    CHECK(json_string_length(json_object_get(claims, "cert_sha256")) == 64);
    json_decref(claims);
    size_t len;
    const uint8_t *der = ratls_identity_cert_der(id, &len);
    CHECK_OK(ratls_verify_der(vf.v, der, len, time(NULL), NULL, &cached));
    CHECK(cached == 1); /* the second connection costs no DCAP check */
    /* freshness is judged on cached certificates too */
    CHECK_ST(ratls_verify_der(vf.v, der, len, time(NULL) + 3600, NULL, NULL), CAI_ERR_AUTH);
    ratls_identity_free(id);
    verifier_free(&vf);
}

static void test_verify_refusals(void) {
    verifier vf;
    verifier_new(&vf, sim_dir, "", 0);
    json_t *claims = NULL;
    ratls_identity *good = identity(sim_dir, NULL, DIGEST);
    cai_status st;

    /* an ordinary self-signed certificate */
    buf plain = forged_cert(NULL, 0);
    st = ratls_verify_der(vf.v, plain.data, plain.len, time(NULL), &claims, NULL);
    CHECK(st == CAI_ERR_AUTH && msg_has(st, "no evidence extension"));
    buf_free(&plain);

    /* the real evidence copied into a certificate for another key */
    buf ext = extension_of(good);
    buf copied = forged_cert(ext.data, ext.len);
    st = ratls_verify_der(vf.v, copied.data, copied.len, time(NULL), &claims, NULL);
    CHECK(st == CAI_ERR_AUTH && msg_has(st, "key binding"));
    buf_free(&copied);

    /* malformed, truncated and oversized extensions */
    uint8_t junk[] = {0xda, 0x00, 0xc0, 0xc0}; /* a tag head cut short */
    buf bad = forged_cert(junk, sizeof(junk));
    st = ratls_verify_der(vf.v, bad.data, bad.len, time(NULL), &claims, NULL);
    CHECK(st == CAI_ERR_FORMAT && msg_has(st, "RA-TLS evidence"));
    buf_free(&bad);
    buf trunc = forged_cert(ext.data, ext.len / 2);
    st = ratls_verify_der(vf.v, trunc.data, trunc.len, time(NULL), &claims, NULL);
    CHECK(st == CAI_ERR_FORMAT && msg_has(st, "RA-TLS evidence"));
    buf_free(&trunc);
    uint8_t *huge = calloc(1, RATLS_EXT_MAX + 16);
    buf over = forged_cert(huge, RATLS_EXT_MAX + 16);
    st = ratls_verify_der(vf.v, over.data, over.len, time(NULL), &claims, NULL);
    CHECK(st != CAI_OK);
    free(huge);
    buf_free(&over);
    buf_free(&ext);

    /* stale: issued longer ago than the window (10 s here), still valid */
    verifier young;
    verifier_new(&young, sim_dir, "", 10);
    st = verify_id(&young, good, time(NULL) + 60, &claims);
    CHECK(st == CAI_ERR_AUTH && msg_has(st, "stale"));
    CHECK_OK(verify_id(&young, good, time(NULL), NULL));
    verifier_free(&young);

    /* a quote from a simulated TEE this verifier does not trust */
    ratls_identity *other = identity(other_dir, NULL, DIGEST);
    st = verify_id(&vf, other, time(NULL), &claims);
    CHECK(st != CAI_OK && msg_has(st, "quote"));
    ratls_identity_free(other);

    /* a debug TD */
    sim_td td;
    memset(&td, 0, sizeof(td));
    td.td_attributes[0] = 1;
    ratls_identity *debug = identity(sim_dir, &td, DIGEST);
    st = verify_id(&vf, debug, time(NULL), &claims);
    CHECK(st != CAI_OK && msg_has(st, "DEBUG"));
    ratls_identity_free(debug);
    verifier_free(&vf);

    /* another MRTD than the policy's, another model than the policy's */
    verifier_new(&vf, sim_dir, "\"mr_td\":[\"01\"]", 0);
    st = verify_id(&vf, good, time(NULL), &claims);
    CHECK(st == CAI_ERR_AUTH && msg_has(st, "claim mr_td"));
    verifier_free(&vf);
    verifier_new(&vf, sim_dir,
                 "\"model_digest\":[\"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\"]", 0);
    st = verify_id(&vf, good, time(NULL), &claims);
    CHECK(st == CAI_ERR_AUTH && msg_has(st, "claim model_digest"));
    verifier_free(&vf);

    /* a policy that names no servers refuses every server */
    attest_trust_opts o = {.trust_sim = sim_dir};
    attest_trust *t = NULL;
    kbs_policy *p = NULL;
    ratls_verifier *v = NULL;
    const char *doc = "{\"version\":1,\"tee\":[\"sim\"]}";
    CHECK_OK(attest_trust_new(&o, &t));
    CHECK_OK(kbs_policy_parse(doc, strlen(doc), &p));
    ratls_verifier_config c = {.verifier = attest_trust_verifier(t), .policy = p};
    CHECK_OK(ratls_verifier_new(&c, &v));
    size_t len;
    const uint8_t *der = ratls_identity_cert_der(good, &len);
    st = ratls_verify_der(v, der, len, time(NULL), &claims, NULL);
    CHECK(st == CAI_ERR_AUTH && msg_has(st, "servers"));
    ratls_verifier_free(v);
    kbs_policy_free(p);
    attest_trust_free(t);
    ratls_identity_free(good);
}

static void test_identity_sign(void) {
    ratls_identity *id = identity(sim_dir, NULL, DIGEST);
    buf sig;
    buf_init(&sig, 0);
    CHECK_OK(ratls_identity_sign(id, "receipt", 7, &sig));
    size_t len;
    const uint8_t *der = ratls_identity_cert_der(id, &len);
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    CHECK(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, X509_get0_pubkey(x)) == 1);
    CHECK(EVP_DigestVerify(md, sig.data, sig.len, (const unsigned char *)"receipt", 7) == 1);
    EVP_MD_CTX_free(md);
    X509_free(x);
    buf_free(&sig);
    ratls_identity_free(id);
}

/* A receipt signs what it says; every edit breaks it, and the files it
 * names must hash to it. */
static void test_receipt(void) {
    verifier vf;
    verifier_new(&vf, sim_dir, "", 0);
    ratls_identity *id = identity(sim_dir, NULL, DIGEST);
    char md[65], rq[65], rs[65];
    uint8_t h[32];
    hex_encode(md, DIGEST, 32);
    CHECK_OK(kdf_sha256("request", 7, h));
    hex_encode(rq, h, 32);
    CHECK_OK(kdf_sha256("answer", 6, h));
    hex_encode(rs, h, 32);
    json_t *r = json_pack("{s:i, s:s, s:I, s:s, s:s, s:s, s:s, s:{s:f}}", "version", 1, "id", "x",
                          "created", (json_int_t)time(NULL), "model", "m", "model_digest", md,
                          "request_sha256", rq, "response_sha256", rs, "params", "temperature", 0.5);
    json_t *signed_r = NULL;
    CHECK_OK(ratls_receipt_sign(id, r, &signed_r));
    char *doc = json_dumps(signed_r, JSON_COMPACT);
    CHECK_OK(ratls_receipt_verify(vf.v, doc, strlen(doc), "request", 7, "answer", 6, NULL, NULL));
    cai_status st = ratls_receipt_verify(vf.v, doc, strlen(doc), "request", 7, "answer!", 7, NULL, NULL);
    CHECK(st == CAI_ERR_AUTH && msg_has(st, "response_sha256"));
    st = ratls_receipt_verify(vf.v, doc, strlen(doc), "Request", 7, NULL, 0, NULL, NULL);
    CHECK(st == CAI_ERR_AUTH && msg_has(st, "request_sha256"));
    /* every byte of the receipt object flipped: refused (or not JSON) */
    char *rs_at = strstr(doc, "\"receipt\":");
    char *end = strstr(doc, ",\"signature\"");
    CHECK(rs_at && end);
    for (char *p = rs_at + 11; p && end && p < end; p++) {
        if (*p == '"' || *p == '\\')
            continue;
        char was = *p;
        *p ^= 1;
        CHECK(ratls_receipt_verify(vf.v, doc, strlen(doc), NULL, 0, NULL, 0, NULL, NULL) != CAI_OK);
        *p = was;
    }
    free(doc);
    json_decref(signed_r);
    json_decref(r);
    ratls_identity_free(id);
    verifier_free(&vf);
}

/* ---- what a handshake leaves for its caller ------------------------------ */

/* One TLS 1.3 handshake in memory between a client that verifies with |v|
 * (attested TLS) and |rs|: 1 if the client completed it. */
static int handshake(ratls_server *rs, ratls_verifier *v) {
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    SSL *c = NULL, *s = NULL;
    BIO *cb = NULL, *sb = NULL;
    int cdone = 0, sdone = 0, failed = 0;
    if (cctx == NULL || ratls_ssl_ctx_setup(cctx, v) != CAI_OK || (c = SSL_new(cctx)) == NULL ||
        (s = SSL_new(ratls_server_ssl_ctx(rs))) == NULL || BIO_new_bio_pair(&cb, 0, &sb, 0) != 1) {
        CHECK(!"handshake set-up");
        goto out;
    }
    SSL_set_bio(c, cb, cb);
    SSL_set_bio(s, sb, sb);
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    for (int i = 0; i < 32 && !(cdone && sdone) && !failed; i++) {
        int rc = cdone ? 1 : SSL_do_handshake(c);
        cdone = rc == 1;
        failed = rc != 1 && SSL_get_error(c, rc) != SSL_ERROR_WANT_READ;
        rc = sdone ? 1 : SSL_do_handshake(s);
        sdone = rc == 1;
        failed |= rc != 1 && SSL_get_error(s, rc) != SSL_ERROR_WANT_READ;
    }
out:
    SSL_free(c);
    SSL_free(s);
    SSL_CTX_free(cctx);
    ERR_clear_error();
    return cdone;
}

/* A refusal's reason outlives the failure its TLS caller records after the
 * handshake; once taken it is forgotten, and taking nothing leaves the
 * caller's own detail alone. A verified handshake leaves its claims, once. */
static void test_last_take(void) {
    attest_source src = {.tee = ATTEST_TEE_SIM, .sim_dir = sim_dir};
    ratls_server *rs = NULL;
    CHECK_OK(ratls_server_new(&rs));
    CHECK_OK(ratls_server_start(rs, &src, DIGEST, RATLS_REFRESH_DEFAULT));
    verifier ok, bad;
    verifier_new(&ok, sim_dir, "", 0);
    verifier_new(&bad, sim_dir, "\"mr_td\":[\"01\"]", 0);
    json_t *claims = NULL;

    CHECK(!handshake(rs, bad.v));
    (void)cai_fail(CAI_ERR_AUTH, "http: the TLS handshake failed"); /* as httpc does */
    cai_status st = ratls_last_take(&claims);
    CHECK(st == CAI_ERR_AUTH && claims == NULL && msg_has(st, "claim mr_td"));
    (void)cai_fail(CAI_ERR_IO, "the caller's own detail");
    CHECK(ratls_last_take(&claims) == CAI_OK && claims == NULL);
    CHECK(strcmp(cai_errmsg(CAI_ERR_IO), "the caller's own detail") == 0);

    CHECK(handshake(rs, ok.v));
    CHECK(ratls_last_take(&claims) == CAI_OK && claims != NULL);
    CHECK(strcmp(json_string_value(json_object_get(claims, "tee")), "sim") == 0);
    json_decref(claims);
    CHECK(ratls_last_take(&claims) == CAI_OK && claims == NULL);
    verifier_free(&ok);
    verifier_free(&bad);
    ratls_server_free(rs);
}

int main(void) {
    snprintf(sim_dir, sizeof(sim_dir), "/tmp/cai-ratls-sim.XXXXXX");
    snprintf(other_dir, sizeof(other_dir), "/tmp/cai-ratls-other.XXXXXX");
    if (mkdtemp(sim_dir) == NULL || mkdtemp(other_dir) == NULL || sim_init(sim_dir) != CAI_OK ||
        sim_init(other_dir) != CAI_OK) {
        printf("FAIL setup: cannot make the simulated TEEs\n");
        return 1;
    }
    RUN(test_cbor_heads);
    RUN(test_cbor_refusals);
    RUN(test_cbor_rats_cert_vectors);
    RUN(test_evidence_round_trip);
    RUN(test_evidence_refusals);
    RUN(test_verify_accepts);
    RUN(test_verify_refusals);
    RUN(test_identity_sign);
    RUN(test_receipt);
    RUN(test_last_take);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", sim_dir, other_dir);
    if (system(cmd) != 0)
        printf("  could not remove %s\n", sim_dir);
    return test_summary();
}

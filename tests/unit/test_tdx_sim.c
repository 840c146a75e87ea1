/* Tests of the simulated TEE: the PKI it writes and the quotes it issues,
 * checked independently with OpenSSL (not with cai's verifier). */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "attest/quote.h"
#include "attest/sim.h"
#include "common/codec.h"
#include "common/file.h"
#include "test.h"

static char dir[] = "/tmp/cai-sim-test-XXXXXX";

static void path_of(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/%s", dir, name);
}

static X509 *load_cert(const char *name) {
    char p[256];
    path_of(p, sizeof(p), name);
    FILE *f = fopen(p, "r");
    X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    return x;
}

/* Verifies raw r||s |sig| over |msg| with |key|. */
static int verify_raw(EVP_PKEY *key, const void *msg, size_t n, const uint8_t sig[64]) {
    ECDSA_SIG *s = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, 32, NULL), *ss = BN_bin2bn(sig + 32, 32, NULL);
    unsigned char *der = NULL;
    int dlen = -1, ok = 0;
    if (s && r && ss && ECDSA_SIG_set0(s, r, ss)) {
        r = ss = NULL;
        dlen = i2d_ECDSA_SIG(s, &der);
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    ok = dlen > 0 && md && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
         EVP_DigestVerify(md, der, (size_t)dlen, msg, n) == 1;
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    BN_free(r);
    BN_free(ss);
    ECDSA_SIG_free(s);
    return ok;
}

static EVP_PKEY *raw_pubkey(const uint8_t xy[64]) {
    uint8_t pt[65] = {0x04};
    memcpy(pt + 1, xy, 64);
    EVP_PKEY *k = NULL;
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string("group", "prime256v1", 0),
        OSSL_PARAM_construct_octet_string("pub", pt, sizeof(pt)), OSSL_PARAM_construct_end()};
    if (c && EVP_PKEY_fromdata_init(c) == 1)
        EVP_PKEY_fromdata(c, &k, EVP_PKEY_PUBLIC_KEY, params);
    EVP_PKEY_CTX_free(c);
    return k;
}

static void test_init_files(void) {
    CHECK(mkdtemp(dir) != NULL);
    CHECK_OK(sim_init(dir));
    const char *keys[] = {SIM_ROOT_KEY, SIM_PLATFORM_KEY, SIM_PCK_KEY, SIM_TCB_KEY};
    for (int i = 0; i < 4; i++) {
        char p[256];
        struct stat s;
        path_of(p, sizeof(p), keys[i]);
        CHECK(stat(p, &s) == 0 && (s.st_mode & 0777) == 0600);
    }
    char p[256];
    path_of(p, sizeof(p), "README");
    buf b;
    CHECK_OK(file_read_all(p, 1 << 16, &b));
    CHECK(memmem(b.data, b.len, "INSECURE", 8) != NULL);
    buf_free(&b);
    /* A second init into the same directory refuses to overwrite. */
    CHECK_ST(sim_init(dir), CAI_ERR_EXISTS);
}

static void test_chain(void) {
    X509 *root = load_cert(SIM_ROOT_CERT), *plat = load_cert(SIM_PLATFORM_CERT),
         *pck = load_cert(SIM_PCK_CERT), *tcb = load_cert(SIM_TCB_CERT);
    CHECK(root && plat && pck && tcb);
    X509_STORE *store = X509_STORE_new();
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    X509_STORE_add_cert(store, root);
    sk_X509_push(untrusted, plat);
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    CHECK(X509_STORE_CTX_init(ctx, store, pck, untrusted) == 1);
    CHECK(X509_verify_cert(ctx) == 1);
    X509_STORE_CTX_free(ctx);
    ctx = X509_STORE_CTX_new();
    CHECK(X509_STORE_CTX_init(ctx, store, tcb, NULL) == 1);
    CHECK(X509_verify_cert(ctx) == 1);
    X509_STORE_CTX_free(ctx);
    /* The PCK certificate carries the SGX extension with the FMSPC in it. */
    ASN1_OBJECT *obj = OBJ_txt2obj("1.2.840.113741.1.13.1", 1);
    int idx = X509_get_ext_by_OBJ(pck, obj, -1);
    CHECK(idx >= 0);
    if (idx >= 0) {
        ASN1_OCTET_STRING *d = X509_EXTENSION_get_data(X509_get_ext(pck, idx));
        const uint8_t *p = ASN1_STRING_get0_data(d);
        int n = ASN1_STRING_length(d);
        uint8_t want[8] = {0x04, 0x06};
        memcpy(want + 2, sim_fmspc, 6);
        CHECK(p[0] == 0x30 && memmem(p, (size_t)n, want, 8) != NULL);
        /* And it is valid DER as a whole. */
        const uint8_t *q = p;
        ASN1_TYPE *t = d2i_ASN1_TYPE(NULL, &q, n);
        CHECK(t != NULL && q == p + n);
        ASN1_TYPE_free(t);
    }
    ASN1_OBJECT_free(obj);
    sk_X509_free(untrusted);
    X509_STORE_free(store);
    X509_free(root);
    X509_free(plat);
    X509_free(pck);
    X509_free(tcb);
}

static void test_collateral_signed(void) {
    char p[256];
    path_of(p, sizeof(p), SIM_COLLATERAL);
    json_error_t e;
    json_t *c = json_load_file(p, 0, &e);
    CHECK(c != NULL);
    X509 *tcb = load_cert(SIM_TCB_CERT);
    const char *fields[][2] = {{"tcb_info", "tcb_info_signature"},
                               {"qe_identity", "qe_identity_signature"}};
    for (int i = 0; c && tcb && i < 2; i++) {
        const char *text = json_string_value(json_object_get(c, fields[i][0]));
        const char *sig = json_string_value(json_object_get(c, fields[i][1]));
        uint8_t raw[64];
        size_t n = 0;
        CHECK(text && sig);
        if (!text || !sig)
            continue;
        CHECK_OK(hex_decode(sig, strlen(sig), raw, sizeof(raw), &n));
        CHECK(n == 64 && verify_raw(X509_get0_pubkey(tcb), text, strlen(text), raw));
        CHECK(!verify_raw(X509_get0_pubkey(tcb), text, strlen(text) - 1, raw));
    }
    if (c) {
        json_t *t = json_loads(json_string_value(json_object_get(c, "tcb_info")), 0, &e);
        CHECK(t && strcmp(json_string_value(json_object_get(t, "id")), "TDX") == 0);
        CHECK(json_array_size(json_object_get(t, "tdxModuleIdentities")) == 1);
        CHECK(json_object_get(t, "nextUpdate") != NULL);
        json_decref(t);
    }
    X509_free(tcb);
    json_decref(c);
}

static void test_quote(void) {
    uint8_t rd[64];
    for (int i = 0; i < 64; i++)
        rd[i] = (uint8_t)(200 - i);
    sim_td td = {0};
    memset(td.mr_td, 0x11, 48);
    memset(td.rtmr[2], 0x22, 48);
    td.td_attributes[0] = 1; /* DEBUG */
    buf b;
    CHECK_OK(sim_quote(dir, rd, &td, &b));
    tdx_quote *q = NULL;
    CHECK_OK(tdx_quote_parse(b.data, b.len, 0, &q));
    if (!q) {
        buf_free(&b);
        return;
    }
    CHECK(q->header.version == 4 && memcmp(q->body.report_data, rd, 64) == 0);
    CHECK(q->body.mr_td[47] == 0x11 && q->body.rtmr[2][0] == 0x22 && tdx_quote_is_debug(q));
    /* Quote signature by the attestation key over header || body. */
    EVP_PKEY *att = raw_pubkey(q->att_key);
    CHECK(att && verify_raw(att, q->raw, q->signed_len, q->signature));
    /* QE report signed by the PCK leaf, binding the attestation key. */
    X509 *pck = load_cert(SIM_PCK_CERT);
    CHECK(pck && verify_raw(X509_get0_pubkey(pck), q->qe_report_raw, 384, q->qe_report_sig));
    uint8_t h[32];
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    EVP_DigestUpdate(md, q->att_key, 64);
    EVP_DigestUpdate(md, q->qe_auth, q->qe_auth_len);
    EVP_DigestFinal_ex(md, h, NULL);
    EVP_MD_CTX_free(md);
    static const uint8_t zero[32];
    CHECK(memcmp(q->qe_report.report_data, h, 32) == 0 &&
          memcmp(q->qe_report.report_data + 32, zero, 32) == 0);
    CHECK(memcmp(q->qe_report.mr_signer, sim_qe_mrsigner, 32) == 0);
    /* The chain in the quote starts with the PCK certificate. */
    BIO *bio = BIO_new_mem_buf(q->pck_chain, (int)q->pck_chain_len);
    X509 *leaf = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    CHECK(leaf && pck && X509_cmp(leaf, pck) == 0);
    /* Tampering with the body breaks the quote signature. */
    q->raw[48 + 200] ^= 1;
    CHECK(att && !verify_raw(att, q->raw, q->signed_len, q->signature));
    X509_free(leaf);
    BIO_free(bio);
    X509_free(pck);
    EVP_PKEY_free(att);
    tdx_quote_free(q);
    buf_free(&b);
}

static void cleanup(void) {
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        printf("  could not remove %s\n", dir);
}

int main(void) {
    RUN(test_init_files);
    RUN(test_chain);
    RUN(test_collateral_signed);
    RUN(test_quote);
    cleanup();
    return test_summary();
}

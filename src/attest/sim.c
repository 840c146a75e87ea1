/* sim.c - the simulated TDX TEE: a test DCAP PKI and quotes; see sim.h. */
#include "attest/sim.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "attest/quote.h"
#include "common/codec.h"
#include "common/file.h"
#include "common/secure.h"

const uint8_t sim_fmspc[6] = {0x00, 0x5A, 0x51, 0x00, 0x00, 0x00};
const uint8_t sim_pce_id[2] = {0x00, 0x00};
const uint8_t sim_qe_mrsigner[32] = {0xCA, 0x15, 0x13, 0x00, 0x51, 0x3D, 0xE5, 0x00,
                                     0xCA, 0x15, 0x13, 0x00, 0x51, 0x3D, 0xE5, 0x00,
                                     0xCA, 0x15, 0x13, 0x00, 0x51, 0x3D, 0xE5, 0x00,
                                     0xCA, 0x15, 0x13, 0x00, 0x51, 0x3D, 0xE5, 0x01};
/* TDX module SVN 5, module major version 1 (-> identity TDX_01), microcode 2 */
const uint8_t sim_tee_tcb_svn[16] = {5, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};

#define SIM_SGX_SVN 3
#define SIM_PCESVN 13
#define SIM_QE_ISVSVN 4
#define SIM_QE_PRODID 2
#define SIM_CERT_DAYS 3650
#define SIM_COLLATERAL_DAYS 30

static const uint8_t qe_vendor_id_intel[16] = {0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9,
                                               0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07};
static const uint8_t qe_attributes[16] = {0x11};

static cai_status ossl_fail(const char *what) {
    return cai_fail(CAI_ERR_CRYPTO, "sim: OpenSSL failed to %s", what);
}

/* ---- DER for the SGX extension ------------------------------------------ */

static const uint8_t sgx_oid[9] = {0x2A, 0x86, 0x48, 0x86, 0xF8, 0x4D, 0x01, 0x0D, 0x01};

static int der_tlv(buf *b, uint8_t tag, const void *p, size_t n) {
    int r = buf_append_u8(b, tag) != CAI_OK;
    if (n < 0x80)
        r |= buf_append_u8(b, (uint8_t)n) != CAI_OK;
    else if (n < 0x100)
        r |= buf_append_u8(b, 0x81) != CAI_OK || buf_append_u8(b, (uint8_t)n) != CAI_OK;
    else {
        CAI_ASSERT(n < 0x10000);
        r |= buf_append_u8(b, 0x82) != CAI_OK || buf_append_u8(b, (uint8_t)(n >> 8)) != CAI_OK ||
             buf_append_u8(b, (uint8_t)n) != CAI_OK;
    }
    return r | (n ? buf_append(b, p, n) != CAI_OK : 0);
}

/* Appends SEQUENCE { OID sgx.<a>[.<b>], value } where value is tag/content. */
static int der_item(buf *b, int a, int sub, uint8_t tag, const void *p, size_t n) {
    buf in;
    uint8_t oid[11];
    size_t ol = sizeof(sgx_oid);
    memcpy(oid, sgx_oid, ol);
    oid[ol++] = (uint8_t)a;
    if (sub)
        oid[ol++] = (uint8_t)sub;
    buf_init(&in, 0);
    int r = der_tlv(&in, 0x06, oid, ol) | der_tlv(&in, tag, p, n);
    r |= der_tlv(b, 0x30, in.data, in.len);
    buf_free(&in);
    return r;
}

static int der_small_int(uint8_t *out, unsigned v, size_t *n) {
    CAI_ASSERT(v < 0x8000);
    if (v < 0x80) {
        out[0] = (uint8_t)v;
        *n = 1;
    } else {
        out[0] = (uint8_t)(v >> 8);
        out[1] = (uint8_t)v;
        *n = 2;
        if (out[0] == 0 && !(out[1] & 0x80)) {
            out[0] = out[1];
            *n = 1;
        }
    }
    return 0;
}

/* The DER value of extension 1.2.840.113741.1.13.1 as Intel encodes it. */
static int sgx_extension_der(buf *out) {
    buf tcb, all;
    uint8_t ppid[16], cpusvn[16], v[2];
    size_t vn;
    int r = 0;
    for (int i = 0; i < 16; i++) {
        ppid[i] = (uint8_t)(0x50 + i);
        cpusvn[i] = SIM_SGX_SVN;
    }
    buf_init(&tcb, 0);
    buf_init(&all, 0);
    for (int i = 1; i <= 16; i++) {
        der_small_int(v, SIM_SGX_SVN, &vn);
        r |= der_item(&tcb, 2, i, 0x02, v, vn);
    }
    der_small_int(v, SIM_PCESVN, &vn);
    r |= der_item(&tcb, 2, 17, 0x02, v, vn);
    r |= der_item(&tcb, 2, 18, 0x04, cpusvn, 16);
    r |= der_item(&all, 1, 0, 0x04, ppid, 16);
    {
        buf in;
        uint8_t oid[10];
        memcpy(oid, sgx_oid, 9);
        oid[9] = 2;
        buf_init(&in, 0);
        r |= der_tlv(&in, 0x06, oid, 10) | der_tlv(&in, 0x30, tcb.data, tcb.len);
        r |= der_tlv(&all, 0x30, in.data, in.len);
        buf_free(&in);
    }
    r |= der_item(&all, 3, 0, 0x04, sim_pce_id, 2);
    r |= der_item(&all, 4, 0, 0x04, sim_fmspc, 6);
    uint8_t sgx_type = 0; /* Standard */
    r |= der_item(&all, 5, 0, 0x0A, &sgx_type, 1);
    buf_init(out, 0);
    r |= der_tlv(out, 0x30, all.data, all.len);
    buf_free(&tcb);
    buf_free(&all);
    return r;
}

/* ---- certificates and CRLs ---------------------------------------------- */

static EVP_PKEY *gen_key(void) { return EVP_EC_gen("P-256"); }

static X509_NAME *make_name(const char *cn) {
    X509_NAME *n = X509_NAME_new();
    if (n == NULL ||
        !X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0) ||
        !X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8,
                                    (const unsigned char *)"cai simulated TEE (insecure test PKI)",
                                    -1, -1, 0) ||
        !X509_NAME_add_entry_by_txt(n, "C", MBSTRING_UTF8, (const unsigned char *)"US", -1, -1, 0)) {
        X509_NAME_free(n);
        return NULL;
    }
    return n;
}

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value) {
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    int ok = e != NULL && X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    return ok;
}

/* Makes a certificate for |key| named |cn|, issued by |issuer| (NULL: self)
 * with |issuer_key|. |kind|: 0 = CA (pathlen |pathlen|), 1 = leaf. */
static cai_status make_cert(const char *cn, X509 *issuer, EVP_PKEY *issuer_key, EVP_PKEY *key,
                            int ca, int pathlen, long serial, const buf *sgx_ext,
                            X509 **out) {
    *out = NULL;
    X509 *x = X509_new();
    X509_NAME *name = make_name(cn);
    int ok = x && name && X509_set_version(x, 2) &&
             ASN1_INTEGER_set(X509_get_serialNumber(x), serial) &&
             X509_set_subject_name(x, name) &&
             X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) &&
             X509_gmtime_adj(X509_getm_notBefore(x), -3600) &&
             X509_gmtime_adj(X509_getm_notAfter(x), (long)SIM_CERT_DAYS * 86400) &&
             X509_set_pubkey(x, key);
    X509_NAME_free(name);
    if (ok) {
        X509V3_CTX ctx;
        X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
        char bc[64];
        if (ca)
            snprintf(bc, sizeof(bc), "critical,CA:TRUE,pathlen:%d", pathlen);
        else
            snprintf(bc, sizeof(bc), "critical,CA:FALSE");
        ok = add_ext(x, &ctx, NID_basic_constraints, bc) &&
             add_ext(x, &ctx, NID_key_usage,
                     ca ? "critical,keyCertSign,cRLSign"
                        : "critical,digitalSignature,nonRepudiation") &&
             add_ext(x, &ctx, NID_subject_key_identifier, "hash") &&
             add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always");
    }
    if (ok && sgx_ext) {
        ASN1_OBJECT *obj = OBJ_txt2obj("1.2.840.113741.1.13.1", 1);
        ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
        X509_EXTENSION *e = NULL;
        ok = obj && os && ASN1_OCTET_STRING_set(os, sgx_ext->data, (int)sgx_ext->len) &&
             (e = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os)) != NULL &&
             X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
        ASN1_OCTET_STRING_free(os);
        ASN1_OBJECT_free(obj);
    }
    if (!ok || !X509_sign(x, issuer_key, EVP_sha256())) {
        X509_free(x);
        return ossl_fail("make a certificate");
    }
    *out = x;
    return CAI_OK;
}

static cai_status make_crl(X509 *issuer, EVP_PKEY *key, buf *der) {
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *last = X509_gmtime_adj(NULL, -3600);
    ASN1_TIME *next = X509_gmtime_adj(NULL, (long)SIM_COLLATERAL_DAYS * 86400);
    unsigned char *p = NULL;
    int n = -1;
    int ok = crl && last && next && X509_CRL_set_version(crl, 1) &&
             X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer)) &&
             X509_CRL_set1_lastUpdate(crl, last) && X509_CRL_set1_nextUpdate(crl, next) &&
             X509_CRL_sign(crl, key, EVP_sha256()) && (n = i2d_X509_CRL(crl, &p)) > 0;
    buf_init(der, 0);
    cai_status st = ok ? buf_append(der, p, (size_t)n) : ossl_fail("make a CRL");
    OPENSSL_free(p);
    ASN1_TIME_free(last);
    ASN1_TIME_free(next);
    X509_CRL_free(crl);
    return st;
}

/* ---- PEM / files -------------------------------------------------------- */

static cai_status bio_to_buf(BIO *bio, buf *out) {
    char *p;
    long n = BIO_get_mem_data(bio, &p);
    buf_init(out, 0);
    if (n < 0)
        return ossl_fail("read a memory BIO");
    return buf_append(out, p, (size_t)n);
}

static cai_status cert_pem(X509 *x, buf *out) {
    BIO *bio = BIO_new(BIO_s_mem());
    cai_status st = bio && PEM_write_bio_X509(bio, x) ? bio_to_buf(bio, out)
                                                       : ossl_fail("write a certificate");
    BIO_free(bio);
    return st;
}

static cai_status write_file(const char *dir, const char *name, const void *p, size_t n,
                             mode_t mode) {
    char path[4096];
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
        return cai_fail(CAI_ERR_LIMIT, "sim: path too long");
    return file_write_new(path, p, n, mode);
}

static cai_status write_key(const char *dir, const char *name, EVP_PKEY *key) {
    BIO *bio = BIO_new(BIO_s_mem());
    buf b;
    buf_init(&b, 0);
    cai_status st = bio && PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL)
                        ? bio_to_buf(bio, &b)
                        : ossl_fail("write a private key");
    if (st == CAI_OK)
        st = write_file(dir, name, b.data, b.len, 0600);
    secure_wipe(b.data, b.len);
    buf_free(&b);
    BIO_free(bio);
    return st;
}

static cai_status write_cert(const char *dir, const char *name, X509 *x) {
    buf b;
    cai_status st = cert_pem(x, &b);
    if (st == CAI_OK)
        st = write_file(dir, name, b.data, b.len, 0644);
    buf_free(&b);
    return st;
}

static cai_status read_path(const char *dir, const char *name, buf *out) {
    char path[4096];
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
        return cai_fail(CAI_ERR_LIMIT, "sim: path too long");
    return file_read_all(path, 1 << 20, out);
}

/* ---- signatures ---------------------------------------------------------- */

/* ECDSA P-256 / SHA-256 over |msg| with |key|, as raw r||s. */
static cai_status sign_raw(EVP_PKEY *key, const void *msg, size_t n, uint8_t sig[64]) {
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char der[80];
    size_t dlen = sizeof(der);
    ECDSA_SIG *s = NULL;
    const unsigned char *p = der;
    int ok = md && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) &&
             EVP_DigestSign(md, der, &dlen, msg, n) &&
             (s = d2i_ECDSA_SIG(NULL, &p, (long)dlen)) != NULL &&
             BN_bn2binpad(ECDSA_SIG_get0_r(s), sig, 32) == 32 &&
             BN_bn2binpad(ECDSA_SIG_get0_s(s), sig + 32, 32) == 32;
    ECDSA_SIG_free(s);
    EVP_MD_CTX_free(md);
    return ok ? CAI_OK : ossl_fail("sign");
}

/* ---- collateral JSON ----------------------------------------------------- */

static void iso_time(char out[32], time_t t) {
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_t *hexstr(const void *p, size_t n) {
    char s[256];
    CAI_ASSERT(2 * n + 1 <= sizeof(s));
    hex_encode(s, p, n);
    for (char *c = s; *c; c++)
        if (*c >= 'a' && *c <= 'f')
            *c = (char)(*c - 'a' + 'A');
    return json_string(s);
}

static json_t *tcb_info_json(const char *issue, const char *next) {
    json_t *sgx = json_array(), *tdx = json_array();
    for (int i = 0; i < 16; i++) {
        json_array_append_new(sgx, json_pack("{s:i}", "svn", SIM_SGX_SVN));
        json_array_append_new(tdx, json_pack("{s:i}", "svn", sim_tee_tcb_svn[i]));
    }
    char zero48[97];
    memset(zero48, '0', 96);
    zero48[96] = 0;
    json_t *module = json_pack("{s:s,s:s,s:s}", "mrsigner", zero48, "attributes",
                               "0000000000000000", "attributesMask", "FFFFFFFFFFFFFFFF");
    char id[16];
    snprintf(id, sizeof(id), "TDX_%02X", sim_tee_tcb_svn[1]);
    json_t *ident = json_pack(
        "[{s:s,s:s,s:s,s:s,s:[{s:{s:i},s:s,s:s}]}]", "id", id, "mrsigner", zero48,
        "attributes", "0000000000000000", "attributesMask", "FFFFFFFFFFFFFFFF", "tcbLevels",
        "tcb", "isvsvn", sim_tee_tcb_svn[0], "tcbDate", issue, "tcbStatus", "UpToDate");
    json_t *levels = json_pack("[{s:{s:o,s:i,s:o},s:s,s:s}]", "tcb", "sgxtcbcomponents", sgx,
                               "pcesvn", SIM_PCESVN, "tdxtcbcomponents", tdx, "tcbDate", issue,
                               "tcbStatus", "UpToDate");
    char fmspc[13], pce[5];
    hex_encode(fmspc, sim_fmspc, 6);
    hex_encode(pce, sim_pce_id, 2);
    for (char *c = fmspc; *c; c++)
        if (*c >= 'a' && *c <= 'f')
            *c = (char)(*c - 'a' + 'A');
    return json_pack("{s:s,s:i,s:s,s:s,s:s,s:s,s:i,s:i,s:o,s:o,s:o}", "id", "TDX", "version", 3,
                     "issueDate", issue, "nextUpdate", next, "fmspc", fmspc, "pceId", pce,
                     "tcbType", 0, "tcbEvaluationDataNumber", 1, "tdxModule", module,
                     "tdxModuleIdentities", ident, "tcbLevels", levels);
}

static json_t *qe_identity_json(const char *issue, const char *next) {
    uint8_t attr_mask[16] = {0xFB, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
    uint8_t misc_mask[4] = {0xFF, 0xFF, 0xFF, 0xFF}, misc[4] = {0};
    return json_pack("{s:s,s:i,s:s,s:s,s:i,s:o,s:o,s:o,s:o,s:o,s:i,s:[{s:{s:i},s:s,s:s}]}", "id",
                     "TD_QE", "version", 2, "issueDate", issue, "nextUpdate", next,
                     "tcbEvaluationDataNumber", 1, "miscselect", hexstr(misc, 4),
                     "miscselectMask", hexstr(misc_mask, 4), "attributes",
                     hexstr(qe_attributes, 16), "attributesMask", hexstr(attr_mask, 16),
                     "mrsigner", hexstr(sim_qe_mrsigner, 32), "isvprodid", SIM_QE_PRODID,
                     "tcbLevels", "tcb", "isvsvn", SIM_QE_ISVSVN, "tcbDate", issue,
                     "tcbStatus", "UpToDate");
}

/* Serialises |obj| compactly into |text|, signs it with |key| into |sig_hex|. */
static cai_status sign_json(json_t *obj, EVP_PKEY *key, char **text, char sig_hex[129]) {
    *text = obj ? json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (*text == NULL)
        return CAI_ERR_NOMEM;
    uint8_t sig[64];
    cai_status st = sign_raw(key, *text, strlen(*text), sig);
    hex_encode(sig_hex, sig, 64);
    return st;
}

/* Writes {"<field>":<text>,"signature":"<hex>"} keeping |text| byte-exact. */
static cai_status write_signed(const char *dir, const char *name, const char *field,
                               const char *text, const char *sig_hex) {
    buf b;
    buf_init(&b, 0);
    cai_status st = buf_printf(&b, "{\"%s\":%s,\"signature\":\"%s\"}\n", field, text, sig_hex);
    if (st == CAI_OK)
        st = write_file(dir, name, b.data, b.len, 0644);
    buf_free(&b);
    return st;
}

static const char readme[] =
    "cai simulated TDX TEE - INSECURE TEST PKI\n"
    "\n"
    "This directory was made by `sim_init` (cai attest). It holds a throw-away\n"
    "imitation of Intel's DCAP PKI: a root CA, a PCK platform CA, a PCK leaf\n"
    "certificate with the SGX extension, a TCB signing certificate, CRLs, TCB info\n"
    "and QE identity, and collateral.json in the same format as real collateral.\n"
    "\n"
    "The PRIVATE KEYS of all of them are stored here (*.key, mode 0600), so anyone\n"
    "who can read this directory can forge quotes that verify against this root.\n"
    "Never trust this root for anything but tests; a verifier must only accept\n"
    "it when told to explicitly.\n";

cai_status sim_init(const char *dir) {
    EVP_PKEY *root_k = NULL, *plat_k = NULL, *pck_k = NULL, *tcb_k = NULL;
    X509 *root = NULL, *plat = NULL, *pck = NULL, *tcb = NULL;
    buf ext, root_pem, plat_pem, tcb_pem, root_crl, pck_crl;
    char *tcb_text = NULL, *qe_text = NULL, *coll_text = NULL;
    char tcb_sig[129], qe_sig[129];
    json_t *tcb_j = NULL, *qe_j = NULL, *cj = NULL;
    cai_status st;
    buf_init(&ext, 0);
    buf_init(&root_pem, 0);
    buf_init(&plat_pem, 0);
    buf_init(&tcb_pem, 0);
    buf_init(&root_crl, 0);
    buf_init(&pck_crl, 0);

    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return cai_fail(CAI_ERR_IO, "sim: cannot create %s: %s", dir, strerror(errno));
    if (!(root_k = gen_key()) || !(plat_k = gen_key()) || !(pck_k = gen_key()) ||
        !(tcb_k = gen_key())) {
        st = ossl_fail("generate a P-256 key");
        goto out;
    }
    if (sgx_extension_der(&ext)) {
        st = CAI_ERR_NOMEM;
        goto out;
    }
    if ((st = make_cert("cai sim SGX Root CA", NULL, root_k, root_k, 1, 1, 1, NULL, &root)) ||
        (st = make_cert("cai sim SGX PCK Platform CA", root, root_k, plat_k, 1, 0, 2, NULL,
                        &plat)) ||
        (st = make_cert("cai sim SGX PCK Certificate", plat, plat_k, pck_k, 0, 0, 3, &ext,
                        &pck)) ||
        (st = make_cert(SIM_TCB_SIGNING_CN, root, root_k, tcb_k, 0, 0, 4, NULL, &tcb)))
        goto out;
    if ((st = cert_pem(root, &root_pem)) || (st = cert_pem(plat, &plat_pem)) ||
        (st = cert_pem(tcb, &tcb_pem)) || (st = make_crl(root, root_k, &root_crl)) ||
        (st = make_crl(plat, plat_k, &pck_crl)))
        goto out;

    time_t now = time(NULL);
    char issue[32], next[32];
    iso_time(issue, now);
    iso_time(next, now + (time_t)SIM_COLLATERAL_DAYS * 86400);
    tcb_j = tcb_info_json(issue, next);
    qe_j = qe_identity_json(issue, next);
    if ((st = sign_json(tcb_j, tcb_k, &tcb_text, tcb_sig)) ||
        (st = sign_json(qe_j, tcb_k, &qe_text, qe_sig)))
        goto out;

    /* collateral.json in the shared format */
    char *rc_hex = malloc(2 * root_crl.len + 1), *pc_hex = malloc(2 * pck_crl.len + 1);
    buf chain_plat, chain_tcb;
    buf_init(&chain_plat, 0);
    buf_init(&chain_tcb, 0);
    int r = rc_hex == NULL || pc_hex == NULL;
    r = r || buf_append(&chain_plat, plat_pem.data, plat_pem.len) ||
        buf_append(&chain_plat, root_pem.data, root_pem.len) || buf_terminate(&chain_plat) ||
        buf_append(&chain_tcb, tcb_pem.data, tcb_pem.len) ||
        buf_append(&chain_tcb, root_pem.data, root_pem.len) || buf_terminate(&chain_tcb);
    if (!r) {
        hex_encode(rc_hex, root_crl.data, root_crl.len);
        hex_encode(pc_hex, pck_crl.data, pck_crl.len);
        cj = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "pck_crl_issuer_chain",
                       (char *)chain_plat.data, "root_ca_crl", rc_hex, "pck_crl", pc_hex,
                       "tcb_info_issuer_chain", (char *)chain_tcb.data, "tcb_info", tcb_text,
                       "tcb_info_signature", tcb_sig, "qe_identity_issuer_chain",
                       (char *)chain_tcb.data, "qe_identity", qe_text,
                       "qe_identity_signature", qe_sig);
        coll_text = cj ? json_dumps(cj, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    }
    free(rc_hex);
    free(pc_hex);
    buf_free(&chain_plat);
    buf_free(&chain_tcb);
    if (coll_text == NULL) {
        st = CAI_ERR_NOMEM;
        goto out;
    }

    if ((st = write_file(dir, "README", readme, sizeof(readme) - 1, 0644)) ||
        (st = write_key(dir, SIM_ROOT_KEY, root_k)) ||
        (st = write_key(dir, SIM_PLATFORM_KEY, plat_k)) ||
        (st = write_key(dir, SIM_PCK_KEY, pck_k)) || (st = write_key(dir, SIM_TCB_KEY, tcb_k)) ||
        (st = write_cert(dir, SIM_ROOT_CERT, root)) ||
        (st = write_cert(dir, SIM_PLATFORM_CERT, plat)) ||
        (st = write_cert(dir, SIM_PCK_CERT, pck)) || (st = write_cert(dir, SIM_TCB_CERT, tcb)) ||
        (st = write_file(dir, SIM_ROOT_CRL, root_crl.data, root_crl.len, 0644)) ||
        (st = write_file(dir, SIM_PCK_CRL, pck_crl.data, pck_crl.len, 0644)) ||
        (st = write_signed(dir, SIM_TCB_INFO, "tcbInfo", tcb_text, tcb_sig)) ||
        (st = write_signed(dir, SIM_QE_IDENTITY, "enclaveIdentity", qe_text, qe_sig)) ||
        (st = write_file(dir, SIM_COLLATERAL, coll_text, strlen(coll_text), 0644)))
        goto out;
    st = CAI_OK;
out:
    free(tcb_text);
    free(qe_text);
    free(coll_text);
    json_decref(tcb_j);
    json_decref(qe_j);
    json_decref(cj);
    buf_free(&ext);
    buf_free(&root_pem);
    buf_free(&plat_pem);
    buf_free(&tcb_pem);
    buf_free(&root_crl);
    buf_free(&pck_crl);
    X509_free(root);
    X509_free(plat);
    X509_free(pck);
    X509_free(tcb);
    EVP_PKEY_free(root_k);
    EVP_PKEY_free(plat_k);
    EVP_PKEY_free(pck_k);
    EVP_PKEY_free(tcb_k);
    return st;
}

/* ---- quotes -------------------------------------------------------------- */

static cai_status load_key(const char *dir, const char *name, EVP_PKEY **out) {
    buf b;
    cai_status st = read_path(dir, name, &b);
    if (st != CAI_OK)
        return st;
    BIO *bio = BIO_new_mem_buf(b.data, (int)b.len);
    *out = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    secure_wipe(b.data, b.len);
    buf_free(&b);
    return *out ? CAI_OK : cai_fail(CAI_ERR_FORMAT, "sim: %s/%s is not a private key", dir, name);
}

cai_status sim_quote(const char *dir, const uint8_t report_data[64], const sim_td *td,
                     buf *out) {
    static const sim_td zero_td;
    EVP_PKEY *pck_k = NULL, *att_k = NULL;
    buf chain, pck, plat, root, qe;
    uint8_t pub[65], auth[32];
    size_t publen = 0;
    cai_status st;
    if (td == NULL)
        td = &zero_td;
    buf_init(out, 0);
    buf_init(&chain, 0);
    buf_init(&qe, 0);
    buf_init(&pck, 0);
    buf_init(&plat, 0);
    buf_init(&root, 0);
    if ((st = load_key(dir, SIM_PCK_KEY, &pck_k)) || (st = read_path(dir, SIM_PCK_CERT, &pck)) ||
        (st = read_path(dir, SIM_PLATFORM_CERT, &plat)) ||
        (st = read_path(dir, SIM_ROOT_CERT, &root)))
        goto out;
    if ((st = buf_append(&chain, pck.data, pck.len)) ||
        (st = buf_append(&chain, plat.data, plat.len)) ||
        (st = buf_append(&chain, root.data, root.len)))
        goto out;
    if (!(att_k = gen_key()) ||
        !EVP_PKEY_get_octet_string_param(att_k, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub),
                                         &publen) ||
        publen != 65 || pub[0] != 0x04) {
        st = ossl_fail("make the attestation key");
        goto out;
    }
    for (int i = 0; i < 32; i++)
        auth[i] = (uint8_t)i;

    /* QE report: report data = SHA-256(att key || auth data) || zeros */
    uint8_t rd[64] = {0};
    {
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        int ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) &&
                 EVP_DigestUpdate(md, pub + 1, 64) && EVP_DigestUpdate(md, auth, 32) &&
                 EVP_DigestFinal_ex(md, rd, NULL);
        EVP_MD_CTX_free(md);
        if (!ok) {
            st = ossl_fail("hash");
            goto out;
        }
    }
    uint8_t cpusvn[16], zeros[96] = {0};
    memset(cpusvn, SIM_SGX_SVN, 16);
    int r = buf_append(&qe, cpusvn, 16) || buf_append_u32le(&qe, 0) ||
            buf_append(&qe, zeros, 28) || buf_append(&qe, qe_attributes, 16) ||
            buf_append(&qe, zeros, 32) /* mr_enclave */ || buf_append(&qe, zeros, 32) ||
            buf_append(&qe, sim_qe_mrsigner, 32) || buf_append(&qe, zeros, 96) ||
            buf_append_u16le(&qe, SIM_QE_PRODID) || buf_append_u16le(&qe, SIM_QE_ISVSVN) ||
            buf_append(&qe, zeros, 60) || buf_append(&qe, rd, 64);
    CAI_ASSERT(r || qe.len == TDX_SGX_REPORT_LEN);

    /* header || TD report body */
    uint8_t user_data[20] = {0}, zero48[48] = {0}, zero8[8] = {0};
    r = r || buf_append_u16le(out, 4) || buf_append_u16le(out, TDX_ATT_KEY_ECDSA_P256) ||
        buf_append_u32le(out, TDX_TEE_TYPE_TDX) || buf_append_u32le(out, 0) ||
        buf_append(out, qe_vendor_id_intel, 16) || buf_append(out, user_data, 20) ||
        buf_append(out, sim_tee_tcb_svn, 16) || buf_append(out, zero48, 48) /* mrseam */ ||
        buf_append(out, zero48, 48) || buf_append(out, zero8, 8) ||
        buf_append(out, td->td_attributes, 8) || buf_append(out, td->xfam, 8) ||
        buf_append(out, td->mr_td, 48) || buf_append(out, td->mr_config_id, 48) ||
        buf_append(out, td->mr_owner, 48) || buf_append(out, zero48, 48) ||
        buf_append(out, td->rtmr, sizeof(td->rtmr)) || buf_append(out, report_data, 64);
    if (r) {
        st = CAI_ERR_NOMEM;
        goto out;
    }
    CAI_ASSERT(out->len == TDX_QUOTE_HEADER_LEN + TDX_TD_REPORT10_LEN);
    uint8_t qsig[64], qesig[64];
    if ((st = sign_raw(att_k, out->data, out->len, qsig)) ||
        (st = sign_raw(pck_k, qe.data, qe.len, qesig)))
        goto out;
    size_t cd_len = TDX_SGX_REPORT_LEN + 64 + 2 + sizeof(auth) + 6 + chain.len;
    size_t sig_len = 64 + 64 + 6 + cd_len;
    r = buf_append_u32le(out, (uint32_t)sig_len) || buf_append(out, qsig, 64) ||
        buf_append(out, pub + 1, 64) || buf_append_u16le(out, TDX_CERT_QE_REPORT) ||
        buf_append_u32le(out, (uint32_t)cd_len) || buf_append(out, qe.data, qe.len) ||
        buf_append(out, qesig, 64) || buf_append_u16le(out, sizeof(auth)) ||
        buf_append(out, auth, sizeof(auth)) || buf_append_u16le(out, TDX_CERT_PCK_CHAIN) ||
        buf_append_u32le(out, (uint32_t)chain.len) || buf_append(out, chain.data, chain.len);
    st = r ? CAI_ERR_NOMEM : CAI_OK;
out:
    if (st != CAI_OK)
        buf_free(out);
    EVP_PKEY_free(pck_k);
    EVP_PKEY_free(att_k);
    buf_free(&chain);
    buf_free(&qe);
    buf_free(&pck);
    buf_free(&plat);
    buf_free(&root);
    return st;
}

/* receipt.c - receipts signed by the attested TLS key. */
#include "ratls/receipt.h"

#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/buf.h"
#include "common/codec.h"
#include "common/jcs.h"
#include "common/secure.h"
#include "crypto/kdf.h"
#include "ratls/evidence.h"

static cai_status b64_json(const void *p, size_t n, json_t **out) {
    buf b;
    buf_init(&b, 0);
    cai_status st = buf_reserve(&b, b64_encoded_len(n, B64_STD) + 1);
    if (st == CAI_OK) {
        b64_encode((char *)b.data, p, n, B64_STD);
        *out = json_string((const char *)b.data);
        st = *out ? CAI_OK : CAI_ERR_NOMEM;
    }
    buf_free(&b);
    return st;
}

cai_status ratls_receipt_sign(const ratls_identity *id, json_t *receipt, json_t **out) {
    *out = NULL;
    size_t der_len;
    const uint8_t *der = ratls_identity_cert_der(id, &der_len);
    uint8_t fp[32];
    char hex[65];
    cai_status st = kdf_sha256(der, der_len, fp);
    if (st != CAI_OK)
        return st;
    hex_encode(hex, fp, sizeof(fp));
    json_object_set_new(receipt, "cert_sha256", json_string(hex));
    buf canon, sig;
    buf_init(&canon, RATLS_RECEIPT_MAX);
    buf_init(&sig, 0);
    json_t *s = NULL, *c = NULL;
    if ((st = jcs_serialize(receipt, &canon)) != CAI_OK ||
        (st = ratls_identity_sign(id, canon.data, canon.len, &sig)) != CAI_OK ||
        (st = b64_json(sig.data, sig.len, &s)) != CAI_OK || (st = b64_json(der, der_len, &c)) != CAI_OK)
        goto out;
    *out = json_pack("{s:O, s:o, s:o}", "receipt", receipt, "signature", s, "certificate", c);
    s = c = NULL;
    st = *out ? CAI_OK : CAI_ERR_NOMEM;
out:
    json_decref(s);
    json_decref(c);
    buf_free(&canon);
    buf_free(&sig);
    return st;
}

/* The bytes of base64 member |name| of |o| into |out| (at most |max|). */
static cai_status b64_member(const json_t *o, const char *name, size_t max, buf *out) {
    const char *s = json_string_value(json_object_get(o, name));
    buf_init(out, max);
    if (s == NULL)
        return cai_fail(CAI_ERR_FORMAT, "receipt: no \"%s\"", name);
    size_t n = strlen(s), cap = b64_decoded_max(n);
    cai_status st = cap > max ? CAI_ERR_LIMIT : buf_reserve(out, cap + 1);
    if (st == CAI_OK && b64_decode(s, n, out->data, cap + 1, &out->len, B64_STD) != CAI_OK)
        st = CAI_ERR_FORMAT;
    return st == CAI_OK ? CAI_OK : cai_fail(st, "receipt: \"%s\" is not base64 of at most %zu bytes", name, max);
}

static cai_status hash_is(const json_t *r, const char *name, const void *data, size_t len) {
    uint8_t h[32];
    char hex[65];
    const char *want = json_string_value(json_object_get(r, name));
    cai_status st = kdf_sha256(data, len, h);
    if (st != CAI_OK)
        return st;
    hex_encode(hex, h, sizeof(h));
    if (want == NULL || strlen(want) != 64 || !secure_memeq(hex, want, 64))
        return cai_fail(CAI_ERR_AUTH, "receipt: %s: the given %s does not hash to what the receipt says",
                        name, strncmp(name, "request", 7) == 0 ? "request" : "response");
    return CAI_OK;
}

cai_status ratls_receipt_verify(ratls_verifier *v, const char *doc, size_t len,
                                const void *request, size_t request_len, const void *response,
                                size_t response_len, json_t **claims_out, json_t **receipt_out) {
    if (claims_out)
        *claims_out = NULL;
    if (receipt_out)
        *receipt_out = NULL;
    if (len > RATLS_RECEIPT_MAX)
        return cai_fail(CAI_ERR_LIMIT, "receipt: larger than %u bytes", RATLS_RECEIPT_MAX);
    json_error_t je;
    json_t *d = json_loadb(doc, len, JSON_REJECT_DUPLICATES, &je), *claims = NULL;
    json_t *r = json_object_get(d, "receipt");
    buf cert, sig, canon;
    buf_init(&cert, 0);
    buf_init(&sig, 0);
    buf_init(&canon, RATLS_RECEIPT_MAX);
    cai_status st = CAI_OK;
    json_int_t created = json_integer_value(json_object_get(r, "created"));
    if (!json_is_object(r) || json_integer_value(json_object_get(r, "version")) != 1 || created <= 0) {
        st = cai_fail(CAI_ERR_FORMAT, "receipt: not a version 1 receipt with a creation time");
        goto out;
    }
    if ((st = b64_member(d, "certificate", RATLS_EXT_MAX + 64 * 1024, &cert)) != CAI_OK ||
        (st = b64_member(d, "signature", 256, &sig)) != CAI_OK)
        goto out;
    /* The certificate as a client would have checked it when the receipt was made. */
    if ((st = ratls_verify_der(v, cert.data, cert.len, (time_t)created, &claims, NULL)) != CAI_OK) {
        st = cai_fail(st, "receipt: certificate: %s", cai_errmsg(st));
        goto out;
    }
    const unsigned char *p = cert.data;
    X509 *x = d2i_X509(NULL, &p, (long)cert.len);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = x && md && jcs_serialize(r, &canon) == CAI_OK &&
             EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, X509_get0_pubkey(x)) == 1 &&
             EVP_DigestVerify(md, sig.data, sig.len, canon.data, canon.len) == 1;
    EVP_MD_CTX_free(md);
    X509_free(x);
    if (!ok) {
        st = cai_fail(CAI_ERR_AUTH, "receipt: signature: not made by the attested key of its "
                      "certificate over this receipt (changed after signing?)");
        goto out;
    }
    const char *cfp = json_string_value(json_object_get(claims, "cert_sha256"));
    const char *rfp = json_string_value(json_object_get(r, "cert_sha256"));
    const char *cmd = json_string_value(json_object_get(claims, "model_digest"));
    const char *rmd = json_string_value(json_object_get(r, "model_digest"));
    if (!cfp || !rfp || strcmp(cfp, rfp) != 0) {
        st = cai_fail(CAI_ERR_AUTH, "receipt: cert_sha256 is not its certificate's");
        goto out;
    }
    if (!cmd || !rmd || strcmp(cmd, rmd) != 0) {
        st = cai_fail(CAI_ERR_AUTH, "receipt: model_digest %.64s is not the attested model %.64s",
                      rmd ? rmd : "(none)", cmd ? cmd : "(none)");
        goto out;
    }
    if ((request && (st = hash_is(r, "request_sha256", request, request_len)) != CAI_OK) ||
        (response && (st = hash_is(r, "response_sha256", response, response_len)) != CAI_OK))
        goto out;
    if (claims_out) {
        *claims_out = claims;
        claims = NULL;
    }
    if (receipt_out)
        *receipt_out = json_incref(r);
out:
    json_decref(claims);
    json_decref(d);
    buf_free(&cert);
    buf_free(&sig);
    buf_free(&canon);
    return st;
}

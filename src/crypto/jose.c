/* jose.c - JWK, JWE (ECDH-ES+A256KW / RSA-OAEP-256, A256GCM), JWS (ES256,
 * EdDSA) on OpenSSL 3. */
#include "crypto/jose.h"

#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "common/codec.h"
#include "common/secure.h"
#include "crypto/aead.h"

struct jose_key {
    EVP_PKEY *pkey;
    jose_key_type type;
};

static cai_status ossl_fail(const char *what) {
    unsigned long e = ERR_get_error();
    char msg[160] = "";
    if (e)
        ERR_error_string_n(e, msg, sizeof(msg));
    ERR_clear_error();
    return cai_fail(CAI_ERR_CRYPTO, "jose: %s failed%s%s", what, e ? ": " : "", msg);
}

/* ---- base64url ----------------------------------------------------------- */

cai_status jose_b64url(buf *out, const void *data, size_t n) {
    size_t m = b64_encoded_len(n, B64_URL);
    cai_status st = buf_reserve(out, m + 1);
    if (st != CAI_OK)
        return st;
    b64_encode((char *)out->data + out->len, data, n, B64_URL);
    out->len += m;
    return CAI_OK;
}

cai_status jose_b64url_decode(const char *s, size_t len, size_t max, buf *out) {
    buf_init(out, max);
    size_t cap = b64_decoded_max(len);
    if (cap > max)
        return cai_fail(CAI_ERR_LIMIT, "jose: base64url value longer than %zu bytes", max);
    cai_status st = buf_reserve(out, cap + 1);
    if (st == CAI_OK)
        st = b64_decode(s, len, out->data, cap + 1, &out->len, B64_URL);
    if (st != CAI_OK)
        return cai_fail(st, "jose: malformed base64url");
    return CAI_OK;
}

/* Decodes the base64url string member |name| of |o| into |out|. */
static cai_status member_b64(const json_t *o, const char *name, size_t max, buf *out) {
    buf_init(out, max);
    const json_t *v = json_object_get(o, name);
    if (!json_is_string(v))
        return cai_fail(CAI_ERR_FORMAT, "jose: \"%s\" must be a base64url string", name);
    cai_status st = jose_b64url_decode(json_string_value(v), json_string_length(v), max, out);
    if (st != CAI_OK)
        return cai_fail(st, "jose: \"%s\" is not valid base64url (or too long)", name);
    return CAI_OK;
}

static int member_is(const json_t *o, const char *name, const char *want) {
    const char *s = json_string_value(json_object_get(o, name));
    return s && strcmp(s, want) == 0;
}

/* Parses |n| bytes of JSON into an object, refusing duplicate names. */
static cai_status parse_object(const void *data, size_t n, const char *what, json_t **out) {
    json_error_t err;
    *out = json_loadb(data, n, JSON_REJECT_DUPLICATES, &err);
    if (*out == NULL || !json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return cai_fail(CAI_ERR_FORMAT, "jose: %s is not a JSON object", what);
    }
    return CAI_OK;
}

/* ---- keys ------------------------------------------------------------------ */

/* The EC curves: JWK "crv", OpenSSL's group names, coordinate (and ECDH
 * shared secret) size in bytes. */
static const struct {
    jose_key_type type;
    const char *crv, *group;
    size_t coord;
} EC_CURVES[] = {
    {JOSE_KEY_EC_P256, "P-256", "prime256v1", 32},
    {JOSE_KEY_EC_P521, "P-521", "secp521r1", 66},
};
#define EC_COORD_MAX 66

static int ec_index(jose_key_type t) {
    for (size_t i = 0; i < sizeof(EC_CURVES) / sizeof(EC_CURVES[0]); i++)
        if (EC_CURVES[i].type == t)
            return (int)i;
    return -1;
}

static int is_ec(jose_key_type t) {
    return ec_index(t) >= 0;
}

static jose_key_type ec_type_of_group(const char *group) {
    for (size_t i = 0; i < sizeof(EC_CURVES) / sizeof(EC_CURVES[0]); i++)
        if (strcmp(group, EC_CURVES[i].group) == 0 || strcmp(group, EC_CURVES[i].crv) == 0)
            return EC_CURVES[i].type;
    return 0;
}

static cai_status key_wrap(EVP_PKEY *pkey, jose_key **out) {
    jose_key_type t;
    if (EVP_PKEY_is_a(pkey, "EC")) {
        char group[64] = "";
        size_t gl = 0;
        if (!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                            sizeof(group), &gl) ||
            (t = ec_type_of_group(group)) == 0) {
            EVP_PKEY_free(pkey);
            return cai_fail(CAI_ERR_UNSUPPORTED, "jose: only the P-256 and P-521 curves are "
                                                 "supported");
        }
    } else if (EVP_PKEY_is_a(pkey, "RSA")) {
        int bits = EVP_PKEY_get_bits(pkey);
        if (bits < 2048 || bits > 8192) {
            EVP_PKEY_free(pkey);
            return cai_fail(CAI_ERR_UNSUPPORTED, "jose: RSA keys of %d bits (2048..8192 allowed)",
                            bits);
        }
        t = JOSE_KEY_RSA;
    } else if (EVP_PKEY_is_a(pkey, "ED25519")) {
        t = JOSE_KEY_ED25519;
    } else {
        EVP_PKEY_free(pkey);
        return cai_fail(CAI_ERR_UNSUPPORTED, "jose: key type not supported");
    }
    jose_key *k = calloc(1, sizeof(*k));
    if (k == NULL) {
        EVP_PKEY_free(pkey);
        return CAI_ERR_NOMEM;
    }
    k->pkey = pkey;
    k->type = t;
    *out = k;
    return CAI_OK;
}

cai_status jose_key_generate(jose_key_type t, jose_key **out) {
    *out = NULL;
    EVP_PKEY *p = NULL;
    switch (t) {
    case JOSE_KEY_EC_P256: p = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"); break;
    case JOSE_KEY_EC_P521: p = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521"); break;
    case JOSE_KEY_RSA: p = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072); break;
    case JOSE_KEY_ED25519: p = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"); break;
    }
    if (p == NULL)
        return ossl_fail("key generation");
    return key_wrap(p, out);
}

void jose_key_free(jose_key *k) {
    if (k == NULL)
        return;
    EVP_PKEY_free(k->pkey);
    free(k);
}

jose_key_type jose_key_type_of(const jose_key *k) {
    return k->type;
}

int jose_key_public_equal(const jose_key *a, const jose_key *b) {
    return a && b && EVP_PKEY_eq(a->pkey, b->pkey) == 1;
}

static cai_status pkey_fromdata(const char *type, OSSL_PARAM *params, EVP_PKEY **out) {
    *out = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    int ok = ctx && EVP_PKEY_fromdata_init(ctx) > 0 &&
             EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) > 0;
    EVP_PKEY_CTX_free(ctx);
    if (!ok) {
        ERR_clear_error();
        return cai_fail(CAI_ERR_FORMAT, "jose: the JWK is not a valid %s public key", type);
    }
    /* The point must be on the curve, the RSA modulus sane. */
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, *out, NULL);
    ok = ctx && EVP_PKEY_public_check(ctx) == 1;
    EVP_PKEY_CTX_free(ctx);
    if (!ok) {
        ERR_clear_error();
        EVP_PKEY_free(*out);
        *out = NULL;
        return cai_fail(CAI_ERR_FORMAT, "jose: the JWK's %s public key fails its checks", type);
    }
    return CAI_OK;
}

cai_status jose_key_from_jwk(const json_t *jwk, jose_key **out) {
    *out = NULL;
    if (!json_is_object(jwk))
        return cai_fail(CAI_ERR_FORMAT, "jose: a JWK must be a JSON object");
    buf a, b;
    buf_init(&a, 0);
    buf_init(&b, 0);
    EVP_PKEY *p = NULL;
    cai_status st;
    if (member_is(jwk, "kty", "EC")) {
        int ci = -1;
        for (size_t i = 0; i < sizeof(EC_CURVES) / sizeof(EC_CURVES[0]); i++)
            if (member_is(jwk, "crv", EC_CURVES[i].crv))
                ci = (int)i;
        if (ci < 0) {
            st = cai_fail(CAI_ERR_UNSUPPORTED, "jose: EC JWKs must use crv P-256 or P-521");
            goto out;
        }
        size_t cl = EC_CURVES[ci].coord;
        if ((st = member_b64(jwk, "x", 2 * EC_COORD_MAX, &a)) != CAI_OK ||
            (st = member_b64(jwk, "y", 2 * EC_COORD_MAX, &b)) != CAI_OK)
            goto out;
        /* RFC 7518 6.2.1.2: the full coordinate size, never shortened. */
        if (a.len != cl || b.len != cl) {
            st = cai_fail(CAI_ERR_FORMAT, "jose: %s coordinates must be %zu bytes",
                          EC_CURVES[ci].crv, cl);
            goto out;
        }
        uint8_t pt[1 + 2 * EC_COORD_MAX];
        pt[0] = 0x04;
        memcpy(pt + 1, a.data, cl);
        memcpy(pt + 1 + cl, b.data, cl);
        OSSL_PARAM params[] = {
            OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)EC_CURVES[ci].crv, 0),
            OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pt, 1 + 2 * cl), OSSL_PARAM_END};
        st = pkey_fromdata("EC", params, &p);
    } else if (member_is(jwk, "kty", "RSA")) {
        if ((st = member_b64(jwk, "n", 1024, &a)) != CAI_OK ||
            (st = member_b64(jwk, "e", 16, &b)) != CAI_OK)
            goto out;
        BIGNUM *n = BN_bin2bn(a.data, (int)a.len, NULL), *e = BN_bin2bn(b.data, (int)b.len, NULL);
        OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
        OSSL_PARAM *params = NULL;
        if (n && e && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) &&
            OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
            params = OSSL_PARAM_BLD_to_param(bld);
        st = params ? pkey_fromdata("RSA", params, &p) : ossl_fail("RSA JWK import");
        OSSL_PARAM_free(params);
        OSSL_PARAM_BLD_free(bld);
        BN_free(n);
        BN_free(e);
    } else if (member_is(jwk, "kty", "OKP")) {
        if (!member_is(jwk, "crv", "Ed25519")) {
            st = cai_fail(CAI_ERR_UNSUPPORTED, "jose: OKP JWKs must use crv Ed25519");
            goto out;
        }
        if ((st = member_b64(jwk, "x", 64, &a)) != CAI_OK)
            goto out;
        p = a.len == 32 ? EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, a.data, 32) : NULL;
        st = p ? CAI_OK : cai_fail(CAI_ERR_FORMAT, "jose: an Ed25519 key is 32 bytes");
    } else {
        st = cai_fail(CAI_ERR_UNSUPPORTED, "jose: JWK kty must be EC, RSA or OKP");
    }
    if (st == CAI_OK)
        st = key_wrap(p, out);
out:
    buf_free(&a);
    buf_free(&b);
    return st;
}

static cai_status set_b64(json_t *o, const char *name, const void *data, size_t n) {
    buf b;
    buf_init(&b, 0);
    cai_status st = jose_b64url(&b, data, n);
    if (st == CAI_OK && (st = buf_terminate(&b)) == CAI_OK &&
        json_object_set_new(o, name, json_string((const char *)b.data)) != 0)
        st = CAI_ERR_NOMEM;
    buf_free(&b);
    return st;
}

static cai_status set_bn_b64(json_t *o, const char *name, const EVP_PKEY *p, const char *param,
                             int pad) {
    BIGNUM *bn = NULL;
    if (!EVP_PKEY_get_bn_param(p, param, &bn))
        return ossl_fail("key export");
    int n = pad ? pad : BN_num_bytes(bn);
    uint8_t tmp[1024];
    cai_status st = n <= (int)sizeof(tmp) && BN_bn2binpad(bn, tmp, n) == n
                        ? set_b64(o, name, tmp, (size_t)n)
                        : cai_fail(CAI_ERR_INTERNAL, "jose: key too large to export");
    BN_free(bn);
    return st;
}

cai_status jose_key_to_jwk(const jose_key *k, const char *alg, json_t **out) {
    json_t *o = json_object();
    cai_status st = o ? CAI_OK : CAI_ERR_NOMEM;
    if (st == CAI_OK && alg && json_object_set_new(o, "alg", json_string(alg)) != 0)
        st = CAI_ERR_NOMEM;
    if (st == CAI_OK && is_ec(k->type)) {
        int ci = ec_index(k->type);
        int cl = (int)EC_CURVES[ci].coord;
        if (json_object_set_new(o, "crv", json_string(EC_CURVES[ci].crv)) ||
            json_object_set_new(o, "kty", json_string("EC")))
            st = CAI_ERR_NOMEM;
        if (st == CAI_OK)
            st = set_bn_b64(o, "x", k->pkey, OSSL_PKEY_PARAM_EC_PUB_X, cl);
        if (st == CAI_OK)
            st = set_bn_b64(o, "y", k->pkey, OSSL_PKEY_PARAM_EC_PUB_Y, cl);
    } else if (st == CAI_OK && k->type == JOSE_KEY_RSA) {
        st = set_bn_b64(o, "e", k->pkey, OSSL_PKEY_PARAM_RSA_E, 0);
        if (st == CAI_OK && json_object_set_new(o, "kty", json_string("RSA")))
            st = CAI_ERR_NOMEM;
        if (st == CAI_OK)
            st = set_bn_b64(o, "n", k->pkey, OSSL_PKEY_PARAM_RSA_N, 0);
    } else if (st == CAI_OK) {
        uint8_t x[32];
        size_t n = sizeof(x);
        if (!EVP_PKEY_get_raw_public_key(k->pkey, x, &n) || n != 32)
            st = ossl_fail("Ed25519 export");
        else if (json_object_set_new(o, "crv", json_string("Ed25519")) ||
                 json_object_set_new(o, "kty", json_string("OKP")))
            st = CAI_ERR_NOMEM;
        else
            st = set_b64(o, "x", x, 32);
    }
    if (st != CAI_OK) {
        json_decref(o);
        o = NULL;
    }
    *out = o;
    return st;
}

cai_status jose_key_from_pem(const char *pem, size_t len, jose_key **out) {
    *out = NULL;
    if (len > 64 * 1024)
        return cai_fail(CAI_ERR_LIMIT, "jose: PEM key larger than 64 KiB");
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (bio == NULL)
        return CAI_ERR_NOMEM;
    EVP_PKEY *p = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    if (p == NULL) {
        ERR_clear_error();
        BIO_free(bio);
        if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL)
            return CAI_ERR_NOMEM;
        p = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    }
    BIO_free(bio);
    if (p == NULL) {
        ERR_clear_error();
        return cai_fail(CAI_ERR_FORMAT, "jose: not a PEM private or public key");
    }
    return key_wrap(p, out);
}

cai_status jose_key_to_pem(const jose_key *k, int priv, buf *out) {
    BIO *bio = BIO_new(BIO_s_secmem());
    if (bio == NULL)
        return CAI_ERR_NOMEM;
    int ok = priv ? PEM_write_bio_PrivateKey(bio, k->pkey, NULL, NULL, 0, NULL, NULL)
                  : PEM_write_bio_PUBKEY(bio, k->pkey);
    char *p = NULL;
    long n = ok ? BIO_get_mem_data(bio, &p) : 0;
    cai_status st = ok && n > 0 ? buf_append(out, p, (size_t)n) : ossl_fail("PEM export");
    if (st == CAI_OK)
        st = buf_terminate(out);
    BIO_free(bio); /* a secure-memory BIO: cleared on free */
    return st;
}

/* ---- key agreement and wrapping ------------------------------------------- */

cai_status jose_concat_kdf(const uint8_t *z, size_t z_len, const char *alg, const uint8_t *apu,
                           size_t apu_len, const uint8_t *apv, size_t apv_len, uint8_t *out,
                           size_t out_len) {
    if (out_len == 0 || out_len > 64 || apu_len > 0xffff || apv_len > 0xffff)
        return cai_fail(CAI_ERR_INVALID_ARG, "jose: concat KDF lengths out of range");
    uint8_t be[4];
    uint8_t block[32];
    size_t alg_len = strlen(alg), done = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md == NULL)
        return CAI_ERR_NOMEM;
    cai_status st = CAI_OK;
#define BE32(v) (be[0] = (uint8_t)((v) >> 24), be[1] = (uint8_t)((v) >> 16), \
                 be[2] = (uint8_t)((v) >> 8), be[3] = (uint8_t)(v), be)
    for (uint32_t i = 1; done < out_len; i++) {
        int ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL) &&
                 EVP_DigestUpdate(md, BE32(i), 4) && EVP_DigestUpdate(md, z, z_len) &&
                 EVP_DigestUpdate(md, BE32(alg_len), 4) && EVP_DigestUpdate(md, alg, alg_len) &&
                 EVP_DigestUpdate(md, BE32(apu_len), 4) &&
                 (apu_len == 0 || EVP_DigestUpdate(md, apu, apu_len)) &&
                 EVP_DigestUpdate(md, BE32(apv_len), 4) &&
                 (apv_len == 0 || EVP_DigestUpdate(md, apv, apv_len)) &&
                 EVP_DigestUpdate(md, BE32(out_len * 8), 4) &&
                 EVP_DigestFinal_ex(md, block, NULL);
        if (!ok) {
            st = ossl_fail("concat KDF");
            break;
        }
        size_t n = out_len - done < 32 ? out_len - done : 32;
        memcpy(out + done, block, n);
        done += n;
    }
#undef BE32
    secure_wipe(block, sizeof(block));
    EVP_MD_CTX_free(md);
    return st;
}

/* Z of ECDH between |priv| and |peer| (same curve): |z_len| bytes, the
 * curve's coordinate size. */
static cai_status ecdh(EVP_PKEY *priv, EVP_PKEY *peer, uint8_t *z, size_t z_len) {
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, priv, NULL);
    size_t n = z_len;
    int ok = ctx && EVP_PKEY_derive_init(ctx) > 0 && EVP_PKEY_derive_set_peer(ctx, peer) > 0 &&
             EVP_PKEY_derive(ctx, z, &n) > 0 && n == z_len;
    EVP_PKEY_CTX_free(ctx);
    return ok ? CAI_OK : ossl_fail("ECDH");
}

/* AES-256 key wrap (RFC 3394) of |in| (|n| bytes, a multiple of 8). */
static cai_status aes_kw(int wrap, const uint8_t kek[32], const uint8_t *in, size_t n,
                         uint8_t *out, size_t *out_len) {
    EVP_CIPHER *c = EVP_CIPHER_fetch(NULL, "AES-256-WRAP", NULL);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int l1 = 0, l2 = 0;
    int ok = c && ctx && EVP_CipherInit_ex2(ctx, c, kek, NULL, wrap, NULL) &&
             EVP_CipherUpdate(ctx, out, &l1, in, (int)n) &&
             EVP_CipherFinal_ex(ctx, out + l1, &l2);
    EVP_CIPHER_CTX_free(ctx);
    EVP_CIPHER_free(c);
    if (!ok) {
        ERR_clear_error();
        return wrap ? ossl_fail("AES key wrap")
                    : cai_fail(CAI_ERR_AUTH, "jose: the content key does not unwrap "
                                             "(wrong key or tampered JWE)");
    }
    *out_len = (size_t)(l1 + l2);
    return CAI_OK;
}

static cai_status rsa_oaep(int enc, EVP_PKEY *k, const uint8_t *in, size_t n, uint8_t *out,
                           size_t *out_len) {
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
    int ok = ctx && (enc ? EVP_PKEY_encrypt_init(ctx) : EVP_PKEY_decrypt_init(ctx)) > 0 &&
             EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) > 0 &&
             EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) > 0 &&
             EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) > 0 &&
             (enc ? EVP_PKEY_encrypt(ctx, out, out_len, in, n)
                  : EVP_PKEY_decrypt(ctx, out, out_len, in, n)) > 0;
    EVP_PKEY_CTX_free(ctx);
    if (!ok) {
        ERR_clear_error();
        return enc ? ossl_fail("RSA-OAEP encryption")
                   : cai_fail(CAI_ERR_AUTH, "jose: RSA-OAEP decryption failed");
    }
    return CAI_OK;
}

/* ---- JWE ------------------------------------------------------------------ */

cai_status jose_jwe_protected_b64(const char *alg, const char *enc, const char *epk_crv,
                                  const char *epk_x, const char *epk_y, buf *out) {
    buf prot;
    buf_init(&prot, 4096);
    buf_init(out, 8192);
    cai_status st =
        epk_crv && epk_x && epk_y
            ? buf_printf(&prot,
                         "{\"alg\":\"%s\",\"enc\":\"%s\",\"epk\":{\"crv\":\"%s\",\"kty\":\"EC\","
                         "\"x\":\"%s\",\"y\":\"%s\"}}",
                         alg, enc, epk_crv, epk_x, epk_y)
            : buf_printf(&prot, "{\"alg\":\"%s\",\"enc\":\"%s\"}", alg, enc);
    if (st == CAI_OK && (st = jose_b64url(out, prot.data, prot.len)) == CAI_OK)
        st = buf_terminate(out);
    buf_free(&prot);
    return st;
}

cai_status jose_jwe_encrypt(const jose_key *rcpt, const char *alg, const void *data, size_t n,
                            json_t **out) {
    *out = NULL;
    if (n > JOSE_JWE_MAX)
        return cai_fail(CAI_ERR_LIMIT, "jose: JWE payload over %u bytes", JOSE_JWE_MAX);
    int ec = strcmp(alg, JOSE_ALG_ECDH_ES_A256KW) == 0;
    if (!(ec && is_ec(rcpt->type)) &&
        !(strcmp(alg, JOSE_ALG_RSA_OAEP_256) == 0 && rcpt->type == JOSE_KEY_RSA))
        return cai_fail(CAI_ERR_UNSUPPORTED, "jose: JWE alg '%s' does not fit the key", alg);
    uint8_t cek[32], kek[32], z[EC_COORD_MAX], iv[AEAD_NONCE_LEN], tag[AEAD_TAG_LEN];
    uint8_t ekey[1024];
    size_t ekey_len = sizeof(ekey);
    buf prot64, ct;
    buf_init(&prot64, 8192);
    buf_init(&ct, 0);
    jose_key *epk = NULL;
    json_t *epk_jwk = NULL, *o = NULL;
    aead *gcm = NULL;
    cai_status st;

    if ((st = secure_random(cek, sizeof(cek))) != CAI_OK ||
        (st = secure_random(iv, sizeof(iv))) != CAI_OK)
        goto out;
    if (ec) {
        /* The ephemeral key is on the recipient's curve (RFC 7518 4.6). */
        size_t zl = EC_CURVES[ec_index(rcpt->type)].coord;
        if ((st = jose_key_generate(rcpt->type, &epk)) != CAI_OK ||
            (st = ecdh(epk->pkey, rcpt->pkey, z, zl)) != CAI_OK ||
            (st = jose_concat_kdf(z, zl, alg, NULL, 0, NULL, 0, kek, sizeof(kek))) != CAI_OK ||
            (st = aes_kw(1, kek, cek, sizeof(cek), ekey, &ekey_len)) != CAI_OK ||
            (st = jose_key_to_jwk(epk, NULL, &epk_jwk)) != CAI_OK)
            goto out;
        st = jose_jwe_protected_b64(alg, JOSE_ENC_A256GCM,
                                    json_string_value(json_object_get(epk_jwk, "crv")),
                                    json_string_value(json_object_get(epk_jwk, "x")),
                                    json_string_value(json_object_get(epk_jwk, "y")), &prot64);
    } else {
        if ((st = rsa_oaep(1, rcpt->pkey, cek, sizeof(cek), ekey, &ekey_len)) != CAI_OK)
            goto out;
        st = jose_jwe_protected_b64(alg, JOSE_ENC_A256GCM, NULL, NULL, NULL, &prot64);
    }
    if (st != CAI_OK || (st = buf_reserve(&ct, n + 1)) != CAI_OK ||
        (st = aead_new(cek, &gcm)) != CAI_OK ||
        (st = aead_seal(gcm, iv, prot64.data, prot64.len, data, n, ct.data, tag)) != CAI_OK)
        goto out;
    ct.len = n;
    if ((o = json_object()) == NULL ||
        json_object_set_new(o, "protected", json_string((const char *)prot64.data))) {
        st = CAI_ERR_NOMEM;
        goto out;
    }
    if ((st = set_b64(o, "encrypted_key", ekey, ekey_len)) != CAI_OK ||
        (st = set_b64(o, "iv", iv, sizeof(iv))) != CAI_OK ||
        (st = set_b64(o, "ciphertext", ct.data, ct.len)) != CAI_OK ||
        (st = set_b64(o, "tag", tag, sizeof(tag))) != CAI_OK)
        goto out;
    *out = o;
    o = NULL;
out:
    secure_wipe(cek, sizeof(cek));
    secure_wipe(kek, sizeof(kek));
    secure_wipe(z, sizeof(z));
    aead_free(gcm);
    json_decref(o);
    json_decref(epk_jwk);
    jose_key_free(epk);
    buf_free(&prot64);
    buf_free(&ct);
    return st;
}

/* ECDH-ES+A256KW on the recipient's side: the epk of |hdr| (on |k|'s
 * curve), Concat KDF with its apu/apv, then the 40-byte wrapped key |ekey|
 * unwrapped into |cek| (40 bytes of room). */
static cai_status ecdh_es_unwrap(const jose_key *k, const json_t *hdr, const buf *ekey,
                                 uint8_t cek[40], size_t *cek_len) {
    buf apu, apv;
    buf_init(&apu, 0);
    buf_init(&apv, 0);
    jose_key *epk = NULL;
    uint8_t z[EC_COORD_MAX], kek[32];
    int ci = ec_index(k->type);
    size_t zl = EC_CURVES[ci].coord;
    cai_status st;
    if ((st = jose_key_from_jwk(json_object_get(hdr, "epk"), &epk)) == CAI_OK &&
        epk->type != k->type)
        st = cai_fail(CAI_ERR_FORMAT, "jose: the epk must be a %s key, as the recipient's",
                      EC_CURVES[ci].crv);
    if (st == CAI_OK && json_object_get(hdr, "apu"))
        st = member_b64(hdr, "apu", 1024, &apu);
    if (st == CAI_OK && json_object_get(hdr, "apv"))
        st = member_b64(hdr, "apv", 1024, &apv);
    if (st == CAI_OK && ekey->len != 40)
        st = cai_fail(CAI_ERR_FORMAT, "jose: an A256KW-wrapped key is 40 bytes");
    if (st == CAI_OK && (st = ecdh(k->pkey, epk->pkey, z, zl)) == CAI_OK &&
        (st = jose_concat_kdf(z, zl, JOSE_ALG_ECDH_ES_A256KW, apu.data, apu.len, apv.data,
                              apv.len, kek, sizeof(kek))) == CAI_OK)
        st = aes_kw(0, kek, ekey->data, ekey->len, cek, cek_len);
    secure_wipe(z, sizeof(z));
    secure_wipe(kek, sizeof(kek));
    jose_key_free(epk);
    buf_free(&apu);
    buf_free(&apv);
    return st;
}

cai_status jose_jwe_decrypt(const jose_key *k, const json_t *jwe, buf *out) {
    buf_init(out, JOSE_JWE_MAX);
    if (!json_is_object(jwe))
        return cai_fail(CAI_ERR_FORMAT, "jose: a JWE must be a JSON object");
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)jwe, name, v) {
        if (strcmp(name, "protected") && strcmp(name, "encrypted_key") && strcmp(name, "iv") &&
            strcmp(name, "ciphertext") && strcmp(name, "tag") && strcmp(name, "aad"))
            return cai_fail(CAI_ERR_UNSUPPORTED, "jose: JWE member \"%s\" is not supported "
                                                 "(only a protected header)", name);
    }
    const json_t *prot_v = json_object_get(jwe, "protected");
    if (!json_is_string(prot_v))
        return cai_fail(CAI_ERR_FORMAT, "jose: the JWE has no protected header");
    const char *prot64 = json_string_value(prot_v);
    buf hdr_raw, ekey, iv, ct, tag, aad;
    buf_init(&hdr_raw, 0);
    buf_init(&ekey, 0);
    buf_init(&iv, 0);
    buf_init(&ct, 0);
    buf_init(&tag, 0);
    buf_init(&aad, 64 * 1024);
    json_t *hdr = NULL;
    aead *gcm = NULL;
    uint8_t cek[40];
    size_t cek_len = 0;
    cai_status st;

    if ((st = jose_b64url_decode(prot64, strlen(prot64), 16 * 1024, &hdr_raw)) != CAI_OK ||
        (st = parse_object(hdr_raw.data, hdr_raw.len, "the JWE protected header", &hdr)) !=
            CAI_OK)
        goto out;
    if (!member_is(hdr, "enc", JOSE_ENC_A256GCM)) {
        st = cai_fail(CAI_ERR_UNSUPPORTED, "jose: JWE enc must be A256GCM");
        goto out;
    }
    if (json_object_get(hdr, "zip") || json_object_get(hdr, "crit")) {
        st = cai_fail(CAI_ERR_UNSUPPORTED, "jose: JWE \"zip\" and \"crit\" are not supported");
        goto out;
    }
    if ((st = member_b64(jwe, "encrypted_key", 1024, &ekey)) != CAI_OK ||
        (st = member_b64(jwe, "iv", 64, &iv)) != CAI_OK ||
        (st = member_b64(jwe, "ciphertext", JOSE_JWE_MAX, &ct)) != CAI_OK ||
        (st = member_b64(jwe, "tag", 64, &tag)) != CAI_OK)
        goto out;
    if (iv.len != AEAD_NONCE_LEN || tag.len != AEAD_TAG_LEN) {
        st = cai_fail(CAI_ERR_FORMAT, "jose: A256GCM needs a 12-byte iv and a 16-byte tag");
        goto out;
    }
    if (is_ec(k->type) && member_is(hdr, "alg", JOSE_ALG_ECDH_ES_A256KW)) {
        st = ecdh_es_unwrap(k, hdr, &ekey, cek, &cek_len);
    } else if (k->type == JOSE_KEY_RSA && member_is(hdr, "alg", JOSE_ALG_RSA_OAEP_256)) {
        uint8_t tmp[1024];
        size_t n = sizeof(tmp);
        if ((st = rsa_oaep(0, k->pkey, ekey.data, ekey.len, tmp, &n)) == CAI_OK) {
            if (n <= sizeof(cek)) {
                memcpy(cek, tmp, n);
                cek_len = n;
            }
        }
        secure_wipe(tmp, sizeof(tmp));
    } else {
        st = cai_fail(CAI_ERR_UNSUPPORTED, "jose: JWE alg does not fit this key");
    }
    if (st != CAI_OK)
        goto out;
    if (cek_len != 32) {
        st = cai_fail(CAI_ERR_AUTH, "jose: the content key is not 256 bits");
        goto out;
    }
    /* AAD = ASCII(protected) [ "." ASCII(aad) ] (RFC 7516 5.1 step 14). */
    const char *aad_s = json_string_value(json_object_get(jwe, "aad"));
    if ((st = buf_append_str(&aad, prot64)) != CAI_OK ||
        (aad_s && ((st = buf_append_u8(&aad, '.')) != CAI_OK ||
                   (st = buf_append_str(&aad, aad_s)) != CAI_OK)))
        goto out;
    if ((st = buf_reserve(out, ct.len + 1)) != CAI_OK || (st = aead_new(cek, &gcm)) != CAI_OK)
        goto out;
    if ((st = aead_open(gcm, iv.data, aad.data, aad.len, ct.data, ct.len, tag.data,
                        out->data)) != CAI_OK) {
        st = cai_fail(CAI_ERR_AUTH, "jose: the JWE does not authenticate (tampered)");
        goto out;
    }
    out->len = ct.len;
out:
    secure_wipe(cek, sizeof(cek));
    aead_free(gcm);
    json_decref(hdr);
    buf_free(&hdr_raw);
    buf_free(&ekey);
    buf_free(&iv);
    buf_free(&ct);
    buf_free(&tag);
    buf_free(&aad);
    if (st != CAI_OK)
        buf_free(out);
    return st;
}

/* ---- JWS ------------------------------------------------------------------ */

static const char *jws_alg(const jose_key *k) {
    return k->type == JOSE_KEY_EC_P256 ? "ES256" : k->type == JOSE_KEY_ED25519 ? "EdDSA" : NULL;
}

static cai_status append_json_b64(buf *out, const json_t *j) {
    char *s = json_dumps(j, JSON_COMPACT);
    if (s == NULL)
        return CAI_ERR_NOMEM;
    cai_status st = jose_b64url(out, s, strlen(s));
    free(s);
    return st;
}

cai_status jose_jws_sign(const jose_key *k, const json_t *payload, const char *kid,
                         char **out) {
    *out = NULL;
    const char *alg = jws_alg(k);
    if (alg == NULL)
        return cai_fail(CAI_ERR_UNSUPPORTED, "jose: JWS signing needs a P-256 or Ed25519 key");
    json_t *hdr = json_pack("{s:s, s:s}", "alg", alg, "typ", "JWT");
    if (hdr == NULL || (kid && json_object_set_new(hdr, "kid", json_string(kid)))) {
        json_decref(hdr);
        return CAI_ERR_NOMEM;
    }
    buf b;
    buf_init(&b, JOSE_JWS_MAX);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t der[80], rs[64];
    size_t der_len = sizeof(der), rs_len = 0;
    ECDSA_SIG *sig = NULL;
    cai_status st = append_json_b64(&b, hdr);
    if (st == CAI_OK && (st = buf_append_u8(&b, '.')) == CAI_OK)
        st = append_json_b64(&b, payload);
    if (st == CAI_OK && md == NULL)
        st = CAI_ERR_NOMEM;
    if (st == CAI_OK) {
        const EVP_MD *h = k->type == JOSE_KEY_EC_P256 ? EVP_sha256() : NULL;
        if (EVP_DigestSignInit(md, NULL, h, NULL, k->pkey) <= 0 ||
            EVP_DigestSign(md, der, &der_len, b.data, b.len) <= 0)
            st = ossl_fail("JWS signing");
    }
    if (st == CAI_OK && k->type == JOSE_KEY_EC_P256) {
        const unsigned char *p = der;
        sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
        if (sig == NULL || BN_bn2binpad(ECDSA_SIG_get0_r(sig), rs, 32) != 32 ||
            BN_bn2binpad(ECDSA_SIG_get0_s(sig), rs + 32, 32) != 32)
            st = ossl_fail("ECDSA signature encoding");
        rs_len = 64;
    } else if (st == CAI_OK) {
        memcpy(rs, der, 64);
        rs_len = der_len;
    }
    if (st == CAI_OK && rs_len == 64 && (st = buf_append_u8(&b, '.')) == CAI_OK &&
        (st = jose_b64url(&b, rs, rs_len)) == CAI_OK && (st = buf_terminate(&b)) == CAI_OK) {
        *out = strdup((const char *)b.data);
        if (*out == NULL)
            st = CAI_ERR_NOMEM;
    }
    ECDSA_SIG_free(sig);
    EVP_MD_CTX_free(md);
    json_decref(hdr);
    buf_free(&b);
    return st;
}

cai_status jose_jws_verify(const jose_key *k, const char *jws, size_t len, json_t **payload) {
    *payload = NULL;
    const char *alg = jws_alg(k);
    if (alg == NULL)
        return cai_fail(CAI_ERR_UNSUPPORTED, "jose: JWS verification needs a P-256 or Ed25519 key");
    if (len > JOSE_JWS_MAX)
        return cai_fail(CAI_ERR_LIMIT, "jose: JWS longer than %u bytes", JOSE_JWS_MAX);
    const char *d1 = memchr(jws, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - jws)) : NULL;
    if (d1 == NULL || d2 == NULL || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - jws)))
        return cai_fail(CAI_ERR_FORMAT, "jose: a compact JWS has exactly three parts");
    buf h, p, s;
    buf_init(&h, 0);
    buf_init(&p, 0);
    buf_init(&s, 0);
    json_t *hdr = NULL, *body = NULL;
    EVP_MD_CTX *md = NULL;
    ECDSA_SIG *sig = NULL;
    unsigned char *der = NULL;
    cai_status st;
    if ((st = jose_b64url_decode(jws, (size_t)(d1 - jws), 8192, &h)) != CAI_OK ||
        (st = parse_object(h.data, h.len, "the JWS header", &hdr)) != CAI_OK)
        goto out;
    if (!member_is(hdr, "alg", alg)) {
        st = cai_fail(CAI_ERR_AUTH, "jose: JWS alg must be %s for this key", alg);
        goto out;
    }
    if (json_object_get(hdr, "crit")) {
        st = cai_fail(CAI_ERR_UNSUPPORTED, "jose: JWS \"crit\" is not supported");
        goto out;
    }
    if ((st = jose_b64url_decode(d2 + 1, len - (size_t)(d2 + 1 - jws), 1024, &s)) != CAI_OK)
        goto out;
    if (s.len != 64) {
        st = cai_fail(CAI_ERR_AUTH, "jose: a %s signature is 64 bytes", alg);
        goto out;
    }
    const uint8_t *sp = s.data;
    size_t sl = 64;
    if (k->type == JOSE_KEY_EC_P256) {
        BIGNUM *r = BN_bin2bn(s.data, 32, NULL), *ss = BN_bin2bn(s.data + 32, 32, NULL);
        sig = ECDSA_SIG_new();
        if (!r || !ss || !sig || !ECDSA_SIG_set0(sig, r, ss)) {
            BN_free(r);
            BN_free(ss);
            st = CAI_ERR_NOMEM;
            goto out;
        }
        int n = i2d_ECDSA_SIG(sig, &der);
        if (n <= 0) {
            st = ossl_fail("ECDSA signature decoding");
            goto out;
        }
        sp = der;
        sl = (size_t)n;
    }
    md = EVP_MD_CTX_new();
    const EVP_MD *hm = k->type == JOSE_KEY_EC_P256 ? EVP_sha256() : NULL;
    if (md == NULL || EVP_DigestVerifyInit(md, NULL, hm, NULL, k->pkey) <= 0) {
        st = ossl_fail("JWS verification");
        goto out;
    }
    if (EVP_DigestVerify(md, sp, sl, (const unsigned char *)jws, (size_t)(d2 - jws)) != 1) {
        ERR_clear_error();
        st = cai_fail(CAI_ERR_AUTH, "jose: the JWS signature does not verify");
        goto out;
    }
    if ((st = jose_b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), JOSE_JWS_MAX, &p)) != CAI_OK ||
        (st = parse_object(p.data, p.len, "the JWS payload", &body)) != CAI_OK)
        goto out;
    *payload = body;
    body = NULL;
out:
    OPENSSL_free(der);
    ECDSA_SIG_free(sig);
    EVP_MD_CTX_free(md);
    json_decref(hdr);
    json_decref(body);
    buf_free(&h);
    buf_free(&p);
    buf_free(&s);
    return st;
}

/* time_before_sum says whether t <= a + b as exact integers: the sum of
 * a time from the token and the leeway may not fit in 64 bits (checked
 * arithmetic; when it overflows, b's sign says which side it lies on). */
static int time_before_sum(long long t, long long a, long long b) {
    long long sum;
    if (__builtin_add_overflow(a, b, &sum))
        return b > 0;
    return t <= sum;
}

cai_status jose_jwt_check_time(const json_t *claims, time_t now, long leeway, int require_exp) {
    const json_t *exp = json_object_get(claims, "exp"), *nbf = json_object_get(claims, "nbf");
    if ((exp && !json_is_integer(exp)) || (nbf && !json_is_integer(nbf)))
        return cai_fail(CAI_ERR_FORMAT, "jose: exp and nbf must be integers");
    if (exp == NULL && require_exp)
        return cai_fail(CAI_ERR_AUTH, "jose: the token has no expiry (exp)");
    if (exp && !time_before_sum((long long)now, (long long)json_integer_value(exp), leeway))
        return cai_fail(CAI_ERR_AUTH, "jose: the token expired");
    if (nbf && !time_before_sum((long long)json_integer_value(nbf), (long long)now, leeway))
        return cai_fail(CAI_ERR_AUTH, "jose: the token is not valid yet");
    return CAI_OK;
}

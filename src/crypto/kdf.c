#include "crypto/kdf.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

cai_status kdf_sha256(const void *data, size_t n, uint8_t out[KDF_SHA256_LEN]) {
    if (EVP_Digest(data, n, out, NULL, EVP_sha256(), NULL) != 1)
        return cai_fail(CAI_ERR_CRYPTO, "SHA-256 failed");
    return CAI_OK;
}

cai_status kdf_hmac_sha256(const uint8_t *key, size_t key_len, const void *data,
                           size_t n, uint8_t out[KDF_SHA256_LEN]) {
    unsigned int len = 0;
    if (key_len > INT32_MAX ||
        HMAC(EVP_sha256(), key, (int)key_len, data, n, out, &len) == NULL ||
        len != KDF_SHA256_LEN)
        return cai_fail(CAI_ERR_CRYPTO, "HMAC-SHA-256 failed");
    return CAI_OK;
}

static cai_status hkdf(int mode, const uint8_t *salt, size_t salt_len,
                       const uint8_t *key, size_t key_len, const char *info,
                       uint8_t *out, size_t out_len) {
    cai_status st = CAI_OK;
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    OSSL_PARAM params[6], *p = params;
    *p++ = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
    *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)key, key_len);
    if (salt != NULL)
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len);
    if (info != NULL)
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, strlen(info));
    *p = OSSL_PARAM_construct_end();
    if (ctx == NULL || EVP_KDF_derive(ctx, out, out_len, params) != 1)
        st = cai_fail(CAI_ERR_CRYPTO, "HKDF failed");
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    return st;
}

cai_status kdf_hkdf_extract(const uint8_t *salt, size_t salt_len, const uint8_t *ikm,
                            size_t ikm_len, uint8_t prk[KDF_SHA256_LEN]) {
    return hkdf(EVP_KDF_HKDF_MODE_EXTRACT_ONLY, salt, salt_len, ikm, ikm_len, NULL,
                prk, KDF_SHA256_LEN);
}

cai_status kdf_hkdf_expand(const uint8_t prk[KDF_SHA256_LEN], const char *info,
                           uint8_t *out, size_t out_len) {
    return hkdf(EVP_KDF_HKDF_MODE_EXPAND_ONLY, NULL, 0, prk, KDF_SHA256_LEN, info,
                out, out_len);
}

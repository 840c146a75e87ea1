#include "crypto/aead.h"

#include <limits.h>
#include <stdlib.h>

#include <openssl/evp.h>

#include "common/secure.h"

struct aead {
    EVP_CIPHER_CTX *enc;
    EVP_CIPHER_CTX *dec;
};

cai_status aead_new(const uint8_t key[AEAD_KEY_LEN], aead **out) {
    *out = NULL;
    aead *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return CAI_ERR_NOMEM;
    a->enc = EVP_CIPHER_CTX_new();
    a->dec = EVP_CIPHER_CTX_new();
    if (a->enc == NULL || a->dec == NULL ||
        EVP_EncryptInit_ex(a->enc, EVP_aes_256_gcm(), NULL, key, NULL) != 1 ||
        EVP_DecryptInit_ex(a->dec, EVP_aes_256_gcm(), NULL, key, NULL) != 1) {
        aead_free(a);
        return cai_fail(CAI_ERR_CRYPTO, "cannot set up AES-256-GCM");
    }
    *out = a;
    return CAI_OK;
}

void aead_free(aead *a) {
    if (a == NULL)
        return;
    EVP_CIPHER_CTX_free(a->enc); /* OpenSSL wipes the key schedule */
    EVP_CIPHER_CTX_free(a->dec);
    free(a);
}

/* GCM in OpenSSL takes int lengths: feed large buffers in pieces. */
#define AEAD_STEP (1u << 30)

cai_status aead_seal(aead *a, const uint8_t nonce[AEAD_NONCE_LEN], const void *aad,
                     size_t aad_len, const uint8_t *in, size_t n, uint8_t *out,
                     uint8_t tag[AEAD_TAG_LEN]) {
    int len;
    if (aad_len > INT_MAX || EVP_EncryptInit_ex(a->enc, NULL, NULL, NULL, nonce) != 1 ||
        (aad_len > 0 && EVP_EncryptUpdate(a->enc, NULL, &len, aad, (int)aad_len) != 1))
        return cai_fail(CAI_ERR_CRYPTO, "AES-GCM encryption failed");
    for (size_t off = 0; off < n; off += AEAD_STEP) {
        size_t step = n - off < AEAD_STEP ? n - off : AEAD_STEP;
        if (EVP_EncryptUpdate(a->enc, out + off, &len, in + off, (int)step) != 1)
            return cai_fail(CAI_ERR_CRYPTO, "AES-GCM encryption failed");
    }
    if (EVP_EncryptFinal_ex(a->enc, out + n, &len) != 1 ||
        EVP_CIPHER_CTX_ctrl(a->enc, EVP_CTRL_GCM_GET_TAG, AEAD_TAG_LEN, tag) != 1)
        return cai_fail(CAI_ERR_CRYPTO, "AES-GCM encryption failed");
    return CAI_OK;
}

cai_status aead_open_init(aead *a, const uint8_t nonce[AEAD_NONCE_LEN], const void *aad,
                          size_t aad_len) {
    int len;
    if (aad_len > INT_MAX || EVP_DecryptInit_ex(a->dec, NULL, NULL, NULL, nonce) != 1 ||
        (aad_len > 0 && EVP_DecryptUpdate(a->dec, NULL, &len, aad, (int)aad_len) != 1))
        return cai_fail(CAI_ERR_CRYPTO, "AES-GCM decryption failed");
    return CAI_OK;
}

cai_status aead_open_update(aead *a, const uint8_t *in, size_t n, uint8_t *out) {
    int len;
    for (size_t off = 0; off < n; off += AEAD_STEP) {
        size_t step = n - off < AEAD_STEP ? n - off : AEAD_STEP;
        if (EVP_DecryptUpdate(a->dec, out + off, &len, in + off, (int)step) != 1)
            return cai_fail(CAI_ERR_CRYPTO, "AES-GCM decryption failed");
    }
    return CAI_OK;
}

cai_status aead_open_final(aead *a, const uint8_t tag[AEAD_TAG_LEN]) {
    uint8_t none[16];
    int len;
    if (EVP_CIPHER_CTX_ctrl(a->dec, EVP_CTRL_GCM_SET_TAG, AEAD_TAG_LEN, (void *)tag) != 1 ||
        EVP_DecryptFinal_ex(a->dec, none, &len) != 1)
        return CAI_ERR_AUTH;
    return CAI_OK;
}

cai_status aead_open(aead *a, const uint8_t nonce[AEAD_NONCE_LEN], const void *aad,
                     size_t aad_len, const uint8_t *in, size_t n,
                     const uint8_t tag[AEAD_TAG_LEN], uint8_t *out) {
    cai_status st = aead_open_init(a, nonce, aad, aad_len);
    if (st == CAI_OK)
        st = aead_open_update(a, in, n, out);
    if (st == CAI_OK)
        st = aead_open_final(a, tag);
    if (st != CAI_OK)
        secure_wipe(out, n);
    return st;
}

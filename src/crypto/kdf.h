/* kdf.h - SHA-256, HMAC-SHA-256 and HKDF-SHA-256 (RFC 5869) on OpenSSL. */
#ifndef CAI_CRYPTO_KDF_H
#define CAI_CRYPTO_KDF_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

#define KDF_SHA256_LEN 32

/* kdf_sha256 writes SHA-256(data) to |out|. */
cai_status kdf_sha256(const void *data, size_t n, uint8_t out[KDF_SHA256_LEN]) CAI_WUR;

/* kdf_hmac_sha256 writes HMAC-SHA-256(key, data) to |out|. */
cai_status kdf_hmac_sha256(const uint8_t *key, size_t key_len, const void *data,
                           size_t n, uint8_t out[KDF_SHA256_LEN]) CAI_WUR;

/* kdf_hkdf_extract writes the pseudorandom key HKDF-Extract(salt, ikm). */
cai_status kdf_hkdf_extract(const uint8_t *salt, size_t salt_len, const uint8_t *ikm,
                            size_t ikm_len, uint8_t prk[KDF_SHA256_LEN]) CAI_WUR;

/* kdf_hkdf_expand writes |out_len| bytes of HKDF-Expand(prk, info). */
cai_status kdf_hkdf_expand(const uint8_t prk[KDF_SHA256_LEN], const char *info,
                           uint8_t *out, size_t out_len) CAI_WUR;

#endif

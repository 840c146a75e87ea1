/* binding.c - the REPORTDATA of cai serve's attestation. */
#include "attest/binding.h"

#include <string.h>

#include <openssl/evp.h>

#include "common/codec.h"

cai_status attest_nonce_parse(const char *hex, uint8_t out[ATTEST_NONCE_MAX], size_t *out_len) {
    *out_len = 0;
    size_t n = strlen(hex);
    if (n < 2 * ATTEST_NONCE_MIN || n > 2 * ATTEST_NONCE_MAX)
        return cai_fail(CAI_ERR_LIMIT, "the nonce must be %d to %d bytes (%d to %d hex digits), not %zu digits",
                        ATTEST_NONCE_MIN, ATTEST_NONCE_MAX, 2 * ATTEST_NONCE_MIN, 2 * ATTEST_NONCE_MAX, n);
    if (hex_decode(hex, n, out, ATTEST_NONCE_MAX, out_len) != CAI_OK)
        return cai_fail(CAI_ERR_FORMAT, "the nonce must be hex digits (an even number of 0-9, a-f)");
    return CAI_OK;
}

static void be32(uint8_t *p, size_t v) {
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

cai_status attest_binding_report_data(const uint8_t *nonce, size_t nonce_len,
                                      const uint8_t model_digest[ATTEST_DIGEST_LEN],
                                      uint8_t out[ATTEST_REPORT_DATA_LEN]) {
    static const char label[] = ATTEST_BINDING_LABEL;
    const size_t label_len = sizeof(label) - 1;
    if (nonce_len < ATTEST_NONCE_MIN || nonce_len > ATTEST_NONCE_MAX)
        return cai_fail(CAI_ERR_INVALID_ARG, "nonce of %zu bytes", nonce_len);
    uint8_t msg[4 + sizeof(label) - 1 + 4 + ATTEST_NONCE_MAX + 4 + ATTEST_DIGEST_LEN];
    size_t n = 0;
    be32(msg + n, label_len), n += 4;
    memcpy(msg + n, label, label_len), n += label_len;
    be32(msg + n, nonce_len), n += 4;
    memcpy(msg + n, nonce, nonce_len), n += nonce_len;
    be32(msg + n, ATTEST_DIGEST_LEN), n += 4;
    memcpy(msg + n, model_digest, ATTEST_DIGEST_LEN), n += ATTEST_DIGEST_LEN;
    unsigned int len = 0;
    if (EVP_Digest(msg, n, out, &len, EVP_sha512(), NULL) != 1 || len != ATTEST_REPORT_DATA_LEN)
        return cai_fail(CAI_ERR_CRYPTO, "SHA-512 failed");
    return CAI_OK;
}

/* binding.h - what a `cai serve` attestation binds: the REPORTDATA of the
 * evidence /v1/attestation returns (docs/ATTESTATION-API.md).
 *
 *   REPORTDATA = SHA-512( be32(24) || "cai-serve-attestation-v1"
 *                      || be32(len(nonce)) || nonce
 *                      || be32(32) || model_digest )
 *
 * Every field is preceded by its length as a 4-byte big-endian integer, so
 * no two (nonce, digest) pairs encode to the same bytes, and the label keeps
 * these 64 bytes from meaning anything in another protocol. The nonce is the
 * client's (16..64 bytes, fresh per request); model_digest is the SHA-256
 * of the model bytes the server loaded. */
#ifndef CAI_ATTEST_BINDING_H
#define CAI_ATTEST_BINDING_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

#define ATTEST_BINDING_LABEL "cai-serve-attestation-v1"
#define ATTEST_NONCE_MIN 16 /* bytes: named limits of the nonce */
#define ATTEST_NONCE_MAX 64
#define ATTEST_DIGEST_LEN 32 /* SHA-256 of the model */
#define ATTEST_REPORT_DATA_LEN 64

/* attest_nonce_parse decodes the hex nonce |hex| (either case, NUL-
 * terminated) into |out| and sets |*out_len|. CAI_ERR_FORMAT if it is not
 * hex, CAI_ERR_LIMIT if it is shorter than ATTEST_NONCE_MIN or longer than
 * ATTEST_NONCE_MAX bytes; the detail says which, for the client. */
cai_status attest_nonce_parse(const char *hex, uint8_t out[ATTEST_NONCE_MAX],
                              size_t *out_len) CAI_WUR;

/* attest_binding_report_data writes the REPORTDATA above for |nonce|
 * (|nonce_len| in ATTEST_NONCE_MIN..ATTEST_NONCE_MAX, else
 * CAI_ERR_INVALID_ARG) and |model_digest| to |out|. CAI_ERR_CRYPTO if the
 * hash fails. */
cai_status attest_binding_report_data(const uint8_t *nonce, size_t nonce_len,
                                      const uint8_t model_digest[ATTEST_DIGEST_LEN],
                                      uint8_t out[ATTEST_REPORT_DATA_LEN]) CAI_WUR;

#endif

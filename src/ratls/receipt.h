/* receipt.h - signed receipts: what an attested server answered, signed by
 * the key of its attested TLS certificate, checkable offline years later
 * from the receipt alone (it carries the certificate, whose quote binds the
 * key and the model).
 *
 *   {"receipt":     {"version": 1, "id", "created" (Unix seconds), "model",
 *                    "model_digest", "request_sha256", "response_sha256",
 *                    "params": {sampling parameters, the seed used,
 *                               max_tokens}, "usage": {"prompt_tokens",
 *                    "completion_tokens"}, "cert_sha256"},
 *    "signature":   base64 ECDSA P-256/SHA-256 (DER) over the RFC 8785
 *                   form of "receipt",
 *    "certificate": base64 DER of the attested TLS certificate}
 *
 * request_sha256 hashes the HTTP request body as the server received it;
 * response_sha256 the generated text as the response carries it (UTF-8,
 * before JSON escaping: the assistant message's content, or the
 * completion's text). docs/RATLS.md specifies it. */
#ifndef CAI_RATLS_RECEIPT_H
#define CAI_RATLS_RECEIPT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "common/status.h"
#include "ratls/server.h"
#include "ratls/verify.h"

#define RATLS_RECEIPT_MAX (256u * 1024u) /* named limit: a receipt's JSON */

/* ratls_receipt_sign returns in |*out| (caller decrefs) the signed receipt
 * for |receipt| (the "receipt" object without "cert_sha256", which this
 * adds) under |id|. */
cai_status ratls_receipt_sign(const ratls_identity *id, json_t *receipt, json_t **out) CAI_WUR;

/* ratls_receipt_verify checks the signed receipt |doc| (|len| bytes of
 * JSON): its certificate verifies with |v| at the receipt's time (quote,
 * key binding, freshness then, policy), the signature verifies with the
 * certificate's key, cert_sha256 and model_digest are the certificate's,
 * and request/response (may be NULL to skip) hash to what it says. On
 * success |*claims| (may be NULL) holds the certificate's claims and
 * |*receipt| (may be NULL) the receipt object. CAI_ERR_AUTH naming the
 * check that failed, CAI_ERR_FORMAT for a malformed receipt. */
cai_status ratls_receipt_verify(ratls_verifier *v, const char *doc, size_t len,
                                const void *request, size_t request_len, const void *response,
                                size_t response_len, json_t **claims, json_t **receipt) CAI_WUR;

#endif

/* token.h - the attestation token the key broker issues after /attest: an
 * ES256 JWT in the shape of an EAR (EAT Attestation Result), so that
 * Trustee's tooling finds the TEE key where it looks for it:
 *
 *   {"eat_profile": "tag:github.com,2023:veraison/ear", "iat", "nbf", "exp",
 *    "jti", "ear.verifier-id": {"developer", "build"},
 *    "submods": {"cpu0": {"ear.status": "affirming",
 *      "ear.veraison.annotated-evidence": {<verified claims>...,
 *        "runtime_data_claims": {"nonce", "tee-pubkey"}},
 *      "cai.evidence-digest": "<SHA-256 of the quote, hex>"}}}
 *
 * The signing key lives only in the broker's memory: a restart invalidates
 * every token, and clients re-attest on the 401 they then get. */
#ifndef CAI_KBS_TOKEN_H
#define CAI_KBS_TOKEN_H

#include <time.h>

#include <jansson.h>

#include "common/status.h"
#include "crypto/jose.h"

#define KBS_TOKEN_MAX (64u * 1024u) /* named limit: a token in a request */

/* kbs_token_issue signs a token with |key| for the verified |claims|, the
 * normalized |tee_pubkey| and |nonce|, valid from |now| for |ttl| seconds.
 * |*out| is malloc'd. */
cai_status kbs_token_issue(const jose_key *key, const json_t *claims, const json_t *tee_pubkey,
                           const char *nonce, const char *evidence_digest, time_t now, long ttl,
                           char **out) CAI_WUR;

/* A verified token. */
typedef struct {
    json_t *payload;          /* the whole claim set (owned) */
    const json_t *claims;     /* the verified evidence claims, in payload */
    const json_t *tee_pubkey; /* in payload */
    const char *evidence_digest;
} kbs_token;

/* kbs_token_verify checks |token| (|len| bytes) against |key| at |now|
 * (signature, exp, nbf, profile) and fills |out|. CAI_ERR_AUTH with the
 * reason when it does not verify. */
cai_status kbs_token_verify(const jose_key *key, const char *token, size_t len, time_t now,
                            kbs_token *out) CAI_WUR;
void kbs_token_cleanup(kbs_token *t);

#endif

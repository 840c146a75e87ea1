/* protocol.h - the messages of the KBS attestation protocol (RCAR), as
 * Trustee 0.4 speaks them; docs/KBS-PROTOCOL.md has the exact formats.
 *
 *   POST /kbs/v0/auth     Request   {"version":"0.4.0","tee":"tdx","extra-params":{..}}
 *                      -> Challenge {"nonce":"<base64 of 32 bytes>","extra-params":""}
 *                         and Set-Cookie: kbs-session-id=<id>
 *   POST /kbs/v0/attest   Attestation {"runtime-data":{"nonce","tee-pubkey":JWK},
 *                         "tee-evidence":{"primary_evidence":{"quote","cc_eventlog"},
 *                         "additional_evidence":""}}
 *                      -> {"token":"<JWT>"}
 *   GET  /kbs/v0/resource/<repo>/<type>/<tag> -> flattened JWE to the TEE key
 *
 * The evidence binds the runtime data: REPORTDATA = SHA-384 of the RFC 8785
 * serialization of {"additional-evidence", "nonce", "tee-pubkey"}, zero
 * padded to 64 bytes. Both sides of cai use these functions, so the server
 * and the agent cannot disagree with each other; the fixtures from Trustee's
 * sources keep both in agreement with Trustee. */
#ifndef CAI_KBS_PROTOCOL_H
#define CAI_KBS_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/buf.h"
#include "common/status.h"
#include "kbs/initdata.h"

#define KBS_PROTOCOL_VERSION "0.4.0"
#define KBS_SESSION_COOKIE "kbs-session-id"
#define KBS_PREFIX "/kbs/v0"
#define KBS_NONCE_LEN 32
#define KBS_NONCE_B64_MAX 1024 /* named limit: a challenge nonce from a server */
#define KBS_ERROR_TYPE_PREFIX "https://github.com/confidential-containers/kbs/errors/"

/* kbs_json_parse parses the body of a request or response (|len| bytes)
 * into an object, refusing duplicate member names and trailing bytes. */
cai_status kbs_json_parse(const void *body, size_t len, json_t **out) CAI_WUR;

/* kbs_request_json returns the Request body for |tee| (malloc'd). */
char *kbs_request_json(const char *tee);

/* kbs_request_check checks a Request: version exactly 0.4.0, tee a string
 * (copied into |tee|, at most |tee_len|-1 bytes), extra-params any JSON. */
cai_status kbs_request_check(const json_t *req, char *tee, size_t tee_len) CAI_WUR;

/* The hash algorithms a Challenge may select ("selected-hash-algorithm";
 * SHA-384 when absent, as Trustee's clients default). */
typedef enum { KBS_HASH_SHA256 = 1, KBS_HASH_SHA384 = 2, KBS_HASH_SHA512 = 3 } kbs_hash;

/* kbs_challenge_json returns {"nonce": |nonce|, "extra-params": ""}; the
 * nonce is the standard base64 of KBS_NONCE_LEN random bytes. */
char *kbs_challenge_json(const char *nonce);

/* kbs_challenge_parse reads a Challenge: the nonce string (|*nonce| points
 * into |ch|) and the hash algorithm. */
cai_status kbs_challenge_parse(const json_t *ch, const char **nonce, kbs_hash *hash) CAI_WUR;

/* kbs_tee_pubkey_normalize returns, in |*out|, the TEE public key as the
 * protocol carries it: EC {kty, crv, alg, x, y} or RSA {kty, alg, n, e},
 * every member a string and no others (what Trustee re-serializes). */
cai_status kbs_tee_pubkey_normalize(const json_t *jwk, json_t **out) CAI_WUR;

/* kbs_runtime_data_digest computes the REPORTDATA of the primary evidence:
 * |hash| over JCS({"additional-evidence", "nonce", "tee-pubkey"}), zero
 * padded to 64 bytes. |tee_pubkey| must be normalized. */
cai_status kbs_runtime_data_digest(const char *nonce, const json_t *tee_pubkey,
                                   const char *additional_evidence, kbs_hash hash,
                                   uint8_t out[64]) CAI_WUR;

#define KBS_ADDITIONAL_EVIDENCE_MAX (256u * 1024u) /* named limit */

/* A parsed Attestation. Pointers go into the JSON it came from. */
typedef struct {
    const char *nonce;
    json_t *tee_pubkey;  /* normalized (owned: decref) */
    const char *additional_evidence; /* the string as sent (bound by REPORTDATA) */
    json_t *additional;  /* that string parsed: {tee: evidence}, NULL if "" (owned) */
    uint8_t *quote;      /* the TDX quote (owned: free) */
    size_t quote_len;
    int has_eventlog;
    int has_init_data;
    kbs_initdata init_data; /* when has_init_data (owned) */
} kbs_attestation;

/* kbs_attestation_parse checks an Attestation body for TDX evidence:
 * runtime-data {nonce, tee-pubkey}, tee-evidence {primary_evidence: {quote:
 * base64, cc_eventlog: base64|null} (or that object as a JSON string),
 * additional_evidence: "" or a JSON object as a string, {"<tee>": evidence}
 * as CoCo's agent sends device evidence}, and the optional "init-data"
 * {"format": "toml", "body"} (initdata.h). Nothing here is verified yet:
 * the caller checks the quote, binds REPORTDATA (which covers the
 * additional evidence string) and compares the init-data digest with
 * MRCONFIGID. Malformed init-data or additional evidence is refused. */
cai_status kbs_attestation_parse(const json_t *att, kbs_attestation *out) CAI_WUR;
void kbs_attestation_cleanup(kbs_attestation *a);

/* kbs_attestation_json builds an Attestation body (malloc'd) from the
 * nonce, the normalized TEE key and a TDX quote. */
char *kbs_attestation_json(const char *nonce, const json_t *tee_pubkey, const uint8_t *quote,
                           size_t quote_len);

/* kbs_error_json returns {"type": KBS_ERROR_TYPE_PREFIX <variant>,
 * "detail": <detail>} (malloc'd). */
char *kbs_error_json(const char *variant, const char *detail);

/* kbs_resource_uri_parse reads "kbs:///repo/type/tag" (or
 * "kbs://<host>/repo/type/tag", host ignored) into |path| ("repo/type/tag"). */
cai_status kbs_resource_uri_parse(const char *uri, char *path, size_t path_len) CAI_WUR;

#endif

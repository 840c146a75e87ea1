/* verify.h - the client side of attested TLS: is this certificate a TD's,
 * running what the policy allows, serving the model it allows?
 *
 * For a peer certificate, in order (each refusal names its check):
 *   1. self-signed by its own key, within its validity, issued (notBefore)
 *      at most max_age_s ago: freshness;
 *   2. exactly one evidence extension (2.23.133.5.4.9) that parses
 *      (ratls/evidence.h);
 *   3. the runtime data binds SHA-256 of this certificate's public key;
 *   4. the quote verifies (attest_verify_claims: DCAP, or the sim root
 *      when trusted) and its REPORTDATA is the hash of that runtime data;
 *   5. the claims, plus "model_digest" from the runtime data, pass the
 *      policy (kbs_policy_check_server: TEE type, debug, TCB status, the
 *      reference sets named in "servers", which may pin model_digest).
 * TLS itself proves the peer holds the certificate's private key
 * (CertificateVerify), so a relayed certificate is useless to a host.
 * Verified certificates are cached by SHA-256 of their DER: a new
 * connection to the same server costs a handshake, not a DCAP check
 * (freshness is still judged on every use). */
#ifndef CAI_RATLS_VERIFY_H
#define CAI_RATLS_VERIFY_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "attest/evidence.h"
#include "common/status.h"
#include "kbs/policy.h"

#define RATLS_MAX_AGE_DEFAULT 1800 /* seconds: a certificate older is stale */
#define RATLS_CLOCK_SKEW 300       /* seconds a notBefore may lie in the future */
#define RATLS_CACHE_MAX 64         /* named limit: verified certificates kept */

typedef struct {
    const attest_verifier *verifier; /* trust roots and collateral (copied;
                                      * what it points to must outlive) */
    const kbs_policy *policy;        /* required; must outlive */
    long max_age_s;                  /* 0: RATLS_MAX_AGE_DEFAULT */
} ratls_verifier_config;

typedef struct ratls_verifier ratls_verifier;

cai_status ratls_verifier_new(const ratls_verifier_config *c, ratls_verifier **out) CAI_WUR;
void ratls_verifier_free(ratls_verifier *v);

/* ratls_verify_der verifies the DER certificate |der| at time |now|. On
 * success |*out| (caller decrefs; may be NULL) holds the quote's claims
 * plus "model_digest", "cert_sha256" and "cert_not_before", and |*cached|
 * (may be NULL) says whether the cache answered. CAI_ERR_AUTH (a check
 * failed), CAI_ERR_FORMAT / CAI_ERR_LIMIT (malformed), or the verifier's
 * status, with the check named in cai_errmsg. Thread-safe. */
cai_status ratls_verify_der(ratls_verifier *v, const uint8_t *der, size_t len, time_t now,
                            json_t **out, int *cached) CAI_WUR;

/* ratls_ssl_ctx_setup makes a client SSL_CTX * |ssl_ctx| verify its peer
 * with |v| (a ratls_verifier *) instead of a CA chain, TLS 1.3 only. Its
 * signature is httpc_opts.tls_setup's. */
cai_status ratls_ssl_ctx_setup(void *ssl_ctx, void *v) CAI_WUR;

/* ratls_last_take reports what the last handshake on the calling thread
 * verified, and forgets it: CAI_OK with its claims in |*claims| (caller
 * decrefs; NULL when no certificate was verified since the last call, as on
 * a reused connection), or the status of the last refusal with its reason,
 * naming the check, in cai_errmsg (|*claims| NULL). |claims| may be NULL.
 * On CAI_OK the thread's cai_errmsg is left as it was. */
cai_status ratls_last_take(json_t **claims);

#endif

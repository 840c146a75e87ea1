/* agent.h - the TEE side of the KBS protocol (what Trustee's
 * attestation-agent and confidential-data-hub do for a guest): fetch a
 * secret from a key broker, proving first what this TD runs.
 *
 * agent_get_resource generates an ephemeral key pair, runs RCAR (auth ->
 * evidence whose REPORTDATA binds the nonce and the public key -> attest),
 * fetches the resource and decrypts its JWE with the private key, which
 * never leaves this process and is freed at the end. Transport failures
 * and 5xx/429/503 answers are retried with exponential backoff; a refusal
 * (401/403/404) is final: the broker's reason is returned. */
#ifndef CAI_AGENT_AGENT_H
#define CAI_AGENT_AGENT_H

#include "attest/evidence.h"
#include "common/buf.h"
#include "common/status.h"
#include "crypto/jose.h"

typedef struct {
    const char *kbs_url;    /* http(s)://host:port of the broker */
    const char *ca_file;    /* CA of its HTTPS certificate, or NULL: system CAs */
    attest_source source;   /* where evidence comes from */
    jose_key_type key_type; /* 0: EC P-256 (ECDH-ES+A256KW); or JOSE_KEY_RSA (RSA-OAEP-256) */
    /* An attested TLS broker (a key broker in a TEE): |tls_setup| checks
     * its certificate instead of |ca_file| (ratls_ssl_ctx_setup). */
    cai_status (*tls_setup)(void *ssl_ctx, void *arg);
    void *tls_setup_arg;
    int attempts;           /* per step, default 5 */
    double backoff_s;       /* first retry delay, doubling; default 0.5 */
} agent_config;

/* An attested session with a broker: one RCAR, then any number of
 * resources (the token is kept in the session's cookie). */
typedef struct agent_session agent_session;

/* agent_session_open runs RCAR once (no retries) and returns the session. */
cai_status agent_session_open(const agent_config *cfg, agent_session **out) CAI_WUR;

/* agent_session_get fetches the resource at |path| ("repo/type/tag") into
 * |out| (initialised here; wiped on free). */
cai_status agent_session_get(agent_session *s, const char *path, buf *out) CAI_WUR;

/* agent_session_close frees the session and its private key; NULL is fine. */
void agent_session_close(agent_session *s);

/* agent_get_resource fetches |uri| ("kbs:///repo/type/tag") into |out|
 * (initialised here; wiped on free). CAI_ERR_AUTH with the broker's detail
 * when it refuses, CAI_ERR_NOT_FOUND when the resource does not exist,
 * CAI_ERR_IO when it cannot be reached after all attempts. */
cai_status agent_get_resource(const agent_config *cfg, const char *uri, buf *out) CAI_WUR;

#endif

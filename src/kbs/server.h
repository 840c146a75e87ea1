/* server.h - `cai kbs`: the key broker service.
 *
 * Speaks the KBS attestation protocol (protocol.h) on net/httpd: /auth
 * opens a session with a single-use nonce, /attest verifies TDX evidence
 * (attest/evidence.h) against the release policy (policy.h) and issues a
 * token (token.h) bound to the TEE's ephemeral key, and resource requests
 * return the secret as a JWE to that key, after the policy's per-resource
 * rules, each release recorded in the audit table before it is sent.
 *
 * The admin API (same server) is authenticated by an EdDSA JWT signed with
 * the admin's Ed25519 key, as Trustee's is: POST/DELETE
 * /kbs/v0/resource/<path>, GET /kbs/v0/resource (list), GET/POST
 * /kbs/v0/resource-policy, GET /kbs/v0/audit. No admin key: admin API off. */
#ifndef CAI_KBS_SERVER_H
#define CAI_KBS_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "attest/evidence.h"
#include "common/status.h"
#include "kbs/store.h"

typedef struct {
    const char *host;    /* default 127.0.0.1 */
    int port;            /* 0: ephemeral */
    const char *db_path; /* the SQLite file, created on first start, or a
                            postgresql:// URI (store.h; a secret: never logged) */
    const char *state_path; /* PostgreSQL: this broker's state file, or NULL */
    uint8_t master_key[KBS_MASTER_KEY_LEN]; /* copied; the caller wipes its own */
    const char *admin_pub_pem; /* the admin's Ed25519 public key; NULL: admin API off */
    const char *policy_json;   /* a policy to set at start, or NULL: the stored one */
    attest_verifier verifier;  /* what evidence may verify to */
    const char *tls_cert_file; /* both NULL: plain HTTP */
    const char *tls_key_file;
    void *ssl_ctx;             /* or a ready OpenSSL SSL_CTX * (attested TLS, made
                                  by the caller: ratls/server.h) */
    int session_ttl_s;         /* an attested session's lifetime; default 300 */
    int pending_ttl_s;         /* a session's until it attests; default 30 (at most
                                  session_ttl_s) */
    int token_ttl_s;           /* default 300 */
    size_t max_sessions;       /* default 10000 (session.h: the oldest pending
                                  session is evicted when full) */
    size_t max_sessions_per_client; /* pending sessions per address; default 32 */
    double rate_per_s;         /* per client address; 0: unlimited */
    int rate_burst;
} kbs_server_config;

typedef struct kbs_server kbs_server;

/* kbs_server_new opens the store, loads or sets the policy, binds the port
 * and returns the server in |*out|; it serves once kbs_server_run runs. */
cai_status kbs_server_new(const kbs_server_config *cfg, kbs_server **out) CAI_WUR;

/* kbs_server_port returns the bound port. */
int kbs_server_port(const kbs_server *s);

/* kbs_server_run serves until SIGINT/SIGTERM or kbs_server_stop. */
cai_status kbs_server_run(kbs_server *s);
void kbs_server_stop(kbs_server *s);

/* kbs_server_free closes everything and wipes the keys; NULL is fine. */
void kbs_server_free(kbs_server *s);

#endif

/* server.h - `cai serve`: the OpenAI-compatible API, the web chat, metrics.
 *
 * The server answers requests once the model's key is in hand
 * (serve/boot.h), /health with 503 while the model loads (a GGUF file, or
 * a sealed model decrypted into a sealed memfd), then serves
 * /v1/chat/completions, /v1/completions, /v1/models, /metrics, the web chat
 * at / and, when a TEE is configured, /v1/attestation (evidence binding a
 * client's nonce and the SHA-256 of the model bytes loaded, see
 * docs/ATTESTATION-API.md). Generation runs on the scheduler's engine
 * thread (continuous batching); the HTTP loop only parses, queues and
 * streams. */
#ifndef CAI_SERVE_SERVER_H
#define CAI_SERVE_SERVER_H

#include "agent/agent.h"
#include "attest/evidence.h"
#include "common/status.h"

#define SERVE_MAX_ALIASES 16

typedef struct {
    const char *host;          /* default 127.0.0.1 */
    int port;                  /* default 7860; 0: ephemeral */
    const char *model_path;    /* a GGUF file, or NULL with sealed_path */
    const char *sealed_path;   /* a sealed model (a path or an http(s) URL: downloaded),
                                  decrypted into a sealed memfd (serve/boot.h) */
    const char *download_dir;  /* for a URL: where (NULL: $TMPDIR, else /var/tmp) */
    const char *sealed_ca;     /* for an https URL: its server's CA, or NULL */
    const agent_config *kbs;   /* the key broker that gives the sealed model's key
                                  after attesting |tee| (used until server_start
                                  returns); or NULL and: */
    const char *key_file;      /* the key from a file (INSECURE: development); or: */
    int key_from_cdh;          /* the key from the CoCo confidential data hub at
                                  |tee|'s coco_api (needs |tee| ATTEST_TEE_COCO) */
    const char *model_id;      /* the id /v1/models reports (default: the file
                                  name, or the URL's last segment) */
    const char *aliases[SERVE_MAX_ALIASES]; /* other names requests may give the model */
    int n_aliases;
    int max_tokens_default;    /* max_tokens of a request that gives none; 0: OpenAI's
                                  (chat: until the context is full; completions: 16) */
    const attest_source *tee;  /* where /v1/attestation gets evidence; NULL: no TEE
                                  (the endpoint answers 501) */
    const char *chat_template; /* override, or NULL */
    const char *api_key;       /* require "Authorization: Bearer KEY"; NULL: open */
    const char *cors_origin;   /* allowed Origin ("*" for any), or NULL */
    int slots;                 /* concurrent generations (default 4) */
    int queue;                 /* waiting requests before 429; 0: none wait, a request
                                * beyond the busy slots gets 429 at once */
    int n_ctx;                 /* context per slot (default 4096) */
    int threads;               /* 0: one per CPU */
    size_t max_body;           /* default 4 MiB */
    /* TLS: an ordinary certificate (PEM files), or attested TLS: a key made
     * in this TEE, its certificate carrying a quote that binds the key and
     * the model digest, renewed every tls_refresh_s (docs/RATLS.md; needs
     * |tee|). Neither: plain HTTP. */
    const char *tls_cert_file, *tls_key_file;
    int tls_attested;
    long tls_refresh_s;        /* default RATLS_REFRESH_DEFAULT */
    int receipts;              /* with tls_attested: every completion carries a
                                * receipt signed by the attested key
                                * (ratls/receipt.h) */
} serve_config;

typedef struct server server;

/* server_start binds the port (so a port in use fails before a broker is
 * asked for the key), boots the model (serve/boot.h) on a loader thread
 * and returns once the key is in hand: a download, an attestation or a key
 * that fails is its error, and no server is left. Unsealing and
 * loading go on in the background (/health answers 503 until they end);
 * server_run serves until SIGINT/SIGTERM or server_stop. */
cai_status server_start(const serve_config *cfg, server **out);
int server_port(const server *s);
cai_status server_run(server *s);
void server_stop(server *s);
void server_free(server *s);

#endif

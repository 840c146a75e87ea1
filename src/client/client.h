/* client.h - a client of a cai server (or any OpenAI-compatible one): the
 * model list, streamed chat completions, and the server's attestation
 * checked end to end (docs/ATTESTATION-API.md). httpc does HTTP(S), on
 * one connection pool per client; every answer is untrusted and
 * size-limited. */
#ifndef CAI_CLIENT_CLIENT_H
#define CAI_CLIENT_CLIENT_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "attest/evidence.h"
#include "common/buf.h"
#include "common/status.h"

#define CLIENT_MAX_BODY (4u << 20)  /* named limit: a non-streamed answer */
#define CLIENT_MAX_REPLY (16u << 20) /* named limit: a streamed reply's text */

typedef struct client client;

/* client_new makes a client of the server at |url| ("http://HOST:PORT" or
 * https, optionally ending in "/"; only these schemes) sending |api_key|
 * (may be NULL) as "Authorization: Bearer". Both strings are copied.
 * CAI_ERR_INVALID_ARG for another URL. Free with client_free. */
cai_status client_new(const char *url, const char *api_key, client **out) CAI_WUR;

/* client_set_tls makes |c| check an https server with |setup| (attested
 * TLS: ratls_ssl_ctx_setup) instead of CAs and its host name. */
void client_set_tls(client *c, cai_status (*setup)(void *ssl_ctx, void *arg), void *arg);

/* client_free frees |c|; NULL is fine. */
void client_free(client *c);

/* client_model asks GET /v1/models and writes the first model's id to
 * |out| (|cap| bytes). Fails with a message for a person when the server is
 * unreachable (CAI_ERR_IO), fails the TLS check (CAI_ERR_AUTH) or answers
 * an error (CAI_ERR_INVALID_ARG, with the server's message). */
cai_status client_model(client *c, char *out, size_t cap) CAI_WUR;

/* client_attest asks GET /v1/attestation with a fresh 32-byte nonce and
 * checks the answer: the quote verifies with |v| at |now|
 * (attest_verify_claims), its REPORTDATA is the binding of our nonce and the
 * model digest the server names, and the TD is not in debug mode. On
 * success |*out| (caller decrefs) holds the quote's claims plus
 * "model_digest" and "model". CAI_ERR_AUTH (or the verifier's status) when
 * a check fails, with the reason in cai_errmsg. */
cai_status client_attest(client *c, const attest_verifier *v, time_t now, json_t **out) CAI_WUR;

/* One message of a conversation, as the OpenAI API carries it. */
typedef struct {
    const char *role;    /* "system", "user" or "assistant" */
    const char *content; /* NULL sends "" */
} client_message;

typedef struct {
    const char *model;
    const client_message *messages;
    size_t n_messages;
    int max_tokens;              /* 0: the server's default */
    /* Sampling: sent only when the has_ flag is set (else the server's). */
    int has_temperature, has_top_p, has_top_k, has_min_p, has_repetition_penalty, has_seed;
    double temperature, top_p, min_p, repetition_penalty;
    int top_k;
    uint64_t seed;
} client_chat_req;

/* client_chat_stream posts |req| to /v1/chat/completions with stream:true
 * and calls |on_text| with each piece of the reply as it arrives; the whole
 * reply is appended to |reply|. When *|cancel| becomes non-zero (a signal
 * handler) the connection is closed, which stops the generation on the
 * server: then CAI_OK with |*out_stopped| = 1. Errors: CAI_ERR_IO
 * (unreachable, or the connection broke: CAI_ERR_TRUNCATED if the stream
 * ended before "data: [DONE]"), CAI_ERR_INVALID_ARG (the server refused the
 * request: its message), CAI_ERR_FORMAT / CAI_ERR_LIMIT (a malformed or
 * oversized stream). */
cai_status client_chat_stream(client *c, const client_chat_req *req,
                              void (*on_text)(void *arg, const char *text, size_t len), void *arg,
                              volatile sig_atomic_t *cancel, buf *reply, int *out_stopped) CAI_WUR;

#endif

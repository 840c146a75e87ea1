/* httpc.h - cai's one HTTP(S) client, on libcurl: the key broker's agent
 * and admin client, cai seal's registration, the collateral provider
 * (attest/pccs), the OpenAI client and proxy (client/), downloads.
 *
 * One httpc keeps one connection pool and, as the KBS protocol needs, a
 * cookie jar in memory (never on disk); it serves one thread at a time. TLS verifies the peer against the
 * system CAs or a given CA file, or with the caller's check (attested TLS).
 * A transport failure (no connection, reset, timeout) is CAI_ERR_IO, which
 * callers may retry; a refused TLS handshake is CAI_ERR_AUTH, which they
 * should not; any HTTP answer is CAI_OK with its status, for the caller to
 * judge. */
#ifndef CAI_NET_HTTPC_H
#define CAI_NET_HTTPC_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/status.h"

typedef struct httpc httpc;

typedef struct {
    const char *ca_file; /* PEM CA bundle for HTTPS peers; NULL: the system's */
    long timeout_s;      /* whole request; default 30; 0 with httpc_stream: none */
    long connect_timeout_s; /* connecting; default 10 */
    const char *user_agent; /* the User-Agent header; NULL: none */
    int https_only;      /* refuse http:// (and every other scheme) */
    /* Instead of CA and host name checks: |tls_setup| configures each new
     * connection's OpenSSL SSL_CTX * (attested TLS installs its own peer
     * check there, ratls/verify.h); TLS 1.3 only, no session reuse. */
    cai_status (*tls_setup)(void *ssl_ctx, void *arg);
    void *tls_setup_arg;
} httpc_opts;

/* httpc_new returns a client in |*out| (free with httpc_free). */
cai_status httpc_new(const httpc_opts *o, httpc **out) CAI_WUR;
void httpc_free(httpc *c);

/* A request; |body| may be NULL for none. */
typedef struct {
    const char *method;       /* "GET", "POST", "DELETE", ... */
    const char *url;
    const char *bearer;       /* Authorization: Bearer, or NULL */
    const char *content_type; /* default application/json when a body is sent */
    const char *header;       /* one more header line ("Name: value"), or NULL */
    const char *const *headers; /* more, NULL-terminated, or NULL */
    const void *body;
    size_t body_len;
    size_t max_response;      /* default 4 MiB; larger answers are CAI_ERR_LIMIT */
} httpc_request;

/* httpc_do sends |rq| and sets |*status| and |resp| (initialised here,
 * NUL-terminated; wiped on free). A failed TLS handshake (the peer's
 * certificate refused) is CAI_ERR_AUTH: nothing of |rq| was sent. */
cai_status httpc_do(httpc *c, const httpc_request *rq, long *status, buf *resp) CAI_WUR;

/* A streamed answer: |on_status| (may be NULL) gets the final response's
 * status code, |on_header| (may be NULL) each of its header lines (without
 * CRLF; the status line first), |on_data| each piece of the body as it
 * arrives. A non-zero return from any of them, or from |cancelled| (may be
 * NULL; polled while waiting), ends the transfer: CAI_ERR_IO. */
typedef struct {
    int (*on_status)(void *arg, long status);
    int (*on_header)(void *arg, const char *line, size_t len);
    int (*on_data)(void *arg, const void *data, size_t len);
    int (*cancelled)(void *arg);
    void *arg;
} httpc_sink;

/* httpc_stream sends |rq| and streams the answer to |sink|; |*status| is
 * the HTTP status. rq->max_response does not apply (the sink judges). A
 * failed TLS handshake is CAI_ERR_AUTH, as for httpc_do. */
cai_status httpc_stream(httpc *c, const httpc_request *rq, const httpc_sink *sink,
                        long *status) CAI_WUR;

/* httpc_unreachable returns 1 when the last request of |c| failed without
 * reaching its peer (no connection, a name that does not resolve, a
 * timeout), 0 otherwise: for a message that says where to look. */
int httpc_unreachable(const httpc *c);

/* The parts of an absolute URL, as the client reads it (malloc'd; free
 * with httpc_url_cleanup). */
typedef struct {
    char *host;
    char *port;  /* the scheme's default when the URL names none */
    char *path;  /* "/" at least */
    char *query; /* without '?', or NULL if there is none */
} httpc_url;

/* httpc_url_parse splits |url| into |out| (zeroed here). CAI_ERR_FORMAT if
 * it does not parse as a URL with a scheme, CAI_ERR_INVALID_ARG if it names
 * no host, CAI_ERR_NOMEM. |out| is cleaned up on failure. */
cai_status httpc_url_parse(const char *url, httpc_url *out) CAI_WUR;

/* httpc_url_cleanup frees the parts of |u| and zeroes it. */
void httpc_url_cleanup(httpc_url *u);

/* httpc_download writes the body of GET |url| to |fd| from its current end,
 * resuming with a Range request after a transport failure, up to
 * |attempts| tries (a server that ignores the Range starts over). Sets
 * |*out_len| to the bytes in |fd|. Fails on any answer but 200/206. */
cai_status httpc_download(httpc *c, const char *url, int fd, int attempts,
                          uint64_t *out_len) CAI_WUR;

#endif

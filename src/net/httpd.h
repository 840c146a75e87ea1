/* httpd.h - the HTTP(S) server both `cai kbs` and `cai serve` stand on.
 *
 * libevent's evhttp does the HTTP parsing on one event-loop thread; TLS is
 * OpenSSL (bufferevent_openssl), so attested TLS can use its own
 * certificates. Limits are enforced before handlers run: body size (413),
 * header size (libevent's own HTML 400), concurrent connections (429),
 * per-client request rate (429), idle timeouts.
 *
 * The rate limit is a token bucket per client address in a fixed table
 * (rate_buckets). Addresses are hashed with a key drawn at random when the
 * server starts, so a client cannot pick addresses that collide; those that
 * do collide share one bucket and its budget: a new address landing on an
 * occupied bucket takes what is left, it never refills it (a bucket starts
 * full only on its first use). An IPv6 client is limited by its /64, the
 * smallest block a site is given: one host can use any of its 2^64 addresses.
 *
 * Paths are percent-decoded once, here, and handlers see only the decoded
 * path. A path whose decoding would change its meaning is refused with 400
 * (in the error-body shape) before any handler runs: a '%' without two hex
 * digits, an encoded NUL (%00, which would cut the path short), an encoded
 * '/' (%2F, which would become a separator), any control character (encoded
 * or not), and bytes that are not valid UTF-8. The refusal's message never
 * echoes the path.
 *
 * Handlers run on the loop thread and must not block. Work that takes time
 * (generation) answers later from another thread through an httpd_async: a
 * deferred reply, or a stream of chunks (server-sent events). Writes to an
 * async reply are thread-safe; when the client goes away the on_close
 * callback runs (on the loop thread) so the work can be cancelled. */
#ifndef CAI_NET_HTTPD_H
#define CAI_NET_HTTPD_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/status.h"

typedef struct httpd httpd;
typedef struct httpd_req httpd_req;
typedef struct httpd_async httpd_async;

typedef struct {
    const char *host;          /* default "127.0.0.1" */
    int port;                  /* 0: an ephemeral port (see httpd_port) */
    size_t max_body;           /* default 1 MiB; larger bodies get 413 */
    size_t max_headers;        /* default 16 KiB */
    int max_connections;       /* default 256 */
    double rate_per_s;         /* per client address; 0: no limit */
    int rate_burst;            /* a bucket's size, default 20 */
    int rate_buckets;          /* the rate table's size, default 4096 (tests: 1
                                * makes every address collide) */
    int timeout_s;             /* idle read/write timeout, default 60 */
    size_t max_unsent;         /* a stream's bytes its client has not taken (beyond
                                * the kernel's buffers): over it the client is
                                * dropped, with a log line; default 4 MiB */
    const char *tls_cert_file; /* PEM chain; with tls_key_file enables HTTPS */
    const char *tls_key_file;
    void *ssl_ctx;             /* or a ready OpenSSL SSL_CTX * (attested TLS) */
} httpd_config;

/* A handler answers with one of the httpd_reply* functions, or takes the
 * request over with httpd_async_new. */
typedef void (*httpd_handler)(httpd_req *r, void *arg);

/* httpd_new binds and listens (the port is in use when this returns). */
cai_status httpd_new(const httpd_config *cfg, httpd **out);
void httpd_free(httpd *h);
int httpd_port(const httpd *h);

/* httpd_route sends requests whose path equals |path| (or starts with it
 * when it ends in '/') to |fn|; first match wins; unrouted paths get 404. */
cai_status httpd_route(httpd *h, const char *path, httpd_handler fn, void *arg);

/* httpd_set_error_body sets how refusals made by httpd itself (400, 404,
 * 413, 429, 500) are rendered: fn(status, message) returns a malloc'd JSON body. */
void httpd_set_error_body(httpd *h, char *(*fn)(int status, const char *message));

/* httpd_run runs the event loop until httpd_stop (thread-safe, and safe to
 * call from a signal handler through a self-pipe it owns). */
cai_status httpd_run(httpd *h);
void httpd_stop(httpd *h);

/* httpd_drain, after httpd_run returned, stops accepting connections and
 * runs the loop until every reply posted from other threads has been sent
 * and written out, for at most |timeout_ms|: a graceful shutdown answers
 * what it has committed to. Returns CAI_ERR_IO when replies were still
 * pending at the deadline (they are dropped by httpd_free). */
cai_status httpd_drain(httpd *h, int timeout_ms);

/* Request accessors (loop thread). The body is NUL-terminated. */
const char *httpd_method(const httpd_req *r); /* "GET", "POST", ... */
const char *httpd_path(const httpd_req *r);   /* decoded path (valid UTF-8, no NUL, no
                                               * control character), no query */
const char *httpd_query(const httpd_req *r, const char *name); /* or NULL */
const char *httpd_header(const httpd_req *r, const char *name); /* or NULL */
const char *httpd_body(const httpd_req *r, size_t *len);
const char *httpd_client(const httpd_req *r); /* peer address */
/* httpd_target returns the request-target as sent: "/path?query", or a
 * proxy's absolute form "http://host:port/path?query". */
const char *httpd_target(const httpd_req *r);
/* httpd_header_each calls |fn| for each request header in order; a
 * non-zero return stops. */
void httpd_header_each(const httpd_req *r, int (*fn)(void *arg, const char *name, const char *value),
                       void *arg);

/* httpd_add_header adds a response header (before a reply). */
void httpd_add_header(httpd_req *r, const char *name, const char *value);

void httpd_reply(httpd_req *r, int status, const char *content_type, const void *body, size_t len);
/* httpd_reply_json sends |j| compact and takes the reference. */
void httpd_reply_json(httpd_req *r, int status, json_t *j);
/* httpd_reply_error sends an error body made by the error-body function. */
void httpd_reply_error(httpd_req *r, int status, const char *message);

/* httpd_async_new takes over |r|: the handler returns and the reply comes
 * later from any thread. |on_end| (may be NULL) runs once on the loop thread
 * when httpd is done with the request: client_gone = 0 after the reply was
 * handed to the connection, 1 if the client disconnected first (cancel the
 * work then). The async holds two references: one for the caller (released
 * by httpd_async_release) and one for httpd. */
httpd_async *httpd_async_new(httpd_req *r, void (*on_end)(void *arg, int client_gone), void *arg);

/* httpd_async_reply sends a whole response. */
cai_status httpd_async_reply(httpd_async *a, int status, const char *content_type,
                             const void *body, size_t len);

/* httpd_async_stream_start sends the status line and headers of a chunked
 * response; httpd_async_write sends a chunk; httpd_async_end finishes. They
 * return CAI_ERR_IO once the client is gone. Chunks (and the end) written
 * before httpd_async_stream_start are held until it: nothing goes out
 * before the status line, so a handler can hand the work to another thread
 * first and start the stream only once that work was accepted. */
cai_status httpd_async_stream_start(httpd_async *a, int status, const char *content_type);
cai_status httpd_async_write(httpd_async *a, const void *data, size_t len);
cai_status httpd_async_end(httpd_async *a);
/* httpd_async_write_end sends a last chunk and ends, in one step (the last
 * chunk and the end then leave together). */
cai_status httpd_async_write_end(httpd_async *a, const void *data, size_t len);

/* httpd_async_add_header adds a response header to a reply not yet begun
 * (any thread). CAI_ERR_INTERNAL once it has begun. */
cai_status httpd_async_add_header(httpd_async *a, const char *name, const char *value);

/* httpd_async_closed says whether the client went away. */
int httpd_async_closed(httpd_async *a);
void httpd_async_release(httpd_async *a);

/* httpd_rate_key writes the key |client| (an address as text) is rate
 * limited under into |out| and returns its length: an IPv6 address's /64,
 * anything else as it is (an IPv4 address, an IPv4-mapped IPv6 one). */
enum { HTTPD_RATE_KEY_MAX = 64 };
size_t httpd_rate_key(const char *client, uint8_t out[HTTPD_RATE_KEY_MAX]);

#endif

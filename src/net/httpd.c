/* httpd.c - libevent evhttp with limits, OpenSSL TLS and cross-thread replies. */
#include "net/httpd.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "common/clock.h"
#include "common/codec.h"
#include "common/log.h"
#include "common/secure.h"

#define MAX_ROUTES 32

typedef struct conn {
    struct evhttp_connection *evcon;
    httpd_async *async; /* in flight on this connection, if any */
    struct conn *next;
    httpd *h;
} conn;

/* A token bucket, shared by every client address whose keyed hash lands
 * on it (t == 0: never used). */
typedef struct {
    double tokens, t;
} rate_bucket;

struct httpd {
    httpd_config cfg;
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *sock;
    struct event *sigint, *sigterm;
    SSL_CTX *ssl_ctx;
    int own_ssl_ctx;
    int port;
    struct { char path[128]; httpd_handler fn; void *arg; } routes[MAX_ROUTES];
    int n_routes;
    conn *conns;
    int n_conns;
    rate_bucket *rate;
    uint8_t rate_key[32]; /* the rate buckets' hash key, random per server */
    char *(*error_body)(int status, const char *message);
};

struct httpd_req {
    httpd *h;
    struct evhttp_request *req;
    const char *path;
    struct evkeyvalq query;
    char *body;
    size_t body_len;
    char client[64];
    int answered;
};

struct httpd_async {
    atomic_int refs;
    pthread_mutex_t mu;
    struct event *wake;
    struct evhttp_request *req; /* loop thread; NULL once finished or closed */
    conn *c;
    void (*on_end)(void *, int);
    void *arg;
    /* shared, under mu */
    struct evbuffer *pending;
    struct evkeyvalq headers; /* added by httpd_async_add_header */
    int status;
    char ctype[96];
    int want_full, want_start, want_end, started, finished, closed;
    size_t max_unsent; /* a stream's bytes not yet taken by the client, at most */
    size_t unsent;     /* the connection's output buffer, when the loop last looked */
    int overflow;      /* over max_unsent: the loop drops the connection */
    /* loop thread only */
    int armed;      /* stream chunks went out with on_flushed as their callback */
    int end_wanted; /* the stream's terminator waits for its output to drain */
};

/* ---- setup ------------------------------------------------------------- */

static pthread_once_t threads_once = PTHREAD_ONCE_INIT;
static void threads_init(void) { evthread_use_pthreads(); }

static char *default_error_body(int status, const char *message) {
    json_t *j = json_pack("{s:s, s:i}", "error", message, "status", status);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return s;
}

static struct bufferevent *tls_bev(struct event_base *base, void *arg) {
    httpd *h = arg;
    SSL *ssl = SSL_new(h->ssl_ctx);
    if (ssl == NULL)
        return NULL;
    return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                          BEV_OPT_CLOSE_ON_FREE);
}

static cai_status tls_setup(httpd *h) {
    const httpd_config *c = &h->cfg;
    if (c->ssl_ctx) {
        h->ssl_ctx = c->ssl_ctx;
        return CAI_OK;
    }
    if (!c->tls_cert_file && !c->tls_key_file)
        return CAI_OK;
    if (!c->tls_cert_file || !c->tls_key_file)
        return cai_fail(CAI_ERR_INVALID_ARG, "HTTPS needs both a certificate and a key file");
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL)
        return cai_fail(CAI_ERR_CRYPTO, "cannot create a TLS context");
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(ctx, c->tls_cert_file) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, c->tls_key_file, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        unsigned long e = ERR_get_error();
        SSL_CTX_free(ctx);
        return cai_fail(CAI_ERR_INVALID_ARG, "cannot load the TLS certificate %s and key: %s",
                        c->tls_cert_file, ERR_reason_error_string(e));
    }
    h->ssl_ctx = ctx;
    h->own_ssl_ctx = 1;
    return CAI_OK;
}

static void on_request(struct evhttp_request *req, void *arg);

static void on_signal(evutil_socket_t sig, short ev, void *arg) {
    (void)sig, (void)ev;
    event_base_loopbreak(((httpd *)arg)->base);
}

cai_status httpd_new(const httpd_config *cfg, httpd **out) {
    *out = NULL;
    pthread_once(&threads_once, threads_init);
    signal(SIGPIPE, SIG_IGN);
    httpd *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return CAI_ERR_NOMEM;
    h->cfg = *cfg;
    if (!h->cfg.host)
        h->cfg.host = "127.0.0.1";
    if (!h->cfg.max_body)
        h->cfg.max_body = 1 << 20;
    if (!h->cfg.max_headers)
        h->cfg.max_headers = 16 << 10;
    if (!h->cfg.max_connections)
        h->cfg.max_connections = 256;
    if (!h->cfg.timeout_s)
        h->cfg.timeout_s = 60;
    if (!h->cfg.max_unsent)
        h->cfg.max_unsent = 4 << 20;
    if (h->cfg.rate_burst <= 0)
        h->cfg.rate_burst = 20;
    if (h->cfg.rate_buckets <= 0)
        h->cfg.rate_buckets = 4096;
    h->error_body = default_error_body;
    cai_status st = tls_setup(h);
    if (st != CAI_OK)
        goto fail;
    h->base = event_base_new();
    h->http = h->base ? evhttp_new(h->base) : NULL;
    h->rate = calloc((size_t)h->cfg.rate_buckets, sizeof(*h->rate));
    if (!h->http || !h->rate) {
        st = CAI_ERR_NOMEM;
        goto fail;
    }
    if (RAND_bytes(h->rate_key, sizeof(h->rate_key)) != 1) {
        st = cai_fail(CAI_ERR_CRYPTO, "cannot draw the rate limiter's hash key");
        goto fail;
    }
    /* Bodies up to twice the limit are read and answered 413 (a client that
     * is still sending would otherwise see a reset instead of the answer);
     * beyond that libevent drops the connection. */
    evhttp_set_max_body_size(h->http, (ev_ssize_t)(2 * h->cfg.max_body + 65536));
    /* Headers over the limit get libevent's own answer (400, an HTML page,
     * and the connection closed): libevent 2.1 has no hook to render it in
     * the error-body shape, and no handler ever sees such a request. */
    evhttp_set_max_headers_size(h->http, (ev_ssize_t)h->cfg.max_headers);
    evhttp_set_timeout(h->http, h->cfg.timeout_s);
    evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                            EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
                                            EVHTTP_REQ_HEAD);
    evhttp_set_gencb(h->http, on_request, h);
    if (h->ssl_ctx)
        evhttp_set_bevcb(h->http, tls_bev, h);
    h->sock = evhttp_bind_socket_with_handle(h->http, h->cfg.host, (ev_uint16_t)h->cfg.port);
    if (h->sock == NULL) {
        st = cai_fail(CAI_ERR_IO, "cannot listen on %s:%d (in use, or not a local address)",
                      h->cfg.host, h->cfg.port);
        goto fail;
    }
    /* No Nagle: a reply's header and body (separate TLS records) and each
     * streamed chunk leave at once instead of waiting out the client's
     * delayed ACK (40 ms per TLS request here). Linux passes the option on
     * to accepted sockets. */
    int one = 1;
    setsockopt(evhttp_bound_socket_get_fd(h->sock), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(evhttp_bound_socket_get_fd(h->sock), (struct sockaddr *)&ss, &sl) == 0)
        h->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                 : ((struct sockaddr_in *)&ss)->sin_port);
    h->sigint = evsignal_new(h->base, SIGINT, on_signal, h);
    h->sigterm = evsignal_new(h->base, SIGTERM, on_signal, h);
    if (!h->sigint || !h->sigterm) {
        st = CAI_ERR_NOMEM;
        goto fail;
    }
    *out = h;
    return CAI_OK;
fail:
    httpd_free(h);
    return st;
}

void httpd_free(httpd *h) {
    if (h == NULL)
        return;
    if (h->sigint)
        event_free(h->sigint);
    if (h->sigterm)
        event_free(h->sigterm);
    if (h->http)
        evhttp_free(h->http); /* closes connections: their close callbacks run */
    while (h->conns) {
        conn *c = h->conns;
        h->conns = c->next;
        free(c);
    }
    /* What libevent deferred to the next loop iteration runs now: a TLS
     * connection's last write callback holds its bufferevent (and SSL), and
     * a stream's end may wait on a timer. */
    if (h->base) {
        event_base_loop(h->base, EVLOOP_NONBLOCK);
        event_base_free(h->base);
    }
    if (h->own_ssl_ctx)
        SSL_CTX_free(h->ssl_ctx);
    free(h->rate);
    OPENSSL_cleanse(h->rate_key, sizeof(h->rate_key));
    free(h);
}

int httpd_port(const httpd *h) { return h->port; }

cai_status httpd_route(httpd *h, const char *path, httpd_handler fn, void *arg) {
    if (h->n_routes == MAX_ROUTES || strlen(path) >= sizeof(h->routes[0].path))
        return cai_fail(CAI_ERR_LIMIT, "too many routes");
    snprintf(h->routes[h->n_routes].path, sizeof(h->routes[0].path), "%s", path);
    h->routes[h->n_routes].fn = fn;
    h->routes[h->n_routes++].arg = arg;
    return CAI_OK;
}

void httpd_set_error_body(httpd *h, char *(*fn)(int, const char *)) { h->error_body = fn; }

cai_status httpd_run(httpd *h) {
    event_add(h->sigint, NULL);
    event_add(h->sigterm, NULL);
    int rc = event_base_dispatch(h->base);
    event_del(h->sigint);
    event_del(h->sigterm);
    return rc < 0 ? cai_fail(CAI_ERR_IO, "the event loop failed") : CAI_OK;
}

void httpd_stop(httpd *h) { event_base_loopbreak(h->base); }

/* Drained: no reply is waiting for another thread or still in an output
 * buffer. */
static int drained(const httpd *h) {
    for (const conn *c = h->conns; c; c = c->next) {
        if (c->async)
            return 0;
        struct bufferevent *bev = evhttp_connection_get_bufferevent(c->evcon);
        if (bev && evbuffer_get_length(bufferevent_get_output(bev)) > 0)
            return 0;
    }
    return 1;
}

typedef struct {
    httpd *h;
    struct timespec deadline;
} drain_state;

static void on_drain_tick(evutil_socket_t fd, short ev, void *arg) {
    (void)fd, (void)ev;
    drain_state *d = arg;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (drained(d->h) || now.tv_sec > d->deadline.tv_sec ||
        (now.tv_sec == d->deadline.tv_sec && now.tv_nsec >= d->deadline.tv_nsec))
        event_base_loopbreak(d->h->base);
}

cai_status httpd_drain(httpd *h, int timeout_ms) {
    if (h->sock) { /* no new connections */
        evhttp_del_accept_socket(h->http, h->sock);
        h->sock = NULL;
    }
    if (drained(h))
        return CAI_OK;
    drain_state d = {.h = h};
    clock_gettime(CLOCK_MONOTONIC, &d.deadline);
    d.deadline.tv_sec += timeout_ms / 1000;
    d.deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (d.deadline.tv_nsec >= 1000000000L) {
        d.deadline.tv_sec++;
        d.deadline.tv_nsec -= 1000000000L;
    }
    struct event *tick = event_new(h->base, -1, EV_PERSIST, on_drain_tick, &d);
    const struct timeval every = {0, 2000};
    if (tick == NULL || event_add(tick, &every) != 0) {
        if (tick)
            event_free(tick);
        return cai_fail(CAI_ERR_NOMEM, "cannot drain the pending replies");
    }
    int rc = event_base_dispatch(h->base);
    event_free(tick);
    if (rc < 0)
        return cai_fail(CAI_ERR_IO, "the event loop failed while draining");
    return drained(h) ? CAI_OK
                      : cai_fail(CAI_ERR_IO, "replies still pending after %d ms: dropped",
                                 timeout_ms);
}

/* ---- connections and limits ------------------------------------------- */

static void on_conn_close(struct evhttp_connection *evcon, void *arg) {
    conn *c = arg;
    httpd *h = c->h;
    (void)evcon;
    httpd_async *a = c->async;
    if (a) {
        pthread_mutex_lock(&a->mu);
        /* A reply still in progress was detached from the failed connection
         * by libevent and is ours to free; on shutdown it is still attached
         * and libevent frees it. */
        if (a->req && evhttp_request_get_connection(a->req) == NULL)
            evhttp_request_free(a->req);
        a->closed = 1;
        a->req = NULL;
        pthread_mutex_unlock(&a->mu);
        a->c = NULL;
        if (a->on_end)
            a->on_end(a->arg, 1);
        httpd_async_release(a); /* httpd's reference */
    }
    for (conn **p = &h->conns; *p; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            break;
        }
    }
    h->n_conns--;
    free(c);
}

static conn *conn_get(httpd *h, struct evhttp_connection *evcon) {
    for (conn *c = h->conns; c; c = c->next)
        if (c->evcon == evcon)
            return c;
    conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->evcon = evcon;
    c->h = h;
    c->next = h->conns;
    h->conns = c;
    h->n_conns++;
    evhttp_connection_set_closecb(evcon, on_conn_close, c);
    return c;
}

size_t httpd_rate_key(const char *client, uint8_t out[HTTPD_RATE_KEY_MAX]) {
    struct in6_addr a6;
    if (inet_pton(AF_INET6, client, &a6) == 1 && !IN6_IS_ADDR_V4MAPPED(&a6)) {
        out[0] = 6;
        memcpy(out + 1, a6.s6_addr, 8); /* the /64 */
        return 9;
    }
    size_t n = strnlen(client, HTTPD_RATE_KEY_MAX - 1);
    out[0] = 4;
    memcpy(out + 1, client, n);
    return n + 1;
}

/* The bucket of |client|: a keyed hash (HMAC-SHA256 under a random key
 * drawn at start) of httpd_rate_key, so nobody outside can choose
 * addresses that collide. */
static rate_bucket *rate_bucket_of(httpd *h, const char *client) {
    uint8_t mac[32], key[HTTPD_RATE_KEY_MAX];
    unsigned int n = 0;
    uint64_t k = 0;
    size_t kl = httpd_rate_key(client, key);
    if (HMAC(EVP_sha256(), h->rate_key, (int)sizeof(h->rate_key), key, kl, mac, &n) != NULL && n >= 8)
        memcpy(&k, mac, 8);
    ERR_clear_error(); /* on failure every client shares bucket 0: limited, never unlimited */
    return &h->rate[k % (uint64_t)h->cfg.rate_buckets];
}

/* Token bucket per client address. Addresses whose hash collides share one
 * bucket and its budget: a new address on an occupied bucket takes what is
 * left, it never refills it. A bucket starts full only on its first use. */
static int rate_allow(httpd *h, const char *client) {
    if (h->cfg.rate_per_s <= 0)
        return 1;
    double now = clock_now();
    rate_bucket *b = rate_bucket_of(h, client);
    if (b->t == 0) {
        b->tokens = h->cfg.rate_burst;
        b->t = now;
    }
    b->tokens = fmin(h->cfg.rate_burst, b->tokens + (now - b->t) * h->cfg.rate_per_s);
    b->t = now;
    if (b->tokens < 1)
        return 0;
    b->tokens -= 1;
    return 1;
}

/* ---- request paths and query strings ------------------------------------ */

/* Decodes the percent-encoding of the request path (|query| 0) or query
 * string (|query| 1) |raw| into |*out| (malloc'd, NUL-terminated). One that
 * would mean something else once decoded is refused, with CAI_ERR_FORMAT and
 * the reason in cai_errmsg: a '%' without two hex digits, an encoded NUL (it
 * would cut a value short), in a path an encoded '/' (it would become a
 * separator), any control character, bytes that are not UTF-8. CAI_ERR_NOMEM
 * when out of memory. */
static cai_status uri_decode(const char *raw, int query, char **out) {
    *out = NULL;
    size_t n = strlen(raw), len = 0;
    unsigned char *p = malloc(n + 1);
    if (p == NULL)
        return CAI_ERR_NOMEM;
    const char *bad = NULL;
    for (size_t i = 0; i < n && bad == NULL; i++) {
        int c = (unsigned char)raw[i];
        if (c == '%') {
            if ((c = hex_byte(raw + i + 1)) < 0) {
                bad = query ? "the query string has a '%' that is not followed by two hex digits"
                            : "the request path has a '%' that is not followed by two hex digits";
                break;
            }
            i += 2;
            if (c == 0)
                bad = query ? "the query string has an encoded NUL (%00)"
                            : "the request path has an encoded NUL (%00)";
            else if (c == '/' && !query)
                bad = "the request path has an encoded '/' (%2F)";
        }
        if (bad == NULL && (c < 0x20 || c == 0x7F))
            bad = query ? "the query string has a control character"
                        : "the request path has a control character";
        p[len++] = (unsigned char)c;
    }
    if (bad == NULL && !utf8_valid(p, len))
        bad = query ? "the query string is not valid UTF-8" : "the request path is not valid UTF-8";
    if (bad) {
        free(p);
        return cai_fail(CAI_ERR_FORMAT, "%s", bad);
    }
    p[len] = '\0';
    *out = (char *)p;
    return CAI_OK;
}

/* ---- requests ---------------------------------------------------------- */

/* Overwrites and empties |in| (libevent frees its chains without wiping). */
static void wipe_input(struct evbuffer *in) {
    struct evbuffer_iovec v[16];
    while (evbuffer_get_length(in) > 0) {
        int n = evbuffer_peek(in, -1, NULL, v, 16);
        if (n <= 0)
            break;
        size_t len = 0;
        for (int i = 0; i < n && i < 16; i++) {
            secure_wipe(v[i].iov_base, v[i].iov_len);
            len += v[i].iov_len;
        }
        evbuffer_drain(in, len);
    }
}

static const char *reason(int status) {
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Status";
    }
}

static void send_reply(struct evhttp_request *req, int status, const char *ctype, const void *body,
                 size_t len) {
    struct evbuffer *b = evbuffer_new();
    if (b && len)
        evbuffer_add(b, body, len);
    if (ctype)
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", ctype);
    evhttp_send_reply(req, status, reason(status), b);
    if (b)
        evbuffer_free(b);
}

void httpd_add_header(httpd_req *r, const char *name, const char *value) {
    evhttp_add_header(evhttp_request_get_output_headers(r->req), name, value);
}

void httpd_reply(httpd_req *r, int status, const char *content_type, const void *body, size_t len) {
    if (r->answered)
        return;
    r->answered = 1;
    send_reply(r->req, status, content_type, body, len);
}

void httpd_reply_json(httpd_req *r, int status, json_t *j) {
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (s == NULL) {
        httpd_reply(r, 500, "text/plain", "out of memory\n", 14);
        return;
    }
    httpd_reply(r, status, "application/json", s, strlen(s));
    free(s);
}

void httpd_reply_error(httpd_req *r, int status, const char *message) {
    char *s = r->h->error_body(status, message);
    if (s == NULL) {
        httpd_reply(r, status, "text/plain", message, strlen(message));
        return;
    }
    httpd_reply(r, status, "application/json", s, strlen(s));
    free(s);
}

static void on_request(struct evhttp_request *req, void *arg) {
    httpd *h = arg;
    httpd_req r = {.h = h, .req = req};
    r.query.tqh_first = NULL;
    r.query.tqh_last = &r.query.tqh_first;
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    char *addr = NULL;
    ev_uint16_t port = 0;
    evhttp_connection_get_peer(evcon, &addr, &port);
    snprintf(r.client, sizeof(r.client), "%s", addr ? addr : "?");
    conn *c = conn_get(h, evcon);
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *raw = uri ? evhttp_uri_get_path(uri) : NULL;
    char *path = NULL;
    cai_status pst = raw ? uri_decode(raw, 0, &path)
                         : cai_fail(CAI_ERR_FORMAT, "the request has no path");
    if (c == NULL || pst == CAI_ERR_NOMEM) {
        send_reply(req, 500, "text/plain", "out of memory\n", 14);
        free(path);
        return;
    }
    r.path = path ? path : ""; /* a refused path is answered below, after the limits */
    if (h->n_conns > h->cfg.max_connections) {
        /* 429 as OpenAI's API answers an overloaded server: clients retry
         * it with backoff. The connection closes with the answer and frees
         * its place. */
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
        httpd_reply_error(&r, 429, "too many connections: try again later");
        goto out;
    }
    if (!rate_allow(h, r.client)) {
        httpd_reply_error(&r, 429, "too many requests from this address: slow down");
        goto out;
    }
    if (path == NULL) { /* the limits above record no detail: pst's is still there */
        httpd_reply_error(&r, 400, cai_errmsg(pst));
        goto out;
    }
    const char *q = evhttp_uri_get_query(uri);
    if (q) { /* checked as paths are; libevent's parser takes %00 and bad bytes */
        char *dq = NULL;
        cai_status qst = uri_decode(q, 1, &dq);
        free(dq);
        if (qst == CAI_ERR_NOMEM || (qst == CAI_OK && evhttp_parse_query_str(q, &r.query) != 0)) {
            httpd_reply_error(&r, qst == CAI_ERR_NOMEM ? 500 : 400,
                              qst == CAI_ERR_NOMEM ? "out of memory" : "malformed query string");
            goto out;
        }
        if (qst != CAI_OK) {
            httpd_reply_error(&r, 400, cai_errmsg(qst));
            goto out;
        }
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    r.body_len = evbuffer_get_length(in);
    if (r.body_len > h->cfg.max_body) {
        char msg[96];
        snprintf(msg, sizeof(msg), "the request body is larger than %zu bytes", h->cfg.max_body);
        httpd_reply_error(&r, 413, msg);
        goto out;
    }
    r.body = malloc(r.body_len + 1);
    if (r.body == NULL) {
        httpd_reply_error(&r, 500, "out of memory");
        goto out;
    }
    evbuffer_copyout(in, r.body, r.body_len);
    wipe_input(in); /* the body may carry a secret: only our copy remains */
    r.body[r.body_len] = '\0';
    for (int i = 0; i < h->n_routes; i++) {
        const char *rp = h->routes[i].path;
        size_t n = strlen(rp);
        if (strcmp(rp, path) == 0 || (n > 0 && rp[n - 1] == '/' && strncmp(rp, path, n) == 0)) {
            h->routes[i].fn(&r, h->routes[i].arg);
            if (!r.answered)
                httpd_reply_error(&r, 500, "the handler did not answer");
            goto out;
        }
    }
    httpd_reply_error(&r, 404, "not found");
out:
    evhttp_clear_headers(&r.query);
    if (r.body) /* it may carry a secret (an admin PUT of a resource) */
        secure_wipe(r.body, r.body_len);
    free(r.body);
    free(path);
}

const char *httpd_method(const httpd_req *r) {
    switch (evhttp_request_get_command(r->req)) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_HEAD: return "HEAD";
    default: return "OTHER";
    }
}

const char *httpd_path(const httpd_req *r) { return r->path; }

const char *httpd_query(const httpd_req *r, const char *name) {
    return evhttp_find_header(&r->query, name);
}

const char *httpd_header(const httpd_req *r, const char *name) {
    return evhttp_find_header(evhttp_request_get_input_headers(r->req), name);
}

const char *httpd_body(const httpd_req *r, size_t *len) {
    if (len)
        *len = r->body_len;
    return r->body;
}

const char *httpd_client(const httpd_req *r) { return r->client; }

const char *httpd_target(const httpd_req *r) { return evhttp_request_get_uri(r->req); }

void httpd_header_each(const httpd_req *r, int (*fn)(void *, const char *, const char *), void *arg) {
    struct evkeyval *kv;
    TAILQ_FOREACH(kv, evhttp_request_get_input_headers(r->req), next)
        if (fn(arg, kv->key, kv->value))
            return;
}

/* ---- replies from other threads ---------------------------------------- */

static void async_finish(httpd_async *a) {
    /* loop thread, a->mu not held: the request is done on our side */
    a->req = NULL;
    if (a->c) {
        a->c->async = NULL;
        a->c = NULL;
        if (a->on_end)
            a->on_end(a->arg, 0);
        httpd_async_release(a); /* httpd's reference; may free |a| */
    }
}

/* Drops the connection of a stream whose client does not read it (loop
 * thread): its close callback ends the async as a client gone. */
static void async_drop(httpd_async *a, struct evhttp_request *req, size_t unsent) {
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    char *addr = NULL;
    ev_uint16_t port = 0;
    evhttp_connection_get_peer(evcon, &addr, &port);
    log_warn("dropping the client %s:%u: it does not read its stream (%zu bytes unsent, the "
             "limit is %zu)", addr ? addr : "?", (unsigned)port, unsent, a->max_unsent);
    atomic_fetch_add(&a->refs, 1); /* |a| outlives the close callback's release */
    evhttp_connection_free(evcon);  /* runs on_conn_close, which frees nothing of req */
    httpd_async_release(a);
}

static size_t req_unsent(struct evhttp_request *req) {
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    return bev ? evbuffer_get_length(bufferevent_get_output(bev)) : 0;
}

/* The end of a stream (loop thread). libevent's TLS bufferevent runs its
 * write callback deferred, a loop iteration after the output drained, and
 * evhttp takes that callback, once evhttp_send_reply_end has been called,
 * as "the reply is out": it then stops writing. A callback still pending
 * from an earlier chunk's drain would end the reply with the last chunk and
 * the terminator unsent, and the client would wait forever (about one TLS
 * stream in fifty did). So the terminator is written only when no such
 * callback can be pending: from a write callback that finds the output
 * empty, or while the output has not drained since the headers. */
static void stream_end_now(httpd_async *a) {
    a->end_wanted = 0;
    evhttp_send_reply_end(a->req);
    async_finish(a);
}

static void on_flushed(struct evhttp_connection *evcon, void *arg) {
    (void)evcon;
    httpd_async *a = arg;
    if (a->end_wanted && a->req && req_unsent(a->req) == 0)
        stream_end_now(a);
}

static void on_end_later(evutil_socket_t fd, short ev, void *arg) {
    (void)fd, (void)ev;
    httpd_async *a = arg;
    if (a->end_wanted && a->req) /* the connection may have closed meanwhile */
        stream_end_now(a);
    httpd_async_release(a);
}

static void stream_end(httpd_async *a, struct evhttp_request *req) {
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evhttp_request_get_connection(req));
    a->end_wanted = 1;
    if (a->armed) {
        /* on_flushed runs after the output drains; if it has drained
         * already, this asks for one more run (merged with a pending one). */
        bufferevent_trigger(bev, EV_WRITE, BEV_TRIG_DEFER_CALLBACKS);
    } else if (evbuffer_get_length(bufferevent_get_output(bev)) > 0) {
        stream_end_now(a); /* the headers alone, not drained: nothing pending */
    } else {
        /* Only headers, drained: their callback (which reaches no one) runs
         * before a timer due now, in the next loop iteration. */
        const struct timeval now = {0, 0};
        atomic_fetch_add(&a->refs, 1);
        if (event_base_once(bufferevent_get_base(bev), -1, EV_TIMEOUT, on_end_later, a, &now) != 0) {
            httpd_async_release(a);
            stream_end_now(a);
        }
    }
}

static void on_wake(evutil_socket_t fd, short ev, void *arg) {
    (void)fd, (void)ev;
    httpd_async *a = arg;
    pthread_mutex_lock(&a->mu);
    struct evhttp_request *req = a->req;
    if (req == NULL || a->finished) {
        pthread_mutex_unlock(&a->mu);
        return;
    }
    if (a->overflow) {
        size_t unsent = a->unsent + evbuffer_get_length(a->pending);
        a->closed = 1;
        pthread_mutex_unlock(&a->mu);
        async_drop(a, req, unsent);
        return;
    }
    if (!a->want_full && !a->want_start) {
        /* Chunks written before the stream was started wait for its status
         * line and headers: httpd_async_stream_start wakes us again. */
        pthread_mutex_unlock(&a->mu);
        return;
    }
    struct evbuffer *data = evbuffer_new();
    if (data)
        evbuffer_add_buffer(data, a->pending);
    int full = a->want_full, start = a->want_start && !a->started, end = a->want_end;
    int status = a->status;
    char ctype[sizeof(a->ctype)];
    memcpy(ctype, a->ctype, sizeof(ctype));
    if (start)
        a->started = 1;
    if (full || end)
        a->finished = 1;
    pthread_mutex_unlock(&a->mu);
    if (data == NULL)
        return;
    if (full || start) {
        struct evkeyvalq *hd = evhttp_request_get_output_headers(req);
        struct evkeyval *kv;
        pthread_mutex_lock(&a->mu);
        TAILQ_FOREACH(kv, &a->headers, next)
            evhttp_add_header(hd, kv->key, kv->value);
        pthread_mutex_unlock(&a->mu);
    }
    if (full) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", ctype);
        evhttp_send_reply(req, status, reason(status), data);
    } else {
        if (start) {
            struct evkeyvalq *hd = evhttp_request_get_output_headers(req);
            evhttp_add_header(hd, "Content-Type", ctype);
            evhttp_add_header(hd, "Cache-Control", "no-cache");
            evhttp_add_header(hd, "X-Accel-Buffering", "no");
            evhttp_send_reply_start(req, status, reason(status));
        }
        if (evbuffer_get_length(data)) {
            evhttp_send_reply_chunk_with_cb(req, data, on_flushed, a);
            a->armed = 1;
        }
        if (end) {
            evbuffer_free(data);
            stream_end(a, req);
            return;
        }
        /* A client that does not read: what it has not taken stays in the
         * connection's output buffer. Bounded, not without end. */
        size_t unsent = req_unsent(req);
        pthread_mutex_lock(&a->mu);
        a->unsent = unsent;
        int over = unsent > a->max_unsent;
        if (over)
            a->closed = 1;
        pthread_mutex_unlock(&a->mu);
        if (over) {
            evbuffer_free(data);
            async_drop(a, req, unsent);
            return;
        }
    }
    evbuffer_free(data);
    if (full)
        async_finish(a);
}

httpd_async *httpd_async_new(httpd_req *r, void (*on_end)(void *, int), void *arg) {
    conn *c = conn_get(r->h, evhttp_request_get_connection(r->req));
    httpd_async *a = calloc(1, sizeof(*a));
    if (c == NULL || a == NULL || (a->pending = evbuffer_new()) == NULL ||
        (a->wake = event_new(r->h->base, -1, 0, on_wake, a)) == NULL) {
        if (a && a->pending)
            evbuffer_free(a->pending);
        free(a);
        httpd_reply_error(r, 500, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&a->mu, NULL);
    TAILQ_INIT(&a->headers);
    atomic_init(&a->refs, 2);
    a->req = r->req;
    a->c = c;
    a->max_unsent = r->h->cfg.max_unsent;
    a->on_end = on_end;
    a->arg = arg;
    c->async = a;
    r->answered = 1;
    return a;
}

static cai_status async_post(httpd_async *a, int full, int start, int end, int status,
                             const char *ctype, const void *data, size_t len) {
    pthread_mutex_lock(&a->mu);
    /* A stream may be started after its chunks and its end were written
     * (another thread produced them first); anything else after the end is
     * refused. */
    if ((full || start) && (a->want_start || a->started)) {
        pthread_mutex_unlock(&a->mu);
        return cai_fail(CAI_ERR_INTERNAL, "the reply has begun already");
    }
    if (a->closed || a->finished || a->want_full || (a->want_end && !start) || a->overflow) {
        pthread_mutex_unlock(&a->mu);
        return cai_fail(CAI_ERR_IO, "the client has gone");
    }
    if (full || start) {
        a->status = status;
        snprintf(a->ctype, sizeof(a->ctype), "%s", ctype);
    }
    a->want_full |= full;
    a->want_start |= start;
    a->want_end |= end;
    if (len)
        evbuffer_add(a->pending, data, len);
    /* Stream chunks the client has not taken, here and in the connection's
     * buffer: over the bound the loop drops the client (a whole reply is
     * not counted: its size is the handler's choice). */
    if (!a->want_full && a->unsent + evbuffer_get_length(a->pending) > a->max_unsent)
        a->overflow = 1;
    event_active(a->wake, 0, 0); /* under mu: |a| cannot be freed meanwhile */
    int over = a->overflow;
    pthread_mutex_unlock(&a->mu);
    return over ? cai_fail(CAI_ERR_IO, "the client does not read its stream") : CAI_OK;
}

cai_status httpd_async_reply(httpd_async *a, int status, const char *content_type,
                             const void *body, size_t len) {
    return async_post(a, 1, 0, 0, status, content_type, body, len);
}

cai_status httpd_async_stream_start(httpd_async *a, int status, const char *content_type) {
    return async_post(a, 0, 1, 0, status, content_type, NULL, 0);
}

cai_status httpd_async_write(httpd_async *a, const void *data, size_t len) {
    return async_post(a, 0, 0, 0, 0, NULL, data, len);
}

cai_status httpd_async_end(httpd_async *a) { return async_post(a, 0, 0, 1, 0, NULL, NULL, 0); }

cai_status httpd_async_write_end(httpd_async *a, const void *data, size_t len) {
    return async_post(a, 0, 0, 1, 0, NULL, data, len);
}

cai_status httpd_async_add_header(httpd_async *a, const char *name, const char *value) {
    pthread_mutex_lock(&a->mu);
    int begun = a->want_full || a->want_start || a->started;
    int rc = begun ? -1 : evhttp_add_header(&a->headers, name, value);
    pthread_mutex_unlock(&a->mu);
    return begun ? cai_fail(CAI_ERR_INTERNAL, "the reply has begun already")
           : rc != 0 ? cai_fail(CAI_ERR_INVALID_ARG, "a response header with a line break")
                     : CAI_OK;
}

int httpd_async_closed(httpd_async *a) {
    pthread_mutex_lock(&a->mu);
    int c = a->closed;
    pthread_mutex_unlock(&a->mu);
    return c;
}

void httpd_async_release(httpd_async *a) {
    if (a == NULL || atomic_fetch_sub(&a->refs, 1) != 1)
        return;
    event_free(a->wake); /* waits for a running on_wake in the loop thread */
    evbuffer_free(a->pending);
    evhttp_clear_headers(&a->headers);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

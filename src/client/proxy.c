/* proxy.c - plain HTTP in on loopback, attested TLS out. */
#include "client/proxy.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "net/httpc.h"
#include "net/httpd.h"
#include "common/log.h"
#include "common/secure.h"

#define QUEUE_MAX 256     /* named limit: requests waiting for a connection */
#define UPSTREAMS_MAX 64  /* named limit: servers whose verification is shown */
#define HEADERS_MAX 64    /* named limit: request headers forwarded */

typedef struct job {
    struct job *next;
    char *method, *url, *hostport;
    char *headers[HEADERS_MAX + 1];
    size_t n_headers;
    char *body;
    size_t body_len;
    httpd_async *a;
} job;

/* Certificates remembered per upstream: one address may be several servers
 * (replicas behind a TCP load balancer), each with its own certificate. */
#define CERTS_SEEN 8

typedef struct {
    char hostport[256];
    json_t *claims; /* what its newest verified certificate showed */
    char seen[CERTS_SEEN][65]; /* certificates already printed (SHA-256, hex) */
    size_t next_seen;
} upstream;

/* A worker runs one upstream request at a time over its own libcurl handle,
 * which keeps the worker's connections to upstreams alive between requests. */
typedef struct worker {
    proxy *p;
    pthread_t th;
    pthread_cond_t cv;
    job *j;                /* handed to this worker while it waited */
    struct worker *next;   /* in the stack of idle workers */
} worker;

struct proxy {
    proxy_config cfg;
    httpd *h;
    worker *w;
    int n_w;
    pthread_mutex_t mu; /* the queue, the idle workers and the upstreams */
    worker *idle;       /* most recently idle first: its connection is the warmest */
    job *head, *tail;
    int queued;
    atomic_int stop;
    upstream up[UPSTREAMS_MAX];
    size_t n_up, next_up;
};

static void job_free(job *j) {
    if (j == NULL)
        return;
    free(j->method);
    free(j->url);
    free(j->hostport);
    for (size_t i = 0; i < j->n_headers; i++) {
        secure_wipe(j->headers[i], strlen(j->headers[i])); /* may be an API key */
        free(j->headers[i]);
    }
    if (j->body)
        secure_wipe(j->body, j->body_len);
    free(j->body);
    free(j);
}

/* ---- what was verified ----------------------------------------------------- */

static const char *str(const json_t *claims, const char *k) {
    const char *s = json_string_value(json_object_get(claims, k));
    return s ? s : "?";
}

/* Remembers |claims| for |hostport| and prints them the first time its
 * certificate is seen there. Takes the reference. */
static void upstream_note(proxy *p, const char *hostport, json_t *claims) {
    pthread_mutex_lock(&p->mu);
    upstream *u = NULL;
    for (size_t i = 0; i < p->n_up && !u; i++)
        if (strcmp(p->up[i].hostport, hostport) == 0)
            u = &p->up[i];
    if (u == NULL) {
        u = &p->up[p->n_up < UPSTREAMS_MAX ? p->n_up++ : p->next_up++ % UPSTREAMS_MAX];
        json_decref(u->claims);
        memset(u, 0, sizeof(*u));
        snprintf(u->hostport, sizeof(u->hostport), "%s", hostport);
    }
    const char *cert = str(claims, "cert_sha256");
    int fresh = 1;
    for (size_t i = 0; i < CERTS_SEEN && fresh; i++)
        fresh = strcmp(u->seen[i], cert) != 0;
    if (fresh)
        snprintf(u->seen[u->next_seen++ % CERTS_SEEN], sizeof(u->seen[0]), "%s", cert);
    json_decref(u->claims);
    u->claims = claims;
    if (fresh) {
        int sim = strcmp(str(claims, "tee"), "sim") == 0;
        printf("cai proxy: verified https://%s: %s, TCB %s, MRTD %s, model sha256:%s "
               "(certificate sha256:%s)\n", hostport,
               sim ? "simulated TEE (INSECURE, development only)" : "Intel TDX",
               str(claims, "tcb_status"), str(claims, "mr_td"), str(claims, "model_digest"),
               str(claims, "cert_sha256"));
        fflush(stdout);
    }
    pthread_mutex_unlock(&p->mu);
}

static json_t *upstream_claims(proxy *p, const char *hostport) {
    json_t *c = NULL;
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < p->n_up && !c; i++)
        if (strcmp(p->up[i].hostport, hostport) == 0)
            c = json_incref(p->up[i].claims);
    pthread_mutex_unlock(&p->mu);
    return c;
}

static json_t *verified_json(const json_t *claims) {
    static const char *const keys[] = {"tee", "tcb_status", "debug", "mr_td", "rtmr_0", "rtmr_1",
                                       "rtmr_2", "rtmr_3", "model_digest", "cert_sha256",
                                       "cert_not_before"};
    json_t *o = json_object();
    for (size_t i = 0; o && i < sizeof(keys) / sizeof(keys[0]); i++) {
        json_t *v = json_object_get(claims, keys[i]);
        if (v)
            json_object_set(o, keys[i], v);
    }
    return o;
}

static void h_status(httpd_req *r, proxy *p) {
    json_t *ups = json_array();
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < p->n_up; i++)
        json_array_append_new(ups, json_pack("{s:s, s:o}", "server", p->up[i].hostport, "verified",
                                             verified_json(p->up[i].claims)));
    pthread_mutex_unlock(&p->mu);
    httpd_add_header(r, "Cache-Control", "no-store");
    httpd_reply_json(r, 200, json_pack("{s:s, s:s, s:s?, s:o}", "proxy", "cai", "mode",
                                       p->cfg.to ? "mapping" : "proxy", "to", p->cfg.to,
                                       "servers", ups));
}

/* ---- the worker: one upstream request ---------------------------------------- */

typedef struct {
    proxy *p;
    job *j;
    long status;
    char ctype[128];
    int started;
    json_t *claims;
} xfer;

static int hop_by_hop(const char *name, size_t n) {
    static const char *const h[] = {"connection", "keep-alive", "proxy-connection",
                                    "proxy-authorization", "proxy-authenticate", "te", "trailer",
                                    "transfer-encoding", "upgrade", "content-length", "host",
                                    "date", "server"};
    for (size_t i = 0; i < sizeof(h) / sizeof(h[0]); i++)
        if (strlen(h[i]) == n && strncasecmp(name, h[i], n) == 0)
            return 1;
    return 0;
}

static int on_up_header(void *arg, const char *line, size_t len) {
    xfer *x = arg;
    if (len >= 5 && memcmp(line, "HTTP/", 5) == 0)
        return 0;
    const char *colon = memchr(line, ':', len);
    if (colon == NULL)
        return 0;
    size_t n = (size_t)(colon - line);
    const char *v = colon + 1;
    while (v < line + len && (*v == ' ' || *v == '\t'))
        v++;
    char name[128], value[2048];
    if (n == 0 || n >= sizeof(name) || (size_t)(line + len - v) >= sizeof(value) || hop_by_hop(line, n))
        return 0;
    memcpy(name, line, n);
    name[n] = '\0';
    memcpy(value, v, (size_t)(line + len - v));
    value[line + len - v] = '\0';
    if (strcasecmp(name, "content-type") == 0 && strlen(value) < sizeof(x->ctype))
        memcpy(x->ctype, value, strlen(value) + 1);
    else
        (void)httpd_async_add_header(x->j->a, name, value);
    return 0;
}

/* The status line and headers go out with the first body bytes (or the end):
 * then the handshake is done and what it verified is known. */
static int begin(xfer *x) {
    x->started = 1;
    (void)ratls_last_take(&x->claims);
    if (x->claims == NULL) /* a connection verified before */
        x->claims = upstream_claims(x->p, x->j->hostport);
    if (x->claims) {
        char v[512];
        snprintf(v, sizeof(v), "tee=%s; tcb_status=%s; mr_td=%s; model_digest=%s; cert_sha256=%s",
                 str(x->claims, "tee"), str(x->claims, "tcb_status"), str(x->claims, "mr_td"),
                 str(x->claims, "model_digest"), str(x->claims, "cert_sha256"));
        (void)httpd_async_add_header(x->j->a, "X-Cai-Attested", v);
    }
    return httpd_async_stream_start(x->j->a, (int)x->status,
                                    x->ctype[0] ? x->ctype : "application/octet-stream") != CAI_OK;
}

static int on_up_data(void *arg, const void *data, size_t len) {
    xfer *x = arg;
    if (!x->started && begin(x))
        return 1;
    return httpd_async_write(x->j->a, data, len) != CAI_OK;
}

static int on_cancelled(void *arg) {
    xfer *x = arg;
    return atomic_load(&x->p->stop) || httpd_async_closed(x->j->a);
}

static int on_up_status(void *arg, long status) {
    ((xfer *)arg)->status = status;
    return 0;
}

static void reply_502(httpd_async *a, const char *code, const char *msg, const char *hostport) {
    json_t *j = json_pack("{s:{s:s, s:s, s:s, s:s}}", "error", "message", msg, "type",
                          "attestation_error", "code", code, "server", hostport);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    (void)httpd_async_reply(a, 502, "application/json", s ? s : "{}", s ? strlen(s) : 2);
    free(s);
}

static void run_job(proxy *p, httpc *c, job *j) {
    xfer x = {.p = p, .j = j};
    httpc_request rq = {.method = j->method, .url = j->url,
                        .headers = (const char *const *)j->headers,
                        .body = j->body_len || strcmp(j->method, "POST") == 0 ? j->body : NULL,
                        .body_len = j->body_len};
    httpc_sink sink = {.on_status = on_up_status, .on_header = on_up_header, .on_data = on_up_data,
                       .cancelled = on_cancelled, .arg = &x};
    long status = 0;
    cai_status st = httpc_stream(c, &rq, &sink, &status);
    /* What this transfer's handshake verified, if it got an answer: a
     * certificate that verified in a handshake that then failed (a peer
     * without its key) is no server of ours. A refusal's reason is in
     * cai_errmsg(rst). */
    json_t *fresh = NULL;
    cai_status rst = ratls_last_take(&fresh);
    if (fresh && (st == CAI_OK || x.started)) {
        json_decref(x.claims);
        x.claims = fresh;
    } else {
        json_decref(fresh);
    }
    if (x.claims)
        upstream_note(p, j->hostport, json_incref(x.claims));
    if (st == CAI_OK && !x.started) {
        x.status = status;
        (void)begin(&x);
    }
    if (x.started) {
        (void)httpd_async_end(j->a); /* a broken upstream stream ends early */
    } else if (rst != CAI_OK) {
        char msg[1024];
        log_warn("cai proxy: refused %s: %s", j->hostport, cai_errmsg(rst));
        snprintf(msg, sizeof(msg), "cai proxy: the server at %s failed attested TLS verification, "
                 "nothing was sent to it: %s", j->hostport, cai_errmsg(rst));
        reply_502(j->a, "attestation_failed", msg, j->hostport);
    } else if (st == CAI_ERR_AUTH) {
        char msg[1024];
        log_warn("cai proxy: TLS handshake with %s failed: %s", j->hostport, cai_errmsg(st));
        snprintf(msg, sizeof(msg), "cai proxy: the TLS handshake with %s failed (attested TLS "
                 "needs TLS 1.3 and a server holding its certificate's key), nothing was sent "
                 "to it: %s", j->hostport, cai_errmsg(st));
        reply_502(j->a, "tls_handshake_failed", msg, j->hostport);
    } else {
        char msg[1024];
        snprintf(msg, sizeof(msg), "cai proxy: cannot reach %s over TLS: %s", j->hostport,
                 cai_errmsg(st));
        reply_502(j->a, "upstream_unreachable", msg, j->hostport);
    }
    json_decref(x.claims);
}

/* The next job of worker |w|: from the queue, or handed over while it waits
 * on the idle stack. NULL when the proxy stops. */
static job *next_job(worker *w) {
    proxy *p = w->p;
    pthread_mutex_lock(&p->mu);
    job *j = p->head;
    if (j) {
        p->head = j->next;
        if (p->head == NULL)
            p->tail = NULL;
        p->queued--;
    } else if (!atomic_load(&p->stop)) {
        w->next = p->idle;
        p->idle = w;
        while (!atomic_load(&p->stop) && w->j == NULL)
            pthread_cond_wait(&w->cv, &p->mu);
        j = w->j; /* the dispatcher took |w| off the stack; at stop, proxy_free did */
        w->j = NULL;
    }
    pthread_mutex_unlock(&p->mu);
    return j;
}

static void *worker_main(void *arg) {
    worker *w = arg;
    proxy *p = w->p;
    httpc *c = NULL;
    httpc_opts o = {.timeout_s = 0, .tls_setup = ratls_ssl_ctx_setup,
                    .tls_setup_arg = p->cfg.verifier};
    if (httpc_new(&o, &c) != CAI_OK)
        return NULL;
    for (job *j; (j = next_job(w)) != NULL;) {
        run_job(p, c, j);
        httpd_async_release(j->a);
        job_free(j);
    }
    httpc_free(c);
    return NULL;
}

/* ---- the loop thread: requests in ------------------------------------------ */

static int add_header(void *arg, const char *name, const char *value) {
    job *j = arg;
    size_t n = strlen(name);
    if (hop_by_hop(name, n) || j->n_headers >= HEADERS_MAX)
        return 0;
    size_t len = n + strlen(value) + 3;
    char *h = malloc(len);
    if (h == NULL)
        return 1;
    snprintf(h, len, "%s: %s", name, value);
    j->headers[j->n_headers++] = h;
    return 0;
}

/* The upstream URL of a request: https://HOST:PORT/path?query. */
static cai_status upstream_url(const proxy *p, const char *target, job *j) {
    httpc_url u = {0};
    cai_status st = CAI_OK;
    if (strncasecmp(target, "http://", 7) == 0) {
        st = httpc_url_parse(target, &u);
    } else if (target[0] == '/' && p->cfg.to) {
        size_t n = strlen(p->cfg.to) + strlen(target) + 1;
        char *full = malloc(n);
        if (full == NULL)
            return CAI_ERR_NOMEM;
        snprintf(full, n, "%s%s", p->cfg.to, target);
        st = httpc_url_parse(full, &u);
        free(full);
        if (st == CAI_ERR_FORMAT)
            st = cai_fail(CAI_ERR_INVALID_ARG, "cannot parse the path %.200s", target);
    } else {
        return cai_fail(CAI_ERR_INVALID_ARG, "cai proxy forwards http://HOST:PORT/... requests "
                        "(set http_proxy=http://127.0.0.1:PORT), or paths when started with --to");
    }
    if (st == CAI_ERR_FORMAT) /* the message is httpc_url_parse's */
        st = CAI_ERR_INVALID_ARG;
    if (st != CAI_OK)
        goto out;
    /* http://HOST/ through the proxy means the server's TLS port 443. */
    const char *pt = strncasecmp(target, "http://", 7) == 0 && strcmp(u.port, "80") == 0 ? "443" : u.port;
    size_t n = strlen(u.host) + strlen(pt) + 2;
    if ((j->hostport = malloc(n)) == NULL) {
        st = CAI_ERR_NOMEM;
        goto out;
    }
    snprintf(j->hostport, n, "%s:%s", u.host, pt);
    n = 8 + strlen(j->hostport) + strlen(u.path) + (u.query ? strlen(u.query) + 1 : 0) + 1;
    if ((j->url = malloc(n)) == NULL) {
        st = CAI_ERR_NOMEM;
        goto out;
    }
    snprintf(j->url, n, "https://%s%s%s%s", j->hostport, u.path, u.query ? "?" : "",
             u.query ? u.query : "");
out:
    httpc_url_cleanup(&u);
    return st;
}

static void h_any(httpd_req *r, void *arg) {
    proxy *p = arg;
    const char *target = httpd_target(r), *method = httpd_method(r);
    if (target[0] == '/' && strcmp(httpd_path(r), "/.cai/proxy") == 0) {
        h_status(r, p);
        return;
    }
    if (strcmp(method, "OTHER") == 0) {
        httpd_reply_error(r, 405, "cai proxy forwards GET, POST, PUT, DELETE, OPTIONS and HEAD "
                          "for http:// URLs; it makes the attested TLS itself (no CONNECT, no "
                          "https:// through it)");
        return;
    }
    job *j = calloc(1, sizeof(*j));
    if (j == NULL || (j->method = strdup(method)) == NULL) {
        job_free(j);
        httpd_reply_error(r, 500, "out of memory");
        return;
    }
    cai_status st = upstream_url(p, target, j);
    if (st != CAI_OK) {
        job_free(j);
        httpd_reply_error(r, st == CAI_ERR_NOMEM ? 500 : 400, cai_errmsg(st));
        return;
    }
    httpd_header_each(r, add_header, j);
    size_t len;
    const char *body = httpd_body(r, &len);
    if ((j->body = malloc(len + 1)) == NULL) {
        job_free(j);
        httpd_reply_error(r, 500, "out of memory");
        return;
    }
    memcpy(j->body, body, len + 1);
    j->body_len = len;
    if ((j->a = httpd_async_new(r, NULL, NULL)) == NULL) {
        job_free(j);
        return;
    }
    pthread_mutex_lock(&p->mu);
    worker *w = p->idle;
    int full = w == NULL && p->queued >= QUEUE_MAX;
    if (w) {
        p->idle = w->next;
        w->j = j;
        pthread_cond_signal(&w->cv);
    } else if (!full) {
        if (p->tail)
            p->tail->next = j;
        else
            p->head = j;
        p->tail = j;
        p->queued++;
    }
    pthread_mutex_unlock(&p->mu);
    if (full) {
        const char *m = "{\"error\":{\"message\":\"cai proxy: too many requests waiting\","
                        "\"type\":\"server_error\"}}";
        (void)httpd_async_reply(j->a, 503, "application/json", m, strlen(m));
        httpd_async_release(j->a);
        j->a = NULL;
        job_free(j);
    }
}

static char *error_body(int status, const char *message) {
    json_t *j = json_pack("{s:{s:s, s:s, s:i}}", "error", "message", message, "type",
                          status >= 500 ? "server_error" : "invalid_request_error", "status", status);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return s;
}

cai_status proxy_new(const proxy_config *c, proxy **out) {
    *out = NULL;
    proxy *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return CAI_ERR_NOMEM;
    p->cfg = *c;
    if (p->cfg.workers <= 0)
        p->cfg.workers = 16;
    if (!p->cfg.max_body)
        p->cfg.max_body = 8u << 20;
    pthread_mutex_init(&p->mu, NULL);
    httpd_config hc = {.host = c->host, .port = c->port, .max_body = p->cfg.max_body,
                       .max_connections = 512, .timeout_s = 600};
    cai_status st = httpd_new(&hc, &p->h);
    if (st != CAI_OK) {
        proxy_free(p);
        return st;
    }
    httpd_set_error_body(p->h, error_body);
    httpd_route(p->h, "/", h_any, p);
    if ((p->w = calloc((size_t)p->cfg.workers, sizeof(*p->w))) == NULL) {
        proxy_free(p);
        return CAI_ERR_NOMEM;
    }
    for (; p->n_w < p->cfg.workers; p->n_w++) {
        worker *w = &p->w[p->n_w];
        w->p = p;
        pthread_cond_init(&w->cv, NULL);
        if (pthread_create(&w->th, NULL, worker_main, w) != 0) {
            pthread_cond_destroy(&w->cv);
            proxy_free(p);
            return cai_fail(CAI_ERR_INTERNAL, "cannot start the proxy's workers");
        }
    }
    *out = p;
    return CAI_OK;
}

int proxy_port(const proxy *p) { return httpd_port(p->h); }
cai_status proxy_run(proxy *p) { return httpd_run(p->h); }
void proxy_stop(proxy *p) { httpd_stop(p->h); }

void proxy_free(proxy *p) {
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    for (int i = 0; i < p->n_w; i++)
        pthread_cond_signal(&p->w[i].cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_w; i++) {
        pthread_join(p->w[i].th, NULL);
        pthread_cond_destroy(&p->w[i].cv);
    }
    free(p->w);
    for (job *j = p->head, *n; j; j = n) {
        n = j->next;
        httpd_async_release(j->a);
        job_free(j);
    }
    httpd_free(p->h);
    for (size_t i = 0; i < p->n_up; i++)
        json_decref(p->up[i].claims);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

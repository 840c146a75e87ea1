/* httpc.c - libcurl client with an in-memory cookie jar. */
#include "net/httpc.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <errno.h>
#include <unistd.h>

#include "common/file.h"

#include "common/secure.h"

struct httpc {
    CURL *curl;
    httpc_opts o;
    int unreachable; /* the last transfer's, see httpc_unreachable */
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;
static void global_init(void) { global_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

/* A transport failure before the peer answered anything. */
static int unreachable(CURLcode rc) {
    return rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
           rc == CURLE_OPERATION_TIMEDOUT;
}

cai_status httpc_new(const httpc_opts *o, httpc **out) {
    pthread_once(&global_once, global_init);
    *out = NULL;
    if (global_rc != CURLE_OK)
        return cai_fail(CAI_ERR_INTERNAL, "libcurl failed to start");
    httpc *c = calloc(1, sizeof(*c));
    if (c == NULL || (c->curl = curl_easy_init()) == NULL) {
        free(c);
        return CAI_ERR_NOMEM;
    }
    if (o)
        c->o = *o;
    *out = c;
    return CAI_OK;
}

void httpc_free(httpc *c) {
    if (c == NULL)
        return;
    curl_easy_cleanup(c->curl);
    free(c);
}

/* TLS for one transfer: CA and host name checks, or the caller's own. */
static CURLcode on_ssl_ctx(CURL *h, void *ssl_ctx, void *arg) {
    (void)h;
    httpc *c = arg;
    return c->o.tls_setup(ssl_ctx, c->o.tls_setup_arg) == CAI_OK ? CURLE_OK : CURLE_SSL_CERTPROBLEM;
}

static void set_tls(httpc *c) {
    CURL *h = c->curl;
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    if (c->o.tls_setup) {
        /* The peer check is tls_setup's (it keeps VERIFYPEER's effect: a
         * refusal ends the handshake); no name to check, no resumption. */
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
        curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_3);
        curl_easy_setopt(h, CURLOPT_SSL_SESSIONID_CACHE, 0L);
        curl_easy_setopt(h, CURLOPT_CAINFO, NULL); /* no CA bundle to load per connection */
        curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
        curl_easy_setopt(h, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
        curl_easy_setopt(h, CURLOPT_SSL_CTX_DATA, c);
    } else {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
        if (c->o.ca_file)
            curl_easy_setopt(h, CURLOPT_CAINFO, c->o.ca_file);
    }
}

/* What every transfer sets: timeouts to connect, schemes, User-Agent, TLS. */
static void set_common(httpc *c) {
    CURL *h = c->curl;
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT,
                     c->o.connect_timeout_s > 0 ? c->o.connect_timeout_s : 10L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, c->o.https_only ? "https" : "http,https");
    curl_easy_setopt(h, CURLOPT_USERAGENT, c->o.user_agent);
    set_tls(c);
}

typedef struct {
    buf *b;
    int over;
} body_sink;

static size_t on_data(char *p, size_t size, size_t n, void *arg) {
    body_sink *s = arg;
    if (buf_append(s->b, p, size * n) != CAI_OK) {
        s->over = 1;
        return 0;
    }
    return size * n;
}

/* The request's headers and options on c->curl; |auth| holds the bearer
 * line (wiped by the caller). */
static cai_status prepare(httpc *c, const httpc_request *rq, struct curl_slist **hdr,
                          char auth[16 * 1024 + 32]) {
    CURL *h = c->curl;
    char ctype[128];
    *hdr = NULL;
    if (rq->bearer) {
        if (strlen(rq->bearer) > 16 * 1024)
            return cai_fail(CAI_ERR_LIMIT, "http: token too long");
        snprintf(auth, 16 * 1024 + 32, "Authorization: Bearer %s", rq->bearer);
        *hdr = curl_slist_append(*hdr, auth);
    }
    if (rq->body && rq->content_type != NULL) {
        snprintf(ctype, sizeof(ctype), "Content-Type: %s", rq->content_type);
        *hdr = curl_slist_append(*hdr, ctype);
    } else if (rq->body && rq->headers == NULL) {
        *hdr = curl_slist_append(*hdr, "Content-Type: application/json");
    }
    if (rq->header)
        *hdr = curl_slist_append(*hdr, rq->header);
    for (size_t i = 0; rq->headers && rq->headers[i]; i++)
        *hdr = curl_slist_append(*hdr, rq->headers[i]);
    *hdr = curl_slist_append(*hdr, "Expect:");
    curl_easy_setopt(h, CURLOPT_URL, rq->url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, rq->method);
    curl_easy_setopt(h, CURLOPT_NOBODY, strcmp(rq->method, "HEAD") == 0 ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_HTTPGET, rq->body ? 0L : 1L);
    if (rq->body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, *hdr);
    curl_easy_setopt(h, CURLOPT_COOKIEFILE, ""); /* the cookie engine, in memory */
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    set_common(c);
    return CAI_OK;
}

/* Runs the prepared transfer: a failed TLS handshake is CAI_ERR_AUTH (a
 * refusal: nothing of the request was sent), other transport failures
 * CAI_ERR_IO, with curl's own detail. */
static cai_status perform(httpc *c, const httpc_request *rq) {
    char err[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, err);
    CURLcode rc = curl_easy_perform(c->curl);
    curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, NULL);
    c->unreachable = unreachable(rc);
    if (rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_PEER_FAILED_VERIFICATION)
        return cai_fail(CAI_ERR_AUTH, "http: %s %s: the TLS handshake failed: %s", rq->method,
                        rq->url, err[0] ? err : curl_easy_strerror(rc));
    if (rc != CURLE_OK)
        return cai_fail(CAI_ERR_IO, "http: %s %s: %s", rq->method, rq->url,
                        err[0] ? err : curl_easy_strerror(rc));
    return CAI_OK;
}

static void finish(httpc *c, struct curl_slist *hdr, char *auth, size_t auth_len) {
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, NULL);
    curl_slist_free_all(hdr);
    secure_wipe(auth, auth_len);
}

cai_status httpc_do(httpc *c, const httpc_request *rq, long *status, buf *resp) {
    buf_init(resp, rq->max_response ? rq->max_response : 4u << 20);
    *status = 0;
    CURL *h = c->curl;
    struct curl_slist *hdr = NULL;
    char auth[16 * 1024 + 32];
    body_sink s = {resp, 0};
    cai_status st = prepare(c, rq, &hdr, auth);
    if (st != CAI_OK)
        return st;
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, NULL);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, c->o.timeout_s > 0 ? c->o.timeout_s : 30L);
    st = perform(c, rq);
    finish(c, hdr, auth, sizeof(auth));
    if (s.over)
        return cai_fail(CAI_ERR_LIMIT, "http: the answer from %s is too large", rq->url);
    if (st != CAI_OK)
        return st;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    return buf_terminate(resp);
}

typedef struct {
    const httpc_sink *sink;
    int in_final; /* the headers of the final response (not a 1xx) */
    int aborted;
} stream_state;

static size_t on_stream_header(char *p, size_t size, size_t n, void *arg) {
    stream_state *s = arg;
    size_t len = size * n;
    int status_line = len >= 5 && memcmp(p, "HTTP/", 5) == 0;
    long status = 0;
    if (status_line) { /* "HTTP/1.1 200 OK", "HTTP/2 200" */
        const char *sp = memchr(p, ' ', len);
        if (sp && (size_t)(p + len - sp) >= 4)
            status = strtol(sp + 1, NULL, 10);
        s->in_final = status < 100 || status > 199;
    }
    while (len && (p[len - 1] == '\n' || p[len - 1] == '\r'))
        len--;
    if (s->in_final && status_line && s->sink->on_status && s->sink->on_status(s->sink->arg, status))
        s->aborted = 1;
    else if (s->in_final && len && s->sink->on_header && s->sink->on_header(s->sink->arg, p, len))
        s->aborted = 1;
    return s->aborted ? 0 : size * n;
}

static size_t on_stream_data(char *p, size_t size, size_t n, void *arg) {
    stream_state *s = arg;
    if (s->sink->on_data(s->sink->arg, p, size * n)) {
        s->aborted = 1;
        return 0;
    }
    return size * n;
}

static int on_stream_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d) {
    (void)a, (void)b, (void)c, (void)d;
    stream_state *s = arg;
    if (s->sink->cancelled && s->sink->cancelled(s->sink->arg)) {
        s->aborted = 1;
        return 1;
    }
    return 0;
}

cai_status httpc_stream(httpc *c, const httpc_request *rq, const httpc_sink *sink, long *status) {
    *status = 0;
    CURL *h = c->curl;
    struct curl_slist *hdr = NULL;
    char auth[16 * 1024 + 32];
    stream_state s = {.sink = sink};
    cai_status st = prepare(c, rq, &hdr, auth);
    if (st != CAI_OK)
        return st;
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_stream_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_stream_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &s);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_stream_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &s);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, c->o.timeout_s); /* 0: none (a stream takes its time) */
    curl_easy_setopt(h, CURLOPT_HTTP_CONTENT_DECODING, 0L); /* bytes as sent */
    st = perform(c, rq);
    finish(c, hdr, auth, sizeof(auth));
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, NULL);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 1L);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    if (s.aborted)
        return cai_fail(CAI_ERR_IO, "http: %s %s: stopped", rq->method, rq->url);
    return st;
}

typedef struct {
    int fd;
    int failed;
    uint64_t written;
} fd_sink;

static size_t on_file_data(char *p, size_t size, size_t n, void *arg) {
    fd_sink *s = arg;
    if (file_write_full(s->fd, p, size * n) != CAI_OK) {
        s->failed = 1;
        return 0;
    }
    s->written += size * n;
    return size * n;
}

cai_status httpc_download(httpc *c, const char *url, int fd, int attempts, uint64_t *out_len) {
    CURL *h = c->curl;
    cai_status st = CAI_ERR_IO;
    for (int i = 1; i <= attempts; i++) {
        off_t off = lseek(fd, 0, SEEK_END);
        if (off < 0)
            return cai_fail(CAI_ERR_IO, "download: cannot seek: %s", strerror(errno));
        fd_sink s = {.fd = fd};
        curl_easy_reset(h);
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_file_data);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
        curl_easy_setopt(h, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)off);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L); /* stalled for 30 s: retry */
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 30L);
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "https");
        curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L);
        set_common(c);
        CURLcode rc = curl_easy_perform(h);
        c->unreachable = unreachable(rc);
        long status = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        if (s.failed)
            return cai_fail(CAI_ERR_IO, "download: cannot write what %s sends", url);
        if (rc == CURLE_RANGE_ERROR) { /* the server cannot resume: start over */
            if (ftruncate(fd, 0) != 0)
                return cai_fail(CAI_ERR_IO, "download: cannot truncate: %s", strerror(errno));
            st = cai_fail(CAI_ERR_IO, "download: %s cannot resume; starting over", url);
            continue;
        }
        if (rc == CURLE_OK && (status == 200 || status == 206)) {
            *out_len = (uint64_t)lseek(fd, 0, SEEK_END);
            return CAI_OK;
        }
        if (rc == CURLE_HTTP_RETURNED_ERROR && status < 500)
            return cai_fail(CAI_ERR_NOT_FOUND, "download: %s answers HTTP %ld", url, status);
        st = cai_fail(CAI_ERR_IO, "download: %s: %s after %llu bytes (try %d of %d)", url,
                      curl_easy_strerror(rc), (unsigned long long)(off + (off_t)s.written), i,
                      attempts);
    }
    return st;
}

int httpc_unreachable(const httpc *c) { return c->unreachable; }

cai_status httpc_url_parse(const char *url, httpc_url *out) {
    memset(out, 0, sizeof(*out));
    CURLU *u = curl_url();
    cai_status st = CAI_OK;
    if (u == NULL)
        return CAI_ERR_NOMEM;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
        st = cai_fail(CAI_ERR_FORMAT, "cannot parse the URL %.200s", url);
    else if (curl_url_get(u, CURLUPART_HOST, &out->host, 0) != CURLUE_OK ||
             curl_url_get(u, CURLUPART_PORT, &out->port, CURLU_DEFAULT_PORT) != CURLUE_OK ||
             curl_url_get(u, CURLUPART_PATH, &out->path, 0) != CURLUE_OK)
        st = cai_fail(CAI_ERR_INVALID_ARG, "the URL %.200s names no host", url);
    else if (curl_url_get(u, CURLUPART_QUERY, &out->query, 0) != CURLUE_OK)
        out->query = NULL;
    curl_url_cleanup(u);
    if (st != CAI_OK)
        httpc_url_cleanup(out);
    return st;
}

void httpc_url_cleanup(httpc_url *u) {
    curl_free(u->host);
    curl_free(u->port);
    curl_free(u->path);
    curl_free(u->query);
    memset(u, 0, sizeof(*u));
}

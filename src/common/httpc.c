/* httpc.c - libcurl client with an in-memory cookie jar. */
#include "common/httpc.h"

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
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static void global_init(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

cai_status httpc_new(const httpc_opts *o, httpc **out) {
    pthread_once(&global_once, global_init);
    *out = NULL;
    httpc *c = calloc(1, sizeof(*c));
    if (c == NULL || (c->curl = curl_easy_init()) == NULL) {
        free(c);
        return CAI_ERR_NOMEM;
    }
    if (o)
        c->o = *o;
    if (c->o.timeout_s <= 0)
        c->o.timeout_s = 30;
    *out = c;
    return CAI_OK;
}

void httpc_free(httpc *c) {
    if (c == NULL)
        return;
    curl_easy_cleanup(c->curl);
    free(c);
}

typedef struct {
    buf *b;
    int over;
} sink;

static size_t on_data(char *p, size_t size, size_t n, void *arg) {
    sink *s = arg;
    if (buf_append(s->b, p, size * n) != CAI_OK) {
        s->over = 1;
        return 0;
    }
    return size * n;
}

cai_status httpc_do(httpc *c, const httpc_request *rq, long *status, buf *resp) {
    buf_init(resp, rq->max_response ? rq->max_response : 4u << 20);
    *status = 0;
    CURL *h = c->curl;
    struct curl_slist *hdr = NULL;
    char auth[16 * 1024 + 32], ctype[128];
    sink s = {resp, 0};
    if (rq->bearer) {
        if (strlen(rq->bearer) > 16 * 1024)
            return cai_fail(CAI_ERR_LIMIT, "http: token too long");
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", rq->bearer);
        hdr = curl_slist_append(hdr, auth);
    }
    if (rq->body) {
        snprintf(ctype, sizeof(ctype), "Content-Type: %s",
                 rq->content_type ? rq->content_type : "application/json");
        hdr = curl_slist_append(hdr, ctype);
    }
    if (rq->header)
        hdr = curl_slist_append(hdr, rq->header);
    hdr = curl_slist_append(hdr, "Expect:");
    curl_easy_setopt(h, CURLOPT_URL, rq->url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, rq->method);
    curl_easy_setopt(h, CURLOPT_NOBODY, strcmp(rq->method, "HEAD") == 0 ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_HTTPGET, rq->body ? 0L : 1L);
    if (rq->body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_COOKIEFILE, ""); /* the cookie engine, in memory */
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, c->o.timeout_s);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (c->o.ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, c->o.ca_file);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
    curl_slist_free_all(hdr);
    secure_wipe(auth, sizeof(auth));
    if (s.over)
        return cai_fail(CAI_ERR_LIMIT, "http: the answer from %s is too large", rq->url);
    if (rc != CURLE_OK)
        return cai_fail(CAI_ERR_IO, "http: %s %s: %s", rq->method, rq->url, curl_easy_strerror(rc));
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    return buf_terminate(resp);
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
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L); /* stalled for 30 s: retry */
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 30L);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "https");
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
        curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L);
        if (c->o.ca_file)
            curl_easy_setopt(h, CURLOPT_CAINFO, c->o.ca_file);
        CURLcode rc = curl_easy_perform(h);
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

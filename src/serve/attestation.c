/* attestation.c - the /v1/attestation worker: one thread, a bounded queue. */
#include "serve/attestation.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "attest/quote.h"
#include "common/buf.h"
#include "common/codec.h"
#include "common/log.h"
#include "serve/api.h"

typedef struct {
    httpd_async *a;
    uint8_t nonce[ATTEST_NONCE_MAX];
    size_t nonce_len;
    uint8_t digest[ATTEST_DIGEST_LEN];
    char model_id[128];
} job;

struct attestation {
    attest_source src;
    void (*on_reply)(void *, int);
    void *arg;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job **ring;
    int cap, head, n;
    int stop;
    pthread_t thread;
};

static void reply_error(attestation *w, httpd_async *a, int status, const char *code, const char *msg) {
    api_error e;
    api_error_set(&e, status, NULL, "%s", msg);
    if (code)
        snprintf(e.code, sizeof(e.code), "%s", code);
    char *s = api_error_json(&e);
    if (s)
        (void)httpd_async_reply(a, status, "application/json", s, strlen(s));
    free(s);
    if (w->on_reply)
        w->on_reply(w->arg, status);
}

/* The response document; NULL when out of memory. */
static char *response_json(const attestation *w, const job *j, const tdx_quote *q,
                           const uint8_t rd[ATTEST_REPORT_DATA_LEN]) {
    char nonce[2 * ATTEST_NONCE_MAX + 1], digest[2 * ATTEST_DIGEST_LEN + 1], rdhex[2 * ATTEST_REPORT_DATA_LEN + 1];
    char format[32];
    hex_encode(nonce, j->nonce, j->nonce_len);
    hex_encode(digest, j->digest, sizeof(j->digest));
    hex_encode(rdhex, rd, ATTEST_REPORT_DATA_LEN);
    snprintf(format, sizeof(format), "tdx_quote_v%u", q->header.version);
    char *b64 = malloc(b64_encoded_len(q->len, B64_STD) + 1);
    if (b64 == NULL)
        return NULL;
    b64_encode(b64, q->raw, q->len, B64_STD);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "object", "attestation",
                          "tee", attest_tee_name(w->src.tee), "evidence_format", format, "quote", b64,
                          "binding", ATTEST_BINDING_LABEL, "nonce", nonce, "model", j->model_id,
                          "model_digest", digest, "report_data", rdhex);
    free(b64);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

static void produce(attestation *w, job *j) {
    if (httpd_async_closed(j->a))
        return;
    uint8_t rd[ATTEST_REPORT_DATA_LEN];
    buf ev;
    buf_init(&ev, 0);
    tdx_quote *q = NULL;
    char *body = NULL;
    cai_status st = attest_binding_report_data(j->nonce, j->nonce_len, j->digest, rd);
    if (st != CAI_OK) {
        reply_error(w, j->a, 500, NULL, cai_errmsg(st));
        goto out;
    }
    st = attest_evidence(&w->src, rd, &ev);
    if (st != CAI_OK) {
        char msg[256];
        snprintf(msg, sizeof(msg), "the %s TEE gave no evidence: %s", attest_tee_name(w->src.tee),
                 cai_errmsg(st));
        log_error("attestation: %s", msg);
        reply_error(w, j->a, st == CAI_ERR_UNSUPPORTED ? 501 : 500, "tee_unavailable", msg);
        goto out;
    }
    /* Fail closed: send only a quote that parses and binds what we asked. */
    if ((st = tdx_quote_parse(ev.data, ev.len, TDX_QUOTE_ALLOW_ZERO_PAD, &q)) != CAI_OK ||
        memcmp(q->body.report_data, rd, sizeof(rd)) != 0) {
        log_error("attestation: the %s TEE returned a quote that %s", attest_tee_name(w->src.tee),
                  q ? "binds other report data" : "does not parse");
        reply_error(w, j->a, 500, "tee_unavailable", "the TEE returned unusable evidence");
        goto out;
    }
    if ((body = response_json(w, j, q, rd)) == NULL) {
        reply_error(w, j->a, 500, NULL, "out of memory");
        goto out;
    }
    (void)httpd_async_reply(j->a, 200, "application/json", body, strlen(body));
    if (w->on_reply)
        w->on_reply(w->arg, 200);
out:
    free(body);
    tdx_quote_free(q);
    buf_free(&ev);
}

static void *worker_main(void *arg) {
    attestation *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->stop && w->n == 0)
            pthread_cond_wait(&w->cv, &w->mu);
        if (w->stop)
            break;
        job *j = w->ring[w->head];
        w->head = (w->head + 1) % w->cap;
        w->n--;
        pthread_mutex_unlock(&w->mu);
        produce(w, j);
        httpd_async_release(j->a);
        free(j);
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

cai_status attestation_new(const attest_source *src, int queue, void (*on_reply)(void *, int),
                           void *arg, attestation **out) {
    *out = NULL;
    CAI_ASSERT(queue > 0);
    attestation *w = calloc(1, sizeof(*w));
    if (w == NULL || (w->ring = calloc((size_t)queue, sizeof(*w->ring))) == NULL) {
        free(w);
        return CAI_ERR_NOMEM;
    }
    w->src = *src;
    w->on_reply = on_reply;
    w->arg = arg;
    w->cap = queue;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        free(w->ring);
        free(w);
        return cai_fail(CAI_ERR_INTERNAL, "cannot start the attestation worker");
    }
    *out = w;
    return CAI_OK;
}

cai_status attestation_submit(attestation *w, httpd_async *a, const uint8_t *nonce, size_t nonce_len,
                              const uint8_t model_digest[ATTEST_DIGEST_LEN], const char *model_id) {
    CAI_ASSERT(nonce_len >= ATTEST_NONCE_MIN && nonce_len <= ATTEST_NONCE_MAX);
    job *j = calloc(1, sizeof(*j));
    if (j == NULL)
        return CAI_ERR_NOMEM;
    j->a = a;
    memcpy(j->nonce, nonce, nonce_len);
    j->nonce_len = nonce_len;
    memcpy(j->digest, model_digest, ATTEST_DIGEST_LEN);
    snprintf(j->model_id, sizeof(j->model_id), "%s", model_id);
    pthread_mutex_lock(&w->mu);
    if (w->n == w->cap || w->stop) {
        pthread_mutex_unlock(&w->mu);
        free(j);
        return cai_fail(CAI_ERR_LIMIT, "too many attestation requests are waiting; retry later");
    }
    w->ring[(w->head + w->n) % w->cap] = j;
    w->n++;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return CAI_OK;
}

void attestation_free(attestation *w) {
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    for (; w->n > 0; w->n--) {
        job *j = w->ring[w->head];
        w->head = (w->head + 1) % w->cap;
        httpd_async_release(j->a);
        free(j);
    }
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w->ring);
    free(w);
}

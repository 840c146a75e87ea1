/* audit_writer.c - releases committed to the audit log before they leave. */
#include "kbs/audit_writer.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "kbs/protocol.h"

#define AUDIT_BATCH 256

/* A release waiting for its audit record to be committed. */
typedef struct release_job {
    struct release_job *next;
    httpd_async *a;
    char *body; /* the JWE */
    char path[256], client[64], evd[65], clm[65];
} release_job;

struct kbs_audit_writer {
    kbs_store *store;
    pthread_t thread;
    int stopping;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    release_job *head, **tail;
};

/* Takes up to AUDIT_BATCH jobs, waiting for one; 0 once stopping and empty. */
static size_t take_batch(kbs_audit_writer *w, release_job **batch) {
    pthread_mutex_lock(&w->mu);
    while (w->head == NULL && !w->stopping)
        pthread_cond_wait(&w->cv, &w->mu);
    size_t n = 0;
    while (w->head && n < AUDIT_BATCH) {
        batch[n++] = w->head;
        w->head = w->head->next;
    }
    if (w->head == NULL)
        w->tail = &w->head;
    pthread_mutex_unlock(&w->mu);
    return n;
}

/* Commits the records of |n| jobs in one transaction, then answers each:
 * its JWE when committed, 500 when not. Frees the jobs. */
static void commit_batch(kbs_audit_writer *w, release_job **batch, size_t n) {
    kbs_audit_entry e[AUDIT_BATCH];
    for (size_t i = 0; i < n; i++)
        e[i] = (kbs_audit_entry){.event = "release", .resource = batch[i]->path,
                                 .client = batch[i]->client, .evidence_digest = batch[i]->evd,
                                 .claims_digest = batch[i]->clm};
    cai_status st = kbs_store_audit_many(w->store, e, n);
    if (st != CAI_OK)
        log_error("audit: %s: %zu releases withheld", cai_errmsg(st), n);
    char *err = st == CAI_OK ? NULL
                             : kbs_error_json("PluginInternalError", "the audit log cannot be written");
    for (size_t i = 0; i < n; i++) {
        release_job *j = batch[i];
        if (st == CAI_OK) {
            (void)httpd_async_reply(j->a, 200, "application/json", j->body, strlen(j->body));
            log_info("released %s to %s (evidence %.16s)", j->path, j->client, j->evd);
        } else {
            (void)httpd_async_reply(j->a, 500, "application/json", err ? err : "{}",
                                    err ? strlen(err) : 2);
        }
        httpd_async_release(j->a);
        free(j->body);
        free(j);
    }
    free(err);
}

static void *writer_main(void *arg) {
    kbs_audit_writer *w = arg;
    release_job *batch[AUDIT_BATCH];
    size_t n;
    while ((n = take_batch(w, batch)) > 0)
        commit_batch(w, batch, n);
    return NULL; /* stopping, nothing left */
}

cai_status kbs_audit_writer_new(kbs_store *store, kbs_audit_writer **out) {
    *out = NULL;
    kbs_audit_writer *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return CAI_ERR_NOMEM;
    w->store = store;
    w->tail = &w->head;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        free(w);
        return cai_fail(CAI_ERR_INTERNAL, "cannot start the audit writer");
    }
    *out = w;
    return CAI_OK;
}

cai_status kbs_audit_writer_submit(kbs_audit_writer *w, httpd_req *r, const char *path,
                                   const char *evd, const char *clm, const json_t *jwe) {
    release_job *j = calloc(1, sizeof(*j));
    if (j == NULL || (j->body = json_dumps(jwe, JSON_COMPACT)) == NULL) {
        free(j);
        return CAI_ERR_NOMEM;
    }
    snprintf(j->path, sizeof(j->path), "%s", path);
    snprintf(j->client, sizeof(j->client), "%s", httpd_client(r));
    snprintf(j->evd, sizeof(j->evd), "%s", evd ? evd : "");
    snprintf(j->clm, sizeof(j->clm), "%s", clm ? clm : "");
    cai_status st = CAI_OK;
    pthread_mutex_lock(&w->mu);
    if (w->stopping) /* the writer is gone: nothing would answer */
        st = cai_fail(CAI_ERR_INTERNAL, "the key broker is shutting down");
    else if ((j->a = httpd_async_new(r, NULL, NULL)) != NULL) {
        *w->tail = j;
        w->tail = &j->next;
        pthread_cond_signal(&w->cv);
        j = NULL;
    } /* else answered 500 already */
    pthread_mutex_unlock(&w->mu);
    if (j) {
        free(j->body);
        free(j);
    }
    return st;
}

void kbs_audit_writer_free(kbs_audit_writer *w) {
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    w->stopping = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
}

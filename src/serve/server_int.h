/* server_int.h - the server's state, shared by the files of `cai serve`
 * (internal to serve): server.c (start, boot, stop), access.c (who may call
 * and how a refusal reads), openai.c (generations), endpoints.c (the other
 * endpoints), metrics.c. */
#ifndef CAI_SERVE_SERVER_INT_H
#define CAI_SERVE_SERVER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "attest/binding.h"
#include "attest/evidence.h"
#include "net/httpd.h"
#include "llm/engine.h"
#include "llm/sched.h"
#include "ratls/server.h"
#include "serve/attestation.h"
#include "serve/metrics.h"
#include "serve/server.h"

/* The model's state, as /health reports it. */
enum { SERVER_LOADING = 0, SERVER_READY = 1, SERVER_FAILED = -1 };

struct server {
    serve_config cfg;
    httpd *h;
    llm_engine *e;
    llm_ctx *ctx;
    sched *s;
    pthread_t loader;
    int loader_started;
    atomic_int state;    /* SERVER_*; the fields below the loader sets are
                            read only once it is SERVER_READY */
    char model_id[128];
    char digest[65];     /* hex SHA-256 of the served model, when known */
    uint8_t digest_raw[ATTEST_DIGEST_LEN];
    int have_digest;
    attest_source tee;   /* valid when has_tee */
    int has_tee;
    attestation *att;
    ratls_server *ratls; /* with tls_attested */
    time_t created;
    metrics m;
    /* server_start waits until the boot has its key or failed before it */
    pthread_mutex_t boot_mu;
    pthread_cond_t boot_cv;
    int boot_phase;      /* BOOT_PHASE_* (server.c) */
    cai_status boot_st;  /* a failure before the key, for server_start */
    char boot_msg[512];  /* its cai_errmsg, from the loader thread: server_start
                          * restores it with cai_errmsg_set */
};

#endif

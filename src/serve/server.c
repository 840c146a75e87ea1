/* server.c - `cai serve`'s lifecycle: start, the loader thread, stop. The
 * endpoints are in openai.c and endpoints.c, their gate in access.c, the
 * boot in boot.c. */
#include "serve/server.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "serve/access.h"
#include "serve/boot.h"
#include "serve/endpoints.h"
#include "serve/openai.h"
#include "serve/server_int.h"

/* How far the boot got, for server_start (boot_phase). */
enum { BOOT_PHASE_KEYING, BOOT_PHASE_KEYED, BOOT_PHASE_FAILED };

static void set_boot_phase(server *sv, int phase) {
    pthread_mutex_lock(&sv->boot_mu);
    sv->boot_phase = phase;
    pthread_cond_signal(&sv->boot_cv);
    pthread_mutex_unlock(&sv->boot_mu);
}

/* boot_run's on_keyed: server_start may return, the loop may run. */
static void on_keyed(void *arg) { set_boot_phase(arg, BOOT_PHASE_KEYED); }

/* Boots the model, then makes the context, the scheduler and, with
 * attested TLS, the first identity; the server is ready when all are. A
 * failure before the key goes back to server_start; one after is logged
 * and /health says "failed". */
static void *loader_main(void *arg) {
    server *sv = arg;
    boot_config bc = {.model_path = sv->cfg.model_path, .sealed = sv->cfg.sealed_path,
                      .download_dir = sv->cfg.download_dir, .sealed_ca = sv->cfg.sealed_ca,
                      .kbs = sv->cfg.kbs, .key_file = sv->cfg.key_file,
                      .cdh_api = sv->cfg.key_from_cdh ? sv->tee.coco_api : NULL,
                      .digest_plain = sv->has_tee, .chat_template = sv->cfg.chat_template,
                      .threads = sv->cfg.threads};
    boot_model bm;
    cai_status st = boot_run(&bc, on_keyed, sv, &bm);
    if (st != CAI_OK) {
        pthread_mutex_lock(&sv->boot_mu);
        int keyed = sv->boot_phase == BOOT_PHASE_KEYED;
        pthread_mutex_unlock(&sv->boot_mu);
        if (!keyed) {
            sv->boot_st = st;
            snprintf(sv->boot_msg, sizeof(sv->boot_msg), "%s", cai_errmsg(st));
            set_boot_phase(sv, BOOT_PHASE_FAILED);
            return NULL;
        }
    } else {
        sv->e = bm.engine;
        sv->have_digest = bm.have_digest;
        memcpy(sv->digest_raw, bm.digest, sizeof(sv->digest_raw));
        memcpy(sv->digest, bm.digest_hex, sizeof(sv->digest));
        const llm_hparams *hp = llm_model_hparams(llm_engine_model(sv->e));
        int n_ctx = sv->cfg.n_ctx < hp->n_ctx_train ? sv->cfg.n_ctx : hp->n_ctx_train;
        st = llm_ctx_new(llm_engine_model(sv->e), n_ctx, sv->cfg.slots, sv->cfg.threads, &sv->ctx);
    }
    if (st == CAI_OK)
        st = sched_new(sv->e, sv->ctx, sv->cfg.slots, sv->cfg.queue, &sv->s);
    if (st != CAI_OK) {
        log_error("cannot load the model: %s", cai_errmsg(st));
        atomic_store(&sv->state, SERVER_FAILED);
        return NULL;
    }
    if (sv->ratls && (st = ratls_server_start(sv->ratls, &sv->tee, sv->digest_raw,
                                              sv->cfg.tls_refresh_s)) != CAI_OK) {
        log_error("cannot serve attested TLS: %s", cai_errmsg(st));
        atomic_store(&sv->state, SERVER_FAILED);
        return NULL;
    }
    if (sv->model_id[0] == '\0')
        snprintf(sv->model_id, sizeof(sv->model_id), "%s", llm_engine_name(sv->e));
    const llm_hparams *hp = llm_model_hparams(llm_engine_model(sv->e));
    log_info("model ready: %s (%s, %d layers), %d slots of %d tokens", sv->model_id, hp->arch_name,
             hp->n_layer, sv->cfg.slots, llm_ctx_n_ctx(sv->ctx));
    atomic_store(&sv->state, SERVER_READY);
    return NULL;
}

/* Starts the loader and waits until the boot has the key (CAI_OK) or
 * failed before it (its error, carried over from the loader thread). */
static cai_status start_loader(server *sv) {
    if (pthread_create(&sv->loader, NULL, loader_main, sv) != 0)
        return cai_fail(CAI_ERR_INTERNAL, "cannot start the loader");
    sv->loader_started = 1;
    pthread_mutex_lock(&sv->boot_mu);
    while (sv->boot_phase == BOOT_PHASE_KEYING)
        pthread_cond_wait(&sv->boot_cv, &sv->boot_mu);
    int failed = sv->boot_phase == BOOT_PHASE_FAILED;
    pthread_mutex_unlock(&sv->boot_mu);
    if (!failed)
        return CAI_OK;
    cai_errmsg_set(sv->boot_st, sv->boot_msg);
    return sv->boot_st;
}

/* The defaults of |cfg|'s zero fields, and the model's id. */
static void apply_defaults(server *sv, const serve_config *cfg) {
    sv->cfg = *cfg;
    if (!sv->cfg.slots)
        sv->cfg.slots = 4;
    if (!sv->cfg.n_ctx)
        sv->cfg.n_ctx = 4096;
    if (!sv->cfg.max_body)
        sv->cfg.max_body = 4u << 20;
    if (cfg->tls_attested && !sv->cfg.tls_refresh_s)
        sv->cfg.tls_refresh_s = RATLS_REFRESH_DEFAULT;
    if (cfg->model_id)
        snprintf(sv->model_id, sizeof(sv->model_id), "%s", cfg->model_id);
    else if (cfg->model_path || cfg->sealed_path)
        boot_model_id(cfg->model_path ? cfg->model_path : cfg->sealed_path, sv->model_id,
                      sizeof(sv->model_id));
}

cai_status server_start(const serve_config *cfg, server **out) {
    *out = NULL;
    server *sv = calloc(1, sizeof(*sv));
    if (sv == NULL)
        return CAI_ERR_NOMEM;
    pthread_mutex_init(&sv->boot_mu, NULL);
    pthread_cond_init(&sv->boot_cv, NULL);
    apply_defaults(sv, cfg);
    sv->created = time(NULL);
    cai_status st = CAI_OK;
    httpd_config hc = {.host = cfg->host, .port = cfg->port, .max_body = sv->cfg.max_body,
                       .max_connections = 512, .timeout_s = 600,
                       .tls_cert_file = cfg->tls_cert_file, .tls_key_file = cfg->tls_key_file};
    if (cfg->tls_attested && cfg->tee == NULL) {
        st = cai_fail(CAI_ERR_INVALID_ARG, "attested TLS needs a TEE to attest (--tee)");
        goto fail;
    }
    if (cfg->key_from_cdh && (cfg->tee == NULL || cfg->tee->tee != ATTEST_TEE_COCO)) {
        st = cai_fail(CAI_ERR_INVALID_ARG, "the key from the confidential data hub needs "
                      "--tee coco: the CoCo guest components attest this TD for it");
        goto fail;
    }
    if (cfg->tls_attested) {
        if ((st = ratls_server_new(&sv->ratls)) != CAI_OK)
            goto fail;
        hc.ssl_ctx = ratls_server_ssl_ctx(sv->ratls);
    }
    if ((st = httpd_new(&hc, &sv->h)) != CAI_OK)
        goto fail;
    if (cfg->tee) {
        sv->tee = *cfg->tee;
        sv->has_tee = 1;
        if ((st = attestation_new(&sv->tee, 16, endpoint_attestation_reply, sv, &sv->att)) != CAI_OK)
            goto fail;
    }
    httpd_set_error_body(sv->h, access_error_body);
    httpd_route(sv->h, "/v1/chat/completions", openai_chat, sv);
    httpd_route(sv->h, "/v1/completions", openai_completions, sv);
    httpd_route(sv->h, "/v1/models", endpoint_models, sv);
    httpd_route(sv->h, "/v1/models/", endpoint_models, sv);
    httpd_route(sv->h, "/v1/attestation", endpoint_attestation, sv);
    httpd_route(sv->h, "/health", endpoint_health, sv);
    httpd_route(sv->h, "/metrics", endpoint_metrics, sv);
    httpd_route(sv->h, "/", endpoint_root, sv);
    if ((st = start_loader(sv)) != CAI_OK)
        goto fail;
    *out = sv;
    return CAI_OK;
fail:
    server_free(sv);
    return st;
}

int server_port(const server *s) { return httpd_port(s->h); }
cai_status server_run(server *s) { return httpd_run(s->h); }
void server_stop(server *s) { httpd_stop(s->h); }

void server_free(server *sv) {
    if (sv == NULL)
        return;
    if (sv->loader_started)
        pthread_join(sv->loader, NULL);
    sched_free(sv->s); /* finishes running requests as cancelled */
    attestation_free(sv->att); /* drops waiting requests */
    httpd_free(sv->h);
    ratls_server_free(sv->ratls); /* after httpd: its SSL_CTX served the connections */
    llm_ctx_free(sv->ctx);
    llm_engine_free(sv->e);
    pthread_mutex_destroy(&sv->boot_mu);
    pthread_cond_destroy(&sv->boot_cv);
    free(sv);
}

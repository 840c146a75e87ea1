/* server.c - `cai serve`'s lifecycle: start, the loader thread, stop. The
 * endpoints are in openai.c and endpoints.c, their gate in access.c. */
#include "serve/server.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/codec.h"
#include "common/log.h"
#include "common/pool.h"
#include "common/secure.h"
#include "seal/seal.h"
#include "serve/access.h"
#include "serve/endpoints.h"
#include "serve/openai.h"
#include "serve/server_int.h"

/* Decrypts the sealed model into a sealed memfd: the plaintext never
 * touches a disk, and the key is wiped as soon as it has been used. */
static cai_status unseal(server *sv) {
    int fd = open(sv->cfg.sealed_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        secure_wipe(sv->cfg.key, sizeof(sv->cfg.key));
        return cai_fail(CAI_ERR_IO, "cannot open %s", sv->cfg.sealed_path);
    }
    uint8_t digest[SEAL_DIGEST_LEN];
    cai_status st = seal_unseal_memfd(fd, sv->cfg.key, sv->cfg.threads ? sv->cfg.threads : pool_cpu_count(),
                                      SEAL_VERIFY_DIGEST, &sv->cfg.model_fd, digest);
    secure_wipe(sv->cfg.key, sizeof(sv->cfg.key));
    close(fd);
    if (st == CAI_OK) {
        memcpy(sv->digest_raw, digest, sizeof(sv->digest_raw));
        sv->have_digest = 1;
        hex_encode(sv->digest, digest, sizeof(digest));
        log_info("model unsealed into memory, sha256:%s", sv->digest);
    }
    return st;
}

/* Opens the model file once and, for attestation, hashes the bytes of that
 * open file before the engine maps the same fd. (A host that can write the
 * file can still change it afterwards: -m is for development; the sealed
 * boot serves a sealed memfd.) */
static cai_status open_plain(server *sv) {
    int fd = sv->cfg.model_fd;
    if (sv->cfg.model_path && (fd = open(sv->cfg.model_path, O_RDONLY | O_CLOEXEC)) < 0)
        return cai_fail(CAI_ERR_IO, "cannot open %s", sv->cfg.model_path);
    cai_status st = CAI_OK;
    if (sv->has_tee && !sv->have_digest) {
        struct stat sb;
        if (fstat(fd, &sb) != 0 || sb.st_size < 0)
            st = cai_fail(CAI_ERR_IO, "cannot size the model");
        else if ((st = seal_digest_fd(fd, (uint64_t)sb.st_size, sv->digest_raw)) == CAI_OK) {
            hex_encode(sv->digest, sv->digest_raw, sizeof(sv->digest_raw));
            sv->have_digest = 1;
            log_info("model sha256:%s (bound into /v1/attestation)", sv->digest);
        }
    }
    if (st == CAI_OK)
        st = llm_engine_open(NULL, fd, sv->cfg.chat_template, &sv->e);
    if (sv->cfg.model_path)
        close(fd);
    return st;
}

static void *loader_main(void *arg) {
    server *sv = arg;
    cai_status st = sv->cfg.sealed_path ? unseal(sv) : CAI_OK;
    if (st == CAI_OK)
        st = open_plain(sv);
    if (st == CAI_OK) {
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
    if (st == CAI_OK && sv->ratls)
        st = ratls_server_start(sv->ratls, &sv->tee, sv->digest_raw, sv->cfg.tls_refresh_s);
    if (st != CAI_OK) {
        log_error("cannot serve attested TLS: %s", cai_errmsg(st));
        atomic_store(&sv->state, SERVER_FAILED);
        return NULL;
    }
    if (sv->model_id[0] == '\0')
        snprintf(sv->model_id, sizeof(sv->model_id), "%s", llm_engine_name(sv->e));
    log_info("model ready: %s (%s, %d layers), %d slots of %d tokens", sv->model_id,
             llm_model_hparams(llm_engine_model(sv->e))->arch_name, llm_model_hparams(llm_engine_model(sv->e))->n_layer,
             sv->cfg.slots, llm_ctx_n_ctx(sv->ctx));
    atomic_store(&sv->state, SERVER_READY);
    return NULL;
}

cai_status server_start(const serve_config *cfg, server **out) {
    *out = NULL;
    server *sv = calloc(1, sizeof(*sv));
    if (sv == NULL)
        return CAI_ERR_NOMEM;
    sv->cfg = *cfg;
    if (cfg->sealed_path)
        sv->cfg.model_fd = -1;
    if (!sv->cfg.slots)
        sv->cfg.slots = 4;
    if (!sv->cfg.n_ctx)
        sv->cfg.n_ctx = 4096;
    if (!sv->cfg.max_body)
        sv->cfg.max_body = 4u << 20;
    sv->created = time(NULL);
    if (cfg->model_id) {
        snprintf(sv->model_id, sizeof(sv->model_id), "%s", cfg->model_id);
    } else if (cfg->model_path || cfg->sealed_path) {
        const char *p = cfg->model_path ? cfg->model_path : cfg->sealed_path;
        const char *base = strrchr(p, '/');
        snprintf(sv->model_id, sizeof(sv->model_id), "%s", base ? base + 1 : p);
        char *dot = strchr(sv->model_id, '.');
        if (dot)
            *dot = '\0';
    }
    httpd_config hc = {.host = cfg->host, .port = cfg->port, .max_body = sv->cfg.max_body,
                       .max_connections = 512, .timeout_s = 600,
                       .tls_cert_file = cfg->tls_cert_file, .tls_key_file = cfg->tls_key_file};
    cai_status st = CAI_OK;
    if (cfg->tls_attested) {
        if (cfg->tee == NULL) {
            free(sv);
            return cai_fail(CAI_ERR_INVALID_ARG, "attested TLS needs a TEE to attest (--tee)");
        }
        if (!sv->cfg.tls_refresh_s)
            sv->cfg.tls_refresh_s = RATLS_REFRESH_DEFAULT;
        if ((st = ratls_server_new(&sv->ratls)) != CAI_OK) {
            free(sv);
            return st;
        }
        hc.ssl_ctx = ratls_server_ssl_ctx(sv->ratls);
    }
    if ((st = httpd_new(&hc, &sv->h)) != CAI_OK) {
        ratls_server_free(sv->ratls);
        free(sv);
        return st;
    }
    if (cfg->tee) {
        sv->tee = *cfg->tee;
        sv->has_tee = 1;
        if ((st = attestation_new(&sv->tee, 16, endpoint_attestation_reply, sv, &sv->att)) != CAI_OK) {
            httpd_free(sv->h);
            ratls_server_free(sv->ratls);
            free(sv);
            return st;
        }
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
    if (pthread_create(&sv->loader, NULL, loader_main, sv) != 0) {
        server_free(sv);
        return cai_fail(CAI_ERR_INTERNAL, "cannot start the loader");
    }
    sv->loader_started = 1;
    *out = sv;
    return CAI_OK;
}

int server_port(const server *s) { return httpd_port(s->h); }
cai_status server_run(server *s) { return httpd_run(s->h); }
void server_stop(server *s) { httpd_stop(s->h); }

void server_free(server *sv) {
    if (sv == NULL)
        return;
    if (sv->loader_started)
        pthread_join(sv->loader, NULL);
    secure_wipe(sv->cfg.key, sizeof(sv->cfg.key));
    sched_free(sv->s); /* finishes running requests as cancelled */
    attestation_free(sv->att); /* drops waiting requests */
    httpd_free(sv->h);
    ratls_server_free(sv->ratls); /* after httpd: its SSL_CTX served the connections */
    llm_ctx_free(sv->ctx);
    llm_engine_free(sv->e);
    if (sv->cfg.sealed_path && sv->cfg.model_fd >= 0)
        close(sv->cfg.model_fd);
    free(sv);
}

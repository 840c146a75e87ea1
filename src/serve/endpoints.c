/* endpoints.c - /v1/models, /health, /v1/attestation, /metrics, the web chat. */
#include "serve/endpoints.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "serve/access.h"
#include "serve/api.h"
#include "serve/server_int.h"
#include "serve/web.h"

void endpoint_models(httpd_req *r, void *arg) {
    server *sv = arg;
    if (access_is_preflight(r))
        return access_preflight(sv, r);
    access_cors(sv, r);
    if (!access_authorized(sv, r, METRICS_EP_MODELS))
        return;
    json_t *m = json_pack("{s:s, s:s, s:I, s:s}", "id", sv->model_id, "object", "model", "created",
                          (json_int_t)sv->created, "owned_by", "cai");
    const char *path = httpd_path(r);
    if (strncmp(path, "/v1/models/", 11) == 0) {
        /* A name the server answers to (its id or an alias): the model. */
        api_error e;
        if (api_check_model(path + 11, sv->model_id, sv->cfg.aliases,
                            (size_t)sv->cfg.n_aliases, &e) != CAI_OK) {
            json_decref(m);
            return access_reply_api_error(sv, r, METRICS_EP_MODELS, &e);
        }
        metrics_count(&sv->m, METRICS_EP_MODELS, 200);
        return httpd_reply_json(r, 200, m);
    }
    metrics_count(&sv->m, METRICS_EP_MODELS, 200);
    httpd_reply_json(r, 200, json_pack("{s:s, s:[o]}", "object", "list", "data", m));
}

void endpoint_health(httpd_req *r, void *arg) {
    server *sv = arg;
    int st = atomic_load(&sv->state);
    metrics_count(&sv->m, METRICS_EP_HEALTH, st == SERVER_READY ? 200 : 503);
    httpd_reply_json(r, st == SERVER_READY ? 200 : 503,
                     json_pack("{s:s}", "status", st == SERVER_READY     ? "ok"
                                                  : st == SERVER_LOADING ? "loading"
                                                                         : "failed"));
}

void endpoint_attestation_reply(void *arg, int status) {
    server *sv = arg;
    metrics_count(&sv->m, METRICS_EP_ATTESTATION, status);
}

/* GET /v1/attestation?nonce=HEX: evidence binding the nonce and the model
 * digest, produced by the attestation worker. Open without the API key: a
 * client checks the server before it sends anything, the key included. */
void endpoint_attestation(httpd_req *r, void *arg) {
    server *sv = arg;
    if (access_is_preflight(r))
        return access_preflight(sv, r);
    access_cors(sv, r);
    if (strcmp(httpd_method(r), "GET") != 0)
        return access_reply_error(sv, r, METRICS_EP_ATTESTATION, 405, NULL, "use GET");
    if (!sv->has_tee) {
        api_error e;
        api_error_set(&e, 501, NULL, "attestation is not available: this server was started "
                      "without a TEE (cai serve --tee tdx, or --tee sim for development)");
        snprintf(e.code, sizeof(e.code), "no_tee_configured");
        return access_reply_api_error(sv, r, METRICS_EP_ATTESTATION, &e);
    }
    const char *hex = httpd_query(r, "nonce");
    uint8_t nonce[ATTEST_NONCE_MAX];
    size_t n = 0;
    cai_status st = hex ? attest_nonce_parse(hex, nonce, &n) : CAI_ERR_INVALID_ARG;
    if (st != CAI_OK) {
        api_error e;
        api_error_set(&e, 400, "nonce", "%s", hex ? cai_errmsg(st) :
                      "give a fresh random nonce: /v1/attestation?nonce=HEX (16 to 64 bytes)");
        snprintf(e.code, sizeof(e.code), "invalid_nonce");
        return access_reply_api_error(sv, r, METRICS_EP_ATTESTATION, &e);
    }
    if (!access_ready(sv, r, METRICS_EP_ATTESTATION))
        return;
    CAI_ASSERT(sv->have_digest); /* the loader sets it before ready */
    httpd_async *a = httpd_async_new(r, NULL, NULL);
    if (a == NULL) /* answered 500 already */
        return metrics_count(&sv->m, METRICS_EP_ATTESTATION, 500);
    if ((st = attestation_submit(sv->att, a, nonce, n, sv->digest_raw, sv->model_id)) != CAI_OK) {
        int status = st == CAI_ERR_LIMIT ? 429 : 500;
        char *s = access_error_body(status, cai_errmsg(st));
        if (s)
            (void)httpd_async_reply(a, status, "application/json", s, strlen(s));
        free(s);
        metrics_count(&sv->m, METRICS_EP_ATTESTATION, status);
        httpd_async_release(a);
    }
}

void endpoint_metrics(httpd_req *r, void *arg) {
    server *sv = arg;
    buf b;
    buf_init(&b, 0);
    sched_stats ss;
    if (sv->s)
        sched_get_stats(sv->s, &ss);
    if (metrics_render(&sv->m, sv->s ? &ss : NULL, &b) == CAI_OK)
        httpd_reply(r, 200, "text/plain; version=0.0.4", b.data, b.len);
    else
        httpd_reply(r, 500, "text/plain", "out of memory\n", 14);
    buf_free(&b);
}

static void endpoint_static(httpd_req *r, void *arg) {
    server *sv = arg;
    const char *path = httpd_path(r);
    if (strcmp(path, "/") == 0)
        path = "/index.html";
    for (size_t i = 0; i < web_assets_count; i++) {
        const web_asset *a = &web_assets[i];
        if (strcmp(a->path, path) == 0) {
            httpd_add_header(r, "Content-Security-Policy",
                             "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:");
            httpd_add_header(r, "X-Content-Type-Options", "nosniff");
            httpd_add_header(r, "Referrer-Policy", "no-referrer");
            httpd_reply(r, 200, a->type, a->data, a->len);
            return;
        }
    }
    access_reply_error(sv, r, METRICS_EP_OTHER, 404, NULL, "not found");
}

/* Everything under / that is not an API path: the web page, and preflight. */
void endpoint_root(httpd_req *r, void *arg) {
    server *sv = arg;
    if (access_is_preflight(r))
        return access_preflight(sv, r);
    endpoint_static(r, arg);
}

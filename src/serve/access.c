/* access.c - CORS, the API key, readiness and error replies. */
#include "serve/access.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/secure.h"

char *access_error_body(int status, const char *message) {
    api_error e;
    api_error_set(&e, status, NULL, "%s", message);
    return api_error_json(&e);
}

void access_reply_api_error(server *sv, httpd_req *r, metrics_endpoint ep, const api_error *e) {
    char *s = api_error_json(e);
    metrics_count(&sv->m, ep, e->status);
    if (s) {
        httpd_reply(r, e->status, "application/json", s, strlen(s));
        free(s);
    } else {
        httpd_reply(r, 500, "text/plain", "out of memory\n", 14);
    }
}

void access_reply_error(server *sv, httpd_req *r, metrics_endpoint ep, int status,
                        const char *param, const char *msg) {
    api_error e;
    api_error_set(&e, status, param, "%s", msg);
    access_reply_api_error(sv, r, ep, &e);
}

void access_cors(server *sv, httpd_req *r) {
    const char *origin = httpd_header(r, "Origin");
    const char *allow = sv->cfg.cors_origin;
    if (!allow || !origin)
        return;
    if (strcmp(allow, "*") == 0 || strcmp(allow, origin) == 0) {
        httpd_add_header(r, "Access-Control-Allow-Origin", strcmp(allow, "*") == 0 ? "*" : origin);
        httpd_add_header(r, "Vary", "Origin");
    }
}

void access_preflight(server *sv, httpd_req *r) {
    access_cors(sv, r);
    httpd_add_header(r, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    httpd_add_header(r, "Access-Control-Allow-Headers", "Authorization, Content-Type");
    httpd_add_header(r, "Access-Control-Max-Age", "600");
    httpd_reply(r, 204, NULL, NULL, 0);
}

int access_is_preflight(const httpd_req *r) { return strcmp(httpd_method(r), "OPTIONS") == 0; }

int access_authorized(server *sv, httpd_req *r, metrics_endpoint ep) {
    if (!sv->cfg.api_key)
        return 1;
    const char *h = httpd_header(r, "Authorization");
    size_t kl = strlen(sv->cfg.api_key);
    if (h && strncmp(h, "Bearer ", 7) == 0 && strlen(h + 7) == kl &&
        secure_memeq(h + 7, sv->cfg.api_key, kl))
        return 1;
    api_error e;
    api_error_set(&e, 401, NULL, "Incorrect or missing API key (Authorization: Bearer ...)");
    snprintf(e.code, sizeof(e.code), "invalid_api_key");
    access_reply_api_error(sv, r, ep, &e);
    return 0;
}

int access_ready(server *sv, httpd_req *r, metrics_endpoint ep) {
    int st = atomic_load(&sv->state);
    if (st == SERVER_READY)
        return 1;
    access_reply_error(sv, r, ep, 503, NULL,
                       st == SERVER_LOADING ? "the model is loading" : "the model failed to load");
    return 0;
}

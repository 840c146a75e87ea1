/* agent.c - RCAR client: attest to a key broker, fetch and decrypt a secret. */
#include "agent/agent.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net/httpc.h"
#include "common/log.h"
#include "kbs/protocol.h"

/* Turns a broker's answer into a status: refusals are final, overload and
 * server errors are CAI_ERR_IO (worth another attempt). So is an attestation
 * refused because its nonce was used: when a connection dies before the
 * answer, libcurl sends the request again, and the broker has taken the nonce
 * with the first send. A new handshake (a new nonce) is the way on; nothing
 * is released without one. */
static cai_status judge(const char *step, long status, const buf *resp) {
    if (status == 200)
        return CAI_OK;
    json_t *e = NULL;
    const char *type = "", *detail = "";
    if (kbs_json_parse(resp->data, resp->len, &e) == CAI_OK) {
        type = json_string_value(json_object_get(e, "type"));
        detail = json_string_value(json_object_get(e, "detail"));
        const char *slash = type ? strrchr(type, '/') : NULL;
        type = slash ? slash + 1 : type ? type : "";
        detail = detail ? detail : "";
    }
    int nonce_used = status == 401 && strcmp(step, "attest") == 0 &&
                     strstr(detail, "nonce was already used") != NULL;
    cai_status st = status == 404                   ? CAI_ERR_NOT_FOUND
                    : nonce_used                     ? CAI_ERR_IO
                    : status == 401 || status == 403 ? CAI_ERR_AUTH
                    : status == 400 || status == 413 ? CAI_ERR_INVALID_ARG
                                                     : CAI_ERR_IO;
    st = cai_fail(st, "key broker %s: HTTP %ld %s: %.400s", step, status, type, detail);
    json_decref(e);
    return st;
}

static cai_status post_json(httpc *c, const char *url, const char *step, char *body, buf *resp) {
    long status = 0;
    if (body == NULL)
        return CAI_ERR_NOMEM;
    httpc_request rq = {.method = "POST", .url = url, .body = body, .body_len = strlen(body)};
    cai_status st = httpc_do(c, &rq, &status, resp);
    free(body);
    return st == CAI_OK ? judge(step, status, resp) : st;
}

struct agent_session {
    httpc *c;
    jose_key *key;
    char base[1024];
};

void agent_session_close(agent_session *s) {
    if (s == NULL)
        return;
    httpc_free(s->c);
    jose_key_free(s->key);
    free(s);
}

cai_status agent_session_open(const agent_config *cfg, agent_session **out) {
    *out = NULL;
    const char *alg = cfg->key_type == JOSE_KEY_RSA ? JOSE_ALG_RSA_OAEP_256
                                                    : JOSE_ALG_ECDH_ES_A256KW;
    size_t base = strlen(cfg->kbs_url);
    while (base && cfg->kbs_url[base - 1] == '/')
        base--;
    if (base >= sizeof(((agent_session *)0)->base))
        return cai_fail(CAI_ERR_INVALID_ARG, "the key broker URL is too long");
    agent_session *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return CAI_ERR_NOMEM;
    memcpy(s->base, cfg->kbs_url, base);
    char url[1100];
    httpc_opts o = {.ca_file = cfg->ca_file, .tls_setup = cfg->tls_setup,
                    .tls_setup_arg = cfg->tls_setup_arg};
    json_t *jwk = NULL, *pub = NULL, *ch = NULL;
    buf resp, quote;
    buf_init(&resp, 0);
    buf_init(&quote, 0);
    uint8_t rd[64];
    const char *nonce;
    kbs_hash hash;
    cai_status st;
    if ((st = httpc_new(&o, &s->c)) != CAI_OK ||
        (st = jose_key_generate(cfg->key_type ? cfg->key_type : JOSE_KEY_EC_P256, &s->key)) !=
            CAI_OK ||
        (st = jose_key_to_jwk(s->key, alg, &jwk)) != CAI_OK ||
        (st = kbs_tee_pubkey_normalize(jwk, &pub)) != CAI_OK)
        goto out;
    snprintf(url, sizeof(url), "%s%s/auth", s->base, KBS_PREFIX);
    if ((st = post_json(s->c, url, "auth", kbs_request_json("tdx"), &resp)) != CAI_OK ||
        (st = kbs_json_parse(resp.data, resp.len, &ch)) != CAI_OK ||
        (st = kbs_challenge_parse(ch, &nonce, &hash)) != CAI_OK)
        goto out;
    if ((st = kbs_runtime_data_digest(nonce, pub, "", hash, rd)) != CAI_OK ||
        (st = attest_evidence(&cfg->source, rd, &quote)) != CAI_OK)
        goto out;
    snprintf(url, sizeof(url), "%s%s/attest", s->base, KBS_PREFIX);
    buf_free(&resp);
    if ((st = post_json(s->c, url, "attest",
                        kbs_attestation_json(nonce, pub, quote.data, quote.len), &resp)) != CAI_OK)
        goto out;
    log_debug("attested to %s", s->base);
out:
    json_decref(ch);
    json_decref(pub);
    json_decref(jwk);
    buf_free(&resp);
    buf_free(&quote);
    if (st != CAI_OK)
        agent_session_close(s);
    else
        *out = s;
    return st;
}

cai_status agent_session_get(agent_session *s, const char *path, buf *out) {
    buf_init(out, 0);
    char url[1400];
    snprintf(url, sizeof(url), "%s%s/resource/%s", s->base, KBS_PREFIX, path);
    httpc_request rq = {.method = "GET", .url = url};
    long status = 0;
    json_t *jwe = NULL;
    buf resp;
    cai_status st = httpc_do(s->c, &rq, &status, &resp);
    if (st == CAI_OK && (st = judge("resource", status, &resp)) == CAI_OK &&
        (st = kbs_json_parse(resp.data, resp.len, &jwe)) == CAI_OK &&
        (st = jose_jwe_decrypt(s->key, jwe, out)) != CAI_OK)
        st = cai_fail(st, "the resource does not decrypt: %s", cai_errmsg(st));
    json_decref(jwe);
    buf_free(&resp);
    return st;
}

/* One whole attempt: RCAR, then the resource. */
static cai_status attempt(const agent_config *cfg, const char *path, buf *out) {
    agent_session *s = NULL;
    cai_status st = agent_session_open(cfg, &s);
    if (st == CAI_OK)
        st = agent_session_get(s, path, out);
    else
        buf_init(out, 0);
    agent_session_close(s);
    return st;
}

cai_status agent_get_resource(const agent_config *cfg, const char *uri, buf *out) {
    char path[300];
    cai_status st = kbs_resource_uri_parse(uri, path, sizeof(path));
    if (st != CAI_OK) {
        buf_init(out, 0);
        return st;
    }
    int attempts = cfg->attempts > 0 ? cfg->attempts : 5;
    double delay = cfg->backoff_s > 0 ? cfg->backoff_s : 0.5;
    for (int i = 1;; i++) {
        st = attempt(cfg, path, out);
        if (st != CAI_ERR_IO || i >= attempts)
            return st;
        log_warn("key broker: %s; retrying in %.1f s (%d/%d)", cai_errmsg(st), delay, i,
                 attempts);
        struct timespec ts = {(time_t)delay, (long)((delay - (double)(time_t)delay) * 1e9)};
        nanosleep(&ts, NULL);
        delay *= 2;
    }
}

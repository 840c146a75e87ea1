/* agent.c - RCAR client: attest to a key broker, fetch and decrypt a secret. */
#include "agent/agent.h"

#include <string.h>
#include <time.h>

#include "common/httpc.h"
#include "common/log.h"
#include "kbs/protocol.h"

/* Turns a broker's answer into a status: refusals are final, overload and
 * server errors are CAI_ERR_IO (worth another attempt). */
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
    cai_status st = status == 404                   ? CAI_ERR_NOT_FOUND
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

/* One whole attempt: RCAR, then the resource. */
static cai_status attempt(const agent_config *cfg, const char *path, buf *out) {
    const char *alg = cfg->key_type == JOSE_KEY_RSA ? JOSE_ALG_RSA_OAEP_256
                                                    : JOSE_ALG_ECDH_ES_A256KW;
    char url[2048];
    size_t base = strlen(cfg->kbs_url);
    while (base && cfg->kbs_url[base - 1] == '/')
        base--;
    httpc *c = NULL;
    httpc_opts o = {.ca_file = cfg->ca_file};
    jose_key *key = NULL;
    json_t *jwk = NULL, *pub = NULL, *ch = NULL, *jwe = NULL;
    buf resp, quote;
    buf_init(&resp, 0);
    buf_init(&quote, 0);
    uint8_t rd[64];
    const char *nonce;
    kbs_hash hash;
    long status = 0;
    cai_status st;

    buf_init(out, 0);
    if ((st = httpc_new(&o, &c)) != CAI_OK ||
        (st = jose_key_generate(cfg->key_type ? cfg->key_type : JOSE_KEY_EC_P256, &key)) !=
            CAI_OK ||
        (st = jose_key_to_jwk(key, alg, &jwk)) != CAI_OK ||
        (st = kbs_tee_pubkey_normalize(jwk, &pub)) != CAI_OK)
        goto out;

    snprintf(url, sizeof(url), "%.*s%s/auth", (int)base, cfg->kbs_url, KBS_PREFIX);
    if ((st = post_json(c, url, "auth", kbs_request_json("tdx"), &resp)) != CAI_OK ||
        (st = kbs_json_parse(resp.data, resp.len, &ch)) != CAI_OK ||
        (st = kbs_challenge_parse(ch, &nonce, &hash)) != CAI_OK)
        goto out;
    if ((st = kbs_runtime_data_digest(nonce, pub, "", hash, rd)) != CAI_OK ||
        (st = attest_evidence(&cfg->source, rd, &quote)) != CAI_OK)
        goto out;
    snprintf(url, sizeof(url), "%.*s%s/attest", (int)base, cfg->kbs_url, KBS_PREFIX);
    buf_free(&resp);
    if ((st = post_json(c, url, "attest",
                        kbs_attestation_json(nonce, pub, quote.data, quote.len), &resp)) != CAI_OK)
        goto out;
    log_debug("attested to %s", cfg->kbs_url);

    snprintf(url, sizeof(url), "%.*s%s/resource/%s", (int)base, cfg->kbs_url, KBS_PREFIX, path);
    buf_free(&resp);
    httpc_request rq = {.method = "GET", .url = url};
    if ((st = httpc_do(c, &rq, &status, &resp)) != CAI_OK ||
        (st = judge("resource", status, &resp)) != CAI_OK ||
        (st = kbs_json_parse(resp.data, resp.len, &jwe)) != CAI_OK)
        goto out;
    if ((st = jose_jwe_decrypt(key, jwe, out)) != CAI_OK)
        st = cai_fail(st, "the resource does not decrypt: %s", cai_errmsg(st));
out:
    json_decref(jwe);
    json_decref(ch);
    json_decref(pub);
    json_decref(jwk);
    jose_key_free(key);
    httpc_free(c);
    buf_free(&resp);
    buf_free(&quote);
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

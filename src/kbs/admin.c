/* admin.c - admin tokens and requests to the key broker's admin API. */
#include "kbs/admin.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/codec.h"
#include "common/file.h"
#include "net/httpc.h"
#include "common/secure.h"
#include "kbs/protocol.h"

cai_status kbs_admin_key_load(const char *path, jose_key **out) {
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return cai_fail(errno == ENOENT ? CAI_ERR_NOT_FOUND : CAI_ERR_IO,
                        "cannot read the admin key %s: %s", path, strerror(errno));
    if (sb.st_mode & 077)
        return cai_fail(CAI_ERR_INVALID_ARG, "the admin key %s is accessible by other users "
                        "(mode %03o); run: chmod 600 %s", path, (unsigned)(sb.st_mode & 0777), path);
    buf b;
    cai_status st = file_read_all(path, 64 * 1024, &b);
    if (st == CAI_OK)
        st = jose_key_from_pem((const char *)b.data, b.len, out);
    buf_free(&b);
    if (st == CAI_OK && jose_key_type_of(*out) != JOSE_KEY_ED25519) {
        jose_key_free(*out);
        *out = NULL;
        st = cai_fail(CAI_ERR_INVALID_ARG, "the admin key %s is not an Ed25519 key", path);
    }
    return st;
}

cai_status kbs_admin_keygen(const char *prefix) {
    char kp[4096], pp[4096];
    snprintf(kp, sizeof(kp), "%s.key", prefix);
    snprintf(pp, sizeof(pp), "%s.pub", prefix);
    jose_key *k = NULL;
    buf priv, pub;
    buf_init(&priv, 0);
    buf_init(&pub, 0);
    cai_status st = jose_key_generate(JOSE_KEY_ED25519, &k);
    if (st == CAI_OK && (st = jose_key_to_pem(k, 1, &priv)) == CAI_OK &&
        (st = jose_key_to_pem(k, 0, &pub)) == CAI_OK &&
        (st = file_write_new(kp, priv.data, priv.len, 0600)) == CAI_OK)
        st = file_write_new(pp, pub.data, pub.len, 0644);
    jose_key_free(k);
    buf_free(&priv);
    buf_free(&pub);
    return st;
}

cai_status kbs_admin_token(const jose_key *key, time_t now, long ttl, char **out) {
    uint8_t r[16];
    char jti[33];
    cai_status st = secure_random(r, sizeof(r));
    if (st != CAI_OK)
        return st;
    hex_encode(jti, r, sizeof(r));
    /* "role": Trustee's admin API requires one (kbs/src/admin/authentication/
     * bearer_jwt.rs) and grants endpoints by it; cai kbs ignores it. */
    json_t *c = json_pack("{s:I, s:I, s:I, s:s, s:s}", "iat", (json_int_t)now, "nbf",
                          (json_int_t)now, "exp", (json_int_t)(now + ttl), "jti", jti, "role",
                          KBS_ADMIN_ROLE);
    if (c == NULL)
        return CAI_ERR_NOMEM;
    st = jose_jws_sign(key, c, NULL, out);
    json_decref(c);
    return st;
}

static cai_status admin_request(const kbs_admin *a, const char *method, const char *what,
                                const void *body, size_t len, const char *content_type,
                                const char *header, buf *resp) {
    buf_init(resp, 0);
    char url[2048], *token = NULL;
    size_t base = strlen(a->url);
    while (base && a->url[base - 1] == '/')
        base--;
    snprintf(url, sizeof(url), "%.*s%s/%s", (int)base, a->url, KBS_PREFIX, what);
    httpc *c = NULL;
    httpc_opts o = {.ca_file = a->ca_file};
    long status = 0;
    cai_status st = kbs_admin_token(a->key, time(NULL), KBS_ADMIN_TOKEN_TTL, &token);
    if (st == CAI_OK)
        st = httpc_new(&o, &c);
    httpc_request rq = {.method = method, .url = url, .bearer = token, .body = body,
                        .body_len = len, .content_type = content_type, .header = header};
    if (st == CAI_OK)
        st = httpc_do(c, &rq, &status, resp);
    if (st == CAI_OK && (status < 200 || status > 299)) {
        json_t *e = NULL;
        const char *detail = NULL;
        if (kbs_json_parse(resp->data, resp->len, &e) == CAI_OK)
            detail = json_string_value(json_object_get(e, "detail"));
        st = cai_fail(status == 404 ? CAI_ERR_NOT_FOUND
                      : status == 409 ? CAI_ERR_EXISTS
                      : status == 401 || status == 403 ? CAI_ERR_AUTH : CAI_ERR_IO,
                      "key broker: %s %s: HTTP %ld: %.300s", method, what, status,
                      detail ? detail : (const char *)resp->data);
        json_decref(e);
    }
    httpc_free(c);
    free(token);
    return st;
}

cai_status kbs_admin_call(const kbs_admin *a, const char *method, const char *what,
                          const void *body, size_t len, const char *content_type, buf *resp) {
    return admin_request(a, method, what, body, len, content_type, NULL, resp);
}

cai_status kbs_admin_create(const kbs_admin *a, const char *path, const void *body,
                            size_t len) {
    char what[320];
    buf resp;
    if ((size_t)snprintf(what, sizeof(what), "resource/%s", path) >= sizeof(what))
        return cai_fail(CAI_ERR_INVALID_ARG, "resource path too long");
    cai_status st = admin_request(a, "POST", what, body, len, "application/octet-stream",
                                  "If-None-Match: *", &resp);
    buf_free(&resp);
    return st;
}

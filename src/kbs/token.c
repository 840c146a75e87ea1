/* token.c - the key broker's EAR-shaped attestation token (ES256 JWT). */
#include "kbs/token.h"

#include <string.h>

#include "common/codec.h"
#include "common/secure.h"

#define EAR_PROFILE "tag:github.com,2023:veraison/ear"
#define ANNOTATED "ear.veraison.annotated-evidence"
/* The submodule of the TD's claims: the TEE class "cpu" and its index, as
 * trustee names it (kbs/src/token/mod.rs TOKEN_TEE_PUBKEY_PATH_EAR,
 * "/submods/cpu0/..."; kbs/src/api_server.rs reads init_data_claims there). */
#define EAR_SUBMOD "cpu0"

cai_status kbs_token_issue(const jose_key *key, const json_t *claims, const json_t *tee_pubkey,
                           const char *nonce, const char *evidence_digest, time_t now, long ttl,
                           char **out) {
    *out = NULL;
    uint8_t jti[16];
    char jti_hex[33];
    cai_status st = secure_random(jti, sizeof(jti));
    if (st != CAI_OK)
        return st;
    hex_encode(jti_hex, jti, sizeof(jti));
    json_t *ev = json_deep_copy(claims);
    if (ev == NULL || json_object_set_new(ev, "runtime_data_claims",
                                          json_pack("{s:s, s:O}", "nonce", nonce, "tee-pubkey",
                                                    tee_pubkey)) != 0) {
        json_decref(ev);
        return CAI_ERR_NOMEM;
    }
    json_t *p = json_pack("{s:s, s:I, s:I, s:I, s:s, s:{s:s, s:s}, s:{s:{s:s, s:o, s:s}}}",
                          "eat_profile", EAR_PROFILE, "iat", (json_int_t)now, "nbf",
                          (json_int_t)now, "exp", (json_int_t)(now + ttl), "jti", jti_hex,
                          "ear.verifier-id", "developer", "https://github.com/cai", "build",
                          "cai kbs", "submods", EAR_SUBMOD, "ear.status", "affirming", ANNOTATED, ev,
                          "cai.evidence-digest", evidence_digest);
    if (p == NULL)
        return CAI_ERR_NOMEM;
    st = jose_jws_sign(key, p, NULL, out);
    json_decref(p);
    return st;
}

static int member_is_affirming(const json_t *submod) {
    const char *s = json_string_value(json_object_get(submod, "ear.status"));
    return s && strcmp(s, "affirming") == 0;
}

cai_status kbs_token_verify(const jose_key *key, const char *token, size_t len, time_t now,
                            kbs_token *out) {
    memset(out, 0, sizeof(*out));
    if (len > KBS_TOKEN_MAX)
        return cai_fail(CAI_ERR_LIMIT, "the token is longer than %u bytes", KBS_TOKEN_MAX);
    cai_status st = jose_jws_verify(key, token, len, &out->payload);
    if (st != CAI_OK)
        return cai_fail(st == CAI_ERR_FORMAT ? CAI_ERR_AUTH : st, "token: %s", cai_errmsg(st));
    if ((st = jose_jwt_check_time(out->payload, now, 0, 1)) != CAI_OK) {
        st = cai_fail(CAI_ERR_AUTH, "token: %s", cai_errmsg(st));
        goto fail;
    }
    const json_t *cpu = json_object_get(json_object_get(out->payload, "submods"), EAR_SUBMOD);
    const char *profile = json_string_value(json_object_get(out->payload, "eat_profile"));
    out->claims = json_object_get(cpu, ANNOTATED);
    out->tee_pubkey = json_object_get(json_object_get(out->claims, "runtime_data_claims"),
                                      "tee-pubkey");
    out->evidence_digest = json_string_value(json_object_get(cpu, "cai.evidence-digest"));
    if (profile == NULL || strcmp(profile, EAR_PROFILE) != 0 ||
        !json_is_object(out->claims) || !json_is_object(out->tee_pubkey) ||
        !member_is_affirming(cpu)) {
        st = cai_fail(CAI_ERR_AUTH, "token: not an affirming attestation result");
        goto fail;
    }
    return CAI_OK;
fail:
    kbs_token_cleanup(out);
    return st;
}

void kbs_token_cleanup(kbs_token *t) {
    json_decref(t->payload);
    memset(t, 0, sizeof(*t));
}

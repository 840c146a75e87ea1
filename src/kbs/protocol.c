/* protocol.c - KBS attestation protocol messages (Trustee 0.4). */
#include "kbs/protocol.h"

#include <string.h>

#include <openssl/evp.h>

#include "attest/evidence.h"
#include "attest/quote.h"
#include "common/codec.h"
#include "common/jcs.h"
#include "common/respath.h"

cai_status kbs_json_parse(const void *body, size_t len, json_t **out) {
    json_error_t err;
    *out = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err);
    if (*out == NULL)
        return cai_fail(CAI_ERR_FORMAT, "malformed JSON at byte %d: %s", err.position, err.text);
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return cai_fail(CAI_ERR_FORMAT, "the body must be a JSON object");
    }
    return CAI_OK;
}

static char *dump(json_t *j) {
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return s;
}

char *kbs_request_json(const char *tee) {
    /* As Trustee's client: the hash algorithms it can bind runtime data with. */
    return dump(json_pack("{s:s, s:s, s:{s:[s,s,s]}}", "version", KBS_PROTOCOL_VERSION, "tee", tee,
                          "extra-params", "supported-hash-algorithms", "sha256", "sha384",
                          "sha512"));
}

cai_status kbs_request_check(const json_t *req, char *tee, size_t tee_len) {
    const char *v = json_string_value(json_object_get(req, "version"));
    const char *t = json_string_value(json_object_get(req, "tee"));
    if (v == NULL || t == NULL || json_object_get(req, "extra-params") == NULL)
        return cai_fail(CAI_ERR_FORMAT, "a Request has \"version\", \"tee\" and \"extra-params\"");
    if (strcmp(v, KBS_PROTOCOL_VERSION) != 0)
        return cai_fail(CAI_ERR_UNSUPPORTED,
                        "KBS Client Protocol Version Mismatch: expect =%s while the request is %.32s",
                        KBS_PROTOCOL_VERSION, v);
    if (strlen(t) >= tee_len)
        return cai_fail(CAI_ERR_FORMAT, "unknown tee");
    strcpy(tee, t);
    return CAI_OK;
}

char *kbs_challenge_json(const char *nonce) {
    return dump(json_pack("{s:s, s:s}", "nonce", nonce, "extra-params", ""));
}

cai_status kbs_challenge_parse(const json_t *ch, const char **nonce, kbs_hash *hash) {
    const json_t *n = json_object_get(ch, "nonce");
    if (!json_is_string(n) || json_string_length(n) == 0 ||
        json_string_length(n) > KBS_NONCE_B64_MAX)
        return cai_fail(CAI_ERR_FORMAT, "the Challenge has no usable nonce");
    *nonce = json_string_value(n);
    *hash = KBS_HASH_SHA384;
    const json_t *sel = json_object_get(json_object_get(ch, "extra-params"),
                                        "selected-hash-algorithm");
    if (sel) {
        const char *s = json_string_value(sel);
        if (s && strcasecmp(s, "sha256") == 0)
            *hash = KBS_HASH_SHA256;
        else if (s && strcasecmp(s, "sha384") == 0)
            *hash = KBS_HASH_SHA384;
        else if (s && strcasecmp(s, "sha512") == 0)
            *hash = KBS_HASH_SHA512;
        else
            return cai_fail(CAI_ERR_UNSUPPORTED, "the Challenge selects an unknown hash algorithm");
    }
    return CAI_OK;
}

cai_status kbs_tee_pubkey_normalize(const json_t *jwk, json_t **out) {
    *out = NULL;
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    static const char *const ec[] = {"kty", "crv", "alg", "x", "y", NULL};
    static const char *const rsa[] = {"kty", "alg", "n", "e", NULL};
    const char *const *names = kty && strcmp(kty, "EC") == 0    ? ec
                               : kty && strcmp(kty, "RSA") == 0 ? rsa
                                                                : NULL;
    if (!json_is_object(jwk) || names == NULL)
        return cai_fail(CAI_ERR_FORMAT, "tee-pubkey must be an EC or RSA JWK");
    json_t *o = json_object();
    if (o == NULL)
        return CAI_ERR_NOMEM;
    for (size_t i = 0; names[i]; i++) {
        const json_t *v = json_object_get(jwk, names[i]);
        if (!json_is_string(v) || json_string_length(v) > 2048) {
            json_decref(o);
            return cai_fail(CAI_ERR_FORMAT, "tee-pubkey needs a string \"%s\"", names[i]);
        }
        if (json_object_set(o, names[i], (json_t *)v) != 0) {
            json_decref(o);
            return CAI_ERR_NOMEM;
        }
    }
    *out = o;
    return CAI_OK;
}

cai_status kbs_runtime_data_digest(const char *nonce, const json_t *tee_pubkey,
                                   const char *additional_evidence, kbs_hash hash,
                                   uint8_t out[64]) {
    json_t *rd = json_pack("{s:s, s:s, s:O}", "additional-evidence", additional_evidence, "nonce",
                           nonce, "tee-pubkey", tee_pubkey);
    if (rd == NULL)
        return cai_fail(CAI_ERR_INVALID_ARG, "runtime data: bad nonce or key");
    buf b;
    buf_init(&b, 1 << 20);
    cai_status st = jcs_serialize(rd, &b);
    json_decref(rd);
    const EVP_MD *md = hash == KBS_HASH_SHA256   ? EVP_sha256()
                       : hash == KBS_HASH_SHA512 ? EVP_sha512()
                                                 : EVP_sha384();
    unsigned n = 0;
    memset(out, 0, 64);
    if (st == CAI_OK && !EVP_Digest(b.data, b.len, out, &n, md, NULL))
        st = cai_fail(CAI_ERR_CRYPTO, "runtime data: digest failed");
    buf_free(&b);
    return st;
}

/* The TDX evidence: {"quote": base64, "cc_eventlog": base64|null}, as an
 * object or as that object serialized into a string. */
static cai_status parse_tdx_evidence(const json_t *ev, kbs_attestation *a) {
    json_t *parsed = NULL;
    if (json_is_string(ev)) {
        cai_status st = kbs_json_parse(json_string_value(ev), json_string_length(ev), &parsed);
        if (st != CAI_OK)
            return cai_fail(st, "primary_evidence: %s", cai_errmsg(st));
        ev = parsed;
    }
    buf q;
    cai_status st = attest_tdx_evidence_quote(ev, &q, &a->has_eventlog);
    json_decref(parsed);
    if (st != CAI_OK)
        return cai_fail(st, "primary_evidence: %s", cai_errmsg(st));
    a->quote = q.data; /* owned by |a| now */
    a->quote_len = q.len;
    return CAI_OK;
}

/* The TEE names of kbs-types' Tee (serde lowercase): what may key the
 * additional evidence. */
static const char *const TEE_NAMES[] = {"azsnpvtpm", "aztdxvtpm", "nvidia", "sev", "sgx",
                                        "snp", "tdx", "cca", "csv", "se", "sample",
                                        "sampledevice"};

/* additional_evidence: "" (none), or a JSON object as a string mapping a
 * TEE name to its evidence (trustee kbs/src/attestation/backend.rs parses
 * it as HashMap<Tee, TeeEvidence>). */
static cai_status parse_additional(const json_t *add, kbs_attestation *a) {
    size_t n = json_string_length(add);
    if (n == 0)
        return CAI_OK;
    if (n > KBS_ADDITIONAL_EVIDENCE_MAX)
        return cai_fail(CAI_ERR_LIMIT, "additional_evidence is larger than %u bytes",
                        KBS_ADDITIONAL_EVIDENCE_MAX);
    cai_status st = kbs_json_parse(json_string_value(add), n, &a->additional);
    if (st != CAI_OK)
        return cai_fail(CAI_ERR_FORMAT, "additional_evidence must be \"\" or a JSON object "
                        "{\"<tee>\": evidence} as a string: %s", cai_errmsg(st));
    const char *name;
    json_t *v;
    json_object_foreach(a->additional, name, v) {
        size_t i = 0;
        while (i < sizeof(TEE_NAMES) / sizeof(TEE_NAMES[0]) && strcmp(name, TEE_NAMES[i]) != 0)
            i++;
        if (i == sizeof(TEE_NAMES) / sizeof(TEE_NAMES[0]))
            return cai_fail(CAI_ERR_FORMAT, "additional_evidence: '%.32s' is not a TEE name", name);
    }
    return CAI_OK;
}

cai_status kbs_attestation_parse(const json_t *att, kbs_attestation *a) {
    memset(a, 0, sizeof(*a));
    const json_t *rd = json_object_get(att, "runtime-data");
    const json_t *te = json_object_get(att, "tee-evidence");
    const json_t *init = json_object_get(att, "init-data");
    cai_status st;
    if (!json_is_object(rd) || !json_is_object(te))
        return cai_fail(CAI_ERR_FORMAT, "an Attestation has \"runtime-data\" and \"tee-evidence\"");
    const json_t *nonce = json_object_get(rd, "nonce");
    if (!json_is_string(nonce) || json_string_length(nonce) > KBS_NONCE_B64_MAX)
        return cai_fail(CAI_ERR_FORMAT, "runtime-data needs a string \"nonce\"");
    a->nonce = json_string_value(nonce);
    const json_t *add = json_object_get(te, "additional_evidence");
    if (!json_is_string(add))
        return cai_fail(CAI_ERR_FORMAT, "tee-evidence needs a string \"additional_evidence\"");
    a->additional_evidence = json_string_value(add);
    if ((st = parse_additional(add, a)) != CAI_OK)
        goto fail;
    if (init && !json_is_null(init)) {
        if ((st = kbs_initdata_from_json(init, &a->init_data)) != CAI_OK)
            goto fail;
        a->has_init_data = 1;
    }
    if ((st = kbs_tee_pubkey_normalize(json_object_get(rd, "tee-pubkey"), &a->tee_pubkey)) !=
            CAI_OK ||
        (st = parse_tdx_evidence(json_object_get(te, "primary_evidence"), a)) != CAI_OK)
        goto fail;
    return CAI_OK;
fail:
    kbs_attestation_cleanup(a);
    return st;
}

void kbs_attestation_cleanup(kbs_attestation *a) {
    json_decref(a->tee_pubkey);
    json_decref(a->additional);
    kbs_initdata_cleanup(&a->init_data);
    free(a->quote);
    memset(a, 0, sizeof(*a));
}

char *kbs_attestation_json(const char *nonce, const json_t *tee_pubkey, const uint8_t *quote,
                           size_t quote_len) {
    json_t *ev = attest_tdx_evidence_json(quote, quote_len);
    if (ev == NULL)
        return NULL;
    return dump(json_pack("{s:{s:s, s:O}, s:{s:o, s:s}}", "runtime-data", "nonce", nonce, "tee-pubkey",
                          tee_pubkey, "tee-evidence", "primary_evidence", ev, "additional_evidence", ""));
}

char *kbs_error_json(const char *variant, const char *detail) {
    char type[160];
    snprintf(type, sizeof(type), "%s%s", KBS_ERROR_TYPE_PREFIX, variant);
    return dump(json_pack("{s:s, s:s}", "type", type, "detail", detail ? detail : ""));
}

cai_status kbs_resource_uri_parse(const char *uri, char *path, size_t path_len) {
    const char *p;
    if (strncmp(uri, "kbs://", 6) != 0 || (p = strchr(uri + 6, '/')) == NULL)
        return cai_fail(CAI_ERR_FORMAT, "a resource is kbs:///repo/type/tag");
    p++;
    if (strlen(p) >= path_len || !respath_valid(p))
        return cai_fail(CAI_ERR_FORMAT, "'%.80s' is not repo/type/tag", p);
    strcpy(path, p);
    return CAI_OK;
}

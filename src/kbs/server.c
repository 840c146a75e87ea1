/* server.c - the key broker: RCAR, resources as JWE, admin API, audit. */
#include "kbs/server.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/sha.h>

#include "common/codec.h"
#include "net/httpd.h"
#include "common/jcs.h"
#include "common/log.h"
#include "common/respath.h"
#include "common/secure.h"
#include "crypto/jose.h"
#include "kbs/audit_writer.h"
#include "kbs/policy.h"
#include "kbs/protocol.h"
#include "kbs/session.h"
#include "kbs/token.h"

#define ADMIN_LEEWAY_S 60
#define BODY_MAX (KBS_RESOURCE_MAX + 64 * 1024)
#define DRAIN_TIMEOUT_MS 5000 /* on shutdown, for the answers of committed releases */

struct kbs_server {
    kbs_server_config cfg;
    kbs_audit_writer *writer; /* releases leave once their record is committed */
    httpd *h;
    kbs_store *store;
    kbs_policy *policy;       /* NULL: nothing is released */
    uint64_t policy_gen;      /* the stored policy's generation it was loaded at */
    kbs_sessions *sessions;
    jose_key *token_key;      /* in memory only */
    jose_key *admin_key;      /* NULL: admin API off */
    int tls;
};

/* ---- replies -------------------------------------------------------------- */

static void reply_json_str(httpd_req *r, int status, char *body) {
    if (body == NULL) {
        httpd_reply(r, 500, "application/json", "{}", 2);
        return;
    }
    httpd_reply(r, status, "application/json", body, strlen(body));
    free(body);
}

/* Answers an error in Trustee's shape; refusals are logged (never secrets). */
static void reply_err(httpd_req *r, int status, const char *variant, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void reply_err(httpd_req *r, int status, const char *variant, const char *fmt, ...) {
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    /* The detail may quote what the client sent, cut at a byte count:
     * JSON needs it valid UTF-8. */
    buf clean;
    buf_init(&clean, 0);
    if (utf8_sanitize(detail, strlen(detail), &clean) != CAI_OK || buf_terminate(&clean) != CAI_OK)
        clean.len = 0;
    const char *d = clean.len ? (const char *)clean.data : "";
    log_info("%s %s from %s: %d %s: %s", httpd_method(r), httpd_path(r), httpd_client(r), status,
             variant, d);
    reply_json_str(r, status, kbs_error_json(variant, d));
    buf_free(&clean);
}

static char *httpd_error_body(int status, const char *message) {
    return kbs_error_json(status == 404 ? "InvalidRequestPath" : "RequestRefused", message);
}

static void audit(kbs_server *s, httpd_req *r, const char *event, const char *resource,
                  const char *evidence, const char *claims, const char *detail) {
    kbs_audit_entry e = {.event = event, .resource = resource, .client = httpd_client(r),
                         .evidence_digest = evidence, .claims_digest = claims, .detail = detail};
    cai_status st = kbs_store_audit(s->store, &e);
    if (st != CAI_OK)
        log_error("audit: %s", cai_errmsg(st));
}

static void set_cookie(kbs_server *s, httpd_req *r, const kbs_session *ses) {
    char date[64], v[256];
    struct tm tm;
    gmtime_r(&ses->expires, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    snprintf(v, sizeof(v), "%s=%s; Expires=%s; Path=%s; HttpOnly%s", KBS_SESSION_COOKIE, ses->id,
             date, KBS_PREFIX, s->tls ? "; Secure" : "");
    httpd_add_header(r, "Set-Cookie", v);
}

/* The kbs-session-id from the Cookie header, or NULL. */
static const char *cookie_session(httpd_req *r, char *out, size_t cap) {
    const char *c = httpd_header(r, "Cookie");
    size_t nl = strlen(KBS_SESSION_COOKIE);
    for (const char *p = c; p && *p;) {
        while (*p == ' ' || *p == ';')
            p++;
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > nl && strncmp(p, KBS_SESSION_COOKIE, nl) == 0 && p[nl] == '=') {
            size_t vl = len - nl - 1;
            if (vl >= cap)
                return NULL;
            memcpy(out, p + nl + 1, vl);
            out[vl] = '\0';
            return out;
        }
        p = end ? end + 1 : p + len;
    }
    return NULL;
}

static const char *bearer(httpd_req *r) {
    const char *a = httpd_header(r, "Authorization");
    if (a == NULL || strncasecmp(a, "Bearer ", 7) != 0)
        return NULL;
    a += 7;
    while (*a == ' ')
        a++;
    return *a ? a : NULL;
}

static void sha256_hex(const void *data, size_t n, char out[65]) {
    uint8_t h[32];
    SHA256(data, n, h);
    hex_encode(out, h, sizeof(h));
}

static cai_status claims_digest(const json_t *claims, char out[65]) {
    buf b;
    buf_init(&b, 1 << 20);
    cai_status st = jcs_serialize(claims, &b);
    if (st == CAI_OK)
        sha256_hex(b.data, b.len, out);
    buf_free(&b);
    return st;
}

/* ---- RCAR ----------------------------------------------------------------- */

static void on_auth(kbs_server *s, httpd_req *r) {
    size_t len;
    const char *body = httpd_body(r, &len);
    json_t *req = NULL;
    char tee[32];
    cai_status st = kbs_json_parse(body, len, &req);
    if (st == CAI_OK)
        st = kbs_request_check(req, tee, sizeof(tee));
    json_decref(req);
    if (st != CAI_OK) {
        reply_err(r, 401, "AttestationError", "RCAR handshake Auth failed: %s", cai_errmsg(st));
        return;
    }
    if (strcmp(tee, "tdx") != 0) {
        reply_err(r, 401, "AttestationError",
                  "RCAR handshake Auth failed: tee '%.20s' is not supported (tdx)", tee);
        return;
    }
    time_t now = time(NULL);
    kbs_session *ses;
    /* Until it attests, a session lives pending_ttl_s and counts against
     * its address's quota (session.h). */
    if (kbs_session_over_quota(s->sessions, httpd_client(r), now)) {
        reply_err(r, 429, "AttestationError", "RCAR handshake Auth failed: %s already holds %zu "
                  "attestation sessions in progress (the most one address may); attest or wait "
                  "%d s", httpd_client(r), s->cfg.max_sessions_per_client, s->cfg.pending_ttl_s);
        return;
    }
    if ((st = kbs_session_create(s->sessions, httpd_client(r), now, now + s->cfg.pending_ttl_s,
                                 &ses)) != CAI_OK) {
        reply_err(r, 503, "AttestationError", "%s", cai_errmsg(st));
        return;
    }
    /* On a shared store, any broker may take the nonce (once, in all). */
    if (kbs_store_shared(s->store) &&
        (st = kbs_store_session_add(s->store, ses->id, ses->nonce, httpd_client(r), ses->expires,
                                    now)) != CAI_OK) {
        kbs_session_remove(s->sessions, ses);
        reply_err(r, 503, "AttestationError", "RCAR handshake Auth failed: %s", cai_errmsg(st));
        return;
    }
    set_cookie(s, r, ses);
    reply_json_str(r, 200, kbs_challenge_json(ses->nonce));
}

/* On a shared store, brings the policy up to the one another broker may
 * have set (its generation moved); else nothing. */
static cai_status policy_refresh(kbs_server *s) {
    uint64_t gen = 0;
    char *doc = NULL;
    kbs_policy *p = NULL;
    if (!kbs_store_shared(s->store))
        return CAI_OK;
    cai_status st = kbs_store_policy_generation(s->store, &gen);
    if (st != CAI_OK || gen == s->policy_gen)
        return st;
    if ((st = kbs_store_policy_get(s->store, &doc)) == CAI_OK && doc)
        st = kbs_policy_parse(doc, strlen(doc), &p);
    free(doc);
    if (st != CAI_OK)
        return st;
    kbs_policy_free(s->policy);
    s->policy = p;
    s->policy_gen = gen;
    log_info("loaded the policy another broker set (generation %llu)", (unsigned long long)gen);
    return CAI_OK;
}

/* Answers a failure of the store: 503 if the database could not be
 * reached (retry), else 500 (a check failed). */
static void reply_store_err(httpd_req *r, cai_status st) {
    reply_err(r, st == CAI_ERR_IO ? 503 : 500, "PluginInternalError", "%s", cai_errmsg(st));
}

/* A session id as kbs_session_create makes them (the cookie is the
 * client's to send: nothing else goes to the database). */
static int session_id_ok(const char *id) {
    return id && strlen(id) == KBS_SESSION_ID_LEN &&
           strspn(id, "0123456789abcdef") == KBS_SESSION_ID_LEN;
}

/* On a shared store, takes session |id|'s nonce for this attempt, once
 * across every broker; a session another broker opened is adopted into
 * |*ses|. 0 if answered (refused). */
static int nonce_take(kbs_server *s, httpd_req *r, const char *id, time_t now,
                      kbs_session **ses) {
    char nonce[64], client[64];
    cai_status st = kbs_store_nonce_take(s->store, id, now, nonce, client);
    if (st == CAI_ERR_NOT_FOUND) {
        if (*ses)
            kbs_session_remove(s->sessions, *ses);
        audit(s, r, "refuse", NULL, NULL, NULL, "attest: nonce replayed or session unknown");
        reply_err(r, 401, "AttestationError",
                  "RCAR handshake Attest failed: this session's nonce was already used (or no "
                  "such session); POST %s/auth again", KBS_PREFIX);
        return 0;
    }
    if (st == CAI_OK && *ses == NULL)
        st = kbs_session_adopt(s->sessions, id, nonce, client, now, now + s->cfg.pending_ttl_s,
                               ses);
    else if (st == CAI_OK && strcmp((*ses)->nonce, nonce) != 0)
        st = cai_fail(CAI_ERR_AUTH, "the session's nonce differs in the database");
    secure_wipe(nonce, sizeof(nonce));
    if (st != CAI_OK) {
        if (*ses)
            kbs_session_remove(s->sessions, *ses);
        reply_err(r, st == CAI_ERR_IO || st == CAI_ERR_LIMIT ? 503 : 500, "AttestationError",
                  "RCAR handshake Attest failed: %s", cai_errmsg(st));
        return 0;
    }
    return 1;
}

/* Adds {name: SHA-256 hex of JCS(value)} of |obj|'s members to |claims| as
 * |claim|: what a policy's hex reference values can pin. */
static cai_status digest_members(json_t *claims, const char *claim, const json_t *obj) {
    json_t *d = json_object();
    const char *name;
    json_t *v;
    cai_status st = d ? CAI_OK : CAI_ERR_NOMEM;
    json_object_foreach((json_t *)obj, name, v) {
        char hex[65];
        if (json_is_string(v)) {
            sha256_hex(json_string_value(v), json_string_length(v), hex);
        } else {
            buf b;
            buf_init(&b, 1 << 20);
            st = jcs_serialize(v, &b);
            if (st == CAI_OK)
                sha256_hex(b.data, b.len, hex);
            buf_free(&b);
        }
        if (st != CAI_OK)
            break;
        if (json_object_set_new(d, name, json_string(hex)) != 0) {
            st = CAI_ERR_NOMEM;
            break;
        }
    }
    if (st == CAI_OK && json_object_set_new(claims, claim, d) != 0)
        st = CAI_ERR_NOMEM;
    else if (st != CAI_OK)
        json_decref(d);
    return st;
}

/* The init-data check (trustee deps/verifier/src/tdx/mod.rs): its digest
 * must equal the quote's MRCONFIGID. Then the claims get "init_data" (that
 * digest, hex) and "init_data_digests" ({name: SHA-256 hex of the entry}),
 * for the policy. Without init-data, neither claim exists. */
static cai_status bind_init_data(const kbs_attestation *a, json_t *claims) {
    if (!a->has_init_data)
        return CAI_OK;
    char hex[2 * KBS_INITDATA_DIGEST_LEN + 1];
    hex_encode(hex, a->init_data.digest, KBS_INITDATA_DIGEST_LEN);
    const char *mc = json_string_value(json_object_get(claims, "mr_config_id"));
    if (mc == NULL || strlen(mc) != 2 * KBS_INITDATA_DIGEST_LEN ||
        strncasecmp(mc, hex, 2 * KBS_INITDATA_DIGEST_LEN) != 0) {
        return cai_fail(CAI_ERR_AUTH, "init-data check failed: its %s digest %.16s... is not "
                        "the TD's MRCONFIGID %.16s... (the init-data is not what the TD was "
                        "launched with)", a->init_data.algorithm, hex, mc ? mc : "(none)");
    }
    if (json_object_set_new(claims, "init_data", json_string(hex)) != 0)
        return CAI_ERR_NOMEM;
    cai_status st = digest_members(claims, "init_data_digests", a->init_data.data);
    if (st != CAI_OK)
        return cai_fail(st, "init-data: %s", cai_errmsg(st));
    return CAI_OK;
}

/* Additional (device) evidence is not verified by cai: it only joins the
 * claims, as "additional_evidence" {tee: SHA-256 hex of JCS(evidence)},
 * beside (never over) the TD's claims. REPORTDATA covers it, so the TD
 * vouches that it sent it; nothing vouches for what it says. */
static cai_status add_additional_evidence(const kbs_attestation *a, json_t *claims) {
    if (a->additional == NULL)
        return CAI_OK;
    cai_status st = digest_members(claims, "additional_evidence", a->additional);
    if (st != CAI_OK)
        return cai_fail(st, "additional evidence: %s", cai_errmsg(st));
    return CAI_OK;
}

/* Checks an Attestation for session |ses|: evidence verified, bound to the
 * session's nonce and the TEE key, and the TD acceptable to the policy.
 * On success fills the session's token, claims, key and digests; else
 * the reason is in cai_errmsg (and the digests known so far in |ses|). */
static cai_status attest_check(kbs_server *s, kbs_session *ses, const json_t *body) {
    char *evd = ses->evidence_digest, *clm = ses->claims_digest;
    kbs_attestation a;
    json_t *claims = NULL;
    jose_key *tk = NULL;
    uint8_t rd[64];
    char rd_hex[129];
    cai_status st = kbs_attestation_parse(body, &a);
    if (st != CAI_OK)
        return st;
    sha256_hex(a.quote, a.quote_len, evd);
    if (strcmp(a.nonce, ses->nonce) != 0) {
        st = cai_fail(CAI_ERR_AUTH, "the nonce in the handshake session is different from the "
                                    "client side in KBS protocol's Attestation message");
        goto out;
    }
    if ((st = jose_key_from_jwk(a.tee_pubkey, &tk)) != CAI_OK) {
        st = cai_fail(st, "tee-pubkey: %s", cai_errmsg(st));
        goto out;
    }
    const char *alg = json_string_value(json_object_get(a.tee_pubkey, "alg"));
    jose_key_type kt = jose_key_type_of(tk);
    if (!(((kt == JOSE_KEY_EC_P256 || kt == JOSE_KEY_EC_P521) &&
           strcmp(alg, JOSE_ALG_ECDH_ES_A256KW) == 0) ||
          (kt == JOSE_KEY_RSA && strcmp(alg, JOSE_ALG_RSA_OAEP_256) == 0))) {
        st = cai_fail(CAI_ERR_UNSUPPORTED, "tee-pubkey alg '%.32s' is not supported (EC P-256 "
                      "or P-521 with %s, or RSA with %s)", alg, JOSE_ALG_ECDH_ES_A256KW,
                      JOSE_ALG_RSA_OAEP_256);
        goto out;
    }
    if ((st = kbs_runtime_data_digest(ses->nonce, a.tee_pubkey, a.additional_evidence,
                                      KBS_HASH_SHA384, rd)) != CAI_OK) {
        st = cai_fail(st, "runtime data: %s", cai_errmsg(st));
        goto out;
    }
    /* The DEBUG bit is the release policy's to judge (its allow_debug, on
     * the "debug" claim; a policy is required below): the verifier lets a
     * debug TD through to it. */
    attest_verifier v = s->cfg.verifier;
    v.allow_debug = 1;
    if ((st = attest_verify_claims(&v, a.quote, a.quote_len, time(NULL), &claims, NULL)) !=
        CAI_OK) {
        st = cai_fail(st, "verify TEE evidence failed: %s", cai_errmsg(st));
        goto out;
    }
    hex_encode(rd_hex, rd, sizeof(rd));
    const char *got = json_string_value(json_object_get(claims, "report_data"));
    if (got == NULL || strlen(got) != 128 || !secure_memeq(got, rd_hex, 128)) {
        st = cai_fail(CAI_ERR_AUTH, "claim report_data does not bind this session's nonce and "
                                    "tee-pubkey (evidence made for another challenge or key)");
        goto out;
    }
    if ((st = bind_init_data(&a, claims)) != CAI_OK ||
        (st = add_additional_evidence(&a, claims)) != CAI_OK)
        goto out;
    if ((st = claims_digest(claims, clm)) != CAI_OK) {
        st = cai_fail(st, "claims: %s", cai_errmsg(st));
        goto out;
    }
    if (s->policy == NULL) {
        st = cai_fail(CAI_ERR_AUTH, "no policy is set: nothing is released");
        goto out;
    }
    if ((st = kbs_policy_check(s->policy, claims, NULL)) != CAI_OK)
        goto out;
    st = kbs_token_issue(s->token_key, claims, a.tee_pubkey, ses->nonce, evd, time(NULL),
                         s->cfg.token_ttl_s, &ses->token);
    if (st != CAI_OK) {
        st = cai_fail(st, "token: %s", cai_errmsg(st));
        goto out;
    }
    snprintf(ses->tee_alg, sizeof(ses->tee_alg), "%s", alg);
    ses->claims = claims;
    ses->tee_key = tk;
    claims = NULL;
    tk = NULL;
out:
    json_decref(claims);
    jose_key_free(tk);
    kbs_attestation_cleanup(&a);
    return st;
}

static void on_attest(kbs_server *s, httpd_req *r) {
    char id[64];
    time_t now = time(NULL);
    const char *cid = cookie_session(r, id, sizeof(id));
    kbs_session *ses = kbs_session_find(s->sessions, cid, now);
    if (kbs_store_shared(s->store) && session_id_ok(cid) &&
        (ses == NULL || ses->state == KBS_SESSION_AUTHED)) {
        if (!nonce_take(s, r, cid, now, &ses))
            return;
        cai_status pst = policy_refresh(s);
        if (pst != CAI_OK) {
            kbs_session_remove(s->sessions, ses);
            reply_store_err(r, pst);
            return;
        }
    }
    if (ses == NULL) {
        reply_err(r, 401, "AttestationError",
                  "RCAR handshake Attest failed: no session (cookie %s missing or expired); "
                  "POST %s/auth first", KBS_SESSION_COOKIE, KBS_PREFIX);
        return;
    }
    if (ses->state != KBS_SESSION_AUTHED) {
        kbs_session_remove(s->sessions, ses);
        audit(s, r, "refuse", NULL, NULL, NULL, "attest: nonce replayed");
        reply_err(r, 401, "AttestationError",
                  "RCAR handshake Attest failed: this session's nonce was already used");
        return;
    }
    size_t len;
    const char *body = httpd_body(r, &len);
    json_t *att = NULL;
    cai_status st = kbs_json_parse(body, len, &att);
    if (st != CAI_OK)
        st = cai_fail(st, "deserialize Attestation: %s", cai_errmsg(st));
    else
        st = attest_check(s, ses, att);
    json_decref(att);
    const char *evd = ses->evidence_digest, *clm = ses->claims_digest;
    if (st != CAI_OK) {
        /* The answer's detail, kept: auditing may record one of its own. */
        char detail[400];
        snprintf(detail, sizeof(detail), "%s", cai_errmsg(st));
        /* A nonce is good for one attempt. */
        audit(s, r, "refuse", NULL, evd[0] ? evd : NULL, clm[0] ? clm : NULL, detail);
        kbs_session_remove(s->sessions, ses);
        reply_err(r, 401, "AttestationError", "RCAR handshake Attest failed: %s", detail);
        return;
    }
    kbs_session_attested(s->sessions, ses, time(NULL) + s->cfg.session_ttl_s);
    if (kbs_store_shared(s->store) &&
        (st = kbs_store_session_set_token(s->store, ses->id, ses->token, ses->expires)) != CAI_OK)
        log_warn("attest: the session is not shared with the other brokers (its token still "
                 "serves as a Bearer token): %s", cai_errmsg(st));
    audit(s, r, "attest", NULL, evd, clm, NULL);
    log_info("attested %s: evidence %.16s claims %.16s", httpd_client(r), evd, clm);
    set_cookie(s, r, ses);
    httpd_reply_json(r, 200, json_pack("{s:s}", "token", ses->token));
}

/* ---- resources ------------------------------------------------------------ */

static void on_resource_get(kbs_server *s, httpd_req *r, const char *path) {
    char id[64], clm_buf[65] = "";
    /* What the release depends on: from the attested session (verified when
     * it was made), or from a Bearer token, verified now. */
    const json_t *claims;
    const jose_key *tee_key;
    const char *alg, *evd, *clm;
    kbs_token t = {0};
    jose_key *bearer_key = NULL;
    json_t *jwe = NULL;
    char *shared_tok = NULL;
    buf secret;
    buf_init(&secret, 0);
    cai_status st;
    const char *cid = cookie_session(r, id, sizeof(id));
    kbs_session *ses = kbs_session_find(s->sessions, cid, time(NULL));
    if (kbs_store_shared(s->store) && (st = policy_refresh(s)) != CAI_OK) {
        reply_store_err(r, st);
        return;
    }
    if (ses && ses->state == KBS_SESSION_ATTESTED) {
        claims = ses->claims;
        tee_key = ses->tee_key;
        alg = ses->tee_alg;
        evd = ses->evidence_digest;
        clm = ses->claims_digest;
    } else {
        const char *tok = bearer(r);
        /* A session another broker attested (this one may hold it as
         * opened here but not attested): its token, from the store. */
        if (tok == NULL && session_id_ok(cid) && kbs_store_shared(s->store)) {
            st = kbs_store_session_get_token(s->store, cid, time(NULL), &shared_tok);
            if (st != CAI_OK && st != CAI_ERR_NOT_FOUND) {
                reply_store_err(r, st);
                return;
            }
            tok = shared_tok;
        }
        if (tok == NULL) {
            reply_err(r, 401, "TokenNotFound", "Attestation Token not found");
            return;
        }
        if ((st = kbs_token_verify(s->token_key, tok, strlen(tok), time(NULL), &t)) != CAI_OK) {
            reply_err(r, 401, "TokenVerifierError", "%s", cai_errmsg(st));
            return;
        }
        if ((st = jose_key_from_jwk(t.tee_pubkey, &bearer_key)) != CAI_OK ||
            (st = claims_digest(t.claims, clm_buf)) != CAI_OK) {
            reply_err(r, 401, "TokenVerifierError", "%s", cai_errmsg(st));
            goto out;
        }
        claims = t.claims;
        tee_key = bearer_key;
        alg = json_string_value(json_object_get(t.tee_pubkey, "alg"));
        evd = t.evidence_digest;
        clm = clm_buf;
    }
    if (!respath_valid(path)) {
        reply_err(r, 404, "InvalidRequestPath", "resource path '%.80s' is not repo/type/tag", path);
        goto out;
    }
    st = s->policy ? kbs_policy_check(s->policy, claims, path)
                   : cai_fail(CAI_ERR_AUTH, "no policy is set");
    if (st != CAI_OK) {
        char detail[400]; /* kept: auditing may record a detail of its own */
        snprintf(detail, sizeof(detail), "%s", cai_errmsg(st));
        audit(s, r, "refuse", path, evd, clm, detail);
        reply_err(r, 403, "PolicyDeny", "Access denied by policy: %s", detail);
        goto out;
    }
    st = kbs_store_get(s->store, path, &secret);
    if (st == CAI_ERR_NOT_FOUND) {
        audit(s, r, "refuse", path, evd, clm, "no such resource");
        reply_err(r, 404, "ResourceNotFound", "no resource %.80s", path);
        goto out;
    }
    if (st == CAI_ERR_AUTH) { /* the store's integrity or rollback check */
        audit(s, r, "refuse", path, evd, clm, cai_errmsg(st));
        reply_err(r, 500, "PluginInternalError", "%s", cai_errmsg(st));
        goto out;
    }
    if (st == CAI_ERR_IO) { /* the database is unreachable: nothing released */
        reply_store_err(r, st);
        goto out;
    }
    if (st == CAI_OK)
        st = jose_jwe_encrypt(tee_key, alg, secret.data, secret.len, &jwe);
    if (st != CAI_OK) {
        reply_err(r, 500, "JweError", "%s", cai_errmsg(st));
        goto out;
    }
    /* The release is on record before the secret leaves. */
    st = kbs_audit_writer_submit(s->writer, r, path, evd, clm, jwe);
    if (st == CAI_ERR_INTERNAL) /* shutting down: nothing is released */
        reply_err(r, 503, "PluginInternalError", "%s", cai_errmsg(st));
    else if (st != CAI_OK)
        reply_err(r, 500, "JweError", "%s", cai_errmsg(st));
out:
    free(shared_tok);
    json_decref(jwe);
    jose_key_free(bearer_key);
    buf_free(&secret);
    kbs_token_cleanup(&t);
}

/* ---- admin ---------------------------------------------------------------- */

static int admin_ok(kbs_server *s, httpd_req *r) {
    if (s->admin_key == NULL) {
        reply_err(r, 401, "AdminAuthAccess", "the admin API is off (no admin key configured)");
        return 0;
    }
    const char *t = bearer(r);
    if (t == NULL) {
        reply_err(r, 401, "AdminAuthAccess", "admin access denied: no Bearer token");
        return 0;
    }
    json_t *claims = NULL;
    cai_status st = jose_jws_verify(s->admin_key, t, strlen(t), &claims);
    if (st == CAI_OK)
        st = jose_jwt_check_time(claims, time(NULL), ADMIN_LEEWAY_S, 1);
    json_decref(claims);
    if (st != CAI_OK) {
        reply_err(r, 401, "AdminAuthAccess", "admin access denied: %s", cai_errmsg(st));
        return 0;
    }
    return 1;
}

/* An admin write or delete. A write with "If-None-Match: *" only creates:
 * 409 if the path holds a value (cai seal --kbs registers a key this way). */
static void on_resource_admin(kbs_server *s, httpd_req *r, const char *path, int del) {
    if (!admin_ok(s, r))
        return;
    if (!respath_valid(path)) {
        reply_err(r, 404, "InvalidRequestPath", "resource path '%.80s' is not repo/type/tag", path);
        return;
    }
    const char *inm = httpd_header(r, "If-None-Match");
    if (inm && (del || strcmp(inm, "*") != 0)) {
        reply_err(r, 400, "InvalidRequest", "If-None-Match: only \"*\" on a write is supported");
        return;
    }
    size_t len;
    const char *body = httpd_body(r, &len);
    cai_status st = del ? kbs_store_delete(s->store, path)
                    : inm ? kbs_store_create(s->store, path, (const uint8_t *)body, len)
                          : kbs_store_put(s->store, path, (const uint8_t *)body, len);
    if (st == CAI_ERR_NOT_FOUND) {
        reply_err(r, 404, "ResourceNotFound", "no resource %.80s", path);
        return;
    }
    if (st == CAI_ERR_EXISTS) {
        reply_err(r, 409, "ResourceExists", "the key broker already holds a resource at %.80s "
                  "(If-None-Match: * writes only new paths)", path);
        return;
    }
    if (st != CAI_OK) {
        reply_err(r, st == CAI_ERR_LIMIT ? 413 : st == CAI_ERR_IO ? 503 : 500,
                  "PluginInternalError", "%s", cai_errmsg(st));
        return;
    }
    audit(s, r, del ? "delete" : "put", path, NULL, NULL, NULL);
    log_info("admin %s %s (%zu bytes)", del ? "deleted" : "stored", path, del ? 0 : len);
    httpd_reply(r, 200, "application/json", "", 0);
}

static cai_status policy_set(kbs_server *s, const char *json, size_t len) {
    kbs_policy *p = NULL;
    char *doc = strndup(json, len);
    cai_status st = doc ? kbs_policy_parse(json, len, &p) : CAI_ERR_NOMEM;
    if (st == CAI_OK && (st = kbs_store_policy_set(s->store, doc)) == CAI_OK) {
        kbs_policy_free(s->policy);
        s->policy = p;
        p = NULL;
        if (kbs_store_shared(s->store))
            st = kbs_store_policy_generation(s->store, &s->policy_gen);
    }
    kbs_policy_free(p);
    free(doc);
    return st;
}

static void on_policy(kbs_server *s, httpd_req *r) {
    if (!admin_ok(s, r))
        return;
    if (strcmp(httpd_method(r), "GET") == 0) {
        char *doc = NULL;
        cai_status st = kbs_store_policy_get(s->store, &doc);
        if (st != CAI_OK) { /* e.g. the policy or store check failed */
            reply_err(r, 500, "PolicyEngineError", "%s", cai_errmsg(st));
            return;
        }
        if (doc == NULL) {
            reply_err(r, 404, "PolicyEngineError", "no policy is set");
            return;
        }
        httpd_reply(r, 200, "application/json", doc, strlen(doc));
        free(doc);
        return;
    }
    size_t len;
    const char *body = httpd_body(r, &len);
    /* Trustee's clients send {"policy": "<base64url of the policy>"}; the
     * policy document itself is accepted too. */
    json_t *j = NULL;
    buf dec;
    buf_init(&dec, 0);
    cai_status st = kbs_json_parse(body, len, &j);
    const json_t *wrapped = st == CAI_OK && json_object_size(j) == 1
                                ? json_object_get(j, "policy") : NULL;
    if (json_is_string(wrapped)) {
        st = jose_b64url_decode(json_string_value(wrapped), json_string_length(wrapped), 1 << 20,
                                &dec);
        body = (const char *)dec.data;
        len = dec.len;
    }
    if (st == CAI_OK)
        st = policy_set(s, body, len);
    json_decref(j);
    buf_free(&dec);
    if (st != CAI_OK) {
        reply_err(r, 400, "ParsePolicyError", "Failed to parse policy: %s", cai_errmsg(st));
        return;
    }
    audit(s, r, "policy", NULL, NULL, NULL, NULL);
    log_info("admin set the policy");
    httpd_reply(r, 200, "application/json", "", 0);
}

static void on_list(kbs_server *s, httpd_req *r, int audit_log) {
    if (!admin_ok(s, r))
        return;
    json_t *j = NULL;
    cai_status st;
    if (audit_log) {
        const char *l = httpd_query(r, "limit");
        long limit = l ? strtol(l, NULL, 10) : 100;
        st = kbs_store_audit_list(s->store, limit > 0 && limit <= 100000 ? (int)limit : 100, &j);
    } else {
        st = kbs_store_list(s->store, &j);
    }
    if (st != CAI_OK) {
        reply_store_err(r, st);
        return;
    }
    httpd_reply_json(r, 200, j);
}

/* ---- health --------------------------------------------------------------- */

/* GET /health: 200 {"status":"ok"} when the store answers a read, else 503
 * naming the check that failed. GET /healthz: 200 while the broker serves
 * HTTP at all (Trustee's liveness route). No authentication: neither says
 * anything but whether the broker and its database answer. */
static void h_health(httpd_req *r, void *arg) {
    kbs_server *s = arg;
    int live = strcmp(httpd_path(r), "/healthz") == 0;
    if (strcmp(httpd_method(r), "GET") != 0 && strcmp(httpd_method(r), "HEAD") != 0) {
        reply_err(r, 405, "InvalidRequestPath", "%s takes GET", httpd_path(r));
        return;
    }
    cai_status st = live ? CAI_OK : kbs_store_ping(s->store);
    if (st != CAI_OK) {
        char detail[300];
        snprintf(detail, sizeof(detail), "store check failed: %s", cai_errmsg(st));
        log_warn("health: %s", detail);
        httpd_reply_json(r, 503, json_pack("{s:s, s:s}", "status", "unavailable", "detail",
                                           detail));
        return;
    }
    httpd_reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

/* ---- dispatch ------------------------------------------------------------- */

static void h_kbs(httpd_req *r, void *arg) {
    kbs_server *s = arg;
    const char *p = httpd_path(r) + strlen(KBS_PREFIX "/");
    const char *m = httpd_method(r);
    int get = strcmp(m, "GET") == 0, post = strcmp(m, "POST") == 0;
    if (strcmp(p, "auth") == 0 && post)
        on_auth(s, r);
    else if (strcmp(p, "attest") == 0 && post)
        on_attest(s, r);
    else if (strncmp(p, "resource/", 9) == 0 && get)
        on_resource_get(s, r, p + 9);
    else if (strncmp(p, "resource/", 9) == 0 && (post || strcmp(m, "PUT") == 0))
        on_resource_admin(s, r, p + 9, 0);
    else if (strncmp(p, "resource/", 9) == 0 && strcmp(m, "DELETE") == 0)
        on_resource_admin(s, r, p + 9, 1);
    else if (strcmp(p, "resource") == 0 && get)
        on_list(s, r, 0);
    else if (strcmp(p, "resource-policy") == 0 && (get || post))
        on_policy(s, r);
    else if (strcmp(p, "audit") == 0 && get)
        on_list(s, r, 1);
    else
        reply_err(r, 404, "InvalidRequestPath", "Request path %.80s is invalid (%s)",
                  httpd_path(r), m);
}

cai_status kbs_server_new(const kbs_server_config *cfg, kbs_server **out) {
    *out = NULL;
    kbs_server *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return CAI_ERR_NOMEM;
    s->cfg = *cfg;
    if (!s->cfg.session_ttl_s)
        s->cfg.session_ttl_s = 300;
    if (!s->cfg.token_ttl_s)
        s->cfg.token_ttl_s = 300;
    if (!s->cfg.pending_ttl_s)
        s->cfg.pending_ttl_s = 30;
    if (s->cfg.pending_ttl_s > s->cfg.session_ttl_s)
        s->cfg.pending_ttl_s = s->cfg.session_ttl_s;
    if (!s->cfg.max_sessions)
        s->cfg.max_sessions = KBS_SESSIONS_MAX_DEFAULT;
    if (!s->cfg.max_sessions_per_client)
        s->cfg.max_sessions_per_client = KBS_SESSIONS_PER_CLIENT_DEFAULT;
    s->tls = cfg->tls_cert_file != NULL || cfg->ssl_ctx != NULL;
    cai_status st;
    if ((st = kbs_store_open_state(cfg->db_path, cfg->state_path, cfg->master_key,
                                   &s->store)) != CAI_OK ||
        (st = kbs_sessions_new(s->cfg.max_sessions, s->cfg.max_sessions_per_client,
                               &s->sessions)) != CAI_OK)
        goto fail;
    /* Brokers sharing a store sign tokens with one key, kept in it sealed
     * under the master key, so each honours the others' tokens. */
    if ((st = kbs_store_shared(s->store) ? kbs_store_token_key(s->store, &s->token_key)
                                          : jose_key_generate(JOSE_KEY_EC_P256, &s->token_key)) !=
        CAI_OK)
        goto fail;
    if (cfg->admin_pub_pem) {
        if ((st = jose_key_from_pem(cfg->admin_pub_pem, strlen(cfg->admin_pub_pem),
                                    &s->admin_key)) != CAI_OK)
            goto fail;
        if (jose_key_type_of(s->admin_key) != JOSE_KEY_ED25519) {
            st = cai_fail(CAI_ERR_INVALID_ARG, "the admin key must be an Ed25519 public key");
            goto fail;
        }
    }
    if (cfg->policy_json) {
        if ((st = policy_set(s, cfg->policy_json, strlen(cfg->policy_json))) != CAI_OK)
            goto fail;
    } else {
        char *doc = NULL;
        if (kbs_store_shared(s->store) &&
            (st = kbs_store_policy_generation(s->store, &s->policy_gen)) != CAI_OK)
            goto fail;
        if ((st = kbs_store_policy_get(s->store, &doc)) != CAI_OK)
            goto fail;
        if (doc)
            st = kbs_policy_parse(doc, strlen(doc), &s->policy);
        free(doc);
        if (st != CAI_OK)
            goto fail;
    }
    if (s->policy == NULL)
        log_warn("no release policy is set: every resource request will be refused");
    httpd_config hc = {.host = cfg->host, .port = cfg->port, .max_body = BODY_MAX,
                       .max_connections = 1024, .rate_per_s = cfg->rate_per_s,
                       .rate_burst = cfg->rate_burst, .timeout_s = 30,
                       .tls_cert_file = cfg->tls_cert_file, .tls_key_file = cfg->tls_key_file,
                       .ssl_ctx = cfg->ssl_ctx};
    if ((st = httpd_new(&hc, &s->h)) != CAI_OK)
        goto fail;
    httpd_set_error_body(s->h, httpd_error_body);
    if ((st = httpd_route(s->h, KBS_PREFIX "/", h_kbs, s)) != CAI_OK ||
        (st = httpd_route(s->h, "/health", h_health, s)) != CAI_OK ||
        (st = httpd_route(s->h, "/healthz", h_health, s)) != CAI_OK)
        goto fail;
    if ((st = kbs_audit_writer_new(s->store, &s->writer)) != CAI_OK)
        goto fail;
    *out = s;
    return CAI_OK;
fail:
    kbs_server_free(s);
    return st;
}

int kbs_server_port(const kbs_server *s) {
    return httpd_port(s->h);
}

cai_status kbs_server_run(kbs_server *s) {
    return httpd_run(s->h);
}

void kbs_server_stop(kbs_server *s) {
    httpd_stop(s->h);
}

void kbs_server_free(kbs_server *s) {
    if (s == NULL)
        return;
    int had_writer = s->writer != NULL;
    kbs_audit_writer_free(s->writer); /* commits the queue first */
    /* The writer has committed the queued releases and posted their
     * answers: send them before closing the connections. */
    if (s->h && had_writer) {
        cai_status st = httpd_drain(s->h, DRAIN_TIMEOUT_MS);
        if (st != CAI_OK)
            log_error("shutdown: %s", cai_errmsg(st));
    }
    httpd_free(s->h);
    kbs_sessions_free(s->sessions);
    kbs_policy_free(s->policy);
    kbs_store_close(s->store);
    jose_key_free(s->token_key);
    jose_key_free(s->admin_key);
    secure_wipe(s->cfg.master_key, sizeof(s->cfg.master_key));
    free(s);
}

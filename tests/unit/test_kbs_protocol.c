/* Tests of the KBS protocol messages against the fixtures in
 * tests/vectors/kbs (Trustee's formats, docs/KBS-PROTOCOL.md), the session
 * table and the attestation token. */
#include <string.h>
#include <time.h>

#include "common/file.h"
#include "common/jcs.h"
#include "crypto/jose.h"
#include "kbs/protocol.h"
#include "kbs/session.h"
#include "kbs/token.h"
#include "test.h"

static json_t *fixture(const char *name) {
    char p[256];
    snprintf(p, sizeof(p), "tests/vectors/kbs/%s", name);
    buf b;
    json_t *j = NULL;
    if (file_read_all(p, 1 << 20, &b) == CAI_OK && kbs_json_parse(b.data, b.len, &j) != CAI_OK)
        j = NULL;
    buf_free(&b);
    if (j == NULL)
        printf("  cannot load %s\n", p);
    return j;
}

static json_t *parse(const char *s) {
    json_t *j = NULL;
    return kbs_json_parse(s, strlen(s), &j) == CAI_OK ? j : NULL;
}

static void test_request(void) {
    json_t *r = fixture("request.json");
    char tee[32];
    CHECK(r != NULL);
    CHECK_OK(kbs_request_check(r, tee, sizeof(tee)));
    CHECK(strcmp(tee, "tdx") == 0);
    json_object_set_new(r, "version", json_string("0.1.0"));
    CHECK_ST(kbs_request_check(r, tee, sizeof(tee)), CAI_ERR_UNSUPPORTED);
    CHECK(strstr(cai_errmsg(CAI_ERR_UNSUPPORTED), "Version Mismatch") != NULL);
    json_object_del(r, "extra-params");
    json_object_set_new(r, "version", json_string(KBS_PROTOCOL_VERSION));
    CHECK_ST(kbs_request_check(r, tee, sizeof(tee)), CAI_ERR_FORMAT);
    json_decref(r);
    /* What the agent sends is what the fixture holds. */
    char *mine = kbs_request_json("tdx");
    json_t *m = mine ? parse(mine) : NULL, *f = fixture("request.json");
    CHECK(m && f && json_equal(m, f));
    json_decref(m);
    json_decref(f);
    free(mine);
    /* Duplicate members and trailing bytes are refused. */
    CHECK(parse("{\"tee\":\"tdx\",\"tee\":\"snp\"}") == NULL);
    CHECK(parse("{\"tee\":\"tdx\"} x") == NULL);
    CHECK(parse("[1]") == NULL);
}

static void test_challenge(void) {
    json_t *c = fixture("challenge.json");
    const char *nonce;
    kbs_hash h;
    CHECK_OK(kbs_challenge_parse(c, &nonce, &h));
    CHECK(strcmp(nonce, "2eI6dCOEnFVZHSvvnlhlLUvWrHXvbNGYFYxSWzuvJRw=") == 0 && h == KBS_HASH_SHA384);
    json_object_set_new(c, "extra-params", json_pack("{s:s}", "selected-hash-algorithm", "SHA512"));
    CHECK_OK(kbs_challenge_parse(c, &nonce, &h));
    CHECK(h == KBS_HASH_SHA512);
    json_object_set_new(c, "extra-params", json_pack("{s:s}", "selected-hash-algorithm", "md5"));
    CHECK_ST(kbs_challenge_parse(c, &nonce, &h), CAI_ERR_UNSUPPORTED);
    json_object_set_new(c, "nonce", json_integer(4));
    CHECK_ST(kbs_challenge_parse(c, &nonce, &h), CAI_ERR_FORMAT);
    json_decref(c);
    /* The broker's challenge: 32 random bytes in standard base64, extra-params "". */
    char *s = kbs_challenge_json("AQID" "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    json_t *j = s ? parse(s) : NULL;
    CHECK(j && json_object_size(j) == 2 &&
          strcmp(json_string_value(json_object_get(j, "extra-params")), "") == 0 &&
          strlen(json_string_value(json_object_get(j, "nonce"))) == 44);
    json_decref(j);
    free(s);
}

static void test_attestation_and_runtime_data(void) {
    json_t *a = fixture("attestation.json"), *rd = fixture("runtime-data.json");
    kbs_attestation att;
    CHECK(a && rd);
    CHECK_OK(kbs_attestation_parse(a, &att));
    static const uint8_t q[] = {4, 0, 2, 0, 0x81, 0, 0, 0};
    CHECK(att.quote_len == sizeof(q) && memcmp(att.quote, q, sizeof(q)) == 0 && !att.has_eventlog);
    CHECK(json_object_size(att.tee_pubkey) == 5);
    /* The JCS bytes and the REPORTDATA agree with the independent computation. */
    json_t *r = json_pack("{s:s, s:s, s:O}", "additional-evidence", "", "nonce", att.nonce,
                          "tee-pubkey", att.tee_pubkey);
    buf b;
    buf_init(&b, 0);
    CHECK_OK(jcs_serialize(r, &b));
    CHECK(strcmp((char *)b.data, json_string_value(json_object_get(rd, "jcs"))) == 0);
    uint8_t digest[64];
    char hex[129];
    CHECK_OK(kbs_runtime_data_digest(att.nonce, att.tee_pubkey, "", KBS_HASH_SHA384, digest));
    for (int i = 0; i < 64; i++)
        sprintf(hex + 2 * i, "%02x", digest[i]);
    CHECK(strcmp(hex, json_string_value(json_object_get(rd, "report_data"))) == 0);
    /* Members Trustee drops (kid, use) do not change the binding. */
    json_t *pk = json_object_get(json_object_get(a, "runtime-data"), "tee-pubkey"), *norm = NULL;
    json_object_set_new(pk, "kid", json_string("k1"));
    CHECK_OK(kbs_tee_pubkey_normalize(pk, &norm));
    CHECK(norm && json_equal(norm, att.tee_pubkey));
    json_decref(norm);
    json_decref(r);
    buf_free(&b);
    kbs_attestation_cleanup(&att);

    /* The agent's own Attestation body parses back to the same values. */
    char *mine = kbs_attestation_json("n0", pk, q, sizeof(q));
    json_t *m = mine ? parse(mine) : NULL;
    CHECK_OK(kbs_attestation_parse(m, &att));
    CHECK(strcmp(att.nonce, "n0") == 0 && att.quote_len == sizeof(q));
    kbs_attestation_cleanup(&att);
    json_decref(m);
    free(mine);
    json_decref(a);
    json_decref(rd);
}

static void test_attestation_refusals(void) {
    static const struct {
        const char *name, *json;
        cai_status want;
    } bad[] = {
        {"additional evidence not JSON",
         "{\"runtime-data\":{\"nonce\":\"n\",\"tee-pubkey\":{\"kty\":\"EC\",\"crv\":\"P-256\",\"alg\":\"a\",\"x\":\"x\",\"y\":\"y\"}},"
         "\"tee-evidence\":{\"primary_evidence\":{\"quote\":\"AAAA\"},\"additional_evidence\":\"{\\\"nvidia\\\":\"}}",
         CAI_ERR_FORMAT},
        {"additional evidence an array",
         "{\"runtime-data\":{\"nonce\":\"n\",\"tee-pubkey\":{\"kty\":\"EC\",\"crv\":\"P-256\",\"alg\":\"a\",\"x\":\"x\",\"y\":\"y\"}},"
         "\"tee-evidence\":{\"primary_evidence\":{\"quote\":\"AAAA\"},\"additional_evidence\":\"[1]\"}}",
         CAI_ERR_FORMAT},
        {"additional evidence of an unknown TEE",
         "{\"runtime-data\":{\"nonce\":\"n\",\"tee-pubkey\":{\"kty\":\"EC\",\"crv\":\"P-256\",\"alg\":\"a\",\"x\":\"x\",\"y\":\"y\"}},"
         "\"tee-evidence\":{\"primary_evidence\":{\"quote\":\"AAAA\"},\"additional_evidence\":\"{\\\"gpu\\\":{}}\"}}",
         CAI_ERR_FORMAT},
        {"additional evidence with a duplicate TEE",
         "{\"runtime-data\":{\"nonce\":\"n\",\"tee-pubkey\":{\"kty\":\"EC\",\"crv\":\"P-256\",\"alg\":\"a\",\"x\":\"x\",\"y\":\"y\"}},"
         "\"tee-evidence\":{\"primary_evidence\":{\"quote\":\"AAAA\"},\"additional_evidence\":\"{\\\"nvidia\\\":{},\\\"nvidia\\\":{}}\"}}",
         CAI_ERR_FORMAT},
        {"init-data not TOML",
         "{\"init-data\":{\"format\":\"toml\",\"body\":\"x\"},\"runtime-data\":{\"nonce\":\"n\",\"tee-pubkey\":{}},"
         "\"tee-evidence\":{\"primary_evidence\":{},\"additional_evidence\":\"\"}}",
         CAI_ERR_FORMAT},
        {"init-data as JSON",
         "{\"init-data\":{\"format\":\"json\",\"body\":\"{}\"},\"runtime-data\":{\"nonce\":\"n\",\"tee-pubkey\":{}},"
         "\"tee-evidence\":{\"primary_evidence\":{},\"additional_evidence\":\"\"}}",
         CAI_ERR_UNSUPPORTED},
        {"init-data a string",
         "{\"init-data\":\"x\",\"runtime-data\":{\"nonce\":\"n\",\"tee-pubkey\":{}},"
         "\"tee-evidence\":{\"primary_evidence\":{},\"additional_evidence\":\"\"}}",
         CAI_ERR_FORMAT},
        {"no quote",
         "{\"runtime-data\":{\"nonce\":\"n\",\"tee-pubkey\":{\"kty\":\"EC\",\"crv\":\"P-256\",\"alg\":\"a\",\"x\":\"x\",\"y\":\"y\"}},"
         "\"tee-evidence\":{\"primary_evidence\":{\"cc_eventlog\":null},\"additional_evidence\":\"\"}}",
         CAI_ERR_FORMAT},
        {"quote not base64",
         "{\"runtime-data\":{\"nonce\":\"n\",\"tee-pubkey\":{\"kty\":\"EC\",\"crv\":\"P-256\",\"alg\":\"a\",\"x\":\"x\",\"y\":\"y\"}},"
         "\"tee-evidence\":{\"primary_evidence\":{\"quote\":\"A*AA\"},\"additional_evidence\":\"\"}}",
         CAI_ERR_FORMAT},
        {"key without alg",
         "{\"runtime-data\":{\"nonce\":\"n\",\"tee-pubkey\":{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"x\",\"y\":\"y\"}},"
         "\"tee-evidence\":{\"primary_evidence\":{\"quote\":\"AAAA\"},\"additional_evidence\":\"\"}}",
         CAI_ERR_FORMAT},
        {"OKP key",
         "{\"runtime-data\":{\"nonce\":\"n\",\"tee-pubkey\":{\"kty\":\"OKP\",\"crv\":\"X25519\",\"alg\":\"a\",\"x\":\"x\"}},"
         "\"tee-evidence\":{\"primary_evidence\":{\"quote\":\"AAAA\"},\"additional_evidence\":\"\"}}",
         CAI_ERR_FORMAT},
        {"nonce not a string",
         "{\"runtime-data\":{\"nonce\":7,\"tee-pubkey\":{}},\"tee-evidence\":{\"additional_evidence\":\"\"}}",
         CAI_ERR_FORMAT},
        {"eventlog not base64 or null",
         "{\"runtime-data\":{\"nonce\":\"n\",\"tee-pubkey\":{\"kty\":\"RSA\",\"alg\":\"a\",\"n\":\"x\",\"e\":\"y\"}},"
         "\"tee-evidence\":{\"primary_evidence\":{\"quote\":\"AAAA\",\"cc_eventlog\":5},\"additional_evidence\":\"\"}}",
         CAI_ERR_FORMAT},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *j = parse(bad[i].json);
        kbs_attestation a;
        cai_status st = j ? kbs_attestation_parse(j, &a) : CAI_ERR_INTERNAL;
        if (st != bad[i].want)
            printf("  %s: got %d (%s)\n", bad[i].name, st, cai_errmsg(st));
        CHECK(st == bad[i].want);
        json_decref(j);
    }
    /* primary_evidence may also be the TDX evidence serialized as a string. */
    json_t *j = parse("{\"runtime-data\":{\"nonce\":\"n\",\"tee-pubkey\":{\"kty\":\"RSA\",\"alg\":\"a\",\"n\":\"x\",\"e\":\"y\"}},"
                      "\"tee-evidence\":{\"primary_evidence\":\"{\\\"quote\\\":\\\"AAAA\\\",\\\"cc_eventlog\\\":\\\"AAAA\\\"}\","
                      "\"additional_evidence\":\"\"}}");
    kbs_attestation a;
    CHECK_OK(kbs_attestation_parse(j, &a));
    CHECK(a.quote_len == 3 && a.has_eventlog);
    kbs_attestation_cleanup(&a);
    json_decref(j);
    /* Device evidence in the shape CoCo's agent sends ({"<tee>": evidence}
     * serialized into a string) and init-data are read, kept for the
     * broker to bind and show to the policy. */
    j = parse("{\"init-data\":{\"format\":\"toml\",\"body\":\"version = \\\"0.1.0\\\"\\nalgorithm = "
              "\\\"sha384\\\"\\n[data]\\nk = \\\"v\\\"\\n\"},"
              "\"runtime-data\":{\"nonce\":\"n\",\"tee-pubkey\":{\"kty\":\"RSA\",\"alg\":\"a\",\"n\":\"x\",\"e\":\"y\"}},"
              "\"tee-evidence\":{\"primary_evidence\":{\"quote\":\"AAAA\"},"
              "\"additional_evidence\":\"{\\\"nvidia\\\":{\\\"evidence_list\\\":[]}}\"}}");
    CHECK_OK(kbs_attestation_parse(j, &a));
    CHECK(a.has_init_data && strcmp(a.init_data.algorithm, "sha384") == 0 &&
          strcmp(json_string_value(json_object_get(a.init_data.data, "k")), "v") == 0);
    CHECK(json_is_array(json_object_get(json_object_get(a.additional, "nvidia"), "evidence_list")));
    CHECK(a.additional_evidence && a.additional_evidence[0] == '{');
    kbs_attestation_cleanup(&a);
    json_decref(j);
}

static void test_error_shape(void) {
    char *s = kbs_error_json("TokenNotFound", "Attestation Token not found");
    json_t *m = s ? parse(s) : NULL, *f = fixture("error.json");
    CHECK(m && f && json_equal(m, f));
    json_decref(m);
    json_decref(f);
    free(s);
}

static void test_jwe_fixtures(void) {
    /* A JWE made by the jose npm library for RFC 7518's "Bob" key decrypts. */
    buf pem, out;
    jose_key *bob = NULL;
    json_t *jwe = fixture("jwe-from-jose.json");
    CHECK_OK(file_read_all("tests/vectors/kbs/bob.pem", 4096, &pem));
    CHECK_OK(jose_key_from_pem((char *)pem.data, pem.len, &bob));
    CHECK_OK(jose_jwe_decrypt(bob, jwe, &out));
    const char *want = "cai fixture: produced by the jose npm library";
    CHECK(out.len == strlen(want) && memcmp(out.data, want, out.len) == 0);
    buf_free(&out);
    /* kbs-types' fake Response (parse_response) is refused for its algorithms. */
    json_t *fake = fixture("kbs-types/parse_response.json");
    CHECK_ST(jose_jwe_decrypt(bob, fake, &out), CAI_ERR_UNSUPPORTED);
    json_decref(fake);
    json_decref(jwe);
    jose_key_free(bob);
    buf_free(&pem);
}

/* The compact JSON of |j| in its member order: what serde_json writes for
 * the struct a fixture was made from (the fields in declaration order). */
static char *compact(const json_t *j) { return j ? json_dumps(j, JSON_COMPACT) : NULL; }

/* The examples of virtee/kbs-types' own tests (src/lib.rs, mod tests),
 * copied verbatim into tests/vectors/kbs/kbs-types/<test name>.json. */
static void test_kbs_types_fixtures(void) {
    char tee[32];
    /* parse_request: read; version 0.0.0 is refused as Trustee refuses it. */
    json_t *r = fixture("kbs-types/parse_request.json");
    CHECK(r != NULL);
    CHECK_ST(kbs_request_check(r, tee, sizeof(tee)), CAI_ERR_UNSUPPORTED);
    CHECK(strstr(cai_errmsg(CAI_ERR_UNSUPPORTED), "Version Mismatch") != NULL);
    json_object_set_new(r, "version", json_string(KBS_PROTOCOL_VERSION));
    CHECK_OK(kbs_request_check(r, tee, sizeof(tee)));
    CHECK(strcmp(tee, "tdx") == 0);
    json_decref(r);
    /* parse_challenge: read (nonce "42", SHA-384); ours is byte for byte the
     * compact form of it. */
    json_t *c = fixture("kbs-types/parse_challenge.json");
    const char *nonce = NULL;
    kbs_hash h = 0;
    CHECK(c != NULL);
    CHECK_OK(kbs_challenge_parse(c, &nonce, &h));
    CHECK(nonce && strcmp(nonce, "42") == 0 && h == KBS_HASH_SHA384);
    char *mine = kbs_challenge_json("42"), *theirs = compact(c);
    CHECK(mine && theirs && strcmp(mine, theirs) == 0);
    free(mine);
    free(theirs);
    json_decref(c);
    /* parse_attestation_ec/_rsa: the runtime data is read and its key
     * normalizes to exactly the fixture's members in kbs-types' order; the
     * whole message is refused because its additional_evidence
     * ("test_additional_evidence") is not the JSON map a real agent sends. */
    const char *att[] = {"kbs-types/parse_attestation_ec.json",
                         "kbs-types/parse_attestation_rsa.json"};
    for (size_t i = 0; i < 2; i++) {
        json_t *a = fixture(att[i]), *norm = NULL;
        const json_t *pk = json_object_get(json_object_get(a, "runtime-data"), "tee-pubkey");
        CHECK(a != NULL);
        CHECK_OK(kbs_tee_pubkey_normalize(pk, &norm));
        char *n1 = compact(norm), *n2 = compact(pk);
        CHECK(n1 && n2 && strcmp(n1, n2) == 0);
        free(n1);
        free(n2);
        json_decref(norm);
        kbs_attestation parsed;
        CHECK_ST(kbs_attestation_parse(a, &parsed), CAI_ERR_FORMAT);
        CHECK(strstr(cai_errmsg(CAI_ERR_FORMAT), "additional_evidence must be") != NULL);
        json_decref(a);
    }
    /* parse_error_information: ours has the same members in the same order. */
    json_t *e = fixture("kbs-types/parse_error_information.json");
    char *es = kbs_error_json("problemtype", "problemdetail");
    json_t *m = es ? parse(es) : NULL;
    CHECK(e && m && json_object_size(m) == 2);
    if (e && m) {
        json_object_set_new(m, "type", json_string("problemtype")); /* ours has the URL prefix */
        char *c1 = compact(m), *c2 = compact(e);
        CHECK(c1 && c2 && strcmp(c1, c2) == 0);
        free(c1);
        free(c2);
    }
    free(es);
    json_decref(m);
    json_decref(e);
    /* protected_header_generate_aad: our protected header for the same
     * alg/enc is byte for byte the AAD kbs-types computes. */
    json_t *aad = fixture("kbs-types/protected_header_generate_aad.json");
    const json_t *ph = json_object_get(aad, "protected_header");
    buf b;
    CHECK_OK(jose_jwe_protected_b64(json_string_value(json_object_get(ph, "alg")),
                                    json_string_value(json_object_get(ph, "enc")), NULL, NULL, NULL,
                                    &b));
    CHECK(b.data && strcmp((char *)b.data, json_string_value(json_object_get(aad, "aad"))) == 0);
    buf_free(&b);
    json_decref(aad);
    /* parse_response*: read as flattened JWEs (also with "aad", a newline
     * after the header JSON, another member or a nested epk) and refused
     * only for their fake algorithms. */
    const char *resp[] = {"kbs-types/parse_response.json",
                          "kbs-types/parse_response_with_aad.json",
                          "kbs-types/parse_response_nested_protected_header.json",
                          "kbs-types/parse_response_with_protectedheader.json"};
    jose_key *k = NULL;
    CHECK_OK(jose_key_generate(JOSE_KEY_EC_P256, &k));
    for (size_t i = 0; i < 4; i++) {
        json_t *j = fixture(resp[i]);
        buf out;
        CHECK(j != NULL);
        CHECK_ST(jose_jwe_decrypt(k, j, &out), CAI_ERR_UNSUPPORTED);
        if (strstr(cai_errmsg(CAI_ERR_UNSUPPORTED), "enc must be A256GCM") == NULL)
            printf("  %s: %s\n", resp[i], cai_errmsg(CAI_ERR_UNSUPPORTED));
        CHECK(strstr(cai_errmsg(CAI_ERR_UNSUPPORTED), "enc must be A256GCM") != NULL);
        buf_free(&out);
        json_decref(j);
    }
    jose_key_free(k);
}

static void test_resource_uri(void) {
    char p[300];
    CHECK_OK(kbs_resource_uri_parse("kbs:///cai/qwen/key", p, sizeof(p)));
    CHECK(strcmp(p, "cai/qwen/key") == 0);
    CHECK_OK(kbs_resource_uri_parse("kbs://kbs.example:8080/default/key/1", p, sizeof(p)));
    CHECK(strcmp(p, "default/key/1") == 0);
    const char *bad[] = {"kbs:///a/b", "kbs:///a/b/c/d", "kbs:///a/../c", "http://x/a/b/c",
                         "kbs:///a//c", "kbs:///a/b/c%2f"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(kbs_resource_uri_parse(bad[i], p, sizeof(p)) == CAI_ERR_FORMAT);
}

static void test_sessions(void) {
    kbs_sessions *ss = NULL;
    kbs_session *a, *b, *c;
    CHECK_OK(kbs_sessions_new(2, 0, &ss));
    CHECK_OK(kbs_session_create(ss, "10.0.0.1", 100, 200, &a));
    CHECK_OK(kbs_session_create(ss, "10.0.0.1", 100, 150, &b));
    CHECK(strlen(a->id) == 32 && strcmp(a->id, b->id) != 0 && strcmp(a->nonce, b->nonce) != 0);
    CHECK(strlen(a->nonce) == 44 && a->state == KBS_SESSION_AUTHED);
    CHECK(kbs_session_find(ss, a->id, 120) == a);
    kbs_session_attested(ss, a, 400);
    CHECK(a->state == KBS_SESSION_ATTESTED && a->expires == 400);
    CHECK(kbs_session_pending(ss, "10.0.0.1") == 1);
    /* b expired: found no more, and its room is reused. */
    char bid[33];
    strcpy(bid, b->id);
    CHECK(kbs_session_find(ss, bid, 151) == NULL);
    CHECK(kbs_session_count(ss) == 1 && kbs_session_pending(ss, "10.0.0.1") == 0);
    CHECK_OK(kbs_session_create(ss, "10.0.0.2", 160, 300, &c));
    char wrong[33];
    strcpy(wrong, a->id);
    wrong[31] = wrong[31] == '0' ? '1' : '0';
    CHECK(kbs_session_find(ss, wrong, 160) == NULL);
    CHECK(kbs_session_find(ss, "short", 160) == NULL);
    CHECK(kbs_session_find(ss, "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ", 160) == NULL);
    CHECK(kbs_session_find(ss, NULL, 160) == NULL);
    kbs_session_remove(ss, a);
    CHECK(kbs_session_count(ss) == 1);
    kbs_session_remove(ss, c);
    CHECK(kbs_session_count(ss) == 0 && kbs_session_pending(ss, "10.0.0.2") == 0);
    /* Full of attested sessions: refused. */
    CHECK_OK(kbs_session_create(ss, "10.0.0.1", 100, 200, &a));
    CHECK_OK(kbs_session_create(ss, "10.0.0.1", 100, 200, &b));
    kbs_session_attested(ss, a, 500);
    kbs_session_attested(ss, b, 500);
    CHECK_ST(kbs_session_create(ss, "10.0.0.3", 120, 300, &c), CAI_ERR_LIMIT);
    kbs_sessions_free(ss);
}

/* Issue 15 item 3: twenty addresses asking /auth over and over once filled
 * the table (10,000 sessions held 300 s), and every /auth then failed. Now
 * each address holds a quota of pending sessions, and a full table evicts
 * the oldest pending session of the address holding the most: a legitimate
 * agent's /auth succeeds, and its one session survives the flood until it
 * attests. */
static void test_sessions_flood(void) {
    kbs_sessions *ss = NULL;
    CHECK_OK(kbs_sessions_new(100, 4, &ss));
    if (ss == NULL)
        return;
    kbs_session *s, *agent = NULL, *done = NULL;
    char addr[32];
    /* An agent attested before the flood keeps its session throughout. */
    CHECK_OK(kbs_session_create(ss, "192.168.1.1", 0, 30, &done));
    if (done)
        kbs_session_attested(ss, done, 300);
    int refused = 0;
    for (int i = 0; i < 30; i++) /* bursts of 10 /auth from each address */
        for (int burst = 0; burst < 10; burst++) {
            snprintf(addr, sizeof(addr), "127.0.0.%d", i + 2);
            cai_status st = kbs_session_create(ss, addr, 1, 31, &s);
            if (st == CAI_ERR_LIMIT)
                refused++;
            else
                CHECK_OK(st);
            CHECK(kbs_session_pending(ss, addr) <= 4);
        }
    /* 30 addresses x 4 pending = 120 > 100: the table is full (its oldest
     * pending sessions evicted), and the addresses met their quota. */
    CHECK(kbs_session_count(ss) == 100);
    CHECK(refused == 30 * 6);
    /* The legitimate agent is served, evicting the oldest pending session. */
    CHECK_OK(kbs_session_create(ss, "10.1.1.1", 2, 32, &agent));
    CHECK(agent != NULL && kbs_session_count(ss) == 100);
    char agent_id[33] = "";
    if (agent)
        strcpy(agent_id, agent->id);
    /* The flood goes on, round after round (each address below its quota
     * again after the evictions), and the agent's session becomes the
     * oldest, yet it survives: evictions hit the addresses holding most. */
    for (int round = 0; round < 20; round++)
        for (int i = 0; i < 30; i++) {
            snprintf(addr, sizeof(addr), "127.0.0.%d", i + 2);
            cai_status st = kbs_session_create(ss, addr, 2, 32, &s);
            CHECK(st == CAI_OK || st == CAI_ERR_LIMIT);
        }
    CHECK(kbs_session_count(ss) == 100);
    CHECK(kbs_session_find(ss, agent_id, 3) == agent);
    if (agent)
        kbs_session_attested(ss, agent, 302);
    CHECK(kbs_session_find(ss, done->id, 3) == done);
    /* Pending sessions expire on their own schedule; attested ones stay. */
    CHECK(kbs_session_find(ss, agent_id, 100) == agent);
    CHECK(!kbs_session_over_quota(ss, "127.0.0.2", 100));
    kbs_sessions_free(ss);
}

static void test_token(void) {
    jose_key *k = NULL, *other = NULL;
    CHECK_OK(jose_key_generate(JOSE_KEY_EC_P256, &k));
    CHECK_OK(jose_key_generate(JOSE_KEY_EC_P256, &other));
    json_t *claims = json_pack("{s:s, s:b, s:s}", "tee", "sim", "debug", 0, "tcb_status", "UpToDate");
    json_t *pk = json_pack("{s:s, s:s, s:s, s:s, s:s}", "kty", "EC", "crv", "P-256", "alg",
                           JOSE_ALG_ECDH_ES_A256KW, "x", "x", "y", "y");
    char *t = NULL;
    kbs_token v;
    CHECK_OK(kbs_token_issue(k, claims, pk, "nonce", "00ff", 1000, 300, &t));
    CHECK_OK(kbs_token_verify(k, t, strlen(t), 1100, &v));
    CHECK(json_equal(v.tee_pubkey, pk) && v.evidence_digest && strcmp(v.evidence_digest, "00ff") == 0);
    CHECK(strcmp(json_string_value(json_object_get(v.claims, "tee")), "sim") == 0);
    /* The TD's submodule is "cpu0", where Trustee looks (kbs/src/token/mod.rs
     * TOKEN_TEE_PUBKEY_PATH_EAR = /submods/cpu0/ear.veraison.annotated-evidence/
     * runtime_data_claims/tee-pubkey). */
    const json_t *sub = json_object_get(v.payload, "submods");
    CHECK(json_object_size(sub) == 1 &&
          json_equal(json_object_get(json_object_get(json_object_get(json_object_get(
                                         sub, "cpu0"), "ear.veraison.annotated-evidence"),
                                                     "runtime_data_claims"),
                                     "tee-pubkey"),
                     pk));
    kbs_token_cleanup(&v);
    CHECK_ST(kbs_token_verify(k, t, strlen(t), 1301, &v), CAI_ERR_AUTH);  /* expired */
    /* The callee's detail wrapped intact (issue 15 item 7: it was garbled,
     * "token: token: he token expired"). */
    CHECK(strcmp(cai_errmsg(CAI_ERR_AUTH), "token: jose: the token expired") == 0);
    CHECK_ST(kbs_token_verify(k, t, strlen(t), 999, &v), CAI_ERR_AUTH);   /* not yet */
    CHECK_ST(kbs_token_verify(other, t, strlen(t), 1100, &v), CAI_ERR_AUTH);
    CHECK_ST(kbs_token_verify(k, "a.b.c", 5, 1100, &v), CAI_ERR_AUTH);
    /* A validly signed JWT that is not an affirming attestation result. */
    char *admin = NULL;
    json_t *plain = json_pack("{s:i}", "exp", 5000);
    CHECK_OK(jose_jws_sign(k, plain, NULL, &admin));
    CHECK_ST(kbs_token_verify(k, admin, strlen(admin), 1100, &v), CAI_ERR_AUTH);
    free(admin);
    free(t);
    json_decref(plain);
    json_decref(claims);
    json_decref(pk);
    jose_key_free(k);
    jose_key_free(other);
}

int main(void) {
    RUN(test_request);
    RUN(test_challenge);
    RUN(test_attestation_and_runtime_data);
    RUN(test_attestation_refusals);
    RUN(test_error_shape);
    RUN(test_jwe_fixtures);
    RUN(test_kbs_types_fixtures);
    RUN(test_resource_uri);
    RUN(test_sessions);
    RUN(test_sessions_flood);
    RUN(test_token);
    return test_summary();
}

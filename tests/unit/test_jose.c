/* Tests of common/jcs (RFC 8785) and crypto/jose (JWK, JWE, JWS) against the
 * RFCs' own examples, and of every refusal. */
#include <stdint.h>
#include <string.h>

#include "common/codec.h"
#include "common/jcs.h"
#include "crypto/jose.h"
#include "test.h"

/* ---- JCS ------------------------------------------------------------------ */

static int jcs_is(const char *json_in, const char *want) {
    json_error_t e;
    json_t *v = json_loads(json_in, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    buf b;
    buf_init(&b, 0);
    int ok = v && jcs_serialize(v, &b) == CAI_OK && strcmp((const char *)b.data, want) == 0;
    if (!ok)
        printf("  jcs(%s) = %s, want %s\n", json_in, v && b.data ? (char *)b.data : "(error)",
               want);
    buf_free(&b);
    json_decref(v);
    return ok;
}

static void test_jcs_rfc8785_example(void) {
    /* RFC 8785 3.2.4 (the sample of its reference implementation). */
    CHECK(jcs_is("{\n  \"numbers\": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],"
                 "\n  \"string\": \"\\u20ac$\\u000F\\u000aA'\\u0042\\u0022\\u005c\\\\\\\"\\/\",\n"
                 "  \"literals\": [null, true, false]\n}",
                 "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,1e+30,4.5,0.002,"
                 "1e-27],\"string\":\"\xe2\x82\xac$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}"));
}

static void test_jcs_sorts_by_utf16(void) {
    /* RFC 8785 3.2.3: U+1F600 (a surrogate pair, D83D) sorts before U+FB33. */
    CHECK(jcs_is("{\"\\u20ac\":1,\"\\r\":2,\"\\ufb33\":3,\"1\":4,\"\\ud83d\\ude00\":5,"
                 "\"\\u0080\":6,\"\\u00f6\":7}",
                 "{\"\\r\":2,\"1\":4,\"\xc2\x80\":6,\"\xc3\xb6\":7,\"\xe2\x82\xac\":1,"
                 "\"\xf0\x9f\x98\x80\":5,\"\xef\xac\xb3\":3}"));
    CHECK(jcs_is("{\"b\":{\"d\":1,\"c\":[{\"z\":0,\"a\":0}]},\"a\":\"\"}",
                 "{\"a\":\"\",\"b\":{\"c\":[{\"a\":0,\"z\":0}],\"d\":1}}"));
}

static void test_jcs_numbers(void) {
    /* RFC 8785 Appendix B, checked against ECMAScript (node) String(x). */
    static const struct {
        uint64_t bits;
        const char *want;
    } v[] = {
        {0x0000000000000000, "0"}, {0x8000000000000000, "0"},
        {0x0000000000000001, "5e-324"}, {0x8000000000000001, "-5e-324"},
        {0x7fefffffffffffff, "1.7976931348623157e+308"}, {0x4340000000000000, "9007199254740992"},
        {0x4430000000000000, "295147905179352830000"}, {0x44b52d02c7e14af5, "9.999999999999997e+22"},
        {0x44b52d02c7e14af6, "1e+23"}, {0x44b52d02c7e14af7, "1.0000000000000001e+23"},
        {0x444b1ae4d6e2ef4e, "999999999999999700000"}, {0x444b1ae4d6e2ef4f, "999999999999999900000"},
        {0x444b1ae4d6e2ef50, "1e+21"}, {0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"},
        {0x3eb0c6f7a0b5ed8d, "0.000001"}, {0x41b3de4355555553, "333333333.3333332"},
        {0x41b3de4355555557, "333333333.33333343"}, {0xbecbf647612f3696, "-0.0000033333333333333333"},
        {0x43143ff3c1cb0959, "1424953923781206.2"},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        double d;
        memcpy(&d, &v[i].bits, sizeof(d));
        json_t *j = json_real(d);
        buf b;
        buf_init(&b, 0);
        int ok = jcs_serialize(j, &b) == CAI_OK && strcmp((char *)b.data, v[i].want) == 0;
        if (!ok)
            printf("  %016llx -> %s, want %s\n", (unsigned long long)v[i].bits,
                   b.data ? (char *)b.data : "(error)", v[i].want);
        CHECK(ok);
        buf_free(&b);
        json_decref(j);
    }
    CHECK(jcs_is("[1, -7, 9007199254740993, 0]", "[1,-7,9007199254740992,0]"));
    uint64_t nan = 0x7fffffffffffffff, inf = 0x7ff0000000000000;
    double d;
    buf b;
    buf_init(&b, 0);
    memcpy(&d, &nan, sizeof(d));
    json_t *j = json_real(d); /* jansson refuses NaN: j is NULL */
    CHECK(j == NULL || jcs_serialize(j, &b) == CAI_ERR_FORMAT);
    json_decref(j);
    memcpy(&d, &inf, sizeof(d));
    j = json_real(d);
    CHECK(j == NULL || jcs_serialize(j, &b) == CAI_ERR_FORMAT);
    json_decref(j);
    buf_free(&b);
}

static void test_jcs_strings(void) {
    CHECK(jcs_is("\"\\u0000\\u0001\\b\\t\\n\\u000b\\f\\r\\u001f \\u007f\"",
                 "\"\\u0000\\u0001\\b\\t\\n\\u000b\\f\\r\\u001f \x7f\""));
    CHECK(jcs_is("\"\\/\\\"\\\\\"", "\"/\\\"\\\\\""));
}

/* ---- Concat KDF ----------------------------------------------------------- */

static void test_concat_kdf_rfc7518(void) {
    /* RFC 7518 Appendix C: Z of Alice's ephemeral and Bob's static P-256 key,
     * AlgorithmID "A128GCM", apu "Alice", apv "Bob" -> VqqN6vgjbSBcIijNcacQGg. */
    static const uint8_t z[32] = {158, 86,  217, 29,  129, 113, 53,  211, 114, 131, 66,
                                  131, 191, 132, 38,  156, 251, 49,  110, 163, 218, 128,
                                  106, 72,  246, 218, 167, 121, 140, 254, 144, 196};
    uint8_t k[16];
    char b64[32];
    CHECK_OK(jose_concat_kdf(z, sizeof(z), "A128GCM", (const uint8_t *)"Alice", 5,
                             (const uint8_t *)"Bob", 3, k, sizeof(k)));
    b64_encode(b64, k, sizeof(k), B64_URL);
    CHECK(strcmp(b64, "VqqN6vgjbSBcIijNcacQGg") == 0);
}

/* ---- JWK ------------------------------------------------------------------ */

static json_t *jwk(const char *s) {
    json_error_t e;
    return json_loads(s, 0, &e);
}

static void test_jwk_round_trip(void) {
    jose_key_type types[] = {JOSE_KEY_EC_P256, JOSE_KEY_RSA, JOSE_KEY_ED25519, JOSE_KEY_EC_P521};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        jose_key *k = NULL, *p = NULL;
        json_t *j = NULL;
        CHECK_OK(jose_key_generate(types[i], &k));
        CHECK_OK(jose_key_to_jwk(k, "x-alg", &j));
        CHECK(j && strcmp(json_string_value(json_object_get(j, "alg")), "x-alg") == 0);
        CHECK_OK(jose_key_from_jwk(j, &p));
        CHECK(jose_key_public_equal(k, p));
        CHECK(p && jose_key_type_of(p) == types[i]);
        json_decref(j);
        jose_key_free(p);
        jose_key_free(k);
    }
}

static void test_jwk_refusals(void) {
    const char *bad[] = {
        /* RFC 7518 C's x with y + 1: not on the curve */
        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"weNJy2HscCSM6AEDTDg04biOvhFhyyWvOHQfeF_PxMQ\","
        "\"y\":\"e8lnCO-AlStT-NJVX-crhB7QRYhiix03illJOVAOyco\"}",
        /* 31-byte coordinate */
        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"NJy2HscCSM6AEDTDg04biOvhFhyyWvOHQfeF_PxM\","
        "\"y\":\"e8lnCO-AlStT-NJVX-crhB7QRYhiix03illJOVAOyck\"}",
        "{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"AA\",\"y\":\"AA\"}",
        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"weNJy2HscCSM6AEDTDg04biOvhFhyyWvOHQfeF/PxMQ\","
        "\"y\":\"e8lnCO-AlStT-NJVX-crhB7QRYhiix03illJOVAOyck\"}", /* '/' is not base64url */
        "{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}",        /* a 17-bit modulus */
        "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AAAA\"}",
        "{\"kty\":\"oct\",\"k\":\"AAAA\"}",
        "{\"crv\":\"P-256\"}",
        /* RFC 7520 3.2's P-521 key with its x shortened to 65 bytes (the
         * leading zero dropped): the full 66 bytes are required */
        "{\"kty\":\"EC\",\"crv\":\"P-521\",\"x\":\"cpkss6wI7PPlxj3t7A1RqMH3nvL4L5Tzxze_XeeYZnHqxiX-"
        "gle70DlGRMqqOq-PJ6RYX7vK8PJFdiAIXlyPQq0\",\"y\":\"AdymlHvOiLxXkEhayXQnNCvDX4h9htZaCJN34kfm"
        "C6pV5OhQHiraVySsUdaQkAgDPrwQrJmbnX9cwlGfP-HqHZR1\"}",
        /* the same key with y's last bit flipped: not on the curve */
        "{\"kty\":\"EC\",\"crv\":\"P-521\",\"x\":\"AHKZLLOsCOzz5cY97ewNUajB957y-C-U88c3v13nmGZx6sYl_"
        "oJXu9A5RkTKqjqvjyekWF-7ytDyRXYgCF5cj0Kt\",\"y\":\"AdymlHvOiLxXkEhayXQnNCvDX4h9htZaCJN34kfm"
        "C6pV5OhQHiraVySsUdaQkAgDPrwQrJmbnX9cwlGfP-HqHZR0\"}",
        /* a P-256 key labelled P-521 */
        "{\"kty\":\"EC\",\"crv\":\"P-521\",\"x\":\"weNJy2HscCSM6AEDTDg04biOvhFhyyWvOHQfeF_PxMQ\","
        "\"y\":\"e8lnCO-AlStT-NJVX-crhB7QRYhiix03illJOVAOyck\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *j = jwk(bad[i]);
        jose_key *k = NULL;
        cai_status st = jose_key_from_jwk(j, &k);
        if (st == CAI_OK)
            printf("  accepted: %s\n", bad[i]);
        CHECK(st != CAI_OK && k == NULL);
        json_decref(j);
    }
}

/* ---- JWE ------------------------------------------------------------------ */

static void jwe_round_trip(jose_key_type t, const char *alg) {
    static const char msg[] = "the model key: 32 bytes of secret";
    jose_key *k = NULL, *pub = NULL, *other = NULL;
    json_t *j = NULL, *jwe = NULL;
    buf out;
    buf_init(&out, 0);
    CHECK_OK(jose_key_generate(t, &k));
    CHECK_OK(jose_key_generate(t, &other));
    CHECK_OK(jose_key_to_jwk(k, alg, &j));
    CHECK_OK(jose_key_from_jwk(j, &pub));
    CHECK_OK(jose_jwe_encrypt(pub, alg, msg, sizeof(msg), &jwe));
    CHECK_OK(jose_jwe_decrypt(k, jwe, &out));
    CHECK(out.len == sizeof(msg) && memcmp(out.data, msg, sizeof(msg)) == 0);
    buf_free(&out);
    /* The wrong private key gets nothing. */
    CHECK_ST(jose_jwe_decrypt(other, jwe, &out), CAI_ERR_AUTH);
    CHECK(out.len == 0);

    /* Any change to any member is refused. */
    const char *members[] = {"protected", "encrypted_key", "iv", "ciphertext", "tag"};
    for (size_t m = 0; m < 5; m++) {
        json_t *copy = json_deep_copy(jwe);
        const char *s = json_string_value(json_object_get(copy, members[m]));
        char *t2 = strdup(s);
        size_t at = strlen(t2) / 2;
        t2[at] = t2[at] == 'A' ? 'B' : 'A';
        json_object_set_new(copy, members[m], json_string(t2));
        cai_status st = jose_jwe_decrypt(k, copy, &out);
        if (st == CAI_OK)
            printf("  accepted a changed %s\n", members[m]);
        CHECK(st != CAI_OK && out.len == 0);
        free(t2);
        json_decref(copy);
    }
    /* Extra AAD not covered by the sender, and unprotected headers. */
    json_t *copy = json_deep_copy(jwe);
    json_object_set_new(copy, "aad", json_string("eHh4"));
    CHECK_ST(jose_jwe_decrypt(k, copy, &out), CAI_ERR_AUTH);
    json_object_del(copy, "aad");
    json_object_set_new(copy, "unprotected", json_pack("{s:s}", "alg", "dir"));
    CHECK_ST(jose_jwe_decrypt(k, copy, &out), CAI_ERR_UNSUPPORTED);
    json_decref(copy);
    json_decref(jwe);
    json_decref(j);
    jose_key_free(k);
    jose_key_free(pub);
    jose_key_free(other);
}

static void test_jwe_ecdh_es_a256kw(void) {
    jwe_round_trip(JOSE_KEY_EC_P256, JOSE_ALG_ECDH_ES_A256KW);
}

static void test_jwe_ecdh_es_a256kw_p521(void) {
    jwe_round_trip(JOSE_KEY_EC_P521, JOSE_ALG_ECDH_ES_A256KW);
}

/* RFC 7520 3.2's P-521 public key (bilbo.baggins@hobbiton.example) loads
 * and comes back unchanged; a JWE to it carries a P-521 epk of 66-byte
 * coordinates; a P-256 epk in a JWE for a P-521 key is refused. */
static void test_p521_rfc7520_key(void) {
    static const char *pub =
        "{\"kty\":\"EC\",\"crv\":\"P-521\",\"x\":\"AHKZLLOsCOzz5cY97ewNUajB957y-C-U88c3v13nmGZx6sYl_"
        "oJXu9A5RkTKqjqvjyekWF-7ytDyRXYgCF5cj0Kt\",\"y\":\"AdymlHvOiLxXkEhayXQnNCvDX4h9htZaCJN34kfm"
        "C6pV5OhQHiraVySsUdaQkAgDPrwQrJmbnX9cwlGfP-HqHZR1\"}";
    json_t *j = jwk(pub), *back = NULL, *jwe = NULL, *hdr = NULL;
    jose_key *k = NULL, *mine = NULL;
    buf h, out;
    buf_init(&out, 0);
    CHECK_OK(jose_key_from_jwk(j, &k));
    CHECK(k && jose_key_type_of(k) == JOSE_KEY_EC_P521);
    if (k == NULL)
        goto out;
    CHECK_OK(jose_key_to_jwk(k, NULL, &back));
    CHECK(back && json_equal(back, j));
    CHECK_OK(jose_jwe_encrypt(k, JOSE_ALG_ECDH_ES_A256KW, "x", 1, &jwe));
    const char *p = json_string_value(json_object_get(jwe, "protected"));
    CHECK_OK(jose_b64url_decode(p, strlen(p), 4096, &h));
    json_error_t e;
    hdr = json_loadb((const char *)h.data, h.len, 0, &e);
    buf_free(&h);
    const json_t *epk = json_object_get(hdr, "epk");
    CHECK(strcmp(json_string_value(json_object_get(epk, "crv")), "P-521") == 0);
    CHECK(json_string_length(json_object_get(epk, "x")) == 88);
    /* A JWE whose epk is on another curve than the recipient's key. */
    jose_key *p256 = NULL;
    json_t *p256_jwk = NULL, *bad = NULL;
    CHECK_OK(jose_key_generate(JOSE_KEY_EC_P521, &mine));
    CHECK_OK(jose_key_generate(JOSE_KEY_EC_P256, &p256));
    CHECK_OK(jose_key_to_jwk(p256, NULL, &p256_jwk));
    CHECK_OK(jose_jwe_encrypt(mine, JOSE_ALG_ECDH_ES_A256KW, "x", 1, &bad));
    buf ph;
    CHECK_OK(jose_jwe_protected_b64(JOSE_ALG_ECDH_ES_A256KW, JOSE_ENC_A256GCM, "P-256",
                                    json_string_value(json_object_get(p256_jwk, "x")),
                                    json_string_value(json_object_get(p256_jwk, "y")), &ph));
    json_object_set_new(bad, "protected", json_string((const char *)ph.data));
    buf_free(&ph);
    CHECK_ST(jose_jwe_decrypt(mine, bad, &out), CAI_ERR_FORMAT);
    CHECK(out.len == 0);
    json_decref(bad);
    json_decref(p256_jwk);
    jose_key_free(p256);
out:
    jose_key_free(mine);
    json_decref(hdr);
    json_decref(jwe);
    json_decref(back);
    json_decref(j);
    jose_key_free(k);
}

static void test_jwe_rsa_oaep_256(void) {
    jwe_round_trip(JOSE_KEY_RSA, JOSE_ALG_RSA_OAEP_256);
}

static void test_jwe_protected_header_bytes(void) {
    /* The protected header is what Trustee's client re-serializes for the AAD:
     * {"alg":..,"enc":..,"epk":{"crv","kty","x","y"}} with nothing else. */
    jose_key *k = NULL;
    json_t *jwe = NULL;
    buf h;
    CHECK_OK(jose_key_generate(JOSE_KEY_EC_P256, &k));
    CHECK_OK(jose_jwe_encrypt(k, JOSE_ALG_ECDH_ES_A256KW, "x", 1, &jwe));
    const char *p = json_string_value(json_object_get(jwe, "protected"));
    CHECK_OK(jose_b64url_decode(p, strlen(p), 4096, &h));
    CHECK_OK(buf_terminate(&h));
    const char *want = "{\"alg\":\"ECDH-ES+A256KW\",\"enc\":\"A256GCM\",\"epk\":{\"crv\":\"P-256\","
                       "\"kty\":\"EC\",\"x\":\"";
    CHECK(h.data && strncmp((char *)h.data, want, strlen(want)) == 0);
    json_error_t e;
    json_t *hj = json_loads((char *)h.data, 0, &e);
    CHECK(hj && json_object_size(hj) == 3 && json_object_size(json_object_get(hj, "epk")) == 4);
    json_t *epk = json_object_get(hj, "epk");
    char *compact = json_dumps(hj, JSON_COMPACT | JSON_SORT_KEYS);
    CHECK(compact && strcmp(compact, (char *)h.data) == 0);
    free(compact);
    CHECK(epk && strlen(json_string_value(json_object_get(epk, "x"))) == 43);
    json_decref(hj);
    json_decref(jwe);
    buf_free(&h);
    /* A key of the other kind is refused, not silently used. */
    CHECK_ST(jose_jwe_encrypt(k, JOSE_ALG_RSA_OAEP_256, "x", 1, &jwe), CAI_ERR_UNSUPPORTED);
    jose_key_free(k);
}

/* ---- JWS ------------------------------------------------------------------ */

static jose_key *pub_from(const char *s) {
    json_t *j = jwk(s);
    jose_key *k = NULL;
    if (jose_key_from_jwk(j, &k) != CAI_OK)
        k = NULL;
    json_decref(j);
    return k;
}

static void test_jws_rfc7515_es256(void) {
    /* RFC 7515 Appendix A.3. */
    jose_key *k = pub_from("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
                           "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}");
    const char *jws = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6"
                      "Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXF"
                      "CgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
    json_t *p = NULL;
    CHECK(k != NULL);
    CHECK_OK(jose_jws_verify(k, jws, strlen(jws), &p));
    CHECK(p && json_integer_value(json_object_get(p, "exp")) == 1300819380);
    CHECK(jose_jwt_check_time(p, 1300819380, 0, 1) == CAI_OK);
    CHECK(jose_jwt_check_time(p, 1300819381, 0, 1) == CAI_ERR_AUTH);
    json_decref(p);
    char *t = strdup(jws);
    t[strlen(t) - 5] ^= 1; /* one bit of the signature */
    CHECK_ST(jose_jws_verify(k, t, strlen(t), &p), CAI_ERR_AUTH);
    free(t);
    jose_key_free(k);
}

static void test_jws_rfc8037_eddsa(void) {
    /* RFC 8037 A.4: the payload is text, not JSON, so a verified signature
     * ends in CAI_ERR_FORMAT (payload), a flipped bit in CAI_ERR_AUTH. */
    jose_key *k = pub_from("{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}");
    const char *jws = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1"
                      "PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";
    json_t *p = NULL;
    CHECK(k != NULL);
    CHECK_ST(jose_jws_verify(k, jws, strlen(jws), &p), CAI_ERR_FORMAT);
    char *t = strdup(jws);
    t[strlen(t) - 3] = t[strlen(t) - 3] == 'A' ? 'B' : 'A';
    CHECK_ST(jose_jws_verify(k, t, strlen(t), &p), CAI_ERR_AUTH);
    free(t);
    jose_key_free(k);
}

static void test_jws_round_trip_and_refusals(void) {
    jose_key *ec = NULL, *ed = NULL, *ec2 = NULL;
    CHECK_OK(jose_key_generate(JOSE_KEY_EC_P256, &ec));
    CHECK_OK(jose_key_generate(JOSE_KEY_EC_P256, &ec2));
    CHECK_OK(jose_key_generate(JOSE_KEY_ED25519, &ed));
    json_t *claims = json_pack("{s:i, s:s}", "exp", 2000000000, "sub", "x");
    char *a = NULL, *b = NULL;
    json_t *p = NULL;
    CHECK_OK(jose_jws_sign(ec, claims, "k1", &a));
    CHECK_OK(jose_jws_sign(ed, claims, NULL, &b));
    CHECK_OK(jose_jws_verify(ec, a, strlen(a), &p));
    CHECK(p && json_equal(p, claims));
    json_decref(p);
    CHECK_OK(jose_jws_verify(ed, b, strlen(b), &p));
    json_decref(p);
    /* Another key, the other algorithm, "none", extra parts. */
    CHECK_ST(jose_jws_verify(ec2, a, strlen(a), &p), CAI_ERR_AUTH);
    CHECK_ST(jose_jws_verify(ed, a, strlen(a), &p), CAI_ERR_AUTH);
    CHECK_ST(jose_jws_verify(ec, b, strlen(b), &p), CAI_ERR_AUTH);
    const char *none = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.";
    CHECK(jose_jws_verify(ec, none, strlen(none), &p) != CAI_OK);
    char *extra = malloc(strlen(a) + 3);
    sprintf(extra, "%s.x", a);
    CHECK_ST(jose_jws_verify(ec, extra, strlen(extra), &p), CAI_ERR_FORMAT);
    free(extra);
    /* A payload swapped under a valid header and signature. */
    char *dot = strchr(a, '.');
    char *swapped = malloc(strlen(a) + 64);
    sprintf(swapped, "%.*s.eyJzdWIiOiJhZG1pbiJ9%s", (int)(dot - a), a, strrchr(a, '.'));
    CHECK_ST(jose_jws_verify(ec, swapped, strlen(swapped), &p), CAI_ERR_AUTH);
    free(swapped);
    CHECK(p == NULL);
    free(a);
    free(b);
    json_decref(claims);
    jose_key_free(ec);
    jose_key_free(ec2);
    jose_key_free(ed);
}

static void test_jwt_time(void) {
    json_t *c = json_pack("{s:i, s:i}", "exp", 1000, "nbf", 900);
    CHECK_OK(jose_jwt_check_time(c, 950, 0, 1));
    CHECK_ST(jose_jwt_check_time(c, 1001, 0, 1), CAI_ERR_AUTH);
    CHECK_OK(jose_jwt_check_time(c, 1001, 60, 1));
    CHECK_ST(jose_jwt_check_time(c, 899, 0, 1), CAI_ERR_AUTH);
    json_object_del(c, "exp");
    CHECK_ST(jose_jwt_check_time(c, 950, 0, 1), CAI_ERR_AUTH);
    CHECK_OK(jose_jwt_check_time(c, 950, 0, 0));
    json_object_set_new(c, "nbf", json_string("900"));
    CHECK_ST(jose_jwt_check_time(c, 950, 0, 0), CAI_ERR_FORMAT);
    json_decref(c);
}

/* exp and nbf at the ends of the integer range: the sums with the leeway
 * are computed with checked arithmetic and compared as exact integers (a
 * plain sum overflows, which aborts the UBSan build and elsewhere wraps an
 * expiry into the past or a start into the future). */
static void test_jwt_time_extremes(void) {
    json_t *c = json_pack("{s:I}", "exp", (json_int_t)INT64_MAX);
    CHECK_OK(jose_jwt_check_time(c, 950, 0, 1));
    CHECK_OK(jose_jwt_check_time(c, 950, 60, 1)); /* exp + 60 is past INT64_MAX */
    json_object_set_new(c, "exp", json_integer(INT64_MAX - 30));
    CHECK_OK(jose_jwt_check_time(c, 950, 60, 1));
    json_object_set_new(c, "exp", json_integer(INT64_MIN));
    CHECK_ST(jose_jwt_check_time(c, 950, 0, 1), CAI_ERR_AUTH);
    CHECK_ST(jose_jwt_check_time(c, 950, -1, 1), CAI_ERR_AUTH); /* below INT64_MIN */
    json_object_set_new(c, "exp", json_integer(2000));
    json_object_set_new(c, "nbf", json_integer(INT64_MAX));
    CHECK_ST(jose_jwt_check_time(c, 950, 60, 1), CAI_ERR_AUTH);
    json_object_set_new(c, "nbf", json_integer(INT64_MIN));
    CHECK_OK(jose_jwt_check_time(c, 950, 60, 1));
    /* |now| plus the leeway out of range */
    json_object_del(c, "exp");
    json_object_set_new(c, "nbf", json_integer(900));
    CHECK_OK(jose_jwt_check_time(c, (time_t)INT64_MAX - 10, 60, 0));
    CHECK_ST(jose_jwt_check_time(c, (time_t)INT64_MIN + 10, -60, 0), CAI_ERR_AUTH);
    json_object_set_new(c, "exp", json_integer(2000));
    CHECK_ST(jose_jwt_check_time(c, (time_t)INT64_MAX - 10, 60, 0), CAI_ERR_AUTH);
    json_decref(c);
}

static void test_pem_round_trip(void) {
    jose_key *k = NULL, *k2 = NULL, *pub = NULL;
    buf priv, pubpem;
    buf_init(&priv, 0);
    buf_init(&pubpem, 0);
    CHECK_OK(jose_key_generate(JOSE_KEY_ED25519, &k));
    CHECK_OK(jose_key_to_pem(k, 1, &priv));
    CHECK_OK(jose_key_to_pem(k, 0, &pubpem));
    CHECK(strstr((char *)priv.data, "BEGIN PRIVATE KEY") != NULL);
    CHECK(strstr((char *)pubpem.data, "BEGIN PUBLIC KEY") != NULL);
    CHECK_OK(jose_key_from_pem((char *)priv.data, priv.len, &k2));
    CHECK_OK(jose_key_from_pem((char *)pubpem.data, pubpem.len, &pub));
    CHECK(jose_key_public_equal(k, k2) && jose_key_public_equal(k, pub));
    /* A private key read back signs; its public half verifies. */
    json_t *c = json_pack("{s:s}", "a", "b"), *p = NULL;
    char *t = NULL;
    CHECK_OK(jose_jws_sign(k2, c, NULL, &t));
    CHECK_OK(jose_jws_verify(pub, t, t ? strlen(t) : 0, &p));
    jose_key *bad = NULL;
    CHECK_ST(jose_key_from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", 56, &bad),
             CAI_ERR_FORMAT);
    CHECK(bad == NULL);
    free(t);
    json_decref(c);
    json_decref(p);
    buf_free(&priv);
    buf_free(&pubpem);
    jose_key_free(k);
    jose_key_free(k2);
    jose_key_free(pub);
}

int main(void) {
    RUN(test_jcs_rfc8785_example);
    RUN(test_jcs_sorts_by_utf16);
    RUN(test_jcs_numbers);
    RUN(test_jcs_strings);
    RUN(test_concat_kdf_rfc7518);
    RUN(test_jwk_round_trip);
    RUN(test_jwk_refusals);
    RUN(test_jwe_ecdh_es_a256kw);
    RUN(test_jwe_ecdh_es_a256kw_p521);
    RUN(test_p521_rfc7520_key);
    RUN(test_jwe_rsa_oaep_256);
    RUN(test_jwe_protected_header_bytes);
    RUN(test_jws_rfc7515_es256);
    RUN(test_jws_rfc8037_eddsa);
    RUN(test_jws_round_trip_and_refusals);
    RUN(test_jwt_time);
    RUN(test_jwt_time_extremes);
    RUN(test_pem_round_trip);
    return test_summary();
}

/* fuzz_kbs.c - the key broker's parsers of untrusted bytes: every KBS
 * protocol message (with CoCo's init-data and additional evidence), the
 * init-data TOML, JWKs (P-256, P-521, RSA, Ed25519), JWEs and JWSs.
 * Properties: no crash, no JWE or JWS accepted without the key, JCS a fixed
 * point (JCS(JCS(x)) = JCS(x)), init-data's [data] the same after writing
 * it back as TOML and reading it again. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jcs.h"
#include "crypto/jose.h"
#include "kbs/initdata.h"
#include "kbs/protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static jose_key *ec, *ed, *ec521;

/* A TOML basic string for |s|: quotes, backslashes and control characters
 * escaped. */
static int toml_string(buf *b, const char *s) {
    if (buf_append_u8(b, '"') != CAI_OK)
        return 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        if (c == '"' || c == '\\' || c < 0x20 || c == 0x7F) {
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            if (buf_append_str(b, esc) != CAI_OK)
                return 0;
        } else if (buf_append_u8(b, c) != CAI_OK) {
            return 0;
        }
    }
    return buf_append_u8(b, '"') == CAI_OK;
}

/* Parsed init-data, written back as TOML and read again: the same entries. */
static void check_initdata(const kbs_initdata *d) {
    if (d->data == NULL || !json_is_object(d->data))
        abort();
    buf b;
    buf_init(&b, 1 << 24);
    int ok = buf_printf(&b, "version = \"0.1.0\"\nalgorithm = \"%s\"\n[data]\n", d->algorithm) ==
             CAI_OK;
    const char *k;
    json_t *v;
    json_object_foreach(d->data, k, v) {
        if (!json_is_string(v))
            abort();
        ok = ok && toml_string(&b, k) && buf_append_str(&b, " = ") == CAI_OK &&
             toml_string(&b, json_string_value(v)) && buf_append_u8(&b, '\n') == CAI_OK;
    }
    kbs_initdata back;
    if (ok && b.len <= KBS_INITDATA_MAX) {
        if (kbs_initdata_parse((const char *)b.data, b.len, &back) != CAI_OK ||
            !json_equal(back.data, d->data))
            abort();
        kbs_initdata_cleanup(&back);
    }
    buf_free(&b);
}

static void check_jcs(const json_t *j) {
    buf a, b;
    buf_init(&a, 1 << 22);
    buf_init(&b, 1 << 22);
    if (jcs_serialize(j, &a) == CAI_OK) {
        /* Canonical JSON re-read (jansson refuses integers beyond 64 bits,
         * which ECMAScript number formatting may print) is a fixed point. */
        json_t *back = NULL;
        if (kbs_json_parse(a.data, a.len, &back) == CAI_OK &&
            (jcs_serialize(back, &b) != CAI_OK || a.len != b.len ||
             memcmp(a.data, b.data, a.len) != 0))
            abort();
        json_decref(back);
    }
    buf_free(&a);
    buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (ec == NULL && (jose_key_generate(JOSE_KEY_EC_P256, &ec) != CAI_OK ||
                       jose_key_generate(JOSE_KEY_ED25519, &ed) != CAI_OK ||
                       jose_key_generate(JOSE_KEY_EC_P521, &ec521) != CAI_OK))
        abort();
    /* The bytes as an init-data body. */
    kbs_initdata d;
    if (kbs_initdata_parse((const char *)data, size, &d) == CAI_OK)
        check_initdata(&d);
    kbs_initdata_cleanup(&d);
    json_t *j = NULL, *tmp = NULL;
    if (kbs_json_parse(data, size, &j) == CAI_OK) {
        char tee[32];
        const char *nonce;
        kbs_hash h;
        kbs_attestation a;
        jose_key *k = NULL;
        buf out;
        (void)kbs_request_check(j, tee, sizeof(tee));
        (void)kbs_challenge_parse(j, &nonce, &h);
        if (kbs_attestation_parse(j, &a) == CAI_OK) {
            uint8_t rd[64];
            (void)kbs_runtime_data_digest(a.nonce, a.tee_pubkey, a.additional_evidence, h, rd);
            if (a.has_init_data)
                check_initdata(&a.init_data);
            if ((a.additional != NULL) != (a.additional_evidence[0] != '\0') ||
                (a.additional && !json_is_object(a.additional)))
                abort();
            kbs_attestation_cleanup(&a);
        }
        kbs_initdata id;
        if (kbs_initdata_from_json(j, &id) == CAI_OK)
            check_initdata(&id);
        kbs_initdata_cleanup(&id);
        if (kbs_tee_pubkey_normalize(j, &tmp) == CAI_OK)
            json_decref(tmp);
        if (jose_key_from_jwk(j, &k) == CAI_OK)
            jose_key_free(k);
        if (jose_jwe_decrypt(ec, j, &out) == CAI_OK)
            abort(); /* nobody else can encrypt to this key */
        buf_free(&out);
        if (jose_jwe_decrypt(ec521, j, &out) == CAI_OK)
            abort();
        buf_free(&out);
        check_jcs(j);
        json_decref(j);
    }
    json_t *p = NULL;
    if (jose_jws_verify(ec, (const char *)data, size, &p) == CAI_OK ||
        jose_jws_verify(ed, (const char *)data, size, &p) == CAI_OK)
        abort(); /* no forgeries */
    return 0;
}

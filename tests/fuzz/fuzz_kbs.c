/* fuzz_kbs.c - the key broker's parsers of untrusted bytes: every KBS
 * protocol message, JWKs, JWEs and JWSs. Properties: no crash, no JWE or
 * JWS accepted without the key, JCS a fixed point (JCS(JCS(x)) = JCS(x)). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/jcs.h"
#include "crypto/jose.h"
#include "kbs/protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static jose_key *ec, *ed;

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
                       jose_key_generate(JOSE_KEY_ED25519, &ed) != CAI_OK))
        abort();
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
            kbs_attestation_cleanup(&a);
        }
        if (kbs_tee_pubkey_normalize(j, &tmp) == CAI_OK)
            json_decref(tmp);
        if (jose_key_from_jwk(j, &k) == CAI_OK)
            jose_key_free(k);
        if (jose_jwe_decrypt(ec, j, &out) == CAI_OK)
            abort(); /* nobody else can encrypt to this key */
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

/* jose.h - the parts of JOSE the KBS protocol uses, on OpenSSL 3.
 *
 *   JWK  (RFC 7517/7518 6): EC P-256 and P-521, RSA and Ed25519 (RFC 8037)
 *        public keys
 *   JWE  (RFC 7516), flattened JSON serialization, "enc" A256GCM, with
 *        "alg" ECDH-ES+A256KW (Concat KDF, RFC 7518 4.6) or RSA-OAEP-256
 *   JWS  (RFC 7515), compact serialization, ES256 or EdDSA: the JWTs of the
 *        attestation token and of the admin API
 *
 * Verification is strict: the algorithm comes from the key, never from the
 * token ("none" and algorithm switches are refused), signatures have their
 * exact length, JSON is parsed with duplicate names refused. */
#ifndef CAI_CRYPTO_JOSE_H
#define CAI_CRYPTO_JOSE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "common/buf.h"
#include "common/status.h"

#define JOSE_ALG_ECDH_ES_A256KW "ECDH-ES+A256KW"
#define JOSE_ALG_RSA_OAEP_256 "RSA-OAEP-256"
#define JOSE_ENC_A256GCM "A256GCM"
#define JOSE_JWS_MAX (256u * 1024u) /* named limit: a compact JWS */
#define JOSE_JWE_MAX (4u << 20)     /* named limit: a JWE's plaintext */

typedef enum {
    JOSE_KEY_EC_P256 = 1,
    JOSE_KEY_RSA = 2, /* generated with 3072 bits; at least 2048 accepted */
    JOSE_KEY_ED25519 = 3,
    JOSE_KEY_EC_P521 = 4, /* ECDH-ES+A256KW only (a TEE key CoCo's agent may send) */
} jose_key_type;

/* A public key, or a key pair. */
typedef struct jose_key jose_key;

/* jose_key_generate makes a new key pair of type |t| in |*out|. */
cai_status jose_key_generate(jose_key_type t, jose_key **out) CAI_WUR;

/* jose_key_free frees |k| (OpenSSL wipes private parts); NULL is fine. */
void jose_key_free(jose_key *k);

jose_key_type jose_key_type_of(const jose_key *k);

/* jose_key_from_jwk reads the public key in |jwk|: kty EC (crv P-256, x, y:
 * 32 bytes each, or crv P-521, 66 bytes each; on the curve), RSA (n of 2048..8192 bits, e) or OKP (crv
 * Ed25519, x). Other members ("alg", "kid", "use") are ignored here. */
cai_status jose_key_from_jwk(const json_t *jwk, jose_key **out) CAI_WUR;

/* jose_key_to_jwk sets |*out| to the JWK of |k|'s public key, with "alg"
 * |alg| when not NULL. Members in RFC 7638 order. */
cai_status jose_key_to_jwk(const jose_key *k, const char *alg, json_t **out) CAI_WUR;

/* jose_key_from_pem reads a PEM private key (PKCS#8) or public key (SPKI). */
cai_status jose_key_from_pem(const char *pem, size_t len, jose_key **out) CAI_WUR;

/* jose_key_to_pem appends the PEM of the private key (|priv| = 1, PKCS#8)
 * or the public key (SPKI) to |out|, NUL-terminated. */
cai_status jose_key_to_pem(const jose_key *k, int priv, buf *out) CAI_WUR;

/* jose_key_public_equal returns 1 if the public parts of |a| and |b| are the
 * same key. */
int jose_key_public_equal(const jose_key *a, const jose_key *b);

/* jose_concat_kdf is the Concat KDF of NIST SP 800-56A with SHA-256 as
 * RFC 7518 4.6.2 uses it: AlgorithmID |alg|, PartyUInfo |apu|, PartyVInfo
 * |apv| (may be empty), SuppPubInfo the bit length of |out_len|. */
cai_status jose_concat_kdf(const uint8_t *z, size_t z_len, const char *alg, const uint8_t *apu,
                           size_t apu_len, const uint8_t *apv, size_t apv_len, uint8_t *out,
                           size_t out_len) CAI_WUR;

/* jose_jwe_protected_b64 writes to |out| (initialised here, NUL-terminated)
 * the base64url of the compact JSON protected header {"alg","enc"} or, with
 * |epk_crv|, |epk_x| and |epk_y|, {"alg","enc","epk":{"crv","kty":"EC","x","y"}}:
 * byte for byte what Trustee's clients re-serialize (kbs-types
 * ProtectedHeader::generate_aad, serde with sorted maps) and use as the AAD. */
cai_status jose_jwe_protected_b64(const char *alg, const char *enc, const char *epk_crv,
                                  const char *epk_x, const char *epk_y, buf *out) CAI_WUR;

/* jose_jwe_encrypt encrypts |n| bytes to |recipient| with |alg|
 * (JOSE_ALG_ECDH_ES_A256KW for an EC key, P-256 or P-521, with an ephemeral
 * key on the same curve; JOSE_ALG_RSA_OAEP_256 for RSA)
 * and A256GCM, setting |*out| to the flattened JWE {protected,
 * encrypted_key, iv, ciphertext, tag}. The protected header is compact JSON
 * with "alg", "enc", then "epk" with sorted members: byte for byte what
 * Trustee's clients re-serialize as the AAD. */
cai_status jose_jwe_encrypt(const jose_key *recipient, const char *alg, const void *data,
                            size_t n, json_t **out) CAI_WUR;

/* jose_jwe_decrypt decrypts the flattened JWE |jwe| with the private key
 * |k| into |out| (initialised here; wiped on free). Refuses any algorithm
 * other than the one |k| is for, "zip", "crit", unprotected headers, and a
 * wrong key or tag (CAI_ERR_AUTH, nothing released). */
cai_status jose_jwe_decrypt(const jose_key *k, const json_t *jwe, buf *out) CAI_WUR;

/* jose_jws_sign signs the JSON |payload| with |k| (ES256 for EC P-256,
 * EdDSA for Ed25519) as a compact JWS with header {"alg","typ":"JWT"} and
 * "kid" when not NULL. |*out| is malloc'd. */
cai_status jose_jws_sign(const jose_key *k, const json_t *payload, const char *kid,
                         char **out) CAI_WUR;

/* jose_jws_verify checks the compact JWS |jws| (|len| bytes) with the public
 * key |k| and sets |*payload| to its JSON object payload. The header's "alg"
 * must be the one |k| is for; "crit" is refused. CAI_ERR_AUTH when the
 * signature does not verify, CAI_ERR_FORMAT when malformed. */
cai_status jose_jws_verify(const jose_key *k, const char *jws, size_t len,
                           json_t **payload) CAI_WUR;

/* jose_jwt_check_time checks the JWT claims "exp" and "nbf" (integers,
 * seconds) against |now| with |leeway| seconds; "exp" must be present when
 * |require_exp|. CAI_ERR_AUTH with the reason when outside. The sums with
 * the leeway are compared exactly, also where they do not fit in 64 bits. */
cai_status jose_jwt_check_time(const json_t *claims, time_t now, long leeway,
                               int require_exp) CAI_WUR;

/* jose_b64url appends the unpadded base64url encoding of |n| bytes to |out|. */
cai_status jose_b64url(buf *out, const void *data, size_t n) CAI_WUR;

/* jose_b64url_decode decodes the base64url string |s| (|len| bytes) into
 * |out| (initialised here with limit |max|). */
cai_status jose_b64url_decode(const char *s, size_t len, size_t max, buf *out) CAI_WUR;

#endif

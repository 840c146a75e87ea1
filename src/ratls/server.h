/* server.h - the TEE side of attested TLS: a key made inside the TD, a
 * quote binding it and the served model, a self-signed certificate that
 * carries the quote (ratls/evidence.h), renewed on an interval.
 *
 *   ratls_server_new          an SSL_CTX for httpd: TLS 1.3 only; each
 *                             handshake takes the current certificate
 *   ratls_server_start        once the model digest is known: the first
 *                             identity now, then a new one every refresh_s
 *
 * Until ratls_server_start succeeds handshakes fail (there is nothing to
 * attest yet). A connection keeps the certificate it was made with; a new
 * one gets the newest. The private keys never leave this process's memory:
 * not logged, not written, freed with OpenSSL's cleansing free. */
#ifndef CAI_RATLS_SERVER_H
#define CAI_RATLS_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "attest/binding.h"
#include "attest/evidence.h"
#include "common/buf.h"
#include "common/status.h"

#define RATLS_REFRESH_DEFAULT 600 /* seconds between new certificates */

/* One key pair and its attested certificate (reference counted). */
typedef struct ratls_identity ratls_identity;

/* ratls_identity_new makes a P-256 key, gets evidence from |src| binding
 * SHA-256 of its SubjectPublicKeyInfo and |model_digest|, and issues the
 * certificate, valid from now for |lifetime_s| seconds. */
cai_status ratls_identity_new(const attest_source *src,
                              const uint8_t model_digest[ATTEST_DIGEST_LEN], long lifetime_s,
                              ratls_identity **out) CAI_WUR;
ratls_identity *ratls_identity_ref(ratls_identity *id);
void ratls_identity_free(ratls_identity *id); /* drops a reference; NULL is fine */

/* ratls_identity_cert_der returns the certificate's DER (owned by |id|). */
const uint8_t *ratls_identity_cert_der(const ratls_identity *id, size_t *len);

/* ratls_identity_sign signs |data| with the identity's key (ECDSA P-256,
 * SHA-256; DER signature appended to |sig|). */
cai_status ratls_identity_sign(const ratls_identity *id, const void *data, size_t len,
                               buf *sig) CAI_WUR;

typedef struct ratls_server ratls_server;

cai_status ratls_server_new(ratls_server **out) CAI_WUR;

/* ratls_server_ssl_ctx returns the SSL_CTX * for httpd_config.ssl_ctx
 * (owned by |s|; it outlives the httpd when freed after it). */
void *ratls_server_ssl_ctx(ratls_server *s);

/* ratls_server_start makes the first identity for |model_digest| from
 * |src| (copied; src->sim_dir must outlive |s|) and starts renewing it
 * every |refresh_s| seconds (a certificate stays valid for twice that).
 * A failed renewal is logged and retried; the certificate in use stays
 * until it expires, and then handshakes fail. */
cai_status ratls_server_start(ratls_server *s, const attest_source *src,
                              const uint8_t model_digest[ATTEST_DIGEST_LEN],
                              long refresh_s) CAI_WUR;

/* ratls_server_current returns a reference to the identity new
 * connections get (NULL before ratls_server_start). */
ratls_identity *ratls_server_current(ratls_server *s);

/* ratls_server_free stops the renewal and frees |s|; NULL is fine. */
void ratls_server_free(ratls_server *s);

#endif

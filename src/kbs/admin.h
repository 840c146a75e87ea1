/* admin.h - the key broker's admin client (`cai kbs admin`, `cai seal
 * --kbs`): requests authenticated by a short-lived EdDSA JWT signed with the
 * admin's Ed25519 private key, as Trustee's kbs-client makes them. */
#ifndef CAI_KBS_ADMIN_H
#define CAI_KBS_ADMIN_H

#include <stddef.h>
#include <time.h>

#include "common/buf.h"
#include "common/status.h"
#include "crypto/jose.h"

#define KBS_ADMIN_TOKEN_TTL 300 /* seconds */

/* kbs_admin_key_load reads the admin's PEM private key at |path|, refusing
 * a file other users can read and any key but Ed25519. */
cai_status kbs_admin_key_load(const char *path, jose_key **out) CAI_WUR;

/* kbs_admin_keygen writes a new Ed25519 key pair: |prefix|.key (PKCS#8
 * PEM, mode 0600, must not exist) and |prefix|.pub (SPKI PEM). */
cai_status kbs_admin_keygen(const char *prefix) CAI_WUR;

/* The "role" claim of the admin tokens cai mints: the role a Trustee KBS
 * configured with the same public key must grant (its regex ACL). */
#define KBS_ADMIN_ROLE "admin"

/* kbs_admin_token signs an admin token valid from |now| for |ttl| seconds
 * ({"iat", "nbf", "exp", "jti", "role"}); |*out| is malloc'd. */
cai_status kbs_admin_token(const jose_key *key, time_t now, long ttl, char **out) CAI_WUR;

typedef struct {
    const char *url;     /* the broker, http(s)://host:port */
    const char *ca_file; /* CA of its certificate, or NULL */
    const jose_key *key; /* the admin's private key */
} kbs_admin;

/* kbs_admin_call sends |method| to KBS_PREFIX "/" |what| with |body| (may be
 * NULL) and puts the answer in |resp| (initialised here). A non-2xx answer
 * is an error carrying the broker's detail (CAI_ERR_AUTH for 401/403,
 * CAI_ERR_NOT_FOUND for 404). */
cai_status kbs_admin_call(const kbs_admin *a, const char *method, const char *what,
                          const void *body, size_t len, const char *content_type,
                          buf *resp) CAI_WUR;

/* kbs_admin_create stores |len| bytes at resource |path| ("repo/type/tag")
 * only if the broker holds nothing there yet (If-None-Match: *, checked and
 * written atomically by the broker): CAI_ERR_EXISTS, nothing changed, if it
 * does. */
cai_status kbs_admin_create(const kbs_admin *a, const char *path, const void *body,
                            size_t len) CAI_WUR;

#endif

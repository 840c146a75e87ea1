/* store.h - the key broker's storage: one SQLite file in WAL mode with a
 * small state file beside it (<db>.state), or a PostgreSQL database that
 * several brokers share (then sessions, single-use nonces and the token
 * signing key live there too, and there is no state file).
 * docs/KBS-STORE.md says what is protected against whom.
 *
 * Resources (keys and other secrets, addressed as repo/type/tag, see
 * common/respath.h; other paths are CAI_ERR_INVALID_ARG) are
 * encrypted at rest with AES-256-GCM under a key derived by HKDF from a
 * master key that lives outside the database (a 0600 file). Everything that
 * decides a release is authenticated under keys derived from the master key:
 * a resource's associated data is the store's id, its path, its version (a
 * per-resource counter) and the store generation it was written at; the
 * policy row carries a MAC over the same identity and its document. The
 * store's state (its generation and a MAC over which version of which row
 * is current) is checked on every read and write, so a row altered, moved,
 * added, removed or rolled back is refused (CAI_ERR_AUTH, "store check
 * failed", "policy check failed", "resource check failed"). Each change is
 * one transaction that moves the generation on; the state file records the
 * generation too (written atomically after the commit), so a database rolled
 * back as a whole is refused at open ("rollback check failed"). An audit
 * table records every release and every refusal (not authenticated: it
 * decides nothing). */
#ifndef CAI_KBS_STORE_H
#define CAI_KBS_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "common/buf.h"
#include "common/status.h"
#include "crypto/jose.h"

#define KBS_MASTER_KEY_LEN 32
#define KBS_RESOURCE_MAX (1u << 20) /* bytes of one resource */

typedef struct kbs_store kbs_store;

/* kbs_store_open opens (creating if needed) the database at |path|: a
 * SQLite file, or a PostgreSQL connection URI ("postgresql://..." or
 * "postgres://...", libpq's form; never logged: it may carry a password),
 * whose schema is migrated to the current version first. It checks
 * |master_key| against the key check stored at creation (a wrong key is
 * CAI_ERR_WRONG_KEY, before anything else happens), migrates a schema-1
 * database (its policy stays refused until set again), checks the store's
 * state and compares its generation with |path|.state (created with the
 * database; missing, altered, another store's or newer: CAI_ERR_AUTH). The
 * key is copied. */
cai_status kbs_store_open(const char *path, const uint8_t master_key[KBS_MASTER_KEY_LEN],
                          kbs_store **out);

/* kbs_store_open_state is kbs_store_open with a state file at |state_path|
 * for a PostgreSQL store (NULL: none; a SQLite store's is always
 * <path>.state, and |state_path| must be NULL). Brokers sharing a store
 * each keep their own: one missing is started at the store's generation
 * (a broker joining), one that records a newer generation than the
 * database's refuses it ("rollback check failed"). */
cai_status kbs_store_open_state(const char *path, const char *state_path,
                                const uint8_t master_key[KBS_MASTER_KEY_LEN], kbs_store **out);
void kbs_store_close(kbs_store *s);

/* kbs_store_put stores |len| bytes under |path|, replacing any value. */
cai_status kbs_store_put(kbs_store *s, const char *path, const uint8_t *data, size_t len);

/* kbs_store_create stores |len| bytes under |path| only if there is no value
 * there yet, in one statement (atomic against concurrent writers);
 * CAI_ERR_EXISTS, nothing changed, if there is. */
cai_status kbs_store_create(kbs_store *s, const char *path, const uint8_t *data, size_t len);

/* kbs_store_get decrypts the resource at |path| into |out| (a buf, wiped on
 * free); CAI_ERR_NOT_FOUND if there is none; CAI_ERR_AUTH if the store's
 * state or the row fails its check. */
cai_status kbs_store_get(kbs_store *s, const char *path, buf *out);

/* kbs_store_delete removes |path|; CAI_ERR_NOT_FOUND if there is none. */
cai_status kbs_store_delete(kbs_store *s, const char *path);

/* kbs_store_list returns a JSON array of {"path", "size", "updated"}. */
cai_status kbs_store_list(kbs_store *s, json_t **out);

typedef struct {
    const char *event;      /* "release", "refuse", "put", "delete", "policy" */
    const char *resource;   /* may be NULL */
    const char *client;     /* client address, may be NULL */
    const char *evidence_digest, *claims_digest; /* hex, may be NULL */
    const char *detail;     /* why, for refusals; never a secret */
} kbs_audit_entry;

/* kbs_store_audit appends one audit record with the current time. */
cai_status kbs_store_audit(kbs_store *s, const kbs_audit_entry *e);

/* kbs_store_audit_many appends |n| records in one transaction (one fsync:
 * group commit) on a connection of its own, so it may run on another
 * thread than the other functions. All or none are stored. */
cai_status kbs_store_audit_many(kbs_store *s, const kbs_audit_entry *e, size_t n);

/* kbs_store_audit_list returns the last |limit| records, newest first. */
cai_status kbs_store_audit_list(kbs_store *s, int limit, json_t **out);

/* kbs_store_policy_set / _get keep the policy document (a JSON string),
 * authenticated: _get is CAI_ERR_AUTH ("policy check failed") for a row
 * altered, swapped or written by a schema-1 broker. */
cai_status kbs_store_policy_set(kbs_store *s, const char *json);
cai_status kbs_store_policy_get(kbs_store *s, char **out); /* NULL if none; free() */

/* kbs_store_policy_generation returns the stored policy row's generation
 * (0 if there is none), unchecked: a broker compares it with the one it
 * loaded to see that another broker set a new policy, then loads that with
 * kbs_store_policy_get (which checks it). */
cai_status kbs_store_policy_generation(kbs_store *s, uint64_t *gen) CAI_WUR;

/* kbs_store_ping asks the database one read (the policy row's generation):
 * CAI_OK if it answers, else its error (CAI_ERR_IO: unreachable). For the
 * broker's /health. */
cai_status kbs_store_ping(kbs_store *s) CAI_WUR;

/* kbs_store_shared returns 1 if several brokers may share the store
 * (PostgreSQL): sessions and nonces must then be kept in it, with the
 * functions below; 0 for SQLite (they return CAI_ERR_UNSUPPORTED there). */
int kbs_store_shared(const kbs_store *s);

/* kbs_store_session_add records a pending session |id| with its |nonce|
 * (both from kbs_session_create) for |client|, live until |expires|;
 * sessions expired at |now| are removed now and then. */
cai_status kbs_store_session_add(kbs_store *s, const char *id, const char *nonce,
                                 const char *client, time_t expires, time_t now) CAI_WUR;

/* kbs_store_nonce_take consumes session |id|'s nonce, once across every
 * broker on the store (one UPDATE ... WHERE NOT used RETURNING): its nonce
 * and client in |nonce| and |client|; CAI_ERR_NOT_FOUND if no such session
 * is live or its nonce was already taken (by any broker). */
cai_status kbs_store_nonce_take(kbs_store *s, const char *id, time_t now, char nonce[64],
                                char client[64]) CAI_WUR;

/* kbs_store_session_set_token records the token an attested session |id|
 * holds, live until |expires|, so that any broker honours its cookie. */
cai_status kbs_store_session_set_token(kbs_store *s, const char *id, const char *token,
                                       time_t expires) CAI_WUR;

/* kbs_store_session_get_token returns session |id|'s token (malloc'd) if it
 * is attested and live at |now|; CAI_ERR_NOT_FOUND otherwise. */
cai_status kbs_store_session_get_token(kbs_store *s, const char *id, time_t now,
                                       char **token) CAI_WUR;

/* kbs_store_token_key returns the attestation-token signing key every
 * broker on a shared store uses (an EC P-256 key made by the first one,
 * stored sealed under the master key); the caller frees it. CAI_ERR_AUTH
 * ("token key check failed") if the stored key does not open. */
cai_status kbs_store_token_key(kbs_store *s, jose_key **out) CAI_WUR;

#endif

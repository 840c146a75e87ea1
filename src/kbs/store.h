/* store.h - the key broker's storage: one SQLite file in WAL mode.
 *
 * Resources (keys and other secrets, addressed as repo/type/tag) are
 * encrypted at rest with AES-256-GCM under a key derived by HKDF from a
 * master key that lives outside the database (a 0600 file). The resource's
 * path is the associated data, so a row moved to another path, or a
 * database opened with the wrong master key, fails to decrypt. Each write is
 * one transaction. An audit table records every release and every refusal;
 * the policy (a JSON document) is stored too. */
#ifndef CAI_KBS_STORE_H
#define CAI_KBS_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/buf.h"
#include "common/status.h"

#define KBS_MASTER_KEY_LEN 32
#define KBS_RESOURCE_MAX (1u << 20) /* bytes of one resource */

typedef struct kbs_store kbs_store;

/* kbs_store_open opens (creating if needed) the database at |path|, checks
 * |master_key| against the key check stored at creation (a wrong key is
 * CAI_ERR_WRONG_KEY, before anything else happens). The key is copied. */
cai_status kbs_store_open(const char *path, const uint8_t master_key[KBS_MASTER_KEY_LEN],
                          kbs_store **out);
void kbs_store_close(kbs_store *s);

/* kbs_resource_path_valid checks "repo/type/tag": three non-empty parts of
 * [A-Za-z0-9._-], none "." or "..", at most 255 bytes in all. */
int kbs_resource_path_valid(const char *path);

/* kbs_store_put stores |len| bytes under |path|, replacing any value. */
cai_status kbs_store_put(kbs_store *s, const char *path, const uint8_t *data, size_t len);

/* kbs_store_create stores |len| bytes under |path| only if there is no value
 * there yet, in one statement (atomic against concurrent writers);
 * CAI_ERR_EXISTS, nothing changed, if there is. */
cai_status kbs_store_create(kbs_store *s, const char *path, const uint8_t *data, size_t len);

/* kbs_store_get decrypts the resource at |path| into |out| (a buf, wiped on
 * free); CAI_ERR_NOT_FOUND if there is none. */
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

/* kbs_store_policy_set / _get keep the policy document (a JSON string). */
cai_status kbs_store_policy_set(kbs_store *s, const char *json);
cai_status kbs_store_policy_get(kbs_store *s, char **out); /* NULL if none; free() */

#endif

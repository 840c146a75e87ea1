/* store_db.h - the key broker store's database backends (internal to
 * src/kbs/store*.c). store.c owns the meaning: encryption at rest, the
 * authenticated state, the change protocol, the state file; a backend only
 * moves rows in and out of one database: SQLite (store_sqlite.c, the
 * embedded default) or PostgreSQL (store_pg.c, shared by several brokers).
 *
 * Every function returns CAI_OK or a status with a message that names the
 * database operation that failed (never a connection string's secrets).
 * A backend is used from one thread, except audit_many, which runs on the
 * audit writer's thread over a connection of its own. */
#ifndef CAI_KBS_STORE_DB_H
#define CAI_KBS_STORE_DB_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "common/buf.h"
#include "common/status.h"
#include "kbs/store.h"

typedef struct kbs_db kbs_db; /* a backend's connection(s) */

/* A resource row as stored: the sealed bytes (ciphertext then tag). */
typedef struct {
    const char *path;
    const uint8_t *nonce; /* AEAD_NONCE_LEN bytes */
    const uint8_t *sealed;
    size_t sealed_len, size;
    uint64_t version, gen;
} kbs_db_resource;

/* Called for each resource row, in byte order of path (state_mac). */
typedef cai_status (*kbs_db_row_fn)(void *arg, const char *path, size_t plen, uint64_t version,
                                    uint64_t gen);

typedef struct {
    const char *name; /* "SQLite", "PostgreSQL" */
    int shared;       /* several brokers may use the database at once */
    void (*close)(kbs_db *db);
    /* begin opens a transaction: |write| = 1 serialises it against every
     * other writer of the database (in every process); 0 reads one
     * snapshot. end commits if |st| is CAI_OK, else rolls back, and returns
     * the outcome. */
    cai_status (*begin)(kbs_db *db, int write);
    cai_status (*end)(kbs_db *db, cai_status st);
    /* meta rows: |out| is filled with the value (found = 1) or left empty. */
    cai_status (*meta_get)(kbs_db *db, const char *name, buf *out, int *found);
    cai_status (*meta_put)(kbs_db *db, const char *name, const void *v, size_t len);
    /* meta_add stores |v| under |name| unless a value is there already
     * (*added = 0 then, nothing changed); atomic against other brokers. */
    cai_status (*meta_add)(kbs_db *db, const char *name, const void *v, size_t len, int *added);
    cai_status (*policy_gen)(kbs_db *db, int *found, uint64_t *gen);
    cai_status (*resource_rows)(kbs_db *db, kbs_db_row_fn fn, void *arg);
    cai_status (*resource_version)(kbs_db *db, const char *path, int *found, uint64_t *version);
    /* resource_write inserts the row, or replaces the path's row if
     * |replace|; without it, a row already at the path (unique key) is
     * CAI_ERR_EXISTS. */
    cai_status (*resource_write)(kbs_db *db, const kbs_db_resource *r, int replace);
    /* resource_read fills |nonce| and |sealed| and the row's version and
     * generation; CAI_ERR_NOT_FOUND if there is no row. */
    cai_status (*resource_read)(kbs_db *db, const char *path, buf *nonce, buf *sealed,
                                uint64_t *version, uint64_t *gen);
    cai_status (*resource_delete)(kbs_db *db, const char *path); /* CAI_ERR_NOT_FOUND */
    cai_status (*resource_list)(kbs_db *db, json_t **out);
    cai_status (*policy_write)(kbs_db *db, const char *doc, uint64_t gen, const uint8_t *mac,
                               size_t mac_len);
    /* policy_read: *found = 0 if there is no policy row; |mac| is left
     * empty and *has_mac = 0 for a row without one. *doc is malloc'd. */
    cai_status (*policy_read)(kbs_db *db, int *found, char **doc, size_t *len, uint64_t *gen,
                              buf *mac, int *has_mac);
    cai_status (*audit)(kbs_db *db, const kbs_audit_entry *e);
    cai_status (*audit_many)(kbs_db *db, const kbs_audit_entry *e, size_t n);
    cai_status (*audit_list)(kbs_db *db, int limit, json_t **out);
    /* Schema 1 (SQLite only; NULL elsewhere): adds the version and gen
     * columns; v1_next returns a row not yet migrated (gen 0), found = 0
     * when none is left. */
    cai_status (*v1_upgrade)(kbs_db *db);
    cai_status (*v1_next)(kbs_db *db, char path[256], buf *nonce, buf *sealed, int *found);
    /* Sessions of a shared store (NULL elsewhere): session_add records a
     * pending session; nonce_take marks it used, once across every broker,
     * and returns its nonce and client (CAI_ERR_NOT_FOUND: no live unused
     * session with |id|); session_token records / returns an attested
     * session's token. */
    cai_status (*session_add)(kbs_db *db, const char *id, const char *nonce, const char *client,
                              time_t expires, time_t now);
    cai_status (*nonce_take)(kbs_db *db, const char *id, time_t now, char nonce[64],
                             char client[64]);
    cai_status (*session_set_token)(kbs_db *db, const char *id, const char *token,
                                    time_t expires);
    cai_status (*session_get_token)(kbs_db *db, const char *id, time_t now, char **token);
} kbs_db_ops;

/* kbs_db_sqlite_open opens (creating) the SQLite file at |path|. */
cai_status kbs_db_sqlite_open(const char *path, kbs_db **out, const kbs_db_ops **ops) CAI_WUR;

/* kbs_db_pg_open connects to PostgreSQL with the libpq connection URI
 * |conninfo| (two connections: one for the audit writer) and brings the
 * schema to the current version (table schema_version). */
cai_status kbs_db_pg_open(const char *conninfo, kbs_db **out, const kbs_db_ops **ops) CAI_WUR;

#endif

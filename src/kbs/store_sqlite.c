/* store_sqlite.c - the key broker store's SQLite backend: one file in WAL
 * mode, a second connection for the audit writer (store_db.h). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "common/respath.h"
#include "crypto/aead.h"
#include "kbs/store_db.h"

struct kbs_db {
    sqlite3 *db;
    sqlite3 *audit_db; /* a second connection: audit_many's own transactions */
};

/* A fresh database gets schema 2 at once; a schema-1 one (no version and
 * gen columns, no MAC on the policy) is migrated at open (store.c). */
static const char SCHEMA[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=FULL;"
    "CREATE TABLE IF NOT EXISTS meta(name TEXT PRIMARY KEY, value BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS resources(path TEXT PRIMARY KEY, nonce BLOB NOT NULL,"
    " sealed BLOB NOT NULL, size INTEGER NOT NULL, updated INTEGER NOT NULL,"
    " version INTEGER NOT NULL DEFAULT 0, gen INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS audit(id INTEGER PRIMARY KEY AUTOINCREMENT, time INTEGER NOT NULL,"
    " event TEXT NOT NULL, resource TEXT, client TEXT, evidence_digest TEXT,"
    " claims_digest TEXT, detail TEXT);"
    "CREATE TABLE IF NOT EXISTS policy(id INTEGER PRIMARY KEY CHECK (id = 1),"
    " document TEXT NOT NULL, updated INTEGER NOT NULL, gen INTEGER NOT NULL DEFAULT 0,"
    " mac BLOB);";

static const char MIGRATE_V1[] =
    "ALTER TABLE resources ADD COLUMN version INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE resources ADD COLUMN gen INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE policy ADD COLUMN gen INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE policy ADD COLUMN mac BLOB;";

static cai_status db_fail(kbs_db *d, const char *what) {
    return cai_fail(CAI_ERR_IO, "database: %s: %s", what, sqlite3_errmsg(d->db));
}

static void sq_close(kbs_db *d) {
    if (d == NULL)
        return;
    sqlite3_close(d->db);
    sqlite3_close(d->audit_db);
    free(d);
}

static cai_status sq_begin(kbs_db *d, int write) {
    if (sqlite3_exec(d->db, write ? "BEGIN IMMEDIATE" : "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(d, "beginning a transaction");
    return CAI_OK;
}

static cai_status sq_end(kbs_db *d, cai_status st) {
    if (st == CAI_OK && sqlite3_exec(d->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        st = db_fail(d, "committing");
    if (st != CAI_OK)
        sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
    return st;
}

static cai_status sq_meta_get(kbs_db *d, const char *name, buf *out, int *found) {
    sqlite3_stmt *q = NULL;
    cai_status st = CAI_OK;
    *found = 0;
    out->len = 0;
    if (sqlite3_prepare_v2(d->db, "SELECT value FROM meta WHERE name = ?", -1, &q, NULL) !=
            SQLITE_OK ||
        sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC) != SQLITE_OK) {
        st = db_fail(d, "reading the meta table");
        goto out;
    }
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        if (sqlite3_column_type(q, 0) != SQLITE_BLOB) {
            st = cai_fail(CAI_ERR_AUTH, "store check failed: meta '%s' is malformed (the "
                          "database was altered)", name);
            goto out;
        }
        st = buf_append(out, sqlite3_column_blob(q, 0), (size_t)sqlite3_column_bytes(q, 0));
        *found = st == CAI_OK;
    } else if (rc != SQLITE_DONE) {
        st = db_fail(d, "reading the meta table");
    }
out:
    sqlite3_finalize(q);
    return st;
}

static cai_status meta_insert(kbs_db *d, const char *sql, const char *name, const void *v,
                              size_t len) {
    sqlite3_stmt *q = NULL;
    cai_status st = CAI_OK;
    if (sqlite3_prepare_v2(d->db, sql, -1, &q, NULL) != SQLITE_OK ||
        sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_blob(q, 2, v, (int)len, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_step(q) != SQLITE_DONE)
        st = db_fail(d, "writing the meta table");
    sqlite3_finalize(q);
    return st;
}

static cai_status sq_meta_put(kbs_db *d, const char *name, const void *v, size_t len) {
    return meta_insert(d, "INSERT OR REPLACE INTO meta(name, value) VALUES(?, ?)", name, v, len);
}

static cai_status sq_meta_add(kbs_db *d, const char *name, const void *v, size_t len, int *added) {
    cai_status st = meta_insert(d, "INSERT OR IGNORE INTO meta(name, value) VALUES(?, ?)", name,
                                v, len);
    *added = st == CAI_OK && sqlite3_changes(d->db) > 0;
    return st;
}

static cai_status sq_policy_gen(kbs_db *d, int *found, uint64_t *gen) {
    sqlite3_stmt *q = NULL;
    cai_status st = CAI_OK;
    *found = 0;
    if (sqlite3_prepare_v2(d->db, "SELECT gen FROM policy WHERE id = 1", -1, &q, NULL) != SQLITE_OK)
        return db_fail(d, "reading the policy");
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        *found = 1;
        *gen = (uint64_t)sqlite3_column_int64(q, 0);
    } else if (rc != SQLITE_DONE) {
        st = db_fail(d, "reading the policy");
    }
    sqlite3_finalize(q);
    return st;
}

static cai_status sq_resource_rows(kbs_db *d, kbs_db_row_fn fn, void *arg) {
    sqlite3_stmt *q = NULL;
    cai_status st = CAI_OK;
    int rc;
    if (sqlite3_prepare_v2(d->db, "SELECT path, version, gen FROM resources ORDER BY path", -1, &q,
                           NULL) != SQLITE_OK)
        return db_fail(d, "reading the resources");
    while (st == CAI_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        const unsigned char *path = sqlite3_column_text(q, 0);
        st = fn(arg, path ? (const char *)path : "", (size_t)sqlite3_column_bytes(q, 0),
                (uint64_t)sqlite3_column_int64(q, 1), (uint64_t)sqlite3_column_int64(q, 2));
    }
    if (st == CAI_OK && rc != SQLITE_DONE)
        st = db_fail(d, "reading the resources");
    sqlite3_finalize(q);
    return st;
}

static cai_status sq_resource_version(kbs_db *d, const char *path, int *found, uint64_t *version) {
    sqlite3_stmt *q = NULL;
    cai_status st = CAI_OK;
    *found = 0;
    if (sqlite3_prepare_v2(d->db, "SELECT version FROM resources WHERE path = ?", -1, &q, NULL) !=
            SQLITE_OK ||
        sqlite3_bind_text(q, 1, path, -1, SQLITE_TRANSIENT) != SQLITE_OK) {
        sqlite3_finalize(q);
        return db_fail(d, "storing a resource");
    }
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        *found = 1;
        *version = (uint64_t)sqlite3_column_int64(q, 0);
    } else if (rc != SQLITE_DONE) {
        st = db_fail(d, "storing a resource");
    }
    sqlite3_finalize(q);
    return st;
}

static cai_status sq_resource_write(kbs_db *d, const kbs_db_resource *r, int replace) {
    sqlite3_stmt *q = NULL;
    cai_status st = CAI_OK;
    if (sqlite3_prepare_v2(d->db, replace ? "INSERT OR REPLACE INTO resources(path, nonce, sealed, "
                                            "size, updated, version, gen) VALUES(?, ?, ?, ?, ?, ?, ?)"
                                          : "INSERT INTO resources(path, nonce, sealed, size, "
                                            "updated, version, gen) VALUES(?, ?, ?, ?, ?, ?, ?)",
                           -1, &q, NULL) != SQLITE_OK ||
        sqlite3_bind_text(q, 1, r->path, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_blob(q, 2, r->nonce, AEAD_NONCE_LEN, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_blob(q, 3, r->sealed, (int)r->sealed_len, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_int64(q, 4, (sqlite3_int64)r->size) != SQLITE_OK ||
        sqlite3_bind_int64(q, 5, (sqlite3_int64)time(NULL)) != SQLITE_OK ||
        sqlite3_bind_int64(q, 6, (sqlite3_int64)r->version) != SQLITE_OK ||
        sqlite3_bind_int64(q, 7, (sqlite3_int64)r->gen) != SQLITE_OK) {
        st = db_fail(d, "storing a resource");
        goto out;
    }
    int rc = sqlite3_step(q);
    if (rc == SQLITE_CONSTRAINT && !replace)
        st = cai_fail(CAI_ERR_EXISTS, "there is already a resource at %s", r->path);
    else if (rc != SQLITE_DONE)
        st = db_fail(d, "storing a resource");
out:
    sqlite3_finalize(q);
    return st;
}

static cai_status sq_resource_read(kbs_db *d, const char *path, buf *nonce, buf *sealed,
                                   uint64_t *version, uint64_t *gen) {
    sqlite3_stmt *q = NULL;
    cai_status st = CAI_OK;
    nonce->len = sealed->len = 0;
    if (sqlite3_prepare_v2(d->db, "SELECT nonce, sealed, version, gen FROM resources WHERE "
                           "path = ?", -1, &q, NULL) != SQLITE_OK ||
        sqlite3_bind_text(q, 1, path, -1, SQLITE_TRANSIENT) != SQLITE_OK) {
        st = db_fail(d, "reading a resource");
        goto out;
    }
    int rc = sqlite3_step(q);
    if (rc == SQLITE_DONE) {
        st = cai_fail(CAI_ERR_NOT_FOUND, "no resource at %.80s", path);
        goto out;
    }
    if (rc != SQLITE_ROW) {
        st = db_fail(d, "reading a resource");
        goto out;
    }
    st = buf_append(nonce, sqlite3_column_blob(q, 0), (size_t)sqlite3_column_bytes(q, 0));
    if (st == CAI_OK)
        st = buf_append(sealed, sqlite3_column_blob(q, 1), (size_t)sqlite3_column_bytes(q, 1));
    *version = (uint64_t)sqlite3_column_int64(q, 2);
    *gen = (uint64_t)sqlite3_column_int64(q, 3);
out:
    sqlite3_finalize(q);
    return st;
}

static cai_status sq_resource_delete(kbs_db *d, const char *path) {
    sqlite3_stmt *q = NULL;
    cai_status st = CAI_OK;
    if (sqlite3_prepare_v2(d->db, "DELETE FROM resources WHERE path = ?", -1, &q, NULL) != SQLITE_OK ||
        sqlite3_bind_text(q, 1, path, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_step(q) != SQLITE_DONE)
        st = db_fail(d, "deleting a resource");
    else if (sqlite3_changes(d->db) == 0)
        st = cai_fail(CAI_ERR_NOT_FOUND, "no resource at %.80s", path);
    sqlite3_finalize(q);
    return st;
}

/* Rows of a query as a JSON array of objects, column names as keys. */
static cai_status rows_json(kbs_db *d, sqlite3_stmt *q, json_t **out) {
    json_t *a = json_array();
    int rc;
    while (a && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        json_t *o = json_object();
        for (int i = 0; o && i < sqlite3_column_count(q); i++) {
            json_t *v = sqlite3_column_type(q, i) == SQLITE_INTEGER
                            ? json_integer(sqlite3_column_int64(q, i))
                        : sqlite3_column_type(q, i) == SQLITE_NULL
                            ? json_null()
                            : json_string((const char *)sqlite3_column_text(q, i));
            json_object_set_new(o, sqlite3_column_name(q, i), v);
        }
        json_array_append_new(a, o);
    }
    if (a == NULL)
        return CAI_ERR_NOMEM;
    if (rc != SQLITE_DONE) {
        json_decref(a);
        return db_fail(d, "listing");
    }
    *out = a;
    return CAI_OK;
}

static cai_status sq_resource_list(kbs_db *d, json_t **out) {
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(d->db, "SELECT path, size, updated FROM resources ORDER BY path", -1,
                           &q, NULL) != SQLITE_OK)
        return db_fail(d, "listing resources");
    cai_status st = rows_json(d, q, out);
    sqlite3_finalize(q);
    return st;
}

static cai_status sq_policy_write(kbs_db *d, const char *doc, uint64_t gen, const uint8_t *mac,
                                  size_t mac_len) {
    sqlite3_stmt *q = NULL;
    cai_status st = CAI_OK;
    if (sqlite3_prepare_v2(d->db, "INSERT OR REPLACE INTO policy(id, document, updated, gen, mac) "
                           "VALUES(1, ?, ?, ?, ?)", -1, &q, NULL) != SQLITE_OK ||
        sqlite3_bind_text(q, 1, doc, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_int64(q, 2, (sqlite3_int64)time(NULL)) != SQLITE_OK ||
        sqlite3_bind_int64(q, 3, (sqlite3_int64)gen) != SQLITE_OK ||
        sqlite3_bind_blob(q, 4, mac, (int)mac_len, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_step(q) != SQLITE_DONE)
        st = db_fail(d, "storing the policy");
    sqlite3_finalize(q);
    return st;
}

static cai_status sq_policy_read(kbs_db *d, int *found, char **doc, size_t *len, uint64_t *gen,
                                 buf *mac, int *has_mac) {
    sqlite3_stmt *q = NULL;
    cai_status st = CAI_OK;
    *found = *has_mac = 0;
    *doc = NULL;
    mac->len = 0;
    if (sqlite3_prepare_v2(d->db, "SELECT document, gen, mac FROM policy WHERE id = 1", -1, &q,
                           NULL) != SQLITE_OK) {
        st = db_fail(d, "reading the policy");
        goto out;
    }
    int rc = sqlite3_step(q);
    if (rc == SQLITE_DONE)
        goto out;
    if (rc != SQLITE_ROW) {
        st = db_fail(d, "reading the policy");
        goto out;
    }
    const char *text = (const char *)sqlite3_column_text(q, 0);
    *len = (size_t)sqlite3_column_bytes(q, 0);
    *gen = (uint64_t)sqlite3_column_int64(q, 1);
    if (sqlite3_column_type(q, 2) != SQLITE_NULL) {
        *has_mac = 1;
        st = buf_append(mac, sqlite3_column_blob(q, 2), (size_t)sqlite3_column_bytes(q, 2));
    }
    if (st == CAI_OK && text) {
        if ((*doc = malloc(*len + 1)) == NULL) {
            st = CAI_ERR_NOMEM;
            goto out;
        }
        memcpy(*doc, text, *len);
        (*doc)[*len] = '\0';
    }
    *found = 1;
out:
    sqlite3_finalize(q);
    return st;
}

static cai_status audit_insert(sqlite3 *db, const kbs_audit_entry *e) {
    sqlite3_stmt *q = NULL;
    cai_status st = CAI_OK;
    const char *v[6] = {e->event, e->resource, e->client, e->evidence_digest, e->claims_digest,
                        e->detail};
    if (sqlite3_prepare_v2(db, "INSERT INTO audit(time, event, resource, client, "
                           "evidence_digest, claims_digest, detail) VALUES(?, ?, ?, ?, ?, ?, ?)",
                           -1, &q, NULL) != SQLITE_OK ||
        sqlite3_bind_int64(q, 1, (sqlite3_int64)time(NULL)) != SQLITE_OK) {
        st = cai_fail(CAI_ERR_IO, "database: writing the audit log: %s", sqlite3_errmsg(db));
        goto out;
    }
    for (int i = 0; i < 6; i++) {
        if ((v[i] ? sqlite3_bind_text(q, i + 2, v[i], -1, SQLITE_TRANSIENT)
                  : sqlite3_bind_null(q, i + 2)) != SQLITE_OK) {
            st = cai_fail(CAI_ERR_IO, "database: writing the audit log: %s", sqlite3_errmsg(db));
            goto out;
        }
    }
    if (sqlite3_step(q) != SQLITE_DONE)
        st = cai_fail(CAI_ERR_IO, "database: writing the audit log: %s", sqlite3_errmsg(db));
out:
    sqlite3_finalize(q);
    return st;
}

static cai_status sq_audit(kbs_db *d, const kbs_audit_entry *e) {
    return audit_insert(d->db, e);
}

static cai_status sq_audit_many(kbs_db *d, const kbs_audit_entry *e, size_t n) {
    if (sqlite3_exec(d->audit_db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return cai_fail(CAI_ERR_IO, "database: audit: %s", sqlite3_errmsg(d->audit_db));
    cai_status st = CAI_OK;
    for (size_t i = 0; i < n && st == CAI_OK; i++)
        st = audit_insert(d->audit_db, &e[i]);
    if (st == CAI_OK && sqlite3_exec(d->audit_db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        st = cai_fail(CAI_ERR_IO, "database: audit commit: %s", sqlite3_errmsg(d->audit_db));
    if (st != CAI_OK)
        sqlite3_exec(d->audit_db, "ROLLBACK", NULL, NULL, NULL);
    return st;
}

static cai_status sq_audit_list(kbs_db *d, int limit, json_t **out) {
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(d->db, "SELECT id, time, event, resource, client, evidence_digest, "
                           "claims_digest, detail FROM audit ORDER BY id DESC LIMIT ?", -1, &q,
                           NULL) != SQLITE_OK ||
        sqlite3_bind_int(q, 1, limit) != SQLITE_OK) {
        sqlite3_finalize(q);
        return db_fail(d, "reading the audit log");
    }
    cai_status st = rows_json(d, q, out);
    sqlite3_finalize(q);
    return st;
}

static cai_status sq_v1_upgrade(kbs_db *d) {
    if (sqlite3_exec(d->db, MIGRATE_V1, NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(d, "migrating the schema");
    return CAI_OK;
}

static cai_status sq_v1_next(kbs_db *d, char path[256], buf *nonce, buf *sealed, int *found) {
    sqlite3_stmt *q = NULL;
    cai_status st = CAI_OK;
    *found = 0;
    nonce->len = sealed->len = 0;
    if (sqlite3_prepare_v2(d->db, "SELECT path, nonce, sealed FROM resources WHERE gen = 0 "
                           "LIMIT 1", -1, &q, NULL) != SQLITE_OK)
        return db_fail(d, "migrating the resources");
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        const char *p = (const char *)sqlite3_column_text(q, 0);
        if (p == NULL || !respath_valid(p)) {
            st = cai_fail(CAI_ERR_AUTH, "migration: a resource row is corrupt");
        } else {
            snprintf(path, 256, "%s", p);
            st = buf_append(nonce, sqlite3_column_blob(q, 1), (size_t)sqlite3_column_bytes(q, 1));
            if (st == CAI_OK)
                st = buf_append(sealed, sqlite3_column_blob(q, 2),
                                (size_t)sqlite3_column_bytes(q, 2));
            *found = st == CAI_OK;
        }
    } else if (rc != SQLITE_DONE) {
        st = db_fail(d, "migrating the resources");
    }
    sqlite3_finalize(q);
    return st;
}

static const kbs_db_ops SQLITE_OPS = {
    .name = "SQLite",
    .shared = 0,
    .close = sq_close,
    .begin = sq_begin,
    .end = sq_end,
    .meta_get = sq_meta_get,
    .meta_put = sq_meta_put,
    .meta_add = sq_meta_add,
    .policy_gen = sq_policy_gen,
    .resource_rows = sq_resource_rows,
    .resource_version = sq_resource_version,
    .resource_write = sq_resource_write,
    .resource_read = sq_resource_read,
    .resource_delete = sq_resource_delete,
    .resource_list = sq_resource_list,
    .policy_write = sq_policy_write,
    .policy_read = sq_policy_read,
    .audit = sq_audit,
    .audit_many = sq_audit_many,
    .audit_list = sq_audit_list,
    .v1_upgrade = sq_v1_upgrade,
    .v1_next = sq_v1_next,
};

cai_status kbs_db_sqlite_open(const char *path, kbs_db **out, const kbs_db_ops **ops) {
    *out = NULL;
    *ops = &SQLITE_OPS;
    kbs_db *d = calloc(1, sizeof(*d));
    cai_status st = CAI_OK;
    if (d == NULL)
        return CAI_ERR_NOMEM;
    if (sqlite3_open_v2(path, &d->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        NULL) != SQLITE_OK) {
        st = cai_fail(CAI_ERR_IO, "cannot open the database %s: %s", path,
                      d->db ? sqlite3_errmsg(d->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(d->db, 5000);
    if (sqlite3_exec(d->db, SCHEMA, NULL, NULL, NULL) != SQLITE_OK) {
        st = db_fail(d, "creating the schema");
        goto fail;
    }
    if (sqlite3_open_v2(path, &d->audit_db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, NULL) !=
            SQLITE_OK ||
        sqlite3_exec(d->audit_db, "PRAGMA synchronous=FULL;", NULL, NULL, NULL) != SQLITE_OK) {
        st = cai_fail(CAI_ERR_IO, "cannot open the database %s for the audit log", path);
        goto fail;
    }
    sqlite3_busy_timeout(d->audit_db, 5000);
    *out = d;
    return CAI_OK;
fail:
    sq_close(d);
    return st;
}

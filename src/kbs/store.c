/* store.c - SQLite storage for the key broker, resources encrypted at rest. */
#include "kbs/store.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "common/secure.h"
#include "crypto/aead.h"
#include "crypto/kdf.h"

struct kbs_store {
    sqlite3 *db;
    sqlite3 *audit_db; /* a second connection: kbs_store_audit_many's own transactions */
    aead *aead;
};

static const char SCHEMA[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=FULL;"
    "CREATE TABLE IF NOT EXISTS meta(name TEXT PRIMARY KEY, value BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS resources(path TEXT PRIMARY KEY, nonce BLOB NOT NULL,"
    " sealed BLOB NOT NULL, size INTEGER NOT NULL, updated INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS audit(id INTEGER PRIMARY KEY AUTOINCREMENT, time INTEGER NOT NULL,"
    " event TEXT NOT NULL, resource TEXT, client TEXT, evidence_digest TEXT,"
    " claims_digest TEXT, detail TEXT);"
    "CREATE TABLE IF NOT EXISTS policy(id INTEGER PRIMARY KEY CHECK (id = 1),"
    " document TEXT NOT NULL, updated INTEGER NOT NULL);";

/* The key check: a MAC of a constant under a key derived from the master
 * key, so a wrong master key is caught at open, not at the first release. */
#define CHECK_INFO "cai-kbs/v1 master-key-check"
#define RESOURCE_INFO "cai-kbs/v1 resource"

static cai_status db_fail(kbs_store *s, const char *what) {
    return cai_fail(CAI_ERR_IO, "database: %s: %s", what, sqlite3_errmsg(s->db));
}

static cai_status derive(const uint8_t master[KBS_MASTER_KEY_LEN], const char *info,
                         uint8_t out[32]) {
    uint8_t prk[KDF_SHA256_LEN];
    cai_status st = kdf_hkdf_extract((const uint8_t *)"cai-kbs", 7, master, KBS_MASTER_KEY_LEN, prk);
    if (st == CAI_OK)
        st = kdf_hkdf_expand(prk, info, out, 32);
    secure_wipe(prk, sizeof(prk));
    return st;
}

static cai_status check_master_key(kbs_store *s, const uint8_t master[KBS_MASTER_KEY_LEN]) {
    uint8_t check[32];
    cai_status st = derive(master, CHECK_INFO, check);
    if (st != CAI_OK)
        return st;
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE name = 'key_check'", -1, &q, NULL) != SQLITE_OK) {
        st = db_fail(s, "reading the key check");
        goto out;
    }
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        const void *v = sqlite3_column_blob(q, 0);
        if (sqlite3_column_bytes(q, 0) != 32 || !secure_memeq(v, check, 32))
            st = cai_fail(CAI_ERR_WRONG_KEY, "the master key does not match this database");
    } else if (rc == SQLITE_DONE) {
        sqlite3_finalize(q);
        q = NULL;
        if (sqlite3_prepare_v2(s->db, "INSERT INTO meta(name, value) VALUES('key_check', ?)", -1,
                               &q, NULL) != SQLITE_OK ||
            sqlite3_bind_blob(q, 1, check, 32, SQLITE_TRANSIENT) != SQLITE_OK ||
            sqlite3_step(q) != SQLITE_DONE)
            st = db_fail(s, "storing the key check");
    } else {
        st = db_fail(s, "reading the key check");
    }
out:
    sqlite3_finalize(q);
    secure_wipe(check, sizeof(check));
    return st;
}

cai_status kbs_store_open(const char *path, const uint8_t master_key[KBS_MASTER_KEY_LEN],
                          kbs_store **out) {
    *out = NULL;
    kbs_store *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return CAI_ERR_NOMEM;
    cai_status st = CAI_OK;
    uint8_t k[32];
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        NULL) != SQLITE_OK) {
        st = cai_fail(CAI_ERR_IO, "cannot open the database %s: %s", path,
                      s->db ? sqlite3_errmsg(s->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(s->db, 5000);
    if (sqlite3_exec(s->db, SCHEMA, NULL, NULL, NULL) != SQLITE_OK) {
        st = db_fail(s, "creating the schema");
        goto fail;
    }
    if ((st = check_master_key(s, master_key)) != CAI_OK || (st = derive(master_key, RESOURCE_INFO, k)) != CAI_OK ||
        (st = aead_new(k, &s->aead)) != CAI_OK)
        goto fail;
    if (sqlite3_open_v2(path, &s->audit_db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, NULL) !=
            SQLITE_OK ||
        sqlite3_exec(s->audit_db, "PRAGMA synchronous=FULL;", NULL, NULL, NULL) != SQLITE_OK) {
        st = cai_fail(CAI_ERR_IO, "cannot open the database %s for the audit log", path);
        goto fail;
    }
    sqlite3_busy_timeout(s->audit_db, 5000);
    secure_wipe(k, sizeof(k));
    *out = s;
    return CAI_OK;
fail:
    secure_wipe(k, sizeof(k));
    kbs_store_close(s);
    return st;
}

void kbs_store_close(kbs_store *s) {
    if (s == NULL)
        return;
    sqlite3_close(s->db);
    sqlite3_close(s->audit_db);
    aead_free(s->aead);
    free(s);
}

int kbs_resource_path_valid(const char *path) {
    size_t n = strlen(path);
    if (n == 0 || n > 255)
        return 0;
    int parts = 0;
    for (const char *p = path; *p;) {
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
            return 0;
        for (size_t i = 0; i < len; i++) {
            char c = p[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-'))
                return 0;
        }
        parts++;
        if (e == NULL)
            break;
        p = e + 1;
        if (*p == '\0')
            return 0; /* trailing slash */
    }
    return parts == 3;
}

static cai_status bad_path(const char *path) {
    return cai_fail(CAI_ERR_INVALID_ARG, "resource path '%.80s' is not repo/type/tag", path);
}

static cai_status store_write(kbs_store *s, const char *path, const uint8_t *data, size_t len,
                              int create) {
    if (!kbs_resource_path_valid(path))
        return bad_path(path);
    if (len > KBS_RESOURCE_MAX)
        return cai_fail(CAI_ERR_LIMIT, "a resource is at most %u bytes", KBS_RESOURCE_MAX);
    uint8_t nonce[AEAD_NONCE_LEN];
    uint8_t *sealed = malloc(len + AEAD_TAG_LEN);
    sqlite3_stmt *q = NULL;
    cai_status st = sealed ? secure_random(nonce, sizeof(nonce)) : CAI_ERR_NOMEM;
    if (st == CAI_OK)
        st = aead_seal(s->aead, nonce, path, strlen(path), data, len, sealed, sealed + len);
    if (st != CAI_OK)
        goto out;
    if (sqlite3_prepare_v2(s->db, create ? "INSERT INTO resources(path, nonce, sealed, size, "
                                           "updated) VALUES(?, ?, ?, ?, ?)"
                                         : "INSERT OR REPLACE INTO resources(path, nonce, sealed, "
                                           "size, updated) VALUES(?, ?, ?, ?, ?)",
                           -1, &q, NULL) != SQLITE_OK ||
        sqlite3_bind_text(q, 1, path, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_blob(q, 2, nonce, sizeof(nonce), SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_blob(q, 3, sealed, (int)(len + AEAD_TAG_LEN), SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_int64(q, 4, (sqlite3_int64)len) != SQLITE_OK ||
        sqlite3_bind_int64(q, 5, (sqlite3_int64)time(NULL)) != SQLITE_OK) {
        st = db_fail(s, "storing a resource");
        goto out;
    }
    int rc = sqlite3_step(q);
    if (rc == SQLITE_CONSTRAINT && create &&
        sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_PRIMARYKEY)
        st = cai_fail(CAI_ERR_EXISTS, "there is already a resource at %s", path);
    else if (rc != SQLITE_DONE)
        st = db_fail(s, "storing a resource");
out:
    sqlite3_finalize(q);
    free(sealed); /* ciphertext only */
    return st;
}

cai_status kbs_store_put(kbs_store *s, const char *path, const uint8_t *data, size_t len) {
    return store_write(s, path, data, len, 0);
}

cai_status kbs_store_create(kbs_store *s, const char *path, const uint8_t *data, size_t len) {
    return store_write(s, path, data, len, 1);
}

cai_status kbs_store_get(kbs_store *s, const char *path, buf *out) {
    if (!kbs_resource_path_valid(path))
        return bad_path(path);
    sqlite3_stmt *q = NULL;
    cai_status st = CAI_OK;
    if (sqlite3_prepare_v2(s->db, "SELECT nonce, sealed FROM resources WHERE path = ?", -1, &q,
                           NULL) != SQLITE_OK ||
        sqlite3_bind_text(q, 1, path, -1, SQLITE_TRANSIENT) != SQLITE_OK) {
        st = db_fail(s, "reading a resource");
        goto out;
    }
    int rc = sqlite3_step(q);
    if (rc == SQLITE_DONE) {
        st = cai_fail(CAI_ERR_NOT_FOUND, "no resource at %.80s", path);
        goto out;
    }
    if (rc != SQLITE_ROW) {
        st = db_fail(s, "reading a resource");
        goto out;
    }
    const uint8_t *nonce = sqlite3_column_blob(q, 0), *sealed = sqlite3_column_blob(q, 1);
    int nn = sqlite3_column_bytes(q, 0), ns = sqlite3_column_bytes(q, 1);
    if (nn != AEAD_NONCE_LEN || ns < AEAD_TAG_LEN || (size_t)ns > KBS_RESOURCE_MAX + AEAD_TAG_LEN) {
        st = cai_fail(CAI_ERR_FORMAT, "resource %.80s is corrupt in the database", path);
        goto out;
    }
    size_t len = (size_t)ns - AEAD_TAG_LEN;
    out->len = 0;
    if ((st = buf_reserve(out, len + 1)) != CAI_OK)
        goto out;
    st = aead_open(s->aead, nonce, path, strlen(path), sealed, len, sealed + len, out->data);
    if (st == CAI_OK)
        out->len = len;
    else if (st == CAI_ERR_AUTH)
        st = cai_fail(CAI_ERR_AUTH, "resource %.80s does not decrypt: the database was "
                      "altered", path);
out:
    sqlite3_finalize(q);
    return st;
}

cai_status kbs_store_delete(kbs_store *s, const char *path) {
    if (!kbs_resource_path_valid(path))
        return bad_path(path);
    sqlite3_stmt *q = NULL;
    cai_status st = CAI_OK;
    if (sqlite3_prepare_v2(s->db, "DELETE FROM resources WHERE path = ?", -1, &q, NULL) != SQLITE_OK ||
        sqlite3_bind_text(q, 1, path, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_step(q) != SQLITE_DONE)
        st = db_fail(s, "deleting a resource");
    else if (sqlite3_changes(s->db) == 0)
        st = cai_fail(CAI_ERR_NOT_FOUND, "no resource at %.80s", path);
    sqlite3_finalize(q);
    return st;
}

/* Rows of a query as a JSON array of objects, column names as keys. */
static cai_status rows_json(kbs_store *s, sqlite3_stmt *q, json_t **out) {
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
        return db_fail(s, "listing");
    }
    *out = a;
    return CAI_OK;
}

cai_status kbs_store_list(kbs_store *s, json_t **out) {
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT path, size, updated FROM resources ORDER BY path", -1,
                           &q, NULL) != SQLITE_OK)
        return db_fail(s, "listing resources");
    cai_status st = rows_json(s, q, out);
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

cai_status kbs_store_audit(kbs_store *s, const kbs_audit_entry *e) {
    return audit_insert(s->db, e);
}

cai_status kbs_store_audit_many(kbs_store *s, const kbs_audit_entry *e, size_t n) {
    if (sqlite3_exec(s->audit_db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return cai_fail(CAI_ERR_IO, "database: audit: %s", sqlite3_errmsg(s->audit_db));
    cai_status st = CAI_OK;
    for (size_t i = 0; i < n && st == CAI_OK; i++)
        st = audit_insert(s->audit_db, &e[i]);
    if (st == CAI_OK && sqlite3_exec(s->audit_db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        st = cai_fail(CAI_ERR_IO, "database: audit commit: %s", sqlite3_errmsg(s->audit_db));
    if (st != CAI_OK)
        sqlite3_exec(s->audit_db, "ROLLBACK", NULL, NULL, NULL);
    return st;
}

cai_status kbs_store_audit_list(kbs_store *s, int limit, json_t **out) {
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT id, time, event, resource, client, evidence_digest, "
                           "claims_digest, detail FROM audit ORDER BY id DESC LIMIT ?", -1, &q,
                           NULL) != SQLITE_OK ||
        sqlite3_bind_int(q, 1, limit) != SQLITE_OK) {
        sqlite3_finalize(q);
        return db_fail(s, "reading the audit log");
    }
    cai_status st = rows_json(s, q, out);
    sqlite3_finalize(q);
    return st;
}

cai_status kbs_store_policy_set(kbs_store *s, const char *json) {
    sqlite3_stmt *q = NULL;
    cai_status st = CAI_OK;
    if (sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO policy(id, document, updated) "
                           "VALUES(1, ?, ?)", -1, &q, NULL) != SQLITE_OK ||
        sqlite3_bind_text(q, 1, json, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_int64(q, 2, (sqlite3_int64)time(NULL)) != SQLITE_OK ||
        sqlite3_step(q) != SQLITE_DONE)
        st = db_fail(s, "storing the policy");
    sqlite3_finalize(q);
    return st;
}

cai_status kbs_store_policy_get(kbs_store *s, char **out) {
    *out = NULL;
    sqlite3_stmt *q = NULL;
    cai_status st = CAI_OK;
    if (sqlite3_prepare_v2(s->db, "SELECT document FROM policy WHERE id = 1", -1, &q, NULL) != SQLITE_OK) {
        st = db_fail(s, "reading the policy");
    } else {
        int rc = sqlite3_step(q);
        if (rc == SQLITE_ROW) {
            *out = strdup((const char *)sqlite3_column_text(q, 0));
            if (*out == NULL)
                st = CAI_ERR_NOMEM;
        } else if (rc != SQLITE_DONE) {
            st = db_fail(s, "reading the policy");
        }
    }
    sqlite3_finalize(q);
    return st;
}

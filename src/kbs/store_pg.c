/* store_pg.c - the key broker store's PostgreSQL backend (store_db.h):
 * several brokers share one database. Writers serialise on a table lock,
 * readers see one snapshot (REPEATABLE READ); sessions and single-use
 * nonces are rows every broker sees, a nonce taken by one UPDATE ... WHERE
 * NOT used RETURNING. Every value goes in as a parameter (PQexecParams);
 * results come back in binary. A lost connection fails the statement that
 * found it, and the next use reconnects; a unit of work's first statement
 * is tried again once on a new connection, so it must be idempotent (the
 * nonce take records who took it, see pgb_nonce_take). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>
#include <openssl/rand.h>

#include "common/codec.h"
#include "common/log.h"
#include "crypto/aead.h"
#include "kbs/store_db.h"

/* The schema, one step per version; schema_version records those applied
 * (under an advisory lock, so brokers starting together migrate once). */
static const char *const MIGRATIONS[] = {
    /* 1 */
    "CREATE TABLE meta(name TEXT PRIMARY KEY, value BYTEA NOT NULL);"
    "CREATE TABLE resources(path TEXT COLLATE \"C\" PRIMARY KEY, nonce BYTEA NOT NULL,"
    " sealed BYTEA NOT NULL, size BIGINT NOT NULL, updated BIGINT NOT NULL,"
    " version BIGINT NOT NULL, gen BIGINT NOT NULL);"
    "CREATE TABLE policy(id INTEGER PRIMARY KEY CHECK (id = 1), document TEXT NOT NULL,"
    " updated BIGINT NOT NULL, gen BIGINT NOT NULL, mac BYTEA);"
    "CREATE TABLE audit(id BIGSERIAL PRIMARY KEY, time BIGINT NOT NULL, event TEXT NOT NULL,"
    " resource TEXT, client TEXT, evidence_digest TEXT, claims_digest TEXT, detail TEXT);"
    "CREATE TABLE sessions(id TEXT PRIMARY KEY, nonce TEXT NOT NULL, client TEXT NOT NULL,"
    " expires BIGINT NOT NULL, used BOOLEAN NOT NULL DEFAULT false, token TEXT);"
    "CREATE INDEX sessions_expires ON sessions(expires);",
    /* 2: who took a session's nonce (a random id per take): the take is
     * tried again after a connection lost on its answer, and must then find
     * it taken by itself, not by another. */
    "ALTER TABLE sessions ADD COLUMN taker TEXT;",
};
#define PG_SCHEMA_VERSION ((int)(sizeof(MIGRATIONS) / sizeof(MIGRATIONS[0])))
#define MIGRATION_LOCK "7235187934823412" /* pg_advisory_xact_lock key: cai kbs */
#define SWEEP_EVERY 64                     /* session_add calls per sweep */

struct kbs_db {
    PGconn *conn;
    PGconn *audit_conn; /* the audit writer's own */
    char where[160];    /* "PostgreSQL at host:port/db", for messages (no secrets) */
    unsigned adds;
    int in_tx;          /* conn is inside a transaction begin() opened */
};

/* ---- statements -------------------------------------------------------------- */

/* One parameter: text (bin = 0, NUL-terminated) or binary bytes. */
typedef struct {
    const void *v;
    size_t len;
    int bin;
} pg_arg;

#define TXT(s) ((pg_arg){(s), 0, 0})
#define BIN(p, n) ((pg_arg){(p), (n), 1})
#define NUL ((pg_arg){NULL, 0, 0})

static int lost(PGconn *c) {
    return PQstatus(c) != CONNECTION_OK;
}

/* libpq's message on one line (they end in, and may hold, newlines). */
static const char *one_line(const char *msg, char out[256]) {
    size_t n = 0;
    for (const char *p = msg ? msg : ""; *p && n < 255; p++)
        out[n++] = *p == '\n' || *p == '\t' ? ' ' : *p;
    while (n > 0 && out[n - 1] == ' ')
        n--;
    out[n] = '\0';
    return n ? out : "failed";
}

static cai_status pg_fail(kbs_db *d, PGconn *c, const char *what, const PGresult *r) {
    char m[256];
    if (lost(c))
        return cai_fail(CAI_ERR_IO, "database: %s: the connection to %s was lost (%s); this "
                        "request fails, the next one reconnects", what, d->where,
                        one_line(PQerrorMessage(c), m));
    return cai_fail(CAI_ERR_IO, "database: %s: %s", what,
                    one_line(r ? PQresultErrorMessage(r) : PQerrorMessage(c), m));
}

/* Makes sure |c| is connected: drains what the server sent while it was
 * idle (a shutdown notice closes it), and reconnects a lost connection. */
static cai_status pg_ready(kbs_db *d, PGconn *c, const char *what) {
    if (!lost(c) && PQtransactionStatus(c) == PQTRANS_IDLE)
        (void)PQconsumeInput(c);
    if (lost(c)) {
        PQreset(c);
        char m[256];
        if (lost(c))
            return cai_fail(CAI_ERR_IO, "database: %s: cannot reach %s: %s", what, d->where,
                            one_line(PQerrorMessage(c), m));
    }
    return CAI_OK;
}

/* Runs |sql| with |n| parameters; the result (binary columns) in |*out| if
 * it returned rows or a command tag. SQLSTATE 23505 (a unique key) is
 * CAI_ERR_EXISTS, without a message: the caller says what exists. */
static cai_status pg_exec(kbs_db *d, PGconn *c, const char *what, const char *sql, int n,
                          const pg_arg *a, PGresult **out) {
    const char *vals[8];
    int lens[8], fmts[8];
    CAI_ASSERT(n <= 8);
    for (int i = 0; i < n; i++) {
        vals[i] = a[i].v;
        lens[i] = (int)a[i].len;
        fmts[i] = a[i].bin;
    }
    PGresult *r = PQexecParams(c, sql, n, NULL, vals, lens, fmts, 1);
    ExecStatusType es = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (es == PGRES_TUPLES_OK || es == PGRES_COMMAND_OK) {
        if (out)
            *out = r;
        else
            PQclear(r);
        return CAI_OK;
    }
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    cai_status st = state && strcmp(state, "23505") == 0 ? CAI_ERR_EXISTS : pg_fail(d, c, what, r);
    PQclear(r);
    return st;
}

/* A statement without parameters or results (BEGIN, LOCK, COMMIT). */
static cai_status pg_cmd(kbs_db *d, PGconn *c, const char *what, const char *sql) {
    return pg_exec(d, c, what, sql, 0, NULL, NULL);
}

/* A statement that opens a unit of work: if the connection turns out to
 * have been lost (the database restarted), it reconnects and tries once
 * more. The loss may have come after the statement ran and committed, on
 * its answer: only idempotent statements go through here (a read, an
 * upsert, the nonce take with its taker id); the others use pg_once.
 * Inside a transaction it is a plain statement: a transaction lost is lost
 * (never carried on, piecemeal, on a new connection). */
static cai_status pg_first(kbs_db *d, PGconn *c, const char *what, const char *sql, int n,
                           const pg_arg *a, PGresult **out) {
    if (c == d->conn && d->in_tx)
        return pg_exec(d, c, what, sql, n, a, out);
    cai_status st = pg_ready(d, c, what);
    if (st != CAI_OK)
        return st;
    st = pg_exec(d, c, what, sql, n, a, out);
    if (st == CAI_ERR_IO && lost(c)) {
        log_warn("database: %s: the connection to %s was lost; reconnecting to try once more",
                 what, d->where);
        if ((st = pg_ready(d, c, what)) == CAI_OK)
            st = pg_exec(d, c, what, sql, n, a, out);
    }
    return st;
}

/* A statement run at most once: a lost connection is found and reopened
 * first, but one lost while the statement runs fails it (it may have been
 * done: an audit record is not written twice). */
static cai_status pg_once(kbs_db *d, PGconn *c, const char *what, const char *sql, int n,
                          const pg_arg *a, PGresult **out) {
    cai_status st = pg_ready(d, c, what);
    return st == CAI_OK ? pg_exec(d, c, what, sql, n, a, out) : st;
}

static cai_status get_u64(kbs_db *d, const PGresult *r, int row, int col, uint64_t *v) {
    CAI_UNUSED(d);
    if (PQgetisnull(r, row, col) || PQgetlength(r, row, col) != 8)
        return cai_fail(CAI_ERR_FORMAT, "database: an integer column is not 64-bit");
    const uint8_t *p = (const uint8_t *)PQgetvalue(r, row, col);
    uint64_t x = 0;
    for (int i = 0; i < 8; i++)
        x = x << 8 | p[i];
    *v = x;
    return CAI_OK;
}

static void fmt_u64(char out[24], uint64_t v) {
    snprintf(out, 24, "%llu", (unsigned long long)v);
}

static void fmt_i64(char out[24], long long v) {
    snprintf(out, 24, "%lld", v);
}

/* ---- the backend --------------------------------------------------------------- */

static void pg_close(kbs_db *d) {
    if (d == NULL)
        return;
    PQfinish(d->conn);
    PQfinish(d->audit_conn);
    free(d);
}

static cai_status pgb_begin(kbs_db *d, int write) {
    /* A writer locks meta against every other writer (SELECTs still run):
     * the state check, the write and the new state are one step. */
    cai_status st = pg_first(d, d->conn, "beginning a transaction",
                             write ? "BEGIN ISOLATION LEVEL READ COMMITTED"
                                   : "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
                             0, NULL, NULL);
    if (st == CAI_OK && write &&
        (st = pg_cmd(d, d->conn, "locking the store", "LOCK TABLE meta IN SHARE ROW EXCLUSIVE "
                     "MODE")) != CAI_OK && !lost(d->conn))
        PQclear(PQexec(d->conn, "ROLLBACK"));
    d->in_tx = st == CAI_OK;
    return st;
}

static cai_status pgb_end(kbs_db *d, cai_status st) {
    /* A COMMIT outside a transaction (the connection was lost and made
     * again) would succeed with a warning: refuse it. */
    if (st == CAI_OK && PQtransactionStatus(d->conn) != PQTRANS_INTRANS)
        st = cai_fail(CAI_ERR_IO, "database: committing: the transaction was lost (%s)",
                      d->where);
    if (st == CAI_OK)
        st = pg_cmd(d, d->conn, "committing", "COMMIT");
    if (st != CAI_OK && !lost(d->conn) && PQtransactionStatus(d->conn) != PQTRANS_IDLE)
        PQclear(PQexec(d->conn, "ROLLBACK"));
    d->in_tx = 0;
    return st;
}

static cai_status pgb_meta_get(kbs_db *d, const char *name, buf *out, int *found) {
    PGresult *r = NULL;
    pg_arg a[] = {TXT(name)};
    *found = 0;
    out->len = 0;
    cai_status st = pg_first(d, d->conn, "reading the meta table",
                             "SELECT value FROM meta WHERE name = $1", 1, a, &r);
    if (st == CAI_OK && PQntuples(r) == 1) {
        st = buf_append(out, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0));
        *found = st == CAI_OK;
    }
    PQclear(r);
    return st;
}

static cai_status pgb_meta_put(kbs_db *d, const char *name, const void *v, size_t len) {
    pg_arg a[] = {TXT(name), BIN(v, len)};
    return pg_exec(d, d->conn, "writing the meta table",
                   "INSERT INTO meta(name, value) VALUES($1, $2) ON CONFLICT (name) DO UPDATE "
                   "SET value = EXCLUDED.value", 2, a, NULL);
}

static cai_status pgb_meta_add(kbs_db *d, const char *name, const void *v, size_t len,
                               int *added) {
    PGresult *r = NULL;
    pg_arg a[] = {TXT(name), BIN(v, len)};
    cai_status st = pg_first(d, d->conn, "writing the meta table",
                             "INSERT INTO meta(name, value) VALUES($1, $2) ON CONFLICT (name) DO "
                             "NOTHING", 2, a, &r);
    *added = st == CAI_OK && strcmp(PQcmdTuples(r), "1") == 0;
    PQclear(r);
    return st;
}

static cai_status pgb_policy_gen(kbs_db *d, int *found, uint64_t *gen) {
    PGresult *r = NULL;
    *found = 0;
    cai_status st = pg_first(d, d->conn, "reading the policy",
                             "SELECT gen FROM policy WHERE id = 1", 0, NULL, &r);
    if (st == CAI_OK && PQntuples(r) == 1 && (st = get_u64(d, r, 0, 0, gen)) == CAI_OK)
        *found = 1;
    PQclear(r);
    return st;
}

static cai_status pgb_resource_rows(kbs_db *d, kbs_db_row_fn fn, void *arg) {
    PGresult *r = NULL;
    /* Byte order (COLLATE "C"), as SQLite's: the state MAC covers it. */
    cai_status st = pg_exec(d, d->conn, "reading the resources",
                            "SELECT path, version, gen FROM resources ORDER BY path COLLATE \"C\"",
                            0, NULL, &r);
    for (int i = 0; st == CAI_OK && i < PQntuples(r); i++) {
        uint64_t version = 0, gen = 0;
        if ((st = get_u64(d, r, i, 1, &version)) == CAI_OK &&
            (st = get_u64(d, r, i, 2, &gen)) == CAI_OK)
            st = fn(arg, PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0), version, gen);
    }
    PQclear(r);
    return st;
}

static cai_status pgb_resource_version(kbs_db *d, const char *path, int *found,
                                       uint64_t *version) {
    PGresult *r = NULL;
    pg_arg a[] = {TXT(path)};
    *found = 0;
    cai_status st = pg_exec(d, d->conn, "storing a resource",
                            "SELECT version FROM resources WHERE path = $1", 1, a, &r);
    if (st == CAI_OK && PQntuples(r) == 1 && (st = get_u64(d, r, 0, 0, version)) == CAI_OK)
        *found = 1;
    PQclear(r);
    return st;
}

static cai_status pgb_resource_write(kbs_db *d, const kbs_db_resource *w, int replace) {
    char size[24], updated[24], version[24], gen[24];
    fmt_u64(size, w->size);
    fmt_i64(updated, (long long)time(NULL));
    fmt_u64(version, w->version);
    fmt_u64(gen, w->gen);
    pg_arg a[] = {TXT(w->path), BIN(w->nonce, AEAD_NONCE_LEN), BIN(w->sealed, w->sealed_len),
                  TXT(size), TXT(updated), TXT(version), TXT(gen)};
    cai_status st = pg_exec(d, d->conn, "storing a resource",
                            replace ? "INSERT INTO resources(path, nonce, sealed, size, updated, "
                                      "version, gen) VALUES($1, $2, $3, $4, $5, $6, $7) ON "
                                      "CONFLICT (path) DO UPDATE SET nonce = EXCLUDED.nonce, "
                                      "sealed = EXCLUDED.sealed, size = EXCLUDED.size, updated = "
                                      "EXCLUDED.updated, version = EXCLUDED.version, gen = "
                                      "EXCLUDED.gen"
                                    : "INSERT INTO resources(path, nonce, sealed, size, updated, "
                                      "version, gen) VALUES($1, $2, $3, $4, $5, $6, $7)",
                            7, a, NULL);
    if (st == CAI_ERR_EXISTS)
        st = cai_fail(CAI_ERR_EXISTS, "there is already a resource at %s", w->path);
    return st;
}

static cai_status pgb_resource_read(kbs_db *d, const char *path, buf *nonce, buf *sealed,
                                    uint64_t *version, uint64_t *gen) {
    PGresult *r = NULL;
    pg_arg a[] = {TXT(path)};
    nonce->len = sealed->len = 0;
    cai_status st = pg_exec(d, d->conn, "reading a resource",
                            "SELECT nonce, sealed, version, gen FROM resources WHERE path = $1",
                            1, a, &r);
    if (st == CAI_OK && PQntuples(r) == 0)
        st = cai_fail(CAI_ERR_NOT_FOUND, "no resource at %.80s", path);
    if (st == CAI_OK)
        st = buf_append(nonce, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0));
    if (st == CAI_OK)
        st = buf_append(sealed, PQgetvalue(r, 0, 1), (size_t)PQgetlength(r, 0, 1));
    if (st == CAI_OK && (st = get_u64(d, r, 0, 2, version)) == CAI_OK)
        st = get_u64(d, r, 0, 3, gen);
    PQclear(r);
    return st;
}

static cai_status pgb_resource_delete(kbs_db *d, const char *path) {
    PGresult *r = NULL;
    pg_arg a[] = {TXT(path)};
    cai_status st = pg_exec(d, d->conn, "deleting a resource",
                            "DELETE FROM resources WHERE path = $1", 1, a, &r);
    if (st == CAI_OK && strcmp(PQcmdTuples(r), "0") == 0)
        st = cai_fail(CAI_ERR_NOT_FOUND, "no resource at %.80s", path);
    PQclear(r);
    return st;
}

/* Rows as a JSON array of objects, column names as keys; |ints| flags the
 * bigint columns (others are text), NULL as null. */
static cai_status rows_json(kbs_db *d, const PGresult *r, const char *ints, json_t **out) {
    json_t *a = json_array();
    cai_status st = a ? CAI_OK : CAI_ERR_NOMEM;
    for (int i = 0; st == CAI_OK && i < PQntuples(r); i++) {
        json_t *o = json_object();
        if (o == NULL || json_array_append_new(a, o) != 0) {
            st = CAI_ERR_NOMEM;
            break;
        }
        for (int c = 0; st == CAI_OK && c < PQnfields(r); c++) {
            uint64_t v = 0;
            json_t *j = NULL;
            if (PQgetisnull(r, i, c))
                j = json_null();
            else if (ints[c] == 'i' && (st = get_u64(d, r, i, c, &v)) == CAI_OK)
                j = json_integer((json_int_t)v);
            else if (ints[c] != 'i')
                j = json_stringn(PQgetvalue(r, i, c), (size_t)PQgetlength(r, i, c));
            if (st == CAI_OK && (j == NULL || json_object_set_new(o, PQfname(r, c), j) != 0))
                st = CAI_ERR_NOMEM;
        }
    }
    if (st != CAI_OK)
        json_decref(a);
    else
        *out = a;
    return st;
}

static cai_status pgb_resource_list(kbs_db *d, json_t **out) {
    PGresult *r = NULL;
    cai_status st = pg_first(d, d->conn, "listing resources", "SELECT path, size, updated FROM "
                             "resources ORDER BY path COLLATE \"C\"", 0, NULL, &r);
    if (st == CAI_OK)
        st = rows_json(d, r, "tii", out);
    PQclear(r);
    return st;
}

static cai_status pgb_policy_write(kbs_db *d, const char *doc, uint64_t gen, const uint8_t *mac,
                                   size_t mac_len) {
    char updated[24], g[24];
    fmt_i64(updated, (long long)time(NULL));
    fmt_u64(g, gen);
    pg_arg a[] = {TXT(doc), TXT(updated), TXT(g), BIN(mac, mac_len)};
    return pg_exec(d, d->conn, "storing the policy",
                   "INSERT INTO policy(id, document, updated, gen, mac) VALUES(1, $1, $2, $3, $4) "
                   "ON CONFLICT (id) DO UPDATE SET document = EXCLUDED.document, updated = "
                   "EXCLUDED.updated, gen = EXCLUDED.gen, mac = EXCLUDED.mac", 4, a, NULL);
}

static cai_status pgb_policy_read(kbs_db *d, int *found, char **doc, size_t *len, uint64_t *gen,
                                  buf *mac, int *has_mac) {
    PGresult *r = NULL;
    *found = *has_mac = 0;
    *doc = NULL;
    mac->len = 0;
    cai_status st = pg_exec(d, d->conn, "reading the policy",
                            "SELECT document, gen, mac FROM policy WHERE id = 1", 0, NULL, &r);
    if (st != CAI_OK || PQntuples(r) == 0)
        goto out;
    if ((st = get_u64(d, r, 0, 1, gen)) != CAI_OK)
        goto out;
    if (!PQgetisnull(r, 0, 2)) {
        *has_mac = 1;
        if ((st = buf_append(mac, PQgetvalue(r, 0, 2), (size_t)PQgetlength(r, 0, 2))) != CAI_OK)
            goto out;
    }
    *len = (size_t)PQgetlength(r, 0, 0);
    if ((*doc = malloc(*len + 1)) == NULL) {
        st = CAI_ERR_NOMEM;
        goto out;
    }
    memcpy(*doc, PQgetvalue(r, 0, 0), *len);
    (*doc)[*len] = '\0';
    *found = 1;
out:
    PQclear(r);
    return st;
}

/* A copy of |s| that PostgreSQL's text accepts: audit details may quote
 * what a client sent, cut at a byte count; invalid UTF-8 becomes U+FFFD.
 * NULL if |s| is, or out of memory. */
static char *text_safe(const char *s) {
    buf b;
    buf_init(&b, 0);
    if (s == NULL || utf8_sanitize(s, strlen(s), &b) != CAI_OK || buf_terminate(&b) != CAI_OK) {
        buf_free(&b);
        return NULL;
    }
    char *c = strndup(b.data ? (const char *)b.data : "", b.len);
    buf_free(&b);
    return c;
}

static cai_status audit_insert(kbs_db *d, PGconn *c, const kbs_audit_entry *e, int first) {
    char t[24];
    fmt_i64(t, (long long)time(NULL));
    const char *v[6] = {e->event, e->resource, e->client, e->evidence_digest, e->claims_digest,
                        e->detail};
    char *safe[6] = {NULL};
    pg_arg a[7] = {TXT(t)};
    cai_status st = CAI_OK;
    for (int i = 0; i < 6; i++) {
        if (v[i] && (safe[i] = text_safe(v[i])) == NULL)
            st = CAI_ERR_NOMEM;
        a[i + 1] = safe[i] ? TXT(safe[i]) : NUL;
    }
    static const char sql[] = "INSERT INTO audit(time, event, resource, client, evidence_digest, "
                              "claims_digest, detail) VALUES($1, $2, $3, $4, $5, $6, $7)";
    if (st == CAI_OK)
        st = first ? pg_once(d, c, "writing the audit log", sql, 7, a, NULL)
                   : pg_exec(d, c, "writing the audit log", sql, 7, a, NULL);
    for (int i = 0; i < 6; i++)
        free(safe[i]);
    return st;
}

static cai_status pgb_audit(kbs_db *d, const kbs_audit_entry *e) {
    return audit_insert(d, d->conn, e, 1);
}

/* One transaction, one commit (synchronous_commit as the server has it:
 * on by default, so the records are durable when COMMIT returns). */
static cai_status pgb_audit_many(kbs_db *d, const kbs_audit_entry *e, size_t n) {
    cai_status st = pg_first(d, d->audit_conn, "audit", "BEGIN", 0, NULL, NULL);
    if (st != CAI_OK)
        return st;
    for (size_t i = 0; i < n && st == CAI_OK; i++)
        st = audit_insert(d, d->audit_conn, &e[i], 0);
    if (st == CAI_OK)
        st = pg_cmd(d, d->audit_conn, "audit commit", "COMMIT");
    if (st != CAI_OK && !lost(d->audit_conn) &&
        PQtransactionStatus(d->audit_conn) != PQTRANS_IDLE)
        PQclear(PQexec(d->audit_conn, "ROLLBACK"));
    return st;
}

static cai_status pgb_audit_list(kbs_db *d, int limit, json_t **out) {
    PGresult *r = NULL;
    char l[24];
    fmt_i64(l, limit);
    pg_arg a[] = {TXT(l)};
    cai_status st = pg_first(d, d->conn, "reading the audit log",
                             "SELECT id, time, event, resource, client, evidence_digest, "
                             "claims_digest, detail FROM audit ORDER BY id DESC LIMIT $1", 1, a, &r);
    if (st == CAI_OK)
        st = rows_json(d, r, "iitttttt", out);
    PQclear(r);
    return st;
}

/* ---- sessions ------------------------------------------------------------------ */

static cai_status pgb_session_add(kbs_db *d, const char *id, const char *nonce,
                                  const char *client, time_t expires, time_t now) {
    char e[24], n[24];
    fmt_i64(e, (long long)expires);
    fmt_i64(n, (long long)now);
    pg_arg a[] = {TXT(id), TXT(nonce), TXT(client), TXT(e)};
    cai_status st = pg_first(d, d->conn, "recording a session", "INSERT INTO sessions(id, nonce, "
                             "client, expires) VALUES($1, $2, $3, $4)", 4, a, NULL);
    if (st == CAI_ERR_EXISTS)
        st = cai_fail(CAI_ERR_EXISTS, "database: a session id was made twice");
    if (st == CAI_OK && ++d->adds % SWEEP_EVERY == 0) {
        pg_arg b[] = {TXT(n)};
        st = pg_exec(d, d->conn, "removing expired sessions",
                     "DELETE FROM sessions WHERE expires < $1", 1, b, NULL);
    }
    return st;
}

static cai_status pgb_nonce_take(kbs_db *d, const char *id, time_t now, char nonce[64],
                                 char client[64]) {
    PGresult *r = NULL;
    char n[24], taker[33];
    uint8_t rnd[16];
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        return cai_fail(CAI_ERR_INTERNAL, "taking a session's nonce: no random bytes");
    hex_encode(taker, rnd, sizeof(rnd));
    fmt_i64(n, (long long)now);
    pg_arg a[] = {TXT(id), TXT(n), TXT(taker)};
    /* The row lock makes this atomic across brokers: of two racing, one
     * updates the row, the other then sees it taken by another taker and
     * updates nothing. This take tried again (its answer was lost) finds
     * the row taken by itself, and has it. */
    cai_status st = pg_first(d, d->conn, "taking a session's nonce",
                             "UPDATE sessions SET used = true, taker = $3 WHERE id = $1 AND "
                             "expires >= $2 AND (NOT used OR taker = $3) RETURNING nonce, client",
                             3, a, &r);
    if (st == CAI_OK && PQntuples(r) != 1)
        st = cai_fail(CAI_ERR_NOT_FOUND, "no live session with that id, or its nonce was "
                      "already used");
    if (st == CAI_OK && (PQgetlength(r, 0, 0) >= 64 || PQgetlength(r, 0, 1) >= 64))
        st = cai_fail(CAI_ERR_FORMAT, "database: a session row is malformed");
    if (st == CAI_OK) {
        memcpy(nonce, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0) + 1);
        memcpy(client, PQgetvalue(r, 0, 1), (size_t)PQgetlength(r, 0, 1) + 1);
    }
    PQclear(r);
    return st;
}

static cai_status pgb_session_set_token(kbs_db *d, const char *id, const char *token,
                                        time_t expires) {
    char e[24];
    fmt_i64(e, (long long)expires);
    pg_arg a[] = {TXT(id), TXT(token), TXT(e)};
    return pg_first(d, d->conn, "recording a session's token",
                    "UPDATE sessions SET token = $2, expires = $3 WHERE id = $1 AND used", 3, a,
                    NULL);
}

static cai_status pgb_session_get_token(kbs_db *d, const char *id, time_t now, char **token) {
    PGresult *r = NULL;
    char n[24];
    fmt_i64(n, (long long)now);
    pg_arg a[] = {TXT(id), TXT(n)};
    *token = NULL;
    cai_status st = pg_first(d, d->conn, "reading a session", "SELECT token FROM sessions WHERE "
                             "id = $1 AND used AND token IS NOT NULL AND expires >= $2", 2, a, &r);
    if (st == CAI_OK && PQntuples(r) != 1)
        st = cai_fail(CAI_ERR_NOT_FOUND, "no live attested session with that id");
    if (st == CAI_OK && (*token = strndup(PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0))) ==
                            NULL)
        st = CAI_ERR_NOMEM;
    PQclear(r);
    return st;
}

static const kbs_db_ops PG_OPS = {
    .name = "PostgreSQL",
    .shared = 1,
    .close = pg_close,
    .begin = pgb_begin,
    .end = pgb_end,
    .meta_get = pgb_meta_get,
    .meta_put = pgb_meta_put,
    .meta_add = pgb_meta_add,
    .policy_gen = pgb_policy_gen,
    .resource_rows = pgb_resource_rows,
    .resource_version = pgb_resource_version,
    .resource_write = pgb_resource_write,
    .resource_read = pgb_resource_read,
    .resource_delete = pgb_resource_delete,
    .resource_list = pgb_resource_list,
    .policy_write = pgb_policy_write,
    .policy_read = pgb_policy_read,
    .audit = pgb_audit,
    .audit_many = pgb_audit_many,
    .audit_list = pgb_audit_list,
    .session_add = pgb_session_add,
    .nonce_take = pgb_nonce_take,
    .session_set_token = pgb_session_set_token,
    .session_get_token = pgb_session_get_token,
};

/* ---- opening ---------------------------------------------------------------- */

/* Connects with |conninfo|. libpq's messages may quote the URI's pieces:
 * the password, if one is given, is cut out of what is reported. */
static cai_status connect_one(const char *conninfo, const char *password, PGconn **out) {
    *out = PQconnectdb(conninfo);
    if (*out == NULL)
        return CAI_ERR_NOMEM;
    if (PQstatus(*out) == CONNECTION_OK)
        return CAI_OK;
    char m[256];
    const char *msg = one_line(PQerrorMessage(*out), m);
    if (password && *password && strstr(PQerrorMessage(*out), password))
        msg = "(the message quoted the password: withheld)";
    return cai_fail(CAI_ERR_IO, "cannot connect to PostgreSQL: %s", msg);
}

/* Brings the schema to PG_SCHEMA_VERSION; a newer one is refused. */
static cai_status migrate(kbs_db *d) {
    PGresult *r = NULL;
    uint64_t v = 0;
    cai_status st = pg_cmd(d, d->conn, "migrating the schema", "BEGIN");
    if (st != CAI_OK)
        return st;
    if ((st = pg_cmd(d, d->conn, "migrating the schema",
                     "SELECT pg_advisory_xact_lock(" MIGRATION_LOCK ")")) != CAI_OK ||
        (st = pg_cmd(d, d->conn, "migrating the schema",
                     "CREATE TABLE IF NOT EXISTS schema_version(version INTEGER PRIMARY KEY, "
                     "applied BIGINT NOT NULL)")) != CAI_OK ||
        (st = pg_exec(d, d->conn, "migrating the schema",
                      "SELECT coalesce(max(version), 0)::bigint FROM schema_version", 0, NULL,
                      &r)) != CAI_OK ||
        (st = get_u64(d, r, 0, 0, &v)) != CAI_OK)
        goto out;
    if (v > (uint64_t)PG_SCHEMA_VERSION) {
        st = cai_fail(CAI_ERR_UNSUPPORTED, "the database has schema version %llu; this cai kbs "
                      "knows %d (a newer cai kbs migrated it)", (unsigned long long)v,
                      PG_SCHEMA_VERSION);
        goto out;
    }
    for (int i = (int)v; st == CAI_OK && i < PG_SCHEMA_VERSION; i++) {
        PGresult *m = PQexec(d->conn, MIGRATIONS[i]); /* DDL, no values */
        if (m == NULL || PQresultStatus(m) != PGRES_COMMAND_OK)
            st = pg_fail(d, d->conn, "migrating the schema", m);
        PQclear(m);
        char ver[24], now[24];
        fmt_i64(ver, i + 1);
        fmt_i64(now, (long long)time(NULL));
        pg_arg a[] = {TXT(ver), TXT(now)};
        if (st == CAI_OK)
            st = pg_exec(d, d->conn, "migrating the schema",
                         "INSERT INTO schema_version(version, applied) VALUES($1, $2)", 2, a, NULL);
    }
out:
    PQclear(r);
    if (st == CAI_OK)
        st = pg_cmd(d, d->conn, "migrating the schema", "COMMIT");
    if (st != CAI_OK && !lost(d->conn))
        PQclear(PQexec(d->conn, "ROLLBACK"));
    return st;
}

cai_status kbs_db_pg_open(const char *conninfo, kbs_db **out, const kbs_db_ops **ops) {
    *out = NULL;
    *ops = &PG_OPS;
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &perr);
    if (opts == NULL) {
        /* Its message may quote the URI: not shown. */
        PQfreemem(perr);
        return cai_fail(CAI_ERR_INVALID_ARG, "the PostgreSQL connection URI is malformed "
                        "(postgresql://[user[:password]@][host][:port][/dbname][?param=value])");
    }
    const char *password = NULL;
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (strcmp(o->keyword, "password") == 0)
            password = o->val;
    kbs_db *d = calloc(1, sizeof(*d));
    cai_status st = d ? connect_one(conninfo, password, &d->conn) : CAI_ERR_NOMEM;
    if (st == CAI_OK)
        st = connect_one(conninfo, password, &d->audit_conn);
    PQconninfoFree(opts); /* libpq's copy of the password */
    if (st != CAI_OK)
        goto fail;
    snprintf(d->where, sizeof(d->where), "PostgreSQL at %s:%s/%s", PQhost(d->conn),
             PQport(d->conn), PQdb(d->conn));
    if ((st = migrate(d)) != CAI_OK)
        goto fail;
    *out = d;
    return CAI_OK;
fail:
    pg_close(d);
    return st;
}

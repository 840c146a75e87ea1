/* test_kbs_store.c - the key broker's SQLite storage, encrypted at rest. */
#include <sqlite3.h>
#include <unistd.h>

#include "crypto/aead.h"
#include "crypto/kdf.h"
#include "kbs/store.h"
#include "test.h"

static char dir[64];
static char db[128];
static const uint8_t master[32] = {1, 2, 3};
static const char secret[] = "0123456789abcdef-the-model-key-!";

static void setup(void) {
    snprintf(dir, sizeof(dir), "/tmp/cai-test-kbs.XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    snprintf(db, sizeof(db), "%s/kbs.db", dir);
}

/* sql runs |stmt| on the database with another connection, as an attacker
 * who can write the file would. */
static void sql(const char *stmt) {
    sqlite3 *raw = NULL;
    CHECK(sqlite3_open(db, &raw) == SQLITE_OK);
    char *err = NULL;
    if (sqlite3_exec(raw, stmt, NULL, NULL, &err) != SQLITE_OK) {
        printf("  sql: %s: %s\n", stmt, err);
        CHECK(0);
    }
    sqlite3_free(err);
    sqlite3_close(raw);
}

/* cp copies a file (the database's backup, or its state file). */
static void cp(const char *from_suffix, const char *to_suffix) {
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "cp '%s%s' '%s%s'", db, from_suffix, db, to_suffix);
    CHECK(system(cmd) == 0);
}

/* A copy of the database as it stands (checkpointed: one file). */
static void backup(const char *suffix) {
    char to[200];
    snprintf(to, sizeof(to), "VACUUM INTO '%s%s'", db, suffix);
    sql(to);
}

static int errmsg_has(cai_status st, const char *what) {
    const char *m = cai_errmsg(st);
    if (strstr(m, what) != NULL)
        return 1;
    printf("  message \"%s\" lacks \"%s\"\n", m, what);
    return 0;
}

static void teardown(void) {
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

static void test_put_get_list_delete(void) {
    setup();
    kbs_store *s = NULL;
    CHECK_OK(kbs_store_open(db, master, &s));
    if (!s)
        return teardown();
    CHECK_OK(kbs_store_put(s, "cai/qwen/key", (const uint8_t *)secret, 32));
    CHECK_OK(kbs_store_put(s, "cai/empty/key", (const uint8_t *)"", 0));
    buf b;
    buf_init(&b, 0);
    CHECK_OK(kbs_store_get(s, "cai/qwen/key", &b));
    CHECK(b.len == 32 && memcmp(b.data, secret, 32) == 0);
    CHECK_OK(kbs_store_get(s, "cai/empty/key", &b));
    CHECK(b.len == 0);
    CHECK_ST(kbs_store_get(s, "cai/none/key", &b), CAI_ERR_NOT_FOUND);
    json_t *l = NULL;
    CHECK_OK(kbs_store_list(s, &l));
    CHECK(json_array_size(l) == 2);
    CHECK(strcmp(json_string_value(json_object_get(json_array_get(l, 1), "path")), "cai/qwen/key") == 0);
    CHECK(json_integer_value(json_object_get(json_array_get(l, 1), "size")) == 32);
    json_decref(l);
    CHECK_OK(kbs_store_put(s, "cai/qwen/key", (const uint8_t *)"new", 3)); /* replace */
    CHECK_OK(kbs_store_get(s, "cai/qwen/key", &b));
    CHECK(b.len == 3);
    /* create-only: refused where a value exists, which stays as it was */
    CHECK_ST(kbs_store_create(s, "cai/qwen/key", (const uint8_t *)"other", 5), CAI_ERR_EXISTS);
    CHECK_OK(kbs_store_get(s, "cai/qwen/key", &b));
    CHECK(b.len == 3 && memcmp(b.data, "new", 3) == 0);
    CHECK_OK(kbs_store_create(s, "cai/fresh/key", (const uint8_t *)"first", 5));
    CHECK_OK(kbs_store_get(s, "cai/fresh/key", &b));
    CHECK(b.len == 5 && memcmp(b.data, "first", 5) == 0);
    CHECK_OK(kbs_store_delete(s, "cai/fresh/key"));
    CHECK_OK(kbs_store_delete(s, "cai/qwen/key"));
    CHECK_ST(kbs_store_delete(s, "cai/qwen/key"), CAI_ERR_NOT_FOUND);
    CHECK_ST(kbs_store_get(s, "cai/qwen/key", &b), CAI_ERR_NOT_FOUND);
    buf_free(&b);
    kbs_store_close(s);
    teardown();
}

static void test_persistent_and_encrypted(void) {
    setup();
    kbs_store *s = NULL;
    CHECK_OK(kbs_store_open(db, master, &s));
    if (s)
        CHECK_OK(kbs_store_put(s, "cai/qwen/key", (const uint8_t *)secret, 32));
    kbs_store_close(s);
    /* No plaintext in any file of the database (main, WAL, shm). */
    const char *suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char p[160];
        snprintf(p, sizeof(p), "%s%s", db, suffix[i]);
        FILE *f = fopen(p, "rb");
        if (!f)
            continue;
        static char data[1 << 20];
        size_t n = fread(data, 1, sizeof(data), f);
        fclose(f);
        CHECK(memmem(data, n, secret, 16) == NULL);
    }
    uint8_t wrong[32] = {9};
    s = NULL;
    CHECK_ST(kbs_store_open(db, wrong, &s), CAI_ERR_WRONG_KEY);
    CHECK(s == NULL);
    CHECK_OK(kbs_store_open(db, master, &s));
    buf b;
    buf_init(&b, 0);
    if (s)
        CHECK_OK(kbs_store_get(s, "cai/qwen/key", &b));
    CHECK(b.len == 32 && memcmp(b.data, secret, 32) == 0);
    buf_free(&b);
    kbs_store_close(s);
    teardown();
}

static void test_tampered_rows_refused(void) {
    setup();
    kbs_store *s = NULL;
    CHECK_OK(kbs_store_open(db, master, &s));
    if (!s)
        return teardown();
    CHECK_OK(kbs_store_put(s, "cai/a/key", (const uint8_t *)secret, 32));
    CHECK_OK(kbs_store_put(s, "cai/b/key", (const uint8_t *)"other", 5));
    sqlite3 *raw = NULL;
    CHECK(sqlite3_open(db, &raw) == SQLITE_OK);
    /* a row moved to another path */
    CHECK(sqlite3_exec(raw, "UPDATE resources SET path = 'cai/c/key' WHERE path = 'cai/a/key'",
                       NULL, NULL, NULL) == SQLITE_OK);
    /* a flipped ciphertext byte */
    CHECK(sqlite3_exec(raw, "UPDATE resources SET sealed = X'00' || substr(sealed, 2) WHERE "
                       "path = 'cai/b/key'", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(raw);
    buf b;
    buf_init(&b, 0);
    CHECK_ST(kbs_store_get(s, "cai/c/key", &b), CAI_ERR_AUTH);
    CHECK_ST(kbs_store_get(s, "cai/b/key", &b), CAI_ERR_AUTH);
    CHECK(b.len == 0);
    buf_free(&b);
    kbs_store_close(s);
    teardown();
}

static void test_paths_and_limits(void) {
    /* the rule itself is tested in test_common (respath); here: the store
     * applies it to every write, read and delete */
    setup();
    kbs_store *s = NULL;
    CHECK_OK(kbs_store_open(db, master, &s));
    if (s) {
        CHECK_ST(kbs_store_put(s, "../x/y", (const uint8_t *)"x", 1), CAI_ERR_INVALID_ARG);
        CHECK_ST(kbs_store_create(s, "a/.b/c", (const uint8_t *)"x", 1), CAI_ERR_INVALID_ARG);
        CHECK(strstr(cai_errmsg(CAI_ERR_INVALID_ARG), "is not repo/type/tag") != NULL);
        buf b;
        buf_init(&b, 0);
        CHECK_ST(kbs_store_get(s, "a/b", &b), CAI_ERR_INVALID_ARG);
        CHECK_ST(kbs_store_delete(s, "a/b/c/d"), CAI_ERR_INVALID_ARG);
        buf_free(&b);
        uint8_t *big = calloc(1, KBS_RESOURCE_MAX + 1);
        CHECK_ST(kbs_store_put(s, "a/b/c", big, KBS_RESOURCE_MAX + 1), CAI_ERR_LIMIT);
        free(big);
    }
    kbs_store_close(s);
    teardown();
}

static void test_audit_and_policy(void) {
    setup();
    kbs_store *s = NULL;
    CHECK_OK(kbs_store_open(db, master, &s));
    if (!s)
        return teardown();
    kbs_audit_entry e = {.event = "release", .resource = "cai/qwen/key", .client = "127.0.0.1",
                         .evidence_digest = "ab", .claims_digest = "cd"};
    CHECK_OK(kbs_store_audit(s, &e));
    e = (kbs_audit_entry){.event = "refuse", .detail = "debug TD"};
    CHECK_OK(kbs_store_audit(s, &e));
    json_t *l = NULL;
    CHECK_OK(kbs_store_audit_list(s, 10, &l));
    CHECK(json_array_size(l) == 2);
    json_t *newest = json_array_get(l, 0);
    CHECK(strcmp(json_string_value(json_object_get(newest, "event")), "refuse") == 0);
    CHECK(json_is_null(json_object_get(newest, "resource")));
    CHECK(json_integer_value(json_object_get(newest, "time")) > 1700000000);
    json_decref(l);
    char *p = NULL;
    CHECK_OK(kbs_store_policy_get(s, &p));
    CHECK(p == NULL);
    CHECK_OK(kbs_store_policy_set(s, "{\"default\":\"deny\"}"));
    CHECK_OK(kbs_store_policy_get(s, &p));
    CHECK(p && strcmp(p, "{\"default\":\"deny\"}") == 0);
    free(p);
    kbs_store_close(s);
    teardown();
}

/* Issue 15 item 1: the policy row was neither encrypted nor authenticated;
 * whoever could write the file could rewrite it. Now the row carries a MAC
 * under the master key over its identity, generation and document. */
static void test_policy_authenticated(void) {
    setup();
    kbs_store *s = NULL;
    char *p = NULL;
    CHECK_OK(kbs_store_open(db, master, &s));
    if (!s)
        return teardown();
    CHECK_OK(kbs_store_policy_set(s, "{\"v\":\"strict\"}"));
    backup(".old"); /* a copy holding the strict policy, validly MACed */
    CHECK_OK(kbs_store_policy_set(s, "{\"v\":\"stricter\"}"));
    kbs_store_close(s);
    /* The document rewritten in place: refused at open's policy load. */
    sql("UPDATE policy SET document = '{\"v\":\"allow-all\"}'");
    s = NULL;
    CHECK_OK(kbs_store_open(db, master, &s));
    CHECK_ST(kbs_store_policy_get(s, &p), CAI_ERR_AUTH);
    CHECK(p == NULL && errmsg_has(CAI_ERR_AUTH, "policy check failed"));
    kbs_store_close(s);
    /* Its MAC removed (as if a schema-1 broker had written it). */
    sql("UPDATE policy SET document = '{\"v\":\"stricter\"}', mac = NULL");
    s = NULL;
    CHECK_OK(kbs_store_open(db, master, &s));
    CHECK_ST(kbs_store_policy_get(s, &p), CAI_ERR_AUTH);
    CHECK(errmsg_has(CAI_ERR_AUTH, "not authenticated"));
    kbs_store_close(s);
    /* An older, validly MACed policy row swapped in from the backup: its
     * generation is not the current one. */
    char stmt[400];
    snprintf(stmt, sizeof(stmt), "ATTACH '%s.old' AS old; DELETE FROM policy; INSERT INTO policy "
             "SELECT * FROM old.policy", db);
    sql(stmt);
    s = NULL;
    CHECK_ST(kbs_store_open(db, master, &s), CAI_ERR_AUTH);
    CHECK(s == NULL && errmsg_has(CAI_ERR_AUTH, "store check failed"));
    /* The same row with its generation edited to the current one: the MAC
     * covers the generation. */
    sql("UPDATE policy SET gen = gen + 1");
    CHECK_OK(kbs_store_open(db, master, &s));
    CHECK_ST(kbs_store_policy_get(s, &p), CAI_ERR_AUTH);
    CHECK(errmsg_has(CAI_ERR_AUTH, "policy check failed"));
    /* Set again through the store: accepted. */
    CHECK_OK(kbs_store_policy_set(s, "{\"v\":\"new\"}"));
    CHECK_OK(kbs_store_policy_get(s, &p));
    CHECK(p && strcmp(p, "{\"v\":\"new\"}") == 0);
    free(p);
    kbs_store_close(s);
    teardown();
}

/* Issue 15 item 2: the AEAD's associated data was only the path, so an
 * older row restored from a backup released a key that had been rotated
 * out. Now the row binds its version and generation, the store's state
 * binds which row is current, and the state file pins the generation. */
static void test_rollback_refused(void) {
    setup();
    kbs_store *s = NULL;
    buf b;
    buf_init(&b, 0);
    CHECK_OK(kbs_store_open(db, master, &s));
    if (!s)
        return teardown();
    CHECK_OK(kbs_store_put(s, "cai/m/key", (const uint8_t *)"old-key", 7));
    CHECK_OK(kbs_store_put(s, "cai/other/key", (const uint8_t *)"other", 5));
    backup(".old");
    cp(".state", ".state.old");
    CHECK_OK(kbs_store_put(s, "cai/m/key", (const uint8_t *)"new-key", 7)); /* rotated */
    CHECK_OK(kbs_store_delete(s, "cai/other/key"));
    /* One row restored from the backup while the broker runs. */
    char stmt[400];
    snprintf(stmt, sizeof(stmt), "ATTACH '%s.old' AS old; DELETE FROM resources WHERE path = "
             "'cai/m/key'; INSERT INTO resources SELECT * FROM old.resources WHERE path = "
             "'cai/m/key'", db);
    sql(stmt);
    CHECK_ST(kbs_store_get(s, "cai/m/key", &b), CAI_ERR_AUTH);
    CHECK(b.len == 0 && errmsg_has(CAI_ERR_AUTH, "store check failed"));
    /* Its version and generation edited to the current ones: the AEAD's
     * associated data differs, so it does not open. */
    sql("UPDATE resources SET version = 2, gen = 3 WHERE path = 'cai/m/key'");
    CHECK_ST(kbs_store_get(s, "cai/m/key", &b), CAI_ERR_AUTH);
    CHECK(b.len == 0);
    /* A deleted row restored: refused too, and writes are refused. */
    snprintf(stmt, sizeof(stmt), "ATTACH '%s.old' AS old; DELETE FROM resources; INSERT INTO "
             "resources SELECT * FROM old.resources", db);
    sql(stmt);
    CHECK_ST(kbs_store_get(s, "cai/other/key", &b), CAI_ERR_AUTH);
    CHECK_ST(kbs_store_put(s, "cai/x/key", (const uint8_t *)"x", 1), CAI_ERR_AUTH);
    kbs_store_close(s);
    /* The whole database restored from the backup: its own state is
     * consistent, but older than the state file's. */
    cp(".old", "");
    char wal[200];
    snprintf(wal, sizeof(wal), "%s-wal", db);
    unlink(wal);
    s = NULL;
    CHECK_ST(kbs_store_open(db, master, &s), CAI_ERR_AUTH);
    CHECK(s == NULL && errmsg_has(CAI_ERR_AUTH, "rollback check failed"));
    /* With the state file removed as well: refused, it is missing. */
    char state[200];
    snprintf(state, sizeof(state), "%s.state", db);
    cp(".state", ".state.new");
    unlink(state);
    CHECK_ST(kbs_store_open(db, master, &s), CAI_ERR_AUTH);
    CHECK(errmsg_has(CAI_ERR_AUTH, "state file check failed"));
    /* A state file edited (a lower generation, no valid MAC): refused. */
    cp(".state.new", ".state");
    FILE *f = fopen(state, "r+b");
    CHECK(f != NULL);
    if (f) {
        fseek(f, 8 + 16, SEEK_SET);
        fputc(1, f);
        fclose(f);
    }
    CHECK_ST(kbs_store_open(db, master, &s), CAI_ERR_AUTH);
    CHECK(errmsg_has(CAI_ERR_AUTH, "state file check failed"));
    /* What the store does not stop (docs/KBS-STORE.md): the database and its
     * state file both restored from the same backup. */
    cp(".state.old", ".state");
    CHECK_OK(kbs_store_open(db, master, &s));
    if (s)
        CHECK_OK(kbs_store_get(s, "cai/m/key", &b));
    CHECK(b.len == 7 && memcmp(b.data, "old-key", 7) == 0);
    kbs_store_close(s);
    buf_free(&b);
    teardown();
}

/* Two stores under one master key: a row, or a state file, moved from one
 * to the other is refused (the store id is in every MAC and AD). */
static void test_cross_store_refused(void) {
    setup();
    char db2[160];
    snprintf(db2, sizeof(db2), "%s/two.db", dir);
    kbs_store *s = NULL, *t = NULL;
    CHECK_OK(kbs_store_open(db, master, &s));
    CHECK_OK(kbs_store_open(db2, master, &t));
    if (s && t) {
        CHECK_OK(kbs_store_put(s, "cai/m/key", (const uint8_t *)"one", 3));
        CHECK_OK(kbs_store_put(t, "cai/m/key", (const uint8_t *)"two", 3));
    }
    kbs_store_close(s);
    kbs_store_close(t);
    char stmt[400];
    snprintf(stmt, sizeof(stmt), "ATTACH '%s' AS two; UPDATE resources SET (nonce, sealed) = "
             "(SELECT nonce, sealed FROM two.resources WHERE path = 'cai/m/key')", db2);
    sql(stmt);
    CHECK_OK(kbs_store_open(db, master, &s)); /* (path, version, gen) are the same */
    buf b;
    buf_init(&b, 0);
    if (s)
        CHECK_ST(kbs_store_get(s, "cai/m/key", &b), CAI_ERR_AUTH);
    kbs_store_close(s);
    buf_free(&b);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "cp '%s.state' '%s.state'", db2, db);
    CHECK(system(cmd) == 0);
    s = NULL;
    CHECK_ST(kbs_store_open(db, master, &s), CAI_ERR_AUTH);
    CHECK(errmsg_has(CAI_ERR_AUTH, "belongs to another database"));
    teardown();
}

/* A fresh database where a state file exists: the database was deleted.
 * And a crash between the commit and the state file's update (the file
 * one generation behind) is accepted and repaired. */
static void test_state_file_lifecycle(void) {
    setup();
    kbs_store *s = NULL;
    CHECK_OK(kbs_store_open(db, master, &s));
    if (s)
        CHECK_OK(kbs_store_put(s, "cai/m/key", (const uint8_t *)"k", 1));
    cp(".state", ".state.g1");
    if (s)
        CHECK_OK(kbs_store_put(s, "cai/m/key", (const uint8_t *)"k2", 2));
    kbs_store_close(s);
    cp(".state.g1", ".state"); /* as if the process died before the file was written */
    s = NULL;
    CHECK_OK(kbs_store_open(db, master, &s));
    kbs_store_close(s);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "cmp -s '%s.state' '%s.state.g1'", db, db);
    CHECK(system(cmd) != 0); /* brought up to date */
    snprintf(cmd, sizeof(cmd), "rm -f '%s' '%s-wal' '%s-shm'", db, db, db);
    CHECK(system(cmd) == 0);
    s = NULL;
    CHECK_ST(kbs_store_open(db, master, &s), CAI_ERR_AUTH);
    CHECK(s == NULL && errmsg_has(CAI_ERR_AUTH, "rollback check failed"));
    teardown();
}

/* A schema-1 database (what cai kbs wrote before): resources sealed with the
 * path alone as associated data, the policy without a MAC. It is migrated:
 * resources readable, the policy refused until set again. */
static void test_schema1_migrated(void) {
    setup();
    uint8_t prk[32], check[32], rk[32], nonce[12] = {7}, sealed[5 + 16];
    aead *a = NULL;
    CHECK_OK(kdf_hkdf_extract((const uint8_t *)"cai-kbs", 7, master, 32, prk));
    CHECK_OK(kdf_hkdf_expand(prk, "cai-kbs/v1 master-key-check", check, 32));
    CHECK_OK(kdf_hkdf_expand(prk, "cai-kbs/v1 resource", rk, 32));
    CHECK_OK(aead_new(rk, &a));
    if (a)
        CHECK_OK(aead_seal(a, nonce, "cai/m/key", 9, (const uint8_t *)"v1key", 5, sealed, sealed + 5));
    aead_free(a);
    sqlite3 *raw = NULL;
    sqlite3_stmt *q = NULL;
    CHECK(sqlite3_open(db, &raw) == SQLITE_OK);
    CHECK(sqlite3_exec(raw,
        "CREATE TABLE meta(name TEXT PRIMARY KEY, value BLOB NOT NULL);"
        "CREATE TABLE resources(path TEXT PRIMARY KEY, nonce BLOB NOT NULL,"
        " sealed BLOB NOT NULL, size INTEGER NOT NULL, updated INTEGER NOT NULL);"
        "CREATE TABLE audit(id INTEGER PRIMARY KEY AUTOINCREMENT, time INTEGER NOT NULL,"
        " event TEXT NOT NULL, resource TEXT, client TEXT, evidence_digest TEXT,"
        " claims_digest TEXT, detail TEXT);"
        "CREATE TABLE policy(id INTEGER PRIMARY KEY CHECK (id = 1),"
        " document TEXT NOT NULL, updated INTEGER NOT NULL);"
        "INSERT INTO policy VALUES(1, '{\"v\":1}', 0);", NULL, NULL, NULL) == SQLITE_OK);
    CHECK(sqlite3_prepare_v2(raw, "INSERT INTO meta VALUES('key_check', ?)", -1, &q, NULL) == SQLITE_OK);
    sqlite3_bind_blob(q, 1, check, 32, SQLITE_STATIC);
    CHECK(sqlite3_step(q) == SQLITE_DONE);
    sqlite3_finalize(q);
    CHECK(sqlite3_prepare_v2(raw, "INSERT INTO resources VALUES('cai/m/key', ?, ?, 5, 0)", -1, &q,
                             NULL) == SQLITE_OK);
    sqlite3_bind_blob(q, 1, nonce, 12, SQLITE_STATIC);
    sqlite3_bind_blob(q, 2, sealed, sizeof(sealed), SQLITE_STATIC);
    CHECK(sqlite3_step(q) == SQLITE_DONE);
    sqlite3_finalize(q);
    sqlite3_close(raw);
    backup(".v1");
    kbs_store *s = NULL;
    buf b;
    buf_init(&b, 0);
    char *p = NULL;
    CHECK_OK(kbs_store_open(db, master, &s));
    if (s) {
        CHECK_OK(kbs_store_get(s, "cai/m/key", &b));
        CHECK(b.len == 5 && memcmp(b.data, "v1key", 5) == 0);
        CHECK_ST(kbs_store_policy_get(s, &p), CAI_ERR_AUTH);
        CHECK(errmsg_has(CAI_ERR_AUTH, "not authenticated"));
        CHECK_OK(kbs_store_policy_set(s, "{\"v\":2}"));
        CHECK_OK(kbs_store_policy_get(s, &p));
        free(p);
    }
    kbs_store_close(s);
    /* The schema-1 copy put back over the migrated database: refused (the
     * state file shows it was migrated already). */
    cp(".v1", "");
    char wal[200];
    snprintf(wal, sizeof(wal), "%s-wal", db);
    unlink(wal);
    s = NULL;
    CHECK_ST(kbs_store_open(db, master, &s), CAI_ERR_AUTH);
    CHECK(errmsg_has(CAI_ERR_AUTH, "rollback check failed"));
    buf_free(&b);
    teardown();
}

int main(void) {
    RUN(test_put_get_list_delete);
    RUN(test_persistent_and_encrypted);
    RUN(test_tampered_rows_refused);
    RUN(test_paths_and_limits);
    RUN(test_audit_and_policy);
    RUN(test_policy_authenticated);
    RUN(test_rollback_refused);
    RUN(test_cross_store_refused);
    RUN(test_state_file_lifecycle);
    RUN(test_schema1_migrated);
    return test_summary();
}

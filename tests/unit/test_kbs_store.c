/* test_kbs_store.c - the key broker's SQLite storage, encrypted at rest. */
#include <sqlite3.h>
#include <unistd.h>

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
    const char *good[] = {"cai/qwen/key", "a/b/c", "default/key/model-1.0_x"};
    const char *bad[] = {"", "a/b", "a/b/c/d", "/a/b", "a/b/", "a//b", "a/../b", "a/./b",
                         "a/b/c d", "a/b/ç", "a/b/c\n"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        CHECK(kbs_resource_path_valid(good[i]));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(!kbs_resource_path_valid(bad[i]));
    setup();
    kbs_store *s = NULL;
    CHECK_OK(kbs_store_open(db, master, &s));
    if (s) {
        CHECK_ST(kbs_store_put(s, "../x/y", (const uint8_t *)"x", 1), CAI_ERR_INVALID_ARG);
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

int main(void) {
    RUN(test_put_get_list_delete);
    RUN(test_persistent_and_encrypted);
    RUN(test_tampered_rows_refused);
    RUN(test_paths_and_limits);
    RUN(test_audit_and_policy);
    return test_summary();
}

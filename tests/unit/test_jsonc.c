/* test_jsonc.c - the JSON-object prefix checker. */
#include <jansson.h>

#include "llm/jsonc.h"
#include "test.h"

static int feed(const char *s, int *done) {
    jsonc j;
    jsonc_init(&j);
    int ok = jsonc_feed(&j, (const uint8_t *)s, strlen(s));
    *done = jsonc_done(&j);
    return ok;
}

static void test_valid_objects_and_prefixes(void) {
    const char *good[] = {
        "{}", "{ }\n", "{\"a\":1}", "{\"a\": [1, -2.5e+3, 0, 0.25, true, false, null, \"x\\u00e9\\n\"]}",
        "{\"k\": {\"n\": {\"m\": []}}, \"s\": \"\\\"quoted\\\"\"}", "{\"e\":1E9,\"f\":-0.0e-1}",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        int done;
        CHECK(feed(good[i], &done) && done);
        json_error_t e;
        json_t *v = json_loads(good[i], 0, &e); /* and jansson agrees */
        CHECK(json_is_object(v));
        json_decref(v);
        /* every prefix is viable, and not done before the end */
        size_t n = strlen(good[i]);
        for (size_t k = 0; k < n; k++) {
            char pre[256];
            memcpy(pre, good[i], k);
            pre[k] = '\0';
            CHECK(feed(pre, &done));
        }
    }
}

static void test_invalid_rejected(void) {
    const char *bad[] = {"[", "1", "\"s\"", "{a", "{\"a\" 1", "{\"a\":}", "{\"a\":01", "{\"a\":1.}",
                         "{\"a\":-}", "{\"a\":tru1", "{\"a\":\"\x01\"", "{\"a\":\"\\x\"", "{\"a\":\"\\u12g",
                         "{\"a\":1,}", "{,", "{}}", "{} x", "{\"a\":[1,]}", "{\"a\":[}", "{\"a\":1e}",
                         " {}", "{          }"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int done;
        if (feed(bad[i], &done)) {
            printf("  accepted %s\n", bad[i]);
            CHECK(0);
        }
    }
    jsonc j;
    jsonc_init(&j);
    CHECK(jsonc_feed(&j, (const uint8_t *)"{\"a\":", 5));
    CHECK(!jsonc_feed(&j, (const uint8_t *)"}", 1)); /* refused: state unchanged */
    CHECK(jsonc_feed(&j, (const uint8_t *)"2}", 2) && jsonc_done(&j));
    jsonc_init(&j);
    char deep[200];
    memset(deep, '[', sizeof(deep));
    deep[0] = '{';
    memcpy(deep + 1, "\"a\":", 4);
    CHECK(!jsonc_feed(&j, (const uint8_t *)deep, sizeof(deep)));
}

int main(void) {
    RUN(test_valid_objects_and_prefixes);
    RUN(test_invalid_rejected);
    return test_summary();
}

/* Tests of CoCo init-data (src/kbs/initdata.c): Trustee's own init-data
 * fixtures (tests/vectors/kbs/trustee/README.md) parse, their digest is the
 * one Trustee computes (SHA-256 of the body, zero padded to MRCONFIGID's 48
 * bytes), and every malformed document is refused naming what is wrong. */
#include <string.h>

#include <openssl/sha.h>

#include "common/file.h"
#include "kbs/initdata.h"
#include "kbs/protocol.h"
#include "test.h"

static void check_fixture(const char *path, const char *const *names, size_t n_names) {
    buf b;
    kbs_initdata d;
    CHECK_OK(file_read_all(path, 1 << 20, &b));
    CHECK_OK(kbs_initdata_parse((const char *)b.data, b.len, &d));
    uint8_t want[48] = {0};
    SHA256(b.data, b.len, want); /* Trustee: sha256 of the body, then padded */
    CHECK(memcmp(d.digest, want, sizeof(want)) == 0);
    CHECK(d.algorithm && strcmp(d.algorithm, "sha256") == 0);
    CHECK(json_object_size(d.data) == n_names);
    for (size_t i = 0; i < n_names; i++)
        CHECK(json_is_string(json_object_get(d.data, names[i])));
    kbs_initdata_cleanup(&d);
    buf_free(&b);
}

static void test_trustee_simple_init_data(void) {
    static const char *const names[] = {"policy.rego", "aa.toml", "cdh.toml"};
    check_fixture("tests/vectors/kbs/trustee/init-data-simple.toml", names, 3);
    /* The values are the strings as TOML reads them: the newline after '''
     * trimmed, the """ inside cdh.toml kept. */
    buf b;
    kbs_initdata d;
    CHECK_OK(file_read_all("tests/vectors/kbs/trustee/init-data-simple.toml", 1 << 20, &b));
    CHECK_OK(kbs_initdata_parse((const char *)b.data, b.len, &d));
    const char *aa = json_string_value(json_object_get(d.data, "aa.toml"));
    CHECK(aa && strcmp(aa, "[token_configs]\n[token_configs.kbs]\nurl = \"http://1.2.3.4:8080\"\n") ==
                    0);
    const char *cdh = json_string_value(json_object_get(d.data, "cdh.toml"));
    CHECK(cdh && strncmp(cdh, "[kbc]\nname = \"cc_kbc\"\n", 22) == 0 &&
          strstr(cdh, "extra_root_certificates = [\"\"\"\n-----BEGIN CERTIFICATE-----") != NULL);
    kbs_initdata_cleanup(&d);
    buf_free(&b);
}

static void test_trustee_policy_init_data(void) {
    static const char *const names[] = {"policy.rego"};
    check_fixture("tests/vectors/kbs/trustee/init-data-with-policy.toml", names, 1);
}

/* The init-data deploy/k8s ships for cai serve pods parses too. */
static void test_deploy_init_data(void) {
    buf b;
    kbs_initdata d;
    CHECK_OK(file_read_all("deploy/k8s/init-data.toml", 1 << 20, &b));
    CHECK_OK(kbs_initdata_parse((const char *)b.data, b.len, &d));
    CHECK(d.algorithm && strcmp(d.algorithm, "sha384") == 0);
    CHECK(json_is_string(json_object_get(d.data, "policy.rego")) &&
          json_is_string(json_object_get(d.data, "aa.toml")));
    kbs_initdata_cleanup(&d);
    buf_free(&b);
}

static void test_other_algorithms_and_forms(void) {
    /* sha512 is cut to 48 bytes, sha384 fills them; all four string kinds,
     * comments, CRLF, escapes. */
    static const char doc[] =
        "# a comment\r\nversion = '0.1.0'   # trailing\r\nalgorithm = \"sha512\"\n\n[data]\n"
        "bare-key_1 = \"a\\tb\\u00e9\\U0001F600\"\n'lit key' = 'C:\\path'\n"
        "ml = \"\"\"\nline1 \\\n   line2\"\"\"\nml2 = '''x''''\n";
    kbs_initdata d;
    CHECK_OK(kbs_initdata_parse(doc, strlen(doc), &d));
    uint8_t full[64];
    SHA512((const uint8_t *)doc, strlen(doc), full);
    CHECK(memcmp(d.digest, full, 48) == 0);
    CHECK(strcmp(json_string_value(json_object_get(d.data, "bare-key_1")),
                 "a\tb\xc3\xa9\xf0\x9f\x98\x80") == 0);
    CHECK(strcmp(json_string_value(json_object_get(d.data, "lit key")), "C:\\path") == 0);
    CHECK(strcmp(json_string_value(json_object_get(d.data, "ml")), "line1 line2") == 0);
    CHECK(strcmp(json_string_value(json_object_get(d.data, "ml2")), "x'") == 0);
    kbs_initdata_cleanup(&d);
}

static void test_refusals(void) {
    static const struct {
        const char *doc;
        cai_status want;
        const char *msg;
    } bad[] = {
        {"version = \"0.1.0\"\nalgorithm = \"md5\"\n[data]\n", CAI_ERR_UNSUPPORTED, "algorithm"},
        {"version = \"0.2.0\"\nalgorithm = \"sha256\"\n[data]\n", CAI_ERR_UNSUPPORTED, "version"},
        {"version = \"0.1.0\"\nalgorithm = \"sha256\"\n", CAI_ERR_FORMAT, "no [data]"},
        {"algorithm = \"sha256\"\n[data]\n", CAI_ERR_UNSUPPORTED, "version"},
        {"version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\nk = 1\n", CAI_ERR_UNSUPPORTED,
         "line 4: only string values"},
        {"version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\nk = [\"a\"]\n", CAI_ERR_UNSUPPORTED,
         "only string values"},
        {"version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\na.b = \"x\"\n", CAI_ERR_UNSUPPORTED,
         "dotted"},
        {"version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\nk = \"x\"\nk = \"y\"\n",
         CAI_ERR_FORMAT, "line 5: a key is defined twice"},
        {"version = \"0.1.0\"\nversion = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\n",
         CAI_ERR_FORMAT, "twice"},
        {"version = \"0.1.0\"\nalgorithm = \"sha256\"\n[other]\n", CAI_ERR_UNSUPPORTED,
         "[data]"},
        {"version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\n[data]\n", CAI_ERR_UNSUPPORTED,
         "[data]"},
        {"version = \"0.1.0\"\nalgorithm = \"sha256\"\n[[data]]\n", CAI_ERR_UNSUPPORTED, "arrays"},
        {"version = \"0.1.0\"\nalgorithm = \"sha256\"\nextra = \"x\"\n[data]\n",
         CAI_ERR_UNSUPPORTED, "unknown top-level key"},
        {"version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\nk = \"x\n", CAI_ERR_FORMAT,
         "unterminated"},
        {"version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\nk = '''x", CAI_ERR_FORMAT,
         "unterminated"},
        {"version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\nk = \"\\q\"\n", CAI_ERR_FORMAT,
         "escape"},
        {"version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\nk = \"\\uD800\"\n", CAI_ERR_FORMAT,
         "scalar"},
        {"version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\nk = \"\\u0000\"\n", CAI_ERR_FORMAT,
         "NUL"},
        {"version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\nk = \"\xff\"\n", CAI_ERR_FORMAT,
         "UTF-8"},
        {"version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\nk = \"a\x01\"\n", CAI_ERR_FORMAT,
         "control"},
        {"version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\nk = \"x\" y\n", CAI_ERR_FORMAT,
         "end of the line"},
        {"version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\nk \"x\"\n", CAI_ERR_FORMAT, "'='"},
        {"version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\nk = '''x''''''\n", CAI_ERR_FORMAT,
         "quotes"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        kbs_initdata d;
        cai_status st = kbs_initdata_parse(bad[i].doc, strlen(bad[i].doc), &d);
        int ok = st == bad[i].want && strstr(cai_errmsg(st), bad[i].msg) != NULL && d.data == NULL;
        if (!ok)
            printf("  case %zu: got %d (%s)\n", i, st, cai_errmsg(st));
        CHECK(ok);
        kbs_initdata_cleanup(&d);
    }
    /* The size limit, and the JSON wrapper. */
    size_t big = KBS_INITDATA_MAX + 1;
    char *b = calloc(1, big);
    kbs_initdata d;
    CHECK_ST(kbs_initdata_parse(b, big, &d), CAI_ERR_LIMIT);
    free(b);
    json_error_t e;
    json_t *j = json_loads("{\"format\":\"json\",\"body\":\"{}\"}", 0, &e);
    CHECK_ST(kbs_initdata_from_json(j, &d), CAI_ERR_UNSUPPORTED);
    CHECK(strstr(cai_errmsg(CAI_ERR_UNSUPPORTED), "Unsupported initdata format") != NULL);
    json_decref(j);
    j = json_loads("{\"format\":\"toml\",\"body\":\"x\",\"extra\":1}", 0, &e);
    CHECK_ST(kbs_initdata_from_json(j, &d), CAI_ERR_FORMAT);
    json_decref(j);
    j = json_loads("{\"format\":\"toml\"}", 0, &e);
    CHECK_ST(kbs_initdata_from_json(j, &d), CAI_ERR_FORMAT);
    json_decref(j);
}

int main(void) {
    RUN(test_trustee_simple_init_data);
    RUN(test_trustee_policy_init_data);
    RUN(test_deploy_init_data);
    RUN(test_other_algorithms_and_forms);
    RUN(test_refusals);
    return test_summary();
}

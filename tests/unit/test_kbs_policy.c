/* test_kbs_policy.c - policy parsing (one test per rejection) and evaluation. */
#include "kbs/policy.h"
#include "test.h"

static const char POLICY[] =
    "{\"version\":1,\"tee\":[\"tdx\",\"sim\"],\"tcb_status\":[\"UpToDate\"],"
    "\"reference_values\":{\"prod\":{\"mr_td\":[\"AABB\",\"ccdd\"],\"rtmr_2\":[\"0102\"]},"
    "\"dev\":{\"mr_td\":[\"eeff\"]},\"open\":{}},"
    "\"resources\":[{\"path\":\"cai/qwen/key\",\"allow\":[\"prod\",\"dev\"]},"
    "{\"path\":\"cai/open/*\",\"allow\":[\"open\"]},{\"path\":\"cai/none/key\",\"allow\":[]}]}";

static json_t *claims(const char *tee, const char *tcb, int debug, const char *mr_td,
                      const char *rtmr_2) {
    return json_pack("{s:s, s:s, s:b, s:s, s:s}", "tee", tee, "tcb_status", tcb, "debug", debug,
                     "mr_td", mr_td, "rtmr_2", rtmr_2);
}

static int allowed(const kbs_policy *p, json_t *c, const char *res, const char *want_in_why) {
    cai_status st = kbs_policy_check(p, c, res);
    json_decref(c);
    if (st == CAI_OK)
        return 1;
    const char *why = cai_errmsg(st);
    if (want_in_why && !strstr(why, want_in_why)) {
        printf("  reason '%s' lacks '%s'\n", why, want_in_why);
        return -1;
    }
    return 0;
}

/* Claims the broker adds for init-data: a member name with dots
 * ("aa.toml") is reached by the path "init_data_digests.aa.toml". */
static void test_init_data_claims(void) {
    static const char pol[] =
        "{\"version\":1,\"tee\":[\"sim\"],\"tcb_status\":[\"UpToDate\"],"
        "\"reference_values\":{\"pod\":{\"init_data\":[\"aa11\"],"
        "\"init_data_digests.aa.toml\":[\"bb22\"]}},"
        "\"resources\":[{\"path\":\"cai/m/key\",\"allow\":[\"pod\"]}]}";
    kbs_policy *p = NULL;
    CHECK_OK(kbs_policy_parse(pol, strlen(pol), &p));
    if (!p)
        return;
    json_t *c = json_pack("{s:s, s:s, s:b, s:s, s:{s:s}}", "tee", "sim", "tcb_status",
                          "UpToDate", "debug", 0, "init_data", "AA11", "init_data_digests",
                          "aa.toml", "bb22");
    CHECK(allowed(p, json_deep_copy(c), "cai/m/key", NULL) == 1);
    json_object_set_new(json_object_get(c, "init_data_digests"), "aa.toml", json_string("bb23"));
    CHECK(allowed(p, json_deep_copy(c), "cai/m/key", "claim init_data_digests.aa.toml = bb23") ==
          0);
    /* No init-data presented: no such claims, refused. */
    json_object_del(c, "init_data");
    json_object_del(c, "init_data_digests");
    CHECK(allowed(p, c, "cai/m/key", "claim init_data = (missing)") == 0);
    kbs_policy_free(p);
}

static void test_evaluation(void) {
    kbs_policy *p = NULL;
    CHECK_OK(kbs_policy_parse(POLICY, strlen(POLICY), &p));
    if (!p)
        return;
    CHECK(kbs_policy_trusts_sim(p));
    CHECK(allowed(p, claims("tdx", "UpToDate", 0, "aabb", "0102"), "cai/qwen/key", NULL) == 1);
    CHECK(allowed(p, claims("tdx", "UpToDate", 0, "CCDD", "0102"), "cai/qwen/key", NULL) == 1);
    CHECK(allowed(p, claims("sim", "UpToDate", 0, "eeff", "9999"), "cai/qwen/key", NULL) == 1);
    CHECK(allowed(p, claims("tdx", "UpToDate", 0, "aabb", "0103"), "cai/qwen/key",
                  "claim rtmr_2 = 0103 does not match reference set 'prod'") == 0);
    CHECK(allowed(p, claims("tdx", "UpToDate", 0, "1234", "0102"), "cai/qwen/key",
                  "claim mr_td = 1234") == 0);
    CHECK(allowed(p, claims("tdx", "UpToDate", 1, "aabb", "0102"), "cai/qwen/key",
                  "claim debug = true") == 0);
    CHECK(allowed(p, claims("tdx", "OutOfDate", 0, "aabb", "0102"), "cai/qwen/key",
                  "claim tcb_status = OutOfDate") == 0);
    CHECK(allowed(p, claims("sgx", "UpToDate", 0, "aabb", "0102"), "cai/qwen/key",
                  "claim tee = sgx") == 0);
    CHECK(allowed(p, claims("tdx", "UpToDate", 0, "aabb", "0102"), "cai/other/key",
                  "no policy rule allows resource cai/other/key") == 0);
    CHECK(allowed(p, claims("tdx", "UpToDate", 0, "0000", "0000"), "cai/open/anything", NULL) == 1);
    CHECK(allowed(p, claims("tdx", "UpToDate", 0, "aabb", "0102"), "cai/none/key",
                  "allows no reference set") == 0);
    CHECK(allowed(p, claims("tdx", "UpToDate", 0, "aabb", "0102"), NULL, NULL) == 1);
    CHECK(allowed(p, json_pack("{s:s, s:s}", "tee", "tdx", "tcb_status", "UpToDate"), NULL,
                  "claim debug is missing") == 0);
    kbs_policy_free(p);
}

static void test_defaults_deny(void) {
    kbs_policy *p = NULL;
    CHECK_OK(kbs_policy_parse("{}", 2, &p));
    if (!p)
        return;
    CHECK(!kbs_policy_trusts_sim(p));
    CHECK(allowed(p, claims("sim", "UpToDate", 0, "aa", "bb"), NULL, "claim tee = sim") == 0);
    CHECK(allowed(p, claims("tdx", "SWHardeningNeeded", 0, "aa", "bb"), NULL, "tcb_status") == 0);
    CHECK(allowed(p, claims("tdx", "UpToDate", 0, "aa", "bb"), "cai/qwen/key", "no policy rule") == 0);
    kbs_policy_free(p);
}

static void test_rejections(void) {
    static const struct { const char *json, *why; } bad[] = {
        {"", "not valid JSON"},
        {"[]", "must be a JSON object"},
        {"{\"version\":2}", "'version' must be 1"},
        {"{\"tee\":\"tdx\"}", "'tee' must be an array"},
        {"{\"tee\":[\"sgx\"]}", "unknown value 'sgx'"},
        {"{\"tcb_status\":[\"Fine\"]}", "unknown value 'Fine'"},
        {"{\"allow_debug\":\"no\"}", "'allow_debug' must be true or false"},
        {"{\"reference_values\":[]}", "must be an object of named sets"},
        {"{\"reference_values\":{\"a\":[]}}", "must be an object of claim"},
        {"{\"reference_values\":{\"a\":{\"mr_td\":[]}}}", "must be a non-empty array"},
        {"{\"reference_values\":{\"a\":{\"mr_td\":[\"xyz\"]}}}", "must be hex strings"},
        {"{\"reference_values\":{\"a\":{\"mr_td\":[\"abc\"]}}}", "must be hex strings"},
        {"{\"resources\":{}}", "must be an array of rules"},
        {"{\"resources\":[{\"path\":\"a/b/c\"}]}", "must be {\"path\""},
        {"{\"resources\":[{\"path\":\"a/*/c\",\"allow\":[]}]}", "prefix ending in *"},
        {"{\"resources\":[{\"path\":\"a/b/c\",\"allow\":[\"x\"]}]}", "'x' is not defined"},
        {"{\"resources\":[{\"path\":\"a/b/c\",\"allow\":[],\"extra\":1}]}", "must be {\"path\""},
        {"{\"tee\":[\"tdx\"],\"tee\":[\"sim\"]}", "not valid JSON"},
        {"{\"allowDebug\":true}", "unknown field 'allowDebug'"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        kbs_policy *p = NULL;
        cai_status st = kbs_policy_parse(bad[i].json, strlen(bad[i].json), &p);
        if (st != CAI_ERR_FORMAT || p != NULL || !strstr(cai_errmsg(st), bad[i].why)) {
            printf("  case %zu %s: %s\n", i, bad[i].json, cai_errmsg(st));
            CHECK(0);
        }
    }
}

int main(void) {
    RUN(test_evaluation);
    RUN(test_init_data_claims);
    RUN(test_defaults_deny);
    RUN(test_rejections);
    return test_summary();
}

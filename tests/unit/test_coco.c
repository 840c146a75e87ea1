/* Tests of the CoCo guest components' evidence parser (attest/coco): the
 * attestation agent's TDX evidence document {"cc_eventlog":..,"quote":..}
 * with a quote the sim TEE signs, and every rejection rule; the --coco-api
 * loopback rule; the resource path rule (checked before any request). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/coco.h"
#include "attest/quote.h"
#include "attest/sim.h"
#include "common/codec.h"
#include "test.h"

static char sim_dir[] = "/tmp/cai-coco-sim-XXXXXX";
static uint8_t rd[64];
static buf quote; /* a sim quote over rd */

/* {"cc_eventlog":LOG,"quote":"<base64 of q>"}, with |extra| members before
 * the quote; malloc'd. */
static char *doc_for(const uint8_t *q, size_t n, const char *log, const char *extra) {
    char *b64 = malloc(b64_encoded_len(n, B64_STD) + 1);
    CAI_ASSERT(b64 != NULL);
    b64_encode(b64, q, n, B64_STD);
    size_t cap = strlen(b64) + strlen(log) + strlen(extra) + 64;
    char *d = malloc(cap);
    CAI_ASSERT(d != NULL);
    snprintf(d, cap, "{\"cc_eventlog\":%s,%s\"quote\":\"%s\"}", log, extra, b64);
    free(b64);
    return d;
}

/* coco_evidence_parse of the string |d| against rd. */
static cai_status parse(const char *d, buf *out) {
    return coco_evidence_parse((const uint8_t *)d, strlen(d), rd, out);
}

static void test_upstream_shape_parses(void) {
    char *d = doc_for(quote.data, quote.len, "null", "");
    buf out;
    CHECK_OK(parse(d, &out));
    CHECK(out.len == quote.len && memcmp(out.data, quote.data, quote.len) == 0);
    buf_free(&out);
    free(d);
    /* an event log (cai does not read it) and unknown members */
    d = doc_for(quote.data, quote.len, "\"AAAA\"", "\"aa_eventlog\":\"x\",");
    CHECK_OK(parse(d, &out));
    CHECK(out.len == quote.len);
    buf_free(&out);
    free(d);
}

static void test_padding_trimmed(void) {
    uint8_t *padded = calloc(1, quote.len + 512);
    CAI_ASSERT(padded != NULL);
    memcpy(padded, quote.data, quote.len);
    char *d = doc_for(padded, quote.len + 512, "null", "");
    buf out;
    CHECK_OK(parse(d, &out));
    CHECK(out.len == quote.len && memcmp(out.data, quote.data, quote.len) == 0);
    buf_free(&out);
    free(d);
    free(padded);
}

static void test_other_report_data_refused(void) {
    uint8_t other[64];
    memcpy(other, rd, 64);
    other[63] ^= 1;
    char *d = doc_for(quote.data, quote.len, "null", "");
    buf out;
    CHECK_ST(coco_evidence_parse((const uint8_t *)d, strlen(d), other, &out), CAI_ERR_AUTH);
    CHECK(strstr(cai_errmsg(CAI_ERR_AUTH), "REPORTDATA") != NULL);
    CHECK(out.len == 0);
    buf_free(&out);
    free(d);
}

static void test_malformed_json_refused(void) {
    char *d = doc_for(quote.data, quote.len, "null", "");
    d[strlen(d) / 2] = '\0'; /* cut short */
    buf out;
    CHECK_ST(parse(d, &out), CAI_ERR_FORMAT);
    CHECK(strstr(cai_errmsg(CAI_ERR_FORMAT), "malformed JSON") != NULL);
    free(d);
    CHECK_ST(parse("[1, 2]", &out), CAI_ERR_FORMAT);
    CHECK(strstr(cai_errmsg(CAI_ERR_FORMAT), "not TDX evidence") != NULL);
    CHECK_ST(parse("", &out), CAI_ERR_FORMAT);
    /* two "quote" members: which one would a verifier see? */
    d = doc_for(quote.data, quote.len, "null", "\"quote\":\"AAAA\",");
    CHECK_ST(parse(d, &out), CAI_ERR_FORMAT);
    free(d);
}

static void test_missing_quote_refused(void) {
    buf out;
    CHECK_ST(parse("{\"cc_eventlog\":null}", &out), CAI_ERR_FORMAT);
    CHECK(strstr(cai_errmsg(CAI_ERR_FORMAT), "no quote") != NULL);
    CHECK_ST(parse("{\"quote\":42}", &out), CAI_ERR_FORMAT);
    CHECK_ST(parse("{\"quote\":\"\"}", &out), CAI_ERR_FORMAT);
    /* the sample attester's shape (not TDX) */
    CHECK_ST(parse("{\"svn\":\"1\",\"report_data\":\"AAAA\"}", &out), CAI_ERR_FORMAT);
    CHECK(strstr(cai_errmsg(CAI_ERR_FORMAT), "no quote") != NULL);
}

static void test_bad_event_log_refused(void) {
    char *d = doc_for(quote.data, quote.len, "12", "");
    buf out;
    CHECK_ST(parse(d, &out), CAI_ERR_FORMAT);
    CHECK(strstr(cai_errmsg(CAI_ERR_FORMAT), "cc_eventlog") != NULL);
    free(d);
}

static void test_bad_base64_refused(void) {
    char *d = doc_for(quote.data, quote.len, "null", "");
    char *q = strstr(d, "\"quote\":\"") + 9;
    q[5] = '-'; /* URL-safe alphabet: not the attester's standard base64 */
    buf out;
    CHECK_ST(parse(d, &out), CAI_ERR_FORMAT);
    CHECK(strstr(cai_errmsg(CAI_ERR_FORMAT), "not standard base64") != NULL);
    free(d);
    CHECK_ST(parse("{\"quote\":\"AAA\"}", &out), CAI_ERR_FORMAT); /* no padding */
}

static void test_not_a_quote_refused(void) {
    buf out;
    CHECK(parse("{\"quote\":\"aGVsbG8=\"}", &out) != CAI_OK); /* "hello" */
    CHECK(strstr(cai_errmsg(CAI_ERR_FORMAT), "not a TDX quote") != NULL ||
          strstr(cai_errmsg(CAI_ERR_TRUNCATED), "not a TDX quote") != NULL);
    CHECK(out.len == 0);
    char *d = doc_for(quote.data, quote.len - 1, "null", ""); /* one byte short */
    CHECK(parse(d, &out) != CAI_OK);
    free(d);
}

static void test_sizes_bounded(void) {
    size_t n = COCO_EVIDENCE_MAX_LEN + 1;
    uint8_t *big = malloc(n);
    CAI_ASSERT(big != NULL);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    buf out;
    CHECK_ST(coco_evidence_parse(big, n, rd, &out), CAI_ERR_LIMIT);
    free(big);
    /* a quote larger than TDX_QUOTE_MAX_LEN */
    uint8_t *q = calloc(1, TDX_QUOTE_MAX_LEN + 3);
    CAI_ASSERT(q != NULL);
    memcpy(q, quote.data, quote.len);
    char *d = doc_for(q, TDX_QUOTE_MAX_LEN + 3, "null", "");
    CHECK_ST(parse(d, &out), CAI_ERR_LIMIT);
    free(d);
    free(q);
}

static void test_api_loopback_only(void) {
    CHECK_OK(coco_api_check("http://127.0.0.1:8006"));
    CHECK_OK(coco_api_check("http://127.0.0.1:8006/"));
    CHECK_OK(coco_api_check("http://localhost:8006"));
    CHECK_OK(coco_api_check("http://[::1]:8006"));
    CHECK_ST(coco_api_check("https://127.0.0.1:8006"), CAI_ERR_INVALID_ARG);
    CHECK_ST(coco_api_check("http://10.0.0.1:8006"), CAI_ERR_INVALID_ARG);
    CHECK(strstr(cai_errmsg(CAI_ERR_INVALID_ARG), "not a loopback address") != NULL);
    CHECK_ST(coco_api_check("http://127.0.0.1.example:8006"), CAI_ERR_INVALID_ARG);
    CHECK_ST(coco_api_check("http://127.0.0.1:8006/aa"), CAI_ERR_INVALID_ARG);
    CHECK_ST(coco_api_check("http://127.0.0.1:8006/?x=1"), CAI_ERR_INVALID_ARG);
    CHECK_ST(coco_api_check("127.0.0.1:8006"), CAI_ERR_INVALID_ARG);
}

static void test_resource_path_checked(void) {
    static const char *const bad[] = {"a/b",   "a/b/c/d", "a//c",  "a/../c", "a/b/.",
                                      "/a/b/c", "a/b/c/", "a/b/c?x", "a/b/c%2f", ""};
    buf out;
    /* refused before any request: port 1 is never asked */
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_ST(coco_resource("http://127.0.0.1:1", bad[i], 64, &out), CAI_ERR_INVALID_ARG);
        CHECK(out.len == 0);
    }
    CHECK_ST(coco_resource("http://10.0.0.1:8006", "cai/m/key", 64, &out), CAI_ERR_INVALID_ARG);
    CHECK_ST(coco_resource("http://127.0.0.1:1", "cai/m/key", 64, &out), CAI_ERR_IO);
    CHECK(strstr(cai_errmsg(CAI_ERR_IO), "CoCo API unreachable") != NULL);
}

int main(void) {
    for (int i = 0; i < 64; i++)
        rd[i] = (uint8_t)(0xa0 + i);
    if (mkdtemp(sim_dir) == NULL || sim_init(sim_dir) != CAI_OK ||
        sim_quote(sim_dir, rd, NULL, &quote) != CAI_OK) {
        printf("FAIL setup: %s\n", cai_errmsg(CAI_ERR_IO));
        return 1;
    }
    RUN(test_upstream_shape_parses);
    RUN(test_padding_trimmed);
    RUN(test_other_report_data_refused);
    RUN(test_malformed_json_refused);
    RUN(test_missing_quote_refused);
    RUN(test_bad_event_log_refused);
    RUN(test_bad_base64_refused);
    RUN(test_not_a_quote_refused);
    RUN(test_sizes_bounded);
    RUN(test_api_loopback_only);
    RUN(test_resource_path_checked);
    buf_free(&quote);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", sim_dir);
    if (system(cmd) != 0)
        printf("  could not clean up\n");
    return test_summary();
}

/* TDX evidence JSON (attest/evidence.h): what the KBS protocol, RA-TLS and
 * the CoCo attestation agent carry. Made and read back; every malformed
 * shape refused with a status naming it. */
#include <string.h>

#include <jansson.h>

#include "attest/evidence.h"
#include "attest/quote.h"
#include "common/buf.h"
#include "test.h"

static json_t *parse(const char *text) {
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    CHECK(j != NULL);
    return j;
}

static void test_round_trip(void) {
    uint8_t quote[1000];
    for (size_t i = 0; i < sizeof(quote); i++)
        quote[i] = (uint8_t)(i * 31 + 7);
    json_t *ev = attest_tdx_evidence_json(quote, sizeof(quote));
    CHECK(ev != NULL);
    CHECK(json_is_null(json_object_get(ev, "cc_eventlog")));
    buf q;
    int log = -1;
    CHECK_OK(attest_tdx_evidence_quote(ev, &q, &log));
    CHECK(q.len == sizeof(quote) && memcmp(q.data, quote, q.len) == 0);
    CHECK(log == 0);
    buf_free(&q);
    json_decref(ev);

    ev = parse("{\"quote\": \"AAEC\", \"cc_eventlog\": \"AAAA\"}");
    CHECK_OK(attest_tdx_evidence_quote(ev, &q, &log));
    CHECK(q.len == 3 && q.data[2] == 2 && log == 1);
    buf_free(&q);
    json_decref(ev);
}

static void refused(const char *text, cai_status want, const char *why) {
    json_t *ev = text ? parse(text) : NULL;
    buf q;
    CHECK_ST(attest_tdx_evidence_quote(ev, &q, NULL), want);
    CHECK(strstr(cai_errmsg(want), why) != NULL);
    CHECK(q.data == NULL && q.len == 0);
    json_decref(ev);
}

static void test_refusals(void) {
    refused(NULL, CAI_ERR_FORMAT, "not TDX evidence");
    refused("[]", CAI_ERR_FORMAT, "not TDX evidence");
    refused("{\"cc_eventlog\": null}", CAI_ERR_FORMAT, "not TDX evidence");
    refused("{\"quote\": 5}", CAI_ERR_FORMAT, "not TDX evidence");
    refused("{\"quote\": \"AAE\"}", CAI_ERR_FORMAT, "not standard base64");
    refused("{\"quote\": \"AA-_\"}", CAI_ERR_FORMAT, "not standard base64");
    refused("{\"quote\": \"AAEC\", \"cc_eventlog\": 1}", CAI_ERR_FORMAT, "cc_eventlog");
    /* a quote over the limit is refused before it is decoded */
    size_t n = (TDX_QUOTE_MAX_LEN / 3 + 2) * 4;
    char *big = malloc(n + 32);
    CHECK(big != NULL);
    strcpy(big, "{\"quote\": \"");
    memset(big + 11, 'A', n);
    strcpy(big + 11 + n, "\"}");
    refused(big, CAI_ERR_LIMIT, "larger than");
    free(big);
}

int main(void) {
    RUN(test_round_trip);
    RUN(test_refusals);
    return test_summary();
}

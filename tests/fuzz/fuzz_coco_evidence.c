/* libFuzzer target: the parser of the CoCo attestation agent's evidence
 * (attest/coco.h) reads what the guest components' REST API answers. It must
 * never crash or leak, and what it accepts must be consistent with jansson
 * and the quote parser: the document is an object whose "quote" member
 * decodes (standard base64) to the returned quote followed only by zero
 * padding, and that quote parses and carries the REPORTDATA asked for
 * (zeros here). Seeds: documents around sim quotes over zero REPORTDATA. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "attest/coco.h"
#include "attest/quote.h"
#include "common/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const uint8_t zero[64];
    buf q;
    if (coco_evidence_parse(data, size, zero, &q) != CAI_OK) {
        CAI_ASSERT(q.len == 0);
        buf_free(&q);
        return 0;
    }
    json_error_t e;
    json_t *doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &e);
    CAI_ASSERT(json_is_object(doc));
    json_t *m = json_object_get(doc, "quote");
    CAI_ASSERT(json_is_string(m));
    size_t cap = b64_decoded_max(json_string_length(m)), n = 0;
    uint8_t *raw = malloc(cap ? cap : 1);
    CAI_ASSERT(raw != NULL);
    CAI_ASSERT(b64_decode(json_string_value(m), json_string_length(m), raw, cap, &n, B64_STD) ==
               CAI_OK);
    CAI_ASSERT(q.len > 0 && q.len <= n && memcmp(raw, q.data, q.len) == 0);
    for (size_t i = q.len; i < n; i++)
        CAI_ASSERT(raw[i] == 0);
    tdx_quote *t = NULL;
    CAI_ASSERT(tdx_quote_parse(q.data, q.len, 0, &t) == CAI_OK);
    CAI_ASSERT(memcmp(t->body.report_data, zero, 64) == 0);
    tdx_quote_free(t);
    free(raw);
    json_decref(doc);
    buf_free(&q);
    return 0;
}

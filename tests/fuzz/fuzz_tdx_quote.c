/* libFuzzer target: the TDX quote parser must never crash, and what it
 * accepts must be self-consistent and re-parse strictly to the same quote.
 * Seeds: real public v4/v5 quotes (dcap-qvl sample data). */
#include <stdint.h>
#include <string.h>

#include "attest/quote.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    tdx_quote *q = NULL;
    if (tdx_quote_parse(data, size, TDX_QUOTE_ALLOW_ZERO_PAD, &q) != CAI_OK)
        return 0;
    CAI_ASSERT(q->len <= size && memcmp(q->raw, data, q->len) == 0);
    CAI_ASSERT(q->header.version == 4 || q->header.version == 5);
    CAI_ASSERT(q->signed_len < q->len);
    CAI_ASSERT(q->qe_report_raw > q->raw && q->qe_report_raw + 384 <= q->raw + q->len);
    CAI_ASSERT((const uint8_t *)q->pck_chain + q->pck_chain_len == q->raw + q->len);
    CAI_ASSERT(q->body.is_tdx15 == (q->body_type == TDX_BODY_TDX15));
    for (size_t i = q->len; i < size; i++)
        CAI_ASSERT(data[i] == 0);
    /* Without the padding it parses strictly, to the same fields. */
    tdx_quote *q2 = NULL;
    CAI_ASSERT(tdx_quote_parse(data, q->len, 0, &q2) == CAI_OK);
    CAI_ASSERT(memcmp(&q->body, &q2->body, sizeof(q->body)) == 0);
    json_t *j = NULL;
    if (tdx_quote_claims_json(q, &j) == CAI_OK)
        json_decref(j);
    tdx_quote_free(q2);
    tdx_quote_free(q);
    return 0;
}

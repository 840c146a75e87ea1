/* fuzz_tdx_quote.c - TDX quote parsing of arbitrary bytes: refused, or every
 * view it returns lies inside the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "attest/quote.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void inside(const void *p, size_t n, const uint8_t *data, size_t size) {
    const uint8_t *b = p;
    if (n && (b < data || b + n > data + size))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    tdx_quote q;
    if (tdx_quote_parse(data, size, &q) != CAI_OK)
        return 0;
    inside(q.signed_data, q.signed_len, data, size);
    inside(q.qe_report_raw, 384, data, size);
    inside(q.qe_auth_data, q.qe_auth_len, data, size);
    inside(q.pck_chain_pem, q.pck_chain_len, data, size);
    if (q.quote_len > size)
        abort();
    json_decref(tdx_quote_claims(&q));
    return 0;
}

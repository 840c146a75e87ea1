/* fuzz_ratls.c - the attested TLS evidence extension on any bytes: no
 * crash; what parses re-encodes to the same bytes when it is in the
 * canonical form the encoder writes, and its runtime data, TDX evidence
 * and REPORTDATA are read within their limits. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ratls/evidence.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ratls_evidence ev;
    if (ratls_evidence_parse(data, size, &ev) != CAI_OK)
        return 0;
    if (cursor_len(&ev.runtime_data) > RATLS_RUNTIME_DATA_MAX ||
        cursor_len(&ev.aa_evidence) > RATLS_AA_EVIDENCE_MAX)
        abort();
    buf again;
    buf_init(&again, 0);
    if (ratls_evidence_encode(&ev, &again) != CAI_OK)
        abort();
    /* The encoder's form: parsing it gives the same fields. */
    ratls_evidence ev2;
    if (ratls_evidence_parse(again.data, again.len, &ev2) != CAI_OK ||
        ev2.hash_algo != ev.hash_algo ||
        cursor_len(&ev2.runtime_data) != cursor_len(&ev.runtime_data) ||
        memcmp(cursor_data(&ev2.runtime_data), cursor_data(&ev.runtime_data),
               cursor_len(&ev.runtime_data)) != 0 ||
        cursor_len(&ev2.aa_evidence) != cursor_len(&ev.aa_evidence))
        abort();
    buf_free(&again);
    ratls_binding b;
    (void)ratls_runtime_data_parse(&ev.runtime_data, &b);
    uint8_t rd[64];
    (void)ratls_report_data(&ev, rd);
    buf q;
    if (ratls_tdx_evidence_quote(&ev.aa_evidence, &q) == CAI_OK && q.len > 256u * 1024u)
        abort();
    buf_free(&q);
    return 0;
}

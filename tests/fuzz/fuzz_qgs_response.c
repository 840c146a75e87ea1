/* libFuzzer target: the host's answer to a TDX GetQuote (the GHCI shared
 * buffer with a QGS GET_QUOTE_RESP) is untrusted; the parser must never
 * crash, and what it accepts is a slice of the input (the quote bytes are
 * found verbatim in it). Seeds: a valid answer around a sim-sized quote. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "attest/tdx_guest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    buf q;
    if (tdx_guest_qgs_response(data, size, &q) == CAI_OK) {
        CAI_ASSERT(q.len > 0 && q.len <= size);
        CAI_ASSERT(memmem(data, size, q.data, q.len) != NULL);
    }
    buf_free(&q);
    return 0;
}

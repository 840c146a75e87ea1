/* libFuzzer target: the PCK SGX extension parser must never crash, and a
 * value it accepts must be accepted again from an exact copy (no reads past
 * |size|: ASan checks that on the heap copy). Seeds: the extensions of the
 * public PCK certificates in the shared dcap-qvl sample quotes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "attest/pck_ext.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pck_ext x, y;
    if (pck_ext_parse(data, size, &x) != CAI_OK)
        return 0;
    uint8_t *copy = malloc(size ? size : 1);
    CAI_ASSERT(copy != NULL);
    memcpy(copy, data, size);
    CAI_ASSERT(pck_ext_parse(copy, size, &y) == CAI_OK && memcmp(&x, &y, sizeof(x)) == 0);
    /* Any strict prefix is refused (DER has no optional tail). */
    if (size > 0)
        CAI_ASSERT(pck_ext_parse(copy, size - 1, &y) != CAI_OK);
    free(copy);
    return 0;
}

/* libFuzzer target: the raw-span finder for signed PCS bodies
 * ({"tcbInfo":{...},"signature":"..."}) reads untrusted text. It must never
 * crash or read past |size|, and whenever jansson also accepts the document,
 * the span it finds must be exactly the member jansson sees (differential
 * check: the bytes whose signature is checked are the object the verifier
 * evaluates). Seeds: the sim's TCB info and QE identity answers. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "attest/pccs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *copy = malloc(size ? size : 1);
    CAI_ASSERT(copy != NULL);
    memcpy(copy, data, size);
    static const char *const keys[] = {"tcbInfo", "enclaveIdentity", "signature"};
    for (int k = 0; k < 3; k++) {
        size_t off = 0, n = 0;
        if (pccs_json_member(copy, size, keys[k], &off, &n) != CAI_OK)
            continue;
        CAI_ASSERT(off <= size && n <= size - off && n > 0);
        json_error_t e;
        json_t *doc = json_loadb(copy, size, JSON_REJECT_DUPLICATES, &e);
        if (json_is_object(doc)) {
            json_t *span = json_loadb(copy + off, n, JSON_DECODE_ANY, &e);
            CAI_ASSERT(span != NULL && json_equal(span, json_object_get(doc, keys[k])));
            json_decref(span);
        }
        json_decref(doc);
    }
    free(copy);
    return 0;
}

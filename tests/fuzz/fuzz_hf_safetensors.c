/* fuzz_hf_safetensors.c - safetensors parsing of arbitrary bytes: a file is
 * either refused, or its tensors index the data exactly (in bounds,
 * contiguous, sized dtype x shape) and each can be read and found by name. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hf/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    safetensors *s = NULL;
    if (safetensors_parse(data, size, &s) != CAI_OK)
        return 0;
    uint64_t at = 0;
    uint8_t tmp[64];
    for (size_t i = 0; i < safetensors_n_tensors(s); i++) {
        const safetensors_tensor *t = safetensors_tensor_at(s, i);
        unsigned esz = t->dtype == 0 ? 4 : 2;
        if (i == 0)
            at = t->offset;
        if (t->offset != at || t->offset + t->nbytes > size || t->nbytes != t->n_elems * esz ||
            safetensors_find(s, t->name) != t)
            abort();
        at += t->nbytes;
        size_t n = t->nbytes < sizeof(tmp) ? (size_t)t->nbytes : sizeof(tmp);
        if (safetensors_read(s, t, t->nbytes - n, tmp, n) != CAI_OK ||
            memcmp(tmp, data + t->offset + t->nbytes - n, n) != 0)
            abort();
    }
    if (safetensors_n_tensors(s) > 0 && at != size)
        abort();
    safetensors_free(s);
    return 0;
}

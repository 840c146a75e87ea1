/* libFuzzer target: the sealed-file header parser must never crash, and what
 * it accepts must be self-consistent. */
#include <stdint.h>
#include <string.h>

#include "seal/seal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    seal_header *h = NULL;
    if (seal_header_parse(data, size, &h) != CAI_OK)
        return 0;
    /* Accepted headers: the declared length is the input, the key id is
     * valid, the manifest adds up and the chunk count is consistent. */
    CAI_ASSERT(h->header_len == size && memcmp(h->raw, data, size) == 0);
    CAI_ASSERT(seal_key_id_valid(h->key_id));
    uint64_t total = 0;
    for (uint32_t i = 0; i < h->n_entries; i++) {
        CAI_ASSERT(h->entries[i].offset == total);
        total += h->entries[i].size;
    }
    CAI_ASSERT(h->kind != SEAL_KIND_DIR || total == h->plaintext_len);
    uint64_t c = 1ull << h->chunk_log2;
    CAI_ASSERT(h->n_chunks >= 1 && (h->n_chunks - 1) * c <= h->plaintext_len);
    seal_header_free(h);
    return 0;
}

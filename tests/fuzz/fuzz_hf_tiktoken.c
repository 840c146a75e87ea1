/* fuzz_hf_tiktoken.c - the qwen.tiktoken reader on arbitrary bytes: a file
 * is refused, or its vocabulary (ranks, Qwen's specials, derived merges)
 * builds a tokenizer, survives GGUF and back unchanged and encodes text. */
#include <stdint.h>
#include <stdlib.h>

#include "hf/vocab.h"
#include "hf_vocab_round_trip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    hf_vocab *v = NULL;
    if (hf_vocab_from_tiktoken_mem(data, size, 0, &v) != CAI_OK)
        return 0;
    if (hf_vocab_n_tokens(v) < 256 + 208 || hf_vocab_bos(v) < 0)
        abort();
    if (hf_vocab_n_tokens(v) <= 65536) /* a huge id pads to millions: slow, not interesting */
        round_trip(v);
    hf_vocab_free(v);
    return 0;
}

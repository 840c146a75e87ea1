/* fuzz_hf_tiktoken.c - the qwen.tiktoken reader on arbitrary bytes: a file
 * is refused, or its vocabulary (ranks, Qwen's specials, derived merges)
 * builds a tokenizer, survives GGUF and back unchanged and encodes text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "hf/vocab.h"
#include "llm/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* round_trip checks what a vocabulary the reader accepted must allow. */
static void round_trip(const hf_vocab *v) {
    tokenizer_spec sp;
    tokenizer *t = NULL, *back = NULL;
    gguf_writer *w = NULL;
    gguf_file *g = NULL;
    buf b;
    buf_init(&b, 0);
    hf_vocab_spec(v, &sp);
    if (tokenizer_new(&sp, &t) != CAI_OK || gguf_writer_new(&w) != CAI_OK || hf_vocab_write_gguf(v, w) != CAI_OK ||
        gguf_writer_to_buf(w, &b) != CAI_OK || gguf_open_mem(b.data, b.len, &g) != CAI_OK ||
        tokenizer_from_gguf(g, &back) != CAI_OK)
        abort();
    gguf_arr merges;
    if (tokenizer_n_tokens(back) != sp.n_tokens || gguf_get_arr(g, "tokenizer.ggml.merges", &merges) != CAI_OK ||
        merges.n != sp.n_merges)
        abort();
    static const char text[] = "Hello, world! 1234 \xe4\xbd\xa0\xe5\xa5\xbd<|im_start|>\n\xff";
    int32_t *a = NULL, *c = NULL;
    size_t na = 0, ca = 0, nc = 0, cc = 0;
    if (tokenizer_encode(t, text, sizeof(text) - 1, 1, &a, &na, &ca) != CAI_OK ||
        tokenizer_encode(back, text, sizeof(text) - 1, 1, &c, &nc, &cc) != CAI_OK || na != nc ||
        memcmp(a, c, na * sizeof(int32_t)) != 0)
        abort();
    free(a), free(c);
    tokenizer_free(t), tokenizer_free(back);
    gguf_close(g);
    gguf_writer_free(w);
    buf_free(&b);
}

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

/* hf_vocab_round_trip.h - what the fuzz targets of hf/vocab's readers
 * check of every vocabulary a reader accepts: it builds a tokenizer, goes
 * through GGUF and back unchanged, and both encode a text alike. */
#ifndef CAI_FUZZ_HF_VOCAB_ROUND_TRIP_H
#define CAI_FUZZ_HF_VOCAB_ROUND_TRIP_H

#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "hf/vocab.h"
#include "llm/tokenizer.h"

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

#endif

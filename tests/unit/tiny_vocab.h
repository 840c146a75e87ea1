/* tiny_vocab.h - the vocabulary of the tiny llama models unit tests build:
 * <unk> <s> </s>, the 256 byte tokens, then |n_extra| pieces (scored by
 * their order). Included by the tests that write such a model. */
#ifndef CAI_TESTS_TINY_VOCAB_H
#define CAI_TESTS_TINY_VOCAB_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf_write.h"
#include "llm/tokenizer.h"
#include "test.h"

#define TINY_VOCAB_BASE 259 /* <unk> <s> </s> and the 256 bytes */

static void tiny_vocab_put(gguf_writer *w, const char *const *extra, int n_extra) {
    const int n = TINY_VOCAB_BASE + n_extra;
    char **text = calloc((size_t)n, sizeof(char *));
    size_t *len = calloc((size_t)n, sizeof(size_t));
    int32_t *type = calloc((size_t)n, sizeof(int32_t));
    float *score = calloc((size_t)n, sizeof(float));
    CAI_ASSERT(text && len && type && score);
    for (int i = 0; i < n; i++) {
        CAI_ASSERT((text[i] = malloc(16)) != NULL);
        if (i < 3) {
            snprintf(text[i], 16, "%s", i == 0 ? "<unk>" : i == 1 ? "<s>" : "</s>");
            type[i] = i == 0 ? TOKEN_UNKNOWN : TOKEN_CONTROL;
        } else if (i < TINY_VOCAB_BASE) {
            snprintf(text[i], 16, "<0x%02X>", i - 3);
            type[i] = TOKEN_BYTE;
        } else {
            snprintf(text[i], 16, "%s", extra[i - TINY_VOCAB_BASE]);
            type[i] = TOKEN_NORMAL;
            score[i] = -(float)(i - TINY_VOCAB_BASE);
        }
        len[i] = strlen(text[i]);
    }
    CHECK_OK(gguf_writer_str(w, "tokenizer.ggml.model", "llama"));
    CHECK_OK(gguf_writer_strs(w, "tokenizer.ggml.tokens", (const char *const *)text, len, (size_t)n));
    CHECK_OK(gguf_writer_nums(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, type, (size_t)n));
    CHECK_OK(gguf_writer_nums(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, score, (size_t)n));
    CHECK_OK(gguf_writer_u32(w, "tokenizer.ggml.bos_token_id", 1));
    CHECK_OK(gguf_writer_u32(w, "tokenizer.ggml.eos_token_id", 2));
    for (int i = 0; i < n; i++)
        free(text[i]);
    free(text), free(len), free(type), free(score);
}

#endif

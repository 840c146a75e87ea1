/* tokenizer.h - text to tokens and back, from a GGUF vocabulary.
 *
 * Two models, as GGUF's tokenizer.ggml.model names them:
 *   "gpt2"  byte-level BPE (Qwen family): the Qwen2 pre-tokenizer split
 *           (implemented by hand, Unicode tables generated from the UCD),
 *           then merges by rank;
 *   "llama" SentencePiece (Llama 2 style, SmolLM2/TinyLlama/stories): "▁" for
 *           spaces, score-ordered merges, <0xXX> byte fallback.
 * Special (control) tokens such as <|im_start|> are recognised in the text
 * only when the caller passes parse_special; user content never does, so it
 * cannot forge a turn. Any byte string encodes; decoding is exact. */
#ifndef CAI_LLM_TOKENIZER_H
#define CAI_LLM_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/status.h"
#include "gguf/gguf.h"

typedef struct tokenizer tokenizer;

enum { TOKENIZER_BPE = 1, TOKENIZER_SPM = 2 };

/* Token types as GGUF stores them. */
enum {
    TOKEN_NORMAL = 1,
    TOKEN_UNKNOWN = 2,
    TOKEN_CONTROL = 3,
    TOKEN_USER_DEFINED = 4,
    TOKEN_UNUSED = 5,
    TOKEN_BYTE = 6,
};

typedef struct {
    int model;               /* TOKENIZER_BPE or TOKENIZER_SPM */
    size_t n_tokens;
    const char *const *text; /* token texts (not NUL-terminated) */
    const size_t *len;
    const int32_t *type;     /* NULL: all normal */
    const float *score;      /* SPM scores; NULL for BPE */
    size_t n_merges;         /* BPE: "left right" strings */
    const char *const *merge;
    const size_t *merge_len;
    int32_t bos, eos, eot;   /* -1 when absent */
    int add_bos;
} tokenizer_spec;

/* tokenizer_new builds a tokenizer from |spec| (everything copied). */
cai_status tokenizer_new(const tokenizer_spec *spec, tokenizer **out);

/* tokenizer_from_gguf reads the tokenizer.ggml.* metadata of |g|. */
cai_status tokenizer_from_gguf(const gguf_file *g, tokenizer **out);

void tokenizer_free(tokenizer *t);

size_t tokenizer_n_tokens(const tokenizer *t);
int32_t tokenizer_bos(const tokenizer *t); /* -1 if none */
int32_t tokenizer_eos(const tokenizer *t);
int tokenizer_add_bos(const tokenizer *t);

/* tokenizer_find returns the id of the token whose text is exactly |text|,
 * or -1. */
int32_t tokenizer_find(const tokenizer *t, const char *text);

/* tokenizer_is_control says whether |id| is a control token. */
int tokenizer_is_control(const tokenizer *t, int32_t id);

/* tokenizer_encode appends the tokens of |len| bytes of |text| to |out|
 * (an array of int32_t grown as needed; *n tokens, *cap capacity). */
cai_status tokenizer_encode(const tokenizer *t, const char *text, size_t len, int parse_special,
                            int32_t **out, size_t *n, size_t *cap);

/* tokenizer_piece returns the bytes token |id| stands for (not
 * NUL-terminated) in |len|; control tokens give their text. NULL for an id
 * out of range. */
const char *tokenizer_piece(const tokenizer *t, int32_t id, size_t *len, uint8_t byte_buf[1]);

/* tokenizer_token_bytes appends the raw bytes token |id| stands for (a
 * byte-level token may be part of a UTF-8 character). */
cai_status tokenizer_token_bytes(const tokenizer *t, int32_t id, buf *out);

/* Streaming detokenization: bytes come out only as complete UTF-8
 * characters; invalid sequences become U+FFFD. */
typedef struct {
    uint8_t pending[4];
    size_t n_pending;
    int first; /* SPM: drop the space the tokenizer added in front */
} detok;

void detok_init(detok *d);

/* detok_push appends the text of token |id| to |out|, holding back an
 * incomplete character. */
cai_status detok_push(detok *d, const tokenizer *t, int32_t id, buf *out);

/* detok_flush appends what is held back (as U+FFFD if incomplete). */
cai_status detok_flush(detok *d, buf *out);

#endif

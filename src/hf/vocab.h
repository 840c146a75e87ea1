/* vocab.h - the tokenizer of a Hugging Face model folder, in GGUF's terms.
 *
 * Two layouts:
 *   qwen.tiktoken   Qwen-7B(-Chat): lines "base64(token bytes) rank", the BPE
 *                   vocabulary only; Qwen's tokenizer code adds <|endoftext|>,
 *                   <|im_start|>, <|im_end|> and <|extra_0|>..<|extra_204|>
 *                   after the last rank. Merges follow from the ranks.
 *   tokenizer.json  Qwen1.5/2/2.5/3: a Hugging Face "tokenizers" byte-level
 *                   BPE (model.vocab, model.merges, added_tokens).
 * Both become GGUF's "gpt2" tokenizer with the "qwen2" pre-tokenizer: token
 * texts in GPT-2's byte-to-unicode form, merges as "left right" strings.
 * Everything read is untrusted: sizes are bounded (HF_VOCAB_MAX_*), every
 * rule is checked, and an error names the file, the line or entry, and the
 * rule (cai_fail). See docs/MODELS.md, "Tokenizers". */
#ifndef CAI_HF_VOCAB_H
#define CAI_HF_VOCAB_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"
#include "gguf/gguf_write.h"
#include "llm/tokenizer.h" /* tokenizer_spec, TOKEN_* types */

/* Limits on what a folder may hold. */
#define HF_VOCAB_MAX_TOKENS ((size_t)1 << 21)      /* tokens, padding included */
#define HF_VOCAB_MAX_TOKEN_BYTES 1024              /* bytes of one token */
#define HF_TIKTOKEN_MAX_LINE 2048                  /* bytes of one qwen.tiktoken line */
#define HF_TIKTOKEN_MAX_FILE ((size_t)64 << 20)    /* qwen.tiktoken */
#define HF_TOKJSON_MAX_FILE ((size_t)128 << 20)    /* tokenizer.json */
#define HF_CONFIG_MAX_FILE ((size_t)4 << 20)       /* *config.json, chat_template.jinja */

typedef struct hf_vocab hf_vocab; /* opaque */

/* hf_vocab_load reads DIR/tokenizer.json, or else DIR/qwen.tiktoken (plus
 * Qwen's own specials: <|endoftext|> = n, <|im_start|> n+1, <|im_end|> n+2,
 * <|extra_0|>.. <|extra_204|>), then DIR/tokenizer_config.json,
 * DIR/config.json and DIR/generation_config.json when present for the
 * special ids, add_bos and the chat template (DIR/chat_template.jinja if
 * tokenizer_config.json has none). It pads the vocabulary to |n_vocab|
 * (config.json's vocab_size; 0: no padding beyond the highest id) with
 * "[PAD<i>]" tokens of type TOKEN_UNUSED, as llama.cpp's converter does;
 * |n_vocab| smaller than the tokens found is an error. A folder with
 * neither file is CAI_ERR_NOT_FOUND. Sets *out (free with hf_vocab_free) or
 * returns an error naming the file, line/offset and rule. */
cai_status hf_vocab_load(const char *dir, size_t n_vocab, hf_vocab **out);

/* hf_vocab_from_tiktoken_mem parses |len| bytes of a qwen.tiktoken file
 * (with Qwen's specials and padding to |n_vocab| as above, no config files).
 * The bytes are not kept. */
cai_status hf_vocab_from_tiktoken_mem(const uint8_t *data, size_t len, size_t n_vocab,
                                      hf_vocab **out);

/* hf_vocab_from_tokjson_mem parses |len| bytes of a tokenizer.json file
 * (padding to |n_vocab|, no config files). The bytes are not kept. */
cai_status hf_vocab_from_tokjson_mem(const uint8_t *data, size_t len, size_t n_vocab,
                                     hf_vocab **out);

void hf_vocab_free(hf_vocab *v);

/* hf_vocab_spec fills a tokenizer_spec pointing into |v| (valid while v
 * lives), for tokenizer_new. */
void hf_vocab_spec(const hf_vocab *v, tokenizer_spec *spec);

/* hf_vocab_write_gguf adds tokenizer.ggml.{model,pre,tokens,token_type,
 * merges,bos_token_id,eos_token_id,padding_token_id,add_bos_token} (the ids
 * only when known) and tokenizer.chat_template (when known) to |w|. */
cai_status hf_vocab_write_gguf(const hf_vocab *v, gguf_writer *w);

/* hf_vocab_source returns "qwen.tiktoken" or "tokenizer.json". */
const char *hf_vocab_source(const hf_vocab *v);

/* hf_vocab_n_tokens returns the number of tokens, padding included;
 * hf_vocab_n_merges the number of merges. */
size_t hf_vocab_n_tokens(const hf_vocab *v);
size_t hf_vocab_n_merges(const hf_vocab *v);

/* hf_vocab_bos / _eos / _pad return the special ids, or -1 when unknown. */
int32_t hf_vocab_bos(const hf_vocab *v);
int32_t hf_vocab_eos(const hf_vocab *v);
int32_t hf_vocab_pad(const hf_vocab *v);

/* hf_vocab_chat_template returns the Jinja chat template, or NULL. */
const char *hf_vocab_chat_template(const hf_vocab *v);

#endif

/* config.h - a Hugging Face model folder's config.json and
 * generation_config.json, checked and reduced to what the engine runs.
 *
 * Architectures (config.json "architectures"[0]): QWenLMHeadModel
 * (Qwen-7B-Chat, GGUF "qwen"), Qwen2ForCausalLM (Qwen1.5/2/2.5, "qwen2"),
 * Qwen3ForCausalLM ("qwen3"). Anything else, and any setting the engine
 * would run differently from the model's own code (rope scaling, sliding
 * window, activations other than SiLU, Qwen's biases beyond c_attn, partial
 * rotary), is refused with a message naming it. */
#ifndef CAI_HF_CONFIG_H
#define CAI_HF_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

#define HF_CONFIG_MAX_BYTES (1u << 20) /* config.json, generation_config.json */
#define HF_CONFIG_MAX_STOP 16

typedef enum { HF_ARCH_QWEN, HF_ARCH_QWEN2, HF_ARCH_QWEN3 } hf_arch;

/* Generation defaults; has_* says the folder sets the value. */
typedef struct {
    int has_top_p, has_top_k, has_temperature, has_repetition_penalty, has_do_sample;
    int has_max_window_size, has_max_new_tokens;
    float top_p, temperature, repetition_penalty;
    uint32_t top_k, max_window_size, max_new_tokens;
    int do_sample;
    int32_t stop[HF_CONFIG_MAX_STOP]; /* eos_token_id(s) and one-token stop words */
    size_t n_stop;
    char chat_format[16]; /* Qwen-7B-Chat's "chatml", else empty */
} hf_generation;

typedef struct {
    hf_arch arch;
    const char *hf_name;   /* "QWenLMHeadModel", ... (static) */
    const char *gguf_arch; /* "qwen", "qwen2", "qwen3" (static) */
    int n_embd, n_layer, n_head, n_head_kv, head_dim;
    int n_ff;              /* the FFN width (rows of ffn_gate/up) */
    int n_ff_gguf;         /* GGUF feed_forward_length: twice n_ff for qwen */
    int n_ctx, n_vocab;
    float rope_base, norm_eps;
    int tied;              /* tie_word_embeddings: output = token_embd */
    char torch_dtype[16];
    hf_generation gen;
    /* What the model's own code does that cai does not, without changing
     * answers within n_ctx (static strings, for `cai model inspect`). */
    const char *caveat[4];
    size_t n_caveats;
} hf_config;

/* hf_config_parse checks config.json (|cfg|, |cfg_len| bytes) and, if
 * |gen| is not NULL, generation_config.json. Returns CAI_OK with |out|
 * filled, CAI_ERR_UNSUPPORTED for an architecture or setting cai does not
 * run, CAI_ERR_FORMAT for a malformed file (messages name the field). */
cai_status hf_config_parse(const char *cfg, size_t cfg_len, const char *gen, size_t gen_len,
                           hf_config *out);

/* hf_config_load reads DIR/config.json and DIR/generation_config.json (the
 * latter optional) and parses them as hf_config_parse. */
cai_status hf_config_load(const char *dir, hf_config *out);

/* hf_config_to_json returns config.json for |c| as the model's own code
 * writes it (the keys hf_config_parse reads back to the same |c|), in
 * |out| (free() it). For cai model synth --format hf. */
cai_status hf_config_to_json(const hf_config *c, char **out);

#endif

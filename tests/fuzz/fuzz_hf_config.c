/* fuzz_hf_config.c - config.json and generation_config.json of arbitrary
 * bytes: refused, or a configuration whose shapes are consistent (heads a
 * multiple of KV heads, an even head dimension, FFN widths as the
 * architecture defines them) and whose stop list is in bounds. The first
 * byte chooses which file the rest is. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hf/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char QWEN2[] =
    "{\"architectures\":[\"Qwen2ForCausalLM\"],\"hidden_size\":64,\"intermediate_size\":128,"
    "\"num_attention_heads\":4,\"num_key_value_heads\":2,\"num_hidden_layers\":2,"
    "\"vocab_size\":100,\"max_position_embeddings\":64}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1)
        return 0;
    hf_config c;
    const char *rest = (const char *)data + 1;
    cai_status st = data[0] & 1 ? hf_config_parse(QWEN2, strlen(QWEN2), rest, size - 1, &c)
                                : hf_config_parse(rest, size - 1, NULL, 0, &c);
    if (st != CAI_OK)
        return 0;
    if (c.n_embd <= 0 || c.n_layer <= 0 || c.n_head <= 0 || c.n_head_kv <= 0 ||
        c.n_head % c.n_head_kv != 0 || c.head_dim <= 0 || c.head_dim % 2 != 0 || c.n_ff <= 0 ||
        c.n_ff_gguf != (c.arch == HF_ARCH_QWEN ? 2 * c.n_ff : c.n_ff) || c.n_vocab <= 0 ||
        c.n_ctx <= 0 || !(c.rope_base > 0) || !(c.norm_eps > 0) || c.gen.n_stop > HF_CONFIG_MAX_STOP ||
        c.n_caveats > 4 || strlen(c.torch_dtype) >= sizeof(c.torch_dtype))
        abort();
    if (c.gen.has_top_p && !(c.gen.top_p > 0 && c.gen.top_p <= 1))
        abort();
    char *js = NULL;
    if (hf_config_to_json(&c, &js) == CAI_OK) {
        hf_config back;
        if (hf_config_parse(js, strlen(js), NULL, 0, &back) != CAI_OK || back.n_embd != c.n_embd ||
            back.n_ff != c.n_ff || back.head_dim != c.head_dim || back.arch != c.arch)
            abort();
    }
    free(js);
    return 0;
}

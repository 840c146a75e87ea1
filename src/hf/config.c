/* config.c - config.json and generation_config.json of Qwen folders. */
#include "hf/config.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "common/file.h"

/* Qwen's tokenizer code numbers these right after the 151,643 BPE ranks. */
#define QWEN_IM_START 151644
#define QWEN_IM_END 151645

/* An integer field in [lo, hi]; |def| < 0 means required. */
static cai_status get_int(json_t *o, const char *file, const char *key, long long def, long long lo,
                          long long hi, int *out) {
    json_t *v = json_object_get(o, key);
    if (v == NULL || json_is_null(v)) {
        if (def < 0)
            return cai_fail(CAI_ERR_FORMAT, "%s: %s is missing", file, key);
        *out = (int)def;
        return CAI_OK;
    }
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return cai_fail(CAI_ERR_FORMAT, "%s: %s must be an integer in [%lld, %lld]", file, key, lo, hi);
    *out = (int)json_integer_value(v);
    return CAI_OK;
}

/* A number field in [lo, hi] (lo excluded if |open_lo|), checked as the
 * float it is stored as: 1e-60 is positive as a double but 0 as a float. */
static cai_status get_num(json_t *o, const char *file, const char *key, double def, double lo,
                          int open_lo, double hi, float *out, int *present) {
    json_t *v = json_object_get(o, key);
    if (present)
        *present = v != NULL && !json_is_null(v);
    if (v == NULL || json_is_null(v)) {
        *out = (float)def;
        return CAI_OK;
    }
    double d = json_number_value(v);
    float f = json_is_number(v) && isfinite(d) && d >= lo && d <= hi ? (float)d : (float)lo;
    if (!json_is_number(v) || !isfinite(d) || d < lo || d > hi || (open_lo && f <= lo))
        return cai_fail(CAI_ERR_FORMAT, "%s: %s must be a number in %s%g, %g]", file, key,
                        open_lo ? "(" : "[", lo, hi);
    *out = f;
    return CAI_OK;
}

/* A boolean field that must have the value |want| when present. */
static cai_status need_bool(json_t *o, const char *file, const char *key, int want, const char *why) {
    json_t *v = json_object_get(o, key);
    if (v == NULL || json_is_null(v))
        return CAI_OK;
    if (!json_is_boolean(v))
        return cai_fail(CAI_ERR_FORMAT, "%s: %s must be true or false", file, key);
    if (json_is_true(v) != want)
        return cai_fail(CAI_ERR_UNSUPPORTED, "%s: %s = %s is not supported: %s", file, key,
                        want ? "false" : "true", why);
    return CAI_OK;
}

static void add_stop(hf_generation *g, json_int_t id) {
    if (id < 0 || id > INT32_MAX)
        return;
    for (size_t i = 0; i < g->n_stop; i++)
        if (g->stop[i] == (int32_t)id)
            return;
    if (g->n_stop < HF_CONFIG_MAX_STOP)
        g->stop[g->n_stop++] = (int32_t)id;
}

static cai_status parse_generation(json_t *g, hf_config *c) {
    const char *F = "generation_config.json";
    hf_generation *o = &c->gen;
    cai_status st;
    int top_k = 0, win = 0, max_new = 0;
    if (!json_is_object(g))
        return cai_fail(CAI_ERR_FORMAT, "%s: not a JSON object", F);
    if ((st = get_num(g, F, "top_p", 1.0, 0.0, 1, 1.0, &o->top_p, &o->has_top_p)) != CAI_OK ||
        (st = get_num(g, F, "temperature", 1.0, 0.0, 0, 100.0, &o->temperature, &o->has_temperature)) != CAI_OK ||
        (st = get_num(g, F, "repetition_penalty", 1.0, 0.0, 1, 100.0, &o->repetition_penalty,
                      &o->has_repetition_penalty)) != CAI_OK ||
        (st = get_int(g, F, "top_k", 0, 0, 1 << 24, &top_k)) != CAI_OK ||
        (st = get_int(g, F, "max_window_size", 0, 0, 1 << 24, &win)) != CAI_OK ||
        (st = get_int(g, F, "max_new_tokens", 0, 0, 1 << 24, &max_new)) != CAI_OK)
        return st;
    o->top_k = (uint32_t)top_k;
    o->max_window_size = (uint32_t)win;
    o->max_new_tokens = (uint32_t)max_new;
    o->has_top_k = json_object_get(g, "top_k") != NULL;
    o->has_max_window_size = win > 0;
    o->has_max_new_tokens = max_new > 0;
    json_t *ds = json_object_get(g, "do_sample");
    if (ds && !json_is_boolean(ds))
        return cai_fail(CAI_ERR_FORMAT, "%s: do_sample must be true or false", F);
    o->has_do_sample = ds != NULL;
    o->do_sample = json_is_true(ds);
    json_t *eos = json_object_get(g, "eos_token_id"), *v;
    size_t i;
    if (json_is_integer(eos))
        add_stop(o, json_integer_value(eos));
    else if (json_is_array(eos))
        json_array_foreach(eos, i, v) {
            if (!json_is_integer(v))
                return cai_fail(CAI_ERR_FORMAT, "%s: eos_token_id must be token ids", F);
            add_stop(o, json_integer_value(v));
        }
    else if (eos && !json_is_null(eos))
        return cai_fail(CAI_ERR_FORMAT, "%s: eos_token_id must be a token id or a list", F);
    json_t *words = json_object_get(g, "stop_words_ids");
    if (json_is_array(words)) /* one-token stop words only: the engine stops on ids */
        json_array_foreach(words, i, v) {
            if (json_is_array(v) && json_array_size(v) == 1 && json_is_integer(json_array_get(v, 0)))
                add_stop(o, json_integer_value(json_array_get(v, 0)));
        }
    const char *fmt = json_string_value(json_object_get(g, "chat_format"));
    if (fmt && strlen(fmt) < sizeof(o->chat_format))
        snprintf(o->chat_format, sizeof(o->chat_format), "%s", fmt);
    /* Qwen-7B-Chat's chat() stops ChatML turns at <|im_end|> and <|im_start|>
     * (its generation_utils), which generation_config.json does not list. */
    if (c->arch == HF_ARCH_QWEN && strcmp(o->chat_format, "chatml") == 0) {
        add_stop(o, QWEN_IM_END);
        add_stop(o, QWEN_IM_START);
    }
    return CAI_OK;
}

static cai_status parse_config(json_t *j, hf_config *c) {
    const char *F = "config.json";
    cai_status st;
    if (!json_is_object(j))
        return cai_fail(CAI_ERR_FORMAT, "%s: not a JSON object", F);
    const char *name = json_string_value(json_array_get(json_object_get(j, "architectures"), 0));
    if (name == NULL)
        return cai_fail(CAI_ERR_FORMAT, "%s: architectures[0] is missing", F);
    static const struct { const char *hf, *gguf; hf_arch arch; } ARCHS[] = {
        {"QWenLMHeadModel", "qwen", HF_ARCH_QWEN},
        {"Qwen2ForCausalLM", "qwen2", HF_ARCH_QWEN2},
        {"Qwen3ForCausalLM", "qwen3", HF_ARCH_QWEN3},
    };
    size_t a = 0;
    while (a < 3 && strcmp(ARCHS[a].hf, name) != 0)
        a++;
    if (a == 3)
        return cai_fail(CAI_ERR_UNSUPPORTED, "%s: architecture %.60s is not supported "
                        "(QWenLMHeadModel, Qwen2ForCausalLM, Qwen3ForCausalLM are)", F, name);
    c->arch = ARCHS[a].arch;
    c->hf_name = ARCHS[a].hf;
    c->gguf_arch = ARCHS[a].gguf;
    const char *dt = json_string_value(json_object_get(j, "torch_dtype"));
    snprintf(c->torch_dtype, sizeof(c->torch_dtype), "%s", dt && strlen(dt) < 16 ? dt : "");
    int tied = 0, ff = 0;
    json_t *tie = json_object_get(j, "tie_word_embeddings");
    if (tie && !json_is_boolean(tie))
        return cai_fail(CAI_ERR_FORMAT, "%s: tie_word_embeddings must be true or false", F);
    tied = json_is_true(tie);
    c->tied = tied;
    if ((st = get_int(j, F, "hidden_size", -1, 1, 1 << 20, &c->n_embd)) != CAI_OK ||
        (st = get_int(j, F, "num_hidden_layers", -1, 1, 4096, &c->n_layer)) != CAI_OK ||
        (st = get_int(j, F, "num_attention_heads", -1, 1, 4096, &c->n_head)) != CAI_OK ||
        (st = get_int(j, F, "intermediate_size", -1, 1, 1 << 22, &ff)) != CAI_OK ||
        (st = get_int(j, F, "vocab_size", -1, 1, 1 << 24, &c->n_vocab)) != CAI_OK)
        return st;
    if (c->arch == HF_ARCH_QWEN) {
        int kv_channels, seq;
        float pct;
        c->n_head_kv = c->n_head;
        if (c->n_embd % c->n_head != 0)
            return cai_fail(CAI_ERR_FORMAT, "%s: hidden_size %d is not a multiple of "
                            "num_attention_heads %d", F, c->n_embd, c->n_head);
        c->head_dim = c->n_embd / c->n_head;
        if ((st = get_int(j, F, "kv_channels", c->head_dim, 1, 1 << 16, &kv_channels)) != CAI_OK ||
            (st = get_int(j, F, "max_position_embeddings", 2048, 1, 1 << 24, &seq)) != CAI_OK ||
            /* seq_length: the context trained; past it Qwen's code needs dynamic NTK */
            (st = get_int(j, F, "seq_length", seq, 1, 1 << 24, &c->n_ctx)) != CAI_OK ||
            (st = get_num(j, F, "rotary_emb_base", 10000, 0, 1, 1e12, &c->rope_base, NULL)) != CAI_OK ||
            (st = get_num(j, F, "layer_norm_epsilon", 1e-6, 0, 1, 1, &c->norm_eps, NULL)) != CAI_OK ||
            (st = get_num(j, F, "rotary_pct", 1.0, 0, 1, 1, &pct, NULL)) != CAI_OK ||
            (st = need_bool(j, F, "no_bias", 1, "Qwen's code then adds biases the engine does not "
                            "run")) != CAI_OK)
            return st;
        if (kv_channels != c->head_dim)
            return cai_fail(CAI_ERR_UNSUPPORTED, "%s: kv_channels %d differs from hidden_size / "
                            "num_attention_heads = %d", F, kv_channels, c->head_dim);
        if (pct != 1.0f)
            return cai_fail(CAI_ERR_UNSUPPORTED, "%s: rotary_pct %g is not supported (only 1.0)", F,
                            (double)pct);
        if (ff % 2 != 0)
            return cai_fail(CAI_ERR_FORMAT, "%s: intermediate_size %d must be even (twice the FFN "
                            "width in Qwen's code)", F, ff);
        c->n_ff = ff / 2;
        c->n_ff_gguf = ff;
        if (json_is_true(json_object_get(j, "use_dynamic_ntk")))
            c->caveat[c->n_caveats++] = "use_dynamic_ntk: Qwen's code stretches RoPE past "
                                        "seq_length; cai stops at the context length instead";
        if (json_is_true(json_object_get(j, "use_logn_attn")))
            c->caveat[c->n_caveats++] = "use_logn_attn: Qwen's code scales attention past "
                                        "seq_length; cai stops at the context length instead";
    } else {
        if ((st = get_int(j, F, "num_key_value_heads", c->n_head, 1, 4096, &c->n_head_kv)) != CAI_OK ||
            (st = get_int(j, F, "max_position_embeddings", -1, 1, 1 << 24, &c->n_ctx)) != CAI_OK ||
            (st = get_num(j, F, "rope_theta", 10000, 0, 1, 1e12, &c->rope_base, NULL)) != CAI_OK ||
            (st = get_num(j, F, "rms_norm_eps", 1e-6, 0, 1, 1, &c->norm_eps, NULL)) != CAI_OK ||
            (st = need_bool(j, F, "use_sliding_window", 0, "the engine attends to the whole "
                            "context")) != CAI_OK ||
            (st = need_bool(j, F, "attention_bias", c->arch == HF_ARCH_QWEN2, "the engine runs "
                            "Qwen2 with q/k/v biases and Qwen3 without")) != CAI_OK)
            return st;
        int def_hd = c->n_embd % c->n_head == 0 ? c->n_embd / c->n_head : -1;
        if (c->arch == HF_ARCH_QWEN3) {
            if ((st = get_int(j, F, "head_dim", def_hd, 1, 1 << 16, &c->head_dim)) != CAI_OK)
                return st;
        } else if (def_hd < 0) {
            return cai_fail(CAI_ERR_FORMAT, "%s: hidden_size %d is not a multiple of "
                            "num_attention_heads %d", F, c->n_embd, c->n_head);
        } else {
            c->head_dim = def_hd;
        }
        if (c->n_head % c->n_head_kv != 0)
            return cai_fail(CAI_ERR_FORMAT, "%s: num_attention_heads %d is not a multiple of "
                            "num_key_value_heads %d", F, c->n_head, c->n_head_kv);
        const char *act = json_string_value(json_object_get(j, "hidden_act"));
        if (json_object_get(j, "hidden_act") && (act == NULL || strcmp(act, "silu") != 0))
            return cai_fail(CAI_ERR_UNSUPPORTED, "%s: hidden_act %.20s is not supported (silu is)",
                            F, act ? act : "(not a string)");
        json_t *rs = json_object_get(j, "rope_scaling");
        if (rs && !json_is_null(rs))
            return cai_fail(CAI_ERR_UNSUPPORTED, "%s: rope_scaling is not supported (remove it to "
                            "run within max_position_embeddings)", F);
        c->n_ff = ff;
        c->n_ff_gguf = ff;
    }
    if (c->head_dim % 2 != 0)
        return cai_fail(CAI_ERR_FORMAT, "%s: the head dimension %d must be even", F, c->head_dim);
    return CAI_OK;
}

cai_status hf_config_parse(const char *cfg, size_t cfg_len, const char *gen, size_t gen_len,
                           hf_config *out) {
    memset(out, 0, sizeof(*out));
    json_error_t je;
    json_t *j = json_loadb(cfg, cfg_len, JSON_REJECT_DUPLICATES, &je), *g = NULL;
    if (j == NULL)
        return cai_fail(CAI_ERR_FORMAT, "config.json: line %d: %s", je.line, je.text);
    cai_status st = parse_config(j, out);
    if (st == CAI_OK && gen != NULL) {
        g = json_loadb(gen, gen_len, JSON_REJECT_DUPLICATES, &je);
        st = g ? parse_generation(g, out)
               : cai_fail(CAI_ERR_FORMAT, "generation_config.json: line %d: %s", je.line, je.text);
    }
    json_decref(j);
    json_decref(g);
    return st;
}

cai_status hf_config_load(const char *dir, hf_config *out) {
    char p[4096];
    buf cfg, gen;
    buf_init(&gen, 0);
    snprintf(p, sizeof(p), "%s/config.json", dir);
    cai_status st = file_read_all(p, HF_CONFIG_MAX_BYTES, &cfg);
    if (st != CAI_OK)
        return cai_fail(st, "%s: %s", p, cai_errmsg(st));
    snprintf(p, sizeof(p), "%s/generation_config.json", dir);
    cai_status gst = file_read_all(p, HF_CONFIG_MAX_BYTES, &gen);
    int has_gen = gst == CAI_OK;
    if (gst != CAI_OK && gst != CAI_ERR_NOT_FOUND) {
        buf_free(&cfg);
        return cai_fail(gst, "%s: %s", p, cai_errmsg(gst));
    }
    st = hf_config_parse((const char *)cfg.data, cfg.len, has_gen ? (const char *)gen.data : NULL,
                         gen.len, out);
    if (st != CAI_OK)
        st = cai_fail(st, "%s: %s", dir, cai_errmsg(st));
    buf_free(&cfg);
    buf_free(&gen);
    return st;
}

cai_status hf_config_to_json(const hf_config *c, char **out) {
    json_t *j;
    if (c->arch == HF_ARCH_QWEN)
        j = json_pack("{s:[s],s:s,s:i,s:i,s:i,s:i,s:i,s:f,s:i,s:i,s:f,s:f,s:b,s:i,s:b,s:s}",
                      "architectures", "QWenLMHeadModel", "model_type", "qwen", "hidden_size",
                      c->n_embd, "intermediate_size", c->n_ff_gguf, "kv_channels", c->head_dim,
                      "num_attention_heads", c->n_head, "num_hidden_layers", c->n_layer,
                      "layer_norm_epsilon", (double)c->norm_eps, "max_position_embeddings",
                      c->n_ctx, "seq_length", c->n_ctx, "rotary_emb_base", (double)c->rope_base,
                      "rotary_pct", 1.0, "no_bias", 1, "vocab_size", c->n_vocab,
                      "tie_word_embeddings", c->tied, "torch_dtype", c->torch_dtype);
    else
        j = json_pack("{s:[s],s:s,s:s,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:f,s:f,s:i,s:b,s:s}",
                      "architectures", c->arch == HF_ARCH_QWEN3 ? "Qwen3ForCausalLM" : "Qwen2ForCausalLM",
                      "model_type", c->arch == HF_ARCH_QWEN3 ? "qwen3" : "qwen2", "hidden_act", "silu",
                      "hidden_size", c->n_embd, "intermediate_size", c->n_ff, "num_attention_heads",
                      c->n_head, "num_key_value_heads", c->n_head_kv, "head_dim", c->head_dim,
                      "num_hidden_layers", c->n_layer, "max_position_embeddings", c->n_ctx,
                      "rope_theta", (double)c->rope_base, "rms_norm_eps", (double)c->norm_eps,
                      "vocab_size", c->n_vocab, "tie_word_embeddings", c->tied, "torch_dtype",
                      c->torch_dtype);
    if (j == NULL)
        return cai_fail(CAI_ERR_INVALID_ARG, "config.json: cannot represent this configuration");
    if (c->arch == HF_ARCH_QWEN2) /* Qwen2's config has no head_dim */
        json_object_del(j, "head_dim");
    *out = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(j);
    return *out ? CAI_OK : CAI_ERR_NOMEM;
}

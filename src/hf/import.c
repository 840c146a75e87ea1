/* import.c - Hugging Face checkpoint tensors to GGUF tensors, streamed. */
#include "hf/import.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/pool.h"
#include "gguf/gguf.h"
#include "gguf/ggml_type.h"
#include "hf/safetensors.h"
#include "hf/vocab.h"
#include "llm/quantize.h"

/* Each tensor is converted in chunks of rows, CHUNK_BYTES of input at a
 * time, into one of two output buffers: while the pool converts a chunk,
 * thread 0 first writes the previous one. A chunk's rows are shared out
 * in items of ITEM_BYTES of input, which each thread reads (pread into its
 * own buffer) and converts. All buffers are allocated once per import and
 * reused, so their pages are faulted in once. */
#define CHUNK_BYTES (8u << 20)
#define ITEM_BYTES (256u << 10)

/* ---- file types ----------------------------------------------------------- */

static const struct {
    const char *name;
    uint32_t gguf; /* llama_ftype */
} FTYPES[] = {
    [HF_FTYPE_F32] = {"f32", 0},   [HF_FTYPE_F16] = {"f16", 1},   [HF_FTYPE_BF16] = {"bf16", 32},
    [HF_FTYPE_Q8_0] = {"q8_0", 7}, [HF_FTYPE_Q4_0] = {"q4_0", 2}, [HF_FTYPE_Q4_K_M] = {"q4_k_m", 15},
};

cai_status hf_ftype_parse(const char *s, hf_ftype *out) {
    for (size_t i = 0; i < sizeof(FTYPES) / sizeof(FTYPES[0]); i++)
        if (strcmp(FTYPES[i].name, s) == 0) {
            *out = (hf_ftype)i;
            return CAI_OK;
        }
    return cai_fail(CAI_ERR_INVALID_ARG, "unknown type '%.20s' (f32, f16, bf16, q8_0, q4_0, q4_k_m)", s);
}

const char *hf_ftype_name(hf_ftype f) { return FTYPES[f].name; }
uint32_t hf_ftype_gguf(hf_ftype f) { return FTYPES[f].gguf; }

/* llama.cpp's choice of layers that get more bits under q4_k_m. */
static int more_bits(int layer, int n_layer) {
    return layer < n_layer / 8 || layer >= 7 * n_layer / 8 || (layer - n_layer / 8) % 3 == 2;
}

int hf_ftype_tensor_type(hf_ftype f, const char *name, int layer, int n_layer, int64_t ne0,
                         int n_dims, int has_output) {
    if (n_dims < 2)
        return GGML_TYPE_F32;
    int t;
    switch (f) {
    case HF_FTYPE_F32: return GGML_TYPE_F32;
    case HF_FTYPE_F16: return GGML_TYPE_F16;
    case HF_FTYPE_BF16: return GGML_TYPE_BF16;
    case HF_FTYPE_Q8_0: t = GGML_TYPE_Q8_0; break;
    case HF_FTYPE_Q4_0: t = GGML_TYPE_Q4_0; break;
    default:
        if (strcmp(name, "output.weight") == 0 || (!has_output && strcmp(name, "token_embd.weight") == 0))
            t = ne0 % QK_K ? GGML_TYPE_Q8_0 : GGML_TYPE_Q6_K;
        else if ((strstr(name, ".attn_v.weight") || strstr(name, ".ffn_down.weight")) &&
                 more_bits(layer, n_layer))
            t = GGML_TYPE_Q6_K;
        else if (strstr(name, ".attn_qkv.weight"))
            t = GGML_TYPE_Q5_K;
        else
            t = GGML_TYPE_Q4_K;
        break;
    }
    if (ne0 % ggml_type_block_size(t) == 0)
        return t;
    switch (t) { /* llama.cpp's fallbacks for rows the block does not divide */
    case GGML_TYPE_Q4_K: t = GGML_TYPE_Q5_0; break;
    case GGML_TYPE_Q5_K: t = GGML_TYPE_Q5_1; break;
    case GGML_TYPE_Q6_K: t = GGML_TYPE_Q8_0; break;
    default: t = GGML_TYPE_F16; break;
    }
    return ne0 % ggml_type_block_size(t) == 0 ? t : GGML_TYPE_F16;
}

/* ---- metadata --------------------------------------------------------------- */

cai_status hf_write_hparams(gguf_writer *w, const hf_config *c, const char *name) {
    char key[128];
    cai_status st = CAI_OK;
#define KEY(suffix) (snprintf(key, sizeof(key), "%s.%s", c->gguf_arch, suffix), key)
#define U32(suffix, v) if (st == CAI_OK) st = gguf_writer_u32(w, KEY(suffix), (uint32_t)(v))
    st = gguf_writer_str(w, "general.architecture", c->gguf_arch);
    if (st == CAI_OK)
        st = gguf_writer_str(w, "general.name", name);
    U32("context_length", c->n_ctx);
    U32("embedding_length", c->n_embd);
    U32("block_count", c->n_layer);
    U32("feed_forward_length", c->n_ff_gguf);
    U32("attention.head_count", c->n_head);
    U32("attention.head_count_kv", c->n_head_kv);
    if (c->arch == HF_ARCH_QWEN3 || c->head_dim * c->n_head != c->n_embd) {
        U32("attention.key_length", c->head_dim);
        U32("attention.value_length", c->head_dim);
    }
    if (st == CAI_OK)
        st = gguf_writer_f32(w, KEY("rope.freq_base"), c->rope_base);
    if (st == CAI_OK)
        st = gguf_writer_f32(w, KEY("attention.layer_norm_rms_epsilon"), c->norm_eps);
#undef U32
#undef KEY
    return st;
}

cai_status hf_write_generation(gguf_writer *w, const hf_config *c) {
    const hf_generation *g = &c->gen;
    cai_status st = CAI_OK;
    if (g->has_top_p)
        st = gguf_writer_f32(w, "cai.generation.top_p", g->top_p);
    if (st == CAI_OK && g->has_top_k)
        st = gguf_writer_u32(w, "cai.generation.top_k", g->top_k);
    if (st == CAI_OK && g->has_temperature)
        st = gguf_writer_f32(w, "cai.generation.temperature", g->temperature);
    if (st == CAI_OK && g->has_repetition_penalty)
        st = gguf_writer_f32(w, "cai.generation.repetition_penalty", g->repetition_penalty);
    if (st == CAI_OK && g->has_do_sample)
        st = gguf_writer_bool(w, "cai.generation.do_sample", g->do_sample);
    if (st == CAI_OK && g->has_max_new_tokens)
        st = gguf_writer_u32(w, "cai.generation.max_new_tokens", g->max_new_tokens);
    if (st == CAI_OK && g->has_max_window_size)
        st = gguf_writer_u32(w, "cai.generation.max_window_size", g->max_window_size);
    if (st == CAI_OK && g->n_stop)
        st = gguf_writer_nums(w, "cai.generation.stop_token_ids", GGUF_TYPE_INT32, g->stop, g->n_stop);
    return st;
}

/* ---- the name map ------------------------------------------------------------ */

/* GGUF name -> checkpoint name per architecture (qwen, qwen2, qwen3). NULL:
 * the architecture has no such tensor. */
typedef struct {
    const char *gguf;
    const char *hf[3];
} name_map;

static const name_map GLOBAL[] = {
    {"token_embd.weight", {"transformer.wte.weight", "model.embed_tokens.weight", "model.embed_tokens.weight"}},
    {"output_norm.weight", {"transformer.ln_f.weight", "model.norm.weight", "model.norm.weight"}},
    {"output.weight", {"lm_head.weight", "lm_head.weight", "lm_head.weight"}},
};

/* Layer tensors: the architecture's prefix, the layer, then these names. */
static const char *const LAYER_PREFIX[3] = {"transformer.h.", "model.layers.", "model.layers."};
#define QL ""
#define ML ""
static const name_map LAYER[] = {
    {"attn_norm.weight", {QL "ln_1.weight", ML "input_layernorm.weight", ML "input_layernorm.weight"}},
    {"attn_qkv.weight", {QL "attn.c_attn.weight", NULL, NULL}},
    {"attn_qkv.bias", {QL "attn.c_attn.bias", NULL, NULL}},
    {"attn_q.weight", {NULL, ML "self_attn.q_proj.weight", ML "self_attn.q_proj.weight"}},
    {"attn_k.weight", {NULL, ML "self_attn.k_proj.weight", ML "self_attn.k_proj.weight"}},
    {"attn_v.weight", {NULL, ML "self_attn.v_proj.weight", ML "self_attn.v_proj.weight"}},
    {"attn_q.bias", {NULL, ML "self_attn.q_proj.bias", NULL}},
    {"attn_k.bias", {NULL, ML "self_attn.k_proj.bias", NULL}},
    {"attn_v.bias", {NULL, ML "self_attn.v_proj.bias", NULL}},
    {"attn_q_norm.weight", {NULL, NULL, ML "self_attn.q_norm.weight"}},
    {"attn_k_norm.weight", {NULL, NULL, ML "self_attn.k_norm.weight"}},
    {"attn_output.weight", {QL "attn.c_proj.weight", ML "self_attn.o_proj.weight", ML "self_attn.o_proj.weight"}},
    {"ffn_norm.weight", {QL "ln_2.weight", ML "post_attention_layernorm.weight", ML "post_attention_layernorm.weight"}},
    /* Qwen's w2 goes through SiLU: it is the gate; w1 the up projection. */
    {"ffn_gate.weight", {QL "mlp.w2.weight", ML "mlp.gate_proj.weight", ML "mlp.gate_proj.weight"}},
    {"ffn_up.weight", {QL "mlp.w1.weight", ML "mlp.up_proj.weight", ML "mlp.up_proj.weight"}},
    {"ffn_down.weight", {QL "mlp.c_proj.weight", ML "mlp.down_proj.weight", ML "mlp.down_proj.weight"}},
};
#undef QL
#undef ML

cai_status hf_import_hf_name(hf_arch arch, const char *gguf, char *out, size_t n) {
    int layer, used = 0;
    if (sscanf(gguf, "blk.%d.%n", &layer, &used) == 1 && used > 0 && layer >= 0) {
        for (size_t i = 0; i < sizeof(LAYER) / sizeof(LAYER[0]); i++)
            if (strcmp(LAYER[i].gguf, gguf + used) == 0 && LAYER[i].hf[arch]) {
                snprintf(out, n, "%s%d.%s", LAYER_PREFIX[arch], layer, LAYER[i].hf[arch]);
                return CAI_OK;
            }
    } else {
        for (size_t i = 0; i < sizeof(GLOBAL) / sizeof(GLOBAL[0]); i++)
            if (strcmp(GLOBAL[i].gguf, gguf) == 0) {
                snprintf(out, n, "%s", GLOBAL[i].hf[arch]);
                return CAI_OK;
            }
    }
    return cai_fail(CAI_ERR_NOT_FOUND, "%s has no Hugging Face name", gguf);
}

/* The GGUF shape [ne0, ne1] of |gguf| (a layer suffix or global name);
 * ne1 == 0 for a vector. */
static void expected_shape(const hf_config *c, const char *g, int64_t *ne0, int64_t *ne1) {
    const int64_t E = c->n_embd, Q = (int64_t)c->n_head * c->head_dim;
    const int64_t KV = (int64_t)c->n_head_kv * c->head_dim, F = c->n_ff, V = c->n_vocab;
    static const struct { const char *name; int a, b; } S[] = {
        /* 0 E, 1 Q, 2 KV, 3 F, 4 V, 5 3Q, 6 head_dim, 7 none */
        {"token_embd.weight", 0, 4}, {"output.weight", 0, 4}, {"output_norm.weight", 0, 7},
        {"attn_norm.weight", 0, 7}, {"ffn_norm.weight", 0, 7},
        {"attn_qkv.weight", 0, 5}, {"attn_qkv.bias", 5, 7},
        {"attn_q.weight", 0, 1}, {"attn_k.weight", 0, 2}, {"attn_v.weight", 0, 2},
        {"attn_q.bias", 1, 7}, {"attn_k.bias", 2, 7}, {"attn_v.bias", 2, 7},
        {"attn_q_norm.weight", 6, 7}, {"attn_k_norm.weight", 6, 7},
        {"attn_output.weight", 1, 0}, {"ffn_gate.weight", 0, 3}, {"ffn_up.weight", 0, 3},
        {"ffn_down.weight", 3, 0},
    };
    const int64_t dim[8] = {E, Q, KV, F, V, 3 * Q, c->head_dim, 0};
    for (size_t i = 0; i < sizeof(S) / sizeof(S[0]); i++)
        if (strcmp(S[i].name, g) == 0) {
            *ne0 = dim[S[i].a];
            *ne1 = dim[S[i].b];
            return;
        }
    CAI_ASSERT(0 && "a name in the map has no shape");
}

/* ---- the import ---------------------------------------------------------------- */

typedef struct {
    hf_tensor_info info;
    char gguf[96];
    const safetensors *file;
    const safetensors_tensor *t;
    int type; /* output ggml type, set by hf_import_add_tensors */
} mapped;

typedef struct {
    hf_import *imp;
    size_t i;
} fill_arg;

/* A pool thread's buffers and the first error it met. */
typedef struct {
    uint8_t *in; /* an item's input rows */
    float *row;  /* one row as floats */
    cai_status st;
    char msg[512];
} thread_buf;

struct hf_import {
    char *dir;
    hf_config cfg;
    safetensors_dir *ck;
    mapped *t;
    size_t n;
    uint64_t src_bytes;
    /* while writing */
    const hf_import_opts *opts;
    fill_arg *fa;
    pool *pool;
    thread_buf *tb; /* one per pool thread */
    int n_tb;
    size_t in_cap, row_cap, out_cap; /* bytes, floats, bytes */
    uint8_t *out[2]; /* a chunk's converted rows, the one written and the next */
    uint64_t done;
};

void hf_import_free(hf_import *imp) {
    if (imp == NULL)
        return;
    safetensors_dir_free(imp->ck);
    pool_free(imp->pool);
    for (int i = 0; i < imp->n_tb; i++) {
        free(imp->tb[i].in);
        free(imp->tb[i].row);
    }
    free(imp->tb);
    free(imp->out[0]);
    free(imp->out[1]);
    free(imp->fa);
    free(imp->t);
    free(imp->dir);
    free(imp);
}

const hf_config *hf_import_config(const hf_import *imp) { return &imp->cfg; }
size_t hf_import_n_tensors(const hf_import *imp) { return imp->n; }
const hf_tensor_info *hf_import_tensor(const hf_import *imp, size_t i) {
    return i < imp->n ? &imp->t[i].info : NULL;
}
uint64_t hf_import_source_bytes(const hf_import *imp) { return imp->src_bytes; }

/* map adds GGUF tensor |gguf| (layer |layer|, or -1) from checkpoint tensor
 * |hf|; a missing tensor is an error unless |optional|. */
static cai_status map(hf_import *imp, const char *gguf, const char *hf_name, int layer, int optional) {
    char hf[160], g[96];
    if (layer >= 0) {
        snprintf(hf, sizeof(hf), "%s%d.%s", LAYER_PREFIX[imp->cfg.arch], layer, hf_name);
        snprintf(g, sizeof(g), "blk.%d.%s", layer, gguf);
    } else {
        snprintf(hf, sizeof(hf), "%s", hf_name);
        snprintf(g, sizeof(g), "%s", gguf);
    }
    const safetensors *file = NULL;
    const safetensors_tensor *t = safetensors_dir_find(imp->ck, hf, &file);
    if (t == NULL)
        return optional ? CAI_OK : cai_fail(CAI_ERR_FORMAT, "%s: tensor %s (for %s) is missing",
                                            imp->dir, hf, g);
    int64_t ne0, ne1;
    expected_shape(&imp->cfg, gguf, &ne0, &ne1);
    int n_dims = ne1 ? 2 : 1;
    if (t->n_dims != n_dims || (n_dims == 2 ? t->shape[0] != ne1 || t->shape[1] != ne0
                                            : t->shape[0] != ne0)) {
        char got[64] = "", want[48];
        for (int d = 0; d < t->n_dims; d++)
            snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%lld", d ? ", " : "",
                     (long long)t->shape[d]);
        if (n_dims == 2)
            snprintf(want, sizeof(want), "%lld, %lld", (long long)ne1, (long long)ne0);
        else
            snprintf(want, sizeof(want), "%lld", (long long)ne0);
        return cai_fail(CAI_ERR_FORMAT, "%s: tensor %s has shape [%s]; config.json implies [%s]",
                        imp->dir, hf, got, want);
    }
    mapped *m = &imp->t[imp->n++];
    snprintf(m->gguf, sizeof(m->gguf), "%s", g);
    m->file = file;
    m->t = t;
    m->info = (hf_tensor_info){.gguf_name = m->gguf, .hf_name = t->name, .src_dtype = t->dtype,
                               .n_dims = n_dims, .ne = {ne0, n_dims == 2 ? ne1 : 1}, .layer = layer};
    for (size_t i = 0; i < safetensors_dir_n_files(imp->ck); i++)
        if (safetensors_dir_file(imp->ck, i) == file)
            m->info.shard = safetensors_dir_file_name(imp->ck, i);
    imp->src_bytes += t->nbytes;
    return CAI_OK;
}

/* Checkpoint tensors the engine has no use for and every converter skips. */
static int ignorable(const char *name) {
    const char *s = "rotary_emb.inv_freq";
    size_t n = strlen(name), m = strlen(s);
    return n >= m && strcmp(name + n - m, s) == 0;
}

cai_status hf_import_open(const char *dir, hf_import **out) {
    *out = NULL;
    hf_import *imp = calloc(1, sizeof(*imp));
    if (imp == NULL || (imp->dir = strdup(dir)) == NULL) {
        free(imp);
        return CAI_ERR_NOMEM;
    }
    cai_status st = hf_config_load(dir, &imp->cfg);
    if (st == CAI_OK)
        st = safetensors_dir_open(dir, &imp->ck);
    const hf_config *c = &imp->cfg;
    const int a = (int)c->arch;
    size_t cap = 3 + (size_t)c->n_layer * (sizeof(LAYER) / sizeof(LAYER[0]));
    if (st == CAI_OK && (imp->t = calloc(cap, sizeof(*imp->t))) == NULL)
        st = CAI_ERR_NOMEM;
    for (size_t i = 0; st == CAI_OK && i < 3; i++) {
        /* output.weight: absent when the embeddings are tied */
        int optional = strcmp(GLOBAL[i].gguf, "output.weight") == 0 && c->tied;
        st = map(imp, GLOBAL[i].gguf, GLOBAL[i].hf[a], -1, optional);
    }
    for (int l = 0; st == CAI_OK && l < c->n_layer; l++)
        for (size_t i = 0; st == CAI_OK && i < sizeof(LAYER) / sizeof(LAYER[0]); i++)
            if (LAYER[i].hf[a])
                st = map(imp, LAYER[i].gguf, LAYER[i].hf[a], l, 0);
    /* Every checkpoint tensor is used, or known to be unneeded. */
    for (size_t i = 0; st == CAI_OK && i < safetensors_dir_n_tensors(imp->ck); i++) {
        const safetensors *f;
        const safetensors_tensor *t = safetensors_dir_tensor_at(imp->ck, i, &f);
        size_t j = 0;
        while (j < imp->n && imp->t[j].t != t)
            j++;
        if (j == imp->n && !ignorable(t->name))
            st = cai_fail(CAI_ERR_UNSUPPORTED, "%s: tensor %.80s is not part of %s as cai runs it "
                          "(config.json: %d layers)", dir, t->name, c->hf_name, c->n_layer);
    }
    if (st != CAI_OK) {
        hf_import_free(imp);
        return st;
    }
    *out = imp;
    return CAI_OK;
}

/* ---- conversion ----------------------------------------------------------------- */

typedef struct {
    hf_import *imp;
    const mapped *m;
    size_t row_in, row_out, per_item;
    size_t r0, rows;        /* this chunk: rows r0 .. r0 + rows - 1 of the tensor */
    atomic_size_t next;     /* the next item to take */
    uint8_t *out;           /* where this chunk's rows go */
    const uint8_t *prev;    /* the previous chunk, for thread 0 to write */
    size_t prev_len;
    gguf_put_fn put;
    void *put_ctx;
    cai_status put_st;
} convert_job;

/* Thread 0 writes the previous chunk, then joins the others: each takes
 * items of rows in turn, reads them and converts them. */
static void convert_worker(void *ctx, int ith, int nth) {
    convert_job *j = ctx;
    const mapped *m = j->m;
    thread_buf *tb = &j->imp->tb[ith];
    const int64_t ne0 = m->info.ne[0];
    const int same = m->type == m->t->dtype; /* the bytes as they are */
    (void)nth;
    if (ith == 0 && j->prev_len)
        j->put_st = j->put(j->put_ctx, j->prev, j->prev_len);
    while (tb->st == CAI_OK) {
        size_t a = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed) * j->per_item;
        if (a >= j->rows)
            break;
        size_t n = j->rows - a < j->per_item ? j->rows - a : j->per_item;
        uint8_t *d = j->out + a * j->row_out, *s = same ? d : tb->in;
        cai_status st = safetensors_read(m->file, m->t, (uint64_t)(j->r0 + a) * j->row_in, s, n * j->row_in);
        if (st != CAI_OK) {
            snprintf(tb->msg, sizeof(tb->msg), "%s", cai_errmsg(st));
            tb->st = st;
            break;
        }
        for (size_t r = 0; !same && r < n; r++) {
            st = dequantize_row(m->t->dtype, s + r * j->row_in, tb->row, ne0);
            if (st == CAI_OK)
                st = quantize_row(m->type, tb->row, d + r * j->row_out, ne0);
            CAI_ASSERT(st == CAI_OK); /* types come from hf_ftype_tensor_type */
        }
    }
}

/* The gguf_stream_fn of tensor |fa->i|: chunk by chunk, converted on the
 * pool while the previous chunk is written. */
static cai_status stream(void *arg, size_t index, size_t nbytes, gguf_put_fn put, void *put_ctx) {
    const fill_arg *fa = arg;
    hf_import *imp = fa->imp;
    const mapped *m = &imp->t[fa->i];
    const hf_import_opts *o = imp->opts;
    (void)index;
    const size_t rows = (size_t)m->info.ne[1], row_in = m->t->nbytes / rows;
    convert_job j = {.imp = imp, .m = m, .row_in = row_in,
                     .row_out = ggml_type_row_size(m->type, m->info.ne[0]),
                     .per_item = ITEM_BYTES / row_in ? ITEM_BYTES / row_in : 1,
                     .put = put, .put_ctx = put_ctx};
    CAI_ASSERT(j.row_out * rows == nbytes);
    size_t per = CHUNK_BYTES / row_in ? CHUNK_BYTES / row_in : 1;
    if (fa->i == 0 && o->progress) { /* the conversion starts */
        hf_progress p0 = {0, imp->n, m->gguf, 0, imp->src_bytes, 0};
        o->progress(o->progress_arg, &p0);
    }
    for (size_t r0 = 0, k = 0; r0 < rows; r0 += per, k ^= 1) {
        if (o->cancel && *o->cancel)
            return cai_fail(CAI_ERR_IO, "interrupted");
        j.r0 = r0;
        j.rows = rows - r0 < per ? rows - r0 : per;
        j.out = imp->out[k];
        atomic_store_explicit(&j.next, 0, memory_order_relaxed);
        pool_run(imp->pool, convert_worker, &j);
        if (j.put_st != CAI_OK)
            return j.put_st;
        for (int t = 0; t < imp->n_tb; t++)
            if (imp->tb[t].st != CAI_OK) {
                cai_errmsg_set(imp->tb[t].st, imp->tb[t].msg);
                return imp->tb[t].st;
            }
        j.prev = j.out;
        j.prev_len = j.rows * j.row_out;
        imp->done += j.rows * row_in;
        if (o->progress) {
            hf_progress p = {fa->i, imp->n, m->gguf, imp->done, imp->src_bytes, r0 + j.rows == rows};
            o->progress(o->progress_arg, &p);
        }
    }
    return j.prev_len ? put(put_ctx, j.prev, j.prev_len) : CAI_OK;
}

/* grow makes the buffer at |*p| (|cap| bytes, if not NULL) at least
 * |need| bytes; its contents need not survive. */
static cai_status grow(uint8_t **p, size_t cap, size_t need) {
    if (*p && need <= cap)
        return CAI_OK;
    uint8_t *q = realloc(*p, need);
    if (q == NULL)
        return CAI_ERR_NOMEM;
    *p = q;
    return CAI_OK;
}

#define MAX(a, b) ((a) > (b) ? (a) : (b))

cai_status hf_import_add_tensors(hf_import *imp, gguf_writer *w, const hf_import_opts *opts) {
    const hf_config *c = &imp->cfg;
    int has_output = 0;
    for (size_t i = 0; i < imp->n; i++)
        has_output |= strcmp(imp->t[i].gguf, "output.weight") == 0;
    size_t max_row = 1, max_item = 1, max_out = 1;
    for (size_t i = 0; i < imp->n; i++) {
        mapped *m = &imp->t[i];
        m->type = hf_ftype_tensor_type(opts->ftype, m->gguf, m->info.layer, c->n_layer,
                                       m->info.ne[0], m->info.n_dims, has_output);
        size_t row_in = m->t->nbytes / (size_t)m->info.ne[1];
        size_t row_out = ggml_type_row_size(m->type, m->info.ne[0]);
        size_t item = ITEM_BYTES / row_in ? ITEM_BYTES / row_in : 1;
        size_t per = CHUNK_BYTES / row_in ? CHUNK_BYTES / row_in : 1;
        if ((size_t)m->info.ne[0] > max_row)
            max_row = (size_t)m->info.ne[0];
        if (item * row_in > max_item)
            max_item = item * row_in;
        if (per * row_out > max_out)
            max_out = per * row_out;
    }
    imp->opts = opts;
    imp->done = 0;
    quantize_prepare(); /* before the pool's threads call quantize_row */
    cai_status st = CAI_OK;
    if (imp->pool == NULL)
        st = pool_new(opts->threads, &imp->pool);
    if (st == CAI_OK && imp->fa == NULL) {
        imp->fa = calloc(imp->n ? imp->n : 1, sizeof(*imp->fa));
        imp->n_tb = pool_size(imp->pool);
        imp->tb = calloc((size_t)imp->n_tb, sizeof(*imp->tb));
        if (!imp->fa || !imp->tb)
            st = CAI_ERR_NOMEM;
    }
    /* the buffers only grow: a later call may need more (another type) */
    for (int t = 0; st == CAI_OK && t < imp->n_tb; t++) {
        imp->tb[t].st = CAI_OK;
        st = grow(&imp->tb[t].in, imp->in_cap, max_item);
        if (st == CAI_OK && (imp->tb[t].row == NULL || max_row > imp->row_cap)) {
            float *r = realloc(imp->tb[t].row, max_row * sizeof(float));
            if (r == NULL)
                st = CAI_ERR_NOMEM;
            else
                imp->tb[t].row = r;
        }
    }
    for (int k = 0; st == CAI_OK && k < 2; k++)
        st = grow(&imp->out[k], imp->out_cap, max_out);
    if (st == CAI_OK) {
        imp->in_cap = MAX(imp->in_cap, max_item);
        imp->row_cap = MAX(imp->row_cap, max_row);
        imp->out_cap = MAX(imp->out_cap, max_out);
    }
    for (size_t i = 0; st == CAI_OK && i < imp->n; i++) {
        mapped *m = &imp->t[i];
        imp->fa[i] = (fill_arg){imp, i};
        st = gguf_writer_tensor_stream(w, m->gguf, m->type, m->info.n_dims, m->info.ne, stream,
                                       &imp->fa[i]);
    }
    return st;
}

/* The tokenizer: tokenizer.ggml.* and the chat template (hf/vocab), padded
 * to the embedding rows. */
static cai_status add_tokenizer(hf_import *imp, gguf_writer *w) {
    hf_vocab *v = NULL;
    cai_status st = hf_vocab_load(imp->dir, (size_t)imp->cfg.n_vocab, &v);
    if (st == CAI_OK && hf_vocab_n_tokens(v) != (size_t)imp->cfg.n_vocab)
        st = cai_fail(CAI_ERR_FORMAT, "%s: the tokenizer has %zu tokens, config.json's vocab_size "
                      "is %d", imp->dir, hf_vocab_n_tokens(v), imp->cfg.n_vocab);
    if (st == CAI_OK)
        st = hf_vocab_write_gguf(v, w);
    hf_vocab_free(v);
    return st;
}

cai_status hf_import_write(hf_import *imp, const char *out_path, const hf_import_opts *opts) {
    gguf_writer *w = NULL;
    const char *base = strrchr(imp->dir, '/');
    char name[256];
    snprintf(name, sizeof(name), "%s", base && base[1] ? base + 1 : imp->dir);
    int quantized = opts->ftype == HF_FTYPE_Q8_0 || opts->ftype == HF_FTYPE_Q4_0 ||
                    opts->ftype == HF_FTYPE_Q4_K_M;
    cai_status st = gguf_writer_new(&w);
    if (st == CAI_OK)
        st = hf_write_hparams(w, &imp->cfg, name);
    if (st == CAI_OK)
        st = gguf_writer_u32(w, "general.file_type", hf_ftype_gguf(opts->ftype));
    if (st == CAI_OK && quantized)
        st = gguf_writer_u32(w, "general.quantization_version", 2);
    if (st == CAI_OK)
        st = add_tokenizer(imp, w);
    if (st == CAI_OK)
        st = hf_write_generation(w, &imp->cfg);
    if (st == CAI_OK)
        st = hf_import_add_tensors(imp, w, opts);
    if (st == CAI_OK)
        st = gguf_writer_write(w, out_path);
    gguf_writer_free(w);
    return st;
}

/* model.c - hyperparameters, weights and the forward pass. */
#include "llm/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/pool.h"
#include "llm/kernels.h"
#include "llm/matmul.h"
#include "llm/quant.h"
#include "llm/x16.h"

typedef struct {
    llm_tensor attn_norm, wq, wk, wv, wqkv, wo, q_norm, k_norm;
    llm_tensor bq, bk, bv, bqkv; /* biases: ne1 = 1 */
    llm_tensor ffn_norm, gate, up, down;
} llm_layer;

struct llm_model {
    llm_hparams hp;
    llm_tensor tok_embd, out_norm, output;
    llm_layer *layers;
    float *inv_freq; /* rope_dim / 2 rotation frequencies */
    uint64_t n_params;
    int layout;      /* LLM_LAYOUT_X16: the x16_eligible tensors are in x16 */
};

/* ---- loading ---------------------------------------------------------- */

static cai_status key_int(const gguf_file *g, const char *arch, const char *suffix, int required,
                          int def, int *out) {
    char key[128];
    snprintf(key, sizeof(key), "%s.%s", arch, suffix);
    uint64_t v;
    cai_status st = gguf_get_uint(g, key, &v);
    if (st == CAI_ERR_NOT_FOUND && !required) {
        *out = def;
        return CAI_OK;
    }
    if (st != CAI_OK)
        return cai_fail(st == CAI_ERR_NOT_FOUND ? CAI_ERR_FORMAT : st, "model metadata: %s: %s",
                        key, st == CAI_ERR_NOT_FOUND ? "missing" : cai_errmsg(st));
    if (v == 0 || v > (1u << 24))
        return cai_fail(CAI_ERR_FORMAT, "model metadata: %s = %llu is out of range", key,
                        (unsigned long long)v);
    *out = (int)v;
    return CAI_OK;
}

static cai_status key_float(const gguf_file *g, const char *arch, const char *suffix, float def,
                            float *out) {
    char key[128];
    snprintf(key, sizeof(key), "%s.%s", arch, suffix);
    cai_status st = gguf_get_float(g, key, out);
    if (st == CAI_ERR_NOT_FOUND) {
        *out = def;
        return CAI_OK;
    }
    if (st == CAI_OK && !(isfinite(*out) && *out > 0))
        return cai_fail(CAI_ERR_FORMAT, "model metadata: %s must be positive", key);
    return st;
}

/* tensor looks up "blk.<layer>.<suffix>" (just |suffix| when layer < 0)
 * and checks its shape; ne1 == 1 means a vector. Optional tensors that are
 * absent stay zeroed. */
static cai_status tensor(const gguf_file *g, llm_model *m, const char *suffix, int layer,
                         int64_t ne0, int64_t ne1, int optional, llm_tensor *out) {
    char name[96];
    if (layer >= 0)
        snprintf(name, sizeof(name), "blk.%d.%s", layer, suffix);
    else
        snprintf(name, sizeof(name), "%s", suffix);
    gguf_tensor t;
    cai_status st = gguf_find_tensor(g, name, &t);
    if (st == CAI_ERR_NOT_FOUND && optional)
        return CAI_OK;
    if (st != CAI_OK)
        return cai_fail(CAI_ERR_FORMAT, "tensor %s is missing", name);
    int64_t t1 = t.n_dims > 1 ? t.ne[1] : 1;
    if (t.ne[0] != ne0 || t1 != ne1 || (t.n_dims > 2 && t.ne[2] != 1) ||
        (t.n_dims > 3 && t.ne[3] != 1))
        return cai_fail(CAI_ERR_FORMAT, "tensor %s has shape [%lld, %lld], expected [%lld, %lld]",
                        name, (long long)t.ne[0], (long long)t1, (long long)ne0, (long long)ne1);
    if (ne1 == 1 && t.type != GGML_TYPE_F32)
        return cai_fail(CAI_ERR_UNSUPPORTED, "tensor %s: norms and biases must be F32", name);
    if (!quant_supported(t.type))
        return cai_fail(CAI_ERR_UNSUPPORTED, "tensor %s: type %d is not supported", name, t.type);
    const int x16 = m->layout == LLM_LAYOUT_X16 && x16_eligible(t.type, t.n_dims, t.ne);
    *out = llm_tensor_make_layout(t.name, t.type, ne0, ne1, t.data, x16 ? LLM_LAYOUT_X16 : LLM_LAYOUT_FILE);
    m->n_params += (uint64_t)ne0 * (uint64_t)ne1;
    return CAI_OK;
}

static cai_status load_hparams(const gguf_file *g, llm_hparams *hp) {
    const char *arch;
    cai_status st = gguf_get_str(g, "general.architecture", &arch);
    if (st != CAI_OK)
        return cai_fail(CAI_ERR_FORMAT, "not a model: general.architecture is missing");
    static const struct { const char *name; llm_arch arch; int neox; } archs[] = {
        {"llama", LLM_ARCH_LLAMA, 0},
        {"qwen", LLM_ARCH_QWEN, 1},
        {"qwen2", LLM_ARCH_QWEN2, 1},
        {"qwen3", LLM_ARCH_QWEN3, 1},
    };
    size_t i = 0;
    while (i < sizeof(archs) / sizeof(archs[0]) && strcmp(archs[i].name, arch) != 0)
        i++;
    if (i == sizeof(archs) / sizeof(archs[0]))
        return cai_fail(CAI_ERR_UNSUPPORTED,
                        "architecture '%.40s' is not supported (llama, qwen, qwen2, qwen3)", arch);
    hp->arch = archs[i].arch;
    hp->arch_name = archs[i].name;
    hp->rope_neox = archs[i].neox;
    if ((st = key_int(g, arch, "context_length", 1, 0, &hp->n_ctx_train)) != CAI_OK ||
        (st = key_int(g, arch, "embedding_length", 1, 0, &hp->n_embd)) != CAI_OK ||
        (st = key_int(g, arch, "block_count", 1, 0, &hp->n_layer)) != CAI_OK ||
        (st = key_int(g, arch, "feed_forward_length", 1, 0, &hp->n_ff)) != CAI_OK ||
        (st = key_int(g, arch, "attention.head_count", 1, 0, &hp->n_head)) != CAI_OK ||
        (st = key_int(g, arch, "attention.head_count_kv", 0, hp->n_head, &hp->n_head_kv)) != CAI_OK ||
        (st = key_int(g, arch, "attention.key_length", 0, hp->n_embd / hp->n_head, &hp->head_dim)) != CAI_OK ||
        (st = key_int(g, arch, "rope.dimension_count", 0, hp->head_dim, &hp->rope_dim)) != CAI_OK ||
        (st = key_float(g, arch, "rope.freq_base", 10000.0f, &hp->rope_base)) != CAI_OK ||
        (st = key_float(g, arch, "attention.layer_norm_rms_epsilon", 1e-6f, &hp->norm_eps)) != CAI_OK)
        return st;
    int v_len;
    if ((st = key_int(g, arch, "attention.value_length", 0, hp->head_dim, &v_len)) != CAI_OK)
        return st;
    if (v_len != hp->head_dim)
        return cai_fail(CAI_ERR_UNSUPPORTED, "value_length %d differs from key_length %d", v_len,
                        hp->head_dim);
    float factor;
    if ((st = key_float(g, arch, "rope.scaling.factor", 1.0f, &factor)) != CAI_OK)
        return st;
    const char *scaling = NULL;
    char key[128];
    snprintf(key, sizeof(key), "%s.rope.scaling.type", arch);
    if (gguf_get_str(g, key, &scaling) == CAI_OK && strcmp(scaling, "none") != 0 &&
        strcmp(scaling, "linear") != 0)
        return cai_fail(CAI_ERR_UNSUPPORTED, "rope scaling '%.20s' is not supported", scaling);
    hp->rope_freq_scale = scaling && strcmp(scaling, "linear") == 0 ? 1.0f / factor : 1.0f;
    if (hp->arch == LLM_ARCH_QWEN) /* Qwen-7B-Chat stores twice the FFN width */
        hp->n_ff /= 2;
    if (hp->n_head % hp->n_head_kv != 0 || hp->rope_dim > hp->head_dim || hp->rope_dim % 2 != 0 ||
        (hp->arch == LLM_ARCH_QWEN && hp->head_dim * hp->n_head != hp->n_embd) || hp->n_ff == 0)
        return cai_fail(CAI_ERR_FORMAT, "inconsistent model shape (heads %d/%d, head dim %d, "
                        "rope dim %d)", hp->n_head, hp->n_head_kv, hp->head_dim, hp->rope_dim);
    return CAI_OK;
}

cai_status llm_model_load(const gguf_file *g, llm_model **out) {
    return llm_model_load_layout(g, LLM_LAYOUT_FILE, out);
}

cai_status llm_model_load_layout(const gguf_file *g, int layout, llm_model **out) {
    *out = NULL;
    if (layout == LLM_LAYOUT_X16 && !kernel_get(GGML_TYPE_Q8_0, kernel_level()).x16_exact)
        return cai_fail(CAI_ERR_UNSUPPORTED, "the x16 weight layout needs the AVX-512 VNNI kernels");
    llm_model *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return CAI_ERR_NOMEM;
    m->layout = layout;
    llm_hparams *hp = &m->hp;
    cai_status st = load_hparams(g, hp);
    if (st != CAI_OK)
        goto fail;
    gguf_tensor emb;
    if ((st = gguf_find_tensor(g, "token_embd.weight", &emb)) != CAI_OK) {
        st = cai_fail(CAI_ERR_FORMAT, "tensor token_embd.weight is missing");
        goto fail;
    }
    hp->n_vocab = emb.n_dims > 1 ? (int)emb.ne[1] : 0;
    if (hp->n_vocab <= 0 || emb.ne[1] > (1 << 24)) {
        st = cai_fail(CAI_ERR_FORMAT, "token_embd.weight has no vocabulary rows");
        goto fail;
    }
    const int E = hp->n_embd, Q = hp->n_head * hp->head_dim, KV = hp->n_head_kv * hp->head_dim;
    const int V = hp->n_vocab, F = hp->n_ff;
    if ((st = tensor(g, m, "token_embd.weight", -1, E, V, 0, &m->tok_embd)) != CAI_OK ||
        (st = tensor(g, m, "output_norm.weight", -1, E, 1, 0, &m->out_norm)) != CAI_OK ||
        (st = tensor(g, m, "output.weight", -1, E, V, 1, &m->output)) != CAI_OK)
        goto fail;
    if (m->output.data == NULL) /* tied embeddings */
        m->output = m->tok_embd;
    m->layers = calloc((size_t)hp->n_layer, sizeof(*m->layers));
    if (m->layers == NULL) {
        st = CAI_ERR_NOMEM;
        goto fail;
    }
    const int bias = hp->arch == LLM_ARCH_QWEN2;
    for (int l = 0; l < hp->n_layer && st == CAI_OK; l++) {
        llm_layer *L = &m->layers[l];
        st = tensor(g, m, "attn_norm.weight", l, E, 1, 0, &L->attn_norm);
        if (st == CAI_OK && hp->arch == LLM_ARCH_QWEN) {
            if ((st = tensor(g, m, "attn_qkv.weight", l, E, 3 * Q, 0, &L->wqkv)) == CAI_OK)
                st = tensor(g, m, "attn_qkv.bias", l, 3 * Q, 1, 0, &L->bqkv);
        } else if (st == CAI_OK) {
            if ((st = tensor(g, m, "attn_q.weight", l, E, Q, 0, &L->wq)) == CAI_OK &&
                (st = tensor(g, m, "attn_k.weight", l, E, KV, 0, &L->wk)) == CAI_OK &&
                (st = tensor(g, m, "attn_v.weight", l, E, KV, 0, &L->wv)) == CAI_OK &&
                (st = tensor(g, m, "attn_q.bias", l, Q, 1, !bias, &L->bq)) == CAI_OK &&
                (st = tensor(g, m, "attn_k.bias", l, KV, 1, !bias, &L->bk)) == CAI_OK)
                st = tensor(g, m, "attn_v.bias", l, KV, 1, !bias, &L->bv);
        }
        if (st == CAI_OK && hp->arch == LLM_ARCH_QWEN3) {
            if ((st = tensor(g, m, "attn_q_norm.weight", l, hp->head_dim, 1, 0, &L->q_norm)) == CAI_OK)
                st = tensor(g, m, "attn_k_norm.weight", l, hp->head_dim, 1, 0, &L->k_norm);
        }
        if (st == CAI_OK &&
            (st = tensor(g, m, "attn_output.weight", l, Q, E, 0, &L->wo)) == CAI_OK &&
            (st = tensor(g, m, "ffn_norm.weight", l, E, 1, 0, &L->ffn_norm)) == CAI_OK &&
            (st = tensor(g, m, "ffn_gate.weight", l, E, F, 0, &L->gate)) == CAI_OK &&
            (st = tensor(g, m, "ffn_up.weight", l, E, F, 0, &L->up)) == CAI_OK)
            st = tensor(g, m, "ffn_down.weight", l, F, E, 0, &L->down);
    }
    if (st != CAI_OK)
        goto fail;
    m->inv_freq = malloc((size_t)(hp->rope_dim / 2) * sizeof(float));
    if (m->inv_freq == NULL) {
        st = CAI_ERR_NOMEM;
        goto fail;
    }
    for (int i = 0; i < hp->rope_dim / 2; i++)
        m->inv_freq[i] = hp->rope_freq_scale * powf(hp->rope_base, -2.0f * (float)i / (float)hp->rope_dim);
    *out = m;
    return CAI_OK;
fail:
    llm_model_free(m);
    return st;
}

void llm_model_free(llm_model *m) {
    if (m == NULL)
        return;
    free(m->layers);
    free(m->inv_freq);
    free(m);
}

const llm_hparams *llm_model_hparams(const llm_model *m) { return &m->hp; }
uint64_t llm_model_n_params(const llm_model *m) { return m->n_params; }

/* ---- context and KV cache --------------------------------------------- */

struct llm_ctx {
    const llm_model *m;
    pool *pool;
    int n_ctx, n_seq, cap; /* cap: tokens per batch the scratch holds */
    int *seq_len;
    int32_t *tokens;   /* [seq][pos]: the token each cached position holds */
    quant_half *k, *v; /* [layer][seq][pos][kv_dim], f16 as llama.cpp keeps them */
    /* scratch for a batch of cap tokens */
    float *x, *xn, *q, *kq, *vq, *qkv, *att, *gate, *up, *logits;
    int32_t *pos;
    uint8_t *tiled; /* [cap] per token, then [cap] per logits row: matmul's flags */
    matmul_scratch mm; /* for any product of up to cap rows */
    float *score;   /* attention: [thread][head in group][position] */
    int n_logits_cap;
};

cai_status llm_ctx_new(const llm_model *m, int n_ctx, int n_seq, int n_threads, llm_ctx **out) {
    *out = NULL;
    const llm_hparams *hp = &m->hp;
    if (n_ctx <= 0)
        n_ctx = hp->n_ctx_train;
    if (n_seq <= 0 || n_seq > 1024 || n_ctx > (1 << 22))
        return cai_fail(CAI_ERR_INVALID_ARG, "bad context size %d or sequence count %d", n_ctx, n_seq);
    llm_ctx *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return CAI_ERR_NOMEM;
    c->m = m;
    c->n_ctx = n_ctx;
    c->n_seq = n_seq;
    size_t kv_dim = (size_t)hp->n_head_kv * (size_t)hp->head_dim;
    size_t cache = (size_t)hp->n_layer * (size_t)n_seq * (size_t)n_ctx * kv_dim;
    cai_status st = pool_new(n_threads, &c->pool);
    if (st != CAI_OK)
        goto fail;
    c->seq_len = calloc((size_t)n_seq, sizeof(int));
    c->tokens = malloc((size_t)n_seq * (size_t)n_ctx * sizeof(int32_t));
    c->k = malloc(cache * sizeof(quant_half));
    c->v = malloc(cache * sizeof(quant_half));
    c->score = malloc((size_t)pool_size(c->pool) * (size_t)(hp->n_head / hp->n_head_kv) *
                      (size_t)n_ctx * sizeof(float));
    if (!c->seq_len || !c->tokens || !c->k || !c->v || !c->score) {
        st = cai_fail(CAI_ERR_NOMEM, "cannot allocate a KV cache of %zu MiB",
                      cache * 2 * sizeof(quant_half) >> 20);
        goto fail;
    }
    *out = c;
    return CAI_OK;
fail:
    llm_ctx_free(c);
    return st;
}

static void free_scratch(llm_ctx *c) {
    free(c->x), free(c->xn), free(c->q), free(c->kq), free(c->vq), free(c->qkv);
    free(c->att), free(c->gate), free(c->up), free(c->pos), free(c->tiled);
    free(c->mm.x), free(c->mm.tiles);
    c->x = c->xn = c->q = c->kq = c->vq = c->qkv = c->att = c->gate = c->up = NULL;
    c->pos = NULL;
    c->tiled = NULL;
    c->mm = (matmul_scratch){0};
    c->cap = 0;
}

void llm_ctx_free(llm_ctx *c) {
    if (c == NULL)
        return;
    pool_free(c->pool);
    free_scratch(c);
    free(c->logits);
    free(c->seq_len);
    free(c->tokens);
    free(c->score);
    free(c->k);
    free(c->v);
    free(c);
}

int llm_ctx_n_ctx(const llm_ctx *c) { return c->n_ctx; }
const llm_model *llm_ctx_model(const llm_ctx *c) { return c->m; }

int llm_seq_len(const llm_ctx *c, int seq) {
    return seq >= 0 && seq < c->n_seq ? c->seq_len[seq] : 0;
}

const int32_t *llm_seq_tokens(const llm_ctx *c, int seq) {
    return seq >= 0 && seq < c->n_seq ? c->tokens + (size_t)seq * (size_t)c->n_ctx : NULL;
}

void llm_seq_truncate(llm_ctx *c, int seq, int len) {
    if (seq >= 0 && seq < c->n_seq && len >= 0 && len < c->seq_len[seq])
        c->seq_len[seq] = len;
}

/* The matmul scratch for products of up to |T| rows with any weight of
 * |m| (the output's included) on |n_threads| threads. */
static void mm_need(const llm_model *m, int T, int n_threads, matmul_scratch *s) {
    for (int l = 0; l < m->hp.n_layer; l++) {
        const llm_layer *L = &m->layers[l];
        const llm_tensor *w[] = {&L->wq, &L->wk, &L->wv, &L->wqkv, &L->wo, &L->gate, &L->up, &L->down};
        for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++)
            if (w[i]->data)
                matmul_scratch_need(w[i], T, n_threads, &s->x_bytes, &s->tile_bytes);
    }
    matmul_scratch_need(&m->output, T, n_threads, &s->x_bytes, &s->tile_bytes);
}

static cai_status reserve(llm_ctx *c, int T) {
    if (T <= c->cap)
        return CAI_OK;
    free_scratch(c);
    const llm_hparams *hp = &c->m->hp;
    size_t t = (size_t)T, q = (size_t)hp->n_head * (size_t)hp->head_dim;
    size_t kv = (size_t)hp->n_head_kv * (size_t)hp->head_dim;
    c->x = malloc(t * (size_t)hp->n_embd * sizeof(float));
    c->xn = malloc(t * (size_t)(hp->n_embd > (int)q ? hp->n_embd : (int)q) * sizeof(float));
    c->q = malloc(t * q * sizeof(float));
    c->kq = malloc(t * kv * sizeof(float));
    c->vq = malloc(t * kv * sizeof(float));
    c->qkv = hp->arch == LLM_ARCH_QWEN ? malloc(t * 3 * q * sizeof(float)) : NULL;
    c->att = malloc(t * q * sizeof(float));
    c->gate = malloc(t * (size_t)hp->n_ff * sizeof(float));
    c->up = malloc(t * (size_t)hp->n_ff * sizeof(float));
    c->pos = malloc(t * sizeof(int32_t));
    c->tiled = malloc(2 * t);
    mm_need(c->m, T, pool_size(c->pool), &c->mm);
    c->mm.x = c->mm.x_bytes ? aligned_alloc(64, c->mm.x_bytes) : NULL;
    c->mm.tiles = c->mm.tile_bytes ? aligned_alloc(64, c->mm.tile_bytes) : NULL;
    if (!c->x || !c->xn || !c->q || !c->kq || !c->vq || (hp->arch == LLM_ARCH_QWEN && !c->qkv) ||
        !c->att || !c->gate || !c->up || !c->pos || !c->tiled || (c->mm.x_bytes && !c->mm.x) ||
        (c->mm.tile_bytes && !c->mm.tiles)) {
        free_scratch(c);
        return CAI_ERR_NOMEM;
    }
    c->cap = T;
    return CAI_OK;
}

/* ---- the forward pass ------------------------------------------------- */

static void rms_norm(float *out, const float *x, const float *w, int n, float eps) {
    double ss = 0;
    for (int i = 0; i < n; i++)
        ss += (double)x[i] * x[i];
    float s = 1.0f / sqrtf((float)(ss / n) + eps);
    for (int i = 0; i < n; i++)
        out[i] = x[i] * s * w[i];
}

static void add_bias(float *y, const llm_tensor *b, int T, int n) {
    if (b->data == NULL)
        return;
    const float *bv = (const float *)b->data;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < n; i++)
            y[(size_t)t * (size_t)n + (size_t)i] += bv[i];
}

/* rope rotates every head of |x| (n_heads x head_dim) at position |pos|. */
static void rope(const llm_model *m, float *x, int n_heads, int pos) {
    const llm_hparams *hp = &m->hp;
    int half = hp->rope_dim / 2;
    for (int i = 0; i < half; i++) {
        float th = (float)pos * m->inv_freq[i], cs = cosf(th), sn = sinf(th);
        for (int h = 0; h < n_heads; h++) {
            float *v = x + (size_t)h * (size_t)hp->head_dim;
            int a = hp->rope_neox ? i : 2 * i, b = hp->rope_neox ? i + half : 2 * i + 1;
            float x0 = v[a], x1 = v[b];
            v[a] = x0 * cs - x1 * sn;
            v[b] = x0 * sn + x1 * cs;
        }
    }
}

typedef struct {
    llm_ctx *c;
    const llm_batch *b;
    int layer;
} attn_job;

/* Each (token, KV head) pair: for the query heads that share the KV head
 * (grouped-query attention), softmax(q k^T / sqrt(d)) v over the positions
 * of the token's sequence up to its own. The group's heads go together so
 * each cached key and value row is read from memory once, not once per
 * query head (at 4k context the cache is larger than the core's L2). */
static void attn_worker(void *ctx, int ith, int nth) {
    attn_job *j = ctx;
    llm_ctx *c = j->c;
    const llm_hparams *hp = &c->m->hp;
    const int D = hp->head_dim, H = hp->n_head, HKV = hp->n_head_kv, group = H / HKV;
    const size_t kv_dim = (size_t)HKV * (size_t)D, n_ctx = (size_t)c->n_ctx;
    const float scale = 1.0f / sqrtf((float)D);
    const kernel_attn attn = kernel_get_attn(kernel_level());
    const kernel_act act = kernel_get_act(kernel_level());
    float *score = c->score + (size_t)ith * (size_t)group * n_ctx; /* [head in group][position] */
    for (int w = ith; w < j->b->n * HKV; w += nth) {
        int t = w / HKV, g = w % HKV, s = j->b->seq[t], n = c->pos[t] + 1;
        size_t base = (((size_t)j->layer * (size_t)c->n_seq + (size_t)s) * n_ctx) * kv_dim + (size_t)g * (size_t)D;
        const size_t h0 = (size_t)t * (size_t)H + (size_t)g * (size_t)group; /* the group's first head */
        attn.qk(c->k + base, kv_dim, n, c->q + h0 * (size_t)D, group, D, scale, score, n_ctx);
        for (int u = 0; u < group; u++)
            act.softmax(score + (size_t)u * n_ctx, n);
        float *o = c->att + h0 * (size_t)D;
        memset(o, 0, (size_t)group * (size_t)D * sizeof(float));
        attn.wv(c->v + base, kv_dim, n, score, n_ctx, group, D, o);
    }
}

cai_status llm_decode(llm_ctx *c, const llm_batch *b, const float **out_logits) {
    const llm_model *m = c->m;
    const llm_hparams *hp = &m->hp;
    const int T = b->n, E = hp->n_embd, D = hp->head_dim, H = hp->n_head, HKV = hp->n_head_kv;
    const int Q = H * D, KV = HKV * D, F = hp->n_ff, V = hp->n_vocab;
    const kernel_act act = kernel_get_act(kernel_level());
    if (T <= 0)
        return cai_fail(CAI_ERR_INVALID_ARG, "empty batch");
    cai_status st = reserve(c, T);
    if (st != CAI_OK)
        return st;
    /* Validate everything before changing anything. */
    int n_out = 0;
    for (int t = 0; t < T; t++) {
        int s = b->seq[t];
        if (s < 0 || s >= c->n_seq)
            return cai_fail(CAI_ERR_INVALID_ARG, "sequence %d out of range", s);
        if (b->token[t] < 0 || b->token[t] >= V)
            return cai_fail(CAI_ERR_INVALID_ARG, "token %d out of the vocabulary", b->token[t]);
        n_out += b->logits ? b->logits[t] != 0 : t == T - 1;
    }
    for (int t = 0; t < T; t++) {
        int s = b->seq[t], p = c->seq_len[s];
        for (int u = 0; u < t; u++)
            p += b->seq[u] == s;
        if (p >= c->n_ctx)
            return cai_fail(CAI_ERR_LIMIT, "the context is full: %d tokens is this context's "
                            "limit (model trained for %d)", c->n_ctx, hp->n_ctx_train);
        c->pos[t] = p;
    }
    if (n_out > c->n_logits_cap) {
        float *l = realloc(c->logits, (size_t)n_out * (size_t)V * sizeof(float));
        if (l == NULL)
            return CAI_ERR_NOMEM;
        c->logits = l;
        c->n_logits_cap = n_out;
    }

    uint8_t *tiled = c->tiled, *tiled_out = c->tiled + T;
    for (int t = 0; t < T; t++)
        tiled[t] = b->prefill ? b->prefill[t] != 0 : T >= MATMUL_TILE_MIN;
    for (int t = 0; t < T; t++)
        tensor_get_row(&m->tok_embd, b->token[t], c->x + (size_t)t * (size_t)E);
    const size_t kv_dim = (size_t)KV;
    for (int l = 0; l < hp->n_layer; l++) {
        const llm_layer *L = &m->layers[l];
        for (int t = 0; t < T; t++)
            rms_norm(c->xn + (size_t)t * E, c->x + (size_t)t * E, (const float *)L->attn_norm.data,
                     E, hp->norm_eps);
        if (hp->arch == LLM_ARCH_QWEN) {
            matmul_with(c->pool, &L->wqkv, c->xn, T, tiled, &c->mm, c->qkv);
            add_bias(c->qkv, &L->bqkv, T, 3 * Q);
            for (int t = 0; t < T; t++) {
                const float *r = c->qkv + (size_t)t * 3 * (size_t)Q;
                memcpy(c->q + (size_t)t * Q, r, (size_t)Q * sizeof(float));
                memcpy(c->kq + (size_t)t * KV, r + Q, (size_t)KV * sizeof(float));
                memcpy(c->vq + (size_t)t * KV, r + 2 * Q, (size_t)KV * sizeof(float));
            }
        } else {
            matmul_with(c->pool, &L->wq, c->xn, T, tiled, &c->mm, c->q);
            matmul_with(c->pool, &L->wk, c->xn, T, tiled, &c->mm, c->kq);
            matmul_with(c->pool, &L->wv, c->xn, T, tiled, &c->mm, c->vq);
            add_bias(c->q, &L->bq, T, Q);
            add_bias(c->kq, &L->bk, T, KV);
            add_bias(c->vq, &L->bv, T, KV);
        }
        for (int t = 0; t < T; t++) {
            float *q = c->q + (size_t)t * Q, *k = c->kq + (size_t)t * KV;
            if (hp->arch == LLM_ARCH_QWEN3) {
                for (int h = 0; h < H; h++)
                    rms_norm(q + h * D, q + h * D, (const float *)L->q_norm.data, D, hp->norm_eps);
                for (int h = 0; h < HKV; h++)
                    rms_norm(k + h * D, k + h * D, (const float *)L->k_norm.data, D, hp->norm_eps);
            }
            rope(m, q, H, c->pos[t]);
            rope(m, k, HKV, c->pos[t]);
            size_t at = (((size_t)l * (size_t)c->n_seq + (size_t)b->seq[t]) * (size_t)c->n_ctx +
                         (size_t)c->pos[t]) * kv_dim;
            int bad = quant_quantize_row(GGML_TYPE_F16, k, c->k + at, (int64_t)kv_dim) |
                      quant_quantize_row(GGML_TYPE_F16, c->vq + (size_t)t * KV, c->v + at, (int64_t)kv_dim);
            CAI_ASSERT(bad == 0);
        }
        attn_job aj = {c, b, l};
        pool_run(c->pool, attn_worker, &aj);
        matmul_with(c->pool, &L->wo, c->att, T, tiled, &c->mm, c->xn);
        for (size_t i = 0; i < (size_t)T * (size_t)E; i++)
            c->x[i] += c->xn[i];

        for (int t = 0; t < T; t++)
            rms_norm(c->xn + (size_t)t * E, c->x + (size_t)t * E, (const float *)L->ffn_norm.data,
                     E, hp->norm_eps);
        matmul_with(c->pool, &L->gate, c->xn, T, tiled, &c->mm, c->gate);
        matmul_with(c->pool, &L->up, c->xn, T, tiled, &c->mm, c->up);
        act.silu_mul(c->gate, c->up, (size_t)T * (size_t)F);
        matmul_with(c->pool, &L->down, c->gate, T, tiled, &c->mm, c->xn);
        for (size_t i = 0; i < (size_t)T * (size_t)E; i++)
            c->x[i] += c->xn[i];
    }
    /* Final norm and logits for the requested rows, gathered first. */
    int r = 0;
    for (int t = 0; t < T; t++) {
        if (b->logits ? !b->logits[t] : t != T - 1)
            continue;
        rms_norm(c->xn + (size_t)r * E, c->x + (size_t)t * E, (const float *)m->out_norm.data, E,
                 hp->norm_eps);
        tiled_out[r++] = tiled[t];
    }
    matmul_with(c->pool, &m->output, c->xn, n_out, tiled_out, &c->mm, c->logits);
    for (int t = 0; t < T; t++) {
        c->tokens[(size_t)b->seq[t] * (size_t)c->n_ctx + (size_t)c->pos[t]] = b->token[t];
        c->seq_len[b->seq[t]] = c->pos[t] + 1 > c->seq_len[b->seq[t]] ? c->pos[t] + 1
                                                                      : c->seq_len[b->seq[t]];
    }
    *out_logits = c->logits;
    return CAI_OK;
}

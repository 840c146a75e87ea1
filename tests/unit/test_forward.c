/* test_forward.c - the forward pass against a plain scalar reference, with
 * no shared data: each case writes a tiny random-weight model (F32 weights)
 * with the GGUF writer, loads it like any other file and compares every
 * logit the engine returns with a transformer written out below in double
 * precision, one token at a time, straight from the architecture's
 * definition (RMS norm, Q/K/V with optional biases and Q/K norms, RoPE in
 * adjacent pairs or rotated halves, grouped-query causal attention, the
 * residuals, a SwiGLU FFN, tied or separate output).
 *
 * The prompt goes in as one batch (the prefill kernels, logits at every
 * position), then a few tokens one at a time (the decode kernels). The
 * engine keeps its KV cache in f16 (as llama.cpp), so the reference rounds
 * K and V the same way; what remains is float against double arithmetic,
 * about 2e-5 on logits of up to 25, against the bound TOL = 5e-4. A broken
 * RoPE (wrong pairs, position off by one, K not rotated), a dropped or
 * scaled residual, or a causal mask one position too wide each moves some
 * logit by more than 0.4 (tried). */
#include <math.h>

#include "gguf/ggml_type.h"
#include "gguf/gguf.h"
#include "gguf/gguf_write.h"
#include "llm/model.h"
#include "test.h"

#define TOL 5e-4 /* on logits; see above */

enum { N_PROMPT = 16, N_GEN = 4, N_TOK = N_PROMPT + N_GEN };

typedef struct {
    const char *arch;
    int n_layer, n_embd, n_head, n_head_kv, n_ff, n_vocab;
    int rope_neox, bias, qk_norm, tied;
    float rope_base;
} shape;

static const shape SHAPES[] = {
    /* Llama: adjacent-pair RoPE, grouped-query attention, separate output. */
    {"llama", 2, 64, 4, 2, 128, 96, 0, 0, 0, 0, 10000.0f},
    /* Qwen2: rotated halves, Q/K/V biases, tied embeddings. */
    {"qwen2", 2, 64, 4, 4, 96, 80, 1, 1, 0, 1, 1000000.0f},
    /* Qwen3: RMS norms on Q and K per head, grouped-query attention. */
    {"qwen3", 3, 32, 4, 1, 64, 64, 1, 0, 1, 0, 10000.0f},
};

#define EPS 1e-6f

/* ---- the model's weights ------------------------------------------------ */

typedef struct {
    float *attn_norm, *wq, *wk, *wv, *bq, *bk, *bv, *q_norm, *k_norm, *wo;
    float *ffn_norm, *gate, *up, *down;
} layer_w;

typedef struct {
    const shape *s;
    int D, Q, KV;
    float *embd, *out_norm, *output; /* output == embd when tied */
    layer_w L[4];
} weights;

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static float frand(void) { /* uniform in [-1, 1) */
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng >> 40) & 0xffffff) / (float)(1 << 23) - 1.0f;
}

/* A matrix of |rows| x |cols| with entries of variance ~1/cols, so every
 * product keeps activations of order 1; |base| + noise for norm weights. */
static float *mat(int rows, int cols, float base, float scale) {
    float *m = malloc((size_t)rows * (size_t)cols * sizeof(float));
    CAI_ASSERT(m != NULL);
    for (size_t i = 0; i < (size_t)rows * (size_t)cols; i++)
        m[i] = base + scale * frand();
    return m;
}

static void weights_make(weights *w, const shape *s) {
    memset(w, 0, sizeof(*w));
    w->s = s;
    w->D = s->n_embd / s->n_head;
    w->Q = s->n_head * w->D;
    w->KV = s->n_head_kv * w->D;
    const int E = s->n_embd, F = s->n_ff;
    const float se = 1.7f / sqrtf((float)E), sq = 1.7f / sqrtf((float)w->Q), sf = 1.7f / sqrtf((float)F);
    w->embd = mat(s->n_vocab, E, 0, 1);
    w->out_norm = mat(1, E, 1, 0.2f);
    w->output = s->tied ? w->embd : mat(s->n_vocab, E, 0, se);
    for (int l = 0; l < s->n_layer; l++) {
        layer_w *L = &w->L[l];
        L->attn_norm = mat(1, E, 1, 0.2f);
        L->wq = mat(w->Q, E, 0, se);
        L->wk = mat(w->KV, E, 0, se);
        L->wv = mat(w->KV, E, 0, se);
        if (s->bias) {
            L->bq = mat(1, w->Q, 0, 0.3f);
            L->bk = mat(1, w->KV, 0, 0.3f);
            L->bv = mat(1, w->KV, 0, 0.3f);
        }
        if (s->qk_norm) {
            L->q_norm = mat(1, w->D, 1, 0.2f);
            L->k_norm = mat(1, w->D, 1, 0.2f);
        }
        L->wo = mat(E, w->Q, 0, sq);
        L->ffn_norm = mat(1, E, 1, 0.2f);
        L->gate = mat(F, E, 0, se);
        L->up = mat(F, E, 0, se);
        L->down = mat(E, F, 0, sf);
    }
}

static void weights_free(weights *w) {
    free(w->embd);
    free(w->out_norm);
    if (w->output != w->embd)
        free(w->output);
    for (int l = 0; l < w->s->n_layer; l++) {
        layer_w *L = &w->L[l];
        float *all[] = {L->attn_norm, L->wq, L->wk, L->wv, L->bq, L->bk, L->bv,
                        L->q_norm, L->k_norm, L->wo, L->ffn_norm, L->gate, L->up, L->down};
        for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
            free(all[i]);
    }
}

/* ---- the GGUF file ------------------------------------------------------ */

static void put(gguf_writer *w, const char *name, int layer, const float *data, int64_t cols, int64_t rows) {
    if (data == NULL)
        return;
    char nm[96];
    if (layer >= 0)
        snprintf(nm, sizeof(nm), "blk.%d.%s", layer, name);
    else
        snprintf(nm, sizeof(nm), "%s", name);
    int64_t ne[2] = {cols, rows};
    CHECK_OK(gguf_writer_tensor(w, nm, GGML_TYPE_F32, rows > 1 ? 2 : 1, ne, data, NULL, NULL));
}

static void key_u32(gguf_writer *w, const char *arch, const char *suffix, uint32_t v) {
    char k[128];
    snprintf(k, sizeof(k), "%s.%s", arch, suffix);
    CHECK_OK(gguf_writer_u32(w, k, v));
}

static void write_gguf(const weights *wt, buf *out) {
    const shape *s = wt->s;
    gguf_writer *w = NULL;
    buf_init(out, 0);
    CHECK_OK(gguf_writer_new(&w));
    if (w == NULL)
        return;
    CHECK_OK(gguf_writer_str(w, "general.architecture", s->arch));
    key_u32(w, s->arch, "context_length", 64);
    key_u32(w, s->arch, "embedding_length", (uint32_t)s->n_embd);
    key_u32(w, s->arch, "block_count", (uint32_t)s->n_layer);
    key_u32(w, s->arch, "feed_forward_length", (uint32_t)s->n_ff);
    key_u32(w, s->arch, "attention.head_count", (uint32_t)s->n_head);
    key_u32(w, s->arch, "attention.head_count_kv", (uint32_t)s->n_head_kv);
    char k[128];
    snprintf(k, sizeof(k), "%s.rope.freq_base", s->arch);
    CHECK_OK(gguf_writer_f32(w, k, s->rope_base));
    snprintf(k, sizeof(k), "%s.attention.layer_norm_rms_epsilon", s->arch);
    CHECK_OK(gguf_writer_f32(w, k, EPS));
    const int E = s->n_embd, F = s->n_ff;
    put(w, "token_embd.weight", -1, wt->embd, E, s->n_vocab);
    put(w, "output_norm.weight", -1, wt->out_norm, E, 1);
    if (!s->tied)
        put(w, "output.weight", -1, wt->output, E, s->n_vocab);
    for (int l = 0; l < s->n_layer; l++) {
        const layer_w *L = &wt->L[l];
        put(w, "attn_norm.weight", l, L->attn_norm, E, 1);
        put(w, "attn_q.weight", l, L->wq, E, wt->Q);
        put(w, "attn_k.weight", l, L->wk, E, wt->KV);
        put(w, "attn_v.weight", l, L->wv, E, wt->KV);
        put(w, "attn_q.bias", l, L->bq, wt->Q, 1);
        put(w, "attn_k.bias", l, L->bk, wt->KV, 1);
        put(w, "attn_v.bias", l, L->bv, wt->KV, 1);
        put(w, "attn_q_norm.weight", l, L->q_norm, wt->D, 1);
        put(w, "attn_k_norm.weight", l, L->k_norm, wt->D, 1);
        put(w, "attn_output.weight", l, L->wo, wt->Q, E);
        put(w, "ffn_norm.weight", l, L->ffn_norm, E, 1);
        put(w, "ffn_gate.weight", l, L->gate, E, F);
        put(w, "ffn_up.weight", l, L->up, E, F);
        put(w, "ffn_down.weight", l, L->down, F, E);
    }
    CHECK_OK(gguf_writer_to_buf(w, out));
    gguf_writer_free(w);
}

/* ---- the reference, in double ------------------------------------------- */

typedef struct {
    const weights *w;
    double *k, *v; /* [layer][pos][KV] */
} ref_state;

static void ref_norm(double *out, const double *x, const float *g, int n) {
    double ss = 0;
    for (int i = 0; i < n; i++)
        ss += x[i] * x[i];
    double r = 1.0 / sqrt(ss / n + (double)EPS);
    for (int i = 0; i < n; i++)
        out[i] = x[i] * r * g[i];
}

/* y[rows] = W[rows][cols] x (+ b) */
static void ref_matvec(double *y, const float *W, const float *b, const double *x, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        double s = b ? b[r] : 0;
        for (int c = 0; c < cols; c++)
            s += (double)W[(size_t)r * (size_t)cols + (size_t)c] * x[c];
        y[r] = s;
    }
}

/* Rotates each head of |x| by position |pos|: the pair (i, i + D/2) for
 * rotated halves, (2i, 2i + 1) for adjacent pairs, by pos * base^(-2i/D). */
static void ref_rope(double *x, int n_heads, int D, int pos, int neox, double base) {
    for (int h = 0; h < n_heads; h++) {
        double *v = x + (size_t)h * (size_t)D;
        for (int i = 0; i < D / 2; i++) {
            double th = pos * pow(base, -2.0 * i / D);
            int a = neox ? i : 2 * i, b = neox ? i + D / 2 : 2 * i + 1;
            double x0 = v[a], x1 = v[b];
            v[a] = x0 * cos(th) - x1 * sin(th);
            v[b] = x0 * sin(th) + x1 * cos(th);
        }
    }
}

/* f16 rounds |x| to the 11 significant bits of an IEEE half (nearest, ties
 * to even), as the engine stores K and V; the few values below the half's
 * normal range keep more bits here, which is far below the bound. */
static double f16(double x) {
    int e;
    double m = frexp(x, &e);
    return ldexp(nearbyint(m * 2048) / 2048, e);
}

/* ref_step runs token |tok| at position |pos| and writes n_vocab logits. */
static void ref_step(ref_state *rs, int tok, int pos, double *logits) {
    const weights *w = rs->w;
    const shape *s = w->s;
    const int E = s->n_embd, D = w->D, Q = w->Q, KV = w->KV, F = s->n_ff, H = s->n_head;
    const int group = s->n_head / s->n_head_kv;
    double x[64], xn[64], q[64], att[64], o[64], g[128], u[128], sc[N_TOK];
    for (int i = 0; i < E; i++)
        x[i] = w->embd[(size_t)tok * (size_t)E + (size_t)i];
    for (int l = 0; l < s->n_layer; l++) {
        const layer_w *L = &w->L[l];
        double *kc = rs->k + (size_t)l * N_TOK * (size_t)KV, *vc = rs->v + (size_t)l * N_TOK * (size_t)KV;
        double *k = kc + (size_t)pos * (size_t)KV, *v = vc + (size_t)pos * (size_t)KV;
        ref_norm(xn, x, L->attn_norm, E);
        ref_matvec(q, L->wq, L->bq, xn, Q, E);
        ref_matvec(k, L->wk, L->bk, xn, KV, E);
        ref_matvec(v, L->wv, L->bv, xn, KV, E);
        if (s->qk_norm) {
            for (int h = 0; h < H; h++)
                ref_norm(q + h * D, q + h * D, L->q_norm, D);
            for (int h = 0; h < s->n_head_kv; h++)
                ref_norm(k + h * D, k + h * D, L->k_norm, D);
        }
        ref_rope(q, H, D, pos, s->rope_neox, s->rope_base);
        ref_rope(k, s->n_head_kv, D, pos, s->rope_neox, s->rope_base);
        for (int i = 0; i < KV; i++) {
            k[i] = f16(k[i]);
            v[i] = f16(v[i]);
        }
        for (int h = 0; h < H; h++) { /* causal: positions 0..pos */
            const int kvh = h / group;
            double max = -INFINITY, sum = 0;
            for (int p = 0; p <= pos; p++) {
                double d = 0;
                for (int i = 0; i < D; i++)
                    d += q[h * D + i] * kc[(size_t)p * KV + (size_t)(kvh * D + i)];
                sc[p] = d / sqrt((double)D);
                max = fmax(max, sc[p]);
            }
            for (int p = 0; p <= pos; p++)
                sum += sc[p] = exp(sc[p] - max);
            for (int i = 0; i < D; i++) {
                double a = 0;
                for (int p = 0; p <= pos; p++)
                    a += sc[p] / sum * vc[(size_t)p * KV + (size_t)(kvh * D + i)];
                att[h * D + i] = a;
            }
        }
        ref_matvec(o, L->wo, NULL, att, E, Q);
        for (int i = 0; i < E; i++)
            x[i] += o[i];
        ref_norm(xn, x, L->ffn_norm, E);
        ref_matvec(g, L->gate, NULL, xn, F, E);
        ref_matvec(u, L->up, NULL, xn, F, E);
        for (int i = 0; i < F; i++)
            g[i] = g[i] / (1 + exp(-g[i])) * u[i];
        ref_matvec(o, L->down, NULL, g, E, F);
        for (int i = 0; i < E; i++)
            x[i] += o[i];
    }
    ref_norm(xn, x, w->out_norm, E);
    ref_matvec(logits, w->output, NULL, xn, s->n_vocab, E);
}

/* ---- the comparison ----------------------------------------------------- */

/* Compares |got| (n_vocab floats) with |want|; returns the largest
 * difference and widens |*scale| to the largest reference logit. */
static double compare(const float *got, const double *want, int n, double *scale) {
    double err = 0;
    for (int i = 0; i < n; i++) {
        err = fmax(err, fabs((double)got[i] - want[i]));
        *scale = fmax(*scale, fabs(want[i]));
    }
    return err;
}

static void check_shape(const shape *s) {
    CAI_ASSERT(s->n_layer <= 4 && s->n_embd <= 64 && s->n_ff <= 128);
    weights w;
    weights_make(&w, s);
    buf file;
    write_gguf(&w, &file);
    gguf_file *g = NULL;
    llm_model *m = NULL;
    llm_ctx *c = NULL;
    ref_state rs = {&w, calloc((size_t)s->n_layer * N_TOK * (size_t)w.KV, sizeof(double)),
                    calloc((size_t)s->n_layer * N_TOK * (size_t)w.KV, sizeof(double))};
    double *want = malloc((size_t)N_TOK * (size_t)s->n_vocab * sizeof(double));
    CAI_ASSERT(rs.k && rs.v && want);
    CHECK_OK(gguf_open_mem(file.data, file.len, &g));
    if (g)
        CHECK_OK(llm_model_load(g, &m));
    if (m) {
        const llm_hparams *hp = llm_model_hparams(m);
        CHECK(hp->n_vocab == s->n_vocab && hp->head_dim == w.D && hp->rope_neox == s->rope_neox);
        CHECK_OK(llm_ctx_new(m, 32, 1, 2, &c));
    }
    if (c == NULL)
        goto out;

    int32_t tok[N_TOK], seq[N_TOK] = {0};
    uint8_t all[N_TOK];
    for (int t = 0; t < N_TOK; t++) {
        tok[t] = (int32_t)((t * 37 + 11) % s->n_vocab);
        all[t] = 1;
        ref_step(&rs, tok[t], t, want + (size_t)t * (size_t)s->n_vocab);
    }
    double worst = 0, scale = 0;
    int worst_at = -1;
    const float *logits = NULL;
    llm_batch b = {N_PROMPT, tok, seq, all, NULL}; /* prefill kernels: >= MATMUL_TILE_MIN tokens */
    CHECK_OK(llm_decode(c, &b, &logits));
    for (int t = 0; t < N_PROMPT && logits; t++) {
        double e = compare(logits + (size_t)t * (size_t)s->n_vocab, want + (size_t)t * (size_t)s->n_vocab,
                           s->n_vocab, &scale);
        if (e > worst) {
            worst = e;
            worst_at = t;
        }
    }
    for (int t = N_PROMPT; t < N_TOK; t++) { /* decode kernels, one token at a time */
        llm_batch one = {1, tok + t, seq, NULL, NULL};
        logits = NULL;
        CHECK_OK(llm_decode(c, &one, &logits));
        if (logits == NULL)
            break;
        double e = compare(logits, want + (size_t)t * (size_t)s->n_vocab, s->n_vocab, &scale);
        if (e > worst) {
            worst = e;
            worst_at = t;
        }
    }
    CHECK(llm_seq_len(c, 0) == N_TOK);
    CHECK(scale > 1.0); /* the logits are not all near zero: the bound means something */
    printf("  %s: logits differ from the reference by up to %g (position %d; bound %g, largest logit %g)\n",
           s->arch, worst, worst_at, TOL, scale);
    CHECK(worst <= TOL);
out:
    llm_ctx_free(c);
    llm_model_free(m);
    gguf_close(g);
    buf_free(&file);
    free(rs.k);
    free(rs.v);
    free(want);
    weights_free(&w);
}

static void test_llama(void) { check_shape(&SHAPES[0]); }
static void test_qwen2(void) { check_shape(&SHAPES[1]); }
static void test_qwen3(void) { check_shape(&SHAPES[2]); }

int main(void) {
    RUN(test_llama);
    RUN(test_qwen2);
    RUN(test_qwen3);
    return test_summary();
}

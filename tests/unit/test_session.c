/* test_session.c - the generation API (llm/session.h) on a tiny model built
 * here: a 2-layer Llama with random Q8_0 weights (the type with packed
 * prefill tiles; a wider variant with Q4_K_M's types, Q4_K and Q6_K, for
 * the x16 tests) and a SentencePiece vocabulary of 256 byte tokens plus a
 * few, written with the GGUF writer into a memfd and opened like any model.
 *
 * What it shows: sessions run alone and sessions batched into shared
 * forward passes (prompts in chunks beside other sessions' decode tokens,
 * as the scheduler does) make the same tokens and text; a stop string cuts
 * the text where it first occurs and the streamed deltas never show it;
 * max_tokens, a full context and a constraint end a generation as they
 * should; the cache's prefix is reused; bad requests are refused; the
 * scheduler (llm/sched.h) gives each request what it gives alone; the
 * weights rewritten into the x16 layout give the same logits. */
#include <math.h>
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/file.h"
#include "common/secure.h"
#include "gguf/ggml_type.h"
#include "gguf/gguf_write.h"
#include "llm/engine.h"
#include "llm/kernels.h"
#include "llm/matmul.h"
#include "llm/quant.h"
#include "llm/sched.h"
#include "llm/session.h"
#include "test.h"
#include "tiny_vocab.h"

enum { N_LAYER = 2, E = 64, N_HEAD = 4, N_HEAD_KV = 2, F = 128, N_VOCAB = 264 };
/* The K-quant variant (Q4_K_M's types: Q4_K, with Q6_K for attn_v,
 * ffn_down and output): rows of whole 256-value super-blocks. */
enum { E_K = 256, F_K = 512 };

#define RNG_SEED 0x243f6a8885a308d3ull
static uint64_t rng = RNG_SEED;

static float frand(void) { /* uniform in [-1, 1) */
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng >> 40) & 0xffffff) / (float)(1 << 23) - 1.0f;
}

/* A |rows| x |cols| tensor of |type| of base + scale * noise, F32 when it
 * is one row (norms). */
static void put(gguf_writer *w, const char *name, int layer, int rows, int cols, float base, float scale, int type) {
    char nm[96];
    if (layer >= 0)
        snprintf(nm, sizeof(nm), "blk.%d.%s", layer, name);
    else
        snprintf(nm, sizeof(nm), "%s", name);
    float *row = malloc((size_t)cols * sizeof(float));
    if (rows == 1)
        type = GGML_TYPE_F32;
    size_t rb = ggml_type_row_size(type, cols);
    uint8_t *data = malloc((size_t)rows * rb);
    CAI_ASSERT(row && data);
    for (int r = 0; r < rows; r++) {
        for (int c = 0; c < cols; c++)
            row[c] = base + scale * frand();
        CAI_ASSERT(quant_quantize_row(type, row, data + (size_t)r * rb, cols) == 0);
    }
    int64_t ne[2] = {cols, rows};
    CHECK_OK(gguf_writer_tensor(w, nm, type, rows > 1 ? 2 : 1, ne, data, NULL, NULL));
    free(row);
    free(data);
}

/* The vocabulary: <unk> <s> </s>, the 256 bytes, then a few pieces. */
static void put_vocab(gguf_writer *w) {
    static const char *const extra[] = {"\xe2\x96\x81the", "ab", "\xe2\x96\x81", "cd", "xy"};
    tiny_vocab_put(w, extra, N_VOCAB - TINY_VOCAB_BASE);
}

/* The permissions of the mapping holding |p| ("r--p", ...), or "". */
static const char *map_perms(const void *p) {
    static char perms[8];
    char flags[256];
    test_mapping(p, perms, flags, sizeof(flags));
    return perms;
}

/* The tiny model as an open engine (from a memfd, closed: the engine maps
 * it); with |x16|, through llm_engine_open_mem (weights rewritten into
 * the x16 layout where the kernels have it); with |kq|, the K-quant
 * variant (E_K, F_K), else all Q8_0. */
static llm_engine *tiny_engine_of(int x16, int kq) {
    const int E1 = kq ? E_K : E, F1 = kq ? F_K : F;
    const int q4 = kq ? GGML_TYPE_Q4_K : GGML_TYPE_Q8_0, q6 = kq ? GGML_TYPE_Q6_K : GGML_TYPE_Q8_0;
    gguf_writer *w = NULL;
    buf file;
    buf_init(&file, 0);
    CHECK_OK(gguf_writer_new(&w));
    CAI_ASSERT(w != NULL);
    CHECK_OK(gguf_writer_str(w, "general.architecture", "llama"));
    CHECK_OK(gguf_writer_u32(w, "llama.context_length", 128));
    CHECK_OK(gguf_writer_u32(w, "llama.embedding_length", (uint32_t)E1));
    CHECK_OK(gguf_writer_u32(w, "llama.block_count", N_LAYER));
    CHECK_OK(gguf_writer_u32(w, "llama.feed_forward_length", (uint32_t)F1));
    CHECK_OK(gguf_writer_u32(w, "llama.attention.head_count", N_HEAD));
    CHECK_OK(gguf_writer_u32(w, "llama.attention.head_count_kv", N_HEAD_KV));
    CHECK_OK(gguf_writer_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-6f));
    put_vocab(w);
    const int KV = N_HEAD_KV * (E1 / N_HEAD);
    const float s = 1.7f / sqrtf((float)E1), sf = 1.7f / sqrtf((float)F1);
    put(w, "token_embd.weight", -1, N_VOCAB, E1, 0, 1, q4);
    put(w, "output_norm.weight", -1, 1, E1, 1, 0.2f, 0);
    put(w, "output.weight", -1, N_VOCAB, E1, 0, 3 * s, q6); /* peaked enough to repeat itself */
    for (int l = 0; l < N_LAYER; l++) {
        put(w, "attn_norm.weight", l, 1, E1, 1, 0.2f, 0);
        put(w, "attn_q.weight", l, E1, E1, 0, s, q4);
        put(w, "attn_k.weight", l, KV, E1, 0, s, q4);
        put(w, "attn_v.weight", l, KV, E1, 0, s, q6);
        put(w, "attn_output.weight", l, E1, E1, 0, s, q4);
        put(w, "ffn_norm.weight", l, 1, E1, 1, 0.2f, 0);
        put(w, "ffn_gate.weight", l, F1, E1, 0, s, q4);
        put(w, "ffn_up.weight", l, F1, E1, 0, s, q4);
        put(w, "ffn_down.weight", l, E1, F1, 0, sf, l % 2 ? q4 : q6); /* as Q4_K_M: half of them */
    }
    CHECK_OK(gguf_writer_to_buf(w, &file));
    gguf_writer_free(w);
    llm_engine *e = NULL;
    if (x16) {
        void *mem = NULL;
        CHECK_OK(secure_map(file.len, &mem));
        if (mem) {
            memcpy(mem, file.data, file.len);
            CHECK_OK(llm_engine_open_mem(mem, file.len, NULL, &e));
            CHECK(e == NULL || strncmp(map_perms(mem), "r--", 3) == 0); /* read-only now */
        }
    } else {
        int fd = -1;
        fd = memfd_create("test-session", MFD_CLOEXEC);
        CHECK(fd >= 0);
        if (fd >= 0) {
            CHECK_OK(file_pwrite_full(fd, file.data, file.len, 0));
            CHECK_OK(llm_engine_open(NULL, fd, NULL, &e));
            close(fd);
        }
    }
    buf_free(&file);
    if (e && x16) {
        double secs = -1;
        const char *layout = llm_engine_layout_name(e, &secs);
        CHECK(strcmp(layout, kernel_get(GGML_TYPE_Q8_0, kernel_level()).x16_exact ? "x16" : "file") == 0);
        CHECK(secs >= 0);
    }
    return e;
}

static llm_engine *tiny_engine(void) { return tiny_engine_of(0, 0); }

enum { MAX_GEN = 32 }; /* more than any max_tokens here (25) */

typedef struct {
    int32_t tok[MAX_GEN];
    uint64_t logits_hash[MAX_GEN]; /* FNV-1a of each sampled token's logits: bit for bit */
    size_t cut[MAX_GEN];           /* where each delta ended in the text */
    int n, n_cut;
    buf text;   /* the deltas, concatenated */
    llm_finish finish;
} run;

static void prompt_of(int32_t *p, int n, int salt) {
    for (int i = 0; i < n; i++)
        p[i] = (int32_t)(3 + (i * 29 + salt * 53) % 256);
}

static uint64_t fnv(const void *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ ((const uint8_t *)p)[i]) * 0x100000001b3ull;
    return h;
}

static void record(run *r, const llm_delta *d) {
    if (d->token >= 0 && r->n < MAX_GEN) {
        r->logits_hash[r->n] = fnv(d->logits, N_VOCAB * sizeof(float));
        r->tok[r->n++] = d->token;
    }
    CHECK_OK(buf_append(&r->text, d->text, d->len));
    if (d->len && r->n_cut < MAX_GEN)
        r->cut[r->n_cut++] = r->text.len;
    r->finish = d->finish;
}

/* Runs one session alone on its own context. */
static void solo(llm_engine *e, const llm_gen_params *p, const int32_t *prompt, int n, int n_ctx, run *r) {
    llm_ctx *ctx = NULL;
    llm_session *s = NULL;
    buf_init(&r->text, 0);
    r->n = r->n_cut = 0;
    r->finish = LLM_FINISH_NONE;
    CHECK_OK(llm_ctx_new(llm_engine_model(e), n_ctx, 1, 2, &ctx));
    CHECK_OK(llm_session_new(e, p, prompt, n, &s));
    if (ctx && s) {
        llm_session_bind(s, ctx, 0, 0);
        llm_delta d = {0};
        while (d.finish == LLM_FINISH_NONE) {
            cai_status st = llm_session_step(s, &d);
            CHECK_OK(st);
            if (st != CAI_OK)
                break;
            record(r, &d);
        }
        size_t len;
        const char *t = llm_session_text(s, &len);
        CHECK(len == r->text.len && memcmp(t, r->text.data, len) == 0); /* the deltas are the text */
        CHECK(llm_session_n_generated(s) == r->n);
    }
    llm_session_free(s);
    llm_ctx_free(ctx);
}

static llm_gen_params params(uint64_t seed, int max_tokens) {
    llm_gen_params p = {0};
    sample_params_default(&p.sample);
    p.sample.seed = seed;
    p.max_tokens = max_tokens;
    return p;
}

enum { N_SESS = 6, CHUNK = 8 };

/* Six sessions (prompts of 3 to 30 tokens, some short enough not to be
 * flagged as prefill) batched as the scheduler batches them: every step
 * the decode tokens first, then at most CHUNK prompt tokens; against each
 * run alone. */
static void batched_equals_solo(int x16, int kq) {
    const uint64_t saved = rng; /* the first model, in both layouts; later tests go on from here */
    rng = RNG_SEED;
    llm_engine *e = tiny_engine_of(x16, kq);
    if (x16 || kq)
        rng = saved;
    if (e == NULL)
        return;
    static const int len[N_SESS] = {3, 14, 30, 5, 12, 9};
    int32_t prompt[N_SESS][32];
    llm_gen_params p[N_SESS];
    run alone[N_SESS], together[N_SESS];
    for (int i = 0; i < N_SESS; i++) {
        prompt_of(prompt[i], len[i], i);
        p[i] = params(100 + (uint64_t)i, 10 + 3 * i);
        solo(e, &p[i], prompt[i], len[i], 64, &alone[i]);
    }
    llm_ctx *ctx = NULL;
    llm_session *s[N_SESS] = {0};
    CHECK_OK(llm_ctx_new(llm_engine_model(e), 64, N_SESS, 2, &ctx));
    for (int i = 0; i < N_SESS; i++) {
        CHECK_OK(llm_session_new(e, &p[i], prompt[i], len[i], &s[i]));
        buf_init(&together[i].text, 0);
        together[i].n = together[i].n_cut = 0;
        together[i].finish = LLM_FINISH_NONE;
        if (s[i] && ctx)
            llm_session_bind(s[i], ctx, i, 0);
    }
    int32_t tok[N_SESS + CHUNK], seq[N_SESS + CHUNK], owner[N_SESS + CHUNK];
    uint8_t want[N_SESS + CHUNK], pre[N_SESS + CHUNK];
    int steps = 0, mixed = 0, tiled_decode = 0;
    for (int live = N_SESS; live > 0 && ctx && steps < 200; steps++) {
        int n = 0, budget = CHUNK;
        for (int pass = 0; pass < 2; pass++)
            for (int i = 0; i < N_SESS; i++) {
                if (!s[i] || together[i].finish || llm_session_prefilling(s[i]) != pass)
                    continue;
                int k = llm_session_next_tokens(s[i], pass ? budget : 1, tok + n, want + n, pre + n);
                for (int j = 0; j < k; j++)
                    seq[n + j] = i, owner[n + j] = i;
                n += k;
                budget -= pass ? k : 0;
            }
        int kinds = 0;
        for (int t = 0; t < n; t++)
            kinds |= pre[t] ? 1 : 2;
        mixed += kinds == 3;
        int plain = 0; /* tokens not flagged for the prefill tiles */
        for (int t = 0; t < n; t++)
            plain += !pre[t];
        tiled_decode += (kinds & 2) && plain >= MATMUL_EXACT_TILE_MIN;
        const float *logits = NULL;
        llm_batch b = {n, tok, seq, want, pre};
        CHECK_OK(llm_decode(ctx, &b, &logits));
        if (logits == NULL)
            break;
        for (int t = 0, row = 0; t < n; t++) {
            if (!want[t])
                continue;
            int i = owner[t];
            llm_delta d;
            CHECK_OK(llm_session_sample(s[i], logits + (size_t)row++ * N_VOCAB, &d));
            if (d.finish == LLM_FINISH_NONE && llm_session_limit(s[i]) != LLM_FINISH_NONE) {
                record(&together[i], &d);
                llm_session_end(s[i], llm_session_limit(s[i]), &d);
            }
            record(&together[i], &d);
            live -= d.finish != LLM_FINISH_NONE;
        }
    }
    for (int i = 0; i < N_SESS; i++) {
        CHECK(alone[i].n > 0 && alone[i].n == together[i].n);
        CHECK(memcmp(alone[i].tok, together[i].tok, (size_t)alone[i].n * sizeof(int32_t)) == 0);
        CHECK(memcmp(alone[i].logits_hash, together[i].logits_hash, (size_t)alone[i].n * 8) == 0);
        CHECK(alone[i].text.len == together[i].text.len &&
              memcmp(alone[i].text.data, together[i].text.data, alone[i].text.len) == 0);
        CHECK(alone[i].finish == together[i].finish && alone[i].finish != LLM_FINISH_NONE);
        buf_free(&alone[i].text);
        buf_free(&together[i].text);
        llm_session_free(s[i]);
    }
    CHECK(mixed > 0); /* some step held prefill and decode tokens together */
    /* Where the weights have exact tiles, steps with MATMUL_EXACT_TILE_MIN
     * tokens or more not flagged as prefill take them for those: decode
     * tokens did, and still matched their solo runs (one token at a time,
     * row kernels). In x16 they all take the exact x16 kernels. */
    if (kernel_get(GGML_TYPE_Q8_0, kernel_level()).tile_exact)
        CHECK(tiled_decode > 0);
    llm_ctx_free(ctx);
    llm_engine_free(e);
}

static void test_batched_equals_solo(void) { batched_equals_solo(0, 0); }
static void test_batched_equals_solo_x16(void) { batched_equals_solo(1, 0); }
static void test_batched_equals_solo_x16_kquant(void) { batched_equals_solo(1, 1); }

/* The model opened through llm_engine_open_mem (weights in x16 at the
 * AVX-512 VNNI level) and through llm_engine_open (the file's layout):
 * the same logits, bit for bit, for a prompt flagged as prefill, one that
 * is not, single-token decode steps and a step of several sequences. */
static void x16_equals_file(int kq) {
    const uint64_t saved = rng; /* the same weights twice */
    rng = RNG_SEED;
    llm_engine *e[2] = {tiny_engine_of(0, kq), NULL};
    rng = RNG_SEED;
    e[1] = tiny_engine_of(1, kq);
    rng = saved;
    llm_ctx *c[2] = {NULL, NULL};
    enum { P = 20, Q = 7, STEPS = 6, NS = 3 };
    int32_t tok[P], seq[P];
    uint8_t want[P], flat[P];
    prompt_of(tok, P, 5);
    memset(want, 1, sizeof(want));
    memset(flat, 0, sizeof(flat));
    int compared = 0;
    for (int i = 0; i < 2 && e[0] && e[1]; i++)
        CHECK_OK(llm_ctx_new(llm_engine_model(e[i]), 64, NS, 2, &c[i]));
    if (c[0] && c[1]) {
        /* sequence 0: a prompt as prefill, then decode steps; sequence 1:
         * a prompt with the decode kernels; then a step of all three */
        llm_batch b[2 + STEPS + 1];
        for (int t = 0; t < P; t++)
            seq[t] = 0;
        b[0] = (llm_batch){P, tok, seq, want, NULL};
        static const int32_t seq1[Q] = {1, 1, 1, 1, 1, 1, 1}, seq012[NS] = {0, 1, 2};
        b[1] = (llm_batch){Q, tok + 3, seq1, want, flat};
        for (int k = 0; k < STEPS; k++)
            b[2 + k] = (llm_batch){1, tok + k, seq, want, flat};
        b[2 + STEPS] = (llm_batch){NS, tok + 9, seq012, want, flat};
        for (size_t k = 0; k < sizeof(b) / sizeof(b[0]); k++) {
            const float *l[2] = {NULL, NULL};
            for (int i = 0; i < 2; i++)
                CHECK_OK(llm_decode(c[i], &b[k], &l[i]));
            if (!l[0] || !l[1])
                break;
            if (memcmp(l[0], l[1], (size_t)b[k].n * N_VOCAB * sizeof(float)) != 0) {
                printf("  batch %zu: the logits differ between the layouts\n", k);
                CHECK(0);
            }
            compared++;
        }
    }
    CHECK(compared == 2 + STEPS + 1);
    for (int i = 0; i < 2; i++) {
        llm_ctx_free(c[i]);
        llm_engine_free(e[i]);
    }
}

static void test_x16_equals_file(void) { x16_equals_file(0); }
static void test_x16_equals_file_kquant(void) { x16_equals_file(1); }

/* llm_engine_open_mem refuses bytes that are not a GGUF, and takes the
 * memory on failure too (the caller must not touch it again). */
static void test_open_mem_refuses_garbage(void) {
    void *mem = NULL;
    llm_engine *e = NULL;
    CHECK_OK(secure_map(4096, &mem));
    if (mem == NULL)
        return;
    memset(mem, 0x5a, 4096);
    CHECK_ST(llm_engine_open_mem(mem, 4096, NULL, &e), CAI_ERR_FORMAT);
    CHECK(e == NULL);
    CHECK(map_perms(mem)[0] == '\0'); /* unmapped */
}

/* A stop string taken from a run without one, across two of its deltas:
 * the second run's text ends right before its first occurrence, and no
 * delta showed any of it (solo checks that the deltas are the text). */
static void test_stop_string(void) {
    llm_engine *e = tiny_engine();
    if (e == NULL)
        return;
    int32_t prompt[10];
    prompt_of(prompt, 10, 7);
    llm_gen_params p = params(5, 20);
    run a, b;
    solo(e, &p, prompt, 10, 64, &a);
    size_t at = 0;
    for (int i = 0; i < a.n_cut && at == 0; i++)
        if (a.cut[i] >= 2 && a.cut[i] < a.text.len)
            at = a.cut[i] - 2;
    CHECK(at > 0 || (a.text.len > 3 && a.cut[0] == 2));
    if (a.text.len > 3 && (at > 0 || a.cut[0] == 2)) {
        char stop[4] = {0};
        memcpy(stop, a.text.data + at, 3);
        CHECK(strlen(stop) == 3);
        const char *stops[] = {"never in this text \x01", stop};
        size_t cut = (size_t)((const uint8_t *)memmem(a.text.data, a.text.len, stop, 3) - a.text.data);
        p.stop = stops;
        p.n_stop = 2;
        solo(e, &p, prompt, 10, 64, &b);
        CHECK(b.finish == LLM_FINISH_STOP);
        CHECK(b.text.len == cut && memcmp(b.text.data, a.text.data, cut) == 0);
        buf_free(&b.text);
    }
    buf_free(&a.text);
    llm_engine_free(e);
}

static int no_eog(void *arg, int32_t token, int is_eog) {
    (void)token;
    ++*(int *)arg;
    return !is_eog;
}

static int nothing(void *arg, int32_t token, int is_eog) {
    (void)arg, (void)token, (void)is_eog;
    return 0;
}

/* max_tokens, then a full context, then a constraint that allows nothing. */
static void test_limits(void) {
    llm_engine *e = tiny_engine();
    if (e == NULL)
        return;
    int32_t prompt[14];
    prompt_of(prompt, 14, 3);
    int calls = 0;
    llm_gen_params p = params(9, 5);
    p.allow = no_eog;
    p.allow_arg = &calls;
    run r;
    solo(e, &p, prompt, 14, 64, &r);
    CHECK(r.finish == LLM_FINISH_LENGTH && r.n == 5 && calls >= 5);
    buf_free(&r.text);
    p.max_tokens = 0; /* until the context (16) is full: 14 + 2 fed, a third sampled */
    solo(e, &p, prompt, 14, 16, &r);
    CHECK(r.finish == LLM_FINISH_CONTEXT && r.n == 3);
    buf_free(&r.text);
    p.allow = nothing;
    solo(e, &p, prompt, 14, 64, &r);
    CHECK(r.finish == LLM_FINISH_STOP && r.n == 0 && r.text.len == 0);
    buf_free(&r.text);
    llm_engine_free(e);
}

/* A second prompt that starts like the first reuses the cached prefix, the
 * same prompt again all but its last token; a prompt that does not fit is
 * CAI_ERR_LIMIT. */
static void test_prefix_reuse(void) {
    llm_engine *e = tiny_engine();
    if (e == NULL)
        return;
    int32_t a[20], b[20];
    prompt_of(a, 20, 1);
    memcpy(b, a, sizeof(b));
    b[12] = a[12] == 40 ? 41 : 40;
    llm_gen_params p = params(1, 3);
    llm_ctx *ctx = NULL;
    llm_session *s = NULL;
    llm_delta d = {0};
    CHECK_OK(llm_ctx_new(llm_engine_model(e), 64, 1, 2, &ctx));
    const int32_t *pr[] = {a, b, a};
    const int want[] = {0, 12, 12};
    for (int i = 0; i < 3 && ctx; i++) {
        CHECK_OK(llm_session_new(e, &p, pr[i], 20, &s));
        if (s == NULL)
            break;
        llm_session_bind(s, ctx, 0, 1);
        CHECK(llm_session_n_reused(s) == want[i]);
        CHECK(llm_seq_len(ctx, 0) == want[i]);
        for (d.finish = LLM_FINISH_NONE; d.finish == LLM_FINISH_NONE;)
            CHECK_OK(llm_session_step(s, &d));
        llm_session_free(s);
    }
    CHECK_OK(llm_session_new(e, &p, a, 20, &s));
    if (s) {
        llm_session_bind(s, ctx, 0, 1); /* a, after a: all but its last token */
        CHECK(llm_session_n_reused(s) == 19);
        llm_session_free(s);
    }
    CHECK_OK(llm_session_new(e, &p, a, 20, &s));
    if (s) {
        llm_session_bind(s, ctx, 0, 0);
        CHECK(llm_session_n_reused(s) == 0 && llm_seq_len(ctx, 0) == 0);
        llm_session_free(s);
    }
    llm_ctx_free(ctx);
    ctx = NULL;
    CHECK_OK(llm_ctx_new(llm_engine_model(e), 16, 1, 2, &ctx));
    CHECK_OK(llm_session_new(e, &p, a, 20, &s));
    if (s && ctx) {
        llm_session_bind(s, ctx, 0, 0);
        CHECK_ST(llm_session_step(s, &d), CAI_ERR_LIMIT);
        CHECK(llm_seq_len(ctx, 0) == 0 && llm_session_prefilling(s));
    }
    llm_session_free(s);
    llm_ctx_free(ctx);
    llm_engine_free(e);
}

static void test_bad_requests(void) {
    llm_engine *e = tiny_engine();
    if (e == NULL)
        return;
    int32_t ok[2] = {5, 6}, bad[2] = {5, N_VOCAB};
    llm_gen_params p = params(1, 3);
    llm_session *s = NULL;
    CHECK_ST(llm_session_new(e, &p, ok, 0, &s), CAI_ERR_INVALID_ARG);
    CHECK_ST(llm_session_new(e, &p, bad, 2, &s), CAI_ERR_INVALID_ARG);
    const char *empty[] = {""};
    p.stop = empty;
    p.n_stop = 1;
    CHECK_ST(llm_session_new(e, &p, ok, 2, &s), CAI_ERR_INVALID_ARG);
    p.n_stop = 0;
    p.sample.top_p = 0;
    CHECK_ST(llm_session_new(e, &p, ok, 2, &s), CAI_ERR_INVALID_ARG);
    CHECK(s == NULL);
    llm_engine_free(e);
}

/* ---- the scheduler ---------------------------------------------------- */

typedef struct {
    pthread_mutex_t *mu;
    pthread_cond_t *cv;
    run r;
    int done, tokens_after_end;
    sched_usage u;
} sched_out;

static int sched_tok(void *arg, const llm_delta *d) {
    sched_out *o = arg;
    pthread_mutex_lock(o->mu);
    o->tokens_after_end += o->r.finish != LLM_FINISH_NONE;
    if (o->r.n < MAX_GEN) {
        o->r.logits_hash[o->r.n] = fnv(d->logits, N_VOCAB * sizeof(float));
        o->r.tok[o->r.n++] = d->token;
    }
    CHECK_OK(buf_append(&o->r.text, d->text, d->len));
    o->r.finish = d->finish;
    pthread_mutex_unlock(o->mu);
    return 0;
}

static void sched_done(void *arg, llm_finish why, const char *text, size_t len, const sched_usage *u) {
    sched_out *o = arg;
    pthread_mutex_lock(o->mu);
    /* what on_token streamed is a prefix of the final text */
    CHECK(o->r.text.len <= len && memcmp(o->r.text.data ? (char *)o->r.text.data : "", text, o->r.text.len) == 0);
    o->r.text.len = 0;
    CHECK_OK(buf_append(&o->r.text, text, len));
    o->r.finish = why;
    o->u = *u;
    o->done = 1;
    pthread_cond_broadcast(o->cv);
    pthread_mutex_unlock(o->mu);
}

/* Four requests through a scheduler of two slots (so two wait in the
 * queue), one with a stop string: each gives the tokens and text it gives
 * alone, and its usage counts them. */
static void test_sched_equals_solo(void) {
    llm_engine *e = tiny_engine();
    if (e == NULL)
        return;
    enum { N = 4 };
    static const int len[N] = {5, 14, 30, 9};
    int32_t prompt[N][32];
    llm_gen_params p[N];
    run alone[N];
    sched_out out[N];
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
    const char *stops[] = {"\xef\xbf\xbd"}; /* U+FFFD: random bytes make many */
    for (int i = 0; i < N; i++) {
        prompt_of(prompt[i], len[i], 10 + i);
        p[i] = params(200 + (uint64_t)i, 12);
        if (i == 3)
            p[i].stop = stops, p[i].n_stop = 1;
        solo(e, &p[i], prompt[i], len[i], 64, &alone[i]);
        out[i] = (sched_out){.mu = &mu, .cv = &cv};
        buf_init(&out[i].r.text, 0);
    }
    llm_ctx *ctx = NULL;
    sched *sc = NULL;
    sched_req *req[N] = {0};
    CHECK_OK(llm_ctx_new(llm_engine_model(e), 64, 2, 2, &ctx));
    if (ctx)
        CHECK_OK(sched_new(e, ctx, 2, 2, &sc));
    for (int i = 0; i < N && sc; i++) {
        sched_params sp = {.prompt = prompt[i], .n_prompt = len[i], .gen = p[i], .want_logits = 1,
                           .on_token = sched_tok, .on_done = sched_done, .arg = &out[i]};
        CHECK_OK(sched_submit(sc, &sp, &req[i]));
    }
    pthread_mutex_lock(&mu);
    for (int i = 0; i < N && sc; i++)
        while (!out[i].done)
            pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    for (int i = 0; i < N; i++) {
        CHECK(out[i].done && out[i].r.finish == alone[i].finish);
        CHECK(out[i].r.n == alone[i].n && memcmp(out[i].r.tok, alone[i].tok, (size_t)alone[i].n * 4) == 0);
        CHECK(memcmp(out[i].r.logits_hash, alone[i].logits_hash, (size_t)alone[i].n * 8) == 0);
        CHECK(out[i].r.text.len == alone[i].text.len &&
              memcmp(out[i].r.text.data, alone[i].text.data, alone[i].text.len) == 0);
        CHECK(out[i].u.prompt_tokens == len[i] && out[i].u.completion_tokens == alone[i].n);
        CHECK(out[i].tokens_after_end == 0);
        sched_req_release(req[i]);
        buf_free(&out[i].r.text);
        buf_free(&alone[i].text);
    }
    CHECK(alone[3].finish == LLM_FINISH_STOP && alone[3].n < 12); /* the stop string mattered */
    sched_free(sc);
    llm_ctx_free(ctx);
    llm_engine_free(e);
}

int main(void) {
    RUN(test_batched_equals_solo);
    RUN(test_batched_equals_solo_x16);
    RUN(test_x16_equals_file);
    RUN(test_batched_equals_solo_x16_kquant);
    RUN(test_x16_equals_file_kquant);
    RUN(test_open_mem_refuses_garbage);
    RUN(test_stop_string);
    RUN(test_limits);
    RUN(test_prefix_reuse);
    RUN(test_bad_requests);
    RUN(test_sched_equals_solo);
    return test_summary();
}

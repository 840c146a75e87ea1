/* test_sample.c - the sampling chain. */
#include <math.h>

#include "common/buf.h"
#include "gguf/gguf_write.h"
#include "llm/sample.h"
#include "test.h"

static sampler *make(float temp, int top_k, float top_p, float min_p, uint64_t seed, int n) {
    sample_params p;
    sample_params_default(&p);
    p.temperature = temp;
    p.top_k = top_k;
    p.top_p = top_p;
    p.min_p = min_p;
    p.seed = seed;
    sampler *s = NULL;
    CHECK_OK(sampler_new(&p, n, &s));
    return s;
}

static void test_greedy(void) {
    float l[5] = {1, 3, NAN, 3, -INFINITY};
    sampler *s = make(0, 0, 1, 0, 1, 5);
    CHECK(sampler_sample(s, l) == 1); /* lowest id on ties, NaN ignored */
    sampler_free(s);
    s = make(0.8f, 1, 1, 0, 1, 5); /* top_k 1 is greedy too */
    for (int i = 0; i < 20; i++)
        CHECK(sampler_sample(s, l) == 1);
    sampler_free(s);
    float none[2] = {NAN, -INFINITY};
    s = make(1, 0, 1, 0, 1, 2);
    CHECK(sampler_sample(s, none) == 0);
    sampler_free(s);
}

static void test_seed_reproducible(void) {
    float l[64];
    for (int i = 0; i < 64; i++)
        l[i] = (float)(i % 7) * 0.1f;
    int32_t a[100], b[100], c[100];
    sampler *s1 = make(1, 0, 1, 0, 42, 64), *s2 = make(1, 0, 1, 0, 42, 64),
            *s3 = make(1, 0, 1, 0, 43, 64);
    int differ = 0;
    for (int i = 0; i < 100; i++) {
        a[i] = sampler_sample(s1, l);
        b[i] = sampler_sample(s2, l);
        c[i] = sampler_sample(s3, l);
        CHECK(a[i] == b[i]);
        differ += a[i] != c[i];
    }
    CHECK(differ > 50);
    sampler_reset(s1); /* reset reseeds */
    for (int i = 0; i < 100; i++)
        CHECK(sampler_sample(s1, l) == a[i]);
    sampler_free(s1);
    sampler_free(s2);
    sampler_free(s3);
}

static void draw(sampler *s, const float *l, int n, int draws, double *freq) {
    for (int i = 0; i < n; i++)
        freq[i] = 0;
    for (int i = 0; i < draws; i++)
        freq[sampler_sample(s, l)] += 1.0 / draws;
}

static void test_distribution_and_truncation(void) {
    float l[4] = {logf(0.5f), logf(0.3f), logf(0.2f), -INFINITY};
    double f[4];
    sampler *s = make(1, 0, 1, 0, 7, 4);
    draw(s, l, 4, 20000, f);
    CHECK(fabs(f[0] - 0.5) < 0.02 && fabs(f[1] - 0.3) < 0.02 && fabs(f[2] - 0.2) < 0.02);
    CHECK(f[3] == 0);
    sampler_free(s);

    s = make(1, 2, 1, 0, 7, 4); /* top-k 2: renormalised 5/8, 3/8 */
    draw(s, l, 4, 20000, f);
    CHECK(fabs(f[0] - 0.625) < 0.02 && f[2] == 0);
    sampler_free(s);

    s = make(1, 0, 0.6f, 0, 7, 4); /* top-p 0.6 keeps 0.5 + 0.3 */
    draw(s, l, 4, 5000, f);
    CHECK(f[0] > 0.5 && f[1] > 0.25 && f[2] == 0);
    sampler_free(s);

    s = make(1, 0, 0.5f, 0, 7, 4); /* top-p 0.5 keeps the first alone */
    draw(s, l, 4, 1000, f);
    CHECK(f[1] == 0 && f[2] == 0);
    sampler_free(s);

    s = make(1, 0, 1, 0.5f, 7, 4); /* min-p 0.5: >= 0.25 */
    draw(s, l, 4, 5000, f);
    CHECK(f[1] > 0.25 && f[2] == 0);
    sampler_free(s);

    s = make(0.1f, 0, 1, 0, 7, 4); /* low temperature sharpens */
    draw(s, l, 4, 2000, f);
    CHECK(f[0] > 0.98);
    sampler_free(s);
}

/* top-k and top-p on a large vocabulary: every draw is in the true set. */
static void test_large_vocab_truncation(void) {
    enum { V = 5000 };
    static float l[V];
    uint64_t x = 99;
    for (int i = 0; i < V; i++) {
        x = x * 6364136223846793005ull + 1;
        l[i] = (float)((x >> 40) % 1000) / 100.0f; /* many ties */
    }
    float kth = 0; /* the 50th largest value */
    {
        static float sorted[V];
        memcpy(sorted, l, sizeof(l));
        for (int i = 0; i < 50; i++)
            for (int j = i + 1; j < V; j++)
                if (sorted[j] > sorted[i]) {
                    float t = sorted[i];
                    sorted[i] = sorted[j], sorted[j] = t;
                }
        kth = sorted[49];
    }
    sampler *s = make(1, 50, 1, 0, 5, V);
    int outside = 0;
    for (int i = 0; i < 2000; i++)
        outside += l[sampler_sample(s, l)] < kth;
    CHECK(outside == 0);
    sampler_free(s);
    s = make(1, 0, 0.3f, 0, 5, V); /* top-p over the whole vocabulary */
    for (int i = 0; i < 200; i++)
        CHECK(l[sampler_sample(s, l)] > 5.0f); /* 30% of the mass sits at the top */
    sampler_free(s);
}

static void test_penalties(void) {
    sample_params p;
    sample_params_default(&p);
    p.temperature = 0;
    p.repeat_penalty = 2;
    p.repeat_last_n = 2;
    sampler *s = NULL;
    CHECK_OK(sampler_new(&p, 3, &s));
    float l[3] = {1.0f, 0.9f, 0.8f};
    sampler_accept(s, 0);
    CHECK(sampler_sample(s, l) == 1); /* 1 / 2 < 0.9 */
    sampler_accept(s, 1);
    CHECK(sampler_sample(s, l) == 2);
    sampler_accept(s, 2); /* window of 2: token 0 is out of it again */
    CHECK(sampler_sample(s, l) == 0);
    sampler_free(s);

    sample_params_default(&p);
    p.temperature = 0;
    p.frequency_penalty = 0.1f;
    CHECK_OK(sampler_new(&p, 3, &s));
    sampler_accept(s, 0);
    CHECK(sampler_sample(s, l) == 0); /* 0.9 vs 0.9: lowest id */
    sampler_accept(s, 0);
    CHECK(sampler_sample(s, l) == 1); /* 0.8 < 0.9 */
    sampler_free(s);

    sample_params_default(&p);
    p.temperature = 0;
    p.presence_penalty = 0.15f;
    CHECK_OK(sampler_new(&p, 3, &s));
    sampler_accept(s, 0);
    sampler_accept(s, 1);
    CHECK(sampler_sample(s, l) == 0); /* 0.85 > 0.8 > 0.75 */
    sampler_reset(s);
    sampler_accept(s, 0);
    CHECK(sampler_sample(s, l) == 1);
    sampler_free(s);
}

static void test_logprobs(void) {
    float l[5] = {0, 2, 1, 2, NAN};
    sample_logprob top[8];
    float lp = sample_logprobs(l, 5, 2, 3, top);
    double z = 1 + 2 * exp(2.0) + exp(1.0);
    CHECK(fabsf(lp - (float)(1 - log(z))) < 1e-5f);
    CHECK(top[0].token == 1 && top[1].token == 3 && top[2].token == 2);
    CHECK(fabsf(top[0].logprob - (float)(2 - log(z))) < 1e-5f);
    double sum = 0;
    sample_logprobs(l, 5, 0, 5, top);
    for (int i = 0; i < 5; i++)
        sum += exp(top[i].logprob);
    CHECK(fabs(sum - 1) < 1e-5);
    CHECK(top[4].token == 4 && top[4].logprob == -INFINITY);
}

static void test_params_rejected(void) {
    sample_params p;
    sample_params_default(&p);
    CHECK_OK(sample_params_check(&p));
    p.temperature = -1;
    CHECK_ST(sample_params_check(&p), CAI_ERR_INVALID_ARG);
    CHECK(strstr(cai_errmsg(CAI_ERR_INVALID_ARG), "temperature") != NULL);
    sample_params_default(&p);
    p.top_p = 0;
    CHECK_ST(sample_params_check(&p), CAI_ERR_INVALID_ARG);
    sample_params_default(&p);
    p.presence_penalty = 2.5f;
    CHECK_ST(sample_params_check(&p), CAI_ERR_INVALID_ARG);
    sample_params_default(&p);
    p.top_p = NAN;
    CHECK_ST(sample_params_check(&p), CAI_ERR_INVALID_ARG);
    sampler *s = NULL;
    sample_params_default(&p);
    CHECK_ST(sampler_new(&p, 0, &s), CAI_ERR_INVALID_ARG);
    CHECK(s == NULL);
}

/* A GGUF with only the metadata that |add| writes. */
static gguf_file *meta_gguf(buf *b, void (*add)(gguf_writer *w)) {
    gguf_writer *w = NULL;
    gguf_file *g = NULL;
    buf_init(b, 0);
    CHECK_OK(gguf_writer_new(&w));
    if (w)
        add(w);
    CHECK_OK(gguf_writer_to_buf(w, b));
    CHECK_OK(gguf_open_mem(b->data, b->len, &g));
    gguf_writer_free(w);
    return g;
}

static void add_qwen(gguf_writer *w) { /* Qwen-7B-Chat's generation_config.json */
    gguf_writer_f32(w, "cai.generation.top_p", 0.8f);
    gguf_writer_u32(w, "cai.generation.top_k", 0);
    gguf_writer_f32(w, "cai.generation.repetition_penalty", 1.1f);
}
static void add_greedy(gguf_writer *w) { gguf_writer_bool(w, "cai.generation.do_sample", 0); }
static void add_bad(gguf_writer *w) { gguf_writer_f32(w, "cai.generation.top_p", 1.5f); }
static void add_wrong_type(gguf_writer *w) { gguf_writer_str(w, "cai.generation.temperature", "hot"); }
static void add_none(gguf_writer *w) { gguf_writer_str(w, "general.name", "x"); }

/* The model's defaults (cai model import) apply where the caller chose nothing. */
static void test_model_defaults(void) {
    buf b;
    sample_params p, mine;
    unsigned set = 99;
    gguf_file *g = meta_gguf(&b, add_qwen);
    sample_params_default(&p);
    CHECK_OK(g ? sample_params_from_gguf(g, &p, &set) : CAI_ERR_INTERNAL);
    CHECK(set == (SAMPLE_SET_TOP_P | SAMPLE_SET_TOP_K | SAMPLE_SET_REPEAT | SAMPLE_SET_MIN_P));
    CHECK(p.top_p == 0.8f && p.top_k == 0 && p.repeat_penalty == 1.1f && p.min_p == 0 &&
          p.temperature == 0.8f);
    /* a request that gave top_p keeps it, and gets the rest */
    sample_params_default(&mine);
    mine.top_p = 0.5f;
    sample_params_merge(&mine, &p, set, SAMPLE_SET_TOP_P);
    CHECK(mine.top_p == 0.5f && mine.top_k == 0 && mine.repeat_penalty == 1.1f && mine.min_p == 0);
    gguf_close(g);
    buf_free(&b);

    g = meta_gguf(&b, add_greedy);
    CHECK_OK(g ? sample_params_from_gguf(g, &p, &set) : CAI_ERR_INTERNAL);
    CHECK(p.temperature == 0 && (set & SAMPLE_SET_TEMPERATURE));
    gguf_close(g);
    buf_free(&b);

    g = meta_gguf(&b, add_none);
    sample_params_default(&p);
    CHECK_OK(g ? sample_params_from_gguf(g, &p, &set) : CAI_ERR_INTERNAL);
    CHECK(set == 0 && p.top_k == 40 && p.min_p == 0.05f);
    gguf_close(g);
    buf_free(&b);

    void (*bad[2])(gguf_writer *) = {add_bad, add_wrong_type};
    for (int i = 0; i < 2; i++) {
        g = meta_gguf(&b, bad[i]);
        sample_params_default(&p);
        CHECK_ST(g ? sample_params_from_gguf(g, &p, &set) : CAI_ERR_INTERNAL, CAI_ERR_FORMAT);
        CHECK(p.top_p == 0.95f); /* untouched */
        gguf_close(g);
        buf_free(&b);
    }
}

int main(void) {
    RUN(test_greedy);
    RUN(test_seed_reproducible);
    RUN(test_distribution_and_truncation);
    RUN(test_large_vocab_truncation);
    RUN(test_penalties);
    RUN(test_logprobs);
    RUN(test_params_rejected);
    RUN(test_model_defaults);
    return test_summary();
}

/* test_model.c - the forward pass against an independent engine.
 *
 * ../shared/data/engine holds tiny random-weight models of each architecture
 * and, per prompt, that engine's ten highest logits at every position and its
 * greedy continuation. The prompt runs as one batch (logits at every
 * position), the continuation one token at a time, and a second sequence in
 * the same context runs interleaved with the first to check batching. */
#include <jansson.h>
#include <math.h>

#include "gguf/gguf.h"
#include "llm/model.h"
#include "test.h"

typedef struct {
    const char *name;
    float tol; /* on logits (~±10): quantized files there quantize activations to 8 bits too */
} model_case;

static const model_case cases[] = {
    {"qwen2-tiny-f16", 0.02f},  {"qwen2-tiny-q8_0", 0.25f}, {"qwen2-tiny-q4_0", 0.25f},
    {"qwen-tiny-q8_0", 0.25f},  {"qwen3-tiny-q8_0", 0.25f}, {"stories260K", 0.02f},
};

static float max_top10_err(const float *logits, json_t *top10) {
    float err = 0;
    size_t i;
    json_t *pair;
    json_array_foreach(top10, i, pair) {
        int id = (int)json_integer_value(json_array_get(pair, 0));
        float want = (float)json_number_value(json_array_get(pair, 1));
        err = fmaxf(err, fabsf(logits[id] - want));
    }
    return err;
}

static int argmax(const float *l, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (l[i] > l[b])
            b = i;
    return b;
}

/* The gap between the best two logits of the reference: greedy tokens are
 * only compared where it is clear. */
static float ref_gap(json_t *top10) {
    return (float)(json_number_value(json_array_get(json_array_get(top10, 0), 1)) -
                   json_number_value(json_array_get(json_array_get(top10, 1), 1)));
}

static void check_model(const char *dir, const model_case *mc) {
    char path[4096];
    snprintf(path, sizeof(path), "%s/engine/%s.gguf", dir, mc->name);
    gguf_file *g = NULL;
    llm_model *m = NULL;
    llm_ctx *c = NULL;
    CHECK_OK(gguf_open_path(path, &g));
    if (g)
        CHECK_OK(llm_model_load(g, &m));
    if (m)
        CHECK_OK(llm_ctx_new(m, 256, 2, 2, &c));
    snprintf(path, sizeof(path), "%s/engine/%s.expected.jsonl", dir, mc->name);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (!c || !f)
        goto out;
    const int V = llm_model_hparams(m)->n_vocab;
    char line[1 << 20];
    float worst = 0;
    int compared = 0, lines = 0;
    while (fgets(line, sizeof(line), f)) {
        json_error_t jerr;
        json_t *e = json_loads(line, 0, &jerr);
        CHECK(e != NULL);
        if (!e)
            break;
        json_t *toks = json_object_get(e, "prompt_tokens"), *steps = json_object_get(e, "steps");
        json_t *greedy = json_object_get(e, "greedy");
        int n = (int)json_array_size(toks);
        int32_t tok[512], seq[512];
        uint8_t want[512];
        CHECK(n > 0 && n < 256);
        for (int i = 0; i < n; i++) {
            tok[i] = (int32_t)json_integer_value(json_array_get(toks, i));
            seq[i] = 0;
            want[i] = 1;
        }
        llm_seq_truncate(c, 0, 0);
        llm_seq_truncate(c, 1, 0);
        const float *logits;
        llm_batch b = {n, tok, seq, want};
        CHECK_OK(llm_decode(c, &b, &logits));
        for (int i = 0; i < n; i++) {
            float err = max_top10_err(logits + (size_t)i * V,
                                      json_object_get(json_array_get(steps, i), "top10"));
            worst = fmaxf(worst, err);
            compared++;
        }
        /* Greedy continuation; sequence 1 replays the prompt token by token
         * in the same batches to check that batched decoding agrees. */
        int next = argmax(logits + (size_t)(n - 1) * V, V), diverged = 0;
        for (int i = 0; i < (int)json_array_size(greedy) && !diverged; i++) {
            json_t *step = json_array_get(steps, n + i);
            int ref = (int)json_integer_value(json_array_get(greedy, i));
            float gap = ref_gap(json_object_get(json_array_get(steps, n + i - 1), "top10"));
            if (next != ref) {
                CHECK(gap < 2 * mc->tol); /* only a near tie may differ */
                diverged = 1;
                break;
            }
            int32_t t2[2] = {next, tok[i < n ? i : n - 1]}, s2[2] = {0, 1};
            uint8_t w2[2] = {1, 1};
            llm_batch b2 = {i < n ? 2 : 1, t2, s2, w2};
            CHECK_OK(llm_decode(c, &b2, &logits));
            worst = fmaxf(worst, max_top10_err(logits, json_object_get(step, "top10")));
            compared++;
            if (i < n) { /* sequence 1 at position i sees what the prompt batch saw */
                float err = max_top10_err(logits + V, json_object_get(json_array_get(steps, i), "top10"));
                CHECK(err <= mc->tol);
            }
            next = argmax(logits, V);
        }
        json_decref(e);
        lines++;
    }
    CHECK(lines > 0 && compared > lines);
    if (worst > mc->tol)
        printf("  %s: logits differ by up to %g (tolerance %g)\n", mc->name, worst, mc->tol);
    CHECK(worst <= mc->tol);
out:
    if (f)
        fclose(f);
    llm_ctx_free(c);
    llm_model_free(m);
    gguf_close(g);
}

static void test_engine_agrees(void) {
    const char *dir = test_shared_data();
    if (dir == NULL) {
        SKIP("../shared/data absent");
        return;
    }
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int before = test_case_failed;
        check_model(dir, &cases[i]);
        if (test_case_failed && !before)
            printf("  in %s\n", cases[i].name);
    }
}

static void test_context_limit(void) {
    const char *dir = test_shared_data();
    if (dir == NULL) {
        SKIP("../shared/data absent");
        return;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/engine/qwen2-tiny-f16.gguf", dir);
    gguf_file *g = NULL;
    llm_model *m = NULL;
    llm_ctx *c = NULL;
    CHECK_OK(gguf_open_path(path, &g));
    if (g)
        CHECK_OK(llm_model_load(g, &m));
    if (m)
        CHECK_OK(llm_ctx_new(m, 8, 1, 1, &c));
    if (c) {
        int32_t tok[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, seq[9] = {0};
        const float *l;
        llm_batch b = {9, tok, seq, NULL};
        CHECK_ST(llm_decode(c, &b, &l), CAI_ERR_LIMIT);
        CHECK(strstr(cai_errmsg(CAI_ERR_LIMIT), "context is full") != NULL);
        CHECK(llm_seq_len(c, 0) == 0); /* nothing appended */
        b.n = 8;
        CHECK_OK(llm_decode(c, &b, &l));
        CHECK(llm_seq_len(c, 0) == 8);
        b.n = 1;
        CHECK_ST(llm_decode(c, &b, &l), CAI_ERR_LIMIT);
        tok[0] = 1 << 30;
        llm_seq_truncate(c, 0, 0);
        CHECK_ST(llm_decode(c, &b, &l), CAI_ERR_INVALID_ARG);
        seq[0] = 1;
        tok[0] = 1;
        CHECK_ST(llm_decode(c, &b, &l), CAI_ERR_INVALID_ARG);
    }
    llm_ctx_free(c);
    llm_model_free(m);
    gguf_close(g);
}

int main(void) {
    RUN(test_engine_agrees);
    RUN(test_context_limit);
    return test_summary();
}

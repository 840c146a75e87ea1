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
#include "expected.h"

typedef struct {
    const char *name;
    float tol; /* on logits (~±10): quantized files there quantize activations to 8 bits too */
} model_case;

static const model_case cases[] = {
    {"qwen2-tiny-f16", 0.02f},  {"qwen2-tiny-q8_0", 0.25f}, {"qwen2-tiny-q4_0", 0.25f},
    {"qwen-tiny-q8_0", 0.25f},  {"qwen3-tiny-q8_0", 0.25f}, {"stories260K", 0.02f},
};

static void check_model(const char *dir, const model_case *mc) {
    char gguf[4096], expected[4096];
    snprintf(gguf, sizeof(gguf), "%s/engine/%s.gguf", dir, mc->name);
    snprintf(expected, sizeof(expected), "%s/engine/%s.expected.jsonl", dir, mc->name);
    expected_check(gguf, expected, mc->name, mc->tol);
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

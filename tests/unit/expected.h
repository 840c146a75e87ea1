/* expected.h - checking a model against ../shared/data/engine/NAME.expected.jsonl
 * (another engine's top-10 logits at every position of each prompt and its
 * greedy continuation), shared by test_model.c and test_hf.c.
 *
 * expected_check loads |gguf_path|, runs every prompt of |expected_path| as
 * one batch, then the greedy continuation one token at a time while a second
 * sequence replays the prompt in the same batches, and checks every listed
 * logit within |tol| and every greedy token where the reference's top-2 gap
 * is clear. Include after test.h. */
#ifndef CAI_TEST_EXPECTED_H
#define CAI_TEST_EXPECTED_H

#include <jansson.h>
#include <math.h>

#include "gguf/gguf.h"
#include "llm/model.h"

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

static void expected_check(const char *gguf_path, const char *expected_path, const char *name,
                           float tol) {
    gguf_file *g = NULL;
    llm_model *m = NULL;
    llm_ctx *c = NULL;
    CHECK_OK(gguf_open_path(gguf_path, &g));
    if (g)
        CHECK_OK(llm_model_load(g, &m));
    if (m)
        CHECK_OK(llm_ctx_new(m, 256, 2, 2, &c));
    FILE *f = fopen(expected_path, "r");
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
                CHECK(gap < 2 * tol); /* only a near tie may differ */
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
                CHECK(err <= tol);
            }
            next = argmax(logits, V);
        }
        json_decref(e);
        lines++;
    }
    CHECK(lines > 0 && compared > lines);
    if (worst > tol)
        printf("  %s: logits differ by up to %g (tolerance %g)\n", name, worst, tol);
    CHECK(worst <= tol);
out:
    if (f)
        fclose(f);
    llm_ctx_free(c);
    llm_model_free(m);
    gguf_close(g);
}

#endif

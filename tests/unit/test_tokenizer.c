/* test_tokenizer.c - the Qwen2 BPE and SentencePiece tokenizers. */
#include <jansson.h>

#include "gguf/gguf.h"
#include "llm/tokenizer.h"
#include "test.h"
#include "vocab_cases.h"

static tokenizer *load(const char *dir, const char *model, gguf_file **g) {
    char path[4096];
    snprintf(path, sizeof(path), "%s/engine/%s.gguf", dir, model);
    tokenizer *t = NULL;
    CHECK_OK(gguf_open_path(path, g));
    if (*g)
        CHECK_OK(tokenizer_from_gguf(*g, &t));
    return t;
}

static void decode_all(const tokenizer *t, const int32_t *ids, size_t n, buf *out) {
    detok d;
    detok_init(&d);
    out->len = 0;
    for (size_t i = 0; i < n; i++)
        CHECK_OK(detok_push(&d, t, ids[i], out));
    CHECK_OK(detok_flush(&d, out));
    buf_terminate(out);
}

typedef struct {
    const tokenizer *t;
    buf dec;
    int cases, bad;
} vocab_run;

static void vocab_case(void *arg, const char *text, size_t len, const char *want) {
    vocab_run *r = arg;
    int32_t *ids = NULL;
    size_t n = 0, cap = 0;
    CHECK_OK(tokenizer_encode(r->t, text, len, 0, &ids, &n, &cap));
    char got[8192] = "";
    size_t o = 0;
    for (size_t i = 0; i < n && o < sizeof(got) - 16; i++)
        o += (size_t)snprintf(got + o, sizeof(got) - o, i ? " %d" : "%d", ids[i]);
    if (strcmp(got, want) != 0 && r->bad++ < 5)
        printf("  case %d %.40s: got [%s] want [%s]\n", r->cases, text, got, want);
    decode_all(r->t, ids, n, &r->dec);
    if ((r->dec.len != len || memcmp(r->dec.data, text, len) != 0) && r->bad++ < 5)
        printf("  case %d does not decode back\n", r->cases);
    free(ids);
    r->cases++;
}

/* llama.cpp's tokenizer test cases for the Qwen2 vocabulary. */
static void test_qwen2_vocab_cases(void) {
    const char *dir = test_shared_data();
    if (!dir) {
        SKIP("../shared/data absent");
        return;
    }
    gguf_file *g = NULL;
    tokenizer *t = load(dir, "qwen2-tiny-f16", &g);
    CHECK(t != NULL);
    if (t) {
        vocab_run r = {t, {0}, 0, 0};
        buf_init(&r.dec, 0);
        int cases = vocab_cases_each(dir, vocab_case, &r);
        buf_free(&r.dec);
        CHECK(cases >= 40 && cases == r.cases && r.bad == 0);
    }
    tokenizer_free(t);
    gguf_close(g);
}

/* The engine test data's prompt tokens (chat prompts with special tokens). */
static void test_engine_prompts(void) {
    const char *dir = test_shared_data();
    if (!dir) {
        SKIP("../shared/data absent");
        return;
    }
    const char *models[] = {"qwen2-tiny-f16", "qwen3-tiny-q8_0", "stories260K"};
    for (size_t m = 0; m < 3; m++) {
        gguf_file *g = NULL;
        tokenizer *t = load(dir, models[m], &g);
        char path[4096];
        snprintf(path, sizeof(path), "%s/engine/%s.expected.jsonl", dir, models[m]);
        FILE *f = fopen(path, "r");
        static char line[1 << 20];
        while (t && f && fgets(line, sizeof(line), f)) {
            json_t *e = json_loads(line, 0, NULL);
            const char *prompt = json_string_value(json_object_get(e, "prompt"));
            json_t *want = json_object_get(e, "prompt_tokens");
            int32_t *ids = NULL;
            size_t n = 0, cap = 0;
            if (json_is_true(json_object_get(e, "add_bos"))) {
                CHECK(tokenizer_add_bos(t));
                ids = malloc(64 * sizeof(int32_t));
                ids[n++] = tokenizer_bos(t);
                cap = 64;
            }
            CHECK_OK(tokenizer_encode(t, prompt, strlen(prompt), 1, &ids, &n, &cap));
            int same = n == json_array_size(want);
            for (size_t i = 0; same && i < n; i++)
                same = ids[i] == json_integer_value(json_array_get(want, i));
            if (!same)
                printf("  %s: prompt '%.30s' tokenizes differently (%zu tokens, want %zu)\n",
                       models[m], prompt, n, json_array_size(want));
            CHECK(same);
            free(ids);
            json_decref(e);
        }
        if (f)
            fclose(f);
        tokenizer_free(t);
        gguf_close(g);
    }
}

static void test_special_and_streaming(void) {
    const char *dir = test_shared_data();
    if (!dir) {
        SKIP("../shared/data absent");
        return;
    }
    gguf_file *g = NULL;
    tokenizer *t = load(dir, "qwen2-tiny-f16", &g);
    if (!t)
        return;
    const char *s = "<|im_start|>user\nhi<|im_end|>";
    int32_t *ids = NULL;
    size_t n = 0, cap = 0;
    CHECK_OK(tokenizer_encode(t, s, strlen(s), 1, &ids, &n, &cap));
    CHECK(n >= 4 && ids[0] == tokenizer_find(t, "<|im_start|>") && ids[n - 1] == tokenizer_find(t, "<|im_end|>"));
    CHECK(tokenizer_is_control(t, ids[0]));
    n = 0;
    CHECK_OK(tokenizer_encode(t, s, strlen(s), 0, &ids, &n, &cap)); /* user text: no specials */
    for (size_t i = 0; i < n; i++)
        CHECK(!tokenizer_is_control(t, ids[i]));
    buf d;
    buf_init(&d, 0);
    decode_all(t, ids, n, &d);
    CHECK(strcmp((char *)d.data, s) == 0);
    /* Multi-byte characters split across tokens are never emitted in halves. */
    const char *u = "na\xc3\xafve caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\xa6\x99\xf0\x9f\xa6\x99 \xcc\x81" "e";
    n = 0;
    CHECK_OK(tokenizer_encode(t, u, strlen(u), 0, &ids, &n, &cap));
    detok dt;
    detok_init(&dt);
    d.len = 0;
    for (size_t i = 0; i < n; i++) {
        size_t before = d.len;
        CHECK_OK(detok_push(&dt, t, ids[i], &d));
        uint32_t cp = 0;
        (void)cp;
        if (d.len > before) /* whatever came out ends on a character boundary */
            CHECK((d.data[d.len - 1] & 0xC0) != 0xC0 && ((d.data[d.len - 1] & 0x80) == 0 ||
                  (d.data[d.len - 1] & 0xC0) == 0x80));
    }
    CHECK_OK(detok_flush(&dt, &d));
    buf_terminate(&d);
    CHECK(strcmp((char *)d.data, u) == 0);
    /* Invalid UTF-8 in: encodes (byte-level), decodes with U+FFFD. */
    const char bad[] = "a\xff" "b\xe2\x82";
    n = 0;
    CHECK_OK(tokenizer_encode(t, bad, sizeof(bad) - 1, 0, &ids, &n, &cap));
    decode_all(t, ids, n, &d);
    CHECK(strcmp((char *)d.data, "a\xef\xbf\xbd" "b\xef\xbf\xbd") == 0);
    /* A long run of one letter stays fast and exact. */
    size_t big = 200000;
    char *run = malloc(big);
    memset(run, 'a', big);
    n = 0;
    CHECK_OK(tokenizer_encode(t, run, big, 0, &ids, &n, &cap));
    decode_all(t, ids, n, &d);
    CHECK(d.len == big && n < big / 2);
    free(run);
    buf_free(&d);
    free(ids);
    tokenizer_free(t);
    gguf_close(g);
}

/* Without the shared data: a tiny hand-made BPE vocabulary. */
static void test_synthetic_bpe(void) {
    const char *texts[260];
    size_t lens[260];
    char storage[256][4];
    tokenizer_spec sp = {.model = TOKENIZER_BPE, .bos = -1, .eos = -1, .eot = -1};
    /* the 256 byte tokens in GPT-2's mapping, then merges */
    int next = 256, k = 0;
    for (int b = 0; b < 256; b++) {
        int pr = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        unsigned cp = pr ? (unsigned)b : (unsigned)next++;
        int n = cp < 0x80 ? (storage[k][0] = (char)cp, 1)
                          : (storage[k][0] = (char)(0xC0 | (cp >> 6)), storage[k][1] = (char)(0x80 | (cp & 0x3F)), 2);
        texts[k] = storage[k];
        lens[k++] = (size_t)n;
    }
    texts[k] = "he", lens[k++] = 2;
    texts[k] = "hel", lens[k++] = 3;
    texts[k] = "\xc4\xa0he", lens[k++] = 4; /* "Ġhe" */
    texts[k] = "<|end|>", lens[k++] = 7;
    int32_t types[260];
    for (int i = 0; i < 260; i++)
        types[i] = i == 259 ? TOKEN_CONTROL : TOKEN_NORMAL;
    const char *merges[] = {"h e", "he l", "\xc4\xa0 he"};
    size_t mlen[] = {3, 4, 5};
    sp.n_tokens = 260, sp.text = texts, sp.len = lens, sp.type = types;
    sp.n_merges = 3, sp.merge = merges, sp.merge_len = mlen;
    tokenizer *t = NULL;
    CHECK_OK(tokenizer_new(&sp, &t));
    if (!t)
        return;
    int32_t *ids = NULL;
    size_t n = 0, cap = 0;
    CHECK_OK(tokenizer_encode(t, "hello he<|end|>", 15, 1, &ids, &n, &cap));
    /* "hello" -> hel l o ; " he" -> Ġhe ; <|end|> */
    CHECK(n == 5 && ids[0] == 257 && ids[1] == 'l' && ids[2] == 'o' && ids[3] == 258 && ids[4] == 259);
    free(ids);
    tokenizer_free(t);
    tokenizer_spec bad = sp;
    bad.model = 7;
    CHECK_ST(tokenizer_new(&bad, &t), CAI_ERR_INVALID_ARG);
}

int main(void) {
    RUN(test_qwen2_vocab_cases);
    RUN(test_engine_prompts);
    RUN(test_special_and_streaming);
    RUN(test_synthetic_bpe);
    return test_summary();
}

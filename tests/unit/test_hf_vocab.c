/* test_hf_vocab.c - Hugging Face tokenizers (qwen.tiktoken, tokenizer.json)
 * against the GGUF oracle of ../shared/data, and a rejection test per rule
 * on small hand-made folders. */
#include <jansson.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "common/codec.h"
#include "gguf/gguf.h"
#include "gguf/gguf_write.h"
#include "hf/vocab.h"
#include "llm/tokenizer.h"
#include "test.h"
#include "vocab_cases.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- against the GGUF oracle ------------------------------------------------ */

typedef struct {
    gguf_file *g;
    tokenizer *gt; /* the GGUF's tokenizer */
    hf_vocab *v;
    tokenizer *ht; /* the folder's */
} pair;

static void pair_free(pair *p) {
    tokenizer_free(p->gt), tokenizer_free(p->ht);
    hf_vocab_free(p->v);
    gguf_close(p->g);
}

static int pair_load(const char *data, const char *folder, const char *model, pair *p) {
    char path[4096];
    memset(p, 0, sizeof(*p));
    snprintf(path, sizeof(path), "%s/engine/%s.gguf", data, model);
    CHECK_OK(gguf_open_path(path, &p->g));
    if (p->g)
        CHECK_OK(tokenizer_from_gguf(p->g, &p->gt));
    snprintf(path, sizeof(path), "%s/hf/%s", data, folder);
    double t0 = now();
    CHECK_OK(hf_vocab_load(path, 151936, &p->v));
    printf("  %s: %s loaded in %.3f s\n", folder, p->v ? hf_vocab_source(p->v) : "nothing", now() - t0);
    if (p->v) {
        tokenizer_spec sp;
        hf_vocab_spec(p->v, &sp);
        CHECK_OK(tokenizer_new(&sp, &p->ht));
    }
    return p->gt && p->ht;
}

/* encode_ids writes the ids of |text| as "a b c". */
static void encode_ids(const tokenizer *t, const char *text, size_t n, int special, char *out, size_t cap) {
    int32_t *ids = NULL;
    size_t k = 0, c = 0, o = 0;
    out[0] = '\0';
    CHECK_OK(tokenizer_encode(t, text, n, special, &ids, &k, &c));
    for (size_t i = 0; i < k && o + 16 < cap; i++)
        o += (size_t)snprintf(out + o, cap - o, i ? " %d" : "%d", ids[i]);
    free(ids);
}

typedef struct {
    const pair *p;
    int cases, bad;
} vocab_run;

static void vocab_case(void *arg, const char *text, size_t len, const char *want) {
    vocab_run *r = arg;
    char got[8192], oracle[8192];
    encode_ids(r->p->ht, text, len, 0, got, sizeof(got));
    encode_ids(r->p->gt, text, len, 0, oracle, sizeof(oracle));
    if ((strcmp(got, oracle) != 0 || strcmp(got, want) != 0) && r->bad++ < 5)
        printf("  case %d %.40s: got [%s] gguf [%s] want [%s]\n", r->cases, text, got, oracle, want);
    r->cases++;
}

/* All of ../shared/data/tokenizer/qwen2-vocab cases: the folder's tokenizer
 * gives the ids of the GGUF's and of the .out file. */
static void check_vocab_cases(const char *data, const pair *p) {
    vocab_run r = {p, 0, 0};
    int cases = vocab_cases_each(data, vocab_case, &r);
    CHECK(cases >= 40 && cases == r.cases && r.bad == 0);
}

/* The engine test data's prompts (ChatML turns, special tokens parsed). */
static void check_engine_prompts(const char *data, const char *model, const pair *p) {
    char path[4096];
    snprintf(path, sizeof(path), "%s/engine/%s.expected.jsonl", data, model);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    char *l = NULL;
    size_t cap = 0;
    int cases = 0;
    while (f && getline(&l, &cap, f) > 0) {
        json_t *j = json_loads(l, 0, NULL);
        const char *prompt = json_string_value(json_object_get(j, "prompt"));
        const json_t *want = json_object_get(j, "prompt_tokens");
        CHECK(prompt && json_is_array(want));
        if (prompt && json_is_array(want)) {
            int32_t *ids = NULL;
            size_t k = 0, c = 0;
            CHECK_OK(tokenizer_encode(p->ht, prompt, strlen(prompt), 1, &ids, &k, &c));
            int same = k == json_array_size(want);
            for (size_t i = 0; same && i < k; i++)
                same = ids[i] == json_integer_value(json_array_get(want, i));
            if (!same)
                printf("  prompt %d (%.30s) differs\n", cases, prompt);
            CHECK(same);
            free(ids);
            cases++;
        }
        json_decref(j);
    }
    free(l);
    if (f)
        fclose(f);
    CHECK(cases >= 3);
}

/* tokens [0, n_cmp) and every merge equal the GGUF's arrays; *n_type_diff
 * counts the ids whose type differs (listed). */
static void check_arrays(const pair *p, size_t n_cmp, int *n_type_diff) {
    gguf_arr toks, types, merges;
    CHECK_OK(gguf_get_arr(p->g, "tokenizer.ggml.tokens", &toks));
    CHECK_OK(gguf_get_arr(p->g, "tokenizer.ggml.token_type", &types));
    CHECK_OK(gguf_get_arr(p->g, "tokenizer.ggml.merges", &merges));
    tokenizer_spec sp;
    hf_vocab_spec(p->v, &sp);
    CHECK(sp.n_tokens == toks.n && sp.n_merges == merges.n);
    if (sp.n_tokens != toks.n || sp.n_merges != merges.n)
        return;
    int bad = 0;
    *n_type_diff = 0;
    for (size_t i = 0; i < n_cmp; i++) {
        if (sp.len[i] != toks.strs[i].len || memcmp(sp.text[i], toks.strs[i].ptr, sp.len[i]) != 0) {
            if (bad++ < 5)
                printf("  token %zu: \"%.*s\", gguf \"%.*s\"\n", i, (int)sp.len[i], sp.text[i],
                       (int)toks.strs[i].len, toks.strs[i].ptr);
        }
        if (sp.type[i] != gguf_arr_i64(&types, i)) {
            printf("  token %zu \"%.*s\": type %d, gguf %d\n", i, (int)sp.len[i], sp.text[i], sp.type[i],
                   (int)gguf_arr_i64(&types, i));
            ++*n_type_diff;
        }
    }
    for (size_t i = 0; i < merges.n; i++) {
        if (sp.merge_len[i] != merges.strs[i].len || memcmp(sp.merge[i], merges.strs[i].ptr, sp.merge_len[i]) != 0) {
            if (bad++ < 5)
                printf("  merge %zu: \"%.*s\", gguf \"%.*s\"\n", i, (int)sp.merge_len[i], sp.merge[i],
                       (int)merges.strs[i].len, merges.strs[i].ptr);
        }
    }
    CHECK(bad == 0);
}

static void check_ids(const pair *p) {
    uint64_t bos = 0, eos = 0, pad = 0;
    int add_bos = -1;
    CHECK_OK(gguf_get_uint(p->g, "tokenizer.ggml.bos_token_id", &bos));
    CHECK_OK(gguf_get_uint(p->g, "tokenizer.ggml.eos_token_id", &eos));
    CHECK_OK(gguf_get_uint(p->g, "tokenizer.ggml.padding_token_id", &pad));
    CHECK_OK(gguf_get_bool(p->g, "tokenizer.ggml.add_bos_token", &add_bos));
    CHECK(hf_vocab_bos(p->v) == (int32_t)bos);
    CHECK(hf_vocab_eos(p->v) == (int32_t)eos);
    CHECK(hf_vocab_pad(p->v) == (int32_t)pad);
    tokenizer_spec sp;
    hf_vocab_spec(p->v, &sp);
    CHECK(sp.add_bos == add_bos);
}

/* Qwen2.5's layout: every id, text and merge equals qwen2-tiny-f16.gguf. */
static void test_tokjson_folder(void) {
    const char *data = test_shared_data();
    if (!data) {
        SKIP("../shared/data absent");
        return;
    }
    pair p;
    if (pair_load(data, "qwen2.5-tiny", "qwen2-tiny-f16", &p)) {
        CHECK(strcmp(hf_vocab_source(p.v), "tokenizer.json") == 0);
        int type_diff = -1;
        check_arrays(&p, 151936, &type_diff);
        /* The oracle marks all 26 added tokens control; tokenizer.json says
         * "special": false for 12 of them, and llama.cpp's converter (whose
         * rule cai follows) still makes the 6 of <|...|> shape control. The
         * other 6 (<tool_call>, </tool_call>, <tool_response>,
         * </tool_response>, <think>, </think>) are user-defined here. */
        CHECK(type_diff == 6);
        static const char *const user[6] = {"<tool_call>", "</tool_call>", "<tool_response>",
                                             "</tool_response>", "<think>", "</think>"};
        for (int i = 0; i < 6; i++) {
            int32_t id = tokenizer_find(p.ht, user[i]);
            CHECK(id >= 151657 && id <= 151668 && !tokenizer_is_control(p.ht, id) &&
                  tokenizer_is_control(p.gt, id));
        }
        check_ids(&p);
        check_vocab_cases(data, &p);
        check_engine_prompts(data, "qwen2-tiny-f16", &p);
        CHECK(hf_vocab_chat_template(p.v) && strstr(hf_vocab_chat_template(p.v), "<|im_start|>"));
    }
    pair_free(&p);
}

/* Qwen-7B-Chat's layout: the regular tokens, the three ChatML tokens and the
 * merges derived from the ranks equal qwen-tiny-q8_0.gguf's. */
static void test_tiktoken_folder(void) {
    const char *data = test_shared_data();
    if (!data) {
        SKIP("../shared/data absent");
        return;
    }
    pair p;
    if (pair_load(data, "qwen-7b-chat-tiny", "qwen-tiny-q8_0", &p)) {
        CHECK(strcmp(hf_vocab_source(p.v), "qwen.tiktoken") == 0);
        int type_diff = -1;
        check_arrays(&p, 151646, &type_diff);
        CHECK(type_diff == 0);
        check_ids(&p);
        check_vocab_cases(data, &p);
        check_engine_prompts(data, "qwen-tiny-q8_0", &p);
        /* Qwen's own specials after the ChatML three, then padding */
        CHECK(tokenizer_find(p.ht, "<|extra_0|>") == 151646);
        CHECK(tokenizer_find(p.ht, "<|extra_204|>") == 151850);
        CHECK(tokenizer_is_control(p.ht, 151850));
        CHECK(tokenizer_find(p.ht, "[PAD151851]") == 151851);
        CHECK(tokenizer_find(p.ht, "[PAD151935]") == 151935);
        const char *tmpl = hf_vocab_chat_template(p.v), *want = NULL;
        CHECK_OK(gguf_get_str(p.g, "tokenizer.chat_template", &want));
        CHECK(tmpl && want && strcmp(tmpl, want) == 0);
    }
    pair_free(&p);
}

/* Both folders give the same ids as each other and as the GGUF's tokenizer
 * on a multilingual corpus (tests/e2e/tokenizer_oracle.mjs's) and on 2,000
 * fixed-seed random strings mixing what the Qwen2 split tells apart. The
 * tiktoken vocabulary is the tokenizer.json one without its added tokens. */
static void test_folders_agree(void) {
    const char *data = test_shared_data();
    if (!data) {
        SKIP("../shared/data absent");
        return;
    }
    char a[4096], b[4096], g[4096];
    snprintf(a, sizeof(a), "%s/hf/qwen-7b-chat-tiny", data);
    snprintf(b, sizeof(b), "%s/hf/qwen2.5-tiny", data);
    snprintf(g, sizeof(g), "%s/engine/qwen2-tiny-f16.gguf", data);
    hf_vocab *va = NULL, *vb = NULL;
    tokenizer *ta = NULL, *tb = NULL, *tg = NULL;
    gguf_file *gf = NULL;
    tokenizer_spec sp;
    CHECK_OK(hf_vocab_load(a, 0, &va));
    CHECK_OK(hf_vocab_load(b, 0, &vb));
    CHECK_OK(gguf_open_path(g, &gf));
    if (gf)
        CHECK_OK(tokenizer_from_gguf(gf, &tg));
    if (va && vb) {
        CHECK(hf_vocab_n_tokens(va) == 151851 && hf_vocab_n_tokens(vb) == 151669);
        hf_vocab_spec(va, &sp);
        CHECK_OK(tokenizer_new(&sp, &ta));
        hf_vocab_spec(vb, &sp);
        CHECK_OK(tokenizer_new(&sp, &tb));
    }
    static const char *const corpus[] = {
        "Hello, world! The quick brown fox jumps over the lazy dog.",
        "I'm sure you'll see we've done it; don't, won't, it's, THEY'RE, She'D",
        "机密计算让云服务商看不到模型权重和对话内容。通义千问是阿里巴巴的大模型。",
        "東京タワーは高い。ひらがなとカタカナ。안녕하세요, 세계! 한국어 문장입니다.",
        "I ❤️ 🦀 and 👨‍👩‍👧‍👦 and 🇨🇳🇺🇸 and 🙂🙃 and ✅",
        "int main(void) {\n\tfor (int i = 0; i < 10; i++)\n\t\tprintf(\"%d\\n\", i);\n\treturn 0;\n}\n",
        "def f(x):\n    if x > 0:\n        return x ** 2  # square\n    return {'a': [1, 2, 3]}\n",
        "a  b   c    d\n\n\ne\t\tf \t g\r\nh   \n   \n    end   ",
        "1 12 123 1234 12345 1234567890 3.14159 -42 1,000,000 2026-12-03 0x1F 1e-9",
        "Crème brûlée, naïve façade; Привет мир; مرحبا بالعالم; שלום; γειά σου κόσμε",
        "Qwen2.5-7B-Instruct 在 Intel TDX 里运行：decode ≥ 8.8 tok/s，prefill ≈ 28 tok/s！",
        "...!!!?\?\?---___***~~~```'''\"\"\"<<<>>>((()))[[[]]]{{{}}}///\\\\\\",
        "Pneumonoultramicroscopicsilicovolcanoconiosis supercalifragilisticexpialidocious",
        "https://example.com/a?b=1&c=%20 {\"key\": [true, null, 1.5e3], \"k2\": \"v\"}",
        "   leading and trailing spaces   \r\n\xff\xfe invalid bytes \xc3",
    };
    static const char *const pool[] = {
        "a", "b", "c", "X", "Y", "Z", "0", "1", "9", " ", "\t", "\n", "\r", "'", "s", "d", "m", "l", "t", "v",
        "e", ".", ",", ";", ":", "!", "?", "-", "_", "(", ")", "[", "]", "{", "}", "\"", "/", "\\", "@", "#",
        "$", "%", "^", "&", "*", "中文字", "日本", "한", "🙂", "👍🏽", "é", "ß", "Ω", "١٢٣", "  ", "\n\n",
        "'s", "'ll", "123456", "\xe2\x80\xaf", "\xc2\xa0", "\xff",
    };
    const size_t n_corpus = sizeof(corpus) / sizeof(corpus[0]), n_pool = sizeof(pool) / sizeof(pool[0]);
    uint32_t seed = 12345;
    int bad = 0;
    size_t cases = 0;
    for (size_t i = 0; ta && tb && tg && i < n_corpus + 2000; i++, cases++) {
        char text[2048];
        if (i < n_corpus) {
            snprintf(text, sizeof(text), "%s", corpus[i]);
        } else {
            size_t o = 0;
            seed = seed * 1103515245u + 12345u;
            int len = 1 + (int)((seed >> 8) % 40);
            for (int j = 0; j < len; j++) {
                seed = seed * 1103515245u + 12345u;
                o += (size_t)snprintf(text + o, sizeof(text) - o, "%s", pool[(seed >> 8) % n_pool]);
            }
        }
        char ia[8192], ib[8192], ig[8192];
        encode_ids(ta, text, strlen(text), 0, ia, sizeof(ia));
        encode_ids(tb, text, strlen(text), 0, ib, sizeof(ib));
        encode_ids(tg, text, strlen(text), 0, ig, sizeof(ig));
        if (strcmp(ia, ig) != 0 || strcmp(ib, ig) != 0) {
            if (bad++ < 5)
                printf("  text %zu \"%.40s\": tiktoken [%s] tokenizer.json [%s] gguf [%s]\n", i, text, ia, ib, ig);
        }
    }
    CHECK(bad == 0 && cases == n_corpus + 2000);
    tokenizer_free(ta), tokenizer_free(tb), tokenizer_free(tg);
    gguf_close(gf);
    hf_vocab_free(va), hf_vocab_free(vb);
}

/* ---- small hand-made folders --------------------------------------------------- */

static char tmpdir[64];

static void put(const char *name, const void *data, size_t n) {
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f) {
        CHECK(n == 0 || fwrite(data, 1, n, f) == n);
        fclose(f);
    }
}

static void put_str(const char *name, const char *s) { put(name, s, strlen(s)); }

static void clean(void) {
    static const char *const names[] = {"qwen.tiktoken", "tokenizer.json", "tokenizer_config.json", "config.json",
                                        "generation_config.json", "chat_template.jinja"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char path[256];
        snprintf(path, sizeof(path), "%s/%s", tmpdir, names[i]);
        unlink(path);
    }
}

/* tiktoken_base appends the 256 single bytes (rank = byte), then "ab" 256,
 * "abab" 257, "abc" 258, " a" 259. */
static void tiktoken_base(buf *b) {
    buf_init(b, 0);
    char enc[64];
    for (int i = 0; i < 256; i++) {
        uint8_t byte = (uint8_t)i;
        b64_encode(enc, &byte, 1, B64_STD);
        buf_printf(b, "%s %d\n", enc, i);
    }
    static const char *const more[] = {"ab", "abab", "abc", " a"};
    for (int i = 0; i < 4; i++) {
        b64_encode(enc, more[i], strlen(more[i]), B64_STD);
        buf_printf(b, "%s %d\n", enc, 256 + i);
    }
}

static cai_status load_tiktoken(const buf *b, size_t n_vocab, hf_vocab **v) {
    clean();
    put("qwen.tiktoken", b->data, b->len);
    return hf_vocab_load(tmpdir, n_vocab, v);
}

static int has(cai_status st, const char *what) {
    const char *m = cai_errmsg(st);
    if (strstr(m, what) == NULL) {
        printf("  message \"%s\" lacks \"%s\"\n", m, what);
        return 0;
    }
    return 1;
}

static void test_tiktoken_small(void) {
    buf b;
    tiktoken_base(&b);
    hf_vocab *v = NULL;
    CHECK_OK(load_tiktoken(&b, 600, &v));
    if (v) {
        tokenizer_spec sp;
        hf_vocab_spec(v, &sp);
        CHECK(sp.n_tokens == 600 && sp.n_merges == 4);
        CHECK(sp.len[32] == 2 && memcmp(sp.text[32], "\xc4\xa0", 2) == 0); /* ' ' is "Ġ" */
        static const char *const want[4] = {"a b", "ab ab", "ab c", "\xc4\xa0 a"};
        for (int i = 0; i < 4 && sp.n_merges == 4; i++)
            CHECK(sp.merge_len[i] == strlen(want[i]) && memcmp(sp.merge[i], want[i], sp.merge_len[i]) == 0);
        CHECK(sp.len[260] == 13 && memcmp(sp.text[260], "<|endoftext|>", 13) == 0 && sp.type[260] == TOKEN_CONTROL);
        CHECK(sp.len[262] == 10 && memcmp(sp.text[262], "<|im_end|>", 10) == 0);
        CHECK(sp.len[467] == 13 && memcmp(sp.text[467], "<|extra_204|>", 13) == 0);
        CHECK(sp.len[468] == 8 && memcmp(sp.text[468], "[PAD468]", 8) == 0 && sp.type[468] == TOKEN_UNUSED);
        CHECK(hf_vocab_bos(v) == 260 && hf_vocab_eos(v) == 260 && hf_vocab_pad(v) == 260);
        CHECK(hf_vocab_chat_template(v) == NULL);
        /* through GGUF and back: the engine's tokenizer encodes as BPE should */
        gguf_writer *w = NULL;
        buf g;
        buf_init(&g, 0);
        gguf_file *gf = NULL;
        tokenizer *t = NULL;
        CHECK_OK(gguf_writer_new(&w));
        CHECK_OK(hf_vocab_write_gguf(v, w));
        CHECK_OK(gguf_writer_to_buf(w, &g));
        CHECK_OK(gguf_open_mem(g.data, g.len, &gf));
        if (gf)
            CHECK_OK(tokenizer_from_gguf(gf, &t));
        if (t) {
            char ids[256];
            encode_ids(t, "ababc a", 7, 0, ids, sizeof(ids));
            CHECK(strcmp(ids, "257 99 259") == 0);
            encode_ids(t, "abab<|im_end|>", 14, 1, ids, sizeof(ids));
            CHECK(strcmp(ids, "257 262") == 0);
        }
        tokenizer_free(t);
        gguf_close(gf);
        buf_free(&g);
        gguf_writer_free(w);
    }
    hf_vocab_free(v);
    /* Qwen-7B-Chat's configs: eos <|im_end|>, the ChatML template */
    put_str("generation_config.json", "{\"chat_format\": \"chatml\", \"eos_token_id\": 260, \"pad_token_id\": 260}");
    CHECK_OK(hf_vocab_load(tmpdir, 0, &v));
    if (v) {
        CHECK(hf_vocab_eos(v) == 262 && hf_vocab_bos(v) == 260 && hf_vocab_n_tokens(v) == 468);
        CHECK(hf_vocab_chat_template(v) && strstr(hf_vocab_chat_template(v), "<|im_start|>assistant"));
    }
    hf_vocab_free(v);
    buf_free(&b);
    clean();
}

/* One rejection per rule of the qwen.tiktoken reader. */
static void test_tiktoken_rejects(void) {
    buf b, bad;
    hf_vocab *v = NULL;
    tiktoken_base(&b);
    struct {
        const char *name, *line, *msg; /* |line| replaces line 3 (rank 2) */
        cai_status want;
    } cases[] = {
        {"bad base64", "Ag=! 2", "line 3: bad base64", CAI_ERR_FORMAT},
        {"unpadded base64", "Ag 2", "line 3: bad base64", CAI_ERR_FORMAT},
        {"duplicate rank", "Ag== 1", "line 3: rank 1 was already given on line 2", CAI_ERR_FORMAT},
        {"rank gap", "Ag== 260", "line 3: rank 260, but ranks must be 0..259", CAI_ERR_FORMAT},
        {"rank not a number", "Ag== 2x", "line 3: the rank is not", CAI_ERR_FORMAT},
        {"rank with a leading zero", "Ag== 02", "line 3: the rank is not", CAI_ERR_FORMAT},
        {"no rank", "Ag==", "line 3: not \"base64 rank\"", CAI_ERR_FORMAT},
        {"two spaces", "Ag==  2", "line 3: not \"base64 rank\"", CAI_ERR_FORMAT},
        {"empty line", "", "line 3: not \"base64 rank\"", CAI_ERR_FORMAT},
        {"CRLF", "Ag== 2\r", "line 3: the rank is not", CAI_ERR_FORMAT},
        {"empty token", "= 2", "line 3: bad base64", CAI_ERR_FORMAT},
        {"duplicate token", "AQ== 2", "line 3: the same token as line 2", CAI_ERR_FORMAT},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        /* rebuild the file with line 3 replaced */
        buf_init(&bad, 0);
        const char *p = (const char *)b.data;
        const char *l3 = strchr(strchr(p, '\n') + 1, '\n') + 1, *l4 = strchr(l3, '\n') + 1;
        buf_append(&bad, p, (size_t)(l3 - p));
        buf_printf(&bad, "%s\n", cases[i].line);
        buf_append(&bad, l4, b.len - (size_t)(l4 - p));
        cai_status st = load_tiktoken(&bad, 0, &v);
        int ok = st == cases[i].want && has(st, "qwen.tiktoken") && has(st, cases[i].msg) && v == NULL &&
                 has(st, tmpdir); /* the folder is named too */
        if (!ok)
            printf("  case \"%s\": %d %s\n", cases[i].name, st, cai_errmsg(st));
        CHECK(ok);
        buf_free(&bad);
    }
    /* an empty token (base64 of nothing), a missing byte, too long a line, a
     * token BPE cannot split in two, a vocab_size too small, an empty file */
    char line[HF_TIKTOKEN_MAX_LINE + 64];
    buf_init(&bad, 0);
    buf_append(&bad, b.data, b.len);
    buf_printf(&bad, "IA== 260\n"); /* a second " " is a duplicate */
    CHECK_ST(load_tiktoken(&bad, 0, &v), CAI_ERR_FORMAT);
    buf_free(&bad);

    buf_init(&bad, 0);
    for (int i = 1; i < 256; i++) { /* no byte 0x00 */
        uint8_t byte = (uint8_t)i;
        char enc[8];
        b64_encode(enc, &byte, 1, B64_STD);
        buf_printf(&bad, "%s %d\n", enc, i - 1);
    }
    cai_status st = load_tiktoken(&bad, 0, &v);
    CHECK(st == CAI_ERR_FORMAT && has(st, "byte 0x00 has no token"));
    buf_free(&bad);

    buf_init(&bad, 0);
    buf_append(&bad, b.data, b.len);
    memset(line, 'Q', sizeof(line));
    snprintf(line + HF_TIKTOKEN_MAX_LINE - 3, 64, " 260\n");
    buf_append_str(&bad, line);
    st = load_tiktoken(&bad, 0, &v);
    CHECK(st == CAI_ERR_LIMIT && has(st, "line 261: longer than"));
    buf_free(&bad);

    buf_init(&bad, 0);
    buf_append(&bad, b.data, b.len);
    buf_printf(&bad, "eHl6 260\n"); /* "xyz": no "xy" or "yz" below it */
    st = load_tiktoken(&bad, 0, &v);
    CHECK(st == CAI_ERR_FORMAT && has(st, "line 261 (rank 260): BPE over lower ranks gives 3 parts"));
    buf_free(&bad);

    st = load_tiktoken(&b, 467, &v); /* 260 + 208 specials = 468 */
    CHECK(st == CAI_ERR_FORMAT && has(st, "vocab_size 467 (config.json) is smaller"));

    buf_init(&bad, 0);
    st = load_tiktoken(&bad, 0, &v);
    CHECK(st == CAI_ERR_FORMAT && has(st, "no tokens"));
    buf_free(&bad);

    /* a folder with no tokenizer at all */
    clean();
    st = hf_vocab_load(tmpdir, 0, &v);
    CHECK(st == CAI_ERR_NOT_FOUND && has(st, "no tokenizer.json or qwen.tiktoken"));
    /* configs naming what is not there */
    put("qwen.tiktoken", b.data, b.len);
    put_str("generation_config.json", "{\"eos_token_id\": 100000}");
    st = hf_vocab_load(tmpdir, 0, &v);
    CHECK(st == CAI_ERR_FORMAT && has(st, "generation_config.json: eos_token_id is not a token id"));
    put_str("generation_config.json", "{\"eos_token_id\": ");
    st = hf_vocab_load(tmpdir, 0, &v);
    CHECK(st == CAI_ERR_FORMAT && has(st, "generation_config.json line 1"));
    put_str("generation_config.json", "{}");
    put_str("tokenizer_config.json", "{\"eos_token\": \"<|nope|>\"}");
    st = hf_vocab_load(tmpdir, 0, &v);
    CHECK(st == CAI_ERR_FORMAT && has(st, "tokenizer_config.json: eos_token is not a token"));
    CHECK(v == NULL);
    buf_free(&b);
    clean();
}

/* A small tokenizer.json in Qwen2's shape (built with jansson). */
static json_t *tokjson_base(void) {
    const char *pattern = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
                          "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    json_t *root = json_pack(
        "{s:s, s:[{s:i, s:s, s:b}, {s:i, s:s, s:b}, {s:i, s:s, s:b}],"
        " s:{s:s, s:[{s:s, s:{s:s}, s:s, s:b}, {s:s, s:b, s:b, s:b}]},"
        " s:{s:s, s:n, s:b, s:{s:i, s:i, s:i, s:i, s:i}, s:[s, [s, s]]}}",
        "version", "1.0", "added_tokens", "id", 6, "content", "<|endoftext|>", "special", 1, "id", 7, "content",
        "<|im_end|>", "special", 1, "id", 8, "content", "<think>", "special", 0, "pre_tokenizer", "type",
        "Sequence", "pretokenizers", "type", "Split", "pattern", "Regex", pattern, "behavior", "Isolated", "invert",
        0, "type", "ByteLevel", "add_prefix_space", 0, "trim_offsets", 0, "use_regex", 0, "model", "type", "BPE",
        "dropout", "byte_fallback", 0, "vocab", "a", 0, "b", 1, "ab", 2, "\xc4\xa0", 3, "\xc4\xa0" "ab", 4,
        "merges", "a b", "\xc4\xa0", "ab");
    CHECK(root != NULL);
    /* the other single bytes (a byte-level BPE needs all 256) at 100.. */
    json_t *vocab = json_object_get(json_object_get(root, "model"), "vocab");
    for (int b = 0; b < 256; b++) {
        int next = 256, cp = 0;
        for (int i = 0; i <= b; i++) { /* GPT-2's byte -> code point */
            int printable = (i >= '!' && i <= '~') || (i >= 0xA1 && i <= 0xAC) || i >= 0xAE;
            cp = printable ? i : next++;
        }
        char s[4] = {0};
        if (cp < 0x80) {
            s[0] = (char)cp;
        } else {
            s[0] = (char)(0xC0 | (cp >> 6));
            s[1] = (char)(0x80 | (cp & 0x3F));
        }
        if (json_object_get(vocab, s) == NULL)
            json_object_set_new(vocab, s, json_integer(100 + b));
    }
    return root;
}

static cai_status load_tokjson(json_t *root, size_t n_vocab, hf_vocab **v) {
    clean();
    char *s = json_dumps(root, 0);
    put_str("tokenizer.json", s);
    free(s);
    json_decref(root);
    return hf_vocab_load(tmpdir, n_vocab, v);
}

static void test_tokjson_small(void) {
    hf_vocab *v = NULL;
    CHECK_OK(load_tokjson(tokjson_base(), 360, &v));
    if (v) {
        tokenizer_spec sp;
        hf_vocab_spec(v, &sp);
        CHECK(sp.n_tokens == 360 && sp.n_merges == 2);
        CHECK(sp.merge_len[1] == 5 && memcmp(sp.merge[1], "\xc4\xa0 ab", 5) == 0);
        CHECK(sp.type[0] == TOKEN_NORMAL && sp.type[6] == TOKEN_CONTROL && sp.type[7] == TOKEN_CONTROL);
        CHECK(sp.type[8] == TOKEN_USER_DEFINED);
        CHECK(sp.type[5] == TOKEN_UNUSED && sp.len[5] == 6 && memcmp(sp.text[5], "[PAD5]", 6) == 0);
        CHECK(sp.type[11] == TOKEN_UNUSED && sp.len[11] == 7 && memcmp(sp.text[11], "[PAD11]", 7) == 0);
        CHECK(sp.type[359] == TOKEN_UNUSED && sp.len[359] == 8 && memcmp(sp.text[359], "[PAD359]", 8) == 0);
        CHECK(sp.len[100] == 2 && memcmp(sp.text[100], "\xc4\x80", 2) == 0); /* byte 0x00 is U+0100 */
        CHECK(sp.len[100 + 'z'] == 1 && sp.text[100 + 'z'][0] == 'z');
        CHECK(hf_vocab_bos(v) == -1 && hf_vocab_eos(v) == -1);
        tokenizer *t = NULL;
        CHECK_OK(tokenizer_new(&sp, &t));
        char ids[64];
        if (t) {
            encode_ids(t, "ab abab", 7, 0, ids, sizeof(ids));
            CHECK(strcmp(ids, "2 4 2") == 0);
        }
        tokenizer_free(t);
    }
    hf_vocab_free(v);
    /* the configs: token texts, then config.json, then generation_config.json */
    json_t *root = tokjson_base();
    char *s = json_dumps(root, 0);
    json_decref(root);
    clean();
    put_str("tokenizer.json", s);
    free(s);
    put_str("tokenizer_config.json", "{\"bos_token\": null, \"eos_token\": {\"content\": \"<|im_end|>\"}, "
                                     "\"add_bos_token\": false, \"chat_template\": [{\"name\": \"tool_use\", "
                                     "\"template\": \"T\"}, {\"name\": \"default\", \"template\": \"D\"}]}");
    put_str("config.json", "{\"bos_token_id\": 6, \"eos_token_id\": 6}");
    put_str("generation_config.json", "{\"bos_token_id\": 7, \"pad_token_id\": [6, 7]}");
    CHECK_OK(hf_vocab_load(tmpdir, 0, &v));
    if (v) {
        CHECK(hf_vocab_bos(v) == 6 && hf_vocab_eos(v) == 7 && hf_vocab_pad(v) == 6);
        CHECK(hf_vocab_chat_template(v) && strcmp(hf_vocab_chat_template(v), "D") == 0);
        CHECK(hf_vocab_n_tokens(v) == 356);
    }
    hf_vocab_free(v);
    put_str("tokenizer_config.json", "{}");
    put_str("chat_template.jinja", "J{{ x }}");
    CHECK_OK(hf_vocab_load(tmpdir, 0, &v));
    CHECK(v && hf_vocab_chat_template(v) && strcmp(hf_vocab_chat_template(v), "J{{ x }}") == 0);
    hf_vocab_free(v);
    clean();
}

/* One rejection per rule of the tokenizer.json reader. */
static void test_tokjson_rejects(void) {
    hf_vocab *v = NULL;
    json_t *r;
    cai_status st;
#define MODEL(r) json_object_get((r), "model")
#define REJECT(mutation, want_st, msg)                                                        \
    do {                                                                                       \
        r = tokjson_base();                                                                    \
        mutation;                                                                              \
        st = load_tokjson(r, 0, &v);                                                           \
        int ok_ = st == (want_st) && has(st, "tokenizer.json") && has(st, (msg)) && v == NULL; \
        if (!ok_)                                                                              \
            printf("  %s: %d %s\n", #mutation, st, cai_errmsg(st));                           \
        CHECK(ok_);                                                                            \
    } while (0)
    /* merges naming unknown tokens */
    REJECT(json_array_append_new(json_object_get(MODEL(r), "merges"), json_string("a xy")), CAI_ERR_FORMAT,
           "model.merges[2] \"a\" + \"xy\": the right part is not in model.vocab");
    REJECT(json_array_append_new(json_object_get(MODEL(r), "merges"), json_string("b a")), CAI_ERR_FORMAT,
           "model.merges[2] \"b\" + \"a\": their concatenation is not in model.vocab");
    REJECT(json_array_append_new(json_object_get(MODEL(r), "merges"), json_string("ab")), CAI_ERR_FORMAT,
           "model.merges[2] is not \"left right\"");
    REJECT(json_array_append_new(json_object_get(MODEL(r), "merges"), json_pack("[s]", "a")), CAI_ERR_FORMAT,
           "model.merges[2] is not");
    /* not a byte-level BPE */
    REJECT(json_object_set_new(MODEL(r), "type", json_string("WordPiece")), CAI_ERR_UNSUPPORTED,
           "model.type is \"WordPiece\"");
    REJECT(json_object_set_new(MODEL(r), "byte_fallback", json_true()), CAI_ERR_UNSUPPORTED, "byte_fallback");
    REJECT(json_object_set_new(r, "pre_tokenizer", json_pack("{s:s, s:b}", "type", "ByteLevel", "use_regex", 1)),
           CAI_ERR_UNSUPPORTED, "pre_tokenizer is not Qwen2's");
    REJECT(json_object_del(r, "model"), CAI_ERR_FORMAT, "no \"model\" object");
    REJECT(json_object_del(json_object_get(MODEL(r), "vocab"), "z"), CAI_ERR_FORMAT,
           "model.vocab has no token for byte 0x7a");
    /* ids and texts */
    REJECT(json_object_set_new(json_object_get(MODEL(r), "vocab"), "c", json_integer(1)), CAI_ERR_FORMAT,
           "model.vocab: id 1 is both");
    REJECT(json_object_set_new(json_object_get(MODEL(r), "vocab"), "c", json_integer(-1)), CAI_ERR_FORMAT,
           "model.vocab \"c\": the id is not an integer");
    REJECT(json_object_set_new(json_object_get(MODEL(r), "vocab"), "c", json_integer(1 << 22)), CAI_ERR_FORMAT,
           "the id is not an integer");
    REJECT(json_object_set_new(json_object_get(MODEL(r), "vocab"), " c", json_integer(5)), CAI_ERR_FORMAT,
           "is not byte-level BPE text");
    REJECT(json_object_set_new(json_object_get(MODEL(r), "vocab"), "", json_integer(5)), CAI_ERR_FORMAT,
           "is not byte-level BPE text");
    REJECT(json_array_append_new(json_object_get(r, "added_tokens"),
                                 json_pack("{s:i, s:s, s:b}", "id", 1, "content", "<x>", "special", 1)),
           CAI_ERR_FORMAT, "added_tokens[3] \"<x>\": id 1 is already \"b\"");
    REJECT(json_array_append_new(json_object_get(r, "added_tokens"),
                                 json_pack("{s:i, s:s, s:b}", "id", 9, "content", "ab", "special", 1)),
           CAI_ERR_FORMAT, "token 9 \"ab\" is the same text as token 2");
    REJECT(json_array_append_new(json_object_get(r, "added_tokens"), json_pack("{s:i, s:s}", "id", 9, "content", "")),
           CAI_ERR_FORMAT, "added_tokens[3] needs an id");
    REJECT(json_object_set_new(json_object_get(MODEL(r), "vocab"), "[PAD5]", json_integer(9)), CAI_ERR_FORMAT,
           "token 9 \"[PAD5]\" is the same text as token 5"); /* a collision with padding */
    REJECT(json_array_append_new(json_object_get(r, "added_tokens"),
                                 json_pack("{s:i, s:s}", "id", 9, "content", "[PAD5]")),
           CAI_ERR_FORMAT, "token 9 \"[PAD5]\" is the same text as token 5");
    /* n_vocab too small */
    r = tokjson_base();
    st = load_tokjson(r, 355, &v);
    CHECK(st == CAI_ERR_FORMAT && has(st, "vocab_size 355 (config.json) is smaller than its 356 token ids"));
    /* not JSON; duplicate keys */
    clean();
    put_str("tokenizer.json", "{\"model\": {\"type\": \"BPE\",\n \"type\": \"BPE\"}}");
    st = hf_vocab_load(tmpdir, 0, &v);
    CHECK(st == CAI_ERR_FORMAT && has(st, "tokenizer.json line 2"));
    put_str("tokenizer.json", "{\"model\": [1, 2,");
    st = hf_vocab_load(tmpdir, 0, &v);
    CHECK(st == CAI_ERR_FORMAT && has(st, "tokenizer.json line 1"));
    CHECK(v == NULL);
    clean();
#undef REJECT
#undef MODEL
}

int main(void) {
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/cai-hf-vocab.XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        printf("FAIL mkdtemp\n");
        return 1;
    }
    RUN(test_tiktoken_small);
    RUN(test_tiktoken_rejects);
    RUN(test_tokjson_small);
    RUN(test_tokjson_rejects);
    RUN(test_tiktoken_folder);
    RUN(test_tokjson_folder);
    RUN(test_folders_agree);
    clean();
    rmdir(tmpdir);
    return test_summary();
}

/* vocab.c - Hugging Face tokenizers (qwen.tiktoken, tokenizer.json) as GGUF's
 * byte-level BPE vocabulary. */
#include "hf/vocab.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/codec.h"
#include "common/cursor.h"
#include "common/file.h"
#include "common/strmap.h"

#define TIKTOKEN "qwen.tiktoken"
#define TOKJSON "tokenizer.json"

/* Qwen's tokenizer code (tokenization_qwen.py) adds these after the ranks. */
#define QWEN_N_EXTRA 205
#define QWEN_N_SPECIAL (3 + QWEN_N_EXTRA)

/* The split pattern of Qwen2's pre-tokenizer, the only one the engine runs
 * (tokenizer.json spells it as a JSON string; this is the decoded text). */
static const char QWEN2_PATTERN[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* Qwen-7B-Chat ships no template: its chat() builds ChatML in Python. This
 * is the usual ChatML template (the newlines are in the Jinja strings). */
static const char CHATML_TEMPLATE[] =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' "
    "}}{% endif %}";

/* ---- GPT-2's byte <-> printable code point mapping -------------------------- */

/* byte_cp returns the code point byte |b| is written as in a byte-level BPE
 * token: the 188 printable bytes stand for themselves, the other 68 (0x00..
 * 0x20, 0x7F..0xA0, 0xAD) become U+0100..U+0143 in byte order. */
static uint32_t byte_cp(uint8_t b) {
    if (b <= 0x20)
        return 0x100u + b;
    if (b >= 0x7F && b <= 0xA0)
        return 0x100u + 0x21 + (uint32_t)(b - 0x7F);
    if (b == 0xAD)
        return 0x143;
    return b;
}

/* byte_level_append appends the byte-level text of |n| bytes to |out|. */
static cai_status byte_level_append(buf *out, const uint8_t *p, size_t n) {
    cai_status st = buf_reserve(out, 2 * n);
    for (size_t i = 0; st == CAI_OK && i < n; i++) {
        uint32_t cp = byte_cp(p[i]);
        uint8_t u[2];
        if (cp < 0x80) {
            st = buf_append_u8(out, (uint8_t)cp);
        } else {
            u[0] = (uint8_t)(0xC0 | (cp >> 6));
            u[1] = (uint8_t)(0x80 | (cp & 0x3F));
            st = buf_append(out, u, 2);
        }
    }
    return st;
}

/* is_byte_level says whether the UTF-8 text |s| uses only the 256 code
 * points of the byte-level mapping (what a regular BPE token must be). */
static int is_byte_level(const char *s, size_t n) {
    const uint8_t *p = (const uint8_t *)s;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        if (p[i] < 0x80) {
            cp = p[i];
            i += 1;
        } else if ((p[i] >> 5) == 6 && i + 1 < n && (p[i + 1] & 0xC0) == 0x80) {
            cp = ((uint32_t)(p[i] & 0x1F) << 6) | (p[i + 1] & 0x3Fu);
            i += 2;
        } else {
            return 0;
        }
        int mapped = cp >= 0x100 ? cp <= 0x143 : byte_cp((uint8_t)cp) == cp;
        if (!mapped)
            return 0;
    }
    return 1;
}

/* ---- the vocabulary --------------------------------------------------------- */

struct hf_vocab {
    const char *source;
    size_t n, n_merges;
    buf arena; /* every token and merge text, back to back */
    const char **text;
    size_t *len;
    int32_t *type;
    const char **merge;
    size_t *merge_len;
    size_t *off, *merge_off; /* offsets into arena while it grows */
    strmap ids;              /* text -> id, once complete */
    int32_t bos, eos, pad;
    int add_bos;
    int chatml; /* qwen.tiktoken: generation_config.json says chat_format chatml */
    char *chat_template;
};

void hf_vocab_free(hf_vocab *v) {
    if (v == NULL)
        return;
    buf_free(&v->arena);
    free(v->text), free(v->len), free(v->type), free(v->merge), free(v->merge_len);
    free(v->off), free(v->merge_off), free(v->chat_template);
    strmap_free(&v->ids);
    free(v);
}

/* vocab_new allocates a vocabulary of |n| tokens and room for |max_merges|. */
static cai_status vocab_new(const char *source, size_t n, size_t max_merges, hf_vocab **out) {
    hf_vocab *v = calloc(1, sizeof(*v));
    if (v == NULL)
        return CAI_ERR_NOMEM;
    v->source = source;
    v->n = n;
    v->bos = v->eos = v->pad = -1;
    buf_init(&v->arena, 0);
    v->text = calloc(n, sizeof(char *));
    v->len = calloc(n, sizeof(size_t));
    v->type = calloc(n, sizeof(int32_t));
    v->off = calloc(n, sizeof(size_t));
    v->merge = calloc(max_merges + 1, sizeof(char *));
    v->merge_len = calloc(max_merges + 1, sizeof(size_t));
    v->merge_off = calloc(max_merges + 1, sizeof(size_t));
    if (!v->text || !v->len || !v->type || !v->off || !v->merge || !v->merge_len || !v->merge_off) {
        hf_vocab_free(v);
        return CAI_ERR_NOMEM;
    }
    *out = v;
    return CAI_OK;
}

/* set_token makes token |id| the |n| bytes of |text| (already GGUF text). */
static cai_status set_token(hf_vocab *v, size_t id, const void *text, size_t n, int32_t type) {
    v->off[id] = v->arena.len;
    v->len[id] = n;
    v->type[id] = type;
    return buf_append(&v->arena, text, n);
}

static cai_status add_merge(hf_vocab *v, const char *l, size_t ln, const char *r, size_t rn) {
    size_t i = v->n_merges++;
    v->merge_off[i] = v->arena.len;
    v->merge_len[i] = ln + 1 + rn;
    cai_status st = buf_append(&v->arena, l, ln);
    if (st == CAI_OK)
        st = buf_append_u8(&v->arena, ' ');
    if (st == CAI_OK)
        st = buf_append(&v->arena, r, rn);
    return st;
}

/* pad_one makes id |i| a "[PAD<i>]" token of type unused, as llama.cpp's
 * converter fills the ids a folder does not name. */
static cai_status pad_one(hf_vocab *v, size_t i) {
    char s[32];
    int k = snprintf(s, sizeof(s), "[PAD%zu]", i);
    return set_token(v, i, s, (size_t)k, TOKEN_UNUSED);
}

/* finish turns offsets into pointers and checks that every text is a
 * different token (a duplicate would make one of them unreachable). */
static cai_status finish(hf_vocab *v) {
    const char *base = (const char *)v->arena.data;
    for (size_t i = 0; i < v->n; i++)
        v->text[i] = base + v->off[i];
    for (size_t i = 0; i < v->n_merges; i++)
        v->merge[i] = base + v->merge_off[i];
    free(v->off), free(v->merge_off);
    v->off = v->merge_off = NULL;
    cai_status st = strmap_init(&v->ids, v->n);
    for (size_t i = 0; st == CAI_OK && i < v->n; i++) {
        int32_t was = strmap_add(&v->ids, v->text[i], v->len[i], (int32_t)i);
        if (was >= 0)
            st = cai_fail(CAI_ERR_FORMAT, "%s: token %zu \"%.*s\" is the same text as token %d", v->source,
                          i, (int)(v->len[i] < 40 ? v->len[i] : 40), v->text[i], was);
    }
    return st;
}

/* ---- qwen.tiktoken -------------------------------------------------------------- */

/* parse_rank reads a decimal rank: 1..10 digits, no sign, no leading zero. */
static int parse_rank(const uint8_t *p, size_t n, uint64_t *out) {
    if (n == 0 || n > 10 || (n > 1 && p[0] == '0'))
        return 0;
    uint64_t r = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return 0;
        r = r * 10 + (uint64_t)(p[i] - '0');
    }
    *out = r;
    return 1;
}

static int32_t rank_of(const strmap *ranks, const uint8_t *p, size_t n) {
    int32_t r = strmap_get(ranks, (const char *)p, n);
    return r < 0 ? INT32_MAX : r;
}

/* bpe_split runs byte-level BPE over the |n| bytes of |tok| using only
 * ranks below |max_rank| (tiktoken's algorithm: repeatedly merge the
 * adjacent pair of lowest rank, the leftmost on a tie). It returns the
 * number of parts and the first one's length in *first. |pos| holds n+1
 * entries, |rk| n. */
static size_t bpe_split(const strmap *ranks, const uint8_t *tok, size_t n, int32_t max_rank,
                        size_t *pos, int32_t *rk, size_t *first) {
#define PAIR_RANK(i) rank_of(ranks, tok + pos[(i)], pos[(i) + 2] - pos[(i)])
    size_t k = n;
    for (size_t i = 0; i <= n; i++)
        pos[i] = i;
    for (size_t i = 0; i + 1 < k; i++)
        rk[i] = PAIR_RANK(i);
    while (k > 1) {
        size_t best = 0;
        for (size_t i = 1; i + 1 < k; i++)
            if (rk[i] < rk[best])
                best = i;
        if (rk[best] >= max_rank)
            break;
        /* parts best and best+1 become one */
        memmove(&pos[best + 1], &pos[best + 2], (k - best - 1) * sizeof(size_t));
        if (k >= best + 3)
            memmove(&rk[best + 1], &rk[best + 2], (k - best - 3) * sizeof(int32_t));
        k--;
        if (best + 1 < k)
            rk[best] = PAIR_RANK(best);
        if (best > 0)
            rk[best - 1] = PAIR_RANK(best - 1);
    }
    *first = pos[1] - pos[0];
    return k;
#undef PAIR_RANK
}

/* A qwen.tiktoken file's lines, decoded: the token of rank r is the bytes
 * raw[off[r]..off[r] + len[r]), given on line line[r] (0: not yet). */
typedef struct {
    strmap ranks; /* token bytes -> rank */
    uint8_t *raw;
    size_t *off, *len, *line;
    size_t n, used, cap;
} tiktoken_file;

static void tiktoken_free(tiktoken_file *t) {
    strmap_free(&t->ranks);
    free(t->raw), free(t->off), free(t->len), free(t->line);
}

/* tiktoken_line adds line |line_no|, "base64 rank", to |t|. */
static cai_status tiktoken_line(tiktoken_file *t, const uint8_t *lp, size_t ll, size_t line_no) {
    const uint8_t *sp = memchr(lp, ' ', ll);
    size_t b64_len = sp ? (size_t)(sp - lp) : 0;
    if (sp == NULL || b64_len == 0 || memchr(sp + 1, ' ', ll - b64_len - 1) != NULL)
        return cai_fail(CAI_ERR_FORMAT, TIKTOKEN " line %zu: not \"base64 rank\"", line_no);
    size_t tn = 0;
    if (b64_decode((const char *)lp, b64_len, t->raw + t->used, t->cap - t->used, &tn, B64_STD) != CAI_OK)
        return cai_fail(CAI_ERR_FORMAT, TIKTOKEN " line %zu: bad base64 (standard alphabet, padded)", line_no);
    if (tn == 0 || tn > HF_VOCAB_MAX_TOKEN_BYTES)
        return cai_fail(tn ? CAI_ERR_LIMIT : CAI_ERR_FORMAT, TIKTOKEN " line %zu: a token of %zu bytes (1..%d)",
                        line_no, tn, HF_VOCAB_MAX_TOKEN_BYTES);
    uint64_t rank;
    if (!parse_rank(sp + 1, ll - b64_len - 1, &rank))
        return cai_fail(CAI_ERR_FORMAT, TIKTOKEN " line %zu: the rank is not a decimal number", line_no);
    if (rank >= t->n)
        return cai_fail(CAI_ERR_FORMAT,
                        TIKTOKEN " line %zu: rank %llu, but ranks must be 0..%zu, each once (one per line)",
                        line_no, (unsigned long long)rank, t->n - 1);
    if (t->line[rank])
        return cai_fail(CAI_ERR_FORMAT, TIKTOKEN " line %zu: rank %llu was already given on line %zu", line_no,
                        (unsigned long long)rank, t->line[rank]);
    int32_t was = strmap_add(&t->ranks, (const char *)t->raw + t->used, tn, (int32_t)rank);
    if (was >= 0)
        return cai_fail(CAI_ERR_FORMAT, TIKTOKEN " line %zu: the same token as line %zu", line_no, t->line[was]);
    t->off[rank] = t->used;
    t->len[rank] = tn;
    t->line[rank] = line_no;
    t->used += tn;
    return CAI_OK;
}

/* tiktoken_read decodes all |t->n| lines of |data| into |t| and checks that
 * every byte has a token. */
static cai_status tiktoken_read(tiktoken_file *t, const uint8_t *data, size_t len) {
    t->cap = len;
    t->raw = malloc(len);
    t->off = malloc(t->n * sizeof(size_t));
    t->len = malloc(t->n * sizeof(size_t));
    t->line = calloc(t->n, sizeof(size_t));
    cai_status st = t->raw && t->off && t->len && t->line ? strmap_init(&t->ranks, t->n) : CAI_ERR_NOMEM;
    cursor c;
    cursor_init(&c, data, len);
    for (size_t line_no = 1; st == CAI_OK && cursor_len(&c) > 0; line_no++) {
        const uint8_t *nl = memchr(cursor_data(&c), '\n', cursor_len(&c));
        size_t ll = nl ? (size_t)(nl - cursor_data(&c)) : cursor_len(&c);
        cursor line;
        if (ll > HF_TIKTOKEN_MAX_LINE)
            return cai_fail(CAI_ERR_LIMIT, TIKTOKEN " line %zu: longer than %d bytes", line_no,
                            HF_TIKTOKEN_MAX_LINE);
        if (!cursor_get_span(&c, &line, ll) || (nl && !cursor_skip(&c, 1)))
            return CAI_ERR_INTERNAL;
        st = tiktoken_line(t, cursor_data(&line), ll, line_no);
    }
    for (int b = 0; st == CAI_OK && b < 256; b++) {
        uint8_t byte = (uint8_t)b;
        if (strmap_get(&t->ranks, (const char *)&byte, 1) < 0)
            st = cai_fail(CAI_ERR_FORMAT, TIKTOKEN ": byte 0x%02x has no token (a byte-level BPE needs all 256)",
                          b);
    }
    return st;
}

/* tiktoken_merges adds to |v| the merge of each token of two bytes or more,
 * in rank order: the pair BPE over lower ranks stops at. */
static cai_status tiktoken_merges(hf_vocab *v, const tiktoken_file *t) {
    size_t *pos = malloc((HF_VOCAB_MAX_TOKEN_BYTES + 1) * sizeof(size_t));
    int32_t *rk = malloc(HF_VOCAB_MAX_TOKEN_BYTES * sizeof(int32_t));
    cai_status st = pos && rk ? CAI_OK : CAI_ERR_NOMEM;
    for (size_t r = 0; st == CAI_OK && r < t->n; r++) {
        if (t->len[r] < 2)
            continue;
        const uint8_t *tok = t->raw + t->off[r];
        size_t first, parts = bpe_split(&t->ranks, tok, t->len[r], (int32_t)r, pos, rk, &first);
        if (parts != 2) {
            st = cai_fail(CAI_ERR_FORMAT,
                          TIKTOKEN " line %zu (rank %zu): BPE over lower ranks gives %zu parts, not two tokens "
                          "to merge",
                          t->line[r], r, parts);
            break;
        }
        int32_t left = strmap_get(&t->ranks, (const char *)tok, first);
        int32_t right = strmap_get(&t->ranks, (const char *)tok + first, t->len[r] - first);
        CAI_ASSERT(left >= 0 && right >= 0);
        /* the texts are in the arena, which add_merge may move: copy first */
        char lt[2 * HF_VOCAB_MAX_TOKEN_BYTES], rt[2 * HF_VOCAB_MAX_TOKEN_BYTES];
        memcpy(lt, v->arena.data + v->off[left], v->len[left]);
        memcpy(rt, v->arena.data + v->off[right], v->len[right]);
        st = add_merge(v, lt, v->len[left], rt, v->len[right]);
    }
    free(pos), free(rk);
    return st;
}

cai_status hf_vocab_from_tiktoken_mem(const uint8_t *data, size_t len, size_t n_vocab, hf_vocab **out) {
    *out = NULL;
    if (len > HF_TIKTOKEN_MAX_FILE)
        return cai_fail(CAI_ERR_LIMIT, TIKTOKEN ": %zu bytes, more than the limit of %zu", len,
                        HF_TIKTOKEN_MAX_FILE);
    size_t n_lines = 0;
    for (const uint8_t *p = data, *end = data + len; p < end; n_lines++) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        p = nl ? nl + 1 : end;
    }
    if (n_lines == 0)
        return cai_fail(CAI_ERR_FORMAT, TIKTOKEN ": no tokens");
    if (n_lines > HF_VOCAB_MAX_TOKENS - QWEN_N_SPECIAL)
        return cai_fail(CAI_ERR_LIMIT, TIKTOKEN ": %zu lines, more than the limit of %zu tokens", n_lines,
                        HF_VOCAB_MAX_TOKENS - QWEN_N_SPECIAL);
    size_t n_tok = n_lines + QWEN_N_SPECIAL;
    if (n_vocab != 0 && n_vocab < n_tok)
        return cai_fail(CAI_ERR_FORMAT,
                        TIKTOKEN ": vocab_size %zu (config.json) is smaller than its %zu tokens and Qwen's "
                        "%d special tokens",
                        n_vocab, n_lines, QWEN_N_SPECIAL);
    if (n_vocab > HF_VOCAB_MAX_TOKENS)
        return cai_fail(CAI_ERR_LIMIT, "vocab_size %zu is more than the limit of %zu", n_vocab,
                        HF_VOCAB_MAX_TOKENS);

    hf_vocab *v = NULL;
    tiktoken_file t = {.n = n_lines};
    cai_status st = tiktoken_read(&t, data, len);
    if (st == CAI_OK)
        st = vocab_new(TIKTOKEN, n_vocab ? n_vocab : n_tok, n_lines, &v);
    if (st == CAI_OK) /* tokens and merges: at most twice the bytes each */
        st = buf_reserve(&v->arena, 4 * t.used + 2 * n_lines + 16 * (v->n - n_lines));
    /* the tokens, as byte-level text */
    for (size_t r = 0; st == CAI_OK && r < n_lines; r++) {
        v->off[r] = v->arena.len;
        v->type[r] = TOKEN_NORMAL;
        st = byte_level_append(&v->arena, t.raw + t.off[r], t.len[r]);
        v->len[r] = v->arena.len - v->off[r];
    }
    if (st == CAI_OK)
        st = tiktoken_merges(v, &t);
    /* Qwen's specials, then padding */
    static const char *const chatml[3] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
    for (size_t i = 0; st == CAI_OK && i < QWEN_N_SPECIAL; i++) {
        char s[32];
        int k = i < 3 ? snprintf(s, sizeof(s), "%s", chatml[i]) : snprintf(s, sizeof(s), "<|extra_%zu|>", i - 3);
        st = set_token(v, n_lines + i, s, (size_t)k, TOKEN_CONTROL);
    }
    for (size_t i = n_tok; st == CAI_OK && i < v->n; i++)
        st = pad_one(v, i);
    if (st == CAI_OK)
        st = finish(v);
    if (st == CAI_OK) {
        v->bos = v->pad = (int32_t)n_lines; /* <|endoftext|>, as llama.cpp's converter sets them */
        v->eos = (int32_t)n_lines;
        *out = v;
        v = NULL;
    }
    hf_vocab_free(v);
    tiktoken_free(&t);
    return st;
}

/* ---- tokenizer.json ------------------------------------------------------------- */

/* looks_special: llama.cpp's converter also makes an added token a control
 * token when its text has the <|...|> shape, whatever "special" says. */
static int looks_special(const char *s, size_t n) {
    return n >= 4 && memcmp(s, "<|", 2) == 0 && memcmp(s + n - 2, "|>", 2) == 0;
}

/* check_pre_tokenizer accepts Qwen2's: Split on QWEN2_PATTERN, then
 * ByteLevel without its own regex (alone or in a Sequence). */
static cai_status check_pre_tokenizer(const json_t *root) {
    const json_t *pre = json_object_get(root, "pre_tokenizer"), *list = NULL;
    const char *type = json_string_value(json_object_get(pre, "type"));
    if (type && strcmp(type, "Sequence") == 0)
        list = json_object_get(pre, "pretokenizers");
    int split = 0, bytelevel = 0, other = 0;
    size_t n = json_is_array(list) ? json_array_size(list) : 1;
    for (size_t i = 0; i < n; i++) {
        const json_t *p = list ? json_array_get(list, i) : pre;
        const char *t = json_string_value(json_object_get(p, "type"));
        const char *re = json_string_value(json_object_get(json_object_get(p, "pattern"), "Regex"));
        if (t && strcmp(t, "Split") == 0 && re && strcmp(re, QWEN2_PATTERN) == 0)
            split++;
        else if (t && strcmp(t, "ByteLevel") == 0 && json_is_false(json_object_get(p, "use_regex")))
            bytelevel++;
        else
            other++;
    }
    if (split != 1 || bytelevel != 1 || other != 0)
        return cai_fail(CAI_ERR_UNSUPPORTED,
                        TOKJSON ": pre_tokenizer is not Qwen2's (a Split on Qwen2's pattern, then ByteLevel "
                        "without a regex); cai's tokenizer runs only that one");
    return CAI_OK;
}

/* json_id reads a token id: an integer 0..HF_VOCAB_MAX_TOKENS-1. */
static int json_id(const json_t *j, size_t *out) {
    if (!json_is_integer(j))
        return 0;
    json_int_t i = json_integer_value(j);
    if (i < 0 || (uint64_t)i >= HF_VOCAB_MAX_TOKENS)
        return 0;
    *out = (size_t)i;
    return 1;
}

#define MAX_TEXT (2 * HF_VOCAB_MAX_TOKEN_BYTES) /* bytes of a token's text */
#define SHOW(s) (int)(strlen(s) < 40 ? strlen(s) : 40), (s)

/* check_model accepts only what cai's tokenizer runs: a byte-level BPE
 * with Qwen2's pre-tokenizer. */
static cai_status check_model(const json_t *root, const json_t *model) {
    const char *mtype = json_string_value(json_object_get(model, "type"));
    if (!json_is_object(root) || !json_is_object(model))
        return cai_fail(CAI_ERR_FORMAT, TOKJSON ": no \"model\" object");
    if (mtype == NULL || strcmp(mtype, "BPE") != 0)
        return cai_fail(CAI_ERR_UNSUPPORTED, TOKJSON ": model.type is \"%.40s\"; only byte-level \"BPE\" is "
                        "supported", mtype ? mtype : "(none)");
    const char *prefix = json_string_value(json_object_get(model, "continuing_subword_prefix"));
    const char *suffix = json_string_value(json_object_get(model, "end_of_word_suffix"));
    if (json_is_true(json_object_get(model, "byte_fallback")) || (prefix && *prefix) || (suffix && *suffix))
        return cai_fail(CAI_ERR_UNSUPPORTED, TOKJSON ": model uses byte_fallback, a subword prefix or a word "
                                             "suffix; only byte-level BPE is supported");
    return check_pre_tokenizer(root);
}

/* check_all_bytes: every byte needs its token in |texts|, or text with
 * that byte could not encode. */
static cai_status check_all_bytes(const strmap *texts) {
    for (int b = 0; b < 256; b++) {
        uint8_t byte = (uint8_t)b;
        buf one;
        buf_init(&one, 0);
        cai_status st = byte_level_append(&one, &byte, 1);
        int32_t found = st == CAI_OK ? strmap_get(texts, (const char *)one.data, one.len) : -1;
        buf_free(&one);
        if (st != CAI_OK)
            return st;
        if (found < 0)
            return cai_fail(CAI_ERR_FORMAT, TOKJSON ": model.vocab has no token for byte 0x%02x (a byte-level "
                            "BPE needs all 256)", b);
    }
    return CAI_OK;
}

/* tokjson_merges adds model.merges to |v|: each "left right" or ["left",
 * "right"], both sides and their concatenation tokens of |texts|. */
static cai_status tokjson_merges(hf_vocab *v, const json_t *merges, const strmap *texts) {
    char cat[2 * MAX_TEXT];
    for (size_t i = 0; i < json_array_size(merges); i++) {
        const json_t *m = json_array_get(merges, i);
        const char *l = NULL, *r = NULL;
        size_t ln = 0, rn = 0;
        if (json_is_string(m)) {
            const char *s = json_string_value(m), *space = strchr(s, ' ');
            if (space && strchr(space + 1, ' ') == NULL) {
                l = s, ln = (size_t)(space - s);
                r = space + 1, rn = strlen(r);
            }
        } else if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
                   json_is_string(json_array_get(m, 1))) {
            l = json_string_value(json_array_get(m, 0)), ln = strlen(l);
            r = json_string_value(json_array_get(m, 1)), rn = strlen(r);
            if (memchr(l, ' ', ln) || memchr(r, ' ', rn))
                l = NULL;
        }
        if (l == NULL || ln == 0 || rn == 0)
            return cai_fail(CAI_ERR_FORMAT, TOKJSON ": model.merges[%zu] is not \"left right\" or [\"left\", "
                            "\"right\"]", i);
        int32_t li = strmap_get(texts, l, ln), ri = strmap_get(texts, r, rn), ci = -1;
        if (li >= 0 && ri >= 0 && ln <= MAX_TEXT && rn <= MAX_TEXT) {
            memcpy(cat, l, ln);
            memcpy(cat + ln, r, rn);
            ci = strmap_get(texts, cat, ln + rn);
        }
        if (li < 0 || ri < 0 || ci < 0)
            return cai_fail(CAI_ERR_FORMAT, TOKJSON ": model.merges[%zu] \"%.*s\" + \"%.*s\": %s is not in "
                            "model.vocab", i, (int)(ln < 40 ? ln : 40), l, (int)(rn < 40 ? rn : 40), r,
                            li < 0 ? "the left part" : ri < 0 ? "the right part" : "their concatenation");
        cai_status st = add_merge(v, l, ln, r, rn);
        if (st != CAI_OK)
            return st;
    }
    return CAI_OK;
}

/* count_ids checks the ids of model.vocab and added_tokens and gives the
 * number of tokens: the highest id decides it. */
static cai_status count_ids(const json_t *vocab, const json_t *added, size_t n_added, size_t *n_tok) {
    size_t id;
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)vocab, key, val) {
        if (!json_id(val, &id))
            return cai_fail(CAI_ERR_FORMAT, TOKJSON ": model.vocab \"%.*s\": the id is not an integer 0..%zu",
                            SHOW(key), HF_VOCAB_MAX_TOKENS - 1);
        *n_tok = id + 1 > *n_tok ? id + 1 : *n_tok;
    }
    for (size_t i = 0; i < n_added; i++) {
        const json_t *a = json_array_get(added, i);
        const char *content = json_string_value(json_object_get(a, "content"));
        if (!json_id(json_object_get(a, "id"), &id) || content == NULL || content[0] == '\0' ||
            strlen(content) > MAX_TEXT)
            return cai_fail(CAI_ERR_FORMAT, TOKJSON ": added_tokens[%zu] needs an id 0..%zu and a content of 1..%d "
                            "bytes", i, HF_VOCAB_MAX_TOKENS - 1, MAX_TEXT);
        *n_tok = id + 1 > *n_tok ? id + 1 : *n_tok;
    }
    return CAI_OK;
}

cai_status hf_vocab_from_tokjson_mem(const uint8_t *data, size_t len, size_t n_vocab, hf_vocab **out) {
    *out = NULL;
    if (len > HF_TOKJSON_MAX_FILE)
        return cai_fail(CAI_ERR_LIMIT, TOKJSON ": %zu bytes, more than the limit of %zu", len,
                        HF_TOKJSON_MAX_FILE);
    if (n_vocab > HF_VOCAB_MAX_TOKENS)
        return cai_fail(CAI_ERR_LIMIT, "vocab_size %zu is more than the limit of %zu", n_vocab,
                        HF_VOCAB_MAX_TOKENS);
    json_error_t je;
    json_t *root = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL)
        return cai_fail(CAI_ERR_FORMAT, TOKJSON " line %d column %d: %s", je.line, je.column, je.text);
    hf_vocab *v = NULL;
    const char **src = NULL; /* by id: the text, pointing into the JSON */
    int32_t *type = NULL;
    strmap texts = {0};
    cai_status st = CAI_OK;
    const json_t *model = json_object_get(root, "model");
    if ((st = check_model(root, model)) != CAI_OK)
        goto out;
    const json_t *vocab = json_object_get(model, "vocab"), *merges = json_object_get(model, "merges");
    const json_t *added = json_object_get(root, "added_tokens");
    if (!json_is_object(vocab) || !json_is_array(merges) || (added && !json_is_array(added) && !json_is_null(added))) {
        st = cai_fail(CAI_ERR_FORMAT, TOKJSON ": model.vocab must be an object, model.merges and added_tokens "
                                      "arrays");
        goto out;
    }
    size_t n_added = json_is_array(added) ? json_array_size(added) : 0;
    if (json_object_size(vocab) == 0 || json_object_size(vocab) > HF_VOCAB_MAX_TOKENS ||
        n_added > HF_VOCAB_MAX_TOKENS || json_array_size(merges) > HF_VOCAB_MAX_TOKENS) {
        st = cai_fail(CAI_ERR_LIMIT, TOKJSON ": %zu tokens, %zu added tokens, %zu merges (1..%zu each)",
                      json_object_size(vocab), n_added, json_array_size(merges), HF_VOCAB_MAX_TOKENS);
        goto out;
    }
    size_t n_tok = 0, id = 0;
    const char *key;
    const json_t *val;
    if ((st = count_ids(vocab, added, n_added, &n_tok)) != CAI_OK)
        goto out;
    if (n_vocab != 0 && n_vocab < n_tok) {
        st = cai_fail(CAI_ERR_FORMAT, TOKJSON ": vocab_size %zu (config.json) is smaller than its %zu token ids",
                      n_vocab, n_tok);
        goto out;
    }
    size_t n = n_vocab ? n_vocab : n_tok;
    src = calloc(n, sizeof(char *));
    type = calloc(n, sizeof(int32_t));
    if (!src || !type || (st = strmap_init(&texts, json_object_size(vocab))) != CAI_OK) {
        st = CAI_ERR_NOMEM;
        goto out;
    }
    json_object_foreach((json_t *)vocab, key, val) {
        size_t kl = strlen(key);
        (void)json_id(val, &id);
        if (kl == 0 || kl > MAX_TEXT || !is_byte_level(key, kl)) {
            st = cai_fail(CAI_ERR_FORMAT, TOKJSON ": model.vocab \"%.*s\" (id %zu) is not byte-level BPE text of "
                                          "1..%d bytes",
                          SHOW(key), id, MAX_TEXT);
            goto out;
        }
        if (src[id]) {
            st = cai_fail(CAI_ERR_FORMAT, TOKJSON ": model.vocab: id %zu is both \"%.*s\" and \"%.*s\"", id,
                          SHOW(src[id]), SHOW(key));
            goto out;
        }
        src[id] = key;
        type[id] = TOKEN_NORMAL;
        (void)strmap_add(&texts, key, kl, (int32_t)id);
    }
    for (size_t i = 0; i < n_added; i++) {
        const json_t *a = json_array_get(added, i);
        const char *content = json_string_value(json_object_get(a, "content"));
        (void)json_id(json_object_get(a, "id"), &id);
        if (src[id] && (type[id] != TOKEN_NORMAL || strcmp(src[id], content) != 0)) {
            st = cai_fail(CAI_ERR_FORMAT, TOKJSON ": added_tokens[%zu] \"%.*s\": id %zu is already \"%.*s\"", i,
                          SHOW(content), id, SHOW(src[id]));
            goto out;
        }
        src[id] = content;
        type[id] = json_is_true(json_object_get(a, "special")) || looks_special(content, strlen(content))
                       ? TOKEN_CONTROL
                       : TOKEN_USER_DEFINED;
    }
    if ((st = check_all_bytes(&texts)) != CAI_OK || (st = vocab_new(TOKJSON, n, json_array_size(merges), &v)) != CAI_OK)
        goto out;
    for (size_t i = 0; st == CAI_OK && i < n; i++) {
        if (src[i])
            st = set_token(v, i, src[i], strlen(src[i]), type[i]);
        else
            st = pad_one(v, i);
    }
    if (st != CAI_OK)
        goto out;
    if ((st = tokjson_merges(v, merges, &texts)) != CAI_OK || (st = finish(v)) != CAI_OK)
        goto out;
    *out = v;
    v = NULL;
out:
    hf_vocab_free(v);
    strmap_free(&texts);
    free(src), free(type);
    json_decref(root);
    return st;
}

/* ---- the folder: config files and the chat template ------------------------------ */

/* read_json reads DIR/NAME into *out; *out stays NULL when the file is absent. */
static cai_status read_json(const char *dir, const char *name, json_t **out) {
    *out = NULL;
    char path[4096];
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
        return cai_fail(CAI_ERR_INVALID_ARG, "%s: the path is too long", dir);
    buf b;
    cai_status st = file_read_all(path, HF_CONFIG_MAX_FILE, &b);
    if (st == CAI_ERR_NOT_FOUND) {
        buf_free(&b);
        return CAI_OK;
    }
    if (st == CAI_OK) {
        json_error_t je;
        *out = json_loadb((const char *)b.data, b.len, JSON_REJECT_DUPLICATES, &je);
        if (*out == NULL)
            st = cai_fail(CAI_ERR_FORMAT, "%s line %d column %d: %s", path, je.line, je.column, je.text);
        else if (!json_is_object(*out))
            st = cai_fail(CAI_ERR_FORMAT, "%s: not a JSON object", path);
    }
    buf_free(&b);
    if (st != CAI_OK) {
        json_decref(*out);
        *out = NULL;
    }
    return st;
}

/* token_by_text sets *id from tokenizer_config.json's |key|: a token text,
 * or {"content": text}; null or absent leaves *id alone. */
static cai_status token_by_text(const hf_vocab *v, const json_t *cfg, const char *key, int32_t *id) {
    const json_t *j = json_object_get(cfg, key);
    if (j == NULL || json_is_null(j) || *id >= 0)
        return CAI_OK;
    if (json_is_object(j))
        j = json_object_get(j, "content");
    const char *s = json_string_value(j);
    int32_t found = s ? strmap_get(&v->ids, s, strlen(s)) : -1;
    if (found < 0)
        return cai_fail(CAI_ERR_FORMAT, "tokenizer_config.json: %s is not a token of %s", key, v->source);
    *id = found;
    return CAI_OK;
}

/* token_by_id sets *id from |file|'s |key|: an id, or a list whose first id
 * counts (generation_config.json's eos_token_id often is [im_end, endoftext]). */
static cai_status token_by_id(const hf_vocab *v, const json_t *cfg, const char *file, const char *key, int32_t *id) {
    const json_t *j = json_object_get(cfg, key);
    if (j == NULL || json_is_null(j) || *id >= 0)
        return CAI_OK;
    if (json_is_array(j))
        j = json_array_get(j, 0);
    if (!json_is_integer(j) || json_integer_value(j) < 0 || (uint64_t)json_integer_value(j) >= v->n)
        return cai_fail(CAI_ERR_FORMAT, "%s: %s is not a token id (0..%zu)", file, key, v->n - 1);
    *id = (int32_t)json_integer_value(j);
    return CAI_OK;
}

static cai_status set_template(hf_vocab *v, const char *t, size_t n, const char *file) {
    if (n > HF_CONFIG_MAX_FILE || memchr(t, 0, n) || !utf8_valid(t, n))
        return cai_fail(CAI_ERR_FORMAT, "%s: the chat template is not UTF-8 text of at most %zu bytes", file,
                        HF_CONFIG_MAX_FILE);
    free(v->chat_template);
    if ((v->chat_template = malloc(n + 1)) == NULL)
        return CAI_ERR_NOMEM;
    memcpy(v->chat_template, t, n);
    v->chat_template[n] = '\0';
    return CAI_OK;
}

/* apply_configs takes the special ids, add_bos and the chat template from
 * the folder's configs: token texts of tokenizer_config.json first, then the
 * ids of config.json, then those of generation_config.json (the order of
 * llama.cpp's SpecialVocab, generation_config.json last). */
static cai_status apply_configs(hf_vocab *v, const char *dir) {
    json_t *tc = NULL, *cc = NULL, *gc = NULL;
    int tiktoken = strcmp(v->source, TIKTOKEN) == 0;
    int32_t bos = -1, eos = -1, pad = -1;
    cai_status st = read_json(dir, "tokenizer_config.json", &tc);
    if (st == CAI_OK)
        st = read_json(dir, "config.json", &cc);
    if (st == CAI_OK)
        st = read_json(dir, "generation_config.json", &gc);
    if (st == CAI_OK)
        st = token_by_text(v, tc, "bos_token", &bos);
    if (st == CAI_OK)
        st = token_by_text(v, tc, "eos_token", &eos);
    if (st == CAI_OK)
        st = token_by_text(v, tc, "pad_token", &pad);
    static const char *const files[2] = {"config.json", "generation_config.json"};
    for (int f = 0; f < 2 && st == CAI_OK; f++) {
        const json_t *c = f ? gc : cc;
        st = token_by_id(v, c, files[f], "bos_token_id", &bos);
        if (st == CAI_OK)
            st = token_by_id(v, c, files[f], "eos_token_id", &eos);
        if (st == CAI_OK)
            st = token_by_id(v, c, files[f], "pad_token_id", &pad);
    }
    if (st != CAI_OK)
        goto out;
    /* unnamed ones keep the reader's defaults (qwen.tiktoken: <|endoftext|>) */
    v->bos = bos >= 0 ? bos : v->bos;
    v->eos = eos >= 0 ? eos : v->eos;
    v->pad = pad >= 0 ? pad : v->pad;
    const char *fmt = json_string_value(json_object_get(gc, "chat_format"));
    if (tiktoken && fmt && strcmp(fmt, "chatml") == 0) {
        /* Qwen-7B-Chat: a reply ends with <|im_end|> (its chat() stops there) */
        v->chatml = 1;
        v->eos = strmap_get(&v->ids, "<|im_end|>", 10);
    }
    const json_t *ab = json_object_get(tc, "add_bos_token");
    if (ab && !json_is_boolean(ab) && !json_is_null(ab)) {
        st = cai_fail(CAI_ERR_FORMAT, "tokenizer_config.json: add_bos_token is not a boolean");
        goto out;
    }
    v->add_bos = json_is_true(ab);
    if (v->add_bos && v->bos < 0) {
        st = cai_fail(CAI_ERR_FORMAT, "tokenizer_config.json: add_bos_token without a bos token");
        goto out;
    }
    /* the chat template: a string, or a list of {name, template} */
    const json_t *ct = json_object_get(tc, "chat_template");
    if (json_is_array(ct)) {
        const json_t *pick = NULL, *e;
        size_t i;
        json_array_foreach(ct, i, e) {
            const char *name = json_string_value(json_object_get(e, "name"));
            if (pick == NULL || (name && strcmp(name, "default") == 0))
                pick = e;
        }
        ct = json_object_get(pick, "template");
    }
    if (ct && !json_is_null(ct)) {
        if (!json_is_string(ct)) {
            st = cai_fail(CAI_ERR_FORMAT, "tokenizer_config.json: chat_template is not a string");
            goto out;
        }
        st = set_template(v, json_string_value(ct), json_string_length(ct), "tokenizer_config.json");
        goto out;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/chat_template.jinja", dir);
    buf b;
    st = file_read_all(path, HF_CONFIG_MAX_FILE, &b);
    if (st == CAI_OK)
        st = set_template(v, (const char *)b.data, b.len, path);
    else if (st == CAI_ERR_NOT_FOUND)
        st = v->chatml ? set_template(v, CHATML_TEMPLATE, strlen(CHATML_TEMPLATE), "ChatML") : CAI_OK;
    buf_free(&b);
out:
    json_decref(tc), json_decref(cc), json_decref(gc);
    return st;
}

cai_status hf_vocab_load(const char *dir, size_t n_vocab, hf_vocab **out) {
    *out = NULL;
    char path[4096];
    buf b;
    hf_vocab *v = NULL;
    const char *file = TOKJSON;
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, TOKJSON) >= sizeof(path))
        return cai_fail(CAI_ERR_INVALID_ARG, "%s: the path is too long", dir);
    cai_status st = file_read_all(path, HF_TOKJSON_MAX_FILE, &b);
    if (st == CAI_OK) {
        st = hf_vocab_from_tokjson_mem(b.data, b.len, n_vocab, &v);
    } else if (st == CAI_ERR_NOT_FOUND) {
        buf_free(&b);
        file = TIKTOKEN;
        snprintf(path, sizeof(path), "%s/%s", dir, TIKTOKEN);
        st = file_read_all(path, HF_TIKTOKEN_MAX_FILE, &b);
        if (st == CAI_OK)
            st = hf_vocab_from_tiktoken_mem(b.data, b.len, n_vocab, &v);
        else if (st == CAI_ERR_NOT_FOUND)
            st = cai_fail(CAI_ERR_NOT_FOUND, "%s: no tokenizer.json or qwen.tiktoken (vocab.json + merges.txt "
                                             "or tokenizer.model alone are not supported)", dir);
    }
    buf_free(&b);
    if (st != CAI_OK && v == NULL && file && strncmp(cai_errmsg(st), file, strlen(file)) == 0)
        st = cai_fail(st, "%s/%s", dir, cai_errmsg(st)); /* the reader names the file, not the folder */
    if (st == CAI_OK)
        st = apply_configs(v, dir);
    if (st != CAI_OK) {
        hf_vocab_free(v);
        return st;
    }
    *out = v;
    return CAI_OK;
}

/* ---- what the vocabulary gives ---------------------------------------------------- */

void hf_vocab_spec(const hf_vocab *v, tokenizer_spec *spec) {
    memset(spec, 0, sizeof(*spec));
    spec->model = TOKENIZER_BPE;
    spec->n_tokens = v->n;
    spec->text = v->text;
    spec->len = v->len;
    spec->type = v->type;
    spec->n_merges = v->n_merges;
    spec->merge = v->merge;
    spec->merge_len = v->merge_len;
    spec->bos = v->bos;
    spec->eos = v->eos;
    spec->eot = -1;
    spec->add_bos = v->add_bos;
}

cai_status hf_vocab_write_gguf(const hf_vocab *v, gguf_writer *w) {
    cai_status st = gguf_writer_str(w, "tokenizer.ggml.model", "gpt2");
    if (st == CAI_OK)
        st = gguf_writer_str(w, "tokenizer.ggml.pre", "qwen2");
    if (st == CAI_OK)
        st = gguf_writer_strs(w, "tokenizer.ggml.tokens", v->text, v->len, v->n);
    if (st == CAI_OK)
        st = gguf_writer_nums(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, v->type, v->n);
    if (st == CAI_OK)
        st = gguf_writer_strs(w, "tokenizer.ggml.merges", v->merge, v->merge_len, v->n_merges);
    if (st == CAI_OK && v->bos >= 0)
        st = gguf_writer_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)v->bos);
    if (st == CAI_OK && v->eos >= 0)
        st = gguf_writer_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)v->eos);
    if (st == CAI_OK && v->pad >= 0)
        st = gguf_writer_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)v->pad);
    if (st == CAI_OK)
        st = gguf_writer_bool(w, "tokenizer.ggml.add_bos_token", v->add_bos);
    if (st == CAI_OK && v->chat_template)
        st = gguf_writer_str(w, "tokenizer.chat_template", v->chat_template);
    return st;
}

const char *hf_vocab_source(const hf_vocab *v) { return v->source; }
size_t hf_vocab_n_tokens(const hf_vocab *v) { return v->n; }
size_t hf_vocab_n_merges(const hf_vocab *v) { return v->n_merges; }
int32_t hf_vocab_bos(const hf_vocab *v) { return v->bos; }
int32_t hf_vocab_eos(const hf_vocab *v) { return v->eos; }
int32_t hf_vocab_pad(const hf_vocab *v) { return v->pad; }
const char *hf_vocab_chat_template(const hf_vocab *v) { return v->chat_template; }

/* tokenizer.c - byte-level BPE with the Qwen2 split, and SentencePiece. */
#include "llm/tokenizer.h"

#include <stdlib.h>
#include <string.h>

#include "common/strmap.h"
#include "llm/unicode_tables.h"

/* ---- the tokenizer ---------------------------------------------------------- */

struct tokenizer {
    int model;
    size_t n;
    char **text;
    size_t *len;
    int32_t *type;
    float *score;
    strmap vocab, merges;
    char **merge; /* owned merge strings */
    size_t n_merges;
    int32_t *special; /* ids of tokens matched in text when parse_special */
    size_t n_special;
    int32_t bos, eos, eot;
    int add_bos;
    int32_t byte_tok[256]; /* SPM: <0xXX>; BPE: the single-byte token */
    uint32_t byte_cp[256]; /* byte-level BPE: byte -> code point */
    int16_t cp_byte[512];  /* and back (-1: not a mapped code point) */
};

static char *dup(const char *p, size_t n) {
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

/* GPT-2's reversible byte -> printable code point mapping. */
static void byte_map(tokenizer *t) {
    int next = 256;
    for (int i = 0; i < 512; i++)
        t->cp_byte[i] = -1;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        t->byte_cp[b] = printable ? (uint32_t)b : (uint32_t)next++;
        t->cp_byte[t->byte_cp[b]] = (int16_t)b;
    }
}

static size_t utf8_put(uint32_t cp, char *o) {
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* utf8_next decodes one code point at |p| (|n| bytes left). An invalid or
 * truncated sequence yields one byte with *cp = 0xFFFFFFFF. */
static size_t utf8_next(const uint8_t *p, size_t n, uint32_t *cp) {
    uint8_t c = p[0];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || len > n) {
        *cp = 0xFFFFFFFFu;
        return 1;
    }
    uint32_t v = len == 1 ? c : len == 2 ? (c & 0x1Fu) : len == 3 ? (c & 0x0Fu) : (c & 0x07u);
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80) {
            *cp = 0xFFFFFFFFu;
            return 1;
        }
        v = (v << 6) | (p[i] & 0x3Fu);
    }
    static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < min[len] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
        *cp = 0xFFFFFFFFu;
        return 1;
    }
    *cp = v;
    return len;
}

void tokenizer_free(tokenizer *t) {
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->n && t->text; i++)
        free(t->text[i]);
    for (size_t i = 0; i < t->n_merges && t->merge; i++)
        free(t->merge[i]);
    free(t->text), free(t->len), free(t->type), free(t->score), free(t->merge);
    strmap_free(&t->vocab), strmap_free(&t->merges), free(t->special);
    free(t);
}

cai_status tokenizer_new(const tokenizer_spec *sp, tokenizer **out) {
    *out = NULL;
    if ((sp->model != TOKENIZER_BPE && sp->model != TOKENIZER_SPM) || sp->n_tokens == 0 ||
        sp->n_tokens > (1u << 24))
        return cai_fail(CAI_ERR_INVALID_ARG, "bad tokenizer: model %d, %zu tokens", sp->model,
                        sp->n_tokens);
    tokenizer *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return CAI_ERR_NOMEM;
    t->model = sp->model;
    t->n = sp->n_tokens;
    t->bos = sp->bos, t->eos = sp->eos, t->eot = sp->eot;
    t->add_bos = sp->add_bos;
    t->text = calloc(t->n, sizeof(char *));
    t->len = calloc(t->n, sizeof(size_t));
    t->type = calloc(t->n, sizeof(int32_t));
    t->score = calloc(t->n, sizeof(float));
    t->special = calloc(t->n, sizeof(int32_t));
    t->merge = calloc(sp->n_merges ? sp->n_merges : 1, sizeof(char *));
    cai_status st = t->text && t->len && t->type && t->score && t->special && t->merge ? CAI_OK : CAI_ERR_NOMEM;
    if (st == CAI_OK)
        st = strmap_init(&t->vocab, t->n);
    if (st == CAI_OK)
        st = strmap_init(&t->merges, sp->n_merges);
    for (size_t i = 0; st == CAI_OK && i < t->n; i++) {
        if ((t->text[i] = dup(sp->text[i], sp->len[i])) == NULL) {
            st = CAI_ERR_NOMEM;
            break;
        }
        t->len[i] = sp->len[i];
        t->type[i] = sp->type ? sp->type[i] : TOKEN_NORMAL;
        t->score[i] = sp->score ? sp->score[i] : 0;
        (void)strmap_add(&t->vocab, t->text[i], t->len[i], (int32_t)i);
        /* matched in text: control tokens when allowed; user-defined ones
         * always (as llama.cpp does) are treated alike here: both only with
         * parse_special, so user content never turns into them */
        if ((t->type[i] == TOKEN_CONTROL || t->type[i] == TOKEN_USER_DEFINED) && t->len[i] > 0)
            t->special[t->n_special++] = (int32_t)i;
    }
    for (size_t i = 0; st == CAI_OK && i < sp->n_merges; i++) {
        if ((t->merge[i] = dup(sp->merge[i], sp->merge_len[i])) == NULL) {
            st = CAI_ERR_NOMEM;
            break;
        }
        t->n_merges = i + 1;
        (void)strmap_add(&t->merges, t->merge[i], sp->merge_len[i], (int32_t)i);
    }
    if (st != CAI_OK) {
        tokenizer_free(t);
        return st;
    }
    byte_map(t);
    for (int b = 0; b < 256; b++) {
        char s[8];
        size_t n;
        if (t->model == TOKENIZER_SPM)
            n = (size_t)snprintf(s, sizeof(s), "<0x%02X>", b);
        else
            n = utf8_put(t->byte_cp[b], s);
        t->byte_tok[b] = strmap_get(&t->vocab, s, n);
    }
    *out = t;
    return CAI_OK;
}

static int32_t key_id(const gguf_file *g, const char *key) {
    uint64_t v;
    return gguf_get_uint(g, key, &v) == CAI_OK && v < (1u << 24) ? (int32_t)v : -1;
}

cai_status tokenizer_from_gguf(const gguf_file *g, tokenizer **out) {
    *out = NULL;
    const char *model;
    gguf_arr toks, types, scores, merges;
    cai_status st = gguf_get_str(g, "tokenizer.ggml.model", &model);
    if (st != CAI_OK)
        return cai_fail(CAI_ERR_FORMAT, "the model has no tokenizer (tokenizer.ggml.model)");
    tokenizer_spec sp = {0};
    if (strcmp(model, "gpt2") == 0)
        sp.model = TOKENIZER_BPE;
    else if (strcmp(model, "llama") == 0)
        sp.model = TOKENIZER_SPM;
    else
        return cai_fail(CAI_ERR_UNSUPPORTED, "tokenizer '%.40s' is not supported (gpt2, llama)", model);
    const char *pre = NULL;
    if (sp.model == TOKENIZER_BPE && gguf_get_str(g, "tokenizer.ggml.pre", &pre) == CAI_OK &&
        strcmp(pre, "qwen2") != 0)
        return cai_fail(CAI_ERR_UNSUPPORTED, "BPE pre-tokenizer '%.40s' is not supported (qwen2 is)", pre);
    if ((st = gguf_get_arr(g, "tokenizer.ggml.tokens", &toks)) != CAI_OK || toks.type != GGUF_TYPE_STRING)
        return cai_fail(CAI_ERR_FORMAT, "tokenizer.ggml.tokens is missing or not strings");
    int have_types = gguf_get_arr(g, "tokenizer.ggml.token_type", &types) == CAI_OK;
    int have_scores = gguf_get_arr(g, "tokenizer.ggml.scores", &scores) == CAI_OK;
    int have_merges = gguf_get_arr(g, "tokenizer.ggml.merges", &merges) == CAI_OK;
    if ((have_types && (types.n != toks.n || types.type == GGUF_TYPE_STRING)) ||
        (have_scores && (scores.n != toks.n || scores.type == GGUF_TYPE_STRING)) ||
        (have_merges && merges.type != GGUF_TYPE_STRING))
        return cai_fail(CAI_ERR_FORMAT, "tokenizer arrays do not match the vocabulary");
    if (sp.model == TOKENIZER_BPE && !have_merges)
        return cai_fail(CAI_ERR_FORMAT, "a BPE tokenizer needs tokenizer.ggml.merges");
    size_t n = toks.n, nm = have_merges ? merges.n : 0;
    const char **text = malloc((n + nm + 1) * sizeof(char *));
    size_t *len = malloc((n + nm + 1) * sizeof(size_t));
    int32_t *type = malloc((n + 1) * sizeof(int32_t));
    float *score = malloc((n + 1) * sizeof(float));
    if (!text || !len || !type || !score) {
        st = CAI_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        text[i] = toks.strs[i].ptr;
        len[i] = toks.strs[i].len;
        type[i] = have_types ? (int32_t)gguf_arr_i64(&types, i) : TOKEN_NORMAL;
        score[i] = have_scores ? gguf_arr_f32(&scores, i) : 0;
    }
    for (size_t i = 0; i < nm; i++) {
        text[n + i] = merges.strs[i].ptr;
        len[n + i] = merges.strs[i].len;
    }
    sp.n_tokens = n;
    sp.text = text;
    sp.len = len;
    sp.type = type;
    sp.score = have_scores ? score : NULL;
    sp.n_merges = nm;
    sp.merge = text + n;
    sp.merge_len = len + n;
    sp.bos = key_id(g, "tokenizer.ggml.bos_token_id");
    sp.eos = key_id(g, "tokenizer.ggml.eos_token_id");
    sp.eot = key_id(g, "tokenizer.ggml.eot_token_id");
    int add_bos;
    sp.add_bos = gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &add_bos) == CAI_OK
                     ? add_bos
                     : sp.model == TOKENIZER_SPM;
    st = tokenizer_new(&sp, out);
out:
    free(text), free(len), free(type), free(score);
    return st;
}

size_t tokenizer_n_tokens(const tokenizer *t) { return t->n; }
int32_t tokenizer_bos(const tokenizer *t) { return t->bos; }
int32_t tokenizer_eos(const tokenizer *t) { return t->eos; }
int tokenizer_add_bos(const tokenizer *t) { return t->add_bos && t->bos >= 0; }

int32_t tokenizer_find(const tokenizer *t, const char *text) {
    return strmap_get(&t->vocab, text, strlen(text));
}

int tokenizer_is_control(const tokenizer *t, int32_t id) {
    return id >= 0 && (size_t)id < t->n && t->type[id] == TOKEN_CONTROL;
}

/* ---- output helpers ---------------------------------------------------------- */

typedef struct {
    int32_t **v;
    size_t *n, *cap;
} toks;

static cai_status push(toks *o, int32_t id) {
    if (*o->n == *o->cap) {
        size_t cap = *o->cap ? 2 * *o->cap : 64;
        int32_t *v = realloc(*o->v, cap * sizeof(int32_t));
        if (v == NULL)
            return CAI_ERR_NOMEM;
        *o->v = v;
        *o->cap = cap;
    }
    (*o->v)[(*o->n)++] = id;
    return CAI_OK;
}

/* ---- the Qwen2 pre-tokenizer ---------------------------------------------- */

enum { CP_OTHER, CP_LETTER, CP_NUMBER, CP_SPACE };

static int in_table(uint32_t cp, const unicode_range *r, size_t n) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < r[mid].lo)
            hi = mid;
        else if (cp > r[mid].hi)
            lo = mid + 1;
        else
            return 1;
    }
    return 0;
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static int cp_class(uint32_t cp) {
    if (cp == 0xFFFFFFFFu)
        return CP_OTHER;
    if (cp < 0x80) { /* fast path */
        if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z'))
            return CP_LETTER;
        if (cp >= '0' && cp <= '9')
            return CP_NUMBER;
        return (cp == ' ' || (cp >= 9 && cp <= 13)) ? CP_SPACE : CP_OTHER;
    }
    if (in_table(cp, UNICODE_LETTER, COUNT(UNICODE_LETTER)))
        return CP_LETTER;
    if (in_table(cp, UNICODE_NUMBER, COUNT(UNICODE_NUMBER)))
        return CP_NUMBER;
    if (in_table(cp, UNICODE_SPACE, COUNT(UNICODE_SPACE)))
        return CP_SPACE;
    return CP_OTHER;
}

typedef struct {
    uint32_t cp;
    uint32_t off; /* byte offset */
    uint8_t cls;
} cpinfo;

static uint32_t lower(uint32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* Length in code points of the match at |i|, following
 * (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}
 * | ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
static size_t qwen2_match(const cpinfo *c, size_t i, size_t n) {
#define CLS(k) ((k) < n ? c[k].cls : 255)
#define CP(k) ((k) < n ? c[k].cp : 0)
#define NL(k) (CP(k) == '\r' || CP(k) == '\n')
    if (CP(i) == '\'' && i + 1 < n) {
        uint32_t a = lower(CP(i + 1)), b = lower(CP(i + 2));
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
            return 3;
        if (a == 's' || a == 't' || a == 'm' || a == 'd')
            return 2;
    }
    if (CLS(i) == CP_LETTER || (!NL(i) && CLS(i) != CP_NUMBER && CLS(i) != CP_LETTER && CLS(i + 1) == CP_LETTER)) {
        size_t j = i + 1;
        while (CLS(j) == CP_LETTER)
            j++;
        return j - i;
    }
    if (CLS(i) == CP_NUMBER)
        return 1;
    size_t j = i + (CP(i) == ' ' && CLS(i + 1) == CP_OTHER);
    if (CLS(j) == CP_OTHER) {
        while (CLS(j) == CP_OTHER)
            j++;
        while (NL(j))
            j++;
        return j - i;
    }
    /* whitespace: i is a space-class code point here */
    size_t end = i;
    while (CLS(end) == CP_SPACE)
        end++;
    for (size_t k = end; k > i; k--)
        if (NL(k - 1))
            return k - i; /* \s*[\r\n]+ */
    if (end == n || end - i == 1)
        return end - i;   /* \s+(?!\S) at the end, or \s+ */
    return end - 1 - i;   /* leave one space for the next word */
#undef CLS
#undef CP
#undef NL
}

/* ---- byte-level BPE on one word ----------------------------------------------- */

typedef struct {
    int32_t prev, next;
    uint32_t off, len; /* in the mapped word */
} sym;

typedef struct {
    int32_t rank, left;
    uint32_t left_len, right_len; /* to detect stale entries */
} cand;

static void heap_push(cand *h, size_t *n, cand c) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h[p].rank < c.rank || (h[p].rank == c.rank && h[p].left <= c.left))
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = c;
}

static cand heap_pop(cand *h, size_t *n) {
    cand top = h[0], last = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const cand *best = &last;
        if (l < *n && (h[l].rank < best->rank || (h[l].rank == best->rank && h[l].left < best->left)))
            m = l, best = &h[l];
        if (r < *n && (h[r].rank < best->rank || (h[r].rank == best->rank && h[r].left < best->left)))
            m = r;
        if (m == i)
            break;
        h[i] = h[m];
        i = m;
    }
    if (*n > 0)
        h[i] = last;
    return top;
}

typedef struct {
    char *w;       /* the word mapped to byte-level code points, UTF-8 */
    size_t cap_w;
    sym *s;
    cand *h; /* stale entries stay: up to 3 per symbol */
    size_t cap_s, cap_h;
    char *key;
    size_t cap_key;
} bpe_scratch;

static cai_status grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap)
        return CAI_OK;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * elem);
    if (q == NULL)
        return CAI_ERR_NOMEM;
    *p = q;
    *cap = c;
    return CAI_OK;
}

static int32_t pair_rank(const tokenizer *t, bpe_scratch *b, const sym *l, const sym *r) {
    size_t n = l->len + 1 + r->len;
    if (grow((void **)&b->key, &b->cap_key, n, 1) != CAI_OK)
        return -1;
    memcpy(b->key, b->w + l->off, l->len);
    b->key[l->len] = ' ';
    memcpy(b->key + l->len + 1, b->w + r->off, r->len);
    return strmap_get(&t->merges, b->key, n);
}

static void try_pair(const tokenizer *t, bpe_scratch *b, size_t *nh, int32_t left) {
    const sym *l = &b->s[left];
    if (l->next < 0)
        return;
    const sym *r = &b->s[l->next];
    int32_t rank = pair_rank(t, b, l, r);
    if (rank >= 0)
        heap_push(b->h, nh, (cand){rank, left, l->len, r->len});
}

static cai_status bpe_word(const tokenizer *t, bpe_scratch *b, const uint8_t *p, size_t n, toks *o) {
    /* map bytes to code points; one symbol per byte */
    cai_status st = grow((void **)&b->w, &b->cap_w, 2 * n + 1, 1);
    if (st == CAI_OK)
        st = grow((void **)&b->s, &b->cap_s, n, sizeof(sym));
    if (st == CAI_OK)
        st = grow((void **)&b->h, &b->cap_h, 3 * n + 3, sizeof(cand));
    if (st != CAI_OK)
        return st;
    size_t wl = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = utf8_put(t->byte_cp[p[i]], b->w + wl);
        b->s[i] = (sym){(int32_t)i - 1, i + 1 < n ? (int32_t)i + 1 : -1, (uint32_t)wl, (uint32_t)k};
        wl += k;
    }
    /* The whole word may be a token (common words): skip merging. */
    int32_t whole = strmap_get(&t->vocab, b->w, wl);
    if (whole >= 0)
        return push(o, whole);
    size_t nh = 0;
    for (size_t i = 0; i + 1 < n; i++)
        try_pair(t, b, &nh, (int32_t)i);
    while (nh > 0) {
        cand c = heap_pop(b->h, &nh);
        sym *l = &b->s[c.left];
        if (l->len == 0 || l->len != c.left_len || l->next < 0 || b->s[l->next].len != c.right_len)
            continue; /* stale */
        sym *r = &b->s[l->next];
        l->len += r->len; /* symbols are adjacent in w */
        r->len = 0;
        l->next = r->next;
        if (r->next >= 0)
            b->s[r->next].prev = c.left;
        if (l->prev >= 0)
            try_pair(t, b, &nh, l->prev);
        try_pair(t, b, &nh, c.left);
    }
    for (int32_t i = 0; i >= 0 && st == CAI_OK; i = b->s[i].next) {
        int32_t id = strmap_get(&t->vocab, b->w + b->s[i].off, b->s[i].len);
        if (id >= 0) {
            st = push(o, id);
            continue;
        }
        /* not in the vocabulary: fall back to its bytes */
        for (size_t k = b->s[i].off; st == CAI_OK && k < b->s[i].off + b->s[i].len;) {
            uint32_t cp;
            k += utf8_next((const uint8_t *)b->w + k, b->s[i].off + b->s[i].len - k, &cp);
            int32_t bt = cp < 512 && t->cp_byte[cp] >= 0 ? t->byte_tok[t->cp_byte[cp]] : -1;
            if (bt >= 0)
                st = push(o, bt);
        }
    }
    return st;
}

static cai_status encode_bpe(const tokenizer *t, const uint8_t *p, size_t n, toks *o) {
    cpinfo *c = malloc((n + 1) * sizeof(cpinfo));
    bpe_scratch b = {0};
    if (c == NULL)
        return CAI_ERR_NOMEM;
    size_t m = 0;
    for (size_t off = 0; off < n; m++) {
        uint32_t cp;
        size_t k = utf8_next(p + off, n - off, &cp);
        c[m] = (cpinfo){cp, (uint32_t)off, (uint8_t)cp_class(cp)};
        off += k;
    }
    cai_status st = CAI_OK;
    for (size_t i = 0; i < m && st == CAI_OK;) {
        size_t k = qwen2_match(c, i, m);
        if (k == 0)
            k = 1;
        size_t b0 = c[i].off, b1 = i + k < m ? c[i + k].off : n;
        st = bpe_word(t, &b, p + b0, b1 - b0, o);
        i += k;
    }
    free(c), free(b.w), free(b.s), free(b.h), free(b.key);
    return st;
}

/* ---- SentencePiece ----------------------------------------------------------- */

static cai_status encode_spm(const tokenizer *t, const uint8_t *p, size_t n, int prefix_space, toks *o) {
    /* Replace spaces with U+2581 and add one in front. */
    size_t cap = 3 * n + 3, wl = 0;
    char *w = malloc(cap);
    sym *s = malloc((3 * n + 3) * sizeof(sym));
    cand *h = malloc((9 * n + 9) * sizeof(cand)); /* stale entries stay: up to 3 per symbol */
    cai_status st = w && s && h ? CAI_OK : CAI_ERR_NOMEM;
    if (st != CAI_OK)
        goto out;
    if (prefix_space)
        memcpy(w, "\xe2\x96\x81", 3), wl = 3;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == ' ')
            memcpy(w + wl, "\xe2\x96\x81", 3), wl += 3;
        else
            w[wl++] = (char)p[i];
    }
    size_t ns = 0;
    for (size_t off = 0; off < wl; ns++) {
        uint32_t cp;
        size_t k = utf8_next((const uint8_t *)w + off, wl - off, &cp);
        s[ns] = (sym){(int32_t)ns - 1, -1, (uint32_t)off, (uint32_t)k};
        if (ns > 0)
            s[ns - 1].next = (int32_t)ns;
        off += k;
    }
    /* Merge the adjacent pair whose union is the highest-scoring token. The
     * heap orders by rank; use the negated score scaled to an int. */
    size_t nh = 0;
#define SPM_TRY(li)                                                                          \
    do {                                                                                     \
        if ((li) >= 0 && s[(li)].next >= 0) {                                                \
            const sym *l_ = &s[(li)], *r_ = &s[l_->next];                                    \
            int32_t id_ = strmap_get(&t->vocab, w + l_->off, l_->len + r_->len);                \
            if (id_ >= 0)                                                                    \
                heap_push(h, &nh, (cand){(int32_t)(-t->score[id_] * 1000.0f), (li), l_->len, \
                                         r_->len});                                          \
        }                                                                                    \
    } while (0)
    for (size_t i = 0; i + 1 < ns; i++)
        SPM_TRY((int32_t)i);
    while (nh > 0) {
        cand c = heap_pop(h, &nh);
        sym *l = &s[c.left];
        if (l->len == 0 || l->len != c.left_len || l->next < 0 || s[l->next].len != c.right_len)
            continue;
        sym *r = &s[l->next];
        l->len += r->len;
        r->len = 0;
        l->next = r->next;
        if (r->next >= 0)
            s[r->next].prev = c.left;
        SPM_TRY(l->prev);
        SPM_TRY(c.left);
    }
#undef SPM_TRY
    for (int32_t i = ns ? 0 : -1; i >= 0 && st == CAI_OK; i = s[i].next) {
        int32_t id = strmap_get(&t->vocab, w + s[i].off, s[i].len);
        if (id >= 0) {
            st = push(o, id);
            continue;
        }
        for (size_t k = 0; k < s[i].len && st == CAI_OK; k++) {
            int32_t bt = t->byte_tok[(uint8_t)w[s[i].off + k]];
            if (bt >= 0)
                st = push(o, bt);
        }
    }
out:
    free(w), free(s), free(h);
    return st;
}

/* ---- encode: special tokens first, then the model ----------------------------- */

cai_status tokenizer_encode(const tokenizer *t, const char *text, size_t len, int parse_special,
                            int32_t **out, size_t *n, size_t *cap) {
    toks o = {out, n, cap};
    const uint8_t *p = (const uint8_t *)text;
    size_t start = 0;
    cai_status st = CAI_OK;
    int first = 1;
    for (size_t i = 0; i <= len && st == CAI_OK;) {
        int32_t hit = -1;
        if (parse_special && i < len) {
            size_t best = 0;
            for (size_t k = 0; k < t->n_special; k++) {
                int32_t id = t->special[k];
                if (t->len[id] > best && t->len[id] <= len - i && memcmp(p + i, t->text[id], t->len[id]) == 0)
                    hit = id, best = t->len[id];
            }
        }
        if (hit < 0 && i < len) {
            i++;
            continue;
        }
        if (i > start) {
            st = t->model == TOKENIZER_BPE ? encode_bpe(t, p + start, i - start, &o)
                                           : encode_spm(t, p + start, i - start, first, &o);
            first = 0;
        }
        if (st == CAI_OK && hit >= 0) {
            st = push(&o, hit);
            first = 0;
            i += t->len[hit];
            start = i;
            continue;
        }
        break;
    }
    return st;
}

/* ---- decoding ------------------------------------------------------------------ */

const char *tokenizer_piece(const tokenizer *t, int32_t id, size_t *len, uint8_t byte_buf[1]) {
    if (id < 0 || (size_t)id >= t->n)
        return NULL;
    if (t->type[id] == TOKEN_BYTE && t->model == TOKENIZER_SPM && t->len[id] == 6) {
        byte_buf[0] = (uint8_t)strtol(t->text[id] + 3, NULL, 16);
        *len = 1;
        return (const char *)byte_buf;
    }
    *len = t->len[id];
    return t->text[id];
}

cai_status tokenizer_token_bytes(const tokenizer *t, int32_t id, buf *out) {
    uint8_t b1[1];
    size_t n;
    const char *p = tokenizer_piece(t, id, &n, b1);
    if (p == NULL)
        return cai_fail(CAI_ERR_INVALID_ARG, "token %d out of the vocabulary", id);
    int special = t->type[id] == TOKEN_CONTROL || t->type[id] == TOKEN_USER_DEFINED;
    cai_status st = CAI_OK;
    for (size_t i = 0; i < n && st == CAI_OK;) {
        uint32_t cp;
        size_t k = utf8_next((const uint8_t *)p + i, n - i, &cp);
        if (t->model == TOKENIZER_BPE && !special && cp < 512 && t->cp_byte[cp] >= 0) {
            uint8_t b = (uint8_t)t->cp_byte[cp];
            st = buf_append(out, &b, 1);
        } else if (t->model == TOKENIZER_SPM && !special && k == 3 && memcmp(p + i, "\xe2\x96\x81", 3) == 0) {
            st = buf_append(out, " ", 1);
        } else {
            st = buf_append(out, p + i, k);
        }
        i += k;
    }
    return st;
}

void detok_init(detok *d) {
    memset(d, 0, sizeof(*d));
    d->first = 1;
}

/* Appends the bytes of |p| (|n|), completing or holding back characters. */
static cai_status emit(detok *d, const uint8_t *p, size_t n, buf *out) {
    cai_status st = CAI_OK;
    for (size_t i = 0; i < n && st == CAI_OK; i++) {
        d->pending[d->n_pending++] = p[i];
        uint32_t cp;
        size_t k = utf8_next(d->pending, d->n_pending, &cp);
        uint8_t c = d->pending[0];
        size_t need = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (cp != 0xFFFFFFFFu) {
            st = buf_append(out, d->pending, k);
            d->n_pending = 0;
        } else if (need == 0 || d->n_pending >= need || (d->n_pending > 1 && (p[i] & 0xC0) != 0x80)) {
            /* invalid: one replacement character, then retry the rest */
            uint8_t rest[4];
            size_t nr = d->n_pending - 1;
            memcpy(rest, d->pending + 1, nr);
            d->n_pending = 0;
            st = buf_append(out, "\xef\xbf\xbd", 3);
            if (st == CAI_OK && nr)
                st = emit(d, rest, nr, out);
        }
    }
    return st;
}

cai_status detok_push(detok *d, const tokenizer *t, int32_t id, buf *out) {
    uint8_t b1[1];
    size_t n;
    const char *p = tokenizer_piece(t, id, &n, b1);
    if (p == NULL)
        return cai_fail(CAI_ERR_INVALID_ARG, "token %d out of the vocabulary", id);
    cai_status st = CAI_OK;
    if (t->model == TOKENIZER_BPE && t->type[id] != TOKEN_CONTROL && t->type[id] != TOKEN_USER_DEFINED) {
        for (size_t i = 0; i < n && st == CAI_OK;) {
            uint32_t cp;
            i += utf8_next((const uint8_t *)p + i, n - i, &cp);
            if (cp < 512 && t->cp_byte[cp] >= 0) {
                uint8_t b = (uint8_t)t->cp_byte[cp];
                st = emit(d, &b, 1, out);
            }
        }
    } else if (t->model == TOKENIZER_SPM && t->type[id] != TOKEN_CONTROL) {
        for (size_t i = 0; i < n && st == CAI_OK;) {
            if (n - i >= 3 && memcmp(p + i, "\xe2\x96\x81", 3) == 0) {
                if (!d->first)
                    st = emit(d, (const uint8_t *)" ", 1, out);
                i += 3;
            } else {
                st = emit(d, (const uint8_t *)p + i, 1, out);
                i++;
            }
            d->first = 0;
        }
    } else {
        st = emit(d, (const uint8_t *)p, n, out);
    }
    return st;
}

cai_status detok_flush(detok *d, buf *out) {
    cai_status st = d->n_pending ? buf_append(out, "\xef\xbf\xbd", 3) : CAI_OK;
    d->n_pending = 0;
    return st;
}

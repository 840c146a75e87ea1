/* session.c - one generation: prompt feeding, sampling, stops, text. */
#include "llm/session.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "llm/matmul.h"
#include "llm/tokenizer.h"

const int LLM_PREFILL_MIN = MATMUL_TILE_MIN;

struct llm_session {
    const llm_engine *e;
    const tokenizer *tok;
    int n_vocab;
    llm_gen_params p;
    char *stop[LLM_MAX_STOP];
    size_t max_stop;
    sampler *smp;
    int32_t *prompt;
    int n_prompt;
    /* bound */
    llm_ctx *ctx;
    int seq;
    int n_fed;         /* prompt tokens fed (reused ones included) */
    int n_reused;
    int prefill;       /* the prompt tokens still to feed take the prefill kernels */
    int32_t last;      /* the token sampled last, -1 before the first */
    int last_fed;
    int n_gen;
    llm_finish finish;
    /* text */
    detok d;
    buf text;          /* all text so far */
    size_t shown;      /* bytes of text handed out in deltas */
    float *work;       /* constrained sampling: a copy of the logits */
    int32_t *order;
};

cai_status llm_session_new(const llm_engine *e, const llm_gen_params *p, const int32_t *prompt,
                           int n_prompt, llm_session **out) {
    *out = NULL;
    const llm_hparams *hp = llm_model_hparams(llm_engine_model(e));
    if (n_prompt <= 0)
        return cai_fail(CAI_ERR_INVALID_ARG, "the prompt is empty");
    if (p->n_stop < 0 || p->n_stop > LLM_MAX_STOP)
        return cai_fail(CAI_ERR_INVALID_ARG, "at most %d stop strings", LLM_MAX_STOP);
    for (int i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || prompt[i] >= hp->n_vocab)
            return cai_fail(CAI_ERR_INVALID_ARG, "token %d is not in the vocabulary", prompt[i]);
    llm_session *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return CAI_ERR_NOMEM;
    s->e = e;
    s->tok = llm_engine_tokenizer(e);
    s->n_vocab = hp->n_vocab;
    s->p = *p;
    s->p.stop = NULL;
    s->seq = -1;
    s->last = -1;
    buf_init(&s->text, 0);
    detok_init(&s->d);
    s->d.first = !p->continues_prompt;
    s->n_prompt = n_prompt;
    s->prompt = malloc((size_t)n_prompt * sizeof(int32_t));
    cai_status st = s->prompt ? sampler_new(&p->sample, hp->n_vocab, &s->smp) : CAI_ERR_NOMEM;
    if (st == CAI_OK)
        memcpy(s->prompt, prompt, (size_t)n_prompt * sizeof(int32_t));
    if (st == CAI_OK && p->allow) { /* constrained sampling's copies, made once */
        s->work = malloc((size_t)hp->n_vocab * sizeof(float));
        s->order = malloc((size_t)hp->n_vocab * sizeof(int32_t));
        st = s->work && s->order ? CAI_OK : CAI_ERR_NOMEM;
    }
    for (int i = 0; st == CAI_OK && i < p->n_stop; i++) {
        size_t k = strlen(p->stop[i]);
        if (k == 0)
            st = cai_fail(CAI_ERR_INVALID_ARG, "a stop string is empty");
        else if ((s->stop[i] = strdup(p->stop[i])) == NULL)
            st = CAI_ERR_NOMEM;
        s->max_stop = k > s->max_stop ? k : s->max_stop;
    }
    if (st != CAI_OK) {
        llm_session_free(s);
        return st;
    }
    *out = s;
    return CAI_OK;
}

void llm_session_free(llm_session *s) {
    if (s == NULL)
        return;
    for (int i = 0; i < LLM_MAX_STOP; i++)
        free(s->stop[i]);
    sampler_free(s->smp);
    free(s->prompt);
    buf_free(&s->text);
    free(s->work);
    free(s->order);
    free(s);
}

void llm_session_bind(llm_session *s, llm_ctx *ctx, int seq, int reuse_prefix) {
    int same = 0;
    if (reuse_prefix) {
        const int32_t *cached = llm_seq_tokens(ctx, seq);
        int n_cached = llm_seq_len(ctx, seq);
        while (same < n_cached && same + 1 < s->n_prompt && cached[same] == s->prompt[same])
            same++;
    }
    llm_seq_truncate(ctx, seq, same);
    s->ctx = ctx;
    s->seq = seq;
    s->n_fed = s->n_reused = same;
    s->prefill = s->n_prompt - same >= LLM_PREFILL_MIN;
}

int llm_session_prefilling(const llm_session *s) { return s->n_fed < s->n_prompt; }

int llm_session_next_tokens(llm_session *s, int max, int32_t *token, uint8_t *logits,
                            uint8_t *prefill) {
    if (s->finish != LLM_FINISH_NONE || s->ctx == NULL)
        return 0;
    if (!llm_session_prefilling(s)) {
        if (s->last < 0 || s->last_fed)
            return 0;
        token[0] = s->last, logits[0] = 1, prefill[0] = 0;
        s->last_fed = 1;
        return 1;
    }
    int k = s->n_prompt - s->n_fed;
    k = k < max ? k : max;
    for (int j = 0; j < k; j++) {
        token[j] = s->prompt[s->n_fed + j];
        logits[j] = s->n_fed + j == s->n_prompt - 1;
        prefill[j] = (uint8_t)s->prefill;
    }
    s->n_fed += k;
    return k > 0 ? k : 0;
}

static int is_eog(const llm_session *s, int32_t t) { return llm_engine_is_eog(s->e, t); }

static int allowed(const llm_session *s, int32_t t) {
    return s->p.allow(s->p.allow_arg, t, is_eog(s, t));
}

static int cmp_logit_desc(const void *a, const void *b, void *arg) {
    const float *w = arg;
    float x = w[*(const int32_t *)a], y = w[*(const int32_t *)b];
    return x < y ? 1 : x > y ? -1 : 0;
}

/* The first allowed token: the sample if allowed, else up to 16 redraws
 * without the refused ones, else the most likely allowed token; -1 if none
 * is allowed. */
static int32_t constrained(llm_session *s, const float *l, int32_t t) {
    if (allowed(s, t))
        return t;
    memcpy(s->work, l, (size_t)s->n_vocab * sizeof(float));
    for (int i = 0; i < 16; i++) {
        s->work[t] = -INFINITY;
        t = sampler_sample(s->smp, s->work);
        if (s->work[t] != -INFINITY && allowed(s, t))
            return t;
    }
    for (int32_t i = 0; i < s->n_vocab; i++)
        s->order[i] = i;
    qsort_r(s->order, (size_t)s->n_vocab, sizeof(int32_t), cmp_logit_desc, s->work);
    for (int32_t i = 0; i < s->n_vocab; i++) {
        int32_t c = s->order[i];
        if (s->work[c] != -INFINITY && allowed(s, c))
            return c;
    }
    return -1;
}

/* Bytes of text that may be shown: all but a tail that could still grow
 * into a stop string, and never half a character. */
static size_t safe_len(const llm_session *s) {
    size_t n = s->text.len;
    if (s->max_stop > 1)
        n = n > s->max_stop - 1 ? n - (s->max_stop - 1) : 0;
    while (n > s->shown && n < s->text.len && (s->text.data[n] & 0xC0) == 0x80)
        n--;
    return n;
}

/* Cuts the text at the first stop string; returns whether one matched. */
static int find_stop(llm_session *s) {
    size_t from = s->shown > s->max_stop ? s->shown - s->max_stop : 0;
    for (int i = 0; i < s->p.n_stop; i++) {
        size_t k = strlen(s->stop[i]);
        for (size_t p = from; p + k <= s->text.len; p++) {
            if (memcmp(s->text.data + p, s->stop[i], k) == 0) {
                s->text.len = p;
                return 1;
            }
        }
    }
    return 0;
}

/* Hands out the text from |shown| to |upto| in |out|. */
static void show(llm_session *s, size_t upto, llm_delta *out) {
    out->text = (const char *)s->text.data + s->shown;
    out->len = upto > s->shown ? upto - s->shown : 0;
    out->text = out->len ? out->text : "";
    s->shown = upto > s->shown ? upto : s->shown;
}

void llm_session_end(llm_session *s, llm_finish why, llm_delta *out) {
    *out = (llm_delta){.token = -1, .text = ""};
    if (s->finish != LLM_FINISH_NONE) {
        if (why == LLM_FINISH_STOP)
            s->finish = why;
        out->finish = s->finish;
        return;
    }
    if (why != LLM_FINISH_CANCELLED && why != LLM_FINISH_ERROR) {
        (void)detok_flush(&s->d, &s->text);
        if (s->p.n_stop && find_stop(s))
            why = LLM_FINISH_STOP;
    }
    s->finish = why;
    show(s, s->text.len, out);
    out->finish = why;
}

cai_status llm_session_sample(llm_session *s, const float *logits, llm_delta *out) {
    *out = (llm_delta){.token = -1, .text = "", .finish = s->finish};
    if (s->finish != LLM_FINISH_NONE)
        return CAI_OK;
    int32_t t = sampler_sample(s->smp, logits);
    if ((s->p.allow && (t = constrained(s, logits, t)) < 0) || is_eog(s, t)) {
        llm_session_end(s, LLM_FINISH_STOP, out);
        return CAI_OK;
    }
    sampler_accept(s->smp, t);
    s->last = t;
    s->last_fed = 0;
    s->n_gen++;
    out->token = t;
    out->logits = logits;
    cai_status st = detok_push(&s->d, s->tok, t, &s->text);
    if (st != CAI_OK)
        return st;
    if (s->p.n_stop && find_stop(s)) {
        s->finish = LLM_FINISH_STOP;
        show(s, s->text.len, out);
        out->finish = LLM_FINISH_STOP;
        return CAI_OK;
    }
    show(s, safe_len(s), out);
    return CAI_OK;
}

llm_finish llm_session_limit(const llm_session *s) {
    if (s->ctx && llm_seq_len(s->ctx, s->seq) >= llm_ctx_n_ctx(s->ctx))
        return LLM_FINISH_CONTEXT;
    if (s->p.max_tokens > 0 && s->n_gen >= s->p.max_tokens)
        return LLM_FINISH_LENGTH;
    return LLM_FINISH_NONE;
}

cai_status llm_session_step(llm_session *s, llm_delta *out) {
    *out = (llm_delta){.token = -1, .text = "", .finish = s->finish};
    if (s->finish != LLM_FINISH_NONE)
        return CAI_OK;
    if (s->ctx == NULL)
        return cai_fail(CAI_ERR_INVALID_ARG, "the session is not bound to a context");
    int n = llm_session_prefilling(s) ? s->n_prompt - s->n_fed : 1;
    int32_t one[2];
    uint8_t one_flags[2];
    int32_t *tok = n == 1 ? one : malloc((size_t)n * (sizeof(int32_t) * 2 + 2));
    if (tok == NULL)
        return CAI_ERR_NOMEM;
    int32_t *seq = tok + n;
    uint8_t *want = n == 1 ? one_flags : (uint8_t *)(seq + n), *prefill = want + n;
    int fed = s->n_fed, last_fed = s->last_fed;
    n = llm_session_next_tokens(s, n, tok, want, prefill);
    for (int i = 0; i < n; i++)
        seq[i] = s->seq;
    const float *logits = NULL;
    llm_batch b = {n, tok, seq, want, prefill};
    cai_status st = n > 0 ? llm_decode(s->ctx, &b, &logits)
                          : cai_fail(CAI_ERR_INTERNAL, "the session has no token to feed");
    if (tok != one)
        free(tok);
    if (st != CAI_OK) { /* nothing was fed */
        s->n_fed = fed, s->last_fed = last_fed;
        return st;
    }
    size_t from = s->shown;
    if ((st = llm_session_sample(s, logits, out)) != CAI_OK || out->finish != LLM_FINISH_NONE)
        return st;
    llm_finish why = llm_session_limit(s);
    if (why != LLM_FINISH_NONE) {
        llm_delta tail;
        llm_session_end(s, why, &tail);
        /* The token's text and the tail, contiguous in the (maybe moved) text. */
        out->text = s->shown > from ? (const char *)s->text.data + from : "";
        out->len = s->shown - from;
        out->finish = tail.finish;
    }
    return CAI_OK;
}

cai_status llm_session_feed(llm_session *s, const int32_t *tokens, int n, const float **out_logits) {
    if (s->ctx == NULL)
        return cai_fail(CAI_ERR_INVALID_ARG, "the session is not bound to a context");
    if (n <= 0)
        return cai_fail(CAI_ERR_INVALID_ARG, "no tokens to feed");
    int32_t *seq = malloc((size_t)n * sizeof(int32_t));
    if (seq == NULL)
        return CAI_ERR_NOMEM;
    for (int i = 0; i < n; i++)
        seq[i] = s->seq;
    llm_batch b = {n, tokens, seq, NULL, NULL};
    cai_status st = llm_decode(s->ctx, &b, out_logits);
    free(seq);
    return st;
}

const char *llm_session_text(const llm_session *s, size_t *len) {
    *len = s->text.len;
    return s->text.len ? (const char *)s->text.data : "";
}

llm_finish llm_session_finish(const llm_session *s) { return s->finish; }
int llm_session_n_prompt(const llm_session *s) { return s->n_prompt; }
int llm_session_n_generated(const llm_session *s) { return s->n_gen; }
int llm_session_n_reused(const llm_session *s) { return s->n_reused; }

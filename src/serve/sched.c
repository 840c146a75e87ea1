/* sched.c - the engine thread: a FIFO queue, slots, batched steps. */
#include "serve/sched.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "llm/matmul.h"

#define PREFILL_CHUNK 256 /* prompt tokens per step, across all slots */

struct sched_req {
    atomic_int refs;
    atomic_int cancel;
    sched_params p;
    int32_t *prompt;
    sched_req *next; /* queue link */
    /* engine side */
    int slot, n_fed, n_gen;
    int32_t last;
    sampler *smp;
    double t_submit, t_start, t_first;
};

struct sched {
    llm_ctx *ctx;
    int n_slots, max_queue, n_vocab;
    int32_t *eog;
    int n_eog;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    sched_req *head, *tail; /* waiting */
    int queued;
    sched_req **slot;       /* running, by sequence id; engine thread only */
    int active;
    sched_stats stats;
    /* batch scratch */
    int32_t *tok, *seq;
    uint8_t *want;
    uint8_t *prefill; /* llm_batch.prefill: by what each token is, never by load */
    float *work; /* a copy of one row of logits, for constrained sampling */
    int32_t *order;
    sched_req **owner;
};

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

void sched_req_release(sched_req *r) {
    if (r == NULL || atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    sampler_free(r->smp);
    free(r->prompt);
    free(r);
}

void sched_cancel(sched_req *r) { atomic_store(&r->cancel, 1); }

static void finish(sched *s, sched_req *r, sched_finish why) {
    double t = now_s();
    sched_usage u = {
        .prompt_tokens = r->p.n_prompt,
        .completion_tokens = r->n_gen,
        .queue_s = (r->t_start ? r->t_start : t) - r->t_submit,
        .prefill_s = r->t_first ? r->t_first - r->t_start : 0,
        .total_s = t - r->t_submit,
    };
    if (r->slot >= 0) {
        llm_seq_truncate(s->ctx, r->slot, 0);
        s->slot[r->slot] = NULL;
        r->slot = -1;
        pthread_mutex_lock(&s->mu);
        s->active--;
        s->stats.completion_tokens += (uint64_t)r->n_gen;
        pthread_mutex_unlock(&s->mu);
    }
    r->p.on_done(r->p.arg, why, &u);
    sched_req_release(r);
}

static int is_eog(const sched *s, int32_t t) {
    for (int i = 0; i < s->n_eog; i++)
        if (s->eog[i] == t)
            return 1;
    return 0;
}

/* Move waiting requests into free slots, oldest first; drop cancelled ones. */
static void admit(sched *s) {
    for (int i = 0; i < s->n_slots; i++) {
        if (s->slot[i])
            continue;
        pthread_mutex_lock(&s->mu);
        sched_req *r = s->head;
        if (r) {
            s->head = r->next;
            if (s->head == NULL)
                s->tail = NULL;
            s->queued--;
            if (!atomic_load(&r->cancel)) {
                s->active++;
                r->slot = i;
                s->slot[i] = r;
            }
        }
        pthread_mutex_unlock(&s->mu);
        if (r == NULL)
            break;
        r->t_start = now_s();
        if (r->slot < 0) {
            finish(s, r, SCHED_CANCELLED);
            i--; /* the slot is still free */
        }
    }
}

static int cmp_logit_desc(const void *a, const void *b, void *arg) {
    const float *w = arg;
    float x = w[*(const int32_t *)a], y = w[*(const int32_t *)b];
    return x < y ? 1 : x > y ? -1 : 0;
}

/* The first allowed token: the sample if allowed, else up to 16 redraws
 * without the refused ones, else the most likely allowed token; -1 if
 * none is allowed. */
static int32_t constrained(sched *s, sched_req *r, const float *l, int32_t t) {
    if (r->p.allow(r->p.arg, t, is_eog(s, t)))
        return t;
    memcpy(s->work, l, (size_t)s->n_vocab * sizeof(float));
    for (int i = 0; i < 16; i++) {
        s->work[t] = -INFINITY;
        t = sampler_sample(r->smp, s->work);
        if (s->work[t] != -INFINITY && r->p.allow(r->p.arg, t, is_eog(s, t)))
            return t;
    }
    for (int32_t i = 0; i < s->n_vocab; i++)
        s->order[i] = i;
    qsort_r(s->order, (size_t)s->n_vocab, sizeof(int32_t), cmp_logit_desc, s->work);
    for (int32_t i = 0; i < s->n_vocab; i++) {
        int32_t c = s->order[i];
        if (s->work[c] != -INFINITY && r->p.allow(r->p.arg, c, is_eog(s, c)))
            return c;
    }
    return -1;
}

static void step(sched *s) {
    int n = 0, budget = PREFILL_CHUNK;
    /* Decoding slots first: one token each. Then prompt chunks. */
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < s->n_slots; i++) {
            sched_req *r = s->slot[i];
            if (r == NULL)
                continue;
            int prefill = r->n_fed < r->p.n_prompt;
            if (pass == 0 && !prefill) {
                s->tok[n] = r->last, s->seq[n] = i, s->want[n] = 1, s->prefill[n] = 0, s->owner[n++] = r;
            } else if (pass == 1 && prefill && budget > 0) {
                int k = r->p.n_prompt - r->n_fed;
                k = k < budget ? k : budget;
                for (int j = 0; j < k; j++) {
                    s->tok[n] = r->prompt[r->n_fed + j];
                    s->seq[n] = i;
                    s->want[n] = r->n_fed + j == r->p.n_prompt - 1;
                    s->prefill[n] = r->p.n_prompt >= MATMUL_TILE_MIN;
                    s->owner[n++] = r;
                }
                r->n_fed += k;
                budget -= k;
            }
        }
    }
    if (n == 0)
        return;
    const float *logits;
    llm_batch b = {n, s->tok, s->seq, s->want, s->prefill};
    cai_status st = llm_decode(s->ctx, &b, &logits);
    s->stats.steps++;
    if (st != CAI_OK) {
        log_error("forward pass failed: %s", cai_errmsg(st));
        for (int i = 0; i < n; i++)
            if (s->owner[i] && s->owner[i]->slot >= 0)
                finish(s, s->owner[i], st == CAI_ERR_LIMIT ? SCHED_LENGTH : SCHED_ERROR);
        return;
    }
    int row = 0;
    for (int i = 0; i < n; i++) {
        if (!s->want[i])
            continue;
        const float *l = logits + (size_t)row++ * (size_t)s->n_vocab;
        sched_req *r = s->owner[i];
        if (r->t_first == 0)
            r->t_first = now_s();
        int32_t t = sampler_sample(r->smp, l);
        if (r->p.allow && (t = constrained(s, r, l, t)) < 0) {
            finish(s, r, SCHED_STOP);
            continue;
        }
        if (is_eog(s, t)) {
            finish(s, r, SCHED_STOP);
            continue;
        }
        sampler_accept(r->smp, t);
        r->last = t;
        r->n_gen++;
        if (r->p.on_token(r->p.arg, t, r->p.want_logits ? l : NULL)) {
            finish(s, r, SCHED_STOP);
        } else if ((r->p.max_tokens > 0 && r->n_gen >= r->p.max_tokens) ||
                   llm_seq_len(s->ctx, r->slot) >= llm_ctx_n_ctx(s->ctx)) {
            finish(s, r, SCHED_LENGTH);
        }
    }
}

static void *engine_main(void *arg) {
    sched *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (!s->stop && s->head == NULL && s->active == 0)
            pthread_cond_wait(&s->cv, &s->mu);
        int stop = s->stop;
        pthread_mutex_unlock(&s->mu);
        if (stop)
            break;
        for (int i = 0; i < s->n_slots; i++)
            if (s->slot[i] && atomic_load(&s->slot[i]->cancel))
                finish(s, s->slot[i], SCHED_CANCELLED);
        admit(s);
        step(s);
    }
    for (int i = 0; i < s->n_slots; i++)
        if (s->slot[i])
            finish(s, s->slot[i], SCHED_CANCELLED);
    for (sched_req *r = s->head, *next; r; r = next) {
        next = r->next;
        finish(s, r, SCHED_CANCELLED);
    }
    s->head = s->tail = NULL;
    return NULL;
}

cai_status sched_new(llm_ctx *ctx, int n_slots, int max_queue, const int32_t *eog, int n_eog,
                     sched **out) {
    *out = NULL;
    if (n_slots <= 0 || max_queue < 0 || n_eog < 0)
        return cai_fail(CAI_ERR_INVALID_ARG, "bad slot or queue size");
    sched *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return CAI_ERR_NOMEM;
    size_t cap = (size_t)n_slots + PREFILL_CHUNK;
    s->ctx = ctx;
    s->n_slots = n_slots;
    s->max_queue = max_queue;
    s->n_vocab = llm_model_hparams(llm_ctx_model(ctx))->n_vocab;
    s->stats.n_slots = n_slots;
    s->eog = malloc(((size_t)n_eog + 1) * sizeof(int32_t));
    s->slot = calloc((size_t)n_slots, sizeof(*s->slot));
    s->tok = malloc(cap * sizeof(int32_t));
    s->seq = malloc(cap * sizeof(int32_t));
    s->want = malloc(cap);
    s->prefill = malloc(cap);
    s->owner = malloc(cap * sizeof(*s->owner));
    s->work = malloc((size_t)s->n_vocab * sizeof(float));
    s->order = malloc((size_t)s->n_vocab * sizeof(int32_t));
    if (!s->eog || !s->slot || !s->tok || !s->seq || !s->want || !s->prefill || !s->owner || !s->work || !s->order) {
        free(s->eog), free(s->slot), free(s->tok), free(s->seq), free(s->want), free(s->prefill), free(s->owner);
        free(s->work), free(s->order);
        free(s);
        return CAI_ERR_NOMEM;
    }
    if (n_eog)
        memcpy(s->eog, eog, (size_t)n_eog * sizeof(int32_t));
    s->n_eog = n_eog;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (pthread_create(&s->thread, NULL, engine_main, s) != 0) {
        s->thread = 0;
        sched_free(s);
        return cai_fail(CAI_ERR_INTERNAL, "cannot start the engine thread");
    }
    *out = s;
    return CAI_OK;
}

void sched_free(sched *s) {
    if (s == NULL)
        return;
    if (s->thread) {
        pthread_mutex_lock(&s->mu);
        s->stop = 1;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
    }
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s->eog), free(s->slot), free(s->tok), free(s->seq), free(s->want), free(s->prefill), free(s->owner);
    free(s->work), free(s->order);
    free(s);
}

cai_status sched_submit(sched *s, const sched_params *p, sched_req **out) {
    *out = NULL;
    int n_ctx = llm_ctx_n_ctx(s->ctx);
    if (p->n_prompt <= 0)
        return cai_fail(CAI_ERR_INVALID_ARG, "the prompt is empty");
    if (p->n_prompt >= n_ctx)
        return cai_fail(CAI_ERR_INVALID_ARG, "the prompt has %d tokens; this server's context "
                        "holds %d", p->n_prompt, n_ctx);
    for (int i = 0; i < p->n_prompt; i++)
        if (p->prompt[i] < 0 || p->prompt[i] >= s->n_vocab)
            return cai_fail(CAI_ERR_INVALID_ARG, "token %d is not in the vocabulary", p->prompt[i]);
    sched_req *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return CAI_ERR_NOMEM;
    r->p = *p;
    r->slot = -1;
    r->prompt = malloc((size_t)p->n_prompt * sizeof(int32_t));
    cai_status st = r->prompt ? sampler_new(&p->sample, s->n_vocab, &r->smp) : CAI_ERR_NOMEM;
    if (st != CAI_OK) {
        free(r->prompt);
        free(r);
        return st;
    }
    memcpy(r->prompt, p->prompt, (size_t)p->n_prompt * sizeof(int32_t));
    r->p.prompt = r->prompt;
    atomic_init(&r->refs, 2);
    atomic_init(&r->cancel, 0);
    r->t_submit = now_s();
    pthread_mutex_lock(&s->mu);
    /* Counted together: a request the engine has not moved into its slot
     * yet still takes one of the n_slots + max_queue places. */
    if (s->queued + s->active >= s->n_slots + s->max_queue) {
        int active = s->active, queued = s->queued;
        pthread_mutex_unlock(&s->mu);
        sampler_free(r->smp);
        free(r->prompt);
        free(r);
        return cai_fail(CAI_ERR_LIMIT, "the server is busy (%d generating, %d waiting): try "
                        "again later", active, queued);
    }
    if (s->tail)
        s->tail->next = r;
    else
        s->head = r;
    s->tail = r;
    s->queued++;
    s->stats.requests++;
    s->stats.prompt_tokens += (uint64_t)p->n_prompt;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    *out = r;
    return CAI_OK;
}

void sched_get_stats(sched *s, sched_stats *out) {
    pthread_mutex_lock(&s->mu);
    *out = s->stats;
    out->active = s->active;
    out->queued = s->queued;
    pthread_mutex_unlock(&s->mu);
}

/* sched.c - the engine thread: a FIFO queue, slots, batched steps. */
#include "llm/sched.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"

#define PREFILL_CHUNK 256 /* prompt tokens per step, across all slots */

struct sched_req {
    atomic_int refs;
    atomic_int cancel;
    sched_params p;    /* prompt and stop strings: in the session */
    llm_session *sess; /* the prompt, the sampler, the text */
    sched_req *next;   /* queue link */
    /* engine side */
    int slot;
    double t_submit, t_start, t_first;
};

struct sched {
    const llm_engine *e;
    llm_ctx *ctx;
    int n_slots, max_queue, n_vocab;
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
    sched_req **owner;
};

void sched_req_release(sched_req *r) {
    if (r == NULL || atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    llm_session_free(r->sess);
    free(r);
}

void sched_cancel(sched_req *r) { atomic_store(&r->cancel, 1); }

/* Ends |r| as |why| (unless its session ended already), reports it and
 * frees its slot. */
static void finish(sched *s, sched_req *r, llm_finish why) {
    double t = clock_now();
    llm_delta d;
    llm_session_end(r->sess, why, &d);
    int n_gen = llm_session_n_generated(r->sess);
    sched_usage u = {
        .prompt_tokens = r->p.n_prompt,
        .completion_tokens = n_gen,
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
        s->stats.completion_tokens += (uint64_t)n_gen;
        pthread_mutex_unlock(&s->mu);
    }
    size_t len;
    const char *text = llm_session_text(r->sess, &len);
    r->p.on_done(r->p.arg, d.finish, text, len, &u);
    sched_req_release(r);
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
        r->t_start = clock_now();
        if (r->slot < 0) {
            finish(s, r, LLM_FINISH_CANCELLED);
            i--; /* the slot is still free */
        } else {
            llm_session_bind(r->sess, s->ctx, i, 0);
        }
    }
}

/* After a forward pass: |r|'s next token from its row of logits |l|. */
static void take(sched *s, sched_req *r, const float *l) {
    if (r->t_first == 0)
        r->t_first = clock_now();
    llm_delta d;
    cai_status st = llm_session_sample(r->sess, l, &d);
    if (st != CAI_OK) {
        log_error("sampling failed: %s", cai_errmsg(st));
        finish(s, r, LLM_FINISH_ERROR);
        return;
    }
    if (d.token < 0) { /* an end-of-generation token, or none allowed */
        finish(s, r, d.finish);
        return;
    }
    if (!r->p.want_logits)
        d.logits = NULL;
    int stop = r->p.on_token(r->p.arg, &d);
    llm_finish why = d.finish ? d.finish : stop ? LLM_FINISH_STOP : llm_session_limit(r->sess);
    if (why != LLM_FINISH_NONE)
        finish(s, r, why);
}

static void step(sched *s) {
    int n = 0, budget = PREFILL_CHUNK;
    /* Decoding slots first: one token each. Then prompt chunks. */
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < s->n_slots; i++) {
            sched_req *r = s->slot[i];
            if (r == NULL || llm_session_prefilling(r->sess) != pass || (pass == 1 && budget <= 0))
                continue;
            int k = llm_session_next_tokens(r->sess, pass == 0 ? 1 : budget, s->tok + n, s->want + n,
                                            s->prefill + n);
            for (int j = 0; j < k; j++)
                s->seq[n + j] = i, s->owner[n + j] = r;
            n += k;
            budget -= pass == 1 ? k : 0;
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
                finish(s, s->owner[i], st == CAI_ERR_LIMIT ? LLM_FINISH_CONTEXT : LLM_FINISH_ERROR);
        return;
    }
    int row = 0;
    for (int i = 0; i < n; i++)
        if (s->want[i])
            take(s, s->owner[i], logits + (size_t)row++ * (size_t)s->n_vocab);
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
                finish(s, s->slot[i], LLM_FINISH_CANCELLED);
        admit(s);
        step(s);
    }
    for (int i = 0; i < s->n_slots; i++)
        if (s->slot[i])
            finish(s, s->slot[i], LLM_FINISH_CANCELLED);
    for (sched_req *r = s->head, *next; r; r = next) {
        next = r->next;
        finish(s, r, LLM_FINISH_CANCELLED);
    }
    s->head = s->tail = NULL;
    return NULL;
}

static void free_scratch(sched *s) {
    free(s->slot), free(s->tok), free(s->seq), free(s->want), free(s->prefill), free(s->owner);
}

cai_status sched_new(const llm_engine *e, llm_ctx *ctx, int n_slots, int max_queue, sched **out) {
    *out = NULL;
    if (n_slots <= 0 || max_queue < 0)
        return cai_fail(CAI_ERR_INVALID_ARG, "bad slot or queue size");
    sched *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return CAI_ERR_NOMEM;
    size_t cap = (size_t)n_slots + PREFILL_CHUNK;
    s->e = e;
    s->ctx = ctx;
    s->n_slots = n_slots;
    s->max_queue = max_queue;
    s->n_vocab = llm_model_hparams(llm_ctx_model(ctx))->n_vocab;
    s->stats.n_slots = n_slots;
    s->slot = calloc((size_t)n_slots, sizeof(*s->slot));
    s->tok = malloc(cap * sizeof(int32_t));
    s->seq = malloc(cap * sizeof(int32_t));
    s->want = malloc(cap);
    s->prefill = malloc(cap);
    s->owner = malloc(cap * sizeof(*s->owner));
    if (!s->slot || !s->tok || !s->seq || !s->want || !s->prefill || !s->owner) {
        free_scratch(s);
        free(s);
        return CAI_ERR_NOMEM;
    }
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
    free_scratch(s);
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
    sched_req *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return CAI_ERR_NOMEM;
    r->p = *p;
    r->p.prompt = NULL;
    r->p.gen.stop = NULL;
    r->slot = -1;
    cai_status st = llm_session_new(s->e, &p->gen, p->prompt, p->n_prompt, &r->sess);
    if (st != CAI_OK) {
        free(r);
        return st;
    }
    atomic_init(&r->refs, 2);
    atomic_init(&r->cancel, 0);
    r->t_submit = clock_now();
    pthread_mutex_lock(&s->mu);
    /* Counted together: a request the engine has not moved into its slot
     * yet still takes one of the n_slots + max_queue places. */
    if (s->queued + s->active >= s->n_slots + s->max_queue) {
        int active = s->active, queued = s->queued;
        pthread_mutex_unlock(&s->mu);
        llm_session_free(r->sess);
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

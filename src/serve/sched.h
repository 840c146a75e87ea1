/* sched.h - continuous batching: many requests, one forward pass per step.
 *
 * One engine thread owns the model context. Requests wait in a FIFO queue
 * for one of n_slots sequence slots; every step batches, into one
 * llm_decode call, the next token of every generating slot and a bounded
 * chunk of prompt tokens of slots still reading their prompt (so a long
 * prompt never stalls the others). Each slot samples with its own seeded
 * sampler, so a request's output does not depend on what else is running.
 *
 * Output goes through callbacks run on the engine thread; they must not
 * block (append to a buffer and signal). A request is reference counted: the
 * submitter holds one reference and the engine another until on_done. */
#ifndef CAI_SERVE_SCHED_H
#define CAI_SERVE_SCHED_H

#include <stdint.h>

#include "common/status.h"
#include "llm/model.h"
#include "llm/sample.h"

typedef enum {
    SCHED_STOP,      /* an end-of-generation token, or the caller said stop */
    SCHED_LENGTH,    /* max_tokens, or the context is full */
    SCHED_CANCELLED, /* sched_cancel: the client went away */
    SCHED_ERROR,     /* the forward pass failed (the message is logged) */
} sched_finish;

typedef struct {
    int prompt_tokens, completion_tokens;
    double queue_s, prefill_s, total_s; /* waiting, time to first token, all */
} sched_usage;

/* on_token receives each generated token (|logits|: n_vocab raw logits when
 * want_logits, else NULL). Return 0 to go on, 1 to finish with SCHED_STOP
 * (a stop string matched). End-of-generation tokens are not passed. */
typedef int (*sched_on_token)(void *arg, int32_t token, const float *logits);
typedef void (*sched_on_done)(void *arg, sched_finish why, const sched_usage *u);

/* allow (optional) constrains generation: it says whether |token| may come
 * next (is_eog: whether the reply may end here). A refused sample is
 * redrawn without it; if no token is allowed the request stops. */
typedef int (*sched_allow)(void *arg, int32_t token, int is_eog);

typedef struct {
    const int32_t *prompt; /* copied */
    int n_prompt;
    sample_params sample;
    int max_tokens;        /* 0: until the context is full */
    int want_logits;
    sched_on_token on_token;
    sched_on_done on_done;
    sched_allow allow;
    void *arg;
} sched_params;

typedef struct sched sched;
typedef struct sched_req sched_req;

typedef struct {
    uint64_t requests, prompt_tokens, completion_tokens, steps;
    int active, queued, n_slots;
} sched_stats;

/* sched_new starts the engine thread on |ctx| (which must have n_slots
 * sequences) with a queue of at most |max_queue| waiting requests. The
 * end-of-generation tokens are copied. */
cai_status sched_new(llm_ctx *ctx, int n_slots, int max_queue, const int32_t *eog, int n_eog,
                     sched **out);

/* sched_free finishes every request as SCHED_CANCELLED and stops the thread. */
void sched_free(sched *s);

/* sched_submit queues a request. CAI_ERR_LIMIT: the queue is full (HTTP 429);
 * CAI_ERR_INVALID_ARG: the prompt is empty or does not fit the context. On
 * success |*out| holds the caller's reference. */
cai_status sched_submit(sched *s, const sched_params *p, sched_req **out);

/* sched_cancel asks the engine to stop |r| soon; on_done follows with
 * SCHED_CANCELLED unless it already finished. Thread-safe. */
void sched_cancel(sched_req *r);

/* sched_req_release drops the caller's reference. */
void sched_req_release(sched_req *r);

void sched_get_stats(sched *s, sched_stats *out);

#endif

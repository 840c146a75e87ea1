/* sched.h - continuous batching: many requests, one forward pass per step.
 *
 * One engine thread owns the model context. Requests wait in a FIFO queue
 * for one of n_slots sequence slots; every step batches, into one
 * llm_decode call, the next token of every generating slot and a bounded
 * chunk of prompt tokens of slots still reading their prompt (so a long
 * prompt never stalls the others). Each request is an llm_session
 * (llm/session.h) with its own seeded sampler, stop strings and text, so
 * its output does not depend on what else is running.
 *
 * Output goes through callbacks run on the engine thread; they must not
 * block (append to a buffer and signal). A request is reference counted: the
 * submitter holds one reference and the engine another until on_done. */
#ifndef CAI_LLM_SCHED_H
#define CAI_LLM_SCHED_H

#include <stdint.h>

#include "common/status.h"
#include "llm/engine.h"
#include "llm/model.h"
#include "llm/session.h"

typedef struct {
    int prompt_tokens, completion_tokens;
    double queue_s, prefill_s, total_s; /* waiting, time to first token, all */
} sched_usage;

/* on_token receives each generated token with its text delta (|d->logits|:
 * n_vocab raw logits when want_logits, else NULL; d->finish set when the
 * token ended the generation, its text then comes with on_done). Return 0
 * to go on, 1 to finish with LLM_FINISH_STOP. End-of-generation tokens are
 * not passed. */
typedef int (*sched_on_token)(void *arg, const llm_delta *d);

/* on_done receives how the request ended (LLM_FINISH_CANCELLED: sched_cancel
 * or sched_free; LLM_FINISH_ERROR: the forward pass failed, logged), its
 * whole text (stop strings cut; valid during the call) and its usage. */
typedef void (*sched_on_done)(void *arg, llm_finish why, const char *text, size_t len,
                              const sched_usage *u);

typedef struct {
    const int32_t *prompt; /* copied */
    int n_prompt;
    llm_gen_params gen;    /* sampling, max_tokens, stops, constraint (copied) */
    int want_logits;
    sched_on_token on_token;
    sched_on_done on_done;
    void *arg;
} sched_params;

typedef struct sched sched;
typedef struct sched_req sched_req;

typedef struct {
    uint64_t requests, prompt_tokens, completion_tokens, steps;
    int active, queued, n_slots;
} sched_stats;

/* sched_new starts the engine thread on |ctx| (which must have n_slots
 * sequences; |e| and |ctx| must outlive the scheduler) with a queue of at
 * most |max_queue| waiting requests. */
cai_status sched_new(const llm_engine *e, llm_ctx *ctx, int n_slots, int max_queue, sched **out);

/* sched_free finishes every request as LLM_FINISH_CANCELLED and stops the
 * thread. */
void sched_free(sched *s);

/* sched_submit queues a request. CAI_ERR_LIMIT: the queue is full (HTTP 429);
 * CAI_ERR_INVALID_ARG: the prompt is empty or does not fit the context, or
 * the generation parameters are bad. On success |*out| holds the caller's
 * reference. */
cai_status sched_submit(sched *s, const sched_params *p, sched_req **out);

/* sched_cancel asks the engine to stop |r| soon; on_done follows with
 * LLM_FINISH_CANCELLED unless it already finished. Thread-safe. */
void sched_cancel(sched_req *r);

/* sched_req_release drops the caller's reference. */
void sched_req_release(sched_req *r);

void sched_get_stats(sched *s, sched_stats *out);

#endif

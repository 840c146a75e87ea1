/* session.h - one generation: a prompt in, tokens and text out.
 *
 * The engine's generation API, used by `cai run`, `cai chat -m`, `cai bench
 * -m` and the server's scheduler (llm/sched.h). A session is one request:
 * its prompt, its own seeded sampler, its stop strings and the text made so
 * far. Bound to one sequence of an llm_ctx, it feeds its prompt (after the
 * prefix that sequence already holds, when asked to reuse it), then samples
 * token after token until an end-of-generation token, a stop string,
 * max_tokens or a full context.
 *
 * Two ways to drive it, with the same tokens as the result:
 *   alone    llm_session_step runs a forward pass of its own per call;
 *   batched  llm_session_next_tokens puts the session's next tokens into the
 *            caller's batch, the caller runs one llm_decode for many
 *            sessions and hands each its row of logits (llm_session_sample,
 *            then llm_session_limit / llm_session_end).
 * A token is computed with the prefill (packed-tile) kernels when it
 * belongs to a prompt that feeds at least LLM_PREFILL_MIN tokens, never by
 * what else shares the batch, and each session samples with its own
 * sampler: a session's output does not depend on what runs beside it.
 *
 * Text: tokens are detokenized as they come, whole UTF-8 characters only.
 * Each llm_delta holds the text that may be shown now; a tail that could
 * still grow into a stop string is held back, a stop string found is cut
 * with everything after it. The deltas of a generation, concatenated, are
 * its text (llm_session_text). */
#ifndef CAI_LLM_SESSION_H
#define CAI_LLM_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"
#include "llm/engine.h"
#include "llm/model.h"
#include "llm/sample.h"

#define LLM_MAX_STOP 8 /* stop strings per request */

typedef enum {
    LLM_FINISH_NONE = 0, /* still generating */
    LLM_FINISH_STOP,     /* an end-of-generation token, a stop string, no token allowed, or the caller */
    LLM_FINISH_LENGTH,   /* max_tokens generated */
    LLM_FINISH_CONTEXT,  /* the context is full */
    LLM_FINISH_CANCELLED, /* llm/sched.h only: the request was cancelled */
    LLM_FINISH_ERROR,    /* llm/sched.h only: the forward pass failed */
} llm_finish;

/* llm_allow (optional) constrains generation: it says whether |token| may
 * come next (is_eog: whether the reply may end here). A refused sample is
 * redrawn without it; if no token is allowed the generation stops. */
typedef int (*llm_allow)(void *arg, int32_t token, int is_eog);

typedef struct {
    sample_params sample;
    int max_tokens;             /* 0: until the context is full */
    const char *const *stop;    /* |n_stop| non-empty stop strings, copied */
    int n_stop;
    int continues_prompt;       /* 1: the text continues the prompt (completions), SPM's
                                 * leading space is kept; 0: a reply, that space dropped */
    llm_allow allow;
    void *allow_arg;
} llm_gen_params;

typedef struct {
    int32_t token;       /* the token sampled, -1 when the step ended without one */
    const float *logits; /* its raw logits (n_vocab), until the next forward pass; NULL without a token */
    const char *text;    /* new text that may be shown (not NUL-terminated), until the next call */
    size_t len;
    llm_finish finish;   /* LLM_FINISH_NONE: more to come */
} llm_delta;

typedef struct llm_session llm_session;

/* llm_session_new makes a session for |n_prompt| prompt tokens of |e|'s
 * vocabulary (copied) with |p|'s sampling and stops; |e| must outlive it.
 * CAI_ERR_INVALID_ARG names what is wrong (an empty prompt, a token out of
 * the vocabulary, too many stop strings, bad sampling parameters). */
cai_status llm_session_new(const llm_engine *e, const llm_gen_params *p, const int32_t *prompt,
                           int n_prompt, llm_session **out);
void llm_session_free(llm_session *s);

/* llm_session_bind attaches the session to sequence |seq| of |ctx| before
 * its first token. With |reuse_prefix| the longest common prefix of the
 * sequence's tokens and the prompt stays in the cache (at least the last
 * prompt token is fed again, for its logits); otherwise the sequence is
 * cleared. */
void llm_session_bind(llm_session *s, llm_ctx *ctx, int seq, int reuse_prefix);

/* llm_session_prefilling says whether prompt tokens remain to be fed. */
int llm_session_prefilling(const llm_session *s);

/* llm_session_next_tokens writes the session's next tokens for a batch:
 * up to |max| prompt tokens while prefilling (|logits| set on the last
 * prompt token only), else the token sampled last (its logits wanted); and
 * for each whether it takes the prefill kernels. Returns how many it wrote
 * (0 when finished, or when |max| is 0 while prefilling); they count as
 * fed. The caller puts them in one llm_decode on the bound sequence and
 * passes the logits row of a wanted token to llm_session_sample. */
int llm_session_next_tokens(llm_session *s, int max, int32_t *token, uint8_t *logits,
                            uint8_t *prefill);

/* llm_session_sample picks the next token from |logits| (the row of the
 * session's last fed token) and fills |out|: the token (not an
 * end-of-generation one) and its text; finish is LLM_FINISH_STOP when an
 * end-of-generation token came, no token was allowed or a stop string
 * matched (the text then holds everything left). Limits are not checked
 * here (llm_session_limit). An ended session samples nothing. Fails only
 * out of memory. */
cai_status llm_session_sample(llm_session *s, const float *logits, llm_delta *out);

/* llm_session_limit returns LLM_FINISH_CONTEXT when the context cannot take
 * the token sampled last, LLM_FINISH_LENGTH when max_tokens are made,
 * LLM_FINISH_NONE otherwise. */
llm_finish llm_session_limit(const llm_session *s);

/* llm_session_end ends the generation as |why| (if it has not ended yet):
 * held-back text is released, and a stop string found in it makes the
 * finish LLM_FINISH_STOP. |out| gets the text left and the finish (no
 * token). Ending an ended session only changes its finish to |why| when
 * |why| is LLM_FINISH_STOP. */
void llm_session_end(llm_session *s, llm_finish why, llm_delta *out);

/* llm_session_step runs the session alone: one llm_decode of its next
 * tokens (the whole prompt at once, then one token per call), then
 * llm_session_sample, llm_session_limit and llm_session_end as needed.
 * Errors of the forward pass (CAI_ERR_LIMIT: the prompt does not fit the
 * context) are returned and end nothing. */
cai_status llm_session_step(llm_session *s, llm_delta *out);

/* llm_session_feed runs |n| tokens of the caller (not sampled: a benchmark
 * or a warm-up) through the bound sequence as one batch, prefill kernels
 * from LLM_PREFILL_MIN tokens on, logits of the last one in
 * |*out_logits|. */
cai_status llm_session_feed(llm_session *s, const int32_t *tokens, int n, const float **out_logits);

/* The generation's text so far (stop strings cut), its finish, and counts:
 * prompt tokens, tokens generated (end-of-generation tokens not counted),
 * prompt tokens found in the cache at bind. */
const char *llm_session_text(const llm_session *s, size_t *len);
llm_finish llm_session_finish(const llm_session *s);
int llm_session_n_prompt(const llm_session *s);
int llm_session_n_generated(const llm_session *s);
int llm_session_n_reused(const llm_session *s);

/* Prompt batches of at least this many tokens take the prefill kernels. */
extern const int LLM_PREFILL_MIN;

#endif

/* sample.h - choosing the next token from logits.
 *
 * The chain, in order: penalties (repetition over the last N tokens; OpenAI's
 * presence and frequency over every accepted token), then temperature, then
 * top-k, top-p and min-p on the tempered distribution (as Hugging Face and
 * OpenAI order them), then a draw from a seeded xoshiro256** generator.
 * Temperature 0 is greedy (argmax, lowest id on ties) and ignores the rest.
 * The same seed, logits and accepted tokens always give the same token.
 *
 * Logprobs are those of the model: log-softmax of the raw logits, before
 * penalties and temperature (as vLLM and llama.cpp report them). */
#ifndef CAI_LLM_SAMPLE_H
#define CAI_LLM_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"
#include "gguf/gguf.h"

typedef struct {
    float temperature;       /* 0 = greedy; default 0.8 */
    int top_k;               /* 0 = off; default 40 */
    float top_p;             /* 1 = off; default 0.95 */
    float min_p;             /* 0 = off; default 0.05 */
    float repeat_penalty;    /* 1 = off: >1 divides positive logits, multiplies negative */
    int repeat_last_n;       /* window of the repetition penalty; default 64 */
    float presence_penalty;  /* OpenAI: minus this once a token appeared, -2..2 */
    float frequency_penalty; /* OpenAI: minus this times its count, -2..2 */
    uint64_t seed;
} sample_params;

/* sample_params_default fills the defaults listed above (seed 0). */
void sample_params_default(sample_params *p);

/* sample_params_check returns CAI_ERR_INVALID_ARG, naming the field, when a
 * value is out of range (temperature 0..100, top_p 0..1 exclusive of 0, ...). */
cai_status sample_params_check(const sample_params *p);

/* Fields of sample_params that a source (the model file, a request, the
 * command line) sets, as bits. */
enum {
    SAMPLE_SET_TEMPERATURE = 1,
    SAMPLE_SET_TOP_P = 2,
    SAMPLE_SET_TOP_K = 4,
    SAMPLE_SET_MIN_P = 8,
    SAMPLE_SET_REPEAT = 16,
};

/* sample_params_from_gguf reads a model's generation defaults, the
 * cai.generation.* keys `cai model import` writes from a Hugging Face
 * folder (docs/MODELS.md), into |p|: temperature, top_p, top_k,
 * repetition_penalty, and do_sample false as temperature 0; when it sets
 * any, min_p becomes 0 (Hugging Face has no min-p). |*out_set| receives the
 * SAMPLE_SET_* bits of the fields written (0 for a file without them).
 * Returns CAI_ERR_FORMAT, naming the key, for a value of the wrong type or
 * out of sample_params_check's range. */
cai_status sample_params_from_gguf(const gguf_file *g, sample_params *p, unsigned *out_set);

/* sample_params_merge copies into |dst| the fields of |src| named by |set|
 * except those named by |keep| (what the caller chose itself). */
void sample_params_merge(sample_params *dst, const sample_params *src, unsigned set, unsigned keep);

typedef struct sampler sampler;

/* sampler_new makes a sampler for a vocabulary of |n_vocab| tokens. */
cai_status sampler_new(const sample_params *p, int n_vocab, sampler **out);
void sampler_free(sampler *s);

/* sampler_reset forgets accepted tokens and reseeds with the params' seed. */
void sampler_reset(sampler *s);

/* sampler_accept records |token| (generated, or prompt tokens if the caller
 * wants them penalised) for the penalties. */
void sampler_accept(sampler *s, int32_t token);

/* sampler_sample returns the next token for |logits| (n_vocab floats, left
 * unchanged). Non-finite logits are treated as -inf; if none is finite the
 * result is token 0. */
int32_t sampler_sample(sampler *s, const float *logits);

typedef struct {
    int32_t token;
    float logprob;
} sample_logprob;

/* sample_logprobs computes the model's log-probability of |chosen| and the
 * |top_n| most likely tokens (most likely first) from raw |logits|. */
float sample_logprobs(const float *logits, int n_vocab, int32_t chosen, int top_n,
                      sample_logprob *top);

#endif

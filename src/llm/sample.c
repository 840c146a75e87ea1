/* sample.c - token sampling: penalties, temperature, top-k/p, min-p, seeded draws. */
#include "llm/sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct sampler {
    sample_params p;
    int n_vocab;
    uint64_t rng[4];
    uint32_t *count;   /* occurrences of each accepted token */
    int32_t *seen;     /* distinct accepted tokens, to reset count cheaply */
    size_t n_seen;
    int32_t *window;   /* ring of the last repeat_last_n tokens */
    size_t n_window;   /* tokens accepted so far (ring position) */
    uint8_t *mark;     /* per token: penalised in this step */
    struct cand { int32_t id; float v; } *cand;
};

typedef struct cand cand;

void sample_params_default(sample_params *p) {
    *p = (sample_params){.temperature = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f,
                         .repeat_penalty = 1.0f, .repeat_last_n = 64};
}

cai_status sample_params_from_gguf(const gguf_file *g, sample_params *p, unsigned *out_set) {
    static const struct { const char *key; unsigned bit; } KEYS[] = {
        {"cai.generation.temperature", SAMPLE_SET_TEMPERATURE},
        {"cai.generation.top_p", SAMPLE_SET_TOP_P},
        {"cai.generation.top_k", SAMPLE_SET_TOP_K},
        {"cai.generation.repetition_penalty", SAMPLE_SET_REPEAT},
    };
    sample_params q = *p;
    unsigned set = 0;
    for (size_t i = 0; i < sizeof(KEYS) / sizeof(KEYS[0]); i++) {
        float f = 0;
        uint64_t u = 0;
        cai_status st = KEYS[i].bit == SAMPLE_SET_TOP_K ? gguf_get_uint(g, KEYS[i].key, &u)
                                                        : gguf_get_float(g, KEYS[i].key, &f);
        if (st == CAI_ERR_NOT_FOUND)
            continue;
        if (st != CAI_OK || (KEYS[i].bit == SAMPLE_SET_TOP_K && u > (1u << 30)))
            return cai_fail(CAI_ERR_FORMAT, "model metadata: %s is not a valid value", KEYS[i].key);
        switch (KEYS[i].bit) {
        case SAMPLE_SET_TEMPERATURE: q.temperature = f; break;
        case SAMPLE_SET_TOP_P: q.top_p = f; break;
        case SAMPLE_SET_TOP_K: q.top_k = (int)u; break;
        default: q.repeat_penalty = f; break;
        }
        set |= KEYS[i].bit;
    }
    int do_sample = 1;
    cai_status st = gguf_get_bool(g, "cai.generation.do_sample", &do_sample);
    if (st != CAI_OK && st != CAI_ERR_NOT_FOUND)
        return cai_fail(CAI_ERR_FORMAT, "model metadata: cai.generation.do_sample is not a bool");
    if (!do_sample) {
        q.temperature = 0;
        set |= SAMPLE_SET_TEMPERATURE;
    }
    if (set) {
        q.min_p = 0;
        set |= SAMPLE_SET_MIN_P;
    }
    if (sample_params_check(&q) != CAI_OK)
        return cai_fail(CAI_ERR_FORMAT, "model metadata: cai.generation.*: %s",
                        cai_errmsg(CAI_ERR_INVALID_ARG));
    *p = q;
    *out_set = set;
    return CAI_OK;
}

void sample_params_merge(sample_params *dst, const sample_params *src, unsigned set, unsigned keep) {
    set &= ~keep;
    if (set & SAMPLE_SET_TEMPERATURE) dst->temperature = src->temperature;
    if (set & SAMPLE_SET_TOP_P) dst->top_p = src->top_p;
    if (set & SAMPLE_SET_TOP_K) dst->top_k = src->top_k;
    if (set & SAMPLE_SET_MIN_P) dst->min_p = src->min_p;
    if (set & SAMPLE_SET_REPEAT) dst->repeat_penalty = src->repeat_penalty;
}

cai_status sample_params_check(const sample_params *p) {
#define RANGE(f, lo, hi)                                                                      \
    if (!(p->f >= (lo) && p->f <= (hi)))                                                      \
        return cai_fail(CAI_ERR_INVALID_ARG, #f " must be between %g and %g", (double)(lo),  \
                        (double)(hi));
    RANGE(temperature, 0, 100)
    RANGE(top_k, 0, 1 << 30)
    RANGE(top_p, 0, 1)
    RANGE(min_p, 0, 1)
    RANGE(repeat_penalty, 0.01, 100)
    RANGE(repeat_last_n, 0, 1 << 20)
    RANGE(presence_penalty, -2, 2)
    RANGE(frequency_penalty, -2, 2)
#undef RANGE
    if (p->top_p <= 0)
        return cai_fail(CAI_ERR_INVALID_ARG, "top_p must be greater than 0");
    return CAI_OK;
}

/* splitmix64 seeds xoshiro256** (Blackman and Vigna). */
static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(uint64_t s[4]) {
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

/* A uniform double in [0, 1). */
static double rng_uniform(uint64_t s[4]) { return (double)(rng_next(s) >> 11) * 0x1.0p-53; }

cai_status sampler_new(const sample_params *p, int n_vocab, sampler **out) {
    *out = NULL;
    cai_status st = sample_params_check(p);
    if (st != CAI_OK)
        return st;
    if (n_vocab <= 0)
        return cai_fail(CAI_ERR_INVALID_ARG, "empty vocabulary");
    sampler *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return CAI_ERR_NOMEM;
    s->p = *p;
    s->n_vocab = n_vocab;
    s->count = calloc((size_t)n_vocab, sizeof(*s->count));
    s->seen = malloc((size_t)n_vocab * sizeof(*s->seen));
    s->window = malloc(((size_t)p->repeat_last_n + 1) * sizeof(*s->window));
    s->mark = calloc((size_t)n_vocab, 1);
    s->cand = malloc((size_t)n_vocab * sizeof(*s->cand));
    if (!s->count || !s->seen || !s->window || !s->mark || !s->cand) {
        sampler_free(s);
        return CAI_ERR_NOMEM;
    }
    sampler_reset(s);
    *out = s;
    return CAI_OK;
}

void sampler_free(sampler *s) {
    if (s == NULL)
        return;
    free(s->count);
    free(s->seen);
    free(s->window);
    free(s->mark);
    free(s->cand);
    free(s);
}

void sampler_reset(sampler *s) {
    for (size_t i = 0; i < s->n_seen; i++)
        s->count[s->seen[i]] = 0;
    s->n_seen = 0;
    s->n_window = 0;
    uint64_t x = s->p.seed;
    for (int i = 0; i < 4; i++)
        s->rng[i] = splitmix64(&x);
}

void sampler_accept(sampler *s, int32_t token) {
    if (token < 0 || token >= s->n_vocab)
        return;
    if (s->count[token]++ == 0)
        s->seen[s->n_seen++] = token;
    if (s->p.repeat_last_n > 0)
        s->window[s->n_window % (size_t)s->p.repeat_last_n] = token;
    s->n_window++;
}

static float finite_or_ninf(float v) { return isfinite(v) ? v : -INFINITY; }

static int cand_desc(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->v != y->v)
        return x->v > y->v ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id); /* deterministic order on ties */
}

/* select_top moves the m largest candidates (ties: lowest id) to the front,
 * in no particular order (quickselect, Lomuto partition). */
static void select_top(cand *c, size_t n, size_t m) {
    size_t lo = 0, hi = n;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2, store = lo;
        cand pivot = c[mid], t;
        c[mid] = c[hi - 1], c[hi - 1] = pivot;
        for (size_t i = lo; i < hi - 1; i++)
            if (cand_desc(&c[i], &pivot) < 0)
                t = c[i], c[i] = c[store], c[store++] = t;
        t = c[store], c[store] = c[hi - 1], c[hi - 1] = t;
        if (store == m || store + 1 == m)
            return;
        if (store < m)
            lo = store + 1;
        else
            hi = store;
    }
}

int32_t sampler_sample(sampler *s, const float *logits) {
    const sample_params *p = &s->p;
    size_t n = (size_t)s->n_vocab;
    cand *c = s->cand;
    for (size_t i = 0; i < n; i++)
        c[i] = (cand){(int32_t)i, finite_or_ninf(logits[i])};

    /* Repetition penalty over the window, once per distinct token. */
    if (p->repeat_penalty != 1.0f && p->repeat_last_n > 0) {
        size_t w = s->n_window < (size_t)p->repeat_last_n ? s->n_window : (size_t)p->repeat_last_n;
        for (size_t i = 0; i < w; i++) {
            int32_t t = s->window[i];
            if (s->mark[t])
                continue;
            s->mark[t] = 1;
            c[t].v = c[t].v > 0 ? c[t].v / p->repeat_penalty : c[t].v * p->repeat_penalty;
        }
        for (size_t i = 0; i < w; i++)
            s->mark[s->window[i]] = 0;
    }
    if (p->presence_penalty != 0 || p->frequency_penalty != 0) {
        for (size_t i = 0; i < s->n_seen; i++) {
            int32_t t = s->seen[i];
            c[t].v -= p->presence_penalty + p->frequency_penalty * (float)s->count[t];
        }
    }

    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (c[i].v > c[best].v)
            best = i;
    if (p->temperature <= 0 || c[best].v == -INFINITY)
        return c[best].v == -INFINITY ? 0 : (int32_t)best;

    /* Keep the tokens that can carry any probability: exp(-40) is below
     * float resolution of the sum, so dropping them changes nothing. */
    float max = c[best].v, cut = max - 40.0f * p->temperature;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (c[i].v >= cut)
            c[k++] = c[i];
    /* Sort only what the truncations need: the top_k, or (for top-p) a
     * prefix that is provably long enough; with neither, no sort at all. */
    if (p->top_k > 0 && (size_t)p->top_k < k) {
        select_top(c, k, (size_t)p->top_k);
        k = (size_t)p->top_k;
        qsort(c, k, sizeof(*c), cand_desc);
    } else if (p->top_p < 1.0f) {
        size_t m = k > 1024 ? 1024 : k;
        if (m < k) {
            select_top(c, k, m);
            double in = 0, all = 0; /* is the top-m mass enough? */
            for (size_t i = 0; i < k; i++) {
                double e = exp((double)(c[i].v - max) / p->temperature);
                all += e;
                in += i < m ? e : 0;
            }
            if (in >= p->top_p * all)
                k = m;
        }
        qsort(c, k, sizeof(*c), cand_desc);
    }

    double sum = 0;
    for (size_t i = 0; i < k; i++) {
        c[i].v = expf((c[i].v - max) / p->temperature);
        sum += c[i].v;
    }
    /* top-p: the smallest prefix whose mass reaches top_p (at least one). */
    if (p->top_p < 1.0f) {
        double acc = 0;
        for (size_t i = 0; i < k; i++) {
            acc += c[i].v;
            if (acc >= p->top_p * sum * (1 - 1e-6)) { /* rounding must not add a token */
                k = i + 1;
                break;
            }
        }
    }
    /* min-p: drop tokens below min_p times the most likely one (which has
     * probability weight 1 here: exp(0)). */
    if (p->min_p > 0) {
        size_t m = 0;
        for (size_t i = 0; i < k; i++)
            if (c[i].v >= p->min_p)
                c[m++] = c[i];
        k = m;
    }
    sum = 0;
    for (size_t i = 0; i < k; i++)
        sum += c[i].v;
    double r = rng_uniform(s->rng) * sum, acc = 0;
    for (size_t i = 0; i < k; i++) {
        acc += c[i].v;
        if (r < acc)
            return c[i].id;
    }
    return c[k - 1].id;
}

float sample_logprobs(const float *logits, int n_vocab, int32_t chosen, int top_n,
                      sample_logprob *top) {
    float max = -INFINITY;
    for (int i = 0; i < n_vocab; i++)
        max = fmaxf(max, finite_or_ninf(logits[i]));
    double sum = 0;
    for (int i = 0; i < n_vocab; i++)
        sum += exp((double)finite_or_ninf(logits[i]) - max);
    float lse = max + (float)log(sum);
    /* Insertion into a short sorted list: top_n is small (OpenAI allows 20). */
    int have = 0;
    for (int i = 0; i < n_vocab && top_n > 0; i++) {
        float v = finite_or_ninf(logits[i]);
        if (have == top_n && v <= top[have - 1].logprob)
            continue;
        int j = have < top_n ? have++ : have - 1;
        while (j > 0 && top[j - 1].logprob < v) {
            top[j] = top[j - 1];
            j--;
        }
        top[j] = (sample_logprob){i, v};
    }
    for (int i = 0; i < have; i++)
        top[i].logprob -= lse;
    return chosen >= 0 && chosen < n_vocab ? finite_or_ninf(logits[chosen]) - lse : -INFINITY;
}

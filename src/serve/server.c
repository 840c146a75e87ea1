/* server.c - HTTP handlers, the glue between requests and the scheduler. */
#include "serve/server.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/codec.h"
#include "common/httpd.h"
#include "common/log.h"
#include "common/pool.h"
#include "common/secure.h"
#include "crypto/kdf.h"
#include "attest/binding.h"
#include "llm/engine.h"
#include "llm/jsonc.h"
#include "llm/sched.h"
#include "ratls/receipt.h"
#include "ratls/server.h"
#include "seal/seal.h"
#include "serve/api.h"
#include "serve/attestation.h"
#include "serve/web.h"

#define N_BUCKETS 10
static const double BUCKETS[N_BUCKETS] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};

typedef struct {
    atomic_ullong count[N_BUCKETS + 1];
    atomic_ullong n;
    _Atomic double sum;
} histogram;

struct server {
    serve_config cfg;
    httpd *h;
    llm_engine *e;
    llm_ctx *ctx;
    sched *s;
    pthread_t loader;
    int loader_started;
    atomic_int state; /* 0 loading, 1 ready, -1 failed */
    char model_id[128];
    char digest[65]; /* hex SHA-256 of the served model, when known */
    uint8_t digest_raw[ATTEST_DIGEST_LEN];
    int have_digest;  /* set by the loader before state becomes 1 */
    attest_source tee; /* valid when has_tee */
    int has_tee;
    attestation *att;
    ratls_server *ratls; /* with tls_attested */
    time_t created;
    /* metrics */
    atomic_ullong http[6][5]; /* endpoint (EP_*) x status class (2xx..5xx, other) */
    atomic_ullong prompt_tokens, completion_tokens;
    histogram latency, ttft;
};

enum { EP_CHAT, EP_COMPLETIONS, EP_MODELS, EP_HEALTH, EP_ATTESTATION, EP_OTHER, EP_COUNT_ };
static const char *const EP_NAMES[] = {"chat_completions", "completions", "models", "health",
                                       "attestation", "other"};

static void observe(histogram *h, double v) {
    int i = 0;
    while (i < N_BUCKETS && v > BUCKETS[i])
        i++;
    atomic_fetch_add(&h->count[i], 1);
    atomic_fetch_add(&h->n, 1);
    double old = atomic_load(&h->sum);
    while (!atomic_compare_exchange_weak(&h->sum, &old, old + v))
        ;
}

static void count(server *sv, int ep, int status) {
    int cls = status >= 200 && status < 600 ? status / 100 - 2 : 4;
    atomic_fetch_add(&sv->http[ep][cls], 1);
}

/* ---- replies ---------------------------------------------------------------- */

static char *openai_error_body(int status, const char *message) {
    api_error e;
    api_error_set(&e, status, NULL, "%s", message);
    return api_error_json(&e);
}

static void reply_api_error(server *sv, httpd_req *r, int ep, const api_error *e) {
    char *s = api_error_json(e);
    count(sv, ep, e->status);
    if (s) {
        httpd_reply(r, e->status, "application/json", s, strlen(s));
        free(s);
    } else {
        httpd_reply(r, 500, "text/plain", "out of memory\n", 14);
    }
}

static void reply_error(server *sv, httpd_req *r, int ep, int status, const char *param,
                        const char *msg) {
    api_error e;
    api_error_set(&e, status, param, "%s", msg);
    reply_api_error(sv, r, ep, &e);
}

static void add_cors(server *sv, httpd_req *r) {
    const char *origin = httpd_header(r, "Origin");
    const char *allow = sv->cfg.cors_origin;
    if (!allow || !origin)
        return;
    if (strcmp(allow, "*") == 0 || strcmp(allow, origin) == 0) {
        httpd_add_header(r, "Access-Control-Allow-Origin", strcmp(allow, "*") == 0 ? "*" : origin);
        httpd_add_header(r, "Vary", "Origin");
    }
}

/* A CORS preflight (OPTIONS): what a browser from an allowed origin may send. */
static void h_options(httpd_req *r, server *sv) {
    add_cors(sv, r);
    httpd_add_header(r, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    httpd_add_header(r, "Access-Control-Allow-Headers", "Authorization, Content-Type");
    httpd_add_header(r, "Access-Control-Max-Age", "600");
    httpd_reply(r, 204, NULL, NULL, 0);
}

static int is_preflight(const httpd_req *r) { return strcmp(httpd_method(r), "OPTIONS") == 0; }

/* Checks the API key; answers 401 and returns 0 when it is wrong. */
static int authorized(server *sv, httpd_req *r, int ep) {
    if (!sv->cfg.api_key)
        return 1;
    const char *h = httpd_header(r, "Authorization");
    size_t kl = strlen(sv->cfg.api_key);
    if (h && strncmp(h, "Bearer ", 7) == 0 && strlen(h + 7) == kl &&
        secure_memeq(h + 7, sv->cfg.api_key, kl))
        return 1;
    api_error e;
    api_error_set(&e, 401, NULL, "Incorrect or missing API key (Authorization: Bearer ...)");
    snprintf(e.code, sizeof(e.code), "invalid_api_key");
    reply_api_error(sv, r, ep, &e);
    return 0;
}

static int ready(server *sv, httpd_req *r, int ep) {
    int st = atomic_load(&sv->state);
    if (st == 1)
        return 1;
    reply_error(sv, r, ep, 503, NULL, st == 0 ? "the model is loading" : "the model failed to load");
    return 0;
}

/* ---- one generation ---------------------------------------------------------- */

typedef struct {
    atomic_int refs;
    server *sv;
    httpd_async *a;
    sched_req *req;
    int kind; /* API_CHAT or API_COMPLETION */
    int stream, include_usage, logprobs, top_logprobs, sent_role;
    char id[48];
    time_t created;
    size_t sent; /* bytes of text already streamed */
    json_t *lp;  /* logprob entries not yet sent (stream) or all (non-stream) */
    int json_mode;
    jsonc json;  /* response_format json_object: the text so far, as JSON */
    int n_prompt;
    double t0;
    json_t *receipt; /* --receipts: the receipt's fields known at the request */
} gen;

static void gen_release(gen *g) {
    if (atomic_fetch_sub(&g->refs, 1) != 1)
        return;
    httpd_async_release(g->a);
    sched_req_release(g->req);
    json_decref(g->lp);
    json_decref(g->receipt);
    free(g);
}

/* A JSON string of possibly invalid UTF-8 bytes (invalid ones replaced). */
static json_t *lossy_string(const uint8_t *p, size_t n) {
    buf b;
    buf_init(&b, 0);
    json_t *s = n == 0 ? json_string("")
                : utf8_sanitize(p, n, &b) == CAI_OK ? json_stringn((const char *)b.data, b.len) : NULL;
    buf_free(&b);
    return s ? s : json_string("");
}

static json_t *token_logprob(const gen *g, int32_t tok, float lp) {
    buf tb;
    buf_init(&tb, 0);
    json_t *bytes = json_array(), *text = NULL;
    if (tokenizer_token_bytes(llm_engine_tokenizer(g->sv->e), tok, &tb) == CAI_OK) {
        for (size_t i = 0; i < tb.len; i++)
            json_array_append_new(bytes, json_integer(tb.data[i]));
        text = lossy_string(tb.data, tb.len);
    }
    buf_free(&tb);
    return json_pack("{s:o, s:f, s:o}", "token", text ? text : json_string(""), "logprob", (double)lp,
                     "bytes", bytes);
}

static void add_logprobs(gen *g, int32_t tok, const float *logits) {
    const int V = llm_model_hparams(llm_engine_model(g->sv->e))->n_vocab;
    sample_logprob top[API_MAX_TOP_LOGPROBS];
    int n_top = g->kind == API_CHAT ? g->top_logprobs : g->logprobs;
    float lp = sample_logprobs(logits, V, tok, n_top, top);
    json_t *e = token_logprob(g, tok, lp);
    if (g->kind == API_CHAT) {
        json_t *tl = json_array();
        for (int i = 0; i < n_top && i < V; i++)
            json_array_append_new(tl, token_logprob(g, top[i].token, top[i].logprob));
        json_object_set_new(e, "top_logprobs", tl);
    } else {
        json_t *tl = json_object();
        for (int i = 0; i < n_top && i < V; i++) {
            json_t *t = token_logprob(g, top[i].token, top[i].logprob);
            json_object_set_new(tl, json_string_value(json_object_get(t, "token")), json_real(top[i].logprob));
            json_decref(t);
        }
        json_object_set_new(e, "top_logprobs", tl);
    }
    json_array_append_new(g->lp, e);
}

/* The logprobs object of a choice, from entries (chat and legacy forms). */
static json_t *logprobs_json(gen *g) {
    json_t *entries = g->lp;
    g->lp = json_array();
    if (g->kind == API_CHAT)
        return json_pack("{s:o}", "content", entries);
    json_t *tokens = json_array(), *lps = json_array(), *tops = json_array(), *offs = json_array();
    size_t i, off = 0;
    json_t *e;
    json_array_foreach(entries, i, e) {
        json_array_append(tokens, json_object_get(e, "token"));
        json_array_append(lps, json_object_get(e, "logprob"));
        json_array_append(tops, json_object_get(e, "top_logprobs"));
        json_array_append_new(offs, json_integer((json_int_t)off));
        off += json_string_length(json_object_get(e, "token"));
    }
    json_decref(entries);
    return json_pack("{s:o, s:o, s:o, s:o}", "tokens", tokens, "token_logprobs", lps, "top_logprobs",
                     tops, "text_offset", offs);
}

static json_t *choice(gen *g, const char *text, size_t len, const char *finish, int final) {
    json_t *c = json_pack("{s:i}", "index", 0);
    json_t *t = lossy_string((const uint8_t *)text, len);
    if (g->kind == API_CHAT) {
        if (g->stream) {
            json_t *delta = json_object();
            if (!g->sent_role) {
                json_object_set_new(delta, "role", json_string("assistant"));
                g->sent_role = 1;
            }
            if (len || !final)
                json_object_set(delta, "content", t);
            json_object_set_new(c, "delta", delta);
        } else {
            json_object_set_new(c, "message", json_pack("{s:s, s:O, s:n}", "role", "assistant",
                                                        "content", t, "refusal"));
        }
    } else {
        json_object_set(c, "text", t);
    }
    json_decref(t);
    json_object_set_new(c, "logprobs", g->logprobs && (json_array_size(g->lp) || !g->stream)
                                           ? logprobs_json(g) : json_null());
    json_object_set_new(c, "finish_reason", finish ? json_string(finish) : json_null());
    return c;
}

static json_t *envelope(gen *g, json_t *choices) {
    const char *object = g->kind == API_CHAT ? (g->stream ? "chat.completion.chunk" : "chat.completion")
                                             : "text_completion";
    return json_pack("{s:s, s:s, s:I, s:s, s:s, s:o}", "id", g->id, "object", object, "created",
                     (json_int_t)g->created, "model", g->sv->model_id, "system_fingerprint",
                     "cai-0.1", "choices", choices);
}

static void send_event(gen *g, json_t *j) {
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (s == NULL)
        return;
    buf b;
    buf_init(&b, 0);
    if (buf_printf(&b, "data: %s\n\n", s) == CAI_OK)
        (void)httpd_async_write(g->a, b.data, b.len);
    buf_free(&b);
    free(s);
}

/* response_format json_object: a token may come next only if the text
 * stays a prefix of a JSON object; the reply ends when the object does. */
static int json_allow(void *arg, int32_t tok, int is_eog) {
    gen *g = arg;
    if (is_eog)
        return jsonc_done(&g->json);
    const tokenizer *tk = llm_engine_tokenizer(g->sv->e);
    if (tokenizer_is_control(tk, tok))
        return 0;
    buf b;
    buf_init(&b, 0);
    jsonc t = g->json;
    int ok = tokenizer_token_bytes(tk, tok, &b) == CAI_OK && b.len > 0 &&
             jsonc_feed(&t, b.data, b.len);
    buf_free(&b);
    return ok;
}

/* Each token: its logprobs kept, its text streamed unless it ends the
 * reply (then the rest goes out with the finish reason, in on_done). */
static int on_token(void *arg, const llm_delta *d) {
    gen *g = arg;
    if (g->json_mode) {
        buf b;
        buf_init(&b, 0);
        if (tokenizer_token_bytes(llm_engine_tokenizer(g->sv->e), d->token, &b) == CAI_OK)
            (void)jsonc_feed(&g->json, b.data, b.len);
        buf_free(&b);
    }
    if (d->logits && g->logprobs)
        add_logprobs(g, d->token, d->logits);
    int stop = g->json_mode && jsonc_done(&g->json);
    if (g->stream && !stop && d->finish == LLM_FINISH_NONE &&
        (d->len || (!g->sent_role && g->kind == API_CHAT))) {
        send_event(g, envelope(g, json_pack("[o]", choice(g, d->text, d->len, NULL, 0))));
        g->sent += d->len;
    }
    return stop;
}

/* The signed receipt of a finished generation (--receipts), or NULL with a
 * log line when it cannot be made (the answer goes out without it). */
static json_t *make_receipt(gen *g, const char *text, size_t len, const sched_usage *u) {
    server *sv = g->sv;
    buf clean;
    buf_init(&clean, 0);
    uint8_t h[32];
    char hex[65];
    json_t *out = NULL;
    ratls_identity *id = ratls_server_current(sv->ratls);
    cai_status st = id ? CAI_OK : cai_fail(CAI_ERR_INTERNAL, "no attested identity");
    if (st == CAI_OK && len)
        st = utf8_sanitize((const uint8_t *)text, len, &clean); /* the text as the answer carries it */
    if (st == CAI_OK)
        st = kdf_sha256(clean.data ? clean.data : (const uint8_t *)"", clean.len, h);
    if (st == CAI_OK) {
        hex_encode(hex, h, sizeof(h));
        json_object_set_new(g->receipt, "response_sha256", json_string(hex));
        json_object_set_new(g->receipt, "usage", json_pack("{s:i, s:i}", "prompt_tokens",
                            u->prompt_tokens, "completion_tokens", u->completion_tokens));
        st = ratls_receipt_sign(id, g->receipt, &out);
    }
    if (st != CAI_OK)
        log_warn("no receipt for %s: %s", g->id, cai_errmsg(st));
    ratls_identity_free(id);
    buf_free(&clean);
    return out;
}

static void on_done(void *arg, llm_finish why, const char *text, size_t len, const sched_usage *u) {
    gen *g = arg;
    server *sv = g->sv;
    int ep = g->kind == API_CHAT ? EP_CHAT : EP_COMPLETIONS;
    const char *finish = why == LLM_FINISH_LENGTH || why == LLM_FINISH_CONTEXT ? "length" : "stop";
    atomic_fetch_add(&sv->prompt_tokens, (unsigned long long)u->prompt_tokens);
    atomic_fetch_add(&sv->completion_tokens, (unsigned long long)u->completion_tokens);
    observe(&sv->latency, u->total_s);
    if (u->completion_tokens > 0)
        observe(&sv->ttft, u->queue_s + u->prefill_s);
    json_t *usage = json_pack("{s:i, s:i, s:i}", "prompt_tokens", u->prompt_tokens, "completion_tokens",
                              u->completion_tokens, "total_tokens", u->prompt_tokens + u->completion_tokens);
    if (why == LLM_FINISH_CANCELLED) {
        json_decref(usage);
        count(sv, ep, 499);
    } else if (why == LLM_FINISH_ERROR) {
        json_decref(usage);
        char *s = openai_error_body(500, "generation failed");
        if (g->stream) {
            buf b;
            buf_init(&b, 0);
            if (buf_printf(&b, "data: %s\n\n", s ? s : "{}") == CAI_OK)
                (void)httpd_async_write(g->a, b.data, b.len);
            buf_free(&b);
            (void)httpd_async_end(g->a);
        } else if (s) {
            (void)httpd_async_reply(g->a, 500, "application/json", s, strlen(s));
        }
        free(s);
        count(sv, ep, 500);
    } else if (g->stream) {
        json_t *last = choice(g, text + g->sent, len - g->sent, finish, 1);
        send_event(g, envelope(g, json_pack("[o]", last)));
        if (g->include_usage) {
            json_t *j = envelope(g, json_array());
            json_object_set_new(j, "usage", usage);
            send_event(g, j);
        } else {
            json_decref(usage);
        }
        /* [DONE], then, after it (OpenAI clients stop reading there), the
         * receipt as a named event; the last chunk and the end in one step. */
        json_t *rc = g->receipt ? make_receipt(g, text, len, u) : NULL;
        char *rs = rc ? json_dumps(rc, JSON_COMPACT) : NULL;
        buf b;
        buf_init(&b, 0);
        cai_status bst = buf_append_str(&b, "data: [DONE]\n\n");
        if (bst == CAI_OK && rs)
            bst = buf_printf(&b, "event: cai-receipt\ndata: %s\n\n", rs);
        (void)httpd_async_write_end(g->a, b.data, bst == CAI_OK ? b.len : 0);
        buf_free(&b);
        free(rs);
        json_decref(rc);
        count(sv, ep, 200);
    } else {
        json_t *j = envelope(g, json_pack("[o]", choice(g, text, len, finish, 1)));
        json_object_set_new(j, "usage", usage);
        if (g->receipt) {
            json_t *rc = make_receipt(g, text, len, u);
            if (rc)
                json_object_set_new(j, "cai_receipt", rc);
        }
        char *s = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        if (s)
            (void)httpd_async_reply(g->a, 200, "application/json", s, strlen(s));
        free(s);
        count(sv, ep, 200);
    }
    gen_release(g); /* the engine's reference */
}

static void on_end(void *arg, int client_gone) {
    gen *g = arg;
    if (client_gone && g->req)
        sched_cancel(g->req);
    gen_release(g); /* httpd's reference */
}

static void handle_generate(server *sv, httpd_req *r, int kind) {
    int ep = kind == API_CHAT ? EP_CHAT : EP_COMPLETIONS;
    if (is_preflight(r))
        return h_options(r, sv);
    add_cors(sv, r);
    if (strcmp(httpd_method(r), "POST") != 0)
        return reply_error(sv, r, ep, 405, NULL, "use POST");
    if (!authorized(sv, r, ep) || !ready(sv, r, ep))
        return;
    size_t len;
    const char *body = httpd_body(r, &len);
    api_request req;
    api_error err;
    cai_status st = kind == API_CHAT ? api_parse_chat(body, len, &req, &err)
                                     : api_parse_completion(body, len, &req, &err);
    if (st == CAI_OK && (st = api_check_model(req.model, sv->model_id, sv->cfg.aliases,
                                              (size_t)sv->cfg.n_aliases, &err)) != CAI_OK)
        api_request_free(&req);
    if (st != CAI_OK)
        return reply_api_error(sv, r, ep, &err);
    if (!req.max_tokens_set && sv->cfg.max_tokens_default > 0)
        req.max_tokens = sv->cfg.max_tokens_default;
    /* the model's generation defaults (cai model import) where the request
     * gave none: it answers as its own server would unless asked otherwise */
    unsigned gen_set;
    const sample_params *defaults = llm_engine_gen(sv->e, &gen_set);
    sample_params_merge(&req.sample, defaults, gen_set, req.sample_set);
    int32_t *ids = NULL;
    size_t n = 0, cap = 0;
    st = kind == API_CHAT ? llm_engine_chat_prompt(sv->e, req.messages, req.n_messages, &ids, &n, &cap)
                          : llm_engine_text_prompt(sv->e, req.prompt, &ids, &n, &cap);
    if (st == CAI_OK && n == 0)
        st = cai_fail(CAI_ERR_INVALID_ARG, "the prompt is empty");
    if (st != CAI_OK) {
        api_request_free(&req);
        free(ids);
        return reply_error(sv, r, ep, st == CAI_ERR_NOMEM ? 500 : 400, kind == API_CHAT ? "messages" : "prompt",
                           cai_errmsg(st));
    }
    gen *g = calloc(1, sizeof(*g));
    if (g == NULL) {
        api_request_free(&req);
        free(ids);
        return reply_error(sv, r, ep, 500, NULL, "out of memory");
    }
    atomic_init(&g->refs, 3); /* handler, engine, httpd */
    g->sv = sv;
    g->kind = kind;
    g->stream = req.stream;
    g->include_usage = req.include_usage;
    g->logprobs = req.logprobs;
    g->top_logprobs = req.top_logprobs;
    g->created = time(NULL);
    g->n_prompt = (int)n;
    g->lp = json_array();
    g->json_mode = req.json_mode;
    jsonc_init(&g->json);
    uint8_t rnd[12] = {0};
    char hex[25];
    if (secure_random(rnd, sizeof(rnd)) != CAI_OK)
        log_warn("no randomness for a completion id");
    hex_encode(hex, rnd, sizeof(rnd));
    snprintf(g->id, sizeof(g->id), "%s-%s", kind == API_CHAT ? "chatcmpl" : "cmpl", hex);
    /* SPM: a completion keeps the space that continues the prompt. */
    sched_params p = {.prompt = ids, .n_prompt = (int)n,
                      .gen = {.sample = req.sample, .max_tokens = req.max_tokens, .stop = req.stop,
                              .n_stop = req.n_stop, .continues_prompt = kind == API_COMPLETION,
                              .allow = req.json_mode ? json_allow : NULL, .allow_arg = g},
                      .want_logits = req.logprobs > 0, .on_token = on_token, .on_done = on_done,
                      .arg = g};
    if (!req.has_seed && secure_random((uint8_t *)&p.gen.sample.seed, sizeof(p.gen.sample.seed)) != CAI_OK)
        p.gen.sample.seed = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)g;
    if (sv->cfg.receipts) {
        uint8_t h[32];
        char rh[65];
        if (kdf_sha256(body, len, h) == CAI_OK) {
            hex_encode(rh, h, sizeof(h));
            /* The parameters the sampler ran with (floats as sent to it),
             * the seed it used (the server's own when the request gave none). */
            g->receipt = json_pack(
                "{s:i, s:s, s:I, s:s, s:s, s:s, s:{s:f, s:f, s:i, s:f, s:f, s:f, s:f, s:s, s:i}}",
                "version", 1, "id", g->id, "created", (json_int_t)g->created, "model", sv->model_id,
                "model_digest", sv->digest, "request_sha256", rh, "params",
                "temperature", (double)p.gen.sample.temperature, "top_p", (double)p.gen.sample.top_p,
                "top_k", p.gen.sample.top_k, "min_p", (double)p.gen.sample.min_p,
                "repetition_penalty", (double)p.gen.sample.repeat_penalty,
                "presence_penalty", (double)p.gen.sample.presence_penalty,
                "frequency_penalty", (double)p.gen.sample.frequency_penalty,
                "seed", "", "max_tokens", p.gen.max_tokens);
            char seed[24];
            snprintf(seed, sizeof(seed), "%llu", (unsigned long long)p.gen.sample.seed);
            json_object_set_new(json_object_get(g->receipt, "params"), "seed", json_string(seed));
        }
    }
    g->a = httpd_async_new(r, on_end, g);
    if (g->a == NULL) { /* answered 500 already */
        api_request_free(&req);
        free(ids);
        atomic_store(&g->refs, 1);
        gen_release(g);
        return;
    }
    /* Submitted first, so that a refusal (queue full, prompt too long) is a
     * real 429/400 and not an error inside a 200 stream. The stream's
     * headers go out after: events the engine writes meanwhile wait in the
     * async until then (httpd sends no chunk before the status line). */
    st = sched_submit(sv->s, &p, &g->req); /* copies the prompt and the stop strings */
    api_request_free(&req);
    free(ids);
    if (st != CAI_OK) {
        int status = st == CAI_ERR_LIMIT ? 429 : st == CAI_ERR_NOMEM ? 500 : 400;
        char *s = openai_error_body(status, cai_errmsg(st));
        if (s == NULL)
            status = 500;
        if (s)
            (void)httpd_async_reply(g->a, status, "application/json", s, strlen(s));
        else
            (void)httpd_async_reply(g->a, 500, "text/plain", "out of memory\n", 14);
        free(s);
        count(sv, ep, status);
        gen_release(g); /* the engine's reference: it never got it */
    } else if (g->stream) {
        (void)httpd_async_stream_start(g->a, 200, "text/event-stream");
    }
    gen_release(g); /* the handler's reference */
}

static void h_chat(httpd_req *r, void *arg) { handle_generate(arg, r, API_CHAT); }
static void h_completions(httpd_req *r, void *arg) { handle_generate(arg, r, API_COMPLETION); }

static void h_models(httpd_req *r, void *arg) {
    server *sv = arg;
    if (is_preflight(r))
        return h_options(r, sv);
    add_cors(sv, r);
    if (!authorized(sv, r, EP_MODELS))
        return;
    json_t *m = json_pack("{s:s, s:s, s:I, s:s}", "id", sv->model_id, "object", "model", "created",
                          (json_int_t)sv->created, "owned_by", "cai");
    const char *path = httpd_path(r);
    if (strncmp(path, "/v1/models/", 11) == 0) {
        /* A name the server answers to (its id or an alias): the model. */
        api_error e;
        if (api_check_model(path + 11, sv->model_id, sv->cfg.aliases,
                            (size_t)sv->cfg.n_aliases, &e) != CAI_OK) {
            json_decref(m);
            return reply_api_error(sv, r, EP_MODELS, &e);
        }
        count(sv, EP_MODELS, 200);
        return httpd_reply_json(r, 200, m);
    }
    count(sv, EP_MODELS, 200);
    httpd_reply_json(r, 200, json_pack("{s:s, s:[o]}", "object", "list", "data", m));
}

static void h_health(httpd_req *r, void *arg) {
    server *sv = arg;
    int st = atomic_load(&sv->state);
    count(sv, EP_HEALTH, st == 1 ? 200 : 503);
    httpd_reply_json(r, st == 1 ? 200 : 503,
                     json_pack("{s:s}", "status", st == 1 ? "ok" : st == 0 ? "loading" : "failed"));
}

static void on_attestation_reply(void *arg, int status) { count(arg, EP_ATTESTATION, status); }

/* GET /v1/attestation?nonce=HEX: evidence binding the nonce and the model
 * digest, produced by the attestation worker. Open without the API key: a
 * client checks the server before it sends anything, the key included. */
static void h_attestation(httpd_req *r, void *arg) {
    server *sv = arg;
    if (is_preflight(r))
        return h_options(r, sv);
    add_cors(sv, r);
    if (strcmp(httpd_method(r), "GET") != 0)
        return reply_error(sv, r, EP_ATTESTATION, 405, NULL, "use GET");
    if (!sv->has_tee) {
        api_error e;
        api_error_set(&e, 501, NULL, "attestation is not available: this server was started "
                      "without a TEE (cai serve --tee tdx, or --tee sim for development)");
        snprintf(e.code, sizeof(e.code), "no_tee_configured");
        return reply_api_error(sv, r, EP_ATTESTATION, &e);
    }
    const char *hex = httpd_query(r, "nonce");
    uint8_t nonce[ATTEST_NONCE_MAX];
    size_t n = 0;
    cai_status st = hex ? attest_nonce_parse(hex, nonce, &n) : CAI_ERR_INVALID_ARG;
    if (st != CAI_OK) {
        api_error e;
        api_error_set(&e, 400, "nonce", "%s", hex ? cai_errmsg(st) :
                      "give a fresh random nonce: /v1/attestation?nonce=HEX (16 to 64 bytes)");
        snprintf(e.code, sizeof(e.code), "invalid_nonce");
        return reply_api_error(sv, r, EP_ATTESTATION, &e);
    }
    if (!ready(sv, r, EP_ATTESTATION))
        return;
    CAI_ASSERT(sv->have_digest); /* the loader sets it before ready */
    httpd_async *a = httpd_async_new(r, NULL, NULL);
    if (a == NULL) /* answered 500 already */
        return count(sv, EP_ATTESTATION, 500);
    if ((st = attestation_submit(sv->att, a, nonce, n, sv->digest_raw, sv->model_id)) != CAI_OK) {
        int status = st == CAI_ERR_LIMIT ? 429 : 500;
        char *s = openai_error_body(status, cai_errmsg(st));
        if (s)
            (void)httpd_async_reply(a, status, "application/json", s, strlen(s));
        free(s);
        count(sv, EP_ATTESTATION, status);
        httpd_async_release(a);
    }
}

static void h_metrics(httpd_req *r, void *arg) {
    server *sv = arg;
    buf b;
    buf_init(&b, 0);
    static const char *const CLS[] = {"2xx", "3xx", "4xx", "5xx", "other"};
    buf_printf(&b, "# HELP cai_http_requests_total HTTP requests by endpoint and status class.\n"
                   "# TYPE cai_http_requests_total counter\n");
    for (int e = 0; e < EP_COUNT_; e++)
        for (int c = 0; c < 5; c++)
            buf_printf(&b, "cai_http_requests_total{endpoint=\"%s\",code=\"%s\"} %llu\n", EP_NAMES[e],
                       CLS[c], (unsigned long long)atomic_load(&sv->http[e][c]));
    buf_printf(&b, "# HELP cai_prompt_tokens_total Prompt tokens processed.\n# TYPE cai_prompt_tokens_total counter\n"
                   "cai_prompt_tokens_total %llu\n"
                   "# HELP cai_completion_tokens_total Tokens generated.\n# TYPE cai_completion_tokens_total counter\n"
                   "cai_completion_tokens_total %llu\n",
               (unsigned long long)atomic_load(&sv->prompt_tokens),
               (unsigned long long)atomic_load(&sv->completion_tokens));
    if (sv->s) {
        sched_stats s;
        sched_get_stats(sv->s, &s);
        buf_printf(&b, "# HELP cai_requests_active Generations running.\n# TYPE cai_requests_active gauge\n"
                       "cai_requests_active %d\n# HELP cai_requests_queued Requests waiting for a slot.\n"
                       "# TYPE cai_requests_queued gauge\ncai_requests_queued %d\n"
                       "# HELP cai_slots Concurrent generation slots.\n# TYPE cai_slots gauge\ncai_slots %d\n",
                   s.active, s.queued, s.n_slots);
    }
    const struct { const char *name, *help; histogram *h; } hs[] = {
        {"cai_request_duration_seconds", "Time from request to the last token.", &sv->latency},
        {"cai_time_to_first_token_seconds", "Time from request to the first token.", &sv->ttft}};
    for (int k = 0; k < 2; k++) {
        buf_printf(&b, "# HELP %s %s\n# TYPE %s histogram\n", hs[k].name, hs[k].help, hs[k].name);
        unsigned long long cum = 0;
        for (int i = 0; i <= N_BUCKETS; i++) {
            cum += atomic_load(&hs[k].h->count[i]);
            if (i < N_BUCKETS)
                buf_printf(&b, "%s_bucket{le=\"%g\"} %llu\n", hs[k].name, BUCKETS[i], cum);
            else
                buf_printf(&b, "%s_bucket{le=\"+Inf\"} %llu\n", hs[k].name, cum);
        }
        buf_printf(&b, "%s_sum %g\n%s_count %llu\n", hs[k].name, atomic_load(&hs[k].h->sum), hs[k].name,
                   (unsigned long long)atomic_load(&hs[k].h->n));
    }
    httpd_reply(r, 200, "text/plain; version=0.0.4", b.data, b.len);
    buf_free(&b);
}

static void h_static(httpd_req *r, void *arg) {
    server *sv = arg;
    const char *path = httpd_path(r);
    if (strcmp(path, "/") == 0)
        path = "/index.html";
    for (size_t i = 0; i < web_assets_count; i++) {
        const web_asset *a = &web_assets[i];
        if (strcmp(a->path, path) == 0) {
            httpd_add_header(r, "Content-Security-Policy",
                             "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:");
            httpd_add_header(r, "X-Content-Type-Options", "nosniff");
            httpd_add_header(r, "Referrer-Policy", "no-referrer");
            httpd_reply(r, 200, a->type, a->data, a->len);
            return;
        }
    }
    reply_error(sv, r, EP_OTHER, 404, NULL, "not found");
}

/* Everything under / that is not an API path: the web page, and preflight. */
static void h_root(httpd_req *r, void *arg) {
    server *sv = arg;
    if (is_preflight(r))
        return h_options(r, sv);
    h_static(r, arg);
}

/* ---- lifecycle ------------------------------------------------------------------ */

/* Decrypts the sealed model into a sealed memfd: the plaintext never
 * touches a disk, and the key is wiped as soon as it has been used. */
static cai_status unseal(server *sv) {
    int fd = open(sv->cfg.sealed_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        secure_wipe(sv->cfg.key, sizeof(sv->cfg.key));
        return cai_fail(CAI_ERR_IO, "cannot open %s", sv->cfg.sealed_path);
    }
    uint8_t digest[SEAL_DIGEST_LEN];
    cai_status st = seal_unseal_memfd(fd, sv->cfg.key, sv->cfg.threads ? sv->cfg.threads : pool_cpu_count(),
                                      SEAL_VERIFY_DIGEST, &sv->cfg.model_fd, digest);
    secure_wipe(sv->cfg.key, sizeof(sv->cfg.key));
    close(fd);
    if (st == CAI_OK) {
        memcpy(sv->digest_raw, digest, sizeof(sv->digest_raw));
        sv->have_digest = 1;
        hex_encode(sv->digest, digest, sizeof(digest));
        log_info("model unsealed into memory, sha256:%s", sv->digest);
    }
    return st;
}

/* Opens the model file once and, for attestation, hashes the bytes of that
 * open file before the engine maps the same fd. (A host that can write the
 * file can still change it afterwards: -m is for development; the sealed
 * boot serves a sealed memfd.) */
static cai_status open_plain(server *sv) {
    int fd = sv->cfg.model_fd;
    if (sv->cfg.model_path && (fd = open(sv->cfg.model_path, O_RDONLY | O_CLOEXEC)) < 0)
        return cai_fail(CAI_ERR_IO, "cannot open %s", sv->cfg.model_path);
    cai_status st = CAI_OK;
    if (sv->has_tee && !sv->have_digest) {
        struct stat sb;
        if (fstat(fd, &sb) != 0 || sb.st_size < 0)
            st = cai_fail(CAI_ERR_IO, "cannot size the model");
        else if ((st = seal_digest_fd(fd, (uint64_t)sb.st_size, sv->digest_raw)) == CAI_OK) {
            hex_encode(sv->digest, sv->digest_raw, sizeof(sv->digest_raw));
            sv->have_digest = 1;
            log_info("model sha256:%s (bound into /v1/attestation)", sv->digest);
        }
    }
    if (st == CAI_OK)
        st = llm_engine_open(NULL, fd, sv->cfg.chat_template, &sv->e);
    if (sv->cfg.model_path)
        close(fd);
    return st;
}

static void *loader_main(void *arg) {
    server *sv = arg;
    cai_status st = sv->cfg.sealed_path ? unseal(sv) : CAI_OK;
    if (st == CAI_OK)
        st = open_plain(sv);
    if (st == CAI_OK) {
        const llm_hparams *hp = llm_model_hparams(llm_engine_model(sv->e));
        int n_ctx = sv->cfg.n_ctx < hp->n_ctx_train ? sv->cfg.n_ctx : hp->n_ctx_train;
        st = llm_ctx_new(llm_engine_model(sv->e), n_ctx, sv->cfg.slots, sv->cfg.threads, &sv->ctx);
    }
    if (st == CAI_OK)
        st = sched_new(sv->e, sv->ctx, sv->cfg.slots, sv->cfg.queue, &sv->s);
    if (st != CAI_OK) {
        log_error("cannot load the model: %s", cai_errmsg(st));
        atomic_store(&sv->state, -1);
        return NULL;
    }
    if (st == CAI_OK && sv->ratls)
        st = ratls_server_start(sv->ratls, &sv->tee, sv->digest_raw, sv->cfg.tls_refresh_s);
    if (st != CAI_OK) {
        log_error("cannot serve attested TLS: %s", cai_errmsg(st));
        atomic_store(&sv->state, -1);
        return NULL;
    }
    if (sv->model_id[0] == '\0')
        snprintf(sv->model_id, sizeof(sv->model_id), "%s", llm_engine_name(sv->e));
    log_info("model ready: %s (%s, %d layers), %d slots of %d tokens", sv->model_id,
             llm_model_hparams(llm_engine_model(sv->e))->arch_name, llm_model_hparams(llm_engine_model(sv->e))->n_layer,
             sv->cfg.slots, llm_ctx_n_ctx(sv->ctx));
    atomic_store(&sv->state, 1);
    return NULL;
}

cai_status server_start(const serve_config *cfg, server **out) {
    *out = NULL;
    server *sv = calloc(1, sizeof(*sv));
    if (sv == NULL)
        return CAI_ERR_NOMEM;
    sv->cfg = *cfg;
    if (cfg->sealed_path)
        sv->cfg.model_fd = -1;
    if (!sv->cfg.slots)
        sv->cfg.slots = 4;
    if (!sv->cfg.n_ctx)
        sv->cfg.n_ctx = 4096;
    if (!sv->cfg.max_body)
        sv->cfg.max_body = 4u << 20;
    sv->created = time(NULL);
    if (cfg->model_id) {
        snprintf(sv->model_id, sizeof(sv->model_id), "%s", cfg->model_id);
    } else if (cfg->model_path || cfg->sealed_path) {
        const char *p = cfg->model_path ? cfg->model_path : cfg->sealed_path;
        const char *base = strrchr(p, '/');
        snprintf(sv->model_id, sizeof(sv->model_id), "%s", base ? base + 1 : p);
        char *dot = strchr(sv->model_id, '.');
        if (dot)
            *dot = '\0';
    }
    httpd_config hc = {.host = cfg->host, .port = cfg->port, .max_body = sv->cfg.max_body,
                       .max_connections = 512, .timeout_s = 600,
                       .tls_cert_file = cfg->tls_cert_file, .tls_key_file = cfg->tls_key_file};
    cai_status st = CAI_OK;
    if (cfg->tls_attested) {
        if (cfg->tee == NULL) {
            free(sv);
            return cai_fail(CAI_ERR_INVALID_ARG, "attested TLS needs a TEE to attest (--tee)");
        }
        if (!sv->cfg.tls_refresh_s)
            sv->cfg.tls_refresh_s = RATLS_REFRESH_DEFAULT;
        if ((st = ratls_server_new(&sv->ratls)) != CAI_OK) {
            free(sv);
            return st;
        }
        hc.ssl_ctx = ratls_server_ssl_ctx(sv->ratls);
    }
    if ((st = httpd_new(&hc, &sv->h)) != CAI_OK) {
        ratls_server_free(sv->ratls);
        free(sv);
        return st;
    }
    if (cfg->tee) {
        sv->tee = *cfg->tee;
        sv->has_tee = 1;
        if ((st = attestation_new(&sv->tee, 16, on_attestation_reply, sv, &sv->att)) != CAI_OK) {
            httpd_free(sv->h);
            ratls_server_free(sv->ratls);
            free(sv);
            return st;
        }
    }
    httpd_set_error_body(sv->h, openai_error_body);
    httpd_route(sv->h, "/v1/chat/completions", h_chat, sv);
    httpd_route(sv->h, "/v1/completions", h_completions, sv);
    httpd_route(sv->h, "/v1/models", h_models, sv);
    httpd_route(sv->h, "/v1/models/", h_models, sv);
    httpd_route(sv->h, "/v1/attestation", h_attestation, sv);
    httpd_route(sv->h, "/health", h_health, sv);
    httpd_route(sv->h, "/metrics", h_metrics, sv);
    httpd_route(sv->h, "/", h_root, sv);
    if (pthread_create(&sv->loader, NULL, loader_main, sv) != 0) {
        server_free(sv);
        return cai_fail(CAI_ERR_INTERNAL, "cannot start the loader");
    }
    sv->loader_started = 1;
    *out = sv;
    return CAI_OK;
}

int server_port(const server *s) { return httpd_port(s->h); }
cai_status server_run(server *s) { return httpd_run(s->h); }
void server_stop(server *s) { httpd_stop(s->h); }

void server_free(server *sv) {
    if (sv == NULL)
        return;
    if (sv->loader_started)
        pthread_join(sv->loader, NULL);
    secure_wipe(sv->cfg.key, sizeof(sv->cfg.key));
    sched_free(sv->s); /* finishes running requests as cancelled */
    attestation_free(sv->att); /* drops waiting requests */
    httpd_free(sv->h);
    ratls_server_free(sv->ratls); /* after httpd: its SSL_CTX served the connections */
    llm_ctx_free(sv->ctx);
    llm_engine_free(sv->e);
    if (sv->cfg.sealed_path && sv->cfg.model_fd >= 0)
        close(sv->cfg.model_fd);
    free(sv);
}

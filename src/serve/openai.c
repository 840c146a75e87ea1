/* openai.c - generation requests: from the parsed request to the answer. */
#include "serve/openai.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/codec.h"
#include "common/log.h"
#include "common/secure.h"
#include "crypto/kdf.h"
#include "llm/jsonc.h"
#include "ratls/receipt.h"
#include "serve/access.h"
#include "serve/api.h"
#include "serve/server_int.h"

/* One generation, shared by the handler, the engine's callbacks and the
 * connection (httpd's end callback): freed when the last lets go. */
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
    metrics_endpoint ep = g->kind == API_CHAT ? METRICS_EP_CHAT : METRICS_EP_COMPLETIONS;
    const char *finish = why == LLM_FINISH_LENGTH || why == LLM_FINISH_CONTEXT ? "length" : "stop";
    metrics_generation(&sv->m, u);
    json_t *usage = json_pack("{s:i, s:i, s:i}", "prompt_tokens", u->prompt_tokens, "completion_tokens",
                              u->completion_tokens, "total_tokens", u->prompt_tokens + u->completion_tokens);
    if (why == LLM_FINISH_CANCELLED) {
        json_decref(usage);
        metrics_count(&sv->m, ep, 499);
    } else if (why == LLM_FINISH_ERROR) {
        json_decref(usage);
        char *s = access_error_body(500, "generation failed");
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
        metrics_count(&sv->m, ep, 500);
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
        metrics_count(&sv->m, ep, 200);
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
        metrics_count(&sv->m, ep, 200);
    }
    gen_release(g); /* the engine's reference */
}

static void on_end(void *arg, int client_gone) {
    gen *g = arg;
    if (client_gone && g->req)
        sched_cancel(g->req);
    gen_release(g); /* httpd's reference */
}

/* Parses a generation request and builds its prompt: CAI_OK with |req|
 * and |*ids| (n tokens; caller frees both), or the refusal answered. */
static cai_status read_request(server *sv, httpd_req *r, api_kind kind, api_request *req,
                               int32_t **ids, size_t *n) {
    metrics_endpoint ep = kind == API_CHAT ? METRICS_EP_CHAT : METRICS_EP_COMPLETIONS;
    size_t len;
    const char *body = httpd_body(r, &len);
    api_error err;
    cai_status st = kind == API_CHAT ? api_parse_chat(body, len, req, &err)
                                     : api_parse_completion(body, len, req, &err);
    if (st == CAI_OK && (st = api_check_model(req->model, sv->model_id, sv->cfg.aliases,
                                              (size_t)sv->cfg.n_aliases, &err)) != CAI_OK)
        api_request_free(req);
    if (st != CAI_OK) {
        access_reply_api_error(sv, r, ep, &err);
        return st;
    }
    if (!req->max_tokens_set && sv->cfg.max_tokens_default > 0)
        req->max_tokens = sv->cfg.max_tokens_default;
    /* the model's generation defaults (cai model import) where the request
     * gave none: it answers as its own server would unless asked otherwise */
    unsigned gen_set;
    const sample_params *defaults = llm_engine_gen(sv->e, &gen_set);
    sample_params_merge(&req->sample, defaults, gen_set, req->sample_set);
    size_t cap = 0;
    *ids = NULL;
    *n = 0;
    st = kind == API_CHAT ? llm_engine_chat_prompt(sv->e, req->messages, req->n_messages, ids, n, &cap)
                          : llm_engine_text_prompt(sv->e, req->prompt, ids, n, &cap);
    if (st == CAI_OK && *n == 0)
        st = cai_fail(CAI_ERR_INVALID_ARG, "the prompt is empty");
    if (st != CAI_OK) {
        api_request_free(req);
        free(*ids);
        *ids = NULL;
        access_reply_error(sv, r, ep, st == CAI_ERR_NOMEM ? 500 : 400,
                           kind == API_CHAT ? "messages" : "prompt", cai_errmsg(st));
    }
    return st;
}

/* A new generation for |req| with its three references (handler, engine,
 * httpd) and a fresh id, or NULL when out of memory. */
static gen *gen_new(server *sv, api_kind kind, const api_request *req, size_t n_prompt) {
    gen *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return NULL;
    atomic_init(&g->refs, 3);
    g->sv = sv;
    g->kind = kind;
    g->stream = req->stream;
    g->include_usage = req->include_usage;
    g->logprobs = req->logprobs;
    g->top_logprobs = req->top_logprobs;
    g->created = time(NULL);
    g->n_prompt = (int)n_prompt;
    g->lp = json_array();
    g->json_mode = req->json_mode;
    jsonc_init(&g->json);
    uint8_t rnd[12] = {0};
    char hex[25];
    if (secure_random(rnd, sizeof(rnd)) != CAI_OK)
        log_warn("no randomness for a completion id");
    hex_encode(hex, rnd, sizeof(rnd));
    snprintf(g->id, sizeof(g->id), "%s-%s", kind == API_CHAT ? "chatcmpl" : "cmpl", hex);
    return g;
}

/* --receipts: the receipt's fields known now, in g->receipt: the request's
 * hash, the parameters the sampler runs with (floats as sent to it) and the
 * seed it uses (the server's own when the request gave none). */
static void receipt_start(gen *g, const char *body, size_t len, const sched_params *p) {
    uint8_t h[32];
    char rh[65];
    if (kdf_sha256(body, len, h) != CAI_OK)
        return;
    hex_encode(rh, h, sizeof(h));
    g->receipt = json_pack(
        "{s:i, s:s, s:I, s:s, s:s, s:s, s:{s:f, s:f, s:i, s:f, s:f, s:f, s:f, s:s, s:i}}",
        "version", 1, "id", g->id, "created", (json_int_t)g->created, "model", g->sv->model_id,
        "model_digest", g->sv->digest, "request_sha256", rh, "params",
        "temperature", (double)p->gen.sample.temperature, "top_p", (double)p->gen.sample.top_p,
        "top_k", p->gen.sample.top_k, "min_p", (double)p->gen.sample.min_p,
        "repetition_penalty", (double)p->gen.sample.repeat_penalty,
        "presence_penalty", (double)p->gen.sample.presence_penalty,
        "frequency_penalty", (double)p->gen.sample.frequency_penalty,
        "seed", "", "max_tokens", p->gen.max_tokens);
    char seed[24];
    snprintf(seed, sizeof(seed), "%llu", (unsigned long long)p->gen.sample.seed);
    json_object_set_new(json_object_get(g->receipt, "params"), "seed", json_string(seed));
}

/* Answers a request the scheduler refused (|st|) and counts it. */
static void reply_refused(gen *g, metrics_endpoint ep, cai_status st) {
    int status = st == CAI_ERR_LIMIT ? 429 : st == CAI_ERR_NOMEM ? 500 : 400;
    char *s = access_error_body(status, cai_errmsg(st));
    if (s == NULL)
        status = 500;
    if (s)
        (void)httpd_async_reply(g->a, status, "application/json", s, strlen(s));
    else
        (void)httpd_async_reply(g->a, 500, "text/plain", "out of memory\n", 14);
    free(s);
    metrics_count(&g->sv->m, ep, status);
}

static void handle_generate(server *sv, httpd_req *r, api_kind kind) {
    metrics_endpoint ep = kind == API_CHAT ? METRICS_EP_CHAT : METRICS_EP_COMPLETIONS;
    if (access_is_preflight(r))
        return access_preflight(sv, r);
    access_cors(sv, r);
    if (strcmp(httpd_method(r), "POST") != 0)
        return access_reply_error(sv, r, ep, 405, NULL, "use POST");
    if (!access_authorized(sv, r, ep) || !access_ready(sv, r, ep))
        return;
    api_request req;
    int32_t *ids;
    size_t n;
    if (read_request(sv, r, kind, &req, &ids, &n) != CAI_OK)
        return; /* answered */
    gen *g = gen_new(sv, kind, &req, n);
    if (g == NULL) {
        api_request_free(&req);
        free(ids);
        return access_reply_error(sv, r, ep, 500, NULL, "out of memory");
    }
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
        size_t len;
        const char *body = httpd_body(r, &len);
        receipt_start(g, body, len, &p);
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
    cai_status st = sched_submit(sv->s, &p, &g->req); /* copies the prompt and the stop strings */
    api_request_free(&req);
    free(ids);
    if (st != CAI_OK) {
        reply_refused(g, ep, st);
        gen_release(g); /* the engine's reference: it never got it */
    } else if (g->stream) {
        (void)httpd_async_stream_start(g->a, 200, "text/event-stream");
    }
    gen_release(g); /* the handler's reference */
}

void openai_chat(httpd_req *r, void *arg) { handle_generate(arg, r, API_CHAT); }
void openai_completions(httpd_req *r, void *arg) { handle_generate(arg, r, API_COMPLETION); }

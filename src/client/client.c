/* client.c - a cai server's client over httpc: models, streamed chat,
 * attestation. */
#include "client/client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/binding.h"
#include "attest/quote.h"
#include "client/sse.h"
#include "common/codec.h"
#include "net/httpc.h"
#include "common/secure.h"

struct client {
    char *url; /* without a trailing '/' */
    char *auth; /* "Authorization: Bearer KEY", or NULL */
    cai_status (*tls_setup)(void *ssl_ctx, void *arg);
    void *tls_setup_arg;
    httpc *http; /* made at the first request, with the TLS check set then */
};

void client_set_tls(client *c, cai_status (*setup)(void *ssl_ctx, void *arg), void *arg) {
    c->tls_setup = setup;
    c->tls_setup_arg = arg;
    httpc_free(c->http);
    c->http = NULL;
}

cai_status client_new(const char *url, const char *api_key, client **out) {
    *out = NULL;
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
        return cai_fail(CAI_ERR_INVALID_ARG, "the URL must start with http:// or https://, not '%s'", url);
    if (strpbrk(url, " \t\r\n?#"))
        return cai_fail(CAI_ERR_INVALID_ARG, "the URL must be the server's address, like http://127.0.0.1:7860");
    client *c = calloc(1, sizeof(*c));
    if (c == NULL || (c->url = strdup(url)) == NULL)
        goto nomem;
    size_t n = strlen(c->url);
    while (n > 0 && c->url[n - 1] == '/')
        c->url[--n] = '\0';
    if (api_key) {
        size_t len = strlen("Authorization: Bearer ") + strlen(api_key) + 1;
        if ((c->auth = malloc(len)) == NULL)
            goto nomem;
        snprintf(c->auth, len, "Authorization: Bearer %s", api_key);
    }
    *out = c;
    return CAI_OK;
nomem:
    client_free(c);
    return CAI_ERR_NOMEM;
}

void client_free(client *c) {
    if (c == NULL)
        return;
    httpc_free(c->http);
    free(c->url);
    if (c->auth) {
        secure_wipe(c->auth, strlen(c->auth));
        free(c->auth);
    }
    free(c);
}

/* ---- one request ---------------------------------------------------------- */

typedef struct {
    long status;
    buf body; /* a non-streamed answer, or an error answer of a stream */
    int over; /* the body was larger than CLIENT_MAX_BODY */
    /* streams */
    sse_parser *sse;
    cai_status stream_st;
    volatile sig_atomic_t *cancel;
    int stopped;
} request;

static int on_status(void *arg, long status) {
    ((request *)arg)->status = status;
    return 0;
}

static int on_cancelled(void *arg) {
    request *r = arg;
    if (r->cancel && *r->cancel)
        r->stopped = 1; /* closes the connection: the server cancels the generation */
    return r->stopped;
}

static int on_data(void *arg, const void *p, size_t n) {
    request *r = arg;
    if (on_cancelled(r))
        return 1;
    if (r->sse == NULL || r->status != 200) { /* an answer, or an error document */
        r->over = buf_append(&r->body, p, n) != CAI_OK;
        return r->over;
    }
    return (r->stream_st = sse_feed(r->sse, p, n)) != CAI_OK;
}

/* Sends |json_body| (NULL: a GET) to |path| and streams the answer into |r|
 * (request_init'ed): to r->sse when set and the status is 200, else to
 * r->body. No timeout, as a reply is generated at its own pace; connecting
 * gives up after httpc's 10 s. A server that cannot be reached gets a
 * message saying so. */
static cai_status request_send(client *c, request *r, const char *path, const char *json_body) {
    char url[2048];
    if ((size_t)snprintf(url, sizeof(url), "%s%s", c->url, path) >= sizeof(url))
        return cai_fail(CAI_ERR_LIMIT, "the URL is too long");
    cai_status st = CAI_OK;
    if (c->http == NULL) {
        httpc_opts o = {.timeout_s = 0, .user_agent = "cai-chat/0.1", .tls_setup = c->tls_setup,
                        .tls_setup_arg = c->tls_setup_arg};
        if ((st = httpc_new(&o, &c->http)) != CAI_OK)
            return st;
    }
    const char *headers[] = {"Accept: application/json, text/event-stream", c->auth, NULL};
    httpc_request rq = {.method = json_body ? "POST" : "GET", .url = url,
                        .content_type = json_body ? "application/json" : NULL,
                        .headers = headers, .body = json_body,
                        .body_len = json_body ? strlen(json_body) : 0};
    httpc_sink sink = {.on_status = on_status, .on_data = on_data, .cancelled = on_cancelled,
                       .arg = r};
    long status = 0;
    st = httpc_stream(c->http, &rq, &sink, &status);
    if (r->status == 0)
        r->status = status;
    if (st != CAI_OK && httpc_unreachable(c->http))
        st = cai_fail(CAI_ERR_IO, "cannot reach %s: %s (is cai serve running there?)", c->url,
                      cai_errmsg(st));
    return st;
}

static void request_init(request *r) {
    memset(r, 0, sizeof(*r));
    buf_init(&r->body, CLIENT_MAX_BODY);
}

static void request_cleanup(request *r) { buf_free(&r->body); }

/* The server's error message from an OpenAI error body, or a generic one. */
static cai_status http_error(client *c, request *r) {
    json_t *j = r->body.len ? json_loadb((const char *)r->body.data, r->body.len, 0, NULL) : NULL;
    const char *msg = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
    cai_status st = cai_fail(CAI_ERR_INVALID_ARG, "%s answered HTTP %ld: %s", c->url, r->status,
                             msg ? msg : "(no error message)");
    json_decref(j);
    return st;
}

/* GET |path| into r->body; a non-200 answer is an error. */
static cai_status get(client *c, request *r, const char *path) {
    request_init(r);
    cai_status st = request_send(c, r, path, NULL);
    if (r->over)
        return cai_fail(CAI_ERR_LIMIT, "%s%s: the answer is larger than %u bytes", c->url, path, CLIENT_MAX_BODY);
    if (st != CAI_OK)
        return st;
    return r->status == 200 ? CAI_OK : http_error(c, r);
}

static cai_status get_json(client *c, const char *path, json_t **out) {
    request r;
    *out = NULL;
    cai_status st = get(c, &r, path);
    if (st == CAI_OK && (*out = json_loadb((const char *)r.body.data, r.body.len, 0, NULL)) == NULL)
        st = cai_fail(CAI_ERR_FORMAT, "%s%s: the answer is not JSON", c->url, path);
    request_cleanup(&r);
    return st;
}

cai_status client_model(client *c, char *out, size_t cap) {
    json_t *j;
    cai_status st = get_json(c, "/v1/models", &j);
    if (st != CAI_OK)
        return st;
    const char *id = json_string_value(json_object_get(json_array_get(json_object_get(j, "data"), 0), "id"));
    if (id == NULL)
        st = cai_fail(CAI_ERR_FORMAT, "%s/v1/models lists no model", c->url);
    else if ((size_t)snprintf(out, cap, "%s", id) >= cap)
        st = cai_fail(CAI_ERR_LIMIT, "the model id is too long");
    json_decref(j);
    return st;
}

/* ---- attestation ------------------------------------------------------------ */

cai_status client_attest(client *c, const attest_verifier *v, time_t now, json_t **out) {
    *out = NULL;
    uint8_t nonce[32], digest[ATTEST_DIGEST_LEN], want[ATTEST_REPORT_DATA_LEN];
    char nonce_hex[65], path[128];
    json_t *j = NULL, *claims = NULL;
    uint8_t *quote = NULL;
    tdx_quote *q = NULL;
    size_t qlen = 0, dlen = 0;
    cai_status st = secure_random(nonce, sizeof(nonce));
    if (st != CAI_OK)
        return st;
    hex_encode(nonce_hex, nonce, sizeof(nonce));
    snprintf(path, sizeof(path), "/v1/attestation?nonce=%s", nonce_hex);
    if ((st = get_json(c, path, &j)) != CAI_OK)
        goto out;
    const char *q64 = json_string_value(json_object_get(j, "quote"));
    const char *dhex = json_string_value(json_object_get(j, "model_digest"));
    const char *model = json_string_value(json_object_get(j, "model"));
    if (q64 == NULL || dhex == NULL || model == NULL ||
        hex_decode(dhex, strlen(dhex), digest, sizeof(digest), &dlen) != CAI_OK || dlen != sizeof(digest)) {
        st = cai_fail(CAI_ERR_FORMAT, "the server's attestation lacks a quote, model or model digest");
        goto out;
    }
    size_t max = b64_decoded_max(strlen(q64));
    if (max > TDX_QUOTE_MAX_LEN)
        max = TDX_QUOTE_MAX_LEN;
    if ((quote = malloc(max ? max : 1)) == NULL) {
        st = CAI_ERR_NOMEM;
        goto out;
    }
    if (b64_decode(q64, strlen(q64), quote, max, &qlen, B64_STD) != CAI_OK) {
        st = cai_fail(CAI_ERR_FORMAT, "the server's quote is not base64 of at most %u bytes", TDX_QUOTE_MAX_LEN);
        goto out;
    }
    tdx_verify_result res;
    if ((st = attest_verify_claims(v, quote, qlen, now, &claims, &res)) != CAI_OK) {
        st = cai_fail(st, "the server's quote does not verify (%s): %s",
                      tdx_verify_error_str(res.error), cai_errmsg(st));
        goto out;
    }
    if ((st = tdx_quote_parse(quote, qlen, TDX_QUOTE_ALLOW_ZERO_PAD, &q)) != CAI_OK ||
        (st = attest_binding_report_data(nonce, sizeof(nonce), digest, want)) != CAI_OK)
        goto out;
    if (!secure_memeq(q->body.report_data, want, sizeof(want))) {
        st = cai_fail(CAI_ERR_AUTH, "the server's quote does not bind our nonce and the model digest "
                      "it names: a replayed or foreign quote");
        goto out;
    }
    if (tdx_quote_is_debug(q)) {
        st = cai_fail(CAI_ERR_AUTH, "the server's TD runs in debug mode: the host can read its memory");
        goto out;
    }
    char dh[2 * ATTEST_DIGEST_LEN + 1];
    hex_encode(dh, digest, sizeof(digest));
    if (json_object_set_new(claims, "model_digest", json_string(dh)) ||
        json_object_set_new(claims, "model", json_string(model))) {
        st = CAI_ERR_NOMEM;
        goto out;
    }
    *out = claims;
    claims = NULL;
out:
    tdx_quote_free(q);
    free(quote);
    json_decref(claims);
    json_decref(j);
    return st;
}

/* ---- streamed chat ---------------------------------------------------------- */

typedef struct {
    request r;
    void (*on_text)(void *, const char *, size_t);
    void *arg;
    buf *reply;
    int done;
} stream;

static cai_status on_event(void *arg, const char *data, size_t len) {
    stream *s = arg;
    if (s->done) /* nothing may follow [DONE] */
        return cai_fail(CAI_ERR_FORMAT, "the server sent events after [DONE]");
    if (strcmp(data, "[DONE]") == 0) {
        s->done = 1;
        return CAI_OK;
    }
    json_t *j = json_loadb(data, len, 0, NULL);
    if (j == NULL)
        return cai_fail(CAI_ERR_FORMAT, "the server streamed an event that is not JSON");
    cai_status st = CAI_OK;
    json_t *err = json_object_get(j, "error");
    if (err) {
        const char *m = json_string_value(json_object_get(err, "message"));
        st = cai_fail(CAI_ERR_IO, "the server stopped the reply: %s", m ? m : "(no message)");
    } else {
        json_t *delta = json_object_get(json_array_get(json_object_get(j, "choices"), 0), "delta");
        json_t *content = json_object_get(delta, "content");
        if (json_is_string(content) && json_string_length(content) > 0) {
            const char *t = json_string_value(content);
            size_t n = json_string_length(content);
            if (n > CLIENT_MAX_REPLY - s->reply->len)
                st = cai_fail(CAI_ERR_LIMIT, "the reply is longer than %u bytes", CLIENT_MAX_REPLY);
            else
                st = buf_append(s->reply, t, n);
            if (st == CAI_OK && s->on_text)
                s->on_text(s->arg, t, n);
        }
    }
    json_decref(j);
    return st;
}

static json_t *chat_body(const client_chat_req *q) {
    json_t *msgs = json_array();
    for (size_t i = 0; msgs && i < q->n_messages; i++)
        if (json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", q->messages[i].role, "content",
                                                  q->messages[i].content ? q->messages[i].content : "")))
            return json_decref(msgs), NULL;
    json_t *b = json_pack("{s:s, s:o, s:b}", "model", q->model, "messages", msgs, "stream", 1);
    if (b == NULL)
        return NULL;
    int bad = 0;
    if (q->max_tokens > 0)
        bad |= json_object_set_new(b, "max_tokens", json_integer(q->max_tokens));
    if (q->has_temperature)
        bad |= json_object_set_new(b, "temperature", json_real(q->temperature));
    if (q->has_top_p)
        bad |= json_object_set_new(b, "top_p", json_real(q->top_p));
    if (q->has_top_k)
        bad |= json_object_set_new(b, "top_k", json_integer(q->top_k));
    if (q->has_min_p)
        bad |= json_object_set_new(b, "min_p", json_real(q->min_p));
    if (q->has_repetition_penalty)
        bad |= json_object_set_new(b, "repetition_penalty", json_real(q->repetition_penalty));
    if (q->has_seed)
        bad |= json_object_set_new(b, "seed", json_integer((json_int_t)q->seed));
    return bad ? (json_decref(b), NULL) : b;
}

cai_status client_chat_stream(client *c, const client_chat_req *req,
                              void (*on_text)(void *, const char *, size_t), void *arg,
                              volatile sig_atomic_t *cancel, buf *reply, int *out_stopped) {
    *out_stopped = 0;
    stream s = {.on_text = on_text, .arg = arg, .reply = reply};
    sse_parser sse;
    sse_init(&sse, 0, on_event, &s);
    CAI_ASSERT(reply->len <= CLIENT_MAX_REPLY);
    json_t *b = chat_body(req);
    char *body = b ? json_dumps(b, JSON_COMPACT) : NULL;
    json_decref(b);
    request_init(&s.r);
    s.r.sse = &sse;
    s.r.cancel = cancel;
    cai_status st = body ? request_send(c, &s.r, "/v1/chat/completions", body) : CAI_ERR_NOMEM;
    free(body);
    if (s.r.stopped) {
        *out_stopped = 1;
        st = CAI_OK;
    } else if (s.r.stream_st != CAI_OK) {
        st = s.r.stream_st;
    } else if (s.r.over) {
        st = cai_fail(CAI_ERR_LIMIT, "the server's error answer is larger than %u bytes", CLIENT_MAX_BODY);
    } else if (st != CAI_OK) {
        /* as it is */
    } else if (s.r.status != 200) {
        st = http_error(c, &s.r);
    } else if (!s.done) {
        st = cai_fail(CAI_ERR_TRUNCATED, "the reply was cut off: the stream ended before [DONE]");
    }
    sse_cleanup(&sse);
    request_cleanup(&s.r);
    return st;
}

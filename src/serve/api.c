/* api.c - parsing OpenAI requests; every field checked, unknown ones refused. */
#include "serve/api.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/codec.h"

/* The length of the longest prefix of |s| of at most |max| bytes that ends
 * at a character boundary (so that a cut UTF-8 string stays valid). */
static size_t utf8_prefix(const char *s, size_t max) {
    size_t n = strlen(s);
    if (n <= max)
        return n;
    n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

/* Copies |src| into |dst| as valid UTF-8 (a sequence cut by a %.Ns or by
 * |cap| becomes U+FFFD or is dropped), as the error's JSON needs. */
static void copy_utf8(char *dst, size_t cap, const char *src) {
    buf b;
    buf_init(&b, 0);
    if (utf8_sanitize(src, strlen(src), &b) != CAI_OK || buf_terminate(&b) != CAI_OK) {
        snprintf(dst, cap, "(error message unavailable)");
    } else {
        size_t n = utf8_prefix((const char *)b.data, cap - 1);
        memcpy(dst, b.data, n);
        dst[n] = '\0';
    }
    buf_free(&b);
}

cai_status api_error_set(api_error *err, int status, const char *param, const char *fmt, ...) {
    memset(err, 0, sizeof(*err));
    err->status = status;
    err->type = status == 429 ? "rate_limit_error"
                : status == 401 ? "authentication_error"
                : status >= 500 ? "server_error"
                                : "invalid_request_error";
    copy_utf8(err->param, sizeof(err->param), param ? param : "");
    char msg[sizeof(err->message)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    copy_utf8(err->message, sizeof(err->message), msg);
    return CAI_ERR_INVALID_ARG;
}

char *api_error_json(const api_error *e) {
    json_t *o = json_pack("{s:{s:s, s:s, s:o, s:o}}", "error", "message", e->message, "type",
                          e->type ? e->type : "invalid_request_error", "param",
                          e->param[0] ? json_string(e->param) : json_null(), "code",
                          e->code[0] ? json_string(e->code) : json_null());
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

cai_status api_check_model(const char *requested, const char *id, const char *const *aliases,
                           size_t n_aliases, api_error *err) {
    if (requested == NULL || strcmp(requested, id) == 0)
        return CAI_OK;
    for (size_t i = 0; i < n_aliases; i++)
        if (strcmp(requested, aliases[i]) == 0)
            return CAI_OK;
    size_t n = utf8_prefix(requested, 96), m = utf8_prefix(id, 96);
    api_error_set(err, 404, "model", "The model '%.*s%s' does not exist: this server serves "
                  "'%.*s%s'", (int)n, requested, requested[n] ? "..." : "", (int)m, id,
                  id[m] ? "..." : "");
    snprintf(err->code, sizeof(err->code), "model_not_found");
    return CAI_ERR_NOT_FOUND;
}

void api_request_free(api_request *r) {
    json_decref(r->root);
    free(r->messages);
    memset(r, 0, sizeof(*r));
}

/* ---- field checks ----------------------------------------------------- */

static cai_status want_number(json_t *v, const char *k, double lo, double hi, double *out,
                              api_error *err) {
    if (!json_is_number(v))
        return api_error_set(err, 400, k, "'%s' must be a number", k);
    double d = json_number_value(v);
    if (!(d >= lo && d <= hi))
        return api_error_set(err, 400, k, "'%s' must be between %g and %g, got %g", k, lo, hi, d);
    *out = d;
    return CAI_OK;
}

static cai_status want_int(json_t *v, const char *k, json_int_t lo, json_int_t hi, json_int_t *out,
                           api_error *err) {
    if (!json_is_integer(v))
        return api_error_set(err, 400, k, "'%s' must be an integer", k);
    json_int_t i = json_integer_value(v);
    if (i < lo || i > hi)
        return api_error_set(err, 400, k, "'%s' must be between %lld and %lld, got %lld", k,
                             (long long)lo, (long long)hi, (long long)i);
    *out = i;
    return CAI_OK;
}

static cai_status want_bool(json_t *v, const char *k, int *out, api_error *err) {
    if (!json_is_boolean(v))
        return api_error_set(err, 400, k, "'%s' must be a boolean", k);
    *out = json_is_true(v);
    return CAI_OK;
}

static cai_status want_string(json_t *v, const char *k, const char **out, api_error *err) {
    if (!json_is_string(v))
        return api_error_set(err, 400, k, "'%s' must be a string", k);
    *out = json_string_value(v);
    return CAI_OK;
}

/* Content is a string or an array of {"type": "text", "text": ...} parts,
 * which are joined into one string stored back in the message. */
static cai_status parse_content(json_t *msg, size_t i, const char **out, api_error *err) {
    json_t *c = json_object_get(msg, "content");
    if (json_is_string(c)) {
        *out = json_string_value(c);
        return CAI_OK;
    }
    if (!json_is_array(c))
        return api_error_set(err, 400, "messages", "messages[%zu].content must be a string or "
                             "an array of text parts", i);
    size_t total = 0, j;
    json_t *part;
    json_array_foreach(c, j, part) {
        json_t *type = json_object_get(part, "type"), *text = json_object_get(part, "text");
        if (!json_is_object(part) || !json_is_string(type) ||
            strcmp(json_string_value(type), "text") != 0 || !json_is_string(text) ||
            json_object_size(part) != 2)
            return api_error_set(err, 400, "messages", "messages[%zu].content[%zu]: only "
                                 "{\"type\": \"text\", \"text\": ...} parts are supported", i, j);
        total += json_string_length(text);
    }
    char *joined = malloc(total + 1), *p = joined;
    if (joined == NULL)
        return api_error_set(err, 500, NULL, "out of memory");
    json_array_foreach(c, j, part) {
        json_t *text = json_object_get(part, "text");
        memcpy(p, json_string_value(text), json_string_length(text));
        p += json_string_length(text);
    }
    *p = '\0';
    json_t *s = json_stringn_nocheck(joined, total);
    free(joined);
    if (s == NULL || json_object_set_new(msg, "content", s) != 0)
        return api_error_set(err, 500, NULL, "out of memory");
    *out = json_string_value(json_object_get(msg, "content"));
    return CAI_OK;
}

static cai_status parse_messages(json_t *v, api_request *r, api_error *err) {
    if (!json_is_array(v) || json_array_size(v) == 0)
        return api_error_set(err, 400, "messages", "'messages' must be a non-empty array");
    size_t n = json_array_size(v);
    if (n > API_MAX_MESSAGES)
        return api_error_set(err, 400, "messages", "at most %d messages", API_MAX_MESSAGES);
    r->messages = calloc(n, sizeof(*r->messages));
    if (r->messages == NULL)
        return api_error_set(err, 500, NULL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(v, i), *role = json_object_get(m, "role");
        if (!json_is_object(m) || !json_is_string(role))
            return api_error_set(err, 400, "messages", "messages[%zu] must be an object with a "
                                 "string 'role'", i);
        const char *k;
        json_t *x;
        json_object_foreach(m, k, x) {
            if (strcmp(k, "role") != 0 && strcmp(k, "content") != 0 && strcmp(k, "name") != 0)
                return api_error_set(err, 400, "messages", "messages[%zu]: unsupported field "
                                     "'%.40s'", i, k);
            if (strcmp(k, "name") == 0 && !json_is_string(x))
                return api_error_set(err, 400, "messages", "messages[%zu].name must be a string", i);
        }
        const char *rs = json_string_value(role);
        if (strcmp(rs, "developer") == 0)
            rs = "system";
        if (strcmp(rs, "system") != 0 && strcmp(rs, "user") != 0 && strcmp(rs, "assistant") != 0)
            return api_error_set(err, 400, "messages", "messages[%zu].role must be system, "
                                 "developer, user or assistant (tools are not supported)", i);
        r->messages[i].role = rs;
        cai_status st = parse_content(m, i, &r->messages[i].content, err);
        if (st != CAI_OK)
            return st;
    }
    r->n_messages = n;
    return CAI_OK;
}

/* Fields both endpoints share; returns CAI_ERR_NOT_FOUND for others. */
static cai_status parse_common(const char *k, json_t *v, api_request *r, api_error *err) {
    double d;
    json_int_t i;
    cai_status st = CAI_OK;
    sample_params *p = &r->sample;
    if (strcmp(k, "model") == 0) {
        st = want_string(v, k, &r->model, err);
    } else if (strcmp(k, "user") == 0) {
        st = want_string(v, k, &r->user, err);
    } else if (strcmp(k, "stream") == 0) {
        st = want_bool(v, k, &r->stream, err);
    } else if (strcmp(k, "stream_options") == 0) {
        json_t *u = json_object_get(v, "include_usage");
        if (!json_is_object(v) || json_object_size(v) != (u ? 1u : 0u))
            return api_error_set(err, 400, k, "'stream_options' must be an object with only "
                                 "'include_usage'");
        if (u)
            st = want_bool(u, "stream_options.include_usage", &r->include_usage, err);
    } else if (strcmp(k, "max_tokens") == 0 || strcmp(k, "max_completion_tokens") == 0) {
        if ((st = want_int(v, k, 1, 1 << 24, &i, err)) == CAI_OK &&
            (strcmp(k, "max_completion_tokens") == 0 ||
             json_is_null(json_object_get(r->root, "max_completion_tokens")) ||
             !json_object_get(r->root, "max_completion_tokens")))
            r->max_tokens = (int)i;
        r->max_tokens_set = st == CAI_OK;
    } else if (strcmp(k, "temperature") == 0) {
        if ((st = want_number(v, k, 0, 2, &d, err)) == CAI_OK)
            p->temperature = (float)d;
        r->sample_set |= st == CAI_OK ? SAMPLE_SET_TEMPERATURE : 0u;
    } else if (strcmp(k, "top_p") == 0) {
        if ((st = want_number(v, k, 0, 1, &d, err)) == CAI_OK)
            p->top_p = d > 0 ? (float)d : 1e-9f; /* 0 keeps only the most likely token */
        r->sample_set |= st == CAI_OK ? SAMPLE_SET_TOP_P : 0u;
    } else if (strcmp(k, "top_k") == 0) {
        if ((st = want_int(v, k, 0, 1 << 20, &i, err)) == CAI_OK)
            p->top_k = (int)i;
        r->sample_set |= st == CAI_OK ? SAMPLE_SET_TOP_K : 0u;
    } else if (strcmp(k, "min_p") == 0) {
        if ((st = want_number(v, k, 0, 1, &d, err)) == CAI_OK)
            p->min_p = (float)d;
        r->sample_set |= st == CAI_OK ? SAMPLE_SET_MIN_P : 0u;
    } else if (strcmp(k, "repetition_penalty") == 0) {
        if ((st = want_number(v, k, 0.01, 100, &d, err)) == CAI_OK)
            p->repeat_penalty = (float)d;
        r->sample_set |= st == CAI_OK ? SAMPLE_SET_REPEAT : 0u;
    } else if (strcmp(k, "presence_penalty") == 0) {
        if ((st = want_number(v, k, -2, 2, &d, err)) == CAI_OK)
            p->presence_penalty = (float)d;
    } else if (strcmp(k, "frequency_penalty") == 0) {
        if ((st = want_number(v, k, -2, 2, &d, err)) == CAI_OK)
            p->frequency_penalty = (float)d;
    } else if (strcmp(k, "seed") == 0) {
        if ((st = want_int(v, k, INT64_MIN, INT64_MAX, &i, err)) == CAI_OK) {
            p->seed = (uint64_t)i;
            r->has_seed = 1;
        }
    } else if (strcmp(k, "n") == 0) {
        if ((st = want_int(v, k, 1, 1 << 20, &i, err)) == CAI_OK && i != 1)
            st = api_error_set(err, 400, k, "only n = 1 is supported");
    } else if (strcmp(k, "stop") == 0) {
        if (json_is_string(v)) {
            r->stop[r->n_stop++] = json_string_value(v);
        } else if (json_is_array(v) && json_array_size(v) <= API_MAX_STOP) {
            size_t j;
            json_t *s;
            json_array_foreach(v, j, s) {
                if (!json_is_string(s) || json_string_length(s) == 0)
                    return api_error_set(err, 400, k, "'stop' entries must be non-empty strings");
                r->stop[r->n_stop++] = json_string_value(s);
            }
        } else {
            st = api_error_set(err, 400, k, "'stop' must be a string or an array of up to %d "
                               "strings", API_MAX_STOP);
        }
        if (st == CAI_OK && r->n_stop == 1 && r->stop[0][0] == '\0')
            r->n_stop = 0;
    } else {
        st = CAI_ERR_NOT_FOUND;
    }
    return st;
}

static const char *const unsupported[] = {
    "tools", "tool_choice", "functions", "function_call", "logit_bias", "audio", "modalities",
    "prediction", "parallel_tool_calls", "suffix", "web_search_options", "reasoning_effort",
};

typedef cai_status (*field_fn)(const char *k, json_t *v, api_request *r, api_error *err);

static cai_status chat_field(const char *k, json_t *v, api_request *r, api_error *err) {
    json_int_t i;
    if (strcmp(k, "messages") == 0)
        return parse_messages(v, r, err);
    if (strcmp(k, "logprobs") == 0)
        return want_bool(v, k, &r->logprobs, err);
    if (strcmp(k, "top_logprobs") == 0) {
        cai_status st = want_int(v, k, 0, API_MAX_TOP_LOGPROBS, &i, err);
        r->top_logprobs = (int)i;
        return st;
    }
    if (strcmp(k, "response_format") == 0) {
        json_t *t = json_object_get(v, "type");
        const char *ts = json_string_value(t);
        if (!json_is_object(v) || ts == NULL)
            return api_error_set(err, 400, k, "'response_format' must be an object with a 'type'");
        if (strcmp(ts, "json_object") == 0)
            r->json_mode = 1;
        else if (strcmp(ts, "text") != 0)
            return api_error_set(err, 400, k, "response_format type '%.40s' is not supported "
                                 "(text, json_object)", ts);
        return CAI_OK;
    }
    return CAI_ERR_NOT_FOUND;
}

static cai_status completion_field(const char *k, json_t *v, api_request *r, api_error *err) {
    json_int_t i;
    if (strcmp(k, "prompt") == 0) {
        if (json_is_array(v) && json_array_size(v) == 1)
            v = json_array_get(v, 0);
        if (!json_is_string(v))
            return api_error_set(err, 400, k, "'prompt' must be a string (or an array of one "
                                 "string)");
        r->prompt = json_string_value(v);
        return CAI_OK;
    }
    if (strcmp(k, "logprobs") == 0) {
        cai_status st = want_int(v, k, 0, 5, &i, err);
        r->logprobs = (int)i;
        return st;
    }
    if (strcmp(k, "echo") == 0)
        return want_bool(v, k, &r->echo, err);
    if (strcmp(k, "best_of") == 0) {
        cai_status st = want_int(v, k, 1, 1 << 20, &i, err);
        return st == CAI_OK && i != 1 ? api_error_set(err, 400, k, "only best_of = 1 is supported")
                                      : st;
    }
    return CAI_ERR_NOT_FOUND;
}

static cai_status parse(api_kind kind, const char *body, size_t len, api_request *r,
                        api_error *err) {
    memset(r, 0, sizeof(*r));
    memset(err, 0, sizeof(*err));
    r->kind = kind;
    sample_params_default(&r->sample);
    /* OpenAI's defaults: the model's full distribution at temperature 1. */
    r->sample.temperature = 1.0f;
    r->sample.top_k = 0;
    r->sample.top_p = 1.0f;
    r->sample.min_p = 0.0f;
    if (kind == API_COMPLETION)
        r->max_tokens = 16;
    json_error_t je;
    r->root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (r->root == NULL)
        return api_error_set(err, 400, NULL, "the body is not valid JSON: %s (at byte %d)",
                             je.text, je.position);
    if (!json_is_object(r->root))
        return api_error_set(err, 400, NULL, "the body must be a JSON object");
    field_fn own = kind == API_CHAT ? chat_field : completion_field;
    const char *k;
    json_t *v;
    json_object_foreach(r->root, k, v) {
        if (json_is_null(v))
            continue; /* OpenAI treats null as "not given" */
        cai_status st = parse_common(k, v, r, err);
        if (st == CAI_ERR_NOT_FOUND)
            st = own(k, v, r, err);
        if (st == CAI_ERR_NOT_FOUND) {
            for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++)
                if (strcmp(k, unsupported[i]) == 0)
                    return api_error_set(err, 400, k, "'%s' is not supported by this server", k);
            api_error_set(err, 400, k, "Unrecognized request argument supplied: %.60s", k);
            snprintf(err->code, sizeof(err->code), "unknown_parameter");
            return CAI_ERR_INVALID_ARG;
        }
        if (st != CAI_OK)
            return st;
    }
    if (kind == API_CHAT && r->messages == NULL)
        return api_error_set(err, 400, "messages", "'messages' is required");
    if (kind == API_COMPLETION && r->prompt == NULL)
        return api_error_set(err, 400, "prompt", "'prompt' is required");
    if (kind == API_CHAT && r->top_logprobs > 0 && !r->logprobs)
        return api_error_set(err, 400, "top_logprobs", "'top_logprobs' needs 'logprobs': true");
    if (r->include_usage && !r->stream)
        return api_error_set(err, 400, "stream_options", "'stream_options' is only allowed when "
                             "'stream' is true");
    if (kind == API_COMPLETION && r->echo)
        return api_error_set(err, 400, "echo", "'echo' is not supported");
    return CAI_OK;
}

cai_status api_parse_chat(const char *body, size_t len, api_request *req, api_error *err) {
    cai_status st = parse(API_CHAT, body, len, req, err);
    if (st != CAI_OK)
        api_request_free(req);
    return st;
}

cai_status api_parse_completion(const char *body, size_t len, api_request *req, api_error *err) {
    cai_status st = parse(API_COMPLETION, body, len, req, err);
    if (st != CAI_OK)
        api_request_free(req);
    return st;
}

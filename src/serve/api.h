/* api.h - OpenAI-compatible request parsing and error bodies.
 *
 * Requests are untrusted JSON. api_parse_chat / api_parse_completion check
 * every field's type and range the way OpenAI's API does and reject unknown
 * fields, so a client learns about a typo instead of having it ignored. A
 * few widely used extensions are accepted: top_k, min_p, repetition_penalty.
 * On failure the api_error says which parameter and why; api_error_json
 * turns it into OpenAI's error shape:
 *
 *   {"error": {"message": "...", "type": "invalid_request_error",
 *              "param": "temperature", "code": null}}
 *
 * api_error is this HTTP edge's answer shape, not a detail channel: code
 * below the edge reports with cai_fail, and the edge copies cai_errmsg into
 * an api_error. */
#ifndef CAI_SERVE_API_H
#define CAI_SERVE_API_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/status.h"
#include "llm/chat.h"
#include "llm/sample.h"

#define API_MAX_MESSAGES 1024
#define API_MAX_STOP 4
#define API_MAX_TOP_LOGPROBS 20

typedef struct {
    int status;         /* HTTP status: 400, 404, 413, 429, ... */
    const char *type;   /* "invalid_request_error", ... */
    char param[64];     /* offending parameter, "" if none */
    char code[48];      /* OpenAI's code, "" for null */
    char message[256];
} api_error;

typedef enum { API_CHAT, API_COMPLETION } api_kind;

typedef struct {
    api_kind kind;
    json_t *root;              /* the parsed body; strings below point into it */
    chat_message *messages;    /* API_CHAT */
    size_t n_messages;
    const char *prompt;        /* API_COMPLETION */
    const char *model;         /* as the client named it, or NULL */
    const char *user;
    int stream, include_usage;
    int max_tokens;            /* 0: until the context is full */
    int max_tokens_set;        /* the client gave max_tokens or max_completion_tokens */
    sample_params sample;
    unsigned sample_set;       /* SAMPLE_SET_* bits of the fields the request gave */
    int has_seed;
    const char *stop[API_MAX_STOP];
    int n_stop;
    int logprobs;              /* chat: bool; completion: 0..5 top entries */
    int top_logprobs;
    int json_mode;             /* response_format json_object */
    int echo;                  /* completion */
} api_request;

/* api_parse_chat parses a /v1/chat/completions body; api_parse_completion a
 * /v1/completions body. On success |req| holds the request (free it with
 * api_request_free); on failure |err| says why and |req| is empty. */
cai_status api_parse_chat(const char *body, size_t len, api_request *req, api_error *err);
cai_status api_parse_completion(const char *body, size_t len, api_request *req, api_error *err);
void api_request_free(api_request *req);

/* api_check_model checks the request's "model" against the served model's
 * |id| and its |n_aliases| |aliases| (exact, case-sensitive, as OpenAI
 * compares names): CAI_OK when it names one of them or when |requested| is
 * NULL (no "model": the served one, as vLLM and llama.cpp's server do);
 * otherwise CAI_ERR_NOT_FOUND with OpenAI's 404 in |err| (type
 * invalid_request_error, param "model", code "model_not_found"). */
cai_status api_check_model(const char *requested, const char *id, const char *const *aliases,
                           size_t n_aliases, api_error *err);

/* api_error_set fills |err|; returns CAI_ERR_INVALID_ARG for chaining. */
cai_status api_error_set(api_error *err, int status, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* api_error_json returns a new JSON string of OpenAI's error body (caller
 * frees with free()), or NULL when out of memory. */
char *api_error_json(const api_error *err);

#endif

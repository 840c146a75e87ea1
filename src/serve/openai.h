/* openai.h - the generation endpoints (internal to serve): POST
 * /v1/chat/completions and /v1/completions. A request is parsed (api.h)
 * and queued on the scheduler, then its answer is built as the tokens
 * come: one JSON reply or server-sent events, logprobs in the chat or the
 * legacy shape, stop strings, JSON mode (response_format json_object
 * constrains the sampler), usage, and with --receipts a receipt signed by
 * the attested TLS key. */
#ifndef CAI_SERVE_OPENAI_H
#define CAI_SERVE_OPENAI_H

#include "net/httpd.h"

/* The handlers; |arg| is the server. */
void openai_chat(httpd_req *r, void *arg);
void openai_completions(httpd_req *r, void *arg);

#endif

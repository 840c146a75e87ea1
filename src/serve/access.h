/* access.h - the gate in front of every endpoint (internal to serve):
 * CORS and its preflight, the API key, readiness, and the
 * OpenAI-shaped error replies a refusal gets, each counted in the metrics. */
#ifndef CAI_SERVE_ACCESS_H
#define CAI_SERVE_ACCESS_H

#include "net/httpd.h"
#include "serve/api.h"
#include "serve/metrics.h"
#include "serve/server_int.h"

/* access_is_preflight returns 1 for a CORS preflight (OPTIONS), else 0. */
int access_is_preflight(const httpd_req *r);

/* access_preflight answers a preflight (204): what a browser from the
 * allowed origin may send. */
void access_preflight(server *sv, httpd_req *r);

/* access_cors adds the CORS headers when the request's Origin is allowed
 * (--cors); nothing otherwise. */
void access_cors(server *sv, httpd_req *r);

/* access_authorized returns 1 when no API key is set or the request carries
 * it ("Authorization: Bearer KEY", compared in constant time); otherwise it
 * answers 401 invalid_api_key and returns 0. */
int access_authorized(server *sv, httpd_req *r, metrics_endpoint ep);

/* access_ready returns 1 once the model is ready; otherwise it answers 503
 * ("the model is loading" / "the model failed to load") and returns 0. */
int access_ready(server *sv, httpd_req *r, metrics_endpoint ep);

/* access_error_body returns OpenAI's error body for |status| and |message|
 * (caller frees), or NULL when out of memory. Its signature is httpd's
 * error-body hook's. */
char *access_error_body(int status, const char *message);

/* access_reply_api_error answers |e| and counts it; access_reply_error
 * answers |status| with |msg| about |param| (may be NULL). */
void access_reply_api_error(server *sv, httpd_req *r, metrics_endpoint ep, const api_error *e);
void access_reply_error(server *sv, httpd_req *r, metrics_endpoint ep, int status,
                        const char *param, const char *msg);

#endif

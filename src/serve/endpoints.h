/* endpoints.h - the endpoints besides generation (internal to serve):
 * GET /v1/models (the served id; /v1/models/NAME for the id or an alias),
 * /health (200 once the model is ready, 503 while it loads or after it
 * failed), GET /v1/attestation?nonce= (evidence from the attestation
 * worker; open without the API key), /metrics (Prometheus) and the web
 * chat at / with CORS preflight. Each handler's |arg| is the server. */
#ifndef CAI_SERVE_ENDPOINTS_H
#define CAI_SERVE_ENDPOINTS_H

#include "net/httpd.h"

void endpoint_models(httpd_req *r, void *arg);
void endpoint_health(httpd_req *r, void *arg);
void endpoint_attestation(httpd_req *r, void *arg);
void endpoint_metrics(httpd_req *r, void *arg);
void endpoint_root(httpd_req *r, void *arg);

/* endpoint_attestation_reply counts an answer of the attestation worker
 * (its on_reply hook; |arg| is the server). */
void endpoint_attestation_reply(void *arg, int status);

#endif

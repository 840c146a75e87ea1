/* attestation.h - GET /v1/attestation: evidence from this server's TEE,
 * produced off the event loop (docs/ATTESTATION-API.md).
 *
 * Quote generation reads files (the simulated TEE) or talks to the kernel
 * (TDX) and takes milliseconds, so one worker thread produces it from a
 * bounded queue and answers through the request's httpd_async. The reply's
 * REPORTDATA is attest_binding_report_data(nonce, model digest) and the
 * worker checks that the quote it got carries exactly that before sending
 * it: a TEE backend that returned something else is refused (500). */
#ifndef CAI_SERVE_ATTESTATION_H
#define CAI_SERVE_ATTESTATION_H

#include <stddef.h>
#include <stdint.h>

#include "attest/binding.h"
#include "attest/evidence.h"
#include "net/httpd.h"
#include "common/status.h"

typedef struct attestation attestation;

/* attestation_new starts the worker, producing evidence from |src| (copied;
 * src->sim_dir must outlive the worker) with at most |queue| requests
 * waiting. |on_reply| (may be NULL) is called on the worker thread with the
 * HTTP status of each answer (for metrics). Returns CAI_OK and |*out|, or
 * CAI_ERR_NOMEM / CAI_ERR_INTERNAL. */
cai_status attestation_new(const attest_source *src, int queue,
                           void (*on_reply)(void *arg, int status), void *arg,
                           attestation **out) CAI_WUR;

/* attestation_submit queues a request for evidence binding |nonce|
 * (|nonce_len| in ATTEST_NONCE_MIN..ATTEST_NONCE_MAX) and |model_digest|,
 * answered on |a| with the JSON document of docs/ATTESTATION-API.md naming
 * |model_id|. On CAI_OK the worker owns the caller's reference to |a|; on
 * CAI_ERR_LIMIT (queue full) or CAI_ERR_NOMEM the caller keeps it and
 * answers itself. */
cai_status attestation_submit(attestation *w, httpd_async *a, const uint8_t *nonce,
                              size_t nonce_len, const uint8_t model_digest[ATTEST_DIGEST_LEN],
                              const char *model_id) CAI_WUR;

/* attestation_free stops and joins the worker; requests still queued are
 * dropped unanswered (call it when the event loop has stopped, before
 * httpd_free). NULL is fine. */
void attestation_free(attestation *w);

#endif

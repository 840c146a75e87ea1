/* audit_writer.h - the key broker's audit writer (internal to kbs): a
 * release leaves only once its audit record is committed.
 *
 * One thread takes the releases queued since its last commit (up to 256),
 * appends their records in one transaction (kbs_store_audit_many: one
 * fsync for the batch, group commit), then sends every answer of the batch:
 * the JWE (200) when the records are durable, 500 PluginInternalError with
 * nothing released when they could not be written. */
#ifndef CAI_KBS_AUDIT_WRITER_H
#define CAI_KBS_AUDIT_WRITER_H

#include <jansson.h>

#include "net/httpd.h"
#include "common/status.h"
#include "kbs/store.h"

typedef struct kbs_audit_writer kbs_audit_writer;

/* kbs_audit_writer_new starts the writer on |store| (which must outlive
 * it). Returns CAI_OK and |*out|, or CAI_ERR_NOMEM / CAI_ERR_INTERNAL. */
cai_status kbs_audit_writer_new(kbs_store *store, kbs_audit_writer **out) CAI_WUR;

/* kbs_audit_writer_submit queues the release of |jwe| (serialized here) to
 * the client of |r| for the resource |path|, recorded with the evidence and
 * claims digests |evd| and |clm| (hex, may be NULL); the answer goes out on
 * |r| once the record is committed. CAI_OK when queued (or when |r| could
 * not be kept and got a 500), CAI_ERR_NOMEM, or CAI_ERR_INTERNAL ("the key
 * broker is shutting down") once the writer stops: then nothing was
 * released and the caller answers (503). */
cai_status kbs_audit_writer_submit(kbs_audit_writer *w, httpd_req *r, const char *path,
                                   const char *evd, const char *clm, const json_t *jwe) CAI_WUR;

/* kbs_audit_writer_free commits what is queued, posts its answers, stops
 * and joins the thread (the caller then drains httpd so the answers are
 * sent). NULL is fine. */
void kbs_audit_writer_free(kbs_audit_writer *w);

#endif

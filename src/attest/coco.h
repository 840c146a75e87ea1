/* coco.h - evidence and secrets from the Confidential Containers guest
 * components, for a cai process running as a container in a CoCo pod.
 *
 * A CoCo container sees neither configfs-tsm nor /dev/tdx_guest. The guest
 * components hand it their services over a plain-HTTP REST API on the pod's
 * loopback (guest-components api-server-rest, default 127.0.0.1:8006):
 *
 *   GET /aa/evidence?runtime_data=B64URL&encoding=base64
 *       the attestation agent's evidence over runtime_data. With
 *       encoding=base64 runtime_data is URL-safe base64 without padding
 *       (any bytes); without it the query value's UTF-8 bytes are used, which
 *       cannot carry cai's binary REPORTDATA. The TDX attester zero-pads the
 *       bytes to 64 (more than 64 is an error) and answers
 *       {"cc_eventlog": B64|null, "quote": B64} (standard base64).
 *   GET /cdh/resource/REPO/TYPE/TAG
 *       the confidential data hub's fetch of kbs:///REPO/TYPE/TAG from the
 *       key broker (after the attestation agent attested to it): the raw
 *       bytes, 200; any CDH failure is 500 with the error text; 404 when the
 *       feature is off.
 *
 * Everything the API answers is untrusted until checked: the quote must
 * parse as a TDX quote and carry exactly the REPORTDATA asked for (the
 * verifier checks its signature chain). The API is plain HTTP, so cai
 * talks to it only on loopback (the API itself refuses other peers). See
 * docs/ATTESTATION.md, "CoCo guest components". */
#ifndef CAI_ATTEST_COCO_H
#define CAI_ATTEST_COCO_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/status.h"

#define COCO_API_DEFAULT "http://127.0.0.1:8006"
/* named limits: the evidence document (the quote and the event log, which
 * cai does not use) and a resource answer */
#define COCO_EVIDENCE_MAX_LEN (4u << 20)
#define COCO_RESOURCE_MAX_LEN (64u * 1024u)

/* coco_api_check returns CAI_OK if |api| is an http:// URL whose host is a
 * loopback address (127.0.0.0/8, ::1, localhost) and whose path is empty
 * or "/"; else CAI_ERR_INVALID_ARG naming why. */
cai_status coco_api_check(const char *api) CAI_WUR;

/* coco_evidence_parse reads the attestation agent's TDX evidence document
 * |doc| (|len| bytes, untrusted) and sets |quote| (initialised here; buf_free
 * it) to the TDX quote of its "quote" member, without padding. It checks
 * that the document is a JSON object of at most COCO_EVIDENCE_MAX_LEN bytes,
 * that "quote" is a string of standard base64 of at most TDX_QUOTE_MAX_LEN
 * bytes, that "cc_eventlog", if present, is a string or null, that the quote
 * parses as a TDX quote and that its REPORTDATA is |report_data|. Returns
 * CAI_ERR_FORMAT (malformed JSON, no quote, not base64, not a TDX quote),
 * CAI_ERR_LIMIT (too large) or CAI_ERR_AUTH (another REPORTDATA), the
 * check named in cai_errmsg; |quote| is empty on failure. */
cai_status coco_evidence_parse(const uint8_t *doc, size_t len, const uint8_t report_data[64],
                               buf *quote) CAI_WUR;

/* coco_quote asks the API at |api| (NULL: COCO_API_DEFAULT) for evidence
 * over |report_data| (GET /aa/evidence, encoding=base64) and sets |out|
 * (initialised here) to the checked quote (coco_evidence_parse). Fails
 * closed: CAI_ERR_INVALID_ARG for a non-loopback |api|, CAI_ERR_IO if the
 * API is unreachable or answers other than 200 (the status and the first
 * line of its answer in cai_errmsg), else coco_evidence_parse's errors. */
cai_status coco_quote(const char *api, const uint8_t report_data[64], buf *out) CAI_WUR;

/* coco_resource fetches kbs:///|path| ("repo/type/tag" by respath_valid,
 * else CAI_ERR_INVALID_ARG) through the confidential data hub (GET
 * /cdh/resource/|path| at |api|, NULL: COCO_API_DEFAULT) into |out|
 * (initialised here, at most |max| bytes, wiped on buf_free). Fails closed
 * like coco_quote; an answer other than 200 is CAI_ERR_NOT_FOUND for 404,
 * CAI_ERR_IO else, naming the status. */
cai_status coco_resource(const char *api, const char *path, size_t max, buf *out) CAI_WUR;

#endif

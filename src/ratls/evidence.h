/* evidence.h - the evidence an attested TLS certificate carries, in the
 * format TNG (inclavare-containers/TNG, rats-cert) and the CCC interoperable
 * RA-TLS work use (docs/RATLS.md has the bytes of a worked example):
 *
 *   X.509 extension 2.23.133.5.4.9 (TCG DICE tagged evidence), non-critical,
 *   OCTET STRING holding
 *     0xC0C000( [ bstr(coco_evidence), bstr('') ] )    ; CBOR tag, 2 items
 *   coco_evidence = CBOR map {
 *     "tee_type": "tdx",
 *     "aa_evidence": bstr(JSON {"cc_eventlog": null, "quote": base64}),
 *     "aa_additional_evidence": null,
 *     "aa_runtime_data": text(RFC 8785 JSON {"model-digest": hex,
 *                                            "pubkey-hash": base64(CBOR
 *                                             [1, bstr(SHA-256(SPKI DER))])}),
 *     "aa_runtime_data_hash_algo": 7 }                  ; IANA: SHA-384
 *   REPORTDATA = SHA-384(aa_runtime_data) || 16 zero bytes
 *
 * aa_evidence is the TDX evidence the key broker accepts (primary_evidence
 * of the KBS protocol). The parser is strict: definite lengths only, every
 * field once, no unknown field, no trailing bytes, named size limits. */
#ifndef CAI_RATLS_EVIDENCE_H
#define CAI_RATLS_EVIDENCE_H

#include <stddef.h>
#include <stdint.h>

#include "attest/binding.h"
#include "common/buf.h"
#include "common/cursor.h"
#include "common/status.h"

#define RATLS_EXT_OID "2.23.133.5.4.9"
#define RATLS_TAG_COCO_EVIDENCE 0xC0C000u
#define RATLS_HASH_SHA256 1 /* IANA named information hash algorithm ids */
#define RATLS_HASH_SHA384 7
#define RATLS_HASH_SHA512 8

/* Named limits (bytes) of what a peer's certificate may carry. */
#define RATLS_EXT_MAX (512u * 1024u)
#define RATLS_AA_EVIDENCE_MAX (384u * 1024u)
#define RATLS_RUNTIME_DATA_MAX 4096u
#define RATLS_CBOR_DEPTH_MAX 8

typedef struct {
    cursor tee_type;     /* text, e.g. "tdx" */
    cursor aa_evidence;  /* the TEE's evidence (for TDX: JSON, see above) */
    cursor runtime_data; /* the JSON text REPORTDATA hashes */
    int hash_algo;       /* RATLS_HASH_* of the runtime data */
} ratls_evidence;

/* ratls_evidence_parse reads the extension's contents |ext| (|len| bytes)
 * into |out|, whose cursors point into |ext|. CAI_ERR_FORMAT (with the
 * field named), CAI_ERR_LIMIT, CAI_ERR_TRAILING or CAI_ERR_UNSUPPORTED (an
 * evidence tag or hash algorithm other than the above, additional
 * evidence). */
cai_status ratls_evidence_parse(const uint8_t *ext, size_t len, ratls_evidence *out) CAI_WUR;

/* ratls_evidence_encode appends the extension's contents for |ev| to |out|. */
cai_status ratls_evidence_encode(const ratls_evidence *ev, buf *out) CAI_WUR;

/* ratls_report_data computes REPORTDATA from |ev|'s runtime data and hash
 * algorithm: the digest, zero-padded to 64 bytes. */
cai_status ratls_report_data(const ratls_evidence *ev,
                             uint8_t out[ATTEST_REPORT_DATA_LEN]) CAI_WUR;

/* What the runtime data binds. */
typedef struct {
    uint8_t pubkey_hash[32];                  /* SHA-256 of the SPKI DER */
    uint8_t model_digest[ATTEST_DIGEST_LEN];  /* SHA-256 of the model */
} ratls_binding;

/* ratls_runtime_data_make appends the canonical JSON of |b| to |out|. */
cai_status ratls_runtime_data_make(const ratls_binding *b, buf *out) CAI_WUR;

/* ratls_runtime_data_parse reads |rd| (a JSON object with exactly
 * "pubkey-hash" and "model-digest", as made above; other members are
 * refused) into |out|. CAI_ERR_FORMAT naming the member. */
cai_status ratls_runtime_data_parse(const cursor *rd, ratls_binding *out) CAI_WUR;

/* ratls_tdx_evidence_make appends the TDX evidence JSON for |quote|. */
cai_status ratls_tdx_evidence_make(const uint8_t *quote, size_t len, buf *out) CAI_WUR;

/* ratls_tdx_evidence_quote decodes the quote out of TDX evidence JSON
 * |ev| into |out| (initialised here). CAI_ERR_FORMAT / CAI_ERR_LIMIT. */
cai_status ratls_tdx_evidence_quote(const cursor *ev, buf *out) CAI_WUR;

#endif

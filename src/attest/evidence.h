/* evidence.h - attestation evidence: produce it in a TEE, turn it into
 * verified claims on the other side.
 *
 * This is the interface the key broker, the agent and the server use; the
 * pieces behind it are quote.h (parse), verify.h (DCAP), sim.h (the
 * simulated TEE) and coco.h (a Confidential Containers pod). Evidence is a
 * TDX quote every way: a real TD produces it through the kernel, a CoCo
 * container through the guest components' attestation agent, the simulated
 * TEE signs it with its test PKI. */
#ifndef CAI_ATTEST_EVIDENCE_H
#define CAI_ATTEST_EVIDENCE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "attest/tdx_guest.h"
#include "attest/verify.h"
#include "common/buf.h"
#include "common/status.h"

typedef enum {
    ATTEST_TEE_TDX = 1, /* Intel TDX, verified to Intel's SGX Root CA */
    ATTEST_TEE_SIM = 2, /* the simulated TEE: test PKI, never trusted by default */
    ATTEST_TEE_COCO = 3, /* a CoCo container: the TD's quote from the guest
                            components' attestation agent (attest/coco.h) */
} attest_tee;

/* attest_tee_name returns "tdx", "sim" or "coco". */
const char *attest_tee_name(attest_tee t);

/* attest_tee_parse maps "tdx", "sim" or "coco" to |out|; CAI_ERR_INVALID_ARG
 * else. */
cai_status attest_tee_parse(const char *name, attest_tee *out);

struct sim_td;

/* Where this process gets its own evidence from. */
typedef struct {
    attest_tee tee;
    const char *sim_dir; /* ATTEST_TEE_SIM: the directory of `cai attest sim-init` */
    const tdx_guest_config *tdx; /* ATTEST_TEE_TDX: kernel interfaces; NULL = defaults */
    const struct sim_td *sim_td; /* ATTEST_TEE_SIM: the TD it pretends to be (NULL: zeros) */
    const char *coco_api; /* ATTEST_TEE_COCO: the REST API's root; NULL: COCO_API_DEFAULT */
} attest_source;

/* attest_evidence produces a TDX quote whose REPORTDATA is |report_data|
 * into |out| (initialised here, free with buf_free): for ATTEST_TEE_TDX from
 * the guest kernel (tdx_guest_quote: configfs-tsm, else /dev/tdx_guest), for
 * ATTEST_TEE_SIM from the simulated TEE, for ATTEST_TEE_COCO from the CoCo
 * guest components (coco_quote: the quote checked to carry |report_data|).
 * CAI_ERR_UNSUPPORTED if this machine has no such TEE; never falls back
 * from one TEE to another. */
cai_status attest_evidence(const attest_source *src, const uint8_t report_data[64],
                           buf *out) CAI_WUR;

/* TDX evidence as the CoCo attestation agent makes it and the KBS protocol
 * and RA-TLS carry it: {"cc_eventlog": base64 or null, "quote": standard
 * base64}. */

/* attest_tdx_evidence_json returns that object for |quote| (no event log;
 * the caller decrefs), NULL when out of memory. */
json_t *attest_tdx_evidence_json(const uint8_t *quote, size_t len);

/* attest_tdx_evidence_quote decodes the quote of the evidence object |ev|
 * into |out| (initialised here) and, unless |has_eventlog| is NULL, says
 * whether cc_eventlog is given. CAI_ERR_FORMAT naming what is wrong (not
 * such an object, the quote not standard base64, cc_eventlog neither base64
 * nor null), CAI_ERR_LIMIT for a quote over TDX_QUOTE_MAX_LEN bytes. */
cai_status attest_tdx_evidence_quote(const json_t *ev, buf *out, int *has_eventlog) CAI_WUR;

typedef struct pccs pccs; /* attest/pccs.h */

/* What a verifier trusts. A quote chaining to Intel's root is verified with
 * |tdx_collateral| (NULL: with collateral from |collateral_provider| for its
 * FMSPC, and without either TDX quotes are refused); a quote chaining to the
 * sim root is accepted only when |sim_root_pem| is given, and then verified
 * with |sim_collateral| (or the provider's). The provider is asked only for
 * a quote whose PCK chain ends at a root this verifier trusts. */
typedef struct {
    const tdx_collateral *tdx_collateral;
    const char *sim_root_pem;
    const tdx_collateral *sim_collateral;
    pccs *collateral_provider;
    /* The REPORTDATA the quote must carry (64 bytes: the verifier's nonce
     * or key binding), or NULL when the caller checks the claim itself. */
    const uint8_t *expected_report_data;
    /* 0 (the default): a TD with the DEBUG attribute is refused
     * (TDX_VERIFY_DEBUG): its host can read and change its memory. 1: it
     * verifies, and the caller's policy judges the "debug" claim (the key
     * broker's allow_debug). */
    int allow_debug;
} attest_verifier;

/* attest_verify_claims verifies the quote at |quote| at time |now| and, on
 * success, sets |*out| to its claims (caller decrefs): the quote's fields
 * (tdx_quote_claims_json) plus "tee" ("tdx" or "sim"), "tcb_status" (the
 * combined status, see tdx_verify_result), "platform_tcb_status",
 * "qe_tcb_status", "tdx_module_tcb_status", "advisory_ids" (array),
 * "tcb_date", "fmspc" and "collateral_expires" (RFC 3339). On failure
 * returns the verifier's status with the detail in cai_errmsg, |res| (may be
 * NULL) naming the check (TDX_VERIFY_REPORT_DATA for a REPORTDATA other than
 * |expected_report_data|, TDX_VERIFY_DEBUG for a DEBUG TD unless
 * |allow_debug|). */
cai_status attest_verify_claims(const attest_verifier *v, const uint8_t *quote, size_t len,
                                time_t now, json_t **out, tdx_verify_result *res) CAI_WUR;

#endif

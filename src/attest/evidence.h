/* evidence.h - attestation evidence: produce it in a TEE, turn it into
 * verified claims on the other side.
 *
 * This is the interface the key broker, the agent and the server use; the
 * pieces behind it are quote.h (parse), verify.h (DCAP) and sim.h (the
 * simulated TEE). Evidence is a TDX quote either way: a real TD produces it
 * through the kernel, the simulated TEE signs it with its test PKI. */
#ifndef CAI_ATTEST_EVIDENCE_H
#define CAI_ATTEST_EVIDENCE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "attest/verify.h"
#include "common/buf.h"
#include "common/status.h"

typedef enum {
    ATTEST_TEE_TDX = 1, /* Intel TDX, verified to Intel's SGX Root CA */
    ATTEST_TEE_SIM = 2, /* the simulated TEE: test PKI, never trusted by default */
} attest_tee;

/* attest_tee_name returns "tdx" or "sim". */
const char *attest_tee_name(attest_tee t);

/* attest_tee_parse maps "tdx" or "sim" to |out|; CAI_ERR_INVALID_ARG else. */
cai_status attest_tee_parse(const char *name, attest_tee *out);

struct sim_td;

/* Where this process gets its own evidence from. */
typedef struct {
    attest_tee tee;
    const char *sim_dir; /* ATTEST_TEE_SIM: the directory of `cai attest sim-init` */
    const struct sim_td *sim_td; /* ATTEST_TEE_SIM: the TD it pretends to be (NULL: zeros) */
} attest_source;

/* attest_evidence produces a TDX quote whose REPORTDATA is |report_data|
 * into |out| (initialised here, free with buf_free). CAI_ERR_UNSUPPORTED if
 * this machine has no such TEE. */
cai_status attest_evidence(const attest_source *src, const uint8_t report_data[64],
                           buf *out) CAI_WUR;

/* What a verifier trusts. A quote chaining to Intel's root is verified with
 * |tdx_collateral| (NULL: TDX quotes are refused); a quote chaining to the
 * sim root is accepted only when |sim_root_pem| is given, and then verified
 * with |sim_collateral|. */
typedef struct {
    const tdx_collateral *tdx_collateral;
    const char *sim_root_pem;
    const tdx_collateral *sim_collateral;
} attest_verifier;

/* attest_verify_claims verifies the quote at |quote| at time |now| and, on
 * success, sets |*out| to its claims (caller decrefs): the quote's fields
 * (tdx_quote_claims_json) plus "tee" ("tdx" or "sim"), "tcb_status",
 * "qe_tcb_status" and "fmspc". On failure returns the verifier's status
 * with the detail in cai_errmsg, |res| (may be NULL) naming the check. */
cai_status attest_verify_claims(const attest_verifier *v, const uint8_t *quote, size_t len,
                                time_t now, json_t **out, tdx_verify_result *res) CAI_WUR;

#endif

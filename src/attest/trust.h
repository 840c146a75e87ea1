/* trust.h - what a verifier of TDX evidence trusts, built once from the
 * options every verifying command takes (cai attest verify, kbs, proxy,
 * chat --url, receipt verify, the benches, and the --kbs-* options of
 * serve and agent):
 *
 *   --collateral PATH   Intel TDX collateral: a PCS JSON file, a folder with
 *                       collateral.json, or an offline folder of
 *                       tdx-FMSPC-CA.json files as a PCCS cache holds
 *   --pccs URL          or collateral fetched per FMSPC from a PCS/PCCS
 *   --trust-sim DIR     also trust the simulated TEE of DIR (INSECURE)
 *
 * attest_trust owns the collateral, the sim root and the provider behind
 * the attest_verifier it hands out. */
#ifndef CAI_ATTEST_TRUST_H
#define CAI_ATTEST_TRUST_H

#include "attest/evidence.h"
#include "common/status.h"

typedef struct {
    const char *collateral;  /* --collateral, or NULL */
    const char *pccs_url;    /* --pccs, or NULL (excludes collateral) */
    const char *pccs_cache;  /* --pccs-cache, or NULL (only with pccs_url) */
    int pccs_insecure_http;  /* --pccs-insecure-http: allow http:// (INSECURE) */
    const char *trust_sim;   /* --trust-sim, or NULL */
    /* Which collateral verifies a quote of the simulated TEE. 0 (the
     * default): the sim folder's own collateral.json, whatever verifies
     * Intel's quotes. 1: |collateral| or the PCCS when one is given (and the
     * sim folder's only when neither is), so that `cai attest verify` checks
     * a collateral source with a simulated quote. */
    int sim_uses_given_collateral;
} attest_trust_opts;

typedef struct attest_trust attest_trust;

/* attest_trust_new loads what |o| names into |*out| (free with
 * attest_trust_free). CAI_ERR_INVALID_ARG when both collateral and a PCCS
 * are given, a PCCS cache without a PCCS, or none of collateral, PCCS and
 * sim; the loaders' errors otherwise (pccs_new's for a plain http:// URL
 * without pccs_insecure_http). Logs a warning for --trust-sim and for plain
 * HTTP to the PCCS. */
cai_status attest_trust_new(const attest_trust_opts *o, attest_trust **out) CAI_WUR;

/* attest_trust_verifier returns the verifier (owned by |t|). A caller that
 * sets expected_report_data or allow_debug copies it first. */
const attest_verifier *attest_trust_verifier(const attest_trust *t);

/* attest_trust_free frees |t|; NULL is fine. */
void attest_trust_free(attest_trust *t);

#endif

/* trust.h - what a verifier of TDX evidence trusts, built once from the
 * options every verifying command takes:
 *
 *   --collateral PATH   Intel TDX collateral (PCS JSON, or a folder with
 *                       collateral.json)
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
    const char *pccs_cache;  /* --pccs-cache, or NULL */
    int pccs_insecure_http;
    const char *trust_sim;   /* --trust-sim, or NULL */
} attest_trust_opts;

typedef struct attest_trust attest_trust;

/* attest_trust_new loads what |o| names. CAI_ERR_INVALID_ARG when both
 * collateral and a PCCS are given or none of the three is; the loaders'
 * errors otherwise. Logs a warning for --trust-sim. */
cai_status attest_trust_new(const attest_trust_opts *o, attest_trust **out) CAI_WUR;

/* attest_trust_verifier returns the verifier (owned by |t|). */
const attest_verifier *attest_trust_verifier(const attest_trust *t);

void attest_trust_free(attest_trust *t);

#endif

/* evidence.c - produce evidence in a TEE; verify it into claims. */
#include "attest/evidence.h"

#include <string.h>

#include "attest/quote.h"
#include "attest/sim.h"
#include "common/codec.h"

const char *attest_tee_name(attest_tee t) {
    return t == ATTEST_TEE_SIM ? "sim" : "tdx";
}

cai_status attest_tee_parse(const char *name, attest_tee *out) {
    if (name && strcmp(name, "tdx") == 0)
        *out = ATTEST_TEE_TDX;
    else if (name && strcmp(name, "sim") == 0)
        *out = ATTEST_TEE_SIM;
    else
        return cai_fail(CAI_ERR_INVALID_ARG, "unknown TEE '%s' (tdx or sim)", name ? name : "");
    return CAI_OK;
}

cai_status attest_evidence(const attest_source *src, const uint8_t report_data[64], buf *out) {
    buf_init(out, TDX_QUOTE_MAX_LEN);
    if (src->tee == ATTEST_TEE_SIM) {
        if (src->sim_dir == NULL)
            return cai_fail(CAI_ERR_INVALID_ARG, "the simulated TEE needs its directory");
        return sim_quote(src->sim_dir, report_data, src->sim_td, out);
    }
    return cai_fail(CAI_ERR_UNSUPPORTED,
                    "TDX quote generation is not available on this machine yet");
}

cai_status attest_verify_claims(const attest_verifier *v, const uint8_t *quote, size_t len,
                                time_t now, json_t **out, tdx_verify_result *res) {
    tdx_verify_result local;
    if (res == NULL)
        res = &local;
    *out = NULL;
    attest_tee tee = ATTEST_TEE_TDX;
    cai_status st;
    if (v->tdx_collateral) {
        st = tdx_verify(quote, len, v->tdx_collateral, NULL, now, res);
    } else {
        memset(res, 0, sizeof(*res));
        res->error = TDX_VERIFY_ROOT_UNTRUSTED;
        st = cai_fail(CAI_ERR_AUTH, "no TDX collateral configured: TDX evidence is refused");
    }
    /* A quote that does not chain to Intel may chain to the sim root, if
     * (and only if) the caller trusts it. */
    if (st != CAI_OK && res->error == TDX_VERIFY_ROOT_UNTRUSTED && v->sim_root_pem &&
        v->sim_collateral) {
        tdx_trust trust = {.sim_root_pem = v->sim_root_pem};
        tee = ATTEST_TEE_SIM;
        st = tdx_verify(quote, len, v->sim_collateral, &trust, now, res);
    }
    if (st != CAI_OK)
        return st;

    tdx_quote *q = NULL;
    json_t *c = NULL;
    char fmspc[13];
    if ((st = tdx_quote_parse(quote, len, TDX_QUOTE_ALLOW_ZERO_PAD, &q)) != CAI_OK ||
        (st = tdx_quote_claims_json(q, &c)) != CAI_OK)
        goto out;
    hex_encode(fmspc, res->fmspc, sizeof(res->fmspc));
    if (json_object_set_new(c, "tee", json_string(attest_tee_name(tee))) ||
        json_object_set_new(c, "tcb_status", json_string(res->tcb_status)) ||
        json_object_set_new(c, "qe_tcb_status", json_string(res->qe_tcb_status)) ||
        json_object_set_new(c, "fmspc", json_string(fmspc))) {
        st = CAI_ERR_NOMEM;
        goto out;
    }
    *out = c;
    c = NULL;
out:
    json_decref(c);
    tdx_quote_free(q);
    return st;
}

/* evidence.c - produce evidence in a TEE; verify it into claims. */
#include "attest/evidence.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attest/coco.h"
#include "attest/pccs.h"
#include "attest/quote.h"
#include "attest/sim.h"
#include "common/codec.h"

const char *attest_tee_name(attest_tee t) {
    return t == ATTEST_TEE_SIM ? "sim" : t == ATTEST_TEE_COCO ? "coco" : "tdx";
}

cai_status attest_tee_parse(const char *name, attest_tee *out) {
    if (name && strcmp(name, "tdx") == 0)
        *out = ATTEST_TEE_TDX;
    else if (name && strcmp(name, "sim") == 0)
        *out = ATTEST_TEE_SIM;
    else if (name && strcmp(name, "coco") == 0)
        *out = ATTEST_TEE_COCO;
    else
        return cai_fail(CAI_ERR_INVALID_ARG, "unknown TEE '%s' (tdx, sim or coco)",
                        name ? name : "");
    return CAI_OK;
}

json_t *attest_tdx_evidence_json(const uint8_t *quote, size_t len) {
    char *b64 = malloc(b64_encoded_len(len, B64_STD) + 1);
    if (b64 == NULL)
        return NULL;
    b64_encode(b64, quote, len, B64_STD);
    json_t *j = json_pack("{s:n, s:s}", "cc_eventlog", "quote", b64);
    free(b64);
    return j;
}

cai_status attest_tdx_evidence_quote(const json_t *ev, buf *out, int *has_eventlog) {
    buf_init(out, TDX_QUOTE_MAX_LEN + 4);
    const json_t *q = json_object_get(ev, "quote"), *log = json_object_get(ev, "cc_eventlog");
    if (!json_is_object(ev) || !json_is_string(q) || json_string_length(q) == 0)
        return cai_fail(CAI_ERR_FORMAT, "not TDX evidence {\"quote\", \"cc_eventlog\"}: no quote");
    if (log && !json_is_null(log) && !json_is_string(log))
        return cai_fail(CAI_ERR_FORMAT, "cc_eventlog must be base64 or null");
    size_t qlen = json_string_length(q), cap = b64_decoded_max(qlen);
    if (cap > TDX_QUOTE_MAX_LEN)
        return cai_fail(CAI_ERR_LIMIT, "the quote is larger than %u bytes", TDX_QUOTE_MAX_LEN);
    cai_status st = buf_reserve(out, cap + 1);
    if (st != CAI_OK)
        return st;
    if (b64_decode(json_string_value(q), qlen, out->data, cap + 1, &out->len, B64_STD) != CAI_OK) {
        buf_free(out);
        return cai_fail(CAI_ERR_FORMAT, "the quote is not standard base64");
    }
    if (has_eventlog)
        *has_eventlog = json_is_string(log);
    return CAI_OK;
}

cai_status attest_evidence(const attest_source *src, const uint8_t report_data[64], buf *out) {
    buf_init(out, TDX_QUOTE_MAX_LEN);
    if (src->tee == ATTEST_TEE_SIM) {
        if (src->sim_dir == NULL)
            return cai_fail(CAI_ERR_INVALID_ARG, "the simulated TEE needs its directory");
        return sim_quote(src->sim_dir, report_data, src->sim_td, out);
    }
    if (src->tee == ATTEST_TEE_COCO) {
        buf_free(out);
        return coco_quote(src->coco_api, report_data, out);
    }
    if (src->tee != ATTEST_TEE_TDX)
        return cai_fail(CAI_ERR_INVALID_ARG, "unknown TEE %d", (int)src->tee);
    return tdx_guest_quote(src->tdx, report_data, out, NULL);
}

cai_status attest_verify_claims(const attest_verifier *v, const uint8_t *quote, size_t len,
                                time_t now, json_t **out, tdx_verify_result *res) {
    tdx_verify_result local;
    if (res == NULL)
        res = &local;
    *out = NULL;
    memset(res, 0, sizeof(*res));
    attest_tee tee = ATTEST_TEE_TDX;
    tdx_pck_info info;
    /* where the collateral lives: only needed to ask the provider */
    int have_info = v->collateral_provider && tdx_pck_info_get(quote, len, &info) == CAI_OK;
    tdx_collateral *fetched = NULL;
    const tdx_collateral *coll = v->tdx_collateral;
    cai_status st;
    if (coll == NULL && v->collateral_provider && have_info && info.intel_root) {
        if ((st = pccs_get_for_quote(v->collateral_provider, quote, len, now, &fetched))) {
            res->error = TDX_VERIFY_COLLATERAL_UNAVAILABLE;
            return cai_fail(st, "tdx verify: collateral unavailable: %s", cai_errmsg(st));
        }
        coll = fetched;
    }
    if (coll) {
        st = tdx_verify(quote, len, coll, NULL, now, res);
    } else {
        res->error = TDX_VERIFY_ROOT_UNTRUSTED;
        st = have_info && !info.intel_root
                 ? cai_fail(CAI_ERR_AUTH, "tdx verify: root untrusted: the quote's PCK chain "
                                          "does not end at Intel's SGX Root CA")
                 : cai_fail(CAI_ERR_AUTH, "no TDX collateral configured: TDX evidence is refused");
    }
    tdx_collateral_free(fetched);
    fetched = NULL;
    /* A quote that does not chain to Intel may chain to the sim root, if
     * (and only if) the caller trusts it. */
    if (st != CAI_OK && res->error == TDX_VERIFY_ROOT_UNTRUSTED && v->sim_root_pem &&
        (v->sim_collateral || v->collateral_provider)) {
        tdx_trust trust = {.sim_root_pem = v->sim_root_pem};
        tee = ATTEST_TEE_SIM;
        coll = v->sim_collateral;
        if (coll == NULL) {
            if ((st = pccs_get_for_quote(v->collateral_provider, quote, len, now, &fetched))) {
                res->error = TDX_VERIFY_COLLATERAL_UNAVAILABLE;
                return cai_fail(st, "tdx verify: collateral unavailable: %s", cai_errmsg(st));
            }
            coll = fetched;
        }
        st = tdx_verify(quote, len, coll, &trust, now, res);
        tdx_collateral_free(fetched);
    }
    if (st != CAI_OK)
        return st;

    tdx_quote *q = NULL;
    json_t *c = NULL;
    char fmspc[13];
    if ((st = tdx_quote_parse(quote, len, TDX_QUOTE_ALLOW_ZERO_PAD, &q)) != CAI_OK ||
        (st = tdx_quote_claims_json(q, &c)) != CAI_OK)
        goto out;
    if (v->expected_report_data &&
        memcmp(q->body.report_data, v->expected_report_data, 64) != 0) {
        res->error = TDX_VERIFY_REPORT_DATA;
        st = cai_fail(CAI_ERR_AUTH, "tdx verify: REPORTDATA: the quote does not carry the "
                                    "expected REPORTDATA (a replay, or a quote for someone else)");
        goto out;
    }
    if (tdx_quote_is_debug(q) && !v->allow_debug) {
        res->error = TDX_VERIFY_DEBUG;
        st = cai_fail(CAI_ERR_AUTH, "tdx verify: debug TD: the TD's DEBUG attribute is set, so "
                                    "its host can read and change its memory; refused unless "
                                    "debug TDs are explicitly allowed");
        goto out;
    }
    hex_encode(fmspc, res->fmspc, sizeof(res->fmspc));
    char expires[32];
    struct tm tm;
    gmtime_r(&res->collateral_expires, &tm);
    strftime(expires, sizeof(expires), "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_t *adv = json_array();
    for (size_t i = 0; adv && i < res->n_advisory_ids; i++)
        if (json_array_append_new(adv, json_string(res->advisory_ids[i])))
            break;
    if (adv == NULL || json_object_set_new(c, "advisory_ids", adv) ||
        json_array_size(adv) != res->n_advisory_ids ||
        json_object_set_new(c, "tee", json_string(attest_tee_name(tee))) ||
        json_object_set_new(c, "tcb_status", json_string(res->tcb_status)) ||
        json_object_set_new(c, "platform_tcb_status", json_string(res->platform_tcb_status)) ||
        json_object_set_new(c, "qe_tcb_status", json_string(res->qe_tcb_status)) ||
        json_object_set_new(c, "tdx_module_tcb_status", json_string(res->tdx_module_status)) ||
        json_object_set_new(c, "tcb_date", json_string(res->tcb_date)) ||
        json_object_set_new(c, "fmspc", json_string(fmspc)) ||
        json_object_set_new(c, "collateral_expires", json_string(expires))) {
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

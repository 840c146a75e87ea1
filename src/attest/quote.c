/* quote.c - the TDX quote parser. */
#include "attest/quote.h"

#include <string.h>

#include "common/codec.h"
#include "common/cursor.h"

#define TD_REPORT_10_LEN TDX_TD_REPORT10_LEN
#define TD_REPORT_15_LEN TDX_TD_REPORT15_LEN
#define QE_REPORT_LEN TDX_SGX_REPORT_LEN
#define MAX_CHAIN_LEN (64u << 10)

static cai_status bad(const char *what) {
    return cai_fail(CAI_ERR_FORMAT, "TDX quote: %s", what);
}

static cai_status short_in(const char *what) {
    return cai_fail(CAI_ERR_TRUNCATED, "TDX quote: truncated in %s", what);
}

static int get_td_report(cursor *c, tdx_td_report *r, int v15) {
    int ok = cursor_copy(c, r->tee_tcb_svn, 16) && cursor_copy(c, r->mr_seam, 48) &&
             cursor_copy(c, r->mr_signer_seam, 48) && cursor_copy(c, r->seam_attributes, 8) &&
             cursor_copy(c, r->td_attributes, 8) && cursor_copy(c, r->xfam, 8) &&
             cursor_copy(c, r->mr_td, 48) && cursor_copy(c, r->mr_config_id, 48) &&
             cursor_copy(c, r->mr_owner, 48) && cursor_copy(c, r->mr_owner_config, 48) &&
             cursor_copy(c, r->rtmr[0], 48) && cursor_copy(c, r->rtmr[1], 48) &&
             cursor_copy(c, r->rtmr[2], 48) && cursor_copy(c, r->rtmr[3], 48) &&
             cursor_copy(c, r->report_data, 64);
    r->has_1_5 = v15;
    if (ok && v15)
        ok = cursor_copy(c, r->tee_tcb_svn2, 16) && cursor_copy(c, r->mr_service_td, 48);
    return ok;
}

static int get_sgx_report(cursor *c, sgx_report_body *r) {
    uint16_t prod, svn;
    int ok = cursor_copy(c, r->cpu_svn, 16) && cursor_get_u32le(c, &r->misc_select) &&
             cursor_skip(c, 28) && cursor_copy(c, r->attributes, 16) &&
             cursor_copy(c, r->mr_enclave, 32) && cursor_skip(c, 32) &&
             cursor_copy(c, r->mr_signer, 32) && cursor_skip(c, 96) &&
             cursor_get_u16le(c, &prod) && cursor_get_u16le(c, &svn) && cursor_skip(c, 60) &&
             cursor_copy(c, r->report_data, 64);
    r->isv_prod_id = prod;
    r->isv_svn = svn;
    return ok;
}

cai_status tdx_quote_parse(const uint8_t *data, size_t len, tdx_quote *q) {
    memset(q, 0, sizeof(*q));
    cursor c, body, sig, cert, qe, inner;
    cursor_init(&c, data, len);
    uint16_t reserved1, reserved2;
    if (!cursor_get_u16le(&c, &q->version) || !cursor_get_u16le(&c, &q->att_key_type) ||
        !cursor_get_u32le(&c, &q->tee_type) || !cursor_get_u16le(&c, &reserved1) ||
        !cursor_get_u16le(&c, &reserved2) || !cursor_copy(&c, q->qe_vendor_id, 16) ||
        !cursor_copy(&c, q->user_data, 20))
        return short_in("the header");
    if (q->version != 4 && q->version != 5)
        return cai_fail(CAI_ERR_UNSUPPORTED, "TDX quote: version %u is not supported (4 and 5 are)",
                        q->version);
    if (q->tee_type != TDX_TEE_TYPE)
        return cai_fail(CAI_ERR_UNSUPPORTED, "TDX quote: TEE type 0x%x is not TDX (0x81)", q->tee_type);
    if (q->att_key_type != TDX_ATT_KEY_ECDSA_P256)
        return cai_fail(CAI_ERR_UNSUPPORTED, "TDX quote: attestation key type %u is not ECDSA P-256",
                        q->att_key_type);
    size_t body_len = TD_REPORT_10_LEN;
    q->body_type = 2;
    if (q->version == 5) {
        uint32_t size;
        if (!cursor_get_u16le(&c, &q->body_type) || !cursor_get_u32le(&c, &size))
            return short_in("the body descriptor");
        if (q->body_type != 2 && q->body_type != 3)
            return cai_fail(CAI_ERR_UNSUPPORTED, "TDX quote: body type %u is not a TD report", q->body_type);
        body_len = q->body_type == 3 ? TD_REPORT_15_LEN : TD_REPORT_10_LEN;
        if (size != body_len)
            return bad("the body size does not match its type");
    }
    if (!cursor_get_span(&c, &body, body_len) || !get_td_report(&body, &q->td, q->body_type == 3))
        return short_in("the TD report");
    q->signed_data = data;
    q->signed_len = len - cursor_len(&c);
    if (!cursor_get_u32le_prefixed(&c, &sig))
        return short_in("the signature data");
    q->quote_len = len - cursor_len(&c);
    for (size_t i = 0; i < cursor_len(&c); i++)
        if (cursor_data(&c)[i] != 0)
            return cai_fail(CAI_ERR_TRAILING, "TDX quote: %zu bytes after the signature data",
                            cursor_len(&c));
    uint16_t cert_type;
    if (!cursor_copy(&sig, q->signature, 64) || !cursor_copy(&sig, q->att_key, 64) ||
        !cursor_get_u16le(&sig, &cert_type) || !cursor_get_u32le_prefixed(&sig, &cert))
        return short_in("the signature data");
    if (cert_type != TDX_CERT_QE_REPORT)
        return cai_fail(CAI_ERR_UNSUPPORTED, "TDX quote: certification data type %u (expected 6, "
                        "QE report)", cert_type);
    if (cursor_len(&sig) != 0)
        return bad("bytes after the certification data in the signature data");
    if (!cursor_get_span(&cert, &qe, QE_REPORT_LEN))
        return short_in("the QE report");
    q->qe_report_raw = cursor_data(&qe);
    cursor qe_copy = qe;
    if (!get_sgx_report(&qe_copy, &q->qe_report) || !cursor_copy(&cert, q->qe_report_signature, 64))
        return short_in("the QE report signature");
    if (!cursor_get_u16le_prefixed(&cert, &qe))
        return short_in("the QE authentication data");
    q->qe_auth_data = cursor_data(&qe);
    q->qe_auth_len = cursor_len(&qe);
    if (!cursor_get_u16le(&cert, &cert_type) || !cursor_get_u32le_prefixed(&cert, &inner))
        return short_in("the PCK certification data");
    if (cert_type != TDX_CERT_PCK_CHAIN)
        return cai_fail(CAI_ERR_UNSUPPORTED, "TDX quote: inner certification data type %u (expected "
                        "5, PCK certificate chain)", cert_type);
    if (cursor_len(&cert) != 0)
        return bad("bytes after the PCK certificate chain");
    if (cursor_len(&inner) == 0 || cursor_len(&inner) > MAX_CHAIN_LEN)
        return bad("the PCK certificate chain is empty or too long");
    q->pck_chain_pem = (const char *)cursor_data(&inner);
    q->pck_chain_len = cursor_len(&inner);
    return CAI_OK;
}

int tdx_quote_is_debug(const tdx_quote *q) { return (q->td.td_attributes[0] & TDX_TD_ATTR_DEBUG) != 0; }

static void put_hex(json_t *o, const char *name, const uint8_t *p, size_t n) {
    char h[2 * 128 + 1];
    hex_encode(h, p, n);
    json_object_set_new(o, name, json_string(h));
}

json_t *tdx_quote_claims(const tdx_quote *q) {
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    const tdx_td_report *r = &q->td;
    json_object_set_new(o, "tee", json_string("tdx"));
    json_object_set_new(o, "quote_version", json_integer(q->version));
    json_object_set_new(o, "debug", json_boolean(tdx_quote_is_debug(q)));
    put_hex(o, "tee_tcb_svn", r->tee_tcb_svn, 16);
    put_hex(o, "mr_seam", r->mr_seam, 48);
    put_hex(o, "mr_signer_seam", r->mr_signer_seam, 48);
    put_hex(o, "seam_attributes", r->seam_attributes, 8);
    put_hex(o, "td_attributes", r->td_attributes, 8);
    put_hex(o, "xfam", r->xfam, 8);
    put_hex(o, "mr_td", r->mr_td, 48);
    put_hex(o, "mr_config_id", r->mr_config_id, 48);
    put_hex(o, "mr_owner", r->mr_owner, 48);
    put_hex(o, "mr_owner_config", r->mr_owner_config, 48);
    static const char *const RTMR[4] = {"rtmr_0", "rtmr_1", "rtmr_2", "rtmr_3"};
    for (int i = 0; i < 4; i++)
        put_hex(o, RTMR[i], r->rtmr[i], 48);
    put_hex(o, "report_data", r->report_data, 64);
    if (r->has_1_5) {
        put_hex(o, "tee_tcb_svn2", r->tee_tcb_svn2, 16);
        put_hex(o, "mr_service_td", r->mr_service_td, 48);
    }
    return o;
}

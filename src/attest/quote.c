/* quote.c - Intel TDX quote v4/v5 parser and claims; layout in quote.h. */
#include "attest/quote.h"

#include <stdlib.h>
#include <string.h>

#include "common/codec.h"
#include "common/cursor.h"

static cai_status truncated(const char *what) {
    return cai_fail(CAI_ERR_TRUNCATED, "tdx quote: truncated in %s", what);
}

static cai_status parse_header(cursor *c, tdx_quote_header *h) {
    if (!cursor_get_u16le(c, &h->version) || !cursor_get_u16le(c, &h->att_key_type) ||
        !cursor_get_u32le(c, &h->tee_type) || !cursor_copy(c, h->reserved, 4) ||
        !cursor_copy(c, h->qe_vendor_id, 16) || !cursor_copy(c, h->user_data, 20))
        return truncated("header");
    if (h->version != 4 && h->version != 5)
        return cai_fail(CAI_ERR_UNSUPPORTED, "tdx quote: version %u (want 4 or 5)",
                        h->version);
    if (h->att_key_type != TDX_ATT_KEY_ECDSA_P256)
        return cai_fail(CAI_ERR_UNSUPPORTED,
                        "tdx quote: attestation key type %u (want 2 = ECDSA-P256)",
                        h->att_key_type);
    if (h->tee_type != TDX_TEE_TYPE_TDX)
        return cai_fail(CAI_ERR_UNSUPPORTED, "tdx quote: tee type 0x%x (want 0x81 = TDX)",
                        (unsigned)h->tee_type);
    return CAI_OK;
}

/* Parses a TD report body of exactly cursor_len(c) bytes. */
static cai_status parse_td_report(cursor *c, int tdx15, tdx_td_report *r) {
    memset(r, 0, sizeof(*r));
    int ok = cursor_copy(c, r->tee_tcb_svn, 16) && cursor_copy(c, r->mr_seam, 48) &&
             cursor_copy(c, r->mr_signer_seam, 48) &&
             cursor_copy(c, r->seam_attributes, 8) && cursor_copy(c, r->td_attributes, 8) &&
             cursor_copy(c, r->xfam, 8) && cursor_copy(c, r->mr_td, 48) &&
             cursor_copy(c, r->mr_config_id, 48) && cursor_copy(c, r->mr_owner, 48) &&
             cursor_copy(c, r->mr_owner_config, 48);
    for (int i = 0; ok && i < 4; i++)
        ok = cursor_copy(c, r->rtmr[i], 48);
    ok = ok && cursor_copy(c, r->report_data, 64);
    if (ok && tdx15) {
        r->is_tdx15 = 1;
        ok = cursor_copy(c, r->tee_tcb_svn2, 16) && cursor_copy(c, r->mr_service_td, 48);
    }
    if (!ok)
        return truncated("TD report body");
    CAI_ASSERT(cursor_len(c) == 0); /* callers size the cursor exactly */
    return CAI_OK;
}

static void parse_qe_report(const uint8_t *p, tdx_qe_report *r) {
    cursor c;
    cursor_init(&c, p, TDX_SGX_REPORT_LEN);
    int ok = cursor_copy(&c, r->cpu_svn, 16) && cursor_get_u32le(&c, &r->misc_select) &&
             cursor_skip(&c, 28) && cursor_copy(&c, r->attributes, 16) &&
             cursor_copy(&c, r->mr_enclave, 32) && cursor_skip(&c, 32) &&
             cursor_copy(&c, r->mr_signer, 32) && cursor_skip(&c, 96) &&
             cursor_get_u16le(&c, &r->isv_prod_id) && cursor_get_u16le(&c, &r->isv_svn) &&
             cursor_skip(&c, 60) && cursor_copy(&c, r->report_data, 64);
    CAI_ASSERT(ok && cursor_len(&c) == 0);
}

/* Parses the QE report certification data (type 6), exactly cursor_len(c). */
static cai_status parse_qe_cert_data(cursor *c, tdx_quote *q) {
    cursor rep, auth, chain;
    if (!cursor_get_span(c, &rep, TDX_SGX_REPORT_LEN))
        return truncated("QE report");
    q->qe_report_raw = cursor_data(&rep);
    parse_qe_report(q->qe_report_raw, &q->qe_report);
    if (!cursor_copy(c, q->qe_report_sig, 64))
        return truncated("QE report signature");
    if (!cursor_get_u16le_prefixed(c, &auth))
        return truncated("QE authentication data");
    q->qe_auth = cursor_data(&auth);
    q->qe_auth_len = cursor_len(&auth);
    uint16_t type;
    uint32_t size;
    if (!cursor_get_u16le(c, &type) || !cursor_get_u32le(c, &size))
        return truncated("PCK certification data header");
    if (type != TDX_CERT_PCK_CHAIN)
        return cai_fail(CAI_ERR_UNSUPPORTED,
                        "tdx quote: inner certification data type %u (want 5 = PCK chain)",
                        type);
    if (size > TDX_PCK_CHAIN_MAX_LEN)
        return cai_fail(CAI_ERR_LIMIT, "tdx quote: PCK chain of %u bytes exceeds %u", size,
                        TDX_PCK_CHAIN_MAX_LEN);
    if (!cursor_get_span(c, &chain, size))
        return truncated("PCK certificate chain");
    if (size == 0)
        return cai_fail(CAI_ERR_FORMAT, "tdx quote: empty PCK certificate chain");
    if (cursor_len(c) != 0)
        return cai_fail(CAI_ERR_TRAILING,
                        "tdx quote: %zu bytes after the PCK chain in QE certification data",
                        cursor_len(c));
    q->pck_chain = (const char *)cursor_data(&chain);
    q->pck_chain_len = cursor_len(&chain);
    return CAI_OK;
}

/* Parses the signature data, exactly cursor_len(c) bytes. */
static cai_status parse_sig_data(cursor *c, tdx_quote *q) {
    if (!cursor_copy(c, q->signature, 64))
        return truncated("quote signature");
    if (!cursor_copy(c, q->att_key, 64))
        return truncated("attestation key");
    uint16_t type;
    uint32_t size;
    if (!cursor_get_u16le(c, &type) || !cursor_get_u32le(c, &size))
        return truncated("certification data header");
    if (type != TDX_CERT_QE_REPORT)
        return cai_fail(CAI_ERR_UNSUPPORTED,
                        "tdx quote: certification data type %u (want 6 = QE report)", type);
    cursor cd;
    if (!cursor_get_span(c, &cd, size))
        return truncated("QE certification data");
    if (cursor_len(c) != 0)
        return cai_fail(CAI_ERR_TRAILING,
                        "tdx quote: %zu bytes after certification data in signature data",
                        cursor_len(c));
    return parse_qe_cert_data(&cd, q);
}

cai_status tdx_quote_parse(const uint8_t *data, size_t len, unsigned flags,
                           tdx_quote **out) {
    *out = NULL;
    if (data == NULL && len != 0)
        return CAI_ERR_INVALID_ARG;
    if ((flags & ~TDX_QUOTE_ALLOW_ZERO_PAD) != 0)
        return cai_fail(CAI_ERR_INVALID_ARG, "tdx quote: unknown flags 0x%x", flags);
    if (len > TDX_QUOTE_MAX_LEN)
        return cai_fail(CAI_ERR_LIMIT, "tdx quote: %zu bytes exceeds the limit of %u", len,
                        TDX_QUOTE_MAX_LEN);
    tdx_quote *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return CAI_ERR_NOMEM;
    q->raw = malloc(len ? len : 1);
    if (q->raw == NULL) {
        free(q);
        return CAI_ERR_NOMEM;
    }
    if (len)
        memcpy(q->raw, data, len);

    cai_status st;
    cursor c, body, sig;
    cursor_init(&c, q->raw, len);
    if ((st = parse_header(&c, &q->header)) != CAI_OK)
        goto fail;
    if (q->header.version == 4) {
        q->body_type = TDX_BODY_TDX10;
        if (!cursor_get_span(&c, &body, TDX_TD_REPORT10_LEN)) {
            st = truncated("TD report body");
            goto fail;
        }
    } else {
        uint32_t size, want;
        if (!cursor_get_u16le(&c, &q->body_type) || !cursor_get_u32le(&c, &size)) {
            st = truncated("body descriptor");
            goto fail;
        }
        if (q->body_type == TDX_BODY_TDX10)
            want = TDX_TD_REPORT10_LEN;
        else if (q->body_type == TDX_BODY_TDX15)
            want = TDX_TD_REPORT15_LEN;
        else {
            st = cai_fail(CAI_ERR_UNSUPPORTED,
                          "tdx quote: body type %u (want 2 = TDX 1.0 or 3 = TDX 1.5)",
                          q->body_type);
            goto fail;
        }
        if (size != want) {
            st = cai_fail(CAI_ERR_FORMAT, "tdx quote: body type %u with size %u (want %u)",
                          q->body_type, size, want);
            goto fail;
        }
        if (!cursor_get_span(&c, &body, size)) {
            st = truncated("TD report body");
            goto fail;
        }
    }
    if ((st = parse_td_report(&body, q->body_type == TDX_BODY_TDX15, &q->body)) != CAI_OK)
        goto fail;
    q->signed_len = len - cursor_len(&c);
    if (!cursor_get_u32le_prefixed(&c, &sig)) {
        st = truncated("signature data");
        goto fail;
    }
    if ((st = parse_sig_data(&sig, q)) != CAI_OK)
        goto fail;
    if (cursor_len(&c) != 0) {
        int zero = 1;
        for (size_t i = 0; i < cursor_len(&c); i++)
            zero &= cursor_data(&c)[i] == 0;
        if (!(flags & TDX_QUOTE_ALLOW_ZERO_PAD) || !zero) {
            st = cai_fail(CAI_ERR_TRAILING, "tdx quote: %zu %sbytes after the signature data",
                          cursor_len(&c), zero ? "zero " : "");
            goto fail;
        }
    }
    q->len = len - cursor_len(&c);
    *out = q;
    return CAI_OK;
fail:
    tdx_quote_free(q);
    return st;
}

void tdx_quote_free(tdx_quote *q) {
    if (q == NULL)
        return;
    free(q->raw);
    free(q);
}

int tdx_quote_is_debug(const tdx_quote *q) { return q->body.td_attributes[0] & 1; }

/* ---- claims ------------------------------------------------------------ */

static int set_hex(json_t *o, const char *key, const void *p, size_t n) {
    char *s = malloc(2 * n + 1);
    if (s == NULL)
        return -1;
    hex_encode(s, p, n);
    int r = json_object_set_new(o, key, json_string(s));
    free(s);
    return r;
}

static int set_u64(json_t *o, const char *key, uint64_t v) {
    return json_object_set_new(o, key, json_integer((json_int_t)v));
}

cai_status tdx_quote_claims_json(const tdx_quote *q, json_t **out) {
    *out = NULL;
    const tdx_quote_header *h = &q->header;
    const tdx_td_report *b = &q->body;
    json_t *root = json_object(), *quote = json_object(), *hdr = json_object(),
           *body = json_object();
    int r = (root && quote && hdr && body) ? 0 : -1;
    r |= set_u64(hdr, "version", h->version);
    r |= set_u64(hdr, "att_key_type", h->att_key_type);
    r |= set_hex(hdr, "tee_type", &h->tee_type, 4);
    r |= set_hex(hdr, "reserved", h->reserved, 4);
    r |= set_hex(hdr, "vendor_id", h->qe_vendor_id, 16);
    r |= set_hex(hdr, "user_data", h->user_data, 20);
    r |= set_u64(body, "type", q->body_type);
    r |= set_hex(body, "tcb_svn", b->tee_tcb_svn, 16);
    r |= set_hex(body, "mr_seam", b->mr_seam, 48);
    r |= set_hex(body, "mrsigner_seam", b->mr_signer_seam, 48);
    r |= set_hex(body, "seam_attributes", b->seam_attributes, 8);
    r |= set_hex(body, "td_attributes", b->td_attributes, 8);
    r |= set_hex(body, "xfam", b->xfam, 8);
    r |= set_hex(body, "mr_td", b->mr_td, 48);
    r |= set_hex(body, "mr_config_id", b->mr_config_id, 48);
    r |= set_hex(body, "mr_owner", b->mr_owner, 48);
    r |= set_hex(body, "mr_owner_config", b->mr_owner_config, 48);
    r |= set_hex(body, "rtmr_0", b->rtmr[0], 48);
    r |= set_hex(body, "rtmr_1", b->rtmr[1], 48);
    r |= set_hex(body, "rtmr_2", b->rtmr[2], 48);
    r |= set_hex(body, "rtmr_3", b->rtmr[3], 48);
    r |= set_hex(body, "report_data", b->report_data, 64);
    if (b->is_tdx15) {
        r |= set_hex(body, "tee_tcb_svn2", b->tee_tcb_svn2, 16);
        r |= set_hex(body, "mr_servicetd", b->mr_service_td, 48);
    }
    /* Convenience copies at the top level, as policies usually want them. */
    r |= json_object_set_new(root, "tee", json_string("tdx"));
    r |= json_object_set_new(root, "debug", json_boolean(tdx_quote_is_debug(q)));
    r |= set_hex(root, "mr_td", b->mr_td, 48);
    r |= set_hex(root, "rtmr_0", b->rtmr[0], 48);
    r |= set_hex(root, "rtmr_1", b->rtmr[1], 48);
    r |= set_hex(root, "rtmr_2", b->rtmr[2], 48);
    r |= set_hex(root, "rtmr_3", b->rtmr[3], 48);
    r |= set_hex(root, "report_data", b->report_data, 64);
    r |= set_hex(root, "td_attributes", b->td_attributes, 8);
    r |= set_hex(root, "xfam", b->xfam, 8);
    r |= set_hex(root, "mr_config_id", b->mr_config_id, 48);
    if (r == 0) {
        r |= json_object_set(quote, "header", hdr);
        r |= json_object_set(quote, "body", body);
        r |= json_object_set(root, "quote", quote);
    }
    json_decref(hdr);
    json_decref(body);
    json_decref(quote);
    if (r != 0) {
        json_decref(root);
        return CAI_ERR_NOMEM;
    }
    *out = root;
    return CAI_OK;
}

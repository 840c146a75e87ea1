/* Tests of the TDX quote parser: real v4/v5 quotes, synthetic quotes with
 * known field values, and one case per rejection rule. */
#include <string.h>
#include <unistd.h>

#include "attest/quote.h"
#include "common/buf.h"
#include "common/file.h"
#include "test.h"

/* ---- a synthetic quote builder ----------------------------------------- */

typedef struct {
    uint16_t version, att_key_type, body_type;
    uint32_t tee_type;
    int32_t body_size_delta;  /* added to the declared v5 body size */
    int32_t sig_len_delta;    /* added to the declared signature data length */
    int32_t cd_size_delta;    /* added to the declared type-6 size */
    int32_t chain_size_delta; /* added to the declared type-5 size */
    uint16_t cd_type, chain_type;
    size_t chain_len;
    int extra_in_cd;   /* bytes appended inside type-6 data, after the chain */
    int extra_in_sig;  /* bytes appended inside signature data */
    int auth_len_over; /* QE auth length claims more than present */
} qopts;

static qopts defaults(uint16_t version) {
    qopts o = {.version = version, .att_key_type = 2, .tee_type = 0x81,
               .body_type = 2, .cd_type = 6, .chain_type = 5, .chain_len = 100};
    return o;
}

static void build(const qopts *o, buf *b) {
    buf_init(b, 0);
    (void)buf_append_u16le(b, o->version);
    (void)buf_append_u16le(b, o->att_key_type);
    (void)buf_append_u32le(b, o->tee_type);
    for (int i = 0; i < 4 + 16 + 20; i++)
        (void)buf_append_u8(b, (uint8_t)(0xA0 + i));
    size_t body_len = o->body_type == 3 ? 648 : 584;
    if (o->version == 5) {
        (void)buf_append_u16le(b, o->body_type);
        (void)buf_append_u32le(b, (uint32_t)((int64_t)body_len + o->body_size_delta));
    }
    /* body: byte i = i % 251, so every field has a known value */
    for (size_t i = 0; i < body_len; i++)
        (void)buf_append_u8(b, (uint8_t)(i % 251));
    size_t auth_len = 32;
    size_t cd_len = 384 + 64 + 2 + auth_len + 6 + o->chain_len + (size_t)o->extra_in_cd;
    size_t sig_len = 64 + 64 + 6 + cd_len + (size_t)o->extra_in_sig;
    (void)buf_append_u32le(b, (uint32_t)((int64_t)sig_len + o->sig_len_delta));
    for (int i = 0; i < 128; i++)
        (void)buf_append_u8(b, (uint8_t)(0x10 + i));
    (void)buf_append_u16le(b, o->cd_type);
    (void)buf_append_u32le(b, (uint32_t)((int64_t)cd_len + o->cd_size_delta));
    for (int i = 0; i < 384 + 64; i++)
        (void)buf_append_u8(b, (uint8_t)(i * 7));
    (void)buf_append_u16le(b, (uint16_t)(auth_len + (size_t)o->auth_len_over));
    for (size_t i = 0; i < auth_len; i++)
        (void)buf_append_u8(b, (uint8_t)i);
    (void)buf_append_u16le(b, o->chain_type);
    (void)buf_append_u32le(b, (uint32_t)((int64_t)o->chain_len + o->chain_size_delta));
    for (size_t i = 0; i < o->chain_len; i++)
        (void)buf_append_u8(b, 'P');
    for (int i = 0; i < o->extra_in_cd + o->extra_in_sig; i++)
        (void)buf_append_u8(b, 0);
}

static cai_status parse_opts(const qopts *o) {
    buf b;
    build(o, &b);
    tdx_quote *q = NULL;
    cai_status st = tdx_quote_parse(b.data, b.len, 0, &q);
    CHECK((st == CAI_OK) == (q != NULL));
    tdx_quote_free(q);
    buf_free(&b);
    return st;
}

/* ---- acceptance -------------------------------------------------------- */

static void check_body_pattern(const tdx_quote *q) {
    CHECK(q->body.tee_tcb_svn[0] == 0 && q->body.mr_seam[0] == 16);
    CHECK(q->body.td_attributes[0] == (uint8_t)(16 + 96 + 8));
    CHECK(q->body.mr_td[0] == (uint8_t)(16 + 96 + 24));
    CHECK(q->body.rtmr[3][0] == (uint8_t)((16 + 96 + 24 + 192 + 144) % 251));
    CHECK(q->body.report_data[63] == (uint8_t)(583 % 251));
}

static void test_synthetic_v4(void) {
    qopts o = defaults(4);
    buf b;
    build(&o, &b);
    tdx_quote *q = NULL;
    CHECK_OK(tdx_quote_parse(b.data, b.len, 0, &q));
    if (q) {
        CHECK(q->len == b.len && q->signed_len == 48 + 584);
        CHECK(q->body_type == 2 && !q->body.is_tdx15);
        check_body_pattern(q);
        CHECK(q->signature[0] == 0x10 && q->att_key[63] == 0x10 + 127);
        CHECK(q->qe_report_raw == q->raw + 48 + 584 + 4 + 128 + 6);
        CHECK(q->qe_report.isv_prod_id == (uint16_t)((((257 * 7) & 0xff) << 8) | ((256 * 7) & 0xff)));
        CHECK(q->qe_auth_len == 32 && q->pck_chain_len == 100 && q->pck_chain[0] == 'P');
        CHECK(q->header.qe_vendor_id[0] == 0xA4 && q->header.user_data[19] == 0xA0 + 39);
        CHECK(!tdx_quote_is_debug(q));
    }
    tdx_quote_free(q);
    buf_free(&b);
}

static void test_synthetic_v5(void) {
    for (uint16_t type = 2; type <= 3; type++) {
        qopts o = defaults(5);
        o.body_type = type;
        buf b;
        build(&o, &b);
        tdx_quote *q = NULL;
        CHECK_OK(tdx_quote_parse(b.data, b.len, 0, &q));
        if (q) {
            size_t body = type == 3 ? 648 : 584;
            CHECK(q->signed_len == 48 + 6 + body);
            CHECK(q->body_type == type && q->body.is_tdx15 == (type == 3));
            check_body_pattern(q);
            if (type == 3)
                CHECK(q->body.tee_tcb_svn2[0] == 584 % 251 &&
                      q->body.mr_service_td[47] == 647 % 251);
        }
        tdx_quote_free(q);
        buf_free(&b);
    }
}

static void test_claims_json(void) {
    qopts o = defaults(4);
    buf b;
    build(&o, &b);
    b.data[48 + 120] |= 1; /* td_attributes.DEBUG */
    tdx_quote *q = NULL;
    json_t *j = NULL;
    CHECK_OK(tdx_quote_parse(b.data, b.len, 0, &q));
    if (q) {
        CHECK(tdx_quote_is_debug(q));
        CHECK_OK(tdx_quote_claims_json(q, &j));
    }
    if (j) {
        CHECK(json_is_true(json_object_get(j, "debug")));
        CHECK(strcmp(json_string_value(json_object_get(j, "tee")), "tdx") == 0);
        json_t *body = json_object_get(json_object_get(j, "quote"), "body");
        const char *mrtd = json_string_value(json_object_get(body, "mr_td"));
        CHECK(mrtd && strlen(mrtd) == 96 && strncmp(mrtd, "88898a", 6) == 0);
        CHECK(json_equal(json_object_get(body, "rtmr_0"), json_object_get(j, "rtmr_0")));
        CHECK(strlen(json_string_value(json_object_get(j, "report_data"))) == 128);
        CHECK(json_integer_value(json_object_get(
                  json_object_get(json_object_get(j, "quote"), "header"), "version")) == 4);
    }
    json_decref(j);
    tdx_quote_free(q);
    buf_free(&b);
}

/* ---- real quotes ------------------------------------------------------- */

static int shared_path(char *out, size_t cap, const char *name) {
    const char *d = getenv("CAI_SHARED_DATA");
    snprintf(out, cap, "%s/tdx/%s", d ? d : "../shared/data", name);
    return access(out, R_OK) == 0;
}

static void real_quote(const char *name, uint16_t version, uint16_t body_type) {
    char path[512];
    if (!shared_path(path, sizeof(path), name)) {
        SKIP("%s: ../shared/data absent", name);
        return;
    }
    buf b;
    CHECK_OK(file_read_all(path, 1 << 20, &b));
    tdx_quote *q = NULL;
    /* The files may be zero-padded: strict parsing refuses the padding. */
    CHECK_OK(tdx_quote_parse(b.data, b.len, TDX_QUOTE_ALLOW_ZERO_PAD, &q));
    if (q && q->len < b.len) {
        tdx_quote *q1 = NULL;
        CHECK_ST(tdx_quote_parse(b.data, b.len, 0, &q1), CAI_ERR_TRAILING);
    }
    if (q) {
        CHECK(q->header.version == version && q->body_type == body_type);
        CHECK(q->len <= b.len);
        CHECK(!tdx_quote_is_debug(q));
        CHECK(q->pck_chain_len > 0 && memmem(q->pck_chain, q->pck_chain_len,
                                              "-----BEGIN CERTIFICATE-----", 27) != NULL);
        /* The quote without padding parses strictly. */
        tdx_quote *q2 = NULL;
        CHECK_OK(tdx_quote_parse(b.data, q->len, 0, &q2));
        tdx_quote_free(q2);
        /* Every strict prefix is refused. */
        for (size_t n = 0; n < q->len; n += 97)
            CHECK_ST(tdx_quote_parse(b.data, n, 0, &q2), CAI_ERR_TRUNCATED);
        /* Non-zero padding is refused even with the flag. */
        if (q->len < b.len) {
            b.data[b.len - 1] = 1;
            CHECK_ST(tdx_quote_parse(b.data, b.len, TDX_QUOTE_ALLOW_ZERO_PAD, &q2),
                     CAI_ERR_TRAILING);
        }
    }
    tdx_quote_free(q);
    buf_free(&b);
}

static void test_real_v4(void) { real_quote("tdx_quote", 4, 2); }
static void test_real_v5(void) { real_quote("tdx_quote_outdated", 5, 3); }

/* ---- one test per rejection rule --------------------------------------- */

static void test_reject_version(void) {
    qopts o = defaults(3);
    CHECK_ST(parse_opts(&o), CAI_ERR_UNSUPPORTED);
    o = defaults(6);
    CHECK_ST(parse_opts(&o), CAI_ERR_UNSUPPORTED);
}

static void test_reject_att_key_type(void) {
    qopts o = defaults(4);
    o.att_key_type = 3; /* ECDSA-P384 */
    CHECK_ST(parse_opts(&o), CAI_ERR_UNSUPPORTED);
}

static void test_reject_tee_type(void) {
    qopts o = defaults(4);
    o.tee_type = 0; /* SGX */
    CHECK_ST(parse_opts(&o), CAI_ERR_UNSUPPORTED);
}

static void test_reject_body_type(void) {
    qopts o = defaults(5);
    o.body_type = 1; /* SGX enclave report */
    CHECK_ST(parse_opts(&o), CAI_ERR_UNSUPPORTED);
}

static void test_reject_body_size(void) {
    qopts o = defaults(5);
    o.body_size_delta = 64; /* TDX 1.0 type with a TDX 1.5 size */
    CHECK_ST(parse_opts(&o), CAI_ERR_FORMAT);
    o = defaults(5);
    o.body_type = 3;
    o.body_size_delta = -64;
    CHECK_ST(parse_opts(&o), CAI_ERR_FORMAT);
}

static void test_reject_truncated_header(void) {
    tdx_quote *q = NULL;
    uint8_t h[47] = {4, 0, 2, 0, 0x81};
    CHECK_ST(tdx_quote_parse(h, sizeof(h), 0, &q), CAI_ERR_TRUNCATED);
    CHECK_ST(tdx_quote_parse(NULL, 0, 0, &q), CAI_ERR_TRUNCATED);
    CHECK(q == NULL);
}

static void test_reject_truncated_body(void) {
    qopts o = defaults(4);
    buf b;
    build(&o, &b);
    tdx_quote *q = NULL;
    CHECK_ST(tdx_quote_parse(b.data, 48 + 583, 0, &q), CAI_ERR_TRUNCATED);
    buf_free(&b);
}

static void test_reject_sig_len_past_end(void) {
    qopts o = defaults(4);
    o.sig_len_delta = 1;
    CHECK_ST(parse_opts(&o), CAI_ERR_TRUNCATED);
}

static void test_reject_trailing(void) {
    qopts o = defaults(4);
    buf b;
    build(&o, &b);
    (void)buf_append_u8(&b, 0);
    tdx_quote *q = NULL;
    CHECK_ST(tdx_quote_parse(b.data, b.len, 0, &q), CAI_ERR_TRAILING);
    CHECK_OK(tdx_quote_parse(b.data, b.len, TDX_QUOTE_ALLOW_ZERO_PAD, &q));
    tdx_quote_free(q);
    buf_free(&b);
}

static void test_reject_cert_data_type(void) {
    qopts o = defaults(4);
    o.cd_type = 5; /* a bare PCK chain, without the QE report */
    CHECK_ST(parse_opts(&o), CAI_ERR_UNSUPPORTED);
}

static void test_reject_cert_data_size(void) {
    qopts o = defaults(4);
    o.cd_size_delta = 1;
    CHECK_ST(parse_opts(&o), CAI_ERR_TRUNCATED);
}

static void test_reject_trailing_in_sig_data(void) {
    qopts o = defaults(4);
    o.extra_in_sig = 3;
    CHECK_ST(parse_opts(&o), CAI_ERR_TRAILING);
}

static void test_reject_qe_auth_len(void) {
    qopts o = defaults(4);
    o.auth_len_over = 2000;
    CHECK_ST(parse_opts(&o), CAI_ERR_TRUNCATED);
}

static void test_reject_chain_type(void) {
    qopts o = defaults(4);
    o.chain_type = 3;
    CHECK_ST(parse_opts(&o), CAI_ERR_UNSUPPORTED);
}

static void test_reject_chain_size(void) {
    qopts o = defaults(4);
    o.chain_size_delta = 1;
    CHECK_ST(parse_opts(&o), CAI_ERR_TRUNCATED);
}

static void test_reject_trailing_in_cert_data(void) {
    qopts o = defaults(4);
    o.extra_in_cd = 5;
    CHECK_ST(parse_opts(&o), CAI_ERR_TRAILING);
}

static void test_reject_empty_chain(void) {
    qopts o = defaults(4);
    o.chain_len = 0;
    CHECK_ST(parse_opts(&o), CAI_ERR_FORMAT);
}

static void test_reject_chain_limit(void) {
    qopts o = defaults(4);
    o.chain_len = TDX_PCK_CHAIN_MAX_LEN + 1;
    CHECK_ST(parse_opts(&o), CAI_ERR_LIMIT);
}

static void test_reject_quote_limit(void) {
    static uint8_t big[TDX_QUOTE_MAX_LEN + 1];
    tdx_quote *q = NULL;
    CHECK_ST(tdx_quote_parse(big, sizeof(big), 0, &q), CAI_ERR_LIMIT);
}

int main(void) {
    RUN(test_synthetic_v4);
    RUN(test_synthetic_v5);
    RUN(test_claims_json);
    RUN(test_real_v4);
    RUN(test_real_v5);
    RUN(test_reject_version);
    RUN(test_reject_att_key_type);
    RUN(test_reject_tee_type);
    RUN(test_reject_body_type);
    RUN(test_reject_body_size);
    RUN(test_reject_truncated_header);
    RUN(test_reject_truncated_body);
    RUN(test_reject_sig_len_past_end);
    RUN(test_reject_trailing);
    RUN(test_reject_cert_data_type);
    RUN(test_reject_cert_data_size);
    RUN(test_reject_trailing_in_sig_data);
    RUN(test_reject_qe_auth_len);
    RUN(test_reject_chain_type);
    RUN(test_reject_chain_size);
    RUN(test_reject_trailing_in_cert_data);
    RUN(test_reject_empty_chain);
    RUN(test_reject_chain_limit);
    RUN(test_reject_quote_limit);
    return test_summary();
}

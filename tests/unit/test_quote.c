/* test_quote.c - the TDX quote parser: real quotes, a synthetic one, and one
 * test per rejection rule. */
#include "attest/quote.h"
#include "common/buf.h"
#include "crypto/kdf.h"
#include "test.h"

static const char CHAIN[] = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

/* A structurally valid quote (signatures are not checked by the parser). */
static void build(buf *b, int version, int body_type, int debug) {
    buf_init(b, 0);
    buf_append_u16le(b, (uint16_t)version);
    buf_append_u16le(b, 2);
    buf_append_u32le(b, 0x81);
    buf_append_u32le(b, 0);
    for (int i = 0; i < 36; i++)
        buf_append_u8(b, (uint8_t)i);
    size_t body = body_type == 3 ? 648 : 584;
    if (version == 5) {
        buf_append_u16le(b, (uint16_t)body_type);
        buf_append_u32le(b, (uint32_t)body);
    }
    for (size_t i = 0; i < body; i++) /* td_attributes start at 16+48+48+8 = 120 */
        buf_append_u8(b, i == 120 ? (uint8_t)debug : (uint8_t)(i * 7));
    buf cert;
    buf_init(&cert, 0);
    for (int i = 0; i < 384 + 64; i++)
        buf_append_u8(&cert, (uint8_t)i);
    buf_append_u16le(&cert, 4);
    buf_append(&cert, "auth", 4);
    buf_append_u16le(&cert, 5);
    buf_append_u32le(&cert, sizeof(CHAIN) - 1);
    buf_append(&cert, CHAIN, sizeof(CHAIN) - 1);
    buf_append_u32le(b, (uint32_t)(128 + 6 + cert.len));
    for (int i = 0; i < 128; i++)
        buf_append_u8(b, 0xAB);
    buf_append_u16le(b, 6);
    buf_append_u32le(b, (uint32_t)cert.len);
    buf_append(b, cert.data, cert.len);
    buf_free(&cert);
}

static void test_synthetic(void) {
    buf b;
    build(&b, 4, 2, 1);
    tdx_quote q;
    CHECK_OK(tdx_quote_parse(b.data, b.len, &q));
    CHECK(q.version == 4 && q.body_type == 2 && !q.td.has_1_5 && tdx_quote_is_debug(&q));
    CHECK(q.qe_auth_len == 4 && memcmp(q.qe_auth_data, "auth", 4) == 0);
    CHECK(q.pck_chain_len == sizeof(CHAIN) - 1 && q.quote_len == b.len);
    CHECK(q.signed_len == 48 + 584);
    json_t *c = tdx_quote_claims(&q);
    CHECK(json_is_true(json_object_get(c, "debug")) && strlen(json_string_value(json_object_get(c, "mr_td"))) == 96);
    CHECK(json_object_get(c, "mr_service_td") == NULL);
    json_decref(c);
    buf_append(&b, "\0\0\0\0", 4); /* zero padding is fine */
    CHECK_OK(tdx_quote_parse(b.data, b.len, &q));
    CHECK(q.quote_len == b.len - 4);
    buf_free(&b);
    build(&b, 5, 3, 0);
    CHECK_OK(tdx_quote_parse(b.data, b.len, &q));
    CHECK(q.version == 5 && q.td.has_1_5 && !tdx_quote_is_debug(&q) && q.signed_len == 48 + 6 + 648);
    buf_free(&b);
}

static void expect(const char *name, buf *b, cai_status want, const char *msg) {
    tdx_quote q;
    cai_status st = tdx_quote_parse(b->data, b->len, &q);
    if (st != want || !strstr(cai_errmsg(st), msg)) {
        printf("  rule %s: got %d '%s', want %d '%s'\n", name, st, cai_errmsg(st), want, msg);
        test_case_failed = 1;
    }
    buf_free(b);
}

static void patch16(buf *b, size_t off, uint16_t v) { b->data[off] = (uint8_t)v, b->data[off + 1] = (uint8_t)(v >> 8); }
static void patch32(buf *b, size_t off, uint32_t v) {
    for (int i = 0; i < 4; i++)
        b->data[off + (size_t)i] = (uint8_t)(v >> (8 * i));
}

static void test_rejections(void) {
    buf b;
    const size_t sig4 = 48 + 584; /* offset of the signature data length in a v4 quote */
    build(&b, 4, 2, 0), patch16(&b, 0, 3), expect("version_3", &b, CAI_ERR_UNSUPPORTED, "version 3");
    build(&b, 4, 2, 0), patch16(&b, 2, 3), expect("key_type", &b, CAI_ERR_UNSUPPORTED, "key type 3");
    build(&b, 4, 2, 0), patch32(&b, 4, 0), expect("tee_type_sgx", &b, CAI_ERR_UNSUPPORTED, "TEE type 0x0");
    build(&b, 5, 2, 0), patch16(&b, 48, 4), expect("body_type", &b, CAI_ERR_UNSUPPORTED, "body type 4");
    build(&b, 5, 3, 0), patch32(&b, 50, 584), expect("body_size", &b, CAI_ERR_FORMAT, "body size");
    build(&b, 4, 2, 0), patch32(&b, sig4, 0xFFFFFFF0u), expect("sig_len_huge", &b, CAI_ERR_TRUNCATED, "signature data");
    build(&b, 4, 2, 0), patch16(&b, sig4 + 4 + 128, 7), expect("cert_type", &b, CAI_ERR_UNSUPPORTED, "type 7");
    build(&b, 4, 2, 0), patch32(&b, sig4 + 4 + 128 + 2, 100), expect("cert_len_short", &b, CAI_ERR_FORMAT, "after the certification data");
    build(&b, 4, 2, 0);
    patch32(&b, sig4, (uint32_t)(b.len - sig4 - 4 + 1));
    buf_append_u8(&b, 1);
    expect("bytes_after_cert_data", &b, CAI_ERR_FORMAT, "after the certification data");
    build(&b, 4, 2, 0), patch16(&b, sig4 + 4 + 134 + 448, 60000), expect("auth_len", &b, CAI_ERR_TRUNCATED, "authentication");
    build(&b, 4, 2, 0), patch16(&b, sig4 + 4 + 134 + 448 + 6, 4), expect("inner_type", &b, CAI_ERR_UNSUPPORTED, "type 4");
    build(&b, 4, 2, 0), buf_append_u8(&b, 7), expect("trailing", &b, CAI_ERR_TRAILING, "after the signature data");
    build(&b, 4, 2, 0);
    patch32(&b, sig4 + 4 + 134 + 448 + 8, 0);
    /* shrink everything so the chain is empty */
    expect("chain_len_mismatch", &b, CAI_ERR_FORMAT, "after the PCK certificate chain");
    /* every truncation */
    build(&b, 5, 3, 0);
    int accepted = 0;
    for (size_t n = 0; n < b.len; n++) {
        tdx_quote q;
        accepted += tdx_quote_parse(b.data, n, &q) == CAI_OK;
    }
    CHECK(accepted == 0);
    buf_free(&b);
}

static void test_real_quotes(void) {
    const char *dir = test_shared_data();
    if (!dir) {
        SKIP("real_quotes", "../shared/data absent");
        return;
    }
    const char *names[] = {"tdx_quote", "tdx_quote_outdated"};
    for (int i = 0; i < 2; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/tdx/%s", dir, names[i]);
        FILE *f = fopen(path, "rb");
        static uint8_t data[16384];
        size_t n = f ? fread(data, 1, sizeof(data), f) : 0;
        if (f)
            fclose(f);
        tdx_quote q;
        CHECK_OK(tdx_quote_parse(data, n, &q));
        CHECK(q.version == (i ? 5 : 4) && q.td.has_1_5 == i && !tdx_quote_is_debug(&q));
        CHECK(q.quote_len <= n && (i == 1 || q.quote_len < n)); /* the v4 file is zero-padded */
        /* QE report data = SHA-256(attestation key || QE auth data) || zeros */
        uint8_t h[32], cat[64 + 512];
        CHECK(q.qe_auth_len <= 512);
        memcpy(cat, q.att_key, 64);
        memcpy(cat + 64, q.qe_auth_data, q.qe_auth_len);
        CHECK_OK(kdf_sha256(cat, 64 + q.qe_auth_len, h));
        CHECK(memcmp(h, q.qe_report.report_data, 32) == 0);
        int certs = 0;
        for (size_t k = 0; k + 27 <= q.pck_chain_len; k++)
            certs += memcmp(q.pck_chain_pem + k, "-----BEGIN CERTIFICATE-----", 27) == 0;
        CHECK(certs == 3);
    }
}

int main(void) {
    RUN(test_synthetic);
    RUN(test_rejections);
    RUN(test_real_quotes);
    return test_summary();
}

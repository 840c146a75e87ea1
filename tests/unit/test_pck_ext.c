/* Tests of the PCK certificate SGX extension parser: a well-formed value,
 * the real ones from the shared quotes, and one case per rejection rule. */
#include <string.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "attest/pck_ext.h"
#include "attest/quote.h"
#include "common/buf.h"
#include "common/file.h"
#include "test.h"

/* ---- a DER builder with knobs -------------------------------------------- */

typedef struct {
    int skip_fmspc, dup_fmspc, skip_comp, dup_comp;
    size_t fmspc_len;
    int pcesvn;          /* encoded as given */
    int neg_comp;        /* component 1 as a negative INTEGER */
    int nonminimal_int;  /* component 2 as 00 05 */
    int long_len;        /* outer length in non-minimal long form */
    int trailing;        /* a byte after the outer SEQUENCE */
    int inner_trailing;  /* a byte after the FMSPC OCTET STRING */
    int comp_tag;        /* tag of component 3 (0x02 normally) */
    int extra_item;      /* an unknown item .6 (skipped) */
} knobs;

static void tlv(buf *b, uint8_t tag, const void *p, size_t n) {
    (void)buf_append_u8(b, tag);
    if (n < 0x80)
        (void)buf_append_u8(b, (uint8_t)n);
    else if (n < 0x100) {
        (void)buf_append_u8(b, 0x81);
        (void)buf_append_u8(b, (uint8_t)n);
    } else {
        (void)buf_append_u8(b, 0x82);
        (void)buf_append_u8(b, (uint8_t)(n >> 8));
        (void)buf_append_u8(b, (uint8_t)n);
    }
    (void)buf_append(b, p, n);
}

static void item(buf *b, int a, int sub, uint8_t tag, const void *p, size_t n) {
    uint8_t oid[11] = {0x2A, 0x86, 0x48, 0x86, 0xF8, 0x4D, 0x01, 0x0D, 0x01, (uint8_t)a,
                       (uint8_t)sub};
    buf in;
    buf_init(&in, 0);
    tlv(&in, 0x06, oid, sub ? 11 : 10);
    tlv(&in, tag, p, n);
    tlv(b, 0x30, in.data, in.len);
    buf_free(&in);
}

static void build(const knobs *k, buf *out) {
    buf tcb, all, tcbitem;
    buf_init(&tcb, 0);
    buf_init(&all, 0);
    buf_init(&tcbitem, 0);
    for (int i = 1; i <= 16; i++) {
        if (k->skip_comp && i == 16)
            continue;
        uint8_t v[2] = {(uint8_t)i, 0};
        size_t vn = 1;
        if (i == 1 && k->neg_comp)
            v[0] = 0x81;
        if (i == 2 && k->nonminimal_int) {
            v[0] = 0;
            v[1] = 5;
            vn = 2;
        }
        item(&tcb, 2, i, i == 3 && k->comp_tag ? (uint8_t)k->comp_tag : 0x02, v, vn);
        if (k->dup_comp && i == 5)
            item(&tcb, 2, i, 0x02, v, vn);
    }
    uint8_t pce[2] = {(uint8_t)(k->pcesvn >> 8), (uint8_t)k->pcesvn};
    if (k->pcesvn < 0x80)
        item(&tcb, 2, 17, 0x02, pce + 1, 1);
    else
        item(&tcb, 2, 17, 0x02, pce, 2);
    uint8_t cpusvn[16] = {9, 8, 7};
    item(&tcb, 2, 18, 0x04, cpusvn, 16);
    uint8_t ppid[16] = {0xEE};
    item(&all, 1, 0, 0x04, ppid, 16);
    {
        uint8_t oid[10] = {0x2A, 0x86, 0x48, 0x86, 0xF8, 0x4D, 0x01, 0x0D, 0x01, 2};
        buf in;
        buf_init(&in, 0);
        tlv(&in, 0x06, oid, 10);
        tlv(&in, 0x30, tcb.data, tcb.len);
        tlv(&all, 0x30, in.data, in.len);
        buf_free(&in);
    }
    uint8_t pceid[2] = {0, 1};
    item(&all, 3, 0, 0x04, pceid, 2);
    uint8_t fmspc[8] = {0x90, 0xC0, 0x6F, 0, 0, 0, 0, 0};
    if (!k->skip_fmspc) {
        if (k->inner_trailing) {
            /* OCTET STRING then a stray NULL inside the item */
            uint8_t oid[10] = {0x2A, 0x86, 0x48, 0x86, 0xF8, 0x4D, 0x01, 0x0D, 0x01, 4};
            buf in;
            buf_init(&in, 0);
            tlv(&in, 0x06, oid, 10);
            tlv(&in, 0x04, fmspc, 6);
            tlv(&in, 0x05, NULL, 0);
            tlv(&all, 0x30, in.data, in.len);
            buf_free(&in);
        } else
            item(&all, 4, 0, 0x04, fmspc, k->fmspc_len ? k->fmspc_len : 6);
        if (k->dup_fmspc)
            item(&all, 4, 0, 0x04, fmspc, 6);
    }
    uint8_t type = 0;
    item(&all, 5, 0, 0x0A, &type, 1);
    if (k->extra_item) {
        uint8_t x[16] = {0};
        item(&all, 6, 0, 0x04, x, 16);
    }
    buf_init(out, 0);
    if (k->long_len) {
        (void)buf_append_u8(out, 0x30);
        /* 0x83 00 hi lo: a non-minimal (and over-long) length form */
        (void)buf_append_u8(out, 0x83);
        (void)buf_append_u8(out, 0);
        (void)buf_append_u8(out, (uint8_t)(all.len >> 8));
        (void)buf_append_u8(out, (uint8_t)all.len);
        (void)buf_append(out, all.data, all.len);
    } else
        tlv(out, 0x30, all.data, all.len);
    if (k->trailing)
        (void)buf_append_u8(out, 0);
    buf_free(&tcb);
    buf_free(&all);
    buf_free(&tcbitem);
}

static cai_status parse_knobs(const knobs *k, pck_ext *x) {
    buf b;
    build(k, &b);
    cai_status st = pck_ext_parse(b.data, b.len, x);
    buf_free(&b);
    return st;
}

static const knobs base = {.pcesvn = 13};

static void test_good(void) {
    pck_ext x;
    CHECK_OK(parse_knobs(&base, &x));
    CHECK(x.sgx_tcb[0] == 1 && x.sgx_tcb[15] == 16 && x.pce_svn == 13);
    CHECK(x.cpu_svn[0] == 9 && x.cpu_svn[2] == 7 && x.ppid[0] == 0xEE);
    CHECK(x.fmspc[0] == 0x90 && x.fmspc[2] == 0x6F && x.pce_id[1] == 1);
    knobs k = base;
    k.pcesvn = 300; /* two-byte INTEGER */
    CHECK_OK(parse_knobs(&k, &x));
    CHECK(x.pce_svn == 300);
    k = base;
    k.extra_item = 1; /* unknown items are skipped */
    CHECK_OK(parse_knobs(&k, &x));
}

#define REJECT(name, field, value)                                             \
    static void name(void) {                                                   \
        knobs k = base;                                                        \
        pck_ext x;                                                             \
        k.field = value;                                                       \
        CHECK_ST(parse_knobs(&k, &x), CAI_ERR_FORMAT);                         \
    }

REJECT(test_reject_missing_fmspc, skip_fmspc, 1)
REJECT(test_reject_duplicate_fmspc, dup_fmspc, 1)
REJECT(test_reject_fmspc_size, fmspc_len, 7)
REJECT(test_reject_missing_component, skip_comp, 1)
REJECT(test_reject_duplicate_component, dup_comp, 1)
REJECT(test_reject_negative_svn, neg_comp, 1)
REJECT(test_reject_nonminimal_int, nonminimal_int, 1)
REJECT(test_reject_nonminimal_length, long_len, 1)
REJECT(test_reject_trailing, trailing, 1)
REJECT(test_reject_inner_trailing, inner_trailing, 1)
REJECT(test_reject_component_tag, comp_tag, 0x04)
REJECT(test_reject_pcesvn_range, pcesvn, 0x8000)

static void test_reject_truncated(void) {
    buf b;
    build(&base, &b);
    pck_ext x;
    for (size_t n = 0; n < b.len; n++)
        CHECK_ST(pck_ext_parse(b.data, n, &x), CAI_ERR_FORMAT);
    buf_free(&b);
}

static void test_reject_nonminimal_short_length(void) {
    /* SEQUENCE { OCTET STRING "" } with the empty length written as 81 00 */
    static const uint8_t d[] = {0x30, 0x03, 0x04, 0x81, 0x00};
    static const uint8_t d2[] = {0x30, 0x81, 0x02, 0x04, 0x00};
    pck_ext x;
    CHECK_ST(pck_ext_parse(d, sizeof(d), &x), CAI_ERR_FORMAT);
    CHECK_ST(pck_ext_parse(d2, sizeof(d2), &x), CAI_ERR_FORMAT);
}

/* ---- real PCK certificates ------------------------------------------------ */

static void real(const char *name, const uint8_t fmspc[6]) {
    const char *d = getenv("CAI_SHARED_DATA");
    char path[512];
    snprintf(path, sizeof(path), "%s/tdx/%s", d ? d : "../shared/data", name);
    if (access(path, R_OK) != 0) {
        SKIP("%s: ../shared/data absent", name);
        return;
    }
    buf b;
    tdx_quote *q = NULL;
    CHECK_OK(file_read_all(path, 1 << 20, &b));
    CHECK_OK(tdx_quote_parse(b.data, b.len, TDX_QUOTE_ALLOW_ZERO_PAD, &q));
    if (q) {
        BIO *bio = BIO_new_mem_buf(q->pck_chain, (int)q->pck_chain_len);
        X509 *leaf = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        ASN1_OBJECT *oid = OBJ_txt2obj("1.2.840.113741.1.13.1", 1);
        int idx = leaf ? X509_get_ext_by_OBJ(leaf, oid, -1) : -1;
        CHECK(idx >= 0);
        if (idx >= 0) {
            ASN1_OCTET_STRING *e = X509_EXTENSION_get_data(X509_get_ext(leaf, idx));
            pck_ext x;
            CHECK_OK(pck_ext_parse(ASN1_STRING_get0_data(e), (size_t)ASN1_STRING_length(e), &x));
            CHECK(memcmp(x.fmspc, fmspc, 6) == 0);
            /* CPUSVN bytes equal the TCB components in Intel's certificates. */
            CHECK(memcmp(x.cpu_svn, x.sgx_tcb, 16) == 0);
        }
        ASN1_OBJECT_free(oid);
        X509_free(leaf);
        BIO_free(bio);
    }
    tdx_quote_free(q);
    buf_free(&b);
}

static void test_real_v4(void) {
    static const uint8_t f[6] = {0xB0, 0xC0, 0x6F, 0, 0, 0};
    real("tdx_quote", f);
}

static void test_real_v5(void) {
    static const uint8_t f[6] = {0x90, 0xC0, 0x6F, 0, 0, 0};
    real("tdx_quote_outdated", f);
}

int main(void) {
    RUN(test_good);
    RUN(test_reject_missing_fmspc);
    RUN(test_reject_duplicate_fmspc);
    RUN(test_reject_fmspc_size);
    RUN(test_reject_missing_component);
    RUN(test_reject_duplicate_component);
    RUN(test_reject_negative_svn);
    RUN(test_reject_nonminimal_int);
    RUN(test_reject_nonminimal_length);
    RUN(test_reject_trailing);
    RUN(test_reject_inner_trailing);
    RUN(test_reject_component_tag);
    RUN(test_reject_pcesvn_range);
    RUN(test_reject_truncated);
    RUN(test_reject_nonminimal_short_length);
    RUN(test_real_v4);
    RUN(test_real_v5);
    return test_summary();
}

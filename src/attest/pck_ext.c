/* pck_ext.c - the PCK certificate's SGX extension, read via the cursor. */
#include "attest/pck_ext.h"

#include <string.h>

#include "common/cursor.h"

/* Reads one DER TLV with tag |tag| (definite, minimal length < 64 KiB). */
static int der_get(cursor *c, uint8_t tag, cursor *out) {
    cursor save = *c;
    uint8_t t, l0;
    size_t len;
    if (!cursor_get_u8(c, &t) || t != tag || !cursor_get_u8(c, &l0))
        goto bad;
    if (l0 < 0x80)
        len = l0;
    else if (l0 == 0x81) {
        uint8_t l;
        if (!cursor_get_u8(c, &l) || l < 0x80)
            goto bad;
        len = l;
    } else if (l0 == 0x82) {
        uint16_t l;
        if (!cursor_get_u16be(c, &l) || l < 0x100)
            goto bad;
        len = l;
    } else
        goto bad;
    if (!cursor_get_span(c, out, len))
        goto bad;
    return 1;
bad:
    *c = save;
    return 0;
}

static const uint8_t sgx_oid[9] = {0x2A, 0x86, 0x48, 0x86, 0xF8, 0x4D, 0x01, 0x0D, 0x01};

/* Reads SEQUENCE { OID sgx.<a>[.<b>], value }; sets |a|, |b| (0 if absent)
 * and |value| to the bytes after the OID. */
static int sgx_item(cursor *c, int *a, int *b, cursor *value) {
    cursor seq, oid;
    if (!der_get(c, 0x30, &seq) || !der_get(&seq, 0x06, &oid) || cursor_len(&oid) < 10 ||
        cursor_len(&oid) > 11 || memcmp(cursor_data(&oid), sgx_oid, 9) != 0)
        return 0;
    const uint8_t *o = cursor_data(&oid);
    if ((o[9] & 0x80) || (cursor_len(&oid) == 11 && (o[10] & 0x80)))
        return 0; /* multi-byte arcs are not used by Intel */
    *a = o[9];
    *b = cursor_len(&oid) == 11 ? o[10] : 0;
    *value = seq;
    return 1;
}

/* A non-negative INTEGER <= |max|, minimal encoding, and nothing after it. */
static int der_uint(cursor *v, unsigned max, unsigned *out) {
    cursor i;
    if (!der_get(v, 0x02, &i) || cursor_len(&i) == 0 || cursor_len(&i) > 3 || cursor_len(v))
        return 0;
    const uint8_t *p = cursor_data(&i);
    if ((p[0] & 0x80) || (cursor_len(&i) > 1 && p[0] == 0 && !(p[1] & 0x80)))
        return 0;
    unsigned x = 0;
    for (size_t k = 0; k < cursor_len(&i); k++)
        x = x << 8 | p[k];
    *out = x;
    return x <= max;
}

static int der_octets(cursor *v, void *out, size_t n) {
    cursor o;
    return der_get(v, 0x04, &o) && cursor_len(&o) == n && cursor_len(v) == 0 &&
           cursor_copy(&o, out, n);
}

static cai_status bad(const char *what) {
    return cai_fail(CAI_ERR_FORMAT, "PCK SGX extension: %s", what);
}

static cai_status parse_tcb(cursor *v, pck_ext *x) {
    cursor tcb;
    if (!der_get(v, 0x30, &tcb) || cursor_len(v))
        return bad("TCB is not one SEQUENCE");
    uint32_t seen = 0;
    while (cursor_len(&tcb)) {
        int a, b;
        cursor tv;
        unsigned u;
        if (!sgx_item(&tcb, &a, &b, &tv) || a != 2 || b < 1 || b > 18)
            return bad("malformed TCB entry");
        if (seen & (1u << b))
            return bad("duplicate TCB entry");
        seen |= 1u << b;
        if (b <= 16) {
            if (!der_uint(&tv, 255, &u))
                return bad("TCB component SVN is not an INTEGER 0..255");
            x->sgx_tcb[b - 1] = (uint8_t)u;
        } else if (b == 17) {
            if (!der_uint(&tv, 65535, &u))
                return bad("PCESVN is not an INTEGER 0..65535");
            x->pce_svn = (uint16_t)u;
        } else if (!der_octets(&tv, x->cpu_svn, 16))
            return bad("CPUSVN is not a 16-byte OCTET STRING");
    }
    if (seen != 0x7FFFEu)
        return bad("TCB lacks some of its 18 entries");
    return CAI_OK;
}

cai_status pck_ext_parse(const uint8_t *der, size_t len, pck_ext *x) {
    cursor c, all;
    cai_status st;
    memset(x, 0, sizeof(*x));
    cursor_init(&c, der, len);
    if (!der_get(&c, 0x30, &all))
        return bad("not a DER SEQUENCE");
    if (cursor_len(&c))
        return cai_fail(CAI_ERR_FORMAT, "PCK SGX extension: %zu trailing bytes", cursor_len(&c));
    unsigned seen = 0;
    while (cursor_len(&all)) {
        int a, b;
        cursor v;
        if (!sgx_item(&all, &a, &b, &v) || b != 0)
            return bad("malformed item");
        if (a >= 1 && a <= 4) {
            if (seen & (1u << a))
                return bad("duplicate item");
            seen |= 1u << a;
        }
        if (a == 1 && !der_octets(&v, x->ppid, 16))
            return bad("PPID is not a 16-byte OCTET STRING");
        if (a == 2 && (st = parse_tcb(&v, x)) != CAI_OK)
            return st;
        if (a == 3 && !der_octets(&v, x->pce_id, 2))
            return bad("PCE-ID is not a 2-byte OCTET STRING");
        if (a == 4 && !der_octets(&v, x->fmspc, 6))
            return bad("FMSPC is not a 6-byte OCTET STRING");
        /* others (.5 SGX type, .6 platform instance, .7 configuration): the
         * sgx_item TLV was well-formed; their contents are not needed. */
    }
    if (seen != 0x1Eu)
        return bad("missing PPID, TCB, PCE-ID or FMSPC");
    return CAI_OK;
}

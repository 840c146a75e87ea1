/* evidence.c - the RA-TLS evidence extension: CBOR envelope, runtime data,
 * TDX evidence JSON. */
#include "ratls/evidence.h"

#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "attest/evidence.h"
#include "attest/quote.h"
#include "common/codec.h"
#include "common/jcs.h"
#include "ratls/cbor.h"

#define PUBKEY_HASH_B64_LEN 48 /* base64 of CBOR [1, bstr(32)] (36 bytes) */

static int text_is(const cursor *c, const char *s) {
    size_t n = strlen(s);
    return cursor_len(c) == n && memcmp(cursor_data(c), s, n) == 0;
}

/* The CoCo evidence map. Each field at most once; all but the additional
 * evidence required. */
static cai_status parse_coco(cursor c, ratls_evidence *out) {
    enum { F_TEE = 1, F_EV = 2, F_ADD = 4, F_RD = 8, F_ALGO = 16 };
    uint64_t n, algo = 0;
    unsigned seen = 0;
    if (!cbor_get_map(&c, &n) || n > 5)
        return cai_fail(CAI_ERR_FORMAT, "RA-TLS evidence: the CoCo evidence is not a map of at most 5 fields");
    for (uint64_t i = 0; i < n; i++) {
        cursor key;
        unsigned f;
        int ok;
        if (!cbor_get_text(&c, &key))
            return cai_fail(CAI_ERR_FORMAT, "RA-TLS evidence: a CoCo evidence key is not text");
        if (text_is(&key, "tee_type")) {
            f = F_TEE;
            ok = cbor_get_text(&c, &out->tee_type);
        } else if (text_is(&key, "aa_evidence")) {
            f = F_EV;
            ok = cbor_get_bytes(&c, &out->aa_evidence);
        } else if (text_is(&key, "aa_additional_evidence")) {
            f = F_ADD;
            if (!cbor_get_null(&c))
                return cai_fail(CAI_ERR_UNSUPPORTED, "RA-TLS evidence: additional (device) evidence "
                                "is not verified by cai, so it is refused");
            ok = 1;
        } else if (text_is(&key, "aa_runtime_data")) {
            f = F_RD;
            ok = cbor_get_text(&c, &out->runtime_data);
        } else if (text_is(&key, "aa_runtime_data_hash_algo")) {
            f = F_ALGO;
            ok = cbor_get_uint(&c, &algo);
        } else {
            return cai_fail(CAI_ERR_FORMAT, "RA-TLS evidence: unknown CoCo evidence field '%.*s'",
                            (int)(cursor_len(&key) > 40 ? 40 : cursor_len(&key)),
                            (const char *)cursor_data(&key));
        }
        if (!ok)
            return cai_fail(CAI_ERR_FORMAT, "RA-TLS evidence: CoCo evidence field '%.*s' has the wrong type "
                            "or is truncated", (int)cursor_len(&key), (const char *)cursor_data(&key));
        if (seen & f)
            return cai_fail(CAI_ERR_FORMAT, "RA-TLS evidence: CoCo evidence field '%.*s' twice",
                            (int)cursor_len(&key), (const char *)cursor_data(&key));
        seen |= f;
    }
    if (cursor_len(&c) != 0)
        return cai_fail(CAI_ERR_TRAILING, "RA-TLS evidence: bytes after the CoCo evidence map");
    if ((seen | F_ADD) != (F_TEE | F_EV | F_ADD | F_RD | F_ALGO))
        return cai_fail(CAI_ERR_FORMAT, "RA-TLS evidence: the CoCo evidence lacks %s",
                        !(seen & F_TEE) ? "tee_type" : !(seen & F_EV) ? "aa_evidence"
                        : !(seen & F_RD) ? "aa_runtime_data" : "aa_runtime_data_hash_algo");
    if (algo != RATLS_HASH_SHA256 && algo != RATLS_HASH_SHA384 && algo != RATLS_HASH_SHA512)
        return cai_fail(CAI_ERR_UNSUPPORTED, "RA-TLS evidence: runtime data hash algorithm %llu "
                        "(known: 1 sha256, 7 sha384, 8 sha512)", (unsigned long long)algo);
    if (cursor_len(&out->aa_evidence) > RATLS_AA_EVIDENCE_MAX)
        return cai_fail(CAI_ERR_LIMIT, "RA-TLS evidence: aa_evidence is larger than %u bytes",
                        RATLS_AA_EVIDENCE_MAX);
    if (cursor_len(&out->runtime_data) > RATLS_RUNTIME_DATA_MAX)
        return cai_fail(CAI_ERR_LIMIT, "RA-TLS evidence: aa_runtime_data is larger than %u bytes",
                        RATLS_RUNTIME_DATA_MAX);
    out->hash_algo = (int)algo;
    return CAI_OK;
}

cai_status ratls_evidence_parse(const uint8_t *ext, size_t len, ratls_evidence *out) {
    memset(out, 0, sizeof(*out));
    if (len > RATLS_EXT_MAX)
        return cai_fail(CAI_ERR_LIMIT, "RA-TLS evidence: the extension is larger than %u bytes",
                        RATLS_EXT_MAX);
    cursor c, all, ev, claims;
    cursor_init(&c, ext, len);
    all = c;
    /* The whole item first: well-formed and nested within the limit. */
    if (!cbor_skip(&all, RATLS_CBOR_DEPTH_MAX))
        return cai_fail(CAI_ERR_FORMAT, "RA-TLS evidence: not well-formed definite-length CBOR "
                        "(or nested deeper than %d)", RATLS_CBOR_DEPTH_MAX);
    if (cursor_len(&all) != 0)
        return cai_fail(CAI_ERR_TRAILING, "RA-TLS evidence: bytes after the CBOR item");
    uint64_t tag, n;
    if (!cbor_get_tag(&c, &tag))
        return cai_fail(CAI_ERR_FORMAT, "RA-TLS evidence: not a tagged CBOR item");
    if (tag != RATLS_TAG_COCO_EVIDENCE)
        return cai_fail(CAI_ERR_UNSUPPORTED, "RA-TLS evidence: tag %#llx is not CoCo evidence "
                        "(0xc0c000)", (unsigned long long)tag);
    if (!cbor_get_array(&c, &n) || n != 2 || !cbor_get_bytes(&c, &ev) ||
        !cbor_get_bytes(&c, &claims))
        return cai_fail(CAI_ERR_FORMAT, "RA-TLS evidence: not [bstr evidence, bstr claims]");
    if (cursor_len(&claims) != 0)
        return cai_fail(CAI_ERR_UNSUPPORTED, "RA-TLS evidence: a claims buffer (deprecated, "
                        "unbound) is not accepted");
    return parse_coco(ev, out);
}

static cai_status put_key(buf *b, const char *k) { return cbor_put_text(b, k, strlen(k)); }

cai_status ratls_evidence_encode(const ratls_evidence *ev, buf *out) {
    buf m;
    buf_init(&m, RATLS_EXT_MAX);
    cai_status st;
    if ((st = cbor_put_head(&m, CBOR_MAP, 5)) != CAI_OK ||
        (st = put_key(&m, "tee_type")) != CAI_OK ||
        (st = cbor_put_text(&m, (const char *)cursor_data(&ev->tee_type), cursor_len(&ev->tee_type))) != CAI_OK ||
        (st = put_key(&m, "aa_evidence")) != CAI_OK ||
        (st = cbor_put_bytes(&m, cursor_data(&ev->aa_evidence), cursor_len(&ev->aa_evidence))) != CAI_OK ||
        (st = put_key(&m, "aa_additional_evidence")) != CAI_OK ||
        (st = cbor_put_null(&m)) != CAI_OK ||
        (st = put_key(&m, "aa_runtime_data")) != CAI_OK ||
        (st = cbor_put_text(&m, (const char *)cursor_data(&ev->runtime_data),
                            cursor_len(&ev->runtime_data))) != CAI_OK ||
        (st = put_key(&m, "aa_runtime_data_hash_algo")) != CAI_OK ||
        (st = cbor_put_head(&m, CBOR_UINT, (uint64_t)ev->hash_algo)) != CAI_OK)
        goto out;
    if ((st = cbor_put_head(out, CBOR_TAG, RATLS_TAG_COCO_EVIDENCE)) != CAI_OK ||
        (st = cbor_put_head(out, CBOR_ARRAY, 2)) != CAI_OK ||
        (st = cbor_put_bytes(out, m.data, m.len)) != CAI_OK ||
        (st = cbor_put_bytes(out, "", 0)) != CAI_OK)
        goto out;
out:
    buf_free(&m);
    return st;
}

cai_status ratls_report_data(const ratls_evidence *ev, uint8_t out[ATTEST_REPORT_DATA_LEN]) {
    const EVP_MD *md = ev->hash_algo == RATLS_HASH_SHA256   ? EVP_sha256()
                       : ev->hash_algo == RATLS_HASH_SHA384 ? EVP_sha384()
                       : ev->hash_algo == RATLS_HASH_SHA512 ? EVP_sha512()
                                                            : NULL;
    unsigned n = 0;
    memset(out, 0, ATTEST_REPORT_DATA_LEN);
    if (md == NULL)
        return cai_fail(CAI_ERR_UNSUPPORTED, "RA-TLS: unknown runtime data hash algorithm");
    if (!EVP_Digest(cursor_data(&ev->runtime_data), cursor_len(&ev->runtime_data), out, &n, md, NULL))
        return cai_fail(CAI_ERR_CRYPTO, "RA-TLS: runtime data digest failed");
    return CAI_OK;
}

/* pubkey-hash: base64(CBOR [1, bstr(SHA-256)]) as rats-cert writes it. */
static void pubkey_hash_b64(const uint8_t h[32], char out[PUBKEY_HASH_B64_LEN + 1]) {
    uint8_t v[36] = {0x82, 0x01, 0x58, 0x20};
    memcpy(v + 4, h, 32);
    b64_encode(out, v, sizeof(v), B64_STD);
}

cai_status ratls_runtime_data_make(const ratls_binding *b, buf *out) {
    char ph[PUBKEY_HASH_B64_LEN + 1], md[2 * ATTEST_DIGEST_LEN + 1];
    pubkey_hash_b64(b->pubkey_hash, ph);
    hex_encode(md, b->model_digest, ATTEST_DIGEST_LEN);
    json_t *j = json_pack("{s:s, s:s}", "pubkey-hash", ph, "model-digest", md);
    if (j == NULL)
        return CAI_ERR_NOMEM;
    cai_status st = jcs_serialize(j, out);
    json_decref(j);
    return st;
}

cai_status ratls_runtime_data_parse(const cursor *rd, ratls_binding *out) {
    json_error_t je;
    json_t *j = json_loadb((const char *)cursor_data(rd), cursor_len(rd),
                           JSON_REJECT_DUPLICATES, &je);
    cai_status st = CAI_OK;
    const char *ph = json_string_value(json_object_get(j, "pubkey-hash"));
    const char *md = json_string_value(json_object_get(j, "model-digest"));
    cursor c, h;
    uint8_t raw[64];
    size_t n = 0;
    uint64_t algo, items;
    if (!json_is_object(j)) {
        st = cai_fail(CAI_ERR_FORMAT, "RA-TLS runtime data is not a JSON object");
        goto out;
    }
    if (json_object_size(j) != 2 || ph == NULL || md == NULL) {
        st = cai_fail(CAI_ERR_FORMAT, "RA-TLS runtime data must hold exactly the strings "
                      "\"pubkey-hash\" and \"model-digest\"");
        goto out;
    }
    if (b64_decode(ph, strlen(ph), raw, sizeof(raw), &n, B64_STD) != CAI_OK) {
        st = cai_fail(CAI_ERR_FORMAT, "RA-TLS runtime data: pubkey-hash is not base64");
        goto out;
    }
    cursor_init(&c, raw, n);
    if (!cbor_get_array(&c, &items) || items != 2 || !cbor_get_uint(&c, &algo) ||
        !cbor_get_bytes(&c, &h) || cursor_len(&c) != 0) {
        st = cai_fail(CAI_ERR_FORMAT, "RA-TLS runtime data: pubkey-hash is not CBOR [algorithm, hash]");
        goto out;
    }
    if (algo != RATLS_HASH_SHA256 || cursor_len(&h) != 32) {
        st = cai_fail(CAI_ERR_UNSUPPORTED, "RA-TLS runtime data: pubkey-hash must be SHA-256 (1)");
        goto out;
    }
    memcpy(out->pubkey_hash, cursor_data(&h), 32);
    if (strlen(md) != 2 * ATTEST_DIGEST_LEN ||
        hex_decode(md, strlen(md), out->model_digest, ATTEST_DIGEST_LEN, &n) != CAI_OK ||
        n != ATTEST_DIGEST_LEN) {
        st = cai_fail(CAI_ERR_FORMAT, "RA-TLS runtime data: model-digest is not 64 hex digits");
        goto out;
    }
out:
    json_decref(j);
    return st;
}

cai_status ratls_tdx_evidence_make(const uint8_t *quote, size_t len, buf *out) {
    json_t *j = attest_tdx_evidence_json(quote, len);
    if (j == NULL)
        return CAI_ERR_NOMEM;
    cai_status st = jcs_serialize(j, out);
    json_decref(j);
    return st;
}

cai_status ratls_tdx_evidence_quote(const cursor *ev, buf *out) {
    json_error_t je;
    json_t *j = json_loadb((const char *)cursor_data(ev), cursor_len(ev), JSON_REJECT_DUPLICATES, &je);
    cai_status st = attest_tdx_evidence_quote(j, out, NULL);
    json_decref(j);
    return st == CAI_OK ? st : cai_fail(st, "RA-TLS: aa_evidence: %s", cai_errmsg(st));
}

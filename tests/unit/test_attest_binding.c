/* The attestation binding of cai serve: the known-answer vectors in
 * tests/vectors/attest-binding-v1.txt (made with Python's hashlib), and the
 * nonce rules (16..64 bytes of hex). */
#include <stdint.h>

#include "attest/binding.h"
#include "common/buf.h"
#include "common/codec.h"
#include "common/file.h"
#include "test.h"

#define VECTORS "tests/vectors/attest-binding-v1.txt"

/* Finds "key = HEX" after |*pos|, decodes it and moves |*pos| past it;
 * 0 when absent or not hex. */
static int next_field(const char **pos, const char *key, uint8_t *out, size_t cap,
                      size_t *n) {
    char pat[64];
    snprintf(pat, sizeof(pat), "\n%s = ", key);
    const char *p = strstr(*pos, pat);
    if (p == NULL)
        return 0;
    p += strlen(pat);
    size_t len = strcspn(p, "\n");
    *pos = p + len;
    return hex_decode(p, len, out, cap, n) == CAI_OK;
}

static void test_known_answers(void) {
    buf b;
    buf_init(&b, 1 << 20);
    CHECK_OK(file_read_all(VECTORS, 1 << 20, &b));
    CHECK_OK(buf_terminate(&b));
    const char *pos = (const char *)b.data;
    int n_vectors = 0;
    uint8_t nonce[ATTEST_NONCE_MAX], digest[ATTEST_DIGEST_LEN], want[64], got[64];
    size_t nn, nd, nw;
    while (next_field(&pos, "nonce", nonce, sizeof(nonce), &nn)) {
        CHECK(next_field(&pos, "model_digest", digest, sizeof(digest), &nd) && nd == 32);
        CHECK(next_field(&pos, "report_data", want, sizeof(want), &nw) && nw == 64);
        CHECK_OK(attest_binding_report_data(nonce, nn, digest, got));
        CHECK(memcmp(got, want, 64) == 0);
        /* Any change of the nonce or the digest changes the binding. */
        nonce[0] ^= 1;
        CHECK_OK(attest_binding_report_data(nonce, nn, digest, got));
        CHECK(memcmp(got, want, 64) != 0);
        nonce[0] ^= 1;
        digest[31] ^= 0x80;
        CHECK_OK(attest_binding_report_data(nonce, nn, digest, got));
        CHECK(memcmp(got, want, 64) != 0);
        n_vectors++;
    }
    CHECK(n_vectors == 4);
    buf_free(&b);
}

static void test_nonce_lengths(void) {
    uint8_t out[ATTEST_NONCE_MAX], d[32] = {0}, rd[64];
    size_t n;
    char hex[2 * ATTEST_NONCE_MAX + 3];
    memset(hex, 'a', sizeof(hex) - 1);
    hex[32] = '\0'; /* 16 bytes: the minimum */
    CHECK_OK(attest_nonce_parse(hex, out, &n));
    CHECK(n == 16 && out[0] == 0xaa);
    hex[30] = '\0'; /* 15 bytes */
    CHECK_ST(attest_nonce_parse(hex, out, &n), CAI_ERR_LIMIT);
    memset(hex, 'B', sizeof(hex) - 1);
    hex[128] = '\0'; /* 64 bytes: the maximum, upper case accepted */
    CHECK_OK(attest_nonce_parse(hex, out, &n));
    CHECK(n == 64 && out[63] == 0xbb);
    hex[128] = 'b', hex[130] = '\0'; /* 65 bytes */
    CHECK_ST(attest_nonce_parse(hex, out, &n), CAI_ERR_LIMIT);
    CHECK_ST(attest_nonce_parse("", out, &n), CAI_ERR_LIMIT);
    /* The binding itself refuses lengths outside the limits. */
    CHECK_ST(attest_binding_report_data(out, 15, d, rd), CAI_ERR_INVALID_ARG);
    CHECK_ST(attest_binding_report_data(out, 65, d, rd), CAI_ERR_INVALID_ARG);
}

static void test_nonce_not_hex(void) {
    uint8_t out[ATTEST_NONCE_MAX];
    size_t n;
    CHECK_ST(attest_nonce_parse("000102030405060708090a0b0c0d0e0g", out, &n), CAI_ERR_FORMAT);
    CHECK_ST(attest_nonce_parse("000102030405060708090a0b0c0d0e0f1", out, &n), CAI_ERR_FORMAT); /* odd */
    CHECK_ST(attest_nonce_parse("00010203040506070809 a0b0c0d0e0f", out, &n), CAI_ERR_FORMAT);
    CHECK_ST(attest_nonce_parse("0x0102030405060708090a0b0c0d0e0f", out, &n), CAI_ERR_FORMAT);
}

int main(void) {
    RUN(test_known_answers);
    RUN(test_nonce_lengths);
    RUN(test_nonce_not_hex);
    return test_summary();
}

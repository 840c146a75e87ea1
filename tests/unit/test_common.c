/* Tests of src/common: cursor, buf, codec, pool, file helpers, resource
 * paths, status. */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/codec.h"
#include "common/cursor.h"
#include "common/file.h"
#include "common/pool.h"
#include "common/respath.h"
#include "common/secure.h"
#include "test.h"

static void test_cursor_getters(void) {
    const uint8_t b[] = {1, 2, 0, 3, 0, 0, 0, 0x12, 0x34, 9, 9};
    cursor c, sub;
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    cursor_init(&c, b, sizeof(b));
    CHECK(cursor_get_u8(&c, &u8) && u8 == 1);
    CHECK(cursor_get_u16le(&c, &u16) && u16 == 2);
    CHECK(cursor_get_u32le(&c, &u32) && u32 == 3);
    CHECK(cursor_get_u16be(&c, &u16) && u16 == 0x1234);
    CHECK(cursor_len(&c) == 2);
    CHECK(!cursor_get_u32le(&c, &u32));
    CHECK(cursor_len(&c) == 2); /* failure does not advance */
    CHECK(cursor_get_span(&c, &sub, 2) && cursor_len(&sub) == 2 && cursor_len(&c) == 0);
    CHECK(!cursor_get_u8(&c, &u8));
}

static void test_cursor_prefixed(void) {
    const uint8_t ok[] = {3, 0, 'a', 'b', 'c', 0xff};
    const uint8_t overrun[] = {4, 0, 'a', 'b', 'c'};
    cursor c, s;
    cursor_init(&c, ok, sizeof(ok));
    CHECK(cursor_get_u16le_prefixed(&c, &s) && cursor_len(&s) == 3 && cursor_len(&c) == 1);
    cursor_init(&c, overrun, sizeof(overrun));
    CHECK(!cursor_get_u16le_prefixed(&c, &s));
    CHECK(cursor_len(&c) == sizeof(overrun)); /* untouched on failure */
    const uint8_t huge[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1};
    cursor_init(&c, huge, sizeof(huge));
    CHECK(!cursor_get_u64le_prefixed(&c, &s));
}

static void test_buf_limit(void) {
    buf b;
    buf_init(&b, 8);
    CHECK_OK(buf_append(&b, "12345678", 8));
    CHECK_ST(buf_append_u8(&b, 1), CAI_ERR_LIMIT);
    CHECK(b.len == 8 && memcmp(b.data, "12345678", 8) == 0);
    buf_free(&b);
    CHECK(b.len == 0 && b.data == NULL);
    buf_init(&b, 0);
    CHECK_OK(buf_printf(&b, "%s-%d", "x", 42));
    CHECK_OK(buf_append_u32le(&b, 0x01020304));
    CHECK(b.len == 8 && memcmp(b.data, "x-42\x04\x03\x02\x01", 8) == 0);
    buf_free(&b);
    buf_free(NULL);
}

static void test_hex(void) {
    uint8_t out[4];
    size_t n;
    char s[9];
    CHECK_OK(hex_decode("00fFa5", 6, out, sizeof(out), &n));
    CHECK(n == 3 && out[0] == 0 && out[1] == 0xff && out[2] == 0xa5);
    hex_encode(s, out, 3);
    CHECK(strcmp(s, "00ffa5") == 0);
    CHECK_ST(hex_decode("abc", 3, out, sizeof(out), &n), CAI_ERR_FORMAT);
    CHECK_ST(hex_decode("zz", 2, out, sizeof(out), &n), CAI_ERR_FORMAT);
    CHECK_ST(hex_decode("0011223344", 10, out, sizeof(out), &n), CAI_ERR_LIMIT);
}

static void test_base64_vectors(void) {
    /* RFC 4648 section 10. */
    static const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *std[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    static const char *url[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        char enc[16];
        uint8_t dec[16];
        size_t n;
        b64_encode(enc, in[i], strlen(in[i]), B64_STD);
        CHECK(strcmp(enc, std[i]) == 0 && strlen(enc) == b64_encoded_len(strlen(in[i]), B64_STD));
        b64_encode(enc, in[i], strlen(in[i]), B64_URL);
        CHECK(strcmp(enc, url[i]) == 0 && strlen(enc) == b64_encoded_len(strlen(in[i]), B64_URL));
        CHECK_OK(b64_decode(std[i], strlen(std[i]), dec, sizeof(dec), &n, B64_STD));
        CHECK(n == strlen(in[i]) && memcmp(dec, in[i], n) == 0);
        CHECK_OK(b64_decode(url[i], strlen(url[i]), dec, sizeof(dec), &n, B64_URL));
        CHECK(n == strlen(in[i]) && memcmp(dec, in[i], n) == 0);
    }
}

static void test_base64_rejects(void) {
    uint8_t d[16];
    size_t n;
    CHECK_ST(b64_decode("Zg=", 3, d, sizeof(d), &n, B64_STD), CAI_ERR_FORMAT);  /* length */
    CHECK_ST(b64_decode("Zh==", 4, d, sizeof(d), &n, B64_STD), CAI_ERR_FORMAT); /* trailing bits */
    CHECK_ST(b64_decode("Z-==", 4, d, sizeof(d), &n, B64_STD), CAI_ERR_FORMAT); /* alphabet */
    CHECK_ST(b64_decode("Zg==", 4, d, sizeof(d), &n, B64_URL), CAI_ERR_FORMAT); /* padding */
    CHECK_ST(b64_decode("Z", 1, d, sizeof(d), &n, B64_URL), CAI_ERR_FORMAT);
    CHECK_ST(b64_decode("Zm9vYmFy", 8, d, 5, &n, B64_STD), CAI_ERR_LIMIT);
}

typedef struct {
    atomic_int calls;
    atomic_long sum;
} pool_ctx;

static void pool_fn_sum(void *ctx, int ith, int nth) {
    pool_ctx *c = ctx;
    atomic_fetch_add(&c->calls, 1);
    long s = 0;
    for (int i = ith; i < 1000; i += nth)
        s += i;
    atomic_fetch_add(&c->sum, s);
}

static void test_pool_partition(void) {
    for (int n = 1; n <= 4; n++) {
        pool *p;
        CHECK_OK(pool_new(n, &p));
        for (int round = 0; round < 50; round++) {
            pool_ctx c = {0};
            pool_run(p, pool_fn_sum, &c);
            CHECK(atomic_load(&c.calls) == n && atomic_load(&c.sum) == 999 * 1000 / 2);
        }
        pool_free(p);
    }
    pool_free(NULL);
}

static void test_file_atomic(void) {
    char dir[] = "/tmp/cai-test-XXXXXX", path[256];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/out", dir);
    file_atomic fa;
    CHECK_OK(file_atomic_open(&fa, path, 0600));
    CHECK_OK(file_write_full(fa.fd, "abc", 3));
    CHECK(access(path, F_OK) != 0); /* not visible before commit */
    file_atomic_abort(&fa);
    CHECK(access(path, F_OK) != 0);
    CHECK_OK(file_atomic_open(&fa, path, 0600));
    CHECK_OK(file_write_full(fa.fd, "abc", 3));
    CHECK_OK(file_atomic_commit(&fa));
    buf b;
    CHECK_OK(file_read_all(path, 3, &b));
    CHECK(b.len == 3 && memcmp(b.data, "abc", 3) == 0);
    buf_free(&b);
    CHECK_ST(file_read_all(path, 2, &b), CAI_ERR_LIMIT);
    struct stat sb;
    CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
    CHECK_ST(file_write_new(path, "x", 1, 0600), CAI_ERR_EXISTS);
    /* commit_new: never over an existing file, nor through a symlink. */
    CHECK_OK(file_atomic_open(&fa, path, 0600));
    CHECK_OK(file_write_full(fa.fd, "new", 3));
    CHECK_ST(file_atomic_commit_new(&fa), CAI_ERR_EXISTS);
    CHECK(fa.fd == -1);
    CHECK_OK(file_read_all(path, 3, &b));
    CHECK(b.len == 3 && memcmp(b.data, "abc", 3) == 0);
    buf_free(&b);
    char link[300], fresh[300];
    snprintf(link, sizeof(link), "%s/link", dir);
    snprintf(fresh, sizeof(fresh), "%s/fresh", dir);
    CHECK(symlink("fresh", link) == 0); /* dangling: commit_new must not create "fresh" */
    CHECK_OK(file_atomic_open(&fa, link, 0600));
    CHECK_OK(file_write_full(fa.fd, "new", 3));
    CHECK_ST(file_atomic_commit_new(&fa), CAI_ERR_EXISTS);
    CHECK(access(fresh, F_OK) != 0);
    CHECK_OK(file_atomic_open(&fa, fresh, 0600));
    CHECK_OK(file_write_full(fa.fd, "new", 3));
    CHECK_OK(file_atomic_commit_new(&fa));
    CHECK_OK(file_read_all(fresh, 3, &b));
    CHECK(b.len == 3 && memcmp(b.data, "new", 3) == 0);
    buf_free(&b);
    /* commit replaces the link itself, never its target. */
    CHECK_OK(file_atomic_open(&fa, link, 0600));
    CHECK_OK(file_write_full(fa.fd, "xy", 2));
    CHECK_OK(file_atomic_commit(&fa));
    CHECK(lstat(link, &sb) == 0 && S_ISREG(sb.st_mode));
    CHECK_OK(file_read_all(fresh, 3, &b));
    CHECK(b.len == 3 && memcmp(b.data, "new", 3) == 0);
    buf_free(&b);
    CHECK(unlink(link) == 0 && unlink(fresh) == 0);
    /* The directory holds exactly the one file: no temporaries left. */
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "test $(ls -A %s | wc -l) -eq 1", dir);
    CHECK(system(cmd) == 0);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

/* secure_map: zeroed, writable, on a 2 MiB boundary, for any size (0 too),
 * and gone after secure_unmap. */
static void test_secure_map(void) {
    static const size_t sizes[] = {0, 1, 4096, (2u << 20) - 1, 2u << 20, (2u << 20) + 1, 5u << 20};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint8_t *p = NULL;
        CHECK_OK(secure_map(sizes[i], (void **)&p));
        CHECK(p != NULL && ((uintptr_t)p & ((2u << 20) - 1)) == 0);
        if (p == NULL)
            continue;
        size_t nonzero = 0;
        for (size_t k = 0; k < sizes[i]; k++)
            nonzero += p[k] != 0;
        CHECK(nonzero == 0);
        if (sizes[i])
            p[0] = p[sizes[i] - 1] = 1;
        char perms[8], flags[256]; /* writable, and left out of core dumps */
        test_mapping(p, perms, flags, sizeof(flags));
        CHECK(!sizes[i] || (strncmp(perms, "rw-", 3) == 0 && strstr(flags, " dd") != NULL));
        secure_unmap(p, sizes[i]);
        unsigned char v;
        CHECK(mincore(p, 1, &v) != 0 && errno == ENOMEM); /* unmapped */
    }
    secure_unmap(NULL, 1);
    void *q = (void *)1;
    CHECK_ST(secure_map(SIZE_MAX, &q), CAI_ERR_NOMEM);
    CHECK(q == NULL);
}

static void test_secure(void) {
    uint8_t a[32], b[32];
    CHECK_OK(secure_random(a, sizeof(a)));
    memcpy(b, a, sizeof(a));
    CHECK(secure_memeq(a, b, sizeof(a)));
    b[31] ^= 1;
    CHECK(!secure_memeq(a, b, sizeof(a)));
    secure_wipe(a, sizeof(a));
    for (size_t i = 0; i < sizeof(a); i++)
        CHECK(a[i] == 0);
}

/* The one resource path rule (common/respath.h): Trustee's ResourceDesc
 * regex (its own test cases among these) and cai's 255-byte limit. */
static void test_respath(void) {
    static const struct {
        const char *path;
        int ok;
    } cases[] = {
        {"cai/qwen/key", 1},
        {"a/b/c", 1},
        {"default/key/model-1.0_x", 1},
        {"default/model-key/qwen2.5_7b", 1},
        {"123--_default/1Abff-_/___-afds44BC", 1},
        {"1.ok/2ok./3...", 1}, /* dots inside and at the end are fine */
        {"-/_/-", 1},
        {"", 0},
        {"a", 0},
        {"a/b", 0},
        {"a/b/c/d", 0},
        {"a//c", 0},
        {"a/b//c", 0},
        {"/a/b/c", 0},
        {"a/b/c/", 0},
        {"/1/2", 0},
        {"..", 0},
        {".", 0},
        {"../b/c", 0},
        {"a/../c", 0},
        {"a/b/..", 0},
        {"a/./c", 0},
        {"a/b/.", 0},
        {".1.ok/2ok./3...", 0}, /* a leading dot: Trustee refuses it */
        {"1.ok/.2ok./3...", 0},
        {"1.ok/2ok./.3...", 0},
        {"a/b/.hidden", 0},
        {"a/b/c d", 0},
        {"a/b/c\n", 0},
        {"a/b/c\\d", 0},
        {"a/b/c?x", 0},
        {"a/b/c%2f", 0},
        {"a/b/c*", 0},
        {"a/b/\xc3\xa7", 0},         /* non-ASCII: UTF-8 c-cedilla */
        {"a/b/\xff", 0},
        {"a/b\0/c", 0},               /* read up to the NUL: "a/b" */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (respath_valid(cases[i].path) != cases[i].ok) {
            printf("  respath_valid(\"%s\") != %d\n", cases[i].path, cases[i].ok);
            CHECK(0);
        }
    /* the limit: 255 bytes in all, not one more */
    char p[RESPATH_MAX + 2];
    memset(p, 'a', sizeof(p));
    p[126] = '/';
    p[253] = '/';
    p[RESPATH_MAX] = '\0';
    CHECK(strlen(p) == 255 && respath_valid(p));
    p[RESPATH_MAX] = 'a';
    p[RESPATH_MAX + 1] = '\0';
    CHECK(strlen(p) == 256 && !respath_valid(p));
    /* a 300-byte tag */
    char q[310];
    memcpy(q, "a/b/", 4);
    memset(q + 4, 't', 300);
    q[304] = '\0';
    CHECK(!respath_valid(q));
}

static void test_status_messages(void) {
    CHECK(strcmp(cai_errmsg(CAI_ERR_IO), cai_strerror(CAI_ERR_IO)) == 0 ||
          cai_errmsg(CAI_ERR_IO) != NULL);
    cai_status st = cai_fail(CAI_ERR_FORMAT, "bad thing %d", 7);
    CHECK(st == CAI_ERR_FORMAT);
    CHECK(strcmp(cai_errmsg(CAI_ERR_FORMAT), "bad thing 7") == 0);
    /* A detail recorded for another status is not shown for this one. */
    CHECK(strcmp(cai_errmsg(CAI_ERR_AUTH), cai_strerror(CAI_ERR_AUTH)) == 0);
}

/* A detail that wraps the previous one (`cai_fail(st, "token: %s",
 * cai_errmsg(st))`, as kbs/token.c does) reads its own buffer while writing
 * it: the result must be the prefix followed by the old detail, intact. */
static void test_status_wraps_own_detail(void) {
    cai_fail(CAI_ERR_AUTH, "the token expired");
    cai_status st = cai_fail(CAI_ERR_AUTH, "token: %s", cai_errmsg(CAI_ERR_AUTH));
    CHECK(st == CAI_ERR_AUTH);
    CHECK(strcmp(cai_errmsg(CAI_ERR_AUTH), "token: the token expired") == 0);
    /* Twice over, and with the old detail in the middle of the new one. */
    cai_fail(CAI_ERR_AUTH, "[%s] (%s)", cai_errmsg(CAI_ERR_AUTH), cai_errmsg(CAI_ERR_AUTH));
    CHECK(strcmp(cai_errmsg(CAI_ERR_AUTH),
                 "[token: the token expired] (token: the token expired)") == 0);
    /* A detail that fills the buffer, wrapped: truncated, never garbled. */
    char big[600];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    cai_fail(CAI_ERR_FORMAT, "%s", big);
    cai_fail(CAI_ERR_FORMAT, "p: %s", cai_errmsg(CAI_ERR_FORMAT));
    const char *m = cai_errmsg(CAI_ERR_FORMAT);
    CHECK(strncmp(m, "p: xxx", 6) == 0 && strlen(m) == 511 && strspn(m + 3, "x") == 508);
    /* cai_errmsg_set with this thread's own detail keeps it. */
    cai_fail(CAI_ERR_IO, "disk full");
    cai_errmsg_set(CAI_ERR_IO, cai_errmsg(CAI_ERR_IO));
    CHECK(strcmp(cai_errmsg(CAI_ERR_IO), "disk full") == 0);
}

int main(void) {
    RUN(test_cursor_getters);
    RUN(test_cursor_prefixed);
    RUN(test_buf_limit);
    RUN(test_hex);
    RUN(test_base64_vectors);
    RUN(test_base64_rejects);
    RUN(test_pool_partition);
    RUN(test_file_atomic);
    RUN(test_secure_map);
    RUN(test_secure);
    RUN(test_respath);
    RUN(test_status_messages);
    RUN(test_status_wraps_own_detail);
    return test_summary();
}

/* The plaintext digest of seal_unseal_mem, computed while the chunks are
 * decrypted on several threads: it must equal a one-shot SHA-256 of the
 * plaintext for every chunk count and thread count, and a sealed file whose
 * (authenticated) header names another digest must be refused, with nothing
 * returned and no descriptor left open; a tampered chunk among many stops
 * every thread (some waiting their turn) with the chunk named. */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/file.h"
#include "common/secure.h"
#include "crypto/aead.h"
#include "crypto/kdf.h"
#include "seal/seal.h"
#include "seal_forge.h"
#include "test.h"

#define CHUNK_LOG2 16
#define C ((size_t)1 << CHUNK_LOG2)

static char tmpdir[] = "/tmp/cai-seal-digest-XXXXXX";
static const uint8_t key[32] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 11, 12, 13, 14, 15, 16,
                                17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
static const int thread_counts[] = {1, 2, 3, 8};
/* empty (one empty chunk), one byte, one chunk short, one full chunk, one
 * over, and many chunks ending in a partial one; 1 MiB chunks too, which
 * the unsealer writes and hashes in several slices */
static const struct {
    size_t n;
    unsigned chunk_log2;
} sizes[] = {{0, CHUNK_LOG2},          {1, CHUNK_LOG2},           {C - 1, CHUNK_LOG2},
             {C, CHUNK_LOG2},          {C + 1, CHUNK_LOG2},       {5 * C + 777, CHUNK_LOG2},
             {37 * C + 12345, CHUNK_LOG2}, {(1u << 20) - 1, 20}, {3 * (1u << 20) + 4321, 20}};

static void path_of(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/%s", tmpdir, name);
}

static uint8_t *pattern(size_t n) {
    uint8_t *p = malloc(n ? n : 1);
    CAI_ASSERT(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)((i * 131 + (i >> 16) * 7 + 3) % 253);
    return p;
}

static int open_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (d == NULL)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}


/* Unseals |path| on |threads| threads; on success checks the memory holds
 * |plain| (|n| bytes), and returns the digest in |out_digest|. */
static cai_status unseal_check(const char *path, int threads, unsigned flags,
                               const uint8_t *plain, size_t n, uint8_t out_digest[32]) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    CAI_ASSERT(fd >= 0);
    uint8_t *mem = (uint8_t *)"x";
    uint64_t size = 12345;
    cai_status st = seal_unseal_mem(fd, key, threads, flags, &mem, &size, out_digest);
    close(fd);
    if (st != CAI_OK) {
        CHECK(mem == NULL && size == 0);
        return st;
    }
    CHECK(size == n);
    CHECK(size != n || n == 0 || memcmp(mem, plain, n) == 0);
    secure_unmap(mem, (size_t)size);
    return st;
}

static void seal_size(size_t n, unsigned chunk_log2, const char *in, const char *sealed,
                      uint8_t **out_plain, uint8_t want[32]) {
    uint8_t *plain = pattern(n);
    int fd = open(in, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CAI_ASSERT(fd >= 0);
    if (n)
        CHECK_OK(file_write_full(fd, plain, n));
    close(fd);
    seal_params p = {.key_id = "kbs:///cai/test/digest", .chunk_log2 = chunk_log2,
                     .n_threads = 2, .replace = 1};
    uint8_t sealed_digest[32];
    CHECK_OK(seal_path(in, sealed, key, &p, sealed_digest));
    CHECK_OK(kdf_sha256(n ? plain : (const uint8_t *)"", n, want)); /* one shot */
    CHECK(memcmp(sealed_digest, want, 32) == 0);
    *out_plain = plain;
}

static void test_digest_equals_one_shot(void) {
    char in[256], sealed[256];
    path_of(in, sizeof(in), "plain");
    path_of(sealed, sizeof(sealed), "plain.sealed");
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        uint8_t *plain, want[32];
        seal_size(sizes[s].n, sizes[s].chunk_log2, in, sealed, &plain, want);
        for (size_t t = 0; t < sizeof(thread_counts) / sizeof(thread_counts[0]); t++) {
            uint8_t got[32] = {0};
            for (unsigned drop = 0; drop < 2; drop++) {
                cai_status st = unseal_check(sealed, thread_counts[t], SEAL_VERIFY_DIGEST |
                                             (drop ? SEAL_DROP_CACHE : 0), plain, sizes[s].n, got);
                CHECK_OK(st);
                CHECK(memcmp(got, want, 32) == 0);
                if (st != CAI_OK || memcmp(got, want, 32) != 0)
                    printf("  size %zu, %d threads, drop %u\n", sizes[s].n, thread_counts[t], drop);
            }
        }
        free(plain);
    }
}

static void test_header_digest_mismatch_refused(void) {
    char in[256], sealed[256], forged[256];
    path_of(in, sizeof(in), "plain");
    path_of(sealed, sizeof(sealed), "plain.sealed");
    path_of(forged, sizeof(forged), "forged.sealed");
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        uint8_t *plain, want[32];
        seal_size(sizes[s].n, sizes[s].chunk_log2, in, sealed, &plain, want);
        for (int flip = 0; flip < 32; flip += 31) { /* the first and the last byte */
            uint8_t other[32];
            memcpy(other, want, 32);
            other[flip] ^= 0x80;
            forge_digest(sealed, forged, key, other);
            for (size_t t = 0; t < sizeof(thread_counts) / sizeof(thread_counts[0]); t++) {
                int fds = open_fds();
                uint8_t got[32];
                cai_status st = unseal_check(forged, thread_counts[t], SEAL_VERIFY_DIGEST,
                                             plain, sizes[s].n, got);
                CHECK_ST(st, CAI_ERR_AUTH);
                CHECK(strstr(cai_errmsg(st), "plaintext digest does not match the sealed "
                                             "header") != NULL);
                CHECK(open_fds() == fds);
                if (st != CAI_ERR_AUTH)
                    printf("  size %zu, %d threads, byte %d\n", sizes[s].n, thread_counts[t],
                           flip);
            }
        }
        /* The forgery is otherwise valid: without the digest check it opens,
         * and reports the header's (authenticated) digest. */
        uint8_t got[32];
        CHECK_OK(unseal_check(forged, 2, 0, plain, sizes[s].n, got));
        CHECK(memcmp(got, want, 32) != 0);
        free(plain);
    }
}

/* One chunk of 37 tampered with: refused, naming it, on every thread count
 * with and without the drop (workers then wait their turn behind it). */
static void test_tampered_chunk_stops_all(void) {
    char in[256], sealed[256];
    path_of(in, sizeof(in), "plain");
    path_of(sealed, sizeof(sealed), "plain.sealed");
    uint8_t *plain, want[32];
    seal_size(37 * C + 12345, CHUNK_LOG2, in, sealed, &plain, want);
    int fd = open(sealed, O_RDWR);
    seal_header *h = NULL;
    CHECK_OK(seal_header_read(fd, &h));
    uint8_t b;
    const off_t at = (off_t)(h->header_len + 20 * (C + SEAL_TAG_LEN) + 100); /* chunk 20 */
    CHECK(pread(fd, &b, 1, at) == 1);
    b ^= 1;
    CHECK(pwrite(fd, &b, 1, at) == 1);
    close(fd);
    seal_header_free(h);
    for (size_t t = 0; t < sizeof(thread_counts) / sizeof(thread_counts[0]); t++)
        for (unsigned drop = 0; drop < 2; drop++) {
            uint8_t got[32];
            cai_status st = unseal_check(sealed, thread_counts[t], SEAL_VERIFY_DIGEST |
                                         (drop ? SEAL_DROP_CACHE : 0), plain, 0, got);
            CHECK_ST(st, CAI_ERR_AUTH);
            CHECK(strstr(cai_errmsg(st), "chunk 20 of 38 failed authentication") != NULL);
        }
    free(plain);
}

int main(void) {
    if (mkdtemp(tmpdir) == NULL)
        return 1;
    RUN(test_digest_equals_one_shot);
    RUN(test_header_digest_mismatch_refused);
    RUN(test_tampered_chunk_stops_all);
    int rc = test_summary();
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        return 1;
    return rc;
}

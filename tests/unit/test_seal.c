/* Tests of the sealed format: round trips, and every tamper case refused. */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/file.h"
#include "common/secure.h"
#include "crypto/kdf.h"
#include "seal/keyfile.h"
#include "seal/seal.h"
#include "test.h"

#define CHUNK_LOG2 16
#define C (1u << CHUNK_LOG2)

static char tmpdir[] = "/tmp/cai-seal-test-XXXXXX";
static const uint8_t key[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

static void path_of(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/%s", tmpdir, name);
}

static uint8_t *pattern(size_t n, unsigned seed) {
    uint8_t *p = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)((i * 31 + seed * 7 + (i >> 12)) % 251);
    return p;
}

static void write_file(const char *path, const void *data, size_t n) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    if (n)
        CHECK_OK(file_write_full(fd, data, n));
    close(fd);
}

static cai_status seal_file(const char *in, const char *out, unsigned chunk_log2) {
    seal_params p = {.key_id = "kbs:///cai/test/key", .chunk_log2 = chunk_log2, .n_threads = 2,
                     .replace = 1}; /* the cases share scratch paths */
    return seal_path(in, out, key, &p, NULL);
}

/* Unseals |path| into memory with |k|; the plaintext in |out| on success. */
static cai_status unseal(const char *path, const uint8_t *k, buf *out) {
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return CAI_ERR_IO;
    uint8_t digest[32], *mem = NULL;
    uint64_t size = 0;
    cai_status st = seal_unseal_mem(fd, k, 2, SEAL_VERIFY_DIGEST | SEAL_DROP_CACHE, &mem, &size, digest);
    close(fd);
    buf_init(out, 0);
    if (st != CAI_OK) {
        CHECK(mem == NULL && size == 0);
        return st;
    }
    CHECK_OK(buf_append(out, mem, (size_t)size));
    secure_unmap(mem, (size_t)size);
    return CAI_OK;
}

static void round_trip(size_t n) {
    char in[256], out[256];
    path_of(in, sizeof(in), "rt.bin");
    path_of(out, sizeof(out), "rt.sealed");
    uint8_t *p = pattern(n, (unsigned)n);
    write_file(in, p, n);
    uint8_t digest[32], want[32];
    seal_params sp = {.key_id = "kbs:///cai/test/key", .chunk_log2 = CHUNK_LOG2, .replace = 1};
    CHECK_OK(seal_path(in, out, key, &sp, digest));
    CHECK_OK(kdf_sha256(p, n, want));
    CHECK(memcmp(digest, want, 32) == 0);

    buf got;
    CHECK_OK(unseal(out, key, &got));
    CHECK(got.len == n && (n == 0 || memcmp(got.data, p, n) == 0));
    buf_free(&got);

    /* The header reports the digest; each chunk decrypts alone too. */
    int fd = open(out, O_RDONLY);
    seal_reader *r = NULL;
    CHECK_OK(seal_reader_open(fd, key, &r));
    if (r) {
        const seal_header *h = seal_reader_header(r);
        CHECK(memcmp(h->digest, want, 32) == 0);
        CHECK(h->n_chunks == (n == 0 ? 1 : (n + C - 1) / C));
        uint8_t *chunk = malloc(C);
        for (uint64_t i = 0; i < h->n_chunks; i++) {
            size_t len = 0;
            CHECK_OK(seal_reader_chunk(r, i, chunk, &len));
            CHECK(len == (n - i * C < C ? n - i * C : C));
            CHECK(len == 0 || memcmp(chunk, p + i * C, len) == 0);
        }
        size_t len;
        CHECK_ST(seal_reader_chunk(r, h->n_chunks, chunk, &len), CAI_ERR_INVALID_ARG);
        free(chunk);
    }
    seal_reader_free(r);
    close(fd);
    free(p);
}

static void test_round_trip_empty(void) { round_trip(0); }
static void test_round_trip_one_byte(void) { round_trip(1); }
static void test_round_trip_chunk_minus_one(void) { round_trip(C - 1); }
static void test_round_trip_chunk(void) { round_trip(C); }
static void test_round_trip_chunk_plus_one(void) { round_trip(C + 1); }
static void test_round_trip_many_chunks(void) { round_trip(37 * C + 12345); }

static void test_round_trip_directory(void) {
    char d[256], sub[300], f[320], out[256];
    path_of(d, sizeof(d), "model");
    path_of(out, sizeof(out), "model.sealed");
    CHECK(mkdir(d, 0755) == 0);
    snprintf(sub, sizeof(sub), "%s/tok", d);
    CHECK(mkdir(sub, 0755) == 0);
    static const struct { const char *name; size_t size; } files[] = {
        {"config.json", 300}, {"empty", 0}, {"model.safetensors", 3 * C + 7},
        {"tok/tokenizer.json", C - 1}};
    size_t total = 0;
    buf all;
    buf_init(&all, 0);
    for (int i = 0; i < 4; i++) {
        snprintf(f, sizeof(f), "%s/%s", d, files[i].name);
        uint8_t *p = pattern(files[i].size, (unsigned)i + 1);
        write_file(f, p, files[i].size);
        CHECK_OK(buf_append(&all, p, files[i].size)); /* sorted order = this order */
        total += files[i].size;
        free(p);
    }
    chmod(f, 0600);
    CHECK_OK(seal_file(d, out, CHUNK_LOG2));
    int fd = open(out, O_RDONLY);
    seal_header *h = NULL;
    CHECK_OK(seal_header_read(fd, &h));
    close(fd);
    if (h) {
        CHECK(h->kind == SEAL_KIND_DIR && h->n_entries == 4 && h->plaintext_len == total);
        for (uint32_t i = 0; i < h->n_entries && i < 4; i++) {
            CHECK(strcmp(h->entries[i].name, files[i].name) == 0);
            CHECK(h->entries[i].size == files[i].size);
        }
        CHECK(h->entries[3].mode == 0600 && h->entries[0].mode == 0644);
    }
    seal_header_free(h);
    buf got;
    CHECK_OK(unseal(out, key, &got));
    CHECK(got.len == all.len && memcmp(got.data, all.data, all.len) == 0);
    buf_free(&got);
    buf_free(&all);
}

/* ---- tampering ----------------------------------------------------------- */

static buf sealed; /* a 3-chunk sealed file: 2 full chunks and a partial one */
static uint32_t sealed_header_len;

static void make_sealed(void) {
    char in[256], out[256];
    path_of(in, sizeof(in), "t.bin");
    path_of(out, sizeof(out), "t.sealed");
    uint8_t *p = pattern(2 * C + 1000, 9);
    write_file(in, p, 2 * C + 1000);
    free(p);
    CHECK_OK(seal_file(in, out, CHUNK_LOG2));
    CHECK_OK(file_read_all(out, 1 << 20, &sealed));
    int fd = open(out, O_RDONLY);
    seal_header *h = NULL;
    CHECK_OK(seal_header_read(fd, &h));
    close(fd);
    sealed_header_len = h ? h->header_len : 0;
    seal_header_free(h);
}

/* Writes |data| as a sealed file and returns what unsealing it gives. */
static cai_status try_unseal(const uint8_t *data, size_t n, const uint8_t *k) {
    char path[256];
    path_of(path, sizeof(path), "tampered.sealed");
    write_file(path, data, n);
    buf got;
    cai_status st = unseal(path, k, &got);
    buf_free(&got);
    return st;
}

static void test_tamper_every_header_byte(void) {
    uint8_t *copy = malloc(sealed.len);
    int accepted = 0;
    for (uint32_t i = 0; i < sealed_header_len; i++) {
        for (int bit = 0; bit < 8; bit += 7) {
            memcpy(copy, sealed.data, sealed.len);
            copy[i] ^= (uint8_t)(1 << bit);
            if (try_unseal(copy, sealed.len, key) == CAI_OK) {
                printf("  header byte %u bit %d accepted\n", i, bit);
                accepted++;
            }
        }
    }
    CHECK(accepted == 0);
    free(copy);
}

static void test_tamper_every_chunk(void) {
    uint8_t *copy = malloc(sealed.len);
    size_t starts[] = {sealed_header_len, sealed_header_len + C + 16,
                       sealed_header_len + 2 * (C + 16)};
    size_t lens[] = {C + 16, C + 16, 1000 + 16};
    for (int c = 0; c < 3; c++) {
        /* first byte, a middle byte, last ciphertext byte, first and last tag byte */
        size_t offs[] = {0, lens[c] / 2, lens[c] - 17, lens[c] - 16, lens[c] - 1};
        for (int j = 0; j < 5; j++) {
            memcpy(copy, sealed.data, sealed.len);
            copy[starts[c] + offs[j]] ^= 0x01;
            CHECK_ST(try_unseal(copy, sealed.len, key), CAI_ERR_AUTH);
        }
    }
    free(copy);
}

static void test_truncation(void) {
    size_t cuts[] = {0, 7, 15, 100, sealed_header_len - 1, sealed_header_len,
                     sealed_header_len + 1, sealed_header_len + C + 16,      /* boundary */
                     sealed_header_len + C + 16 + 500,                      /* inside */
                     sealed_header_len + 2 * (C + 16), sealed.len - 16, sealed.len - 1};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        cai_status st = try_unseal(sealed.data, cuts[i], key);
        CHECK(st == CAI_ERR_TRUNCATED || (cuts[i] < 16 && st == CAI_ERR_FORMAT));
        if (!(st == CAI_ERR_TRUNCATED || (cuts[i] < 16 && st == CAI_ERR_FORMAT)))
            printf("  cut at %zu: %s\n", cuts[i], cai_errmsg(st));
    }
}

static void test_appended_bytes(void) {
    uint8_t *copy = malloc(sealed.len + 16);
    memcpy(copy, sealed.data, sealed.len);
    memset(copy + sealed.len, 0, 16);
    CHECK_ST(try_unseal(copy, sealed.len + 1, key), CAI_ERR_TRAILING);
    CHECK_ST(try_unseal(copy, sealed.len + 16, key), CAI_ERR_TRAILING);
    free(copy);
}

static void test_swapped_chunks(void) {
    uint8_t *copy = malloc(sealed.len);
    memcpy(copy, sealed.data, sealed.len);
    size_t a = sealed_header_len, b = sealed_header_len + C + 16;
    memcpy(copy + a, sealed.data + b, C + 16);
    memcpy(copy + b, sealed.data + a, C + 16);
    CHECK_ST(try_unseal(copy, sealed.len, key), CAI_ERR_AUTH);
    /* Duplicating chunk 0 over chunk 1 is refused as well. */
    memcpy(copy, sealed.data, sealed.len);
    memcpy(copy + b, sealed.data + a, C + 16);
    CHECK_ST(try_unseal(copy, sealed.len, key), CAI_ERR_AUTH);
    free(copy);
}

static void test_chunk_from_other_file(void) {
    /* Same key, same plaintext, same size: only the salt differs. */
    char in[256], out[256];
    path_of(in, sizeof(in), "t.bin");
    path_of(out, sizeof(out), "t2.sealed");
    CHECK_OK(seal_file(in, out, CHUNK_LOG2));
    buf other;
    CHECK_OK(file_read_all(out, 1 << 20, &other));
    CHECK(other.len == sealed.len);
    uint8_t *copy = malloc(sealed.len);
    memcpy(copy, sealed.data, sealed.len);
    size_t b = sealed_header_len + C + 16;
    memcpy(copy + b, other.data + b, C + 16);
    CHECK_ST(try_unseal(copy, sealed.len, key), CAI_ERR_AUTH);
    /* And the other file's header on this file's chunks. */
    memcpy(copy, sealed.data, sealed.len);
    memcpy(copy, other.data, sealed_header_len);
    CHECK_ST(try_unseal(copy, sealed.len, key), CAI_ERR_AUTH);
    free(copy);
    buf_free(&other);
}

static void test_wrong_key(void) {
    uint8_t wrong[32];
    memcpy(wrong, key, 32);
    wrong[0] ^= 0x80;
    CHECK_ST(try_unseal(sealed.data, sealed.len, wrong), CAI_ERR_WRONG_KEY);
    CHECK(strstr(cai_errmsg(CAI_ERR_WRONG_KEY), "wrong key") != NULL);
}

static void test_edited_key_id(void) {
    uint8_t *copy = malloc(sealed.len);
    memcpy(copy, sealed.data, sealed.len);
    /* "kbs:///cai/test/key" -> "kbs:///cai/tesT/key": still a valid URI. */
    uint8_t *p = memmem(copy, sealed_header_len, "test", 4);
    CHECK(p != NULL);
    if (p) {
        p[3] = 'T';
        CHECK_ST(try_unseal(copy, sealed.len, key), CAI_ERR_AUTH);
        CHECK(strstr(cai_errmsg(CAI_ERR_AUTH), "header") != NULL);
    }
    free(copy);
}

static void test_no_output_on_failure(void) {
    /* A failed seal leaves no output file. */
    char out[256];
    path_of(out, sizeof(out), "never.sealed");
    CHECK_ST(seal_file("/nonexistent/input", out, CHUNK_LOG2), CAI_ERR_NOT_FOUND);
    CHECK(access(out, F_OK) != 0);
    seal_params p = {.key_id = "not-a-uri"};
    char in[256];
    path_of(in, sizeof(in), "t.bin");
    CHECK_ST(seal_path(in, out, key, &p, NULL), CAI_ERR_INVALID_ARG);
    CHECK(access(out, F_OK) != 0);
}

/* An existing OUT stays as it was unless the caller asked to replace it. */
static void test_existing_output(void) {
    char in[256], out[256];
    path_of(in, sizeof(in), "exist.bin");
    path_of(out, sizeof(out), "exist.sealed");
    write_file(in, "plaintext", 9);
    write_file(out, "old", 3);
    seal_params p = {.key_id = "kbs:///cai/test/key", .chunk_log2 = CHUNK_LOG2};
    CHECK_ST(seal_path(in, out, key, &p, NULL), CAI_ERR_EXISTS);
    struct stat sb;
    CHECK(stat(out, &sb) == 0 && sb.st_size == 3);
    p.replace = 1;
    CHECK_OK(seal_path(in, out, key, &p, NULL));
    CHECK(stat(out, &sb) == 0 && sb.st_size > 3);
}

static void test_key_id_rules(void) {
    CHECK(seal_key_id_valid("kbs:///cai/qwen/key"));
    CHECK(seal_key_id_valid("kbs://broker.example:8080/a/b/c"));
    CHECK(seal_key_id_valid("kbs:///default/model-key/qwen2.5_7b"));
    CHECK(!seal_key_id_valid("kbs:///cai/qwen"));
    CHECK(!seal_key_id_valid("kbs:///cai/qwen/key/extra"));
    CHECK(!seal_key_id_valid("kbs:///cai//key"));
    CHECK(!seal_key_id_valid("kbs:///cai/../key"));
    CHECK(!seal_key_id_valid("kbs:///cai/qw en/key"));
    CHECK(!seal_key_id_valid("http:///cai/qwen/key"));
    CHECK(!seal_key_id_valid("kbs://"));
    CHECK(!seal_key_id_valid(""));
}

static void test_keyfile(void) {
    char path[256], hexpath[256];
    uint8_t k1[32], k2[32];
    path_of(path, sizeof(path), "new.key");
    CHECK_OK(keyfile_create(path, k1));
    CHECK_ST(keyfile_create(path, k2), CAI_ERR_EXISTS);
    CHECK_OK(keyfile_read(path, k2));
    CHECK(memcmp(k1, k2, 32) == 0);
    struct stat sb;
    CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
    path_of(hexpath, sizeof(hexpath), "hex.key");
    write_file(hexpath, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n", 65);
    chmod(hexpath, 0600);
    CHECK_OK(keyfile_read(hexpath, k2));
    CHECK(k2[0] == 0 && k2[31] == 0x1f);
    chmod(hexpath, 0644);
    CHECK_ST(keyfile_read(hexpath, k2), CAI_ERR_INVALID_ARG); /* readable by others */
    write_file(hexpath, "short", 5);
    chmod(hexpath, 0600);
    CHECK_ST(keyfile_read(hexpath, k2), CAI_ERR_FORMAT);
}

/* The plaintext comes back in writable memory of its own, aligned to
 * 2 MiB, advised huge pages and left out of core dumps. */
static void test_unseal_memory(void) {
    char in[256], out[256];
    path_of(in, sizeof(in), "um.bin");
    path_of(out, sizeof(out), "um.sealed");
    const size_t n = 3 * C + 5;
    uint8_t *p = pattern(n, 9);
    write_file(in, p, n);
    CHECK_OK(seal_file(in, out, CHUNK_LOG2));
    int fd = open(out, O_RDONLY);
    uint8_t digest[32], *mem = NULL;
    uint64_t len = 0;
    CHECK_OK(seal_unseal_mem(fd, key, 2, SEAL_VERIFY_DIGEST, &mem, &len, digest));
    close(fd);
    CHECK(len == n && mem != NULL && ((uintptr_t)mem & ((2u << 20) - 1)) == 0);
    if (mem) {
        char perms[8], flags[256];
        CHECK(memcmp(mem, p, n) == 0);
        mem[0] ^= 1; /* writable */
        test_mapping(mem, perms, flags, sizeof(flags));
        /* huge pages only where the kernel has them at all */
        const int thp = access("/sys/kernel/mm/transparent_hugepage/enabled", F_OK) == 0;
        CHECK(strstr(flags, " dd") != NULL && (!thp || strstr(flags, " hg") != NULL));
        if (strstr(flags, " dd") == NULL || (thp && strstr(flags, " hg") == NULL))
            printf("  VmFlags:%s", flags);
    }
    secure_unmap(mem, (size_t)len);
    free(p);
}

/* The pages of |fd|'s first |n| bytes that are in the page cache. */
static size_t resident_pages(int fd, size_t n) {
    const size_t pg = (size_t)sysconf(_SC_PAGESIZE), np = (n + pg - 1) / pg;
    void *m = mmap(NULL, n, PROT_READ, MAP_SHARED, fd, 0);
    unsigned char *v = malloc(np);
    size_t k = 0;
    CHECK(m != MAP_FAILED && v != NULL);
    if (m != MAP_FAILED && v != NULL && mincore(m, n, v) == 0)
        for (size_t i = 0; i < np; i++)
            k += v[i] & 1;
    if (m != MAP_FAILED)
        munmap(m, n);
    free(v);
    return k;
}

/* With SEAL_DROP_CACHE the same plaintext and digest come back, and the
 * ciphertext (written back first: only clean pages can go) has left the
 * page cache; without it, it stays.
 * (tmpfs ignores the advice: the residency half is skipped there.) */
static void test_drop_cache(void) {
    char in[256], out[256];
    path_of(in, sizeof(in), "dc.bin");
    path_of(out, sizeof(out), "dc.sealed");
    const size_t n = 64 * C + 7;
    uint8_t *p = pattern(n, 11);
    write_file(in, p, n);
    CHECK_OK(seal_file(in, out, CHUNK_LOG2));
    uint8_t want[32];
    for (int drop = 0; drop < 2; drop++) {
        int fd = open(out, O_RDONLY);
        uint8_t *mem = NULL;
        uint64_t got_len = 0;
        struct stat sb;
        CHECK(fd >= 0 && fstat(fd, &sb) == 0 && fdatasync(fd) == 0);
        const size_t len = (size_t)sb.st_size;
        const size_t before = resident_pages(fd, len);
        uint8_t digest[32];
        CHECK_OK(seal_unseal_mem(fd, key, 2, SEAL_VERIFY_DIGEST | (drop ? SEAL_DROP_CACHE : 0), &mem, &got_len, digest));
        const size_t after = resident_pages(fd, len), pages = len / (size_t)sysconf(_SC_PAGESIZE);
        close(fd);
        if (drop == 0)
            memcpy(want, digest, 32);
        CHECK(memcmp(digest, want, 32) == 0);
        CHECK(got_len == n && mem != NULL && memcmp(mem, p, n) == 0);
        secure_unmap(mem, (size_t)got_len);
        if (drop == 0)
            CHECK(after >= pages);
        else if (before < pages)
            printf("SKIP drop_cache residency: %s keeps no page cache to drop\n", out);
        else
            CHECK(after == 0);
    }
    free(p);
}

int main(void) {
    if (mkdtemp(tmpdir) == NULL)
        return 1;
    RUN(test_round_trip_empty);
    RUN(test_round_trip_one_byte);
    RUN(test_round_trip_chunk_minus_one);
    RUN(test_round_trip_chunk);
    RUN(test_round_trip_chunk_plus_one);
    RUN(test_round_trip_many_chunks);
    RUN(test_round_trip_directory);
    make_sealed();
    RUN(test_tamper_every_header_byte);
    RUN(test_tamper_every_chunk);
    RUN(test_truncation);
    RUN(test_appended_bytes);
    RUN(test_swapped_chunks);
    RUN(test_chunk_from_other_file);
    RUN(test_wrong_key);
    RUN(test_edited_key_id);
    RUN(test_no_output_on_failure);
    RUN(test_existing_output);
    RUN(test_key_id_rules);
    RUN(test_keyfile);
    RUN(test_unseal_memory);
    RUN(test_drop_cache);
    buf_free(&sealed);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        return 1;
    return test_summary();
}

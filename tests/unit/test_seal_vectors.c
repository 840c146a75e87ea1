/* Known-answer vectors of the sealed format (tests/vectors/seal-v1.txt):
 * sealing with the vector's key and salt must give the vector's bytes, and
 * unsealing them must give the plaintext. CAI_WRITE_VECTORS=1 regenerates
 * the file (only when the format changes on purpose). */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/codec.h"
#include "common/file.h"
#include "common/secure.h"
#include "seal/seal.h"
#include "test.h"

#define VECTORS "tests/vectors/seal-v1.txt"

typedef struct {
    const char *name;
    uint64_t len;
    int is_dir; /* split as "config.json" (5 bytes) + "w/model.bin" (rest) */
} vector;

static const vector vectors[] = {
    {"empty", 0, 0},
    {"one-byte", 1, 0},
    {"two-chunks", 65536 + 100, 0},
    {"directory", 70005, 1},
};

static uint8_t vkey[32], vsalt[32];
static char tmpdir[] = "/tmp/cai-kat-XXXXXX";

static void fill(uint8_t *p, size_t n, uint64_t start) {
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)((start + i) % 251);
}

static void write_part(const char *path, uint64_t start, size_t n) {
    uint8_t *p = malloc(n ? n : 1);
    fill(p, n, start);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0 && file_write_full(fd, p, n) == CAI_OK);
    close(fd);
    free(p);
}

/* Seals vector |v| and returns the sealed bytes in |out|. */
static void seal_vector(const vector *v, buf *out) {
    char in[256], sealed[256], sub[300], f[320];
    snprintf(in, sizeof(in), "%s/%s", tmpdir, v->name);
    snprintf(sealed, sizeof(sealed), "%s/%s.sealed", tmpdir, v->name);
    if (v->is_dir) {
        CHECK(mkdir(in, 0755) == 0);
        snprintf(sub, sizeof(sub), "%s/w", in);
        CHECK(mkdir(sub, 0755) == 0);
        snprintf(f, sizeof(f), "%s/config.json", in);
        write_part(f, 0, 5);
        snprintf(f, sizeof(f), "%s/w/model.bin", in);
        write_part(f, 5, (size_t)v->len - 5);
    } else {
        write_part(in, 0, (size_t)v->len);
    }
    seal_params p = {.key_id = "kbs:///cai/kat/key", .chunk_log2 = 16, .n_threads = 1,
                     .salt = vsalt};
    CHECK_OK(seal_path(in, sealed, vkey, &p, NULL));
    CHECK_OK(file_read_all(sealed, 1 << 20, out));
}

static void write_vectors(void) {
    FILE *f = fopen(VECTORS, "w");
    char hex[65];
    fprintf(f, "# Known-answer vectors for the cai sealed format v1 (docs/SEALED-FORMAT.md).\n"
               "# Plaintext P[j] = j mod 251; for the directory vector, the plaintext stream\n"
               "# is split into config.json (5 bytes) and w/model.bin (the rest), mode 0644.\n"
               "# Fields: name, key, salt, key_id, chunk_log2, plaintext_len, sealed (hex).\n");
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        buf s;
        seal_vector(&vectors[i], &s);
        fprintf(f, "\nname = %s\n", vectors[i].name);
        hex_encode(hex, vkey, 32);
        fprintf(f, "key = %s\n", hex);
        hex_encode(hex, vsalt, 32);
        fprintf(f, "salt = %s\nkey_id = kbs:///cai/kat/key\nchunk_log2 = 16\n", hex);
        fprintf(f, "plaintext_len = %llu\nsealed = ", (unsigned long long)vectors[i].len);
        for (size_t j = 0; j < s.len; j++)
            fprintf(f, "%02x", s.data[j]);
        fprintf(f, "\n");
        buf_free(&s);
    }
    fclose(f);
}

/* Finds "<field> = " after |from| in the vectors text and returns the value. */
static char *field(char *text, const char *name, const char *field_name, size_t *len) {
    char tag[64];
    snprintf(tag, sizeof(tag), "name = %s\n", name);
    char *p = strstr(text, tag);
    if (p == NULL)
        return NULL;
    snprintf(tag, sizeof(tag), "\n%s = ", field_name);
    p = strstr(p, tag);
    if (p == NULL)
        return NULL;
    p += strlen(tag);
    *len = strcspn(p, "\n");
    return p;
}

static void test_vectors_match(void) {
    buf text;
    CHECK_OK(file_read_all(VECTORS, 4 << 20, &text));
    if (text.data == NULL)
        return;
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        size_t hlen, n;
        char *hex = field((char *)text.data, vectors[i].name, "sealed", &hlen);
        CHECK(hex != NULL);
        if (hex == NULL)
            continue;
        uint8_t *want = malloc(hlen / 2 + 1);
        CHECK_OK(hex_decode(hex, hlen, want, hlen / 2, &n));
        buf got;
        seal_vector(&vectors[i], &got);
        CHECK(got.len == n && memcmp(got.data, want, n) == 0);
        if (got.len != n || memcmp(got.data, want, n) != 0)
            printf("  vector %s differs\n", vectors[i].name);
        /* And the committed bytes unseal to the plaintext. */
        char path[256];
        snprintf(path, sizeof(path), "%s/%s.kat", tmpdir, vectors[i].name);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        CHECK_OK(file_write_full(fd, want, n));
        close(fd);
        fd = open(path, O_RDONLY);
        uint8_t digest[32], *plain = NULL, *expect = malloc(vectors[i].len + 1);
        uint64_t plain_len = 0;
        CHECK_OK(seal_unseal_mem(fd, vkey, 1, SEAL_VERIFY_DIGEST, &plain, &plain_len, digest));
        fill(expect, (size_t)vectors[i].len, 0);
        CHECK(plain_len == vectors[i].len);
        CHECK(vectors[i].len == 0 || (plain && memcmp(plain, expect, (size_t)vectors[i].len) == 0));
        secure_unmap(plain, (size_t)plain_len);
        free(expect);
        close(fd);
        buf_free(&got);
        free(want);
    }
    buf_free(&text);
}

int main(void) {
    for (int i = 0; i < 32; i++) {
        vkey[i] = (uint8_t)(0x40 + i);
        vsalt[i] = (uint8_t)(0xa0 + i);
    }
    if (mkdtemp(tmpdir) == NULL)
        return 1;
    int rc = 0;
    if (getenv("CAI_WRITE_VECTORS")) {
        write_vectors();
        printf("wrote %s\n", VECTORS);
    } else {
        RUN(test_vectors_match);
        rc = test_summary();
    }
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        return 1;
    return rc;
}

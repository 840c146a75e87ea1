/* One test per rejection rule of the sealed header parser (structure only:
 * the MAC and key commitment are checked by seal_reader_open, tested in
 * test_seal.c). */
#include "common/buf.h"
#include "seal/seal.h"
#include "test.h"

typedef struct {
    const char *magic;
    uint16_t version, suite, reserved;
    int header_len_delta; /* added to the correct header_len */
    uint8_t chunk_log2, kind;
    uint64_t plaintext_len;
    const char *key_id;
    const uint8_t *manifest;
    size_t manifest_len;
    size_t extra; /* bytes added before the MAC */
} hdr;

static hdr good(void) {
    hdr h = {.magic = "CAI-SEAL", .version = 1, .suite = 1, .chunk_log2 = 22,
             .kind = SEAL_KIND_FILE, .plaintext_len = 1000, .key_id = "kbs:///cai/m/key"};
    return h;
}

static cai_status parse(const hdr *h) {
    buf b;
    buf_init(&b, 0);
    size_t klen = strlen(h->key_id);
    size_t len = 126 + klen + 4 + h->manifest_len + h->extra + 32;
    uint8_t zeros[96] = {0};
    CHECK_OK(buf_append(&b, h->magic, 8));
    CHECK_OK(buf_append_u16le(&b, h->version));
    CHECK_OK(buf_append_u16le(&b, h->suite));
    CHECK_OK(buf_append_u32le(&b, (uint32_t)((int)len + h->header_len_delta)));
    CHECK_OK(buf_append_u8(&b, h->chunk_log2));
    CHECK_OK(buf_append_u8(&b, h->kind));
    CHECK_OK(buf_append_u16le(&b, h->reserved));
    CHECK_OK(buf_append_u64le(&b, h->plaintext_len));
    CHECK_OK(buf_append(&b, zeros, 96)); /* digest, salt, commitment */
    CHECK_OK(buf_append_u16le(&b, (uint16_t)klen));
    CHECK_OK(buf_append(&b, h->key_id, klen));
    CHECK_OK(buf_append_u32le(&b, (uint32_t)h->manifest_len));
    CHECK_OK(buf_append(&b, h->manifest, h->manifest_len));
    CHECK_OK(buf_append(&b, zeros, h->extra));
    CHECK_OK(buf_append(&b, zeros, 32)); /* MAC */
    seal_header *out = NULL;
    cai_status st = seal_header_parse(b.data, b.len, &out);
    CHECK((st == CAI_OK) == (out != NULL));
    seal_header_free(out);
    buf_free(&b);
    return st;
}

/* A manifest of entries (name, size, mode) given as a flat list. */
static size_t manifest(uint8_t *out, int n, const char *const *names, const uint64_t *sizes,
                       const uint32_t *modes) {
    buf b;
    buf_init(&b, 0);
    CHECK_OK(buf_append_u32le(&b, (uint32_t)n));
    for (int i = 0; i < n; i++) {
        CHECK_OK(buf_append_u16le(&b, (uint16_t)strlen(names[i])));
        CHECK_OK(buf_append_str(&b, names[i]));
        CHECK_OK(buf_append_u64le(&b, sizes[i]));
        CHECK_OK(buf_append_u32le(&b, modes[i]));
    }
    memcpy(out, b.data, b.len);
    size_t len = b.len;
    buf_free(&b);
    return len;
}

static void test_accepts_good_file_header(void) { hdr h = good(); CHECK_OK(parse(&h)); }

static void test_rejects_bad_magic(void) {
    hdr h = good();
    h.magic = "CAI-SEAX";
    CHECK_ST(parse(&h), CAI_ERR_FORMAT);
}

static void test_rejects_unknown_version(void) {
    hdr h = good();
    h.version = 2;
    CHECK_ST(parse(&h), CAI_ERR_UNSUPPORTED);
}

static void test_rejects_unknown_suite(void) {
    hdr h = good();
    h.suite = 7;
    CHECK_ST(parse(&h), CAI_ERR_UNSUPPORTED);
}

static void test_rejects_header_len_mismatch(void) {
    hdr h = good();
    h.header_len_delta = 1;
    CHECK_ST(parse(&h), CAI_ERR_TRUNCATED);
    h.header_len_delta = -1;
    CHECK_ST(parse(&h), CAI_ERR_FORMAT);
}

static void test_rejects_header_len_out_of_range(void) {
    hdr h = good();
    h.header_len_delta = -(126 + 16 + 4 + 32) + 10; /* below the minimum */
    CHECK_ST(parse(&h), CAI_ERR_FORMAT);
    h.header_len_delta = SEAL_HEADER_MAX;
    CHECK_ST(parse(&h), CAI_ERR_FORMAT);
}

static void test_rejects_trailing_header_bytes(void) {
    hdr h = good();
    h.extra = 3;
    CHECK_ST(parse(&h), CAI_ERR_FORMAT);
}

static void test_rejects_chunk_size(void) {
    hdr h = good();
    h.chunk_log2 = 15;
    CHECK_ST(parse(&h), CAI_ERR_FORMAT);
    h.chunk_log2 = 27;
    CHECK_ST(parse(&h), CAI_ERR_FORMAT);
}

static void test_rejects_unknown_kind(void) {
    hdr h = good();
    h.kind = 2;
    CHECK_ST(parse(&h), CAI_ERR_UNSUPPORTED);
}

static void test_rejects_reserved(void) {
    hdr h = good();
    h.reserved = 1;
    CHECK_ST(parse(&h), CAI_ERR_FORMAT);
}

static void test_rejects_huge_plaintext(void) {
    hdr h = good();
    h.plaintext_len = SEAL_PLAINTEXT_MAX + 1;
    CHECK_ST(parse(&h), CAI_ERR_LIMIT);
}

static void test_rejects_empty_key_id(void) {
    hdr h = good();
    h.key_id = "";
    CHECK_ST(parse(&h), CAI_ERR_FORMAT);
}

static void test_rejects_invalid_key_id(void) {
    hdr h = good();
    h.key_id = "kbs:///cai/../key";
    CHECK_ST(parse(&h), CAI_ERR_FORMAT);
    h.key_id = "file:///etc/passwd";
    CHECK_ST(parse(&h), CAI_ERR_FORMAT);
}

static void test_rejects_manifest_on_file(void) {
    uint8_t m[64];
    const char *names[] = {"a"};
    uint64_t sizes[] = {1000};
    uint32_t modes[] = {0644};
    hdr h = good();
    h.manifest = m;
    h.manifest_len = manifest(m, 1, names, sizes, modes);
    CHECK_ST(parse(&h), CAI_ERR_FORMAT);
    h.kind = SEAL_KIND_DIR;
    CHECK_OK(parse(&h)); /* the same manifest is fine on a directory */
}

static void test_rejects_dir_without_manifest(void) {
    hdr h = good();
    h.kind = SEAL_KIND_DIR;
    CHECK_ST(parse(&h), CAI_ERR_FORMAT);
}

static void test_rejects_zero_entries(void) {
    uint8_t m[4] = {0, 0, 0, 0};
    hdr h = good();
    h.kind = SEAL_KIND_DIR;
    h.manifest = m;
    h.manifest_len = 4;
    CHECK_ST(parse(&h), CAI_ERR_FORMAT);
}

static void test_rejects_entry_count_beyond_data(void) {
    uint8_t m[4] = {0xff, 0xff, 0, 0};
    hdr h = good();
    h.kind = SEAL_KIND_DIR;
    h.manifest = m;
    h.manifest_len = 4;
    CHECK_ST(parse(&h), CAI_ERR_FORMAT);
}

static void dir_case(int n, const char *const *names, const uint64_t *sizes,
                     const uint32_t *modes, uint64_t total, cai_status want) {
    uint8_t m[512];
    hdr h = good();
    h.kind = SEAL_KIND_DIR;
    h.plaintext_len = total;
    h.manifest = m;
    h.manifest_len = manifest(m, n, names, sizes, modes);
    CHECK_ST(parse(&h), want);
}

static void test_rejects_unsorted_or_duplicate_entries(void) {
    const char *unsorted[] = {"b", "a"}, *dup[] = {"a", "a"};
    uint64_t sizes[] = {500, 500};
    uint32_t modes[] = {0644, 0644};
    dir_case(2, unsorted, sizes, modes, 1000, CAI_ERR_FORMAT);
    dir_case(2, dup, sizes, modes, 1000, CAI_ERR_FORMAT);
}

static void test_rejects_bad_entry_names(void) {
    static const char *bad[] = {"/abs", "../up", "a/../b", "a//b", "a/", ".", "x\\y"};
    uint64_t sizes[] = {1000};
    uint32_t modes[] = {0644};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        dir_case(1, &bad[i], sizes, modes, 1000, CAI_ERR_FORMAT);
    const char *ok[] = {"sub/dir/.hidden"};
    dir_case(1, ok, sizes, modes, 1000, CAI_OK);
}

static void test_rejects_non_permission_mode(void) {
    const char *names[] = {"a"};
    uint64_t sizes[] = {1000};
    uint32_t setuid[] = {04755}, type[] = {0100644};
    dir_case(1, names, sizes, setuid, 1000, CAI_ERR_FORMAT);
    dir_case(1, names, sizes, type, 1000, CAI_ERR_FORMAT);
}

static void test_rejects_sizes_not_adding_up(void) {
    const char *names[] = {"a", "b"};
    uint64_t sizes[] = {500, 499}, huge[] = {UINT64_MAX, 1001};
    uint32_t modes[] = {0644, 0644};
    dir_case(2, names, sizes, modes, 1000, CAI_ERR_FORMAT);
    dir_case(2, names, huge, modes, 1000, CAI_ERR_FORMAT);
}

static void test_rejects_manifest_trailing_bytes(void) {
    uint8_t m[64];
    const char *names[] = {"a"};
    uint64_t sizes[] = {1000};
    uint32_t modes[] = {0644};
    hdr h = good();
    h.kind = SEAL_KIND_DIR;
    h.manifest = m;
    h.manifest_len = manifest(m, 1, names, sizes, modes) + 2;
    m[h.manifest_len - 2] = m[h.manifest_len - 1] = 0;
    CHECK_ST(parse(&h), CAI_ERR_FORMAT);
}

static void test_rejects_short_input(void) {
    seal_header *out;
    CHECK_ST(seal_header_parse((const uint8_t *)"CAI-SEAL", 8, &out), CAI_ERR_TRUNCATED);
    CHECK_ST(seal_header_parse((const uint8_t *)"", 0, &out), CAI_ERR_FORMAT);
}

int main(void) {
    RUN(test_accepts_good_file_header);
    RUN(test_rejects_bad_magic);
    RUN(test_rejects_unknown_version);
    RUN(test_rejects_unknown_suite);
    RUN(test_rejects_header_len_mismatch);
    RUN(test_rejects_header_len_out_of_range);
    RUN(test_rejects_trailing_header_bytes);
    RUN(test_rejects_chunk_size);
    RUN(test_rejects_unknown_kind);
    RUN(test_rejects_reserved);
    RUN(test_rejects_huge_plaintext);
    RUN(test_rejects_empty_key_id);
    RUN(test_rejects_invalid_key_id);
    RUN(test_rejects_manifest_on_file);
    RUN(test_rejects_dir_without_manifest);
    RUN(test_rejects_zero_entries);
    RUN(test_rejects_entry_count_beyond_data);
    RUN(test_rejects_unsorted_or_duplicate_entries);
    RUN(test_rejects_bad_entry_names);
    RUN(test_rejects_non_permission_mode);
    RUN(test_rejects_sizes_not_adding_up);
    RUN(test_rejects_manifest_trailing_bytes);
    RUN(test_rejects_short_input);
    return test_summary();
}

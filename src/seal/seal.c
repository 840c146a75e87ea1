/* seal.c - the sealed model format v1; see docs/SEALED-FORMAT.md. */
#include "seal/seal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common/buf.h"
#include "common/cursor.h"
#include "common/file.h"
#include "common/pool.h"
#include "common/respath.h"
#include "common/secure.h"
#include "crypto/aead.h"
#include "crypto/kdf.h"

static const uint8_t seal_magic[8] = {'C', 'A', 'I', '-', 'S', 'E', 'A', 'L'};

#define SEAL_MAC_LEN 32
#define SEAL_DIR_DEPTH_MAX 64

/* ---- key schedule ------------------------------------------------------ */

typedef struct {
    uint8_t commitment[32];
    uint8_t mac_key[32];
    uint8_t payload_key[AEAD_KEY_LEN];
} seal_keys;

static cai_status keys_derive(const uint8_t key[SEAL_KEY_LEN],
                              const uint8_t salt[SEAL_SALT_LEN], seal_keys *out) {
    uint8_t prk[KDF_SHA256_LEN];
    cai_status st = kdf_hkdf_extract(salt, SEAL_SALT_LEN, key, SEAL_KEY_LEN, prk);
    if (st == CAI_OK)
        st = kdf_hkdf_expand(prk, "cai-seal/v1 key-commitment", out->commitment, 32);
    if (st == CAI_OK)
        st = kdf_hkdf_expand(prk, "cai-seal/v1 header-mac", out->mac_key, 32);
    if (st == CAI_OK)
        st = kdf_hkdf_expand(prk, "cai-seal/v1 payload", out->payload_key, AEAD_KEY_LEN);
    secure_wipe(prk, sizeof(prk));
    if (st != CAI_OK)
        secure_wipe(out, sizeof(*out));
    return st;
}

static void chunk_nonce(uint64_t index, int last, uint8_t nonce[AEAD_NONCE_LEN]) {
    memset(nonce, 0, AEAD_NONCE_LEN);
    for (int i = 0; i < 8; i++)
        nonce[10 - i] = (uint8_t)(index >> (8 * i));
    nonce[11] = last ? 1 : 0;
}

/* Where chunk |index| starts in the sealed file. */
static uint64_t chunk_file_off(const seal_header *h, uint64_t index) {
    return h->header_len + index * ((1ull << h->chunk_log2) + SEAL_TAG_LEN);
}

static uint64_t count_chunks(uint64_t len, unsigned chunk_log2) {
    uint64_t c = 1ull << chunk_log2;
    return len == 0 ? 1 : (len + c - 1) / c;
}

/* ---- header ------------------------------------------------------------ */

int seal_key_id_valid(const char *key_id) {
    size_t len = strlen(key_id);
    if (len == 0 || len > SEAL_KEY_ID_MAX || strncmp(key_id, "kbs://", 6) != 0)
        return 0;
    const char *p = key_id + 6;
    const char *slash = strchr(p, '/');
    if (slash == NULL)
        return 0;
    for (const char *a = p; a < slash; a++) /* authority: printable, no space */
        if (*a <= ' ' || *a > '~')
            return 0;
    return respath_valid(slash + 1);
}

/* A relative path with '/' separators and no empty, "." or ".." component. */
static int entry_name_valid(const char *s, size_t n) {
    if (n == 0 || n > SEAL_NAME_MAX || s[0] == '/')
        return 0;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && (s[i] == '\0' || s[i] == '\\'))
            return 0;
        if (i == n || s[i] == '/') {
            size_t len = i - start;
            if (len == 0 || (len == 1 && s[start] == '.') ||
                (len == 2 && s[start] == '.' && s[start + 1] == '.'))
                return 0;
            start = i + 1;
        }
    }
    return 1;
}

void seal_header_free(seal_header *h) {
    if (h == NULL)
        return;
    for (uint32_t i = 0; i < h->n_entries && h->entries; i++)
        free(h->entries[i].name);
    free(h->entries);
    free(h->raw);
    free(h);
}

static cai_status parse_manifest(cursor *m, uint64_t plaintext_len, seal_header *h) {
    uint32_t count;
    if (!cursor_get_u32le(m, &count))
        return cai_fail(CAI_ERR_FORMAT, "manifest: missing entry count");
    if (count == 0 || count > SEAL_MANIFEST_ENTRIES_MAX)
        return cai_fail(CAI_ERR_FORMAT, "manifest: entry count %u out of range 1..%u",
                        count, SEAL_MANIFEST_ENTRIES_MAX);
    /* Each entry takes at least 2 + 1 + 8 + 4 bytes. */
    if (count > cursor_len(m) / 15)
        return cai_fail(CAI_ERR_FORMAT, "manifest: %u entries cannot fit in %zu bytes",
                        count, cursor_len(m));
    h->entries = calloc(count, sizeof(seal_entry));
    if (h->entries == NULL)
        return CAI_ERR_NOMEM;
    h->n_entries = count;
    uint64_t total = 0;
    for (uint32_t i = 0; i < count; i++) {
        cursor name;
        uint64_t size;
        uint32_t mode;
        if (!cursor_get_u16le_prefixed(m, &name) || !cursor_get_u64le(m, &size) ||
            !cursor_get_u32le(m, &mode))
            return cai_fail(CAI_ERR_FORMAT, "manifest: entry %u is truncated", i);
        if (!entry_name_valid((const char *)cursor_data(&name), cursor_len(&name)))
            return cai_fail(CAI_ERR_FORMAT, "manifest: entry %u has an invalid name "
                            "(must be a relative path without '.', '..' or empty parts)", i);
        if ((mode & ~0777u) != 0)
            return cai_fail(CAI_ERR_FORMAT, "manifest: entry %u has mode %o "
                            "(only permission bits are allowed)", i, mode);
        if (size > plaintext_len - total)
            return cai_fail(CAI_ERR_FORMAT, "manifest: file sizes exceed the plaintext length");
        seal_entry *e = &h->entries[i];
        e->name = strndup((const char *)cursor_data(&name), cursor_len(&name));
        if (e->name == NULL)
            return CAI_ERR_NOMEM;
        e->size = size;
        e->mode = mode;
        e->offset = total;
        total += size;
        if (i > 0 && strcmp(h->entries[i - 1].name, e->name) >= 0)
            return cai_fail(CAI_ERR_FORMAT, "manifest: entries are not sorted by name "
                            "or contain a duplicate (\"%s\")", e->name);
    }
    if (total != plaintext_len)
        return cai_fail(CAI_ERR_FORMAT, "manifest: file sizes add up to %llu, "
                        "not the plaintext length %llu",
                        (unsigned long long)total, (unsigned long long)plaintext_len);
    if (cursor_len(m) != 0)
        return cai_fail(CAI_ERR_FORMAT, "manifest: %zu trailing bytes", cursor_len(m));
    return CAI_OK;
}

/* Reads the fixed 16-byte prefix: magic, version, suite, header_len. */
static cai_status parse_prefix(cursor *c, seal_header *h) {
    uint8_t magic[8];
    if (!cursor_copy(c, magic, 8) || memcmp(magic, seal_magic, 8) != 0)
        return cai_fail(CAI_ERR_FORMAT, "not a sealed file (bad magic)");
    if (!cursor_get_u16le(c, &h->version) || !cursor_get_u16le(c, &h->suite) ||
        !cursor_get_u32le(c, &h->header_len))
        return cai_fail(CAI_ERR_TRUNCATED, "sealed header is truncated");
    if (h->version != SEAL_VERSION)
        return cai_fail(CAI_ERR_UNSUPPORTED, "sealed format version %u is not supported "
                        "(this cai reads version %d)", h->version, SEAL_VERSION);
    if (h->suite != SEAL_SUITE_AES256GCM)
        return cai_fail(CAI_ERR_UNSUPPORTED, "cipher suite %u is not supported", h->suite);
    if (h->header_len < SEAL_HEADER_MIN || h->header_len > SEAL_HEADER_MAX)
        return cai_fail(CAI_ERR_FORMAT, "header length %u out of range %d..%d",
                        h->header_len, SEAL_HEADER_MIN, SEAL_HEADER_MAX);
    return CAI_OK;
}

cai_status seal_header_parse(const uint8_t *bytes, size_t len, seal_header **out) {
    *out = NULL;
    seal_header *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return CAI_ERR_NOMEM;
    cai_status st;
    cursor c;
    cursor_init(&c, bytes, len);
    if ((st = parse_prefix(&c, h)) != CAI_OK)
        goto out;
    if (len != h->header_len) {
        st = cai_fail(len < h->header_len ? CAI_ERR_TRUNCATED : CAI_ERR_FORMAT,
                      "header is %zu bytes but declares %u", len, h->header_len);
        goto out;
    }
    uint16_t reserved;
    cursor key_id, manifest;
    if (!cursor_get_u8(&c, &h->chunk_log2) || !cursor_get_u8(&c, &h->kind) ||
        !cursor_get_u16le(&c, &reserved) || !cursor_get_u64le(&c, &h->plaintext_len) ||
        !cursor_copy(&c, h->digest, SEAL_DIGEST_LEN) ||
        !cursor_copy(&c, h->salt, SEAL_SALT_LEN) ||
        !cursor_copy(&c, h->key_commitment, 32) ||
        !cursor_get_u16le_prefixed(&c, &key_id) ||
        !cursor_get_u32le_prefixed(&c, &manifest) ||
        !cursor_copy(&c, h->mac, SEAL_MAC_LEN)) {
        st = cai_fail(CAI_ERR_FORMAT, "header fields overrun the declared header length");
        goto out;
    }
    if (cursor_len(&c) != 0) {
        st = cai_fail(CAI_ERR_FORMAT, "header has %zu unexplained trailing bytes", cursor_len(&c));
        goto out;
    }
    if (h->chunk_log2 < SEAL_CHUNK_LOG2_MIN || h->chunk_log2 > SEAL_CHUNK_LOG2_MAX) {
        st = cai_fail(CAI_ERR_FORMAT, "chunk size 2^%u out of range 2^%d..2^%d",
                      h->chunk_log2, SEAL_CHUNK_LOG2_MIN, SEAL_CHUNK_LOG2_MAX);
        goto out;
    }
    if (h->kind != SEAL_KIND_FILE && h->kind != SEAL_KIND_DIR) {
        st = cai_fail(CAI_ERR_UNSUPPORTED, "unknown content kind %u", h->kind);
        goto out;
    }
    if (reserved != 0) {
        st = cai_fail(CAI_ERR_FORMAT, "reserved header field is not zero");
        goto out;
    }
    if (h->plaintext_len > SEAL_PLAINTEXT_MAX) {
        st = cai_fail(CAI_ERR_LIMIT, "plaintext length %llu exceeds the limit of 4 TiB",
                      (unsigned long long)h->plaintext_len);
        goto out;
    }
    if (cursor_len(&key_id) == 0 || cursor_len(&key_id) > SEAL_KEY_ID_MAX) {
        st = cai_fail(CAI_ERR_FORMAT, "key id length %zu out of range 1..%d",
                      cursor_len(&key_id), SEAL_KEY_ID_MAX);
        goto out;
    }
    memcpy(h->key_id, cursor_data(&key_id), cursor_len(&key_id));
    h->key_id[cursor_len(&key_id)] = '\0';
    if (strlen(h->key_id) != cursor_len(&key_id) || !seal_key_id_valid(h->key_id)) {
        st = cai_fail(CAI_ERR_FORMAT, "key id is not a valid kbs:///repo/type/tag URI");
        goto out;
    }
    if (h->kind == SEAL_KIND_FILE && cursor_len(&manifest) != 0) {
        st = cai_fail(CAI_ERR_FORMAT, "a single-file sealed file must not have a manifest");
        goto out;
    }
    if (h->kind == SEAL_KIND_DIR) {
        if (cursor_len(&manifest) > SEAL_MANIFEST_MAX) {
            st = cai_fail(CAI_ERR_LIMIT, "manifest is larger than 16 MiB");
            goto out;
        }
        if ((st = parse_manifest(&manifest, h->plaintext_len, h)) != CAI_OK)
            goto out;
    }
    h->n_chunks = count_chunks(h->plaintext_len, h->chunk_log2);
    h->file_len = h->header_len + h->plaintext_len + SEAL_TAG_LEN * h->n_chunks;
    h->raw = malloc(len);
    if (h->raw == NULL) {
        st = CAI_ERR_NOMEM;
        goto out;
    }
    memcpy(h->raw, bytes, len);
    *out = h;
    return CAI_OK;
out:
    seal_header_free(h);
    return st;
}

cai_status seal_header_read(int fd, seal_header **out) {
    *out = NULL;
    uint8_t prefix[16];
    uint64_t size;
    cai_status st = file_size(fd, &size);
    if (st != CAI_OK)
        return st;
    size_t have = size < sizeof(prefix) ? (size_t)size : sizeof(prefix);
    if ((st = file_pread_full(fd, prefix, have, 0)) != CAI_OK)
        return st;
    seal_header tmp = {0};
    cursor c;
    cursor_init(&c, prefix, have);
    if ((st = parse_prefix(&c, &tmp)) != CAI_OK)
        return st;
    if (tmp.header_len > size)
        return cai_fail(CAI_ERR_TRUNCATED, "sealed file is truncated inside its header "
                        "(%llu of %u bytes)", (unsigned long long)size, tmp.header_len);
    uint8_t *raw = malloc(tmp.header_len);
    if (raw == NULL)
        return CAI_ERR_NOMEM;
    st = file_pread_full(fd, raw, tmp.header_len, 0);
    if (st == CAI_OK)
        st = seal_header_parse(raw, tmp.header_len, out);
    free(raw);
    if (st != CAI_OK)
        return st;
    if (size != (*out)->file_len) {
        st = size < (*out)->file_len
                 ? cai_fail(CAI_ERR_TRUNCATED, "sealed file is truncated: %llu bytes, "
                            "the header declares %llu", (unsigned long long)size,
                            (unsigned long long)(*out)->file_len)
                 : cai_fail(CAI_ERR_TRAILING, "sealed file has %llu bytes after its end",
                            (unsigned long long)(size - (*out)->file_len));
        seal_header_free(*out);
        *out = NULL;
    }
    return st;
}

/* ---- parallel chunk work ----------------------------------------------- */

/* Shared state of a multi-threaded pass over chunks: threads take chunk
 * indices from |next| and the first failure stops everyone. */
typedef struct {
    atomic_uint_fast64_t next;
    atomic_uint_fast64_t done_bytes;
    atomic_int failed;
    pthread_mutex_t mu;
    cai_status st;
    char msg[512];
    uint64_t n_chunks;
    uint64_t total_bytes;
    seal_progress_fn progress;
    void *progress_arg;
} chunk_work;

static void work_init(chunk_work *w, uint64_t n_chunks, uint64_t total,
                      seal_progress_fn progress, void *arg) {
    memset(w, 0, sizeof(*w));
    atomic_init(&w->next, 0);
    atomic_init(&w->done_bytes, 0);
    atomic_init(&w->failed, 0);
    pthread_mutex_init(&w->mu, NULL);
    w->n_chunks = n_chunks;
    w->total_bytes = total;
    w->progress = progress;
    w->progress_arg = arg;
}

static void work_fail(chunk_work *w, cai_status st) {
    pthread_mutex_lock(&w->mu);
    if (w->st == CAI_OK) {
        w->st = st;
        snprintf(w->msg, sizeof(w->msg), "%s", cai_errmsg(st));
    }
    pthread_mutex_unlock(&w->mu);
    atomic_store(&w->failed, 1);
}

/* Returns the next chunk index to process, or UINT64_MAX when done. */
static uint64_t work_next(chunk_work *w) {
    if (atomic_load(&w->failed))
        return UINT64_MAX;
    uint64_t i = atomic_fetch_add(&w->next, 1);
    return i < w->n_chunks ? i : UINT64_MAX;
}

static void work_advance(chunk_work *w, int ith, uint64_t bytes) {
    uint64_t done = atomic_fetch_add(&w->done_bytes, bytes) + bytes;
    if (ith == 0 && w->progress)
        w->progress(done, w->total_bytes, w->progress_arg);
}

static cai_status work_finish(chunk_work *w) {
    pthread_mutex_destroy(&w->mu);
    if (w->st != CAI_OK)
        cai_errmsg_set(w->st, w->msg);
    return w->st;
}

static cai_status run_on_threads(int n_threads, pool_fn fn, void *ctx) {
    pool *p;
    cai_status st = pool_new(n_threads, &p);
    if (st != CAI_OK)
        return st;
    pool_run(p, fn, ctx);
    pool_free(p);
    return CAI_OK;
}

/* ---- sealing ------------------------------------------------------------ */

typedef struct {
    char *name;
    char *path;
    uint64_t size;
    uint32_t mode;
    uint64_t offset;
    struct timespec mtime;
} source_file;

typedef struct {
    source_file *files;
    size_t n, cap;
    uint64_t total;
} source;

static void source_free(source *s) {
    for (size_t i = 0; i < s->n; i++) {
        free(s->files[i].name);
        free(s->files[i].path);
    }
    free(s->files);
    memset(s, 0, sizeof(*s));
}

static cai_status source_add(source *s, const char *name, const char *path,
                             const struct stat *sb) {
    if (s->n == SEAL_MANIFEST_ENTRIES_MAX)
        return cai_fail(CAI_ERR_LIMIT, "more than %u files", SEAL_MANIFEST_ENTRIES_MAX);
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        source_file *f = realloc(s->files, cap * sizeof(*f));
        if (f == NULL)
            return CAI_ERR_NOMEM;
        s->files = f;
        s->cap = cap;
    }
    source_file *f = &s->files[s->n];
    memset(f, 0, sizeof(*f));
    f->name = strdup(name);
    f->path = strdup(path);
    s->n++;
    if (f->name == NULL || f->path == NULL)
        return CAI_ERR_NOMEM;
    f->size = (uint64_t)sb->st_size;
    f->mode = sb->st_mode & 0777;
    f->mtime = sb->st_mtim;
    return CAI_OK;
}

static cai_status source_walk(source *s, const char *dir, const char *prefix, int depth) {
    if (depth > SEAL_DIR_DEPTH_MAX)
        return cai_fail(CAI_ERR_LIMIT, "directories nested deeper than %d levels", SEAL_DIR_DEPTH_MAX);
    DIR *d = opendir(dir);
    if (d == NULL)
        return cai_fail(CAI_ERR_IO, "cannot open directory %s: %s", dir, strerror(errno));
    cai_status st = CAI_OK;
    struct dirent *de;
    while (st == CAI_OK && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char path[8192], name[8192];
        struct stat sb;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        snprintf(name, sizeof(name), "%s%s%s", prefix, *prefix ? "/" : "", de->d_name);
        if (stat(path, &sb) != 0) {
            st = cai_fail(CAI_ERR_IO, "cannot stat %s: %s", path, strerror(errno));
        } else if (S_ISDIR(sb.st_mode)) {
            st = source_walk(s, path, name, depth + 1);
        } else if (S_ISREG(sb.st_mode)) {
            if (!entry_name_valid(name, strlen(name)))
                st = cai_fail(CAI_ERR_INVALID_ARG, "cannot seal a file named %s", name);
            else
                st = source_add(s, name, path, &sb);
        } else {
            st = cai_fail(CAI_ERR_INVALID_ARG, "%s is not a regular file or directory", path);
        }
    }
    closedir(d);
    return st;
}

static int source_cmp(const void *a, const void *b) {
    return strcmp(((const source_file *)a)->name, ((const source_file *)b)->name);
}

static cai_status source_collect(const char *path, source *s, int *out_is_dir) {
    struct stat sb;
    if (stat(path, &sb) != 0)
        return cai_fail(errno == ENOENT ? CAI_ERR_NOT_FOUND : CAI_ERR_IO,
                        "cannot read %s: %s", path, strerror(errno));
    cai_status st;
    if (S_ISREG(sb.st_mode)) {
        *out_is_dir = 0;
        const char *base = strrchr(path, '/');
        st = source_add(s, base ? base + 1 : path, path, &sb);
    } else if (S_ISDIR(sb.st_mode)) {
        *out_is_dir = 1;
        st = source_walk(s, path, "", 0);
        if (st == CAI_OK && s->n == 0)
            st = cai_fail(CAI_ERR_INVALID_ARG, "directory %s has no files to seal", path);
        if (st == CAI_OK)
            qsort(s->files, s->n, sizeof(s->files[0]), source_cmp);
    } else {
        return cai_fail(CAI_ERR_INVALID_ARG, "%s is not a regular file or directory", path);
    }
    for (size_t i = 0; st == CAI_OK && i < s->n; i++) {
        if (s->files[i].size > SEAL_PLAINTEXT_MAX - s->total)
            return cai_fail(CAI_ERR_LIMIT, "input is larger than 4 TiB");
        s->files[i].offset = s->total;
        s->total += s->files[i].size;
    }
    return st;
}

/* Reads |n| plaintext bytes at stream offset |off| across the files. */
static cai_status source_read(const source *s, uint64_t off, uint8_t *out, size_t n) {
    size_t lo = 0, hi = s->n;
    while (hi - lo > 1) { /* the last file with offset <= off */
        size_t mid = (lo + hi) / 2;
        if (s->files[mid].offset <= off)
            lo = mid;
        else
            hi = mid;
    }
    for (size_t i = lo; n > 0 && i < s->n; i++) {
        const source_file *f = &s->files[i];
        if (off >= f->offset + f->size)
            continue;
        uint64_t in_file = off - f->offset;
        size_t take = f->size - in_file < n ? (size_t)(f->size - in_file) : n;
        int fd = open(f->path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return cai_fail(CAI_ERR_IO, "cannot open %s: %s", f->path, strerror(errno));
        cai_status st = file_pread_full(fd, out, take, in_file);
        close(fd);
        if (st == CAI_ERR_TRUNCATED)
            return cai_fail(CAI_ERR_IO, "%s shrank while it was being sealed", f->path);
        if (st != CAI_OK)
            return st;
        out += take;
        off += take;
        n -= take;
    }
    return n == 0 ? CAI_OK : cai_fail(CAI_ERR_INTERNAL, "read past the end of the input");
}

static cai_status source_unchanged(const source *s) {
    for (size_t i = 0; i < s->n; i++) {
        struct stat sb;
        const source_file *f = &s->files[i];
        if (stat(f->path, &sb) != 0 || (uint64_t)sb.st_size != f->size ||
            sb.st_mtim.tv_sec != f->mtime.tv_sec || sb.st_mtim.tv_nsec != f->mtime.tv_nsec)
            return cai_fail(CAI_ERR_IO, "%s changed while it was being sealed", f->path);
    }
    return CAI_OK;
}

typedef cai_status (*range_reader)(const void *ctx, uint64_t off, uint8_t *out, size_t n);

/* SHA-256 of |len| bytes read in 1 MiB steps through |rd|. */
static cai_status digest_range(range_reader rd, const void *ctx, uint64_t len,
                               uint8_t out[SEAL_DIGEST_LEN]) {
    const size_t step = 1u << 20;
    uint8_t *block = malloc(step);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    cai_status st = CAI_OK;
    if (block == NULL || md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        st = block && md ? cai_fail(CAI_ERR_CRYPTO, "SHA-256 failed") : CAI_ERR_NOMEM;
        goto out;
    }
    for (uint64_t off = 0; off < len && st == CAI_OK; off += step) {
        size_t n = len - off < step ? (size_t)(len - off) : step;
        st = rd(ctx, off, block, n);
        if (st == CAI_OK && EVP_DigestUpdate(md, block, n) != 1)
            st = cai_fail(CAI_ERR_CRYPTO, "SHA-256 failed");
    }
    if (st == CAI_OK && EVP_DigestFinal_ex(md, out, NULL) != 1)
        st = cai_fail(CAI_ERR_CRYPTO, "SHA-256 failed");
out:
    EVP_MD_CTX_free(md);
    if (block)
        secure_wipe(block, step);
    free(block);
    return st;
}

static cai_status source_range(const void *ctx, uint64_t off, uint8_t *out, size_t n) {
    return source_read(ctx, off, out, n);
}

static cai_status header_build(const source *s, int is_dir, const char *key_id,
                               unsigned chunk_log2, const uint8_t digest[32],
                               const uint8_t salt[32], const seal_keys *k, buf *out) {
    buf_init(out, SEAL_HEADER_MAX);
    buf manifest;
    buf_init(&manifest, SEAL_MANIFEST_MAX);
    cai_status st = CAI_OK;
    if (is_dir) {
        st = buf_append_u32le(&manifest, (uint32_t)s->n);
        for (size_t i = 0; st == CAI_OK && i < s->n; i++) {
            size_t n = strlen(s->files[i].name);
            st = buf_append_u16le(&manifest, (uint16_t)n);
            if (st == CAI_OK)
                st = buf_append(&manifest, s->files[i].name, n);
            if (st == CAI_OK)
                st = buf_append_u64le(&manifest, s->files[i].size);
            if (st == CAI_OK)
                st = buf_append_u32le(&manifest, s->files[i].mode);
        }
        if (st == CAI_ERR_LIMIT)
            st = cai_fail(st, "the file list is larger than 16 MiB");
    }
    size_t key_id_len = strlen(key_id);
    size_t header_len = 126 + key_id_len + 4 + manifest.len + SEAL_MAC_LEN;
    if (st == CAI_OK) st = buf_append(out, seal_magic, 8);
    if (st == CAI_OK) st = buf_append_u16le(out, SEAL_VERSION);
    if (st == CAI_OK) st = buf_append_u16le(out, SEAL_SUITE_AES256GCM);
    if (st == CAI_OK) st = buf_append_u32le(out, (uint32_t)header_len);
    if (st == CAI_OK) st = buf_append_u8(out, (uint8_t)chunk_log2);
    if (st == CAI_OK) st = buf_append_u8(out, is_dir ? SEAL_KIND_DIR : SEAL_KIND_FILE);
    if (st == CAI_OK) st = buf_append_u16le(out, 0);
    if (st == CAI_OK) st = buf_append_u64le(out, s->total);
    if (st == CAI_OK) st = buf_append(out, digest, 32);
    if (st == CAI_OK) st = buf_append(out, salt, 32);
    if (st == CAI_OK) st = buf_append(out, k->commitment, 32);
    if (st == CAI_OK) st = buf_append_u16le(out, (uint16_t)key_id_len);
    if (st == CAI_OK) st = buf_append(out, key_id, key_id_len);
    if (st == CAI_OK) st = buf_append_u32le(out, (uint32_t)manifest.len);
    if (st == CAI_OK) st = buf_append(out, manifest.data, manifest.len);
    uint8_t mac[SEAL_MAC_LEN];
    if (st == CAI_OK) st = kdf_hmac_sha256(k->mac_key, 32, out->data, out->len, mac);
    if (st == CAI_OK) st = buf_append(out, mac, SEAL_MAC_LEN);
    if (st == CAI_OK)
        CAI_ASSERT(out->len == header_len);
    buf_free(&manifest);
    if (st != CAI_OK)
        buf_free(out);
    return st;
}

typedef struct {
    chunk_work w;
    const source *src;
    int out_fd;
    unsigned chunk_log2;
    uint32_t header_len;
    uint8_t aad[32];
    const uint8_t *payload_key;
} seal_job;

static void seal_worker(void *ctx, int ith, int nth) {
    CAI_UNUSED(nth);
    seal_job *job = ctx;
    size_t csize = (size_t)1 << job->chunk_log2;
    uint8_t *b = malloc(csize + SEAL_TAG_LEN);
    aead *a = NULL;
    cai_status st = b ? aead_new(job->payload_key, &a) : CAI_ERR_NOMEM;
    for (uint64_t i; st == CAI_OK && (i = work_next(&job->w)) != UINT64_MAX;) {
        uint64_t off = i << job->chunk_log2;
        size_t n = job->src->total - off < csize ? (size_t)(job->src->total - off) : csize;
        uint8_t nonce[AEAD_NONCE_LEN];
        chunk_nonce(i, i == job->w.n_chunks - 1, nonce);
        st = source_read(job->src, off, b, n);
        if (st == CAI_OK)
            st = aead_seal(a, nonce, job->aad, 32, b, n, b, b + n);
        if (st == CAI_OK)
            st = file_pwrite_full(job->out_fd, b, n + SEAL_TAG_LEN,
                                  job->header_len + i * (csize + SEAL_TAG_LEN));
        if (st == CAI_OK)
            work_advance(&job->w, ith, n);
    }
    if (st != CAI_OK)
        work_fail(&job->w, st);
    aead_free(a);
    if (b)
        secure_wipe(b, csize + SEAL_TAG_LEN);
    free(b);
}

cai_status seal_path(const char *in_path, const char *out_path,
                     const uint8_t key[SEAL_KEY_LEN], const seal_params *p,
                     uint8_t out_digest[SEAL_DIGEST_LEN]) {
    source src = {0};
    file_atomic fa = {.fd = -1};
    buf header = {0};
    seal_keys keys;
    seal_job job;
    uint8_t salt[SEAL_SALT_LEN], digest[SEAL_DIGEST_LEN];
    unsigned chunk_log2 = p->chunk_log2 ? p->chunk_log2 : SEAL_CHUNK_LOG2_DEFAULT;
    int is_dir = 0;
    cai_status st;

    memset(&keys, 0, sizeof(keys));
    if (p->key_id == NULL || !seal_key_id_valid(p->key_id))
        return cai_fail(CAI_ERR_INVALID_ARG, "key id \"%s\" is not a valid "
                        "kbs://[host]/repository/type/tag URI", p->key_id ? p->key_id : "");
    if (chunk_log2 < SEAL_CHUNK_LOG2_MIN || chunk_log2 > SEAL_CHUNK_LOG2_MAX)
        return cai_fail(CAI_ERR_INVALID_ARG, "chunk size must be a power of two "
                        "from 64 KiB to 64 MiB");
    if ((st = source_collect(in_path, &src, &is_dir)) != CAI_OK)
        goto out;
    if (p->salt)
        memcpy(salt, p->salt, sizeof(salt));
    else if ((st = secure_random(salt, sizeof(salt))) != CAI_OK)
        goto out;
    if ((st = digest_range(source_range, &src, src.total, digest)) != CAI_OK ||
        (st = keys_derive(key, salt, &keys)) != CAI_OK ||
        (st = header_build(&src, is_dir, p->key_id, chunk_log2, digest, salt, &keys,
                           &header)) != CAI_OK)
        goto out;
    if ((st = file_atomic_open(&fa, out_path, 0644)) != CAI_OK ||
        (st = file_pwrite_full(fa.fd, header.data, header.len, 0)) != CAI_OK)
        goto out;

    uint64_t n_chunks = count_chunks(src.total, chunk_log2);
    work_init(&job.w, n_chunks, src.total, p->progress, p->progress_arg);
    job.src = &src;
    job.out_fd = fa.fd;
    job.chunk_log2 = chunk_log2;
    job.header_len = (uint32_t)header.len;
    job.payload_key = keys.payload_key;
    if ((st = kdf_sha256(header.data, header.len, job.aad)) == CAI_OK &&
        (st = run_on_threads(p->n_threads, seal_worker, &job)) == CAI_OK)
        st = work_finish(&job.w);
    else
        (void)work_finish(&job.w);
    if (st != CAI_OK)
        goto out;
    if ((st = source_unchanged(&src)) != CAI_OK ||
        (st = p->replace ? file_atomic_commit(&fa) : file_atomic_commit_new(&fa)) != CAI_OK)
        goto out;
    if (out_digest)
        memcpy(out_digest, digest, SEAL_DIGEST_LEN);
out:
    file_atomic_abort(&fa);
    secure_wipe(&keys, sizeof(keys));
    buf_free(&header);
    source_free(&src);
    return st;
}

/* ---- opening ------------------------------------------------------------ */

struct seal_reader {
    int fd;
    seal_header *h;
    seal_keys keys;
    uint8_t aad[32];
    aead *a; /* for seal_reader_chunk on the caller's thread */
};

void seal_reader_free(seal_reader *r) {
    if (r == NULL)
        return;
    aead_free(r->a);
    seal_header_free(r->h);
    secure_wipe(r, sizeof(*r));
    free(r);
}

cai_status seal_reader_open(int fd, const uint8_t key[SEAL_KEY_LEN], seal_reader **out) {
    *out = NULL;
    seal_reader *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return CAI_ERR_NOMEM;
    r->fd = fd;
    cai_status st = seal_header_read(fd, &r->h);
    if (st != CAI_OK)
        goto fail;
    if ((st = keys_derive(key, r->h->salt, &r->keys)) != CAI_OK)
        goto fail;
    if (!secure_memeq(r->keys.commitment, r->h->key_commitment, 32)) {
        st = cai_fail(CAI_ERR_WRONG_KEY, "wrong key: it does not match the key "
                      "commitment of this sealed file (key id %s)", r->h->key_id);
        goto fail;
    }
    uint8_t mac[SEAL_MAC_LEN];
    if ((st = kdf_hmac_sha256(r->keys.mac_key, 32, r->h->raw,
                              r->h->header_len - SEAL_MAC_LEN, mac)) != CAI_OK)
        goto fail;
    if (!secure_memeq(mac, r->h->mac, SEAL_MAC_LEN)) {
        st = cai_fail(CAI_ERR_AUTH, "header authentication failed: the sealed file's "
                      "header (key id, sizes, digest or file list) was modified");
        goto fail;
    }
    if ((st = kdf_sha256(r->h->raw, r->h->header_len, r->aad)) != CAI_OK ||
        (st = aead_new(r->keys.payload_key, &r->a)) != CAI_OK)
        goto fail;
    *out = r;
    return CAI_OK;
fail:
    seal_reader_free(r);
    return st;
}

const seal_header *seal_reader_header(const seal_reader *r) { return r->h; }

/* Ciphertext is read and decrypted in slices that stay in the CPU cache. */
#define SEAL_SLICE ((size_t)256 << 10)

/* Decrypts chunk |index| with |a|, reading ciphertext through |tmp|
 * (SEAL_SLICE bytes). Plaintext goes to |dst| when it is not NULL, else it is
 * written to |out_fd| at the chunk's plaintext offset; with |md|, each slice
 * is also hashed while in cache (before the tag is checked: the caller uses
 * the digest only if every chunk verified). Sets |out_len|. */
static cai_status chunk_decrypt(const seal_reader *r, aead *a, uint64_t index, uint8_t *tmp,
                                uint8_t *dst, int out_fd, EVP_MD_CTX *md, size_t *out_len) {
    const seal_header *h = r->h;
    size_t csize = (size_t)1 << h->chunk_log2;
    if (index >= h->n_chunks)
        return cai_fail(CAI_ERR_INVALID_ARG, "chunk %llu does not exist (%llu chunks)",
                        (unsigned long long)index, (unsigned long long)h->n_chunks);
    uint64_t plain_off = index << h->chunk_log2;
    uint64_t file_off = chunk_file_off(h, index);
    size_t n = h->plaintext_len - plain_off < csize ? (size_t)(h->plaintext_len - plain_off) : csize;
    uint8_t nonce[AEAD_NONCE_LEN], tag[SEAL_TAG_LEN];
    chunk_nonce(index, index == h->n_chunks - 1, nonce);
    cai_status st = file_pread_full(r->fd, tag, SEAL_TAG_LEN, file_off + n);
    if (st == CAI_OK)
        st = aead_open_init(a, nonce, r->aad, sizeof(r->aad));
    for (size_t off = 0; st == CAI_OK && off < n; off += SEAL_SLICE) {
        size_t k = n - off < SEAL_SLICE ? n - off : SEAL_SLICE;
        st = file_pread_full(r->fd, tmp, k, file_off + off);
        if (st == CAI_OK)
            st = aead_open_update(a, tmp, k, dst ? dst + off : tmp);
        if (st == CAI_OK && md && EVP_DigestUpdate(md, dst ? dst + off : tmp, k) != 1)
            st = cai_fail(CAI_ERR_CRYPTO, "SHA-256 failed");
        if (st == CAI_OK && dst == NULL)
            st = file_pwrite_full(out_fd, tmp, k, plain_off + off);
    }
    if (st == CAI_OK)
        st = aead_open_final(a, tag);
    if (st == CAI_ERR_TRUNCATED)
        return cai_fail(st, "sealed file is truncated in chunk %llu", (unsigned long long)index);
    if (st == CAI_ERR_AUTH) {
        if (dst)
            secure_wipe(dst, n);
        return cai_fail(st, "chunk %llu of %llu failed authentication: the sealed file "
                        "was tampered with or corrupted", (unsigned long long)index,
                        (unsigned long long)h->n_chunks);
    }
    *out_len = n;
    return st;
}

cai_status seal_reader_chunk(seal_reader *r, uint64_t index, uint8_t *out, size_t *out_len) {
    uint8_t *tmp = malloc(SEAL_SLICE);
    if (tmp == NULL)
        return CAI_ERR_NOMEM;
    cai_status st = chunk_decrypt(r, r->a, index, tmp, out, -1, NULL, out_len);
    free(tmp); /* held only ciphertext */
    return st;
}

/* A pass that decrypts every chunk on n threads. With |md| set (and |dst|),
 * the plaintext is also hashed in chunk order as it is decrypted, under
 * |hash_mu|: a worker that takes the next chunk to hash while no one hashes
 * hashes it slice by slice as it decrypts it; a worker that finds the next
 * chunk to hash already decrypted feeds it and any ready ones after it to
 * |md| from |dst|; the others keep decrypting. Hashing is serial, so this
 * overlaps it with decryption instead of running it after. */
typedef struct {
    chunk_work w;
    seal_reader *r;
    uint8_t *dst; /* plaintext mapping, or NULL to write to out_fd */
    int out_fd;
    EVP_MD_CTX *md;               /* NULL: no digest */
    int drop_cache;               /* drop each chunk's ciphertext from the page cache */
    atomic_uchar *ready;          /* [n_chunks]: decrypted and authenticated
                                   * (NULL: no digest, no drop_cache) */
    atomic_uint_fast64_t hashed;  /* chunks fed to md, in order */
    pthread_mutex_t hash_mu;
    uint64_t done;                /* the first chunk not yet ready (under done_mu) */
    uint64_t dropped;             /* the ciphertext bytes dropped (under done_mu) */
    pthread_mutex_t done_mu;
    pthread_cond_t done_cv;       /* done moved, or the pass failed */
} open_job;

static size_t chunk_len(const seal_header *h, uint64_t index) {
    uint64_t left = h->plaintext_len - (index << h->chunk_log2), csz = 1ull << h->chunk_log2;
    return (size_t)(left < csz ? left : csz);
}

/* Hashes chunk |i| from the plaintext mapping. */
static cai_status hash_chunk(open_job *job, uint64_t i) {
    const seal_header *h = job->r->h;
    size_t n = chunk_len(h, i); /* 0 only for the one chunk of an empty file */
    return n == 0 || EVP_DigestUpdate(job->md, job->dst + (i << h->chunk_log2), n) == 1
               ? CAI_OK : cai_fail(CAI_ERR_CRYPTO, "SHA-256 failed");
}

/* Feeds the chunks that are ready, from the first not yet hashed on, to the
 * digest. Returns at once if another thread holds the hash: that thread
 * checks again for ready chunks after it lets go, so none is left behind. */
static void hash_ready(open_job *job) {
    const seal_header *h = job->r->h;
    for (;;) {
        uint64_t i = atomic_load(&job->hashed);
        if (atomic_load(&job->w.failed) || i >= h->n_chunks || !atomic_load(&job->ready[i]) ||
            pthread_mutex_trylock(&job->hash_mu) != 0)
            return;
        while ((i = atomic_load(&job->hashed)) < h->n_chunks && atomic_load(&job->ready[i]) &&
               !atomic_load(&job->w.failed)) {
            cai_status st = hash_chunk(job, i);
            if (st != CAI_OK) {
                work_fail(&job->w, st);
                break;
            }
            atomic_store(&job->hashed, i + 1);
        }
        pthread_mutex_unlock(&job->hash_mu);
    }
}

/* How many chunks a worker may start past the first one not yet done. */
#define SEAL_AHEAD 4
#define SEAL_DROP_ALIGN ((uint64_t)2 << 20)

/* Marks chunk |i| done and moves the watermark of chunks done in order;
 * with drop_cache, drops their ciphertext from the page cache: read once,
 * its pages go back just before the next chunks take new ones for their
 * plaintext, and are reused (on a VM, fresh guest memory is slow to touch:
 * filling 4.7 GB this way took 0.4 s here, from never-used memory 3 to
 * 10 s). */
static void chunk_done(open_job *job, uint64_t i) {
    const seal_header *h = job->r->h;
    atomic_store(&job->ready[i], 1);
    pthread_mutex_lock(&job->done_mu);
    uint64_t d = job->done;
    while (d < h->n_chunks && atomic_load(&job->ready[d]))
        d++;
    /* Up to a 2 MiB boundary of the file: the page cache may hold it in
     * folios of up to 2 MiB, and a folio the range cuts is not dropped. */
    uint64_t to = d == h->n_chunks ? h->file_len : chunk_file_off(h, d) & ~(SEAL_DROP_ALIGN - 1);
    if (job->drop_cache && to > job->dropped) {
        (void)posix_fadvise(job->r->fd, (off_t)job->dropped, (off_t)(to - job->dropped), POSIX_FADV_DONTNEED);
        job->dropped = to;
    }
    job->done = d;
    pthread_cond_broadcast(&job->done_cv);
    pthread_mutex_unlock(&job->done_mu);
}

/* Waits until chunk |i| is at most SEAL_AHEAD past the first chunk not
 * done: no worker runs far ahead of the others (one hashing as it decrypts
 * is slower), so the memory each chunk takes is what the chunks just done
 * gave back. The first chunk not done is in a worker's hands and that
 * worker never waits, so this cannot deadlock. Returns 0 if the pass
 * failed meanwhile. */
static int wait_turn(open_job *job, uint64_t i) {
    pthread_mutex_lock(&job->done_mu);
    while (i >= job->done + SEAL_AHEAD && !atomic_load(&job->w.failed))
        pthread_cond_wait(&job->done_cv, &job->done_mu);
    pthread_mutex_unlock(&job->done_mu);
    return !atomic_load(&job->w.failed);
}

static void open_worker(void *ctx, int ith, int nth) {
    CAI_UNUSED(nth);
    open_job *job = ctx;
    const seal_header *h = job->r->h;
    uint8_t *tmp = malloc(SEAL_SLICE);
    aead *a = NULL;
    cai_status st = tmp ? aead_new(job->r->keys.payload_key, &a) : CAI_ERR_NOMEM;
    for (uint64_t i; st == CAI_OK && (i = work_next(&job->w)) != UINT64_MAX;) {
        size_t n;
        if (job->ready && !wait_turn(job, i))
            break;
        uint8_t *dst = job->dst ? job->dst + (i << h->chunk_log2) : NULL;
        if (dst) /* fault the chunk's pages in with one call, not one fault per page */
            (void)madvise(dst, chunk_len(h, i), MADV_POPULATE_WRITE);
        /* The next chunk to hash, and no one hashing: hash it slice by slice
         * as it is decrypted (no other thread can hash past it meanwhile). */
        int inline_hash = job->md && atomic_load(&job->hashed) == i &&
                          pthread_mutex_trylock(&job->hash_mu) == 0;
        st = chunk_decrypt(job->r, a, i, tmp, dst, job->out_fd, inline_hash ? job->md : NULL, &n);
        if (st == CAI_OK)
            work_advance(&job->w, ith, n);
        if (st == CAI_OK && job->ready)
            chunk_done(job, i); /* after the tag verified */
        if (inline_hash) {
            if (st == CAI_OK)
                atomic_store(&job->hashed, i + 1);
            pthread_mutex_unlock(&job->hash_mu);
        }
        if (st == CAI_OK && job->md)
            hash_ready(job);
    }
    if (st != CAI_OK) {
        work_fail(&job->w, st);
        if (job->ready) { /* wake the workers waiting their turn */
            pthread_mutex_lock(&job->done_mu);
            pthread_cond_broadcast(&job->done_cv);
            pthread_mutex_unlock(&job->done_mu);
        }
    }
    aead_free(a);
    if (tmp)
        secure_wipe(tmp, SEAL_SLICE);
    free(tmp);
}

/* Decrypts every chunk to |dst| or |out_fd|. With |out_digest| (and |dst|)
 * also computes SHA-256 over the whole plaintext, in order. */
static cai_status decrypt_all(seal_reader *r, uint8_t *dst, int out_fd, int n_threads,
                              seal_progress_fn progress, void *arg, int drop_cache,
                              uint8_t out_digest[SEAL_DIGEST_LEN]) {
    const seal_header *h = r->h;
    open_job job;
    cai_status st = CAI_OK;
    work_init(&job.w, h->n_chunks, h->plaintext_len, progress, arg);
    job.r = r;
    job.dst = dst;
    job.out_fd = out_fd;
    job.md = NULL;
    job.drop_cache = drop_cache;
    job.ready = NULL;
    atomic_init(&job.hashed, 0);
    pthread_mutex_init(&job.hash_mu, NULL);
    job.done = 0;
    job.dropped = 0;
    pthread_mutex_init(&job.done_mu, NULL);
    pthread_cond_init(&job.done_cv, NULL);
    if (out_digest || drop_cache) {
        job.ready = calloc((size_t)h->n_chunks, sizeof(*job.ready)); /* n_chunks <= 2^26 */
        if (job.ready == NULL) {
            st = CAI_ERR_NOMEM;
            goto out;
        }
        for (uint64_t i = 0; i < h->n_chunks; i++)
            atomic_init(&job.ready[i], 0);
    }
    if (out_digest) {
        CAI_ASSERT(dst != NULL);
        if ((job.md = EVP_MD_CTX_new()) == NULL) {
            st = CAI_ERR_NOMEM;
            goto out;
        }
        if (EVP_DigestInit_ex(job.md, EVP_sha256(), NULL) != 1) {
            st = cai_fail(CAI_ERR_CRYPTO, "SHA-256 failed");
            goto out;
        }
    }
    st = run_on_threads(n_threads, open_worker, &job);
    if (st == CAI_OK && job.md && atomic_load(&job.hashed) < h->n_chunks &&
        !atomic_load(&job.w.failed)) /* the workers are done: this thread alone */
        hash_ready(&job);
    if (st == CAI_OK && job.md) {
        if (atomic_load(&job.w.failed) == 0) {
            CAI_ASSERT(atomic_load(&job.hashed) == h->n_chunks);
            if (EVP_DigestFinal_ex(job.md, out_digest, NULL) != 1)
                work_fail(&job.w, cai_fail(CAI_ERR_CRYPTO, "SHA-256 failed"));
        }
    }
out:
    if (drop_cache) /* the header's pages, and any a failure left */
        (void)posix_fadvise(r->fd, 0, 0, POSIX_FADV_DONTNEED);
    cai_status wst = work_finish(&job.w);
    pthread_mutex_destroy(&job.hash_mu);
    pthread_mutex_destroy(&job.done_mu);
    pthread_cond_destroy(&job.done_cv);
    EVP_MD_CTX_free(job.md);
    free(job.ready);
    return st != CAI_OK ? st : wst;
}

cai_status seal_reader_decrypt_to_fd(seal_reader *r, int out_fd, int n_threads,
                                     seal_progress_fn progress, void *arg) {
    return decrypt_all(r, NULL, out_fd, n_threads, progress, arg, 0, NULL);
}

cai_status seal_reader_decrypt_to_mem(seal_reader *r, uint8_t *dst, int n_threads,
                                      seal_progress_fn progress, void *arg) {
    return decrypt_all(r, dst, -1, n_threads, progress, arg, 0, NULL);
}

static cai_status fd_range(const void *ctx, uint64_t off, uint8_t *out, size_t n) {
    return file_pread_full(*(const int *)ctx, out, n, off);
}

cai_status seal_digest_fd(int fd, uint64_t len, uint8_t out[SEAL_DIGEST_LEN]) {
    return digest_range(fd_range, &fd, len, out);
}

cai_status seal_unseal_mem(int sealed_fd, const uint8_t key[SEAL_KEY_LEN], int n_threads,
                           unsigned flags, uint8_t **out, uint64_t *out_len,
                           uint8_t out_digest[SEAL_DIGEST_LEN]) {
    *out = NULL;
    *out_len = 0;
    seal_reader *r = NULL;
    void *mem = NULL;
    uint8_t digest[SEAL_DIGEST_LEN];
    cai_status st = seal_reader_open(sealed_fd, key, &r);
    if (st != CAI_OK)
        return st;
    const seal_header *h = r->h;
    /* Anonymous memory, each chunk decrypted into it (open_worker faults a
     * chunk's pages in with one call): a VM makes the first touch of fresh
     * memory costly, and a memfd filled with pwrite paid it per 4 KiB page
     * behind the file's lock (3.5 to 9 s for 4.7 GB here, against 0.2 to
     * 0.4 s for 2 MiB pages). */
    if (h->plaintext_len > SIZE_MAX)
        st = cai_fail(CAI_ERR_LIMIT, "the model does not fit in the address space");
    if (st == CAI_OK && (st = secure_map((size_t)h->plaintext_len, &mem)) == CAI_OK)
        st = decrypt_all(r, mem, -1, n_threads, NULL, NULL, !!(flags & SEAL_DROP_CACHE),
                         (flags & SEAL_VERIFY_DIGEST) ? digest : NULL);
    if (st == CAI_OK && (flags & SEAL_VERIFY_DIGEST) && !secure_memeq(digest, h->digest, SEAL_DIGEST_LEN))
        st = cai_fail(CAI_ERR_AUTH, "plaintext digest does not match the sealed header");
    if (st == CAI_OK) {
        memcpy(out_digest, h->digest, SEAL_DIGEST_LEN);
        *out = mem;
        *out_len = h->plaintext_len;
    } else {
        secure_unmap(mem, (size_t)h->plaintext_len);
    }
    seal_reader_free(r);
    return st;
}

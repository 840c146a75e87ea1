/* seal.h - the sealed model format v1 (docs/SEALED-FORMAT.md).
 *
 * Sealing (trusted side): seal_path encrypts a file or a directory into a
 * sealed file. Opening (TEE side): seal_header_read parses a header without
 * a key; seal_reader_open checks the key; seal_reader_chunk decrypts one chunk;
 * seal_reader_decrypt_to_fd decrypts everything on N threads; seal_unseal_mem
 * does all of it into memory. */
#ifndef CAI_SEAL_SEAL_H
#define CAI_SEAL_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

#define SEAL_KEY_LEN 32
#define SEAL_DIGEST_LEN 32
#define SEAL_SALT_LEN 32
#define SEAL_TAG_LEN 16
#define SEAL_VERSION 1
#define SEAL_SUITE_AES256GCM 1
#define SEAL_CHUNK_LOG2_MIN 16
#define SEAL_CHUNK_LOG2_MAX 26
#define SEAL_CHUNK_LOG2_DEFAULT 22
#define SEAL_KEY_ID_MAX 512
#define SEAL_PLAINTEXT_MAX (1ull << 42)
#define SEAL_MANIFEST_MAX (16u << 20)
#define SEAL_MANIFEST_ENTRIES_MAX 100000u
#define SEAL_NAME_MAX 4096
#define SEAL_HEADER_MIN (126 + 1 + 4 + 32)
#define SEAL_HEADER_MAX (126 + SEAL_KEY_ID_MAX + 4 + SEAL_MANIFEST_MAX + 32)

enum { SEAL_KIND_FILE = 0, SEAL_KIND_DIR = 1 };

typedef struct {
    char *name;     /* relative path, NUL-terminated */
    uint64_t size;
    uint32_t mode;  /* permission bits */
    uint64_t offset; /* where its bytes start in the plaintext */
} seal_entry;

/* A parsed header. All fields are as found in the file; the structure was
 * validated, but nothing is authenticated until seal_reader_open succeeds. */
typedef struct {
    uint16_t version;
    uint16_t suite;
    uint32_t header_len;
    uint8_t chunk_log2;
    uint8_t kind;
    uint64_t plaintext_len;
    uint8_t digest[SEAL_DIGEST_LEN];
    uint8_t salt[SEAL_SALT_LEN];
    uint8_t key_commitment[32];
    char key_id[SEAL_KEY_ID_MAX + 1];
    uint32_t n_entries;
    seal_entry *entries; /* kind DIR only */
    uint8_t mac[32];
    uint64_t n_chunks;
    uint64_t file_len; /* header_len + plaintext_len + 16 * n_chunks */
    uint8_t *raw;      /* the header bytes as read (header_len) */
} seal_header;

/* Called as work progresses with the plaintext bytes done so far. */
typedef void (*seal_progress_fn)(uint64_t done, uint64_t total, void *arg);

/* seal_key_id_valid returns 1 if |key_id| is a valid KBS resource URI
 * "kbs://[host]/repo/type/tag" (see the spec), else 0. */
int seal_key_id_valid(const char *key_id);

/* seal_header_parse parses and validates the header bytes |buf| of |len|
 * (exactly header_len). On success *out is a new header (free with
 * seal_header_free). Needs no key. */
cai_status seal_header_parse(const uint8_t *buf, size_t len, seal_header **out) CAI_WUR;

/* seal_header_read reads the header of the sealed file |fd| and checks the
 * file's length against it. */
cai_status seal_header_read(int fd, seal_header **out) CAI_WUR;

void seal_header_free(seal_header *h);

typedef struct {
    const char *key_id;       /* required */
    unsigned chunk_log2;      /* 0 = default */
    int n_threads;            /* 0 = one per CPU */
    const uint8_t *salt;      /* NULL = random; fixed only for test vectors */
    seal_progress_fn progress;
    void *progress_arg;
    int replace;              /* an existing OUT is replaced; else it must not exist */
} seal_params;

/* seal_path seals the file or directory |in_path| into |out_path| under
 * |key|. The output appears only when complete. On success the plaintext's
 * SHA-256 is written to |out_digest| if not NULL. */
cai_status seal_path(const char *in_path, const char *out_path,
                     const uint8_t key[SEAL_KEY_LEN], const seal_params *p,
                     uint8_t out_digest[SEAL_DIGEST_LEN]) CAI_WUR;

typedef struct seal_reader seal_reader;

/* seal_reader_open reads the header of |fd| (which stays owned by the
 * caller and must outlive the reader), checks the file length, the key
 * commitment (CAI_ERR_WRONG_KEY) and the header MAC (CAI_ERR_AUTH). */
cai_status seal_reader_open(int fd, const uint8_t key[SEAL_KEY_LEN],
                            seal_reader **out) CAI_WUR;

/* seal_reader_header returns the (now authenticated) header. */
const seal_header *seal_reader_header(const seal_reader *r);

/* seal_reader_chunk decrypts chunk |index| alone into |out|, which must hold
 * the chunk size; sets |out_len|. CAI_ERR_AUTH if the chunk was tampered
 * with (|out| is then wiped). */
cai_status seal_reader_chunk(seal_reader *r, uint64_t index, uint8_t *out,
                             size_t *out_len) CAI_WUR;

/* seal_reader_decrypt_to_fd decrypts every chunk on |n_threads| threads and
 * writes chunk i at offset i * chunk_size of |out_fd|. On failure the
 * contents of |out_fd| are undefined and must be discarded. */
cai_status seal_reader_decrypt_to_fd(seal_reader *r, int out_fd, int n_threads,
                                     seal_progress_fn progress, void *arg) CAI_WUR;

/* seal_reader_decrypt_to_mem is the same into |dst|, which holds
 * plaintext_len bytes. On failure |dst| holds garbage and must be discarded. */
cai_status seal_reader_decrypt_to_mem(seal_reader *r, uint8_t *dst, int n_threads,
                                      seal_progress_fn progress, void *arg) CAI_WUR;

void seal_reader_free(seal_reader *r);

enum { SEAL_VERIFY_DIGEST = 1, SEAL_DROP_CACHE = 2 };

/* seal_unseal_mem decrypts the sealed file |sealed_fd| into new private
 * memory (common/secure.h secure_map: 2 MiB pages, not in core dumps),
 * returned writable in |out| with its length in |out_len| (free it with
 * secure_unmap(*out, *out_len)), and the authenticated model digest in
 * |out_digest|. Each chunk is decrypted straight into its place.
 * With SEAL_VERIFY_DIGEST in |flags| the digest is also recomputed over the
 * plaintext, in chunk order as the chunks are decrypted, and compared with
 * the header's (CAI_ERR_AUTH).
 * With SEAL_DROP_CACHE each chunk's ciphertext is dropped from the page
 * cache once decrypted (POSIX_FADV_DONTNEED): it is read once, so the
 * unseal holds one copy of the model, not two.
 * Nothing is returned unless everything verified. */
cai_status seal_unseal_mem(int sealed_fd, const uint8_t key[SEAL_KEY_LEN], int n_threads,
                           unsigned flags, uint8_t **out, uint64_t *out_len,
                           uint8_t out_digest[SEAL_DIGEST_LEN]) CAI_WUR;

/* seal_digest_fd computes SHA-256 over the first |len| bytes of |fd|. */
cai_status seal_digest_fd(int fd, uint64_t len, uint8_t out[SEAL_DIGEST_LEN]) CAI_WUR;

#endif

/* seal_forge.h - a sealed file with another digest in its header, as a
 * sealer holding the key could make it: for the tests that check the
 * digest is verified after decryption. */
#ifndef CAI_TESTS_SEAL_FORGE_H
#define CAI_TESTS_SEAL_FORGE_H

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/file.h"
#include "crypto/aead.h"
#include "crypto/kdf.h"
#include "seal/seal.h"
#include "test.h"

/* Re-seals |in| into |out| with |digest| in the header instead of the
 * plaintext's, as a sealer holding the key could: the header MAC and every
 * chunk (whose associated data is the header's hash) redone under |k|, by
 * the format's rules (docs/SEALED-FORMAT.md). */
static void forge_digest(const char *in, const char *out, const uint8_t k[32], const uint8_t digest[32]) {
    int fd = open(in, O_RDONLY | O_CLOEXEC), ofd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CAI_ASSERT(fd >= 0 && ofd >= 0);
    seal_reader *r = NULL;
    CHECK_OK(seal_reader_open(fd, k, &r));
    CAI_ASSERT(r != NULL);
    const seal_header *h = seal_reader_header(r);
    uint8_t *raw = malloc(h->header_len);
    CAI_ASSERT(raw);
    memcpy(raw, h->raw, h->header_len);
    CHECK(memcmp(raw + 28, h->digest, 32) == 0); /* where the format keeps it */
    memcpy(raw + 28, digest, 32);
    uint8_t prk[32], mac_key[32], payload_key[32], aad[32];
    CHECK_OK(kdf_hkdf_extract(h->salt, 32, k, 32, prk));
    CHECK_OK(kdf_hkdf_expand(prk, "cai-seal/v1 header-mac", mac_key, 32));
    CHECK_OK(kdf_hkdf_expand(prk, "cai-seal/v1 payload", payload_key, 32));
    CHECK_OK(kdf_hmac_sha256(mac_key, 32, raw, h->header_len - 32, raw + h->header_len - 32));
    CHECK_OK(kdf_sha256(raw, h->header_len, aad));
    CHECK_OK(file_pwrite_full(ofd, raw, h->header_len, 0));
    size_t csize = (size_t)1 << h->chunk_log2;
    uint8_t *b = malloc(csize + AEAD_TAG_LEN);
    aead *a = NULL;
    CHECK_OK(aead_new(payload_key, &a));
    CAI_ASSERT(b && a);
    for (uint64_t i = 0; i < h->n_chunks; i++) {
        size_t n = 0;
        uint8_t nonce[AEAD_NONCE_LEN] = {0};
        for (int j = 0; j < 8; j++)
            nonce[10 - j] = (uint8_t)(i >> (8 * j));
        nonce[11] = i == h->n_chunks - 1;
        CHECK_OK(seal_reader_chunk(r, i, b, &n));
        CHECK_OK(aead_seal(a, nonce, aad, 32, b, n, b, b + n));
        CHECK_OK(file_pwrite_full(ofd, b, n + AEAD_TAG_LEN, h->header_len + i * (csize + AEAD_TAG_LEN)));
    }
    aead_free(a);
    free(b);
    free(raw);
    seal_reader_free(r);
    close(fd);
    close(ofd);
}

#endif

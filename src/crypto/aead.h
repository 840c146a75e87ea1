/* aead.h - AES-256-GCM with a key set once and a 96-bit nonce per message.
 *
 * aead_open releases plaintext only when the tag verifies: on failure the
 * output buffer is wiped. Callers never choose nonces freely: formats derive
 * them (see seal.c). */
#ifndef CAI_CRYPTO_AEAD_H
#define CAI_CRYPTO_AEAD_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

#define AEAD_KEY_LEN 32
#define AEAD_NONCE_LEN 12
#define AEAD_TAG_LEN 16

typedef struct aead aead;

/* aead_new returns a context keyed with |key| in |out|. */
cai_status aead_new(const uint8_t key[AEAD_KEY_LEN], aead **out) CAI_WUR;

/* aead_free wipes and frees |a|. NULL is ok. */
void aead_free(aead *a);

/* aead_seal encrypts |n| bytes from |in| to |out| (may be equal) and writes
 * the tag. */
cai_status aead_seal(aead *a, const uint8_t nonce[AEAD_NONCE_LEN], const void *aad,
                     size_t aad_len, const uint8_t *in, size_t n, uint8_t *out,
                     uint8_t tag[AEAD_TAG_LEN]) CAI_WUR;

/* aead_open decrypts and verifies; CAI_ERR_AUTH when the tag does not match
 * (then |out| is wiped). */
cai_status aead_open(aead *a, const uint8_t nonce[AEAD_NONCE_LEN], const void *aad,
                     size_t aad_len, const uint8_t *in, size_t n,
                     const uint8_t tag[AEAD_TAG_LEN], uint8_t *out) CAI_WUR;

/* Streaming decryption of one message, for messages too large to hold or
 * best processed in cache-sized slices: aead_open_init, then
 * aead_open_update for consecutive pieces, then aead_open_final. The output
 * of aead_open_update is NOT authenticated until aead_open_final returns
 * CAI_OK; on CAI_ERR_AUTH the caller must wipe and discard all of it. */
cai_status aead_open_init(aead *a, const uint8_t nonce[AEAD_NONCE_LEN], const void *aad,
                          size_t aad_len) CAI_WUR;
cai_status aead_open_update(aead *a, const uint8_t *in, size_t n, uint8_t *out) CAI_WUR;
cai_status aead_open_final(aead *a, const uint8_t tag[AEAD_TAG_LEN]) CAI_WUR;

#endif

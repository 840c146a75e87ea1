#include "common/secure.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <limits.h>
#include <stdint.h>
#include <sys/mman.h>

void secure_wipe(void *p, size_t n) {
    if (p != NULL && n > 0)
        OPENSSL_cleanse(p, n);
}

int secure_memeq(const void *a, const void *b, size_t n) {
    return CRYPTO_memcmp(a, b, n) == 0;
}

cai_status secure_random(void *out, size_t n) {
    if (n > (size_t)INT_MAX)
        return CAI_ERR_INVALID_ARG;
    if (RAND_priv_bytes(out, (int)n) != 1)
        return cai_fail(CAI_ERR_CRYPTO, "the random number generator failed");
    return CAI_OK;
}

#define SECURE_HUGE ((size_t)2 << 20)

/* The bytes mapped for |size|: whole huge pages, at least one. */
static size_t map_len(size_t size) {
    return size == 0 ? SECURE_HUGE : (size + SECURE_HUGE - 1) & ~(SECURE_HUGE - 1);
}

cai_status secure_map(size_t size, void **out) {
    *out = NULL;
    if (size > SIZE_MAX - 2 * SECURE_HUGE)
        return cai_fail(CAI_ERR_NOMEM, "cannot map %zu bytes", size);
    size_t len = map_len(size);
    /* Mapped one huge page longer, then trimmed to a 2 MiB boundary. */
    uint8_t *raw = mmap(NULL, len + SECURE_HUGE, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED)
        return cai_fail(CAI_ERR_NOMEM, "cannot map %zu bytes of memory", size);
    uint8_t *p = (uint8_t *)(((uintptr_t)raw + SECURE_HUGE - 1) & ~(uintptr_t)(SECURE_HUGE - 1));
    if (p > raw)
        munmap(raw, (size_t)(p - raw));
    munmap(p + len, SECURE_HUGE - (size_t)(p - raw));
    (void)madvise(p, len, MADV_HUGEPAGE); /* advice: fine if refused */
    (void)madvise(p, len, MADV_DONTDUMP);
    *out = p;
    return CAI_OK;
}

void secure_unmap(void *p, size_t size) {
    if (p != NULL)
        munmap(p, map_len(size));
}

#include "common/secure.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <limits.h>

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

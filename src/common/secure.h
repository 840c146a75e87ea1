/* secure.h - handling of secrets: wiping, constant-time comparison and the
 * operating system's CSPRNG. */
#ifndef CAI_COMMON_SECURE_H
#define CAI_COMMON_SECURE_H

#include <stddef.h>

#include "common/status.h"

/* secure_wipe overwrites |n| bytes at |p| with zeros in a way the compiler
 * cannot remove. NULL is ok. */
void secure_wipe(void *p, size_t n);

/* secure_memeq returns 1 if the |n| bytes at |a| and |b| are equal, else 0,
 * in time that depends only on |n|. */
int secure_memeq(const void *a, const void *b, size_t n);

/* secure_random fills |out| with |n| bytes from the CSPRNG. */
cai_status secure_random(void *out, size_t n) CAI_WUR;

#endif

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

/* secure_map returns |size| bytes of new zeroed private memory for a
 * secret too large for malloc (a model's plaintext): anonymous, aligned to
 * 2 MiB and asking for transparent huge pages (a first touch of fresh
 * memory costs per page: under a hypervisor or a TD's page acceptance a
 * 4 KiB page costs about as much as a 2 MiB one), and left out of core
 * dumps. Free it with secure_unmap. Fails with CAI_ERR_NOMEM. */
cai_status secure_map(size_t size, void **out) CAI_WUR;

/* secure_unmap returns the memory of secure_map(size) to the system, which
 * zeroes it before any other use. NULL is ok. */
void secure_unmap(void *p, size_t size);

/* secure_random fills |out| with |n| bytes from the CSPRNG. */
cai_status secure_random(void *out, size_t n) CAI_WUR;

#endif

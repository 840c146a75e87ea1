/* keyfile.h - 256-bit key files: 32 raw bytes, or 64 hex digits with an
 * optional trailing newline (as `openssl rand -hex 32` writes them). */
#ifndef CAI_SEAL_KEYFILE_H
#define CAI_SEAL_KEYFILE_H

#include <stdint.h>

#include "common/status.h"

#define KEYFILE_KEY_LEN 32

/* keyfile_read loads the key at |path| into |key|. A file readable by group
 * or others is refused (CAI_ERR_INVALID_ARG): keys are 0600. */
cai_status keyfile_read(const char *path, uint8_t key[KEYFILE_KEY_LEN]) CAI_WUR;

/* keyfile_create makes a new key from the CSPRNG, writes it raw to |path|
 * (which must not exist) with mode 0600 and returns it in |key|. */
cai_status keyfile_create(const char *path, uint8_t key[KEYFILE_KEY_LEN]) CAI_WUR;

#endif

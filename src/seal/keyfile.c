#include "seal/keyfile.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "common/buf.h"
#include "common/codec.h"
#include "common/file.h"
#include "common/secure.h"

cai_status keyfile_read(const char *path, uint8_t key[KEYFILE_KEY_LEN]) {
    struct stat sb;
    if (stat(path, &sb) != 0)
        return cai_fail(errno == ENOENT ? CAI_ERR_NOT_FOUND : CAI_ERR_IO,
                        "cannot read key file %s: %s", path, strerror(errno));
    if (sb.st_mode & 077)
        return cai_fail(CAI_ERR_INVALID_ARG, "key file %s is accessible by other users "
                        "(mode %03o); run: chmod 600 %s", path,
                        (unsigned)(sb.st_mode & 0777), path);
    buf b;
    cai_status st = file_read_all(path, 2 * KEYFILE_KEY_LEN + 2, &b);
    if (st == CAI_ERR_LIMIT)
        return cai_fail(CAI_ERR_FORMAT, "key file %s is not a 256-bit key "
                        "(expected 32 bytes or 64 hex digits)", path);
    if (st != CAI_OK)
        return st;
    size_t n = b.len, got = 0;
    if (n == KEYFILE_KEY_LEN) {
        memcpy(key, b.data, KEYFILE_KEY_LEN);
    } else {
        while (n > 0 && (b.data[n - 1] == '\n' || b.data[n - 1] == '\r'))
            n--;
        if (n != 2 * KEYFILE_KEY_LEN ||
            hex_decode((const char *)b.data, n, key, KEYFILE_KEY_LEN, &got) != CAI_OK)
            st = cai_fail(CAI_ERR_FORMAT, "key file %s is not a 256-bit key "
                          "(expected 32 bytes or 64 hex digits)", path);
    }
    buf_free(&b);
    return st;
}

cai_status keyfile_create(const char *path, uint8_t key[KEYFILE_KEY_LEN]) {
    cai_status st = secure_random(key, KEYFILE_KEY_LEN);
    if (st == CAI_OK)
        st = file_write_new(path, key, KEYFILE_KEY_LEN, 0600);
    if (st == CAI_ERR_EXISTS)
        st = cai_fail(st, "key file %s already exists; drop --new-key to use it", path);
    if (st != CAI_OK)
        secure_wipe(key, KEYFILE_KEY_LEN);
    return st;
}

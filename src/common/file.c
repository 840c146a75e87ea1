#include "common/file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/secure.h"

cai_status file_pread_full(int fd, void *out, size_t n, uint64_t off) {
    uint8_t *p = out;
    while (n > 0) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return cai_fail(CAI_ERR_IO, "read failed: %s", strerror(errno));
        }
        if (r == 0)
            return cai_fail(CAI_ERR_TRUNCATED, "unexpected end of file");
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return CAI_OK;
}

cai_status file_pwrite_full(int fd, const void *data, size_t n, uint64_t off) {
    const uint8_t *p = data;
    while (n > 0) {
        ssize_t r = pwrite(fd, p, n, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return cai_fail(CAI_ERR_IO, "write failed: %s", strerror(errno));
        }
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return CAI_OK;
}

cai_status file_write_full(int fd, const void *data, size_t n) {
    const uint8_t *p = data;
    while (n > 0) {
        ssize_t r = write(fd, p, n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return cai_fail(CAI_ERR_IO, "write failed: %s", strerror(errno));
        }
        p += r;
        n -= (size_t)r;
    }
    return CAI_OK;
}

cai_status file_size(int fd, uint64_t *out) {
    struct stat st;
    if (fstat(fd, &st) != 0)
        return cai_fail(CAI_ERR_IO, "stat failed: %s", strerror(errno));
    *out = (uint64_t)st.st_size;
    return CAI_OK;
}

cai_status file_read_fd(int fd, const char *name, size_t max, buf *out) {
    buf_init(out, max);
    cai_status st = CAI_OK;
    for (;;) {
        size_t want = max - out->len < 65536 ? max - out->len : 65536;
        uint8_t probe;
        if (want == 0) {
            /* At the limit: the file must end here. */
            ssize_t r = read(fd, &probe, 1);
            if (r != 0)
                st = r < 0 ? cai_fail(CAI_ERR_IO, "cannot read %s: %s", name, strerror(errno))
                           : cai_fail(CAI_ERR_LIMIT, "%s is larger than %zu bytes", name, max);
            break;
        }
        if ((st = buf_reserve(out, want)) != CAI_OK)
            break;
        ssize_t r = read(fd, out->data + out->len, want);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            st = cai_fail(CAI_ERR_IO, "cannot read %s: %s", name, strerror(errno));
            break;
        }
        if (r == 0)
            break;
        out->len += (size_t)r;
    }
    if (st != CAI_OK)
        buf_free(out);
    else
        st = buf_terminate(out);
    return st;
}

cai_status file_read_all(const char *path, size_t max, buf *out) {
    buf_init(out, max);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cai_fail(errno == ENOENT ? CAI_ERR_NOT_FOUND : CAI_ERR_IO,
                        "cannot open %s: %s", path, strerror(errno));
    cai_status st = file_read_fd(fd, path, max, out);
    close(fd);
    return st;
}

cai_status file_write_new(const char *path, const void *data, size_t n, mode_t mode) {
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return cai_fail(errno == EEXIST ? CAI_ERR_EXISTS : CAI_ERR_IO,
                        "cannot create %s: %s", path, strerror(errno));
    cai_status st = file_write_full(fd, data, n);
    if (st == CAI_OK && fsync(fd) != 0)
        st = cai_fail(CAI_ERR_IO, "cannot sync %s: %s", path, strerror(errno));
    close(fd);
    if (st != CAI_OK)
        unlink(path);
    return st;
}

static void dir_of(const char *path, char *out, size_t cap) {
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s", path);
    snprintf(out, cap, "%s", dirname(tmp));
}

cai_status file_atomic_open(file_atomic *fa, const char *path, mode_t mode) {
    fa->fd = -1;
    fa->tmp[0] = '\0';
    if (strlen(path) >= sizeof(fa->path) - 16)
        return cai_fail(CAI_ERR_INVALID_ARG, "path too long: %s", path);
    snprintf(fa->path, sizeof(fa->path), "%s", path);
    char dir[4096];
    dir_of(path, dir, sizeof(dir));
    fa->fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, mode);
    if (fa->fd >= 0)
        return CAI_OK;
    if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
        return cai_fail(CAI_ERR_IO, "cannot create a file in %s: %s", dir, strerror(errno));
    /* Fallback: a hidden named temporary beside the target. */
    char base[4096];
    snprintf(base, sizeof(base), "%s", path);
    snprintf(fa->tmp, sizeof(fa->tmp), "%s/.%s.XXXXXX", dir, basename(base));
    fa->fd = mkstemp(fa->tmp);
    if (fa->fd < 0) {
        fa->tmp[0] = '\0';
        return cai_fail(CAI_ERR_IO, "cannot create a file in %s: %s", dir, strerror(errno));
    }
    if (fchmod(fa->fd, mode) != 0) {
        file_atomic_abort(fa);
        return cai_fail(CAI_ERR_IO, "cannot set mode: %s", strerror(errno));
    }
    return CAI_OK;
}

/* Names the committed file: |replace| renames over anything at the path;
 * otherwise the name is created only where nothing is (linkat and
 * renameat2 RENAME_NOREPLACE fail with EEXIST, and follow no symlink). */
static cai_status atomic_commit(file_atomic *fa, int replace) {
    cai_status st = CAI_OK;
    if (fsync(fa->fd) != 0) {
        st = cai_fail(CAI_ERR_IO, "cannot sync %s: %s", fa->path, strerror(errno));
        goto fail;
    }
    char proc[64];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fa->fd);
    if (fa->tmp[0] == '\0' && !replace) {
        /* The unnamed file gets its final name directly. */
        if (linkat(AT_FDCWD, proc, AT_FDCWD, fa->path, AT_SYMLINK_FOLLOW) != 0) {
            st = errno == EEXIST ? cai_fail(CAI_ERR_EXISTS, "%s already exists", fa->path)
                                 : cai_fail(CAI_ERR_IO, "cannot create %s: %s", fa->path,
                                            strerror(errno));
            goto fail;
        }
        goto done;
    }
    if (fa->tmp[0] == '\0') {
        /* Give the unnamed file a temporary name, then rename it into place
         * (linkat cannot replace an existing file). */
        char dir[4096], base[4096];
        dir_of(fa->path, dir, sizeof(dir));
        snprintf(base, sizeof(base), "%s", fa->path);
        for (int attempt = 0; attempt < 16; attempt++) {
            uint8_t rnd[6];
            char hex[13];
            if ((st = secure_random(rnd, sizeof(rnd))) != CAI_OK)
                goto fail;
            for (int i = 0; i < 6; i++)
                snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
            snprintf(fa->tmp, sizeof(fa->tmp), "%s/.%s.%s", dir, basename(base), hex);
            if (linkat(AT_FDCWD, proc, AT_FDCWD, fa->tmp, AT_SYMLINK_FOLLOW) == 0)
                break;
            if (errno != EEXIST) {
                st = cai_fail(CAI_ERR_IO, "cannot name %s: %s", fa->path, strerror(errno));
                fa->tmp[0] = '\0';
                goto fail;
            }
            fa->tmp[0] = '\0';
        }
        if (fa->tmp[0] == '\0') {
            st = cai_fail(CAI_ERR_IO, "cannot name %s", fa->path);
            goto fail;
        }
    }
    int r = replace ? rename(fa->tmp, fa->path)
                    : renameat2(AT_FDCWD, fa->tmp, AT_FDCWD, fa->path, RENAME_NOREPLACE);
    if (r != 0 && !replace && errno == EINVAL && link(fa->tmp, fa->path) == 0) {
        r = 0; /* a file system without RENAME_NOREPLACE: link, then drop the temporary */
        unlink(fa->tmp);
    }
    if (r != 0) {
        st = errno == EEXIST && !replace
                 ? cai_fail(CAI_ERR_EXISTS, "%s already exists", fa->path)
                 : cai_fail(CAI_ERR_IO, "cannot rename to %s: %s", fa->path, strerror(errno));
        goto fail;
    }
    fa->tmp[0] = '\0';
done:
    close(fa->fd);
    fa->fd = -1;
    return CAI_OK;
fail:
    file_atomic_abort(fa);
    return st;
}

cai_status file_atomic_commit(file_atomic *fa) { return atomic_commit(fa, 1); }

cai_status file_atomic_commit_new(file_atomic *fa) { return atomic_commit(fa, 0); }

void file_atomic_abort(file_atomic *fa) {
    if (fa->fd >= 0)
        close(fa->fd);
    fa->fd = -1;
    if (fa->tmp[0] != '\0')
        unlink(fa->tmp);
    fa->tmp[0] = '\0';
}

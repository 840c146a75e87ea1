/* file.h - file descriptors and all-or-nothing output files. */
#ifndef CAI_COMMON_FILE_H
#define CAI_COMMON_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/buf.h"
#include "common/status.h"

/* file_pread_full reads exactly |n| bytes at |off|, retrying short reads.
 * Returns CAI_ERR_TRUNCATED at end of file, CAI_ERR_IO on error. */
cai_status file_pread_full(int fd, void *out, size_t n, uint64_t off) CAI_WUR;

/* file_pwrite_full writes exactly |n| bytes at |off|. */
cai_status file_pwrite_full(int fd, const void *data, size_t n, uint64_t off) CAI_WUR;

/* file_write_full writes exactly |n| bytes at the current offset. */
cai_status file_write_full(int fd, const void *data, size_t n) CAI_WUR;

/* file_size returns the size of the open file |fd| in |out|. */
cai_status file_size(int fd, uint64_t *out);

/* file_read_all reads the whole file at |path| into |out| (which it
 * initialises), failing with CAI_ERR_LIMIT if it is larger than |max|. */
cai_status file_read_all(const char *path, size_t max, buf *out) CAI_WUR;

/* file_read_fd is file_read_all for an open |fd| (a pipe too), read to its
 * end; |name| names it in errors. */
cai_status file_read_fd(int fd, const char *name, size_t max, buf *out) CAI_WUR;

/* file_write_new creates |path| with |mode| (it must not exist), writes
 * |data| and fsyncs it. On failure nothing is left at |path|. */
cai_status file_write_new(const char *path, const void *data, size_t n, mode_t mode) CAI_WUR;

/* An output file that appears at its path only when committed: an unnamed
 * O_TMPFILE in the target directory (or a hidden temporary name where the
 * file system lacks O_TMPFILE), linked and renamed into place by commit.
 * A failed or abandoned write leaves nothing behind. */
typedef struct {
    int fd;
    char path[4096];
    char tmp[8256]; /* named temporary, only in the fallback case */
} file_atomic;

/* file_atomic_open prepares |path| for writing with permissions |mode|. */
cai_status file_atomic_open(file_atomic *fa, const char *path, mode_t mode) CAI_WUR;

/* file_atomic_commit fsyncs, names the file |path| (replacing any old file)
 * and closes it. On failure the file is discarded. A symbolic link at |path|
 * is replaced itself, never followed. */
cai_status file_atomic_commit(file_atomic *fa) CAI_WUR;

/* file_atomic_commit_new is file_atomic_commit for a path that must still be
 * free: it names the file |path| only if nothing (no file, directory or
 * symbolic link, dangling or not) is there at that moment, in one step with
 * the check, and fails with CAI_ERR_EXISTS otherwise. On failure the file is
 * discarded and whatever was at |path| is untouched. */
cai_status file_atomic_commit_new(file_atomic *fa) CAI_WUR;

/* file_atomic_abort discards the file. Safe after commit and on a zeroed or
 * failed-to-open file_atomic whose fd is -1. */
void file_atomic_abort(file_atomic *fa);

#endif

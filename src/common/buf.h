/* buf.h - a growable byte buffer with a hard size limit.
 *
 * A zeroed buf (or buf_init) is valid and empty. Appends fail with
 * CAI_ERR_LIMIT past |max| and CAI_ERR_NOMEM when allocation fails; on
 * failure the buffer is unchanged. buf_free wipes the bytes before freeing,
 * so a buf may hold secrets. Modelled on curl's dynbuf. */
#ifndef CAI_COMMON_BUF_H
#define CAI_COMMON_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

typedef struct {
    uint8_t *data;
    size_t len;
    size_t cap;
    size_t max; /* 0 means SIZE_MAX / 2 */
} buf;

/* buf_init makes |b| empty with a size limit of |max| bytes. */
void buf_init(buf *b, size_t max);

/* buf_free wipes and releases the storage; |b| is empty again. NULL is ok. */
void buf_free(buf *b);

/* buf_reserve makes room for |extra| more bytes without changing len. */
cai_status buf_reserve(buf *b, size_t extra);

cai_status buf_append(buf *b, const void *data, size_t n);
cai_status buf_append_u8(buf *b, uint8_t v);
cai_status buf_append_u16le(buf *b, uint16_t v);
cai_status buf_append_u32le(buf *b, uint32_t v);
cai_status buf_append_u64le(buf *b, uint64_t v);

/* buf_append_str appends the bytes of |s| without its terminator. */
cai_status buf_append_str(buf *b, const char *s);

/* buf_printf appends formatted text (no terminator is counted in len, but one
 * is kept after the data so that (char *)b->data is a C string). */
cai_status buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* buf_terminate keeps a NUL after the data so it can be read as a string. */
cai_status buf_terminate(buf *b);

#endif

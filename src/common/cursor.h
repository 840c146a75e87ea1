/* cursor.h - bounds-checked reading of untrusted bytes.
 *
 * A cursor is a {ptr, len} view. Every getter returns 1 on success and
 * advances; on failure it returns 0 and leaves the cursor untouched. All
 * parsers of untrusted input (sealed headers, GGUF, quotes, ...) read only
 * through a cursor. Modelled on BoringSSL's CBS. */
#ifndef CAI_COMMON_CURSOR_H
#define CAI_COMMON_CURSOR_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const uint8_t *ptr;
    size_t len;
} cursor;

/* cursor_init points |c| at |len| bytes at |data| (not copied). */
void cursor_init(cursor *c, const void *data, size_t len);

/* cursor_len returns the number of unread bytes. */
static inline size_t cursor_len(const cursor *c) { return c->len; }

/* cursor_data returns a pointer to the unread bytes. */
static inline const uint8_t *cursor_data(const cursor *c) { return c->ptr; }

int cursor_skip(cursor *c, size_t n);
int cursor_get_u8(cursor *c, uint8_t *out);
int cursor_get_u16le(cursor *c, uint16_t *out);
int cursor_get_u32le(cursor *c, uint32_t *out);
int cursor_get_u64le(cursor *c, uint64_t *out);
int cursor_get_u16be(cursor *c, uint16_t *out);
int cursor_get_u32be(cursor *c, uint32_t *out);
int cursor_get_u64be(cursor *c, uint64_t *out);

/* cursor_copy copies the next |n| bytes into |out|. */
int cursor_copy(cursor *c, void *out, size_t n);

/* cursor_get_span sets |out| to the next |n| bytes and advances past them. */
int cursor_get_span(cursor *c, cursor *out, size_t n);

/* cursor_get_u16le_prefixed reads a little-endian u16 length, then that many
 * bytes into |out|. Likewise for the u32 and u64 variants. */
int cursor_get_u16le_prefixed(cursor *c, cursor *out);
int cursor_get_u32le_prefixed(cursor *c, cursor *out);
int cursor_get_u64le_prefixed(cursor *c, cursor *out);

#endif

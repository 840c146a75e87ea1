/* cbor.h - the subset of CBOR (RFC 8949) that attested TLS certificates
 * carry: unsigned integers, byte and text strings, arrays, maps, tags and
 * null, all with definite lengths.
 *
 * The reader works on a cursor (STYLE.md 7): each getter returns 1 and
 * advances only on success, 0 on anything else (wrong type, truncation, an
 * indefinite length, a reserved encoding, a length past the input). Nesting
 * is bounded by the caller's depth argument to cbor_skip. The writer
 * appends to a buf and fails only when the buf's limit is reached. */
#ifndef CAI_RATLS_CBOR_H
#define CAI_RATLS_CBOR_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/cursor.h"
#include "common/status.h"

enum {
    CBOR_UINT = 0,
    CBOR_NINT = 1,
    CBOR_BYTES = 2,
    CBOR_TEXT = 3,
    CBOR_ARRAY = 4,
    CBOR_MAP = 5,
    CBOR_TAG = 6,
    CBOR_SIMPLE = 7,
};

#define CBOR_NULL 22 /* simple value null */

/* cbor_get_head reads an item's initial byte and argument: |*major| is
 * CBOR_*, |*arg| the value, length or count (for CBOR_SIMPLE the simple
 * value; floats and indefinite lengths are refused). */
int cbor_get_head(cursor *c, int *major, uint64_t *arg);

/* cbor_peek_major returns the major type of the next item, or -1 at the end. */
int cbor_peek_major(const cursor *c);

int cbor_get_uint(cursor *c, uint64_t *out);
/* cbor_get_bytes / cbor_get_text set |out| to the string's contents. */
int cbor_get_bytes(cursor *c, cursor *out);
int cbor_get_text(cursor *c, cursor *out);
/* cbor_get_array / cbor_get_map read the head and its count (a map's count
 * is its number of pairs). */
int cbor_get_array(cursor *c, uint64_t *n);
int cbor_get_map(cursor *c, uint64_t *n);
int cbor_get_tag(cursor *c, uint64_t *tag);
int cbor_get_null(cursor *c);

/* cbor_skip passes over one whole item nested at most |depth| levels deep. */
int cbor_skip(cursor *c, int depth);

/* The writer. */
cai_status cbor_put_head(buf *b, int major, uint64_t arg) CAI_WUR;
cai_status cbor_put_bytes(buf *b, const void *p, size_t n) CAI_WUR;
cai_status cbor_put_text(buf *b, const char *s, size_t n) CAI_WUR;
cai_status cbor_put_null(buf *b) CAI_WUR;

#endif

/* codec.h - hex and base64 (RFC 4648, standard and URL-safe alphabets).
 *
 * Decoders are strict: they reject characters outside the alphabet, wrong
 * padding and non-canonical trailing bits. */
#ifndef CAI_COMMON_CODEC_H
#define CAI_COMMON_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/status.h"

/* hex_encode writes 2*n lowercase hex digits and a NUL to |out|, which must
 * have room for 2*n+1 bytes. */
void hex_encode(char *out, const void *in, size_t n);

/* hex_decode decodes the |in_len| hex digits at |in| (either case) into |out|
 * of capacity |cap|; sets |out_len|. Fails with CAI_ERR_FORMAT on an odd
 * length or a non-hex digit and CAI_ERR_LIMIT when |cap| is too small. */
cai_status hex_decode(const char *in, size_t in_len, uint8_t *out, size_t cap,
                      size_t *out_len);

typedef enum {
    B64_STD,    /* '+', '/', with '=' padding */
    B64_URL,    /* '-', '_', no padding (as JOSE uses it) */
} b64_alphabet;

/* b64_encoded_len returns the encoded length of |n| bytes (without NUL). */
size_t b64_encoded_len(size_t n, b64_alphabet a);

/* b64_encode writes the encoding of |in| and a NUL to |out|, which must hold
 * b64_encoded_len(n) + 1 bytes. */
void b64_encode(char *out, const void *in, size_t n, b64_alphabet a);

/* b64_decode decodes |in| into |out| of capacity |cap| (b64_decoded_max is
 * enough). B64_STD requires padding; B64_URL forbids it. */
cai_status b64_decode(const char *in, size_t in_len, uint8_t *out, size_t cap,
                      size_t *out_len, b64_alphabet a);

/* b64_decoded_max returns an upper bound of the decoded size of |in_len|
 * characters. */
size_t b64_decoded_max(size_t in_len);

/* utf8_valid says whether the |n| bytes at |in| are well-formed UTF-8 (no
 * stray, truncated, overlong or surrogate sequence, nothing above U+10FFFF). */
int utf8_valid(const void *in, size_t n);

/* hex_byte returns the byte the two hex digits at |s| (either case) spell,
 * or -1; it stops at the first non-digit, so a NUL-terminated |s| is never
 * read past its end. */
int hex_byte(const char *s);

/* utf8_sanitize appends |n| bytes to |out| with every invalid UTF-8
 * sequence (bad, overlong, surrogate, truncated) replaced by U+FFFD. */
cai_status utf8_sanitize(const void *in, size_t n, buf *out);

#endif

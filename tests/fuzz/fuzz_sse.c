/* fuzz_sse.c - the server-sent events parser on any bytes: no crash, and
 * the same events and status whether the input comes at once, byte by
 * byte, or split where its first byte says. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client/sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static cai_status collect(void *arg, const char *d, size_t len) {
    buf *b = arg;
    if (strlen(d) > len) /* the data is NUL-terminated at len (it may hold NULs) */
        abort();
    cai_status st = buf_append(b, d, len);
    return st == CAI_OK ? buf_append_u8(b, 0xff) : st;
}

static cai_status run(const uint8_t *data, size_t size, size_t step, buf *events) {
    sse_parser p;
    buf_init(events, 0);
    sse_init(&p, 256, collect, events);
    cai_status st = CAI_OK;
    for (size_t off = 0; off < size && st == CAI_OK; off += step)
        st = sse_feed(&p, data + off, size - off < step ? size - off : step);
    sse_cleanup(&p);
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0)
        return 0;
    buf a, b, c;
    cai_status sa = run(data, size, size, &a);
    cai_status sb = run(data, size, 1, &b);
    cai_status sc = run(data, size, 1 + data[0] % 17, &c);
    if (sa != sb || sa != sc || a.len != b.len || a.len != c.len ||
        (a.len && (memcmp(a.data, b.data, a.len) != 0 || memcmp(a.data, c.data, a.len) != 0)))
        abort();
    buf_free(&a);
    buf_free(&b);
    buf_free(&c);
    return 0;
}

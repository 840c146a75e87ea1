/* sse.h - an incremental parser of server-sent events (text/event-stream),
 * the format OpenAI-compatible servers stream completions in.
 *
 * Bytes arrive in pieces of any size; each complete event's data (its
 * "data:" lines joined with '\n', one leading space of each value dropped)
 * is handed to a callback. Lines end with LF, CRLF or CR; comments (":...")
 * and other fields (event, id, retry) are ignored; an event ends at an
 * empty line and is dispatched only if it had data. A line or an event
 * longer than the parser's limit is an error (CAI_ERR_LIMIT), so a hostile
 * server cannot make the client buffer without bound. */
#ifndef CAI_CLIENT_SSE_H
#define CAI_CLIENT_SSE_H

#include <stddef.h>

#include "common/buf.h"
#include "common/status.h"

#define SSE_MAX_EVENT_DEFAULT (1u << 20) /* named limit: bytes of one event */

/* Called with the data of each event (NUL-terminated, |len| bytes). A
 * status other than CAI_OK stops the parser and is returned by sse_feed. */
typedef cai_status (*sse_event_fn)(void *arg, const char *data, size_t len);

typedef struct {
    buf line;    /* the current line */
    buf data;    /* the current event's data */
    int has_data;
    int after_cr; /* the last byte was CR: a following LF belongs to it */
    cai_status failed; /* sticky: once failed, always failed */
    sse_event_fn on_event;
    void *arg;
} sse_parser;

/* sse_init makes |p| ready, with events and lines of at most |max_event|
 * bytes (0: SSE_MAX_EVENT_DEFAULT). Cannot fail. */
void sse_init(sse_parser *p, size_t max_event, sse_event_fn on_event, void *arg);

/* sse_feed parses |n| more bytes. Returns CAI_OK, CAI_ERR_LIMIT for an
 * over-long line or event, CAI_ERR_NOMEM, or the callback's status; after a
 * failure every call returns it again. */
cai_status sse_feed(sse_parser *p, const void *data, size_t n) CAI_WUR;

/* sse_cleanup frees |p|'s buffers; an event not ended by an empty line is
 * discarded (as the SSE specification says). */
void sse_cleanup(sse_parser *p);

#endif

/* sse.c - server-sent events, parsed incrementally. */
#include "client/sse.h"

#include <string.h>

void sse_init(sse_parser *p, size_t max_event, sse_event_fn on_event, void *arg) {
    memset(p, 0, sizeof(*p));
    if (max_event == 0)
        max_event = SSE_MAX_EVENT_DEFAULT;
    buf_init(&p->line, max_event);
    buf_init(&p->data, max_event);
    p->on_event = on_event;
    p->arg = arg;
}

void sse_cleanup(sse_parser *p) {
    buf_free(&p->line);
    buf_free(&p->data);
}

/* One complete line (without its terminator) in p->line. */
static cai_status end_line(sse_parser *p) {
    const char *l = (const char *)p->line.data;
    size_t n = p->line.len;
    cai_status st = CAI_OK;
    if (n == 0) { /* the end of an event */
        if (p->has_data) {
            if ((st = buf_terminate(&p->data)) == CAI_OK)
                st = p->on_event(p->arg, p->data.len ? (const char *)p->data.data : "", p->data.len);
        }
        p->data.len = 0;
        p->has_data = 0;
        return st;
    }
    if (l[0] == ':') /* a comment */
        goto out;
    const char *colon = memchr(l, ':', n);
    size_t name_len = colon ? (size_t)(colon - l) : n;
    if (name_len == 4 && memcmp(l, "data", 4) == 0) {
        const char *v = colon ? colon + 1 : l + n;
        size_t vn = (size_t)(l + n - v);
        if (vn && v[0] == ' ')
            v++, vn--;
        if (p->has_data)
            st = buf_append_u8(&p->data, '\n');
        if (st == CAI_OK)
            st = buf_append(&p->data, v, vn);
        if (st == CAI_ERR_LIMIT)
            st = cai_fail(st, "a server-sent event is longer than %zu bytes", p->data.max);
        p->has_data = 1;
    }
out:
    p->line.len = 0;
    return st;
}

cai_status sse_feed(sse_parser *p, const void *data, size_t n) {
    const char *s = data, *end = s + n;
    while (s < end && p->failed == CAI_OK) {
        if (p->after_cr && *s == '\n') { /* the LF of a CRLF */
            p->after_cr = 0;
            s++;
            continue;
        }
        p->after_cr = 0;
        const char *stop = s;
        while (stop < end && *stop != '\n' && *stop != '\r')
            stop++;
        cai_status st = buf_append(&p->line, s, (size_t)(stop - s));
        if (st == CAI_ERR_LIMIT)
            st = cai_fail(st, "a server-sent event line is longer than %zu bytes", p->line.max);
        if (st == CAI_OK && stop < end) {
            p->after_cr = *stop == '\r';
            st = end_line(p);
            stop++;
        }
        p->failed = st;
        s = stop;
    }
    return p->failed;
}

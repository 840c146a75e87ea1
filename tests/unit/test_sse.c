/* Server-sent events: what OpenAI streams look like, every line ending,
 * any split of the input, the size limit, callback errors. */
#include "client/sse.h"
#include "common/buf.h"
#include "test.h"

typedef struct {
    buf all; /* events, each followed by '|' */
    int n, stop_at;
} sink;

static cai_status collect(void *arg, const char *data, size_t len) {
    sink *k = arg;
    CHECK(strlen(data) == len);
    if (++k->n == k->stop_at)
        return cai_fail(CAI_ERR_INVALID_ARG, "stop");
    if (buf_append(&k->all, data, len) != CAI_OK || buf_append_u8(&k->all, '|') != CAI_OK)
        return CAI_ERR_NOMEM;
    return CAI_OK;
}

/* Parses |in| fed in pieces of |step| bytes (0: all at once) and returns
 * the events as "a|b|" (caller frees), or NULL on a parse error. */
static char *parse(const char *in, size_t step, cai_status *st_out) {
    sink k = {{0}, 0, 0};
    buf_init(&k.all, 0);
    sse_parser p;
    sse_init(&p, 64, collect, &k);
    size_t n = strlen(in);
    cai_status st = CAI_OK;
    for (size_t off = 0; off < n && st == CAI_OK; off += step ? step : n)
        st = sse_feed(&p, in + off, step && n - off > step ? step : n - off);
    sse_cleanup(&p);
    if (st_out)
        *st_out = st;
    char *s = strdup(k.all.len ? (char *)k.all.data : "");
    buf_free(&k.all);
    return st == CAI_OK ? s : (free(s), NULL);
}

static void expect(const char *in, const char *want) {
    for (size_t step = 0; step <= strlen(in); step++) {
        char *got = parse(in, step, NULL);
        CHECK(got != NULL && strcmp(got, want) == 0);
        if (got && strcmp(got, want) != 0)
            printf("  step %zu: got '%s', want '%s'\n", step, got, want);
        free(got);
    }
}

static void test_openai_stream(void) {
    expect("data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\ndata: [DONE]\n\n",
           "{\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}|[DONE]|");
}

static void test_line_endings(void) {
    expect("data: a\r\n\r\ndata: b\r\rdata: c\n\n", "a|b|c|");
    expect("data: a\r\n\ndata: b\n\r\n", "a|b|");
}

static void test_fields(void) {
    expect("data: one\ndata:two\ndata\ndata:  three\n\n", "one\ntwo\n\n three|");
    expect(": keep-alive\n\n", "");                    /* comments only: no event */
    expect("event: x\nid: 7\nretry: 10\n\n", "");      /* no data: no event */
    expect("event: x\ndata: y\nid: 1\n\n", "y|");
    expect("data:\n\n", "|");                          /* one empty data line */
    expect("datax: no\ndat: no\n\n", "");
    expect("data: a\n\ndata: unterminated", "a|");     /* the last event never ended */
}

static void test_limit(void) {
    cai_status st;
    char line[200];
    snprintf(line, sizeof(line), "data: %0100d\n\n", 0); /* a 106-byte line, limit 64 */
    for (size_t step = 0; step < 8; step++) {
        CHECK(parse(line, step, &st) == NULL);
        CHECK(st == CAI_ERR_LIMIT);
    }
    /* Many short data lines that add up to more than the limit. */
    char many[400] = "";
    for (int i = 0; i < 20; i++)
        strcat(many, "data: 0123456\n");
    strcat(many, "\n");
    CHECK(parse(many, 0, &st) == NULL);
    CHECK(st == CAI_ERR_LIMIT);
    /* Sticky: feeding more after the failure keeps failing. */
    sink k = {{0}, 0, 0};
    buf_init(&k.all, 0);
    sse_parser p;
    sse_init(&p, 64, collect, &k);
    CHECK_ST(sse_feed(&p, line, strlen(line)), CAI_ERR_LIMIT);
    CHECK_ST(sse_feed(&p, "data: ok\n\n", 10), CAI_ERR_LIMIT);
    CHECK(k.n == 0);
    sse_cleanup(&p);
    buf_free(&k.all);
}

static void test_callback_stops(void) {
    sink k = {{0}, 0, 2};
    buf_init(&k.all, 0);
    sse_parser p;
    sse_init(&p, 0, collect, &k);
    const char *in = "data: 1\n\ndata: 2\n\ndata: 3\n\n";
    CHECK_ST(sse_feed(&p, in, strlen(in)), CAI_ERR_INVALID_ARG);
    CHECK(k.n == 2 && strcmp((char *)k.all.data, "1|") == 0);
    sse_cleanup(&p);
    buf_free(&k.all);
}

int main(void) {
    RUN(test_openai_stream);
    RUN(test_line_endings);
    RUN(test_fields);
    RUN(test_limit);
    RUN(test_callback_stops);
    return test_summary();
}

/* test_httpd.c - the HTTP server on a real port, with libcurl as the client. */
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/httpd.h"
#include "test.h"

static httpd *srv;
static char base_url[64];
static atomic_int closed_calls;

static void h_echo(httpd_req *r, void *arg) {
    (void)arg;
    size_t n;
    const char *b = httpd_body(r, &n);
    const char *q = httpd_query(r, "x");
    if (q) {
        httpd_reply(r, 200, "text/plain", q, strlen(q));
        return;
    }
    httpd_add_header(r, "X-Method", httpd_method(r));
    httpd_reply(r, 200, "application/octet-stream", b, n);
}

typedef struct {
    httpd_async *a;
    int chunks;
    int stream;
} job;

static void *worker(void *arg) {
    job *j = arg;
    usleep(20000);
    if (!j->stream) {
        httpd_async_reply(j->a, 201, "application/json", "{\"late\":true}", 13);
    } else {
        httpd_async_stream_start(j->a, 200, "text/event-stream");
        for (int i = 0; i < j->chunks; i++) {
            char line[32];
            int n = snprintf(line, sizeof(line), "data: %d\n\n", i);
            if (httpd_async_write(j->a, line, (size_t)n) != CAI_OK)
                break; /* the client went away */
            usleep(j->chunks > 10 ? 20000 : 1000);
        }
        httpd_async_end(j->a);
    }
    httpd_async_release(j->a);
    free(j);
    return NULL;
}

static atomic_int ended_calls;

static void on_end(void *arg, int client_gone) {
    (void)arg;
    atomic_fetch_add(client_gone ? &closed_calls : &ended_calls, 1);
}

static void start_job(httpd_req *r, int stream, int chunks) {
    job *j = calloc(1, sizeof(*j));
    j->a = httpd_async_new(r, on_end, NULL);
    j->stream = stream;
    j->chunks = chunks;
    pthread_t t;
    pthread_create(&t, NULL, worker, j);
    pthread_detach(t);
}

static void h_async(httpd_req *r, void *arg) { (void)arg, start_job(r, 0, 0); }
static void h_stream(httpd_req *r, void *arg) { (void)arg, start_job(r, 1, 5); }
static void h_long(httpd_req *r, void *arg) { (void)arg, start_job(r, 1, 1000); }

static void *loop(void *arg) {
    (void)arg;
    httpd_run(srv);
    return NULL;
}

static size_t collect(char *p, size_t size, size_t n, void *arg) {
    buf_append(arg, p, size * n);
    return size * n;
}

static long fetch(const char *path, const char *body, size_t body_len, buf *out, long timeout_ms) {
    CURL *c = curl_easy_init();
    char url[256];
    snprintf(url, sizeof(url), "%s%s", base_url, path);
    out->len = 0;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    if (timeout_ms)
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }
    long code = 0;
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(c);
    buf_terminate(out);
    return rc == CURLE_OK ? code : -(long)rc;
}

static void test_sync_routes(void) {
    buf b;
    buf_init(&b, 0);
    CHECK(fetch("/echo", "hello", 5, &b, 0) == 200);
    CHECK(b.len == 5 && memcmp(b.data, "hello", 5) == 0);
    CHECK(fetch("/echo?x=a%20b", NULL, 0, &b, 0) == 200);
    CHECK(strcmp((char *)b.data, "a b") == 0);
    CHECK(fetch("/nowhere", NULL, 0, &b, 0) == 404);
    CHECK(strstr((char *)b.data, "\"error\"") != NULL);
    buf_free(&b);
}

static void test_body_limit(void) {
    buf b;
    buf_init(&b, 0);
    size_t n = 70000; /* over the 64 KiB limit configured below: read, then 413 */
    char *big = malloc(n);
    memset(big, 'x', n);
    long code = fetch("/echo", big, n, &b, 0);
    CHECK(code == 413);
    free(big);
    n = 1 << 20; /* far over: the connection is dropped */
    big = calloc(1, n);
    code = fetch("/echo", big, n, &b, 0);
    CHECK(code == 413 || code < 0);
    free(big);
    CHECK(fetch("/echo", "ok", 2, &b, 0) == 200); /* and the server still serves */
    buf_free(&b);
}

static void test_async_and_stream(void) {
    buf b;
    buf_init(&b, 0);
    int ended = atomic_load(&ended_calls);
    CHECK(fetch("/async", NULL, 0, &b, 0) == 201);
    CHECK(strcmp((char *)b.data, "{\"late\":true}") == 0);
    CHECK(fetch("/stream", NULL, 0, &b, 0) == 200);
    CHECK(strcmp((char *)b.data, "data: 0\n\ndata: 1\n\ndata: 2\n\ndata: 3\n\ndata: 4\n\n") == 0);
    CHECK(atomic_load(&ended_calls) == ended + 2);
    buf_free(&b);
}

static void test_disconnect_detected(void) {
    buf b;
    buf_init(&b, 0);
    int before = atomic_load(&closed_calls);
    CHECK(fetch("/long", NULL, 0, &b, 150) == -(long)CURLE_OPERATION_TIMEDOUT);
    CHECK(b.len > 0); /* some chunks arrived before the client hung up */
    for (int i = 0; i < 100 && atomic_load(&closed_calls) == before; i++)
        usleep(10000);
    CHECK(atomic_load(&closed_calls) == before + 1);
    CHECK(fetch("/echo", "still", 5, &b, 0) == 200);
    buf_free(&b);
}

static void test_rate_limit(void) {
    buf b;
    buf_init(&b, 0);
    int limited = 0;
    for (int i = 0; i < 200 && !limited; i++)
        limited = fetch("/echo", "x", 1, &b, 0) == 429;
    CHECK(limited);
    CHECK(strstr((char *)b.data, "slow down") != NULL);
    buf_free(&b);
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    httpd_config cfg = {.port = 0, .max_body = 64 << 10, .rate_per_s = 20, .rate_burst = 100};
    CHECK_OK(httpd_new(&cfg, &srv));
    if (srv == NULL)
        return 1;
    httpd_route(srv, "/echo", h_echo, NULL);
    httpd_route(srv, "/async", h_async, NULL);
    httpd_route(srv, "/stream", h_stream, NULL);
    httpd_route(srv, "/long", h_long, NULL);
    snprintf(base_url, sizeof(base_url), "http://127.0.0.1:%d", httpd_port(srv));
    pthread_t t;
    pthread_create(&t, NULL, loop, NULL);
    RUN(test_sync_routes);
    RUN(test_body_limit);
    RUN(test_async_and_stream);
    RUN(test_disconnect_detected);
    RUN(test_rate_limit);
    httpd_stop(srv);
    pthread_join(t, NULL);
    usleep(50000); /* let detached workers finish writing to closed replies */
    httpd_free(srv);
    curl_global_cleanup();
    return test_summary();
}

/* test_httpd.c - the HTTP server on a real port, with libcurl as the client. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/buf.h"
#include "net/httpc.h"
#include "net/httpd.h"
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

/* The engine's order in cai serve: the work is accepted and produces its
 * chunks and its end before the handler starts the stream. */
static void h_early(httpd_req *r, void *arg) {
    (void)arg;
    httpd_async *a = httpd_async_new(r, NULL, NULL);
    httpd_async_write(a, "data: early\n\n", 13);
    httpd_async_end(a);
    CHECK_OK(httpd_async_stream_start(a, 200, "text/event-stream"));
    httpd_async_release(a);
}

/* Work refused after the async was made: a plain answer, no stream. */
static void h_refused(httpd_req *r, void *arg) {
    (void)arg;
    httpd_async *a = httpd_async_new(r, NULL, NULL);
    httpd_async_reply(a, 429, "application/json", "{\"error\":{}}", 12);
    CHECK(httpd_async_stream_start(a, 200, "text/event-stream") != CAI_OK);
    httpd_async_release(a);
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

static void test_stream_started_after_its_chunks(void) {
    buf b;
    buf_init(&b, 0);
    CHECK(fetch("/early", NULL, 0, &b, 2000) == 200);
    CHECK(strcmp((char *)b.data, "data: early\n\n") == 0);
    CHECK(fetch("/refused", NULL, 0, &b, 2000) == 429);
    CHECK(strcmp((char *)b.data, "{\"error\":{}}") == 0);
    CHECK(fetch("/echo", "still", 5, &b, 0) == 200);
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

/* OpenAI's error shape, as cai serve renders httpd's own refusals. */
static char *openai_error(int status, const char *message) {
    json_t *j = json_pack("{s:{s:s, s:s, s:n, s:n}}", "error", "message", message, "type",
                          status >= 500 ? "server_error" : "invalid_request_error", "param", "code");
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return s;
}

/* A keep-alive connection to |port| that has made one request (httpd
 * counts a connection from its first request); -1 on failure. */
static int raw_request(int port, char *reply, size_t cap) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    static const char req[] = "GET /echo?x=hi HTTP/1.1\r\nHost: t\r\n\r\n";
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1)) {
        close(fd);
        return -1;
    }
    size_t n = 0;
    ssize_t k;
    reply[0] = '\0';
    /* enough of the reply: the status line, headers and a short body */
    while (n + 1 < cap && (k = read(fd, reply + n, cap - 1 - n)) > 0) {
        n += (size_t)k;
        reply[n] = '\0';
        char *eoh = strstr(reply, "\r\n\r\n");
        const char *cl = strstr(reply, "Content-Length: ");
        if (eoh && cl && strlen(eoh + 4) >= (size_t)atoi(cl + 16))
            break;
    }
    return fd;
}

static void *loop_of(void *arg) {
    httpd_run(arg);
    return NULL;
}

static void test_connection_limit(void) {
    httpd *h = NULL;
    httpd_config cfg = {.port = 0, .max_connections = 2};
    CHECK_OK(httpd_new(&cfg, &h));
    if (h == NULL)
        return;
    httpd_set_error_body(h, openai_error);
    httpd_route(h, "/echo", h_echo, NULL);
    pthread_t t;
    pthread_create(&t, NULL, loop_of, h);
    int port = httpd_port(h);
    char reply[2048];
    int a = raw_request(port, reply, sizeof(reply));
    CHECK(a >= 0 && strncmp(reply, "HTTP/1.1 200", 12) == 0);
    int b = raw_request(port, reply, sizeof(reply));
    CHECK(b >= 0 && strncmp(reply, "HTTP/1.1 200", 12) == 0);
    /* a third connection while both are open */
    int c = raw_request(port, reply, sizeof(reply));
    CHECK(c >= 0 && strncmp(reply, "HTTP/1.1 429", 12) == 0);
    const char *body = strstr(reply, "\r\n\r\n");
    json_t *j = body ? json_loads(body + 4, 0, NULL) : NULL;
    json_t *e = json_object_get(j, "error");
    CHECK(json_is_object(e));
    CHECK(json_is_string(json_object_get(e, "message")) &&
          strstr(json_string_value(json_object_get(e, "message")), "too many connections") != NULL);
    CHECK(json_is_string(json_object_get(e, "type")));
    json_decref(j);
    if (c >= 0)
        close(c);
    /* once a connection closes there is room again */
    if (a >= 0)
        close(a);
    int ok = 0;
    for (int i = 0; i < 100 && !ok; i++) {
        int d = raw_request(port, reply, sizeof(reply));
        ok = d >= 0 && strncmp(reply, "HTTP/1.1 200", 12) == 0;
        if (d >= 0)
            close(d);
        if (!ok)
            usleep(10000);
    }
    CHECK(ok);
    if (b >= 0)
        close(b);
    httpd_stop(h);
    pthread_join(t, NULL);
    httpd_free(h);
}

/* A stream its client never reads: the worker writes until httpd drops the
 * client (or, without the bound, until FLOOD_MAX bytes all sat in memory). */
#define FLOOD_MAX ((size_t)256 << 20)
static atomic_size_t flood_written;
static atomic_int flood_refused, flood_done;

static void *flood_worker(void *arg) {
    httpd_async *a = arg;
    static const char chunk[16384] = {'x'};
    httpd_async_stream_start(a, 200, "application/octet-stream");
    size_t n = 0;
    while (n < FLOOD_MAX) {
        if (httpd_async_write(a, chunk, sizeof(chunk)) != CAI_OK) {
            atomic_store(&flood_refused, 1);
            break;
        }
        n += sizeof(chunk);
        if (n % (1 << 20) == 0)
            usleep(1000); /* let the loop thread move the data on */
    }
    atomic_store(&flood_written, n);
    httpd_async_end(a);
    httpd_async_release(a);
    atomic_store(&flood_done, 1);
    return NULL;
}

static void h_flood(httpd_req *r, void *arg) {
    (void)arg;
    pthread_t t;
    pthread_create(&t, NULL, flood_worker, httpd_async_new(r, on_end, NULL));
    pthread_detach(t);
}

static void *loop_of(void *arg);
static int raw_request(int port, char *reply, size_t cap);

static void test_slow_client_dropped(void) {
    httpd *h = NULL;
    httpd_config cfg = {.port = 0, .max_unsent = 256 << 10};
    CHECK_OK(httpd_new(&cfg, &h));
    if (h == NULL)
        return;
    httpd_route(h, "/flood", h_flood, NULL);
    httpd_route(h, "/echo", h_echo, NULL);
    pthread_t t;
    pthread_create(&t, NULL, loop_of, h);
    int before = atomic_load(&closed_calls);
    /* a client with a small receive window that sends its request and then
     * reads nothing */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)httpd_port(h))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    static const char req[] = "GET /flood HTTP/1.1\r\nHost: t\r\n\r\n";
    CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    CHECK(write(fd, req, sizeof(req) - 1) == (ssize_t)(sizeof(req) - 1));
    for (int i = 0; i < 3000 && !atomic_load(&flood_done); i++)
        usleep(10000);
    CHECK(atomic_load(&flood_done));
    CHECK(atomic_load(&flood_refused)); /* the writer was told the client is gone */
    CHECK(atomic_load(&flood_written) < FLOOD_MAX);
    for (int i = 0; i < 100 && atomic_load(&closed_calls) == before; i++)
        usleep(10000);
    CHECK(atomic_load(&closed_calls) == before + 1); /* ended as a client gone */
    close(fd);
    char reply[2048]; /* and the server still serves */
    int c = raw_request(httpd_port(h), reply, sizeof(reply));
    CHECK(c >= 0 && strncmp(reply, "HTTP/1.1 200", 12) == 0);
    if (c >= 0)
        close(c);
    httpd_stop(h);
    pthread_join(t, NULL);
    httpd_free(h);
}

/* ---- rate limit: colliding addresses share a bucket ---------------------- */

/* GET |url| with the client socket bound to |from| (a loopback address). */
static long get_from(const char *url, const char *from, buf *out) {
    CURL *c = curl_easy_init();
    char iface[64];
    snprintf(iface, sizeof(iface), "host!%s", from);
    out->len = 0;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_INTERFACE, iface);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    long code = 0;
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(c);
    buf_terminate(out);
    return rc == CURLE_OK ? code : -(long)rc;
}

/* A server on an ephemeral port with |cfg| and the /echo route, running. */
static httpd *start_with(httpd_config *cfg, pthread_t *t, char *url, size_t cap) {
    httpd *h = NULL;
    CHECK_OK(httpd_new(cfg, &h));
    if (h == NULL)
        return NULL;
    httpd_set_error_body(h, openai_error);
    httpd_route(h, "/echo", h_echo, NULL);
    pthread_create(t, NULL, loop_of, h);
    snprintf(url, cap, "http://127.0.0.1:%d/echo?x=hi", httpd_port(h));
    return h;
}

static void stop(httpd *h, pthread_t t) {
    httpd_stop(h);
    pthread_join(t, NULL);
    httpd_free(h);
}

/* With one bucket every address collides: a second, third address gets
 * what the first left (nothing), not a fresh burst, and does not refill the
 * first's. (Before, a new address on an occupied bucket reset it to a full
 * burst, so alternating two addresses was never limited.) */
static void test_rate_limit_collisions_share(void) {
    httpd_config cfg = {.port = 0, .rate_per_s = 0.001, .rate_burst = 3, .rate_buckets = 1};
    pthread_t t;
    char url[128];
    httpd *h = start_with(&cfg, &t, url, sizeof(url));
    if (h == NULL)
        return;
    buf b;
    buf_init(&b, 0);
    for (int i = 0; i < 3; i++)
        CHECK(get_from(url, "127.0.0.1", &b) == 200);
    CHECK(get_from(url, "127.0.0.1", &b) == 429);
    CHECK(get_from(url, "127.0.0.2", &b) == 429);
    CHECK(strstr((char *)b.data, "slow down") != NULL);
    CHECK(get_from(url, "127.0.0.3", &b) == 429);
    CHECK(get_from(url, "127.0.0.1", &b) == 429);
    /* alternating addresses: still nothing */
    int served = 0;
    for (int i = 0; i < 20; i++)
        served += get_from(url, i % 2 ? "127.0.0.4" : "127.0.0.5", &b) == 200;
    CHECK(served == 0);
    buf_free(&b);
    stop(h, t);
}

/* With the default table, other addresses keep budgets of their own (the
 * chance that one of eight lands on the first's bucket is 8 in 4096; all
 * but one are required to be served). */
/* The key an address is limited under: an IPv6 address's /64, so one host
 * cannot take a fresh budget from each of its 2^64 addresses. */
static void test_rate_key(void) {
    uint8_t a[HTTPD_RATE_KEY_MAX], b[HTTPD_RATE_KEY_MAX];
    size_t na = httpd_rate_key("2001:db8:1:2::1", a), nb = httpd_rate_key("2001:db8:1:2:ffff:1:2:3", b);
    CHECK(na == nb && memcmp(a, b, na) == 0);
    nb = httpd_rate_key("2001:db8:1:3::1", b); /* the next /64 */
    CHECK(na != nb || memcmp(a, b, na) != 0);
    na = httpd_rate_key("192.0.2.1", a), nb = httpd_rate_key("192.0.2.2", b);
    CHECK(na != nb || memcmp(a, b, na) != 0);
    na = httpd_rate_key("::ffff:192.0.2.1", a), nb = httpd_rate_key("::ffff:192.0.2.2", b);
    CHECK(na != nb || memcmp(a, b, na) != 0); /* IPv4-mapped: one address each */
    na = httpd_rate_key("?", a);
    CHECK(na == 2 && a[1] == '?');
}

static void test_rate_limit_per_address(void) {
    httpd_config cfg = {.port = 0, .rate_per_s = 0.001, .rate_burst = 3};
    pthread_t t;
    char url[128];
    httpd *h = start_with(&cfg, &t, url, sizeof(url));
    if (h == NULL)
        return;
    buf b;
    buf_init(&b, 0);
    for (int i = 0; i < 3; i++)
        CHECK(get_from(url, "127.0.0.1", &b) == 200);
    CHECK(get_from(url, "127.0.0.1", &b) == 429);
    int served = 0;
    for (int i = 2; i < 10; i++) {
        char a[32];
        snprintf(a, sizeof(a), "127.0.0.%d", i);
        served += get_from(url, a, &b) == 200;
    }
    CHECK(served >= 7);
    buf_free(&b);
    stop(h, t);
}

/* ---- request paths are refused when decoding would change them ----------- */

static void h_path(httpd_req *r, void *arg) {
    (void)arg;
    const char *p = httpd_path(r);
    httpd_reply(r, 200, "text/plain", p, strlen(p));
}

/* Sends |target| as the request target of a GET over a raw socket (bytes as
 * given, no client-side encoding) and reads the reply into |reply|. */
static void raw_get(int port, const char *target, char *reply, size_t cap) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char req[512];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                     target);
    size_t got = 0;
    reply[0] = '\0';
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && write(fd, req, (size_t)n) == n) {
        ssize_t k;
        while (got + 1 < cap && (k = read(fd, reply + got, cap - 1 - got)) > 0)
            got += (size_t)k;
        reply[got] = '\0';
    }
    close(fd);
}

static void test_path_refusals(void) {
    httpd *h = NULL;
    httpd_config cfg = {.port = 0};
    CHECK_OK(httpd_new(&cfg, &h));
    if (h == NULL)
        return;
    httpd_set_error_body(h, openai_error);
    httpd_route(h, "/r/", h_path, NULL);
    pthread_t t;
    pthread_create(&t, NULL, loop_of, h);
    int port = httpd_port(h);
    static const struct {
        const char *target, *why;
    } bad[] = {
        {"/r/x%00y", "encoded NUL"},
        {"/r/x%00", "encoded NUL"},
        {"/r/a%2fb", "encoded '/'"},
        {"/r/a%2Fb", "encoded '/'"},
        {"/r/%ff", "UTF-8"},
        {"/r/a\xff", "UTF-8"},              /* a raw byte, not encoded */
        {"/r/%c0%af", "UTF-8"},             /* overlong '/' */
        {"/r/%e0%80%af", "UTF-8"},          /* overlong '/', three bytes */
        {"/r/%ed%a0%80", "UTF-8"},          /* a surrogate */
        {"/r/%f4%90%80%80", "UTF-8"},       /* above U+10FFFF */
        {"/r/%c3", "UTF-8"},                /* truncated */
        {"/r/%80", "UTF-8"},                /* a lone continuation byte */
        {"/r/a%0ab", "control character"},  /* a log line of its own */
        {"/r/a%7fb", "control character"},
        {"/r/%zz", "two hex digits"},
        {"/r/%4", "two hex digits"},
        {"/r/%", "two hex digits"},
        /* query strings, checked alike (a '/' may be encoded there) */
        {"/r/q?n=x%00y", "query string has an encoded NUL"},
        {"/r/q?n=%ff", "query string is not valid UTF-8"},
        {"/r/q?n=a%0ab", "query string has a control character"},
        {"/r/q?n=%zz", "query string has a '%'"},
    };
    char reply[4096];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        raw_get(port, bad[i].target, reply, sizeof(reply));
        const char *body = strstr(reply, "\r\n\r\n");
        json_t *j = body ? json_loads(body + 4, 0, NULL) : NULL;
        const char *msg = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
        int ok = strncmp(reply, "HTTP/1.1 400", 12) == 0 && msg && strstr(msg, bad[i].why);
        if (!ok)
            printf("  %s: %.60s / %s\n", bad[i].target, reply, msg ? msg : "(no error message)");
        CHECK(ok);
        json_decref(j);
    }
    static const struct {
        const char *target, *path;
    } good[] = {
        {"/r/plain", "/r/plain"},
        {"/r/a%20b", "/r/a b"},
        {"/r/%41%42", "/r/AB"},
        {"/r/caf%c3%a9", "/r/caf\xc3\xa9"},
        {"/r/caf\xc3\xa9", "/r/caf\xc3\xa9"},
        {"/r/%f0%9f%98%80", "/r/\xf0\x9f\x98\x80"},
        {"/r/a+b", "/r/a+b"},
        {"/r/%25", "/r/%"},
        {"/r/a/b/c", "/r/a/b/c"},
        {"/r/q?n=a%2Fb", "/r/q"},
        {"/r/q?n=caf%c3%a9&m=1", "/r/q"},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        raw_get(port, good[i].target, reply, sizeof(reply));
        const char *body = strstr(reply, "\r\n\r\n");
        int ok = strncmp(reply, "HTTP/1.1 200", 12) == 0 && body && strcmp(body + 4, good[i].path) == 0;
        if (!ok)
            printf("  %s: %.60s\n", good[i].target, reply);
        CHECK(ok);
    }
    httpd_stop(h);
    pthread_join(t, NULL);
    httpd_free(h);
}

/* ---- streams over TLS ---------------------------------------------------
 * libevent's TLS bufferevent runs its write callback a loop iteration after
 * the output drained; an end written while one was pending once left the
 * last chunk and the terminator unsent (about one stream in fifty). Every
 * way a stream can end, many times over, on kept-alive connections. */

enum { TLS_WRITE_END, TLS_END_ALONE, TLS_HEADERS_THEN_END, TLS_HEADERS_AND_END };

typedef struct {
    httpd_async *a;
    int mode, delay_us;
} tls_job;

static void *tls_worker(void *arg) {
    tls_job *j = arg;
    httpd_async_stream_start(j->a, 200, "text/event-stream");
    if (j->mode == TLS_HEADERS_THEN_END)
        usleep(2000);
    if (j->mode == TLS_WRITE_END || j->mode == TLS_END_ALONE)
        for (int i = 0; i < 3; i++) {
            httpd_async_write(j->a, "data: x\n\n", 9);
            usleep((useconds_t)j->delay_us); /* the loop may drain it meanwhile */
        }
    if (j->mode == TLS_WRITE_END)
        httpd_async_write_end(j->a, "data: end\n\n", 11);
    else
        httpd_async_end(j->a);
    httpd_async_release(j->a);
    free(j);
    return NULL;
}

static void h_tls_stream(httpd_req *r, void *arg) {
    tls_job *j = calloc(1, sizeof(*j));
    j->a = httpd_async_new(r, NULL, NULL);
    j->mode = (int)(intptr_t)arg;
    static atomic_int n;
    j->delay_us = atomic_fetch_add(&n, 1) % 97; /* the race window moves */
    pthread_t t;
    pthread_create(&t, NULL, tls_worker, j);
    pthread_detach(t);
}

/* write_pem makes a P-256 key and a self-signed certificate in |dir|. */
static int write_pem(const char *dir, char *cert, char *key, size_t n) {
    snprintf(cert, n, "%s/cert.pem", dir);
    snprintf(key, n, "%s/key.pem", dir);
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    int ok = k && x && ASN1_INTEGER_set(X509_get_serialNumber(x), 1) &&
             X509_gmtime_adj(X509_getm_notBefore(x), -60) &&
             X509_gmtime_adj(X509_getm_notAfter(x), 3600) && X509_set_pubkey(x, k) &&
             X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                                        (const unsigned char *)"localhost", -1, -1, 0) &&
             X509_set_issuer_name(x, X509_get_subject_name(x)) && X509_sign(x, k, EVP_sha256());
    FILE *fc = ok ? fopen(cert, "w") : NULL, *fk = ok ? fopen(key, "w") : NULL;
    ok = fc && fk && PEM_write_X509(fc, x) && PEM_write_PrivateKey(fk, k, NULL, NULL, 0, NULL, NULL);
    if (fc)
        fclose(fc);
    if (fk)
        fclose(fk);
    X509_free(x);
    EVP_PKEY_free(k);
    return ok;
}

static void test_tls_streams_end(void) {
    char dir[] = "/tmp/cai-httpd-tls-XXXXXX", cert[128], key[128];
    CHECK(mkdtemp(dir) != NULL);
    CHECK(write_pem(dir, cert, key, sizeof(cert)));
    httpd_config cfg = {.port = 0, .tls_cert_file = cert, .tls_key_file = key};
    httpd *h = NULL;
    CHECK_OK(httpd_new(&cfg, &h));
    if (h == NULL)
        return;
    static const char *const paths[] = {"/write-end", "/end-alone", "/headers-then-end",
                                        "/headers-and-end"};
    static const char *const want[] = {"data: x\n\ndata: x\n\ndata: x\n\ndata: end\n\n",
                                       "data: x\n\ndata: x\n\ndata: x\n\n", "", ""};
    for (int m = 0; m < 4; m++)
        httpd_route(h, paths[m], h_tls_stream, (void *)(intptr_t)m);
    pthread_t t;
    pthread_create(&t, NULL, loop_of, h);
    CURL *c = curl_easy_init(); /* one handle: its connection is kept alive */
    buf b;
    buf_init(&b, 0);
    int bad[4] = {0};
    for (int i = 0; i < 400; i++) {
        int m = i % 4;
        char url[128];
        snprintf(url, sizeof(url), "https://127.0.0.1:%d%s", httpd_port(h), paths[m]);
        b.len = 0;
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 3000L);
        CURLcode rc = curl_easy_perform(c);
        buf_terminate(&b);
        if (rc != CURLE_OK || strcmp((char *)b.data, want[m]) != 0)
            bad[m]++;
    }
    for (int m = 0; m < 4; m++) {
        if (bad[m])
            printf("  %s: %d of 100 streams did not end whole\n", paths[m], bad[m]);
        CHECK(bad[m] == 0);
    }
    buf_free(&b);
    curl_easy_cleanup(c);
    httpd_stop(h);
    pthread_join(t, NULL);
    httpd_free(h);
    unlink(cert);
    unlink(key);
    rmdir(dir);
}

/* ---- httpc, cai's client, against this server ----------------------------- */

static void h_agent(httpd_req *r, void *arg) {
    (void)arg;
    const char *ua = httpd_header(r, "User-Agent");
    httpd_add_header(r, "X-Test", "1");
    httpd_reply(r, 201, "text/plain", ua ? ua : "-", strlen(ua ? ua : "-"));
}

typedef struct {
    long status;
    int x_test;
    buf body;
} seen;

static int seen_status(void *arg, long status) {
    ((seen *)arg)->status = status;
    return 0;
}

static int seen_header(void *arg, const char *line, size_t len) {
    seen *s = arg;
    s->x_test += len == 9 && strncasecmp(line, "X-Test: 1", 9) == 0;
    return 0;
}

static int seen_data(void *arg, const void *data, size_t len) {
    return buf_append(&((seen *)arg)->body, data, len) != CAI_OK;
}

/* The options pccs and the OpenAI client need: User-Agent, https only, the
 * status of a stream, and "unreachable" told apart from other failures. */
static void test_httpc_options(void) {
    httpd_config cfg = {.port = 0};
    httpd *h = NULL;
    pthread_t t;
    char url[128], closed[] = "http://127.0.0.1:1/";
    CHECK_OK(httpd_new(&cfg, &h));
    if (h == NULL)
        return;
    httpd_route(h, "/agent", h_agent, NULL);
    pthread_create(&t, NULL, loop_of, h);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/agent", httpd_port(h));

    httpc *c = NULL;
    httpc_opts o = {.user_agent = "cai-test/1"};
    CHECK_OK(httpc_new(&o, &c));
    httpc_request rq = {.method = "GET", .url = url};
    seen s = {0};
    buf_init(&s.body, 1024);
    httpc_sink sink = {.on_status = seen_status, .on_header = seen_header, .on_data = seen_data,
                       .arg = &s};
    long status = 0;
    CHECK_OK(httpc_stream(c, &rq, &sink, &status));
    CHECK(status == 201 && s.status == 201 && s.x_test == 1);
    CHECK(s.body.len == 10 && memcmp(s.body.data, "cai-test/1", 10) == 0);
    buf_free(&s.body);
    CHECK(!httpc_unreachable(c));
    rq.url = closed;
    CHECK_ST(httpc_stream(c, &rq, &sink, &status), CAI_ERR_IO);
    CHECK(httpc_unreachable(c));
    httpc_free(c);

    httpc_opts plain = {0}, tls_only = {.https_only = 1};
    buf resp;
    rq.url = url;
    CHECK_OK(httpc_new(&plain, &c));
    CHECK_OK(httpc_do(c, &rq, &status, &resp));
    CHECK(status == 201 && strcmp((const char *)resp.data, "-") == 0); /* no User-Agent */
    buf_free(&resp);
    httpc_free(c);
    CHECK_OK(httpc_new(&tls_only, &c));
    CHECK_ST(httpc_do(c, &rq, &status, &resp), CAI_ERR_IO);
    CHECK(strstr(cai_errmsg(CAI_ERR_IO), "http") != NULL && !httpc_unreachable(c));
    buf_free(&resp);
    httpc_free(c);
    stop(h, t);
}

static void test_httpc_url_parse(void) {
    httpc_url u;
    CHECK_OK(httpc_url_parse("http://example.org:81/a/b?x=1&y", &u));
    CHECK(u.host && strcmp(u.host, "example.org") == 0 && strcmp(u.port, "81") == 0);
    CHECK(u.path && strcmp(u.path, "/a/b") == 0 && u.query && strcmp(u.query, "x=1&y") == 0);
    httpc_url_cleanup(&u);
    CHECK(u.host == NULL && u.query == NULL);
    CHECK_OK(httpc_url_parse("https://[::1]", &u));
    CHECK(u.host && strcmp(u.host, "[::1]") == 0 && strcmp(u.port, "443") == 0);
    CHECK(strcmp(u.path, "/") == 0 && u.query == NULL);
    httpc_url_cleanup(&u);
    CHECK_ST(httpc_url_parse("/no/scheme", &u), CAI_ERR_FORMAT);
    CHECK_ST(httpc_url_parse("http://exa mple/", &u), CAI_ERR_FORMAT);
    CHECK(u.host == NULL && u.path == NULL);
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
    httpd_route(srv, "/early", h_early, NULL);
    httpd_route(srv, "/refused", h_refused, NULL);
    snprintf(base_url, sizeof(base_url), "http://127.0.0.1:%d", httpd_port(srv));
    pthread_t t;
    pthread_create(&t, NULL, loop, NULL);
    RUN(test_sync_routes);
    RUN(test_body_limit);
    RUN(test_async_and_stream);
    RUN(test_stream_started_after_its_chunks);
    RUN(test_disconnect_detected);
    RUN(test_rate_limit);
    RUN(test_connection_limit);
    RUN(test_slow_client_dropped);
    RUN(test_rate_limit_collisions_share);
    RUN(test_rate_key);
    RUN(test_rate_limit_per_address);
    RUN(test_path_refusals);
    RUN(test_tls_streams_end);
    RUN(test_httpc_options);
    RUN(test_httpc_url_parse);
    httpd_stop(srv);
    pthread_join(t, NULL);
    usleep(50000); /* let detached workers finish writing to closed replies */
    httpd_free(srv);
    curl_global_cleanup();
    return test_summary();
}

/* Tests of quote generation in a TD (attest/tdx_guest) against a fake
 * configfs-tsm, and of the /dev/tdx_guest GetQuote message codec.
 *
 * The fake kernel: plain files cannot behave like configfs attributes, so
 * the entry's `generation`, `inblob` and `outblob` are FIFOs served by an
 * emulator thread in the order the kernel imposes: `generation` answers
 * "N", then `inblob` takes the REPORTDATA (generation becomes N+1), then
 * `outblob` answers a quote the sim TEE signs over exactly that REPORTDATA,
 * then `generation` answers "N+1". A client that reads or writes out of that
 * order blocks and gets an empty answer after a (generous) deadline, so it
 * fails instead of passing. `provider` is a plain file. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "attest/evidence.h"
#include "attest/quote.h"
#include "attest/sim.h"
#include "attest/tdx_guest.h"
#include "attest/verify.h"
#include "common/file.h"
#include "test.h"

static char sim_dir[] = "/tmp/cai-guest-sim-XXXXXX";
static char tsm_root[] = "/tmp/cai-guest-tsm-XXXXXX";

typedef enum {
    FAKE_OK,
    FAKE_PADDED,      /* outblob: the quote then zero padding */
    FAKE_SEV,         /* provider sev_guest */
    FAKE_NO_PROVIDER, /* no provider attribute */
    FAKE_SHORT,       /* outblob: the first 100 bytes of the quote */
    FAKE_EMPTY,       /* outblob: nothing */
    FAKE_RACE,        /* generation grows by 2: someone else wrote too */
    FAKE_OTHER_RD,    /* outblob: a quote over other REPORTDATA */
    FAKE_HUGE,        /* outblob: more than TDX_QUOTE_MAX_LEN bytes */
} fake_mode;

typedef struct {
    fake_mode mode;
    char entry[4096];
    pthread_t thread;
    int running;
    atomic_int stop;
    /* what the emulator saw */
    int created, removing, got_inblob, served_outblob, gen_reads;
    uint8_t inblob[64];
    size_t inblob_len;
} fake_kernel;

static void path_in(char *out, size_t cap, const char *entry, const char *name) {
    snprintf(out, cap, "%s/%s", entry, name);
}

static int deadline_passed(const struct timespec *t0, const fake_kernel *f) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return atomic_load(&f->stop) || now.tv_sec - t0->tv_sec > 20;
}

/* Opens the FIFO |p| for writing once the client opens it for reading. */
static int fifo_open_write(const char *p, fake_kernel *f) {
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        int fd = open(p, O_WRONLY | O_NONBLOCK);
        if (fd >= 0) {
            int fl = fcntl(fd, F_GETFL);
            fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
            return fd;
        }
        if (errno != ENXIO || deadline_passed(&t0, f))
            return -1;
        usleep(500);
    }
}

static void fifo_serve(const char *p, const void *data, size_t n, fake_kernel *f) {
    int fd = fifo_open_write(p, f);
    if (fd < 0)
        return;
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(fd, (const uint8_t *)data + done, n - done);
        if (w <= 0)
            break; /* the client stopped reading (EPIPE): fine for FAKE_HUGE */
        done += (size_t)w;
    }
    close(fd);
}

/* Reads what the client writes into the FIFO |p| until it closes it. */
static size_t fifo_take(const char *p, uint8_t *out, size_t cap, fake_kernel *f) {
    int fd = open(p, O_RDONLY | O_NONBLOCK);
    if (fd < 0)
        return 0;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    size_t got = 0;
    int had_data = 0;
    while (!deadline_passed(&t0, f)) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (poll(&pf, 1, 10) <= 0)
            continue;
        uint8_t tmp[256];
        ssize_t n = read(fd, tmp, sizeof(tmp));
        if (n > 0) {
            had_data = 1;
            size_t k = (size_t)n < cap - got ? (size_t)n : cap - got;
            memcpy(out + got, tmp, k);
            got += k;
        } else if (n == 0 && (had_data || (pf.revents & POLLHUP)))
            break; /* the writer closed */
        else
            usleep(500);
    }
    close(fd);
    return got;
}

static void *emulate(void *arg) {
    fake_kernel *f = arg;
    char p[4200];
    /* 1. generation before */
    path_in(p, sizeof(p), f->entry, "generation");
    fifo_serve(p, "7\n", 2, f);
    f->gen_reads++;
    /* 2. inblob */
    path_in(p, sizeof(p), f->entry, "inblob");
    f->inblob_len = fifo_take(p, f->inblob, sizeof(f->inblob), f);
    if (f->inblob_len == 0 || atomic_load(&f->stop))
        return NULL;
    f->got_inblob = 1;
    /* 3. outblob: a sim quote over what came in */
    uint8_t rd[64] = {0};
    memcpy(rd, f->inblob, f->inblob_len);
    if (f->mode == FAKE_OTHER_RD)
        rd[0] ^= 0xFF;
    buf q;
    buf_init(&q, 0);
    if (f->mode == FAKE_HUGE) {
        (void)buf_reserve(&q, TDX_QUOTE_MAX_LEN + 4096);
        memset(q.data, 0, TDX_QUOTE_MAX_LEN + 4096);
        q.len = TDX_QUOTE_MAX_LEN + 4096;
    } else if (sim_quote(sim_dir, rd, NULL, &q) != CAI_OK)
        q.len = 0;
    size_t n = q.len;
    if (f->mode == FAKE_SHORT && n > 100)
        n = 100;
    if (f->mode == FAKE_EMPTY)
        n = 0;
    if (f->mode == FAKE_PADDED) {
        uint8_t zeros[1000] = {0};
        (void)buf_append(&q, zeros, sizeof(zeros));
        n = q.len;
    }
    path_in(p, sizeof(p), f->entry, "outblob");
    fifo_serve(p, q.data, n, f);
    f->served_outblob = 1;
    buf_free(&q);
    /* 4. generation after */
    path_in(p, sizeof(p), f->entry, "generation");
    fifo_serve(p, f->mode == FAKE_RACE ? "9\n" : "8\n", 2, f);
    f->gen_reads++;
    return NULL;
}

static void fake_hook(tdx_guest_fake_event ev, const char *entry, void *arg) {
    fake_kernel *f = arg;
    char p[4200];
    static const char *const fifos[] = {"generation", "inblob", "outblob"};
    if (ev == TDX_GUEST_FAKE_CREATED) {
        f->created++;
        snprintf(f->entry, sizeof(f->entry), "%s", entry);
        if (f->mode != FAKE_NO_PROVIDER) {
            const char *prov = f->mode == FAKE_SEV ? "sev_guest\n" : "tdx_guest\n";
            path_in(p, sizeof(p), entry, "provider");
            FILE *fp = fopen(p, "w");
            if (fp) {
                fputs(prov, fp);
                fclose(fp);
            }
        }
        for (int i = 0; i < 3; i++) {
            path_in(p, sizeof(p), entry, fifos[i]);
            if (mkfifo(p, 0600) != 0)
                printf("  mkfifo %s: %s\n", p, strerror(errno));
        }
        f->running = pthread_create(&f->thread, NULL, emulate, f) == 0;
    } else {
        f->removing++;
        atomic_store(&f->stop, 1);
        if (f->running)
            pthread_join(f->thread, NULL);
        f->running = 0;
        for (int i = 0; i < 3; i++) {
            path_in(p, sizeof(p), entry, fifos[i]);
            unlink(p);
        }
        path_in(p, sizeof(p), entry, "provider");
        unlink(p);
    }
}

/* Runs one quote request against the fake kernel in |mode|. */
static cai_status run(fake_mode mode, fake_kernel *f, const uint8_t rd[64], buf *out) {
    memset(f, 0, sizeof(*f));
    f->mode = mode;
    tdx_guest_config cfg = {.tsm_dir = tsm_root, .device = "/nonexistent/tdx_guest",
                            .fake = fake_hook, .fake_arg = f};
    tdx_guest_backend used = TDX_GUEST_NONE;
    cai_status st = tdx_guest_quote(&cfg, rd, out, &used);
    CHECK(used == TDX_GUEST_CONFIGFS);
    /* Always exactly one entry, always removed. */
    CHECK(f->created == 1 && f->removing == 1);
    struct stat s;
    CHECK(stat(f->entry, &s) != 0 && errno == ENOENT);
    return st;
}

static void test_configfs_quote_verifies(void) {
    uint8_t rd[64];
    for (int i = 0; i < 64; i++)
        rd[i] = (uint8_t)(0xC0 ^ i);
    fake_kernel f;
    buf q;
    CHECK_OK(run(FAKE_OK, &f, rd, &q));
    CHECK(f.got_inblob && f.inblob_len == 64 && memcmp(f.inblob, rd, 64) == 0);
    CHECK(f.served_outblob && f.gen_reads == 2);
    /* The quote is real: it verifies through the sim PKI, REPORTDATA is ours. */
    tdx_collateral *c = NULL;
    buf root;
    char p[300];
    snprintf(p, sizeof(p), "%s/%s", sim_dir, SIM_ROOT_CERT);
    CHECK_OK(file_read_all(p, 1 << 16, &root));
    CHECK_OK(buf_terminate(&root));
    CHECK_OK(tdx_collateral_load(sim_dir, &c));
    tdx_trust t = {.sim_root_pem = (const char *)root.data};
    tdx_verify_result r;
    if (c && q.len)
        CHECK_OK(tdx_verify(q.data, q.len, c, &t, time(NULL), &r));
    tdx_quote *pq = NULL;
    CHECK_OK(tdx_quote_parse(q.data, q.len, 0, &pq));
    CHECK(pq && memcmp(pq->body.report_data, rd, 64) == 0);
    tdx_quote_free(pq);
    tdx_collateral_free(c);
    buf_free(&root);
    buf_free(&q);
}

static void test_configfs_padding_trimmed(void) {
    uint8_t rd[64] = {1};
    fake_kernel f;
    buf q;
    CHECK_OK(run(FAKE_PADDED, &f, rd, &q));
    tdx_quote *pq = NULL;
    /* no ALLOW_ZERO_PAD: the padding is gone */
    CHECK_OK(tdx_quote_parse(q.data, q.len, 0, &pq));
    tdx_quote_free(pq);
    buf_free(&q);
}

static void test_configfs_sev_provider_refused(void) {
    uint8_t rd[64] = {2};
    fake_kernel f;
    buf q;
    CHECK_ST(run(FAKE_SEV, &f, rd, &q), CAI_ERR_UNSUPPORTED);
    CHECK(strstr(cai_errmsg(CAI_ERR_UNSUPPORTED), "sev_guest") != NULL);
    /* Nothing was asked of a provider that is not TDX. */
    CHECK(!f.got_inblob);
    CHECK(q.len == 0);
}

static void test_configfs_no_provider(void) {
    uint8_t rd[64] = {3};
    fake_kernel f;
    buf q;
    CHECK_ST(run(FAKE_NO_PROVIDER, &f, rd, &q), CAI_ERR_UNSUPPORTED);
    CHECK(strstr(cai_errmsg(CAI_ERR_UNSUPPORTED), "provider") != NULL);
    CHECK(!f.got_inblob);
}

static void test_configfs_short_outblob(void) {
    uint8_t rd[64] = {4};
    fake_kernel f;
    buf q;
    CHECK_ST(run(FAKE_SHORT, &f, rd, &q), CAI_ERR_TRUNCATED);
    CHECK(q.len == 0);
}

static void test_configfs_empty_outblob(void) {
    uint8_t rd[64] = {5};
    fake_kernel f;
    buf q;
    CHECK_ST(run(FAKE_EMPTY, &f, rd, &q), CAI_ERR_TRUNCATED);
}

static void test_configfs_generation_race(void) {
    uint8_t rd[64] = {6};
    fake_kernel f;
    buf q;
    CHECK_ST(run(FAKE_RACE, &f, rd, &q), CAI_ERR_EXISTS);
    CHECK(strstr(cai_errmsg(CAI_ERR_EXISTS), "generation 7 -> 9") != NULL);
    CHECK(q.len == 0);
}

static void test_configfs_other_report_data(void) {
    uint8_t rd[64] = {7};
    fake_kernel f;
    buf q;
    CHECK_ST(run(FAKE_OTHER_RD, &f, rd, &q), CAI_ERR_AUTH);
    CHECK(q.len == 0);
}

static void test_configfs_huge_outblob(void) {
    uint8_t rd[64] = {8};
    fake_kernel f;
    buf q;
    CHECK_ST(run(FAKE_HUGE, &f, rd, &q), CAI_ERR_LIMIT);
}

static void test_no_interface(void) {
    tdx_guest_config cfg = {.tsm_dir = "/nonexistent/tsm", .device = "/nonexistent/tdx_guest"};
    tdx_guest_backend b = TDX_GUEST_CONFIGFS;
    tdx_guest_detect(&cfg, &b);
    CHECK(b == TDX_GUEST_NONE);
    uint8_t rd[64] = {0};
    buf q;
    CHECK_ST(tdx_guest_quote(&cfg, rd, &q, &b), CAI_ERR_UNSUPPORTED);
    CHECK(strstr(cai_errmsg(CAI_ERR_UNSUPPORTED), "no TDX guest interface") != NULL);
    /* A regular file where the device should be is not a device. */
    char p[300];
    snprintf(p, sizeof(p), "%s/%s", sim_dir, SIM_ROOT_CERT);
    cfg.device = p;
    tdx_guest_detect(&cfg, &b);
    CHECK(b == TDX_GUEST_NONE);
}

/* attest_evidence with the tdx TEE goes through the same code. */
static void test_evidence_tdx(void) {
    fake_kernel f;
    memset(&f, 0, sizeof(f));
    tdx_guest_config cfg = {.tsm_dir = tsm_root, .device = "/nonexistent/tdx_guest",
                            .fake = fake_hook, .fake_arg = &f};
    attest_source src = {.tee = ATTEST_TEE_TDX, .tdx = &cfg};
    uint8_t rd[64] = {0xEE};
    buf q;
    CHECK_OK(attest_evidence(&src, rd, &q));
    CHECK(q.len > TDX_QUOTE_HEADER_LEN && f.got_inblob);
    buf_free(&q);
    /* Without any interface: unsupported, not a silent fallback to sim. */
    tdx_guest_config none = {.tsm_dir = "/nonexistent/tsm", .device = "/nonexistent/dev"};
    src.tdx = &none;
    CHECK_ST(attest_evidence(&src, rd, &q), CAI_ERR_UNSUPPORTED);
}

/* ---- the GetQuote message codec ------------------------------------------ */

/* Fills a GetQuote buffer as the host would: status, out_len, a QGS
 * response {selected id of |id_len| bytes, |quote|}. */
static size_t host_answer(uint8_t *b, size_t cap, uint64_t status, const buf *quote, size_t id_len,
                          uint32_t qgs_err, int32_t size_delta) {
    memset(b, 0, cap);
    uint32_t msg = 16 + 8 + (uint32_t)id_len + (uint32_t)quote->len;
    for (int i = 0; i < 8; i++)
        b[i] = i == 0 ? 1 : 0;
    for (int i = 0; i < 8; i++)
        b[8 + i] = (uint8_t)(status >> (8 * i));
    uint32_t out_len = 4 + msg;
    for (int i = 0; i < 4; i++)
        b[20 + i] = (uint8_t)(out_len >> (8 * i));
    uint8_t *p = b + 24;
    p[0] = (uint8_t)(msg >> 24);
    p[1] = (uint8_t)(msg >> 16);
    p[2] = (uint8_t)(msg >> 8);
    p[3] = (uint8_t)msg;
    p += 4;
    p[0] = 1;  /* major */
    p[4] = 1;  /* GET_QUOTE_RESP */
    uint32_t size = (uint32_t)((int32_t)msg + size_delta);
    for (int i = 0; i < 4; i++) {
        p[8 + i] = (uint8_t)(size >> (8 * i));
        p[12 + i] = (uint8_t)(qgs_err >> (8 * i));
        p[16 + i] = (uint8_t)(id_len >> (8 * i));
        p[20 + i] = (uint8_t)(quote->len >> (8 * i));
    }
    memset(p + 24, 0xAB, id_len);
    memcpy(p + 24 + id_len, quote->data, quote->len);
    return 24 + 4 + msg;
}

static void test_qgs_request_layout(void) {
    uint8_t rep[TDX_GUEST_TDREPORT_LEN], b[2048];
    for (size_t i = 0; i < sizeof(rep); i++)
        rep[i] = (uint8_t)i;
    CHECK_OK(tdx_guest_qgs_request(rep, b, sizeof(b)));
    CHECK(b[0] == 1 && b[8] == 0);               /* version 1, status 0 */
    CHECK(b[16] == 0x1C && b[17] == 0x04);       /* in_len = 4 + 1048 */
    CHECK(b[24] == 0 && b[26] == 0x04 && b[27] == 0x18); /* BE length 1048 */
    CHECK(b[28] == 1 && b[32] == 0);             /* major 1, GET_QUOTE_REQ */
    CHECK(b[36] == 0x18 && b[37] == 0x04);       /* size 1048 */
    CHECK(b[44] == 0x00 && b[45] == 0x04);       /* report_size 1024 */
    CHECK(memcmp(b + 52, rep, sizeof(rep)) == 0);
    CHECK_ST(tdx_guest_qgs_request(rep, b, 100), CAI_ERR_LIMIT);
}

static void test_qgs_response(void) {
    uint8_t rd[64] = {9};
    buf quote, got;
    CHECK_OK(sim_quote(sim_dir, rd, NULL, &quote));
    uint8_t *b = calloc(1, TDX_GUEST_QUOTE_BUF_LEN);
    CHECK(b != NULL);
    if (b && quote.len) {
        host_answer(b, TDX_GUEST_QUOTE_BUF_LEN, 0, &quote, 0, 0, 0);
        CHECK_OK(tdx_guest_qgs_response(b, TDX_GUEST_QUOTE_BUF_LEN, &got));
        CHECK(got.len == quote.len && memcmp(got.data, quote.data, quote.len) == 0);
        buf_free(&got);
        /* a selected attestation key id before the quote is skipped */
        host_answer(b, TDX_GUEST_QUOTE_BUF_LEN, 0, &quote, 32, 0, 0);
        CHECK_OK(tdx_guest_qgs_response(b, TDX_GUEST_QUOTE_BUF_LEN, &got));
        CHECK(got.len == quote.len && memcmp(got.data, quote.data, quote.len) == 0);
        buf_free(&got);
        /* refusals, each with its own status */
        host_answer(b, TDX_GUEST_QUOTE_BUF_LEN, UINT64_C(0x8000000000000001), &quote, 0, 0, 0);
        CHECK_ST(tdx_guest_qgs_response(b, TDX_GUEST_QUOTE_BUF_LEN, &got), CAI_ERR_IO);
        CHECK(strstr(cai_errmsg(CAI_ERR_IO), "unavailable") != NULL);
        host_answer(b, TDX_GUEST_QUOTE_BUF_LEN, 0, &quote, 0, 0x12, 0);
        CHECK_ST(tdx_guest_qgs_response(b, TDX_GUEST_QUOTE_BUF_LEN, &got), CAI_ERR_IO);
        host_answer(b, TDX_GUEST_QUOTE_BUF_LEN, 0, &quote, 0, 0, 1);
        CHECK_ST(tdx_guest_qgs_response(b, TDX_GUEST_QUOTE_BUF_LEN, &got), CAI_ERR_FORMAT);
        size_t n = host_answer(b, TDX_GUEST_QUOTE_BUF_LEN, 0, &quote, 0, 0, 0);
        CHECK_ST(tdx_guest_qgs_response(b, n - 1, &got), CAI_ERR_TRUNCATED);
        CHECK_ST(tdx_guest_qgs_response(b, 10, &got), CAI_ERR_TRUNCATED);
        /* a quote length past the message */
        host_answer(b, TDX_GUEST_QUOTE_BUF_LEN, 0, &quote, 0, 0, 0);
        b[28 + 20] ^= 0x40;
        CHECK_ST(tdx_guest_qgs_response(b, TDX_GUEST_QUOTE_BUF_LEN, &got), CAI_ERR_TRUNCATED);
        /* a quote shorter than the message leaves trailing bytes */
        host_answer(b, TDX_GUEST_QUOTE_BUF_LEN, 0, &quote, 0, 0, 0);
        b[28 + 20] = (uint8_t)(b[28 + 20] - 1);
        CHECK_ST(tdx_guest_qgs_response(b, TDX_GUEST_QUOTE_BUF_LEN, &got), CAI_ERR_TRAILING);
    }
    free(b);
    buf_free(&quote);
}

static void cleanup(void) {
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", sim_dir, tsm_root);
    if (system(cmd) != 0)
        printf("  could not clean up\n");
}

int main(void) {
    signal(SIGPIPE, SIG_IGN); /* FAKE_HUGE: the client stops reading early */
    if (mkdtemp(sim_dir) == NULL || sim_init(sim_dir) != CAI_OK || mkdtemp(tsm_root) == NULL) {
        printf("FAIL setup: %s\n", cai_errmsg(CAI_ERR_IO));
        return 1;
    }
    RUN(test_configfs_quote_verifies);
    RUN(test_configfs_padding_trimmed);
    RUN(test_configfs_sev_provider_refused);
    RUN(test_configfs_no_provider);
    RUN(test_configfs_short_outblob);
    RUN(test_configfs_empty_outblob);
    RUN(test_configfs_generation_race);
    RUN(test_configfs_other_report_data);
    RUN(test_configfs_huge_outblob);
    RUN(test_no_interface);
    RUN(test_evidence_tdx);
    RUN(test_qgs_request_layout);
    RUN(test_qgs_response);
    cleanup();
    return test_summary();
}

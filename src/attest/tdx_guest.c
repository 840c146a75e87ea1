/* tdx_guest.c - TDX quotes through configfs-tsm or /dev/tdx_guest; see
 * tdx_guest.h. */
#include "attest/tdx_guest.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attest/quote.h"
#include "common/cursor.h"
#include "common/log.h"

#define ATTR_SMALL_MAX 64 /* provider, generation */

/* include/uapi/linux/tdx-guest.h (defined here: Debian 12's headers predate it) */
struct tdx_guest_report_req {
    uint8_t reportdata[64];
    uint8_t tdreport[TDX_GUEST_TDREPORT_LEN];
};
struct tdx_guest_quote_req {
    uint64_t buf;
    uint64_t len;
};
#define TDX_GUEST_CMD_GET_REPORT0 _IOWR('T', 1, struct tdx_guest_report_req)
#define TDX_GUEST_CMD_GET_QUOTE _IOR('T', 4, struct tdx_guest_quote_req)

/* GHCI 1.5 TDG.VP.VMCALL<GetQuote> shared buffer and its status codes. */
#define GHCI_HDR_LEN 24
#define GHCI_VERSION 1
#define GHCI_SUCCESS 0
#define GHCI_IN_FLIGHT UINT64_C(0xffffffffffffffff)
#define GHCI_ERROR UINT64_C(0x8000000000000000)
#define GHCI_UNAVAILABLE UINT64_C(0x8000000000000001)

/* Intel DCAP qgs_msg_lib: header {u16 major, u16 minor, u32 type, u32 size,
 * u32 error_code}, then GET_QUOTE_REQ {u32 report_size, u32 id_list_size,
 * report, ids} / GET_QUOTE_RESP {u32 selected_id_size, u32 quote_size, id,
 * quote}. */
#define QGS_HDR_LEN 16
#define QGS_MAJOR 1
#define QGS_GET_QUOTE_REQ 0
#define QGS_GET_QUOTE_RESP 1

const char *tdx_guest_backend_name(tdx_guest_backend b) {
    switch (b) {
    case TDX_GUEST_CONFIGFS:
        return "configfs-tsm";
    case TDX_GUEST_DEVICE:
        return "/dev/tdx_guest";
    default:
        return "none";
    }
}

static const char *tsm_dir(const tdx_guest_config *cfg) {
    const char *e = getenv("CAI_TSM_REPORT_DIR");
    return cfg && cfg->tsm_dir ? cfg->tsm_dir : e && *e ? e : TDX_GUEST_TSM_DIR;
}

static const char *device_path(const tdx_guest_config *cfg) {
    const char *e = getenv("CAI_TDX_GUEST_DEVICE");
    return cfg && cfg->device ? cfg->device : e && *e ? e : TDX_GUEST_DEVICE_PATH;
}

void tdx_guest_detect(const tdx_guest_config *cfg, tdx_guest_backend *out) {
    struct stat s;
    if (stat(tsm_dir(cfg), &s) == 0 && S_ISDIR(s.st_mode))
        *out = TDX_GUEST_CONFIGFS;
    else if (stat(device_path(cfg), &s) == 0 && S_ISCHR(s.st_mode))
        *out = TDX_GUEST_DEVICE;
    else
        *out = TDX_GUEST_NONE;
}

/* ---- configfs-tsm --------------------------------------------------------- */

static cai_status attr_path(char *p, size_t cap, const char *entry, const char *name) {
    if ((size_t)snprintf(p, cap, "%s/%s", entry, name) >= cap)
        return cai_fail(CAI_ERR_LIMIT, "configfs-tsm: path too long");
    return CAI_OK;
}

/* Reads the attribute |name| of |entry| into |out| (at most |max| bytes). */
static cai_status attr_read(const char *entry, const char *name, size_t max, buf *out) {
    char p[4200];
    cai_status st = attr_path(p, sizeof(p), entry, name);
    buf_init(out, max);
    if (st != CAI_OK)
        return st;
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cai_fail(errno == ENOENT ? CAI_ERR_UNSUPPORTED : CAI_ERR_IO,
                        "configfs-tsm: cannot open %s: %s", p, strerror(errno));
    for (;;) {
        uint8_t chunk[4096];
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            st = cai_fail(CAI_ERR_IO, "configfs-tsm: reading %s failed: %s", p, strerror(errno));
            break;
        }
        if (n == 0)
            break;
        if ((st = buf_append(out, chunk, (size_t)n)) != CAI_OK) {
            if (st == CAI_ERR_LIMIT)
                st = cai_fail(st, "configfs-tsm: %s is larger than %zu bytes", p, max);
            break;
        }
    }
    close(fd);
    return st;
}

/* Reads a one-line text attribute (trailing newline removed) into |s|. */
static cai_status attr_text(const char *entry, const char *name, char s[ATTR_SMALL_MAX + 1]) {
    buf b;
    cai_status st = attr_read(entry, name, ATTR_SMALL_MAX, &b);
    if (st == CAI_OK) {
        size_t n = b.len;
        while (n > 0 && (b.data[n - 1] == '\n' || b.data[n - 1] == '\0'))
            n--;
        if (memchr(b.data, '\0', n) != NULL)
            st = cai_fail(CAI_ERR_FORMAT, "configfs-tsm: %s/%s is not text", entry, name);
        else {
            if (n)
                memcpy(s, b.data, n);
            s[n] = '\0';
        }
    }
    buf_free(&b);
    return st;
}

static cai_status attr_generation(const char *entry, uint64_t *out) {
    char s[ATTR_SMALL_MAX + 1];
    cai_status st = attr_text(entry, "generation", s);
    if (st != CAI_OK)
        return st;
    char *end = NULL;
    errno = 0;
    unsigned long long v = s[0] >= '0' && s[0] <= '9' ? strtoull(s, &end, 10) : 0;
    if (end == NULL || *end != '\0' || errno != 0)
        return cai_fail(CAI_ERR_FORMAT, "configfs-tsm: generation '%.20s' is not a number", s);
    *out = (uint64_t)v;
    return CAI_OK;
}

static cai_status attr_write(const char *entry, const char *name, const void *p, size_t n) {
    char path[4200];
    cai_status st = attr_path(path, sizeof(path), entry, name);
    if (st != CAI_OK)
        return st;
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return cai_fail(CAI_ERR_IO, "configfs-tsm: cannot open %s: %s", path, strerror(errno));
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(fd, (const uint8_t *)p + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            st = cai_fail(CAI_ERR_IO, "configfs-tsm: writing %s failed: %s", path,
                          w < 0 ? strerror(errno) : "short write");
            break;
        }
        done += (size_t)w;
    }
    /* configfs commits a binary attribute when it is closed: its error counts */
    if (close(fd) != 0 && st == CAI_OK)
        st = cai_fail(CAI_ERR_IO, "configfs-tsm: the kernel refused %s: %s", path,
                      strerror(errno));
    return st;
}

/* Checks that |blob| is a TDX quote over |report_data|; sets |out| to it. */
static cai_status check_quote(const uint8_t *blob, size_t len, const uint8_t report_data[64],
                              const char *from, buf *out) {
    tdx_quote *q = NULL;
    cai_status st = tdx_quote_parse(blob, len, TDX_QUOTE_ALLOW_ZERO_PAD, &q);
    if (st != CAI_OK)
        return cai_fail(st, "%s did not return a TDX quote (%zu bytes): %s", from, len,
                        cai_errmsg(st));
    if (memcmp(q->body.report_data, report_data, 64) != 0)
        st = cai_fail(CAI_ERR_AUTH, "%s returned a quote whose REPORTDATA is not the one asked for",
                      from);
    else
        st = buf_append(out, q->raw, q->len);
    tdx_quote_free(q);
    return st;
}

static atomic_uint entry_counter;

static cai_status configfs_quote(const tdx_guest_config *cfg, const uint8_t report_data[64],
                                 buf *out) {
    const char *dir = tsm_dir(cfg);
    char entry[4096];
    int made = 0;
    for (int tries = 0; tries < 16 && !made; tries++) {
        unsigned n = atomic_fetch_add(&entry_counter, 1);
        if ((size_t)snprintf(entry, sizeof(entry), "%s/cai-%ld-%u", dir, (long)getpid(), n) >=
            sizeof(entry))
            return cai_fail(CAI_ERR_LIMIT, "configfs-tsm: path too long");
        if (mkdir(entry, 0700) == 0)
            made = 1;
        else if (errno != EEXIST)
            return cai_fail(errno == ENOENT ? CAI_ERR_UNSUPPORTED : CAI_ERR_IO,
                            "configfs-tsm: cannot create a report entry in %s: %s", dir,
                            strerror(errno));
    }
    if (!made)
        return cai_fail(CAI_ERR_EXISTS, "configfs-tsm: no free report entry name in %s", dir);
    if (cfg && cfg->fake)
        cfg->fake(TDX_GUEST_FAKE_CREATED, entry, cfg->fake_arg);

    char provider[ATTR_SMALL_MAX + 1];
    uint64_t gen0 = 0, gen1 = 0;
    buf blob;
    buf_init(&blob, 0);
    cai_status st = attr_text(entry, "provider", provider);
    if (st == CAI_OK && strcmp(provider, "tdx_guest") != 0)
        st = cai_fail(CAI_ERR_UNSUPPORTED,
                      "configfs-tsm: the provider is '%s', not tdx_guest: this is not a TDX guest",
                      provider);
    else if (st != CAI_OK)
        st = cai_fail(st, "configfs-tsm: no provider: %s", cai_errmsg(st));
    if (st == CAI_OK)
        st = attr_generation(entry, &gen0);
    if (st == CAI_OK)
        st = attr_write(entry, "inblob", report_data, 64);
    if (st == CAI_OK) {
        buf_free(&blob);
        st = attr_read(entry, "outblob", TDX_QUOTE_MAX_LEN, &blob);
    }
    if (st == CAI_OK)
        st = attr_generation(entry, &gen1);
    if (st == CAI_OK && gen1 != gen0 + 1)
        st = cai_fail(CAI_ERR_EXISTS,
                      "configfs-tsm: another writer changed %s while we used it (generation %" PRIu64
                      " -> %" PRIu64 ", expected %" PRIu64 "): the quote may not be ours; retry",
                      entry, gen0, gen1, gen0 + 1);
    if (st == CAI_OK)
        st = check_quote(blob.data, blob.len, report_data, "configfs-tsm outblob", out);

    if (cfg && cfg->fake)
        cfg->fake(TDX_GUEST_FAKE_REMOVING, entry, cfg->fake_arg);
    if (rmdir(entry) != 0)
        log_warn("configfs-tsm: could not remove the report entry %s: %s", entry, strerror(errno));
    buf_free(&blob);
    return st;
}

/* ---- /dev/tdx_guest + QGS ----------------------------------------------------- */

static void put_u16le(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void put_u32le(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64le(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

cai_status tdx_guest_qgs_request(const uint8_t tdreport[TDX_GUEST_TDREPORT_LEN], uint8_t *out,
                                 size_t cap) {
    const uint32_t msg_len = QGS_HDR_LEN + 8 + TDX_GUEST_TDREPORT_LEN;
    if (cap < GHCI_HDR_LEN + 4 + (size_t)msg_len)
        return cai_fail(CAI_ERR_LIMIT, "tdx_guest: GetQuote buffer too small");
    memset(out, 0, cap);
    uint8_t *p = out;
    put_u64le(p, GHCI_VERSION);
    put_u64le(p + 8, 0);              /* status, filled by the host */
    put_u32le(p + 16, 4 + msg_len);   /* in_len */
    put_u32le(p + 20, 0);             /* out_len, filled by the host */
    p += GHCI_HDR_LEN;
    p[0] = (uint8_t)(msg_len >> 24); /* the QGS message length is big-endian */
    p[1] = (uint8_t)(msg_len >> 16);
    p[2] = (uint8_t)(msg_len >> 8);
    p[3] = (uint8_t)msg_len;
    p += 4;
    put_u16le(p, QGS_MAJOR);
    put_u16le(p + 2, 0);
    put_u32le(p + 4, QGS_GET_QUOTE_REQ);
    put_u32le(p + 8, msg_len);
    put_u32le(p + 12, 0);
    put_u32le(p + 16, TDX_GUEST_TDREPORT_LEN);
    put_u32le(p + 20, 0); /* no id list: the default attestation key */
    memcpy(p + 24, tdreport, TDX_GUEST_TDREPORT_LEN);
    return CAI_OK;
}

cai_status tdx_guest_qgs_response(const uint8_t *data, size_t len, buf *quote) {
    buf_init(quote, TDX_QUOTE_MAX_LEN);
    cursor c, d, msg, q;
    uint64_t version, status;
    uint32_t in_len, out_len, msg_len;
    cursor_init(&c, data, len);
    if (!cursor_get_u64le(&c, &version) || !cursor_get_u64le(&c, &status) ||
        !cursor_get_u32le(&c, &in_len) || !cursor_get_u32le(&c, &out_len))
        return cai_fail(CAI_ERR_TRUNCATED, "tdx_guest: GetQuote buffer shorter than its header");
    if (status != GHCI_SUCCESS)
        return cai_fail(CAI_ERR_IO, "tdx_guest: the host's GetQuote failed: %s (status 0x%" PRIx64 ")",
                        status == GHCI_IN_FLIGHT     ? "still in flight"
                        : status == GHCI_UNAVAILABLE ? "quote generation service unavailable"
                        : status == GHCI_ERROR       ? "error"
                                                     : "unknown status",
                        status);
    if (version != GHCI_VERSION)
        return cai_fail(CAI_ERR_FORMAT, "tdx_guest: GetQuote buffer version %" PRIu64, version);
    if (!cursor_get_span(&c, &d, out_len))
        return cai_fail(CAI_ERR_TRUNCATED, "tdx_guest: out_len %u exceeds the buffer", out_len);
    if (!cursor_get_u32be(&d, &msg_len) || msg_len != cursor_len(&d))
        return cai_fail(CAI_ERR_FORMAT,
                        "tdx_guest: QGS message length disagrees with the GetQuote out_len");
    uint16_t major, minor;
    uint32_t type, size, err, id_size, quote_size;
    cursor_init(&msg, cursor_data(&d), cursor_len(&d));
    if (!cursor_get_u16le(&msg, &major) || !cursor_get_u16le(&msg, &minor) ||
        !cursor_get_u32le(&msg, &type) || !cursor_get_u32le(&msg, &size) ||
        !cursor_get_u32le(&msg, &err))
        return cai_fail(CAI_ERR_TRUNCATED, "tdx_guest: QGS response shorter than its header");
    if (major != QGS_MAJOR || type != QGS_GET_QUOTE_RESP)
        return cai_fail(CAI_ERR_FORMAT, "tdx_guest: not a QGS v1 GET_QUOTE_RESP (v%u type %u)",
                        major, type);
    if (size != msg_len)
        return cai_fail(CAI_ERR_FORMAT, "tdx_guest: QGS message size %u, %u bytes present", size,
                        msg_len);
    if (err != 0)
        return cai_fail(CAI_ERR_IO, "tdx_guest: the quote generation service failed (error 0x%x)",
                        err);
    if (!cursor_get_u32le(&msg, &id_size) || !cursor_get_u32le(&msg, &quote_size) ||
        !cursor_skip(&msg, id_size) || !cursor_get_span(&msg, &q, quote_size))
        return cai_fail(CAI_ERR_TRUNCATED, "tdx_guest: QGS response shorter than its quote");
    if (cursor_len(&msg) != 0)
        return cai_fail(CAI_ERR_TRAILING, "tdx_guest: %zu bytes after the quote",
                        cursor_len(&msg));
    if (quote_size == 0)
        return cai_fail(CAI_ERR_FORMAT, "tdx_guest: the QGS returned an empty quote");
    CAI_UNUSED(in_len);
    CAI_UNUSED(minor);
    return buf_append(quote, cursor_data(&q), cursor_len(&q));
}

static cai_status device_quote(const tdx_guest_config *cfg, const uint8_t report_data[64],
                               buf *out) {
    const char *dev = device_path(cfg);
    int fd = open(dev, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return cai_fail(errno == ENOENT ? CAI_ERR_UNSUPPORTED : CAI_ERR_IO,
                        "tdx_guest: cannot open %s: %s", dev, strerror(errno));
    struct tdx_guest_report_req rr;
    uint8_t *qb = calloc(1, TDX_GUEST_QUOTE_BUF_LEN);
    buf quote;
    buf_init(&quote, 0);
    cai_status st = qb ? CAI_OK : CAI_ERR_NOMEM;
    memset(&rr, 0, sizeof(rr));
    memcpy(rr.reportdata, report_data, 64);
    if (st == CAI_OK && ioctl(fd, TDX_GUEST_CMD_GET_REPORT0, &rr) != 0)
        st = cai_fail(CAI_ERR_IO, "tdx_guest: TDX_CMD_GET_REPORT0 failed: %s", strerror(errno));
    if (st == CAI_OK)
        st = tdx_guest_qgs_request(rr.tdreport, qb, TDX_GUEST_QUOTE_BUF_LEN);
    if (st == CAI_OK) {
        struct tdx_guest_quote_req qr = {.buf = (uint64_t)(uintptr_t)qb,
                                         .len = TDX_GUEST_QUOTE_BUF_LEN};
        int r;
        do
            r = ioctl(fd, TDX_GUEST_CMD_GET_QUOTE, &qr);
        while (r != 0 && errno == EINTR);
        if (r != 0)
            st = cai_fail(errno == ENOTTY || errno == EINVAL ? CAI_ERR_UNSUPPORTED : CAI_ERR_IO,
                          "tdx_guest: TDX_CMD_GET_QUOTE failed: %s (this kernel may only offer "
                          "quotes through configfs-tsm)",
                          strerror(errno));
    }
    if (st == CAI_OK)
        st = tdx_guest_qgs_response(qb, TDX_GUEST_QUOTE_BUF_LEN, &quote);
    if (st == CAI_OK)
        st = check_quote(quote.data, quote.len, report_data, "the host's quote service", out);
    free(qb);
    buf_free(&quote);
    close(fd);
    return st;
}

cai_status tdx_guest_quote(const tdx_guest_config *cfg, const uint8_t report_data[64], buf *out,
                           tdx_guest_backend *used) {
    buf_init(out, TDX_QUOTE_MAX_LEN);
    tdx_guest_backend b;
    tdx_guest_detect(cfg, &b);
    if (used)
        *used = b;
    cai_status st;
    switch (b) {
    case TDX_GUEST_CONFIGFS:
        st = configfs_quote(cfg, report_data, out);
        break;
    case TDX_GUEST_DEVICE:
        st = device_quote(cfg, report_data, out);
        break;
    default:
        return cai_fail(CAI_ERR_UNSUPPORTED,
                        "no TDX guest interface here (neither configfs-tsm at %s nor %s): "
                        "not running in a TDX trust domain?",
                        tsm_dir(cfg), device_path(cfg));
    }
    if (st != CAI_OK)
        buf_free(out);
    return st;
}

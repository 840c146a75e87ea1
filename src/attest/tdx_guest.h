/* tdx_guest.h - TDX quotes from inside a trust domain, through the Linux
 * guest kernel.
 *
 * Two kernel interfaces, tried in this order:
 *
 *  1. configfs-tsm (Linux 6.7+, Documentation/ABI/testing/configfs-tsm):
 *     mkdir /sys/kernel/config/tsm/report/NAME, check `provider` is
 *     "tdx_guest", read `generation`, write the 64-byte REPORTDATA to
 *     `inblob`, read the quote from `outblob`, read `generation` again (it
 *     must have grown by exactly our one write, else another process raced
 *     us on the same entry), rmdir.
 *  2. /dev/tdx_guest (include/uapi/linux/tdx-guest.h): TDX_CMD_GET_REPORT0
 *     for the TDREPORT, then TDX_CMD_GET_QUOTE, which hands a GHCI GetQuote
 *     buffer (a QGS "get quote" message carrying the TDREPORT) to the host's
 *     quote generation service; the host answers in the same buffer. Kernels
 *     without TDX_CMD_GET_QUOTE (upstream only has GET_REPORT0) need
 *     configfs-tsm.
 *
 * Whatever the kernel returns is untrusted until verified: the host relays
 * it. We check that it parses as a TDX quote carrying our REPORTDATA; the
 * signature chain is the verifier's job (verify.h). */
#ifndef CAI_ATTEST_TDX_GUEST_H
#define CAI_ATTEST_TDX_GUEST_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/status.h"

#define TDX_GUEST_TSM_DIR "/sys/kernel/config/tsm/report"
#define TDX_GUEST_DEVICE_PATH "/dev/tdx_guest"
#define TDX_GUEST_TDREPORT_LEN 1024
#define TDX_GUEST_QUOTE_BUF_LEN (16u * 1024u) /* GHCI shared buffer: 4 pages */

typedef enum {
    TDX_GUEST_NONE = 0,
    TDX_GUEST_CONFIGFS = 1, /* configfs-tsm, provider tdx_guest */
    TDX_GUEST_DEVICE = 2,   /* /dev/tdx_guest ioctls + the host's QGS */
} tdx_guest_backend;

/* Events for a test's configfs emulation (see tdx_guest_config.fake). */
typedef enum {
    TDX_GUEST_FAKE_CREATED = 1,  /* the entry directory was just made */
    TDX_GUEST_FAKE_REMOVING = 2, /* the entry is about to be removed */
} tdx_guest_fake_event;

typedef struct {
    /* The configfs-tsm report directory. NULL: $CAI_TSM_REPORT_DIR if set,
     * else TDX_GUEST_TSM_DIR. */
    const char *tsm_dir;
    /* The TDX guest device. NULL: $CAI_TDX_GUEST_DEVICE if set, else
     * TDX_GUEST_DEVICE_PATH. */
    const char *device;
    /* Tests only (NULL in production): plain directories do not populate a
     * new entry or let rmdir remove attribute files the way configfs does,
     * so a test that emulates the kernel is told when the entry is created
     * (before any attribute is touched) and before it is removed. */
    void (*fake)(tdx_guest_fake_event ev, const char *entry, void *arg);
    void *fake_arg;
} tdx_guest_config;

/* tdx_guest_backend_name returns "configfs-tsm", "/dev/tdx_guest" or "none". */
const char *tdx_guest_backend_name(tdx_guest_backend b);

/* tdx_guest_detect sets |*out| to the first interface present with |cfg|
 * (NULL = defaults): TDX_GUEST_CONFIGFS if the report directory exists,
 * else TDX_GUEST_DEVICE if the device exists, else TDX_GUEST_NONE. Presence
 * only: the provider is checked when a quote is made. */
void tdx_guest_detect(const tdx_guest_config *cfg, tdx_guest_backend *out);

/* tdx_guest_quote asks the kernel for a quote over |report_data| and sets
 * |out| (initialised here; buf_free it) to the quote bytes, without padding;
 * |used| (may be NULL) says which interface answered. Returns
 * CAI_ERR_UNSUPPORTED when there is no TDX guest interface or the configfs
 * provider is not tdx_guest, CAI_ERR_IO for a kernel/host failure,
 * CAI_ERR_EXISTS if another writer raced on the report entry, CAI_ERR_FORMAT
 * or CAI_ERR_TRUNCATED if the result is not a TDX quote and CAI_ERR_AUTH if
 * its REPORTDATA is not |report_data|; the detail is in cai_errmsg. */
cai_status tdx_guest_quote(const tdx_guest_config *cfg, const uint8_t report_data[64], buf *out,
                           tdx_guest_backend *used) CAI_WUR;

/* tdx_guest_qgs_request writes the GHCI GetQuote buffer for |tdreport| into
 * |out| (|cap| >= 24 + 4 + 24 + TDX_GUEST_TDREPORT_LEN bytes; the rest is
 * zeroed): header {version 1, status 0, in_len, out_len 0}, a big-endian
 * message length, then a QGS GET_QUOTE_REQ v1.0. CAI_ERR_LIMIT if |cap| is
 * too small. */
cai_status tdx_guest_qgs_request(const uint8_t tdreport[TDX_GUEST_TDREPORT_LEN], uint8_t *out,
                                 size_t cap) CAI_WUR;

/* tdx_guest_qgs_response parses the GHCI GetQuote buffer the host filled
 * (|len| bytes, untrusted) and sets |quote| (initialised here) to the quote
 * it carries. Fails with CAI_ERR_IO for a GetQuote or QGS error status,
 * CAI_ERR_TRUNCATED / CAI_ERR_FORMAT / CAI_ERR_LIMIT for inconsistent
 * lengths. */
cai_status tdx_guest_qgs_response(const uint8_t *data, size_t len, buf *quote) CAI_WUR;

#endif

/* verify.h - Intel TDX DCAP quote verification.
 *
 * tdx_verify checks, in order: the quote's structure; the PCK chain in the
 * quote up to a pinned root (Intel's SGX Root CA public key is embedded; a
 * simulated root only if the caller passes it) with the root and PCK CRLs;
 * the QE report signature by the PCK key; the QE report data binding the
 * attestation key; the quote signature; the PCK certificate's SGX extension;
 * the TCB info and QE identity chains and signatures; the collateral's time
 * window; TCB level matching (-> TCB status) and the QE identity. */
#ifndef CAI_ATTEST_VERIFY_H
#define CAI_ATTEST_VERIFY_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "attest/quote.h"
#include "common/status.h"

typedef enum {
    TDX_VERIFY_OK = 0,
    TDX_VERIFY_QUOTE_FORMAT,        /* quote does not parse */
    TDX_VERIFY_COLLATERAL_FORMAT,   /* collateral malformed */
    TDX_VERIFY_PCK_CHAIN,           /* PCK chain malformed or does not verify */
    TDX_VERIFY_ROOT_UNTRUSTED,      /* chain ends at a root that is not pinned */
    TDX_VERIFY_REVOKED,             /* a certificate in a chain is revoked */
    TDX_VERIFY_QE_REPORT_SIGNATURE, /* QE report not signed by the PCK key */
    TDX_VERIFY_QE_REPORT_BINDING,   /* QE report data != SHA-256(att key||auth) */
    TDX_VERIFY_QUOTE_SIGNATURE,     /* quote not signed by the attestation key */
    TDX_VERIFY_PCK_EXTENSION,       /* SGX extension missing or malformed */
    TDX_VERIFY_TCB_INFO_SIGNATURE,  /* TCB info chain or signature bad */
    TDX_VERIFY_TCB_INFO_MISMATCH,   /* TCB info for another FMSPC/PCE ID/TEE */
    TDX_VERIFY_TCB_LEVEL,           /* no TCB level matches the platform */
    TDX_VERIFY_QE_IDENTITY_SIGNATURE,
    TDX_VERIFY_QE_IDENTITY_MISMATCH, /* QE is not the one QE identity names */
    TDX_VERIFY_COLLATERAL_EXPIRED,   /* |now| outside a collateral window */
} tdx_verify_error;

/* tdx_verify_error_str returns a static name for |e|. */
const char *tdx_verify_error_str(tdx_verify_error e);

/* Collateral in the format of shared/data/tdx (PCS v4 responses as one JSON
 * document). Opaque. */
typedef struct tdx_collateral tdx_collateral;

/* tdx_collateral_parse parses the JSON document at |json| (|len| bytes) into
 * a new collateral (free with tdx_collateral_free). CAI_ERR_FORMAT if a field
 * is missing or malformed. */
cai_status tdx_collateral_parse(const char *json, size_t len, tdx_collateral **out) CAI_WUR;

/* tdx_collateral_load reads |path|: a collateral JSON file, or a directory
 * holding collateral.json (as sim_init writes). */
cai_status tdx_collateral_load(const char *path, tdx_collateral **out) CAI_WUR;

/* tdx_collateral_free frees |c|; NULL is fine. */
void tdx_collateral_free(tdx_collateral *c);

typedef struct {
    /* NULL: trust only Intel's SGX Root CA (pinned public key). Otherwise the
     * PEM of a simulated root to trust INSTEAD (tests only; insecure). */
    const char *sim_root_pem;
} tdx_trust;

typedef struct {
    tdx_verify_error error;
    char tcb_status[32];    /* "UpToDate", "OutOfDate", ... (platform TCB) */
    char qe_tcb_status[32]; /* QE identity level status */
    char tdx_module_status[32]; /* TDX module identity level ("" if version 0) */
    char tcb_date[32];
    uint8_t fmspc[6];
    uint8_t pce_id[2];
    uint16_t pce_svn;
    uint8_t cpu_svn[16];
    time_t collateral_expires; /* the earliest nextUpdate */
} tdx_verify_result;

/* tdx_verify verifies the quote at |quote| (|len| bytes, zero padding
 * allowed) with |coll|, trusting |trust| (NULL = Intel), at time |now|. On
 * success returns CAI_OK with |res| filled; the caller still has to judge
 * res->tcb_status and the quote's claims. On failure returns a negative
 * status (CAI_ERR_AUTH for a failed check, CAI_ERR_FORMAT for malformed
 * input, CAI_ERR_NOT_FOUND when no TCB/QE level matches) with res->error
 * naming the failed check and the detail in cai_errmsg. */
cai_status tdx_verify(const uint8_t *quote, size_t len, const tdx_collateral *coll,
                      const tdx_trust *trust, time_t now, tdx_verify_result *res) CAI_WUR;

#endif

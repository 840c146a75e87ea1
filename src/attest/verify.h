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
    TDX_VERIFY_COLLATERAL_EXPIRED,   /* |now| after a collateral's nextUpdate
                                      * or a certificate's/CRL's notAfter */
    TDX_VERIFY_COLLATERAL_UNAVAILABLE, /* no collateral for this platform */
    TDX_VERIFY_REPORT_DATA,          /* REPORTDATA is not the expected binding */
    TDX_VERIFY_DEBUG,                /* a DEBUG TD, refused unless allowed
                                      * (attest_verifier.allow_debug) */
    TDX_VERIFY_COLLATERAL_NOT_YET_VALID, /* |now| before a collateral's
                                          * issueDate or a certificate's/CRL's
                                          * notBefore/lastUpdate */
    TDX_VERIFY_TCB_REVOKED,          /* the matched platform TCB level, TDX
                                      * module level or QE level is Revoked */
    TDX_VERIFY_ERROR_COUNT           /* not an error: the number of codes */
} tdx_verify_error;

/* tdx_verify_error_str returns a static name for |e| ("unknown" for a
 * value that is no code). Every code has its own name. */
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

/* tdx_collateral_free drops a reference to |c| and frees it with the last
 * one; NULL is fine. */
void tdx_collateral_free(tdx_collateral *c);

/* tdx_collateral_ref returns |c| with one more reference (thread-safe): a
 * cache hands out references, each released with tdx_collateral_free. */
tdx_collateral *tdx_collateral_ref(tdx_collateral *c);

/* tdx_collateral_window sets |*issued| to the latest issue date and
 * |*expires| to the earliest nextUpdate over the TCB info, the QE identity
 * and both CRLs: the collateral is usable in [issued, expires].
 * CAI_ERR_FORMAT if a date is missing or malformed. */
cai_status tdx_collateral_window(const tdx_collateral *c, time_t *issued, time_t *expires) CAI_WUR;

/* What a quote's PCK certificate says about where its collateral lives
 * (read before verification, to fetch collateral: not trusted by itself). */
typedef struct {
    uint8_t fmspc[6];
    int processor_ca;   /* 1: issued by the PCK Processor CA, 0: Platform CA */
    int intel_root;     /* 1: the chain ends at Intel's SGX Root CA key */
} tdx_pck_info;

/* tdx_pck_info_get parses |quote| and its PCK leaf. CAI_ERR_FORMAT if the
 * quote, chain or SGX extension is malformed or the issuer is neither PCK CA. */
cai_status tdx_pck_info_get(const uint8_t *quote, size_t len, tdx_pck_info *out) CAI_WUR;

typedef struct {
    /* NULL: trust only Intel's SGX Root CA (pinned public key). Otherwise the
     * PEM of a simulated root to trust INSTEAD (tests only; insecure). */
    const char *sim_root_pem;
} tdx_trust;

#define TDX_ADVISORY_MAX 128 /* named limit: advisory IDs in one verdict */
#define TDX_ADVISORY_LEN 32

typedef struct {
    tdx_verify_error error;
    /* The TCB status of the whole platform: the matched TDX TCB level's,
     * merged with the TDX module identity's and the QE identity's the way
     * Intel's QVL merges them (TcbLevelCheck: convergeTcbStatusWith
     * TdxModuleStatus, then ...WithQeTcbStatus): "UpToDate",
     * "SWHardeningNeeded", "ConfigurationNeeded",
     * "ConfigurationAndSWHardeningNeeded", "OutOfDate",
     * "OutOfDateConfigurationNeeded". Revoked is refused
     * (TDX_VERIFY_TCB_REVOKED). */
    char tcb_status[40];
    char platform_tcb_status[40]; /* the matched TDX TCB level's own status */
    char qe_tcb_status[32];       /* QE identity level status */
    char tdx_module_status[32];   /* TDX module identity level ("" if version 0) */
    char tcb_date[32];
    /* The advisories of the matched TCB level, module level and QE level
     * (Intel-SA-...), each once, in that order. */
    size_t n_advisory_ids;
    char advisory_ids[TDX_ADVISORY_MAX][TDX_ADVISORY_LEN];
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
 * naming the failed check and the detail in cai_errmsg. It does not judge
 * the TD's attributes: the DEBUG bit is attest_verify_claims' check. */
cai_status tdx_verify(const uint8_t *quote, size_t len, const tdx_collateral *coll,
                      const tdx_trust *trust, time_t now, tdx_verify_result *res) CAI_WUR;

#endif

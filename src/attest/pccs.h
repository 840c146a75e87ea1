/* pccs.h - DCAP collateral for TDX quotes: fetched from Intel's PCS or a
 * PCCS (v4 API) with httpc, cached on disk until it expires, or read from
 * a directory offline.
 *
 * Per FMSPC and PCK CA (platform or processor) it fetches:
 *   GET {base}/tdx/certification/v4/tcb?fmspc=FMSPC   body {"tcbInfo":..,"signature":..},
 *                                                     header TCB-Info-Issuer-Chain
 *   GET {base}/tdx/certification/v4/qe/identity       body {"enclaveIdentity":..,"signature":..},
 *                                                     header SGX-Enclave-Identity-Issuer-Chain
 *   GET {base}/sgx/certification/v4/pckcrl?ca=CA&encoding=der
 *                                                     body the CRL, header SGX-PCK-CRL-Issuer-Chain
 *   the root CA CRL: from a PCCS {base}/sgx/certification/v4/rootcacrl (hex or
 *   DER); from Intel's PCS, Intel's CRL distribution point for the root CA.
 * Issuer chains are URL-encoded PEM. The signed TCB info / QE identity text
 * is kept byte for byte as served (its signature covers those bytes).
 *
 * Nothing here is trusted: tdx_verify checks every signature and chain up to
 * the pinned root. The cache only saves round trips; it is refreshed once
 * the earliest nextUpdate of its pieces has passed. A cache entry is a file
 * DIR/tdx-FMSPC-CA.json in the collateral format of tdx_collateral_parse, so
 * a cache directory doubles as an offline collateral directory. */
#ifndef CAI_ATTEST_PCCS_H
#define CAI_ATTEST_PCCS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "attest/verify.h"
#include "common/buf.h"
#include "common/status.h"

#define PCCS_INTEL_PCS "https://api.trustedservices.intel.com"
#define PCCS_INTEL_ROOT_CRL "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der"
#define PCCS_BODY_MAX (1u << 20)   /* named limit: one response body */
#define PCCS_HEADER_MAX (64u << 10) /* named limit: one issuer chain header */

typedef struct pccs pccs;

typedef struct {
    /* Intel's PCS (PCCS_INTEL_PCS) or a PCCS such as a cloud's regional one
     * ("https://pccs.example:8081"); a trailing /sgx|tdx/certification/v4 is
     * ignored. NULL: offline, only |cache_dir| is read. */
    const char *base_url;
    /* Where collateral is cached (created 0700 if missing); NULL: memory only. */
    const char *cache_dir;
    /* The root CA CRL URL; NULL: Intel's for the PCS, {base}/sgx/certification/v4/rootcacrl
     * for any other base. */
    const char *root_crl_url;
    /* Allow http:// (INSECURE transport; the collateral is still verified,
     * but its freshness is then only as good as the network). Default: https only. */
    int insecure_http;
    const char *ca_file; /* TLS trust anchors for the PCCS; NULL: the system's */
    long timeout_s;      /* per request; 0: 30 */
} pccs_config;

typedef struct {
    unsigned fetches;     /* complete fetches from the network */
    unsigned disk_hits;   /* served from a cache file */
    unsigned memory_hits; /* served from memory */
} pccs_stats;

/* pccs_new makes a collateral provider (free with pccs_free); copies |cfg|.
 * CAI_ERR_INVALID_ARG for a URL that is not https:// (or http:// with
 * insecure_http), CAI_ERR_IO if the cache directory cannot be made. */
cai_status pccs_new(const pccs_config *cfg, pccs **out) CAI_WUR;

/* pccs_free frees |p|; NULL is fine. */
void pccs_free(pccs *p);

/* pccs_get sets |*out| to collateral for |fmspc| and the PCK CA
 * (|processor_ca| 1 = processor, 0 = platform) that is not expired at |now|
 * (a reference: tdx_collateral_free it): from memory, else the cache file,
 * else the network (then cached). Offline, an expired cache file is still
 * returned (the verifier then reports it expired); CAI_ERR_NOT_FOUND if
 * there is none. Thread-safe. Network failures: CAI_ERR_IO, an HTTP error
 * status: CAI_ERR_NOT_FOUND (404) or CAI_ERR_IO, a malformed answer:
 * CAI_ERR_FORMAT / CAI_ERR_LIMIT; detail in cai_errmsg. */
cai_status pccs_get(pccs *p, const uint8_t fmspc[6], int processor_ca, time_t now,
                    tdx_collateral **out) CAI_WUR;

/* pccs_get_for_quote is pccs_get for the FMSPC and CA of |quote|'s PCK
 * certificate (tdx_pck_info_get). */
cai_status pccs_get_for_quote(pccs *p, const uint8_t *quote, size_t len, time_t now,
                              tdx_collateral **out) CAI_WUR;

/* pccs_get_stats copies |p|'s counters into |out|. */
void pccs_get_stats(pccs *p, pccs_stats *out);

/* pccs_json_member finds the top-level member |key| of the JSON object at
 * |json| (|len| bytes, untrusted) and sets |*off|/|*n| to the exact bytes of
 * its value. CAI_ERR_NOT_FOUND if absent, CAI_ERR_FORMAT if the text is not
 * one JSON object (bad syntax, nesting deeper than 64, trailing bytes) or
 * |key| appears twice. */
cai_status pccs_json_member(const char *json, size_t len, const char *key, size_t *off,
                            size_t *n) CAI_WUR;

/* pccs_url_decode percent-decodes |in| (|len| bytes) into |out| (initialised
 * here, NUL-terminated). CAI_ERR_FORMAT for a bad escape or a NUL byte. */
cai_status pccs_url_decode(const char *in, size_t len, buf *out) CAI_WUR;

#endif

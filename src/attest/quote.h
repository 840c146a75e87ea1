/* quote.h - Intel TDX quotes (DCAP quote format v4 and v5): parsing and claims.
 *
 * Layout (all integers little-endian), per Intel's "TDX DCAP Quoting Library
 * API" and sgx_quote_4.h / sgx_quote_5.h:
 *
 *   header (48)        version u16 (4|5), att_key_type u16 (2 = ECDSA-P256),
 *                      tee_type u32 (0x81 = TDX), reserved[4], qe_vendor_id[16],
 *                      user_data[20]
 *   v4: body           TD report 1.0 (584)
 *   v5: body_type u16  (2 = TDX 1.0, 3 = TDX 1.5), body_size u32, body
 *                      (584, or 648 with TEE_TCB_SVN2 and MRSERVICETD)
 *   sig_data_len u32, then exactly that many bytes:
 *     signature[64] (r||s over header..body), att_key[64] (x||y),
 *     cert_data_type u16 (6 = QE report certification data), cert_data_size u32:
 *       qe_report (384, SGX report body), qe_report_sig[64] (r||s),
 *       qe_auth_len u16, qe_auth_data,
 *       cert_data_type u16 (5 = PEM PCK chain), cert_data_size u32, PEM chain
 *
 * Every length is checked against what remains, every nesting level must be
 * consumed exactly, and bytes after the signature data are rejected (unless
 * TDX_QUOTE_ALLOW_ZERO_PAD is given and they are all zero, as in quotes read
 * from fixed-size buffers). */
#ifndef CAI_ATTEST_QUOTE_H
#define CAI_ATTEST_QUOTE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

#define TDX_QUOTE_HEADER_LEN 48
#define TDX_TD_REPORT10_LEN 584
#define TDX_TD_REPORT15_LEN 648
#define TDX_SGX_REPORT_LEN 384
#define TDX_QUOTE_MAX_LEN (256u * 1024u) /* named limit: whole quote */
#define TDX_PCK_CHAIN_MAX_LEN (64u * 1024u)

#define TDX_ATT_KEY_ECDSA_P256 2
#define TDX_TEE_TYPE_TDX 0x81
#define TDX_BODY_TDX10 2
#define TDX_BODY_TDX15 3
#define TDX_CERT_PCK_CHAIN 5
#define TDX_CERT_QE_REPORT 6

/* Parse flags. */
#define TDX_QUOTE_ALLOW_ZERO_PAD 1u

typedef struct {
    uint16_t version;
    uint16_t att_key_type;
    uint32_t tee_type;
    uint8_t reserved[4];
    uint8_t qe_vendor_id[16];
    uint8_t user_data[20];
} tdx_quote_header;

typedef struct {
    uint8_t tee_tcb_svn[16];
    uint8_t mr_seam[48];
    uint8_t mr_signer_seam[48];
    uint8_t seam_attributes[8];
    uint8_t td_attributes[8];
    uint8_t xfam[8];
    uint8_t mr_td[48];
    uint8_t mr_config_id[48];
    uint8_t mr_owner[48];
    uint8_t mr_owner_config[48];
    uint8_t rtmr[4][48];
    uint8_t report_data[64];
    /* TDX 1.5 body only (is_tdx15): */
    int is_tdx15;
    uint8_t tee_tcb_svn2[16];
    uint8_t mr_service_td[48];
} tdx_td_report;

/* The SGX report body of the Quoting Enclave. */
typedef struct {
    uint8_t cpu_svn[16];
    uint32_t misc_select;
    uint8_t attributes[16];
    uint8_t mr_enclave[32];
    uint8_t mr_signer[32];
    uint16_t isv_prod_id;
    uint16_t isv_svn;
    uint8_t report_data[64];
} tdx_qe_report;

typedef struct {
    uint8_t *raw;       /* the quote bytes (owned; without padding) */
    size_t len;         /* quote length */
    size_t signed_len;  /* raw[0..signed_len) is what |signature| covers */
    tdx_quote_header header;
    uint16_t body_type; /* TDX_BODY_TDX10 or _TDX15 (v4: TDX10) */
    tdx_td_report body;
    uint8_t signature[64];      /* r||s */
    uint8_t att_key[64];        /* x||y */
    const uint8_t *qe_report_raw; /* 384 bytes in raw: what qe_report_sig covers */
    tdx_qe_report qe_report;
    uint8_t qe_report_sig[64];  /* r||s, by the PCK key */
    const uint8_t *qe_auth;     /* in raw */
    size_t qe_auth_len;
    const char *pck_chain;      /* in raw: PEM, not NUL-terminated */
    size_t pck_chain_len;
} tdx_quote;

/* tdx_quote_parse parses the |len| bytes at |data| (copied) with |flags|
 * (TDX_QUOTE_ALLOW_ZERO_PAD or 0) and sets |*out| to a new quote, to be freed
 * with tdx_quote_free. Fails with CAI_ERR_TRUNCATED, CAI_ERR_FORMAT,
 * CAI_ERR_UNSUPPORTED, CAI_ERR_TRAILING or CAI_ERR_LIMIT, detail in
 * cai_errmsg. Parsing checks structure only; see tdx_verify for trust. */
cai_status tdx_quote_parse(const uint8_t *data, size_t len, unsigned flags,
                           tdx_quote **out) CAI_WUR;

/* tdx_quote_free frees |q|; NULL is fine. */
void tdx_quote_free(tdx_quote *q);

/* tdx_quote_is_debug returns 1 if the TD's DEBUG attribute (bit 0) is set. */
int tdx_quote_is_debug(const tdx_quote *q);

/* tdx_quote_claims_json sets |*out| to a new JSON object (caller decrefs)
 * with the quote's fields in hex, named like Trustee's TDX claims:
 * {"tee":"tdx","debug":false,"quote":{"header":{...},"body":{...}},
 *  "report_data":..., "td_attributes":..., "rtmr_0".., "mr_td":...}. */
cai_status tdx_quote_claims_json(const tdx_quote *q, json_t **out) CAI_WUR;

#endif

/* quote.h - Intel TDX quotes (v4 and v5, TD report 1.0 and 1.5), parsed.
 *
 * A quote is untrusted bytes until verify.c has checked its signatures; the
 * parser only reads it, through the bounds-checked cursor, into views of
 * the caller's buffer. Layout (Intel TDX DCAP Quote Generation Library and
 * Quote Verification Library API, "Quote Format"):
 *
 *   header (48)  version, attestation key type (2: ECDSA P-256), TEE type
 *                (0x81: TDX), QE vendor id, user data
 *   v4: TD report 1.0 (584)     v5: body type (2: 1.0, 3: 1.5), size, body
 *   signature data: length, ECDSA signature (64, r||s) over header||body,
 *   attestation public key (64, x||y), certification data type 6 =
 *   QE report (384) + its signature (64) + QE auth data (u16 length) +
 *   certification data type 5 = the PEM PCK certificate chain.
 * Bytes after the signature data must be zero (padding, as some quote
 * providers add); anything else is refused. */
#ifndef CAI_ATTEST_QUOTE_H
#define CAI_ATTEST_QUOTE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/status.h"

#define TDX_TEE_TYPE 0x81
#define TDX_TEE_TYPE_TDX TDX_TEE_TYPE
#define TDX_QUOTE_HEADER_LEN 48
#define TDX_TD_REPORT10_LEN 584
#define TDX_TD_REPORT15_LEN 648
#define TDX_SGX_REPORT_LEN 384
#define TDX_ATT_KEY_ECDSA_P256 2
#define TDX_CERT_QE_REPORT 6
#define TDX_CERT_PCK_CHAIN 5
#define TDX_TD_ATTR_DEBUG 0x1 /* bit 0 of TDATTRIBUTES */

typedef struct {
    uint8_t tee_tcb_svn[16];
    uint8_t mr_seam[48], mr_signer_seam[48];
    uint8_t seam_attributes[8], td_attributes[8], xfam[8];
    uint8_t mr_td[48], mr_config_id[48], mr_owner[48], mr_owner_config[48];
    uint8_t rtmr[4][48];
    uint8_t report_data[64];
    /* TDX 1.5 only */
    int has_1_5;
    uint8_t tee_tcb_svn2[16];
    uint8_t mr_service_td[48];
} tdx_td_report;

typedef struct {
    uint8_t cpu_svn[16];
    uint32_t misc_select;
    uint8_t attributes[16];
    uint8_t mr_enclave[32], mr_signer[32];
    uint16_t isv_prod_id, isv_svn;
    uint8_t report_data[64];
} sgx_report_body;

typedef struct {
    uint16_t version, att_key_type;
    uint32_t tee_type;
    uint8_t qe_vendor_id[16];
    uint8_t user_data[20];
    uint16_t body_type; /* 2: TDX 1.0, 3: TDX 1.5 (v4 quotes: 2) */
    tdx_td_report td;
    /* what the quote signature covers: header || body (as in the quote) */
    const uint8_t *signed_data;
    size_t signed_len;
    uint8_t signature[64];      /* r || s */
    uint8_t att_key[64];        /* x || y */
    const uint8_t *qe_report_raw; /* 384 bytes, signed by the PCK key */
    sgx_report_body qe_report;
    uint8_t qe_report_signature[64];
    const uint8_t *qe_auth_data;
    size_t qe_auth_len;
    const char *pck_chain_pem;  /* not NUL-terminated */
    size_t pck_chain_len;
    size_t quote_len;           /* bytes the quote used, before any padding */
} tdx_quote;

/* tdx_quote_parse reads the quote in |len| bytes at |data| (which must
 * outlive |q|). Every rule has its own message. */
cai_status tdx_quote_parse(const uint8_t *data, size_t len, tdx_quote *q);

/* tdx_quote_is_debug says whether the TD runs with the DEBUG attribute. */
int tdx_quote_is_debug(const tdx_quote *q);

/* tdx_quote_claims returns the quote's fields as a JSON object of hex
 * strings (mr_td, rtmr_0..3, report_data, td_attributes, ...) plus
 * "debug" (bool) and "tee": "tdx"; the verifier adds tcb_status. */
json_t *tdx_quote_claims(const tdx_quote *q);

#endif

/* sim.h - a simulated TDX TEE for tests: a throw-away DCAP PKI and real,
 * correctly signed v4 quotes chaining to it.
 *
 * INSECURE BY DESIGN: the private keys (root CA, PCK platform CA, PCK leaf,
 * TCB signing) are stored in the directory, so anyone who can read it can
 * forge quotes. A verifier must trust the sim root only when its caller passes
 * it explicitly (never by default). */
#ifndef CAI_ATTEST_SIM_H
#define CAI_ATTEST_SIM_H

#include <stdint.h>

#include "common/buf.h"
#include "common/status.h"

/* Files sim_init writes into its directory. */
#define SIM_ROOT_CERT "root_ca.pem"
#define SIM_ROOT_KEY "root_ca.key"
#define SIM_PLATFORM_CERT "pck_platform_ca.pem"
#define SIM_PLATFORM_KEY "pck_platform_ca.key"
#define SIM_PCK_CERT "pck.pem"
#define SIM_PCK_KEY "pck.key"
#define SIM_TCB_CERT "tcb_signing.pem"
#define SIM_TCB_KEY "tcb_signing.key"
#define SIM_ROOT_CRL "root_ca_crl.der"
#define SIM_PCK_CRL "pck_crl.der"
#define SIM_TCB_INFO "tcb_info.json"       /* {"tcbInfo":{...},"signature":"hex"} */
#define SIM_QE_IDENTITY "qe_identity.json" /* {"enclaveIdentity":{...},"signature":..} */
#define SIM_COLLATERAL "collateral.json"   /* all of it, shared/data/tdx format */

/* The subject CN of the sim PKI's TCB signing certificate (Intel's is
 * "Intel SGX TCB Signing"): the verifier requires it of the TCB info and QE
 * identity signer under the sim root. */
#define SIM_TCB_SIGNING_CN "cai sim SGX TCB Signing"

/* The platform the sim PKI describes. */
extern const uint8_t sim_fmspc[6];
extern const uint8_t sim_pce_id[2];
extern const uint8_t sim_qe_mrsigner[32];
extern const uint8_t sim_tee_tcb_svn[16];

typedef struct sim_td {
    uint8_t mr_td[48];
    uint8_t mr_config_id[48];
    uint8_t mr_owner[48];
    uint8_t rtmr[4][48];
    uint8_t td_attributes[8]; /* td_attributes[0] bit 0 = DEBUG */
    uint8_t xfam[8];
} sim_td;

/* sim_init creates |dir| (mode 0700; it may exist but must not contain the
 * sim files) with a complete test DCAP PKI and collateral valid from now for
 * 30 days (certificates for 10 years), and a README saying it is insecure.
 * Fails with CAI_ERR_EXISTS if a file is already there, CAI_ERR_IO or
 * CAI_ERR_CRYPTO otherwise. */
cai_status sim_init(const char *dir) CAI_WUR;

/* sim_quote builds a TDX v4 quote for a TD described by |td| (NULL = all
 * zero) with |report_data|, signed with a fresh attestation key whose QE
 * report is signed by the PCK key in |dir|. |out| (initialised here) receives
 * the quote. */
cai_status sim_quote(const char *dir, const uint8_t report_data[64], const sim_td *td,
                     buf *out) CAI_WUR;

#endif

/* pck_ext.h - the SGX extension (OID 1.2.840.113741.1.13.1) of Intel PCK
 * certificates: SEQUENCE of SEQUENCE { OID, value } with PPID (.1), TCB (.2:
 * 16 component SVNs .2.1-.2.16, PCESVN .2.17, CPUSVN .2.18), PCE-ID (.3),
 * FMSPC (.4), SGX type (.5) and, for multi-package platforms, .6/.7. */
#ifndef CAI_ATTEST_PCK_EXT_H
#define CAI_ATTEST_PCK_EXT_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

typedef struct {
    uint8_t ppid[16];
    uint8_t sgx_tcb[16]; /* TCB component SVNs 1..16 */
    uint16_t pce_svn;
    uint8_t cpu_svn[16];
    uint8_t pce_id[2];
    uint8_t fmspc[6];
} pck_ext;

/* pck_ext_parse parses the DER extension value at |der| (|len| bytes) into
 * |out|. Fails with CAI_ERR_FORMAT (detail in cai_errmsg) on malformed DER
 * (only definite, minimal lengths below 64 KiB), trailing bytes at any
 * level, a duplicate or missing PPID/TCB/PCE-ID/FMSPC, a TCB without all 18
 * entries, or a value of the wrong type or size. Unknown items (.5 SGX
 * type, .6, .7) are skipped but must be well-formed TLVs. */
cai_status pck_ext_parse(const uint8_t *der, size_t len, pck_ext *out) CAI_WUR;

#endif

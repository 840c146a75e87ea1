/* initdata.h - CoCo init-data: the TOML document a pod's launcher measures
 * into the TD (its digest is MRCONFIGID) and the guest hands to the broker
 * in the Attestation's "init-data" {"format": "toml", "body": "<TOML>"}.
 *
 * The document (trustee kbs/docs/initdata.md; attestation-service
 * src/lib.rs `Initdata`, `parse_init_data`) is
 *
 *   version = "0.1.0"
 *   algorithm = "sha256" | "sha384" | "sha512"
 *   [data]
 *   "<name>" = "<string>"      (any number; values are strings)
 *
 * Its digest is |algorithm| over the body's bytes exactly as sent; TDX binds
 * it as MRCONFIGID (48 bytes: a SHA-256 digest zero padded, a SHA-512 one cut
 * to 48, as trustee deps/verifier `regularize_data` does).
 *
 * Only the TOML this needs is read: comments, a [data] table, bare or quoted
 * keys, and the four kinds of string ("...", '...', """...""", '''...''').
 * Anything else (numbers, arrays, inline or other tables, dotted or duplicate
 * keys, unknown top-level keys, invalid UTF-8) is refused, naming the line. */
#ifndef CAI_KBS_INITDATA_H
#define CAI_KBS_INITDATA_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/status.h"

#define KBS_INITDATA_MAX (256u * 1024u) /* named limit: an init-data body */
#define KBS_INITDATA_ENTRIES_MAX 64     /* named limit: entries in [data] */
#define KBS_INITDATA_DIGEST_LEN 48      /* MRCONFIGID */

/* A parsed init-data. */
typedef struct {
    json_t *data; /* the [data] table: {name: string} (owned) */
    uint8_t digest[KBS_INITDATA_DIGEST_LEN]; /* as MRCONFIGID holds it */
    const char *algorithm; /* "sha256", "sha384" or "sha512" (static) */
} kbs_initdata;

/* kbs_initdata_parse reads the TOML |body| (|len| bytes) into |out|
 * (zeroed first; release with kbs_initdata_cleanup, also on failure).
 * CAI_ERR_FORMAT / CAI_ERR_UNSUPPORTED / CAI_ERR_LIMIT name the line and
 * what is wrong. */
cai_status kbs_initdata_parse(const char *body, size_t len, kbs_initdata *out) CAI_WUR;

/* kbs_initdata_from_json reads the Attestation's "init-data" member |j|
 * ({"format": "toml", "body": string}; other formats refused) into |out|. */
cai_status kbs_initdata_from_json(const json_t *j, kbs_initdata *out) CAI_WUR;

void kbs_initdata_cleanup(kbs_initdata *d);

#endif

/* jcs.h - the JSON Canonicalization Scheme (RFC 8785).
 *
 * One serialization per JSON value, so that two parties can hash "the same
 * JSON" and agree: no whitespace, object members sorted by the UTF-16 code
 * units of their names, strings with the minimal escapes of RFC 8785 3.2.2.2,
 * numbers as ECMAScript's Number.prototype.toString prints them. The KBS
 * protocol binds its runtime data into TEE evidence this way. */
#ifndef CAI_COMMON_JCS_H
#define CAI_COMMON_JCS_H

#include <jansson.h>

#include "common/buf.h"
#include "common/status.h"

/* jcs_serialize appends the canonical form of |v| to |out| (NUL-terminated,
 * the NUL not counted). CAI_ERR_FORMAT for values JSON cannot hold (NaN,
 * infinities) or object names that are not valid UTF-8; CAI_ERR_LIMIT when
 * |out|'s limit is reached. Integers beyond 2^53 are printed as the IEEE
 * double they round to, as RFC 8785 requires. */
cai_status jcs_serialize(const json_t *v, buf *out) CAI_WUR;

#endif

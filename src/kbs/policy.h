/* policy.h - the key broker's release policy (docs/POLICY.md).
 *
 * A policy is a declarative JSON document, checked strictly when loaded
 * (unknown fields, wrong types and malformed hex are errors, so a typo never
 * silently widens access). Evaluation takes the claims of verified evidence
 * (a JSON object, see attest) and a resource path, and either allows or
 * refuses with a reason that names the claim that failed. Default: deny. */
#ifndef CAI_KBS_POLICY_H
#define CAI_KBS_POLICY_H

#include <stddef.h>

#include <jansson.h>

#include "common/status.h"

typedef struct kbs_policy kbs_policy;

/* kbs_policy_parse checks and compiles the policy in |json|. On failure
 * the message says which field is wrong. */
cai_status kbs_policy_parse(const char *json, size_t len, kbs_policy **out);
void kbs_policy_free(kbs_policy *p);

/* kbs_policy_trusts_sim says whether the policy names the simulated TEE. */
int kbs_policy_trusts_sim(const kbs_policy *p);

/* kbs_policy_allows_debug says whether the policy has "allow_debug": true
 * (a DEBUG TD may pass; default false). */
int kbs_policy_allows_debug(const kbs_policy *p);

/* kbs_policy_check returns CAI_OK if |claims| may read |resource| (NULL:
 * only the attestation itself is checked), else CAI_ERR_AUTH with the
 * reason, naming the claim or rule, in cai_errmsg (never a secret: claim
 * names and public measurements). */
cai_status kbs_policy_check(const kbs_policy *p, const json_t *claims, const char *resource);

/* kbs_policy_check_server returns CAI_OK if |claims| of an attested server
 * (attested TLS: the quote's claims plus "model_digest") pass the checks
 * above and match one of the reference sets the policy's "servers" names
 * (none named: every server is refused). Else CAI_ERR_AUTH with the
 * reason in cai_errmsg. */
cai_status kbs_policy_check_server(const kbs_policy *p, const json_t *claims);

#endif

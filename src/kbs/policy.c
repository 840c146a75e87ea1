/* policy.c - strict policy parsing and evaluation against evidence claims. */
#include "kbs/policy.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct kbs_policy {
    json_t *doc; /* validated; defaults filled in */
};

static const char *const TEES[] = {"tdx", "sim"};
static const char *const TCB_STATUSES[] = {
    "UpToDate", "SWHardeningNeeded", "ConfigurationNeeded", "ConfigurationAndSWHardeningNeeded",
    "OutOfDate", "OutOfDateConfigurationNeeded", "Revoked"};

static int in_list(const char *s, const char *const *list, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, list[i]) == 0)
            return 1;
    return 0;
}

static cai_status bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static cai_status bad(const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return cai_fail(CAI_ERR_FORMAT, "policy: %s", msg);
}

static cai_status string_list(json_t *v, const char *field, const char *const *allowed,
                              size_t n_allowed) {
    if (!json_is_array(v))
        return bad("'%s' must be an array of strings", field);
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e) {
        if (!json_is_string(e))
            return bad("'%s' must be an array of strings", field);
        if (allowed && !in_list(json_string_value(e), allowed, n_allowed))
            return bad("'%s': unknown value '%.40s'", field, json_string_value(e));
    }
    return CAI_OK;
}

static int is_hex(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n % 2 != 0)
        return 0;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') || (*s >= 'A' && *s <= 'F')))
            return 0;
    return 1;
}

static cai_status check_reference_values(json_t *rv) {
    if (!json_is_object(rv))
        return bad("'reference_values' must be an object of named sets");
    const char *name, *claim;
    json_t *set, *vals;
    json_object_foreach(rv, name, set) {
        if (!json_is_object(set))
            return bad("reference set '%.40s' must be an object of claim: [hex values]", name);
        json_object_foreach(set, claim, vals) {
            if (!json_is_array(vals) || json_array_size(vals) == 0)
                return bad("reference set '%.40s': '%.40s' must be a non-empty array", name, claim);
            size_t i;
            json_t *v;
            json_array_foreach(vals, i, v)
                if (!json_is_string(v) || !is_hex(json_string_value(v)))
                    return bad("reference set '%.40s': '%.40s' values must be hex strings", name,
                               claim);
        }
    }
    return CAI_OK;
}

static int pattern_valid(const char *p) {
    size_t n = strlen(p);
    const char *star = strchr(p, '*');
    return n > 0 && n < 256 && (star == NULL || star == p + n - 1);
}

/* set_names: |list| is a list of names of sets defined in |rv|; |where|
 * names it in a refusal. */
static cai_status set_names(json_t *list, const char *field, const char *where, json_t *rv) {
    cai_status st = string_list(list, field, NULL, 0);
    if (st != CAI_OK)
        return st;
    size_t j;
    json_t *s;
    json_array_foreach(list, j, s)
        if (!json_object_get(rv, json_string_value(s)))
            return bad("%s: reference set '%.40s' is not defined", where, json_string_value(s));
    return CAI_OK;
}

static cai_status check_resources(json_t *res, json_t *rv) {
    if (!json_is_array(res))
        return bad("'resources' must be an array of rules");
    size_t i;
    json_t *r;
    json_array_foreach(res, i, r) {
        json_t *path = json_object_get(r, "path"), *allow = json_object_get(r, "allow");
        if (!json_is_object(r) || json_object_size(r) != 2 || !json_is_string(path) || !allow)
            return bad("resources[%zu] must be {\"path\": ..., \"allow\": [set names]}", i);
        if (!pattern_valid(json_string_value(path)))
            return bad("resources[%zu]: path must be repo/type/tag, or a prefix ending in *", i);
        char where[32];
        snprintf(where, sizeof(where), "resources[%zu]", i);
        cai_status st = set_names(allow, "allow", where, rv);
        if (st != CAI_OK)
            return st;
    }
    return CAI_OK;
}

cai_status kbs_policy_parse(const char *json, size_t len, kbs_policy **out) {
    *out = NULL;
    json_error_t je;
    json_t *d = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (d == NULL)
        return bad("not valid JSON: %s (line %d)", je.text, je.line);
    cai_status st = CAI_OK;
    const char *k;
    json_t *v;
    if (!json_is_object(d)) {
        st = bad("must be a JSON object");
        goto fail;
    }
    json_object_foreach(d, k, v) {
        if (strcmp(k, "version") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) != 1)
                st = bad("'version' must be 1");
        } else if (strcmp(k, "tee") == 0) {
            st = string_list(v, k, TEES, sizeof(TEES) / sizeof(TEES[0]));
        } else if (strcmp(k, "tcb_status") == 0) {
            st = string_list(v, k, TCB_STATUSES, sizeof(TCB_STATUSES) / sizeof(TCB_STATUSES[0]));
        } else if (strcmp(k, "allow_debug") == 0) {
            if (!json_is_boolean(v))
                st = bad("'allow_debug' must be true or false");
        } else if (strcmp(k, "reference_values") == 0) {
            st = check_reference_values(v);
        } else if (strcmp(k, "resources") == 0 || strcmp(k, "servers") == 0) {
            continue; /* needs reference_values: checked below */
        } else {
            st = bad("unknown field '%.40s'", k);
        }
        if (st != CAI_OK)
            goto fail;
    }
    if (!json_object_get(d, "reference_values"))
        json_object_set_new(d, "reference_values", json_object());
    if (!json_object_get(d, "tee"))
        json_object_set_new(d, "tee", json_pack("[s]", "tdx"));
    if (!json_object_get(d, "tcb_status"))
        json_object_set_new(d, "tcb_status", json_pack("[s]", "UpToDate"));
    if (!json_object_get(d, "resources"))
        json_object_set_new(d, "resources", json_array());
    /* "servers": the reference sets an attested server must match (cai
     * proxy, cai chat). */
    if ((st = check_resources(json_object_get(d, "resources"),
                              json_object_get(d, "reference_values"))) != CAI_OK ||
        (json_object_get(d, "servers") &&
         (st = set_names(json_object_get(d, "servers"), "servers", "servers",
                         json_object_get(d, "reference_values"))) != CAI_OK))
        goto fail;
    kbs_policy *p = malloc(sizeof(*p));
    if (p == NULL) {
        st = CAI_ERR_NOMEM;
        goto fail;
    }
    p->doc = d;
    *out = p;
    return CAI_OK;
fail:
    json_decref(d);
    return st;
}

void kbs_policy_free(kbs_policy *p) {
    if (p == NULL)
        return;
    json_decref(p->doc);
    free(p);
}

static int list_has(const json_t *list, const char *s) {
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
        if (strcmp(json_string_value(e), s) == 0)
            return 1;
    return 0;
}

int kbs_policy_trusts_sim(const kbs_policy *p) {
    return list_has(json_object_get(p->doc, "tee"), "sim");
}

int kbs_policy_allows_debug(const kbs_policy *p) {
    return json_is_true(json_object_get(p->doc, "allow_debug"));
}

/* A claim by dotted path ("mr_td", "tcb.status"). A member whose name holds
 * dots is found by its whole name: "init_data_digests.aa.toml" is member
 * "aa.toml" of "init_data_digests" (the rest of the path is tried whole
 * first, at each level). */
static const json_t *claim(const json_t *claims, const char *path) {
    char part[128];
    const json_t *cur = claims;
    while (cur && *path) {
        const json_t *whole = json_object_get(cur, path);
        if (whole)
            return whole;
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        if (n >= sizeof(part))
            return NULL;
        memcpy(part, path, n);
        part[n] = '\0';
        cur = json_object_get(cur, part);
        path += n + (dot != NULL);
    }
    return cur;
}

/* set_matches: every claim named in |set| has one of its allowed values. On
 * a mismatch, |failed| names the claim. */
static int set_matches(const json_t *set, const json_t *claims, const char **failed) {
    const char *name;
    json_t *vals;
    json_object_foreach((json_t *)set, name, vals) {
        const json_t *c = claim(claims, name);
        int ok = 0;
        size_t i;
        json_t *v;
        json_array_foreach(vals, i, v)
            ok |= json_is_string(c) && strcasecmp(json_string_value(c), json_string_value(v)) == 0;
        if (!ok) {
            *failed = name;
            return 0;
        }
    }
    return 1;
}

/* allow_matches: |claims| match one of the reference sets named in |allow|,
 * else the refusal names the first set's failing claim. */
static cai_status allow_matches(const kbs_policy *p, const json_t *allow, const json_t *claims,
                                const char *what, const char *name) {
    const json_t *sets = json_object_get(p->doc, "reference_values");
    const char *failed = NULL, *failed_set = NULL;
    size_t j;
    json_t *s;
    json_array_foreach(allow, j, s) {
        const char *f = NULL;
        if (set_matches(json_object_get(sets, json_string_value(s)), claims, &f))
            return CAI_OK;
        if (failed == NULL) {
            failed = f;
            failed_set = json_string_value(s);
        }
    }
    if (failed == NULL)
        return cai_fail(CAI_ERR_AUTH, "%s %.80s allows no reference set", what, name);
    const json_t *c = claim(claims, failed);
    return cai_fail(CAI_ERR_AUTH, "claim %.40s = %.24s%s does not match reference set '%.40s'",
                    failed, json_is_string(c) ? json_string_value(c) : "(missing)",
                    json_is_string(c) && strlen(json_string_value(c)) > 24 ? "..." : "",
                    failed_set);
}

static int path_matches(const char *pattern, const char *path) {
    size_t n = strlen(pattern);
    if (n > 0 && pattern[n - 1] == '*')
        return strncmp(pattern, path, n - 1) == 0;
    return strcmp(pattern, path) == 0;
}

cai_status kbs_policy_check(const kbs_policy *p, const json_t *claims, const char *resource) {
    const json_t *tee = claim(claims, "tee"), *debug = claim(claims, "debug");
    const json_t *tcb = claim(claims, "tcb_status");
    if (!json_is_string(tee) || !list_has(json_object_get(p->doc, "tee"), json_string_value(tee)))
        return cai_fail(CAI_ERR_AUTH, "claim tee = %.20s is not trusted by the policy",
                        json_is_string(tee) ? json_string_value(tee) : "(missing)");
    if (!json_is_boolean(debug))
        return cai_fail(CAI_ERR_AUTH, "claim debug is missing");
    if (json_is_true(debug) && !json_is_true(json_object_get(p->doc, "allow_debug")))
        return cai_fail(CAI_ERR_AUTH, "claim debug = true: debug TDs are refused by the policy");
    if (!json_is_string(tcb) ||
        !list_has(json_object_get(p->doc, "tcb_status"), json_string_value(tcb)))
        return cai_fail(CAI_ERR_AUTH, "claim tcb_status = %.40s is not allowed by the policy",
                        json_is_string(tcb) ? json_string_value(tcb) : "(missing)");
    if (resource == NULL)
        return CAI_OK;
    const json_t *rules = json_object_get(p->doc, "resources");
    size_t i;
    json_t *r;
    json_array_foreach(rules, i, r) {
        if (path_matches(json_string_value(json_object_get(r, "path")), resource))
            return allow_matches(p, json_object_get(r, "allow"), claims, "the rule for", resource);
    }
    return cai_fail(CAI_ERR_AUTH, "no policy rule allows resource %.80s", resource);
}

cai_status kbs_policy_check_server(const kbs_policy *p, const json_t *claims) {
    cai_status st = kbs_policy_check(p, claims, NULL);
    if (st != CAI_OK)
        return st;
    const json_t *servers = json_object_get(p->doc, "servers");
    if (servers == NULL)
        return cai_fail(CAI_ERR_AUTH, "the policy names no \"servers\" reference sets: no attested "
                        "server is allowed");
    return allow_matches(p, servers, claims, "\"servers\" of", "the policy");
}

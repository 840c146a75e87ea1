#include "cli/cli.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/file.h"
#include "common/log.h"
#include "attest/trust.h"
#include "kbs/policy.h"
#include "ratls/verify.h"

int cli_fail(const char *cmd, cai_status st) {
    fprintf(stderr, "cai %s: %s\n", cmd, cai_errmsg(st));
    return CLI_EXIT_FAIL;
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "cai %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'cai %s --help'.\n", cmd);
    return CLI_EXIT_USAGE;
}

int cli_getopt_error(const char *cmd, int c, char **argv) {
    /* glibc leaves the offending word at argv[optind - 1], except for an
     * unknown short option inside a cluster (-xk): then optopt names it.
     * A long option's word is "--name" or "--name=value"; optopt is 0 for
     * an unknown long option, its value for one given a value it refuses. */
    const char *word = optind > 0 ? argv[optind - 1] : "";
    char name[96];
    int is_long = strncmp(word, "--", 2) == 0, has_value = is_long && strchr(word, '=');
    int short_opt = optopt > 0 && optopt < 128 && isprint(optopt);
    if (c == '?' && optopt != 0 && !has_value)
        is_long = 0; /* an unknown short option, perhaps inside a cluster */
    if (is_long)
        snprintf(name, sizeof(name), "%.*s", (int)strcspn(word, "="), word);
    else if (short_opt)
        snprintf(name, sizeof(name), "-%c", optopt);
    else
        snprintf(name, sizeof(name), "%.80s", word);
    if (c == ':')
        return cli_usage_error(cmd, "option '%s' needs a value", name);
    if (is_long && optopt != 0)
        return cli_usage_error(cmd, "option '%s' takes no value", name);
    return cli_usage_error(cmd, "unknown option '%s'", name);
}

int cli_is_help(const char *arg) { return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0; }

int cli_parse_int(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int cli_parse_duration(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *s == '-')
        return -1;
    long unit = *end == '\0' || strcmp(end, "s") == 0 ? 1
                : strcmp(end, "m") == 0              ? 60
                : strcmp(end, "h") == 0              ? 3600
                : strcmp(end, "d") == 0              ? 86400
                                                     : 0;
    if (unit == 0 || v > hi / unit || v * unit < lo || v * unit > hi)
        return -1;
    *out = v * unit;
    return 0;
}

int cli_parse_size(const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *s == '-')
        return -1;
    unsigned shift = 0;
    switch (*end) {
    case '\0': break;
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    case 't': case 'T': shift = 40; end++; break;
    default: return -1;
    }
    if (*end == 'i' || *end == 'B')
        end += (*end == 'i' && end[1] == 'B') ? 2 : 1;
    if (*end != '\0' || (shift && v > (~0ull >> shift)))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

void cli_progress_init(cli_progress *p, const char *label) {
    p->label = label;
    p->t0 = p->last = clock_now();
    p->enabled = isatty(STDERR_FILENO);
}

void cli_progress_cb(uint64_t done, uint64_t total, void *arg) {
    cli_progress *p = arg;
    double now = clock_now();
    if (!p->enabled || (now - p->last < 0.1 && done < total))
        return;
    p->last = now;
    int pct = total ? (int)(done * 100 / total) : 100;
    int bar = pct * 30 / 100;
    double rate = now > p->t0 ? (double)done / (now - p->t0) / 1e9 : 0;
    fprintf(stderr, "\r%-9s [%.*s%*s] %3d%% %8.2f GB  %5.2f GB/s", p->label, bar,
            "##############################", 30 - bar, "", pct, (double)done / 1e9, rate);
    fflush(stderr);
}

void cli_progress_end(cli_progress *p) {
    if (p->enabled)
        fprintf(stderr, "\r\033[K");
}

int cli_tee_source(const char *cmd, const cli_tee_opts *o, attest_source *out, int *out_has) {
    *out_has = 0;
    memset(out, 0, sizeof(*out));
    if (o->tee == NULL && o->sim_dir)
        return cli_usage_error(cmd, "--sim-dir is for --tee sim");
    if (o->tee && attest_tee_parse(o->tee, &out->tee) != CAI_OK)
        return cli_usage_error(cmd, "--tee wants tdx, sim or coco, not '%s'", o->tee);
    if (o->coco_api && out->tee != ATTEST_TEE_COCO) /* out->tee is 0 without --tee */
        return cli_usage_error(cmd, "--coco-api is for --tee coco");
    if (o->tee == NULL)
        return 0;
    if (out->tee == ATTEST_TEE_COCO) {
        out->coco_api = o->coco_api ? o->coco_api : COCO_API_DEFAULT;
        cai_status cs = coco_api_check(out->coco_api);
        if (cs != CAI_OK)
            return cli_usage_error(cmd, "%s", cai_errmsg(cs));
    }
    if (out->tee == ATTEST_TEE_SIM) {
        if (o->sim_dir == NULL)
            return cli_usage_error(cmd, "--tee sim needs --sim-dir DIR (made by cai attest sim-init DIR)");
        out->sim_dir = o->sim_dir;
        log_warn("INSECURE: --tee sim: the simulated TEE signs evidence with keys stored in %s; "
                 "anyone who can read them can forge it. For tests and development only.",
                 o->sim_dir);
    } else if (o->sim_dir) {
        return cli_usage_error(cmd, "--sim-dir is for --tee sim");
    }
    *out_has = 1;
    return 0;
}

int cli_tee_probe(const char *cmd, const attest_source *src) {
    static const uint8_t zero[64];
    buf q;
    cai_status st = attest_evidence(src, zero, &q);
    buf_free(&q);
    if (st == CAI_OK)
        return 0;
    fprintf(stderr, "cai %s: --tee %s: %s\n", cmd, attest_tee_name(src->tee), cai_errmsg(st));
    return CLI_EXIT_FAIL;
}

cai_status cli_tls_check_new(const cli_tls_opts *o, cli_tls_check *t) {
    memset(t, 0, sizeof(*t));
    attest_trust_opts to = {.collateral = o->collateral, .trust_sim = o->trust_sim};
    buf doc;
    buf_init(&doc, 1 << 20);
    cai_status st = attest_trust_new(&to, &t->trust);
    if (st == CAI_OK && o->policy) {
        st = file_read_all(o->policy, 1 << 20, &doc);
    } else if (st == CAI_OK) {
        json_t *set = json_object(), *tees = json_array();
        if (o->collateral)
            json_array_append_new(tees, json_string("tdx"));
        if (o->trust_sim)
            json_array_append_new(tees, json_string("sim"));
        if (o->model_digest)
            json_object_set_new(set, "model_digest", json_pack("[s]", o->model_digest));
        json_t *p = json_pack("{s:i, s:o, s:{s:o}, s:[s]}", "version", 1, "tee", tees,
                              "reference_values", "server", set, "servers", "server");
        char *d = p ? json_dumps(p, JSON_COMPACT) : NULL;
        json_decref(p);
        st = d ? buf_append_str(&doc, d) : CAI_ERR_NOMEM;
        free(d);
    }
    if (st == CAI_OK)
        st = kbs_policy_parse((const char *)doc.data, doc.len, &t->policy);
    buf_free(&doc);
    if (st == CAI_OK) {
        ratls_verifier_config rc = {.verifier = attest_trust_verifier(t->trust), .policy = t->policy};
        st = ratls_verifier_new(&rc, &t->rv);
    }
    if (st != CAI_OK)
        cli_tls_check_cleanup(t);
    return st;
}

void cli_tls_check_cleanup(cli_tls_check *t) {
    ratls_verifier_free(t->rv);
    kbs_policy_free(t->policy);
    attest_trust_free(t->trust);
    memset(t, 0, sizeof(*t));
}

cai_status cli_tls_refusal(cai_status st, const char *url) {
    cai_status rst = ratls_last_take(NULL);
    if (st != CAI_OK && rst != CAI_OK)
        return cai_fail(CAI_ERR_AUTH, "%s failed attested TLS verification, nothing was sent to it: %s",
                        url, cai_errmsg(rst));
    return st;
}

int cli_kbs_tls(const char *cmd, const char *url, const cli_tls_opts *o) {
    if (!o->policy && (o->trust_sim || o->collateral))
        return cli_usage_error(cmd, "--kbs-trust-sim and --kbs-collateral go with --kbs-policy");
    if (!o->policy)
        return 0;
    if (!o->trust_sim && !o->collateral)
        return cli_usage_error(cmd, "--kbs-policy needs --kbs-collateral FILE or --kbs-trust-sim DIR");
    if (url == NULL || strncmp(url, "https://", 8) != 0)
        return cli_usage_error(cmd, "--kbs-policy checks an attested TLS broker: --kbs https://...");
    return 0;
}

/* cmd_attest.c - cai attest: TDX quotes for the simulated TEE, inspected and
 * verified with DCAP. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "attest/evidence.h"
#include "attest/pccs.h"
#include "attest/quote.h"
#include "attest/sim.h"
#include "attest/trust.h"
#include "attest/verify.h"
#include "cli/cli.h"
#include "common/buf.h"
#include "common/codec.h"
#include "common/file.h"
#include "kbs/policy.h"

/* One usage per subcommand; `cai attest --help` prints them all. */
#define SIM_INIT_USAGE "cai attest sim-init DIR\n"
#define QUOTE_USAGE \
    "cai attest quote [--tee tdx|sim|coco] [--sim DIR [--sim-debug]] [--coco-api URL]\n" \
    "                 [--report-data HEX] -o FILE\n"
#define INSPECT_USAGE "cai attest inspect QUOTE [--json]\n"
#define VERIFY_USAGE                                                                        \
    "cai attest verify QUOTE [--collateral FILE|DIR | --pccs URL [--cache DIR]]\n"         \
    "                 [--trust-sim DIR] [--at TIME] [--report-data HEX] [--policy FILE]\n" \
    "                 [--allow-debug] [--json]\n"

static void attest_help(void) {
    printf("usage: " SIM_INIT_USAGE "       " QUOTE_USAGE "       " INSPECT_USAGE
           "       " VERIFY_USAGE "\n"
           "Intel TDX quotes (docs/ATTESTATION.md):\n"
           "  sim-init  a throw-away test DCAP PKI for the simulated TEE (INSECURE)\n"
           "  quote     a TDX quote over REPORTDATA, from the guest kernel or the sim\n"
           "  inspect   parse a quote and print its fields: NOT a verification\n"
           "  verify    DCAP verification: PCK chain, CRLs, TCB info, QE identity, policy\n\n"
           "'cai attest SUBCOMMAND --help' describes one.\n");
}

static void sim_init_help(void) {
    printf("usage: " SIM_INIT_USAGE "\n"
           "Create a throw-away test DCAP PKI for the simulated TEE in DIR (mode 0700; it\n"
           "may exist but must be empty): a root CA (DIR/root_ca.pem: the trust root that\n"
           "--trust-sim DIR options read), a PCK platform CA, a PCK leaf, a TCB signing\n"
           "certificate, CRLs, signed TCB info and QE identity, and DIR/collateral.json.\n"
           "INSECURE by design: their private keys (DIR/*.key) are in DIR, so anyone who\n"
           "can read it can forge quotes that verify against that root.\n");
}

static void quote_help(void) {
    printf("usage: " QUOTE_USAGE "\n"
           "Write a TDX quote over REPORTDATA (HEX, zero-padded to 64 bytes) to FILE\n"
           "(which must not exist).\n"
           "  --tee tdx         (default) ask the guest kernel: configfs-tsm, else\n"
           "                    /dev/tdx_guest ($CAI_TSM_REPORT_DIR and\n"
           "                    $CAI_TDX_GUEST_DEVICE override the paths)\n"
           "  --tee coco        in a Confidential Containers pod: ask the guest\n"
           "                    components' attestation agent (GET /aa/evidence at\n"
           "                    --coco-api URL, default " COCO_API_DEFAULT ")\n"
           "  --tee sim         sign one through the sim PKI in --sim DIR (INSECURE)\n"
           "  --sim-debug       with --tee sim: set the TD's DEBUG attribute, to test\n"
           "                    that verifiers refuse it\n"
           "  --sim-mrconfigid HEX  with --tee sim: the TD's MRCONFIGID (48 bytes), as\n"
           "                    a CoCo launcher sets it to the init-data digest\n"
           "  --report-data HEX the REPORTDATA (default zeros)\n"
           "  -o, --output FILE the quote to write\n"
           "  -h, --help        this help\n");
}

static void inspect_help(void) {
    printf("usage: " INSPECT_USAGE "\n"
           "Parse a quote and print its fields (measurements, attributes, REPORTDATA,\n"
           "header): NOT a verification; 'cai attest verify' checks it.\n"
           "  --json      print one JSON object\n"
           "  -h, --help  this help\n");
}

static void verify_help(void) {
    printf("usage: " VERIFY_USAGE "\n"
           "DCAP verification at TIME (RFC 3339 or seconds since 1970; default now): PCK\n"
           "chain to Intel's SGX Root CA (pinned) with CRLs, QE report, quote signature,\n"
           "TCB info, TDX module and QE identity, one merged TCB status with advisory IDs\n"
           "(docs/ATTESTATION.md). Exit 0 only if it verifies (and the policy allows it).\n\n"
           "  --collateral FILE|DIR  a collateral file, a directory with collateral.json,\n"
           "                    or an offline directory of tdx-FMSPC-CA.json files\n"
           "  --pccs URL        fetch it from a PCS/PCCS v4 API (e.g.\n"
           "                    " PCCS_INTEL_PCS ")\n"
           "  --cache DIR       with --pccs: keep it in DIR until it expires\n"
           "  --pccs-insecure-http  allow an http:// PCCS (INSECURE transport)\n"
           "  --report-data HEX the REPORTDATA the quote must carry\n"
           "  --policy FILE     a key release policy (docs/POLICY.md) evaluated on the\n"
           "                    claims; exit 1 unless allowed\n"
           "  --allow-debug     accept a DEBUG TD (its host can read its memory); also the\n"
           "                    policy's \"allow_debug\": true\n"
           "  --trust-sim DIR   also trust that sim PKI's root, DIR/root_ca.pem (tests only)\n"
           "  --at TIME         verify as of TIME\n"
           "  --json            print the claims as one JSON object\n"
           "  -h, --help        this help\n");
}

static cai_status read_file(const char *path, buf *b) {
    buf_init(b, 1 << 20);
    return file_read_all(path, 1 << 20, b);
}

static void print_claims(json_t *c, int as_json) {
    if (as_json) {
        char *s = json_dumps(c, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (s)
            puts(s);
        free(s);
        return;
    }
    const char *k;
    json_t *v;
    json_object_foreach(c, k, v) {
        if (json_is_string(v))
            printf("  %-20s %s\n", k, json_string_value(v));
        else if (json_is_boolean(v))
            printf("  %-20s %s\n", k, json_is_true(v) ? "true" : "false");
        else if (json_is_array(v)) {
            printf("  %-20s", k);
            size_t i;
            json_t *e;
            json_array_foreach(v, i, e) printf(" %s", json_string_value(e) ? json_string_value(e) : "?");
            printf("%s\n", json_array_size(v) ? "" : " (none)");
        }
    }
}

static int attest_inspect(int argc, char **argv) {
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int as_json = 0, opt;
    while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (opt) {
        case 'j': as_json = 1; break;
        case 'h': inspect_help(); return 0;
        default: return cli_getopt_error("attest inspect", opt, argv);
        }
    }
    if (optind != argc - 1)
        return cli_usage_error("attest inspect", "expected one quote file");
    const char *path = argv[optind];
    buf b;
    tdx_quote *q = NULL;
    json_t *c = NULL;
    cai_status st = read_file(path, &b);
    if (st == CAI_OK)
        st = tdx_quote_parse(b.data, b.len, TDX_QUOTE_ALLOW_ZERO_PAD, &q);
    if (st == CAI_OK)
        st = tdx_quote_claims_json(q, &c);
    if (st == CAI_OK) {
        json_object_set_new(c, "verified", json_false());
        if (!as_json)
            printf("TDX quote v%u, %zu bytes, NOT VERIFIED\n", q->header.version, q->len);
        print_claims(c, as_json);
    }
    json_decref(c);
    tdx_quote_free(q);
    buf_free(&b);
    return st == CAI_OK ? 0 : cli_fail("attest", st);
}

/* "2025-06-20T00:00:00Z" or seconds since the epoch. */
static int parse_time(const char *s, time_t *out) {
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*s && *end == '\0') {
        *out = (time_t)v;
        return 0;
    }
    struct tm tm = {0};
    end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (end == NULL || (*end != '\0' && strcmp(end, "Z") != 0))
        return -1;
    *out = timegm(&tm);
    return 0;
}

/* Reads |path| as a NUL-terminated string. */
static cai_status read_text(const char *path, size_t max, buf *b) {
    cai_status st = file_read_all(path, max, b);
    if (st == CAI_OK)
        st = buf_terminate(b);
    return st;
}

/* print_verified: the summary line of a verified quote, its TCB statuses
 * and advisories. */
static void print_verified(const tdx_quote *q, const tdx_verify_result *res, const json_t *c) {
    const char *tee = json_string_value(json_object_get(c, "tee"));
    int sim = tee && strcmp(tee, "sim") == 0;
    printf("TDX quote v%u: VERIFIED, TCB %s%s\n", q->header.version, res->tcb_status,
           sim ? " (simulated TEE: proves nothing)" : "");
    printf("  platform %s, TDX module %s, QE %s; advisories:", res->platform_tcb_status,
           res->tdx_module_status[0] ? res->tdx_module_status : "-", res->qe_tcb_status);
    for (size_t i = 0; i < res->n_advisory_ids; i++)
        printf(" %s", res->advisory_ids[i]);
    printf("%s\n", res->n_advisory_ids ? "" : " none");
}

static int attest_verify(int argc, char **argv) {
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},           {"pccs-insecure-http", no_argument, NULL, 'I'},
        {"allow-debug", no_argument, NULL, 'D'},    {"collateral", required_argument, NULL, 'C'},
        {"pccs", required_argument, NULL, 'P'},     {"cache", required_argument, NULL, 'c'},
        {"trust-sim", required_argument, NULL, 'S'}, {"policy", required_argument, NULL, 'p'},
        {"report-data", required_argument, NULL, 'r'}, {"at", required_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0}};
    /* a sim quote is checked with the given collateral: this command tests it */
    attest_trust_opts to = {.sim_uses_given_collateral = 1};
    const char *path = NULL, *policy_path = NULL, *rd_hex = NULL;
    int as_json = 0, allow_debug = 0, opt;
    time_t now = time(NULL);
    while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (opt) {
        case 'j': as_json = 1; break;
        case 'I': to.pccs_insecure_http = 1; break;
        case 'D': allow_debug = 1; break;
        case 'C': to.collateral = optarg; break;
        case 'P': to.pccs_url = optarg; break;
        case 'c': to.pccs_cache = optarg; break;
        case 'S': to.trust_sim = optarg; break;
        case 'p': policy_path = optarg; break;
        case 'r': rd_hex = optarg; break;
        case 'a':
            if (parse_time(optarg, &now) != 0)
                return cli_usage_error("attest verify", "--at wants RFC 3339 UTC or seconds");
            break;
        case 'h': verify_help(); return 0;
        default: return cli_getopt_error("attest verify", opt, argv);
        }
    }
    if (optind == argc - 1)
        path = argv[optind];
    else if (optind < argc)
        return cli_usage_error("attest verify", "expected one quote file, not also '%s'",
                               argv[optind + 1]);
    if (!path)
        return cli_usage_error("attest verify", "expected a quote file");
    if (to.collateral && to.pccs_url)
        return cli_usage_error("attest verify", "--collateral and --pccs exclude each other");
    if (to.pccs_cache && !to.pccs_url)
        return cli_usage_error("attest verify", "--cache is for --pccs (an offline directory is --collateral DIR)");
    if (!to.collateral && !to.pccs_url && !to.trust_sim)
        return cli_usage_error("attest verify", "needs --collateral FILE|DIR or --pccs URL");
    uint8_t rd[64] = {0};
    size_t rd_n = 0;
    if (rd_hex && hex_decode(rd_hex, strlen(rd_hex), rd, sizeof(rd), &rd_n) != CAI_OK)
        return cli_usage_error("attest verify", "--report-data must be up to 64 bytes of hex");

    buf qb, pol_text;
    buf_init(&qb, 0);
    buf_init(&pol_text, 0);
    attest_trust *trust = NULL;
    kbs_policy *pol = NULL;
    tdx_quote *q = NULL;
    json_t *c = NULL;
    tdx_verify_result res;
    memset(&res, 0, sizeof(res));
    attest_verifier v = {0};
    cai_status pst = CAI_OK;
    const char *reason = ""; /* the policy's refusal, kept in |c| */

    cai_status st = read_file(path, &qb);
    if (st == CAI_OK && policy_path && (st = read_text(policy_path, 1 << 20, &pol_text)) == CAI_OK)
        st = kbs_policy_parse((const char *)pol_text.data, pol_text.len, &pol);
    if (st == CAI_OK && (st = attest_trust_new(&to, &trust)) == CAI_OK)
        v = *attest_trust_verifier(trust);
    v.expected_report_data = rd_hex ? rd : NULL;
    v.allow_debug = allow_debug || (pol && kbs_policy_allows_debug(pol));
    if (allow_debug)
        fprintf(stderr, "cai attest: WARNING: --allow-debug: a DEBUG TD verifies too (its host "
                        "can read and change its memory)\n");
    if (st == CAI_OK)
        st = tdx_quote_parse(qb.data, qb.len, TDX_QUOTE_ALLOW_ZERO_PAD, &q);
    cai_status vst = st;
    if (st == CAI_OK) {
        vst = attest_verify_claims(&v, qb.data, qb.len, now, &c, &res);
        if (vst != CAI_OK) {
            fprintf(stderr, "cai attest: REFUSED: %s\n", cai_errmsg(vst));
            st = tdx_quote_claims_json(q, &c);
            if (st == CAI_OK) {
                json_object_del(c, "tee"); /* unknown: nothing verified */
                json_object_set_new(c, "error", json_string(tdx_verify_error_str(res.error)));
            }
        }
    }
    if (st == CAI_OK) {
        json_object_set_new(c, "verified", json_boolean(vst == CAI_OK));
        if (vst == CAI_OK && pol) {
            pst = kbs_policy_check(pol, c, NULL);
            json_t *pj = json_pack("{s:b,s:s}", "allowed", pst == CAI_OK, "reason",
                                   pst == CAI_OK ? "" : cai_errmsg(pst));
            if (json_object_set_new(c, "policy", pj) != 0)
                pj = NULL; /* freed */
            reason = pj ? json_string_value(json_object_get(pj, "reason")) : cai_strerror(pst);
        }
        if (!as_json && vst == CAI_OK)
            print_verified(q, &res, c);
        print_claims(c, as_json);
        if (!as_json && vst == CAI_OK && pol) {
            if (pst == CAI_OK)
                printf("policy %s: ALLOWED\n", policy_path);
            else
                printf("policy %s: REFUSED: %s\n", policy_path, reason);
        }
        if (vst == CAI_OK && pol && pst != CAI_OK)
            fprintf(stderr, "cai attest: REFUSED by the policy: %s\n", reason);
    }
    json_decref(c);
    tdx_quote_free(q);
    attest_trust_free(trust);
    kbs_policy_free(pol);
    buf_free(&qb);
    buf_free(&pol_text);
    if (st != CAI_OK)
        return cli_fail("attest", st);
    return vst == CAI_OK && pst == CAI_OK ? 0 : CLI_EXIT_FAIL;
}

static int attest_quote(int argc, char **argv) {
    static const struct option opts[] = {
        {"tee", required_argument, NULL, 't'},   {"sim", required_argument, NULL, 's'},
        {"output", required_argument, NULL, 'o'}, {"report-data", required_argument, NULL, 'r'},
        {"sim-debug", no_argument, NULL, 'd'},   {"help", no_argument, NULL, 'h'},
        {"sim-mrconfigid", required_argument, NULL, 'C'},
        {"coco-api", required_argument, NULL, 'A'}, {NULL, 0, NULL, 0}};
    const char *tee = "tdx", *dir = NULL, *out = NULL, *rd_hex = NULL, *mrcfg_hex = NULL;
    const char *coco_api = NULL;
    int sim_debug = 0, c;
    while ((c = getopt_long(argc, argv, ":o:h", opts, NULL)) != -1) {
        switch (c) {
        case 't': tee = optarg; break;
        case 's': dir = optarg; break;
        case 'o': out = optarg; break;
        case 'r': rd_hex = optarg; break;
        case 'd': sim_debug = 1; break;
        case 'C': mrcfg_hex = optarg; break;
        case 'A': coco_api = optarg; break;
        case 'h': quote_help(); return 0;
        default: return cli_getopt_error("attest quote", c, argv);
        }
    }
    if (optind < argc)
        return cli_usage_error("attest quote", "unexpected argument '%s'", argv[optind]);
    sim_td td = {0};
    if (sim_debug)
        td.td_attributes[0] = 0x01; /* DEBUG */
    size_t mn = 0;
    if (mrcfg_hex && (hex_decode(mrcfg_hex, strlen(mrcfg_hex), td.mr_config_id, 48, &mn) != CAI_OK ||
                      mn != 48))
        return cli_usage_error("attest quote", "--sim-mrconfigid wants 48 bytes of hex");
    attest_source src = {.sim_dir = dir, .sim_td = sim_debug || mrcfg_hex ? &td : NULL};
    if (attest_tee_parse(tee, &src.tee) != CAI_OK)
        return cli_usage_error("attest quote", "--tee must be tdx, sim or coco");
    if (!out)
        return cli_usage_error("attest quote", "quote needs -o FILE");
    if (src.tee == ATTEST_TEE_SIM && !dir)
        return cli_usage_error("attest quote", "--tee sim needs --sim DIR (made by cai attest sim-init)");
    if (coco_api && src.tee != ATTEST_TEE_COCO)
        return cli_usage_error("attest quote", "--coco-api is for --tee coco");
    src.coco_api = coco_api;
    if (src.tee != ATTEST_TEE_SIM && (dir || sim_debug || mrcfg_hex))
        return cli_usage_error("attest quote",
                               "--sim, --sim-debug and --sim-mrconfigid are for --tee sim only");
    uint8_t rd[64] = {0};
    size_t n = 0;
    if (rd_hex && hex_decode(rd_hex, strlen(rd_hex), rd, sizeof(rd), &n) != CAI_OK)
        return cli_usage_error("attest quote", "--report-data must be up to 64 bytes of hex");
    if (src.tee == ATTEST_TEE_SIM)
        fprintf(stderr, "cai attest: WARNING: the simulated TEE proves nothing; for tests only\n");
    buf q;
    cai_status st = attest_evidence(&src, rd, &q);
    if (st == CAI_OK)
        st = file_write_new(out, q.data, q.len, 0644);
    if (st == CAI_OK)
        printf("wrote a %s TDX quote (%zu bytes) to %s\n", attest_tee_name(src.tee), q.len, out);
    buf_free(&q);
    return st == CAI_OK ? 0 : cli_fail("attest", st);
}

static int attest_sim_init(int argc, char **argv) {
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (c == 'h') {
            sim_init_help();
            return 0;
        }
        return cli_getopt_error("attest sim-init", c, argv);
    }
    if (optind != argc - 1)
        return cli_usage_error("attest sim-init", "needs a directory (and only one)");
    cai_status st = sim_init(argv[optind]);
    if (st != CAI_OK)
        return cli_fail("attest", st);
    printf("created a test DCAP PKI in %s (INSECURE: for the simulated TEE only)\n", argv[optind]);
    return 0;
}

int cmd_attest(int argc, char **argv) {
    static const struct {
        const char *name;
        int (*fn)(int argc, char **argv);
    } subs[] = {{"sim-init", attest_sim_init},
                {"quote", attest_quote},
                {"inspect", attest_inspect},
                {"verify", attest_verify}};
    for (size_t i = 0; argc >= 2 && i < sizeof(subs) / sizeof(subs[0]); i++)
        if (strcmp(argv[1], subs[i].name) == 0)
            return subs[i].fn(argc - 1, argv + 1);
    if (argc >= 2 && cli_is_help(argv[1])) {
        attest_help();
        return 0;
    }
    return cli_usage_error("attest", "expected: sim-init, quote, inspect or verify");
}

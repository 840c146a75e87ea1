/* cmd_attest.c - cai attest: TDX quotes for the simulated TEE, inspected and
 * verified with DCAP. */
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
#include "attest/verify.h"
#include "cli/cli.h"
#include "common/buf.h"
#include "common/codec.h"
#include "common/file.h"
#include "kbs/policy.h"

static void attest_help(void) {
    printf("usage: cai attest sim-init DIR\n"
           "       cai attest quote [--tee tdx|sim] [--sim DIR [--sim-debug]] [--report-data HEX] -o FILE\n"
           "       cai attest inspect QUOTE [--json]\n"
           "       cai attest verify QUOTE [--collateral FILE|DIR | --pccs URL [--cache DIR]]\n"
           "                 [--trust-sim DIR] [--at TIME] [--report-data HEX] [--policy FILE]\n"
           "                 [--allow-debug] [--json]\n\n"
           "sim-init create a throw-away test DCAP PKI (root CA, PCK CA, PCK leaf, TCB\n"
           "         signing, CRLs, signed TCB info and QE identity) for the simulated TEE.\n"
           "         INSECURE by design: its private keys are in DIR.\n"
           "quote    a TDX quote over REPORTDATA (HEX, zero-padded to 64 bytes): --tee tdx\n"
           "         (default) asks the guest kernel (configfs-tsm, else /dev/tdx_guest;\n"
           "         $CAI_TSM_REPORT_DIR / $CAI_TDX_GUEST_DEVICE override the paths);\n"
           "         --tee sim signs one through the sim PKI in DIR (--sim-debug: with the\n"
           "         TD's DEBUG attribute set, to test that verifiers refuse it)\n"
           "inspect  parse a quote and print its fields: NOT a verification\n"
           "verify   DCAP verification at TIME (RFC 3339 or seconds since 1970; default\n"
           "         now): PCK chain to Intel's SGX Root CA (pinned) with CRLs, QE report,\n"
           "         quote signature, TCB info, TDX module and QE identity, one merged TCB\n"
           "         status with advisory IDs (docs/ATTESTATION.md). Collateral: a file, a\n"
           "         directory with collateral.json, an offline directory of\n"
           "         tdx-FMSPC-CA.json files, or fetched from a PCS/PCCS v4 API (e.g.\n"
           "         " PCCS_INTEL_PCS ") and cached in --cache DIR until\n"
           "         it expires (--pccs-insecure-http allows http://). --report-data: the\n"
           "         REPORTDATA the quote must carry. --policy FILE: a key release policy\n"
           "         (docs/POLICY.md) evaluated on the claims; exit 1 unless allowed.\n"
           "         A DEBUG TD (its host can read its memory) is refused unless\n"
           "         --allow-debug or the policy's \"allow_debug\": true.\n"
           "         --trust-sim DIR also trusts that sim PKI's root (tests only).\n");
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
    const char *path = NULL;
    int as_json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            as_json = 1;
        else if (!path && argv[i][0] != '-')
            path = argv[i];
        else
            return cli_usage_error("attest", "unexpected argument '%s'", argv[i]);
    }
    if (!path)
        return cli_usage_error("attest", "inspect needs a quote file");
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

static int is_dir(const char *p) {
    struct stat s;
    return stat(p, &s) == 0 && S_ISDIR(s.st_mode);
}

static int attest_verify(int argc, char **argv) {
    const char *path = NULL, *coll_path = NULL, *sim_dir = NULL, *pccs_url = NULL,
               *cache_dir = NULL, *policy_path = NULL, *rd_hex = NULL;
    int as_json = 0, insecure_http = 0, allow_debug = 0;
    time_t now = time(NULL);
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--json") == 0)
            as_json = 1;
        else if (strcmp(argv[i], "--pccs-insecure-http") == 0)
            insecure_http = 1;
        else if (strcmp(argv[i], "--allow-debug") == 0)
            allow_debug = 1;
        else if (strcmp(argv[i], "--collateral") == 0 && v)
            coll_path = v, i++;
        else if (strcmp(argv[i], "--pccs") == 0 && v)
            pccs_url = v, i++;
        else if (strcmp(argv[i], "--cache") == 0 && v)
            cache_dir = v, i++;
        else if (strcmp(argv[i], "--trust-sim") == 0 && v)
            sim_dir = v, i++;
        else if (strcmp(argv[i], "--policy") == 0 && v)
            policy_path = v, i++;
        else if (strcmp(argv[i], "--report-data") == 0 && v)
            rd_hex = v, i++;
        else if (strcmp(argv[i], "--at") == 0 && v) {
            if (parse_time(v, &now) != 0)
                return cli_usage_error("attest", "--at wants RFC 3339 UTC or seconds");
            i++;
        } else if (!path && argv[i][0] != '-')
            path = argv[i];
        else
            return cli_usage_error("attest", "unexpected argument '%s'", argv[i]);
    }
    if (!path)
        return cli_usage_error("attest", "verify needs a quote file");
    if (coll_path && pccs_url)
        return cli_usage_error("attest", "--collateral and --pccs exclude each other");
    if (cache_dir && !pccs_url)
        return cli_usage_error("attest", "--cache is for --pccs (an offline directory is --collateral DIR)");
    if (!coll_path && !pccs_url && !sim_dir)
        return cli_usage_error("attest", "verify needs --collateral FILE|DIR or --pccs URL");
    uint8_t rd[64] = {0};
    size_t rd_n = 0;
    if (rd_hex && hex_decode(rd_hex, strlen(rd_hex), rd, sizeof(rd), &rd_n) != CAI_OK)
        return cli_usage_error("attest", "--report-data must be up to 64 bytes of hex");

    buf qb, root, pol_text;
    buf_init(&qb, 0);
    buf_init(&root, 0);
    buf_init(&pol_text, 0);
    tdx_collateral *coll = NULL;
    pccs *provider = NULL;
    kbs_policy *pol = NULL;
    tdx_quote *q = NULL;
    json_t *c = NULL;
    tdx_verify_result res;
    memset(&res, 0, sizeof(res));
    attest_verifier v = {.expected_report_data = rd_hex ? rd : NULL};
    char why[512] = "";
    cai_status pst = CAI_OK;

    cai_status st = read_file(path, &qb);
    if (st == CAI_OK && policy_path && (st = read_text(policy_path, 1 << 20, &pol_text)) == CAI_OK)
        st = kbs_policy_parse((const char *)pol_text.data, pol_text.len, &pol);
    if (st == CAI_OK && sim_dir) {
        char p[4096];
        snprintf(p, sizeof(p), "%s/%s", sim_dir, SIM_ROOT_CERT);
        if ((st = read_text(p, 1 << 16, &root)) == CAI_OK) {
            v.sim_root_pem = (const char *)root.data;
            fprintf(stderr, "cai attest: WARNING: trusting the simulated TEE's root in %s "
                            "(INSECURE: for tests and development only)\n", sim_dir);
        }
        if (st == CAI_OK && !coll_path && !pccs_url)
            coll_path = sim_dir; /* its own collateral.json */
    }
    if (st == CAI_OK && coll_path) {
        char p[4096];
        snprintf(p, sizeof(p), "%s/collateral.json", coll_path);
        if (is_dir(coll_path) && access(p, R_OK) != 0) {
            /* an offline collateral directory: DIR/tdx-FMSPC-CA.json, as --cache writes */
            pccs_config pc = {.cache_dir = coll_path};
            st = pccs_new(&pc, &provider);
        } else
            st = tdx_collateral_load(coll_path, &coll);
    }
    if (st == CAI_OK && pccs_url) {
        pccs_config pc = {.base_url = pccs_url, .cache_dir = cache_dir,
                          .insecure_http = insecure_http};
        if (insecure_http)
            fprintf(stderr, "cai attest: WARNING: plain HTTP to the PCCS (INSECURE transport; "
                            "the collateral is still verified)\n");
        st = pccs_new(&pc, &provider);
    }
    v.tdx_collateral = coll;
    v.sim_collateral = v.sim_root_pem ? coll : NULL;
    v.collateral_provider = provider;
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
            pst = kbs_policy_check(pol, c, NULL, why, sizeof(why));
            json_object_set_new(c, "policy", json_pack("{s:b,s:s}", "allowed", pst == CAI_OK,
                                                       "reason", pst == CAI_OK ? "" : why));
        }
        if (!as_json && vst == CAI_OK) {
            const char *tee = json_string_value(json_object_get(c, "tee"));
            int sim = tee && strcmp(tee, "sim") == 0;
            printf("TDX quote v%u: VERIFIED, TCB %s%s\n", q->header.version, res.tcb_status,
                   sim ? " (simulated TEE: proves nothing)" : "");
            printf("  platform %s, TDX module %s, QE %s; advisories:", res.platform_tcb_status,
                   res.tdx_module_status[0] ? res.tdx_module_status : "-", res.qe_tcb_status);
            for (size_t i = 0; i < res.n_advisory_ids; i++)
                printf(" %s", res.advisory_ids[i]);
            printf("%s\n", res.n_advisory_ids ? "" : " none");
        }
        print_claims(c, as_json);
        if (!as_json && vst == CAI_OK && pol) {
            if (pst == CAI_OK)
                printf("policy %s: ALLOWED\n", policy_path);
            else
                printf("policy %s: REFUSED: %s\n", policy_path, why);
        }
        if (vst == CAI_OK && pol && pst != CAI_OK)
            fprintf(stderr, "cai attest: REFUSED by the policy: %s\n", why);
    }
    json_decref(c);
    tdx_quote_free(q);
    tdx_collateral_free(coll);
    pccs_free(provider);
    kbs_policy_free(pol);
    buf_free(&qb);
    buf_free(&root);
    buf_free(&pol_text);
    if (st != CAI_OK)
        return cli_fail("attest", st);
    return vst == CAI_OK && pst == CAI_OK ? 0 : CLI_EXIT_FAIL;
}

static int attest_quote(int argc, char **argv) {
    const char *tee = "tdx", *dir = NULL, *out = NULL, *rd_hex = NULL;
    int sim_debug = 0;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--tee") == 0 && v)
            tee = v, i++;
        else if (strcmp(argv[i], "--sim") == 0 && v)
            dir = v, i++;
        else if (strcmp(argv[i], "-o") == 0 && v)
            out = v, i++;
        else if (strcmp(argv[i], "--report-data") == 0 && v)
            rd_hex = v, i++;
        else if (strcmp(argv[i], "--sim-debug") == 0)
            sim_debug = 1;
        else
            return cli_usage_error("attest", "unexpected argument '%s'", argv[i]);
    }
    sim_td td = {0};
    td.td_attributes[0] = 0x01; /* DEBUG */
    attest_source src = {.sim_dir = dir, .sim_td = sim_debug ? &td : NULL};
    if (attest_tee_parse(tee, &src.tee) != CAI_OK)
        return cli_usage_error("attest", "--tee must be tdx or sim");
    if (!out)
        return cli_usage_error("attest", "quote needs -o FILE");
    if (src.tee == ATTEST_TEE_SIM && !dir)
        return cli_usage_error("attest", "--tee sim needs --sim DIR (made by cai attest sim-init)");
    if (src.tee == ATTEST_TEE_TDX && (dir || sim_debug))
        return cli_usage_error("attest", "--sim and --sim-debug are for --tee sim only");
    uint8_t rd[64] = {0};
    size_t n = 0;
    if (rd_hex && hex_decode(rd_hex, strlen(rd_hex), rd, sizeof(rd), &n) != CAI_OK)
        return cli_usage_error("attest", "--report-data must be up to 64 bytes of hex");
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

int cmd_attest(int argc, char **argv) {
    if (argc >= 3 && strcmp(argv[1], "sim-init") == 0) {
        cai_status st = sim_init(argv[2]);
        if (st != CAI_OK)
            return cli_fail("attest", st);
        printf("created a test DCAP PKI in %s (INSECURE: for the simulated TEE only)\n", argv[2]);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "quote") == 0)
        return attest_quote(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "inspect") == 0)
        return attest_inspect(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "verify") == 0)
        return attest_verify(argc - 1, argv + 1);
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        attest_help();
        return 0;
    }
    return cli_usage_error("attest", "expected: sim-init, quote, inspect or verify");
}

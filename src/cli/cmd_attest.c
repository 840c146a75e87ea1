/* cmd_attest.c - cai attest: TDX quotes for the simulated TEE, inspected and
 * verified with DCAP. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attest/evidence.h"
#include "attest/quote.h"
#include "attest/sim.h"
#include "attest/verify.h"
#include "cli/cli.h"
#include "common/buf.h"
#include "common/codec.h"
#include "common/file.h"

static void attest_help(void) {
    printf("usage: cai attest sim-init DIR\n"
           "       cai attest quote [--tee tdx|sim] [--sim DIR] [--report-data HEX] -o FILE\n"
           "       cai attest inspect QUOTE [--json]\n"
           "       cai attest verify QUOTE --collateral FILE|DIR [--at TIME] [--trust-sim DIR] [--json]\n\n"
           "sim-init create a throw-away test DCAP PKI (root CA, PCK CA, PCK leaf, TCB\n"
           "         signing, CRLs, signed TCB info and QE identity) for the simulated TEE.\n"
           "         INSECURE by design: its private keys are in DIR.\n"
           "quote    a TDX quote over REPORTDATA (HEX, zero-padded to 64 bytes): --tee tdx\n"
           "         (default) asks the guest kernel (configfs-tsm, else /dev/tdx_guest;\n"
           "         $CAI_TSM_REPORT_DIR / $CAI_TDX_GUEST_DEVICE override the paths);\n"
           "         --tee sim signs one through the sim PKI in DIR\n"
           "inspect  parse a quote and print its fields: NOT a verification\n"
           "verify   DCAP verification at TIME (RFC 3339 or seconds since 1970; default\n"
           "         now): PCK chain to Intel's SGX Root CA (pinned) with CRLs, QE report,\n"
           "         quote signature, TCB info and QE identity. --trust-sim DIR trusts that\n"
           "         sim PKI's root instead (tests and development only).\n");
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

static int attest_verify(int argc, char **argv) {
    const char *path = NULL, *coll_path = NULL, *sim_dir = NULL;
    int as_json = 0;
    time_t now = time(NULL);
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--json") == 0)
            as_json = 1;
        else if (strcmp(argv[i], "--collateral") == 0 && v)
            coll_path = v, i++;
        else if (strcmp(argv[i], "--trust-sim") == 0 && v)
            sim_dir = v, i++;
        else if (strcmp(argv[i], "--at") == 0 && v) {
            if (parse_time(v, &now) != 0)
                return cli_usage_error("attest", "--at wants RFC 3339 UTC or seconds");
            i++;
        } else if (!path && argv[i][0] != '-')
            path = argv[i];
        else
            return cli_usage_error("attest", "unexpected argument '%s'", argv[i]);
    }
    if (!path || !coll_path)
        return cli_usage_error("attest", "verify needs a quote and --collateral");
    buf qb, root;
    buf_init(&root, 0);
    tdx_collateral *coll = NULL;
    tdx_quote *q = NULL;
    json_t *c = NULL;
    tdx_verify_result res = {0};
    tdx_trust trust = {0};
    cai_status st = read_file(path, &qb);
    if (st == CAI_OK)
        st = tdx_collateral_load(coll_path, &coll);
    if (st == CAI_OK && sim_dir) {
        char p[4096];
        snprintf(p, sizeof(p), "%s/%s", sim_dir, SIM_ROOT_CERT);
        if ((st = file_read_all(p, 1 << 16, &root)) == CAI_OK && (st = buf_terminate(&root)) == CAI_OK)
            trust.sim_root_pem = (const char *)root.data;
    }
    if (st == CAI_OK)
        st = tdx_quote_parse(qb.data, qb.len, TDX_QUOTE_ALLOW_ZERO_PAD, &q);
    if (st == CAI_OK)
        st = tdx_quote_claims_json(q, &c);
    cai_status vst = st == CAI_OK ? tdx_verify(qb.data, qb.len, coll, &trust, now, &res) : st;
    if (st == CAI_OK) {
        if (sim_dir)
            json_object_set_new(c, "tee", json_string("sim"));
        json_object_set_new(c, "verified", json_boolean(vst == CAI_OK));
        if (vst == CAI_OK) {
            json_object_set_new(c, "tcb_status", json_string(res.tcb_status));
            json_object_set_new(c, "qe_tcb_status", json_string(res.qe_tcb_status));
            char fmspc[13];
            hex_encode(fmspc, res.fmspc, 6);
            json_object_set_new(c, "fmspc", json_string(fmspc));
        } else {
            json_object_set_new(c, "error", json_string(tdx_verify_error_str(res.error)));
        }
        if (vst != CAI_OK)
            fprintf(stderr, "cai attest: REFUSED: %s\n", cai_errmsg(vst));
        else if (!as_json)
            printf("TDX quote v%u: VERIFIED, TCB %s%s\n", q->header.version, res.tcb_status,
                   sim_dir ? " (simulated TEE)" : "");
        print_claims(c, as_json);
    }
    json_decref(c);
    tdx_quote_free(q);
    tdx_collateral_free(coll);
    buf_free(&qb);
    buf_free(&root);
    if (st != CAI_OK)
        return cli_fail("attest", st);
    return vst == CAI_OK ? 0 : CLI_EXIT_FAIL;
}

static int attest_quote(int argc, char **argv) {
    const char *tee = "tdx", *dir = NULL, *out = NULL, *rd_hex = NULL;
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
        else
            return cli_usage_error("attest", "unexpected argument '%s'", argv[i]);
    }
    attest_source src = {.sim_dir = dir};
    if (attest_tee_parse(tee, &src.tee) != CAI_OK)
        return cli_usage_error("attest", "--tee must be tdx or sim");
    if (!out)
        return cli_usage_error("attest", "quote needs -o FILE");
    if (src.tee == ATTEST_TEE_SIM && !dir)
        return cli_usage_error("attest", "--tee sim needs --sim DIR (made by cai attest sim-init)");
    if (src.tee == ATTEST_TEE_TDX && dir)
        return cli_usage_error("attest", "--sim is for --tee sim only");
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

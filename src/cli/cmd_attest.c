/* cmd_attest.c - cai attest: TDX quotes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/quote.h"
#include "attest/sim.h"
#include "cli/cli.h"
#include "common/buf.h"
#include "common/codec.h"
#include "common/file.h"

static void attest_help(void) {
    printf("usage: cai attest sim-init DIR\n"
           "       cai attest quote --tee sim --sim DIR [--report-data HEX] -o FILE\n"
           "       cai attest inspect QUOTE [--json]\n\n"
           "sim-init create a throw-away test DCAP PKI (root CA, PCK CA, PCK leaf, TCB\n"
           "         signing, CRLs, signed TCB info and QE identity) for the simulated TEE.\n"
           "         INSECURE by design: its private keys are in DIR. Verifiers trust it\n"
           "         only when their policy names the sim TEE.\n"
           "quote    a real TDX v4 quote signed through that PKI (--tee tdx: to come)\n"
           "inspect  parse a TDX quote (v4 or v5) and print its fields. NOT a verification:\n"
           "         nothing here is trustworthy until the quote's signatures, certificate\n"
           "         chain and TCB are verified (cai attest verify, to come).\n");
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
    buf_init(&b, 1 << 20);
    cai_status st = file_read_all(path, 1 << 20, &b);
    tdx_quote q;
    if (st == CAI_OK)
        st = tdx_quote_parse(b.data, b.len, &q);
    if (st != CAI_OK) {
        buf_free(&b);
        return cli_fail("attest", st);
    }
    json_t *c = tdx_quote_claims(&q);
    json_object_set_new(c, "verified", json_false());
    if (as_json) {
        char *s = json_dumps(c, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (s)
            puts(s);
        free(s);
    } else {
        printf("TDX quote v%u (TD report %s), %zu bytes, NOT VERIFIED\n", q.version,
               q.td.has_1_5 ? "1.5" : "1.0", q.quote_len);
        const char *k;
        json_t *v;
        json_object_foreach(c, k, v) {
            if (json_is_string(v))
                printf("  %-16s %s\n", k, json_string_value(v));
            else if (json_is_boolean(v))
                printf("  %-16s %s\n", k, json_is_true(v) ? "true" : "false");
        }
    }
    json_decref(c);
    buf_free(&b);
    return 0;
}

static int attest_quote(int argc, char **argv) {
    const char *tee = "sim", *dir = NULL, *out = NULL, *rd_hex = NULL;
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
    if (strcmp(tee, "sim") != 0)
        return cli_usage_error("attest", "--tee %s is not available yet (sim is)", tee);
    if (!dir || !out)
        return cli_usage_error("attest", "quote needs --sim DIR and -o FILE");
    uint8_t rd[64] = {0};
    size_t n = 0;
    if (rd_hex && (hex_decode(rd_hex, strlen(rd_hex), rd, sizeof(rd), &n) != CAI_OK || n > 64))
        return cli_usage_error("attest", "--report-data must be up to 64 bytes of hex");
    buf q;
    buf_init(&q, 0);
    cai_status st = sim_quote(dir, rd, NULL, &q);
    if (st == CAI_OK)
        st = file_write_new(out, q.data, q.len, 0644);
    if (st == CAI_OK)
        printf("wrote a sim TDX quote (%zu bytes) to %s\n", q.len, out);
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
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        attest_help();
        return 0;
    }
    return cli_usage_error("attest", "expected: sim-init, quote or inspect");
}

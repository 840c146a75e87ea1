/* cmd_attest.c - cai attest: TDX quotes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/quote.h"
#include "cli/cli.h"
#include "common/buf.h"
#include "common/file.h"

static void attest_help(void) {
    printf("usage: cai attest inspect QUOTE [--json]\n\n"
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

int cmd_attest(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "inspect") == 0)
        return attest_inspect(argc - 1, argv + 1);
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        attest_help();
        return 0;
    }
    return cli_usage_error("attest", "expected: inspect");
}

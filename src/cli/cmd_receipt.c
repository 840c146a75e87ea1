/* cmd_receipt.c - cai receipt verify: check a signed receipt offline. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"
#include "common/file.h"
#include "ratls/receipt.h"

static void receipt_help(void) {
    printf("usage: cai receipt verify RECEIPT [--request FILE] [--response FILE]\n"
           "                          (--collateral F | --trust-sim DIR) [--policy FILE]\n\n"
           "Check, offline, a receipt that cai serve --receipts signed with its attested\n"
           "TLS key (docs/RATLS.md): the certificate it carries verifies as a client would\n"
           "have verified it when the receipt was made (quote, key binding, freshness,\n"
           "policy), the signature is that key's over this receipt, the model digest is the\n"
           "attested one, and the request and response files hash to what it says.\n\n"
           "  RECEIPT            the receipt JSON (the data of the stream's cai-receipt\n"
           "                     event), or a whole response holding \"cai_receipt\"\n"
           "  --request FILE     the request body as sent\n"
           "  --response FILE    the generated text (the message content, or the\n"
           "                     completion's text), UTF-8, as received\n"
           "  --collateral F     Intel TDX collateral valid at the receipt's time\n"
           "  --trust-sim DIR    trust the simulated TEE of DIR (INSECURE: tests only)\n"
           "  --policy FILE      the policy the server had to satisfy (default: the\n"
           "                     trusted TEE, TCB UpToDate, any measurements)\n"
           "  -h, --help         this help\n");
}

int cmd_receipt(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        receipt_help();
        return argc < 2 ? CLI_EXIT_USAGE : 0;
    }
    if (strcmp(argv[1], "verify") != 0)
        return cli_usage_error("receipt", "unknown subcommand '%s' (verify)", argv[1]);
    static const struct option opts[] = {
        {"request", required_argument, NULL, 'q'},    {"response", required_argument, NULL, 'r'},
        {"collateral", required_argument, NULL, 'c'}, {"trust-sim", required_argument, NULL, 's'},
        {"policy", required_argument, NULL, 'p'},     {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *req_file = NULL, *resp_file = NULL;
    cli_tls_opts to = {0};
    int c;
    optind = 1;
    argc--, argv++;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'q': req_file = optarg; break;
        case 'r': resp_file = optarg; break;
        case 'c': to.collateral = optarg; break;
        case 's': to.trust_sim = optarg; break;
        case 'p': to.policy = optarg; break;
        case 'h': receipt_help(); return 0;
        default: return cli_getopt_error("receipt verify", c, argv);
        }
    }
    if (optind != argc - 1)
        return cli_usage_error("receipt", "verify takes one RECEIPT file");
    buf doc, req, resp;
    buf_init(&doc, RATLS_RECEIPT_MAX + (16u << 20));
    buf_init(&req, 64u << 20);
    buf_init(&resp, 64u << 20);
    cli_tls_check tc = {0};
    json_t *whole = NULL, *claims = NULL, *r = NULL;
    char *inner = NULL;
    cai_status st;
    if ((st = file_read_all(argv[optind], doc.max, &doc)) != CAI_OK ||
        (req_file && (st = file_read_all(req_file, req.max, &req)) != CAI_OK) ||
        (resp_file && (st = file_read_all(resp_file, resp.max, &resp)) != CAI_OK) ||
        (st = cli_tls_check_new(&to, &tc)) != CAI_OK)
        goto out;
    /* A whole response: its "cai_receipt" member. */
    whole = json_loadb((const char *)doc.data, doc.len, 0, NULL);
    const json_t *embedded = json_object_get(whole, "cai_receipt");
    const char *d = (const char *)doc.data;
    size_t n = doc.len;
    if (embedded) {
        if ((inner = json_dumps(embedded, JSON_COMPACT)) == NULL) {
            st = CAI_ERR_NOMEM;
            goto out;
        }
        d = inner, n = strlen(inner);
    }
    st = ratls_receipt_verify(tc.rv, d, n, req_file ? req.data : NULL, req.len,
                              resp_file ? resp.data : NULL, resp.len, &claims, &r);
    if (st == CAI_OK) {
        const char *tee = json_string_value(json_object_get(claims, "tee"));
        printf("receipt verified: %s, model %s sha256:%s\n",
               tee && strcmp(tee, "sim") == 0 ? "simulated TEE (INSECURE, development only)" : "Intel TDX",
               json_string_value(json_object_get(r, "model")),
               json_string_value(json_object_get(r, "model_digest")));
        printf("  id %s, created %lld, MRTD %s\n", json_string_value(json_object_get(r, "id")),
               (long long)json_integer_value(json_object_get(r, "created")),
               json_string_value(json_object_get(claims, "mr_td")));
        printf("  request %s, response %s\n", req_file ? "matches" : "not given",
               resp_file ? "matches" : "not given");
    }
out:
    free(inner);
    json_decref(whole);
    json_decref(claims);
    json_decref(r);
    cli_tls_check_cleanup(&tc);
    buf_free(&doc);
    buf_free(&req);
    buf_free(&resp);
    return st == CAI_OK ? 0 : cli_fail("receipt", st);
}

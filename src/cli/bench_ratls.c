/* bench_ratls.c - cai bench ratls: what attested TLS costs a new connection. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "attest/trust.h"
#include "cli/cli.h"
#include "net/httpc.h"
#include "kbs/policy.h"
#include "ratls/verify.h"

static void help(void) {
    printf("usage: cai bench ratls --url https://HOST:PORT --policy FILE\n"
           "                      (--collateral F | --trust-sim DIR) [-n 20]\n\n"
           "Time N new connections (TCP, TLS 1.3 handshake, GET /health) to a server\n"
           "with --tls attested, three ways: the handshake with no certificate check\n"
           "(a plain TLS handshake), the first connection of a fresh verifier (quote\n"
           "verification and policy: what a client pays once per server certificate),\n"
           "and later connections of the same verifier (its cache answers). Prints the\n"
           "median and the minimum in milliseconds (bench/ratls.sh).\n\n"
           "  --url URL          the server, https://HOST:PORT\n"
           "  --policy FILE      the client's policy (docs/POLICY.md)\n"
           "  --collateral FILE  Intel TDX collateral, or\n"
           "  --trust-sim DIR    trust the simulated TEE of DIR (INSECURE: tests only)\n"
           "  -n N               connections per figure (default 20)\n"
           "  -h, --help         this help\n");
}

static int accept_any(X509_STORE_CTX *xs, void *arg) {
    (void)xs, (void)arg;
    return 1;
}

/* The baseline: the same TLS 1.3 handshake, the certificate taken unchecked. */
static cai_status no_check(void *ssl_ctx, void *arg) {
    (void)arg;
    SSL_CTX_set_cert_verify_callback(ssl_ctx, accept_any, NULL);
    return CAI_OK;
}

/* One new connection and GET /health; its duration in ms, or -1. */
static double one(const char *url, cai_status (*setup)(void *, void *), void *arg) {
    httpc *c = NULL;
    httpc_opts o = {.tls_setup = setup, .tls_setup_arg = arg};
    httpc_request rq = {.method = "GET", .url = url};
    long status = 0;
    buf resp;
    double t0 = clock_now();
    cai_status st = httpc_new(&o, &c);
    if (st == CAI_OK)
        st = httpc_do(c, &rq, &status, &resp);
    double ms = 1e3 * (clock_now() - t0);
    if (st == CAI_OK)
        buf_free(&resp);
    httpc_free(c);
    if (st != CAI_OK || status != 200) {
        fprintf(stderr, "cai bench ratls: %s: %s\n", url, st != CAI_OK ? cai_errmsg(st) : "not 200");
        return -1;
    }
    return ms;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, double *v, int n) {
    qsort(v, (size_t)n, sizeof(*v), cmp);
    printf("%-44s %8.2f %8.2f\n", what, v[n / 2], v[0]);
}

int bench_ratls(int argc, char **argv) {
    static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'},        {"policy", required_argument, NULL, 'p'},
        {"collateral", required_argument, NULL, 'c'}, {"trust-sim", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},             {NULL, 0, NULL, 0}};
    const char *url = NULL;
    cli_tls_opts to = {0};
    long n = 20;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":n:h", opts, NULL)) != -1) {
        switch (c) {
        case 'u': url = optarg; break;
        case 'p': to.policy = optarg; break;
        case 'c': to.collateral = optarg; break;
        case 's': to.trust_sim = optarg; break;
        case 'n':
            if (cli_parse_int(optarg, 3, 10000, &n)) return cli_usage_error("bench ratls", "bad -n");
            break;
        case 'h': help(); return 0;
        default: return cli_getopt_error("bench ratls", c, argv);
        }
    }
    if (!url || strncmp(url, "https://", 8) != 0 || !to.policy)
        return cli_usage_error("bench ratls", "give --url https://HOST:PORT and --policy FILE");
    char health[1024];
    snprintf(health, sizeof(health), "%s/health", url);
    cli_tls_check tc = {0};
    double *plain = calloc((size_t)n, sizeof(double)), *first = calloc((size_t)n, sizeof(double)),
           *cached = calloc((size_t)n, sizeof(double));
    cai_status st = plain && first && cached ? CAI_OK : CAI_ERR_NOMEM;
    if (st == CAI_OK)
        st = cli_tls_check_new(&to, &tc); /* its verifier is the warm one */
    int rc = CLI_EXIT_FAIL;
    if (st != CAI_OK) {
        rc = cli_fail("bench", st);
        goto out;
    }
    ratls_verifier_config rc_cfg = {.verifier = attest_trust_verifier(tc.trust), .policy = tc.policy};
    ratls_verifier *warm = tc.rv;
    /* Interleaved, so the three see the same machine. */
    for (long i = 0; i < n; i++) {
        ratls_verifier *fresh = NULL;
        if (ratls_verifier_new(&rc_cfg, &fresh) != CAI_OK ||
            (plain[i] = one(health, no_check, NULL)) < 0 ||
            (first[i] = one(health, ratls_ssl_ctx_setup, fresh)) < 0 ||
            (cached[i] = one(health, ratls_ssl_ctx_setup, warm)) < 0) {
            ratls_verifier_free(fresh);
            goto out;
        }
        (void)ratls_last_take(NULL);
        ratls_verifier_free(fresh);
    }
    printf("cai bench ratls: %ld new connections each (TCP + TLS 1.3 + GET /health) to %s\n", n, url);
    printf("%-44s %8s %8s\n", "ms per connection", "median", "min");
    report("plain TLS handshake (no certificate check)", plain, (int)n);
    report("attested TLS, first connection (verifies)", first, (int)n);
    report("attested TLS, later connection (cached)", cached, (int)n);
    rc = 0;
out:
    free(plain);
    free(first);
    free(cached);
    cli_tls_check_cleanup(&tc);
    return rc;
}

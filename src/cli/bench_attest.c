/* bench_attest.c - cai bench attest: quote verifications per second with the
 * collateral already in memory (as a verifier with a warm cache runs). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "attest/evidence.h"
#include "attest/sim.h"
#include "attest/trust.h"
#include "cli/cli.h"
#include "common/file.h"

static void help(void) {
    printf("usage: cai bench attest [--seconds N] [--quote FILE --collateral FILE --at TIME]\n\n"
           "Verify one quote over and over (attest_verify_claims: every chain, CRL and\n"
           "signature, TCB matching, claims) for N seconds (default 3) and print\n"
           "verifications per second, with the collateral held in memory and through the\n"
           "collateral provider's cache. Default quote: a fresh simulated-TEE quote\n"
           "(same checks, sim root); --quote/--collateral/--at: e.g. a real Intel quote\n"
           "at a time inside its collateral window (TIME in seconds since 1970).\n"
           "bench/attest.sh prints the figures next to `openssl speed ecdsap256`.\n\n"
           "  --seconds N        how long to verify (default 3, at most 600)\n"
           "  --quote FILE       the quote (default: a fresh simulated-TEE quote)\n"
           "  --collateral FILE  its collateral\n"
           "  --at TIME          the verification time, seconds since 1970\n"
           "  -h, --help         this help\n");
}

/* Runs verifications of |q| with |v| for |secs|; returns the rate or -1. */
static double rate(const attest_verifier *v, const buf *q, time_t at, double secs) {
    long n = 0;
    double t0 = clock_now(), t;
    do {
        json_t *c = NULL;
        if (attest_verify_claims(v, q->data, q->len, at, &c, NULL) != CAI_OK)
            return -1;
        json_decref(c);
        n++;
        t = clock_now() - t0;
    } while (t < secs);
    return (double)n / t;
}

int cmd_bench_attest(int argc, char **argv) {
    static const struct option opts[] = {
        {"seconds", required_argument, NULL, 's'}, {"quote", required_argument, NULL, 'q'},
        {"collateral", required_argument, NULL, 'c'}, {"at", required_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
    long secs = 3, at_l = 0;
    const char *qpath = NULL, *cpath = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (opt) {
        case 's':
            if (cli_parse_int(optarg, 1, 600, &secs) != 0)
                return cli_usage_error("bench attest", "--seconds wants 1..600");
            break;
        case 'q': qpath = optarg; break;
        case 'c': cpath = optarg; break;
        case 'a':
            if (cli_parse_int(optarg, 0, 1L << 40, &at_l) != 0)
                return cli_usage_error("bench attest", "--at wants seconds since 1970");
            break;
        case 'h': help(); return 0;
        default: return cli_getopt_error("bench attest", opt, argv);
        }
    }
    if (optind < argc)
        return cli_usage_error("bench attest", "unexpected argument '%s'", argv[optind]);
    if ((qpath != NULL) != (cpath != NULL))
        return cli_usage_error("bench attest", "--quote and --collateral go together");
    char dir[] = "/tmp/cai-bench-attest-XXXXXX";
    buf q;
    buf_init(&q, 0);
    attest_trust *trust = NULL, *cache_trust = NULL;
    time_t at = at_l ? (time_t)at_l : time(NULL);
    cai_status st = CAI_OK;
    int made = 0;
    if (qpath) {
        attest_trust_opts to = {.collateral = cpath};
        if ((st = file_read_all(qpath, TDX_QUOTE_MAX_LEN, &q)) == CAI_OK)
            st = attest_trust_new(&to, &trust);
    } else {
        uint8_t rd[64] = {1};
        attest_trust_opts to = {.trust_sim = dir};
        made = mkdtemp(dir) != NULL;
        st = made ? sim_init(dir) : cai_fail(CAI_ERR_IO, "cannot make a temporary directory");
        if (st == CAI_OK)
            st = sim_quote(dir, rd, NULL, &q);
        if (st == CAI_OK)
            st = attest_trust_new(&to, &trust);
    }
    double fixed = -1, cached = -1;
    if (st == CAI_OK) {
        json_t *c = NULL;
        const attest_verifier *v = attest_trust_verifier(trust);
        if ((st = attest_verify_claims(v, q.data, q.len, at, &c, NULL)) == CAI_OK)
            fixed = rate(v, &q, at, (double)secs);
        json_decref(c);
    }
    if (st == CAI_OK && !qpath) {
        /* the provider's path: an offline collateral folder (DIR/cache, as a
         * PCCS cache holds it), read once, then from the provider's memory */
        char p[300], cdir[300], text[400];
        snprintf(p, sizeof(p), "%s/%s", dir, SIM_COLLATERAL);
        snprintf(cdir, sizeof(cdir), "%s/cache", dir);
        snprintf(text, sizeof(text), "%s/tdx-005A51000000-platform.json", cdir);
        buf cj;
        buf_init(&cj, 0);
        if (mkdir(cdir, 0700) != 0)
            st = cai_fail(CAI_ERR_IO, "cannot make %s", cdir);
        else if ((st = file_read_all(p, 1 << 20, &cj)) == CAI_OK)
            st = file_write_new(text, cj.data, cj.len, 0644);
        buf_free(&cj);
        attest_trust_opts to = {.collateral = cdir, .trust_sim = dir,
                                .sim_uses_given_collateral = 1};
        if (st == CAI_OK && (st = attest_trust_new(&to, &cache_trust)) == CAI_OK)
            cached = rate(attest_trust_verifier(cache_trust), &q, at, (double)secs);
    }
    if (st == CAI_OK && fixed > 0) {
        printf("quote verifications (%s quote, %zu bytes), 1 thread, %ld s each:\n",
               qpath ? "given" : "sim", q.len, secs);
        printf("  collateral in memory:          %8.1f /s  (%.3f ms each)\n", fixed, 1e3 / fixed);
        if (cached > 0)
            printf("  through the provider's cache:  %8.1f /s\n", cached);
        printf("result verify_per_s=%.1f cached_per_s=%.1f\n", fixed, cached > 0 ? cached : 0.0);
    } else if (st == CAI_OK)
        st = cai_fail(CAI_ERR_INTERNAL, "bench: a verification failed during the run");
    attest_trust_free(trust);
    attest_trust_free(cache_trust);
    buf_free(&q);
    if (made) {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "cai bench: could not remove %s\n", dir);
    }
    return st == CAI_OK ? 0 : cli_fail("bench", st);
}

/* cmd_proxy.c - cai proxy: plain HTTP on loopback in, attested TLS out. */
#include <arpa/inet.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/trust.h"
#include "cli/cli.h"
#include "client/proxy.h"
#include "common/file.h"
#include "common/log.h"
#include "kbs/policy.h"
#include "ratls/verify.h"

static void proxy_help(void) {
    printf("usage: cai proxy --policy FILE (--collateral F | --pccs URL | --trust-sim DIR)\n"
           "                 [--listen 127.0.0.1:41000] [--to https://HOST:PORT] [options]\n\n"
           "Forward plain HTTP from this machine to cai servers over attested TLS, after\n"
           "checking each server's certificate: its quote (Intel TDX DCAP, or the simulated\n"
           "TEE), the binding of its TLS key and model digest, freshness and the policy\n"
           "(docs/RATLS.md, docs/POLICY.md \"servers\"). A server that fails gets no byte of\n"
           "the request; the client gets 502 naming the failed check.\n\n"
           "  proxy mode (default)    export http_proxy=http://127.0.0.1:41000, then ask for\n"
           "                          http://HOST:PORT/v1/... as usual (curl, SDKs)\n"
           "  --to https://HOST:PORT  mapping mode: http://127.0.0.1:41000/ is that server\n"
           "                          (a browser opens its web chat through the proxy);\n"
           "                          proxy requests keep working\n\n"
           "  --policy FILE           the policy servers must satisfy (its \"servers\" sets)\n"
           "  --collateral PATH       Intel TDX collateral (PCS JSON, or a folder)\n"
           "  --pccs URL              or fetch it from a PCS/PCCS v4 API\n"
           "  --pccs-cache DIR        keep fetched collateral on disk too\n"
           "  --trust-sim DIR         trust the simulated TEE of DIR (INSECURE: tests only)\n"
           "  --listen ADDR:PORT      where to listen (default 127.0.0.1:41000)\n"
           "  --allow-remote-clients  listen on a non-loopback address (its clients' traffic\n"
           "                          to the proxy is plain HTTP)\n"
           "  --max-age DUR           refuse certificates issued longer ago (default 30m)\n"
           "  --workers N             upstream requests at once (default 16)\n"
           "  -h, --help              this help\n");
}

static int loopback(const char *host) {
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return strcmp(host, "localhost") == 0;
}

int cmd_proxy(int argc, char **argv) {
    enum { O_POLICY = 0x200, O_COLL, O_PCCS, O_PCCS_CACHE, O_SIM, O_LISTEN, O_REMOTE, O_TO,
           O_AGE, O_WORKERS };
    static const struct option opts[] = {
        {"policy", required_argument, NULL, O_POLICY},   {"collateral", required_argument, NULL, O_COLL},
        {"pccs", required_argument, NULL, O_PCCS},       {"pccs-cache", required_argument, NULL, O_PCCS_CACHE},
        {"trust-sim", required_argument, NULL, O_SIM},   {"listen", required_argument, NULL, O_LISTEN},
        {"allow-remote-clients", no_argument, NULL, O_REMOTE}, {"to", required_argument, NULL, O_TO},
        {"max-age", required_argument, NULL, O_AGE},     {"workers", required_argument, NULL, O_WORKERS},
        {"help", no_argument, NULL, 'h'},                {NULL, 0, NULL, 0}};
    attest_trust_opts to = {0};
    proxy_config pc = {.port = 41000};
    const char *policy_file = NULL, *listen = "127.0.0.1:41000";
    int remote = 0, c;
    long v, max_age = 0;
    char host[256];
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case O_POLICY: policy_file = optarg; break;
        case O_COLL: to.collateral = optarg; break;
        case O_PCCS: to.pccs_url = optarg; break;
        case O_PCCS_CACHE: to.pccs_cache = optarg; break;
        case O_SIM: to.trust_sim = optarg; break;
        case O_LISTEN: listen = optarg; break;
        case O_REMOTE: remote = 1; break;
        case O_TO: pc.to = optarg; break;
        case O_AGE:
            if (cli_parse_duration(optarg, 10, 7 * 86400, &max_age))
                return cli_usage_error("proxy", "bad --max-age (e.g. 30m; 10s..7d)");
            break;
        case O_WORKERS:
            if (cli_parse_int(optarg, 1, 256, &v)) return cli_usage_error("proxy", "bad --workers");
            pc.workers = (int)v;
            break;
        case 'h': proxy_help(); return 0;
        default: return cli_getopt_error("proxy", c, argv);
        }
    }
    if (optind < argc)
        return cli_usage_error("proxy", "unexpected argument '%s'", argv[optind]);
    if (policy_file == NULL)
        return cli_usage_error("proxy", "give --policy FILE: what a server must be to get requests");
    const char *colon = strrchr(listen, ':');
    if (colon == NULL || (size_t)(colon - listen) >= sizeof(host) || cli_parse_int(colon + 1, 0, 65535, &v))
        return cli_usage_error("proxy", "--listen takes ADDR:PORT");
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    pc.host = host;
    pc.port = (int)v;
    if (!loopback(host) && !remote)
        return cli_usage_error("proxy", "%s is not a loopback address: clients reach the proxy in "
                               "plain HTTP; add --allow-remote-clients if you mean it", host);
    if (pc.to && strncmp(pc.to, "https://", 8) != 0)
        return cli_usage_error("proxy", "--to takes https://HOST:PORT");
    buf doc;
    buf_init(&doc, 1 << 20);
    kbs_policy *pol = NULL;
    attest_trust *trust = NULL;
    ratls_verifier *rv = NULL;
    proxy *p = NULL;
    cai_status st;
    if ((st = file_read_all(policy_file, 1 << 20, &doc)) != CAI_OK ||
        (st = kbs_policy_parse((const char *)doc.data, doc.len, &pol)) != CAI_OK)
        goto out;
    if (to.trust_sim && !kbs_policy_trusts_sim(pol))
        log_warn("--trust-sim is given but the policy does not list \"sim\" in \"tee\": simulated "
                 "servers will be refused");
    if ((st = attest_trust_new(&to, &trust)) != CAI_OK)
        goto out;
    ratls_verifier_config rc = {.verifier = attest_trust_verifier(trust), .policy = pol,
                                .max_age_s = max_age};
    if ((st = ratls_verifier_new(&rc, &rv)) != CAI_OK)
        goto out;
    pc.verifier = rv;
    if ((st = proxy_new(&pc, &p)) != CAI_OK)
        goto out;
    if (pc.to)
        printf("cai proxy: http://%s:%d/ is %s, over attested TLS\n", host, proxy_port(p), pc.to);
    printf("cai proxy: listening on %s:%d; use it with\n  export http_proxy=http://%s:%d\n",
           host, proxy_port(p), host, proxy_port(p));
    fflush(stdout);
    st = proxy_run(p);
out:
    proxy_free(p);
    ratls_verifier_free(rv);
    attest_trust_free(trust);
    kbs_policy_free(pol);
    buf_free(&doc);
    return st == CAI_OK ? 0 : cli_fail("proxy", st);
}

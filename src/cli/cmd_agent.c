/* cmd_agent.c - cai agent: the TEE side of the KBS protocol. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent.h"
#include "attest/sim.h"
#include "cli/cli.h"
#include "common/codec.h"
#include "common/file.h"
#include "common/log.h"
#include "ratls/verify.h"

/* `cai agent --help` and `cai agent get-resource --help`: its one subcommand. */
static void agent_help(void) {
    printf("usage: cai agent get-resource kbs:///REPO/TYPE/TAG --kbs URL\n"
           "                [--tee tdx|sim|coco] [--kbs-ca FILE] [--rsa] [--attempts N]\n"
           "                [--sim-dir DIR] [--coco-api URL]\n"
           "                [--sim-mrtd HEX] [--sim-rtmr N=HEX] [--sim-mrconfigid HEX]\n"
           "                [--sim-debug]\n\n"
           "Attest this TD to the key broker at URL (KBS protocol: auth, evidence bound to\n"
           "the nonce and an ephemeral key, attest) and write the released secret to\n"
           "stdout. The secret arrives encrypted to the ephemeral key, which never leaves\n"
           "this process. Network errors are retried with backoff; refusals are not.\n\n"
           "  --kbs URL          the key broker, http(s)://host:port\n"
           "  --kbs-ca FILE      CA certificate of its HTTPS certificate\n"
           "  --kbs-policy FILE  a broker in a TEE (cai kbs --tls attested): verify its\n"
           "                     attested TLS against this policy (\"servers\") instead of\n"
           "                     a CA, with --kbs-collateral F or --kbs-trust-sim DIR\n"
           "  --tee tdx|sim|coco where evidence comes from (default tdx: the guest\n"
           "                     kernel); coco: the attestation agent of a Confidential\n"
           "                     Containers pod, at --coco-api URL (default\n"
           "                     " COCO_API_DEFAULT "); sim: the simulated TEE of\n"
           "                     --sim-dir (INSECURE, tests only)\n"
           "  --rsa              an RSA-3072 key (RSA-OAEP-256) instead of EC P-256\n"
           "  --sim-mrtd HEX, --sim-rtmr N=HEX, --sim-mrconfigid HEX, --sim-debug\n"
           "                     the measurements and DEBUG bit the simulated TD reports\n"
           "  --attempts N       tries on network errors (default 5)\n"
           "  -h, --help         this help\n");
}

static int parse_mr(const char *hex, uint8_t out[48]) {
    size_t n = 0;
    return hex_decode(hex, strlen(hex), out, 48, &n) == CAI_OK && n == 48 ? 0 : -1;
}

int cmd_agent(int argc, char **argv) {
    if (argc >= 2 && cli_is_help(argv[1])) {
        agent_help();
        return 0;
    }
    if (argc < 2 || strcmp(argv[1], "get-resource") != 0)
        return cli_usage_error("agent", "expected: get-resource kbs:///repo/type/tag --kbs URL");
    argc--, argv++; /* get-resource's options */
    static const struct option opts[] = {
        {"kbs", required_argument, NULL, 'K'},       {"kbs-ca", required_argument, NULL, 'R'},
        {"tee", required_argument, NULL, 'T'},       {"sim-dir", required_argument, NULL, 'S'},
        {"rsa", no_argument, NULL, 'r'},             {"attempts", required_argument, NULL, 'a'},
        {"sim-mrtd", required_argument, NULL, 'M'},  {"sim-mrconfigid", required_argument, NULL, 'C'},
        {"sim-rtmr", required_argument, NULL, 'X'},  {"sim-debug", no_argument, NULL, 'd'},
        {"kbs-policy", required_argument, NULL, 'P'},
        {"kbs-trust-sim", required_argument, NULL, 'G'},
        {"kbs-collateral", required_argument, NULL, 'L'},
        {"coco-api", required_argument, NULL, 'A'},
        {"help", no_argument, NULL, 'h'},            {NULL, 0, NULL, 0}};
    agent_config cfg = {.source = {.tee = ATTEST_TEE_TDX}};
    cli_tls_opts kt = {0};
    const char *uri = NULL;
    sim_td td;
    memset(&td, 0, sizeof(td));
    int custom_td = 0, c;
    long v;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'K': cfg.kbs_url = optarg; break;
        case 'R': cfg.ca_file = optarg; break;
        case 'T':
            if (attest_tee_parse(optarg, &cfg.source.tee) != CAI_OK)
                return cli_usage_error("agent", "--tee is tdx, sim or coco");
            break;
        case 'S': cfg.source.sim_dir = optarg; break;
        case 'A': cfg.source.coco_api = optarg; break;
        case 'r': cfg.key_type = JOSE_KEY_RSA; break;
        case 'a':
            if (cli_parse_int(optarg, 1, 100, &v))
                return cli_usage_error("agent", "bad --attempts");
            cfg.attempts = (int)v;
            break;
        case 'M':
            if (parse_mr(optarg, td.mr_td))
                return cli_usage_error("agent", "--sim-mrtd wants 48 bytes of hex");
            custom_td = 1;
            break;
        case 'C':
            if (parse_mr(optarg, td.mr_config_id))
                return cli_usage_error("agent", "--sim-mrconfigid wants 48 bytes of hex");
            custom_td = 1;
            break;
        case 'X':
            if (optarg[0] < '0' || optarg[0] > '3' || optarg[1] != '=' ||
                parse_mr(optarg + 2, td.rtmr[optarg[0] - '0']))
                return cli_usage_error("agent", "--sim-rtmr wants N=HEX (N 0..3, 48 bytes)");
            custom_td = 1;
            break;
        case 'd':
            td.td_attributes[0] |= 1;
            custom_td = 1;
            break;
        case 'P': kt.policy = optarg; break;
        case 'G': kt.trust_sim = optarg; break;
        case 'L': kt.collateral = optarg; break;
        case 'h': agent_help(); return 0;
        default: return cli_getopt_error("agent", c, argv);
        }
    }
    if (optind < argc)
        uri = argv[optind];
    if (optind + 1 < argc)
        return cli_usage_error("agent", "expected one kbs:/// URI, not also '%s'", argv[optind + 1]);
    if (!uri || !cfg.kbs_url)
        return cli_usage_error("agent", "get-resource needs a kbs:/// URI and --kbs URL");
    if (cfg.source.tee == ATTEST_TEE_SIM) {
        if (!cfg.source.sim_dir)
            return cli_usage_error("agent", "--tee sim needs --sim-dir DIR");
        log_warn("INSECURE: evidence from the simulated TEE (--tee sim)");
        if (custom_td)
            cfg.source.sim_td = &td;
    } else if (custom_td || cfg.source.sim_dir) {
        return cli_usage_error("agent", "the --sim-* options go with --tee sim");
    }
    if (cfg.source.coco_api && cfg.source.tee != ATTEST_TEE_COCO)
        return cli_usage_error("agent", "--coco-api is for --tee coco");
    if (cfg.source.tee == ATTEST_TEE_COCO) {
        cai_status cs = coco_api_check(cfg.source.coco_api ? cfg.source.coco_api : COCO_API_DEFAULT);
        if (cs != CAI_OK)
            return cli_usage_error("agent", "%s", cai_errmsg(cs));
    }
    int rc = cli_kbs_tls("agent", cfg.kbs_url, &kt);
    if (rc)
        return rc;
    cli_tls_check tc = {0};
    buf secret;
    buf_init(&secret, 0);
    cai_status st = CAI_OK;
    if (kt.policy && (st = cli_tls_check_new(&kt, &tc)) == CAI_OK) {
        cfg.tls_setup = ratls_ssl_ctx_setup;
        cfg.tls_setup_arg = tc.rv;
    }
    if (st == CAI_OK)
        st = cli_tls_refusal(agent_get_resource(&cfg, uri, &secret), cfg.kbs_url);
    if (st == CAI_OK)
        st = file_write_full(STDOUT_FILENO, secret.data, secret.len);
    buf_free(&secret);
    cli_tls_check_cleanup(&tc);
    return st == CAI_OK ? 0 : cli_fail("agent", st);
}

/* cmd_agent.c - cai agent: the TEE side of the KBS protocol. */
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

static void agent_help(void) {
    printf("usage: cai agent get-resource kbs:///REPO/TYPE/TAG --kbs URL [--tee tdx|sim]\n"
           "                [--kbs-ca FILE] [--rsa] [--sim-dir DIR] [--sim-mrtd HEX]\n"
           "                [--sim-rtmr N=HEX] [--sim-mrconfigid HEX] [--sim-debug]\n\n"
           "Attest this TD to the key broker at URL (KBS protocol: auth, evidence bound to\n"
           "the nonce and an ephemeral key, attest) and write the released secret to\n"
           "stdout. The secret arrives encrypted to the ephemeral key, which never leaves\n"
           "this process. Network errors are retried with backoff; refusals are not.\n\n"
           "  --kbs URL          the key broker, http(s)://host:port\n"
           "  --kbs-ca FILE      CA certificate of its HTTPS certificate\n"
           "  --tee tdx|sim      where evidence comes from (default tdx); sim: the\n"
           "                     simulated TEE of --sim-dir (INSECURE, tests only)\n"
           "  --rsa              an RSA-3072 key (RSA-OAEP-256) instead of EC P-256\n"
           "  --sim-mrtd HEX, --sim-rtmr N=HEX, --sim-mrconfigid HEX, --sim-debug\n"
           "                     the measurements and DEBUG bit the simulated TD reports\n"
           "  --attempts N       tries on network errors (default 5)\n");
}

static int parse_mr(const char *hex, uint8_t out[48]) {
    size_t n = 0;
    return hex_decode(hex, strlen(hex), out, 48, &n) == CAI_OK && n == 48 ? 0 : -1;
}

int cmd_agent(int argc, char **argv) {
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        agent_help();
        return 0;
    }
    if (argc < 2 || strcmp(argv[1], "get-resource") != 0)
        return cli_usage_error("agent", "expected: get-resource kbs:///repo/type/tag --kbs URL");
    agent_config cfg = {.source = {.tee = ATTEST_TEE_TDX}};
    const char *uri = NULL;
    sim_td td;
    memset(&td, 0, sizeof(td));
    int custom_td = 0;
    long v;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--kbs") == 0 && val) {
            cfg.kbs_url = val, i++;
        } else if (strcmp(a, "--kbs-ca") == 0 && val) {
            cfg.ca_file = val, i++;
        } else if (strcmp(a, "--tee") == 0 && val) {
            if (attest_tee_parse(val, &cfg.source.tee) != CAI_OK)
                return cli_usage_error("agent", "--tee is tdx or sim");
            i++;
        } else if (strcmp(a, "--sim-dir") == 0 && val) {
            cfg.source.sim_dir = val, i++;
        } else if (strcmp(a, "--rsa") == 0) {
            cfg.key_type = JOSE_KEY_RSA;
        } else if (strcmp(a, "--attempts") == 0 && val) {
            if (cli_parse_int(val, 1, 100, &v))
                return cli_usage_error("agent", "bad --attempts");
            cfg.attempts = (int)v, i++;
        } else if (strcmp(a, "--sim-mrtd") == 0 && val) {
            if (parse_mr(val, td.mr_td))
                return cli_usage_error("agent", "--sim-mrtd wants 48 bytes of hex");
            custom_td = 1, i++;
        } else if (strcmp(a, "--sim-mrconfigid") == 0 && val) {
            if (parse_mr(val, td.mr_config_id))
                return cli_usage_error("agent", "--sim-mrconfigid wants 48 bytes of hex");
            custom_td = 1, i++;
        } else if (strcmp(a, "--sim-rtmr") == 0 && val) {
            if (val[0] < '0' || val[0] > '3' || val[1] != '=' || parse_mr(val + 2, td.rtmr[val[0] - '0']))
                return cli_usage_error("agent", "--sim-rtmr wants N=HEX (N 0..3, 48 bytes)");
            custom_td = 1, i++;
        } else if (strcmp(a, "--sim-debug") == 0) {
            td.td_attributes[0] |= 1;
            custom_td = 1;
        } else if (!uri && a[0] != '-') {
            uri = a;
        } else {
            return cli_usage_error("agent", "unexpected argument '%s'", a);
        }
    }
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
    buf secret;
    cai_status st = agent_get_resource(&cfg, uri, &secret);
    if (st == CAI_OK)
        st = file_write_full(STDOUT_FILENO, secret.data, secret.len);
    buf_free(&secret);
    return st == CAI_OK ? 0 : cli_fail("agent", st);
}

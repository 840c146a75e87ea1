/* cmd_serve.c - cai serve: the OpenAI-compatible server and web chat. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "attest/sim.h"
#include "ratls/verify.h"
#include "cli/cli.h"
#include "common/file.h"
#include "common/log.h"
#include "serve/server.h"

static void serve_help(void) {
    printf("usage: cai serve -m MODEL.gguf [options]\n"
           "       cai serve --sealed MODEL.sealed --kbs URL --tee tdx|sim|coco [options]\n"
           "       cai serve --sealed MODEL.sealed --key-from-cdh --tee coco [options]\n"
           "       cai serve --sealed MODEL.sealed --key-file KEY [options]\n\n"
           "Serve a model: the OpenAI API (/v1/chat/completions, /v1/completions,\n"
           "/v1/models), /health, /metrics and a web chat at /.\n\n"
           "  -m, --model FILE        a GGUF model (development)\n"
           "      --sealed FILE|URL   a sealed model: decrypted into memory only; from an\n"
           "                          http(s) URL it is downloaded first (ciphertext only,\n"
           "                          into an unnamed file in --download-dir, resumed after\n"
           "                          network failures; every chunk is checked when opened)\n"
           "      --download-dir DIR  where (default $TMPDIR, else /var/tmp)\n"
           "      --sealed-ca FILE    CA of the HTTPS server the sealed model comes from\n"
           "      --kbs URL           the key broker: attest this TEE (--tee) to it and\n"
           "                          receive the sealed model's key (its key id)\n"
           "      --kbs-ca FILE       CA of the key broker's HTTPS certificate\n"
           "      --kbs-policy FILE   a broker in a TEE (cai kbs --tls attested): verify its\n"
           "                          attested TLS against this policy instead of a CA, with\n"
           "      --kbs-collateral F  Intel TDX collateral, or\n"
           "      --kbs-trust-sim DIR the simulated TEE of DIR (INSECURE: tests only)\n"
           "      --key-from-cdh      in a Confidential Containers pod (--tee coco): the\n"
           "                          key from the guest components' confidential data\n"
           "                          hub (GET /cdh/resource/REPO/TYPE/TAG at --coco-api),\n"
           "                          which attests the pod's TD to the broker its init-data\n"
           "                          names and fetches kbs:///REPO/TYPE/TAG (the key id)\n"
           "      --key-file FILE     the key from a file instead (INSECURE: development)\n"
           "      --host ADDR         listen address (default 127.0.0.1)\n"
           "      --port N            port (default 7860)\n"
           "      --slots N           concurrent generations (default 4)\n"
           "      --queue N           waiting requests before 429 (default 64; 0: none wait)\n"
           "  -c, --ctx N             context per generation (default 4096)\n"
           "  -t, --threads N         threads (default: one per CPU)\n"
           "      --model-id ID       the model name clients use (default: the file name)\n"
           "      --alias NAME        another name requests may give the model (repeatable;\n"
           "                          /v1/models lists only the id). Any other \"model\" gets\n"
           "                          404 model_not_found; a request without one is served\n"
           "      --max-tokens-default N  max_tokens of a request that gives none (default,\n"
           "                          as OpenAI: none for chat, which then runs until the\n"
           "                          context is full; 16 for completions)\n"
           "      --chat-template T   chatml, qwen, llama3 or zephyr (default: the model's)\n"
           "      --api-key-file FILE require 'Authorization: Bearer <its contents>'\n"
           "      --cors ORIGIN       allow browsers from ORIGIN ('*' for any)\n"
           "      --tls attested      attested TLS (with --tee): a key made in the TEE, a\n"
           "                          certificate carrying a quote that binds the key and the\n"
           "                          model digest (docs/RATLS.md); clients verify it with\n"
           "                          cai proxy or cai chat --url https://...\n"
           "      --tls-refresh DUR   a new attested key and certificate every DUR (10m)\n"
           "      --receipts          every completion carries a receipt signed by the\n"
           "                          attested key (cai receipt verify checks it offline)\n"
           "      --tls-cert FILE     an ordinary TLS certificate chain (PEM) instead, with\n"
           "      --tls-key FILE      its key\n"
           CLI_TEE_HELP
           "      --sim-debug         with --tee sim: pretend to be a DEBUG TD (tests)\n"
           "                          With --tee, GET /v1/attestation?nonce=HEX returns\n"
           "                          evidence binding the nonce and the model's SHA-256\n"
           "                          (docs/ATTESTATION-API.md).\n"
           "  -h, --help              this help\n");
}

enum { OPT_ALIAS = 0x180, OPT_MAX_TOKENS_DEFAULT, OPT_KEY_FROM_CDH };

/* What the options say, besides the server's configuration. */
typedef struct {
    serve_config cfg;
    const char *api_key_file, *kbs_url, *kbs_ca, *tls_mode;
    int sim_debug, key_from_cdh;
    cli_tls_opts kt;      /* --kbs-policy and its trust roots */
    cli_tee_opts tee_opts;
} serve_opts;

#define HELP_SHOWN (-1)

/* Parses argv into |o|: 0, HELP_SHOWN, or the exit code of a usage error. */
static int parse_options(int argc, char **argv, serve_opts *o) {
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},     {"sealed", required_argument, NULL, 'S'},
        {"key-file", required_argument, NULL, 'k'},  {"host", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'p'},      {"slots", required_argument, NULL, 's'},
        {"queue", required_argument, NULL, 'q'},     {"ctx", required_argument, NULL, 'c'},
        {"threads", required_argument, NULL, 't'},   {"model-id", required_argument, NULL, 'i'},
        {"chat-template", required_argument, NULL, 'T'}, {"api-key-file", required_argument, NULL, 'a'},
        {"cors", required_argument, NULL, 'o'},      {"help", no_argument, NULL, 'h'},
        {"kbs", required_argument, NULL, 'K'},      {"kbs-ca", required_argument, NULL, 'R'},
        {"download-dir", required_argument, NULL, 'D'}, {"sealed-ca", required_argument, NULL, 'E'},
        {"tls", required_argument, NULL, 'L'},       {"tls-cert", required_argument, NULL, 'C'},
        {"tls-key", required_argument, NULL, 'Y'},   {"tls-refresh", required_argument, NULL, 'F'},
        {"sim-debug", no_argument, NULL, 'G'},
        {"key-from-cdh", no_argument, NULL, OPT_KEY_FROM_CDH},
        {"kbs-policy", required_argument, NULL, 0x301},
        {"kbs-trust-sim", required_argument, NULL, 0x302},
        {"kbs-collateral", required_argument, NULL, 0x303},      {"receipts", no_argument, NULL, 'Z'},
        {"alias", required_argument, NULL, OPT_ALIAS},
        {"max-tokens-default", required_argument, NULL, OPT_MAX_TOKENS_DEFAULT},
        CLI_TEE_OPTIONS,                             {NULL, 0, NULL, 0}};
    serve_config *cfg = &o->cfg;
    long v;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":m:c:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': cfg->model_path = optarg; break;
        case 'S': cfg->sealed_path = optarg; break;
        case 'k': cfg->key_file = optarg; break;
        case 'H': cfg->host = optarg; break;
        case 'p':
            if (cli_parse_int(optarg, 0, 65535, &v)) return cli_usage_error("serve", "bad --port");
            cfg->port = (int)v;
            break;
        case 's':
            if (cli_parse_int(optarg, 1, 256, &v)) return cli_usage_error("serve", "bad --slots");
            cfg->slots = (int)v;
            break;
        case 'q':
            if (cli_parse_int(optarg, 0, 100000, &v)) return cli_usage_error("serve", "bad --queue");
            cfg->queue = (int)v;
            break;
        case 'c':
            if (cli_parse_int(optarg, 16, 1 << 22, &v)) return cli_usage_error("serve", "bad --ctx");
            cfg->n_ctx = (int)v;
            break;
        case 't':
            if (cli_parse_int(optarg, 1, 1024, &v)) return cli_usage_error("serve", "bad --threads");
            cfg->threads = (int)v;
            break;
        case 'i': cfg->model_id = optarg; break;
        case OPT_ALIAS:
            if (!optarg[0] || strlen(optarg) > 127 || cfg->n_aliases == SERVE_MAX_ALIASES)
                return cli_usage_error("serve", "--alias wants a name of 1..127 bytes, at most %d "
                                       "times", SERVE_MAX_ALIASES);
            cfg->aliases[cfg->n_aliases++] = optarg;
            break;
        case OPT_MAX_TOKENS_DEFAULT:
            if (cli_parse_int(optarg, 1, 1 << 24, &v)) return cli_usage_error("serve", "bad --max-tokens-default");
            cfg->max_tokens_default = (int)v;
            break;
        case 'T': cfg->chat_template = optarg; break;
        case 'a': o->api_key_file = optarg; break;
        case 'K': o->kbs_url = optarg; break;
        case 'R': o->kbs_ca = optarg; break;
        case 'D': cfg->download_dir = optarg; break;
        case 'E': cfg->sealed_ca = optarg; break;
        case 'o': cfg->cors_origin = optarg; break;
        case 'L': o->tls_mode = optarg; break;
        case 'G': o->sim_debug = 1; break;
        case OPT_KEY_FROM_CDH: o->key_from_cdh = 1; break;
        case 0x301: o->kt.policy = optarg; break;
        case 0x302: o->kt.trust_sim = optarg; break;
        case 0x303: o->kt.collateral = optarg; break;
        case 'Z': cfg->receipts = 1; break;
        case 'C': cfg->tls_cert_file = optarg; break;
        case 'Y': cfg->tls_key_file = optarg; break;
        case 'F':
            if (cli_parse_duration(optarg, 10, 7 * 86400, &v))
                return cli_usage_error("serve", "bad --tls-refresh (e.g. 10m, 600s, 1h; 10s..7d)");
            cfg->tls_refresh_s = v;
            break;
        case CLI_OPT_TEE: o->tee_opts.tee = optarg; break;
        case CLI_OPT_SIM_DIR: o->tee_opts.sim_dir = optarg; break;
        case CLI_OPT_COCO_API: o->tee_opts.coco_api = optarg; break;
        case 'h': serve_help(); return HELP_SHOWN;
        default: return cli_getopt_error("serve", c, argv);
        }
    }
    return 0;
}

/* Checks that the options of |o| go together, and sets up the TEE in |tee|
 * (|td|: the sim TD of --sim-debug) when one is given: 0 or an exit code. */
static int check_options(serve_opts *o, attest_source *tee, sim_td *td) {
    serve_config *cfg = &o->cfg;
    if (!!cfg->model_path + !!cfg->sealed_path != 1)
        return cli_usage_error("serve", "give -m MODEL.gguf or --sealed FILE");
    if (cfg->sealed_path && !!cfg->key_file + !!o->kbs_url + o->key_from_cdh != 1)
        return cli_usage_error("serve", "--sealed needs one of --kbs URL, --key-from-cdh (or, for "
                               "development, --key-file)");
    if (!cfg->sealed_path && (cfg->key_file || o->kbs_url || o->key_from_cdh))
        return cli_usage_error("serve", "--kbs, --key-from-cdh and --key-file go with --sealed");
    int rc = cli_kbs_tls("serve", o->kbs_url, &o->kt);
    if (rc)
        return rc;
    if (o->tls_mode && strcmp(o->tls_mode, "attested") != 0)
        return cli_usage_error("serve", "--tls takes 'attested' (for an ordinary certificate give "
                               "--tls-cert and --tls-key)");
    cfg->tls_attested = o->tls_mode != NULL;
    if (!!cfg->tls_cert_file != !!cfg->tls_key_file)
        return cli_usage_error("serve", "--tls-cert and --tls-key go together");
    if (cfg->tls_attested && cfg->tls_cert_file)
        return cli_usage_error("serve", "--tls attested makes its own certificate: no --tls-cert");
    if (cfg->receipts && !cfg->tls_attested)
        return cli_usage_error("serve", "--receipts are signed by the attested TLS key: add --tls attested");
    if (cfg->tls_refresh_s && !cfg->tls_attested)
        return cli_usage_error("serve", "--tls-refresh goes with --tls attested");
    int has_tee = 0;
    if ((rc = cli_tee_source("serve", &o->tee_opts, tee, &has_tee)) != 0)
        return rc;
    if (o->sim_debug) {
        if (!has_tee || tee->tee != ATTEST_TEE_SIM)
            return cli_usage_error("serve", "--sim-debug goes with --tee sim");
        td->td_attributes[0] = 1; /* DEBUG: for tests of the clients' refusal */
        tee->sim_td = td;
    }
    if (cfg->tls_refresh_s > RATLS_MAX_AGE_DEFAULT)
        log_warn("--tls-refresh %lds: clients refuse certificates issued more than their --max-age "
                 "ago (default %d s), so some will refuse this server between renewals",
                 cfg->tls_refresh_s, RATLS_MAX_AGE_DEFAULT);
    if (o->key_from_cdh && (!has_tee || tee->tee != ATTEST_TEE_COCO))
        return cli_usage_error("serve", "--key-from-cdh needs --tee coco: the pod's guest "
                               "components attest it to the broker for the key");
    cfg->key_from_cdh = o->key_from_cdh;
    if (cfg->tls_attested && !has_tee)
        return cli_usage_error("serve", "--tls attested needs --tee: the evidence its certificate carries");
    if (has_tee) {
        if ((rc = cli_tee_probe("serve", tee)) != 0)
            return rc;
        cfg->tee = tee;
    } else if (o->kbs_url) {
        return cli_usage_error("serve", "--kbs needs --tee: the evidence the key broker checks");
    }
    return 0;
}

/* Reads the API key of --api-key-file into |key| (its line end dropped):
 * 0 or an exit code. */
static int read_api_key(const char *path, buf *key) {
    cai_status st = file_read_all(path, 4096, key);
    if (st != CAI_OK)
        return cli_fail("serve", st);
    while (key->len && (key->data[key->len - 1] == '\n' || key->data[key->len - 1] == '\r'))
        key->len--;
    if (key->len == 0 || buf_terminate(key) != CAI_OK)
        return cli_usage_error("serve", "the API key file is empty");
    return 0;
}

int cmd_serve(int argc, char **argv) {
    serve_opts o = {.cfg = {.port = 7860, .queue = 64}};
    serve_config *cfg = &o.cfg;
    attest_source tee = {0};
    sim_td td = {0};
    int rc = parse_options(argc, argv, &o);
    if (rc)
        return rc == HELP_SHOWN ? 0 : rc;
    if ((rc = check_options(&o, &tee, &td)) != 0)
        return rc;
    buf api_key;
    buf_init(&api_key, 4096);
    if (o.api_key_file) {
        if ((rc = read_api_key(o.api_key_file, &api_key)) != 0)
            return rc;
        cfg->api_key = (const char *)api_key.data;
    }
    /* The key broker, checked by its attested TLS certificate with
     * --kbs-policy; the boot attests to it and receives the key. */
    cai_status st = CAI_OK;
    agent_config ac = {.kbs_url = o.kbs_url, .ca_file = o.kbs_ca, .source = tee};
    cli_tls_check tc = {0};
    if (o.kt.policy && (st = cli_tls_check_new(&o.kt, &tc)) == CAI_OK) {
        ac.tls_setup = ratls_ssl_ctx_setup;
        ac.tls_setup_arg = tc.rv;
    }
    cfg->kbs = o.kbs_url ? &ac : NULL;
    server *sv = NULL;
    if (st == CAI_OK)
        st = server_start(cfg, &sv); /* downloads, attests, gets the key */
    cli_tls_check_cleanup(&tc);
    if (st != CAI_OK) {
        buf_free(&api_key);
        return cli_fail("serve", st);
    }
    if (!cfg->tls_attested && !cfg->tls_cert_file && cfg->tee)
        log_warn("INSECURE: plain HTTP: prompts and replies cross the network readable by the "
                 "host; use --tls attested");
    printf("cai serve: listening on %s://%s:%d/ (web chat), OpenAI API at /v1%s\n",
           cfg->tls_attested || cfg->tls_cert_file ? "https" : "http",
           cfg->host ? cfg->host : "127.0.0.1", server_port(sv),
           cfg->tls_attested ? "; attested TLS once the model is loaded" : "");
    fflush(stdout);
    st = server_run(sv);
    log_info("stopping");
    server_free(sv);
    buf_free(&api_key);
    return st == CAI_OK ? 0 : cli_fail("serve", st);
}

/* cmd_kbs.c - cai kbs: the key broker, and its admin client. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attest/trust.h"
#include "cli/cli.h"
#include "common/file.h"
#include "common/log.h"
#include "common/secure.h"
#include "kbs/admin.h"
#include "kbs/server.h"
#include "ratls/server.h"
#include "seal/keyfile.h"

static void kbs_help(void) {
    printf("usage: cai kbs --db FILE|URI --master-key FILE (--tls-cert F --tls-key F | --insecure-http)\n"
           "               [--host ADDR] [--port N] [--admin-pub FILE] [--policy FILE]\n"
           "               [--collateral FILE|DIR | --pccs URL [--pccs-cache DIR]] [--trust-sim DIR]\n"
           "               [options]\n"
           "       cai kbs admin keygen -o PREFIX\n"
           "       cai kbs admin token --key FILE [--ttl SECONDS]\n"
           "       cai kbs admin --url URL --key FILE [--ca FILE] COMMAND\n\n"
           "The key broker: releases a resource (a model key) to a TEE only after its\n"
           "TDX attestation verifies and the policy (docs/POLICY.md) allows it, as a JWE\n"
           "encrypted to the TEE's ephemeral key. Speaks the KBS protocol of Trustee\n"
           "(docs/KBS-PROTOCOL.md). Resources are kept in one SQLite file (or a\n"
           "PostgreSQL database several brokers share), encrypted at rest under the\n"
           "master key; every release and refusal is audited.\n\n"
           "  --db FILE            the database (created on first start), with FILE.state\n"
           "                       beside it; back up both together (docs/KBS-STORE.md)\n"
           "  --db postgresql://USER[:PASSWORD]@HOST[:PORT]/DB[?connect_timeout=5...]\n"
           "                       instead, PostgreSQL (libpq's URI; schema migrated at\n"
           "                       start): brokers on one database share keys, policy,\n"
           "                       sessions and nonces, the audit log. The URI is a secret\n"
           "                       (never logged): prefer a ~/.pgpass file to a password\n"
           "  --state-file FILE    with PostgreSQL: this broker's state file (the store's\n"
           "                       generation, pinned: a database rolled back is refused)\n"
           "  --master-key FILE    256-bit master key, mode 0600 (created if missing)\n"
           "  --host ADDR          listen address (default 127.0.0.1)\n"
           "  --port N             port (default 8080; 0: any free port)\n"
           "  --tls-cert/--tls-key PEM certificate chain and key for HTTPS\n"
           "  --tls attested       in a TEE (--tee): attested TLS, as cai serve makes it\n"
           "                       (docs/RATLS.md; it binds no model: a digest of zeros);\n"
           "                       agents check it with --kbs-policy\n"
           CLI_TEE_HELP
           "  --insecure-http      plain HTTP (tests and development only)\n"
           "  --admin-pub FILE     the admin's Ed25519 public key (admin API off without)\n"
           "  --policy FILE        set the release policy at start (else the stored one)\n"
           "  --collateral PATH    DCAP collateral for Intel TDX quotes (JSON file or dir)\n"
           "  --pccs URL           instead, fetch it per FMSPC from a PCS/PCCS v4 API (e.g.\n"
           "                       https://api.trustedservices.intel.com), cached until it\n"
           "                       expires; --pccs-cache DIR keeps it on disk too\n"
           "  --pccs-insecure-http allow an http:// PCCS (INSECURE transport)\n"
           "  --trust-sim DIR      also accept quotes of the simulated TEE whose PKI is in\n"
           "                       DIR (INSECURE; the policy must list tee \"sim\" too)\n"
           "  --session-ttl S      an attested session's lifetime (default 300); until it\n"
           "                       attests, a session and its nonce live 30 s at most\n"
           "  --max-sessions N     sessions held (default 10000; when full, one not yet\n"
           "                       attested is dropped, of the address holding the most)\n"
           "  --sessions-per-client N  sessions not yet attested per client address\n"
           "                       (default 32; beyond, /auth answers 429)\n"
           "  --token-ttl S        attestation token lifetime (default 300)\n"
           "  --rate N             requests per second per client address (default 100;\n"
           "                       0: unlimited)\n"
           "  --log-level L        error, warn, info (default), debug\n"
           "  -h, --help           this help\n\n"
           "'cai kbs admin --help' describes the admin client.\n");
}

/* The admin client's commands: `cai kbs admin --help` prints them all,
 * `cai kbs admin COMMAND --help` one. */
static const struct {
    const char *name, *usage, *what;
    int remote; /* talks to the broker: --url, --key, --ca */
} ADMIN_CMDS[] = {
    {"keygen", "cai kbs admin keygen -o PREFIX",
     "Write a new Ed25519 admin key pair: PREFIX.key (private, mode 0600) and\n"
     "PREFIX.pub (give it to cai kbs --admin-pub)", 0},
    {"token", "cai kbs admin token --key FILE [--ttl SECONDS]",
     "Print an admin token (EdDSA-signed, as Trustee's; default lifetime 300 s) for\n"
     "another HTTP client", 0},
    {"put", "cai kbs admin --url URL --key FILE [--ca FILE] put PATH FILE|-",
     "Store a resource at PATH (repo/type/tag), e.g. a model key; - reads it from\n"
     "standard input", 1},
    {"delete", "cai kbs admin --url URL --key FILE [--ca FILE] delete PATH", "Remove a resource", 1},
    {"list", "cai kbs admin --url URL --key FILE [--ca FILE] list",
     "List the resources (paths, sizes; never the values)", 1},
    {"policy", "cai kbs admin --url URL --key FILE [--ca FILE] policy set FILE | policy get",
     "Replace the release policy (docs/POLICY.md), or print it", 1},
    {"audit", "cai kbs admin --url URL --key FILE [--ca FILE] audit [--limit N]",
     "Print the latest audit records (default 100), newest first", 1},
};
#define N_ADMIN_CMDS (sizeof(ADMIN_CMDS) / sizeof(ADMIN_CMDS[0]))

static void admin_help(const char *cmd) {
    for (size_t i = 0; cmd && i < N_ADMIN_CMDS; i++)
        if (strcmp(cmd, ADMIN_CMDS[i].name) == 0) {
            printf("usage: %s\n\n%s.\n", ADMIN_CMDS[i].usage, ADMIN_CMDS[i].what);
            if (ADMIN_CMDS[i].remote)
                printf("\n  --url URL    the key broker\n"
                       "  --key FILE   the admin's Ed25519 private key (cai kbs admin keygen)\n"
                       "  --ca FILE    CA of the broker's HTTPS certificate\n");
            return;
        }
    printf("usage: cai kbs admin [--url URL] [--key FILE] [--ca FILE] COMMAND [ARGS]\n\n"
           "The key broker's admin client: each request carries a 5-minute EdDSA token\n"
           "signed with --key, which the broker checks against its --admin-pub.\n\n");
    for (size_t i = 0; i < N_ADMIN_CMDS; i++)
        printf("  %s\n", ADMIN_CMDS[i].usage);
    printf("\n'cai kbs admin COMMAND --help' describes one.\n");
}

static cai_status read_text(const char *path, size_t max, buf *b) {
    cai_status st = file_read_all(path, max, b);
    if (st == CAI_OK)
        st = buf_terminate(b);
    return st;
}

/* ---- the server ----------------------------------------------------------- */

/* kbs's options, parsed and checked. */
typedef struct {
    kbs_server_config cfg;
    const char *master, *admin, *policy, *tls_mode;
    attest_trust_opts to;
    cli_tee_opts tee_opts;
    int insecure;
} kbs_opts;

/* kbs_parse reads the options into |o| and checks how they go together:
 * 0 to go on, -1 when help was printed, else the exit code. */
static int kbs_parse(int argc, char **argv, kbs_opts *o) {
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},          {"master-key", required_argument, NULL, 'm'},
        {"host", required_argument, NULL, 'H'},        {"port", required_argument, NULL, 'p'},
        {"tls-cert", required_argument, NULL, 'c'},    {"tls-key", required_argument, NULL, 'k'},
        {"insecure-http", no_argument, NULL, 'I'},     {"admin-pub", required_argument, NULL, 'a'},
        {"policy", required_argument, NULL, 'P'},      {"collateral", required_argument, NULL, 'C'},
        {"trust-sim", required_argument, NULL, 'S'},   {"session-ttl", required_argument, NULL, 's'},
        {"token-ttl", required_argument, NULL, 't'},   {"rate", required_argument, NULL, 'r'},
        {"log-level", required_argument, NULL, 'L'},   {"help", no_argument, NULL, 'h'},
        {"pccs", required_argument, NULL, 'U'},        {"pccs-cache", required_argument, NULL, 'D'},
        {"pccs-insecure-http", no_argument, NULL, 'X'},
        {"max-sessions", required_argument, NULL, 'M'},
        {"sessions-per-client", required_argument, NULL, 'Q'},
        {"state-file", required_argument, NULL, 'F'},
        {"tls", required_argument, NULL, 'A'},         CLI_TEE_OPTIONS,
        {NULL, 0, NULL, 0}};
    *o = (kbs_opts){.cfg = {.port = 8080, .rate_per_s = 100, .rate_burst = 200}};
    int c;
    long v;
    log_level lvl;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': o->cfg.db_path = optarg; break;
        case 'F': o->cfg.state_path = optarg; break;
        case 'm': o->master = optarg; break;
        case 'H': o->cfg.host = optarg; break;
        case 'p':
            if (cli_parse_int(optarg, 0, 65535, &v)) return cli_usage_error("kbs", "bad --port");
            o->cfg.port = (int)v;
            break;
        case 'c': o->cfg.tls_cert_file = optarg; break;
        case 'k': o->cfg.tls_key_file = optarg; break;
        case 'I': o->insecure = 1; break;
        case 'a': o->admin = optarg; break;
        case 'P': o->policy = optarg; break;
        case 'C': o->to.collateral = optarg; break;
        case 'S': o->to.trust_sim = optarg; break;
        case 'U': o->to.pccs_url = optarg; break;
        case 'D': o->to.pccs_cache = optarg; break;
        case 'X': o->to.pccs_insecure_http = 1; break;
        case 's':
            if (cli_parse_int(optarg, 1, 86400, &v)) return cli_usage_error("kbs", "bad --session-ttl");
            o->cfg.session_ttl_s = (int)v;
            break;
        case 'M':
            if (cli_parse_int(optarg, 1, 10000000, &v)) return cli_usage_error("kbs", "bad --max-sessions");
            o->cfg.max_sessions = (size_t)v;
            break;
        case 'Q':
            if (cli_parse_int(optarg, 1, 10000, &v))
                return cli_usage_error("kbs", "bad --sessions-per-client");
            o->cfg.max_sessions_per_client = (size_t)v;
            break;
        case 't':
            if (cli_parse_int(optarg, 1, 86400, &v)) return cli_usage_error("kbs", "bad --token-ttl");
            o->cfg.token_ttl_s = (int)v;
            break;
        case 'r':
            if (cli_parse_int(optarg, 0, 1000000, &v)) return cli_usage_error("kbs", "bad --rate");
            o->cfg.rate_per_s = (double)v;
            o->cfg.rate_burst = v > 0 ? (int)(2 * v) : 0;
            break;
        case 'L':
            if (log_parse_level(optarg, &lvl)) return cli_usage_error("kbs", "bad --log-level");
            log_set_level(lvl);
            break;
        case 'A': o->tls_mode = optarg; break;
        case CLI_OPT_TEE: o->tee_opts.tee = optarg; break;
        case CLI_OPT_SIM_DIR: o->tee_opts.sim_dir = optarg; break;
        case 'h': kbs_help(); return -1;
        default: return cli_getopt_error("kbs", c, argv);
        }
    }
    if (optind < argc)
        return cli_usage_error("kbs", "unexpected argument '%s'", argv[optind]);
    if (!o->cfg.db_path || !o->master)
        return cli_usage_error("kbs", "--db and --master-key are required");
    if (o->cfg.state_path && strncmp(o->cfg.db_path, "postgresql://", 13) != 0 &&
        strncmp(o->cfg.db_path, "postgres://", 11) != 0)
        return cli_usage_error("kbs", "--state-file goes with --db postgresql://... (a SQLite "
                                      "store's is FILE.state)");
    if (!!o->cfg.tls_cert_file != !!o->cfg.tls_key_file)
        return cli_usage_error("kbs", "--tls-cert and --tls-key go together");
    if (o->tls_mode && strcmp(o->tls_mode, "attested") != 0)
        return cli_usage_error("kbs", "--tls takes 'attested'");
    if (!o->cfg.tls_cert_file && !o->insecure && !o->tls_mode)
        return cli_usage_error("kbs", "give --tls-cert/--tls-key, --tls attested (in a TEE), or "
                                      "--insecure-http for plain HTTP (development only)");
    if (!!o->cfg.tls_cert_file + o->insecure + !!o->tls_mode > 1)
        return cli_usage_error("kbs", "--insecure-http, --tls-cert and --tls attested exclude each other");
    if (o->to.pccs_url && o->to.collateral)
        return cli_usage_error("kbs", "--collateral and --pccs exclude each other");
    if (o->to.pccs_cache && !o->to.pccs_url)
        return cli_usage_error("kbs", "--pccs-cache goes with --pccs");
    return 0;
}

static int kbs_serve(int argc, char **argv) {
    kbs_opts o;
    int rc = kbs_parse(argc, argv, &o);
    if (rc)
        return rc < 0 ? 0 : rc;
    attest_source tee;
    int has_tee = 0;
    rc = cli_tee_source("kbs", &o.tee_opts, &tee, &has_tee);
    if (rc)
        return rc;
    if (!!o.tls_mode != has_tee)
        return cli_usage_error("kbs", "--tls attested and --tee go together (a key broker in a TEE)");

    buf admin_pem, policy_doc;
    buf_init(&admin_pem, 0);
    buf_init(&policy_doc, 0);
    attest_trust *trust = NULL;
    kbs_server *s = NULL;
    ratls_server *rs = NULL;
    cai_status st = keyfile_read(o.master, o.cfg.master_key);
    if (st == CAI_ERR_NOT_FOUND) {
        st = keyfile_create(o.master, o.cfg.master_key);
        if (st == CAI_OK)
            log_info("created a new master key in %s (mode 0600): keep it apart from the "
                     "database, and back it up", o.master);
    }
    if (st == CAI_OK && o.admin && (st = read_text(o.admin, 64 * 1024, &admin_pem)) == CAI_OK)
        o.cfg.admin_pub_pem = (const char *)admin_pem.data;
    if (st == CAI_OK && o.policy && (st = read_text(o.policy, 1 << 20, &policy_doc)) == CAI_OK)
        o.cfg.policy_json = (const char *)policy_doc.data;
    /* Nothing to verify with is allowed: then every quote is refused. */
    if (st == CAI_OK && (o.to.collateral || o.to.pccs_url || o.to.trust_sim) &&
        (st = attest_trust_new(&o.to, &trust)) == CAI_OK)
        o.cfg.verifier = *attest_trust_verifier(trust);
    /* A broker in a TEE: attested TLS binding no model (a digest of zeros). */
    static const uint8_t no_model[ATTEST_DIGEST_LEN];
    if (st == CAI_OK && o.tls_mode && (st = ratls_server_new(&rs)) == CAI_OK &&
        (st = ratls_server_start(rs, &tee, no_model, RATLS_REFRESH_DEFAULT)) == CAI_OK)
        o.cfg.ssl_ctx = ratls_server_ssl_ctx(rs);
    if (st == CAI_OK)
        st = kbs_server_new(&o.cfg, &s);
    secure_wipe(o.cfg.master_key, sizeof(o.cfg.master_key));
    if (st != CAI_OK)
        goto out;
    if (o.insecure)
        log_warn("INSECURE: plain HTTP (--insecure-http); use TLS outside development");
    if (!o.to.collateral && !o.to.pccs_url)
        log_warn("no --collateral or --pccs: Intel TDX quotes will be refused");
    if (!o.admin)
        log_info("no --admin-pub: the admin API is off");
    printf("cai kbs: listening on %s://%s:%d%s\n", o.cfg.tls_cert_file || rs ? "https" : "http",
           o.cfg.host ? o.cfg.host : "127.0.0.1", kbs_server_port(s), "/kbs/v0");
    fflush(stdout);
    st = kbs_server_run(s);
    log_info("stopping");
out:
    kbs_server_free(s);
    ratls_server_free(rs); /* after the server: its SSL_CTX served the connections */
    attest_trust_free(trust); /* after the server: it verified with it */
    buf_free(&admin_pem);
    buf_free(&policy_doc);
    return st == CAI_OK ? 0 : cli_fail("kbs", st);
}

/* ---- the admin client ----------------------------------------------------- */

static int admin_print(cai_status st, buf *resp) {
    if (st == CAI_OK && resp->len) {
        fwrite(resp->data, 1, resp->len, stdout);
        if (resp->data[resp->len - 1] != '\n')
            putchar('\n');
    }
    buf_free(resp);
    return st == CAI_OK ? 0 : cli_fail("kbs admin", st);
}

/* admin_remote runs |cmd| with its |na| arguments at the broker of |a|. */
static int admin_remote(kbs_admin *a, const char *cmd, const char *const *arg, int na, long limit,
                        const char *usage) {
    buf resp, data;
    buf_init(&resp, 0);
    buf_init(&data, KBS_RESOURCE_MAX);
    char what[512];
    int rc;
    cai_status st;
    if (strcmp(cmd, "put") == 0 && na == 2) {
        st = file_read_all(strcmp(arg[1], "-") == 0 ? "/dev/stdin" : arg[1], KBS_RESOURCE_MAX,
                           &data);
        snprintf(what, sizeof(what), "resource/%s", arg[0]);
        if (st == CAI_OK)
            st = kbs_admin_call(a, "POST", what, data.data ? (const char *)data.data : "",
                                data.len, "application/octet-stream", &resp);
        if (st == CAI_OK)
            printf("stored %s (%zu bytes)\n", arg[0], data.len);
        rc = admin_print(st, &resp);
    } else if (strcmp(cmd, "delete") == 0 && na == 1) {
        snprintf(what, sizeof(what), "resource/%s", arg[0]);
        st = kbs_admin_call(a, "DELETE", what, NULL, 0, NULL, &resp);
        if (st == CAI_OK)
            printf("deleted %s\n", arg[0]);
        rc = admin_print(st, &resp);
    } else if (strcmp(cmd, "list") == 0 && na == 0) {
        rc = admin_print(kbs_admin_call(a, "GET", "resource", NULL, 0, NULL, &resp), &resp);
    } else if (strcmp(cmd, "policy") == 0 && na == 2 && strcmp(arg[0], "set") == 0) {
        st = file_read_all(arg[1], 1 << 20, &data);
        if (st == CAI_OK)
            st = kbs_admin_call(a, "POST", "resource-policy", (const char *)data.data, data.len,
                                "application/json", &resp);
        if (st == CAI_OK)
            printf("policy set from %s\n", arg[1]);
        rc = admin_print(st, &resp);
    } else if (strcmp(cmd, "policy") == 0 && na == 1 && strcmp(arg[0], "get") == 0) {
        rc = admin_print(kbs_admin_call(a, "GET", "resource-policy", NULL, 0, NULL, &resp), &resp);
    } else if (strcmp(cmd, "audit") == 0 && na == 0) {
        snprintf(what, sizeof(what), "audit?limit=%ld", limit);
        rc = admin_print(kbs_admin_call(a, "GET", what, NULL, 0, NULL, &resp), &resp);
    } else {
        rc = cli_usage_error("kbs admin", "wrong arguments for %s; usage: %s", cmd, usage);
    }
    buf_free(&data);
    buf_free(&resp);
    return rc;
}

static int kbs_admin_cmd(int argc, char **argv) {
    static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'},   {"key", required_argument, NULL, 'k'},
        {"ca", required_argument, NULL, 'c'},    {"output", required_argument, NULL, 'o'},
        {"ttl", required_argument, NULL, 't'},   {"limit", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0}};
    const char *url = NULL, *keyp = NULL, *ca = NULL, *out = NULL;
    long ttl = KBS_ADMIN_TOKEN_TTL, limit = 100;
    int c, help = 0;
    /* Options anywhere (before or after the command); --help wins over
     * whatever follows it. */
    while ((c = getopt_long(argc, argv, ":o:h", opts, NULL)) != -1) {
        if (help)
            continue;
        switch (c) {
        case 'u': url = optarg; break;
        case 'k': keyp = optarg; break;
        case 'c': ca = optarg; break;
        case 'o': out = optarg; break;
        case 't':
            if (cli_parse_int(optarg, -86400, 86400, &ttl))
                return cli_usage_error("kbs admin", "bad --ttl");
            break;
        case 'l':
            if (cli_parse_int(optarg, 1, 100000, &limit))
                return cli_usage_error("kbs admin", "bad --limit");
            break;
        case 'h': help = 1; break;
        default: return cli_getopt_error("kbs admin", c, argv);
        }
    }
    const char *cmd = optind < argc ? argv[optind] : NULL;
    if (help) {
        admin_help(cmd);
        return 0;
    }
    if (cmd == NULL)
        return cli_usage_error("kbs admin", "expected a command (keygen, token, put, delete, "
                                            "list, policy, audit)");
    size_t known = 0;
    while (known < N_ADMIN_CMDS && strcmp(cmd, ADMIN_CMDS[known].name) != 0)
        known++;
    if (known == N_ADMIN_CMDS)
        return cli_usage_error("kbs admin", "unknown admin command '%s' (keygen, token, put, "
                                            "delete, list, policy, audit)", cmd);
    const char *arg[3] = {NULL, NULL, NULL};
    int na = 0;
    for (int j = optind + 1; j < argc; j++)
        if (na < 3)
            arg[na++] = argv[j];
        else
            return cli_usage_error("kbs admin", "too many arguments for %s", cmd);

    if (strcmp(cmd, "keygen") == 0) {
        if (!out)
            return cli_usage_error("kbs admin", "keygen needs -o PREFIX");
        cai_status st = kbs_admin_keygen(out);
        if (st != CAI_OK)
            return cli_fail("kbs admin", st);
        printf("wrote %s.key (private, mode 0600) and %s.pub (give it to cai kbs --admin-pub)\n",
               out, out);
        return 0;
    }
    if (!keyp)
        return cli_usage_error("kbs admin", "--key FILE (the admin's private key) is required");
    jose_key *key = NULL;
    cai_status st = kbs_admin_key_load(keyp, &key);
    if (st != CAI_OK)
        return cli_fail("kbs admin", st);
    if (strcmp(cmd, "token") == 0) {
        char *t = NULL;
        st = kbs_admin_token(key, time(NULL), ttl, &t);
        if (st == CAI_OK)
            puts(t);
        free(t);
        jose_key_free(key);
        return st == CAI_OK ? 0 : cli_fail("kbs admin", st);
    }
    if (!url) {
        jose_key_free(key);
        return cli_usage_error("kbs admin", "--url URL (the key broker) is required");
    }
    kbs_admin a = {.url = url, .ca_file = ca, .key = key};
    int rc = admin_remote(&a, cmd, arg, na, limit, ADMIN_CMDS[known].usage);
    jose_key_free(key);
    return rc;
}

int cmd_kbs(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "admin") == 0)
        return kbs_admin_cmd(argc - 1, argv + 1);
    return kbs_serve(argc, argv);
}

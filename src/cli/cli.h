/* cli.h - what the subcommands of `cai` share. Exit codes: 0 success,
 * 1 failure, 2 usage error. */
#ifndef CAI_CLI_CLI_H
#define CAI_CLI_CLI_H

#include <stdint.h>

#include "attest/coco.h"
#include "attest/evidence.h"
#include "common/clock.h"
#include "common/status.h"
#include "hf/import.h"

#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2

int cmd_seal(int argc, char **argv);
int cmd_unseal(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_model(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_proxy(int argc, char **argv);
int cmd_receipt(int argc, char **argv);
int cmd_attest(int argc, char **argv);
/* cmd_bench_attest runs `cai bench attest` (bench_attest.c). */
int cmd_bench_attest(int argc, char **argv);
int cmd_kbs(int argc, char **argv);
int cmd_agent(int argc, char **argv);
int bench_kbs(int argc, char **argv);
int bench_ratls(int argc, char **argv);

/* cli_fail prints "cai <cmd>: <message of st>" and returns CLI_EXIT_FAIL. */
int cli_fail(const char *cmd, cai_status st);

/* cli_usage_error prints a message and a pointer to --help; returns 2. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* cli_getopt_error turns getopt_long's error returns into one usage error
 * naming the option: ':' -> "option '--url' needs a value", '?' -> "unknown
 * option '--x'" (or "option '--json' takes no value"); returns 2. Every
 * option string starts with ':' so that a missing value is told apart, and
 * main() sets opterr = 0 so that getopt prints nothing itself. |argv| is the
 * vector given to getopt_long. */
int cli_getopt_error(const char *cmd, int c, char **argv);

/* cli_is_help is 1 when |arg| is --help or -h. */
int cli_is_help(const char *arg);

/* cli_parse_size parses "4096", "64K", "4M", "2G" (binary units); 0 on
 * success, -1 on a malformed value. */
int cli_parse_size(const char *s, uint64_t *out);

/* cli_parse_duration parses "90", "90s", "10m", "2h", "1d" into seconds in
 * [lo, hi]; 0 on success, -1 otherwise. */
int cli_parse_duration(const char *s, long lo, long hi, long *out);

/* cli_parse_int parses a decimal in [lo, hi]; 0 on success, -1 otherwise. */
int cli_parse_int(const char *s, long lo, long hi, long *out);

/* The TEE this process runs in: --tee tdx|sim|coco [--sim-dir DIR]
 * [--coco-api URL]. A command puts CLI_TEE_OPTIONS in its getopt_long
 * table, stores the values in a cli_tee_opts, then turns them into an
 * attest_source once with cli_tee_source (and cli_tee_probe to check the
 * TEE works). */
enum { CLI_OPT_TEE = 0x100, CLI_OPT_SIM_DIR = 0x101, CLI_OPT_COCO_API = 0x102 };
#define CLI_TEE_OPTIONS                                                        \
    {"tee", required_argument, NULL, CLI_OPT_TEE},                             \
    {"sim-dir", required_argument, NULL, CLI_OPT_SIM_DIR},                     \
    {"coco-api", required_argument, NULL, CLI_OPT_COCO_API}
#define CLI_TEE_HELP                                                           \
    "      --tee tdx|sim|coco  the TEE this runs in: tdx (Intel TDX, the guest\n" \
    "                          kernel's quotes), coco (a Confidential Containers\n" \
    "                          pod: the TD's quotes from its guest components'\n" \
    "                          attestation agent), or sim, the simulated TEE\n" \
    "                          (INSECURE: tests and development)\n" \
    "      --sim-dir DIR       with --tee sim: its PKI (cai attest sim-init DIR)\n" \
    "      --coco-api URL      with --tee coco: the guest components' REST API\n" \
    "                          (default " COCO_API_DEFAULT ", loopback only)\n"

typedef struct {
    const char *tee;      /* --tee, or NULL */
    const char *sim_dir;  /* --sim-dir, or NULL */
    const char *coco_api; /* --coco-api, or NULL */
} cli_tee_opts;

/* cli_tee_source checks |o| and fills |out|: returns 0 with |*out_has| = 0
 * when --tee was not given, 0 with |*out_has| = 1 and the source, or a usage
 * error's exit code. --tee sim needs --sim-dir and logs that it is insecure;
 * --sim-dir without --tee sim is refused. |out| points into |o|'s strings. */
int cli_tee_source(const char *cmd, const cli_tee_opts *o, attest_source *out, int *out_has);

/* cli_tee_probe produces one piece of evidence from |src| so that a TEE
 * that does not work is found at start-up: 0, or prints why and returns
 * CLI_EXIT_FAIL. */
int cli_tee_probe(const char *cmd, const attest_source *src);

/* The attested TLS check a client command makes (cai chat --url https://,
 * cai receipt verify): trust roots from --collateral/--trust-sim, and the
 * policy file, or one made from them (the trusted TEEs, TCB UpToDate, any
 * measurements, --model-digest if given). */
typedef struct {
    const char *collateral, *trust_sim, *policy, *model_digest;
} cli_tls_opts;

typedef struct {
    struct attest_trust *trust;
    struct kbs_policy *policy;
    struct ratls_verifier *rv;
} cli_tls_check;

cai_status cli_tls_check_new(const cli_tls_opts *o, cli_tls_check *t) CAI_WUR;
void cli_tls_check_cleanup(cli_tls_check *t);

/* cli_kbs_tls checks the --kbs-policy/--kbs-trust-sim/--kbs-collateral
 * options of a command that talks to a key broker at |url|: 0, or a usage
 * error's exit code. */
int cli_kbs_tls(const char *cmd, const char *url, const cli_tls_opts *o);

/* cli_tls_refusal returns |st|, or, when it is a failure and the calling
 * thread's last attested TLS check refused |url|'s certificate, a
 * CAI_ERR_AUTH naming that check. */
cai_status cli_tls_refusal(cai_status st, const char *url);

/* cli_hf_import converts the Hugging Face folder |dir| into the GGUF file
 * |out| (cai model import, cai seal --type): progress on stderr (a bar on
 * a terminal, a line per tensor otherwise), SIGINT/SIGTERM cancel it and
 * leave no file. Returns 0, 130 when interrupted, or CLI_EXIT_FAIL after
 * printing the error as "cai |cmd|: ...". */
int cli_hf_import(const char *cmd, const char *dir, const char *out, hf_ftype ftype, int threads);

/* A progress line on stderr, drawn only when stderr is a terminal. */
typedef struct {
    const char *label;
    double t0;
    double last;
    int enabled;
} cli_progress;

void cli_progress_init(cli_progress *p, const char *label);
void cli_progress_cb(uint64_t done, uint64_t total, void *arg);
void cli_progress_end(cli_progress *p);

#endif

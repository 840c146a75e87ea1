/* cmd_run.c - cai run (one completion) and local cai chat -m (a conversation). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "attest/evidence.h"
#include "attest/sim.h"
#include "attest/trust.h"
#include "attest/verify.h"
#include "client/client.h"
#include "kbs/policy.h"
#include "ratls/verify.h"
#include "common/buf.h"
#include "common/file.h"
#include "common/secure.h"
#include "llm/engine.h"
#include "llm/sample.h"
#include "llm/session.h"

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig) { (void)sig, interrupted = 1; }

/* Options shared by run and chat. */
typedef struct {
    const char *model, *prompt, *template_name, *system;
    int max_tokens, threads, n_ctx, chat;
    sample_params sample;
    /* chat --url: a server, and how its attestation is checked */
    const char *url, *api_key_file, *collateral, *trust_sim, *model_digest, *policy;
    int insecure_no_attest;
    int set_temp, set_top_p, set_top_k, set_min_p, set_repeat, set_seed, set_local;
} run_opts;

static const struct option RUN_OPTS[] = {
    {"model", required_argument, NULL, 'm'},     {"prompt", required_argument, NULL, 'p'},
    {"n-predict", required_argument, NULL, 'n'}, {"threads", required_argument, NULL, 't'},
    {"ctx", required_argument, NULL, 'c'},       {"temp", required_argument, NULL, 'T'},
    {"top-k", required_argument, NULL, 'K'},     {"top-p", required_argument, NULL, 'P'},
    {"min-p", required_argument, NULL, 'M'},     {"repeat-penalty", required_argument, NULL, 'R'},
    {"seed", required_argument, NULL, 's'},      {"chat", no_argument, NULL, 'C'},
    {"chat-template", required_argument, NULL, 'X'}, {"system", required_argument, NULL, 'S'},
    {"url", required_argument, NULL, 'U'},       {"help", no_argument, NULL, 'h'},
    {"api-key-file", required_argument, NULL, 'A'}, {"collateral", required_argument, NULL, 'L'},
    {"trust-sim", required_argument, NULL, 'G'}, {"model-digest", required_argument, NULL, 'D'},
    {"insecure-no-attest", no_argument, NULL, 'I'}, {"policy", required_argument, NULL, 'Q'},
    {NULL, 0, NULL, 0}};

static const char SAMPLING_HELP[] =
    "  -n, --n-predict N      tokens to generate at most (default 256)\n"
    "  -t, --threads N        threads (default: one per CPU)\n"
    "  -c, --ctx N            context length (default 4096, at most the model's)\n"
    "      --temp X           temperature, 0 = greedy (default 0.8)\n"
    "      --top-k N          (default 40)   --top-p X (default 0.95)   --min-p X (default 0.05)\n"
    "      --repeat-penalty X (default 1.0)  --seed N (default: random)\n"
    "                         a model imported with cai model import brings its own\n"
    "                         defaults for these (its generation_config.json)\n"
    "      --chat-template T  chatml, qwen, llama3 or zephyr (default: the model's)\n";

static int parse_float(const char *s, float *out) {
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (errno || end == s || *end)
        return -1;
    *out = (float)d;
    return 0;
}

/* Returns 0, or the exit code to return (usage error, help shown). */
static int parse_run_opts(const char *cmd, int argc, char **argv, run_opts *o, void (*help)(void)) {
    memset(o, 0, sizeof(*o));
    o->max_tokens = 256;
    o->n_ctx = 4096;
    sample_params_default(&o->sample);
    uint64_t seed;
    if (secure_random((uint8_t *)&seed, sizeof(seed)) == CAI_OK)
        o->sample.seed = seed;
    int c;
    long v;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":m:p:n:t:c:h", RUN_OPTS, NULL)) != -1) {
        switch (c) {
        case 'm': o->model = optarg; break;
        case 'p': o->prompt = optarg; break;
        case 'n':
            if (cli_parse_int(optarg, 1, 1 << 20, &v)) return cli_usage_error(cmd, "bad -n");
            o->max_tokens = (int)v;
            break;
        case 't':
            if (cli_parse_int(optarg, 1, 1024, &v)) return cli_usage_error(cmd, "bad --threads");
            o->threads = (int)v;
            o->set_local = 1;
            break;
        case 'c':
            if (cli_parse_int(optarg, 16, 1 << 22, &v)) return cli_usage_error(cmd, "bad --ctx");
            o->n_ctx = (int)v;
            o->set_local = 1;
            break;
        case 'T': if (parse_float(optarg, &o->sample.temperature)) return cli_usage_error(cmd, "bad --temp"); o->set_temp = 1; break;
        case 'P': if (parse_float(optarg, &o->sample.top_p)) return cli_usage_error(cmd, "bad --top-p"); o->set_top_p = 1; break;
        case 'M': if (parse_float(optarg, &o->sample.min_p)) return cli_usage_error(cmd, "bad --min-p"); o->set_min_p = 1; break;
        case 'R': if (parse_float(optarg, &o->sample.repeat_penalty)) return cli_usage_error(cmd, "bad --repeat-penalty"); o->set_repeat = 1; break;
        case 'K':
            if (cli_parse_int(optarg, 0, 1 << 20, &v)) return cli_usage_error(cmd, "bad --top-k");
            o->sample.top_k = (int)v;
            o->set_top_k = 1;
            break;
        case 's':
            if (cli_parse_int(optarg, 0, 0x7fffffffL, &v)) return cli_usage_error(cmd, "bad --seed");
            o->sample.seed = (uint64_t)v;
            o->set_seed = 1;
            break;
        case 'C': o->chat = 1; break;
        case 'X': o->template_name = optarg; o->set_local = 1; break;
        case 'S': o->system = optarg; break;
        case 'U': o->url = optarg; break;
        case 'A': o->api_key_file = optarg; break;
        case 'L': o->collateral = optarg; break;
        case 'G': o->trust_sim = optarg; break;
        case 'D': o->model_digest = optarg; break;
        case 'I': o->insecure_no_attest = 1; break;
        case 'Q': o->policy = optarg; break;
        case 'h': help(); return -1;
        default: return cli_getopt_error(cmd, c, argv);
        }
    }
    if (o->url && strcmp(cmd, "chat") != 0)
        return cli_usage_error(cmd, "--url is for cai chat");
    if (o->policy && (!o->url || strncmp(o->url, "https://", 8) != 0))
        return cli_usage_error(cmd, "--policy judges an attested TLS server: --url https://...");
    if (!o->url && (o->api_key_file || o->collateral || o->trust_sim || o->model_digest || o->insecure_no_attest))
        return cli_usage_error(cmd, "--api-key-file, --collateral, --trust-sim, --model-digest and "
                               "--insecure-no-attest are for cai chat --url");
    if (o->url && o->model)
        return cli_usage_error(cmd, "give -m MODEL (local) or --url URL (a server), not both");
    if (o->url && o->set_local)
        return cli_usage_error(cmd, "--threads, --ctx and --chat-template are for a local model: the server chooses them");
    if (o->url && o->insecure_no_attest && (o->collateral || o->trust_sim || o->model_digest))
        return cli_usage_error(cmd, "--insecure-no-attest skips the attestation that --collateral, "
                               "--trust-sim and --model-digest configure");
    if (o->url && !o->insecure_no_attest && !o->collateral && !o->trust_sim)
        return cli_usage_error(cmd, "cai chat --url checks the server's attestation first: give "
                               "--collateral FILE (Intel TDX) or --trust-sim DIR (the simulated TEE), "
                               "or --insecure-no-attest to talk to it unchecked");
    if (o->url)
        return 0;
    if (o->model == NULL)
        return cli_usage_error(cmd, "-m MODEL is required");
    if (sample_params_check(&o->sample) != CAI_OK)
        return cli_usage_error(cmd, "%s", cai_errmsg(CAI_ERR_INVALID_ARG));
    return 0;
}

/* generate runs |n| prompt tokens on sequence 0 of |ctx| (reusing what the
 * cache holds of them when |reuse|), writing the text to |out| as it comes,
 * until the reply ends, max_tokens or Ctrl-C. The reply's text is appended
 * to |reply| when given. */
static cai_status generate(llm_ctx *ctx, const llm_engine *e, const sample_params *sp,
                           const int32_t *ids, size_t n, int reuse, int max_tokens, FILE *out,
                           buf *reply, int *n_gen) {
    llm_gen_params p = {.sample = *sp, .max_tokens = max_tokens};
    llm_session *s = NULL;
    *n_gen = 0;
    cai_status st = llm_session_new(e, &p, ids, (int)n, &s);
    if (st != CAI_OK)
        return st;
    llm_session_bind(s, ctx, 0, reuse);
    llm_delta d = {0};
    while (st == CAI_OK && d.finish == LLM_FINISH_NONE && !interrupted) {
        if ((st = llm_session_step(s, &d)) == CAI_OK) {
            fwrite(d.text, 1, d.len, out);
            fflush(out);
        }
    }
    if (st == CAI_OK && d.finish == LLM_FINISH_NONE) { /* interrupted */
        llm_session_end(s, LLM_FINISH_STOP, &d);
        fwrite(d.text, 1, d.len, out);
    }
    if (st == CAI_OK && d.finish == LLM_FINISH_CONTEXT)
        fprintf(stderr, "\n[the context is full]\n");
    size_t len;
    const char *text = llm_session_text(s, &len);
    if (st == CAI_OK && reply)
        st = buf_append(reply, text, len);
    *n_gen = llm_session_n_generated(s);
    llm_session_free(s);
    return st;
}

static cai_status open_all(run_opts *o, llm_engine **e, llm_ctx **ctx) {
    cai_status st = llm_engine_open(o->model, -1, o->template_name, e);
    if (st != CAI_OK)
        return st;
    const llm_model *m = llm_engine_model(*e);
    int n_ctx = o->n_ctx < llm_model_hparams(m)->n_ctx_train ? o->n_ctx : llm_model_hparams(m)->n_ctx_train;
    /* the model's generation defaults, where the command line chose nothing */
    unsigned keep = (o->set_temp ? SAMPLE_SET_TEMPERATURE : 0) | (o->set_top_p ? SAMPLE_SET_TOP_P : 0) |
                    (o->set_top_k ? SAMPLE_SET_TOP_K : 0) | (o->set_min_p ? SAMPLE_SET_MIN_P : 0) |
                    (o->set_repeat ? SAMPLE_SET_REPEAT : 0);
    unsigned gen_set;
    const sample_params *gen = llm_engine_gen(*e, &gen_set);
    sample_params_merge(&o->sample, gen, gen_set, keep);
    return llm_ctx_new(m, n_ctx, 1, o->threads, ctx);
}

static void run_help(void) {
    printf("usage: cai run -m MODEL.gguf -p PROMPT [options]\n\n"
           "Complete PROMPT with the model and stream the text to stdout.\n\n"
           "  -m, --model FILE       a GGUF model (qwen, qwen2, qwen3, llama)\n"
           "  -p, --prompt TEXT      the prompt\n"
           "      --chat             treat PROMPT as a user message in the chat template\n"
           "      --system TEXT      with --chat: the system prompt\n%s"
           "  -h, --help             this help\n", SAMPLING_HELP);
}

int cmd_run(int argc, char **argv) {
    run_opts o;
    int rc = parse_run_opts("run", argc, argv, &o, run_help);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (o.prompt == NULL)
        return cli_usage_error("run", "-p PROMPT is required");
    llm_engine *e = NULL;
    llm_ctx *ctx = NULL;
    int32_t *ids = NULL;
    size_t n = 0, cap = 0;
    cai_status st = open_all(&o, &e, &ctx);
    if (st == CAI_OK && o.chat) {
        chat_message m[2] = {{"system", o.system}, {"user", o.prompt}};
        st = o.system ? llm_engine_chat_prompt(e, m, 2, &ids, &n, &cap)
                      : llm_engine_chat_prompt(e, m + 1, 1, &ids, &n, &cap);
    } else if (st == CAI_OK) {
        st = llm_engine_text_prompt(e, o.prompt, &ids, &n, &cap);
    }
    int n_gen = 0;
    double t0 = clock_now();
    signal(SIGINT, on_sigint);
    if (st == CAI_OK) {
        if (!o.chat)
            fputs(o.prompt, stdout);
        st = generate(ctx, e, &o.sample, ids, n, 0, o.max_tokens, stdout, NULL, &n_gen);
        printf("\n");
    }
    if (st == CAI_OK && isatty(STDERR_FILENO))
        fprintf(stderr, "[%d tokens in %.2f s]\n", n_gen, clock_now() - t0);
    free(ids);
    llm_ctx_free(ctx);
    llm_engine_free(e);
    return st == CAI_OK ? 0 : cli_fail("run", st);
}

/* ---- local chat ------------------------------------------------------------ */

static void chat_help(void) {
    printf("usage: cai chat -m MODEL.gguf [options]\n"
           "       cai chat --url http(s)://HOST:PORT --collateral FILE | --trust-sim DIR [options]\n\n"
           "Chat in the terminal, with a local model or with a cai server (any\n"
           "OpenAI-compatible one with --insecure-no-attest). The conversation is kept\n"
           "until /clear; /exit or Ctrl-D leaves; Ctrl-C stops a reply.\n\n"
           "  -m, --model FILE       a GGUF model\n"
           "      --url URL          a server: replies stream from /v1/chat/completions\n"
           "      --system TEXT      the system prompt (default: the model's)\n%s"
           "With --url, the server's attestation is checked before the conversation\n"
           "(docs/ATTESTATION-API.md): its TDX quote must verify, bind a fresh nonce and\n"
           "the model's SHA-256, and not be a debug TD. Sampling options are sent only\n"
           "when given; --threads, --ctx and --chat-template are the server's.\n"
           "      --collateral FILE  Intel TDX collateral (PCS JSON, or a directory with\n"
           "                         collateral.json) to verify a TDX quote\n"
           "      --trust-sim DIR    trust the simulated TEE of DIR (INSECURE: tests only)\n"
           "      --model-digest HEX refuse a server that serves another model\n"
           "      --insecure-no-attest  talk to the server without checking it\n"
           "      --api-key-file FILE send 'Authorization: Bearer <its contents>'\n"
           "      --policy FILE      with https://: the policy the server must satisfy\n"
           "                         (docs/POLICY.md \"servers\"; default: the trusted TEE,\n"
           "                         TCB UpToDate, --model-digest if given)\n"
           "With http:// the check is made once, over /v1/attestation: plain HTTP does not\n"
           "bind it to later requests. With https:// the server must speak attested TLS\n"
           "(cai serve --tls attested): every connection's certificate is verified before\n"
           "a prompt is sent (docs/RATLS.md).\n"
           "  -h, --help             this help\n", SAMPLING_HELP);
}

typedef struct {
    chat_message *m;
    size_t n, cap;
} history;

static int history_add(history *h, const char *role, const char *text) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 16;
        chat_message *m = realloc(h->m, cap * sizeof(*m));
        if (m == NULL)
            return -1;
        h->m = m;
        h->cap = cap;
    }
    char *copy = strdup(text);
    if (copy == NULL)
        return -1;
    h->m[h->n].role = role;
    h->m[h->n++].content = copy;
    return 0;
}

static void history_clear(history *h, size_t keep) {
    while (h->n > keep)
        free((char *)h->m[--h->n].content);
}

static int chat_remote(const run_opts *o);

typedef enum { CHAT_LINE, CHAT_CLEAR, CHAT_EXIT } chat_input;

/* chat_read reads the user's next line at the "> " prompt into |*line|:
 * a message, /clear, or the end (end of input, /exit, /quit). Empty lines
 * and a Ctrl-C while reading ask again. */
static chat_input chat_read(char **line, size_t *cap) {
    for (;;) {
        printf("\n> ");
        fflush(stdout);
        interrupted = 0;
        ssize_t len = getline(line, cap, stdin);
        if (len < 0) {
            if (interrupted && !feof(stdin)) {
                clearerr(stdin);
                continue;
            }
            return CHAT_EXIT;
        }
        char *l = *line;
        while (len > 0 && (l[len - 1] == '\n' || l[len - 1] == '\r'))
            l[--len] = '\0';
        if (len == 0)
            continue;
        if (strcmp(l, "/exit") == 0 || strcmp(l, "/quit") == 0)
            return CHAT_EXIT;
        return strcmp(l, "/clear") == 0 ? CHAT_CLEAR : CHAT_LINE;
    }
}

int cmd_chat(int argc, char **argv) {
    run_opts o;
    int rc = parse_run_opts("chat", argc, argv, &o, chat_help);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (o.url)
        return chat_remote(&o);
    llm_engine *e = NULL;
    llm_ctx *ctx = NULL;
    cai_status st = open_all(&o, &e, &ctx);
    if (st != CAI_OK) {
        llm_ctx_free(ctx);
        llm_engine_free(e);
        return cli_fail("chat", st);
    }
    struct sigaction sa = {.sa_handler = on_sigint};
    sigaction(SIGINT, &sa, NULL); /* no SA_RESTART: Ctrl-C interrupts reading too */
    history h = {0};
    size_t keep = 0;
    if (o.system && history_add(&h, "system", o.system) == 0)
        keep = 1;
    int32_t *ids = NULL;
    size_t n = 0, cap = 0;
    printf("cai chat: %s (%s). /clear starts over, /exit leaves.\n", llm_engine_name(e),
           chat_format_name(llm_engine_chat_format(e)));
    char *line = NULL;
    size_t line_cap = 0;
    for (;;) {
        chat_input in = chat_read(&line, &line_cap);
        if (in == CHAT_EXIT)
            break;
        if (in == CHAT_CLEAR) {
            history_clear(&h, keep);
            llm_seq_truncate(ctx, 0, 0);
            printf("(conversation cleared)\n");
            continue;
        }
        if (history_add(&h, "user", line) != 0) {
            st = CAI_ERR_NOMEM;
            break;
        }
        n = 0;
        st = llm_engine_chat_prompt(e, h.m, h.n, &ids, &n, &cap);
        if (st != CAI_OK) {
            fprintf(stderr, "cai chat: %s\n", cai_errmsg(st));
            history_clear(&h, h.n - 1);
            continue;
        }
        /* The cache keeps the part of the conversation already seen; the
         * reply joins the history as text. */
        int n_gen = 0;
        interrupted = 0;
        buf reply;
        buf_init(&reply, 0);
        st = generate(ctx, e, &o.sample, ids, n, 1, o.max_tokens, stdout, &reply, &n_gen);
        printf(interrupted ? " [stopped]\n" : "\n");
        if (st != CAI_OK) {
            fprintf(stderr, "cai chat: %s\n", cai_errmsg(st));
            history_clear(&h, h.n - 1);
            llm_seq_truncate(ctx, 0, 0);
        } else if (buf_terminate(&reply) != CAI_OK ||
                   history_add(&h, "assistant", reply.len ? (char *)reply.data : "") != 0) {
            st = CAI_ERR_NOMEM;
        }
        buf_free(&reply);
    }
    free(line);
    history_clear(&h, 0);
    free(h.m);
    free(ids);
    llm_ctx_free(ctx);
    llm_engine_free(e);
    return 0;
}

/* ---- chat with a server ------------------------------------------------------ */

static void print_text(void *arg, const char *t, size_t n) {
    (void)arg;
    fwrite(t, 1, n, stdout);
    fflush(stdout);
}

static void print_attested(const json_t *claims, const char *model, int expected, const char *how) {
    const char *tee = json_string_value(json_object_get(claims, "tee"));
    printf("attested%s: %s, TCB %s, model %s sha256:%s%s\n", how,
           tee && strcmp(tee, "sim") == 0 ? "simulated TEE (INSECURE, development only)" : "Intel TDX",
           json_string_value(json_object_get(claims, "tcb_status")), model,
           json_string_value(json_object_get(claims, "model_digest")),
           expected ? " (as expected)" : "");
    static const char *const keys[] = {"mr_td", "rtmr_0", "rtmr_1", "rtmr_2", "rtmr_3"};
    static const char *const names[] = {"MRTD", "RTMR0", "RTMR1", "RTMR2", "RTMR3"};
    for (int i = 0; i < 5; i++)
        printf("  %-6s %s\n", names[i], json_string_value(json_object_get(claims, keys[i])));
}

/* Verifies the server's attestation over /v1/attestation (plain HTTP) as
 * the options say; prints what was checked. */
static cai_status remote_attest(const run_opts *o, client *c) {
    attest_trust_opts to = {.collateral = o->collateral, .trust_sim = o->trust_sim};
    attest_trust *t = NULL;
    json_t *claims = NULL;
    cai_status st = attest_trust_new(&to, &t);
    if (st == CAI_OK)
        st = client_attest(c, attest_trust_verifier(t), time(NULL), &claims);
    const char *digest = json_string_value(json_object_get(claims, "model_digest"));
    if (st == CAI_OK && o->model_digest &&
        (strlen(o->model_digest) != 64 || strcasecmp(o->model_digest, digest) != 0))
        st = cai_fail(CAI_ERR_AUTH, "the server serves the model sha256:%s, not %s", digest, o->model_digest);
    if (st == CAI_OK)
        print_attested(claims, json_string_value(json_object_get(claims, "model")),
                       o->model_digest != NULL, "");
    json_decref(claims);
    attest_trust_free(t);
    return st;
}


static int chat_remote(const run_opts *o) {
    client *c = NULL;
    cli_tls_check tc = {0};
    buf key;
    buf_init(&key, 4096);
    history h = {0};
    char *line = NULL;
    size_t line_cap = 0, keep = 0;
    char model[256];
    cai_status st = CAI_OK;
    if (o->api_key_file) {
        if ((st = file_read_all(o->api_key_file, 4096, &key)) != CAI_OK)
            goto out;
        while (key.len && (key.data[key.len - 1] == '\n' || key.data[key.len - 1] == '\r'))
            key.len--;
        if (key.len == 0 || (st = buf_terminate(&key)) != CAI_OK) {
            st = st ? st : cai_fail(CAI_ERR_INVALID_ARG, "the API key file is empty");
            goto out;
        }
    }
    int tls = strncmp(o->url, "https://", 8) == 0 && !o->insecure_no_attest;
    if ((st = client_new(o->url, o->api_key_file ? (const char *)key.data : NULL, &c)) != CAI_OK)
        goto out;
    if (tls) {
        cli_tls_opts to = {.collateral = o->collateral, .trust_sim = o->trust_sim,
                           .policy = o->policy, .model_digest = o->model_digest};
        if ((st = cli_tls_check_new(&to, &tc)) != CAI_OK)
            goto out;
        client_set_tls(c, ratls_ssl_ctx_setup, tc.rv);
    }
    st = client_model(c, model, sizeof(model));
    if (tls) {
        json_t *claims = NULL;
        cai_status rst = ratls_last_take(&claims);
        if (st != CAI_OK && rst != CAI_OK)
            st = cai_fail(CAI_ERR_AUTH, "%s refused: %s", o->url, cai_errmsg(rst));
        else if (st == CAI_OK && claims)
            print_attested(claims, model, o->model_digest != NULL, " (attested TLS)");
        json_decref(claims);
    }
    if (st != CAI_OK)
        goto out;
    if (o->insecure_no_attest)
        fprintf(stderr, "cai chat: INSECURE: --insecure-no-attest: the server at %s is not checked\n", o->url);
    else if (!tls && (st = remote_attest(o, c)) != CAI_OK)
        goto out;
    struct sigaction sa = {.sa_handler = on_sigint};
    sigaction(SIGINT, &sa, NULL); /* no SA_RESTART: Ctrl-C interrupts reading too */
    if (o->system && history_add(&h, "system", o->system) == 0)
        keep = 1;
    printf("cai chat: %s at %s. /clear starts over, /exit leaves.\n", model, o->url);
    for (;;) {
        chat_input in = chat_read(&line, &line_cap);
        if (in == CHAT_EXIT)
            break;
        if (in == CHAT_CLEAR) {
            history_clear(&h, keep);
            printf("(conversation cleared)\n");
            continue;
        }
        if (history_add(&h, "user", line) != 0) {
            st = CAI_ERR_NOMEM;
            break;
        }
        client_message *msgs = calloc(h.n, sizeof(*msgs));
        if (msgs == NULL) {
            st = CAI_ERR_NOMEM;
            break;
        }
        for (size_t i = 0; i < h.n; i++)
            msgs[i] = (client_message){h.m[i].role, h.m[i].content};
        client_chat_req req = {
            .model = model, .messages = msgs, .n_messages = h.n, .max_tokens = o->max_tokens,
            .has_temperature = o->set_temp, .temperature = o->sample.temperature,
            .has_top_p = o->set_top_p, .top_p = o->sample.top_p,
            .has_top_k = o->set_top_k, .top_k = o->sample.top_k,
            .has_min_p = o->set_min_p, .min_p = o->sample.min_p,
            .has_repetition_penalty = o->set_repeat, .repetition_penalty = o->sample.repeat_penalty,
            .has_seed = o->set_seed, .seed = o->sample.seed};
        buf reply;
        buf_init(&reply, 0);
        int stopped = 0;
        interrupted = 0;
        cai_status rst = client_chat_stream(c, &req, print_text, NULL, &interrupted, &reply, &stopped);
        free(msgs);
        printf(stopped ? " [stopped]\n" : "\n");
        if (rst != CAI_OK) {
            fprintf(stderr, "cai chat: %s\n", cai_errmsg(rst));
            history_clear(&h, h.n - 1);
        } else if (buf_terminate(&reply) != CAI_OK ||
                   history_add(&h, "assistant", reply.len ? (char *)reply.data : "") != 0) {
            st = CAI_ERR_NOMEM;
        }
        buf_free(&reply);
        if (st != CAI_OK)
            break;
    }
out:
    free(line);
    history_clear(&h, 0);
    free(h.m);
    client_free(c);
    cli_tls_check_cleanup(&tc);
    buf_free(&key);
    return st == CAI_OK ? 0 : cli_fail("chat", st);
}

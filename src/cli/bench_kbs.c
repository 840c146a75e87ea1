/* bench_kbs.c - cai bench kbs: key releases per second and latency against
 * a running key broker, with concurrent agents using sim TDX quotes. */
#include <pthread.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "cli/cli.h"

typedef struct {
    const agent_config *cfg;
    const char *path;
    int rcar; /* 1: every operation is a whole RCAR + release, as `cai agent` does */
    double deadline;
    double *lat;
    size_t n, cap;
    cai_status st;
    char err[256];
} worker;

static void record(worker *w, double dt) {
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 4096;
        double *p = realloc(w->lat, cap * sizeof(*p));
        if (p == NULL)
            return;
        w->lat = p;
        w->cap = cap;
    }
    w->lat[w->n++] = dt;
}

static void *worker_main(void *arg) {
    worker *w = arg;
    agent_session *s = NULL;
    buf out;
    if (!w->rcar && (w->st = agent_session_open(w->cfg, &s)) != CAI_OK)
        goto out;
    while (clock_now() < w->deadline) {
        double t0 = clock_now();
        if (w->rcar && (w->st = agent_session_open(w->cfg, &s)) != CAI_OK)
            break;
        w->st = agent_session_get(s, w->path, &out);
        buf_free(&out);
        if (w->rcar) {
            agent_session_close(s);
            s = NULL;
        }
        if (w->st != CAI_OK)
            break;
        record(w, clock_now() - t0);
    }
out:
    if (w->st != CAI_OK)
        snprintf(w->err, sizeof(w->err), "%s", cai_errmsg(w->st));
    agent_session_close(s);
    return NULL;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int run(const agent_config *cfg, const char *path, int rcar, int clients, double seconds) {
    worker *w = calloc((size_t)clients, sizeof(*w));
    pthread_t *th = calloc((size_t)clients, sizeof(*th));
    if (!w || !th) {
        free(w);
        free(th);
        return cli_fail("bench", CAI_ERR_NOMEM);
    }
    double t0 = clock_now();
    for (int i = 0; i < clients; i++) {
        w[i] = (worker){.cfg = cfg, .path = path, .rcar = rcar, .deadline = t0 + seconds};
        pthread_create(&th[i], NULL, worker_main, &w[i]);
    }
    size_t total = 0;
    for (int i = 0; i < clients; i++) {
        pthread_join(th[i], NULL);
        total += w[i].n;
    }
    double elapsed = clock_now() - t0;
    double *all = malloc((total ? total : 1) * sizeof(*all));
    size_t k = 0;
    int rc = 0;
    for (int i = 0; i < clients; i++) {
        if (w[i].st != CAI_OK && rc == 0) {
            fprintf(stderr, "cai bench: client %d: %s\n", i, w[i].err);
            rc = CLI_EXIT_FAIL;
        }
        if (all && w[i].n) /* a client that recorded nothing may have no array */
            memcpy(all + k, w[i].lat, w[i].n * sizeof(*all));
        k += w[i].n;
        free(w[i].lat);
    }
    if (all && total) {
        qsort(all, total, sizeof(*all), cmp_double);
        printf("kbs %-12s %3d clients: %8.0f releases/s   p50 %6.2f ms   p99 %6.2f ms   (%zu in %.1f s)\n",
               rcar ? "rcar+release" : "release", clients, (double)total / elapsed,
               1e3 * all[total / 2], 1e3 * all[(size_t)(0.99 * (double)(total - 1))], total, elapsed);
    }
    fflush(stdout);
    free(all);
    free(w);
    free(th);
    return rc;
}

static void bench_kbs_help(void) {
    printf("usage: cai bench kbs --kbs URL --sim-dir DIR --path REPO/TYPE/TAG\n"
           "                    [--clients 1,32] [--seconds 5] [--mode release|rcar|both]\n\n"
           "Concurrent agents against a running key broker, with sim TDX quotes:\n"
           "'release' attests once per client and then fetches the resource again and\n"
           "again (JWE decrypted each time); 'rcar' makes every release a whole\n"
           "handshake (auth, a new key, a new quote, attest, fetch), as `cai agent`\n"
           "does. Prints releases/s and p50/p99 latency per client count.\n\n"
           "  --kbs URL          the key broker\n"
           "  --sim-dir DIR      the simulated TEE's PKI (its policy must allow tee \"sim\")\n"
           "  --path P           the resource to fetch, repo/type/tag\n"
           "  --clients LIST     comma-separated client counts (default 1,32)\n"
           "  --seconds N        per figure (default 5)\n"
           "  --mode M           release, rcar or both (default both)\n"
           "  -h, --help         this help\n");
}

int bench_kbs(int argc, char **argv) {
    static const struct option opts[] = {
        {"kbs", required_argument, NULL, 'K'},     {"sim-dir", required_argument, NULL, 'S'},
        {"path", required_argument, NULL, 'p'},    {"clients", required_argument, NULL, 'c'},
        {"mode", required_argument, NULL, 'm'},    {"seconds", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
    agent_config cfg = {.source = {.tee = ATTEST_TEE_SIM}, .attempts = 1};
    const char *path = NULL, *clients = "1,32", *mode = "both";
    double seconds = 5;
    long v;
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'K': cfg.kbs_url = optarg; break;
        case 'S': cfg.source.sim_dir = optarg; break;
        case 'p': path = optarg; break;
        case 'c': clients = optarg; break;
        case 'm': mode = optarg; break;
        case 's':
            if (cli_parse_int(optarg, 1, 3600, &v))
                return cli_usage_error("bench kbs", "bad --seconds");
            seconds = (double)v;
            break;
        case 'h': bench_kbs_help(); return 0;
        default: return cli_getopt_error("bench kbs", c, argv);
        }
    }
    if (optind < argc)
        return cli_usage_error("bench kbs", "unexpected argument '%s'", argv[optind]);
    if (!cfg.kbs_url || !cfg.source.sim_dir || !path)
        return cli_usage_error("bench kbs", "needs --kbs URL, --sim-dir DIR and --path");
    int rc = 0;
    for (int pass = 0; pass < 2 && rc == 0; pass++) {
        int rcar = pass == 1;
        if ((rcar && strcmp(mode, "release") == 0) || (!rcar && strcmp(mode, "rcar") == 0))
            continue;
        for (const char *p = clients; *p && rc == 0;) {
            char *end;
            long n = strtol(p, &end, 10);
            if (end == p || n < 1 || n > 1024)
                return cli_usage_error("bench kbs", "--clients is a list like 1,32");
            rc = run(&cfg, path, rcar, (int)n, seconds);
            p = *end == ',' ? end + 1 : end;
        }
    }
    return rc;
}

/* cmd_bench.c - cai bench: seal (sealing and unsealing throughput) and -m
 * (a model's tokens/s); attest and kbs are in bench_attest.c, bench_kbs.c. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <sys/resource.h>

#include "cli/cli.h"
#include "common/file.h"
#include "common/pool.h"
#include "llm/engine.h"
#include "llm/session.h"
#include "common/secure.h"
#include "seal/seal.h"

static void bench_help(void) {
    printf("usage: cai bench seal [--size SIZE] [--threads LIST] [--repeat N] [--dir DIR]\n"
           "       cai bench -m MODEL.gguf [-p 64] [-n 16] [-t THREADS] [-r 3] [-c CTX] [--mmap]\n"
           "       cai bench attest [--seconds N] [--quote FILE --collateral FILE --at TIME]\n"
           "       cai bench kbs --kbs URL --sim-dir DIR --path REPO/TYPE/TAG [options]\n"
           "       cai bench ratls --url https://HOST:PORT --policy FILE (--collateral F | --trust-sim DIR)\n\n"
           "Measure performance (bench/RESULTS.md has the figures of this machine):\n"
           "  seal    sealing and unsealing throughput, GB/s (bench/seal.sh)\n"
           "  -m      a model's prefill and decode tokens/s, peak RSS, and decode's share of\n"
           "          the memory-bandwidth bound\n"
           "  attest  TDX quote verifications per second (bench/attest.sh)\n"
           "  kbs     key releases per second against a running key broker (bench/kbs.sh)\n"
           "  ratls   what attested TLS costs a new connection (bench/ratls.sh)\n\n"
           "'cai bench SUBCOMMAND --help' (and 'cai bench -m MODEL --help') describes one.\n");
}

static void bench_seal_help(void) {
    printf("usage: cai bench seal [--size SIZE] [--threads LIST] [--repeat N] [--dir DIR]\n\n"
           "Seal a generated file and unseal it into memory, printing GB/s\n"
           "(10^9 bytes per second of plaintext) for each thread count, best of N runs.\n"
           "Also printed: decryption alone into memory already faulted in, and the\n"
           "speed of filling fresh memory, which bounds any unseal on this machine.\n"
           "bench/seal.sh prints these next to `openssl speed -evp aes-256-gcm`.\n\n"
           "      --size SIZE      plaintext size (default 2G)\n"
           "      --threads LIST   comma-separated thread counts (default 1,2)\n"
           "      --repeat N       runs per figure, the best is printed (default 3)\n"
           "      --dir DIR        where to put the temporary files (default /tmp)\n"
           "  -h, --help           this help\n");
}

static cai_status make_input(const char *path, uint64_t size) {
    const size_t block = 1u << 20;
    uint8_t *b = malloc(block);
    if (b == NULL)
        return CAI_ERR_NOMEM;
    cai_status st = secure_random(b, block);
    int fd = st == CAI_OK ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : -1;
    if (st == CAI_OK && fd < 0)
        st = cai_fail(CAI_ERR_IO, "cannot create %s: %s", path, strerror(errno));
    for (uint64_t off = 0; st == CAI_OK && off < size; off += block) {
        b[0] ^= (uint8_t)(off >> 20); /* no two blocks alike */
        st = file_write_full(fd, b, size - off < block ? (size_t)(size - off) : block);
    }
    if (fd >= 0)
        close(fd);
    free(b);
    return st;
}

/* The ceiling for any unseal into new memory: filling fresh memory the
 * way the unseal does, 4 MiB at a time faulted in and written (on VMs the
 * first touch of guest memory can cost more than AES-GCM). */
static double fresh_fill_gbps(uint64_t size) {
    enum { CHUNK = 4 << 20 };
    uint8_t *p = NULL;
    if (size > SIZE_MAX || secure_map((size_t)size, (void **)&p) != CAI_OK)
        return 0;
    double t0 = clock_now();
    for (uint64_t off = 0; off < size; off += CHUNK) {
        size_t n = size - off < CHUNK ? (size_t)(size - off) : CHUNK;
        (void)madvise(p + off, n, MADV_POPULATE_WRITE);
        memset(p + off, 0x5a, n);
    }
    double rate = (double)size / (clock_now() - t0) / 1e9;
    secure_unmap(p, (size_t)size);
    return rate;
}

/* One unseal as the boot does it, the ciphertext first read into the page
 * cache (the unseal drops it as it goes). */
static cai_status time_unseal(const char *path, const uint8_t *key, int threads, unsigned flags,
                              uint64_t size, double *best) {
    int sfd = open(path, O_RDONLY | O_CLOEXEC);
    if (sfd < 0)
        return cai_fail(CAI_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    uint8_t d[SEAL_DIGEST_LEN], *mem = NULL;
    uint64_t len = 0;
    cai_status st = seal_digest_fd(sfd, size, d); /* reads it: warm */
    double t0 = clock_now();
    if (st == CAI_OK)
        st = seal_unseal_mem(sfd, key, threads, flags | SEAL_DROP_CACHE, &mem, &len, d);
    double rate = (double)size / (clock_now() - t0) / 1e9;
    close(sfd);
    secure_unmap(mem, (size_t)len);
    if (st == CAI_OK && rate > *best)
        *best = rate;
    return st;
}

/* Decryption alone, into memory already faulted in: the crypto pipeline's speed. */
static cai_status time_warm(const char *path, const uint8_t *key, int threads, uint64_t size,
                            int repeat, double *best) {
    int sfd = open(path, O_RDONLY | O_CLOEXEC);
    if (sfd < 0)
        return cai_fail(CAI_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    seal_reader *r = NULL;
    uint8_t *p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cai_status st = p == MAP_FAILED ? CAI_ERR_NOMEM : seal_reader_open(sfd, key, &r);
    if (st == CAI_OK)
        memset(p, 0, (size_t)size);
    for (int i = 0; st == CAI_OK && i < repeat; i++) {
        double t0 = clock_now();
        st = seal_reader_decrypt_to_mem(r, p, threads, NULL, NULL);
        double rate = (double)size / (clock_now() - t0) / 1e9;
        if (rate > *best)
            *best = rate;
    }
    seal_reader_free(r);
    if (p != MAP_FAILED)
        munmap(p, (size_t)size);
    close(sfd);
    return st;
}

static int bench_seal(int argc, char **argv) {
    static const struct option opts[] = {{"size", required_argument, NULL, 's'},
                                         {"threads", required_argument, NULL, 't'},
                                         {"repeat", required_argument, NULL, 'r'},
                                         {"dir", required_argument, NULL, 'd'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    uint64_t size = 2ull << 30;
    const char *threads = "1,2", *dir = "/tmp";
    long repeat = 3;
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            if (cli_parse_size(optarg, &size) != 0 || size == 0)
                return cli_usage_error("bench seal", "bad --size");
            break;
        case 't': threads = optarg; break;
        case 'r':
            if (cli_parse_int(optarg, 1, 100, &repeat) != 0)
                return cli_usage_error("bench seal", "bad --repeat");
            break;
        case 'd': dir = optarg; break;
        case 'h': bench_seal_help(); return 0;
        default: return cli_getopt_error("bench seal", c, argv);
        }
    }
    char in[4096], out[4096];
    if (snprintf(in, sizeof(in), "%s/cai-bench-%d.bin", dir, (int)getpid()) >= (int)sizeof(in) ||
        snprintf(out, sizeof(out), "%s/cai-bench-%d.sealed", dir, (int)getpid()) >= (int)sizeof(out))
        return cli_usage_error("bench seal", "--dir is too long");
    uint8_t key[SEAL_KEY_LEN], digest[SEAL_DIGEST_LEN];
    cai_status st = secure_random(key, sizeof(key));
    if (st == CAI_OK)
        st = make_input(in, size);
    if (st != CAI_OK)
        goto out;
    double fill = 0;
    for (long i = 0; i < repeat; i++) {
        double f = fresh_fill_gbps(size);
        fill = f > fill ? f : fill;
    }
    printf("cai bench seal: %.2f GB plaintext, 4 MiB chunks, files in %s, best of %ld\n",
           (double)size / 1e9, dir, repeat);
    printf("fresh memory fill (2 MiB pages, 4 MiB at a time): %.2f GB/s\n", fill);
    printf("%-8s %10s %14s %16s %18s\n", "threads", "seal GB/s", "unseal GB/s",
           "unseal+sha256", "decrypt (warm mem)");
    char list[256];
    snprintf(list, sizeof(list), "%s", threads);
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        long t;
        if (cli_parse_int(tok, 1, 1024, &t) != 0) {
            st = cai_fail(CAI_ERR_INVALID_ARG, "bad thread count '%s'", tok);
            goto out;
        }
        seal_params p = {.key_id = "kbs:///cai/bench/key", .n_threads = (int)t, .replace = 1};
        double t0 = clock_now();
        if ((st = seal_path(in, out, key, &p, digest)) != CAI_OK)
            goto out;
        double seal_rate = (double)size / (clock_now() - t0) / 1e9;
        double unseal = 0, verify = 0, warm = 0;
        for (long i = 0; st == CAI_OK && i < repeat; i++) {
            st = time_unseal(out, key, (int)t, 0, size, &unseal);
            if (st == CAI_OK)
                st = time_unseal(out, key, (int)t, SEAL_VERIFY_DIGEST, size, &verify);
        }
        if (st == CAI_OK)
            st = time_warm(out, key, (int)t, size, (int)repeat, &warm);
        if (st != CAI_OK)
            goto out;
        printf("%-8ld %10.2f %14.2f %16.2f %18.2f\n", t, seal_rate, unseal, verify, warm);
        printf("result threads=%ld seal_gbps=%.3f unseal_gbps=%.3f unseal_verify_gbps=%.3f "
               "decrypt_warm_gbps=%.3f fill_gbps=%.3f\n",
               t, seal_rate, unseal, verify, warm, fill);
        fflush(stdout);
    }
out:
    secure_wipe(key, sizeof(key));
    unlink(in);
    unlink(out);
    return st == CAI_OK ? 0 : cli_fail("bench", st);
}

/* ---- cai bench -m MODEL ------------------------------------------------ */

/* The decode bound: one pass over the bytes a decode step reads, in the
 * engine's own mapping, each tensor split between the threads as matmul
 * splits its rows, with plain 64-byte loads and nothing else. */
typedef uint64_t v8u64 __attribute__((vector_size(64)));

typedef struct {
    const gguf_tensor **t;
    size_t n;
    uint64_t sum[64];
} bw_job;

__attribute__((target_clones("avx512f", "default"))) static uint64_t read_span(const uint8_t *p, size_t n) {
    v8u64 s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0}, v[4];
    for (size_t i = 0; i + 256 <= n; i += 256) {
        memcpy(v, p + i, sizeof(v));
        s0 += v[0], s1 += v[1], s2 += v[2], s3 += v[3];
    }
    s0 += s1 + s2 + s3;
    uint64_t r = 0;
    for (int k = 0; k < 8; k++)
        r += s0[k];
    return r;
}

static void bw_worker(void *ctx, int ith, int nth) {
    bw_job *j = ctx;
    uint64_t s = 0;
    for (size_t i = 0; i < j->n; i++) {
        size_t per = (j->t[i]->nbytes / (size_t)nth + 255) / 256 * 256, a = per * (size_t)ith;
        if (a < j->t[i]->nbytes)
            s += read_span(j->t[i]->data + a, per < j->t[i]->nbytes - a ? per : j->t[i]->nbytes - a);
    }
    j->sum[ith % 64] = s;
}

/* The read pass over the tensors a decode step reads whole on a pool of
 * |nt| threads; their bytes in |bytes|. */
static cai_status read_job_new(const llm_engine *e, int nt, bw_job *j, pool **p, uint64_t *bytes) {
    const gguf_file *g = llm_engine_gguf(e);
    if ((j->t = calloc(gguf_n_tensors(g) + 1, sizeof(*j->t))) == NULL)
        return CAI_ERR_NOMEM;
    for (size_t i = 0; i < gguf_n_tensors(g); i++) {
        const gguf_tensor *t = gguf_tensor_at(g, i);
        if (llm_engine_reads_whole(e, t)) {
            j->t[j->n++] = t;
            *bytes += t->nbytes;
        }
    }
    return pool_new(nt, p);
}

/* Seconds for one read pass of |j| on |p|. */
static double read_pass(pool *p, bw_job *j) {
    double t0 = clock_now();
    pool_run(p, bw_worker, j);
    return clock_now() - t0;
}

static void bench_model_help(void) {
    printf("usage: cai bench -m MODEL.gguf [-p 64] [-n 16] [-t THREADS] [-r 3] [-c CTX] [--mmap]\n\n"
           "Prefill (one batch of -p tokens) and decode (-n tokens one by one)\n"
           "throughput in tokens/s, best of -r runs; peak RSS; and decode as a share of\n"
           "the memory-bandwidth bound (one pass of plain reads over the weights a\n"
           "decode step reads, in the same memory, timed between the runs).\n\n"
           "The model is first copied into memory (2 MiB pages), where cai serve\n"
           "--sealed keeps its weights; --mmap maps the file instead (its page cache).\n"
           "-c CTX then fills a context of CTX tokens (batches of -p) and decodes -n\n"
           "more at that depth; the peak RSS printed includes that KV cache.\n\n"
           "  -m FILE      the GGUF model\n"
           "  -p N         prompt tokens, prefilled in one batch (default 64)\n"
           "  -n N         tokens decoded one by one (default 16)\n"
           "  -t N         threads (default: one per CPU)\n"
           "  -r N         runs, the best is printed (default 3)\n"
           "  -c CTX       also fill a context of CTX tokens and decode at that depth\n"
           "  --mmap       map the file instead of copying it into memory\n"
           "  -h, --help   this help\n");
}

/* The model's bytes in memory, as the confidential boot leaves them for
 * llm_engine_open_mem (which rewrites the weights, then makes them
 * read-only). */
static cai_status load_mem(const char *path, uint8_t **out, size_t *out_len) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    uint64_t size = 0;
    cai_status st = fd < 0 ? cai_fail(CAI_ERR_IO, "cannot open %s: %s", path, strerror(errno))
                           : file_size(fd, &size);
    if (st == CAI_OK && size > SIZE_MAX)
        st = cai_fail(CAI_ERR_LIMIT, "%s does not fit in memory", path);
    if (st == CAI_OK && (st = secure_map((size_t)size, (void **)out)) == CAI_OK) {
        *out_len = (size_t)size;
        if ((st = file_pread_full(fd, *out, (size_t)size, 0)) != CAI_OK) {
            secure_unmap(*out, (size_t)size);
            *out = NULL;
        }
    }
    if (fd >= 0)
        close(fd);
    return st;
}

/* |n| tokens below |n_vocab|, the same sequence every time. */
static void random_tokens(int32_t *tok, long n, int n_vocab) {
    uint64_t rng = 12345;
    for (long i = 0; i < n; i++) {
        rng = rng * 6364136223846793005ull + 1;
        tok[i] = (int32_t)((rng >> 33) % (uint64_t)n_vocab);
    }
}

static int bench_model(int argc, char **argv) {
    const char *model = NULL;
    long p = 64, n = 16, threads = 0, repeat = 3, fill = 0;
    int c, use_mmap = 0;
    uint8_t *mem = NULL;
    size_t mem_len = 0;
    static const struct option longopts[] = {{"mmap", no_argument, NULL, 'M'},
                                             {"help", no_argument, NULL, 'h'},
                                             {0, 0, 0, 0}};
    optind = 1;
    while ((c = getopt_long(argc, argv, ":m:p:n:t:r:c:h", longopts, NULL)) != -1) {
        long *dst = c == 'p' ? &p : c == 'n' ? &n : c == 't' ? &threads : c == 'r' ? &repeat : c == 'c' ? &fill : NULL;
        if (c == 'm')
            model = optarg;
        else if (c == 'M')
            use_mmap = 1;
        else if (c == 'h')
            return bench_model_help(), 0;
        else if (dst == NULL)
            return cli_getopt_error("bench", c, argv);
        else if (cli_parse_int(optarg, 1, 1 << 16, dst) != 0)
            return cli_usage_error("bench", "-%c wants a number from 1 to 65536", c);
    }
    if (optind < argc)
        return cli_usage_error("bench", "unexpected argument '%s'", argv[optind]);
    if (model == NULL)
        return cli_usage_error("bench", "-m MODEL is required");
    llm_engine *e = NULL;
    llm_ctx *ctx = NULL;
    llm_session *s = NULL;
    pool *bwp = NULL;
    bw_job bj = {0};
    int32_t *tok = malloc((size_t)(p > n ? p : n) * sizeof(int32_t));
    cai_status st = tok ? CAI_OK : CAI_ERR_NOMEM;
    if (st == CAI_OK && !use_mmap)
        st = load_mem(model, &mem, &mem_len);
    if (st == CAI_OK) /* the memory: weights rewritten for the kernels, then read-only */
        st = use_mmap ? llm_engine_open(model, -1, NULL, &e) : llm_engine_open_mem(mem, mem_len, NULL, &e);
    const int nt = threads ? (int)threads : pool_cpu_count();
    uint64_t read_bytes = 0;
    if (st == CAI_OK)
        st = llm_ctx_new(llm_engine_model(e), (int)(fill > p + n + 8 ? fill : p + n + 8), 1, (int)threads, &ctx);
    if (st == CAI_OK)
        st = read_job_new(e, nt, &bj, &bwp, &read_bytes);
    if (st != CAI_OK)
        goto out;
    const llm_hparams *hp = llm_model_hparams(llm_engine_model(e));
    uint64_t weights = llm_engine_weight_bytes(e);
    random_tokens(tok, p > n ? p : n, hp->n_vocab);
    /* A session only to feed the sequence: random tokens, nothing sampled. */
    llm_gen_params gp = {0};
    sample_params_default(&gp.sample);
    if ((st = llm_session_new(e, &gp, tok, (int)p, &s)) != CAI_OK)
        goto out;
    const float *logits;
    double best_pp = 0, best_tg = 0, best_read = 1e30;
    for (long r = 0; r < repeat && st == CAI_OK; r++) {
        llm_session_bind(s, ctx, 0, 0);
        double t0 = clock_now();
        st = llm_session_feed(s, tok, (int)p, &logits);
        double pp = (double)p / (clock_now() - t0);
        t0 = clock_now();
        for (long i = 0; i < n && st == CAI_OK; i++)
            st = llm_session_feed(s, &tok[i], 1, &logits);
        double tg = (double)n / (clock_now() - t0);
        best_pp = pp > best_pp ? pp : best_pp;
        best_tg = tg > best_tg ? tg : best_tg;
        double rs = read_pass(bwp, &bj); /* the bound, measured between the runs */
        best_read = rs < best_read ? rs : best_read;
    }
    /* -c: a context filled to CTX - n - 1 tokens, then n decoded at that depth. */
    double fill_s = 0, deep_tg = 0;
    if (st == CAI_OK && fill > p + n + 8) {
        llm_session_bind(s, ctx, 0, 0);
        double t0 = clock_now();
        for (long done = 0; done < fill - n - 1 && st == CAI_OK; done += p)
            st = llm_session_feed(s, tok, (int)(fill - n - 1 - done < p ? fill - n - 1 - done : p), &logits);
        fill_s = clock_now() - t0;
        t0 = clock_now();
        for (long i = 0; i < n && st == CAI_OK; i++)
            st = llm_session_feed(s, &tok[i], 1, &logits);
        deep_tg = (double)n / (clock_now() - t0);
    }
    if (st != CAI_OK)
        goto out;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double bw = (double)read_bytes / best_read / 1e9, bound = bw * 1e9 / (double)weights;
    printf("model    %s (%s, %d layers, %d wide, vocab %d), %.2f GB of weights\n", llm_engine_name(e),
           hp->arch_name, hp->n_layer, hp->n_embd, hp->n_vocab, (double)weights / 1e9);
    double rewrite_s;
    const char *layout = llm_engine_layout_name(e, &rewrite_s);
    printf("threads  %d; kernels %s; weights %s, %s layout", nt, llm_engine_kernels_name(),
           use_mmap ? "mapped from the file" : "in memory", layout);
    if (rewrite_s > 0)
        printf(" (rewritten in %.2f s)", rewrite_s);
    printf("\n");
    printf("prefill  %8.2f tokens/s  (%ld tokens in one batch, best of %ld)\n", best_pp, p, repeat);
    printf("decode   %8.2f tokens/s  (%ld tokens)\n", best_tg, n);
    if (fill_s > 0)
        printf("context  %ld tokens (f16 KV cache): filled in %.1f s, then decode %.2f tokens/s\n", fill,
               fill_s, deep_tg);
    printf("memory   peak RSS %.1f MiB; read bandwidth %.2f GB/s (those weights read, best of %ld passes "
           "between the runs)\n", (double)ru.ru_maxrss / 1024, bw, repeat);
    printf("bound    %8.2f tokens/s if decode only streamed the weights: decode is %.0f%% of it\n",
           bound, 100 * best_tg / bound);
    printf("result prefill_tps=%.3f decode_tps=%.3f rss_mib=%.1f bandwidth_gbps=%.2f bound_tps=%.3f "
           "bound_share=%.3f\n", best_pp, best_tg, (double)ru.ru_maxrss / 1024, bw, bound, best_tg / bound);
out:
    free(tok);
    free(bj.t);
    pool_free(bwp);
    llm_session_free(s);
    llm_ctx_free(ctx);
    llm_engine_free(e); /* and mem */
    return st == CAI_OK ? 0 : cli_fail("bench", st);
}

int cmd_bench(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "seal") == 0)
        return bench_seal(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "attest") == 0)
        return cmd_bench_attest(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "kbs") == 0)
        return bench_kbs(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "ratls") == 0)
        return bench_ratls(argc - 1, argv + 1);
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-m") == 0 || strncmp(argv[i], "-m", 2) == 0)
            return bench_model(argc, argv);
    if (argc >= 2 && cli_is_help(argv[1])) {
        bench_help();
        return 0;
    }
    return cli_usage_error("bench", "expected 'seal', 'attest', 'kbs', 'ratls' or -m MODEL");
}

/* test_boot.c - the boot of `cai serve` (serve/boot.h) on a tiny model
 * written here: a 1-layer Llama with random Q8_0 weights and a vocabulary
 * of the 256 bytes, sealed in chunks of 64 KiB.
 *
 * What it shows: a plain GGUF boots (hashed only when asked); a sealed one
 * boots with a key file and its digest is the plain file's SHA-256; a
 * sealed file whose header names another digest than its plaintext's
 * (sealed by someone holding the key: MAC and chunks are valid) is refused
 * with the check named; a wrong key and a key file others may read are
 * refused before the server would listen; a missing sealed file too. With
 * a key broker in this process and the simulated TEE: the boot attests,
 * receives the key and serves the model; a TD the policy does not accept
 * gets no key and no server. */
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent.h"
#include "attest/sim.h"
#include "attest/trust.h"
#include "common/file.h"
#include "crypto/aead.h"
#include "crypto/kdf.h"
#include "gguf/ggml_type.h"
#include "gguf/gguf_write.h"
#include "kbs/server.h"
#include "kbs/store.h"
#include "llm/kernels.h"
#include "llm/quantize.h"
#include "seal/seal.h"
#include "serve/boot.h"
#include "test.h"
#include "seal_forge.h"
#include "tiny_vocab.h"

enum { E = 64, F = 128, N_HEAD = 4, N_VOCAB = 259 };

static char dir[256];
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static float frand(void) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng >> 40) & 0xffffff) / (float)(1 << 23) - 1.0f;
}

static void path_in(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", dir, name); }

/* A |rows| x |cols| tensor: Q8_0 of noise, or F32 ones (norms). */
static void put(gguf_writer *w, const char *name, int rows, int cols) {
    int q8 = rows > 1;
    size_t rb = q8 ? ggml_type_row_size(GGML_TYPE_Q8_0, cols) : (size_t)cols * sizeof(float);
    float *row = malloc((size_t)cols * sizeof(float));
    uint8_t *data = malloc((size_t)rows * rb);
    CAI_ASSERT(row && data);
    for (int r = 0; r < rows; r++) {
        for (int c = 0; c < cols; c++)
            row[c] = q8 ? 0.2f * frand() : 1.0f;
        if (q8)
            CHECK_OK(quantize_row(GGML_TYPE_Q8_0, row, data + (size_t)r * rb, cols));
        else
            memcpy(data + (size_t)r * rb, row, rb);
    }
    int64_t ne[2] = {cols, rows};
    CHECK_OK(gguf_writer_tensor(w, name, q8 ? GGML_TYPE_Q8_0 : GGML_TYPE_F32, q8 ? 2 : 1, ne, data,
                                NULL, NULL));
    free(row);
    free(data);
}

/* Writes the tiny model to |path|. */
static void write_model(const char *path) {
    gguf_writer *w = NULL;
    CHECK_OK(gguf_writer_new(&w));
    CAI_ASSERT(w != NULL);
    CHECK_OK(gguf_writer_str(w, "general.architecture", "llama"));
    CHECK_OK(gguf_writer_str(w, "general.name", "boot-tiny"));
    CHECK_OK(gguf_writer_u32(w, "llama.context_length", 64));
    CHECK_OK(gguf_writer_u32(w, "llama.embedding_length", E));
    CHECK_OK(gguf_writer_u32(w, "llama.block_count", 1));
    CHECK_OK(gguf_writer_u32(w, "llama.feed_forward_length", F));
    CHECK_OK(gguf_writer_u32(w, "llama.attention.head_count", N_HEAD));
    CHECK_OK(gguf_writer_u32(w, "llama.attention.head_count_kv", N_HEAD));
    CHECK_OK(gguf_writer_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-6f));
    tiny_vocab_put(w, NULL, 0);
    put(w, "token_embd.weight", N_VOCAB, E);
    put(w, "output_norm.weight", 1, E);
    put(w, "output.weight", N_VOCAB, E);
    static const char *const sq[] = {"attn_q", "attn_k", "attn_v", "attn_output"};
    char nm[64];
    for (int i = 0; i < 4; i++) {
        snprintf(nm, sizeof(nm), "blk.0.%s.weight", sq[i]);
        put(w, nm, E, E);
    }
    put(w, "blk.0.attn_norm.weight", 1, E);
    put(w, "blk.0.ffn_norm.weight", 1, E);
    put(w, "blk.0.ffn_gate.weight", F, E);
    put(w, "blk.0.ffn_up.weight", F, E);
    put(w, "blk.0.ffn_down.weight", E, F);
    CHECK_OK(gguf_writer_write(w, path));
    gguf_writer_free(w);
}

/* The SHA-256 of the file at |path|. */
static void file_digest(const char *path, uint8_t out[32]) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    CAI_ASSERT(fd >= 0 && fstat(fd, &sb) == 0);
    CHECK_OK(seal_digest_fd(fd, (uint64_t)sb.st_size, out));
    close(fd);
}

static void seal_model(const char *in, const char *out, const uint8_t key[32], const char *key_id) {
    seal_params sp = {.key_id = key_id, .chunk_log2 = 16, .n_threads = 2, .replace = 1};
    CHECK_OK(seal_path(in, out, key, &sp, NULL));
}

static void write_key(const char *path, const uint8_t key[32], mode_t mode) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    CAI_ASSERT(fd >= 0);
    CHECK_OK(file_pwrite_full(fd, key, 32, 0));
    CAI_ASSERT(fchmod(fd, mode) == 0);
    close(fd);
}

static int keyed_calls;
static void on_keyed(void *arg) {
    CAI_ASSERT(arg == &keyed_calls);
    keyed_calls++;
}

/* Boots |cfg| and returns its status, with |m| filled on success. */
static cai_status boot(const boot_config *cfg, boot_model *m) {
    keyed_calls = 0;
    return boot_run(cfg, on_keyed, &keyed_calls, m);
}

static int errmsg_has(cai_status st, const char *what) {
    if (strstr(cai_errmsg(st), what))
        return 1;
    printf("  error \"%s\" does not name \"%s\"\n", cai_errmsg(st), what);
    return 0;
}

static char model[300], sealed[300], keyfile[300];
static uint8_t key[32], plain_digest[32];

static void test_plain_gguf(void) {
    boot_config cfg = {.model_path = model, .threads = 2};
    boot_model m;
    CHECK_OK(boot(&cfg, &m));
    CHECK(m.engine != NULL && keyed_calls == 1);
    CHECK(!m.have_digest); /* no TEE attests it: not hashed */
    if (m.engine)
        CHECK(strcmp(llm_engine_name(m.engine), "boot-tiny") == 0);
    boot_model_cleanup(&m);
    CHECK(m.engine == NULL);
    cfg.digest_plain = 1;
    CHECK_OK(boot(&cfg, &m));
    CHECK(m.have_digest && memcmp(m.digest, plain_digest, 32) == 0);
    char hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", plain_digest[i]);
    CHECK(strcmp(m.digest_hex, hex) == 0);
    boot_model_cleanup(&m);
}

/* The logits of a short prompt (flagged as prefill) then one decode step
 * on |e|, into |out| (2 x N_VOCAB). */
static void logits_of(const llm_engine *e, float *out) {
    llm_ctx *c = NULL;
    CHECK_OK(llm_ctx_new(llm_engine_model(e), 32, 1, 2, &c));
    static const int32_t tok[13] = {3, 70, 101, 108, 108, 111, 32, 119, 111, 114, 108, 100, 33}, seq[13] = {0};
    static const uint8_t flat[1] = {0};
    const llm_batch b[2] = {{13, tok, seq, NULL, NULL}, {1, tok + 5, seq, NULL, flat}};
    for (int i = 0; i < 2 && c; i++) {
        const float *l = NULL;
        CHECK_OK(llm_decode(c, &b[i], &l));
        if (l)
            memcpy(out + i * N_VOCAB, l, N_VOCAB * sizeof(float));
    }
    llm_ctx_free(c);
}

/* A sealed model boots with its key file; the weights are rewritten into
 * the x16 layout where the kernels read it, and give the plain file's
 * logits bit for bit. */
static void test_sealed_with_key_file(void) {
    boot_config cfg = {.sealed = sealed, .key_file = keyfile, .threads = 2}, plain = {.model_path = model, .threads = 2};
    boot_model m, p;
    CHECK_OK(boot(&cfg, &m));
    CHECK(m.engine != NULL && keyed_calls == 1);
    CHECK(m.have_digest && memcmp(m.digest, plain_digest, 32) == 0);
    CHECK_OK(boot(&plain, &p));
    if (m.engine && p.engine) {
        CHECK(llm_model_hparams(llm_engine_model(m.engine))->n_vocab == N_VOCAB);
        const int x16 = kernel_get(GGML_TYPE_Q8_0, kernel_level()).x16_exact != NULL;
        CHECK(strcmp(llm_engine_layout_name(m.engine, NULL), x16 ? "x16" : "file") == 0);
        CHECK(strcmp(llm_engine_layout_name(p.engine, NULL), "file") == 0);
        static float a[2 * N_VOCAB], b[2 * N_VOCAB];
        logits_of(m.engine, a);
        logits_of(p.engine, b);
        CHECK(memcmp(a, b, sizeof(a)) == 0);
    }
    boot_model_cleanup(&m);
    boot_model_cleanup(&p);
}


static void test_sealed_digest_mismatch(void) {
    char forged[300];
    path_in(forged, sizeof(forged), "forged.cai");
    uint8_t other[32];
    memcpy(other, plain_digest, 32);
    other[0] ^= 1;
    forge_digest(sealed, forged, key, other);
    /* The forgery is a valid sealed file: header and chunks authenticate. */
    int fd = open(forged, O_RDONLY | O_CLOEXEC);
    seal_reader *r = NULL;
    CHECK_OK(seal_reader_open(fd, key, &r));
    int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (r)
        CHECK_OK(seal_reader_decrypt_to_fd(r, null_fd, 1, NULL, NULL));
    close(null_fd);
    seal_reader_free(r);
    close(fd);
    boot_config cfg = {.sealed = forged, .key_file = keyfile, .threads = 2};
    boot_model m;
    cai_status st = boot(&cfg, &m);
    CHECK_ST(st, CAI_ERR_AUTH);
    CHECK(errmsg_has(st, "plaintext digest does not match the sealed header"));
    CHECK(m.engine == NULL && !m.have_digest);
    CHECK(keyed_calls == 1); /* found after the key, while the server loads */
}

static void test_wrong_key(void) {
    char wrong[300];
    path_in(wrong, sizeof(wrong), "wrong.key");
    uint8_t k2[32];
    memcpy(k2, key, 32);
    k2[31] ^= 0x80;
    write_key(wrong, k2, 0600);
    boot_config cfg = {.sealed = sealed, .key_file = wrong, .threads = 2};
    boot_model m;
    CHECK_ST(boot(&cfg, &m), CAI_ERR_WRONG_KEY);
    CHECK(m.engine == NULL);
}

static void test_refused_before_listening(void) {
    char open_key[300], absent[300];
    path_in(open_key, sizeof(open_key), "open.key");
    path_in(absent, sizeof(absent), "absent.cai");
    write_key(open_key, key, 0644);
    boot_config cfg = {.sealed = sealed, .key_file = open_key, .threads = 2};
    boot_model m;
    cai_status st = boot(&cfg, &m);
    CHECK_ST(st, CAI_ERR_INVALID_ARG);
    CHECK(errmsg_has(st, "accessible by other users"));
    CHECK(keyed_calls == 0 && m.engine == NULL);
    cfg.sealed = absent;
    cfg.key_file = keyfile;
    st = boot(&cfg, &m);
    CHECK_ST(st, CAI_ERR_IO);
    CHECK(errmsg_has(st, absent));
    CHECK(keyed_calls == 0);
    cfg = (boot_config){.model_path = absent};
    CHECK_ST(boot(&cfg, &m), CAI_ERR_IO); /* a plain model opens after */
    CHECK(keyed_calls == 1);
}

/* ---- a key broker in this process ---------------------------------------- */

static kbs_server *kbs;
static pthread_t kbs_thread;
static attest_trust *trust;
static char sim_dir[300], kbs_url[64], kbs_sealed[300];

static void *kbs_main(void *arg) {
    CAI_UNUSED(arg);
    (void)kbs_server_run(kbs);
    return NULL;
}

/* Starts a broker that releases everything under cai/ to a sim TD whose MRTD is zero. */
static int kbs_start(void) {
    char db[300], policy[512];
    path_in(sim_dir, sizeof(sim_dir), "sim");
    path_in(db, sizeof(db), "kbs.db");
    CHECK_OK(sim_init(sim_dir));
    attest_trust_opts to = {.trust_sim = sim_dir};
    CHECK_OK(attest_trust_new(&to, &trust));
    uint8_t master[KBS_MASTER_KEY_LEN];
    memset(master, 7, sizeof(master));
    kbs_store *st = NULL;
    CHECK_OK(kbs_store_open(db, master, &st));
    if (st)
        CHECK_OK(kbs_store_put(st, "cai/m/key", key, 32));
    kbs_store_close(st);
    snprintf(policy, sizeof(policy),
             "{\"version\": 1, \"tee\": [\"sim\"], \"tcb_status\": [\"UpToDate\"],"
             " \"reference_values\": {\"td\": {\"mr_td\": [\"%096d\"]}},"
             " \"resources\": [{\"path\": \"cai/*\", \"allow\": [\"td\"]}]}", 0);
    kbs_server_config kc = {.host = "127.0.0.1", .db_path = db, .policy_json = policy};
    memcpy(kc.master_key, master, sizeof(master));
    if (trust)
        kc.verifier = *attest_trust_verifier(trust);
    if (test_case_failed || !trust)
        return 0;
    CHECK_OK(kbs_server_new(&kc, &kbs));
    if (kbs == NULL)
        return 0;
    snprintf(kbs_url, sizeof(kbs_url), "http://127.0.0.1:%d", kbs_server_port(kbs));
    CAI_ASSERT(pthread_create(&kbs_thread, NULL, kbs_main, NULL) == 0);
    path_in(kbs_sealed, sizeof(kbs_sealed), "m.cai");
    seal_model(model, kbs_sealed, key, "kbs:///cai/m/key");
    return 1;
}

static void kbs_stop(void) {
    if (kbs == NULL)
        return;
    kbs_server_stop(kbs);
    pthread_join(kbs_thread, NULL);
    kbs_server_free(kbs);
    kbs = NULL;
    attest_trust_free(trust);
}

static void test_sealed_via_kbs(void) {
    if (!kbs_start())
        return;
    agent_config ac = {.kbs_url = kbs_url, .source = {.tee = ATTEST_TEE_SIM, .sim_dir = sim_dir},
                       .attempts = 1};
    boot_config cfg = {.sealed = kbs_sealed, .kbs = &ac, .threads = 2};
    boot_model m;
    CHECK_OK(boot(&cfg, &m));
    CHECK(m.engine != NULL && keyed_calls == 1);
    CHECK(m.have_digest && memcmp(m.digest, plain_digest, 32) == 0);
    boot_model_cleanup(&m);
    /* A TD the policy does not accept: no key, no server. */
    sim_td td = {0};
    td.mr_td[0] = 1;
    ac.source.sim_td = &td;
    cai_status st = boot(&cfg, &m);
    CHECK_ST(st, CAI_ERR_AUTH);
    CHECK(errmsg_has(st, "PolicyDeny"));
    CHECK(keyed_calls == 0 && m.engine == NULL);
    /* The broker gave a key, but not this file's: refused by its commitment. */
    uint8_t k2[32];
    memset(k2, 0x5a, sizeof(k2));
    seal_model(model, kbs_sealed, k2, "kbs:///cai/m/key");
    ac.source.sim_td = NULL;
    CHECK_ST(boot(&cfg, &m), CAI_ERR_WRONG_KEY);
    CHECK(keyed_calls == 1 && m.engine == NULL);
    kbs_stop();
}

int main(void) {
    snprintf(dir, sizeof(dir), "/tmp/cai-test-boot.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return 1;
    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)(i * 37 + 11);
    path_in(model, sizeof(model), "m.gguf");
    path_in(sealed, sizeof(sealed), "m.sealed");
    path_in(keyfile, sizeof(keyfile), "m.key");
    write_model(model);
    file_digest(model, plain_digest);
    seal_model(model, sealed, key, "kbs:///cai/m/key");
    write_key(keyfile, key, 0600);
    if (test_case_failed) {
        printf("FAIL setup\n");
        return 1;
    }
    RUN(test_plain_gguf);
    RUN(test_sealed_with_key_file);
    RUN(test_sealed_digest_mismatch);
    RUN(test_wrong_key);
    RUN(test_refused_before_listening);
    RUN(test_sealed_via_kbs);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        printf("  could not remove %s\n", dir);
    return test_summary();
}

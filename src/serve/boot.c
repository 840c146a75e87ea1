/* boot.c - download, key, unseal, digest, load: the boot of `cai serve`. */
#include "serve/boot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/codec.h"
#include "net/httpc.h"
#include "common/log.h"
#include "common/pool.h"
#include "common/secure.h"
#include "attest/coco.h"
#include "kbs/protocol.h"
#include "ratls/verify.h"
#include "seal/keyfile.h"

static int is_url(const char *s) {
    return strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0;
}

void boot_model_id(const char *p, char *out, size_t cap) {
    const char *base = strrchr(p, '/');
    if (is_url(p)) {
        snprintf(out, cap, "%s", base && base[1] ? base + 1 : "model");
        out[strcspn(out, ".?#")] = '\0';
        if (!out[0])
            snprintf(out, cap, "model");
    } else {
        snprintf(out, cap, "%s", base ? base + 1 : p);
        out[strcspn(out, ".")] = '\0';
    }
}

/* Step 1: the sealed file, open. From a URL it is fetched into an unnamed
 * file (O_TMPFILE: gone when closed) in |dir|. It is ciphertext: the AEAD
 * checks every chunk when it is unsealed. */
static cai_status open_sealed(const boot_config *cfg, int *out) {
    if (!is_url(cfg->sealed)) {
        if ((*out = open(cfg->sealed, O_RDONLY | O_CLOEXEC)) < 0)
            return cai_fail(CAI_ERR_IO, "cannot open %s: %s", cfg->sealed, strerror(errno));
        return CAI_OK;
    }
    const char *dir = cfg->download_dir;
    if (dir == NULL)
        dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp";
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0)
        return cai_fail(CAI_ERR_IO, "cannot make an unnamed file in %s: %s", dir, strerror(errno));
    httpc *c = NULL;
    httpc_opts o = {.ca_file = cfg->sealed_ca};
    uint64_t len = 0;
    double t0 = clock_now();
    cai_status st = httpc_new(&o, &c);
    if (st == CAI_OK)
        st = httpc_download(c, cfg->sealed, fd, 5, &len);
    httpc_free(c);
    if (st != CAI_OK) {
        close(fd);
        return st;
    }
    log_info("downloaded the sealed model from %s: %llu bytes in %.1f s", cfg->sealed,
             (unsigned long long)len, clock_now() - t0);
    *out = fd;
    return CAI_OK;
}

/* Step 2 from the broker: attests and receives the key of the sealed file
 * |fd| (the resource its header names). A broker whose attested TLS
 * certificate was refused is named with the check that refused it. */
static cai_status fetch_key(const agent_config *ac, int fd, uint8_t key[SEAL_KEY_LEN]) {
    seal_header *h = NULL;
    cai_status st = seal_header_read(fd, &h);
    if (st != CAI_OK)
        return st;
    buf k;
    double t0 = clock_now();
    st = agent_get_resource(ac, h->key_id, &k);
    cai_status rst = ratls_last_take(NULL);
    if (st != CAI_OK && rst != CAI_OK)
        st = cai_fail(CAI_ERR_AUTH, "%s failed attested TLS verification, nothing was sent to it: %s",
                      ac->kbs_url, cai_errmsg(rst));
    if (st == CAI_OK && k.len != SEAL_KEY_LEN)
        st = cai_fail(CAI_ERR_FORMAT, "the key broker released %zu bytes for %s, not a "
                      "256-bit key", k.len, h->key_id);
    if (st == CAI_OK) {
        memcpy(key, k.data, SEAL_KEY_LEN);
        log_info("attested to %s (%s) and received the key %s in %.0f ms", ac->kbs_url,
                 attest_tee_name(ac->source.tee), h->key_id, 1e3 * (clock_now() - t0));
    }
    buf_free(&k); /* wiped */
    seal_header_free(h);
    return st;
}

/* Step 2 from the CoCo confidential data hub at |api|: the resource the
 * sealed file |fd|'s header names, which the guest components fetch from
 * the broker after attesting this TD. */
static cai_status cdh_key(const char *api, int fd, uint8_t key[SEAL_KEY_LEN]) {
    seal_header *h = NULL;
    cai_status st = seal_header_read(fd, &h);
    if (st != CAI_OK)
        return st;
    char path[300];
    buf k;
    buf_init(&k, 0);
    double t0 = clock_now();
    if ((st = kbs_resource_uri_parse(h->key_id, path, sizeof(path))) == CAI_OK)
        st = coco_resource(api, path, COCO_RESOURCE_MAX_LEN, &k);
    if (st == CAI_OK && k.len != SEAL_KEY_LEN)
        st = cai_fail(CAI_ERR_FORMAT, "the confidential data hub released %zu bytes for %s, "
                      "not a 256-bit key", k.len, h->key_id);
    if (st == CAI_OK) {
        memcpy(key, k.data, SEAL_KEY_LEN);
        log_info("received the key %s from the confidential data hub at %s in %.0f ms",
                 h->key_id, api, 1e3 * (clock_now() - t0));
    }
    buf_free(&k); /* wiped */
    seal_header_free(h);
    return st;
}

/* Step 2: the key of the sealed file |fd|. */
static cai_status get_key(const boot_config *cfg, int fd, uint8_t key[SEAL_KEY_LEN]) {
    if (cfg->kbs)
        return fetch_key(cfg->kbs, fd, key);
    if (cfg->cdh_api)
        return cdh_key(cfg->cdh_api, fd, key);
    cai_status st = keyfile_read(cfg->key_file, key);
    if (st == CAI_OK)
        log_warn("INSECURE: the model key comes from a local file, not from the key broker "
                 "after attestation");
    return st;
}

/* Step 4, sealed: decrypts into memory (the plaintext never touches a
 * disk), the digest recomputed and checked against the header's; the
 * memory goes to llm_engine_open_mem, which rewrites the weights for its
 * kernels and then makes it read-only. */
static cai_status unseal(const boot_config *cfg, int sealed_fd, const uint8_t key[SEAL_KEY_LEN],
                         uint8_t **mem, uint64_t *len, boot_model *out) {
    cai_status st = seal_unseal_mem(sealed_fd, key, cfg->threads ? cfg->threads : pool_cpu_count(),
                                    SEAL_VERIFY_DIGEST | SEAL_DROP_CACHE, mem, len, out->digest);
    if (st != CAI_OK)
        return st;
    out->have_digest = 1;
    hex_encode(out->digest_hex, out->digest, sizeof(out->digest));
    log_info("model unsealed into memory, sha256:%s", out->digest_hex);
    return CAI_OK;
}

/* Step 4, plain: the file opened once and, for attestation, the bytes of
 * that open file hashed before the engine maps the same fd. (A host that
 * can write the file can still change it afterwards: -m is for
 * development; the sealed boot serves a sealed memfd.) */
static cai_status open_plain(const boot_config *cfg, int *model_fd, boot_model *out) {
    if ((*model_fd = open(cfg->model_path, O_RDONLY | O_CLOEXEC)) < 0)
        return cai_fail(CAI_ERR_IO, "cannot open %s", cfg->model_path);
    if (!cfg->digest_plain)
        return CAI_OK;
    struct stat sb;
    if (fstat(*model_fd, &sb) != 0 || sb.st_size < 0)
        return cai_fail(CAI_ERR_IO, "cannot size the model");
    cai_status st = seal_digest_fd(*model_fd, (uint64_t)sb.st_size, out->digest);
    if (st != CAI_OK)
        return st;
    out->have_digest = 1;
    hex_encode(out->digest_hex, out->digest, sizeof(out->digest));
    log_info("model sha256:%s (bound into /v1/attestation)", out->digest_hex);
    return CAI_OK;
}

cai_status boot_run(const boot_config *cfg, void (*on_keyed)(void *arg), void *arg,
                    boot_model *out) {
    memset(out, 0, sizeof(*out));
    CAI_ASSERT(!!cfg->model_path + !!cfg->sealed == 1);
    CAI_ASSERT(!cfg->sealed || !!cfg->kbs + !!cfg->cdh_api + !!cfg->key_file == 1);
    uint8_t key[SEAL_KEY_LEN] = {0};
    int sealed_fd = -1, model_fd = -1;
    uint8_t *mem = NULL;
    uint64_t mem_len = 0;
    cai_status st = CAI_OK;
    /* 1. the sealed file (downloaded if it is a URL); 2. its key */
    if (cfg->sealed && (st = open_sealed(cfg, &sealed_fd)) == CAI_OK)
        st = get_key(cfg, sealed_fd, key);
    if (st != CAI_OK)
        goto out;
    /* 3. the server listens from here on */
    if (on_keyed)
        on_keyed(arg);
    /* 4. the model's bytes (in memory or a file) and their digest; 5. the engine on them */
    st = cfg->sealed ? unseal(cfg, sealed_fd, key, &mem, &mem_len, out) : open_plain(cfg, &model_fd, out);
    secure_wipe(key, sizeof(key));
    if (sealed_fd >= 0) { /* the ciphertext is not needed any more */
        close(sealed_fd);
        sealed_fd = -1;
    }
    if (st == CAI_OK && cfg->sealed) {
        st = llm_engine_open_mem(mem, (size_t)mem_len, cfg->chat_template, &out->engine);
        mem = NULL; /* the engine's, also on failure */
    } else if (st == CAI_OK) {
        st = llm_engine_open(NULL, model_fd, cfg->chat_template, &out->engine);
    }
    if (st == CAI_OK && cfg->sealed) {
        double secs;
        const char *layout = llm_engine_layout_name(out->engine, &secs);
        log_info("weights in the %s layout (rewritten in %.2f s)", layout, secs);
    }
out:
    secure_wipe(key, sizeof(key));
    if (sealed_fd >= 0)
        close(sealed_fd);
    if (model_fd >= 0)
        close(model_fd); /* the engine keeps its own mapping */
    secure_unmap(mem, (size_t)mem_len);
    if (st != CAI_OK)
        boot_model_cleanup(out);
    return st;
}

void boot_model_cleanup(boot_model *m) {
    llm_engine_free(m->engine);
    memset(m, 0, sizeof(*m));
}

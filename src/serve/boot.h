/* boot.h - the boot of `cai serve`: from a model file to an open engine
 * (internal to serve).
 *
 * boot_run does all of it, in this order:
 *   1. a sealed model given as an http(s) URL is downloaded (ciphertext
 *      only, into an unnamed file; resumed after network failures);
 *   2. its key: from the key broker after attesting this TEE (agent/agent.h:
 *      evidence binding the broker's nonce and an ephemeral key; the key
 *      comes back as a JWE to that key), from the CoCo confidential data
 *      hub (attest/coco.h: the guest components attest the pod's TD to the
 *      broker and hand the key over the pod's loopback), or from a key file
 *      (INSECURE: development);
 *   3. |on_keyed| is called: from here on the server listens, and /health
 *      says "loading" (a failure before it means no server at all);
 *   4. the sealed file is decrypted into a memfd sealed against writes,
 *      every chunk authenticated, the plaintext's SHA-256 checked against
 *      the digest in the authenticated header, and the key wiped; a plain
 *      GGUF is opened as it is and, when asked, hashed;
 *   5. the engine maps that fd: the bytes hashed are the bytes served.
 * Nothing plaintext or secret is written to a disk. */
#ifndef CAI_SERVE_BOOT_H
#define CAI_SERVE_BOOT_H

#include <stddef.h>
#include <stdint.h>

#include "agent/agent.h"
#include "common/status.h"
#include "llm/engine.h"
#include "seal/seal.h"

typedef struct {
    const char *model_path;    /* a plain GGUF (development); or NULL and: */
    const char *sealed;        /* a sealed model: a path or an http(s) URL */
    const char *download_dir;  /* for a URL: where the unnamed file goes
                                  (NULL: $TMPDIR, else /var/tmp) */
    const char *sealed_ca;     /* for an https URL: its CA (NULL: the system's) */
    const agent_config *kbs;   /* the broker giving the key after attestation
                                  (used until on_keyed only); or NULL and: */
    const char *key_file;      /* the key from a file (INSECURE); or NULL and: */
    const char *cdh_api;       /* the key from the CoCo confidential data hub of
                                  the guest components' REST API at this root
                                  (attest/coco.h); or NULL */
    int digest_plain;          /* hash a plain model too (a TEE attests it) */
    const char *chat_template; /* override, or NULL */
    int threads;               /* for unsealing; 0: one per CPU */
} boot_config;

/* What a boot gives the server. */
typedef struct {
    llm_engine *engine;
    int have_digest;                       /* sealed: always; plain: with digest_plain */
    uint8_t digest[SEAL_DIGEST_LEN];       /* SHA-256 of the model bytes served */
    char digest_hex[2 * SEAL_DIGEST_LEN + 1];
} boot_model;

/* boot_run boots the model of |cfg| (exactly one of model_path and sealed;
 * a sealed one with exactly one of kbs, cdh_api and key_file) as described above,
 * calling |on_keyed| (may be NULL) with |arg| once between steps 2 and 3.
 * On CAI_OK |out| holds the open engine (free with boot_model_cleanup); on
 * failure it is empty, cai_errmsg names the step and the check that failed
 * (e.g. "plaintext digest does not match the sealed header", a wrong key's
 * CAI_ERR_WRONG_KEY, the broker's refusal), and |on_keyed| was called only
 * if the failure came after it. */
cai_status boot_run(const boot_config *cfg, void (*on_keyed)(void *arg), void *arg,
                    boot_model *out) CAI_WUR;

/* boot_model_cleanup frees the engine; |m| is empty again. */
void boot_model_cleanup(boot_model *m);

/* boot_model_id writes the id a model is served under when none is given:
 * a URL's last path segment up to its first '.', '?' or '#' ("model" if
 * that is empty), or a file's base name up to its first '.'. */
void boot_model_id(const char *path_or_url, char *out, size_t cap);

#endif

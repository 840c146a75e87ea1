/* store.c - the key broker's storage: resources encrypted at rest,
 * everything that decides a release authenticated under the master key and
 * bound to a generation that a state file beside the database pins
 * (docs/KBS-STORE.md). The rows live in SQLite or PostgreSQL (store_db.h):
 * what they mean, and every check, is here, the same for both. */
#include "kbs/store.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/cursor.h"
#include "common/file.h"
#include "common/respath.h"
#include "common/secure.h"
#include "crypto/aead.h"
#include "crypto/kdf.h"
#include "kbs/store_db.h"

#define SCHEMA_VERSION 2
#define STORE_ID_LEN 16
#define STATE_ROW_LEN (8 + KDF_SHA256_LEN)                        /* gen, MAC */
#define STATE_FILE_MAGIC "CAIKBSST"
#define STATE_FILE_LEN (8 + STORE_ID_LEN + 8 + KDF_SHA256_LEN)   /* magic, id, gen, MAC */
#define AD_MAX 320

struct kbs_store {
    kbs_db *db;
    const kbs_db_ops *ops;
    aead *aead;
    uint8_t policy_key[32], state_key[32]; /* HMAC keys, derived from the master key */
    uint8_t store_id[STORE_ID_LEN];        /* random, made with the store */
    uint64_t gen_seen;                     /* the highest generation seen by this process */
    char *state_path;                      /* <db>.state; PostgreSQL: given, or NULL */
};

/* The key check: a MAC of a constant under a key derived from the master
 * key, so a wrong master key is caught at open, not at the first release.
 * Each use of the master key has a key of its own (HKDF labels). */
#define CHECK_INFO "cai-kbs/v1 master-key-check"
#define RESOURCE_INFO "cai-kbs/v1 resource"
#define POLICY_INFO "cai-kbs/v2 policy mac"
#define STATE_INFO "cai-kbs/v2 state mac"

#define TOKEN_KEY_INFO "cai-kbs/v2 token key"

static cai_status derive(const uint8_t master[KBS_MASTER_KEY_LEN], const char *info,
                         uint8_t out[32]) {
    uint8_t prk[KDF_SHA256_LEN];
    cai_status st = kdf_hkdf_extract((const uint8_t *)"cai-kbs", 7, master, KBS_MASTER_KEY_LEN, prk);
    if (st == CAI_OK)
        st = kdf_hkdf_expand(prk, info, out, 32);
    secure_wipe(prk, sizeof(prk));
    return st;
}

/* ---- transactions and the meta table --------------------------------------- */

static cai_status tx_begin(kbs_store *s, int write) {
    return s->ops->begin(s->db, write);
}

/* Commits if |st| is CAI_OK, else rolls back; returns the outcome. */
static cai_status tx_end(kbs_store *s, cai_status st) {
    return s->ops->end(s->db, st);
}

/* Reads meta |name| into |out| (exactly |len| bytes); *found = 0 if absent. */
static cai_status meta_get(kbs_store *s, const char *name, void *out, size_t len, int *found) {
    buf b;
    buf_init(&b, 0);
    cai_status st = s->ops->meta_get(s->db, name, &b, found);
    if (st == CAI_OK && *found && b.len != len)
        st = cai_fail(CAI_ERR_AUTH, "store check failed: meta '%s' is malformed (the "
                      "database was altered)", name);
    else if (st == CAI_OK && *found)
        memcpy(out, b.data, len);
    buf_free(&b);
    return st;
}

static cai_status meta_put(kbs_store *s, const char *name, const void *v, size_t len) {
    return s->ops->meta_put(s->db, name, v, len);
}

static void put_u64le(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64le(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* ---- the authenticated state ----------------------------------------------
 * The state row (meta 'state') is a generation G and a MAC over G, the
 * store id, the policy row's generation and every resource row's (path,
 * version, generation), in path order. Each change that can decide a release
 * (a resource written or deleted, the policy set) moves G to G + 1 in its own
 * transaction and stamps the row it writes with it; each row's own
 * authentication (the resource's AEAD, the policy's MAC) covers its version
 * and generation. So a row rolled back, replayed from another copy, added or
 * removed no longer matches the state, and the state itself rolled back is
 * caught by the state file (below). */

typedef struct {
    buf *b;
    uint64_t n;
} state_rows;

static cai_status state_row(void *arg, const char *path, size_t plen, uint64_t version,
                            uint64_t gen) {
    state_rows *r = arg;
    cai_status st = buf_append_u64le(r->b, (uint64_t)plen);
    if (st == CAI_OK)
        st = buf_append(r->b, path, plen);
    if (st == CAI_OK)
        st = buf_append_u64le(r->b, version);
    if (st == CAI_OK)
        st = buf_append_u64le(r->b, gen);
    r->n++;
    return st;
}

static cai_status state_mac(kbs_store *s, uint64_t gen, uint8_t mac[KDF_SHA256_LEN]) {
    buf b;
    buf_init(&b, 0);
    int has_policy = 0;
    uint64_t pgen = 0;
    state_rows rows = {.b = &b};
    cai_status st = buf_append_str(&b, "cai-kbs/v2 state");
    if (st == CAI_OK)
        st = buf_append_u8(&b, 0);
    if (st == CAI_OK)
        st = buf_append(&b, s->store_id, STORE_ID_LEN);
    if (st == CAI_OK)
        st = buf_append_u64le(&b, gen);
    if (st == CAI_OK)
        st = s->ops->policy_gen(s->db, &has_policy, &pgen);
    if (st == CAI_OK)
        st = buf_append_u8(&b, has_policy ? 1 : 0);
    if (st == CAI_OK && has_policy)
        st = buf_append_u64le(&b, pgen);
    if (st == CAI_OK)
        st = s->ops->resource_rows(s->db, state_row, &rows);
    if (st == CAI_OK)
        st = buf_append_u64le(&b, rows.n);
    if (st == CAI_OK)
        st = kdf_hmac_sha256(s->state_key, sizeof(s->state_key), b.data, b.len, mac);
    buf_free(&b);
    return st;
}

static cai_status state_write(kbs_store *s, uint64_t gen) {
    uint8_t row[STATE_ROW_LEN];
    put_u64le(row, gen);
    cai_status st = state_mac(s, gen, row + 8);
    if (st == CAI_OK)
        st = meta_put(s, "state", row, sizeof(row));
    return st;
}

/* Checks the state row against the database's contents and against the
 * generation this process saw last; its generation in |*gen|. Run inside a
 * transaction, so that the contents are one snapshot. */
static cai_status state_check(kbs_store *s, uint64_t *gen) {
    uint8_t row[STATE_ROW_LEN], mac[KDF_SHA256_LEN];
    int found;
    cai_status st = meta_get(s, "state", row, sizeof(row), &found);
    if (st != CAI_OK)
        return st;
    if (!found)
        return cai_fail(CAI_ERR_AUTH, "store check failed: the database has no authenticated "
                        "state (the meta row 'state' was removed)");
    *gen = get_u64le(row);
    if ((st = state_mac(s, *gen, mac)) != CAI_OK)
        return st;
    if (!secure_memeq(mac, row + 8, sizeof(mac)))
        return cai_fail(CAI_ERR_AUTH, "store check failed: the resources or the policy in the "
                        "database do not match its authenticated state (a row was added, "
                        "removed, replaced or rolled back without the master key)");
    if (*gen < s->gen_seen)
        return cai_fail(CAI_ERR_AUTH, "rollback check failed: the database is at generation "
                        "%llu, older than generation %llu this broker saw: it was replaced by "
                        "an older copy", (unsigned long long)*gen,
                        (unsigned long long)s->gen_seen);
    return CAI_OK;
}

/* ---- the state file -------------------------------------------------------
 * <db>.state holds the store id and the generation, with a MAC under the
 * state key: a copy of the database restored from a backup (an older
 * generation) is refused at open unless its state file is restored too. */

static cai_status state_file_mac(kbs_store *s, uint64_t gen, uint8_t mac[KDF_SHA256_LEN]) {
    uint8_t m[8 + STORE_ID_LEN + 8];
    memcpy(m, STATE_FILE_MAGIC, 8);
    memcpy(m + 8, s->store_id, STORE_ID_LEN);
    put_u64le(m + 8 + STORE_ID_LEN, gen);
    return kdf_hmac_sha256(s->state_key, sizeof(s->state_key), m, sizeof(m), mac);
}

static cai_status state_file_write(kbs_store *s, uint64_t gen) {
    if (s->state_path == NULL)
        return CAI_OK;
    uint8_t f[STATE_FILE_LEN];
    memcpy(f, STATE_FILE_MAGIC, 8);
    memcpy(f + 8, s->store_id, STORE_ID_LEN);
    put_u64le(f + 8 + STORE_ID_LEN, gen);
    file_atomic fa;
    cai_status st = state_file_mac(s, gen, f + 8 + STORE_ID_LEN + 8);
    if (st == CAI_OK && (st = file_atomic_open(&fa, s->state_path, 0600)) == CAI_OK) {
        st = file_write_full(fa.fd, f, sizeof(f));
        if (st == CAI_OK)
            st = file_atomic_commit(&fa);
        else
            file_atomic_abort(&fa);
    }
    if (st != CAI_OK)
        return cai_fail(st, "cannot write the state file %s: %s", s->state_path, cai_errmsg(st));
    return CAI_OK;
}

/* Reads the state file: its generation in |*gen|; CAI_ERR_NOT_FOUND if
 * there is none; CAI_ERR_AUTH if it is not this store's or was altered. */
static cai_status state_file_read(kbs_store *s, uint64_t *gen) {
    buf b;
    cai_status st = file_read_all(s->state_path, 4096, &b);
    if (st != CAI_OK) {
        buf_free(&b);
        return st;
    }
    cursor c;
    uint8_t magic[8], id[STORE_ID_LEN], tag[KDF_SHA256_LEN], mac[KDF_SHA256_LEN];
    cursor_init(&c, b.data, b.len);
    if (!cursor_copy(&c, magic, 8) || !cursor_copy(&c, id, STORE_ID_LEN) ||
        !cursor_get_u64le(&c, gen) || !cursor_copy(&c, tag, sizeof(tag)) || cursor_len(&c) != 0 ||
        memcmp(magic, STATE_FILE_MAGIC, 8) != 0) {
        st = cai_fail(CAI_ERR_AUTH, "state file check failed: %s is not a cai kbs state file",
                      s->state_path);
    } else if ((st = state_file_mac(s, *gen, mac)) == CAI_OK &&
               (memcmp(id, s->store_id, STORE_ID_LEN) != 0 || !secure_memeq(mac, tag, sizeof(mac)))) {
        st = cai_fail(CAI_ERR_AUTH, "state file check failed: %s belongs to another database "
                      "or was altered", s->state_path);
    }
    buf_free(&b);
    return st;
}

/* ---- opening: create, migrate, check ------------------------------------- */

/* Checks the master key against the key check; *fresh = 1 if there was none
 * (a new database), after storing it. */
static cai_status check_master_key(kbs_store *s, const uint8_t master[KBS_MASTER_KEY_LEN],
                                   int *fresh) {
    uint8_t check[32], stored[32];
    int found = 0;
    *fresh = 0;
    cai_status st = derive(master, CHECK_INFO, check);
    if (st == CAI_OK)
        st = meta_get(s, "key_check", stored, sizeof(stored), &found);
    if (st == CAI_ERR_AUTH || (st == CAI_OK && found && !secure_memeq(stored, check, 32)))
        st = cai_fail(CAI_ERR_WRONG_KEY, "the master key does not match this database");
    else if (st == CAI_OK && !found) {
        st = meta_put(s, "key_check", check, sizeof(check));
        *fresh = 1;
    }
    secure_wipe(check, sizeof(check));
    return st;
}

/* The associated data of a resource's AEAD: the row's identity (store, path)
 * and its version and generation. */
static size_t resource_ad(const kbs_store *s, const char *path, uint64_t version, uint64_t gen,
                          uint8_t ad[AD_MAX]) {
    static const char label[] = "cai-kbs/v2 resource"; /* with its NUL */
    size_t n = 0, plen = strlen(path);
    CAI_ASSERT(plen <= 255);
    memcpy(ad, label, sizeof(label));
    n += sizeof(label);
    memcpy(ad + n, s->store_id, STORE_ID_LEN);
    n += STORE_ID_LEN;
    put_u64le(ad + n, version);
    put_u64le(ad + n + 8, gen);
    n += 16;
    memcpy(ad + n, path, plen);
    return n + plen;
}

/* Seals |len| bytes for |path| at (version, gen) and writes the row,
 * replacing one at the same path if |replace|, else CAI_ERR_EXISTS. */
static cai_status resource_row_write(kbs_store *s, const char *path, const uint8_t *data,
                                     size_t len, uint64_t version, uint64_t gen, int replace) {
    uint8_t nonce[AEAD_NONCE_LEN], ad[AD_MAX];
    uint8_t *sealed = malloc(len + AEAD_TAG_LEN);
    cai_status st = sealed ? secure_random(nonce, sizeof(nonce)) : CAI_ERR_NOMEM;
    if (st == CAI_OK)
        st = aead_seal(s->aead, nonce, ad, resource_ad(s, path, version, gen, ad), data, len,
                       sealed, sealed + len);
    if (st == CAI_OK) {
        kbs_db_resource r = {.path = path, .nonce = nonce, .sealed = sealed,
                             .sealed_len = len + AEAD_TAG_LEN, .size = len, .version = version,
                             .gen = gen};
        st = s->ops->resource_write(s->db, &r, replace);
    }
    free(sealed); /* ciphertext only */
    return st;
}

/* A schema-1 database: resources sealed with only their path as associated
 * data, the policy unauthenticated. Each resource is opened (so a row that
 * was altered stops the migration) and sealed again at version 1 of
 * generation 1; the policy keeps no MAC, so it is refused until it is set
 * again: nobody can say whether it was rewritten while it was unprotected. */
static cai_status migrate_v1(kbs_store *s) {
    if (s->ops->v1_upgrade == NULL)
        return cai_fail(CAI_ERR_AUTH, "store check failed: the %s database has a master key "
                        "check but no schema (the meta row 'schema' was removed)", s->ops->name);
    cai_status st = s->ops->v1_upgrade(s->db);
    if (st != CAI_OK)
        return st;
    buf plain, nonce, sealed;
    buf_init(&plain, 0);
    buf_init(&nonce, 0);
    buf_init(&sealed, 0);
    uint8_t schema = SCHEMA_VERSION;
    st = secure_random(s->store_id, STORE_ID_LEN); /* in the new rows' AD */
    if (st == CAI_OK && (st = meta_put(s, "store_id", s->store_id, STORE_ID_LEN)) == CAI_OK)
        st = meta_put(s, "schema", &schema, 1);
    while (st == CAI_OK) {
        char path[256];
        int found = 0;
        if ((st = s->ops->v1_next(s->db, path, &nonce, &sealed, &found)) != CAI_OK || !found)
            break;
        if (nonce.len != AEAD_NONCE_LEN || sealed.len < AEAD_TAG_LEN ||
            sealed.len > KBS_RESOURCE_MAX + AEAD_TAG_LEN) {
            st = cai_fail(CAI_ERR_AUTH, "migration: a resource row is corrupt");
            break;
        }
        size_t len = sealed.len - AEAD_TAG_LEN;
        plain.len = 0;
        if ((st = buf_reserve(&plain, len + 1)) == CAI_OK)
            st = aead_open(s->aead, nonce.data, path, strlen(path), sealed.data, len,
                           sealed.data + len, plain.data);
        if (st != CAI_OK) {
            st = cai_fail(CAI_ERR_AUTH, "migration: resource %s does not decrypt: the database "
                          "was altered", path);
            break;
        }
        st = resource_row_write(s, path, plain.data, len, 1, 1, 1);
    }
    buf_free(&plain);
    buf_free(&nonce);
    buf_free(&sealed);
    return st == CAI_OK ? state_write(s, 1) : st;
}

/* Makes or migrates the schema (one write transaction) and checks the
 * database against the state file; the generation in |*gen|. */
static cai_status store_init(kbs_store *s, const uint8_t master[KBS_MASTER_KEY_LEN],
                             uint64_t *gen) {
    int fresh = 0, found = 0, made = 0;
    uint8_t schema = 0;
    uint64_t fgen = 0;
    cai_status st = tx_begin(s, 1);
    if (st != CAI_OK)
        return st;
    if ((st = check_master_key(s, master, &fresh)) == CAI_OK)
        st = meta_get(s, "schema", &schema, 1, &found);
    if (st == CAI_OK && found && schema != SCHEMA_VERSION)
        st = cai_fail(CAI_ERR_UNSUPPORTED, "the database has schema %u; this cai kbs reads "
                      "schema %d", schema, SCHEMA_VERSION);
    if (st == CAI_OK && !found) {
        /* A new (or schema-1) database: there must be no state file yet,
         * else the database was deleted or replaced by an older one. */
        cai_status fst = s->state_path ? state_file_read(s, &fgen) : CAI_ERR_NOT_FOUND;
        if (fst != CAI_ERR_NOT_FOUND)
            st = cai_fail(CAI_ERR_AUTH, "rollback check failed: the state file %s exists, but "
                          "the database is %s: it was deleted or replaced by an older copy "
                          "(restore the database that goes with the state file)",
                          s->state_path, fresh ? "new" : "of schema 1");
        else if (fresh) {
            uint8_t v = SCHEMA_VERSION;
            if ((st = secure_random(s->store_id, STORE_ID_LEN)) == CAI_OK &&
                (st = meta_put(s, "store_id", s->store_id, STORE_ID_LEN)) == CAI_OK &&
                (st = meta_put(s, "schema", &v, 1)) == CAI_OK)
                st = state_write(s, 0);
        } else {
            st = migrate_v1(s);
        }
        made = 1;
    }
    if (st == CAI_OK && !made) {
        if ((st = meta_get(s, "store_id", s->store_id, STORE_ID_LEN, &found)) == CAI_OK && !found)
            st = cai_fail(CAI_ERR_AUTH, "store check failed: the database has no store id (the "
                          "meta row 'store_id' was removed)");
    }
    if (st == CAI_OK)
        st = state_check(s, gen);
    if ((st = tx_end(s, st)) != CAI_OK)
        return st;
    if (made || s->state_path == NULL)
        return state_file_write(s, *gen);
    st = state_file_read(s, &fgen);
    /* Brokers sharing a store each pin what they saw: one joining an
     * existing store starts its state file now. */
    if (st == CAI_ERR_NOT_FOUND && s->ops->shared)
        return state_file_write(s, *gen);
    if (st == CAI_ERR_NOT_FOUND)
        return cai_fail(CAI_ERR_AUTH, "state file check failed: %s is missing, but the database "
                        "is at generation %llu: restore the state file that goes with this "
                        "database (docs/KBS-STORE.md)", s->state_path, (unsigned long long)*gen);
    if (st != CAI_OK)
        return st;
    if (*gen < fgen)
        return cai_fail(CAI_ERR_AUTH, "rollback check failed: the database is at generation "
                        "%llu, but the state file %s records generation %llu: the database was "
                        "restored from an older copy (docs/KBS-STORE.md)",
                        (unsigned long long)*gen, s->state_path, (unsigned long long)fgen);
    /* A crash after a commit leaves the file one generation behind. */
    return *gen > fgen ? state_file_write(s, *gen) : CAI_OK;
}

/* A PostgreSQL connection URI (libpq's forms). */
static int is_pg_uri(const char *path) {
    return strncmp(path, "postgresql://", 13) == 0 || strncmp(path, "postgres://", 11) == 0;
}

cai_status kbs_store_open(const char *path, const uint8_t master_key[KBS_MASTER_KEY_LEN],
                          kbs_store **out) {
    return kbs_store_open_state(path, NULL, master_key, out);
}

cai_status kbs_store_open_state(const char *path, const char *state_path,
                                const uint8_t master_key[KBS_MASTER_KEY_LEN], kbs_store **out) {
    *out = NULL;
    if (state_path && !is_pg_uri(path))
        return cai_fail(CAI_ERR_INVALID_ARG, "a SQLite store's state file is always %s.state",
                        path);
    kbs_store *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return CAI_ERR_NOMEM;
    cai_status st = CAI_OK;
    uint8_t k[32];
    uint64_t gen = 0;
    if (is_pg_uri(path)) {
        /* Shared by several brokers, maybe on several hosts: a state file
         * only if given, this broker's (docs/KBS-STORE.md). */
        if (state_path && (s->state_path = strdup(state_path)) == NULL) {
            st = CAI_ERR_NOMEM;
            goto fail;
        }
        if ((st = kbs_db_pg_open(path, &s->db, &s->ops)) != CAI_OK)
            goto fail;
    } else {
        size_t pl = strlen(path);
        if ((s->state_path = malloc(pl + sizeof(".state"))) == NULL) {
            st = CAI_ERR_NOMEM;
            goto fail;
        }
        memcpy(s->state_path, path, pl);
        memcpy(s->state_path + pl, ".state", sizeof(".state"));
        if ((st = kbs_db_sqlite_open(path, &s->db, &s->ops)) != CAI_OK)
            goto fail;
    }
    if ((st = derive(master_key, RESOURCE_INFO, k)) != CAI_OK ||
        (st = aead_new(k, &s->aead)) != CAI_OK ||
        (st = derive(master_key, POLICY_INFO, s->policy_key)) != CAI_OK ||
        (st = derive(master_key, STATE_INFO, s->state_key)) != CAI_OK ||
        (st = store_init(s, master_key, &gen)) != CAI_OK)
        goto fail;
    s->gen_seen = gen;
    secure_wipe(k, sizeof(k));
    *out = s;
    return CAI_OK;
fail:
    secure_wipe(k, sizeof(k));
    kbs_store_close(s);
    return st;
}

void kbs_store_close(kbs_store *s) {
    if (s == NULL)
        return;
    if (s->ops)
        s->ops->close(s->db);
    aead_free(s->aead);
    free(s->state_path);
    secure_wipe(s, sizeof(*s));
    free(s);
}

static cai_status bad_path(const char *path) {
    return cai_fail(CAI_ERR_INVALID_ARG, "resource path '%.80s' is not repo/type/tag", path);
}

/* ---- changes: each one generation ------------------------------------------ */

typedef cai_status (*change_fn)(kbs_store *s, uint64_t gen, void *arg);

/* Runs |fn| in a write transaction that checks the state first, then moves
 * it to the next generation, whose number |fn| stamps on what it writes;
 * after the commit, the state file records it. */
static cai_status change(kbs_store *s, change_fn fn, void *arg) {
    uint64_t gen = 0;
    cai_status st = tx_begin(s, 1);
    if (st != CAI_OK)
        return st;
    if ((st = state_check(s, &gen)) == CAI_OK && gen == UINT64_MAX)
        st = cai_fail(CAI_ERR_LIMIT, "the store's generation counter is exhausted");
    if (st == CAI_OK)
        st = fn(s, gen + 1, arg);
    if (st == CAI_OK)
        st = state_write(s, gen + 1);
    if ((st = tx_end(s, st)) != CAI_OK)
        return st;
    s->gen_seen = gen + 1;
    st = state_file_write(s, gen + 1);
    if (st != CAI_OK)
        return cai_fail(st, "the change is stored, but %s", cai_errmsg(st));
    return CAI_OK;
}

typedef struct {
    const char *path;
    const uint8_t *data;
    size_t len;
    int create;
} resource_write_args;

static cai_status resource_write_fn(kbs_store *s, uint64_t gen, void *arg) {
    const resource_write_args *w = arg;
    uint64_t version = 0;
    int found = 0;
    cai_status st = s->ops->resource_version(s->db, w->path, &found, &version);
    if (st == CAI_OK && found && w->create)
        st = cai_fail(CAI_ERR_EXISTS, "there is already a resource at %s", w->path);
    if (st == CAI_OK && found && version == UINT64_MAX)
        st = cai_fail(CAI_ERR_LIMIT, "resource %s: its version counter is exhausted", w->path);
    /* A create inserts: the path's unique key refuses a row that another
     * writer added meanwhile, whatever the transaction saw. */
    if (st == CAI_OK)
        st = resource_row_write(s, w->path, w->data, w->len, found ? version + 1 : 1, gen,
                                !w->create);
    return st;
}

static cai_status store_write(kbs_store *s, const char *path, const uint8_t *data, size_t len,
                              int create) {
    if (!respath_valid(path))
        return bad_path(path);
    if (len > KBS_RESOURCE_MAX)
        return cai_fail(CAI_ERR_LIMIT, "a resource is at most %u bytes", KBS_RESOURCE_MAX);
    resource_write_args w = {.path = path, .data = data, .len = len, .create = create};
    return change(s, resource_write_fn, &w);
}

cai_status kbs_store_put(kbs_store *s, const char *path, const uint8_t *data, size_t len) {
    return store_write(s, path, data, len, 0);
}

cai_status kbs_store_create(kbs_store *s, const char *path, const uint8_t *data, size_t len) {
    return store_write(s, path, data, len, 1);
}

/* Reads and opens |path|'s row; inside the caller's transaction. */
static cai_status resource_read(kbs_store *s, const char *path, uint64_t state_gen, buf *out) {
    buf nonce, sealed;
    buf_init(&nonce, 0);
    buf_init(&sealed, 0);
    uint8_t ad[AD_MAX];
    uint64_t version = 0, gen = 0;
    cai_status st = s->ops->resource_read(s->db, path, &nonce, &sealed, &version, &gen);
    if (st != CAI_OK)
        goto out;
    if (nonce.len != AEAD_NONCE_LEN || sealed.len < AEAD_TAG_LEN ||
        sealed.len > KBS_RESOURCE_MAX + AEAD_TAG_LEN || gen > state_gen) {
        st = cai_fail(CAI_ERR_AUTH, "resource %.80s is corrupt in the database", path);
        goto out;
    }
    size_t len = sealed.len - AEAD_TAG_LEN;
    out->len = 0;
    if ((st = buf_reserve(out, len + 1)) != CAI_OK)
        goto out;
    st = aead_open(s->aead, nonce.data, ad, resource_ad(s, path, version, gen, ad), sealed.data,
                   len, sealed.data + len, out->data);
    if (st == CAI_OK)
        out->len = len;
    else if (st == CAI_ERR_AUTH)
        st = cai_fail(CAI_ERR_AUTH, "resource check failed: %.80s does not decrypt at its "
                      "version and generation: the database was altered", path);
out:
    buf_free(&nonce);
    buf_free(&sealed);
    return st;
}

cai_status kbs_store_get(kbs_store *s, const char *path, buf *out) {
    if (!respath_valid(path))
        return bad_path(path);
    uint64_t gen = 0;
    cai_status st = tx_begin(s, 0);
    if (st != CAI_OK)
        return st;
    if ((st = state_check(s, &gen)) == CAI_OK)
        st = resource_read(s, path, gen, out);
    cai_status end = tx_end(s, st == CAI_ERR_NOT_FOUND ? CAI_OK : st);
    if (st == CAI_OK && end != CAI_OK)
        st = end;
    if (st != CAI_OK)
        out->len = 0;
    else if (gen > s->gen_seen)
        s->gen_seen = gen;
    return st;
}

static cai_status resource_delete_fn(kbs_store *s, uint64_t gen, void *arg) {
    CAI_UNUSED(gen);
    return s->ops->resource_delete(s->db, (const char *)arg);
}

cai_status kbs_store_delete(kbs_store *s, const char *path) {
    if (!respath_valid(path))
        return bad_path(path);
    return change(s, resource_delete_fn, (void *)path);
}

cai_status kbs_store_list(kbs_store *s, json_t **out) {
    return s->ops->resource_list(s->db, out);
}

cai_status kbs_store_audit(kbs_store *s, const kbs_audit_entry *e) {
    return s->ops->audit(s->db, e);
}

cai_status kbs_store_audit_many(kbs_store *s, const kbs_audit_entry *e, size_t n) {
    return s->ops->audit_many(s->db, e, n);
}

cai_status kbs_store_audit_list(kbs_store *s, int limit, json_t **out) {
    return s->ops->audit_list(s->db, limit, out);
}

/* ---- the policy ------------------------------------------------------------ */

/* The policy's MAC covers the row's identity (store, table, row 1), its
 * generation and the document. */
static cai_status policy_mac(kbs_store *s, uint64_t gen, const char *doc, size_t len,
                             uint8_t mac[KDF_SHA256_LEN]) {
    buf b;
    buf_init(&b, 0);
    static const char label[] = "cai-kbs/v2 policy\0policy/1"; /* with its NUL */
    cai_status st = buf_append(&b, label, sizeof(label));
    if (st == CAI_OK)
        st = buf_append(&b, s->store_id, STORE_ID_LEN);
    if (st == CAI_OK)
        st = buf_append_u64le(&b, gen);
    if (st == CAI_OK)
        st = buf_append(&b, doc, len);
    if (st == CAI_OK)
        st = kdf_hmac_sha256(s->policy_key, sizeof(s->policy_key), b.data, b.len, mac);
    buf_free(&b);
    return st;
}

static cai_status policy_set_fn(kbs_store *s, uint64_t gen, void *arg) {
    const char *json = arg;
    uint8_t mac[KDF_SHA256_LEN];
    cai_status st = policy_mac(s, gen, json, strlen(json), mac);
    if (st == CAI_OK)
        st = s->ops->policy_write(s->db, json, gen, mac, sizeof(mac));
    return st;
}

cai_status kbs_store_policy_set(kbs_store *s, const char *json) {
    return change(s, policy_set_fn, (void *)json);
}

static cai_status policy_read(kbs_store *s, char **out) {
    char *doc = NULL;
    size_t len = 0;
    uint64_t gen = 0;
    int found = 0, has_mac = 0;
    uint8_t mac[KDF_SHA256_LEN];
    buf stored;
    buf_init(&stored, 0);
    cai_status st = s->ops->policy_read(s->db, &found, &doc, &len, &gen, &stored, &has_mac);
    if (st != CAI_OK || !found)
        goto out;
    if (!has_mac) {
        st = cai_fail(CAI_ERR_AUTH, "policy check failed: the stored policy is not authenticated "
                      "(an older cai kbs wrote it, unprotected); set it again with --policy FILE "
                      "or `cai kbs admin policy set`");
        goto out;
    }
    if (doc == NULL || memchr(doc, 0, len) != NULL ||
        (st = policy_mac(s, gen, doc, len, mac)) != CAI_OK || stored.len != KDF_SHA256_LEN ||
        !secure_memeq(mac, stored.data, sizeof(mac))) {
        if (st == CAI_OK)
            st = cai_fail(CAI_ERR_AUTH, "policy check failed: the stored policy fails its "
                          "authentication under the master key (it was altered or swapped in "
                          "the database)");
        goto out;
    }
    *out = doc;
    doc = NULL;
out:
    free(doc);
    buf_free(&stored);
    return st;
}

cai_status kbs_store_policy_get(kbs_store *s, char **out) {
    *out = NULL;
    uint64_t gen = 0;
    cai_status st = tx_begin(s, 0);
    if (st != CAI_OK)
        return st;
    if ((st = state_check(s, &gen)) == CAI_OK)
        st = policy_read(s, out);
    st = tx_end(s, st);
    if (st != CAI_OK) {
        free(*out);
        *out = NULL;
    }
    return st;
}

/* ---- a shared store: sessions and the token key ------------------------------ */

int kbs_store_shared(const kbs_store *s) {
    return s->ops->shared;
}

static cai_status not_shared(const kbs_store *s) {
    return cai_fail(CAI_ERR_UNSUPPORTED, "the %s store is not shared between brokers",
                    s->ops->name);
}

cai_status kbs_store_session_add(kbs_store *s, const char *id, const char *nonce,
                                 const char *client, time_t expires, time_t now) {
    if (s->ops->session_add == NULL)
        return not_shared(s);
    return s->ops->session_add(s->db, id, nonce, client ? client : "", expires, now);
}

cai_status kbs_store_nonce_take(kbs_store *s, const char *id, time_t now, char nonce[64],
                                char client[64]) {
    if (s->ops->nonce_take == NULL)
        return not_shared(s);
    return s->ops->nonce_take(s->db, id, now, nonce, client);
}

cai_status kbs_store_session_set_token(kbs_store *s, const char *id, const char *token,
                                       time_t expires) {
    if (s->ops->session_set_token == NULL)
        return not_shared(s);
    return s->ops->session_set_token(s->db, id, token, expires);
}

cai_status kbs_store_session_get_token(kbs_store *s, const char *id, time_t now, char **token) {
    *token = NULL;
    if (s->ops->session_get_token == NULL)
        return not_shared(s);
    return s->ops->session_get_token(s->db, id, now, token);
}

/* The token key's row: nonce ‖ AES-256-GCM(PKCS#8 PEM) ‖ tag, under the
 * resource key with its own associated data (the store id, the label). */
static size_t token_key_ad(const kbs_store *s, uint8_t ad[64]) {
    static const char label[] = "cai-kbs/v2 token key"; /* with its NUL */
    memcpy(ad, label, sizeof(label));
    memcpy(ad + sizeof(label), s->store_id, STORE_ID_LEN);
    return sizeof(label) + STORE_ID_LEN;
}

static cai_status token_key_seal(kbs_store *s, buf *row) {
    jose_key *k = NULL;
    buf pem;
    buf_init(&pem, 0);
    uint8_t ad[64];
    size_t adl = token_key_ad(s, ad);
    cai_status st = jose_key_generate(JOSE_KEY_EC_P256, &k);
    if (st == CAI_OK)
        st = jose_key_to_pem(k, 1, &pem);
    if (st == CAI_OK)
        st = buf_reserve(row, AEAD_NONCE_LEN + pem.len + AEAD_TAG_LEN);
    if (st == CAI_OK)
        st = secure_random(row->data, AEAD_NONCE_LEN);
    if (st == CAI_OK)
        st = aead_seal(s->aead, row->data, ad, adl, pem.data, pem.len, row->data + AEAD_NONCE_LEN,
                       row->data + AEAD_NONCE_LEN + pem.len);
    if (st == CAI_OK)
        row->len = AEAD_NONCE_LEN + pem.len + AEAD_TAG_LEN;
    jose_key_free(k);
    buf_free(&pem);
    return st;
}

cai_status kbs_store_token_key(kbs_store *s, jose_key **out) {
    *out = NULL;
    if (!s->ops->shared)
        return not_shared(s);
    buf row, pem;
    buf_init(&row, 0);
    buf_init(&pem, 0);
    int found = 0, added = 0;
    uint8_t ad[64];
    size_t adl = token_key_ad(s, ad);
    /* The first broker makes it; the others (racing or later) read it. */
    cai_status st = s->ops->meta_get(s->db, "token_key", &row, &found);
    if (st == CAI_OK && !found && (st = token_key_seal(s, &row)) == CAI_OK)
        st = s->ops->meta_add(s->db, "token_key", row.data, row.len, &added);
    if (st == CAI_OK && !found && !added)
        st = s->ops->meta_get(s->db, "token_key", &row, &found);
    if (st != CAI_OK)
        goto out;
    if (row.len < AEAD_NONCE_LEN + AEAD_TAG_LEN) {
        st = cai_fail(CAI_ERR_AUTH, "token key check failed: the stored token key is malformed "
                      "(the database was altered)");
        goto out;
    }
    size_t len = row.len - AEAD_NONCE_LEN - AEAD_TAG_LEN;
    if ((st = buf_reserve(&pem, len + 1)) != CAI_OK)
        goto out;
    st = aead_open(s->aead, row.data, ad, adl, row.data + AEAD_NONCE_LEN, len,
                   row.data + AEAD_NONCE_LEN + len, pem.data);
    if (st == CAI_ERR_AUTH)
        st = cai_fail(CAI_ERR_AUTH, "token key check failed: the stored token key does not "
                      "decrypt (the database was altered, or holds another store's)");
    if (st == CAI_OK) {
        pem.len = len;
        st = jose_key_from_pem((const char *)pem.data, pem.len, out);
    }
out:
    buf_free(&row);
    buf_free(&pem);
    return st;
}

cai_status kbs_store_policy_generation(kbs_store *s, uint64_t *gen) {
    int found = 0;
    *gen = 0;
    return s->ops->policy_gen(s->db, &found, gen); /* one statement: no transaction */
}

cai_status kbs_store_ping(kbs_store *s) {
    int found = 0;
    uint64_t gen = 0;
    return s->ops->policy_gen(s->db, &found, &gen);
}

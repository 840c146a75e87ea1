/* session.c - RCAR sessions in a chained hash table. Pending sessions are
 * also kept in creation order (to expire them cheaply) and per client
 * address, each address in a list by how many it holds (to evict from the
 * one holding the most). */
#include "kbs/session.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/codec.h"
#include "common/secure.h"

#define BUCKETS 4096
#define CLIENT_BUCKETS 1024

/* A client address with pending sessions (freed when it has none). */
typedef struct kbs_client {
    struct kbs_client *next;          /* hash chain */
    struct kbs_client *lprev, *lnext; /* in by_count[pending] */
    kbs_session *oldest, *newest;     /* its pending sessions */
    size_t pending;
    char addr[64];
} kbs_client;

struct kbs_sessions {
    kbs_session *bucket[BUCKETS];
    kbs_client *clients[CLIENT_BUCKETS];
    kbs_client **by_count;        /* [per_client + 1]: clients by pending count */
    size_t top;                   /* no client holds more than this */
    kbs_session *oldest, *newest; /* pending sessions */
    size_t count, max, per_client;
};

/* Ids are uniformly random: their first hex digits pick the bucket. */
static size_t bucket_of(const char *id) {
    size_t h = 0;
    for (int i = 0; i < 3; i++) {
        char c = id[i];
        h = h << 4 | (size_t)(c >= 'a' ? c - 'a' + 10 : c - '0');
    }
    return h & (BUCKETS - 1);
}

/* Addresses are chosen by the clients: FNV-1a with a random seed, so that
 * nobody can aim many addresses at one chain. */
static uint64_t client_seed;

static size_t client_bucket(const char *addr) {
    uint64_t h = 14695981039346656037ull ^ client_seed;
    for (const char *p = addr; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    return (size_t)(h % CLIENT_BUCKETS);
}

static kbs_client **client_slot(const kbs_sessions *ss, const char *addr) {
    kbs_client *const *pp = &ss->clients[client_bucket(addr)];
    while (*pp && strcmp((*pp)->addr, addr) != 0)
        pp = &(*pp)->next;
    return (kbs_client **)pp;
}

size_t kbs_session_pending(const kbs_sessions *ss, const char *client) {
    kbs_client **pp = client_slot(ss, client ? client : "");
    return *pp ? (*pp)->pending : 0;
}

cai_status kbs_sessions_new(size_t max, size_t per_client, kbs_sessions **out) {
    *out = NULL;
    kbs_sessions *ss = calloc(1, sizeof(*ss));
    if (ss == NULL)
        return CAI_ERR_NOMEM;
    ss->max = max ? max : KBS_SESSIONS_MAX_DEFAULT;
    ss->per_client = per_client ? per_client : KBS_SESSIONS_PER_CLIENT_DEFAULT;
    if (ss->per_client > ss->max)
        ss->per_client = ss->max;
    if ((ss->by_count = calloc(ss->per_client + 1, sizeof(*ss->by_count))) == NULL) {
        free(ss);
        return CAI_ERR_NOMEM;
    }
    if (client_seed == 0 && secure_random(&client_seed, sizeof(client_seed)) != CAI_OK)
        client_seed = (uint64_t)(uintptr_t)ss; /* only spreads chains */
    *out = ss;
    return CAI_OK;
}

static void count_unlink(kbs_sessions *ss, kbs_client *c) {
    if (c->lprev)
        c->lprev->lnext = c->lnext;
    else
        ss->by_count[c->pending] = c->lnext;
    if (c->lnext)
        c->lnext->lprev = c->lprev;
    c->lprev = c->lnext = NULL;
}

static void count_link(kbs_sessions *ss, kbs_client *c) {
    c->lprev = NULL;
    c->lnext = ss->by_count[c->pending];
    if (c->lnext)
        c->lnext->lprev = c;
    ss->by_count[c->pending] = c;
    if (c->pending > ss->top)
        ss->top = c->pending;
}

/* Takes pending |s| off both orders and its client's tally. */
static void unlink_pending(kbs_sessions *ss, kbs_session *s) {
    if (s->state != KBS_SESSION_AUTHED || s->owner == NULL)
        return;
    if (s->older)
        s->older->newer = s->newer;
    else
        ss->oldest = s->newer;
    if (s->newer)
        s->newer->older = s->older;
    else
        ss->newest = s->older;
    kbs_client *c = s->owner;
    if (s->c_older)
        s->c_older->c_newer = s->c_newer;
    else
        c->oldest = s->c_newer;
    if (s->c_newer)
        s->c_newer->c_older = s->c_older;
    else
        c->newest = s->c_older;
    s->older = s->newer = s->c_older = s->c_newer = NULL;
    s->owner = NULL;
    count_unlink(ss, c);
    if (--c->pending > 0) {
        count_link(ss, c);
        return;
    }
    kbs_client **pp = client_slot(ss, c->addr);
    *pp = c->next;
    free(c);
}

static void session_free(kbs_session *s) {
    if (s->token) {
        secure_wipe(s->token, strlen(s->token));
        free(s->token);
    }
    json_decref(s->claims);
    jose_key_free(s->tee_key);
    secure_wipe(s, sizeof(*s));
    free(s);
}

void kbs_sessions_free(kbs_sessions *ss) {
    if (ss == NULL)
        return;
    for (size_t b = 0; b < BUCKETS; b++)
        for (kbs_session *s = ss->bucket[b], *n; s; s = n) {
            n = s->next;
            session_free(s);
        }
    for (size_t b = 0; b < CLIENT_BUCKETS; b++)
        for (kbs_client *c = ss->clients[b], *n; c; c = n) {
            n = c->next;
            free(c);
        }
    free(ss->by_count);
    free(ss);
}

static void sweep(kbs_sessions *ss, time_t now) {
    for (size_t b = 0; b < BUCKETS; b++)
        for (kbs_session **pp = &ss->bucket[b]; *pp;) {
            kbs_session *s = *pp;
            if (s->expires < now) {
                *pp = s->next;
                unlink_pending(ss, s);
                session_free(s);
                ss->count--;
            } else {
                pp = &s->next;
            }
        }
}

/* Removes expired pending sessions from the old end of the creation order.
 * Pending sessions are given one lifetime, so that order is expiry order
 * and this costs O(removed); one given a later expiry only delays the
 * removal of those behind it. */
static void sweep_pending(kbs_sessions *ss, time_t now) {
    while (ss->oldest && ss->oldest->expires < now)
        kbs_session_remove(ss, ss->oldest);
}

/* Evicts the oldest pending session of a client holding the most; 0 if no
 * session is pending. O(per_client) at worst. */
static int evict_pending(kbs_sessions *ss) {
    while (ss->top > 0 && ss->by_count[ss->top] == NULL)
        ss->top--;
    if (ss->top == 0)
        return 0;
    kbs_session_remove(ss, ss->by_count[ss->top]->oldest);
    return 1;
}

int kbs_session_over_quota(kbs_sessions *ss, const char *client, time_t now) {
    if (client == NULL)
        client = "";
    if (kbs_session_pending(ss, client) < ss->per_client)
        return 0;
    sweep_pending(ss, now);
    return kbs_session_pending(ss, client) >= ss->per_client;
}

/* Adds a pending session: a fresh id and nonce, or |id| and |nonce| when
 * given (a session another broker opened); |quota| checks the client's. */
static cai_status session_add(kbs_sessions *ss, const char *client, time_t now, time_t expires,
                              const char *id, const char *nonce_b64, int quota,
                              kbs_session **out) {
    *out = NULL;
    if (client == NULL)
        client = "";
    size_t alen = strlen(client);
    if (alen >= sizeof(((kbs_client *)0)->addr))
        return cai_fail(CAI_ERR_INVALID_ARG, "client address too long");
    if (nonce_b64 && strlen(nonce_b64) >= sizeof(((kbs_session *)0)->nonce))
        return cai_fail(CAI_ERR_INVALID_ARG, "nonce too long");
    if (quota && kbs_session_over_quota(ss, client, now))
        return cai_fail(CAI_ERR_LIMIT, "%s already has %zu attestation sessions in progress (the "
                        "most one address may hold); finish one or retry later", client,
                        ss->per_client);
    /* Room: expired pending sessions go first, then a pending one of the
     * client holding the most (both cheap, as a flood keeps the table
     * full); only a table without pending sessions is swept whole, for
     * expired attested ones. */
    if (ss->count >= ss->max)
        sweep_pending(ss, now);
    if (ss->count >= ss->max)
        (void)evict_pending(ss);
    if (ss->count >= ss->max)
        sweep(ss, now);
    if (ss->count >= ss->max)
        return cai_fail(CAI_ERR_LIMIT, "too many attested sessions held; retry later");
    kbs_session *s = calloc(1, sizeof(*s));
    uint8_t rnd[16], nonce[KBS_NONCE_LEN];
    cai_status st = s ? secure_random(rnd, sizeof(rnd)) : CAI_ERR_NOMEM;
    if (st == CAI_OK)
        st = secure_random(nonce, sizeof(nonce));
    kbs_client **cp = client_slot(ss, client);
    if (st == CAI_OK && *cp == NULL) {
        if ((*cp = calloc(1, sizeof(**cp))) == NULL)
            st = CAI_ERR_NOMEM;
        else
            memcpy((*cp)->addr, client, alen + 1);
    }
    if (st != CAI_OK) {
        free(s);
        return st;
    }
    kbs_client *c = *cp;
    if (id)
        memcpy(s->id, id, KBS_SESSION_ID_LEN + 1);
    else
        hex_encode(s->id, rnd, sizeof(rnd));
    if (nonce_b64)
        memcpy(s->nonce, nonce_b64, strlen(nonce_b64) + 1);
    else
        b64_encode(s->nonce, nonce, sizeof(nonce), B64_STD);
    secure_wipe(nonce, sizeof(nonce));
    memcpy(s->client, client, alen + 1);
    s->state = KBS_SESSION_AUTHED;
    s->expires = expires;
    size_t b = bucket_of(s->id);
    s->next = ss->bucket[b];
    ss->bucket[b] = s;
    s->older = ss->newest;
    if (ss->newest)
        ss->newest->newer = s;
    else
        ss->oldest = s;
    ss->newest = s;
    s->owner = c;
    s->c_older = c->newest;
    if (c->newest)
        c->newest->c_newer = s;
    else
        c->oldest = s;
    c->newest = s;
    if (c->pending > 0)
        count_unlink(ss, c);
    c->pending++;
    count_link(ss, c);
    ss->count++;
    *out = s;
    return CAI_OK;
}

cai_status kbs_session_create(kbs_sessions *ss, const char *client, time_t now, time_t expires,
                              kbs_session **out) {
    return session_add(ss, client, now, expires, NULL, NULL, 1, out);
}

static int id_wellformed(const char *id);

cai_status kbs_session_adopt(kbs_sessions *ss, const char *id, const char *nonce,
                             const char *client, time_t now, time_t expires, kbs_session **out) {
    *out = NULL;
    if (id == NULL || !id_wellformed(id))
        return cai_fail(CAI_ERR_INVALID_ARG, "session id is malformed");
    return session_add(ss, client, now, expires, id, nonce, 0, out);
}

void kbs_session_attested(kbs_sessions *ss, kbs_session *s, time_t expires) {
    unlink_pending(ss, s);
    s->state = KBS_SESSION_ATTESTED;
    s->expires = expires;
}

static int id_wellformed(const char *id) {
    if (strlen(id) != KBS_SESSION_ID_LEN)
        return 0;
    for (const char *p = id; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return 0;
    return 1;
}

kbs_session *kbs_session_find(kbs_sessions *ss, const char *id, time_t now) {
    if (id == NULL || !id_wellformed(id))
        return NULL;
    for (kbs_session *s = ss->bucket[bucket_of(id)]; s; s = s->next) {
        if (!secure_memeq(s->id, id, KBS_SESSION_ID_LEN))
            continue;
        if (s->expires < now) {
            kbs_session_remove(ss, s);
            return NULL;
        }
        return s;
    }
    return NULL;
}

void kbs_session_remove(kbs_sessions *ss, kbs_session *s) {
    for (kbs_session **pp = &ss->bucket[bucket_of(s->id)]; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            unlink_pending(ss, s);
            session_free(s);
            ss->count--;
            return;
        }
}

size_t kbs_session_count(const kbs_sessions *ss) {
    return ss->count;
}

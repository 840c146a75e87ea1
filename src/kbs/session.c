/* session.c - RCAR sessions in a chained hash table, pending ones also in a
 * FIFO (oldest first) and counted per client address. */
#include "kbs/session.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/codec.h"
#include "common/secure.h"

#define BUCKETS 4096
#define CLIENT_BUCKETS 1024

/* A client address and how many pending sessions it holds (freed at 0). */
typedef struct client_count {
    struct client_count *next;
    size_t pending;
    char addr[64];
} client_count;

struct kbs_sessions {
    kbs_session *bucket[BUCKETS];
    client_count *clients[CLIENT_BUCKETS];
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

/* Addresses are chosen by the clients: FNV-1a with a per-table random
 * seed, so nobody can aim many addresses at one chain. */
static uint64_t client_seed;

static size_t client_bucket(const char *addr) {
    uint64_t h = 14695981039346656037ull ^ client_seed;
    for (const char *p = addr; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    return (size_t)(h % CLIENT_BUCKETS);
}

static client_count **client_slot(kbs_sessions *ss, const char *addr) {
    client_count **pp = &ss->clients[client_bucket(addr)];
    while (*pp && strcmp((*pp)->addr, addr) != 0)
        pp = &(*pp)->next;
    return pp;
}

size_t kbs_session_pending(const kbs_sessions *ss, const char *client) {
    client_count **pp = client_slot((kbs_sessions *)ss, client ? client : "");
    return *pp ? (*pp)->pending : 0;
}

cai_status kbs_sessions_new(size_t max, size_t per_client, kbs_sessions **out) {
    *out = calloc(1, sizeof(**out));
    if (*out == NULL)
        return CAI_ERR_NOMEM;
    (*out)->max = max ? max : KBS_SESSIONS_MAX_DEFAULT;
    (*out)->per_client = per_client ? per_client : KBS_SESSIONS_PER_CLIENT_DEFAULT;
    if (client_seed == 0 && secure_random((uint8_t *)&client_seed, sizeof(client_seed)) != CAI_OK)
        client_seed = (uint64_t)(uintptr_t)*out; /* only spreads chains */
    return CAI_OK;
}

/* Takes pending |s| off the FIFO and its client's count. */
static void unlink_pending(kbs_sessions *ss, kbs_session *s) {
    if (s->state != KBS_SESSION_AUTHED)
        return;
    if (s->older)
        s->older->newer = s->newer;
    else
        ss->oldest = s->newer;
    if (s->newer)
        s->newer->older = s->older;
    else
        ss->newest = s->older;
    s->older = s->newer = NULL;
    client_count **pp = client_slot(ss, s->client);
    if (*pp && --(*pp)->pending == 0) {
        client_count *c = *pp;
        *pp = c->next;
        free(c);
    }
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
        for (client_count *c = ss->clients[b], *n; c; c = n) {
            n = c->next;
            free(c);
        }
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

/* Removes expired pending sessions from the old end of the FIFO. Pending
 * sessions are given one lifetime, so the FIFO is in expiry order and this
 * costs O(removed); one given a later expiry only delays those behind it. */
static void sweep_pending(kbs_sessions *ss, time_t now) {
    while (ss->oldest && ss->oldest->expires < now)
        kbs_session_remove(ss, ss->oldest);
}

int kbs_session_over_quota(kbs_sessions *ss, const char *client, time_t now) {
    if (client == NULL)
        client = "";
    if (kbs_session_pending(ss, client) < ss->per_client)
        return 0;
    sweep_pending(ss, now);
    return kbs_session_pending(ss, client) >= ss->per_client;
}

cai_status kbs_session_create(kbs_sessions *ss, const char *client, time_t now, time_t expires,
                              kbs_session **out) {
    *out = NULL;
    if (client == NULL)
        client = "";
    if (strlen(client) >= sizeof(((kbs_session *)0)->client))
        return cai_fail(CAI_ERR_INVALID_ARG, "client address too long");
    if (kbs_session_over_quota(ss, client, now))
        return cai_fail(CAI_ERR_LIMIT, "%s already has %zu attestation sessions in progress (the "
                        "most one address may hold); finish one or retry later", client,
                        ss->per_client);
    /* Room: expired pending sessions go first, then the oldest pending one
     * (both O(1) a session, as a flood keeps the table full); only a table
     * without pending sessions is swept whole, for expired attested ones. */
    if (ss->count >= ss->max)
        sweep_pending(ss, now);
    if (ss->count >= ss->max && ss->oldest)
        kbs_session_remove(ss, ss->oldest);
    if (ss->count >= ss->max)
        sweep(ss, now);
    if (ss->count >= ss->max)
        return cai_fail(CAI_ERR_LIMIT, "too many attested sessions held; retry later");
    client_count **cp = client_slot(ss, client);
    if (*cp == NULL) {
        if ((*cp = calloc(1, sizeof(**cp))) == NULL)
            return CAI_ERR_NOMEM;
        memcpy((*cp)->addr, client, strlen(client) + 1);
    }
    kbs_session *s = calloc(1, sizeof(*s));
    uint8_t rnd[16], nonce[KBS_NONCE_LEN];
    cai_status st = s ? secure_random(rnd, sizeof(rnd)) : CAI_ERR_NOMEM;
    if (st == CAI_OK)
        st = secure_random(nonce, sizeof(nonce));
    if (st != CAI_OK) {
        free(s);
        if ((*cp)->pending == 0) {
            client_count *c = *cp;
            *cp = c->next;
            free(c);
        }
        return st;
    }
    hex_encode(s->id, rnd, sizeof(rnd));
    b64_encode(s->nonce, nonce, sizeof(nonce), B64_STD);
    memcpy(s->client, client, strlen(client) + 1);
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
    (*cp)->pending++;
    ss->count++;
    *out = s;
    return CAI_OK;
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

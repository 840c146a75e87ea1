/* session.c - RCAR sessions in a chained hash table. */
#include "kbs/session.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/codec.h"
#include "common/secure.h"

#define BUCKETS 4096

struct kbs_sessions {
    kbs_session *bucket[BUCKETS];
    size_t count, max;
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

cai_status kbs_sessions_new(size_t max, kbs_sessions **out) {
    *out = calloc(1, sizeof(**out));
    if (*out == NULL)
        return CAI_ERR_NOMEM;
    (*out)->max = max ? max : 10000;
    return CAI_OK;
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
    free(ss);
}

static void sweep(kbs_sessions *ss, time_t now) {
    for (size_t b = 0; b < BUCKETS; b++)
        for (kbs_session **pp = &ss->bucket[b]; *pp;) {
            kbs_session *s = *pp;
            if (s->expires < now) {
                *pp = s->next;
                session_free(s);
                ss->count--;
            } else {
                pp = &s->next;
            }
        }
}

cai_status kbs_session_create(kbs_sessions *ss, time_t now, time_t expires, kbs_session **out) {
    *out = NULL;
    if (ss->count >= ss->max)
        sweep(ss, now);
    if (ss->count >= ss->max)
        return cai_fail(CAI_ERR_LIMIT, "too many attestation sessions in progress; retry later");
    kbs_session *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return CAI_ERR_NOMEM;
    uint8_t rnd[16], nonce[KBS_NONCE_LEN];
    cai_status st = secure_random(rnd, sizeof(rnd));
    if (st == CAI_OK)
        st = secure_random(nonce, sizeof(nonce));
    if (st != CAI_OK) {
        free(s);
        return st;
    }
    hex_encode(s->id, rnd, sizeof(rnd));
    b64_encode(s->nonce, nonce, sizeof(nonce), B64_STD);
    s->state = KBS_SESSION_AUTHED;
    s->expires = expires;
    size_t b = bucket_of(s->id);
    s->next = ss->bucket[b];
    ss->bucket[b] = s;
    ss->count++;
    *out = s;
    return CAI_OK;
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
            session_free(s);
            ss->count--;
            return;
        }
}

size_t kbs_session_count(const kbs_sessions *ss) {
    return ss->count;
}

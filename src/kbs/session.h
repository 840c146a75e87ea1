/* session.h - the key broker's RCAR sessions, keyed by the kbs-session-id
 * cookie: created by /auth with a fresh nonce, consumed by one /attest
 * (success or failure: a nonce is used once), then holding the token until
 * they expire. A fixed capacity bounds memory; expired sessions are swept
 * when room is needed. Not thread-safe: the broker uses it from its event
 * loop only.
 *
 * /auth costs nothing to ask for, so a session that has not attested yet
 * (pending) is cheap to lose: each client address holds at most a quota of
 * pending sessions, the broker gives them a short lifetime, and when the
 * table is full a pending session is evicted to make room: the oldest one
 * of the address that holds the most, so that a flood from many addresses
 * evicts its own sessions, not the one a legitimate agent is attesting
 * with. Only a table full of attested sessions refuses a new one. */
#ifndef CAI_KBS_SESSION_H
#define CAI_KBS_SESSION_H

#include <stddef.h>
#include <time.h>

#include <jansson.h>

#include "common/status.h"
#include "crypto/jose.h"
#include "kbs/protocol.h"

#define KBS_SESSION_ID_LEN 32 /* hex digits of 128 random bits */

typedef enum { KBS_SESSION_AUTHED = 1, KBS_SESSION_ATTESTED = 2 } kbs_session_state;

typedef struct kbs_session {
    char id[KBS_SESSION_ID_LEN + 1];
    kbs_session_state state;
    time_t expires;
    char nonce[64];    /* base64 of KBS_NONCE_LEN bytes */
    /* ATTESTED: what the token says, kept verified so that requests with the
     * session cookie need no token verification (all owned). */
    char *token;
    json_t *claims;
    jose_key *tee_key;
    char tee_alg[32];
    char evidence_digest[65], claims_digest[65];
    char client[64];   /* the address that opened it */
    struct kbs_session *next;
    /* Pending sessions only: all of them, and those of the same client, in
     * creation order; the client's tally (session.c). */
    struct kbs_session *older, *newer, *c_older, *c_newer;
    struct kbs_client *owner;
} kbs_session;

typedef struct kbs_sessions kbs_sessions;

#define KBS_SESSIONS_MAX_DEFAULT 10000
#define KBS_SESSIONS_PER_CLIENT_DEFAULT 32

/* kbs_sessions_new makes a table of at most |max| sessions (0: the
 * default), of which at most |per_client| (0: the default) pending ones
 * per client address. */
cai_status kbs_sessions_new(size_t max, size_t per_client, kbs_sessions **out) CAI_WUR;
void kbs_sessions_free(kbs_sessions *ss);

/* kbs_session_over_quota returns 1 if |client| already holds its quota of
 * live pending sessions at |now| (a create for it would be refused), else 0. */
int kbs_session_over_quota(kbs_sessions *ss, const char *client, time_t now);

/* kbs_session_create adds a pending session for |client| with a fresh id and
 * nonce expiring at |expires| and returns it in |*out| (owned by the table).
 * A full table first loses its expired sessions, then the oldest pending
 * session of the client holding the most. CAI_ERR_LIMIT when |client| is over its quota, or when the table is
 * full of attested sessions. */
cai_status kbs_session_create(kbs_sessions *ss, const char *client, time_t now, time_t expires,
                              kbs_session **out) CAI_WUR;

/* kbs_session_adopt adds pending session |id| with |nonce| for |client|,
 * as another broker sharing the store opened it (kbs_store_nonce_take gave
 * them), expiring at |expires|; no quota applies (it is about to attest).
 * CAI_ERR_INVALID_ARG for a malformed id, CAI_ERR_LIMIT when full. */
cai_status kbs_session_adopt(kbs_sessions *ss, const char *id, const char *nonce,
                             const char *client, time_t now, time_t expires,
                             kbs_session **out) CAI_WUR;

/* kbs_session_attested marks pending |s| attested (it no longer counts
 * against its client's quota, nor can it be evicted) and sets its expiry. */
void kbs_session_attested(kbs_sessions *ss, kbs_session *s, time_t expires);

/* kbs_session_find returns the live session with |id| (compared in
 * constant time), or NULL; an expired one is removed. */
kbs_session *kbs_session_find(kbs_sessions *ss, const char *id, time_t now);

/* kbs_session_remove deletes |s| from the table. */
void kbs_session_remove(kbs_sessions *ss, kbs_session *s);

/* kbs_session_count returns the number of sessions held (live or not). */
size_t kbs_session_count(const kbs_sessions *ss);

/* kbs_session_pending returns the number of pending sessions |client| holds
 * (live or not). */
size_t kbs_session_pending(const kbs_sessions *ss, const char *client);

#endif

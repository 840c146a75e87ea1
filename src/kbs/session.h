/* session.h - the key broker's RCAR sessions, keyed by the kbs-session-id
 * cookie: created by /auth with a fresh nonce, consumed by one /attest
 * (success or failure: a nonce is used once), then holding the token until
 * they expire. A fixed capacity bounds memory; expired sessions are swept
 * when room is needed. Not thread-safe: the broker uses it from its event
 * loop only. */
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
    struct kbs_session *next;
} kbs_session;

typedef struct kbs_sessions kbs_sessions;

/* kbs_sessions_new makes a table of at most |max| live sessions. */
cai_status kbs_sessions_new(size_t max, kbs_sessions **out) CAI_WUR;
void kbs_sessions_free(kbs_sessions *ss);

/* kbs_session_create adds a session with a fresh id and nonce expiring at
 * |expires| and returns it in |*out| (owned by the table). CAI_ERR_LIMIT
 * when the table is full of live sessions. */
cai_status kbs_session_create(kbs_sessions *ss, time_t now, time_t expires,
                              kbs_session **out) CAI_WUR;

/* kbs_session_find returns the live session with |id| (compared in
 * constant time), or NULL; an expired one is removed. */
kbs_session *kbs_session_find(kbs_sessions *ss, const char *id, time_t now);

/* kbs_session_remove deletes |s| from the table. */
void kbs_session_remove(kbs_sessions *ss, kbs_session *s);

/* kbs_session_count returns the number of sessions held (live or not). */
size_t kbs_session_count(const kbs_sessions *ss);

#endif

/* jsonc.h - a JSON prefix checker for constrained generation.
 *
 * response_format {"type": "json_object"}: every generated token must keep
 * the text a prefix of some valid JSON object (RFC 8259), and generation
 * ends when the object is complete. jsonc tracks that incrementally, byte
 * by byte, with a small pushdown automaton; the sampler asks it about a
 * candidate token's bytes before accepting the token. Generated JSON must
 * start with '{' at once and may not run more than JSONC_MAX_WS whitespace
 * bytes in a row: a model that prefers spaces cannot stall forever. */
#ifndef CAI_LLM_JSONC_H
#define CAI_LLM_JSONC_H

#include <stddef.h>
#include <stdint.h>

#define JSONC_MAX_DEPTH 64
#define JSONC_MAX_WS 8

typedef struct {
    uint8_t stack[JSONC_MAX_DEPTH]; /* '{' or '[' */
    int depth;
    int state;     /* see jsonc.c */
    int lit_pos;   /* position inside true/false/null or \uXXXX */
    const char *lit;
    int num;       /* number sub-state */
    int done;      /* the top-level object is complete */
    int ws_run;    /* consecutive whitespace bytes */
} jsonc;

void jsonc_init(jsonc *j);

/* jsonc_feed advances |j| over |n| bytes; returns 0 and leaves |j| as it was
 * if they would make the text not a prefix of a JSON object. */
int jsonc_feed(jsonc *j, const uint8_t *p, size_t n);

/* jsonc_done says whether a complete object has been read (only whitespace
 * may follow). */
int jsonc_done(const jsonc *j);

#endif

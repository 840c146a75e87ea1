/* jsonc.c - an incremental check that text is a prefix of a JSON object. */
#include "llm/jsonc.h"

#include <string.h>

enum {
    S_START,      /* before the top-level '{' */
    S_VALUE,      /* a value is expected */
    S_KEY_OR_END, /* after '{': a key or '}' */
    S_KEY,        /* after ',' in an object: a key */
    S_COLON,      /* after a key */
    S_VAL_OR_END, /* after '[': a value or ']' */
    S_AFTER,      /* after a value: ',' or a closing bracket */
    S_STR,        /* inside a string */
    S_ESC,        /* after a backslash */
    S_UHEX,       /* inside \uXXXX */
    S_LIT,        /* inside true/false/null */
    S_NUM,        /* inside a number */
};

/* number sub-states */
enum { N_MINUS, N_ZERO, N_INT, N_DOT, N_FRAC, N_E, N_ESIGN, N_EXP };

void jsonc_init(jsonc *j) { memset(j, 0, sizeof(*j)); }

int jsonc_done(const jsonc *j) { return j->done; }

static int ws(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static int digit(uint8_t c) { return c >= '0' && c <= '9'; }
static int hex(uint8_t c) { return digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

/* in_key: the string being read is an object key (kept in lit_pos's sign) */
static int step(jsonc *j, uint8_t c);

static int open_value(jsonc *j, uint8_t c) {
    switch (c) {
    case '{':
    case '[':
        if (j->depth == JSONC_MAX_DEPTH)
            return 0;
        j->stack[j->depth++] = c;
        j->state = c == '{' ? S_KEY_OR_END : S_VAL_OR_END;
        return 1;
    case '"':
        j->state = S_STR;
        j->num = 0; /* a value string */
        return 1;
    case 't': j->lit = "true"; break;
    case 'f': j->lit = "false"; break;
    case 'n': j->lit = "null"; break;
    case '-':
        j->state = S_NUM, j->num = N_MINUS;
        return 1;
    default:
        if (!digit(c))
            return 0;
        j->state = S_NUM, j->num = c == '0' ? N_ZERO : N_INT;
        return 1;
    }
    j->state = S_LIT;
    j->lit_pos = 1;
    return 1;
}

static int close_container(jsonc *j, uint8_t c) {
    if (j->depth == 0 || j->stack[j->depth - 1] != (c == '}' ? '{' : '['))
        return 0;
    j->depth--;
    j->state = S_AFTER;
    if (j->depth == 0)
        j->done = 1;
    return 1;
}

/* step feeds one byte: 1 if it may continue a JSON text, 0 if not.
 * (long: one switch over the states of the JSON grammar, a case per state;
 * a reader follows the grammar down the page.) */
static int step(jsonc *j, uint8_t c) {
    if (j->state != S_STR && j->state != S_ESC && j->state != S_UHEX && ws(c)) {
        if (j->state == S_START || ++j->ws_run > JSONC_MAX_WS)
            return 0;
    } else {
        j->ws_run = 0;
    }
    if (j->done)
        return ws(c);
    switch (j->state) {
    case S_START:
        return c == '{' && open_value(j, c);
    case S_VALUE:
        return ws(c) || open_value(j, c);
    case S_VAL_OR_END:
        if (ws(c))
            return 1;
        return c == ']' ? close_container(j, c) : open_value(j, c);
    case S_KEY_OR_END:
    case S_KEY:
        if (ws(c))
            return 1;
        if (c == '}' && j->state == S_KEY_OR_END)
            return close_container(j, c);
        if (c != '"')
            return 0;
        j->state = S_STR;
        j->num = 1; /* a key */
        return 1;
    case S_COLON:
        if (ws(c))
            return 1;
        if (c != ':')
            return 0;
        j->state = S_VALUE;
        return 1;
    case S_AFTER:
        if (ws(c))
            return 1;
        if (c == ',') {
            j->state = j->stack[j->depth - 1] == '{' ? S_KEY : S_VALUE;
            return 1;
        }
        return (c == '}' || c == ']') && close_container(j, c);
    case S_STR:
        if (c == '"') {
            j->state = j->num ? S_COLON : S_AFTER;
            return 1;
        }
        if (c == '\\') {
            j->state = S_ESC;
            return 1;
        }
        return c >= 0x20;
    case S_ESC:
        if (c == 'u') {
            j->state = S_UHEX;
            j->lit_pos = 0;
            return 1;
        }
        if (!strchr("\"\\/bfnrt", c) || c == 0)
            return 0;
        j->state = S_STR;
        return 1;
    case S_UHEX:
        if (!hex(c))
            return 0;
        if (++j->lit_pos == 4)
            j->state = S_STR;
        return 1;
    case S_LIT:
        if (c != (uint8_t)j->lit[j->lit_pos])
            return 0;
        if (j->lit[++j->lit_pos] == '\0')
            j->state = S_AFTER;
        return 1;
    case S_NUM:
        switch (j->num) {
        case N_MINUS:
            if (!digit(c))
                return 0;
            j->num = c == '0' ? N_ZERO : N_INT;
            return 1;
        case N_ZERO:
        case N_INT:
            if (digit(c) && j->num == N_INT)
                return 1;
            if (c == '.') {
                j->num = N_DOT;
                return 1;
            }
            if (c == 'e' || c == 'E') {
                j->num = N_E;
                return 1;
            }
            break; /* the number ends here */
        case N_DOT:
            if (!digit(c))
                return 0;
            j->num = N_FRAC;
            return 1;
        case N_FRAC:
            if (digit(c))
                return 1;
            if (c == 'e' || c == 'E') {
                j->num = N_E;
                return 1;
            }
            break;
        case N_E:
            if (c == '+' || c == '-') {
                j->num = N_ESIGN;
                return 1;
            }
            if (!digit(c))
                return 0;
            j->num = N_EXP;
            return 1;
        case N_ESIGN:
            if (!digit(c))
                return 0;
            j->num = N_EXP;
            return 1;
        case N_EXP:
            if (digit(c))
                return 1;
            break;
        }
        j->state = S_AFTER; /* a complete number, then this byte */
        return step(j, c);
    }
    return 0;
}

int jsonc_feed(jsonc *j, const uint8_t *p, size_t n) {
    jsonc t = *j;
    for (size_t i = 0; i < n; i++)
        if (!step(&t, p[i]))
            return 0;
    *j = t;
    return 1;
}

/* fuzz_tokenizer.c - the tokenizer's text path (untrusted text, trusted
 * vocabulary) on a small byte-level BPE vocabulary built in code: any bytes
 * encode, the tokens' bytes give the input back exactly, and the streaming
 * detokenizer emits valid UTF-8 whatever it is fed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/codec.h"
#include "llm/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static tokenizer *build(void) {
    static char store[256][2];
    static const char *text[264];
    static size_t len[264];
    static int32_t type[264];
    int next = 256;
    for (int b = 0; b < 256; b++) {
        int pr = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        unsigned cp = pr ? (unsigned)b : (unsigned)next++;
        if (cp < 0x80) {
            store[b][0] = (char)cp;
            len[b] = 1;
        } else {
            store[b][0] = (char)(0xC0 | (cp >> 6));
            store[b][1] = (char)(0x80 | (cp & 0x3F));
            len[b] = 2;
        }
        text[b] = store[b];
        type[b] = TOKEN_NORMAL;
    }
    static const char *extra[] = {"ab", "abc", "\xc4\xa0\x61", "\xc4\xa0\xc4\xa0", "\xc4\x8a\xc4\x8a",
                                  "\xc3\xa4\xc2\xb8", "<|x|>", "<u>"};
    for (int i = 0; i < 8; i++) {
        text[256 + i] = extra[i];
        len[256 + i] = strlen(extra[i]);
        type[256 + i] = i == 6 ? TOKEN_CONTROL : i == 7 ? TOKEN_USER_DEFINED : TOKEN_NORMAL;
    }
    static const char *merges[] = {"a b", "ab c", "\xc4\xa0 a", "\xc4\xa0 \xc4\xa0", "\xc4\x8a \xc4\x8a",
                                   "\xc3\xa4 \xc2\xb8"};
    size_t mlen[6];
    for (int i = 0; i < 6; i++)
        mlen[i] = strlen(merges[i]);
    tokenizer_spec sp = {.model = TOKENIZER_BPE, .n_tokens = 264, .text = text, .len = len,
                         .type = type, .n_merges = 6, .merge = merges, .merge_len = mlen,
                         .bos = -1, .eos = 262, .eot = -1};
    tokenizer *t = NULL;
    if (tokenizer_new(&sp, &t) != CAI_OK)
        abort();
    return t;
}

static void check_utf8(const uint8_t *p, size_t n) {
    buf clean;
    buf_init(&clean, 0);
    if (utf8_sanitize(p, n, &clean) != CAI_OK || clean.len != n || (n && memcmp(clean.data, p, n)))
        abort(); /* sanitizing valid UTF-8 changes nothing */
    buf_free(&clean);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static tokenizer *t;
    if (t == NULL)
        t = build();
    int32_t *ids = NULL;
    size_t n = 0, cap = 0;
    if (tokenizer_encode(t, (const char *)data, size, size % 2, &ids, &n, &cap) != CAI_OK)
        abort();
    buf back, text;
    buf_init(&back, 0);
    buf_init(&text, 0);
    detok d;
    detok_init(&d);
    for (size_t i = 0; i < n; i++) {
        if (tokenizer_token_bytes(t, ids[i], &back) != CAI_OK || detok_push(&d, t, ids[i], &text) != CAI_OK)
            abort();
    }
    if (detok_flush(&d, &text) != CAI_OK)
        abort();
    if (back.len != size || (size && memcmp(back.data, data, size) != 0))
        abort(); /* exact round trip, special tokens included */
    check_utf8(text.data, text.len);
    buf_free(&back);
    buf_free(&text);
    free(ids);
    return 0;
}

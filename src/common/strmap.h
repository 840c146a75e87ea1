/* strmap.h - a map from byte strings to int32 values, for vocabularies.
 *
 * Open addressing with linear probing and FNV-1a, sized once for the
 * number of keys it will hold. Keys are not copied: they must stay where
 * they are while the map lives. */
#ifndef CAI_COMMON_STRMAP_H
#define CAI_COMMON_STRMAP_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/status.h"

typedef struct {
    const char *key;
    size_t len;
    int32_t val;
} strmap_slot;

typedef struct {
    strmap_slot *s;
    size_t cap;  /* a power of two, over twice the keys it was made for */
    size_t used;
} strmap;

/* strmap_init makes room for |n| keys. */
cai_status strmap_init(strmap *m, size_t n);
void strmap_free(strmap *m);

/* strmap_add maps |k| to |v| and returns -1, or, when |k| is there
 * already, keeps the first value and returns it. At most the |n| keys the
 * map was made for. */
int32_t strmap_add(strmap *m, const char *k, size_t n, int32_t v);

static inline uint64_t strmap_hash(const char *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)p[i]) * 0x100000001b3ull;
    return h;
}

/* strmap_get returns the value of |k|, or -1. Inline: tokenizers call it
 * for every merge they try. */
static inline int32_t strmap_get(const strmap *m, const char *k, size_t n) {
    for (size_t i = strmap_hash(k, n) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (m->s[i].key == NULL)
            return -1;
        if (m->s[i].len == n && memcmp(m->s[i].key, k, n) == 0)
            return m->s[i].val;
    }
}

#endif

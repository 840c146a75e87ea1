/* strmap.c - a map from byte strings to int32 values. */
#include "common/strmap.h"

#include <stdlib.h>

cai_status strmap_init(strmap *m, size_t n) {
    m->cap = 16;
    m->used = 0;
    while (m->cap < 2 * n + 16)
        m->cap <<= 1;
    m->s = calloc(m->cap, sizeof(strmap_slot));
    return m->s ? CAI_OK : CAI_ERR_NOMEM;
}

void strmap_free(strmap *m) {
    free(m->s);
    m->s = NULL;
    m->cap = m->used = 0;
}

int32_t strmap_add(strmap *m, const char *k, size_t n, int32_t v) {
    for (size_t i = strmap_hash(k, n) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (m->s[i].key == NULL) {
            CAI_ASSERT(2 * m->used < m->cap); /* the size it was made for keeps probes short */
            m->s[i] = (strmap_slot){k, n, v};
            m->used++;
            return -1;
        }
        if (m->s[i].len == n && memcmp(m->s[i].key, k, n) == 0)
            return m->s[i].val;
    }
}

/* x16.c - the x16 weight layout (x16.h): eligibility, the rewrite and its
 * inverse, and one row's dequantization. Scalar: it runs once per load
 * (pwrite-bound) and, for get_row, once per token. */
#include "llm/x16.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/pool.h"
#include "common/secure.h"
#include "llm/quant.h"

_Static_assert(X16_ROWS * sizeof(block_q8_0) == X16_QUANTS_Q8_0 + 2 * X16_ROWS, "x16 Q8_0 block of 16 rows");
_Static_assert(X16_ROWS * sizeof(block_q4_0) == X16_QUANTS_Q4_0 + 2 * X16_ROWS, "x16 Q4_0 block of 16 rows");
_Static_assert(X16_ROWS * sizeof(block_q4_K) == X16_Q4_K_BYTES, "x16 Q4_K block of 16 rows");
_Static_assert(X16_ROWS * sizeof(block_q6_K) == X16_Q6_K_BYTES, "x16 Q6_K block of 16 rows");

int x16_eligible(int type, int n_dims, const int64_t ne[4]) {
    const int64_t per = type == GGML_TYPE_Q8_0 || type == GGML_TYPE_Q4_0   ? 32
                        : type == GGML_TYPE_Q4_K || type == GGML_TYPE_Q6_K ? QK_K
                                                                           : 0;
    if (per == 0)
        return 0;
    for (int d = 2; d < 4; d++)
        if (ne[d] != 1)
            return 0;
    return n_dims >= 2 && ne[0] > 0 && ne[0] % per == 0 && ne[1] >= X16_ROWS;
}

/* A field of the file's block: |count| units of |size| bytes (4 or 2) at
 * |at|, stored transposed (unit k of the 16 rows side by side), the
 * fields one after the other in the order of the table (x16.h). */
typedef struct {
    uint16_t at;
    uint8_t size, count;
} field;

/* A type's block in x16: its fields, in their order in x16. */
typedef struct {
    size_t block;     /* the file's block bytes */
    int64_t values;   /* per block */
    field f[4];
    int n;            /* fields */
} block_layout;

static const block_layout LAYOUT_Q8_0 = {sizeof(block_q8_0), 32,
                                         {{offsetof(block_q8_0, qs), 4, 8}, {offsetof(block_q8_0, d), 2, 1}}, 2};
static const block_layout LAYOUT_Q4_0 = {sizeof(block_q4_0), 32,
                                         {{offsetof(block_q4_0, qs), 4, 4}, {offsetof(block_q4_0, d), 2, 1}}, 2};
static const block_layout LAYOUT_Q4_K = {sizeof(block_q4_K), QK_K,
                                         {{offsetof(block_q4_K, qs), 4, QK_K / 8},
                                          {offsetof(block_q4_K, scales), 4, K_SCALE_SIZE / 4},
                                          {offsetof(block_q4_K, d), 4, 1}}, 3};
static const block_layout LAYOUT_Q6_K = {sizeof(block_q6_K), QK_K,
                                         {{offsetof(block_q6_K, ql), 4, QK_K / 8},
                                          {offsetof(block_q6_K, qh), 4, QK_K / 16},
                                          {offsetof(block_q6_K, scales), 4, QK_K / 64},
                                          {offsetof(block_q6_K, d), 2, 1}}, 4};

_Static_assert(offsetof(block_q4_K, dmin) == offsetof(block_q4_K, d) + 2, "Q4_K's d and dmin as one dword");
_Static_assert(X16_Q4_K_SCALES == X16_ROWS * QK_K / 2 && X16_Q4_K_D == X16_Q4_K_SCALES + X16_ROWS * K_SCALE_SIZE,
               "x16 Q4_K fields");
_Static_assert(X16_Q6_K_QH == X16_ROWS * QK_K / 2 && X16_Q6_K_SCALES == X16_Q6_K_QH + X16_ROWS * QK_K / 4 &&
               X16_Q6_K_D == X16_Q6_K_SCALES + X16_ROWS * QK_K / 16, "x16 Q6_K fields");

/* Always inlined with a constant layout, so the fields' loops unroll
 * into plain loads and stores (the rewrite is a pass over the model). */
#define X16_INLINE __attribute__((always_inline)) static inline

/* Block |i| of row |l|: from the file's layout (|from|, the block's
 * bytes) into the x16 group at |to| when |to_x16|, else from the group at
 * |from| into the block's bytes at |to|. Q8_0's quants (|q8|, field 0)
 * are stored unsigned: a xor of each byte's sign bit. */
X16_INLINE void move_block(const block_layout *L, int q8, size_t i, size_t l, const uint8_t *from, uint8_t *to,
                           int to_x16) {
    size_t x = i * X16_ROWS * L->block; /* the field's first unit in the group */
#pragma GCC unroll 4
    for (int fi = 0; fi < L->n; fi++) {
        const field *f = &L->f[fi];
#pragma GCC unroll 8
        for (size_t k = 0; k < f->count; k++, x += X16_ROWS * f->size) {
            const size_t xo = x + l * f->size, fo = f->at + k * f->size;
            const uint8_t *a = from + (to_x16 ? fo : xo);
            uint8_t *z = to + (to_x16 ? xo : fo);
            if (f->size == 4) {
                uint32_t v;
                memcpy(&v, a, 4);
                v ^= q8 && fi == 0 ? 0x80808080u : 0;
                memcpy(z, &v, 4);
            } else {
                memcpy(z, a, 2);
            }
        }
    }
}

/* |groups| groups of 16 rows of |ne0| values from |src| to |dst|: from
 * the file's layout into x16 when |to_x16|, else back. */
X16_INLINE void move_groups(const block_layout *L, int q8, int64_t ne0, const uint8_t *src, uint8_t *dst,
                            int64_t groups, int to_x16) {
    const size_t nb = (size_t)(ne0 / L->values), rb = nb * L->block;
    for (int64_t g = 0; g < groups; g++, src += X16_ROWS * rb, dst += X16_ROWS * rb)
        for (size_t i = 0; i < nb; i++)
            for (size_t l = 0; l < X16_ROWS; l++) {
                if (to_x16)
                    move_block(L, q8, i, l, src + l * rb + i * L->block, dst, 1);
                else
                    move_block(L, q8, i, l, src, dst + l * rb + i * L->block, 0);
            }
}

X16_INLINE void move(int type, int64_t ne0, const uint8_t *src, uint8_t *dst, int64_t groups, int to_x16) {
    switch (type) {
    case GGML_TYPE_Q8_0: move_groups(&LAYOUT_Q8_0, 1, ne0, src, dst, groups, to_x16); break;
    case GGML_TYPE_Q4_0: move_groups(&LAYOUT_Q4_0, 0, ne0, src, dst, groups, to_x16); break;
    case GGML_TYPE_Q4_K: move_groups(&LAYOUT_Q4_K, 0, ne0, src, dst, groups, to_x16); break;
    case GGML_TYPE_Q6_K: move_groups(&LAYOUT_Q6_K, 0, ne0, src, dst, groups, to_x16); break;
    default: CAI_ASSERT(0 && "x16: a type it does not take");
    }
}

void x16_pack(int type, int64_t ne0, const uint8_t *src, uint8_t *dst, int64_t groups) {
    move(type, ne0, src, dst, groups, 1);
}

void x16_unpack(int type, int64_t ne0, const uint8_t *src, uint8_t *dst, int64_t groups) {
    move(type, ne0, src, dst, groups, 0);
}

X16_INLINE void get_row_with(const block_layout *L, int type, int q8, int64_t ne0, const uint8_t *group, int l,
                             float *out) {
    uint8_t b[sizeof(block_q6_K)];
    _Static_assert(sizeof(block_q6_K) >= sizeof(block_q4_K) && sizeof(block_q6_K) >= sizeof(block_q8_0), "block buffer");
    for (size_t i = 0; i < (size_t)(ne0 / L->values); i++) {
        move_block(L, q8, i, (size_t)l, group, b, 0);
        quant_dequantize_row(type, b, out + (size_t)L->values * i, L->values);
    }
}

void x16_get_row(int type, int64_t ne0, const uint8_t *group, int l, float *out) {
    switch (type) {
    case GGML_TYPE_Q8_0: get_row_with(&LAYOUT_Q8_0, type, 1, ne0, group, l, out); break;
    case GGML_TYPE_Q4_0: get_row_with(&LAYOUT_Q4_0, type, 0, ne0, group, l, out); break;
    case GGML_TYPE_Q4_K: get_row_with(&LAYOUT_Q4_K, type, 0, ne0, group, l, out); break;
    case GGML_TYPE_Q6_K: get_row_with(&LAYOUT_Q6_K, type, 0, ne0, group, l, out); break;
    default: CAI_ASSERT(0 && "x16: a type it does not take");
    }
}

/* ---- the rewrite in memory ----------------------------------------------- */

/* A batch of whole groups of one tensor, bytes [off, off + len) of the model. */
typedef struct {
    uint64_t off;
    size_t len;
    int type;
    int64_t ne0;
} rewrite_item;

typedef struct {
    uint8_t *base;
    const rewrite_item *items;
    size_t n_items, buf_bytes;
    atomic_size_t next;
    atomic_int failed;      /* a worker found no memory */
} rewrite_job;

/* The bytes per batch: a copy of about this much stays in L2. */
enum { REWRITE_BATCH = 256 << 10 };

static void rewrite_worker(void *ctx, int ith, int nth) {
    (void)ith, (void)nth;
    rewrite_job *j = ctx;
    uint8_t *src = malloc(j->buf_bytes);
    if (src == NULL) {
        atomic_store(&j->failed, 1);
        return;
    }
    for (size_t i; !atomic_load(&j->failed) && (i = atomic_fetch_add(&j->next, 1)) < j->n_items;) {
        const rewrite_item *it = &j->items[i];
        const int64_t groups = (int64_t)(it->len / (X16_ROWS * ggml_type_row_size(it->type, it->ne0)));
        memcpy(src, j->base + it->off, it->len);
        x16_pack(it->type, it->ne0, src, j->base + it->off, groups);
    }
    secure_wipe(src, j->buf_bytes); /* a copy of the plaintext weights */
    free(src);
}

cai_status x16_rewrite_mem(const gguf_file *g, uint8_t *base, int n_threads, uint64_t *out_bytes) {
    *out_bytes = 0;
    size_t n = 0, cap = 0, most = 0;
    rewrite_item *items = NULL;
    pool *p = NULL;
    cai_status st = CAI_OK;
    for (size_t i = 0; i < gguf_n_tensors(g) && st == CAI_OK; i++) {
        const gguf_tensor *t = gguf_tensor_at(g, i);
        if (!x16_eligible(t->type, t->n_dims, t->ne))
            continue;
        const size_t gb = X16_ROWS * ggml_type_row_size(t->type, t->ne[0]);
        const int64_t groups = t->ne[1] / X16_ROWS, per = gb < REWRITE_BATCH ? (int64_t)(REWRITE_BATCH / gb) : 1;
        most = (size_t)per * gb > most ? (size_t)per * gb : most;
        for (int64_t g0 = 0; g0 < groups && st == CAI_OK; g0 += per) {
            if (n == cap) {
                rewrite_item *v = realloc(items, (cap = cap ? 2 * cap : 1024) * sizeof(*items));
                if (v == NULL) {
                    st = CAI_ERR_NOMEM;
                    break;
                }
                items = v;
            }
            const int64_t k = groups - g0 < per ? groups - g0 : per;
            items[n++] = (rewrite_item){.off = (uint64_t)(t->data - (const uint8_t *)base) + (uint64_t)g0 * gb,
                                        .len = (size_t)k * gb, .type = t->type, .ne0 = t->ne[0]};
            *out_bytes += (uint64_t)k * gb;
        }
    }
    if (st == CAI_OK && n > 0 && (st = pool_new(n_threads, &p)) == CAI_OK) {
        rewrite_job j = {.base = base, .items = items, .n_items = n, .buf_bytes = most};
        atomic_init(&j.next, 0);
        atomic_init(&j.failed, 0);
        pool_run(p, rewrite_worker, &j);
        if (atomic_load(&j.failed))
            st = cai_fail(CAI_ERR_NOMEM, "no memory to rewrite the weights into the x16 layout");
    }
    pool_free(p);
    free(items);
    return st;
}

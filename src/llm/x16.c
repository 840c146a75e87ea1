/* x16.c - the x16 weight layout (x16.h): eligibility, the rewrite and its
 * inverse, and one row's dequantization. Scalar: it runs once per load
 * (pwrite-bound) and, for get_row, once per token. */
#include "llm/x16.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/file.h"
#include "common/pool.h"
#include "llm/quant.h"

_Static_assert(X16_ROWS * sizeof(block_q8_0) == X16_QUANTS_Q8_0 + 2 * X16_ROWS, "x16 Q8_0 block of 16 rows");
_Static_assert(X16_ROWS * sizeof(block_q4_0) == X16_QUANTS_Q4_0 + 2 * X16_ROWS, "x16 Q4_0 block of 16 rows");

int x16_eligible(int type, int n_dims, const int64_t ne[4]) {
    if (type != GGML_TYPE_Q8_0 && type != GGML_TYPE_Q4_0)
        return 0;
    for (int d = 2; d < 4; d++)
        if (ne[d] != 1)
            return 0;
    return n_dims >= 2 && ne[0] > 0 && ne[0] % 32 == 0 && ne[1] >= X16_ROWS;
}

/* The file's block bytes and x16's quant bytes per block of 16 rows. */
static void sizes(int type, size_t *block, size_t *quants) {
    const int q4 = type == GGML_TYPE_Q4_0;
    *block = q4 ? sizeof(block_q4_0) : sizeof(block_q8_0);
    *quants = q4 ? X16_QUANTS_Q4_0 : X16_QUANTS_Q8_0;
}

/* Q8_0's quants are stored unsigned: a xor of each byte's sign bit. */
static uint32_t flip(int type, uint32_t v) { return type == GGML_TYPE_Q8_0 ? v ^ 0x80808080u : v; }

void x16_pack(int type, int64_t ne0, const uint8_t *src, uint8_t *dst, int64_t groups) {
    size_t bs, qb;
    sizes(type, &bs, &qb);
    const size_t nb = (size_t)ne0 / 32, rb = nb * bs;
    for (int64_t g = 0; g < groups; g++, src += X16_ROWS * rb, dst += X16_ROWS * rb)
        for (size_t i = 0; i < nb; i++)
            for (size_t l = 0; l < X16_ROWS; l++) {
                const uint8_t *b = src + l * rb + i * bs;
                memcpy(dst + x16_scales_at(qb, i) + 2 * l, b, 2);
                for (size_t k = 0; k < qb / 64; k++) {
                    uint32_t v;
                    memcpy(&v, b + 2 + 4 * k, 4);
                    v = flip(type, v);
                    memcpy(dst + x16_quants_at(qb, i) + 64 * k + 4 * l, &v, 4);
                }
            }
}

/* Block i of row l of the x16 group at |src| into |b| (the file's layout). */
static void unpack_block(int type, const uint8_t *src, size_t i, size_t l, uint8_t *b) {
    size_t bs, qb;
    sizes(type, &bs, &qb);
    memcpy(b, src + x16_scales_at(qb, i) + 2 * l, 2);
    for (size_t k = 0; k < qb / 64; k++) {
        uint32_t v;
        memcpy(&v, src + x16_quants_at(qb, i) + 64 * k + 4 * l, 4);
        v = flip(type, v);
        memcpy(b + 2 + 4 * k, &v, 4);
    }
}

void x16_unpack(int type, int64_t ne0, const uint8_t *src, uint8_t *dst, int64_t groups) {
    size_t bs, qb;
    sizes(type, &bs, &qb);
    const size_t nb = (size_t)ne0 / 32, rb = nb * bs;
    for (int64_t g = 0; g < groups; g++, src += X16_ROWS * rb, dst += X16_ROWS * rb)
        for (size_t i = 0; i < nb; i++)
            for (size_t l = 0; l < X16_ROWS; l++)
                unpack_block(type, src, i, l, dst + l * rb + i * bs);
}

void x16_get_row(int type, int64_t ne0, const uint8_t *group, int l, float *out) {
    const size_t nb = (size_t)ne0 / 32;
    uint8_t b[sizeof(block_q8_0)];
    for (size_t i = 0; i < nb; i++) {
        unpack_block(type, group, i, (size_t)l, b);
        quant_dequantize_row(type, b, out + 32 * i, 32);
    }
}

/* ---- the rewrite of a memfd --------------------------------------------- */

/* A batch of whole groups of one tensor, bytes [off, off + len) of the file. */
typedef struct {
    uint64_t off;
    size_t len;
    int type;
    int64_t ne0;
} rewrite_item;

typedef struct {
    int fd;
    const rewrite_item *items;
    size_t n_items, buf_bytes;
    atomic_size_t next;
    atomic_int failed;      /* the first failure claims err and msg */
    cai_status err;
    char msg[256];
} rewrite_job;

/* The bytes per batch: two buffers of about this much stay in L2. */
enum { REWRITE_BATCH = 256 << 10 };

static void rewrite_worker(void *ctx, int ith, int nth) {
    (void)ith, (void)nth;
    rewrite_job *j = ctx;
    uint8_t *src = malloc(j->buf_bytes), *dst = malloc(j->buf_bytes);
    cai_status st = src && dst ? CAI_OK : CAI_ERR_NOMEM;
    for (size_t i; st == CAI_OK && !atomic_load(&j->failed) && (i = atomic_fetch_add(&j->next, 1)) < j->n_items;) {
        const rewrite_item *it = &j->items[i];
        const int64_t groups = (int64_t)(it->len / (X16_ROWS * ggml_type_row_size(it->type, it->ne0)));
        if ((st = file_pread_full(j->fd, src, it->len, it->off)) == CAI_OK) {
            x16_pack(it->type, it->ne0, src, dst, groups);
            st = file_pwrite_full(j->fd, dst, it->len, it->off);
        }
    }
    if (st != CAI_OK && atomic_exchange(&j->failed, 1) == 0) {
        j->err = st;
        snprintf(j->msg, sizeof(j->msg), "%s", cai_errmsg(st));
    }
    free(src);
    free(dst);
}

cai_status x16_rewrite_fd(int fd, const gguf_file *g, const void *base, int n_threads, uint64_t *out_bytes) {
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
        rewrite_job j = {.fd = fd, .items = items, .n_items = n, .buf_bytes = most};
        atomic_init(&j.next, 0);
        atomic_init(&j.failed, 0);
        pool_run(p, rewrite_worker, &j);
        if (atomic_load(&j.failed))
            st = cai_fail(j.err, "rewriting the weights into the x16 layout: %s", j.msg);
    }
    pool_free(p);
    free(items);
    return st;
}

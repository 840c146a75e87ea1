/* matmul.c - the reference matrix product: dequantize a weight row once per
 * batch, then dot it with every activation row. */
#include "llm/matmul.h"

#include <stdatomic.h>
#include <stdlib.h>

#include "gguf/ggml_type.h"
#include "llm/quant.h"
#include "llm/x16.h"

llm_tensor llm_tensor_make(const char *name, int type, int64_t ne0, int64_t ne1, const uint8_t *data) {
    return llm_tensor_make_layout(name, type, ne0, ne1, data, LLM_LAYOUT_FILE);
}

llm_tensor llm_tensor_make_layout(const char *name, int type, int64_t ne0, int64_t ne1, const uint8_t *data,
                                  int layout) {
    llm_tensor t = {.name = name, .type = type, .ne0 = ne0, .ne1 = ne1, .row_bytes = ggml_type_row_size(type, ne0),
                    .data = data, .layout = layout, .k = kernel_get(type, kernel_level())};
    const int64_t ne[4] = {ne0, ne1, 1, 1};
    CAI_ASSERT(layout == LLM_LAYOUT_FILE || (layout == LLM_LAYOUT_X16 && t.k.x16_exact && x16_eligible(type, 2, ne)));
    return t;
}

void tensor_get_row(const llm_tensor *w, int64_t i, float *out) {
    const int64_t groups = w->layout == LLM_LAYOUT_X16 ? w->ne1 / X16_ROWS : 0;
    if (i < groups * X16_ROWS)
        x16_get_row(w->type, w->ne0, w->data + (size_t)(i / X16_ROWS) * X16_ROWS * w->row_bytes, (int)(i % X16_ROWS),
                    out);
    else
        quant_dequantize_row(w->type, w->data + (size_t)i * w->row_bytes, out, w->ne0);
}

typedef struct {
    const llm_tensor *w;
    const float *x;
    int T;
    float *y;
    kernel_dot k;
    block_x8 *xq;      /* activations quantized, T rows of ne0/32 blocks */
    int8_t *qs;        /* or, for a several-rows kernel, by field: */
    float *d, *s, *s16; /* kernel_xrows's layout (s16 for Q6_K only) */
    kernel_xrows xr;   /* the same, read-only, for the kernel */
    const uint8_t *tiled; /* per activation row: through tiles */
    int exact_tiles;      /* the rows not flagged: through exact tiles */
    int x16;              /* the weights in x16: flagged rows through
                             k.x16, the others through k.x16_exact */
    uint8_t *tiles;       /* with tiles: one per thread, tile_bytes each */
    size_t tile_bytes;
    atomic_llong next_group; /* x16: the first group not yet taken */
} matmul_job;

/* How activation row |t| goes: 0 through the row kernels, 1 through the
 * tiles (or kernel_dot.x16), 2 through the exact tiles (kernel_dot.tile_exact
 * or x16_exact). */
static int row_kind(const matmul_job *j, int t) {
    return !j->tiles && !j->x16 ? 0 : j->tiled && j->tiled[t] ? 1 : j->exact_tiles || j->x16 ? 2 : 0;
}

/* The end of the run of activation rows from |t| on that go the same way
 * as row t. */
static int run_end(const matmul_job *j, int t) {
    const int kind = row_kind(j, t);
    while (++t < j->T && row_kind(j, t) == kind)
        ;
    return t;
}

static void quantize_worker(void *ctx, int ith, int nth) {
    matmul_job *j = ctx;
    const int64_t n = j->w->ne0, nb = n / 32;
    for (int t = ith; t < j->T; t += nth) {
        const float *x = j->x + (size_t)t * (size_t)n;
        if (j->k.qn)
            kernel_quantize_xrow(x, n, j->qs + (size_t)t * (size_t)n, j->d + (size_t)t * (size_t)nb,
                                 j->s + (size_t)t * (size_t)nb, j->s16 ? j->s16 + (size_t)t * 2 * (size_t)nb : NULL);
        else
            kernel_quantize_x8(x, j->xq + (size_t)t * (size_t)nb, n);
    }
}

/* With a several-rows kernel: weight rows in chunks small enough to stay in
 * the core's L2 while each group of up to four activation rows passes over
 * them, so each weight byte comes from memory once per batch and each
 * unpacked block serves four rows. */
enum { ROW_CHUNK = 16, ROW_GROUP = 4 };

/* Weight rows r0 .. r1 with the activation rows not taken by tiles, or
 * with all of them (|all|: the weight rows past the last whole tile). */
static void matmul_rows(const matmul_job *j, int64_t r0, int64_t r1, int all) {
    const llm_tensor *w = j->w;
    const size_t N = (size_t)w->ne1;
    for (int64_t c0 = r0; c0 < r1; c0 += ROW_CHUNK) {
        int64_t c1 = c0 + ROW_CHUNK < r1 ? c0 + ROW_CHUNK : r1;
        for (int a = 0, b; a < j->T; a = b) {
            b = all ? j->T : run_end(j, a);
            if (!all && row_kind(j, a))
                continue;
            for (int t = a; t < b; t += ROW_GROUP) {
                int nt = b - t < ROW_GROUP ? b - t : ROW_GROUP;
                for (int64_t r = c0; r < c1; r++) {
                    float o[ROW_GROUP];
                    j->k.qn(w->data + (size_t)r * w->row_bytes, &j->xr, t, nt, o);
                    for (int u = 0; u < nt; u++)
                        j->y[(size_t)(t + u) * N + (size_t)r] = o[u];
                }
            }
        }
    }
}

/* With tiles: each 16 weight rows packed once, then multiplied by the
 * flagged activation rows eight at a time; the other activation rows,
 * and all of them for the weight rows past the last whole tile, go to
 * matmul_rows. */
static void matmul_tiles(const matmul_job *j, uint8_t *tile, int64_t r0, int64_t r1) {
    const llm_tensor *w = j->w;
    const size_t N = (size_t)w->ne1;
    int64_t r = r0;
    for (; r + KERNEL_TILE_ROWS <= r1; r += KERNEL_TILE_ROWS) {
        j->k.pack(w->data + (size_t)r * w->row_bytes, w->row_bytes, w->ne0, tile);
        for (int a = 0, b; a < j->T; a = b) {
            b = run_end(j, a);
            const int kind = row_kind(j, a);
            for (int t = a; kind && t < b; t += KERNEL_TILE_XROWS) {
                int nt = b - t < KERNEL_TILE_XROWS ? b - t : KERNEL_TILE_XROWS;
                (kind == 1 ? j->k.tile : j->k.tile_exact)(tile, &j->xr, t, nt, j->y + (size_t)t * N + (size_t)r, N);
            }
        }
    }
    matmul_rows(j, r0, r, 0);
    matmul_rows(j, r, r1, 1);
}

/* x16: groups g0 .. g1 of 16 weight rows, each read once for all the
 * activation rows, eight at a time (no packing: the group is the tile).
 * With |tile| (kernel_dot.x16_tile), a run of more than eight rows takes
 * the group unpacked once into it, through the tiles: the same values
 * (x16 rounds as tile, x16_exact as tile_exact) without unpacking the
 * group again for every eight rows. */
static void matmul_x16(const matmul_job *j, uint8_t *tile, int64_t g0, int64_t g1) {
    const llm_tensor *w = j->w;
    const size_t N = (size_t)w->ne1;
    for (int64_t g = g0; g < g1; g++) {
        const uint8_t *grp = w->data + (size_t)g * X16_ROWS * w->row_bytes;
        int unpacked = 0;
        for (int a = 0, b; a < j->T; a = b) {
            b = run_end(j, a);
            const int kind = row_kind(j, a), tiled = tile && b - a > KERNEL_TILE_XROWS;
            if (tiled && !unpacked) {
                j->k.x16_tile(grp, 0, w->ne0, tile);
                unpacked = 1;
            }
            const kernel_tile_dot f = tiled ? (kind == 1 ? j->k.tile : j->k.tile_exact)
                                            : (kind == 1 ? j->k.x16 : j->k.x16_exact);
            for (int t = a; t < b; t += KERNEL_TILE_XROWS) {
                int nt = b - t < KERNEL_TILE_XROWS ? b - t : KERNEL_TILE_XROWS;
                f(tiled ? tile : grp, &j->xr, t, nt, j->y + (size_t)t * N + (size_t)g * X16_ROWS, N);
            }
        }
    }
}

/* x16 groups go in chunks of about X16_CHUNK bytes, taken in order from
 * one counter, so that a core that streams faster (a VM's cores do not
 * always) takes more of them. Each chunk is one stream for the hardware
 * prefetcher: measured on Zen 4, chunks of 512 KiB stream as fast as
 * halves, of 128 KiB 6% slower, of 32 KiB 20%. A chunk is also at most a
 * quarter of a thread's share, so small matrices are still split. */
enum { X16_CHUNK = 1 << 20 };

/* Each thread takes a contiguous range of weight rows (whole tiles where
 * tiles are used; x16: chunks of groups) and dots every row with all T
 * activation rows, so each weight byte is read once per batch. */
static void matmul_worker(void *ctx, int ith, int nth) {
    matmul_job *j = ctx;
    const llm_tensor *w = j->w;
    if (j->x16) { /* whole groups; the last thread also the rows past them */
        const int64_t groups = w->ne1 / X16_ROWS, share = groups / (4 * (int64_t)nth);
        int64_t chunk = (int64_t)(X16_CHUNK / (X16_ROWS * w->row_bytes));
        chunk = chunk > share ? share : chunk;
        chunk = chunk < 1 ? 1 : chunk;
        uint8_t *tile = j->tiles ? j->tiles + (size_t)ith * j->tile_bytes : NULL;
        for (int64_t g0; (g0 = atomic_fetch_add_explicit(&j->next_group, chunk, memory_order_relaxed)) < groups;)
            matmul_x16(j, tile, g0, g0 + chunk < groups ? g0 + chunk : groups);
        if (ith == nth - 1)
            matmul_rows(j, groups * X16_ROWS, w->ne1, 1);
        return;
    }
    int64_t per = (w->ne1 + nth - 1) / nth;
    if (j->tiles)
        per = (per + KERNEL_TILE_ROWS - 1) / KERNEL_TILE_ROWS * KERNEL_TILE_ROWS;
    int64_t r0 = per * ith < w->ne1 ? per * ith : w->ne1, r1 = r0 + per < w->ne1 ? r0 + per : w->ne1;
    if (j->tiles) {
        matmul_tiles(j, j->tiles + (size_t)ith * j->tile_bytes, r0, r1);
        return;
    }
    if (j->k.qn) {
        matmul_rows(j, r0, r1, 1);
        return;
    }
    const size_t N = (size_t)w->ne1, nb = (size_t)(w->ne0 / 32);
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = w->data + (size_t)r * w->row_bytes;
        if (j->k.q) {
            for (int t = 0; t < j->T; t++)
                j->y[(size_t)t * N + (size_t)r] = j->k.q(row, j->xq + (size_t)t * nb, w->ne0);
        } else {
            for (int t = 0; t < j->T; t++)
                j->y[(size_t)t * N + (size_t)r] = j->k.f(row, j->x + (size_t)t * (size_t)w->ne0, w->ne0);
        }
    }
}

/* The layout of the activation scratch for |T| rows of |w| with kernel |k|:
 * its bytes, and where s16 starts (0: none). */
static size_t x_layout(const llm_tensor *w, const kernel_dot *k, int T, int tiles16, size_t *s16) {
    const size_t blocks = (size_t)T * (size_t)(w->ne0 / 32);
    *s16 = tiles16 ? 2 * blocks : 0;
    return k->qn ? blocks * (32 + 2 * sizeof(float)) + *s16 * sizeof(float) : k->q ? blocks * sizeof(block_x8) : 0;
}

static size_t round64(size_t n) { return (n + 63) / 64 * 64; }

void matmul_scratch_need(const llm_tensor *w, int T, int n_threads, size_t *x_bytes, size_t *tile_bytes) {
    const kernel_dot *k = &w->k;
    size_t s16, x = round64(x_layout(w, k, T, k->tile && k->tile_block == KERNEL_TILE_BLOCK16, &s16));
    const int tiles = k->tile && (w->layout != LLM_LAYOUT_X16 || (k->x16_tile && T > KERNEL_TILE_XROWS));
    size_t t = tiles ? round64((size_t)n_threads * (size_t)(w->ne0 / 32) * k->tile_block) : 0;
    *x_bytes = x > *x_bytes ? x : *x_bytes;
    *tile_bytes = t > *tile_bytes ? t : *tile_bytes;
}

void matmul_with(pool *p, const llm_tensor *w, const float *x, int T, const uint8_t *tiled,
                 const matmul_scratch *s, float *y) {
    matmul_job j = {.w = w, .x = x, .T = T, .y = y, .tiled = tiled, .k = w->k};
    CAI_ASSERT(j.k.q || j.k.f);
    if (T <= 0)
        return;
    /* Flagged rows take the tiles; the others take the exact tiles, which
     * round as the row kernels do, when there are enough of them. */
    int flagged = 0;
    for (int t = 0; tiled && t < T; t++)
        flagged += tiled[t] != 0;
    const int exact_min = j.k.tile_block == KERNEL_TILE_BLOCK16 ? MATMUL_EXACT_TILE_MIN16 : MATMUL_EXACT_TILE_MIN;
    j.x16 = w->layout == LLM_LAYOUT_X16;
    j.exact_tiles = !j.x16 && j.k.tile_exact && T - flagged >= exact_min;
    const int use_tiles = !j.x16 && j.k.tile && (flagged || j.exact_tiles) && w->row_bytes < ((size_t)1 << 26);
    if (j.k.q) {
        const size_t blocks = (size_t)T * (size_t)(w->ne0 / 32);
        size_t s16;
        CAI_ASSERT(x_layout(w, &j.k, T, j.k.tile && j.k.tile_block == KERNEL_TILE_BLOCK16, &s16) <= s->x_bytes);
        j.xq = s->x;
        j.d = s->x;
        j.s = j.d + blocks;
        j.s16 = s16 ? j.s + blocks : NULL;
        j.qs = (int8_t *)(j.s + blocks + s16);
        j.xr = (kernel_xrows){j.qs, j.d, j.s, j.s16, w->ne0};
        if (T > 1)
            pool_run(p, quantize_worker, &j);
        else
            quantize_worker(&j, 0, 1);
    }
    if (use_tiles || (j.x16 && j.k.x16_tile && T > KERNEL_TILE_XROWS)) {
        j.tile_bytes = (size_t)(w->ne0 / 32) * j.k.tile_block;
        j.tiles = s->tiles;
        CAI_ASSERT((size_t)pool_size(p) * j.tile_bytes <= s->tile_bytes);
    }
    pool_run(p, matmul_worker, &j);
}

cai_status matmul(pool *p, const llm_tensor *w, const float *x, int T, const uint8_t *tiled, float *y) {
    matmul_scratch s = {0};
    matmul_scratch_need(w, T > 0 ? T : 1, pool_size(p), &s.x_bytes, &s.tile_bytes);
    s.x = s.x_bytes ? aligned_alloc(64, s.x_bytes) : NULL;
    s.tiles = s.tile_bytes ? aligned_alloc(64, s.tile_bytes) : NULL;
    cai_status st = (s.x_bytes && !s.x) || (s.tile_bytes && !s.tiles) ? CAI_ERR_NOMEM : CAI_OK;
    if (st == CAI_OK)
        matmul_with(p, w, x, T, tiled, &s, y);
    free(s.x);
    free(s.tiles);
    return st;
}

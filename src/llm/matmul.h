/* matmul.h - products of quantized weight matrices with float activations
 * (internal to llm).
 *
 * A weight matrix is stored as ggml does it: ne1 rows of ne0 values, each row
 * ne0 / block_size blocks of its type. matmul computes Y = X W^T for T rows
 * of activations at once (a prompt), splitting the weight rows across the
 * pool, so each weight row is read from memory once per batch. */
#ifndef CAI_LLM_MATMUL_H
#define CAI_LLM_MATMUL_H

#include <stddef.h>
#include <stdint.h>

#include "common/pool.h"
#include "common/status.h"
#include "llm/kernels.h"

typedef struct {
    const char *name;
    int type;          /* a ggml_type */
    int64_t ne0, ne1;  /* row length, rows */
    size_t row_bytes;
    const uint8_t *data;
    int layout;        /* LLM_LAYOUT_FILE, or LLM_LAYOUT_X16 (x16.h) */
    kernel_dot k;      /* its kernels at this CPU's level, chosen once */
} llm_tensor;

/* llm_tensor_make describes |ne1| rows of |ne0| values of |type| at |data|
 * in the file's layout and resolves its kernels for this CPU (matmul
 * never chooses per call). llm_tensor_make_layout is the same for bytes
 * in |layout|: LLM_LAYOUT_X16 only for a tensor x16_eligible at a level
 * whose kernels have x16 (kernel_dot.x16_exact). */
llm_tensor llm_tensor_make(const char *name, int type, int64_t ne0, int64_t ne1, const uint8_t *data);
llm_tensor llm_tensor_make_layout(const char *name, int type, int64_t ne0, int64_t ne1, const uint8_t *data,
                                  int layout);

/* matmul sets y[t * w->ne1 + n] = dot(row n of w, x + t * w->ne0) for
 * t < T, n < ne1, on every thread of |p|. Activation rows flagged in
 * |tiled| (optional) go through the packed-tile kernels where the weight
 * type has them, the others through the row kernels. The two round
 * differently, so a row's result depends on its own flag only, never on
 * the other rows of the batch. Tiles pay for their packing from about
 * MATMUL_TILE_MIN flagged rows on. Where the type has exact tiles
 * (kernel_dot.tile_exact, which round as the row kernels do), the rows
 * not flagged take them when there are MATMUL_EXACT_TILE_MIN or more
 * (Q6_K's, with a scale per 16 values: MATMUL_EXACT_TILE_MIN16): each
 * one's result is still what it gets alone, or with any other batch (a
 * decode step of many streams).
 *
 * A tensor in the x16 layout (x16.h) has no packing and no threshold: its
 * groups of 16 rows go through kernel_dot.x16 for the flagged activation
 * rows and kernel_dot.x16_exact for all the others, whatever their count
 * (one stream's decode included), which give what the tiles and the row
 * kernels give on the file's layout, bit for bit; threads split the rows
 * in whole groups, and the rows past the last group take the row kernels. */
enum { MATMUL_TILE_MIN = 12, MATMUL_EXACT_TILE_MIN = 5, MATMUL_EXACT_TILE_MIN16 = 8 };

/* Scratch for matmul_with: the activations quantized (x, 64-byte aligned)
 * and one packed tile per thread (tiles, 64-byte aligned). */
typedef struct {
    void *x;
    size_t x_bytes;
    uint8_t *tiles;
    size_t tile_bytes;
} matmul_scratch;

/* matmul_scratch_need adds to |x_bytes| and |tile_bytes| (max, not sum)
 * what a product of up to |T| rows with |w| needs on |n_threads|
 * threads, tiles or not; both stay multiples of 64. */
void matmul_scratch_need(const llm_tensor *w, int T, int n_threads, size_t *x_bytes, size_t *tile_bytes);

/* matmul_with computes the product with |s|, which must hold what
 * matmul_scratch_need asked for |w|, T and pool_size(p): nothing is
 * allocated, nothing can fail. */
void matmul_with(pool *p, const llm_tensor *w, const float *x, int T, const uint8_t *tiled,
                 const matmul_scratch *s, float *y);

/* matmul is matmul_with on scratch of its own (tests and benchmarks):
 * CAI_ERR_NOMEM when that cannot be had, y then unchanged. */
cai_status matmul(pool *p, const llm_tensor *w, const float *x, int T, const uint8_t *tiled, float *y);

/* tensor_get_row dequantizes row |i| of |w| into |out| (ne0 floats). */
void tensor_get_row(const llm_tensor *w, int64_t i, float *out);

#endif

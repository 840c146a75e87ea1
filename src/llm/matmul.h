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

typedef struct {
    const char *name;
    int type;          /* a ggml_type */
    int64_t ne0, ne1;  /* row length, rows */
    size_t row_bytes;
    const uint8_t *data;
} llm_tensor;

/* matmul sets y[t * w->ne1 + n] = dot(row n of w, x + t * w->ne0) for
 * t < T, n < ne1, on every thread of |p|. Activation rows flagged in
 * |tiled| (optional) go through the packed-tile kernels where the weight
 * type has them, the others through the row kernels. The two round
 * differently, so a row's result depends on its own flag only, never on
 * the other rows of the batch. Tiles pay for their packing from about
 * MATMUL_TILE_MIN flagged rows on. */
enum { MATMUL_TILE_MIN = 12 };
void matmul(pool *p, const llm_tensor *w, const float *x, int T, const uint8_t *tiled, float *y);

/* tensor_get_row dequantizes row |i| of |w| into |out| (ne0 floats). */
void tensor_get_row(const llm_tensor *w, int64_t i, float *out);

#endif

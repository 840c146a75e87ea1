/* matmul.c - the reference matrix product: dequantize a weight row once per
 * batch, then dot it with every activation row. */
#include "llm/matmul.h"

#include <stdlib.h>

#include "llm/kernels.h"
#include "llm/quant.h"

void tensor_get_row(const llm_tensor *w, int64_t i, float *out) {
    quant_dequantize_row(w->type, w->data + (size_t)i * w->row_bytes, out, w->ne0);
}

typedef struct {
    const llm_tensor *w;
    const float *x;
    int T;
    float *y;
    kernel_dot k;
    block_x8 *xq; /* activations quantized, T rows of ne0/32 blocks */
} matmul_job;

static void quantize_worker(void *ctx, int ith, int nth) {
    matmul_job *j = ctx;
    int64_t nb = j->w->ne0 / 32;
    for (int t = ith; t < j->T; t += nth)
        kernel_quantize_x8(j->x + (size_t)t * (size_t)j->w->ne0, j->xq + (size_t)t * (size_t)nb, j->w->ne0);
}

/* Each thread takes a contiguous range of weight rows and dots every row
 * with all T activation rows, so each weight byte is read once per batch. */
static void matmul_worker(void *ctx, int ith, int nth) {
    matmul_job *j = ctx;
    const llm_tensor *w = j->w;
    int64_t per = (w->ne1 + nth - 1) / nth, r0 = per * ith, r1 = r0 + per;
    if (r1 > w->ne1)
        r1 = w->ne1;
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

void matmul(pool *p, const llm_tensor *w, const float *x, int T, float *y) {
    matmul_job j = {w, x, T, y, kernel_get(w->type, kernel_level()), NULL};
    CAI_ASSERT(j.k.q || j.k.f);
    if (T <= 0)
        return;
    if (j.k.q) {
        j.xq = malloc((size_t)T * (size_t)(w->ne0 / 32) * sizeof(block_x8));
        CAI_ASSERT(j.xq != NULL);
        if (T > 1)
            pool_run(p, quantize_worker, &j);
        else
            quantize_worker(&j, 0, 1);
    }
    pool_run(p, matmul_worker, &j);
    free(j.xq);
}

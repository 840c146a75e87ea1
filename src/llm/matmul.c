/* matmul.c - the reference matrix product: dequantize a weight row once per
 * batch, then dot it with every activation row. */
#include "llm/matmul.h"

#include <stdlib.h>

#include "llm/quant.h"

void tensor_get_row(const llm_tensor *w, int64_t i, float *out) {
    quant_dequantize_row(w->type, w->data + (size_t)i * w->row_bytes, out, w->ne0);
}

typedef struct {
    const llm_tensor *w;
    const float *x;
    int T;
    float *y;
} matmul_job;

static float dot_f32(const float *a, const float *b, int64_t n) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; i++)
        s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

static void matmul_worker(void *ctx, int ith, int nth) {
    matmul_job *j = ctx;
    const llm_tensor *w = j->w;
    int64_t per = (w->ne1 + nth - 1) / nth, r0 = per * ith, r1 = r0 + per;
    if (r1 > w->ne1)
        r1 = w->ne1;
    if (r0 >= r1)
        return;
    float *row = malloc((size_t)w->ne0 * sizeof(float));
    CAI_ASSERT(row != NULL);
    for (int64_t r = r0; r < r1; r++) {
        const float *wr = row;
        if (w->type == QUANT_F32)
            wr = (const float *)(w->data + (size_t)r * w->row_bytes);
        else
            tensor_get_row(w, r, row);
        for (int t = 0; t < j->T; t++)
            j->y[(size_t)t * (size_t)w->ne1 + (size_t)r] =
                dot_f32(wr, j->x + (size_t)t * (size_t)w->ne0, w->ne0);
    }
    free(row);
}

void matmul(pool *p, const llm_tensor *w, const float *x, int T, float *y) {
    matmul_job j = {w, x, T, y};
    pool_run(p, matmul_worker, &j);
}

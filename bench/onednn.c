/* bench/onednn.c - prefill matrix products: cai's quantized matmul against
 * oneDNN (issue 3).
 *
 * For the three Qwen2.5-7B projection shapes, with M = 64 prompt tokens, it
 * times Y[M x N] = X[M x K] W^T, W being N rows of K weights as cai stores
 * them:
 *   cai q4_0, q8_0    matmul() on a 2-thread pool; the activations are
 *                     quantized to 8 bits inside the call, so that is timed;
 *   onednn f32, bf16  oneDNN matmul on the same weights, reordered once (not
 *                     timed) into the layout and type the primitive picks;
 *   onednn u8s8       u8 activations x s8 weights -> f32 with one scale per
 *                     output channel; X is converted outside the timed loop.
 * The float weights are Q8_0-rounded, so cai q8_0 and oneDNN f32 multiply
 * the same matrix. Each figure is the best of RUNS calls after a warm-up.
 * For the first shape every result is compared with oneDNN f32's, a sanity
 * check that all compute the same product.
 *
 * Build and run with bench/onednn.sh (oneDNN's threads: OMP_NUM_THREADS). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>

#include "common/pool.h"
#include "llm/matmul.h"
#include "llm/quant.h"

#define M 64
#define RUNS 5
#define THREADS 2

static const int shapes[][2] = {{3584, 3584}, {3584, 18944}, {18944, 3584}}; /* K, N */
#define SHAPES ((int)(sizeof(shapes) / sizeof(shapes[0])))

enum { CAI_Q4_0, CAI_Q8_0, DNNL_F32, DNNL_BF16, DNNL_U8S8, METHODS };
static const char *const method_name[METHODS] = {"cai q4_0", "cai q8_0", "onednn f32", "onednn bf16",
                                                 "onednn u8s8"};

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void *xmalloc(size_t n) {
    void *p = malloc(n);
    if (p == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

static void dnnl_check(dnnl_status_t s, const char *what) {
    if (s != dnnl_success) {
        fprintf(stderr, "onednn: %s: %s\n", what, dnnl_status2str(s));
        exit(1);
    }
}

/* frand returns a uniform float in [-1, 1) (xorshift64). */
static float frand(void) {
    static uint64_t s = 0x9e3779b97f4a7c15u;
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return (float)(s >> 40) / (float)(1 << 23) - 1.0f;
}

static uint16_t to_bf16(float f) { /* round to nearest even */
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* cai_time quantizes |w| (N x K floats) to |type| and returns the best ms of
 * matmul() over RUNS calls; |y| gets the product; *bytes the weight bytes. */
static double cai_time(pool *p, int type, const float *w, int K, int N, const float *x, float *y,
                       size_t *bytes) {
    llm_tensor t = {.name = "w", .type = type, .ne0 = K, .ne1 = N, .row_bytes = ggml_type_row_size(type, K)};
    uint8_t *data = xmalloc(t.row_bytes * (size_t)N);
    for (int n = 0; n < N; n++)
        quant_quantize_row(type, w + (size_t)n * K, data + (size_t)n * t.row_bytes, K);
    t.data = data;
    *bytes = t.row_bytes * (size_t)N;
    uint8_t prefill[M];
    memset(prefill, 1, sizeof(prefill)); /* prompt rows: the tile kernels, as prefill runs them */
    matmul(p, &t, x, M, prefill, y); /* warm-up */
    double best = INFINITY;
    for (int r = 0; r < RUNS; r++) {
        double t0 = now_ms();
        matmul(p, &t, x, M, prefill, y);
        best = fmin(best, now_ms() - t0);
    }
    free(data);
    return best;
}

/* dnnl_time times oneDNN's matmul of |src| (M x K of type sdt, row-major) by
 * |w| (N x K of type wdt_user, row-major, i.e. K x N in "ba" order), after
 * reordering w once into type wdt in the layout the primitive asks for.
 * |scales| (N floats, or NULL) scale each output channel. Returns the best ms
 * of RUNS calls, with the product in |y|, the weight bytes held in *bytes and
 * the implementation's name in *impl; or -1 if oneDNN has no such matmul on
 * this CPU. */
static double dnnl_time(dnnl_engine_t eng, dnnl_stream_t st, dnnl_data_type_t sdt, const void *src,
                        dnnl_data_type_t wdt, dnnl_data_type_t wdt_user, const void *w, const float *scales,
                        int K, int N, float *y, size_t *bytes, const char **impl) {
    const dnnl_dims_t sd = {M, K}, wd = {K, N}, dd = {M, N};
    dnnl_memory_desc_t src_md, w_any, w_user_md, dst_md;
    dnnl_check(dnnl_memory_desc_init_by_tag(&src_md, 2, sd, sdt, dnnl_ab), "src md");
    dnnl_check(dnnl_memory_desc_init_by_tag(&w_any, 2, wd, wdt, dnnl_format_tag_any), "weights md");
    dnnl_check(dnnl_memory_desc_init_by_tag(&w_user_md, 2, wd, wdt_user, dnnl_ba), "user weights md");
    dnnl_check(dnnl_memory_desc_init_by_tag(&dst_md, 2, dd, dnnl_f32, dnnl_ab), "dst md");

    dnnl_matmul_desc_t desc;
    dnnl_check(dnnl_matmul_desc_init(&desc, &src_md, &w_any, NULL, &dst_md), "matmul desc");
    dnnl_primitive_attr_t attr;
    dnnl_check(dnnl_primitive_attr_create(&attr), "attr");
    if (scales != NULL) /* mask 2: one scale per index of dst's dim 1 (N) */
        dnnl_check(dnnl_primitive_attr_set_output_scales(attr, N, 2, scales), "output scales");
    dnnl_primitive_desc_t pd;
    dnnl_status_t s = dnnl_primitive_desc_create(&pd, &desc, attr, eng, NULL);
    dnnl_primitive_attr_destroy(attr);
    if (s == dnnl_unimplemented)
        return -1;
    dnnl_check(s, "matmul primitive desc");
    dnnl_check(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, (void *)impl), "impl");

    /* The weights, once: user layout -> the primitive's (not timed). */
    const dnnl_memory_desc_t *w_md = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    *bytes = dnnl_memory_desc_get_size(w_md);
    dnnl_memory_t w_user, w_mem, src_mem, dst_mem;
    dnnl_check(dnnl_memory_create(&w_user, &w_user_md, eng, (void *)w), "user weights");
    dnnl_check(dnnl_memory_create(&w_mem, w_md, eng, DNNL_MEMORY_ALLOCATE), "weights");
    dnnl_primitive_desc_t rpd;
    dnnl_primitive_t reorder;
    dnnl_check(dnnl_reorder_primitive_desc_create(&rpd, &w_user_md, eng, w_md, eng, NULL), "reorder desc");
    dnnl_check(dnnl_primitive_create(&reorder, rpd), "reorder");
    dnnl_exec_arg_t rargs[] = {{DNNL_ARG_FROM, w_user}, {DNNL_ARG_TO, w_mem}};
    dnnl_check(dnnl_primitive_execute(reorder, st, 2, rargs), "reorder run");
    dnnl_check(dnnl_stream_wait(st), "reorder wait");
    dnnl_primitive_destroy(reorder);
    dnnl_primitive_desc_destroy(rpd);
    dnnl_memory_destroy(w_user);

    /* The product, timed. */
    dnnl_primitive_t mm;
    dnnl_check(dnnl_memory_create(&src_mem, &src_md, eng, (void *)src), "src");
    dnnl_check(dnnl_memory_create(&dst_mem, &dst_md, eng, y), "dst");
    dnnl_check(dnnl_primitive_create(&mm, pd), "matmul");
    dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, src_mem}, {DNNL_ARG_WEIGHTS, w_mem}, {DNNL_ARG_DST, dst_mem}};
    double best = INFINITY;
    for (int r = -1; r < RUNS; r++) { /* r = -1: warm-up */
        double t0 = now_ms();
        dnnl_check(dnnl_primitive_execute(mm, st, 3, args), "matmul run");
        dnnl_check(dnnl_stream_wait(st), "matmul wait");
        if (r >= 0)
            best = fmin(best, now_ms() - t0);
    }
    dnnl_primitive_destroy(mm);
    dnnl_memory_destroy(src_mem);
    dnnl_memory_destroy(dst_mem);
    dnnl_memory_destroy(w_mem);
    dnnl_primitive_desc_destroy(pd);
    return best;
}

int main(void) {
    const dnnl_version_t *v = dnnl_version();
    const char *omp = getenv("OMP_NUM_THREADS");
    printf("oneDNN %d.%d.%d (cpu runtime %s, OMP_NUM_THREADS=%s); cai pool %d threads; M=%d, best of %d\n",
           v->major, v->minor, v->patch, v->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : "other",
           omp ? omp : "unset", THREADS, M, RUNS);
    pool *p = NULL;
    if (pool_new(THREADS, &p) != CAI_OK)
        return 1;
    dnnl_engine_t eng;
    dnnl_stream_t st;
    dnnl_check(dnnl_engine_create(&eng, dnnl_cpu, 0), "engine");
    dnnl_check(dnnl_stream_create(&st, eng, dnnl_stream_default_flags), "stream");

    double total[METHODS] = {0};
    for (int si = 0; si < SHAPES; si++) {
        const int K = shapes[si][0], N = shapes[si][1];
        const size_t KN = (size_t)K * N;

        /* Weights ~ U(-0.05, 0.05) rounded through Q8_0; activations ~ U(-1, 1). */
        float *w = xmalloc(KN * sizeof(float)), *x = xmalloc((size_t)M * K * sizeof(float));
        uint8_t *q8 = xmalloc(ggml_type_row_size(GGML_TYPE_Q8_0, K));
        for (size_t i = 0; i < KN; i++)
            w[i] = 0.05f * frand();
        for (int n = 0; n < N; n++) {
            quant_quantize_row(GGML_TYPE_Q8_0, w + (size_t)n * K, q8, K);
            quant_dequantize_row(GGML_TYPE_Q8_0, q8, w + (size_t)n * K, K);
        }
        for (size_t i = 0; i < (size_t)M * K; i++)
            x[i] = frand();

        /* bf16 X; u8 X = round(127 x) + 128; s8 W with one scale per row n,
         * so y = sx * s_n * (sum xu * ws - 128 * colsum[n]). */
        uint16_t *xb = xmalloc((size_t)M * K * sizeof(uint16_t));
        uint8_t *xu = xmalloc((size_t)M * K);
        int8_t *ws = xmalloc(KN);
        float *scales = xmalloc((size_t)N * sizeof(float)), *colsum = xmalloc((size_t)N * sizeof(float));
        const float sx = 1.0f / 127;
        for (size_t i = 0; i < (size_t)M * K; i++) {
            xb[i] = to_bf16(x[i]);
            xu[i] = (uint8_t)(lrintf(x[i] / sx) + 128);
        }
        for (int n = 0; n < N; n++) {
            const float *wr = w + (size_t)n * K;
            float amax = 0, sum = 0;
            for (int k = 0; k < K; k++)
                amax = fmaxf(amax, fabsf(wr[k]));
            const float sn = amax > 0 ? amax / 127 : 1;
            for (int k = 0; k < K; k++) {
                ws[(size_t)n * K + k] = (int8_t)lrintf(wr[k] / sn);
                sum += ws[(size_t)n * K + k];
            }
            scales[n] = sx * sn;
            colsum[n] = sum;
        }

        float *y[METHODS];
        double ms[METHODS];
        size_t bytes[METHODS] = {0};
        const char *impl[METHODS] = {"", ""};
        for (int m = 0; m < METHODS; m++)
            y[m] = xmalloc((size_t)M * N * sizeof(float));
        ms[CAI_Q4_0] = cai_time(p, GGML_TYPE_Q4_0, w, K, N, x, y[CAI_Q4_0], &bytes[CAI_Q4_0]);
        ms[CAI_Q8_0] = cai_time(p, GGML_TYPE_Q8_0, w, K, N, x, y[CAI_Q8_0], &bytes[CAI_Q8_0]);
        ms[DNNL_F32] = dnnl_time(eng, st, dnnl_f32, x, dnnl_f32, dnnl_f32, w, NULL, K, N, y[DNNL_F32],
                                 &bytes[DNNL_F32], &impl[DNNL_F32]);
        ms[DNNL_BF16] = dnnl_time(eng, st, dnnl_bf16, xb, dnnl_bf16, dnnl_f32, w, NULL, K, N, y[DNNL_BF16],
                                  &bytes[DNNL_BF16], &impl[DNNL_BF16]);
        ms[DNNL_U8S8] = dnnl_time(eng, st, dnnl_u8, xu, dnnl_s8, dnnl_s8, ws, scales, K, N, y[DNNL_U8S8],
                                  &bytes[DNNL_U8S8], &impl[DNNL_U8S8]);
        bytes[DNNL_U8S8] += (size_t)N * sizeof(float); /* the scales */

        printf("\nK=%d N=%d (%.2f GMAC per product)\n", K, N, (double)M * KN / 1e9);
        for (int m = 0; m < METHODS; m++) {
            if (ms[m] < 0) {
                printf("  %-12s unsupported on this CPU/oneDNN\n", method_name[m]);
                continue;
            }
            total[m] += ms[m];
            printf("  %-12s %8.2f ms %7.1f GMAC/s %7.4f B/weight  %s\n", method_name[m], ms[m],
                   (double)M * KN / 1e9 / (ms[m] / 1e3), (double)bytes[m] / (double)KN, impl[m]);
        }

        /* Sanity check (first shape): every product against oneDNN f32's. */
        if (si == 0) {
            for (int i = 0; i < M * N; i++) /* undo u8's zero point of 128 */
                y[DNNL_U8S8][i] -= scales[i % N] * 128 * colsum[i % N];
            float ymax = 0;
            for (int i = 0; i < M * N; i++)
                ymax = fmaxf(ymax, fabsf(y[DNNL_F32][i]));
            printf("  check vs onednn f32, max |diff| / max |y|:");
            for (int m = 0; m < METHODS; m++) {
                if (m == DNNL_F32 || ms[m] < 0)
                    continue;
                float d = 0;
                for (int i = 0; i < M * N; i++)
                    d = fmaxf(d, fabsf(y[m][i] - y[DNNL_F32][i]));
                printf(" %s %.1e;", method_name[m], d / ymax);
            }
            printf("\n");
        }
        for (int m = 0; m < METHODS; m++)
            free(y[m]);
        free(w), free(x), free(q8), free(xb), free(xu), free(ws), free(scales), free(colsum);
    }

    /* Summary: time over the three shapes (one layer's worth of each). */
    int best = -1;
    for (int m = DNNL_F32; m < METHODS; m++)
        if (total[m] > 0 && (best < 0 || total[m] < total[best]))
            best = m;
    printf("\nsum over the 3 shapes: ");
    for (int m = 0; m < METHODS; m++)
        if (total[m] > 0)
            printf("%s %.1f ms; ", method_name[m], total[m]);
    if (best >= 0)
        printf("\nbest oneDNN (%s) / cai q4_0 throughput: %.2fx\n", method_name[best],
               total[CAI_Q4_0] / total[best]);
    dnnl_stream_destroy(st);
    dnnl_engine_destroy(eng);
    pool_free(p);
    return 0;
}

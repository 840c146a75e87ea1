/* test_kernels.c - every SIMD dot product against its scalar reference, and
 * the references against plain float arithmetic on dequantized values. */
#include <math.h>

#include <stdlib.h>
#include <string.h>

#include "llm/kernels.h"
#include "llm/matmul.h"
#include "llm/quant.h"
#include "test.h"

static float frand(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((*s >> 40) & 0xffffff) / (float)(1 << 24) - 0.5f;
}

static const int TYPES[] = {GGML_TYPE_F32,  GGML_TYPE_F16,  GGML_TYPE_BF16, GGML_TYPE_Q8_0,
                            GGML_TYPE_Q4_0, GGML_TYPE_Q4_1, GGML_TYPE_Q5_0, GGML_TYPE_Q5_1,
                            GGML_TYPE_Q4_K, GGML_TYPE_Q5_K, GGML_TYPE_Q6_K};

static void test_all_levels_agree(void) {
    enum { N = 1024 };
    static float w[N], x[N], wd[N], xd[N];
    static uint8_t wq[N * 4];
    static block_x8 xq[N / 32];
    uint64_t seed = 7;
    printf("  best level here: %s\n", kernel_level_name(kernel_level()));
    for (int trial = 0; trial < 20; trial++) {
        for (int i = 0; i < N; i++) {
            w[i] = frand(&seed) * (trial % 3 ? 1.0f : 100.0f);
            x[i] = frand(&seed) * 4;
        }
        kernel_quantize_x8(x, xq, N);
        for (int b = 0; b < N / 32; b++)
            for (int j = 0; j < 32; j++)
                xd[b * 32 + j] = xq[b].d * xq[b].qs[j];
        for (size_t t = 0; t < sizeof(TYPES) / sizeof(TYPES[0]); t++) {
            int type = TYPES[t];
            CHECK(quant_quantize_row(type, w, wq, N) == 0);
            quant_dequantize_row(type, wq, wd, N);
            kernel_dot ref = kernel_get(type, KERNEL_SCALAR);
            CHECK(ref.q || ref.f);
            double exact = 0, mag = 0;
            const float *xs = ref.q ? xd : x;
            for (int i = 0; i < N; i++) {
                exact += (double)wd[i] * xs[i];
                mag += fabs((double)wd[i] * xs[i]);
            }
            float r = ref.q ? ref.q(wq, xq, N) : ref.f(wq, x, N);
            if (fabs(r - exact) > 1e-4 * mag + 1e-6) {
                printf("  %s reference: %g vs float %g\n", ggml_type_name(type), r, exact);
                CHECK(0);
            }
            for (int level = KERNEL_AVX2; level <= kernel_level(); level++) {
                kernel_dot k = kernel_get(type, level);
                float v = k.q ? k.q(wq, xq, N) : k.f(wq, x, N);
                if (fabs(v - r) > 1e-5 * mag + 1e-6) {
                    printf("  %s %s: %g vs reference %g\n", ggml_type_name(type), kernel_level_name(level), v, r);
                    CHECK(0);
                }
            }
        }
    }
    kernel_dot none = kernel_get(GGML_TYPE_Q2_K, kernel_level());
    CHECK(!none.q && !none.f);
}

/* The several-rows kernels against the reference, row by row, for every
 * first row and count of rows, and for Q4_0 and Q8_0 a row whose block
 * count is not a multiple of eight. */
static void test_multi_row(void) {
    enum { N = 1024 + 96, ROWS = 4 };
    static float w[N], x[ROWS][N];
    static uint8_t wq[N * 4];
    static block_x8 xq[ROWS][N / 32];
    static int8_t qs[ROWS * N];
    static float d[ROWS * N / 32], s[ROWS * N / 32], s16[ROWS * N / 16];
    uint64_t seed = 11;
    int tried = 0;
    for (int trial = 0; trial < 10; trial++) {
        for (int i = 0; i < N; i++)
            w[i] = frand(&seed) * (trial % 2 ? 1.0f : 30.0f);
        for (int r = 0; r < ROWS; r++) {
            for (int i = 0; i < N; i++)
                x[r][i] = frand(&seed) * 4;
            kernel_quantize_x8(x[r], xq[r], N);
        }
        for (size_t t = 0; t < sizeof(TYPES) / sizeof(TYPES[0]); t++) {
            int type = TYPES[t];
            int64_t n = N / QK_K * QK_K;
            if (type == GGML_TYPE_Q4_0 || type == GGML_TYPE_Q8_0)
                n = N;
            CHECK(quant_quantize_row(type, w, wq, n) == 0);
            kernel_dot ref = kernel_get(type, KERNEL_SCALAR);
            CHECK(ref.qn == NULL);
            for (int r = 0; r < ROWS; r++)
                kernel_quantize_xrow(x[r], n, qs + r * n, d + r * (n / 32), s + r * (n / 32), s16 + r * (n / 16));
            kernel_xrows xr = {qs, d, s, s16, n};
            for (int level = KERNEL_AVX2; level <= kernel_level(); level++) {
                kernel_dot k = kernel_get(type, level);
                if (!k.qn)
                    continue;
                tried++;
                for (int t0 = 0; t0 < ROWS; t0++)
                    for (int nt = 1; t0 + nt <= ROWS; nt++) {
                        float out[ROWS] = {0};
                        k.qn(wq, &xr, t0, nt, out);
                        for (int u = 0; u < nt; u++) {
                            int r = t0 + u;
                            double mag = 0;
                            for (int64_t i = 0; i < n; i++)
                                mag += fabs((double)w[i] * x[r][i]);
                            float want = ref.q(wq, xq[r], n);
                            if (fabs(out[u] - want) > 1e-5 * mag + 1e-6) {
                                printf("  %s %s rows %d..%d, row %d: %g vs reference %g\n", ggml_type_name(type),
                                       kernel_level_name(level), t0, t0 + nt - 1, r, out[u], want);
                                CHECK(0);
                            }
                        }
                    }
            }
        }
    }
    if (kernel_level() >= KERNEL_AVX512VNNI)
        CHECK(tried == 40); /* Q8_0, Q4_0, Q4_K and Q6_K have them */
    else
        printf("  no several-rows kernels at this level (%s)\n", kernel_level_name(kernel_level()));
}

/* Tiles: 16 weight rows packed, then every first activation row and count
 * of rows against the reference row dot product, written at a stride
 * other than 16 with nothing written past the tile's 16 outputs. */
static void test_tiles(void) {
    enum { N = 1024 + 96, ROWS = 11, W = KERNEL_TILE_ROWS, LDO = 19 };
    static float w[W][N], x[ROWS][N];
    static uint8_t wq[W][N * 2];
    static block_x8 xq[ROWS][N / 32];
    static int8_t qs[ROWS * N];
    static float d[ROWS * N / 32], s[ROWS * N / 32], s16[ROWS * N / 16], out[KERNEL_TILE_XROWS * LDO];
    uint64_t seed = 13;
    int tried = 0;
    uint8_t *tile = aligned_alloc(64, N / 32 * KERNEL_TILE_BLOCK16);
    CHECK(tile != NULL);
    for (int trial = 0; trial < 4; trial++) {
        for (int r = 0; r < W; r++)
            for (int i = 0; i < N; i++)
                w[r][i] = frand(&seed) * (r % 3 ? 1.0f : 30.0f);
        for (int r = 0; r < ROWS; r++)
            for (int i = 0; i < N; i++)
                x[r][i] = frand(&seed) * (trial % 2 ? 4 : 0.01f);
        for (size_t ti = 0; ti < sizeof(TYPES) / sizeof(TYPES[0]); ti++) {
            const int type = TYPES[ti];
            kernel_dot k = kernel_get(type, kernel_level()), ref = kernel_get(type, KERNEL_SCALAR);
            CHECK(!ref.pack && !ref.tile);
            if (!k.pack)
                continue;
            CHECK(k.tile && k.qn);
            const int64_t n = type == GGML_TYPE_Q4_0 || type == GGML_TYPE_Q8_0 ? N : N / QK_K * QK_K;
            const size_t stride = sizeof(wq[0]);
            for (int r = 0; r < W; r++)
                CHECK(quant_quantize_row(type, w[r], wq[r], n) == 0);
            for (int r = 0; r < ROWS; r++) {
                kernel_quantize_x8(x[r], xq[r], n);
                kernel_quantize_xrow(x[r], n, qs + r * n, d + r * (n / 32), s + r * (n / 32), s16 + r * (n / 16));
            }
            kernel_xrows xr = {qs, d, s, s16, n};
            k.pack(wq[0], stride, n, tile);
            tried++;
            for (int t0 = 0; t0 < ROWS; t0++)
                for (int nt = 1; nt <= KERNEL_TILE_XROWS && t0 + nt <= ROWS; nt++) {
                    for (size_t i = 0; i < sizeof(out) / sizeof(out[0]); i++)
                        out[i] = -1234.5f;
                    k.tile(tile, &xr, t0, nt, out, LDO);
                    for (int t = 0; t < KERNEL_TILE_XROWS; t++)
                        for (int l = 0; l < LDO; l++) {
                            float v = out[t * LDO + l];
                            if (t >= nt || l >= W) {
                                CHECK(v == -1234.5f);
                                continue;
                            }
                            double mag = 0;
                            for (int64_t i = 0; i < n; i++)
                                mag += fabs((double)w[l][i] * x[t0 + t][i]);
                            float want = ref.q(wq[l], xq[t0 + t], n);
                            if (fabs(v - want) > 1e-5 * mag + 1e-6) {
                                printf("  %s tile, rows %d..%d, weight row %d x row %d: %g vs reference %g\n",
                                       ggml_type_name(type), t0, t0 + nt - 1, l, t0 + t, v, want);
                                CHECK(0);
                            }
                        }
                }
        }
    }
    free(tile);
    if (kernel_level() >= KERNEL_AVX512VNNI)
        CHECK(tried == 16); /* Q8_0, Q4_0, Q4_K and Q6_K have them */
    else
        printf("  no tiles at this level (%s)\n", kernel_level_name(kernel_level()));
}

/* The exact tiles (kernel_dot.tile_exact): for block counts with and
 * without a partial group of eight, the exact tile product for every first
 * row and count of rows, and the several-rows kernel for every first row
 * and count, each bit for bit the one-row kernel's value, which is close
 * to the reference. Activations sit in buffers of exactly their size, so a
 * read past a row's end shows under ASan. */
static void test_exact(void) {
    enum { ROWS = 10, W = KERNEL_TILE_ROWS, NMAX = 152 * 32 };
    static const int types[] = {GGML_TYPE_Q8_0, GGML_TYPE_Q4_0, GGML_TYPE_Q4_K, GGML_TYPE_Q6_K};
    static const int nbs[] = {1, 7, 8, 9, 28, 152}, nbs_k[] = {8, 16, 152};
    static float w[W][NMAX], x[ROWS][NMAX], one[ROWS][W];
    static block_x8 xq[NMAX / 32];
    uint64_t seed = 19;
    int tried = 0;
    for (size_t ti = 0; ti < sizeof(types) / sizeof(types[0]); ti++) {
        const int type = types[ti];
        kernel_dot k = kernel_get(type, kernel_level()), ref = kernel_get(type, KERNEL_SCALAR);
        CHECK(!ref.tile_exact);
        if (!k.tile_exact)
            continue;
        CHECK(k.qn && k.tile);
        const int is_k = type == GGML_TYPE_Q4_K || type == GGML_TYPE_Q6_K;
        const int nn = is_k ? (int)(sizeof(nbs_k) / sizeof(nbs_k[0])) : (int)(sizeof(nbs) / sizeof(nbs[0]));
        for (int ni = 0; ni < nn; ni++) {
            const int64_t n = 32 * (int64_t)(is_k ? nbs_k[ni] : nbs[ni]);
            const size_t rb = ggml_type_row_size(type, n), nb = (size_t)n / 32;
            uint8_t *wq = malloc(W * rb), *tile = aligned_alloc(64, nb * k.tile_block);
            int8_t *qs = malloc(ROWS * (size_t)n);
            float *d = malloc(ROWS * nb * sizeof(float)), *s = malloc(ROWS * nb * sizeof(float));
            float *s16 = malloc(ROWS * 2 * nb * sizeof(float)), *out = malloc(KERNEL_TILE_XROWS * W * sizeof(float));
            CHECK(wq && tile && qs && d && s && s16 && out);
            for (int r = 0; r < W; r++) {
                for (int64_t i = 0; i < n; i++)
                    w[r][i] = frand(&seed) * (r % 3 ? 1.0f : 30.0f);
                CHECK(quant_quantize_row(type, w[r], wq + rb * (size_t)r, n) == 0);
            }
            for (int r = 0; r < ROWS; r++) {
                for (int64_t i = 0; i < n; i++)
                    x[r][i] = frand(&seed) * (r % 2 ? 4 : 0.01f);
                kernel_quantize_xrow(x[r], n, qs + (size_t)r * (size_t)n, d + (size_t)r * nb, s + (size_t)r * nb,
                                     s16 + (size_t)r * 2 * nb);
            }
            kernel_xrows xr = {qs, d, s, s16, n};
            for (int r = 0; r < ROWS; r++) {
                kernel_quantize_x8(x[r], xq, n);
                for (int l = 0; l < W; l++) {
                    k.qn(wq + rb * (size_t)l, &xr, r, 1, &one[r][l]);
                    double mag = 0;
                    for (int64_t i = 0; i < n; i++)
                        mag += fabs((double)w[l][i] * x[r][i]);
                    float want = ref.q(wq + rb * (size_t)l, xq, n);
                    if (fabs(one[r][l] - want) > 1e-5 * mag + 1e-6) {
                        printf("  %s n=%lld one row %d x %d: %g vs reference %g\n", ggml_type_name(type), (long long)n,
                               l, r, one[r][l], want);
                        CHECK(0);
                    }
                }
            }
            k.pack(wq, rb, n, tile);
            tried++;
            for (int t0 = 0; t0 < ROWS; t0++) {
                for (int nt = 1; nt <= KERNEL_TILE_XROWS && t0 + nt <= ROWS; nt++) {
                    k.tile_exact(tile, &xr, t0, nt, out, W);
                    for (int t = 0; t < nt; t++)
                        if (memcmp(out + t * W, one[t0 + t], W * sizeof(float)) != 0) {
                            printf("  %s n=%lld tile rows %d..%d: row %d differs from the one-row kernel\n",
                                   ggml_type_name(type), (long long)n, t0, t0 + nt - 1, t0 + t);
                            CHECK(0);
                        }
                }
                for (int nt = 1; nt <= 4 && t0 + nt <= ROWS; nt++)
                    for (int l = 0; l < W; l++) {
                        float o[4];
                        k.qn(wq + rb * (size_t)l, &xr, t0, nt, o);
                        for (int t = 0; t < nt; t++)
                            if (memcmp(&o[t], &one[t0 + t][l], sizeof(float)) != 0) {
                                printf("  %s n=%lld rows %d..%d, weight row %d: %g, alone %g\n", ggml_type_name(type),
                                       (long long)n, t0, t0 + nt - 1, l, o[t], one[t0 + t][l]);
                                CHECK(0);
                            }
                    }
            }
            free(wq), free(tile), free(qs), free(d), free(s), free(s16), free(out);
        }
    }
    if (kernel_level() >= KERNEL_AVX512VNNI)
        CHECK(tried == 18); /* Q8_0 and Q4_0 at six block counts, Q4_K and Q6_K at three */
    else
        printf("  no exact kernels at this level (%s)\n", kernel_level_name(kernel_level()));
}

/* matmul as the engine calls it: batches with no rows, all rows and runs
 * of rows flagged for tiles, and a row count with a partial tile on each
 * thread, against the reference row dot products; and each row's result
 * bit for bit what the row gets alone with the same flag (a sequence
 * decodes the same whatever shares its batch). */
static void test_matmul(void) {
    enum { N = 512, ROWS = 45, TMAX = 21 };
    static float w[ROWS][N], x[TMAX][N], y[TMAX * ROWS], y1[ROWS];
    static block_x8 xq[N / 32];
    static uint8_t flags[3][TMAX];
    uint64_t seed = 17;
    pool *p = NULL;
    CHECK(pool_new(2, &p) == CAI_OK);
    for (int r = 0; r < ROWS; r++)
        for (int i = 0; i < N; i++)
            w[r][i] = frand(&seed);
    for (int t = 0; t < TMAX; t++) {
        for (int i = 0; i < N; i++)
            x[t][i] = frand(&seed) * 3;
        flags[1][t] = 1;
        flags[2][t] = t % 11 < 7; /* runs of 7 flagged, 4 not */
    }
    const int types[] = {GGML_TYPE_Q8_0, GGML_TYPE_Q4_0, GGML_TYPE_Q4_K, GGML_TYPE_Q6_K, GGML_TYPE_Q5_1};
    for (size_t ti = 0; ti < sizeof(types) / sizeof(types[0]); ti++) {
        const int type = types[ti];
        const size_t rb = ggml_type_row_size(type, N);
        uint8_t *data = malloc(rb * ROWS);
        CHECK(data != NULL);
        for (int r = 0; r < ROWS; r++)
            CHECK(quant_quantize_row(type, w[r], data + rb * (size_t)r, N) == 0);
        llm_tensor t = llm_tensor_make("w", type, N, ROWS, data);
        kernel_dot ref = kernel_get(type, KERNEL_SCALAR);
        const int batches[] = {1, 3, 9, 16, 21};
        for (size_t bi = 0; bi < sizeof(batches) / sizeof(batches[0]); bi++)
            for (int f = 0; f < 3; f++) {
                const int T = batches[bi];
                matmul(p, &t, x[0], T, f ? flags[f] : NULL, y);
                for (int u = 0; u < T; u++) {
                    kernel_quantize_x8(x[u], xq, N);
                    matmul(p, &t, x[u], 1, f ? &flags[f][u] : NULL, y1);
                    for (int r = 0; r < ROWS; r++) {
                        double mag = 0;
                        for (int i = 0; i < N; i++)
                            mag += fabs((double)w[r][i] * x[u][i]);
                        float want = ref.q(data + rb * (size_t)r, xq, N), v = y[u * ROWS + r];
                        if (fabs(v - want) > 1e-5 * mag + 1e-6 || v != y1[r]) {
                            printf("  %s matmul T=%d flags %d, row %d x %d: %g vs reference %g, alone %g\n",
                                   ggml_type_name(type), T, f, r, u, v, want, y1[r]);
                            CHECK(0);
                        }
                    }
                }
            }
        free(data);
    }
    pool_free(p);
}

/* The attention kernels at every level against the references, for the
 * head sizes with unrolled loops and others, one head or a group. */
static void test_attn(void) {
    enum { NMAX = 130, DMAX = 256, QMAX = 7, STRIDE = 2 * DMAX + 3, SSTRIDE = NMAX + 5 };
    static uint16_t kv[NMAX * STRIDE];
    static float q[QMAX * DMAX], s0[QMAX * SSTRIDE], s1[QMAX * SSTRIDE], o0[QMAX * DMAX], o1[QMAX * DMAX];
    uint64_t seed = 19;
    for (int i = 0; i < NMAX * STRIDE; i++)
        kv[i] = quant_float_to_half(frand(&seed) * 2);
    for (int i = 0; i < QMAX * DMAX; i++)
        q[i] = frand(&seed);
    const int dims[] = {8, 48, 64, 128, 256}, ns[] = {1, 5, NMAX}, nqs[] = {1, QMAX};
    kernel_attn ref = kernel_get_attn(KERNEL_SCALAR);
    for (int level = KERNEL_AVX2; level <= kernel_level(); level++) {
        kernel_attn k = kernel_get_attn(level);
        for (size_t di = 0; di < 5; di++)
            for (size_t ni = 0; ni < 3; ni++)
                for (size_t qi = 0; qi < 2; qi++) {
                    const int D = dims[di], n = ns[ni], nq = nqs[qi];
                    ref.qk(kv, STRIDE, n, q, nq, D, 0.125f, s0, SSTRIDE);
                    k.qk(kv, STRIDE, n, q, nq, D, 0.125f, s1, SSTRIDE);
                    for (int u = 0; u < nq; u++)
                        for (int p = 0; p < n; p++) {
                            double mag = 0;
                            for (int i = 0; i < D; i++)
                                mag += fabs(quant_half_to_float(kv[p * STRIDE + i]) * q[u * D + i]) * 0.125;
                            CHECK(fabs(s0[u * SSTRIDE + p] - s1[u * SSTRIDE + p]) <= 1e-5 * mag);
                        }
                    for (int i = 0; i < QMAX * DMAX; i++)
                        o0[i] = o1[i] = (float)(i % 7);
                    ref.wv(kv + DMAX, STRIDE, n, s0, SSTRIDE, nq, D, o0);
                    k.wv(kv + DMAX, STRIDE, n, s0, SSTRIDE, nq, D, o1);
                    for (int i = 0; i < QMAX * DMAX; i++) {
                        double mag = i % 7;
                        for (int p = 0; i < nq * D && p < n; p++)
                            mag += fabs(s0[(i / D) * SSTRIDE + p] * quant_half_to_float(kv[DMAX + p * STRIDE + i % D]));
                        if (fabs(o0[i] - o1[i]) > 1e-5 * mag) {
                            printf("  attn %s D=%d n=%d nq=%d: o[%d] %g vs reference %g\n", kernel_level_name(level),
                                   D, n, nq, i, o1[i], o0[i]);
                            CHECK(0);
                        }
                    }
                }
    }
}

/* softmax and silu_mul at every level against the references (glibc's
 * vector expf is a few ulp at most from its scalar one; the sums' order
 * differs), over lengths with and without a tail, large values included. */
static void test_act(void) {
    enum { NMAX = 4099 };
    static float x[NMAX], a[NMAX], b[NMAX], u[NMAX];
    uint64_t seed = 23;
    for (int i = 0; i < NMAX; i++) {
        x[i] = frand(&seed) * (i % 97 == 0 ? 120 : 12);
        u[i] = frand(&seed);
    }
    const int ns[] = {1, 7, 16, 17, 100, NMAX};
    kernel_act ref = kernel_get_act(KERNEL_SCALAR);
    for (int level = KERNEL_AVX2; level <= kernel_level(); level++) {
        kernel_act k = kernel_get_act(level);
        for (size_t ni = 0; ni < sizeof(ns) / sizeof(ns[0]); ni++) {
            const int n = ns[ni];
            memcpy(a, x, sizeof(x));
            memcpy(b, x, sizeof(x));
            ref.softmax(a, n);
            k.softmax(b, n);
            for (int i = 0; i < NMAX; i++)
                CHECK(i < n ? fabsf(a[i] - b[i]) <= 1e-5f * a[i] + 1e-30f : a[i] == x[i] && b[i] == x[i]);
            memcpy(a, x, sizeof(x));
            memcpy(b, x, sizeof(x));
            ref.silu_mul(a, u, (size_t)n);
            k.silu_mul(b, u, (size_t)n);
            for (int i = 0; i < NMAX; i++)
                CHECK(i < n ? fabsf(a[i] - b[i]) <= 1e-6f * fabsf(a[i]) + 1e-30f : a[i] == x[i] && b[i] == x[i]);
        }
    }
    float one = 3.5f; /* a single value: exp(0) / exp(0) */
    ref.softmax(&one, 1);
    CHECK(one == 1.0f);
}

/* The attention references against plain arithmetic on the halves' values. */
static void test_attn_reference(void) {
    enum { N = 9, D = 40, Q = 3 };
    static uint16_t k[N * D], v[N * D];
    static float q[Q * D], sc[Q * N], o[Q * D];
    uint64_t seed = 5;
    for (int i = 0; i < N * D; i++) {
        k[i] = quant_float_to_half(frand(&seed) * 8);
        v[i] = quant_float_to_half(frand(&seed) * 8);
    }
    for (int i = 0; i < Q * D; i++)
        q[i] = frand(&seed);
    kernel_attn ref = kernel_get_attn(KERNEL_SCALAR);
    ref.qk(k, D, N, q, Q, D, 0.5f, sc, N);
    for (int i = 0; i < Q * D; i++)
        o[i] = 1;
    ref.wv(v, D, N, sc, N, Q, D, o);
    for (int u = 0; u < Q; u++) {
        for (int p = 0; p < N; p++) {
            double want = 0;
            for (int i = 0; i < D; i++)
                want += (double)quant_half_to_float(k[p * D + i]) * q[u * D + i];
            CHECK(fabs(sc[u * N + p] - 0.5 * want) <= 1e-5 * (1 + fabs(want)));
        }
        for (int i = 0; i < D; i++) {
            double want = 1;
            for (int p = 0; p < N; p++)
                want += (double)sc[u * N + p] * quant_half_to_float(v[p * D + i]);
            CHECK(fabs(o[u * D + i] - want) <= 1e-5 * (1 + fabs(want)));
        }
    }
}

static void test_quantize_x8(void) {
    float x[64];
    for (int i = 0; i < 64; i++)
        x[i] = (float)(i - 32) / 8;
    block_x8 q[2];
    kernel_quantize_x8(x, q, 64);
    CHECK(q[0].qs[0] == -127 && fabsf(q[0].d - 4.0f / 127) < 1e-7f);
    int sum = 0;
    for (int j = 0; j < 32; j++)
        sum += q[1].qs[j];
    CHECK(fabsf(q[1].s - q[1].d * (float)sum) < 1e-6f);
}

/* The activation quantizer, bit for bit against the rule written out here
 * (whatever level runs it): d = max |x| / 127 with NaN skipped, quants
 * lrintf(x / d) (nearest even) cast to int8, sums of the int8 quants. */
static void test_quantize_exact(void) {
    enum { N = 32 * 64 };
    static float x[N], d[N / 32], s[N / 32], s16[N / 16];
    static int8_t qs[N];
    static block_x8 q8[N / 32];
    uint64_t seed = 3;
    for (int trial = 0; trial < 40; trial++) {
        for (int i = 0; i < N; i++)
            x[i] = frand(&seed) * (float)(1 << (trial % 12));
        int b = trial % (N / 32); /* special values in one block */
        if (trial % 5 == 1)
            x[32 * b + trial % 32] = NAN;
        if (trial % 5 == 2)
            x[32 * b + 3] = INFINITY;
        if (trial % 5 == 3) /* ties: amax 127, so the quants are x itself */
            for (int j = 0; j < 32; j++)
                x[32 * b + j] = j == 0 ? 127.0f : (float)(j % 7) - 3.5f;
        if (trial % 5 == 4)
            for (int j = 0; j < 32; j++)
                x[32 * b + j] = j % 2 ? -0.0f : 0.0f;
        kernel_quantize_xrow(x, N, qs, d, s, s16);
        kernel_quantize_x8(x, q8, N);
        for (int i = 0; i < N / 32; i++) {
            float amax = 0;
            for (int j = 0; j < 32; j++)
                amax = fabsf(x[32 * i + j]) > amax ? fabsf(x[32 * i + j]) : amax;
            float rd = amax / 127, id = rd ? 1 / rd : 0;
            int sum[2] = {0, 0}, ok = memcmp(&rd, &d[i], 4) == 0 && memcmp(&rd, &q8[i].d, 4) == 0;
            for (int j = 0; j < 32; j++) {
                int8_t v = (int8_t)lrintf(x[32 * i + j] * id);
                ok &= qs[32 * i + j] == v && q8[i].qs[j] == v;
                sum[j / 16] += v;
            }
            float rs = rd * (float)(sum[0] + sum[1]), r0 = rd * (float)sum[0], r1 = rd * (float)sum[1];
            ok &= memcmp(&rs, &s[i], 4) == 0 && memcmp(&rs, &q8[i].s, 4) == 0;
            ok &= memcmp(&r0, &s16[2 * i], 4) == 0 && memcmp(&r1, &s16[2 * i + 1], 4) == 0;
            if (!ok) {
                printf("  trial %d block %d differs from the rule\n", trial, i);
                CHECK(0);
                return;
            }
        }
    }
}

int main(void) {
    RUN(test_quantize_x8);
    RUN(test_quantize_exact);
    RUN(test_all_levels_agree);
    RUN(test_multi_row);
    RUN(test_tiles);
    RUN(test_exact);
    RUN(test_matmul);
    RUN(test_attn);
    RUN(test_attn_reference);
    RUN(test_act);
    return test_summary();
}

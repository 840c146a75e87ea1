/* test_x16.c - the x16 weight layout (llm/x16.h): the rewrite and its
 * inverse, rows read back from it, its kernels bit for bit against the
 * several-rows kernels (exact kind) and the tiles (fast kind), and matmul
 * on an x16 tensor bit for bit against the same tensor in the file's
 * layout. Activations and weights sit in buffers of exactly their size,
 * so a read past an end shows under ASan. */
#include <math.h>
#include <stdlib.h>

#include "common/pool.h"
#include "llm/kernels.h"
#include "llm/matmul.h"
#include "llm/quant.h"
#include "llm/x16.h"
#include "test.h"

static float frand(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((*s >> 40) & 0xffffff) / (float)(1 << 24) - 0.5f;
}

static const int TYPES[] = {GGML_TYPE_Q8_0, GGML_TYPE_Q4_0, GGML_TYPE_Q4_K, GGML_TYPE_Q6_K};
static const int64_t NE0[] = {32, 96, 256, 512, 896, 3584};
static const int TAILS[] = {0, 5};

/* Whether rows of |ne0| values of |type| are whole blocks (K types: 256). */
static int fits(int type, int64_t ne0) {
    return ne0 % (type == GGML_TYPE_Q4_K || type == GGML_TYPE_Q6_K ? QK_K : 32) == 0;
}

/* The (type, width) pairs of TYPES and NE0 that fit. */
static int n_fitting(void) {
    int n = 0;
    for (size_t ti = 0; ti < sizeof(TYPES) / sizeof(TYPES[0]); ti++)
        for (size_t ni = 0; ni < sizeof(NE0) / sizeof(NE0[0]); ni++)
            n += fits(TYPES[ti], NE0[ni]);
    return n;
}

/* |ne1| random rows of |ne0| values of |type| (some rows 30 times larger),
 * quantized; |w| gets the floats when not NULL. */
static uint8_t *make_weights(int type, int64_t ne0, int64_t ne1, uint64_t *seed, float *w) {
    const size_t rb = ggml_type_row_size(type, ne0);
    uint8_t *data = malloc(rb * (size_t)ne1);
    float *row = malloc((size_t)ne0 * sizeof(float));
    if (data == NULL || row == NULL) {
        free(data), free(row);
        return NULL;
    }
    for (int64_t r = 0; r < ne1; r++) {
        for (int64_t i = 0; i < ne0; i++)
            row[i] = frand(seed) * (r % 3 ? 1.0f : 30.0f);
        if (w)
            memcpy(w + r * ne0, row, (size_t)ne0 * sizeof(float));
        (void)quant_quantize_row(type, row, data + rb * (size_t)r, ne0);
    }
    free(row);
    return data;
}

/* The same bytes with the whole groups rewritten (the tail copied). */
static uint8_t *to_x16(int type, int64_t ne0, int64_t ne1, const uint8_t *file) {
    const size_t rb = ggml_type_row_size(type, ne0), groups = (size_t)ne1 / X16_ROWS;
    uint8_t *x = malloc(rb * (size_t)ne1);
    if (x == NULL)
        return NULL;
    x16_pack(type, ne0, file, x, (int64_t)groups);
    memcpy(x + groups * X16_ROWS * rb, file + groups * X16_ROWS * rb, ((size_t)ne1 - groups * X16_ROWS) * rb);
    return x;
}

static void test_eligible(void) {
    const int64_t m[4] = {896, 4864, 1, 1}, few[4] = {896, 15, 1, 1}, cube[4] = {896, 32, 2, 1};
    const int64_t k[4] = {3584, 16, 1, 1}, kfew[4] = {3584, 15, 1, 1};
    CHECK(x16_eligible(GGML_TYPE_Q8_0, 2, m) && x16_eligible(GGML_TYPE_Q4_0, 2, m));
    CHECK(!x16_eligible(GGML_TYPE_Q4_K, 2, m) && !x16_eligible(GGML_TYPE_Q6_K, 2, m)); /* 896: 3.5 super-blocks */
    CHECK(x16_eligible(GGML_TYPE_Q4_K, 2, k) && x16_eligible(GGML_TYPE_Q6_K, 2, k));
    CHECK(!x16_eligible(GGML_TYPE_Q4_K, 2, kfew) && !x16_eligible(GGML_TYPE_Q5_K, 2, k));
    CHECK(!x16_eligible(GGML_TYPE_F32, 2, m));
    CHECK(!x16_eligible(GGML_TYPE_Q8_0, 1, m) && !x16_eligible(GGML_TYPE_Q8_0, 2, few));
    CHECK(!x16_eligible(GGML_TYPE_Q8_0, 3, cube));
}

/* The rewrite changes the bytes, keeps their count, and its inverse gives
 * them back; every row read from x16 (tensor_get_row) is the file's row,
 * bit for bit, and group 1's rows do not come from group 0. */
static void test_layout(void) {
    uint64_t seed = 5;
    int tried = 0;
    for (size_t ti = 0; ti < sizeof(TYPES) / sizeof(TYPES[0]); ti++)
        for (size_t ni = 0; ni < sizeof(NE0) / sizeof(NE0[0]); ni++)
            for (size_t ai = 0; ai < sizeof(TAILS) / sizeof(TAILS[0]); ai++) {
                const int type = TYPES[ti];
                const int64_t ne0 = NE0[ni], ne1 = 2 * X16_ROWS + TAILS[ai];
                if (!fits(type, ne0))
                    continue;
                tried++;
                const size_t rb = ggml_type_row_size(type, ne0), bytes = rb * (size_t)ne1;
                uint8_t *file = make_weights(type, ne0, ne1, &seed, NULL), *x = file ? to_x16(type, ne0, ne1, file) : NULL;
                uint8_t *back = malloc(bytes);
                float *a = malloc((size_t)ne0 * sizeof(float)), *b = malloc((size_t)ne0 * sizeof(float));
                CHECK(file && x && back && a && b);
                if (!(file && x && back && a && b)) {
                    free(file), free(x), free(back), free(a), free(b);
                    return;
                }
                CHECK(memcmp(file, x, 2 * X16_ROWS * rb) != 0);
                memcpy(back, x, bytes);
                x16_unpack(type, ne0, x, back, 2);
                CHECK(memcmp(back, file, bytes) == 0);
                llm_tensor tf = llm_tensor_make("f", type, ne0, ne1, file);
                llm_tensor tx = tf;
                tx.data = x;
                tx.layout = LLM_LAYOUT_X16; /* at any level: get_row is scalar */
                for (int64_t r = 0; r < ne1; r++) {
                    tensor_get_row(&tf, r, a);
                    tensor_get_row(&tx, r, b);
                    if (memcmp(a, b, (size_t)ne0 * sizeof(float)) != 0) {
                        printf("  %s ne0=%lld ne1=%lld: get_row %lld differs\n", ggml_type_name(type), (long long)ne0,
                               (long long)ne1, (long long)r);
                        CHECK(0);
                    }
                }
                free(file), free(x), free(back), free(a), free(b);
            }
    CHECK(tried == 2 * n_fitting());
}

/* The x16 kernels on each group, for every first activation row and
 * count: the exact kind bit for bit the several-rows kernel's value (one
 * row at a time), the fast kind bit for bit the tiles' (packed from the
 * file's layout) and close to the exact; and for Q4_K and Q6_K, the
 * tile unpacked from the group (x16_tile) byte for byte pack's. */
static void test_kernels(void) {
    enum { ROWS = 11, W = X16_ROWS };
    uint64_t seed = 23;
    int tried = 0;
    for (size_t ti = 0; ti < sizeof(TYPES) / sizeof(TYPES[0]); ti++) {
        const int type = TYPES[ti];
        const kernel_dot k = kernel_get(type, kernel_level());
        CHECK(!kernel_get(type, KERNEL_AVX2).x16_exact && !kernel_get(type, KERNEL_SCALAR).x16);
        if (!k.x16_exact)
            continue;
        CHECK(k.x16 && k.qn && k.pack && k.tile);
        CHECK(!k.x16_tile == (type != GGML_TYPE_Q4_K && type != GGML_TYPE_Q6_K));
        for (size_t ni = 0; ni < sizeof(NE0) / sizeof(NE0[0]); ni++) {
            const int64_t ne0 = NE0[ni], ne1 = 2 * X16_ROWS + 5;
            if (!fits(type, ne0))
                continue;
            const size_t rb = ggml_type_row_size(type, ne0), nb = (size_t)ne0 / 32;
            float *w = malloc((size_t)(ne0 * ne1) * sizeof(float)), *x = malloc((size_t)ne0 * ROWS * sizeof(float));
            uint8_t *file = w ? make_weights(type, ne0, ne1, &seed, w) : NULL, *xw = file ? to_x16(type, ne0, ne1, file) : NULL;
            uint8_t *tile = aligned_alloc(64, nb * k.tile_block), *tile2 = aligned_alloc(64, nb * k.tile_block);
            int8_t *qs = malloc(ROWS * (size_t)ne0);
            float *d = malloc(ROWS * nb * sizeof(float)), *s = malloc(ROWS * nb * sizeof(float));
            float *s16 = malloc(2 * ROWS * nb * sizeof(float));
            float *one = malloc(ROWS * W * sizeof(float)), *out = malloc(KERNEL_TILE_XROWS * W * sizeof(float));
            float *fast = malloc(KERNEL_TILE_XROWS * W * sizeof(float)), *tl = malloc(KERNEL_TILE_XROWS * W * sizeof(float));
            CHECK(w && x && file && xw && tile && tile2 && qs && d && s && s16 && one && out && fast && tl);
            if (!(w && x && file && xw && tile && tile2 && qs && d && s && s16 && one && out && fast && tl))
                goto next;
            for (int r = 0; r < ROWS; r++) {
                for (int64_t i = 0; i < ne0; i++)
                    x[r * ne0 + i] = frand(&seed) * (r % 2 ? 4 : 0.01f);
                kernel_quantize_xrow(x + r * ne0, ne0, qs + (size_t)r * (size_t)ne0, d + (size_t)r * nb,
                                     s + (size_t)r * nb, s16 + 2 * (size_t)r * nb);
            }
            kernel_xrows xr = {qs, d, s, s16, ne0};
            for (int g = 0; g < 2; g++) {
                const uint8_t *grp = xw + (size_t)g * W * rb;
                for (int r = 0; r < ROWS; r++)
                    for (int l = 0; l < W; l++)
                        k.qn(file + rb * (size_t)(g * W + l), &xr, r, 1, &one[r * W + l]);
                k.pack(file + (size_t)g * W * rb, rb, ne0, tile);
                if (k.x16_tile) { /* the tile from the group in x16: the same bytes */
                    k.x16_tile(grp, 0, ne0, tile2);
                    if (memcmp(tile, tile2, nb * k.tile_block) != 0) {
                        printf("  %s ne0=%lld group %d: x16_tile differs from pack\n", ggml_type_name(type), (long long)ne0, g);
                        CHECK(0);
                    }
                }
                tried++;
                for (int t0 = 0; t0 < ROWS; t0++)
                    for (int nt = 1; nt <= KERNEL_TILE_XROWS && t0 + nt <= ROWS; nt++) {
                        k.x16_exact(grp, &xr, t0, nt, out, W);
                        k.x16(grp, &xr, t0, nt, fast, W);
                        k.tile(tile, &xr, t0, nt, tl, W);
                        for (int t = 0; t < nt; t++) {
                            if (memcmp(out + t * W, one + (t0 + t) * W, W * sizeof(float)) != 0) {
                                printf("  %s ne0=%lld group %d rows %d..%d: exact row %d differs from the row kernel\n",
                                       ggml_type_name(type), (long long)ne0, g, t0, t0 + nt - 1, t0 + t);
                                CHECK(0);
                            }
                            if (memcmp(fast + t * W, tl + t * W, W * sizeof(float)) != 0) {
                                printf("  %s ne0=%lld group %d rows %d..%d: fast row %d differs from the tiles\n",
                                       ggml_type_name(type), (long long)ne0, g, t0, t0 + nt - 1, t0 + t);
                                CHECK(0);
                            }
                            for (int l = 0; l < W; l++) {
                                double mag = 0;
                                for (int64_t i = 0; i < ne0; i++)
                                    mag += fabs((double)w[(g * W + l) * ne0 + i] * x[(t0 + t) * ne0 + i]);
                                if (fabs((double)fast[t * W + l] - out[t * W + l]) > 1e-5 * mag + 1e-6) {
                                    printf("  %s ne0=%lld: fast %g vs exact %g\n", ggml_type_name(type),
                                           (long long)ne0, fast[t * W + l], out[t * W + l]);
                                    CHECK(0);
                                }
                            }
                        }
                    }
            }
        next:
            free(w), free(x), free(file), free(xw), free(tile), free(tile2), free(qs), free(d), free(s), free(s16), free(one),
                free(out), free(fast), free(tl);
        }
    }
    if (kernel_level() >= KERNEL_AVX512VNNI)
        CHECK(tried == 2 * n_fitting()); /* each type and width that fit, two groups each */
    else
        SKIP("no x16 kernels at this level");
}

/* matmul on an x16 tensor (with and without rows past the last group)
 * against the same tensor in the file's layout, on two threads: batches
 * of 1 .. 21 rows, none, all or runs flagged, bit for bit (runs of more
 * than eight rows go through x16_tile where the type has it). */
static void test_matmul(void) {
    enum { TMAX = 21 };
    static uint8_t flags[3][TMAX];
    uint64_t seed = 41;
    pool *p = NULL;
    CHECK_OK(pool_new(2, &p));
    if (kernel_level() < KERNEL_AVX512VNNI) {
        pool_free(p);
        SKIP("no x16 kernels at this level");
        return;
    }
    for (int t = 0; t < TMAX; t++) {
        flags[1][t] = 1;
        flags[2][t] = t % 11 < 7;
    }
    int tried = 0;
    for (size_t ti = 0; ti < sizeof(TYPES) / sizeof(TYPES[0]); ti++)
        for (size_t ai = 0; ai < sizeof(TAILS) / sizeof(TAILS[0]); ai++) {
            const int type = TYPES[ti];
            const int64_t ne0 = fits(type, 896) ? 896 : 768, ne1 = 5 * X16_ROWS + TAILS[ai];
            uint8_t *file = make_weights(type, ne0, ne1, &seed, NULL), *xw = file ? to_x16(type, ne0, ne1, file) : NULL;
            float *x = malloc((size_t)ne0 * TMAX * sizeof(float));
            float *ya = malloc((size_t)ne1 * TMAX * sizeof(float)), *yb = malloc((size_t)ne1 * TMAX * sizeof(float));
            CHECK(file && xw && x && ya && yb);
            if (file && xw && x && ya && yb) {
                for (int64_t i = 0; i < ne0 * TMAX; i++)
                    x[i] = frand(&seed) * 3;
                llm_tensor tf = llm_tensor_make("f", type, ne0, ne1, file);
                llm_tensor tx = llm_tensor_make_layout("x", type, ne0, ne1, xw, LLM_LAYOUT_X16);
                const int batches[] = {1, 2, 3, 8, 9, 16, 21};
                for (size_t bi = 0; bi < sizeof(batches) / sizeof(batches[0]); bi++)
                    for (int f = 0; f < 3; f++) {
                        const int T = batches[bi];
                        CHECK_OK(matmul(p, &tf, x, T, f ? flags[f] : NULL, ya));
                        CHECK_OK(matmul(p, &tx, x, T, f ? flags[f] : NULL, yb));
                        tried++;
                        if (memcmp(ya, yb, (size_t)(T * ne1) * sizeof(float)) != 0) {
                            printf("  %s ne1=%lld T=%d flags %d: x16 differs from the file's layout\n",
                                   ggml_type_name(type), (long long)ne1, T, f);
                            CHECK(0);
                        }
                    }
            }
            free(file), free(xw), free(x), free(ya), free(yb);
        }
    CHECK(tried == (int)(sizeof(TYPES) / sizeof(TYPES[0])) * 2 * 7 * 3);
    pool_free(p);
}

int main(void) {
    RUN(test_eligible);
    RUN(test_layout);
    RUN(test_kernels);
    RUN(test_matmul);
    return test_summary();
}

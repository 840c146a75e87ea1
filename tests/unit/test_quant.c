/* test_quant.c - block layouts by known answers, and quantizer round trips. */
#include <math.h>

#include <float.h>

#include "llm/kernels.h"
#include "llm/quant.h"
#include "llm/quant_simd.h"
#include "llm/quantize.h"
#include "test.h"

#define HALF(x) quant_float_to_half(x)

static void test_half(void) {
    const float v[] = {0, 1, -2, 0.5f, 65504, 6.1035156e-05f, 5.9604645e-08f, -0.333251953125f};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        CHECK(quant_half_to_float(HALF(v[i])) == v[i]);
    CHECK(HALF(1.0f) == 0x3c00 && HALF(-2.0f) == 0xc000 && HALF(65520.0f) == 0x7c00);
    CHECK(HALF(1.0f + 1.0f / 2048) == 0x3c00); /* ties to even */
    CHECK(HALF(1.0f + 3.0f / 2048) == 0x3c02 && HALF(1.0f + 3.0f / 4096) == 0x3c01);
    CHECK(isnan(quant_half_to_float(HALF(NAN))) && isinf(quant_half_to_float(HALF(INFINITY))));
    CHECK(quant_bf16_to_float(quant_float_to_bf16(1.5f)) == 1.5f);
    CHECK(quant_float_to_bf16(1.0f + 1.0f / 256) == 0x3f80); /* ties to even */
}

static void test_known_blocks(void) {
    float y[256];
    block_q4_0 q40 = {.d = HALF(0.5f)};
    q40.qs[0] = 0x9F;
    quant_dequantize_row(GGML_TYPE_Q4_0, &q40, y, 32);
    CHECK(y[0] == 3.5f && y[16] == 0.5f && y[1] == -4.0f);

    block_q4_1 q41 = {.d = HALF(0.5f), .m = HALF(-1.0f)};
    q41.qs[0] = 0x21;
    quant_dequantize_row(GGML_TYPE_Q4_1, &q41, y, 32);
    CHECK(y[0] == -0.5f && y[16] == 0.0f && y[1] == -1.0f);

    block_q5_0 q50 = {.d = HALF(1.0f), .qh = {1, 0, 0, 0}};
    q50.qs[0] = 0x03;
    quant_dequantize_row(GGML_TYPE_Q5_0, &q50, y, 32);
    CHECK(y[0] == 3.0f && y[16] == -16.0f);

    block_q5_1 q51 = {.d = HALF(1.0f), .m = HALF(0.5f), .qh = {0, 0, 1, 0}};
    q51.qs[0] = 0x01;
    quant_dequantize_row(GGML_TYPE_Q5_1, &q51, y, 32);
    CHECK(y[0] == 1.5f && y[16] == 16.5f);

    block_q8_0 q80 = {.d = HALF(0.25f)};
    q80.qs[0] = -4;
    q80.qs[31] = 127;
    quant_dequantize_row(GGML_TYPE_Q8_0, &q80, y, 32);
    CHECK(y[0] == -1.0f && y[31] == 31.75f && y[1] == 0);

    block_q4_K q4k = {.d = HALF(1.0f), .dmin = HALF(1.0f)};
    q4k.scales[0] = 0x42; /* sub-block 0: scale 2; high bits of sub-block 4's scale: 1 */
    q4k.scales[4] = 1;    /* sub-block 0: min 1 */
    q4k.scales[1] = 3;    /* sub-block 1: scale 3, min 0 */
    q4k.scales[8] = 0x21; /* sub-block 4: scale 1 + 16, min 2 */
    q4k.qs[0] = 0x45;
    q4k.qs[64] = 0x03;
    quant_dequantize_row(GGML_TYPE_Q4_K, &q4k, y, 256);
    CHECK(y[0] == 9.0f && y[32] == 12.0f && y[128] == 49.0f && y[1] == -1.0f);

    block_q5_K q5k = {.d = HALF(1.0f), .dmin = HALF(0.0f)};
    q5k.scales[0] = 1;
    q5k.scales[1] = 2;
    q5k.qs[0] = 0x07;
    q5k.qh[0] = 0x03;
    quant_dequantize_row(GGML_TYPE_Q5_K, &q5k, y, 256);
    CHECK(y[0] == 23.0f && y[32] == 32.0f);

    block_q6_K q6k = {.d = HALF(1.0f)};
    q6k.scales[0] = 2;
    q6k.scales[4] = 1;
    q6k.ql[0] = 0x05;
    q6k.qh[0] = 0x02;
    quant_dequantize_row(GGML_TYPE_Q6_K, &q6k, y, 256);
    CHECK(y[0] == 10.0f && y[64] == -32.0f);
}

static float frand(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((*s >> 40) & 0xffffff) / (float)(1 << 24) - 0.5f;
}

static void test_round_trips(void) {
    static const struct { int type; float max_rel_rms; } cases[] = {
        {GGML_TYPE_F16, 1e-3f},  {GGML_TYPE_BF16, 5e-3f}, {GGML_TYPE_Q8_0, 0.01f}, {GGML_TYPE_Q4_0, 0.12f},
        {GGML_TYPE_Q4_1, 0.10f}, {GGML_TYPE_Q5_0, 0.06f}, {GGML_TYPE_Q5_1, 0.05f}, {GGML_TYPE_Q4_K, 0.12f},
        {GGML_TYPE_Q5_K, 0.06f}, {GGML_TYPE_Q6_K, 0.03f},
    };
    enum { N = 4096 };
    static float x[N], y[N];
    static uint8_t q[N * 4];
    uint64_t seed = 1;
    double ref = 0;
    for (int i = 0; i < N; i++) {
        x[i] = frand(&seed) + frand(&seed) + frand(&seed); /* roughly bell-shaped */
        ref += (double)x[i] * x[i];
    }
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        int t = cases[c].type;
        CHECK(quant_quantize_row(t, x, q, N) == 0);
        CHECK(ggml_type_row_size(t, N) <= sizeof(q));
        quant_dequantize_row(t, q, y, N);
        double err = 0;
        for (int i = 0; i < N; i++)
            err += (double)(x[i] - y[i]) * (x[i] - y[i]);
        double rel = sqrt(err / ref);
        if (rel > cases[c].max_rel_rms) {
            printf("  %s: relative rms error %g > %g\n", ggml_type_name(t), rel, cases[c].max_rel_rms);
            CHECK(0);
        }
    }
    CHECK(quant_quantize_row(GGML_TYPE_Q2_K, x, q, 256) == -1);
    CHECK(!quant_supported(GGML_TYPE_Q2_K) && quant_supported(GGML_TYPE_Q6_K) && !quant_supported(77));
    CHECK(ggml_type_row_size(GGML_TYPE_Q4_K, 512) == 288 && ggml_type_block_size(GGML_TYPE_Q8_0) == 32);
}

/* The engine's block structs against the file format's table (gguf/ggml_type.c):
 * same bytes per block, same alignment, for every type the engine lays out. */
static void test_layouts_match_format(void) {
    static const struct { int type; size_t size, align; int block; } L[] = {
        {GGML_TYPE_F32, sizeof(float), _Alignof(float), 1},
        {GGML_TYPE_F16, sizeof(quant_half), _Alignof(quant_half), 1},
        {GGML_TYPE_BF16, sizeof(uint16_t), _Alignof(uint16_t), 1},
        {GGML_TYPE_Q4_0, sizeof(block_q4_0), _Alignof(block_q4_0), QK4_0},
        {GGML_TYPE_Q4_1, sizeof(block_q4_1), _Alignof(block_q4_1), QK4_1},
        {GGML_TYPE_Q5_0, sizeof(block_q5_0), _Alignof(block_q5_0), QK5_0},
        {GGML_TYPE_Q5_1, sizeof(block_q5_1), _Alignof(block_q5_1), QK5_1},
        {GGML_TYPE_Q8_0, sizeof(block_q8_0), _Alignof(block_q8_0), QK8_0},
        {GGML_TYPE_Q4_K, sizeof(block_q4_K), _Alignof(block_q4_K), QK_K},
        {GGML_TYPE_Q5_K, sizeof(block_q5_K), _Alignof(block_q5_K), QK_K},
        {GGML_TYPE_Q6_K, sizeof(block_q6_K), _Alignof(block_q6_K), QK_K},
        {GGML_TYPE_Q8_K, sizeof(block_q8_K), _Alignof(block_q8_K), QK_K},
    };
    for (size_t i = 0; i < sizeof(L) / sizeof(L[0]); i++) {
        int t = L[i].type;
        if (ggml_type_size(t) != L[i].size || ggml_type_align(t) != L[i].align ||
            ggml_type_block_size(t) != L[i].block) {
            printf("  %s: table %zu bytes, align %zu, block %d; struct %zu, %zu, %d\n", ggml_type_name(t),
                   ggml_type_size(t), ggml_type_align(t), ggml_type_block_size(t), L[i].size, L[i].align,
                   L[i].block);
            CHECK(0);
        }
        CHECK(quant_supported(t) == (t != GGML_TYPE_Q8_K));
    }
    CHECK(ggml_type_name(GGML_TYPE_COUNT) == NULL && ggml_type_size(-1) == 0 && ggml_type_row_size(4, 32) == 0);
}

/* The public quantizer writes the reference's bytes, and refuses what the
 * reference cannot make (a type, a partial block) with a status. */
static void test_public_quantize(void) {
    float x[512];
    for (int i = 0; i < 512; i++)
        x[i] = sinf((float)i * 0.37f) * 3.0f;
    static const int types[] = {GGML_TYPE_F16, GGML_TYPE_Q8_0, GGML_TYPE_Q4_0, GGML_TYPE_Q4_K, GGML_TYPE_Q6_K};
    for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
        uint8_t a[2048], b[2048];
        size_t rb = ggml_type_row_size(types[t], 512);
        CAI_ASSERT(rb <= sizeof(a));
        memset(a, 0xa5, sizeof(a));
        memset(b, 0x5a, sizeof(b));
        CHECK_OK(quantize_row(types[t], x, a, 512));
        CHECK(quant_quantize_row(types[t], x, b, 512) == 0);
        CHECK(memcmp(a, b, rb) == 0);
    }
    uint8_t out[2048];
    CHECK_ST(quantize_row(GGML_TYPE_Q2_K, x, out, 256), CAI_ERR_UNSUPPORTED);
    CHECK_ST(quantize_row(GGML_TYPE_COUNT + 3, x, out, 256), CAI_ERR_UNSUPPORTED);
    CHECK_ST(quantize_row(GGML_TYPE_Q8_0, x, out, 48), CAI_ERR_INVALID_ARG);
    CHECK_ST(quantize_row(GGML_TYPE_Q4_K, x, out, 32), CAI_ERR_INVALID_ARG);
}

/* ---- SIMD quantizers: the reference's bytes, for every input ------------ */

static uint32_t urand(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(*s >> 32);
}

static float bits_f(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Fills |x| (n values, n a multiple of 256) with row kind |kind|: random
 * values at many scales, BF16-exact values, and the edges where rounding
 * and ties decide (see the cases). */
static void edge_row(float *x, int n, int kind, uint64_t *seed) {
    for (int i = 0; i < n; i++) {
        float r = frand(seed) + frand(seed) + frand(seed);
        switch (kind) {
        case 0: x[i] = r; break;
        case 1: x[i] = r * powf(10.0f, (float)(i / 256 % 13) - 6.0f); break; /* 1e-6 .. 1e6 */
        case 2: x[i] = quant_bf16_to_float(quant_float_to_bf16(r * 0.05f)); break; /* as imported */
        case 3: x[i] = 0; break;
        case 4: x[i] = (i & 1) ? -0.0f : 0.0f; break;
        case 5: x[i] = -0.0f; break;
        case 6: /* max-abs ties: +m and -m, which comes first varies */
            x[i] = r;
            if (i % 32 == (int)(urand(seed) % 32) || i % 32 == 31)
                x[i] = (i / 32) & 1 ? 2.0f : -2.0f;
            if (i % 16 == 3)
                x[i] = (i / 16) & 1 ? -2.0f : 2.0f;
            break;
        case 7: x[i] = bits_f(urand(seed) & 0x807fffffu); break; /* subnormals */
        case 8: x[i] = r * 1e-37f; break; /* d subnormal, 1/d huge or infinite */
        case 9: x[i] = r * FLT_MAX; break;   /* extremes, no infinity */
        case 10: /* halves: with amax 127 (Q8_0) or 8 (Q4_0) the scale is 1 */
            x[i] = (float)((int)(urand(seed) % 253) - 126) * 0.5f;
            if (i % 32 == 0)
                x[i] = i % 64 ? 127.0f : -8.0f;
            break;
        case 11: x[i] = (float)((int)(urand(seed) % 17) - 8) * 0.5f; break; /* small halves */
        case 18: /* with d = -1 (Q4_0) or -1/2 (Q5_0): x * id + levels lands on halves */
            x[i] = i % 32 == 0 ? 8.0f : (float)((int)(urand(seed) % 33) - 16) * 0.25f;
            break;
        case 12: x[i] = i % 64 < 32 ? 0.0f : r; break;         /* zero sub-blocks */
        case 13: x[i] = i % 32 == 5 ? 0.0f : fabsf(r) + 0.25f; break; /* minimum exactly 0 */
        case 14: x[i] = (i % 32 < 16) ? 1.5f : -0.75f; break; /* constant halves */
        case 15: x[i] = i == 77 ? NAN : r; break;
        case 16: x[i] = i == 130 ? INFINITY : i == 3 ? -INFINITY : r; break;
        case 17: x[i] = bits_f(urand(seed)); break; /* any bits, NaNs included */
        default: x[i] = r; break;
        }
    }
}

enum { EDGE_KINDS = 19 };

static void test_simd_quantizers_match_reference(void) {
    int level = kernel_level();
    if (quant_simd_quantizer(GGML_TYPE_Q8_0, level) == NULL) {
        SKIP("no SIMD quantizer at kernel level %s", kernel_level_name(level));
        return;
    }
    static const int types[] = {GGML_TYPE_Q8_0, GGML_TYPE_Q4_0, GGML_TYPE_Q5_0, GGML_TYPE_Q4_K,
                                GGML_TYPE_Q5_K, GGML_TYPE_Q6_K};
    enum { N = 2048 };
    static float x[N];
    static uint8_t a[N * 2], b[N * 2];
    uint64_t seed = 7;
    for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
        quant_simd_qfn fn = quant_simd_quantizer(types[t], level);
        CHECK(fn != NULL);
        if (fn == NULL)
            continue;
        size_t rb = ggml_type_row_size(types[t], N);
        for (int kind = 0; kind < EDGE_KINDS; kind++) {
            for (int rep = 0; rep < 8; rep++) {
                edge_row(x, N, kind, &seed);
                memset(a, 0xa5, sizeof(a));
                memset(b, 0x5a, sizeof(b));
                fn(x, a, N);
                CHECK(quant_quantize_row(types[t], x, b, N) == 0);
                if (memcmp(a, b, rb) != 0) {
                    size_t k = 0;
                    while (a[k] == b[k])
                        k++;
                    printf("  %s, row kind %d: byte %zu is %02x, the reference's %02x\n",
                           ggml_type_name(types[t]), kind, k, a[k], b[k]);
                    CHECK(0);
                    break;
                }
            }
        }
        /* the public entry point takes the same path */
        edge_row(x, N, 0, &seed);
        CHECK_OK(quantize_row(types[t], x, a, N));
        CHECK(quant_quantize_row(types[t], x, b, N) == 0 && memcmp(a, b, rb) == 0);
    }
}

/* Every BF16 and F16 bit pattern (NaNs included) expands to the bits the
 * reference gives, at every offset of a row (the tail included). */
static void test_simd_expansions_match_reference(void) {
    int level = kernel_level();
    if (quant_simd_dequantizer(GGML_TYPE_BF16, level) == NULL) {
        SKIP("no SIMD expansion at kernel level %s", kernel_level_name(level));
        return;
    }
    enum { N = 65536 + 40 };
    static uint16_t h[N];
    static float ya[N], yb[N];
    for (int i = 0; i < N; i++)
        h[i] = (uint16_t)(i * 40503u); /* every value once in the first 65536 */
    static const int types[] = {GGML_TYPE_BF16, GGML_TYPE_F16};
    for (size_t t = 0; t < 2; t++) {
        quant_simd_dfn fn = quant_simd_dequantizer(types[t], level);
        CHECK(fn != NULL);
        if (fn == NULL)
            continue;
        for (int off = 0; off < 3; off++) {
            int n = N - 24 - off; /* an odd length: the tail goes through the reference */
            memset(ya, 0xa5, sizeof(ya));
            memset(yb, 0x5a, sizeof(yb));
            fn((const uint8_t *)h + off * 2, ya, n);
            quant_dequantize_row(types[t], (const uint8_t *)h + off * 2, yb, n);
            CHECK(memcmp(ya, yb, (size_t)n * sizeof(float)) == 0);
        }
    }
}

#if defined(__x86_64__)
#include <immintrin.h>
__attribute__((target("f16c"))) static quant_half f16c_half(float f) {
    return (quant_half)_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
}
#endif

/* quant_simd.c writes block scales with F16C's conversion: it must equal
 * quant_float_to_half on every half value, one float ulp either side of
 * it, and on the midpoints between halves (ties to even), both signs. */
static void test_f16c_half_matches_reference(void) {
#if defined(__x86_64__)
    if (kernel_level() < KERNEL_AVX2) {
        SKIP("no F16C");
        return;
    }
    int bad = 0;
    for (uint32_t h = 0; h < 0x7c00; h++) {
        float lo = quant_half_to_float((quant_half)h), hi = quant_half_to_float((quant_half)(h + 1));
        uint32_t u;
        memcpy(&u, &lo, 4);
        const float probes[] = {lo, bits_f(u + 1), u ? bits_f(u - 1) : lo, (lo + hi) / 2, hi};
        for (size_t p = 0; p < sizeof(probes) / sizeof(probes[0]); p++) {
            float mid = probes[p];
            uint32_t m;
            memcpy(&m, &mid, 4);
            const float v[4] = {mid, -mid, bits_f(m + 1), bits_f(m - 1)};
            for (int k = 0; k < 4; k++)
                if (!isnan(v[k]) && f16c_half(v[k]) != quant_float_to_half(v[k]) && bad++ < 3)
                    printf("  %a: f16c %04x, reference %04x\n", (double)v[k], f16c_half(v[k]),
                           quant_float_to_half(v[k]));
        }
    }
    const float big[] = {65504, 65519.99f, 65520, 1e10f, FLT_MAX, INFINITY, 1e-30f, 2.9802322e-08f, 2.9802326e-08f};
    for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++)
        for (int sgn = 0; sgn < 2; sgn++) {
            float v = sgn ? -big[i] : big[i];
            if (f16c_half(v) != quant_float_to_half(v) && bad++ < 3)
                printf("  %a: f16c %04x, reference %04x\n", (double)v, f16c_half(v), quant_float_to_half(v));
        }
    CHECK(bad == 0);
#else
    SKIP("not x86-64");
#endif
}

int main(void) {
    RUN(test_half);
    RUN(test_layouts_match_format);
    RUN(test_known_blocks);
    RUN(test_round_trips);
    RUN(test_public_quantize);
    RUN(test_simd_quantizers_match_reference);
    RUN(test_simd_expansions_match_reference);
    RUN(test_f16c_half_matches_reference);
    return test_summary();
}

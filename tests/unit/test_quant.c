/* test_quant.c - block layouts by known answers, and quantizer round trips. */
#include <math.h>

#include "llm/quant.h"
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

int main(void) {
    RUN(test_half);
    RUN(test_layouts_match_format);
    RUN(test_known_blocks);
    RUN(test_round_trips);
    RUN(test_public_quantize);
    return test_summary();
}

/* x16.c - the x16 weight layout (x16.h): eligibility, the rewrite and its
 * inverse, and one row's dequantization. Scalar: it runs once per load
 * (pwrite-bound) and, for get_row, once per token. */
#include "llm/x16.h"

#include <string.h>

#include "llm/quant.h"

_Static_assert(X16_ROWS * sizeof(block_q8_0) == X16_QUANTS_Q8_0 + 2 * X16_ROWS, "x16 Q8_0 block of 16 rows");
_Static_assert(X16_ROWS * sizeof(block_q4_0) == X16_QUANTS_Q4_0 + 2 * X16_ROWS, "x16 Q4_0 block of 16 rows");

int x16_eligible(int type, int n_dims, const int64_t ne[4]) {
    if (type != GGML_TYPE_Q8_0 && type != GGML_TYPE_Q4_0)
        return 0;
    for (int d = 2; d < 4; d++)
        if (ne[d] != 1)
            return 0;
    return n_dims >= 2 && ne[0] > 0 && ne[0] % 32 == 0 && ne[1] >= X16_ROWS;
}

/* The file's block bytes and x16's quant bytes per block of 16 rows. */
static void sizes(int type, size_t *block, size_t *quants) {
    const int q4 = type == GGML_TYPE_Q4_0;
    *block = q4 ? sizeof(block_q4_0) : sizeof(block_q8_0);
    *quants = q4 ? X16_QUANTS_Q4_0 : X16_QUANTS_Q8_0;
}

/* Q8_0's quants are stored unsigned: a xor of each byte's sign bit. */
static uint32_t flip(int type, uint32_t v) { return type == GGML_TYPE_Q8_0 ? v ^ 0x80808080u : v; }

void x16_pack(int type, int64_t ne0, const uint8_t *src, uint8_t *dst, int64_t groups) {
    size_t bs, qb;
    sizes(type, &bs, &qb);
    const size_t nb = (size_t)ne0 / 32, rb = nb * bs;
    for (int64_t g = 0; g < groups; g++, src += X16_ROWS * rb, dst += X16_ROWS * rb)
        for (size_t i = 0; i < nb; i++)
            for (size_t l = 0; l < X16_ROWS; l++) {
                const uint8_t *b = src + l * rb + i * bs;
                memcpy(dst + nb * qb + 32 * i + 2 * l, b, 2);
                for (size_t k = 0; k < qb / 64; k++) {
                    uint32_t v;
                    memcpy(&v, b + 2 + 4 * k, 4);
                    v = flip(type, v);
                    memcpy(dst + i * qb + 64 * k + 4 * l, &v, 4);
                }
            }
}

/* Block i of row l of the x16 group at |src| into |b| (the file's layout). */
static void unpack_block(int type, size_t nb, const uint8_t *src, size_t i, size_t l, uint8_t *b) {
    size_t bs, qb;
    sizes(type, &bs, &qb);
    memcpy(b, src + nb * qb + 32 * i + 2 * l, 2);
    for (size_t k = 0; k < qb / 64; k++) {
        uint32_t v;
        memcpy(&v, src + i * qb + 64 * k + 4 * l, 4);
        v = flip(type, v);
        memcpy(b + 2 + 4 * k, &v, 4);
    }
}

void x16_unpack(int type, int64_t ne0, const uint8_t *src, uint8_t *dst, int64_t groups) {
    size_t bs, qb;
    sizes(type, &bs, &qb);
    const size_t nb = (size_t)ne0 / 32, rb = nb * bs;
    for (int64_t g = 0; g < groups; g++, src += X16_ROWS * rb, dst += X16_ROWS * rb)
        for (size_t i = 0; i < nb; i++)
            for (size_t l = 0; l < X16_ROWS; l++)
                unpack_block(type, nb, src, i, l, dst + l * rb + i * bs);
}

void x16_get_row(int type, int64_t ne0, const uint8_t *group, int l, float *out) {
    const size_t nb = (size_t)ne0 / 32;
    uint8_t b[sizeof(block_q8_0)];
    for (size_t i = 0; i < nb; i++) {
        unpack_block(type, nb, group, i, (size_t)l, b);
        quant_dequantize_row(type, b, out + 32 * i, 32);
    }
}

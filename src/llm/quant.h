/* quant.h - ggml tensor types: traits, block layouts, reference (de)quantizers.
 *
 * The type numbers and block layouts are ggml's, bit for bit, since GGUF
 * files store them. Each dequantizer here is the scalar reference that the
 * SIMD kernels (kernels.c) are tested against. */
#ifndef CAI_LLM_QUANT_H
#define CAI_LLM_QUANT_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    QUANT_F32 = 0,
    QUANT_F16 = 1,
    QUANT_Q4_0 = 2,
    QUANT_Q4_1 = 3,
    QUANT_Q5_0 = 6,
    QUANT_Q5_1 = 7,
    QUANT_Q8_0 = 8,
    QUANT_Q8_1 = 9,
    QUANT_Q2_K = 10,
    QUANT_Q3_K = 11,
    QUANT_Q4_K = 12,
    QUANT_Q5_K = 13,
    QUANT_Q6_K = 14,
    QUANT_Q8_K = 15,
    QUANT_BF16 = 30,
    QUANT_TYPE_COUNT = 40,
} quant_type;

#define QK4_0 32
#define QK4_1 32
#define QK5_0 32
#define QK5_1 32
#define QK8_0 32
#define QK_K 256
#define K_SCALE_SIZE 12

typedef uint16_t quant_half; /* IEEE 754 binary16 bits */

typedef struct { quant_half d; uint8_t qs[QK4_0 / 2]; } block_q4_0;
typedef struct { quant_half d, m; uint8_t qs[QK4_1 / 2]; } block_q4_1;
typedef struct { quant_half d; uint8_t qh[4]; uint8_t qs[QK5_0 / 2]; } block_q5_0;
typedef struct { quant_half d, m; uint8_t qh[4]; uint8_t qs[QK5_1 / 2]; } block_q5_1;
typedef struct { quant_half d; int8_t qs[QK8_0]; } block_q8_0;
typedef struct { quant_half d, dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qs[QK_K / 2]; } block_q4_K;
typedef struct {
    quant_half d, dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qh[QK_K / 8];
    uint8_t qs[QK_K / 2];
} block_q5_K;
typedef struct { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; quant_half d; } block_q6_K;
typedef struct { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; } block_q8_K;

/* quant_name returns "q4_0" etc., or NULL for an unknown type. */
const char *quant_name(int type);

/* quant_block_size and quant_type_size give values per block and bytes per
 * block; 0 for types cai does not know. */
int quant_block_size(int type);
size_t quant_type_size(int type);

/* quant_type_align returns the address alignment the blocks of |type| need
 * (2 for blocks of halves, 4 for f32); 0 for an unknown type. */
size_t quant_type_align(int type);

/* quant_supported says whether cai can compute with |type|. */
int quant_supported(int type);

/* quant_row_size returns the bytes of a row of |n| values (n a multiple of
 * the block size). */
size_t quant_row_size(int type, int64_t n);

/* quant_dequantize_row expands |n| values of |type| at |src| into |dst|. */
void quant_dequantize_row(int type, const void *src, float *dst, int64_t n);

/* quant_quantize_row is the reference quantizer (round to nearest, as
 * ggml's reference): F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K,
 * Q5_K, Q6_K. Returns 0, or -1 for a type it cannot produce. */
int quant_quantize_row(int type, const float *src, void *dst, int64_t n);

float quant_half_to_float(quant_half h);
quant_half quant_float_to_half(float f);
float quant_bf16_to_float(uint16_t h);
uint16_t quant_float_to_bf16(float f);

#endif

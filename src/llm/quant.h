/* quant.h - the engine's side of the ggml tensor types: block layouts,
 * reference (de)quantizers, half and bfloat16 conversions (internal to llm).
 *
 * The type ids, names and sizes are the file format's (gguf/ggml_type.h);
 * the block structs here must match them bit for bit (quant.c asserts it).
 * Each dequantizer is the scalar reference that the SIMD kernels (kernels.c)
 * are tested against. */
#ifndef CAI_LLM_QUANT_H
#define CAI_LLM_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "gguf/ggml_type.h"

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

/* quant_supported says whether cai can compute with |type|. */
int quant_supported(int type);

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

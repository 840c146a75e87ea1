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

/* quant_k_scales is the Q4_K/Q5_K reference's choice of scales for one
 * super-block of 8 sub-blocks, from each sub-block's minimum |mn| and
 * maximum |mx| (fminf/fmaxf over its 32 values): writes the block's d,
 * dmin and packed scales, and each sub-block's step |s| and offset |m|:
 * value l becomes clamp(lrintf((x[l] + m) / s), 0, nmax) if s > 0, else 0.
 * Shared with the SIMD quantizers (quant_simd.c) so both choose alike. */
void quant_k_scales(const float mn[8], const float mx[8], int nmax, quant_half *d, quant_half *dmin,
                    uint8_t scales[12], float s[8], float m[8]);

float quant_half_to_float(quant_half h);
quant_half quant_float_to_half(float f);
float quant_bf16_to_float(uint16_t h);
uint16_t quant_float_to_bf16(float f);

#endif

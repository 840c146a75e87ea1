/* quantize.h - float weights into the engine's tensor types, for the tools
 * that write models (`cai model synth`, the Hugging Face import).
 *
 * The public face of the reference quantizers in quant.c (internal): round
 * to nearest, as ggml's reference does, so a file written here loads and
 * computes like one written by llama.cpp's tools. Where the CPU allows
 * (kernel_level, CAI_KERNEL=scalar to compare), Q8_0, Q4_0, Q5_0, Q4_K,
 * Q5_K, Q6_K and the F16/BF16 expansions run as SIMD twins that write the
 * same bytes (quant_simd.h). A row of n values of a type takes
 * ggml_type_row_size(type, n) bytes (gguf/ggml_type.h); n must be a
 * multiple of the type's block size. */
#ifndef CAI_LLM_QUANTIZE_H
#define CAI_LLM_QUANTIZE_H

#include <stdint.h>

#include "common/status.h"

/* quantize_row writes |n| values of |src| as ggml type |type| into |dst|:
 * F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K. Returns
 * CAI_OK, or CAI_ERR_UNSUPPORTED naming a type it cannot produce, or
 * CAI_ERR_INVALID_ARG when |n| is not a whole number of blocks. */
cai_status quantize_row(int type, const float *src, void *dst, int64_t n);

/* quantize_prepare settles, on the calling thread, which versions
 * quantize_row and dequantize_row use (the CPU's SIMD level is detected
 * once): call it before threads call them. */
void quantize_prepare(void);

/* dequantize_row writes |n| values of type |type| at |src| as floats into
 * |dst| (every type quantize_row writes). Returns CAI_ERR_UNSUPPORTED for
 * another type, CAI_ERR_INVALID_ARG when |n| is not a whole number of
 * blocks. */
cai_status dequantize_row(int type, const void *src, float *dst, int64_t n);

#endif

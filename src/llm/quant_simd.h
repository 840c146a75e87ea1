/* quant_simd.h - SIMD versions of the row quantizers and half/bfloat16
 * expansions that the Hugging Face import runs on every weight (internal
 * to llm): BF16 and F16 to F32; F32 to Q8_0, Q4_0, Q5_0, Q4_K, Q5_K and
 * Q6_K (all that `cai model import` writes but F16 and BF16).
 *
 * Each writes exactly the bytes of quant.c's scalar reference, for every
 * input: the same float operations in the same order, the same rounding
 * (lrintf is cvtps2dq, (int) is cvttps2dq), maxima and minima whose ties
 * resolve as the reference's loops do. Where an exact answer would need
 * the reference's own corner behaviour (a NaN in a block, a zero as a
 * sub-block's minimum or maximum, a quotient beyond int32), the block is
 * handed to the reference. tests/unit/test_quant.c compares each version
 * with the reference byte for byte on random rows and edge values. */
#ifndef CAI_LLM_QUANT_SIMD_H
#define CAI_LLM_QUANT_SIMD_H

#include <stdint.h>

/* A row quantizer: |n| floats (whole blocks) into |dst|. */
typedef void (*quant_simd_qfn)(const float *x, void *dst, int64_t n);
/* A row expansion: |n| values at |src| (any alignment) into floats. */
typedef void (*quant_simd_dfn)(const void *src, float *y, int64_t n);

/* quant_simd_quantizer returns the quantizer to ggml type |type| at kernel
 * level |level| (kernels.h: KERNEL_SCALAR, KERNEL_AVX2, ...), or NULL when
 * that level has none (then quant_quantize_row is the one to use). */
quant_simd_qfn quant_simd_quantizer(int type, int level);

/* quant_simd_dequantizer returns the expansion of ggml type |type| (F16,
 * BF16) at |level|, or NULL (then quant_dequantize_row). */
quant_simd_dfn quant_simd_dequantizer(int type, int level);

#endif

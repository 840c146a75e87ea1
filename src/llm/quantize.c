/* quantize.c - the public quantizer: quant.c's reference, with checks, or
 * where the CPU has one its SIMD twin (quant_simd.c, the same bytes). */
#include "llm/quantize.h"

#include "gguf/ggml_type.h"
#include "llm/kernels.h"
#include "llm/quant.h"
#include "llm/quant_simd.h"

void quantize_prepare(void) { (void)kernel_level(); }

cai_status quantize_row(int type, const float *src, void *dst, int64_t n) {
    int64_t block = (int64_t)ggml_type_block_size(type);
    if (block <= 0 || n < 0 || n % block != 0)
        return block <= 0 ? cai_fail(CAI_ERR_UNSUPPORTED, "cannot quantize to ggml type %d", type)
                          : cai_fail(CAI_ERR_INVALID_ARG, "%lld values are not whole blocks of %s",
                                     (long long)n, ggml_type_name(type));
    quant_simd_qfn simd = quant_simd_quantizer(type, kernel_level());
    if (simd) {
        simd(src, dst, n);
        return CAI_OK;
    }
    if (quant_quantize_row(type, src, dst, n) != 0)
        return cai_fail(CAI_ERR_UNSUPPORTED, "cannot quantize to %s", ggml_type_name(type));
    return CAI_OK;
}

cai_status dequantize_row(int type, const void *src, float *dst, int64_t n) {
    int64_t block = (int64_t)ggml_type_block_size(type);
    if (block <= 0 || !quant_supported(type))
        return cai_fail(CAI_ERR_UNSUPPORTED, "cannot read ggml type %d", type);
    if (n < 0 || n % block != 0)
        return cai_fail(CAI_ERR_INVALID_ARG, "%lld values are not whole blocks of %s",
                        (long long)n, ggml_type_name(type));
    quant_simd_dfn simd = quant_simd_dequantizer(type, kernel_level());
    if (simd)
        simd(src, dst, n);
    else
        quant_dequantize_row(type, src, dst, n);
    return CAI_OK;
}

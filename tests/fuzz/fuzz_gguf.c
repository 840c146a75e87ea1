/* fuzz_gguf.c - GGUF parsing of arbitrary bytes: a file either is refused or
 * every key and tensor it reports can be read within its bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "llm/quant.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gguf_file *g = NULL;
    if (gguf_open_mem(data, size, &g) != CAI_OK)
        return 0;
    for (size_t i = 0; i < gguf_n_kv(g); i++) {
        const char *k = gguf_kv_key(g, i), *s;
        gguf_arr a;
        if (gguf_get_str(g, k, &s) == CAI_OK)
            (void)strlen(s);
        if (gguf_get_arr(g, k, &a) == CAI_OK) {
            for (size_t j = 0; j < a.n && j < 64; j++) {
                if (a.type == GGUF_TYPE_STRING)
                    (void)memchr(a.strs[j].ptr, 0, a.strs[j].len);
                else
                    (void)gguf_arr_f32(&a, j);
            }
        }
    }
    for (size_t i = 0; i < gguf_n_tensors(g); i++) {
        const gguf_tensor *t = gguf_tensor_at(g, i);
        if (t->data < data || t->data + t->nbytes > data + size)
            abort();
        if (quant_supported(t->type) && t->ne[0] <= 4096) {
            float row[4096];
            quant_dequantize_row(t->type, t->data, row, t->ne[0]);
        }
    }
    gguf_close(g);
    return 0;
}

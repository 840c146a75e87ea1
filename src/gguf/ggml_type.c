/* ggml_type.c - the table of GGUF tensor types. */
#include "gguf/ggml_type.h"

typedef struct {
    const char *name;
    int block;    /* values per block */
    size_t size;  /* bytes per block */
    size_t align; /* the address alignment a row of this type needs */
} traits;

/* Sizes are ggml's block layouts (llm/quant.c asserts its structs match). */
static const traits TRAITS[GGML_TYPE_COUNT] = {
    [GGML_TYPE_F32] = {"f32", 1, 4, 4},
    [GGML_TYPE_F16] = {"f16", 1, 2, 2},
    [GGML_TYPE_Q4_0] = {"q4_0", QK4_0, 2 + QK4_0 / 2, 2},
    [GGML_TYPE_Q4_1] = {"q4_1", QK4_1, 4 + QK4_1 / 2, 2},
    [GGML_TYPE_Q5_0] = {"q5_0", QK5_0, 2 + 4 + QK5_0 / 2, 2},
    [GGML_TYPE_Q5_1] = {"q5_1", QK5_1, 4 + 4 + QK5_1 / 2, 2},
    [GGML_TYPE_Q8_0] = {"q8_0", QK8_0, 2 + QK8_0, 2},
    [GGML_TYPE_Q8_1] = {"q8_1", 32, 36, 4},
    [GGML_TYPE_Q2_K] = {"q2_k", QK_K, 84, 2},
    [GGML_TYPE_Q3_K] = {"q3_k", QK_K, 110, 2},
    [GGML_TYPE_Q4_K] = {"q4_k", QK_K, 4 + K_SCALE_SIZE + QK_K / 2, 2},
    [GGML_TYPE_Q5_K] = {"q5_k", QK_K, 4 + K_SCALE_SIZE + QK_K / 8 + QK_K / 2, 2},
    [GGML_TYPE_Q6_K] = {"q6_k", QK_K, QK_K / 2 + QK_K / 4 + QK_K / 16 + 2, 2},
    [GGML_TYPE_Q8_K] = {"q8_k", QK_K, 4 + QK_K + 2 * (QK_K / 16), 4},
    [GGML_TYPE_BF16] = {"bf16", 1, 2, 2},
};

static const traits *get(int type) {
    return type >= 0 && type < GGML_TYPE_COUNT && TRAITS[type].name ? &TRAITS[type] : NULL;
}

const char *ggml_type_name(int type) { return get(type) ? get(type)->name : NULL; }
int ggml_type_block_size(int type) { return get(type) ? get(type)->block : 0; }
size_t ggml_type_size(int type) { return get(type) ? get(type)->size : 0; }
size_t ggml_type_align(int type) { return get(type) ? get(type)->align : 0; }

size_t ggml_type_row_size(int type, int64_t n) {
    const traits *t = get(type);
    return t ? (size_t)(n / t->block) * t->size : 0;
}

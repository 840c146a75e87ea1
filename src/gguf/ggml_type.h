/* ggml_type.h - the tensor types a GGUF file stores: ids, names, block sizes,
 * bytes per block, alignment.
 *
 * The ids and block layouts are ggml's, bit for bit, since GGUF files store
 * them: a property of the file format, below both the reader (gguf.c), which
 * sizes every tensor with this table, and the engine (llm/quant.h), which
 * holds the block structs and the (de)quantizers for these types. The names
 * follow ggml (`ggml_type`, `GGML_TYPE_Q4_0`) so that a reader who knows
 * ggml finds them; `gguf_type` is the type of a metadata value (gguf.h). */
#ifndef CAI_GGUF_GGML_TYPE_H
#define CAI_GGUF_GGML_TYPE_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    GGML_TYPE_F32 = 0,
    GGML_TYPE_F16 = 1,
    GGML_TYPE_Q4_0 = 2,
    GGML_TYPE_Q4_1 = 3,
    GGML_TYPE_Q5_0 = 6,
    GGML_TYPE_Q5_1 = 7,
    GGML_TYPE_Q8_0 = 8,
    GGML_TYPE_Q8_1 = 9,
    GGML_TYPE_Q2_K = 10,
    GGML_TYPE_Q3_K = 11,
    GGML_TYPE_Q4_K = 12,
    GGML_TYPE_Q5_K = 13,
    GGML_TYPE_Q6_K = 14,
    GGML_TYPE_Q8_K = 15,
    GGML_TYPE_BF16 = 30,
    GGML_TYPE_COUNT = 40, /* ids are below this */
} ggml_type;

/* Values per block (ggml's names; llm/quant.h lays the blocks out). */
#define QK4_0 32
#define QK4_1 32
#define QK5_0 32
#define QK5_1 32
#define QK8_0 32
#define QK_K 256
#define K_SCALE_SIZE 12

/* ggml_type_name returns "q4_0" etc., or NULL for an id cai does not know. */
const char *ggml_type_name(int type);

/* ggml_type_block_size and ggml_type_size give the values per block and the
 * bytes per block; 0 for an id cai does not know. */
int ggml_type_block_size(int type);
size_t ggml_type_size(int type);

/* ggml_type_align returns the address alignment the blocks of |type| need
 * (2 for blocks of halves, 4 for f32); 0 for an id cai does not know. */
size_t ggml_type_align(int type);

/* ggml_type_row_size returns the bytes of a row of |n| values (|n| a
 * multiple of the block size); 0 for an id cai does not know. */
size_t ggml_type_row_size(int type, int64_t n);

#endif

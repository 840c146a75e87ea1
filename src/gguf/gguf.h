/* gguf.h - reading GGUF files (versions 2 and 3), mapped, every field checked.
 *
 * A gguf_file maps the whole file read-only (or reads memory the caller
 * keeps: `cai serve`'s unsealed model) and indexes its metadata and tensor table; tensor data is never
 * copied. Every count, length, size and offset is checked before use against
 * the bytes that remain and the limits below; a file that fails any check is
 * refused with a message naming what is wrong (see tests/unit/test_gguf.c,
 * one test per rule). */
#ifndef CAI_GGUF_GGUF_H
#define CAI_GGUF_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

#define GGUF_MAX_KV 65536
#define GGUF_MAX_TENSORS 65536
#define GGUF_MAX_KEY_LEN 65535
#define GGUF_MAX_STRING_LEN (64u << 20)
#define GGUF_MAX_ARRAY_LEN (1u << 28)
#define GGUF_MAX_DIMS 4
#define GGUF_DEFAULT_ALIGNMENT 32

typedef enum {
    GGUF_TYPE_UINT8 = 0,
    GGUF_TYPE_INT8 = 1,
    GGUF_TYPE_UINT16 = 2,
    GGUF_TYPE_INT16 = 3,
    GGUF_TYPE_UINT32 = 4,
    GGUF_TYPE_INT32 = 5,
    GGUF_TYPE_FLOAT32 = 6,
    GGUF_TYPE_BOOL = 7,
    GGUF_TYPE_STRING = 8,
    GGUF_TYPE_ARRAY = 9,
    GGUF_TYPE_UINT64 = 10,
    GGUF_TYPE_INT64 = 11,
    GGUF_TYPE_FLOAT64 = 12,
    GGUF_TYPE_COUNT
} gguf_type;

typedef struct gguf_file gguf_file;

typedef struct {
    const char *name;   /* NUL-terminated, owned by the file */
    int type;           /* ggml_type (ggml_type.h) */
    int n_dims;
    int64_t ne[GGUF_MAX_DIMS]; /* unused dimensions are 1 */
    const uint8_t *data;
    size_t nbytes;
} gguf_tensor;

typedef struct {
    int type;           /* element type */
    size_t n;
    const uint8_t *data; /* numeric: n packed little-endian elements (unaligned) */
    const struct gguf_str *strs; /* strings: n entries */
} gguf_arr;

struct gguf_str {
    const char *ptr; /* not NUL-terminated: points into the mapping */
    size_t len;
};

/* gguf_open_path / gguf_open_fd map and parse a file (the fd may be closed
 * afterwards); gguf_open_mem parses |len| bytes the caller keeps alive. */
cai_status gguf_open_path(const char *path, gguf_file **out);
cai_status gguf_open_fd(int fd, gguf_file **out);
cai_status gguf_open_mem(const void *data, size_t len, gguf_file **out);
void gguf_close(gguf_file *g);

uint32_t gguf_version(const gguf_file *g);
size_t gguf_alignment(const gguf_file *g);

/* Metadata by key. CAI_ERR_NOT_FOUND when absent; CAI_ERR_FORMAT (with a
 * message) when present with another type. */
cai_status gguf_get_uint(const gguf_file *g, const char *key, uint64_t *out); /* any integer >= 0 */
cai_status gguf_get_int(const gguf_file *g, const char *key, int64_t *out);
cai_status gguf_get_float(const gguf_file *g, const char *key, float *out);  /* f32 or f64 */
cai_status gguf_get_bool(const gguf_file *g, const char *key, int *out);
cai_status gguf_get_str(const gguf_file *g, const char *key, const char **out); /* NUL-terminated */
cai_status gguf_get_arr(const gguf_file *g, const char *key, gguf_arr *out);

/* gguf_arr_i64 / gguf_arr_f32 read element |i| of a numeric array. */
int64_t gguf_arr_i64(const gguf_arr *a, size_t i);
float gguf_arr_f32(const gguf_arr *a, size_t i);

/* Iteration, for `cai model inspect`. */
size_t gguf_n_kv(const gguf_file *g);
const char *gguf_kv_key(const gguf_file *g, size_t i);
int gguf_kv_type(const gguf_file *g, size_t i);
size_t gguf_n_tensors(const gguf_file *g);
const gguf_tensor *gguf_tensor_at(const gguf_file *g, size_t i);

/* gguf_find_tensor copies the tensor called |name| to |out|. */
cai_status gguf_find_tensor(const gguf_file *g, const char *name, gguf_tensor *out);

const char *gguf_type_name(int type);

#endif

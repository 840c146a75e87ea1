/* gguf.c - the GGUF parser: a cursor over the mapping, every size checked. */
#include "gguf/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cursor.h"
#include "gguf/ggml_type.h"

typedef struct {
    char *key;
    int type;
    union {
        uint64_t u;
        int64_t i;
        double f;
    } num;
    char *str;
    gguf_arr arr;
} kv;

struct gguf_file {
    const uint8_t *map;
    size_t len;
    int mapped;
    uint32_t version;
    size_t alignment;
    kv *kvs;
    size_t n_kv;
    gguf_tensor *tensors;
    size_t n_tensors;
};

static const struct {
    const char *name;
    size_t size;
} TYPES[GGUF_TYPE_COUNT] = {
    [GGUF_TYPE_UINT8] = {"u8", 1},    [GGUF_TYPE_INT8] = {"i8", 1},
    [GGUF_TYPE_UINT16] = {"u16", 2},  [GGUF_TYPE_INT16] = {"i16", 2},
    [GGUF_TYPE_UINT32] = {"u32", 4},  [GGUF_TYPE_INT32] = {"i32", 4},
    [GGUF_TYPE_FLOAT32] = {"f32", 4}, [GGUF_TYPE_BOOL] = {"bool", 1},
    [GGUF_TYPE_STRING] = {"string", 0}, [GGUF_TYPE_ARRAY] = {"array", 0},
    [GGUF_TYPE_UINT64] = {"u64", 8},  [GGUF_TYPE_INT64] = {"i64", 8},
    [GGUF_TYPE_FLOAT64] = {"f64", 8},
};

const char *gguf_type_name(int type) {
    return type >= 0 && type < GGUF_TYPE_COUNT ? TYPES[type].name : "unknown";
}

/* ---- parsing ------------------------------------------------------------- */

static cai_status truncated(const char *what) {
    return cai_fail(CAI_ERR_TRUNCATED, "GGUF file is truncated in %s", what);
}

/* A GGUF string: u64 length, bytes. */
static cai_status read_str(cursor *c, size_t max, const char *what, cursor *out) {
    uint64_t n;
    if (!cursor_get_u64le(c, &n))
        return truncated(what);
    if (n > max)
        return cai_fail(CAI_ERR_LIMIT, "GGUF %s is %llu bytes long (limit %zu)", what,
                        (unsigned long long)n, max);
    if (!cursor_get_span(c, out, (size_t)n))
        return truncated(what);
    return CAI_OK;
}

static cai_status dup_str(const cursor *s, const char *what, char **out) {
    size_t n = cursor_len(s);
    if (memchr(cursor_data(s), 0, n) != NULL)
        return cai_fail(CAI_ERR_FORMAT, "GGUF %s contains a NUL byte", what);
    char *p = malloc(n + 1);
    if (p == NULL)
        return CAI_ERR_NOMEM;
    memcpy(p, cursor_data(s), n);
    p[n] = '\0';
    *out = p;
    return CAI_OK;
}

static cai_status read_scalar(cursor *c, int type, kv *v, const char *key) {
    uint8_t b[8];
    size_t n = TYPES[type].size;
    if (!cursor_copy(c, b, n))
        return truncated(key);
    uint64_t u = 0;
    for (size_t i = 0; i < n; i++)
        u |= (uint64_t)b[i] << (8 * i);
    switch (type) {
    case GGUF_TYPE_INT8: v->num.i = (int8_t)u; break;
    case GGUF_TYPE_INT16: v->num.i = (int16_t)u; break;
    case GGUF_TYPE_INT32: v->num.i = (int32_t)u; break;
    case GGUF_TYPE_INT64: v->num.i = (int64_t)u; break;
    case GGUF_TYPE_FLOAT32: {
        float f;
        uint32_t w = (uint32_t)u;
        memcpy(&f, &w, 4);
        v->num.f = f;
        break;
    }
    case GGUF_TYPE_FLOAT64: memcpy(&v->num.f, &u, 8); break;
    case GGUF_TYPE_BOOL:
        if (u > 1)
            return cai_fail(CAI_ERR_FORMAT, "GGUF key %s: a bool must be 0 or 1", key);
        v->num.u = u;
        break;
    default: v->num.u = u; break;
    }
    return CAI_OK;
}

static cai_status read_array(cursor *c, kv *v) {
    uint32_t et;
    uint64_t n;
    if (!cursor_get_u32le(c, &et) || !cursor_get_u64le(c, &n))
        return truncated(v->key);
    if (et >= GGUF_TYPE_COUNT)
        return cai_fail(CAI_ERR_FORMAT, "GGUF key %s: unknown array element type %u", v->key, et);
    if (et == GGUF_TYPE_ARRAY)
        return cai_fail(CAI_ERR_UNSUPPORTED, "GGUF key %s: nested arrays are not supported", v->key);
    if (n > GGUF_MAX_ARRAY_LEN)
        return cai_fail(CAI_ERR_LIMIT, "GGUF key %s: array of %llu elements (limit %u)", v->key,
                        (unsigned long long)n, GGUF_MAX_ARRAY_LEN);
    v->arr.type = (int)et;
    v->arr.n = (size_t)n;
    if (et != GGUF_TYPE_STRING) {
        cursor span;
        if (n * TYPES[et].size > cursor_len(c) || !cursor_get_span(c, &span, (size_t)n * TYPES[et].size))
            return truncated(v->key);
        v->arr.data = cursor_data(&span);
        if (et == GGUF_TYPE_BOOL)
            for (size_t i = 0; i < (size_t)n; i++)
                if (v->arr.data[i] > 1)
                    return cai_fail(CAI_ERR_FORMAT, "GGUF key %s: a bool must be 0 or 1", v->key);
        return CAI_OK;
    }
    if (n > cursor_len(c) / 8) /* every string takes at least its 8-byte length */
        return truncated(v->key);
    struct gguf_str *s = calloc(n ? (size_t)n : 1, sizeof(*s));
    if (s == NULL)
        return CAI_ERR_NOMEM;
    v->arr.strs = s;
    for (size_t i = 0; i < (size_t)n; i++) {
        cursor e;
        cai_status st = read_str(c, GGUF_MAX_STRING_LEN, v->key, &e);
        if (st != CAI_OK)
            return st;
        s[i].ptr = (const char *)cursor_data(&e);
        s[i].len = cursor_len(&e);
    }
    return CAI_OK;
}

static const kv *find(const gguf_file *g, const char *key) {
    for (size_t i = 0; i < g->n_kv; i++)
        if (strcmp(g->kvs[i].key, key) == 0)
            return &g->kvs[i];
    return NULL;
}

static cai_status read_kvs(gguf_file *g, cursor *c, uint64_t n) {
    g->kvs = calloc(n ? (size_t)n : 1, sizeof(kv));
    if (g->kvs == NULL)
        return CAI_ERR_NOMEM;
    for (size_t i = 0; i < (size_t)n; i++) {
        cursor k;
        cai_status st = read_str(c, GGUF_MAX_KEY_LEN, "a metadata key", &k);
        if (st != CAI_OK)
            return st;
        if (cursor_len(&k) == 0)
            return cai_fail(CAI_ERR_FORMAT, "GGUF metadata key %zu is empty", i);
        kv *v = &g->kvs[i];
        if ((st = dup_str(&k, "metadata key", &v->key)) != CAI_OK)
            return st;
        g->n_kv = i + 1; /* owned from here on */
        if (find(g, v->key) != v)
            return cai_fail(CAI_ERR_FORMAT, "GGUF key %.80s appears twice", v->key);
        uint32_t type;
        if (!cursor_get_u32le(c, &type))
            return truncated(v->key);
        if (type >= GGUF_TYPE_COUNT)
            return cai_fail(CAI_ERR_FORMAT, "GGUF key %.80s has unknown type %u", v->key, type);
        v->type = (int)type;
        if (type == GGUF_TYPE_STRING) {
            cursor s;
            if ((st = read_str(c, GGUF_MAX_STRING_LEN, v->key, &s)) != CAI_OK ||
                (st = dup_str(&s, v->key, &v->str)) != CAI_OK)
                return st;
        } else if (type == GGUF_TYPE_ARRAY) {
            if ((st = read_array(c, v)) != CAI_OK)
                return st;
        } else if ((st = read_scalar(c, (int)type, v, v->key)) != CAI_OK) {
            return st;
        }
    }
    return CAI_OK;
}

static int cmp_offset(const void *a, const void *b) {
    const gguf_tensor *x = *(const gguf_tensor *const *)a, *y = *(const gguf_tensor *const *)b;
    return x->data < y->data ? -1 : x->data > y->data;
}

static cai_status read_tensors(gguf_file *g, cursor *c, uint64_t n) {
    g->tensors = calloc(n ? (size_t)n : 1, sizeof(gguf_tensor));
    uint64_t *offsets = calloc(n ? (size_t)n : 1, sizeof(uint64_t));
    cai_status st = g->tensors && offsets ? CAI_OK : CAI_ERR_NOMEM;
    for (size_t i = 0; st == CAI_OK && i < (size_t)n; i++) {
        gguf_tensor *t = &g->tensors[i];
        cursor name;
        char *nm = NULL;
        if ((st = read_str(c, 255, "a tensor name", &name)) != CAI_OK ||
            (st = dup_str(&name, "tensor name", &nm)) != CAI_OK)
            break;
        t->name = nm;
        g->n_tensors = i + 1;
        for (size_t j = 0; j < i; j++)
            if (strcmp(g->tensors[j].name, nm) == 0)
                st = cai_fail(CAI_ERR_FORMAT, "GGUF tensor %.80s appears twice", nm);
        uint32_t nd, type;
        if (st != CAI_OK)
            break;
        if (!cursor_get_u32le(c, &nd)) {
            st = truncated(nm);
            break;
        }
        if (nd == 0 || nd > GGUF_MAX_DIMS) {
            st = cai_fail(CAI_ERR_FORMAT, "tensor %.80s has %u dimensions (1 to %d)", nm, nd,
                          GGUF_MAX_DIMS);
            break;
        }
        t->n_dims = (int)nd;
        int64_t count = 1;
        for (int d = 0; d < GGUF_MAX_DIMS; d++) {
            uint64_t ne = 1;
            if (d < (int)nd && !cursor_get_u64le(c, &ne)) {
                st = truncated(nm);
                break;
            }
            if (ne == 0 || ne > (uint64_t)INT64_MAX || (uint64_t)count > (uint64_t)INT64_MAX / ne) {
                st = cai_fail(CAI_ERR_FORMAT, "tensor %.80s: bad or overflowing dimensions", nm);
                break;
            }
            t->ne[d] = (int64_t)ne;
            count *= (int64_t)ne;
        }
        if (st != CAI_OK)
            break;
        if (!cursor_get_u32le(c, &type) || !cursor_get_u64le(c, &offsets[i])) {
            st = truncated(nm);
            break;
        }
        t->type = (int)type;
        int bs = ggml_type_block_size((int)type);
        if (bs == 0) {
            st = cai_fail(CAI_ERR_UNSUPPORTED, "tensor %.80s has unknown type %u", nm, type);
            break;
        }
        if (t->ne[0] % bs != 0) {
            st = cai_fail(CAI_ERR_FORMAT, "tensor %.80s: row of %lld values is not a multiple "
                          "of the %s block size %d", nm, (long long)t->ne[0], ggml_type_name((int)type), bs);
            break;
        }
        uint64_t rows = (uint64_t)(count / t->ne[0]), row = ggml_type_row_size((int)type, t->ne[0]);
        if (row != 0 && rows > SIZE_MAX / row) {
            st = cai_fail(CAI_ERR_FORMAT, "tensor %.80s is too large", nm);
            break;
        }
        t->nbytes = (size_t)(rows * row);
        if (offsets[i] % g->alignment != 0)
            st = cai_fail(CAI_ERR_FORMAT, "tensor %.80s: offset %llu is not aligned to %zu", nm,
                          (unsigned long long)offsets[i], g->alignment);
    }
    if (st == CAI_OK) {
        /* The data section starts at the next alignment boundary. */
        size_t pos = g->len - cursor_len(c);
        size_t start = (pos + g->alignment - 1) / g->alignment * g->alignment;
        if (n > 0 && start > g->len)
            st = truncated("the tensor data");
        for (size_t i = 0; st == CAI_OK && i < (size_t)n; i++) {
            gguf_tensor *t = &g->tensors[i];
            if (offsets[i] > g->len - start || t->nbytes > g->len - start - offsets[i])
                st = cai_fail(CAI_ERR_TRUNCATED, "tensor %.80s lies past the end of the file", t->name);
            else if ((uintptr_t)(g->map + start + offsets[i]) % ggml_type_align(t->type) != 0)
                /* A general.alignment of 1 can put a block of halves at an odd address. */
                st = cai_fail(CAI_ERR_FORMAT, "tensor %.80s: data is not aligned to the %zu bytes %s needs",
                              t->name, ggml_type_align(t->type), ggml_type_name(t->type));
            else
                t->data = g->map + start + offsets[i];
        }
    }
    if (st == CAI_OK && n > 1) { /* no two tensors may overlap */
        const gguf_tensor **by = malloc((size_t)n * sizeof(*by));
        if (by == NULL) {
            st = CAI_ERR_NOMEM;
        } else {
            for (size_t i = 0; i < (size_t)n; i++)
                by[i] = &g->tensors[i];
            qsort(by, (size_t)n, sizeof(*by), cmp_offset);
            for (size_t i = 1; st == CAI_OK && i < (size_t)n; i++)
                if (by[i - 1]->data + by[i - 1]->nbytes > by[i]->data)
                    st = cai_fail(CAI_ERR_FORMAT, "tensors %.60s and %.60s overlap", by[i - 1]->name,
                                  by[i]->name);
            free(by);
        }
    }
    free(offsets);
    return st;
}

static cai_status parse(gguf_file *g) {
    cursor c;
    cursor_init(&c, g->map, g->len);
    uint8_t magic[4];
    uint32_t version;
    uint64_t n_tensors, n_kv;
    if (!cursor_copy(&c, magic, 4) || memcmp(magic, "GGUF", 4) != 0)
        return cai_fail(CAI_ERR_FORMAT, "not a GGUF file (bad magic)");
    if (!cursor_get_u32le(&c, &version))
        return truncated("the header");
    if (version != 2 && version != 3)
        return cai_fail(CAI_ERR_UNSUPPORTED, "GGUF version %u is not supported (2 and 3 are)", version);
    g->version = version;
    if (!cursor_get_u64le(&c, &n_tensors) || !cursor_get_u64le(&c, &n_kv))
        return truncated("the header");
    if (n_tensors > GGUF_MAX_TENSORS)
        return cai_fail(CAI_ERR_LIMIT, "GGUF file declares %llu tensors (limit %d)",
                        (unsigned long long)n_tensors, GGUF_MAX_TENSORS);
    if (n_kv > GGUF_MAX_KV)
        return cai_fail(CAI_ERR_LIMIT, "GGUF file declares %llu metadata keys (limit %d)",
                        (unsigned long long)n_kv, GGUF_MAX_KV);
    cai_status st = read_kvs(g, &c, n_kv);
    if (st != CAI_OK)
        return st;
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    const kv *a = find(g, "general.alignment");
    if (a) {
        if (a->type != GGUF_TYPE_UINT32 || a->num.u == 0 || (a->num.u & (a->num.u - 1)) != 0 ||
            a->num.u > (1u << 20))
            return cai_fail(CAI_ERR_FORMAT, "general.alignment must be a u32 power of two up to 1 MiB");
        g->alignment = (size_t)a->num.u;
    }
    return read_tensors(g, &c, n_tensors);
}

cai_status gguf_open_mem(const void *data, size_t len, gguf_file **out) {
    *out = NULL;
    gguf_file *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return CAI_ERR_NOMEM;
    g->map = data;
    g->len = len;
    cai_status st = parse(g);
    if (st != CAI_OK) {
        gguf_close(g);
        return st;
    }
    *out = g;
    return CAI_OK;
}

cai_status gguf_open_fd(int fd, gguf_file **out) {
    *out = NULL;
    struct stat sb;
    if (fstat(fd, &sb) != 0)
        return cai_fail(CAI_ERR_IO, "cannot stat the model: %s", strerror(errno));
    if (!S_ISREG(sb.st_mode) || sb.st_size <= 0)
        return cai_fail(CAI_ERR_FORMAT, "the model is not a regular non-empty file");
    size_t len = (size_t)sb.st_size;
    void *map = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED)
        return cai_fail(CAI_ERR_IO, "cannot map the model: %s", strerror(errno));
    cai_status st = gguf_open_mem(map, len, out);
    if (st != CAI_OK) {
        munmap(map, len);
        return st;
    }
    (*out)->mapped = 1;
    return CAI_OK;
}

cai_status gguf_open_path(const char *path, gguf_file **out) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cai_fail(CAI_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    cai_status st = gguf_open_fd(fd, out);
    close(fd);
    return st;
}

void gguf_close(gguf_file *g) {
    if (g == NULL)
        return;
    for (size_t i = 0; i < g->n_kv; i++) {
        free(g->kvs[i].key);
        free(g->kvs[i].str);
        free((void *)g->kvs[i].arr.strs);
    }
    free(g->kvs);
    for (size_t i = 0; i < g->n_tensors; i++)
        free((char *)g->tensors[i].name);
    free(g->tensors);
    if (g->mapped)
        munmap((void *)g->map, g->len);
    free(g);
}

/* ---- lookups --------------------------------------------------------------- */

uint32_t gguf_version(const gguf_file *g) { return g->version; }
size_t gguf_alignment(const gguf_file *g) { return g->alignment; }
size_t gguf_n_kv(const gguf_file *g) { return g->n_kv; }
const char *gguf_kv_key(const gguf_file *g, size_t i) { return i < g->n_kv ? g->kvs[i].key : NULL; }
int gguf_kv_type(const gguf_file *g, size_t i) { return i < g->n_kv ? g->kvs[i].type : -1; }
size_t gguf_n_tensors(const gguf_file *g) { return g->n_tensors; }
const gguf_tensor *gguf_tensor_at(const gguf_file *g, size_t i) {
    return i < g->n_tensors ? &g->tensors[i] : NULL;
}

static cai_status lookup(const gguf_file *g, const char *key, const kv **out) {
    *out = find(g, key);
    return *out ? CAI_OK : CAI_ERR_NOT_FOUND;
}

static cai_status wrong_type(const kv *v, const char *want) {
    return cai_fail(CAI_ERR_FORMAT, "GGUF key %.80s is a %s, not %s", v->key,
                    gguf_type_name(v->type), want);
}

static int is_signed(int t) {
    return t == GGUF_TYPE_INT8 || t == GGUF_TYPE_INT16 || t == GGUF_TYPE_INT32 || t == GGUF_TYPE_INT64;
}

static int is_unsigned(int t) {
    return t == GGUF_TYPE_UINT8 || t == GGUF_TYPE_UINT16 || t == GGUF_TYPE_UINT32 || t == GGUF_TYPE_UINT64;
}

cai_status gguf_get_uint(const gguf_file *g, const char *key, uint64_t *out) {
    const kv *v;
    cai_status st = lookup(g, key, &v);
    if (st != CAI_OK)
        return st;
    if (is_unsigned(v->type))
        *out = v->num.u;
    else if (is_signed(v->type) && v->num.i >= 0)
        *out = (uint64_t)v->num.i;
    else
        return wrong_type(v, "a non-negative integer");
    return CAI_OK;
}

cai_status gguf_get_int(const gguf_file *g, const char *key, int64_t *out) {
    const kv *v;
    cai_status st = lookup(g, key, &v);
    if (st != CAI_OK)
        return st;
    if (is_signed(v->type))
        *out = v->num.i;
    else if (is_unsigned(v->type) && v->num.u <= (uint64_t)INT64_MAX)
        *out = (int64_t)v->num.u;
    else
        return wrong_type(v, "an integer");
    return CAI_OK;
}

cai_status gguf_get_float(const gguf_file *g, const char *key, float *out) {
    const kv *v;
    cai_status st = lookup(g, key, &v);
    if (st != CAI_OK)
        return st;
    if (v->type != GGUF_TYPE_FLOAT32 && v->type != GGUF_TYPE_FLOAT64)
        return wrong_type(v, "a float");
    *out = (float)v->num.f;
    return CAI_OK;
}

cai_status gguf_get_bool(const gguf_file *g, const char *key, int *out) {
    const kv *v;
    cai_status st = lookup(g, key, &v);
    if (st != CAI_OK)
        return st;
    if (v->type != GGUF_TYPE_BOOL)
        return wrong_type(v, "a bool");
    *out = (int)v->num.u;
    return CAI_OK;
}

cai_status gguf_get_str(const gguf_file *g, const char *key, const char **out) {
    const kv *v;
    cai_status st = lookup(g, key, &v);
    if (st != CAI_OK)
        return st;
    if (v->type != GGUF_TYPE_STRING)
        return wrong_type(v, "a string");
    *out = v->str;
    return CAI_OK;
}

cai_status gguf_get_arr(const gguf_file *g, const char *key, gguf_arr *out) {
    const kv *v;
    cai_status st = lookup(g, key, &v);
    if (st != CAI_OK)
        return st;
    if (v->type != GGUF_TYPE_ARRAY)
        return wrong_type(v, "an array");
    *out = v->arr;
    return CAI_OK;
}

static uint64_t raw_le(const uint8_t *p, size_t n) {
    uint64_t u = 0;
    for (size_t i = 0; i < n; i++)
        u |= (uint64_t)p[i] << (8 * i);
    return u;
}

int64_t gguf_arr_i64(const gguf_arr *a, size_t i) {
    size_t n = TYPES[a->type].size;
    uint64_t u = raw_le(a->data + i * n, n);
    switch (a->type) {
    case GGUF_TYPE_INT8: return (int8_t)u;
    case GGUF_TYPE_INT16: return (int16_t)u;
    case GGUF_TYPE_INT32: return (int32_t)u;
    case GGUF_TYPE_FLOAT32: return (int64_t)gguf_arr_f32(a, i);
    default: return (int64_t)u;
    }
}

float gguf_arr_f32(const gguf_arr *a, size_t i) {
    if (a->type == GGUF_TYPE_FLOAT32) {
        uint32_t w = (uint32_t)raw_le(a->data + 4 * i, 4);
        float f;
        memcpy(&f, &w, 4);
        return f;
    }
    if (a->type == GGUF_TYPE_FLOAT64) {
        uint64_t w = raw_le(a->data + 8 * i, 8);
        double d;
        memcpy(&d, &w, 8);
        return (float)d;
    }
    return (float)gguf_arr_i64(a, i);
}

cai_status gguf_find_tensor(const gguf_file *g, const char *name, gguf_tensor *out) {
    for (size_t i = 0; i < g->n_tensors; i++) {
        if (strcmp(g->tensors[i].name, name) == 0) {
            *out = g->tensors[i];
            return CAI_OK;
        }
    }
    return CAI_ERR_NOT_FOUND;
}

/* safetensors.c - safetensors headers checked through the cursor, data by pread. */
#include "hf/safetensors.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/cursor.h"
#include "common/file.h"
#include "gguf/ggml_type.h"

struct safetensors {
    int fd;                 /* -1 for a file in memory */
    const uint8_t *mem;     /* the whole file, when in memory */
    uint64_t file_size;
    char *label;            /* the path, for messages */
    safetensors_tensor *t;  /* by data offset */
    size_t n;
    const safetensors_tensor **by_name; /* sorted by name */
};

static const struct {
    const char *name;
    int dtype; /* -1: a safetensors dtype cai does not import */
    unsigned size;
} DTYPES[] = {
    {"F32", GGML_TYPE_F32, 4}, {"F16", GGML_TYPE_F16, 2}, {"BF16", GGML_TYPE_BF16, 2},
    {"F64", -1, 8},  {"I64", -1, 8},  {"U64", -1, 8},  {"I32", -1, 4},     {"U32", -1, 4},
    {"I16", -1, 2},  {"U16", -1, 2},  {"I8", -1, 1},   {"U8", -1, 1},      {"BOOL", -1, 1},
    {"F8_E4M3", -1, 1}, {"F8_E5M2", -1, 1}, {"F8_E8M0", -1, 1}, {"F6_E2M3", -1, 1},
    {"F6_E3M2", -1, 1}, {"F4", -1, 1}, {"C64", -1, 8},
};

const char *safetensors_dtype_name(int dtype) {
    for (size_t i = 0; i < 3; i++)
        if (DTYPES[i].dtype == dtype)
            return DTYPES[i].name;
    return "?";
}

void safetensors_free(safetensors *s) {
    if (s == NULL)
        return;
    if (s->fd >= 0)
        close(s->fd);
    for (size_t i = 0; i < s->n; i++)
        free((char *)s->t[i].name);
    free(s->t);
    free(s->by_name);
    free(s->label);
    free(s);
}

size_t safetensors_n_tensors(const safetensors *s) { return s->n; }

const safetensors_tensor *safetensors_tensor_at(const safetensors *s, size_t i) {
    return i < s->n ? &s->t[i] : NULL;
}

static int cmp_offset(const void *a, const void *b) {
    const safetensors_tensor *x = a, *y = b;
    if (x->offset != y->offset)
        return x->offset < y->offset ? -1 : 1;
    return x->nbytes < y->nbytes ? -1 : x->nbytes > y->nbytes;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp((*(const safetensors_tensor *const *)a)->name,
                  (*(const safetensors_tensor *const *)b)->name);
}

static int cmp_key(const void *key, const void *elem) {
    return strcmp(key, (*(const safetensors_tensor *const *)elem)->name);
}

const safetensors_tensor *safetensors_find(const safetensors *s, const char *name) {
    if (s->n == 0)
        return NULL;
    const safetensors_tensor *const *p = bsearch(name, s->by_name, s->n, sizeof(*s->by_name), cmp_key);
    return p ? *p : NULL;
}

/* A non-negative JSON integer. */
static int json_u64(const json_t *v, uint64_t *out) {
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return 0;
    *out = (uint64_t)json_integer_value(v);
    return 1;
}

/* One header entry: |name| -> {"dtype", "shape", "data_offsets"}. */
static cai_status parse_entry(const safetensors *s, const char *name, json_t *v,
                              uint64_t data_size, safetensors_tensor *t) {
    const char *L = s->label;
    size_t nlen = strlen(name);
    if (nlen == 0 || nlen > SAFETENSORS_MAX_NAME)
        return cai_fail(CAI_ERR_FORMAT, "%s: a tensor name is empty or longer than %u bytes", L,
                        SAFETENSORS_MAX_NAME);
    if (!json_is_object(v))
        return cai_fail(CAI_ERR_FORMAT, "%s: tensor %.80s: not an object", L, name);
    const char *key;
    json_t *field;
    json_object_foreach(v, key, field) {
        if (strcmp(key, "dtype") && strcmp(key, "shape") && strcmp(key, "data_offsets"))
            return cai_fail(CAI_ERR_FORMAT, "%s: tensor %.80s: unknown field '%.40s'", L, name, key);
    }
    const char *dt = json_string_value(json_object_get(v, "dtype"));
    json_t *shape = json_object_get(v, "shape"), *offs = json_object_get(v, "data_offsets");
    if (dt == NULL || !json_is_array(shape) || !json_is_array(offs))
        return cai_fail(CAI_ERR_FORMAT, "%s: tensor %.80s: needs dtype, shape and data_offsets", L,
                        name);
    size_t k = 0;
    while (k < sizeof(DTYPES) / sizeof(DTYPES[0]) && strcmp(DTYPES[k].name, dt) != 0)
        k++;
    if (k == sizeof(DTYPES) / sizeof(DTYPES[0]))
        return cai_fail(CAI_ERR_FORMAT, "%s: tensor %.80s: unknown dtype '%.20s'", L, name, dt);
    if (DTYPES[k].dtype < 0)
        return cai_fail(CAI_ERR_UNSUPPORTED, "%s: tensor %.80s: dtype %s is not supported "
                        "(F32, F16 and BF16 are)", L, name, DTYPES[k].name);
    size_t nd = json_array_size(shape);
    if (nd > SAFETENSORS_MAX_DIMS)
        return cai_fail(CAI_ERR_UNSUPPORTED, "%s: tensor %.80s has %zu dimensions (at most %d)", L,
                        name, nd, SAFETENSORS_MAX_DIMS);
    memset(t, 0, sizeof(*t));
    t->dtype = DTYPES[k].dtype;
    t->n_dims = (int)nd;
    uint64_t n = 1;
    for (size_t i = 0; i < nd; i++) {
        uint64_t d;
        if (!json_u64(json_array_get(shape, i), &d) || d > INT64_MAX)
            return cai_fail(CAI_ERR_FORMAT, "%s: tensor %.80s: shape[%zu] is not a size", L, name, i);
        if (d != 0 && n > UINT64_MAX / d)
            return cai_fail(CAI_ERR_FORMAT, "%s: tensor %.80s: shape overflows", L, name);
        n *= d;
        t->shape[i] = (int64_t)d;
    }
    t->n_elems = n;
    uint64_t begin, end;
    if (json_array_size(offs) != 2 || !json_u64(json_array_get(offs, 0), &begin) ||
        !json_u64(json_array_get(offs, 1), &end) || end < begin)
        return cai_fail(CAI_ERR_FORMAT, "%s: tensor %.80s: data_offsets must be [begin, end] with "
                        "begin <= end", L, name);
    if (end > data_size)
        return cai_fail(CAI_ERR_FORMAT, "%s: tensor %.80s: data [%llu, %llu) passes the end of the "
                        "file's %llu data bytes", L, name, (unsigned long long)begin,
                        (unsigned long long)end, (unsigned long long)data_size);
    if (n > UINT64_MAX / DTYPES[k].size || end - begin != n * DTYPES[k].size)
        return cai_fail(CAI_ERR_FORMAT, "%s: tensor %.80s: %llu bytes of data, but dtype %s x shape "
                        "needs %llu", L, name, (unsigned long long)(end - begin), DTYPES[k].name,
                        n > UINT64_MAX / DTYPES[k].size ? 0ull : (unsigned long long)(n * DTYPES[k].size));
    t->nbytes = end - begin;
    t->offset = begin; /* made absolute by the caller */
    t->name = strdup(name);
    return t->name ? CAI_OK : CAI_ERR_NOMEM;
}

/* parse checks the JSON header |hdr| of a file whose data section (after
 * the header) is |data_size| bytes and fills |s|. */
static cai_status parse_header(safetensors *s, const uint8_t *hdr, size_t hlen, uint64_t data_size) {
    const char *L = s->label;
    if (hlen == 0 || hdr[0] != '{')
        return cai_fail(CAI_ERR_FORMAT, "%s: the header is not a JSON object", L);
    json_error_t je;
    json_t *root = json_loadb((const char *)hdr, hlen, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL)
        return cai_fail(CAI_ERR_FORMAT, "%s: header JSON at byte %d: %s", L, je.position, je.text);
    cai_status st = CAI_OK;
    if (!json_is_object(root)) {
        st = cai_fail(CAI_ERR_FORMAT, "%s: the header is not a JSON object", L);
        goto out;
    }
    json_t *meta = json_object_get(root, "__metadata__");
    if (meta != NULL && !json_is_object(meta)) {
        st = cai_fail(CAI_ERR_FORMAT, "%s: __metadata__ is not an object", L);
        goto out;
    }
    size_t count = json_object_size(root) - (meta != NULL);
    if (count > SAFETENSORS_MAX_TENSORS) {
        st = cai_fail(CAI_ERR_LIMIT, "%s: %zu tensors (at most %d)", L, count, SAFETENSORS_MAX_TENSORS);
        goto out;
    }
    s->t = calloc(count ? count : 1, sizeof(*s->t));
    s->by_name = calloc(count ? count : 1, sizeof(*s->by_name));
    if (s->t == NULL || s->by_name == NULL) {
        st = CAI_ERR_NOMEM;
        goto out;
    }
    const char *name;
    json_t *v;
    json_object_foreach(root, name, v) {
        if (strcmp(name, "__metadata__") == 0)
            continue;
        if ((st = parse_entry(s, name, v, data_size, &s->t[s->n])) != CAI_OK)
            goto out;
        s->n++;
    }
    /* The data must be indexed entirely: contiguous from 0 to the end. */
    qsort(s->t, s->n, sizeof(*s->t), cmp_offset);
    uint64_t at = 0;
    for (size_t i = 0; i < s->n; i++) {
        const safetensors_tensor *t = &s->t[i];
        if (t->offset < at) {
            st = cai_fail(CAI_ERR_FORMAT, "%s: tensor %.80s: data [%llu, %llu) overlaps tensor %.80s",
                          L, t->name, (unsigned long long)t->offset,
                          (unsigned long long)(t->offset + t->nbytes), s->t[i - 1].name);
            goto out;
        }
        if (t->offset > at) {
            st = cai_fail(CAI_ERR_FORMAT, "%s: %llu data bytes before tensor %.80s belong to no "
                          "tensor", L, (unsigned long long)(t->offset - at), t->name);
            goto out;
        }
        at = t->offset + t->nbytes;
    }
    if (at != data_size) {
        st = cai_fail(CAI_ERR_TRAILING, "%s: %llu data bytes at the end belong to no tensor", L,
                      (unsigned long long)(data_size - at));
        goto out;
    }
    uint64_t base = s->file_size - data_size;
    for (size_t i = 0; i < s->n; i++) {
        s->t[i].offset += base;
        s->by_name[i] = &s->t[i];
    }
    qsort(s->by_name, s->n, sizeof(*s->by_name), cmp_name);
out:
    json_decref(root);
    return st;
}

/* The 8-byte header length, checked against the file and the limit. */
static cai_status header_len(const safetensors *s, const uint8_t prefix[8], uint64_t *out) {
    cursor c;
    uint64_t n;
    cursor_init(&c, prefix, 8);
    if (!cursor_get_u64le(&c, &n))
        return CAI_ERR_INTERNAL;
    if (n > SAFETENSORS_MAX_HEADER)
        return cai_fail(CAI_ERR_LIMIT, "%s: header length %llu is above the limit of %u bytes",
                        s->label, (unsigned long long)n, SAFETENSORS_MAX_HEADER);
    if (n > s->file_size - 8)
        return cai_fail(CAI_ERR_TRUNCATED, "%s: header length %llu passes the end of the file (%llu "
                        "bytes)", s->label, (unsigned long long)n, (unsigned long long)s->file_size);
    *out = n;
    return CAI_OK;
}

static safetensors *alloc_file(const char *label, uint64_t size) {
    safetensors *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->fd = -1;
    s->file_size = size;
    s->label = strdup(label);
    if (s->label == NULL) {
        free(s);
        return NULL;
    }
    return s;
}

cai_status safetensors_parse(const void *data, size_t len, safetensors **out) {
    *out = NULL;
    safetensors *s = alloc_file("safetensors", len);
    if (s == NULL)
        return CAI_ERR_NOMEM;
    s->mem = data;
    cursor c, hdr;
    uint64_t hlen = 0;
    cursor_init(&c, data, len);
    cai_status st = CAI_OK;
    if (len < 8)
        st = cai_fail(CAI_ERR_TRUNCATED, "safetensors: %zu bytes, shorter than the header length", len);
    if (st == CAI_OK)
        st = header_len(s, data, &hlen);
    if (st == CAI_OK && (!cursor_skip(&c, 8) || !cursor_get_span(&c, &hdr, (size_t)hlen)))
        st = cai_fail(CAI_ERR_TRUNCATED, "safetensors: header passes the end");
    if (st == CAI_OK)
        st = parse_header(s, cursor_data(&hdr), cursor_len(&hdr), cursor_len(&c));
    if (st != CAI_OK) {
        safetensors_free(s);
        return st;
    }
    *out = s;
    return CAI_OK;
}

cai_status safetensors_open(const char *path, safetensors **out) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cai_fail(errno == ENOENT ? CAI_ERR_NOT_FOUND : CAI_ERR_IO, "%s: %s", path,
                        strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return cai_fail(CAI_ERR_IO, "%s: not a regular file", path);
    }
    safetensors *s = alloc_file(path, (uint64_t)sb.st_size);
    if (s == NULL) {
        close(fd);
        return CAI_ERR_NOMEM;
    }
    s->fd = fd;
    uint8_t prefix[8];
    uint64_t hlen = 0;
    uint8_t *hdr = NULL;
    cai_status st = CAI_OK;
    if (s->file_size < 8)
        st = cai_fail(CAI_ERR_TRUNCATED, "%s: %llu bytes, shorter than the header length", path,
                      (unsigned long long)s->file_size);
    if (st == CAI_OK && (st = file_pread_full(fd, prefix, 8, 0)) != CAI_OK)
        st = cai_fail(st, "%s: cannot read the header length", path);
    if (st == CAI_OK)
        st = header_len(s, prefix, &hlen);
    if (st == CAI_OK && (hdr = malloc(hlen ? (size_t)hlen : 1)) == NULL)
        st = CAI_ERR_NOMEM;
    if (st == CAI_OK && (st = file_pread_full(fd, hdr, (size_t)hlen, 8)) != CAI_OK)
        st = cai_fail(st, "%s: cannot read the header", path);
    if (st == CAI_OK)
        st = parse_header(s, hdr, (size_t)hlen, s->file_size - 8 - hlen);
    free(hdr);
    if (st != CAI_OK) {
        safetensors_free(s);
        return st;
    }
    *out = s;
    return CAI_OK;
}

cai_status safetensors_read(const safetensors *s, const safetensors_tensor *t, uint64_t off,
                            void *dst, size_t n) {
    if (off > t->nbytes || n > t->nbytes - off)
        return cai_fail(CAI_ERR_INVALID_ARG, "%s: read past tensor %s", s->label, t->name);
    if (s->mem) {
        memcpy(dst, s->mem + t->offset + off, n);
        return CAI_OK;
    }
    cai_status st = file_pread_full(s->fd, dst, n, t->offset + off);
    return st == CAI_OK ? st : cai_fail(st, "%s: reading tensor %s: %s", s->label, t->name,
                                        st == CAI_ERR_TRUNCATED ? "the file shrank" : strerror(errno));
}

/* ---- a checkpoint folder ------------------------------------------------ */

typedef struct {
    const safetensors_tensor *t;
    size_t file;
} dir_entry;

struct safetensors_dir {
    safetensors **files;
    char **names;
    size_t n_files;
    dir_entry *all; /* sorted by name */
    size_t n;
};

void safetensors_dir_free(safetensors_dir *d) {
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->n_files; i++) {
        safetensors_free(d->files[i]);
        free(d->names[i]);
    }
    free(d->files);
    free(d->names);
    free(d->all);
    free(d);
}

size_t safetensors_dir_n_tensors(const safetensors_dir *d) { return d->n; }
size_t safetensors_dir_n_files(const safetensors_dir *d) { return d->n_files; }
const char *safetensors_dir_file_name(const safetensors_dir *d, size_t i) {
    return i < d->n_files ? d->names[i] : NULL;
}

const safetensors *safetensors_dir_file(const safetensors_dir *d, size_t i) {
    return i < d->n_files ? d->files[i] : NULL;
}

const safetensors_tensor *safetensors_dir_tensor_at(const safetensors_dir *d, size_t i,
                                                    const safetensors **out_file) {
    if (i >= d->n)
        return NULL;
    if (out_file)
        *out_file = d->files[d->all[i].file];
    return d->all[i].t;
}

static int cmp_entry(const void *a, const void *b) {
    return strcmp(((const dir_entry *)a)->t->name, ((const dir_entry *)b)->t->name);
}

static int cmp_entry_key(const void *key, const void *elem) {
    return strcmp(key, ((const dir_entry *)elem)->t->name);
}

const safetensors_tensor *safetensors_dir_find(const safetensors_dir *d, const char *name,
                                               const safetensors **out_file) {
    if (d->n == 0)
        return NULL;
    const dir_entry *e = bsearch(name, d->all, d->n, sizeof(*d->all), cmp_entry_key);
    if (e && out_file)
        *out_file = d->files[e->file];
    return e ? e->t : NULL;
}

static int exists(const char *dir, const char *name) {
    char p[4096];
    struct stat sb;
    int n = snprintf(p, sizeof(p), "%s/%s", dir, name);
    return n > 0 && (size_t)n < sizeof(p) && stat(p, &sb) == 0;
}

/* A shard name from the index must be a plain file in the folder. */
static int plain_name(const char *s) {
    size_t n = strlen(s);
    return n > 0 && n < 256 && s[0] != '.' && strchr(s, '/') == NULL && strchr(s, '\\') == NULL;
}

static cai_status add_file(safetensors_dir *d, const char *dir, const char *name, const char *why) {
    char p[4096];
    int n = snprintf(p, sizeof(p), "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof(p))
        return cai_fail(CAI_ERR_INVALID_ARG, "path too long: %s/%s", dir, name);
    safetensors *s = NULL;
    cai_status st = safetensors_open(p, &s);
    if (st == CAI_ERR_NOT_FOUND)
        return cai_fail(CAI_ERR_FORMAT, "%s: shard %s, %s, is missing", dir, name, why);
    if (st != CAI_OK)
        return st;
    d->files[d->n_files] = s;
    d->names[d->n_files] = strdup(name);
    d->n_files++;
    return d->names[d->n_files - 1] ? CAI_OK : CAI_ERR_NOMEM;
}

/* The pickle weights a folder holds instead of safetensors, if any. */
static cai_status refuse_pickle(const char *dir) {
    DIR *dh = opendir(dir);
    if (dh == NULL)
        return cai_fail(errno == ENOENT ? CAI_ERR_NOT_FOUND : CAI_ERR_IO, "%s: %s", dir,
                        strerror(errno));
    static const char *const EXT[] = {".bin", ".pt", ".pth", ".ckpt", ".pkl"};
    char found[256] = "";
    struct dirent *e;
    while ((e = readdir(dh)) != NULL && !found[0]) {
        size_t n = strlen(e->d_name);
        for (size_t i = 0; i < sizeof(EXT) / sizeof(EXT[0]); i++) {
            size_t m = strlen(EXT[i]);
            if (n > m && strcmp(e->d_name + n - m, EXT[i]) == 0)
                snprintf(found, sizeof(found), "%s", e->d_name);
        }
    }
    closedir(dh);
    if (found[0])
        return cai_fail(CAI_ERR_UNSUPPORTED, "%s holds PyTorch pickle weights (%s) and no "
                        "safetensors: cai never unpickles, since loading a pickle runs code from the "
                        "file. Download the model's safetensors files instead (most Hugging Face and "
                        "ModelScope repositories have them)", dir, found);
    return cai_fail(CAI_ERR_NOT_FOUND, "%s has no model.safetensors nor "
                    "model.safetensors.index.json", dir);
}

/* The shards of an index, checked against their headers. */
static cai_status load_index(safetensors_dir *d, const char *dir) {
    char p[4096];
    snprintf(p, sizeof(p), "%s/model.safetensors.index.json", dir);
    buf b;
    cai_status st = file_read_all(p, SAFETENSORS_MAX_INDEX, &b);
    if (st != CAI_OK)
        return cai_fail(st, "%s: %s", p, cai_errmsg(st));
    json_error_t je;
    json_t *root = json_loadb((const char *)b.data, b.len, JSON_REJECT_DUPLICATES, &je);
    buf_free(&b);
    json_t *map = json_object_get(root, "weight_map");
    const char *name;
    json_t *v;
    if (!json_is_object(map)) {
        st = cai_fail(CAI_ERR_FORMAT, "%s: %s", p, root ? "no weight_map object" : je.text);
        goto out;
    }
    size_t n_map = json_object_size(map);
    if (n_map > (size_t)SAFETENSORS_MAX_TENSORS * 16) {
        st = cai_fail(CAI_ERR_LIMIT, "%s: %zu tensors", p, n_map);
        goto out;
    }
    d->files = calloc(SAFETENSORS_MAX_SHARDS, sizeof(*d->files));
    d->names = calloc(SAFETENSORS_MAX_SHARDS, sizeof(*d->names));
    if (!d->files || !d->names) {
        st = CAI_ERR_NOMEM;
        goto out;
    }
    /* Every shard named, once, in the order first named. */
    json_object_foreach(map, name, v) {
        const char *shard = json_string_value(v);
        if (shard == NULL || !plain_name(shard)) {
            st = cai_fail(CAI_ERR_FORMAT, "%s: tensor %.80s: the shard must be a file name in the "
                          "folder", p, name);
            goto out;
        }
        size_t i = 0;
        while (i < d->n_files && strcmp(d->names[i], shard) != 0)
            i++;
        if (i < d->n_files)
            continue;
        if (d->n_files == SAFETENSORS_MAX_SHARDS) {
            st = cai_fail(CAI_ERR_LIMIT, "%s: more than %d shards", p, SAFETENSORS_MAX_SHARDS);
            goto out;
        }
        if ((st = add_file(d, dir, shard, "named by model.safetensors.index.json")) != CAI_OK)
            goto out;
    }
    /* Every tensor of the map in the shard it names. */
    json_object_foreach(map, name, v) {
        const char *shard = json_string_value(v);
        size_t i = 0;
        while (strcmp(d->names[i], shard) != 0)
            i++;
        if (safetensors_find(d->files[i], name) == NULL) {
            st = cai_fail(CAI_ERR_FORMAT, "%s: tensor %.80s is missing: the index puts it in %s, "
                          "which does not hold it", dir, name, shard);
            goto out;
        }
    }
    /* Every tensor of a shard in the map, for that shard. */
    for (size_t i = 0; i < d->n_files; i++) {
        for (size_t j = 0; j < safetensors_n_tensors(d->files[i]); j++) {
            const char *tn = safetensors_tensor_at(d->files[i], j)->name;
            const char *shard = json_string_value(json_object_get(map, tn));
            if (shard == NULL || strcmp(shard, d->names[i]) != 0) {
                st = cai_fail(CAI_ERR_FORMAT, "%s: tensor %.80s of %s is %s", dir, tn, d->names[i],
                              shard ? "mapped to another shard by the index (a tensor in two shards)"
                                    : "not in the index");
                goto out;
            }
        }
    }
out:
    json_decref(root);
    return st;
}

cai_status safetensors_dir_open(const char *dir, safetensors_dir **out) {
    *out = NULL;
    safetensors_dir *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return CAI_ERR_NOMEM;
    cai_status st;
    if (exists(dir, "model.safetensors.index.json")) {
        st = load_index(d, dir);
    } else if (exists(dir, "model.safetensors")) {
        d->files = calloc(1, sizeof(*d->files));
        d->names = calloc(1, sizeof(*d->names));
        st = d->files && d->names ? add_file(d, dir, "model.safetensors", "the single file")
                                  : CAI_ERR_NOMEM;
    } else {
        st = refuse_pickle(dir);
    }
    size_t total = 0;
    for (size_t i = 0; st == CAI_OK && i < d->n_files; i++)
        total += safetensors_n_tensors(d->files[i]);
    if (st == CAI_OK && (d->all = calloc(total ? total : 1, sizeof(*d->all))) == NULL)
        st = CAI_ERR_NOMEM;
    for (size_t i = 0; st == CAI_OK && i < d->n_files; i++)
        for (size_t j = 0; j < safetensors_n_tensors(d->files[i]); j++)
            d->all[d->n++] = (dir_entry){safetensors_tensor_at(d->files[i], j), i};
    if (st == CAI_OK)
        qsort(d->all, d->n, sizeof(*d->all), cmp_entry);
    for (size_t i = 1; st == CAI_OK && i < d->n; i++)
        if (strcmp(d->all[i].t->name, d->all[i - 1].t->name) == 0)
            st = cai_fail(CAI_ERR_FORMAT, "%s: tensor %.80s is in two shards (%s and %s)", dir,
                          d->all[i].t->name, d->names[d->all[i - 1].file], d->names[d->all[i].file]);
    if (st != CAI_OK) {
        safetensors_dir_free(d);
        return st;
    }
    *out = d;
    return CAI_OK;
}

/* ---- writing ---------------------------------------------------------------- */

static uint64_t entry_bytes(const safetensors_entry *e) {
    uint64_t n = e->dtype == GGML_TYPE_F32 ? 4 : 2;
    for (int d = 0; d < e->n_dims; d++)
        n *= (uint64_t)e->shape[d];
    return n;
}

/* One file with entries [a, b). */
static cai_status write_file(const char *path, const safetensors_entry *e, size_t a, size_t b,
                             safetensors_fill_fn fill, void *arg) {
    json_t *h = json_object();
    uint64_t off = 0;
    cai_status st = h ? CAI_OK : CAI_ERR_NOMEM;
    if (st == CAI_OK)
        json_object_set_new(h, "__metadata__", json_pack("{s:s}", "format", "pt"));
    for (size_t i = a; st == CAI_OK && i < b; i++) {
        json_t *shape = json_array();
        for (int d = 0; d < e[i].n_dims; d++)
            json_array_append_new(shape, json_integer(e[i].shape[d]));
        uint64_t nb = entry_bytes(&e[i]);
        if (json_object_set_new(h, e[i].name, json_pack("{s:s,s:o,s:[I,I]}", "dtype",
                                                        safetensors_dtype_name(e[i].dtype), "shape",
                                                        shape, "data_offsets", (json_int_t)off,
                                                        (json_int_t)(off + nb))) != 0)
            st = CAI_ERR_NOMEM;
        off += nb;
    }
    char *js = st == CAI_OK ? json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(h);
    if (st == CAI_OK && js == NULL)
        st = CAI_ERR_NOMEM;
    buf head;
    buf_init(&head, 0);
    if (st == CAI_OK) {
        size_t len = strlen(js), padded = (len + 7) / 8 * 8;
        st = buf_append_u64le(&head, padded);
        if (st == CAI_OK)
            st = buf_append(&head, js, len);
        while (st == CAI_OK && head.len < 8 + padded)
            st = buf_append_u8(&head, ' ');
    }
    free(js);
    file_atomic fa;
    fa.fd = -1;
    if (st == CAI_OK)
        st = file_atomic_open(&fa, path, 0644);
    if (st == CAI_OK)
        st = file_write_full(fa.fd, head.data, head.len);
    buf_free(&head);
    for (size_t i = a; st == CAI_OK && i < b; i++) {
        size_t nb = (size_t)entry_bytes(&e[i]);
        uint8_t *d = malloc(nb ? nb : 1);
        st = d ? fill(arg, i, d, nb) : CAI_ERR_NOMEM;
        if (st == CAI_OK)
            st = file_write_full(fa.fd, d, nb);
        free(d);
    }
    if (st == CAI_OK)
        return file_atomic_commit(&fa);
    file_atomic_abort(&fa);
    return st;
}

cai_status safetensors_write_dir(const char *dir, const safetensors_entry *e, size_t n,
                                 uint64_t shard_bytes, safetensors_fill_fn fill, void *arg) {
    /* Shards: consecutive entries up to shard_bytes each (at least one). */
    size_t *start = calloc(n + 1, sizeof(*start)), n_shards = 0;
    uint64_t total = 0, cur = 0;
    if (start == NULL)
        return CAI_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        uint64_t nb = entry_bytes(&e[i]);
        if (i == 0 || (shard_bytes && cur + nb > shard_bytes && cur > 0)) {
            start[n_shards++] = i;
            cur = 0;
        }
        cur += nb;
        total += nb;
    }
    start[n_shards] = n;
    char path[4096], name[64];
    cai_status st = CAI_OK;
    json_t *map = json_object();
    for (size_t s = 0; st == CAI_OK && s < n_shards; s++) {
        if (n_shards == 1)
            snprintf(name, sizeof(name), "model.safetensors");
        else
            snprintf(name, sizeof(name), "model-%05zu-of-%05zu.safetensors", s + 1, n_shards);
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        st = write_file(path, e, start[s], start[s + 1], fill, arg);
        for (size_t i = start[s]; st == CAI_OK && i < start[s + 1]; i++)
            json_object_set_new(map, e[i].name, json_string(name));
    }
    if (st == CAI_OK && n_shards > 1) {
        json_t *index = json_pack("{s:{s:I},s:O}", "metadata", "total_size", (json_int_t)total,
                                  "weight_map", map);
        char *js = index ? json_dumps(index, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
        snprintf(path, sizeof(path), "%s/model.safetensors.index.json", dir);
        file_atomic fa;
        fa.fd = -1;
        st = js ? file_atomic_open(&fa, path, 0644) : CAI_ERR_NOMEM;
        if (st == CAI_OK)
            st = file_write_full(fa.fd, js, strlen(js));
        if (st == CAI_OK)
            st = file_atomic_commit(&fa);
        else
            file_atomic_abort(&fa);
        free(js);
        json_decref(index);
    }
    json_decref(map);
    free(start);
    return st;
}

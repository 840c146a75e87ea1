/* gguf_write.c - a GGUF v3 writer: header and tables in memory, data streamed. */
#include "gguf/gguf_write.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/file.h"
#include "gguf/gguf.h"
#include "gguf/ggml_type.h"

typedef struct {
    char *name;
    int type, n_dims;
    int64_t ne[GGUF_MAX_DIMS];
    size_t nbytes;
    uint8_t *data; /* copy, or NULL */
    gguf_fill_fn fill;
    gguf_stream_fn stream;
    void *arg;
} wtensor;

struct gguf_writer {
    buf kv;         /* serialized key/value pairs */
    uint64_t n_kv;
    wtensor *t;
    size_t n_t, cap_t;
};

cai_status gguf_writer_new(gguf_writer **out) {
    gguf_writer *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return CAI_ERR_NOMEM;
    buf_init(&w->kv, 0);
    *out = w;
    return CAI_OK;
}

void gguf_writer_free(gguf_writer *w) {
    if (w == NULL)
        return;
    buf_free(&w->kv);
    for (size_t i = 0; i < w->n_t; i++) {
        free(w->t[i].name);
        free(w->t[i].data);
    }
    free(w->t);
    free(w);
}

static cai_status put_str(buf *b, const char *s, size_t n) {
    cai_status st = buf_append_u64le(b, n);
    return st == CAI_OK ? buf_append(b, s, n) : st;
}

static cai_status key(gguf_writer *w, const char *k, uint32_t type) {
    cai_status st = put_str(&w->kv, k, strlen(k));
    if (st == CAI_OK)
        st = buf_append_u32le(&w->kv, type);
    if (st == CAI_OK)
        w->n_kv++;
    return st;
}

cai_status gguf_writer_u32(gguf_writer *w, const char *k, uint32_t v) {
    cai_status st = key(w, k, GGUF_TYPE_UINT32);
    return st == CAI_OK ? buf_append_u32le(&w->kv, v) : st;
}

cai_status gguf_writer_i32(gguf_writer *w, const char *k, int32_t v) {
    cai_status st = key(w, k, GGUF_TYPE_INT32);
    return st == CAI_OK ? buf_append_u32le(&w->kv, (uint32_t)v) : st;
}

cai_status gguf_writer_f32(gguf_writer *w, const char *k, float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    cai_status st = key(w, k, GGUF_TYPE_FLOAT32);
    return st == CAI_OK ? buf_append_u32le(&w->kv, u) : st;
}

cai_status gguf_writer_bool(gguf_writer *w, const char *k, int v) {
    cai_status st = key(w, k, GGUF_TYPE_BOOL);
    return st == CAI_OK ? buf_append_u8(&w->kv, v ? 1 : 0) : st;
}

cai_status gguf_writer_str(gguf_writer *w, const char *k, const char *v) {
    cai_status st = key(w, k, GGUF_TYPE_STRING);
    return st == CAI_OK ? put_str(&w->kv, v, strlen(v)) : st;
}

cai_status gguf_writer_strs(gguf_writer *w, const char *k, const char *const *s, const size_t *len,
                            size_t n) {
    cai_status st = key(w, k, GGUF_TYPE_ARRAY);
    if (st == CAI_OK)
        st = buf_append_u32le(&w->kv, GGUF_TYPE_STRING);
    if (st == CAI_OK)
        st = buf_append_u64le(&w->kv, n);
    for (size_t i = 0; st == CAI_OK && i < n; i++)
        st = put_str(&w->kv, s[i], len ? len[i] : strlen(s[i]));
    return st;
}

cai_status gguf_writer_nums(gguf_writer *w, const char *k, int type, const void *v, size_t n) {
    static const size_t size[GGUF_TYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    if (type < 0 || type >= GGUF_TYPE_COUNT || size[type] == 0)
        return cai_fail(CAI_ERR_INVALID_ARG, "not a numeric GGUF type: %d", type);
    cai_status st = key(w, k, GGUF_TYPE_ARRAY);
    if (st == CAI_OK)
        st = buf_append_u32le(&w->kv, (uint32_t)type);
    if (st == CAI_OK)
        st = buf_append_u64le(&w->kv, n);
    if (st == CAI_OK) /* little-endian hosts only, as ggml */
        st = buf_append(&w->kv, v, n * size[type]);
    return st;
}

static cai_status add_tensor(gguf_writer *w, const char *name, int type, int n_dims, const int64_t *ne,
                             const void *data, gguf_fill_fn fill, gguf_stream_fn stream, void *arg) {
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS || ggml_type_block_size(type) == 0 ||
        ne[0] % ggml_type_block_size(type) != 0 || (data == NULL && fill == NULL && stream == NULL))
        return cai_fail(CAI_ERR_INVALID_ARG, "bad tensor %s", name);
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? 2 * w->cap_t : 64;
        wtensor *t = realloc(w->t, cap * sizeof(*t));
        if (t == NULL)
            return CAI_ERR_NOMEM;
        w->t = t;
        w->cap_t = cap;
    }
    wtensor *t = &w->t[w->n_t];
    memset(t, 0, sizeof(*t));
    t->type = type;
    t->n_dims = n_dims;
    size_t rows = 1;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) {
        t->ne[d] = d < n_dims ? ne[d] : 1;
        if (d > 0)
            rows *= (size_t)t->ne[d];
    }
    t->nbytes = ggml_type_row_size(type, t->ne[0]) * rows;
    t->name = strdup(name);
    if (t->name == NULL)
        return CAI_ERR_NOMEM;
    if (data) {
        t->data = malloc(t->nbytes ? t->nbytes : 1);
        if (t->data == NULL) {
            free(t->name);
            return CAI_ERR_NOMEM;
        }
        memcpy(t->data, data, t->nbytes);
    }
    t->fill = fill;
    t->stream = stream;
    t->arg = arg;
    w->n_t++;
    return CAI_OK;
}

cai_status gguf_writer_tensor(gguf_writer *w, const char *name, int type, int n_dims,
                              const int64_t *ne, const void *data, gguf_fill_fn fill, void *arg) {
    return add_tensor(w, name, type, n_dims, ne, data, fill, NULL, arg);
}

cai_status gguf_writer_tensor_stream(gguf_writer *w, const char *name, int type, int n_dims,
                                     const int64_t *ne, gguf_stream_fn stream, void *arg) {
    if (stream == NULL)
        return cai_fail(CAI_ERR_INVALID_ARG, "bad tensor %s", name);
    return add_tensor(w, name, type, n_dims, ne, NULL, NULL, stream, arg);
}

static size_t pad(size_t n) { return (n + GGUF_DEFAULT_ALIGNMENT - 1) / GGUF_DEFAULT_ALIGNMENT * GGUF_DEFAULT_ALIGNMENT; }

/* The header, key/values and tensor table, padded to the data section. */
static cai_status head(gguf_writer *w, buf *h) {
    cai_status st = buf_append(h, "GGUF", 4);
    if (st == CAI_OK) st = buf_append_u32le(h, 3);
    if (st == CAI_OK) st = buf_append_u64le(h, w->n_t);
    if (st == CAI_OK) st = buf_append_u64le(h, w->n_kv);
    if (st == CAI_OK) st = buf_append(h, w->kv.data, w->kv.len);
    uint64_t off = 0;
    for (size_t i = 0; st == CAI_OK && i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        st = put_str(h, t->name, strlen(t->name));
        if (st == CAI_OK) st = buf_append_u32le(h, (uint32_t)t->n_dims);
        for (int d = 0; st == CAI_OK && d < t->n_dims; d++)
            st = buf_append_u64le(h, (uint64_t)t->ne[d]);
        if (st == CAI_OK) st = buf_append_u32le(h, (uint32_t)t->type);
        if (st == CAI_OK) st = buf_append_u64le(h, off);
        off += pad(t->nbytes);
    }
    while (st == CAI_OK && h->len % GGUF_DEFAULT_ALIGNMENT)
        st = buf_append_u8(h, 0);
    return st;
}

typedef cai_status (*sink_fn)(void *ctx, const void *p, size_t n);

/* A streamed tensor's bytes go to the sink, counted against its size. */
typedef struct {
    sink_fn sink;
    void *ctx;
    size_t left;
    const char *name;
} put_ctx;

static cai_status put(void *arg, const void *p, size_t n) {
    put_ctx *c = arg;
    if (n > c->left)
        return cai_fail(CAI_ERR_INVALID_ARG, "tensor %s: %zu bytes more than its size", c->name, n - c->left);
    c->left -= n;
    return c->sink(c->ctx, p, n);
}

static cai_status emit(gguf_writer *w, sink_fn sink, void *ctx) {
    buf h;
    buf_init(&h, 0);
    cai_status st = head(w, &h);
    if (st == CAI_OK)
        st = sink(ctx, h.data, h.len);
    buf_free(&h);
    static const uint8_t zeros[GGUF_DEFAULT_ALIGNMENT];
    for (size_t i = 0; st == CAI_OK && i < w->n_t; i++) {
        wtensor *t = &w->t[i];
        if (t->stream) {
            put_ctx pc = {sink, ctx, t->nbytes, t->name};
            st = t->stream(t->arg, i, t->nbytes, put, &pc);
            if (st == CAI_OK && pc.left)
                st = cai_fail(CAI_ERR_INVALID_ARG, "tensor %s: %zu bytes short of its size", t->name, pc.left);
            if (st == CAI_OK)
                st = sink(ctx, zeros, pad(t->nbytes) - t->nbytes);
            continue;
        }
        uint8_t *tmp = t->data ? NULL : malloc(t->nbytes ? t->nbytes : 1);
        if (!t->data && !tmp)
            return CAI_ERR_NOMEM;
        if (tmp)
            st = t->fill(t->arg, i, tmp, t->nbytes);
        if (st == CAI_OK)
            st = sink(ctx, t->data ? t->data : tmp, t->nbytes);
        if (st == CAI_OK)
            st = sink(ctx, zeros, pad(t->nbytes) - t->nbytes);
        free(tmp);
    }
    return st;
}

static cai_status sink_buf(void *ctx, const void *p, size_t n) { return buf_append(ctx, p, n); }

/* A file being written: |flushed| bytes are on their way to the disk, the
 * first |dropped| are written and out of the page cache. */
typedef struct {
    int fd;
    uint64_t off, flushed, dropped;
} fd_sink;

#define FLUSH_BYTES (8u << 20) /* start the disk write of each 8 MiB */
#define KEEP_BYTES (64u << 20) /* written data left in the page cache */

/* Writes, then paces: start writing back each FLUSH_BYTES, and wait for
 * and drop what lies KEEP_BYTES behind, so the kernel reuses those pages
 * for the next ones. Failures of the pacing calls are not errors: they
 * only advise, and the final fsync reports any write error. */
static cai_status sink_fd(void *ctx, const void *p, size_t n) {
    fd_sink *s = ctx;
    cai_status st = file_write_full(s->fd, p, n);
    if (st != CAI_OK)
        return st;
    s->off += n;
    if (s->off - s->flushed >= FLUSH_BYTES) {
        (void)sync_file_range(s->fd, (off_t)s->flushed, (off_t)(s->off - s->flushed), SYNC_FILE_RANGE_WRITE);
        s->flushed = s->off;
    }
    if (s->flushed - s->dropped >= KEEP_BYTES + FLUSH_BYTES) {
        uint64_t end = s->flushed - KEEP_BYTES;
        (void)sync_file_range(s->fd, (off_t)s->dropped, (off_t)(end - s->dropped),
                              SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
        (void)posix_fadvise(s->fd, (off_t)s->dropped, (off_t)(end - s->dropped), POSIX_FADV_DONTNEED);
        s->dropped = end;
    }
    return CAI_OK;
}

cai_status gguf_writer_to_buf(gguf_writer *w, buf *out) { return emit(w, sink_buf, out); }

cai_status gguf_writer_write(gguf_writer *w, const char *path) {
    file_atomic f;
    cai_status st = file_atomic_open(&f, path, 0644);
    if (st != CAI_OK)
        return st;
    fd_sink sink = {f.fd, 0, 0, 0};
    st = emit(w, sink_fd, &sink);
    if (st == CAI_OK)
        return file_atomic_commit(&f);
    file_atomic_abort(&f);
    return st;
}

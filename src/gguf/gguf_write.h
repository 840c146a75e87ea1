/* gguf_write.h - writing GGUF v3 files (synthetic models, tests).
 *
 * Metadata and the tensor table are collected first; tensor data is either
 * copied in or produced by a callback while the file is written, so a 7B
 * model is generated without holding it in memory. The file appears
 * atomically (temporary file, then rename). */
#ifndef CAI_GGUF_GGUF_WRITE_H
#define CAI_GGUF_GGUF_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/status.h"

typedef struct gguf_writer gguf_writer;

/* Fills |dst| (|nbytes|) with the data of tensor |index|. */
typedef cai_status (*gguf_fill_fn)(void *arg, size_t index, uint8_t *dst, size_t nbytes);

/* Appends |n| bytes of a streamed tensor's data to the file. */
typedef cai_status (*gguf_put_fn)(void *put_ctx, const void *p, size_t n);

/* Produces the |nbytes| of tensor |index| by calling |put| with the data
 * in order, in pieces of any size, from the thread that writes the file;
 * returns CAI_OK or the error that stopped it. */
typedef cai_status (*gguf_stream_fn)(void *arg, size_t index, size_t nbytes, gguf_put_fn put,
                                     void *put_ctx);

cai_status gguf_writer_new(gguf_writer **out);
void gguf_writer_free(gguf_writer *w);

cai_status gguf_writer_u32(gguf_writer *w, const char *key, uint32_t v);
cai_status gguf_writer_i32(gguf_writer *w, const char *key, int32_t v);
cai_status gguf_writer_f32(gguf_writer *w, const char *key, float v);
cai_status gguf_writer_bool(gguf_writer *w, const char *key, int v);
cai_status gguf_writer_str(gguf_writer *w, const char *key, const char *v);
/* gguf_writer_strs writes an array of |n| strings (ptr, len each). */
cai_status gguf_writer_strs(gguf_writer *w, const char *key, const char *const *s,
                            const size_t *len, size_t n);
/* gguf_writer_nums writes an array of |n| numbers of GGUF type |type|. */
cai_status gguf_writer_nums(gguf_writer *w, const char *key, int type, const void *v, size_t n);

/* gguf_writer_tensor adds a tensor of ggml type |type| and shape |ne|
 * (n_dims values). |data| is copied if given; else |fill| produces it when
 * the file is written. */
cai_status gguf_writer_tensor(gguf_writer *w, const char *name, int type, int n_dims,
                              const int64_t *ne, const void *data, gguf_fill_fn fill, void *arg);

/* gguf_writer_tensor_stream adds a tensor whose data |stream| produces
 * piece by piece when the file is written, so the producer needs no buffer
 * of the whole tensor and can compute the next piece while one is written.
 * Writing fails, naming the tensor, if |stream| puts more or fewer bytes
 * than the type and shape take. */
cai_status gguf_writer_tensor_stream(gguf_writer *w, const char *name, int type, int n_dims,
                                     const int64_t *ne, gguf_stream_fn stream, void *arg);

/* gguf_writer_write writes the file to |path| atomically. Data written to
 * the file is flushed as it goes and dropped from the page cache 64 MiB
 * behind the cursor, so a file of many GB neither fills memory with dirty
 * pages nor makes the kernel find fresh pages for each one (what writing
 * costs most on a VM); the final fsync then has little left to do. */
cai_status gguf_writer_write(gguf_writer *w, const char *path);

/* gguf_writer_to_buf writes the whole file into |out| (tests). */
cai_status gguf_writer_to_buf(gguf_writer *w, buf *out);

#endif

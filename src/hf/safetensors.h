/* safetensors.h - reading Hugging Face safetensors files and sharded
 * checkpoints, every size and offset checked.
 *
 * A safetensors file is an 8-byte little-endian header length, a JSON header
 * ({"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...,
 * "__metadata__": {...}}) and the tensor data, offsets relative to the end
 * of the header. Only the header is read when a file is opened; tensor data
 * is read on demand with pread, so a checkpoint of any size is streamed.
 *
 * Refused, each with a message naming the tensor and the check: a header
 * length beyond the file or above SAFETENSORS_MAX_HEADER, a header that is
 * not a JSON object, a duplicate name, a dtype other than F32, F16 and BF16
 * (named), more than SAFETENSORS_MAX_DIMS dimensions, a size that is not
 * dtype x shape, data ranges that overlap, leave a hole, or pass the end of
 * the file (the data must be indexed entirely, as the safetensors library
 * requires). See tests/unit/test_hf.c, one test per rule. */
#ifndef CAI_HF_SAFETENSORS_H
#define CAI_HF_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

#define SAFETENSORS_MAX_HEADER (100u << 20) /* as the safetensors library */
#define SAFETENSORS_MAX_TENSORS 65536
#define SAFETENSORS_MAX_DIMS 4
#define SAFETENSORS_MAX_NAME 512
#define SAFETENSORS_MAX_INDEX (64u << 20) /* model.safetensors.index.json */
#define SAFETENSORS_MAX_SHARDS 4096

typedef struct {
    const char *name;   /* NUL-terminated, owned by the file */
    int dtype;          /* GGML_TYPE_F32, GGML_TYPE_F16 or GGML_TYPE_BF16 */
    int n_dims;         /* 0 (a scalar) .. SAFETENSORS_MAX_DIMS */
    int64_t shape[SAFETENSORS_MAX_DIMS]; /* outermost first, as in the file */
    uint64_t n_elems;
    uint64_t offset;    /* of the data, from the start of the file */
    uint64_t nbytes;
} safetensors_tensor;

typedef struct safetensors safetensors;

/* safetensors_open reads and checks the header of the file at |path| and
 * keeps it open for safetensors_read. Returns CAI_OK and the file in |out|
 * (free with safetensors_free), or an error naming the file and the check. */
cai_status safetensors_open(const char *path, safetensors **out);

/* safetensors_parse checks |len| bytes that the caller keeps alive as a
 * whole safetensors file (fuzzing, tests); reads then copy from memory. */
cai_status safetensors_parse(const void *data, size_t len, safetensors **out);

/* safetensors_free closes the file. NULL is ok. */
void safetensors_free(safetensors *s);

/* safetensors_n_tensors and safetensors_tensor_at list the tensors in the
 * order of their data in the file. */
size_t safetensors_n_tensors(const safetensors *s);
const safetensors_tensor *safetensors_tensor_at(const safetensors *s, size_t i);

/* safetensors_find returns the tensor called |name|, or NULL. */
const safetensors_tensor *safetensors_find(const safetensors *s, const char *name);

/* safetensors_read copies bytes [off, off + n) of the data of |t| (a tensor
 * of |s|) into |dst|. CAI_ERR_INVALID_ARG if the range is outside the
 * tensor, CAI_ERR_TRUNCATED or CAI_ERR_IO if the file shrank or failed. */
cai_status safetensors_read(const safetensors *s, const safetensors_tensor *t, uint64_t off,
                            void *dst, size_t n);

/* safetensors_dtype_name returns "F32", "F16" or "BF16" for a dtype. */
const char *safetensors_dtype_name(int dtype);

/* ---- a checkpoint folder ------------------------------------------------ */

/* A model folder's weights: model.safetensors, or the shards that
 * model.safetensors.index.json names. Every shard the index names must
 * exist and be a plain file name in the folder; every tensor of its
 * weight_map must be in the shard it names; a tensor may be in only one
 * shard, and every tensor of a shard must be in the weight_map. A folder
 * with PyTorch pickle weights (pytorch_model.bin, *.bin, *.pt) and no
 * safetensors is refused: cai never unpickles. */
typedef struct safetensors_dir safetensors_dir;

/* safetensors_dir_open opens the weights of the folder |dir|. Returns
 * CAI_OK and the checkpoint in |out|, CAI_ERR_UNSUPPORTED for a pickle
 * folder, CAI_ERR_NOT_FOUND without weights, or a format error. */
cai_status safetensors_dir_open(const char *dir, safetensors_dir **out);

/* safetensors_dir_free closes every shard. NULL is ok. */
void safetensors_dir_free(safetensors_dir *d);

/* safetensors_dir_n_tensors / _tensor_at list every tensor of every shard;
 * |out_file| (if not NULL) receives the shard that holds it. */
size_t safetensors_dir_n_tensors(const safetensors_dir *d);
const safetensors_tensor *safetensors_dir_tensor_at(const safetensors_dir *d, size_t i,
                                                    const safetensors **out_file);

/* safetensors_dir_find returns the tensor called |name| (and its shard in
 * |out_file|), or NULL. */
const safetensors_tensor *safetensors_dir_find(const safetensors_dir *d, const char *name,
                                               const safetensors **out_file);

/* safetensors_dir_n_files / _file_name / _file: the shards (file names and
 * files), in the order the index first names them. */
size_t safetensors_dir_n_files(const safetensors_dir *d);
const char *safetensors_dir_file_name(const safetensors_dir *d, size_t i);
const safetensors *safetensors_dir_file(const safetensors_dir *d, size_t i);

/* ---- writing (cai model synth --format hf) -------------------------------- */

typedef struct {
    const char *name;
    int dtype;          /* GGML_TYPE_F32, GGML_TYPE_F16 or GGML_TYPE_BF16 */
    int n_dims;
    int64_t shape[SAFETENSORS_MAX_DIMS]; /* outermost first */
} safetensors_entry;

/* Fills |dst| (|nbytes|) with the data of entry |index|. */
typedef cai_status (*safetensors_fill_fn)(void *arg, size_t index, uint8_t *dst, size_t nbytes);

/* safetensors_write_dir writes the |n| tensors |e| into the existing folder
 * |dir|: model.safetensors, or, when their data exceeds |shard_bytes| (0:
 * never), shards model-0000I-of-0000N.safetensors of about that size and
 * model.safetensors.index.json, as Hugging Face writes them. Data is
 * contiguous in the order given; fill produces each tensor when its turn
 * comes (one tensor in memory at a time). Each file appears atomically.
 * Returns CAI_OK or the first error. */
cai_status safetensors_write_dir(const char *dir, const safetensors_entry *e, size_t n,
                                 uint64_t shard_bytes, safetensors_fill_fn fill, void *arg);

#endif

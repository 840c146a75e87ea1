/* import.h - a Hugging Face model folder (safetensors + config) to GGUF.
 *
 * hf_import_open reads the folder's config and safetensors headers and maps
 * every checkpoint tensor to the GGUF tensor the engine reads (docs/MODELS.md
 * has the name map); nothing is converted yet. hf_import_write then streams
 * tensor by tensor: each is read in chunks of rows, converted to its GGUF
 * type on a thread pool and written, so the peak memory is one output tensor
 * and one chunk, never the model. The output appears atomically.
 *
 * The file types (--type) and which tensor gets which ggml type are shared
 * with `cai model synth` (hf_ftype_tensor_type). */
#ifndef CAI_HF_IMPORT_H
#define CAI_HF_IMPORT_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "common/status.h"
#include "gguf/gguf_write.h"
#include "hf/config.h"

/* ---- file types ----------------------------------------------------------- */

typedef enum {
    HF_FTYPE_F32,
    HF_FTYPE_F16,
    HF_FTYPE_BF16,
    HF_FTYPE_Q8_0,
    HF_FTYPE_Q4_0,
    HF_FTYPE_Q4_K_M,
} hf_ftype;

/* hf_ftype_parse sets |out| from "f32", "f16", "bf16", "q8_0", "q4_0" or
 * "q4_k_m"; returns CAI_ERR_INVALID_ARG (with the list) for anything else. */
cai_status hf_ftype_parse(const char *s, hf_ftype *out);

/* hf_ftype_name returns the name hf_ftype_parse reads. */
const char *hf_ftype_name(hf_ftype f);

/* hf_ftype_gguf returns the GGUF general.file_type (llama_ftype) value. */
uint32_t hf_ftype_gguf(hf_ftype f);

/* hf_ftype_tensor_type returns the ggml type of the GGUF tensor |name| of
 * layer |layer| (of |n_layer|) with rows of |ne0| values and |n_dims|
 * dimensions under file type |f|, as llama.cpp chooses: vectors stay F32;
 * q4_k_m puts Q6_K on the output (on token_embd when |has_output| is 0,
 * i.e. tied) and on attn_v/ffn_down of the layers that matter most, Q5_K on
 * a fused attn_qkv, Q4_K elsewhere; rows that the block size does not
 * divide fall back (Q4_K->Q5_0, Q5_K->Q5_1, Q6_K->Q8_0, Q8_0/Q4_0->F16). */
int hf_ftype_tensor_type(hf_ftype f, const char *name, int layer, int n_layer, int64_t ne0,
                         int n_dims, int has_output);

/* ---- the model's GGUF hyperparameters ------------------------------------- */

/* hf_write_hparams adds general.architecture, general.name and the
 * architecture's hyperparameter keys (context_length, embedding_length,
 * ...) of |c| to |w|, as the engine reads them (llm/model.c). */
cai_status hf_write_hparams(gguf_writer *w, const hf_config *c, const char *name);

/* hf_write_generation adds the generation defaults of |c| as cai.generation.*
 * keys (docs/MODELS.md): only the values the folder sets. */
cai_status hf_write_generation(gguf_writer *w, const hf_config *c);

/* hf_import_hf_name writes to |out| (|n| bytes) the checkpoint name of GGUF
 * tensor |gguf| ("blk.3.ffn_up.weight") in architecture |arch| (the name
 * map, for cai model synth --format hf). CAI_ERR_NOT_FOUND if it has none. */
cai_status hf_import_hf_name(hf_arch arch, const char *gguf, char *out, size_t n);

/* ---- import ----------------------------------------------------------------- */

typedef struct hf_import hf_import;

typedef struct {
    size_t tensor, n_tensors;   /* the tensor being converted (0-based) */
    const char *name;           /* its GGUF name */
    uint64_t bytes_done, bytes_total; /* input bytes read, of all tensors */
    int tensor_done;            /* 1 on the last call for a tensor */
} hf_progress;

typedef struct {
    hf_ftype ftype;
    int threads;                /* 0: one per CPU */
    /* progress, if not NULL, is called once with bytes_done 0 when the
     * conversion starts, then after each chunk (from the calling thread). */
    void (*progress)(void *arg, const hf_progress *p);
    void *progress_arg;
    /* cancel, if not NULL, is polled between chunks: when it becomes non-zero
     * (a signal handler sets it) the write stops with CAI_ERR_IO
     * ("interrupted") and no output file is left. */
    const volatile sig_atomic_t *cancel;
} hf_import_opts;

/* One mapped tensor, for `cai model inspect`. */
typedef struct {
    const char *gguf_name;      /* owned by the import */
    const char *hf_name;        /* the checkpoint's name */
    const char *shard;          /* the file that holds it */
    int src_dtype;              /* GGML_TYPE_F32/F16/BF16 */
    int n_dims;                 /* 1 or 2 */
    int64_t ne[2];              /* GGUF order: ne[0] = values per row */
    int layer;                  /* -1 outside the blocks */
} hf_tensor_info;

/* hf_import_open reads DIR's config.json, generation_config.json and
 * safetensors headers and maps every tensor, checking names and shapes
 * against the config. Returns CAI_OK and the import in |out| (free with
 * hf_import_free), or an error naming the file, tensor and check: an
 * unknown or missing tensor, a shape that does not match, a pickle folder. */
cai_status hf_import_open(const char *dir, hf_import **out);

void hf_import_free(hf_import *imp);

/* hf_import_config returns the folder's checked configuration. */
const hf_config *hf_import_config(const hf_import *imp);

/* hf_import_n_tensors / hf_import_tensor: the GGUF tensors, in file order. */
size_t hf_import_n_tensors(const hf_import *imp);
const hf_tensor_info *hf_import_tensor(const hf_import *imp, size_t i);

/* hf_import_source_bytes returns the bytes of tensor data to read. */
uint64_t hf_import_source_bytes(const hf_import *imp);

/* hf_import_add_tensors adds every tensor to |w| with the type |opts|
 * chooses and a fill callback that converts it when |w| is written; |imp|
 * and |opts| must outlive the write. hf_import_write uses it; tests use it
 * to compare tensors without a tokenizer. */
cai_status hf_import_add_tensors(hf_import *imp, gguf_writer *w, const hf_import_opts *opts);

/* hf_import_write writes the GGUF file |out_path| atomically: the
 * hyperparameters, the tokenizer (hf/vocab), the generation defaults and
 * the converted tensors. On any error or cancel nothing is left at
 * |out_path| (nor a temporary file). */
cai_status hf_import_write(hf_import *imp, const char *out_path, const hf_import_opts *opts);

#endif

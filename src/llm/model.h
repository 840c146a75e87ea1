/* model.h - transformer models from GGUF: Qwen (v1), Qwen2/2.5, Qwen3, Llama.
 *
 * An llm_model is a view into a GGUF file's tensors (no copy: the weights stay
 * in the mapping, which for `cai serve` is the sealed memfd). An llm_ctx owns
 * what one inference needs: the KV cache for up to n_seq sequences, scratch
 * buffers and a thread pool. llm_decode runs one forward pass over a batch of
 * tokens that may belong to several sequences, so the server decodes its
 * concurrent requests together; a prompt is one batch of many tokens
 * (matrix-matrix products), a decode step is one token per sequence. */
#ifndef CAI_LLM_MODEL_H
#define CAI_LLM_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"
#include "gguf/gguf.h"

typedef enum {
    LLM_ARCH_LLAMA,
    LLM_ARCH_QWEN,  /* Qwen-7B-Chat: fused QKV with bias */
    LLM_ARCH_QWEN2, /* Qwen1.5, Qwen2, Qwen2.5: Q/K/V with bias */
    LLM_ARCH_QWEN3, /* RMS norms on Q and K, no bias */
} llm_arch;

typedef struct {
    llm_arch arch;
    const char *arch_name;
    int n_vocab, n_ctx_train, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff;
    int rope_dim;   /* dimensions rotated per head */
    int rope_neox;  /* 1: rotate halves (Qwen); 0: adjacent pairs (Llama) */
    float rope_base, rope_freq_scale, norm_eps;
} llm_hparams;

typedef struct llm_model llm_model;

/* llm_model_load reads hyperparameters and tensors from |g|, which must
 * outlive the model. Missing or misshapen tensors are CAI_ERR_FORMAT naming
 * the tensor; unknown architectures CAI_ERR_UNSUPPORTED. */
cai_status llm_model_load(const gguf_file *g, llm_model **out);

/* llm_model_load_layout is llm_model_load for a file whose tensors that
 * are x16_eligible (llm/x16.h) are in |layout|: LLM_LAYOUT_FILE (0) as
 * written, LLM_LAYOUT_X16 as x16_rewrite_fd left them (only at the
 * AVX-512 VNNI level; CAI_ERR_UNSUPPORTED below it). */
cai_status llm_model_load_layout(const gguf_file *g, int layout, llm_model **out);
void llm_model_free(llm_model *m);
const llm_hparams *llm_model_hparams(const llm_model *m);

/* llm_model_n_params returns the number of weights (for display). */
uint64_t llm_model_n_params(const llm_model *m);

typedef struct llm_ctx llm_ctx;

/* llm_ctx_new allocates a KV cache of |n_ctx| positions (0: the model's
 * training context) for each of |n_seq| sequences, and a pool of |n_threads|
 * (0: one per CPU). */
cai_status llm_ctx_new(const llm_model *m, int n_ctx, int n_seq, int n_threads, llm_ctx **out);
void llm_ctx_free(llm_ctx *c);
int llm_ctx_n_ctx(const llm_ctx *c);
const llm_model *llm_ctx_model(const llm_ctx *c);

/* llm_seq_len returns how many positions sequence |seq| holds. */
int llm_seq_len(const llm_ctx *c, int seq);

/* llm_seq_tokens returns the llm_seq_len(c, seq) tokens sequence |seq|
 * holds, in order (NULL for a sequence out of range); valid until the next
 * llm_decode. */
const int32_t *llm_seq_tokens(const llm_ctx *c, int seq);

/* llm_seq_truncate keeps the first |len| positions of |seq| (0 clears it). */
void llm_seq_truncate(llm_ctx *c, int seq, int len);

typedef struct {
    int n;                    /* tokens in the batch */
    const int32_t *token;
    const int32_t *seq;       /* sequence of each token */
    const uint8_t *logits;    /* 1: return logits after this token (NULL: last only) */
    /* 1: a prompt token, computed with the prefill (packed-tile) kernels,
     * 0: with the decode kernels. The two round differently; a token's
     * result depends on its own flag only, so a caller that flags tokens
     * by what they are (not by what else shares the batch) decodes each
     * sequence the same alone or batched. NULL: all flagged when the batch
     * has at least MATMUL_TILE_MIN tokens, none otherwise. */
    const uint8_t *prefill;
} llm_batch;

/* llm_decode appends the batch's tokens to their sequences (in order, each
 * sequence's tokens taking its next positions) and runs the forward pass.
 * On success |*out_logits| points at n_vocab floats per requested row, in
 * batch order, valid until the next call. On error nothing is appended;
 * running past n_ctx is CAI_ERR_LIMIT with a clear message. */
cai_status llm_decode(llm_ctx *c, const llm_batch *b, const float **out_logits);

#endif

/* engine.h - a loaded model: GGUF mapping, weights, tokenizer, chat format.
 *
 * What `cai run`, `cai chat -m`, `cai bench -m` and `cai serve` open. The
 * file may be a path or an fd (mapped: nothing is copied), or memory the
 * engine takes, whose weights are first rewritten for faster kernels
 * (llm_engine_open_mem: `cai serve`'s sealed boot, `cai bench -m`). The
 * engine is opaque: callers ask it for its model, tokenizer, name and chat
 * format, and generate with llm/session.h. */
#ifndef CAI_LLM_ENGINE_H
#define CAI_LLM_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "gguf/gguf.h"
#include "llm/chat.h"
#include "llm/model.h"
#include "llm/sample.h"
#include "llm/tokenizer.h"

typedef struct llm_engine llm_engine;

/* llm_engine_open loads |path| (or |fd| when path is NULL), with the
 * model's generation defaults (llm_engine_gen) and its stop tokens
 * (cai.generation.stop_token_ids join the end-of-generation tokens). |template_name|
 * (may be NULL) overrides the chat template the file names. */
cai_status llm_engine_open(const char *path, int fd, const char *template_name, llm_engine **out);

/* llm_engine_open_mem loads the GGUF in |mem|, |len| bytes of memory from
 * common/secure.h secure_map(len) whose bytes (e.g. the model digest) are
 * already checked, and takes it: the engine unmaps it when freed, and on
 * failure. At the AVX-512 VNNI level it first rewrites the Q8_0, Q4_0,
 * Q4_K and Q6_K weight matrices in place into the x16 layout (llm/x16.h:
 * their kernels read it without packing) on all CPUs; then it makes the
 * memory read-only and opens it as llm_engine_open does. */
cai_status llm_engine_open_mem(void *mem, size_t len, const char *template_name, llm_engine **out);
void llm_engine_free(llm_engine *e);

/* llm_engine_chat_prompt renders |msgs| with the chat template (plus the
 * assistant's turn opening) and tokenizes it: template text with special
 * tokens, message content without. BOS first when the model wants it. */
cai_status llm_engine_chat_prompt(const llm_engine *e, const chat_message *msgs, size_t n,
                                  int32_t **ids, size_t *n_ids, size_t *cap);

/* llm_engine_text_prompt tokenizes plain text (completions), BOS first when
 * the model wants it; special tokens are not parsed. */
cai_status llm_engine_text_prompt(const llm_engine *e, const char *text, int32_t **ids,
                                  size_t *n_ids, size_t *cap);

/* llm_engine_model and llm_engine_tokenizer return the engine's model and
 * tokenizer (owned by the engine). */
const llm_model *llm_engine_model(const llm_engine *e);
const tokenizer *llm_engine_tokenizer(const llm_engine *e);

/* llm_engine_gen returns the model's generation defaults (the
 * cai.generation.* metadata of an imported model) and, in |set|, which of
 * their fields the file sets (SAMPLE_SET_*); requests override them. */
const sample_params *llm_engine_gen(const llm_engine *e, unsigned *set);

/* llm_engine_name returns general.name, or the architecture's name. */
const char *llm_engine_name(const llm_engine *e);

/* llm_engine_chat_format returns the chat template's format (CHAT_NONE:
 * completions only). */
chat_format llm_engine_chat_format(const llm_engine *e);

/* llm_engine_reads_whole says whether one decode step reads all of |t|, a
 * tensor of llm_engine_gguf(e): every tensor but the token embedding when
 * the output does not share it (of that one, a row). */
int llm_engine_reads_whole(const llm_engine *e, const gguf_tensor *t);

/* llm_engine_weight_bytes returns the bytes of weights one decode step
 * reads (llm_engine_reads_whole; one row of the others). */
uint64_t llm_engine_weight_bytes(const llm_engine *e);

/* llm_engine_gguf returns the model file the engine runs from: its tensors'
 * data is the memory decode reads (benchmarks read it for the bound). */
const gguf_file *llm_engine_gguf(const llm_engine *e);

/* llm_engine_kernels_name names the kernels this CPU runs ("avx2", ...). */
const char *llm_engine_kernels_name(void);

/* llm_engine_layout_name names the weights' layout ("x16" after
 * llm_engine_open_mem rewrote any, else "file") and puts the rewrite's
 * seconds in |rewrite_seconds| (may be NULL; 0 without a rewrite). */
const char *llm_engine_layout_name(const llm_engine *e, double *rewrite_seconds);

/* llm_engine_is_eog says whether |id| ends a reply. */
int llm_engine_is_eog(const llm_engine *e, int32_t id);

#endif

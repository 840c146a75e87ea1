/* engine.h - a loaded model: GGUF mapping, weights, tokenizer, chat format.
 *
 * What `cai run`, `cai chat -m`, `cai bench -m` and `cai serve` open. The
 * file may be a path or an fd (the sealed memfd: nothing is copied). */
#ifndef CAI_LLM_ENGINE_H
#define CAI_LLM_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "gguf/gguf.h"
#include "llm/chat.h"
#include "llm/model.h"
#include "llm/sample.h"
#include "llm/tokenizer.h"

#define LLM_MAX_EOG 8

typedef struct {
    gguf_file *gguf;
    llm_model *model;
    tokenizer *tok;
    chat_template tmpl;
    int32_t eog[LLM_MAX_EOG]; /* tokens that end a reply */
    int n_eog;
    char name[128];           /* general.name, or the architecture */
    sample_params gen;        /* the model's generation defaults (cai.generation.*) */
    unsigned gen_set;         /* which fields of gen the file sets (SAMPLE_SET_*) */
} llm_engine;

/* llm_engine_open loads |path| (or |fd| when path is NULL), with the
 * model's generation defaults (gen, gen_set) and its stop tokens
 * (cai.generation.stop_token_ids join the end-of-generation tokens). |template_name|
 * (may be NULL) overrides the chat template the file names. */
cai_status llm_engine_open(const char *path, int fd, const char *template_name, llm_engine **out);
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

/* llm_engine_is_eog says whether |id| ends a reply. */
int llm_engine_is_eog(const llm_engine *e, int32_t id);

#endif

/* engine.c - opening a model and turning conversations into tokens. */
#include "llm/engine.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/secure.h"
#include "llm/kernels.h"
#include "llm/x16.h"

#define LLM_MAX_EOG 8

struct llm_engine {
    gguf_file *gguf;
    llm_model *model;
    tokenizer *tok;
    chat_template tmpl;
    int32_t eog[LLM_MAX_EOG]; /* tokens that end a reply */
    int n_eog;
    char name[128];           /* general.name, or the architecture */
    sample_params gen;        /* the model's generation defaults (cai.generation.*) */
    unsigned gen_set;         /* which fields of gen the file sets (SAMPLE_SET_*) */
    int layout;               /* LLM_LAYOUT_FILE or LLM_LAYOUT_X16 */
    double rewrite_s;         /* the x16 rewrite's seconds */
    void *mem;                /* llm_engine_open_mem's memory, owned */
    size_t mem_len;
};

static void add_eog(llm_engine *e, int32_t id) {
    if (id < 0 || e->n_eog == LLM_MAX_EOG)
        return;
    for (int i = 0; i < e->n_eog; i++)
        if (e->eog[i] == id)
            return;
    e->eog[e->n_eog++] = id;
}

/* The rest of an open, on e->gguf with e->layout: the model, tokenizer,
 * chat template and generation defaults. Frees |e| on failure. */
static cai_status engine_load(llm_engine *e, cai_status st, const char *template_name, llm_engine **out);

cai_status llm_engine_open(const char *path, int fd, const char *template_name, llm_engine **out) {
    *out = NULL;
    llm_engine *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return CAI_ERR_NOMEM;
    cai_status st = path ? gguf_open_path(path, &e->gguf) : gguf_open_fd(fd, &e->gguf);
    return engine_load(e, st, template_name, out);
}

cai_status llm_engine_open_mem(void *mem, size_t len, const char *template_name, llm_engine **out) {
    *out = NULL;
    llm_engine *e = calloc(1, sizeof(*e));
    if (e == NULL) {
        secure_unmap(mem, len);
        return CAI_ERR_NOMEM;
    }
    e->mem = mem;
    e->mem_len = len;
    cai_status st = gguf_open_mem(mem, len, &e->gguf);
    if (st == CAI_OK && kernel_level() >= KERNEL_AVX512VNNI) {
        const double t0 = clock_now();
        uint64_t rewritten = 0;
        if ((st = x16_rewrite_mem(e->gguf, mem, 0, &rewritten)) == CAI_OK && rewritten > 0) {
            e->layout = LLM_LAYOUT_X16;
            e->rewrite_s = clock_now() - t0;
        }
    }
    if (st == CAI_OK && mprotect(mem, len, PROT_READ) != 0)
        st = cai_fail(CAI_ERR_IO, "cannot make the model read-only: %s", strerror(errno));
    return engine_load(e, st, template_name, out);
}

static cai_status engine_load(llm_engine *e, cai_status st, const char *template_name, llm_engine **out) {
    if (st == CAI_OK)
        st = llm_model_load_layout(e->gguf, e->layout, &e->model);
    if (st == CAI_OK)
        st = tokenizer_from_gguf(e->gguf, &e->tok);
    if (st == CAI_OK && (size_t)llm_model_hparams(e->model)->n_vocab < tokenizer_n_tokens(e->tok))
        st = cai_fail(CAI_ERR_FORMAT, "the vocabulary (%zu tokens) is larger than the model's "
                      "output (%d)", tokenizer_n_tokens(e->tok), llm_model_hparams(e->model)->n_vocab);
    if (st != CAI_OK) {
        llm_engine_free(e);
        return st;
    }
    const char *arch = llm_model_hparams(e->model)->arch_name, *jinja = NULL, *name = NULL;
    (void)gguf_get_str(e->gguf, "tokenizer.chat_template", &jinja);
    if (template_name) {
        if ((st = chat_template_by_name(template_name, &e->tmpl)) != CAI_OK) {
            llm_engine_free(e);
            return st;
        }
    } else {
        chat_template_detect(jinja, arch, &e->tmpl);
    }
    add_eog(e, tokenizer_eos(e->tok));
    if (e->tmpl.end_of_turn)
        add_eog(e, tokenizer_find(e->tok, e->tmpl.end_of_turn));
    add_eog(e, tokenizer_find(e->tok, "<|endoftext|>"));
    add_eog(e, tokenizer_find(e->tok, "<|im_end|>"));
    add_eog(e, tokenizer_find(e->tok, "<|eot_id|>"));
    gguf_arr stops;
    if (gguf_get_arr(e->gguf, "cai.generation.stop_token_ids", &stops) == CAI_OK &&
        (stops.type == GGUF_TYPE_INT32 || stops.type == GGUF_TYPE_UINT32))
        for (size_t i = 0; i < stops.n; i++) {
            int64_t id = gguf_arr_i64(&stops, i);
            if (id >= 0 && (size_t)id < tokenizer_n_tokens(e->tok))
                add_eog(e, (int32_t)id);
        }
    sample_params_default(&e->gen);
    if ((st = sample_params_from_gguf(e->gguf, &e->gen, &e->gen_set)) != CAI_OK) {
        llm_engine_free(e);
        return st;
    }
    if (gguf_get_str(e->gguf, "general.name", &name) != CAI_OK)
        name = arch;
    snprintf(e->name, sizeof(e->name), "%s", name);
    *out = e;
    return CAI_OK;
}

void llm_engine_free(llm_engine *e) {
    if (e == NULL)
        return;
    tokenizer_free(e->tok);
    llm_model_free(e->model);
    gguf_close(e->gguf);
    secure_unmap(e->mem, e->mem_len);
    free(e);
}

static cai_status bos(const llm_engine *e, int32_t **ids, size_t *n, size_t *cap) {
    if (!tokenizer_add_bos(e->tok))
        return CAI_OK;
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 64;
        int32_t *v = realloc(*ids, c * sizeof(int32_t));
        if (v == NULL)
            return CAI_ERR_NOMEM;
        *ids = v;
        *cap = c;
    }
    (*ids)[(*n)++] = tokenizer_bos(e->tok);
    return CAI_OK;
}

cai_status llm_engine_chat_prompt(const llm_engine *e, const chat_message *msgs, size_t n,
                                  int32_t **ids, size_t *n_ids, size_t *cap) {
    chat_prompt p = {0};
    cai_status st = chat_render(&e->tmpl, msgs, n, 1, &p);
    if (st == CAI_OK)
        st = bos(e, ids, n_ids, cap);
    for (size_t i = 0; st == CAI_OK && i < p.n_seg; i++)
        st = tokenizer_encode(e->tok, (const char *)p.text.data + p.seg[i].off, p.seg[i].len,
                              p.seg[i].special, ids, n_ids, cap);
    chat_prompt_free(&p);
    return st;
}

cai_status llm_engine_text_prompt(const llm_engine *e, const char *text, int32_t **ids,
                                  size_t *n_ids, size_t *cap) {
    cai_status st = bos(e, ids, n_ids, cap);
    return st == CAI_OK ? tokenizer_encode(e->tok, text, strlen(text), 0, ids, n_ids, cap) : st;
}

int llm_engine_is_eog(const llm_engine *e, int32_t id) {
    for (int i = 0; i < e->n_eog; i++)
        if (e->eog[i] == id)
            return 1;
    return 0;
}

const llm_model *llm_engine_model(const llm_engine *e) { return e->model; }
const tokenizer *llm_engine_tokenizer(const llm_engine *e) { return e->tok; }
const char *llm_engine_name(const llm_engine *e) { return e->name; }
chat_format llm_engine_chat_format(const llm_engine *e) { return e->tmpl.format; }

int llm_engine_reads_whole(const llm_engine *e, const gguf_tensor *t) {
    gguf_tensor out;
    return strcmp(t->name, "token_embd.weight") != 0 || gguf_find_tensor(e->gguf, "output.weight", &out) != CAI_OK;
}

uint64_t llm_engine_weight_bytes(const llm_engine *e) {
    uint64_t weights = 0;
    for (size_t i = 0; i < gguf_n_tensors(e->gguf); i++) {
        const gguf_tensor *t = gguf_tensor_at(e->gguf, i);
        weights += llm_engine_reads_whole(e, t) ? t->nbytes : t->nbytes / (uint64_t)t->ne[1];
    }
    return weights;
}

const gguf_file *llm_engine_gguf(const llm_engine *e) { return e->gguf; }

const char *llm_engine_kernels_name(void) { return kernel_level_name(kernel_level()); }

const char *llm_engine_layout_name(const llm_engine *e, double *rewrite_seconds) {
    if (rewrite_seconds)
        *rewrite_seconds = e->rewrite_s;
    return e->layout == LLM_LAYOUT_X16 ? "x16" : "file";
}

const sample_params *llm_engine_gen(const llm_engine *e, unsigned *set) {
    *set = e->gen_set;
    return &e->gen;
}

/* chat.c - recognising and rendering chat templates. */
#include "llm/chat.h"

#include <stdlib.h>
#include <string.h>

#define QWEN_CHAT_SYSTEM "You are a helpful assistant."
#define QWEN25_SYSTEM "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
#define SMOLLM2_SYSTEM "You are a helpful AI assistant named SmolLM, trained by Hugging Face"

#define PROMPT_MAX ((size_t)64 << 20)

const char *chat_format_name(chat_format f) {
    switch (f) {
    case CHAT_CHATML: return "chatml";
    case CHAT_LLAMA3: return "llama3";
    case CHAT_ZEPHYR: return "zephyr";
    case CHAT_NONE: break;
    }
    return "none";
}

static void set(chat_template *t, chat_format f, const char *system) {
    t->format = f;
    t->default_system = system;
    t->end_of_turn = f == CHAT_CHATML ? "<|im_end|>" : f == CHAT_LLAMA3 ? "<|eot_id|>"
                     : f == CHAT_ZEPHYR ? "</s>" : NULL;
}

void chat_template_detect(const char *jinja, const char *arch, chat_template *out) {
    int qwen = arch && strncmp(arch, "qwen", 4) == 0;
    if (jinja == NULL || jinja[0] == '\0') {
        /* Qwen-7B-Chat's GGUF files carry no template; its tokenizer's
         * make_context() is ChatML with this system prompt. */
        set(out, qwen ? CHAT_CHATML : CHAT_NONE,
            arch && strcmp(arch, "qwen") == 0 ? QWEN_CHAT_SYSTEM : NULL);
        return;
    }
    if (strstr(jinja, "<|im_start|>")) {
        const char *sys = strstr(jinja, QWEN25_SYSTEM)    ? QWEN25_SYSTEM
                          : strstr(jinja, SMOLLM2_SYSTEM) ? SMOLLM2_SYSTEM
                          : strstr(jinja, QWEN_CHAT_SYSTEM) ? QWEN_CHAT_SYSTEM
                                                            : NULL;
        set(out, CHAT_CHATML, sys);
    } else if (strstr(jinja, "<|start_header_id|>")) {
        set(out, CHAT_LLAMA3, NULL);
    } else if (strstr(jinja, "<|user|>")) {
        set(out, CHAT_ZEPHYR, NULL);
    } else {
        set(out, qwen ? CHAT_CHATML : CHAT_NONE, NULL);
    }
}

cai_status chat_template_by_name(const char *name, chat_template *out) {
    if (strcmp(name, "chatml") == 0)
        set(out, CHAT_CHATML, NULL);
    else if (strcmp(name, "qwen") == 0)
        set(out, CHAT_CHATML, QWEN_CHAT_SYSTEM);
    else if (strcmp(name, "llama3") == 0)
        set(out, CHAT_LLAMA3, NULL);
    else if (strcmp(name, "zephyr") == 0)
        set(out, CHAT_ZEPHYR, NULL);
    else
        return cai_fail(CAI_ERR_NOT_FOUND,
                        "unknown chat template '%s' (chatml, qwen, llama3, zephyr)", name);
    return CAI_OK;
}

void chat_prompt_free(chat_prompt *p) {
    buf_free(&p->text);
    free(p->seg);
    memset(p, 0, sizeof(*p));
}

static cai_status add(chat_prompt *p, int special, const char *s) {
    size_t n = strlen(s);
    if (n == 0)
        return CAI_OK;
    /* Adjacent segments of the same kind merge. */
    if (p->n_seg > 0 && p->seg[p->n_seg - 1].special == special) {
        p->seg[p->n_seg - 1].len += n;
        return buf_append(&p->text, s, n);
    }
    if (p->n_seg == p->cap_seg) {
        size_t cap = p->cap_seg ? 2 * p->cap_seg : 16;
        chat_segment *g = realloc(p->seg, cap * sizeof(*g));
        if (g == NULL)
            return CAI_ERR_NOMEM;
        p->seg = g;
        p->cap_seg = cap;
    }
    p->seg[p->n_seg++] = (chat_segment){p->text.len, n, special};
    return buf_append(&p->text, s, n);
}

static cai_status turn(chat_prompt *p, chat_format f, const char *role, const char *content) {
    cai_status st = CAI_OK;
    switch (f) {
    case CHAT_CHATML:
        if ((st = add(p, 1, "<|im_start|>")) == CAI_OK && (st = add(p, 1, role)) == CAI_OK &&
            (st = add(p, 1, "\n")) == CAI_OK && (st = add(p, 0, content)) == CAI_OK)
            st = add(p, 1, "<|im_end|>\n");
        break;
    case CHAT_LLAMA3:
        if ((st = add(p, 1, "<|start_header_id|>")) == CAI_OK && (st = add(p, 1, role)) == CAI_OK &&
            (st = add(p, 1, "<|end_header_id|>\n\n")) == CAI_OK && (st = add(p, 0, content)) == CAI_OK)
            st = add(p, 1, "<|eot_id|>");
        break;
    case CHAT_ZEPHYR:
        if ((st = add(p, 1, "<|")) == CAI_OK && (st = add(p, 1, role)) == CAI_OK &&
            (st = add(p, 1, "|>\n")) == CAI_OK && (st = add(p, 0, content)) == CAI_OK)
            st = add(p, 1, "</s>\n");
        break;
    case CHAT_NONE: break;
    }
    return st;
}

static const char *const generation_prompt[] = {
    [CHAT_CHATML] = "<|im_start|>assistant\n",
    [CHAT_LLAMA3] = "<|start_header_id|>assistant<|end_header_id|>\n\n",
    [CHAT_ZEPHYR] = "<|assistant|>\n",
};

cai_status chat_render(const chat_template *t, const chat_message *msgs, size_t n,
                       int add_generation_prompt, chat_prompt *out) {
    chat_prompt_free(out);
    buf_init(&out->text, PROMPT_MAX);
    if (t->format == CHAT_NONE)
        return cai_fail(CAI_ERR_INVALID_ARG,
                        "this model has no chat template (give one with --chat-template)");
    for (size_t i = 0; i < n; i++) {
        const char *r = msgs[i].role;
        if (r == NULL || msgs[i].content == NULL)
            return cai_fail(CAI_ERR_INVALID_ARG, "message %zu has no role or content", i);
        if (strcmp(r, "system") != 0 && strcmp(r, "user") != 0 && strcmp(r, "assistant") != 0)
            return cai_fail(CAI_ERR_INVALID_ARG,
                            "message %zu: role must be system, user or assistant", i);
        if (i > 0 && strcmp(r, "system") == 0)
            return cai_fail(CAI_ERR_INVALID_ARG,
                            "message %zu: a system message may only come first", i);
    }
    cai_status st = CAI_OK;
    if (t->default_system && (n == 0 || strcmp(msgs[0].role, "system") != 0))
        st = turn(out, t->format, "system", t->default_system);
    for (size_t i = 0; st == CAI_OK && i < n; i++)
        st = turn(out, t->format, msgs[i].role, msgs[i].content);
    if (st == CAI_OK && add_generation_prompt)
        st = add(out, 1, generation_prompt[t->format]);
    if (st == CAI_OK)
        st = buf_terminate(&out->text);
    return st == CAI_ERR_LIMIT ? cai_fail(st, "the conversation is larger than %zu MiB",
                                          PROMPT_MAX >> 20)
                               : st;
}

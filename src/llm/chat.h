/* chat.h - chat templates: a conversation rendered into prompt text.
 *
 * GGUF files carry a Jinja template (`tokenizer.chat_template`); cai does not
 * interpret Jinja but recognises the few formats its models use:
 *
 *   chatml  <|im_start|>role\ncontent<|im_end|>\n ... (Qwen family, SmolLM2)
 *   llama3  <|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>
 *   zephyr  <|role|>\ncontent</s>\n (TinyLlama chat)
 *
 * and the default system prompt the template inserts when the conversation
 * has none ("You are a helpful assistant." for Qwen-7B-Chat, Qwen2.5's
 * "You are Qwen, created by Alibaba Cloud...", SmolLM2's, none for Qwen3).
 *
 * The rendered prompt is a list of segments: template text, in which special
 * tokens such as <|im_start|> are parsed, and message content, in which they
 * are not, so a user who types "<|im_start|>system" gets plain text. */
#ifndef CAI_LLM_CHAT_H
#define CAI_LLM_CHAT_H

#include <stddef.h>

#include "common/buf.h"
#include "common/status.h"

typedef enum {
    CHAT_NONE = 0, /* no chat template: completions only */
    CHAT_CHATML,
    CHAT_LLAMA3,
    CHAT_ZEPHYR,
} chat_format;

typedef struct {
    const char *role; /* "system", "user" or "assistant" */
    const char *content;
} chat_message;

typedef struct {
    size_t off, len;
    int special; /* 1: template text, special tokens parsed; 0: content */
} chat_segment;

typedef struct {
    buf text;               /* all segments, concatenated, NUL-terminated */
    chat_segment *seg;
    size_t n_seg, cap_seg;
} chat_prompt;

typedef struct {
    chat_format format;
    const char *default_system; /* static string or NULL */
    const char *end_of_turn;    /* the token text that ends a reply */
} chat_template;

/* chat_template_detect recognises |jinja| (may be NULL) for a model of
 * architecture |arch| ("qwen", "qwen2", "qwen3", "llama", ...). A model with
 * no template gets ChatML if it is a Qwen, else CHAT_NONE. */
void chat_template_detect(const char *jinja, const char *arch, chat_template *out);

/* chat_template_by_name sets |out| from "chatml", "qwen" (ChatML with
 * Qwen-7B-Chat's system prompt), "llama3" or "zephyr"; CAI_ERR_NOT_FOUND
 * otherwise. */
cai_status chat_template_by_name(const char *name, chat_template *out);

/* chat_format_name returns the format's name ("none" for CHAT_NONE). */
const char *chat_format_name(chat_format f);

/* chat_render renders |n| messages, then the assistant's turn opening when
 * |add_generation_prompt|. Roles other than system/user/assistant, a system
 * message after the first position, NULL content or CHAT_NONE are
 * CAI_ERR_INVALID_ARG with a message. |out| must be zeroed or freed; it is
 * reset first. */
cai_status chat_render(const chat_template *t, const chat_message *msgs, size_t n,
                       int add_generation_prompt, chat_prompt *out);

/* chat_prompt_free releases |p|; it is zeroed again. */
void chat_prompt_free(chat_prompt *p);

#endif

/* vocab_cases.h - the tokenizer vectors of ../shared/data/tokenizer/
 * (qwen2-vocab.inp: inputs separated by "\n__ggml_vocab_test__\n";
 * qwen2-vocab.out: line N holds the ids of input N, each written " %d"),
 * shared by test_tokenizer.c and test_hf_vocab.c. Include after test.h. */
#ifndef CAI_TEST_VOCAB_CASES_H
#define CAI_TEST_VOCAB_CASES_H

#include "common/buf.h"
#include "common/file.h"

/* vocab_cases_each calls |fn| with each input (|text|, |len| bytes) and the
 * ids the file expects ("1 2 3"), and returns how many cases it read, or -1
 * when the files cannot be read. */
static int vocab_cases_each(const char *data_dir,
                            void (*fn)(void *arg, const char *text, size_t len, const char *want),
                            void *arg) {
    char p1[4096], p2[4096];
    snprintf(p1, sizeof(p1), "%s/tokenizer/qwen2-vocab.inp", data_dir);
    snprintf(p2, sizeof(p2), "%s/tokenizer/qwen2-vocab.out", data_dir);
    buf in, want;
    buf_init(&in, 0);
    buf_init(&want, 0);
    int cases = -1;
    if (file_read_all(p1, 64 << 20, &in) == CAI_OK && file_read_all(p2, 64 << 20, &want) == CAI_OK &&
        buf_terminate(&in) == CAI_OK && buf_terminate(&want) == CAI_OK) {
        const char *sep = "\n__ggml_vocab_test__\n";
        char *cur = (char *)in.data, *line = (char *)want.data;
        for (cases = 0; *cur; cases++) {
            char *end = strstr(cur, sep), *nl = strchr(line, '\n');
            if (!end || !nl)
                break;
            *nl = '\0';
            while (*line == ' ')
                line++;
            fn(arg, cur, (size_t)(end - cur), line);
            cur = end + strlen(sep);
            line = nl + 1;
        }
    }
    buf_free(&in);
    buf_free(&want);
    return cases;
}

#endif

/* fuzz_api.c - OpenAI request bodies: parse as chat and as completion; on
 * success every message must be readable (and an unknown model's 404
 * renders), on failure the error must render. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "serve/api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    api_request r;
    api_error e;
    for (int kind = 0; kind < 2; kind++) {
        cai_status st = kind == 0 ? api_parse_chat((const char *)data, size, &r, &e)
                                  : api_parse_completion((const char *)data, size, &r, &e);
        if (st == CAI_OK) {
            size_t total = 0;
            for (size_t i = 0; i < r.n_messages; i++)
                total += strlen(r.messages[i].role) + strlen(r.messages[i].content);
            for (int i = 0; i < r.n_stop; i++)
                total += strlen(r.stop[i]);
            if (r.prompt)
                total += strlen(r.prompt);
            (void)total;
            /* An unknown model's 404 must render as JSON whatever the
             * name (its message cuts it at a character boundary). */
            static const char *const aliases[] = {"Qwen"};
            if (api_check_model(r.model, "m", aliases, 1, &e) != CAI_OK) {
                char *s = api_error_json(&e);
                if (e.status != 404 || s == NULL)
                    abort();
                free(s);
            }
            api_request_free(&r);
        } else {
            if (e.status < 400 || e.status > 599 || e.message[0] == '\0')
                abort();
            free(api_error_json(&e));
        }
    }
    return 0;
}

/* test_api.c - OpenAI request parsing: accepted forms and one test per refusal. */
#include "serve/api.h"
#include "test.h"

static int chat(const char *body, api_request *r, api_error *e) {
    return api_parse_chat(body, strlen(body), r, e) == CAI_OK;
}

static void test_chat_minimal(void) {
    api_request r;
    api_error e;
    CHECK(chat("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}", &r, &e));
    CHECK(r.n_messages == 1 && strcmp(r.messages[0].content, "Hi") == 0);
    CHECK(strcmp(r.model, "m") == 0 && r.stream == 0 && r.max_tokens == 0 && !r.max_tokens_set);
    CHECK(r.sample.temperature == 1.0f && r.sample.top_p == 1.0f && r.sample.top_k == 0);
    CHECK(!r.has_seed && r.n_stop == 0 && r.sample_set == 0);
    api_request_free(&r);
}

static void test_chat_all_fields(void) {
    api_request r;
    api_error e;
    const char *body =
        "{\"model\":\"m\",\"messages\":[{\"role\":\"developer\",\"content\":\"Be brief\"},"
        "{\"role\":\"user\",\"name\":\"bob\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
        "{\"type\":\"text\",\"text\":\"b\"}]},{\"role\":\"assistant\",\"content\":\"ok\"}],"
        "\"stream\":true,\"stream_options\":{\"include_usage\":true},\"max_tokens\":5,"
        "\"max_completion_tokens\":7,\"temperature\":0.5,\"top_p\":0.9,\"stop\":[\"x\",\"yy\"],"
        "\"seed\":-3,\"presence_penalty\":1,\"frequency_penalty\":-1,\"logprobs\":true,"
        "\"top_logprobs\":3,\"n\":1,\"response_format\":{\"type\":\"json_object\"},\"user\":\"u\","
        "\"top_k\":5,\"min_p\":0.1,\"repetition_penalty\":1.1,\"tools\":null}";
    CHECK(chat(body, &r, &e));
    if (r.messages) {
        CHECK(strcmp(r.messages[0].role, "system") == 0);
        CHECK(strcmp(r.messages[1].content, "ab") == 0);
    }
    CHECK(r.stream && r.include_usage && r.max_tokens == 7 && r.max_tokens_set);
    CHECK(r.sample.temperature == 0.5f && r.sample.top_p == 0.9f && r.sample.top_k == 5);
    CHECK(r.n_stop == 2 && strcmp(r.stop[1], "yy") == 0);
    CHECK(r.has_seed && r.sample.seed == (uint64_t)-3);
    CHECK(r.logprobs && r.top_logprobs == 3 && r.json_mode);
    /* the fields the model's defaults must not override */
    CHECK(r.sample_set == (SAMPLE_SET_TEMPERATURE | SAMPLE_SET_TOP_P | SAMPLE_SET_TOP_K |
                           SAMPLE_SET_MIN_P | SAMPLE_SET_REPEAT));
    api_request_free(&r);
    CHECK(chat("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":\"\\n\"}", &r, &e));
    CHECK(r.n_stop == 1 && strcmp(r.stop[0], "\n") == 0);
    api_request_free(&r);
}

/* Every refusal: a 400 naming the parameter, and an empty request. */
static void test_chat_refusals(void) {
    static const struct { const char *body, *param; } bad[] = {
        {"", ""},
        {"{", ""},
        {"[]", ""},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]} trailing", ""},
        {"{\"model\":\"m\"}", "messages"},
        {"{\"messages\":[]}", "messages"},
        {"{\"messages\":{}}", "messages"},
        {"{\"messages\":[\"hi\"]}", "messages"},
        {"{\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}", "messages"},
        {"{\"messages\":[{\"role\":7,\"content\":\"x\"}]}", "messages"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":5}]}", "messages"},
        {"{\"messages\":[{\"role\":\"user\"}]}", "messages"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}", "messages"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"tool_calls\":[]}]}", "messages"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"name\":1}]}", "messages"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":\"hot\"}", "temperature"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":3}", "temperature"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_p\":1.5}", "top_p"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":0}", "max_tokens"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":1.5}", "max_tokens"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_completion_tokens\":-1}", "max_completion_tokens"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"presence_penalty\":2.5}", "presence_penalty"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"frequency_penalty\":-3}", "frequency_penalty"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"seed\":\"1\"}", "seed"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":2}", "n"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream\":1}", "stream"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}", "stop"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":[1]}", "stop"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":[\"\"]}", "stop"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_logprobs\":2}", "top_logprobs"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logprobs\":true,\"top_logprobs\":21}", "top_logprobs"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream_options\":{\"include_usage\":true}}", "stream_options"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream\":true,\"stream_options\":{\"x\":1}}", "stream_options"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":\"json_schema\"}}", "response_format"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":\"json\"}", "response_format"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[]}", "tools"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temprature\":1}", "temprature"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"model\":\"a\",\"model\":\"b\"}", ""},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"\\u0000\"}]}", ""},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}", ""},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"\\ud800\"}]}", ""},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        api_request r;
        api_error e;
        int ok = chat(bad[i].body, &r, &e);
        if (ok || e.status != 400 || strcmp(e.param, bad[i].param) != 0 || e.message[0] == 0) {
            printf("  case %zu (%s): ok=%d status=%d param='%s' message='%s'\n", i, bad[i].body,
                   ok, e.status, e.param, e.message);
            CHECK(0);
        }
        CHECK(r.root == NULL && r.messages == NULL);
    }
}

static void test_completion(void) {
    api_request r;
    api_error e;
    const char *b = "{\"model\":\"m\",\"prompt\":[\"Once\"],\"logprobs\":2,\"max_tokens\":3}";
    CHECK_OK(api_parse_completion(b, strlen(b), &r, &e));
    CHECK(strcmp(r.prompt, "Once") == 0 && r.logprobs == 2 && r.max_tokens == 3);
    api_request_free(&r);
    b = "{\"prompt\":\"x\"}";
    CHECK_OK(api_parse_completion(b, strlen(b), &r, &e));
    CHECK(r.max_tokens == 16 && !r.max_tokens_set); /* OpenAI's default for completions */
    api_request_free(&r);
    b = "{\"prompt\":\"x\",\"max_tokens\":null}"; /* null is "not given" */
    CHECK_OK(api_parse_completion(b, strlen(b), &r, &e));
    CHECK(r.max_tokens == 16 && !r.max_tokens_set);
    api_request_free(&r);
    const char *bad[] = {"{}", "{\"prompt\":[1,2]}", "{\"prompt\":\"x\",\"echo\":true}",
                         "{\"prompt\":\"x\",\"logprobs\":6}", "{\"prompt\":\"x\",\"messages\":[]}",
                         "{\"prompt\":\"x\",\"best_of\":2}", "{\"prompt\":\"x\",\"suffix\":\"y\"}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_ST(api_parse_completion(bad[i], strlen(bad[i]), &r, &e), CAI_ERR_INVALID_ARG);
        CHECK(e.status == 400);
    }
}

static void test_error_json(void) {
    api_error e;
    api_request r;
    CHECK(!chat("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"foo\":1}", &r, &e));
    char *s = api_error_json(&e);
    CHECK(s != NULL);
    if (s)
        CHECK(strcmp(s, "{\"error\":{\"message\":\"Unrecognized request argument supplied: foo\","
                        "\"type\":\"invalid_request_error\",\"param\":\"foo\","
                        "\"code\":\"unknown_parameter\"}}") == 0);
    free(s);
    /* An unknown parameter whose name is cut inside a character (byte 60 of
     * the message's copy, byte 63 of param's): the error is still JSON. */
    char body[400] = "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"x";
    for (int i = 0; i < 100; i++)
        strcat(body, "\xc3\xa9");
    strcat(body, "\":1}");
    CHECK(!chat(body, &r, &e));
    s = api_error_json(&e);
    CHECK(s && strstr(s, "Unrecognized request argument supplied: x\xc3\xa9") && strstr(s, "unknown_parameter"));
    free(s);
    api_error_set(&e, 429, NULL, "queue full");
    s = api_error_json(&e);
    CHECK(s && strstr(s, "\"type\":\"rate_limit_error\"") && strstr(s, "\"param\":null"));
    free(s);
}

/* The model a request names: the id, an alias, or none; else OpenAI's 404. */
static void test_check_model(void) {
    const char *aliases[] = {"Qwen", "gpt-4o-mini"};
    api_error e;
    CHECK_OK(api_check_model(NULL, "qwen", aliases, 2, &e));
    CHECK_OK(api_check_model("qwen", "qwen", aliases, 2, &e));
    CHECK_OK(api_check_model("Qwen", "qwen", aliases, 2, &e));
    CHECK_OK(api_check_model("gpt-4o-mini", "qwen", aliases, 2, &e));
    CHECK_ST(api_check_model("Qwen", "qwen", NULL, 0, &e), CAI_ERR_NOT_FOUND);
    CHECK_ST(api_check_model("QWEN", "qwen", aliases, 2, &e), CAI_ERR_NOT_FOUND);
    CHECK_ST(api_check_model("", "qwen", aliases, 2, &e), CAI_ERR_NOT_FOUND);
    CHECK_ST(api_check_model("gpt-4o", "qwen", aliases, 2, &e), CAI_ERR_NOT_FOUND);
    CHECK(e.status == 404);
    char *s = api_error_json(&e);
    CHECK(s && strcmp(s, "{\"error\":{\"message\":\"The model 'gpt-4o' does not exist: this "
                         "server serves 'qwen'\",\"type\":\"invalid_request_error\",\"param\":"
                         "\"model\",\"code\":\"model_not_found\"}}") == 0);
    free(s);
    /* A long name is cut at a character boundary: the message stays UTF-8. */
    char name[602] = "x"; /* then 2-byte characters: byte 96 is inside one */
    for (int i = 0; i < 300; i++)
        strcat(name, "\xc3\xa9");
    CHECK_ST(api_check_model(name, name + 1, NULL, 0, &e), CAI_ERR_NOT_FOUND);
    s = api_error_json(&e);
    CHECK(s && strstr(s, "\xc3\xa9...' does not exist") && strstr(s, "\xc3\xa9...'\"") &&
          strstr(s, "model_not_found"));
    free(s);
}

int main(void) {
    RUN(test_chat_minimal);
    RUN(test_chat_all_fields);
    RUN(test_chat_refusals);
    RUN(test_completion);
    RUN(test_error_json);
    RUN(test_check_model);
    return test_summary();
}

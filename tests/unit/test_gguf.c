/* test_gguf.c - the GGUF reader: round trips through the writer, the shared
 * models, and one test per rejection rule. */
#include "gguf/gguf.h"
#include "gguf/gguf_write.h"
#include "llm/quant.h"
#include "test.h"

#include <math.h>

/* A small valid file: metadata of every type and two tensors. */
static void build_valid(buf *out) {
    gguf_writer *w = NULL;
    CHECK_OK(gguf_writer_new(&w));
    CHECK_OK(gguf_writer_str(w, "general.architecture", "qwen2"));
    CHECK_OK(gguf_writer_u32(w, "qwen2.block_count", 2));
    CHECK_OK(gguf_writer_i32(w, "some.int", -5));
    CHECK_OK(gguf_writer_f32(w, "qwen2.rope.freq_base", 1e6f));
    CHECK_OK(gguf_writer_bool(w, "some.flag", 1));
    const char *toks[] = {"a", "bc", "\xe4\xbd\xa0"};
    CHECK_OK(gguf_writer_strs(w, "tokenizer.ggml.tokens", toks, NULL, 3));
    int32_t types[] = {1, 3, 6};
    CHECK_OK(gguf_writer_nums(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, 3));
    float v[64];
    for (int i = 0; i < 64; i++)
        v[i] = (float)i * 0.25f - 4;
    int64_t ne1[1] = {64}, ne2[2] = {32, 2};
    CHECK_OK(gguf_writer_tensor(w, "norm.weight", GGML_TYPE_F32, 1, ne1, v, NULL, NULL));
    block_q8_0 q[2];
    CHECK(quant_quantize_row(GGML_TYPE_Q8_0, v, q, 64) == 0);
    CHECK_OK(gguf_writer_tensor(w, "w.weight", GGML_TYPE_Q8_0, 2, ne2, q, NULL, NULL));
    buf_init(out, 0);
    CHECK_OK(gguf_writer_to_buf(w, out));
    gguf_writer_free(w);
}

static void test_round_trip(void) {
    buf b;
    build_valid(&b);
    gguf_file *g = NULL;
    CHECK_OK(gguf_open_mem(b.data, b.len, &g));
    if (g) {
        const char *s;
        uint64_t u;
        int64_t i;
        float f;
        int flag;
        gguf_arr a;
        CHECK(gguf_version(g) == 3 && gguf_n_kv(g) == 7 && gguf_n_tensors(g) == 2);
        CHECK_OK(gguf_get_str(g, "general.architecture", &s));
        CHECK(strcmp(s, "qwen2") == 0);
        CHECK_OK(gguf_get_uint(g, "qwen2.block_count", &u));
        CHECK(u == 2);
        CHECK_OK(gguf_get_int(g, "some.int", &i));
        CHECK(i == -5);
        CHECK_ST(gguf_get_uint(g, "some.int", &u), CAI_ERR_FORMAT); /* negative */
        CHECK_OK(gguf_get_float(g, "qwen2.rope.freq_base", &f));
        CHECK(f == 1e6f);
        CHECK_OK(gguf_get_bool(g, "some.flag", &flag));
        CHECK(flag == 1);
        CHECK_ST(gguf_get_str(g, "qwen2.block_count", &s), CAI_ERR_FORMAT);
        CHECK_ST(gguf_get_str(g, "missing", &s), CAI_ERR_NOT_FOUND);
        CHECK_OK(gguf_get_arr(g, "tokenizer.ggml.tokens", &a));
        CHECK(a.type == GGUF_TYPE_STRING && a.n == 3 && a.strs[2].len == 3 &&
              memcmp(a.strs[1].ptr, "bc", 2) == 0);
        CHECK_OK(gguf_get_arr(g, "tokenizer.ggml.token_type", &a));
        CHECK(a.n == 3 && gguf_arr_i64(&a, 2) == 6);
        gguf_tensor t;
        CHECK_OK(gguf_find_tensor(g, "w.weight", &t));
        CHECK(t.type == GGML_TYPE_Q8_0 && t.n_dims == 2 && t.ne[0] == 32 && t.ne[1] == 2 && t.nbytes == 68);
        CHECK(((uintptr_t)(t.data - b.data)) % 32 == 0);
        float back[64];
        quant_dequantize_row(GGML_TYPE_Q8_0, t.data, back, 64);
        for (int k = 0; k < 64; k++)
            CHECK(fabsf(back[k] - ((float)k * 0.25f - 4)) < 0.05f); /* half a step of 11.75/127 */
        CHECK_ST(gguf_find_tensor(g, "nope", &t), CAI_ERR_NOT_FOUND);
    }
    gguf_close(g);
    buf_free(&b);
}

/* A streamed tensor: its pieces in order make the data, padded as any
 * other; a producer that puts more or fewer bytes than the tensor takes
 * fails the write, naming the tensor. */
static cai_status put_pieces(void *arg, size_t index, size_t nbytes, gguf_put_fn put, void *put_ctx) {
    const int *extra = arg;
    (void)index;
    uint8_t b[48];
    for (size_t i = 0; i < sizeof(b); i++)
        b[i] = (uint8_t)(i * 3 + 1);
    size_t n = (size_t)((int)nbytes + *extra), done = 0;
    cai_status st = CAI_OK;
    for (size_t piece = 1; st == CAI_OK && done < n; piece = piece * 2 + 1) {
        size_t k = n - done < piece ? n - done : piece;
        k = k < sizeof(b) ? k : sizeof(b);
        st = put(put_ctx, b, k);
        done += k;
    }
    return st;
}

static void test_stream_tensor(void) {
    static const int extra[] = {0, -1, 1};
    for (size_t c = 0; c < 3; c++) {
        gguf_writer *w = NULL;
        CHECK_OK(gguf_writer_new(&w));
        int64_t ne[1] = {24}, ne2[1] = {8}; /* 48 bytes of F16 */
        float v[8] = {1, 2, 3, 4, 5, 6, 7, 8};
        CHECK_OK(gguf_writer_tensor_stream(w, "s.weight", GGML_TYPE_F16, 1, ne, put_pieces, (void *)&extra[c]));
        CHECK_OK(gguf_writer_tensor(w, "after.weight", GGML_TYPE_F32, 1, ne2, v, NULL, NULL));
        CHECK_ST(gguf_writer_tensor_stream(w, "x", GGML_TYPE_F32, 1, ne2, NULL, NULL), CAI_ERR_INVALID_ARG);
        buf out;
        buf_init(&out, 0);
        cai_status st = gguf_writer_to_buf(w, &out);
        if (extra[c] == 0) {
            CHECK_OK(st);
            gguf_file *g = NULL;
            gguf_tensor t;
            CHECK_OK(gguf_open_mem(out.data, out.len, &g));
            CHECK(g && gguf_find_tensor(g, "s.weight", &t) == CAI_OK && t.nbytes == 48);
            if (g && t.nbytes == 48)
                for (size_t i = 0; i < 48; i++) /* pieces of 1, 3, 7, 15, 22 bytes */
                    CHECK(t.data[i] == (uint8_t)((i < 1 ? i : i < 4 ? i - 1 : i < 11 ? i - 4 : i < 26 ? i - 11 : i - 26) * 3 + 1));
            CHECK(g && gguf_find_tensor(g, "after.weight", &t) == CAI_OK && memcmp(t.data, v, 32) == 0);
            gguf_close(g);
        } else {
            CHECK(st == CAI_ERR_INVALID_ARG && strstr(cai_errmsg(st), "s.weight") &&
                  strstr(cai_errmsg(st), extra[c] < 0 ? "short" : "more"));
        }
        buf_free(&out);
        gguf_writer_free(w);
    }
}

static void test_every_truncation_refused(void) {
    buf b;
    build_valid(&b);
    /* Every prefix that cuts into the last tensor's data (the padding after
     * it is not needed). */
    gguf_file *full = NULL;
    gguf_tensor t;
    CHECK_OK(gguf_open_mem(b.data, b.len, &full));
    CHECK_OK(gguf_find_tensor(full, "w.weight", &t));
    size_t end = (size_t)(t.data - b.data) + t.nbytes;
    gguf_close(full);
    CHECK(end > b.len - 32 && end < b.len);
    int bad = 0;
    for (size_t n = 0; n < end; n++) {
        gguf_file *g = NULL;
        cai_status st = gguf_open_mem(b.data, n, &g);
        bad += st == CAI_OK || g != NULL;
        gguf_close(g);
    }
    CHECK(bad == 0);
    buf_free(&b);
}

/* ---- hand-made files for each rule ---- */

static void hdr(buf *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    buf_init(b, 0);
    buf_append(b, "GGUF", 4);
    buf_append_u32le(b, version);
    buf_append_u64le(b, n_tensors);
    buf_append_u64le(b, n_kv);
}

static void str(buf *b, const char *s) {
    buf_append_u64le(b, strlen(s));
    buf_append(b, s, strlen(s));
}

static void kv_u32(buf *b, const char *k, uint32_t v) {
    str(b, k);
    buf_append_u32le(b, GGUF_TYPE_UINT32);
    buf_append_u32le(b, v);
}

/* One tensor's info: name, dims, type, offset. */
static void tinfo(buf *b, const char *name, uint32_t nd, const uint64_t *ne, uint32_t type, uint64_t off) {
    str(b, name);
    buf_append_u32le(b, nd);
    for (uint32_t i = 0; i < nd; i++)
        buf_append_u64le(b, ne[i]);
    buf_append_u32le(b, type);
    buf_append_u64le(b, off);
}

static void data(buf *b, size_t n) {
    while (b->len % 32)
        buf_append_u8(b, 0);
    for (size_t i = 0; i < n; i++)
        buf_append_u8(b, 0);
}

static void expect(const char *name, buf *b, cai_status want, const char *msg) {
    gguf_file *g = NULL;
    cai_status st = gguf_open_mem(b->data, b->len, &g);
    if (st != want || g != NULL || !strstr(cai_errmsg(st), msg)) {
        printf("  rule %s: got %d '%s', want %d '%s'\n", name, st, cai_errmsg(st), want, msg);
        test_case_failed = 1;
    }
    gguf_close(g);
    buf_free(b);
}

static void test_rejections(void) {
    buf b;
    uint64_t ne[4] = {32, 1, 1, 1};

    buf_init(&b, 0);
    buf_append(&b, "GGML", 4);
    data(&b, 40);
    expect("bad_magic", &b, CAI_ERR_FORMAT, "bad magic");

    hdr(&b, 1, 0, 0);
    expect("version_1", &b, CAI_ERR_UNSUPPORTED, "version 1 is not supported");
    hdr(&b, 4, 0, 0);
    expect("version_4", &b, CAI_ERR_UNSUPPORTED, "version 4");
    hdr(&b, 3, GGUF_MAX_TENSORS + 1, 0);
    expect("too_many_tensors", &b, CAI_ERR_LIMIT, "tensors");
    hdr(&b, 3, 0, GGUF_MAX_KV + 1);
    expect("too_many_kv", &b, CAI_ERR_LIMIT, "metadata keys");
    hdr(&b, 3, 0, 1000);
    expect("kv_count_past_end", &b, CAI_ERR_TRUNCATED, "truncated");

    hdr(&b, 3, 0, 1);
    buf_append_u64le(&b, (uint64_t)GGUF_MAX_KEY_LEN + 1);
    data(&b, 8);
    expect("key_too_long", &b, CAI_ERR_LIMIT, "metadata key");
    hdr(&b, 3, 0, 1);
    buf_append_u64le(&b, UINT64_MAX);
    expect("key_length_huge", &b, CAI_ERR_LIMIT, "metadata key");
    hdr(&b, 3, 0, 1);
    str(&b, "");
    buf_append_u32le(&b, GGUF_TYPE_UINT8);
    buf_append_u8(&b, 1);
    expect("empty_key", &b, CAI_ERR_FORMAT, "empty");
    hdr(&b, 3, 0, 1);
    buf_append_u64le(&b, 3);
    buf_append(&b, "a\0b", 3);
    buf_append_u32le(&b, GGUF_TYPE_UINT8);
    buf_append_u8(&b, 1);
    expect("nul_in_key", &b, CAI_ERR_FORMAT, "NUL");
    hdr(&b, 3, 0, 2);
    kv_u32(&b, "a.b", 1);
    kv_u32(&b, "a.b", 2);
    expect("duplicate_key", &b, CAI_ERR_FORMAT, "appears twice");
    hdr(&b, 3, 0, 1);
    str(&b, "k");
    buf_append_u32le(&b, 13);
    expect("unknown_value_type", &b, CAI_ERR_FORMAT, "unknown type 13");
    hdr(&b, 3, 0, 1);
    str(&b, "k");
    buf_append_u32le(&b, GGUF_TYPE_BOOL);
    buf_append_u8(&b, 2);
    expect("bool_not_0_or_1", &b, CAI_ERR_FORMAT, "bool");
    hdr(&b, 3, 0, 1);
    str(&b, "k");
    buf_append_u32le(&b, GGUF_TYPE_STRING);
    buf_append_u64le(&b, (uint64_t)GGUF_MAX_STRING_LEN + 1);
    expect("string_too_long", &b, CAI_ERR_LIMIT, "bytes long");
    hdr(&b, 3, 0, 1);
    str(&b, "k");
    buf_append_u32le(&b, GGUF_TYPE_STRING);
    buf_append_u64le(&b, 100);
    buf_append(&b, "short", 5);
    expect("string_past_end", &b, CAI_ERR_TRUNCATED, "truncated");
    hdr(&b, 3, 0, 1);
    str(&b, "k");
    buf_append_u32le(&b, GGUF_TYPE_ARRAY);
    buf_append_u32le(&b, GGUF_TYPE_ARRAY);
    buf_append_u64le(&b, 1);
    expect("nested_array", &b, CAI_ERR_UNSUPPORTED, "nested arrays");
    hdr(&b, 3, 0, 1);
    str(&b, "k");
    buf_append_u32le(&b, GGUF_TYPE_ARRAY);
    buf_append_u32le(&b, 77);
    buf_append_u64le(&b, 1);
    expect("unknown_array_type", &b, CAI_ERR_FORMAT, "element type");
    hdr(&b, 3, 0, 1);
    str(&b, "k");
    buf_append_u32le(&b, GGUF_TYPE_ARRAY);
    buf_append_u32le(&b, GGUF_TYPE_UINT32);
    buf_append_u64le(&b, (uint64_t)GGUF_MAX_ARRAY_LEN + 1);
    expect("array_too_long", &b, CAI_ERR_LIMIT, "elements");
    hdr(&b, 3, 0, 1);
    str(&b, "k");
    buf_append_u32le(&b, GGUF_TYPE_ARRAY);
    buf_append_u32le(&b, GGUF_TYPE_UINT64);
    buf_append_u64le(&b, 1000);
    buf_append_u64le(&b, 1);
    expect("array_past_end", &b, CAI_ERR_TRUNCATED, "truncated");
    hdr(&b, 3, 0, 1);
    str(&b, "k");
    buf_append_u32le(&b, GGUF_TYPE_ARRAY);
    buf_append_u32le(&b, GGUF_TYPE_STRING);
    buf_append_u64le(&b, 1u << 27);
    buf_append_u64le(&b, 0);
    expect("string_array_past_end", &b, CAI_ERR_TRUNCATED, "truncated");
    hdr(&b, 3, 0, 1);
    kv_u32(&b, "general.alignment", 48);
    expect("alignment_not_power_of_two", &b, CAI_ERR_FORMAT, "power of two");
    hdr(&b, 3, 0, 1);
    str(&b, "general.alignment");
    buf_append_u32le(&b, GGUF_TYPE_UINT64);
    buf_append_u64le(&b, 32);
    expect("alignment_wrong_type", &b, CAI_ERR_FORMAT, "power of two");

    hdr(&b, 3, 1, 0);
    tinfo(&b, "t", 0, ne, GGML_TYPE_F32, 0);
    data(&b, 128);
    expect("zero_dims", &b, CAI_ERR_FORMAT, "0 dimensions");
    hdr(&b, 3, 1, 0);
    tinfo(&b, "t", 5, (uint64_t[5]){32, 1, 1, 1, 1}, GGML_TYPE_F32, 0);
    data(&b, 128);
    expect("five_dims", &b, CAI_ERR_FORMAT, "5 dimensions");
    hdr(&b, 3, 1, 0);
    tinfo(&b, "t", 2, (uint64_t[2]){32, 0}, GGML_TYPE_F32, 0);
    data(&b, 128);
    expect("zero_extent", &b, CAI_ERR_FORMAT, "dimensions");
    hdr(&b, 3, 1, 0);
    tinfo(&b, "t", 4, (uint64_t[4]){1u << 20, 1u << 20, 1u << 20, 1u << 20}, GGML_TYPE_F32, 0);
    data(&b, 128);
    expect("dims_overflow", &b, CAI_ERR_FORMAT, "overflowing");
    hdr(&b, 3, 1, 0);
    tinfo(&b, "t", 1, ne, 99, 0);
    data(&b, 128);
    expect("unknown_tensor_type", &b, CAI_ERR_UNSUPPORTED, "unknown type 99");
    hdr(&b, 3, 1, 0);
    tinfo(&b, "t", 1, (uint64_t[1]){33}, GGML_TYPE_Q8_0, 0);
    data(&b, 128);
    expect("row_not_block_multiple", &b, CAI_ERR_FORMAT, "block size");
    hdr(&b, 3, 1, 0);
    tinfo(&b, "t", 1, ne, GGML_TYPE_F32, 16);
    data(&b, 256);
    expect("misaligned_offset", &b, CAI_ERR_FORMAT, "not aligned");
    /* general.alignment 1 lets a tensor start at any byte (the data section starts at
     * byte 90 here); its blocks must still sit where their type can be read. */
    hdr(&b, 3, 1, 1);
    kv_u32(&b, "general.alignment", 1);
    tinfo(&b, "t", 1, ne, GGML_TYPE_Q4_1, 1);
    CHECK(b.len == 90);
    data(&b, 64);
    expect("q4_1_at_odd_address", &b, CAI_ERR_FORMAT, "not aligned to the 2 bytes q4_1 needs");
    hdr(&b, 3, 1, 1);
    kv_u32(&b, "general.alignment", 1);
    tinfo(&b, "t", 1, ne, GGML_TYPE_F32, 4);
    data(&b, 192);
    expect("f32_at_address_2_mod_4", &b, CAI_ERR_FORMAT, "not aligned to the 4 bytes f32 needs");
    hdr(&b, 3, 1, 0);
    tinfo(&b, "t", 1, ne, GGML_TYPE_F32, 0);
    data(&b, 127);
    expect("tensor_past_end", &b, CAI_ERR_TRUNCATED, "past the end");
    hdr(&b, 3, 1, 0);
    tinfo(&b, "t", 1, ne, GGML_TYPE_F32, (uint64_t)1 << 62);
    data(&b, 128);
    expect("offset_huge", &b, CAI_ERR_TRUNCATED, "past the end");
    hdr(&b, 3, 2, 0);
    tinfo(&b, "t", 1, ne, GGML_TYPE_F32, 0);
    tinfo(&b, "t", 1, ne, GGML_TYPE_F32, 128);
    data(&b, 256);
    expect("duplicate_tensor", &b, CAI_ERR_FORMAT, "appears twice");
    hdr(&b, 3, 2, 0);
    tinfo(&b, "a", 1, ne, GGML_TYPE_F32, 0);
    tinfo(&b, "b", 1, ne, GGML_TYPE_F32, 64);
    data(&b, 256);
    expect("overlapping_tensors", &b, CAI_ERR_FORMAT, "overlap");
    hdr(&b, 3, 1, 0);
    buf_append_u64le(&b, 300);
    data(&b, 300);
    expect("tensor_name_too_long", &b, CAI_ERR_LIMIT, "tensor name");
}

static void test_shared_models_open(void) {
    const char *dir = test_shared_data();
    if (dir == NULL) {
        SKIP("../shared/data absent");
        return;
    }
    const char *names[] = {"qwen2-tiny-f16", "qwen2-tiny-q8_0", "qwen2-tiny-q4_0", "qwen-tiny-q8_0",
                           "qwen3-tiny-q8_0", "stories260K"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/engine/%s.gguf", dir, names[i]);
        gguf_file *g = NULL;
        CHECK_OK(gguf_open_path(path, &g));
        if (!g)
            continue;
        gguf_arr toks;
        CHECK_OK(gguf_get_arr(g, "tokenizer.ggml.tokens", &toks));
        CHECK(toks.type == GGUF_TYPE_STRING && toks.n >= (i == 5 ? 512u : 151643u));
        for (size_t t = 0; t < gguf_n_tensors(g); t++) {
            const gguf_tensor *x = gguf_tensor_at(g, t);
            CHECK(quant_supported(x->type));
            float *row = malloc((size_t)x->ne[0] * sizeof(float));
            quant_dequantize_row(x->type, x->data, row, x->ne[0]);
            for (int64_t k = 0; k < x->ne[0]; k++)
                CHECK(isfinite(row[k]));
            free(row);
        }
        gguf_close(g);
    }
}

int main(void) {
    RUN(test_round_trip);
    RUN(test_stream_tensor);
    RUN(test_every_truncation_refused);
    RUN(test_rejections);
    RUN(test_shared_models_open);
    return test_summary();
}

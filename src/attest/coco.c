/* coco.c - the CoCo guest components' REST API: evidence and resources. */
#include "attest/coco.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "attest/evidence.h"
#include "attest/quote.h"
#include "common/codec.h"
#include "common/respath.h"
#include "net/httpc.h"

cai_status coco_api_check(const char *api) {
    if (strncmp(api, "http://", 7) != 0)
        return cai_fail(CAI_ERR_INVALID_ARG, "--coco-api %.200s: the guest components' REST "
                        "API is plain http:// on the pod's loopback", api);
    httpc_url u;
    cai_status st = httpc_url_parse(api, &u);
    if (st != CAI_OK)
        return cai_fail(CAI_ERR_INVALID_ARG, "--coco-api: %s", cai_errmsg(st));
    const char *h = u.host;
    struct in_addr a4;
    int loopback = (inet_pton(AF_INET, h, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127) ||
                   strcmp(h, "localhost") == 0 || strcmp(h, "[::1]") == 0 || strcmp(h, "::1") == 0;
    int bare = u.query == NULL && (u.path == NULL || strcmp(u.path, "/") == 0);
    if (!loopback)
        st = cai_fail(CAI_ERR_INVALID_ARG, "--coco-api %.200s: not a loopback address; the "
                      "API is plain HTTP and the key would cross the network readable", api);
    else if (!bare)
        st = cai_fail(CAI_ERR_INVALID_ARG, "--coco-api %.200s: give the API's root "
                      "(http://HOST:PORT), without a path", api);
    httpc_url_cleanup(&u);
    return st;
}

/* The first line of an error answer, printable ASCII only, into |out|. */
static void answer_line(const buf *b, char *out, size_t cap) {
    size_t n = 0;
    for (size_t i = 0; i < b->len && n + 1 < cap; i++) {
        uint8_t ch = b->data[i];
        if (ch == '\n' || ch == '\r')
            break;
        out[n++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    out[n] = '\0';
}

/* GET |api||what| into |resp| (initialised here): CAI_OK with |*status|, or
 * a transport failure naming the API. */
static cai_status api_get(const char *api, const char *what, const char *url, size_t max,
                          long *status, buf *resp) {
    buf_init(resp, max);
    cai_status st = coco_api_check(api);
    if (st != CAI_OK)
        return st;
    httpc *c = NULL;
    httpc_opts o = {.timeout_s = 60, .connect_timeout_s = 5, .user_agent = "cai"};
    if ((st = httpc_new(&o, &c)) != CAI_OK)
        return st;
    httpc_request rq = {.method = "GET", .url = url, .max_response = max};
    st = httpc_do(c, &rq, status, resp);
    if (st == CAI_ERR_LIMIT)
        st = cai_fail(CAI_ERR_LIMIT, "CoCo API: %s: the answer is larger than %zu bytes", what,
                      max);
    else if (st != CAI_OK && httpc_unreachable(c))
        st = cai_fail(CAI_ERR_IO, "CoCo API unreachable at %s (%s): is the guest components' "
                      "api-server-rest running in this pod (Kata: agent.guest_components_rest_api"
                      "=all)? %s", api, what, cai_errmsg(st));
    else if (st != CAI_OK)
        st = cai_fail(st, "CoCo API at %s: %s: %s", api, what, cai_errmsg(st));
    httpc_free(c);
    return st;
}

/* |api| without a trailing '/', into |out|. */
static cai_status api_root(const char *api, char *out, size_t cap) {
    size_t n = strlen(api);
    while (n > 0 && api[n - 1] == '/')
        n--;
    if (n >= cap)
        return cai_fail(CAI_ERR_LIMIT, "--coco-api is too long");
    memcpy(out, api, n);
    out[n] = '\0';
    return CAI_OK;
}

cai_status coco_evidence_parse(const uint8_t *doc, size_t len, const uint8_t report_data[64],
                               buf *quote) {
    buf_init(quote, TDX_QUOTE_MAX_LEN);
    if (len > COCO_EVIDENCE_MAX_LEN)
        return cai_fail(CAI_ERR_LIMIT, "CoCo evidence: %zu bytes, more than %u", len,
                        COCO_EVIDENCE_MAX_LEN);
    json_error_t je;
    json_t *root = json_loadb((const char *)doc, len, JSON_REJECT_DUPLICATES, &je);
    buf raw = {0};
    tdx_quote *q = NULL;
    cai_status st = CAI_OK;
    if (root == NULL) {
        st = cai_fail(CAI_ERR_FORMAT, "CoCo evidence: malformed JSON: %s (line %d)", je.text,
                      je.line);
        goto out;
    }
    if ((st = attest_tdx_evidence_quote(root, &raw, NULL)) != CAI_OK) {
        st = cai_fail(st, "CoCo evidence: %s", cai_errmsg(st));
        goto out;
    }
    if ((st = tdx_quote_parse(raw.data, raw.len, TDX_QUOTE_ALLOW_ZERO_PAD, &q)) != CAI_OK) {
        st = cai_fail(st, "CoCo evidence: \"quote\" is not a TDX quote (%zu bytes): %s", raw.len,
                      cai_errmsg(st));
        goto out;
    }
    if (memcmp(q->body.report_data, report_data, 64) != 0) {
        st = cai_fail(CAI_ERR_AUTH, "CoCo evidence: REPORTDATA: the quote's REPORTDATA is not "
                      "the one asked for (an API server without encoding=base64, or a replay)");
        goto out;
    }
    st = buf_append(quote, q->raw, q->len);
out:
    tdx_quote_free(q);
    buf_free(&raw);
    json_decref(root);
    if (st != CAI_OK)
        buf_free(quote);
    return st;
}

cai_status coco_quote(const char *api, const uint8_t report_data[64], buf *out) {
    if (api == NULL)
        api = COCO_API_DEFAULT;
    buf_init(out, TDX_QUOTE_MAX_LEN);
    char root[512], b64[128], url[1024];
    cai_status st = api_root(api, root, sizeof(root));
    if (st != CAI_OK)
        return st;
    CAI_ASSERT(b64_encoded_len(64, B64_URL) < sizeof(b64));
    b64_encode(b64, report_data, 64, B64_URL);
    snprintf(url, sizeof(url), "%s/aa/evidence?runtime_data=%s&encoding=base64", root, b64);
    buf resp;
    long status = 0;
    st = api_get(api, "GET /aa/evidence", url, COCO_EVIDENCE_MAX_LEN, &status, &resp);
    if (st == CAI_OK && status != 200) {
        char line[200];
        answer_line(&resp, line, sizeof(line));
        st = cai_fail(CAI_ERR_IO, "CoCo API: GET /aa/evidence answered HTTP %ld: %s", status,
                      line[0] ? line : "(no text)");
    }
    if (st == CAI_OK)
        st = coco_evidence_parse(resp.data, resp.len, report_data, out);
    buf_free(&resp);
    return st;
}

cai_status coco_resource(const char *api, const char *path, size_t max, buf *out) {
    if (api == NULL)
        api = COCO_API_DEFAULT;
    buf_init(out, max);
    if (!respath_valid(path))
        return cai_fail(CAI_ERR_INVALID_ARG, "'%.100s' is not repo/type/tag", path);
    char root[512], url[1024];
    cai_status st = api_root(api, root, sizeof(root));
    if (st != CAI_OK)
        return st;
    if ((size_t)snprintf(url, sizeof(url), "%s/cdh/resource/%s", root, path) >= sizeof(url))
        return cai_fail(CAI_ERR_LIMIT, "the resource URL is too long");
    char what[400];
    snprintf(what, sizeof(what), "GET /cdh/resource/%s", path);
    long status = 0;
    st = api_get(api, what, url, max, &status, out);
    if (st == CAI_OK && status != 200) {
        char line[200];
        answer_line(out, line, sizeof(line));
        st = cai_fail(status == 404 ? CAI_ERR_NOT_FOUND : CAI_ERR_IO,
                      "CoCo API: the confidential data hub: %s answered HTTP %ld: %s", what,
                      status, line[0] ? line : "(no text)");
    }
    if (st != CAI_OK)
        buf_free(out);
    return st;
}

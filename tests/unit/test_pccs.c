/* Tests of the collateral provider (attest/pccs) against a fake PCCS: cai's
 * own httpd on 127.0.0.1 serving the sim PKI's collateral in the PCS v4 wire
 * format (JSON bodies, URL-encoded PEM issuer chains in headers, DER CRLs,
 * the PCCS's hex root CA CRL). Real HTTP, real libcurl, no internet. */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "attest/evidence.h"
#include "attest/pccs.h"
#include "attest/sim.h"
#include "attest/trust.h"
#include "attest/verify.h"
#include "common/codec.h"
#include "common/file.h"
#include "net/httpd.h"
#include "test.h"

static char dir[] = "/tmp/cai-pccs-sim-XXXXXX";
static char cache[] = "/tmp/cai-pccs-cache-XXXXXX";

typedef enum {
    SERVE_OK,
    SERVE_NO_CHAIN,   /* TCB info without its issuer chain header */
    SERVE_404,        /* unknown FMSPC */
    SERVE_PRETTY,     /* TCB info signed as indented text: bytes must be kept */
    SERVE_OTHER_FMSPC,
    SERVE_BAD_CRL,
    SERVE_HUGE,       /* a body over PCCS_BODY_MAX */
} serve_mode;

static httpd *srv;
static atomic_int requests;
static serve_mode mode;
static char base[64];

static char *read_text(const char *name) {
    char p[300];
    buf b;
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    if (file_read_all(p, 1 << 20, &b) != CAI_OK || buf_terminate(&b) != CAI_OK) {
        buf_free(&b);
        return NULL;
    }
    return (char *)b.data;
}

/* Percent-encodes |s| the way Intel's PCS encodes issuer chain headers. */
static char *url_encode(const char *s) {
    size_t n = strlen(s);
    char *o = malloc(3 * n + 1), *q = o;
    for (size_t i = 0; o && i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_' || ch == '~')
            *q++ = (char)ch;
        else
            q += sprintf(q, "%%%02X", ch);
    }
    if (q)
        *q = '\0';
    return o;
}

static void add_chain(httpd_req *r, const char *header, const char *leaf) {
    char *a = read_text(leaf), *root = read_text(SIM_ROOT_CERT);
    buf b;
    buf_init(&b, 0);
    if (a && root && buf_printf(&b, "%s%s", a, root) == CAI_OK) {
        char *enc = url_encode((const char *)b.data);
        if (enc)
            httpd_add_header(r, header, enc);
        free(enc);
    }
    buf_free(&b);
    free(a);
    free(root);
}

/* Signs |text| with the sim TCB signing key as hex r||s. */
static int tcb_sign(const char *text, char hex[129]) {
    char p[300];
    snprintf(p, sizeof(p), "%s/%s", dir, SIM_TCB_KEY);
    FILE *f = fopen(p, "r");
    EVP_PKEY *k = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char der[80];
    size_t n = sizeof(der);
    const unsigned char *dp = der;
    ECDSA_SIG *sig = NULL;
    uint8_t raw[64];
    int ok = k && md && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k) == 1 &&
             EVP_DigestSign(md, der, &n, (const unsigned char *)text, strlen(text)) == 1 &&
             (sig = d2i_ECDSA_SIG(NULL, &dp, (long)n)) != NULL &&
             BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw, 32) == 32 &&
             BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw + 32, 32) == 32;
    if (ok)
        hex_encode(hex, raw, 64);
    ECDSA_SIG_free(sig);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(k);
    return ok;
}

static void on_tcb(httpd_req *r, void *arg) {
    CAI_UNUSED(arg);
    atomic_fetch_add(&requests, 1);
    const char *fm = httpd_query(r, "fmspc");
    if (mode == SERVE_404 || fm == NULL || strcasecmp(fm, "005A51000000") != 0) {
        httpd_reply(r, 404, "text/plain", "", 0);
        return;
    }
    char *body = read_text(SIM_TCB_INFO);
    if (body && mode == SERVE_OTHER_FMSPC) {
        char *at = strstr(body, "005A51000000");
        if (at)
            memcpy(at, "005A52000000", 12);
    }
    if (body && mode == SERVE_PRETTY) {
        json_error_t e;
        json_t *doc = json_loads(body, 0, &e);
        char *pretty = json_dumps(json_object_get(doc, "tcbInfo"), JSON_INDENT(3) | JSON_PRESERVE_ORDER);
        char hex[129];
        buf b;
        buf_init(&b, 0);
        if (pretty && tcb_sign(pretty, hex) &&
            buf_printf(&b, "{\n \"tcbInfo\" : %s ,\n \"signature\":\"%s\"}\n", pretty, hex) == CAI_OK) {
            free(body);
            body = (char *)b.data;
        } else
            buf_free(&b);
        free(pretty);
        json_decref(doc);
    }
    if (mode != SERVE_NO_CHAIN)
        add_chain(r, "TCB-Info-Issuer-Chain", SIM_TCB_CERT);
    if (body)
        httpd_reply(r, 200, "application/json", body, strlen(body));
    else
        httpd_reply(r, 500, "text/plain", "", 0);
    free(body);
}

static void on_qe(httpd_req *r, void *arg) {
    CAI_UNUSED(arg);
    atomic_fetch_add(&requests, 1);
    char *body = read_text(SIM_QE_IDENTITY);
    add_chain(r, "SGX-Enclave-Identity-Issuer-Chain", SIM_TCB_CERT);
    httpd_reply(r, body ? 200 : 500, "application/json", body ? body : "", body ? strlen(body) : 0);
    free(body);
}

static void on_pckcrl(httpd_req *r, void *arg) {
    CAI_UNUSED(arg);
    atomic_fetch_add(&requests, 1);
    const char *ca = httpd_query(r, "ca"), *enc = httpd_query(r, "encoding");
    char p[300];
    buf b;
    snprintf(p, sizeof(p), "%s/%s", dir, SIM_PCK_CRL);
    if (!ca || strcmp(ca, "platform") != 0 || !enc || strcmp(enc, "der") != 0 ||
        file_read_all(p, 1 << 20, &b) != CAI_OK) {
        httpd_reply(r, 400, "text/plain", "", 0);
        return;
    }
    if (mode == SERVE_BAD_CRL)
        b.data[b.len / 2] ^= 0xFF, b.len -= 3;
    add_chain(r, "SGX-PCK-CRL-Issuer-Chain", SIM_PLATFORM_CERT);
    if (mode == SERVE_HUGE) {
        buf big;
        buf_init(&big, 0);
        if (buf_reserve(&big, PCCS_BODY_MAX + 10) == CAI_OK) {
            memset(big.data, 0x30, PCCS_BODY_MAX + 10);
            httpd_reply(r, 200, "application/pkix-crl", big.data, PCCS_BODY_MAX + 10);
        }
        buf_free(&big);
    } else
        httpd_reply(r, 200, "application/pkix-crl", b.data, b.len);
    buf_free(&b);
}

/* A PCCS serves the root CA CRL as hex text. */
static void on_rootcrl(httpd_req *r, void *arg) {
    CAI_UNUSED(arg);
    atomic_fetch_add(&requests, 1);
    char p[300];
    buf b;
    snprintf(p, sizeof(p), "%s/%s", dir, SIM_ROOT_CRL);
    if (file_read_all(p, 1 << 20, &b) != CAI_OK) {
        httpd_reply(r, 500, "text/plain", "", 0);
        return;
    }
    char *hex = malloc(2 * b.len + 1);
    if (hex) {
        hex_encode(hex, b.data, b.len);
        httpd_reply(r, 200, "text/plain", hex, strlen(hex));
    }
    free(hex);
    buf_free(&b);
}

static void *loop(void *arg) {
    CAI_UNUSED(arg);
    httpd_run(srv);
    return NULL;
}

typedef struct {
    buf quote, root;
} sim_quote_case;

static void sim_case(sim_quote_case *s) {
    uint8_t rd[64] = {0x11};
    CHECK_OK(sim_quote(dir, rd, NULL, &s->quote));
    char p[300];
    snprintf(p, sizeof(p), "%s/%s", dir, SIM_ROOT_CERT);
    CHECK_OK(file_read_all(p, 1 << 16, &s->root));
    CHECK_OK(buf_terminate(&s->root));
}

static void sim_case_free(sim_quote_case *s) {
    buf_free(&s->quote);
    buf_free(&s->root);
}

static pccs *provider(const char *cache_dir) {
    pccs_config cfg = {.base_url = base, .cache_dir = cache_dir, .insecure_http = 1};
    pccs *p = NULL;
    CHECK_OK(pccs_new(&cfg, &p));
    return p;
}

static void clear_cache(void) {
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -f '%s'/tdx-*.json", cache);
    CHECK(system(cmd) == 0);
}

static void test_fetch_verify_cache(void) {
    clear_cache();
    mode = SERVE_OK;
    sim_quote_case s;
    sim_case(&s);
    pccs *p = provider(cache);
    tdx_collateral *c = NULL;
    time_t now = time(NULL);
    int before = atomic_load(&requests);
    CHECK_OK(pccs_get_for_quote(p, s.quote.data, s.quote.len, now, &c));
    CHECK(atomic_load(&requests) - before == 4); /* tcb, qe identity, pck crl, root crl */
    tdx_trust t = {.sim_root_pem = (const char *)s.root.data};
    tdx_verify_result r;
    if (c)
        CHECK_OK(tdx_verify(s.quote.data, s.quote.len, c, &t, now, &r));
    tdx_collateral_free(c);
    /* Again: from memory, no request. */
    before = atomic_load(&requests);
    CHECK_OK(pccs_get_for_quote(p, s.quote.data, s.quote.len, now, &c));
    CHECK(atomic_load(&requests) == before && c != NULL);
    tdx_collateral_free(c);
    pccs_stats st;
    pccs_get_stats(p, &st);
    CHECK(st.fetches == 1 && st.memory_hits == 1 && st.disk_hits == 0);
    pccs_free(p);
    /* A new provider finds it on disk, in the collateral format. */
    char path[300];
    snprintf(path, sizeof(path), "%s/tdx-005A51000000-platform.json", cache);
    tdx_collateral *d = NULL;
    CHECK_OK(tdx_collateral_load(path, &d));
    tdx_collateral_free(d);
    p = provider(cache);
    CHECK_OK(pccs_get_for_quote(p, s.quote.data, s.quote.len, now, &c));
    CHECK(atomic_load(&requests) == before);
    pccs_get_stats(p, &st);
    CHECK(st.disk_hits == 1 && st.fetches == 0);
    tdx_collateral_free(c);
    /* After nextUpdate the cache is stale: fetched again. */
    CHECK_OK(pccs_get_for_quote(p, s.quote.data, s.quote.len, now + 31 * 86400, &c));
    CHECK(atomic_load(&requests) == before + 4);
    tdx_collateral_free(c);
    pccs_free(p);
    sim_case_free(&s);
}

static void test_offline(void) {
    clear_cache();
    mode = SERVE_OK;
    sim_quote_case s;
    sim_case(&s);
    pccs *p = provider(cache);
    tdx_collateral *c = NULL;
    CHECK_OK(pccs_get_for_quote(p, s.quote.data, s.quote.len, time(NULL), &c));
    tdx_collateral_free(c);
    pccs_free(p);
    int before = atomic_load(&requests);
    pccs_config off = {.cache_dir = cache};
    CHECK_OK(pccs_new(&off, &p));
    CHECK_OK(pccs_get_for_quote(p, s.quote.data, s.quote.len, time(NULL), &c));
    CHECK(c != NULL && atomic_load(&requests) == before);
    tdx_collateral_free(c);
    /* offline, expired: handed out, so that the verifier says "expired" */
    time_t later = time(NULL) + 40 * 86400;
    CHECK_OK(pccs_get_for_quote(p, s.quote.data, s.quote.len, later, &c));
    tdx_trust t = {.sim_root_pem = (const char *)s.root.data};
    tdx_verify_result r;
    if (c) {
        CHECK_ST(tdx_verify(s.quote.data, s.quote.len, c, &t, later, &r), CAI_ERR_AUTH);
        CHECK(r.error == TDX_VERIFY_COLLATERAL_EXPIRED);
    }
    tdx_collateral_free(c);
    pccs_free(p);
    /* offline with nothing cached: not found */
    clear_cache();
    CHECK_OK(pccs_new(&off, &p));
    CHECK_ST(pccs_get_for_quote(p, s.quote.data, s.quote.len, time(NULL), &c), CAI_ERR_NOT_FOUND);
    pccs_free(p);
    sim_case_free(&s);
}

/* The signature covers the bytes as served: re-serialising would break it. */
static void test_signed_bytes_kept(void) {
    mode = SERVE_PRETTY;
    sim_quote_case s;
    sim_case(&s);
    pccs *p = provider(NULL);
    tdx_collateral *c = NULL;
    CHECK_OK(pccs_get_for_quote(p, s.quote.data, s.quote.len, time(NULL), &c));
    tdx_trust t = {.sim_root_pem = (const char *)s.root.data};
    tdx_verify_result r;
    if (c)
        CHECK_OK(tdx_verify(s.quote.data, s.quote.len, c, &t, time(NULL), &r));
    tdx_collateral_free(c);
    pccs_free(p);
    sim_case_free(&s);
    mode = SERVE_OK;
}

static void refused(serve_mode m, cai_status want, const char *msg) {
    mode = m;
    sim_quote_case s;
    sim_case(&s);
    pccs *p = provider(NULL);
    tdx_collateral *c = NULL;
    cai_status st = pccs_get_for_quote(p, s.quote.data, s.quote.len, time(NULL), &c);
    CHECK_ST(st, want);
    if (st != CAI_OK && strstr(cai_errmsg(st), msg) == NULL) {
        printf("  message: %s\n", cai_errmsg(st));
        CHECK(0);
    }
    CHECK(c == NULL);
    tdx_collateral_free(c);
    pccs_free(p);
    sim_case_free(&s);
    mode = SERVE_OK;
}

static void test_refuse_no_chain(void) { refused(SERVE_NO_CHAIN, CAI_ERR_FORMAT, "TCB-Info-Issuer-Chain"); }
static void test_refuse_404(void) { refused(SERVE_404, CAI_ERR_NOT_FOUND, "404"); }
static void test_refuse_other_fmspc(void) { refused(SERVE_OTHER_FMSPC, CAI_ERR_FORMAT, "005A52000000"); }
static void test_refuse_bad_crl(void) { refused(SERVE_BAD_CRL, CAI_ERR_FORMAT, "PCK CRL"); }
static void test_refuse_huge(void) { refused(SERVE_HUGE, CAI_ERR_LIMIT, "too large"); }

static void test_config(void) {
    pccs *p = NULL;
    pccs_config c = {.base_url = "http://127.0.0.1:1"};
    CHECK_ST(pccs_new(&c, &p), CAI_ERR_INVALID_ARG); /* plain http needs the flag */
    c.base_url = "ftp://x";
    c.insecure_http = 1;
    CHECK_ST(pccs_new(&c, &p), CAI_ERR_INVALID_ARG);
    pccs_config none = {0};
    CHECK_ST(pccs_new(&none, &p), CAI_ERR_INVALID_ARG);
    /* nobody listening: an I/O error, quickly */
    c.base_url = "http://127.0.0.1:1/sgx/certification/v4/";
    CHECK_OK(pccs_new(&c, &p));
    uint8_t fm[6] = {0};
    tdx_collateral *col = NULL;
    CHECK_ST(pccs_get(p, fm, 0, time(NULL), &col), CAI_ERR_IO);
    CHECK(strstr(cai_errmsg(CAI_ERR_IO), "127.0.0.1:1/tdx/certification/v4/tcb?fmspc=000000000000"));
    pccs_free(p);
}

/* attest_verify_claims with a provider instead of fixed collateral. */
static void test_verifier_with_provider(void) {
    mode = SERVE_OK;
    sim_quote_case s;
    sim_case(&s);
    pccs *p = provider(NULL);
    attest_verifier v = {.sim_root_pem = (const char *)s.root.data, .collateral_provider = p};
    json_t *claims = NULL;
    tdx_verify_result r;
    CHECK_OK(attest_verify_claims(&v, s.quote.data, s.quote.len, time(NULL), &claims, &r));
    CHECK(claims && strcmp(json_string_value(json_object_get(claims, "tee")), "sim") == 0);
    json_decref(claims);
    /* Not trusting the sim root: refused before anything is fetched. */
    int before = atomic_load(&requests);
    attest_verifier strict = {.collateral_provider = p};
    CHECK_ST(attest_verify_claims(&strict, s.quote.data, s.quote.len, time(NULL), &claims, &r),
             CAI_ERR_AUTH);
    CHECK(r.error == TDX_VERIFY_ROOT_UNTRUSTED && atomic_load(&requests) == before);
    pccs_free(p);
    sim_case_free(&s);
}

/* Verifies the sim quote of |s| with the verifier of |o|; returns how many
 * requests reached the fake PCCS. */
static int trust_verify(const attest_trust_opts *o, sim_quote_case *s) {
    attest_trust *t = NULL;
    int before = atomic_load(&requests);
    CHECK_OK(attest_trust_new(o, &t));
    if (t) {
        json_t *claims = NULL;
        CHECK_OK(attest_verify_claims(attest_trust_verifier(t), s->quote.data, s->quote.len,
                                      time(NULL), &claims, NULL));
        CHECK(claims && strcmp(json_string_value(json_object_get(claims, "tee")), "sim") == 0);
        json_decref(claims);
    }
    attest_trust_free(t);
    return atomic_load(&requests) - before;
}

/* attest_trust: which collateral verifies a sim quote, offline folders,
 * and the option combinations it refuses. */
static void test_trust(void) {
    clear_cache();
    mode = SERVE_OK;
    sim_quote_case s;
    sim_case(&s);
    /* the default: the sim folder's own collateral, the PCCS is not asked */
    attest_trust_opts o = {.pccs_url = base, .pccs_cache = cache, .pccs_insecure_http = 1,
                           .trust_sim = dir};
    CHECK(trust_verify(&o, &s) == 0);
    /* attest verify's choice: the given PCCS verifies the sim quote too */
    o.sim_uses_given_collateral = 1;
    CHECK(trust_verify(&o, &s) == 4);
    /* the cache it wrote is an offline collateral folder */
    attest_trust_opts off = {.collateral = cache, .trust_sim = dir, .sim_uses_given_collateral = 1};
    CHECK(trust_verify(&off, &s) == 0);
    /* given nothing else, the sim folder's collateral */
    attest_trust_opts sim_only = {.trust_sim = dir, .sim_uses_given_collateral = 1};
    CHECK(trust_verify(&sim_only, &s) == 0);
    /* a folder with no collateral at all is refused at once */
    clear_cache();
    attest_trust *t = NULL;
    CHECK(attest_trust_new(&off, &t) != CAI_OK && t == NULL);
    attest_trust_opts bad[] = {
        {.collateral = dir, .pccs_url = base, .pccs_insecure_http = 1},
        {.collateral = dir, .pccs_cache = cache},
        {.pccs_url = base}, /* plain http without the flag */
        {0},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_ST(attest_trust_new(&bad[i], &t), CAI_ERR_INVALID_ARG);
        CHECK(t == NULL);
    }
    sim_case_free(&s);
}

static void test_json_member(void) {
    size_t off, n;
    const char *j = " { \"a\" : [1, {\"b\":\"}\\\"\"}] , \"tcbInfo\":{\"x\": -1.5e3, \"y\":null} } ";
    CHECK_OK(pccs_json_member(j, strlen(j), "tcbInfo", &off, &n));
    CHECK(n == strlen("{\"x\": -1.5e3, \"y\":null}") && memcmp(j + off, "{\"x\"", 4) == 0);
    CHECK_OK(pccs_json_member(j, strlen(j), "a", &off, &n));
    CHECK(j[off] == '[' && j[off + n - 1] == ']');
    CHECK_ST(pccs_json_member(j, strlen(j), "zz", &off, &n), CAI_ERR_NOT_FOUND);
    const char *dup = "{\"k\":1,\"k\":2}";
    CHECK_ST(pccs_json_member(dup, strlen(dup), "k", &off, &n), CAI_ERR_FORMAT);
    const char *bad[] = {"", "[]", "{", "{\"k\"}", "{\"k\":}", "{\"k\":1,}", "{\"k\":1} x",
                         "{\"k\":\"a\nb\"}", "{\"k\":[1 2]}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK_ST(pccs_json_member(bad[i], strlen(bad[i]), "k", &off, &n), CAI_ERR_FORMAT);
    char deep[200];
    memset(deep, '[', sizeof(deep));
    memcpy(deep, "{\"k\":", 5);
    CHECK_ST(pccs_json_member(deep, sizeof(deep), "k", &off, &n), CAI_ERR_FORMAT);
}

static void test_url_decode(void) {
    buf b;
    CHECK_OK(pccs_url_decode("-----BEGIN%20CERT%2B%2f-----%0A", 31, &b));
    CHECK(strcmp((const char *)b.data, "-----BEGIN CERT+/-----\n") == 0);
    buf_free(&b);
    CHECK_ST(pccs_url_decode("a%2", 3, &b), CAI_ERR_FORMAT);
    buf_free(&b);
    CHECK_ST(pccs_url_decode("a%zz", 4, &b), CAI_ERR_FORMAT);
    buf_free(&b);
    CHECK_ST(pccs_url_decode("a%00b", 5, &b), CAI_ERR_FORMAT);
    buf_free(&b);
}

int main(void) {
    if (mkdtemp(dir) == NULL || sim_init(dir) != CAI_OK || mkdtemp(cache) == NULL) {
        printf("FAIL setup\n");
        return 1;
    }
    httpd_config cfg = {.host = "127.0.0.1", .max_body = 1 << 20};
    pthread_t t;
    if (httpd_new(&cfg, &srv) != CAI_OK) {
        printf("FAIL httpd_new: %s\n", cai_errmsg(CAI_ERR_IO));
        return 1;
    }
    CHECK_OK(httpd_route(srv, "/tdx/certification/v4/tcb", on_tcb, NULL));
    CHECK_OK(httpd_route(srv, "/tdx/certification/v4/qe/identity", on_qe, NULL));
    CHECK_OK(httpd_route(srv, "/sgx/certification/v4/pckcrl", on_pckcrl, NULL));
    CHECK_OK(httpd_route(srv, "/sgx/certification/v4/rootcacrl", on_rootcrl, NULL));
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", httpd_port(srv));
    pthread_create(&t, NULL, loop, NULL);
    RUN(test_fetch_verify_cache);
    RUN(test_offline);
    RUN(test_signed_bytes_kept);
    RUN(test_refuse_no_chain);
    RUN(test_refuse_404);
    RUN(test_refuse_other_fmspc);
    RUN(test_refuse_bad_crl);
    RUN(test_refuse_huge);
    RUN(test_config);
    RUN(test_verifier_with_provider);
    RUN(test_trust);
    RUN(test_json_member);
    RUN(test_url_decode);
    httpd_stop(srv);
    pthread_join(t, NULL);
    httpd_free(srv);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", dir, cache);
    if (system(cmd) != 0)
        printf("  could not clean up\n");
    return test_summary();
}

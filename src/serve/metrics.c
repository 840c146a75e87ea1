/* metrics.c - counters and histograms, and their Prometheus text. */
#include "serve/metrics.h"

static const double BUCKETS[METRICS_N_BUCKETS] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
static const char *const EP_NAMES[METRICS_EP_COUNT] = {"chat_completions", "completions", "models",
                                                       "health", "attestation", "other"};

static void observe(metrics_histogram *h, double v) {
    int i = 0;
    while (i < METRICS_N_BUCKETS && v > BUCKETS[i])
        i++;
    atomic_fetch_add(&h->count[i], 1);
    atomic_fetch_add(&h->n, 1);
    double old = atomic_load(&h->sum);
    while (!atomic_compare_exchange_weak(&h->sum, &old, old + v))
        ;
}

void metrics_count(metrics *m, metrics_endpoint ep, int status) {
    int cls = status >= 200 && status < 600 ? status / 100 - 2 : 4;
    atomic_fetch_add(&m->http[ep][cls], 1);
}

void metrics_generation(metrics *m, const sched_usage *u) {
    atomic_fetch_add(&m->prompt_tokens, (unsigned long long)u->prompt_tokens);
    atomic_fetch_add(&m->completion_tokens, (unsigned long long)u->completion_tokens);
    observe(&m->latency, u->total_s);
    if (u->completion_tokens > 0)
        observe(&m->ttft, u->queue_s + u->prefill_s);
}

static cai_status render_histogram(metrics_histogram *h, const char *name, const char *help, buf *b) {
    cai_status st = buf_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    unsigned long long cum = 0;
    for (int i = 0; st == CAI_OK && i <= METRICS_N_BUCKETS; i++) {
        cum += atomic_load(&h->count[i]);
        if (i < METRICS_N_BUCKETS)
            st = buf_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, BUCKETS[i], cum);
        else
            st = buf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, cum);
    }
    if (st == CAI_OK)
        st = buf_printf(b, "%s_sum %g\n%s_count %llu\n", name, atomic_load(&h->sum), name,
                        (unsigned long long)atomic_load(&h->n));
    return st;
}

cai_status metrics_render(metrics *m, const sched_stats *s, buf *b) {
    static const char *const CLS[] = {"2xx", "3xx", "4xx", "5xx", "other"};
    cai_status st = buf_printf(b, "# HELP cai_http_requests_total HTTP requests by endpoint and status class.\n"
                                  "# TYPE cai_http_requests_total counter\n");
    for (int e = 0; e < METRICS_EP_COUNT; e++)
        for (int c = 0; st == CAI_OK && c < 5; c++)
            st = buf_printf(b, "cai_http_requests_total{endpoint=\"%s\",code=\"%s\"} %llu\n", EP_NAMES[e],
                            CLS[c], (unsigned long long)atomic_load(&m->http[e][c]));
    if (st == CAI_OK)
        st = buf_printf(b, "# HELP cai_prompt_tokens_total Prompt tokens processed.\n# TYPE cai_prompt_tokens_total counter\n"
                           "cai_prompt_tokens_total %llu\n"
                           "# HELP cai_completion_tokens_total Tokens generated.\n# TYPE cai_completion_tokens_total counter\n"
                           "cai_completion_tokens_total %llu\n",
                        (unsigned long long)atomic_load(&m->prompt_tokens),
                        (unsigned long long)atomic_load(&m->completion_tokens));
    if (st == CAI_OK && s)
        st = buf_printf(b, "# HELP cai_requests_active Generations running.\n# TYPE cai_requests_active gauge\n"
                           "cai_requests_active %d\n# HELP cai_requests_queued Requests waiting for a slot.\n"
                           "# TYPE cai_requests_queued gauge\ncai_requests_queued %d\n"
                           "# HELP cai_slots Concurrent generation slots.\n# TYPE cai_slots gauge\ncai_slots %d\n",
                        s->active, s->queued, s->n_slots);
    if (st == CAI_OK)
        st = render_histogram(&m->latency, "cai_request_duration_seconds",
                              "Time from request to the last token.", b);
    if (st == CAI_OK)
        st = render_histogram(&m->ttft, "cai_time_to_first_token_seconds",
                              "Time from request to the first token.", b);
    return st;
}

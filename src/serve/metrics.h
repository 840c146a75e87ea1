/* metrics.h - the server's Prometheus metrics (internal to serve): HTTP
 * requests by endpoint and status class, tokens, and histograms of request
 * duration and time to first token. Every counter is atomic: handlers on
 * the HTTP loop and callbacks on the engine and attestation threads update
 * them without a lock. */
#ifndef CAI_SERVE_METRICS_H
#define CAI_SERVE_METRICS_H

#include <stdatomic.h>

#include "common/buf.h"
#include "common/status.h"
#include "llm/sched.h"

/* The endpoints counted apart (cai_http_requests_total{endpoint=...}). */
typedef enum {
    METRICS_EP_CHAT,
    METRICS_EP_COMPLETIONS,
    METRICS_EP_MODELS,
    METRICS_EP_HEALTH,
    METRICS_EP_ATTESTATION,
    METRICS_EP_OTHER,
    METRICS_EP_COUNT
} metrics_endpoint;

#define METRICS_N_BUCKETS 10

typedef struct {
    atomic_ullong count[METRICS_N_BUCKETS + 1];
    atomic_ullong n;
    _Atomic double sum;
} metrics_histogram;

/* Zero is the initial state (a calloc'd server holds one). */
typedef struct {
    atomic_ullong http[METRICS_EP_COUNT][5]; /* x status class: 2xx..5xx, other */
    atomic_ullong prompt_tokens, completion_tokens;
    metrics_histogram latency, ttft;
} metrics;

/* metrics_count counts one answer of |ep| with HTTP |status| (499: the
 * client went away). */
void metrics_count(metrics *m, metrics_endpoint ep, int status);

/* metrics_generation records a finished generation: its tokens, its
 * duration and, when it made a token, its time to the first one. */
void metrics_generation(metrics *m, const sched_usage *u);

/* metrics_render appends the Prometheus text exposition (format 0.0.4) of
 * |m| to |out|, with the scheduler's gauges when |s| is not NULL. Returns
 * CAI_OK, or the buffer's error (CAI_ERR_NOMEM, CAI_ERR_LIMIT). */
cai_status metrics_render(metrics *m, const sched_stats *s, buf *out) CAI_WUR;

#endif

#include "common/pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

/* A decode step is a few hundred pool_runs about half a millisecond apart;
 * waking a sleeping thread costs tens of microseconds on a VM, so both
 * sides spin this long before they sleep on the condition variables. */
#define SPIN_NS 200000L

struct pool {
    int n;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t start;           /* sleeping workers wait here for a new generation */
    pthread_cond_t done;            /* the sleeping caller waits here for pending == 0 */
    atomic_ulong generation;        /* bumped by each pool_run, after fn and ctx are set */
    atomic_int pending;             /* workers still in the current run */
    int sleepers, caller_sleeping;  /* under mu */
    atomic_int stop;
    pool_fn fn;
    void *ctx;
};

typedef struct {
    pool *p;
    int ith;
} worker_arg;

static long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* Spins until *v != old (or stop) for up to SPIN_NS; returns whether it changed. */
static int spin_ulong(pool *p, const atomic_ulong *v, unsigned long old) {
    long t0 = 0;
    for (unsigned i = 1;; i++) {
        if (atomic_load_explicit(v, memory_order_acquire) != old || atomic_load_explicit(&p->stop, memory_order_relaxed))
            return 1;
        CPU_RELAX();
        if (i % 64 == 0) {
            long t = now_ns();
            if (t0 == 0)
                t0 = t;
            else if (t - t0 > SPIN_NS)
                return 0;
        }
    }
}

static void *worker_main(void *arg) {
    worker_arg wa = *(worker_arg *)arg;
    free(arg);
    pool *p = wa.p;
    unsigned long seen = 0;
    for (;;) {
        if (!spin_ulong(p, &p->generation, seen)) {
            pthread_mutex_lock(&p->mu);
            p->sleepers++;
            while (!atomic_load(&p->stop) && atomic_load(&p->generation) == seen)
                pthread_cond_wait(&p->start, &p->mu);
            p->sleepers--;
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop))
            break;
        seen = atomic_load_explicit(&p->generation, memory_order_acquire);
        p->fn(p->ctx, wa.ith, p->n);
        if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&p->mu);
            if (p->caller_sleeping)
                pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

int pool_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}

cai_status pool_new(int n_threads, pool **out) {
    *out = NULL;
    if (n_threads < 0 || n_threads > 1024)
        return cai_fail(CAI_ERR_INVALID_ARG, "thread count %d out of range 1..1024", n_threads);
    if (n_threads == 0)
        n_threads = pool_cpu_count();
    pool *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return CAI_ERR_NOMEM;
    p->n = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->start, NULL);
    pthread_cond_init(&p->done, NULL);
    p->threads = calloc((size_t)n_threads, sizeof(pthread_t));
    if (p->threads == NULL) {
        pool_free(p);
        return CAI_ERR_NOMEM;
    }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *wa = malloc(sizeof(*wa));
        if (wa == NULL) {
            p->n = i;
            pool_free(p);
            return CAI_ERR_NOMEM;
        }
        wa->p = p;
        wa->ith = i;
        if (pthread_create(&p->threads[i], NULL, worker_main, wa) != 0) {
            free(wa);
            p->n = i;
            pool_free(p);
            return cai_fail(CAI_ERR_INTERNAL, "cannot start worker thread %d", i);
        }
    }
    *out = p;
    return CAI_OK;
}

void pool_free(pool *p) {
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++)
        pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->start);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    free(p->threads);
    free(p);
}

int pool_size(const pool *p) { return p->n; }

void pool_run(pool *p, pool_fn fn, void *ctx) {
    if (p->n == 1) {
        fn(ctx, 0, 1);
        return;
    }
    /* The previous run has ended for every worker (pending was 0), so no
     * worker reads fn and ctx while they change. */
    p->fn = fn;
    p->ctx = ctx;
    atomic_store_explicit(&p->pending, p->n - 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    pthread_mutex_lock(&p->mu);
    if (p->sleepers > 0)
        pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    fn(ctx, 0, p->n);
    long t0 = now_ns();
    while (atomic_load_explicit(&p->pending, memory_order_acquire) > 0) {
        CPU_RELAX();
        if (now_ns() - t0 > SPIN_NS) {
            pthread_mutex_lock(&p->mu);
            p->caller_sleeping = 1;
            while (atomic_load(&p->pending) > 0)
                pthread_cond_wait(&p->done, &p->mu);
            p->caller_sleeping = 0;
            pthread_mutex_unlock(&p->mu);
        }
    }
}

/* pool.h - a fixed pool of worker threads with plain (ith, nth) partitioning.
 *
 * pool_run calls fn(ctx, ith, nth) once on each of the pool's nth threads,
 * the calling thread being ith 0, and returns when all calls have returned.
 * Work is divided by the callee from (ith, nth), or with an atomic counter
 * for uneven work. One pool_run at a time per pool. */
#ifndef CAI_COMMON_POOL_H
#define CAI_COMMON_POOL_H

#include "common/status.h"

typedef struct pool pool;

typedef void (*pool_fn)(void *ctx, int ith, int nth);

/* pool_new starts |n_threads| - 1 workers (n_threads >= 1; 0 means one per
 * online CPU). Returns CAI_OK and the pool in |out|, or an error. */
cai_status pool_new(int n_threads, pool **out);

/* pool_free stops and joins the workers. NULL is ok. */
void pool_free(pool *p);

/* pool_size returns the number of threads, the caller included. */
int pool_size(const pool *p);

/* pool_run runs |fn| on every thread of the pool and waits for all. */
void pool_run(pool *p, pool_fn fn, void *ctx);

/* pool_cpu_count returns the number of online CPUs (at least 1). */
int pool_cpu_count(void);

#endif

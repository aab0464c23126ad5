/*
 * pool.h -- a fixed thread pool with one operation, a parallel for over n work items.
 *
 * The forward pass calls rr_pool_run several times per layer (matmuls, attention, layer norms), so
 * the cost of one call matters: workers spin briefly on the job counter after finishing a job and
 * only then sleep on a futex, and the calling thread does work items itself (a pool of n threads
 * starts n - 1 workers).
 *
 * Thread-safety: a pool serves one caller at a time. rr_pool_run must not be called concurrently on
 * the same pool, nor from inside one of its own work items (give each rr_ctx its own pool instead).
 * Different pools are independent.
 */
#ifndef RR_KERNELS_POOL_H
#define RR_KERNELS_POOL_H

#include "rerank.h"

typedef struct rr_pool rr_pool;

/* A work item: `item` in [0, n_items), `tid` in [0, rr_pool_size) names the thread running it, so
 * callers can give each thread its own slice of scratch memory. Items run in no particular order. */
typedef void (*rr_pool_fn)(void *arg, int item, int tid);

/* Creates a pool of n_threads threads in all (the caller counts as one); n_threads <= 0 means the
 * number of online CPUs. Fails with RR_ERR_NOMEM or RR_ERR_IO (thread creation). */
rr_status rr_pool_new(int n_threads, rr_pool **out);
/* Stops and joins the workers. Accepts NULL. */
void rr_pool_free(rr_pool *p);
/* Threads in the pool, caller included (1 for NULL). */
int rr_pool_size(const rr_pool *p);
/* Runs fn(arg, i, tid) for every i in [0, n_items) and returns when all are done. With p == NULL
 * or one thread everything runs inline on the caller (tid 0). Memory written by the items is
 * visible to the caller on return. */
void rr_pool_run(rr_pool *p, int n_items, rr_pool_fn fn, void *arg);
/* Number of online CPUs (at least 1). */
int rr_pool_cpu_count(void);

#endif

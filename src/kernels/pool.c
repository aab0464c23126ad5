/*
 * pool.c -- the thread pool behind every parallel kernel (see pool.h for the contract).
 *
 * One job at a time: the caller publishes (fn, arg, n_items), bumps the generation word and wakes
 * sleepers; every thread, caller included, then takes items from a shared atomic counter until it
 * runs out, so uneven items balance themselves. Workers report completion by decrementing `active`;
 * the last one wakes the caller. Sleeping uses Linux futexes on the generation and active words;
 * the wake is skipped when nobody sleeps, so back-to-back jobs cost a few atomic operations.
 */
#include "kernels/pool.h"

#include "core/core.h"

#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Spin iterations before sleeping: long enough to bridge the gap between the kernels of one layer
 * (tens of microseconds), short enough not to steal a shared core for long. */
#define POOL_SPIN 20000

struct rr_pool {
    int n_threads; /* caller included */
    int spin;      /* POOL_SPIN, or 0 when the pool has more threads than the machine has CPUs
                    * (a spinning thread would then take the CPU from the one it waits for) */
    pthread_t *threads;
    int n_started;

    /* the current job, written by the caller before the generation bump */
    rr_pool_fn fn;
    void *arg;
    int n_items;
    atomic_int next;     /* next item to take */
    atomic_int active;   /* workers still inside the current job */
    atomic_uint gen;     /* futex word: bumped once per job */
    atomic_int sleeping; /* workers waiting on gen */
    atomic_int caller_sleeping;
    atomic_int stop;
};

typedef struct {
    rr_pool *p;
    int tid;
} worker_arg;

static void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void futex_wait(atomic_uint *addr, unsigned val) {
    syscall(SYS_futex, (unsigned *)addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake(atomic_uint *addr, int n) {
    syscall(SYS_futex, (unsigned *)addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

static void run_items(rr_pool *p, int tid) {
    rr_pool_fn fn = p->fn;
    void *arg = p->arg;
    int n = p->n_items;
    for (;;) {
        int i = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
        if (i >= n) break;
        fn(arg, i, tid);
    }
}

static void *worker_main(void *v) {
    worker_arg wa = *(worker_arg *)v;
    rr_free(v);
    rr_pool *p = wa.p;
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen) {
            if (++spins < p->spin) {
                cpu_relax();
                continue;
            }
            atomic_fetch_add(&p->sleeping, 1);
            futex_wait(&p->gen, seen);
            atomic_fetch_sub(&p->sleeping, 1);
            spins = 0;
        }
        seen = g;
        if (atomic_load_explicit(&p->stop, memory_order_acquire)) break;
        run_items(p, wa.tid);
        if (atomic_fetch_sub(&p->active, 1) == 1 && /* seq_cst: pairs with caller_sleeping */
            atomic_load(&p->caller_sleeping))
            futex_wake((atomic_uint *)&p->active, 1);
    }
    return NULL;
}

int rr_pool_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 1024 ? 1024 : (int)n;
}

rr_status rr_pool_new(int n_threads, rr_pool **out) {
    if (n_threads <= 0) n_threads = rr_pool_cpu_count();
    if (n_threads > 1024) return rr_fail(RR_ERR_INVALID, "thread pool: %d threads is too many", n_threads);
    rr_pool *p = rr_calloc(1, sizeof *p);
    if (!p) return rr_fail(RR_ERR_NOMEM, "thread pool: out of memory");
    p->n_threads = n_threads;
    p->spin = n_threads > rr_pool_cpu_count() ? 0 : POOL_SPIN;
    if (n_threads > 1) {
        p->threads = rr_calloc((size_t)n_threads - 1, sizeof *p->threads);
        if (!p->threads) goto nomem;
        for (int i = 0; i < n_threads - 1; i++) {
            worker_arg *wa = rr_malloc(sizeof *wa);
            if (!wa) goto nomem;
            wa->p = p;
            wa->tid = i + 1;
            if (pthread_create(&p->threads[i], NULL, worker_main, wa) != 0) {
                rr_free(wa);
                rr_pool_free(p);
                return rr_fail(RR_ERR_IO, "thread pool: cannot start thread %d of %d", i + 1, n_threads);
            }
            p->n_started++;
        }
    }
    *out = p;
    return RR_OK;
nomem:
    rr_pool_free(p);
    return rr_fail(RR_ERR_NOMEM, "thread pool: out of memory");
}

void rr_pool_free(rr_pool *p) {
    if (!p) return;
    if (p->n_started) {
        atomic_store(&p->stop, 1);
        atomic_fetch_add(&p->gen, 1);
        futex_wake(&p->gen, INT_MAX);
        for (int i = 0; i < p->n_started; i++) pthread_join(p->threads[i], NULL);
    }
    rr_free(p->threads);
    rr_free(p);
}

int rr_pool_size(const rr_pool *p) { return p ? p->n_threads : 1; }

void rr_pool_run(rr_pool *p, int n_items, rr_pool_fn fn, void *arg) {
    if (n_items <= 0) return;
    if (!p || p->n_started == 0 || n_items == 1) {
        for (int i = 0; i < n_items; i++) fn(arg, i, 0);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    p->n_items = n_items;
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    atomic_store_explicit(&p->active, p->n_started, memory_order_relaxed);
    atomic_fetch_add(&p->gen, 1); /* seq_cst: publishes the job before the sleeping check */
    if (atomic_load(&p->sleeping) > 0) futex_wake(&p->gen, INT_MAX);
    run_items(p, 0);
    int spins = 0;
    for (;;) {
        int a = atomic_load_explicit(&p->active, memory_order_acquire);
        if (a == 0) break;
        if (++spins < p->spin) {
            cpu_relax();
            continue;
        }
        atomic_store(&p->caller_sleeping, 1);
        if (atomic_load(&p->active) != 0) futex_wait((atomic_uint *)&p->active, (unsigned)a);
        atomic_store(&p->caller_sleeping, 0);
        spins = 0;
    }
}

/*
 * alloc.c -- the allocator every module uses, with a fault-injection hook for tests.
 *
 * Tests call rr_alloc_fail_after(n) to make the n-th allocation fail, then check that the operation
 * returns RR_ERR_NOMEM and leaks nothing (SQLite's malloc tests). The counters are atomics so the
 * hook also works while the thread pool runs; in production the cost is one relaxed load.
 */
#include "core.h"

#include <cjson/cJSON.h>
#include <stdatomic.h>
#include <stdlib.h>

static atomic_long g_fail_at;  /* 0 = never fail */
static atomic_long g_n_allocs; /* allocations since the last rr_alloc_fail_after */

static bool should_fail(void) {
    long n = atomic_fetch_add_explicit(&g_n_allocs, 1, memory_order_relaxed) + 1;
    long at = atomic_load_explicit(&g_fail_at, memory_order_relaxed);
    return at > 0 && n >= at;
}

long rr_alloc_fail_after(long n) {
    long made = atomic_exchange(&g_n_allocs, 0);
    atomic_store(&g_fail_at, n);
    return made;
}

void *rr_malloc(size_t n) {
    if (should_fail()) return NULL;
    return malloc(n ? n : 1);
}

void *rr_calloc(size_t n, size_t size) {
    if (should_fail()) return NULL;
    return calloc(n ? n : 1, size ? size : 1);
}

void *rr_realloc(void *p, size_t n) {
    if (should_fail()) return NULL;
    return realloc(p, n ? n : 1);
}

void rr_free(void *p) { free(p); }

char *rr_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = rr_malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

void *rr_aligned_alloc(size_t n) {
    if (should_fail()) return NULL;
    void *p = NULL;
    if (posix_memalign(&p, 64, n ? (n + 63) & ~(size_t)63 : 64) != 0) return NULL;
    return p;
}

void rr_aligned_free(void *p) { free(p); }

static _Thread_local bool g_json_oom;

static void *json_malloc(size_t n) {
    void *p = rr_malloc(n);
    if (!p) g_json_oom = true;
    return p;
}

bool rr_json_oom_reset(void) {
    bool was = g_json_oom;
    g_json_oom = false;
    return was;
}

void rr_json_init(void) {
    static atomic_int done;
    if (atomic_exchange(&done, 1)) return;
    cJSON_Hooks hooks = {json_malloc, rr_free};
    cJSON_InitHooks(&hooks);
}

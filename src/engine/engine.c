/*
 * engine.c -- the request queue and cross-request batcher of `rerank serve` (see engine.h).
 *
 * Threading: one mutex guards the job list, every job's private fields and the stats. Workers take
 * the lock only to pick a batch and to scatter its logits; the forward pass runs unlocked. on_done
 * callbacks run with the lock released, so they may resume HTTP connections or free the job.
 *
 * Batch choice (pick_batch): the oldest job with pending windows gets up to half the token budget
 * (so a big request cannot be starved by a stream of small ones), then the rest of the budget goes,
 * window by window, to the job with the fewest pending windows whose next window still fits, the
 * older first on ties: small requests overtake big ones (shortest remaining work first, which keeps
 * the mean latency low), a started request is finished before a new one of the same size is begun,
 * and requests of equal size complete in arrival order (which keeps p99 close to p50 under a steady
 * load; picking the shortest window instead let unlucky requests wait twice the median). Each job
 * keeps its windows in length order, so its next window is its shortest pending one: when that does
 * not fit, none of the job's windows does.
 */
#include "engine/engine.h"

#include "core/core.h"
#include "score/rank.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct slot {
    rr_engine_job *job;
    int seq;
} slot;

typedef struct worker {
    rr_engine *e;
    int index;
    pthread_t thread;
    rr_ctx *ctx;
    slot *slots;    /* the current batch */
    rr_seq *seqs;
    float *logits;
    int cap;
} worker;

struct rr_engine {
    rr_engine_params p;
    const rr_model *model;
    pthread_mutex_t mu;
    pthread_cond_t work;  /* a job arrived, or stopping */
    pthread_cond_t idle;  /* a job completed */
    rr_engine_job *head, *tail;
    int n_jobs;
    int stopping;
    rr_engine_stats stats;
    int n_workers;
    worker *workers;
};

/* ------------------------------------------------------------------ histograms */

void rr_engine_hist_init(rr_engine_hist *h, const double *bounds, int n_bounds) {
    memset(h, 0, sizeof *h);
    h->n_bounds = RR_MIN(n_bounds, RR_ENGINE_HIST_MAX);
    for (int i = 0; i < h->n_bounds; i++) h->bounds[i] = bounds[i];
}

void rr_engine_hist_add(rr_engine_hist *h, double v) {
    int i = 0;
    while (i < h->n_bounds && v > h->bounds[i]) i++;
    h->counts[i]++;
    h->sum += v;
    h->count++;
}

/* ------------------------------------------------------------------ job list (lock held) */

static void list_remove(rr_engine *e, rr_engine_job *j) {
    if (j->prev) j->prev->next = j->next;
    else e->head = j->next;
    if (j->next) j->next->prev = j->prev;
    else e->tail = j->prev;
    j->prev = j->next = NULL;
    e->n_jobs--;
}

static int job_order(const rr_engine_job *j, int k) { return j->order[k]; }

/* Moves a finished job from the list to *done (a singly linked list through ->next). */
static void maybe_complete(rr_engine *e, rr_engine_job *j, rr_engine_job **done) {
    if (j->completed || j->next_seq < j->n_seqs || j->n_inflight > 0) return;
    j->completed = 1;
    if (j->status == RR_OK) e->stats.jobs_done++;
    else if (j->status == RR_ERR_CANCELLED) e->stats.jobs_cancelled++;
    else e->stats.jobs_failed++;
    list_remove(e, j);
    j->next = *done;
    *done = j;
    pthread_cond_broadcast(&e->idle);
}

static void drop_pending(rr_engine *e, rr_engine_job *j) {
    e->stats.windows_pending -= j->n_seqs - j->next_seq;
    j->next_seq = j->n_seqs;
}

static void run_done(rr_engine_job *done) {
    while (done) {
        rr_engine_job *n = done->next;
        done->next = NULL;
        rr_free(done->order);
        done->order = NULL;
        done->on_done(done, done->ud);
        done = n;
    }
}

/* ------------------------------------------------------------------ batching (lock held) */

static int take(worker *w, int *n, int *tokens, rr_engine_job *j, double now) {
    int s = job_order(j, j->next_seq);
    if (j->next_seq == 0) j->queue_seconds = now - j->t_submit;
    j->next_seq++;
    j->n_inflight++;
    w->e->stats.windows_pending--;
    w->slots[*n].job = j;
    w->slots[*n].seq = s;
    w->seqs[*n] = j->seqs[s];
    (*n)++;
    *tokens += j->seqs[s].len;
    return s;
}

static rr_status grow(worker *w, int need) {
    if (need <= w->cap) return RR_OK;
    int cap = RR_MAX(need, w->cap * 2);
    slot *sl = rr_realloc(w->slots, (size_t)cap * sizeof *sl);
    if (sl) w->slots = sl;
    rr_seq *sq = rr_realloc(w->seqs, (size_t)cap * sizeof *sq);
    if (sq) w->seqs = sq;
    float *lg = rr_realloc(w->logits, (size_t)cap * sizeof *lg);
    if (lg) w->logits = lg;
    if (!sl || !sq || !lg) return RR_ERR_NOMEM;
    w->cap = cap;
    return RR_OK;
}

/* Fills w's batch; returns its size (0: nothing to do). Cancelled jobs found on the way go to *done. */
static int pick_batch(worker *w, rr_engine_job **done) {
    rr_engine *e = w->e;
    const int budget = e->p.max_batch_tokens;
    double now = rr_now();
    int n = 0, tokens = 0;

    rr_engine_job *oldest = NULL;
    for (rr_engine_job *j = e->head, *nx; j; j = nx) {
        nx = j->next;
        if (j->next_seq >= j->n_seqs) continue;
        if (!j->cancelled && j->is_cancelled && j->is_cancelled(j->ud)) {
            j->cancelled = 1;
            j->status = RR_ERR_CANCELLED;
        }
        if (j->cancelled) {
            drop_pending(e, j);
            maybe_complete(e, j, done);
            continue;
        }
        if (!oldest) oldest = j;
    }
    if (!oldest) return 0;

    /* windows never exceed the model's max_length, so at most budget windows of >= 1 token fit,
     * plus the one oversize window taken when the budget is smaller than a window */
    if (grow(w, budget + 1) != RR_OK) {
        /* cannot batch at all: fail the oldest job rather than spin */
        oldest->status = RR_ERR_NOMEM;
        snprintf(oldest->errmsg, sizeof oldest->errmsg, "out of memory building a batch");
        drop_pending(e, oldest);
        maybe_complete(e, oldest, done);
        return 0;
    }

    /* the oldest job: up to half the budget, at least one window */
    take(w, &n, &tokens, oldest, now);
    while (oldest->next_seq < oldest->n_seqs &&
           tokens + oldest->seqs[job_order(oldest, oldest->next_seq)].len <= budget / 2)
        take(w, &n, &tokens, oldest, now);

    /* then, one window at a time, the job with the fewest pending windows that still fits (the
     * list runs oldest first, so the strict < keeps the older job on ties) */
    for (;;) {
        rr_engine_job *best = NULL;
        int best_left = 0;
        for (rr_engine_job *j = e->head; j; j = j->next) {
            if (j->cancelled || j->next_seq >= j->n_seqs) continue;
            if (tokens + j->seqs[job_order(j, j->next_seq)].len > budget) continue;
            int left = j->n_seqs - j->next_seq;
            if (!best || left < best_left) best = j, best_left = left;
        }
        if (!best) break;
        take(w, &n, &tokens, best, now);
    }
    return n;
}

/* ------------------------------------------------------------------ workers */

static void *worker_main(void *arg) {
    worker *w = arg;
    rr_engine *e = w->e;
    pthread_mutex_lock(&e->mu);
    for (;;) {
        rr_engine_job *done = NULL;
        int n = pick_batch(w, &done);
        if (n == 0) {
            if (done) {
                pthread_mutex_unlock(&e->mu);
                run_done(done);
                pthread_mutex_lock(&e->mu);
                continue;
            }
            if (e->stopping && e->n_jobs == 0) break;
            pthread_cond_wait(&e->work, &e->mu);
            continue;
        }
        pthread_mutex_unlock(&e->mu);
        run_done(done); /* jobs found cancelled while picking */
        done = NULL;

        long tokens = 0;
        for (int i = 0; i < n; i++) tokens += w->seqs[i].len;
        double t0 = rr_now();
        rr_status st = e->p.score ? e->p.score(e->p.score_ud, w->index, w->seqs, n, w->logits)
                                  : rr_score_ids(w->ctx, w->seqs, n, w->logits);
        double dt = rr_now() - t0;
        char msg[256] = "";
        if (st != RR_OK) snprintf(msg, sizeof msg, "%s", rr_errmsg());

        pthread_mutex_lock(&e->mu);
        int n_jobs = 0;
        for (int i = 0; i < n; i++) {
            rr_engine_job *j = w->slots[i].job;
            j->n_inflight--;
            if (st == RR_OK) {
                j->logits[w->slots[i].seq] = w->logits[i];
                j->n_done++;
            } else if (j->status == RR_OK) {
                j->status = st;
                snprintf(j->errmsg, sizeof j->errmsg, "%s", msg);
                drop_pending(e, j);
            }
            /* count distinct jobs: slots of one job are contiguous only for the oldest, so mark */
            if (!(j->mark)) j->mark = 1, n_jobs++;
        }
        for (int i = 0; i < n; i++) {
            rr_engine_job *j = w->slots[i].job;
            j->mark = 0;
        }
        for (int i = 0; i < n; i++) maybe_complete(e, w->slots[i].job, &done);
        e->stats.batches++;
        e->stats.windows_scored += (uint64_t)n;
        e->stats.tokens_scored += (uint64_t)tokens;
        rr_engine_hist_add(&e->stats.batch_tokens, (double)tokens);
        rr_engine_hist_add(&e->stats.batch_seqs, (double)n);
        rr_engine_hist_add(&e->stats.batch_jobs, (double)n_jobs);
        rr_engine_hist_add(&e->stats.batch_seconds, dt);
        if (done) {
            pthread_mutex_unlock(&e->mu);
            run_done(done);
            pthread_mutex_lock(&e->mu);
        }
    }
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

/* ------------------------------------------------------------------ public API */

rr_engine_params rr_engine_default_params(void) {
    rr_engine_params p = {0};
    p.n_workers = 1;
    p.max_batch_tokens = 8192;
    p.queue_depth = 128;
    return p;
}

const rr_engine_params *rr_engine_params_of(const rr_engine *e) { return &e->p; }

static void engine_release(rr_engine *e) {
    for (int i = 0; i < e->n_workers; i++) {
        rr_ctx_free(e->workers[i].ctx);
        rr_free(e->workers[i].slots);
        rr_free(e->workers[i].seqs);
        rr_free(e->workers[i].logits);
    }
    rr_free(e->workers);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->work);
    pthread_cond_destroy(&e->idle);
    rr_free(e);
}

rr_status rr_engine_new(const rr_model *m, const rr_engine_params *params, rr_engine **out) {
    rr_engine_params p = params ? *params : rr_engine_default_params();
    if (p.n_workers <= 0) p.n_workers = 1;
    if (p.max_batch_tokens <= 0) p.max_batch_tokens = 8192;
    if (p.queue_depth <= 0) p.queue_depth = 128;
    if (!m && !p.score) return rr_fail(RR_ERR_INVALID, "engine: no model and no score function");
    if (p.n_workers > 256) return rr_fail(RR_ERR_INVALID, "engine: %d workers is too many (most 256)", p.n_workers);

    rr_engine *e = rr_calloc(1, sizeof *e);
    if (!e) return rr_fail(RR_ERR_NOMEM, "engine: out of memory");
    e->p = p;
    e->model = m;
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->work, NULL);
    pthread_cond_init(&e->idle, NULL);
    static const double tok_b[] = {256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536};
    static const double seq_b[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};
    static const double job_b[] = {1, 2, 3, 4, 6, 8, 12, 16, 32, 64};
    static const double sec_b[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
    rr_engine_hist_init(&e->stats.batch_tokens, tok_b, (int)RR_ARRAY_LEN(tok_b));
    rr_engine_hist_init(&e->stats.batch_seqs, seq_b, (int)RR_ARRAY_LEN(seq_b));
    rr_engine_hist_init(&e->stats.batch_jobs, job_b, (int)RR_ARRAY_LEN(job_b));
    rr_engine_hist_init(&e->stats.batch_seconds, sec_b, (int)RR_ARRAY_LEN(sec_b));

    e->workers = rr_calloc((size_t)p.n_workers, sizeof *e->workers);
    if (!e->workers) {
        engine_release(e);
        return rr_fail(RR_ERR_NOMEM, "engine: out of memory");
    }
    e->n_workers = p.n_workers;
    for (int i = 0; i < p.n_workers; i++) {
        worker *w = &e->workers[i];
        w->e = e;
        w->index = i;
        if (!p.score) {
            rr_ctx_params cp = rr_ctx_default_params();
            cp.max_batch_tokens = p.max_batch_tokens;
            rr_status st = rr_ctx_new(m, &cp, &w->ctx);
            if (st != RR_OK) {
                rr_errmsg_prefix("engine worker %d", i);
                engine_release(e);
                return st;
            }
        }
    }
    int started = 0;
    for (; started < p.n_workers; started++)
        if (pthread_create(&e->workers[started].thread, NULL, worker_main, &e->workers[started])) break;
    if (started < p.n_workers) {
        pthread_mutex_lock(&e->mu);
        e->stopping = 1;
        pthread_cond_broadcast(&e->work);
        pthread_mutex_unlock(&e->mu);
        for (int i = 0; i < started; i++) pthread_join(e->workers[i].thread, NULL);
        engine_release(e);
        return rr_fail(RR_ERR_NOMEM, "engine: cannot start worker threads");
    }
    *out = e;
    return RR_OK;
}

rr_status rr_engine_submit(rr_engine *e, rr_engine_job *j) {
    j->status = RR_OK;
    j->errmsg[0] = 0;
    j->queue_seconds = 0;
    j->next_seq = j->n_inflight = j->n_done = j->cancelled = 0;
    j->completed = j->mark = 0;
    j->prev = j->next = NULL;
    j->t_submit = rr_now();
    if (j->n_seqs < 0 || (j->n_seqs > 0 && (!j->seqs || !j->logits)) || !j->on_done)
        return rr_fail(RR_ERR_INVALID, "engine: malformed job");
    if (j->n_seqs == 0) {
        j->completed = 1;
        j->on_done(j, j->ud);
        return RR_OK;
    }
    int *order = rr_malloc((size_t)j->n_seqs * sizeof *order);
    if (!order || rr_seq_order_by_len(j->seqs, j->n_seqs, order)) {
        rr_free(order);
        return rr_fail(RR_ERR_NOMEM, "engine: out of memory queueing %d windows", j->n_seqs);
    }

    pthread_mutex_lock(&e->mu);
    rr_status rc = RR_OK;
    if (e->stopping) rc = rr_fail(RR_ERR_INVALID, "engine: shutting down");
    else if (e->n_jobs >= e->p.queue_depth) {
        e->stats.jobs_refused++;
        rc = rr_fail(RR_ERR_RANGE, "the server is busy: %d requests are queued (limit %d)", e->n_jobs,
                     e->p.queue_depth);
    }
    if (rc != RR_OK) {
        pthread_mutex_unlock(&e->mu);
        rr_free(order);
        return rc;
    }
    j->order = order;
    j->prev = e->tail;
    if (e->tail) e->tail->next = j;
    else e->head = j;
    e->tail = j;
    e->n_jobs++;
    e->stats.windows_pending += j->n_seqs;
    pthread_cond_signal(&e->work);
    pthread_mutex_unlock(&e->mu);
    return RR_OK;
}

void rr_engine_cancel(rr_engine *e, rr_engine_job *j) {
    rr_engine_job *done = NULL;
    pthread_mutex_lock(&e->mu);
    if (!j->completed && !j->cancelled) {
        j->cancelled = 1;
        if (j->status == RR_OK) j->status = RR_ERR_CANCELLED;
        drop_pending(e, j);
        maybe_complete(e, j, &done);
    }
    pthread_mutex_unlock(&e->mu);
    run_done(done);
}

void rr_engine_get_stats(rr_engine *e, rr_engine_stats *out) {
    pthread_mutex_lock(&e->mu);
    *out = e->stats;
    out->jobs_queued = e->n_jobs;
    pthread_mutex_unlock(&e->mu);
}

int rr_engine_queued(rr_engine *e) {
    pthread_mutex_lock(&e->mu);
    int n = e->n_jobs;
    pthread_mutex_unlock(&e->mu);
    return n;
}

void rr_engine_free(rr_engine *e) {
    if (!e) return;
    pthread_mutex_lock(&e->mu);
    e->stopping = 1;
    pthread_cond_broadcast(&e->work);
    while (e->n_jobs > 0) pthread_cond_wait(&e->idle, &e->mu);
    pthread_cond_broadcast(&e->work);
    pthread_mutex_unlock(&e->mu);
    for (int i = 0; i < e->n_workers; i++) pthread_join(e->workers[i].thread, NULL);
    engine_release(e);
}

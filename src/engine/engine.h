/*
 * engine.h -- the scoring engine behind `rerank serve`: a request queue and a cross-request batcher.
 *
 * The HTTP edge threads tokenize and window each request (rr_rank_plan_build), then hand the engine
 * a typed job: an array of window sequences and a logits array to fill. Worker threads (one by
 * default; the forward pass is itself multithreaded by the kernels) each own one rr_ctx and loop:
 *
 *     pending windows of all queued jobs --(oldest job first, then fewest pending windows)--> one batch of
 *     at most max_batch_tokens tokens --rr_score_ids--> logits scattered back into each job
 *
 * A job completes when every one of its windows is scored, when it is cancelled (its client went
 * away: pending windows are dropped) or when scoring fails; its `on_done` callback then runs exactly
 * once, on a worker thread (or on the submitting/cancelling thread for a job that had nothing in
 * flight), outside the engine lock. The engine never sees JSON or sockets.
 *
 * Ownership: the job struct, its seqs and logits belong to the caller and must stay valid until
 * on_done has run. rr_engine_free waits for every job to complete.
 */
#ifndef RR_ENGINE_H
#define RR_ENGINE_H

#include "rerank_server.h"

#include <stdint.h>


/* Latency and size histograms: fixed upper bounds, counts are not cumulative (the exporter sums). */
#define RR_ENGINE_HIST_MAX 16
typedef struct rr_engine_hist {
    int n_bounds;
    double bounds[RR_ENGINE_HIST_MAX]; /* bucket i counts values <= bounds[i]; one extra bucket +Inf */
    uint64_t counts[RR_ENGINE_HIST_MAX + 1];
    double sum;
    uint64_t count;
} rr_engine_hist;

void rr_engine_hist_init(rr_engine_hist *h, const double *bounds, int n_bounds);
void rr_engine_hist_add(rr_engine_hist *h, double v);

typedef struct rr_engine_stats {
    int jobs_queued;        /* jobs submitted and not yet completed */
    long windows_pending;   /* windows not yet handed to a worker */
    uint64_t jobs_done, jobs_cancelled, jobs_failed, jobs_refused;
    uint64_t batches, windows_scored, tokens_scored;
    rr_engine_hist batch_tokens;  /* tokens per batch */
    rr_engine_hist batch_seqs;    /* windows per batch */
    rr_engine_hist batch_jobs;    /* distinct jobs per batch (cross-request batching at work) */
    rr_engine_hist batch_seconds; /* forward time per batch */
} rr_engine_stats;

typedef struct rr_engine rr_engine;
typedef struct rr_engine_job rr_engine_job;

/* A scoring job. The caller fills the public fields, then submits; the engine owns the private
 * ones until on_done. */
struct rr_engine_job {
    uint64_t id;            /* caller's id, for logs */
    const rr_seq *seqs;     /* n_seqs windows, owned by the caller */
    int n_seqs;
    float *logits;          /* n_seqs outputs, owned by the caller */
    /* Polled (under the engine lock, so it must be quick and must not call the engine) before the
     * job's windows are batched; nonzero cancels the job. May be NULL. */
    int (*is_cancelled)(void *ud);
    void (*on_done)(rr_engine_job *job, void *ud); /* required; see the file comment */
    void *ud;

    /* results, valid in on_done */
    rr_status status;       /* RR_OK, RR_ERR_CANCELLED or the scoring error */
    char errmsg[256];       /* the scoring error's message */
    double queue_seconds;   /* submit to first window scheduled */

    /* private */
    int next_seq;           /* windows [0, next_seq) handed to workers (or dropped) */
    int n_inflight, n_done;
    int cancelled, completed, mark;
    int *order;             /* window indices, shortest first */
    double t_submit;
    rr_engine_job *prev, *next;
};



/* Starts the workers. `m` may be NULL only when params->score is set. */
rr_status rr_engine_new(const rr_model *m, const rr_engine_params *params, rr_engine **out);

/* Queues a job. RR_ERR_RANGE (with a message) when queue_depth jobs are already queued, RR_ERR_INVALID
 * after rr_engine_free began. A job with n_seqs == 0 completes at once (on_done runs before this
 * returns). On failure on_done is not called. */
rr_status rr_engine_submit(rr_engine *e, rr_engine_job *job);

/* Asks for a job to be dropped: windows not yet scheduled are discarded; on_done runs when the
 * windows already running finish (or now, if none). Harmless on a completed job only while the
 * caller still owns it (i.e. before it is freed). */
void rr_engine_cancel(rr_engine *e, rr_engine_job *job);

void rr_engine_get_stats(rr_engine *e, rr_engine_stats *out);
/* Jobs queued or running now (a hint: rr_engine_submit makes the authoritative check). */
int rr_engine_queued(rr_engine *e);
const rr_engine_params *rr_engine_params_of(const rr_engine *e);

/* Waits for queued jobs to complete, stops the workers and frees the engine. NULL is fine. */
void rr_engine_free(rr_engine *e);

#endif /* RR_ENGINE_H */

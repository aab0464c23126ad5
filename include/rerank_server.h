/*
 * rerank_server.h -- `rerank serve` as a library (librerank_server, which links libmicrohttpd): a
 * Jina / Cohere / TEI compatible HTTP reranking server over a cross-request batching engine.
 *
 * Threads and their rules (see docs/ARCHITECTURE.md, "Server"):
 *   - libmicrohttpd's thread pool (http_threads) reads requests, checks auth and limits, parses JSON,
 *     tokenizes and windows (rr_rank_plan_build), submits an rr_engine_job, and suspends the
 *     connection; when the job completes it is resumed on the pool, which ranks the window logits
 *     (rr_rank_plan_finish) and writes the JSON answer.
 *   - the engine's worker(s) run the forward passes, batching windows across requests.
 * A suspended connection whose client hangs up is noticed by the batcher (poll POLLRDHUP on its
 * socket) and its pending windows are dropped.
 */
#ifndef RERANK_SERVER_H
#define RERANK_SERVER_H

#include "rerank.h"

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ engine parameters */

/* Scores n sequences into logits[0..n) on worker `worker`; returns rr_status. Used by tests to run
 * the engine without a model; NULL means rr_score_ids on the worker's own rr_ctx. */
typedef rr_status (*rr_engine_score_fn)(void *ud, int worker, const rr_seq *seqs, int n, float *logits);

typedef struct rr_engine_params {
    int n_workers;          /* worker threads, each with its own rr_ctx; default 1 */
    int max_batch_tokens;   /* token budget of one batch across requests; default 8192 */
    int queue_depth;        /* most jobs waiting or running; more are refused (RR_ERR_RANGE); default 128 */
    rr_engine_score_fn score; /* NULL: the model */
    void *score_ud;
} rr_engine_params;

RR_API rr_engine_params rr_engine_default_params(void);

/* ------------------------------------------------------------------ server */

typedef struct rr_srv_params {
    const char *host;           /* default "127.0.0.1" */
    int port;                   /* default 8080; 0 picks a free port (see rr_srv_port) */
    const char *api_key;        /* NULL: any (or no) bearer token is accepted; "" is refused */
    const char *model_name;     /* reported in answers and /info; default: the model's name */
    int http_threads;           /* libmicrohttpd pool; default 4 */
    int max_docs;               /* documents per request; default 1000 */
    size_t max_request_bytes;   /* body size; default 2,000,000 */
    long max_request_tokens;    /* tokens after windowing; default 1,048,576 */
    rr_rank_params rank;        /* windowing (max_length, max_query_length, overlap) */
    rr_engine_params engine;    /* workers, batch token budget, queue depth */
    bool access_log;            /* one line per request on stderr; default true */

    /* The connection edge (docs/ARCHITECTURE.md, "Hostile clients"). Deadlines are absolute, so a
     * client trickling one byte at a time cannot stretch them; 0 turns one off. */
    double header_timeout_s;    /* connect (or end of the previous answer) to end of headers; default 10 */
    double body_timeout_s;      /* end of headers to end of body; default 30 */
    double idle_timeout_s;      /* keep-alive connection with no request, and any stall while
                                 * sending an answer; default 60 */
    int max_connections;        /* open connections in all; default 4096 */
    int max_conns_per_ip;       /* open connections from one address; default 256 (0: no limit) */
    size_t max_buffered_bytes;  /* request bodies held at once, all connections; past it a 503 +
                                 * Retry-After; default 256,000,000 */
} rr_srv_params;

typedef struct rr_srv rr_srv;

RR_API rr_srv_params rr_srv_default_params(void);

/* Binds and starts serving `m` (which must outlive the server). */
RR_API rr_status rr_srv_start(const rr_model *m, const rr_srv_params *p, rr_srv **out);
/* The port actually bound. */
RR_API int rr_srv_port(const rr_srv *s);
/* Stops accepting connections, answers every request already received (new requests on open
 * connections still get answered, with Connection: close), waits up to timeout_s for the engine to
 * finish, then stops. A connection that has not sent a whole request (a stuck or half-sent one) is
 * not waited for: it is closed. Returns 0 if everything in flight was answered. */
RR_API int rr_srv_drain(rr_srv *s, double timeout_s);
/* Stops (draining first if rr_srv_drain was not called) and frees. NULL is fine. */
RR_API void rr_srv_free(rr_srv *s);

#ifdef __cplusplus
}
#endif

#endif /* RERANK_SERVER_H */

/*
 * server.h -- `rerank serve`: a Jina / Cohere / TEI compatible HTTP reranking server over the engine.
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
#ifndef RR_SRV_SERVER_H
#define RR_SRV_SERVER_H

#include "engine/engine.h"
#include "rerank.h"

#include <stddef.h>

typedef struct rr_srv_params {
    const char *host;           /* default "127.0.0.1" */
    int port;                   /* default 8080; 0 picks a free port (see rr_srv_port) */
    const char *api_key;        /* NULL/"": any (or no) bearer token is accepted */
    const char *model_name;     /* reported in answers and /info; default: the model's name */
    int http_threads;           /* libmicrohttpd pool; default 4 */
    int max_docs;               /* documents per request; default 1000 */
    size_t max_request_bytes;   /* body size; default 2,000,000 */
    long max_request_tokens;    /* tokens after windowing; default 1,048,576 */
    rr_rank_params rank;        /* windowing (max_length, max_query_length, overlap) */
    rr_engine_params engine;    /* workers, batch token budget, queue depth */
    int access_log;             /* one line per request on stderr; default 1 */
    int log_json;               /* access log as one JSON object per line (deploy.h) */
} rr_srv_params;

typedef struct rr_srv rr_srv;

rr_srv_params rr_srv_default_params(void);

/* Binds and starts serving `m` (which must outlive the server). With m == NULL the server binds
 * and answers /health (200), /ready (503), /metrics, /openapi.json and /docs, and every route that
 * needs the model with 503 + Retry-After, until rr_srv_set_model: a startup probe sees the process
 * while a large model loads. */
rr_status rr_srv_start(const rr_model *m, const rr_srv_params *p, rr_srv **out);
/* Gives a server started without a model its model (once); /ready turns 200. */
rr_status rr_srv_set_model(rr_srv *s, const rr_model *m);
/* The port actually bound. */
int rr_srv_port(const rr_srv *s);
/* Stops accepting connections, answers every request already received (new requests on open
 * connections still get answered, with Connection: close), waits up to timeout_s for the engine to
 * finish, then stops. Returns 0 if everything in flight was answered. */
int rr_srv_drain(rr_srv *s, double timeout_s);
/* Stops (draining first if rr_srv_drain was not called) and frees. NULL is fine. */
void rr_srv_free(rr_srv *s);

#endif /* RR_SRV_SERVER_H */

/*
 * metrics.h -- the server's counters and their Prometheus text exposition (GET /metrics).
 *
 * Request counters are kept per route and status code; the engine's batch statistics are read from
 * rr_engine_get_stats when the page is rendered. All updates take one mutex: they happen once per
 * request, far from the forward pass.
 */
#ifndef RR_SRV_METRICS_H
#define RR_SRV_METRICS_H

#include "engine/engine.h"
#include "core/core.h"

#include <pthread.h>

enum { RR_SRV_ROUTE_MAX = 12, RR_SRV_CODE_MAX = 16 };

typedef struct rr_srv_metrics {
    pthread_mutex_t mu;
    const char *routes[RR_SRV_ROUTE_MAX]; /* static names, index = route id */
    int n_routes;
    int codes[RR_SRV_CODE_MAX];           /* status codes seen so far */
    int n_codes;
    uint64_t requests[RR_SRV_ROUTE_MAX][RR_SRV_CODE_MAX];
    uint64_t documents, tokens;
    int in_flight;                        /* rerank requests parsed and not yet answered */
    rr_engine_hist latency;               /* seconds, whole request (rerank routes) */
    rr_engine_hist queue;                 /* seconds from submit to first window scheduled */
    rr_engine_hist request_tokens;        /* tokens per rerank request */
} rr_srv_metrics;

void rr_srv_metrics_init(rr_srv_metrics *m, const char *const *routes, int n_routes);
void rr_srv_metrics_destroy(rr_srv_metrics *m);
/* One finished request. latency < 0: not a rerank request (no histogram sample). */
void rr_srv_metrics_request(rr_srv_metrics *m, int route, int status, double latency, double queue_s,
                            int n_docs, long tokens);
void rr_srv_metrics_inflight(rr_srv_metrics *m, int delta);
/* Renders the whole page; `e` may be NULL. */
void rr_srv_metrics_render(rr_srv_metrics *m, rr_engine *e, rr_buf *b);

#endif /* RR_SRV_METRICS_H */

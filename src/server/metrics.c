/*
 * metrics.c -- Prometheus text format for the server's counters (metrics.h). Histograms are stored
 * as per-bucket counts and exposed cumulatively, as the format requires.
 */
#include "server/metrics.h"

void rr_srv_metrics_init(rr_srv_metrics *m, const char *const *routes, int n_routes) {
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    m->n_routes = RR_MIN(n_routes, RR_SRV_ROUTE_MAX);
    for (int i = 0; i < m->n_routes; i++) m->routes[i] = routes[i];
    static const double lat_b[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
    static const double tok_b[] = {64, 256, 1024, 4096, 16384, 65536, 262144, 1048576};
    rr_engine_hist_init(&m->latency, lat_b, (int)RR_ARRAY_LEN(lat_b));
    rr_engine_hist_init(&m->queue, lat_b, (int)RR_ARRAY_LEN(lat_b));
    rr_engine_hist_init(&m->request_tokens, tok_b, (int)RR_ARRAY_LEN(tok_b));
}

void rr_srv_metrics_destroy(rr_srv_metrics *m) { pthread_mutex_destroy(&m->mu); }

void rr_srv_metrics_request(rr_srv_metrics *m, int route, int status, double latency, double queue_s,
                            int n_docs, long tokens) {
    pthread_mutex_lock(&m->mu);
    int c = 0;
    while (c < m->n_codes && m->codes[c] != status) c++;
    if (c == m->n_codes && m->n_codes < RR_SRV_CODE_MAX) m->codes[m->n_codes++] = status;
    if (c < m->n_codes && route >= 0 && route < m->n_routes) m->requests[route][c]++;
    if (latency >= 0) {
        rr_engine_hist_add(&m->latency, latency);
        if (status == 200) {
            rr_engine_hist_add(&m->queue, queue_s);
            rr_engine_hist_add(&m->request_tokens, (double)tokens);
            m->documents += (uint64_t)(n_docs > 0 ? n_docs : 0);
            m->tokens += (uint64_t)(tokens > 0 ? tokens : 0);
        }
    }
    pthread_mutex_unlock(&m->mu);
}

void rr_srv_metrics_inflight(rr_srv_metrics *m, int delta) {
    pthread_mutex_lock(&m->mu);
    m->in_flight += delta;
    pthread_mutex_unlock(&m->mu);
}

static void hist(rr_buf *b, const char *name, const char *help, const rr_engine_hist *h) {
    rr_buf_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (int i = 0; i < h->n_bounds; i++) {
        cum += h->counts[i];
        rr_buf_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, h->bounds[i], (unsigned long long)cum);
    }
    cum += h->counts[h->n_bounds];
    rr_buf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.9g\n%s_count %llu\n", name, (unsigned long long)cum,
                  name, h->sum, name, (unsigned long long)h->count);
}

static void counter(rr_buf *b, const char *name, const char *type, const char *help, double v) {
    rr_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, v);
}

void rr_srv_metrics_render(rr_srv_metrics *m, rr_engine *e, rr_buf *b) {
    pthread_mutex_lock(&m->mu);
    rr_buf_puts(b, "# HELP rerank_requests_total HTTP requests answered, by route and status code.\n"
                   "# TYPE rerank_requests_total counter\n");
    for (int r = 0; r < m->n_routes; r++)
        for (int c = 0; c < m->n_codes; c++)
            if (m->requests[r][c])
                rr_buf_printf(b, "rerank_requests_total{route=\"%s\",code=\"%d\"} %llu\n", m->routes[r], m->codes[c],
                              (unsigned long long)m->requests[r][c]);
    rr_buf_puts(b, "# HELP rerank_request_errors_total HTTP requests answered with a 4xx or 5xx status, by code.\n"
                   "# TYPE rerank_request_errors_total counter\n");
    for (int c = 0; c < m->n_codes; c++) {
        if (m->codes[c] < 400) continue;
        uint64_t n = 0;
        for (int r = 0; r < m->n_routes; r++) n += m->requests[r][c];
        rr_buf_printf(b, "rerank_request_errors_total{code=\"%d\"} %llu\n", m->codes[c], (unsigned long long)n);
    }
    counter(b, "rerank_documents_total", "counter", "Documents ranked.", (double)m->documents);
    counter(b, "rerank_tokens_total", "counter", "Tokens fed to the model by answered requests (usage.total_tokens).",
            (double)m->tokens);
    counter(b, "rerank_requests_in_flight", "gauge", "Rerank requests parsed and not yet answered.", m->in_flight);
    hist(b, "rerank_request_duration_seconds", "Rerank request latency, body received to answer ready.", &m->latency);
    hist(b, "rerank_queue_duration_seconds", "Time a request waited for its first window to be scheduled.", &m->queue);
    hist(b, "rerank_request_tokens", "Tokens per answered rerank request (windows included).", &m->request_tokens);
    pthread_mutex_unlock(&m->mu);
    if (!e) return;
    rr_engine_stats s;
    rr_engine_get_stats(e, &s);
    counter(b, "rerank_queue_depth", "gauge", "Requests queued or running in the engine.", s.jobs_queued);
    counter(b, "rerank_queue_windows", "gauge", "Windows waiting for a batch.", (double)s.windows_pending);
    counter(b, "rerank_queue_refused_total", "counter", "Requests refused because the queue was full (429).",
            (double)s.jobs_refused);
    counter(b, "rerank_cancelled_total", "counter", "Requests dropped because the client went away.",
            (double)s.jobs_cancelled);
    counter(b, "rerank_batches_total", "counter", "Forward passes (batches) run.", (double)s.batches);
    counter(b, "rerank_windows_total", "counter", "Windows (query, document part) scored.", (double)s.windows_scored);
    counter(b, "rerank_batch_tokens_total", "counter", "Tokens scored in batches.", (double)s.tokens_scored);
    hist(b, "rerank_batch_tokens", "Tokens per batch.", &s.batch_tokens);
    hist(b, "rerank_batch_sequences", "Windows per batch.", &s.batch_seqs);
    hist(b, "rerank_batch_requests", "Distinct requests sharing one batch.", &s.batch_jobs);
    hist(b, "rerank_batch_duration_seconds", "Forward time per batch.", &s.batch_seconds);
}

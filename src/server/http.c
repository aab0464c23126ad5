/*
 * http.c -- the HTTP edge of `rerank serve` on libmicrohttpd (server.h): routing, auth, body limits,
 * access log, health/info/metrics, and the life of one rerank request:
 *
 *   READING --body complete--> parse + validate (request.c) --> plan (tokenize, window)
 *           --> submit to the engine --> SUSPENDED --on_done (worker thread)--> resumed
 *           --> rank the window logits --> answer --> completed callback: log, metrics, free
 *
 * Any error before the engine is answered at once with a JSON error body (request.c); a request the
 * engine refuses because its queue is full gets 429 + Retry-After. Bodies over the size limit are
 * read and discarded so the client sees the 413 instead of a broken pipe (up to a hard cap, after
 * which the connection is closed); a client that sent "Expect: 100-continue" gets the error at once
 * instead of "100 Continue".
 *
 * Hostile clients (docs/ARCHITECTURE.md): libmicrohttpd runs in poll mode (its epoll mode leaves
 * half-sent connections in CLOSE-WAIT), with a per-address connection limit. Every connection has
 * an absolute deadline kept here (headers, then body, then keep-alive idle), enforced by a reaper
 * thread that shuts the socket down, so trickling bytes cannot keep a connection. Request bodies
 * held at once are capped in all (max_buffered_bytes). Conflicting framing (two Content-Lengths,
 * Content-Length with Transfer-Encoding) and repeated Authorization headers are refused with 400
 * and the connection closed.
 */
#define _GNU_SOURCE /* POLLRDHUP */
#include "rerank_server.h"

#include "core/core.h"
#include "score/rank.h"
#include "server/deploy.h"
#include "server/metrics.h"
#include "server/request.h"

#include <arpa/inet.h>
#include <math.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum route {
    ROUTE_V1,      /* /v1/rerank, /v1/reranking, /reranking */
    ROUTE_V2,      /* /v2/rerank */
    ROUTE_RERANK,  /* /rerank: TEI or Jina by body */
    ROUTE_HEALTH,
    ROUTE_INFO,
    ROUTE_METRICS,
    ROUTE_MODELS,
    ROUTE_READY,   /* readiness: 503 while the model loads or the server drains */
    ROUTE_OPENAPI,
    ROUTE_DOCS,
    ROUTE_NOT_FOUND,
    ROUTE_COUNT
};
static const char *const g_route_names[ROUTE_COUNT] = {"/v1/rerank", "/v2/rerank", "/rerank", "/health",
                                                       "/info", "/metrics", "/v1/models", "/ready",
                                                       "/openapi.json", "/docs", "other"};

struct rr_srv {
    rr_srv_params p;
    atomic_int ready;       /* set (release) once model, info, rank and engine below are filled */
    const rr_model *model;
    rr_model_info info;
    rr_rank_params rank;    /* p.rank resolved for the model (rr_rank_resolve_params) */
    char model_name[256];
    rr_engine *engine;
    struct MHD_Daemon *mhd;
    int port;
    rr_srv_metrics metrics;
    atomic_uint_fast64_t next_id;
    pthread_mutex_t mu;     /* guards the fields below */
    int active;             /* requests received whole and not yet completed */
    double last_activity;   /* when a request last started, read body bytes or completed */
    int draining;
    int timed_out;          /* drain gave up: requests are still with the engine */
    atomic_int started;     /* the daemon runs: libmicrohttpd's own messages are dropped */

    atomic_size_t buffered; /* request body bytes held (or reserved) by all connections */
    pthread_mutex_t conn_mu; /* guards the connection list and every conn_slot */
    struct conn_slot *conns;
    int n_conns;            /* open connections (for /metrics) */
    uint64_t n_reaped;      /* connections closed at their deadline */
    atomic_uint_fast64_t n_over_budget; /* requests refused by max_buffered_bytes */
    pthread_t reaper;
    int have_reaper, stop_reaper;
    pthread_cond_t reaper_cv;
};

/* One open connection, from accept (MHD_CONNECTION_NOTIFY_STARTED) to close. Its socket is shut
 * down when the deadline passes; libmicrohttpd then sees end-of-file and closes it itself. The
 * slot is unlinked under conn_mu before libmicrohttpd closes the socket, so the reaper never
 * touches a descriptor that has been reused. */
typedef struct conn_slot {
    struct conn_slot *prev, *next;
    int fd;
    double deadline;        /* rr_now() seconds; 0: none (a request is being answered) */
    int reaped;             /* closed at its deadline: its request is logged as 408 */
} conn_slot;

typedef enum phase { PH_READING, PH_WAITING, PH_DONE } phase;

typedef struct req {
    rr_srv *srv;
    struct MHD_Connection *conn;
    uint64_t id;
    int route;
    int is_post;
    char what[128];         /* "METHOD /path" for the access log */
    char method[16];
    char request_id[132];   /* X-Request-Id as sent, or generated; echoed in the answer */
    double wall_start;      /* wall clock at arrival, for the JSON log */
    phase ph;
    double t_start;
    rr_buf body;
    size_t discarded;       /* bytes read and dropped after an early error */
    size_t charged;         /* bytes of s->buffered this request holds */
    int close_after;        /* answer with Connection: close */
    int early_status;       /* error decided before the body was complete, or 0 */
    char early_msg[256];
    int status;             /* answered status, for the log */
    size_t resp_bytes;
    int counted_active;
    int in_flight;          /* counted in metrics.in_flight */

    /* rerank */
    rr_srv_request rq;
    int have_rq;
    rr_rank_plan plan;
    int have_plan;
    float *logits;
    rr_engine_job job;
    int fd;
    pthread_mutex_t mu;     /* suspended / engine_done handshake */
    int suspended, engine_done;
} req;

/* ------------------------------------------------------------------ answers */

/* The one table from a library failure to the HTTP status answering it. The same rr_status means
 * different things at different steps of a request: a range error while queueing is the queue being
 * full (429), while scoring it would be our fault (500). Unlisted pairs get the stage's default. */
typedef enum stage { STAGE_PLAN, STAGE_QUEUE, STAGE_SCORE } stage;

static int http_status(stage at, rr_status st) {
    static const struct {
        stage at;
        rr_status st;
        int http;
    } table[] = {
        {STAGE_PLAN, RR_ERR_INVALID, 422},    /* the documents cannot be tokenized or windowed as sent */
        {STAGE_QUEUE, RR_ERR_RANGE, 429},     /* queue_depth requests already wait: retry later */
        {STAGE_SCORE, RR_ERR_CANCELLED, 499}, /* the client hung up: nothing is sent */
    };
    static const int fallback[] = {[STAGE_PLAN] = 500, [STAGE_QUEUE] = 503, [STAGE_SCORE] = 500};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (table[i].at == at && table[i].st == st) return table[i].http;
    return fallback[at];
}

static int is_draining(rr_srv *s) {
    pthread_mutex_lock(&s->mu);
    int d = s->draining;
    pthread_mutex_unlock(&s->mu);
    return d;
}

/* Queues `b` (taken over) as the answer. */
static enum MHD_Result respond(req *r, int status, rr_buf *b, const char *ctype) {
    static const char oom[] = "{\"detail\":\"out of memory\",\"message\":\"out of memory\"}";
    struct MHD_Response *resp;
    r->resp_bytes = b->oom ? 0 : b->len;
    if (b->oom || !b->data) {
        rr_buf_free(b);
        status = b->oom ? 500 : status;
        resp = MHD_create_response_from_buffer(b->oom ? sizeof oom - 1 : 0, (void *)oom, MHD_RESPMEM_PERSISTENT);
    } else {
        resp = MHD_create_response_from_buffer(b->len, b->data, MHD_RESPMEM_MUST_FREE);
        if (!resp) rr_buf_free(b);
    }
    memset(b, 0, sizeof *b);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (status == 429 || status == 503) MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    if (r->request_id[0]) MHD_add_response_header(resp, "X-Request-Id", r->request_id);
    if (status == 405) MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->route <= ROUTE_RERANK ? "POST" : "GET");
    if (status == 401) MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    if (r->close_after || is_draining(r->srv)) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    r->status = status;
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result respond_json(req *r, int status, rr_buf *b) {
    return respond(r, status, b, "application/json");
}

static enum MHD_Result respond_error(req *r, int status, const char *msg) {
    rr_buf b = {0};
    rr_srv_format_error(&b, status, msg);
    return respond_json(r, status, &b);
}

/* ------------------------------------------------------------------ GET endpoints */

static enum MHD_Result get_info(req *r) {
    rr_srv *s = r->srv;
    const rr_model_info *mi = &s->info;
    const rr_engine_params *ep = rr_engine_params_of(s->engine);
    rr_buf b = {0};
    rr_buf_puts(&b, "{\"model_id\":");
    rr_buf_json_str(&b, s->model_name, strlen(s->model_name));
    rr_buf_printf(&b,
                  ",\"model_sha\":null,\"model_type\":{\"reranker\":{\"id2label\":{\"0\":\"LABEL_0\"},"
                  "\"label2id\":{\"LABEL_0\":0}}},\"family\":\"%s\",\"model_dtype\":\"%s\",\"precision\":\"%s\","
                  "\"kernels\":",
                  rr_family_name(mi->family), rr_precision_name(mi->precision),
                  rr_precision_name(mi->precision));
    const char *k = mi->kernels ? mi->kernels : "";
    rr_buf_json_str(&b, k, strlen(k));
    rr_buf_printf(&b,
                  ",\"max_input_length\":%d,\"max_batch_tokens\":%d,\"max_concurrent_requests\":%d,"
                  "\"max_client_batch_size\":%d,\"max_request_bytes\":%zu,\"max_request_tokens\":%ld,"
                  "\"engine_workers\":%d,\"http_threads\":%d,\"auto_truncate\":true,\"windowing\":true,"
                  "\"auth\":%s,\"version\":\"%s\"",
                  s->rank.max_length, ep->max_batch_tokens, ep->queue_depth, s->p.max_docs, s->p.max_request_bytes,
                  s->p.max_request_tokens, ep->n_workers, s->p.http_threads,
                  s->p.api_key && *s->p.api_key ? "true" : "false", RR_VERSION);
    /* the prompt and what a request's "instruction" does: only decoder prompts have a slot for it */
    rr_buf_printf(&b, ",\"template\":\"%s\",\"instruction\":{\"supported\":%s,\"default\":",
                  rr_template_name(mi->prompt), mi->prompt == RR_TEMPLATE_NONE ? "false" : "true");
    const char *di = s->rank.instruction.text ? s->rank.instruction.text : mi->default_instruction;
    if (mi->prompt != RR_TEMPLATE_NONE && di)
        rr_buf_json_str(&b, di, s->rank.instruction.text ? s->rank.instruction.len : strlen(di));
    else rr_buf_puts(&b, "null");
    rr_buf_puts(&b, ",\"note\":");
    if (mi->prompt == RR_TEMPLATE_NONE)
        rr_buf_printf(&b, "\"ignored: %s is an encoder model, whose input (query, document) has no instruction\"",
                      rr_family_name(mi->family));
    else rr_buf_puts(&b, "null");
    /* what a request that does not choose gets for a long document */
    rr_long_doc ld = s->rank.long_doc;
    if (ld == RR_LONG_DOC_AUTO) ld = mi->prompt == RR_TEMPLATE_NONE ? RR_LONG_DOC_WINDOW : RR_LONG_DOC_AUTO;
    rr_buf_printf(&b, "},\"long_documents\":\"%s\"}",
                  mi->prompt == RR_TEMPLATE_JINA_V3  ? "blocks"
                  : ld == RR_LONG_DOC_WINDOW         ? "windows"
                  : ld == RR_LONG_DOC_TRUNCATE_RIGHT ? "truncate_right"
                  : ld == RR_LONG_DOC_TRUNCATE_LEFT  ? "truncate_left"
                                                     : "reference_cut");
    return respond_json(r, 200, &b);
}

static enum MHD_Result get_models(req *r) {
    rr_buf b = {0};
    rr_buf_puts(&b, "{\"object\":\"list\",\"data\":[{\"id\":");
    rr_buf_json_str(&b, r->srv->model_name, strlen(r->srv->model_name));
    rr_buf_puts(&b, ",\"object\":\"model\",\"created\":0,\"owned_by\":\"rerank\"}]}");
    return respond_json(r, 200, &b);
}

static enum MHD_Result get_metrics(req *r) {
    rr_srv *s = r->srv;
    rr_buf b = {0};
    rr_srv_metrics_render(&s->metrics, atomic_load_explicit(&s->ready, memory_order_acquire) ? s->engine : NULL, &b);
    pthread_mutex_lock(&s->conn_mu);
    int conns = s->n_conns;
    uint64_t reaped = s->n_reaped;
    pthread_mutex_unlock(&s->conn_mu);
    rr_buf_printf(&b,
                  "# HELP rerank_http_connections Open HTTP connections.\n# TYPE rerank_http_connections gauge\n"
                  "rerank_http_connections %d\n"
                  "# HELP rerank_http_deadline_closed_total Connections closed at their header, body or idle deadline.\n"
                  "# TYPE rerank_http_deadline_closed_total counter\nrerank_http_deadline_closed_total %llu\n"
                  "# HELP rerank_http_buffered_bytes Request body bytes held or reserved (--max-buffered-bytes).\n"
                  "# TYPE rerank_http_buffered_bytes gauge\nrerank_http_buffered_bytes %zu\n"
                  "# HELP rerank_http_over_budget_total Requests refused with 503 by --max-buffered-bytes.\n"
                  "# TYPE rerank_http_over_budget_total counter\nrerank_http_over_budget_total %llu\n",
                  conns, (unsigned long long)reaped, (size_t)atomic_load(&s->buffered),
                  (unsigned long long)atomic_load(&s->n_over_budget));
    return respond(r, 200, &b, "text/plain; version=0.0.4");
}

static enum MHD_Result get_health(req *r) {
    if (is_draining(r->srv)) {
        rr_buf b = {0};
        rr_buf_puts(&b, "{\"error\":\"unhealthy\",\"error_type\":\"unhealthy\",\"detail\":\"shutting down\","
                        "\"message\":\"shutting down\",\"code\":503}");
        return respond_json(r, 503, &b);
    }
    rr_buf b = {0};
    rr_buf_puts(&b, "{\"status\":\"ok\"}");
    return respond_json(r, 200, &b);
}

/* /ready: what a load balancer or a readiness probe asks before sending traffic; /health stays
 * liveness (200 while the process can answer, also during loading). */
static enum MHD_Result get_ready(req *r) {
    rr_buf b = {0};
    if (!atomic_load_explicit(&r->srv->ready, memory_order_acquire) || is_draining(r->srv)) {
        const char *why = is_draining(r->srv) ? "draining" : "loading";
        rr_buf_printf(&b, "{\"status\":\"%s\",\"detail\":\"not ready: %s\",\"message\":\"not ready: %s\","
                          "\"error\":\"not ready: %s\",\"error_type\":\"unhealthy\",\"code\":503}",
                      why, why, why, why);
        return respond_json(r, 503, &b);
    }
    rr_buf_puts(&b, "{\"status\":\"ready\"}");
    return respond_json(r, 200, &b);
}

static enum MHD_Result get_static(req *r, const char *data, size_t len, const char *ctype) {
    r->resp_bytes = len;
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_PERSISTENT);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    if (r->request_id[0]) MHD_add_response_header(resp, "X-Request-Id", r->request_id);
    if (is_draining(r->srv)) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    r->status = 200;
    enum MHD_Result ret = MHD_queue_response(r->conn, 200, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* ------------------------------------------------------------------ rerank */

static void release_body(req *r);

static int client_gone(void *ud) {
    req *r = ud;
    if (r->fd < 0) return 0;
    struct pollfd pfd = {.fd = r->fd, .events = POLLRDHUP};
    if (poll(&pfd, 1, 0) <= 0) return 0;
    return (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

static void job_done(rr_engine_job *job, void *ud) {
    req *r = ud;
    (void)job;
    pthread_mutex_lock(&r->mu);
    r->engine_done = 1;
    int resume = r->suspended;
    pthread_mutex_unlock(&r->mu);
    /* r may be freed as soon as the connection is resumed: touch nothing after this */
    if (resume) MHD_resume_connection(r->conn);
}

static enum MHD_Result rerank_answer(req *r) {
    rr_srv *s = r->srv;
    if (r->job.status == RR_ERR_CANCELLED) {
        r->status = http_status(STAGE_SCORE, r->job.status); /* client closed the connection: nothing to send */
        return MHD_NO;
    }
    if (r->job.status != RR_OK) {
        char msg[320];
        snprintf(msg, sizeof msg, "scoring failed: %s", r->job.errmsg);
        return respond_error(r, http_status(STAGE_SCORE, r->job.status), msg);
    }
    rr_rank_params rp = s->rank;
    rp.top_n = r->rq.top_n;
    rp.raw = r->rq.raw_scores;
    rr_rank_result *res = rr_malloc((size_t)(r->rq.n_docs ? r->rq.n_docs : 1) * sizeof *res);
    if (!res) return respond_error(r, 500, "out of memory ranking the results");
    int n_res = 0;
    rr_rank_plan_finish(&r->plan, r->logits, &rp, res, &n_res);
    char id[40];
    snprintf(id, sizeof id, "rerank-%016llx", (unsigned long long)r->id);
    rr_buf b = {0};
    rr_srv_format_results(&b, &r->rq, s->model_name, id, res, n_res, r->plan.total_tokens);
    rr_free(res);
    return respond_json(r, 200, &b);
}

static enum MHD_Result rerank_start(req *r) {
    rr_srv *s = r->srv;
    char err[512];
    int depth = rr_engine_params_of(s->engine)->queue_depth;
    if (rr_engine_queued(s->engine) >= depth) {
        /* refuse before parsing and tokenizing: under overload that work would be wasted */
        snprintf(err, sizeof err, "the server is busy: %d requests are queued (limit %d)", depth, depth);
        release_body(r);
        return respond_error(r, 429, err);
    }
    rr_srv_limits lim = {s->p.max_docs};
    rr_srv_api api = r->route == ROUTE_V1 ? RR_SRV_API_V1 : r->route == ROUTE_V2 ? RR_SRV_API_V2 : RR_SRV_API_AUTO;
    int st = rr_srv_parse(r->body.data ? r->body.data : "", r->body.len, api, &lim, &r->rq, err, sizeof err);
    release_body(r);
    if (st) return respond_error(r, st, err);
    r->have_rq = 1;

    rr_rank_params rp = s->rank;
    rp.top_n = r->rq.top_n;
    rp.raw = r->rq.raw_scores;
    if (r->rq.long_doc != RR_LONG_DOC_AUTO) rp.long_doc = r->rq.long_doc; /* else the server's default */
    rp.max_doc_tokens = r->rq.max_doc_tokens;
    rp.max_windows = r->rq.max_windows;
    if (r->rq.instruction.text) rp.instruction = r->rq.instruction;
    rr_status rs = rr_rank_plan_build(s->model, r->rq.query, r->rq.docs, r->rq.n_docs, &rp, &r->plan);
    if (rs != RR_OK) {
        snprintf(err, sizeof err, "%s", rr_errmsg());
        return respond_error(r, http_status(STAGE_PLAN, rs), err);
    }
    r->have_plan = 1;
    if (s->p.max_request_tokens > 0 && r->plan.total_tokens > s->p.max_request_tokens) {
        snprintf(err, sizeof err,
                 "request too large: %ld tokens after windowing (%d windows), the limit is %ld (--max-request-tokens)",
                 r->plan.total_tokens, r->plan.n_seqs, s->p.max_request_tokens);
        return respond_error(r, 413, err);
    }
    r->logits = rr_calloc((size_t)(r->plan.n_seqs ? r->plan.n_seqs : 1), sizeof *r->logits);
    if (!r->logits) return respond_error(r, 500, "out of memory");

    r->job.id = r->id;
    r->job.seqs = r->plan.seqs;
    r->job.n_seqs = r->plan.n_seqs;
    r->job.logits = r->logits;
    r->job.is_cancelled = client_gone;
    r->job.on_done = job_done;
    r->job.ud = r;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    r->fd = ci ? ci->connect_fd : -1;
    r->ph = PH_WAITING;
    rs = rr_engine_submit(s->engine, &r->job);
    if (rs != RR_OK) {
        r->ph = PH_DONE;
        snprintf(err, sizeof err, "%s", rr_errmsg());
        return respond_error(r, http_status(STAGE_QUEUE, rs), err);
    }
    pthread_mutex_lock(&r->mu);
    int now = r->engine_done;
    if (!now) {
        MHD_suspend_connection(r->conn);
        r->suspended = 1;
    }
    pthread_mutex_unlock(&r->mu);
    if (!now) return MHD_YES;
    r->ph = PH_DONE;
    return rerank_answer(r);
}

/* ------------------------------------------------------------------ connection edge */

/* Sets the deadline of r's connection to `seconds` from now (<= 0: none). */
static void set_deadline(req *r, double seconds) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    conn_slot *c = ci ? ci->socket_context : NULL;
    if (!c) return;
    pthread_mutex_lock(&r->srv->conn_mu);
    c->deadline = seconds > 0 ? rr_now() + seconds : 0;
    pthread_mutex_unlock(&r->srv->conn_mu);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
    rr_srv *s = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        conn_slot *c = rr_calloc(1, sizeof *c);
        *socket_context = c;
        if (!c) return; /* no deadline for this one; libmicrohttpd's idle timeout still holds */
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        c->fd = ci ? ci->connect_fd : -1;
        c->deadline = s->p.header_timeout_s > 0 ? rr_now() + s->p.header_timeout_s : 0;
        pthread_mutex_lock(&s->conn_mu);
        c->next = s->conns;
        if (s->conns) s->conns->prev = c;
        s->conns = c;
        s->n_conns++;
        pthread_mutex_unlock(&s->conn_mu);
        return;
    }
    conn_slot *c = *socket_context;
    if (!c) return;
    pthread_mutex_lock(&s->conn_mu);
    if (c->prev) c->prev->next = c->next;
    else s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    s->n_conns--;
    pthread_mutex_unlock(&s->conn_mu);
    rr_free(c);
    *socket_context = NULL;
}

/* Shuts down the socket of every connection past its deadline, five times a second. */
static void *reaper_main(void *arg) {
    rr_srv *s = arg;
    pthread_mutex_lock(&s->conn_mu);
    while (!s->stop_reaper) {
        double now = rr_now();
        for (conn_slot *c = s->conns; c; c = c->next) {
            if (c->deadline > 0 && now >= c->deadline && c->fd >= 0) {
                shutdown(c->fd, SHUT_RDWR);
                c->deadline = 0;
                c->reaped = 1;
                s->n_reaped++;
            }
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->reaper_cv, &s->conn_mu, &ts);
    }
    pthread_mutex_unlock(&s->conn_mu);
    return NULL;
}

static void stop_reaper(rr_srv *s) {
    if (!s->have_reaper) return;
    pthread_mutex_lock(&s->conn_mu);
    s->stop_reaper = 1;
    pthread_cond_signal(&s->reaper_cv);
    pthread_mutex_unlock(&s->conn_mu);
    pthread_join(s->reaper, NULL);
    s->have_reaper = 0;
}

/* Takes n more bytes of the global body budget for r; 0 when that would pass max_buffered_bytes. */
static int charge(req *r, size_t n) {
    rr_srv *s = r->srv;
    size_t cur = atomic_load(&s->buffered);
    do {
        if (cur + n > s->p.max_buffered_bytes) {
            atomic_fetch_add(&s->n_over_budget, 1);
            return 0;
        }
    } while (!atomic_compare_exchange_weak(&s->buffered, &cur, cur + n));
    r->charged += n;
    return 1;
}

/* True if r's connection was shut down at its deadline. */
static int was_reaped(req *r) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    conn_slot *c = ci ? ci->socket_context : NULL;
    if (!c) return 0;
    pthread_mutex_lock(&r->srv->conn_mu);
    int reaped = c->reaped;
    pthread_mutex_unlock(&r->srv->conn_mu);
    return reaped;
}

static void release_body(req *r) {
    rr_buf_free(&r->body);
    if (r->charged) atomic_fetch_sub(&r->srv->buffered, r->charged);
    r->charged = 0;
}

static void touch(rr_srv *s) {
    pthread_mutex_lock(&s->mu);
    s->last_activity = rr_now();
    pthread_mutex_unlock(&s->mu);
}

/* What the headers say about framing and credentials, all of them (a header may repeat). */
typedef struct hdr_scan {
    int n_cl, cl_differ, n_te, n_auth, expect_continue;
    const char *cl;
} hdr_scan;

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    hdr_scan *h = cls;
    (void)kind;
    if (!key || !value) return MHD_YES;
    if (!strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH)) {
        if (h->n_cl++ == 0) h->cl = value;
        else if (strcmp(h->cl, value) != 0) h->cl_differ = 1;
    } else if (!strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
        h->n_te++;
    } else if (!strcasecmp(key, MHD_HTTP_HEADER_AUTHORIZATION)) {
        h->n_auth++;
    } else if (!strcasecmp(key, MHD_HTTP_HEADER_EXPECT)) {
        if (!strcasecmp(value, "100-continue")) h->expect_continue = 1;
    }
    return MHD_YES;
}

/* ------------------------------------------------------------------ MHD callbacks */

static int route_of(const char *url) {
    static const struct {
        const char *path;
        int route;
    } t[] = {{"/v1/rerank", ROUTE_V1}, {"/v1/reranking", ROUTE_V1}, {"/reranking", ROUTE_V1},
             {"/v2/rerank", ROUTE_V2}, {"/rerank", ROUTE_RERANK},    {"/health", ROUTE_HEALTH},
             {"/info", ROUTE_INFO},    {"/metrics", ROUTE_METRICS},  {"/v1/models", ROUTE_MODELS},
             {"/models", ROUTE_MODELS}, {"/ready", ROUTE_READY}, {"/openapi.json", ROUTE_OPENAPI},
             {"/docs", ROUTE_DOCS}};
    size_t n = strcspn(url, "?");
    while (n > 1 && url[n - 1] == '/') n--; /* "/v1/rerank/" too */
    for (size_t i = 0; i < RR_ARRAY_LEN(t); i++)
        if (strlen(t[i].path) == n && !memcmp(url, t[i].path, n)) return t[i].route;
    return ROUTE_NOT_FOUND;
}

static void set_early(req *r, int status, const char *msg) {
    if (r->early_status) return;
    r->early_status = status;
    snprintf(r->early_msg, sizeof r->early_msg, "%s", msg);
}

/* libmicrohttpd calls on_request in three phases per request; each is one step below. */

/* Phase 1, headers only: a new request object, then the checks that need no body (framing, route,
 * method, API key, Content-Length, the body budget). A failed check is answered once the body is
 * read (or dropped), or at once (ph set to PH_DONE) when the client waits for "100 Continue" or the
 * framing is in doubt. */
static req *request_begin(rr_srv *s, struct MHD_Connection *conn, const char *url, const char *method) {
    req *r = rr_calloc(1, sizeof *r);
    if (!r) return NULL;
    r->srv = s;
    r->conn = conn;
    r->fd = -1;
    r->t_start = rr_now();
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    r->wall_start = (double)wall.tv_sec + wall.tv_nsec * 1e-9;
    r->id = atomic_fetch_add(&s->next_id, 1) + 1;
    r->route = route_of(url);
    snprintf(r->what, sizeof r->what, "%s %s", method, url);
    snprintf(r->method, sizeof r->method, "%s", method);
    if (!rr_srv_request_id_ok(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id"), r->request_id))
        rr_srv_request_id(r->id, r->request_id);
    for (char *c = r->what; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == '"' || (unsigned char)*c >= 0x7f) *c = '?';
    pthread_mutex_init(&r->mu, NULL);
    touch(s);
    /* the body, if any, must be complete within body_timeout_s of the headers */
    set_deadline(r, s->p.body_timeout_s);

    int is_get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    r->is_post = !strcmp(method, "POST");
    hdr_scan h = {0};
    MHD_get_connection_values(conn, MHD_HEADER_KIND, scan_header, &h);
    if (h.cl_differ || (h.n_cl && h.n_te) || h.n_te > 1) {
        /* a proxy in front may frame this request differently: answering it could answer a request
         * hidden in its body, so refuse and close without reading on */
        r->close_after = 1;
        set_early(r, 400,
                  h.cl_differ ? "conflicting Content-Length headers"
                  : h.n_te > 1 ? "more than one Transfer-Encoding header"
                               : "both Content-Length and Transfer-Encoding: send one of them");
    } else if (h.n_auth > 1) {
        r->close_after = 1;
        set_early(r, 400, "more than one Authorization header");
    } else if (r->route == ROUTE_NOT_FOUND) {
        char m[200];
        snprintf(m, sizeof m, "no route for %s %.120s (try POST /v1/rerank)", method, url);
        set_early(r, 404, m);
    } else if (r->route <= ROUTE_RERANK ? !r->is_post : !is_get) {
        set_early(r, 405, r->route <= ROUTE_RERANK ? "use POST on this route" : "use GET on this route");
    } else if (r->route != ROUTE_HEALTH && r->route != ROUTE_READY && r->route != ROUTE_OPENAPI &&
               r->route != ROUTE_DOCS && s->p.api_key && *s->p.api_key &&
               !rr_srv_auth_ok(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
                               s->p.api_key)) {
        set_early(r, 401, "missing or invalid API key: send \"Authorization: Bearer <key>\"");
    } else if ((r->route <= ROUTE_RERANK || r->route == ROUTE_INFO || r->route == ROUTE_MODELS) &&
               !atomic_load_explicit(&s->ready, memory_order_acquire)) {
        set_early(r, 503, "the model is still loading: retry shortly (GET /ready answers 200 once it is loaded)");
    } else if (r->is_post) {
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > s->p.max_request_bytes) {
            char m[200];
            snprintf(m, sizeof m, "request body of %s bytes is over the limit of %zu bytes (--max-request-bytes)", cl,
                     s->p.max_request_bytes);
            set_early(r, 413, m);
        } else if (cl && r->route <= ROUTE_RERANK && !charge(r, (size_t)strtoull(cl, NULL, 10))) {
            /* the body's whole size is known: hold its place in the budget now */
            set_early(r, 503, "the server is holding too many request bodies (--max-buffered-bytes): retry later");
        }
    }
    /* a client waiting for "100 Continue", or one whose framing is in doubt, gets the error now (no
     * body is read); others have theirs read and dropped so they see it instead of a reset */
    if (r->early_status && (h.expect_continue || r->close_after)) {
        r->close_after = 1;
        r->ph = PH_DONE;
    }
    return r;
}

/* Phase 2, once per chunk of the body: kept up to max_request_bytes; past the limit, or after an
 * early refusal, read and dropped so the client gets the answer instead of a reset (within reason). */
static enum MHD_Result request_body(req *r, const char *data, size_t n) {
    rr_srv *s = r->srv;
    touch(s);
    if (!r->early_status && r->body.len + n > s->p.max_request_bytes) {
        char m[200];
        snprintf(m, sizeof m, "request body is over the limit of %zu bytes (--max-request-bytes)", s->p.max_request_bytes);
        set_early(r, 413, m);
        release_body(r);
    }
    if (!r->early_status && r->body.len + n > r->charged && !charge(r, r->body.len + n - r->charged)) {
        set_early(r, 503, "the server is holding too many request bodies (--max-buffered-bytes): retry later");
        release_body(r);
    }
    if (r->early_status) {
        r->discarded += n;
        if (r->discarded > 4 * s->p.max_request_bytes + (64u << 20)) {
            r->ph = PH_DONE;
            return respond_error(r, r->early_status, r->early_msg);
        }
        return MHD_YES;
    }
    rr_buf_append(&r->body, data, n);
    if (r->body.oom) set_early(r, 500, "out of memory reading the request body");
    return MHD_YES;
}

/* Phase 3, the body is complete: answer a GET or an early refusal at once, or start a rerank
 * (which suspends the connection until the engine is done). */
static enum MHD_Result request_complete(req *r) {
    rr_srv *s = r->srv;
    r->ph = PH_DONE;
    /* received whole: from here the request is answered even while draining */
    set_deadline(r, 0);
    pthread_mutex_lock(&s->mu);
    s->active++;
    s->last_activity = rr_now();
    pthread_mutex_unlock(&s->mu);
    r->counted_active = 1;
    if (r->early_status) return respond_error(r, r->early_status, r->early_msg);
    switch (r->route) {
    case ROUTE_HEALTH: return get_health(r);
    case ROUTE_INFO: return get_info(r);
    case ROUTE_METRICS: return get_metrics(r);
    case ROUTE_MODELS: return get_models(r);
    case ROUTE_READY: return get_ready(r);
    case ROUTE_OPENAPI: {
        size_t n;
        const char *d = rr_srv_openapi_json(&n);
        return get_static(r, d, n, "application/json");
    }
    case ROUTE_DOCS: {
        size_t n;
        const char *d = rr_srv_docs_html(&n);
        return get_static(r, d, n, "text/html; charset=utf-8");
    }
    default: break;
    }
    rr_srv_metrics_inflight(&r->srv->metrics, 1);
    r->in_flight = 1;
    return rerank_start(r);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
    req *r = *con_cls;
    (void)version;
    if (!r) {
        *con_cls = r = request_begin(cls, conn, url, method);
        if (!r) return MHD_NO;
        if (r->ph == PH_DONE) return respond_error(r, r->early_status, r->early_msg); /* see request_begin */
        return MHD_YES;
    }
    if (r->ph == PH_READING && *upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        return request_body(r, upload_data, n);
    }
    if (r->ph == PH_READING) return request_complete(r);
    if (r->ph == PH_WAITING) {
        /* resumed by job_done */
        r->ph = PH_DONE;
        return rerank_answer(r);
    }
    return MHD_YES;
}

static void log_line(req *r, enum MHD_RequestTerminationCode why) {
    rr_srv *s = r->srv;
    char ip[INET6_ADDRSTRLEN] = "-";
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, ip, sizeof ip);
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, ip, sizeof ip);
    }
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char ts[32];
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    int status = r->status ? r->status : 499;
    if (why != MHD_REQUEST_TERMINATED_COMPLETED_OK && status < 400) status = 499;
    if (s->p.log_json) {
        const char *q = strchr(r->what, ' ');
        rr_srv_access a = {.t_start = r->wall_start, .client = ip, .method = r->method,
                           .route = g_route_names[r->route], .path = q ? q + 1 : r->what, .status = status,
                           .bytes = r->resp_bytes, .documents = r->have_rq ? r->rq.n_docs : -1,
                           .tokens = r->have_plan ? r->plan.total_tokens : -1,
                           .windows = r->have_plan ? r->plan.n_seqs : -1,
                           .queue_ms = r->have_plan ? r->job.queue_seconds * 1e3 : -1.0,
                           .total_ms = (rr_now() - r->t_start) * 1e3, .request_id = r->request_id};
        rr_buf b = {0};
        rr_srv_access_json(&b, &a);
        if (!b.oom && b.data) fwrite(b.data, 1, b.len, stderr); /* stderr is unbuffered: one write per line */
        rr_buf_free(&b);
        return;
    }
    char line[512];
    int n = snprintf(line, sizeof line, "%s %s \"%s\" %d %zuB %.1fms id=%llu", ts, ip, r->what, status,
                     r->resp_bytes, (rr_now() - r->t_start) * 1e3, (unsigned long long)r->id);
    if (r->have_rq && n > 0 && (size_t)n < sizeof line)
        n += snprintf(line + n, sizeof line - (size_t)n, " docs=%d", r->rq.n_docs);
    if (r->have_plan && n > 0 && (size_t)n < sizeof line)
        n += snprintf(line + n, sizeof line - (size_t)n, " windows=%d tokens=%ld queue=%.1fms", r->plan.n_seqs,
                      r->plan.total_tokens, r->job.queue_seconds * 1e3);
    if (n > 0 && (size_t)n < sizeof line - 1) {
        line[n++] = '\n';
        line[n] = 0;
    }
    fputs(line, stderr);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode why) {
    rr_srv *s = cls;
    req *r = *con_cls;
    (void)conn;
    if (!r) return;
    *con_cls = NULL;
    if (why != MHD_REQUEST_TERMINATED_COMPLETED_OK && !r->status && was_reaped(r))
        r->status = 408; /* cut at its body deadline, nothing sent */
    int status = r->status ? r->status : 499;
    if (why != MHD_REQUEST_TERMINATED_COMPLETED_OK && status < 400) status = 499;
    int rerank = r->route <= ROUTE_RERANK && r->have_rq;
    rr_srv_metrics_request(&s->metrics, r->route, status, rerank ? rr_now() - r->t_start : -1, r->job.queue_seconds,
                           r->have_rq ? r->rq.n_docs : 0, r->have_plan ? r->plan.total_tokens : 0);
    if (s->p.access_log) log_line(r, why);
    if (r->in_flight) rr_srv_metrics_inflight(&s->metrics, -1);
    /* the engine is done with this request: it was either never submitted or has called job_done
     * (a suspended connection is not completed before it is resumed) */
    if (r->have_plan) rr_rank_plan_free(&r->plan);
    if (r->have_rq) rr_srv_request_free(&r->rq);
    rr_free(r->logits);
    release_body(r);
    /* a keep-alive connection now has idle_timeout_s to start its next request and header_timeout_s
     * more to finish its headers */
    if (why == MHD_REQUEST_TERMINATED_COMPLETED_OK && !r->close_after)
        set_deadline(r, s->p.idle_timeout_s > 0 ? s->p.idle_timeout_s + s->p.header_timeout_s : 0);
    pthread_mutex_destroy(&r->mu);
    if (r->counted_active) {
        pthread_mutex_lock(&s->mu);
        s->active--;
        s->last_activity = rr_now();
        pthread_mutex_unlock(&s->mu);
    }
    rr_free(r);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    rr_srv *s = cls;
    /* once serving, libmicrohttpd's messages are about single connections (resets, limits,
     * timeouts): under attack they would flood the log, and each request already has its line */
    if (s->started) return;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) msg[--n] = 0;
    fprintf(stderr, "rerank serve: http: %s\n", msg);
}

/* ------------------------------------------------------------------ lifecycle */

rr_srv_params rr_srv_default_params(void) {
    rr_srv_params p;
    memset(&p, 0, sizeof p);
    p.host = "127.0.0.1";
    p.port = 8080;
    p.http_threads = 4;
    p.max_docs = 1000;
    p.max_request_bytes = 2000000;
    p.max_request_tokens = 1L << 20;
    p.rank = rr_rank_default_params();
    p.engine = rr_engine_default_params();
    p.access_log = true;
    p.header_timeout_s = 10;
    p.body_timeout_s = 30;
    p.idle_timeout_s = 60;
    p.max_connections = 4096;
    p.max_conns_per_ip = 256;
    p.max_buffered_bytes = 256000000;
    return p;
}

int rr_srv_port(const rr_srv *s) { return s->port; }

rr_status rr_srv_set_model(rr_srv *s, const rr_model *m) {
    if (!s || !m) return rr_fail(RR_ERR_INVALID, "serve: no model");
    if (atomic_load(&s->ready)) return rr_fail(RR_ERR_INVALID, "serve: the model is already set");
    rr_model_get_info(m, &s->info);
    snprintf(s->model_name, sizeof s->model_name, "%s",
             s->p.model_name && *s->p.model_name ? s->p.model_name : s->info.name ? s->info.name : "rerank");
    rr_status st = rr_rank_resolve_params(m, &s->p.rank, &s->rank);
    if (st != RR_OK) return st;
    rr_engine *e = NULL;
    st = rr_engine_new(m, &s->p.engine, &e);
    if (st != RR_OK) return st;
    s->engine = e;
    s->model = m;
    /* the HTTP threads read model, info, rank and engine only after seeing ready */
    atomic_store_explicit(&s->ready, 1, memory_order_release);
    return RR_OK;
}

rr_status rr_srv_start(const rr_model *m, const rr_srv_params *params, rr_srv **out) {
    rr_srv_params p = params ? *params : rr_srv_default_params();
    if (!p.host || !*p.host) p.host = "127.0.0.1";
    if (p.http_threads <= 0) p.http_threads = 4;
    if (p.max_request_bytes == 0) p.max_request_bytes = 2000000;
    if (p.port < 0 || p.port > 65535) return rr_fail(RR_ERR_INVALID, "serve: port %d is out of range", p.port);
    if (p.api_key && !*p.api_key)
        return rr_fail(RR_ERR_INVALID, "serve: the API key is empty (leave it unset to accept any client)");
    if (p.max_connections <= 0) p.max_connections = 4096;
    if (p.max_conns_per_ip < 0) p.max_conns_per_ip = 0;
    if (p.max_buffered_bytes == 0) p.max_buffered_bytes = 256000000;
    if (p.max_buffered_bytes < p.max_request_bytes)
        return rr_fail(RR_ERR_INVALID, "serve: max_buffered_bytes (%zu) is below max_request_bytes (%zu): no body would fit",
                       p.max_buffered_bytes, p.max_request_bytes);

    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char port[16];
    snprintf(port, sizeof port, "%d", p.port);
    int gai = getaddrinfo(p.host, port, &hints, &ai);
    if (gai != 0) return rr_fail(RR_ERR_INVALID, "serve: cannot resolve host \"%s\": %s", p.host, gai_strerror(gai));

    rr_srv *s = rr_calloc(1, sizeof *s);
    if (!s) {
        freeaddrinfo(ai);
        return rr_fail(RR_ERR_NOMEM, "serve: out of memory");
    }
    s->p = p;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->conn_mu, NULL);
    pthread_cond_init(&s->reaper_cv, NULL);
    atomic_init(&s->next_id, 0);
    atomic_init(&s->ready, 0);
    atomic_init(&s->buffered, 0);
    atomic_init(&s->started, 0);
    rr_srv_metrics_init(&s->metrics, g_route_names, ROUTE_COUNT);

    if (m) {
        rr_status st = rr_srv_set_model(s, m);
        if (st != RR_OK) {
            freeaddrinfo(ai);
            rr_srv_free(s);
            return st;
        }
    }

    if (pthread_create(&s->reaper, NULL, reaper_main, s) != 0) {
        freeaddrinfo(ai);
        rr_srv_free(s);
        return rr_fail(RR_ERR_NOMEM, "serve: cannot start a thread");
    }
    s->have_reaper = 1;

    /* poll, not epoll: libmicrohttpd 0.9.75's epoll mode misses the end-of-file of a client that
     * closes after part of a request, leaving the socket in CLOSE-WAIT (docs/ARCHITECTURE.md) */
    unsigned flags = MHD_USE_POLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    unsigned idle = p.idle_timeout_s > 0 ? (unsigned)ceil(p.idle_timeout_s) : 0;
    s->mhd = MHD_start_daemon(flags, (uint16_t)p.port, NULL, NULL, on_request, s,
                              MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
                              MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                              MHD_OPTION_THREAD_POOL_SIZE, (unsigned)p.http_threads,
                              MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                              MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned)p.max_connections,
                              MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)p.max_conns_per_ip,
                              MHD_OPTION_CONNECTION_TIMEOUT, idle,
                              MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32768,
                              MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024,
                              MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!s->mhd) {
        rr_srv_free(s);
        return rr_fail(RR_ERR_IO, "serve: cannot listen on %s:%d (in use, or not a local address?)", p.host, p.port);
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : p.port;
    atomic_store(&s->started, 1);
    *out = s;
    return RR_OK;
}

int rr_srv_drain(rr_srv *s, double timeout_s) {
    if (!s || !s->mhd) return 0;
    pthread_mutex_lock(&s->mu);
    int first = !s->draining;
    s->draining = 1;
    pthread_mutex_unlock(&s->mu);
    if (first) {
        MHD_socket lfd = MHD_quiesce_daemon(s->mhd);
        if (lfd != MHD_INVALID_SOCKET) close(lfd);
    }
    /* wait until nothing is in flight and nothing new arrived for a moment (a request already on
     * the wire of an open keep-alive connection still gets its answer) */
    double t0 = rr_now();
    int ok = 0;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        int active = s->active;
        double quiet = rr_now() - s->last_activity;
        pthread_mutex_unlock(&s->mu);
        if (active == 0 && quiet > 0.25) {
            ok = 1;
            break;
        }
        if (rr_now() - t0 > timeout_s) {
            /* only bodies still trickling in: nothing of theirs is with the engine, stop anyway */
            ok = active == 0;
            break;
        }
        usleep(10000);
    }
    if (!ok) {
        /* suspended connections cannot be stopped under libmicrohttpd: leave them to process exit */
        s->timed_out = 1;
        return -1;
    }
    MHD_stop_daemon(s->mhd); /* closes the connections that never sent a whole request */
    s->mhd = NULL;
    stop_reaper(s);
    return 0;
}

void rr_srv_free(rr_srv *s) {
    if (!s) return;
    if (s->mhd && !s->timed_out) rr_srv_drain(s, 60);
    if (s->timed_out) return; /* see rr_srv_drain: the engine still holds jobs */
    stop_reaper(s);
    rr_engine_free(s->engine);
    rr_srv_metrics_destroy(&s->metrics);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->conn_mu);
    pthread_cond_destroy(&s->reaper_cv);
    rr_free(s);
}

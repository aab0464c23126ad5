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
 * which the connection is closed).
 */
#define _GNU_SOURCE /* POLLRDHUP */
#include "server/server.h"

#include "core/core.h"
#include "score/rank.h"
#include "server/metrics.h"
#include "server/request.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
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
    ROUTE_NOT_FOUND,
    ROUTE_COUNT
};
static const char *const g_route_names[ROUTE_COUNT] = {"/v1/rerank", "/v2/rerank", "/rerank", "/health",
                                                       "/info", "/metrics", "/v1/models", "other"};

struct rr_srv {
    rr_srv_params p;
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
    int active;             /* requests received and not yet completed */
    double last_activity;   /* when a request last started or completed */
    int draining;
    int timed_out;          /* drain gave up: requests are still with the engine */
};

typedef enum phase { PH_READING, PH_WAITING, PH_DONE } phase;

typedef struct req {
    rr_srv *srv;
    struct MHD_Connection *conn;
    uint64_t id;
    int route;
    int is_post;
    char what[128];         /* "METHOD /path" for the access log */
    phase ph;
    double t_start;
    rr_buf body;
    size_t discarded;       /* bytes read and dropped after an early error */
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

static const char *precision_name(rr_precision p) {
    switch (p) {
    case RR_PRECISION_FP32: return "fp32";
    case RR_PRECISION_BF16: return "bf16";
    case RR_PRECISION_INT8: return "int8";
    default: return "auto";
    }
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
    if (status == 429) MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    if (status == 405) MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->route <= ROUTE_RERANK ? "POST" : "GET");
    if (status == 401) MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    if (is_draining(r->srv)) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
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
                  rr_family_name(mi->family), precision_name(mi->precision),
                  precision_name(mi->precision));
    const char *k = mi->kernels ? mi->kernels : "";
    rr_buf_json_str(&b, k, strlen(k));
    rr_buf_printf(&b,
                  ",\"max_input_length\":%d,\"max_batch_tokens\":%d,\"max_concurrent_requests\":%d,"
                  "\"max_client_batch_size\":%d,\"max_request_bytes\":%zu,\"max_request_tokens\":%ld,"
                  "\"engine_workers\":%d,\"http_threads\":%d,\"auto_truncate\":true,\"windowing\":true,"
                  "\"auth\":%s,\"version\":\"%s\"}",
                  s->rank.max_length, ep->max_batch_tokens, ep->queue_depth, s->p.max_docs, s->p.max_request_bytes,
                  s->p.max_request_tokens, ep->n_workers, s->p.http_threads,
                  s->p.api_key && *s->p.api_key ? "true" : "false", RR_VERSION);
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
    rr_buf b = {0};
    rr_srv_metrics_render(&r->srv->metrics, r->srv->engine, &b);
    return respond(r, 200, &b, "text/plain; version=0.0.4");
}

static enum MHD_Result get_health(req *r) {
    if (is_draining(r->srv)) {
        rr_buf b = {0};
        rr_buf_puts(&b, "{\"error\":\"unhealthy\",\"error_type\":\"unhealthy\",\"detail\":\"shutting down\","
                        "\"message\":\"shutting down\"}");
        return respond_json(r, 503, &b);
    }
    rr_buf b = {0};
    rr_buf_puts(&b, "{\"status\":\"ok\"}");
    return respond_json(r, 200, &b);
}

/* ------------------------------------------------------------------ rerank */

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
        r->status = 499; /* client closed the connection: nothing to send */
        return MHD_NO;
    }
    if (r->job.status != RR_OK) {
        char msg[320];
        snprintf(msg, sizeof msg, "scoring failed: %s", r->job.errmsg);
        return respond_error(r, 500, msg);
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
        rr_buf_free(&r->body);
        return respond_error(r, 429, err);
    }
    rr_srv_limits lim = {s->p.max_docs};
    rr_srv_api api = r->route == ROUTE_V1 ? RR_SRV_API_V1 : r->route == ROUTE_V2 ? RR_SRV_API_V2 : RR_SRV_API_AUTO;
    int st = rr_srv_parse(r->body.data ? r->body.data : "", r->body.len, api, &lim, &r->rq, err, sizeof err);
    rr_buf_free(&r->body);
    if (st) return respond_error(r, st, err);
    r->have_rq = 1;

    rr_rank_params rp = s->rank;
    rp.top_n = r->rq.top_n;
    rp.raw = r->rq.raw_scores;
    rp.long_doc = r->rq.long_doc;
    rp.max_doc_tokens = r->rq.max_doc_tokens;
    rr_status rs = rr_rank_plan_build(s->model, r->rq.query, r->rq.docs, r->rq.n_docs, &rp, &r->plan);
    if (rs != RR_OK) {
        snprintf(err, sizeof err, "%s", rr_errmsg());
        return respond_error(r, rs == RR_ERR_NOMEM ? 500 : rs == RR_ERR_INVALID ? 422 : 500, err);
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
        return respond_error(r, rs == RR_ERR_RANGE ? 429 : 503, err);
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

/* ------------------------------------------------------------------ MHD callbacks */

static int route_of(const char *url) {
    static const struct {
        const char *path;
        int route;
    } t[] = {{"/v1/rerank", ROUTE_V1}, {"/v1/reranking", ROUTE_V1}, {"/reranking", ROUTE_V1},
             {"/v2/rerank", ROUTE_V2}, {"/rerank", ROUTE_RERANK},    {"/health", ROUTE_HEALTH},
             {"/info", ROUTE_INFO},    {"/metrics", ROUTE_METRICS},  {"/v1/models", ROUTE_MODELS},
             {"/models", ROUTE_MODELS}};
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

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
    rr_srv *s = cls;
    req *r = *con_cls;
    (void)version;
    if (!r) {
        r = rr_calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        r->srv = s;
        r->conn = conn;
        r->fd = -1;
        r->t_start = rr_now();
        r->id = atomic_fetch_add(&s->next_id, 1) + 1;
        r->route = route_of(url);
        snprintf(r->what, sizeof r->what, "%s %s", method, url);
        for (char *c = r->what; *c; c++)
            if ((unsigned char)*c < 0x20 || *c == '"' || (unsigned char)*c >= 0x7f) *c = '?';
        pthread_mutex_init(&r->mu, NULL);
        *con_cls = r;
        pthread_mutex_lock(&s->mu);
        s->active++;
        s->last_activity = r->t_start;
        pthread_mutex_unlock(&s->mu);
        r->counted_active = 1;

        int is_get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
        r->is_post = !strcmp(method, "POST");
        if (r->route == ROUTE_NOT_FOUND) {
            char m[200];
            snprintf(m, sizeof m, "no route for %s %.120s (try POST /v1/rerank)", method, url);
            set_early(r, 404, m);
        } else if (r->route <= ROUTE_RERANK ? !r->is_post : !is_get) {
            set_early(r, 405, r->route <= ROUTE_RERANK ? "use POST on this route" : "use GET on this route");
        } else if (r->route != ROUTE_HEALTH && s->p.api_key && *s->p.api_key &&
                   !rr_srv_auth_ok(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
                                   s->p.api_key)) {
            set_early(r, 401, "missing or invalid API key: send \"Authorization: Bearer <key>\"");
        } else if (r->is_post) {
            const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
            if (cl && strtoull(cl, NULL, 10) > s->p.max_request_bytes) {
                char m[200];
                snprintf(m, sizeof m, "request body of %s bytes is over the limit of %zu bytes (--max-request-bytes)",
                         cl, s->p.max_request_bytes);
                set_early(r, 413, m);
            }
        }
        return MHD_YES;
    }

    if (r->ph == PH_READING && *upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (!r->early_status && r->body.len + n > s->p.max_request_bytes) {
            char m[200];
            snprintf(m, sizeof m, "request body is over the limit of %zu bytes (--max-request-bytes)",
                     s->p.max_request_bytes);
            set_early(r, 413, m);
            rr_buf_free(&r->body);
        }
        if (r->early_status) {
            /* read and drop, so the client gets the answer instead of a reset, within reason */
            r->discarded += n;
            if (r->discarded > 4 * s->p.max_request_bytes + (64u << 20)) {
                r->ph = PH_DONE;
                return respond_error(r, r->early_status, r->early_msg);
            }
            return MHD_YES;
        }
        rr_buf_append(&r->body, upload_data, n);
        if (r->body.oom) set_early(r, 500, "out of memory reading the request body");
        return MHD_YES;
    }

    if (r->ph == PH_READING) {
        r->ph = PH_DONE;
        if (r->early_status) return respond_error(r, r->early_status, r->early_msg);
        switch (r->route) {
        case ROUTE_HEALTH: return get_health(r);
        case ROUTE_INFO: return get_info(r);
        case ROUTE_METRICS: return get_metrics(r);
        case ROUTE_MODELS: return get_models(r);
        default: break;
        }
        rr_srv_metrics_inflight(&s->metrics, 1);
        r->in_flight = 1;
        return rerank_start(r);
    }
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
    (void)s;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode why) {
    rr_srv *s = cls;
    req *r = *con_cls;
    (void)conn;
    if (!r) return;
    *con_cls = NULL;
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
    rr_buf_free(&r->body);
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
    (void)cls;
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
    p.access_log = 1;
    return p;
}

int rr_srv_port(const rr_srv *s) { return s->port; }

rr_status rr_srv_start(const rr_model *m, const rr_srv_params *params, rr_srv **out) {
    rr_srv_params p = params ? *params : rr_srv_default_params();
    if (!m) return rr_fail(RR_ERR_INVALID, "serve: no model");
    if (!p.host || !*p.host) p.host = "127.0.0.1";
    if (p.http_threads <= 0) p.http_threads = 4;
    if (p.max_request_bytes == 0) p.max_request_bytes = 2000000;
    if (p.port < 0 || p.port > 65535) return rr_fail(RR_ERR_INVALID, "serve: port %d is out of range", p.port);

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
    s->model = m;
    rr_model_get_info(m, &s->info);
    snprintf(s->model_name, sizeof s->model_name, "%s",
             p.model_name && *p.model_name ? p.model_name : s->info.name ? s->info.name : "rerank");
    pthread_mutex_init(&s->mu, NULL);
    atomic_init(&s->next_id, 0);
    rr_srv_metrics_init(&s->metrics, g_route_names, ROUTE_COUNT);

    rr_status st = rr_rank_resolve_params(m, &p.rank, &s->rank);
    if (st != RR_OK) {
        freeaddrinfo(ai);
        rr_srv_free(s);
        return st;
    }
    st = rr_engine_new(m, &p.engine, &s->engine);
    if (st != RR_OK) {
        freeaddrinfo(ai);
        rr_srv_free(s);
        return st;
    }

    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    s->mhd = MHD_start_daemon(flags, (uint16_t)p.port, NULL, NULL, on_request, s,
                              MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                              MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                              MHD_OPTION_THREAD_POOL_SIZE, (unsigned)p.http_threads,
                              MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned)4096,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)600,
                              MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024,
                              MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!s->mhd) {
        rr_srv_free(s);
        return rr_fail(RR_ERR_IO, "serve: cannot listen on %s:%d (in use, or not a local address?)", p.host, p.port);
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : p.port;
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
        if (rr_now() - t0 > timeout_s) break;
        usleep(10000);
    }
    if (!ok) {
        /* suspended connections cannot be stopped under libmicrohttpd: leave them to process exit */
        s->timed_out = 1;
        return -1;
    }
    MHD_stop_daemon(s->mhd);
    s->mhd = NULL;
    return 0;
}

void rr_srv_free(rr_srv *s) {
    if (!s) return;
    if (s->mhd && !s->timed_out) rr_srv_drain(s, 60);
    if (s->timed_out) return; /* see rr_srv_drain: the engine still holds jobs */
    rr_engine_free(s->engine);
    rr_srv_metrics_destroy(&s->metrics);
    pthread_mutex_destroy(&s->mu);
    rr_free(s);
}

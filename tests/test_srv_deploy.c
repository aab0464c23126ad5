/*
 * test_srv_deploy.c -- what `rerank serve` offers to orchestrators (server/deploy.h): a server
 * started without a model binds and answers /health 200, /ready 503 and 503 + Retry-After on the
 * model's routes until the model is given; a draining server's /ready turns 503 on an open
 * connection; /openapi.json and /docs are served; the JSON access-log line and request ids.
 * The OpenAPI document is validated against real answers by tests/suite_deploy.sh (a validator
 * from npm); here it only has to parse and name every route the server routes.
 */
#include "check.h"
#include "core/core.h"
#include "server/deploy.h"
#include "rerank_hub.h"
#include "rerank_server.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <pthread.h>
#include <unistd.h>

typedef struct res {
    long status;
    rr_buf body, headers;
} res;

static size_t on_data(char *p, size_t sz, size_t n, void *ud) {
    rr_buf_append(ud, p, sz * n);
    return sz * n;
}

/* One request on `c` (reused, so keep-alive applies). body NULL: GET. */
static void req(CURL *c, int port, const char *path, const char *body, res *out) {
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    rr_buf_free(&out->body);
    rr_buf_free(&out->headers);
    memset(out, 0, sizeof *out);
    curl_easy_setopt(c, CURLOPT_URL, url);
    if (body) curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    else curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &out->body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &out->headers);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    rr_buf_append(&out->body, "", 1);
    rr_buf_append(&out->headers, "", 1);
}

static const char *model_dir(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const char *d = rr_test_data_path("models/xlmr_f32");
    char p[1200];
    snprintf(p, sizeof p, "%s/tokenizer.json", d);
    return rr_file_exists(p) ? d : NULL;
}

RR_TEST(srv_deploy_binds_before_the_model_and_ready_follows) {
    const char *dir = model_dir();
    if (!dir) SKIP("test model xlmr_f32 with tokenizer not generated");
    rr_srv_params p = rr_srv_default_params();
    p.port = 0;
    p.access_log = 0;
    rr_srv *s = NULL;
    REQUIRE(rr_srv_start(NULL, &p, &s) == RR_OK);
    int port = rr_srv_port(s);
    CURL *c = curl_easy_init();
    res r = {0};
    req(c, port, "/health", NULL, &r);
    CHECK_EQ_INT(r.status, 200);
    req(c, port, "/ready", NULL, &r);
    CHECK_EQ_INT(r.status, 503);
    CHECK(strstr(r.body.data, "loading") != NULL);
    req(c, port, "/v1/rerank", "{\"query\":\"q\",\"documents\":[\"a\"]}", &r);
    CHECK_EQ_INT(r.status, 503);
    CHECK(strstr(r.headers.data, "Retry-After: 1") != NULL);
    CHECK(strstr(r.body.data, "\"error_type\":\"unhealthy\"") != NULL);
    req(c, port, "/info", NULL, &r);
    CHECK_EQ_INT(r.status, 503);
    req(c, port, "/metrics", NULL, &r); /* no engine yet: still a page */
    CHECK_EQ_INT(r.status, 200);
    req(c, port, "/openapi.json", NULL, &r);
    CHECK_EQ_INT(r.status, 200);

    rr_model *m = NULL;
    REQUIRE(rr_model_load(dir, NULL, &m) == RR_OK);
    REQUIRE(rr_srv_set_model(s, m) == RR_OK);
    CHECK(rr_srv_set_model(s, m) != RR_OK); /* once only */
    req(c, port, "/ready", NULL, &r);
    CHECK_EQ_INT(r.status, 200);
    CHECK(strstr(r.body.data, "\"ready\"") != NULL);
    req(c, port, "/v1/rerank", "{\"query\":\"q\",\"documents\":[\"a\",\"b\"]}", &r);
    CHECK_EQ_INT(r.status, 200);
    CHECK(strstr(r.body.data, "\"results\"") != NULL);
    req(c, port, "/info", NULL, &r);
    CHECK_EQ_INT(r.status, 200);
    curl_easy_cleanup(c);
    rr_buf_free(&r.body);
    rr_buf_free(&r.headers);
    rr_srv_free(s);
    rr_model_free(m);
}

static void *drain_thread(void *ud) {
    rr_srv_drain(ud, 30);
    return NULL;
}

RR_TEST(srv_deploy_ready_is_503_while_draining) {
    const char *dir = model_dir();
    if (!dir) SKIP("test model xlmr_f32 with tokenizer not generated");
    rr_model *m = NULL;
    REQUIRE(rr_model_load(dir, NULL, &m) == RR_OK);
    rr_srv_params p = rr_srv_default_params();
    p.port = 0;
    p.access_log = 0;
    rr_srv *s = NULL;
    REQUIRE(rr_srv_start(m, &p, &s) == RR_OK);
    int port = rr_srv_port(s);
    CURL *c = curl_easy_init();
    res r = {0};
    req(c, port, "/ready", NULL, &r);
    CHECK_EQ_INT(r.status, 200);
    /* the drain waits for 250 ms without requests; this one arrives on the open connection within them */
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, drain_thread, s) == 0);
    usleep(50 * 1000);
    req(c, port, "/ready", NULL, &r);
    CHECK_EQ_INT(r.status, 503);
    CHECK(strstr(r.body.data, "draining") != NULL);
    CHECK(strstr(r.headers.data, "Connection: close") != NULL);
    pthread_join(t, NULL);
    curl_easy_cleanup(c);
    rr_buf_free(&r.body);
    rr_buf_free(&r.headers);
    rr_srv_free(s);
    rr_model_free(m);
}

RR_TEST(srv_deploy_openapi_and_docs_are_served_and_name_every_route) {
    size_t n = 0;
    const char *doc = rr_srv_openapi_json(&n);
    CHECK_EQ_INT(n, strlen(doc));
    cJSON *j = cJSON_Parse(doc);
    REQUIRE(j);
    CHECK(strcmp(cJSON_GetObjectItem(j, "openapi")->valuestring, "3.1.0") == 0);
    cJSON *paths = cJSON_GetObjectItem(j, "paths");
    static const char *const routes[] = {"/v1/rerank", "/v1/reranking", "/reranking", "/v2/rerank", "/rerank",
                                         "/health", "/ready", "/info", "/metrics", "/v1/models", "/models",
                                         "/openapi.json", "/docs"};
    for (size_t i = 0; i < RR_ARRAY_LEN(routes); i++)
        CHECK_MSG(cJSON_GetObjectItem(paths, routes[i]) != NULL, "%s is not in openapi.json", routes[i]);
    CHECK_EQ_INT(cJSON_GetArraySize(paths), RR_ARRAY_LEN(routes));
    cJSON_Delete(j);
    const char *html = rr_srv_docs_html(&n);
    CHECK(n > 1000 && strstr(html, "openapi.json") && strstr(html, "v1/rerank"));
    CHECK(strstr(html, "http://") == NULL && strstr(html, "https://") == NULL); /* nothing from elsewhere */
}

RR_TEST(srv_deploy_access_json_line) {
    rr_srv_access a = {.t_start = 1700000000.25, .client = "127.0.0.1", .method = "POST", .route = "/v1/rerank",
                       .path = "/v1/rerank?x=\"\n", .status = 200, .bytes = 10, .documents = 3, .tokens = 42,
                       .windows = 4, .queue_ms = 1.5, .total_ms = 7.25, .request_id = "abc"};
    rr_buf b = {0};
    rr_srv_access_json(&b, &a);
    rr_buf_append(&b, "", 1);
    REQUIRE(b.data);
    CHECK(b.len >= 2 && b.data[b.len - 2] == '\n' && strchr(b.data, '\n') == b.data + b.len - 2); /* one line */
    cJSON *j = cJSON_Parse(b.data);
    REQUIRE(j);
    CHECK(strcmp(cJSON_GetObjectItem(j, "time")->valuestring, "2023-11-14T22:13:20.250Z") == 0);
    CHECK(strcmp(cJSON_GetObjectItem(j, "path")->valuestring, "/v1/rerank?x=\"\n") == 0);
    CHECK_EQ_INT(cJSON_GetObjectItem(j, "status")->valueint, 200);
    CHECK_EQ_INT(cJSON_GetObjectItem(j, "documents")->valueint, 3);
    CHECK_EQ_INT(cJSON_GetObjectItem(j, "tokens")->valueint, 42);
    CHECK_NEAR(cJSON_GetObjectItem(j, "queue_ms")->valuedouble, 1.5, 1e-9);
    CHECK_NEAR(cJSON_GetObjectItem(j, "total_ms")->valuedouble, 7.25, 1e-9);
    CHECK(strcmp(cJSON_GetObjectItem(j, "request_id")->valuestring, "abc") == 0);
    cJSON_Delete(j);
    rr_buf_free(&b);
    /* not known: left out */
    rr_srv_access g = {.t_start = 0, .method = "GET", .route = "/health", .path = "/health", .status = 200,
                       .documents = -1, .tokens = -1, .windows = -1, .queue_ms = -1, .request_id = "r"};
    rr_srv_access_json(&b, &g);
    rr_buf_append(&b, "", 1);
    j = cJSON_Parse(b.data);
    REQUIRE(j);
    CHECK(!cJSON_GetObjectItem(j, "documents") && !cJSON_GetObjectItem(j, "queue_ms"));
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(j, "client")));
    cJSON_Delete(j);
    rr_buf_free(&b);
}

RR_TEST(srv_deploy_request_ids) {
    char a[40], b[40], out[132];
    rr_srv_request_id(1, a);
    rr_srv_request_id(2, b);
    CHECK_EQ_INT(strlen(a), 16);
    CHECK(strcmp(a, b) != 0 && memcmp(a, b, 8) == 0); /* same process prefix, different counter */
    CHECK(rr_srv_request_id_ok("client-7/req:42", out) && strcmp(out, "client-7/req:42") == 0);
    CHECK(!rr_srv_request_id_ok("", out));
    CHECK(!rr_srv_request_id_ok("has space", out));
    CHECK(!rr_srv_request_id_ok("quo\"te", out));
    CHECK(!rr_srv_request_id_ok(NULL, out));
    char long_id[200];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = 0;
    CHECK(!rr_srv_request_id_ok(long_id, out));
}

/* ------------------------------------------------------------------ rr_remote_rank */

typedef struct later {
    rr_srv *s;
    const rr_model *m;
} later;

static void *set_model_later(void *ud) {
    later *l = ud;
    usleep(400 * 1000);
    rr_srv_set_model(l->s, l->m);
    return NULL;
}

RR_TEST(srv_deploy_remote_rank_equals_rr_rank_and_retries_503) {
    const char *dir = model_dir();
    if (!dir) SKIP("test model xlmr_f32 with tokenizer not generated");
    rr_model *m = NULL;
    REQUIRE(rr_model_load(dir, NULL, &m) == RR_OK);
    rr_ctx *ctx = NULL;
    REQUIRE(rr_ctx_new(m, NULL, &ctx) == RR_OK);
    rr_srv_params p = rr_srv_default_params();
    p.port = 0;
    p.access_log = 0;
    rr_srv *s = NULL;
    REQUIRE(rr_srv_start(NULL, &p, &s) == RR_OK); /* loading: 503 until set_model_later */
    later l = {s, m};
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, set_model_later, &l) == 0);

    static const char *const qtext[] = {"capital of France", "yellow fruit", "Fluss in Paris"};
    static const char *const dtext[] = {"Paris is the capital of France.", "Bananas are yellow.",
                                        "Die Seine fliesst durch Paris.", "東京は日本の首都です。", ""};
    enum { NQ = 3, ND = 5 };
    rr_text docs[ND];
    for (int i = 0; i < ND; i++) docs[i] = (rr_text){dtext[i], strlen(dtext[i])};
    rr_rank_result got[NQ][ND], want[ND];
    rr_remote_query qs[NQ];
    for (int q = 0; q < NQ; q++)
        qs[q] = (rr_remote_query){.query = {qtext[q], strlen(qtext[q])}, .docs = docs, .n_docs = ND, .results = got[q]};
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", rr_srv_port(s));
    rr_remote_params rp = rr_remote_default_params();
    rp.url = url;
    rp.concurrency = 2;
    rp.raw = 1;
    double t0 = rr_now();
    rr_status st = rr_remote_rank(&rp, qs, NQ, NULL, NULL);
    CHECK_MSG(st == RR_OK, "rr_remote_rank: %s", rr_errmsg());
    CHECK(rr_now() - t0 > 0.3); /* it had to wait out the loading 503s */
    pthread_join(t, NULL);
    rr_rank_params kp = rr_rank_default_params();
    kp.raw = 1;
    for (int q = 0; st == RR_OK && q < NQ; q++) {
        int n = 0;
        rr_usage u = {0};
        REQUIRE(rr_rank(ctx, qs[q].query, docs, ND, &kp, want, &n, &u) == RR_OK);
        CHECK_EQ_INT(qs[q].n_results, n);
        CHECK_EQ_INT(qs[q].total_tokens, u.total_tokens);
        for (int i = 0; i < n; i++) {
            CHECK_EQ_INT(got[q][i].index, want[i].index);
            CHECK(got[q][i].score == want[i].score); /* the float round-trips exactly through JSON */
        }
    }

    /* top_n, a full URL, and a client error that is not retried: the server's detail is quoted */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v2/rerank", rr_srv_port(s));
    rp.top_n = 2;
    qs[0].n_results = 0;
    CHECK(rr_remote_rank(&rp, qs, 1, NULL, NULL) == RR_OK);
    CHECK_EQ_INT(qs[0].n_results, 2);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/nope/rerank", rr_srv_port(s));
    t0 = rr_now();
    CHECK(rr_remote_rank(&rp, qs, 1, NULL, NULL) == RR_ERR_NETWORK);
    CHECK(strstr(rr_errmsg(), "HTTP 404") && strstr(rr_errmsg(), "no route"));
    CHECK(rr_now() - t0 < 1.0);
    rp.url = "ftp://x";
    CHECK(rr_remote_rank(&rp, qs, 1, NULL, NULL) == RR_ERR_INVALID);

    /* max_windows travels as Cohere's max_chunks_per_doc: a long document keeps its first two windows */
    rr_buf huge = {0};
    for (int i = 0; i < 400; i++) rr_buf_printf(&huge, "line %d on foxes, capitals and passwords. ", i);
    rr_text hd[2] = {docs[0], {huge.data, huge.len}};
    rr_rank_result hg[2], hw[2];
    rr_remote_query hq = {.query = qs[0].query, .docs = hd, .n_docs = 2, .results = hg};
    snprintf(url, sizeof url, "http://127.0.0.1:%d", rr_srv_port(s));
    rp.url = url;
    rp.top_n = 0;
    rp.max_windows = 2;
    CHECK(rr_remote_rank(&rp, &hq, 1, NULL, NULL) == RR_OK);
    kp.max_windows = 2;
    int hn = 0;
    rr_usage hu = {0}, all = {0};
    REQUIRE(rr_rank(ctx, hq.query, hd, 2, &kp, hw, &hn, &hu) == RR_OK);
    CHECK_EQ_INT(hq.n_results, hn);
    CHECK_EQ_INT(hq.total_tokens, hu.total_tokens);
    for (int i = 0; i < hn && i < hq.n_results; i++) CHECK(hg[i].index == hw[i].index && hg[i].score == hw[i].score);
    kp.max_windows = 0;
    REQUIRE(rr_rank(ctx, hq.query, hd, 2, &kp, hw, &hn, &all) == RR_OK);
    CHECK(hu.total_tokens < all.total_tokens); /* more than two windows without the cap */
    rp.max_windows = 0;
    rr_buf_free(&huge);

    /* nothing listening: connection errors are retried, then reported */
    int port = rr_srv_port(s);
    rr_srv_free(s);
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    rp.url = url;
    rp.max_retries = 2;
    CHECK(rr_remote_rank(&rp, qs, 1, NULL, NULL) == RR_ERR_NETWORK);
    CHECK(strstr(rr_errmsg(), "retries exhausted") != NULL);
    rr_ctx_free(ctx);
    rr_model_free(m);
}

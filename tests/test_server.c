/*
 * test_server.c -- the server in-process on the random-weight XLM-R test model (with its tokenizer),
 * driven over loopback with libcurl: answers must equal rr_rank on the same input, whether requests
 * come one at a time or from many threads at once (cross-request batching must not change a score),
 * limits give their status, drain answers what is in flight, and the long-document fields (TEI
 * truncate, Cohere max_tokens_per_doc) give rr_rank's answer with the matching parameters. SKIPs
 * without the test model.
 */
#include "check.h"
#include "core/core.h"
#include "rerank_server.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>

static const char *model_dir(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT); /* before any thread makes a handle */
    const char *d = rr_test_data_path("models/xlmr_f32");
    char p[1200];
    snprintf(p, sizeof p, "%s/tokenizer.json", d);
    return rr_file_exists(p) ? d : NULL;
}

typedef struct http_res {
    long status;
    rr_buf body;
} http_res;

static size_t on_body(char *p, size_t sz, size_t n, void *ud) {
    rr_buf_append(ud, p, sz * n);
    return sz * n;
}

static void http_post(int port, const char *path, const char *body, const char *auth, http_res *out) {
    CURL *c = curl_easy_init();
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    if (auth) h = curl_slist_append(h, auth);
    memset(out, 0, sizeof *out);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &out->body);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
}

static const char *const QUERIES[] = {"how do I reset my password", "Wie setze ich mein Passwort zurück?",
                                      "capital of France"};
static const char *const DOCS[] = {
    "To reset your password open the settings page and choose forgot password.",
    "Paris is the capital and most populous city of France.",
    "Passwörter lassen sich in den Kontoeinstellungen zurücksetzen.",
    "東京は日本の首都です。",
    "",
    "The quick brown fox jumps over the lazy dog. ",
};
#define N_DOCS ((int)RR_ARRAY_LEN(DOCS))

/* A long document: forces several windows. */
static char *long_doc(void) {
    rr_buf b = {0};
    for (int i = 0; i < 300; i++) rr_buf_printf(&b, "sentence %d about passwords, capitals and foxes. ", i);
    return b.data;
}

static char *request_body(int q, const char *longd, int top_n) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", "test");
    cJSON_AddStringToObject(j, "query", QUERIES[q]);
    cJSON *a = cJSON_AddArrayToObject(j, "documents");
    for (int i = 0; i < N_DOCS; i++) cJSON_AddItemToArray(a, cJSON_CreateString(DOCS[i]));
    cJSON_AddItemToArray(a, cJSON_CreateString(longd));
    if (top_n) cJSON_AddNumberToObject(j, "top_n", top_n);
    cJSON_AddBoolToObject(j, "return_documents", 0);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

/* rr_rank's answer for query q over DOCS + the long document. */
static int expected(rr_ctx *ctx, int q, const char *longd, int top_n, rr_rank_result *res, long *tokens) {
    rr_text docs[N_DOCS + 1];
    for (int i = 0; i < N_DOCS; i++) docs[i] = (rr_text){DOCS[i], strlen(DOCS[i])};
    docs[N_DOCS] = (rr_text){longd, strlen(longd)};
    rr_rank_params p = rr_rank_default_params();
    p.top_n = top_n;
    int n = 0;
    rr_usage u = {0};
    if (rr_rank(ctx, (rr_text){QUERIES[q], strlen(QUERIES[q])}, docs, N_DOCS + 1, &p, res, &n, &u) != RR_OK) return -1;
    *tokens = u.total_tokens;
    return n;
}

/* Compares a /v1/rerank answer with rr_rank's results; returns the number of mismatches. */
static int compare(const char *body, const rr_rank_result *want, int n_want, long tokens) {
    cJSON *j = cJSON_Parse(body);
    if (!j) return 1000;
    int bad = 0;
    cJSON *res = cJSON_GetObjectItem(j, "results");
    if (cJSON_GetArraySize(res) != n_want) bad++;
    for (int k = 0; k < n_want && k < cJSON_GetArraySize(res); k++) {
        cJSON *r = cJSON_GetArrayItem(res, k);
        if (cJSON_GetObjectItem(r, "index")->valueint != want[k].index) bad++;
        if (fabs(cJSON_GetObjectItem(r, "relevance_score")->valuedouble - want[k].score) > 1e-6) bad++;
    }
    cJSON *usage = cJSON_GetObjectItem(j, "usage");
    if (!usage || (long)cJSON_GetObjectItem(usage, "total_tokens")->valuedouble != tokens) bad++;
    cJSON_Delete(j);
    return bad;
}

RR_TEST(server_matches_rr_rank) {
    const char *dir = model_dir();
    if (!dir) SKIP("test model xlmr_f32 with tokenizer not generated");
    rr_model *m;
    REQUIRE(rr_model_load(dir, rr_test_fp32(), &m) == RR_OK);
    rr_ctx *ctx;
    REQUIRE(rr_ctx_new(m, NULL, &ctx) == RR_OK);
    rr_srv_params p = rr_srv_default_params();
    p.port = 0;
    p.access_log = 0;
    p.engine.max_batch_tokens = 1024; /* several batches per request */
    rr_srv *s;
    REQUIRE(rr_srv_start(m, &p, &s) == RR_OK);
    int port = rr_srv_port(s);
    CHECK(port > 0);
    char *longd = long_doc();
    for (int q = 0; q < 3; q++) {
        for (int top = 0; top <= 3; top += 3) {
            rr_rank_result want[N_DOCS + 1];
            long tokens = 0;
            int n = expected(ctx, q, longd, top, want, &tokens);
            REQUIRE(n == (top ? top : N_DOCS + 1));
            char *body = request_body(q, longd, top);
            http_res r;
            http_post(port, "/v1/rerank", body, NULL, &r);
            CHECK_EQ_INT(r.status, 200);
            CHECK_MSG(compare(r.body.data, want, n, tokens) == 0, "query %d top %d: %s", q, top, r.body.data);
            rr_buf_free(&r.body);
            cJSON_free(body);
        }
    }
    rr_free(longd);
    rr_srv_free(s);
    rr_ctx_free(ctx);
    rr_model_free(m);
}

typedef struct client_arg {
    int port, q, bad;
    const char *longd;
    const rr_rank_result *want;
    int n_want;
    long tokens;
} client_arg;

static void *client_main(void *ud) {
    client_arg *a = ud;
    char *body = request_body(a->q, a->longd, 0);
    for (int i = 0; i < 4; i++) {
        http_res r;
        http_post(a->port, "/v1/rerank", body, NULL, &r);
        if (r.status != 200 || compare(r.body.data, a->want, a->n_want, a->tokens)) a->bad++;
        rr_buf_free(&r.body);
    }
    cJSON_free(body);
    return NULL;
}

RR_TEST(server_concurrent_requests_batch_without_changing_scores) {
    const char *dir = model_dir();
    if (!dir) SKIP("test model xlmr_f32 with tokenizer not generated");
    rr_model *m;
    REQUIRE(rr_model_load(dir, rr_test_fp32(), &m) == RR_OK);
    rr_ctx *ctx;
    REQUIRE(rr_ctx_new(m, NULL, &ctx) == RR_OK);
    char *longd = long_doc();
    rr_rank_result want[3][N_DOCS + 1];
    long tokens[3];
    int n[3];
    for (int q = 0; q < 3; q++) n[q] = expected(ctx, q, longd, 0, want[q], &tokens[q]);
    rr_srv_params p = rr_srv_default_params();
    p.port = 0;
    p.access_log = 0;
    rr_srv *s;
    REQUIRE(rr_srv_start(m, &p, &s) == RR_OK);
    enum { NT = 9 };
    pthread_t th[NT];
    client_arg a[NT];
    for (int t = 0; t < NT; t++) {
        a[t] = (client_arg){rr_srv_port(s), t % 3, 0, longd, want[t % 3], n[t % 3], tokens[t % 3]};
        pthread_create(&th[t], NULL, client_main, &a[t]);
    }
    for (int t = 0; t < NT; t++) {
        pthread_join(th[t], NULL);
        CHECK_EQ_INT(a[t].bad, 0);
    }
    CHECK_EQ_INT(rr_srv_drain(s, 30), 0);
    rr_srv_free(s);
    rr_free(longd);
    rr_ctx_free(ctx);
    rr_model_free(m);
}

RR_TEST(server_limits_and_auth) {
    const char *dir = model_dir();
    if (!dir) SKIP("test model xlmr_f32 with tokenizer not generated");
    rr_model *m;
    REQUIRE(rr_model_load(dir, rr_test_fp32(), &m) == RR_OK);
    rr_srv_params p = rr_srv_default_params();
    p.port = 0;
    p.access_log = 0;
    p.max_request_tokens = 200;
    p.max_docs = 3;
    p.api_key = "k3y";
    rr_srv *s;
    REQUIRE(rr_srv_start(m, &p, &s) == RR_OK);
    int port = rr_srv_port(s);
    http_res r;
    http_post(port, "/v1/rerank", "{\"query\":\"q\",\"documents\":[\"a\"]}", NULL, &r);
    CHECK_EQ_INT(r.status, 401);
    rr_buf_free(&r.body);
    http_post(port, "/v1/rerank", "{\"query\":\"q\",\"documents\":[\"a\"]}", "Authorization: Bearer k3y", &r);
    CHECK_EQ_INT(r.status, 200);
    rr_buf_free(&r.body);
    http_post(port, "/v1/rerank", "{\"query\":\"q\",\"documents\":[\"a\",\"b\",\"c\",\"d\"]}", "Authorization: Bearer k3y", &r);
    CHECK_EQ_INT(r.status, 413);
    CHECK(r.body.data && strstr(r.body.data, "--max-docs"));
    rr_buf_free(&r.body);
    char *longd = long_doc();
    char *body = rr_malloc(strlen(longd) + 64);
    sprintf(body, "{\"query\":\"q\",\"documents\":[\"%s\"]}", longd);
    http_post(port, "/v1/rerank", body, "Authorization: Bearer k3y", &r);
    CHECK_EQ_INT(r.status, 413);
    CHECK(r.body.data && strstr(r.body.data, "--max-request-tokens"));
    rr_buf_free(&r.body);
    rr_free(body);
    rr_free(longd);
    rr_srv_free(s);
    rr_model_free(m);
}

/* The connection-edge parameters: an empty key and a body budget below one body are refused at
 * start; the budget is given back by every request (sequential requests, declared or chunked, that
 * together pass it are all answered), and strict JSON holds over HTTP. The attacks themselves are in
 * tests/suite_hostile.sh. */
RR_TEST(server_edge_params_and_body_budget) {
    const char *dir = model_dir();
    if (!dir) SKIP("test model xlmr_f32 with tokenizer not generated");
    rr_model *m;
    REQUIRE(rr_model_load(dir, NULL, &m) == RR_OK);
    rr_srv_params p = rr_srv_default_params();
    p.port = 0;
    p.access_log = 0;
    rr_srv *s = NULL;
    p.api_key = "";
    CHECK(rr_srv_start(m, &p, &s) == RR_ERR_INVALID);
    CHECK(strstr(rr_errmsg(), "empty") != NULL);
    p.api_key = NULL;
    p.max_request_bytes = 4000;
    p.max_buffered_bytes = 3999;
    CHECK(rr_srv_start(m, &p, &s) == RR_ERR_INVALID);
    p.max_buffered_bytes = 4000;
    REQUIRE(rr_srv_start(m, &p, &s) == RR_OK);
    int port = rr_srv_port(s);
    char body[3000];
    int n = snprintf(body, sizeof body, "{\"query\":\"q\",\"documents\":[\"");
    memset(body + n, 'a', 2500);
    snprintf(body + n + 2500, sizeof body - (size_t)n - 2500, "\"]}");
    int ok = 0;
    for (int i = 0; i < 6; i++) { /* 6 x 2.5 KB through a 4 KB budget */
        http_res r;
        http_post(port, "/v1/rerank", body, i % 2 ? "Transfer-Encoding: chunked" : NULL, &r);
        ok += r.status == 200;
        rr_buf_free(&r.body);
    }
    CHECK_EQ_INT(ok, 6);
    http_res r;
    http_post(port, "/v1/rerank", "{\"query\":\"q\",\"documents\":[\"a\"],\"query\":\"x\"}", NULL, &r);
    CHECK_EQ_INT(r.status, 400);
    CHECK(r.body.data && strstr(r.body.data, "duplicate key"));
    rr_buf_free(&r.body);
    rr_srv_free(s);
    rr_model_free(m);
}

/* ------------------------------------------------------------------ long-document fields */

/* Compares a TEI answer (bare array of {index, score}) with rr_rank's results. */
static int compare_tei(const char *body, const rr_rank_result *want, int n_want) {
    cJSON *j = cJSON_Parse(body);
    if (!cJSON_IsArray(j)) {
        cJSON_Delete(j);
        return 1000;
    }
    int bad = cJSON_GetArraySize(j) != n_want;
    for (int k = 0; k < n_want && k < cJSON_GetArraySize(j); k++) {
        cJSON *r = cJSON_GetArrayItem(j, k);
        if (cJSON_GetObjectItem(r, "index")->valueint != want[k].index) bad++;
        if (fabs(cJSON_GetObjectItem(r, "score")->valuedouble - want[k].score) > 1e-6) bad++;
    }
    cJSON_Delete(j);
    return bad;
}

/* TEI truncate / truncation_direction and Cohere v2 max_tokens_per_doc (default 4096) give what
 * rr_rank gives with the matching rr_rank_params, and differ from plain windowing where they should. */
RR_TEST(server_truncation_fields_match_rr_rank) {
    const char *dir = model_dir();
    if (!dir) SKIP("test model xlmr_f32 with tokenizer not generated");
    rr_model *m;
    REQUIRE(rr_model_load(dir, rr_test_fp32(), &m) == RR_OK);
    rr_ctx *ctx;
    REQUIRE(rr_ctx_new(m, NULL, &ctx) == RR_OK);
    rr_srv_params sp = rr_srv_default_params();
    sp.port = 0;
    sp.access_log = 0;
    rr_srv *s;
    REQUIRE(rr_srv_start(m, &sp, &s) == RR_OK);
    int port = rr_srv_port(s);

    /* short documents, one of about 3,500 tokens and one of about 7,000 (past Cohere's 4096) */
    rr_buf huge = {0};
    for (int i = 0; i < 600; i++) rr_buf_printf(&huge, "line %d on foxes, capitals and passwords. ", i);
    char *longd = long_doc();
    enum { ND = N_DOCS + 2 };
    rr_text docs[ND];
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < N_DOCS; i++) docs[i] = (rr_text){DOCS[i], strlen(DOCS[i])};
    docs[N_DOCS] = (rr_text){longd, strlen(longd)};
    docs[N_DOCS + 1] = (rr_text){huge.data, huge.len};
    for (int i = 0; i < ND; i++) cJSON_AddItemToArray(arr, cJSON_CreateString(docs[i].text));
    char *docs_json = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    const char *q = QUERIES[2];

    static const struct {
        const char *path, *fields;
        rr_long_doc long_doc;
        int max_doc, tei, max_win;
    } cases[] = {
        {"/rerank", "\"truncate\":true", RR_LONG_DOC_TRUNCATE_RIGHT, 0, 1, 0},
        {"/rerank", "\"truncate\":true,\"truncation_direction\":\"Left\"", RR_LONG_DOC_TRUNCATE_LEFT, 0, 1, 0},
        {"/rerank", "\"truncate\":false,\"truncation_direction\":\"Left\"", RR_LONG_DOC_WINDOW, 0, 1, 0},
        {"/v2/rerank", "\"model\":\"m\"", RR_LONG_DOC_WINDOW, 4096, 0, 0},
        {"/v2/rerank", "\"max_tokens_per_doc\":100", RR_LONG_DOC_WINDOW, 100, 0, 0},
        {"/v1/rerank", "\"return_documents\":false", RR_LONG_DOC_WINDOW, 0, 0, 0},
        {"/v1/rerank", "\"max_chunks_per_doc\":2", RR_LONG_DOC_WINDOW, 0, 0, 2},
    };
    float best_long[RR_ARRAY_LEN(cases)] = {0};
    long tokens_of[RR_ARRAY_LEN(cases)] = {0};
    for (size_t k = 0; k < RR_ARRAY_LEN(cases); k++) {
        rr_rank_params p = rr_rank_default_params();
        p.long_doc = cases[k].long_doc;
        p.max_doc_tokens = cases[k].max_doc;
        p.max_windows = cases[k].max_win;
        rr_rank_result want[ND];
        int n = 0;
        rr_usage u = {0};
        REQUIRE(rr_rank(ctx, (rr_text){q, strlen(q)}, docs, ND, &p, want, &n, &u) == RR_OK);
        tokens_of[k] = u.total_tokens;
        for (int i = 0; i < n; i++)
            if (want[i].index == ND - 1) best_long[k] = want[i].score;
        rr_buf body = {0};
        rr_buf_printf(&body, "{\"query\":\"%s\",\"%s\":%s,%s}", q, cases[k].tei ? "texts" : "documents", docs_json,
                      cases[k].fields);
        http_res r;
        http_post(port, cases[k].path, body.data, NULL, &r);
        CHECK_EQ_INT(r.status, 200);
        int bad = cases[k].tei ? compare_tei(r.body.data, want, n) : compare(r.body.data, want, n, u.total_tokens);
        CHECK_MSG(bad == 0, "%s %s: %.300s", cases[k].path, cases[k].fields, r.body.data ? r.body.data : "");
        rr_buf_free(&r.body);
        rr_buf_free(&body);
    }
    /* the modes really differ on the long documents */
    CHECK(best_long[0] != best_long[1]);
    CHECK(tokens_of[0] < tokens_of[2]);
    CHECK(tokens_of[3] < tokens_of[5]); /* v2's default cap cut the 7,000-token document */
    CHECK(tokens_of[4] < tokens_of[3]);
    CHECK(tokens_of[6] < tokens_of[5]); /* two windows each at most, against all of them */
    cJSON_free(docs_json);
    rr_buf_free(&huge);
    rr_free(longd);
    rr_srv_free(s);
    rr_ctx_free(ctx);
    rr_model_free(m);
}

/*
 * test_srv_request.c -- the server's JSON dialects without a server (src/server/request.c): every
 * shape clients send (spec/api.md §0), every bad input with its status and message, response
 * bodies for V1/V2/TEI, error bodies, auth comparison and the metrics page.
 */
#include "check.h"
#include "core/core.h"
#include "server/metrics.h"
#include "server/request.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdlib.h>

static int parse(const char *body, rr_srv_api api, rr_srv_request *r, char *err) {
    rr_srv_limits lim = {5};
    return rr_srv_parse(body, strlen(body), api, &lim, r, err, 512);
}

static int status_of(const char *body, rr_srv_api api, const char *needle) {
    rr_srv_request r;
    char err[512];
    int st = parse(body, api, &r, err);
    if (st == 0) rr_srv_request_free(&r);
    else if (needle && !strstr(err, needle)) {
        printf("    message \"%s\" lacks \"%s\"\n", err, needle);
        return -1;
    }
    return st;
}

static int text_is(rr_text t, const char *s) { return t.len == strlen(s) && !memcmp(t.text, s, t.len); }

RR_TEST(srv_parse_jina_and_cohere_shapes) {
    rr_srv_request r;
    char err[512];
    REQUIRE(parse("{\"model\":\"m\",\"query\":\"q\",\"documents\":[\"a\",{\"text\":\"b\",\"title\":\"t\"}],"
                  "\"top_n\":null,\"max_chunks_per_doc\":null}",
                  RR_SRV_API_V1, &r, err) == 0);
    CHECK_EQ_INT(r.api, RR_SRV_API_V1);
    CHECK(text_is(r.query, "q"));
    CHECK_EQ_INT(r.n_docs, 2);
    CHECK(text_is(r.docs[0], "a"));
    CHECK(text_is(r.docs[1], "b"));
    CHECK_EQ_INT(r.top_n, 0);
    CHECK_EQ_INT(r.return_documents, 1); /* Jina default */
    CHECK_EQ_INT(r.raw_scores, 0);
    rr_srv_request_free(&r);

    /* query as {text}, top_n larger than n, return_documents false, raw_scores */
    REQUIRE(parse("{\"query\":{\"text\":\"qq\"},\"documents\":[\"a\",\"b\",\"c\"],\"top_n\":7,"
                  "\"return_documents\":false,\"raw_scores\":true}",
                  RR_SRV_API_V1, &r, err) == 0);
    CHECK(text_is(r.query, "qq"));
    CHECK_EQ_INT(r.top_n, 0);
    CHECK_EQ_INT(r.return_documents, 0);
    CHECK_EQ_INT(r.raw_scores, 1);
    rr_srv_request_free(&r);

    REQUIRE(parse("{\"query\":\"q\",\"documents\":[\"a\",\"b\",\"c\"],\"top_n\":2}", RR_SRV_API_V2, &r, err) == 0);
    CHECK_EQ_INT(r.top_n, 2);
    CHECK_EQ_INT(r.return_documents, 0); /* Cohere v2 returns no documents */
    rr_srv_request_free(&r);

    /* huge top_n means all; top_n 0 means all */
    REQUIRE(parse("{\"query\":\"q\",\"documents\":[\"a\",\"b\"],\"top_n\":1e300}", RR_SRV_API_V1, &r, err) == 0);
    CHECK_EQ_INT(r.top_n, 0);
    rr_srv_request_free(&r);
    REQUIRE(parse("{\"query\":\"q\",\"documents\":[\"a\",\"b\"],\"top_n\":0}", RR_SRV_API_V1, &r, err) == 0);
    CHECK_EQ_INT(r.top_n, 0);
    rr_srv_request_free(&r);

    /* empty documents: valid, no results */
    REQUIRE(parse("{\"query\":\"q\",\"documents\":[]}", RR_SRV_API_V1, &r, err) == 0);
    CHECK_EQ_INT(r.n_docs, 0);
    rr_srv_request_free(&r);
}

RR_TEST(srv_parse_rank_fields) {
    rr_srv_request r;
    char err[512];
    REQUIRE(parse("{\"query\":\"q\",\"documents\":[{\"title\":\"T\",\"body\":\"B\",\"n\":3},\"plain\"],"
                  "\"rank_fields\":[\"title\",\"body\",\"missing\"]}",
                  RR_SRV_API_V1, &r, err) == 0);
    CHECK(text_is(r.docs[0], "title: T\nbody: B"));
    CHECK(text_is(r.docs[1], "plain"));
    rr_srv_request_free(&r);
}

RR_TEST(srv_parse_tei_and_auto) {
    rr_srv_request r;
    char err[512];
    REQUIRE(parse("{\"query\":\"q\",\"texts\":[\"x\",\"y\"],\"raw_scores\":true,\"return_text\":true,"
                  "\"truncate\":false,\"truncation_direction\":\"Left\"}",
                  RR_SRV_API_AUTO, &r, err) == 0);
    CHECK_EQ_INT(r.api, RR_SRV_API_TEI);
    CHECK_EQ_INT(r.n_docs, 2);
    CHECK_EQ_INT(r.raw_scores, 1);
    CHECK_EQ_INT(r.return_documents, 1);
    rr_srv_request_free(&r);
    REQUIRE(parse("{\"query\":\"q\",\"documents\":[\"x\"]}", RR_SRV_API_AUTO, &r, err) == 0);
    CHECK_EQ_INT(r.api, RR_SRV_API_V1);
    rr_srv_request_free(&r);
    REQUIRE(parse("{\"query\":\"q\",\"texts\":[\"x\"]}", RR_SRV_API_AUTO, &r, err) == 0);
    CHECK_EQ_INT(r.return_documents, 0); /* TEI return_text defaults to false */
    rr_srv_request_free(&r);
}

RR_TEST(srv_parse_bad_inputs) {
    CHECK_EQ_INT(status_of("", RR_SRV_API_V1, "empty"), 400);
    CHECK_EQ_INT(status_of("{\"query\":", RR_SRV_API_V1, "invalid JSON"), 400);
    CHECK_EQ_INT(status_of("{\"query\":\"q\",}", RR_SRV_API_V1, "invalid JSON"), 400);
    CHECK_EQ_INT(status_of("[1,2]", RR_SRV_API_V1, "JSON object"), 422);
    CHECK_EQ_INT(status_of("{\"documents\":[\"a\"]}", RR_SRV_API_V1, "\"query\""), 422);
    CHECK_EQ_INT(status_of("{\"query\":null,\"documents\":[\"a\"]}", RR_SRV_API_V1, "\"query\""), 422);
    CHECK_EQ_INT(status_of("{\"query\":5,\"documents\":[\"a\"]}", RR_SRV_API_V1, "must be a string"), 422);
    CHECK_EQ_INT(status_of("{\"query\":{\"t\":1},\"documents\":[\"a\"]}", RR_SRV_API_V1, "\"text\""), 422);
    CHECK_EQ_INT(status_of("{\"query\":\"q\"}", RR_SRV_API_V1, "\"documents\""), 422);
    CHECK_EQ_INT(status_of("{\"query\":\"q\",\"documents\":\"a\"}", RR_SRV_API_V1, "must be an array"), 422);
    CHECK_EQ_INT(status_of("{\"query\":\"q\",\"documents\":[\"a\",3]}", RR_SRV_API_V1, "documents[1]"), 422);
    CHECK_EQ_INT(status_of("{\"query\":\"q\",\"documents\":[{\"title\":\"a\"}]}", RR_SRV_API_V1, "documents[0]"), 422);
    CHECK_EQ_INT(status_of("{\"query\":\"q\",\"texts\":[{\"text\":\"a\"}]}", RR_SRV_API_AUTO, "texts[0]"), 422);
    CHECK_EQ_INT(status_of("{\"query\":\"q\",\"texts\":[\"a\"]}", RR_SRV_API_V1, "\"documents\""), 422);
    CHECK_EQ_INT(status_of("{\"query\":\"q\",\"documents\":[\"a\"],\"top_n\":-1}", RR_SRV_API_V1, "top_n"), 422);
    CHECK_EQ_INT(status_of("{\"query\":\"q\",\"documents\":[\"a\"],\"top_n\":1.5}", RR_SRV_API_V1, "top_n"), 422);
    CHECK_EQ_INT(status_of("{\"query\":\"q\",\"documents\":[\"a\"],\"top_n\":\"2\"}", RR_SRV_API_V1, "top_n"), 422);
    CHECK_EQ_INT(status_of("{\"query\":\"q\",\"documents\":[\"a\"],\"return_documents\":\"yes\"}", RR_SRV_API_V1,
                           "return_documents"),
                 422);
    CHECK_EQ_INT(status_of("{\"query\":\"q\",\"documents\":[\"a\"],\"model\":7}", RR_SRV_API_V1, "model"), 422);
    CHECK_EQ_INT(status_of("{\"query\":\"q\",\"documents\":[\"a\"],\"rank_fields\":\"x\"}", RR_SRV_API_V1,
                           "rank_fields"),
                 422);
    CHECK_EQ_INT(status_of("{\"query\":\"q\",\"documents\":[\"a\"],\"max_tokens_per_doc\":0}", RR_SRV_API_V2,
                           "max_tokens_per_doc"),
                 422);
    static const char *const bad_chunks[] = {"0", "2.5", "\"3\""}; /* not a count of windows */
    for (size_t i = 0; i < RR_ARRAY_LEN(bad_chunks); i++) {
        char body[96];
        snprintf(body, sizeof body, "{\"query\":\"q\",\"documents\":[\"a\"],\"max_chunks_per_doc\":%s}", bad_chunks[i]);
        CHECK_EQ_INT(status_of(body, RR_SRV_API_V1, "max_chunks_per_doc"), 422);
    }
    CHECK_EQ_INT(status_of("{\"query\":\"q\",\"texts\":[\"a\"],\"truncation_direction\":\"up\"}", RR_SRV_API_AUTO,
                           "truncation_direction"),
                 422);
    /* limits: the test limit is 5 documents */
    CHECK_EQ_INT(status_of("{\"query\":\"q\",\"documents\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\"]}", RR_SRV_API_V1,
                           "too many documents: 6"),
                 413);
    CHECK_EQ_INT(status_of("{\"query\":\"q\",\"documents\":[\"1\",\"2\",\"3\",\"4\",\"5\"]}", RR_SRV_API_V1, NULL), 0);
}

/* The long-document fields reach the request: TEI truncate + direction pick the mode (windows when
 * truncate is false, the model's rule when it is missing; Cohere's max_chunks_per_doc asks for windows), Cohere's max_tokens_per_doc is the cap (4096 by default on v2, none
 * on v1 unless sent), and wrong types or ranges are 422s naming the field. */
RR_TEST(srv_parse_truncation_fields) {
    static const struct {
        const char *body;
        rr_srv_api api;
        int long_doc, max_doc;
    } ok[] = {
        {"{\"query\":\"q\",\"texts\":[\"a\"]}", RR_SRV_API_AUTO, RR_LONG_DOC_AUTO, 0},
        {"{\"query\":\"q\",\"texts\":[\"a\"],\"truncate\":false,\"truncation_direction\":\"Left\"}", RR_SRV_API_AUTO,
         RR_LONG_DOC_WINDOW, 0},
        {"{\"query\":\"q\",\"texts\":[\"a\"],\"truncate\":null}", RR_SRV_API_AUTO, RR_LONG_DOC_AUTO, 0},
        {"{\"query\":\"q\",\"texts\":[\"a\"],\"truncate\":true}", RR_SRV_API_AUTO, RR_LONG_DOC_TRUNCATE_RIGHT, 0},
        {"{\"query\":\"q\",\"texts\":[\"a\"],\"truncate\":true,\"truncation_direction\":\"Right\"}", RR_SRV_API_AUTO,
         RR_LONG_DOC_TRUNCATE_RIGHT, 0},
        {"{\"query\":\"q\",\"texts\":[\"a\"],\"truncate\":true,\"truncation_direction\":\"Left\"}", RR_SRV_API_AUTO,
         RR_LONG_DOC_TRUNCATE_LEFT, 0},
        {"{\"query\":\"q\",\"texts\":[\"a\"],\"truncate\":true,\"truncation_direction\":\"left\"}", RR_SRV_API_AUTO,
         RR_LONG_DOC_TRUNCATE_LEFT, 0},
        {"{\"query\":\"q\",\"texts\":[\"a\"],\"truncate\":true,\"truncation_direction\":null}", RR_SRV_API_AUTO,
         RR_LONG_DOC_TRUNCATE_RIGHT, 0},
        /* TEI has no max_tokens_per_doc: ignored there */
        {"{\"query\":\"q\",\"texts\":[\"a\"],\"max_tokens_per_doc\":5}", RR_SRV_API_AUTO, RR_LONG_DOC_AUTO, 0},
        {"{\"query\":\"q\",\"documents\":[\"a\"]}", RR_SRV_API_V2, RR_LONG_DOC_AUTO, 4096},
        {"{\"query\":\"q\",\"documents\":[\"a\"],\"max_tokens_per_doc\":null}", RR_SRV_API_V2, RR_LONG_DOC_AUTO, 4096},
        {"{\"query\":\"q\",\"documents\":[\"a\"],\"max_tokens_per_doc\":512}", RR_SRV_API_V2, RR_LONG_DOC_AUTO, 512},
        {"{\"query\":\"q\",\"documents\":[\"a\"],\"max_tokens_per_doc\":1e300}", RR_SRV_API_V2, RR_LONG_DOC_AUTO,
         INT_MAX},
        {"{\"query\":\"q\",\"documents\":[\"a\"]}", RR_SRV_API_V1, RR_LONG_DOC_AUTO, 0},
        {"{\"query\":\"q\",\"documents\":[\"a\"],\"max_tokens_per_doc\":7}", RR_SRV_API_V1, RR_LONG_DOC_AUTO, 7},
        /* truncate is TEI's: the Jina/Cohere shapes keep the model's rule */
        {"{\"query\":\"q\",\"documents\":[\"a\"],\"truncate\":true}", RR_SRV_API_V1, RR_LONG_DOC_AUTO, 0},
        /* Cohere v1's chunks are windows */
        {"{\"query\":\"q\",\"documents\":[\"a\"],\"max_chunks_per_doc\":3}", RR_SRV_API_V1, RR_LONG_DOC_WINDOW, 0},
        {"{\"query\":\"q\",\"documents\":[\"a\"],\"max_chunks_per_doc\":1e300}", RR_SRV_API_V1, RR_LONG_DOC_WINDOW, 0},
        {"{\"query\":\"q\",\"documents\":[\"a\"],\"max_chunks_per_doc\":null}", RR_SRV_API_V1, RR_LONG_DOC_AUTO, 0},
    };
    for (size_t i = 0; i < RR_ARRAY_LEN(ok); i++) {
        rr_srv_request r;
        char err[512];
        int st = parse(ok[i].body, ok[i].api, &r, err);
        CHECK_MSG(st == 0, "%s: %d %s", ok[i].body, st, err);
        if (st) continue;
        CHECK_MSG((int)r.long_doc == ok[i].long_doc && r.max_doc_tokens == ok[i].max_doc, "%s: long_doc %d max_doc %d",
                  ok[i].body, (int)r.long_doc, r.max_doc_tokens);
        /* max_chunks_per_doc is the count of windows a document keeps; missing or null: all of them */
        const char *mc = strstr(ok[i].body, "\"max_chunks_per_doc\":");
        int want_w = !mc ? 0 : !strncmp(mc + 21, "null", 4) ? 0 : !strncmp(mc + 21, "1e300", 5) ? INT_MAX : atoi(mc + 21);
        CHECK_MSG(r.max_windows == want_w, "%s: max_windows %d, want %d", ok[i].body, r.max_windows, want_w);
        rr_srv_request_free(&r);
    }
    static const struct {
        const char *body;
        rr_srv_api api;
        const char *needle;
    } bad[] = {
        {"{\"query\":\"q\",\"texts\":[\"a\"],\"truncate\":\"yes\"}", RR_SRV_API_AUTO, "\"truncate\" must be a boolean"},
        {"{\"query\":\"q\",\"texts\":[\"a\"],\"truncate\":1}", RR_SRV_API_AUTO, "truncate"},
        {"{\"query\":\"q\",\"texts\":[\"a\"],\"truncate\":true,\"truncation_direction\":\"middle\"}", RR_SRV_API_AUTO,
         "truncation_direction"},
        {"{\"query\":\"q\",\"texts\":[\"a\"],\"truncation_direction\":1}", RR_SRV_API_AUTO, "truncation_direction"},
        {"{\"query\":\"q\",\"documents\":[\"a\"],\"max_tokens_per_doc\":-1}", RR_SRV_API_V2, "max_tokens_per_doc"},
        {"{\"query\":\"q\",\"documents\":[\"a\"],\"max_tokens_per_doc\":2.5}", RR_SRV_API_V2, "max_tokens_per_doc"},
        {"{\"query\":\"q\",\"documents\":[\"a\"],\"max_tokens_per_doc\":\"100\"}", RR_SRV_API_V2, "max_tokens_per_doc"},
        {"{\"query\":\"q\",\"documents\":[\"a\"],\"max_tokens_per_doc\":true}", RR_SRV_API_V1, "max_tokens_per_doc"},
    };
    for (size_t i = 0; i < RR_ARRAY_LEN(bad); i++)
        CHECK_MSG(status_of(bad[i].body, bad[i].api, bad[i].needle) == 422, "%s", bad[i].body);
}

RR_TEST(srv_parse_invalid_utf8) {
    CHECK_EQ_INT(status_of("{\"query\":\"q\",\"documents\":[\"ok\",\"bad \xff here\"]}", RR_SRV_API_V1,
                           "documents[1]"),
                 400);
    CHECK_EQ_INT(status_of("{\"query\":\"\xc3\x28\",\"documents\":[\"a\"]}", RR_SRV_API_V1, "query"), 400);
    /* overlong encoding and a UTF-8-encoded surrogate */
    CHECK_EQ_INT(status_of("{\"query\":\"\xc0\xaf\",\"documents\":[\"a\"]}", RR_SRV_API_V1, "UTF-8"), 400);
    CHECK_EQ_INT(status_of("{\"query\":\"\xed\xa0\x80\",\"documents\":[\"a\"]}", RR_SRV_API_V1, "UTF-8"), 400);
    CHECK_EQ_INT(status_of("{\"query\":\"q\",\"documents\":[{\"text\":\"a\",\"t\xfe\":1}]}", RR_SRV_API_V1, "UTF-8"),
                 400);
    /* valid multilingual text and escapes pass */
    CHECK_EQ_INT(status_of("{\"query\":\"k\xc3\xb6ln \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80\","
                           "\"documents\":[\"\\u00e9\\ud83d\\ude00\"]}",
                           RR_SRV_API_V1, NULL),
                 0);
}

RR_TEST(srv_format_v1_v2_tei) {
    rr_srv_request r;
    char err[512];
    REQUIRE(parse("{\"query\":\"q\",\"documents\":[\"a \\\"quoted\\\"\",{\"text\":\"b\",\"title\":\"t\",\"n\":2}]}",
                  RR_SRV_API_V1, &r, err) == 0);
    rr_rank_result res[2] = {{1, 0.75f}, {0, 0.25f}};
    rr_buf b = {0};
    rr_srv_format_results(&b, &r, "my-model", "rerank-1", res, 2, 42);
    cJSON *j = cJSON_Parse(b.data);
    REQUIRE(j != NULL);
    CHECK(!strcmp(cJSON_GetObjectItem(j, "model")->valuestring, "my-model"));
    CHECK(!strcmp(cJSON_GetObjectItem(j, "id")->valuestring, "rerank-1"));
    cJSON *usage = cJSON_GetObjectItem(j, "usage");
    CHECK_EQ_INT(cJSON_GetObjectItem(usage, "total_tokens")->valueint, 42);
    CHECK_EQ_INT(cJSON_GetObjectItem(usage, "prompt_tokens")->valueint, 42);
    cJSON *results = cJSON_GetObjectItem(j, "results");
    CHECK_EQ_INT(cJSON_GetArraySize(results), 2);
    cJSON *r0 = cJSON_GetArrayItem(results, 0);
    CHECK_EQ_INT(cJSON_GetObjectItem(r0, "index")->valueint, 1);
    CHECK_NEAR(cJSON_GetObjectItem(r0, "relevance_score")->valuedouble, 0.75, 1e-7);
    cJSON *d0 = cJSON_GetObjectItem(r0, "document");
    CHECK(!strcmp(cJSON_GetObjectItem(d0, "text")->valuestring, "b"));
    CHECK(!strcmp(cJSON_GetObjectItem(d0, "title")->valuestring, "t")); /* other fields preserved */
    cJSON *d1 = cJSON_GetObjectItem(cJSON_GetArrayItem(results, 1), "document");
    CHECK(!strcmp(cJSON_GetObjectItem(d1, "text")->valuestring, "a \"quoted\""));
    cJSON_Delete(j);
    rr_buf_free(&b);
    rr_srv_request_free(&r);

    REQUIRE(parse("{\"query\":\"q\",\"documents\":[\"a\",\"b\"]}", RR_SRV_API_V2, &r, err) == 0);
    rr_srv_format_results(&b, &r, "m", "id", res, 1, 7);
    j = cJSON_Parse(b.data);
    REQUIRE(j != NULL);
    results = cJSON_GetObjectItem(j, "results");
    CHECK_EQ_INT(cJSON_GetArraySize(results), 1);
    CHECK(cJSON_GetObjectItem(cJSON_GetArrayItem(results, 0), "document") == NULL);
    CHECK(cJSON_GetObjectItem(j, "usage") != NULL);
    cJSON_Delete(j);
    rr_buf_free(&b);
    rr_srv_request_free(&r);

    REQUIRE(parse("{\"query\":\"q\",\"texts\":[\"a\",\"b\"],\"return_text\":true}", RR_SRV_API_AUTO, &r, err) == 0);
    rr_srv_format_results(&b, &r, "m", "id", res, 2, 7);
    j = cJSON_Parse(b.data);
    REQUIRE(cJSON_IsArray(j));
    r0 = cJSON_GetArrayItem(j, 0);
    CHECK_EQ_INT(cJSON_GetObjectItem(r0, "index")->valueint, 1);
    CHECK_NEAR(cJSON_GetObjectItem(r0, "score")->valuedouble, 0.75, 1e-7);
    CHECK(!strcmp(cJSON_GetObjectItem(r0, "text")->valuestring, "b"));
    cJSON_Delete(j);
    rr_buf_free(&b);
    rr_srv_request_free(&r);
}

RR_TEST(srv_error_body_has_every_field) {
    rr_buf b = {0};
    rr_srv_format_error(&b, 429, "busy \"now\"");
    cJSON *j = cJSON_Parse(b.data);
    REQUIRE(j != NULL);
    CHECK(!strcmp(cJSON_GetObjectItem(j, "detail")->valuestring, "busy \"now\""));
    CHECK(!strcmp(cJSON_GetObjectItem(j, "message")->valuestring, "busy \"now\""));
    CHECK(!strcmp(cJSON_GetObjectItem(j, "error")->valuestring, "busy \"now\""));
    CHECK(!strcmp(cJSON_GetObjectItem(j, "error_type")->valuestring, "overloaded"));
    CHECK_EQ_INT(cJSON_GetObjectItem(j, "code")->valueint, 429);
    cJSON_Delete(j);
    rr_buf_free(&b);
}

RR_TEST(srv_auth_compare) {
    CHECK(rr_srv_auth_ok("Bearer secret", "secret"));
    CHECK(rr_srv_auth_ok("bearer secret", "secret"));
    CHECK(!rr_srv_auth_ok("Bearer secret2", "secret"));
    CHECK(!rr_srv_auth_ok("Bearer secre", "secret"));
    CHECK(!rr_srv_auth_ok("Bearer ", "secret"));
    CHECK(!rr_srv_auth_ok("Basic secret", "secret"));
    CHECK(!rr_srv_auth_ok("secret", "secret"));
    CHECK(!rr_srv_auth_ok(NULL, "secret"));
}

RR_TEST(srv_parse_alloc_failures) {
    const char *body = "{\"query\":\"q\",\"documents\":[\"a\",{\"text\":\"b\",\"x\":[1,2]},{\"t\":\"c\",\"text\":\"d\"}],"
                       "\"rank_fields\":[\"t\",\"text\"],\"top_n\":2}";
    for (long n = 1; n < 200; n++) {
        rr_alloc_fail_after(n);
        rr_srv_request r;
        char err[512];
        int st = parse(body, RR_SRV_API_V1, &r, err);
        rr_alloc_fail_after(0);
        if (st == 0) {
            CHECK_EQ_INT(r.n_docs, 3);
            rr_srv_request_free(&r);
            break;
        }
        CHECK_MSG(st == 500, "allocation %ld: status %d (%s)", n, st, err);
    }
}

RR_TEST(srv_metrics_page) {
    static const char *const routes[] = {"/v1/rerank", "/health"};
    rr_srv_metrics m;
    rr_srv_metrics_init(&m, routes, 2);
    rr_srv_metrics_request(&m, 0, 200, 0.02, 0.001, 3, 120);
    rr_srv_metrics_request(&m, 0, 200, 0.2, 0.001, 2, 80);
    rr_srv_metrics_request(&m, 0, 429, 0.001, 0, 0, 0);
    rr_srv_metrics_request(&m, 1, 200, -1, 0, 0, 0);
    rr_buf b = {0};
    rr_srv_metrics_render(&m, NULL, &b);
    REQUIRE(b.data != NULL);
    CHECK(strstr(b.data, "rerank_requests_total{route=\"/v1/rerank\",code=\"200\"} 2\n") != NULL);
    CHECK(strstr(b.data, "rerank_requests_total{route=\"/v1/rerank\",code=\"429\"} 1\n") != NULL);
    CHECK(strstr(b.data, "rerank_requests_total{route=\"/health\",code=\"200\"} 1\n") != NULL);
    CHECK(strstr(b.data, "rerank_request_errors_total{code=\"429\"} 1\n") != NULL);
    CHECK(strstr(b.data, "rerank_tokens_total 200\n") != NULL);
    CHECK(strstr(b.data, "rerank_documents_total 5\n") != NULL);
    /* cumulative buckets: 0.001 and 0.02 are <= 0.025, all three <= 0.25 */
    CHECK(strstr(b.data, "rerank_request_duration_seconds_bucket{le=\"0.025\"} 2\n") != NULL);
    CHECK(strstr(b.data, "rerank_request_duration_seconds_bucket{le=\"0.25\"} 3\n") != NULL);
    CHECK(strstr(b.data, "rerank_request_duration_seconds_bucket{le=\"+Inf\"} 3\n") != NULL);
    CHECK(strstr(b.data, "rerank_request_duration_seconds_count 3\n") != NULL);
    rr_buf_free(&b);
    rr_srv_metrics_destroy(&m);
}

RR_TEST(srv_parse_strict_json) {
    /* each case: a document cJSON alone accepts, refused with 400 and the path of the fault */
    static const struct {
        const char *body;
        size_t len; /* 0: strlen */
        const char *needle;
    } bad[] = {
        {"{\"query\":\"q\",\"documents\":[\"a\\u0000b\"]}", 0, "documents[0]"},
        {"{\"query\":\"q\",\"documents\":[\"a\"]} trailing", 0, "trailing data"},
        {"{\"query\":\"q\",\"documents\":[\"a\"]}{\"query\":\"x\"}", 0, "second JSON value"},
        {"{\"query\":\"q\",\"documents\":[\"a\tb\"]}", 0, "raw control character"},
        {"{\"query\":\"q\",\"documents\":[{\"text\":\"a\nb\"}]}", 0, "documents[0].text"},
        {"{\"query\":\"q\",\"query\":\"x\",\"documents\":[\"a\"]}", 0, "duplicate key at \"query\""},
        {"{\"query\":\"q\",\"documents\":[{\"text\":\"a\",\"text\":\"b\"}]}", 0, "documents[0].text"},
        {"{\"query\":\"q\",\"documents\":[\"a\"],\"x\":01}", 0, "expected ','"},
        {"{\"query\":\"q\",\"documents\":[\"a\"],\"x\":1.}", 0, "x"},
        {"{\"query\":\"q\",\"documents\":[\"a\0b\"]}", 31, "documents[0]"},
        {"{\"query\":\"q\",\"documents\":[\"a\"]}\0", 32, "trailing data"},
    };
    for (size_t i = 0; i < RR_ARRAY_LEN(bad); i++) {
        rr_srv_request r;
        char err[512];
        rr_srv_limits lim = {5};
        size_t len = bad[i].len ? bad[i].len : strlen(bad[i].body);
        int st = rr_srv_parse(bad[i].body, len, RR_SRV_API_V1, &lim, &r, err, sizeof err);
        if (st == 0) rr_srv_request_free(&r);
        CHECK_EQ_INT(st, 400);
        if (st && !strstr(err, bad[i].needle)) printf("    case %zu: \"%s\" lacks \"%s\"\n", i, err, bad[i].needle);
        CHECK(st && strstr(err, bad[i].needle) != NULL);
    }
    /* a duplicate among many keys (the sorted path) is found too */
    rr_buf b = {0};
    rr_buf_puts(&b, "{\"query\":\"q\",\"documents\":[\"a\"],\"meta\":{");
    for (int k = 0; k < 200; k++) rr_buf_printf(&b, "\"k%d\":%d,", k, k);
    rr_buf_puts(&b, "\"k77\":1}}");
    CHECK_EQ_INT(status_of(b.data, RR_SRV_API_V1, "meta.k77"), 400);
    rr_buf_free(&b);
    /* what stays valid: escapes, a BOM, whitespace around the value, deep but legal nesting */
    CHECK_EQ_INT(status_of("\xef\xbb\xbf {\"query\":\"q\\n\\t\\u00e9\\ud83d\\ude00\",\"documents\":[\"a\\\"b\"]} \r\n",
                           RR_SRV_API_V1, NULL),
                 0);
    /* the JSON-lines reader's flag keeps NUL characters */
    struct cJSON *j = NULL;
    CHECK(rr_json_parse_strict("{\"t\":\"a\\u0000b\"}", 16, "line", RR_JSON_ALLOW_NUL, &j) == RR_OK);
    cJSON_Delete(j);
    CHECK(rr_json_parse_strict("{\"t\":\"a\\u0000b\"}", 16, "line", 0, &j) == RR_ERR_FORMAT);
    CHECK(strstr(rr_errmsg(), "line: ") == rr_errmsg());
    /* RFC 8259's number grammar, value by value */
    static const char *const good_num[] = {"0", "-0", "7", "-12", "1.5", "0.25", "1e5", "1E+5", "2e-3", "-12.5e10"};
    static const char *const bad_num[] = {"-", "1e", "1e+", "1.", ".5", "01", "+1", "1ee5", "1e5.0", "--1", "0x10"};
    for (size_t i = 0; i < RR_ARRAY_LEN(good_num); i++) {
        j = NULL;
        CHECK(rr_json_parse_strict(good_num[i], strlen(good_num[i]), "n", 0, &j) == RR_OK);
        CHECK(j && cJSON_IsNumber(j) && j->valuedouble == strtod(good_num[i], NULL));
        cJSON_Delete(j);
    }
    for (size_t i = 0; i < RR_ARRAY_LEN(bad_num); i++) {
        j = NULL;
        int st = rr_json_parse_strict(bad_num[i], strlen(bad_num[i]), "n", 0, &j);
        if (st != RR_ERR_FORMAT) printf("    \"%s\" was accepted\n", bad_num[i]);
        CHECK(st == RR_ERR_FORMAT && j == NULL);
        cJSON_Delete(j);
    }
}

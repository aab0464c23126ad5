/*
 * test_rank.c -- rr_rank and rr_score_pairs through the library API: result order and top_n,
 * independence from the other documents of a request, agreement between pair scoring and a
 * one-window rank, usage counts, bad arguments and allocation failures. The window algorithm itself
 * is checked against an independent reference in tests/rank_ref.py.
 */
#include "check.h"
#include "core/core.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static rr_model *load(const char *name) {
    char rel[128];
    snprintf(rel, sizeof rel, "models/%s/tokenizer.json", name);
    struct stat st;
    if (stat(rr_test_data_path(rel), &st) != 0) return NULL;
    snprintf(rel, sizeof rel, "models/%s", name);
    rr_model *m = NULL;
    rr_status s = rr_model_load(rr_test_data_path(rel), NULL, &m);
    CHECK_MSG(s == RR_OK, "load %s: %s", name, rr_errmsg());
    return m;
}

#define T(s) ((rr_text){(s), sizeof(s) - 1})

static const rr_text DOCS[] = {
    T("Organic skincare for sensitive skin with aloe vera and chamomile."),
    T("New makeup trends focus on bold colors and innovative techniques"),
    T(""),
    T("Bio-Hautpflege für empfindliche Haut mit Aloe Vera und Kamille"),
    T("针对敏感肌专门设计的天然有机护肤产品"),
    T("Organic skincare for sensitive skin with aloe vera and chamomile."), /* duplicate of 0: a tie */
};
#define N_DOCS ((int)RR_ARRAY_LEN(DOCS))
static const rr_text QUERY = T("Organic skincare products for sensitive skin");

RR_TEST(rank_order_top_n_and_ties) {
    rr_model *m = load("jina_f32");
    if (!m) SKIP("no generated model with a tokenizer");
    rr_ctx *c;
    REQUIRE(rr_ctx_new(m, NULL, &c) == RR_OK);
    rr_rank_result res[N_DOCS];
    int n = -1;
    rr_usage u = {0};
    REQUIRE(rr_rank(c, QUERY, DOCS, N_DOCS, NULL, res, &n, &u) == RR_OK);
    CHECK_EQ_INT(n, N_DOCS);
    CHECK(u.total_tokens > 0);
    int pos0 = -1, pos5 = -1;
    for (int i = 0; i < n; i++) {
        if (i) CHECK(res[i - 1].score >= res[i].score);
        CHECK(res[i].score >= 0 && res[i].score <= 1);
        if (res[i].index == 0) pos0 = i;
        if (res[i].index == 5) pos5 = i;
    }
    /* identical documents score identically and keep their order */
    REQUIRE(pos0 >= 0 && pos5 >= 0);
    CHECK(res[pos0].score == res[pos5].score);
    CHECK(pos5 == pos0 + 1);

    rr_rank_params p = rr_rank_default_params();
    int tops[] = {1, 3, N_DOCS, N_DOCS + 10, 0};
    for (size_t k = 0; k < RR_ARRAY_LEN(tops); k++) {
        p.top_n = tops[k];
        rr_rank_result r2[N_DOCS];
        int n2;
        REQUIRE(rr_rank(c, QUERY, DOCS, N_DOCS, &p, r2, &n2, NULL) == RR_OK);
        CHECK_EQ_INT(n2, tops[k] == 0 || tops[k] > N_DOCS ? N_DOCS : tops[k]);
        for (int i = 0; i < n2; i++) {
            CHECK_EQ_INT(r2[i].index, res[i].index);
            CHECK(r2[i].score == res[i].score);
        }
    }
    /* raw logits rank the same way and map to the same sigmoid */
    p.top_n = 0;
    p.raw = 1;
    rr_rank_result raw[N_DOCS];
    int nr;
    REQUIRE(rr_rank(c, QUERY, DOCS, N_DOCS, &p, raw, &nr, NULL) == RR_OK);
    for (int i = 0; i < nr; i++) {
        CHECK_EQ_INT(raw[i].index, res[i].index);
        CHECK_NEAR(rr_sigmoid(raw[i].score), res[i].score, 1e-7);
    }
    /* an empty list gives no results */
    CHECK(rr_rank(c, QUERY, NULL, 0, NULL, NULL, &n, &u) == RR_OK);
    CHECK_EQ_INT(n, 0);
    CHECK_EQ_INT(u.total_tokens, 0);
    rr_ctx_free(c);
    rr_model_free(m);
}

/* A document's score does not depend on what else the request holds, nor on the pass budget. */
RR_TEST(rank_independent_of_other_documents) {
    rr_model *m = load("xlmr_f32");
    if (!m) SKIP("no generated model with a tokenizer");
    rr_ctx_params small = {512};
    rr_ctx *c, *c2;
    REQUIRE(rr_ctx_new(m, NULL, &c) == RR_OK);
    REQUIRE(rr_ctx_new(m, &small, &c2) == RR_OK);
    rr_rank_result all[N_DOCS];
    int n;
    rr_rank_params p = rr_rank_default_params();
    p.raw = 1;
    REQUIRE(rr_rank(c, QUERY, DOCS, N_DOCS, &p, all, &n, NULL) == RR_OK);
    for (int d = 0; d < N_DOCS; d++) {
        rr_rank_result one;
        int n1;
        REQUIRE(rr_rank(c2, QUERY, &DOCS[d], 1, &p, &one, &n1, NULL) == RR_OK);
        for (int i = 0; i < n; i++)
            if (all[i].index == d) CHECK_MSG(all[i].score == one.score, "doc %d: %.9g alone vs %.9g", d, one.score, all[i].score);
    }
    rr_ctx_free(c);
    rr_ctx_free(c2);
    rr_model_free(m);
}

/* With a short query and short documents, pair scoring and rank feed the model the same sequence. */
RR_TEST(rank_matches_score_pairs_for_short_documents) {
    rr_model *m = load("bert_f32");
    if (!m) SKIP("no generated model with a tokenizer");
    rr_ctx *c;
    REQUIRE(rr_ctx_new(m, NULL, &c) == RR_OK);
    rr_text qs[N_DOCS];
    for (int i = 0; i < N_DOCS; i++) qs[i] = QUERY;
    float scores[N_DOCS];
    rr_usage up = {0}, ur = {0};
    REQUIRE(rr_score_pairs(c, qs, DOCS, N_DOCS, 0, 0, scores, &up) == RR_OK);
    rr_rank_result res[N_DOCS];
    int n;
    REQUIRE(rr_rank(c, QUERY, DOCS, N_DOCS, NULL, res, &n, &ur) == RR_OK);
    for (int i = 0; i < n; i++) CHECK_NEAR(res[i].score, scores[res[i].index], 1e-6);
    CHECK_EQ_INT(up.total_tokens, ur.total_tokens);
    rr_ctx_free(c);
    rr_model_free(m);
}

RR_TEST(rank_bad_arguments) {
    rr_model *m = load("jina_f32");
    if (!m) SKIP("no generated model with a tokenizer");
    rr_ctx *c;
    REQUIRE(rr_ctx_new(m, NULL, &c) == RR_OK);
    rr_rank_result res[N_DOCS];
    int n;
    rr_rank_params p = rr_rank_default_params();
    p.top_n = -1;
    CHECK(rr_rank(c, QUERY, DOCS, N_DOCS, &p, res, &n, NULL) == RR_ERR_INVALID);
    CHECK(strstr(rr_errmsg(), "top_n"));
    p = rr_rank_default_params();
    p.overlap = -5;
    CHECK(rr_rank(c, QUERY, DOCS, N_DOCS, &p, res, &n, NULL) == RR_ERR_INVALID);
    p = rr_rank_default_params();
    p.max_length = 3;
    CHECK(rr_rank(c, QUERY, DOCS, N_DOCS, &p, res, &n, NULL) == RR_ERR_RANGE);
    CHECK(rr_rank(c, QUERY, NULL, 2, NULL, res, &n, NULL) == RR_ERR_INVALID);
    CHECK(rr_rank(NULL, QUERY, DOCS, 1, NULL, res, &n, NULL) == RR_ERR_INVALID);
    float s;
    CHECK(rr_score_pairs(c, NULL, DOCS, 1, 0, 0, &s, NULL) == RR_ERR_INVALID);
    /* invalid UTF-8 in a document is repaired or refused, never a crash */
    rr_text bad = {"\xff\xfe caf\xc3", 8};
    rr_status st = rr_rank(c, QUERY, &bad, 1, NULL, res, &n, NULL);
    CHECK(st == RR_OK || st == RR_ERR_INVALID);
    rr_ctx_free(c);
    rr_model_free(m);
}

RR_TEST(rank_fault_injection) {
    rr_model *m = load("xlmr_bf16");
    if (!m) SKIP("no generated model with a tokenizer");
    rr_ctx *c;
    REQUIRE(rr_ctx_new(m, NULL, &c) == RR_OK);
    rr_rank_result res[N_DOCS], ref[N_DOCS];
    int n, nref;
    rr_alloc_fail_after(0);
    REQUIRE(rr_rank(c, QUERY, DOCS, N_DOCS, NULL, ref, &nref, NULL) == RR_OK);
    long total = rr_alloc_fail_after(0);
    REQUIRE(total > 0);
    for (long k = 1; k <= total; k++) {
        rr_alloc_fail_after(k);
        rr_status s = rr_rank(c, QUERY, DOCS, N_DOCS, NULL, res, &n, NULL);
        rr_alloc_fail_after(0);
        CHECK_MSG(s == RR_ERR_NOMEM, "allocation %ld of %ld failing gave %s", k, total, rr_status_str(s));
    }
    /* and the context still works afterwards */
    REQUIRE(rr_rank(c, QUERY, DOCS, N_DOCS, NULL, res, &n, NULL) == RR_OK);
    for (int i = 0; i < n; i++) CHECK(res[i].index == ref[i].index && res[i].score == ref[i].score);
    rr_ctx_free(c);
    rr_model_free(m);
}

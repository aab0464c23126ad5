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
    rr_model *m = rr_test_load_model("jina_f32");
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
    rr_model *m = rr_test_load_model("xlmr_f32");
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
    rr_model *m = rr_test_load_model("bert_f32");
    if (!m) SKIP("no generated model with a tokenizer");
    rr_ctx *c;
    REQUIRE(rr_ctx_new(m, NULL, &c) == RR_OK);
    rr_text qs[N_DOCS];
    for (int i = 0; i < N_DOCS; i++) qs[i] = QUERY;
    float scores[N_DOCS];
    rr_usage up = {0}, ur = {0};
    REQUIRE(rr_score_pairs(c, qs, DOCS, N_DOCS, NULL, scores, &up) == RR_OK);
    rr_rank_result res[N_DOCS];
    int n;
    REQUIRE(rr_rank(c, QUERY, DOCS, N_DOCS, NULL, res, &n, &ur) == RR_OK);
    for (int i = 0; i < n; i++) CHECK_NEAR(res[i].score, scores[res[i].index], 1e-6);
    CHECK_EQ_INT(up.total_tokens, ur.total_tokens);
    rr_ctx_free(c);
    rr_model_free(m);
}

RR_TEST(rank_bad_arguments) {
    rr_model *m = rr_test_load_model("jina_f32");
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
    p = rr_rank_default_params(); /* 0 is a number like any other, not "the default" */
    p.max_query_length = 0;
    CHECK(rr_rank(c, QUERY, DOCS, N_DOCS, &p, res, &n, NULL) == RR_ERR_INVALID);
    p = rr_rank_default_params();
    p.overlap = 0;
    CHECK(rr_rank(c, QUERY, DOCS, N_DOCS, &p, res, &n, NULL) == RR_OK);
    p = rr_rank_default_params();
    p.max_length = 3;
    CHECK(rr_rank(c, QUERY, DOCS, N_DOCS, &p, res, &n, NULL) == RR_ERR_RANGE);
    CHECK(rr_rank(c, QUERY, NULL, 2, NULL, res, &n, NULL) == RR_ERR_INVALID);
    CHECK(rr_rank(NULL, QUERY, DOCS, 1, NULL, res, &n, NULL) == RR_ERR_INVALID);
    float s;
    CHECK(rr_score_pairs(c, NULL, DOCS, 1, NULL, &s, NULL) == RR_ERR_INVALID);
    /* invalid UTF-8 in a document is repaired or refused, never a crash */
    rr_text bad = {"\xff\xfe caf\xc3", 8};
    rr_status st = rr_rank(c, QUERY, &bad, 1, NULL, res, &n, NULL);
    CHECK(st == RR_OK || st == RR_ERR_INVALID);
    rr_ctx_free(c);
    rr_model_free(m);
}

RR_TEST(rank_fault_injection) {
    rr_model *m = rr_test_load_model("xlmr_bf16");
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

/* ------------------------------------------------------------------ long documents: truncate, cap */

/* A document whose head and tail are whole sentences: with XLM-R's Metaspace pre-tokenizer every
 * word is tokenized on its own, so the head's and the tail's tokens are exactly the first and last
 * tokens of the whole document (checked below, so a tokenizer change fails loudly, not subtly). */
#define HEAD "Bananas are yellow fruit that grow in warm countries and are rich in potassium."
#define TAIL "Paris is the capital and the largest city of France, on the river Seine."
#define FILLER " Weather reports mention rain, wind and clouds over the hills tomorrow."
static const rr_text TQ = T("Which city is the capital of France?");

static char *long_text(int fillers) {
    rr_buf b = {0};
    rr_buf_puts(&b, HEAD);
    for (int i = 0; i < fillers; i++) rr_buf_puts(&b, FILLER);
    rr_buf_puts(&b, " " TAIL);
    return b.data;
}

/* Tokens of `s` without specials. */
static int n_tokens(const rr_tokenizer *t, const char *s, rr_encoding *e) {
    if (rr_tokenizer_encode(t, (rr_text){s, strlen(s)}, NULL, &(rr_encode_params){0, 0, RR_TRUNC_LONGEST_FIRST}, e) != RR_OK) return -1;
    return (int)e->len;
}

/* The raw logit of one document ranked alone with p. */
static float rank_one(rr_ctx *c, rr_text q, rr_text d, const rr_rank_params *p, long *tokens) {
    rr_rank_result r;
    int n = 0;
    rr_usage u = {0};
    rr_status s = rr_rank(c, q, &d, 1, p, &r, &n, &u);
    CHECK_MSG(s == RR_OK && n == 1, "rr_rank: %s", rr_errmsg());
    if (tokens) *tokens = u.total_tokens;
    return s == RR_OK ? r.score : NAN;
}

/* Truncation keeps the document's first (right) or last (left) tokens: the score equals that of the
 * kept text ranked alone, the two directions differ, and windowing (which sees both ends) scores at
 * least the better of them. max_length is chosen so the room is exactly the head's (or tail's) size. */
RR_TEST(rank_truncate_right_left_vs_windows) {
    rr_model *m = rr_test_load_model("xlmr_f32");
    if (!m) SKIP("no generated model with a tokenizer");
    const rr_tokenizer *tok = rr_model_tokenizer(m);
    rr_ctx *c;
    REQUIRE(rr_ctx_new(m, NULL, &c) == RR_OK);
    rr_encoding e = {0}, all = {0};
    char *doc = long_text(12);
    int nq = n_tokens(tok, TQ.text, &e), nh = n_tokens(tok, HEAD, &e), nt = n_tokens(tok, TAIL, &e);
    int nd = n_tokens(tok, doc, &all);
    REQUIRE(nq > 0 && nh > 4 && nt > 4 && nd > 4 * (nh + nt));
    /* the head's tokens open the document and the tail's close it */
    REQUIRE(n_tokens(tok, HEAD, &e) == nh && !memcmp(e.ids, all.ids, (size_t)nh * sizeof *e.ids));
    REQUIRE(n_tokens(tok, TAIL, &e) == nt && !memcmp(e.ids, all.ids + nd - nt, (size_t)nt * sizeof *e.ids));
    int specials = rr_tokenizer_num_special(tok, 1);
    rr_text d = {doc, strlen(doc)}, head = T(HEAD), tail = T(TAIL);

    for (int dir = 0; dir < 2; dir++) {
        int keep = dir ? nt : nh;
        rr_rank_params p = rr_rank_default_params();
        p.raw = 1;
        p.max_length = nq + specials + keep; /* room for exactly the head (right) or the tail (left) */
        p.max_query_length = nq + rr_tokenizer_num_special(tok, 0);
        REQUIRE(p.max_query_length <= p.max_length / 2);
        float alone = rank_one(c, TQ, dir ? tail : head, &p, NULL);
        long wt, tt;
        float win = rank_one(c, TQ, d, &p, &wt);
        p.long_doc = dir ? RR_LONG_DOC_TRUNCATE_LEFT : RR_LONG_DOC_TRUNCATE_RIGHT;
        float cut = rank_one(c, TQ, d, &p, &tt);
        CHECK_MSG(fabsf(cut - alone) <= 1e-5f, "%s: truncated %.7g vs kept text alone %.7g", dir ? "left" : "right",
                  cut, alone);
        CHECK_EQ_INT(tt, p.max_length); /* one full pair */
        CHECK(wt > 3 * tt);             /* windows cover the whole document */
        CHECK(win >= cut - 1e-5f);      /* the first and the last window are these pairs */
        /* a document that fits is scored the same in every mode */
        CHECK(fabsf(rank_one(c, TQ, dir ? tail : head, &p, NULL) - alone) <= 1e-6f);
    }
    /* right and left keep different text, so they score differently; windowing takes the best window */
    rr_rank_params p = rr_rank_default_params();
    p.raw = 1;
    p.max_length = 64;
    float w = rank_one(c, TQ, d, &p, NULL);
    p.long_doc = RR_LONG_DOC_TRUNCATE_RIGHT;
    float r = rank_one(c, TQ, d, &p, NULL);
    p.long_doc = RR_LONG_DOC_TRUNCATE_LEFT;
    float l = rank_one(c, TQ, d, &p, NULL);
    CHECK_MSG(r != l, "right %.7g == left %.7g", r, l);
    CHECK(w >= r - 1e-5f && w >= l - 1e-5f);
    rr_free(doc);
    rr_encoding_free(&e);
    rr_encoding_free(&all);
    rr_ctx_free(c);
    rr_model_free(m);
}

/* max_doc_tokens cuts the document's own tokens before pairing: ranking a document capped at the
 * head's size equals ranking the head alone (start kept), and with TRUNCATE_LEFT the tail alone;
 * a cap longer than one window leaves the rest windowed, as ranking the kept text alone would. */
RR_TEST(rank_max_doc_tokens_equals_manual_cut) {
    rr_model *m = rr_test_load_model("xlmr_f32");
    if (!m) SKIP("no generated model with a tokenizer");
    const rr_tokenizer *tok = rr_model_tokenizer(m);
    rr_ctx *c;
    REQUIRE(rr_ctx_new(m, NULL, &c) == RR_OK);
    rr_encoding e = {0};
    char *doc = long_text(40);
    rr_text d = {doc, strlen(doc)}, head = T(HEAD), tail = T(TAIL);
    int nh = n_tokens(tok, HEAD, &e), nt = n_tokens(tok, TAIL, &e);
    REQUIRE(nh > 0 && nt > 0);
    rr_rank_params p = rr_rank_default_params();
    p.raw = 1;
    long t1, t2;
    float whole = rank_one(c, TQ, d, &p, NULL);
    float alone = rank_one(c, TQ, head, &p, &t1);
    p.max_doc_tokens = nh;
    float capped = rank_one(c, TQ, d, &p, &t2);
    CHECK_MSG(fabsf(capped - alone) <= 1e-5f, "capped %.7g vs head alone %.7g", capped, alone);
    CHECK_EQ_INT(t2, t1);
    CHECK(capped != whole);
    p.max_doc_tokens = 0;
    alone = rank_one(c, TQ, tail, &p, &t1);
    p.max_doc_tokens = nt;
    p.long_doc = RR_LONG_DOC_TRUNCATE_LEFT;
    capped = rank_one(c, TQ, d, &p, &t2);
    CHECK_MSG(fabsf(capped - alone) <= 1e-5f, "capped left %.7g vs tail alone %.7g", capped, alone);
    CHECK_EQ_INT(t2, t1);

    /* cap longer than a window: the kept text (a prefix of whole sentences) is still windowed */
    rr_buf b = {0};
    rr_buf_puts(&b, HEAD);
    for (int i = 0; i < 20; i++) rr_buf_puts(&b, FILLER);
    rr_encoding all = {0};
    int nk = n_tokens(tok, b.data, &e);
    REQUIRE(nk > 0 && n_tokens(tok, doc, &all) > nk && !memcmp(e.ids, all.ids, (size_t)nk * sizeof *e.ids));
    rr_encoding_free(&all);
    p = rr_rank_default_params();
    p.raw = 1;
    p.max_length = 48; /* several windows in the kept part */
    alone = rank_one(c, TQ, (rr_text){b.data, b.len}, &p, &t1);
    p.max_doc_tokens = nk;
    capped = rank_one(c, TQ, d, &p, &t2);
    CHECK_MSG(fabsf(capped - alone) <= 1e-5f, "capped+windowed %.7g vs kept text alone %.7g", capped, alone);
    CHECK_EQ_INT(t2, t1);
    CHECK(t1 > 3 * 48);
    /* a cap at least the document's length changes nothing */
    p.max_doc_tokens = 1 << 30;
    float w1 = rank_one(c, TQ, d, &p, NULL);
    p.max_doc_tokens = 0;
    CHECK(w1 == rank_one(c, TQ, d, &p, NULL));
    rr_buf_free(&b);
    rr_free(doc);
    rr_encoding_free(&e);
    rr_ctx_free(c);
    rr_model_free(m);
}

/* max_windows keeps a windowed document's first n windows: one window is the first M tokens (as
 * TRUNCATE_RIGHT), n windows are the document cut to M + (n - 1) * (M - overlap) tokens and windowed,
 * and a count at least the document's windows changes nothing. */
RR_TEST(rank_max_windows_keeps_first_windows) {
    rr_model *m = rr_test_load_model("xlmr_f32");
    if (!m) SKIP("no generated model with a tokenizer");
    const rr_tokenizer *tok = rr_model_tokenizer(m);
    rr_ctx *c;
    REQUIRE(rr_ctx_new(m, NULL, &c) == RR_OK);
    rr_encoding e = {0};
    char *doc = long_text(40);
    rr_text d = {doc, strlen(doc)};
    int nq = n_tokens(tok, TQ.text, &e), nd = n_tokens(tok, doc, &e);
    int L = 48, M = L - nq - rr_tokenizer_num_special(tok, true), ov = RR_MIN(80, M / 4);
    REQUIRE(nq > 0 && M > 8 && nd > 6 * M);
    rr_rank_params p = rr_rank_default_params();
    p.raw = 1;
    p.max_length = L;
    long t_all, t1, t2;
    float whole = rank_one(c, TQ, d, &p, &t_all);
    p.max_windows = 1;
    float one = rank_one(c, TQ, d, &p, &t1);
    CHECK_EQ_INT(t1, L);
    p.max_windows = 0;
    p.long_doc = RR_LONG_DOC_TRUNCATE_RIGHT;
    float right = rank_one(c, TQ, d, &p, &t2);
    CHECK_MSG(one == right, "one window %.7g vs truncated right %.7g", one, right);
    CHECK_EQ_INT(t2, t1);
    p.long_doc = RR_LONG_DOC_AUTO;
    for (int n = 2; n <= 4; n++) {
        p.max_windows = n;
        float capped = rank_one(c, TQ, d, &p, &t1);
        CHECK_EQ_INT(t1, (long)n * L);
        p.max_windows = 0;
        p.max_doc_tokens = M + (n - 1) * (M - ov);
        float cut = rank_one(c, TQ, d, &p, &t2);
        p.max_doc_tokens = 0;
        CHECK_MSG(capped == cut, "%d windows %.7g vs document cut to their span %.7g", n, capped, cut);
        CHECK_EQ_INT(t2, t1);
        CHECK(capped >= one);
    }
    p.max_windows = 1 << 30;
    float all = rank_one(c, TQ, d, &p, &t1);
    CHECK(all == whole);
    CHECK_EQ_INT(t1, t_all);
    CHECK(t_all > 4 * L);
    /* a truncation ignores it; a negative count is refused */
    p.max_windows = 2;
    p.long_doc = RR_LONG_DOC_TRUNCATE_RIGHT;
    CHECK(rank_one(c, TQ, d, &p, &t1) == right);
    p = rr_rank_default_params();
    p.max_windows = -1;
    rr_rank_result res;
    int n = 0;
    CHECK(rr_rank(c, TQ, &d, 1, &p, &res, &n, NULL) == RR_ERR_INVALID);
    CHECK(strstr(rr_errmsg(), "max_windows"));
    rr_free(doc);
    rr_encoding_free(&e);
    rr_ctx_free(c);
    rr_model_free(m);
}

RR_TEST(rank_long_doc_params_checked) {
    rr_rank_params p = rr_rank_default_params();
    CHECK_EQ_INT(p.long_doc, RR_LONG_DOC_AUTO); /* the model's rule: windows for encoders */
    CHECK_EQ_INT(p.max_doc_tokens, 0);
    CHECK_EQ_INT(p.max_windows, 0);
    rr_model *m = rr_test_load_model("xlmr_f32");
    if (!m) SKIP("no generated model with a tokenizer");
    rr_ctx *c;
    REQUIRE(rr_ctx_new(m, NULL, &c) == RR_OK);
    rr_rank_result res[N_DOCS], res_w[N_DOCS];
    int n, n_w;
    /* on an encoder AUTO windows: the same results as WINDOW with windows forced by a short max_length */
    p.max_length = 24;
    p.max_query_length = 8;
    CHECK(rr_rank(c, QUERY, DOCS, N_DOCS, &p, res, &n, NULL) == RR_OK);
    p.long_doc = RR_LONG_DOC_WINDOW;
    CHECK(rr_rank(c, QUERY, DOCS, N_DOCS, &p, res_w, &n_w, NULL) == RR_OK);
    CHECK_EQ_INT(n, n_w);
    for (int i = 0; i < n && i < n_w; i++) {
        CHECK_EQ_INT(res[i].index, res_w[i].index);
        CHECK(res[i].score == res_w[i].score);
    }
    p = rr_rank_default_params();
    p.long_doc = (rr_long_doc)7;
    CHECK(rr_rank(c, QUERY, DOCS, N_DOCS, &p, res, &n, NULL) == RR_ERR_INVALID);
    CHECK(strstr(rr_errmsg(), "long_doc"));
    p = rr_rank_default_params();
    p.max_doc_tokens = -1;
    CHECK(rr_rank(c, QUERY, DOCS, N_DOCS, &p, res, &n, NULL) == RR_ERR_INVALID);
    CHECK(strstr(rr_errmsg(), "max_doc_tokens"));
    /* a cap of one token still scores every document, the empty one included */
    p = rr_rank_default_params();
    p.max_doc_tokens = 1;
    p.long_doc = RR_LONG_DOC_TRUNCATE_LEFT;
    CHECK(rr_rank(c, QUERY, DOCS, N_DOCS, &p, res, &n, NULL) == RR_OK);
    CHECK_EQ_INT(n, N_DOCS);
    rr_ctx_free(c);
    rr_model_free(m);
}

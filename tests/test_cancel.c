/*
 * test_cancel.c -- the progress / cancellation hook of rr_score_params and rr_rank_params: a hook that
 * stops after N forward passes makes the call return RR_ERR_CANCELLED right there (no later pass
 * runs), the counts it sees are consistent, and the same context then gives exactly the scores of an
 * uncancelled call. Covered: one long windowed document (rr_rank), pair scoring stopped while
 * tokenizing and between passes, a decoder's prompts and jina-reranker-v3's blocks.
 */
#include "check.h"
#include "core/core.h"

#include <stdlib.h>
#include <string.h>

/* What the hook saw; it asks to stop at the stop_at-th call after a pass (0: never) or at its first
 * call while tokenizing (stop_tokenizing). */
typedef struct seen {
    int calls, pass_calls, stop_at, stop_tokenizing, after_stop;
    long last_done, last_total;
    int monotone;
} seen;

static int hook(void *user, long done, long total) {
    seen *s = user;
    if (s->stop_at && s->pass_calls >= s->stop_at) s->after_stop++; /* must never happen */
    if (s->stop_tokenizing && s->calls >= 1) s->after_stop++;
    s->calls++;
    if (done < s->last_done || done > total) s->monotone = 0;
    if (done > s->last_done) s->pass_calls++;
    s->last_done = done;
    s->last_total = total;
    if (s->stop_tokenizing) return 1;
    return s->stop_at && s->pass_calls >= s->stop_at;
}

static seen seen_new(int stop_at) { return (seen){.stop_at = stop_at, .monotone = 1}; }

/* A document of about `words` words: windows at a short max_length. */
static char *long_text(int words) {
    static const char *w[] = {"Berlin", "river", "skin", "ocean", "Stadt", "forest", "light", "north"};
    size_t cap = (size_t)words * 8 + 1, len = 0;
    char *s = malloc(cap);
    if (!s) return NULL;
    for (int i = 0; i < words; i++) len += (size_t)snprintf(s + len, cap - len, "%s ", w[(i * 7 + i / 3) % 8]);
    return s;
}

RR_TEST(cancel_rank_one_long_document) {
    rr_model *m = rr_test_load_model("jina_f32");
    if (!m) SKIP("no generated model with a tokenizer");
    rr_ctx *c;
    rr_ctx_params cp = rr_ctx_default_params();
    cp.max_batch_tokens = 256; /* raised to the model's length: a few windows per pass */
    REQUIRE(rr_ctx_new(m, &cp, &c) == RR_OK);
    char *doc = long_text(6000);
    REQUIRE(doc);
    rr_text docs[2] = {{doc, strlen(doc)}, {"a short one", 11}};
    rr_text q = {"which river runs through Berlin?", 32};
    rr_rank_params p = rr_rank_default_params();
    p.max_length = 64;
    rr_rank_result ref[2], res[2];
    int nref = 0, n = 0;
    rr_usage u = {0};
    REQUIRE(rr_rank(c, q, docs, 2, &p, ref, &nref, &u) == RR_OK);

    /* a hook that never stops: every pass reported, ending at done == total, same results */
    seen all = seen_new(0);
    p.progress = hook;
    p.progress_user = &all;
    REQUIRE(rr_rank(c, q, docs, 2, &p, res, &n, NULL) == RR_OK);
    CHECK(all.monotone);
    CHECK_MSG(all.pass_calls >= 4, "only %d passes: the test needs several", all.pass_calls);
    CHECK(all.last_done == all.last_total && all.last_total > 100); /* windows, not documents */
    CHECK_EQ_INT(n, nref);
    for (int i = 0; i < n; i++) CHECK(res[i].index == ref[i].index && res[i].score == ref[i].score);

    /* stop after the second pass: no later pass, RR_ERR_CANCELLED, then the same context is exact */
    for (int stop = 1; stop <= 2; stop++) {
        seen st = seen_new(stop);
        p.progress_user = &st;
        rr_status s = rr_rank(c, q, docs, 2, &p, res, &n, NULL);
        CHECK_MSG(s == RR_ERR_CANCELLED, "gave %s", rr_status_str(s));
        CHECK(strstr(rr_errmsg(), "cancelled") != NULL);
        CHECK_EQ_INT(st.pass_calls, stop);
        CHECK_EQ_INT(st.after_stop, 0);
        CHECK(st.last_done < st.last_total);
        p.progress = NULL;
        REQUIRE(rr_rank(c, q, docs, 2, &p, res, &n, NULL) == RR_OK);
        CHECK_EQ_INT(n, nref);
        for (int i = 0; i < n; i++) CHECK(res[i].index == ref[i].index && res[i].score == ref[i].score);
        p.progress = hook;
    }
    free(doc);
    rr_ctx_free(c);
    rr_model_free(m);
}

RR_TEST(cancel_score_pairs_while_tokenizing_and_between_passes) {
    rr_model *m = rr_test_load_model("xlmr_f32");
    if (!m) SKIP("no generated model with a tokenizer");
    rr_ctx *c;
    REQUIRE(rr_ctx_new(m, NULL, &c) == RR_OK);
    enum { N = 700 }; /* more than 256 texts: the hook is called while tokenizing */
    rr_text *qs = calloc(N, sizeof *qs), *ds = calloc(N, sizeof *ds);
    char (*buf)[64] = calloc(N, sizeof *buf);
    float *ref = calloc(N, sizeof *ref), *out = calloc(N, sizeof *out);
    REQUIRE(qs && ds && buf && ref && out);
    for (int i = 0; i < N; i++) {
        int len = snprintf(buf[i], sizeof buf[i], "document %d about rivers and %d forests", i, i * 37 % 101);
        qs[i] = (rr_text){"rivers near forests", 19};
        ds[i] = (rr_text){buf[i], (size_t)len};
    }
    rr_score_params sp = rr_score_default_params();
    REQUIRE(rr_score_pairs(c, qs, ds, N, &sp, ref, NULL) == RR_OK);

    seen tok = seen_new(0);
    tok.stop_tokenizing = 1;
    sp.progress = hook;
    sp.progress_user = &tok;
    CHECK(rr_score_pairs(c, qs, ds, N, &sp, out, NULL) == RR_ERR_CANCELLED);
    CHECK_EQ_INT(tok.calls, 1);
    CHECK(tok.last_done == 0 && tok.last_total == 0); /* nothing planned yet */

    seen pass = seen_new(1);
    sp.progress_user = &pass;
    CHECK(rr_score_pairs(c, qs, ds, N, &sp, out, NULL) == RR_ERR_CANCELLED);
    CHECK_EQ_INT(pass.pass_calls, 1);
    CHECK_EQ_INT(pass.after_stop, 0);
    CHECK(pass.last_total == N && pass.last_done > 0 && pass.last_done < N);

    seen all = seen_new(0);
    sp.progress_user = &all;
    REQUIRE(rr_score_pairs(c, qs, ds, N, &sp, out, NULL) == RR_OK);
    CHECK(all.monotone && all.last_done == N && all.last_total == N);
    CHECK(!memcmp(out, ref, N * sizeof *out));
    sp.progress = NULL;
    REQUIRE(rr_score_pairs(c, qs, ds, N, &sp, out, NULL) == RR_OK);
    CHECK(!memcmp(out, ref, N * sizeof *out));
    free(qs), free(ds), free(buf), free(ref), free(out);
    rr_ctx_free(c);
    rr_model_free(m);
}

RR_TEST(cancel_decoder_prompts_and_v3_blocks) {
    rr_model *dec = rr_test_load_model("dec_qwen3_f32"), *v3 = rr_test_load_model("v3_f32");
    if (!dec || !v3) {
        rr_model_free(dec);
        rr_model_free(v3);
        SKIP("no generated decoder / jina-reranker-v3 models");
    }
    enum { N = 160 };
    char *text = long_text(60);
    rr_text *qs = calloc(N, sizeof *qs), *ds = calloc(N, sizeof *ds), *is = calloc(N, sizeof *is);
    float *ref = calloc(N, sizeof *ref), *out = calloc(N, sizeof *out);
    rr_rank_result *rref = calloc(N, sizeof *rref), *res = calloc(N, sizeof *res);
    REQUIRE(text && qs && ds && is && ref && out && rref && res);
    size_t tl = strlen(text);
    for (int i = 0; i < N; i++) {
        qs[i] = (rr_text){"forest light", 12};
        ds[i] = (rr_text){text + i % 37, tl - (size_t)(i % 37) - (size_t)(i % 101)};
        is[i] = (rr_text){"Find the passage", 16};
    }

    /* decoder: pair prompts with an instruction, in passes of the context's 8K+ rows */
    rr_ctx *c;
    REQUIRE(rr_ctx_new(dec, NULL, &c) == RR_OK);
    rr_score_params sp = rr_score_default_params();
    REQUIRE(rr_score_pairs_instructed(c, qs, ds, is, N, &sp, ref, NULL) == RR_OK);
    seen st = seen_new(1);
    sp.progress = hook;
    sp.progress_user = &st;
    CHECK(rr_score_pairs_instructed(c, qs, ds, is, N, &sp, out, NULL) == RR_ERR_CANCELLED);
    CHECK_EQ_INT(st.pass_calls, 1);
    CHECK_EQ_INT(st.after_stop, 0);
    CHECK_MSG(st.last_done < N, "one pass held all %d prompts: the test needs several", N);
    sp.progress = NULL;
    REQUIRE(rr_score_pairs_instructed(c, qs, ds, is, N, &sp, out, NULL) == RR_OK);
    CHECK(!memcmp(out, ref, N * sizeof *out));
    rr_ctx_free(c);

    /* jina-reranker-v3: a request of several blocks (short documents, 125 a block) stopped at the
     * hook's first call after a pass, then ranked exactly on the same context */
    REQUIRE(rr_ctx_new(v3, NULL, &c) == RR_OK);
    for (int i = 0; i < N; i++) ds[i].len = (size_t)(8 + i % 23);
    rr_rank_params p = rr_rank_default_params();
    int nref = 0, n = 0;
    REQUIRE(rr_rank(c, qs[0], ds, N, &p, rref, &nref, NULL) == RR_OK);
    seen vb = seen_new(1);
    p.progress = hook;
    p.progress_user = &vb;
    CHECK(rr_rank(c, qs[0], ds, N, &p, res, &n, NULL) == RR_ERR_CANCELLED);
    CHECK_EQ_INT(vb.pass_calls, 1);
    CHECK_EQ_INT(vb.after_stop, 0);
    seen all = seen_new(0);
    p.progress_user = &all;
    REQUIRE(rr_rank(c, qs[0], ds, N, &p, res, &n, NULL) == RR_OK);
    CHECK(all.monotone && all.last_done == all.last_total && all.last_total == 2); /* blocks */
    CHECK_EQ_INT(n, nref);
    for (int i = 0; i < n; i++) CHECK(res[i].index == rref[i].index && res[i].score == rref[i].score);
    rr_ctx_free(c);

    free(text), free(qs), free(ds), free(is), free(ref), free(out), free(rref), free(res);
    rr_model_free(dec);
    rr_model_free(v3);
}

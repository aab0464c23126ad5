/*
 * test_engine.c -- the server's queue and cross-request batcher (src/engine) with a fake scorer, so
 * no model is needed: the fake logit of a sequence is a function of its ids, every batch is
 * recorded, and a gate lets a test hold the worker while it queues jobs.
 */
#include "check.h"
#include "engine/engine.h"
#include "core/core.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct fake {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int gate_closed;     /* the scorer blocks while set */
    int in_score;        /* a call is blocked on the gate */
    int calls;
    int max_tokens;      /* largest batch seen, in tokens */
    int fail_id;         /* a batch containing this id fails */
    long scored_windows;
    long scored_ids_sum; /* sum of the first id of each scored window */
} fake;

static float fake_logit(const rr_seq *s) {
    float v = 0;
    for (int i = 0; i < s->len; i++) v += (float)s->ids[i] * 0.001f;
    return v + (float)s->len;
}

static rr_status fake_score(void *ud, int worker, const rr_seq *seqs, int n, float *logits) {
    fake *f = ud;
    pthread_mutex_lock(&f->mu);
    f->in_score = 1;
    pthread_cond_broadcast(&f->cv);
    while (f->gate_closed) pthread_cond_wait(&f->cv, &f->mu);
    f->in_score = 0;
    f->calls++;
    int tokens = 0;
    for (int i = 0; i < n; i++) tokens += seqs[i].len;
    if (tokens > f->max_tokens) f->max_tokens = tokens;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < seqs[i].len; k++)
            if (f->fail_id && seqs[i].ids[k] == f->fail_id) {
                pthread_mutex_unlock(&f->mu);
                return rr_fail(RR_ERR_INVALID, "fake: id %d is out of range", f->fail_id);
            }
    for (int i = 0; i < n; i++) {
        logits[i] = fake_logit(&seqs[i]);
        f->scored_windows++;
        f->scored_ids_sum += seqs[i].ids[0];
    }
    pthread_mutex_unlock(&f->mu);
    return RR_OK;
}

static void fake_init(fake *f) {
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
}

/* Engine parameters that score with f (reset here) in passes of at most budget tokens. */
static rr_engine_params fake_params(fake *f, int budget) {
    fake_init(f);
    rr_engine_params p = rr_engine_default_params();
    p.score = fake_score;
    p.score_ud = f;
    p.max_batch_tokens = budget;
    return p;
}

static void gate(fake *f, int closed) {
    pthread_mutex_lock(&f->mu);
    f->gate_closed = closed;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

static void wait_in_score(fake *f) {
    pthread_mutex_lock(&f->mu);
    while (!f->in_score) pthread_cond_wait(&f->cv, &f->mu);
    pthread_mutex_unlock(&f->mu);
}

/* A job with its own windows: window i has length lens[i] and ids base+i, base+i, ... */
typedef struct tjob {
    rr_engine_job job;
    rr_seq *seqs;
    int32_t *ids;
    float *logits;
    int done;
    int done_rank; /* 1 for the first job completed in the process, 2 for the next... */
    int cancel;
    pthread_mutex_t *mu;
    pthread_cond_t *cv;
} tjob;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static int g_done_count;

static void on_done(rr_engine_job *j, void *ud) {
    tjob *t = ud;
    (void)j;
    pthread_mutex_lock(&g_mu);
    t->done++;
    t->done_rank = ++g_done_count;
    pthread_cond_broadcast(&g_cv);
    pthread_mutex_unlock(&g_mu);
}

static int is_cancelled(void *ud) { return ((tjob *)ud)->cancel; }

static void tjob_make(tjob *t, int n, const int *lens, int base) {
    memset(t, 0, sizeof *t);
    int total = 0;
    for (int i = 0; i < n; i++) total += lens[i];
    t->seqs = calloc((size_t)n + 1, sizeof *t->seqs);
    t->ids = calloc((size_t)total + 1, sizeof *t->ids);
    t->logits = calloc((size_t)n + 1, sizeof *t->logits);
    int at = 0;
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < lens[i]; k++) t->ids[at + k] = base + i;
        t->seqs[i].ids = t->ids + at;
        t->seqs[i].len = lens[i];
        at += lens[i];
    }
    t->job.seqs = t->seqs;
    t->job.n_seqs = n;
    t->job.logits = t->logits;
    t->job.on_done = on_done;
    t->job.is_cancelled = is_cancelled;
    t->job.ud = t;
}

static void tjob_free(tjob *t) {
    free(t->seqs);
    free(t->ids);
    free(t->logits);
}

/* Closes f's gate and submits `first`, one window of len tokens (id 1), returning once the worker
 * is blocked scoring it: jobs submitted now wait together for the next batch. */
static void hold_worker(fake *f, rr_engine *e, tjob *first, int len) {
    gate(f, 1);
    int one[1] = {len};
    tjob_make(first, 1, one, 1);
    REQUIRE(rr_engine_submit(e, &first->job) == RR_OK);
    wait_in_score(f);
}

static void wait_done(tjob *t) {
    pthread_mutex_lock(&g_mu);
    while (!t->done) pthread_cond_wait(&g_cv, &g_mu);
    pthread_mutex_unlock(&g_mu);
}

RR_TEST(engine_scores_every_window) {
    fake f;
    rr_engine_params p = fake_params(&f, 64);
    rr_engine *e;
    REQUIRE(rr_engine_new(NULL, &p, &e) == RR_OK);
    enum { NJ = 6 };
    tjob t[NJ];
    for (int k = 0; k < NJ; k++) {
        int lens[7];
        for (int i = 0; i < 7; i++) lens[i] = 1 + (i * 7 + k * 3) % 30;
        tjob_make(&t[k], 7, lens, 100 * k);
        REQUIRE(rr_engine_submit(e, &t[k].job) == RR_OK);
    }
    for (int k = 0; k < NJ; k++) {
        wait_done(&t[k]);
        CHECK_EQ_INT(t[k].done, 1);
        CHECK_EQ_INT(t[k].job.status, RR_OK);
        for (int i = 0; i < 7; i++) CHECK_NEAR(t[k].logits[i], fake_logit(&t[k].seqs[i]), 1e-6);
    }
    CHECK(f.max_tokens <= 64);
    rr_engine_stats s;
    rr_engine_get_stats(e, &s);
    CHECK_EQ_INT(s.jobs_done, NJ);
    CHECK_EQ_INT(s.windows_scored, NJ * 7);
    CHECK_EQ_INT(s.windows_pending, 0);
    CHECK_EQ_INT(s.jobs_queued, 0);
    rr_engine_free(e);
    for (int k = 0; k < NJ; k++) tjob_free(&t[k]);
}

RR_TEST(engine_batches_across_requests) {
    fake f;
    rr_engine_params p = fake_params(&f, 1000);
    rr_engine *e;
    REQUIRE(rr_engine_new(NULL, &p, &e) == RR_OK);
    /* hold the worker on a first job, queue 8 small ones, release: they share one batch */
    tjob first;
    hold_worker(&f, e, &first, 5);
    tjob t[8];
    for (int k = 0; k < 8; k++) {
        int lens[3] = {10, 20, 30};
        tjob_make(&t[k], 3, lens, 10 * (k + 1));
        REQUIRE(rr_engine_submit(e, &t[k].job) == RR_OK);
    }
    rr_engine_stats s;
    rr_engine_get_stats(e, &s);
    CHECK_EQ_INT(s.jobs_queued, 9);
    CHECK_EQ_INT(s.windows_pending, 24);
    gate(&f, 0);
    for (int k = 0; k < 8; k++) wait_done(&t[k]);
    wait_done(&first);
    CHECK_EQ_INT(f.calls, 2); /* the first job, then all 8 together (480 tokens <= 1000) */
    rr_engine_get_stats(e, &s);
    CHECK_EQ_INT(s.batch_jobs.count, 2);
    CHECK_NEAR(s.batch_jobs.sum, 9, 0);
    CHECK_NEAR(s.batch_tokens.sum, 485, 0);
    for (int k = 0; k < 8; k++)
        for (int i = 0; i < 3; i++) CHECK_NEAR(t[k].logits[i], fake_logit(&t[k].seqs[i]), 1e-6);
    rr_engine_free(e);
    tjob_free(&first);
    for (int k = 0; k < 8; k++) tjob_free(&t[k]);
}

RR_TEST(engine_queue_depth_refuses) {
    fake f;
    fake_init(&f);
    rr_engine_params p = rr_engine_default_params();
    p.score = fake_score;
    p.score_ud = &f;
    p.queue_depth = 3;
    rr_engine *e;
    REQUIRE(rr_engine_new(NULL, &p, &e) == RR_OK);
    gate(&f, 1);
    int lens[1] = {4};
    tjob t[4];
    for (int k = 0; k < 4; k++) tjob_make(&t[k], 1, lens, k + 1);
    REQUIRE(rr_engine_submit(e, &t[0].job) == RR_OK);
    wait_in_score(&f);
    CHECK(rr_engine_submit(e, &t[1].job) == RR_OK);
    CHECK(rr_engine_submit(e, &t[2].job) == RR_OK);
    CHECK(rr_engine_submit(e, &t[3].job) == RR_ERR_RANGE);
    CHECK(strstr(rr_errmsg(), "busy") != NULL);
    CHECK_EQ_INT(t[3].done, 0); /* refused jobs get no callback */
    gate(&f, 0);
    for (int k = 0; k < 3; k++) wait_done(&t[k]);
    /* room again */
    CHECK(rr_engine_submit(e, &t[3].job) == RR_OK);
    wait_done(&t[3]);
    rr_engine_stats s;
    rr_engine_get_stats(e, &s);
    CHECK_EQ_INT(s.jobs_refused, 1);
    rr_engine_free(e);
    for (int k = 0; k < 4; k++) tjob_free(&t[k]);
}

RR_TEST(engine_cancelled_job_is_dropped) {
    fake f;
    rr_engine_params p = fake_params(&f, 16);
    rr_engine *e;
    REQUIRE(rr_engine_new(NULL, &p, &e) == RR_OK);
    tjob first, gone, gone2, kept;
    hold_worker(&f, e, &first, 3);
    int lens[5] = {8, 8, 8, 8, 8};
    tjob_make(&gone, 5, lens, 1000);  /* cancelled through is_cancelled (client went away) */
    tjob_make(&gone2, 5, lens, 2000); /* cancelled through rr_engine_cancel */
    tjob_make(&kept, 5, lens, 3000);
    REQUIRE(rr_engine_submit(e, &gone.job) == RR_OK);
    REQUIRE(rr_engine_submit(e, &gone2.job) == RR_OK);
    REQUIRE(rr_engine_submit(e, &kept.job) == RR_OK);
    gone.cancel = 1;
    rr_engine_cancel(e, &gone2.job);
    CHECK_EQ_INT(gone2.done, 1); /* nothing in flight: completes at once */
    CHECK_EQ_INT(gone2.job.status, RR_ERR_CANCELLED);
    rr_engine_cancel(e, &gone2.job); /* idempotent */
    CHECK_EQ_INT(gone2.done, 1);
    gate(&f, 0);
    wait_done(&gone);
    wait_done(&kept);
    CHECK_EQ_INT(gone.job.status, RR_ERR_CANCELLED);
    CHECK_EQ_INT(kept.job.status, RR_OK);
    /* only the first job's and kept's windows reached the scorer */
    CHECK_EQ_INT(f.scored_windows, 6);
    CHECK_EQ_INT(f.scored_ids_sum, 1 + (3000 + 3001 + 3002 + 3003 + 3004));
    rr_engine_stats s;
    rr_engine_get_stats(e, &s);
    CHECK_EQ_INT(s.jobs_cancelled, 2);
    CHECK_EQ_INT(s.windows_pending, 0);
    rr_engine_free(e);
    tjob_free(&first);
    tjob_free(&gone);
    tjob_free(&gone2);
    tjob_free(&kept);
}

RR_TEST(engine_scoring_error_fails_job_with_message) {
    fake f;
    rr_engine_params p = fake_params(&f, 4); /* one window per batch */
    f.fail_id = 77;
    rr_engine *e;
    REQUIRE(rr_engine_new(NULL, &p, &e) == RR_OK);
    int lens[3] = {4, 4, 4};
    tjob bad, good;
    tjob_make(&bad, 3, lens, 76); /* windows 76, 77, 78 */
    tjob_make(&good, 3, lens, 10);
    REQUIRE(rr_engine_submit(e, &bad.job) == RR_OK);
    REQUIRE(rr_engine_submit(e, &good.job) == RR_OK);
    wait_done(&bad);
    wait_done(&good);
    CHECK_EQ_INT(bad.job.status, RR_ERR_INVALID);
    CHECK(strstr(bad.job.errmsg, "id 77") != NULL);
    CHECK_EQ_INT(good.job.status, RR_OK);
    CHECK_NEAR(good.logits[2], fake_logit(&good.seqs[2]), 1e-6);
    rr_engine_free(e);
    tjob_free(&bad);
    tjob_free(&good);
}

RR_TEST(engine_old_big_job_is_not_starved) {
    fake f;
    rr_engine_params p = fake_params(&f, 100);
    rr_engine *e;
    REQUIRE(rr_engine_new(NULL, &p, &e) == RR_OK);
    tjob first, big, small;
    hold_worker(&f, e, &first, 2);
    int blens[4] = {50, 50, 50, 50};
    int slens[10] = {5, 5, 5, 5, 5, 5, 5, 5, 5, 5};
    tjob_make(&big, 4, blens, 500);
    tjob_make(&small, 10, slens, 900);
    REQUIRE(rr_engine_submit(e, &big.job) == RR_OK);
    REQUIRE(rr_engine_submit(e, &small.job) == RR_OK);
    gate(&f, 0);
    wait_done(&big);
    wait_done(&small);
    /* first, then {big 50 + small 50}, {big 50 + big 50}... the big job got half of every batch */
    CHECK(f.calls <= 4);
    CHECK(f.max_tokens <= 100);
    rr_engine_free(e);
    tjob_free(&first);
    tjob_free(&big);
    tjob_free(&small);
}

RR_TEST(engine_small_first_then_arrival_order) {
    fake f;
    rr_engine_params p = fake_params(&f, 40);
    rr_engine *e;
    REQUIRE(rr_engine_new(NULL, &p, &e) == RR_OK);
    tjob first, t[4], tiny;
    hold_worker(&f, e, &first, 2);
    /* four requests of 4 windows whose windows get shorter with each arrival (10, 9, 8, 7 tokens),
     * then a one-window request of 9. Batches of 40: {t0 x3, tiny}, {t0, t1 x3}, {t1, t2 x3, t3},
     * {t2, t3 x3}. Picking by window length instead would start t3 first and finish tiny last. */
    for (int k = 0; k < 4; k++) {
        int lens[4] = {10 - k, 10 - k, 10 - k, 10 - k};
        tjob_make(&t[k], 4, lens, 100 * (k + 1));
        REQUIRE(rr_engine_submit(e, &t[k].job) == RR_OK);
    }
    int tl[1] = {9};
    tjob_make(&tiny, 1, tl, 900);
    REQUIRE(rr_engine_submit(e, &tiny.job) == RR_OK);
    gate(&f, 0);
    for (int k = 0; k < 4; k++) wait_done(&t[k]);
    wait_done(&tiny);
    CHECK(tiny.done_rank < t[0].done_rank);
    CHECK(t[0].done_rank < t[1].done_rank);
    CHECK(t[1].done_rank < t[2].done_rank);
    CHECK(t[1].done_rank < t[3].done_rank);
    CHECK_EQ_INT(f.calls, 5);
    CHECK(f.max_tokens <= 40);
    rr_engine_free(e);
    tjob_free(&first);
    for (int k = 0; k < 4; k++) tjob_free(&t[k]);
    tjob_free(&tiny);
}

RR_TEST(engine_two_workers_and_free_waits) {
    fake f;
    rr_engine_params p = fake_params(&f, 32);
    p.n_workers = 2;
    rr_engine *e;
    REQUIRE(rr_engine_new(NULL, &p, &e) == RR_OK);
    enum { NJ = 20 };
    tjob t[NJ];
    for (int k = 0; k < NJ; k++) {
        int lens[4] = {1 + k % 5, 9, 17, 3};
        tjob_make(&t[k], 4, lens, 50 * k + 1);
        REQUIRE(rr_engine_submit(e, &t[k].job) == RR_OK);
    }
    rr_engine_free(e); /* returns only after every job completed */
    for (int k = 0; k < NJ; k++) {
        CHECK_EQ_INT(t[k].done, 1);
        for (int i = 0; i < 4; i++) CHECK_NEAR(t[k].logits[i], fake_logit(&t[k].seqs[i]), 1e-6);
        tjob_free(&t[k]);
    }
}

RR_TEST(engine_empty_and_bad_jobs) {
    fake f;
    fake_init(&f);
    rr_engine_params p = rr_engine_default_params();
    p.score = fake_score;
    p.score_ud = &f;
    rr_engine *e;
    REQUIRE(rr_engine_new(NULL, &p, &e) == RR_OK);
    tjob t;
    tjob_make(&t, 0, NULL, 0);
    CHECK(rr_engine_submit(e, &t.job) == RR_OK);
    CHECK_EQ_INT(t.done, 1); /* completes at once */
    t.job.on_done = NULL;
    CHECK(rr_engine_submit(e, &t.job) == RR_ERR_INVALID);
    rr_engine_free(e);
    tjob_free(&t);
    rr_engine *e2 = NULL;
    CHECK(rr_engine_new(NULL, NULL, &e2) == RR_ERR_INVALID); /* no model, no scorer */
    CHECK(e2 == NULL);
    rr_engine_free(NULL);
}

RR_TEST(engine_alloc_failures_are_clean) {
    fake f;
    fake_init(&f);
    rr_engine_params p = rr_engine_default_params();
    p.score = fake_score;
    p.score_ud = &f;
    for (long n = 1; n < 40; n++) {
        rr_alloc_fail_after(n);
        rr_engine *e = NULL;
        rr_status st = rr_engine_new(NULL, &p, &e);
        if (st != RR_OK) {
            rr_alloc_fail_after(0);
            CHECK(e == NULL);
            continue;
        }
        int lens[3] = {3, 4, 5};
        tjob t;
        tjob_make(&t, 3, lens, 7);
        st = rr_engine_submit(e, &t.job);
        if (st == RR_OK) wait_done(&t);
        rr_alloc_fail_after(0);
        if (st == RR_OK) CHECK(t.job.status == RR_OK || t.job.status == RR_ERR_NOMEM);
        else CHECK(st == RR_ERR_NOMEM);
        rr_engine_free(e);
        tjob_free(&t);
    }
}

/* A batch of many short windows (what the server's batcher builds under load) holds more sequences
 * than the encoder has hidden units: every logit must still equal the sequence scored alone. */
RR_TEST(engine_many_short_windows_in_one_pass) {
    const char *dir = rr_test_data_path("models/xlmr_f32");
    char cfg[1200];
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    if (!rr_file_exists(cfg)) SKIP("test model xlmr_f32 not generated");
    rr_model *m;
    REQUIRE(rr_model_load(dir, rr_test_fp32(), &m) == RR_OK);
    rr_ctx_params cp = rr_ctx_default_params();
    cp.max_batch_tokens = 8192;
    rr_ctx *c;
    REQUIRE(rr_ctx_new(m, &cp, &c) == RR_OK);
    enum { N = 700 };
    static int32_t ids[N][4];
    static rr_seq seqs[N];
    static float got[N];
    for (int i = 0; i < N; i++) {
        ids[i][0] = 0, ids[i][1] = 5 + i % 300, ids[i][2] = 6 + (i * 7) % 300, ids[i][3] = 2;
        seqs[i] = (rr_seq){ids[i], NULL, 2 + i % 3};
    }
    REQUIRE(rr_score_ids(c, seqs, N, got) == RR_OK);
    for (int i = 0; i < N; i += 37) {
        float one;
        REQUIRE(rr_score_ids(c, &seqs[i], 1, &one) == RR_OK);
        CHECK_NEAR(got[i], one, 1e-5);
    }
    rr_ctx_free(c);
    rr_model_free(m);
}

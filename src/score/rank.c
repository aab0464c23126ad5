/*
 * rank.c -- compute_score() and rerank() of jina-reranker-v2, in C: pair scoring with longest_first
 * truncation, and ranking with sliding windows over long documents.
 *
 * rerank() semantics (spec: model.md section 3): the query is tokenized with its special tokens and
 * cut to max_query_length; each document is tokenized alone, without specials; M = room left for
 * document tokens in one pair; a document longer than M becomes windows of exactly M tokens that
 * overlap by min(overlap, M/4), the last one aligned to the document's end; a document scores the
 * maximum over its windows. Unlike the reference, empty documents are valid (they score the pair
 * with an empty document) and max_query_length is capped at max_length / 2 instead of asserting.
 *
 * Three departures on request (rr_rank_params): max_doc_tokens first cuts every document to that many
 * of its own tokens (Cohere v2's max_tokens_per_doc), long_doc = TRUNCATE_RIGHT / TRUNCATE_LEFT
 * replaces the windows with one pair holding the document's first / last M tokens (TEI's truncate
 * and truncation_direction); max_windows keeps a windowed document's first windows only (Cohere v1's
 * max_chunks_per_doc). The query is cut the same way in every mode, so a document that fits
 * scores the same whatever the mode.
 *
 * Sequences are built through the tokenizer's own post-processor, so every family gets its pair
 * template (<s> q </s></s> d </s>, or [CLS] q [SEP] d [SEP] with type ids) from tokenizer.json.
 * rr_rank streams: documents are planned and scored in chunks, so memory stays bounded by the chunk
 * and the batch buffers however many documents come in.
 */
#include "score/rank.h"

#include "encoder/encoder.h"
#include "score/listwise.h"
#include "score/prompt.h"

#include <math.h>
#include <stdlib.h>

#define CHUNK_TOKENS (1 << 18) /* planned tokens per chunk in rr_rank (1 MiB of ids) */

rr_rank_params rr_rank_default_params(void) {
    rr_rank_params p = {.max_length = 0, .max_query_length = 512, .overlap = 80, .top_n = 0, .raw = false,
                        .long_doc = RR_LONG_DOC_AUTO, .max_doc_tokens = 0, .max_windows = 0, .instruction = {NULL, 0},
                        .progress = NULL, .progress_user = NULL};
    return p;
}

rr_score_params rr_score_default_params(void) {
    rr_score_params p = {.max_length = 0, .raw = false, .progress = NULL, .progress_user = NULL};
    return p;
}

static rr_status need_tokenizer(const rr_model *m, const rr_tokenizer **t) {
    *t = rr_model_tokenizer(m);
    if (!*t)
        return rr_fail(RR_ERR_UNSUPPORTED, "%s: the model folder has no tokenizer.json, so text cannot be scored",
                       m->name);
    return RR_OK;
}

/* max_length: caller's value, else the tokenizer's model_max_length, never above the positions. */
static int resolve_max_length(const rr_model *m, int want) {
    if (m->cfg.family == RR_FAMILY_JINA_V3) return rr_v3_max_length(m, want);
    int cap = m->cfg.max_length;
    if (want <= 0 && m->dec) want = 8192; /* both decoder rerankers' reference default */
    if (want <= 0) {
        const rr_tokenizer *t = rr_model_tokenizer(m);
        want = t ? rr_tokenizer_model_max_length(t) : 0;
        if (want <= 0) want = cap;
    }
    return RR_MIN(want, cap);
}

rr_status rr_rank_resolve_params(const rr_model *m, const rr_rank_params *in, rr_rank_params *out) {
    rr_rank_params p = in ? *in : rr_rank_default_params();
    if (p.max_length < 0) return rr_fail(RR_ERR_INVALID, "max_length %d is negative", p.max_length);
    if (p.max_query_length < 1) return rr_fail(RR_ERR_INVALID, "max_query_length %d is below 1", p.max_query_length);
    if (p.top_n < 0) return rr_fail(RR_ERR_INVALID, "top_n %d is negative", p.top_n);
    if (p.overlap < 0) return rr_fail(RR_ERR_INVALID, "overlap %d is negative", p.overlap);
    if (p.long_doc != RR_LONG_DOC_WINDOW && p.long_doc != RR_LONG_DOC_TRUNCATE_RIGHT &&
        p.long_doc != RR_LONG_DOC_TRUNCATE_LEFT && p.long_doc != RR_LONG_DOC_AUTO)
        return rr_fail(RR_ERR_INVALID, "long_doc %d is not an rr_long_doc value", (int)p.long_doc);
    if (p.long_doc == RR_LONG_DOC_AUTO && !m->dec) p.long_doc = RR_LONG_DOC_WINDOW; /* the encoders' own rule */
    if (p.max_doc_tokens < 0) return rr_fail(RR_ERR_INVALID, "max_doc_tokens %d is negative", p.max_doc_tokens);
    if (p.max_windows < 0) return rr_fail(RR_ERR_INVALID, "max_windows %d is negative", p.max_windows);
    p.max_length = resolve_max_length(m, p.max_length);
    p.max_query_length = RR_MIN(p.max_query_length, p.max_length / 2);
    *out = p;
    return RR_OK;
}

/* ------------------------------------------------------------------ plans */

static rr_status plan_reserve(rr_rank_plan *pl, size_t tokens) {
    if (pl->n_seqs == pl->seq_cap) {
        int cap = pl->seq_cap ? pl->seq_cap * 2 : 64;
        rr_seq *s = rr_realloc(pl->seqs, (size_t)cap * sizeof *s);
        if (!s) return rr_fail(RR_ERR_NOMEM, "out of memory planning sequences");
        pl->seqs = s;
        int *d = rr_realloc(pl->seq_doc, (size_t)cap * sizeof *d);
        if (!d) return rr_fail(RR_ERR_NOMEM, "out of memory planning sequences");
        pl->seq_doc = d;
        pl->seq_cap = cap;
    }
    if (pl->len + tokens > pl->cap) {
        size_t cap = pl->cap ? pl->cap : 4096;
        while (cap < pl->len + tokens) cap *= 2;
        int32_t *a = rr_realloc(pl->ids, cap * sizeof *a);
        if (!a) return rr_fail(RR_ERR_NOMEM, "out of memory planning sequences");
        pl->ids = a;
        int32_t *b = rr_realloc(pl->types, cap * sizeof *b);
        if (!b) return rr_fail(RR_ERR_NOMEM, "out of memory planning sequences");
        pl->types = b;
        pl->cap = cap;
    }
    return RR_OK;
}

/* Appends one finished sequence (e) for document doc. Sequence pointers are resolved by
 * plan_seal once the storage stops moving; until then seqs[i].ids holds the offset. */
static rr_status plan_push(rr_rank_plan *pl, const rr_encoding *e, int doc) {
    rr_status s = plan_reserve(pl, e->len);
    if (s) return s;
    memcpy(pl->ids + pl->len, e->ids, e->len * sizeof *e->ids);
    memcpy(pl->types + pl->len, e->type_ids, e->len * sizeof *e->type_ids);
    pl->seqs[pl->n_seqs] = (rr_seq){(const int32_t *)(uintptr_t)pl->len, NULL, (int)e->len, NULL, 0};
    pl->seq_doc[pl->n_seqs++] = doc;
    pl->len += e->len;
    pl->total_tokens += (long)e->len;
    return RR_OK;
}

static void plan_seal(rr_rank_plan *pl) {
    for (int i = 0; i < pl->n_seqs; i++) {
        size_t off = (size_t)(uintptr_t)pl->seqs[i].ids;
        pl->seqs[i].ids = pl->ids + off;
        pl->seqs[i].type_ids = pl->types + off;
    }
}

static void plan_reset(rr_rank_plan *pl) {
    pl->n_docs = pl->n_seqs = 0;
    pl->len = 0;
    pl->total_tokens = 0;
}

void rr_rank_plan_free(rr_rank_plan *pl) {
    if (!pl) return;
    rr_free(pl->seqs);
    rr_free(pl->seq_doc);
    rr_free(pl->ids);
    rr_free(pl->types);
    rr_free(pl->emb);
    memset(pl, 0, sizeof *pl);
}

/* State shared by the documents of one rank request. */
typedef struct ranker {
    const rr_tokenizer *tok;
    rr_encoding q;      /* query tokens, truncated, without specials */
    rr_encoding d;      /* current document's tokens */
    rr_encoding seq;    /* post-processed pair */
    int room;           /* M: document tokens per window */
    int overlap;
    rr_long_doc long_doc;
    int max_doc;        /* cap on a document's own tokens; 0 = none */
    int max_windows;    /* cap on a document's windows; 0 = none */
    rr_encode_params bare; /* no specials, no truncation: the windows are cut here */
    int dec;            /* a decoder: documents become whole prompts (prompt.c) */
    rr_prompt pr;
} ranker;

static void ranker_free(ranker *r) {
    rr_encoding_free(&r->q);
    rr_encoding_free(&r->d);
    rr_encoding_free(&r->seq);
    rr_prompt_free(&r->pr);
}

static rr_status ranker_init(ranker *r, const rr_model *m, rr_text query, const rr_rank_params *p) {
    memset(r, 0, sizeof *r);
    r->long_doc = p->long_doc;
    r->max_doc = p->max_doc_tokens;
    r->max_windows = p->max_windows;
    if (m->dec) {
        /* AUTO: the reference code's cut of the prompt's body; else windows or one truncated prompt
         * over the document's ids, the rest of the prompt kept whole */
        r->dec = 1;
        rr_status s = rr_prompt_init(&r->pr, m, query, p->instruction, p->max_length);
        if (!s && r->long_doc != RR_LONG_DOC_AUTO) s = rr_prompt_set_windows(&r->pr, p->max_query_length);
        if (s) return s;
        r->room = r->pr.doc_room;
        r->overlap = RR_MIN(p->overlap, r->room / 4);
        return RR_OK;
    }
    r->bare = rr_encode_default_params();
    r->bare.add_special = false;
    rr_status s = need_tokenizer(m, &r->tok);
    if (s) return s;
    int single = rr_tokenizer_num_special(r->tok, false), pair = rr_tokenizer_num_special(r->tok, true);
    int qmax = p->max_query_length - single;
    if (qmax < 0) qmax = 0;
    s = rr_tokenizer_encode(r->tok, query, NULL, &r->bare, &r->q);
    if (s) return s;
    if (r->q.len > (size_t)qmax) r->q.len = (size_t)qmax;
    r->room = p->max_length - (int)r->q.len - pair;
    if (r->room < 1)
        return rr_fail(RR_ERR_RANGE, "max_length %d leaves no room for document tokens after a %zu-token query",
                       p->max_length, r->q.len + (size_t)pair);
    r->overlap = RR_MIN(p->overlap, r->room / 4);
    return RR_OK;
}

/* Appends the pair (query, d[from, from + n)) for document doc. The window is a view into the
 * document's tokens: post_process reads it and writes the pair into r->seq. */
static rr_status window_push(ranker *r, rr_rank_plan *pl, size_t from, size_t n, int doc) {
    rr_status s;
    if (r->dec) {
        s = rr_prompt_build(&r->pr, from, n, &r->seq); /* the whole prompt around the document's ids */
    } else {
        rr_encoding w = {r->d.ids + from, r->d.type_ids + from, n, n};
        s = rr_tokenizer_post_process(r->tok, &r->q, &w, &r->seq);
    }
    return s ? s : plan_push(pl, &r->seq, doc);
}

/* Tokenizes document `doc` and appends its sequences: the document's tokens [off, off + L) after the
 * max_doc cap, then one pair if they fit, else windows or one truncated pair. */
static rr_status ranker_add(ranker *r, rr_rank_plan *pl, rr_text d, int doc) {
    rr_status s = r->dec ? rr_prompt_tokenize_doc(&r->pr, d) : rr_tokenizer_encode(r->tok, d, NULL, &r->bare, &r->d);
    if (s) return s;
    size_t off = 0, L = r->dec ? r->pr.body.len - r->pr.doc_off : r->d.len, M = (size_t)r->room;
    int keep_end = r->long_doc == RR_LONG_DOC_TRUNCATE_LEFT;
    if (r->max_doc > 0 && L > (size_t)r->max_doc) {
        /* cut on the token ids, not the text, so the cap is exact whatever the tokenizer merges */
        if (keep_end) off = L - (size_t)r->max_doc;
        L = (size_t)r->max_doc;
    }
    if (r->long_doc == RR_LONG_DOC_AUTO) return window_push(r, pl, off, L, doc); /* decoders: the reference's cut */
    if (L <= M) return window_push(r, pl, off, L, doc);
    if (r->long_doc != RR_LONG_DOC_WINDOW) return window_push(r, pl, keep_end ? off + L - M : off, M, doc);
    if (r->max_windows > 0) {
        /* n windows of M with stride M - overlap cover exactly M + (n - 1) * stride tokens: cutting the
         * document there makes the loop below stop at the n-th window, aligned to the new end */
        size_t stride = M - (size_t)r->overlap, span = M + (size_t)(r->max_windows - 1) * stride;
        if (L > span) L = span;
    }
    size_t start = 0;
    for (;;) {
        size_t end = start + M;
        if (end >= L) return window_push(r, pl, off + L - M, M, doc);
        if ((s = window_push(r, pl, off + start, M, doc))) return s;
        start = end - (size_t)r->overlap;
    }
}

rr_status rr_rank_plan_build(const rr_model *m, rr_text query, const rr_text *docs, int n_docs,
                             const rr_rank_params *p, rr_rank_plan *pl) {
    if (n_docs < 0 || (n_docs && !docs)) return rr_fail(RR_ERR_INVALID, "rr_rank_plan_build: bad arguments");
    if (m->cfg.family == RR_FAMILY_JINA_V3) return rr_v3_plan_build(m, query, docs, n_docs, p, pl);
    ranker r;
    rr_status s = ranker_init(&r, m, query, p);
    rr_hook h = {p->progress, p->progress_user, 0, 0};
    plan_reset(pl);
    for (int i = 0; i < n_docs && !s; i++) {
        if ((s = ranker_add(&r, pl, docs[i], i))) rr_errmsg_prefix("document %d", i);
        else s = rr_hook_tick(&h, i);
    }
    ranker_free(&r);
    if (s) return s;
    pl->n_docs = n_docs;
    plan_seal(pl);
    return RR_OK;
}

/* Decoders: one whole prompt per pair, each with its own query and instruction. */
static rr_status prompts_plan_build(const rr_model *m, const rr_text *queries, const rr_text *docs,
                                    const rr_text *instructions, int n, int max_length, rr_rank_plan *pl,
                                    rr_hook *h) {
    rr_encoding e = {0};
    rr_status s = RR_OK;
    plan_reset(pl);
    for (int i = 0; i < n && !s; i++) {
        rr_prompt pr;
        rr_text instr = instructions ? instructions[i] : (rr_text){NULL, 0};
        s = rr_prompt_init(&pr, m, queries[i], instr, resolve_max_length(m, max_length));
        if (!s) s = rr_prompt_doc(&pr, docs[i], &e);
        if (!s) s = plan_push(pl, &e, i);
        else rr_errmsg_prefix("pair %d", i);
        rr_prompt_free(&pr);
        if (!s) s = rr_hook_tick(h, i);
    }
    rr_encoding_free(&e);
    if (s) return s;
    pl->n_docs = n;
    plan_seal(pl);
    return RR_OK;
}

rr_status rr_pairs_plan_build_instructed(const rr_model *m, const rr_text *queries, const rr_text *docs,
                                         const rr_text *instructions, int n, int max_length, rr_rank_plan *pl,
                                         rr_hook *h) {
    if (n < 0 || (n && (!queries || !docs))) return rr_fail(RR_ERR_INVALID, "rr_score_pairs: bad arguments");
    if (m->cfg.family == RR_FAMILY_JINA_V3) return rr_v3_pairs_plan_build(m, queries, docs, instructions, n, pl, h);
    if (m->dec) return prompts_plan_build(m, queries, docs, instructions, n, max_length, pl, h);
    return rr_pairs_plan_build(m, queries, docs, n, max_length, pl, h);
}

rr_status rr_pairs_plan_build(const rr_model *m, const rr_text *queries, const rr_text *docs, int n,
                              int max_length, rr_rank_plan *pl, rr_hook *h) {
    if (m->cfg.family == RR_FAMILY_JINA_V3 && n >= 0 && (!n || (queries && docs)))
        return rr_v3_pairs_plan_build(m, queries, docs, NULL, n, pl, h);
    if (m->dec && n >= 0 && (!n || (queries && docs)))
        return prompts_plan_build(m, queries, docs, NULL, n, max_length, pl, h);
    const rr_tokenizer *t;
    rr_status s = need_tokenizer(m, &t);
    if (s) return s;
    if (n < 0 || (n && (!queries || !docs))) return rr_fail(RR_ERR_INVALID, "rr_score_pairs: bad arguments");
    int ml = resolve_max_length(m, max_length);
    rr_encoding e = {0};
    rr_encode_params ep = rr_encode_default_params();
    ep.max_length = ml;
    plan_reset(pl);
    for (int i = 0; i < n && !s; i++) {
        s = rr_tokenizer_encode(t, queries[i], &docs[i], &ep, &e);
        if (s) rr_errmsg_prefix("pair %d", i);
        else s = plan_push(pl, &e, i);
        if (!s) s = rr_hook_tick(h, i);
    }
    rr_encoding_free(&e);
    if (s) return s;
    pl->n_docs = n;
    plan_seal(pl);
    return RR_OK;
}

/* ------------------------------------------------------------------ scoring and results */

/* Sort key of a sequence: length in the high half, index in the low half (so ties keep order). */
static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

rr_status rr_seq_order_by_len(const rr_seq *seqs, int n, int *order) {
    if (n <= 0) return RR_OK;
    uint64_t *keys = rr_malloc((size_t)n * sizeof *keys);
    if (!keys) return rr_fail(RR_ERR_NOMEM, "out of memory sorting %d sequences", n);
    for (int i = 0; i < n; i++) keys[i] = ((uint64_t)(uint32_t)RR_MAX(seqs[i].len, 0) << 32) | (uint32_t)i;
    qsort(keys, (size_t)n, sizeof *keys, cmp_u64);
    for (int i = 0; i < n; i++) order[i] = (int)(keys[i] & 0xffffffffu);
    rr_free(keys);
    return RR_OK;
}

rr_status rr_plan_score(rr_ctx *c, const rr_rank_plan *pl, float *logits, rr_hook *h) {
    int n = pl->n_seqs;
    if (n == 0) return RR_OK;
    int *order = rr_malloc((size_t)n * sizeof *order);
    rr_seq *seqs = rr_malloc((size_t)n * sizeof *seqs);
    float *out = rr_malloc((size_t)n * sizeof *out);
    rr_status s = (!order || !seqs || !out) ? rr_fail(RR_ERR_NOMEM, "out of memory") : RR_OK;
    if (!s) {
        /* similar lengths side by side keep every pass evenly filled */
        s = rr_seq_order_by_len(pl->seqs, n, order);
    }
    if (!s) {
        for (int i = 0; i < n; i++) seqs[i] = pl->seqs[order[i]];
        s = rr_score_ids_hooked(c, seqs, n, out, h);
    }
    if (!s)
        for (int i = 0; i < n; i++) logits[order[i]] = out[i];
    rr_free(order);
    rr_free(seqs);
    rr_free(out);
    return s;
}

/* res[doc_base + d].score = max(itself, logits of d's sequences) */
static void fold_best(const rr_rank_plan *pl, const float *logits, int doc_base, rr_rank_result *res) {
    for (int i = 0; i < pl->n_seqs; i++) {
        float *b = &res[doc_base + pl->seq_doc[i]].score;
        if (logits[i] > *b) *b = logits[i];
    }
}

static void init_results(rr_rank_result *res, int n) {
    for (int i = 0; i < n; i++) res[i] = (rr_rank_result){i, -INFINITY};
}

/* Descending score, ties (and NaN, sorted last) by lower index. */
static int cmp_result(const void *a, const void *b) {
    const rr_rank_result *x = a, *y = b;
    int xn = isnan(x->score), yn = isnan(y->score);
    if (xn != yn) return xn - yn;
    if (!xn && x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->index - y->index;
}

/* Turns per-document maximum logits into sorted, cut results. listwise: the scores are cosines,
 * never passed through a sigmoid. */
static void make_results(rr_rank_result *res, int n, const rr_rank_params *p, int *n_res, int listwise) {
    if (!p->raw && !listwise)
        for (int i = 0; i < n; i++) res[i].score = rr_sigmoid(res[i].score);
    if (n > 1) qsort(res, (size_t)n, sizeof *res, cmp_result);
    *n_res = p->top_n > 0 && p->top_n < n ? p->top_n : n;
}

void rr_rank_plan_finish(const rr_rank_plan *pl, const float *logits, const rr_rank_params *p,
                         rr_rank_result *results, int *n_results) {
    init_results(results, pl->n_docs);
    if (pl->listwise) {
        float *sc = rr_malloc((size_t)(pl->n_docs ? pl->n_docs : 1) * sizeof *sc);
        if (!sc || rr_v3_scores(pl, logits, sc))
            for (int i = 0; i < pl->n_docs; i++) results[i].score = NAN;
        else
            for (int i = 0; i < pl->n_docs; i++) results[i].score = sc[i];
        rr_free(sc);
    } else {
        fold_best(pl, logits, 0, results);
    }
    make_results(results, pl->n_docs, p, n_results, pl->listwise);
}

rr_status rr_score_pairs(rr_ctx *c, const rr_text *queries, const rr_text *docs, int n, const rr_score_params *params,
                         float *scores, rr_usage *usage) {
    return rr_score_pairs_instructed(c, queries, docs, NULL, n, params, scores, usage);
}

rr_status rr_score_pairs_instructed(rr_ctx *c, const rr_text *queries, const rr_text *docs,
                                    const rr_text *instructions, int n, const rr_score_params *params, float *scores,
                                    rr_usage *usage) {
    if (!c || n < 0 || (n && !scores)) return rr_fail(RR_ERR_INVALID, "rr_score_pairs: bad arguments");
    rr_score_params p = params ? *params : rr_score_default_params();
    rr_rank_plan pl = {0};
    rr_hook h = {p.progress, p.progress_user, 0, 0};
    rr_status s =
        rr_pairs_plan_build_instructed(rr_ctx_model(c), queries, docs, instructions, n, p.max_length, &pl, &h);
    h.total = pl.n_seqs;
    if (!s) s = rr_plan_score(c, &pl, scores, &h);
    if (!s && pl.listwise) {
        /* scores held the blocks' marker counts; each pair is one block */
        float *cnt = rr_malloc((size_t)(n ? n : 1) * sizeof *cnt);
        if (!cnt) s = rr_fail(RR_ERR_NOMEM, "out of memory");
        else {
            memcpy(cnt, scores, (size_t)n * sizeof *cnt);
            s = rr_v3_scores(&pl, cnt, scores);
        }
        rr_free(cnt);
        p.raw = 1;
    }
    if (!s && !p.raw)
        for (int i = 0; i < n; i++) scores[i] = rr_sigmoid(scores[i]);
    if (!s && usage) usage->total_tokens = pl.total_tokens;
    rr_rank_plan_free(&pl);
    return s;
}

rr_status rr_rank(rr_ctx *c, rr_text query, const rr_text *docs, int n_docs, const rr_rank_params *params,
                  rr_rank_result *results, int *n_results, rr_usage *usage) {
    if (!c || n_docs < 0 || (n_docs && (!docs || !results)) || !n_results)
        return rr_fail(RR_ERR_INVALID, "rr_rank: bad arguments");
    const rr_model *m = rr_ctx_model(c);
    rr_rank_params p;
    rr_status s = rr_rank_resolve_params(m, params, &p);
    if (s) return s;
    rr_hook h = {p.progress, p.progress_user, 0, 0};
    if (m->cfg.family == RR_FAMILY_JINA_V3) {
        /* blocks hold their documents' embeddings until the query is merged across blocks */
        rr_rank_plan pl = {0};
        float *lg = NULL;
        s = rr_v3_plan_build(m, query, docs, n_docs, &p, &pl);
        if (!s && !(lg = rr_malloc((size_t)(pl.n_seqs ? pl.n_seqs : 1) * sizeof *lg)))
            s = rr_fail(RR_ERR_NOMEM, "out of memory");
        h.total = pl.n_seqs;
        if (!s) s = rr_plan_score(c, &pl, lg, &h);
        if (!s) {
            rr_rank_plan_finish(&pl, lg, &p, results, n_results);
            if (usage) usage->total_tokens = pl.total_tokens;
        }
        rr_free(lg);
        rr_rank_plan_free(&pl);
        return s;
    }
    ranker r;
    s = ranker_init(&r, m, query, &p);
    float *logits = NULL;
    size_t logits_cap = 0;
    rr_rank_plan pl = {0};
    long total = 0;
    init_results(results, n_docs); /* scores hold each document's best logit until the end */
    int d = 0;
    while (!s && d < n_docs) {
        /* plan a chunk of documents, score it, keep only each document's best logit */
        int first = d;
        plan_reset(&pl);
        while (!s && d < n_docs && (d == first || pl.len < CHUNK_TOKENS)) {
            if ((s = ranker_add(&r, &pl, docs[d], d - first))) rr_errmsg_prefix("document %d", d);
            else s = rr_hook_tick(&h, d);
            d++;
        }
        if (s) break;
        pl.n_docs = d - first;
        plan_seal(&pl);
        if ((size_t)pl.n_seqs > logits_cap) {
            float *nl = rr_realloc(logits, (size_t)pl.n_seqs * sizeof *nl);
            if (!nl) {
                s = rr_fail(RR_ERR_NOMEM, "out of memory");
                break;
            }
            logits = nl;
            logits_cap = (size_t)pl.n_seqs;
        }
        h.total += pl.n_seqs;
        s = rr_plan_score(c, &pl, logits, &h);
        if (!s) fold_best(&pl, logits, first, results);
        total += pl.total_tokens;
    }
    if (!s) {
        make_results(results, n_docs, &p, n_results, 0);
        if (usage) usage->total_tokens = total;
    }
    ranker_free(&r);
    rr_rank_plan_free(&pl);
    rr_free(logits);
    return s;
}

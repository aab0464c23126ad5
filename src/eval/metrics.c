/*
 * metrics.c -- retrieval metrics with trec_eval's exact semantics (trec_eval 10.0: m_ndcg_cut.c,
 * m_recall.c, m_recip_rank.c, m_map.c, m_P.c). The run arrives already in trec_eval order (see
 * trec.c); here each ranked document gets its grade from the qrels, and the per-query values are
 * averaged over the queries trec_eval would average.
 *
 * The parts that differ between evaluation toolkits, and what this file does:
 * - nDCG: gain = grade (not 2^grade - 1), discount log2(rank + 1), ideal DCG from every judged
 *   grade of the query (retrieved or not), cut at the same k; the relevance threshold does not
 *   apply. Unjudged and non-positive grades gain 0.
 * - recall, MRR, MAP and P count a document as relevant when its grade >= rel_level (-l);
 *   unjudged documents are never relevant, whatever the level. P@k divides by k even when fewer
 *   than k documents were retrieved. A query with no relevant document scores 0.
 */
#include "rerank_eval.h"

#include "core/core.h"

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define UNJUDGED RR_EVAL_UNJUDGED

/* ------------------------------------------------------------------ names */

static bool take_k(const char *s, int *k) {
    if (!*s) return false;
    long v = 0;
    for (; *s; s++) {
        if (!isdigit((unsigned char)*s)) return false;
        v = v * 10 + (*s - '0');
        if (v > 100000000) return false;
    }
    if (v < 1) return false;
    *k = (int)v;
    return true;
}

/* Parses one lowercased name; false if unknown. */
static bool parse_one(const char *s, rr_eval_metric *m) {
    static const struct {
        const char *prefix;
        rr_eval_kind kind;
        bool k_optional; /* the bare name (no cutoff) is valid */
    } forms[] = {
        {"ndcg_cut_", RR_EVAL_NDCG, false},   {"ndcg_cut.", RR_EVAL_NDCG, false},  {"ndcg@", RR_EVAL_NDCG, false},
        {"recall_", RR_EVAL_RECALL, false},   {"recall.", RR_EVAL_RECALL, false},  {"recall@", RR_EVAL_RECALL, false},
        {"mrr@", RR_EVAL_RECIP_RANK, false},  {"rr@", RR_EVAL_RECIP_RANK, false},  {"recip_rank@", RR_EVAL_RECIP_RANK, false},
        {"precision@", RR_EVAL_PRECISION, false}, {"p@", RR_EVAL_PRECISION, false}, {"p_", RR_EVAL_PRECISION, false},
        {"p.", RR_EVAL_PRECISION, false},
    };
    memset(m, 0, sizeof(*m));
    if (!strcmp(s, "map")) {
        m->kind = RR_EVAL_MAP;
    } else if (!strcmp(s, "mrr") || !strcmp(s, "rr") || !strcmp(s, "recip_rank")) {
        m->kind = RR_EVAL_RECIP_RANK;
    } else if (!strcmp(s, "ndcg")) {
        m->kind = RR_EVAL_NDCG;
    } else {
        size_t i;
        for (i = 0; i < RR_ARRAY_LEN(forms); i++) {
            size_t n = strlen(forms[i].prefix);
            if (!strncmp(s, forms[i].prefix, n)) {
                if (!take_k(s + n, &m->k)) return false;
                m->kind = forms[i].kind;
                break;
            }
        }
        if (i == RR_ARRAY_LEN(forms)) return false;
    }
    static const char *const base[] = {"ndcg", "recall", "mrr", "map", "p"};
    if (m->k) snprintf(m->name, sizeof(m->name), "%s@%d", base[m->kind], m->k);
    else snprintf(m->name, sizeof(m->name), "%s", base[m->kind]);
    return true;
}

rr_status rr_eval_metrics_parse(const char *spec, rr_eval_metric *out, int *n_out) {
    int n = 0;
    const char *p = spec ? spec : "";
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char tok[48];
        while (len && (*p == ' ')) p++, len--;
        while (len && p[len - 1] == ' ') len--;
        if (len == 0 || len >= sizeof(tok))
            return rr_fail(RR_ERR_INVALID, "metrics: empty or overlong name in '%s'", spec);
        for (size_t i = 0; i < len; i++) tok[i] = (char)tolower((unsigned char)p[i]);
        tok[len] = 0;
        if (n == RR_EVAL_MAX_METRICS)
            return rr_fail(RR_ERR_INVALID, "metrics: more than %d metrics", RR_EVAL_MAX_METRICS);
        if (!parse_one(tok, &out[n]))
            return rr_fail(RR_ERR_INVALID,
                           "metrics: unknown metric '%s' (known: ndcg@K, recall@K, mrr@K, mrr, map, p@K; "
                           "trec_eval names ndcg_cut_K, recall_K, recip_rank, P_K)", tok);
        for (int j = 0; j < n; j++)
            if (!strcmp(out[j].name, out[n].name)) return rr_fail(RR_ERR_INVALID, "metrics: '%s' given twice", tok);
        n++;
        p = e ? e + 1 : p + len;
    }
    if (n == 0) return rr_fail(RR_ERR_INVALID, "metrics: no metric given");
    *n_out = n;
    return RR_OK;
}

/* ------------------------------------------------------------------ one query */

static int cmp_int_desc(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x < y) - (x > y);
}

/* judged_desc: every judged grade of the query, sorted descending. */
static void query_metrics(const int *ranked, int n_ranked, const int *judged_desc, int n_judged, int rel_level,
                          const rr_eval_metric *m, int n_metrics, double *out) {
    int num_rel = 0;
    for (int i = 0; i < n_judged; i++)
        if (judged_desc[i] >= rel_level) num_rel++;
    for (int j = 0; j < n_metrics; j++) {
        int k = m[j].k > 0 ? m[j].k : INT_MAX;
        int top = RR_MIN(k, n_ranked);
        double v = 0;
        switch (m[j].kind) {
        case RR_EVAL_NDCG: {
            double dcg = 0, idcg = 0;
            for (int i = 0; i < top; i++)
                if (ranked[i] > 0) dcg += ranked[i] / log2((double)i + 2.0);
            for (int i = 0; i < n_judged && i < k && judged_desc[i] > 0; i++)
                idcg += judged_desc[i] / log2((double)i + 2.0);
            v = idcg > 0 ? dcg / idcg : 0;
            break;
        }
        case RR_EVAL_RECALL:
        case RR_EVAL_PRECISION: {
            int rel = 0;
            for (int i = 0; i < top; i++)
                if (ranked[i] != UNJUDGED && ranked[i] >= rel_level) rel++;
            if (m[j].kind == RR_EVAL_RECALL) v = num_rel ? (double)rel / num_rel : 0;
            else v = (double)rel / (m[j].k > 0 ? m[j].k : RR_MAX(n_ranked, 1));
            break;
        }
        case RR_EVAL_RECIP_RANK:
            for (int i = 0; i < top; i++)
                if (ranked[i] != UNJUDGED && ranked[i] >= rel_level) {
                    v = 1.0 / (i + 1);
                    break;
                }
            break;
        case RR_EVAL_MAP: {
            int rel = 0;
            double sum = 0;
            for (int i = 0; i < n_ranked; i++)
                if (ranked[i] != UNJUDGED && ranked[i] >= rel_level) sum += (double)++rel / (i + 1);
            v = num_rel ? sum / num_rel : 0;
            break;
        }
        }
        out[j] = v;
    }
}

void rr_eval_query(const int *ranked, int n_ranked, const int *judged, int n_judged, int rel_level,
                   const rr_eval_metric *m, int n_metrics, double *out) {
    /* Public entry for callers with their own arrays: ideal order needs a sorted copy. */
    int stack[256];
    int *sorted = n_judged <= 256 ? stack : rr_malloc((size_t)n_judged * sizeof(int));
    if (!sorted) { /* out of memory: leave 0s rather than crash; rr_eval_evaluate never gets here */
        for (int j = 0; j < n_metrics; j++) out[j] = 0;
        return;
    }
    memcpy(sorted, judged, (size_t)n_judged * sizeof(int));
    qsort(sorted, (size_t)n_judged, sizeof(int), cmp_int_desc);
    query_metrics(ranked, n_ranked, sorted, n_judged, rel_level, m, n_metrics, out);
    if (sorted != stack) rr_free(sorted);
}

/* ------------------------------------------------------------------ a whole run */

rr_status rr_eval_evaluate(const rr_eval_qrels *q, const rr_eval_run *r, const rr_eval_metric *m, int n_metrics,
                           int rel_level, int complete, rr_eval_result *out) {
    memset(out, 0, sizeof(*out));
    if (n_metrics < 1 || n_metrics > RR_EVAL_MAX_METRICS)
        return rr_fail(RR_ERR_INVALID, "eval: %d metrics (1..%d allowed)", n_metrics, RR_EVAL_MAX_METRICS);
    int max_hits = 1, max_judged = 1;
    for (int i = 0; i < r->n_queries; i++) max_hits = RR_MAX(max_hits, r->off[i + 1] - r->off[i]);
    for (int i = 0; i < q->n_queries; i++) max_judged = RR_MAX(max_judged, q->off[i + 1] - q->off[i]);
    int *ranked = rr_malloc((size_t)max_hits * sizeof(int));
    int *judged = rr_malloc((size_t)max_judged * sizeof(int));
    double *values = rr_malloc(((size_t)q->n_queries + 1) * (size_t)n_metrics * sizeof(double));
    const char **qids = rr_malloc(((size_t)q->n_queries + 1) * sizeof(*qids));
    if (!ranked || !judged || !values || !qids) {
        rr_free(ranked);
        rr_free(judged);
        rr_free(values);
        rr_free(qids);
        return rr_fail(RR_ERR_NOMEM, "eval: out of memory evaluating %d queries", q->n_queries);
    }
    int nq = 0;
    for (int qi = 0; qi < q->n_queries; qi++) {
        int ri = rr_eval_run_find(r, q->qids[qi]);
        double *row = values + (size_t)nq * (size_t)n_metrics;
        if (ri < 0) {
            if (!complete) continue;
            for (int j = 0; j < n_metrics; j++) row[j] = 0;
            out->n_missing++;
        } else {
            int n_ranked = r->off[ri + 1] - r->off[ri];
            for (int i = 0; i < n_ranked; i++) {
                int is_judged;
                int g = rr_eval_qrels_grade(q, qi, r->hits[r->off[ri] + i].docno, &is_judged);
                ranked[i] = is_judged ? g : UNJUDGED;
            }
            int n_judged = q->off[qi + 1] - q->off[qi];
            memcpy(judged, q->grades + q->off[qi], (size_t)n_judged * sizeof(int));
            qsort(judged, (size_t)n_judged, sizeof(int), cmp_int_desc);
            query_metrics(ranked, n_ranked, judged, n_judged, rel_level, m, n_metrics, row);
        }
        qids[nq++] = q->qids[qi];
    }
    for (int ri = 0; ri < r->n_queries; ri++)
        if (rr_eval_qrels_find(q, r->qids[ri]) < 0) out->n_run_only++;
    for (int j = 0; j < n_metrics; j++) {
        double s = 0;
        for (int i = 0; i < nq; i++) s += values[(size_t)i * (size_t)n_metrics + (size_t)j];
        out->mean[j] = nq ? s / nq : 0;
    }
    rr_free(ranked);
    rr_free(judged);
    out->n_metrics = n_metrics;
    out->n_queries = nq;
    out->qids = qids;
    out->values = values;
    return RR_OK;
}

void rr_eval_result_free(rr_eval_result *res) {
    if (!res) return;
    rr_free(res->values);
    rr_free((void *)res->qids);
    memset(res, 0, sizeof(*res));
}

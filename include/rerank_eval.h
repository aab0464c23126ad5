/*
 * rerank_eval.h -- offline evaluation of rankings (librerank_eval; the `rerank eval` command): relevance judgments (qrels),
 * ranked lists (runs), retrieval metrics that reproduce trec_eval, evaluation data sets (BEIR
 * folders and candidate-list JSONL) and a BM25 first stage. This module sits beside the pipeline,
 * not in it: it only produces the (query, documents) lists that rr_rank reorders and measures the
 * result, so nothing in it depends on a model.
 *
 * Semantics follow trec_eval 10.0 (usnistgov/trec_eval, form_res_rels.c and m_*.c), see
 * rr_eval_evaluate. Objects here are plain structs owned by the caller: zero-initialize, fill with
 * the load/add functions, release with the matching *_free (which accepts zeroed or half-built
 * structs). None of them is thread-safe while being built; finished qrels/runs/data are read-only.
 */
#ifndef RERANK_EVAL_H
#define RERANK_EVAL_H

#include "rerank_util.h"

#include <limits.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ strings */

/* Append-only string storage: many small strings in few large blocks, all freed at once. */
typedef struct rr_eval_pool {
    char **blocks;
    size_t n_blocks, cap_blocks;
    char *cur;   /* free space of the current block */
    size_t left; /* bytes left at cur */
} rr_eval_pool;

/* Copies s[0..len) plus a NUL into the pool; NULL on out-of-memory (no message recorded). */
RR_API char *rr_eval_pool_strndup(rr_eval_pool *p, const char *s, size_t len);
RR_API void rr_eval_pool_free(rr_eval_pool *p);

/* Open-addressing hash map from NUL-terminated strings to ints. Keys are borrowed (keep them in a
 * pool that outlives the map). */
typedef struct rr_eval_strmap {
    const char **keys; /* [cap], NULL = empty slot */
    int *vals;         /* [cap] */
    size_t cap, n;
} rr_eval_strmap;

/* The value of key s[0..len), or -1 when absent. */
RR_API int rr_eval_strmap_get(const rr_eval_strmap *m, const char *s, size_t len);
/* Inserts key -> val unless the key is present; *found receives the existing value or -1. */
RR_API rr_status rr_eval_strmap_put(rr_eval_strmap *m, const char *key, int val, int *found);
RR_API void rr_eval_strmap_free(rr_eval_strmap *m);

/* ------------------------------------------------------------------ qrels */

/* Relevance judgments. After rr_eval_qrels_finish the judgments of query i are
 * docnos/grades[off[i] .. off[i+1]), sorted by docno (strcmp) for binary search; queries keep the
 * order of their first appearance. */
typedef struct rr_eval_qrels {
    rr_eval_pool pool;
    rr_eval_strmap qmap; /* qid -> query index */
    int n_queries, cap_queries;
    const char **qids; /* [n_queries] */
    int *off;          /* [n_queries + 1] after finish */
    size_t n, cap;     /* judgments */
    const char **docnos;
    int *grades;
    int *qidx;  /* [n] query index of each judgment (kept for building) */
    int *lines; /* [n] source line of each judgment, 0 when added by code */
} rr_eval_qrels;

RR_API rr_status rr_eval_qrels_add(rr_eval_qrels *q, const char *qid, size_t qid_len, const char *docno,
                            size_t docno_len, int grade, int line);
/* Groups and sorts the judgments; a document judged twice for one query is an error naming both
 * lines of `what` (a file name). */
RR_API rr_status rr_eval_qrels_finish(rr_eval_qrels *q, const char *what);
/* Loads TREC qrels (`qid iter docid grade`, whitespace-separated) or BEIR qrels (tab-separated
 * `query-id corpus-id score`, with or without that header), told apart by the first line. Errors
 * name the file and the line. */
RR_API rr_status rr_eval_qrels_load(const char *path, rr_eval_qrels *q);
/* Index of qid in q, or -1. */
RR_API int rr_eval_qrels_find(const rr_eval_qrels *q, const char *qid);
/* The grade of docno for query qi, or 0 with *judged = 0 when not judged. */
RR_API int rr_eval_qrels_grade(const rr_eval_qrels *q, int qi, const char *docno, int *judged);
RR_API void rr_eval_qrels_free(rr_eval_qrels *q);

/* ------------------------------------------------------------------ runs */

typedef struct rr_eval_hit {
    const char *docno;
    float score; /* float, as trec_eval reads it: ties are decided on float values */
    int line;    /* source line, 0 when added by code */
} rr_eval_hit;

/* Ranked lists. After rr_eval_run_finish the hits of query i are hits[off[i] .. off[i+1]) in
 * trec_eval order: score descending, ties by docno descending (strcmp); the file's rank column is
 * ignored, as trec_eval ignores it. */
typedef struct rr_eval_run {
    rr_eval_pool pool;
    rr_eval_strmap qmap;
    int n_queries, cap_queries;
    const char **qids;
    int *off;
    size_t n, cap;
    rr_eval_hit *hits;
    int *qidx;
} rr_eval_run;

/* docno is copied into the run's pool unless `borrowed` (then it must outlive the run). */
RR_API rr_status rr_eval_run_add(rr_eval_run *r, const char *qid, const char *docno, size_t docno_len, int borrowed,
                          float score, int line);
/* Groups by query and sorts in trec_eval order; a document listed twice for one query is an error
 * (as in trec_eval) naming `what` and both lines. */
RR_API rr_status rr_eval_run_finish(rr_eval_run *r, const char *what);
/* Loads a TREC run: `qid Q0 docid rank score tag` (6 whitespace-separated fields). */
RR_API rr_status rr_eval_run_load(const char *path, rr_eval_run *r);
/* Keeps the first k hits of each query of a finished run. */
RR_API void rr_eval_run_truncate(rr_eval_run *r, int k);
RR_API int rr_eval_run_find(const rr_eval_run *r, const char *qid);
/* Writes the run as TREC lines with ranks 1.. in trec_eval order, scores with 9 significant digits
 * (so reading the file back gives the same order). */
RR_API rr_status rr_eval_run_write(const rr_eval_run *r, const char *path, const char *tag);
RR_API void rr_eval_run_free(rr_eval_run *r);

/* ------------------------------------------------------------------ metrics */

typedef enum rr_eval_kind {
    RR_EVAL_NDCG = 0,      /* trec_eval ndcg_cut.k (ndcg without k): gain = grade, log2(rank+1) */
    RR_EVAL_RECALL = 1,    /* recall.k: relevant in the top k / relevant judged */
    RR_EVAL_RECIP_RANK = 2,/* recip_rank, cut at k when k > 0 (MRR@k) */
    RR_EVAL_MAP = 3,       /* map: mean of precision at each relevant retrieved / relevant judged */
    RR_EVAL_PRECISION = 4, /* P.k: relevant in the top k / k */
} rr_eval_kind;

#define RR_EVAL_MAX_METRICS 32

typedef struct rr_eval_metric {
    rr_eval_kind kind;
    int k;        /* cutoff; 0 = none */
    char name[32];/* canonical display name: ndcg@10, recall@10, mrr@10, mrr, map, p@10, ndcg */
} rr_eval_metric;

/* Parses a comma-separated list such as "ndcg@10,recall@10,mrr@10,map". Accepted names (any
 * case): ndcg[@k], ndcg_cut_k, ndcg_cut.k, recall@k, recall_k, mrr[@k], rr[@k], recip_rank, map,
 * p@k, precision@k, P_k, P.k. At most RR_EVAL_MAX_METRICS. */
RR_API rr_status rr_eval_metrics_parse(const char *spec, rr_eval_metric *out, int *n_out);

/* Grade of a retrieved document that the qrels do not judge: never relevant, gains nothing. */
#define RR_EVAL_UNJUDGED INT_MIN

/* Metrics of one query. ranked[i] is the grade of the document at rank i+1 (RR_EVAL_UNJUDGED when
 * not judged),
 * judged[] the grades of every judged document of the query (for the ideal DCG and the number of
 * relevant documents). A document is relevant when its grade >= rel_level (trec_eval -l); nDCG
 * ignores rel_level and uses the grade as gain when positive. out[j] receives metric j. */
RR_API void rr_eval_query(const int *ranked, int n_ranked, const int *judged, int n_judged, int rel_level,
                   const rr_eval_metric *m, int n_metrics, double *out);

typedef struct rr_eval_result {
    int n_metrics;
    int n_queries;     /* queries averaged */
    const char **qids; /* [n_queries], borrowed from the qrels */
    double *values;    /* [n_queries * n_metrics], row per query */
    double mean[RR_EVAL_MAX_METRICS];
    int n_run_only;    /* run queries without judgments (ignored, as trec_eval does) */
    int n_missing;     /* judged queries absent from the run (0 unless counted by `complete`) */
} rr_eval_result;

/* Evaluates run against qrels as trec_eval does: queries that are in both are evaluated (in qrels
 * order), run queries without judgments are ignored, and judged queries without results are
 * skipped unless `complete` (trec_eval -c), where they score 0 on every metric and count in the
 * mean. */
RR_API rr_status rr_eval_evaluate(const rr_eval_qrels *q, const rr_eval_run *r, const rr_eval_metric *m, int n_metrics,
                           int rel_level, int complete, rr_eval_result *out);
RR_API void rr_eval_result_free(rr_eval_result *res);

/* ------------------------------------------------------------------ data sets */

/* Queries, documents and judgments of one evaluation set. Two layouts:
 * - a BEIR folder: corpus.jsonl {_id, title, text}, queries.jsonl {_id, text}, qrels/test.tsv;
 *   the document text is title + " " + text; cand_off is NULL (every document is a candidate).
 * - a candidate-list JSONL file, one query per line {id, query, candidates:[{id, text}],
 *   relevant:[id...] or {id: grade}}: the candidates of query i are docs cand[cand_off[i] ..
 *   cand_off[i+1]) in file order (function calling, SQL schema ranking, code search). */
typedef struct rr_eval_data {
    rr_eval_pool pool;
    int n_queries, cap_queries;
    const char **qids, **qtexts;
    rr_eval_strmap qmap;
    int n_docs, cap_docs;
    const char **docnos, **dtexts;
    rr_eval_strmap dmap; /* docno -> first document with that id */
    int *cand_off;       /* [n_queries + 1] or NULL */
    int *cand;
    size_t n_cand, cap_cand;
    rr_eval_qrels qrels; /* judgments found in the data (may be empty) */
} rr_eval_data;

/* Loads a BEIR folder or a candidate-list .jsonl file (told apart by whether `path` is a folder).
 * For a folder, qrels come from qrels_path when not NULL, else qrels/test.tsv. */
RR_API rr_status rr_eval_data_load(const char *path, const char *qrels_path, rr_eval_data *d);
RR_API void rr_eval_data_free(rr_eval_data *d);

/* ------------------------------------------------------------------ BM25 */

/* Splits text into index terms for BM25, for many scripts: NFKC + case folding (utf8proc), then
 * runs of letters, digits and combining marks form words; Han, kana, Thai, Lao, Khmer, Myanmar and
 * other scripts written without spaces give one term per character and one per adjacent pair.
 * Invalid UTF-8 bytes act as separators. Terms are appended to out, each followed by a NUL;
 * *n_terms receives their number. */
RR_API rr_status rr_eval_tokenize(const char *text, size_t len, rr_buf *out, int *n_terms);

typedef struct rr_eval_bm25 rr_eval_bm25;

/* Builds an in-memory inverted index over texts[0..n_docs). k1, b as in Robertson/Anserini. */
RR_API rr_status rr_eval_bm25_build(const char *const *texts, int n_docs, float k1, float b, rr_eval_bm25 **out);
/* The top k documents for query (k <= 0: all matching), restricted to cand[0..n_cand) when cand is
 * not NULL (then every candidate is ranked, matching or not). Results go to out_docs/out_scores
 * (room for k, or n_cand / n_docs), sorted by score descending, ties by docnos[] descending, i.e.
 * in trec_eval order. Not thread-safe (uses the index's scratch). */
RR_API rr_status rr_eval_bm25_search(rr_eval_bm25 *ix, const char *query, const char *const *docnos, int k,
                              const int *cand, int n_cand, int *out_docs, float *out_scores, int *n_out);
RR_API int rr_eval_bm25_n_terms(const rr_eval_bm25 *ix);
RR_API void rr_eval_bm25_free(rr_eval_bm25 *ix);

#ifdef __cplusplus
}
#endif

#endif /* RERANK_EVAL_H */

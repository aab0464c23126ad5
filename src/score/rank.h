/*
 * rank.h -- turning text into scored sequences and back (internal): the plan API behind rr_rank and
 * rr_score_pairs, shared with the server's cross-request batcher so windowing lives in one place.
 *
 * A plan holds the token sequences (pair template applied) of one request together with the index
 * of the document each one belongs to. Whoever holds the plan scores its sequences in any order and
 * batching, then rr_rank_plan_finish folds the logits into per-document results.
 */
#ifndef RR_RANK_H
#define RR_RANK_H

#include "encoder/encoder.h"
#include "model/model.h"

typedef struct rr_rank_plan {
    int n_docs;           /* documents (or pairs) of the request */
    int n_seqs;           /* sequences to score: >= n_docs when long documents are windowed */
    rr_seq *seqs;         /* [n_seqs]; ids and type ids point into the plan's storage */
    int *seq_doc;         /* [n_seqs] document index of each sequence */
    long total_tokens;    /* sum of sequence lengths: what the model is fed */
    /* storage (owned) */
    int32_t *ids, *types; /* concatenated ids / type ids of all sequences */
    size_t len, cap;
    int seq_cap;
    /* jina-reranker-v3 (listwise.c): one sequence per block, seq_doc = its first document, the
     * sequence's n_emb - 1 documents follow in order; emb rows are filled by the pass */
    int listwise, pairs;  /* pairs: each block has its own query (rr_score_pairs), no merging */
    int emb_dim;
    float *emb;
    size_t emb_len, emb_cap;
} rr_rank_plan;

/* Resolved rank parameters for a model: defaults filled in, max_length capped by the model and the
 * tokenizer, max_query_length capped at max_length / 2. */
rr_status rr_rank_resolve_params(const rr_model *m, const rr_rank_params *in, rr_rank_params *out);

/* Tokenizes and windows one rank request (see rr_rank in rerank.h). `p` must come from
 * rr_rank_resolve_params; its progress hook is called while tokenizing. The plan starts zeroed ({0})
 * and is freed with rr_rank_plan_free. */
rr_status rr_rank_plan_build(const rr_model *m, rr_text query, const rr_text *docs, int n_docs,
                             const rr_rank_params *p, rr_rank_plan *plan);

/* One sequence per (query, document) pair, truncated longest_first at max_length; h (may be NULL) is
 * called while tokenizing. */
rr_status rr_pairs_plan_build(const rr_model *m, const rr_text *queries, const rr_text *docs, int n,
                              int max_length, rr_rank_plan *plan, rr_hook *h);

/* The same with a per-pair instruction for decoder prompts (instructions NULL, or an entry whose
 * text is NULL: the template's default); encoders ignore the instructions. */
rr_status rr_pairs_plan_build_instructed(const rr_model *m, const rr_text *queries, const rr_text *docs,
                                         const rr_text *instructions, int n, int max_length, rr_rank_plan *pl,
                                         rr_hook *h);

/* Per-document score = max over its sequences (logits; sigmoid applied unless p->raw), sorted by
 * score descending with ties by lower index, cut to top_n. results must hold plan->n_docs entries. */
void rr_rank_plan_finish(const rr_rank_plan *plan, const float *logits, const rr_rank_params *p,
                         rr_rank_result *results, int *n_results);

void rr_rank_plan_free(rr_rank_plan *plan);

/* Scores every sequence of the plan with ctx: sorted by length and packed into passes of the ctx's
 * token budget; logits[i] belongs to plan->seqs[i]. h (may be NULL) is called after every pass. */
rr_status rr_plan_score(rr_ctx *c, const rr_rank_plan *plan, float *logits, rr_hook *h);

/* Writes into order[0..n) the indices of seqs sorted by length, ties by index (the order both
 * rr_plan_score and the engine's batcher feed sequences in, so passes are evenly filled). */
rr_status rr_seq_order_by_len(const rr_seq *seqs, int n, int *order);

#endif

/*
 * listwise.h -- jina-reranker-v3 ranking (internal; listwise.c): block plans and their scores.
 */
#ifndef RR_LISTWISE_H
#define RR_LISTWISE_H

#include "score/rank.h"

/* The block length limit the blocking uses: the caller's max_length, else the tokenizer's
 * model_max_length, capped so that a block with its template fits the model's positions. */
int rr_v3_max_length(const rr_model *m, int want);

/* One sequence per block of a rank request (p from rr_rank_resolve_params; its progress hook is
 * called while tokenizing); the plan's emb storage receives the marker embeddings when the blocks are
 * scored. */
rr_status rr_v3_plan_build(const rr_model *m, rr_text query, const rr_text *docs, int n, const rr_rank_params *p,
                           rr_rank_plan *pl);
/* One block of one document per pair, each with its own query (and instruction, NULL = none). */
rr_status rr_v3_pairs_plan_build(const rr_model *m, const rr_text *queries, const rr_text *docs,
                                 const rr_text *instructions, int n, rr_rank_plan *pl, rr_hook *h);
/* Per-document cosine scores ([pl->n_docs]) from a scored plan; logits are the blocks' pass outputs
 * (the number of document markers found), a mismatch gives NaN. */
rr_status rr_v3_scores(const rr_rank_plan *pl, const float *logits, float *scores);

#endif

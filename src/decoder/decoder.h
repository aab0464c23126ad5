/*
 * decoder.h -- the forward pass of the Qwen3 / Qwen2 decoder rerankers (internal). rr_ctx (encoder.c)
 * holds one rr_dec_ctx when its model is a decoder and hands it the passes of rr_score_ids.
 */
#ifndef RR_DECODER_H
#define RR_DECODER_H

#include "model/model.h"

typedef struct rr_dec_ctx rr_dec_ctx;

/* Scratch for passes of up to max_tokens rows with model m (m->dec set), run on pool (borrowed: it
 * must outlive the context). */
rr_status rr_dec_ctx_new(const rr_model *m, int max_tokens, rr_pool *pool, rr_dec_ctx **out);
void rr_dec_ctx_free(rr_dec_ctx *c);

/* One packed pass over seqs[0..n): the sequences are already checked (non-empty, ids in range) and
 * their lengths sum to at most max_tokens. raw[s] = the score of sequence s's last token (l_yes -
 * l_no, l("1") - l("0"), or the classifier's logit). Allocates nothing. RR_ERR_IO (message set) when
 * an embedding row cannot be read from the weight file any more (truncated under the process). */
rr_status rr_dec_forward(rr_dec_ctx *c, const rr_seq *seqs, int n, float *raw);

#endif

/*
 * encoder.h -- the forward pass (internal): rr_ctx scratch and packed-batch scoring. The public
 * entry points (rr_ctx_new, rr_score_ids) are declared in rerank.h.
 */
#ifndef RR_ENCODER_H
#define RR_ENCODER_H

#include "model/model.h"

/* Checks one sequence against the model: non-empty, at most max_length tokens, ids and type ids in
 * range. Messages name sequence index i (none when i < 0). */
rr_status rr_enc_check_seq(const rr_model *m, const rr_seq *s, int i);


const rr_model *rr_ctx_model(const rr_ctx *c);
int rr_ctx_max_tokens(const rr_ctx *c);

#endif

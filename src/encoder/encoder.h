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


/* The progress hook of one call (rr_progress_fn in rerank.h) with its running counts; fn NULL = none. */
typedef struct rr_hook {
    rr_progress_fn fn;
    void *user;
    long done, total; /* sequences scored / planned so far */
} rr_hook;

/* Calls the hook (h or h->fn may be NULL): RR_ERR_CANCELLED, with a message, when it asks to stop. */
rr_status rr_hook_call(rr_hook *h);

/* rr_hook_call every RR_HOOK_TEXTS texts while tokenizing: i is the index of the text just done. */
#define RR_HOOK_TEXTS 256
static inline rr_status rr_hook_tick(rr_hook *h, long i) {
    return h && h->fn && (i + 1) % RR_HOOK_TEXTS == 0 ? rr_hook_call(h) : RR_OK;
}

/* rr_score_ids calling h after every pass, h->done advanced by the pass's sequences (h may be NULL). */
rr_status rr_score_ids_hooked(rr_ctx *c, const rr_seq *seqs, int n, float *logits, rr_hook *h);

const rr_model *rr_ctx_model(const rr_ctx *c);
int rr_ctx_max_tokens(const rr_ctx *c);

#endif

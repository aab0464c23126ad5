/*
 * bpe.c -- byte-level BPE (GPT-2 / RoBERTa tokenizers). Not implemented yet: loading a BPE model
 * or a ByteLevel pre-tokenizer fails with RR_ERR_UNSUPPORTED naming the field, so a model folder
 * that needs it is refused at load instead of being tokenized wrongly.
 */
#include "tokenize/tok.h"

#include <cjson/cJSON.h>

rr_status rr_tok_bpe_load(rr_tok_model *m, const cJSON *j, const char *what) {
    (void)m;
    (void)j;
    return rr_fail(RR_ERR_UNSUPPORTED, "%s: model type \"BPE\" (field \"model.type\") is not supported yet", what);
}

rr_status rr_tok_bpe_encode(const rr_tok_model *m, const char *s, size_t n, rr_tok_scratch *sc, rr_tok_ids *out) {
    (void)m, (void)s, (void)n, (void)sc, (void)out;
    return rr_fail(RR_ERR_UNSUPPORTED, "tokenizer: BPE is not supported yet");
}

void rr_tok_bytelevel_pre(const rr_tok_pre *p, const char *in, const rr_tok_span *sp, rr_buf *out, rr_tok_spans *outs) {
    (void)p;
    rr_tok_spans_push(outs, out->len, sp->len, sp->at0);
    rr_buf_append(out, in + sp->off, sp->len);
}

void rr_tok_bpe_free(rr_tok_bpe *b) { (void)b; }

/*
 * prompt.h -- decoder reranker prompts as token ids (internal; prompt.c has the templates). One
 * rr_prompt serves one query: rr_prompt_init tokenizes the fixed pieces and the query once,
 * rr_prompt_doc builds the whole sequence for each document.
 */
#ifndef RR_PROMPT_H
#define RR_PROMPT_H

#include "model/model.h"

typedef struct rr_prompt {
    const rr_tokenizer *tok;
    rr_template tmpl;
    rr_text query, instruction; /* instruction: the caller's, else the template's default */
    int has_instruction;
    int max_length;     /* Qwen3: whole sequence; mxbai: query + "\n" + document */
    int room;           /* Qwen3: body ids */
    int fixed;          /* mxbai: ids of the fixed pieces */
    int max_positions;
    rr_encoding prefix, suffix, task, sep; /* fixed pieces */
    rr_encoding q;      /* mxbai: the query piece, cut */
    rr_encoding body;   /* per document: Qwen3 body / mxbai document piece */
    char *text;         /* Qwen3: "<Instruct>: ..\n<Query>: .." head of the body; mxbai: query text */
    size_t text_len, text_cap;
    char *doc_text;
    size_t doc_cap;
} rr_prompt;

/* Prepares the prompt of `query` for model m (a decoder with a tokenizer). instruction.text NULL = the
 * template's default (none for mxbai). max_length <= 0 = 8192, the reference default; it is lowered
 * to what the model's positions allow. */
rr_status rr_prompt_init(rr_prompt *p, const rr_model *m, rr_text query, rr_text instruction, int max_length);
/* The ids of the whole prompt for one document into out (type ids 0), the body cut as the reference
 * code cuts it. */
rr_status rr_prompt_doc(rr_prompt *p, rr_text doc, rr_encoding *out);
void rr_prompt_free(rr_prompt *p);

#endif

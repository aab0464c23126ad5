/*
 * prompt.h -- decoder reranker prompts as token ids (internal; prompt.c has the templates). One
 * rr_prompt serves one query: rr_prompt_init tokenizes the fixed pieces and the query once,
 * rr_prompt_doc builds the whole sequence for each document. Windows over long documents:
 * rr_prompt_set_windows once, then per document rr_prompt_tokenize_doc and one rr_prompt_build per
 * window of the document's ids.
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
    /* the document's ids inside the prompt: body.ids[doc_off, body.len) after rr_prompt_tokenize_doc;
     * body.ids[0, doc_off) = dhead, the ids before them (Qwen3: "<Instruct>: ..\n<Query>: ..\n<Document>:",
     * mxbai: "document:") */
    rr_encoding dhead, tmp;
    size_t doc_off;
    /* windows (rr_prompt_set_windows): the query part kept whole in every window and the room left */
    int windows;
    rr_encoding qhead;  /* Qwen3: dhead, or its query cut to max_query_length + the document marker */
    size_t qw;          /* mxbai: query piece ids kept */
    int doc_room;       /* document ids per window */
} rr_prompt;

/* Prepares the prompt of `query` for model m (a decoder with a tokenizer). instruction.text NULL = the
 * template's default (none for mxbai). max_length <= 0 = 8192, the reference default; it is lowered
 * to what the model's positions allow. */
rr_status rr_prompt_init(rr_prompt *p, const rr_model *m, rr_text query, rr_text instruction, int max_length);
/* The ids of the whole prompt for one document into out (type ids 0), the body cut as the reference
 * code cuts it. */
rr_status rr_prompt_doc(rr_prompt *p, rr_text doc, rr_encoding *out);
/* Switches the prompt to windows over the document's ids: the query piece (with the instruction) is
 * cut to max_query_length ids (Qwen3: keeping its "\n<Document>:" marker), and p->doc_room becomes the
 * document ids one prompt holds. RR_ERR_RANGE when none fit. */
rr_status rr_prompt_set_windows(rr_prompt *p, int max_query_length);
/* Tokenizes a document the way its prompt holds it (tokenized with what precedes it in its piece); its
 * ids are then p->body.ids[p->doc_off, p->body.len). */
rr_status rr_prompt_tokenize_doc(rr_prompt *p, rr_text doc);
/* The whole prompt holding the document ids [from, from + n) of the last rr_prompt_tokenize_doc: the
 * reference's cut of the body (from must be 0) or, after rr_prompt_set_windows, one window (n at most
 * p->doc_room). */
rr_status rr_prompt_build(rr_prompt *p, size_t from, size_t n, rr_encoding *out);
void rr_prompt_free(rr_prompt *p);

#endif

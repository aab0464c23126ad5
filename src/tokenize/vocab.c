/*
 * vocab.c -- what the three tokenizer models (Unigram, WordPiece, BPE) share: the id -> piece tables
 * and their string arena, the piece -> id trie built from them, and freeing a model of any kind.
 * Each model file includes only tok.h and calls down into these helpers, never into one another.
 */
#include "tokenize/tok.h"

#include <stdlib.h>

rr_status rr_tok_model_alloc(rr_tok_model *m, int n_vocab, size_t arena_bytes, const char *what) {
    m->n_vocab = n_vocab;
    m->pieces = rr_calloc((size_t)n_vocab + 1, sizeof *m->pieces);
    m->piece_len = rr_calloc((size_t)n_vocab + 1, sizeof *m->piece_len);
    m->arena = rr_malloc(arena_bytes + 1);
    if (!m->pieces || !m->piece_len || !m->arena) return rr_fail(RR_ERR_NOMEM, "%s: out of memory for the vocabulary", what);
    /* nodes <= key bytes: size the table so it never rehashes */
    rr_status st = rr_tok_trie_init(&m->trie, arena_bytes / 3 + 1024);
    if (st) rr_errmsg_prefix("%s", what);
    for (int i = 0; i < 256; i++) m->byte_ids[i] = -1;
    m->unk_id = -1;
    return st;
}

void rr_tok_model_free(rr_tok_model *m) {
    if (!m) return;
    rr_free(m->pieces);
    rr_free(m->piece_len);
    rr_free(m->arena);
    rr_free(m->scores);
    rr_free(m->cont_prefix);
    rr_tok_trie_free(&m->trie);
    rr_tok_bpe_free(m->bpe);
    memset(m, 0, sizeof *m);
}

rr_status rr_tok_insert_sorted(rr_tok_model *m, const char *what) {
    rr_tok_key *k = rr_malloc(((size_t)m->n_vocab + 1) * sizeof *k);
    if (!k) return rr_fail(RR_ERR_NOMEM, "%s: out of memory for the vocabulary", what);
    size_t n = 0;
    for (int i = 0; i < m->n_vocab; i++)
        if (m->pieces[i] && m->piece_len[i]) k[n++] = (rr_tok_key){m->pieces[i], m->piece_len[i], i};
    rr_status st = rr_tok_trie_build(&m->trie, k, n);
    rr_free(k);
    if (st) rr_errmsg_prefix("%s", what);
    return st;
}

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

typedef struct key_ix {
    uint64_t prefix; /* first 8 bytes, big-endian: sorts like the string */
    int32_t id;
} key_ix;

static int cmp_key(const void *a, const void *b) {
    const key_ix *x = a, *y = b;
    if (x->prefix != y->prefix) return x->prefix < y->prefix ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id); /* equal prefixes keep file order: the last duplicate wins */
}

rr_status rr_tok_insert_sorted(rr_tok_model *m, const char *what) {
    /* Inserting in (roughly) sorted order makes consecutive keys share their walk, which is then
     * in cache: about twice as fast as file order on a 250k vocabulary. */
    key_ix *k = rr_malloc((size_t)m->n_vocab * sizeof *k);
    if (!k) return rr_fail(RR_ERR_NOMEM, "%s: out of memory for the vocabulary", what);
    int n = 0;
    for (int i = 0; i < m->n_vocab; i++) {
        if (!m->pieces[i] || !m->piece_len[i]) continue;
        uint64_t p = 0;
        for (size_t b = 0; b < 8; b++) p = p << 8 | (b < m->piece_len[i] ? (uint8_t)m->pieces[i][b] : 0);
        k[n++] = (key_ix){p, i};
    }
    qsort(k, (size_t)n, sizeof *k, cmp_key);
    /* Size the table once: the bytes each key does not share with its predecessor bound the
     * number of nodes. */
    size_t bound = 0;
    for (int i = 0; i < n; i++) {
        const char *p = m->pieces[k[i].id], *q = i ? m->pieces[k[i - 1].id] : "";
        size_t len = m->piece_len[k[i].id], ql = i ? m->piece_len[k[i - 1].id] : 0, d = 0;
        while (d < len && d < ql && p[d] == q[d]) d++;
        bound += len - d;
    }
    rr_tok_trie_free(&m->trie);
    rr_status st = rr_tok_trie_init(&m->trie, bound);
    if (st) {
        rr_free(k);
        return st;
    }
    /* Walk only the part of each key that differs from the previous one: path[d] is the node
     * after d bytes of the previous key. */
    uint32_t path[257];
    const char *prev = NULL;
    size_t prev_len = 0;
    for (int i = 0; i < n && !st; i++) {
        const char *p = m->pieces[k[i].id];
        size_t len = m->piece_len[k[i].id], d = 0;
        if (prev)
            while (d < len && d < prev_len && d < 256 && p[d] == prev[d]) d++;
        if (len > 256 || !prev) d = 0;
        uint32_t node = d ? path[d] : 0;
        path[0] = 0;
        for (size_t b = d; b < len && !st; b++) {
            st = rr_tok_trie_child(&m->trie, node, (uint8_t)p[b], &node);
            if (b + 1 <= 256) path[b + 1] = node;
        }
        if (!st && len) m->trie.value[node] = k[i].id;
        prev = len <= 256 ? p : NULL;
        prev_len = len;
    }
    rr_free(k);
    return st;
}

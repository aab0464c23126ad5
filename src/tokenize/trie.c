/*
 * trie.c -- the byte trie over a vocabulary that the Unigram lattice and WordPiece's longest match
 * walk. Child links live in one open-addressing hash table keyed by (node, byte), with a dense
 * 256-entry table for the root, so a 250k-piece vocabulary builds in tens of milliseconds and a
 * walk costs one probe per byte.
 */
#include "tokenize/tok.h"

static rr_status grow_table(rr_tok_trie *t) {
    size_t ncap = t->cap ? t->cap * 2 : 1024;
    uint64_t *nk = rr_calloc(ncap, sizeof *nk);
    uint32_t *nc = rr_malloc(ncap * sizeof *nc);
    if (!nk || !nc) {
        rr_free(nk);
        rr_free(nc);
        return rr_fail(RR_ERR_NOMEM, "tokenizer trie: out of memory");
    }
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->keys[i]) continue;
        size_t j = rr_tok_trie_hash(t->keys[i]) & (ncap - 1);
        while (nk[j]) j = (j + 1) & (ncap - 1);
        nk[j] = t->keys[i];
        nc[j] = t->child[i];
    }
    rr_free(t->keys);
    rr_free(t->child);
    t->keys = nk;
    t->child = nc;
    t->cap = ncap;
    return RR_OK;
}

static rr_status new_node(rr_tok_trie *t, uint32_t *out) {
    if (t->n_nodes == t->nodes_cap) {
        size_t nc = t->nodes_cap ? t->nodes_cap * 2 : 1024;
        if (nc > UINT32_MAX / 2) return rr_fail(RR_ERR_RANGE, "tokenizer trie: too many nodes");
        int32_t *nv = rr_realloc(t->value, nc * sizeof *nv);
        if (!nv) return rr_fail(RR_ERR_NOMEM, "tokenizer trie: out of memory");
        t->value = nv;
        t->nodes_cap = nc;
    }
    t->value[t->n_nodes] = -1;
    *out = (uint32_t)t->n_nodes++;
    return RR_OK;
}

rr_status rr_tok_trie_init(rr_tok_trie *t, size_t expect_keys) {
    memset(t, 0, sizeof *t);
    size_t cap = 1024;
    while (cap < expect_keys * 8) cap *= 2;
    t->keys = rr_calloc(cap, sizeof *t->keys);
    t->child = rr_malloc(cap * sizeof *t->child);
    if (!t->keys || !t->child) {
        rr_tok_trie_free(t);
        return rr_fail(RR_ERR_NOMEM, "tokenizer trie: out of memory");
    }
    t->cap = cap;
    uint32_t root;
    rr_status st = new_node(t, &root);
    if (st) rr_tok_trie_free(t);
    return st;
}

rr_status rr_tok_trie_insert(rr_tok_trie *t, const char *key, size_t len, int32_t value) {
    uint32_t node = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t b = (uint8_t)key[i];
        uint32_t next = rr_tok_trie_step(t, node, b);
        if (!next) {
            rr_status st = new_node(t, &next);
            if (st) return st;
            if (node == 0) {
                t->root[b] = next;
            } else {
                if ((t->used + 1) * 2 > t->cap && (st = grow_table(t))) return st;
                uint64_t k = (((uint64_t)node << 8) | b) + 1;
                size_t j = rr_tok_trie_hash(k) & (t->cap - 1);
                while (t->keys[j]) j = (j + 1) & (t->cap - 1);
                t->keys[j] = k;
                t->child[j] = next;
                t->used++;
            }
        }
        node = next;
    }
    if (node != 0) t->value[node] = value;
    return RR_OK;
}

int32_t rr_tok_trie_get(const rr_tok_trie *t, const char *key, size_t len) {
    if (!t->value || len == 0) return -1;
    uint32_t node = 0;
    for (size_t i = 0; i < len; i++)
        if (!(node = rr_tok_trie_step(t, node, (uint8_t)key[i]))) return -1;
    return t->value[node];
}

void rr_tok_trie_free(rr_tok_trie *t) {
    if (!t) return;
    rr_free(t->keys);
    rr_free(t->child);
    rr_free(t->value);
    memset(t, 0, sizeof *t);
}

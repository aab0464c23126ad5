/*
 * trie.c -- the byte trie over a vocabulary that the Unigram lattice and WordPiece's longest match
 * walk and BPE looks its symbols up in (layout in tok.h). Hash-linked rather than a double array:
 * a 250k-piece vocabulary (about 1.5M nodes) builds in tens of milliseconds with no placement
 * search, and a step is one multiplicative hash and, at load factor <= 1/2, about one probe.
 * rr_tok_trie_build inserts a whole key list in (roughly) sorted order so that consecutive keys
 * share their walk.
 */
#include "tokenize/tok.h"

#include <stdlib.h>
#include <sys/mman.h>

static inline size_t slot_of(const rr_tok_trie *t, uint64_t key) {
    return (size_t)((key * UINT64_C(0x9E3779B97F4A7C15)) >> t->shift);
}

static rr_status set_cap(rr_tok_trie *t, size_t ncap) {
    uint64_t *ns = rr_calloc(ncap, sizeof *ns);
    if (!ns) return rr_fail(RR_ERR_NOMEM, "tokenizer trie: out of memory");
    /* A big table is touched at random: transparent huge pages cut its page faults and TLB
     * misses (a hint; ignored where THP is off). */
    if (ncap * sizeof *ns >= ((size_t)4 << 20)) {
        uintptr_t a = ((uintptr_t)ns + (2u << 20) - 1) & ~(uintptr_t)((2u << 20) - 1);
        uintptr_t e = ((uintptr_t)ns + ncap * sizeof *ns) & ~(uintptr_t)((2u << 20) - 1);
        if (e > a) madvise((void *)a, e - a, MADV_HUGEPAGE);
    }
    int bits = 0;
    while (((size_t)1 << bits) < ncap) bits++;
    uint64_t *old = t->slots;
    size_t ocap = t->cap;
    t->slots = ns;
    t->cap = ncap;
    t->shift = 64 - bits;
    for (size_t i = 0; i < ocap; i++) {
        if (!old[i]) continue;
        size_t j = slot_of(t, old[i] & RR_TOK_TRIE_KEY_MASK);
        while (ns[j]) j = (j + 1) & (ncap - 1);
        ns[j] = old[i];
    }
    rr_free(old);
    return RR_OK;
}

static rr_status new_node(rr_tok_trie *t, uint32_t *out) {
    if (t->n_nodes == t->nodes_cap) {
        size_t nc = t->nodes_cap ? t->nodes_cap * 2 : 1024;
        if (nc > ((size_t)1 << 28)) return rr_fail(RR_ERR_RANGE, "tokenizer trie: too many nodes");
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
    while (cap * 2 < expect_keys * 3) cap *= 2; /* load <= 2/3 for the expected nodes */
    uint32_t root;
    rr_status st = set_cap(t, cap);
    if (!st && expect_keys > 1024) { /* nodes <= expected keys: no regrowth copies */
        t->value = rr_malloc((expect_keys + 1) * sizeof *t->value);
        if (!t->value) st = rr_fail(RR_ERR_NOMEM, "tokenizer trie: out of memory");
        else t->nodes_cap = expect_keys + 1;
    }
    if (!st) st = new_node(t, &root);
    if (st) rr_tok_trie_free(t);
    return st;
}

rr_status rr_tok_trie_child(rr_tok_trie *t, uint32_t node, uint8_t b, uint32_t *out) {
    uint32_t next = rr_tok_trie_step(t, node, b);
    if (!next) {
        rr_status st = new_node(t, &next);
        if (st) return st;
        if (node == 0) {
            t->root[b] = next;
        } else {
            if ((t->used + 1) * 3 > t->cap * 2 && (st = set_cap(t, t->cap * 2))) return st;
            uint64_t k = (((uint64_t)node << 8) | b) + 1;
            size_t j = slot_of(t, k);
            while (t->slots[j]) j = (j + 1) & (t->cap - 1);
            t->slots[j] = k | ((uint64_t)next << RR_TOK_TRIE_KEY_BITS);
            t->used++;
        }
    }
    *out = next;
    return RR_OK;
}

rr_status rr_tok_trie_insert(rr_tok_trie *t, const char *key, size_t len, int32_t value) {
    uint32_t node = 0;
    for (size_t i = 0; i < len; i++) {
        rr_status st = rr_tok_trie_child(t, node, (uint8_t)key[i], &node);
        if (st) return st;
    }
    if (node != 0) t->value[node] = value;
    return RR_OK;
}

int32_t rr_tok_trie_get(const rr_tok_trie *t, const char *key, size_t len) {
    if (!t->slots || len == 0) return -1;
    uint32_t node = 0;
    for (size_t i = 0; i < len; i++)
        if (!(node = rr_tok_trie_step(t, node, (uint8_t)key[i]))) return -1;
    return t->value[node];
}

void rr_tok_trie_free(rr_tok_trie *t) {
    if (!t) return;
    rr_free(t->slots);
    rr_free(t->value);
    memset(t, 0, sizeof *t);
}

typedef struct key_ix {
    uint64_t prefix; /* first 8 bytes, big-endian: sorts like the string */
    size_t ix;       /* position in the key list */
} key_ix;

static int cmp_key(const void *a, const void *b) {
    const key_ix *x = a, *y = b;
    if (x->prefix != y->prefix) return x->prefix < y->prefix ? -1 : 1;
    return (x->ix > y->ix) - (x->ix < y->ix); /* equal prefixes keep list order: the later duplicate wins */
}

rr_status rr_tok_trie_build(rr_tok_trie *t, const rr_tok_key *keys, size_t n) {
    /* Inserting in (roughly) sorted order makes consecutive keys share their walk, which is then
     * in cache: about twice as fast as file order on a 250k vocabulary. */
    key_ix *k = rr_malloc((n + 1) * sizeof *k);
    if (!k) return rr_fail(RR_ERR_NOMEM, "tokenizer trie: out of memory");
    size_t nk = 0;
    for (size_t i = 0; i < n; i++) {
        if (!keys[i].len) continue;
        uint64_t p = 0;
        for (size_t b = 0; b < 8; b++) p = p << 8 | (b < keys[i].len ? (uint8_t)keys[i].s[b] : 0);
        k[nk++] = (key_ix){p, i};
    }
    qsort(k, nk, sizeof *k, cmp_key);
    /* Size the table once: the bytes each key does not share with its predecessor bound the
     * number of nodes. */
    size_t bound = 0;
    for (size_t i = 0; i < nk; i++) {
        const rr_tok_key *c = &keys[k[i].ix], *q = i ? &keys[k[i - 1].ix] : NULL;
        size_t d = 0;
        while (q && d < c->len && d < q->len && c->s[d] == q->s[d]) d++;
        bound += c->len - d;
    }
    rr_tok_trie_free(t);
    rr_status st = rr_tok_trie_init(t, bound);
    if (st) {
        rr_free(k);
        return st;
    }
    /* Walk only the part of each key that differs from the previous one: path[d] is the node
     * after d bytes of the previous key. */
    uint32_t path[257];
    const char *prev = NULL;
    size_t prev_len = 0;
    for (size_t i = 0; i < nk && !st; i++) {
        const rr_tok_key *c = &keys[k[i].ix];
        const char *p = c->s;
        size_t len = c->len, d = 0;
        if (prev)
            while (d < len && d < prev_len && d < 256 && p[d] == prev[d]) d++;
        if (len > 256 || !prev) d = 0;
        uint32_t node = d ? path[d] : 0;
        path[0] = 0;
        for (size_t b = d; b < len && !st; b++) {
            st = rr_tok_trie_child(t, node, (uint8_t)p[b], &node);
            if (b + 1 <= 256) path[b + 1] = node;
        }
        if (!st && len) t->value[node] = c->value;
        prev = len <= 256 ? p : NULL;
        prev_len = len;
    }
    rr_free(k);
    return st;
}

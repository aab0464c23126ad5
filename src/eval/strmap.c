/*
 * strmap.c -- string storage for the eval module: a block pool for the many short ids and texts of
 * an evaluation set, and a string -> int hash map used to intern query ids, document ids and BM25
 * terms. Both are deliberately minimal; they hold nothing but what evaluation needs.
 */
#include "rerank_eval.h"

#include "core/core.h"

#define POOL_BLOCK (256u * 1024u)

char *rr_eval_pool_strndup(rr_eval_pool *p, const char *s, size_t len) {
    if (len + 1 > p->left) {
        size_t size = len + 1 > POOL_BLOCK / 4 ? len + 1 : POOL_BLOCK;
        if (p->n_blocks == p->cap_blocks) {
            size_t cap = p->cap_blocks ? p->cap_blocks * 2 : 16;
            char **nb = rr_realloc(p->blocks, cap * sizeof(*nb));
            if (!nb) return NULL;
            p->blocks = nb;
            p->cap_blocks = cap;
        }
        char *blk = rr_malloc(size);
        if (!blk) return NULL;
        p->blocks[p->n_blocks++] = blk;
        if (size == POOL_BLOCK) { /* a big string gets its own block and keeps the current one */
            p->cur = blk;
            p->left = size;
        } else {
            memcpy(blk, s, len);
            blk[len] = 0;
            return blk;
        }
    }
    char *d = p->cur;
    memcpy(d, s, len);
    d[len] = 0;
    p->cur += len + 1;
    p->left -= len + 1;
    return d;
}

void rr_eval_pool_free(rr_eval_pool *p) {
    if (!p) return;
    for (size_t i = 0; i < p->n_blocks; i++) rr_free(p->blocks[i]);
    rr_free(p->blocks);
    memset(p, 0, sizeof(*p));
}

/* FNV-1a, 64-bit: ids and terms are short, so a simple byte hash is enough. */
static uint64_t hash_bytes(const char *s, size_t len) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static bool key_eq(const char *key, const char *s, size_t len) {
    return strncmp(key, s, len) == 0 && key[len] == 0;
}

int rr_eval_strmap_get(const rr_eval_strmap *m, const char *s, size_t len) {
    if (!m->cap) return -1;
    size_t mask = m->cap - 1;
    for (size_t i = hash_bytes(s, len) & mask;; i = (i + 1) & mask) {
        if (!m->keys[i]) return -1;
        if (key_eq(m->keys[i], s, len)) return m->vals[i];
    }
}

static rr_status grow(rr_eval_strmap *m) {
    size_t cap = m->cap ? m->cap * 2 : 64;
    const char **keys = rr_calloc(cap, sizeof(*keys));
    int *vals = rr_malloc(cap * sizeof(*vals));
    if (!keys || !vals) {
        rr_free(keys);
        rr_free(vals);
        return rr_fail(RR_ERR_NOMEM, "eval: out of memory growing a hash map to %zu slots", cap);
    }
    for (size_t j = 0; j < m->cap; j++) {
        if (!m->keys[j]) continue;
        size_t i = hash_bytes(m->keys[j], strlen(m->keys[j])) & (cap - 1);
        while (keys[i]) i = (i + 1) & (cap - 1);
        keys[i] = m->keys[j];
        vals[i] = m->vals[j];
    }
    rr_free(m->keys);
    rr_free(m->vals);
    m->keys = keys;
    m->vals = vals;
    m->cap = cap;
    return RR_OK;
}

rr_status rr_eval_strmap_put(rr_eval_strmap *m, const char *key, int val, int *found) {
    size_t len = strlen(key);
    if ((m->n + 1) * 4 > m->cap * 3) { /* keep the load factor under 3/4 */
        rr_status st = grow(m);
        if (st != RR_OK) return st;
    }
    size_t mask = m->cap - 1;
    size_t i = hash_bytes(key, len) & mask;
    for (; m->keys[i]; i = (i + 1) & mask) {
        if (key_eq(m->keys[i], key, len)) {
            if (found) *found = m->vals[i];
            return RR_OK;
        }
    }
    m->keys[i] = key;
    m->vals[i] = val;
    m->n++;
    if (found) *found = -1;
    return RR_OK;
}

void rr_eval_strmap_free(rr_eval_strmap *m) {
    if (!m) return;
    rr_free(m->keys);
    rr_free(m->vals);
    memset(m, 0, sizeof(*m));
}

/*
 * bpe.c -- byte-level BPE (GPT-2 / RoBERTa tokenizers): the ByteLevel pre-tokenizer (GPT-2 split
 * regex, then every byte mapped to its printable stand-in character; or, with use_regex false, only
 * the mapping, after a Split pre-tokenizer has cut the text as Llama 3 / Qwen files do) and the
 * BPE model (merge the adjacent pair of lowest merge rank, leftmost first, until no pair has a
 * merge), as HF tokenizers does without dropout. Symbols missing from the vocabulary become byte-fallback pieces, the
 * (optionally fused) unknown token, or are dropped when the model has neither, as in HF.
 */
#include "tokenize/tok.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <utf8proc.h>

struct rr_tok_bpe {
    uint64_t *slots;   /* per slot two words, one cache line: key (a << 32 | b) + 1 of a mergeable
                        * pair (0 = empty), then rank << 32 | merged id */
    size_t cap;
    int shift;         /* 64 - log2(cap) */
    int32_t unk_id;    /* -1 = none */
    bool fuse_unk, ignore_merges;
    char *prefix, *suffix; /* continuing_subword_prefix, end_of_word_suffix ("" when unset) */
    size_t prefix_len, suffix_len;
};

/* Multiplicative hashing keeps the top bits of the product: lower bits would depend on only the
 * low bits of the left id and pile pairs sharing a right id into one probe chain. */
static inline size_t pair_slot(const rr_tok_bpe *b, uint64_t k) {
    return (size_t)((k * UINT64_C(0x9E3779B97F4A7C15)) >> b->shift);
}

static bool pair_get(const rr_tok_bpe *b, int32_t x, int32_t y, uint32_t *rank, int32_t *id) {
    uint64_t k = ((uint64_t)(uint32_t)x << 32 | (uint32_t)y) + 1;
    for (size_t i = pair_slot(b, k);; i = (i + 1) & (b->cap - 1)) {
        uint64_t key = b->slots[2 * i];
        if (key == k) {
            uint64_t v = b->slots[2 * i + 1];
            *rank = (uint32_t)(v >> 32);
            *id = (int32_t)(uint32_t)v;
            return true;
        }
        if (!key) return false;
    }
}

void rr_tok_bpe_free(rr_tok_bpe *b) {
    if (!b) return;
    rr_free(b->slots);
    rr_free(b->prefix);
    rr_free(b->suffix);
    rr_free(b);
}

static int32_t vocab_id(const rr_tok_model *m, const char *s, size_t n) { return rr_tok_trie_get(&m->trie, s, n); }

/* A string -> id table used while the merges are read: three lookups per merge (left, right,
 * joined) cost one hash each instead of one trie step per byte, which halves a 151k-merge load.
 * A key seen twice keeps its later id, as the trie does. */
typedef struct str_ids {
    rr_tok_key *keys;
    uint32_t *slot; /* key index + 1, 0 = empty */
    size_t cap, n;
} str_ids;

static uint64_t str_hash(const char *s, size_t n) {
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * UINT64_C(0x100000001b3);
    return h ^ (h >> 29);
}

static int32_t str_ids_get(const str_ids *t, const char *s, size_t n) {
    for (size_t i = str_hash(s, n) & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        uint32_t k = t->slot[i];
        if (!k) return -1;
        const rr_tok_key *e = &t->keys[k - 1];
        if (e->len == n && !memcmp(e->s, s, n)) return e->value;
    }
}

static rr_status str_ids_build(str_ids *t, const cJSON *vocab) {
    size_t n = (size_t)cJSON_GetArraySize(vocab);
    t->cap = 1024;
    while (t->cap < 2 * n) t->cap *= 2;
    t->keys = rr_malloc((n + 1) * sizeof *t->keys);
    t->slot = rr_calloc(t->cap, sizeof *t->slot);
    if (!t->keys || !t->slot) return rr_fail(RR_ERR_NOMEM, "tokenizer: out of memory for the merges");
    const cJSON *e;
    cJSON_ArrayForEach(e, vocab) {
        int32_t id = (int32_t)e->valuedouble;
        size_t len = strlen(e->string);
        const char *s = e->string; /* lives as long as the parsed file, longer than this table */
        size_t i = str_hash(s, len) & (t->cap - 1);
        for (; t->slot[i]; i = (i + 1) & (t->cap - 1)) {
            rr_tok_key *k = &t->keys[t->slot[i] - 1];
            if (k->len == len && !memcmp(k->s, s, len)) break;
        }
        if (t->slot[i]) {
            t->keys[t->slot[i] - 1].value = id;
        } else {
            t->keys[t->n] = (rr_tok_key){s, (uint32_t)len, id};
            t->slot[i] = (uint32_t)++t->n;
        }
    }
    return RR_OK;
}

static void str_ids_free(str_ids *t) {
    rr_free(t->keys);
    rr_free(t->slot);
}

rr_status rr_tok_bpe_load(rr_tok_model *m, const cJSON *j, const char *what) {
    rr_status st = rr_tok_wordpiece_load(m, j, what); /* same {token: id} vocabulary */
    if (st) return st;
    m->kind = RR_TOK_BPE;
    rr_tok_bpe *b = rr_calloc(1, sizeof *b);
    if (!b) return rr_fail(RR_ERR_NOMEM, "%s: out of memory", what);
    m->bpe = b;
    const char *unk = rr_json_get_str(j, "unk_token");
    b->unk_id = unk ? vocab_id(m, unk, strlen(unk)) : -1;
    m->unk_id = b->unk_id;
    b->fuse_unk = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "fuse_unk"));
    b->ignore_merges = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "ignore_merges"));
    m->byte_fallback = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "byte_fallback"));
    const cJSON *dr = cJSON_GetObjectItemCaseSensitive(j, "dropout");
    if (cJSON_IsNumber(dr) && dr->valuedouble > 0)
        return rr_fail(RR_ERR_UNSUPPORTED, "%s: BPE field \"model.dropout\" > 0 is not supported (random at inference)", what);
    const char *pre = rr_json_get_str(j, "continuing_subword_prefix"), *suf = rr_json_get_str(j, "end_of_word_suffix");
    b->prefix = rr_strdup(pre ? pre : "");
    b->suffix = rr_strdup(suf ? suf : "");
    if (!b->prefix || !b->suffix) return rr_fail(RR_ERR_NOMEM, "%s: out of memory", what);
    b->prefix_len = strlen(b->prefix), b->suffix_len = strlen(b->suffix);
    if (m->byte_fallback)
        for (int c = 0; c < 256; c++) {
            char name[8];
            snprintf(name, sizeof name, "<0x%02X>", c);
            m->byte_ids[c] = vocab_id(m, name, 6);
        }
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(j, "merges");
    if (!cJSON_IsArray(merges)) return rr_fail(RR_ERR_FORMAT, "%s: BPE field \"model.merges\" must be an array", what);
    int n = cJSON_GetArraySize(merges);
    b->cap = 1024;
    b->shift = 64 - 10;
    while (b->cap < (size_t)n * 2 + 2) b->cap *= 2, b->shift--;
    b->slots = rr_calloc(2 * b->cap, sizeof *b->slots);
    if (!b->slots) return rr_fail(RR_ERR_NOMEM, "%s: out of memory for merges", what);
    str_ids ids = {0};
    rr_status st2 = str_ids_build(&ids, cJSON_GetObjectItemCaseSensitive(j, "vocab"));
    if (st2) {
        str_ids_free(&ids);
        return st2;
    }
    rr_buf tmp = {0};
    int rank = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, merges) {
        const char *a = NULL, *c = NULL;
        size_t al = 0, cl = 0;
        if (cJSON_IsString(e)) { /* "a b" */
            const char *sp = strchr(e->valuestring, ' ');
            if (sp && !strchr(sp + 1, ' ')) a = e->valuestring, al = (size_t)(sp - a), c = sp + 1, cl = strlen(c);
        } else if (cJSON_IsArray(e) && cJSON_GetArraySize(e) == 2 && cJSON_IsString(e->child) && cJSON_IsString(e->child->next)) {
            a = e->child->valuestring, al = strlen(a), c = e->child->next->valuestring, cl = strlen(c);
        }
        if (!a) {
            rr_buf_free(&tmp);
            str_ids_free(&ids);
            return rr_fail(RR_ERR_FORMAT, "%s: BPE field \"model.merges[%d]\" must be \"a b\" or [a, b]", what, rank);
        }
        int32_t ia = str_ids_get(&ids, a, al), ic = str_ids_get(&ids, c, cl);
        tmp.len = 0;
        rr_buf_append(&tmp, a, al);
        size_t skip = b->prefix_len && cl >= b->prefix_len && !memcmp(c, b->prefix, b->prefix_len) ? b->prefix_len : 0;
        rr_buf_append(&tmp, c + skip, cl - skip);
        int32_t inew = tmp.oom ? -1 : str_ids_get(&ids, tmp.data, tmp.len);
        if (ia < 0 || ic < 0 || inew < 0) {
            rr_buf_free(&tmp);
            str_ids_free(&ids);
            return rr_fail(RR_ERR_FORMAT, "%s: BPE field \"model.merges[%d]\" uses a token outside the vocabulary", what, rank);
        }
        uint64_t k = ((uint64_t)(uint32_t)ia << 32 | (uint32_t)ic) + 1;
        size_t i = pair_slot(b, k);
        while (b->slots[2 * i] && b->slots[2 * i] != k) i = (i + 1) & (b->cap - 1);
        if (!b->slots[2 * i]) { /* a repeated pair keeps its first (best) rank */
            b->slots[2 * i] = k;
            b->slots[2 * i + 1] = (uint64_t)(uint32_t)rank << 32 | (uint32_t)inew;
        }
        rank++;
    }
    rr_buf_free(&tmp);
    str_ids_free(&ids);
    return RR_OK;
}

/* Merges the adjacent pair of lowest rank, the leftmost of equal ranks, until no pair has a merge.
 * Symbols form a linked list; candidate pairs wait in a min-heap keyed (rank << 32 | position of
 * the left symbol), so a word of n symbols costs O(n log n) instead of a rescan per merge. A
 * popped pair is acted on only if it is still current: both symbols alive, and the pair's rank
 * (unique per pair) unchanged. Since a position's symbol only grows, the merge order is the same
 * as the rescanning definition's. Compacts sym in place; false when out of memory. */
static bool merge_all(const rr_tok_bpe *b, rr_tok_ids *sym, rr_tok_scratch *sc) {
    size_t n = sym->n, nh = 0;
    if (sc->link_cap < n) { /* n-1 first pairs, at most 2 more per merge: 3n heap entries */
        size_t cap = RR_MAX(n, 2 * sc->link_cap);
        uint32_t *l = rr_realloc(sc->link, 2 * cap * sizeof *l);
        if (l) sc->link = l;
        uint64_t *h = rr_realloc(sc->heap, 3 * cap * sizeof *h);
        if (h) sc->heap = h;
        if (!l || !h) return false;
        sc->link_cap = cap;
    }
    uint32_t *next = sc->link, *prev = sc->link + n;
    uint64_t *heap = sc->heap;
    int32_t *v = sym->v;
    uint32_t r;
    int32_t id;
#define HEAP_PUSH(key)                                                                             \
    do {                                                                                           \
        size_t i_ = nh++;                                                                          \
        uint64_t k_ = (key);                                                                       \
        while (i_ && heap[(i_ - 1) / 2] > k_) heap[i_] = heap[(i_ - 1) / 2], i_ = (i_ - 1) / 2;    \
        heap[i_] = k_;                                                                             \
    } while (0)
    for (size_t i = 0; i < n; i++) {
        next[i] = i + 1 < n ? (uint32_t)(i + 1) : UINT32_MAX;
        prev[i] = i ? (uint32_t)(i - 1) : UINT32_MAX;
        if (i + 1 < n && pair_get(b, v[i], v[i + 1], &r, &id)) HEAP_PUSH((uint64_t)r << 32 | i);
    }
    while (nh) {
        uint64_t top = heap[0], last = heap[--nh];
        size_t i = 0; /* sift the last entry down from the root */
        for (;;) {
            size_t c = 2 * i + 1;
            if (c >= nh) break;
            if (c + 1 < nh && heap[c + 1] < heap[c]) c++;
            if (heap[c] >= last) break;
            heap[i] = heap[c], i = c;
        }
        if (nh) heap[i] = last;
        uint32_t pos = (uint32_t)top, rank = (uint32_t)(top >> 32), nx = next[pos];
        if (v[pos] < 0 || nx == UINT32_MAX || !pair_get(b, v[pos], v[nx], &r, &id) || r != rank) continue; /* stale */
        v[pos] = id;
        v[nx] = -1;
        next[pos] = next[nx];
        if (next[nx] != UINT32_MAX) prev[next[nx]] = pos;
        if (prev[pos] != UINT32_MAX && pair_get(b, v[prev[pos]], v[pos], &r, &id)) HEAP_PUSH((uint64_t)r << 32 | prev[pos]);
        if (next[pos] != UINT32_MAX && pair_get(b, v[pos], v[next[pos]], &r, &id)) HEAP_PUSH((uint64_t)r << 32 | pos);
    }
#undef HEAP_PUSH
    size_t k = 0;
    for (uint32_t i = 0; i != UINT32_MAX; i = next[i]) v[k++] = v[i];
    sym->n = k;
    return true;
}

rr_status rr_tok_bpe_encode(const rr_tok_model *m, const char *s, size_t n, rr_tok_scratch *sc, rr_tok_ids *out) {
    const rr_tok_bpe *b = m->bpe;
    if (!n) return RR_OK;
    if (b->ignore_merges && !b->prefix_len && !b->suffix_len) {
        int32_t id = vocab_id(m, s, n);
        if (id >= 0) {
            rr_tok_ids_push(out, id);
            return out->oom ? rr_fail(RR_ERR_NOMEM, "tokenizer: out of memory") : RR_OK;
        }
    }
    /* initial symbols: one per character */
    if (!sc->sym && !(sc->sym = rr_calloc(1, sizeof *sc->sym))) return rr_fail(RR_ERR_NOMEM, "tokenizer: out of memory");
    rr_tok_ids *sym = sc->sym;
    sym->n = 0;
    rr_buf *tmp = &sc->tmp;
    bool last_unk = false;
    for (size_t i = 0; i < n;) {
        size_t l;
        rr_tok_utf8_next((const uint8_t *)s + i, n - i, &l);
        tmp->len = 0;
        if (i > 0) rr_buf_append(tmp, b->prefix, b->prefix_len);
        rr_buf_append(tmp, s + i, l);
        if (i + l == n) rr_buf_append(tmp, b->suffix, b->suffix_len);
        int32_t id = tmp->oom ? -1 : vocab_id(m, tmp->data, tmp->len);
        if (id >= 0) {
            rr_tok_ids_push(sym, id);
            last_unk = false;
        } else if (m->byte_fallback && m->byte_ids[(uint8_t)s[i]] >= 0) {
            for (size_t k = 0; k < l; k++) rr_tok_ids_push(sym, m->byte_ids[(uint8_t)s[i + k]] >= 0 ? m->byte_ids[(uint8_t)s[i + k]] : b->unk_id);
            last_unk = false;
        } else if (b->unk_id >= 0) {
            if (!(b->fuse_unk && last_unk)) rr_tok_ids_push(sym, b->unk_id);
            last_unk = true;
        }
        i += l;
    }
    bool oom = sym->oom || tmp->oom || (sym->n > 1 && !merge_all(b, sym, sc));
    for (size_t i = 0; !oom && i < sym->n; i++) rr_tok_ids_push(out, sym->v[i]);
    oom = oom || out->oom;
    return oom ? rr_fail(RR_ERR_NOMEM, "tokenizer: out of memory") : RR_OK;
}

/* ------------------------------------------------------------------ ByteLevel pre-tokenizer */

static bool is_l(uint32_t c) {
    if (c < 0x80) return (c | 32) >= 'a' && (c | 32) <= 'z';
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO;
}

static bool is_n(uint32_t c) {
    if (c < 0x80) return c >= '0' && c <= '9';
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return k == UTF8PROC_CATEGORY_ND || k == UTF8PROC_CATEGORY_NL || k == UTF8PROC_CATEGORY_NO;
}

static uint32_t cp_at(const uint8_t *s, size_t n, size_t i, size_t *l) { return rr_tok_utf8_next(s + i, n - i, l); }

/* Length of the GPT-2 regex match at i:
 * 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static size_t gpt2_match(const uint8_t *s, size_t n, size_t i) {
    size_t l;
    if (s[i] == '\'') {
        static const char *suf[] = {"s", "t", "re", "ve", "m", "ll", "d"};
        for (size_t k = 0; k < RR_ARRAY_LEN(suf); k++) {
            size_t sl = strlen(suf[k]);
            if (i + 1 + sl <= n && !memcmp(s + i + 1, suf[k], sl)) return 1 + sl;
        }
    }
    size_t j = i + (s[i] == ' ' && i + 1 < n ? 1 : 0);
    for (int cls = 0; cls < 3; cls++) {
        size_t e = j;
        while (e < n) {
            uint32_t c = cp_at(s, n, e, &l);
            bool in = cls == 0 ? is_l(c) : cls == 1 ? is_n(c) : !(rr_tok_is_whitespace(c) || is_l(c) || is_n(c));
            if (!in) break;
            e += l;
        }
        if (e > j) return e - i;
    }
    /* whitespace */
    size_t e = i, last = i;
    while (e < n) {
        uint32_t c = cp_at(s, n, e, &l);
        if (!rr_tok_is_whitespace(c)) break;
        last = e;
        e += l;
    }
    if (e == i) { /* cannot happen: every character is in one of the classes */
        cp_at(s, n, i, &l);
        return l;
    }
    if (e == n || last == i) return e - i; /* \s+(?!\S) at the end, or a single space: \s+ */
    return last - i;                       /* leave the last space for the next word */
}

/* GPT-2's bytes_to_unicode: printable bytes stand for themselves, the 68 others map in order to
 * U+0100.. (0-32 -> 256-288, 127-160 -> 289-322, 173 -> 323). */
static uint32_t byte_char(uint8_t b) {
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) return b;
    if (b <= 32) return 256u + b;
    if (b <= 160) return 289u + (b - 127u);
    return 323;
}

void rr_tok_bytelevel_pre(const rr_tok_pre *p, const char *in, const rr_tok_span *sp, rr_buf *out, rr_tok_spans *outs) {
    rr_buf t = {0};
    if (p->add_prefix_space && (sp->len == 0 || in[sp->off] != ' ')) rr_buf_append(&t, " ", 1);
    rr_buf_append(&t, in + sp->off, sp->len);
    if (t.oom) {
        out->oom = true;
        return;
    }
    const uint8_t *s = (const uint8_t *)t.data;
    size_t n = t.len;
    for (size_t i = 0; i < n;) {
        size_t ml = p->use_regex ? gpt2_match(s, n, i) : n - i;
        size_t start = out->len;
        for (size_t k = i; k < i + ml; k++) {
            char u[4];
            rr_buf_append(out, u, (size_t)rr_tok_utf8_put(byte_char(s[k]), u));
        }
        rr_tok_spans_push(outs, start, out->len - start, sp->at0 && i == 0);
        i += ml;
    }
    rr_buf_free(&t);
}

/*
 * unigram.c -- the Unigram model (sentencepiece unigram as HF tokenizers runs it): load the
 * [piece, score] vocabulary, then Viterbi over each pre-token.
 *
 * The lattice is HF's encode_optimized, reproduced decision for decision because equal-score
 * paths do occur ("...." -> "." "..." under HF, "..." "." under sentencepiece): positions are
 * visited left to right; at each, the vocabulary pieces starting there are tried shortest first
 * (a trie walk) and replace the best path into their end only when strictly better (or when that
 * end has none yet); if no piece covers exactly the one character there, an unknown edge of score
 * min_score - 10 does the same. Scores are doubles, as in Rust. Backtracking fuses runs of unknown
 * pieces into one token whose id is looked up again (byte fallback: <0xXX> pieces).
 */
#include "tokenize/tok.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* The pieces are read: the sorted index and trie, and where the model falls back to bytes, the id of
 * each "<0xNN>" piece. */
static rr_status index_pieces(rr_tok_model *m, const char *what) {
    rr_status st = rr_tok_insert_sorted(m, what);
    if (st || !m->byte_fallback) return st;
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        m->byte_ids[b] = rr_tok_trie_get(&m->trie, name, 6);
    }
    return RR_OK;
}

rr_status rr_tok_unigram_load(rr_tok_model *m, const cJSON *j, const char *raw, size_t raw_len, const char *what) {
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(j, "vocab");
    if (!cJSON_IsArray(vocab)) return rr_fail(RR_ERR_FORMAT, "%s: Unigram field \"model.vocab\" must be an array", what);
    int n = cJSON_GetArraySize(vocab);
    if (n <= 0) return rr_fail(RR_ERR_FORMAT, "%s: Unigram field \"model.vocab\" is empty", what);
    if (n > (1 << 28)) return rr_fail(RR_ERR_RANGE, "%s: Unigram vocabulary of %d pieces is too large", what, n);
    size_t bytes = 0;
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, vocab) {
        const cJSON *p = cJSON_GetArrayItem(e, 0), *sc = cJSON_GetArrayItem(e, 1);
        if (!cJSON_IsArray(e) || cJSON_GetArraySize(e) != 2 || !cJSON_IsString(p) || !cJSON_IsNumber(sc) ||
            !isfinite(sc->valuedouble))
            return rr_fail(RR_ERR_FORMAT, "%s: Unigram field \"model.vocab[%d]\" must be [string, finite number]", what, i);
        bytes += strlen(p->valuestring) + 1;
        i++;
    }
    rr_status st = rr_tok_model_alloc(m, n, bytes, what);
    if (st) return st;
    m->kind = RR_TOK_UNIGRAM;
    m->scores = rr_malloc((size_t)n * sizeof *m->scores);
    if (!m->scores) return rr_fail(RR_ERR_NOMEM, "%s: out of memory for the vocabulary", what);
    long unk = -1;
    st = rr_json_get_int(j, "unk_id", 0, n - 1, what, &unk);
    if (st == RR_ERR_NOT_FOUND) unk = -1;
    else if (st) return st;
    m->unk_id = (int32_t)unk;
    const cJSON *bf = cJSON_GetObjectItemCaseSensitive(j, "byte_fallback");
    m->byte_fallback = cJSON_IsTrue(bf);
    size_t off = 0;
    i = 0;
    cJSON_ArrayForEach(e, vocab) m->scores[i++] = e->child->next->valuedouble;
    if (raw) rr_tok_serde_unigram_scores(raw, raw_len, m->scores, n); /* on a shape mismatch cJSON's values stay */
    m->min_score = INFINITY;
    i = 0;
    cJSON_ArrayForEach(e, vocab) {
        const char *p = e->child->valuestring;
        size_t len = strlen(p);
        memcpy(m->arena + off, p, len + 1);
        m->pieces[i] = m->arena + off;
        m->piece_len[i] = (uint32_t)len;
        off += len + 1;
        double s = m->scores[i];
        if (s < m->min_score) m->min_score = s;
        i++;
    }
    return index_pieces(m, what);
}

rr_status rr_tok_unigram_parse_raw(rr_tok_model *m, const char *vocab, size_t max, size_t *consumed, const char *what) {
    char *arena = rr_malloc(max + 1);
    uint32_t *offs = NULL;
    double *scores = NULL;
    int n = 0;
    if (!arena) return rr_fail(RR_ERR_NOMEM, "%s: out of memory for the vocabulary", what);
    rr_status st = rr_tok_parse_unigram_vocab(vocab, max, arena, &offs, &scores, &n, consumed, what);
    if (st) {
        rr_free(arena);
        return st;
    }
    m->kind = RR_TOK_UNIGRAM;
    m->n_vocab = n;
    m->arena = arena;
    m->scores = scores;
    m->pieces = rr_malloc(((size_t)n + 1) * sizeof *m->pieces);
    m->piece_len = rr_malloc(((size_t)n + 1) * sizeof *m->piece_len);
    if (!m->pieces || !m->piece_len) {
        rr_free(offs);
        return rr_fail(RR_ERR_NOMEM, "%s: out of memory for the vocabulary", what);
    }
    m->min_score = INFINITY;
    for (int i = 0; i < n; i++) {
        m->pieces[i] = arena + offs[i];
        m->piece_len[i] = (uint32_t)strlen(m->pieces[i]);
        if (scores[i] < m->min_score) m->min_score = scores[i];
    }
    rr_free(offs);
    return RR_OK;
}

rr_status rr_tok_unigram_finish_raw(rr_tok_model *m, const cJSON *j, const char *what) {
    int n = m->n_vocab;
    for (int i = 0; i < 256; i++) m->byte_ids[i] = -1;
    long unk = -1;
    rr_status st = rr_json_get_int(j, "unk_id", 0, n - 1, what, &unk);
    if (st == RR_ERR_NOT_FOUND) unk = -1;
    else if (st) return st;
    m->unk_id = (int32_t)unk;
    m->byte_fallback = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "byte_fallback"));
    return index_pieces(m, what);
}

static bool scratch_reserve(rr_tok_scratch *sc, size_t n) {
    if (sc->cap >= n) return true;
    size_t cap = sc->cap ? sc->cap : 256;
    while (cap < n) cap *= 2;
    double *s = rr_realloc(sc->score, cap * sizeof *s);
    if (s) sc->score = s;
    int32_t *f = rr_realloc(sc->from, cap * sizeof *f);
    if (f) sc->from = f;
    int32_t *d = rr_realloc(sc->id, cap * sizeof *d);
    if (d) sc->id = d;
    if (!s || !f || !d) return false;
    sc->cap = cap;
    return true;
}

void rr_tok_scratch_free(rr_tok_scratch *s) {
    if (!s) return;
    rr_free(s->score);
    rr_free(s->from);
    rr_free(s->id);
    rr_buf_free(&s->tmp);
    if (s->sym) rr_free(s->sym->v);
    rr_free(s->sym);
    rr_free(s->link);
    rr_free(s->heap);
    memset(s, 0, sizeof *s);
}

/* Pushes the id(s) of a fused unknown run s[b, e). */
static void push_unknown(const rr_tok_model *m, const char *s, size_t b, size_t e, rr_tok_ids *out) {
    int32_t id = rr_tok_trie_get(&m->trie, s + b, e - b);
    if (id >= 0) {
        rr_tok_ids_push(out, id);
        return;
    }
    if (m->byte_fallback) {
        bool all = true;
        for (size_t k = b; k < e; k++) all = all && m->byte_ids[(uint8_t)s[k]] >= 0;
        if (all) {
            /* out is built back to front: push the bytes in reverse */
            for (size_t k = e; k > b; k--) rr_tok_ids_push(out, m->byte_ids[(uint8_t)s[k - 1]]);
            return;
        }
    }
    rr_tok_ids_push(out, m->unk_id);
}

rr_status rr_tok_unigram_encode(const rr_tok_model *m, const char *s, size_t n, rr_tok_scratch *sc, rr_tok_ids *out) {
    if (!n) return RR_OK;
    if (n >= INT32_MAX) return rr_fail(RR_ERR_RANGE, "tokenizer: a pre-token of %zu bytes is too long", n);
    if (!scratch_reserve(sc, n + 1)) return rr_fail(RR_ERR_NOMEM, "tokenizer: out of memory");
    const uint8_t *u = (const uint8_t *)s;
    double *score = sc->score;
    int32_t *from = sc->from, *id = sc->id;
    const double unk_score = m->min_score - 10.0;
    const rr_tok_trie *t = &m->trie;
    from[0] = 0;
    score[0] = 0.0;
    for (size_t k = 1; k <= n; k++) from[k] = -1;
    for (size_t i = 0; i < n;) {
        size_t mblen;
        rr_tok_utf8_next(u + i, n - i, &mblen);
        const double base = score[i];
        bool single = false;
        uint32_t node = 0;
        for (size_t k = i; k < n; k++) {
            if (!(node = rr_tok_trie_step(t, node, u[k]))) break;
            int32_t v = t->value[node];
            if (v < 0) continue;
            size_t end = k + 1;
            double cand = base + m->scores[v];
            if (from[end] < 0 || cand > score[end]) {
                score[end] = cand;
                from[end] = (int32_t)i;
                id[end] = v;
            }
            if (end - i == mblen) single = true;
        }
        if (!single) {
            if (m->unk_id < 0)
                return rr_fail(RR_ERR_UNSUPPORTED, "tokenizer: text has a character outside the vocabulary and the Unigram model has no unk_id");
            size_t end = i + mblen;
            double cand = base + unk_score;
            if (from[end] < 0 || cand > score[end]) {
                score[end] = cand;
                from[end] = (int32_t)i;
                id[end] = m->unk_id;
            }
        }
        i += mblen;
    }
    /* Backtrack, writing ids back to front, then reverse the new tail. */
    size_t first = out->n, end = n, unk_end = 0;
    bool in_unk = false;
    while (end > 0) {
        size_t b = (size_t)from[end];
        if (id[end] == m->unk_id) {
            if (!in_unk) unk_end = end, in_unk = true;
        } else {
            if (in_unk) push_unknown(m, s, end, unk_end, out), in_unk = false;
            rr_tok_ids_push(out, id[end]);
        }
        end = b;
    }
    if (in_unk) push_unknown(m, s, 0, unk_end, out);
    if (out->oom) return rr_fail(RR_ERR_NOMEM, "tokenizer: out of memory");
    for (size_t a = first, z = out->n - 1; a < z; a++, z--) {
        int32_t tmp = out->v[a];
        out->v[a] = out->v[z];
        out->v[z] = tmp;
    }
    return RR_OK;
}

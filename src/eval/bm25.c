/*
 * bm25.c -- the built-in first stage of `rerank eval`: a multilingual tokenizer and an in-memory
 * BM25 index. It stands in for Anserini/Pyserini's BM25 when no run file is given, so a reranker
 * can be measured on a BEIR folder with nothing else installed.
 *
 * Scoring is Robertson's BM25 with Lucene's idf, log(1 + (N - df + 0.5) / (df + 0.5)), and the
 * (k1 + 1) numerator factor (it scales every score alike, so rankings equal Lucene 8+'s, which
 * drops it). Document lengths are exact term counts (Lucene stores a lossy one-byte norm, so scores
 * differ from Anserini in the last digits and a few ties fall differently). Analysis is not
 * Anserini's language-specific one (no stemming, no stop words): the same rules for every script,
 * which matters for multilingual and cross-lingual sets.
 */
#define _GNU_SOURCE /* qsort_r */
#include "rerank_eval.h"

#include "core/core.h"

#include <math.h>
#include <stdlib.h>
#include <utf8proc.h>

/* ------------------------------------------------------------------ tokenizer */

/* Scripts written without spaces between words: every character is a term, and so is every pair
 * of adjacent characters (the usual substitute for a word segmenter in multilingual BM25). */
static bool unspaced(int32_t c) {
    return (c >= 0x0E00 && c <= 0x0EFF)      /* Thai, Lao */
           || (c >= 0x1000 && c <= 0x109F)   /* Myanmar */
           || (c >= 0x1780 && c <= 0x17FF)   /* Khmer */
           || (c >= 0x19E0 && c <= 0x19FF)   /* Khmer symbols */
           || (c >= 0x2E80 && c <= 0x2FDF)   /* CJK radicals, Kangxi */
           || (c >= 0x3005 && c <= 0x3007)   /* 々 〆 〇 */
           || (c >= 0x3040 && c <= 0x31FF)   /* Hiragana, Katakana, Bopomofo, Katakana ext. */
           || (c >= 0x3400 && c <= 0x4DBF)   /* CJK ext. A */
           || (c >= 0x4E00 && c <= 0x9FFF)   /* CJK unified */
           || (c >= 0xA000 && c <= 0xA4CF)   /* Yi */
           || (c >= 0xF900 && c <= 0xFAFF)   /* CJK compatibility */
           || (c >= 0x20000 && c <= 0x3FFFF); /* CJK ext. B.. */
}

typedef enum { CH_SEP, CH_WORD, CH_MARK, CH_UNSPACED } ch_class;

static ch_class classify(int32_t c) {
    switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
        return CH_MARK;
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
        return unspaced(c) ? CH_UNSPACED : CH_WORD;
    default:
        return CH_SEP;
    }
}

static void emit(rr_buf *out, const uint8_t *s, size_t n, int *count) {
    rr_buf_append(out, s, n);
    rr_buf_append(out, "", 1);
    (*count)++;
}

rr_status rr_eval_tokenize(const char *text, size_t len, rr_buf *out, int *n_terms) {
    *n_terms = 0;
    /* Invalid UTF-8 would make utf8proc reject the whole text: turn bad bytes into spaces first. */
    char *clean = NULL;
    for (size_t i = 0; i < len;) {
        int32_t c;
        utf8proc_ssize_t k = utf8proc_iterate((const uint8_t *)text + i, (utf8proc_ssize_t)(len - i), &c);
        if (k > 0) {
            i += (size_t)k;
            continue;
        }
        if (!clean) {
            clean = rr_malloc(len ? len : 1);
            if (!clean) return rr_fail(RR_ERR_NOMEM, "bm25: out of memory");
            memcpy(clean, text, len);
        }
        clean[i++] = ' ';
    }
    uint8_t *norm = NULL;
    utf8proc_ssize_t nn =
        utf8proc_map((const uint8_t *)(clean ? clean : text), (utf8proc_ssize_t)len, &norm,
                     UTF8PROC_STABLE | UTF8PROC_COMPAT | UTF8PROC_COMPOSE | UTF8PROC_CASEFOLD | UTF8PROC_IGNORE);
    rr_free(clean);
    if (nn < 0) {
        free(norm);
        return nn == UTF8PROC_ERROR_NOMEM ? rr_fail(RR_ERR_NOMEM, "bm25: out of memory normalizing text")
                                          : rr_fail(RR_ERR_INVALID, "bm25: %s", utf8proc_errmsg(nn));
    }
    /* One pass over the normalized text. A word is a run of CH_WORD (marks attach to it); an
     * unspaced run is a sequence of units, each a CH_UNSPACED character with its marks. */
    size_t word_start = 0, n_units = 0;
    size_t unit_start[2] = {0, 0}; /* starts of the last two units of the unspaced run */
    ch_class state = CH_SEP;
    size_t i = 0;
    for (;;) {
        int32_t c = 0;
        utf8proc_ssize_t k = 0;
        ch_class cls = CH_SEP;
        if (i < (size_t)nn) {
            k = utf8proc_iterate(norm + i, nn - (utf8proc_ssize_t)i, &c);
            if (k <= 0) k = 1, c = ' '; /* cannot happen after utf8proc_map; stay safe */
            cls = classify(c);
        }
        if (cls == CH_MARK && state != CH_SEP) { /* extends the current word or unit */
            i += (size_t)k;
            continue;
        }
        if (cls == CH_MARK) cls = CH_WORD; /* a mark after a separator starts a word */
        /* Close the current unit of an unspaced run: emit it and the pair it ends. */
        if (state == CH_UNSPACED && n_units > 0) {
            size_t last = unit_start[(n_units - 1) & 1];
            emit(out, norm + last, i - last, n_terms);
            if (n_units > 1) emit(out, norm + unit_start[n_units & 1], i - unit_start[n_units & 1], n_terms);
        }
        if (state == CH_WORD && cls != CH_WORD) emit(out, norm + word_start, i - word_start, n_terms);
        if (i >= (size_t)nn) break;
        if (cls == CH_UNSPACED) {
            if (state != CH_UNSPACED) n_units = 0;
            unit_start[n_units & 1] = i;
            n_units++;
        } else if (cls == CH_WORD && state != CH_WORD) {
            word_start = i;
        }
        state = cls;
        i += (size_t)k;
    }
    free(norm);
    if (out->oom) return rr_fail(RR_ERR_NOMEM, "bm25: out of memory");
    return RR_OK;
}

/* ------------------------------------------------------------------ index */

struct rr_eval_bm25 {
    int n_docs, n_terms;
    float k1, b;
    rr_eval_pool pool;
    rr_eval_strmap terms; /* term -> id */
    int64_t *post_off;    /* [n_terms + 1] */
    int32_t *post_doc;    /* postings, by term then document */
    int32_t *post_tf;
    float *idf;           /* [n_terms] */
    float *norm;          /* [n_docs]: k1 * (1 - b + b * len / avg_len) */
    double *acc;          /* [n_docs] scratch accumulators */
    int32_t *touched;     /* [n_docs] scratch: documents with acc != 0 */
    uint8_t *seen;        /* [n_docs] scratch */
};

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

typedef struct grow_i32 {
    int32_t *p;
    size_t n, cap;
} grow_i32;

static bool push_i32(grow_i32 *g, int32_t v) {
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 4096;
        int32_t *p = rr_realloc(g->p, cap * sizeof(*p));
        if (!p) return false;
        g->p = p;
        g->cap = cap;
    }
    g->p[g->n++] = v;
    return true;
}

/* Term ids of a text in *ids (interned when `add`, else unknown terms are dropped). */
static rr_status text_terms(rr_eval_bm25 *ix, const char *text, bool add, rr_buf *tmp, grow_i32 *ids) {
    tmp->len = 0;
    ids->n = 0;
    int n;
    rr_status st = rr_eval_tokenize(text, strlen(text), tmp, &n);
    if (st != RR_OK) return st;
    const char *p = tmp->data;
    for (int t = 0; t < n; t++) {
        size_t len = strlen(p);
        int id = rr_eval_strmap_get(&ix->terms, p, len);
        if (id < 0 && add) {
            const char *k = rr_eval_pool_strndup(&ix->pool, p, len);
            if (!k) return rr_fail(RR_ERR_NOMEM, "bm25: out of memory");
            id = ix->n_terms++;
            st = rr_eval_strmap_put(&ix->terms, k, id, NULL);
            if (st != RR_OK) return st;
        }
        if (id >= 0 && !push_i32(ids, id)) return rr_fail(RR_ERR_NOMEM, "bm25: out of memory");
        p += len + 1;
    }
    return RR_OK;
}

rr_status rr_eval_bm25_build(const char *const *texts, int n_docs, float k1, float b, rr_eval_bm25 **out) {
    if (n_docs < 1) return rr_fail(RR_ERR_INVALID, "bm25: no documents to index");
    rr_eval_bm25 *ix = rr_calloc(1, sizeof(*ix));
    if (!ix) return rr_fail(RR_ERR_NOMEM, "bm25: out of memory");
    ix->n_docs = n_docs;
    ix->k1 = k1;
    ix->b = b;
    rr_buf tmp = {0};
    grow_i32 ids = {0}, p_term = {0}, p_doc = {0}, p_tf = {0};
    int32_t *len = rr_calloc((size_t)n_docs, sizeof(*len));
    rr_status st = len ? RR_OK : rr_fail(RR_ERR_NOMEM, "bm25: out of memory");
    /* Pass 1: (term, doc, tf) triples in document order. */
    for (int d = 0; d < n_docs && st == RR_OK; d++) {
        st = text_terms(ix, texts[d], true, &tmp, &ids);
        if (st != RR_OK) break;
        len[d] = (int32_t)ids.n;
        qsort(ids.p, ids.n, sizeof(int32_t), cmp_i32);
        for (size_t i = 0; i < ids.n;) {
            size_t j = i;
            while (j < ids.n && ids.p[j] == ids.p[i]) j++;
            if (!push_i32(&p_term, ids.p[i]) || !push_i32(&p_doc, d) || !push_i32(&p_tf, (int32_t)(j - i))) {
                st = rr_fail(RR_ERR_NOMEM, "bm25: out of memory");
                break;
            }
            i = j;
        }
    }
    /* Pass 2: counting sort by term into CSR postings (stable, so documents stay ascending). */
    if (st == RR_OK) {
        int nt = ix->n_terms;
        ix->post_off = rr_calloc((size_t)nt + 1, sizeof(int64_t));
        ix->post_doc = rr_malloc((p_doc.n ? p_doc.n : 1) * sizeof(int32_t));
        ix->post_tf = rr_malloc((p_doc.n ? p_doc.n : 1) * sizeof(int32_t));
        ix->idf = rr_malloc(((size_t)nt + 1) * sizeof(float));
        ix->norm = rr_malloc((size_t)n_docs * sizeof(float));
        ix->acc = rr_calloc((size_t)n_docs, sizeof(double));
        ix->touched = rr_malloc((size_t)n_docs * sizeof(int32_t));
        ix->seen = rr_calloc((size_t)n_docs, 1);
        int64_t *fill = rr_calloc((size_t)nt + 1, sizeof(int64_t));
        if (!ix->post_off || !ix->post_doc || !ix->post_tf || !ix->idf || !ix->norm || !ix->acc || !ix->touched ||
            !ix->seen || !fill) {
            st = rr_fail(RR_ERR_NOMEM, "bm25: out of memory for %zu postings", p_doc.n);
        } else {
            for (size_t i = 0; i < p_term.n; i++) ix->post_off[p_term.p[i] + 1]++;
            for (int t = 0; t < nt; t++) ix->post_off[t + 1] += ix->post_off[t];
            for (size_t i = 0; i < p_term.n; i++) {
                int64_t at = ix->post_off[p_term.p[i]] + fill[p_term.p[i]]++;
                ix->post_doc[at] = p_doc.p[i];
                ix->post_tf[at] = p_tf.p[i];
            }
            for (int t = 0; t < nt; t++) {
                double df = (double)(ix->post_off[t + 1] - ix->post_off[t]);
                ix->idf[t] = (float)log(1.0 + ((double)n_docs - df + 0.5) / (df + 0.5));
            }
            double total = 0;
            for (int d = 0; d < n_docs; d++) total += len[d];
            double avg = total > 0 ? total / n_docs : 1;
            for (int d = 0; d < n_docs; d++) ix->norm[d] = (float)(k1 * (1.0 - b + b * len[d] / avg));
        }
        rr_free(fill);
    }
    rr_free(len);
    rr_buf_free(&tmp);
    rr_free(ids.p);
    rr_free(p_term.p);
    rr_free(p_doc.p);
    rr_free(p_tf.p);
    if (st != RR_OK) {
        rr_eval_bm25_free(ix);
        return st;
    }
    *out = ix;
    return RR_OK;
}

int rr_eval_bm25_n_terms(const rr_eval_bm25 *ix) { return ix->n_terms; }

typedef struct scored {
    int doc;
    float score;
} scored;

static int cmp_scored(const void *a, const void *b, void *ctx) {
    const scored *x = a, *y = b;
    const char *const *docnos = ctx;
    if (x->score > y->score) return -1;
    if (x->score < y->score) return 1;
    return strcmp(docnos[y->doc], docnos[x->doc]); /* trec_eval: docno descending */
}

rr_status rr_eval_bm25_search(rr_eval_bm25 *ix, const char *query, const char *const *docnos, int k,
                              const int *cand, int n_cand, int *out_docs, float *out_scores, int *n_out) {
    rr_buf tmp = {0};
    grow_i32 ids = {0};
    rr_status st = text_terms(ix, query, false, &tmp, &ids);
    rr_buf_free(&tmp);
    if (st != RR_OK) {
        rr_free(ids.p);
        return st;
    }
    int n_touched = 0;
    const float k1p1 = ix->k1 + 1.0f;
    /* Repeated query terms count once per occurrence, as repeated clauses do in Lucene. */
    for (size_t q = 0; q < ids.n; q++) {
        int t = ids.p[q];
        for (int64_t p = ix->post_off[t]; p < ix->post_off[t + 1]; p++) {
            int d = ix->post_doc[p];
            float tf = (float)ix->post_tf[p];
            if (!ix->seen[d]) {
                ix->seen[d] = 1;
                ix->touched[n_touched++] = d;
            }
            ix->acc[d] += (double)(ix->idf[t] * tf * k1p1 / (tf + ix->norm[d]));
        }
    }
    rr_free(ids.p);
    int n = cand ? n_cand : n_touched;
    scored *s = rr_malloc(((size_t)n + 1) * sizeof(*s));
    if (!s) st = rr_fail(RR_ERR_NOMEM, "bm25: out of memory");
    else if (cand)
        for (int i = 0; i < n_cand; i++) s[i] = (scored){cand[i], (float)ix->acc[cand[i]]};
    else
        for (int i = 0; i < n_touched; i++) s[i] = (scored){ix->touched[i], (float)ix->acc[ix->touched[i]]};
    for (int i = 0; i < n_touched; i++) { /* reset the scratch for the next query */
        ix->acc[ix->touched[i]] = 0;
        ix->seen[ix->touched[i]] = 0;
    }
    if (st != RR_OK) return st;
    qsort_r(s, (size_t)n, sizeof(*s), cmp_scored, (void *)docnos);
    int m = k > 0 ? RR_MIN(k, n) : n;
    for (int i = 0; i < m; i++) {
        out_docs[i] = s[i].doc;
        out_scores[i] = s[i].score;
    }
    *n_out = m;
    rr_free(s);
    return RR_OK;
}

void rr_eval_bm25_free(rr_eval_bm25 *ix) {
    if (!ix) return;
    rr_eval_pool_free(&ix->pool);
    rr_eval_strmap_free(&ix->terms);
    rr_free(ix->post_off);
    rr_free(ix->post_doc);
    rr_free(ix->post_tf);
    rr_free(ix->idf);
    rr_free(ix->norm);
    rr_free(ix->acc);
    rr_free(ix->touched);
    rr_free(ix->seen);
    rr_free(ix);
}

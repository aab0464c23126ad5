/*
 * listwise.c -- jina-reranker-v3's rerank(): documents go into blocks, each block is one prompt that
 * holds the query, up to 125 documents and the query again, and one forward pass scores the whole
 * block from the hidden states at its marker tokens (spec: decoder.md section 4).
 *
 *   1. the query and every document are tokenized alone (a marker string in them counts as its one
 *      special token) and, when one reaches its limit (512 query / 2048 document tokens), replaced by
 *      the decoded text of its first limit tokens (a cut multi-byte character becomes U+FFFD); then
 *      every occurrence of the two marker strings is deleted from the text (the reference cuts
 *      first and cleans when it formats the prompt, so the lengths include the markers);
 *   2. blocks in input order: capacity starts at max_length - 2 q_len and loses each document's
 *      length; a block closes at 125 documents or when capacity <= the document limit;
 *   3. each block's prompt is tokenized as a whole; the pass returns e_d at every document marker and
 *      e_q at the query marker (decoder.c); block weight w = max_d (1 + cos(e_d, e_q)) / 2;
 *   4. final query q = sum_b w_b e_q,b / sum_b w_b; a document's score is cos(q, e_d), in [-1, 1], no
 *      sigmoid. With one block this is the block cosine.
 *
 * A score therefore depends on the other documents of its block, by design. Pair scoring
 * (rr_score_pairs) makes each pair a block of one document with its own query.
 *
 * The plan holds one sequence per block; its emb rows point into the plan's own storage, which the
 * forward pass fills wherever it runs (rr_rank, or the server's engine batching blocks of several
 * requests into one pass).
 */
#include "score/listwise.h"

#include <math.h>
#include <stdio.h>

#define V3_BLOCK_DOCS 125
#define V3_MAX_DOC 2048
#define V3_MAX_QUERY 512
#define V3_RESERVE 2048 /* template ids on top of the documents and twice the query (125 passages) */

static const char DOC_MARK[] = "<|embed_token|>", QUERY_MARK[] = "<|rerank_token|>";

static const char SYS[] =
    "You are a search relevance expert who can determine a ranking of the passages based on how relevant they are "
    "to the query. If the query is a question, how relevant a passage is depends on how well it answers the "
    "question. If not, try to analyze the intent of the query and assess how well each passage satisfies the intent. "
    "If an instruction is provided, you should follow the instruction when determining the ranking.";

int rr_v3_max_length(const rr_model *m, int want) {
    int cap = m->cfg.max_length - V3_RESERVE;
    if (want <= 0) {
        const rr_tokenizer *t = rr_model_tokenizer(m);
        want = t ? rr_tokenizer_model_max_length(t) : 0;
        if (want <= 0) want = cap;
    }
    return RR_MAX(1, RR_MIN(want, cap));
}

/* ------------------------------------------------------------------ text */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *q = rr_realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

/* text with every marker string deleted, appended to b */
static void sb_clean(sbuf *b, rr_text t) {
    size_t i = 0;
    const char *s = t.text ? t.text : "";
    while (i < t.len) {
        if (t.len - i >= sizeof DOC_MARK - 1 && !memcmp(s + i, DOC_MARK, sizeof DOC_MARK - 1)) {
            i += sizeof DOC_MARK - 1;
        } else if (t.len - i >= sizeof QUERY_MARK - 1 && !memcmp(s + i, QUERY_MARK, sizeof QUERY_MARK - 1)) {
            i += sizeof QUERY_MARK - 1;
        } else {
            sb_add(b, s + i, 1);
            i++;
        }
    }
}

/* Byte-level BPE pieces map bytes to printable code points; this inverts that map (-1: not a mapped
 * code point, kept as its UTF-8 bytes, as added tokens' contents are). */
static int unmap_byte(unsigned cp) {
    if ((cp >= 33 && cp <= 126) || (cp >= 161 && cp <= 172) || (cp >= 174 && cp <= 255)) return (int)cp;
    if (cp >= 256 && cp < 256 + 68) {
        /* the unprintable bytes 0..32, 127..160, 173 in order */
        int k = (int)cp - 256;
        if (k <= 32) return k;
        if (k <= 32 + 34) return 127 + (k - 33);
        return 173;
    }
    return -1;
}

/* Length of the UTF-8 sequence at s[0..n) (1..4), or 0 when it is not valid. */
static int utf8_len(const unsigned char *s, size_t n, unsigned *cp) {
    unsigned c = s[0];
    int len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (!len || (size_t)len > n) return 0;
    unsigned v = len == 1 ? c : len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = v << 6 | (s[i] & 0x3F);
    }
    static const unsigned min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < min[len] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return len;
}

/* Number of leading bytes of s that start a valid sequence but end too early (at least 1): the
 * bytes one U+FFFD replaces, as a lossy UTF-8 decoder does. */
static size_t bad_run(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    int want = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
    size_t k = 1;
    while (k < (size_t)want && k < n && (s[k] & 0xC0) == 0x80) k++;
    /* a run that could never have been valid (overlong or surrogate lead) is one byte per U+FFFD */
    if (want > 1 && k >= 2) {
        unsigned b1 = s[1];
        if ((c == 0xE0 && b1 < 0xA0) || (c == 0xED && b1 >= 0xA0) || (c == 0xF0 && b1 < 0x90) ||
            (c == 0xF4 && b1 >= 0x90) || c > 0xF4 || c < 0xC2)
            return 1;
    }
    return k;
}

/* The text of ids[0..n): pieces concatenated, byte-level map inverted, then invalid UTF-8 replaced. */
static void decode(const rr_tokenizer *tok, const int32_t *ids, size_t n, sbuf *raw, sbuf *out) {
    raw->len = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = rr_tokenizer_id_to_piece(tok, ids[i]);
        if (!p) continue;
        size_t pl = strlen(p), k = 0;
        while (k < pl) {
            unsigned cp;
            int l = utf8_len((const unsigned char *)p + k, pl - k, &cp);
            if (!l) {
                sb_add(raw, p + k, 1);
                k++;
                continue;
            }
            int b = unmap_byte(cp);
            if (b >= 0) {
                char ch = (char)b;
                sb_add(raw, &ch, 1);
            } else {
                sb_add(raw, p + k, (size_t)l);
            }
            k += (size_t)l;
        }
    }
    out->len = 0;
    sb_add(out, "", 0);
    const unsigned char *s = (const unsigned char *)(raw->p ? raw->p : "");
    size_t k = 0;
    while (k < raw->len) {
        unsigned cp;
        int l = utf8_len(s + k, raw->len - k, &cp);
        if (l) {
            sb_add(out, (const char *)s + k, (size_t)l);
            k += (size_t)l;
        } else {
            sb_add(out, "\xEF\xBF\xBD", 3);
            k += bad_run(s + k, raw->len - k);
        }
    }
}

/* ------------------------------------------------------------------ plans */

typedef struct v3 {
    const rr_model *m;
    const rr_tokenizer *tok;
    rr_encoding enc;
    sbuf raw, cut, prompt;
    sbuf *texts;      /* [n] cleaned, truncated documents */
    int *lens;        /* [n] their token counts, capped */
} v3;

static void v3_free(v3 *v, int n) {
    rr_encoding_free(&v->enc);
    rr_free(v->raw.p);
    rr_free(v->cut.p);
    rr_free(v->prompt.p);
    for (int i = 0; v->texts && i < n; i++) rr_free(v->texts[i].p);
    rr_free(v->texts);
    rr_free(v->lens);
}

/* t cut by the round trip through max tokens, then cleaned, into out; *len = its tokens, capped. */
static rr_status clean_cut(v3 *v, rr_text t, int max, sbuf *out, int *len) {
    rr_text whole = {t.text ? t.text : "", t.len};
    rr_status s = rr_tokenizer_encode(v->tok, whole, NULL, NULL, &v->enc);
    if (s) return s;
    *len = (int)RR_MIN(v->enc.len, (size_t)max);
    rr_text src = t;
    if (v->enc.len >= (size_t)max) {
        decode(v->tok, v->enc.ids, (size_t)max, &v->raw, &v->cut);
        if (v->cut.oom || v->raw.oom) return rr_fail(RR_ERR_NOMEM, "out of memory");
        src = (rr_text){v->cut.p, v->cut.len};
    }
    out->len = 0;
    sb_add(out, "", 0);
    sb_clean(out, src);
    return out->oom ? rr_fail(RR_ERR_NOMEM, "out of memory") : RR_OK;
}

static rr_status plan_grow(rr_rank_plan *pl, size_t ids, int emb_rows, int E) {
    if (pl->n_seqs == pl->seq_cap) {
        int cap = pl->seq_cap ? pl->seq_cap * 2 : 16;
        rr_seq *s = rr_realloc(pl->seqs, (size_t)cap * sizeof *s);
        if (!s) return rr_fail(RR_ERR_NOMEM, "out of memory planning blocks");
        pl->seqs = s;
        int *d = rr_realloc(pl->seq_doc, (size_t)cap * sizeof *d);
        if (!d) return rr_fail(RR_ERR_NOMEM, "out of memory planning blocks");
        pl->seq_doc = d;
        pl->seq_cap = cap;
    }
    if (pl->len + ids > pl->cap) {
        size_t cap = pl->cap ? pl->cap : 4096;
        while (cap < pl->len + ids) cap *= 2;
        int32_t *a = rr_realloc(pl->ids, cap * sizeof *a);
        if (!a) return rr_fail(RR_ERR_NOMEM, "out of memory planning blocks");
        pl->ids = a;
        pl->cap = cap;
    }
    size_t need = pl->emb_len + (size_t)emb_rows * E;
    if (need > pl->emb_cap) {
        size_t cap = pl->emb_cap ? pl->emb_cap : 1024;
        while (cap < need) cap *= 2;
        float *e = rr_realloc(pl->emb, cap * sizeof *e);
        if (!e) return rr_fail(RR_ERR_NOMEM, "out of memory planning blocks");
        pl->emb = e;
        pl->emb_cap = cap;
    }
    return RR_OK;
}

/* Builds and tokenizes the prompt of docs [first, first + n) of v->texts with query q (cleaned, cut)
 * and appends it as one sequence. */
static rr_status push_block(v3 *v, rr_rank_plan *pl, const char *q, rr_text instruction, int first, int n) {
    sbuf *b = &v->prompt;
    char num[32];
    b->len = 0;
    sb_str(b, "<|im_start|>system\n");
    sb_str(b, SYS);
    sb_str(b, "<|im_end|>\n<|im_start|>user\n");
    snprintf(num, sizeof num, "%d", n);
    sb_str(b, "I will provide you with ");
    sb_str(b, num);
    sb_str(b, " passages, each indicated by a numerical identifier. Rank the passages based on their relevance to "
              "query: ");
    sb_str(b, q);
    sb_str(b, "\n");
    if (instruction.text) {
        sb_str(b, "<instruct>\n");
        sb_add(b, instruction.text, instruction.len);
        sb_str(b, "\n</instruct>\n");
    }
    for (int i = 0; i < n; i++) {
        snprintf(num, sizeof num, "%d", i);
        if (i) sb_str(b, "\n");
        sb_str(b, "<passage id=\"");
        sb_str(b, num);
        sb_str(b, "\">\n");
        sb_add(b, v->texts[first + i].p, v->texts[first + i].len);
        sb_str(b, DOC_MARK);
        sb_str(b, "\n</passage>");
    }
    sb_str(b, "\n<query>\n");
    sb_str(b, q);
    sb_str(b, QUERY_MARK);
    sb_str(b, "\n</query><|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
    if (b->oom) return rr_fail(RR_ERR_NOMEM, "out of memory");
    rr_status s = rr_tokenizer_encode(v->tok, (rr_text){b->p, b->len}, NULL, NULL, &v->enc);
    if (s) return s;
    int E = pl->emb_dim;
    if ((s = plan_grow(pl, v->enc.len, n + 1, E))) return s;
    memcpy(pl->ids + pl->len, v->enc.ids, v->enc.len * sizeof *v->enc.ids);
    /* pointers are set by plan_seal once the storage stops moving */
    pl->seqs[pl->n_seqs] = (rr_seq){(const int32_t *)(uintptr_t)pl->len, NULL, (int)v->enc.len,
                                    (float *)(uintptr_t)pl->emb_len, n + 1};
    memset(pl->emb + pl->emb_len, 0, (size_t)(n + 1) * E * sizeof(float));
    pl->seq_doc[pl->n_seqs++] = first;
    pl->len += v->enc.len;
    pl->emb_len += (size_t)(n + 1) * E;
    pl->total_tokens += (long)v->enc.len;
    return RR_OK;
}

static void seal(rr_rank_plan *pl) {
    for (int i = 0; i < pl->n_seqs; i++) {
        pl->seqs[i].ids = pl->ids + (size_t)(uintptr_t)pl->seqs[i].ids;
        pl->seqs[i].emb = pl->emb + (size_t)(uintptr_t)pl->seqs[i].emb;
    }
}

static rr_status v3_init(v3 *v, const rr_model *m, int n, rr_rank_plan *pl) {
    memset(v, 0, sizeof *v);
    v->m = m;
    v->tok = rr_model_tokenizer(m);
    if (!v->tok) return rr_fail(RR_ERR_UNSUPPORTED, "%s: jina-reranker-v3 needs the folder's tokenizer.json", m->name);
    v->texts = rr_calloc((size_t)(n ? n : 1), sizeof *v->texts);
    v->lens = rr_calloc((size_t)(n ? n : 1), sizeof *v->lens);
    if (!v->texts || !v->lens) return rr_fail(RR_ERR_NOMEM, "out of memory");
    rr_rank_plan_free(pl);
    pl->listwise = 1;
    pl->emb_dim = m->dec->embed_size;
    return RR_OK;
}

rr_status rr_v3_plan_build(const rr_model *m, rr_text query, const rr_text *docs, int n, const rr_rank_params *p,
                           rr_rank_plan *pl) {
    v3 v;
    rr_status s = v3_init(&v, m, n, pl);
    sbuf q = {0};
    /* max_doc_tokens (Cohere's max_tokens_per_doc, 4096 by default there) may only lower the cut; the
     * capacity rule keeps the reference's 2048 so that blocks do not change with the request shape */
    int q_len = 0, cut = p->max_doc_tokens > 0 ? RR_MIN(p->max_doc_tokens, V3_MAX_DOC) : V3_MAX_DOC;
    int max_doc = V3_MAX_DOC;
    int max_q = RR_MIN(V3_MAX_QUERY, p->max_query_length > 0 ? p->max_query_length : V3_MAX_QUERY);
    rr_hook h = {p->progress, p->progress_user, 0, 0};
    if (!s) s = clean_cut(&v, query, max_q, &q, &q_len);
    for (int i = 0; i < n && !s; i++) {
        if ((s = clean_cut(&v, docs[i], cut, &v.texts[i], &v.lens[i]))) rr_errmsg_prefix("document %d", i);
        else s = rr_hook_tick(&h, i);
    }
    int ml = rr_v3_max_length(m, p->max_length);
    long room = (long)ml - 2L * q_len;
    int first = 0;
    for (int i = 0; i < n && !s; i++) {
        room -= v.lens[i];
        if (i + 1 - first >= V3_BLOCK_DOCS || room <= max_doc) {
            s = push_block(&v, pl, q.p, p->instruction, first, i + 1 - first);
            first = i + 1;
            room = (long)ml - 2L * q_len;
        }
    }
    if (!s && first < n) s = push_block(&v, pl, q.p, p->instruction, first, n - first);
    rr_free(q.p);
    v3_free(&v, n);
    if (s) return s;
    pl->n_docs = n;
    seal(pl);
    return RR_OK;
}

rr_status rr_v3_pairs_plan_build(const rr_model *m, const rr_text *queries, const rr_text *docs,
                                 const rr_text *instructions, int n, rr_rank_plan *pl, rr_hook *h) {
    v3 v;
    rr_status s = v3_init(&v, m, 1, pl);
    sbuf q = {0};
    int q_len = 0;
    pl->pairs = 1;
    for (int i = 0; i < n && !s; i++) {
        rr_text instr = instructions ? instructions[i] : (rr_text){NULL, 0};
        s = clean_cut(&v, queries[i], V3_MAX_QUERY, &q, &q_len);
        if (!s) s = clean_cut(&v, docs[i], V3_MAX_DOC, &v.texts[0], &v.lens[0]);
        if (!s) s = push_block(&v, pl, q.p, instr, 0, 1);
        if (s) rr_errmsg_prefix("pair %d", i);
        else pl->seq_doc[pl->n_seqs - 1] = i;
        if (!s) s = rr_hook_tick(h, i);
    }
    rr_free(q.p);
    v3_free(&v, 1);
    if (s) return s;
    pl->n_docs = n;
    seal(pl);
    return RR_OK;
}

/* ------------------------------------------------------------------ scores */

/* cosine as torch computes it: each norm floored at 1e-8 */
static double cosine(const float *a, const double *b, int n) {
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < n; i++) ab += a[i] * b[i], aa += (double)a[i] * a[i], bb += b[i] * b[i];
    return ab / (fmax(sqrt(aa), 1e-8) * fmax(sqrt(bb), 1e-8));
}

rr_status rr_v3_scores(const rr_rank_plan *pl, const float *logits, float *scores) {
    int E = pl->emb_dim;
    double *q = rr_calloc((size_t)E, sizeof *q), *qb = rr_malloc((size_t)E * sizeof *qb), wsum = 0;
    if (!q || !qb) {
        rr_free(q);
        rr_free(qb);
        return rr_fail(RR_ERR_NOMEM, "out of memory");
    }
    for (int b = 0; b < pl->n_seqs; b++) {
        const rr_seq *s = &pl->seqs[b];
        int nd = s->n_emb - 1, first = pl->seq_doc[b];
        const float *eq = s->emb + (size_t)nd * E;
        for (int k = 0; k < E; k++) qb[k] = eq[k];
        int ok = logits[b] == (float)nd; /* every document marker and the query marker were found */
        double w = 0;
        for (int d = 0; d < nd; d++) {
            double c = ok ? cosine(s->emb + (size_t)d * E, qb, E) : NAN;
            if (pl->pairs) scores[first + d] = (float)c;
            w = fmax(w, (1 + c) / 2);
        }
        if (!ok) w = NAN;
        for (int k = 0; k < E; k++) q[k] += w * qb[k];
        wsum += w;
    }
    if (!pl->pairs) {
        for (int k = 0; k < E; k++) q[k] /= wsum;
        for (int b = 0; b < pl->n_seqs; b++) {
            const rr_seq *s = &pl->seqs[b];
            for (int d = 0; d < s->n_emb - 1; d++)
                scores[pl->seq_doc[b] + d] = (float)cosine(s->emb + (size_t)d * E, q, E);
        }
    }
    rr_free(q);
    rr_free(qb);
    return RR_OK;
}

/*
 * prompt.c -- the prompts of the decoder rerankers, built from token ids the way their reference
 * code builds them: each fixed piece and each variable piece is tokenized on its own (no special
 * tokens are added by the Qwen tokenizer anyway) and the id lists are concatenated.
 *
 * Qwen3-Reranker (one sequence, at most max_length ids):
 *   PREFIX | body cut from the right to max_length - |PREFIX| - |SUFFIX| | SUFFIX
 *   body = "<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {document}", one string
 * mxbai-rerank-v2 (query and "\n" + document together at most max_length ids):
 *   PREFIX | query piece cut to 3/4 max_length | "\n" + document piece, cut from the right | "\n" |
 *   TASK | SUFFIX
 *   query piece = ["instruction: {instruction}\n"] "query: {query}", document piece = "document: {document}"
 * where max_length is first lowered so that it plus the fixed pieces fit the model's positions.
 */
#include "score/prompt.h"

#include <stdio.h>

#define QWEN3_PREFIX                                                                                                   \
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct "     \
    "provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n<|im_start|>user\n"
#define QWEN3_SUFFIX "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
#define MXBAI_PREFIX                                                                                                   \
    "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"           \
    "<|im_start|>user\n"
#define MXBAI_TASK                                                                                                     \
    "You are a search relevance expert who evaluates how well documents match search queries. For each "            \
    "query-document pair, carefully analyze the semantic relationship between them, then provide your binary "      \
    "relevance judgment (0 for not relevant, 1 for relevant).\nRelevance:"
#define MXBAI_SUFFIX "<|im_end|>\n<|im_start|>assistant\n"

/* The end of the piece that precedes a document's text (each followed by one space, then the text). */
#define QWEN3_MARK "\n<Document>:"
#define MXBAI_MARK "document:"

/* The default max_length of both reference implementations. */
#define PROMPT_MAX_LENGTH 8192

static rr_status encode(const rr_tokenizer *t, const char *s, size_t n, rr_encoding *out) {
    rr_encode_params ep = rr_encode_default_params();
    ep.add_special = false; /* the Qwen tokenizer adds none anyway; the reference passes False */
    return rr_tokenizer_encode(t, (rr_text){s, n}, NULL, &ep, out);
}

static rr_status encode_str(const rr_tokenizer *t, const char *s, rr_encoding *out) {
    return encode(t, s, strlen(s), out);
}

/* out = concatenation of n id runs (type ids all 0) */
static rr_status concat(rr_encoding *out, const int32_t *const *parts, const size_t *lens, int n) {
    size_t total = 0;
    for (int i = 0; i < n; i++) total += lens[i];
    if (total > out->cap) {
        int32_t *a = rr_realloc(out->ids, total * sizeof *a), *b = a ? rr_realloc(out->type_ids, total * sizeof *b) : NULL;
        if (a) out->ids = a;
        if (b) out->type_ids = b;
        if (!a || !b) return rr_fail(RR_ERR_NOMEM, "out of memory building a prompt");
        out->cap = total;
    }
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        if (lens[i]) memcpy(out->ids + at, parts[i], lens[i] * sizeof *out->ids);
        at += lens[i];
    }
    memset(out->type_ids, 0, total * sizeof *out->type_ids);
    out->len = total;
    return RR_OK;
}

/* Makes room for n + 1 bytes of text in *buf (keeping its content). */
static rr_status grow_text(char **buf, size_t *cap, size_t n) {
    if (n + 1 <= *cap) return RR_OK;
    char *t = rr_realloc(*buf, n + 1);
    if (!t) return rr_fail(RR_ERR_NOMEM, "out of memory building a prompt");
    *buf = t;
    *cap = n + 1;
    return RR_OK;
}

/* text = a + b + c (+ d) in the prompt's text buffer */
static rr_status join(rr_prompt *p, const char *a, rr_text b, const char *c, rr_text d) {
    size_t n = strlen(a) + b.len + strlen(c) + d.len;
    if (n + 1 > p->text_cap) {
        char *t = rr_realloc(p->text, n + 1);
        if (!t) return rr_fail(RR_ERR_NOMEM, "out of memory building a prompt");
        p->text = t;
        p->text_cap = n + 1;
    }
    size_t at = 0;
    memcpy(p->text + at, a, strlen(a)), at += strlen(a);
    if (b.len) memcpy(p->text + at, b.text, b.len), at += b.len;
    memcpy(p->text + at, c, strlen(c)), at += strlen(c);
    if (d.len) memcpy(p->text + at, d.text, d.len), at += d.len;
    p->text[at] = 0;
    p->text_len = at;
    return RR_OK;
}

rr_status rr_prompt_init(rr_prompt *p, const rr_model *m, rr_text query, rr_text instruction, int max_length) {
    memset(p, 0, sizeof *p);
    p->tok = rr_model_tokenizer(m);
    if (!m->dec) return rr_fail(RR_ERR_INVALID, "rr_prompt_init: %s is not a decoder reranker", m->name);
    if (!p->tok)
        return rr_fail(RR_ERR_UNSUPPORTED, "%s: the model folder has no tokenizer.json, so text cannot be scored",
                       m->name);
    p->tmpl = m->dec->prompt;
    p->query = query;
    p->instruction = instruction;
    if (!instruction.text) {
        const char *d = rr_template_default_instruction(p->tmpl);
        p->instruction = (rr_text){d, d ? strlen(d) : 0};
    }
    p->has_instruction = p->instruction.text != NULL;
    if (max_length <= 0) max_length = PROMPT_MAX_LENGTH;
    rr_status s;
    if (p->tmpl == RR_TEMPLATE_QWEN3_RERANKER) {
        if ((s = encode_str(p->tok, QWEN3_PREFIX, &p->prefix)) || (s = encode_str(p->tok, QWEN3_SUFFIX, &p->suffix)))
            return s;
        p->max_length = RR_MIN(max_length, m->cfg.max_length);
        p->room = p->max_length - (int)(p->prefix.len + p->suffix.len);
        if (p->room < 1)
            return rr_fail(RR_ERR_RANGE, "max_length %d leaves no room for the prompt's body", p->max_length);
        /* the body's head is the same for every document: kept as text, tokenized with each document
         * since the reference tokenizes the body as one string */
        if ((s = join(p, "<Instruct>: ", p->instruction, "\n<Query>: ", query))) return s;
        /* the ids before the document's own: the head and its marker, without the space after it */
        if ((s = grow_text(&p->text, &p->text_cap, p->text_len + sizeof QWEN3_MARK - 1))) return s;
        memcpy(p->text + p->text_len, QWEN3_MARK, sizeof QWEN3_MARK);
        s = encode(p->tok, p->text, p->text_len + sizeof QWEN3_MARK - 1, &p->dhead);
        p->text[p->text_len] = 0;
        return s;
    }
    /* mxbai-rerank-v2 */
    if ((s = encode_str(p->tok, MXBAI_PREFIX, &p->prefix)) || (s = encode_str(p->tok, MXBAI_SUFFIX, &p->suffix)) ||
        (s = encode_str(p->tok, MXBAI_TASK, &p->task)) || (s = encode_str(p->tok, "\n", &p->sep)))
        return s;
    int fixed = (int)(p->prefix.len + p->suffix.len + p->task.len + p->sep.len);
    p->max_length = RR_MIN(max_length, RR_MIN(m->cfg.max_positions, m->cfg.max_length) - fixed);
    if (p->max_length < 2) return rr_fail(RR_ERR_RANGE, "max_length %d leaves no room for the query", max_length);
    if (p->has_instruction) s = join(p, "instruction: ", p->instruction, "\nquery: ", query);
    else s = join(p, "query: ", query, "", (rr_text){NULL, 0});
    if (!s) s = encode(p->tok, p->text, p->text_len, &p->q);
    if (s) return s;
    size_t qmax = (size_t)(3 * p->max_length / 4);
    if (p->q.len > qmax) p->q.len = qmax;
    p->fixed = fixed;
    p->max_positions = m->cfg.max_positions;
    return encode_str(p->tok, MXBAI_MARK, &p->dhead);
}

rr_status rr_prompt_set_windows(rr_prompt *p, int max_query_length) {
    size_t mq = (size_t)RR_MAX(max_query_length, 1);
    rr_status s;
    if (p->tmpl == RR_TEMPLATE_QWEN3_RERANKER) {
        if (p->dhead.len <= mq) {
            const int32_t *parts[1] = {p->dhead.ids};
            size_t lens[1] = {p->dhead.len};
            s = concat(&p->qhead, parts, lens, 1);
        } else {
            /* the instruction and query cut to what leaves room for the marker, then the marker on its
             * own (the marker's first ids may merge with the query's last characters in dhead) */
            rr_encoding mark = {0};
            s = encode(p->tok, p->text, p->text_len, &p->tmp);
            if (!s) s = encode_str(p->tok, QWEN3_MARK, &mark);
            if (!s) {
                size_t keep = mq > mark.len ? mq - mark.len : 0;
                const int32_t *parts[2] = {p->tmp.ids, mark.ids};
                size_t lens[2] = {RR_MIN(keep, p->tmp.len), mark.len};
                s = concat(&p->qhead, parts, lens, 2);
            }
            rr_encoding_free(&mark);
        }
        if (s) return s;
        p->doc_room = p->room - (int)p->qhead.len;
    } else {
        p->qw = RR_MIN(p->q.len, mq);
        p->doc_room = p->max_length - (int)(p->qw + p->sep.len + p->dhead.len);
    }
    if (p->doc_room < 1)
        return rr_fail(RR_ERR_RANGE, "max_length %d leaves no room for document tokens in the prompt", p->max_length);
    p->windows = 1;
    return RR_OK;
}

/* body = dhead + ids(" " + doc) when tokenizing the piece whole did not keep dhead's ids in front
 * (no Qwen tokenizer merges across the marker's end, but another tokenizer.json might) */
static rr_status split_fallback(rr_prompt *p, const char *sp_doc, size_t n) {
    rr_status s = encode(p->tok, sp_doc, n, &p->tmp);
    if (s) return s;
    const int32_t *parts[2] = {p->dhead.ids, p->tmp.ids};
    size_t lens[2] = {p->dhead.len, p->tmp.len};
    return concat(&p->body, parts, lens, 2);
}

static int starts_with(const rr_encoding *e, const rr_encoding *head) {
    return e->len >= head->len && (!head->len || !memcmp(e->ids, head->ids, head->len * sizeof *e->ids));
}

rr_status rr_prompt_tokenize_doc(rr_prompt *p, rr_text doc) {
    rr_status s;
    if (p->tmpl == RR_TEMPLATE_QWEN3_RERANKER) {
        /* head + "\n<Document>: " + doc, appended in place; the head stays for the next document */
        static const char mid[] = QWEN3_MARK " ";
        size_t head = p->text_len, n = head + sizeof mid - 1 + doc.len;
        if ((s = grow_text(&p->text, &p->text_cap, n))) return s;
        memcpy(p->text + head, mid, sizeof mid - 1);
        if (doc.len) memcpy(p->text + head + sizeof mid - 1, doc.text, doc.len);
        s = encode(p->tok, p->text, n, &p->body);
        if (!s && !starts_with(&p->body, &p->dhead))
            s = split_fallback(p, p->text + head + sizeof mid - 2, doc.len + 1);
        p->text[head] = 0;
    } else {
        /* "document: {doc}" is tokenized on its own, in a second buffer after the query text */
        size_t dn = sizeof MXBAI_MARK + doc.len;
        if ((s = grow_text(&p->doc_text, &p->doc_cap, dn))) return s;
        memcpy(p->doc_text, MXBAI_MARK " ", sizeof MXBAI_MARK);
        if (doc.len) memcpy(p->doc_text + sizeof MXBAI_MARK, doc.text, doc.len);
        s = encode(p->tok, p->doc_text, dn, &p->body);
        if (!s && !starts_with(&p->body, &p->dhead))
            s = split_fallback(p, p->doc_text + sizeof MXBAI_MARK - 1, doc.len + 1);
    }
    p->doc_off = p->dhead.len;
    return s;
}

rr_status rr_prompt_build(rr_prompt *p, size_t from, size_t n, rr_encoding *out) {
    size_t L = p->body.len - p->doc_off;
    if (from > L) from = L;
    if (n > L - from) n = L - from;
    const int32_t *d = p->body.ids + p->doc_off + from;
    if (p->windows) {
        n = RR_MIN(n, (size_t)p->doc_room);
        if (p->tmpl == RR_TEMPLATE_QWEN3_RERANKER) {
            const int32_t *parts[4] = {p->prefix.ids, p->qhead.ids, d, p->suffix.ids};
            size_t lens[4] = {p->prefix.len, p->qhead.len, n, p->suffix.len};
            return concat(out, parts, lens, 4);
        }
        const int32_t *parts[8] = {p->prefix.ids, p->q.ids, p->sep.ids, p->dhead.ids, d,
                                   p->sep.ids,    p->task.ids, p->suffix.ids};
        size_t lens[8] = {p->prefix.len, p->qw, p->sep.len, p->dhead.len, n, p->sep.len, p->task.len, p->suffix.len};
        return concat(out, parts, lens, 8);
    }
    /* the reference: the piece (what precedes the document, then its first n ids) cut as a whole */
    size_t piece = p->doc_off + n;
    if (p->tmpl == RR_TEMPLATE_QWEN3_RERANKER) {
        size_t body = RR_MIN(piece, (size_t)p->room);
        const int32_t *parts[3] = {p->prefix.ids, p->body.ids, p->suffix.ids};
        size_t lens[3] = {p->prefix.len, body, p->suffix.len};
        return concat(out, parts, lens, 3);
    }
    /* the document's own cap, then (q, "\n" + doc) cut in its second part only, to max_length */
    long dcap = RR_MIN((long)p->max_length, (long)p->max_positions - (long)p->q.len - p->fixed);
    if (dcap < 0) dcap = 0;
    if (piece > (size_t)dcap) piece = (size_t)dcap;
    size_t second = p->sep.len + piece, room = (size_t)p->max_length - p->q.len;
    if (second > room) second = room;
    size_t dlen = second > p->sep.len ? second - p->sep.len : 0, slen = RR_MIN(second, p->sep.len);
    const int32_t *parts[7] = {p->prefix.ids, p->q.ids, p->sep.ids, p->body.ids, p->sep.ids, p->task.ids, p->suffix.ids};
    size_t lens[7] = {p->prefix.len, p->q.len, slen, dlen, p->sep.len, p->task.len, p->suffix.len};
    return concat(out, parts, lens, 7);
}

rr_status rr_prompt_doc(rr_prompt *p, rr_text doc, rr_encoding *out) {
    rr_status s = rr_prompt_tokenize_doc(p, doc);
    return s ? s : rr_prompt_build(p, 0, p->body.len - p->doc_off, out);
}

void rr_prompt_free(rr_prompt *p) {
    if (!p) return;
    rr_encoding_free(&p->prefix);
    rr_encoding_free(&p->suffix);
    rr_encoding_free(&p->task);
    rr_encoding_free(&p->sep);
    rr_encoding_free(&p->q);
    rr_encoding_free(&p->body);
    rr_encoding_free(&p->dhead);
    rr_encoding_free(&p->tmp);
    rr_encoding_free(&p->qhead);
    rr_free(p->text);
    rr_free(p->doc_text);
    memset(p, 0, sizeof *p);
}

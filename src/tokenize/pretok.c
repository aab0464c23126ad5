/*
 * pretok.c -- pre-tokenizers: they cut each normalized segment into the pieces the model encodes
 * one by one. Metaspace (spaces -> U+2581, prepend scheme, split before each U+2581), the
 * whitespace and punctuation splitters of BERT and friends, Digits, Split (a String or Regex
 * pattern, pattern.c), and ByteLevel (bpe.c does its byte mapping). A Sequence is flattened at
 * load and applied stage by stage (tokenizer.c).
 *
 * Splitting follows HF's SplitDelimiterBehavior on a per-character predicate: every matching
 * character is a delimiter on its own; Removed drops it, Isolated makes it a piece, Contiguous
 * joins runs of delimiters, MergedWithPrevious / MergedWithNext glue it to the piece before /
 * after. Empty pieces are dropped, as HF drops them.
 */
#include "tokenize/tok.h"

#include <cjson/cJSON.h>
#include <utf8proc.h>

typedef bool (*cp_pred)(uint32_t cp);

static bool is_punct(uint32_t c) {
    if (c < 0x80)
        return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
    switch (utf8proc_category((utf8proc_int32_t)c)) {
    case UTF8PROC_CATEGORY_PC: case UTF8PROC_CATEGORY_PD: case UTF8PROC_CATEGORY_PS: case UTF8PROC_CATEGORY_PE:
    case UTF8PROC_CATEGORY_PI: case UTF8PROC_CATEGORY_PF: case UTF8PROC_CATEGORY_PO:
        return true;
    default:
        return false;
    }
}

static bool is_numeric(uint32_t c) {
    if (c < 0x80) return c >= '0' && c <= '9';
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return k == UTF8PROC_CATEGORY_ND || k == UTF8PROC_CATEGORY_NL || k == UTF8PROC_CATEGORY_NO;
}

/* Appends piece [b, e) of `s` (a span of `in`) to the output; at0 holds for a piece that starts
 * where an at0 span starts. */
static void emit(const char *in, const rr_tok_span *sp, size_t b, size_t e, rr_buf *out, rr_tok_spans *outs) {
    if (e <= b) return;
    rr_tok_spans_push(outs, out->len, e - b, sp->at0 && b == 0);
    rr_buf_append(out, in + sp->off + b, e - b);
}

static void split_pred(const char *in, const rr_tok_span *sp, cp_pred pred, rr_tok_split_behavior bh, rr_buf *out,
                       rr_tok_spans *outs) {
    const uint8_t *s = (const uint8_t *)in + sp->off;
    size_t n = sp->len, start = 0, i = 0;
    while (i < n) {
        size_t l;
        uint32_t cp = rr_tok_utf8_next(s + i, n - i, &l);
        if (!pred(cp)) {
            i += l;
            continue;
        }
        switch (bh) {
        case RR_TOK_SPLIT_REMOVED:
            emit(in, sp, start, i, out, outs);
            start = i + l;
            break;
        case RR_TOK_SPLIT_ISOLATED:
            emit(in, sp, start, i, out, outs);
            emit(in, sp, i, i + l, out, outs);
            start = i + l;
            break;
        case RR_TOK_SPLIT_CONTIGUOUS: {
            emit(in, sp, start, i, out, outs);
            size_t e = i + l;
            while (e < n) {
                size_t l2;
                if (!pred(rr_tok_utf8_next(s + e, n - e, &l2))) break;
                e += l2;
            }
            emit(in, sp, i, e, out, outs);
            start = e;
            l = e - i;
            break;
        }
        case RR_TOK_SPLIT_MERGED_PREV:
            emit(in, sp, start, i + l, out, outs);
            start = i + l;
            break;
        case RR_TOK_SPLIT_MERGED_NEXT:
            emit(in, sp, start, i, out, outs);
            start = i;
            break;
        }
        i += l;
    }
    emit(in, sp, start, n, out, outs);
}

static void metaspace(const rr_tok_pre *p, const char *in, const rr_tok_span *sp, rr_buf *out, rr_tok_spans *outs) {
    const char *s = in + sp->off;
    size_t n = sp->len, base = out->len;
    bool starts = n >= (size_t)p->replacement_len && !memcmp(s, p->replacement, (size_t)p->replacement_len);
    if (!starts && s[0] == ' ') starts = true; /* the space becomes the replacement below */
    if (!starts && (p->prepend == RR_TOK_PREPEND_ALWAYS || (p->prepend == RR_TOK_PREPEND_FIRST && sp->at0)))
        rr_buf_append(out, p->replacement, (size_t)p->replacement_len);
    for (size_t i = 0; i < n;) {
        const char *q = memchr(s + i, ' ', n - i);
        size_t e = q ? (size_t)(q - s) : n;
        rr_buf_append(out, s + i, e - i);
        if (!q) break;
        rr_buf_append(out, p->replacement, (size_t)p->replacement_len);
        i = e + 1;
    }
    if (out->oom) return;
    size_t end = out->len;
    if (!p->split) {
        rr_tok_spans_push(outs, base, end - base, sp->at0);
        return;
    }
    /* Cut before every replacement character (MergedWithNext). */
    size_t start = base;
    for (size_t i = base; i < end;) {
        if (i > start && i + (size_t)p->replacement_len <= end &&
            !memcmp(out->data + i, p->replacement, (size_t)p->replacement_len)) {
            rr_tok_spans_push(outs, start, i - start, sp->at0 && start == base);
            start = i;
        }
        size_t l;
        rr_tok_utf8_next((const uint8_t *)out->data + i, end - i, &l);
        i += l;
    }
    if (end > start) rr_tok_spans_push(outs, start, end - start, sp->at0 && start == base);
}

/* Whitespace pre-tokenizer: the regex \w+|[^\w\s]+ (pieces of word characters or of other
 * non-space characters). */
static void whitespace_re(const char *in, const rr_tok_span *sp, rr_buf *out, rr_tok_spans *outs) {
    const uint8_t *s = (const uint8_t *)in + sp->off;
    size_t n = sp->len, i = 0;
    while (i < n) {
        size_t l;
        uint32_t cp = rr_tok_utf8_next(s + i, n - i, &l);
        if (rr_tok_is_whitespace(cp)) {
            i += l;
            continue;
        }
        bool word = rr_tok_is_word(cp);
        size_t e = i + l;
        while (e < n) {
            uint32_t c2 = rr_tok_utf8_next(s + e, n - e, &l);
            if (rr_tok_is_word(c2) != word || (!word && rr_tok_is_whitespace(c2))) break;
            e += l;
        }
        emit(in, sp, i, e, out, outs);
        i = e;
    }
}

/* Split: the pattern's matches (or, inverted, the gaps between them) are the delimiters, and the
 * behavior decides what becomes of them, as HF's NormalizedString::split folds them: the text is
 * a list of (piece, is_match) covering it; Isolated keeps every piece, Removed drops the matches,
 * Contiguous joins neighbours with the same flag, MergedWithPrevious / MergedWithNext glue a match
 * onto the piece before / after it (a run of matches: only the first / last one). Empty pieces
 * (from empty matches) are dropped at the end. */
static rr_status split_pattern(const rr_tok_pre *p, const char *in, const rr_tok_span *sp, rr_buf *out, rr_tok_spans *outs) {
    const char *s = in + sp->off;
    size_t n = sp->len;
    if (!n) return RR_OK;
    rr_tok_spans m = {0};
    rr_status st = rr_tok_pattern_matches(&p->pattern, s, n, &m);
    /* (start, end, is_match) covering the text; then (start, end, remove) after the fold */
    typedef struct { size_t b, e; bool f; } piece;
    piece *v = st ? NULL : rr_malloc((2 * m.n + 1) * sizeof *v);
    if (!st && !v) st = rr_fail(RR_ERR_NOMEM, "tokenizer: out of memory");
    if (st) {
        rr_free(m.v);
        return st;
    }
    size_t nv = 0, prev = 0;
    for (size_t k = 0; k < m.n; k++) {
        size_t b = m.v[k].off, e = b + m.v[k].len;
        if (prev != b) v[nv++] = (piece){prev, b, p->invert};
        v[nv++] = (piece){b, e, !p->invert};
        prev = e;
    }
    if (prev != n) v[nv++] = (piece){prev, n, p->invert};
    rr_free(m.v);
    size_t na = 0;
    bool prev_match = false;
    switch (p->behavior) {
    case RR_TOK_SPLIT_ISOLATED:
        for (size_t k = 0; k < nv; k++) v[k].f = false;
        na = nv;
        break;
    case RR_TOK_SPLIT_REMOVED:
        na = nv;
        break;
    case RR_TOK_SPLIT_CONTIGUOUS:
    case RR_TOK_SPLIT_MERGED_PREV:
        for (size_t k = 0; k < nv; k++) {
            bool is_match = v[k].f;
            bool glue = p->behavior == RR_TOK_SPLIT_CONTIGUOUS ? is_match == prev_match : is_match && !prev_match;
            if (glue && na) v[na - 1].e = v[k].e;
            else v[na++] = (piece){v[k].b, v[k].e, false};
            prev_match = is_match;
        }
        break;
    case RR_TOK_SPLIT_MERGED_NEXT: /* the same fold from the right */
        na = nv;
        for (size_t k = nv; k-- > 0;) {
            bool is_match = v[k].f;
            if (is_match && !prev_match && na < nv) v[na].b = v[k].b;
            else v[--na] = (piece){v[k].b, v[k].e, false};
            prev_match = is_match;
        }
        memmove(v, v + na, (nv - na) * sizeof *v);
        na = nv - na;
        break;
    }
    for (size_t k = 0; k < na; k++)
        if (!v[k].f) emit(in, sp, v[k].b, v[k].e, out, outs);
    rr_free(v);
    return RR_OK;
}

void rr_tok_pre_free(rr_tok_pre *p) {
    if (p) rr_tok_pattern_free(&p->pattern);
}

rr_status rr_tok_pre_apply(const rr_tok_pre *p, const char *in, const rr_tok_spans *ins, rr_buf *out, rr_tok_spans *outs) {
    for (size_t k = 0; k < ins->n; k++) {
        const rr_tok_span *sp = &ins->v[k];
        switch (p->kind) {
        case RR_TOK_PRE_SPLIT: {
            rr_status st = split_pattern(p, in, sp, out, outs);
            if (st) return st;
            break;
        }
        case RR_TOK_PRE_METASPACE: metaspace(p, in, sp, out, outs); break;
        case RR_TOK_PRE_WHITESPACE_SPLIT: split_pred(in, sp, rr_tok_is_whitespace, RR_TOK_SPLIT_REMOVED, out, outs); break;
        case RR_TOK_PRE_WHITESPACE: whitespace_re(in, sp, out, outs); break;
        case RR_TOK_PRE_BERT: {
            rr_buf tmp = {0};
            rr_tok_spans ts = {0};
            split_pred(in, sp, rr_tok_is_whitespace, RR_TOK_SPLIT_REMOVED, &tmp, &ts);
            for (size_t j = 0; j < ts.n && !tmp.oom && !ts.oom; j++)
                split_pred(tmp.data, &ts.v[j], is_punct, RR_TOK_SPLIT_ISOLATED, out, outs);
            if (tmp.oom || ts.oom) out->oom = true;
            rr_buf_free(&tmp);
            rr_free(ts.v);
            break;
        }
        case RR_TOK_PRE_PUNCTUATION: split_pred(in, sp, is_punct, p->behavior, out, outs); break;
        case RR_TOK_PRE_DIGITS:
            split_pred(in, sp, is_numeric, p->individual_digits ? RR_TOK_SPLIT_ISOLATED : RR_TOK_SPLIT_CONTIGUOUS, out, outs);
            break;
        case RR_TOK_PRE_BYTELEVEL: rr_tok_bytelevel_pre(p, in, sp, out, outs); break;
        }
    }
    return RR_OK;
}

/* ------------------------------------------------------------------ parsing */

static bool get_bool(const cJSON *j, const char *key, bool dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : dflt;
}

static rr_status parse_behavior(const cJSON *j, rr_tok_split_behavior *out, const char *what) {
    const char *b = rr_json_get_str(j, "behavior");
    if (!b || !strcmp(b, "Isolated")) *out = RR_TOK_SPLIT_ISOLATED;
    else if (!strcmp(b, "Removed")) *out = RR_TOK_SPLIT_REMOVED;
    else if (!strcmp(b, "MergedWithPrevious")) *out = RR_TOK_SPLIT_MERGED_PREV;
    else if (!strcmp(b, "MergedWithNext")) *out = RR_TOK_SPLIT_MERGED_NEXT;
    else if (!strcmp(b, "Contiguous")) *out = RR_TOK_SPLIT_CONTIGUOUS;
    else return rr_fail(RR_ERR_UNSUPPORTED, "%s: pre_tokenizer field \"behavior\" = \"%s\" is not supported", what, b);
    return RR_OK;
}

static rr_status parse_one(const cJSON *j, rr_tok_pre *p, const char *what) {
    memset(p, 0, sizeof *p);
    const char *type = rr_json_get_str(j, "type");
    if (!type) return rr_fail(RR_ERR_FORMAT, "%s: pre_tokenizer without a \"type\" string", what);
    if (!strcmp(type, "Metaspace")) {
        p->kind = RR_TOK_PRE_METASPACE;
        const char *rep = rr_json_get_str(j, "replacement");
        if (!rep) rep = "\xE2\x96\x81";
        size_t l, n = strlen(rep);
        if (!n || rr_utf8_valid_prefix((const uint8_t *)rep, n) != n ||
            (rr_tok_utf8_next((const uint8_t *)rep, n, &l), l != n))
            return rr_fail(RR_ERR_FORMAT, "%s: Metaspace field \"replacement\" must be one character", what);
        memcpy(p->replacement, rep, n);
        p->replacement_len = (int)n;
        p->replacement_cp = rr_tok_utf8_next((const uint8_t *)rep, n, &l);
        const char *scheme = rr_json_get_str(j, "prepend_scheme");
        const cJSON *aps = cJSON_GetObjectItemCaseSensitive(j, "add_prefix_space");
        if (scheme) {
            if (!strcmp(scheme, "always")) p->prepend = RR_TOK_PREPEND_ALWAYS;
            else if (!strcmp(scheme, "first")) p->prepend = RR_TOK_PREPEND_FIRST;
            else if (!strcmp(scheme, "never")) p->prepend = RR_TOK_PREPEND_NEVER;
            else return rr_fail(RR_ERR_UNSUPPORTED, "%s: Metaspace field \"prepend_scheme\" = \"%s\" is not supported", what, scheme);
        } else if (cJSON_IsBool(aps)) {
            p->prepend = cJSON_IsTrue(aps) ? RR_TOK_PREPEND_ALWAYS : RR_TOK_PREPEND_NEVER;
        } else {
            p->prepend = RR_TOK_PREPEND_ALWAYS;
        }
        p->split = get_bool(j, "split", true);
        return RR_OK;
    }
    if (!strcmp(type, "WhitespaceSplit")) return p->kind = RR_TOK_PRE_WHITESPACE_SPLIT, RR_OK;
    if (!strcmp(type, "Whitespace")) return p->kind = RR_TOK_PRE_WHITESPACE, RR_OK;
    if (!strcmp(type, "BertPreTokenizer")) return p->kind = RR_TOK_PRE_BERT, RR_OK;
    if (!strcmp(type, "Punctuation")) {
        p->kind = RR_TOK_PRE_PUNCTUATION;
        return parse_behavior(j, &p->behavior, what);
    }
    if (!strcmp(type, "Digits")) {
        p->kind = RR_TOK_PRE_DIGITS;
        p->individual_digits = get_bool(j, "individual_digits", false);
        return RR_OK;
    }
    if (!strcmp(type, "Split")) {
        p->kind = RR_TOK_PRE_SPLIT;
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(j, "pattern");
        if (!cJSON_IsObject(pat)) return rr_fail(RR_ERR_FORMAT, "%s: Split pre_tokenizer needs an object field \"pattern\"", what);
        const cJSON *bh = cJSON_GetObjectItemCaseSensitive(j, "behavior");
        if (!cJSON_IsString(bh)) return rr_fail(RR_ERR_FORMAT, "%s: Split pre_tokenizer needs a string field \"behavior\"", what);
        rr_status st = parse_behavior(j, &p->behavior, what);
        if (st) return st;
        p->invert = get_bool(j, "invert", false);
        return rr_tok_pattern_parse(&p->pattern, pat, true, what);
    }
    if (!strcmp(type, "ByteLevel")) {
        p->kind = RR_TOK_PRE_BYTELEVEL;
        p->add_prefix_space = get_bool(j, "add_prefix_space", true);
        p->use_regex = get_bool(j, "use_regex", true);
        return RR_OK;
    }
    return rr_fail(RR_ERR_UNSUPPORTED, "%s: pre_tokenizer type \"%s\" is not supported", what, type);
}

static rr_status parse_rec(const cJSON *j, rr_tok_pre **list, int *n, int depth, const char *what) {
    if (depth > 16) return rr_fail(RR_ERR_FORMAT, "%s: pre_tokenizer Sequence nested too deeply", what);
    if (!cJSON_IsObject(j)) return rr_fail(RR_ERR_FORMAT, "%s: field \"pre_tokenizer\" must be an object or null", what);
    const char *type = rr_json_get_str(j, "type");
    if (type && !strcmp(type, "Sequence")) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "pretokenizers");
        if (!cJSON_IsArray(arr)) return rr_fail(RR_ERR_FORMAT, "%s: Sequence pre_tokenizer needs an array \"pretokenizers\"", what);
        const cJSON *e;
        cJSON_ArrayForEach(e, arr) {
            rr_status st = parse_rec(e, list, n, depth + 1, what);
            if (st) return st;
        }
        return RR_OK;
    }
    rr_tok_pre *nl = rr_realloc(*list, (size_t)(*n + 1) * sizeof **list);
    if (!nl) return rr_fail(RR_ERR_NOMEM, "%s: out of memory", what);
    *list = nl;
    (*n)++;
    return parse_one(j, &nl[*n - 1], what);
}

rr_status rr_tok_pre_parse(const cJSON *j, rr_tok_pre **list, int *n, const char *what) {
    *list = NULL;
    *n = 0;
    if (!j || cJSON_IsNull(j)) return RR_OK;
    return parse_rec(j, list, n, 0, what);
}

/*
 * added.c -- added and special tokens (<s>, </s>, <mask>, [CLS]...): found in the text before the
 * model sees it, as HF's AddedVocabulary does. Tokens with normalized=false are matched in the raw
 * text, the others in each normalized segment against their normalized content. Matching is
 * leftmost-longest and non-overlapping (HF uses Aho-Corasick with MatchKind::LeftmostLongest);
 * then per match: single_word discards it unless it stands between non-word characters, lstrip
 * widens it over the whitespace before it (never into the previous match), rstrip over the
 * whitespace after it. Added-token lists are short (5 to a few hundred), so candidates are
 * bucketed by first byte and tried longest first.
 */
#include "tokenize/tok.h"

#include <stdlib.h>

static int cmp_tok(const void *a, const void *b) {
    const rr_tok_added *x = *(rr_tok_added *const *)a, *y = *(rr_tok_added *const *)b;
    uint8_t fx = (uint8_t)x->pat[0], fy = (uint8_t)y->pat[0];
    if (fx != fy) return fx < fy ? -1 : 1;
    if (x->pat_len != y->pat_len) return x->pat_len > y->pat_len ? -1 : 1;
    return x < y ? -1 : x > y; /* the earlier token wins a tie on identical patterns */
}

rr_status rr_tok_matcher_build(rr_tok_matcher *mt, rr_tok_added *all, int n, bool normalized) {
    memset(mt, 0, sizeof *mt);
    mt->tok = rr_malloc(((size_t)n + 1) * sizeof *mt->tok);
    if (!mt->tok) return rr_fail(RR_ERR_NOMEM, "tokenizer: out of memory for added tokens");
    for (int i = 0; i < n; i++)
        if (all[i].normalized == normalized && all[i].pat_len) mt->tok[mt->n++] = &all[i];
    qsort(mt->tok, (size_t)mt->n, sizeof *mt->tok, cmp_tok);
    int k = 0;
    for (int b = 0; b <= 256; b++) {
        while (k < mt->n && (uint8_t)mt->tok[k]->pat[0] < b) k++;
        mt->first[b] = k;
    }
    mt->first[256] = mt->n;
    return RR_OK;
}

void rr_tok_matcher_free(rr_tok_matcher *mt) {
    if (!mt) return;
    rr_free(mt->tok);
    memset(mt, 0, sizeof *mt);
}

static uint32_t last_cp(const uint8_t *s, size_t n, size_t *start) {
    size_t p = n - 1, l;
    while (p > 0 && (s[p] & 0xC0) == 0x80) p--;
    *start = p;
    return rr_tok_utf8_next(s + p, n - p, &l);
}

void rr_tok_match_split(const rr_tok_matcher *mt, const char *str, size_t n, size_t base, rr_tok_segs *out) {
    const uint8_t *s = (const uint8_t *)str;
    size_t start_offset = 0, pos = 0;
    while (mt->n && pos < n) {
        /* leftmost-longest match at or after pos */
        size_t ms = 0, me = 0;
        const rr_tok_added *hit = NULL;
        for (size_t i = pos; i < n && !hit; i++) {
            int a = mt->first[s[i]], b = mt->first[s[i] + 1];
            for (int k = a; k < b; k++) {
                const rr_tok_added *t = mt->tok[k];
                if (t->pat_len <= n - i && !memcmp(s + i, t->pat, t->pat_len)) {
                    hit = t, ms = i, me = i + t->pat_len;
                    break;
                }
            }
        }
        if (!hit) break;
        pos = me;
        size_t start = ms, stop = me, l, p;
        if (hit->single_word) {
            bool start_space = start == 0 || !rr_tok_is_word(last_cp(s, start, &p));
            bool stop_space = stop == n || !rr_tok_is_word(rr_tok_utf8_next(s + stop, n - stop, &l));
            if (!start_space || !stop_space) continue;
        }
        if (hit->lstrip) {
            size_t ns = start;
            while (ns > 0 && rr_tok_is_whitespace(last_cp(s, ns, &p))) ns = p;
            start = RR_MAX(ns, start_offset);
        }
        if (hit->rstrip)
            while (stop < n && rr_tok_is_whitespace(rr_tok_utf8_next(s + stop, n - stop, &l))) stop += l;
        if (start_offset < start) rr_tok_segs_push(out, base + start_offset, start - start_offset, -1);
        rr_tok_segs_push(out, base + start, stop - start, hit->id);
        start_offset = stop;
    }
    if (start_offset < n) rr_tok_segs_push(out, base + start_offset, n - start_offset, -1);
}

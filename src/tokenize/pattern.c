/*
 * pattern.c -- the patterns of Replace normalizers (and Split-style rules): either a literal string
 * or a small regex subset, the forms HF converters emit (" {2,}", "\s+", "[\n\t]"...). A regex is a
 * sequence of atoms (literal, '.', \s, \d, \w, [class]) each with an optional greedy quantifier;
 * atoms are matched left to right without backtracking, which is exact for the emitted patterns
 * (no atom can take what the next one needs).
 *
 * Any other regex (groups, alternation, lookahead, \p{..} classes: the Split patterns of GPT-2,
 * Llama 3 and Qwen tokenizers) is compiled with Oniguruma, the engine HF tokenizers itself runs
 * (through the onig crate: UTF-8, no options, Oniguruma syntax), so matches are the reference's
 * by construction rather than by a second implementation of its Unicode tables and backtracking.
 * rr_tok_pattern_matches then enumerates matches the way that crate's find_iter does, empty
 * matches included. Compiling is serialized (library initialization is global); a compiled
 * regex is only read by searches, so one pattern serves every thread.
 */
#include "tokenize/tok.h"

#include <cjson/cJSON.h>
#include <oniguruma.h>
#include <pthread.h>
#include <stdlib.h>
#include <utf8proc.h>

static bool is_digit(uint32_t c) {
    if (c < 0x80) return c >= '0' && c <= '9';
    return utf8proc_category((utf8proc_int32_t)c) == UTF8PROC_CATEGORY_ND;
}

static bool atom_match(const rr_tok_re_atom *a, uint32_t c) {
    switch (a->kind) {
    case 0: return c == a->cp;
    case 1: return c != '\n';
    case 2: return rr_tok_is_whitespace(c);
    case 3: return is_digit(c);
    case 4: return rr_tok_is_word(c);
    default: {
        bool in = false;
        for (int i = 0; i < a->n_ranges && !in; i++) {
            uint32_t lo = a->ranges[2 * i], hi = a->ranges[2 * i + 1];
            if (lo == 0xFFFFFFF2u) in = rr_tok_is_whitespace(c);
            else if (lo == 0xFFFFFFF3u) in = is_digit(c);
            else if (lo == 0xFFFFFFF4u) in = rr_tok_is_word(c);
            else in = c >= lo && c <= hi;
        }
        return a->kind == 5 ? in : !in;
    }
    }
}

/* The subset matcher equals Oniguruma (which the reference runs) only where no backtracking and
 * no Unicode table can differ: \w and \d (whose tables differ between engines) are left to
 * Oniguruma, as are patterns that can match the empty string (Oniguruma reports empty matches,
 * the subset skips them) and patterns where a variable-length atom is followed by an atom that
 * could take one of its characters (giving some back could then make a match). Two atoms are
 * known disjoint only when one is a literal the other rejects. */
static bool subset_is_exact(const rr_tok_pattern *p) {
    bool all_optional = true;
    for (int k = 0; k < p->n_atoms; k++) {
        const rr_tok_re_atom *a = &p->atoms[k];
        if (a->min > 0) all_optional = false;
        if (a->kind == 3 || a->kind == 4) return false;
        for (int i = 0; (a->kind == 5 || a->kind == 6) && i < a->n_ranges; i++)
            if (a->ranges[2 * i] == 0xFFFFFFF3u || a->ranges[2 * i] == 0xFFFFFFF4u) return false;
        if (a->min == a->max) continue;
        for (int j = k + 1; j < p->n_atoms; j++) {
            const rr_tok_re_atom *b = &p->atoms[j];
            bool disjoint = (b->kind == 0 && !atom_match(a, b->cp)) || (a->kind == 0 && !atom_match(b, a->cp));
            if (!disjoint) return false;
        }
    }
    return !all_optional;
}

/* Decodes one escape after '\' at p; returns the code point or a class marker (0xFFFFFFF2..4). */
static int parse_escape(const char **pp, const char *end, uint32_t *out) {
    const char *p = *pp;
    if (p >= end) return -1;
    char c = *p++;
    *pp = p;
    switch (c) {
    case 's': *out = 0xFFFFFFF2u; return 0;
    case 'd': *out = 0xFFFFFFF3u; return 0;
    case 'w': *out = 0xFFFFFFF4u; return 0;
    case 'n': *out = '\n'; return 0;
    case 't': *out = '\t'; return 0;
    case 'r': *out = '\r'; return 0;
    case 'f': *out = '\f'; return 0;
    case 'v': *out = '\v'; return 0;
    default:
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return -1;
        if ((unsigned char)c >= 0x80) return -1;
        *out = (uint32_t)c;
        return 0;
    }
}

static rr_status parse_regex(rr_tok_pattern *p, const char *re, const char *what) {
    size_t n = strlen(re);
    const char *s = re, *end = re + n;
    p->atoms = rr_calloc(n + 1, sizeof *p->atoms);
    if (!p->atoms) return rr_fail(RR_ERR_NOMEM, "%s: out of memory", what);
    if (rr_utf8_valid_prefix((const uint8_t *)re, n) != n) goto bad;
    while (s < end) {
        rr_tok_re_atom *a = &p->atoms[p->n_atoms];
        size_t l;
        uint32_t c = rr_tok_utf8_next((const uint8_t *)s, (size_t)(end - s), &l);
        a->min = a->max = 1;
        if (c == '(' || c == ')' || c == '|' || c == '^' || c == '$' || c == '*' || c == '+' || c == '?' || c == '{')
            goto bad;
        if (c == '.') {
            a->kind = 1;
            s++;
        } else if (c == '\\') {
            s++;
            uint32_t e;
            if (parse_escape(&s, end, &e)) goto bad;
            if (e >= 0xFFFFFFF2u) a->kind = (uint8_t)(e - 0xFFFFFFF0u);
            else a->kind = 0, a->cp = e;
        } else if (c == '[') {
            s++;
            a->kind = 5;
            if (s < end && *s == '^') a->kind = 6, s++;
            a->ranges = rr_malloc(2 * sizeof(uint32_t) * (size_t)(end - s + 1));
            if (!a->ranges) return rr_fail(RR_ERR_NOMEM, "%s: out of memory", what);
            bool first = true;
            while (s < end && (*s != ']' || first)) {
                first = false;
                uint32_t lo, hi;
                if (*s == '\\') {
                    s++;
                    if (parse_escape(&s, end, &lo)) goto bad;
                } else if (*s == '[') {
                    goto bad;
                } else {
                    lo = rr_tok_utf8_next((const uint8_t *)s, (size_t)(end - s), &l);
                    s += l;
                }
                hi = lo;
                if (lo < 0xFFFFFFF2u && s + 1 < end && *s == '-' && s[1] != ']') {
                    s++;
                    if (*s == '\\') {
                        s++;
                        if (parse_escape(&s, end, &hi) || hi >= 0xFFFFFFF2u) goto bad;
                    } else {
                        hi = rr_tok_utf8_next((const uint8_t *)s, (size_t)(end - s), &l);
                        s += l;
                    }
                    if (hi < lo) goto bad;
                }
                a->ranges[2 * a->n_ranges] = lo;
                a->ranges[2 * a->n_ranges + 1] = hi;
                a->n_ranges++;
            }
            if (s >= end) goto bad;
            s++;
        } else {
            a->kind = 0;
            a->cp = c;
            s += l;
        }
        /* quantifier */
        if (s < end && (*s == '*' || *s == '+' || *s == '?')) {
            a->min = *s == '+' ? 1 : 0;
            a->max = *s == '?' ? 1 : -1;
            s++;
        } else if (s < end && *s == '{') {
            char *e;
            long lo = strtol(s + 1, &e, 10), hi;
            if (e == s + 1 || lo < 0 || lo > 100000) goto bad;
            if (*e == '}') hi = lo;
            else if (*e == ',' && e[1] == '}') hi = -1, e++;
            else if (*e == ',') {
                char *e2;
                hi = strtol(e + 1, &e2, 10);
                if (e2 == e + 1 || hi < lo || hi > 100000 || *e2 != '}') goto bad;
                e = e2;
            } else goto bad;
            if (*e != '}') goto bad;
            a->min = (int)lo;
            a->max = (int)hi;
            s = e + 1;
        }
        if (s < end && (*s == '?' || *s == '+' || *s == '*' || *s == '{')) goto bad; /* lazy / possessive */
        p->n_atoms++;
    }
    if (p->n_atoms == 0) goto bad;
    if (!subset_is_exact(p)) goto bad;
    return RR_OK;
bad:
    return rr_fail(RR_ERR_UNSUPPORTED, "%s: regex pattern \"%s\" is outside the supported subset", what, re);
}

static pthread_once_t g_onig_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t g_onig_lock = PTHREAD_MUTEX_INITIALIZER;

static void onig_setup(void) {
    OnigEncoding enc = ONIG_ENCODING_UTF8;
    onig_initialize(&enc, 1);
}

static rr_status compile_onig(rr_tok_pattern *p, const char *re, const char *what) {
    size_t n = strlen(re);
    if (rr_utf8_valid_prefix((const uint8_t *)re, n) != n)
        return rr_fail(RR_ERR_FORMAT, "%s: regex pattern is not valid UTF-8", what);
    pthread_once(&g_onig_once, onig_setup);
    OnigErrorInfo einfo;
    regex_t *reg = NULL;
    pthread_mutex_lock(&g_onig_lock);
    int r = onig_new(&reg, (const OnigUChar *)re, (const OnigUChar *)re + n, ONIG_OPTION_NONE, ONIG_ENCODING_UTF8,
                     ONIG_SYNTAX_ONIGURUMA, &einfo);
    pthread_mutex_unlock(&g_onig_lock);
    if (r != ONIG_NORMAL) {
        OnigUChar msg[ONIG_MAX_ERROR_MESSAGE_LEN];
        onig_error_code_to_str(msg, r, &einfo);
        if (r == ONIGERR_MEMORY) return rr_fail(RR_ERR_NOMEM, "%s: out of memory compiling regex \"%s\"", what, re);
        return rr_fail(RR_ERR_FORMAT, "%s: regex pattern \"%s\" does not compile: %s", what, re, (const char *)msg);
    }
    p->is_regex = true;
    p->onig = reg;
    return RR_OK;
}

rr_status rr_tok_pattern_parse(rr_tok_pattern *p, const cJSON *pattern, bool full_regex, const char *what) {
    memset(p, 0, sizeof *p);
    const cJSON *str = cJSON_GetObjectItemCaseSensitive(pattern, "String");
    const cJSON *re = cJSON_GetObjectItemCaseSensitive(pattern, "Regex");
    if (cJSON_IsString(str)) {
        p->literal_len = strlen(str->valuestring);
        if (!p->literal_len) return rr_fail(RR_ERR_FORMAT, "%s: field \"pattern\" is an empty string", what);
        p->literal = rr_strdup(str->valuestring);
        return p->literal ? RR_OK : rr_fail(RR_ERR_NOMEM, "%s: out of memory", what);
    }
    if (cJSON_IsString(re)) {
        if (full_regex) return compile_onig(p, re->valuestring, what);
        p->is_regex = true;
        rr_status st = parse_regex(p, re->valuestring, what);
        if (st != RR_ERR_UNSUPPORTED) return st;
        /* outside the subset: the full engine */
        rr_tok_pattern_free(p);
        rr_errmsg_clear();
        return compile_onig(p, re->valuestring, what);
    }
    return rr_fail(RR_ERR_FORMAT, "%s: field \"pattern\" must be {\"String\": ...} or {\"Regex\": ...}", what);
}

void rr_tok_pattern_free(rr_tok_pattern *p) {
    if (!p) return;
    rr_free(p->literal);
    for (int i = 0; p->atoms && i < p->n_atoms + 1; i++) rr_free(p->atoms[i].ranges);
    rr_free(p->atoms);
    if (p->onig) onig_free((regex_t *)p->onig);
    memset(p, 0, sizeof *p);
}

/* Matches the atoms at byte i; returns the end or (size_t)-1. */
static size_t match_at(const rr_tok_pattern *p, const uint8_t *s, size_t n, size_t i) {
    for (int k = 0; k < p->n_atoms; k++) {
        const rr_tok_re_atom *a = &p->atoms[k];
        int count = 0;
        while (i < n && (a->max < 0 || count < a->max)) {
            size_t l;
            uint32_t c = rr_tok_utf8_next(s + i, n - i, &l);
            if (!atom_match(a, c)) break;
            i += l;
            count++;
        }
        if (count < a->min) return (size_t)-1;
    }
    return i;
}

int rr_tok_pattern_find(const rr_tok_pattern *p, const char *s, size_t n, size_t from, size_t *ms, size_t *me) {
    if (!p->is_regex) {
        if (p->literal_len > n) return 0;
        for (size_t i = from; i + p->literal_len <= n; i++) {
            if (s[i] == p->literal[0] && !memcmp(s + i, p->literal, p->literal_len)) {
                *ms = i, *me = i + p->literal_len;
                return 1;
            }
        }
        return 0;
    }
    const uint8_t *u = (const uint8_t *)s;
    /* Fast skip for a leading literal atom that must occur at least once. */
    const rr_tok_re_atom *a0 = &p->atoms[0];
    bool lit0 = a0->kind == 0 && a0->cp < 0x80 && a0->min > 0;
    for (size_t i = from; i < n;) {
        if (lit0) {
            const void *q = memchr(s + i, (int)a0->cp, n - i);
            if (!q) return 0;
            i = (size_t)((const char *)q - s);
        }
        size_t e = match_at(p, u, n, i);
        /* An empty match is not a replacement site for the converters' patterns; skip it. */
        if (e != (size_t)-1 && e > i) {
            *ms = i, *me = e;
            return 1;
        }
        size_t l;
        rr_tok_utf8_next(u + i, n - i, &l);
        i += l;
    }
    return 0;
}

/* The matches of an Oniguruma regex, enumerated as the onig crate's find_iter does: each search
 * starts where the last match ended; an empty match also steps one character past itself, and is
 * dropped when it comes right after a non-empty match (the flag is reset either way). */
static rr_status onig_matches(const rr_tok_pattern *p, const char *s, size_t n, rr_tok_spans *out) {
    const OnigUChar *str = (const OnigUChar *)s, *end = str + n;
    OnigRegion *region = onig_region_new();
    if (!region) return rr_fail(RR_ERR_NOMEM, "tokenizer: out of memory");
    size_t last_end = 0;
    bool skip_next_empty = false;
    rr_status st = RR_OK;
    while (last_end <= n) {
        onig_region_clear(region);
        int r = onig_search((regex_t *)p->onig, str, end, str + last_end, end, region, ONIG_OPTION_NONE);
        if (r == ONIG_MISMATCH) break;
        if (r < 0) {
            OnigUChar msg[ONIG_MAX_ERROR_MESSAGE_LEN];
            onig_error_code_to_str(msg, r);
            st = r == ONIGERR_MEMORY ? rr_fail(RR_ERR_NOMEM, "tokenizer: out of memory in regex search")
                                     : rr_fail(RR_ERR_RANGE, "tokenizer: regex search failed: %s", (const char *)msg);
            break;
        }
        size_t ms = (size_t)region->beg[0], me = (size_t)region->end[0];
        last_end = me;
        if (ms == me) {
            size_t l = 1;
            if (me < n) rr_tok_utf8_next(str + me, n - me, &l);
            last_end += l;
            if (skip_next_empty) {
                skip_next_empty = false;
                continue;
            }
        } else {
            skip_next_empty = true;
        }
        rr_tok_spans_push(out, ms, me - ms, false);
    }
    onig_region_free(region, 1);
    if (!st && out->oom) st = rr_fail(RR_ERR_NOMEM, "tokenizer: out of memory");
    return st;
}

rr_status rr_tok_pattern_matches(const rr_tok_pattern *p, const char *s, size_t n, rr_tok_spans *out) {
    if (p->onig) return onig_matches(p, s, n, out);
    size_t i = 0, ms, me;
    while (i <= n && rr_tok_pattern_find(p, s, n, i, &ms, &me)) {
        rr_tok_spans_push(out, ms, me - ms, false);
        i = me;
    }
    return out->oom ? rr_fail(RR_ERR_NOMEM, "tokenizer: out of memory") : RR_OK;
}

/*
 * pattern.c -- the patterns of Replace normalizers (and Split-style rules): either a literal string
 * or a small regex subset, the forms HF converters emit (" {2,}", "\s+", "[\n\t]"...). A regex is a
 * sequence of atoms (literal, '.', \s, \d, \w, [class]) each with an optional greedy quantifier;
 * atoms are matched left to right without backtracking, which is exact for the emitted patterns
 * (no atom can take what the next one needs). Anything else (groups, alternation, anchors, lazy
 * quantifiers) is rejected at load with RR_ERR_UNSUPPORTED rather than matched approximately.
 */
#include "tokenize/tok.h"

#include <cjson/cJSON.h>
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
    return RR_OK;
bad:
    return rr_fail(RR_ERR_UNSUPPORTED, "%s: regex pattern \"%s\" is outside the supported subset", what, re);
}

rr_status rr_tok_pattern_parse(rr_tok_pattern *p, const cJSON *pattern, const char *what) {
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
        p->is_regex = true;
        return parse_regex(p, re->valuestring, what);
    }
    return rr_fail(RR_ERR_FORMAT, "%s: field \"pattern\" must be {\"String\": ...} or {\"Regex\": ...}", what);
}

void rr_tok_pattern_free(rr_tok_pattern *p) {
    if (!p) return;
    rr_free(p->literal);
    for (int i = 0; p->atoms && i < p->n_atoms + 1; i++) rr_free(p->atoms[i].ranges);
    rr_free(p->atoms);
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

/*
 * jsonl.c -- reads string fields of one JSON-lines object exactly, NUL characters included
 * ("\u0000" is valid JSON and real text carries it; cJSON stops strings at NUL). The line is
 * first validated by cJSON; this scanner then walks the top-level object and decodes the wanted
 * string values (escapes, surrogate pairs; a lone surrogate becomes U+FFFD). cli_json_line is the
 * strict whole-line check every JSONL command applies first (strict JSON, UTF-8, no raw control bytes).
 */
#include "cli/cli.h"
#include "rerank_util.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct scan {
    const char *p, *end;
} scan;

static void ws(scan *s) {
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) s->p++;
}

static int hex4(scan *s, unsigned *out) {
    if (s->end - s->p < 4) return -1;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s->p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return -1;
    }
    s->p += 4;
    *out = v;
    return 0;
}

static void put_utf8(rr_buf *b, unsigned cp) {
    char u[4];
    int n;
    if (cp < 0x80) u[0] = (char)cp, n = 1;
    else if (cp < 0x800) u[0] = (char)(0xC0 | cp >> 6), u[1] = (char)(0x80 | (cp & 0x3F)), n = 2;
    else if (cp < 0x10000)
        u[0] = (char)(0xE0 | cp >> 12), u[1] = (char)(0x80 | ((cp >> 6) & 0x3F)), u[2] = (char)(0x80 | (cp & 0x3F)), n = 3;
    else
        u[0] = (char)(0xF0 | cp >> 18), u[1] = (char)(0x80 | ((cp >> 12) & 0x3F)), u[2] = (char)(0x80 | ((cp >> 6) & 0x3F)),
        u[3] = (char)(0x80 | (cp & 0x3F)), n = 4;
    rr_buf_append(b, u, (size_t)n);
}

/* Decodes a string at s->p (which is '"') into out when out is not NULL. */
static int str(scan *s, rr_buf *out) {
    if (s->p >= s->end || *s->p != '"') return -1;
    s->p++;
    while (s->p < s->end && *s->p != '"') {
        const char *run = s->p;
        while (s->p < s->end && *s->p != '"' && *s->p != '\\') s->p++;
        if (out) rr_buf_append(out, run, (size_t)(s->p - run));
        if (s->p >= s->end || *s->p == '"') break;
        s->p++; /* backslash */
        if (s->p >= s->end) return -1;
        char c = *s->p++;
        unsigned cp;
        switch (c) {
        case 'n': cp = '\n'; break;
        case 't': cp = '\t'; break;
        case 'r': cp = '\r'; break;
        case 'b': cp = '\b'; break;
        case 'f': cp = '\f'; break;
        case 'u':
            if (hex4(s, &cp)) return -1;
            if (cp >= 0xD800 && cp < 0xDC00) {
                unsigned lo;
                if (s->end - s->p >= 6 && s->p[0] == '\\' && s->p[1] == 'u') {
                    scan t = {s->p + 2, s->end};
                    if (!hex4(&t, &lo) && lo >= 0xDC00 && lo < 0xE000) {
                        s->p = t.p;
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        break;
                    }
                }
                cp = 0xFFFD;
            } else if (cp >= 0xDC00 && cp < 0xE000) {
                cp = 0xFFFD;
            }
            break;
        default: cp = (unsigned char)c; break;
        }
        if (out) put_utf8(out, cp);
    }
    if (s->p >= s->end) return -1;
    s->p++;
    return 0;
}

static int skip_value(scan *s, int depth) {
    ws(s);
    if (s->p >= s->end || depth > 64) return -1;
    char c = *s->p;
    if (c == '"') return str(s, NULL);
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        s->p++;
        ws(s);
        if (s->p < s->end && *s->p == close) return s->p++, 0;
        for (;;) {
            if (c == '{') {
                ws(s);
                if (str(s, NULL)) return -1;
                ws(s);
                if (s->p >= s->end || *s->p++ != ':') return -1;
            }
            if (skip_value(s, depth + 1)) return -1;
            ws(s);
            if (s->p >= s->end) return -1;
            if (*s->p == ',') {
                s->p++;
                continue;
            }
            if (*s->p++ != close) return -1;
            return 0;
        }
    }
    while (s->p < s->end && *s->p != ',' && *s->p != '}' && *s->p != ']' && *s->p != ' ') s->p++;
    return 0;
}

int cli_json_get_string(const char *line, size_t n, const char *key, rr_buf *out) {
    scan s = {line, line + n};
    size_t klen = strlen(key);
    ws(&s);
    if (s.p >= s.end || *s.p++ != '{') return -1;
    ws(&s);
    if (s.p < s.end && *s.p == '}') return 0;
    rr_buf k = {0};
    int found = 0;
    for (;;) {
        ws(&s);
        k.len = 0;
        if (str(&s, &k)) break;
        ws(&s);
        if (s.p >= s.end || *s.p++ != ':') break;
        ws(&s);
        if (!found && k.len == klen && (!klen || !memcmp(k.data, key, klen))) { /* k.data is NULL for "" */
            if (s.p < s.end && *s.p == '"') {
                out->len = 0;
                rr_buf_append(out, "", 0); /* NUL-terminated even when the value is "" and out is reused */
                if (str(&s, out)) break;
                found = 1;
            } else if (s.end - s.p >= 4 && !memcmp(s.p, "null", 4)) {
                s.p += 4;
            } else {
                found = -1;
                break;
            }
        } else if (skip_value(&s, 0)) {
            break;
        }
        ws(&s);
        if (s.p < s.end && *s.p == ',') {
            s.p++;
            continue;
        }
        if (s.p < s.end && *s.p == '}') {
            s.p++;
            ws(&s);
            rr_buf_free(&k);
            return s.p == s.end ? found : -1; /* nothing may follow the object */
        }
        break;
    }
    rr_buf_free(&k);
    return -1;
}

/* Length of the valid UTF-8 sequence at s[0..n) (shortest forms, no surrogates, at most U+10FFFF),
 * 0 when invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
    unsigned c = s[0], cp, min;
    size_t len;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) len = 2, cp = c & 0x1f, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef) len = 3, cp = c & 0x0f, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4) len = 4, cp = c & 0x07, min = 0x10000;
    else return 0;
    if (len > n) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    return cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ? 0 : len;
}

int cli_json_line(const char *line, size_t n, struct cJSON **out, char *err, size_t cap) {
    *out = NULL;
    err[0] = 0;
    /* JSON allows no raw control characters (cJSON takes them as whitespace, and a raw NUL would cut
     * a key or string short): only tab, CR and LF, which JSONL lines may carry around the value.
     * Every byte must be valid UTF-8, as the server requires of every string: escapes cannot make
     * invalid UTF-8 (cJSON refuses lone surrogate escapes), so checking the raw bytes is enough. */
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)line[i];
        if (c < 0x20 && c != '\t' && c != '\r' && c != '\n') {
            snprintf(err, cap, "raw control character 0x%02x at byte %zu (write it as \\u%04x)", c, i, c);
            return -1;
        }
        size_t k = utf8_seq((const unsigned char *)line + i, n - i);
        if (!k) {
            snprintf(err, cap, "invalid UTF-8 at byte %zu: text must be UTF-8", i);
            return -1;
        }
        i += k;
    }
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(line, n, &end, 0);
    size_t at = end && end >= line ? (size_t)(end - line) : 0;
    if (!j) {
        snprintf(err, cap, "invalid JSON near byte %zu", at);
        return -1;
    }
    while (at < n && (line[at] == ' ' || line[at] == '\t' || line[at] == '\r' || line[at] == '\n')) at++;
    if (at < n) {
        cJSON_Delete(j);
        snprintf(err, cap, "unexpected data after the JSON value at byte %zu", at);
        return -1;
    }
    *out = j;
    return 0;
}

int cli_read_line(FILE *f, rr_buf *line, size_t max) {
    line->len = 0;
    int c = EOF;
    size_t n = 0;
    flockfile(f);
    while ((c = getc_unlocked(f)) != EOF) {
        if (c == '\n') break;
        if (n == max) { /* one byte too many: stop here, the rest of the line stays unread */
            funlockfile(f);
            return 2;
        }
        char ch = (char)c;
        rr_buf_append(line, &ch, 1);
        n++;
    }
    funlockfile(f);
    if (line->oom) return -1;
    if (c == EOF && (ferror(f) || n == 0)) return ferror(f) ? -1 : 0;
    if (n && line->data[n - 1] == '\r') line->len = --n;
    return 1;
}

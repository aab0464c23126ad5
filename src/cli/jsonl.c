/*
 * jsonl.c -- reads string fields of one JSON-lines object exactly, NUL characters included
 * ("\u0000" is valid JSON and real text carries it; cJSON stops strings at NUL). The line is
 * first validated by cJSON; this scanner then walks the top-level object and decodes the wanted
 * string values (escapes, surrogate pairs; a lone surrogate becomes U+FFFD).
 */
#include "cli/cli.h"
#include "rerank_util.h"

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
        if (!found && k.len == klen && !memcmp(k.data, key, klen)) {
            if (s.p < s.end && *s.p == '"') {
                out->len = 0;
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

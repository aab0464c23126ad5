/*
 * json_strict.c -- strict JSON for input that comes from users (request bodies, JSON-lines input).
 *
 * cJSON is lenient where a lenient reader is a liability: it stops at the first complete value and
 * ignores what follows (trailing garbage, a second object), takes raw control characters inside
 * strings, decodes "\u0000" into a string that C then cuts at the NUL, and keeps every duplicate
 * key (lookups find the first; a proxy or another parser may read the last). rr_json_parse_strict
 * therefore checks the text against RFC 8259 first, with a scanner that knows where it is in the
 * document, so every refusal names the JSON path ("documents[2].text"), and only then lets cJSON
 * build the tree, whose objects are checked for duplicate keys.
 */
#include "core.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>

/* cJSON refuses deeper documents anyway (CJSON_NESTING_LIMIT); the scanner stops at the same depth
 * so its recursion is bounded. */
#define STRICT_MAX_DEPTH 1000

typedef struct jscan {
    const unsigned char *p, *end, *base;
    unsigned flags;
    char path[256];
    size_t plen;
    int depth;
    char err[200];
} jscan;

static const char *path_or_root(const jscan *s) { return s->plen ? s->path : "(root)"; }

static int scan_fail(jscan *s, const char *msg) {
    if (!s->err[0]) snprintf(s->err, sizeof s->err, "%s", msg);
    return -1;
}

static void ws(jscan *s) {
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) s->p++;
}

/* Consumes c when it is the next byte. */
static bool eat(jscan *s, char c) {
    if (s->p >= s->end || *s->p != (unsigned char)c) return false;
    s->p++;
    return true;
}

/* Appends a path step; the path is for messages only, so a long one is cut, never an error. */
static size_t path_push(jscan *s, const char *key, size_t klen, int index) {
    size_t at = s->plen;
    int n;
    if (key) n = snprintf(s->path + at, sizeof s->path - at, "%s%.*s", at ? "." : "", (int)klen, key);
    else n = snprintf(s->path + at, sizeof s->path - at, "[%d]", index);
    size_t next = at + (n > 0 ? (size_t)n : 0);
    s->plen = next < sizeof s->path ? next : sizeof s->path - 1;
    return at;
}

static void path_pop(jscan *s, size_t at) {
    s->plen = at;
    s->path[at] = 0;
}

static int hexval(unsigned c) {
    if (c >= '0' && c <= '9') return (int)(c - '0');
    if (c >= 'a' && c <= 'f') return (int)(c - 'a' + 10);
    if (c >= 'A' && c <= 'F') return (int)(c - 'A' + 10);
    return -1;
}

/* Length of the valid UTF-8 sequence at p (2..4), or 0. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end) {
    unsigned c = p[0];
    size_t len;
    unsigned min, cp;
    if (c >= 0xc2 && c <= 0xdf) len = 2, cp = c & 0x1f, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef) len = 3, cp = c & 0x0f, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4) len = 4, cp = c & 0x07, min = 0x10000;
    else return 0;
    if ((size_t)(end - p) < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return len;
}

/* A string at s->p (on the opening quote). `what` says "a key" or "a string" in messages. */
static int scan_string(jscan *s, const char *what) {
    s->p++;
    while (s->p < s->end) {
        unsigned c = *s->p;
        if (c == '"') {
            s->p++;
            return 0;
        }
        if (c < 0x20) {
            char m[120];
            snprintf(m, sizeof m, "a raw control character (byte 0x%02x) in %s: escape it", c, what);
            return scan_fail(s, m);
        }
        if (c == '\\') {
            if (s->end - s->p < 2) break;
            unsigned e = s->p[1];
            if (e == 'u') {
                if (s->end - s->p < 6) return scan_fail(s, "a \\u escape needs four hex digits");
                int v = 0;
                for (int i = 2; i < 6; i++) {
                    int h = hexval(s->p[i]);
                    if (h < 0) return scan_fail(s, "a \\u escape needs four hex digits");
                    v = v * 16 + h;
                }
                if (v == 0 && !(s->flags & RR_JSON_ALLOW_NUL)) {
                    char m[120];
                    snprintf(m, sizeof m, "a NUL character (\\u0000) in %s", what);
                    return scan_fail(s, m);
                }
                s->p += 6;
            } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' || e == 't') {
                s->p += 2;
            } else {
                return scan_fail(s, "an invalid escape in a string");
            }
            continue;
        }
        if (c >= 0x80) {
            size_t l = utf8_seq(s->p, s->end);
            if (!l) {
                char m[120];
                snprintf(m, sizeof m, "invalid UTF-8 in %s: strings must be UTF-8", what);
                return scan_fail(s, m);
            }
            s->p += l;
            continue;
        }
        s->p++;
    }
    return scan_fail(s, "an unterminated string");
}

static int digits(jscan *s) {
    const unsigned char *b = s->p;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9') s->p++;
    return s->p > b;
}

static int scan_number(jscan *s) {
    eat(s, '-');
    if (!eat(s, '0') && !digits(s)) return scan_fail(s, "an invalid number");
    if (eat(s, '.') && !digits(s)) return scan_fail(s, "an invalid number: digits must follow '.'");
    if (eat(s, 'e') || eat(s, 'E')) {
        if (!eat(s, '+')) eat(s, '-');
        if (!digits(s)) return scan_fail(s, "an invalid number: digits must follow the exponent");
    }
    return 0;
}

static int scan_word(jscan *s, const char *w) {
    size_t n = strlen(w);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, w, n) != 0) return scan_fail(s, "an invalid value");
    s->p += n;
    return 0;
}

static int scan_value(jscan *s);

static int scan_object(jscan *s) {
    s->p++;
    ws(s);
    if (eat(s, '}')) return 0;
    for (;;) {
        ws(s);
        if (s->p >= s->end || *s->p != '"') return scan_fail(s, "expected a key (a string) in an object");
        const unsigned char *k = s->p + 1;
        if (scan_string(s, "a key")) return -1;
        /* the key as written (escapes and all) is good enough for a path in a message */
        size_t at = path_push(s, (const char *)k, (size_t)(s->p - 1 - k), 0);
        ws(s);
        if (s->p >= s->end || *s->p != ':') return scan_fail(s, "expected ':' after a key");
        s->p++;
        if (scan_value(s)) return -1;
        path_pop(s, at);
        ws(s);
        if (eat(s, ',')) continue;
        if (eat(s, '}')) return 0;
        return scan_fail(s, "expected ',' or '}' in an object");
    }
}

static int scan_array(jscan *s) {
    s->p++;
    ws(s);
    if (eat(s, ']')) return 0;
    for (int i = 0;; i++) {
        size_t at = path_push(s, NULL, 0, i);
        if (scan_value(s)) return -1;
        path_pop(s, at);
        ws(s);
        if (eat(s, ',')) continue;
        if (eat(s, ']')) return 0;
        return scan_fail(s, "expected ',' or ']' in an array");
    }
}

static int scan_value(jscan *s) {
    ws(s);
    if (s->p >= s->end) return scan_fail(s, "the document ends early");
    if (++s->depth > STRICT_MAX_DEPTH) return scan_fail(s, "nesting deeper than 1000 levels");
    int rc;
    switch (*s->p) {
    case '{': rc = scan_object(s); break;
    case '[': rc = scan_array(s); break;
    case '"': rc = scan_string(s, "a string"); break;
    case 't': rc = scan_word(s, "true"); break;
    case 'f': rc = scan_word(s, "false"); break;
    case 'n': rc = scan_word(s, "null"); break;
    default:
        if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9')) rc = scan_number(s);
        else rc = scan_fail(s, *s->p == 0 ? "a NUL byte" : "an invalid value");
    }
    s->depth--;
    return rc;
}

/* ------------------------------------------------------------------ duplicate keys */

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The first key of `obj` that appears twice, or NULL. Small objects compare pairs; large ones
 * sort, so a body with 100,000 keys costs n log n, not n^2. -1 cast: out of memory. */
static const char *dup_key(const cJSON *obj, int *oom) {
    int n = 0;
    for (const cJSON *c = obj->child; c; c = c->next) n++;
    if (n < 2) return NULL;
    if (n <= 16) {
        for (const cJSON *a = obj->child; a; a = a->next)
            for (const cJSON *b = a->next; b; b = b->next)
                if (a->string && b->string && !strcmp(a->string, b->string)) return a->string;
        return NULL;
    }
    const char **keys = rr_malloc((size_t)n * sizeof *keys);
    if (!keys) {
        *oom = 1;
        return NULL;
    }
    int k = 0;
    for (const cJSON *c = obj->child; c; c = c->next) keys[k++] = c->string ? c->string : "";
    qsort(keys, (size_t)n, sizeof *keys, cmp_str);
    const char *d = NULL;
    for (int i = 1; i < n && !d; i++)
        if (!strcmp(keys[i - 1], keys[i])) d = keys[i];
    rr_free(keys);
    return d;
}

/* Walks the tree; on a duplicate writes its path into s->path and returns the key. */
static const char *find_dup(const cJSON *j, jscan *s, int *oom) {
    if (cJSON_IsObject(j)) {
        const char *d = dup_key(j, oom);
        if (d || *oom) {
            if (d) path_push(s, d, strlen(d), 0);
            return d;
        }
    }
    int i = 0;
    for (const cJSON *c = j->child; c; c = c->next, i++) {
        if (!cJSON_IsObject(c) && !cJSON_IsArray(c)) continue;
        size_t at = cJSON_IsArray(j) ? path_push(s, NULL, 0, i)
                                      : path_push(s, c->string ? c->string : "", strlen(c->string ? c->string : ""), 0);
        const char *d = find_dup(c, s, oom);
        if (d || *oom) return d;
        path_pop(s, at);
    }
    return NULL;
}

rr_status rr_json_parse_strict(const char *text, size_t len, const char *what, unsigned flags, cJSON **out) {
    *out = NULL;
    jscan s;
    memset(&s, 0, sizeof s);
    s.base = s.p = (const unsigned char *)(text ? text : "");
    s.end = s.p + (text ? len : 0);
    s.flags = flags;
    /* a UTF-8 byte order mark is tolerated, as cJSON does */
    if (s.end - s.p >= 3 && !memcmp(s.p, "\xef\xbb\xbf", 3)) s.p += 3;
    ws(&s);
    if (s.p >= s.end) return rr_fail(RR_ERR_FORMAT, "%s: empty document: expected a JSON value", what);
    if (scan_value(&s))
        return rr_fail(RR_ERR_FORMAT, "%s: invalid JSON at byte %zu (at \"%s\"): %s", what, (size_t)(s.p - s.base),
                       path_or_root(&s), s.err);
    ws(&s);
    if (s.p < s.end) {
        const char *kind = *s.p == '{' || *s.p == '[' || *s.p == '"' ? "a second JSON value" : "trailing data";
        return rr_fail(RR_ERR_FORMAT, "%s: invalid JSON: %s at byte %zu after the document", what, kind,
                       (size_t)(s.p - s.base));
    }
    cJSON *j = NULL;
    rr_status st = rr_json_parse(text, len, what, &j);
    if (st != RR_OK) return st;
    int oom = 0;
    s.plen = 0;
    s.path[0] = 0;
    const char *d = find_dup(j, &s, &oom);
    if (oom || d) {
        cJSON_Delete(j);
        if (oom) return rr_fail(RR_ERR_NOMEM, "%s: out of memory checking keys", what);
        return rr_fail(RR_ERR_FORMAT, "%s: duplicate key at \"%s\": each key may appear once in an object", what,
                       s.path);
    }
    *out = j;
    return RR_OK;
}

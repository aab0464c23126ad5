/*
 * jsonnum.c -- Unigram scores parsed exactly as the reference parses them.
 *
 * HF tokenizers reads tokenizer.json with serde_json, whose default float parser is NOT correctly
 * rounded: it accumulates up to 19 digits into a u64, converts that to f64 (one rounding) and then
 * multiplies or divides by a power of ten (a second rounding). For the 17-digit scores that
 * converters write ("-12.130167007446289") the result can be 1 ulp away from strtod's, and that
 * ulp decides equal-looking Viterbi paths ("-------" under T5). So the scores are re-read from the
 * raw text of "model.vocab" with serde_json's algorithm. The walk below is a minimal JSON scanner
 * over text cJSON has already validated.
 */
#include "tokenize/tok.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct jscan {
    const char *p, *end;
} jscan;

static void ws(jscan *s) {
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) s->p++;
}

/* Skips a string; raw and rlen receive its undecoded contents. */
static bool skip_str(jscan *s, const char **raw, size_t *rlen) {
    if (s->p >= s->end || *s->p != '"') return false;
    const char *b = ++s->p;
    while (s->p < s->end && *s->p != '"') s->p += *s->p == '\\' ? 2 : 1;
    if (s->p >= s->end) return false;
    if (raw) *raw = b, *rlen = (size_t)(s->p - b);
    s->p++;
    return true;
}

static bool skip_value(jscan *s, int depth) {
    ws(s);
    if (s->p >= s->end || depth > 256) return false;
    char c = *s->p;
    if (c == '"') return skip_str(s, NULL, NULL);
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        s->p++;
        ws(s);
        if (s->p < s->end && *s->p == close) return s->p++, true;
        for (;;) {
            if (c == '{') {
                ws(s);
                if (!skip_str(s, NULL, NULL)) return false;
                ws(s);
                if (s->p >= s->end || *s->p++ != ':') return false;
            }
            if (!skip_value(s, depth + 1)) return false;
            ws(s);
            if (s->p >= s->end) return false;
            if (*s->p == ',') {
                s->p++;
                continue;
            }
            return *s->p++ == close;
        }
    }
    while (s->p < s->end && *s->p != ',' && *s->p != '}' && *s->p != ']' && *s->p != ' ' && *s->p != '\n' && *s->p != '\r' &&
           *s->p != '\t')
        s->p++;
    return true;
}

/* Positions s just after the ':' of `key` in the object at s->p; false if absent. */
static bool find_key(jscan *s, const char *key) {
    size_t klen = strlen(key);
    ws(s);
    if (s->p >= s->end || *s->p++ != '{') return false;
    for (;;) {
        ws(s);
        const char *k;
        size_t kl;
        if (!skip_str(s, &k, &kl)) return false;
        ws(s);
        if (s->p >= s->end || *s->p++ != ':') return false;
        if (kl == klen && !memcmp(k, key, klen)) return true;
        if (!skip_value(s, 0)) return false;
        ws(s);
        if (s->p >= s->end || *s->p != ',') return false;
        s->p++;
    }
}

static double pow10_exact(int e) {
    /* 10^e for 0 <= e <= 22 is exact in binary64; beyond, strtod gives the correctly rounded
     * constant, as Rust's POW10 table literals are. */
    if (e <= 22) {
        double p = 1.0;
        for (int i = 0; i < e; i++) p *= 10.0;
        return p;
    }
    char buf[16];
    snprintf(buf, sizeof buf, "1e%d", e);
    return strtod(buf, NULL);
}

#define OVERFLOW_U64(a, d) ((a) >= UINT64_MAX / 10 && ((a) > UINT64_MAX / 10 || (d) > UINT64_MAX % 10))

double rr_tok_serde_f64(const char *p, size_t n, bool *ok) {
    const char *e = p + n;
    bool neg = false;
    uint64_t sig = 0;
    long exp = 0;
    *ok = false;
    if (p < e && *p == '-') neg = true, p++;
    if (p >= e || *p < '0' || *p > '9') return 0;
    bool over = false;
    for (; p < e && *p >= '0' && *p <= '9'; p++) {
        uint64_t d = (uint64_t)(*p - '0');
        if (over || OVERFLOW_U64(sig, d)) over = true, exp++;
        else sig = sig * 10 + d;
    }
    if (p < e && *p == '.') {
        p++;
        if (p >= e || *p < '0' || *p > '9') return 0;
        for (; p < e && *p >= '0' && *p <= '9'; p++) {
            uint64_t d = (uint64_t)(*p - '0');
            if (over || OVERFLOW_U64(sig, d)) over = true; /* further digits ignored */
            else sig = sig * 10 + d, exp--;
        }
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        bool eneg = false;
        if (p < e && (*p == '+' || *p == '-')) eneg = *p == '-', p++;
        if (p >= e || *p < '0' || *p > '9') return 0;
        long x = 0;
        for (; p < e && *p >= '0' && *p <= '9'; p++)
            if (x < 100000) x = x * 10 + (*p - '0');
        exp = eneg ? exp - x : exp + x;
    }
    if (p != e) return 0;
    double f = (double)sig;
    for (;;) {
        long a = exp < 0 ? -exp : exp;
        if (a <= 308) {
            double pw = pow10_exact((int)a);
            f = exp >= 0 ? f * pw : f / pw;
            break;
        }
        if (f == 0.0) break;
        if (exp >= 0) return 0; /* out of range: serde fails, so does the caller */
        f /= 1e308;
        exp += 308;
    }
    *ok = true;
    return neg ? -f : f;
}

bool rr_tok_find_vocab(const char *text, size_t len, size_t *vb) {
    jscan s = {text, text + len};
    if (!find_key(&s, "model") || !find_key(&s, "vocab")) return false;
    ws(&s);
    *vb = (size_t)(s.p - text);
    return s.p < s.end;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool hex4(const char *p, const char *e, uint32_t *out) {
    if (e - p < 4) return false;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0) return false;
        v = v << 4 | (uint32_t)h;
    }
    *out = v;
    return true;
}

/* Decodes the JSON string at s->p into out (strict: control characters, bad escapes, lone
 * surrogates and invalid UTF-8 are errors, as for serde_json). */
static bool decode_str(jscan *s, char *out, size_t *olen) {
    if (s->p >= s->end || *s->p != '"') return false;
    s->p++;
    size_t k = 0;
    while (s->p < s->end) {
        unsigned char c = (unsigned char)*s->p;
        if (c == '"') {
            s->p++;
            *olen = k;
            return rr_utf8_valid_prefix((const uint8_t *)out, k) == k;
        }
        if (c < 0x20) return false;
        if (c != '\\') {
            out[k++] = (char)c;
            s->p++;
            continue;
        }
        if (s->end - s->p < 2) return false;
        char x = s->p[1];
        s->p += 2;
        uint32_t cp;
        switch (x) {
        case '"': out[k++] = '"'; continue;
        case '\\': out[k++] = '\\'; continue;
        case '/': out[k++] = '/'; continue;
        case 'b': out[k++] = '\b'; continue;
        case 'f': out[k++] = '\f'; continue;
        case 'n': out[k++] = '\n'; continue;
        case 'r': out[k++] = '\r'; continue;
        case 't': out[k++] = '\t'; continue;
        case 'u':
            if (!hex4(s->p, s->end, &cp)) return false;
            s->p += 4;
            if (cp >= 0xDC00 && cp <= 0xDFFF) return false;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t lo;
                if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u' || !hex4(s->p + 2, s->end, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                    return false;
                s->p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            k += (size_t)rr_tok_utf8_put(cp, out + k);
            continue;
        default:
            return false;
        }
    }
    return false;
}

/* JSON number grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool json_number(const char *p, const char *e) {
    if (p < e && *p == '-') p++;
    if (p >= e) return false;
    if (*p == '0') p++;
    else if (*p >= '1' && *p <= '9') while (p < e && *p >= '0' && *p <= '9') p++;
    else return false;
    if (p < e && *p == '.') {
        p++;
        if (p >= e || *p < '0' || *p > '9') return false;
        while (p < e && *p >= '0' && *p <= '9') p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-')) p++;
        if (p >= e || *p < '0' || *p > '9') return false;
        while (p < e && *p >= '0' && *p <= '9') p++;
    }
    return p == e;
}

rr_status rr_tok_parse_unigram_vocab(const char *raw, size_t n, char *arena, uint32_t **offs, double **scores, int *count,
                                     size_t *consumed, const char *what) {
    jscan s = {raw, raw + n};
    size_t cap = 0, k = 0, used = 0;
    uint32_t *o = NULL;
    double *sc = NULL;
    rr_status st = RR_OK;
    ws(&s);
    if (s.p >= s.end || *s.p++ != '[') goto bad;
    ws(&s);
    if (s.p < s.end && *s.p == ']') goto done;
    for (;;) {
        if (k == cap) {
            cap = cap ? cap * 2 : 4096;
            uint32_t *no = rr_realloc(o, cap * sizeof *no);
            if (no) o = no;
            double *ns = rr_realloc(sc, cap * sizeof *ns);
            if (ns) sc = ns;
            if (!no || !ns) {
                st = rr_fail(RR_ERR_NOMEM, "%s: out of memory for the vocabulary", what);
                goto fail;
            }
        }
        ws(&s);
        if (s.p >= s.end || *s.p++ != '[') goto bad;
        ws(&s);
        size_t l;
        if (!decode_str(&s, arena + used, &l)) goto bad;
        o[k] = (uint32_t)used;
        arena[used + l] = 0;
        ws(&s);
        if (s.p >= s.end || *s.p++ != ',') goto bad;
        ws(&s);
        const char *b = s.p;
        while (s.p < s.end && *s.p != ',' && *s.p != ']' && *s.p != ' ' && *s.p != '\n' && *s.p != '\r' && *s.p != '\t') s.p++;
        bool ok = json_number(b, s.p);
        double v = ok ? rr_tok_serde_f64(b, (size_t)(s.p - b), &ok) : 0;
        if (!ok || !(v == v) || v > 1e308 || v < -1e308) goto bad;
        sc[k] = v;
        used += l + 1;
        k++;
        ws(&s);
        if (s.p >= s.end || *s.p++ != ']') goto bad;
        ws(&s);
        if (s.p >= s.end) goto bad;
        if (*s.p == ',') {
            s.p++;
            continue;
        }
        if (*s.p++ != ']') goto bad;
        break;
    }
done:
    if (k == 0) {
        st = rr_fail(RR_ERR_FORMAT, "%s: Unigram field \"model.vocab\" is empty", what);
        goto fail;
    }
    *offs = o, *scores = sc, *count = (int)k;
    *consumed = (size_t)(s.p - raw);
    return RR_OK;
bad:
    st = rr_fail(RR_ERR_FORMAT, "%s: Unigram field \"model.vocab[%zu]\" must be [string, finite number]", what, k);
fail:
    rr_free(o);
    rr_free(sc);
    return st;
}

bool rr_tok_serde_unigram_scores(const char *text, size_t len, double *scores, int n) {
    jscan s = {text, text + len};
    if (!find_key(&s, "model") || !find_key(&s, "vocab")) return false;
    ws(&s);
    if (s.p >= s.end || *s.p++ != '[') return false;
    for (int i = 0; i < n; i++) {
        ws(&s);
        if (s.p >= s.end || *s.p++ != '[') return false;
        ws(&s);
        if (!skip_str(&s, NULL, NULL)) return false;
        ws(&s);
        if (s.p >= s.end || *s.p++ != ',') return false;
        ws(&s);
        const char *b = s.p;
        while (s.p < s.end && *s.p != ',' && *s.p != ']' && *s.p != ' ' && *s.p != '\n' && *s.p != '\r' && *s.p != '\t') s.p++;
        bool ok;
        double v = rr_tok_serde_f64(b, (size_t)(s.p - b), &ok);
        if (!ok) return false;
        scores[i] = v;
        ws(&s);
        if (s.p >= s.end || *s.p++ != ']') return false;
        ws(&s);
        if (s.p >= s.end) return false;
        if (*s.p == ',') s.p++;
    }
    return true;
}

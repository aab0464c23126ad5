/*
 * normalize.c -- the normalizers of tokenizer.json, applied to one segment of text (between added
 * tokens) before pre-tokenization: Precompiled (charsmap.c), Strip, Replace, Prepend, the Unicode
 * forms NFC/NFD/NFKC/NFKD, Lowercase, StripAccents and BertNormalizer. A Sequence is flattened
 * into a list at load; tokenizer.c runs the list through two ping-pong buffers. Each function
 * appends to `out`; an allocation failure is sticky in out->oom, and only a Replace regex run by
 * Oniguruma can fail otherwise (its search reports errors).
 */
#include "tokenize/tok.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <utf8proc.h>

static void put_cp(rr_buf *out, uint32_t cp) {
    char u[4];
    rr_buf_append(out, u, (size_t)rr_tok_utf8_put(cp, u));
}

static void unicode_form(const char *s, size_t n, int options, rr_buf *out) {
    if (!n) return;
    utf8proc_uint8_t *dst = NULL;
    utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &dst,
                                      (utf8proc_option_t)(UTF8PROC_STABLE | options));
    if (r < 0) {
        rr_buf_append(out, s, n); /* input is valid UTF-8, so only OOM gets here */
        out->oom = true;
    } else {
        rr_buf_append(out, dst, (size_t)r);
    }
    free(dst);
}

static void lowercase(const char *s, size_t n, rr_buf *out) {
    const uint8_t *u = (const uint8_t *)s;
    for (size_t i = 0; i < n;) {
        if (u[i] < 0x80) {
            char c = (char)(u[i] >= 'A' && u[i] <= 'Z' ? u[i] + 32 : u[i]);
            rr_buf_append(out, &c, 1);
            i++;
            continue;
        }
        size_t l;
        uint32_t cp = rr_tok_utf8_next(u + i, n - i, &l);
        i += l;
        if (cp == 0x130) { /* the one unconditional multi-char lowercase mapping (SpecialCasing) */
            rr_buf_append(out, "i\xCC\x87", 3);
            continue;
        }
        put_cp(out, (uint32_t)utf8proc_tolower((utf8proc_int32_t)cp));
    }
}

static bool is_mn(uint32_t cp) { return cp >= 0x300 && utf8proc_category((utf8proc_int32_t)cp) == UTF8PROC_CATEGORY_MN; }

static void strip_mn(const char *s, size_t n, rr_buf *out) {
    const uint8_t *u = (const uint8_t *)s;
    for (size_t i = 0; i < n;) {
        size_t l;
        uint32_t cp = rr_tok_utf8_next(u + i, n - i, &l);
        if (!is_mn(cp)) rr_buf_append(out, s + i, l);
        i += l;
    }
}

static bool is_other(uint32_t cp) {
    switch (utf8proc_category((utf8proc_int32_t)cp)) {
    case UTF8PROC_CATEGORY_CC: case UTF8PROC_CATEGORY_CF: case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO: case UTF8PROC_CATEGORY_CN:
        return true;
    default:
        return false;
    }
}

static bool is_chinese(uint32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* BertNormalizer: clean_text, handle_chinese_chars, strip_accents (NFD + drop Mn), lowercase, in
 * that order, as HF applies them. */
static void bert(const rr_tok_norm *nm, const char *s, size_t n, rr_buf *out, rr_buf *tmp) {
    const uint8_t *u = (const uint8_t *)s;
    rr_buf a = {0};
    for (size_t i = 0; i < n;) {
        size_t l;
        uint32_t cp = rr_tok_utf8_next(u + i, n - i, &l);
        i += l;
        if (nm->clean_text) {
            bool tnr = cp == '\t' || cp == '\n' || cp == '\r';
            if (cp == 0 || cp == 0xFFFD || (!tnr && is_other(cp))) continue;
            if (tnr || rr_tok_is_whitespace(cp)) cp = ' ';
        }
        if (nm->chinese && is_chinese(cp)) {
            rr_buf_append(&a, " ", 1);
            put_cp(&a, cp);
            rr_buf_append(&a, " ", 1);
        } else {
            put_cp(&a, cp);
        }
    }
    if (a.oom) out->oom = true;
    const char *cur = a.data ? a.data : "";
    size_t len = a.len;
    tmp->len = 0;
    if (nm->strip_accents) {
        rr_buf d = {0};
        unicode_form(cur, len, UTF8PROC_DECOMPOSE, &d);
        strip_mn(d.data ? d.data : "", d.len, tmp);
        if (d.oom) out->oom = true;
        rr_buf_free(&d);
        cur = tmp->data ? tmp->data : "";
        len = tmp->len;
    }
    if (nm->lowercase) lowercase(cur, len, out);
    else rr_buf_append(out, cur, len);
    if (tmp->oom) out->oom = true;
    rr_buf_free(&a);
}

rr_status rr_tok_norm_apply(const rr_tok_norm *nm, const char *s, size_t n, rr_buf *out) {
    const uint8_t *u = (const uint8_t *)s;
    switch (nm->kind) {
    case RR_TOK_NORM_PRECOMPILED:
        rr_tok_charsmap_apply(&nm->charsmap, s, n, out);
        return RR_OK;
    case RR_TOK_NORM_STRIP: {
        size_t b = 0, e = n, l;
        if (nm->strip_left)
            while (b < e && rr_tok_is_whitespace(rr_tok_utf8_next(u + b, e - b, &l))) b += l;
        if (nm->strip_right)
            while (e > b) {
                size_t p = e - 1;
                while (p > b && (u[p] & 0xC0) == 0x80) p--;
                if (!rr_tok_is_whitespace(rr_tok_utf8_next(u + p, e - p, &l))) break;
                e = p;
            }
        rr_buf_append(out, s + b, e - b);
        return RR_OK;
    }
    case RR_TOK_NORM_REPLACE: {
        size_t i = 0, ms, me;
        if (nm->pattern.onig) { /* every match, empty ones included, gets the content */
            rr_tok_spans m = {0};
            rr_status st = rr_tok_pattern_matches(&nm->pattern, s, n, &m);
            for (size_t k = 0; !st && k < m.n; k++) {
                rr_buf_append(out, s + i, m.v[k].off - i);
                rr_buf_append(out, nm->content, nm->content_len);
                i = m.v[k].off + m.v[k].len;
            }
            rr_free(m.v);
            if (st) return st;
        } else {
            while (i <= n && rr_tok_pattern_find(&nm->pattern, s, n, i, &ms, &me)) {
                rr_buf_append(out, s + i, ms - i);
                rr_buf_append(out, nm->content, nm->content_len);
                i = me;
            }
        }
        rr_buf_append(out, s + i, n - i);
        return RR_OK;
    }
    case RR_TOK_NORM_PREPEND:
        if (n) rr_buf_append(out, nm->content, nm->content_len);
        rr_buf_append(out, s, n);
        return RR_OK;
    case RR_TOK_NORM_NFC: unicode_form(s, n, UTF8PROC_COMPOSE, out); return RR_OK;
    case RR_TOK_NORM_NFD: unicode_form(s, n, UTF8PROC_DECOMPOSE, out); return RR_OK;
    case RR_TOK_NORM_NFKC: unicode_form(s, n, UTF8PROC_COMPOSE | UTF8PROC_COMPAT, out); return RR_OK;
    case RR_TOK_NORM_NFKD: unicode_form(s, n, UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT, out); return RR_OK;
    case RR_TOK_NORM_LOWERCASE: lowercase(s, n, out); return RR_OK;
    case RR_TOK_NORM_STRIP_ACCENTS: strip_mn(s, n, out); return RR_OK;
    case RR_TOK_NORM_BERT: {
        rr_buf tmp = {0};
        bert(nm, s, n, out, &tmp);
        rr_buf_free(&tmp);
        return RR_OK;
    }
    }
    return RR_OK;
}

void rr_tok_norm_free(rr_tok_norm *nm) {
    if (!nm) return;
    rr_tok_charsmap_free(&nm->charsmap);
    rr_tok_pattern_free(&nm->pattern);
    rr_free(nm->content);
    nm->content = NULL;
}

/* ------------------------------------------------------------------ parsing */

static bool get_bool(const cJSON *j, const char *key, bool dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v);
    return dflt;
}

static int b64_val(int c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

static rr_status b64_decode(const char *s, uint8_t **out, size_t *out_len, const char *what) {
    size_t n = strlen(s);
    uint8_t *o = rr_malloc(n / 4 * 3 + 4);
    if (!o) return rr_fail(RR_ERR_NOMEM, "%s: out of memory", what);
    size_t k = 0;
    uint32_t acc = 0;
    int bits = 0;
    size_t i = 0;
    for (; i < n && s[i] != '='; i++) {
        int v = b64_val((unsigned char)s[i]);
        if (v < 0) {
            rr_free(o);
            return rr_fail(RR_ERR_FORMAT, "%s: field \"precompiled_charsmap\" is not valid base64 (byte %zu)", what, i);
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[k++] = (uint8_t)(acc >> bits);
        }
    }
    for (; i < n; i++)
        if (s[i] != '=') {
            rr_free(o);
            return rr_fail(RR_ERR_FORMAT, "%s: field \"precompiled_charsmap\" has data after base64 padding", what);
        }
    *out = o;
    *out_len = k;
    return RR_OK;
}

static rr_status parse_one(const cJSON *j, rr_tok_norm *nm, const char *what) {
    const char *type = rr_json_get_str(j, "type");
    memset(nm, 0, sizeof *nm);
    if (!type) return rr_fail(RR_ERR_FORMAT, "%s: normalizer without a \"type\" string", what);
    if (!strcmp(type, "Precompiled")) {
        nm->kind = RR_TOK_NORM_PRECOMPILED;
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "precompiled_charsmap");
        if (cJSON_IsNull(c) || !c) return rr_tok_charsmap_parse(&nm->charsmap, NULL, 0, what);
        if (!cJSON_IsString(c)) return rr_fail(RR_ERR_FORMAT, "%s: field \"precompiled_charsmap\" must be a base64 string", what);
        uint8_t *blob = NULL;
        size_t len = 0;
        rr_status st = b64_decode(c->valuestring, &blob, &len, what);
        if (st) return st;
        st = rr_tok_charsmap_parse(&nm->charsmap, blob, len, what);
        rr_free(blob);
        return st;
    }
    if (!strcmp(type, "Strip")) {
        nm->kind = RR_TOK_NORM_STRIP;
        nm->strip_left = get_bool(j, "strip_left", true);
        nm->strip_right = get_bool(j, "strip_right", true);
        return RR_OK;
    }
    if (!strcmp(type, "Replace") || !strcmp(type, "Prepend")) {
        bool rep = type[0] == 'R';
        nm->kind = rep ? RR_TOK_NORM_REPLACE : RR_TOK_NORM_PREPEND;
        const char *content = rr_json_get_str(j, rep ? "content" : "prepend");
        if (!content) return rr_fail(RR_ERR_FORMAT, "%s: %s normalizer needs a string field \"%s\"", what, type, rep ? "content" : "prepend");
        nm->content = rr_strdup(content);
        if (!nm->content) return rr_fail(RR_ERR_NOMEM, "%s: out of memory", what);
        nm->content_len = strlen(content);
        if (!rep) return RR_OK;
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "pattern");
        if (!cJSON_IsObject(p)) return rr_fail(RR_ERR_FORMAT, "%s: Replace normalizer needs an object field \"pattern\"", what);
        return rr_tok_pattern_parse(&nm->pattern, p, false, what);
    }
    static const struct { const char *name; rr_tok_norm_kind kind; } simple[] = {
        {"NFC", RR_TOK_NORM_NFC}, {"NFD", RR_TOK_NORM_NFD}, {"NFKC", RR_TOK_NORM_NFKC}, {"NFKD", RR_TOK_NORM_NFKD},
        {"Lowercase", RR_TOK_NORM_LOWERCASE}, {"StripAccents", RR_TOK_NORM_STRIP_ACCENTS},
    };
    for (size_t i = 0; i < RR_ARRAY_LEN(simple); i++)
        if (!strcmp(type, simple[i].name)) {
            nm->kind = simple[i].kind;
            return RR_OK;
        }
    if (!strcmp(type, "BertNormalizer")) {
        nm->kind = RR_TOK_NORM_BERT;
        nm->clean_text = get_bool(j, "clean_text", true);
        nm->chinese = get_bool(j, "handle_chinese_chars", true);
        nm->lowercase = get_bool(j, "lowercase", true);
        nm->strip_accents = get_bool(j, "strip_accents", nm->lowercase); /* null: follows lowercase */
        return RR_OK;
    }
    return rr_fail(RR_ERR_UNSUPPORTED, "%s: normalizer type \"%s\" is not supported", what, type);
}

static rr_status parse_rec(const cJSON *j, rr_tok_norm **list, int *n, int depth, const char *what) {
    if (depth > 16) return rr_fail(RR_ERR_FORMAT, "%s: normalizer Sequence nested too deeply", what);
    if (!cJSON_IsObject(j)) return rr_fail(RR_ERR_FORMAT, "%s: field \"normalizer\" must be an object or null", what);
    const char *type = rr_json_get_str(j, "type");
    if (type && !strcmp(type, "Sequence")) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "normalizers");
        if (!cJSON_IsArray(arr)) return rr_fail(RR_ERR_FORMAT, "%s: Sequence normalizer needs an array \"normalizers\"", what);
        const cJSON *e;
        cJSON_ArrayForEach(e, arr) {
            rr_status st = parse_rec(e, list, n, depth + 1, what);
            if (st) return st;
        }
        return RR_OK;
    }
    rr_tok_norm *nl = rr_realloc(*list, (size_t)(*n + 1) * sizeof **list);
    if (!nl) return rr_fail(RR_ERR_NOMEM, "%s: out of memory", what);
    *list = nl;
    rr_status st = parse_one(j, &nl[*n], what);
    (*n)++; /* counted even on failure so the caller frees what was built */
    return st;
}

rr_status rr_tok_norm_parse(const cJSON *j, rr_tok_norm **list, int *n, const char *what) {
    *list = NULL;
    *n = 0;
    if (!j || cJSON_IsNull(j)) return RR_OK;
    return parse_rec(j, list, n, 0, what);
}

/*
 * charsmap.c -- sentencepiece's precompiled normalization map ("precompiled_charsmap", the
 * Precompiled normalizer of tokenizer.json) and its application.
 *
 * Blob layout: u32 little-endian size in bytes of the trie, the trie as u32 LE Darts double-array
 * units, then the replacement strings, each NUL-terminated. A trie value is the byte offset of a
 * replacement string.
 *
 * Application follows HF tokenizers' Precompiled normalizer, not sentencepiece's own longest-match
 * rewrite: the text is cut into extended grapheme clusters (utf8proc); a cluster shorter than 6
 * bytes is looked up whole, and if ANY prefix of it has a rule, the whole cluster is replaced by the
 * replacement of the SHORTEST such prefix (so "e" + U+0302 + U+0323 becomes "ê": the dot below is
 * dropped, as HF does); otherwise each code point is looked up on its own. Every lookup is bounds
 * checked: a corrupt trie yields "no rule", never a read outside the blob.
 */
#include "tokenize/tok.h"

#include <utf8proc.h>

static inline bool unit_has_leaf(uint32_t u) { return (u >> 8) & 1; }
static inline uint32_t unit_value(uint32_t u) { return u & 0x7FFFFFFFu; }
static inline uint32_t unit_label(uint32_t u) { return u & (0x80000000u | 0xFFu); }
static inline size_t unit_offset(uint32_t u) { return (size_t)((u >> 10) << ((u & (1u << 9)) >> 6)); }

static long trie_lookup(const rr_tok_charsmap *m, const uint8_t *s, size_t n, size_t *len) {
    if (!m->n_units) return -1;
    size_t pos = unit_offset(m->units[0]);
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (c == 0) break;
        pos ^= c;
        if (pos >= m->n_units) return -1;
        uint32_t u = m->units[pos];
        if (unit_label(u) != c) return -1;
        pos ^= unit_offset(u);
        if (unit_has_leaf(u)) {
            if (pos >= m->n_units) return -1;
            size_t off = unit_value(m->units[pos]);
            /* A value outside the strings or inside a multi-byte character is corrupt: no rule. */
            if (off > m->norm_len || (off < m->norm_len && (m->norm[off] & 0xC0) == 0x80)) return -1;
            size_t e = off;
            while (e < m->norm_len && m->norm[e]) e++;
            *len = e - off;
            return (long)off;
        }
    }
    return -1;
}

long rr_tok_charsmap_lookup(const rr_tok_charsmap *m, const uint8_t *s, size_t n, size_t *len) {
    return trie_lookup(m, s, n, len);
}

long rr_tok_charsmap_rule(const rr_tok_charsmap *m, const uint8_t *s, size_t n, size_t *len) {
    if (!m->n_units || !n) return -1;
    size_t pos = unit_offset(m->units[0]);
    for (size_t i = 0; i < n; i++) {
        pos ^= s[i];
        if (pos >= m->n_units) return -1;
        uint32_t u = m->units[pos];
        if (unit_label(u) != s[i]) return -1;
        pos ^= unit_offset(u);
        if (i + 1 == n) {
            if (!unit_has_leaf(u) || pos >= m->n_units) return -1;
            size_t off = unit_value(m->units[pos]), e = off;
            if (off > m->norm_len) return -1;
            while (e < m->norm_len && m->norm[e]) e++;
            *len = e - off;
            return (long)off;
        }
    }
    return -1;
}

rr_status rr_tok_charsmap_parse(rr_tok_charsmap *m, const uint8_t *blob, size_t n, const char *what) {
    memset(m, 0, sizeof *m);
    if (n > 0) {
        if (n < 4) return rr_fail(RR_ERR_FORMAT, "%s: precompiled_charsmap of %zu bytes is truncated", what, n);
        uint32_t trie_bytes = (uint32_t)blob[0] | (uint32_t)blob[1] << 8 | (uint32_t)blob[2] << 16 |
                              (uint32_t)blob[3] << 24;
        if ((size_t)trie_bytes > n - 4)
            return rr_fail(RR_ERR_FORMAT, "%s: precompiled_charsmap trie size %u exceeds the blob (%zu bytes)",
                           what, trie_bytes, n);
        size_t n_units = trie_bytes / 4, norm_len = n - 4 - trie_bytes;
        const uint8_t *norm = blob + 4 + trie_bytes;
        if (rr_utf8_valid_prefix(norm, norm_len) != norm_len)
            return rr_fail(RR_ERR_FORMAT, "%s: precompiled_charsmap strings are not valid UTF-8", what);
        m->units = rr_malloc(n_units ? n_units * 4 : 1);
        m->norm = rr_malloc(norm_len + 1);
        if (!m->units || !m->norm) goto nomem;
        for (size_t i = 0; i < n_units; i++) {
            const uint8_t *p = blob + 4 + 4 * i;
            m->units[i] = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        }
        memcpy(m->norm, norm, norm_len);
        m->norm[norm_len] = 0;
        m->n_units = n_units;
        m->norm_len = norm_len;
    }
    /* Single-code-point answers for the BMP, so the common case costs one table read. */
    m->bmp_off = rr_malloc(0x10000 * sizeof *m->bmp_off);
    m->bmp_len = rr_malloc(0x10000 * sizeof *m->bmp_len);
    if (!m->bmp_off || !m->bmp_len) goto nomem;
    for (uint32_t cp = 0; cp < 0x10000; cp++) {
        char u[4];
        size_t len = 0;
        long off = -1;
        if (cp < 0xD800 || cp > 0xDFFF) off = trie_lookup(m, (const uint8_t *)u, (size_t)rr_tok_utf8_put(cp, u), &len);
        if (off >= 0 && len > 0xFFFF) off = -1;
        m->bmp_off[cp] = (int32_t)off;
        m->bmp_len[cp] = (uint16_t)len;
    }
    return RR_OK;
nomem:
    rr_tok_charsmap_free(m);
    return rr_fail(RR_ERR_NOMEM, "%s: out of memory for the precompiled charsmap", what);
}

void rr_tok_charsmap_free(rr_tok_charsmap *m) {
    if (!m) return;
    rr_free(m->units);
    rr_free(m->norm);
    rr_free(m->bmp_off);
    rr_free(m->bmp_len);
    memset(m, 0, sizeof *m);
}

/* Looks up one code point (bytes s[0..l)). */
static inline long char_lookup(const rr_tok_charsmap *m, uint32_t cp, const uint8_t *s, size_t l, size_t *len) {
    if (cp < 0x10000) {
        *len = m->bmp_len[cp];
        return m->bmp_off[cp];
    }
    return trie_lookup(m, s, l, len);
}

static void emit_cluster(const rr_tok_charsmap *m, const uint8_t *s, size_t n, uint32_t cp0, size_t l0, rr_buf *out) {
    size_t len;
    long off;
    if (n < 6) {
        off = n == l0 ? char_lookup(m, cp0, s, n, &len) : trie_lookup(m, s, n, &len);
        if (off >= 0) {
            rr_buf_append(out, m->norm + off, len);
            return;
        }
        if (n == l0) {
            rr_buf_append(out, s, n);
            return;
        }
    }
    for (size_t i = 0; i < n;) {
        size_t l;
        uint32_t cp = rr_tok_utf8_next(s + i, n - i, &l);
        off = char_lookup(m, cp, s + i, l, &len);
        if (off >= 0) rr_buf_append(out, m->norm + off, len);
        else rr_buf_append(out, s + i, l);
        i += l;
    }
}

void rr_tok_charsmap_apply(const rr_tok_charsmap *m, const char *text, size_t n, rr_buf *out) {
    const uint8_t *s = (const uint8_t *)text;
    size_t g = 0, l0 = 0, i = 0;
    uint32_t prev = 0, cp0 = 0;
    utf8proc_int32_t state = 0;
    while (i < n) {
        size_t l;
        uint32_t cp = rr_tok_utf8_next(s + i, n - i, &l);
        if (i > g) {
            bool brk;
            if (prev < 0x80 && cp < 0x80) {
                brk = !(prev == '\r' && cp == '\n');
                state = 0;
            } else {
                brk = utf8proc_grapheme_break_stateful((utf8proc_int32_t)prev, (utf8proc_int32_t)cp, &state);
            }
            if (brk) {
                emit_cluster(m, s + g, i - g, cp0, l0, out);
                g = i;
            }
        }
        if (i == g) cp0 = cp, l0 = l;
        prev = cp;
        i += l;
    }
    if (n > g) emit_cluster(m, s + g, n - g, cp0, l0, out);
}

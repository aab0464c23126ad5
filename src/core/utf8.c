/*
 * utf8.c -- the one UTF-8 validator of the library: the length of a well-formed sequence (Unicode's
 * table 3-7: no overlongs, no surrogates, nothing above U+10FFFF), the longest valid prefix, and
 * the lossy repair of invalid input (one U+FFFD per maximal ill-formed subsequence, as Rust's
 * String::from_utf8_lossy and the WHATWG decoder do). The tokenizer, JSON output and the server's
 * request checks all use it.
 */
#include "core.h"

size_t rr_utf8_seq_len(const uint8_t *s, size_t n, size_t *bad) {
    uint8_t c = s[0];
    size_t need;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) need = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        *bad = 1;
        return 0;
    }
    size_t i = 1;
    for (; i < need; i++) {
        if (i >= n) break;
        uint8_t b = s[i];
        if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) break;
    }
    if (i == need) return need;
    *bad = i;
    return 0;
}

size_t rr_utf8_valid_prefix(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t bad, l = rr_utf8_seq_len(s + i, n - i, &bad);
        if (!l) return i;
        i += l;
    }
    return n;
}

void rr_utf8_repair(const char *s, size_t n, rr_buf *out) {
    const uint8_t *u = (const uint8_t *)s;
    size_t i = 0;
    while (i < n) {
        size_t ok = i + rr_utf8_valid_prefix(u + i, n - i);
        rr_buf_append(out, s + i, ok - i);
        i = ok;
        if (i >= n) break;
        size_t bad = 1;
        rr_utf8_seq_len(u + i, n - i, &bad);
        rr_buf_append(out, "\xEF\xBF\xBD", 3);
        i += bad;
    }
}

/*
 * buf.c -- rr_buf, the growable byte buffer that JSON output and intermediate strings are written
 * into. Appends never fail loudly: an allocation failure sets the sticky `oom` flag, so a writer
 * appends freely and checks once at the end. JSON string literals are escaped here, and invalid
 * UTF-8 is replaced (one U+FFFD per bad byte), since output may echo user text.
 */
#include "core.h"

#include <math.h>
#include <stdio.h>

static bool buf_reserve(rr_buf *b, size_t extra) {
    if (b->oom) return false;
    if (b->len + extra + 1 <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) cap *= 2;
    char *p = rr_realloc(b->data, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void rr_buf_append(rr_buf *b, const void *p, size_t n) {
    if (!buf_reserve(b, n)) return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
}

void rr_buf_puts(rr_buf *b, const char *s) { rr_buf_append(b, s, strlen(s)); }

void rr_buf_printf(rr_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !buf_reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void rr_buf_json_str(rr_buf *b, const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    rr_buf_append(b, "\"", 1);
    size_t i = 0;
    while (i < n) {
        size_t run = i;
        while (run < n && u[run] >= 0x20 && u[run] < 0x80 && u[run] != '"' && u[run] != '\\') run++;
        if (run > i) {
            rr_buf_append(b, s + i, run - i);
            i = run;
            continue;
        }
        unsigned c = u[i];
        if (c == '"') rr_buf_append(b, "\\\"", 2), i++;
        else if (c == '\\') rr_buf_append(b, "\\\\", 2), i++;
        else if (c == '\n') rr_buf_append(b, "\\n", 2), i++;
        else if (c == '\r') rr_buf_append(b, "\\r", 2), i++;
        else if (c == '\t') rr_buf_append(b, "\\t", 2), i++;
        else if (c < 0x20) rr_buf_printf(b, "\\u%04x", c), i++;
        else {
            size_t bad, l = rr_utf8_seq_len(u + i, n - i, &bad);
            if (l == 0) { /* one U+FFFD per invalid byte: JSON output stays as it always was */
                rr_buf_append(b, "\xef\xbf\xbd", 3);
                i++;
            } else {
                rr_buf_append(b, s + i, l);
                i += l;
            }
        }
    }
    rr_buf_append(b, "\"", 1);
}

void rr_buf_float(rr_buf *b, float v) {
    if (!isfinite(v)) {
        rr_buf_puts(b, "null");
        return;
    }
    rr_buf_printf(b, "%.9g", (double)v);
}

void rr_buf_free(rr_buf *b) {
    if (!b) return;
    rr_free(b->data);
    memset(b, 0, sizeof *b);
}

/* ------------------------------------------------------------------ numbers */

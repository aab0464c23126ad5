/*
 * json.c -- JSON in and out. Parsing is cJSON's (Debian's libcjson); this file adds typed field
 * readers that produce one clear message per bad field, and rr_buf, the growable buffer that JSON
 * output is written into (with escaping and UTF-8 repair, since model output may echo user text).
 */
#include "core.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>

rr_status rr_json_parse(const char *text, size_t len, const char *what, cJSON **out) {
    rr_json_init();
    const char *end = NULL;
    rr_json_oom_reset();
    cJSON *j = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (rr_json_oom_reset()) {
        cJSON_Delete(j);
        return rr_fail(RR_ERR_NOMEM, "%s: out of memory parsing JSON", what);
    }
    if (!j) {
        size_t at = end && end >= text ? (size_t)(end - text) : 0;
        return rr_fail(RR_ERR_FORMAT, "%s: invalid JSON near byte %zu", what, at);
    }
    *out = j;
    return RR_OK;
}

rr_status rr_json_get_int(const cJSON *obj, const char *key, long lo, long hi, const char *what,
                          long *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v)) return RR_ERR_NOT_FOUND;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble))
        return rr_fail(RR_ERR_FORMAT, "%s: field \"%s\" must be an integer", what, key);
    if (v->valuedouble < (double)lo || v->valuedouble > (double)hi)
        return rr_fail(RR_ERR_FORMAT, "%s: field \"%s\" = %.0f is outside [%ld, %ld]", what, key,
                       v->valuedouble, lo, hi);
    *out = (long)v->valuedouble;
    return RR_OK;
}

rr_status rr_json_get_double(const cJSON *obj, const char *key, const char *what, double *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v)) return RR_ERR_NOT_FOUND;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return rr_fail(RR_ERR_FORMAT, "%s: field \"%s\" must be a finite number", what, key);
    *out = v->valuedouble;
    return RR_OK;
}

const char *rr_json_get_str(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ------------------------------------------------------------------ rr_buf */

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

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if the bytes there are not valid UTF-8. */
static size_t utf8_valid_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t len;
    unsigned min;
    if (c >= 0xc2 && c <= 0xdf) len = 2, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef) len = 3, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4) len = 4, min = 0x10000;
    else return 0;
    if (n < len) return 0;
    unsigned cp = c & (0xff >> (len + 1));
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return len;
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
            size_t l = utf8_valid_len(u + i, n - i);
            if (l == 0) {
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

float rr_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: renormalize */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) {
                man <<= 1;
                exp--;
            }
            man &= 0x3ff;
            u = sign | (exp << 23) | (man << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (man << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

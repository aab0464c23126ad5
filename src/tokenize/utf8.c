/*
 * utf8.c -- UTF-8 plumbing for the tokenizer: encoding a code point, the character classes the Rust tokenizers take from the standard library and the
 * regex crate, and the small growable arrays every stage appends to.
 */
#include "tokenize/tok.h"

#include <utf8proc.h>

int rr_tok_utf8_put(uint32_t cp, char *out) {
    uint8_t *o = (uint8_t *)out;
    if (cp < 0x80) return o[0] = (uint8_t)cp, 1;
    if (cp < 0x800) return o[0] = (uint8_t)(0xC0 | (cp >> 6)), o[1] = (uint8_t)(0x80 | (cp & 0x3F)), 2;
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xE0 | (cp >> 12));
        o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (uint8_t)(0xF0 | (cp >> 18));
    o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

bool rr_tok_is_whitespace(uint32_t c) {
    if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0D);
    switch (c) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
        return true;
    default:
        return c >= 0x2000 && c <= 0x200A;
    }
}

bool rr_tok_is_word(uint32_t c) {
    if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (c == 0x200C || c == 0x200D) return true;
    switch (utf8proc_category((utf8proc_int32_t)c)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME: case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_PC:
        return true;
    default:
        return false;
    }
}

/* ------------------------------------------------------------------ growable arrays */

#define GROW(arr, elem_t)                                                                          \
    do {                                                                                           \
        if ((arr)->oom) return;                                                                    \
        if ((arr)->n == (arr)->cap) {                                                              \
            size_t nc = (arr)->cap ? (arr)->cap * 2 : 64;                                          \
            elem_t *nv = rr_realloc((arr)->v, nc * sizeof(elem_t));                                \
            if (!nv) {                                                                             \
                (arr)->oom = true;                                                                 \
                return;                                                                            \
            }                                                                                      \
            (arr)->v = nv;                                                                         \
            (arr)->cap = nc;                                                                       \
        }                                                                                          \
    } while (0)

void rr_tok_spans_push(rr_tok_spans *s, size_t off, size_t len, bool at0) {
    GROW(s, rr_tok_span);
    s->v[s->n++] = (rr_tok_span){(uint32_t)off, (uint32_t)len, at0};
}

void rr_tok_ids_push(rr_tok_ids *ids, int32_t id) {
    GROW(ids, int32_t);
    ids->v[ids->n++] = id;
}

void rr_tok_segs_push(rr_tok_segs *s, size_t off, size_t len, int32_t id) {
    GROW(s, rr_tok_seg);
    s->v[s->n++] = (rr_tok_seg){off, len, id};
}

/*
 * rerank_util.h -- small utilities of librerank that its own upper layers (server, hub, eval) and
 * the rerank CLI share with the library, so that every JSON line the programs write is escaped by
 * the same code: rr_buf (a growable buffer with JSON string and float writers), whole-file reads,
 * a monotonic clock, JSON parsing with a message, and the allocator every library object is made
 * with (memory the library hands out, e.g. by rr_file_read, is released with rr_free).
 *
 * These are not needed to score or rank; bindings can ignore this header.
 */
#ifndef RERANK_UTIL_H
#define RERANK_UTIL_H

#include "rerank.h"

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define RR_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define RR_PRINTF(f, a)
#endif

struct cJSON;

#define RR_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define RR_MIN(a, b) ((a) < (b) ? (a) : (b))
#define RR_MAX(a, b) ((a) > (b) ? (a) : (b))

/* ------------------------------------------------------------------ memory */

/* All library allocations go through these so tests can make the Nth one fail. They behave like the
 * libc functions (rr_free accepts NULL). */
RR_API void *rr_malloc(size_t n);
RR_API void *rr_calloc(size_t n, size_t size);
RR_API void *rr_realloc(void *p, size_t n);
RR_API void rr_free(void *p);
RR_API char *rr_strdup(const char *s);
/* 64-byte aligned block for SIMD scratch; free with rr_aligned_free. */
RR_API void *rr_aligned_alloc(size_t n);
RR_API void rr_aligned_free(void *p);

/* ------------------------------------------------------------------ files, time, JSON in */

/* Reads a whole file into a NUL-terminated buffer owned by the caller (rr_free). Fails with
 * RR_ERR_NOT_FOUND if it does not exist, RR_ERR_RANGE if it is larger than max_bytes. */
RR_API rr_status rr_file_read(const char *path, size_t max_bytes, char **out, size_t *out_len);

/* Monotonic clock in seconds. */
RR_API double rr_now(void);

/* A byte count for people, in powers of 1000 as download tools print it: "512 B", "1.5 MB",
 * "12.3 GB" (out always NUL-terminated when cap > 0). */
RR_API void rr_fmt_bytes(char *out, size_t cap, uint64_t n);

/* Parses JSON text; on failure records "<what>: invalid JSON near byte N". The result is freed with
 * cJSON_Delete. */
RR_API rr_status rr_json_parse(const char *text, size_t len, const char *what, struct cJSON **out);

/* Parses JSON from users strictly (src/core/json_strict.c): the text must be exactly one RFC 8259
 * value (only whitespace after it), strings hold no raw control character, no "\u0000" (unless
 * flags has RR_JSON_ALLOW_NUL) and only valid UTF-8, and no object repeats a key. Every refusal is
 * RR_ERR_FORMAT with a message "<what>: ... at \"<path>\"" naming where ("documents[2].text"). The
 * server reads request bodies with it; JSON-lines readers may too. */
enum { RR_JSON_ALLOW_NUL = 1 };
RR_API rr_status rr_json_parse_strict(const char *text, size_t len, const char *what, unsigned flags,
                                      struct cJSON **out);

/* ------------------------------------------------------------------ rr_buf (JSON out) */

/* Growable byte buffer used for JSON output and strings. */
typedef struct rr_buf {
    char *data;
    size_t len, cap;
    bool oom; /* sticky: an append failed */
} rr_buf;
RR_API void rr_buf_append(rr_buf *b, const void *p, size_t n);
RR_API void rr_buf_puts(rr_buf *b, const char *s);
RR_API void rr_buf_printf(rr_buf *b, const char *fmt, ...) RR_PRINTF(2, 3);
/* Appends s as a JSON string literal (quotes included), escaping as JSON requires. Invalid UTF-8
 * bytes become U+FFFD. */
RR_API void rr_buf_json_str(rr_buf *b, const char *s, size_t n);
/* Appends a float with enough digits to round-trip. */
RR_API void rr_buf_float(rr_buf *b, float v);
RR_API void rr_buf_free(rr_buf *b);

#ifdef __cplusplus
}
#endif

#endif /* RERANK_UTIL_H */

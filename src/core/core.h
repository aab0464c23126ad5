/*
 * core.h -- shared plumbing for every module of librerank: error reporting, allocation with fault
 * injection, whole-file reads and memory maps, float format conversions and small JSON helpers.
 * Nothing here knows about models or tokens; every other module may include it.
 */
#ifndef RR_CORE_H
#define RR_CORE_H

#include "rerank.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct cJSON;

#define RR_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define RR_MIN(a, b) ((a) < (b) ? (a) : (b))
#define RR_MAX(a, b) ((a) > (b) ? (a) : (b))

#if defined(__GNUC__)
#define RR_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define RR_PRINTF(f, a)
#endif

/* ------------------------------------------------------------------ errors */

/* Records a message for rr_errmsg() on this thread and returns st, so callers can write
 * `return rr_fail(RR_ERR_FORMAT, "%s: tensor %s: ...", path, name);`. */
rr_status rr_fail(rr_status st, const char *fmt, ...) RR_PRINTF(2, 3);
/* Prefixes the current message with "prefix: " (to add context while passing an error up). */
void rr_errmsg_prefix(const char *fmt, ...) RR_PRINTF(1, 2);
void rr_errmsg_clear(void);

/* Programmer errors only: print file:line and abort. */
#define RR_ASSERT(x)                                                                               \
    do {                                                                                           \
        if (!(x)) rr_assert_fail(__FILE__, __LINE__, #x);                                          \
    } while (0)
void rr_assert_fail(const char *file, int line, const char *expr) __attribute__((noreturn));

/* ------------------------------------------------------------------ memory */

/* All library allocations go through these so tests can make the Nth one fail. They behave like the
 * libc functions (rr_free accepts NULL). */
void *rr_malloc(size_t n);
void *rr_calloc(size_t n, size_t size);
void *rr_realloc(void *p, size_t n);
void rr_free(void *p);
char *rr_strdup(const char *s);
/* 64-byte aligned block for SIMD scratch; free with rr_aligned_free. */
void *rr_aligned_alloc(size_t n);
void rr_aligned_free(void *p);

/* Test hook: the n-th allocation from now on (1-based) and every later one fail; 0 disables.
 * Returns the number of allocations made since the last call (to size fault-injection loops). */
long rr_alloc_fail_after(long n);

/* Routes cJSON's allocations through rr_malloc (called once by the library; idempotent). */
void rr_json_init(void);
/* True if a cJSON allocation failed on this thread since the last call (cJSON reports OOM as a
 * parse failure; this tells the two apart). Resets the flag. */
bool rr_json_oom_reset(void);

/* ------------------------------------------------------------------ files */

/* Reads a whole file into a NUL-terminated buffer owned by the caller (rr_free). Fails with
 * RR_ERR_NOT_FOUND if it does not exist, RR_ERR_RANGE if it is larger than max_bytes. */
rr_status rr_file_read(const char *path, size_t max_bytes, char **out, size_t *out_len);

/* A read-only memory map of a whole file; the descriptor stays open for rr_mmap_pread. */
typedef struct rr_mmap {
    const uint8_t *data;
    size_t size;
    int fd;
} rr_mmap;
rr_status rr_mmap_open(const char *path, rr_mmap *out);
void rr_mmap_close(rr_mmap *m);
/* Copies n bytes at offset off of the mapped file into dst with pread(2): the bytes are read without
 * mapping pages into the process (and its resident set). Returns false on a short read. */
bool rr_mmap_pread(const rr_mmap *m, size_t off, void *dst, size_t n);

bool rr_file_exists(const char *path);
/* Joins dir and name with one '/', into a buffer owned by the caller (rr_free), NULL on OOM. */
char *rr_path_join(const char *dir, const char *name);

/* ------------------------------------------------------------------ numbers */

static inline float rr_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Round to nearest even, NaN kept quiet. */
static inline uint16_t rr_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

float rr_f16_to_f32(uint16_t h);

/* ------------------------------------------------------------------ JSON (cJSON) helpers */

/* Parses JSON text; on failure records "<what>: invalid JSON near byte N". The result is freed with
 * cJSON_Delete. */
rr_status rr_json_parse(const char *text, size_t len, const char *what, struct cJSON **out);

/* Parses JSON from users strictly (json_strict.c): the text must be exactly one RFC 8259 value
 * (only whitespace after it), strings hold no raw control character, no "\u0000" (unless flags has
 * RR_JSON_ALLOW_NUL) and only valid UTF-8, and no object repeats a key. Every refusal is
 * RR_ERR_FORMAT with a message "<what>: ... at \"<path>\"" naming where ("documents[2].text"). */
enum { RR_JSON_ALLOW_NUL = 1 };
rr_status rr_json_parse_strict(const char *text, size_t len, const char *what, unsigned flags,
                               struct cJSON **out);

/* Reads an integer field. Missing: returns RR_ERR_NOT_FOUND without recording a message (callers
 * decide whether that is an error). Present but not an integer in [lo, hi]: RR_ERR_FORMAT with a
 * message naming `what` and the field. */
rr_status rr_json_get_int(const struct cJSON *obj, const char *key, long lo, long hi, const char *what,
                          long *out);
rr_status rr_json_get_double(const struct cJSON *obj, const char *key, const char *what, double *out);
/* Returns the string value or NULL when missing or not a string. */
const char *rr_json_get_str(const struct cJSON *obj, const char *key);

/* Growable byte buffer used for JSON output and strings. */
typedef struct rr_buf {
    char *data;
    size_t len, cap;
    bool oom; /* sticky: an append failed */
} rr_buf;
void rr_buf_append(rr_buf *b, const void *p, size_t n);
void rr_buf_puts(rr_buf *b, const char *s);
void rr_buf_printf(rr_buf *b, const char *fmt, ...) RR_PRINTF(2, 3);
/* Appends s as a JSON string literal (quotes included), escaping as JSON requires. Invalid UTF-8
 * bytes become U+FFFD. */
void rr_buf_json_str(rr_buf *b, const char *s, size_t n);
/* Appends a float with enough digits to round-trip. */
void rr_buf_float(rr_buf *b, float v);
void rr_buf_free(rr_buf *b);

/* Monotonic clock in seconds. */
double rr_now(void);

#endif /* RR_CORE_H */

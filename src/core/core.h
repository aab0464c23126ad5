/*
 * core.h -- shared plumbing for every module of librerank: error reporting, allocation with fault
 * injection, whole-file reads and memory maps, float format conversions and small JSON helpers.
 * Nothing here knows about models or tokens; every other module may include it.
 */
#ifndef RR_CORE_H
#define RR_CORE_H

#include "rerank.h"
#include "rerank_util.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct cJSON;



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

/* Test hook: the n-th allocation from now on (1-based) and every later one fail; 0 disables.
 * Returns the number of allocations made since the last call (to size fault-injection loops). */
long rr_alloc_fail_after(long n);

/* Routes cJSON's allocations through rr_malloc (called once by the library; idempotent). */
void rr_json_init(void);
/* True if a cJSON allocation failed on this thread since the last call (cJSON reports OOM as a
 * parse failure; this tells the two apart). Resets the flag. */
bool rr_json_oom_reset(void);

/* ------------------------------------------------------------------ files */

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

/* Reads an integer field. Missing: returns RR_ERR_NOT_FOUND without recording a message (callers
 * decide whether that is an error). Present but not an integer in [lo, hi]: RR_ERR_FORMAT with a
 * message naming `what` and the field. */
rr_status rr_json_get_int(const struct cJSON *obj, const char *key, long lo, long hi, const char *what,
                          long *out);
rr_status rr_json_get_double(const struct cJSON *obj, const char *key, const char *what, double *out);
/* config.json readers built on rr_json_get_int, named by the file (`what`) first: a required
 * integer (missing: RR_ERR_FORMAT "missing field") and an optional one (missing or null: dflt). */
rr_status rr_json_need_int(const struct cJSON *obj, const char *what, const char *key, long lo, long hi, int *out);
rr_status rr_json_opt_int(const struct cJSON *obj, const char *what, const char *key, long lo, long hi, int dflt,
                          int *out);
/* Returns the string value or NULL when missing or not a string. */
const char *rr_json_get_str(const struct cJSON *obj, const char *key);

/* rr_buf (buf.c), rr_file_read, rr_now, rr_json_parse, rr_json_parse_strict and the allocator are
 * declared in rerank_util.h. */

/* ------------------------------------------------------------------ UTF-8 (utf8.c) */

/* Length of the well-formed UTF-8 sequence at s (1..4; n > 0 bytes available), or 0 with *bad set
 * to the length of the maximal ill-formed prefix (what one U+FFFD replaces). */
size_t rr_utf8_seq_len(const uint8_t *s, size_t n, size_t *bad);
/* Length of the longest valid UTF-8 prefix of s. */
size_t rr_utf8_valid_prefix(const uint8_t *s, size_t n);
/* Appends s to out with every maximal ill-formed subsequence replaced by U+FFFD. */
void rr_utf8_repair(const char *s, size_t n, rr_buf *out);


#endif /* RR_CORE_H */

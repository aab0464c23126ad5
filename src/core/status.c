/*
 * status.c -- status names and the per-thread error message behind rr_errmsg().
 *
 * Every failing function records one message naming what failed (file, tensor, field) with rr_fail()
 * and returns the status, so errors travel up as plain return codes (as in SQLite) and the message
 * reaches the user unchanged. The message lives in a thread-local buffer: no allocation, no locks.
 */
#include "core.h"

#include <stdio.h>
#include <stdlib.h>

#define RR_ERRMSG_MAX 1024

static _Thread_local char g_errmsg[RR_ERRMSG_MAX];

const char *rr_version(void) { return RR_VERSION; }
int rr_version_number(void) { return RR_VERSION_NUMBER; }

const char *rr_status_str(rr_status st) {
    switch (st) {
    case RR_OK: return "ok";
    case RR_ERR_IO: return "i/o error";
    case RR_ERR_FORMAT: return "malformed input";
    case RR_ERR_NOMEM: return "out of memory";
    case RR_ERR_INVALID: return "invalid argument";
    case RR_ERR_UNSUPPORTED: return "unsupported";
    case RR_ERR_RANGE: return "out of range";
    case RR_ERR_NETWORK: return "network error";
    case RR_ERR_NOT_FOUND: return "not found";
    case RR_ERR_CANCELLED: return "cancelled";
    }
    return "unknown status";
}

const char *rr_errmsg(void) { return g_errmsg; }

void rr_errmsg_clear(void) { g_errmsg[0] = 0; }

rr_status rr_fail(rr_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_errmsg, sizeof g_errmsg, fmt, ap);
    va_end(ap);
    return st;
}

void rr_errmsg_prefix(const char *fmt, ...) {
    char prefix[RR_ERRMSG_MAX], old[RR_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, g_errmsg, sizeof old);
    size_t n = strlen(prefix);
    if (n > sizeof g_errmsg - 3) n = sizeof g_errmsg - 3;
    memcpy(g_errmsg, prefix, n);
    memcpy(g_errmsg + n, ": ", 2);
    size_t room = sizeof g_errmsg - n - 3;
    size_t m = strlen(old);
    if (m > room) m = room;
    memcpy(g_errmsg + n + 2, old, m);
    g_errmsg[n + 2 + m] = 0;
}

void rr_assert_fail(const char *file, int line, const char *expr) {
    fprintf(stderr, "rerank: assertion failed at %s:%d: %s\n", file, line, expr);
    abort();
}

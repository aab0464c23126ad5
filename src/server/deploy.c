/*
 * deploy.c -- the pieces of `rerank serve` that exist for running it in a pool (deploy.h): the
 * embedded OpenAPI document and /docs page, the JSON access-log line, request ids.
 *
 * openapi.json and docs.html are turned into byte arrays at build time (the Makefile writes
 * build/gen/<name>.inc with od), so the binary carries them and /docs needs no network.
 */
#include "server/deploy.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char g_openapi[] = {
#include "openapi.json.inc"
    0};
static const char g_docs[] = {
#include "docs.html.inc"
    0};

const char *rr_srv_openapi_json(size_t *len) {
    if (len) *len = sizeof g_openapi - 1;
    return g_openapi;
}

const char *rr_srv_docs_html(size_t *len) {
    if (len) *len = sizeof g_docs - 1;
    return g_docs;
}

static void put_str(rr_buf *b, const char *key, const char *v) {
    rr_buf_printf(b, ",\"%s\":", key);
    if (v) rr_buf_json_str(b, v, strlen(v));
    else rr_buf_puts(b, "null");
}

void rr_srv_access_json(rr_buf *b, const rr_srv_access *a) {
    time_t sec = (time_t)a->t_start;
    int ms = (int)((a->t_start - (double)sec) * 1000.0);
    if (ms < 0) ms = 0;
    if (ms > 999) ms = 999;
    struct tm tm;
    gmtime_r(&sec, &tm);
    char ts[40];
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    rr_buf_printf(b, "{\"time\":\"%s.%03dZ\"", ts, ms);
    put_str(b, "method", a->method);
    put_str(b, "route", a->route);
    put_str(b, "path", a->path);
    rr_buf_printf(b, ",\"status\":%d,\"bytes\":%zu", a->status, a->bytes);
    if (a->documents >= 0) rr_buf_printf(b, ",\"documents\":%d", a->documents);
    if (a->tokens >= 0) rr_buf_printf(b, ",\"tokens\":%ld", a->tokens);
    if (a->windows >= 0) rr_buf_printf(b, ",\"windows\":%d", a->windows);
    if (a->queue_ms >= 0) rr_buf_printf(b, ",\"queue_ms\":%.3f", a->queue_ms);
    rr_buf_printf(b, ",\"total_ms\":%.3f", a->total_ms < 0 ? 0.0 : a->total_ms);
    put_str(b, "request_id", a->request_id);
    put_str(b, "client", a->client);
    rr_buf_puts(b, "}\n");
}

/* Drawn once per process: replicas started at the same moment still differ (pid, clock, ASLR).
 * pthread_once because every HTTP thread may ask for the first request id at the same time. */
static uint32_t g_prefix;
static pthread_once_t g_prefix_once = PTHREAD_ONCE_INIT;

static void draw_prefix(void) {
    uint64_t x = (uint64_t)getpid() * 0x9E3779B97F4A7C15ull ^ (uint64_t)time(NULL) ^
                 (uint64_t)(uintptr_t)&g_prefix ^ (uint64_t)clock();
    FILE *f = fopen("/dev/urandom", "rb");
    if (f) {
        uint64_t r = 0;
        if (fread(&r, sizeof r, 1, f) == 1) x ^= r;
        fclose(f);
    }
    x ^= x >> 33;
    g_prefix = (uint32_t)x;
}

static uint32_t process_prefix(void) {
    pthread_once(&g_prefix_once, draw_prefix);
    return g_prefix;
}

void rr_srv_request_id(uint64_t counter, char out[40]) {
    snprintf(out, 40, "%08x%08llx", process_prefix(), (unsigned long long)(counter & 0xffffffffull));
}

int rr_srv_request_id_ok(const char *given, char out[132]) {
    if (!given) return 0;
    size_t n = strlen(given);
    if (n == 0 || n > 128) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)given[i];
        if (c < 0x21 || c > 0x7e || c == '"' || c == '\\') return 0;
    }
    memcpy(out, given, n + 1);
    return 1;
}

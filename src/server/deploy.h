/*
 * deploy.h -- what `rerank serve` offers to the tools that run it in a pool (deploy.c):
 * the OpenAPI document and the /docs page, both embedded in the binary from files of this folder
 * (openapi.json, docs.html) so they work offline; the JSON access-log line; and request ids.
 * Kept apart from http.c so the HTTP edge stays about requests, and these stay pure functions
 * that unit tests reach without a socket.
 */
#ifndef RR_SRV_DEPLOY_H
#define RR_SRV_DEPLOY_H

#include "core/core.h"

#include <stddef.h>
#include <stdint.h>

/* The OpenAPI 3 document of every route (src/server/openapi.json), and the /docs page
 * (src/server/docs.html). Static, NUL-terminated; *len gets the length without the NUL. */
const char *rr_srv_openapi_json(size_t *len);
const char *rr_srv_docs_html(size_t *len);

/* One finished request, for the access log. Negative numbers are "not known" and left out. */
typedef struct rr_srv_access {
    double t_start;          /* wall clock (seconds since the epoch) when the request arrived */
    const char *client;      /* address of the peer */
    const char *method;
    const char *route;       /* the canonical route ("/v1/rerank"), or "other" */
    const char *path;        /* as requested, may hold a query string */
    int status;
    size_t bytes;            /* response body */
    int documents;
    long tokens;
    int windows;
    double queue_ms, total_ms;
    const char *request_id;
} rr_srv_access;

/* Writes one JSON object and a newline: {"time", "method", "route", "path", "status", "bytes",
 * "documents", "tokens", "windows", "queue_ms", "total_ms", "request_id", "client"}. Strings are
 * escaped (and repaired when not UTF-8), so a hostile path cannot break the line. */
void rr_srv_access_json(rr_buf *b, const rr_srv_access *a);

/* A request id when the client sent none: 16 hex digits of a per-process random prefix and a
 * counter, unique across the replicas of a pool. */
void rr_srv_request_id(uint64_t counter, char out[40]);
/* Copies a client's X-Request-Id if it is 1-128 printable ASCII characters without quotes or
 * backslashes (anything else is replaced by a generated id). Returns 1 if copied. */
int rr_srv_request_id_ok(const char *given, char out[132]);

#endif /* RR_SRV_DEPLOY_H */

/*
 * request.h -- the JSON dialects of `rerank serve`, as pure functions: a request body becomes a typed
 * rr_srv_request (or an HTTP status and a message), ranked results become a response body. No
 * sockets here, so every dialect and every bad input is unit-tested without a server.
 *
 * Dialects (spec/api.md §0-§3):
 *   RR_SRV_API_V1   POST /v1/rerank: Jina and Cohere v1 {model, query, documents, top_n,
 *                   return_documents, rank_fields, max_chunks_per_doc}
 *   RR_SRV_API_V2   POST /v2/rerank: Cohere v2 {model, query, documents, top_n, max_tokens_per_doc,
 *                   priority}; results carry no document unless return_documents is true
 *   RR_SRV_API_TEI  POST /rerank with `texts`: {query, texts, raw_scores, return_text, truncate,
 *                   truncation_direction}; the answer is a bare array [{index, score, text?}]
 * Long documents: never refused for length. By default the model's rule (RR_LONG_DOC_AUTO: windows
 * for encoders, the reference's cut for decoder rerankers); TEI `truncate: true` cuts each
 * (query, text) pair to the model's length instead, keeping the text's start (truncation_direction
 * "Right", the default) or its end ("Left"); `truncate: false` asks for the windows where TEI would
 * answer 413/422, as does Cohere v1's `max_chunks_per_doc` (a document keeps its first N windows).
 * `max_tokens_per_doc` (V2, default 4096 as Cohere; honoured on V1 when given)
 * cuts each document to that many of its own tokens before pairing; what remains is windowed.
 * POST /rerank without `texts` is read as V1 (rr_srv_parse picks).
 */
#ifndef RR_SRV_REQUEST_H
#define RR_SRV_REQUEST_H

#include "core/core.h"

struct cJSON;

typedef enum rr_srv_api {
    RR_SRV_API_V1 = 0,
    RR_SRV_API_V2 = 1,
    RR_SRV_API_TEI = 2,
    RR_SRV_API_AUTO = 3, /* /rerank: TEI if the body has "texts", else V1 */
} rr_srv_api;

typedef struct rr_srv_request {
    rr_srv_api api;           /* resolved: never AUTO after parsing */
    struct cJSON *root;       /* the parsed body; owns the strings below */
    rr_text query;
    int n_docs;
    rr_text *docs;            /* [n_docs], pointing into root or into owned[] */
    const struct cJSON **doc_items; /* [n_docs] the JSON item each document came from (echoed back) */
    char **owned;             /* [n_docs] texts built from rank_fields, else NULL entries */
    int top_n;                /* 0 = all */
    int return_documents;     /* echo documents (V1/V2) or texts (TEI return_text) */
    int raw_scores;           /* logits instead of sigmoid */
    rr_long_doc long_doc;     /* TEI truncate + truncation_direction, max_chunks_per_doc; else AUTO */
    int max_doc_tokens;       /* Cohere max_tokens_per_doc (V2 default 4096); 0 = no cap */
    int max_windows;          /* Cohere v1 max_chunks_per_doc; 0 = not sent (every window) */
    rr_text instruction;      /* any shape: a decoder prompt's instruction; text NULL = not given */
} rr_srv_request;

typedef struct rr_srv_limits {
    int max_docs;             /* documents in one request */
} rr_srv_limits;

/* Parses and validates a body. Returns 0 and fills *out (release with rr_srv_request_free), or an
 * HTTP status (400 malformed JSON or invalid UTF-8, 413 over a limit, 422 wrong or missing field,
 * 500 out of memory) with a message in err[cap] that names the field. */
int rr_srv_parse(const char *body, size_t len, rr_srv_api api, const rr_srv_limits *lim,
                 rr_srv_request *out, char *err, size_t cap);
void rr_srv_request_free(rr_srv_request *r);

/* Writes the success body for ranked results (already sorted and cut to top_n). */
void rr_srv_format_results(rr_buf *b, const rr_srv_request *r, const char *model, const char *id,
                           const rr_rank_result *res, int n_res, long total_tokens);

/* Writes an error body carrying every field clients look for: {"detail", "message", "error",
 * "error_type"} (FastAPI/Jina, Cohere, TEI). */
void rr_srv_format_error(rr_buf *b, int status, const char *msg);
/* TEI's error_type for a status ("validation", "overloaded", ...). */
const char *rr_srv_error_type(int status);

/* Checks that every string and key in a JSON tree is valid UTF-8; on failure writes the path of the
 * first bad value ("documents[2].text") into path[cap] and returns 0. */
int rr_srv_json_utf8_ok(const struct cJSON *j, char *path, size_t cap);

/* Compares a received Authorization header against "Bearer KEY" in time independent of where they
 * differ (the scheme is case-insensitive). */
int rr_srv_auth_ok(const char *header, const char *key);

#endif /* RR_SRV_REQUEST_H */

/*
 * rerank_hub.h -- models by name: downloads from the Hugging Face hub into its cache (librerank_hub,
 * which links libcurl), and the resolution of a -m argument (a folder or ORG/NAME[@REVISION]) to a
 * model folder that rr_model_load reads. Kept out of the core library so that scoring never pulls
 * in a network stack.
 */
#ifndef RERANK_HUB_H
#define RERANK_HUB_H

#include "rerank.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The model `rerank serve` and `rerank rank` use when no -m is given. */
#define RR_DEFAULT_MODEL "jinaai/jina-reranker-v2-base-multilingual"

typedef enum rr_pull_event {
    RR_PULL_EVENT_CACHED = 0,   /* the file was already in the cache (done = total = its size) */
    RR_PULL_EVENT_PROGRESS = 1, /* bytes arrived: done of total (total 0 when the hub gave no size) */
    RR_PULL_EVENT_DONE = 2,     /* the file was downloaded, checked and moved into the cache */
    RR_PULL_EVENT_ABSENT = 3,   /* an optional file the repository does not have */
} rr_pull_event;

/* Called on the pulling thread; `file` is valid during the call only. Return non-zero to stop the
 * pull with RR_ERR_CANCELLED (the partial download is kept and resumed next time). */
typedef int (*rr_pull_progress_fn)(void *user, rr_pull_event ev, const char *file, uint64_t done,
                                   uint64_t total);

typedef struct rr_pull_params {
    const char *revision;  /* branch, tag or commit sha; NULL = "main" */
    const char *endpoint;  /* NULL = $HF_ENDPOINT, else https://huggingface.co */
    const char *token;     /* NULL = $HF_TOKEN, else the file $HF_HOME/token; "" = no token */
    const char *cache_dir; /* NULL = $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub */
    bool offline;          /* use the cache only (default false); $HF_HUB_OFFLINE=1 has the same effect */
    rr_pull_progress_fn progress; /* may be NULL */
    void *progress_user;
} rr_pull_params;

RR_API rr_pull_params rr_pull_default_params(void);

/* Downloads a model repository into the Hugging Face cache (the layout huggingface_hub uses, so
 * either tool reuses the other's files): config.json, tokenizer.json, tokenizer_config.json,
 * special_tokens_map.json and README.md (the model card, which names decoder rerankers) when
 * present, and the safetensors weights (model.safetensors, or
 * model.safetensors.index.json and every shard it names; pickle .bin weights are never fetched).
 * Files already cached are not downloaded again; interrupted transfers resume; LFS files are checked
 * against their sha256. On success writes the snapshot folder (NUL-terminated) into
 * snapshot_dir[cap], which the caller owns (NULL: not wanted; too small: RR_ERR_RANGE). Offline, succeeds only when the cache holds the
 * complete snapshot. Errors: RR_ERR_INVALID (bad repo id), RR_ERR_NOT_FOUND (unknown repository or
 * revision, no safetensors weights, not cached while offline), RR_ERR_NETWORK (unreachable, HTTP
 * error, gated without a token), RR_ERR_FORMAT (corrupted download), RR_ERR_IO (disk full). */
RR_API rr_status rr_pull(const char *repo_id, const rr_pull_params *params, char *snapshot_dir, size_t cap);

/* Turns a -m argument into a model folder in dir[cap] (caller-owned):
 *   - an existing folder: itself;
 *   - "ORG/NAME" or "ORG/NAME@REVISION": the cached snapshot of refs/REVISION (default main) when it
 *     is complete, with no network access; otherwise rr_pull() with default parameters when
 *     allow_download is set and $HF_HUB_OFFLINE is not;
 *   - NULL or "": RR_DEFAULT_MODEL.
 * Fails with RR_ERR_NOT_FOUND for a valid repo id that is not cached (and may not be downloaded),
 * RR_ERR_INVALID for a name that is neither a folder nor a repo id. */
RR_API rr_status rr_hub_resolve(const char *name_or_dir, bool allow_download, char *dir, size_t cap);

/* ------------------------------------------------------------------ scoring through a server */

/* Any server that speaks the Jina / Cohere POST /v1/rerank shape: a `rerank serve` pool behind a
 * load balancer, or another provider (libcurl, so it lives here and not in the core library). */
typedef struct rr_remote_params {
    const char *url;     /* "http://host:port" (POST {url}/v1/rerank) or a full URL ending in "rerank" */
    const char *api_key; /* sent as "Authorization: Bearer KEY"; NULL or "": no header */
    const char *model;   /* the request's "model" field; NULL: "rerank" */
    int concurrency;     /* requests in flight at once (default 4) */
    int max_retries;     /* per request, on 429, 502, 503, 504 and connection errors (default 8) */
    double timeout_s;    /* per attempt (default 600) */
    bool raw;            /* ask for logits ("raw_scores": true; a server that ignores it sends sigmoids) */
    int top_n;           /* "top_n" (0: all documents) */
    int max_doc_tokens;  /* "max_tokens_per_doc" (0: not sent) */
    int max_windows;     /* "max_chunks_per_doc" (0: not sent) */
} rr_remote_params;

RR_API rr_remote_params rr_remote_default_params(void);

/* One query and its documents; the results are written by rr_remote_rank. */
typedef struct rr_remote_query {
    rr_text query;
    const rr_text *docs;
    int n_docs;
    rr_rank_result *results; /* [n_docs], owned by the caller: sorted as the server answered */
    int n_results;
    long total_tokens;       /* the answer's usage.total_tokens (0 when absent) */
} rr_remote_query;

/* Ranks every query through the server, `concurrency` requests in flight. A request answered 429,
 * 502, 503 or 504, or whose connection failed, is sent again after a backoff (0.2 s doubling up to
 * 10 s with jitter, or the answer's Retry-After when longer), up to max_retries times. Returns
 * RR_OK when every query has its results; else RR_ERR_NETWORK (unreachable, retries exhausted, an
 * HTTP error: the message names the query and quotes the server's detail), RR_ERR_FORMAT (an answer
 * that is not the rerank shape, or names an index out of range or twice), RR_ERR_INVALID (bad
 * parameters) or RR_ERR_NOMEM. progress (may be NULL) is called after each answered query. */
RR_API rr_status rr_remote_rank(const rr_remote_params *p, rr_remote_query *queries, int n_queries,
                                void (*progress)(void *user, int done, int total), void *user);

#ifdef __cplusplus
}
#endif

#endif /* RERANK_HUB_H */

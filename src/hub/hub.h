/*
 * hub.h -- internals of the Hugging Face hub client behind rr_pull() and rr_hub_resolve().
 *
 * The cache is the one huggingface_hub writes, so files fetched by the Python tools are reused and
 * the other way round:
 *
 *     <cache>/models--ORG--NAME/blobs/<etag>                    file contents, named by the hub's ETag
 *     <cache>/models--ORG--NAME/blobs/<etag>.incomplete         a transfer in progress (resumable)
 *     <cache>/models--ORG--NAME/refs/<revision>                 the commit sha the revision pointed at
 *     <cache>/models--ORG--NAME/snapshots/<sha>/<file>          relative symlink to ../../blobs/<etag>
 *     <cache>/models--ORG--NAME/.no_exist/<sha>/<file>          empty: the hub said the file is absent
 *     <cache>/.locks/models--ORG--NAME/<etag>.lock              flock(2) held while a blob is written
 *
 * The pure parts (names, paths, header parsing, sha256) are separate from the network so the unit
 * tests reach them without a server.
 */
#ifndef RR_HUB_H
#define RR_HUB_H

#include "core/core.h"
#include "rerank_hub.h"

#include <stdint.h>

/* ------------------------------------------------------------------ sha256 (FIPS 180-4) */

typedef struct rr_hub_sha256 {
    uint32_t h[8];
    uint64_t n_bytes;  /* message length so far */
    uint8_t buf[64];   /* partial block */
    size_t buf_len;
} rr_hub_sha256;

void rr_hub_sha256_init(rr_hub_sha256 *s);
void rr_hub_sha256_update(rr_hub_sha256 *s, const void *data, size_t n);
/* Writes the digest as 64 lowercase hex digits and a NUL into hex[65]. */
void rr_hub_sha256_final_hex(rr_hub_sha256 *s, char hex[65]);

/* ------------------------------------------------------------------ names and paths */

/* Checks a repo id the way the hub does: "NAME" or "ORG/NAME", each part made of letters, digits,
 * '-', '_' and '.', neither starting nor ending with '-' or '.', no "--" or "..", at most 96
 * characters. On failure records a message saying what is wrong and returns RR_ERR_INVALID. */
rr_status rr_hub_check_repo_id(const char *repo_id);

/* Checks a revision (branch, tag, commit or "refs/pr/N"): non-empty, printable, no "..", no leading
 * or trailing '/', at most 255 characters. */
rr_status rr_hub_check_revision(const char *rev);

/* Checks a file name taken from the hub (a shard named by the index): relative, '/'-separated, no
 * empty, "." or ".." component, no control characters or backslashes. */
rr_status rr_hub_check_filename(const char *name);

/* 1 when s is 40 lowercase hex digits (a full commit sha). */
int rr_hub_is_commit(const char *s);
/* 1 when s is 64 hex digits (a sha256, the ETag of an LFS file). */
int rr_hub_is_sha256(const char *s);

/* The cache root: $HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
 * $HOME/.cache/huggingface/hub. RR_ERR_NOT_FOUND when none of these is set. */
rr_status rr_hub_cache_root(char *out, size_t cap);

/* "<cache>/models--ORG--NAME" (repo_id must be valid). RR_ERR_RANGE when it does not fit. */
rr_status rr_hub_repo_folder(const char *cache, const char *repo_id, char *out, size_t cap);

/* The symlink target of a snapshot entry for `file` pointing at blob `etag`:
 * "../../blobs/<etag>", with one more "../" per '/' in file. */
rr_status rr_hub_blob_link(const char *file, const char *etag, char *out, size_t cap);

/* "<endpoint>/<repo_id>/resolve/<revision>/<file>", the revision percent-encoded whole ("refs/pr/1"
 * -> "refs%2Fpr%2F1") and the file encoded with '/' kept, as huggingface_hub does. */
rr_status rr_hub_resolve_url(const char *endpoint, const char *repo_id, const char *revision,
                             const char *file, char *out, size_t cap);

/* The hub endpoint: $HF_ENDPOINT or https://huggingface.co, without trailing '/'. */
void rr_hub_endpoint(char *out, size_t cap);

/* 1 when an environment value means "on" (1, true, yes, on; any case), as huggingface_hub reads
 * HF_HUB_OFFLINE. */
int rr_hub_env_true(const char *v);

/* ------------------------------------------------------------------ HTTP metadata */

/* What the hub's answer to HEAD .../resolve/<rev>/<file> says about a file. */
typedef struct rr_hub_meta {
    long status;          /* HTTP status of the last response */
    char commit[64];      /* X-Repo-Commit */
    char etag[160];       /* X-Linked-Etag (LFS sha256) or else ETag, quotes and W/ removed */
    int linked;           /* 1 when the etag came from X-Linked-Etag (an LFS file) */
    int64_t size;         /* X-Linked-Size or else Content-Length; -1 when unknown */
    int64_t linked_size;  /* X-Linked-Size, -1 when absent (kept apart: Content-Length of a 302 is
                             the redirect body's) */
    char location[2048];  /* Location of a redirect */
    char error_code[64];  /* X-Error-Code: RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo */
    char error_msg[256];  /* X-Error-Message */
    int64_t range_start;  /* first byte of a 206 answer (Content-Range), -1 when absent */
} rr_hub_meta;

void rr_hub_meta_reset(rr_hub_meta *m);
/* Feeds one raw header line ("Name: value\r\n"; the status line resets the struct, since curl hands
 * over the headers of every response of a redirect chain). Unknown headers are ignored. */
void rr_hub_meta_header(rr_hub_meta *m, const char *line, size_t len);

#endif /* RR_HUB_H */

/*
 * rerank.h -- the one public header of librerank, a CPU cross-encoder reranking engine.
 *
 * rerank loads a Hugging Face reranker folder (config.json, model.safetensors, tokenizer.json) and
 * computes the relevance of (query, document) pairs. The pipeline is
 *
 *     tokenize -> pack -> encoder -> score -> rank
 *
 * Usage (error handling elided):
 *
 *     rr_model *m;
 *     rr_model_params mp = rr_model_default_params();
 *     if (rr_model_load("models/jina-reranker-v2", &mp, &m) != RR_OK)
 *         fprintf(stderr, "%s\n", rr_errmsg());
 *     rr_ctx *c;
 *     rr_ctx_new(m, NULL, &c);                       // one per thread
 *     int32_t ids[] = {0, 581, 2, 2, 9061, 2};
 *     rr_seq s = {ids, NULL, 6};
 *     float logit;
 *     rr_score_ids(c, &s, 1, &logit);               // raw logit; rr_sigmoid(logit) for [0,1]
 *     rr_ctx_free(c);
 *     rr_model_free(m);
 *
 * Conventions
 * - Every fallible function returns an rr_status (RR_OK = 0, negative on failure). On failure a message
 *   naming the file, tensor or field is available from rr_errmsg() on the same thread.
 * - The library never exits the process and never prints, except through the log callback.
 * - Constructors fill an out-parameter only on success. Free functions accept NULL.
 * - rr_model is immutable after load and may be shared by any number of threads. rr_ctx holds the
 *   scratch memory of one forward pass and must be used by one thread at a time.
 * - Linear layers follow PyTorch: W is [out, in] row-major and y = x W^T + b.
 */
#ifndef RERANK_H
#define RERANK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RR_VERSION "0.1.0"

/* ------------------------------------------------------------------ status */

typedef enum rr_status {
    RR_OK = 0,
    RR_ERR_IO = -1,          /* a file could not be opened, read or mapped */
    RR_ERR_FORMAT = -2,      /* a file is malformed: truncated, bad JSON, bad header, wrong shape */
    RR_ERR_NOMEM = -3,       /* an allocation failed */
    RR_ERR_INVALID = -4,     /* a caller passed a bad argument or bad input data */
    RR_ERR_UNSUPPORTED = -5, /* well-formed but not something rerank implements */
    RR_ERR_RANGE = -6,       /* an input exceeds a limit (sequence length, batch budget, id range) */
    RR_ERR_NETWORK = -7,     /* a download failed */
    RR_ERR_NOT_FOUND = -8,   /* a file, model or repository does not exist */
    RR_ERR_CANCELLED = -9,   /* the caller cancelled the work */
} rr_status;

/* A static English name for a status ("ok", "io error", ...). */
const char *rr_status_str(rr_status st);

/* The message of the last failure on the calling thread ("" if none). Valid until the next failing
 * call on this thread. */
const char *rr_errmsg(void);

/* ------------------------------------------------------------------ model */

typedef struct rr_model rr_model;

typedef enum rr_family {
    RR_FAMILY_JINA_V2 = 0, /* jina-reranker-v2: fused Wqkv, mixer/norm1/mlp/norm2 names */
    RR_FAMILY_XLMR = 1,    /* standard HF XLM-RoBERTa: bge-reranker-*, mmarco-mMiniLMv2 */
    RR_FAMILY_BERT = 2,    /* BERT cross-encoders: ms-marco-MiniLM; token types, pooler head */
    RR_FAMILY_JINA_V1 = 3, /* JinaBERT (jina-reranker-v1-*-en): ALiBi, GEGLU feed-forward, 8192 tokens */
    RR_FAMILY_MGTE = 4,    /* mGTE (gte-multilingual-reranker-base): rotary + NTK scaling, GLU, 8192 tokens */
    RR_FAMILY_MODERNBERT = 5, /* ModernBERT cross-encoders: pre-norm, rotary, global / sliding-window layers */
} rr_family;

/* A short static name: "jina-v2", "xlm-roberta", "bert", "jina-v1", "mgte", "modernbert" ("unknown"
 * past the list). */
const char *rr_family_name(rr_family f);

typedef enum rr_precision {
    RR_PRECISION_AUTO = 0, /* the fastest precision this CPU supports */
    RR_PRECISION_FP32 = 1, /* exact reference path: fp32 activations and accumulation */
    RR_PRECISION_BF16 = 2, /* bf16 weights and products, fp32 accumulation */
    RR_PRECISION_INT8 = 3, /* int8 weights per output channel, dynamic int8 activations */
} rr_precision;

typedef struct rr_model_params {
    rr_precision precision; /* default RR_PRECISION_FP32 until faster paths land */
    int n_threads;          /* threads for the forward pass; 0 = number of cores */
    int load_tokenizer;     /* load tokenizer.json when present (default 1) */
} rr_model_params;

typedef struct rr_model_info {
    rr_family family;
    const char *name;       /* folder name or repo id the model was loaded from */
    int n_layers, hidden, n_heads, intermediate;
    int vocab_size, max_positions, type_vocab_size, pad_id;
    int max_length;         /* longest pair the model accepts, specials included */
    float layer_norm_eps;
    rr_precision precision; /* the precision actually in use (never AUTO) */
    const char *kernels;    /* name of the kernel table in use, e.g. "avx512" */
    size_t weight_bytes;    /* bytes of weights kept for the forward pass */
} rr_model_info;

rr_model_params rr_model_default_params(void);

/* Loads the model in folder `dir`: config.json plus model.safetensors or model.safetensors.index.json,
 * and tokenizer.json when present. Every tensor is checked against the config and the file before
 * use. `params` may be NULL for the defaults. */
rr_status rr_model_load(const char *dir, const rr_model_params *params, rr_model **out);
void rr_model_free(rr_model *m);
void rr_model_get_info(const rr_model *m, rr_model_info *info);

/* ------------------------------------------------------------------ scoring token ids */

typedef struct rr_ctx rr_ctx;

typedef struct rr_ctx_params {
    int max_batch_tokens; /* token rows in one packed forward pass; default 1024, never below the
                             model's max_length */
} rr_ctx_params;

rr_ctx_params rr_ctx_default_params(void);
rr_status rr_ctx_new(const rr_model *m, const rr_ctx_params *params, rr_ctx **out);
void rr_ctx_free(rr_ctx *c);

/* One already tokenized sequence, special tokens included. type_ids may be NULL (all zero). */
typedef struct rr_seq {
    const int32_t *ids;
    const int32_t *type_ids;
    int len;
} rr_seq;

/* Computes the raw logit of each sequence into logits[0..n). Sequences are packed without padding
 * (attention stays within each sequence) and split into passes of at most max_batch_tokens rows; the
 * result of a sequence does not depend on the others. Fails with RR_ERR_RANGE if a sequence is empty
 * or longer than the model's max_length, RR_ERR_INVALID if an id is out of range. */
rr_status rr_score_ids(rr_ctx *c, const rr_seq *seqs, int n, float *logits);

/* Checks one sequence against the model without scoring it: RR_ERR_RANGE if empty or longer than
 * max_length, RR_ERR_INVALID if an id or type id is out of range. */
rr_status rr_model_check_seq(const rr_model *m, const rr_seq *s);

/* 1 / (1 + exp(-x)), computed without overflow. */
float rr_sigmoid(float x);

/* ------------------------------------------------------------------ tokenizer */

typedef struct rr_tokenizer rr_tokenizer;

typedef enum rr_truncation {
    RR_TRUNC_LONGEST_FIRST = 0,
    RR_TRUNC_ONLY_FIRST = 1,
    RR_TRUNC_ONLY_SECOND = 2,
} rr_truncation;

/* A growable encoding owned by the caller: zero-initialize it, reuse it across calls, release it
 * with rr_encoding_free. */
typedef struct rr_encoding {
    int32_t *ids;
    int32_t *type_ids;
    size_t len, cap;
} rr_encoding;

void rr_encoding_free(rr_encoding *e);

/* Loads `path`: a folder holding tokenizer.json (and optionally tokenizer_config.json), or a path to a
 * tokenizer.json file. */
rr_status rr_tokenizer_load(const char *path, rr_tokenizer **out);
void rr_tokenizer_free(rr_tokenizer *t);

/* The tokenizer the model folder carried, or NULL. Owned by the model. */
const rr_tokenizer *rr_model_tokenizer(const rr_model *m);

/* Encodes `text` (UTF-8, `len` bytes) and, when `pair` is not NULL, the pair (text, pair), the way the
 * Hugging Face tokenizers library does. add_special applies the post-processor (<s> ... </s>).
 * max_length > 0 truncates with `strategy`, counting special tokens. The result replaces out's
 * contents. */
rr_status rr_tokenizer_encode(const rr_tokenizer *t, const char *text, size_t len, const char *pair,
                              size_t pair_len, int add_special, int max_length, rr_truncation strategy,
                              rr_encoding *out);

/* Applies the post-processor to already tokenized sequences a and (optional) b, writing ids with
 * special tokens and type ids into out. */
rr_status rr_tokenizer_post_process(const rr_tokenizer *t, const rr_encoding *a, const rr_encoding *b,
                                    rr_encoding *out);

/* Number of special tokens the post-processor adds to a single (pair = 0) or a pair (pair = 1). */
int rr_tokenizer_num_special(const rr_tokenizer *t, int pair);
/* The piece string of an id, or NULL if out of range. */
const char *rr_tokenizer_id_to_piece(const rr_tokenizer *t, int32_t id);
/* The id of a piece string as it is stored in the vocabulary (byte-level BPE pieces in their
 * mapped form: " yes" is "\xC4\xA0yes"), added tokens first, as HF's token_to_id; -1 if absent. */
int32_t rr_tokenizer_piece_to_id(const rr_tokenizer *t, const char *piece);
int rr_tokenizer_vocab_size(const rr_tokenizer *t);
/* model_max_length from tokenizer_config.json, or 0 when unknown. */
int rr_tokenizer_model_max_length(const rr_tokenizer *t);

/* ------------------------------------------------------------------ score and rank text */

typedef struct rr_usage {
    long total_tokens; /* tokens actually fed to the model, special tokens included */
} rr_usage;

typedef struct rr_text {
    const char *text; /* UTF-8, need not be NUL-terminated */
    size_t len;
} rr_text;

/* What rr_rank does with a document longer than the room one pair leaves for it (max_length minus
 * the query and the special tokens). */
typedef enum rr_long_doc {
    RR_LONG_DOC_WINDOW = 0,         /* overlapping windows, best window's score (jina rerank()) */
    RR_LONG_DOC_TRUNCATE_RIGHT = 1, /* one pair with the document's first tokens (TEI truncate, "Right") */
    RR_LONG_DOC_TRUNCATE_LEFT = 2,  /* one pair with the document's last tokens (TEI "Left") */
} rr_long_doc;

typedef struct rr_rank_params {
    int max_length;       /* longest pair, specials included; 0 = tokenizer's model_max_length
                             (capped by the model's position limit) */
    int max_query_length; /* query tokens including specials; 0 = 512 */
    int overlap;          /* tokens shared by consecutive windows of a long document; -1 = 80 */
    int top_n;            /* results to return; 0 = all */
    int raw;              /* 1: relevance is the raw logit; 0: its sigmoid */
    rr_long_doc long_doc; /* default RR_LONG_DOC_WINDOW */
    int max_doc_tokens;   /* > 0: each document is first cut to this many of its own tokens (no
                             specials, before pairing with the query; Cohere's max_tokens_per_doc),
                             keeping its end under RR_LONG_DOC_TRUNCATE_LEFT, else its start; what
                             remains is windowed or truncated as long_doc says. 0 = no cap */
} rr_rank_params;

typedef struct rr_rank_result {
    int index;   /* position of the document in the request */
    float score; /* best window's sigmoid (or logit when raw) */
} rr_rank_result;

rr_rank_params rr_rank_default_params(void);

/* Scores n (query, document) pairs with the model's tokenizer: pair template, truncation
 * longest_first at max_length (0 = default as in rr_rank_params). scores[i] is the logit when raw,
 * else its sigmoid. */
rr_status rr_score_pairs(rr_ctx *c, const rr_text *queries, const rr_text *docs, int n, int max_length,
                         int raw, float *scores, rr_usage *usage);

/* Ranks n_docs documents for one query as jina-reranker-v2's rerank() does: the query is cut to
 * max_query_length tokens, documents longer than the room left are split into overlapping windows and
 * keep their best window's score (or, with p->long_doc set to a truncation, are cut to that room from
 * the right or the left and scored as one pair; p->max_doc_tokens caps every document first). A long
 * document is never an error. results must hold n_docs entries; *n_results receives
 * min(top_n, n_docs) (all when top_n is 0), sorted by score descending, ties by lower index. Empty
 * documents are valid; n_docs = 0 gives no results. */
rr_status rr_rank(rr_ctx *c, rr_text query, const rr_text *docs, int n_docs, const rr_rank_params *p,
                  rr_rank_result *results, int *n_results, rr_usage *usage);

/* ------------------------------------------------------------------ models by name (Hugging Face hub) */

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
    int offline;           /* 1 = use the cache only; $HF_HUB_OFFLINE=1 has the same effect */
    rr_pull_progress_fn progress; /* may be NULL */
    void *progress_user;
} rr_pull_params;

rr_pull_params rr_pull_default_params(void);

/* Downloads a model repository into the Hugging Face cache (the layout huggingface_hub uses, so
 * either tool reuses the other's files): config.json, tokenizer.json, tokenizer_config.json and
 * special_tokens_map.json when present, and the safetensors weights (model.safetensors, or
 * model.safetensors.index.json and every shard it names; pickle .bin weights are never fetched).
 * Files already cached are not downloaded again; interrupted transfers resume; LFS files are checked
 * against their sha256. On success writes the snapshot folder (NUL-terminated) into
 * snapshot_dir[cap], which the caller owns (NULL: not wanted; too small: RR_ERR_RANGE). Offline, succeeds only when the cache holds the
 * complete snapshot. Errors: RR_ERR_INVALID (bad repo id), RR_ERR_NOT_FOUND (unknown repository or
 * revision, no safetensors weights, not cached while offline), RR_ERR_NETWORK (unreachable, HTTP
 * error, gated without a token), RR_ERR_FORMAT (corrupted download), RR_ERR_IO (disk full). */
rr_status rr_pull(const char *repo_id, const rr_pull_params *params, char *snapshot_dir, size_t cap);

/* Turns a -m argument into a model folder in dir[cap] (caller-owned):
 *   - an existing folder: itself;
 *   - "ORG/NAME" or "ORG/NAME@REVISION": the cached snapshot of refs/REVISION (default main) when it
 *     is complete, with no network access; otherwise rr_pull() with default parameters when
 *     allow_download is set and $HF_HUB_OFFLINE is not;
 *   - NULL or "": RR_DEFAULT_MODEL.
 * Fails with RR_ERR_NOT_FOUND for a valid repo id that is not cached (and may not be downloaded),
 * RR_ERR_INVALID for a name that is neither a folder nor a repo id. */
rr_status rr_model_resolve(const char *name_or_dir, int allow_download, char *dir, size_t cap);

#ifdef __cplusplus
}
#endif

#endif /* RERANK_H */

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
 * - The library never exits the process and never prints (it links no HTTP or download code either:
 *   those are librerank_server and librerank_hub, include/rerank_server.h and rerank_hub.h).
 * - Parameters come in structs: take *_default_params(), change the fields you need, pass a pointer
 *   (NULL means the defaults). Every default is written in the struct's comment.
 * - Constructors fill an out-parameter only on success. Free functions accept NULL.
 * - rr_model is immutable after load and may be shared by any number of threads. rr_ctx holds the
 *   scratch memory of one forward pass and must be used by one thread at a time.
 * - Linear layers follow PyTorch: W is [out, in] row-major and y = x W^T + b.
 */
#ifndef RERANK_H
#define RERANK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Marks what the shared library exports: everything declared with RR_API in include/ and nothing
 * else (the library is built with -fvisibility=hidden). */
#if defined(__GNUC__)
#define RR_API __attribute__((visibility("default")))
#else
#define RR_API
#endif

#define RR_VERSION_MAJOR 0
#define RR_VERSION_MINOR 1
#define RR_VERSION_PATCH 0
#define RR_VERSION "0.1.0"
/* MAJOR * 10000 + MINOR * 100 + PATCH, for #if tests against the header. */
#define RR_VERSION_NUMBER (RR_VERSION_MAJOR * 10000 + RR_VERSION_MINOR * 100 + RR_VERSION_PATCH)

/* The version of the library actually linked ("0.1.0"; compare with RR_VERSION). Static string. */
RR_API const char *rr_version(void);
/* RR_VERSION_NUMBER of the library actually linked. */
RR_API int rr_version_number(void);

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
RR_API const char *rr_status_str(rr_status st);

/* The message of the last failure on the calling thread ("" if none). Valid until the next failing
 * call on this thread. */
RR_API const char *rr_errmsg(void);

/* ------------------------------------------------------------------ model */

typedef struct rr_model rr_model;

typedef enum rr_family {
    RR_FAMILY_JINA_V2 = 0, /* jina-reranker-v2: fused Wqkv, mixer/norm1/mlp/norm2 names */
    RR_FAMILY_XLMR = 1,    /* standard HF XLM-RoBERTa: bge-reranker-*, mmarco-mMiniLMv2 */
    RR_FAMILY_BERT = 2,    /* BERT cross-encoders: ms-marco-MiniLM; token types, pooler head */
    RR_FAMILY_QWEN3 = 3,   /* Qwen3ForCausalLM decoders: Qwen3-Reranker (yes/no logits) */
    RR_FAMILY_QWEN2 = 4,   /* Qwen2ForCausalLM decoders: mxbai-rerank-v2 ("1"/"0" logits) */
    RR_FAMILY_QWEN3_CLS = 5, /* Qwen3ForSequenceClassification: a Qwen3 reranker converted to one
                                score row (score.weight = W[yes] - W[no]) */
    RR_FAMILY_JINA_V3 = 6, /* jina-reranker-v3: a Qwen3 backbone read listwise (a block of documents
                              in one prompt) plus a projector; scores are cosines in [-1, 1] */
    RR_FAMILY_JINA_V1 = 7, /* JinaBERT (jina-reranker-v1-*-en): ALiBi, GEGLU feed-forward, 8192 tokens */
    RR_FAMILY_MGTE = 8,    /* mGTE (gte-multilingual-reranker-base): rotary + NTK scaling, GLU, 8192 tokens */
    RR_FAMILY_MODERNBERT = 9, /* ModernBERT cross-encoders: pre-norm, rotary, global / sliding-window layers */
} rr_family;

/* The prompt a decoder reranker is fed (encoders use their tokenizer's pair template). */
typedef enum rr_template {
    RR_TEMPLATE_AUTO = 0,           /* decided at load: the model card (README.md) in the folder, else
                                       the architecture (Qwen3 -> Qwen3-Reranker); else refused */
    RR_TEMPLATE_NONE = 1,           /* an encoder: the tokenizer's own pair template */
    RR_TEMPLATE_QWEN3_RERANKER = 2, /* "qwen3-reranker": system prefix, <Instruct>/<Query>/<Document>,
                                       assistant turn with an empty think block; raw = l_yes - l_no */
    RR_TEMPLATE_MXBAI_V2 = 3,       /* "mxbai-rerank-v2": raw = l("1") - l("0") */
    RR_TEMPLATE_JINA_V3 = 4,        /* "jina-reranker-v3": the listwise block prompt (only for that
                                       family, which always uses it) */
} rr_template;

/* "qwen3-reranker", "mxbai-rerank-v2", "none", "auto". */
RR_API const char *rr_template_name(rr_template t);
/* Parses a name as rr_template_name writes it; -1 when unknown. */
RR_API int rr_template_parse(const char *name);

typedef enum rr_precision {
    RR_PRECISION_AUTO = 0, /* bf16 where the CPU multiplies bf16 natively, else fp32 (the default) */
    RR_PRECISION_FP32 = 1, /* exact reference path: fp32 activations and accumulation */
    RR_PRECISION_BF16 = 2, /* bf16 weights and products, fp32 accumulation */
    RR_PRECISION_INT8 = 3, /* int8 weights per output channel, dynamic int8 activations */
} rr_precision;

/* Static lowercase names: "auto", "fp32", "bf16", "int8"; "jina-v2", "xlm-roberta", "bert", "qwen3",
 * "qwen2", "qwen3-cls", "jina-v1", "mgte", "modernbert". An out-of-range value gives "unknown". */
RR_API const char *rr_precision_name(rr_precision p);
RR_API const char *rr_family_name(rr_family f);

typedef struct rr_model_params {
    rr_precision precision; /* default RR_PRECISION_AUTO: bf16 where the CPU multiplies bf16 natively
                               (AVX512_BF16 or AMX-BF16, in the kernel table chosen, so $RR_ISA
                               counts), else fp32. FP32 is the exact reference path. */
    int n_threads;          /* threads for the forward pass; default 0 = one per core */
    bool load_tokenizer;    /* load tokenizer.json when present; default true */
    rr_template prompt;     /* decoders: the prompt template; default AUTO decides from the folder.
                               Anything but AUTO/NONE on an encoder is refused */
} rr_model_params;

/* What rr_model_get_info reports. The strings belong to the model: valid until rr_model_free. */
typedef struct rr_model_info {
    rr_family family;
    const char *name;       /* folder the model was loaded from, as given to rr_model_load */
    int n_layers, hidden, n_heads, intermediate;
    int vocab_size, max_positions, type_vocab_size, pad_id;
    int max_length;         /* longest pair the model accepts, specials included */
    float layer_norm_eps;
    rr_precision precision; /* the precision actually in use (never AUTO) */
    const char *kernels;    /* name of the kernel table in use, e.g. "avx512" (a static string) */
    size_t weight_bytes;    /* bytes of weights kept for the forward pass */
    rr_template prompt;     /* RR_TEMPLATE_NONE for encoders */
    int n_kv_heads, head_dim; /* decoders (encoders: n_heads, hidden / n_heads) */
    const char *default_instruction; /* decoders with an instruction slot, else NULL */
    int embed_size;         /* listwise models: floats per marker embedding (rr_seq.emb), else 0 */
} rr_model_info;

RR_API rr_model_params rr_model_default_params(void);

/* Loads the model in folder `dir`: config.json plus model.safetensors or model.safetensors.index.json,
 * and tokenizer.json when present. Every tensor is checked against the config and the file before
 * use. `params` may be NULL for the defaults. */
RR_API rr_status rr_model_load(const char *dir, const rr_model_params *params, rr_model **out);
RR_API void rr_model_free(rr_model *m);
RR_API void rr_model_get_info(const rr_model *m, rr_model_info *info);

/* ------------------------------------------------------------------ scoring token ids */

typedef struct rr_ctx rr_ctx;

typedef struct rr_ctx_params {
    int max_batch_tokens; /* token rows in one packed forward pass; default 1024 (raised to the
                             model's max_length when that is longer) */
} rr_ctx_params;

RR_API rr_ctx_params rr_ctx_default_params(void);
RR_API rr_status rr_ctx_new(const rr_model *m, const rr_ctx_params *params, rr_ctx **out);
RR_API void rr_ctx_free(rr_ctx *c);

/* One already tokenized sequence, special tokens included. type_ids may be NULL (all zero). */
typedef struct rr_seq {
    const int32_t *ids;
    const int32_t *type_ids;
    int len;
    /* Listwise models (jina-reranker-v3) only: the pass writes the projected hidden state of every
     * marker token here, n_emb rows of rr_model_info.embed_size floats: the document markers in
     * order (at most n_emb - 1 of them), then the query marker in the last row; the sequence's logit
     * is then the number of document markers found, or -1 when the query marker is not there
     * exactly once. Required for those models, ignored by the others. */
    float *emb;
    int n_emb;
} rr_seq;

/* Computes the raw logit of each sequence into logits[0..n). Sequences are packed without padding
 * (attention stays within each sequence) and split into passes of at most max_batch_tokens rows; the
 * result of a sequence does not depend on the others. Fails with RR_ERR_RANGE if a sequence is empty
 * or longer than the model's max_length, RR_ERR_INVALID if an id is out of range. */
RR_API rr_status rr_score_ids(rr_ctx *c, const rr_seq *seqs, int n, float *logits);

/* Checks one sequence against the model without scoring it: RR_ERR_RANGE if empty or longer than
 * max_length, RR_ERR_INVALID if an id or type id is out of range. */
RR_API rr_status rr_model_check_seq(const rr_model *m, const rr_seq *s);

/* 1 / (1 + exp(-x)), computed without overflow. */
RR_API float rr_sigmoid(float x);

/* ------------------------------------------------------------------ tokenizer */

typedef struct rr_tokenizer rr_tokenizer;

/* A piece of UTF-8 text (invalid bytes are repaired as U+FFFD); need not be NUL-terminated. */
typedef struct rr_text {
    const char *text;
    size_t len;
} rr_text;

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

RR_API void rr_encoding_free(rr_encoding *e);

/* Loads `path`: a folder holding tokenizer.json (and optionally tokenizer_config.json), or a path to a
 * tokenizer.json file. */
RR_API rr_status rr_tokenizer_load(const char *path, rr_tokenizer **out);
RR_API void rr_tokenizer_free(rr_tokenizer *t);

/* The tokenizer the model folder carried, or NULL. Owned by the model. */
RR_API const rr_tokenizer *rr_model_tokenizer(const rr_model *m);

typedef struct rr_encode_params {
    bool add_special;       /* apply the post-processor (<s> ... </s>); default true */
    int max_length;         /* > 0: truncate to this many tokens, specials included; default 0 = do
                               not truncate */
    rr_truncation strategy; /* how to truncate a pair; default RR_TRUNC_LONGEST_FIRST */
} rr_encode_params;

RR_API rr_encode_params rr_encode_default_params(void);

/* Encodes `text` and, when `pair` is not NULL, the pair (text, *pair), the way the Hugging Face
 * tokenizers library does. `params` may be NULL for the defaults. The result replaces out's
 * contents. */
RR_API rr_status rr_tokenizer_encode(const rr_tokenizer *t, rr_text text, const rr_text *pair,
                                     const rr_encode_params *params, rr_encoding *out);

/* Applies the post-processor to already tokenized sequences a and (optional) b, writing ids with
 * special tokens and type ids into out. */
RR_API rr_status rr_tokenizer_post_process(const rr_tokenizer *t, const rr_encoding *a, const rr_encoding *b,
                                    rr_encoding *out);

/* Number of special tokens the post-processor adds to a single sequence or (pair) a pair. */
RR_API int rr_tokenizer_num_special(const rr_tokenizer *t, bool pair);
/* The piece string of an id, or NULL if out of range. */
RR_API const char *rr_tokenizer_id_to_piece(const rr_tokenizer *t, int32_t id);
/* The id of a piece string as it is stored in the vocabulary (byte-level BPE pieces in their
 * mapped form: " yes" is "\xC4\xA0yes"), added tokens first, as HF's token_to_id; -1 if absent. */
RR_API int32_t rr_tokenizer_piece_to_id(const rr_tokenizer *t, const char *piece);
RR_API int rr_tokenizer_vocab_size(const rr_tokenizer *t);
/* model_max_length from tokenizer_config.json, or 0 when unknown. */
RR_API int rr_tokenizer_model_max_length(const rr_tokenizer *t);

/* ------------------------------------------------------------------ score and rank text */

typedef struct rr_usage {
    long total_tokens; /* tokens actually fed to the model, special tokens included */
} rr_usage;

/* Progress and cancellation of the calls that can run long (rr_score_pairs, rr_score_pairs_instructed,
 * rr_rank): set rr_score_params.progress / rr_rank_params.progress. The library calls it on the
 * calling thread after every forward pass, with `done` sequences scored of `total` planned so far
 * (pairs for rr_score_pairs; windows, prompts or blocks for rr_rank, whose total grows as it plans
 * documents in chunks of about 256K tokens), and every 256 texts while tokenizing (then `done` is
 * unchanged). A nonzero return stops the call there with RR_ERR_CANCELLED: its outputs are
 * unspecified, nothing leaks, and the context may be used again at once. A pass in flight is not
 * interrupted, so a cancel takes effect within one forward pass. The callback must not use the same
 * rr_ctx; it may do anything else (a binding checks its signals here). */
typedef int (*rr_progress_fn)(void *user, long done, long total);

/* What rr_rank does with a document longer than the room one pair leaves for it (max_length minus
 * the query and the special tokens; for a decoder reranker, minus the rest of its prompt). */
typedef enum rr_long_doc {
    RR_LONG_DOC_WINDOW = 0,         /* overlapping windows, best window's score (jina rerank()) */
    RR_LONG_DOC_TRUNCATE_RIGHT = 1, /* one pair with the document's first tokens (TEI truncate, "Right") */
    RR_LONG_DOC_TRUNCATE_LEFT = 2,  /* one pair with the document's last tokens (TEI "Left") */
    RR_LONG_DOC_AUTO = 3,           /* the model's own rule: WINDOW for encoders; for decoder rerankers
                                       their reference code's cut (the prompt's body, instruction and
                                       query included, cut from the right) */
} rr_long_doc;

typedef struct rr_rank_params {
    int max_length;       /* longest pair, specials included; default 0 = the model's own limit (the
                             tokenizer's model_max_length, capped by the position table) */
    int max_query_length; /* query tokens including specials (at least 1); default 512, capped at
                             max_length / 2 */
    int overlap;          /* tokens shared by consecutive windows of a long document; default 80 */
    int top_n;            /* results to return; default 0 = all */
    bool raw;             /* relevance is the raw logit instead of its sigmoid; default false */
    rr_long_doc long_doc; /* default RR_LONG_DOC_AUTO (windows for encoders). Decoder rerankers get
                             windows or a truncation over the document's ids only when asked: the
                             rest of the prompt stays whole, the query (with the instruction) cut
                             to max_query_length */
    int max_doc_tokens;   /* > 0: each document is first cut to this many of its own tokens (no
                             specials, before pairing with the query; Cohere's max_tokens_per_doc),
                             keeping its end under RR_LONG_DOC_TRUNCATE_LEFT, else its start; what
                             remains is windowed or truncated as long_doc says. Default 0 = no cap */
    int max_windows;      /* > 0: a document windowed under RR_LONG_DOC_WINDOW keeps at most this many
                             windows, its first ones (its first max_length-sized windows cover
                             M + (n - 1) * (M - overlap) of its tokens; the rest is not read): Cohere
                             v1's max_chunks_per_doc. Default 0 = every window */
    rr_text instruction;  /* decoder prompts: the task instruction; text NULL (default) = the
                             template's default. Encoders ignore it */
    rr_progress_fn progress; /* progress and cancellation (see rr_progress_fn); default NULL */
    void *progress_user;     /* passed to progress; default NULL */
} rr_rank_params;

typedef struct rr_rank_result {
    int index;   /* position of the document in the request */
    float score; /* best window's sigmoid (or logit when raw) */
} rr_rank_result;

RR_API rr_rank_params rr_rank_default_params(void);

typedef struct rr_score_params {
    int max_length; /* longest pair, specials included; default 0 = the model's own limit, as in
                       rr_rank_params */
    bool raw;       /* scores are raw logits instead of their sigmoid; default false */
    rr_progress_fn progress; /* progress and cancellation (see rr_progress_fn); default NULL */
    void *progress_user;     /* passed to progress; default NULL */
} rr_score_params;

RR_API rr_score_params rr_score_default_params(void);

/* Scores n (query, document) pairs with the model's tokenizer: pair template, truncation
 * longest_first at max_length. `params` may be NULL for the defaults. usage may be NULL. */
RR_API rr_status rr_score_pairs(rr_ctx *c, const rr_text *queries, const rr_text *docs, int n,
                                const rr_score_params *params, float *scores, rr_usage *usage);

/* rr_score_pairs with an instruction per pair for decoder prompts (instructions may be NULL; an entry
 * whose text is NULL means the template's default instruction). Encoders ignore the instructions.
 * For a decoder each pair becomes the template's whole prompt, its body cut as the reference code
 * cuts it, and scores[i] is sigmoid(raw) with raw = l_yes - l_no (Qwen3-Reranker) or l("1") - l("0")
 * (mxbai-rerank-v2). */
RR_API rr_status rr_score_pairs_instructed(rr_ctx *c, const rr_text *queries, const rr_text *docs,
                                           const rr_text *instructions, int n, const rr_score_params *params,
                                           float *scores, rr_usage *usage);

/* Ranks n_docs documents for one query as jina-reranker-v2's rerank() does: the query is cut to
 * max_query_length tokens, documents longer than the room left are split into overlapping windows and
 * keep their best window's score (or, with p->long_doc set to a truncation, are cut to that room from
 * the right or the left and scored as one pair; p->max_doc_tokens caps every document first). A long
 * document is never an error. results must hold n_docs entries; *n_results receives
 * min(top_n, n_docs) (all when top_n is 0), sorted by score descending, ties by lower index. Empty
 * documents are valid; n_docs = 0 gives no results. */
RR_API rr_status rr_rank(rr_ctx *c, rr_text query, const rr_text *docs, int n_docs, const rr_rank_params *p,
                  rr_rank_result *results, int *n_results, rr_usage *usage);

#ifdef __cplusplus
}
#endif

#endif /* RERANK_H */

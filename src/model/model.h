/*
 * model.h -- the loaded model as the encoder sees it (internal to librerank).
 *
 * rr_model_load (model.c) reads config.json into rr_config, maps the safetensors files (rr_st) and
 * fills rr_model with views of every weight under one canonical naming, whatever the family's names
 * on disk. Matrices stay in the file's dtype inside the mapping (rr_mat) while the load packs them;
 * the small vectors (biases, LayerNorm parameters, token type rows) are converted to fp32 and owned
 * by the model. Once packed, the files are unmapped, for every family (encoders and decoders): the
 * forward pass reads the two large tables (word and position embeddings) row by row with pread, so
 * a file truncated or rewritten under a running process can give an error, never a SIGBUS. Nothing
 * is mutated after load, so a model is shared by all threads.
 */
#ifndef RR_MODEL_H
#define RR_MODEL_H

#include "core/core.h"
#include "kernels/kernels.h"
#include "model/safetensors.h"

typedef struct rr_config {
    rr_family family;
    int vocab_size, hidden, n_layers, n_heads, intermediate;
    int max_positions, type_vocab_size, pad_id;
    int pos_offset; /* first position id of a real token: pad_id + 1 for XLM-R, 0 for BERT */
    int max_length; /* longest sequence the position table allows */
    float eps;
    /* architecture switches of the families after the first three (config_ext.c); zero = BERT /
     * XLM-R behaviour */
    int pos_kind;      /* rr_pos_kind */
    int glu;           /* rr_glu_kind: how the FFN up projection feeds the down projection */
    int act;           /* rr_kern_act of the FFN */
    int prenorm;       /* x + f(LN(x)) blocks, embedding norm, final norm (ModernBERT) */
    int head;          /* rr_head_kind */
    int head_act;      /* rr_kern_act of a RR_HEAD_DENSE_ACT_NORM head */
    int mean_pool;     /* the head reads the mean of the final rows instead of the first token */
    double rope_base, rope_base_local; /* rotary bases (rope_theta): global layers, local (window) layers */
    double rope_ntk;   /* NTK scaling factor of the rotary frequencies (mGTE); 0 = none */
    int global_every;  /* ModernBERT: layer i is global iff i % global_every == 0 */
    int window;        /* half-window of the local layers (keys at distance <= window); 0 = none */
    int qkv_bias, mlp_bias, norm_bias, head_bias; /* which optional biases the checkpoint has */
    /* decoders (Qwen3 / Qwen2; qwen.c) */
    int decoder;    /* 1 for the RR_FAMILY_QWEN* families */
    int n_kv_heads, head_dim;
    double rope_theta;
    int tied;       /* tie_word_embeddings: the lm_head rows are embed_tokens rows */
    int embed_size; /* jina-reranker-v3: config's embedding_size, 0 when absent */
} rr_config;

#define RR_CONFIG_MAX_BYTES ((size_t)1 << 20) /* config.json larger than this is refused */

typedef enum rr_pos_kind {
    RR_POS_ABSOLUTE = 0, /* learned table (XLM-R pad offset or BERT from 0) */
    RR_POS_ALIBI = 1,    /* symmetric ALiBi slopes inside attention, no table */
    RR_POS_ROPE = 2,     /* rotary on Q and K, no table */
} rr_pos_kind;

typedef enum rr_glu_kind {
    RR_GLU_NONE = 0,   /* act(x W1^T + b1) W2^T */
    RR_GLU_FIRST = 1,  /* W1 is [2I, H]: act(first I outputs) * last I (JinaBERT, ModernBERT) */
    RR_GLU_SECOND = 2, /* act(last I outputs) * first I (mGTE) */
} rr_glu_kind;

typedef enum rr_head_kind {
    RR_HEAD_TANH = 0,      /* out(tanh(dense(x))): RoBERTa classifier, BERT pooler + classifier */
    RR_HEAD_PLAIN = 1,     /* out(x): a JinaBERT checkpoint without pooler */
    RR_HEAD_DENSE_ACT_NORM = 2, /* out(LN(act(dense(x)))): ModernBERT */
} rr_head_kind;

/* Reads the config of a family handled by config_ext.c into c; *mine = 0 (and RR_OK) when the
 * config belongs to none of them. */
struct cJSON;
rr_status rr_config_ext(const struct cJSON *j, const char *path, rr_config *c, int *mine);

/* model_ext.c: the weights of those families into m (cfg and st set), and the frees of what only
 * they own (safe on a partly loaded model). */
struct rr_model;
rr_status rr_model_load_ext(struct rr_model *m);
void rr_model_free_ext(struct rr_model *m);

/* Reads and validates config.json at `path`. */
rr_status rr_config_load(const char *path, rr_config *cfg, int *is_bert);

/* A weight matrix [rows = out features, cols = in features], row-major, in the file's dtype; a view
 * into the mapping (may be unaligned). */
typedef struct rr_mat {
    const void *data;
    rr_dtype dtype;
    int rows, cols;
} rr_mat;

/* The tensor lookups every family's loader uses (model.c). rr_model_mat: the float matrix `name`
 * checked to be [rows, cols] (else a message naming file, tensor and shapes), a view into the
 * mapping; its bytes are added to m->weight_bytes. rr_model_vec: the float vector `name` checked to
 * be [n], converted to an fp32 array owned by the caller. rr_model_vec_if: the same when want, and
 * when !want the tensor must be absent (an optional bias config.json says the checkpoint lacks);
 * *out is then left alone. */
rr_status rr_model_mat(rr_model *m, const char *name, int rows, int cols, rr_mat *out);
rr_status rr_model_vec(rr_model *m, const char *name, int n, float **out);
rr_status rr_model_vec_if(rr_model *m, const char *name, int n, int want, float **out);
/* The embedding tables of m (cfg and st set): the word table `word` [V, H] and, when pos is not
 * NULL, the position table [max_positions, H] are kept as tensors whose rows the forward pass reads
 * with pread (word_t, pos_t); the token type table `type` [TV, H], when not NULL and TV > 0, is
 * copied to fp32 (type_f32). */
rr_status rr_model_embeddings(rr_model *m, const char *word, const char *pos, const char *type);

/* Row r of m converted to fp32 into dst[cols]. */
void rr_mat_row_f32(const rr_mat *m, int r, float *dst);

/* Packs the row-stack of n matrices (same width and dtype) with `bias` (NULL: none) into one linear
 * for kernel table k at precision p, straight from the file's dtype; matrices not adjacent in memory
 * are first copied side by side into buf (large enough for the stack), so the load never holds an
 * fp32 copy of a matrix (pack.c). */
rr_status rr_pack_stack(const rr_kern_table *k, rr_precision p, const rr_mat *const *mats, int n, const float *bias,
                        void *buf, rr_linear **out);
/* Drops the resident pages of a packed matrix's mapping (whole pages inside it only). */
void rr_mat_release(const rr_mat *mt);

typedef struct rr_layer {
    rr_mat wq, wk, wv;      /* each [H, H]; jina: row slices of Wqkv [3H, H] */
    float *bqkv;            /* [3H]: q | k | v */
    rr_mat wo;              /* [H, H] attention output projection */
    float *bo;              /* [H] */
    float *ln1_g, *ln1_b;   /* [H] post-attention LayerNorm */
    rr_mat w1;              /* [I, H] FFN up; [2I, H] for a gated FFN */
    float *b1;              /* [I] or [2I]; NULL when the checkpoint has none */
    rr_mat w2;              /* [H, I] FFN down */
    float *b2;              /* [H] */
    float *ln2_g, *ln2_b;   /* [H] post-FFN LayerNorm */
    /* pre-norm (ModernBERT): ln1 is the attention input norm (NULL: identity, layer 0), ln2 the FFN
     * input norm. */
    int window;             /* attention half-window of this layer (0: global) */
    const float *rope;      /* rotary table of this layer [max_length][d]: cos | sin; NULL without */
    /* packed for the kernels by rr_model_pack (pack.c); own their weights and biases */
    rr_linear *lin_qkv;     /* [3H, H] = wq | wk | wv, bias bqkv */
    rr_linear *lin_o;       /* [H, H], bias bo */
    rr_linear *lin_1;       /* [I, H], bias b1 */
    rr_linear *lin_2;       /* [H, I], bias b2 */
} rr_layer;

/* Q, K and V of ly as three row views of a fused [3H, H] matrix (jina-v2, mGTE, ModernBERT). */
void rr_split_qkv(const rr_mat *qkv, int H, rr_layer *ly);

/* One Qwen3 / Qwen2 decoder layer (qwen.c). Q, K and V are packed as one linear [(nh + 2 nkv) d, H],
 * gate and up as one [2I, H]. */
typedef struct rr_dec_layer {
    rr_mat wq, wk, wv, wo, wg, wu, wd; /* views into the mapping until packed */
    float *bqkv;            /* Qwen2: [(nh + 2 nkv) d] q | k | v biases; NULL for Qwen3 */
    float *q_norm, *k_norm; /* Qwen3: [d] per-head RMSNorm weights; NULL for Qwen2 */
    float *ln1, *ln2;       /* [H] input_layernorm, post_attention_layernorm */
    rr_linear *lin_qkv;     /* [(nh + 2 nkv) d, H] */
    rr_linear *lin_o;       /* [H, nh d] */
    rr_linear *lin_gu;      /* [2I, H]: gate rows then up rows */
    rr_linear *lin_d;       /* [H, I] */
} rr_dec_layer;

/* What a decoder adds to rr_model. The score reads the final hidden state h of each sequence's last
 * token: raw = head[0] . h - head[1] . h (two lm_head rows), or head[0] . h (a classifier row). */
typedef struct rr_dec {
    rr_dec_layer *layers;   /* [n_layers] */
    float *final_norm;      /* [H] */
    float *head;            /* [n_head, H] fp32 copies of the rows the score needs */
    int n_head;             /* 2 (lm_head rows) or 1 (score.weight) */
    int32_t head_ids[2];    /* vocabulary ids of the lm_head rows, -1 for a classifier */
    rr_template prompt;     /* resolved template (never AUTO) */
    /* jina-reranker-v3 (RR_FAMILY_JINA_V3): e = P2 relu(P1 h) at the marker tokens */
    float *proj1, *proj2;   /* fp32 [P, H] and [E, P] (P = H / 2) */
    int proj_mid, embed_size; /* P, E */
    int32_t doc_marker, query_marker; /* ids of <|embed_token|> and <|rerank_token|> */
} rr_dec;

struct rr_model {
    rr_config cfg;
    char *name;             /* folder path as given */
    rr_st *st;              /* the weight files; unmapped once the load is over (rr_st_unmap) */
    rr_mat word_emb;        /* [V, H]: a view into the mapping during the load only (data NULL after) */
    const rr_st_tensor *word_t; /* its tensor: rows are gathered with rr_st_copy (pread) */
    rr_mat pos_emb;         /* [P, H]: as word_emb */
    const rr_st_tensor *pos_t; /* its tensor, read the same way */
    rr_mat type_emb;        /* [TV, H]: as word_emb, during the load (rows stays set after) */
    float *type_f32;        /* [TV, H] fp32 copy of type_emb owned by the model (a row or two) */
    float *emb_ln_g, *emb_ln_b; /* [H] */
    rr_layer *layers;       /* [n_layers] */
    rr_mat head_dense;      /* [H, H]: jina/xlmr classifier.dense, BERT pooler.dense */
    float *head_dense_b;    /* [H] */
    rr_mat head_out;        /* [1, H]: classifier.out_proj / BERT classifier */
    float head_out_b;
    float *head_ln_g, *head_ln_b; /* [H] RR_HEAD_DENSE_ACT_NORM's norm */
    float *final_ln_g, *final_ln_b; /* [H] pre-norm models' final norm */
    float *alibi;           /* [n_heads] ALiBi slopes, or NULL */
    float *rope_tab[2];     /* rotary tables [max_length][d] for the global and local bases, or NULL */
    float *zeros;           /* [max(H, 3H)] zeros: the bias of a norm stored without one */
    rr_linear *lin_head;    /* head_dense packed in fp32 (one row per sequence: exactness is free) */
    rr_linear *lin_out;     /* head_out packed in fp32 */
    const rr_kern_table *kern; /* the kernel table the linears were packed for */
    rr_precision precision;
    int n_threads;
    size_t weight_bytes;
    rr_tokenizer *tok;      /* NULL when the folder has no tokenizer.json */
    rr_dec *dec;            /* decoders only, else NULL */
};

/* Packs every layer's matrices for the kernel table in use at precision p (AUTO: the table's best)
 * and sets m->kern and m->precision; afterwards the forward pass reads only the packed copies and
 * the mapped matrices of the layers are released from memory (madvise). Called once by
 * rr_model_load (pack.c). */
rr_status rr_model_pack(rr_model *m, rr_precision p);
/* The parallel step under both rr_model_pack and the decoders' packing: sets m->kern and
 * m->precision (AUTO: the table's best), then runs one(m, l, buf) for every layer l on a temporary
 * pool, each thread with its own stacking buffer of stack_bytes; one adds the bytes of the views it
 * packed to *mapped and of the linears it made to *packed, and m->weight_bytes is corrected by the
 * difference. The first failing layer's message is kept ("layer L: ..."). */
typedef rr_status (*rr_pack_layer_fn)(rr_model *m, int l, void *buf, size_t *mapped, size_t *packed);
rr_status rr_pack_layers(rr_model *m, rr_precision p, size_t stack_bytes, rr_pack_layer_fn one);
/* Frees what rr_model_pack made (safe on a partly packed model). */
void rr_model_unpack(rr_model *m);

/* Decoders (qwen.c). rr_qwen_config fills the decoder fields of cfg from config.json (architecture
 * arch); rr_qwen_load maps and checks every weight, resolves the prompt template (explicit, the
 * model card in dir, the architecture) and the score rows, and packs the linears at precision p;
 * rr_qwen_free releases what it made (safe on a half-built model). */
struct cJSON;
rr_status rr_qwen_config(const struct cJSON *j, const char *path, const char *arch, rr_config *c);
rr_status rr_qwen_load(rr_model *m, const char *dir, rr_template prompt, rr_precision p);
void rr_qwen_free(rr_model *m);
/* The instruction a template uses when the caller gives none (NULL: the template has no slot). */
const char *rr_template_default_instruction(rr_template t);

#endif

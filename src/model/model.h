/*
 * model.h -- the loaded model as the encoder sees it (internal to librerank).
 *
 * rr_model_load (model.c) reads config.json into rr_config, maps the safetensors files (rr_st) and
 * fills rr_model with views of every weight under one canonical naming, whatever the family's names
 * on disk. Matrices stay in the file's dtype inside the mapping (rr_mat) while the load packs them;
 * the small vectors (biases, LayerNorm parameters, token type rows) are converted to fp32 and owned
 * by the model. Once packed, the files are unmapped: the forward pass reads the two large tables
 * (word and position embeddings) row by row with pread, so a file truncated or rewritten under a
 * running process can give an error, never a SIGBUS. Nothing is mutated after load, so a model is
 * shared by all threads.
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
    /* decoders (Qwen3 / Qwen2; qwen.c) */
    int decoder;    /* 1 for the RR_FAMILY_QWEN* families */
    int n_kv_heads, head_dim;
    double rope_theta;
    int tied;       /* tie_word_embeddings: the lm_head rows are embed_tokens rows */
    int embed_size; /* jina-reranker-v3: config's embedding_size, 0 when absent */
} rr_config;

#define RR_CONFIG_MAX_BYTES ((size_t)1 << 20) /* config.json larger than this is refused */

/* Reads and validates config.json at `path`. */
rr_status rr_config_load(const char *path, rr_config *cfg, int *is_bert);

/* A weight matrix [rows = out features, cols = in features], row-major, in the file's dtype; a view
 * into the mapping (may be unaligned). */
typedef struct rr_mat {
    const void *data;
    rr_dtype dtype;
    int rows, cols;
} rr_mat;

/* The float matrix `name` checked to be [rows, cols] (else a message naming file, tensor and shapes);
 * its bytes are added to m->weight_bytes. */
rr_status rr_model_mat(rr_model *m, const char *name, int rows, int cols, rr_mat *out);
/* The float vector `name` checked to be [n], converted to an fp32 array owned by the caller. */
rr_status rr_model_vec(rr_model *m, const char *name, int n, float **out);

/* Row r of m converted to fp32 into dst[cols]. */
void rr_mat_row_f32(const rr_mat *m, int r, float *dst);

typedef struct rr_layer {
    rr_mat wq, wk, wv;      /* each [H, H]; jina: row slices of Wqkv [3H, H] */
    float *bqkv;            /* [3H]: q | k | v */
    rr_mat wo;              /* [H, H] attention output projection */
    float *bo;              /* [H] */
    float *ln1_g, *ln1_b;   /* [H] post-attention LayerNorm */
    rr_mat w1;              /* [I, H] FFN up */
    float *b1;              /* [I] */
    rr_mat w2;              /* [H, I] FFN down */
    float *b2;              /* [H] */
    float *ln2_g, *ln2_b;   /* [H] post-FFN LayerNorm */
    /* packed for the kernels by rr_model_pack (pack.c); own their weights and biases */
    rr_linear *lin_qkv;     /* [3H, H] = wq | wk | wv, bias bqkv */
    rr_linear *lin_o;       /* [H, H], bias bo */
    rr_linear *lin_1;       /* [I, H], bias b1 */
    rr_linear *lin_2;       /* [H, I], bias b2 */
} rr_layer;

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
    rr_mat type_emb;        /* [TV, H]: as word_emb, during the load */
    float *type_f32;        /* [TV, H] fp32 copy of type_emb owned by the model (a row or two) */
    float *emb_ln_g, *emb_ln_b; /* [H] */
    rr_layer *layers;       /* [n_layers] */
    rr_mat head_dense;      /* [H, H]: jina/xlmr classifier.dense, BERT pooler.dense */
    float *head_dense_b;    /* [H] */
    rr_mat head_out;        /* [1, H]: classifier.out_proj / BERT classifier */
    float head_out_b;
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

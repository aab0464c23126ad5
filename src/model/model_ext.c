/*
 * model_ext.c -- the weights of the JinaBERT v1, mGTE and ModernBERT families (config_ext.c reads
 * their config.json), mapped onto rr_model's canonical slots, plus what their position schemes
 * need at run time: ALiBi slopes and rotary cos/sin tables.
 *
 * Strict as model.c: every tensor the family's modeling code uses must be present with the dtype
 * and exact shape config.json implies; optional biases are required exactly when the config says
 * the checkpoint has them; a tensor of a variant we do not implement (JinaBERT's query/key norms)
 * is refused by name. Fused Q|K|V matrices stay views into the mapping, as jina-reranker-v2's.
 */
#include "model/model.h"

#include <math.h>
#include <stdio.h>

#define NAME(buf, ...) (snprintf(buf, sizeof buf, __VA_ARGS__), buf)

static rr_status find_float(rr_model *m, const char *name, const rr_st_tensor **out) {
    const rr_st_tensor *t = rr_st_find(m->st, name);
    if (!t) return rr_fail(RR_ERR_FORMAT, "%s: missing tensor %s", rr_st_source(m->st), name);
    if (t->dtype != RR_DTYPE_F32 && t->dtype != RR_DTYPE_F16 && t->dtype != RR_DTYPE_BF16)
        return rr_fail(RR_ERR_UNSUPPORTED, "%s: tensor %s has dtype %s; weights must be F32, F16 or BF16", t->file, name,
                       rr_dtype_name(t->dtype));
    *out = t;
    return RR_OK;
}

static rr_status bad_shape(const rr_st_tensor *t, long r, long c) {
    char got[96] = "";
    size_t n = 0;
    for (int i = 0; i < t->n_dims; i++)
        n += (size_t)snprintf(got + n, sizeof got - n, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
    if (c < 0)
        return rr_fail(RR_ERR_FORMAT, "%s: tensor %s has shape [%s], expected [%ld] from config.json", t->file, t->name,
                       got, r);
    return rr_fail(RR_ERR_FORMAT, "%s: tensor %s has shape [%s], expected [%ld, %ld] from config.json", t->file,
                   t->name, got, r, c);
}

static rr_status mat(rr_model *m, const char *name, int rows, int cols, rr_mat *out) {
    const rr_st_tensor *t;
    rr_status s = find_float(m, name, &t);
    if (s) return s;
    if (t->n_dims != 2 || t->shape[0] != rows || t->shape[1] != cols) return bad_shape(t, rows, cols);
    *out = (rr_mat){t->data, t->dtype, rows, cols};
    m->weight_bytes += t->nbytes;
    return RR_OK;
}

/* A vector [n] as an owned fp32 array; when !want the tensor must be absent and *out stays NULL. */
static rr_status vec(rr_model *m, const char *name, int n, int want, float **out) {
    if (!want) {
        if (rr_st_find(m->st, name))
            return rr_fail(RR_ERR_FORMAT, "%s: tensor %s is present but config.json says the checkpoint has no such "
                           "bias", rr_st_source(m->st), name);
        return RR_OK;
    }
    const rr_st_tensor *t;
    rr_status s = find_float(m, name, &t);
    if (s) return s;
    if (t->n_dims != 1 || t->shape[0] != n) return bad_shape(t, n, -1);
    float *v = rr_malloc((size_t)n * sizeof *v);
    if (!v) return rr_fail(RR_ERR_NOMEM, "out of memory loading %s", name);
    rr_mat row = {t->data, t->dtype, 1, n};
    rr_mat_row_f32(&row, 0, v);
    *out = v;
    m->weight_bytes += (size_t)n * 4;
    return RR_OK;
}

/* Q, K, V as three row views of a fused [3H, H] matrix */
static void split_qkv(const rr_mat *qkv, int H, rr_layer *ly) {
    size_t part = (size_t)H * H * rr_dtype_size(qkv->dtype);
    rr_mat q = {qkv->data, qkv->dtype, H, H};
    ly->wq = ly->wk = ly->wv = q;
    ly->wk.data = (const uint8_t *)qkv->data + part;
    ly->wv.data = (const uint8_t *)qkv->data + 2 * part;
}

/* The word embedding (gathered row by row with pread by the encoder, so counted as the rows a
 * batch reads rather than the table) and the optional token-type table. */
static rr_status embeddings(rr_model *m, const char *word, const char *type) {
    const rr_config *c = &m->cfg;
    rr_status s = mat(m, word, c->vocab_size, c->hidden, &m->word_emb);
    if (s) return s;
    m->weight_bytes -= m->word_emb.rows * (size_t)c->hidden * rr_dtype_size(m->word_emb.dtype);
    m->word_t = rr_st_find(m->st, word);
    rr_st_advise_random(m->word_t);
    if (type && c->type_vocab_size > 0) return mat(m, type, c->type_vocab_size, c->hidden, &m->type_emb);
    return RR_OK;
}

/* ------------------------------------------------------------------ JinaBERT v1 */

static rr_status load_jina_v1(rr_model *m) {
    rr_config *c = &m->cfg;
    int H = c->hidden, I = c->intermediate;
    char n[192], nb[192], nc[192];
    rr_status s;
    if (!rr_st_find(m->st, "bert.encoder.layer.0.mlp.gated_layers.weight"))
        return rr_fail(RR_ERR_FORMAT, "%s: missing tensor bert.encoder.layer.0.mlp.gated_layers.weight (JinaBERT's "
                       "gated feed-forward, expected with position_embedding_type \"alibi\")", rr_st_source(m->st));
    if (rr_st_find(m->st, "bert.encoder.layer.0.attention.self.layer_norm_q.weight"))
        return rr_fail(RR_ERR_UNSUPPORTED, "%s: tensor bert.encoder.layer.0.attention.self.layer_norm_q.weight: the "
                       "query/key-norm JinaBERT variant is not supported", rr_st_source(m->st));
    if ((s = embeddings(m, "bert.embeddings.word_embeddings.weight", "bert.embeddings.token_type_embeddings.weight")) ||
        (s = vec(m, "bert.embeddings.LayerNorm.weight", H, 1, &m->emb_ln_g)) ||
        (s = vec(m, "bert.embeddings.LayerNorm.bias", H, 1, &m->emb_ln_b)))
        return s;
    for (int i = 0; i < c->n_layers; i++) {
        rr_layer *ly = &m->layers[i];
        const char *p = "bert.encoder.layer";
        float *bq = NULL, *bk = NULL, *bv = NULL;
        s = mat(m, NAME(n, "%s.%d.attention.self.query.weight", p, i), H, H, &ly->wq);
        if (!s) s = mat(m, NAME(n, "%s.%d.attention.self.key.weight", p, i), H, H, &ly->wk);
        if (!s) s = mat(m, NAME(n, "%s.%d.attention.self.value.weight", p, i), H, H, &ly->wv);
        if (!s) s = vec(m, NAME(n, "%s.%d.attention.self.query.bias", p, i), H, 1, &bq);
        if (!s) s = vec(m, NAME(nb, "%s.%d.attention.self.key.bias", p, i), H, 1, &bk);
        if (!s) s = vec(m, NAME(nc, "%s.%d.attention.self.value.bias", p, i), H, 1, &bv);
        if (!s && !(ly->bqkv = rr_malloc((size_t)3 * H * sizeof(float)))) s = rr_fail(RR_ERR_NOMEM, "out of memory");
        if (!s) {
            memcpy(ly->bqkv, bq, (size_t)H * 4);
            memcpy(ly->bqkv + H, bk, (size_t)H * 4);
            memcpy(ly->bqkv + 2 * H, bv, (size_t)H * 4);
        }
        rr_free(bq), rr_free(bk), rr_free(bv);
        if (s || (s = mat(m, NAME(n, "%s.%d.attention.output.dense.weight", p, i), H, H, &ly->wo)) ||
            (s = vec(m, NAME(n, "%s.%d.attention.output.dense.bias", p, i), H, 1, &ly->bo)) ||
            (s = vec(m, NAME(n, "%s.%d.attention.output.LayerNorm.weight", p, i), H, 1, &ly->ln1_g)) ||
            (s = vec(m, NAME(n, "%s.%d.attention.output.LayerNorm.bias", p, i), H, 1, &ly->ln1_b)) ||
            (s = mat(m, NAME(n, "%s.%d.mlp.gated_layers.weight", p, i), 2 * I, H, &ly->w1)) ||
            (s = vec(m, NAME(n, "%s.%d.mlp.gated_layers.bias", p, i), 2 * I, 0, &ly->b1)) ||
            (s = mat(m, NAME(n, "%s.%d.mlp.wo.weight", p, i), H, I, &ly->w2)) ||
            (s = vec(m, NAME(n, "%s.%d.mlp.wo.bias", p, i), H, 1, &ly->b2)) ||
            (s = vec(m, NAME(n, "%s.%d.mlp.layernorm.weight", p, i), H, 1, &ly->ln2_g)) ||
            (s = vec(m, NAME(n, "%s.%d.mlp.layernorm.bias", p, i), H, 1, &ly->ln2_b)))
            return s;
    }
    /* the pooler is optional (a checkpoint without it feeds token 0 straight to the classifier) */
    if (rr_st_find(m->st, "bert.pooler.dense.weight")) {
        c->head = RR_HEAD_TANH;
        if ((s = mat(m, "bert.pooler.dense.weight", H, H, &m->head_dense)) ||
            (s = vec(m, "bert.pooler.dense.bias", H, 1, &m->head_dense_b)))
            return s;
    } else {
        c->head = RR_HEAD_PLAIN;
    }
    return RR_OK;
}

/* ------------------------------------------------------------------ mGTE */

static rr_status load_mgte(rr_model *m) {
    const rr_config *c = &m->cfg;
    int H = c->hidden, I = c->intermediate;
    char n[192];
    /* base prefix "new." as NewForSequenceClassification saves it; a bare NewModel has none */
    const char *p = rr_st_find(m->st, "new.embeddings.word_embeddings.weight") ? "new." : "";
    rr_status s;
    if ((s = embeddings(m, NAME(n, "%sembeddings.word_embeddings.weight", p), NULL))) return s;
    if (c->type_vocab_size > 0 &&
        (s = mat(m, NAME(n, "%sembeddings.token_type_embeddings.weight", p), c->type_vocab_size, H, &m->type_emb)))
        return s;
    if ((s = vec(m, NAME(n, "%sembeddings.LayerNorm.weight", p), H, 1, &m->emb_ln_g)) ||
        (s = vec(m, NAME(n, "%sembeddings.LayerNorm.bias", p), H, 1, &m->emb_ln_b)))
        return s;
    for (int i = 0; i < c->n_layers; i++) {
        rr_layer *ly = &m->layers[i];
        rr_mat qkv;
#define L_(fmt) NAME(n, "%sencoder.layer.%d." fmt, p, i)
        if ((s = mat(m, L_("attention.qkv_proj.weight"), 3 * H, H, &qkv)) ||
            (s = vec(m, L_("attention.qkv_proj.bias"), 3 * H, 1, &ly->bqkv)) ||
            (s = mat(m, L_("attention.o_proj.weight"), H, H, &ly->wo)) ||
            (s = vec(m, L_("attention.o_proj.bias"), H, 1, &ly->bo)) ||
            (s = vec(m, L_("attn_ln.weight"), H, 1, &ly->ln1_g)) || (s = vec(m, L_("attn_ln.bias"), H, 1, &ly->ln1_b)) ||
            (s = mat(m, L_("mlp.up_gate_proj.weight"), 2 * I, H, &ly->w1)) ||
            (s = vec(m, L_("mlp.up_gate_proj.bias"), 2 * I, 0, &ly->b1)) ||
            (s = mat(m, L_("mlp.down_proj.weight"), H, I, &ly->w2)) ||
            (s = vec(m, L_("mlp.down_proj.bias"), H, 1, &ly->b2)) ||
            (s = vec(m, L_("mlp_ln.weight"), H, 1, &ly->ln2_g)) || (s = vec(m, L_("mlp_ln.bias"), H, 1, &ly->ln2_b)))
            return s;
#undef L_
        split_qkv(&qkv, H, ly);
    }
    if ((s = mat(m, NAME(n, "%spooler.dense.weight", p), H, H, &m->head_dense)) ||
        (s = vec(m, NAME(n, "%spooler.dense.bias", p), H, 1, &m->head_dense_b)))
        return s;
    return RR_OK;
}

/* ------------------------------------------------------------------ ModernBERT */

static rr_status load_modernbert(rr_model *m) {
    const rr_config *c = &m->cfg;
    int H = c->hidden, I = c->intermediate, nb = c->norm_bias;
    char n[192];
    rr_status s;
    if ((s = embeddings(m, "model.embeddings.tok_embeddings.weight", NULL)) ||
        (s = vec(m, "model.embeddings.norm.weight", H, 1, &m->emb_ln_g)) ||
        (s = vec(m, "model.embeddings.norm.bias", H, nb, &m->emb_ln_b)) ||
        (s = vec(m, "model.final_norm.weight", H, 1, &m->final_ln_g)) ||
        (s = vec(m, "model.final_norm.bias", H, nb, &m->final_ln_b)))
        return s;
    for (int i = 0; i < c->n_layers; i++) {
        rr_layer *ly = &m->layers[i];
        rr_mat qkv;
#define L_(fmt) NAME(n, "model.layers.%d." fmt, i)
        /* layer 0 has no attention norm: the embedding norm already normalised its input */
        if (i == 0 && rr_st_find(m->st, L_("attn_norm.weight")))
            return rr_fail(RR_ERR_FORMAT, "%s: tensor %s is present, but ModernBERT's layer 0 has no attention norm",
                           rr_st_source(m->st), n);
        if (i > 0 && ((s = vec(m, L_("attn_norm.weight"), H, 1, &ly->ln1_g)) ||
                      (s = vec(m, L_("attn_norm.bias"), H, nb, &ly->ln1_b))))
            return s;
        if ((s = mat(m, L_("attn.Wqkv.weight"), 3 * H, H, &qkv)) ||
            (s = vec(m, L_("attn.Wqkv.bias"), 3 * H, c->qkv_bias, &ly->bqkv)) ||
            (s = mat(m, L_("attn.Wo.weight"), H, H, &ly->wo)) ||
            (s = vec(m, L_("attn.Wo.bias"), H, c->qkv_bias, &ly->bo)) ||
            (s = vec(m, L_("mlp_norm.weight"), H, 1, &ly->ln2_g)) ||
            (s = vec(m, L_("mlp_norm.bias"), H, nb, &ly->ln2_b)) ||
            (s = mat(m, L_("mlp.Wi.weight"), 2 * I, H, &ly->w1)) ||
            (s = vec(m, L_("mlp.Wi.bias"), 2 * I, c->mlp_bias, &ly->b1)) ||
            (s = mat(m, L_("mlp.Wo.weight"), H, I, &ly->w2)) ||
            (s = vec(m, L_("mlp.Wo.bias"), H, c->mlp_bias, &ly->b2)))
            return s;
#undef L_
        split_qkv(&qkv, H, ly);
        int global = i % c->global_every == 0;
        ly->window = global ? 0 : c->window;
    }
    if ((s = mat(m, "head.dense.weight", H, H, &m->head_dense)) ||
        (s = vec(m, "head.dense.bias", H, c->head_bias, &m->head_dense_b)) ||
        (s = vec(m, "head.norm.weight", H, 1, &m->head_ln_g)) || (s = vec(m, "head.norm.bias", H, nb, &m->head_ln_b)))
        return s;
    return RR_OK;
}

/* ------------------------------------------------------------------ position terms */

/* Symmetric ALiBi slopes: for a power of two n, 2^(-8 (k+1) / n); otherwise those of the largest
 * power of two p below n, then every other slope of the 2p set until n. */
static void alibi_slopes(int n, float *out) {
    int p = 1;
    while (p * 2 <= n) p *= 2;
    for (int k = 0; k < p; k++) out[k] = (float)pow(2.0, -8.0 * (k + 1) / p);
    for (int k = p; k < n; k++) out[k] = (float)pow(2.0, -8.0 * (2 * (k - p) + 1) / (2 * p));
}

/* cos | sin rows for positions 0..P-1, angles p * inv_freq[j] in double. */
static float *rope_table(int P, int d, double theta, double ntk) {
    int h = d / 2;
    float *t = rr_malloc((size_t)P * d * sizeof *t);
    double inv[512];
    if (!t || h > 512) {
        rr_free(t);
        return NULL;
    }
    for (int j = 0; j < h; j++) {
        /* NTK: the base grows by the factor and every frequency shrinks by factor^(2/d) */
        double base = ntk > 0 ? theta * ntk : theta;
        inv[j] = pow(base, -2.0 * j / d);
        if (ntk > 0) inv[j] /= pow(ntk, 2.0 / d);
    }
    for (int p = 0; p < P; p++)
        for (int j = 0; j < h; j++) {
            double a = p * inv[j];
            t[(size_t)p * d + j] = (float)cos(a);
            t[(size_t)p * d + h + j] = (float)sin(a);
        }
    return t;
}

static rr_status position_terms(rr_model *m) {
    const rr_config *c = &m->cfg;
    int d = c->hidden / c->n_heads;
    if (c->pos_kind == RR_POS_ALIBI) {
        if (!(m->alibi = rr_malloc((size_t)c->n_heads * sizeof *m->alibi))) return rr_fail(RR_ERR_NOMEM, "out of memory");
        alibi_slopes(c->n_heads, m->alibi);
    } else if (c->pos_kind == RR_POS_ROPE) {
        if (d > 1024) return rr_fail(RR_ERR_UNSUPPORTED, "rotary positions with a head size of %d are not supported", d);
        m->rope_tab[0] = rope_table(c->max_length, d, c->rope_base, c->rope_ntk);
        int two = c->rope_base_local != c->rope_base;
        if (two) m->rope_tab[1] = rope_table(c->max_length, d, c->rope_base_local, c->rope_ntk);
        if (!m->rope_tab[0] || (two && !m->rope_tab[1])) return rr_fail(RR_ERR_NOMEM, "out of memory");
        for (int i = 0; i < c->n_layers; i++)
            m->layers[i].rope = m->layers[i].window > 0 && two ? m->rope_tab[1] : m->rope_tab[0];
    }
    if (!(m->zeros = rr_calloc((size_t)c->hidden, sizeof *m->zeros))) return rr_fail(RR_ERR_NOMEM, "out of memory");
    return RR_OK;
}

rr_status rr_model_load_ext(rr_model *m) {
    rr_config *c = &m->cfg;
    m->layers = rr_calloc((size_t)c->n_layers, sizeof *m->layers);
    if (!m->layers) return rr_fail(RR_ERR_NOMEM, "out of memory");
    rr_status s;
    switch (c->family) {
    case RR_FAMILY_JINA_V1: s = load_jina_v1(m); break;
    case RR_FAMILY_MGTE: s = load_mgte(m); break;
    case RR_FAMILY_MODERNBERT: s = load_modernbert(m); break;
    default: return rr_fail(RR_ERR_INVALID, "rr_model_load_ext: family %d", (int)c->family);
    }
    float *ob = NULL;
    if (!s) s = mat(m, "classifier.weight", 1, c->hidden, &m->head_out);
    if (!s) s = vec(m, "classifier.bias", 1, 1, &ob);
    if (!s) m->head_out_b = ob[0];
    rr_free(ob);
    if (!s) s = position_terms(m);
    return s;
}

void rr_model_free_ext(rr_model *m) {
    rr_free(m->head_ln_g);
    rr_free(m->head_ln_b);
    rr_free(m->final_ln_g);
    rr_free(m->final_ln_b);
    rr_free(m->alibi);
    rr_free(m->rope_tab[0]);
    rr_free(m->rope_tab[1]);
    rr_free(m->zeros);
}

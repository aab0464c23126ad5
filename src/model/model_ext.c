/*
 * model_ext.c -- the weights of the JinaBERT v1, mGTE and ModernBERT families (config_ext.c reads
 * their config.json), mapped onto rr_model's canonical slots, plus what their position schemes
 * need at run time: ALiBi slopes and rotary cos/sin tables.
 *
 * Strict as model.c: every tensor the family's modeling code uses must be present with the dtype
 * and exact shape config.json implies; optional biases are required exactly when the config says
 * the checkpoint has them; a tensor of a variant we do not implement (JinaBERT's query/key norms)
 * is refused by name. Fused Q|K|V matrices stay views into the mapping until packed, as
 * jina-reranker-v2's; the tensor lookups and the embedding tables are model.c's (rr_model_mat,
 * rr_model_vec_if, rr_model_embeddings), so these families are unmapped after the load like the others.
 */
#include "model/model.h"

#include <math.h>
#include <stdio.h>

#define NAME(buf, ...) (snprintf(buf, sizeof buf, __VA_ARGS__), buf)

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
    if ((s = rr_model_embeddings(m, "bert.embeddings.word_embeddings.weight", NULL,
                                  "bert.embeddings.token_type_embeddings.weight")) ||
        (s = rr_model_vec_if(m, "bert.embeddings.LayerNorm.weight", H, 1, &m->emb_ln_g)) ||
        (s = rr_model_vec_if(m, "bert.embeddings.LayerNorm.bias", H, 1, &m->emb_ln_b)))
        return s;
    for (int i = 0; i < c->n_layers; i++) {
        rr_layer *ly = &m->layers[i];
        const char *p = "bert.encoder.layer";
        float *bq = NULL, *bk = NULL, *bv = NULL;
        s = rr_model_mat(m, NAME(n, "%s.%d.attention.self.query.weight", p, i), H, H, &ly->wq);
        if (!s) s = rr_model_mat(m, NAME(n, "%s.%d.attention.self.key.weight", p, i), H, H, &ly->wk);
        if (!s) s = rr_model_mat(m, NAME(n, "%s.%d.attention.self.value.weight", p, i), H, H, &ly->wv);
        if (!s) s = rr_model_vec_if(m, NAME(n, "%s.%d.attention.self.query.bias", p, i), H, 1, &bq);
        if (!s) s = rr_model_vec_if(m, NAME(nb, "%s.%d.attention.self.key.bias", p, i), H, 1, &bk);
        if (!s) s = rr_model_vec_if(m, NAME(nc, "%s.%d.attention.self.value.bias", p, i), H, 1, &bv);
        if (!s && !(ly->bqkv = rr_malloc((size_t)3 * H * sizeof(float)))) s = rr_fail(RR_ERR_NOMEM, "out of memory");
        if (!s) {
            memcpy(ly->bqkv, bq, (size_t)H * 4);
            memcpy(ly->bqkv + H, bk, (size_t)H * 4);
            memcpy(ly->bqkv + 2 * H, bv, (size_t)H * 4);
        }
        rr_free(bq), rr_free(bk), rr_free(bv);
        if (s || (s = rr_model_mat(m, NAME(n, "%s.%d.attention.output.dense.weight", p, i), H, H, &ly->wo)) ||
            (s = rr_model_vec_if(m, NAME(n, "%s.%d.attention.output.dense.bias", p, i), H, 1, &ly->bo)) ||
            (s = rr_model_vec_if(m, NAME(n, "%s.%d.attention.output.LayerNorm.weight", p, i), H, 1, &ly->ln1_g)) ||
            (s = rr_model_vec_if(m, NAME(n, "%s.%d.attention.output.LayerNorm.bias", p, i), H, 1, &ly->ln1_b)) ||
            (s = rr_model_mat(m, NAME(n, "%s.%d.mlp.gated_layers.weight", p, i), 2 * I, H, &ly->w1)) ||
            (s = rr_model_vec_if(m, NAME(n, "%s.%d.mlp.gated_layers.bias", p, i), 2 * I, 0, &ly->b1)) ||
            (s = rr_model_mat(m, NAME(n, "%s.%d.mlp.wo.weight", p, i), H, I, &ly->w2)) ||
            (s = rr_model_vec_if(m, NAME(n, "%s.%d.mlp.wo.bias", p, i), H, 1, &ly->b2)) ||
            (s = rr_model_vec_if(m, NAME(n, "%s.%d.mlp.layernorm.weight", p, i), H, 1, &ly->ln2_g)) ||
            (s = rr_model_vec_if(m, NAME(n, "%s.%d.mlp.layernorm.bias", p, i), H, 1, &ly->ln2_b)))
            return s;
    }
    /* the pooler is optional (a checkpoint without it feeds token 0 straight to the classifier) */
    if (rr_st_find(m->st, "bert.pooler.dense.weight")) {
        c->head = RR_HEAD_TANH;
        if ((s = rr_model_mat(m, "bert.pooler.dense.weight", H, H, &m->head_dense)) ||
            (s = rr_model_vec_if(m, "bert.pooler.dense.bias", H, 1, &m->head_dense_b)))
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
    char ty[192];
    if ((s = rr_model_embeddings(m, NAME(n, "%sembeddings.word_embeddings.weight", p), NULL,
                                 NAME(ty, "%sembeddings.token_type_embeddings.weight", p))))
        return s;
    if ((s = rr_model_vec_if(m, NAME(n, "%sembeddings.LayerNorm.weight", p), H, 1, &m->emb_ln_g)) ||
        (s = rr_model_vec_if(m, NAME(n, "%sembeddings.LayerNorm.bias", p), H, 1, &m->emb_ln_b)))
        return s;
    for (int i = 0; i < c->n_layers; i++) {
        rr_layer *ly = &m->layers[i];
        rr_mat qkv;
#define L_(fmt) NAME(n, "%sencoder.layer.%d." fmt, p, i)
        if ((s = rr_model_mat(m, L_("attention.qkv_proj.weight"), 3 * H, H, &qkv)) ||
            (s = rr_model_vec_if(m, L_("attention.qkv_proj.bias"), 3 * H, 1, &ly->bqkv)) ||
            (s = rr_model_mat(m, L_("attention.o_proj.weight"), H, H, &ly->wo)) ||
            (s = rr_model_vec_if(m, L_("attention.o_proj.bias"), H, 1, &ly->bo)) ||
            (s = rr_model_vec_if(m, L_("attn_ln.weight"), H, 1, &ly->ln1_g)) || (s = rr_model_vec_if(m, L_("attn_ln.bias"), H, 1, &ly->ln1_b)) ||
            (s = rr_model_mat(m, L_("mlp.up_gate_proj.weight"), 2 * I, H, &ly->w1)) ||
            (s = rr_model_vec_if(m, L_("mlp.up_gate_proj.bias"), 2 * I, 0, &ly->b1)) ||
            (s = rr_model_mat(m, L_("mlp.down_proj.weight"), H, I, &ly->w2)) ||
            (s = rr_model_vec_if(m, L_("mlp.down_proj.bias"), H, 1, &ly->b2)) ||
            (s = rr_model_vec_if(m, L_("mlp_ln.weight"), H, 1, &ly->ln2_g)) || (s = rr_model_vec_if(m, L_("mlp_ln.bias"), H, 1, &ly->ln2_b)))
            return s;
#undef L_
        rr_split_qkv(&qkv, H, ly);
    }
    if ((s = rr_model_mat(m, NAME(n, "%spooler.dense.weight", p), H, H, &m->head_dense)) ||
        (s = rr_model_vec_if(m, NAME(n, "%spooler.dense.bias", p), H, 1, &m->head_dense_b)))
        return s;
    return RR_OK;
}

/* ------------------------------------------------------------------ ModernBERT */

static rr_status load_modernbert(rr_model *m) {
    const rr_config *c = &m->cfg;
    int H = c->hidden, I = c->intermediate, nb = c->norm_bias;
    char n[192];
    rr_status s;
    if ((s = rr_model_embeddings(m, "model.embeddings.tok_embeddings.weight", NULL, NULL)) ||
        (s = rr_model_vec_if(m, "model.embeddings.norm.weight", H, 1, &m->emb_ln_g)) ||
        (s = rr_model_vec_if(m, "model.embeddings.norm.bias", H, nb, &m->emb_ln_b)) ||
        (s = rr_model_vec_if(m, "model.final_norm.weight", H, 1, &m->final_ln_g)) ||
        (s = rr_model_vec_if(m, "model.final_norm.bias", H, nb, &m->final_ln_b)))
        return s;
    for (int i = 0; i < c->n_layers; i++) {
        rr_layer *ly = &m->layers[i];
        rr_mat qkv;
#define L_(fmt) NAME(n, "model.layers.%d." fmt, i)
        /* layer 0 has no attention norm: the embedding norm already normalised its input */
        if (i == 0 && rr_st_find(m->st, L_("attn_norm.weight")))
            return rr_fail(RR_ERR_FORMAT, "%s: tensor %s is present, but ModernBERT's layer 0 has no attention norm",
                           rr_st_source(m->st), n);
        if (i > 0 && ((s = rr_model_vec_if(m, L_("attn_norm.weight"), H, 1, &ly->ln1_g)) ||
                      (s = rr_model_vec_if(m, L_("attn_norm.bias"), H, nb, &ly->ln1_b))))
            return s;
        if ((s = rr_model_mat(m, L_("attn.Wqkv.weight"), 3 * H, H, &qkv)) ||
            (s = rr_model_vec_if(m, L_("attn.Wqkv.bias"), 3 * H, c->qkv_bias, &ly->bqkv)) ||
            (s = rr_model_mat(m, L_("attn.Wo.weight"), H, H, &ly->wo)) ||
            (s = rr_model_vec_if(m, L_("attn.Wo.bias"), H, c->qkv_bias, &ly->bo)) ||
            (s = rr_model_vec_if(m, L_("mlp_norm.weight"), H, 1, &ly->ln2_g)) ||
            (s = rr_model_vec_if(m, L_("mlp_norm.bias"), H, nb, &ly->ln2_b)) ||
            (s = rr_model_mat(m, L_("mlp.Wi.weight"), 2 * I, H, &ly->w1)) ||
            (s = rr_model_vec_if(m, L_("mlp.Wi.bias"), 2 * I, c->mlp_bias, &ly->b1)) ||
            (s = rr_model_mat(m, L_("mlp.Wo.weight"), H, I, &ly->w2)) ||
            (s = rr_model_vec_if(m, L_("mlp.Wo.bias"), H, c->mlp_bias, &ly->b2)))
            return s;
#undef L_
        rr_split_qkv(&qkv, H, ly);
        int global = i % c->global_every == 0;
        ly->window = global ? 0 : c->window;
    }
    if ((s = rr_model_mat(m, "head.dense.weight", H, H, &m->head_dense)) ||
        (s = rr_model_vec_if(m, "head.dense.bias", H, c->head_bias, &m->head_dense_b)) ||
        (s = rr_model_vec_if(m, "head.norm.weight", H, 1, &m->head_ln_g)) || (s = rr_model_vec_if(m, "head.norm.bias", H, nb, &m->head_ln_b)))
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
    if (!s) s = rr_model_mat(m, "classifier.weight", 1, c->hidden, &m->head_out);
    if (!s) s = rr_model_vec_if(m, "classifier.bias", 1, 1, &ob);
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

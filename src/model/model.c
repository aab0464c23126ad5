/*
 * model.c -- rr_model_load: config + safetensors -> rr_model, for the three supported families.
 *
 * Each family names the same weights differently (jina-reranker-v2 fuses Q/K/V into mixer.Wqkv and
 * puts the embedding LayerNorm at roberta.emb_ln; HF XLM-R and BERT keep separate query/key/value;
 * BERT adds a pooler before its classifier). The tables below map each to the canonical slots of
 * rr_model; every weight is checked for presence, dtype and exact shape (from config.json) here, so
 * the encoder never sees a surprise. Matrices remain views into the mapping in the file's dtype.
 */
#include "model/model.h"

#include <stdio.h>
#include <stdlib.h>

rr_model_params rr_model_default_params(void) {
    rr_model_params p = {.precision = RR_PRECISION_AUTO, .n_threads = 0, .load_tokenizer = true,
                         .prompt = RR_TEMPLATE_AUTO};
    return p;
}

const char *rr_precision_name(rr_precision p) {
    static const char *const names[] = {"auto", "fp32", "bf16", "int8"};
    return (unsigned)p < RR_ARRAY_LEN(names) ? names[p] : "unknown";
}

const char *rr_family_name(rr_family f) {
    static const char *const names[] = {"jina-v2", "xlm-roberta", "bert", "qwen3", "qwen2", "qwen3-cls", "jina-v3",
                                         "jina-v1", "mgte", "modernbert"};
    return (unsigned)f < RR_ARRAY_LEN(names) ? names[f] : "unknown";
}

void rr_mat_row_f32(const rr_mat *m, int r, float *dst) {
    size_t n = (size_t)m->cols;
    const uint8_t *src = (const uint8_t *)m->data + (size_t)r * n * rr_dtype_size(m->dtype);
    switch (m->dtype) {
    case RR_DTYPE_F32: memcpy(dst, src, n * 4); break;
    case RR_DTYPE_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            dst[i] = rr_bf16_to_f32(h);
        }
        break;
    case RR_DTYPE_F16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            dst[i] = rr_f16_to_f32(h);
        }
        break;
    default: RR_ASSERT(!"rr_mat with a non-float dtype");
    }
}

static rr_status find_float(rr_model *m, const char *name, const rr_st_tensor **out) {
    const rr_st_tensor *t = rr_st_find(m->st, name);
    if (!t) return rr_fail(RR_ERR_FORMAT, "%s: missing tensor %s", rr_st_source(m->st), name);
    if (t->dtype != RR_DTYPE_F32 && t->dtype != RR_DTYPE_F16 && t->dtype != RR_DTYPE_BF16)
        return rr_fail(RR_ERR_UNSUPPORTED, "%s: tensor %s has dtype %s; weights must be F32, F16 or BF16", t->file, name,
                       rr_dtype_name(t->dtype));
    *out = t;
    return RR_OK;
}

static rr_status shape_error(const rr_st_tensor *t, long r, long c) {
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

rr_status rr_model_mat(rr_model *m, const char *name, int rows, int cols, rr_mat *out) {
    const rr_st_tensor *t;
    rr_status s = find_float(m, name, &t);
    if (s) return s;
    if (t->n_dims != 2 || t->shape[0] != rows || t->shape[1] != cols) return shape_error(t, rows, cols);
    *out = (rr_mat){t->data, t->dtype, rows, cols};
    m->weight_bytes += t->nbytes;
    return RR_OK;
}

rr_status rr_model_vec_if(rr_model *m, const char *name, int n, int want, float **out) {
    if (!want) {
        if (rr_st_find(m->st, name))
            return rr_fail(RR_ERR_FORMAT, "%s: tensor %s is present but config.json says the checkpoint has no such "
                           "bias", rr_st_source(m->st), name);
        return RR_OK;
    }
    const rr_st_tensor *t;
    rr_status s = find_float(m, name, &t);
    if (s) return s;
    if (t->n_dims != 1 || t->shape[0] != n) return shape_error(t, n, -1);
    float *v = rr_malloc((size_t)n * sizeof *v);
    if (!v) return rr_fail(RR_ERR_NOMEM, "out of memory loading %s", name);
    rr_mat row = {t->data, t->dtype, 1, n};
    rr_mat_row_f32(&row, 0, v);
    *out = v;
    m->weight_bytes += (size_t)n * 4;
    return RR_OK;
}

rr_status rr_model_vec(rr_model *m, const char *name, int n, float **out) { return rr_model_vec_if(m, name, n, 1, out); }

/* Three [n] vectors concatenated into one owned [3n] array. */
static rr_status get_vec3(rr_model *m, const char *a, const char *b, const char *c, int n, float **out) {
    float *parts[3] = {0};
    const char *names[3] = {a, b, c};
    rr_status s = RR_OK;
    for (int i = 0; i < 3 && !s; i++) s = rr_model_vec(m, names[i], n, &parts[i]);
    float *v = s ? NULL : rr_malloc((size_t)3 * n * sizeof *v);
    if (!s && !v) s = rr_fail(RR_ERR_NOMEM, "out of memory");
    if (!s) {
        for (int i = 0; i < 3; i++) memcpy(v + (size_t)i * n, parts[i], (size_t)n * sizeof *v);
        *out = v;
    }
    for (int i = 0; i < 3; i++) rr_free(parts[i]);
    return s;
}

void rr_split_qkv(const rr_mat *qkv, int H, rr_layer *ly) {
    size_t part = (size_t)H * H * rr_dtype_size(qkv->dtype);
    rr_mat q = {qkv->data, qkv->dtype, H, H};
    ly->wq = ly->wk = ly->wv = q;
    ly->wk.data = (const uint8_t *)qkv->data + part;
    ly->wv.data = (const uint8_t *)qkv->data + 2 * part;
}

/* A table whose rows are gathered with pread at run time: checked [rows, H], its tensor kept, its
 * bytes not counted (a batch reads only the rows it needs). */
static rr_status pread_table(rr_model *m, const char *name, int rows, rr_mat *view, const rr_st_tensor **t) {
    rr_status s = rr_model_mat(m, name, rows, m->cfg.hidden, view);
    if (s) return s;
    m->weight_bytes -= (size_t)rows * m->cfg.hidden * rr_dtype_size(view->dtype);
    *t = rr_st_find(m->st, name);
    return RR_OK;
}

rr_status rr_model_embeddings(rr_model *m, const char *word, const char *pos, const char *type) {
    const rr_config *c = &m->cfg;
    int H = c->hidden;
    rr_status s = pread_table(m, word, c->vocab_size, &m->word_emb, &m->word_t);
    if (!s && pos) s = pread_table(m, pos, c->max_positions, &m->pos_emb, &m->pos_t);
    if (s || !type || c->type_vocab_size < 1) return s;
    if ((s = rr_model_mat(m, type, c->type_vocab_size, H, &m->type_emb))) return s;
    m->weight_bytes -= (size_t)c->type_vocab_size * H * rr_dtype_size(m->type_emb.dtype);
    if (!(m->type_f32 = rr_malloc((size_t)c->type_vocab_size * H * sizeof(float))))
        return rr_fail(RR_ERR_NOMEM, "out of memory");
    for (int r = 0; r < c->type_vocab_size; r++) rr_mat_row_f32(&m->type_emb, r, m->type_f32 + (size_t)r * H);
    m->weight_bytes += (size_t)c->type_vocab_size * H * sizeof(float);
    return RR_OK;
}

#define NAME(buf, ...) (snprintf(buf, sizeof buf, __VA_ARGS__), buf)

static rr_status load_layer_jina(rr_model *m, int i, rr_layer *ly) {
    const rr_config *c = &m->cfg;
    int H = c->hidden, I = c->intermediate;
    char n[160];
    rr_mat qkv;
    rr_status s;
    if ((s = rr_model_mat(m, NAME(n, "roberta.encoder.layers.%d.mixer.Wqkv.weight", i), 3 * H, H, &qkv)) ||
        (s = rr_model_vec(m, NAME(n, "roberta.encoder.layers.%d.mixer.Wqkv.bias", i), 3 * H, &ly->bqkv)) ||
        (s = rr_model_mat(m, NAME(n, "roberta.encoder.layers.%d.mixer.out_proj.weight", i), H, H, &ly->wo)) ||
        (s = rr_model_vec(m, NAME(n, "roberta.encoder.layers.%d.mixer.out_proj.bias", i), H, &ly->bo)) ||
        (s = rr_model_vec(m, NAME(n, "roberta.encoder.layers.%d.norm1.weight", i), H, &ly->ln1_g)) ||
        (s = rr_model_vec(m, NAME(n, "roberta.encoder.layers.%d.norm1.bias", i), H, &ly->ln1_b)) ||
        (s = rr_model_mat(m, NAME(n, "roberta.encoder.layers.%d.mlp.fc1.weight", i), I, H, &ly->w1)) ||
        (s = rr_model_vec(m, NAME(n, "roberta.encoder.layers.%d.mlp.fc1.bias", i), I, &ly->b1)) ||
        (s = rr_model_mat(m, NAME(n, "roberta.encoder.layers.%d.mlp.fc2.weight", i), H, I, &ly->w2)) ||
        (s = rr_model_vec(m, NAME(n, "roberta.encoder.layers.%d.mlp.fc2.bias", i), H, &ly->b2)) ||
        (s = rr_model_vec(m, NAME(n, "roberta.encoder.layers.%d.norm2.weight", i), H, &ly->ln2_g)) ||
        (s = rr_model_vec(m, NAME(n, "roberta.encoder.layers.%d.norm2.bias", i), H, &ly->ln2_b)))
        return s;
    rr_split_qkv(&qkv, H, ly);
    return RR_OK;
}

/* HF BertLayer / XLMRobertaLayer names, under `prefix` ("roberta." or "bert."). */
static rr_status load_layer_hf(rr_model *m, const char *prefix, int i, rr_layer *ly) {
    const rr_config *c = &m->cfg;
    int H = c->hidden, I = c->intermediate;
    char n[160], nb[160], nc[160];
    const char *p = prefix;
    rr_status s;
    if ((s = rr_model_mat(m, NAME(n, "%sencoder.layer.%d.attention.self.query.weight", p, i), H, H, &ly->wq)) ||
        (s = rr_model_mat(m, NAME(n, "%sencoder.layer.%d.attention.self.key.weight", p, i), H, H, &ly->wk)) ||
        (s = rr_model_mat(m, NAME(n, "%sencoder.layer.%d.attention.self.value.weight", p, i), H, H, &ly->wv)) ||
        (s = get_vec3(m, NAME(n, "%sencoder.layer.%d.attention.self.query.bias", p, i),
                      NAME(nb, "%sencoder.layer.%d.attention.self.key.bias", p, i),
                      NAME(nc, "%sencoder.layer.%d.attention.self.value.bias", p, i), H, &ly->bqkv)) ||
        (s = rr_model_mat(m, NAME(n, "%sencoder.layer.%d.attention.output.dense.weight", p, i), H, H, &ly->wo)) ||
        (s = rr_model_vec(m, NAME(n, "%sencoder.layer.%d.attention.output.dense.bias", p, i), H, &ly->bo)) ||
        (s = rr_model_vec(m, NAME(n, "%sencoder.layer.%d.attention.output.LayerNorm.weight", p, i), H, &ly->ln1_g)) ||
        (s = rr_model_vec(m, NAME(n, "%sencoder.layer.%d.attention.output.LayerNorm.bias", p, i), H, &ly->ln1_b)) ||
        (s = rr_model_mat(m, NAME(n, "%sencoder.layer.%d.intermediate.dense.weight", p, i), I, H, &ly->w1)) ||
        (s = rr_model_vec(m, NAME(n, "%sencoder.layer.%d.intermediate.dense.bias", p, i), I, &ly->b1)) ||
        (s = rr_model_mat(m, NAME(n, "%sencoder.layer.%d.output.dense.weight", p, i), H, I, &ly->w2)) ||
        (s = rr_model_vec(m, NAME(n, "%sencoder.layer.%d.output.dense.bias", p, i), H, &ly->b2)) ||
        (s = rr_model_vec(m, NAME(n, "%sencoder.layer.%d.output.LayerNorm.weight", p, i), H, &ly->ln2_g)) ||
        (s = rr_model_vec(m, NAME(n, "%sencoder.layer.%d.output.LayerNorm.bias", p, i), H, &ly->ln2_b)))
        return s;
    return RR_OK;
}

static rr_status load_weights(rr_model *m, const char *dir) {
    rr_config *c = &m->cfg;
    int H = c->hidden;
    const char *p = c->family == RR_FAMILY_BERT ? "bert." : "roberta.";
    if (c->family == RR_FAMILY_JINA_V1 || c->family == RR_FAMILY_MGTE || c->family == RR_FAMILY_MODERNBERT)
        return rr_model_load_ext(m); /* model_ext.c */
    if (c->family == RR_FAMILY_XLMR && rr_st_find(m->st, "roberta.encoder.layers.0.mixer.Wqkv.weight"))
        c->family = RR_FAMILY_JINA_V2;
    if (c->type_vocab_size < 1)
        return rr_fail(RR_ERR_FORMAT, "%s/config.json: type_vocab_size must be at least 1", dir);
    char w[160], ps[160], ty[160];
    rr_status s = rr_model_embeddings(m, NAME(w, "%sembeddings.word_embeddings.weight", p),
                                      NAME(ps, "%sembeddings.position_embeddings.weight", p),
                                      NAME(ty, "%sembeddings.token_type_embeddings.weight", p));
    if (s) return s;
    const char *ln = c->family == RR_FAMILY_JINA_V2 ? "roberta.emb_ln" : NULL;
    char lnw[160], lnb[160];
    if (ln) {
        NAME(lnw, "%s.weight", ln);
        NAME(lnb, "%s.bias", ln);
    } else {
        NAME(lnw, "%sembeddings.LayerNorm.weight", p);
        NAME(lnb, "%sembeddings.LayerNorm.bias", p);
    }
    if ((s = rr_model_vec(m, lnw, H, &m->emb_ln_g)) || (s = rr_model_vec(m, lnb, H, &m->emb_ln_b))) return s;

    m->layers = rr_calloc((size_t)c->n_layers, sizeof *m->layers);
    if (!m->layers) return rr_fail(RR_ERR_NOMEM, "out of memory");
    for (int i = 0; i < c->n_layers; i++) {
        s = c->family == RR_FAMILY_JINA_V2 ? load_layer_jina(m, i, &m->layers[i]) : load_layer_hf(m, p, i, &m->layers[i]);
        if (s) return s;
    }

    float *ob = NULL;
    if (c->family == RR_FAMILY_BERT) {
        if ((s = rr_model_mat(m, "bert.pooler.dense.weight", H, H, &m->head_dense)) ||
            (s = rr_model_vec(m, "bert.pooler.dense.bias", H, &m->head_dense_b)) ||
            (s = rr_model_mat(m, "classifier.weight", 1, H, &m->head_out)) || (s = rr_model_vec(m, "classifier.bias", 1, &ob)))
            return s;
    } else {
        if ((s = rr_model_mat(m, "classifier.dense.weight", H, H, &m->head_dense)) ||
            (s = rr_model_vec(m, "classifier.dense.bias", H, &m->head_dense_b)) ||
            (s = rr_model_mat(m, "classifier.out_proj.weight", 1, H, &m->head_out)) ||
            (s = rr_model_vec(m, "classifier.out_proj.bias", 1, &ob)))
            return s;
    }
    m->head_out_b = ob[0];
    rr_free(ob);
    return RR_OK;
}

/* tokenizer.json is optional: without it the model scores token ids only. */
static rr_status load_tokenizer(rr_model *m, const char *dir) {
    char *path = rr_path_join(dir, "tokenizer.json");
    if (!path) return rr_fail(RR_ERR_NOMEM, "out of memory");
    rr_status s = RR_OK;
    if (rr_file_exists(path)) {
        s = rr_tokenizer_load(dir, &m->tok);
        if (!s && rr_tokenizer_vocab_size(m->tok) > m->cfg.vocab_size)
            s = rr_fail(RR_ERR_FORMAT, "%s: the tokenizer has %d pieces but the model's vocab_size is %d", path,
                        rr_tokenizer_vocab_size(m->tok), m->cfg.vocab_size);
    }
    rr_free(path);
    return s;
}

const rr_tokenizer *rr_model_tokenizer(const rr_model *m) { return m ? m->tok : NULL; }

/* Everything the forward pass needs is packed or owned now, except the embedding tables read with
 * pread: drop the mappings and the views into them, so no page of a weight file is ever touched
 * through memory again (a truncated file would raise SIGBUS there), whatever the family. */
static void unmap_weights(rr_model *m) {
    rr_st_unmap(m->st);
    m->word_emb.data = m->pos_emb.data = m->type_emb.data = NULL;
    m->head_dense.data = m->head_out.data = NULL;
    for (int i = 0; m->layers && i < m->cfg.n_layers; i++) {
        rr_layer *l = &m->layers[i];
        l->wq.data = l->wk.data = l->wv.data = l->wo.data = l->w1.data = l->w2.data = NULL;
    }
    for (int i = 0; m->dec && m->dec->layers && i < m->cfg.n_layers; i++) {
        rr_dec_layer *l = &m->dec->layers[i];
        l->wq.data = l->wk.data = l->wv.data = l->wo.data = l->wg.data = l->wu.data = l->wd.data = NULL;
    }
}

rr_status rr_model_load(const char *dir, const rr_model_params *params, rr_model **out) {
    rr_model_params p = params ? *params : rr_model_default_params();
    if (!dir || !out) return rr_fail(RR_ERR_INVALID, "rr_model_load: NULL argument");
    if ((unsigned)p.precision > RR_PRECISION_INT8)
        return rr_fail(RR_ERR_INVALID, "rr_model_load: unknown precision %d", (int)p.precision);
    rr_model *m = rr_calloc(1, sizeof *m);
    if (!m) return rr_fail(RR_ERR_NOMEM, "out of memory");
    int is_bert = 0;
    char *cfg_path = rr_path_join(dir, "config.json");
    rr_status s = cfg_path ? rr_config_load(cfg_path, &m->cfg, &is_bert) : rr_fail(RR_ERR_NOMEM, "out of memory");
    rr_free(cfg_path);
    if (!s) {
        m->name = rr_strdup(dir);
        if (!m->name) s = rr_fail(RR_ERR_NOMEM, "out of memory");
    }
    if (!s && !m->cfg.decoder && p.prompt != RR_TEMPLATE_AUTO && p.prompt != RR_TEMPLATE_NONE)
        s = rr_fail(RR_ERR_INVALID, "%s: the %s prompt template is for decoder rerankers; this is an encoder", dir,
                    rr_template_name(p.prompt));
    if (!s && (unsigned)p.prompt > RR_TEMPLATE_JINA_V3)
        s = rr_fail(RR_ERR_INVALID, "rr_model_load: unknown prompt template %d", (int)p.prompt);
    m->n_threads = p.n_threads;
    if (!s) s = rr_st_open_dir(dir, &m->st);
    if (!s && !m->cfg.decoder) s = load_weights(m, dir);
    if (!s && p.load_tokenizer) s = load_tokenizer(m, dir);
    if (!s) s = m->cfg.decoder ? rr_qwen_load(m, dir, p.prompt, p.precision) : rr_model_pack(m, p.precision);
    /* no family keeps a view into the files once packed: embedding rows are read with pread, every
     * other table is packed or copied */
    if (!s) unmap_weights(m);
    if (s) {
        rr_model_free(m);
        return s;
    }
    *out = m;
    return RR_OK;
}

static void free_layer(rr_layer *l) {
    rr_free(l->bqkv);
    rr_free(l->bo);
    rr_free(l->ln1_g);
    rr_free(l->ln1_b);
    rr_free(l->b1);
    rr_free(l->b2);
    rr_free(l->ln2_g);
    rr_free(l->ln2_b);
}

void rr_model_free(rr_model *m) {
    if (!m) return;
    rr_qwen_free(m);
    rr_model_unpack(m);
    if (m->layers)
        for (int i = 0; i < m->cfg.n_layers; i++) free_layer(&m->layers[i]);
    rr_free(m->layers);
    rr_free(m->emb_ln_g);
    rr_free(m->emb_ln_b);
    rr_free(m->head_dense_b);
    rr_free(m->type_f32);
    rr_model_free_ext(m);
    rr_st_close(m->st);
    rr_tokenizer_free(m->tok);
    rr_free(m->name);
    rr_free(m);
}

void rr_model_get_info(const rr_model *m, rr_model_info *info) {
    memset(info, 0, sizeof *info);
    const rr_config *c = &m->cfg;
    info->family = c->family;
    info->embed_size = m->dec ? m->dec->embed_size : 0;
    info->name = m->name;
    info->n_layers = c->n_layers;
    info->hidden = c->hidden;
    info->n_heads = c->n_heads;
    info->intermediate = c->intermediate;
    info->vocab_size = c->vocab_size;
    info->max_positions = c->max_positions;
    info->type_vocab_size = c->type_vocab_size;
    info->pad_id = c->pad_id;
    info->max_length = c->max_length;
    info->layer_norm_eps = c->eps;
    info->precision = m->precision;
    info->kernels = rr_kern_name(m->kern);
    info->weight_bytes = m->weight_bytes;
    info->prompt = m->dec ? m->dec->prompt : RR_TEMPLATE_NONE;
    info->n_kv_heads = c->decoder ? c->n_kv_heads : c->n_heads;
    info->head_dim = c->decoder ? c->head_dim : c->hidden / c->n_heads;
    info->default_instruction = rr_template_default_instruction(info->prompt);
}

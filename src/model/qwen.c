/*
 * qwen.c -- loading the decoder rerankers: Qwen3ForCausalLM (Qwen3-Reranker), Qwen2ForCausalLM
 * (mxbai-rerank-v2) and Qwen3ForSequenceClassification (a Qwen3 reranker converted to one score row).
 *
 * config.json gives the shapes; head_dim is read, not derived, for Qwen3 (whose 0.6B has 16 heads of
 * 128 over a hidden size of 1024), and defaults as the model classes do. Every weight is checked for
 * presence, dtype and exact shape; byte ranges were checked when the files were opened. The linears
 * are packed for the kernels at the requested precision (Q|K|V stacked into one, gate|up into one),
 * and the mapped pages are released afterwards. The lm_head is never packed: a reranker reads two of
 * its rows (yes/no, or "1"/"0"), copied to fp32 here; a classifier reads its one score row.
 *
 * The prompt template is decided here, once, in this order: the caller's explicit choice, the model
 * card README.md in the folder (its front matter and title name the model), the architecture
 * (Qwen3 -> Qwen3-Reranker). A decoder none of these identifies is refused. The rows the score reads
 * are looked up in the tokenizer ("yes"/"no" pieces for Qwen3-Reranker, "1"/"0" for mxbai), falling
 * back to the ids the spec measured when the folder has no tokenizer.
 */
#include "model/model.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

/* Longest sequence a decoder scores: the reference rerankers' max_length (8192) plus room for
 * mxbai's fixed pieces, which come on top of it (79 ids). The position table allows more (RoPE), but
 * every pass holds all of a sequence's rows, so the context's scratch grows with this bound. */
#define DEC_MAX_LENGTH (8192 + 256)

const char *rr_template_name(rr_template t) {
    switch (t) {
    case RR_TEMPLATE_AUTO: return "auto";
    case RR_TEMPLATE_NONE: return "none";
    case RR_TEMPLATE_QWEN3_RERANKER: return "qwen3-reranker";
    case RR_TEMPLATE_MXBAI_V2: return "mxbai-rerank-v2";
    }
    return "unknown";
}

int rr_template_parse(const char *name) {
    if (!name) return -1;
    for (int t = RR_TEMPLATE_AUTO; t <= RR_TEMPLATE_MXBAI_V2; t++)
        if (!strcmp(name, rr_template_name((rr_template)t))) return t;
    return -1;
}

const char *rr_template_default_instruction(rr_template t) {
    /* Qwen3-Reranker's reference code fills its <Instruct> slot with this when none is given; mxbai
     * leaves the instruction line out */
    return t == RR_TEMPLATE_QWEN3_RERANKER ? "Given a web search query, retrieve relevant passages that answer the query"
                                           : NULL;
}

/* ------------------------------------------------------------------ config.json */

static rr_status need(const cJSON *j, const char *path, const char *key, long lo, long hi, int *out) {
    long v;
    rr_status s = rr_json_get_int(j, key, lo, hi, path, &v);
    if (s == RR_ERR_NOT_FOUND) return rr_fail(RR_ERR_FORMAT, "%s: missing field \"%s\"", path, key);
    if (s) return s;
    *out = (int)v;
    return RR_OK;
}

static rr_status opt(const cJSON *j, const char *path, const char *key, long lo, long hi, int dflt, int *out) {
    long v;
    rr_status s = rr_json_get_int(j, key, lo, hi, path, &v);
    if (s == RR_ERR_NOT_FOUND) v = dflt;
    else if (s) return s;
    *out = (int)v;
    return RR_OK;
}

static int json_true(const cJSON *j, const char *key) { return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, key)); }

static int json_set(const cJSON *j, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    return v && !cJSON_IsNull(v);
}

rr_status rr_qwen_config(const cJSON *j, const char *path, const char *arch, rr_config *c) {
    int qwen3 = !strncmp(arch, "Qwen3", 5);
    const char *mt = rr_json_get_str(j, "model_type");
    if (mt && strcmp(mt, qwen3 ? "qwen3" : "qwen2"))
        return rr_fail(RR_ERR_UNSUPPORTED, "%s: model_type \"%s\" does not match architecture %s", path, mt, arch);
    rr_status s;
    if ((s = need(j, path, "vocab_size", 1, 10000000, &c->vocab_size)) ||
        (s = need(j, path, "hidden_size", 1, 65536, &c->hidden)) ||
        (s = need(j, path, "num_hidden_layers", 1, 1024, &c->n_layers)) ||
        (s = need(j, path, "num_attention_heads", 1, 1024, &c->n_heads)) ||
        (s = need(j, path, "intermediate_size", 1, 1 << 20, &c->intermediate)) ||
        (s = need(j, path, "max_position_embeddings", 1, 1 << 24, &c->max_positions)) ||
        (s = opt(j, path, "num_key_value_heads", 1, 1024, c->n_heads, &c->n_kv_heads)))
        return s;
    /* Qwen3's config class has head_dim (default 128); Qwen2's attention falls back to H / heads */
    int dflt_d = qwen3 ? 128 : c->hidden / c->n_heads;
    if (!qwen3 && !json_set(j, "head_dim") && c->hidden % c->n_heads)
        return rr_fail(RR_ERR_FORMAT, "%s: hidden_size %d is not a multiple of num_attention_heads %d", path, c->hidden,
                       c->n_heads);
    if ((s = opt(j, path, "head_dim", 2, 1024, dflt_d, &c->head_dim))) return s;
    if (c->head_dim % 2) return rr_fail(RR_ERR_FORMAT, "%s: head_dim %d is odd (rotary pairs)", path, c->head_dim);
    if (c->n_heads % c->n_kv_heads)
        return rr_fail(RR_ERR_FORMAT, "%s: num_attention_heads %d is not a multiple of num_key_value_heads %d", path,
                       c->n_heads, c->n_kv_heads);
    double eps = 1e-6;
    s = rr_json_get_double(j, "rms_norm_eps", path, &eps);
    if (s && s != RR_ERR_NOT_FOUND) return s;
    if (!(eps > 0 && eps < 1)) return rr_fail(RR_ERR_FORMAT, "%s: rms_norm_eps %g is not in (0, 1)", path, eps);
    c->eps = (float)eps;
    /* rope_theta at the top level, or inside rope_parameters (newer transformers) */
    double theta = 10000.0;
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(j, "rope_parameters");
    s = rr_json_get_double(j, "rope_theta", path, &theta);
    if (s == RR_ERR_NOT_FOUND && cJSON_IsObject(rp)) s = rr_json_get_double(rp, "rope_theta", path, &theta);
    if (s && s != RR_ERR_NOT_FOUND) return s;
    if (!(theta > 1)) return rr_fail(RR_ERR_FORMAT, "%s: rope_theta %g must be above 1", path, theta);
    c->rope_theta = theta;
    if (json_set(j, "rope_scaling"))
        return rr_fail(RR_ERR_UNSUPPORTED, "%s: rope_scaling is set; only the default rotary embedding is supported",
                       path);
    if (cJSON_IsObject(rp)) {
        const char *rt = rr_json_get_str(rp, "rope_type");
        if (rt && strcmp(rt, "default"))
            return rr_fail(RR_ERR_UNSUPPORTED, "%s: rope_type \"%s\" is not supported (only \"default\")", path, rt);
    }
    const char *act = rr_json_get_str(j, "hidden_act");
    if (act && strcmp(act, "silu"))
        return rr_fail(RR_ERR_UNSUPPORTED, "%s: hidden_act \"%s\" is not supported (only \"silu\")", path, act);
    if (json_true(j, "use_sliding_window"))
        return rr_fail(RR_ERR_UNSUPPORTED, "%s: use_sliding_window is true; only full attention is supported", path);
    if (qwen3 && json_true(j, "attention_bias"))
        return rr_fail(RR_ERR_UNSUPPORTED, "%s: attention_bias is true; Qwen3 rerankers have none", path);
    c->tied = json_true(j, "tie_word_embeddings");
    if (!strcmp(arch, "Qwen3ForSequenceClassification")) {
        int labels = 1;
        const cJSON *id2label = cJSON_GetObjectItemCaseSensitive(j, "id2label");
        if ((s = opt(j, path, "num_labels", 1, 1 << 20, 1, &labels))) return s;
        if (cJSON_IsObject(id2label)) labels = cJSON_GetArraySize(id2label);
        if (labels != 1)
            return rr_fail(RR_ERR_UNSUPPORTED, "%s: %d labels (id2label); rerank needs a one-label classifier", path,
                           labels);
        c->family = RR_FAMILY_QWEN3_CLS;
    } else {
        c->family = qwen3 ? RR_FAMILY_QWEN3 : RR_FAMILY_QWEN2;
    }
    c->decoder = 1;
    c->type_vocab_size = 1;
    c->pos_offset = 0;
    if ((s = opt(j, path, "pad_token_id", 0, c->vocab_size - 1, RR_MIN(151643, c->vocab_size - 1), &c->pad_id)))
        return s;
    c->max_length = RR_MIN(c->max_positions, DEC_MAX_LENGTH);
    return RR_OK;
}

/* ------------------------------------------------------------------ template */

/* Which reranker a piece of a card names: RR_TEMPLATE_AUTO for none or both. */
static rr_status names_in(const char *from, size_t n, rr_template *t) {
    char *low = rr_malloc(n + 1);
    if (!low) return rr_fail(RR_ERR_NOMEM, "out of memory reading the model card");
    for (size_t i = 0; i < n; i++) low[i] = (char)tolower((unsigned char)from[i]);
    low[n] = 0;
    int qwen = strstr(low, "qwen3-reranker") != NULL, mxbai = strstr(low, "mxbai-rerank") != NULL;
    rr_free(low);
    *t = qwen == mxbai ? RR_TEMPLATE_AUTO : qwen ? RR_TEMPLATE_QWEN3_RERANKER : RR_TEMPLATE_MXBAI_V2;
    return RR_OK;
}

/* The model a card names: its first "# " title, else its YAML front matter (case-insensitive). A
 * missing or unreadable card names nothing; only running out of memory is an error. */
static rr_status card_template(const char *dir, rr_template *t) {
    *t = RR_TEMPLATE_AUTO;
    char *path = rr_path_join(dir, "README.md"), *text = NULL;
    size_t len = 0;
    if (!path) return rr_fail(RR_ERR_NOMEM, "out of memory");
    rr_status s = rr_file_exists(path) ? rr_file_read(path, 4u << 20, &text, &len) : RR_ERR_NOT_FOUND;
    rr_free(path);
    if (s == RR_ERR_NOMEM) return s;
    if (s) return RR_OK;
    size_t head = 0; /* bytes of front matter */
    if (!strncmp(text, "---\n", 4) || !strncmp(text, "---\r\n", 5)) {
        const char *end = strstr(text + 3, "\n---");
        head = end ? (size_t)(end - text) : 0;
    }
    for (const char *p = text + head; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (p[0] == '#' && p[1] == ' ') {
            s = names_in(p, strcspn(p, "\n"), t);
            break;
        }
    if (!s && *t == RR_TEMPLATE_AUTO) s = names_in(text, head, t);
    rr_free(text);
    return s;
}

/* The id of the vocabulary piece `piece` in the folder's tokenizer, else `fallback` (the id the spec
 * measured with the Qwen tokenizer); -1 when neither is in range. */
static int32_t piece_id(const rr_model *m, const char *piece, int32_t fallback) {
    if (m->tok) return rr_tokenizer_piece_to_id(m->tok, piece); /* as convert_tokens_to_ids */
    return fallback < m->cfg.vocab_size ? fallback : -1;
}

static rr_status resolve_template(rr_model *m, const char *dir, rr_template want) {
    rr_dec *d = m->dec;
    const rr_config *c = &m->cfg;
    if (want == RR_TEMPLATE_NONE)
        return rr_fail(RR_ERR_INVALID, "%s: a decoder reranker needs a prompt template (--template qwen3-reranker or "
                       "mxbai-rerank-v2), not \"none\"", dir);
    rr_status s = want == RR_TEMPLATE_AUTO ? card_template(dir, &want) : RR_OK;
    if (s) return s;
    if (want == RR_TEMPLATE_AUTO && (c->family == RR_FAMILY_QWEN3 || c->family == RR_FAMILY_QWEN3_CLS))
        want = RR_TEMPLATE_QWEN3_RERANKER;
    if (want == RR_TEMPLATE_AUTO)
        return rr_fail(RR_ERR_UNSUPPORTED,
                       "%s: cannot tell which reranker prompt this %s folder needs (no model card naming it); "
                       "pass --template qwen3-reranker or --template mxbai-rerank-v2",
                       dir, c->family == RR_FAMILY_QWEN2 ? "Qwen2ForCausalLM" : "Qwen3ForCausalLM");
    d->prompt = want;
    if (c->family == RR_FAMILY_QWEN3_CLS) {
        d->head_ids[0] = d->head_ids[1] = -1;
        return RR_OK;
    }
    const char *yes = want == RR_TEMPLATE_QWEN3_RERANKER ? "yes" : "1";
    const char *no = want == RR_TEMPLATE_QWEN3_RERANKER ? "no" : "0";
    d->head_ids[0] = piece_id(m, yes, want == RR_TEMPLATE_QWEN3_RERANKER ? 9693 : 16);
    d->head_ids[1] = piece_id(m, no, want == RR_TEMPLATE_QWEN3_RERANKER ? 2152 : 15);
    for (int i = 0; i < 2; i++)
        if (d->head_ids[i] < 0 || d->head_ids[i] >= c->vocab_size)
            return rr_fail(RR_ERR_FORMAT, "%s: the %s template scores the token \"%s\", which %s", dir,
                           rr_template_name(want), i ? no : yes,
                           m->tok ? "the tokenizer does not have" : "is outside the vocabulary");
    return RR_OK;
}

/* ------------------------------------------------------------------ weights */

#define NAME(buf, ...) (snprintf(buf, sizeof buf, __VA_ARGS__), buf)

static rr_status load_layer(rr_model *m, int i, rr_dec_layer *ly) {
    const rr_config *c = &m->cfg;
    int H = c->hidden, I = c->intermediate, d = c->head_dim, nq = c->n_heads * d, nkv = c->n_kv_heads * d;
    char n[160];
    const char *p = "model.layers";
    rr_status s;
    if ((s = rr_model_mat(m, NAME(n, "%s.%d.self_attn.q_proj.weight", p, i), nq, H, &ly->wq)) ||
        (s = rr_model_mat(m, NAME(n, "%s.%d.self_attn.k_proj.weight", p, i), nkv, H, &ly->wk)) ||
        (s = rr_model_mat(m, NAME(n, "%s.%d.self_attn.v_proj.weight", p, i), nkv, H, &ly->wv)) ||
        (s = rr_model_mat(m, NAME(n, "%s.%d.self_attn.o_proj.weight", p, i), H, nq, &ly->wo)) ||
        (s = rr_model_mat(m, NAME(n, "%s.%d.mlp.gate_proj.weight", p, i), I, H, &ly->wg)) ||
        (s = rr_model_mat(m, NAME(n, "%s.%d.mlp.up_proj.weight", p, i), I, H, &ly->wu)) ||
        (s = rr_model_mat(m, NAME(n, "%s.%d.mlp.down_proj.weight", p, i), H, I, &ly->wd)) ||
        (s = rr_model_vec(m, NAME(n, "%s.%d.input_layernorm.weight", p, i), H, &ly->ln1)) ||
        (s = rr_model_vec(m, NAME(n, "%s.%d.post_attention_layernorm.weight", p, i), H, &ly->ln2)))
        return s;
    if (c->family == RR_FAMILY_QWEN2) {
        float *b[3] = {0};
        const char *what[3] = {"q", "k", "v"};
        int len[3] = {nq, nkv, nkv};
        for (int k = 0; k < 3 && !s; k++)
            s = rr_model_vec(m, NAME(n, "%s.%d.self_attn.%s_proj.bias", p, i, what[k]), len[k], &b[k]);
        if (!s && !(ly->bqkv = rr_malloc((size_t)(nq + 2 * nkv) * sizeof(float))))
            s = rr_fail(RR_ERR_NOMEM, "out of memory");
        if (!s) {
            memcpy(ly->bqkv, b[0], (size_t)nq * 4);
            memcpy(ly->bqkv + nq, b[1], (size_t)nkv * 4);
            memcpy(ly->bqkv + nq + nkv, b[2], (size_t)nkv * 4);
        }
        for (int k = 0; k < 3; k++) rr_free(b[k]);
        return s;
    }
    if ((s = rr_model_vec(m, NAME(n, "%s.%d.self_attn.q_norm.weight", p, i), d, &ly->q_norm)) ||
        (s = rr_model_vec(m, NAME(n, "%s.%d.self_attn.k_norm.weight", p, i), d, &ly->k_norm)))
        return s;
    return RR_OK;
}

/* The fp32 rows the score reads: two lm_head rows (tied: embedding rows) or the classifier row. */
static rr_status load_head(rr_model *m, const char *dir) {
    rr_dec *d = m->dec;
    const rr_config *c = &m->cfg;
    int H = c->hidden;
    rr_status s;
    if (c->family == RR_FAMILY_QWEN3_CLS) {
        rr_mat sc;
        if ((s = rr_model_mat(m, "score.weight", 1, H, &sc))) return s;
        if (!(d->head = rr_malloc((size_t)H * sizeof(float)))) return rr_fail(RR_ERR_NOMEM, "out of memory");
        rr_mat_row_f32(&sc, 0, d->head);
        d->n_head = 1;
        return RR_OK;
    }
    rr_mat lm = m->word_emb;
    if (!c->tied) {
        if (!rr_st_find(m->st, "lm_head.weight"))
            return rr_fail(RR_ERR_FORMAT, "%s: tie_word_embeddings is false but there is no tensor lm_head.weight",
                           dir);
        if ((s = rr_model_mat(m, "lm_head.weight", c->vocab_size, H, &lm))) return s;
        /* only two rows are read */
        m->weight_bytes -= (size_t)c->vocab_size * H * rr_dtype_size(lm.dtype);
    }
    if (!(d->head = rr_malloc((size_t)2 * H * sizeof(float)))) return rr_fail(RR_ERR_NOMEM, "out of memory");
    for (int i = 0; i < 2; i++) rr_mat_row_f32(&lm, d->head_ids[i], d->head + (size_t)i * H);
    d->n_head = 2;
    m->weight_bytes += (size_t)2 * H * 4;
    return RR_OK;
}

/* ------------------------------------------------------------------ packing */

static rr_kern_dtype kdtype(rr_dtype t) {
    return t == RR_DTYPE_F32 ? RR_KERN_DTYPE_F32 : t == RR_DTYPE_F16 ? RR_KERN_DTYPE_F16 : RR_KERN_DTYPE_BF16;
}

/* Packs the row-stack of n matrices (same width and dtype); separate matrices are first copied side
 * by side into buf. */
static rr_status pack_stack(const rr_model *m, rr_precision p, const rr_mat *const *mats, int n, const float *bias,
                            void *buf, rr_linear **out) {
    int rows = 0, cols = mats[0]->cols;
    size_t es = rr_dtype_size(mats[0]->dtype);
    for (int i = 0; i < n; i++) {
        if (mats[i]->dtype != mats[0]->dtype || mats[i]->cols != cols)
            return rr_fail(RR_ERR_UNSUPPORTED, "%s: the projections stacked into one linear differ in dtype", m->name);
        rows += mats[i]->rows;
    }
    const void *src = mats[0]->data;
    if (n > 1) {
        uint8_t *dst = buf;
        for (int i = 0; i < n; i++) {
            size_t b = (size_t)mats[i]->rows * cols * es;
            memcpy(dst, mats[i]->data, b);
            dst += b;
        }
        src = buf;
    }
    return rr_linear_pack(m->kern, p, src, kdtype(mats[0]->dtype), rows, cols, bias, out);
}

/* Drops the mapped pages of a packed matrix (read-only private file mapping: they would be read
 * back from the file if touched again, which no longer happens). Whole pages only. */
static void release_view(const rr_mat *mt) {
    long pg = sysconf(_SC_PAGESIZE);
    if (pg <= 0 || !mt->data) return;
    uintptr_t b = (uintptr_t)mt->data, e = b + (size_t)mt->rows * mt->cols * rr_dtype_size(mt->dtype);
    b = (b + (uintptr_t)pg - 1) & ~((uintptr_t)pg - 1);
    e &= ~((uintptr_t)pg - 1);
    if (e > b) madvise((void *)b, e - b, MADV_DONTNEED);
}

typedef struct pack_job {
    rr_model *m;
    rr_precision p;
    void **bufs;      /* [threads] stacking buffers */
    rr_status *st;    /* [layers] */
    char (*msg)[256]; /* [layers] */
    size_t *mapped, *packed;
} pack_job;

static void pack_layer(void *arg, int l, int tid) {
    pack_job *j = arg;
    rr_dec_layer *ly = &j->m->dec->layers[l];
    void *buf = j->bufs[tid];
    const rr_mat *qkv[3] = {&ly->wq, &ly->wk, &ly->wv}, *gu[2] = {&ly->wg, &ly->wu};
    const rr_mat *o = &ly->wo, *dn = &ly->wd;
    rr_status s = pack_stack(j->m, j->p, qkv, 3, ly->bqkv, buf, &ly->lin_qkv);
    if (!s) s = pack_stack(j->m, j->p, &o, 1, NULL, buf, &ly->lin_o);
    if (!s) s = pack_stack(j->m, j->p, gu, 2, NULL, buf, &ly->lin_gu);
    if (!s) s = pack_stack(j->m, j->p, &dn, 1, NULL, buf, &ly->lin_d);
    j->st[l] = s;
    if (s) {
        snprintf(j->msg[l], sizeof j->msg[l], "layer %d: %s", l, rr_errmsg());
        return;
    }
    const rr_mat *all[7] = {&ly->wq, &ly->wk, &ly->wv, &ly->wo, &ly->wg, &ly->wu, &ly->wd};
    for (int i = 0; i < 7; i++) {
        j->mapped[l] += (size_t)all[i]->rows * all[i]->cols * rr_dtype_size(all[i]->dtype);
        release_view(all[i]);
    }
    j->packed[l] = rr_linear_weight_bytes(ly->lin_qkv) + rr_linear_weight_bytes(ly->lin_o) +
                   rr_linear_weight_bytes(ly->lin_gu) + rr_linear_weight_bytes(ly->lin_d);
}

static rr_status pack(rr_model *m, rr_precision p) {
    const rr_config *c = &m->cfg;
    int L = c->n_layers;
    m->kern = rr_kern_get();
    if (p == RR_PRECISION_AUTO) p = rr_kern_auto_precision(m->kern);
    m->precision = p;
    size_t rows = RR_MAX((size_t)(c->n_heads + 2 * c->n_kv_heads) * c->head_dim, (size_t)2 * c->intermediate);
    size_t stack = rows * c->hidden * rr_dtype_size(m->dec->layers[0].wq.dtype);
    rr_pool *pool = NULL;
    rr_status s = rr_pool_new(RR_MIN(m->n_threads > 0 ? m->n_threads : rr_pool_cpu_count(), L), &pool);
    if (s) return s;
    int nt = rr_pool_size(pool);
    pack_job j = {m, p, rr_calloc((size_t)nt, sizeof(void *)), rr_calloc((size_t)L, sizeof(rr_status)),
                  rr_calloc((size_t)L, 256), rr_calloc((size_t)L, sizeof(size_t)), rr_calloc((size_t)L, sizeof(size_t))};
    if (!j.bufs || !j.st || !j.msg || !j.mapped || !j.packed) s = rr_fail(RR_ERR_NOMEM, "out of memory packing weights");
    for (int t = 0; t < nt && !s; t++)
        if (!(j.bufs[t] = rr_malloc(stack))) s = rr_fail(RR_ERR_NOMEM, "out of memory packing weights");
    if (!s) {
        rr_pool_run(pool, L, pack_layer, &j);
        for (int l = 0; l < L && !s; l++)
            if (j.st[l]) s = rr_fail(j.st[l], "%s", j.msg[l]);
    }
    if (!s) {
        size_t mapped = 0, packed = 0;
        for (int l = 0; l < L; l++) mapped += j.mapped[l], packed += j.packed[l];
        if (m->weight_bytes >= mapped) m->weight_bytes = m->weight_bytes - mapped + packed;
    }
    for (int t = 0; j.bufs && t < nt; t++) rr_free(j.bufs[t]);
    rr_free(j.bufs);
    rr_free(j.st);
    rr_free(j.msg);
    rr_free(j.mapped);
    rr_free(j.packed);
    rr_pool_free(pool);
    return s;
}

rr_status rr_qwen_load(rr_model *m, const char *dir, rr_template prompt, rr_precision p) {
    const rr_config *c = &m->cfg;
    int H = c->hidden;
    if (!(m->dec = rr_calloc(1, sizeof *m->dec)) || !(m->dec->layers = rr_calloc((size_t)c->n_layers, sizeof(rr_dec_layer))))
        return rr_fail(RR_ERR_NOMEM, "out of memory");
    rr_status s = resolve_template(m, dir, prompt);
    if (s) return s;
    if ((s = rr_model_mat(m, "model.embed_tokens.weight", c->vocab_size, H, &m->word_emb))) return s;
    /* embedding rows are gathered with pread: count only what a pass touches */
    m->weight_bytes -= (size_t)c->vocab_size * H * rr_dtype_size(m->word_emb.dtype);
    m->word_t = rr_st_find(m->st, "model.embed_tokens.weight");
    for (int i = 0; i < c->n_layers; i++)
        if ((s = load_layer(m, i, &m->dec->layers[i]))) return s;
    if ((s = rr_model_vec(m, "model.norm.weight", H, &m->dec->final_norm))) return s;
    if ((s = load_head(m, dir))) return s;
    if ((s = pack(m, p))) return s;
    rr_st_advise_random(m->word_t);
    return RR_OK;
}

void rr_qwen_free(rr_model *m) {
    rr_dec *d = m ? m->dec : NULL;
    if (!d) return;
    if (d->layers)
        for (int i = 0; i < m->cfg.n_layers; i++) {
            rr_dec_layer *ly = &d->layers[i];
            rr_free(ly->bqkv);
            rr_free(ly->q_norm);
            rr_free(ly->k_norm);
            rr_free(ly->ln1);
            rr_free(ly->ln2);
            rr_linear_free(ly->lin_qkv);
            rr_linear_free(ly->lin_o);
            rr_linear_free(ly->lin_gu);
            rr_linear_free(ly->lin_d);
        }
    rr_free(d->layers);
    rr_free(d->final_norm);
    rr_free(d->head);
    rr_free(d);
    m->dec = NULL;
}

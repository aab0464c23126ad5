/*
 * qwen.c -- loading the decoder rerankers: Qwen3ForCausalLM (Qwen3-Reranker), Qwen2ForCausalLM
 * (mxbai-rerank-v2) and Qwen3ForSequenceClassification (a Qwen3 reranker converted to one score row).
 *
 * config.json gives the shapes; head_dim is read, not derived, for Qwen3 (whose 0.6B has 16 heads of
 * 128 over a hidden size of 1024), and defaults as the model classes do. Every weight is checked for
 * presence, dtype and exact shape; byte ranges were checked when the files were opened. The linears
 * are packed for the kernels at the requested precision (Q|K|V stacked into one, gate|up into one,
 * by pack.c's rr_pack_layers), and the files are unmapped when the load ends (model.c): the forward
 * pass reads embedding rows with pread, so a file truncated under a running process is an error,
 * never a SIGBUS. The lm_head is never packed: a reranker reads two of its rows (yes/no, or
 * "1"/"0"), copied to fp32 here; a classifier reads its one score row.
 *
 * The prompt template is decided here, once, in this order: the caller's explicit choice, the model
 * card README.md in the folder (its front matter and title name the model), the architecture
 * (Qwen3 -> Qwen3-Reranker). A decoder none of these identifies is refused. The rows the score reads
 * are looked up in the tokenizer ("yes"/"no" pieces for Qwen3-Reranker, "1"/"0" for mxbai), falling
 * back to the ids the spec measured when the folder has no tokenizer.
 *
 * jina-reranker-v3 (architecture JinaForRanking, or a Qwen3ForCausalLM folder whose tensors include
 * projector.*) is a Qwen3 backbone without a vocabulary head: it reads the final-normed hidden state
 * at two added marker tokens and projects it (projector.0 [H/2, H], ReLU, projector.2 [E, H/2], no
 * biases). The markers' ids come from the folder's tokenizer; lm_head.*, when present, is ignored.
 */
#include "model/model.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>

/* Longest sequence a decoder scores: the reference rerankers' max_length (8192) plus room for
 * mxbai's fixed pieces, which come on top of it (79 ids). The position table allows more (RoPE), but
 * every pass holds all of a sequence's rows, so the context's scratch grows with this bound. */
#define DEC_MAX_LENGTH (8192 + 256)
/* Longest jina-reranker-v3 block. The reference fills a block up to the tokenizer's
 * model_max_length (131,072 by the model card); every pass holds all of a block's rows, so rerank
 * caps it here to keep a context's scratch bounded (about 1.2 GB for the 0.6B backbone). A request
 * with more than this many tokens in total is cut into more blocks than the reference cuts. */
#define V3_MAX_BLOCK 32768

const char *rr_template_name(rr_template t) {
    switch (t) {
    case RR_TEMPLATE_AUTO: return "auto";
    case RR_TEMPLATE_NONE: return "none";
    case RR_TEMPLATE_QWEN3_RERANKER: return "qwen3-reranker";
    case RR_TEMPLATE_MXBAI_V2: return "mxbai-rerank-v2";
    case RR_TEMPLATE_JINA_V3: return "jina-reranker-v3";
    }
    return "unknown";
}

int rr_template_parse(const char *name) {
    if (!name) return -1;
    for (int t = RR_TEMPLATE_AUTO; t <= RR_TEMPLATE_JINA_V3; t++)
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

static int json_true(const cJSON *j, const char *key) { return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, key)); }

static int json_set(const cJSON *j, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    return v && !cJSON_IsNull(v);
}

rr_status rr_qwen_config(const cJSON *j, const char *path, const char *arch, rr_config *c) {
    int jina = !strcmp(arch, "JinaForRanking"), qwen3 = jina || !strncmp(arch, "Qwen3", 5);
    const char *mt = rr_json_get_str(j, "model_type");
    if (mt && strcmp(mt, qwen3 ? "qwen3" : "qwen2"))
        return rr_fail(RR_ERR_UNSUPPORTED, "%s: model_type \"%s\" does not match architecture %s", path, mt, arch);
    rr_status s;
    if ((s = rr_json_need_int(j, path, "vocab_size", 1, 10000000, &c->vocab_size)) ||
        (s = rr_json_need_int(j, path, "hidden_size", 1, 65536, &c->hidden)) ||
        (s = rr_json_need_int(j, path, "num_hidden_layers", 1, 1024, &c->n_layers)) ||
        (s = rr_json_need_int(j, path, "num_attention_heads", 1, 1024, &c->n_heads)) ||
        (s = rr_json_need_int(j, path, "intermediate_size", 1, 1 << 20, &c->intermediate)) ||
        (s = rr_json_need_int(j, path, "max_position_embeddings", 1, 1 << 24, &c->max_positions)) ||
        (s = rr_json_opt_int(j, path, "num_key_value_heads", 1, 1024, c->n_heads, &c->n_kv_heads)))
        return s;
    /* Qwen3's config class has head_dim (default 128); Qwen2's attention falls back to H / heads */
    int dflt_d = qwen3 ? 128 : c->hidden / c->n_heads;
    if (!qwen3 && !json_set(j, "head_dim") && c->hidden % c->n_heads)
        return rr_fail(RR_ERR_FORMAT, "%s: hidden_size %d is not a multiple of num_attention_heads %d", path, c->hidden,
                       c->n_heads);
    if ((s = rr_json_opt_int(j, path, "head_dim", 2, 1024, dflt_d, &c->head_dim))) return s;
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
        if ((s = rr_json_opt_int(j, path, "num_labels", 1, 1 << 20, 1, &labels))) return s;
        if (cJSON_IsObject(id2label)) labels = cJSON_GetArraySize(id2label);
        if (labels != 1)
            return rr_fail(RR_ERR_UNSUPPORTED, "%s: %d labels (id2label); rerank needs a one-label classifier", path,
                           labels);
        c->family = RR_FAMILY_QWEN3_CLS;
    } else {
        /* a Qwen3ForCausalLM folder with projector.* tensors becomes RR_FAMILY_JINA_V3 at load */
        c->family = jina ? RR_FAMILY_JINA_V3 : qwen3 ? RR_FAMILY_QWEN3 : RR_FAMILY_QWEN2;
    }
    if (jina && (s = rr_json_opt_int(j, path, "embedding_size", 1, 65535, 0, &c->embed_size))) return s;
    c->decoder = 1;
    c->type_vocab_size = 1;
    c->pos_offset = 0;
    if ((s = rr_json_opt_int(j, path, "pad_token_id", 0, c->vocab_size - 1, RR_MIN(151643, c->vocab_size - 1),
                             &c->pad_id)))
        return s;
    c->max_length = RR_MIN(c->max_positions, jina ? V3_MAX_BLOCK : DEC_MAX_LENGTH);
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
    if (c->family == RR_FAMILY_JINA_V3) {
        if (want != RR_TEMPLATE_AUTO && want != RR_TEMPLATE_JINA_V3)
            return rr_fail(RR_ERR_INVALID, "%s: a jina-reranker-v3 folder reads its own listwise prompt, not --template %s",
                           dir, rr_template_name(want));
        d->prompt = RR_TEMPLATE_JINA_V3;
        d->head_ids[0] = d->head_ids[1] = -1;
        return RR_OK;
    }
    if (want == RR_TEMPLATE_JINA_V3)
        return rr_fail(RR_ERR_INVALID, "%s: the jina-reranker-v3 prompt needs a jina-reranker-v3 folder (projector.* "
                       "tensors)", dir);
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

/* fp32 copy of the matrix `name`, checked to be [rows, cols]. */
static rr_status mat_f32(rr_model *m, const char *name, int rows, int cols, float **out) {
    rr_mat w;
    rr_status s = rr_model_mat(m, name, rows, cols, &w);
    if (s) return s;
    if (!(*out = rr_malloc((size_t)rows * cols * sizeof(float)))) return rr_fail(RR_ERR_NOMEM, "out of memory");
    for (int r = 0; r < rows; r++) rr_mat_row_f32(&w, r, *out + (size_t)r * cols);
    m->weight_bytes -= (size_t)rows * cols * rr_dtype_size(w.dtype);
    m->weight_bytes += (size_t)rows * cols * 4;
    return RR_OK;
}

/* jina-reranker-v3: the projector and the marker ids. embedding_size in config.json, when given,
 * must match projector.2's rows. */
static rr_status load_projector(rr_model *m, const char *dir, int cfg_embed) {
    rr_dec *d = m->dec;
    int H = m->cfg.hidden;
    const rr_st_tensor *t2 = rr_st_find(m->st, "projector.2.weight");
    if (!rr_st_find(m->st, "projector.0.weight") || !t2)
        return rr_fail(RR_ERR_FORMAT, "%s: a jina-reranker-v3 model needs projector.0.weight and projector.2.weight", dir);
    if (H % 2) return rr_fail(RR_ERR_FORMAT, "%s: hidden_size %d is odd; the projector halves it", dir, H);
    d->proj_mid = H / 2;
    d->embed_size = cfg_embed > 0 ? cfg_embed
                    : t2->n_dims == 2 && t2->shape[0] > 0 && t2->shape[0] < 65536 ? (int)t2->shape[0] : 0;
    if (d->embed_size <= 0) return rr_fail(RR_ERR_FORMAT, "%s: projector.2.weight must be a matrix [E, %d]", dir, H / 2);
    rr_status s;
    if ((s = mat_f32(m, "projector.0.weight", d->proj_mid, H, &d->proj1)) ||
        (s = mat_f32(m, "projector.2.weight", d->embed_size, d->proj_mid, &d->proj2)))
        return s;
    if (!m->tok)
        return rr_fail(RR_ERR_UNSUPPORTED, "%s: a jina-reranker-v3 folder needs its tokenizer.json (the marker tokens "
                       "<|embed_token|> and <|rerank_token|> are read from it)", dir);
    d->doc_marker = rr_tokenizer_piece_to_id(m->tok, "<|embed_token|>");
    d->query_marker = rr_tokenizer_piece_to_id(m->tok, "<|rerank_token|>");
    if (d->doc_marker < 0 || d->query_marker < 0 || d->doc_marker >= m->cfg.vocab_size ||
        d->query_marker >= m->cfg.vocab_size || d->doc_marker == d->query_marker)
        return rr_fail(RR_ERR_FORMAT, "%s: the tokenizer lacks the added tokens <|embed_token|> and <|rerank_token|> "
                       "that jina-reranker-v3 scores at", dir);
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

/* One decoder layer (rr_pack_layers): Q|K|V and gate|up stacked, output and down alone. */
static rr_status pack_layer(rr_model *m, int l, void *buf, size_t *mapped, size_t *packed) {
    rr_dec_layer *ly = &m->dec->layers[l];
    const rr_kern_table *k = m->kern;
    rr_precision p = m->precision;
    const rr_mat *qkv[3] = {&ly->wq, &ly->wk, &ly->wv}, *gu[2] = {&ly->wg, &ly->wu};
    const rr_mat *o = &ly->wo, *dn = &ly->wd;
    rr_status s = rr_pack_stack(k, p, qkv, 3, ly->bqkv, buf, &ly->lin_qkv);
    if (!s) s = rr_pack_stack(k, p, &o, 1, NULL, buf, &ly->lin_o);
    if (!s) s = rr_pack_stack(k, p, gu, 2, NULL, buf, &ly->lin_gu);
    if (!s) s = rr_pack_stack(k, p, &dn, 1, NULL, buf, &ly->lin_d);
    if (s) return s;
    const rr_mat *all[7] = {&ly->wq, &ly->wk, &ly->wv, &ly->wo, &ly->wg, &ly->wu, &ly->wd};
    for (int i = 0; i < 7; i++) {
        *mapped += (size_t)all[i]->rows * all[i]->cols * rr_dtype_size(all[i]->dtype);
        rr_mat_release(all[i]);
    }
    *packed = rr_linear_weight_bytes(ly->lin_qkv) + rr_linear_weight_bytes(ly->lin_o) +
              rr_linear_weight_bytes(ly->lin_gu) + rr_linear_weight_bytes(ly->lin_d);
    return RR_OK;
}

static rr_status pack(rr_model *m, rr_precision p) {
    const rr_config *c = &m->cfg;
    size_t rows = RR_MAX((size_t)(c->n_heads + 2 * c->n_kv_heads) * c->head_dim, (size_t)2 * c->intermediate);
    return rr_pack_layers(m, p, rows * c->hidden * rr_dtype_size(m->dec->layers[0].wq.dtype), pack_layer);
}

rr_status rr_qwen_load(rr_model *m, const char *dir, rr_template prompt, rr_precision p) {
    const rr_config *c = &m->cfg;
    int H = c->hidden;
    if (!(m->dec = rr_calloc(1, sizeof *m->dec)) || !(m->dec->layers = rr_calloc((size_t)c->n_layers, sizeof(rr_dec_layer))))
        return rr_fail(RR_ERR_NOMEM, "out of memory");
    if (c->family == RR_FAMILY_QWEN3 && rr_st_find(m->st, "projector.0.weight")) {
        m->cfg.family = RR_FAMILY_JINA_V3;
        m->cfg.max_length = RR_MIN(c->max_positions, V3_MAX_BLOCK);
    }
    rr_status s = resolve_template(m, dir, prompt);
    if (s) return s;
    /* embedding rows are gathered with pread: only what a pass touches counts */
    if ((s = rr_model_embeddings(m, "model.embed_tokens.weight", NULL, NULL))) return s;
    for (int i = 0; i < c->n_layers; i++)
        if ((s = load_layer(m, i, &m->dec->layers[i]))) return s;
    if ((s = rr_model_vec(m, "model.norm.weight", H, &m->dec->final_norm))) return s;
    if (c->family == RR_FAMILY_JINA_V3) s = load_projector(m, dir, c->embed_size);
    else s = load_head(m, dir);
    if (s) return s;
    return pack(m, p);
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
    rr_free(d->proj1);
    rr_free(d->proj2);
    rr_free(d);
    m->dec = NULL;
}

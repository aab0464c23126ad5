/*
 * tokenizer.c -- rr_tokenizer: loading tokenizer.json (+ tokenizer_config.json) and the encode
 * pipeline of HF tokenizers' TokenizerImpl::encode, stage by stage:
 *
 *   text -> UTF-8 repair -> split on raw added tokens -> per segment: normalizers -> split on
 *   normalized added tokens -> pre-tokenizers -> model -> ids; then truncation (room left after
 *   the specials) and the post-processor (specials, type ids).
 *
 * A loaded tokenizer is never written again; encode keeps all its working memory in locals, so
 * any number of threads may share one tokenizer.
 */
#include "tokenize/tok.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <sys/stat.h>

#define RR_TOK_MAX_FILE ((size_t)1 << 30)

/* ------------------------------------------------------------------ encode */

typedef struct enc_state {
    rr_buf text, n1, n2, p1, p2;
    rr_tok_spans s1, s2;
    rr_tok_segs segs, nsegs;
    rr_tok_scratch sc;
} enc_state;

static void enc_state_free(enc_state *e) {
    rr_buf_free(&e->text);
    rr_buf_free(&e->n1);
    rr_buf_free(&e->n2);
    rr_buf_free(&e->p1);
    rr_buf_free(&e->p2);
    rr_free(e->s1.v);
    rr_free(e->s2.v);
    rr_free(e->segs.v);
    rr_free(e->nsegs.v);
    rr_tok_scratch_free(&e->sc);
}

static rr_status nomem(void) { return rr_fail(RR_ERR_NOMEM, "tokenizer: out of memory"); }

/* Normalizes s through the list; sets *out to the result (s itself when there is no normalizer)
 * and *out_len to its length. */
static rr_status normalize(const rr_tokenizer *t, const char *s, size_t n, enc_state *e, const char **out, size_t *out_len) {
    const char *cur = s;
    size_t len = n;
    rr_buf *bufs[2] = {&e->n1, &e->n2};
    for (int i = 0; i < t->n_norms; i++) {
        rr_buf *o = bufs[i & 1];
        o->len = 0;
        rr_status st = rr_tok_norm_apply(&t->norms[i], cur, len, o);
        if (st) return st;
        if (o->oom) return nomem();
        cur = o->data ? o->data : "";
        len = o->len;
    }
    *out = cur;
    *out_len = len;
    return RR_OK;
}

static rr_status model_encode(const rr_tokenizer *t, const char *s, size_t n, enc_state *e, rr_tok_ids *out) {
    switch (t->model.kind) {
    case RR_TOK_UNIGRAM: return rr_tok_unigram_encode(&t->model, s, n, &e->sc, out);
    case RR_TOK_WORDPIECE: return rr_tok_wordpiece_encode(&t->model, s, n, out);
    case RR_TOK_BPE: return rr_tok_bpe_encode(&t->model, s, n, &e->sc, out);
    }
    return RR_ERR_INVALID;
}

/* Pre-tokenizes and encodes one normalized piece of text (no added tokens inside). */
static rr_status encode_plain(const rr_tokenizer *t, const char *s, size_t n, bool at0, enc_state *e, rr_tok_ids *out) {
    if (!n) return RR_OK;
    if (!t->n_pres) return model_encode(t, s, n, e, out);
    const char *cur = s;
    rr_tok_spans *ins = &e->s1, *outs = &e->s2;
    rr_buf *bufs[2] = {&e->p1, &e->p2};
    ins->n = 0;
    rr_tok_spans_push(ins, 0, n, at0);
    for (int i = 0; i < t->n_pres; i++) {
        rr_buf *o = bufs[i & 1];
        o->len = 0;
        outs->n = 0;
        rr_status st = rr_tok_pre_apply(&t->pres[i], cur, ins, o, outs);
        if (st) return st;
        if (o->oom || outs->oom) return nomem();
        cur = o->data ? o->data : "";
        rr_tok_spans *tmp = ins;
        ins = outs, outs = tmp;
    }
    for (size_t k = 0; k < ins->n; k++) {
        rr_status st = model_encode(t, cur + ins->v[k].off, ins->v[k].len, e, out);
        if (st) return st;
    }
    return RR_OK;
}

static rr_status encode_one(const rr_tokenizer *t, const char *text, size_t len, enc_state *e, rr_tok_ids *out) {
    if (!text && len) return rr_fail(RR_ERR_INVALID, "tokenizer: text is NULL");
    if (len > (size_t)INT32_MAX) return rr_fail(RR_ERR_RANGE, "tokenizer: text of %zu bytes is too long", len);
    if (!len) return RR_OK;
    const uint8_t *u = (const uint8_t *)text;
    if (rr_utf8_valid_prefix(u, len) != len) {
        e->text.len = 0;
        rr_utf8_repair(text, len, &e->text);
        if (e->text.oom) return nomem();
        text = e->text.data;
        len = e->text.len;
    }
    e->segs.n = 0;
    rr_tok_match_split(&t->raw_match, text, len, 0, &e->segs);
    if (e->segs.oom) return nomem();
    for (size_t i = 0; i < e->segs.n; i++) {
        rr_tok_seg sg = e->segs.v[i];
        if (sg.id >= 0) {
            rr_tok_ids_push(out, sg.id);
            continue;
        }
        size_t nl;
        const char *ns;
        rr_status st = normalize(t, text + sg.off, sg.len, e, &ns, &nl);
        if (st) return st;
        if (!t->norm_match.n) {
            if ((st = encode_plain(t, ns, nl, sg.off == 0, e, out))) return st;
            continue;
        }
        e->nsegs.n = 0;
        rr_tok_match_split(&t->norm_match, ns, nl, 0, &e->nsegs);
        if (e->nsegs.oom) return nomem();
        for (size_t k = 0; k < e->nsegs.n; k++) {
            rr_tok_seg s2 = e->nsegs.v[k];
            if (s2.id >= 0) rr_tok_ids_push(out, s2.id);
            else if ((st = encode_plain(t, ns + s2.off, s2.len, sg.off == 0 && s2.off == 0, e, out))) return st;
        }
    }
    return out->oom ? nomem() : RR_OK;
}

rr_encode_params rr_encode_default_params(void) {
    rr_encode_params p = {.add_special = true, .max_length = 0, .strategy = RR_TRUNC_LONGEST_FIRST};
    return p;
}

rr_status rr_tokenizer_encode(const rr_tokenizer *t, rr_text text, const rr_text *pair, const rr_encode_params *params,
                              rr_encoding *out) {
    if (!t || !out) return rr_fail(RR_ERR_INVALID, "rr_tokenizer_encode: NULL tokenizer or output");
    rr_encode_params p = params ? *params : rr_encode_default_params();
    int max_length = p.max_length;
    bool add_special = p.add_special;
    rr_truncation strategy = p.strategy;
    if (max_length < 0) return rr_fail(RR_ERR_INVALID, "rr_tokenizer_encode: max_length %d is negative", max_length);
    enc_state e = {0};
    rr_tok_ids a = {0}, b = {0};
    bool is_pair = pair != NULL;
    rr_status st = encode_one(t, text.text, text.len, &e, &a);
    if (!st && is_pair) st = encode_one(t, pair->text, pair->len, &e, &b);
    if (!st && max_length > 0) {
        size_t n_added = add_special ? (size_t)rr_tok_post_added(&t->post, is_pair) : 0;
        /* HF computes max_length - n_added in usize: below n_added it wraps and nothing is cut. */
        if ((size_t)max_length >= n_added)
            st = rr_tok_truncate(&a.n, &b.n, is_pair, (size_t)max_length - n_added, strategy);
    }
    if (!st) st = rr_tok_post_apply(&t->post, a.v, a.n, b.v, b.n, is_pair, add_special, out);
    enc_state_free(&e);
    rr_free(a.v);
    rr_free(b.v);
    return st;
}

rr_status rr_tokenizer_post_process(const rr_tokenizer *t, const rr_encoding *a, const rr_encoding *b, rr_encoding *out) {
    if (!t || !a || !out) return rr_fail(RR_ERR_INVALID, "rr_tokenizer_post_process: NULL argument");
    if (out == a || out == b) return rr_fail(RR_ERR_INVALID, "rr_tokenizer_post_process: out must differ from the inputs");
    return rr_tok_post_apply(&t->post, a->ids, a->len, b ? b->ids : NULL, b ? b->len : 0, b != NULL, true, out);
}

void rr_encoding_free(rr_encoding *e) {
    if (!e) return;
    rr_free(e->ids);
    rr_free(e->type_ids);
    memset(e, 0, sizeof *e);
}

int rr_tokenizer_num_special(const rr_tokenizer *t, bool pair) { return t ? rr_tok_post_added(&t->post, pair) : 0; }

const char *rr_tokenizer_id_to_piece(const rr_tokenizer *t, int32_t id) {
    if (!t || id < 0 || id >= t->vocab_size) return NULL;
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].id == id) return t->added[i].content;
    return id < t->model.n_vocab ? t->model.pieces[id] : NULL;
}

int32_t rr_tokenizer_piece_to_id(const rr_tokenizer *t, const char *piece) {
    if (!t || !piece) return -1;
    size_t n = strlen(piece);
    for (int i = 0; i < t->n_added; i++) /* the first of two equal contents holds the id */
        if (t->added[i].len == n && !memcmp(t->added[i].content, piece, n)) return t->added[i].id;
    return n ? rr_tok_trie_get(&t->model.trie, piece, n) : -1;
}

int rr_tokenizer_vocab_size(const rr_tokenizer *t) { return t ? t->vocab_size : 0; }
int rr_tokenizer_model_max_length(const rr_tokenizer *t) { return t ? t->model_max_length : 0; }

/* ------------------------------------------------------------------ load */

void rr_tokenizer_free(rr_tokenizer *t) {
    if (!t) return;
    for (int i = 0; i < t->n_norms; i++) rr_tok_norm_free(&t->norms[i]);
    rr_free(t->norms);
    for (int i = 0; i < t->n_pres; i++) rr_tok_pre_free(&t->pres[i]);
    rr_free(t->pres);
    rr_tok_model_free(&t->model);
    for (int i = 0; i < t->n_added; i++) {
        if (t->added[i].pat != t->added[i].content) rr_free(t->added[i].pat);
        rr_free(t->added[i].content);
    }
    rr_free(t->added);
    rr_tok_matcher_free(&t->raw_match);
    rr_tok_matcher_free(&t->norm_match);
    rr_tok_post_free(&t->post);
    rr_free(t->path);
    rr_free(t);
}

static rr_status load_model(rr_tokenizer *t, const cJSON *m, const char *raw, size_t raw_len, const char *what) {
    if (!cJSON_IsObject(m)) return rr_fail(RR_ERR_FORMAT, "%s: field \"model\" must be an object", what);
    const char *type = rr_json_get_str(m, "type");
    if (!type) { /* old files: infer from the fields present */
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, "vocab");
        if (cJSON_IsArray(v)) type = "Unigram";
        else if (cJSON_GetObjectItemCaseSensitive(m, "merges")) type = "BPE";
        else if (cJSON_GetObjectItemCaseSensitive(m, "continuing_subword_prefix") ||
                 cJSON_GetObjectItemCaseSensitive(m, "max_input_chars_per_word"))
            type = "WordPiece";
        else return rr_fail(RR_ERR_UNSUPPORTED, "%s: field \"model\" has no \"type\" and is not a Unigram, BPE or WordPiece model", what);
    }
    if (!strcmp(type, "Unigram")) return rr_tok_unigram_load(&t->model, m, raw, raw_len, what);
    if (!strcmp(type, "WordPiece")) return rr_tok_wordpiece_load(&t->model, m, what);
    if (!strcmp(type, "BPE")) return rr_tok_bpe_load(&t->model, m, what);
    return rr_fail(RR_ERR_UNSUPPORTED, "%s: model type \"%s\" (field \"model.type\") is not supported", what, type);
}

static rr_status load_added(rr_tokenizer *t, const cJSON *arr, const char *what) {
    if (!arr || cJSON_IsNull(arr)) return RR_OK;
    if (!cJSON_IsArray(arr)) return rr_fail(RR_ERR_FORMAT, "%s: field \"added_tokens\" must be an array", what);
    int n = cJSON_GetArraySize(arr);
    t->added = rr_calloc((size_t)n + 1, sizeof *t->added);
    if (!t->added) return nomem();
    const cJSON *e;
    int i = 0;
    cJSON_ArrayForEach(e, arr) {
        rr_tok_added *a = &t->added[i];
        const char *content = rr_json_get_str(e, "content");
        long id;
        rr_status st = rr_json_get_int(e, "id", 0, INT32_MAX, what, &id);
        if (!content || st)
            return st && st != RR_ERR_NOT_FOUND ? st
                                                : rr_fail(RR_ERR_FORMAT, "%s: field \"added_tokens[%d]\" needs \"id\" and \"content\"", what, i);
        a->content = rr_strdup(content);
        if (!a->content) return nomem();
        t->n_added = ++i;
        a->len = strlen(content);
        a->id = (int32_t)id;
        a->single_word = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "single_word"));
        a->lstrip = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "lstrip"));
        a->rstrip = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "rstrip"));
        a->special = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "special"));
        const cJSON *nz = cJSON_GetObjectItemCaseSensitive(e, "normalized");
        a->normalized = cJSON_IsBool(nz) ? cJSON_IsTrue(nz) : !a->special;
        a->pat = a->content;
        a->pat_len = a->len;
    }
    return RR_OK;
}

/* Normalized added tokens are matched against the normalization of their content. */
static rr_status normalize_added(rr_tokenizer *t) {
    for (int i = 0; i < t->n_added; i++) {
        rr_tok_added *a = &t->added[i];
        if (!a->normalized || !t->n_norms) continue;
        enc_state e = {0};
        size_t nl = 0;
        const char *ns = NULL;
        rr_status st = normalize(t, a->content, a->len, &e, &ns, &nl);
        char *p = st ? NULL : rr_malloc(nl + 1);
        if (p) memcpy(p, ns, nl), p[nl] = 0;
        enc_state_free(&e);
        if (st) return st;
        if (!p) return nomem();
        a->pat = p;
        a->pat_len = nl;
    }
    return RR_OK;
}

static void load_config(rr_tokenizer *t, const char *dir) {
    char *path = rr_path_join(dir, "tokenizer_config.json");
    char *text = NULL;
    size_t len;
    cJSON *j = NULL;
    if (path && rr_file_exists(path) && rr_file_read(path, 64u << 20, &text, &len) == RR_OK &&
        rr_json_parse(text, len, path, &j) == RR_OK) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "model_max_length");
        /* transformers writes 1e30 for "no limit" */
        if (cJSON_IsNumber(v) && v->valuedouble >= 1 && v->valuedouble <= INT_MAX) t->model_max_length = (int)v->valuedouble;
    }
    rr_errmsg_clear(); /* the config is optional: a bad one is ignored */
    cJSON_Delete(j);
    rr_free(text);
    rr_free(path);
}

rr_status rr_tokenizer_load(const char *path, rr_tokenizer **out) {
    if (!path || !out) return rr_fail(RR_ERR_INVALID, "rr_tokenizer_load: NULL argument");
    rr_json_init();
    struct stat sb;
    bool is_dir = stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
    char *file = is_dir ? rr_path_join(path, "tokenizer.json") : rr_strdup(path);
    char *dir = NULL;
    if (!file) return nomem();
    if (is_dir) {
        dir = rr_strdup(path);
    } else {
        const char *slash = strrchr(path, '/');
        dir = slash ? rr_malloc((size_t)(slash - path) + 2) : rr_strdup(".");
        if (dir && slash) memcpy(dir, path, (size_t)(slash - path) + 1), dir[slash - path + 1] = 0;
    }
    /* mapped, not read: a 17 MB file costs no copy and no fresh pages */
    rr_mmap map = {0};
    const char *text = NULL;
    size_t len = 0;
    cJSON *j = NULL;
    rr_tokenizer *t = rr_calloc(1, sizeof *t);
    rr_status st = !dir || !t ? nomem() : rr_mmap_open(file, &map);
    if (!st && map.size > RR_TOK_MAX_FILE) st = rr_fail(RR_ERR_RANGE, "%s: %zu bytes is too large for a tokenizer.json", file, map.size);
    if (!st) text = map.data ? (const char *)map.data : "", len = map.size;
    /* Fast path for big Unigram files: the vocabulary array is cut out of the text and read by
     * its own scanner, so cJSON builds no node for its 250k entries. */
    size_t vb = 0, ve = 0;
    bool raw_vocab = !st && rr_tok_find_vocab(text, len, &vb) && text[vb] == '[';
    if (raw_vocab) {
        size_t used = 0;
        st = rr_tok_unigram_parse_raw(&t->model, text + vb, len - vb, &used, file);
        ve = vb + used;
    }
    if (!st && raw_vocab) {
        char *cut = rr_malloc(len - (ve - vb) + 3);
        if (!cut) st = nomem();
        else {
            memcpy(cut, text, vb);
            memcpy(cut + vb, "[]", 2);
            memcpy(cut + vb + 2, text + ve, len - ve);
            st = rr_json_parse(cut, len - (ve - vb) + 2, file, &j);
            rr_free(cut);
        }
    } else if (!st) {
        st = rr_json_parse(text, len, file, &j);
    }
    if (st) goto fail;
    t->path = file;
    file = NULL;
    const char *what = t->path;
    if (!cJSON_IsObject(j)) {
        st = rr_fail(RR_ERR_FORMAT, "%s: top level must be an object", what);
        goto fail;
    }
    const cJSON *jm = cJSON_GetObjectItemCaseSensitive(j, "model");
    const char *mtype = rr_json_get_str(jm, "type");
    if (raw_vocab && (!mtype || !strcmp(mtype, "Unigram"))) {
        if ((st = rr_tok_unigram_finish_raw(&t->model, jm, what))) goto fail;
    } else if (raw_vocab) {
        st = rr_fail(RR_ERR_FORMAT, "%s: field \"model.vocab\" is an array but model type is \"%s\"", what, mtype);
        goto fail;
    } else if ((st = load_model(t, jm, text, len, what))) {
        goto fail;
    }
    rr_mmap_close(&map);
    text = NULL;
    if ((st = load_added(t, cJSON_GetObjectItemCaseSensitive(j, "added_tokens"), what))) goto fail;
    if ((st = rr_tok_norm_parse(cJSON_GetObjectItemCaseSensitive(j, "normalizer"), &t->norms, &t->n_norms, what))) goto fail;
    if ((st = rr_tok_pre_parse(cJSON_GetObjectItemCaseSensitive(j, "pre_tokenizer"), &t->pres, &t->n_pres, what))) goto fail;
    if ((st = rr_tok_post_parse(&t->post, cJSON_GetObjectItemCaseSensitive(j, "post_processor"), what))) goto fail;
    if ((st = normalize_added(t))) goto fail;
    if ((st = rr_tok_matcher_build(&t->raw_match, t->added, t->n_added, false)) ||
        (st = rr_tok_matcher_build(&t->norm_match, t->added, t->n_added, true)))
        goto fail;
    t->vocab_size = t->model.n_vocab;
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].id >= t->vocab_size) t->vocab_size = t->added[i].id + 1;
    /* every id the post-processor emits must be a valid id */
    for (int pair = 0; pair < 2; pair++) {
        const rr_tok_tpl_item *it = pair ? t->post.pair : t->post.single;
        for (int i = 0; i < (pair ? t->post.n_pair : t->post.n_single); i++)
            for (int k = 0; k < it[i].n_ids; k++)
                if (it[i].ids[k] >= t->vocab_size) {
                    st = rr_fail(RR_ERR_FORMAT, "%s: post_processor special token id %d is outside the vocabulary (%d)", what,
                                 it[i].ids[k], t->vocab_size);
                    goto fail;
                }
    }
    load_config(t, dir);
    cJSON_Delete(j);
    rr_free(dir);
    *out = t;
    return RR_OK;
fail:
    cJSON_Delete(j);
    rr_mmap_close(&map);
    rr_free(file);
    rr_free(dir);
    rr_tokenizer_free(t);
    return st;
}

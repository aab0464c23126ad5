/*
 * postproc.c -- truncation and the post-processors (TemplateProcessing, RobertaProcessing,
 * BertProcessing, and a Sequence holding one of them next to ByteLevel, which changes no id).
 * Both follow HF tokenizers' TokenizerImpl::post_process: truncation acts on the raw encodings
 * with the room left after the special tokens, then the post-processor adds the specials and
 * type ids. Type ids as HF gives them: the pair's own tokens come out of the model with type 1;
 * Template overrides every type from its template (with or without specials), Roberta sets all 0,
 * Bert and the default keep 0 / 1.
 */
#include "tokenize/tok.h"

#include <cjson/cJSON.h>

rr_status rr_tok_truncate(size_t *na, size_t *nb, bool pair, size_t T, rr_truncation strategy) {
    if (T == 0) {
        *na = 0;
        if (pair) *nb = 0;
        return RR_OK;
    }
    size_t a = *na, b = pair ? *nb : 0, total = a + b;
    if (total <= T) return RR_OK;
    size_t to_remove = total - T;
    if (strategy == RR_TRUNC_LONGEST_FIRST) {
        if (!pair) {
            *na = T;
            return RR_OK;
        }
        size_t n1 = a, n2 = b;
        bool swap = false;
        if (n1 > n2) swap = true, n1 = b, n2 = a;
        if (n1 > T) n2 = n1;
        else n2 = RR_MAX(n1, T - n1);
        if (n1 + n2 > T) {
            n1 = T / 2;
            n2 = n1 + T % 2;
        }
        if (swap) {
            size_t t = n1;
            n1 = n2, n2 = t;
        }
        *na = RR_MIN(a, n1);
        *nb = RR_MIN(b, n2);
        return RR_OK;
    }
    if (strategy != RR_TRUNC_ONLY_FIRST && strategy != RR_TRUNC_ONLY_SECOND)
        return rr_fail(RR_ERR_INVALID, "tokenizer: unknown truncation strategy %d", (int)strategy);
    if (strategy == RR_TRUNC_ONLY_SECOND && !pair)
        return rr_fail(RR_ERR_INVALID, "tokenizer: truncation only_second needs a pair");
    size_t *target = strategy == RR_TRUNC_ONLY_FIRST ? na : nb;
    if (*target <= to_remove)
        return rr_fail(RR_ERR_RANGE, "tokenizer: truncation %s cannot remove %zu tokens from a sequence of %zu",
                       strategy == RR_TRUNC_ONLY_FIRST ? "only_first" : "only_second", to_remove, *target);
    *target -= to_remove;
    return RR_OK;
}

int rr_tok_post_added(const rr_tok_post *p, bool pair) {
    const rr_tok_tpl_item *it = pair ? p->pair : p->single;
    int n = pair ? p->n_pair : p->n_single, c = 0;
    for (int i = 0; i < n; i++)
        if (it[i].seq < 0) c += it[i].n_ids;
    return c;
}

static bool enc_reserve(rr_encoding *e, size_t n) {
    if (e->cap >= n && e->ids && e->type_ids) return true;
    size_t cap = e->cap ? e->cap : 64;
    while (cap < n) cap *= 2;
    int32_t *a = rr_realloc(e->ids, cap * sizeof *a);
    if (a) e->ids = a;
    int32_t *b = rr_realloc(e->type_ids, cap * sizeof *b);
    if (b) e->type_ids = b;
    if (!a || !b) return false;
    e->cap = cap;
    return true;
}

rr_status rr_tok_post_apply(const rr_tok_post *p, const int32_t *a, size_t na, const int32_t *b, size_t nb, bool pair,
                            bool add_special, rr_encoding *out) {
    const rr_tok_tpl_item *it = pair ? p->pair : p->single;
    int n_it = pair ? p->n_pair : p->n_single;
    size_t total = na + (pair ? nb : 0) + (add_special ? (size_t)rr_tok_post_added(p, pair) : 0);
    if (!enc_reserve(out, total)) return rr_fail(RR_ERR_NOMEM, "tokenizer: out of memory");
    size_t k = 0;
    if (p->kind == RR_TOK_POST_NONE || (!add_special && p->kind != RR_TOK_POST_TEMPLATE)) {
        int32_t tb = p->kind == RR_TOK_POST_ROBERTA ? 0 : 1;
        for (size_t i = 0; i < na; i++) out->ids[k] = a[i], out->type_ids[k++] = 0;
        for (size_t i = 0; pair && i < nb; i++) out->ids[k] = b[i], out->type_ids[k++] = tb;
        out->len = k;
        return RR_OK;
    }
    for (int i = 0; i < n_it; i++) {
        const rr_tok_tpl_item *t = &it[i];
        if (t->seq < 0) {
            if (!add_special) continue;
            for (int j = 0; j < t->n_ids; j++) out->ids[k] = t->ids[j], out->type_ids[k++] = t->type_id;
        } else {
            const int32_t *src = t->seq == 0 ? a : b;
            size_t ns = t->seq == 0 ? na : nb;
            for (size_t j = 0; j < ns; j++) out->ids[k] = src[j], out->type_ids[k++] = t->type_id;
        }
    }
    out->len = k;
    return RR_OK;
}

/* ------------------------------------------------------------------ parsing */

static rr_status add_item(rr_tok_tpl_item **v, int *n, int seq, int type_id, const int32_t *ids, int n_ids) {
    rr_tok_tpl_item *nv = rr_realloc(*v, (size_t)(*n + 1) * sizeof **v);
    if (!nv) return rr_fail(RR_ERR_NOMEM, "tokenizer: out of memory");
    *v = nv;
    rr_tok_tpl_item *t = &nv[(*n)++];
    memset(t, 0, sizeof *t);
    t->seq = (int8_t)seq;
    t->type_id = type_id;
    if (n_ids) {
        t->ids = rr_malloc((size_t)n_ids * sizeof *t->ids);
        if (!t->ids) return rr_fail(RR_ERR_NOMEM, "tokenizer: out of memory");
        memcpy(t->ids, ids, (size_t)n_ids * sizeof *ids);
        t->n_ids = n_ids;
    }
    return RR_OK;
}

static rr_status parse_template(const cJSON *tpl, const cJSON *specials, rr_tok_tpl_item **v, int *n, const char *field,
                                const char *what) {
    if (!cJSON_IsArray(tpl)) return rr_fail(RR_ERR_FORMAT, "%s: TemplateProcessing field \"%s\" must be an array", what, field);
    const cJSON *e;
    int idx = 0;
    cJSON_ArrayForEach(e, tpl) {
        const cJSON *sq = cJSON_GetObjectItemCaseSensitive(e, "Sequence");
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(e, "SpecialToken");
        const cJSON *body = sq ? sq : sp;
        long type_id = 0;
        const char *id = rr_json_get_str(body, "id");
        if (!cJSON_IsObject(body) || !id)
            return rr_fail(RR_ERR_FORMAT, "%s: post_processor field \"%s[%d]\" must be {Sequence|SpecialToken: {id, type_id}}", what, field, idx);
        rr_status st = rr_json_get_int(body, "type_id", 0, INT32_MAX, what, &type_id);
        if (st && st != RR_ERR_NOT_FOUND) return st;
        if (sq) {
            if (strcmp(id, "A") && strcmp(id, "B"))
                return rr_fail(RR_ERR_FORMAT, "%s: post_processor field \"%s[%d]\" has Sequence id \"%s\" (A or B expected)", what, field, idx, id);
            if ((st = add_item(v, n, id[0] == 'B', (int)type_id, NULL, 0))) return st;
        } else {
            const cJSON *tok = cJSON_GetObjectItemCaseSensitive(specials, id);
            const cJSON *ids = cJSON_GetObjectItemCaseSensitive(tok, "ids");
            if (!cJSON_IsArray(ids))
                return rr_fail(RR_ERR_FORMAT, "%s: post_processor field \"special_tokens\" lacks \"%s\" (used in \"%s\")", what, id, field);
            int32_t buf[64];
            int k = 0;
            const cJSON *x;
            cJSON_ArrayForEach(x, ids) {
                if (k == 64 || !cJSON_IsNumber(x) || x->valuedouble < 0 || x->valuedouble > INT32_MAX)
                    return rr_fail(RR_ERR_FORMAT, "%s: post_processor field \"special_tokens.%s.ids\" must hold at most 64 ids", what, id);
                buf[k++] = (int32_t)x->valuedouble;
            }
            if ((st = add_item(v, n, -1, (int)type_id, buf, k))) return st;
        }
        idx++;
    }
    return RR_OK;
}

static rr_status parse_pair_tok(const cJSON *j, const char *key, int32_t *id, const char *what) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    const cJSON *n = cJSON_GetArrayItem(v, 1);
    if (!cJSON_IsArray(v) || !cJSON_IsNumber(n) || n->valuedouble < 0 || n->valuedouble > INT32_MAX)
        return rr_fail(RR_ERR_FORMAT, "%s: post_processor field \"%s\" must be [token, id]", what, key);
    *id = (int32_t)n->valuedouble;
    return RR_OK;
}

static rr_status parse_one(rr_tok_post *p, const cJSON *j, const char *what, int depth) {
    const char *type = rr_json_get_str(j, "type");
    if (!type) return rr_fail(RR_ERR_FORMAT, "%s: post_processor without a \"type\" string", what);
    rr_status st;
    if (!strcmp(type, "Sequence")) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "processors"), *e;
        if (!cJSON_IsArray(arr) || depth > 4) return rr_fail(RR_ERR_FORMAT, "%s: Sequence post_processor needs an array \"processors\"", what);
        cJSON_ArrayForEach(e, arr) if ((st = parse_one(p, e, what, depth + 1))) return st;
        return RR_OK;
    }
    if (!strcmp(type, "ByteLevel")) return RR_OK;
    if (p->kind != RR_TOK_POST_NONE)
        return rr_fail(RR_ERR_UNSUPPORTED, "%s: more than one special-token post_processor in a Sequence", what);
    if (!strcmp(type, "TemplateProcessing")) {
        p->kind = RR_TOK_POST_TEMPLATE;
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(j, "special_tokens");
        if ((st = parse_template(cJSON_GetObjectItemCaseSensitive(j, "single"), sp, &p->single, &p->n_single, "single", what)))
            return st;
        return parse_template(cJSON_GetObjectItemCaseSensitive(j, "pair"), sp, &p->pair, &p->n_pair, "pair", what);
    }
    if (!strcmp(type, "RobertaProcessing") || !strcmp(type, "BertProcessing")) {
        bool rob = type[0] == 'R';
        p->kind = rob ? RR_TOK_POST_ROBERTA : RR_TOK_POST_BERT;
        int32_t cls, sep;
        if ((st = parse_pair_tok(j, "cls", &cls, what)) || (st = parse_pair_tok(j, "sep", &sep, what))) return st;
        int tb = rob ? 0 : 1;
        if ((st = add_item(&p->single, &p->n_single, -1, 0, &cls, 1)) || (st = add_item(&p->single, &p->n_single, 0, 0, NULL, 0)) ||
            (st = add_item(&p->single, &p->n_single, -1, 0, &sep, 1)))
            return st;
        if ((st = add_item(&p->pair, &p->n_pair, -1, 0, &cls, 1)) || (st = add_item(&p->pair, &p->n_pair, 0, 0, NULL, 0)) ||
            (st = add_item(&p->pair, &p->n_pair, -1, 0, &sep, 1)))
            return st;
        if (rob && (st = add_item(&p->pair, &p->n_pair, -1, 0, &sep, 1))) return st;
        if ((st = add_item(&p->pair, &p->n_pair, 1, tb, NULL, 0)) || (st = add_item(&p->pair, &p->n_pair, -1, tb, &sep, 1)))
            return st;
        return RR_OK;
    }
    return rr_fail(RR_ERR_UNSUPPORTED, "%s: post_processor type \"%s\" is not supported", what, type);
}

rr_status rr_tok_post_parse(rr_tok_post *p, const cJSON *j, const char *what) {
    memset(p, 0, sizeof *p);
    if (!j || cJSON_IsNull(j)) return RR_OK;
    if (!cJSON_IsObject(j)) return rr_fail(RR_ERR_FORMAT, "%s: field \"post_processor\" must be an object or null", what);
    return parse_one(p, j, what, 0);
}

void rr_tok_post_free(rr_tok_post *p) {
    if (!p) return;
    for (int i = 0; i < p->n_single; i++) rr_free(p->single[i].ids);
    for (int i = 0; i < p->n_pair; i++) rr_free(p->pair[i].ids);
    rr_free(p->single);
    rr_free(p->pair);
    memset(p, 0, sizeof *p);
}

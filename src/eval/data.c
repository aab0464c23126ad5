/*
 * data.c -- evaluation sets: BEIR folders (corpus.jsonl, queries.jsonl, qrels/test.tsv) and
 * candidate-list JSONL files, where each line carries a query, its candidates and the relevant
 * ones (function calling as in BFCL, SQL schema ranking, code search). Both end up as the same
 * tables of queries, documents and judgments (rr_eval_data), so the first stage, the reranker and
 * the metrics do not care where the data came from.
 */
#include "rerank_eval.h"

#include "core/core.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <sys/stat.h>

#define MAX_JSONL ((size_t)1 << 36)

/* ------------------------------------------------------------------ tables */

static rr_status add_query(rr_eval_data *d, const char *qid, const char *text, const char *what) {
    if (d->n_queries + 1 >= d->cap_queries) {
        int cap = d->cap_queries ? d->cap_queries * 2 : 256;
        const char **a = rr_realloc(d->qids, (size_t)cap * sizeof(*a));
        if (a) d->qids = a;
        const char **b = rr_realloc(d->qtexts, (size_t)cap * sizeof(*b));
        if (b) d->qtexts = b;
        if (!a || !b) return rr_fail(RR_ERR_NOMEM, "%s: out of memory", what);
        if (d->cand_off) {
            int *c = rr_realloc(d->cand_off, ((size_t)cap + 1) * sizeof(*c));
            if (!c) return rr_fail(RR_ERR_NOMEM, "%s: out of memory", what);
            d->cand_off = c;
        }
        d->cap_queries = cap;
    }
    char *k = rr_eval_pool_strndup(&d->pool, qid, strlen(qid));
    char *t = rr_eval_pool_strndup(&d->pool, text, strlen(text));
    if (!k || !t) return rr_fail(RR_ERR_NOMEM, "%s: out of memory", what);
    int found;
    rr_status st = rr_eval_strmap_put(&d->qmap, k, d->n_queries, &found);
    if (st != RR_OK) return st;
    if (found >= 0) return rr_fail(RR_ERR_FORMAT, "%s: query id '%s' appears twice", what, qid);
    d->qids[d->n_queries] = k;
    d->qtexts[d->n_queries] = t;
    d->n_queries++;
    return RR_OK;
}

/* Adds a document; with `reuse`, a document with the same id and text is shared (candidate lists
 * repeat the same function or table across queries), otherwise a repeated id is an error. */
static rr_status add_doc(rr_eval_data *d, const char *docno, const char *text, size_t text_len, bool reuse,
                         const char *what, int *out) {
    int prev = rr_eval_strmap_get(&d->dmap, docno, strlen(docno));
    if (prev >= 0) {
        if (!reuse) return rr_fail(RR_ERR_FORMAT, "%s: document id '%s' appears twice", what, docno);
        if (strlen(d->dtexts[prev]) == text_len && !memcmp(d->dtexts[prev], text, text_len)) {
            *out = prev;
            return RR_OK;
        }
    }
    if (d->n_docs == d->cap_docs) {
        int cap = d->cap_docs ? d->cap_docs * 2 : 1024;
        const char **a = rr_realloc(d->docnos, (size_t)cap * sizeof(*a));
        if (a) d->docnos = a;
        const char **b = rr_realloc(d->dtexts, (size_t)cap * sizeof(*b));
        if (b) d->dtexts = b;
        if (!a || !b) return rr_fail(RR_ERR_NOMEM, "%s: out of memory", what);
        d->cap_docs = cap;
    }
    char *k = rr_eval_pool_strndup(&d->pool, docno, strlen(docno));
    char *t = rr_eval_pool_strndup(&d->pool, text, text_len);
    if (!k || !t) return rr_fail(RR_ERR_NOMEM, "%s: out of memory", what);
    if (prev < 0) {
        rr_status st = rr_eval_strmap_put(&d->dmap, k, d->n_docs, NULL);
        if (st != RR_OK) return st;
    }
    d->docnos[d->n_docs] = k;
    d->dtexts[d->n_docs] = t;
    *out = d->n_docs++;
    return RR_OK;
}

/* An id field: a string, or an integer number (some BEIR sets use numeric ids). */
static const char *json_id(const cJSON *v, char *buf, size_t cap) {
    if (cJSON_IsString(v) && v->valuestring[0]) return v->valuestring;
    if (cJSON_IsNumber(v) && v->valuedouble == (double)(long long)v->valuedouble) {
        snprintf(buf, cap, "%lld", (long long)v->valuedouble);
        return buf;
    }
    return NULL;
}

/* ------------------------------------------------------------------ JSONL */

typedef rr_status (*line_fn)(rr_eval_data *d, const cJSON *obj, const char *what, int lineno);

/* Calls fn for each non-blank line of a JSONL file, which must hold a JSON object. `what` given to
 * fn and to errors is "path: line N". */
static rr_status each_jsonl(rr_eval_data *d, const char *path, line_fn fn, int *n_lines) {
    char *buf;
    size_t n;
    rr_status st = rr_file_read(path, MAX_JSONL, &buf, &n);
    if (st != RR_OK) return st;
    size_t pos = 0;
    int lineno = 0, count = 0;
    char what[4200];
    while (pos < n && st == RR_OK) {
        const char *s = buf + pos;
        const char *e = memchr(s, '\n', n - pos);
        size_t len = e ? (size_t)(e - s) : n - pos;
        pos += len + (e ? 1 : 0);
        lineno++;
        size_t i = 0;
        while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r')) i++;
        if (i == len) continue;
        snprintf(what, sizeof(what), "%s: line %d", path, lineno);
        cJSON *j;
        st = rr_json_parse(s, len, what, &j);
        if (st != RR_OK) break;
        if (!cJSON_IsObject(j)) st = rr_fail(RR_ERR_FORMAT, "%s: expected a JSON object", what);
        else st = fn(d, j, what, lineno);
        cJSON_Delete(j);
        count++;
    }
    rr_free(buf);
    if (st == RR_OK && count == 0) st = rr_fail(RR_ERR_FORMAT, "%s: no records (empty file)", path);
    if (n_lines) *n_lines = count;
    return st;
}

/* ------------------------------------------------------------------ BEIR */

static rr_status beir_corpus_line(rr_eval_data *d, const cJSON *obj, const char *what, int lineno) {
    char idbuf[32];
    const char *id = json_id(cJSON_GetObjectItemCaseSensitive(obj, "_id"), idbuf, sizeof(idbuf));
    if (!id) return rr_fail(RR_ERR_FORMAT, "%s: missing or empty \"_id\"", what);
    const cJSON *tv = cJSON_GetObjectItemCaseSensitive(obj, "text");
    const cJSON *ti = cJSON_GetObjectItemCaseSensitive(obj, "title");
    if (!cJSON_IsString(tv)) return rr_fail(RR_ERR_FORMAT, "%s: document '%s': \"text\" must be a string", what, id);
    if (ti && !cJSON_IsNull(ti) && !cJSON_IsString(ti))
        return rr_fail(RR_ERR_FORMAT, "%s: document '%s': \"title\" must be a string", what, id);
    const char *title = cJSON_IsString(ti) ? ti->valuestring : "";
    /* BEIR's convention for cross-encoders and BM25 alike: title, a space, then the text. */
    rr_buf b = {0};
    if (*title) {
        rr_buf_puts(&b, title);
        rr_buf_puts(&b, " ");
    }
    rr_buf_puts(&b, tv->valuestring);
    int di;
    rr_status st = b.oom ? rr_fail(RR_ERR_NOMEM, "%s: out of memory", what)
                         : add_doc(d, id, b.data ? b.data : "", b.len, false, what, &di);
    rr_buf_free(&b);
    (void)lineno;
    return st;
}

static rr_status beir_query_line(rr_eval_data *d, const cJSON *obj, const char *what, int lineno) {
    char idbuf[32];
    const char *id = json_id(cJSON_GetObjectItemCaseSensitive(obj, "_id"), idbuf, sizeof(idbuf));
    if (!id) return rr_fail(RR_ERR_FORMAT, "%s: missing or empty \"_id\"", what);
    const char *text = rr_json_get_str(obj, "text");
    if (!text) return rr_fail(RR_ERR_FORMAT, "%s: query '%s': \"text\" must be a string", what, id);
    (void)lineno;
    return add_query(d, id, text, what);
}

static rr_status load_beir(const char *dir, const char *qrels_path, rr_eval_data *d) {
    char *corpus = rr_path_join(dir, "corpus.jsonl");
    char *queries = rr_path_join(dir, "queries.jsonl");
    char *qrels = qrels_path ? NULL : rr_path_join(dir, "qrels/test.tsv");
    rr_status st = RR_OK;
    if (!corpus || !queries || (!qrels_path && !qrels)) {
        st = rr_fail(RR_ERR_NOMEM, "%s: out of memory", dir);
        goto done;
    }
    if (!qrels_path && !rr_file_exists(qrels)) {
        st = rr_fail(RR_ERR_NOT_FOUND, "%s: no qrels/test.tsv in this BEIR folder (give the judgments with --qrels)", dir);
        goto done;
    }
    st = each_jsonl(d, corpus, beir_corpus_line, NULL);
    if (st == RR_OK) st = each_jsonl(d, queries, beir_query_line, NULL);
    if (st == RR_OK) st = rr_eval_qrels_load(qrels_path ? qrels_path : qrels, &d->qrels);
done:
    rr_free(corpus);
    rr_free(queries);
    rr_free(qrels);
    return st;
}

/* ------------------------------------------------------------------ candidate lists */

static rr_status cand_push(rr_eval_data *d, int doc, const char *what) {
    if (d->n_cand == d->cap_cand) {
        size_t cap = d->cap_cand ? d->cap_cand * 2 : 1024;
        int *c = rr_realloc(d->cand, cap * sizeof(*c));
        if (!c) return rr_fail(RR_ERR_NOMEM, "%s: out of memory", what);
        d->cand = c;
        d->cap_cand = cap;
    }
    d->cand[d->n_cand++] = doc;
    return RR_OK;
}

static rr_status cand_line(rr_eval_data *d, const cJSON *obj, const char *what, int lineno) {
    char idbuf[32], qbuf[32];
    const cJSON *idv = cJSON_GetObjectItemCaseSensitive(obj, "id");
    const char *qid = json_id(idv, qbuf, sizeof(qbuf));
    if (!idv) { /* ids are optional: the line number names the query */
        snprintf(qbuf, sizeof(qbuf), "line%d", lineno);
        qid = qbuf;
    }
    if (!qid) return rr_fail(RR_ERR_FORMAT, "%s: \"id\" must be a non-empty string or an integer", what);
    const char *query = rr_json_get_str(obj, "query");
    if (!query) return rr_fail(RR_ERR_FORMAT, "%s: query '%s': \"query\" must be a string", what, qid);
    const cJSON *cands = cJSON_GetObjectItemCaseSensitive(obj, "candidates");
    if (!cJSON_IsArray(cands))
        return rr_fail(RR_ERR_FORMAT, "%s: query '%s': \"candidates\" must be an array of {id, text}", what, qid);
    rr_status st = add_query(d, qid, query, what);
    if (st != RR_OK) return st;
    int first = (int)d->n_cand;
    int ci = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cands) {
        const char *cid = json_id(cJSON_GetObjectItemCaseSensitive(c, "id"), idbuf, sizeof(idbuf));
        if (!cid) return rr_fail(RR_ERR_FORMAT, "%s: candidate %d: missing or empty \"id\"", what, ci);
        const cJSON *tv = cJSON_GetObjectItemCaseSensitive(c, "text");
        if (!tv) return rr_fail(RR_ERR_FORMAT, "%s: candidate '%s': missing \"text\"", what, cid);
        /* A schema given as a JSON object is ranked as its compact JSON text. */
        char *owned = cJSON_IsString(tv) ? NULL : cJSON_PrintUnformatted(tv);
        const char *text = owned ? owned : tv->valuestring;
        if (!text) return rr_fail(RR_ERR_NOMEM, "%s: out of memory", what);
        int di;
        st = add_doc(d, cid, text, strlen(text), true, what, &di);
        if (owned) cJSON_free(owned);
        if (st != RR_OK) return st;
        for (size_t k = (size_t)first; k < d->n_cand; k++)
            if (!strcmp(d->docnos[d->cand[k]], cid))
                return rr_fail(RR_ERR_FORMAT, "%s: candidate id '%s' appears twice in query '%s'", what, cid, qid);
        st = cand_push(d, di, what);
        if (st != RR_OK) return st;
        ci++;
    }
    d->cand_off[d->n_queries] = (int)d->n_cand;
    const cJSON *rel = cJSON_GetObjectItemCaseSensitive(obj, "relevant");
    if (!rel || cJSON_IsNull(rel)) return RR_OK; /* no judgments: the query is ranked but not scored */
    if (cJSON_IsArray(rel)) {
        const cJSON *r;
        cJSON_ArrayForEach(r, rel) {
            const char *rid = json_id(r, idbuf, sizeof(idbuf));
            if (!rid) return rr_fail(RR_ERR_FORMAT, "%s: \"relevant\" must hold candidate ids", what);
            st = rr_eval_qrels_add(&d->qrels, qid, strlen(qid), rid, strlen(rid), 1, lineno);
            if (st != RR_OK) return st;
        }
    } else if (cJSON_IsObject(rel)) {
        const cJSON *r;
        cJSON_ArrayForEach(r, rel) {
            if (!cJSON_IsNumber(r) || r->valuedouble != (double)(int)r->valuedouble)
                return rr_fail(RR_ERR_FORMAT, "%s: \"relevant\": grade of '%s' must be an integer", what, r->string);
            st = rr_eval_qrels_add(&d->qrels, qid, strlen(qid), r->string, strlen(r->string), (int)r->valuedouble,
                                   lineno);
            if (st != RR_OK) return st;
        }
    } else {
        return rr_fail(RR_ERR_FORMAT, "%s: \"relevant\" must be an array of ids or an object {id: grade}", what);
    }
    return RR_OK;
}

static rr_status load_candidates(const char *path, const char *qrels_path, rr_eval_data *d) {
    d->cand_off = rr_calloc(1, sizeof(int));
    if (!d->cand_off) return rr_fail(RR_ERR_NOMEM, "%s: out of memory", path);
    rr_status st = each_jsonl(d, path, cand_line, NULL);
    if (st != RR_OK) return st;
    if (qrels_path) { /* judgments from a file replace those of the lines */
        rr_eval_qrels_free(&d->qrels);
        return rr_eval_qrels_load(qrels_path, &d->qrels);
    }
    return rr_eval_qrels_finish(&d->qrels, path);
}

rr_status rr_eval_data_load(const char *path, const char *qrels_path, rr_eval_data *d) {
    struct stat sb;
    if (stat(path, &sb) != 0) return rr_fail(RR_ERR_NOT_FOUND, "%s: no such file or folder", path);
    if (S_ISDIR(sb.st_mode)) return load_beir(path, qrels_path, d);
    return load_candidates(path, qrels_path, d);
}

void rr_eval_data_free(rr_eval_data *d) {
    if (!d) return;
    rr_eval_pool_free(&d->pool);
    rr_free(d->qids);
    rr_free(d->qtexts);
    rr_eval_strmap_free(&d->qmap);
    rr_free(d->docnos);
    rr_free(d->dtexts);
    rr_eval_strmap_free(&d->dmap);
    rr_free(d->cand_off);
    rr_free(d->cand);
    rr_eval_qrels_free(&d->qrels);
    memset(d, 0, sizeof(*d));
}

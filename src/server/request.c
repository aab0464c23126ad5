/*
 * request.c -- request parsing and response formatting for the server's JSON dialects (request.h).
 *
 * Leniency rules, from what real clients send (spec/api.md §0): documents may be strings, {text,...}
 * objects or a mix; query may be a string or {text}; top_n may be missing, null, 0 or larger than
 * the document count; every optional field may be null; unknown fields are ignored. What is present
 * must have the right type, and a wrong one is a 422 naming the field. The JSON itself is read
 * strictly (rr_json_parse_strict): one value and nothing after it, valid UTF-8, no raw control
 * character, no "\u0000", no repeated key, else 400 with the JSON path.
 */
#include "server/request.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>

/* Cohere v2 rerank: "max_tokens_per_doc ... Defaults to 4096" (docs.cohere.com, Rerank API v2). */
#define COHERE_V2_MAX_TOKENS_PER_DOC 4096

/* ------------------------------------------------------------------ UTF-8 */

static int utf8_valid(const char *s) {
    size_t n = strlen(s);
    return rr_utf8_valid_prefix((const uint8_t *)s, n) == n;
}

static int utf8_walk(const cJSON *j, char *path, size_t cap, size_t at) {
    if (j->string && !utf8_valid(j->string)) return 0;
    if (cJSON_IsString(j) && j->valuestring && !utf8_valid(j->valuestring)) return 0;
    int i = 0;
    for (const cJSON *c = j->child; c; c = c->next, i++) {
        int n;
        if (cJSON_IsArray(j)) n = snprintf(path + at, cap - at, "[%d]", i);
        else if (c->string && utf8_valid(c->string))
            n = snprintf(path + at, cap - at, "%s%s", at ? "." : "", c->string);
        else n = snprintf(path + at, cap - at, "%s(a key)", at ? "." : "");
        size_t next = at + (n > 0 ? (size_t)n : 0);
        if (next >= cap) next = cap - 1;
        if (!utf8_walk(c, path, cap, next)) return 0;
        path[at] = 0;
    }
    return 1;
}

int rr_srv_json_utf8_ok(const cJSON *j, char *path, size_t cap) {
    if (cap == 0) return 1;
    path[0] = 0;
    return utf8_walk(j, path, cap, 0);
}

/* ------------------------------------------------------------------ auth */

int rr_srv_auth_ok(const char *header, const char *key) {
    if (!header || !key) return 0;
    if (strncasecmp(header, "Bearer ", 7) != 0) return 0;
    const char *got = header + 7;
    while (*got == ' ') got++;
    size_t gl = strlen(got), kl = strlen(key);
    /* touch every byte of the key whatever the received length, and fold the length in */
    unsigned diff = (unsigned)(gl ^ kl);
    for (size_t i = 0; i < kl; i++) {
        unsigned char g = i < gl ? (unsigned char)got[i] : 0;
        diff |= (unsigned)(g ^ (unsigned char)key[i]);
    }
    return diff == 0;
}

/* ------------------------------------------------------------------ parsing */

static const char *type_name(const cJSON *v) {
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsObject(v)) return "an object";
    if (cJSON_IsNull(v)) return "null";
    return "an unknown value";
}

/* A JSON number that is a whole value (no cast: 1e300 must not overflow a long long). */
static int is_whole(const cJSON *v) {
    return cJSON_IsNumber(v) && isfinite(v->valuedouble) && v->valuedouble == floor(v->valuedouble);
}

/* An optional boolean: missing or null -> def; else it must be true/false. */
static int get_bool(const cJSON *root, const char *key, int def, int *out, char *err, size_t cap) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsBool(v)) {
        snprintf(err, cap, "field \"%s\" must be a boolean, got %s", key, type_name(v));
        return 422;
    }
    *out = cJSON_IsTrue(v);
    return 0;
}

/* An optional integer >= lo (null allowed), type-checked only: the value is not used. */
static int check_int(const cJSON *root, const char *key, double lo, char *err, size_t cap) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!is_whole(v)) {
        snprintf(err, cap, "field \"%s\" must be an integer, got %s", key, type_name(v));
        return 422;
    }
    if (v->valuedouble < lo) {
        snprintf(err, cap, "field \"%s\" must be >= %.0f, got %.0f", key, lo, v->valuedouble);
        return 422;
    }
    return 0;
}

/* An optional integer >= lo: missing or null -> def; values past INT_MAX become INT_MAX (for a cap,
 * any value at least the longest input means the same: no cut). */
static int get_int(const cJSON *root, const char *key, double lo, int def, int *out, char *err, size_t cap) {
    int e = check_int(root, key, lo, err, cap);
    if (e) return e;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) *out = def;
    else *out = v->valuedouble >= (double)INT_MAX ? INT_MAX : (int)v->valuedouble;
    return 0;
}

static int check_str(const cJSON *root, const char *key, char *err, size_t cap) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v) || cJSON_IsString(v)) return 0;
    snprintf(err, cap, "field \"%s\" must be a string, got %s", key, type_name(v));
    return 422;
}

/* Joins the named fields of a document object ("title: ...\ntext: ...") for Cohere's rank_fields. */
static char *join_fields(const cJSON *doc, const cJSON *fields) {
    rr_buf b = {0};
    for (const cJSON *f = fields->child; f; f = f->next) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, f->valuestring);
        if (!cJSON_IsString(v)) continue;
        if (b.len) rr_buf_append(&b, "\n", 1);
        rr_buf_puts(&b, f->valuestring);
        rr_buf_append(&b, ": ", 2);
        rr_buf_puts(&b, v->valuestring);
    }
    if (!b.data) rr_buf_append(&b, "", 0);
    if (b.oom) {
        rr_buf_free(&b);
        return NULL;
    }
    return b.data;
}

/* The steps of rr_srv_parse. Each returns 0 or an HTTP status with its message in err[cap]; on
 * failure the caller frees the half-built request. */
#define ERR(status, ...) return (snprintf(err, cap, __VA_ARGS__), (status))

/* The body: strict JSON (rr_json_parse_strict), an object, UTF-8 in every string. */
static int parse_body(const char *body, size_t len, rr_srv_request *r, char *err, size_t cap) {
    char path[256];
    if (len == 0) ERR(400, "empty request body: expected a JSON object");
    rr_status js = rr_json_parse_strict(body, len, "request body", 0, &r->root);
    if (js != RR_OK) {
        if (js == RR_ERR_NOMEM) ERR(500, "out of memory parsing the request");
        ERR(400, "%s", rr_errmsg());
    }
    if (!cJSON_IsObject(r->root)) ERR(422, "request body must be a JSON object, got %s", type_name(r->root));
    if (!rr_srv_json_utf8_ok(r->root, path, sizeof path))
        ERR(400, "invalid UTF-8 in the request body at \"%s\": strings must be UTF-8", path[0] ? path : "(root)");
    return 0;
}

/* "query": a string or {"text": string}. */
static int parse_query(rr_srv_request *r, char *err, size_t cap) {
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(r->root, "query");
    if (!q || cJSON_IsNull(q)) ERR(422, "missing field \"query\"");
    if (cJSON_IsObject(q)) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(q, "text");
        if (!cJSON_IsString(t)) ERR(422, "field \"query\" is an object without a string \"text\"");
        q = t;
    }
    if (!cJSON_IsString(q)) ERR(422, "field \"query\" must be a string, got %s", type_name(q));
    r->query.text = q->valuestring;
    r->query.len = strlen(q->valuestring);
    /* instruction (every shape): the task instruction of a decoder reranker's prompt */
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(r->root, "instruction");
    if (in && !cJSON_IsNull(in)) {
        if (!cJSON_IsString(in)) ERR(422, "field \"instruction\" must be a string, got %s", type_name(in));
        r->instruction.text = in->valuestring;
        r->instruction.len = strlen(in->valuestring);
    }
    return 0;
}

/* Cohere's "rank_fields" (Jina and Cohere shapes only): an array of strings, NULL when absent or empty. */
static int parse_rank_fields(const rr_srv_request *r, const cJSON **out, char *err, size_t cap) {
    *out = NULL;
    if (r->api == RR_SRV_API_TEI) return 0;
    const cJSON *rf = cJSON_GetObjectItemCaseSensitive(r->root, "rank_fields");
    if (!rf || cJSON_IsNull(rf)) return 0;
    if (!cJSON_IsArray(rf)) ERR(422, "field \"rank_fields\" must be an array of strings");
    for (const cJSON *f = rf->child; f; f = f->next)
        if (!cJSON_IsString(f)) ERR(422, "field \"rank_fields\" must be an array of strings");
    *out = rf->child ? rf : NULL;
    return 0;
}

/* The documents ("documents", or TEI's "texts"): strings, or objects with "text" (or the
 * rank_fields joined), at most lim->max_docs of them. */
static int parse_documents(const cJSON *docs, const char *docs_key, const rr_srv_limits *lim, rr_srv_request *r,
                           char *err, size_t cap) {
    if (!docs || cJSON_IsNull(docs)) ERR(422, "missing field \"%s\"", docs_key);
    if (!cJSON_IsArray(docs)) ERR(422, "field \"%s\" must be an array, got %s", docs_key, type_name(docs));
    int n = cJSON_GetArraySize(docs);
    if (lim && lim->max_docs > 0 && n > lim->max_docs)
        ERR(413, "too many %s: %d in one request, the limit is %d (--max-docs)", docs_key, n, lim->max_docs);
    const cJSON *rank_fields;
    int e = parse_rank_fields(r, &rank_fields, err, cap);
    if (e) return e;
    r->n_docs = n;
    r->docs = rr_calloc((size_t)(n ? n : 1), sizeof *r->docs);
    r->doc_items = rr_calloc((size_t)(n ? n : 1), sizeof *r->doc_items);
    r->owned = rr_calloc((size_t)(n ? n : 1), sizeof *r->owned);
    if (!r->docs || !r->doc_items || !r->owned) ERR(500, "out of memory reading %d documents", n);
    int i = 0;
    for (const cJSON *d = docs->child; d; d = d->next, i++) {
        r->doc_items[i] = d;
        if (cJSON_IsString(d)) {
            r->docs[i].text = d->valuestring;
        } else if (cJSON_IsObject(d) && r->api != RR_SRV_API_TEI) {
            if (rank_fields) {
                r->owned[i] = join_fields(d, rank_fields);
                if (!r->owned[i]) ERR(500, "out of memory reading %s[%d]", docs_key, i);
                r->docs[i].text = r->owned[i];
            } else {
                const cJSON *t = cJSON_GetObjectItemCaseSensitive(d, "text");
                if (!cJSON_IsString(t)) ERR(422, "%s[%d] is an object without a string \"text\" field", docs_key, i);
                r->docs[i].text = t->valuestring;
            }
        } else {
            ERR(422, "%s[%d] must be a string%s, got %s", docs_key, i,
                r->api == RR_SRV_API_TEI ? "" : " or an object with \"text\"", type_name(d));
        }
        r->docs[i].len = strlen(r->docs[i].text);
    }
    return 0;
}

/* "top_n": missing, null or 0 = all; larger than n = n. */
static int parse_top_n(rr_srv_request *r, char *err, size_t cap) {
    const cJSON *tn = cJSON_GetObjectItemCaseSensitive(r->root, "top_n");
    if (!tn || cJSON_IsNull(tn)) return 0;
    if (!is_whole(tn)) ERR(422, "field \"top_n\" must be an integer, got %s", type_name(tn));
    if (tn->valuedouble < 0) ERR(422, "field \"top_n\" must be >= 0, got %.0f", tn->valuedouble);
    r->top_n = tn->valuedouble >= (double)r->n_docs ? 0 : (int)tn->valuedouble;
    return 0;
}

/* TEI's options: return_text, raw_scores, truncate + truncation_direction. */
static int parse_tei_options(rr_srv_request *r, char *err, size_t cap) {
    int e;
    if ((e = get_bool(r->root, "return_text", 0, &r->return_documents, err, cap))) return e;
    if ((e = get_bool(r->root, "raw_scores", 0, &r->raw_scores, err, cap))) return e;
    /* TEI refuses an over-long pair unless truncate is set; long inputs are never an error here,
     * so false asks for the windows, missing leaves the model's rule (windows for encoders, the
     * reference's cut for decoder rerankers) and true truncates as TEI does */
    int truncate;
    if ((e = get_bool(r->root, "truncate", -1, &truncate, err, cap))) return e;
    const cJSON *dir = cJSON_GetObjectItemCaseSensitive(r->root, "truncation_direction");
    int left = 0;
    if (dir && !cJSON_IsNull(dir)) {
        if (!cJSON_IsString(dir) || (strcasecmp(dir->valuestring, "left") && strcasecmp(dir->valuestring, "right")))
            ERR(422, "field \"truncation_direction\" must be \"Left\" or \"Right\"");
        left = !strcasecmp(dir->valuestring, "left");
    }
    r->long_doc = truncate < 0 ? RR_LONG_DOC_AUTO
                  : !truncate  ? RR_LONG_DOC_WINDOW
                  : left       ? RR_LONG_DOC_TRUNCATE_LEFT
                               : RR_LONG_DOC_TRUNCATE_RIGHT;
    return 0;
}

/* Jina's and Cohere's options: return_documents, raw_scores, max_chunks_per_doc, max_tokens_per_doc,
 * priority. */
static int parse_jina_cohere_options(rr_srv_request *r, char *err, size_t cap) {
    int e;
    if ((e = get_bool(r->root, "return_documents", r->api == RR_SRV_API_V1, &r->return_documents, err, cap))) return e;
    if ((e = get_bool(r->root, "raw_scores", 0, &r->raw_scores, err, cap))) return e;
    /* Cohere v1's chunks are windows: a request that sends max_chunks_per_doc asks for them, and a
     * document keeps its first max_chunks_per_doc windows */
    if ((e = get_int(r->root, "max_chunks_per_doc", 1, 0, &r->max_windows, err, cap))) return e;
    if (r->max_windows > 0) r->long_doc = RR_LONG_DOC_WINDOW;
    /* Cohere v2 truncates documents at 4096 tokens unless told otherwise; v1 has no such field,
     * so there it applies only when a client sends it */
    if ((e = get_int(r->root, "max_tokens_per_doc", 1, r->api == RR_SRV_API_V2 ? COHERE_V2_MAX_TOKENS_PER_DOC : 0,
                     &r->max_doc_tokens, err, cap)))
        return e;
    return check_int(r->root, "priority", 0, err, cap);
}

int rr_srv_parse(const char *body, size_t len, rr_srv_api api, const rr_srv_limits *lim,
                 rr_srv_request *out, char *err, size_t cap) {
    rr_srv_request r = {0};
    r.long_doc = RR_LONG_DOC_AUTO;
    err[0] = 0;
    int rc = parse_body(body, len, &r, err, cap);
    if (rc) goto fail;
    /* the dialect: /rerank is TEI when the body has "texts" and no "documents", else Jina */
    const cJSON *texts = cJSON_GetObjectItemCaseSensitive(r.root, "texts");
    const cJSON *docs = cJSON_GetObjectItemCaseSensitive(r.root, "documents");
    if (api == RR_SRV_API_AUTO) {
        if (!texts && !docs) {
            snprintf(err, cap, "missing field \"texts\" (TEI shape) or \"documents\" (Jina shape)");
            rc = 422;
            goto fail;
        }
        api = texts && !docs ? RR_SRV_API_TEI : RR_SRV_API_V1;
    }
    r.api = api;
    const char *docs_key = api == RR_SRV_API_TEI ? "texts" : "documents";
    if (api == RR_SRV_API_TEI) docs = texts;
    if ((rc = parse_query(&r, err, cap)) || (rc = parse_documents(docs, docs_key, lim, &r, err, cap)) ||
        (rc = parse_top_n(&r, err, cap)) ||
        (rc = api == RR_SRV_API_TEI ? parse_tei_options(&r, err, cap) : parse_jina_cohere_options(&r, err, cap)) ||
        (rc = check_str(r.root, "model", err, cap)))
        goto fail;
    *out = r;
    return 0;
fail:
    rr_srv_request_free(&r);
    return rc;
}
#undef ERR

void rr_srv_request_free(rr_srv_request *r) {
    if (!r) return;
    if (r->owned)
        for (int i = 0; i < r->n_docs; i++) rr_free(r->owned[i]);
    rr_free(r->owned);
    rr_free(r->docs);
    rr_free(r->doc_items);
    cJSON_Delete(r->root);
    memset(r, 0, sizeof *r);
}

/* ------------------------------------------------------------------ responses */

static void put_document(rr_buf *b, const rr_srv_request *r, int i) {
    const cJSON *d = r->doc_items[i];
    if (cJSON_IsObject(d)) {
        /* other fields are preserved (Jina TextDoc, Cohere v1) */
        char *s = cJSON_PrintUnformatted(d);
        if (!s) {
            b->oom = true;
            return;
        }
        rr_buf_puts(b, s);
        cJSON_free(s);
    } else {
        rr_buf_puts(b, "{\"text\":");
        rr_buf_json_str(b, r->docs[i].text, r->docs[i].len);
        rr_buf_puts(b, "}");
    }
}

void rr_srv_format_results(rr_buf *b, const rr_srv_request *r, const char *model, const char *id,
                           const rr_rank_result *res, int n_res, long total_tokens) {
    if (r->api == RR_SRV_API_TEI) {
        rr_buf_puts(b, "[");
        for (int k = 0; k < n_res; k++) {
            int i = res[k].index;
            rr_buf_printf(b, "%s{\"index\":%d,\"score\":", k ? "," : "", i);
            rr_buf_float(b, res[k].score);
            if (r->return_documents) {
                rr_buf_puts(b, ",\"text\":");
                rr_buf_json_str(b, r->docs[i].text, r->docs[i].len);
            }
            rr_buf_puts(b, "}");
        }
        rr_buf_puts(b, "]");
        return;
    }
    rr_buf_puts(b, "{\"id\":");
    rr_buf_json_str(b, id, strlen(id));
    rr_buf_puts(b, ",\"model\":");
    rr_buf_json_str(b, model, strlen(model));
    rr_buf_puts(b, ",\"results\":[");
    for (int k = 0; k < n_res; k++) {
        int i = res[k].index;
        rr_buf_printf(b, "%s{\"index\":%d,\"relevance_score\":", k ? "," : "", i);
        rr_buf_float(b, res[k].score);
        if (r->return_documents) {
            rr_buf_puts(b, ",\"document\":");
            put_document(b, r, i);
        }
        rr_buf_puts(b, "}");
    }
    rr_buf_printf(b,
                  "],\"usage\":{\"total_tokens\":%ld,\"prompt_tokens\":%ld,\"completion_tokens\":0},"
                  "\"meta\":{\"api_version\":{\"version\":\"%d\"},\"billed_units\":{\"search_units\":1,"
                  "\"input_tokens\":%ld}}}",
                  total_tokens, total_tokens, r->api == RR_SRV_API_V2 ? 2 : 1, total_tokens);
}

const char *rr_srv_error_type(int status) {
    switch (status) {
    case 400: case 413: case 422: return "validation";
    case 401: case 403: return "authentication";
    case 404: return "not_found";
    case 405: return "method_not_allowed";
    case 429: return "overloaded";
    case 503: return "unhealthy";
    default: return "backend";
    }
}

void rr_srv_format_error(rr_buf *b, int status, const char *msg) {
    size_t n = strlen(msg);
    rr_buf_puts(b, "{\"detail\":");
    rr_buf_json_str(b, msg, n);
    rr_buf_puts(b, ",\"message\":");
    rr_buf_json_str(b, msg, n);
    rr_buf_puts(b, ",\"error\":");
    rr_buf_json_str(b, msg, n);
    rr_buf_printf(b, ",\"error_type\":\"%s\",\"code\":%d}", rr_srv_error_type(status), status);
}

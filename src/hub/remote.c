/*
 * remote.c -- rr_remote_rank(): scoring through a Jina / Cohere /v1/rerank server (rerank.h), the
 * client side of a `rerank serve` pool. libcurl's multi interface keeps `concurrency` requests in
 * flight over reused keep-alive connections on one thread; each request carries one query and all
 * its documents. A load balancer may answer 429 or 503 while replicas restart or fill up: such
 * requests are sent again after a backoff, so a long evaluation survives a rolling restart.
 * This is a network client, not part of scoring: the library's forward pass never calls it.
 */
#include "core/core.h"
#include "rerank_hub.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

rr_remote_params rr_remote_default_params(void) {
    rr_remote_params p;
    memset(&p, 0, sizeof p);
    p.concurrency = 4;
    p.max_retries = 8;
    p.timeout_s = 600;
    return p;
}

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static CURLcode g_init_rc;
static void init_once(void) { g_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

typedef struct xfer {
    int q;                /* query index */
    int attempts;         /* sent so far */
    double not_before;    /* rr_now() time before which a retry waits */
    CURL *easy;
    char *body;           /* the request, built once */
    rr_buf resp;
    long retry_after;     /* seconds, from the answer's header; -1 none */
} xfer;

static size_t on_body(char *p, size_t sz, size_t n, void *ud) {
    rr_buf *b = ud;
    rr_buf_append(b, p, sz * n);
    return b->oom ? 0 : sz * n;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud) {
    xfer *x = ud;
    size_t len = sz * n;
    static const char name[] = "retry-after:";
    if (len > sizeof name - 1 && !strncasecmp(p, name, sizeof name - 1)) {
        char v[32];
        size_t k = RR_MIN(len - (sizeof name - 1), sizeof v - 1);
        memcpy(v, p + sizeof name - 1, k);
        v[k] = 0;
        char *end;
        long s = strtol(v, &end, 10);
        if (end != v && s >= 0) x->retry_after = RR_MIN(s, 600L);
    }
    return len;
}

static char *request_body(const rr_remote_params *p, const rr_remote_query *q) {
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    char *qs = rr_malloc(q->query.len + 1);
    int ok = qs != NULL;
    if (ok) {
        memcpy(qs, q->query.text, q->query.len);
        qs[q->query.len] = 0;
        ok = cJSON_AddStringToObject(j, "model", p->model && *p->model ? p->model : "rerank") &&
             cJSON_AddStringToObject(j, "query", qs);
    }
    rr_free(qs);
    cJSON *docs = ok ? cJSON_AddArrayToObject(j, "documents") : NULL;
    ok = docs != NULL;
    for (int i = 0; ok && i < q->n_docs; i++) {
        char *d = rr_malloc(q->docs[i].len + 1);
        if (!d) {
            ok = 0;
            break;
        }
        memcpy(d, q->docs[i].text, q->docs[i].len);
        d[q->docs[i].len] = 0;
        cJSON *s = cJSON_CreateString(d);
        rr_free(d);
        ok = s && cJSON_AddItemToArray(docs, s);
    }
    if (ok && p->top_n > 0) ok = cJSON_AddNumberToObject(j, "top_n", p->top_n) != NULL;
    if (ok) ok = cJSON_AddFalseToObject(j, "return_documents") != NULL;
    if (ok && p->raw) ok = cJSON_AddTrueToObject(j, "raw_scores") != NULL;
    if (ok && p->max_doc_tokens > 0) ok = cJSON_AddNumberToObject(j, "max_tokens_per_doc", p->max_doc_tokens) != NULL;
    if (ok && p->max_windows > 0) ok = cJSON_AddNumberToObject(j, "max_chunks_per_doc", p->max_windows) != NULL;
    char *s = ok ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    return s;
}

/* Reads a 200 answer into q->results. */
static rr_status parse_answer(const rr_buf *b, rr_remote_query *q, int qi) {
    cJSON *j = NULL;
    if (rr_json_parse(b->data ? b->data : "", b->len, "answer", &j) != RR_OK)
        return rr_fail(RR_ERR_FORMAT, "query %d: the server's answer is not JSON", qi);
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(j, "results");
    rr_status st = RR_OK;
    if (!cJSON_IsArray(res)) {
        st = rr_fail(RR_ERR_FORMAT, "query %d: the server's answer has no \"results\" array", qi);
        goto out;
    }
    int n = cJSON_GetArraySize(res);
    if (n > q->n_docs) {
        st = rr_fail(RR_ERR_FORMAT, "query %d: %d results for %d documents", qi, n, q->n_docs);
        goto out;
    }
    unsigned char *seen = rr_calloc((size_t)(q->n_docs ? q->n_docs : 1), 1);
    if (!seen) {
        st = rr_fail(RR_ERR_NOMEM, "out of memory");
        goto out;
    }
    int k = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, res) {
        const cJSON *idx = cJSON_GetObjectItemCaseSensitive(r, "index");
        const cJSON *sc = cJSON_GetObjectItemCaseSensitive(r, "relevance_score");
        if (!sc) sc = cJSON_GetObjectItemCaseSensitive(r, "score");
        if (!cJSON_IsNumber(idx) || !cJSON_IsNumber(sc) || idx->valuedouble != (double)(int)idx->valuedouble ||
            idx->valueint < 0 || idx->valueint >= q->n_docs || seen[idx->valueint]) {
            st = rr_fail(RR_ERR_FORMAT, "query %d: result %d has a missing, out-of-range or repeated index, or no score",
                         qi, k);
            break;
        }
        seen[idx->valueint] = 1;
        q->results[k].index = idx->valueint;
        q->results[k].score = (float)sc->valuedouble;
        k++;
    }
    rr_free(seen);
    if (st == RR_OK) {
        q->n_results = k;
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(j, "usage");
        const cJSON *t = u ? cJSON_GetObjectItemCaseSensitive(u, "total_tokens") : NULL;
        q->total_tokens = cJSON_IsNumber(t) ? (long)t->valuedouble : 0;
    }
out:
    cJSON_Delete(j);
    return st;
}

/* The server's own words for an error answer: detail, message or error, else the start of the body. */
static void error_text(const rr_buf *b, char *out, size_t cap) {
    out[0] = 0;
    cJSON *j = b->data ? cJSON_ParseWithLength(b->data, b->len) : NULL;
    const char *keys[] = {"detail", "message", "error"};
    for (size_t i = 0; j && i < RR_ARRAY_LEN(keys) && !out[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, keys[i]);
        if (cJSON_IsString(v)) snprintf(out, cap, "%s", v->valuestring);
    }
    cJSON_Delete(j);
    if (!out[0] && b->data) snprintf(out, cap, "%.*s", (int)RR_MIN(b->len, (size_t)200), b->data);
}

static int retryable(CURLcode cc, long status) {
    if (cc != CURLE_OK) return cc != CURLE_URL_MALFORMAT && cc != CURLE_UNSUPPORTED_PROTOCOL;
    return status == 429 || status == 502 || status == 503 || status == 504;
}

static double backoff(uint64_t *jitter, int attempts, long retry_after) {
    /* 0.2 s doubling, at most 10 s; +-25 % so a pool's clients do not come back in step */
    double d = 0.2 * (double)(1u << RR_MIN(attempts - 1, 6));
    if (d > 10) d = 10;
    *jitter ^= *jitter << 13, *jitter ^= *jitter >> 7, *jitter ^= *jitter << 17;
    d *= 0.75 + 0.5 * (double)(*jitter >> 11) / (double)(1ull << 53);
    if (retry_after >= 0 && (double)retry_after > d) d = (double)retry_after;
    return d;
}

static rr_status start(CURLM *multi, const rr_remote_params *p, const char *url, struct curl_slist *hdrs, xfer *x) {
    x->easy = curl_easy_init();
    if (!x->easy) return rr_fail(RR_ERR_NOMEM, "out of memory (curl handle)");
    rr_buf_free(&x->resp);
    x->retry_after = -1;
    x->attempts++;
    curl_easy_setopt(x->easy, CURLOPT_URL, url);
    curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, x->body);
    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(x->body));
    curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, &x->resp);
    curl_easy_setopt(x->easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(x->easy, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(x->easy, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS, (long)(p->timeout_s * 1000));
    curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
    if (curl_multi_add_handle(multi, x->easy) != CURLM_OK) {
        curl_easy_cleanup(x->easy);
        x->easy = NULL;
        return rr_fail(RR_ERR_NOMEM, "out of memory (curl multi)");
    }
    return RR_OK;
}

rr_status rr_remote_rank(const rr_remote_params *params, rr_remote_query *qs, int n,
                         void (*progress)(void *user, int done, int total), void *user) {
    rr_remote_params p = params ? *params : rr_remote_default_params();
    if (!p.url || !*p.url) return rr_fail(RR_ERR_INVALID, "remote: no server URL");
    if (strncmp(p.url, "http://", 7) && strncmp(p.url, "https://", 8))
        return rr_fail(RR_ERR_INVALID, "remote: the server URL must start with http:// or https://, not \"%s\"", p.url);
    if (n < 0 || (n && !qs)) return rr_fail(RR_ERR_INVALID, "remote: bad query list");
    for (int i = 0; i < n; i++)
        if (qs[i].n_docs < 0 || (qs[i].n_docs && (!qs[i].docs || !qs[i].results)))
            return rr_fail(RR_ERR_INVALID, "remote: query %d has a bad document list", i);
    if (p.concurrency <= 0) p.concurrency = 4;
    if (p.max_retries < 0) p.max_retries = 0;
    if (p.timeout_s <= 0) p.timeout_s = 600;
    pthread_once(&g_once, init_once);
    if (g_init_rc != CURLE_OK) return rr_fail(RR_ERR_NETWORK, "remote: curl_global_init failed");

    /* the URL: a base gets /v1/rerank appended */
    size_t ul = strlen(p.url);
    while (ul > 8 && p.url[ul - 1] == '/') ul--;
    char *url = rr_malloc(ul + 16);
    if (!url) return rr_fail(RR_ERR_NOMEM, "out of memory");
    int full = ul >= 6 && !memcmp(p.url + ul - 6, "rerank", 6);
    snprintf(url, ul + 16, "%.*s%s", (int)ul, p.url, full ? "" : "/v1/rerank");

    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    hdrs = curl_slist_append(hdrs, "Accept: application/json");
    hdrs = curl_slist_append(hdrs, "Expect:"); /* no 100-continue round trip */
    char auth[600];
    if (p.api_key && *p.api_key) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", p.api_key);
        hdrs = curl_slist_append(hdrs, auth);
    }
    xfer *xs = rr_calloc((size_t)(n ? n : 1), sizeof *xs);
    CURLM *multi = curl_multi_init();
    rr_status st = (!hdrs || !xs || !multi) ? rr_fail(RR_ERR_NOMEM, "out of memory") : RR_OK;
    if (multi) curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)p.concurrency);

    int next = 0, done = 0, in_flight = 0;
    uint64_t jitter = 0x9E3779B97F4A7C15ull ^ (uint64_t)(rr_now() * 1e6);
    int *waiting = rr_malloc((size_t)(n ? n : 1) * sizeof *waiting); /* queries to retry */
    int n_waiting = 0;
    if (!waiting && st == RR_OK) st = rr_fail(RR_ERR_NOMEM, "out of memory");
    while (st == RR_OK && done < n) {
        double now = rr_now();
        /* fill the free slots: retries that are due first, then new queries */
        while (in_flight < p.concurrency && st == RR_OK) {
            int pick = -1;
            for (int k = 0; k < n_waiting; k++)
                if (xs[waiting[k]].not_before <= now) {
                    pick = waiting[k];
                    waiting[k] = waiting[--n_waiting];
                    break;
                }
            if (pick < 0 && next < n) {
                pick = next++;
                xs[pick].q = pick;
                xs[pick].body = request_body(&p, &qs[pick]);
                if (!xs[pick].body) st = rr_fail(RR_ERR_NOMEM, "out of memory building request %d", pick);
            }
            if (pick < 0 || st != RR_OK) break;
            st = start(multi, &p, url, hdrs, &xs[pick]);
            if (st == RR_OK) in_flight++;
        }
        if (st != RR_OK) break;
        int running = 0;
        curl_multi_perform(multi, &running);
        CURLMsg *msg;
        int left;
        while (st == RR_OK && (msg = curl_multi_info_read(multi, &left))) {
            if (msg->msg != CURLMSG_DONE) continue;
            xfer *x = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
            CURLcode cc = msg->data.result;
            long status = 0;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
            curl_multi_remove_handle(multi, msg->easy_handle);
            curl_easy_cleanup(msg->easy_handle);
            x->easy = NULL;
            in_flight--;
            if (cc == CURLE_OK && status == 200) {
                st = parse_answer(&x->resp, &qs[x->q], x->q);
                rr_buf_free(&x->resp);
                free(x->body);
                x->body = NULL;
                done++;
                if (st == RR_OK && progress) progress(user, done, n);
            } else if (retryable(cc, status) && x->attempts <= p.max_retries) {
                x->not_before = rr_now() + backoff(&jitter, x->attempts, x->retry_after);
                waiting[n_waiting++] = x->q;
            } else {
                char why[300];
                if (cc != CURLE_OK) snprintf(why, sizeof why, "%s", curl_easy_strerror(cc));
                else {
                    char t[240];
                    error_text(&x->resp, t, sizeof t);
                    snprintf(why, sizeof why, "HTTP %ld: %s", status, t);
                }
                st = rr_fail(RR_ERR_NETWORK, "%s: query %d: %s%s", url, x->q, why,
                             retryable(cc, status) ? " (retries exhausted)" : "");
            }
        }
        if (st != RR_OK || done == n) break;
        /* sleep until a transfer moves or the earliest retry is due */
        int wait_ms = 100;
        if (in_flight == 0 && n_waiting) {
            double soonest = 1e300;
            for (int k = 0; k < n_waiting; k++) soonest = RR_MIN(soonest, xs[waiting[k]].not_before);
            wait_ms = (int)RR_MAX(1.0, RR_MIN(1000.0, (soonest - rr_now()) * 1e3));
        }
        curl_multi_poll(multi, NULL, 0, wait_ms, NULL);
    }
    for (int i = 0; xs && i < n; i++) {
        if (xs[i].easy) {
            curl_multi_remove_handle(multi, xs[i].easy);
            curl_easy_cleanup(xs[i].easy);
        }
        free(xs[i].body);
        rr_buf_free(&xs[i].resp);
    }
    if (multi) curl_multi_cleanup(multi);
    curl_slist_free_all(hdrs);
    rr_free(xs);
    rr_free(waiting);
    rr_free(url);
    return st;
}

/*
 * trec.c -- relevance judgments (qrels) and ranked lists (runs): the TREC text formats read by
 * trec_eval, BEIR's qrels TSV, and the in-memory tables the metrics work on. Runs are put in
 * trec_eval's order here, once, so every consumer (metrics, reranking, the written run file) sees
 * the same ranking.
 */
#include "rerank_eval.h"

#include "core/core.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define MAX_TEXT_FILE ((size_t)1 << 36)

/* ------------------------------------------------------------------ line splitting */

typedef struct field {
    const char *p;
    size_t len;
} field;

/* Splits line[0..len) into at most max fields separated by runs of spaces/tabs (or by single tabs
 * when tabs_only). Returns the number of fields found (max + 1 when there are more). */
static int split_fields(const char *line, size_t len, bool tabs_only, field *f, int max) {
    int n = 0;
    size_t i = 0;
    if (tabs_only) {
        size_t start = 0;
        for (i = 0; i <= len; i++) {
            if (i == len || line[i] == '\t') {
                if (n == max) return max + 1;
                f[n].p = line + start;
                f[n].len = i - start;
                n++;
                start = i + 1;
            }
        }
        return n;
    }
    while (i < len) {
        while (i < len && (line[i] == ' ' || line[i] == '\t')) i++;
        if (i == len) break;
        size_t start = i;
        while (i < len && line[i] != ' ' && line[i] != '\t') i++;
        if (n == max) return max + 1;
        f[n].p = line + start;
        f[n].len = i - start;
        n++;
    }
    return n;
}

/* Iterates the lines of buf: returns false at the end; strips "\r\n". */
static bool next_line(const char *buf, size_t n, size_t *pos, const char **line, size_t *len) {
    if (*pos >= n) return false;
    const char *s = buf + *pos;
    const char *e = memchr(s, '\n', n - *pos);
    size_t l = e ? (size_t)(e - s) : n - *pos;
    *pos += l + (e ? 1 : 0);
    if (l && s[l - 1] == '\r') l--;
    *line = s;
    *len = l;
    return true;
}

/* Lines with nothing to read: blank ones, and comments, whose first non-blank character is '#' (trec_eval
 * 10.0 skips both in runs, and '#' lines in qrels). */
static bool skip_line(const char *s, size_t n) {
    size_t i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
    return i == n || s[i] == '#';
}

/* The lines of a text file that carry a record, numbered from 1 for messages. */
typedef struct {
    const char *buf, *path;
    size_t n, pos;
    int lineno;
} line_reader;

/* The next line with something to read. False at the end, or on a NUL byte (trec_eval's files "may
 * contain no NULL characters"), which sets *st to the error naming the line. */
static bool next_record(line_reader *lr, const char **line, size_t *len, rr_status *st) {
    while (next_line(lr->buf, lr->n, &lr->pos, line, len)) {
        lr->lineno++;
        if (skip_line(*line, *len)) continue;
        if (memchr(*line, 0, *len)) {
            *st = rr_fail(RR_ERR_FORMAT, "%s: line %d: NUL byte in a text line", lr->path, lr->lineno);
            return false;
        }
        return true;
    }
    return false;
}

static bool parse_int_field(field f, long *out) {
    char tmp[32];
    if (f.len == 0 || f.len >= sizeof(tmp)) return false;
    memcpy(tmp, f.p, f.len);
    tmp[f.len] = 0;
    char *end;
    errno = 0;
    long v = strtol(tmp, &end, 10);
    if (*end || errno || v < -1000000 || v > 1000000) return false;
    *out = v;
    return true;
}

/* ------------------------------------------------------------------ query tables */

static rr_status intern_query(rr_eval_pool *pool, rr_eval_strmap *map, const char ***qids, int *n, int *cap,
                              const char *qid, size_t len, int *out) {
    int qi = rr_eval_strmap_get(map, qid, len);
    if (qi >= 0) {
        *out = qi;
        return RR_OK;
    }
    if (*n == *cap) {
        int nc = *cap ? *cap * 2 : 64;
        const char **nq = rr_realloc(*qids, (size_t)nc * sizeof(*nq));
        if (!nq) return rr_fail(RR_ERR_NOMEM, "eval: out of memory adding a query");
        *qids = nq;
        *cap = nc;
    }
    char *k = rr_eval_pool_strndup(pool, qid, len);
    if (!k) return rr_fail(RR_ERR_NOMEM, "eval: out of memory adding a query");
    rr_status st = rr_eval_strmap_put(map, k, *n, NULL);
    if (st != RR_OK) return st;
    (*qids)[*n] = k;
    *out = (*n)++;
    return RR_OK;
}

/* After sorting: entries off[qi] .. off[qi + 1] belong to query qi; the table takes off (freeing
 * the one it had). */
static void adopt_groups(int *off, int n_queries, int *qidx, int **table_off) {
    for (int qi = 0; qi < n_queries; qi++)
        for (int i = off[qi]; i < off[qi + 1]; i++) qidx[i] = qi;
    rr_free(*table_off);
    *table_off = off;
}

/* Stable counting sort of n items by query index: perm[] receives item indices grouped by query,
 * off[] the group bounds. */
static rr_status group_by_query(const int *qidx, size_t n, int n_queries, int **off_out, size_t **perm_out) {
    int *off = rr_calloc((size_t)n_queries + 1, sizeof(*off));
    size_t *perm = rr_malloc((n ? n : 1) * sizeof(*perm));
    int *fill = rr_calloc((size_t)n_queries + 1, sizeof(*fill));
    if (!off || !perm || !fill) {
        rr_free(off);
        rr_free(perm);
        rr_free(fill);
        return rr_fail(RR_ERR_NOMEM, "eval: out of memory sorting %zu lines", n);
    }
    for (size_t i = 0; i < n; i++) off[qidx[i] + 1]++;
    for (int q = 0; q < n_queries; q++) off[q + 1] += off[q];
    for (size_t i = 0; i < n; i++) perm[off[qidx[i]] + fill[qidx[i]]++] = i;
    rr_free(fill);
    *off_out = off;
    *perm_out = perm;
    return RR_OK;
}

/* ------------------------------------------------------------------ qrels */

rr_status rr_eval_qrels_add(rr_eval_qrels *q, const char *qid, size_t qid_len, const char *docno,
                            size_t docno_len, int grade, int line) {
    int qi;
    rr_status st = intern_query(&q->pool, &q->qmap, &q->qids, &q->n_queries, &q->cap_queries, qid, qid_len, &qi);
    if (st != RR_OK) return st;
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 256;
        const char **d = rr_realloc(q->docnos, cap * sizeof(*d));
        if (d) q->docnos = d;
        int *g = rr_realloc(q->grades, cap * sizeof(*g));
        if (g) q->grades = g;
        int *x = rr_realloc(q->qidx, cap * sizeof(*x));
        if (x) q->qidx = x;
        int *l = rr_realloc(q->lines, cap * sizeof(*l));
        if (l) q->lines = l;
        if (!d || !g || !x || !l) return rr_fail(RR_ERR_NOMEM, "eval: out of memory adding a judgment");
        q->cap = cap;
    }
    char *dn = rr_eval_pool_strndup(&q->pool, docno, docno_len);
    if (!dn) return rr_fail(RR_ERR_NOMEM, "eval: out of memory adding a judgment");
    q->docnos[q->n] = dn;
    q->grades[q->n] = grade;
    q->qidx[q->n] = qi;
    q->lines[q->n] = line;
    q->n++;
    return RR_OK;
}

typedef struct judg {
    const char *docno;
    int grade, line;
} judg;

static int cmp_judg(const void *a, const void *b) {
    return strcmp(((const judg *)a)->docno, ((const judg *)b)->docno);
}

rr_status rr_eval_qrels_finish(rr_eval_qrels *q, const char *what) {
    int *off;
    size_t *perm;
    rr_status st = group_by_query(q->qidx, q->n, q->n_queries, &off, &perm);
    if (st != RR_OK) return st;
    judg *tmp = rr_malloc((q->n ? q->n : 1) * sizeof(*tmp));
    if (!tmp) {
        rr_free(off);
        rr_free(perm);
        return rr_fail(RR_ERR_NOMEM, "eval: out of memory sorting judgments");
    }
    for (size_t i = 0; i < q->n; i++)
        tmp[i] = (judg){q->docnos[perm[i]], q->grades[perm[i]], q->lines[perm[i]]};
    for (int qi = 0; qi < q->n_queries; qi++)
        qsort(tmp + off[qi], (size_t)(off[qi + 1] - off[qi]), sizeof(*tmp), cmp_judg);
    st = RR_OK;
    for (int qi = 0; qi < q->n_queries && st == RR_OK; qi++)
        for (int i = off[qi] + 1; i < off[qi + 1]; i++)
            if (!strcmp(tmp[i - 1].docno, tmp[i].docno)) {
                st = rr_fail(RR_ERR_FORMAT, "%s: line %d: document '%s' is judged twice for query '%s' (also line %d)",
                             what, RR_MAX(tmp[i].line, tmp[i - 1].line), tmp[i].docno, q->qids[qi],
                             RR_MIN(tmp[i].line, tmp[i - 1].line));
                break;
            }
    for (size_t i = 0; i < q->n; i++) {
        q->docnos[i] = tmp[i].docno;
        q->grades[i] = tmp[i].grade;
        q->lines[i] = tmp[i].line;
    }
    rr_free(tmp);
    rr_free(perm);
    adopt_groups(off, q->n_queries, q->qidx, &q->off);
    return st;
}

rr_status rr_eval_qrels_load(const char *path, rr_eval_qrels *q) {
    char *buf;
    size_t n;
    rr_status st = rr_file_read(path, MAX_TEXT_FILE, &buf, &n);
    if (st != RR_OK) return st;
    st = rr_eval_qrels_parse(buf, n, path, q);
    rr_free(buf);
    return st;
}

rr_status rr_eval_qrels_parse(const char *buf, size_t n, const char *path, rr_eval_qrels *q) {
    rr_status st = RR_OK;
    line_reader lr = {.buf = buf, .path = path, .n = n};
    const char *line;
    size_t len;
    int format = 0; /* 0 unknown, 3 = BEIR TSV, 4 = TREC */
    field f[5];
    while (next_record(&lr, &line, &len, &st)) {
        const int lineno = lr.lineno;
        if (!format) {
            int nt = split_fields(line, len, true, f, 4);
            if (nt == 3 || (nt >= 1 && f[0].len == 8 && !memcmp(f[0].p, "query-id", 8))) {
                format = 3;
                if (f[0].len == 8 && !memcmp(f[0].p, "query-id", 8)) continue; /* header */
            } else {
                format = 4;
            }
        }
        int nf = split_fields(line, len, format == 3, f, format);
        long grade;
        if (nf != format) {
            st = rr_fail(RR_ERR_FORMAT, "%s: line %d: expected %s, found %s%d", path, lineno,
                         format == 3 ? "3 tab-separated fields 'query-id corpus-id score'"
                                     : "4 fields 'qid iter docid grade'",
                         nf > format ? "more than " : "", nf > format ? format : nf);
            goto fail;
        }
        field fq = f[0], fd = f[format == 3 ? 1 : 2], fg = f[format == 3 ? 2 : 3];
        if (!fq.len || !fd.len) {
            st = rr_fail(RR_ERR_FORMAT, "%s: line %d: empty query or document id", path, lineno);
            goto fail;
        }
        if (!parse_int_field(fg, &grade)) {
            st = rr_fail(RR_ERR_FORMAT, "%s: line %d: relevance grade '%.*s' is not an integer", path, lineno,
                         (int)RR_MIN(fg.len, 40), fg.p);
            goto fail;
        }
        st = rr_eval_qrels_add(q, fq.p, fq.len, fd.p, fd.len, (int)grade, lineno);
        if (st != RR_OK) goto fail;
    }
    if (st != RR_OK) goto fail;
    if (q->n == 0) return rr_fail(RR_ERR_FORMAT, "%s: no judgments (empty qrels file)", path);
    return rr_eval_qrels_finish(q, path);
fail:
    return st;
}

int rr_eval_qrels_find(const rr_eval_qrels *q, const char *qid) {
    return rr_eval_strmap_get(&q->qmap, qid, strlen(qid));
}

int rr_eval_qrels_grade(const rr_eval_qrels *q, int qi, const char *docno, int *judged) {
    int lo = q->off[qi], hi = q->off[qi + 1];
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(q->docnos[mid], docno);
        if (c == 0) {
            if (judged) *judged = 1;
            return q->grades[mid];
        }
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    if (judged) *judged = 0;
    return 0;
}

void rr_eval_qrels_free(rr_eval_qrels *q) {
    if (!q) return;
    rr_eval_pool_free(&q->pool);
    rr_eval_strmap_free(&q->qmap);
    rr_free(q->qids);
    rr_free(q->off);
    rr_free(q->docnos);
    rr_free(q->grades);
    rr_free(q->qidx);
    rr_free(q->lines);
    memset(q, 0, sizeof(*q));
}

/* ------------------------------------------------------------------ runs */

rr_status rr_eval_run_add(rr_eval_run *r, const char *qid, const char *docno, size_t docno_len, int borrowed,
                          double score, int line) {
    int qi;
    rr_status st = intern_query(&r->pool, &r->qmap, &r->qids, &r->n_queries, &r->cap_queries, qid, strlen(qid), &qi);
    if (st != RR_OK) return st;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 1024;
        rr_eval_hit *h = rr_realloc(r->hits, cap * sizeof(*h));
        if (h) r->hits = h;
        int *x = rr_realloc(r->qidx, cap * sizeof(*x));
        if (x) r->qidx = x;
        if (!h || !x) return rr_fail(RR_ERR_NOMEM, "eval: out of memory adding a result");
        r->cap = cap;
    }
    const char *dn = borrowed ? docno : rr_eval_pool_strndup(&r->pool, docno, docno_len);
    if (!dn) return rr_fail(RR_ERR_NOMEM, "eval: out of memory adding a result");
    r->hits[r->n] = (rr_eval_hit){dn, score, line};
    r->qidx[r->n] = qi;
    r->n++;
    return RR_OK;
}

static int cmp_docno(const void *a, const void *b) {
    return strcmp(((const rr_eval_hit *)a)->docno, ((const rr_eval_hit *)b)->docno);
}

/* trec_eval's comp_sim_docno: score descending, then docno descending. */
static int cmp_trec(const void *a, const void *b) {
    const rr_eval_hit *x = a, *y = b;
    if (x->score > y->score) return -1;
    if (x->score < y->score) return 1;
    return strcmp(y->docno, x->docno);
}

rr_status rr_eval_run_finish(rr_eval_run *r, const char *what) {
    int *off;
    size_t *perm;
    rr_status st = group_by_query(r->qidx, r->n, r->n_queries, &off, &perm);
    if (st != RR_OK) return st;
    rr_eval_hit *tmp = rr_malloc((r->n ? r->n : 1) * sizeof(*tmp));
    if (!tmp) {
        rr_free(off);
        rr_free(perm);
        return rr_fail(RR_ERR_NOMEM, "eval: out of memory sorting a run");
    }
    for (size_t i = 0; i < r->n; i++) tmp[i] = r->hits[perm[i]];
    for (int qi = 0; qi < r->n_queries && st == RR_OK; qi++) {
        rr_eval_hit *h = tmp + off[qi];
        size_t m = (size_t)(off[qi + 1] - off[qi]);
        qsort(h, m, sizeof(*h), cmp_docno);
        for (size_t i = 1; i < m; i++)
            if (!strcmp(h[i - 1].docno, h[i].docno)) {
                st = rr_fail(RR_ERR_FORMAT, "%s: line %d: document '%s' is listed twice for query '%s' (also line %d)",
                             what, RR_MAX(h[i].line, h[i - 1].line), h[i].docno, r->qids[qi],
                             RR_MIN(h[i].line, h[i - 1].line));
                break;
            }
        qsort(h, m, sizeof(*h), cmp_trec);
    }
    memcpy(r->hits, tmp, r->n * sizeof(*tmp));
    rr_free(tmp);
    rr_free(perm);
    adopt_groups(off, r->n_queries, r->qidx, &r->off);
    return st;
}

rr_status rr_eval_run_load(const char *path, rr_eval_run *r) {
    char *buf;
    size_t n;
    rr_status st = rr_file_read(path, MAX_TEXT_FILE, &buf, &n);
    if (st != RR_OK) return st;
    st = rr_eval_run_parse(buf, n, path, r);
    rr_free(buf);
    return st;
}

rr_status rr_eval_run_parse(const char *buf, size_t n, const char *path, rr_eval_run *r) {
    rr_status st = RR_OK;
    line_reader lr = {.buf = buf, .path = path, .n = n};
    const char *line;
    size_t len;
    field f[7];
    char qid[512], numbuf[64];
    while (next_record(&lr, &line, &len, &st)) {
        const int lineno = lr.lineno;
        int nf = split_fields(line, len, false, f, 6);
        if (nf != 6) {
            st = rr_fail(RR_ERR_FORMAT, "%s: line %d: expected 6 fields 'qid Q0 docid rank score tag', found %s%d",
                         path, lineno, nf > 6 ? "more than " : "", nf > 6 ? 6 : nf);
            goto fail;
        }
        if (f[0].len >= sizeof(qid)) {
            st = rr_fail(RR_ERR_FORMAT, "%s: line %d: query id longer than %zu bytes", path, lineno, sizeof(qid) - 1);
            goto fail;
        }
        memcpy(qid, f[0].p, f[0].len);
        qid[f[0].len] = 0;
        /* trec_eval 10.0 reads the score with atof into a double: every finite double is accepted and
         * ties are decided on double values. The field is copied out because buf need not be
         * NUL-terminated and strtod must not read past the field. */
        double score = 0;
        bool ok = false;
        char *num = f[4].len < sizeof(numbuf) ? numbuf : rr_malloc(f[4].len + 1);
        if (!num) {
            st = rr_fail(RR_ERR_NOMEM, "%s: line %d: out of memory", path, lineno);
            goto fail;
        }
        memcpy(num, f[4].p, f[4].len);
        num[f[4].len] = 0;
        char *end = NULL;
        score = strtod(num, &end);
        ok = end != num && !*end && isfinite(score);
        if (num != numbuf) rr_free(num);
        if (!ok) {
            st = rr_fail(RR_ERR_FORMAT, "%s: line %d: score '%.*s' is not a finite number", path, lineno,
                         (int)RR_MIN(f[4].len, 40), f[4].p);
            goto fail;
        }
        st = rr_eval_run_add(r, qid, f[2].p, f[2].len, 0, score, lineno);
        if (st != RR_OK) goto fail;
    }
    if (st != RR_OK) goto fail;
    if (r->n == 0) return rr_fail(RR_ERR_FORMAT, "%s: no results (empty run file)", path);
    return rr_eval_run_finish(r, path);
fail:
    return st;
}

void rr_eval_run_truncate(rr_eval_run *r, int k) {
    size_t w = 0;
    int start = 0;
    for (int qi = 0; qi < r->n_queries; qi++) {
        int n = RR_MIN(r->off[qi + 1] - start, k);
        for (int i = 0; i < n; i++) {
            r->hits[w + (size_t)i] = r->hits[start + i];
            r->qidx[w + (size_t)i] = qi;
        }
        start = r->off[qi + 1];
        r->off[qi] = (int)w;
        w += (size_t)n;
    }
    r->off[r->n_queries] = (int)w;
    r->n = w;
}

int rr_eval_run_find(const rr_eval_run *r, const char *qid) {
    return rr_eval_strmap_get(&r->qmap, qid, strlen(qid));
}

/* The shortest of %.9g / %.15g / %.17g that reads back as the same double: scores that came from
 * floats stay short, and no two distinct doubles print alike (which would create ties). */
static void fmt_score(char *buf, size_t cap, double v) {
    static const int digits[] = {9, 15, 17};
    for (size_t i = 0; i < RR_ARRAY_LEN(digits); i++) {
        snprintf(buf, cap, "%.*g", digits[i], v);
        if (strtod(buf, NULL) == v) return;
    }
}

rr_status rr_eval_run_write(const rr_eval_run *r, const char *path, const char *tag) {
    FILE *f = fopen(path, "w");
    if (!f) return rr_fail(RR_ERR_IO, "%s: %s", path, strerror(errno));
    for (int qi = 0; qi < r->n_queries; qi++)
        for (int i = r->off[qi]; i < r->off[qi + 1]; i++) {
            char num[32];
            fmt_score(num, sizeof num, r->hits[i].score);
            fprintf(f, "%s Q0 %s %d %s %s\n", r->qids[qi], r->hits[i].docno, i - r->off[qi] + 1, num, tag);
        }
    bool bad = ferror(f) != 0;
    if (fclose(f) != 0 || bad) return rr_fail(RR_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    return RR_OK;
}

void rr_eval_run_free(rr_eval_run *r) {
    if (!r) return;
    rr_eval_pool_free(&r->pool);
    rr_eval_strmap_free(&r->qmap);
    rr_free(r->qids);
    rr_free(r->off);
    rr_free(r->hits);
    rr_free(r->qidx);
    memset(r, 0, sizeof(*r));
}

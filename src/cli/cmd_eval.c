/*
 * cmd_eval.c -- `rerank eval`: measures a ranking with trec_eval's metrics. The first stage is a
 * TREC run file, the built-in BM25, or the candidate lists of a JSONL task file; the result is a
 * table on stdout (mean, and per query with -q), optionally JSON and the ranked run as a TREC file.
 * The metric semantics live in src/eval (metrics.c); this file only wires the stages together.
 * The reranker is a local model (-m) or any Jina / Cohere /v1/rerank server (--server URL, e.g. a
 * `rerank serve` pool behind nginx) with --concurrency requests in flight; both give the same run,
 * and so the same metrics, for the same model (the server is asked for raw logits, as -m uses).
 */
#include "cli/cli.h"
#include "rerank_eval.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct eval_opts {
    const char *model, *data, *run, *qrels, *output_run, *json, *metrics, *task;
    const char *server, *api_key; /* --server: rerank through this URL instead of a local model */
    long concurrency, retries;
    rr_precision precision;
    rr_template prompt;      /* --template (decoder rerankers) */
    const char *instruction; /* --instruction (decoder prompts) */
    long threads, max_length, batch_tokens;
    long bm25_k; /* 0 = no BM25 */
    long top_k; /* 0 = keep the whole first-stage list */
    long rel_level;
    int complete, per_query;
    double k1, b;
} eval_opts;

static void eval_usage(FILE *f) {
    fprintf(f,
            "usage: rerank eval [-m MODEL | --server URL] --data PATH [--run FILE | --bm25 K] [options]\n"
            "       rerank eval --run FILE --qrels FILE [options]       (trec_eval-style metrics only)\n"
            "\n"
            "Evaluates a ranking with trec_eval's metric semantics; with -m, the first stage's top-k\n"
            "documents of each query are reranked by the model first.\n"
            "\n"
            "  -m, --model MODEL   a model folder or Hugging Face repo id (pulled when not cached)\n"
            "  --server URL        rerank through a server speaking the Jina / Cohere POST /v1/rerank shape\n"
            "                      instead (http://host:port or a full URL ending in rerank; with -m, the\n"
            "                      model name sent); one request per query, raw scores asked for\n"
            "  --concurrency N     with --server: requests in flight (default 4)\n"
            "  --retries N         with --server: resends of a request answered 429/502/503/504 or whose\n"
            "                      connection failed, with backoff (default 8)\n"
            "  --api-key KEY       with --server: bearer token (default $RERANK_API_KEY)\n"
            "  --data PATH         a BEIR folder (corpus.jsonl, queries.jsonl, qrels/test.tsv) or a\n"
            "                      candidate-list .jsonl file ({id, query, candidates:[{id,text}], relevant:[...]})\n"
            "  --run FILE          first stage: a TREC run 'qid Q0 docid rank score tag'\n"
            "  --bm25 K            first stage: the built-in BM25, top K per query\n"
            "                      (candidate lists without --run/--bm25 keep the file's order)\n"
            "  --k1 X, --b X       BM25 parameters (default 0.9 and 0.4, as Anserini)\n"
            "  --qrels FILE        judgments: TREC qrels 'qid 0 docid grade' or BEIR TSV (default: the data's)\n"
            "  --metrics LIST      comma-separated: ndcg@K recall@K mrr@K mrr map p@K\n"
            "                      (default ndcg@10,recall@10,mrr@10,map; see --task)\n"
            "  --task NAME         beir | tools | sql | code: the release's metric as default\n"
            "                      (tools, sql: recall@3; code: mrr@10)\n"
            "  --top-k N           keep the first stage's top N per query: the reranking depth\n"
            "                      (default 100 with -m or --server, else all)\n"
            "  --precision P       fp32 | bf16 | int8 | auto (with -m; default auto: bf16 where the CPU has it)\n"
            "  --threads N         threads for the model (default: all cores)\n"
            "  --max-length N      longest (query, document window) pair in tokens (default: the model's)\n"
            "  --batch-tokens N    tokens per forward pass (default: the library's)\n"
            "  --template NAME     qwen3-reranker | mxbai-rerank-v2: a decoder's prompt (default: from the folder)\n"
            "  --instruction TEXT  a decoder prompt's task instruction (default: the template's)\n"
            "  -l N                relevance threshold: grade >= N is relevant (default 1, trec_eval -l)\n"
            "  -c                  judged queries without results count as 0 (trec_eval -c)\n"
            "  -q, --per-query     print one row per query, not only the mean\n"
            "  --output-run FILE   write the final ranking as a TREC run\n"
            "  --json FILE         write per-query and mean metrics as JSON ('-' = stdout, instead of the table)\n");
}

/* ------------------------------------------------------------------ progress */

typedef struct progress {
    const char *what;
    int total;
    double start, last;
    bool tty;
} progress;

static void progress_init(progress *p, const char *what, int total) {
    p->what = what;
    p->total = total;
    p->start = p->last = rr_now();
    p->tty = isatty(2);
}

static void progress_step(progress *p, int done) {
    if (!p->tty) return;
    double now = rr_now();
    if (done < p->total && now - p->last < 0.2) return;
    p->last = now;
    double el = now - p->start;
    double eta = done > 0 ? el / done * (p->total - done) : 0;
    fprintf(stderr, "\r%s %d/%d (%3.0f%%) %4.0fs elapsed, ETA %4.0fs ", p->what, done, p->total,
            p->total ? 100.0 * done / p->total : 100.0, el, eta);
    if (done >= p->total) fputc('\n', stderr);
    fflush(stderr);
}

/* ------------------------------------------------------------------ first stages */

static int status_error(const char *what) {
    return cli_error("%s%s%s", what ? what : "", what ? ": " : "", rr_errmsg());
}

/* BM25 over the data's documents (or each query's candidates), judged queries only. */
static int first_stage_bm25(const rr_eval_data *d, const eval_opts *o, rr_eval_run *run) {
    double t0 = rr_now();
    rr_eval_bm25 *ix;
    if (rr_eval_bm25_build(d->dtexts, d->n_docs, (float)o->k1, (float)o->b, &ix) != RR_OK)
        return status_error("bm25");
    fprintf(stderr, "eval: BM25 index of %d documents, %d terms in %.2f s (k1 %.2f, b %.2f)\n", d->n_docs,
            rr_eval_bm25_n_terms(ix), rr_now() - t0, o->k1, o->b);
    int cap = d->n_docs;
    int *docs = rr_malloc((size_t)cap * sizeof(int));
    float *scores = rr_malloc((size_t)cap * sizeof(float));
    if (!docs || !scores) {
        rr_free(docs);
        rr_free(scores);
        rr_eval_bm25_free(ix);
        return cli_error("out of memory");
    }
    progress pr;
    progress_init(&pr, "bm25", d->n_queries);
    int rc = 0;
    for (int qi = 0; qi < d->n_queries && !rc; qi++) {
        progress_step(&pr, qi);
        if (rr_eval_qrels_find(&d->qrels, d->qids[qi]) < 0) continue;
        const int *cand = d->cand_off ? d->cand + d->cand_off[qi] : NULL;
        int n_cand = d->cand_off ? d->cand_off[qi + 1] - d->cand_off[qi] : 0;
        int n;
        if (rr_eval_bm25_search(ix, d->qtexts[qi], d->docnos, (int)o->bm25_k, cand, n_cand, docs, scores, &n) != RR_OK)
            rc = status_error("bm25");
        for (int i = 0; i < n && !rc; i++)
            if (rr_eval_run_add(run, d->qids[qi], d->docnos[docs[i]], 0, 1, scores[i], 0) != RR_OK)
                rc = status_error(NULL);
    }
    progress_step(&pr, d->n_queries);
    rr_free(docs);
    rr_free(scores);
    rr_eval_bm25_free(ix);
    if (!rc && rr_eval_run_finish(run, "bm25") != RR_OK) rc = status_error(NULL);
    return rc;
}

/* The candidate lists in file order: score n - position keeps that order. */
static int first_stage_given(const rr_eval_data *d, rr_eval_run *run) {
    for (int qi = 0; qi < d->n_queries; qi++) {
        int n = d->cand_off[qi + 1] - d->cand_off[qi];
        for (int i = 0; i < n; i++)
            if (rr_eval_run_add(run, d->qids[qi], d->docnos[d->cand[d->cand_off[qi] + i]], 0, 1, (float)(n - i), 0) !=
                RR_OK)
                return status_error(NULL);
    }
    if (rr_eval_run_finish(run, "candidates") != RR_OK) return status_error(NULL);
    return 0;
}

/* ------------------------------------------------------------------ reranking (-m) */

/* The text of a document the first stage returned for query qi, or NULL when the data lacks it. */
static const char *doc_text(const rr_eval_data *d, int qi, const char *docno) {
    if (d->cand_off) { /* candidate lists: ids are only unique within a query */
        for (int i = d->cand_off[qi]; i < d->cand_off[qi + 1]; i++)
            if (!strcmp(d->docnos[d->cand[i]], docno)) return d->dtexts[d->cand[i]];
        return NULL;
    }
    int di = rr_eval_strmap_get(&d->dmap, docno, strlen(docno));
    return di < 0 ? NULL : d->dtexts[di];
}

/* Loads the -m model (a folder or a repo id, pulled when missing) and one context for it. */
static int load_model(const eval_opts *o, rr_model **model, rr_ctx **ctx) {
    rr_model_params mp = rr_model_default_params();
    mp.n_threads = (int)o->threads;
    mp.precision = o->precision;
    mp.prompt = o->prompt;
    rr_ctx_params cp = rr_ctx_default_params();
    if (o->batch_tokens) cp.max_batch_tokens = (int)o->batch_tokens;
    char dir[4096]; /* a folder, or the cached snapshot of a repo id */
    if (cli_model_dir(o->model, dir, sizeof dir)) return 1;
    double t0 = rr_now();
    if (rr_model_load(dir, &mp, model) != RR_OK) return status_error(NULL);
    if (rr_ctx_new(*model, &cp, ctx) != RR_OK) {
        rr_model_free(*model);
        *model = NULL;
        return status_error(NULL);
    }
    rr_model_info info;
    rr_model_get_info(*model, &info);
    fprintf(stderr, "eval: model %s (%d layers, hidden %d, %s, kernels %s) loaded in %.2f s\n", info.name,
            info.n_layers, info.hidden, rr_precision_name(info.precision),
            info.kernels ? info.kernels : "?", rr_now() - t0);
    if (o->instruction) cli_note_instruction(*model, "--instruction");
    return 0;
}

/* The texts of the first stage's top_k documents for run entry ri into docs[], their count into *n.
 * Returns 0, or 1 after printing why (a document the data lacks). */
static int query_docs(const rr_eval_data *d, const eval_opts *o, const rr_eval_run *first, int ri, int qi,
                      rr_text *docs, int *n) {
    *n = (int)RR_MIN((long)(first->off[ri + 1] - first->off[ri]), o->top_k);
    const rr_eval_hit *h = first->hits + first->off[ri];
    for (int i = 0; i < *n; i++) {
        const char *t = doc_text(d, qi, h[i].docno);
        if (!t) {
            if (h[i].line)
                return cli_error("%s: line %d: document '%s' is not in %s", o->run, h[i].line, h[i].docno, o->data);
            return cli_error("eval: document '%s' is not in %s", h[i].docno, o->data);
        }
        docs[i] = (rr_text){t, strlen(t)};
    }
    return 0;
}

static void remote_progress(void *user, int done, int total) {
    (void)total;
    progress_step(user, done);
}

/* --server: the same reranking as rerank() below, every judged query one request to the server,
 * `concurrency` in flight. */
static int rerank_remote(const rr_eval_data *d, const eval_opts *o, const rr_eval_run *first, rr_eval_run *out) {
    int nq = 0;
    long total_docs = 0;
    for (int ri = 0; ri < first->n_queries; ri++) {
        if (rr_eval_qrels_find(&d->qrels, first->qids[ri]) < 0) continue;
        nq++;
        total_docs += RR_MIN((long)(first->off[ri + 1] - first->off[ri]), o->top_k);
    }
    rr_remote_query *qs = rr_calloc((size_t)(nq ? nq : 1), sizeof *qs);
    int *ris = rr_malloc((size_t)(nq ? nq : 1) * sizeof *ris);
    rr_text *docs = rr_malloc((size_t)(total_docs ? total_docs : 1) * sizeof *docs);
    rr_rank_result *results = rr_malloc((size_t)(total_docs ? total_docs : 1) * sizeof *results);
    int rc = qs && ris && docs && results ? 0 : cli_error("out of memory");
    long at = 0;
    int k = 0;
    for (int ri = 0; ri < first->n_queries && !rc; ri++) {
        const char *qid = first->qids[ri];
        if (rr_eval_qrels_find(&d->qrels, qid) < 0) continue;
        int qi = rr_eval_strmap_get(&d->qmap, qid, strlen(qid));
        if (qi < 0) {
            rc = cli_error("eval: query '%s' of the run is not in %s", qid, o->data);
            break;
        }
        int n = 0;
        if ((rc = query_docs(d, o, first, ri, qi, docs + at, &n))) break;
        qs[k] = (rr_remote_query){.query = {d->qtexts[qi], strlen(d->qtexts[qi])}, .docs = docs + at, .n_docs = n,
                                  .results = results + at};
        ris[k++] = ri;
        at += n;
    }
    if (!rc) {
        rr_remote_params rp = rr_remote_default_params();
        rp.url = o->server;
        rp.api_key = o->api_key;
        rp.model = o->model;
        rp.raw = 1; /* as rerank(): sigmoids round large logits into ties */
        if (o->concurrency) rp.concurrency = (int)o->concurrency;
        rp.max_retries = (int)o->retries;
        progress pr;
        progress_init(&pr, "rerank", nq);
        double t1 = rr_now();
        if (rr_remote_rank(&rp, qs, nq, remote_progress, &pr) != RR_OK) {
            rc = cli_error("eval: %s", rr_errmsg());
        } else {
            progress_step(&pr, nq);
            long n_tokens = 0;
            for (int q = 0; q < nq && !rc; q++) {
                const rr_eval_hit *h = first->hits + first->off[ris[q]];
                n_tokens += qs[q].total_tokens;
                for (int i = 0; i < qs[q].n_results && !rc; i++)
                    if (rr_eval_run_add(out, first->qids[ris[q]], h[qs[q].results[i].index].docno, 0, 1,
                                        qs[q].results[i].score, 0) != RR_OK)
                        rc = status_error(NULL);
            }
            double el = rr_now() - t1;
            fprintf(stderr, "eval: reranked %ld pairs (%ld tokens) through %s, %ld in flight, in %.1f s, %.1f pairs/s\n",
                    total_docs, n_tokens, o->server, rp.concurrency > 0 ? (long)rp.concurrency : 4L, el,
                    el > 0 ? total_docs / el : 0.0);
            if (!rc && rr_eval_run_finish(out, "rerank") != RR_OK) rc = status_error(NULL);
        }
    }
    rr_free(qs);
    rr_free(ris);
    rr_free(docs);
    rr_free(results);
    return rc;
}

/* Reranks the top_k documents of every judged query of `first` with the model, one rr_rank call
 * per query (all its candidates at once), into `out`. Scores are raw logits: the sigmoid rounds
 * large logits to equal floats, which would turn real differences into ties. */
static int rerank(const rr_eval_data *d, const eval_opts *o, rr_ctx *ctx, const rr_eval_run *first,
                  rr_eval_run *out) {
    rr_text *docs = NULL;
    rr_rank_result *results = NULL;
    int max_n = 1;
    for (int ri = 0; ri < first->n_queries; ri++) max_n = RR_MAX(max_n, first->off[ri + 1] - first->off[ri]);
    max_n = (int)RR_MIN((long)max_n, o->top_k);
    docs = rr_malloc((size_t)max_n * sizeof(*docs));
    results = rr_malloc((size_t)max_n * sizeof(*results));
    int rc = docs && results ? 0 : cli_error("out of memory");
    rr_rank_params rp = rr_rank_default_params();
    rp.top_n = 0;
    rp.raw = 1;
    rp.max_length = (int)o->max_length;
    if (o->instruction) rp.instruction = (rr_text){o->instruction, strlen(o->instruction)};
    long n_pairs = 0, n_tokens = 0;
    progress pr;
    progress_init(&pr, "rerank", first->n_queries);
    double t1 = rr_now();
    for (int ri = 0; ri < first->n_queries && !rc; ri++) {
        progress_step(&pr, ri);
        const char *qid = first->qids[ri];
        int qi = rr_eval_strmap_get(&d->qmap, qid, strlen(qid));
        if (rr_eval_qrels_find(&d->qrels, qid) < 0) continue; /* not scored: not worth the model's time */
        if (qi < 0) {
            rc = cli_error("eval: query '%s' of the run is not in %s", qid, o->data);
            break;
        }
        int n = 0;
        const rr_eval_hit *h = first->hits + first->off[ri];
        if ((rc = query_docs(d, o, first, ri, qi, docs, &n))) break;
        int n_res = 0;
        rr_usage usage = {0};
        rr_text q = {d->qtexts[qi], strlen(d->qtexts[qi])};
        if (rr_rank(ctx, q, docs, n, &rp, results, &n_res, &usage) != RR_OK) {
            rc = cli_error("eval: query '%s': %s", qid, rr_errmsg());
            break;
        }
        n_pairs += n;
        n_tokens += usage.total_tokens;
        for (int i = 0; i < n_res && !rc; i++)
            if (rr_eval_run_add(out, qid, h[results[i].index].docno, 0, 1, results[i].score, 0) != RR_OK)
                rc = status_error(NULL);
    }
    if (!rc) {
        progress_step(&pr, first->n_queries);
        double el = rr_now() - t1;
        fprintf(stderr, "eval: reranked %ld pairs (%ld tokens) in %.1f s, %.1f pairs/s\n", n_pairs, n_tokens, el,
                el > 0 ? n_pairs / el : 0.0);
        if (rr_eval_run_finish(out, "rerank") != RR_OK) rc = status_error(NULL);
    }
    rr_free(docs);
    rr_free(results);
    return rc;
}

/* ------------------------------------------------------------------ output */

static void print_table(const rr_eval_result *res, const rr_eval_metric *m, int nm, bool per_query) {
    int w = 3;
    if (per_query)
        for (int i = 0; i < res->n_queries; i++) w = RR_MAX(w, (int)RR_MIN(strlen(res->qids[i]), 40));
    char all[64];
    snprintf(all, sizeof(all), "all (%d queries)", res->n_queries);
    w = RR_MAX(w, (int)strlen(all));
    printf("%-*s", w, "query");
    for (int j = 0; j < nm; j++) printf("  %10s", m[j].name);
    printf("\n");
    if (per_query)
        for (int i = 0; i < res->n_queries; i++) {
            printf("%-*s", w, res->qids[i]);
            for (int j = 0; j < nm; j++) printf("  %10.4f", res->values[(size_t)i * (size_t)nm + (size_t)j]);
            printf("\n");
        }
    printf("%-*s", w, all);
    for (int j = 0; j < nm; j++) printf("  %10.4f", res->mean[j]);
    printf("\n");
}

static int write_json(const char *path, const eval_opts *o, const char *stage, const rr_eval_result *res,
                      const rr_eval_metric *m, int nm) {
    rr_buf b = {0};
    rr_buf_puts(&b, "{\"data\": ");
    if (o->data) rr_buf_json_str(&b, o->data, strlen(o->data));
    else rr_buf_puts(&b, "null");
    rr_buf_puts(&b, ", \"first_stage\": ");
    rr_buf_json_str(&b, stage, strlen(stage));
    rr_buf_printf(&b, ", \"rel_level\": %ld, \"complete\": %s, \"num_queries\": %d, \"run_only_queries\": %d",
                  o->rel_level, o->complete ? "true" : "false", res->n_queries, res->n_run_only);
    rr_buf_puts(&b, ", \"metrics\": [");
    for (int j = 0; j < nm; j++) rr_buf_printf(&b, "%s\"%s\"", j ? ", " : "", m[j].name);
    rr_buf_puts(&b, "], \"mean\": {");
    for (int j = 0; j < nm; j++) rr_buf_printf(&b, "%s\"%s\": %.6f", j ? ", " : "", m[j].name, res->mean[j]);
    rr_buf_puts(&b, "}, \"per_query\": {");
    for (int i = 0; i < res->n_queries; i++) {
        rr_buf_puts(&b, i ? ",\n  " : "\n  ");
        rr_buf_json_str(&b, res->qids[i], strlen(res->qids[i]));
        rr_buf_puts(&b, ": {");
        for (int j = 0; j < nm; j++)
            rr_buf_printf(&b, "%s\"%s\": %.6f", j ? ", " : "", m[j].name,
                          res->values[(size_t)i * (size_t)nm + (size_t)j]);
        rr_buf_puts(&b, "}");
    }
    rr_buf_puts(&b, "}}\n");
    if (b.oom) {
        rr_buf_free(&b);
        return cli_error("out of memory writing JSON");
    }
    FILE *f = strcmp(path, "-") ? fopen(path, "w") : stdout;
    if (!f) {
        rr_buf_free(&b);
        return cli_error("%s: cannot write: %s", path, strerror(errno));
    }
    bool ok = fwrite(b.data, 1, b.len, f) == b.len;
    if (f != stdout) ok = (fclose(f) == 0) && ok;
    else ok = (fflush(f) == 0) && ok;
    rr_buf_free(&b);
    return ok ? 0 : cli_error("%s: write failed", path);
}

/* ------------------------------------------------------------------ command */

static int parse_double(const char *flag, const char *s, double lo, double hi, double *out) {
    char *end;
    double v = s ? strtod(s, &end) : 0;
    if (!s || !*s || *end || !(v >= lo && v <= hi)) {
        cli_error("%s expects a number in [%g, %g], got '%s'", flag, lo, hi, s ? s : "");
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_args(int argc, char **argv, eval_opts *o) {
    *o = (eval_opts){.rel_level = 1, .k1 = 0.9, .b = 0.4, .precision = rr_model_default_params().precision,
                     .retries = 8, .api_key = getenv("RERANK_API_KEY")};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define TAKE(dst)                                                                                  \
    do {                                                                                           \
        if (!v) return cli_error("%s needs a value", a), -1;                                      \
        dst = v;                                                                                   \
        i++;                                                                                       \
    } while (0)
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            eval_usage(stdout);
            return 1;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) TAKE(o->model);
        else if (!strcmp(a, "--data")) TAKE(o->data);
        else if (!strcmp(a, "--server")) TAKE(o->server);
        else if (!strcmp(a, "--api-key")) TAKE(o->api_key);
        else if (!strcmp(a, "--concurrency")) {
            if (cli_parse_int(a, v, 1, 4096, &o->concurrency)) return -1;
            i++;
        } else if (!strcmp(a, "--retries")) {
            if (cli_parse_int(a, v, 0, 1000, &o->retries)) return -1;
            i++;
        }
        else if (!strcmp(a, "--run")) TAKE(o->run);
        else if (!strcmp(a, "--qrels")) TAKE(o->qrels);
        else if (!strcmp(a, "--output-run")) TAKE(o->output_run);
        else if (!strcmp(a, "--json")) TAKE(o->json);
        else if (!strcmp(a, "--metrics")) TAKE(o->metrics);
        else if (!strcmp(a, "--task")) TAKE(o->task);
        else if (!strcmp(a, "--bm25")) {
            if (cli_parse_int(a, v, 1, 100000000, &o->bm25_k)) return -1;
            i++;
        } else if (!strcmp(a, "--top-k")) {
            if (cli_parse_int(a, v, 1, 100000000, &o->top_k)) return -1;
            i++;
        } else if (!strcmp(a, "-l")) {
            if (cli_parse_int(a, v, -1000000, 1000000, &o->rel_level)) return -1;
            i++;
        } else if (!strcmp(a, "--k1")) {
            if (parse_double(a, v, 0, 100, &o->k1)) return -1;
            i++;
        } else if (!strcmp(a, "--b")) {
            if (parse_double(a, v, 0, 1, &o->b)) return -1;
            i++;
        } else if (!strcmp(a, "--precision")) {
            if (!v || cli_parse_precision(v, &o->precision))
                return cli_error("--precision expects fp32, bf16, int8 or auto"), -1;
            i++;
        } else if (!strcmp(a, "--threads")) {
            if (cli_parse_int(a, v, 0, 1024, &o->threads)) return -1;
            i++;
        } else if (!strcmp(a, "--max-length")) {
            if (cli_parse_int(a, v, 1, 1 << 20, &o->max_length)) return -1;
            i++;
        } else if (!strcmp(a, "--batch-tokens")) {
            if (cli_parse_int(a, v, 1, 1 << 24, &o->batch_tokens)) return -1;
            i++;
        } else if (!strcmp(a, "--template")) {
            int t = rr_template_parse(v);
            if (!v || t < 0 || t == RR_TEMPLATE_NONE)
                return cli_error("--template expects qwen3-reranker, mxbai-rerank-v2 or auto"), -1;
            o->prompt = (rr_template)t;
            i++;
        } else if (!strcmp(a, "--instruction")) {
            if (!v) return cli_error("%s needs a value", a), -1;
            o->instruction = v;
            i++;
        } else if (!strcmp(a, "-c")) o->complete = 1;
        else if (!strcmp(a, "-q") || !strcmp(a, "--per-query")) o->per_query = 1;
        else return cli_error("eval: unknown option '%s' (see rerank eval --help)", a), -1;
#undef TAKE
    }
    if (!o->data && !(o->run && o->qrels))
        return cli_error("eval: give --data PATH, or --run FILE with --qrels FILE (see rerank eval --help)"), -1;
    if ((o->model || o->server) && !o->data)
        return cli_error("eval: %s needs --data (the query and document texts to rerank)", o->server ? "--server" : "-m"),
               -1;
    if ((o->model || o->server) && !o->top_k) o->top_k = 100;
    if (o->server && (o->max_length || o->batch_tokens || o->threads))
        return cli_error("eval: --max-length, --batch-tokens and --threads are the server's settings: not with --server"),
               -1;
    if (o->run && o->bm25_k) return cli_error("eval: --run and --bm25 are alternatives; give one"), -1;
    if (o->bm25_k && !o->data) return cli_error("eval: --bm25 needs --data (the documents to index)"), -1;
    if (o->task && strcmp(o->task, "beir") && strcmp(o->task, "tools") && strcmp(o->task, "sql") &&
        strcmp(o->task, "code"))
        return cli_error("eval: --task must be beir, tools, sql or code, not '%s'", o->task), -1;
    return 0;
}

static const char *default_metrics(const eval_opts *o, bool candidate_lists) {
    if (o->task && (!strcmp(o->task, "tools") || !strcmp(o->task, "sql"))) return "recall@3,mrr@10,ndcg@10";
    if (o->task && !strcmp(o->task, "code")) return "mrr@10,recall@3,ndcg@10";
    if (candidate_lists && !o->task) return "recall@3,mrr@10,ndcg@10";
    return "ndcg@10,recall@10,mrr@10,map";
}

int cmd_eval(int argc, char **argv) {
    eval_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc) return rc > 0 ? 0 : 2;

    rr_eval_data data = {0};
    rr_eval_qrels file_qrels = {0};
    rr_eval_run run = {0}, reranked = {0}; /* reranked borrows docnos from run */
    const rr_eval_run *final = &run;
    rr_eval_result res = {0};
    rr_model *model = NULL;
    rr_ctx *ctx = NULL;
    const rr_eval_qrels *qrels;
    char stage[600];

    if (o.data) {
        double t0 = rr_now();
        if (rr_eval_data_load(o.data, o.qrels, &data) != RR_OK) {
            rc = status_error(NULL);
            goto done;
        }
        qrels = &data.qrels;
        fprintf(stderr, "eval: %s: %d queries (%d judged), %d documents%s, loaded in %.2f s\n", o.data, data.n_queries,
                data.qrels.n_queries, data.n_docs, data.cand_off ? " in candidate lists" : "", rr_now() - t0);
    } else {
        if (rr_eval_qrels_load(o.qrels, &file_qrels) != RR_OK) {
            rc = status_error(NULL);
            goto done;
        }
        qrels = &file_qrels;
    }
    if (qrels->n_queries == 0) {
        rc = cli_error("eval: no judgments in %s", o.qrels ? o.qrels : o.data);
        goto done;
    }

    rr_eval_metric metrics[RR_EVAL_MAX_METRICS];
    int nm;
    if (rr_eval_metrics_parse(o.metrics ? o.metrics : default_metrics(&o, data.cand_off != NULL), metrics, &nm) !=
        RR_OK) {
        rc = cli_error("%s", rr_errmsg());
        goto done;
    }
    if (o.model && !o.server && (rc = load_model(&o, &model, &ctx))) goto done; /* fail before a long first stage */

    if (o.run) {
        if (rr_eval_run_load(o.run, &run) != RR_OK) {
            rc = status_error(NULL);
            goto done;
        }
        snprintf(stage, sizeof(stage), "run:%s", o.run);
    } else if (o.bm25_k) {
        rc = first_stage_bm25(&data, &o, &run);
        if (rc) goto done;
        snprintf(stage, sizeof(stage), "bm25:%ld", o.bm25_k);
    } else if (data.cand_off) {
        rc = first_stage_given(&data, &run);
        if (rc) goto done;
        snprintf(stage, sizeof(stage), "candidates");
    } else {
        rc = cli_error("eval: %s is a BEIR folder: give a first stage with --run FILE or --bm25 K", o.data);
        goto done;
    }

    if (o.top_k) rr_eval_run_truncate(&run, (int)o.top_k);

    if (o.model || o.server) {
        /* The first stage's numbers, for comparison, then the reranked run replaces it. */
        if (rr_eval_evaluate(qrels, &run, metrics, nm, (int)o.rel_level, o.complete, &res) != RR_OK) {
            rc = status_error(NULL);
            goto done;
        }
        fprintf(stderr, "eval: first stage (%s, top %ld):", stage, o.top_k);
        for (int j = 0; j < nm; j++) fprintf(stderr, " %s %.4f", metrics[j].name, res.mean[j]);
        fprintf(stderr, " over %d queries\n", res.n_queries);
        rr_eval_result_free(&res);
        rc = o.server ? rerank_remote(&data, &o, &run, &reranked) : rerank(&data, &o, ctx, &run, &reranked);
        if (rc) goto done;
        final = &reranked;
    }

    if (rr_eval_evaluate(qrels, final, metrics, nm, (int)o.rel_level, o.complete, &res) != RR_OK) {
        rc = status_error(NULL);
        goto done;
    }
    if (res.n_run_only)
        fprintf(stderr, "eval: %d run quer%s without judgments ignored (as trec_eval does)\n", res.n_run_only,
                res.n_run_only == 1 ? "y" : "ies");
    if (res.n_missing)
        fprintf(stderr, "eval: %d judged quer%s without results counted as 0 (-c)\n", res.n_missing,
                res.n_missing == 1 ? "y" : "ies");
    if (!o.complete && res.n_queries < qrels->n_queries)
        fprintf(stderr,
                "eval: %d judged quer%s without results not averaged (trec_eval semantics; -c counts them as 0)\n",
                qrels->n_queries - res.n_queries, qrels->n_queries - res.n_queries == 1 ? "y" : "ies");
    if (res.n_queries == 0) {
        rc = cli_error("eval: no query is both judged and ranked (do the query ids of run and qrels match?)");
        goto done;
    }
    if (!o.json || strcmp(o.json, "-")) { /* JSON on stdout replaces the table */
        print_table(&res, metrics, nm, o.per_query);
        fflush(stdout);
    }
    if (o.json && (rc = write_json(o.json, &o, stage, &res, metrics, nm))) goto done;
    if (o.output_run &&
        rr_eval_run_write(final, o.output_run, o.model || o.server ? "rerank" : o.bm25_k ? "bm25" : o.run ? "run" : "candidates") !=
            RR_OK)
        rc = status_error(NULL);
done:
    rr_eval_result_free(&res);
    rr_eval_run_free(&reranked);
    rr_eval_run_free(&run);
    rr_ctx_free(ctx);
    rr_model_free(model);
    rr_eval_qrels_free(&file_qrels);
    rr_eval_data_free(&data);
    return rc;
}

/*
 * cmd_rank.c -- `rerank rank`: rank documents for one query, printed in Jina's response shape.
 *
 * Documents come as JSONL (a JSON string or {"text": ...} per line) from a file or stdin; the
 * result is one JSON object: {"model", "usage": {"total_tokens", "prompt_tokens"}, "results":
 * [{"index", "relevance_score", "document": {"text"}}]}, best first. Long documents are windowed by
 * the library (rr_rank), or truncated with --truncate / capped with --max-doc-tokens, never rejected
 * for length. With --server URL the documents are ranked by a Jina / Cohere /v1/rerank server (a
 * `rerank serve` pool, or another provider) instead of a local model (rr_remote_rank).
 */
#include "cli/cli.h"
#include "rerank_util.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void usage(FILE *f) {
    fputs("usage: rerank rank [-m MODEL] -q QUERY [--documents FILE|-] [--top-n N] [--max-length N]\n"
          "                   [--max-query-length N] [--overlap N] [--windows | --truncate [right|left]]\n"
          "                   [--max-doc-tokens N] [--max-windows N]\n"
          "                   [--precision fp32|bf16|int8|auto] [--raw] [--no-documents] [--threads N]\n"
          "                   [--batch-tokens N] [--max-line-bytes N] [--template qwen3-reranker|mxbai-rerank-v2]\n"
          "                   [--instruction TEXT]\n"
          "       rerank rank --server URL [-m NAME] -q QUERY [--documents FILE|-] [--top-n N] [--raw]\n"
          "                   [--max-doc-tokens N] [--max-windows N] [--api-key KEY] [--retries N] [--no-documents]\n\n"
          "Ranks the documents of FILE (default: stdin), one per line as a JSON string or {\"text\": ...},\n"
          "for QUERY, and prints {\"model\", \"usage\", \"results\": [{\"index\", \"relevance_score\", \"document\"}]}.\n"
          "Documents longer than the model's window are scored by their best overlapping window, or with\n"
          "--truncate cut to one window: their start (right, the default) or their end (left), as TEI's\n"
          "truncate/truncation_direction. --max-doc-tokens N first cuts every document to N of its own tokens\n"
          "(Cohere's max_tokens_per_doc; the end is kept with --truncate left); --max-windows N keeps a long\n"
          "document's first N windows (Cohere v1's max_chunks_per_doc). A document line longer than\n"
          "--max-line-bytes (default 8 MiB) is an error, as is a line that is not strict JSON or not UTF-8.\n"
          "Decoder rerankers (Qwen3-Reranker, mxbai-rerank-v2) get their prompt, chosen by --template, else the\n"
          "model card in the folder, else the architecture; --instruction replaces the prompt's default task\n"
          "instruction (encoders ignore it, with a note on stderr). Their long documents are cut as the\n"
          "reference code cuts them (the prompt's body from the right) unless --windows or --truncate asks for\n"
          "windows or one window over the document's tokens, the rest of the prompt kept whole.\n"
          "MODEL is a folder or a Hugging Face repo id (default " RR_DEFAULT_MODEL ").\n"
          "--server URL scores through a server speaking the Jina / Cohere POST /v1/rerank shape instead\n"
          "(URL: http://host:port, or a full URL ending in rerank); -m is then the request's model name,\n"
          "--api-key (default $RERANK_API_KEY) its bearer token, and 429/502/503/504 answers and\n"
          "connection errors are retried with backoff up to --retries times (default 8). Windowing is the\n"
          "server's: --max-length, --max-query-length, --overlap, --windows and --truncate do not apply.\n",
          f);
}

typedef struct docs {
    rr_text *v;
    int n, cap;
} docs;

static void docs_free(docs *d) {
    for (int i = 0; i < d->n; i++) rr_free((char *)d->v[i].text);
    rr_free(d->v);
}

/* Reads one document per line: a JSON string or an object with a string "text". A line is never
 * held in memory past max_line bytes. */
static int read_docs(FILE *f, const char *name, size_t max_line, docs *d) {
    rr_buf line = {0};
    long lineno = 0;
    int rc = 0, r;
    while (!rc && (r = cli_read_line(f, &line, max_line)) != 0) {
        lineno++;
        if (r < 0) {
            rc = cli_error("%s:%ld: read error or out of memory", name, lineno);
            break;
        }
        if (r == 2) {
            rc = cli_error("%s:%ld: line longer than --max-line-bytes %zu", name, lineno, max_line);
            break;
        }
        if (line.len == 0) {
            rc = cli_error("%s:%ld: empty line (an empty document is \"\")", name, lineno);
            break;
        }
        cJSON *j = NULL;
        char err[320];
        if (cli_json_line(line.data, line.len, &j, err, sizeof err)) {
            rc = cli_error("%s:%ld: %s", name, lineno, err);
            break;
        }
        const cJSON *t = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "text") : j;
        if (!cJSON_IsString(t)) {
            rc = cli_error("%s:%ld: expected a JSON string or an object with a string \"text\"", name, lineno);
        } else {
            if (d->n == d->cap) {
                int nc = d->cap ? d->cap * 2 : 64;
                rr_text *v = rr_realloc(d->v, (size_t)nc * sizeof *v);
                if (!v) rc = cli_error("out of memory");
                else d->v = v, d->cap = nc;
            }
            char *s = rc ? NULL : rr_strdup(t->valuestring);
            if (!rc && !s) rc = cli_error("out of memory");
            if (!rc) d->v[d->n++] = (rr_text){s, strlen(s)};
        }
        cJSON_Delete(j);
    }
    rr_buf_free(&line);
    return rc;
}

static int print_results(const char *model, const docs *d, const rr_rank_result *res, int n, const rr_usage *u,
                         int with_docs) {
    rr_buf b = {0};
    rr_buf_puts(&b, "{\"model\": ");
    rr_buf_json_str(&b, model, strlen(model));
    rr_buf_printf(&b, ", \"usage\": {\"total_tokens\": %ld, \"prompt_tokens\": %ld}, \"results\": [", u->total_tokens,
                  u->total_tokens);
    for (int i = 0; i < n; i++) {
        rr_buf_printf(&b, "%s\n  {\"index\": %d, \"relevance_score\": ", i ? "," : "", res[i].index);
        rr_buf_float(&b, res[i].score);
        if (with_docs) {
            rr_buf_puts(&b, ", \"document\": {\"text\": ");
            rr_buf_json_str(&b, d->v[res[i].index].text, d->v[res[i].index].len);
            rr_buf_puts(&b, "}");
        }
        rr_buf_puts(&b, "}");
    }
    rr_buf_puts(&b, n ? "\n]}\n" : "]}\n");
    int rc = b.oom ? cli_error("out of memory") : 0;
    if (!rc && fwrite(b.data, 1, b.len, stdout) != b.len) rc = cli_error("write failed");
    rr_buf_free(&b);
    return rc;
}

int cmd_rank(int argc, char **argv) {
    const char *query = NULL, *docs_path = "-";
    bool with_docs = true;
    rr_rank_params rp = rr_rank_default_params();
    const char *server = NULL, *api_key = getenv("RERANK_API_KEY");
    int retries = 8;
    const char *instruction = NULL;
    size_t max_line = CLI_MAX_LINE_BYTES;
    cli_model_opts mo;
    cli_model_opts_init(&mo, rr_model_default_params().precision);
    const cli_flag flags[] = {
        {"--query", "-q", CLI_FLAG_STR, 0, 0, &query},
        {"--documents", NULL, CLI_FLAG_STR, 0, 0, &docs_path},
        {"--top-n", NULL, CLI_FLAG_INT, 0, 1 << 30, &rp.top_n},
        {"--max-length", NULL, CLI_FLAG_INT, 1, 1 << 20, &rp.max_length},
        {"--max-query-length", NULL, CLI_FLAG_INT, 1, 1 << 20, &rp.max_query_length},
        {"--overlap", NULL, CLI_FLAG_INT, 0, 1 << 20, &rp.overlap},
        {"--max-doc-tokens", NULL, CLI_FLAG_INT, 1, INT_MAX, &rp.max_doc_tokens},
        {"--max-windows", NULL, CLI_FLAG_INT, 1, INT_MAX, &rp.max_windows},
        {"--raw", NULL, CLI_FLAG_TRUE, 0, 0, &rp.raw},
        {"--no-documents", NULL, CLI_FLAG_FALSE, 0, 0, &with_docs},
        {"--server", NULL, CLI_FLAG_STR, 0, 0, &server},
        {"--api-key", NULL, CLI_FLAG_STR, 0, 0, &api_key},
        {"--retries", NULL, CLI_FLAG_INT, 0, 1000, &retries},
        {"--instruction", NULL, CLI_FLAG_STR, 0, 0, &instruction},
        {"--max-line-bytes", NULL, CLI_FLAG_SIZE, 1, 1L << 30, &max_line},
    };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int k = cli_model_opt(&mo, argc, argv, &i);
        if (k == 0) k = cli_flags_parse(flags, sizeof flags / sizeof flags[0], argc, argv, &i);
        if (k < 0) return 1;
        if (k) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--windows")) {
            rp.long_doc = RR_LONG_DOC_WINDOW; /* the encoders' default; decoder rerankers need asking */
        } else if (!strcmp(a, "--truncate")) {
            /* the direction is optional: a following "right" or "left" is taken as it */
            rp.long_doc = RR_LONG_DOC_TRUNCATE_RIGHT;
            if (v && (!strcasecmp(v, "right") || !strcasecmp(v, "left"))) {
                if (!strcasecmp(v, "left")) rp.long_doc = RR_LONG_DOC_TRUNCATE_LEFT;
                i++;
            }
        } else {
            usage(stderr);
            return cli_error("unknown option '%s'", a);
        }
    }
    if (!query) {
        usage(stderr);
        return cli_error("-q QUERY is required");
    }

    rr_rank_params dp = rr_rank_default_params();
    if (server && (rp.max_length != dp.max_length || rp.max_query_length != dp.max_query_length ||
                   rp.overlap != dp.overlap || rp.long_doc != dp.long_doc))
        return cli_error("--max-length, --max-query-length, --overlap, --windows and --truncate are the server's settings: "
                         "not with --server");

    docs d = {0};
    FILE *f = strcmp(docs_path, "-") ? fopen(docs_path, "r") : stdin;
    if (!f) return cli_error("%s: cannot open documents file", docs_path);
    int rc = read_docs(f, strcmp(docs_path, "-") ? docs_path : "stdin", (size_t)max_line, &d);
    if (f != stdin) fclose(f);
    if (rc) {
        docs_free(&d);
        return rc;
    }

    rr_model *m = NULL;
    rr_ctx *ctx = NULL;
    rr_rank_result *res = rr_malloc((size_t)(d.n ? d.n : 1) * sizeof *res);
    if (!res) rc = cli_error("out of memory");
    if (!rc && server) {
        rr_remote_params xp = rr_remote_default_params();
        xp.url = server;
        xp.api_key = api_key;
        xp.model = mo.model;
        xp.raw = rp.raw;
        xp.top_n = rp.top_n;
        xp.max_doc_tokens = rp.max_doc_tokens;
        xp.max_windows = rp.max_windows;
        xp.max_retries = retries;
        rr_remote_query q = {.query = {query, strlen(query)}, .docs = d.v, .n_docs = d.n, .results = res};
        if (rr_remote_rank(&xp, &q, 1, NULL, NULL))
            rc = cli_error("%s", rr_errmsg());
        else {
            rr_usage u = {q.total_tokens};
            rc = print_results(mo.model ? mo.model : server, &d, res, q.n_results, &u, with_docs);
        }
        rr_free(res);
        docs_free(&d);
        return rc;
    }
    if (!rc) rc = cli_model_open(&mo, 1, &m, &ctx);
    if (!rc) {
        if (instruction) rp.instruction = (rr_text){instruction, strlen(instruction)};
        if (instruction) cli_note_instruction(m, "--instruction");
        rr_usage u = {0};
        int n_res = 0;
        if (rr_rank(ctx, (rr_text){query, strlen(query)}, d.v, d.n, &rp, res, &n_res, &u))
            rc = cli_error("%s", rr_errmsg());
        else
            rc = print_results(mo.model ? mo.model : RR_DEFAULT_MODEL, &d, res, n_res, &u, with_docs);
    }
    rr_ctx_free(ctx);
    rr_model_free(m);
    rr_free(res);
    docs_free(&d);
    return rc;
}

/*
 * cmd_score.c -- `rerank score`: JSONL in, one {"score": x} line out per input line, in order.
 *
 * An input line is either already tokenized, {"input_ids": [...], "token_type_ids": [...]} (special
 * tokens included, type ids optional), or text, {"query": "...", "document": "..."}. Lines are read
 * in blocks and each block is scored in one packed call, so the engine sees many sequences at once.
 * A bad line stops the command with its line number and a non-zero exit; the lines before it have
 * been answered.
 */
#include "cli/cli.h"
#include "rerank_util.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK_LINES 256
#define MAX_LINE_BYTES (64u << 20)

typedef struct item {
    int is_text;
    rr_seq seq;            /* ids path */
    int32_t *ids, *types;  /* owned */
    char *query, *doc;     /* text path, owned */
    char *instruction;     /* text path: decoder prompts' instruction, owned; NULL = --instruction */
} item;

static void usage(FILE *f) {
    fputs("usage: rerank score -m MODEL [--precision fp32|bf16|int8|auto] [--raw] [--max-length N] [--threads N]\n"
          "                    [--batch-tokens N] [--template qwen3-reranker|mxbai-rerank-v2] [--instruction TEXT]\n"
          "                    < pairs.jsonl\n\n"
          "Each stdin line is {\"input_ids\": [...], \"token_type_ids\": [...]} (special tokens included;\n"
          "token_type_ids optional) or {\"query\": \"...\", \"document\": \"...\"[, \"instruction\": \"...\"]}. Writes\n"
          "{\"score\": x} per line: the sigmoid of the logit, or the logit itself with --raw. For a decoder\n"
          "reranker the text becomes its prompt (instruction: the line's, else --instruction, else the\n"
          "template's default) and input_ids are a whole prompt, scored at its last token (raw = l_yes - l_no,\n"
          "or l(\"1\") - l(\"0\") for mxbai-rerank-v2).\n",
          f);
}

static void item_clear(item *it) {
    rr_free(it->ids);
    rr_free(it->types);
    rr_free(it->query);
    rr_free(it->doc);
    rr_free(it->instruction);
    memset(it, 0, sizeof *it);
}

static int parse_ids(const cJSON *arr, const char *key, long lineno, int32_t **out, int *n) {
    if (!cJSON_IsArray(arr)) return cli_error("line %ld: \"%s\" must be an array of integers", lineno, key);
    int len = cJSON_GetArraySize(arr);
    int32_t *v = rr_malloc((size_t)(len ? len : 1) * sizeof *v);
    if (!v) return cli_error("line %ld: out of memory", lineno);
    int i = 0;
    for (const cJSON *e = arr->child; e; e = e->next, i++) {
        if (!cJSON_IsNumber(e) || e->valuedouble != (double)(int32_t)e->valuedouble) {
            rr_free(v);
            return cli_error("line %ld: \"%s\"[%d] is not a 32-bit integer", lineno, key, i);
        }
        v[i] = (int32_t)e->valuedouble;
    }
    *out = v;
    *n = len;
    return 0;
}

static int parse_line(const char *line, size_t len, long lineno, item *it) {
    cJSON *j = NULL;
    if (rr_json_parse(line, len, "input", &j)) return cli_error("line %ld: %s", lineno, rr_errmsg());
    int rc = 0;
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(j, "input_ids");
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(j, "query");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "document");
    if (!cJSON_IsObject(j)) {
        rc = cli_error("line %ld: expected a JSON object", lineno);
    } else if (ids) {
        int n = 0, nt = 0;
        rc = parse_ids(ids, "input_ids", lineno, &it->ids, &n);
        const cJSON *tt = cJSON_GetObjectItemCaseSensitive(j, "token_type_ids");
        if (!rc && tt && !cJSON_IsNull(tt)) {
            rc = parse_ids(tt, "token_type_ids", lineno, &it->types, &nt);
            if (!rc && nt != n)
                rc = cli_error("line %ld: token_type_ids has %d entries, input_ids %d", lineno, nt, n);
        }
        it->seq.ids = it->ids;
        it->seq.type_ids = it->types;
        it->seq.len = n;
    } else if (q || d) {
        if (!cJSON_IsString(q) || !cJSON_IsString(d))
            rc = cli_error("line %ld: \"query\" and \"document\" must both be strings", lineno);
        else {
            it->is_text = 1;
            it->query = rr_strdup(q->valuestring);
            it->doc = rr_strdup(d->valuestring);
            if (!it->query || !it->doc) rc = cli_error("line %ld: out of memory", lineno);
            const cJSON *in = cJSON_GetObjectItemCaseSensitive(j, "instruction");
            if (!rc && in && !cJSON_IsNull(in)) {
                if (!cJSON_IsString(in)) rc = cli_error("line %ld: \"instruction\" must be a string", lineno);
                else if (!(it->instruction = rr_strdup(in->valuestring))) rc = cli_error("line %ld: out of memory", lineno);
            }
        }
    } else {
        rc = cli_error("line %ld: expected \"input_ids\" or \"query\" and \"document\"", lineno);
    }
    cJSON_Delete(j);
    return rc;
}

/* Scores block[0..n) (lines first_line...) and prints the results. */
static int score_block(const rr_model *m, rr_ctx *ctx, item *block, int n, long first_line, int raw, int max_length,
                       const char *instruction, float *out) {
    /* runs of the same kind keep the packed call as large as possible */
    int i = 0;
    while (i < n) {
        int j = i;
        while (j < n && block[j].is_text == block[i].is_text) j++;
        if (block[i].is_text) {
            rr_text *qs = rr_malloc((size_t)(j - i) * sizeof *qs), *ds = rr_malloc((size_t)(j - i) * sizeof *ds);
            rr_text *is = rr_malloc((size_t)(j - i) * sizeof *is);
            if (!qs || !ds || !is) {
                rr_free(qs);
                rr_free(ds);
                rr_free(is);
                return cli_error("lines %ld-%ld: out of memory", first_line + i, first_line + j - 1);
            }
            rr_status s = RR_OK;
            for (int k = i; k < j && !s; k++) {
                const char *in = block[k].instruction ? block[k].instruction : instruction;
                qs[k - i] = (rr_text){block[k].query, strlen(block[k].query)};
                ds[k - i] = (rr_text){block[k].doc, strlen(block[k].doc)};
                is[k - i] = (rr_text){in, in ? strlen(in) : 0};
            }
            rr_score_params sp = rr_score_default_params();
            sp.max_length = max_length;
            sp.raw = true; /* the sigmoid is taken when printing, as for token-id lines */
            if (!s) s = rr_score_pairs_instructed(ctx, qs, ds, is, j - i, &sp, out + i, NULL);
            rr_free(qs);
            rr_free(ds);
            rr_free(is);
            if (s) return cli_error("lines %ld-%ld: %s", first_line + i, first_line + j - 1, rr_errmsg());
        } else {
            for (int k = i; k < j; k++) {
                rr_seq sq = block[k].seq;
                if (max_length > 0 && sq.len > max_length)
                    return cli_error("line %ld: %d tokens, more than --max-length %d", first_line + k, sq.len,
                                     max_length);
                rr_status s = rr_model_check_seq(m, &sq);
                if (s) return cli_error("line %ld: %s", first_line + k, rr_errmsg());
            }
            rr_seq *seqs = rr_malloc((size_t)(j - i) * sizeof *seqs);
            if (!seqs) return cli_error("out of memory");
            for (int k = i; k < j; k++) seqs[k - i] = block[k].seq;
            rr_status s = rr_score_ids(ctx, seqs, j - i, out + i);
            rr_free(seqs);
            if (s) return cli_error("lines %ld-%ld: %s", first_line + i, first_line + j - 1, rr_errmsg());
        }
        i = j;
    }
    rr_buf b = {0};
    for (int k = 0; k < n; k++) {
        rr_buf_puts(&b, "{\"score\": ");
        rr_buf_float(&b, raw ? out[k] : rr_sigmoid(out[k]));
        rr_buf_puts(&b, "}\n");
    }
    int rc = b.oom ? cli_error("out of memory") : 0;
    if (!rc && b.len && fwrite(b.data, 1, b.len, stdout) != b.len) rc = cli_error("write failed");
    rr_buf_free(&b);
    fflush(stdout);
    return rc;
}

int cmd_score(int argc, char **argv) {
    cli_model_opts mo;
    cli_model_opts_init(&mo, rr_model_default_params().precision);
    int raw = 0;
    long max_length = 0;
    const char *instruction = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int k = cli_model_opt(&mo, argc, argv, &i);
        if (k < 0) return 1;
        if (k) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--raw")) {
            raw = 1;
        } else if (!strcmp(a, "--max-length")) {
            if (cli_parse_int(a, v, 1, 1 << 20, &max_length)) return 1;
            i++;
        } else if (!strcmp(a, "--instruction")) {
            if (!v) return cli_error("%s needs a value", a);
            instruction = v, i++;
        } else {
            usage(stderr);
            return cli_error("unknown option '%s'", a);
        }
    }
    if (!mo.model) {
        usage(stderr);
        return cli_error("-m MODEL is required");
    }
    rr_model *m = NULL;
    rr_ctx *ctx = NULL;
    if (cli_model_open(&mo, 1, &m, &ctx)) return 1;

    item *block = rr_calloc(BLOCK_LINES, sizeof *block);
    float *out = rr_malloc(BLOCK_LINES * sizeof *out);
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0, first = 1;
    int n = 0, rc = (!block || !out) ? cli_error("out of memory") : 0;
    ssize_t len;
    while (!rc && (len = getline(&line, &cap, stdin)) >= 0) {
        lineno++;
        if ((size_t)len > MAX_LINE_BYTES) {
            rc = cli_error("line %ld: longer than %u bytes", lineno, MAX_LINE_BYTES);
            break;
        }
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
        if (len == 0) {
            rc = cli_error("line %ld: empty line", lineno);
            break;
        }
        if (n == 0) first = lineno;
        rc = parse_line(line, (size_t)len, lineno, &block[n]);
        if (rc) break;
        if (++n == BLOCK_LINES) {
            rc = score_block(m, ctx, block, n, first, raw, (int)max_length, instruction, out);
            for (int k = 0; k < n; k++) item_clear(&block[k]);
            n = 0;
        }
    }
    if (!rc && n) rc = score_block(m, ctx, block, n, first, raw, (int)max_length, instruction, out);
    for (int k = 0; k < n && block; k++) item_clear(&block[k]);
    free(line);
    rr_free(block);
    rr_free(out);
    rr_ctx_free(ctx);
    rr_model_free(m);
    return rc;
}

/*
 * cmd_score.c -- `rerank score`: JSONL in, one {"score": x} line out per input line, in order.
 *
 * An input line is either already tokenized, {"input_ids": [...], "token_type_ids": [...]} (special
 * tokens included, type ids optional), or text, {"query": "...", "document": "..."}. Lines are read
 * in blocks and each block is scored in one packed call, so the engine sees many sequences at once.
 * A bad line stops the command: every line before it is scored and written first (so output line i
 * still answers input line i), then the bad line's number and reason go to stderr and the exit is
 * non-zero. Lines are held to the server's rules (strict JSON, nothing after the value, valid
 * UTF-8) and to --max-line-bytes.
 */
#include "cli/cli.h"
#include "rerank_util.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK_LINES 256

typedef struct item {
    int is_text;
    rr_seq seq;            /* ids path */
    int32_t *ids, *types;  /* owned */
    char *query, *doc;     /* text path, owned */
    char *instruction;     /* text path: decoder prompts' instruction, owned; NULL = --instruction */
} item;

static void usage(FILE *f) {
    fputs("usage: rerank score -m MODEL [--precision fp32|bf16|int8|auto] [--raw] [--max-length N] [--threads N]\n"
          "                    [--batch-tokens N] [--max-line-bytes N] [--template qwen3-reranker|mxbai-rerank-v2]\n"
          "                    [--instruction TEXT] < pairs.jsonl\n\n"
          "Each stdin line is {\"input_ids\": [...], \"token_type_ids\": [...]} (special tokens included;\n"
          "token_type_ids optional) or {\"query\": \"...\", \"document\": \"...\"[, \"instruction\": \"...\"]}. Writes\n"
          "{\"score\": x} per line: the sigmoid of the logit, or the logit itself with --raw. For a decoder\n"
          "reranker the text becomes its prompt (instruction: the line's, else --instruction, else the\n"
          "template's default) and input_ids are a whole prompt, scored at its last token (raw = l_yes - l_no,\n"
          "or l(\"1\") - l(\"0\") for mxbai-rerank-v2). A bad line (malformed or trailing JSON,\n"
          "invalid UTF-8, over --max-line-bytes, default 8 MiB) stops the command after every earlier line\n"
          "has been written; stderr names the line and the exit status is 1.\n",
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

static int parse_line(const rr_model *m, const char *line, size_t len, long lineno, int max_length, item *it) {
    cJSON *j = NULL;
    char err[320];
    if (cli_json_line(line, len, &j, err, sizeof err)) return cli_error("line %ld: %s", lineno, err);
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
        /* checked here, line by line, so a bad sequence stops the command before its block is scored */
        if (!rc && max_length > 0 && n > max_length)
            rc = cli_error("line %ld: %d tokens, more than --max-length %d", lineno, n, max_length);
        if (!rc && rr_model_check_seq(m, &it->seq)) rc = cli_error("line %ld: %s", lineno, rr_errmsg());
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

/* Scores items [i, j) of one kind (all text or all ids) into out[i..j). Out of memory here (not in the
 * library) is reported at once and returned as RR_ERR_NOMEM. */
static rr_status score_run(rr_ctx *ctx, const item *block, int i, int j, int max_length, const char *instruction,
                           float *out) {
    if (block[i].is_text) {
        rr_text *qs = rr_malloc((size_t)(j - i) * sizeof *qs), *ds = rr_malloc((size_t)(j - i) * sizeof *ds);
        rr_text *is = rr_malloc((size_t)(j - i) * sizeof *is);
        rr_status s = (!qs || !ds || !is) ? (cli_error("out of memory"), RR_ERR_NOMEM) : RR_OK;
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
        return s;
    }
    rr_seq *seqs = rr_malloc((size_t)(j - i) * sizeof *seqs);
    if (!seqs) return cli_error("out of memory"), RR_ERR_NOMEM;
    for (int k = i; k < j; k++) seqs[k - i] = block[k].seq;
    rr_status s = rr_score_ids(ctx, seqs, j - i, out + i);
    rr_free(seqs);
    return s;
}

static int write_scores(const float *out, int n, int raw) {
    rr_buf b = {0};
    for (int k = 0; k < n; k++) {
        rr_buf_puts(&b, "{\"score\": ");
        rr_buf_float(&b, raw ? out[k] : rr_sigmoid(out[k]));
        rr_buf_puts(&b, "}\n");
    }
    int rc = b.oom ? cli_error("out of memory") : 0;
    if (!rc && b.len && fwrite(b.data, 1, b.len, stdout) != b.len) rc = cli_error("write failed");
    rr_buf_free(&b);
    if (fflush(stdout) != 0 && !rc) rc = cli_error("write failed");
    return rc;
}

/* Scores block[0..n) (lines first_line...) and writes the results. When a packed call fails, its
 * lines are scored one by one so that every line before the failing one is still written. */
static int score_block(rr_ctx *ctx, item *block, int n, long first_line, int raw, int max_length,
                       const char *instruction, float *out) {
    /* runs of the same kind keep the packed call as large as possible */
    int i = 0;
    while (i < n) {
        int j = i;
        while (j < n && block[j].is_text == block[i].is_text) j++;
        rr_status s = score_run(ctx, block, i, j, max_length, instruction, out);
        if (s == RR_ERR_NOMEM) return cli_error("lines %ld-%ld: out of memory", first_line + i, first_line + j - 1);
        if (s) {
            for (int k = i; k < j; k++)
                if (score_run(ctx, block, k, k + 1, max_length, instruction, out)) {
                    int rc = write_scores(out, k, raw);
                    return rc ? rc : cli_error("line %ld: %s", first_line + k, rr_errmsg());
                }
        }
        i = j;
    }
    return write_scores(out, n, raw);
}

int cmd_score(int argc, char **argv) {
    cli_model_opts mo;
    cli_model_opts_init(&mo, rr_model_default_params().precision);
    int raw = 0;
    long max_length = 0, max_line = (long)CLI_MAX_LINE_BYTES;
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
        } else if (!strcmp(a, "--max-line-bytes")) {
            if (cli_parse_int(a, v, 1, 1L << 30, &max_line)) return 1;
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
    rr_model_info mi;
    rr_model_get_info(m, &mi);
    /* jina-reranker-v3 scores are cosines already: no sigmoid, as its reference */
    if (mi.family == RR_FAMILY_JINA_V3) raw = 1;

    item *block = rr_calloc(BLOCK_LINES, sizeof *block);
    float *out = rr_malloc(BLOCK_LINES * sizeof *out);
    rr_buf line = {0};
    long lineno = 0, first = 1;
    int n = 0, rc = (!block || !out) ? cli_error("out of memory") : 0, noted = 0;
    if (instruction) cli_note_instruction(m, "--instruction"), noted = 1;
    /* bad: the first bad line's exit status, reported after the lines before it are written */
    while (!rc) {
        int r = cli_read_line(stdin, &line, (size_t)max_line);
        if (r == 0) break;
        lineno++;
        int bad = 0;
        char why[400] = "";
        if (r < 0) {
            snprintf(why, sizeof why, "line %ld: read error or out of memory", lineno);
            bad = 1;
        } else if (r == 2) {
            snprintf(why, sizeof why, "line %ld: longer than --max-line-bytes %ld", lineno, max_line);
            bad = 1;
        } else if (line.len == 0) {
            snprintf(why, sizeof why, "line %ld: empty line", lineno);
            bad = 1;
        } else {
            if (n == 0) first = lineno;
            bad = parse_line(m, line.data, line.len, lineno, (int)max_length, &block[n]);
            if (!bad && block[n].instruction && !noted) cli_note_instruction(m, "\"instruction\""), noted = 1;
            if (!bad) n++;
            else item_clear(&block[n]); /* parse_line has printed why */
        }
        if (bad || n == BLOCK_LINES) {
            rc = n ? score_block(ctx, block, n, first, raw, (int)max_length, instruction, out) : 0;
            for (int k = 0; k < n; k++) item_clear(&block[k]);
            n = 0;
            if (bad && !rc) rc = why[0] ? cli_error("%s", why) : 1;
            else if (bad && why[0]) fprintf(stderr, "rerank: %s\n", why);
        }
    }
    if (!rc && n) rc = score_block(ctx, block, n, first, raw, (int)max_length, instruction, out);
    for (int k = 0; k < n && block; k++) item_clear(&block[k]);
    rr_buf_free(&line);
    rr_free(block);
    rr_free(out);
    rr_ctx_free(ctx);
    rr_model_free(m);
    return rc;
}

/*
 * cmd_tokenize.c -- `rerank tokenize`: JSON lines in, token ids out. Each input line is
 * {"text": "...", "text_pair": "..."} (text_pair optional); each output line is
 * {"ids": [...], "type_ids": [...], "tokens": [...]} with the special tokens of the model's
 * post-processor. Used by the tokenizer conformance suite and for debugging inputs.
 */
#include "cli/cli.h"
#include "rerank_util.h"
#include "rerank.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f, "usage: rerank tokenize -m DIR|tokenizer.json [--max-length N] [--truncation longest_first|only_first|only_second]\n"
               "                       [--no-special] [--bench TEXTFILE [--repeat N]]\n"
               "reads JSON lines {\"text\": ..., \"text_pair\": ...} on stdin, writes {\"ids\", \"type_ids\", \"tokens\"} lines\n"
               "--bench: encodes every line of TEXTFILE on one thread and prints the throughput\n");
}

/* Encodes each line of a text file (no truncation), timing only the encode calls. */
static int run_bench(const rr_tokenizer *t, const char *path, int repeat, const rr_encode_params *ep) {
    char *text;
    size_t len;
    if (rr_file_read(path, (size_t)1 << 31, &text, &len) != RR_OK) return cli_error("%s", rr_errmsg());
    rr_encoding enc = {0};
    long lines = 0, tokens = 0;
    double best = 1e30;
    for (int r = 0; r < repeat; r++) {
        lines = tokens = 0;
        double t0 = rr_now();
        for (size_t i = 0; i < len;) {
            const char *nl = memchr(text + i, '\n', len - i);
            size_t e = nl ? (size_t)(nl - text) : len;
            if (rr_tokenizer_encode(t, (rr_text){text + i, e - i}, NULL, ep, &enc) != RR_OK) {
                rr_free(text);
                rr_encoding_free(&enc);
                return cli_error("%s", rr_errmsg());
            }
            tokens += (long)enc.len;
            lines++;
            i = e + 1;
        }
        double dt = rr_now() - t0;
        if (dt < best) best = dt;
    }
    printf("{\"bytes\": %zu, \"lines\": %ld, \"tokens\": %ld, \"seconds\": %.4f, \"mb_per_s\": %.2f}\n", len, lines, tokens,
           best, (double)len / 1e6 / best);
    rr_free(text);
    rr_encoding_free(&enc);
    return 0;
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL;
    rr_encode_params ep = rr_encode_default_params();
    long max_length = ep.max_length;
    const char *bench = NULL;
    long repeat = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && i + 1 < argc) model = argv[++i];
        else if (!strcmp(a, "--max-length") && i + 1 < argc) {
            if (cli_parse_int("--max-length", argv[++i], 0, 1 << 30, &max_length)) return 2;
        } else if (!strcmp(a, "--truncation") && i + 1 < argc) {
            const char *s = argv[++i];
            if (!strcmp(s, "longest_first")) ep.strategy = RR_TRUNC_LONGEST_FIRST;
            else if (!strcmp(s, "only_first")) ep.strategy = RR_TRUNC_ONLY_FIRST;
            else if (!strcmp(s, "only_second")) ep.strategy = RR_TRUNC_ONLY_SECOND;
            else return cli_error("--truncation: unknown strategy '%s'", s), 2;
        } else if (!strcmp(a, "--bench") && i + 1 < argc) {
            bench = argv[++i];
        } else if (!strcmp(a, "--repeat") && i + 1 < argc) {
            if (cli_parse_int("--repeat", argv[++i], 1, 1000, &repeat)) return 2;
        } else if (!strcmp(a, "--no-special")) ep.add_special = false;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return cli_error("tokenize: unknown or incomplete option '%s'", a), 2;
        }
    }
    if (!model) {
        usage(stderr);
        return cli_error("tokenize: -m DIR is required"), 2;
    }
    ep.max_length = (int)max_length;
    rr_tokenizer *t;
    if (rr_tokenizer_load(model, &t) != RR_OK) return cli_error("%s", rr_errmsg());
    if (bench) {
        rr_encode_params bp = ep;
        bp.max_length = 0; /* the benchmark times whole lines */
        bp.strategy = RR_TRUNC_LONGEST_FIRST;
        int r = run_bench(t, bench, (int)repeat, &bp);
        rr_tokenizer_free(t);
        return r;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long lineno = 0;
    int rc = 0;
    rr_encoding enc = {0};
    rr_buf out = {0}, text = {0}, pair = {0};
    while ((n = getline(&line, &cap, stdin)) > 0) {
        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
        if (n == 0) continue;
        /* jsonl.c's scanner, not cJSON: it keeps NUL characters and maps lone surrogate escapes to
         * U+FFFD (as JavaScript and Python clients produce them) instead of rejecting the line */
        int ht = cli_json_get_string(line, (size_t)n, "text", &text);
        int hp = cli_json_get_string(line, (size_t)n, "text_pair", &pair);
        if (ht != 1 || hp < 0) {
            rc = cli_error("line %ld: invalid JSON or not {\"text\": string, \"text_pair\": string (optional)}", lineno);
            break;
        }
        rr_text a = {text.data, text.len}, b = {pair.data ? pair.data : "", pair.len};
        rr_status st = rr_tokenizer_encode(t, a, hp ? &b : NULL, &ep, &enc);
        if (st != RR_OK) {
            rc = cli_error("line %ld: %s", lineno, rr_errmsg());
            break;
        }
        out.len = 0;
        rr_buf_puts(&out, "{\"ids\": [");
        for (size_t i = 0; i < enc.len; i++) rr_buf_printf(&out, i ? ", %d" : "%d", enc.ids[i]);
        rr_buf_puts(&out, "], \"type_ids\": [");
        for (size_t i = 0; i < enc.len; i++) rr_buf_printf(&out, i ? ", %d" : "%d", enc.type_ids[i]);
        rr_buf_puts(&out, "], \"tokens\": [");
        for (size_t i = 0; i < enc.len; i++) {
            const char *p = rr_tokenizer_id_to_piece(t, enc.ids[i]);
            if (i) rr_buf_puts(&out, ", ");
            rr_buf_json_str(&out, p ? p : "", p ? strlen(p) : 0);
        }
        rr_buf_puts(&out, "]}\n");
        if (out.oom) {
            rc = cli_error("line %ld: out of memory", lineno);
            break;
        }
        fwrite(out.data, 1, out.len, stdout);
    }
    free(line);
    rr_buf_free(&out);
    rr_buf_free(&text);
    rr_buf_free(&pair);
    rr_encoding_free(&enc);
    rr_tokenizer_free(t);
    if (fflush(stdout) != 0 && !rc) rc = cli_error("tokenize: write error");
    return rc;
}

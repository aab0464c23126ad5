/*
 * model_opts.c -- command-line options: the ones every model-running command shares (-m,
 * --precision, --threads, --batch-tokens, --template), the one way they open a model (resolve the name, a
 * folder or a repo id pulled when missing; load; create a context), and the table-driven parser of
 * each command's other flags.
 */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

void cli_model_opts_init(cli_model_opts *o, rr_precision default_precision) {
    memset(o, 0, sizeof *o);
    o->precision = default_precision;
}

int cli_model_opt(cli_model_opts *o, int argc, char **argv, int *i) {
    const char *a = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
        if (!v) return cli_error("%s needs a model folder or repo id", a), -1;
        o->model = v;
    } else if (!strcmp(a, "--precision")) {
        if (!v || cli_parse_precision(v, &o->precision))
            return cli_error("--precision expects fp32, bf16, int8 or auto"), -1;
    } else if (!strcmp(a, "--threads")) {
        if (cli_parse_int(a, v, 0, 1024, &o->threads)) return -1;
    } else if (!strcmp(a, "--template")) {
        int t = rr_template_parse(v);
        if (!v || t < 0 || t == RR_TEMPLATE_NONE)
            return cli_error("--template expects qwen3-reranker, mxbai-rerank-v2 or auto"), -1;
        o->prompt = (rr_template)t;
    } else if (!strcmp(a, "--batch-tokens")) {
        if (cli_parse_int(a, v, 1, 1 << 24, &o->batch_tokens)) return -1;
    } else {
        return 0;
    }
    (*i)++;
    return 1;
}

int cli_flags_parse(const cli_flag *flags, size_t n, int argc, char **argv, int *i) {
    const char *a = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    for (size_t k = 0; k < n; k++) {
        const cli_flag *f = &flags[k];
        if (strcmp(a, f->name) && (!f->alias || strcmp(a, f->alias))) continue;
        long x = 0;
        switch (f->kind) {
        case CLI_FLAG_FALSE: *(bool *)f->dst = false; return 1;
        case CLI_FLAG_TRUE: *(bool *)f->dst = true; return 1;
        case CLI_FLAG_STR:
            if (!v) return cli_error("%s needs a value", a), -1;
            *(const char **)f->dst = v;
            break;
        case CLI_FLAG_INT:
        case CLI_FLAG_LONG:
        case CLI_FLAG_SIZE:
            if (cli_parse_int(a, v, f->lo, f->hi, &x)) return -1;
            if (f->kind == CLI_FLAG_INT) *(int *)f->dst = (int)x;
            else if (f->kind == CLI_FLAG_LONG) *(long *)f->dst = x;
            else *(size_t *)f->dst = (size_t)x;
            break;
        }
        (*i)++;
        return 1;
    }
    return 0;
}

int cli_model_open(const cli_model_opts *o, int load_tokenizer, rr_model **m, rr_ctx **ctx) {
    char dir[4096]; /* a folder, or the cached snapshot of a repo id (pulled if missing) */
    if (cli_model_dir(o->model, dir, sizeof dir)) return 1;
    rr_model_params mp = rr_model_default_params();
    mp.precision = o->precision;
    mp.n_threads = (int)o->threads;
    mp.load_tokenizer = load_tokenizer;
    mp.prompt = o->prompt;
    if (rr_model_load(dir, &mp, m)) return cli_error("%s", rr_errmsg());
    if (!ctx) return 0;
    rr_ctx_params cp = rr_ctx_default_params();
    if (o->batch_tokens) cp.max_batch_tokens = (int)o->batch_tokens;
    if (rr_ctx_new(*m, &cp, ctx)) {
        rr_model_free(*m);
        *m = NULL;
        return cli_error("%s", rr_errmsg());
    }
    return 0;
}

void cli_note_instruction(const rr_model *m, const char *what) {
    rr_model_info mi;
    rr_model_get_info(m, &mi);
    if (mi.prompt == RR_TEMPLATE_NONE)
        fprintf(stderr, "rerank: note: %s is ignored: %s is an encoder model, whose input (query, document) has "
                        "no instruction\n", what, rr_family_name(mi.family));
}

/*
 * main.c -- entry point of the `rerank` command: dispatches to one subcommand per file (cmd_*.c).
 * Only the CLI prints to the terminal and exits; the library reports through return codes.
 */
#include "cli/cli.h"
#include "rerank.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} command;

static const command g_commands[] = {
    {"score", cmd_score, "score JSONL pairs or token ids from stdin"},
    {"rank", cmd_rank, "rank documents (JSONL) for one query, Jina response shape"},
    {"tokenize", cmd_tokenize, "JSON lines of text (pairs) -> token ids, type ids and tokens"},
    {"pull", cmd_pull, "download a model from the Hugging Face hub into the cache"},
    {"serve", cmd_serve, "run the Jina / Cohere / TEI compatible HTTP reranking server"},
    {"eval", cmd_eval, "measure a ranking (run file, BM25 or reranker) with trec_eval's metrics"},
    {"bench", cmd_bench, "time the forward pass on a fixed workload (pairs/s, GFLOP/s, peak RSS)"},
    {NULL, NULL, NULL},
};

int cli_error(const char *fmt, ...) {
    va_list ap;
    fputs("rerank: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

int cli_parse_int(const char *flag, const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || !*s || *end || errno || v < lo || v > hi) {
        cli_error("%s expects an integer in [%ld, %ld], got '%s'", flag, lo, hi, s ? s : "");
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_precision(const char *s, rr_precision *out) {
    static const rr_precision all[] = {RR_PRECISION_AUTO, RR_PRECISION_FP32, RR_PRECISION_BF16, RR_PRECISION_INT8};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (!strcmp(s, rr_precision_name(all[i]))) {
            *out = all[i];
            return 0;
        }
    return -1;
}

static void usage(FILE *f) {
    fprintf(f, "rerank %s -- cross-encoder reranking engine\n\nusage: rerank COMMAND [options]\n\ncommands:\n",
            RR_VERSION);
    for (size_t i = 0; g_commands[i].name; i++)
        fprintf(f, "  %-10s %s\n", g_commands[i].name, g_commands[i].help);
    fprintf(f, "\n'rerank COMMAND --help' describes a command's options.\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("rerank %s\n", RR_VERSION);
        return 0;
    }
    for (size_t i = 0; g_commands[i].name; i++)
        if (!strcmp(argv[1], g_commands[i].name)) return g_commands[i].fn(argc - 1, argv + 1);
    cli_error("unknown command '%s'", argv[1]);
    usage(stderr);
    return 2;
}

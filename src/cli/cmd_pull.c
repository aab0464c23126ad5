/*
 * cmd_pull.c -- `rerank pull REPO_ID[@REV] [--revision REV] [--quiet]`: download a model from the
 * Hugging Face hub into the shared cache and print its snapshot folder. Also home of
 * cli_model_dir(), which every command's -m goes through.
 *
 * Progress goes to stderr: a redrawn bar when stderr is a terminal, one line per file otherwise
 * (logs stay readable), nothing with --quiet. The snapshot folder is the only thing on stdout, so
 * `dir=$(rerank pull ORG/NAME)` works.
 */
#include "cli/cli.h"
#include "rerank_hub.h"
#include "rerank_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

typedef struct progress {
    int tty;
    int quiet;
    int bar_open; /* a bar line is on screen without its newline */
    double t0;    /* start of the current file's transfer */
    char file[256];
} progress;

static int on_progress(void *user, rr_pull_event ev, const char *file, uint64_t done, uint64_t total) {
    progress *p = user;
    if (p->quiet) return 0;
    char a[32], b[32];
    if (strcmp(p->file, file)) {
        snprintf(p->file, sizeof p->file, "%s", file);
        p->t0 = rr_now();
    }
    if (ev == RR_PULL_EVENT_PROGRESS) {
        if (!p->tty) return 0;
        double dt = rr_now() - p->t0;
        rr_fmt_bytes(a, sizeof a, done);
        rr_fmt_bytes(b, sizeof b, total);
        char rate[32];
        rr_fmt_bytes(rate, sizeof rate, dt > 0 ? (uint64_t)((double)done / dt) : 0);
        int pct = total ? (int)(100.0 * (double)done / (double)total) : 0;
        char bar[31];
        int fill = total ? (int)(30.0 * (double)done / (double)total) : 0;
        for (int i = 0; i < 30; i++) bar[i] = i < fill ? '=' : ' ';
        bar[30] = 0;
        fprintf(stderr, "\r\033[K%-28.28s %3d%% [%s] %s / %s  %s/s", file, pct, bar, a, b, rate);
        p->bar_open = 1;
        return 0;
    }
    if (p->bar_open) fputs("\r\033[K", stderr);
    p->bar_open = 0;
    rr_fmt_bytes(a, sizeof a, done);
    switch (ev) {
    case RR_PULL_EVENT_CACHED: fprintf(stderr, "%s: cached (%s)\n", file, a); break;
    case RR_PULL_EVENT_DONE: fprintf(stderr, "%s: downloaded (%s)\n", file, a); break;
    case RR_PULL_EVENT_ABSENT: fprintf(stderr, "%s: not in the repository, skipped\n", file); break;
    default: break;
    }
    return 0;
}

/* rr_pull with progress on stderr (nothing when quiet); the message stays in rr_errmsg(). */
static rr_status pull_with_progress(const char *repo, const char *rev, int quiet, char *dir, size_t cap) {
    progress pr = {.tty = isatty(2), .quiet = quiet};
    rr_pull_params p = rr_pull_default_params();
    p.revision = rev;
    p.progress = on_progress;
    p.progress_user = &pr;
    rr_status st = rr_pull(repo, &p, dir, cap);
    if (pr.bar_open) fputc('\n', stderr);
    return st;
}

/* Splits "ORG/NAME@REV" into repo[cap] and *rev (pointing into repo, NULL without '@'). */
static int split_rev(const char *name, char *repo, size_t cap, const char **rev) {
    if (snprintf(repo, cap, "%s", name) >= (int)cap) return cli_error("'%.60s...' is too long for a repository id", name);
    char *at = strchr(repo, '@');
    *rev = NULL;
    if (at) *at = 0, *rev = at + 1;
    return 0;
}

int cli_model_dir(const char *name, char *dir, size_t cap) {
    rr_status st = rr_hub_resolve(name, 0, dir, cap);
    if (st == RR_OK) return 0;
    const char *off = getenv("HF_HUB_OFFLINE");
    int offline = off && (!strcmp(off, "1") || !strcasecmp(off, "true") || !strcasecmp(off, "yes") ||
                          !strcasecmp(off, "on"));
    if (st != RR_ERR_NOT_FOUND || offline) return cli_error("%s", rr_errmsg());
    /* a repo id that is not cached yet: fetch it, showing progress */
    char repo[512];
    const char *rev;
    if (split_rev(name && *name ? name : RR_DEFAULT_MODEL, repo, sizeof repo, &rev)) return 1;
    fprintf(stderr, "rerank: %s is not in the cache; downloading it\n", repo);
    st = pull_with_progress(repo, rev, 0, dir, cap);
    if (st == RR_ERR_NOT_FOUND && name && *name) return cli_error("no folder %s, and %s", name, rr_errmsg());
    return st == RR_OK ? 0 : cli_error("%s", rr_errmsg());
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: rerank pull REPO_ID[@REVISION] [--revision REV] [--quiet]\n"
            "\n"
            "Downloads a model (config, tokenizer and safetensors weights) from the Hugging Face hub into\n"
            "the shared cache and prints its snapshot folder. Files already there are reused, interrupted\n"
            "downloads resume.\n"
            "\n"
            "  --revision REV  branch, tag or commit (default main)\n"
            "  --quiet         no progress on stderr\n"
            "\n"
            "environment: HF_ENDPOINT (default https://huggingface.co), HF_TOKEN (gated or private repos),\n"
            "HF_HOME or HF_HUB_CACHE (cache location, default ~/.cache/huggingface/hub), HF_HUB_OFFLINE=1\n"
            "(use the cache only).\n");
}

int cmd_pull(int argc, char **argv) {
    const char *repo_arg = NULL, *rev = NULL;
    int quiet = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q")) {
            quiet = 1;
        } else if (!strcmp(argv[i], "--revision")) {
            if (++i >= argc) return cli_error("--revision needs a value");
            rev = argv[i];
        } else if (argv[i][0] == '-') {
            cli_error("unknown option '%s'", argv[i]);
            usage(stderr);
            return 2;
        } else if (!repo_arg) {
            repo_arg = argv[i];
        } else {
            return cli_error("pull takes one repository id, got '%s' and '%s'", repo_arg, argv[i]);
        }
    }
    if (!repo_arg) {
        usage(stderr);
        return 2;
    }
    char repo[512], dir[4096];
    const char *at_rev;
    if (split_rev(repo_arg, repo, sizeof repo, &at_rev)) return 1;
    if (at_rev && rev && strcmp(at_rev, rev))
        return cli_error("two revisions given: '%s' and --revision '%s'", at_rev, rev);
    if (!rev) rev = at_rev;
    if (pull_with_progress(repo, rev, quiet, dir, sizeof dir) != RR_OK) return cli_error("%s", rr_errmsg());
    printf("%s\n", dir);
    return 0;
}

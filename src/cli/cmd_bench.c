/*
 * cmd_bench.c -- `rerank bench`: throughput and latency of the engine on a fixed workload.
 *
 * Workloads follow ../shared/bench (the peers' scripts): W1 = one 16-token query with 100 documents,
 * exactly 256 tokens per pair; W2 = 100 pairs with lengths uniform in 32..512. The built-in ones are
 * generated here with a fixed seed and those shapes; for the peers' exact token ids pass their
 * workloads.json (`--workload FILE:w1`) or any JSONL of {"input_ids": [...]} lines. The whole set is
 * scored as one request per repetition (the engine packs it), and the median repetition is reported.
 */
#include "cli/cli.h"
#include "core/core.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

typedef struct workload {
    int n;
    rr_seq *seqs;
    int32_t *store;
    long tokens;
} workload;

static void usage(FILE *f) {
    fputs("usage: rerank bench [-m MODEL] [--workload w1|w2|FILE[:w1|:w2]] [--precision fp32|bf16|int8|auto]\n"
          "                    [--threads N] [--reps N] [--batch-tokens N] [--json]\n\n"
          "Scores a workload --reps times (after one warm-up) and prints pairs/s, tokens/s, the latency of\n"
          "the whole set (median), peak RSS and the kernel table in use. W1: 100 pairs of 256 tokens (one\n"
          "16-token query); W2: 100 pairs of 32..512 tokens. FILE: the peers' workloads.json (pick w1 or w2\n"
          "after a colon) or JSONL of {\"input_ids\": [...]} lines.\n",
          f);
}

static void workload_free(workload *w) {
    rr_free(w->seqs);
    rr_free(w->store);
    memset(w, 0, sizeof *w);
}

/* splitmix64: a fixed, portable stream for the built-in workloads */
static uint64_t next_rand(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int workload_alloc(workload *w, int n, long tokens) {
    w->n = n;
    w->seqs = rr_calloc((size_t)n, sizeof *w->seqs);
    w->store = rr_malloc((size_t)tokens * sizeof *w->store);
    return w->seqs && w->store ? 0 : cli_error("out of memory");
}

/* <s> q </s></s> d </s> with random ids in [5, vocab) (the peers use [5, 250000)) */
static int builtin(workload *w, int which, int vocab) {
    uint64_t s = 1234;
    int lens[100];
    long total = 0;
    for (int i = 0; i < 100; i++) {
        lens[i] = which == 1 ? 256 : 32 + (int)(next_rand(&s) % 481);
        total += lens[i];
    }
    if (workload_alloc(w, 100, total)) return 1;
    int hi = RR_MIN(vocab, 250000);
    int32_t q[16];
    for (int k = 0; k < 16; k++) q[k] = 5 + (int32_t)(next_rand(&s) % (uint64_t)(hi - 5));
    long off = 0;
    for (int i = 0; i < 100; i++) {
        int32_t *p = w->store + off;
        int L = lens[i], k = 0;
        p[k++] = 0;
        for (int j = 0; j < 16; j++) p[k++] = q[j];
        p[k++] = 2;
        p[k++] = 2;
        while (k < L - 1) p[k++] = 5 + (int32_t)(next_rand(&s) % (uint64_t)(hi - 5));
        p[k++] = 2;
        w->seqs[i] = (rr_seq){p, NULL, L};
        off += L;
    }
    w->tokens = total;
    return 0;
}

/* Appends the id arrays of a cJSON array of arrays (or of {"input_ids": [...]} objects). */
static int from_arrays(workload *w, const cJSON *arr, const char *name) {
    int n = cJSON_GetArraySize(arr);
    long total = 0;
    for (const cJSON *e = arr->child; e; e = e->next) {
        const cJSON *ids = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "input_ids") : e;
        if (!cJSON_IsArray(ids) || cJSON_GetArraySize(ids) == 0)
            return cli_error("%s: every entry must be a non-empty array of token ids", name);
        total += cJSON_GetArraySize(ids);
    }
    if (n == 0) return cli_error("%s: no sequences", name);
    if (workload_alloc(w, n, total)) return 1;
    long off = 0;
    int i = 0;
    for (const cJSON *e = arr->child; e; e = e->next, i++) {
        const cJSON *ids = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "input_ids") : e;
        int L = 0;
        for (const cJSON *v = ids->child; v; v = v->next) {
            if (!cJSON_IsNumber(v) || v->valuedouble != (double)(int32_t)v->valuedouble)
                return cli_error("%s: sequence %d: token ids must be 32-bit integers", name, i);
            w->store[off + L++] = (int32_t)v->valuedouble;
        }
        w->seqs[i] = (rr_seq){w->store + off, NULL, L};
        off += L;
    }
    w->tokens = total;
    return 0;
}

static int from_file(workload *w, const char *spec) {
    char path[4096];
    snprintf(path, sizeof path, "%s", spec);
    char *key = strrchr(path, ':');
    if (key && (!strcmp(key, ":w1") || !strcmp(key, ":w2"))) *key++ = 0;
    else key = NULL;
    char *text;
    size_t len;
    if (rr_file_read(path, 1u << 30, &text, &len)) return cli_error("%s", rr_errmsg());
    int rc = 0;
    cJSON *j = NULL;
    const char *first = text + strspn(text, " \t\r\n");
    if (*first == '{' && key) {
        if (rr_json_parse(text, len, path, &j)) rc = cli_error("%s", rr_errmsg());
        const cJSON *arr = rc ? NULL : cJSON_GetObjectItemCaseSensitive(j, key);
        if (!rc && !cJSON_IsArray(arr)) rc = cli_error("%s: no \"%s\" array", path, key);
        if (!rc) rc = from_arrays(w, arr, path);
    } else {
        /* JSONL: wrap the lines into one array */
        rr_buf b = {0};
        rr_buf_puts(&b, "[");
        int n = 0;
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
            if (!*line || *line == '\r') continue;
            if (n++) rr_buf_puts(&b, ",");
            rr_buf_puts(&b, line);
        }
        rr_buf_puts(&b, "]");
        if (b.oom) rc = cli_error("out of memory");
        if (!rc && rr_json_parse(b.data, b.len, path, &j)) rc = cli_error("%s", rr_errmsg());
        if (!rc) rc = from_arrays(w, j, path);
        rr_buf_free(&b);
    }
    cJSON_Delete(j);
    rr_free(text);
    return rc;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static const char *precision_name(rr_precision p) {
    switch (p) {
    case RR_PRECISION_FP32: return "fp32";
    case RR_PRECISION_BF16: return "bf16";
    case RR_PRECISION_INT8: return "int8";
    default: return "auto";
    }
}

int cmd_bench(int argc, char **argv) {
    const char *model = NULL, *wl = "w1";
    long threads = 0, reps = 3, batch_tokens = 0;
    int json = 0;
    rr_precision prec = RR_PRECISION_FP32;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!v) return cli_error("%s needs a value", a);
            model = v, i++;
        } else if (!strcmp(a, "--workload")) {
            if (!v) return cli_error("%s needs a value", a);
            wl = v, i++;
        } else if (!strcmp(a, "--precision")) {
            if (!v || cli_parse_precision(v, &prec)) return cli_error("--precision expects fp32, bf16, int8 or auto");
            i++;
        } else if (!strcmp(a, "--threads")) {
            if (cli_parse_int(a, v, 0, 1024, &threads)) return 1;
            i++;
        } else if (!strcmp(a, "--reps")) {
            if (cli_parse_int(a, v, 1, 1000, &reps)) return 1;
            i++;
        } else if (!strcmp(a, "--batch-tokens")) {
            if (cli_parse_int(a, v, 1, 1 << 24, &batch_tokens)) return 1;
            i++;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else {
            usage(stderr);
            return cli_error("unknown option '%s'", a);
        }
    }
    char model_dir[4096];
    if (cli_model_dir(model, model_dir, sizeof model_dir)) return 1;
    rr_model_params mp = rr_model_default_params();
    mp.precision = prec;
    mp.n_threads = (int)threads;
    mp.load_tokenizer = 0;
    rr_model *m = NULL;
    double t0 = rr_now();
    if (rr_model_load(model_dir, &mp, &m)) return cli_error("%s", rr_errmsg());
    double load_s = rr_now() - t0;
    rr_model_info info;
    rr_model_get_info(m, &info);

    workload w = {0};
    int rc = !strcmp(wl, "w1") ? builtin(&w, 1, info.vocab_size)
             : !strcmp(wl, "w2") ? builtin(&w, 2, info.vocab_size)
                                 : from_file(&w, wl);
    for (int i = 0; !rc && i < w.n; i++)
        if (rr_model_check_seq(m, &w.seqs[i])) rc = cli_error("%s: sequence %d: %s", wl, i, rr_errmsg());
    rr_ctx_params cp = rr_ctx_default_params();
    if (batch_tokens) cp.max_batch_tokens = (int)batch_tokens;
    rr_ctx *c = NULL;
    if (!rc && rr_ctx_new(m, &cp, &c)) rc = cli_error("%s", rr_errmsg());
    float *out = rc ? NULL : rr_malloc((size_t)w.n * sizeof *out);
    double *times = rc ? NULL : rr_malloc((size_t)reps * sizeof *times);
    if (!rc && (!out || !times)) rc = cli_error("out of memory");
    if (!rc && rr_score_ids(c, w.seqs, w.n, out)) rc = cli_error("%s", rr_errmsg()); /* warm-up */
    for (long r = 0; !rc && r < reps; r++) {
        double t = rr_now();
        if (rr_score_ids(c, w.seqs, w.n, out)) rc = cli_error("%s", rr_errmsg());
        times[r] = rr_now() - t;
    }
    if (!rc) {
        qsort(times, (size_t)reps, sizeof *times, cmp_double);
        double med = times[reps / 2];
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        double rss_mb = (double)ru.ru_maxrss / 1024.0;
        if (json) {
            printf("{\"workload\": \"%s\", \"pairs\": %d, \"tokens\": %ld, \"precision\": \"%s\", \"kernels\": \"%s\", "
                   "\"threads\": %ld, \"reps\": %ld, \"latency_s\": %.4f, \"pairs_per_s\": %.3f, \"tokens_per_s\": %.1f, "
                   "\"peak_rss_mb\": %.1f, \"load_s\": %.3f, \"first_logit\": %.6f}\n",
                   wl, w.n, w.tokens, precision_name(info.precision), info.kernels, threads, reps, med, w.n / med,
                   w.tokens / med, rss_mb, load_s, (double)out[0]);
        } else {
            printf("model        %s\n", model_dir);
            printf("workload     %s: %d pairs, %ld tokens\n", wl, w.n, w.tokens);
            printf("precision    %s   kernels %s   threads %ld\n", precision_name(info.precision), info.kernels,
                   threads);
            printf("latency      %.3f s for the whole set (median of %ld, min %.3f, max %.3f)\n", med, reps, times[0],
                   times[reps - 1]);
            printf("throughput   %.2f pairs/s, %.0f tokens/s\n", w.n / med, w.tokens / med);
            printf("peak RSS     %.1f MB   load %.3f s\n", rss_mb, load_s);
        }
    }
    rr_free(out);
    rr_free(times);
    rr_ctx_free(c);
    workload_free(&w);
    rr_model_free(m);
    return rc;
}

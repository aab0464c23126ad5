/*
 * cmd_bench.c -- `rerank bench`: times the forward pass on a fixed workload and prints pairs/s,
 * tokens/s, the latency of the whole batch, the achieved GFLOP/s, peak RSS and the kernel table.
 *
 *   rerank bench -m MODEL [--workload w1|w2|w3|q1|FILE] [--key NAME] [--precision P] [--threads N]
 *                [--repeat N] [--seconds S] [--batch-tokens N]
 *
 * --seconds S keeps repeating (at least --repeat runs) until S seconds of runs have passed: a
 * benchmark as long as a load test, for machines whose speed changes under sustained load.
 * Workloads (as ../shared/bench/xlmr_model.py defines them; the token ids are drawn here with a
 * fixed seed, only the lengths matter for speed): w1 = 1 query of 16 tokens + 100 documents, 256
 * tokens per pair; w2 = 100 pairs with lengths uniform in 32..512; w3 = 1 query of 16 tokens + 20
 * documents, 1024 tokens per pair (the full pair length of jina-reranker-v2, where attention is a
 * fifth of the work; capped at the model's maximum length). FILE is a JSON array of token-id
 * arrays, or an object of them (--key picks one, default "w1"), e.g. export_onnx.py's
 * workloads.json, so rerank runs on the same ids as the peers.
 * q1 (decoder rerankers, issue 17) = the reranker's prompt for 1 query + 20 documents of 256 tokens
 * each (random one-token words), timed as rr_score_pairs from the texts: prompt building and
 * tokenization included (about a millisecond of each run).
 */
#include "cli/cli.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t g_rng = 1234;
static uint32_t rnd(void) {
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(g_rng >> 33);
}

/* <s> q </s> </s> d </s> with XLM-R's specials (0, 2); ids in [5, vocab). */
static int32_t *make_pair(int len, const int32_t *q, int vocab) {
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)len);
    if (!ids) return NULL;
    int k = 0;
    ids[k++] = 0;
    for (int i = 0; i < 16; i++) ids[k++] = q[i];
    ids[k++] = 2, ids[k++] = 2;
    while (k < len - 1) ids[k++] = 5 + (int32_t)(rnd() % (uint32_t)(vocab - 5));
    ids[k] = 2;
    return ids;
}

static int load_file(const char *path, const char *key, rr_seq **out, int *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return cli_error("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)sz + 1);
    if (!text || fread(text, 1, (size_t)sz, f) != (size_t)sz) {
        fclose(f);
        free(text);
        return cli_error("cannot read %s", path);
    }
    fclose(f);
    text[sz] = 0;
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!root) return cli_error("%s: invalid JSON", path);
    cJSON *arr = cJSON_IsArray(root) ? root : cJSON_GetObjectItem(root, key);
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0) {
        cJSON_Delete(root);
        return cli_error("%s: expected an array of token-id arrays (or an object with key \"%s\")", path, key);
    }
    *n = cJSON_GetArraySize(arr);
    *out = calloc((size_t)*n, sizeof **out);
    int i = 0;
    for (cJSON *s = arr->child; s; s = s->next, i++) {
        int len = cJSON_GetArraySize(s);
        int32_t *ids = malloc(sizeof(int32_t) * (size_t)(len ? len : 1));
        int k = 0;
        for (cJSON *e = s->child; e; e = e->next) ids[k++] = (int32_t)e->valuedouble;
        (*out)[i] = (rr_seq){ids, NULL, len, NULL, 0};
    }
    cJSON_Delete(root);
    return 0;
}

/* Words that are one token each after a space in the Qwen vocabulary. */
static const char *const Q1_WORDS[] = {" the", " city", " river", " capital", " of", " and", " is", " a",
                                       " history", " people", " old", " new", " north", " south", " water",
                                       " long", " time", " first", " state", " world"};
#define Q1_DOCS 20
#define Q1_DOC_TOKENS 256

/* Q1's 20 documents, each Q1_DOC_TOKENS one-token words (the first without its space), into docs[]
 * (the texts are malloc'ed). 1 after printing an error when a word is not one token. */
static int q1_docs(const rr_tokenizer *t, rr_text *docs) {
    rr_encode_params ep = rr_encode_default_params();
    ep.add_special = false;
    rr_encoding e = {0};
    size_t nw = sizeof Q1_WORDS / sizeof Q1_WORDS[0];
    for (size_t i = 0; i < nw; i++)
        if (rr_tokenizer_encode(t, (rr_text){Q1_WORDS[i], strlen(Q1_WORDS[i])}, NULL, &ep, &e) || e.len != 1) {
            rr_encoding_free(&e);
            return cli_error("workload q1: '%s' is not one token with this tokenizer (q1 needs a Qwen tokenizer)",
                             Q1_WORDS[i]);
        }
    rr_encoding_free(&e);
    for (int d = 0; d < Q1_DOCS; d++) {
        char *text = malloc(Q1_DOC_TOKENS * 16), *at = text;
        if (!text) return cli_error("out of memory");
        for (int k = 0; k < Q1_DOC_TOKENS; k++) {
            const char *w = Q1_WORDS[rnd() % nw] + (k == 0);
            memcpy(at, w, strlen(w));
            at += strlen(w);
        }
        docs[d] = (rr_text){text, (size_t)(at - text)};
    }
    return 0;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void usage(FILE *f) {
    fputs("usage: rerank bench -m MODEL [--workload w1|w2|w3|q1|FILE] [--key NAME] [--precision fp32|bf16|int8|auto]\n"
          "                    [--threads N] [--repeat N] [--seconds S] [--batch-tokens N]\n",
          f);
}

int cmd_bench(int argc, char **argv) {
    const char *workload = "w1", *key = "w1";
    long repeat = 3, seconds = 0;
    cli_model_opts mo;
    cli_model_opts_init(&mo, rr_model_default_params().precision);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int k = cli_model_opt(&mo, argc, argv, &i);
        if (k < 0) return 1;
        if (k) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--workload")) {
            if (!v) return cli_error("--workload expects w1, w2, w3, q1 or a file");
            workload = v, i++;
        } else if (!strcmp(a, "--key")) {
            if (!v) return cli_error("--key expects a name");
            key = v, i++;
        } else if (!strcmp(a, "--repeat")) {
            if (cli_parse_int(a, v, 1, 1000, &repeat)) return 1;
            i++;
        } else if (!strcmp(a, "--seconds")) {
            if (cli_parse_int(a, v, 0, 86400, &seconds)) return 1;
            i++;
        } else {
            usage(stderr);
            return cli_error("unknown argument '%s'", a);
        }
    }
    rr_model *m = NULL;
    int q1 = !strcmp(workload, "q1");
    double t_load = now_s();
    if (cli_model_open(&mo, q1, &m, NULL)) return 1;
    t_load = now_s() - t_load;
    rr_model_info info;
    rr_model_get_info(m, &info);

    rr_seq *seqs = NULL;
    int n = 0;
    rr_text q1_query = {"What is the capital of China?", 29}, q1_q[Q1_DOCS], q1_d[Q1_DOCS] = {{0}};
    if (q1) {
        if (info.prompt != RR_TEMPLATE_QWEN3_RERANKER && info.prompt != RR_TEMPLATE_MXBAI_V2) {
            cli_error("workload q1 is the decoder rerankers' (Qwen3-Reranker, mxbai-rerank-v2): %s is %s", info.name,
                      rr_family_name(info.family));
            rr_model_free(m);
            return 1;
        }
        if (!rr_model_tokenizer(m) || q1_docs(rr_model_tokenizer(m), q1_d)) {
            if (!rr_model_tokenizer(m)) cli_error("workload q1 needs the model's tokenizer.json");
            for (int i = 0; i < Q1_DOCS; i++) free((void *)q1_d[i].text);
            rr_model_free(m);
            return 1;
        }
        for (int i = 0; i < Q1_DOCS; i++) q1_q[i] = q1_query;
        /* lengths (for tokens and FLOPs) from the prompts themselves: one untimed scoring */
        rr_ctx *c0 = NULL;
        float lg[Q1_DOCS];
        rr_score_params sp = rr_score_default_params();
        n = Q1_DOCS;
        seqs = calloc((size_t)n, sizeof *seqs);
        rr_status s0 = rr_ctx_new(m, NULL, &c0); /* one context for the 20 measuring calls */
        for (int i = 0; i < n && seqs && !s0; i++) {
            rr_usage u = {0};
            if (!(s0 = rr_score_pairs(c0, &q1_q[i], &q1_d[i], 1, &sp, lg, &u)))
                seqs[i] = (rr_seq){NULL, NULL, (int)u.total_tokens, NULL, 0};
        }
        rr_ctx_free(c0);
        if (s0) {
            for (int k = 0; k < Q1_DOCS; k++) free((void *)q1_d[k].text);
            free(seqs);
            rr_model_free(m);
            return cli_error("%s", rr_errmsg());
        }
    } else if (!strcmp(workload, "w1") || !strcmp(workload, "w2") || !strcmp(workload, "w3")) {
        n = workload[1] == '3' ? 20 : 100;
        seqs = calloc((size_t)n, sizeof *seqs);
        int32_t q[16];
        for (int i = 0; i < 16; i++) q[i] = 5 + (int32_t)(rnd() % (uint32_t)(info.vocab_size - 5));
        for (int i = 0; i < n; i++) {
            int len = workload[1] == '1' ? 256 : workload[1] == '3' ? 1024 : 32 + (int)(rnd() % 481);
            if (len > info.max_length) len = info.max_length;
            seqs[i] = (rr_seq){make_pair(len, q, info.vocab_size), NULL, len, NULL, 0};
        }
    } else if (load_file(workload, key, &seqs, &n)) {
        rr_model_free(m);
        return 1;
    }
    long tokens = 0;
    double flops = 0;
    int lmin = 1 << 30, lmax = 0;
    const double H = info.hidden, I = info.intermediate, L = info.n_layers;
    /* matrices of I x H in the FFN: up and down, or a gated up of 2I and down */
    const double ffn = info.family == RR_FAMILY_JINA_V1 || info.family == RR_FAMILY_MGTE ||
                               info.family == RR_FAMILY_MODERNBERT ? 3 : 2;
    for (int i = 0; i < n; i++) {
        double S = seqs[i].len;
        tokens += seqs[i].len;
        lmin = seqs[i].len < lmin ? seqs[i].len : lmin;
        lmax = seqs[i].len > lmax ? seqs[i].len : lmax;
        if (info.prompt == RR_TEMPLATE_NONE) {
            flops += L * (2 * S * (4 * H * H + ffn * H * I) + 4 * S * S * H); /* as xlmr_model.flops_per_pair */
        } else {
            /* decoder: Q|K|V and O over head_dim-wide heads, gate|up|down, causal scores and values */
            double A = (double)info.n_heads * info.head_dim, KV = (double)info.n_kv_heads * info.head_dim;
            flops += L * (2 * S * (H * (A + 2 * KV) + A * H + 3 * H * I) + 2 * S * S * A);
        }
    }
    rr_ctx_params cp = rr_ctx_default_params();
    if (mo.batch_tokens) cp.max_batch_tokens = (int)mo.batch_tokens;
    rr_ctx *c = NULL;
    float *logits = malloc(sizeof(float) * (size_t)n);
    int rc = 0;
    if (rr_ctx_new(m, &cp, &c) != RR_OK) {
        rc = cli_error("%s", rr_errmsg());
        goto done;
    }
    printf("model %s (%s): %d layers, hidden %d; precision %s; kernels %s; threads %ld; load %.2f s\n", info.name,
           rr_family_name(info.family), info.n_layers, info.hidden, rr_precision_name(info.precision),
           info.kernels, mo.threads, t_load);
    printf("workload %s: %d pairs, %ld tokens (%d..%d per pair)\n", workload, n, tokens, lmin, lmax);
    fflush(stdout);
    long cap = repeat, runs = 0;
    double *t = malloc(sizeof(double) * (size_t)cap), total = 0;
    if (!t) {
        rc = cli_error("out of memory");
        goto done;
    }
    while (runs < repeat || total < (double)seconds) {
        if (runs == cap) {
            double *g = realloc(t, sizeof(double) * (size_t)(cap * 2));
            if (!g) break; /* keep the runs so far */
            t = g, cap *= 2;
        }
        double t0 = now_s();
        rr_score_params sp = rr_score_default_params();
        if (q1 ? rr_score_pairs(c, q1_q, q1_d, n, &sp, logits, NULL) != RR_OK
               : rr_score_ids(c, seqs, n, logits) != RR_OK) {
            rc = cli_error("%s", rr_errmsg());
            free(t);
            goto done;
        }
        t[runs] = now_s() - t0;
        total += t[runs];
        printf("run %ld: %.3f s\n", runs + 1, t[runs]);
        fflush(stdout);
        runs++;
    }
    qsort(t, (size_t)runs, sizeof(double), cmp_d);
    double best = t[0], med = t[runs / 2];
    free(t);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("pairs/s %.2f  tokens/s %.0f  latency %.3f s for %d pairs  %.1f GFLOP/s  (best of %ld; median %.3f s; "
           "mean %.2f pairs/s)\n",
           n / best, tokens / best, best, n, flops / best / 1e9, runs, med, (double)n * (double)runs / total);
    printf("peak RSS %.0f MB\n", ru.ru_maxrss / 1024.0);
done:
    free(logits);
    rr_ctx_free(c);
    for (int i = 0; i < n; i++) free((void *)seqs[i].ids);
    for (int i = 0; i < Q1_DOCS; i++) free((void *)q1_d[i].text);
    free(seqs);
    rr_model_free(m);
    return rc;
}

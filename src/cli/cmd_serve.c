/*
 * cmd_serve.c -- `rerank serve`: loads a model and runs the Jina / Cohere / TEI compatible HTTP
 * server (src/server) until SIGTERM or SIGINT, then drains: every request already received is
 * answered before the process exits 0.
 *
 * The port is bound before the model is loaded (always: there is no reason to hide a loading
 * process from its supervisor), so /health answers 200 and /ready 503 while a large model maps;
 * the "listening on" line is printed once the model is loaded and /ready turns 200.
 *
 * Signals are blocked before any thread starts (so every thread inherits the mask) and taken
 * synchronously with sigwait on the main thread; no async-signal handler runs.
 */
#include "cli/cli.h"
#include "server/server.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fputs("usage: rerank serve -m MODEL [--host H] [--port P] [--api-key KEY] [--precision fp32|bf16|int8|auto]\n"
          "                    [--threads N] [--workers N] [--http-threads N] [--max-batch-tokens N]\n"
          "                    [--max-docs N] [--max-request-bytes N] [--max-request-tokens N] [--queue-depth N]\n"
          "                    [--max-length N] [--served-model-name NAME] [--drain-timeout S]\n"
          "                    [--log-format text|json] [--quiet]\n\n"
          "Serves POST /v1/rerank (Jina, Cohere v1), /v2/rerank (Cohere v2), /rerank (TEI with \"texts\", else\n"
          "Jina), GET /health (liveness), /ready (readiness), /info, /metrics, /v1/models, /openapi.json, /docs.\n"
          "Binds 127.0.0.1:8080 by default (--port 0 picks a free port; the address is printed on stderr). The\n"
          "port is bound before the model loads: meanwhile /health is 200, /ready and the rerank routes 503.\n\n"
          "  --api-key KEY          require \"Authorization: Bearer KEY\" (default: $RERANK_API_KEY; unset: any\n"
          "                         or no bearer token is accepted)\n"
          "  --precision P          fp32 (default, as `rerank rank`), bf16, int8, or auto (fastest on this CPU)\n"
          "  --threads N            threads of one forward pass (default: all cores)\n"
          "  --workers N            forward passes running at once, each with its own scratch (default 1)\n"
          "  --http-threads N       HTTP threads: parsing, tokenization, answers (default 4)\n"
          "  --max-batch-tokens N   token budget of one batch, shared across requests (default 8192)\n"
          "  --max-docs N           documents per request, more is a 413 (default 1000)\n"
          "  --max-request-bytes N  request body size, more is a 413 (default 2000000)\n"
          "  --max-request-tokens N tokens of one request after windowing, more is a 413 (default 1048576)\n"
          "  --queue-depth N        requests queued or running, more is a 429 + Retry-After (default 128)\n"
          "  --max-length N         longest (query, window) pair in tokens (default: the model's)\n"
          "  --served-model-name NAME  model name in answers and /info (default: the folder name;\n"
          "                         --model-name is the same flag)\n"
          "  --drain-timeout S      on SIGTERM, wait at most S seconds for requests in flight (default 120)\n"
          "  --log-format F         access log on stderr: text (default) or json, one object per line with\n"
          "                         time, method, route, status, documents, tokens, queue_ms, total_ms,\n"
          "                         request_id (X-Request-Id as sent, or generated)\n"
          "  --quiet                no access log line per request\n",
          f);
}

int cmd_serve(int argc, char **argv) {
    const char *model = NULL;
    rr_srv_params p = rr_srv_default_params();
    rr_precision prec = rr_model_default_params().precision; /* as `rerank rank`, so scores agree */
    long threads = 0, v = 0, drain_timeout = 120;
    p.api_key = getenv("RERANK_API_KEY");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED_VALUE                                                                                 \
    do {                                                                                           \
        if (!val) return cli_error("%s needs a value", a);                                         \
        i++;                                                                                       \
    } while (0)
#define INT_FLAG(lo, hi)                                                                           \
    do {                                                                                           \
        if (cli_parse_int(a, val, lo, hi, &v)) return 1;                                           \
        i++;                                                                                       \
    } while (0)
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            NEED_VALUE;
            model = val;
        } else if (!strcmp(a, "--host")) {
            NEED_VALUE;
            p.host = val;
        } else if (!strcmp(a, "--port") || !strcmp(a, "-p")) {
            INT_FLAG(0, 65535);
            p.port = (int)v;
        } else if (!strcmp(a, "--api-key")) {
            NEED_VALUE;
            p.api_key = val;
        } else if (!strcmp(a, "--precision")) {
            if (!val || cli_parse_precision(val, &prec)) return cli_error("--precision expects fp32, bf16, int8 or auto");
            i++;
        } else if (!strcmp(a, "--threads")) {
            INT_FLAG(0, 1024);
            threads = v;
        } else if (!strcmp(a, "--workers")) {
            INT_FLAG(1, 64);
            p.engine.n_workers = (int)v;
        } else if (!strcmp(a, "--http-threads")) {
            INT_FLAG(1, 256);
            p.http_threads = (int)v;
        } else if (!strcmp(a, "--max-batch-tokens")) {
            INT_FLAG(16, 1 << 24);
            p.engine.max_batch_tokens = (int)v;
        } else if (!strcmp(a, "--max-docs")) {
            INT_FLAG(1, 1 << 24);
            p.max_docs = (int)v;
        } else if (!strcmp(a, "--max-request-bytes")) {
            INT_FLAG(64, 1L << 32);
            p.max_request_bytes = (size_t)v;
        } else if (!strcmp(a, "--max-request-tokens")) {
            INT_FLAG(1, 1L << 34);
            p.max_request_tokens = v;
        } else if (!strcmp(a, "--queue-depth")) {
            INT_FLAG(1, 1 << 20);
            p.engine.queue_depth = (int)v;
        } else if (!strcmp(a, "--max-length")) {
            INT_FLAG(8, 1 << 20);
            p.rank.max_length = (int)v;
        } else if (!strcmp(a, "--served-model-name") || !strcmp(a, "--model-name")) {
            NEED_VALUE;
            p.model_name = val;
        } else if (!strcmp(a, "--drain-timeout")) {
            INT_FLAG(0, 86400);
            drain_timeout = v;
        } else if (!strcmp(a, "--log-format")) {
            NEED_VALUE;
            if (!strcmp(val, "json")) p.log_json = 1;
            else if (!strcmp(val, "text")) p.log_json = 0;
            else return cli_error("--log-format expects text or json, not '%s'", val);
        } else if (!strcmp(a, "--quiet")) {
            p.access_log = 0;
        } else {
            usage(stderr);
            return cli_error("unknown option '%s'", a);
        }
#undef NEED_VALUE
#undef INT_FLAG
    }
    if (!model) {
        usage(stderr);
        return cli_error("-m MODEL is required");
    }

    char model_dir[4096];
    if (cli_model_dir(model, model_dir, sizeof model_dir)) return 1;
    rr_model_params mp = rr_model_default_params();
    mp.precision = prec;
    mp.n_threads = (int)threads;
    /* the name clients see: the repo id as given, or the folder's last component */
    char name[256];
    if (!p.model_name) {
        const char *base = model;
        if (strcmp(model_dir, model) == 0 || strchr(model, '/') == NULL || model[0] == '.' || model[0] == '/') {
            size_t n = strlen(model);
            while (n > 1 && model[n - 1] == '/') n--;
            size_t b = n;
            while (b > 0 && model[b - 1] != '/') b--;
            snprintf(name, sizeof name, "%.*s", (int)(n - b), model + b);
            base = name;
        }
        p.model_name = base;
    }
    /* block the signals before threads exist, then wait for them here */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    rr_srv *s = NULL;
    if (rr_srv_start(NULL, &p, &s)) return cli_error("%s", rr_errmsg());
    const char *host = p.host && *p.host ? p.host : "127.0.0.1";
    int v6 = strchr(host, ':') != NULL;
    fprintf(stderr, "rerank serve: bound %s%s%s port %d; loading %s (GET /ready answers 503 until it is loaded)\n",
            v6 ? "[" : "", host, v6 ? "]" : "", rr_srv_port(s), model_dir);
    fflush(stderr);

    rr_model *m = NULL;
    if (rr_model_load(model_dir, &mp, &m)) {
        int rc = cli_error("%s", rr_errmsg());
        rr_srv_free(s);
        return rc;
    }
    if (!rr_model_tokenizer(m) || rr_srv_set_model(s, m)) {
        int rc = rr_model_tokenizer(m) ? cli_error("%s", rr_errmsg())
                                       : cli_error("%s: no tokenizer.json: the server needs the model's tokenizer",
                                                   model_dir);
        rr_srv_free(s);
        rr_model_free(m);
        return rc;
    }
    rr_model_info mi;
    rr_model_get_info(m, &mi);
    fprintf(stderr, "rerank serve: listening on http://%s%s%s:%d (model %s, precision %s, %s)\n", v6 ? "[" : "", host,
            v6 ? "]" : "", rr_srv_port(s), p.model_name,
            mi.precision == RR_PRECISION_BF16 ? "bf16" : mi.precision == RR_PRECISION_INT8 ? "int8" : "fp32",
            p.api_key && *p.api_key ? "API key required" : "no API key");
    fflush(stderr);

    int sig = 0;
    sigwait(&sigs, &sig);
    fprintf(stderr, "rerank serve: %s: draining requests in flight\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    int rc = rr_srv_drain(s, (double)drain_timeout);
    if (rc) {
        fprintf(stderr, "rerank serve: requests still running after %lds; exiting anyway\n", drain_timeout);
        return 1; /* the engine still holds requests: no clean teardown possible */
    }
    rr_srv_free(s);
    rr_model_free(m);
    fprintf(stderr, "rerank serve: stopped\n");
    return 0;
}

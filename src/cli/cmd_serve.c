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
#include "rerank_server.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fputs("usage: rerank serve -m MODEL [--host H] [--port P] [--api-key KEY | --api-key-file FILE]\n"
          "                    [--precision fp32|bf16|int8|auto] [--threads N] [--workers N] [--http-threads N]\n"
          "                    [--max-batch-tokens N] [--max-docs N] [--max-request-bytes N] [--max-request-tokens N]\n"
          "                    [--queue-depth N] [--max-length N] [--served-model-name NAME] [--drain-timeout S]\n"
          "                    [--log-format text|json] [--quiet]\n"
          "                    [--header-timeout S] [--body-timeout S] [--idle-timeout S] [--max-connections N]\n"
          "                    [--max-conns-per-ip N] [--max-buffered-bytes N]\n"
          "                    [--template qwen3-reranker|mxbai-rerank-v2] [--instruction TEXT] [--windows]\n\n"
          "Serves POST /v1/rerank (Jina, Cohere v1), /v2/rerank (Cohere v2), /rerank (TEI with \"texts\", else\n"
          "Jina), GET /health (liveness), /ready (readiness), /info, /metrics, /v1/models, /openapi.json, /docs.\n"
          "Binds 127.0.0.1:8080 by default (--port 0 picks a free port; the address is printed on stderr). The\n"
          "port is bound before the model loads: meanwhile /health is 200, /ready and the rerank routes 503.\n\n"
          "  --api-key KEY          require \"Authorization: Bearer KEY\" (default: $RERANK_API_KEY; unset: any\n"
          "                         or no bearer token is accepted; an empty key is an error). The key shows\n"
          "                         in `ps`: prefer --api-key-file or the variable\n"
          "  --api-key-file FILE    read the key from the first line of FILE\n"
          "  --precision P          auto (default, as `rerank rank`: bf16 where the CPU has it, else fp32), fp32, bf16, int8\n"
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
          "  --quiet                no access log line per request\n"
          "Connection limits (against slow or hostile clients; 0 turns a timeout or the per-address limit off):\n"
          "  --header-timeout S     a request's headers must arrive within S seconds of the connection or of\n"
          "                         the previous answer's idle time (default 10)\n"
          "  --body-timeout S       its body within S seconds of its headers (default 30)\n"
          "  --idle-timeout S       a keep-alive connection may wait S seconds for its next request (default 60)\n"
          "  --max-connections N    open connections in all (default 4096)\n"
          "  --max-conns-per-ip N   open connections from one client address (default 256)\n"
          "  --max-buffered-bytes N request bodies held in memory at once, all clients; past it a 503 +\n"
          "                         Retry-After (default 256000000; at least --max-request-bytes)\n"
          "Decoder rerankers:\n"
          "  --template NAME        a decoder reranker's prompt (default: from the model card, else the\n"
          "                         architecture)\n"
          "  --instruction TEXT     the task instruction of a decoder's prompts (default: the template's;\n"
          "                         encoder models ignore it, as /info notes)\n"
          "  --windows              long documents in overlapping windows of the document's tokens for requests\n"
          "                         that do not choose (default: the reference code's cut of the prompt's body;\n"
          "                         encoders always window)\n",
          f);
}

/* The serve-specific flags; -m, --precision, --threads (and --batch-tokens, an alias of
 * --max-batch-tokens here) are the shared model options. */
typedef struct serve_opts {
    rr_srv_params p;
    long drain_timeout;
    const char *log_format;
    long header_timeout, body_timeout, idle_timeout; /* whole seconds, into p's doubles */
    const char *api_key_file;
    cli_model_opts mo;
    const char *instruction; /* decoder prompts' instruction for every request that sends none */
} serve_opts;

/* The first line of `path`, without its line end or surrounding blanks; an empty key is an error. */
static int read_key_file(const char *path, char *key, size_t cap) {
    FILE *f = fopen(path, "r");
    if (!f) return cli_error("--api-key-file %s: cannot open: %s", path, strerror(errno));
    if (!fgets(key, (int)cap, f)) key[0] = 0;
    fclose(f);
    size_t n = strlen(key);
    if (n == cap - 1 && key[n - 1] != '\n')
        return cli_error("--api-key-file %s: the key is longer than %zu bytes", path, cap - 2);
    while (n && (key[n - 1] == '\n' || key[n - 1] == '\r' || key[n - 1] == ' ' || key[n - 1] == '\t')) key[--n] = 0;
    size_t b = strspn(key, " \t");
    memmove(key, key + b, n - b + 1);
    if (!*key) return cli_error("--api-key-file %s: the file holds no key", path);
    return 0;
}

static int parse_args(int argc, char **argv, serve_opts *o) {
    rr_srv_params *p = &o->p;
    const cli_flag flags[] = {
        {"--host", NULL, CLI_FLAG_STR, 0, 0, &p->host},
        {"--port", "-p", CLI_FLAG_INT, 0, 65535, &p->port},
        {"--api-key", NULL, CLI_FLAG_STR, 0, 0, &p->api_key},
        {"--workers", NULL, CLI_FLAG_INT, 1, 64, &p->engine.n_workers},
        {"--http-threads", NULL, CLI_FLAG_INT, 1, 256, &p->http_threads},
        {"--max-batch-tokens", NULL, CLI_FLAG_INT, 16, 1 << 24, &p->engine.max_batch_tokens},
        {"--max-docs", NULL, CLI_FLAG_INT, 1, 1 << 24, &p->max_docs},
        {"--max-request-bytes", NULL, CLI_FLAG_SIZE, 64, 1L << 32, &p->max_request_bytes},
        {"--max-request-tokens", NULL, CLI_FLAG_LONG, 1, 1L << 34, &p->max_request_tokens},
        {"--queue-depth", NULL, CLI_FLAG_INT, 1, 1 << 20, &p->engine.queue_depth},
        {"--max-length", NULL, CLI_FLAG_INT, 8, 1 << 20, &p->rank.max_length},
        {"--served-model-name", "--model-name", CLI_FLAG_STR, 0, 0, &p->model_name},
        {"--log-format", NULL, CLI_FLAG_STR, 0, 0, &o->log_format},
        {"--drain-timeout", NULL, CLI_FLAG_LONG, 0, 86400, &o->drain_timeout},
        {"--quiet", NULL, CLI_FLAG_FALSE, 0, 0, &p->access_log},
        {"--api-key-file", NULL, CLI_FLAG_STR, 0, 0, &o->api_key_file},
        {"--header-timeout", NULL, CLI_FLAG_LONG, 0, 86400, &o->header_timeout},
        {"--body-timeout", NULL, CLI_FLAG_LONG, 0, 86400, &o->body_timeout},
        {"--idle-timeout", NULL, CLI_FLAG_LONG, 0, 86400, &o->idle_timeout},
        {"--max-connections", NULL, CLI_FLAG_INT, 1, 1 << 20, &p->max_connections},
        {"--max-conns-per-ip", NULL, CLI_FLAG_INT, 0, 1 << 20, &p->max_conns_per_ip},
        {"--max-buffered-bytes", NULL, CLI_FLAG_SIZE, 64, 1L << 40, &p->max_buffered_bytes},
        {"--instruction", NULL, CLI_FLAG_STR, 0, 0, &o->instruction},
    };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--api-key") && i + 1 < argc && !argv[i + 1][0])
            return cli_error("--api-key is empty: give a key, or leave it out to accept any client");
        if (!strcmp(a, "--windows")) {
            /* decoder rerankers: windows for requests that do not choose (encoders window anyway) */
            p->rank.long_doc = RR_LONG_DOC_WINDOW;
            continue;
        }
        int k = cli_model_opt(&o->mo, argc, argv, &i);
        if (k == 0) k = cli_flags_parse(flags, sizeof flags / sizeof flags[0], argc, argv, &i);
        if (k < 0) return 1;
        if (k == 0) {
            usage(stderr);
            return cli_error("unknown option '%s'", a);
        }
    }
    if (o->mo.batch_tokens) p->engine.max_batch_tokens = (int)o->mo.batch_tokens;
    if (o->log_format && strcmp(o->log_format, "text") && strcmp(o->log_format, "json"))
        return cli_error("--log-format expects text or json, not '%s'", o->log_format);
    p->log_json = o->log_format && !strcmp(o->log_format, "json");
    if (!o->mo.model) {
        usage(stderr);
        return cli_error("-m MODEL is required");
    }
    p->header_timeout_s = (double)o->header_timeout;
    p->body_timeout_s = (double)o->body_timeout;
    p->idle_timeout_s = (double)o->idle_timeout;
    if (o->api_key_file) {
        static char key[4096];
        if (read_key_file(o->api_key_file, key, sizeof key)) return 1;
        p->api_key = key;
    } else if (p->api_key && !*p->api_key) {
        /* --api-key "" was refused in the loop: this one is the variable's */
        return cli_error("RERANK_API_KEY is set but empty: give a key, or unset it to accept any client");
    }
    return -1; /* go on */
}

/* The name clients see: the repo id as given, or the folder's last component. */
static const char *model_name_of(const char *model, const char *model_dir, char *name, size_t cap) {
    if (strcmp(model_dir, model) && strchr(model, '/') && model[0] != '.' && model[0] != '/') return model;
    size_t n = strlen(model);
    while (n > 1 && model[n - 1] == '/') n--;
    size_t b = n;
    while (b > 0 && model[b - 1] != '/') b--;
    snprintf(name, cap, "%.*s", (int)(n - b), model + b);
    return name;
}

int cmd_serve(int argc, char **argv) {
    serve_opts o = {.p = rr_srv_default_params(), .drain_timeout = 120};
    o.header_timeout = (long)o.p.header_timeout_s;
    o.body_timeout = (long)o.p.body_timeout_s;
    o.idle_timeout = (long)o.p.idle_timeout_s;
    /* as `rerank rank`, so scores agree */
    cli_model_opts_init(&o.mo, rr_model_default_params().precision);
    o.p.api_key = getenv("RERANK_API_KEY");
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0) return rc;
    rr_srv_params p = o.p;
    long drain_timeout = o.drain_timeout;
    if (o.instruction) p.rank.instruction = (rr_text){o.instruction, strlen(o.instruction)};

    char model_dir[4096], name[256];
    if (cli_model_dir(o.mo.model, model_dir, sizeof model_dir)) return 1;
    if (!p.model_name) p.model_name = model_name_of(o.mo.model, model_dir, name, sizeof name);

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
    if (cli_model_open(&o.mo, true, &m, NULL)) {
        rr_srv_free(s);
        return 1;
    }
    if (!rr_model_tokenizer(m) || rr_srv_set_model(s, m)) {
        rc = rr_model_tokenizer(m) ? cli_error("%s", rr_errmsg())
                                   : cli_error("%s: no tokenizer.json: the server needs the model's tokenizer", model_dir);
        rr_srv_free(s);
        rr_model_free(m);
        return rc;
    }
    rr_model_info mi;
    rr_model_get_info(m, &mi);
    if (o.instruction) cli_note_instruction(m, "--instruction");
    fprintf(stderr, "rerank serve: listening on http://%s%s%s:%d (model %s, precision %s, %s)\n", v6 ? "[" : "", host,
            v6 ? "]" : "", rr_srv_port(s), p.model_name,
            rr_precision_name(mi.precision),
            p.api_key && *p.api_key ? "API key required" : "no API key");
    fflush(stderr);

    int sig = 0;
    sigwait(&sigs, &sig);
    fprintf(stderr, "rerank serve: %s: draining requests in flight\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    if (rr_srv_drain(s, (double)drain_timeout)) {
        fprintf(stderr, "rerank serve: requests still running after %lds; exiting anyway\n", drain_timeout);
        return 1; /* the engine still holds requests: no clean teardown possible */
    }
    rr_srv_free(s);
    rr_model_free(m);
    fprintf(stderr, "rerank serve: stopped\n");
    return 0;
}

/*
 * cli.h -- the subcommands of the `rerank` program. Each is a thin user of rerank.h: it parses its
 * flags, calls the library and prints. main.c dispatches on argv[1].
 */
#ifndef RR_CLI_H
#define RR_CLI_H

#include "rerank.h"
#include "rerank_hub.h"

#include <stdbool.h>
#include <stddef.h>

int cmd_score(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_pull(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_rank(int argc, char **argv);
int cmd_bench(int argc, char **argv);
/* Resolves a -m value (folder, ORG/NAME[@REV], or NULL/"" for RR_DEFAULT_MODEL) to a model folder in
 * dir[cap], downloading a repo id that is not cached yet (with progress on stderr) unless
 * HF_HUB_OFFLINE is set. Returns 0, or prints the error and returns 1. */
int cli_model_dir(const char *name, char *dir, size_t cap);

/* The options every model-running command shares. */
typedef struct cli_model_opts {
    const char *model;      /* -m: folder or repo id; NULL = RR_DEFAULT_MODEL */
    rr_precision precision; /* --precision */
    long threads;           /* --threads (0 = cores) */
    long batch_tokens;      /* --batch-tokens (0 = default) */
    rr_template prompt;     /* --template (decoder rerankers; default: decided from the folder) */
} cli_model_opts;
void cli_model_opts_init(cli_model_opts *o, rr_precision default_precision);
/* If argv[*i] is a shared option, consumes it and its value (advancing *i) and returns 1; returns 0
 * when it is not one, -1 after printing an error. */
int cli_model_opt(cli_model_opts *o, int argc, char **argv, int *i);
/* Resolves, loads and (when ctx is not NULL) creates a context; prints the error and returns 1 on
 * failure, 0 on success. */
int cli_model_open(const cli_model_opts *o, int load_tokenizer, rr_model **m, rr_ctx **ctx);
/* Prints a note on stderr that `what` (an instruction) is ignored when m is an encoder model, whose
 * input has no instruction; prints nothing for decoder rerankers. */
void cli_note_instruction(const rr_model *m, const char *what);

/* A command's flags as a table, so each command states its options once (name, value type, range,
 * destination) and shares one parser. cli_model_opt above handles the model options every
 * model-running command takes; a command passes the rest through cli_flags_parse. */
typedef enum cli_flag_kind {
    CLI_FLAG_INT,   /* int *dst, value in [lo, hi] */
    CLI_FLAG_LONG,  /* long *dst, value in [lo, hi] */
    CLI_FLAG_SIZE,  /* size_t *dst, value in [lo, hi] */
    CLI_FLAG_STR,   /* const char **dst: the argument itself */
    CLI_FLAG_FALSE, /* bool *dst = false, no value */
    CLI_FLAG_TRUE,  /* bool *dst = true, no value */
} cli_flag_kind;

typedef struct cli_flag {
    const char *name, *alias; /* alias may be NULL */
    cli_flag_kind kind;
    long lo, hi;
    void *dst;
} cli_flag;

/* If argv[*i] names one of the n flags, stores its value (advancing *i past it) and returns 1;
 * returns 0 when it is none of them, -1 after printing an error for a missing or bad value. */
int cli_flags_parse(const cli_flag *flags, size_t n, int argc, char **argv, int *i);

/* Prints "rerank: <msg>" to stderr; returns 1 so commands can `return cli_error(...)`. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Parses an integer flag value in [lo, hi]; returns 0 on success, else prints an error. */
int cli_parse_int(const char *flag, const char *s, long lo, long hi, long *out);
/* Parses fp32|bf16|int8|auto; returns 0 on success. */
int cli_parse_precision(const char *s, rr_precision *out);

/* Decodes the string value of top-level `key` in the JSON object line[0..n) into out (NUL bytes
 * kept; out->data is NUL-terminated after them). Returns 1 when found, 0 when missing or null,
 * -1 when the line is malformed or the value is not a string. */
struct rr_buf;
int cli_json_get_string(const char *line, size_t n, const char *key, struct rr_buf *out);

/* Parses one JSONL line with the server's rules: valid JSON, no raw control character but tab, CR and
 * LF, nothing but whitespace after the value, every string and key valid UTF-8. Returns 0 with *out set (cJSON_Delete it), or -1 with a message
 * in err[cap] and *out NULL. */
struct cJSON;
int cli_json_line(const char *line, size_t n, struct cJSON **out, char *err, size_t cap);

/* Reads one line of f into line (cleared first; "\n" and a "\r" before it removed), holding at most
 * max bytes in memory: 1 = a line, 0 = end of input, 2 = the line is longer than max (its rest is
 * left unread), -1 = read error or out of memory. */
#include <stdio.h>
int cli_read_line(FILE *f, struct rr_buf *line, size_t max);

/* Default of --max-line-bytes (rerank score, rerank rank): a line longer than this is refused. */
#define CLI_MAX_LINE_BYTES ((size_t)8 << 20)

#endif

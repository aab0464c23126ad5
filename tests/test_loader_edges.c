/*
 * test_loader_edges.c -- the model loader against a hostile file system: a FIFO in place of each
 * model file (refused at once, never a hang), oversized config.json and tokenizer.json (refused
 * with the limit in the message), and weight files truncated, rewritten or removed under a loaded
 * model (a clear error or unchanged scores, never a SIGBUS: the files are unmapped after the load),
 * for one model of every family (in a child process, so a fault is reported as a failure).
 */
#include "check.h"
#include "core/core.h"
#include "model/safetensors.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *src_model(void) {
    const char *p = rr_test_data_path("models/xlmr_f32");
    struct stat st;
    return p && stat(p, &st) == 0 ? p : NULL;
}

/* dir_from/name copied to dir_to/name; false on any failure (safe in a forked child, unlike REQUIRE). */
static bool copy_file(const char *dir_from, const char *dir_to, const char *name) {
    char a[700], b[700];
    snprintf(a, sizeof a, "%s/%s", dir_from, name);
    snprintf(b, sizeof b, "%s/%s", dir_to, name);
    char *buf = NULL;
    size_t n = 0;
    if (rr_file_read(a, (size_t)1 << 30, &buf, &n) != RR_OK) return false;
    FILE *f = fopen(b, "wb");
    bool ok = f && fwrite(buf, 1, n, f) == n;
    if (f && fclose(f) != 0) ok = false;
    rr_free(buf);
    return ok;
}

static void copy(const char *dir_from, const char *dir_to, const char *name) {
    REQUIRE(copy_file(dir_from, dir_to, name));
}

/* A fresh copy of the xlmr_f32 test model (config, weights, tokenizer) in a new folder. */
static const char *fresh_model(void) {
    static char dir[600];
    snprintf(dir, sizeof dir, "%s", rr_test_tmpdir());
    copy(src_model(), dir, "config.json");
    copy(src_model(), dir, "model.safetensors");
    copy(src_model(), dir, "tokenizer.json");
    return dir;
}

/* Runs fn(arg, fd) in a child process for at most `secs` seconds, the child writing its message to
 * fd: its exit code, 2 when it was still running at the limit (killed), -N when signal N killed it.
 * The message in msg[cap]. */
static int in_child(int (*fn)(void *arg, int fd), void *arg, int secs, char *msg, size_t cap) {
    int pfd[2];
    REQUIRE(pipe(pfd) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(pfd[0]);
        _exit(fn(arg, pfd[1]));
    }
    close(pfd[1]);
    int status = 0, rc = 2;
    for (int i = 0; i < secs * 100; i++) {
        if (waitpid(pid, &status, WNOHANG) == pid) {
            rc = WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? -WTERMSIG(status) : 1;
            break;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (rc == 2) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    ssize_t n = read(pfd[0], msg, cap - 1);
    msg[n > 0 ? n : 0] = 0;
    close(pfd[0]);
    return rc;
}

typedef struct load_job {
    const char *dir, *needle;
} load_job;

static int load_child(void *arg, int fd) {
    const load_job *j = arg;
    rr_model *m = NULL;
    rr_status s = rr_model_load(j->dir, NULL, &m);
    const char *e = s ? rr_errmsg() : "loaded";
    if (write(fd, e, strlen(e)) < 0) return 3;
    return s && strstr(e, j->needle) ? 0 : 1;
}

/* Loads dir in a child process: 0 when the load failed with a message containing `needle` in
 * time, 1 when it failed otherwise or succeeded, 2 when it was still running after 10 s (killed). */
static int load_in_child(const char *dir, const char *needle, char *msg, size_t cap) {
    load_job j = {dir, needle};
    int rc = in_child(load_child, &j, 10, msg, cap);
    return rc < 0 ? 1 : rc;
}

RR_TEST(loader_fifo_instead_of_model_file) {
    if (!src_model()) SKIP("no generated models");
    const char *files[] = {"config.json", "model.safetensors", "tokenizer.json"};
    for (int i = 0; i < 3; i++) {
        const char *dir = fresh_model();
        char p[700];
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        REQUIRE(unlink(p) == 0);
        REQUIRE(mkfifo(p, 0600) == 0);
        char msg[512];
        int rc = load_in_child(dir, "FIFO", msg, sizeof msg);
        CHECK_MSG(rc == 0, "%s as a FIFO: %s (%s)", files[i], rc == 2 ? "the load hung" : "wrong outcome", msg);
        CHECK_MSG(strstr(msg, files[i]) != NULL, "message does not name %s: %s", files[i], msg);
    }
    /* a directory in place of config.json is refused the same way */
    const char *dir = fresh_model();
    char p[700];
    snprintf(p, sizeof p, "%s/config.json", dir);
    REQUIRE(unlink(p) == 0 && mkdir(p, 0700) == 0);
    rr_model *m = NULL;
    CHECK(rr_model_load(dir, NULL, &m) == RR_ERR_IO);
    CHECK_MSG(strstr(rr_errmsg(), "directory") != NULL, "%s", rr_errmsg());
}

RR_TEST(loader_size_limits) {
    if (!src_model()) SKIP("no generated models");
    /* config.json past 1 MiB: whitespace after a valid object, so only the size is wrong */
    const char *dir = fresh_model();
    char p[700];
    snprintf(p, sizeof p, "%s/config.json", dir);
    FILE *f = fopen(p, "ab");
    REQUIRE(f);
    for (int i = 0; i < (1 << 20) / 64 + 1; i++) fputs("                                                               \n", f);
    fclose(f);
    rr_model *m = NULL;
    CHECK(rr_model_load(dir, NULL, &m) == RR_ERR_RANGE);
    CHECK_MSG(strstr(rr_errmsg(), "config.json") && strstr(rr_errmsg(), "limit"), "%s", rr_errmsg());
    CHECK(m == NULL);
    /* tokenizer.json past 64 MiB (a sparse file: no disk used), refused before it is parsed */
    dir = fresh_model();
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    REQUIRE(truncate(p, (off_t)65 << 20) == 0);
    double t0 = rr_now();
    CHECK(rr_model_load(dir, NULL, &m) == RR_ERR_RANGE);
    CHECK_MSG(strstr(rr_errmsg(), "tokenizer.json") && strstr(rr_errmsg(), "64 MiB"), "%s", rr_errmsg());
    CHECK_MSG(rr_now() - t0 < 10, "refusing took %.1f s", rr_now() - t0);
    CHECK(m == NULL);
}

static rr_status score(rr_ctx *c, float *out) {
    static const int32_t a[] = {0, 581, 2, 2, 9061, 2}, b[] = {0, 17, 18, 2, 2, 77, 78, 79, 2};
    rr_seq s[2] = {{a, NULL, 6, NULL, 0}, {b, NULL, 9, NULL, 0}};
    return rr_score_ids(c, s, 2, out);
}

RR_TEST(loader_weights_changed_under_a_loaded_model) {
    if (!src_model()) SKIP("no generated models");
    const char *dir = fresh_model();
    char p[700];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    rr_model *m = NULL;
    rr_ctx *c = NULL;
    REQUIRE(rr_model_load(dir, NULL, &m) == RR_OK);
    REQUIRE(rr_ctx_new(m, NULL, &c) == RR_OK);
    float ref[2], got[2];
    REQUIRE(score(c, ref) == RR_OK);

    /* removed: the open descriptor keeps the data, the scores do not change */
    REQUIRE(unlink(p) == 0);
    REQUIRE(score(c, got) == RR_OK);
    CHECK(got[0] == ref[0] && got[1] == ref[1]);
    rr_ctx_free(c);
    rr_model_free(m);

    /* truncated in place (what `cp` over the file or a half-finished download does): a clear error
     * from every later call, and no SIGBUS */
    dir = fresh_model();
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    REQUIRE(rr_model_load(dir, NULL, &m) == RR_OK);
    REQUIRE(rr_ctx_new(m, NULL, &c) == RR_OK);
    REQUIRE(truncate(p, 4096) == 0);
    for (int k = 0; k < 2; k++) {
        rr_status s = score(c, got);
        CHECK_MSG(s == RR_ERR_IO, "score after truncation: %d (%s)", s, rr_errmsg());
        CHECK_MSG(strstr(rr_errmsg(), "model.safetensors") && strstr(rr_errmsg(), "truncated"), "%s", rr_errmsg());
    }
    /* the whole file back in place: scores are the same again */
    copy(src_model(), dir, "model.safetensors");
    REQUIRE(score(c, got) == RR_OK);
    CHECK(got[0] == ref[0] && got[1] == ref[1]);
    /* truncated to nothing then overwritten with zeros of the same size: no crash, finite scores
     * (the embedding rows read back as zeros) */
    struct stat st;
    REQUIRE(stat(p, &st) == 0);
    REQUIRE(truncate(p, 0) == 0 && truncate(p, st.st_size) == 0);
    REQUIRE(score(c, got) == RR_OK);
    CHECK(isfinite(got[0]) && isfinite(got[1]));
    rr_ctx_free(c);
    rr_model_free(m);
}

/* Every regular file of test model `name` copied into a fresh folder (NULL when not generated). */
static const char *fresh_copy(const char *name) {
    char rel[128];
    snprintf(rel, sizeof rel, "models/%s", name);
    const char *from = rr_test_data_path(rel);
    DIR *d = from ? opendir(from) : NULL;
    if (!d) return NULL;
    char src[600];
    snprintf(src, sizeof src, "%s", from);
    static char dir[600];
    snprintf(dir, sizeof dir, "%s", rr_test_tmpdir());
    for (struct dirent *e; (e = readdir(d));) {
        char p[1300];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", src, e->d_name);
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) copy(src, dir, e->d_name);
    }
    closedir(d);
    return dir;
}

/* The end offset of the word embedding table in weights file p: cutting the file there leaves the
 * rows the forward pass reads and removes every table stored after it (mGTE's token types, say). */
static size_t word_table_end(const char *p) {
    rr_st *st = NULL;
    size_t end = 0;
    REQUIRE(rr_st_open_file(p, &st) == RR_OK);
    for (int i = 0; i < rr_st_count(st); i++) {
        const rr_st_tensor *t = rr_st_at(st, i);
        if (strstr(t->name, "word_embeddings") || strstr(t->name, "embed_tokens") || strstr(t->name, "tok_embeddings"))
            end = t->offset + t->nbytes;
    }
    rr_st_close(st);
    REQUIRE(end > 0);
    return end;
}

/* Child of loader_every_family_survives_truncation: 0 when, with the weights file cut after the word
 * table, a score is unchanged or a clear error; with the file emptied, a clear error; with the file
 * restored, unchanged. The reason for anything else on fd `out`. */
typedef struct trunc_job {
    const char *name, *dir, *src; /* model name, the copy under test, the generated original */
    size_t word_end;              /* word_table_end of its weights file */
} trunc_job;

static int truncation_child(void *arg, int out) {
    const trunc_job *j = arg;
    const char *name = j->name, *dir = j->dir;
    char p[1000], why[1200] = "";
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    rr_model *m = NULL;
    rr_ctx *c = NULL;
    static const int32_t ids[] = {1, 17, 18, 77, 78, 79, 2};
    static float emb[4 * 4096];
    rr_seq sq = {ids, NULL, 7, emb, 4};
    float ref = 0, got = 0;
    rr_status s;
    int rc = 1;
    if ((s = rr_model_load(dir, rr_test_fp32(), &m)) || (s = rr_ctx_new(m, NULL, &c)) ||
        (s = rr_score_ids(c, &sq, 1, &ref))) {
        snprintf(why, sizeof why, "%s: load or first score: %s", name, rr_errmsg());
    } else if (truncate(p, (off_t)j->word_end) != 0 ||
               ((s = rr_score_ids(c, &sq, 1, &got)) ? s != RR_ERR_IO || !strstr(rr_errmsg(), "truncated") : got != ref)) {
        snprintf(why, sizeof why, "%s: score with the file cut after the word embeddings: status %d, %s (%g vs %g)",
                 name, s, s ? rr_errmsg() : "no error", got, ref);
    } else if (truncate(p, 0) != 0) {
        snprintf(why, sizeof why, "%s: truncate failed", name);
    } else if ((s = rr_score_ids(c, &sq, 1, &got)) != RR_ERR_IO || !strstr(rr_errmsg(), "truncated")) {
        snprintf(why, sizeof why, "%s: score with the weights file emptied: status %d, %s", name, s,
                 s ? rr_errmsg() : "no error");
    } else {
        if (!copy_file(j->src, dir, "model.safetensors"))
            snprintf(why, sizeof why, "%s: restoring the file failed", name);
        else if ((s = rr_score_ids(c, &sq, 1, &got)) || got != ref)
            snprintf(why, sizeof why, "%s: with the file restored: status %d, %g vs %g", name, s, got, ref);
        else
            rc = 0;
    }
    if (write(out, why, strlen(why)) < 0) rc = 3;
    rr_ctx_free(c);
    rr_model_free(m);
    return rc;
}

RR_TEST(loader_every_family_survives_truncation) {
    /* one model per family the loader handles, encoders and decoders */
    static const char *const names[] = {"jina_f32",      "bert_f32",          "dec_qwen3_f32",   "dec_qwen2_f32",
                                        "dec_qwen3_seqcls_f32", "v3_f32",      "jina_v1_f32",     "mgte_f32",
                                        "modernbert_f32"};
    int tried = 0;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        const char *dir = fresh_copy(names[i]);
        if (!dir) continue;
        tried++;
        char rel[128], src[700], w[1000];
        snprintf(rel, sizeof rel, "models/%s", names[i]);
        snprintf(src, sizeof src, "%s", rr_test_data_path(rel));
        snprintf(w, sizeof w, "%s/model.safetensors", dir);
        trunc_job j = {names[i], dir, src, word_table_end(w)};
        char msg[1200];
        int rc = in_child(truncation_child, &j, 120, msg, sizeof msg); /* generous: sanitizer builds, loaded hosts */
        CHECK_MSG(rc >= 0, "%s: killed by signal %d (%s) after its weights file was truncated", names[i], -rc,
                  rc < 0 ? strsignal(-rc) : "");
        if (rc == 2) CHECK_MSG(0, "%s: still running after 120 s", names[i]);
        else CHECK_MSG(rc <= 0, "%s", msg); /* the child's message names the model */
    }
    if (!tried) SKIP("no generated models");
}

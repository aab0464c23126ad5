/*
 * run_tests.c -- runs every RR_TEST registered by the test files linked with it.
 *
 *   build/run_tests            all tests
 *   build/run_tests tok        tests whose name contains "tok"
 *
 * Prints one line per test and ends with "N passed, N failed, N skipped"; exits 1 on any failure.
 */
#include "check.h"
#include "rerank.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

jmp_buf rr_test_jmp;
static rr_test *g_tests;
static int g_failed_now, g_skipped_now;
static char g_tmp_root[256];
static char g_tmp_test[320];

void rr_test_register(rr_test *t) {
    /* append, so tests run in file and definition order */
    rr_test **p = &g_tests;
    while (*p) p = &(*p)->next;
    t->next = NULL;
    *p = t;
}

void rr_test_fail(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    fprintf(stdout, "    %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    g_failed_now++;
}

void rr_test_skip(const char *why) {
    printf("    skipped: %s\n", why);
    g_skipped_now = 1;
}

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

const char *rr_test_shared(void) {
    const char *e = getenv("RR_SHARED");
    if (e && *e) return is_dir(e) ? e : NULL;
    return is_dir("../shared") ? "../shared" : NULL;
}

const char *rr_test_data(void) {
    const char *e = getenv("RR_TESTDATA");
    if (e && *e) return e;
    return "build/testdata";
}

static const char *ring_path(const char *root, const char *rel) {
    static char ring[8][1024];
    static int next;
    if (!root) return NULL;
    char *b = ring[next++ & 7];
    snprintf(b, sizeof ring[0], "%s/%s", root, rel);
    return b;
}

const struct rr_model_params *rr_test_fp32(void) {
    static rr_model_params p;
    p = rr_model_default_params();
    p.precision = RR_PRECISION_FP32;
    return &p;
}

const char *rr_test_data_path(const char *rel) { return ring_path(rr_test_data(), rel); }

rr_model *rr_test_load_model(const char *name) {
    char rel[256];
    snprintf(rel, sizeof rel, "models/%s/tokenizer.json", name);
    struct stat st;
    if (stat(rr_test_data_path(rel), &st) != 0) return NULL;
    snprintf(rel, sizeof rel, "models/%s", name);
    rr_model *m = NULL;
    rr_status s = rr_model_load(rr_test_data_path(rel), rr_test_fp32(), &m);
    CHECK_MSG(s == RR_OK, "load %s: %s", name, rr_errmsg());
    return m;
}
const char *rr_test_shared_path(const char *rel) { return ring_path(rr_test_shared(), rel); }

const char *rr_test_tmpdir(void) {
    static int n;
    snprintf(g_tmp_test, sizeof g_tmp_test, "%s/t%d", g_tmp_root, ++n);
    mkdir(g_tmp_test, 0700);
    return g_tmp_test;
}

int main(int argc, char **argv) {
    const char *filter = argc > 1 ? argv[1] : NULL;
    snprintf(g_tmp_root, sizeof g_tmp_root, "/tmp/rr_tests.XXXXXX");
    if (!mkdtemp(g_tmp_root)) {
        perror("mkdtemp");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    int passed = 0, failed = 0, skipped = 0;
    for (rr_test *t = g_tests; t; t = t->next) {
        if (filter && !strstr(t->name, filter)) continue;
        g_failed_now = 0;
        g_skipped_now = 0;
        printf("  %s\n", t->name);
        if (setjmp(rr_test_jmp) == 0) t->fn();
        if (g_failed_now) {
            failed++;
            printf("  FAIL %s\n", t->name);
        } else if (g_skipped_now) {
            skipped++;
        } else {
            passed++;
        }
    }
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp_root);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_tmp_root);
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}

/*
 * run_tests.c -- runs every RR_TEST registered by the test files linked with it.
 *
 *   build/run_tests            all tests
 *   build/run_tests tok        tests whose name contains "tok"
 *   build/run_tests -j 2 [tok] the same in two worker processes (output still in test order)
 *
 * Prints one line per test and ends with "N passed, N failed, N skipped"; exits 1 on any failure.
 */
#include "check.h"
#include "rerank.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
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
    /* the pid keeps the folders of the -j worker processes apart */
    snprintf(g_tmp_test, sizeof g_tmp_test, "%s/t%d_%d", g_tmp_root, (int)getpid(), ++n);
    mkdir(g_tmp_test, 0700);
    return g_tmp_test;
}

enum { T_PENDING, T_PASSED, T_FAILED, T_SKIPPED };

/* Runs one test, its output going to the current stdout; returns T_PASSED, T_FAILED or T_SKIPPED. */
static int run_one(rr_test *t) {
    g_failed_now = 0;
    g_skipped_now = 0;
    printf("  %s\n", t->name);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (setjmp(rr_test_jmp) == 0) t->fn();
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    /* the slow tests named, so that the run's time can be kept in check */
    if (secs >= 2.0) printf("    (%.1f s)\n", secs);
    if (g_failed_now) {
        printf("  FAIL %s\n", t->name);
        return T_FAILED;
    }
    return g_skipped_now ? T_SKIPPED : T_PASSED;
}

/* -j N: N worker processes take the next test from a shared counter, so a slow test does not hold
 * the others back; each test's output goes to its own file, printed in test order at the end, and
 * a worker that dies (a sanitizer abort, a crash) fails its test instead of ending the run. */
static void run_parallel(rr_test **list, int count, int jobs, int *result) {
    int *next = mmap(NULL, sizeof(int), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    int *shared = mmap(NULL, (size_t)count * sizeof(int), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (next == MAP_FAILED || shared == MAP_FAILED) {
        perror("mmap");
        exit(2);
    }
    *next = 0;
    for (int i = 0; i < count; i++) shared[i] = T_PENDING;
    fflush(stdout);
    for (int w = 0; w < jobs; w++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            exit(2);
        }
        if (pid > 0) continue;
        for (;;) {
            int i = __atomic_fetch_add(next, 1, __ATOMIC_SEQ_CST);
            if (i >= count) _exit(0);
            char path[400];
            snprintf(path, sizeof path, "%s/out.%d", g_tmp_root, i);
            if (!freopen(path, "w", stdout)) _exit(2);
            setvbuf(stdout, NULL, _IOLBF, 0);
            shared[i] = run_one(list[i]);
            fflush(stdout);
        }
    }
    int status;
    while (wait(&status) > 0) {
    }
    for (int i = 0; i < count; i++) {
        char path[400], line[4096];
        snprintf(path, sizeof path, "%s/out.%d", g_tmp_root, i);
        FILE *f = fopen(path, "r");
        if (f) {
            while (fgets(line, sizeof line, f)) fputs(line, stdout);
            fclose(f);
        }
        result[i] = shared[i];
        if (result[i] == T_PENDING) {
            /* its worker died in it, or every worker died before it started */
            if (!f) printf("  %s\n", list[i]->name);
            printf("  FAIL %s (%s)\n", list[i]->name, f ? "its worker process died in it" : "never run: the workers died");
            result[i] = T_FAILED;
        }
    }
    munmap(next, sizeof(int));
    munmap(shared, (size_t)count * sizeof(int));
}

int main(int argc, char **argv) {
    int jobs = 1;
    if (argc > 2 && strcmp(argv[1], "-j") == 0) {
        jobs = atoi(argv[2]);
        argc -= 2;
        argv += 2;
    }
    if (jobs < 1 || jobs > 64) {
        fprintf(stderr, "run_tests: -j wants 1 to 64\n");
        return 2;
    }
    const char *filter = argc > 1 ? argv[1] : NULL;
    snprintf(g_tmp_root, sizeof g_tmp_root, "/tmp/rr_tests.XXXXXX");
    if (!mkdtemp(g_tmp_root)) {
        perror("mkdtemp");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    int count = 0;
    for (rr_test *t = g_tests; t; t = t->next)
        if (!filter || strstr(t->name, filter)) count++;
    rr_test **list = calloc((size_t)count + 1, sizeof *list);
    int *result = calloc((size_t)count + 1, sizeof *result);
    if (!list || !result) return 2;
    int k = 0;
    for (rr_test *t = g_tests; t; t = t->next)
        if (!filter || strstr(t->name, filter)) list[k++] = t;
    if (jobs > 1 && count > 1) {
        run_parallel(list, count, jobs, result);
    } else {
        for (int i = 0; i < count; i++) result[i] = run_one(list[i]);
    }
    int passed = 0, failed = 0, skipped = 0;
    for (int i = 0; i < count; i++) {
        passed += result[i] == T_PASSED;
        failed += result[i] == T_FAILED;
        skipped += result[i] == T_SKIPPED;
    }
    free(list);
    free(result);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp_root);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_tmp_root);
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}

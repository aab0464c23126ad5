/*
 * check.h -- the unit-test harness: RR_TEST(name) defines a test that registers itself at start-up
 * (so a new test file needs no edit elsewhere), CHECK records a failure and goes on, REQUIRE
 * stops the test, SKIP marks it skipped. tests/run_tests.c runs them: `run_tests [substring]`.
 */
#ifndef RR_CHECK_H
#define RR_CHECK_H

#include <math.h>
#include <setjmp.h>
#include <stdio.h>

typedef struct rr_test {
    const char *name;
    void (*fn)(void);
    struct rr_test *next;
} rr_test;

void rr_test_register(rr_test *t);
void rr_test_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void rr_test_skip(const char *why);
extern jmp_buf rr_test_jmp;

/* Model parameters of the exact reference path (precision fp32, other fields default): tests that
 * compare with fp32 or float64 references load with these, since the library's default is auto. */
struct rr_model_params;
const struct rr_model_params *rr_test_fp32(void);

/* The test model folder models/NAME under rr_test_data(), loaded with rr_test_fp32(); NULL when the
 * folder or its tokenizer.json is absent (the caller skips); a load error fails the test. The caller
 * owns the model. */
struct rr_model;
struct rr_model *rr_test_load_model(const char *name);

/* ../shared (or $RR_SHARED) when present, else NULL: tests that need it SKIP without it. */
const char *rr_test_shared(void);
/* Generated test data (tools/gen_models.py output): $RR_TESTDATA or build/testdata. */
const char *rr_test_data(void);
/* A path under rr_test_data() / rr_test_shared() in a static ring of buffers, or NULL. */
const char *rr_test_data_path(const char *rel);
const char *rr_test_shared_path(const char *rel);
/* A fresh temporary directory for this test (removed by the runner at exit). */
const char *rr_test_tmpdir(void);

/* 1 in the sanitizer builds (make asan, make tsan), where code runs several times slower: a test
 * whose cost is repetition of one path (every order times every budget, say) runs a subset there
 * that still reaches each path once; the plain build, run first by CI, runs the whole set. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define RR_TEST_SANITIZED 1
#else
#define RR_TEST_SANITIZED 0
#endif

#define RR_TEST(name)                                                                              \
    static void test_##name(void);                                                                 \
    static rr_test rr_test_##name = {#name, test_##name, 0};                                       \
    __attribute__((constructor)) static void rr_test_reg_##name(void) {                            \
        rr_test_register(&rr_test_##name);                                                         \
    }                                                                                              \
    static void test_##name(void)

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) rr_test_fail(__FILE__, __LINE__, "CHECK(%s)", #c);                               \
    } while (0)
#define CHECK_MSG(c, ...)                                                                          \
    do {                                                                                           \
        if (!(c)) rr_test_fail(__FILE__, __LINE__, __VA_ARGS__);                                   \
    } while (0)
#define REQUIRE(c)                                                                                 \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            rr_test_fail(__FILE__, __LINE__, "REQUIRE(%s)", #c);                                   \
            longjmp(rr_test_jmp, 1);                                                               \
        }                                                                                          \
    } while (0)
#define CHECK_EQ_INT(a, b)                                                                         \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_) rr_test_fail(__FILE__, __LINE__, "%s == %s (%lld != %lld)", #a, #b, a_, b_); \
    } while (0)
#define CHECK_NEAR(a, b, tol)                                                                      \
    do {                                                                                           \
        double a_ = (double)(a), b_ = (double)(b);                                                 \
        if (!(fabs(a_ - b_) <= (tol)))                                                             \
            rr_test_fail(__FILE__, __LINE__, "%s ~ %s (%.9g vs %.9g, tol %g)", #a, #b, a_, b_,     \
                         (double)(tol));                                                           \
    } while (0)
#define SKIP(why)                                                                                  \
    do {                                                                                           \
        rr_test_skip(why);                                                                         \
        longjmp(rr_test_jmp, 2);                                                                   \
    } while (0)

#endif

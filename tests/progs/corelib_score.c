/*
 * corelib_score.c -- a program that links only the core library (librerank) and scores pairs, for
 * tests/suite_corelib.sh and tests/suite_install.sh.
 *
 *     corelib_score MODEL_DIR OUT_FILE
 *
 * Scores three fixed (query, document) pairs in fp32 and writes one sigmoid score per line (%.9g)
 * to OUT_FILE, then exercises failure paths (a missing folder, a sequence too long, a bad id) and
 * writes their rr_errmsg() there too. It writes nothing to stdout or stderr itself, so anything
 * that appears there came from the library. Exit status 0 when every call behaved as documented.
 */
#include "rerank.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    FILE *out = fopen(argv[2], "w");
    if (!out) return 2;
    int rc = 0;
    rr_model *m = NULL;
    rr_ctx *c = NULL;
    rr_model_params mp = rr_model_default_params();
    mp.precision = RR_PRECISION_FP32;
    if (rr_model_load(argv[1], &mp, &m) != RR_OK) {
        fprintf(out, "load: %s\n", rr_errmsg());
        fclose(out);
        return 1;
    }
    if (rr_ctx_new(m, NULL, &c) != RR_OK) {
        fprintf(out, "ctx: %s\n", rr_errmsg());
        rc = 1;
        goto done;
    }
    const char *q[3] = {"what is a panda?", "what is a panda?", "capital of France"};
    const char *d[3] = {"The giant panda is a bear native to China.", "Paris is the capital of France.",
                        "Paris is the capital of France."};
    rr_text qs[3], ds[3];
    for (int i = 0; i < 3; i++) {
        qs[i] = (rr_text){q[i], strlen(q[i])};
        ds[i] = (rr_text){d[i], strlen(d[i])};
    }
    float scores[3];
    rr_usage u = {0};
    if (rr_score_pairs(c, qs, ds, 3, NULL, scores, &u) != RR_OK) {
        fprintf(out, "score: %s\n", rr_errmsg());
        rc = 1;
        goto done;
    }
    for (int i = 0; i < 3; i++) fprintf(out, "%.9g\n", (double)scores[i]);
    if (u.total_tokens <= 0) rc = 1;

    /* failure paths: errors come back as codes and messages, never as output */
    rr_model *none = NULL;
    if (rr_model_load("/nonexistent/rerank-model", &mp, &none) == RR_OK) rc = 1;
    fprintf(out, "missing folder: %s\n", rr_errmsg());
    int32_t ids[2] = {0, 1 << 30};
    rr_seq s = {ids, NULL, 2};
    float logit;
    if (rr_score_ids(c, &s, 1, &logit) != RR_ERR_INVALID) rc = 1;
    fprintf(out, "bad id: %s\n", rr_errmsg());
    s.len = 0;
    if (rr_score_ids(c, &s, 1, &logit) != RR_ERR_RANGE) rc = 1;
    fprintf(out, "empty sequence: %s\n", rr_errmsg());

done:
    rr_ctx_free(c);
    rr_model_free(m);
    fclose(out);
    return rc;
}

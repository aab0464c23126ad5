/*
 * golden.h -- the golden sequences and logits that tools/gen_models.py writes (golden/<name>.jsonl
 * under the test data folder), loaded for the tests that compare the encoder against them.
 */
#ifndef RR_TEST_GOLDEN_H
#define RR_TEST_GOLDEN_H

#include "rerank.h"

#define RR_GOLDEN_MAX 64

typedef struct rr_golden {
    int n;
    rr_seq seq[RR_GOLDEN_MAX];              /* views of ids / types below */
    int32_t *ids[RR_GOLDEN_MAX], *types[RR_GOLDEN_MAX];
    float logit[RR_GOLDEN_MAX];             /* float64 reference, rounded */
} rr_golden;

/* Loads golden/<name>.jsonl (at most RR_GOLDEN_MAX lines); returns 0 if it is missing or empty. */
int rr_golden_load(const char *name, rr_golden *g);
void rr_golden_free(rr_golden *g);
/* The largest |out[i] - logit[i]| over the n sequences, on the logits or, with sigmoid set, on their
 * sigmoids (the reduced precisions are judged on probabilities); *mean (if not NULL) gets the mean. */
double rr_golden_worst(const rr_golden *g, const float *out, int sigmoid, double *mean);

#endif

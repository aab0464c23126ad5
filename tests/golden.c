/*
 * golden.c -- loader for tools/gen_models.py's golden files (see golden.h).
 */
#include "golden.h"

#include "check.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int32_t *ids_of(const cJSON *a, int *n) {
    *n = cJSON_GetArraySize(a);
    int32_t *v = malloc((size_t)(*n ? *n : 1) * sizeof *v);
    int i = 0;
    for (const cJSON *e = a ? a->child : NULL; e && v; e = e->next) v[i++] = (int32_t)e->valuedouble;
    return v;
}

int rr_golden_load(const char *name, rr_golden *g) {
    char rel[256];
    snprintf(rel, sizeof rel, "golden/%s.jsonl", name);
    const char *path = rr_test_data_path(rel);
    FILE *f = path ? fopen(path, "r") : NULL;
    memset(g, 0, sizeof *g);
    if (!f) return 0;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0 && g->n < RR_GOLDEN_MAX) {
        cJSON *j = cJSON_Parse(line);
        if (!j) continue;
        int n, nt;
        g->ids[g->n] = ids_of(cJSON_GetObjectItem(j, "input_ids"), &n);
        g->types[g->n] = ids_of(cJSON_GetObjectItem(j, "token_type_ids"), &nt);
        g->seq[g->n] = (rr_seq){g->ids[g->n], nt == n ? g->types[g->n] : NULL, n, NULL, 0};
        g->logit[g->n] = (float)cJSON_GetObjectItem(j, "logit")->valuedouble;
        g->n++;
        cJSON_Delete(j);
    }
    free(line);
    fclose(f);
    return g->n > 0;
}

void rr_golden_free(rr_golden *g) {
    for (int i = 0; i < g->n; i++) {
        free(g->ids[i]);
        free(g->types[i]);
    }
    g->n = 0;
}

static double sigmoid_of(double x) { return 1 / (1 + exp(-x)); }

double rr_golden_worst(const rr_golden *g, const float *out, int sigmoid, double *mean) {
    double worst = 0, sum = 0;
    for (int i = 0; i < g->n; i++) {
        double d = sigmoid ? fabs(sigmoid_of(out[i]) - sigmoid_of(g->logit[i])) : fabs(out[i] - g->logit[i]);
        worst = fmax(worst, d), sum += d;
    }
    if (mean) *mean = g->n ? sum / g->n : 0;
    return worst;
}

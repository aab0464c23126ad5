/*
 * fuzz_trec.c -- libFuzzer target for the evaluation readers: TREC/BEIR qrels (rr_eval_qrels_parse)
 * and TREC runs (rr_eval_run_parse). The input is split at its first NUL byte into a qrels part and
 * a run part; each is parsed, and when both parse the run is evaluated on every metric kind, which
 * must give finite values in [0, 1] (a run written and read back must also give the same values).
 */
#include "core/core.h"
#include "rerank_eval.h"

#include <math.h>

#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *s = (const char *)data;
    const char *nul = memchr(s, 0, size);
    size_t nq = nul ? (size_t)(nul - s) : size;
    const char *rs = nul ? nul + 1 : s;
    size_t nr = nul ? size - nq - 1 : size;
    rr_eval_qrels q = {0};
    rr_eval_run r = {0}, r2 = {0};
    rr_status sq = rr_eval_qrels_parse(s, nq, "qrels", &q);
    rr_status sr = rr_eval_run_parse(rs, nr, "run", &r);
    if ((sq && !rr_errmsg()[0]) || (sr && !rr_errmsg()[0])) abort();
    if (!sq && !sr) {
        rr_eval_metric m[RR_EVAL_MAX_METRICS];
        int nm = 0;
        if (rr_eval_metrics_parse("ndcg@3,ndcg,recall@2,mrr@2,mrr,map,p@2", m, &nm) != RR_OK) abort();
        for (int complete = 0; complete < 2; complete++) {
            rr_eval_result res = {0};
            if (rr_eval_evaluate(&q, &r, m, nm, 1 + complete, complete, &res) == RR_OK)
                for (int i = 0; i < res.n_queries * res.n_metrics; i++)
                    if (!isfinite(res.values[i]) || res.values[i] < 0 || res.values[i] > 1 + 1e-9) abort();
            rr_eval_result_free(&res);
        }
        /* written and read back, the run keeps its order */
        char path[512];
        snprintf(path, sizeof path, "%s/run.trec", fuzz_dir());
        if (rr_eval_run_write(&r, path, "t") == RR_OK && rr_eval_run_load(path, &r2) == RR_OK) {
            if (r2.n != r.n) abort();
            for (size_t i = 0; i < r.n; i++)
                if (strcmp(r.hits[i].docno, r2.hits[i].docno) || r.hits[i].score != r2.hits[i].score) abort();
        }
    }
    rr_eval_run_free(&r2);
    rr_eval_run_free(&r);
    rr_eval_qrels_free(&q);
    return 0;
}

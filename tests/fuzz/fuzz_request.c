/*
 * fuzz_request.c -- libFuzzer target for the server's request body parser (rr_srv_parse, every API
 * dialect). The first byte picks the dialect and the document limit, the rest is the body. A parse
 * must either fail with an HTTP status and a message, or give a request whose fields hold together
 * (documents within the limit, each text's length matching its bytes, top_n within range); the
 * success body is then formatted from made-up scores, as the server would answer.
 */
#include "core/core.h"
#include "server/request.h"

#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    rr_srv_api api = (rr_srv_api)(data[0] % 4);
    rr_srv_limits lim = {1 + (data[0] >> 2) % 16};
    rr_srv_request r;
    char err[512];
    int rc = rr_srv_parse((const char *)data + 1, size - 1, api, &lim, &r, err, sizeof err);
    if (rc) {
        if (rc < 400 || rc > 599 || !err[0]) abort();
        return 0;
    }
    if (r.api == RR_SRV_API_AUTO || r.n_docs < 0 || r.n_docs > lim.max_docs || r.top_n < 0) abort();
    if (strlen(r.query.text) != r.query.len) abort();
    rr_rank_result *res = calloc((size_t)r.n_docs + 1, sizeof *res);
    if (!res) abort();
    for (int i = 0; i < r.n_docs; i++) {
        if (!r.docs[i].text || strlen(r.docs[i].text) > r.docs[i].len) abort();
        res[i].index = r.n_docs - 1 - i;
        res[i].score = (float)i;
    }
    int n = r.top_n && r.top_n < r.n_docs ? r.top_n : r.n_docs;
    rr_buf b = {0};
    rr_srv_format_results(&b, &r, "fuzz-model", "id-1", res, n, 7);
    if (!b.oom && (!b.len || (b.data[0] != '{' && b.data[0] != '['))) abort(); /* TEI answers an array */
    rr_buf_free(&b);
    free(res);
    rr_srv_request_free(&r);
    return 0;
}

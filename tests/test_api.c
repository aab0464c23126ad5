/*
 * test_api.c -- the public API's conventions for bindings: the version, the names of the enums,
 * every default written as its number in the *_default_params(), and NULL params meaning those
 * defaults.
 */
#include "check.h"
#include "rerank.h"

#include <string.h>

RR_TEST(api_version) {
    CHECK(!strcmp(rr_version(), RR_VERSION));
    CHECK_EQ_INT(rr_version_number(), RR_VERSION_NUMBER);
    CHECK_EQ_INT(RR_VERSION_NUMBER, RR_VERSION_MAJOR * 10000 + RR_VERSION_MINOR * 100 + RR_VERSION_PATCH);
    char v[32];
    snprintf(v, sizeof v, "%d.%d.%d", RR_VERSION_MAJOR, RR_VERSION_MINOR, RR_VERSION_PATCH);
    CHECK(!strcmp(v, RR_VERSION));
}

RR_TEST(api_enum_names) {
    CHECK(!strcmp(rr_precision_name(RR_PRECISION_AUTO), "auto"));
    CHECK(!strcmp(rr_precision_name(RR_PRECISION_FP32), "fp32"));
    CHECK(!strcmp(rr_precision_name(RR_PRECISION_BF16), "bf16"));
    CHECK(!strcmp(rr_precision_name(RR_PRECISION_INT8), "int8"));
    CHECK(!strcmp(rr_precision_name((rr_precision)42), "unknown"));
    CHECK(!strcmp(rr_family_name(RR_FAMILY_JINA_V2), "jina-v2"));
    CHECK(!strcmp(rr_family_name(RR_FAMILY_XLMR), "xlm-roberta"));
    CHECK(!strcmp(rr_family_name(RR_FAMILY_BERT), "bert"));
    CHECK(!strcmp(rr_family_name((rr_family)-1), "unknown"));
}

RR_TEST(api_default_params_are_numbers) {
    rr_rank_params r = rr_rank_default_params();
    CHECK_EQ_INT(r.max_query_length, 512);
    CHECK_EQ_INT(r.overlap, 80);
    CHECK_EQ_INT(r.top_n, 0);
    CHECK(!r.raw);
    CHECK(r.long_doc == RR_LONG_DOC_AUTO); /* windows for encoders, the reference cut for decoder rerankers */
    CHECK_EQ_INT(r.max_doc_tokens, 0);
    CHECK(!r.progress && !r.progress_user);
    rr_score_params s = rr_score_default_params();
    CHECK(!s.raw);
    CHECK_EQ_INT(s.max_length, 0);
    CHECK(!s.progress && !s.progress_user);
    rr_encode_params e = rr_encode_default_params();
    CHECK(e.add_special);
    CHECK_EQ_INT(e.max_length, 0);
    CHECK(e.strategy == RR_TRUNC_LONGEST_FIRST);
    rr_model_params m = rr_model_default_params();
    CHECK(m.load_tokenizer);
    CHECK_EQ_INT(m.n_threads, 0);
    CHECK_EQ_INT(rr_ctx_default_params().max_batch_tokens, 1024);
}

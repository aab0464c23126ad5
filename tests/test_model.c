/*
 * test_model.c -- loading and exact scoring against the independent PyTorch reference.
 *
 * The models and golden logits come from tools/gen_models.py (random weights, float64 reference).
 * Malformed-model tests copy a good model into a temporary folder and break one thing at a time --
 * the safetensors header, the data, config.json, the shard index -- then require a clean failure
 * whose message names the file and the tensor or field.
 */
#include "check.h"
#include "golden.h"
#include "core/core.h"
#include "kernels/kernels.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *FAMILIES[] = {"jina", "xlmr", "bert"};
static const char *DTYPES[] = {"f32", "f16", "bf16"};

static const char *model_dir(const char *name) {
    char rel[256];
    snprintf(rel, sizeof rel, "models/%s", name);
    const char *p = rr_test_data_path(rel);
    struct stat st;
    return stat(p, &st) == 0 ? p : NULL;
}

/* Scores every golden sequence of model `name` packed into passes of `budget` tokens; returns the
 * max |logit - golden|, or -1 if the data is missing. */
static double golden_maxdiff(const char *name, int budget, int one_by_one) {
    rr_golden g;
    const char *dir = model_dir(name);
    if (!dir || !rr_golden_load(name, &g)) return -1;
    rr_model *m = NULL;
    rr_ctx *c = NULL;
    rr_status s = rr_model_load(dir, rr_test_fp32(), &m);
    CHECK_MSG(s == RR_OK, "load %s: %s", name, rr_errmsg());
    if (s) return 1e9;
    rr_ctx_params cp = rr_ctx_default_params();
    cp.max_batch_tokens = budget;
    REQUIRE(rr_ctx_new(m, &cp, &c) == RR_OK);
    float out[RR_GOLDEN_MAX];
    if (one_by_one) {
        for (int i = 0; i < g.n; i++) CHECK(rr_score_ids(c, &g.seq[i], 1, &out[i]) == RR_OK);
    } else {
        CHECK(rr_score_ids(c, g.seq, g.n, out) == RR_OK);
    }
    double worst = rr_golden_worst(&g, out, 0, NULL);
    rr_ctx_free(c);
    rr_model_free(m);
    rr_golden_free(&g);
    return worst;
}

RR_TEST(model_golden_all_families_and_dtypes) {
    int ran = 0;
    for (size_t f = 0; f < 3; f++)
        for (size_t d = 0; d < 3; d++) {
            char name[64];
            snprintf(name, sizeof name, "%s_%s", FAMILIES[f], DTYPES[d]);
            double packed = golden_maxdiff(name, 4096, 0);
            if (packed < 0) continue;
            ran++;
            double single = golden_maxdiff(name, 4096, 1);
            CHECK_MSG(packed <= 1e-4, "%s packed: max |diff| %.3g > 1e-4", name, packed);
            CHECK_MSG(single <= 1e-4, "%s one by one: max |diff| %.3g > 1e-4", name, single);
        }
    if (!ran) SKIP("no generated models (tools/gen_models.py)");
    CHECK_EQ_INT(ran, 9);
}

RR_TEST(model_sharded_matches_golden) {
    double d = golden_maxdiff("xlmr_f32_sharded", 4096, 0);
    if (d < 0) SKIP("no generated models");
    CHECK_MSG(d <= 1e-4, "sharded: max |diff| %.3g", d);
}

/* Different pass budgets split the same sequences differently; results must not change beyond
 * float noise, since attention never crosses sequences. */
RR_TEST(model_packing_is_independent_of_neighbours) {
    rr_golden g;
    const char *dir = model_dir("jina_f32");
    if (!dir || !rr_golden_load("jina_f32", &g)) SKIP("no generated models");
    rr_model *m;
    REQUIRE(rr_model_load(dir, rr_test_fp32(), &m) == RR_OK);
    float ref[RR_GOLDEN_MAX], out[RR_GOLDEN_MAX];
    int budgets[] = {512, 1000, 2048, 100000};
    for (size_t b = 0; b < RR_ARRAY_LEN(budgets); b++) {
        rr_ctx_params cp = {budgets[b]};
        rr_ctx *c;
        REQUIRE(rr_ctx_new(m, &cp, &c) == RR_OK);
        CHECK(rr_score_ids(c, g.seq, g.n, b == 0 ? ref : out) == RR_OK);
        if (b)
            for (int i = 0; i < g.n; i++) CHECK_NEAR(out[i], ref[i], 1e-5);
        rr_ctx_free(c);
    }
    /* reversed order gives the same per-sequence results */
    rr_seq rev[RR_GOLDEN_MAX];
    for (int i = 0; i < g.n; i++) rev[i] = g.seq[g.n - 1 - i];
    rr_ctx *c;
    REQUIRE(rr_ctx_new(m, NULL, &c) == RR_OK);
    CHECK(rr_score_ids(c, rev, g.n, out) == RR_OK);
    for (int i = 0; i < g.n; i++) CHECK_NEAR(out[g.n - 1 - i], ref[i], 1e-5);
    rr_ctx_free(c);
    rr_model_free(m);
    rr_golden_free(&g);
}

RR_TEST(model_info_and_bad_sequences) {
    const char *dir = model_dir("jina_bf16");
    if (!dir) SKIP("no generated models");
    rr_model *m;
    REQUIRE(rr_model_load(dir, rr_test_fp32(), &m) == RR_OK);
    rr_model_info info;
    rr_model_get_info(m, &info);
    CHECK_EQ_INT(info.family, RR_FAMILY_JINA_V2);
    CHECK_EQ_INT(info.max_length, 1024);
    CHECK_EQ_INT(info.pad_id, 1);
    CHECK_EQ_INT(info.precision, RR_PRECISION_FP32);
    rr_ctx *c;
    REQUIRE(rr_ctx_new(m, NULL, &c) == RR_OK);
    int32_t ids[1100];
    for (int i = 0; i < 1100; i++) ids[i] = 5;
    float out;
    rr_seq s = {ids, NULL, 0, NULL, 0};
    CHECK(rr_score_ids(c, &s, 1, &out) == RR_ERR_RANGE);
    s.len = 1025;
    CHECK(rr_score_ids(c, &s, 1, &out) == RR_ERR_RANGE);
    CHECK(strstr(rr_errmsg(), "1025") != NULL);
    s.len = 1024;
    CHECK(rr_score_ids(c, &s, 1, &out) == RR_OK);
    ids[3] = info.vocab_size;
    s.len = 10;
    CHECK(rr_score_ids(c, &s, 1, &out) == RR_ERR_INVALID);
    CHECK(strstr(rr_errmsg(), "vocabulary") != NULL);
    ids[3] = -1;
    CHECK(rr_score_ids(c, &s, 1, &out) == RR_ERR_INVALID);
    ids[3] = 5;
    int32_t types[10] = {0, 0, 1};
    s.type_ids = types;
    CHECK(rr_score_ids(c, &s, 1, &out) == RR_ERR_INVALID); /* type_vocab_size is 1 */
    CHECK(rr_score_ids(c, NULL, 1, &out) == RR_ERR_INVALID);
    CHECK(rr_score_ids(c, &s, 0, NULL) == RR_OK);
    rr_ctx_free(c);
    rr_model_free(m);
    rr_ctx_free(NULL);
    rr_model_free(NULL);
}

/* ------------------------------------------------------------------ malformed models */

static void copy_file(const char *from, const char *to) {
    char *data;
    size_t n;
    REQUIRE(rr_file_read(from, 1u << 30, &data, &n) == RR_OK);
    FILE *f = fopen(to, "wb");
    REQUIRE(f);
    REQUIRE(fwrite(data, 1, n, f) == n);
    fclose(f);
    rr_free(data);
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    REQUIRE(f);
    fputs(text, f);
    fclose(f);
}

/* A fresh copy of models/xlmr_f32 (config.json + model.safetensors) in a temp folder. */
static const char *fresh_copy(void) {
    const char *src = model_dir("xlmr_f32");
    if (!src) return NULL;
    static char dir[512];
    snprintf(dir, sizeof dir, "%s", rr_test_tmpdir());
    char a[600], b[600];
    snprintf(a, sizeof a, "%s/config.json", src);
    snprintf(b, sizeof b, "%s/config.json", dir);
    copy_file(a, b);
    snprintf(a, sizeof a, "%s/model.safetensors", src);
    snprintf(b, sizeof b, "%s/model.safetensors", dir);
    copy_file(a, b);
    return dir;
}

/* Rewrites dir/model.safetensors with its header passed through edit(); data kept as is. */
static void edit_header(const char *dir, void (*edit)(cJSON *hdr)) {
    char path[600];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    char *data;
    size_t n;
    REQUIRE(rr_file_read(path, 1u << 30, &data, &n) == RR_OK);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = (hl << 8) | (uint8_t)data[i];
    cJSON *h = cJSON_ParseWithLength(data + 8, hl);
    REQUIRE(h);
    edit(h);
    char *text = cJSON_PrintUnformatted(h);
    uint64_t nl = strlen(text);
    FILE *f = fopen(path, "wb");
    REQUIRE(f);
    for (int i = 0; i < 8; i++) fputc((int)((nl >> (8 * i)) & 0xff), f);
    fwrite(text, 1, nl, f);
    fwrite(data + 8 + hl, 1, n - 8 - hl, f);
    fclose(f);
    cJSON_free(text);
    cJSON_Delete(h);
    rr_free(data);
}

/* Loading dir must fail with status `want` and a message containing both needles. */
static void expect_fail(const char *dir, rr_status want, const char *needle1, const char *needle2) {
    rr_model *m = NULL;
    rr_status s = rr_model_load(dir, rr_test_fp32(), &m);
    CHECK_MSG(s == want, "status %d (%s), wanted %d; message: %s", s, rr_status_str(s), want, rr_errmsg());
    CHECK(m == NULL);
    if (needle1) CHECK_MSG(strstr(rr_errmsg(), needle1), "message lacks '%s': %s", needle1, rr_errmsg());
    if (needle2) CHECK_MSG(strstr(rr_errmsg(), needle2), "message lacks '%s': %s", needle2, rr_errmsg());
    rr_model_free(m);
}

#define QKEY "roberta.encoder.layer.1.attention.self.query.weight"

static void e_drop_tensor(cJSON *h) { cJSON_DeleteItemFromObject(h, QKEY); }
static void e_bad_shape(cJSON *h) {
    cJSON *sh = cJSON_GetObjectItem(cJSON_GetObjectItem(h, QKEY), "shape");
    cJSON_SetNumberValue(sh->child, 32); /* same element count, wrong shape */
    cJSON_SetNumberValue(sh->child->next, 128);
}
static void e_bad_dtype(cJSON *h) {
    cJSON *t = cJSON_GetObjectItem(h, QKEY);
    cJSON_ReplaceItemInObject(t, "dtype", cJSON_CreateString("I32"));
}
static void e_unknown_dtype(cJSON *h) {
    cJSON *t = cJSON_GetObjectItem(h, QKEY);
    cJSON_ReplaceItemInObject(t, "dtype", cJSON_CreateString("F7"));
}
static void e_offsets_past_end(cJSON *h) {
    cJSON *o = cJSON_GetObjectItem(cJSON_GetObjectItem(h, QKEY), "data_offsets");
    cJSON_SetNumberValue(o->child, 1e12);
    cJSON_SetNumberValue(o->child->next, 1e12 + 64 * 64 * 4);
}
static void e_offsets_size(cJSON *h) {
    cJSON *o = cJSON_GetObjectItem(cJSON_GetObjectItem(h, QKEY), "data_offsets");
    cJSON_SetNumberValue(o->child->next, o->child->next->valuedouble - 4);
}
static void e_overlap(cJSON *h) {
    /* point the key weight at the query weight's bytes */
    cJSON *q = cJSON_GetObjectItem(cJSON_GetObjectItem(h, QKEY), "data_offsets");
    cJSON *k = cJSON_GetObjectItem(cJSON_GetObjectItem(h, "roberta.encoder.layer.1.attention.self.key.weight"),
                                   "data_offsets");
    cJSON_SetNumberValue(k->child, q->child->valuedouble + 4);
    cJSON_SetNumberValue(k->child->next, q->child->next->valuedouble + 4);
}
static void e_shape_not_array(cJSON *h) {
    cJSON *t = cJSON_GetObjectItem(h, QKEY);
    cJSON_ReplaceItemInObject(t, "shape", cJSON_CreateString("64x64"));
}
static void e_negative_dim(cJSON *h) {
    cJSON_SetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(h, QKEY), "shape")->child, -64);
}

RR_TEST(model_malformed_safetensors_headers) {
    struct {
        void (*edit)(cJSON *);
        rr_status want;
        const char *needle;
    } cases[] = {
        {e_drop_tensor, RR_ERR_FORMAT, "missing tensor"},  {e_bad_shape, RR_ERR_FORMAT, "[32, 128]"},
        {e_bad_dtype, RR_ERR_UNSUPPORTED, "dtype"},         {e_unknown_dtype, RR_ERR_FORMAT, "F7"},
        {e_offsets_past_end, RR_ERR_FORMAT, "truncated"},   {e_offsets_size, RR_ERR_FORMAT, "bytes for shape"},
        {e_overlap, RR_ERR_FORMAT, "overlap"},              {e_shape_not_array, RR_ERR_FORMAT, "shape"},
        {e_negative_dim, RR_ERR_FORMAT, "shape[0]"},
    };
    if (!model_dir("xlmr_f32")) SKIP("no generated models");
    for (size_t i = 0; i < RR_ARRAY_LEN(cases); i++) {
        const char *dir = fresh_copy();
        edit_header(dir, cases[i].edit);
        expect_fail(dir, cases[i].want, "model.safetensors", cases[i].needle);
        if (cases[i].edit != e_overlap) CHECK_MSG(strstr(rr_errmsg(), "attention.self"), "no tensor name: %s", rr_errmsg());
    }
}

static void truncate_to(const char *dir, long keep_bytes_from_end_negative) {
    char path[600];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    struct stat st;
    REQUIRE(stat(path, &st) == 0);
    long n = keep_bytes_from_end_negative < 0 ? st.st_size + keep_bytes_from_end_negative : keep_bytes_from_end_negative;
    REQUIRE(truncate(path, n) == 0);
}

/* Word and position rows are read from the file at every pass (pread, on the pool's threads): a
 * file truncated under the loaded model gives RR_ERR_IO and a message naming the row, on the
 * calling thread, whichever thread met the short read; the process goes on. */
RR_TEST(model_file_truncated_after_load) {
    const char *dir = fresh_copy();
    if (!dir) SKIP("no generated models");
    rr_model_params mp = *rr_test_fp32();
    mp.n_threads = 2;
    rr_model *m = NULL;
    rr_ctx *c = NULL;
    REQUIRE(rr_model_load(dir, &mp, &m) == RR_OK);
    REQUIRE(rr_ctx_new(m, NULL, &c) == RR_OK);
    int32_t ids[40];
    for (int i = 0; i < 40; i++) ids[i] = i == 0 ? 0 : i == 39 ? 2 : 5 + i;
    rr_seq seq[2] = {{.ids = ids, .len = 40}, {.ids = ids, .len = 20}};
    float out[2];
    CHECK(rr_score_ids(c, seq, 2, out) == RR_OK);
    truncate_to(dir, 64);
    CHECK(rr_score_ids(c, seq, 2, out) == RR_ERR_IO);
    CHECK_MSG(strstr(rr_errmsg(), "cannot read row") && strstr(rr_errmsg(), "reload the model"), "%s", rr_errmsg());
    rr_ctx_free(c);
    rr_model_free(m);
}

RR_TEST(model_truncated_and_garbage_files) {
    if (!model_dir("xlmr_f32")) SKIP("no generated models");
    long cuts[] = {-1, -4096, 4, 0, 8, 20};
    for (size_t i = 0; i < RR_ARRAY_LEN(cuts); i++) {
        const char *dir = fresh_copy();
        truncate_to(dir, cuts[i]);
        expect_fail(dir, RR_ERR_FORMAT, "model.safetensors", NULL);
    }
    /* a header length that claims more than the file holds */
    const char *dir = fresh_copy();
    char path[600];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *f = fopen(path, "r+b");
    REQUIRE(f);
    fputc(0xff, f);
    fputc(0xff, f);
    fputc(0xff, f);
    fclose(f);
    expect_fail(dir, RR_ERR_FORMAT, "model.safetensors", "header length");
    /* garbage JSON in the header */
    dir = fresh_copy();
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    f = fopen(path, "r+b");
    REQUIRE(f);
    fseek(f, 8, SEEK_SET);
    fputs("{\"a\":[", f);
    fclose(f);
    expect_fail(dir, RR_ERR_FORMAT, "model.safetensors", "JSON");
    /* a valid file with no tensors */
    dir = fresh_copy();
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    f = fopen(path, "wb");
    REQUIRE(f);
    fwrite("\x08\0\0\0\0\0\0\0{}      ", 1, 16, f);
    fclose(f);
    expect_fail(dir, RR_ERR_FORMAT, "model.safetensors", "missing tensor");
    /* no weights at all */
    dir = fresh_copy();
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    REQUIRE(unlink(path) == 0);
    expect_fail(dir, RR_ERR_NOT_FOUND, "model.safetensors", NULL);
    /* not a folder */
    expect_fail("/nonexistent/model", RR_ERR_NOT_FOUND, "config.json", NULL);
}

/* Rewrites dir/config.json with key set to a JSON value (or removed when value is NULL). */
static void edit_config(const char *dir, const char *key, const char *value) {
    char path[600];
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *text;
    size_t n;
    REQUIRE(rr_file_read(path, 1 << 20, &text, &n) == RR_OK);
    cJSON *j = cJSON_Parse(text);
    rr_free(text);
    REQUIRE(j);
    cJSON_DeleteItemFromObject(j, key);
    if (value) cJSON_AddItemToObject(j, key, cJSON_Parse(value));
    char *out = cJSON_Print(j);
    write_text(path, out);
    cJSON_free(out);
    cJSON_Delete(j);
}

RR_TEST(model_malformed_configs) {
    struct {
        const char *key, *value;
        rr_status want;
        const char *needle;
    } cases[] = {
        {"architectures", "[\"GPT2LMHeadModel\"]", RR_ERR_UNSUPPORTED, "GPT2LMHeadModel"},
        {"architectures", NULL, RR_ERR_FORMAT, "architectures"},
        {"hidden_act", "\"relu\"", RR_ERR_UNSUPPORTED, "hidden_act"},
        {"hidden_act", "\"gelu_new\"", RR_ERR_UNSUPPORTED, "gelu_new"},
        {"hidden_size", NULL, RR_ERR_FORMAT, "hidden_size"},
        {"hidden_size", "\"64\"", RR_ERR_FORMAT, "hidden_size"},
        {"hidden_size", "63", RR_ERR_FORMAT, "num_attention_heads"},
        {"hidden_size", "128", RR_ERR_FORMAT, "from config.json"},
        {"num_hidden_layers", "3", RR_ERR_FORMAT, "encoder.layer.2"},
        {"num_hidden_layers", "-1", RR_ERR_FORMAT, "num_hidden_layers"},
        {"vocab_size", "32000", RR_ERR_FORMAT, "word_embeddings"},
        {"intermediate_size", "1.5", RR_ERR_FORMAT, "intermediate_size"},
        {"layer_norm_eps", "-1", RR_ERR_FORMAT, "layer_norm_eps"},
        {"position_embedding_type", "\"alibi\"", RR_ERR_UNSUPPORTED, "alibi"},
        {"id2label", "{\"0\":\"a\",\"1\":\"b\"}", RR_ERR_UNSUPPORTED, "labels"},
        {"max_position_embeddings", "600", RR_ERR_FORMAT, "position_embeddings"},
    };
    if (!model_dir("xlmr_f32")) SKIP("no generated models");
    for (size_t i = 0; i < RR_ARRAY_LEN(cases); i++) {
        const char *dir = fresh_copy();
        edit_config(dir, cases[i].key, cases[i].value);
        rr_model *m = NULL;
        rr_status s = rr_model_load(dir, rr_test_fp32(), &m);
        CHECK_MSG(s == cases[i].want, "case %zu (%s): status %d, message %s", i, cases[i].key, s, rr_errmsg());
        CHECK_MSG(strstr(rr_errmsg(), cases[i].needle), "case %zu: message lacks '%s': %s", i, cases[i].needle,
                  rr_errmsg());
        CHECK_MSG(strstr(rr_errmsg(), "config.json") || strstr(rr_errmsg(), "model.safetensors"),
                  "case %zu: no file named: %s", i, rr_errmsg());
        rr_model_free(m);
    }
    const char *dir = fresh_copy();
    char path[600];
    snprintf(path, sizeof path, "%s/config.json", dir);
    write_text(path, "{\"architectures\": [\"XLMRobertaForSequenceClassification\",");
    expect_fail(dir, RR_ERR_FORMAT, "config.json", "JSON");
    write_text(path, "[1, 2]");
    expect_fail(dir, RR_ERR_FORMAT, "config.json", NULL);
}

RR_TEST(model_malformed_shard_index) {
    const char *src = model_dir("xlmr_f32_sharded");
    if (!src) SKIP("no generated models");
    const char *dir = rr_test_tmpdir();
    char a[600], b[600];
    const char *files[] = {"config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"};
    for (int i = 0; i < 3; i++) {
        snprintf(a, sizeof a, "%s/%s", src, files[i]);
        snprintf(b, sizeof b, "%s/%s", dir, files[i]);
        copy_file(a, b);
    }
    char idx[600];
    snprintf(idx, sizeof idx, "%s/model.safetensors.index.json", dir);
    write_text(idx, "{\"weight_map\": {\"x\": \"../etc/passwd\"}}");
    expect_fail(dir, RR_ERR_FORMAT, "index.json", "shard name");
    write_text(idx, "{\"weight_map\": {}}");
    expect_fail(dir, RR_ERR_FORMAT, "weight_map", NULL);
    write_text(idx, "{\"weight_map\": {\"classifier.dense.weight\": \"model-00003-of-00003.safetensors\"}}");
    expect_fail(dir, RR_ERR_NOT_FOUND, "model-00003-of-00003.safetensors", NULL);
    write_text(idx, "{\"weight_map\": {\"no.such.tensor\": \"model-00001-of-00002.safetensors\", "
                    "\"classifier.dense.weight\": \"model-00002-of-00002.safetensors\"}}");
    expect_fail(dir, RR_ERR_FORMAT, "no.such.tensor", NULL);
    /* an index naming only one shard leaves tensors missing */
    snprintf(a, sizeof a, "%s/model.safetensors.index.json", src);
    copy_file(a, idx);
    snprintf(b, sizeof b, "%s/model-00002-of-00002.safetensors", dir);
    REQUIRE(unlink(b) == 0);
    expect_fail(dir, RR_ERR_NOT_FOUND, "model-00002-of-00002.safetensors", NULL);
}

/* Every allocation failure during load must surface as RR_ERR_NOMEM and leak nothing (ASan's leak
 * checker sees the rest). Weights without the tokenizer: every allocation in turn; with the
 * tokenizer (tens of thousands of allocations, each run reparsing tokenizer.json), 60 points spread
 * over the whole load. */
static void load_fault_sweep(const char *dir, int load_tokenizer, long max_points) {
    rr_model_params mp = rr_model_default_params();
    mp.load_tokenizer = load_tokenizer;
    rr_alloc_fail_after(0);
    rr_model *m = NULL;
    REQUIRE(rr_model_load(dir, &mp, &m) == RR_OK);
    rr_ctx *c = NULL;
    REQUIRE(rr_ctx_new(m, NULL, &c) == RR_OK);
    long total = rr_alloc_fail_after(0);
    rr_ctx_free(c);
    rr_model_free(m);
    REQUIRE(total > 10);
    long step = total > max_points ? total / max_points : 1;
    int tried = 0, failures = 0;
    for (long k = 1; k <= total; k += step) {
        m = NULL;
        c = NULL;
        tried++;
        rr_alloc_fail_after(k);
        rr_status s = rr_model_load(dir, &mp, &m);
        if (s == RR_OK) s = rr_ctx_new(m, NULL, &c);
        rr_alloc_fail_after(0);
        if (s != RR_OK) {
            failures++;
            CHECK_MSG(s == RR_ERR_NOMEM, "failing allocation %ld gave %s: %s", k, rr_status_str(s), rr_errmsg());
        }
        rr_ctx_free(c);
        rr_model_free(m);
    }
    CHECK_MSG(failures == tried, "%d of %d injected failures were reported", failures, tried);
}

RR_TEST(model_load_fault_injection) {
    const char *dir = model_dir("bert_bf16");
    if (!dir) SKIP("no generated models");
    load_fault_sweep(dir, 0, 1000000);
    load_fault_sweep(dir, 1, 60);
}

/* The default precision is auto: bf16 where the kernel table multiplies bf16 natively, else fp32;
 * forcing a table (as $RR_ISA does) moves the default with it. */
RR_TEST(model_default_precision_follows_isa) {
    const char *dir = rr_test_data_path("models/jina_f32");
    if (!dir || !rr_file_exists(dir)) SKIP("no generated models (tools/gen_models.py)");
    CHECK(rr_model_default_params().precision == RR_PRECISION_AUTO);
    static const struct {
        const char *isa;
        rr_precision want;
    } cases[] = {{"scalar", RR_PRECISION_FP32}, {"avx2", RR_PRECISION_FP32}, {"avx512", RR_PRECISION_FP32},
                 {"avx512bf16", RR_PRECISION_BF16}};
    int ran = 0;
    for (size_t i = 0; i < RR_ARRAY_LEN(cases); i++) {
        REQUIRE(rr_kern_select(cases[i].isa) == RR_OK);
        if (strcmp(rr_kern_name(rr_kern_get()), cases[i].isa)) continue; /* this CPU cannot run it */
        rr_model *m = NULL;
        REQUIRE(rr_model_load(dir, NULL, &m) == RR_OK);
        rr_model_info info;
        rr_model_get_info(m, &info);
        CHECK_MSG(info.precision == cases[i].want, "RR_ISA=%s: default precision %s, want %s", cases[i].isa,
                  rr_precision_name(info.precision), rr_precision_name(cases[i].want));
        CHECK(!strcmp(info.kernels, cases[i].isa));
        rr_model_free(m);
        ran++;
    }
    rr_kern_select(getenv("RR_ISA"));
    CHECK(ran >= 1);
}

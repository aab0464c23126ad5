/*
 * test_decoder.c -- the Qwen3 / Qwen2 decoder rerankers: exact scores against the float64 reference of
 * tools/gen_decoder.py (random weights, F32/F16/BF16, tied and untied lm_head, a converted classifier,
 * mixed lengths up to 4,500 tokens), packing, every kernel table and precision, template resolution,
 * and clean refusals of malformed folders.
 *
 * The models are loaded without their tokenizer: these tests score token ids, so they hold whether or
 * not the tokenizer can read Qwen's tokenizer.json.
 */
#include "check.h"
#include "golden.h"
#include "core/core.h"
#include "kernels/kernels.h"
#include "score/prompt.h"
#include "server/request.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *dec_dir(const char *name) {
    char rel[256];
    snprintf(rel, sizeof rel, "models/%s", name);
    const char *p = rr_test_data_path(rel);
    struct stat st;
    return p && stat(p, &st) == 0 ? p : NULL;
}

static rr_status load(const char *dir, rr_precision p, rr_template t, rr_model **m) {
    rr_model_params mp = rr_model_default_params();
    mp.load_tokenizer = 0;
    mp.precision = p;
    mp.prompt = t;
    return rr_model_load(dir, &mp, m);
}

/* max |raw - reference| over the golden sequences of `name`, packed (one call) or one by one; -1 when
 * the data is missing */
static double maxdiff(const char *name, const char *golden, rr_precision p, int one_by_one) {
    rr_golden g;
    const char *dir = dec_dir(name);
    if (!dir || !rr_golden_load(golden, &g)) return -1;
    rr_model *m = NULL;
    rr_status s = load(dir, p, RR_TEMPLATE_AUTO, &m);
    CHECK_MSG(s == RR_OK, "load %s: %s", name, rr_errmsg());
    if (s) {
        rr_golden_free(&g);
        return 1e9;
    }
    rr_ctx *c;
    REQUIRE(rr_ctx_new(m, NULL, &c) == RR_OK);
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

RR_TEST(dec_golden_fp32_all_models) {
    static const char *names[] = {"dec_qwen3_f32",        "dec_qwen3_f16",        "dec_qwen3_bf16",
                                  "dec_qwen3_untied_f32", "dec_qwen3_seqcls_f32", "dec_qwen2_f32",
                                  "dec_qwen2_f16",        "dec_qwen2_bf16"};
    int ran = 0;
    for (size_t i = 0; i < RR_ARRAY_LEN(names); i++) {
        double packed = maxdiff(names[i], names[i], RR_PRECISION_FP32, 0);
        if (packed < 0) continue;
        ran++;
        double single = maxdiff(names[i], names[i], RR_PRECISION_FP32, 1);
        printf("    %-22s fp32 max |raw - ref| packed %.3g, one by one %.3g\n", names[i], packed, single);
        CHECK_MSG(packed <= 1e-4, "%s packed: %.3g > 1e-4", names[i], packed);
        CHECK_MSG(single <= 1e-4, "%s one by one: %.3g > 1e-4", names[i], single);
    }
    if (!ran) SKIP("no generated decoder models (tools/gen_decoder.py)");
    CHECK_EQ_INT(ran, 8);
}

/* The f32 goldens end with a 4,500-token sequence: the long-position RoPE and tiled attention. */
RR_TEST(dec_golden_has_long_sequence) {
    rr_golden g;
    if (!rr_golden_load("dec_qwen3_f32", &g)) SKIP("no generated decoder models");
    int longest = 0;
    for (int i = 0; i < g.n; i++) longest = RR_MAX(longest, g.seq[i].len);
    CHECK(longest > 4096);
    rr_golden_free(&g);
}

/* The converted one-row classifier gives the yes/no difference of the causal model it came from. */
RR_TEST(dec_classifier_equals_yes_no) {
    rr_golden g;
    const char *a = dec_dir("dec_qwen3_f32"), *b = dec_dir("dec_qwen3_seqcls_f32");
    if (!a || !b || !rr_golden_load("dec_qwen3_seqcls_f32", &g)) SKIP("no generated decoder models");
    rr_model *ma, *mb;
    REQUIRE(load(a, RR_PRECISION_FP32, RR_TEMPLATE_AUTO, &ma) == RR_OK);
    REQUIRE(load(b, RR_PRECISION_FP32, RR_TEMPLATE_AUTO, &mb) == RR_OK);
    rr_model_info ia, ib;
    rr_model_get_info(ma, &ia);
    rr_model_get_info(mb, &ib);
    CHECK_EQ_INT(ia.family, RR_FAMILY_QWEN3);
    CHECK_EQ_INT(ib.family, RR_FAMILY_QWEN3_CLS);
    CHECK_EQ_INT(ib.prompt, RR_TEMPLATE_QWEN3_RERANKER);
    rr_ctx *ca, *cb;
    REQUIRE(rr_ctx_new(ma, NULL, &ca) == RR_OK);
    REQUIRE(rr_ctx_new(mb, NULL, &cb) == RR_OK);
    float ra[RR_GOLDEN_MAX], rb[RR_GOLDEN_MAX];
    CHECK(rr_score_ids(ca, g.seq, g.n, ra) == RR_OK);
    CHECK(rr_score_ids(cb, g.seq, g.n, rb) == RR_OK);
    for (int i = 0; i < g.n; i++) CHECK_NEAR(ra[i], rb[i], 1e-5);
    rr_ctx_free(ca);
    rr_ctx_free(cb);
    rr_model_free(ma);
    rr_model_free(mb);
    rr_golden_free(&g);
}

/* A sequence's score does not depend on its neighbours: reversed order and pairs of sequences. */
RR_TEST(dec_packing_is_independent_of_neighbours) {
    rr_golden g;
    const char *dir = dec_dir("dec_qwen2_f32");
    if (!dir || !rr_golden_load("dec_qwen2_f32", &g)) SKIP("no generated decoder models");
    rr_model *m;
    REQUIRE(load(dir, RR_PRECISION_FP32, RR_TEMPLATE_AUTO, &m) == RR_OK);
    rr_ctx *c;
    REQUIRE(rr_ctx_new(m, NULL, &c) == RR_OK);
    float ref[RR_GOLDEN_MAX], out[RR_GOLDEN_MAX];
    CHECK(rr_score_ids(c, g.seq, g.n, ref) == RR_OK);
    rr_seq rev[RR_GOLDEN_MAX];
    for (int i = 0; i < g.n; i++) rev[i] = g.seq[g.n - 1 - i];
    CHECK(rr_score_ids(c, rev, g.n, out) == RR_OK);
    for (int i = 0; i < g.n; i++) CHECK_NEAR(out[g.n - 1 - i], ref[i], 1e-5);
    for (int i = 0; i + 1 < g.n; i++) {
        rr_seq two[2] = {g.seq[i + 1], g.seq[i]};
        float o2[2];
        CHECK(rr_score_ids(c, two, 2, o2) == RR_OK);
        CHECK_NEAR(o2[0], ref[i + 1], 1e-5);
        CHECK_NEAR(o2[1], ref[i], 1e-5);
    }
    rr_ctx_free(c);
    rr_model_free(m);
    rr_golden_free(&g);
}

/* fp32 on every kernel table within 1e-4; bf16 and int8 reported (random models amplify rounding:
 * raw scores span about -15..17) and held to loose bounds that catch a broken kernel; int8's bound
 * scales with the table's weight step (127 / Q: twice as wide with avx2's 7-bit weights). */
RR_TEST(dec_every_table_and_precision) {
    static const char *models[] = {"dec_qwen3_bf16", "dec_qwen2_f16"}; /* no 4,500-token line */
    int ran = 0;
    for (int isa = 0; isa < RR_KERN_ISA_COUNT; isa++) {
        if (!rr_kern_table_for((rr_kern_isa)isa)) continue;
        REQUIRE(rr_kern_select(rr_kern_isa_name((rr_kern_isa)isa)) == RR_OK);
        for (size_t mi = 0; mi < RR_ARRAY_LEN(models); mi++)
            for (int p = RR_PRECISION_FP32; p <= RR_PRECISION_INT8; p++) {
                double d = maxdiff(models[mi], models[mi], (rr_precision)p, 0);
                if (d < 0) continue;
                ran++;
                double tol = p == RR_PRECISION_FP32 ? 1e-4 : p == RR_PRECISION_BF16 ? 0.6
                                                        : 1.2 * 127 / rr_kern_int8_wmax(NULL);
                printf("    %-10s %-15s %s: max |raw - ref| %.3g\n", rr_kern_isa_name((rr_kern_isa)isa), models[mi],
                       p == 1 ? "fp32" : p == 2 ? "bf16" : "int8", d);
                CHECK_MSG(d <= tol, "%s %s precision %d: %.3g > %.3g", rr_kern_isa_name((rr_kern_isa)isa),
                          models[mi], p, d, tol);
            }
    }
    rr_kern_select(NULL);
    if (!ran) SKIP("no generated decoder models");
}

/* A temporary folder holding links to `name`'s files, minus `skip` (NULL: none). */
static const char *link_model(const char *name, const char *skip) {
    const char *rel = dec_dir(name);
    char src[4096];
    if (!rel || !realpath(rel, src)) return NULL; /* links are resolved from their own folder */
    static char dir[512];
    snprintf(dir, sizeof dir, "%s/%s_%s", rr_test_tmpdir(), name, skip ? skip : "all");
    mkdir(dir, 0755);
    static const char *files[] = {"config.json", "model.safetensors", "README.md"};
    for (size_t i = 0; i < RR_ARRAY_LEN(files); i++) {
        if (skip && !strcmp(files[i], skip)) continue;
        char a[4200], b[768];
        snprintf(a, sizeof a, "%s/%s", src, files[i]);
        snprintf(b, sizeof b, "%s/%s", dir, files[i]);
        if (access(a, F_OK) == 0 && symlink(a, b) != 0) return NULL;
    }
    return dir;
}

static void write_file(const char *dir, const char *fn, const char *text) {
    char p[768];
    snprintf(p, sizeof p, "%s/%s", dir, fn);
    unlink(p);
    FILE *f = fopen(p, "w");
    REQUIRE(f);
    fputs(text, f);
    fclose(f);
}

RR_TEST(dec_template_resolution) {
    const char *q2 = dec_dir("dec_qwen2_f32"), *q3 = dec_dir("dec_qwen3_f32");
    if (!q2 || !q3) SKIP("no generated decoder models");
    rr_model *m;
    rr_model_info info;
    /* the model card names mxbai-rerank-base-v2 */
    REQUIRE(load(q2, RR_PRECISION_FP32, RR_TEMPLATE_AUTO, &m) == RR_OK);
    rr_model_get_info(m, &info);
    CHECK_EQ_INT(info.family, RR_FAMILY_QWEN2);
    CHECK_EQ_INT(info.prompt, RR_TEMPLATE_MXBAI_V2);
    CHECK_EQ_INT(info.head_dim, 64);
    CHECK_EQ_INT(info.n_kv_heads, 1);
    CHECK_EQ_INT(info.max_length, 8192 + 256);
    CHECK(info.default_instruction == NULL);
    rr_model_free(m);
    /* the architecture alone: Qwen3 -> Qwen3-Reranker */
    REQUIRE(load(q3, RR_PRECISION_FP32, RR_TEMPLATE_AUTO, &m) == RR_OK);
    rr_model_get_info(m, &info);
    CHECK_EQ_INT(info.prompt, RR_TEMPLATE_QWEN3_RERANKER);
    CHECK_EQ_INT(info.head_dim, 128);
    CHECK_EQ_INT(info.n_heads, 4);
    CHECK_EQ_INT(info.n_kv_heads, 2);
    CHECK(info.default_instruction && strstr(info.default_instruction, "web search query"));
    rr_model_free(m);
    /* a Qwen2 folder without a card: refused, naming --template; an explicit template loads it */
    const char *bare = link_model("dec_qwen2_f32", "README.md");
    REQUIRE(bare);
    CHECK(load(bare, RR_PRECISION_FP32, RR_TEMPLATE_AUTO, &m) == RR_ERR_UNSUPPORTED);
    CHECK(strstr(rr_errmsg(), "--template") != NULL);
    REQUIRE(load(bare, RR_PRECISION_FP32, RR_TEMPLATE_MXBAI_V2, &m) == RR_OK);
    rr_model_free(m);
    /* a card whose title names Qwen3-Reranker gives that prompt (and the yes/no rows) */
    write_file(bare, "README.md", "---\nlicense: apache-2.0\n---\n\n# Qwen3-Reranker-0.6B\n\nText mentioning mxbai-rerank.\n");
    REQUIRE(load(bare, RR_PRECISION_FP32, RR_TEMPLATE_AUTO, &m) == RR_OK);
    rr_model_get_info(m, &info);
    CHECK_EQ_INT(info.prompt, RR_TEMPLATE_QWEN3_RERANKER);
    rr_model_free(m);
    /* front matter naming mxbai, title naming neither */
    write_file(bare, "README.md", "---\nbase_model: mixedbread-ai/mxbai-rerank-base-v2\n---\n# A fine-tune\n");
    REQUIRE(load(bare, RR_PRECISION_FP32, RR_TEMPLATE_AUTO, &m) == RR_OK);
    rr_model_get_info(m, &info);
    CHECK_EQ_INT(info.prompt, RR_TEMPLATE_MXBAI_V2);
    rr_model_free(m);
    /* the explicit choice wins over the card */
    REQUIRE(load(q2, RR_PRECISION_FP32, RR_TEMPLATE_QWEN3_RERANKER, &m) == RR_OK);
    rr_model_get_info(m, &info);
    CHECK_EQ_INT(info.prompt, RR_TEMPLATE_QWEN3_RERANKER);
    rr_model_free(m);
    CHECK(load(q3, RR_PRECISION_FP32, RR_TEMPLATE_NONE, &m) == RR_ERR_INVALID);
    /* encoders refuse a decoder template */
    const char *enc = rr_test_data_path("models/bert_f32");
    if (enc && access(enc, F_OK) == 0) {
        CHECK(load(enc, RR_PRECISION_FP32, RR_TEMPLATE_MXBAI_V2, &m) == RR_ERR_INVALID);
        REQUIRE(load(enc, RR_PRECISION_FP32, RR_TEMPLATE_AUTO, &m) == RR_OK);
        rr_model_get_info(m, &info);
        CHECK_EQ_INT(info.prompt, RR_TEMPLATE_NONE);
        rr_model_free(m);
    }
    CHECK_EQ_INT(rr_template_parse("qwen3-reranker"), RR_TEMPLATE_QWEN3_RERANKER);
    CHECK_EQ_INT(rr_template_parse("mxbai-rerank-v2"), RR_TEMPLATE_MXBAI_V2);
    CHECK_EQ_INT(rr_template_parse("qwen3"), -1);
}

/* config.json edits that must be refused with a message naming the field or tensor. */
RR_TEST(dec_malformed_configs) {
    const char *src = dec_dir("dec_qwen3_f32");
    if (!src) SKIP("no generated decoder models");
    char path[768];
    snprintf(path, sizeof path, "%s/config.json", src);
    char *base = NULL;
    size_t len;
    REQUIRE(rr_file_read(path, 1 << 20, &base, &len) == RR_OK);
    static const struct {
        const char *from, *to, *expect;
        rr_status st;
    } cases[] = {
        {"\"num_key_value_heads\": 2", "\"num_key_value_heads\": 3", "num_key_value_heads", RR_ERR_FORMAT},
        {"\"head_dim\": 128", "\"head_dim\": 64", "q_proj", RR_ERR_FORMAT},
        {"\"rope_scaling\": null", "\"rope_scaling\": {\"type\": \"yarn\", \"factor\": 4}", "rope_scaling",
         RR_ERR_UNSUPPORTED},
        {"\"hidden_act\": \"silu\"", "\"hidden_act\": \"gelu\"", "hidden_act", RR_ERR_UNSUPPORTED},
        {"\"use_sliding_window\": false", "\"use_sliding_window\": true", "sliding", RR_ERR_UNSUPPORTED},
        {"\"tie_word_embeddings\": true", "\"tie_word_embeddings\": false", "lm_head.weight", RR_ERR_FORMAT},
        {"\"intermediate_size\": 160", "\"intermediate_size\": 161", "gate_proj", RR_ERR_FORMAT},
        {"\"model_type\": \"qwen3\"", "\"model_type\": \"qwen2\"", "model_type", RR_ERR_UNSUPPORTED},
    };
    for (size_t i = 0; i < RR_ARRAY_LEN(cases); i++) {
        const char *dir = link_model("dec_qwen3_f32", "config.json");
        REQUIRE(dir);
        const char *at = strstr(base, cases[i].from);
        CHECK_MSG(at, "config.json has no %s", cases[i].from);
        if (!at) continue;
        char *edited = malloc(len + 256);
        REQUIRE(edited);
        size_t pre = (size_t)(at - base);
        memcpy(edited, base, pre);
        strcpy(edited + pre, cases[i].to);
        strcat(edited, at + strlen(cases[i].from));
        write_file(dir, "config.json", edited);
        free(edited);
        rr_model *m = NULL;
        rr_status s = load(dir, RR_PRECISION_FP32, RR_TEMPLATE_AUTO, &m);
        CHECK_MSG(s == cases[i].st, "%s: status %d (%s)", cases[i].to, s, rr_errmsg());
        CHECK_MSG(strstr(rr_errmsg(), cases[i].expect), "%s: message \"%s\" lacks \"%s\"", cases[i].to, rr_errmsg(),
                  cases[i].expect);
        CHECK(m == NULL);
        rr_model_free(m);
    }
    rr_free(base);
}

/* Sequences are checked before a pass: empty, too long, ids outside the vocabulary. */
RR_TEST(dec_bad_sequences) {
    const char *dir = dec_dir("dec_qwen3_bf16");
    if (!dir) SKIP("no generated decoder models");
    rr_model *m;
    REQUIRE(load(dir, RR_PRECISION_FP32, RR_TEMPLATE_AUTO, &m) == RR_OK);
    rr_ctx *c;
    REQUIRE(rr_ctx_new(m, NULL, &c) == RR_OK);
    static int32_t ids[8500];
    for (int i = 0; i < 8500; i++) ids[i] = i * 17 % 151669;
    float out;
    rr_seq s = {ids, NULL, 0, NULL, 0};
    CHECK(rr_score_ids(c, &s, 1, &out) == RR_ERR_RANGE);
    s.len = 8192 + 256 + 1;
    CHECK(rr_score_ids(c, &s, 1, &out) == RR_ERR_RANGE);
    s.len = 3;
    ids[1] = 151669;
    CHECK(rr_score_ids(c, &s, 1, &out) == RR_ERR_INVALID);
    ids[1] = 5;
    CHECK(rr_score_ids(c, &s, 1, &out) == RR_OK);
    CHECK(isfinite(out));
    rr_ctx_free(c);
    rr_model_free(m);
}

/* ------------------------------------------------------------------ prompts (need the Qwen tokenizer) */

/* ids of line `name` of shared's qwen3 reference_ids.jsonl into out (n entries); 0 when missing */
static int ref_ids(const char *name, int32_t *out, int cap) {
    const char *path = rr_test_shared_path("fixtures/tokenizers/qwen3/reference_ids.jsonl");
    FILE *f = path ? fopen(path, "r") : NULL;
    if (!f) return 0;
    char *line = NULL;
    size_t lcap = 0;
    int n = 0;
    char key[128];
    snprintf(key, sizeof key, "\"name\":\"%s\"", name);
    while (getline(&line, &lcap, f) > 0) {
        if (!strstr(line, key)) continue;
        const char *p = strstr(line, "\"ids\":[");
        if (!p) break;
        p += 7;
        while (*p && *p != ']' && n < cap) {
            out[n++] = (int32_t)strtol(p, (char **)&p, 10);
            if (*p == ',') p++;
        }
        break;
    }
    free(line);
    fclose(f);
    return n;
}

/* A decoder folder loaded with its tokenizer; SKIPs when the tokenizer cannot read Qwen's file. */
static rr_model *with_tokenizer(const char *name) {
    const char *dir = dec_dir(name);
    if (!dir || !rr_test_shared()) SKIP("no generated decoder models or no ../shared");
    rr_model *m = NULL;
    if (rr_model_load(dir, NULL, &m) != RR_OK) {
        printf("    (%s)\n", rr_errmsg());
        SKIP("the tokenizer cannot load the Qwen tokenizer.json");
    }
    if (!rr_model_tokenizer(m)) {
        rr_model_free(m);
        SKIP("no tokenizer.json in the decoder test folder");
    }
    return m;
}

#define CHINA_Q "What is the capital of China?"
#define CHINA_D "The capital of China is Beijing."

/* The Qwen3-Reranker prompt of the README example equals the reference code's 85 ids, the score rows
 * are the "yes"/"no" pieces, and rr_rank / rr_score_pairs score exactly those ids. */
RR_TEST(dec_prompt_qwen3_reference_ids) {
    rr_model *m = with_tokenizer("dec_qwen3_f32");
    int32_t want[256];
    int n = ref_ids("qwen3_reranker_full_example", want, 256);
    CHECK_EQ_INT(n, 85);
    CHECK_EQ_INT(m->dec->head_ids[0], 9693);
    CHECK_EQ_INT(m->dec->head_ids[1], 2152);
    rr_prompt pr;
    rr_encoding e = {0};
    rr_text q = {CHINA_Q, strlen(CHINA_Q)}, d = {CHINA_D, strlen(CHINA_D)};
    REQUIRE(rr_prompt_init(&pr, m, q, (rr_text){NULL, 0}, 0) == RR_OK);
    REQUIRE(rr_prompt_doc(&pr, d, &e) == RR_OK);
    CHECK_EQ_INT(e.len, n);
    for (int i = 0; i < n && i < (int)e.len; i++) CHECK_MSG(e.ids[i] == want[i], "id %d: %d != %d", i, e.ids[i], want[i]);
    /* the same document twice: the query head is reused unchanged */
    REQUIRE(rr_prompt_doc(&pr, d, &e) == RR_OK);
    CHECK_EQ_INT(e.len, n);
    rr_prompt_free(&pr);
    rr_ctx *c;
    REQUIRE(rr_ctx_new(m, NULL, &c) == RR_OK);
    rr_seq s = {want, NULL, n, NULL, 0};
    float raw, score, ranked;
    REQUIRE(rr_score_ids(c, &s, 1, &raw) == RR_OK);
    REQUIRE(rr_score_pairs(c, &q, &d, 1, NULL, &score, NULL) == RR_OK);
    CHECK_NEAR(score, rr_sigmoid(raw), 1e-6);
    rr_rank_result res[2];
    int nr;
    rr_text docs[2] = {d, {"", 0}};
    rr_usage u;
    REQUIRE(rr_rank(c, q, docs, 2, NULL, res, &nr, &u) == RR_OK);
    CHECK_EQ_INT(nr, 2);
    ranked = res[0].index == 0 ? res[0].score : res[1].score;
    CHECK_NEAR(ranked, rr_sigmoid(raw), 1e-6);
    /* an explicit instruction changes the prompt (and so the score) */
    rr_rank_params rp = rr_rank_default_params();
    rp.instruction = (rr_text){"Find the city", 13};
    rp.raw = 1;
    REQUIRE(rr_rank(c, q, docs, 1, &rp, res, &nr, NULL) == RR_OK);
    CHECK(fabsf(res[0].score - raw) > 1e-6f);
    rr_text instr = rp.instruction;
    float s2;
    rr_score_params sp = rr_score_default_params();
    sp.raw = true;
    REQUIRE(rr_score_pairs_instructed(c, &q, &d, &instr, 1, &sp, &s2, NULL) == RR_OK);
    CHECK_NEAR(s2, res[0].score, 1e-6);
    /* a long document is cut from the right to max_length */
    rp = rr_rank_default_params();
    rp.max_length = 60;
    REQUIRE(rr_rank(c, q, docs, 1, &rp, res, &nr, &u) == RR_OK);
    CHECK_EQ_INT(u.total_tokens, 60);
    rr_ctx_free(c);
    rr_encoding_free(&e);
    rr_model_free(m);
}

/* mxbai-rerank-v2: prefix + query piece + "\n" + document piece + "\n" + task + suffix, "1"/"0" rows. */
RR_TEST(dec_prompt_mxbai_reference_ids) {
    rr_model *m = with_tokenizer("dec_qwen2_f32");
    static const char *pieces[] = {"mxbai_prefix", "mxbai_query_piece", "mxbai_sep", "mxbai_doc_piece",
                                   "mxbai_sep",    "mxbai_task_prompt", "mxbai_suffix"};
    int32_t want[512];
    int n = 0;
    for (size_t i = 0; i < RR_ARRAY_LEN(pieces); i++) {
        int k = ref_ids(pieces[i], want + n, 512 - n);
        CHECK_MSG(k > 0, "no reference line %s", pieces[i]);
        n += k;
    }
    CHECK_EQ_INT(m->dec->head_ids[0], 16);
    CHECK_EQ_INT(m->dec->head_ids[1], 15);
    rr_prompt pr;
    rr_encoding e = {0};
    rr_text q = {CHINA_Q, strlen(CHINA_Q)}, d = {CHINA_D, strlen(CHINA_D)};
    REQUIRE(rr_prompt_init(&pr, m, q, (rr_text){NULL, 0}, 0) == RR_OK);
    REQUIRE(rr_prompt_doc(&pr, d, &e) == RR_OK);
    CHECK_EQ_INT(e.len, n);
    for (int i = 0; i < n && i < (int)e.len; i++) CHECK_MSG(e.ids[i] == want[i], "id %d: %d != %d", i, e.ids[i], want[i]);
    rr_prompt_free(&pr);
    /* with an instruction the query piece becomes "instruction: ...\nquery: ..." and grows */
    REQUIRE(rr_prompt_init(&pr, m, q, (rr_text){"Find the city", 13}, 0) == RR_OK);
    REQUIRE(rr_prompt_doc(&pr, d, &e) == RR_OK);
    CHECK((int)e.len > n);
    rr_prompt_free(&pr);
    rr_encoding_free(&e);
    rr_model_free(m);
}

/* ------------------------------------------------------------------ long documents */

/* Words that are one token each after a space in the Qwen vocabulary: a document made of them has
 * one id per word, so a window of its ids is the text of a window of its words. */
static const char *const WORDS[] = {" the", " city", " river", " capital", " of", " and", " is", " a",
                                    " history", " people", " old", " new", " north", " south", " water",
                                    " long", " time", " first", " state", " world"};

/* doc = n words (the first without its space); returns its length */
static size_t words_text(char *buf, int from, int n) {
    size_t at = 0;
    for (int i = from; i < from + n; i++) {
        const char *w = WORDS[(i * 7 + i / 3) % RR_ARRAY_LEN(WORDS)];
        if (i == from) w++;
        memcpy(buf + at, w, strlen(w));
        at += strlen(w);
    }
    buf[at] = 0;
    return at;
}

static float rank_raw(rr_ctx *c, rr_text q, rr_text d, rr_rank_params p, long *tokens) {
    rr_rank_result res;
    int n = 0;
    rr_usage u = {0};
    p.raw = true;
    rr_status s = rr_rank(c, q, &d, 1, &p, &res, &n, &u);
    CHECK_MSG(s == RR_OK, "rr_rank: %s", rr_errmsg());
    if (tokens) *tokens = u.total_tokens;
    return s ? NAN : res.score;
}

static float score_raw(rr_ctx *c, rr_text q, rr_text d, long *tokens) {
    rr_score_params sp = rr_score_default_params();
    sp.raw = true;
    float out = NAN;
    rr_usage u = {0};
    CHECK(rr_score_pairs(c, &q, &d, 1, &sp, &out, &u) == RR_OK);
    if (tokens) *tokens = u.total_tokens;
    return out;
}

/* Windows, truncation and max_doc_tokens over a decoder prompt's document equal scoring the texts of
 * those windows one by one with the reference's prompt (each short enough to be scored whole). */
static void windows_equal_texts(const char *name) {
    rr_model *m = with_tokenizer(name);
    const rr_tokenizer *t = rr_model_tokenizer(m);
    rr_encoding e = {0};
    rr_encode_params ep = rr_encode_default_params();
    ep.add_special = false;
    for (size_t i = 0; i < RR_ARRAY_LEN(WORDS); i++) {
        REQUIRE(rr_tokenizer_encode(t, (rr_text){WORDS[i], strlen(WORDS[i])}, NULL, &ep, &e) == RR_OK);
        CHECK_MSG(e.len == 1, "'%s' is %zu tokens", WORDS[i], e.len);
    }
    rr_encoding_free(&e);
    rr_ctx *c;
    REQUIRE(rr_ctx_new(m, NULL, &c) == RR_OK);
    enum { L = 300 };
    static char doc[L * 16], win[L * 16];
    rr_text q = {CHINA_Q, strlen(CHINA_Q)}, d = {doc, words_text(doc, 0, L)};
    rr_rank_params p = rr_rank_default_params();
    p.max_length = 120;
    p.overlap = 9;
    /* the prompt around the document: from a one-word document, then M from one truncated prompt */
    long one, trunc;
    p.long_doc = RR_LONG_DOC_TRUNCATE_RIGHT;
    rank_raw(c, q, (rr_text){"the", 3}, p, &one);
    float right = rank_raw(c, q, d, p, &trunc);
    int M = (int)(trunc - (one - 1)), ov = RR_MIN(p.overlap, M / 4);
    printf("    %s: prompt %ld ids around the document, %d document ids per window, overlap %d\n", name, one - 1, M,
           ov);
    CHECK(M > 8 && M < L);
    /* the windows' texts, scored one by one with the default (reference) prompt */
    float best = -INFINITY, first = NAN, last = NAN;
    int n_win = 0;
    for (int start = 0;; start += M - ov) {
        int from = start + M >= L ? L - M : start;
        long tok;
        float s = score_raw(c, q, (rr_text){win, words_text(win, from, M)}, &tok);
        CHECK_EQ_INT(tok, trunc); /* the whole window text fits: nothing was cut */
        if (n_win++ == 0) first = s;
        last = s;
        best = fmaxf(best, s);
        if (from == L - M) break;
    }
    CHECK(n_win >= 3);
    p.long_doc = RR_LONG_DOC_WINDOW;
    long total;
    float windowed = rank_raw(c, q, d, p, &total);
    CHECK_NEAR(windowed, best, 1e-4);
    CHECK_EQ_INT(total, (long)n_win * trunc);
    CHECK_NEAR(right, first, 1e-4);
    p.long_doc = RR_LONG_DOC_TRUNCATE_LEFT;
    CHECK_NEAR(rank_raw(c, q, d, p, NULL), last, 1e-4);
    /* max_doc_tokens cuts the document's ids first, in every mode; the reference cut by default */
    p.long_doc = RR_LONG_DOC_AUTO;
    p.max_doc_tokens = M / 2;
    CHECK_NEAR(rank_raw(c, q, d, p, NULL), score_raw(c, q, (rr_text){win, words_text(win, 0, M / 2)}, NULL), 1e-4);
    p.long_doc = RR_LONG_DOC_TRUNCATE_LEFT;
    CHECK_NEAR(rank_raw(c, q, d, p, NULL), score_raw(c, q, (rr_text){win, words_text(win, L - M / 2, M / 2)}, NULL),
               1e-4);
    /* a document that fits scores the same in every mode */
    p.max_doc_tokens = 0;
    rr_text shortd = {win, words_text(win, 5, M - 1)};
    float whole = score_raw(c, q, shortd, NULL);
    for (int ld = RR_LONG_DOC_WINDOW; ld <= RR_LONG_DOC_AUTO; ld++) {
        p.long_doc = (rr_long_doc)ld;
        CHECK_NEAR(rank_raw(c, q, shortd, p, NULL), whole, 1e-4);
    }
    /* the default is still the reference's cut: the whole prompt at max_length, the first window's text */
    p = rr_rank_default_params();
    p.max_length = 120;
    rank_raw(c, q, d, p, &total);
    CHECK_EQ_INT(total, trunc);
    /* a long query keeps max_query_length ids in windows: every prompt is then full */
    static char lq[64 * 16];
    rr_text longq = {lq, words_text(lq, 3, 64)};
    p.long_doc = RR_LONG_DOC_TRUNCATE_RIGHT;
    p.max_query_length = 30;
    long tq;
    rank_raw(c, longq, d, p, &tq);
    CHECK_EQ_INT(tq, trunc);
    p.max_query_length = 1 << 20;
    p.max_length = 70; /* the query alone leaves no room */
    rr_rank_result res;
    int nr;
    if (m->dec->prompt == RR_TEMPLATE_QWEN3_RERANKER) {
        CHECK(rr_rank(c, longq, &d, 1, &p, &res, &nr, NULL) == RR_ERR_RANGE);
        CHECK(strstr(rr_errmsg(), "no room") != NULL);
    }
    rr_ctx_free(c);
    rr_model_free(m);
}

RR_TEST(dec_windows_equal_window_texts_qwen3) {
    windows_equal_texts("dec_qwen3_f32");
}

RR_TEST(dec_windows_equal_window_texts_mxbai) {
    windows_equal_texts("dec_qwen2_f32");
}

/* Every allocation of a decoder load (config, card, weights, packing) and of its context fails in
 * turn: each must come back as RR_ERR_NOMEM, with nothing leaked (ASan runs this too). */
RR_TEST(dec_load_fault_injection) {
    const char *dir = dec_dir("dec_qwen2_bf16");
    if (!dir) SKIP("no generated decoder models");
    rr_model_params mp = rr_model_default_params();
    mp.load_tokenizer = 0;
    rr_alloc_fail_after(0);
    rr_model *m = NULL;
    REQUIRE(rr_model_load(dir, &mp, &m) == RR_OK);
    rr_ctx *c = NULL;
    REQUIRE(rr_ctx_new(m, NULL, &c) == RR_OK);
    long total = rr_alloc_fail_after(0);
    rr_ctx_free(c);
    rr_model_free(m);
    REQUIRE(total > 10);
    int tried = 0, failures = 0;
    for (long k = 1; k <= total; k++) {
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

/* ------------------------------------------------------------------ the causal attention kernels */

/* Naive double-precision causal grouped-query attention of one packed batch (all query rows, or each
 * sequence's last row into row s). */
static void naive_causal(const float *qkv, int W, const int *cu, int n_seq, int nh, int nkv, int d, int last_only,
                         double *out) {
    int A = nh * d;
    for (int s = 0; s < n_seq; s++)
        for (int t = last_only ? cu[s + 1] - 1 : cu[s]; t < cu[s + 1]; t++)
            for (int h = 0; h < nh; h++) {
                int g = h / (nh / nkv);
                const float *q = qkv + (size_t)t * W + h * d;
                double mx = -1e300, sum = 0, acc[256] = {0}, sc[512];
                for (int u = cu[s]; u <= t; u++) {
                    const float *k = qkv + (size_t)u * W + A + g * d;
                    double dot = 0;
                    for (int e = 0; e < d; e++) dot += (double)q[e] * k[e];
                    sc[(u - cu[s]) % 512] = dot / sqrt((double)d);
                    if (sc[(u - cu[s]) % 512] > mx) mx = sc[(u - cu[s]) % 512];
                }
                for (int u = cu[s]; u <= t; u++) {
                    const float *v = qkv + (size_t)u * W + A + nkv * d + g * d;
                    double p = exp(sc[(u - cu[s]) % 512] - mx);
                    sum += p;
                    for (int e = 0; e < d; e++) acc[e] += p * v[e];
                }
                int row = last_only ? s : t;
                for (int e = 0; e < d; e++) out[(size_t)row * A + h * d + e] = acc[e] / sum;
            }
}

RR_TEST(dec_causal_attention_every_table) {
    static const int lens[] = {1, 5, 64, 65, 257, 300};
    enum { NS = 6 };
    int cu[NS + 1] = {0};
    for (int s = 0; s < NS; s++) cu[s + 1] = cu[s] + lens[s];
    int T = cu[NS];
    /* heads, kv heads, head_dim: 16 / 8 x 128 is Qwen3-0.6B and jina-reranker-v3 */
    static const int dims[][3] = {{4, 2, 64}, {4, 1, 128}, {2, 2, 32}, {16, 8, 128}};
    for (size_t di = 0; di < RR_ARRAY_LEN(dims); di++) {
        int nh = dims[di][0], nkv = dims[di][1], d = dims[di][2], A = nh * d, W = (nh + 2 * nkv) * d;
        float *qkv = malloc((size_t)T * W * sizeof *qkv), *out = malloc((size_t)T * A * sizeof *out);
        float *all = malloc((size_t)T * A * sizeof *all);
        double *ref = malloc((size_t)T * A * sizeof *ref), *ref_last = malloc((size_t)NS * A * sizeof *ref_last);
        REQUIRE(qkv && out && all && ref && ref_last);
        for (int sharp = 0; sharp < 2; sharp++) {
            uint32_t r = 12345;
            for (size_t i = 0; i < (size_t)T * W; i++) {
                r = r * 1664525u + 1013904223u;
                qkv[i] = ((float)(r >> 8) / 16777216.0f - 0.5f) * 4.0f;
            }
            if (sharp) /* row u's queries match key u + 1 (a future one, or 32 rows back): each row attends to
                        * one key only, so a key wrongly seen (past the diagonal, or the previous sequence's)
                        * changes the output by the size of the values, far above the bf16 tolerance */
                for (int u = 0; u < T; u++) {
                    float *row = qkv + (size_t)u * W;
                    memset(row, 0, sizeof(float) * (size_t)(nh + nkv) * d);
                    for (int h = 0; h < nh; h++) row[h * d + (u + 1) % 32] = 12.0f;
                    for (int g = 0; g < nkv; g++) row[A + g * d + u % 32] = 12.0f;
                }
            naive_causal(qkv, W, cu, NS, nh, nkv, d, 0, ref);
            naive_causal(qkv, W, cu, NS, nh, nkv, d, 1, ref_last);
            for (int isa = 0; isa < RR_KERN_ISA_COUNT; isa++) {
                const rr_kern_table *k = rr_kern_table_for((rr_kern_isa)isa);
                if (!k) continue;
                void *scratch =
                    rr_aligned_alloc(rr_attention_causal_scratch_bytes(1, NS, T, nkv, d, RR_PRECISION_BF16));
                REQUIRE(scratch);
                for (int bf = 0; bf < 2; bf++)
                    for (int last = 0; last < 2; last++) {
                        rr_attention_causal(k, qkv, qkv + A, qkv + A + nkv * d, W, cu, NS, nh, nkv, d,
                                            1.0f / sqrtf((float)d), out, A, last,
                                            bf ? RR_PRECISION_BF16 : RR_PRECISION_FP32, scratch, NULL);
                        double worst = 0;
                        int rows = last ? NS : T;
                        for (size_t i = 0; i < (size_t)rows * A; i++)
                            worst = fmax(worst, fabs(out[i] - (last ? ref_last : ref)[i]));
                        double tol = bf ? 0.05 : 1e-5;
                        CHECK_MSG(worst <= tol, "%s d=%d nh=%d nkv=%d %s %s%s: max |diff| %.3g", rr_kern_name(k), d, nh,
                                  nkv, bf ? "bf16" : "fp32", last ? "last rows" : "all rows", sharp ? " (sharp)" : "",
                                  worst);
                        /* bit for bit: a sequence's rows do not depend on the batch around them, nor on
                         * the path (all rows, packed in bf16 with head_dim 128, or last rows per head) */
                        int same = 1;
                        if (!last) {
                            memcpy(all, out, (size_t)T * A * sizeof *out);
                            for (int q = 0; q < NS; q++) {
                                int one[2] = {0, lens[q]};
                                const float *b = qkv + (size_t)cu[q] * W;
                                rr_attention_causal(k, b, b + A, b + A + nkv * d, W, one, 1, nh, nkv, d,
                                                    1.0f / sqrtf((float)d), out, A, 0,
                                                    bf ? RR_PRECISION_BF16 : RR_PRECISION_FP32, scratch, NULL);
                                same &= !memcmp(out, all + (size_t)cu[q] * A, (size_t)lens[q] * A * sizeof *out);
                            }
                        } else {
                            for (int q = 0; q < NS; q++)
                                same &= !memcmp(out + (size_t)q * A, all + (size_t)(cu[q + 1] - 1) * A,
                                                A * sizeof *out);
                        }
                        CHECK_MSG(same, "%s d=%d nh=%d nkv=%d %s%s: %s differ", rr_kern_name(k), d, nh, nkv,
                                  bf ? "bf16" : "fp32", sharp ? " (sharp)" : "",
                                  last ? "last rows alone and within all rows" : "sequences alone and in the batch");
                    }
                rr_aligned_free(scratch);
            }
        }
        free(qkv);
        free(out);
        free(all);
        free(ref);
        free(ref_last);
    }
}

/* Every request shape takes an optional string "instruction" for decoder prompts. */
RR_TEST(dec_request_instruction) {
    static const struct {
        const char *body;
        rr_srv_api api;
        int status;
        const char *instruction;
    } cases[] = {
        {"{\"query\": \"q\", \"documents\": [\"a\"], \"instruction\": \"Find the city\"}", RR_SRV_API_V1, 0, "Find the city"},
        {"{\"query\": \"q\", \"documents\": [\"a\"], \"instruction\": \"x\"}", RR_SRV_API_V2, 0, "x"},
        {"{\"query\": \"q\", \"texts\": [\"a\"], \"instruction\": \"y\"}", RR_SRV_API_AUTO, 0, "y"},
        {"{\"query\": \"q\", \"documents\": [\"a\"], \"instruction\": null}", RR_SRV_API_V1, 0, NULL},
        {"{\"query\": \"q\", \"documents\": [\"a\"]}", RR_SRV_API_V1, 0, NULL},
        {"{\"query\": \"q\", \"documents\": [\"a\"], \"instruction\": 5}", RR_SRV_API_V1, 422, NULL},
    };
    for (size_t i = 0; i < RR_ARRAY_LEN(cases); i++) {
        rr_srv_request rq;
        char err[256] = "";
        int st = rr_srv_parse(cases[i].body, strlen(cases[i].body), cases[i].api, NULL, &rq, err, sizeof err);
        CHECK_MSG(st == cases[i].status, "case %zu: status %d (%s)", i, st, err);
        if (st) {
            CHECK(strstr(err, "instruction") != NULL);
            continue;
        }
        if (cases[i].instruction)
            CHECK(rq.instruction.text && !strcmp(rq.instruction.text, cases[i].instruction));
        else
            CHECK(rq.instruction.text == NULL);
        rr_srv_request_free(&rq);
    }
}

/*
 * test_kernels_pos.c -- the kernels behind the position schemes and gated feed-forwards of the
 * JinaBERT, mGTE and ModernBERT families, on every kernel table this CPU runs, against plain
 * double-precision references: attention with symmetric ALiBi slopes and with a sliding window
 * (packed batches whose lengths cross the tiles and the window), first-token attention with both,
 * the gated units (GELU, ReLU, SiLU) and the rotary rotation.
 *
 * Tolerances as tests/test_kernels.c: attention fp32 2e-5 * sum_j p_j |v_j| + 1e-6, bf16 plus 2^-8,
 * int8 as bf16, or where the table computes attention in int8 (attn_q8_d64 and head_dim 64) against q, k,
 * p and v quantized as it does (q8_attn_ref, q8_pv_ref of kern_test.h, over the driver's key range);
 * activations 1e-6 relative (the scalar table is double inside, the vector ones are polynomials);
 * rotary: every table rounds the same two products, so within 1 ulp of the scalar table's result
 * and 2e-7 * (|x0| + |x1|) of the double rotation.
 */
#include "check.h"
#include "kern_test.h"

#include "core/core.h"
#include "kernels/kern_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static double urand(void) {
    g_rng ^= g_rng << 13, g_rng ^= g_rng >> 7, g_rng ^= g_rng << 17;
    return (double)(g_rng >> 11) / 9007199254740992.0;
}
static float srand1(void) { return (float)(urand() * 2 - 1); }
static double bf(float x) { return (double)rr_bf16_to_f32(rr_f32_to_bf16(x)); }

/* Attention of a packed batch with opts against the double reference; first != 0 checks
 * rr_attention_first_ex (row s of ctx = first token of sequence s). Returns the bad count. */
static int pos_attn_case(const rr_kern_table *t, rr_precision p, const int *lens, int n_seq, int n_heads, int d,
                         const rr_attn_opts *o, int first, rr_pool *pool) {
    int cu[64];
    cu[0] = 0;
    for (int s = 0; s < n_seq; s++) cu[s + 1] = cu[s] + lens[s];
    const int T = cu[n_seq], H = n_heads * d, ld = 3 * H + 1, ldo = H + 3;
    float *qkv = malloc(sizeof(float) * (size_t)T * ld), *ctx = malloc(sizeof(float) * (size_t)T * ldo);
    for (size_t i = 0; i < (size_t)T * ld; i++) qkv[i] = srand1() * 2.5f;
    for (size_t i = 0; i < (size_t)T * ldo; i++) ctx[i] = 777.f;
    float scale = 1.f / sqrtf((float)d);
    void *scratch = rr_aligned_alloc(rr_attention_scratch_bytes(rr_pool_size(pool), n_seq, d));
    if (first)
        rr_attention_first_ex(t, qkv, ld, cu, n_seq, n_heads, d, scale, o, ctx, ldo, p, scratch, pool);
    else
        rr_attention_ex(t, qkv, ld, cu, n_seq, n_heads, d, scale, o, ctx, ldo, p, scratch, pool);
    int bf16 = p != RR_PRECISION_FP32, bad = 0, q8 = p == RR_PRECISION_INT8 && t->attn_q8_d64 && d == 64;
    int *qi = malloc(sizeof(int) * (size_t)d), *kj = malloc(sizeof(int) * (size_t)d);
    int maxlen = 0;
    for (int s = 0; s < n_seq; s++) maxlen = RR_MAX(maxlen, lens[s]);
    double *sc = malloc(sizeof(double) * (size_t)maxlen), *smag = malloc(sizeof(double) * (size_t)maxlen);
    double ro[64], rt[64], rq[64]; /* q8: q8_pv_ref per dim */
    for (int s = 0; s < n_seq && bad < 5; s++)
        for (int h = 0; h < n_heads; h++)
            for (int i = cu[s]; i < (first ? cu[s] + 1 : cu[s + 1]); i++) {
                const float *q = qkv + (size_t)i * ld + h * d;
                const double sq = q8 ? q8_attn_ref(q, d, qi) : 0;
                double mx = -INFINITY;
                for (int j = cu[s]; j < cu[s + 1]; j++) {
                    const float *k = qkv + (size_t)j * ld + H + h * d;
                    double dot = 0;
                    if (q8) {
                        const double sk = q8_attn_ref(k, d, kj);
                        for (int e = 0; e < d; e++) dot += (double)qi[e] * kj[e];
                        dot *= sq * sk;
                    } else {
                        for (int e = 0; e < d; e++) dot += (bf16 ? bf(q[e]) * bf(k[e]) : (double)q[e] * k[e]);
                    }
                    int dist = abs(i - j);
                    double bias = o && o->alibi ? (double)o->alibi[h] * dist : 0.0, v = dot * scale - bias;
                    smag[j - cu[s]] = fabs(dot * scale) + bias;
                    if (o && o->window > 0 && dist > o->window) v = -INFINITY;
                    sc[j - cu[s]] = v;
                    if (v > mx) mx = v;
                }
                if (q8) { /* O = P V in int8 too, over the work item's keys as the driver splits them */
                    const int w = o ? o->window : 0, len = lens[s], pos = i - cu[s];
                    int k0 = 0, k1 = len;
                    if (first && w > 0) k1 = RR_MIN(len, w + 1);
                    if (!first && w > 0) {
                        const int qt = t->attn_qt_bf16_d64 ? t->attn_qt_bf16_d64 : RR_KERN_ATTN_QT, q0 = pos / qt * qt;
                        k0 = RR_MAX(0, q0 - w), k1 = RR_MIN(len, q0 + RR_MIN(qt, len - q0) + w);
                    }
                    q8_pv_ref(sc, smag, k0, k1, qkv + (size_t)cu[s] * ld + 2 * H + h * d, ld, d, ro, rt, rq);
                }
                double sum = 0;
                for (int j = 0; j < lens[s]; j++) sum += (sc[j] = exp(sc[j] - mx));
                float *row = ctx + (size_t)(first ? s : i) * ldo + h * d;
                for (int e = 0; e < d; e++) {
                    double out = 0, mag = 0;
                    for (int j = cu[s]; j < cu[s + 1]; j++) {
                        double v = qkv[(size_t)j * ld + 2 * H + h * d + e];
                        if (bf16) v = bf((float)v);
                        out += sc[j - cu[s]] / sum * v;
                        mag += sc[j - cu[s]] / sum * fabs(v);
                    }
                    double tol = 2e-5 * mag + 1e-6 + (bf16 ? 0.00390625 * mag : 0);
                    if (q8) out = ro[e], tol = rt[e];
                    if (!(fabs(row[e] - out) <= tol) && bad++ < 3)
                        rr_test_fail(__FILE__, __LINE__,
                                     "%s %s%s alibi %d window %d seq %d (len %d) head %d row %d dim %d: %.8g vs %.8g",
                                     t->name, p == RR_PRECISION_INT8 ? "int8" : bf16 ? "bf16" : "fp32",
                                     first ? " first" : "", o && o->alibi,
                                     o ? o->window : 0, s, lens[s], h, i - cu[s], e, row[e], out);
                }
            }
    free(sc), free(smag), free(qi), free(kj);
    rr_aligned_free(scratch);
    free(qkv), free(ctx);
    return bad;
}

RR_TEST(kern_attention_alibi_and_window) {
    const rr_kern_table *ts[RR_KERN_ISA_COUNT];
    int nt = kern_test_tables(ts);
    rr_pool *pool = NULL;
    REQUIRE(rr_pool_new(2, &pool) == RR_OK);
    /* lengths across the 64/128/256 tiles and around the window (2 * 64 + 1 keys) */
    static const int lens[] = {1, 2, 33, 64, 65, 129, 130, 257, 300, 600};
    /* JinaBERT's slopes for 2 heads, and a steep and a gentle one for 3 */
    static const float slopes2[] = {0.0625f, 0.00390625f}, slopes3[] = {0.70710678f, 0.5f, 1.0f / 4096};
    rr_attn_opts alibi2 = {slopes2, 0}, alibi3 = {slopes3, 0}, win = {NULL, 64}, win7 = {NULL, 7},
                 both = {slopes2, 40};
    for (int ti = 0; ti < nt; ti++)
        for (int p = RR_PRECISION_FP32; p <= RR_PRECISION_INT8; p++)
            for (int first = 0; first <= 1; first++) {
                CHECK(pos_attn_case(ts[ti], (rr_precision)p, lens, 10, 2, 64, &alibi2, first, pool) == 0);
                CHECK(pos_attn_case(ts[ti], (rr_precision)p, lens, 10, 2, 64, &win, first, pool) == 0);
                CHECK(pos_attn_case(ts[ti], (rr_precision)p, lens, 10, 2, 64, &both, first, pool) == 0);
                CHECK(pos_attn_case(ts[ti], (rr_precision)p, lens + 4, 6, 2, 128, &both, first, pool) == 0);
                CHECK(pos_attn_case(ts[ti], (rr_precision)p, lens + 2, 6, 3, 40, &alibi3, first, NULL) == 0);
                CHECK(pos_attn_case(ts[ti], (rr_precision)p, lens, 8, 1, 16, &win7, first, pool) == 0);
            }
    rr_pool_free(pool);
}

static double act_d(double x, int act) {
    if (act == RR_KERN_ACT_RELU) return x > 0 ? x : 0;
    if (act == RR_KERN_ACT_SILU) return x / (1 + exp(-x));
    return 0.5 * x * erfc(-x / sqrt(2.0));
}

RR_TEST(kern_glu_all_tables) {
    const rr_kern_table *ts[RR_KERN_ISA_COUNT];
    int nt = kern_test_tables(ts);
    rr_pool *pool = NULL;
    REQUIRE(rr_pool_new(2, &pool) == RR_OK);
    enum { ROWS = 37, N = 203 }; /* N not a multiple of any vector width: the tail path */
    const int ldx = 2 * N + 5, ldy = N + 2;
    float *x = malloc(sizeof(float) * ROWS * ldx), *y = malloc(sizeof(float) * ROWS * ldy);
    for (int i = 0; i < ROWS * ldx; i++) x[i] = srand1() * 9.f;
    x[0] = 0, x[1] = -0.f, x[2] = 1e-30f, x[3] = -40.f, x[4] = 40.f;
    for (int ti = 0; ti < nt; ti++)
        for (int act = 0; act <= RR_KERN_ACT_SILU; act++)
            for (int order = 0; order < 2; order++) {
                int a_off = order ? N : 0, b_off = order ? 0 : N;
                for (int i = 0; i < ROWS * ldy; i++) y[i] = 777.f;
                rr_glu(ts[ti], ROWS, N, x, ldx, a_off, b_off, y, ldy, (rr_kern_act)act, pool);
                double worst = 0;
                int stray = 0;
                for (int r = 0; r < ROWS; r++) {
                    for (int j = 0; j < N; j++) {
                        double a = x[r * ldx + a_off + j], b = x[r * ldx + b_off + j];
                        double ref = act_d(a, act) * b, got = y[r * ldy + j];
                        double err = fabs(got - ref) / fmax(fabs(ref), 1e-30);
                        if (ref == 0) err = fabs(got) < 1e-30 ? 0 : 1;
                        worst = fmax(worst, err);
                    }
                    for (int j = N; j < ldy; j++) stray += y[r * ldy + j] != 777.f;
                }
                CHECK_MSG(worst < 1e-6, "%s glu act %d order %d: max relative error %.3g", ts[ti]->name, act, order,
                          worst);
                CHECK_MSG(!stray, "%s glu wrote past n", ts[ti]->name);
            }
    free(x), free(y);
    rr_pool_free(pool);
}

RR_TEST(kern_rope_all_tables) {
    const rr_kern_table *ts[RR_KERN_ISA_COUNT];
    int nt = kern_test_tables(ts);
    rr_pool *pool = NULL;
    REQUIRE(rr_pool_new(2, &pool) == RR_OK);
    static const int dims[] = {64, 40, 8, 2};
    for (size_t di = 0; di < RR_ARRAY_LEN(dims); di++) {
        const int d = dims[di], h = d / 2, nh = 3, P = 300, rows = 211, ld = 3 * nh * d + 1;
        float *table = malloc(sizeof(float) * (size_t)P * d);
        for (int p = 0; p < P; p++)
            for (int j = 0; j < h; j++) {
                double ang = p * pow(10000.0, -2.0 * j / d);
                table[p * d + j] = (float)cos(ang);
                table[p * d + h + j] = (float)sin(ang);
            }
        int *pos = malloc(sizeof(int) * rows);
        for (int i = 0; i < rows; i++) pos[i] = (i * 37) % P;
        float *x0 = malloc(sizeof(float) * (size_t)rows * ld), *ref = malloc(sizeof(float) * (size_t)rows * ld),
              *x = malloc(sizeof(float) * (size_t)rows * ld);
        for (int i = 0; i < rows * ld; i++) x0[i] = srand1() * 4;
        memcpy(ref, x0, sizeof(float) * (size_t)rows * ld);
        rr_rope(ts[0], rows, ref, ld, nh, d, pos, table, NULL); /* ts[0] is the scalar table */
        CHECK(rr_kern_isa_of(ts[0]) == RR_KERN_ISA_SCALAR);
        /* the scalar table against the double rotation */
        double worst = 0;
        for (int i = 0; i < rows; i++)
            for (int hd = 0; hd < nh; hd++)
                for (int j = 0; j < h; j++) {
                    const float *v = x0 + (size_t)i * ld + hd * d;
                    double c = table[pos[i] * d + j], s = table[pos[i] * d + h + j];
                    double a = (double)v[j] * c - (double)v[j + h] * s, b = (double)v[j + h] * c + (double)v[j] * s;
                    double mag = fabs(v[j]) + fabs(v[j + h]);
                    worst = fmax(worst, fabs(ref[(size_t)i * ld + hd * d + j] - a) / mag);
                    worst = fmax(worst, fabs(ref[(size_t)i * ld + hd * d + j + h] - b) / mag);
                }
        CHECK_MSG(worst < 2e-7, "scalar rope d %d: error %.3g", d, worst);
        for (int ti = 1; ti < nt; ti++) {
            memcpy(x, x0, sizeof(float) * (size_t)rows * ld);
            rr_rope(ts[ti], rows, x, ld, nh, d, pos, table, pool);
            int diff = 0;
            for (int i = 0; i < rows * ld; i++) diff += x[i] != ref[i];
            CHECK_MSG(!diff, "%s rope d %d: %d values differ from the scalar table", ts[ti]->name, d, diff);
        }
        free(table), free(pos), free(x0), free(ref), free(x);
    }
    rr_pool_free(pool);
}

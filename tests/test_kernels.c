/*
 * test_kernels.c -- every kernel table this CPU runs, forced in-process one by one, against plain
 * double-precision references: packed linear layers (each precision, source dtype and epilogue, on
 * ragged shapes), attention over packed batches of lengths 1..600 (across tile boundaries),
 * LayerNorm, GELU and tanh; plus the thread pool under contention and the dispatch API.
 *
 * Tolerances, from the arithmetic each precision promises (kernels.h):
 *   fp32   |y - ref| <= 1e-5 * mag, mag = sum_k |x_k w_k| + |b| (fp32 accumulation over K <= 21000
 *          terms with random signs stays well under this; a wrong index or a lost tail is O(mag)).
 *   bf16   the reference uses the same bf16-rounded x and w, so only fp32 accumulation differs:
 *          1e-5 * mag again; and vs the unrounded fp32 math, 2 * 2^-8 * mag (two roundings of 2^-9).
 *   int8   the reference quantizes exactly as specified (one weight scale per channel and group of
 *          rr_kern_int8_group(K) k), so the int32 group sums agree and only the fp32 scaling and the
 *          fp32 sum over groups differ: 1e-5 * mag, mag = s_x sum_k s_w(k) (|x8 - z| + z) |w8| (the
 *          kernels sum uncentred x8 w8 and subtract z C_j, so their rounding scales with z too); vs
 *          fp32 math, the quantization error bound sum_k (s_x/2)|w_k| + (s_w(k)/2)|x_k| + s_x s_w(k)/4.
 *   GELU epilogue: the bounds above times max |gelu'| = 1.13, plus 1e-6 relative.
 *   attention: fp32 2e-5 * sum_j p_j |v_j| + 1e-6; bf16 additionally 2^-8 for the rounded
 *   probabilities. int8 (kern_int.h rr_kern_attn q8): a table with attn_q8_d64 quantizes, for
 *   head_dim 64, q per row and k per key exactly as q8_attn_ref (kern_test.h), p and v per key tile as
 *   q8_pv_ref, and the reference does the same (the int32 dot products agree; the scales' fp32
 *   products differ by a few ulp of the score), so it is held to 2e-5 * mag + 1e-6 plus one step of
 *   p8 for each probability the few ulp may round the other way (q8_pv_ref); other tables and head
 *   dims run bf16 and are held to bf16's bound.
 *   Both are also held to the quantization's own bound against unquantized q and k (and, with int8
 *   P V, unquantized p and fp32 v; else bf16 v): with steps s_q = max|q| / 127 and s_k = max|k_j| / 127
 *   each element is off by at most half a step, so each score by at most e_ij = scale sum_e (|q_e| s_k
 *   + |k_je| s_q + s_q s_k / 2) / 2, each probability by a factor within exp(+-2 max_j e_ij), and the
 *   output by (exp(2 max_j e_ij) - 1) sum_j p_j |v_j| on top of the bf16 bound (bf16 rounding of q and
 *   k is within that bound too: 2^-9 |x| <= s / 2), or on top of the int8 P V's allowance and its own
 *   bound (q8_pv_ref: p8 within 1/510 of p in the tile's units, v8 within half a step of v).
 */
#include "check.h"
#include "kern_test.h"

#include "core/core.h"
#include "kernels/kern_int.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------ helpers */

static uint64_t g_rng = 88172645463325252ull;
static double urand(void) { /* [0, 1) */
    g_rng ^= g_rng << 13, g_rng ^= g_rng >> 7, g_rng ^= g_rng << 17;
    return (double)(g_rng >> 11) / 9007199254740992.0;
}
static float srand1(void) { return (float)(urand() * 2 - 1); }

static double gelu_d(double x) { return 0.5 * x * erfc(-x / sqrt(2.0)); }

static double bf(float x) { return (double)rr_bf16_to_f32(rr_f32_to_bf16(x)); }

/* The tables to test: every ISA this CPU runs that has a table. */

static const char *prec_name(rr_precision p) {
    return p == RR_PRECISION_FP32 ? "fp32" : p == RR_PRECISION_BF16 ? "bf16" : "int8";
}

/* Weights: symmetric per channel and per group of G k (the last one may be short), scale =
 * amax / wmax (the table's rr_kern_int8_wmax), inv = 1 / scale in float, round half to even
 * (kernels.h). s gets one scale per group. */
static void quant(const float *x, int n, int G, int wmax, int *q, float *s) {
    for (int g = 0; g * G < n; g++) {
        int k0 = g * G, k1 = k0 + G < n ? k0 + G : n;
        float amax = 0;
        for (int i = k0; i < k1; i++) amax = fmaxf(amax, fabsf(x[i]));
        float sc = amax > 0 ? amax / (float)wmax : 1.f, inv = 1.f / sc;
        for (int i = k0; i < k1; i++) {
            long v = lrintf(x[i] * inv);
            q[i] = (int)(v > wmax ? wmax : v < -wmax ? -wmax : v);
        }
        s[g] = sc;
    }
}

/* ------------------------------------------------------------------ linear */

/* Activations: asymmetric uint8 per row with a zero point (kernels.h). */
static float quant_act(const float *x, int n, int *q, int *zp) {
    float lo = 0, hi = 0;
    for (int i = 0; i < n; i++) lo = fminf(lo, x[i]), hi = fmaxf(hi, x[i]);
    float s = hi > lo ? (hi - lo) / 255.f : 1.f, inv = 1.f / s;
    long z = lrintf(-lo * inv);
    z = z < 0 ? 0 : z > 255 ? 255 : z;
    for (int i = 0; i < n; i++) {
        long v = lrintf(x[i] * inv) + z;
        q[i] = (int)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
    *zp = (int)z;
    return s;
}

typedef struct {
    int m, n, k;
} shape;

/* Runs one (table, precision, dtype, epilogue, shape) case; returns the number of bad elements. */
static int linear_case(const rr_kern_table *t, rr_precision p, rr_kern_dtype dt, int epi, shape sh, rr_pool *pool) {
    const int M = sh.m, N = sh.n, K = sh.k, ldx = K + 3, ldy = N + 5, ldr = N + 2;
    float *w = malloc(sizeof(float) * N * K), *b = malloc(sizeof(float) * N);
    uint8_t *wsrc = malloc((size_t)N * K * 4 + 1); /* +1: pass a misaligned pointer */
    float *x = malloc(sizeof(float) * M * ldx), *y = malloc(sizeof(float) * M * ldy);
    float *r = malloc(sizeof(float) * M * ldr);
    /* magnitudes that change every 16 k, so the int8 scale groups differ (a kernel that applied the
     * wrong group's scales would be off by far more than the tolerance) */
    for (int i = 0; i < N * K; i++) w[i] = srand1() * 0.5f * (float)(1 + (i % K) / 16 % 3) / 3.f;
    for (int i = 0; i < N; i++) b[i] = srand1();
    for (int i = 0; i < M * ldx; i++) x[i] = srand1() * 2;
    for (int i = 0; i < M * ldr; i++) r[i] = srand1();
    for (int i = 0; i < M * ldy; i++) y[i] = 12345.f;
    /* the source weights in their dtype; w becomes what the source decodes to */
    uint8_t *src = wsrc + 1;
    for (int i = 0; i < N * K; i++) {
        if (dt == RR_KERN_DTYPE_F32) {
            memcpy(src + 4 * (size_t)i, &w[i], 4);
        } else if (dt == RR_KERN_DTYPE_BF16) {
            uint16_t h = rr_f32_to_bf16(w[i]);
            memcpy(src + 2 * (size_t)i, &h, 2);
            w[i] = rr_bf16_to_f32(h);
        } else { /* f16: multiples of 2^-10 in [-0.5, 0.5] are exact */
            float v = roundf(w[i] * 1024.f) / 1024.f;
            uint16_t h;
            if (v == 0) h = 0;
            else {
                int e;
                float mant = frexpf(fabsf(v), &e); /* v = mant 2^e, mant in [0.5, 1) */
                int m11 = (int)lrintf(mant * 2048.f); /* 11 bits with the implicit one */
                int ex = e - 1 + 15;
                if (ex <= 0) { /* subnormal: value = m 2^-24 */
                    h = (uint16_t)lrintf(fabsf(v) * 16777216.f);
                } else {
                    h = (uint16_t)((ex << 10) | (m11 & 0x3ff));
                }
                if (v < 0) h |= 0x8000;
            }
            memcpy(src + 2 * (size_t)i, &h, 2);
            w[i] = rr_f16_to_f32(h);
            REQUIRE(w[i] == v);
        }
    }
    rr_linear *l = NULL;
    REQUIRE(rr_linear_pack(t, p, src, dt, N, K, b, &l) == RR_OK);
    CHECK(rr_linear_precision(l) == p);
    size_t sb = rr_linear_scratch_bytes(l, M);
    void *scratch = sb ? rr_aligned_alloc(sb) : NULL;
    rr_linear_run(l, M, x, ldx, y, ldy, epi, r, ldr, scratch, pool);
    int bad = 0;
    const int G = rr_kern_int8_group(K), NG = (K + G - 1) / G;
    if (p == RR_PRECISION_INT8) CHECK(rr_linear_int8_group(l) == G);
    int *qx = malloc(sizeof(int) * K);
    float *sw = malloc(sizeof(float) * N * NG); /* [N][NG] group scales */
    int *qwall = malloc(sizeof(int) * N * K);
    if (p == RR_PRECISION_INT8)
        for (int j = 0; j < N; j++) quant(w + (size_t)j * K, K, G, rr_kern_int8_wmax(t), qwall + (size_t)j * K, sw + (size_t)j * NG);
    for (int i = 0; i < M && bad < 5; i++) {
        const float *xi = x + (size_t)i * ldx;
        int zx = 0;
        float sx = p == RR_PRECISION_INT8 ? quant_act(xi, K, qx, &zx) : 0;
        for (int j = 0; j < N; j++) {
            const float *wj = w + (size_t)j * K;
            double acc = 0, mag = fabs(b[j]), exact = 0, sumw = 0, sumx = 0, qbound = 0;
            if (p == RR_PRECISION_INT8) {
                for (int g = 0; g < NG; g++) {
                    long long dot = 0;
                    double swg = sw[(size_t)j * NG + g];
                    for (int k = g * G; k < K && k < (g + 1) * G; k++) {
                        int q = qwall[(size_t)j * K + k];
                        dot += (long long)(qx[k] - zx) * q;
                        /* the kernels sum x8 w8 (not centred) and subtract zp C_j: fp32 rounding
                         * scales with the uncentred magnitudes */
                        mag += (fabs((double)(qx[k] - zx)) + zx) * abs(q) * sx * swg;
                        qbound += sx / 2 * fabs(wj[k]) + swg / 2 * fabs(xi[k]) + sx * swg / 4;
                    }
                    acc += (double)dot * sx * swg;
                }
            } else {
                for (int k = 0; k < K; k++) {
                    double xv = p == RR_PRECISION_BF16 ? bf(xi[k]) : xi[k];
                    double wv = p == RR_PRECISION_BF16 ? bf(wj[k]) : wj[k];
                    acc += xv * wv;
                    mag += fabs(xv * wv);
                }
            }
            for (int k = 0; k < K; k++) {
                exact += (double)xi[k] * wj[k];
                sumw += fabs(wj[k]);
                sumx += fabs(xi[k]);
            }
            acc += b[j];
            exact += b[j];
            double tol = 1e-5 * mag + 1e-6;
            double tol_exact = p == RR_PRECISION_FP32   ? tol
                               : p == RR_PRECISION_BF16 ? 2 * 0.00390625 * (mag + sumw * sumx * 0) + tol
                                                        : qbound + tol;
            if (p == RR_PRECISION_BF16) {
                double m2 = fabs(b[j]);
                for (int k = 0; k < K; k++) m2 += fabs((double)xi[k] * wj[k]);
                tol_exact = 2 * 0.00390625 * m2 + tol;
            }
            double ref = acc, ref_exact = exact;
            if (epi == RR_KERN_EPI_GELU) {
                ref = gelu_d(acc);
                ref_exact = gelu_d(exact);
                tol = 1.13 * tol + 1e-6 * fabs(ref);
                tol_exact = 1.13 * tol_exact + 1e-6 * fabs(ref);
            } else if (epi == RR_KERN_EPI_RESIDUAL) {
                ref += r[(size_t)i * ldr + j];
                ref_exact += r[(size_t)i * ldr + j];
                tol += 1e-7 * fabs(ref);
                tol_exact += 1e-7 * fabs(ref);
            }
            double got = y[(size_t)i * ldy + j];
            if (!(fabs(got - ref) <= tol) || !(fabs(got - ref_exact) <= tol_exact)) {
                if (bad++ < 3)
                    rr_test_fail(__FILE__, __LINE__,
                                 "%s %s dt%d epi%d M=%d N=%d K=%d y[%d,%d] = %.8g, ref %.8g (tol %.3g), exact %.8g (tol %.3g)",
                                 t->name, prec_name(p), (int)dt, epi, M, N, K, i, j, got, ref, tol, ref_exact, tol_exact);
            }
        }
        /* the padding columns past N must be untouched */
        for (int j = N; j < ldy; j++)
            if (y[(size_t)i * ldy + j] != 12345.f && bad++ < 3)
                rr_test_fail(__FILE__, __LINE__, "%s %s: wrote past N at [%d,%d]", t->name, prec_name(p), i, j);
    }
    free(qx), free(sw), free(qwall);
    rr_aligned_free(scratch);
    rr_linear_free(l);
    free(w), free(b), free(wsrc), free(x), free(y), free(r);
    return bad;
}

RR_TEST(kern_linear_all_tables) {
    const rr_kern_table *ts[RR_KERN_ISA_COUNT];
    int nt = kern_test_tables(ts);
    REQUIRE(nt >= 1);
    rr_pool *pool = NULL;
    REQUIRE(rr_pool_new(3, &pool) == RR_OK);
    static const shape shapes[] = {{1, 1, 1},   {1, 7, 5},    {3, 50, 1},   {13, 97, 67}, {37, 130, 300},
                                   {9, 48, 768}, {17, 49, 129}, {70, 96, 64}, {2, 200, 31}, {8, 144, 258},
                                   {5, 20, 1700}, {300, 50, 40}, {3, 60, 4500}, {2, 9, 21000},
                                   {6, 50, 384}, {5, 48, 3072}};
    for (int ti = 0; ti < nt; ti++) {
        for (int p = RR_PRECISION_FP32; p <= RR_PRECISION_INT8; p++) {
            for (size_t s = 0; s < RR_ARRAY_LEN(shapes); s++) {
                int epi = (int)(s % 3);
                rr_kern_dtype dt = (rr_kern_dtype)((s + (size_t)p) % 3);
                int bad = linear_case(ts[ti], (rr_precision)p, dt, epi, shapes[s], s % 2 ? pool : NULL);
                CHECK_MSG(bad == 0, "%s %s shape %zu: %d bad", ts[ti]->name, prec_name((rr_precision)p), s, bad);
            }
            /* every epilogue on one bigger ragged shape, threaded */
            for (int epi = 0; epi < 3; epi++) {
                shape sh = {29 + epi, 161, 203};
                CHECK(linear_case(ts[ti], (rr_precision)p, RR_KERN_DTYPE_F32, epi, sh, pool) == 0);
            }
        }
    }
    rr_pool_free(pool);
}

/* rr_linear_run_cols: the columns [c0, c1) of rr_linear_run's output, bit for bit, written from y's
 * column 0 (with the residual read the same way), and nothing else written (what the encoder's last
 * layer relies on when it computes K and V for every row and Q for first rows only). */
RR_TEST(kern_linear_cols_bit_exact) {
    const rr_kern_table *ts[RR_KERN_ISA_COUNT];
    int nt = kern_test_tables(ts);
    rr_pool *pool = NULL;
    REQUIRE(rr_pool_new(2, &pool) == RR_OK);
    for (int ti = 0; ti < nt; ti++)
        for (int p = RR_PRECISION_FP32; p <= RR_PRECISION_INT8; p++)
            for (int epi = 0; epi < 3; epi++) {
                const int M = 37 + epi, K = 200 + 40 * p;
                rr_linear *l = NULL;
                float *w = malloc(sizeof(float) * 6 * 48 * K), *b = malloc(sizeof(float) * 6 * 48);
                for (int i = 0; i < 6 * 48 * K; i++) w[i] = srand1() * 0.3f;
                for (int i = 0; i < 6 * 48; i++) b[i] = srand1();
                /* N: 3 steps and a ragged end, so both a whole-step c1 and c1 = N are tried */
                int step = 0;
                REQUIRE(rr_linear_pack(ts[ti], (rr_precision)p, w, RR_KERN_DTYPE_F32, 1, K, b, &l) == RR_OK);
                step = rr_linear_col_step(l);
                rr_linear_free(l), l = NULL;
                REQUIRE(step >= 1 && step <= 48);
                const int N = 3 * step + 5;
                REQUIRE(rr_linear_pack(ts[ti], (rr_precision)p, w, RR_KERN_DTYPE_F32, N, K, b, &l) == RR_OK);
                CHECK(rr_linear_col_step(l) == step);
                float *x = malloc(sizeof(float) * M * K), *r = malloc(sizeof(float) * M * N);
                float *full = malloc(sizeof(float) * M * N), *part = malloc(sizeof(float) * M * (N + 3));
                for (int i = 0; i < M * K; i++) x[i] = srand1() * 2;
                for (int i = 0; i < M * N; i++) r[i] = srand1();
                void *scratch = rr_linear_scratch_bytes(l, M) ? rr_aligned_alloc(rr_linear_scratch_bytes(l, M)) : NULL;
                rr_linear_run(l, M, x, K, full, N, (rr_kern_epilogue)epi, r, N, scratch, pool);
                static const int ranges[][2] = {{0, 1}, {1, 3}, {2, 4}, {0, 4}, {3, 4}};
                for (size_t q = 0; q < RR_ARRAY_LEN(ranges); q++) {
                    int c0 = ranges[q][0] * step, c1 = ranges[q][1] == 4 ? N : ranges[q][1] * step, w1 = c1 - c0;
                    int ld = w1 + 3; /* a stride wider than the range: the gap must stay untouched */
                    for (int i = 0; i < M * (N + 3); i++) part[i] = -777.f;
                    rr_linear_run_cols(l, c0, c1, M, x, K, part, ld, (rr_kern_epilogue)epi, r + c0, N, scratch,
                                       q % 2 ? pool : NULL);
                    int bad = 0;
                    for (int i = 0; i < M && bad < 3; i++) {
                        for (int j = 0; j < w1; j++)
                            if (memcmp(&part[(size_t)i * ld + j], &full[(size_t)i * N + c0 + j], 4) && bad++ < 3)
                                rr_test_fail(__FILE__, __LINE__, "%s %s epi %d cols [%d, %d): [%d, %d] %.9g != %.9g",
                                             ts[ti]->name, prec_name((rr_precision)p), epi, c0, c1, i, j,
                                             part[(size_t)i * ld + j], full[(size_t)i * N + c0 + j]);
                        for (int j = w1; j < ld && i + 1 < M; j++)
                            if (part[(size_t)i * ld + j] != -777.f && bad++ < 3)
                                rr_test_fail(__FILE__, __LINE__, "%s: wrote past the range at [%d, %d]", ts[ti]->name, i, j);
                    }
                }
                rr_aligned_free(scratch);
                rr_linear_free(l);
                free(w), free(b), free(x), free(r), free(full), free(part);
            }
    rr_pool_free(pool);
}

/* The int8 scale group of a layer: the largest power of two up to RR_KERN_INT8_GROUP dividing K
 * rounded up to 32, so padding stays under 32 k (kern_int.h). */
RR_TEST(kern_int8_group_sizes) {
    static const int ks[] = {1, 31, 32, 64, 100, 129, 384, 768, 1152, 1536, 3072, 4500};
    for (size_t i = 0; i < RR_ARRAY_LEN(ks); i++) {
        int k = ks[i], g = rr_kern_int8_group(k), lo = RR_KERN_INT8_GROUP_MIN;
        int kpad = (k + lo - 1) / lo * lo;
        CHECK_MSG(g >= lo && g <= RR_KERN_INT8_GROUP && (g & (g - 1)) == 0, "K %d: group %d", k, g);
        if (RR_KERN_INT8_GROUP <= 256) { /* larger: a measurement build with one group over the whole K */
            CHECK_MSG(kpad % g == 0, "K %d: group %d does not divide K", k, g);
            CHECK_MSG(g == RR_KERN_INT8_GROUP || kpad % (2 * g) != 0, "K %d: group %d is not the largest", k, g);
        }
    }
    if (RR_KERN_INT8_GROUP == 256) {
        CHECK(rr_kern_int8_group(768) == 256 && rr_kern_int8_group(3072) == 256);
        CHECK(rr_kern_int8_group(384) == 128 && rr_kern_int8_group(1152) == 128 && rr_kern_int8_group(64) == 64);
    }
}

RR_TEST(kern_linear_random_shapes) {
    const rr_kern_table *ts[RR_KERN_ISA_COUNT];
    int nt = kern_test_tables(ts);
    rr_pool *pool = NULL;
    REQUIRE(rr_pool_new(2, &pool) == RR_OK);
    for (int it = 0; it < 12; it++) {
        shape sh = {1 + (int)(urand() * 40), 1 + (int)(urand() * 120), 1 + (int)(urand() * 200)};
        rr_precision p = (rr_precision)(1 + it % 3);
        for (int ti = 0; ti < nt; ti++)
            CHECK(linear_case(ts[ti], p, (rr_kern_dtype)(it % 3), (it / 3) % 3, sh, pool) == 0);
    }
    rr_pool_free(pool);
}

/* Packing, byte for byte against the layout of kern_int.h built here from the source weights: for
 * every table and precision, f32 / bf16 / f16 sources, shapes with partial panels, K past whole
 * K groups and scale groups; INT8 weights as the specification quantizes them (quant above), the
 * scales and the corrections C_j; non-finite INT8 weights refused with RR_ERR_FORMAT. */
static uint16_t f32_to_f16_exact(float f) { /* f: a value f16 holds exactly (normal, |f| < 2) */
    uint32_t u;
    memcpy(&u, &f, 4);
    if (f == 0) return (uint16_t)(u >> 16);
    int e = (int)((u >> 23) & 0xff) - 127 + 15;
    return (uint16_t)((u >> 16 & 0x8000) | (uint32_t)e << 10 | (u >> 13 & 0x3ff));
}

RR_TEST(kern_linear_pack_layout) {
    const rr_kern_table *ts[RR_KERN_ISA_COUNT];
    int nt = kern_test_tables(ts);
    const shape shapes[] = {{0, 50, 768}, {0, 97, 256}, {0, 5, 70}, {0, 130, 3}};
    int bad = 0;
    for (int ti = 0; ti < nt; ti++)
        for (int pi = 0; pi < 3; pi++)
            for (int dt = 0; dt < 3; dt++)
                for (size_t si = 0; si < RR_ARRAY_LEN(shapes); si++) {
                    const rr_precision p = pi == 0 ? RR_PRECISION_FP32 : pi == 1 ? RR_PRECISION_BF16 : RR_PRECISION_INT8;
                    const int N = shapes[si].n, K = shapes[si].k;
                    float *w = malloc(sizeof(float) * N * K), *b = malloc(sizeof(float) * N);
                    uint16_t *w16 = malloc(2 * (size_t)N * K);
                    for (int i = 0; i < N * K; i++) {
                        /* values every source dtype holds exactly: 10 significant bits, f16 normals, in (-1, 1) */
                        float v = (float)ldexp(floor(srand1() * 1024.0), -10 + (i % 3 == 0 ? 0 : -(i % 4)));
                        if (dt == RR_KERN_DTYPE_BF16) v = rr_bf16_to_f32(rr_f32_to_bf16(v));
                        w[i] = v;
                        w16[i] = dt == RR_KERN_DTYPE_BF16 ? rr_f32_to_bf16(v) : f32_to_f16_exact(v);
                        if (dt == RR_KERN_DTYPE_F16) CHECK(rr_f16_to_f32(w16[i]) == v);
                    }
                    if (si == 1) w[5 * K + 3] = 0.f; /* a zero and a one-weight row group */
                    if (si == 0 && dt == RR_KERN_DTYPE_F32 && p != RR_PRECISION_INT8) {
                        /* bf16 rounding's edges: NaNs (signalling, quiet), infinities, ties to even both ways */
                        const uint32_t edge[] = {0x7f800001u, 0xffc01234u, 0x7f800000u, 0xff800000u, 0x3f808000u, 0x3f818000u, 0x3f80ffffu};
                        for (size_t e = 0; e < RR_ARRAY_LEN(edge); e++) memcpy(&w[K + 5 + e], &edge[e], 4);
                    }
                    for (int j = 0; j < N; j++) b[j] = srand1();
                    const void *src = dt == RR_KERN_DTYPE_F32 ? (const void *)w : (const void *)w16;
                    if (dt != RR_KERN_DTYPE_F32 && si == 1) w16[5 * K + 3] = 0;
                    rr_linear *l = NULL;
                    REQUIRE(rr_linear_pack(ts[ti], p, src, (rr_kern_dtype)dt, N, K, b, &l) == RR_OK);
                    CHECK(rr_linear_precision(l) == p);
                    rr_linear_view v;
                    rr_linear_view_of(l, &v);
                    const int nr = v.lay.nr, kg = v.lay.kg;
                    const int G = p == RR_PRECISION_INT8 ? rr_kern_int8_group(K) : 0, NG = G ? (K + G - 1) / G : 0;
                    int *qw = malloc(sizeof(int) * (size_t)N * K);
                    float *sw = malloc(sizeof(float) * (size_t)N * (NG + 1));
                    if (G)
                        for (int j = 0; j < N; j++) quant(w + (size_t)j * K, K, G, rr_kern_int8_wmax(ts[ti]), qw + (size_t)j * K, sw + (size_t)j * NG);
                    int here = 0;
                    for (int pn = 0; pn < v.n_panels; pn++)
                        for (int g = 0; g < v.kp; g++)
                            for (int j = 0; j < nr; j++)
                                for (int q = 0; q < kg; q++) {
                                    int n = pn * nr + j, k = g * kg + q, in = n < N && k < K;
                                    size_t at = (size_t)pn * v.panel_bytes, e = ((size_t)g * nr + j) * kg + q;
                                    const uint8_t *pb = (const uint8_t *)v.w + at;
                                    if (p == RR_PRECISION_INT8) {
                                        int8_t got = (int8_t)pb[e];
                                        here += got != (in ? qw[(size_t)n * K + k] : 0);
                                    } else if (p == RR_PRECISION_BF16 || v.w16) {
                                        uint16_t got;
                                        memcpy(&got, pb + 2 * e, 2);
                                        here += got != (in ? rr_f32_to_bf16(w[(size_t)n * K + k]) : 0);
                                    } else {
                                        float got;
                                        memcpy(&got, pb + 4 * e, 4);
                                        here += memcmp(&got, in ? &w[(size_t)n * K + k] : &(float){0}, 4) != 0;
                                    }
                                }
                    for (int n = 0; n < v.n_panels * nr; n++) here += v.bias[n] != (n < N ? b[n] : 0.f);
                    if (G) {
                        CHECK(v.group == G && v.n_sg == NG);
                        for (int n = 0; n < N; n++) {
                            double corr = 0;
                            for (int s = 0; s < NG; s++) {
                                float sc = sw[(size_t)n * NG + s];
                                int32_t sum = 0;
                                for (int k = s * G; k < K && k < (s + 1) * G; k++) sum += qw[(size_t)n * K + k];
                                here += v.wscale[((size_t)(n / nr) * NG + s) * nr + n % nr] != sc;
                                corr += (double)sc * sum;
                            }
                            here += v.wcorr[n] != (float)corr;
                        }
                    }
                    if (here && bad++ < 5)
                        CHECK_MSG(0, "%s %s dtype %d [%d, %d]: %d packed values differ", ts[ti]->name,
                                  prec_name(p), dt, N, K, here);
                    rr_linear_free(l);
                    /* a non-finite weight: INT8 refuses it, naming it */
                    if (p == RR_PRECISION_INT8 && dt == RR_KERN_DTYPE_F32) {
                        for (int x = 0; x < 3; x++) {
                            float keep = w[(N - 1) * K + K - 1 - x];
                            w[(N - 1) * K + K - 1 - x] = x == 0 ? NAN : x == 1 ? INFINITY : -INFINITY;
                            rr_linear *l2 = NULL;
                            CHECK(rr_linear_pack(ts[ti], p, w, RR_KERN_DTYPE_F32, N, K, b, &l2) == RR_ERR_FORMAT);
                            CHECK(l2 == NULL && strstr(rr_errmsg(), "not finite") != NULL);
                            w[(N - 1) * K + K - 1 - x] = keep;
                        }
                    }
                    free(qw), free(sw), free(w), free(w16), free(b);
                }
    CHECK(bad == 0);
}

RR_TEST(kern_linear_bad_args) {
    rr_linear *l = NULL;
    float w[4] = {1, 2, 3, 4};
    CHECK(rr_linear_pack(NULL, RR_PRECISION_FP32, w, RR_KERN_DTYPE_F32, 0, 4, NULL, &l) == RR_ERR_INVALID);
    CHECK(rr_linear_pack(NULL, (rr_precision)9, w, RR_KERN_DTYPE_F32, 1, 4, NULL, &l) == RR_ERR_INVALID);
    CHECK(rr_linear_pack(NULL, RR_PRECISION_FP32, NULL, RR_KERN_DTYPE_F32, 1, 4, NULL, &l) == RR_ERR_INVALID);
    float wn[2] = {1, NAN};
    CHECK(rr_linear_pack(NULL, RR_PRECISION_INT8, wn, RR_KERN_DTYPE_F32, 1, 2, NULL, &l) == RR_ERR_FORMAT);
    CHECK(l == NULL);
    /* allocation failures leave nothing behind */
    for (long n = 1; n < 8; n++) {
        rr_alloc_fail_after(n);
        rr_status st = rr_linear_pack(NULL, RR_PRECISION_INT8, w, RR_KERN_DTYPE_F32, 2, 2, NULL, &l);
        rr_alloc_fail_after(0);
        if (st == RR_OK) {
            rr_linear_free(l);
            break;
        }
        CHECK(st == RR_ERR_NOMEM);
    }
    rr_linear_free(NULL);
    CHECK(rr_linear_pack(NULL, RR_PRECISION_AUTO, w, RR_KERN_DTYPE_F32, 2, 2, NULL, &l) == RR_OK);
    CHECK(rr_linear_precision(l) == rr_kern_auto_precision(rr_kern_get()));
    CHECK(rr_linear_weight_bytes(l) > 0);
    rr_linear_free(l);
}

/* ------------------------------------------------------------------ attention */

/* Naive per-sequence softmax attention in double; returns bad element count. */
static int attn_case(const rr_kern_table *t, rr_precision p, const int *lens, int n_seq, int n_heads, int d,
                     rr_pool *pool) {
    int cu[64];
    cu[0] = 0;
    for (int s = 0; s < n_seq; s++) cu[s + 1] = cu[s] + lens[s];
    const int T = cu[n_seq], H = n_heads * d, ld = 3 * H + 1, ldo = H + 3;
    float *qkv = malloc(sizeof(float) * (size_t)T * ld), *ctx = malloc(sizeof(float) * (size_t)T * ldo);
    for (size_t i = 0; i < (size_t)T * ld; i++) qkv[i] = srand1() * 2.5f;
    for (size_t i = 0; i < (size_t)T * ldo; i++) ctx[i] = 777.f;
    float scale = 1.f / sqrtf((float)d);
    size_t sb = rr_attention_scratch_bytes(rr_pool_size(pool), n_seq, d);
    void *scratch = rr_aligned_alloc(sb);
    rr_attention(t, qkv, ld, cu, n_seq, n_heads, d, scale, ctx, ldo, p, scratch, pool);
    int bf16 = p != RR_PRECISION_FP32, int8 = p == RR_PRECISION_INT8, q8 = int8 && t->attn_q8_d64 && d == 64;
    int bad = 0;
    /* int8: every q and k row quantized (row r, head h at r * H + h * d), its step at r * n_heads + h */
    int *q8v = malloc(sizeof(int) * (size_t)T * H * 2);
    float *q8s = malloc(sizeof(float) * (size_t)T * n_heads * 2);
    for (int r = 0; r < T && int8; r++)
        for (int h = 0; h < n_heads; h++)
            for (int w = 0; w < 2; w++)
                q8s[((size_t)w * T + r) * n_heads + h] =
                    q8_attn_ref(qkv + (size_t)r * ld + w * H + h * d, d, q8v + ((size_t)w * T + r) * H + h * d);
    double *sc = malloc(sizeof(double) * 1024), *sx = malloc(sizeof(double) * 1024), *smag = malloc(sizeof(double) * 1024);
    double ro[64], rt[64], rq[64]; /* q8: q8_pv_ref's output, tolerance and quantization bound per dim */
    for (int s = 0; s < n_seq && bad < 5; s++) {
        for (int h = 0; h < n_heads; h++) {
            for (int i = cu[s]; i < cu[s + 1]; i++) {
                const float *q = qkv + (size_t)i * ld + h * d;
                const int *qi = q8v + (size_t)i * H + h * d;
                const double sq = int8 ? q8s[(size_t)i * n_heads + h] : 0;
                double mx = -1e300, mxx = -1e300, eps = 0;
                for (int j = cu[s]; j < cu[s + 1]; j++) {
                    const float *k = qkv + (size_t)j * ld + H + h * d;
                    const int *kj = q8v + ((size_t)T + j) * H + h * d;
                    const double sk = int8 ? q8s[((size_t)T + j) * n_heads + h] : 0;
                    double dot = 0, dotx = 0, err = 0;
                    for (int e = 0; e < d; e++) {
                        dot += q8 ? (double)qi[e] * kj[e] : bf16 ? bf(q[e]) * bf(k[e]) : (double)q[e] * k[e];
                        dotx += (double)q[e] * k[e];
                        err += fabs(q[e]) * sk + fabs(k[e]) * sq + sq * sk / 2;
                    }
                    if (q8) dot *= sq * sk;
                    sc[j - cu[s]] = dot * scale;
                    sx[j - cu[s]] = dotx * scale;
                    eps = fmax(eps, err / 2 * scale);
                    if (sc[j - cu[s]] > mx) mx = sc[j - cu[s]];
                    if (sx[j - cu[s]] > mxx) mxx = sx[j - cu[s]];
                }
                if (q8) { /* O = P V in int8 too: its reference before sc turns into probabilities */
                    for (int j = 0; j < lens[s]; j++) smag[j] = fabs(sc[j]);
                    q8_pv_ref(sc, smag, 0, lens[s], qkv + (size_t)cu[s] * ld + 2 * H + h * d, ld, d, ro, rt, rq);
                }
                double sum = 0, sumx = 0;
                for (int j = 0; j < lens[s]; j++) sum += (sc[j] = exp(sc[j] - mx)), sumx += (sx[j] = exp(sx[j] - mxx));
                for (int e = 0; e < d; e++) {
                    double o = 0, mag = 0, ox = 0, magx = 0;
                    for (int j = cu[s]; j < cu[s + 1]; j++) {
                        double v = qkv[(size_t)j * ld + 2 * H + h * d + e], vx = q8 ? v : bf16 ? bf((float)v) : v;
                        if (bf16) v = bf((float)v);
                        o += sc[j - cu[s]] / sum * v;
                        mag += sc[j - cu[s]] / sum * fabs(v);
                        ox += sx[j - cu[s]] / sumx * vx;
                        magx += sx[j - cu[s]] / sumx * fabs(vx);
                    }
                    double tol = 2e-5 * mag + 1e-6 + (bf16 ? 0.00390625 * mag : 0);
                    if (q8) o = ro[e], tol = rt[e];
                    double got = ctx[(size_t)i * ldo + h * d + e];
                    if (!(fabs(got - o) <= tol) && bad++ < 3)
                        rr_test_fail(__FILE__, __LINE__, "%s %s seq %d (len %d) head %d row %d dim %d: %.8g vs %.8g",
                                     t->name, prec_name(p), s, lens[s], h, i - cu[s], e, got, o);
                    /* int8: the quantization's bound against unquantized q and k (and p and v where the
                     * table multiplies them in int8: q8_pv_ref's rq, against fp32 v) */
                    double tolx = 2e-5 * magx + 1e-6 + 0.00390625 * magx + expm1(2 * eps) * magx;
                    if (q8) tolx = rt[e] + rq[e] + expm1(2 * eps) * magx;
                    if (int8 && !(fabs(got - ox) <= tolx) && bad++ < 3)
                        rr_test_fail(__FILE__, __LINE__, "%s int8 seq %d (len %d) head %d row %d dim %d: %.8g vs %.8g "
                                     "unquantized, bound %.3g", t->name, s, lens[s], h, i - cu[s], e, got, ox, tolx);
                }
            }
        }
    }
    free(q8v), free(q8s), free(sx), free(smag);
    for (int i = 0; i < T; i++)
        for (int e = H; e < ldo; e++)
            if (ctx[(size_t)i * ldo + e] != 777.f && bad++ < 3)
                rr_test_fail(__FILE__, __LINE__, "%s: wrote past H at row %d", t->name, i);
    free(sc);
    rr_aligned_free(scratch);
    free(qkv), free(ctx);
    return bad;
}

RR_TEST(kern_attention_all_tables) {
    const rr_kern_table *ts[RR_KERN_ISA_COUNT];
    int nt = kern_test_tables(ts);
    rr_pool *pool = NULL;
    REQUIRE(rr_pool_new(2, &pool) == RR_OK);
    /* 256, 257, 300, 450 and 600 cross the tiles of the avx512bf16 kernel (256 rows and keys, blocks of 64) */
    static const int lens[] = {1, 2, 31, 32, 33, 63, 64, 65, 127, 129, 256, 257, 300, 450, 600};
    static const int lens2[] = {5, 17, 96};
    for (int ti = 0; ti < nt; ti++) {
        for (int p = RR_PRECISION_FP32; p <= RR_PRECISION_INT8; p++) {
            CHECK(attn_case(ts[ti], (rr_precision)p, lens, (int)RR_ARRAY_LEN(lens), 2, 64, pool) == 0);
            /* head_dim 128 (the avx512bf16 kernel's second instance: Qwen3, jina-reranker-v3) */
            CHECK(attn_case(ts[ti], (rr_precision)p, lens + 8, 7, 1, 128, pool) == 0);
            CHECK(attn_case(ts[ti], (rr_precision)p, lens2, 3, 3, 40, NULL) == 0);
            CHECK(attn_case(ts[ti], (rr_precision)p, lens2, 3, 1, 16, pool) == 0);
            CHECK(attn_case(ts[ti], (rr_precision)p, lens2 + 2, 1, 2, 8, pool) == 0);
        }
    }
    rr_pool_free(pool);
}

/* A NaN in V reaches every output of its dimension in fp32 and bf16 on every table, also a NaN whose
 * payload is only in the low 16 bits (rounding it to bf16 as a finite value would make infinity). */
RR_TEST(kern_attention_nan_in_v_propagates) {
    const rr_kern_table *ts[RR_KERN_ISA_COUNT];
    int nt = kern_test_tables(ts);
    static const int lens[] = {70, 300};
    static const int dims[] = {64, 40};
    const uint32_t nan_bits = 0x7f800001u;
    for (int ti = 0; ti < nt; ti++)
        for (int p = RR_PRECISION_FP32; p <= RR_PRECISION_BF16; p++)
            for (int di = 0; di < 2; di++) {
                const int d = dims[di], n_heads = 2, H = n_heads * d, ld = 3 * H, T = lens[0] + lens[1];
                const int cu[3] = {0, lens[0], T}, h = 1, e = 3, row = lens[0] + 5;
                float *qkv = malloc(sizeof(float) * (size_t)T * ld), *ctx = malloc(sizeof(float) * (size_t)T * H);
                REQUIRE(qkv && ctx);
                for (size_t i = 0; i < (size_t)T * ld; i++) qkv[i] = srand1() * 2.5f;
                memcpy(qkv + (size_t)row * ld + 2 * H + h * d + e, &nan_bits, 4);
                void *scratch = rr_aligned_alloc(rr_attention_scratch_bytes(1, 2, d));
                REQUIRE(scratch);
                rr_attention(ts[ti], qkv, ld, cu, 2, n_heads, d, 1.f / sqrtf((float)d), ctx, H, (rr_precision)p,
                             scratch, NULL);
                int bad = 0;
                for (int i = 0; i < T; i++)
                    for (int c = 0; c < H; c++) {
                        float got = ctx[(size_t)i * H + c];
                        int want_nan = i >= lens[0] && c == h * d + e;
                        if ((want_nan ? !isnan(got) : !isfinite(got)) && bad++ < 3)
                            rr_test_fail(__FILE__, __LINE__, "%s %s d %d row %d col %d: %g", ts[ti]->name,
                                         prec_name((rr_precision)p), d, i, c, got);
                    }
                CHECK(bad == 0);
                rr_aligned_free(scratch);
                free(qkv), free(ctx);
            }
}

/* ------------------------------------------------------------------ element-wise */

RR_TEST(kern_gelu_tanh_accuracy) {
    const rr_kern_table *ts[RR_KERN_ISA_COUNT];
    int nt = kern_test_tables(ts);
    enum { N = 200003 };
    float *x = malloc(sizeof(float) * N), *y = malloc(sizeof(float) * N);
    for (int i = 0; i < N; i++) x[i] = -12.f + 24.f * (float)i / (N - 1);
    x[0] = 0, x[1] = -0.f, x[2] = 1e-30f, x[3] = -1e-20f, x[4] = 0.5f * sqrtf(2.f), x[5] = -0.5f * sqrtf(2.f);
    for (int ti = 0; ti < nt; ti++) {
        memcpy(y, x, sizeof(float) * N);
        rr_gelu(ts[ti], y, N);
        double worst = 0;
        int wi = 0;
        for (int i = 0; i < N; i++) {
            double ref = gelu_d(x[i]);
            double err = ref == 0 ? fabs(y[i]) : fabs(y[i] - ref) / fabs(ref);
            if (fabs(ref) < 1e-37) err = fabs(y[i]) < 1e-36 ? 0 : 1;
            if (err > worst) worst = err, wi = i;
        }
        CHECK_MSG(worst < 1e-6, "%s gelu: max relative error %.3g at x = %.9g", ts[ti]->name, worst, x[wi]);
        /* huge inputs: gelu(x) = x for large positive, 0 for large negative */
        float big[4] = {50.f, -50.f, 1e30f, -1e30f};
        rr_gelu(ts[ti], big, 4);
        CHECK(big[0] == 50.f && big[1] == 0.f && big[2] == 1e30f && fabsf(big[3]) == 0.f);
        memcpy(y, x, sizeof(float) * N);
        rr_tanh(ts[ti], y, N);
        worst = 0;
        for (int i = 0; i < N; i++) {
            double ref = tanh((double)x[i] * 0.5);
            float in = (float)((double)x[i] * 0.5);
            (void)in;
            ref = tanh((double)x[i]);
            double err = ref == 0 ? fabs(y[i]) : fabs(y[i] - ref) / fabs(ref);
            if (err > worst) worst = err;
        }
        CHECK_MSG(worst < 1e-6, "%s tanh: max relative error %.3g", ts[ti]->name, worst);
    }
    free(x), free(y);
}

/* Activation rows to uint8 (quant_row): every table's, bit for bit the scalar reference's (values,
 * zero point, scale, and nothing written past kpad), on lengths around the vector loops' steps (64
 * and 16 floats), rows made of exact ties (scale 1: x * inv = k + 1/2 rounds to even), one-signed
 * rows and a zero row. */
RR_TEST(kern_quant_row_matches_reference) {
    const rr_kern_table *ts[RR_KERN_ISA_COUNT];
    int nt = kern_test_tables(ts);
    const rr_kern_table *ref = rr_kern_table_for(RR_KERN_ISA_SCALAR);
    REQUIRE(ref != NULL);
    enum { NMAX = 3200 };
    float *x = malloc(sizeof(float) * NMAX);
    uint8_t *want = malloc(NMAX + 64), *got = malloc(NMAX + 64);
    const int lens[] = {1, 7, 15, 16, 17, 63, 64, 65, 100, 127, 128, 129, 200, 384, 768, 1000, 3072, 3133};
    int bad = 0;
    for (size_t li = 0; li < sizeof lens / sizeof *lens; li++) {
        const int n = lens[li], kpad = n + (int)(li % 5) * 3;
        for (int kind = 0; kind < 6; kind++) {
            for (int i = 0; i < n; i++) {
                float v = srand1();
                switch (kind) {
                case 0: x[i] = v * 3.f; break;                              /* general */
                case 1: x[i] = (float)floor(v * 128.0) + 0.5f; break;       /* ties, scale 1 */
                case 2: x[i] = fabsf(v) * 7.f + 1.f; break;                 /* positive: lo = 0 */
                case 3: x[i] = -fabsf(v) * 0.01f - 2.f; break;              /* negative: hi = 0, zp 255 */
                case 4: x[i] = 0.f; break;                                  /* zero row: scale 1 */
                default: x[i] = v * (i % 7 == 0 ? 1e4f : 1e-3f); break;     /* outliers */
                }
            }
            if (kind == 1 && n >= 2) x[0] = -127.5f, x[n - 1] = 127.5f;
            int32_t zw = -1;
            memset(want, 0xAA, NMAX + 64);
            float sw = ref->quant_row(x, n, kpad, want, &zw);
            for (int ti = 0; ti < nt; ti++) {
                int32_t zg = -2;
                memset(got, 0xAA, NMAX + 64);
                float sg = ts[ti]->quant_row(x, n, kpad, got, &zg);
                if (sg != sw || zg != zw || memcmp(got, want, NMAX + 64) != 0) {
                    int at = 0;
                    while (at < NMAX + 63 && got[at] == want[at]) at++;
                    if (bad++ < 5)
                        CHECK_MSG(0, "%s quant_row n %d kind %d: scale %.9g vs %.9g, zp %d vs %d, first byte off at %d (%d vs %d)",
                                  ts[ti]->name, n, kind, sg, sw, zg, zw, at, got[at], want[at]);
                }
            }
        }
    }
    CHECK(bad == 0);
    free(x), free(want), free(got);
}

/* Activation rows to bf16 (to_bf16): every table's, bit for bit the scalar reference's (tables with
 * bf16_wide write each value as the fp32 it rounds to), ties to even, infinities, NaN (quiet) and
 * the values that round up to infinity, with nothing written past kpad. */
RR_TEST(kern_to_bf16_matches_reference) {
    const rr_kern_table *ts[RR_KERN_ISA_COUNT];
    int nt = kern_test_tables(ts);
    const rr_kern_table *ref = rr_kern_table_for(RR_KERN_ISA_SCALAR);
    REQUIRE(ref != NULL);
    enum { NMAX = 800 };
    float *x = malloc(sizeof(float) * NMAX);
    uint16_t *want = malloc(2 * (NMAX + 16));
    uint8_t *got = malloc(4 * (NMAX + 16));
    const int lens[] = {1, 7, 8, 9, 16, 17, 63, 64, 65, 768, 771};
    int bad = 0;
    for (size_t li = 0; li < sizeof lens / sizeof *lens; li++) {
        const int n = lens[li], kpad = n + (int)(li % 3) * 5;
        for (int i = 0; i < n; i++) {
            uint32_t u;
            float v = srand1() * 10.f;
            memcpy(&u, &v, 4);
            switch (i % 9) {
            case 1: u = (u & 0xffff0000u) | 0x8000u; break;      /* a tie */
            case 2: u = (u & 0xfffe0000u) | 0x18000u; break;     /* a tie, odd above */
            case 3: u = 0x7f800000u | (i & 1 ? 0x80000000u : 0); break; /* +-inf */
            case 4: u = 0x7fc00000u + (uint32_t)i; break;         /* quiet NaN with payload */
            case 5: u = 0x7f800001u | (i & 1 ? 0x80000000u : 0); break; /* signalling NaN */
            case 6: u = 0x7f7fffffu; break;                       /* rounds to inf */
            case 7: u = 0x7fffffffu; break;                       /* NaN, all ones */
            default: break;
            }
            memcpy(&x[i], &u, 4);
        }
        memset(want, 0xAA, 2 * (NMAX + 16));
        ref->to_bf16(x, n, kpad, want);
        for (int ti = 0; ti < nt; ti++) {
            const int w = ts[ti]->bf16_wide ? 4 : 2;
            memset(got, 0xAA, 4 * (NMAX + 16));
            ts[ti]->to_bf16(x, n, kpad, got);
            int ok = 1, at = -1;
            for (int i = 0; i < kpad && ok; i++) {
                uint16_t h;
                if (w == 4) {
                    uint32_t u;
                    memcpy(&u, got + 4 * i, 4);
                    h = (uint16_t)(u >> 16);
                    ok = (u & 0xffffu) == 0;
                } else {
                    memcpy(&h, got + 2 * i, 2);
                }
                ok = ok && h == want[i];
                if (!ok) at = i;
            }
            for (int i = w * kpad; i < 4 * (NMAX + 16); i++) ok &= got[i] == 0xAA;
            if (!ok && bad++ < 5) CHECK_MSG(0, "%s to_bf16 n %d kpad %d: element %d differs (or a write past kpad)", ts[ti]->name, n, kpad, at);
        }
    }
    CHECK(bad == 0);
    free(x), free(want), free(got);
}

RR_TEST(kern_layernorm) {
    const rr_kern_table *ts[RR_KERN_ISA_COUNT];
    int nt = kern_test_tables(ts);
    rr_pool *pool = NULL;
    REQUIRE(rr_pool_new(2, &pool) == RR_OK);
    static const int ns[] = {1, 7, 16, 33, 768, 1001};
    for (int ti = 0; ti < nt; ti++) {
        for (size_t c = 0; c < RR_ARRAY_LEN(ns); c++) {
            int n = ns[c], rows = 37, ld = n + 1;
            float *x = malloc(sizeof(float) * rows * ld), *r = malloc(sizeof(float) * rows * ld);
            float *y = malloc(sizeof(float) * rows * ld), *g = malloc(sizeof(float) * n), *b = malloc(sizeof(float) * n);
            for (int i = 0; i < rows * ld; i++) x[i] = srand1() * 3 + 5, r[i] = srand1();
            for (int i = 0; i < n; i++) g[i] = srand1() + 1, b[i] = srand1();
            int use_r = c % 2 == 0, inplace = c % 3 == 0;
            float *xin = malloc(sizeof(float) * rows * ld);
            memcpy(xin, x, sizeof(float) * rows * ld);
            float *out = inplace ? x : y;
            rr_layernorm(ts[ti], rows, n, x, ld, use_r ? r : NULL, ld, g, b, 1e-5f, out, ld, c % 2 ? pool : NULL);
            for (int i = 0; i < rows; i++) {
                double s = 0, ss = 0;
                for (int j = 0; j < n; j++) s += (double)xin[i * ld + j] + (use_r ? r[i * ld + j] : 0);
                double mean = s / n;
                for (int j = 0; j < n; j++) {
                    double dv = (double)xin[i * ld + j] + (use_r ? r[i * ld + j] : 0) - mean;
                    ss += dv * dv;
                }
                double inv = 1 / sqrt(ss / n + 1e-5);
                for (int j = 0; j < n; j++) {
                    double v = ((double)xin[i * ld + j] + (use_r ? r[i * ld + j] : 0) - mean) * inv * g[j] + b[j];
                    /* the input rounding of x + r in fp32 is amplified by inv * g */
                    double tol = 1e-5 * (fabs(v) + 1) + 2e-7 * (fabs(mean) + 4) * inv * fabs(g[j]);
                    if (!(fabs(out[i * ld + j] - v) <= tol)) {
                        rr_test_fail(__FILE__, __LINE__, "%s layernorm n=%d row %d col %d: %.8g vs %.8g", ts[ti]->name,
                                     n, i, j, out[i * ld + j], v);
                        i = rows;
                        break;
                    }
                }
            }
            free(x), free(r), free(y), free(g), free(b), free(xin);
        }
    }
    rr_pool_free(pool);
}

/* ------------------------------------------------------------------ pool */

typedef struct {
    atomic_int *hits;
    atomic_long sum;
    int bad_tid, n_threads;
} pool_arg;

static void pool_fn(void *arg, int item, int tid) {
    pool_arg *a = arg;
    atomic_fetch_add(&a->hits[item], 1);
    atomic_fetch_add(&a->sum, item);
    if (tid < 0 || tid >= a->n_threads) a->bad_tid = 1;
}

typedef struct {
    int n_threads, rounds, fails;
} stress_arg;

static void *pool_stress(void *v) {
    stress_arg *s = v;
    rr_pool *p = NULL;
    if (rr_pool_new(s->n_threads, &p) != RR_OK) {
        s->fails++;
        return NULL;
    }
    atomic_int hits[300];
    for (int r = 0; r < s->rounds; r++) {
        int n = (r * 37) % 300;
        for (int i = 0; i < 300; i++) atomic_store(&hits[i], 0);
        pool_arg a = {hits, 0, 0, rr_pool_size(p)};
        rr_pool_run(p, n, pool_fn, &a);
        for (int i = 0; i < 300; i++)
            if (atomic_load(&hits[i]) != (i < n)) s->fails++;
        if (atomic_load(&a.sum) != (long)n * (n - 1) / 2 || a.bad_tid) s->fails++;
        if (r % 50 == 49) usleep(200); /* let the workers fall asleep now and then */
    }
    rr_pool_free(p);
    return NULL;
}

RR_TEST(kern_pool_contention) {
    /* four pools with 1, 2, 3 and 8 threads, each driven by its own caller, at once on 2 cores */
    pthread_t th[4];
    stress_arg sa[4] = {{1, 400, 0}, {2, 400, 0}, {3, 400, 0}, {8, 200, 0}};
    for (int i = 0; i < 4; i++) REQUIRE(pthread_create(&th[i], NULL, pool_stress, &sa[i]) == 0);
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++) CHECK_MSG(sa[i].fails == 0, "pool of %d: %d failures", sa[i].n_threads, sa[i].fails);
    rr_pool *p = NULL;
    REQUIRE(rr_pool_new(0, &p) == RR_OK);
    CHECK(rr_pool_size(p) == rr_pool_cpu_count());
    rr_pool_run(p, 0, pool_fn, NULL); /* nothing to do: fn not called */
    rr_pool_free(p);
    rr_pool_free(NULL);
    CHECK(rr_pool_size(NULL) == 1);
    for (long n = 1; n < 6; n++) {
        rr_alloc_fail_after(n);
        rr_status st = rr_pool_new(4, &p);
        rr_alloc_fail_after(0);
        if (st == RR_OK) {
            rr_pool_free(p);
            break;
        }
        CHECK(st == RR_ERR_NOMEM);
    }
}

/* ------------------------------------------------------------------ dispatch */

RR_TEST(kern_dispatch) {
    const rr_kern_table *best = rr_kern_get();
    REQUIRE(best != NULL);
    CHECK(rr_kern_table_for(RR_KERN_ISA_SCALAR) == &rr_kern_scalar);
    CHECK(rr_kern_select("scalar") == RR_OK);
    CHECK(rr_kern_get() == &rr_kern_scalar);
    CHECK(!strcmp(rr_kern_name(rr_kern_get()), "scalar"));
    CHECK(rr_kern_select("no-such-isa") == RR_ERR_INVALID);
    CHECK(rr_kern_get() == &rr_kern_scalar);
    /* asking for the top falls back to the best built table with a reason when it is not that one */
    CHECK(rr_kern_select("amx") == RR_OK);
    if (!rr_kern_table_for(RR_KERN_ISA_AMX)) {
        CHECK(rr_kern_isa_of(rr_kern_get()) < RR_KERN_ISA_AMX);
        CHECK(strstr(rr_kern_reason(), "amx") != NULL);
    }
    for (int i = 0; i < RR_KERN_ISA_COUNT; i++) {
        const rr_kern_table *t = rr_kern_table_for((rr_kern_isa)i);
        CHECK(rr_kern_select(rr_kern_isa_name((rr_kern_isa)i)) == RR_OK);
        if (t) CHECK(rr_kern_get() == t);
        else CHECK((int)rr_kern_isa_of(rr_kern_get()) < i);
        if (t) CHECK(rr_kern_cpu_has((rr_kern_isa)i));
    }
    CHECK(rr_kern_select(NULL) == RR_OK);
    CHECK(rr_kern_get() == best);
    CHECK(rr_kern_isa_parse("AVX2") == RR_KERN_ISA_AVX2);
    CHECK(rr_kern_isa_parse("avx3") == -1);
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"))
        CHECK(rr_kern_cpu_has(RR_KERN_ISA_AVX512));
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) CHECK(rr_kern_cpu_has(RR_KERN_ISA_AVX2));
#endif
}

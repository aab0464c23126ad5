/*
 * kern_gen.h -- kernels written once with GCC vector extensions and compiled once per x86 table:
 * each ISA file defines VW (floats per vector), the micro-kernel shape GEN_MR x GEN_NRV vectors,
 * GEN_ATT_RB (query rows per attention register block; GEN_ATT_CV, vectors per block, optional),
 * VSET1(x) and vfma(), then includes this file; its
 * -m flags turn the same code into AVX2 or AVX-512 instructions. Everything here is static: the
 * only symbol an ISA file exports is its table.
 *
 * Math functions (exp, the erfc tail behind GELU) are vectorized with their error bounds stated;
 * tests/test_kernels.c checks them against double precision.
 */
#ifndef VW
#error "define VW before including kern_gen.h"
#endif

#include "kernels/kern_int.h"

#include "core/core.h"

#include <math.h>

typedef float vf __attribute__((vector_size(VW * 4)));
typedef int32_t vi __attribute__((vector_size(VW * 4)));
typedef uint32_t vu __attribute__((vector_size(VW * 4)));
typedef uint16_t vh __attribute__((vector_size(VW * 2)));
typedef int8_t vb __attribute__((vector_size(VW)));

#define GEN_NR (GEN_NRV * VW)
#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define GEN_FN static __attribute__((unused)) /* a table may replace some */

ALWAYS_INLINE vf vload(const float *p) {
    vf v;
    memcpy(&v, p, sizeof v);
    return v;
}
ALWAYS_INLINE void vstore(float *p, vf v) { memcpy(p, &v, sizeof v); }
/* Broadcast through the ISA's set1 (a broadcast load when x comes from memory): the generic
 * (vf){0} + x costs a scalar add, since 0 + x is not x for x = -0. */
ALWAYS_INLINE vf vset1(float x) { return (vf)VSET1(x); }
ALWAYS_INLINE vf vsel(vi mask, vf a, vf b) { return (vf)(((vi)a & mask) | ((vi)b & ~mask)); }
ALWAYS_INLINE vf vabs(vf x) { return (vf)((vi)x & 0x7fffffff); }
ALWAYS_INLINE vf vmax(vf a, vf b) { return vsel(a > b, a, b); }
ALWAYS_INLINE float vhsum(vf v) {
    float s = 0;
    for (int i = 0; i < VW; i++) s += v[i];
    return s;
}
ALWAYS_INLINE float vhmax(vf v) {
    float s = v[0];
    for (int i = 1; i < VW; i++) s = v[i] > s ? v[i] : s;
    return s;
}

/* exp(x) for x in [-87.3, 0], about 1 ulp (Cephes expf polynomial on [-ln2/2, ln2/2]); outside
 * that range the result is meaningless (finite or not), for callers that select it away. */
ALWAYS_INLINE vf vexp_in_range(vf x) {
    vf t = vfma(x, vset1(1.44269504088896341f), vset1(12582912.f)); /* round to nearest integer */
    vf n = t - 12582912.f;
    vi ni = (vi)t - 0x4B400000;
    vf r = vfma(n, vset1(-0.693359375f), x);
    r = vfma(n, vset1(2.12194440e-4f), r);
    vf p = vset1(1.9875691500e-4f);
    p = vfma(p, r, vset1(1.3981999507e-3f));
    p = vfma(p, r, vset1(8.3334519073e-3f));
    p = vfma(p, r, vset1(4.1665795894e-2f));
    p = vfma(p, r, vset1(1.6666665459e-1f));
    p = vfma(p, r, vset1(5.0000001201e-1f));
    p = vfma(p, r * r, r + 1.f);
    vf scale = (vf)((ni + 127) << 23);
    return p * scale;
}

/* exp(x), about 1 ulp; 0 below -87.3, no overflow handling above 88 (callers pass x <= 0). */
ALWAYS_INLINE vf vexp(vf x) {
    vi tiny = x < -87.3f;
    return vsel(tiny, vset1(0.f), vexp_in_range(vmax(x, vset1(-87.3f))));
}

/* 1 / d for d in [1, 6]: the ISA's reciprocal estimate (AVX-512 14 bits, AVX2 12 bits) and one
 * Newton step, relative error below 2^-22 with either, about 3 ulp (a division costs 3 to 6 times
 * as much on the CPUs we run on, and GELU is the one place that needs one). */
ALWAYS_INLINE vf vrcp(vf d) {
#if VW == 16
    vf r = (vf)_mm512_rcp14_ps((__m512)d);
#else
    vf r = (vf)_mm256_rcp_ps((__m256)d);
#endif
    return vfma(r, vfma(-d, r, vset1(1.f)), r);
}

/* GELU(x) = 0.5 x (1 + erf(x / sqrt2)), relative error below 1e-6 for |x| <= 12 (tested).
 * One branch for every x: h = erfc(|z|) / 2 with z = x / sqrt2, then GELU(x) = x h for x < 0 and
 * x (1 - h) for x >= 0 (h <= 1/2 there: no cancellation). erfc(|z|) = R(u) exp(-z^2), with R a
 * degree-9 polynomial in u = 1 / (1 + |z| / 2) fitted (tools/fit_erfc.py) for relative error on
 * |z| in [0, 10] (erfc(z) exp(z^2) is smooth in u), 1.8e-7 evaluated in float32; z^2 = x^2 / 2
 * is formed exactly (FMA split) because exp(-z^2) amplifies its rounding by z^2. */
ALWAYS_INLINE vf vgelu(vf x) {
    vf z = vabs(x) * 0.70710678118654752f;
    vf u = vrcp(vfma(z, vset1(0.5f), vset1(1.f)));
    /* h = R(u) / 2 (the fitted coefficients halved, exactly) */
    vf h = vset1(-2.752581239e-02f);
    h = vfma(h, u, vset1(1.319524199e-01f));
    h = vfma(h, u, vset1(-2.207407802e-01f));
    h = vfma(h, u, vset1(1.105979681e-01f));
    h = vfma(h, u, vset1(8.536899462e-03f));
    h = vfma(h, u, vset1(9.062589705e-02f));
    h = vfma(h, u, vset1(1.248964518e-01f));
    h = vfma(h, u, vset1(1.405492723e-01f));
    h = vfma(h, u, vset1(1.411106884e-01f));
    h = vfma(h, u, vset1(-3.005381359e-06f));
    vf sq = x * x;
    vf sq_lo = vfma(x, x, -sq); /* exact: x^2 = sq + sq_lo */
    vf ex = vexp_in_range(sq * -0.5f);
    ex = vfma(ex, sq_lo * -0.5f, ex); /* exp(-(a + b)) = exp(-a) (1 - b) for tiny b */
    /* past |z| = 9.3 (|x| > 13.1) h = 0: erfc(9.3) = 2e-39, and exp's argument left its range */
    h = vsel(z < 9.3f, h * ex, vset1(0.f));
    return x * vsel(x < 0.f, h, 1.f - h);
}

/* ------------------------------------------------------------------ element-wise */

GEN_FN void gen_gelu(float *x, size_t n) {
    size_t i = 0;
    for (; i + VW <= n; i += VW) vstore(x + i, vgelu(vload(x + i)));
    if (i < n) {
        float tmp[VW] = {0};
        memcpy(tmp, x + i, (n - i) * sizeof(float));
        vstore(tmp, vgelu(vload(tmp)));
        memcpy(x + i, tmp, (n - i) * sizeof(float));
    }
}

/* The head applies tanh to one row per sequence: libm's tanhf (under 2 ulp) is fast enough. */
GEN_FN void gen_tanh(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = tanhf(x[i]);
}

GEN_FN void gen_layernorm(const float *x, const float *r, const float *g, const float *b, float eps, float *y,
                          int n) {
    /* pass 1: v = x + r into y (y may alias x or r: same index read then written), sum */
    vf s = {0};
    float st = 0;
    int j = 0;
    for (; j + VW <= n; j += VW) {
        vf v = vload(x + j);
        if (r) v += vload(r + j);
        vstore(y + j, v);
        s += v;
    }
    for (; j < n; j++) {
        y[j] = x[j] + (r ? r[j] : 0.f);
        st += y[j];
    }
    float mean = (vhsum(s) + st) / (float)n;
    vf q = {0};
    float qt = 0;
    vf vm = vset1(mean);
    for (j = 0; j + VW <= n; j += VW) {
        vf d = vload(y + j) - vm;
        q = vfma(d, d, q);
    }
    for (; j < n; j++) qt += (y[j] - mean) * (y[j] - mean);
    float inv = 1.f / sqrtf((vhsum(q) + qt) / (float)n + eps);
    vf vinv = vset1(inv);
    for (j = 0; j + VW <= n; j += VW)
        vstore(y + j, vfma((vload(y + j) - vm) * vinv, vload(g + j), vload(b + j)));
    for (; j < n; j++) y[j] = (y[j] - mean) * inv * g[j] + b[j];
}

GEN_FN void gen_to_bf16(const float *x, int n, int kpad, void *yv) {
    uint16_t *y = yv;
    for (int i = 0; i < n; i++) y[i] = rr_f32_to_bf16(x[i]);
    for (int i = n; i < kpad; i++) y[i] = 0;
}

/* One row to kpad uint8 quantized values (kern_int.h quant_row). No FMA contraction: x * inv must
 * round before the rounding to an integer, as in the reference. */
__attribute__((optimize("fp-contract=off"))) GEN_FN float gen_quant_row(const float *x, int n, int kpad, void *yv,
                                                                      int32_t *zp) {
    uint8_t *y = yv;
    vf vlo = {0}, vhi = {0};
    float lo = 0, hi = 0;
    int i = 0;
    /* min / max with the element first: (v < m ? v : m) keeps m when v is NaN, as fminf / fmaxf do;
     * four independent accumulators, since one would wait on the previous minimum every vector */
#if VW == 16
#define Q8_MIN(a, b) (vf) _mm512_min_ps((__m512)(a), (__m512)(b))
#define Q8_MAX(a, b) (vf) _mm512_max_ps((__m512)(a), (__m512)(b))
#else
#define Q8_MIN(a, b) (vf) _mm256_min_ps((__m256)(a), (__m256)(b))
#define Q8_MAX(a, b) (vf) _mm256_max_ps((__m256)(a), (__m256)(b))
#endif
    /* named variables, not an array: GCC keeps a loop-carried array in memory */
    vf lo0 = {0}, lo1 = {0}, lo2 = {0}, lo3 = {0}, hi0 = {0}, hi1 = {0}, hi2 = {0}, hi3 = {0};
    for (; i + 4 * VW <= n; i += 4 * VW) {
        vf e0 = vload(x + i), e1 = vload(x + i + VW), e2 = vload(x + i + 2 * VW), e3 = vload(x + i + 3 * VW);
        lo0 = Q8_MIN(e0, lo0), lo1 = Q8_MIN(e1, lo1), lo2 = Q8_MIN(e2, lo2), lo3 = Q8_MIN(e3, lo3);
        hi0 = Q8_MAX(e0, hi0), hi1 = Q8_MAX(e1, hi1), hi2 = Q8_MAX(e2, hi2), hi3 = Q8_MAX(e3, hi3);
    }
    for (; i + VW <= n; i += VW) {
        vf e = vload(x + i);
        lo0 = Q8_MIN(e, lo0);
        hi0 = Q8_MAX(e, hi0);
    }
    vlo = Q8_MIN(Q8_MIN(lo0, lo1), Q8_MIN(lo2, lo3));
    vhi = Q8_MAX(Q8_MAX(hi0, hi1), Q8_MAX(hi2, hi3));
#undef Q8_MIN
#undef Q8_MAX
    /* comparisons rather than fminf / fmaxf, which GCC leaves as libm calls (with the packing loop in linear.c,
     * 1% of the samples of `rerank bench` W1 int8, load included);
     * the same results, NaN included (a NaN loses both comparisons, as fminf / fmaxf ignore it) */
    for (; i < n; i++) lo = x[i] < lo ? x[i] : lo, hi = x[i] > hi ? x[i] : hi;
    for (int e = 0; e < VW; e++) lo = vlo[e] < lo ? vlo[e] : lo, hi = vhi[e] > hi ? vhi[e] : hi;
    float scale = hi > lo ? (hi - lo) / 255.f : 1.f;
    float inv = 1.f / scale;
    /* round half to even, as lrintf, via the 1.5 * 2^23 trick (|x * inv| <= 255) */
    float zf = (-lo * inv + 12582912.f) - 12582912.f;
    int32_t z = zf < 0 ? 0 : zf > 255 ? 255 : (int32_t)zf;
    vf vinv = vset1(inv);
    vi vz = (vi){0} + z;
    i = 0;
    /* four vectors at a time: x * inv rounded to nearest even by the conversion (an explicit rounding
     * mode on AVX-512, MXCSR's default one as lrintf on AVX2), then narrowed with signed saturation
     * to 16 bits and unsigned saturation to 8, which is exactly the clamp to [0, 255]; the packs work
     * within 128-bit lanes, so a permutation puts the 4-byte groups back in order */
#if VW == 16
    const __m512i perm = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
#define Q8_CVT(v) _mm512_add_epi32(_mm512_cvt_roundps_epi32((__m512)(vload(x + i + (v) * VW) * vinv), \
                                                           _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), \
                                  (__m512i)vz)
    for (; i + 4 * VW <= n; i += 4 * VW) {
        __m512i b = _mm512_packus_epi16(_mm512_packs_epi32(Q8_CVT(0), Q8_CVT(1)), _mm512_packs_epi32(Q8_CVT(2), Q8_CVT(3)));
        _mm512_storeu_si512(y + i, _mm512_permutexvar_epi32(perm, b));
    }
#undef Q8_CVT
#else
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
#define Q8_CVT(v) _mm256_add_epi32(_mm256_cvtps_epi32((__m256)(vload(x + i + (v) * VW) * vinv)), (__m256i)vz)
    for (; i + 4 * VW <= n; i += 4 * VW) {
        __m256i b = _mm256_packus_epi16(_mm256_packs_epi32(Q8_CVT(0), Q8_CVT(1)), _mm256_packs_epi32(Q8_CVT(2), Q8_CVT(3)));
        _mm256_storeu_si256((__m256i *)(y + i), _mm256_permutevar8x32_epi32(b, perm));
    }
#undef Q8_CVT
#endif
    for (; i + VW <= n; i += VW) {
        vf r = vload(x + i) * vinv + 12582912.f;
        vi q = ((vi)r - 0x4B400000) + vz;
        q = (vi)vsel(q < 0, (vf)((vi){0}), (vf)q);
        q = (vi)vsel(q > 255, (vf)((vi){0} + 255), (vf)q);
        typedef uint8_t vq __attribute__((vector_size(VW)));
        vq b8 = __builtin_convertvector(q, vq);
        memcpy(y + i, &b8, sizeof b8);
    }
    for (; i < n; i++) {
        float r = (x[i] * inv + 12582912.f) - 12582912.f;
        int32_t q = (int32_t)r + z;
        q = q < 0 ? 0 : q > 255 ? 255 : q;
        y[i] = (uint8_t)q;
    }
    memset(y + i, 0, (size_t)(kpad - i));
    *zp = z;
    return scale;
}

/* ------------------------------------------------------------------ GEMM micro-kernels */

ALWAYS_INLINE void store_tile_row(float *c, const vf *acc, int n) {
    if (n == GEN_NR) {
        for (int v = 0; v < GEN_NRV; v++) vstore(c + v * VW, acc[v]);
    } else {
        float tmp[GEN_NR];
        for (int v = 0; v < GEN_NRV; v++) vstore(tmp + v * VW, acc[v]);
        memcpy(c, tmp, (size_t)n * sizeof(float));
    }
}

ALWAYS_INLINE void load_tile_row(vf *acc, const float *c, int n) {
    if (n == GEN_NR) {
        for (int v = 0; v < GEN_NRV; v++) acc[v] = vload(c + v * VW);
    } else {
        float tmp[GEN_NR] = {0};
        memcpy(tmp, c, (size_t)n * sizeof(float));
        for (int v = 0; v < GEN_NRV; v++) acc[v] = vload(tmp + v * VW);
    }
}

/* Row i of a tile, finished (acc = fp32 sums): + bias, epilogue, store n columns. */
ALWAYS_INLINE void finish_row(const rr_kern_tile *t, int i, vf *acc) {
    for (int v = 0; v < GEN_NRV; v++) acc[v] += vload(t->bias + v * VW);
    if (t->epi == RR_KERN_EPI_GELU) {
        for (int v = 0; v < GEN_NRV; v++) acc[v] = vgelu(acc[v]);
    } else if (t->epi == RR_KERN_EPI_RESIDUAL) {
        vf r[GEN_NRV];
        load_tile_row(r, t->res + (size_t)i * t->ldres, t->n);
        for (int v = 0; v < GEN_NRV; v++) acc[v] += r[v];
    }
    store_tile_row(t->c + (size_t)i * t->ldc, acc, t->n);
}

/* A fp32 rows (a16 = 0) or bf16 rows (a16 = 1); B fp32 (b16 = 0) or bf16 bits (b16 = 1). KG = 1. */
ALWAYS_INLINE void gen_ukr_body(const rr_kern_tile *t, const int a16, const int b16) {
    const uint8_t *arow[GEN_MR];
#pragma GCC unroll 16
    for (int i = 0; i < GEN_MR; i++) arow[i] = (const uint8_t *)t->a + (size_t)(i < t->m ? i : 0) * t->lda;
    vf acc[GEN_MR][GEN_NRV];
#pragma GCC unroll 16
    for (int i = 0; i < GEN_MR; i++) {
        if (!t->first && i < t->m) {
            load_tile_row(acc[i], t->c + (size_t)i * t->ldc, t->n);
        } else {
#pragma GCC unroll 8
            for (int v = 0; v < GEN_NRV; v++) acc[i][v] = (vf){0};
        }
    }
    for (int k = 0; k < t->kp; k++) {
        vf bv[GEN_NRV];
#pragma GCC unroll 8
        for (int v = 0; v < GEN_NRV; v++) {
            if (b16) {
                vh h;
                memcpy(&h, (const uint16_t *)t->b + (size_t)k * GEN_NR + v * VW, sizeof h);
                bv[v] = (vf)(__builtin_convertvector(h, vu) << 16);
            } else {
                bv[v] = vload((const float *)t->b + (size_t)k * GEN_NR + v * VW);
            }
        }
#pragma GCC unroll 16
        for (int i = 0; i < GEN_MR; i++) {
            float a;
            if (a16) a = rr_bf16_to_f32(((const uint16_t *)arow[i])[k]);
            else a = ((const float *)arow[i])[k];
            vf av = vset1(a);
#pragma GCC unroll 8
            for (int v = 0; v < GEN_NRV; v++) acc[i][v] = vfma(av, bv[v], acc[i][v]);
        }
    }
    for (int i = 0; i < t->m; i++) {
        if (t->last) finish_row(t, i, acc[i]);
        else store_tile_row(t->c + (size_t)i * t->ldc, acc[i], t->n);
    }
}

GEN_FN void gen_ukr_f32(const rr_kern_tile *t) { gen_ukr_body(t, 0, 0); }
GEN_FN void gen_ukr_bf16(const rr_kern_tile *t) { gen_ukr_body(t, 1, 1); }
GEN_FN void gen_ukr_f32_w16(const rr_kern_tile *t) { gen_ukr_body(t, 0, 1); }

/* x, opaque to the optimizer: GCC cannot fuse the product that makes it with the add that uses it. */
ALWAYS_INLINE vf q8_opaque(vf x) {
    __asm__("" : "+v"(x));
    return x;
}

/* Finishes an INT8 tile row from its fp32 sums (kern_int.h): a_scale (acc - zp C_j), then as
 * finish_row. The product with a_scale is rounded on its own before finish_row adds the bias:
 * whether GCC would fuse the two depends on how it inlines and spills, which made the scores of
 * two builds of the same kernel differ in the last bit. Not last: stores the fp32 partial sums. */
ALWAYS_INLINE void finish_row_q8(const rr_kern_tile *t, int i, vf *acc) {
    if (!t->last) {
        store_tile_row(t->c + (size_t)i * t->ldc, acc, t->n);
        return;
    }
    vf sx = vset1(t->a_scale[i]), zp = vset1((float)t->a_zp[i]);
    for (int v = 0; v < GEN_NRV; v++) acc[v] = q8_opaque(sx * (acc[v] - zp * vload(t->b_corr + v * VW)));
    finish_row(t, i, acc);
}

/* The fp32 sums of an INT8 tile at a chunk's start: zero (first chunk) or the partial sums in C. */
ALWAYS_INLINE void q8_sums_start(const rr_kern_tile *t, vf facc[GEN_MR][GEN_NRV]) {
#pragma GCC unroll 16
    for (int i = 0; i < GEN_MR; i++) {
        if (!t->first && i < t->m) {
            load_tile_row(facc[i], t->c + (size_t)i * t->ldc, t->n);
        } else {
#pragma GCC unroll 8
            for (int v = 0; v < GEN_NRV; v++) facc[i][v] = (vf){0};
        }
    }
}

/* Adds scale group g's exact int32 sums to the fp32 sums, times the group's channel scales. */
ALWAYS_INLINE void q8_group_flush(const rr_kern_tile *t, int g, vi acc[GEN_MR][GEN_NRV], vf facc[GEN_MR][GEN_NRV]) {
    vf sc[GEN_NRV];
#pragma GCC unroll 8
    for (int v = 0; v < GEN_NRV; v++) sc[v] = vload(t->b_scale + (size_t)g * GEN_NR + v * VW);
#pragma GCC unroll 16
    for (int i = 0; i < GEN_MR; i++)
#pragma GCC unroll 8
        for (int v = 0; v < GEN_NRV; v++) facc[i][v] = vfma(__builtin_convertvector(acc[i][v], vf), sc[v], facc[i][v]);
}

/* uint8 x int8, KG = 1 (the AVX-512 table without VNNI): each scale group summed exactly in int32 lanes, then
 * converted and added to the fp32 sums with the group's channel scales. The fp32 sums are touched
 * once per group, so they may live on the stack while the int32 ones take the registers. */
GEN_FN void gen_ukr_int8(const rr_kern_tile *t) {
    const uint8_t *arow[GEN_MR];
#pragma GCC unroll 16
    for (int i = 0; i < GEN_MR; i++) arow[i] = (const uint8_t *)t->a + (size_t)(i < t->m ? i : 0) * t->lda;
    vf facc[GEN_MR][GEN_NRV];
    q8_sums_start(t, facc);
    const int G = t->group, ng = t->kp / G;
    for (int g = 0; g < ng; g++) {
        vi acc[GEN_MR][GEN_NRV] = {{{0}}};
        for (int k = g * G; k < (g + 1) * G; k++) {
            vi bv[GEN_NRV];
#pragma GCC unroll 8
            for (int v = 0; v < GEN_NRV; v++) {
                vb b8;
                memcpy(&b8, (const int8_t *)t->b + (size_t)k * GEN_NR + v * VW, sizeof b8);
                bv[v] = __builtin_convertvector(b8, vi);
            }
#pragma GCC unroll 16
            for (int i = 0; i < GEN_MR; i++) {
                vi av = (vi){0} + (int32_t)arow[i][k];
#pragma GCC unroll 8
                for (int v = 0; v < GEN_NRV; v++) acc[i][v] += av * bv[v];
            }
        }
        q8_group_flush(t, g, acc, facc);
    }
    for (int i = 0; i < t->m; i++) finish_row_q8(t, i, facc[i]);
}

/* uint8 x int8 on the AVX2 table, KG = 4, with weights in [-63, 63] (the table's q8_wmax): vpmaddubsw
 * multiplies the activation bytes by the weight bytes and sums adjacent pairs into int16 lanes --
 * exact, since |sum| <= 255 * 63 * 2 < 32768, where 8-bit weights would saturate -- and vpmaddwd by
 * ones sums those pairs into int32: three instructions per 4 k and 8 channels. Each scale group is
 * summed in int32, then converted and added to the fp32 sums with the group's channel scales; the
 * fp32 sums are touched once per group, so they may live on the stack while the int32 ones take the
 * registers. */
#if VW == 8
GEN_FN void gen_ukr_int8_quads(const rr_kern_tile *t) {
    const uint8_t *arow[GEN_MR];
#pragma GCC unroll 16
    for (int i = 0; i < GEN_MR; i++) arow[i] = (const uint8_t *)t->a + (size_t)(i < t->m ? i : 0) * t->lda;
    vf facc[GEN_MR][GEN_NRV];
    q8_sums_start(t, facc);
    const int gq = t->group / 4, ng = t->kp / gq; /* k quads per scale group, groups in the chunk */
    const int8_t *b = t->b;
    const __m256i ones = _mm256_set1_epi16(1);
    for (int g = 0; g < ng; g++) {
        vi acc[GEN_MR][GEN_NRV] = {{{0}}};
        for (int kk = g * gq; kk < (g + 1) * gq; kk++, b += 4 * GEN_NR) {
#pragma GCC unroll 16
            for (int i = 0; i < GEN_MR; i++) {
                int32_t quad;
                memcpy(&quad, arow[i] + 4 * kk, 4);
                __m256i av = _mm256_set1_epi32(quad);
#pragma GCC unroll 8
                for (int v = 0; v < GEN_NRV; v++) {
                    /* the weights as vpmaddubsw's memory operand: 12 sums, av, ones and a product
                     * fit the 16 registers, where loaded weights would push a sum to the stack */
                    __m256i p;
                    __asm__("vpmaddubsw %1, %2, %0" : "=x"(p) : "m"(*(const __m256i *)(b + 4 * v * VW)), "x"(av));
                    acc[i][v] += (vi)_mm256_madd_epi16(p, ones);
                }
            }
        }
        q8_group_flush(t, g, acc, facc);
    }
    for (int i = 0; i < t->m; i++) finish_row_q8(t, i, facc[i]);
}
#endif

/* ------------------------------------------------------------------ attention */

ALWAYS_INLINE float rnd_bf16(float x, int on) { return on ? rr_bf16_to_f32(rr_f32_to_bf16(x)) : x; }

/* x rounded to the nearest bf16 (ties to even), kept as fp32; finite inputs. */
ALWAYS_INLINE vf vround_bf16(vf x) {
    vu u = (vu)x;
    u += 0x7fffu + ((u >> 16) & 1u);
    return (vf)(u & 0xffff0000u);
}

/* vround_bf16 for any input: NaN becomes a quiet NaN, as rr_f32_to_bf16 (so a NaN whose payload is
 * in the low 16 bits does not round to infinity). */
ALWAYS_INLINE vf vround_bf16_nan(vf x) {
    vu u = (vu)x;
    vu nan = (vu)((u & 0x7fffffffu) > 0x7f800000u);
    return (vf)((nan & ((u | 0x00400000u) & 0xffff0000u)) | (~nan & (vu)vround_bf16(x)));
}

/* One row to kpad floats rounded to bf16 (zeros past n): the BF16 activation rows of tables without
 * bf16 products (kern_int.h bf16_wide), whose BF16 kernel is the fp32-by-bf16-weights one. NaN
 * becomes a quiet NaN, as rr_f32_to_bf16. */
GEN_FN void gen_to_bf16_f32(const float *x, int n, int kpad, void *yv) {
    float *y = yv;
    int i = 0;
    for (; i + VW <= n; i += VW) vstore(y + i, vround_bf16_nan(vload(x + i)));
    for (; i < n; i++) y[i] = rr_bf16_to_f32(rr_f32_to_bf16(x[i]));
    for (; i < kpad; i++) y[i] = 0.f;
}

/* n floats (n <= 64) from src to dst, rounded to bf16 if bf (a NaN stays a NaN, as in the scalar
 * tail); dst padded with zeros to npad. */
ALWAYS_INLINE void copy_row(float *dst, const float *src, int n, int npad, int bf) {
    int e = 0;
    for (; e + VW <= n; e += VW) {
        vf v = vload(src + e);
        vstore(dst + e, bf ? vround_bf16_nan(v) : v);
    }
    for (; e < n; e++) dst[e] = rnd_bf16(src[e], bf);
    for (; e < npad; e++) dst[e] = 0;
}

#define ATT_QT RR_KERN_ATTN_QT
#define ATT_KT RR_KERN_ATTN_KT
#define ATT_NV (ATT_KT / VW)
/* Vectors per attention register block (keys in S, dims in P V): all of a key tile unless the ISA
 * file asks for fewer, so that more query rows fit in its registers */
#ifndef GEN_ATT_CV
#define GEN_ATT_CV ATT_NV
#endif

/* O[i0 .. i0+RB) += P[i0.., 0:nkt] V[0:nkt, 0:DV*VW], DV a constant so the block stays in registers */
ALWAYS_INLINE void attn_pv_block(float *O, int ldo_, const float *P, const float *V, int ldv, int nkt, int i0,
                                 const int DV) {
    vf acc[GEN_ATT_RB][64 / VW]; /* DV <= 64 / VW */
#pragma GCC unroll 8
    for (int r = 0; r < GEN_ATT_RB; r++)
#pragma GCC unroll 8
        for (int v = 0; v < DV; v++) acc[r][v] = vload(O + (size_t)(i0 + r) * ldo_ + v * VW);
    for (int jj = 0; jj < nkt; jj++) {
        vf vv[64 / VW];
#pragma GCC unroll 8
        for (int v = 0; v < DV; v++) vv[v] = vload(V + (size_t)jj * ldv + v * VW);
#pragma GCC unroll 8
        for (int r = 0; r < GEN_ATT_RB; r++) {
            vf p = vset1(P[(size_t)(i0 + r) * ATT_KT + jj]);
#pragma GCC unroll 8
            for (int v = 0; v < DV; v++) acc[r][v] = vfma(p, vv[v], acc[r][v]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < GEN_ATT_RB; r++)
#pragma GCC unroll 8
        for (int v = 0; v < DV; v++) vstore(O + (size_t)(i0 + r) * ldo_ + v * VW, acc[r][v]);
}

/* Items of up to ATT_QT query rows, or up to RR_KERN_ATTN_QT_BF16 with head_dim 64 (whose scratch
 * is sized for the avx512bf16 kernel's larger tiles, attention.c): K and V are copied once per key
 * tile for all the item's rows. */
GEN_FN void gen_attn(const rr_kern_attn *a) {
    const int D = a->d, Dp = (D + 15) & ~15, bf = a->bf16;
    const int nq = a->nq, nqr = (nq + GEN_ATT_RB - 1) / GEN_ATT_RB * GEN_ATT_RB;
    const int QT = nq <= ATT_QT ? ATT_QT : (nq + 15) & ~15;
    RR_ASSERT(nq <= ATT_QT || (D == 64 && nq <= RR_KERN_ATTN_QT_BF16));
    float *Q = a->scratch;       /* [QT][Dp] */
    float *Kt = Q + QT * Dp;     /* [Dp][KT] */
    float *V = Kt + Dp * ATT_KT; /* [KT][Dp] */
    float *S = V + ATT_KT * Dp;  /* [QT][KT] */
    float *O = S + QT * ATT_KT;  /* [QT][Dp] */
    float *mx = O + QT * Dp;     /* [QT] */
    float *l = mx + QT;          /* [QT] */
    memset(Q, 0, sizeof(float) * QT * Dp);
    memset(O, 0, sizeof(float) * QT * Dp);
    memset(Kt, 0, sizeof(float) * Dp * ATT_KT);
    memset(V, 0, sizeof(float) * ATT_KT * Dp);
    for (int i = 0; i < nq; i++) {
        copy_row(Q + i * Dp, a->q + (size_t)i * a->ld, D, Dp, bf);
        mx[i] = -INFINITY;
        l[i] = 0;
    }
    for (int j0 = 0; j0 < a->nk; j0 += ATT_KT) {
        const int nkt = RR_MIN(ATT_KT, a->nk - j0);
        /* V rows as they are; K transposed so the scores vectorize over keys */
        for (int jj = 0; jj < nkt; jj++) {
            const float *kr = a->k + (size_t)(j0 + jj) * a->ld;
            copy_row(V + jj * Dp, a->v + (size_t)(j0 + jj) * a->ld, D, Dp, bf);
            int e = 0;
            for (; e + VW <= D; e += VW) { /* rounded a vector at a time (as rnd_bf16), then scattered */
                float t[VW];
                vstore(t, bf ? vround_bf16_nan(vload(kr + e)) : vload(kr + e));
                for (int u = 0; u < VW; u++) Kt[(e + u) * ATT_KT + jj] = t[u];
            }
            for (; e < D; e++) Kt[e * ATT_KT + jj] = rnd_bf16(kr[e], bf);
        }
        if (nkt < ATT_KT) { /* last tile: clear the stale keys of the previous one */
            for (int e = 0; e < D; e++)
                for (int jj = nkt; jj < ATT_KT; jj++) Kt[e * ATT_KT + jj] = 0;
            for (int jj = nkt; jj < ATT_KT; jj++)
                for (int e = 0; e < D; e++) V[jj * Dp + e] = 0;
        }
        /* S = scale * Q K^T, GEN_ATT_RB query rows x GEN_ATT_CV vectors of keys per register block */
        for (int i0 = 0; i0 < nqr; i0 += GEN_ATT_RB)
            for (int c0 = 0; c0 < ATT_NV; c0 += GEN_ATT_CV) {
                vf acc[GEN_ATT_RB][GEN_ATT_CV];
#pragma GCC unroll 8
                for (int r = 0; r < GEN_ATT_RB; r++)
#pragma GCC unroll 8
                    for (int v = 0; v < GEN_ATT_CV; v++) acc[r][v] = (vf){0};
                for (int e = 0; e < D; e++) {
                    vf kv[GEN_ATT_CV];
#pragma GCC unroll 8
                    for (int v = 0; v < GEN_ATT_CV; v++) kv[v] = vload(Kt + e * ATT_KT + (c0 + v) * VW);
#pragma GCC unroll 8
                    for (int r = 0; r < GEN_ATT_RB; r++) {
                        vf q = vset1(Q[(i0 + r) * Dp + e]);
#pragma GCC unroll 8
                        for (int v = 0; v < GEN_ATT_CV; v++) acc[r][v] = vfma(q, kv[v], acc[r][v]);
                    }
                }
#pragma GCC unroll 8
                for (int r = 0; r < GEN_ATT_RB; r++)
#pragma GCC unroll 8
                    for (int v = 0; v < GEN_ATT_CV; v++)
                        vstore(S + (i0 + r) * ATT_KT + (c0 + v) * VW, acc[r][v] * a->scale);
            }
        /* online softmax: rescale the running sums to the new row max, P = exp(S - max) */
        for (int i = 0; i < nq; i++) {
            float *s = S + i * ATT_KT;
            for (int jj = nkt; jj < ATT_KT; jj++) s[jj] = -INFINITY;
            rr_kern_attn_bias(a, i, j0, s, nkt);
            if (a->causal) /* keys after this row's position; key 0 (first tile) always remains */
                for (int jj = RR_MAX(0, a->q_pos + i + 1 - j0); jj < nkt; jj++) s[jj] = -INFINITY;
            vf vmx = vset1(mx[i]);
            for (int v = 0; v < ATT_NV; v++) vmx = vmax(vmx, vload(s + v * VW));
            float m = vhmax(vmx);
            if (m == -INFINITY) { /* every key of this tile is outside the row's window */
                for (int jj = 0; jj < ATT_KT; jj++) s[jj] = 0;
                continue;
            }
            float corr = mx[i] == -INFINITY ? 0.f : expf(mx[i] - m);
            mx[i] = m;
            vf sum = {0};
            vf vm = vset1(m);
            for (int v = 0; v < ATT_NV; v++) {
                vf p = vexp(vload(s + v * VW) - vm);
                sum += p;
                vstore(s + v * VW, p);
            }
            l[i] = l[i] * corr + vhsum(sum);
            if (bf)
                for (int v = 0; v < ATT_NV; v++) vstore(s + v * VW, vround_bf16(vload(s + v * VW)));
            if (corr != 1.f) {
                vf vc = vset1(corr);
                for (int e = 0; e < Dp; e += VW) vstore(O + i * Dp + e, vload(O + i * Dp + e) * vc);
            }
        }
        for (int i = nq; i < nqr; i++)
            for (int jj = 0; jj < ATT_KT; jj++) S[i * ATT_KT + jj] = 0;
        /* O += P V */
        for (int i0 = 0; i0 < nqr; i0 += GEN_ATT_RB) {
            if (Dp == 64 && GEN_ATT_CV * VW >= 64) {
                attn_pv_block(O, Dp, S, V, Dp, nkt, i0, 64 / VW);
            } else { /* 16 dims per block (Dp is a multiple of 16; GEN_ATT_CV's rows x 16 fit) */
                for (int dv = 0; dv < Dp; dv += 16)
                    attn_pv_block(O + dv, Dp, S, V + dv, Dp, nkt, i0, 16 / VW);
            }
        }
    }
    for (int i = 0; i < nq; i++) {
        float inv = 1.f / l[i];
        float *out = a->o + (size_t)i * a->ldo;
        for (int e = 0; e < D; e++) out[e] = O[i * Dp + e] * inv;
    }
}

/* ------------------------------------------------------------------ gated units, rotary */

/* x sigmoid(x) with exp of -|x| only (vexp takes x <= 0) */
ALWAYS_INLINE vf vsilu(vf x) {
    vf e = vexp(-vabs(x));
    vf one = vset1(1.f);
    vf sg = vsel(x >= 0.f, one / (one + e), e / (one + e));
    return x * sg;
}

GEN_FN void gen_glu(const float *a, const float *b, float *y, size_t n, int act) {
    size_t j = 0;
    for (; j + VW <= n; j += VW) {
        vf x = vload(a + j), r;
        if (act == RR_KERN_ACT_RELU) r = vmax(x, vset1(0.f));
        else if (act == RR_KERN_ACT_SILU) r = vsilu(x);
        else r = vgelu(x);
        vstore(y + j, r * vload(b + j));
    }
    if (j < n) { /* tail through a zero-padded vector */
        float ta[VW] = {0}, tb[VW] = {0}, ty[VW];
        memcpy(ta, a + j, (n - j) * sizeof(float));
        memcpy(tb, b + j, (n - j) * sizeof(float));
        vf x = vload(ta), r;
        if (act == RR_KERN_ACT_RELU) r = vmax(x, vset1(0.f));
        else if (act == RR_KERN_ACT_SILU) r = vsilu(x);
        else r = vgelu(x);
        vstore(ty, r * vload(tb));
        memcpy(y + j, ty, (n - j) * sizeof(float));
    }
}

/* fp-contract off: the same two roundings per output as the scalar table (x0 c and x1 s rounded,
 * then subtracted), so every table gives identical rotations */
__attribute__((optimize("fp-contract=off"))) GEN_FN void gen_rope(float *v, int n_heads, int d, const float *cs) {
    const int h = d / 2;
    for (int hd = 0; hd < n_heads; hd++, v += d) {
        int j = 0;
        for (; j + VW <= h; j += VW) {
            vf x0 = vload(v + j), x1 = vload(v + j + h), c = vload(cs + j), s = vload(cs + h + j);
            vstore(v + j, x0 * c - x1 * s);
            vstore(v + j + h, x1 * c + x0 * s);
        }
        for (; j < h; j++) {
            float x0 = v[j], x1 = v[j + h], c = cs[j], s = cs[h + j];
            v[j] = x0 * c - x1 * s;
            v[j + h] = x1 * c + x0 * s;
        }
    }
}

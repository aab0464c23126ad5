/*
 * ref.c -- the scalar kernel table: portable C, always built, the reference every vector table is
 * tested against. Written for clarity over speed: plain loops, double precision where it costs
 * nothing (LayerNorm statistics, erf, tanh), the same packed layouts as the vector tables with
 * small panels (MR 4, NR 8, KG 1).
 */
#include "kernels/kern_int.h"

#include "core/core.h"

#include <math.h>

#define REF_MR 4
#define REF_NR 8

/* ------------------------------------------------------------------ element-wise */

static float gelu1(float x) {
    /* erfc for the negative side keeps the relative accuracy where 1 + erf cancels */
    return (float)(0.5 * (double)x * erfc(-(double)x * 0.70710678118654752440));
}

static void epilogue_ref(float *c, size_t ldc, int m, int n, const float *bias, int epi, const float *res,
                         size_t ldres) {
    for (int i = 0; i < m; i++) {
        float *ci = c + (size_t)i * ldc;
        for (int j = 0; j < n; j++) {
            float v = ci[j] + (bias ? bias[j] : 0.f);
            if (epi == RR_KERN_EPI_GELU) v = gelu1(v);
            else if (epi == RR_KERN_EPI_RESIDUAL) v += res[(size_t)i * ldres + j];
            ci[j] = v;
        }
    }
}

static void gelu_ref(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = gelu1(x[i]);
}

static void tanh_ref(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = (float)tanh((double)x[i]);
}

static void layernorm_ref(const float *x, const float *r, const float *g, const float *b, float eps, float *y,
                          int n) {
    double s = 0, ss = 0;
    for (int i = 0; i < n; i++) s += (double)x[i] + (r ? (double)r[i] : 0.0);
    double mean = s / n;
    for (int i = 0; i < n; i++) {
        double d = (double)x[i] + (r ? (double)r[i] : 0.0) - mean;
        ss += d * d;
    }
    double inv = 1.0 / sqrt(ss / n + (double)eps);
    for (int i = 0; i < n; i++) {
        double v = (double)x[i] + (r ? (double)r[i] : 0.0);
        y[i] = (float)((v - mean) * inv * (double)g[i] + (double)b[i]);
    }
}

/* ------------------------------------------------------------------ activation preparation */

static void to_bf16_ref(const float *x, int n, int kpad, void *yv) {
    uint16_t *y = yv;
    for (int i = 0; i < n; i++) y[i] = rr_f32_to_bf16(x[i]);
    for (int i = n; i < kpad; i++) y[i] = 0;
}

static float quant_row_ref(const float *x, int n, int kpad, void *yv, int32_t *zp) {
    uint8_t *y = yv;
    float lo = 0, hi = 0;
    for (int i = 0; i < n; i++) lo = fminf(lo, x[i]), hi = fmaxf(hi, x[i]);
    float scale = hi > lo ? (hi - lo) / 255.f : 1.f;
    float inv = 1.f / scale;
    long z = lrintf(-lo * inv);
    z = z < 0 ? 0 : z > 255 ? 255 : z;
    for (int i = 0; i < n; i++) {
        long v = lrintf(x[i] * inv) + z;
        y[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
    for (int i = n; i < kpad; i++) y[i] = 0;
    *zp = (int32_t)z;
    return scale;
}

/* ------------------------------------------------------------------ micro-kernels */

static const uint8_t *row_ptr(const rr_kern_tile *t, int i) {
    return (const uint8_t *)t->a + (size_t)(i < t->m ? i : 0) * t->lda;
}

/* Stores one row of sums: partial (not last) or finished with bias and epilogue. */
static void finish_row(const rr_kern_tile *t, int i, const float *acc) {
    float *c = t->c + (size_t)i * t->ldc;
    if (!t->last) {
        memcpy(c, acc, sizeof(float) * (size_t)t->n);
        return;
    }
    memcpy(c, acc, sizeof(float) * (size_t)t->n);
    epilogue_ref(c, 0, 1, t->n, t->bias, t->epi, t->res ? t->res + (size_t)i * t->ldres : NULL, 0);
}

static void ukr_f32_ref(const rr_kern_tile *t) {
    const float *b = t->b;
    for (int i = 0; i < t->m; i++) {
        const float *a = (const float *)row_ptr(t, i);
        float acc[REF_NR] = {0};
        if (!t->first) memcpy(acc, t->c + (size_t)i * t->ldc, sizeof(float) * (size_t)t->n);
        for (int k = 0; k < t->kp; k++)
            for (int j = 0; j < REF_NR; j++) acc[j] += a[k] * b[(size_t)k * REF_NR + j];
        finish_row(t, i, acc);
    }
}

static void ukr_f32_w16_ref(const rr_kern_tile *t) {
    const uint16_t *b = t->b;
    for (int i = 0; i < t->m; i++) {
        const float *a = (const float *)row_ptr(t, i);
        float acc[REF_NR] = {0};
        if (!t->first) memcpy(acc, t->c + (size_t)i * t->ldc, sizeof(float) * (size_t)t->n);
        for (int k = 0; k < t->kp; k++)
            for (int j = 0; j < REF_NR; j++) acc[j] += a[k] * rr_bf16_to_f32(b[(size_t)k * REF_NR + j]);
        finish_row(t, i, acc);
    }
}

static void ukr_bf16_ref(const rr_kern_tile *t) {
    const uint16_t *b = t->b;
    for (int i = 0; i < t->m; i++) {
        const uint16_t *a = (const uint16_t *)row_ptr(t, i);
        float acc[REF_NR] = {0};
        if (!t->first) memcpy(acc, t->c + (size_t)i * t->ldc, sizeof(float) * (size_t)t->n);
        for (int k = 0; k < t->kp; k++) {
            float ak = rr_bf16_to_f32(a[k]);
            for (int j = 0; j < REF_NR; j++) acc[j] += ak * rr_bf16_to_f32(b[(size_t)k * REF_NR + j]);
        }
        finish_row(t, i, acc);
    }
}

/* Each scale group summed exactly in int32, then added to the fp32 sums with its channel scales;
 * finished as a_scale (acc - zp C_j) (kern_int.h). */
static void ukr_int8_ref(const rr_kern_tile *t) {
    const int8_t *b = t->b;
    const int G = t->group, ng = t->kp / G; /* KG 1 */
    for (int i = 0; i < t->m; i++) {
        const uint8_t *a = row_ptr(t, i);
        float acc[REF_NR] = {0};
        if (!t->first) memcpy(acc, t->c + (size_t)i * t->ldc, sizeof(float) * (size_t)t->n);
        for (int g = 0; g < ng; g++) {
            int32_t dot[REF_NR] = {0};
            for (int k = g * G; k < (g + 1) * G; k++)
                for (int j = 0; j < REF_NR; j++) dot[j] += (int32_t)a[k] * b[(size_t)k * REF_NR + j];
            for (int j = 0; j < REF_NR; j++) acc[j] += (float)dot[j] * t->b_scale[(size_t)g * REF_NR + j];
        }
        if (t->last)
            for (int j = 0; j < t->n; j++) acc[j] = t->a_scale[i] * (acc[j] - (float)t->a_zp[i] * t->b_corr[j]);
        finish_row(t, i, acc);
    }
}

/* ------------------------------------------------------------------ attention */

static float round_bf16(float x, int on) { return on ? rr_bf16_to_f32(rr_f32_to_bf16(x)) : x; }

/* One query at a time against one key at a time with an online softmax: o accumulates
 * exp(s - max) v, rescaled whenever the running max grows. */
static void attn_ref(const rr_kern_attn *a) {
    float *o = a->scratch; /* [d] */
    for (int i = 0; i < a->nq; i++) {
        const float *q = a->q + (size_t)i * a->ld;
        float mx = -INFINITY, l = 0;
        for (int e = 0; e < a->d; e++) o[e] = 0;
        int nk = a->causal ? RR_MIN(a->nk, a->q_pos + i + 1) : a->nk;
        for (int j = 0; j < nk; j++) {
            const float *kr = a->k + (size_t)j * a->ld, *vr = a->v + (size_t)j * a->ld;
            float s = 0;
            for (int e = 0; e < a->d; e++) s += round_bf16(q[e], a->bf16) * round_bf16(kr[e], a->bf16);
            s *= a->scale;
            rr_kern_attn_bias(a, i, j, &s, 1);
            if (s == -INFINITY) continue; /* outside the window */
            if (s > mx) {
                float corr = expf(mx - s);
                l *= corr;
                for (int e = 0; e < a->d; e++) o[e] *= corr;
                mx = s;
            }
            float p = expf(s - mx);
            l += p;
            float pr = round_bf16(p, a->bf16);
            for (int e = 0; e < a->d; e++) o[e] += pr * round_bf16(vr[e], a->bf16);
        }
        float *out = a->o + (size_t)i * a->ldo;
        for (int e = 0; e < a->d; e++) out[e] = o[e] / l;
    }
}

/* ------------------------------------------------------------------ gated units, rotary */

static float act_ref(float x, int act) {
    switch (act) {
    case RR_KERN_ACT_RELU: return x > 0 ? x : 0.f;
    case RR_KERN_ACT_SILU: return (float)((double)x / (1.0 + exp(-(double)x)));
    default: return gelu1(x);
    }
}

static void glu_ref(const float *a, const float *b, float *y, size_t n, int act) {
    for (size_t j = 0; j < n; j++) y[j] = act_ref(a[j], act) * b[j];
}

static void rope_ref(float *v, int n_heads, int d, const float *cs) {
    int h = d / 2;
    for (int hd = 0; hd < n_heads; hd++, v += d)
        for (int j = 0; j < h; j++) {
            float x0 = v[j], x1 = v[j + h], c = cs[j], s = cs[h + j];
            v[j] = x0 * c - x1 * s;
            v[j + h] = x1 * c + x0 * s;
        }
}

const rr_kern_table rr_kern_scalar = {
    .name = "scalar",
    .isa = RR_KERN_ISA_SCALAR,
    .lay = {[RR_PRECISION_FP32] = {REF_MR, REF_NR, 1},
            [RR_PRECISION_BF16] = {REF_MR, REF_NR, 1},
            [RR_PRECISION_INT8] = {REF_MR, REF_NR, 1}},
    .native_bf16 = 0,
    .ukr = {[RR_PRECISION_FP32] = ukr_f32_ref, [RR_PRECISION_BF16] = ukr_bf16_ref, [RR_PRECISION_INT8] = ukr_int8_ref},
    .ukr_f32_w16 = ukr_f32_w16_ref,
    .to_bf16 = to_bf16_ref,
    .quant_row = quant_row_ref,
    .attn = attn_ref,
    .layernorm = layernorm_ref,
    .gelu = gelu_ref,
    .tanh_ = tanh_ref,
    .glu = glu_ref,
    .rope = rope_ref,
};

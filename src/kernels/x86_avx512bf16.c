/*
 * x86_avx512bf16.c -- the AVX512_BF16 + AVX512_VNNI kernel table (Cooper Lake, Sapphire Rapids,
 * Zen 4): fp32, attention and element-wise kernels from kern_gen.h at 16 floats per vector, plus
 * native micro-kernels for the two low precisions:
 *   bf16  vdpbf16ps: each lane adds a[2g] b[2g] + a[2g+1] b[2g+1] in fp32, so weights are packed in
 *         k pairs (KG 2) and one broadcast dword of A feeds 16 channels;
 *   int8  vpdpbusd: u8 x s8 in groups of 4 k (KG 4); activations are stored as int8 + 128 and the
 *         128 * sum_k w8 per channel, computed at pack time, is subtracted before scaling.
 * Both run 8 rows x 48 channels (24 zmm accumulators).
 * Compiled with ISA_x86_avx512bf16 flags; only called after dispatch.c has checked the CPU and OS.
 */
#include <immintrin.h>

#define VW 16
#define GEN_MR 8
#define GEN_NRV 3
#define GEN_ATT_RB 4

typedef float vf16_ __attribute__((vector_size(64)));
static inline __attribute__((always_inline)) vf16_ vfma(vf16_ a, vf16_ b, vf16_ c) {
    return (vf16_)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
}

#include "kernels/kern_gen.h"

static inline __attribute__((always_inline)) int32_t load_i32(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

static void ukr_bf16_dp(const rr_kern_tile *t) {
    const uint8_t *arow[GEN_MR];
    for (int i = 0; i < GEN_MR; i++) arow[i] = (const uint8_t *)t->a + (size_t)(i < t->m ? i : 0) * t->lda;
    __m512 acc[GEN_MR][GEN_NRV];
#pragma GCC unroll 16
    for (int i = 0; i < GEN_MR; i++)
#pragma GCC unroll 4
        for (int v = 0; v < GEN_NRV; v++) acc[i][v] = _mm512_setzero_ps();
    const __m512i *b = t->b;
    for (int g = 0; g < t->kp; g++) {
        __m512bh bv[GEN_NRV];
#pragma GCC unroll 4
        for (int v = 0; v < GEN_NRV; v++) bv[v] = (__m512bh)_mm512_loadu_si512(b + (size_t)g * GEN_NRV + v);
#pragma GCC unroll 16
        for (int i = 0; i < GEN_MR; i++) {
            __m512bh av = (__m512bh)_mm512_set1_epi32(load_i32(arow[i] + (size_t)g * 4));
#pragma GCC unroll 4
            for (int v = 0; v < GEN_NRV; v++) acc[i][v] = _mm512_dpbf16_ps(acc[i][v], av, bv[v]);
        }
    }
    for (int i = 0; i < t->m; i++) {
        vf out[GEN_NRV];
        for (int v = 0; v < GEN_NRV; v++) out[v] = (vf)acc[i][v];
        store_tile_row(t->c + (size_t)i * t->ldc, out, t->n);
    }
}

static void ukr_int8_vnni(const rr_kern_tile *t) {
    const uint8_t *arow[GEN_MR];
    for (int i = 0; i < GEN_MR; i++) arow[i] = (const uint8_t *)t->a + (size_t)(i < t->m ? i : 0) * t->lda;
    __m512i acc[GEN_MR][GEN_NRV];
#pragma GCC unroll 16
    for (int i = 0; i < GEN_MR; i++)
#pragma GCC unroll 4
        for (int v = 0; v < GEN_NRV; v++) acc[i][v] = _mm512_setzero_si512();
    const __m512i *b = t->b;
    for (int g = 0; g < t->kp; g++) {
        __m512i bv[GEN_NRV];
#pragma GCC unroll 4
        for (int v = 0; v < GEN_NRV; v++) bv[v] = _mm512_loadu_si512(b + (size_t)g * GEN_NRV + v);
#pragma GCC unroll 16
        for (int i = 0; i < GEN_MR; i++) {
            __m512i av = _mm512_set1_epi32(load_i32(arow[i] + (size_t)g * 4));
#pragma GCC unroll 4
            for (int v = 0; v < GEN_NRV; v++) acc[i][v] = _mm512_dpbusd_epi32(acc[i][v], av, bv[v]);
        }
    }
    for (int i = 0; i < t->m; i++) {
        vf out[GEN_NRV];
        __m512 as = _mm512_set1_ps(t->a_scale[i]);
        for (int v = 0; v < GEN_NRV; v++) {
            __m512i c = _mm512_sub_epi32(acc[i][v], _mm512_loadu_si512(t->b_comp + v * VW));
            __m512 s = _mm512_mul_ps(_mm512_loadu_ps(t->b_scale + v * VW), as);
            out[v] = (vf)_mm512_mul_ps(_mm512_cvtepi32_ps(c), s);
        }
        store_tile_row(t->c + (size_t)i * t->ldc, out, t->n);
    }
}

/* Nearest-even rounding in hardware (vcvtneps2bf16); the tail and kpad padding in C. */
static void to_bf16_native(const float *x, int n, int kpad, uint16_t *y) {
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256bh h = _mm512_cvtneps_pbh(_mm512_loadu_ps(x + i));
        memcpy(y + i, &h, 32);
    }
    for (; i < n; i++) y[i] = rr_f32_to_bf16(x[i]);
    for (; i < kpad; i++) y[i] = 0;
}

const rr_kern_table rr_kern_avx512bf16 = {
    .name = "avx512bf16",
    .isa = RR_KERN_ISA_AVX512BF16,
    .lay = {[RR_PRECISION_FP32] = {GEN_MR, GEN_NR, 1},
            [RR_PRECISION_BF16] = {GEN_MR, GEN_NR, 2},
            [RR_PRECISION_INT8] = {GEN_MR, GEN_NR, 4}},
    .int8_u8 = 1,
    .native_bf16 = 1,
    .ukr = {[RR_PRECISION_FP32] = gen_ukr_f32, [RR_PRECISION_BF16] = ukr_bf16_dp, [RR_PRECISION_INT8] = ukr_int8_vnni},
    .epilogue = gen_epilogue,
    .to_bf16 = to_bf16_native,
    .quant_row = gen_quant_row,
    .attn = gen_attn,
    .layernorm = gen_layernorm,
    .gelu = gen_gelu,
    .tanh_ = gen_tanh,
};

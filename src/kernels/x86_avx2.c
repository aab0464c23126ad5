/*
 * x86_avx2.c -- the AVX2 + FMA kernel table (Haswell and later, Zen 1 and later): the generic
 * vector kernels of kern_gen.h at 8 floats per vector. Micro-kernel 6 x 16 (12 ymm accumulators of
 * the 16); bf16 weights are widened to fp32 once per panel chunk (the table's widen_w16, which the
 * driver calls), against BF16 activations prepared as fp32 values rounded to bf16 (a broadcast from
 * memory, as FP32's);
 * gen_attn's register blocks are 4 query rows x 16 keys or dims (8 accumulators); int8 multiplies uint8
 * activations by 7-bit weights four k at a time (vpmaddubsw, then vpmaddwd into int32 lanes).
 * Compiled with ISA_x86_avx2 flags; only called after dispatch.c has checked the CPU and OS.
 */
#include <immintrin.h>

#define VW 8
#define GEN_MR 6
#define GEN_NRV 2
#define GEN_ATT_RB 4
#define GEN_ATT_CV 2
#define VSET1(x) _mm256_set1_ps(x)

typedef float vf8_ __attribute__((vector_size(32)));
static inline __attribute__((always_inline)) vf8_ vfma(vf8_ a, vf8_ b, vf8_ c) {
    return (vf8_)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
}

#include "kernels/kern_gen.h"
#include "kernels/attn_i16.h"

/* n bf16 weights (n a multiple of 8) to fp32, the table's widen_w16: the first reads of a panel
 * chunk in a work item (from L2 or memory), so one zero-extension and one shift per 8 values keeps
 * it at the speed of those reads (a portable version through 128-bit vectors took 14% of bf16 W1). */
static void widen_w16_avx2(const void *b, size_t n, float *out) {
    const uint8_t *src = b;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i lo = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(src + 2 * i)));
        __m256i hi = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(src + 2 * i + 16)));
        _mm256_store_si256((__m256i *)(out + i), _mm256_slli_epi32(lo, 16));
        _mm256_store_si256((__m256i *)(out + i + 8), _mm256_slli_epi32(hi, 16));
    }
    if (i < n) {
        __m256i lo = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(src + 2 * i)));
        _mm256_store_si256((__m256i *)(out + i), _mm256_slli_epi32(lo, 16));
    }
}

/* Items of head_dim 64 in bf16 mode (int8 included) have up to 256 query rows (attn_qt_bf16_d64), so
 * the int8 kernel quantizes each key tile once for 256 rows, and gen_attn copies it once for them
 * (its scratch holds 256 rows at head_dim 64); other items larger than gen_attn's tiles would run
 * 128 rows at a time, each seeing the item's keys (a window's mask is applied per row). */
static void attn_avx2(const rr_kern_attn *a) {
    if (a->q8 && a->d == 64 && !a->causal) {
        attn_i16_d64(a);
    } else if (a->nq > RR_KERN_ATTN_QT && a->d != 64) {
        for (int i0 = 0; i0 < a->nq; i0 += RR_KERN_ATTN_QT) {
            rr_kern_attn b = *a;
            b.nq = RR_MIN(RR_KERN_ATTN_QT, a->nq - i0);
            b.q = a->q + (size_t)i0 * a->ld;
            b.o = a->o + (size_t)i0 * a->ldo;
            b.qoff = a->qoff + i0;
            b.q_pos = a->q_pos + i0;
            gen_attn(&b);
        }
    } else {
        gen_attn(a);
    }
}

const rr_kern_table rr_kern_avx2 = {
    .name = "avx2",
    .isa = RR_KERN_ISA_AVX2,
    .lay = {[RR_PRECISION_FP32] = {GEN_MR, GEN_NR, 1},
            [RR_PRECISION_BF16] = {GEN_MR, GEN_NR, 1},
            [RR_PRECISION_INT8] = {GEN_MR, GEN_NR, 4}},
    .native_bf16 = 0,
    .ukr = {[RR_PRECISION_FP32] = gen_ukr_f32, [RR_PRECISION_BF16] = gen_ukr_f32_w16, [RR_PRECISION_INT8] = gen_ukr_int8_quads},
    .ukr_f32_w16 = gen_ukr_f32_w16,
    .to_bf16 = gen_to_bf16_f32,
    .bf16_wide = 1,
    .widen_w16 = widen_w16_avx2,
    .quant_row = gen_quant_row,
    .q8_wmax = 63,
    .attn = attn_avx2,
    .attn_q8_d64 = 1,
    .attn_qt_bf16_d64 = RR_KERN_ATTN_QT_BF16,
    .layernorm = gen_layernorm,
    .gelu = gen_gelu,
    .tanh_ = gen_tanh,
    .glu = gen_glu,
    .rope = gen_rope,
};

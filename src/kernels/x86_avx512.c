/*
 * x86_avx512.c -- the AVX-512 (F/BW/DQ/VL) kernel table: the generic vector kernels of kern_gen.h
 * at 16 floats per vector. Micro-kernel 8 x 48 (24 zmm accumulators of the 32); bf16 weights are
 * widened to fp32 in registers; int8 multiplies in int32 lanes (no VNNI here).
 * Compiled with ISA_x86_avx512 flags; only called after dispatch.c has checked the CPU and OS.
 */
#include <immintrin.h>

#define VW 16
#define GEN_MR 8
#define GEN_NRV 3
#define GEN_ATT_RB 4
#define VSET1(x) _mm512_set1_ps(x)

typedef float vf16_ __attribute__((vector_size(64)));
static inline __attribute__((always_inline)) vf16_ vfma(vf16_ a, vf16_ b, vf16_ c) {
    return (vf16_)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
}

#include "kernels/kern_gen.h"

const rr_kern_table rr_kern_avx512 = {
    .name = "avx512",
    .isa = RR_KERN_ISA_AVX512,
    .lay = {[RR_PRECISION_FP32] = {GEN_MR, GEN_NR, 1},
            [RR_PRECISION_BF16] = {GEN_MR, GEN_NR, 1},
            [RR_PRECISION_INT8] = {GEN_MR, GEN_NR, 1}},
    .native_bf16 = 0,
    .ukr = {[RR_PRECISION_FP32] = gen_ukr_f32, [RR_PRECISION_BF16] = gen_ukr_bf16, [RR_PRECISION_INT8] = gen_ukr_int8},
    .ukr_f32_w16 = gen_ukr_f32_w16,
    .to_bf16 = gen_to_bf16,
    .quant_row = gen_quant_row,
    .attn = gen_attn,
    .layernorm = gen_layernorm,
    .gelu = gen_gelu,
    .tanh_ = gen_tanh,
    .glu = gen_glu,
    .rope = gen_rope,
};

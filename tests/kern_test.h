/*
 * kern_test.h -- helpers shared by the kernel tests (test_kernels.c, test_kernels_pos.c): the tables
 * this build has, and the int8 attention scores' reference quantization.
 */
#ifndef RR_TESTS_KERN_TEST_H
#define RR_TESTS_KERN_TEST_H

#include "kernels/kern_int.h"

#include <math.h>

/* Every table this build has and the CPU runs; returns how many. */
static inline int kern_test_tables(const rr_kern_table **out) {
    int n = 0;
    for (int i = 0; i < RR_KERN_ISA_COUNT; i++) {
        const rr_kern_table *t = rr_kern_table_for((rr_kern_isa)i);
        if (t) out[n++] = t;
    }
    return n;
}

/* The int8 operands of the int8 attention scores: x[0..d) to q[e] = round_even(x_e * (127 / m)),
 * m = max |x| (0 for a zero row); returns the step m / 127, both in fp32 as the kernels compute them. */
static inline float q8_attn_ref(const float *x, int d, int *q) {
    float m = 0;
    for (int e = 0; e < d; e++) m = fmaxf(m, fabsf(x[e]));
    float inv = m > 0 ? 127.f / m : 0.f;
    for (int e = 0; e < d; e++) q[e] = (int)nearbyintf(x[e] * inv);
    return m / 127.f;
}

#endif

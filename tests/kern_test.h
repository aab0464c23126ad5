/*
 * kern_test.h -- helpers shared by the kernel tests (test_kernels.c, test_kernels_pos.c): the tables
 * this build has, and the int8 attention's reference quantization (scores, and O = P V).
 */
#ifndef RR_TESTS_KERN_TEST_H
#define RR_TESTS_KERN_TEST_H

#include "kernels/kern_int.h"

#include <math.h>
#include <stdlib.h>

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

/* The int8 O = P V of a table with attn_q8_d64 (head_dim 64, no causal mask) for one query row, in double.
 * s[j]: the row's scores (natural-log units, -inf where masked) against keys j of the sequence, of which
 * the work item holds [k0, k1) (the driver's key range: all keys, or those its query tile's window
 * reaches); smag[j] >= |s[j]|'s parts (|q.k scale| + |bias|), for the rounding margin below; v: the
 * sequence's first value row of this head, rows ld floats apart. As the kernel specifies:
 *   the keys in tiles of RR_KERN_ATTN_KT_BF16 from k0; in each, V per dim as q8_attn_ref over the tile's
 *   column (v8 = round_even(v (127 / m)), step m / 127, fp32), and the row's probabilities against the
 *   tile's own maximum tm as p8 = round_even(255 e^(s - tm)); key j weighs w_j = p8_j e^(tm - M) (M the
 *   row's maximum) and O = sum_j w_j v8_j step / sum_j w_j.
 * Per dim e: o[e] that output; tol[e] the kernel's allowance against it: fp32 scaling, 2e-5 mag + 1e-6
 * (mag = sum_j w_j |v^_j| / sum_j w_j), plus one step of p8 for each key whose 255 e^(s - tm) lies so
 * near a half that the kernel's fp32 scores (a few ulp from these) may round it the other way;
 * qerr[e] the quantization's own bound between o and the output with the same scores but unquantized
 * p and v: with p_j = e^(s_j - M), L = sum p_j, u_j = e^(tm - M) of j's tile, |w_j / 255 - p_j| <= u_j / 510
 * and L (O_q - O) = sum_j (w_j / 255 - p_j)(v^_j - O_q) (exact), so P adds sum_j u_j |v^_j - O_q| / (510 L);
 * each v^ is within step / 2 of v, so V adds sum_j p_j step_j / (2 L). */
static inline void q8_pv_ref(const double *s, const double *smag, int k0, int k1, const float *v, int ld, int d,
                             double *o, double *tol, double *qerr) {
    enum { KT = RR_KERN_ATTN_KT_BF16 };
    const size_t n = k1 > k0 ? (size_t)(k1 - k0) : 1;
    double *w = malloc(sizeof(double) * n * 4), *u = w + n, *vh = u + n, *sh = vh + n;
    char *amb = malloc(n);
    double M = -INFINITY, W = 0, L = 0, F = 0;
    for (int j = k0; j < k1; j++) M = fmax(M, s[j]);
    for (int t0 = k0; t0 < k1; t0 += KT) {
        const int t1 = t0 + KT < k1 ? t0 + KT : k1;
        double tm = -INFINITY;
        for (int j = t0; j < t1; j++) tm = fmax(tm, s[j]);
        for (int j = t0; j < t1; j++) {
            const int jj = j - k0;
            w[jj] = u[jj] = 0, amb[jj] = 0;
            if (tm == -INFINITY) continue; /* no key of this tile in the row's reach */
            const double x = 255 * exp(s[j] - tm), margin = x * (1e-6 * (smag[j] + fabs(tm)) + 1e-6) + 1e-5;
            u[jj] = exp(tm - M);
            w[jj] = nearbyint(x) * u[jj];
            amb[jj] = fabs(x - floor(x) - 0.5) <= margin;
            W += w[jj], L += exp(s[j] - M), F += amb[jj] ? u[jj] : 0;
        }
    }
    for (int e = 0; e < d; e++) {
        for (int t0 = k0; t0 < k1; t0 += KT) {
            const int t1 = t0 + KT < k1 ? t0 + KT : k1;
            float m = 0;
            for (int j = t0; j < t1; j++) m = fmaxf(m, fabsf(v[(size_t)j * ld + e]));
            const float inv = m > 0 ? 127.f / m : 0.f, step = m / 127.f;
            for (int j = t0; j < t1; j++) {
                vh[j - k0] = (double)nearbyintf(v[(size_t)j * ld + e] * inv) * step;
                sh[j - k0] = step;
            }
        }
        double num = 0, mag = 0;
        for (int j = 0; j < k1 - k0; j++) num += w[j] * vh[j], mag += w[j] * fabs(vh[j]);
        const double oq = num / W;
        double flip = 0, pt = 0, ev = 0;
        for (int j = 0; j < k1 - k0; j++) {
            if (amb[j]) flip += u[j] * (fabs(vh[j]) + fabs(oq));
            pt += u[j] * fabs(vh[j] - oq);
            if (s[k0 + j] > -INFINITY) ev += exp(s[k0 + j] - M) * sh[j];
        }
        o[e] = oq;
        tol[e] = 2e-5 * mag / W + 1e-6 + (flip > 0 ? flip / (W - F) : 0);
        qerr[e] = pt / (510 * L) + ev / (2 * L);
    }
    free(w), free(amb);
}

#endif

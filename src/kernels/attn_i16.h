/*
 * attn_i16.h -- the int8 attention of the encoders (head_dim 64, no causal mask) for tables whose
 * integer products are AVX2's: the same quantization as the avx512bf16 kernel (kernels.h
 * rr_attention: q and k int8 per row, p8 u8 against the row's maximum in each key tile of
 * RR_KERN_ATTN_KT_BF16 keys, v int8 per dim over the tile), with the int8 values held as int16 so
 * that vpmaddwd multiplies them exactly, two dims (or keys) per 32-bit lane: 16 products per
 * instruction where an fp32 FMA gives 8, and no 16-bit saturation (AVX2's u8 x s8 product,
 * vpmaddubsw, would overflow for p8 x v8 and needs |q8| for q8 x k8). The int32 sums are exact, so
 * the scores and outputs agree with the other int8 tables' to fp32 rounding.
 *
 * Included by an ISA file compiled with AVX2 + FMA with 8-float vectors, after kern_gen.h (vabs, vhmax,
 * vhsum); defines attn_i16_d64.
 */
#ifndef RR_ATTN_I16_H
#define RR_ATTN_I16_H

#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define I16_UNROLL _Pragma("GCC unroll 8")

enum { I16_D = 64, I16_QT = RR_KERN_ATTN_QT_BF16, I16_KT = RR_KERN_ATTN_KT_BF16 };

/* 2^x for x <= 0: x = n + r with n = round(x), |r| <= 1/2, 2^r from the degree-6 polynomial RR_EXP2_C*
 * (kern_int.h, shared with the avx512bf16 kernel), times 2^n built in the exponent field (n >= -126, so
 * a normal number); 0 where x < -125 (-inf included). */
static inline __attribute__((always_inline)) __m256 i16_exp2_le0(__m256 x) {
    const __m256 live = _mm256_cmp_ps(x, _mm256_set1_ps(-125.f), _CMP_GE_OQ);
    x = _mm256_max_ps(x, _mm256_set1_ps(-126.f));
    const __m256 n = _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256 r = _mm256_sub_ps(x, n);
    __m256 p = _mm256_set1_ps(RR_EXP2_C6);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(RR_EXP2_C5));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(RR_EXP2_C4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(RR_EXP2_C3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(RR_EXP2_C2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(RR_EXP2_C1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_and_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(e)), live);
}

/* Two vectors of 8 int32 (each within int16) as 16 int16 in order: vpackssdw interleaves the 128-bit
 * lanes, the permute puts them back. */
static inline __attribute__((always_inline)) __m256i i16_pack(__m256i a, __m256i b) {
    return _mm256_permute4x64_epi64(_mm256_packs_epi32(a, b), 0xd8);
}

/* One row of 64 floats as int8 values in int16: q = round_even(x * (127 / m)), m = max |x| (fp32
 * operations, so a scalar reference gets the same values); out[c] holds dims 16c .. 16c + 15, dword
 * g of the row dims 2g and 2g + 1. Returns m (0 for a zero row, whose q are 0). */
static inline __attribute__((always_inline)) float i16_row64(const float *x, __m256i out[4]) {
    __m256 v[8], am = _mm256_setzero_ps();
    I16_UNROLL for (int c = 0; c < 8; c++) {
        v[c] = _mm256_loadu_ps(x + 8 * c);
        am = _mm256_max_ps(am, (__m256)vabs((vf)v[c]));
    }
    const float m = vhmax((vf)am);
    const __m256 inv = _mm256_set1_ps(m > 0.f ? 127.f / m : 0.f);
    I16_UNROLL for (int c = 0; c < 4; c++)
        out[c] = i16_pack(_mm256_cvtps_epi32(_mm256_mul_ps(v[2 * c], inv)),
                          _mm256_cvtps_epi32(_mm256_mul_ps(v[2 * c + 1], inv)));
    return m;
}

/* 8 x 8 transpose of 32-bit elements */
static inline __attribute__((always_inline)) void i16_transpose8(__m256i r[8]) {
    __m256i t[8], u[8];
    I16_UNROLL for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    I16_UNROLL for (int i = 0; i < 2; i++) {
        u[4 * i + 0] = _mm256_unpacklo_epi64(t[4 * i + 0], t[4 * i + 2]);
        u[4 * i + 1] = _mm256_unpackhi_epi64(t[4 * i + 0], t[4 * i + 2]);
        u[4 * i + 2] = _mm256_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        u[4 * i + 3] = _mm256_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
    I16_UNROLL for (int i = 0; i < 4; i++) {
        r[i] = _mm256_permute2x128_si256(u[i], u[4 + i], 0x20);
        r[4 + i] = _mm256_permute2x128_si256(u[i], u[4 + i], 0x31);
    }
}

/* Keys jb .. jb + 7 of the tile at j0 (rows ld floats apart, zero from nkt) quantized by i16_row64 and
 * transposed into K16 [32 dim pairs g][KT keys] dwords; sk[jb ..] their steps m / 127. tmp: 256 dwords. */
static inline void i16_keys8(const float *k, size_t ld, int j0, int jb, int nkt, uint32_t *K16, float *sk,
                             uint32_t *tmp) {
    for (int i = 0; i < 8; i++) {
        __m256i r[4];
        float m = 0.f;
        if (jb + i < nkt) m = i16_row64(k + (size_t)(j0 + jb + i) * ld, r);
        else r[0] = r[1] = r[2] = r[3] = _mm256_setzero_si256();
        sk[jb + i] = m / 127.f;
        for (int c = 0; c < 4; c++) _mm256_storeu_si256((__m256i *)(tmp + i * 32 + c * 8), r[c]);
    }
    for (int c = 0; c < 4; c++) {
        __m256i r[8];
        I16_UNROLL for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_si256((const __m256i *)(tmp + i * 32 + c * 8));
        i16_transpose8(r);
        I16_UNROLL for (int g = 0; g < 8; g++) _mm256_storeu_si256((__m256i *)(K16 + (size_t)(8 * c + g) * I16_KT + jb), r[g]);
    }
}

/* The values of the tile (rows j0 .. j0 + nkt - 1) with one symmetric scale per dim, as the other
 * int8 tables: m_e = max |v_je| over the tile, v8 = round_even(v (127 / m_e)), step m_e / 127 in sv[e].
 * Stored as V16 [key pairs h][64 dims] dwords, dword e of pair h = (v8[2h][e], v8[2h + 1][e]), zero
 * past nkt in the last pair; np = ceil(nkt / 2). */
static inline void i16_values(const float *v, size_t ld, int j0, int nkt, int np, uint32_t *V16, float *sv) {
    __m256 am[8], inv[8];
    I16_UNROLL for (int c = 0; c < 8; c++) am[c] = _mm256_setzero_ps();
    for (int j = 0; j < nkt; j++)
        I16_UNROLL for (int c = 0; c < 8; c++)
            am[c] = _mm256_max_ps(am[c], (__m256)vabs((vf)_mm256_loadu_ps(v + (size_t)(j0 + j) * ld + 8 * c)));
    I16_UNROLL for (int c = 0; c < 8; c++) {
        const __m256 nz = _mm256_cmp_ps(am[c], _mm256_setzero_ps(), _CMP_GT_OQ);
        inv[c] = _mm256_and_ps(_mm256_div_ps(_mm256_set1_ps(127.f), am[c]), nz);
        _mm256_storeu_ps(sv + 8 * c, _mm256_div_ps(am[c], _mm256_set1_ps(127.f)));
    }
    const __m256i lo16 = _mm256_set1_epi32(0xffff);
    for (int h = 0; h < np; h++) {
        const float *x0 = v + (size_t)(j0 + 2 * h) * ld; /* 2h < nkt: np = ceil(nkt / 2) */
        const int odd = 2 * h + 1 < nkt;
        uint32_t *o = V16 + (size_t)h * I16_D;
        I16_UNROLL for (int c = 0; c < 8; c++) {
            __m256i a = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x0 + 8 * c), inv[c])), b = _mm256_setzero_si256();
            if (odd) b = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x0 + ld + 8 * c), inv[c]));
            _mm256_storeu_si256((__m256i *)(o + 8 * c), _mm256_or_si256(_mm256_and_si256(a, lo16), _mm256_slli_epi32(b, 16)));
        }
    }
}

/* a0 += madd(q, k0), a1 += madd(q, k1) as one asm statement: with the intrinsics GCC copied every
 * accumulator to a fresh register on each step and folded the second key vector into each multiply as
 * a memory operand (9 loads and 8 register moves per 8 products), which left the loops dispatch-bound. */
static inline __attribute__((always_inline)) void i16_madd2(__m256i *a0, __m256i *a1, __m256i q, __m256i k0,
                                                           __m256i k1) {
    __m256i t0, t1;
    __asm__("vpmaddwd %[k0], %[q], %[t0]\n\t"
            "vpmaddwd %[k1], %[q], %[t1]\n\t"
            "vpaddd %[t0], %[a0], %[a0]\n\t"
            "vpaddd %[t1], %[a1], %[a1]"
            : [a0] "+x"(*a0), [a1] "+x"(*a1), [t0] "=&x"(t0), [t1] "=&x"(t1)
            : [q] "x"(q), [k0] "x"(k0), [k1] "x"(k1));
}

/* Scores of 4 query rows x 16 keys in base 2: s = (sum_d q8 k8) sk_j sq_i, the int32 sums exact
 * (|sum| <= 64 * 127 * 127) and so converted exactly. q: the rows' dwords ([4][32]); kp: column 0 of
 * the 16 keys in K16. */
static inline __attribute__((always_inline)) void i16_s4x16(const uint32_t *q, const float *sq, const uint32_t *kp,
                                                           const float *sk, __m256 out[4][2]) {
    __m256i acc[4][2];
    I16_UNROLL for (int r = 0; r < 4; r++) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
    for (int g = 0; g < I16_D / 2; g++) {
        const __m256i k0 = _mm256_loadu_si256((const __m256i *)(kp + (size_t)g * I16_KT));
        const __m256i k1 = _mm256_loadu_si256((const __m256i *)(kp + (size_t)g * I16_KT + 8));
        I16_UNROLL for (int r = 0; r < 4; r++) {
            i16_madd2(&acc[r][0], &acc[r][1], _mm256_set1_epi32((int)q[r * 32 + g]), k0, k1);
        }
    }
    const __m256 s0 = _mm256_loadu_ps(sk), s1 = _mm256_loadu_ps(sk + 8);
    I16_UNROLL for (int r = 0; r < 4; r++) {
        const __m256 qs = _mm256_set1_ps(sq[r]);
        out[r][0] = _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(acc[r][0]), s0), qs);
        out[r][1] = _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(acc[r][1]), s1), qs);
    }
}

/* acc[r][.] = acc[r][.] + (sum over np key pairs of p8 v8) pf[r] sv for 4 rows x 16 dims (dims dv ..
 * dv + 15): p: 4 rows of int16 probabilities, pstride elements apart; the int32 sums are exact (at most
 * 256 x 255 x 127 < 2^24) and so converted exactly. */
static inline __attribute__((always_inline)) void i16_pv4x16(const uint16_t *p, size_t pstride, const uint32_t *V16,
                                                            int dv, int np, const float *sv, const float *pf,
                                                            __m256 acc[4][2]) {
    __m256i ia[4][2];
    I16_UNROLL for (int r = 0; r < 4; r++) ia[r][0] = ia[r][1] = _mm256_setzero_si256();
    for (int h = 0; h < np; h++) {
        const __m256i v0 = _mm256_loadu_si256((const __m256i *)(V16 + (size_t)h * I16_D + dv));
        const __m256i v1 = _mm256_loadu_si256((const __m256i *)(V16 + (size_t)h * I16_D + dv + 8));
        I16_UNROLL for (int r = 0; r < 4; r++) {
            uint32_t pp;
            memcpy(&pp, p + (size_t)r * pstride + 2 * h, 4);
            i16_madd2(&ia[r][0], &ia[r][1], _mm256_set1_epi32((int)pp), v0, v1);
        }
    }
    const __m256 s0 = _mm256_loadu_ps(sv + dv), s1 = _mm256_loadu_ps(sv + dv + 8);
    I16_UNROLL for (int r = 0; r < 4; r++) {
        const __m256 f = _mm256_set1_ps(pf[r]);
        acc[r][0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ia[r][0]), _mm256_mul_ps(s0, f), acc[r][0]);
        acc[r][1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ia[r][1]), _mm256_mul_ps(s1, f), acc[r][1]);
    }
}

/* The encoders' attention in int8 with head_dim 64 and no causal mask (ALiBi and window through
 * rr_kern_attn_bias), organised as the avx512bf16 kernel's: per key tile of up to KT keys, K and V
 * quantized once for the item's query rows; per block of 4 query rows, S (base 2: scores times
 * scale log2(e)), the online softmax with P rounded to p8 against the tile's row maximum and its step
 * 2^(tm - m) / 255 folded into the P V scaling, the row sum over the rounded p8, and O = corr O + P V,
 * written out divided by the row sums after the last tile. Scratch within rr_kern_attn_scratch_floats(64). */
static void attn_i16_d64(const rr_kern_attn *a) {
    enum { D = I16_D, QT = I16_QT, KT = I16_KT };
    float *base = a->scratch;
    uint32_t *Q16 = (uint32_t *)base;           /* [QT][D/2] dwords: dim pairs of q8 */
    float *sq = base + QT * D / 2;              /* [QT] row steps times scale log2(e) */
    float *mx = sq + QT, *l = mx + QT;          /* running max (base 2) and sum per row */
    uint32_t *K16 = (uint32_t *)(l + QT);       /* [D/2][KT] dwords */
    float *sk = (float *)(K16 + D / 2 * KT);    /* [KT] key steps */
    uint32_t *V16 = (uint32_t *)(sk + KT);      /* [KT/2][D] dwords */
    float *sv = (float *)(V16 + KT / 2 * D);    /* [D] value steps */
    float *Sb = sv + D;                         /* [4][KT] scores of one row block */
    uint16_t *P16 = (uint16_t *)(Sb + 4 * KT);  /* [4][KT] p8 */
    float *O = Sb + 4 * KT + 2 * KT;            /* [QT][D] output sums between key tiles */
    uint32_t *tmp = (uint32_t *)(O + QT * D);   /* [8][32] */
    const int nq = a->nq, nqr = (nq + 3) & ~3;
    const size_t ld = (size_t)a->ld;
    const float scl = a->scale * 1.44269504088896341f;
    const int bias = a->alibi != 0.f || a->window > 0;
    rr_kern_attn ab = *a; /* the ALiBi slope in base-2 units, for rr_kern_attn_bias */
    ab.alibi = a->alibi * 1.44269504088896341f;

    for (int i = 0; i < nqr; i++) {
        __m256i r[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
        float m = 0.f;
        if (i < nq) m = i16_row64(a->q + (size_t)i * ld, r);
        for (int c = 0; c < 4; c++) _mm256_storeu_si256((__m256i *)(Q16 + i * 32 + c * 8), r[c]);
        sq[i] = m / 127.f * scl;
        mx[i] = -INFINITY;
        l[i] = 0;
    }
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256 ninf = _mm256_set1_ps(-INFINITY), k255 = _mm256_set1_ps(255.f);
    for (int j0 = 0; j0 < a->nk; j0 += KT) {
        const int nkt = RR_MIN(KT, a->nk - j0), n16 = (nkt + 15) / 16, np = (nkt + 1) / 2, last = j0 + KT >= a->nk;
        for (int jb = 0; jb < n16 * 16; jb += 8) i16_keys8(a->k, ld, j0, jb, nkt, K16, sk, tmp);
        i16_values(a->v, ld, j0, nkt, np, V16, sv);
        for (int i0 = 0; i0 < nqr; i0 += 4) {
            /* S, 16 keys at a time; keys past the tile's end -inf */
            for (int kb = 0; kb < n16; kb++) {
                __m256 s[4][2];
                i16_s4x16(Q16 + (size_t)i0 * 32, sq + i0, K16 + kb * 16, sk + kb * 16, s);
                const __m256i left = _mm256_set1_epi32(nkt - kb * 16);
                const __m256 live0 = _mm256_castsi256_ps(_mm256_cmpgt_epi32(left, iota));
                const __m256 live1 = _mm256_castsi256_ps(_mm256_cmpgt_epi32(left, _mm256_add_epi32(iota, _mm256_set1_epi32(8))));
                I16_UNROLL for (int r = 0; r < 4; r++) {
                    _mm256_storeu_ps(Sb + r * KT + kb * 16, _mm256_blendv_ps(ninf, s[r][0], live0));
                    _mm256_storeu_ps(Sb + r * KT + kb * 16 + 8, _mm256_blendv_ps(ninf, s[r][1], live1));
                }
            }
            /* online softmax in base 2, P to p8 against the tile's own row maximum */
            float corr[4], pf[4];
            for (int r = 0; r < 4; r++) {
                const int i = i0 + r;
                float *srow = Sb + r * KT;
                if (bias) rr_kern_attn_bias(&ab, i, j0, srow, nkt);
                __m256 vm = ninf;
                for (int c = 0; c < n16 * 2; c++) vm = _mm256_max_ps(vm, _mm256_loadu_ps(srow + c * 8));
                const float tm = vhmax((vf)vm);
                corr[r] = 1.f, pf[r] = 0.f;
                if (tm == -INFINITY) { /* every key of this tile is outside the row's window: P = 0 */
                    memset(P16 + (size_t)r * KT, 0, (size_t)n16 * 16 * sizeof(uint16_t));
                    continue;
                }
                const float m = RR_MAX(tm, mx[i]);
                corr[r] = mx[i] == -INFINITY ? 0.f : exp2f(mx[i] - m);
                pf[r] = exp2f(tm - m) * (1.f / 255.f); /* the tile's step of p in units of 2^(s - m) */
                mx[i] = m;
                const __m256 vtm = _mm256_set1_ps(tm);
                __m256 sum = _mm256_setzero_ps();
                for (int c = 0; c < n16; c++) { /* 16 keys: p8 = round_even(255 * 2^(s - tm)) */
                    __m256 pr[2];
                    I16_UNROLL for (int h = 0; h < 2; h++) {
                        const __m256 p = i16_exp2_le0(_mm256_sub_ps(_mm256_loadu_ps(srow + c * 16 + h * 8), vtm));
                        pr[h] = _mm256_round_ps(_mm256_mul_ps(p, k255), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                        sum = _mm256_add_ps(sum, pr[h]);
                    }
                    _mm256_storeu_si256((__m256i *)(P16 + (size_t)r * KT + c * 16),
                                        i16_pack(_mm256_cvttps_epi32(pr[0]), _mm256_cvttps_epi32(pr[1])));
                }
                l[i] = l[i] * corr[r] + pf[r] * vhsum((vf)sum); /* the sum of the rounded p8 */
            }
            /* O = corr O + P V, 16 dims at a time */
            for (int dv = 0; dv < D; dv += 16) {
                __m256 acc[4][2];
                I16_UNROLL for (int r = 0; r < 4; r++) {
                    if (j0 == 0) {
                        acc[r][0] = acc[r][1] = _mm256_setzero_ps();
                    } else {
                        const __m256 cr = _mm256_set1_ps(corr[r]);
                        acc[r][0] = _mm256_mul_ps(_mm256_loadu_ps(O + (i0 + r) * D + dv), cr);
                        acc[r][1] = _mm256_mul_ps(_mm256_loadu_ps(O + (i0 + r) * D + dv + 8), cr);
                    }
                }
                i16_pv4x16(P16, KT, V16, dv, np, sv, pf, acc);
                I16_UNROLL for (int r = 0; r < 4; r++) {
                    if (last) {
                        if (i0 + r >= nq) break;
                        const __m256 inv = _mm256_set1_ps(1.f / l[i0 + r]);
                        float *out = a->o + (size_t)(i0 + r) * a->ldo + dv;
                        _mm256_storeu_ps(out, _mm256_mul_ps(acc[r][0], inv));
                        _mm256_storeu_ps(out + 8, _mm256_mul_ps(acc[r][1], inv));
                    } else {
                        _mm256_storeu_ps(O + (i0 + r) * D + dv, acc[r][0]);
                        _mm256_storeu_ps(O + (i0 + r) * D + dv + 8, acc[r][1]);
                    }
                }
            }
        }
    }
}

#endif

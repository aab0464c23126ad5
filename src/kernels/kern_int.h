/*
 * kern_int.h -- what an ISA file provides: the function table and the argument blocks of its
 * micro-kernels. The drivers in linear.c and attention.c do the blocking, threading and data
 * preparation once for every ISA; each table supplies the inner loops and the packed layout they
 * read (panel width NR, K grouping KG, rows per micro-kernel call MR).
 *
 * Packed weight layout of one precision: panels of NR output channels, n_panels = ceil(n_out/NR);
 * panel p holds kp = ceil(n_in/KG) groups (INT8: more, below), each NR channels x KG consecutive k:
 *     elem(p, g, j, q) = W[p*NR + j, g*KG + q]   at  ((p*kp + g)*NR + j)*KG + q
 * zero-padded past n_out and n_in. Element type: fp32 (FP32; bf16 bits when every weight is an exact
 * bf16 value), bf16 bits (BF16), int8 (INT8).
 * INT8 also cuts K into scale groups of G = rr_kern_int8_group(n_in) consecutive k (a multiple of
 * every table's KG), each with its own fp32 scale per channel, and pads K to whole scale groups (kp
 * is a multiple of G / KG); the scales of panel p are a separate array,
 *     scale(p, s, j) = scale of W[p*NR + j, s*G : (s+1)*G]   at  (p*n_sg + s)*NR + j
 * (n_sg = kp*KG / G scale groups), plus one fp32 C_j = sum_s scale(s, j) sum_{k in s} w8[j, k] per
 * channel for the activation zero points.
 * Prepared activations (scratch): BF16 rows of kp*KG bf16 (zero-padded; fp32 values rounded to
 * bf16 where the table's bf16_wide is set), INT8 rows of kp*KG bytes
 * (uint8 with a zero point: x = scale (q - zp)) plus one fp32 scale and one int32 zero point per row.
 */
#ifndef RR_KERN_INT_H
#define RR_KERN_INT_H

#include "kernels/kernels.h"

#include <stdint.h>

#define RR_KERN_MAX_MR 16
#define RR_KERN_MAX_NR 64

/* k per INT8 weight scale group (kernels.h), at most: a power of two and a multiple of every
 * table's INT8 KG. 256 was chosen by issue 16's rule (docs/KERNELS.md): on the full-size model it is
 * still more accurate than ONNX Runtime's dynamic int8 on every measure, and the fastest such choice
 * (each group ends in an int32 -> fp32 flush). Overridable at build time
 * (EXTRA_CFLAGS=-DRR_KERN_INT8_GROUP=32) to measure others. Up to 256 a group's int32 sum (at most
 * 255 * 127 * G) converts to fp32 exactly. */
#ifndef RR_KERN_INT8_GROUP
#define RR_KERN_INT8_GROUP 256
#endif
#define RR_KERN_INT8_GROUP_MIN (RR_KERN_INT8_GROUP < 32 ? RR_KERN_INT8_GROUP : 32)

/* k per scale group of an INT8 layer with n_in inputs: the largest power of two <= RR_KERN_INT8_GROUP
 * that divides n_in rounded up to RR_KERN_INT8_GROUP_MIN, so K is padded by less than 32 (hidden
 * 768 and 3072: 256; 384 and 1152: 128; 64: 64) rather than to a whole group of 256. */
static inline int rr_kern_int8_group(int n_in) {
    const int lo = RR_KERN_INT8_GROUP_MIN;
    int kpad = (n_in + lo - 1) / lo * lo, g = RR_KERN_INT8_GROUP;
    if (RR_KERN_INT8_GROUP > 256 && kpad <= RR_KERN_INT8_GROUP) { /* measurement builds (e.g. 4096): one scale */
        for (g = lo; g < kpad; g *= 2) {}                           /* per channel, K padded to a power of two */
        return g;
    }
    while (g > lo && kpad % g) g /= 2;
    return g;
}

typedef struct rr_kern_layout {
    int mr, nr, kg;
} rr_kern_layout;

/* One micro-kernel call on one K chunk: C[rows, 0:n] (+)= A[rows, chunk] . panel chunk, for rows
 * < m (the kernel computes mr rows; rows past m read row 0 and are not stored). The driver splits K
 * into chunks so a panel chunk stays in L1 while it serves every row of a block:
 *   first  start from zero (else from the fp32 partial sums left in C by the previous chunk);
 *   last   finish: INT8 dequantization, + bias, then the epilogue; else store partial sums.
 * INT8 chunks are whole scale groups (kp a multiple of group / KG): the kernel sums each
 * group exactly in int32, then adds it to fp32 partial sums scaled by the group's channel scales,
 *     acc_j = sum_s b_scale[s][j] sum_{k in s} a8_k w8_kj,
 * and the last chunk finishes y_j = a_scale (acc_j - a_zp b_corr_j) + bias_j (kernels.h). */
typedef struct rr_kern_tile {
    int m, n;          /* 1 <= m <= mr, 1 <= n <= nr */
    int kp;            /* K groups in this chunk */
    int first, last;
    const void *a;     /* row 0 of A at the chunk: fp32 (FP32), prepared bf16 / int8 rows otherwise */
    size_t lda;        /* bytes between rows of A */
    const void *b;     /* the panel at the chunk */
    float *c;          /* output */
    size_t ldc;        /* floats between rows of C */
    const float *bias; /* [nr] of this panel (zero-padded) */
    int epi;           /* rr_kern_epilogue */
    const float *res;  /* RESIDUAL: row 0 of R at this panel */
    size_t ldres;
    const float *a_scale;  /* INT8: [m] row scales */
    const int32_t *a_zp;   /* INT8: [m] row zero points */
    const float *b_scale;  /* INT8: [kp*KG / group][nr] channel scales of the chunk's groups */
    int group;             /* INT8: k per scale group (rr_kern_int8_group of the layer) */
    const float *b_corr;   /* INT8: [nr] C_j = sum_s scale(s, j) sum_{k in s} w8_kj (for the zero points) */
} rr_kern_tile;

/* One attention work item: one head of one query tile of one sequence. */
typedef struct rr_kern_attn {
    const float *q;     /* first query row of the tile, this head */
    const float *k, *v; /* first key / value row of the sequence, this head */
    int ld;             /* floats between rows of q, k, v */
    int nq, nk;         /* query rows in the tile, keys in the sequence */
    int d;              /* head_dim */
    float scale;
    int bf16;           /* round Q, K, V and the probabilities to bf16 */
    int q8;             /* int8 precision (bf16 set too): a table whose attn_q8_d64 is set computes
                         * S = Q K^T and O = P V in int8 for head_dim 64 without a causal mask (Q per
                         * row, K per key, V per dim and key tile, symmetric scales; P as u8 against
                         * the row's maximum in the key tile, kernels.h rr_attention); everything else
                         * as bf16 */
    float *o;           /* output rows, this head */
    int ldo;
    float *scratch;     /* rr_kern_attn_scratch_floats(d) floats, 64-byte aligned, this thread's */
    /* position bias (kernels.h rr_attn_opts): query row i sits at key position qoff + i; a key j at
     * distance |qoff + i - j| gets -alibi * distance added to its scaled score, and is masked when
     * window > 0 and the distance exceeds it. alibi 0 and window 0: plain attention. */
    float alibi;
    int window;
    int qoff;
    int causal;         /* decoders: query row i sees keys [0, q_pos + i] only (key 0 is always seen) */
    int q_pos;          /* causal: the key index of query row 0 */
    /* attn_gqa128 only (causal, bf16, head_dim 128, K and V packed once per call): the item holds nq
     * positions of n_rep query heads sharing one KV head (head r at q + r d, o + r d); kp / vp hold
     * the packed keys and values of its sequence from the first (block 0 = rows 0..63 of it) */
    int n_rep;
    const uint32_t *kp, *vp;
} rr_kern_attn;

/* Packed bf16 keys and values of one KV head of one sequence with head_dim 128 (kv_pack128,
 * attn_gqa128), in blocks of 64 consecutive rows from its first (zero past the last), 16 KiB each:
 *   K block [64 dim pairs g][64 keys] dwords  (k_j[2g], k_j[2g+1]): one zmm = 16 keys of one pair
 *   V block [32 key pairs h][128 dims] dwords (v_2h[e], v_2h+1[e]): one zmm = 16 dims of one pair */
#define RR_KERN_KV_BLOCK 64
#define RR_KERN_KV_BLOCK_DWORDS (64 * 64)

/* Adds the ALiBi bias and the window mask of a to the scaled scores s[0..n) of query row i against
 * keys j0 .. j0+n-1. Shared by every table: O(keys) next to the O(keys * d) products. */
static inline void rr_kern_attn_bias(const rr_kern_attn *a, int i, int j0, float *s, int n) {
    if (a->alibi == 0.f && a->window <= 0) return;
    int qp = a->qoff + i;
    for (int jj = 0; jj < n; jj++) {
        int dist = qp - (j0 + jj);
        if (dist < 0) dist = -dist;
        if (a->window > 0 && dist > a->window) s[jj] = -__builtin_inff();
        else s[jj] -= a->alibi * (float)dist;
    }
}

/* 2^r for |r| <= 1/2 as 1 + r (C1 + r (C2 + ... + r C6)), fitted for relative error (under 1e-7 evaluated
 * in fp32): the attention kernels' exp2 (x86_avx512bf16.c, attn_i16.h), so their p8 agree */
#define RR_EXP2_C6 1.5346036525e-4f
#define RR_EXP2_C5 1.3400026364e-3f
#define RR_EXP2_C4 9.6184890717e-3f
#define RR_EXP2_C3 5.5503286421e-2f
#define RR_EXP2_C2 2.4022646248e-1f
#define RR_EXP2_C1 6.9314718246e-1f

/* Query and key tile sizes of the attention kernels (shared so scratch sizing is ISA-blind). */
#define RR_KERN_ATTN_QT 128
#define RR_KERN_ATTN_KT 64
/* Query and key tiles of the avx512bf16 head-dim-64 kernel: up to 256 keys per tile (only the
 * blocks of 64 that hold keys are computed), so a sequence of up to 256 tokens takes one pass of
 * the online softmax with no rescaling of the output accumulators; 256 query rows per work item,
 * so such a sequence converts its keys and values to bf16 once per head, not once per 128 rows */
#define RR_KERN_ATTN_QT_BF16 256
#define RR_KERN_ATTN_KT_BF16 256

struct rr_kern_table {
    const char *name;
    rr_kern_isa isa;
    rr_kern_layout lay[4]; /* indexed by rr_precision (FP32, BF16, INT8) */
    int native_bf16;       /* bf16 products in hardware: AUTO picks BF16 */
    /* micro-kernels by precision */
    void (*ukr[4])(const rr_kern_tile *t);
    /* FP32 activations x weights stored as bf16 (exact bf16 values), FP32 layout (KG 1) */
    void (*ukr_f32_w16)(const rr_kern_tile *t);
    /* one row of n floats to kpad bf16 (nearest even, zeros past n), as bf16 bits, or as fp32 values
     * where bf16_wide is set */
    void (*to_bf16)(const float *x, int n, int kpad, void *y);
    /* BF16 prepared activation rows hold fp32 values rounded to bf16, not bf16 bits (tables without
     * bf16 products, whose BF16 kernel then broadcasts A as it does for FP32) */
    int bf16_wide;
    /* bf16 weights (BF16, and FP32 with bf16 weights) multiplied by ukr[FP32] out of an fp32 copy of
     * each panel chunk that the driver widens once per work item, in L1, for all the item's row
     * tiles (tables without bf16 products, where widening in the kernel costs two operations per
     * weight vector beside the FMAs). NULL: not used; else it widens n bf16 values at b (n a
     * multiple of 8, any alignment) to fp32 at out (32-byte aligned) */
    void (*widen_w16)(const void *b, size_t n, float *out);
    /* one row to kpad uint8 (zeros past n): q = clamp(round(x / scale) + zp, 0, 255); returns the
     * scale, *zp the zero point (see kernels.h) */
    float (*quant_row)(const float *x, int n, int kpad, void *y, int32_t *zp);
    /* INT8 weights are quantized to [-q8_wmax, q8_wmax] (0: 127); 63 where the kernel sums pairs of
     * uint8 x int8 products in 16 bits (vpmaddubsw), which 255 * 63 * 2 < 32768 keeps exact */
    int q8_wmax;
    void (*attn)(const rr_kern_attn *a);
    /* query rows per attention work item in bf16 mode with head_dim 64 (0: RR_KERN_ATTN_QT) */
    int attn_qt_bf16_d64;
    /* attn computes S = Q K^T and O = P V in int8 for q8 items with head_dim 64 and no causal mask
     * (rr_kern_attn) */
    int attn_q8_d64;
    /* causal grouped-query attention in bf16 with head_dim 128 over K / V packed once per call (NULL:
     * the driver runs attn per head): kv_pack128 writes block b (rows 64 b .. 64 b + 63, rows >= n
     * zero) of one KV head of a sequence whose row 0 is at k / v, rows ld floats apart (n rows);
     * attn_gqa128 runs an item of
     * n_rep heads x nq positions with n_rep nq <= RR_KERN_ATTN_QT (kern_int.h rr_kern_attn) */
    void (*kv_pack128)(const float *k, const float *v, int ld, int n, int b, uint32_t *kp, uint32_t *vp);
    void (*attn_gqa128)(const rr_kern_attn *a);
    /* y = LN(x + r) g + b over n (r may be NULL) */
    void (*layernorm)(const float *x, const float *r, const float *g, const float *b, float eps, float *y,
                      int n);
    void (*gelu)(float *x, size_t n);
    void (*tanh_)(float *x, size_t n);
    /* y[j] = act(a[j]) * b[j], j < n (rr_kern_act); y may alias a */
    void (*glu)(const float *a, const float *b, float *y, size_t n, int act);
    /* rotates the n_heads head vectors of d floats in v by the angles of one position (kernels.h
     * rr_rope): cs = cos [d/2] then sin [d/2] */
    void (*rope)(float *v, int n_heads, int d, const float *cs);
};

/* The packed arrays of a linear, read-only, for tests that check the layout above byte for byte. */
typedef struct rr_linear_view {
    rr_kern_layout lay;
    int kp, n_panels, n_sg, group, w16;
    size_t panel_bytes;
    const void *w;                     /* n_panels * panel_bytes */
    const float *bias;                 /* [n_panels * nr] */
    const float *wscale, *wcorr;       /* INT8, else NULL */
} rr_linear_view;
void rr_linear_view_of(const rr_linear *l, rr_linear_view *v);

/* Floats of attention scratch per thread for head_dim d (any table). */
size_t rr_kern_attn_scratch_floats(int d);

extern const rr_kern_table rr_kern_scalar;
#if defined(__x86_64__)
extern const rr_kern_table rr_kern_avx2;
extern const rr_kern_table rr_kern_avx512;
extern const rr_kern_table rr_kern_avx512bf16;
#endif

#endif

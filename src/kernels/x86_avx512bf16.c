/*
 * x86_avx512bf16.c -- the AVX512_BF16 + AVX512_VNNI kernel table (Cooper Lake, Sapphire Rapids,
 * Zen 4): fp32, attention and element-wise kernels from kern_gen.h at 16 floats per vector, plus
 * native micro-kernels for the two low precisions:
 *   bf16  vdpbf16ps: each lane adds a[2g] b[2g] + a[2g+1] b[2g+1] in fp32, so weights are packed in
 *         k pairs (KG 2) and one broadcast dword of A feeds 16 channels;
 *   int8  vpdpbusd: u8 x s8 in groups of 4 k (KG 4): the uint8 activations with their zero point
 *         (kernels.h) go in as they are; each weight scale group is summed in int32, then scaled
 *         into fp32 sums; zp * C_j is subtracted before the row scale.
 * bf16 runs 8 rows x 48 channels (24 zmm accumulators), int8 4 x 48 (12 int32 accumulators for the
 * current weight scale group and 12 fp32 sums).
 * Compiled with ISA_x86_avx512bf16 flags; only called after dispatch.c has checked the CPU and OS.
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

/* The 8 x 48 k-loop in inline assembly: GCC shuffles the 24 accumulators of the destructive
 * vdpbf16ps / vpdpbusd between registers and the stack when written with intrinsics (measured: half
 * the rate). zmm8..31 accumulate row i, vector v in zmm(8 + 3i + v); zmm0..2 hold the panel's three
 * vectors of one k group; zmm3..7 take the broadcast dword of A. Rows past m read row 0. The sums
 * start at zero (first chunk: no tile to clear) or from tile; on return tile[i][0:48] holds them.
 * Used for bf16; int8 has its own loop below (per-group scales). */
#define UKR_ROW(OP, A, BR, C0, C1, C2)                                                             \
    "vpbroadcastd (%[" A "],%[off]), %%" BR "\n\t"                                                 \
    OP " %%zmm0, %%" BR ", %%" C0 "\n\t"                                                           \
    OP " %%zmm1, %%" BR ", %%" C1 "\n\t"                                                           \
    OP " %%zmm2, %%" BR ", %%" C2 "\n\t"
#define UKR_LOAD3(off, a, b, c)                                                                    \
    "vmovdqu32 " #off "+0(%[tile]), %%" a "\n\t"                                                   \
    "vmovdqu32 " #off "+64(%[tile]), %%" b "\n\t"                                                  \
    "vmovdqu32 " #off "+128(%[tile]), %%" c "\n\t"
#define UKR_STORE3(off, a, b, c)                                                                   \
    "vmovdqu32 %%" a ", " #off "+0(%[tile])\n\t"                                                   \
    "vmovdqu32 %%" b ", " #off "+64(%[tile])\n\t"                                                  \
    "vmovdqu32 %%" c ", " #off "+128(%[tile])\n\t"
#define UKR_ASM(OP)                                                                                \
    __asm__ volatile(                                                                              \
        "test %[first], %[first]\n\t"                                                              \
        "jz 3f\n\t"                                                                                \
        UKR_ZERO3("zmm8", "zmm9", "zmm10") UKR_ZERO3("zmm11", "zmm12", "zmm13")                    \
        UKR_ZERO3("zmm14", "zmm15", "zmm16") UKR_ZERO3("zmm17", "zmm18", "zmm19")                  \
        UKR_ZERO3("zmm20", "zmm21", "zmm22") UKR_ZERO3("zmm23", "zmm24", "zmm25")                  \
        UKR_ZERO3("zmm26", "zmm27", "zmm28") UKR_ZERO3("zmm29", "zmm30", "zmm31")                  \
        "jmp 4f\n"                                                                                 \
        "3:\n\t"                                                                                   \
        UKR_LOAD3(0, "zmm8", "zmm9", "zmm10") UKR_LOAD3(192, "zmm11", "zmm12", "zmm13")            \
        UKR_LOAD3(384, "zmm14", "zmm15", "zmm16") UKR_LOAD3(576, "zmm17", "zmm18", "zmm19")        \
        UKR_LOAD3(768, "zmm20", "zmm21", "zmm22") UKR_LOAD3(960, "zmm23", "zmm24", "zmm25")        \
        UKR_LOAD3(1152, "zmm26", "zmm27", "zmm28") UKR_LOAD3(1344, "zmm29", "zmm30", "zmm31")      \
        "4:\n\t"                                                                                   \
        "test %[n], %[n]\n\t"                                                                      \
        "jz 2f\n\t"                                                                                \
        ".p2align 5\n"                                                                             \
        "1:\n\t"                                                                                   \
        "vmovdqu64 (%[b]), %%zmm0\n\t"                                                             \
        "vmovdqu64 64(%[b]), %%zmm1\n\t"                                                           \
        "vmovdqu64 128(%[b]), %%zmm2\n\t"                                                          \
        UKR_ROW(OP, "a0", "zmm3", "zmm8", "zmm9", "zmm10")                                         \
        UKR_ROW(OP, "a1", "zmm4", "zmm11", "zmm12", "zmm13")                                       \
        UKR_ROW(OP, "a2", "zmm5", "zmm14", "zmm15", "zmm16")                                       \
        UKR_ROW(OP, "a3", "zmm6", "zmm17", "zmm18", "zmm19")                                       \
        UKR_ROW(OP, "a4", "zmm7", "zmm20", "zmm21", "zmm22")                                       \
        UKR_ROW(OP, "a5", "zmm3", "zmm23", "zmm24", "zmm25")                                       \
        UKR_ROW(OP, "a6", "zmm4", "zmm26", "zmm27", "zmm28")                                       \
        UKR_ROW(OP, "a7", "zmm5", "zmm29", "zmm30", "zmm31")                                       \
        "add $4, %[off]\n\t"                                                                       \
        "add $192, %[b]\n\t"                                                                       \
        "dec %[n]\n\t"                                                                             \
        "jnz 1b\n"                                                                                 \
        "2:\n\t"                                                                                   \
        UKR_STORE3(0, "zmm8", "zmm9", "zmm10") UKR_STORE3(192, "zmm11", "zmm12", "zmm13")          \
        UKR_STORE3(384, "zmm14", "zmm15", "zmm16") UKR_STORE3(576, "zmm17", "zmm18", "zmm19")      \
        UKR_STORE3(768, "zmm20", "zmm21", "zmm22") UKR_STORE3(960, "zmm23", "zmm24", "zmm25")      \
        UKR_STORE3(1152, "zmm26", "zmm27", "zmm28") UKR_STORE3(1344, "zmm29", "zmm30", "zmm31")    \
        : [b] "+r"(b), [off] "+r"(off), [n] "+r"(n)                                                \
        : [a0] "r"(a[0]), [a1] "r"(a[1]), [a2] "r"(a[2]), [a3] "r"(a[3]), [a4] "r"(a[4]),          \
          [a5] "r"(a[5]), [a6] "r"(a[6]), [a7] "r"(a[7]), [tile] "r"(tile), [first] "r"(first)     \
        : "zmm0", "zmm1", "zmm2", "zmm3", "zmm4", "zmm5", "zmm6", "zmm7", "zmm8", "zmm9", "zmm10", \
          "zmm11", "zmm12", "zmm13", "zmm14", "zmm15", "zmm16", "zmm17", "zmm18", "zmm19", "zmm20", \
          "zmm21", "zmm22", "zmm23", "zmm24", "zmm25", "zmm26", "zmm27", "zmm28", "zmm29", "zmm30", \
          "zmm31", "cc", "memory")

/* The int8 kernel with group-wise weight scales (kern_int.h), 4 rows x 48 channels: zmm8..19 sum
 * one scale group exactly in int32 (t->group / 4 vpdpbusd steps; row i, vector v in
 * zmm(8 + 3i + v)); then each is converted to fp32, multiplied by its channels' group scales
 * (zmm0..2, free between groups), added to its fp32 sum in zmm(20 + 3i + v) and zeroed for the next
 * group. Both sets stay in registers: the 8 x 48 shape of the bf16 kernel, with the fp32 sums in
 * an L1 tile instead, lost 19% to the tile traffic of the per-group flush with groups of 32, and
 * with groups of 256 was no faster than this one (docs/KERNELS.md). n counts groups; the inner loop
 * ends when off (bytes of A per row = k) reaches a group boundary (gmask = group - 1, a run-time
 * value: the group is per layer), since the chunk starts on one. zmm20..31 start at zero (first
 * chunk) or from tile, and are output operands: the epilogue reads them from registers. */
#define Q8_MR 4
#define UKR_ZERO3(a, b, c)                                                                         \
    "vpxord %%" a ", %%" a ", %%" a "\n\t"                                                         \
    "vpxord %%" b ", %%" b ", %%" b "\n\t"                                                         \
    "vpxord %%" c ", %%" c ", %%" c "\n\t"
#define UKR_FLUSH1(acc, sc, sum)                                                                   \
    "vcvtdq2ps %%" acc ", %%" acc "\n\t"                                                           \
    "vfmadd231ps %%" acc ", %%" sc ", %%" sum "\n\t"                                               \
    "vpxord %%" acc ", %%" acc ", %%" acc "\n\t"
#define UKR_FLUSH3(a, b, c, sa, sb, sc)                                                            \
    UKR_FLUSH1(a, "zmm0", sa) UKR_FLUSH1(b, "zmm1", sb) UKR_FLUSH1(c, "zmm2", sc)
#define UKR_ASM_Q8()                                                                               \
    __asm__ volatile(                                                                              \
        "test %[first], %[first]\n\t"                                                              \
        "jz 3f\n\t"                                                                                \
        UKR_ZERO3("zmm20", "zmm21", "zmm22") UKR_ZERO3("zmm23", "zmm24", "zmm25")                  \
        UKR_ZERO3("zmm26", "zmm27", "zmm28") UKR_ZERO3("zmm29", "zmm30", "zmm31")                  \
        "jmp 4f\n"                                                                                 \
        "3:\n\t"                                                                                   \
        UKR_LOAD3(0, "zmm20", "zmm21", "zmm22") UKR_LOAD3(192, "zmm23", "zmm24", "zmm25")          \
        UKR_LOAD3(384, "zmm26", "zmm27", "zmm28") UKR_LOAD3(576, "zmm29", "zmm30", "zmm31")        \
        "4:\n\t"                                                                                   \
        UKR_ZERO3("zmm8", "zmm9", "zmm10") UKR_ZERO3("zmm11", "zmm12", "zmm13")                    \
        UKR_ZERO3("zmm14", "zmm15", "zmm16") UKR_ZERO3("zmm17", "zmm18", "zmm19")                  \
        "test %[n], %[n]\n\t"                                                                      \
        "jz 2f\n\t"                                                                                \
        ".p2align 5\n"                                                                             \
        "1:\n\t"                                                                                   \
        "vmovdqu64 (%[b]), %%zmm0\n\t"                                                             \
        "vmovdqu64 64(%[b]), %%zmm1\n\t"                                                           \
        "vmovdqu64 128(%[b]), %%zmm2\n\t"                                                          \
        UKR_ROW("vpdpbusd", "a0", "zmm3", "zmm8", "zmm9", "zmm10")                                 \
        UKR_ROW("vpdpbusd", "a1", "zmm4", "zmm11", "zmm12", "zmm13")                               \
        UKR_ROW("vpdpbusd", "a2", "zmm5", "zmm14", "zmm15", "zmm16")                               \
        UKR_ROW("vpdpbusd", "a3", "zmm6", "zmm17", "zmm18", "zmm19")                               \
        "add $4, %[off]\n\t"                                                                       \
        "add $192, %[b]\n\t"                                                                       \
        "test %[gmask], %[off]\n\t"                                                                \
        "jnz 1b\n\t"                                                                               \
        "vmovups (%[sc]), %%zmm0\n\t"                                                              \
        "vmovups 64(%[sc]), %%zmm1\n\t"                                                            \
        "vmovups 128(%[sc]), %%zmm2\n\t"                                                           \
        "add $192, %[sc]\n\t"                                                                      \
        UKR_FLUSH3("zmm8", "zmm9", "zmm10", "zmm20", "zmm21", "zmm22")                             \
        UKR_FLUSH3("zmm11", "zmm12", "zmm13", "zmm23", "zmm24", "zmm25")                           \
        UKR_FLUSH3("zmm14", "zmm15", "zmm16", "zmm26", "zmm27", "zmm28")                           \
        UKR_FLUSH3("zmm17", "zmm18", "zmm19", "zmm29", "zmm30", "zmm31")                           \
        "dec %[n]\n\t"                                                                             \
        "jnz 1b\n"                                                                                 \
        "2:\n\t"                                                                                   \
        : [b] "+r"(b), [off] "+r"(off), [n] "+r"(n), [sc] "+r"(sc), "=v"(s20), "=v"(s21),           \
          "=v"(s22), "=v"(s23), "=v"(s24), "=v"(s25), "=v"(s26), "=v"(s27), "=v"(s28), "=v"(s29),   \
          "=v"(s30), "=v"(s31)                                                                      \
        : [a0] "r"(a[0]), [a1] "r"(a[1]), [a2] "r"(a[2]), [a3] "r"(a[3]), [tile] "r"(tile),        \
          [first] "r"(first), [gmask] "r"(gmask)                                                    \
        : "zmm0", "zmm1", "zmm2", "zmm3", "zmm4", "zmm5", "zmm6", "zmm8", "zmm9", "zmm10",         \
          "zmm11", "zmm12", "zmm13", "zmm14", "zmm15", "zmm16", "zmm17", "zmm18", "zmm19", "cc",    \
          "memory")

_Static_assert(RR_KERN_INT8_GROUP_MIN % 4 == 0 && (RR_KERN_INT8_GROUP & (RR_KERN_INT8_GROUP - 1)) == 0,
               "the int8 assembly kernel finds group ends with a mask");

_Static_assert(GEN_MR == 8 && GEN_NRV == 3, "the assembly kernels are 8 (bf16) or 4 (int8) x 48");

/* Row pointers of A for an mr-row kernel: rows past m read row 0. */
static void ukr_rows(const rr_kern_tile *t, const uint8_t **a, int mr) {
    for (int i = 0; i < mr; i++) a[i] = (const uint8_t *)t->a + (size_t)(i < t->m ? i : 0) * t->lda;
}

/* An mr x 48 tile starts from zero or from the partial sums in C (rows < m, columns < n). */
static void tile_init(const rr_kern_tile *t, float *tile, int mr) {
    if (t->first) {
        memset(tile, 0, sizeof(float) * (size_t)mr * GEN_NR);
        return;
    }
    for (int i = 0; i < t->m; i++) memcpy(tile + i * GEN_NR, t->c + (size_t)i * t->ldc, sizeof(float) * (size_t)t->n);
}

static void ukr_bf16_dp(const rr_kern_tile *t) {
    const uint8_t *a[GEN_MR];
    ukr_rows(t, a, GEN_MR);
    float tile[GEN_MR * GEN_NR] __attribute__((aligned(64)));
    const int first = t->first; /* the assembly zeroes the sums itself */
    if (!first) tile_init(t, tile, GEN_MR);
    const uint8_t *b = t->b;
    size_t off = 0, n = (size_t)t->kp;
    UKR_ASM("vdpbf16ps");
    for (int i = 0; i < t->m; i++) {
        vf acc[GEN_NRV];
        for (int v = 0; v < GEN_NRV; v++) acc[v] = vload(tile + i * GEN_NR + v * VW);
        if (t->last) finish_row(t, i, acc);
        else store_tile_row(t->c + (size_t)i * t->ldc, acc, t->n);
    }
}

/* finish_row_q8 of kern_gen.h for row i of the int8 tile, with the row's three vectors as values
 * rather than an array, so they stay in registers. The same operations and roundings, bit for bit:
 * acc - zp C_j fused, then the product with the row scale rounded on its own before the bias is
 * added (q8_opaque keeps the two apart there too). */
static inline __attribute__((always_inline)) void q8_finish_row(const rr_kern_tile *t, int i, vf a0, vf a1, vf a2) {
    float *c = t->c + (size_t)i * t->ldc;
    if (t->last) {
        vf sx = vset1(t->a_scale[i]), zp = vset1((float)t->a_zp[i]);
        a0 = q8_opaque(sx * (a0 - zp * vload(t->b_corr))) + vload(t->bias);
        a1 = q8_opaque(sx * (a1 - zp * vload(t->b_corr + VW))) + vload(t->bias + VW);
        a2 = q8_opaque(sx * (a2 - zp * vload(t->b_corr + 2 * VW))) + vload(t->bias + 2 * VW);
        if (t->epi == RR_KERN_EPI_GELU) {
            a0 = vgelu(a0), a1 = vgelu(a1), a2 = vgelu(a2);
        } else if (t->epi == RR_KERN_EPI_RESIDUAL) {
            vf r[GEN_NRV];
            load_tile_row(r, t->res + (size_t)i * t->ldres, t->n);
            a0 += r[0], a1 += r[1], a2 += r[2];
        }
    }
    if (t->n == GEN_NR) {
        vstore(c, a0), vstore(c + VW, a1), vstore(c + 2 * VW, a2);
    } else {
        vf acc[GEN_NRV] = {a0, a1, a2};
        store_tile_row(c, acc, t->n);
    }
}

static void ukr_int8_vnni(const rr_kern_tile *t) {
    const uint8_t *a[Q8_MR];
    ukr_rows(t, a, Q8_MR);
    /* The fp32 sums are asm operands pinned to zmm20..31 (row i, vector v in zmm(20 + 3i + v)), so
     * they go from the loop to the dequantization and the epilogue without a trip through memory. */
    register __m512 s20 __asm__("zmm20"), s21 __asm__("zmm21"), s22 __asm__("zmm22");
    register __m512 s23 __asm__("zmm23"), s24 __asm__("zmm24"), s25 __asm__("zmm25");
    register __m512 s26 __asm__("zmm26"), s27 __asm__("zmm27"), s28 __asm__("zmm28");
    register __m512 s29 __asm__("zmm29"), s30 __asm__("zmm30"), s31 __asm__("zmm31");
    float tile[Q8_MR * GEN_NR] __attribute__((aligned(64)));
    const int first = t->first; /* the assembly zeroes the sums itself */
    if (!first) tile_init(t, tile, Q8_MR);
    const uint8_t *b = t->b;
    const float *sc = t->b_scale;
    size_t off = 0, n = (size_t)(t->kp * 4 / t->group), gmask = (size_t)t->group - 1;
    UKR_ASM_Q8();
    q8_finish_row(t, 0, (vf)s20, (vf)s21, (vf)s22);
    if (t->m > 1) q8_finish_row(t, 1, (vf)s23, (vf)s24, (vf)s25);
    if (t->m > 2) q8_finish_row(t, 2, (vf)s26, (vf)s27, (vf)s28);
    if (t->m > 3) q8_finish_row(t, 3, (vf)s29, (vf)s30, (vf)s31);
}

/* Nearest-even rounding in hardware (vcvtneps2bf16); the tail and kpad padding in C. */
static void to_bf16_native(const float *x, int n, int kpad, void *yv) {
    uint16_t *y = yv;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256bh h = _mm512_cvtneps_pbh(_mm512_loadu_ps(x + i));
        memcpy(y + i, &h, 32);
    }
    for (; i < n; i++) y[i] = rr_f32_to_bf16(x[i]);
    for (; i < kpad; i++) y[i] = 0;
}

/* ------------------------------------------------------------------ bf16 attention */

/* Attention in bf16 mode for head_dim D = 64 (the encoders) or 128 (Qwen3 decoders, jina-reranker-v3)
 * with vdpbf16ps for both products (other cases: the generic kernel). Same tiling and online softmax as
 * gen_attn; the operands are laid out in k pairs:
 *   Qb [QT][D/2] dwords   (q[2g], q[2g+1]) of each query row
 *   Kp [D/2][KT][2] bf16  (k_j[2g], k_j[2g+1]): one zmm = 16 keys of one dim pair -> S over keys
 *   Vp [KT/2][D][2] bf16  (v_{2h}[d], v_{2h+1}[d]): one zmm = 16 dims of one key pair -> O over dims
 *   Pb [QT][KT/2] dwords  probabilities of key pairs, rounded to bf16
 * QT is RR_KERN_ATTN_QT_BF16 rows for D 64 (the driver's attn_qt_bf16_d64) and RR_KERN_ATTN_QT for 128,
 * so both fit rr_kern_attn_scratch_floats. D is a compile-time constant in each instance. */
#define UNROLL4 _Pragma("GCC unroll 4")

/* the 4 cache lines of one row of a head (64 floats) towards L1 (T0) or L2 (T1) */
#define PF_ROW(p, hint)                                                                             \
    do {                                                                                           \
        const char *pf_ = (const char *)(p);                                                       \
        _mm_prefetch(pf_, hint), _mm_prefetch(pf_ + 64, hint);                                     \
        _mm_prefetch(pf_ + 128, hint), _mm_prefetch(pf_ + 192, hint);                              \
    } while (0)

/* The query rows of one work item in bf16 (row i: head i % rep of query token i / rep, D dims; rows
 * [rows, nqr) zero, so 4-row blocks need no tail), and its running max, sum and output (unless O is
 * NULL: a kernel that writes its output whole) cleared. With one head per row, the row 8 ahead is
 * prefetched. */
static inline void attn_rows_init(const rr_kern_attn *a, int rep, int D, int rows, int nqr, uint16_t *Qb, float *O,
                                  float *mx, float *l) {
    for (int i = 0; i < nqr; i++) {
        if (i < rows) {
            if (rep == 1 && i + 8 < rows) PF_ROW(a->q + (size_t)(i + 8) * a->ld, _MM_HINT_T0);
            const float *q = a->q + (size_t)(i / rep) * a->ld + (size_t)(i % rep) * D;
            for (int c = 0; c < D / 32; c++) { /* 32 dims per register */
                __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(q + 32 * c + 16), _mm512_loadu_ps(q + 32 * c));
                memcpy(Qb + i * D + 32 * c, &v, 64);
            }
        } else {
            memset(Qb + i * D, 0, (size_t)D * 2);
        }
        mx[i] = -INFINITY;
        l[i] = 0;
        if (O) memset(O + i * D, 0, (size_t)D * 4);
    }
}

/* O[4 rows][dv, dv + 64) += P V over np key pairs, in vdpbf16ps: P is 4 rows of bf16 probabilities
 * (row stride pstride elements, keys 2h and 2h + 1 side by side), vt the pairs' rows of D dwords
 * (dim d of keys 2h and 2h + 1 in one dword), O rows D floats apart. Shared by the per-head and the
 * packed causal paths, whose V layouts are the same. */
static inline void pv_4x64(float *O, int D, int dv, const uint16_t *Pb, size_t pstride, const uint32_t *vt, int np) {
    __m512 acc[4][4];
    UNROLL4 for (int r = 0; r < 4; r++)
        UNROLL4 for (int v = 0; v < 4; v++) acc[r][v] = _mm512_loadu_ps(O + r * D + dv + v * 16);
    for (int h = 0; h < np; h++) {
        __m512bh vv[4];
        UNROLL4 for (int v = 0; v < 4; v++) vv[v] = (__m512bh)_mm512_loadu_si512(vt + (size_t)h * D + dv + v * 16);
        UNROLL4 for (int r = 0; r < 4; r++) {
            uint32_t pp;
            memcpy(&pp, Pb + (size_t)r * pstride + 2 * h, 4);
            __m512bh pv = (__m512bh)_mm512_set1_epi32((int)pp);
            UNROLL4 for (int v = 0; v < 4; v++) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], pv, vv[v]);
        }
    }
    UNROLL4 for (int r = 0; r < 4; r++)
        UNROLL4 for (int v = 0; v < 4; v++) _mm512_storeu_ps(O + r * D + dv + v * 16, acc[r][v]);
}
#define UNROLL16 _Pragma("GCC unroll 16")

/* Dims 32*half .. 32*half+31 of row j0+jj of a K or V head (ld floats apart) as 32 bf16 in one
 * register; zero past the nkt valid rows of the tile. */
static inline __m512i bf16_half(const float *base, int ld, int j0, int jj, int nkt, int half) {
    if (jj >= nkt) return _mm512_setzero_si512();
    const float *p = base + (size_t)(j0 + jj) * ld + 32 * half;
    return (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(p + 16), _mm512_loadu_ps(p));
}

/* In-register transpose of a 16 x 16 matrix of dwords: r[i] holds row i on entry, column i on exit.
 * Within each 128-bit lane, 32- and 64-bit unpacks transpose 4 x 4 blocks; two rounds of 128-bit
 * lane shuffles then gather lane L of rows 4i+c into column 4L+c. */
static inline void transpose16(__m512i r[16]) {
    __m512i t[16], u[16];
    UNROLL16 for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    UNROLL4 for (int i = 0; i < 4; i++) { /* u[4i + c], lane L: column 4L + c of rows 4i..4i+3 */
        u[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
        u[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
        u[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        u[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
    UNROLL4 for (int c = 0; c < 4; c++) {
        __m512i v0 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0x88), v1 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0xdd);
        __m512i w0 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0x88), w1 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0xdd);
        r[c] = _mm512_shuffle_i32x4(v0, w0, 0x88);
        r[4 + c] = _mm512_shuffle_i32x4(v1, w1, 0x88);
        r[8 + c] = _mm512_shuffle_i32x4(v0, w0, 0xdd);
        r[12 + c] = _mm512_shuffle_i32x4(v1, w1, 0xdd);
    }
}

static inline __attribute__((always_inline)) void attn_bf16_dk(const rr_kern_attn *a, const int D) {
    const int QT = D == 64 ? RR_KERN_ATTN_QT_BF16 : RR_KERN_ATTN_QT;
    enum { KT = RR_KERN_ATTN_KT_BF16 };
    float *base = a->scratch;
    uint16_t *Qb = (uint16_t *)base;                     /* QT * D bf16 */
    uint16_t *Kp = (uint16_t *)(base + QT * D);          /* D * KT bf16 */
    uint16_t *Vp = (uint16_t *)(base + QT * D + D * KT); /* KT * D bf16 */
    float *S = base + QT * D + 2 * D * KT;               /* [QT][KT] */
    float *O = S + QT * KT;                              /* [QT][D] */
    float *mx = O + QT * D, *l = mx + QT;
    uint16_t *Pb = (uint16_t *)S; /* rows of KT bf16 written over the first half of each S row */
    const int nq = a->nq, nqr = (nq + 3) & ~3;
    attn_rows_init(a, 1, D, nq, nqr, Qb, O, mx, l);
    for (int j0 = 0; j0 < a->nk; j0 += KT) {
        const int nkt = RR_MIN(KT, a->nk - j0);
        const int nb = (nkt + 63) / 64; /* blocks of 64 keys in use (the rest of the tile is skipped) */
        /* Kp: 16 keys x 16 dim pairs at a time, converted in registers and transposed */
        uint32_t *kpd = (uint32_t *)Kp;
        for (int kb = 0; kb < nb * 4; kb++) {
            for (int half = 0; half < D / 32; half++) {
                __m512i r[16];
                UNROLL16 for (int i = 0; i < 16; i++) r[i] = bf16_half(a->k, a->ld, j0, kb * 16 + i, nkt, half);
                transpose16(r);
                UNROLL16 for (int g = 0; g < 16; g++) _mm512_storeu_si512(kpd + (half * 16 + g) * KT + kb * 16, r[g]);
            }
        }
        /* Vp: the rows of keys 2h and 2h+1 interleaved element by element */
        const __m512i lo_idx = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40, 8, 39, 7,
                                                38, 6, 37, 5, 36, 4, 35, 3, 34, 2, 33, 1, 32, 0);
        const __m512i hi_idx = _mm512_add_epi16(lo_idx, _mm512_set1_epi16(16));
        for (int h = 0; h < nb * 32; h++) {
            uint16_t *vp = Vp + (size_t)h * D * 2;
            for (int half = 0; half < D / 32; half++) {
                __m512i e = bf16_half(a->v, a->ld, j0, 2 * h, nkt, half);
                __m512i o = bf16_half(a->v, a->ld, j0, 2 * h + 1, nkt, half);
                _mm512_storeu_si512(vp + half * 64, _mm512_permutex2var_epi16(e, lo_idx, o));
                _mm512_storeu_si512(vp + half * 64 + 32, _mm512_permutex2var_epi16(e, hi_idx, o));
            }
        }
        /* S = scale * Q K^T, 4 rows x 64 keys per block */
        for (int i0 = 0; i0 < nqr; i0 += 4) {
            for (int kb = 0; kb < nb; kb++) {
                /* fully unrolled so the 16 accumulators stay in registers (a loop over the array
                 * spilled them to the stack on every step: measured 3x slower) */
                __m512 acc[4][4];
                UNROLL4 for (int r = 0; r < 4; r++)
                    UNROLL4 for (int v = 0; v < 4; v++) acc[r][v] = _mm512_setzero_ps();
                const uint32_t *qd = (const uint32_t *)Qb;
                const uint16_t *kp = Kp + kb * 128;
                for (int g = 0; g < D / 2; g++) {
                    __m512bh kv[4];
                    UNROLL4 for (int v = 0; v < 4; v++) kv[v] = (__m512bh)_mm512_loadu_si512(kp + (size_t)g * KT * 2 + v * 32);
                    UNROLL4 for (int r = 0; r < 4; r++) {
                        __m512bh qv = (__m512bh)_mm512_set1_epi32((int)qd[(i0 + r) * (D / 2) + g]);
                        UNROLL4 for (int v = 0; v < 4; v++) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], qv, kv[v]);
                    }
                }
                __m512 sc = _mm512_set1_ps(a->scale);
                UNROLL4 for (int r = 0; r < 4; r++)
                    UNROLL4 for (int v = 0; v < 4; v++)
                        _mm512_storeu_ps(S + (i0 + r) * KT + kb * 64 + v * 16, _mm512_mul_ps(acc[r][v], sc));
            }
        }
        /* online softmax; P to bf16 pairs */
        for (int i = 0; i < nqr; i++) {
            float *srow = S + i * KT;
            if (i >= nq) {
                memset(srow, 0, (size_t)nb * 64 * 4);
                continue;
            }
            for (int jj = nkt; jj < nb * 64; jj++) srow[jj] = -INFINITY;
            rr_kern_attn_bias(a, i, j0, srow, nkt);
            if (a->causal) /* keys after this row's position; key 0 (first tile) always remains */
                for (int jj = RR_MAX(0, a->q_pos + i + 1 - j0); jj < nkt; jj++) srow[jj] = -INFINITY;
            vf vmx = vset1(mx[i]);
            for (int v = 0; v < nb * 4; v++) vmx = vmax(vmx, vload(srow + v * 16));
            float m = vhmax(vmx);
            if (m == -INFINITY) { /* every key of this tile is outside the row's window: P = 0 */
                memset(Pb + (size_t)i * KT * 2, 0, (size_t)nb * 64 * 2);
                continue;
            }
            float corr = mx[i] == -INFINITY ? 0.f : expf(mx[i] - m);
            mx[i] = m;
            vf sum = {0};
            for (int c = 0; c < nb * 2; c++) { /* 32 keys: two vectors of P, one of bf16 pairs */
                vf p0 = vexp(vload(srow + c * 32) - m), p1 = vexp(vload(srow + c * 32 + 16) - m);
                sum += p0 + p1;
                __m512bh pb = _mm512_cvtne2ps_pbh((__m512)p1, (__m512)p0);
                memcpy(Pb + (size_t)i * KT * 2 + c * 32, &pb, 64); /* row i of Pb at the start of row i of S */
            }
            l[i] = l[i] * corr + vhsum(sum);
            if (corr != 1.f && j0 > 0) /* O is still zero after the first tile */
                for (int v = 0; v < D / 16; v++) vstore(O + i * D + v * 16, vload(O + i * D + v * 16) * corr);
        }
        /* O += P V, 4 rows x 64 dims per block */
        for (int i0 = 0; i0 < nqr; i0 += 4)
          for (int dv = 0; dv < D; dv += 64)
            pv_4x64(O + i0 * D, D, dv, Pb + (size_t)i0 * KT * 2, (size_t)KT * 2, (const uint32_t *)Vp, nb * 32);
    }
    for (int i = 0; i < nq; i++) {
        __m512 inv = _mm512_set1_ps(1.f / l[i]);
        float *out = a->o + (size_t)i * a->ldo;
        for (int v = 0; v < D / 16; v++)
            _mm512_storeu_ps(out + v * 16, _mm512_mul_ps(_mm512_loadu_ps(O + i * D + v * 16), inv));
    }
}

static void attn_bf16_d64(const rr_kern_attn *a) { attn_bf16_dk(a, 64); }
static void attn_bf16_d128(const rr_kern_attn *a) { attn_bf16_dk(a, 128); }

/* ------------------------------------------------------------------ encoder attention, head_dim 64 */

/* 2^x for x <= 0 in fp32: x = n + r with n = round(x) and |r| <= 1/2, 2^r from a degree-6 polynomial
 * fitted for relative error (under 1e-7 evaluated in fp32, about 1 ulp), times 2^n by vscalefps.
 * 0 where x < -125 (-inf included), so every result is a normal number or zero. About half the
 * instructions of vexp: no Cody-Waite reduction (r is exact) and no exponent arithmetic. */
static inline __attribute__((always_inline)) __m512 exp2_le0(__m512 x) {
    const __mmask16 live = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-125.f), _CMP_GE_OQ);
    x = _mm512_max_ps(x, _mm512_set1_ps(-126.f));
    const __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 r = _mm512_sub_ps(x, n);
    __m512 p = _mm512_set1_ps(RR_EXP2_C6);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(RR_EXP2_C5));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(RR_EXP2_C4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(RR_EXP2_C3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(RR_EXP2_C2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(RR_EXP2_C1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
    return _mm512_maskz_scalef_ps(live, p, n);
}

/* ------------------------------------------------------------------ int8 scores (int8 precision) */

/* One row of 64 floats as 64 int8 with a symmetric scale: q = round_even(x * (127 / m)), m = max |x|,
 * so |q| <= 127 and x ~ q m / 127; *m_out = m (0 for a zero row, whose q are all 0). Dword g of the
 * result holds dims 4g .. 4g + 3. */
static inline __attribute__((always_inline)) __m512i q8_row64(const float *x, float *m_out) {
    __m512 v[4];
    UNROLL4 for (int c = 0; c < 4; c++) v[c] = _mm512_loadu_ps(x + 16 * c);
    const __m512 am = _mm512_max_ps(_mm512_max_ps(_mm512_abs_ps(v[0]), _mm512_abs_ps(v[1])),
                                    _mm512_max_ps(_mm512_abs_ps(v[2]), _mm512_abs_ps(v[3])));
    const float m = _mm512_reduce_max_ps(am);
    const __m512 inv = _mm512_set1_ps(m > 0.f ? 127.f / m : 0.f);
    __m128i b[4];
    UNROLL4 for (int c = 0; c < 4; c++)
        b[c] = _mm512_cvtsepi32_epi8(
            _mm512_cvt_roundps_epi32(_mm512_mul_ps(v[c], inv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    *m_out = m;
    __m512i r = _mm512_castsi128_si512(b[0]);
    r = _mm512_inserti32x4(r, b[1], 1);
    r = _mm512_inserti32x4(r, b[2], 2);
    return _mm512_inserti32x4(r, b[3], 3);
}

/* The query rows of one item as u8 = q8 + 128 (vpdpbusd multiplies u8 by s8), with their scales
 * times scl (the softmax scale in base 2) in sq; rows [rows, nqr) are q8 = 0 with scale 0. The running
 * max and sum cleared, as attn_rows_init. */
static inline void attn_rows_q8(const rr_kern_attn *a, int rows, int nqr, uint32_t *Q8, float *sq, float scl,
                                float *mx, float *l) {
    const __m512i bias = _mm512_set1_epi8((char)0x80);
    for (int i = 0; i < nqr; i++) {
        if (i < rows) {
            if (i + 8 < rows) PF_ROW(a->q + (size_t)(i + 8) * a->ld, _MM_HINT_T0);
            float m;
            __m512i q = q8_row64(a->q + (size_t)i * a->ld, &m);
            _mm512_storeu_si512(Q8 + i * 16, _mm512_xor_si512(q, bias));
            sq[i] = m / 127.f * scl;
        } else {
            _mm512_storeu_si512(Q8 + i * 16, bias);
            sq[i] = 0.f;
        }
        mx[i] = -INFINITY;
        l[i] = 0;
    }
}

/* Keys jb .. jb + 15 of the tile at j0 (rows ld floats apart, zero past nkt) as int8: each key row
 * quantized by q8_row64, then the 16 x 16 dwords transposed so that dword row g (stored at
 * kp + g * kstride) holds dims 4g .. 4g + 3 of the 16 keys; sk[0..16) their scales m / 127, and
 * kc[0..16) = -128 sum_d k8[d], which cancels the +128 of the u8 queries in vpdpbusd. */
static inline __attribute__((always_inline)) void k8_block16(const float *k, int ld, int j0, int jb, int nkt,
                                                            uint32_t *kp, int kstride, float *sk, int32_t *kc) {
    __m512i r[16];
    UNROLL16 for (int i = 0; i < 16; i++) {
        float m = 0.f;
        r[i] = jb + i < nkt ? q8_row64(k + (size_t)(j0 + jb + i) * ld, &m) : _mm512_setzero_si512();
        sk[i] = m / 127.f;
    }
    transpose16(r);
    const __m512i b128 = _mm512_set1_epi8((char)0x80);
    __m512i c = _mm512_setzero_si512();
    UNROLL16 for (int g = 0; g < 16; g++) {
        _mm512_storeu_si512(kp + g * kstride, r[g]);
        c = _mm512_dpbusd_epi32(c, b128, r[g]);
    }
    _mm512_storeu_si512(kc, _mm512_sub_epi32(_mm512_setzero_si512(), c));
}

/* acc += u8 x s8 dot products of each dword (vpdpbusd), as an asm statement: with the intrinsic, GCC
 * copied every accumulator to a fresh register (and one to the stack) on each step of the loop below. */
static inline __attribute__((always_inline)) void dpbusd_acc(__m512i *acc, __m512i u8, __m512i s8) {
    __asm__("vpdpbusd %2, %1, %0" : "+v"(*acc) : "v"(u8), "v"(s8));
}

/* Scores of 4 query rows x 64 keys (one K8 block: [16 dim quads][64 keys] dwords) in base 2:
 * s = (sum_d (q8 + 128) k8 - 128 sum_d k8) sk_j sq_i, the int32 sums exact (|sum| <= 64 * 255 * 127)
 * and exactly converted to fp32 (below 2^24). 16 vpdpbusd steps of 4 dims each. */
static inline __attribute__((always_inline)) void s_q8_4x64(const uint32_t *q8, const float *sq, const uint32_t *kp,
                                                           const float *sk, const int32_t *kc, __m512 out[4][4]) {
    __m512i acc[4][4];
    UNROLL4 for (int r = 0; r < 4; r++)
        UNROLL4 for (int v = 0; v < 4; v++) acc[r][v] = _mm512_setzero_si512();
    for (int g = 0; g < 16; g++) {
        __m512i kv[4];
        UNROLL4 for (int v = 0; v < 4; v++) kv[v] = _mm512_loadu_si512(kp + g * 64 + v * 16);
        UNROLL4 for (int r = 0; r < 4; r++) {
            const __m512i qv = _mm512_set1_epi32((int)q8[r * 16 + g]);
            UNROLL4 for (int v = 0; v < 4; v++) dpbusd_acc(&acc[r][v], qv, kv[v]);
        }
    }
    UNROLL4 for (int v = 0; v < 4; v++) {
        const __m512 s = _mm512_loadu_ps(sk + v * 16);
        const __m512i c = _mm512_loadu_si512(kc + v * 16);
        UNROLL4 for (int r = 0; r < 4; r++)
            out[r][v] = _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(acc[r][v], c)), s),
                                      _mm512_set1_ps(sq[r]));
    }
}

/* ------------------------------------------------------------------ int8 O = P V (int8 precision) */

/* The values of one key tile (rows j0 .. j0 + nkt - 1, ld floats apart) as int8 with one symmetric
 * scale per dim: m_e = max over the tile's keys of |v_je|, v8 = round_even(v_je * (127 / m_e)) (both
 * fp32 operations, so a scalar reference gets the same bytes), step m_e / 127 in sv[e] (0 for a zero
 * column, whose v8 are 0). A scale per dim rather than per key: in O = P V each output dim is a
 * weighted mean over keys of one column of V, so a column's own range sets the error of that dim.
 * Stored for vpdpbusd as [key quads h][64 dims] dwords, dword e of quad h holding dim e of keys
 * 4h .. 4h + 3, zero from key nkt up to the end of block nb. Per quad: each row rounded into 64 bytes
 * (dims in order), byte and word unpacks interleave the 4 rows within each 128-bit lane, and a 4 x 4
 * transpose of the lanes restores the dims' order. */
static inline void v8_tile(const float *v, size_t ld, int j0, int nkt, int nb, uint32_t *v8, float *sv) {
    __m512 am[4];
    UNROLL4 for (int c = 0; c < 4; c++) am[c] = _mm512_setzero_ps();
    for (int j = 0; j < nkt; j++)
        UNROLL4 for (int c = 0; c < 4; c++)
            am[c] = _mm512_max_ps(am[c], _mm512_abs_ps(_mm512_loadu_ps(v + (size_t)(j0 + j) * ld + 16 * c)));
    __m512 inv[4];
    UNROLL4 for (int c = 0; c < 4; c++) {
        const __mmask16 nz = _mm512_cmp_ps_mask(am[c], _mm512_setzero_ps(), _CMP_GT_OQ);
        inv[c] = _mm512_maskz_div_ps(nz, _mm512_set1_ps(127.f), am[c]);
        _mm512_storeu_ps(sv + 16 * c, _mm512_div_ps(am[c], _mm512_set1_ps(127.f)));
    }
    for (int h = 0; h < nb * 16; h++) {
        __m512i r[4];
        UNROLL4 for (int k = 0; k < 4; k++) {
            const int j = 4 * h + k;
            if (j >= nkt) {
                r[k] = _mm512_setzero_si512();
                continue;
            }
            const float *x = v + (size_t)(j0 + j) * ld;
            __m128i b[4];
            UNROLL4 for (int c = 0; c < 4; c++)
                b[c] = _mm512_cvtsepi32_epi8(_mm512_cvt_roundps_epi32(
                    _mm512_mul_ps(_mm512_loadu_ps(x + 16 * c), inv[c]), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
            __m512i t = _mm512_castsi128_si512(b[0]);
            t = _mm512_inserti32x4(t, b[1], 1);
            t = _mm512_inserti32x4(t, b[2], 2);
            r[k] = _mm512_inserti32x4(t, b[3], 3);
        }
        /* lane L of x[X]: dims 16 L + 4 X .. 16 L + 4 X + 3, 4 keys each */
        const __m512i a01 = _mm512_unpacklo_epi8(r[0], r[1]), b01 = _mm512_unpackhi_epi8(r[0], r[1]);
        const __m512i a23 = _mm512_unpacklo_epi8(r[2], r[3]), b23 = _mm512_unpackhi_epi8(r[2], r[3]);
        const __m512i x0 = _mm512_unpacklo_epi16(a01, a23), x1 = _mm512_unpackhi_epi16(a01, a23);
        const __m512i x2 = _mm512_unpacklo_epi16(b01, b23), x3 = _mm512_unpackhi_epi16(b01, b23);
        const __m512i t0 = _mm512_shuffle_i32x4(x0, x1, 0x44), t1 = _mm512_shuffle_i32x4(x2, x3, 0x44);
        const __m512i t2 = _mm512_shuffle_i32x4(x0, x1, 0xee), t3 = _mm512_shuffle_i32x4(x2, x3, 0xee);
        uint32_t *o = v8 + (size_t)h * 64;
        _mm512_storeu_si512(o, _mm512_shuffle_i32x4(t0, t1, 0x88));
        _mm512_storeu_si512(o + 16, _mm512_shuffle_i32x4(t0, t1, 0xdd));
        _mm512_storeu_si512(o + 32, _mm512_shuffle_i32x4(t2, t3, 0x88));
        _mm512_storeu_si512(o + 48, _mm512_shuffle_i32x4(t2, t3, 0xdd));
    }
}

/* acc[r][.] += (sum over the np key quads of p8 v8) pf[r] sv for 4 rows x 64 dims: p8 is
 * 4 rows of u8 probabilities (pstride bytes apart), v8 as v8_tile; the int32 sums are exact (at most
 * 256 keys x 255 x 127 < 2^24) and so convert to fp32 exactly. 16 vpdpbusd per 4 keys where the bf16
 * product needs 16 vdpbf16ps per 2. */
static inline __attribute__((always_inline)) void pv_q8_4x64(const uint8_t *p8, size_t pstride, const uint32_t *v8,
                                                            int np, const float *sv, const float *pf,
                                                            __m512 acc[4][4]) {
    __m512i ia[4][4];
    UNROLL4 for (int r = 0; r < 4; r++)
        UNROLL4 for (int v = 0; v < 4; v++) ia[r][v] = _mm512_setzero_si512();
    for (int h = 0; h < np; h++) {
        __m512i vv[4];
        UNROLL4 for (int v = 0; v < 4; v++) vv[v] = _mm512_loadu_si512(v8 + (size_t)h * 64 + v * 16);
        UNROLL4 for (int r = 0; r < 4; r++) {
            uint32_t pp;
            memcpy(&pp, p8 + (size_t)r * pstride + 4 * h, 4);
            const __m512i pv = _mm512_set1_epi32((int)pp);
            UNROLL4 for (int v = 0; v < 4; v++) dpbusd_acc(&ia[r][v], pv, vv[v]);
        }
    }
    UNROLL4 for (int v = 0; v < 4; v++) {
        const __m512 s = _mm512_loadu_ps(sv + v * 16);
        UNROLL4 for (int r = 0; r < 4; r++)
            acc[r][v] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia[r][v]), _mm512_mul_ps(s, _mm512_set1_ps(pf[r])),
                                        acc[r][v]);
    }
}

/* The maximum of one row's scores in a key tile (srow, nb blocks of 64 keys): with a bias (ALiBi or a
 * window, ab) the bias is added to srow first and the maximum taken over the biased scores; without, it
 * is the running vector maximum the score loop kept (rmx). */
static inline __attribute__((always_inline)) float tile_row_max(const rr_kern_attn *ab, int i, int j0, float *srow,
                                                               int nkt, int nb, __m512 rmx) {
    if (!ab) return _mm512_reduce_max_ps(rmx);
    rr_kern_attn_bias(ab, i, j0, srow, nkt);
    __m512 vm = _mm512_set1_ps(-INFINITY);
    for (int v = 0; v < nb * 4; v++) vm = _mm512_max_ps(vm, _mm512_loadu_ps(srow + v * 16));
    return _mm512_reduce_max_ps(vm);
}

/* Attention of the encoders in bf16 with head_dim 64 (no causal mask; ALiBi and window through
 * rr_kern_attn_bias). The operands are in k pairs as in attn_bf16_dk (Qb, Kp, Vp), Kp with each block
 * of 64 keys contiguous (the S loop then streams 8 KiB instead of rows 1 KiB apart: +20%), and the
 * work is organised around blocks of 4 query rows, so that the scores and probabilities of a block
 * stay in L1 (4 x 256 floats) instead of a [QT][KT] tile in L2:
 *   per key tile (up to 256 keys, one for a sequence of up to 256 tokens): K and V to bf16 pairs,
 *   with the rows of the next keys prefetched (a head's row is 256 bytes of a row of qkv several
 *   KiB long, so each row is a new page that the hardware prefetchers do not follow);
 *   per block of 4 rows: S = Q K^T scaled by scale log2(e), the row maxima taken in registers as
 *   the scores leave them; p = 2^(s - m) (exp2_le0), P rounded to bf16 pairs; O = P V for the 64
 *   dims in 16 registers, started from zero on the first tile (from O, rescaled, on later ones);
 *   on the last tile, written out divided by the row sums instead of stored.
 * Softmax is in base 2 (scores times log2(e), so 2^(s - m) = e^(s' - m')): the same probabilities
 * up to fp32 rounding. The scratch fits rr_kern_attn_scratch_floats(64).
 * With q8 (attn_enc64_q8, the int8 precision) Q and K are quantized to int8 instead of converted to
 * bf16 (attn_rows_q8, k8_block16) and S comes from s_q8_4x64, already scaled; V is quantized per dim
 * over the key tile (v8_tile) instead of converted; P is rounded to u8 against the row's maximum in
 * this tile, p8 = round_even(255 * 2^(s - tm)) (so every tile keeps the full 8 bits, whatever the
 * running maximum), its step 2^(tm - m) / 255 folded into the scaling of the int32 P V sums
 * (pv_q8_4x64) and the row sum l taken over the rounded p8; the rest is the same. */
static inline __attribute__((always_inline)) void attn_enc64_body(const rr_kern_attn *a, const int q8) {
    enum { D = 64, QT = RR_KERN_ATTN_QT_BF16, KT = RR_KERN_ATTN_KT_BF16 };
    float *base = a->scratch;
    uint16_t *Qb = (uint16_t *)base;                    /* [QT][D] bf16 */
    uint32_t *Kp = (uint32_t *)(base + QT * D / 2);     /* [KT/64][D/2 dim pairs][64 keys] dwords */
    /* q8: the same two areas hold the int8 operands (half their size) and their scales */
    uint32_t *Q8 = (uint32_t *)base;                    /* [QT][D/4] dwords: 4 dims of q8 + 128 */
    float *sq = base + QT * D / 4;                      /* [QT] row scales times scale log2(e) */
    uint32_t *K8 = Kp;                                  /* [KT/64][D/4 dim quads][64 keys] dwords of k8 */
    float *sk = (float *)(K8 + D / 4 * KT);             /* [KT] key scales */
    int32_t *kc = (int32_t *)(sk + KT);                 /* [KT] -128 sum_d k8[d] per key */
    uint32_t *Vp = Kp + D / 2 * KT;                     /* [KT/2 key pairs][D dims] dwords */
    uint32_t *V8 = Vp;                                  /* q8: [KT/4 key quads][D dims] dwords of v8 */
    float *sv = (float *)(V8 + KT / 4 * D);             /* q8: [D] value steps per dim */
    float *Sb = (float *)(Vp + KT / 2 * D);             /* [4][KT] scores of one row block */
    uint16_t *Pb = (uint16_t *)(Sb + 4 * KT);           /* [4][KT] bf16 probabilities */
    uint8_t *P8 = (uint8_t *)Pb;                        /* q8: [4][KT] u8 probabilities */
    float *O = Sb + 4 * KT + 2 * KT;                    /* [QT][D] output sums between key tiles */
    float *mx = O + QT * D, *l = mx + QT;               /* running max (base 2) and sum per row */
    const int nq = a->nq, nqr = (nq + 3) & ~3;
    const size_t ld = (size_t)a->ld;
    const __m512 sc = _mm512_set1_ps(a->scale * 1.44269504088896341f);
    const int bias = a->alibi != 0.f || a->window > 0;
    rr_kern_attn ab = *a; /* the ALiBi slope in base-2 units, for rr_kern_attn_bias */
    ab.alibi = a->alibi * 1.44269504088896341f;

    for (int jj = 0; jj < RR_MIN(32, a->nk); jj++) PF_ROW(a->k + jj * ld, _MM_HINT_T0);
    if (q8) attn_rows_q8(a, nq, nqr, Q8, sq, a->scale * 1.44269504088896341f, mx, l);
    else attn_rows_init(a, 1, D, nq, nqr, Qb, NULL, mx, l); /* O is written whole by the first key tile */
    const __m512i lo_idx = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40, 8, 39, 7, 38,
                                            6, 37, 5, 36, 4, 35, 3, 34, 2, 33, 1, 32, 0);
    const __m512i hi_idx = _mm512_add_epi16(lo_idx, _mm512_set1_epi16(16));
    for (int j0 = 0; j0 < a->nk; j0 += KT) {
        const int nkt = RR_MIN(KT, a->nk - j0), nb = (nkt + 63) / 64, last = j0 + KT >= a->nk;
        /* Kp: 16 keys x 16 dim pairs at a time, converted in registers and transposed; the K rows
         * two blocks ahead into L1, this block's V rows into L2 for the V loop below */
        for (int kb = 0; kb < nb * 4; kb++) {
            for (int i = 0; i < 16; i++) {
                int jn = (kb + 2) * 16 + i, jv = kb * 16 + i;
                if (jn < nkt) PF_ROW(a->k + (j0 + jn) * ld, _MM_HINT_T0);
                if (jv < nkt) PF_ROW(a->v + (j0 + jv) * ld, _MM_HINT_T1);
            }
            if (q8) {
                k8_block16(a->k, a->ld, j0, kb * 16, nkt, K8 + (kb / 4) * (D / 4 * 64) + (kb % 4) * 16, 64,
                           sk + kb * 16, kc + kb * 16);
                continue;
            }
            for (int half = 0; half < D / 32; half++) {
                __m512i r[16];
                UNROLL16 for (int i = 0; i < 16; i++) r[i] = bf16_half(a->k, a->ld, j0, kb * 16 + i, nkt, half);
                transpose16(r);
                UNROLL16 for (int g = 0; g < 16; g++)
                    _mm512_storeu_si512(Kp + (kb / 4) * (D / 2 * 64) + (half * 16 + g) * 64 + (kb % 4) * 16, r[g]);
            }
        }
        /* q8: V8 and its steps (v8_tile); the next tile's K rows */
        if (q8) {
            v8_tile(a->v, ld, j0, nkt, nb, V8, sv);
            for (int jn = j0 + KT; jn < RR_MIN(j0 + KT + 32, a->nk); jn++) PF_ROW(a->k + jn * ld, _MM_HINT_T0);
        } else {
            /* Vp: the rows of keys 2h and 2h + 1 interleaved element by element; the next tile's K rows */
            for (int h = 0; h < nb * 32; h++) {
                if (h < 16 && j0 + KT + 2 * h + 1 < a->nk) {
                    PF_ROW(a->k + (j0 + KT + 2 * h) * ld, _MM_HINT_T0);
                    PF_ROW(a->k + (j0 + KT + 2 * h + 1) * ld, _MM_HINT_T0);
                }
                uint32_t *vp = Vp + (size_t)h * D;
                for (int half = 0; half < D / 32; half++) {
                    __m512i e = bf16_half(a->v, a->ld, j0, 2 * h, nkt, half);
                    __m512i o = bf16_half(a->v, a->ld, j0, 2 * h + 1, nkt, half);
                    _mm512_storeu_si512(vp + half * 32, _mm512_permutex2var_epi16(e, lo_idx, o));
                    _mm512_storeu_si512(vp + half * 32 + 16, _mm512_permutex2var_epi16(e, hi_idx, o));
                }
            }
        }
        /* keys of the last block of 64 past the tile's end: -inf */
        __mmask16 km[4];
        for (int v = 0; v < 4; v++) {
            int n = nkt - ((nb - 1) * 64 + v * 16);
            km[v] = n >= 16 ? (__mmask16)0xffff : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
        }
        for (int i0 = 0; i0 < nqr; i0 += 4) {
            /* S = scale log2(e) Q K^T, 4 rows x 64 keys per register block */
            __m512 rmx[4];
            UNROLL4 for (int r = 0; r < 4; r++) rmx[r] = _mm512_set1_ps(-INFINITY);
            for (int kb = 0; kb < nb; kb++) {
                __m512 acc[4][4];
                if (q8) {
                    s_q8_4x64(Q8 + (size_t)i0 * (D / 4), sq + i0, K8 + kb * (D / 4 * 64), sk + kb * 64, kc + kb * 64,
                              acc);
                } else {
                    UNROLL4 for (int r = 0; r < 4; r++)
                        UNROLL4 for (int v = 0; v < 4; v++) acc[r][v] = _mm512_setzero_ps();
                    const uint32_t *qd = (const uint32_t *)Qb + (size_t)i0 * (D / 2);
                    const uint32_t *kp = Kp + kb * (D / 2 * 64);
                    for (int g = 0; g < D / 2; g++) {
                        __m512bh kv[4];
                        UNROLL4 for (int v = 0; v < 4; v++) kv[v] = (__m512bh)_mm512_loadu_si512(kp + g * 64 + v * 16);
                        UNROLL4 for (int r = 0; r < 4; r++) {
                            __m512bh qv = (__m512bh)_mm512_set1_epi32((int)qd[r * (D / 2) + g]);
                            UNROLL4 for (int v = 0; v < 4; v++) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], qv, kv[v]);
                        }
                    }
                }
                const int tail = kb == nb - 1;
                UNROLL4 for (int r = 0; r < 4; r++)
                    UNROLL4 for (int v = 0; v < 4; v++) {
                        __m512 s = q8 ? acc[r][v] : _mm512_mul_ps(acc[r][v], sc); /* q8: scaled already */
                        if (tail) s = _mm512_mask_mov_ps(_mm512_set1_ps(-INFINITY), km[v], s);
                        rmx[r] = _mm512_max_ps(rmx[r], s);
                        _mm512_storeu_ps(Sb + r * KT + kb * 64 + v * 16, s);
                    }
            }
            /* online softmax in base 2; P to u8 (q8) or to bf16 pairs */
            float corr[4], pf[4];
            if (q8) { /* P to u8 against the tile's own row max */
                for (int r = 0; r < 4; r++) {
                    const int i = i0 + r;
                    float *srow = Sb + r * KT;
                    const float tm = tile_row_max(bias ? &ab : NULL, i, j0, srow, nkt, nb, rmx[r]);
                    corr[r] = 1.f, pf[r] = 0.f;
                    if (tm == -INFINITY) { /* every key of this tile is outside the row's window: P = 0 */
                        memset(P8 + (size_t)r * KT, 0, (size_t)nb * 64);
                        continue;
                    }
                    const float m = RR_MAX(tm, mx[i]);
                    corr[r] = mx[i] == -INFINITY ? 0.f : exp2f(mx[i] - m);
                    pf[r] = exp2f(tm - m) * (1.f / 255.f); /* the tile's step of p in units of 2^(s - m) */
                    mx[i] = m;
                    const __m512 vtm = _mm512_set1_ps(tm), k255 = _mm512_set1_ps(255.f);
                    __m512 sum = _mm512_setzero_ps();
                    for (int c = 0; c < nb * 4; c++) { /* 16 keys: p8 = round_even(255 * 2^(s - tm)) */
                        const __m512 p = exp2_le0(_mm512_sub_ps(_mm512_loadu_ps(srow + c * 16), vtm));
                        const __m512 pr = _mm512_roundscale_ps(_mm512_mul_ps(p, k255),
                                                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                        sum = _mm512_add_ps(sum, pr);
                        _mm_storeu_si128((__m128i *)(P8 + (size_t)r * KT + c * 16),
                                         _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(pr)));
                    }
                    l[i] = l[i] * corr[r] + pf[r] * _mm512_reduce_add_ps(sum); /* the sum of the rounded p8 */
                }
            } else {
                for (int r = 0; r < 4; r++) {
                    const int i = i0 + r;
                    float *srow = Sb + r * KT;
                    const float tm = tile_row_max(bias ? &ab : NULL, i, j0, srow, nkt, nb, rmx[r]); /* adds the bias */
                    const float m = RR_MAX(tm, mx[i]);
                    corr[r] = 1.f;
                    if (m == -INFINITY) { /* every key of this tile is outside the row's window: P = 0 */
                        memset(Pb + (size_t)r * KT, 0, (size_t)nb * 64 * 2);
                        continue;
                    }
                    corr[r] = mx[i] == -INFINITY ? 0.f : exp2f(mx[i] - m);
                    mx[i] = m;
                    const __m512 vmv = _mm512_set1_ps(m);
                    __m512 sum = _mm512_setzero_ps();
                    for (int c = 0; c < nb * 2; c++) { /* 32 keys: two vectors of P, one of bf16 pairs */
                        __m512 p0 = exp2_le0(_mm512_sub_ps(_mm512_loadu_ps(srow + c * 32), vmv));
                        __m512 p1 = exp2_le0(_mm512_sub_ps(_mm512_loadu_ps(srow + c * 32 + 16), vmv));
                        sum = _mm512_add_ps(sum, _mm512_add_ps(p0, p1));
                        __m512bh pb = _mm512_cvtne2ps_pbh(p1, p0);
                        memcpy(Pb + (size_t)r * KT + c * 32, &pb, 64);
                    }
                    l[i] = l[i] * corr[r] + _mm512_reduce_add_ps(sum);
                }
            }
            /* O = corr O + P V for the 64 dims of the 4 rows */
            __m512 acc[4][4];
            if (j0 == 0) {
                UNROLL4 for (int r = 0; r < 4; r++)
                    UNROLL4 for (int v = 0; v < 4; v++) acc[r][v] = _mm512_setzero_ps();
            } else {
                UNROLL4 for (int r = 0; r < 4; r++) {
                    const __m512 cr = _mm512_set1_ps(corr[r]);
                    UNROLL4 for (int v = 0; v < 4; v++)
                        acc[r][v] = _mm512_mul_ps(_mm512_loadu_ps(O + (i0 + r) * D + v * 16), cr);
                }
            }
            if (q8) {
                pv_q8_4x64(P8, KT, V8, nb * 16, sv, pf, acc);
            } else {
                for (int h = 0; h < nb * 32; h++) {
                    __m512bh vv[4];
                    UNROLL4 for (int v = 0; v < 4; v++)
                        vv[v] = (__m512bh)_mm512_loadu_si512(Vp + (size_t)h * D + v * 16);
                    UNROLL4 for (int r = 0; r < 4; r++) {
                        uint32_t pp;
                        memcpy(&pp, Pb + (size_t)r * KT + 2 * h, 4);
                        __m512bh pv = (__m512bh)_mm512_set1_epi32((int)pp);
                        UNROLL4 for (int v = 0; v < 4; v++) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], pv, vv[v]);
                    }
                }
            }
            if (last) {
                UNROLL4 for (int r = 0; r < 4; r++) {
                    if (i0 + r >= nq) break;
                    const __m512 inv = _mm512_set1_ps(1.f / l[i0 + r]);
                    float *out = a->o + (size_t)(i0 + r) * a->ldo;
                    UNROLL4 for (int v = 0; v < 4; v++) _mm512_storeu_ps(out + v * 16, _mm512_mul_ps(acc[r][v], inv));
                }
            } else {
                UNROLL4 for (int r = 0; r < 4; r++)
                    UNROLL4 for (int v = 0; v < 4; v++) _mm512_storeu_ps(O + (i0 + r) * D + v * 16, acc[r][v]);
            }
        }
    }
}

static void attn_enc64(const rr_kern_attn *a) { attn_enc64_body(a, 0); }
static void attn_enc64_q8(const rr_kern_attn *a) { attn_enc64_body(a, 1); }

static void attn_native(const rr_kern_attn *a) {
    if (a->q8 && a->d == 64 && !a->causal) attn_enc64_q8(a);
    else if (a->bf16 && a->d == 64 && !a->causal) attn_enc64(a);
    else if (a->bf16 && a->d == 64) attn_bf16_d64(a);
    else if (a->bf16 && a->d == 128 && a->nq <= RR_KERN_ATTN_QT) attn_bf16_d128(a);
    else gen_attn(a);
}

/* ------------------------------------------------------------------ causal GQA attention, head_dim 128 */

/* Block b of one KV head's packed keys and values (kern_int.h): K through the 16 x 16 dword transpose
 * (16 keys x 16 dim pairs at a time), V with the rows of keys 2h and 2h+1 interleaved element-wise. */
static void kv_pack128(const float *k, const float *v, int ld, int n, int b, uint32_t *kp, uint32_t *vp) {
    enum { D = 128, KB = RR_KERN_KV_BLOCK };
    const int j0 = b * KB, nkt = RR_MIN(KB, n - j0);
    for (int kb = 0; kb < KB / 16; kb++)
        for (int half = 0; half < D / 32; half++) {
            __m512i r[16];
            UNROLL16 for (int i = 0; i < 16; i++) r[i] = bf16_half(k, ld, j0, kb * 16 + i, nkt, half);
            transpose16(r);
            UNROLL16 for (int g = 0; g < 16; g++) _mm512_storeu_si512(kp + (half * 16 + g) * KB + kb * 16, r[g]);
        }
    const __m512i lo_idx = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40, 8, 39, 7,
                                            38, 6, 37, 5, 36, 4, 35, 3, 34, 2, 33, 1, 32, 0);
    const __m512i hi_idx = _mm512_add_epi16(lo_idx, _mm512_set1_epi16(16));
    for (int h = 0; h < KB / 2; h++) {
        uint32_t *row = vp + (size_t)h * D;
        for (int half = 0; half < D / 32; half++) {
            __m512i e = bf16_half(v, ld, j0, 2 * h, nkt, half);
            __m512i o = bf16_half(v, ld, j0, 2 * h + 1, nkt, half);
            _mm512_storeu_si512(row + half * 32, _mm512_permutex2var_epi16(e, lo_idx, o));
            _mm512_storeu_si512(row + half * 32 + 16, _mm512_permutex2var_epi16(e, hi_idx, o));
        }
    }
}

/* One item of causal grouped-query attention over packed K / V (kern_int.h rr_kern_attn): the nq
 * positions of the n_rep query heads of one KV head as R = n_rep nq rows, position-major (row i is
 * position i / n_rep of head i % n_rep), so each K and V tile read serves every head of the group and
 * the rows' causal limits grow with i. Per tile of KT keys from the sequence's first, exactly as
 * attn_bf16_dk for D 128: S = scale Q K^T (4 rows x 64 keys per register block), the online softmax,
 * O += P V (4 rows x 64 dims); blocks of 64 keys that every row of a register block has masked are
 * skipped in both products, which adds or compares nothing but zeros and -inf. Every row's result is
 * bit for bit that of attn_bf16_dk, whatever the item's rows: a sequence's output does not depend on
 * the batch, nor on which path the driver took. */
static void attn_gqa128(const rr_kern_attn *a) {
    enum { D = 128, KT = RR_KERN_ATTN_KT_BF16, QR = RR_KERN_ATTN_QT, KB = RR_KERN_KV_BLOCK };
    float *base = a->scratch;
    uint16_t *Qb = (uint16_t *)base; /* [QR][D] bf16 */
    float *S = base + QR * D / 2;    /* [QR][KT] */
    float *O = S + QR * KT;          /* [QR][D] */
    float *mx = O + QR * D, *l = mx + QR;
    uint16_t *Pb = (uint16_t *)S;
    const int rep = a->n_rep, R = a->nq * rep, nqr = (R + 3) & ~3;
    const int lim0 = a->q_pos; /* row i sees keys [0, lim0 + i / rep] */
    attn_rows_init(a, rep, D, R, nqr, Qb, O, mx, l);
    const __m512 sc = _mm512_set1_ps(a->scale);
    for (int j0 = 0; j0 < a->nk; j0 += KT) {
        const int nkt = RR_MIN(KT, a->nk - j0);
        const int nb = (nkt + KB - 1) / KB;
        const uint32_t *kt = a->kp + (size_t)(j0 / KB) * RR_KERN_KV_BLOCK_DWORDS;
        const uint32_t *vt = a->vp + (size_t)(j0 / KB) * RR_KERN_KV_BLOCK_DWORDS;
        /* S = scale Q K^T */
        for (int i0 = 0; i0 < nqr; i0 += 4) {
            /* keys past the block's last row's limit are masked for all four rows */
            const int seen = RR_MIN(nkt, lim0 + RR_MIN(i0 + 3, R - 1) / rep + 1 - j0);
            for (int kb = 0; kb < nb && kb * KB < seen; kb++) {
                __m512 acc[4][4];
                UNROLL4 for (int r = 0; r < 4; r++)
                    UNROLL4 for (int v = 0; v < 4; v++) acc[r][v] = _mm512_setzero_ps();
                const uint32_t *qd = (const uint32_t *)Qb + (size_t)i0 * (D / 2);
                const uint32_t *kp = kt + (size_t)kb * RR_KERN_KV_BLOCK_DWORDS;
                for (int g = 0; g < D / 2; g++) {
                    __m512bh kv[4];
                    UNROLL4 for (int v = 0; v < 4; v++) kv[v] = (__m512bh)_mm512_loadu_si512(kp + g * KB + v * 16);
                    UNROLL4 for (int r = 0; r < 4; r++) {
                        __m512bh qv = (__m512bh)_mm512_set1_epi32((int)qd[r * (D / 2) + g]);
                        UNROLL4 for (int v = 0; v < 4; v++) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], qv, kv[v]);
                    }
                }
                UNROLL4 for (int r = 0; r < 4; r++)
                    UNROLL4 for (int v = 0; v < 4; v++)
                        _mm512_storeu_ps(S + (i0 + r) * KT + kb * KB + v * 16, _mm512_mul_ps(acc[r][v], sc));
            }
        }
        /* online softmax over the keys each row sees; P to bf16 pairs */
        for (int i = 0; i < nqr; i++) {
            float *srow = S + i * KT;
            if (i >= R) {
                memset(srow, 0, (size_t)nb * KB * 4);
                continue;
            }
            for (int jj = RR_MAX(0, RR_MIN(nkt, lim0 + i / rep + 1 - j0)); jj < nb * KB; jj++) srow[jj] = -INFINITY;
            vf vmx = vset1(mx[i]);
            for (int v = 0; v < nb * 4; v++) vmx = vmax(vmx, vload(srow + v * 16));
            float m = vhmax(vmx);
            if (m == -INFINITY) { /* no key of this tile is seen (cannot happen after the first tile) */
                memset(Pb + (size_t)i * KT * 2, 0, (size_t)nb * KB * 2);
                continue;
            }
            float corr = mx[i] == -INFINITY ? 0.f : expf(mx[i] - m);
            mx[i] = m;
            vf sum = {0};
            for (int c = 0; c < nb * 2; c++) {
                vf p0 = vexp(vload(srow + c * 32) - m), p1 = vexp(vload(srow + c * 32 + 16) - m);
                sum += p0 + p1;
                __m512bh pb = _mm512_cvtne2ps_pbh((__m512)p1, (__m512)p0);
                memcpy(Pb + (size_t)i * KT * 2 + c * 32, &pb, 64);
            }
            l[i] = l[i] * corr + vhsum(sum);
            if (corr != 1.f && j0 > 0)
                for (int v = 0; v < D / 16; v++) vstore(O + i * D + v * 16, vload(O + i * D + v * 16) * corr);
        }
        /* O += P V over the key pairs some row of the block sees */
        for (int i0 = 0; i0 < nqr; i0 += 4) {
            const int seen = RR_MIN(nkt, lim0 + RR_MIN(i0 + 3, R - 1) / rep + 1 - j0);
            const int np = RR_MIN(nb * KB / 2, (seen + 1) / 2);
            for (int dv = 0; dv < D; dv += 64)
                pv_4x64(O + i0 * D, D, dv, Pb + (size_t)i0 * KT * 2, (size_t)KT * 2, vt, np);
        }
    }
    for (int i = 0; i < R; i++) {
        __m512 inv = _mm512_set1_ps(1.f / l[i]);
        float *out = a->o + (size_t)(i / rep) * a->ldo + (size_t)(i % rep) * D;
        for (int v = 0; v < D / 16; v++)
            _mm512_storeu_ps(out + v * 16, _mm512_mul_ps(_mm512_loadu_ps(O + i * D + v * 16), inv));
    }
}

const rr_kern_table rr_kern_avx512bf16 = {
    .name = "avx512bf16",
    .isa = RR_KERN_ISA_AVX512BF16,
    .lay = {[RR_PRECISION_FP32] = {GEN_MR, GEN_NR, 1},
            [RR_PRECISION_BF16] = {GEN_MR, GEN_NR, 2},
            [RR_PRECISION_INT8] = {Q8_MR, GEN_NR, 4}},
    .native_bf16 = 1,
    .ukr = {[RR_PRECISION_FP32] = gen_ukr_f32, [RR_PRECISION_BF16] = ukr_bf16_dp, [RR_PRECISION_INT8] = ukr_int8_vnni},
    .ukr_f32_w16 = gen_ukr_f32_w16,
    .to_bf16 = to_bf16_native,
    .quant_row = gen_quant_row,
    .attn = attn_native,
    .attn_qt_bf16_d64 = RR_KERN_ATTN_QT_BF16,
    .attn_q8_d64 = 1,
    .kv_pack128 = kv_pack128,
    .attn_gqa128 = attn_gqa128,
    .layernorm = gen_layernorm,
    .gelu = gen_gelu,
    .tanh_ = gen_tanh,
    .glu = gen_glu,
    .rope = gen_rope,
};

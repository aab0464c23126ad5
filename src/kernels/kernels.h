/*
 * kernels.h -- the compute kernels of the encoder: packed linear layers (fp32, bf16, int8) with fused
 * epilogues, flash-style attention over packed variable-length batches, LayerNorm with a fused
 * residual, GELU and tanh. Each kernel exists once per instruction set, in a function table chosen
 * once at start from CPUID (dispatch.c); the scalar table (ref.c) is always present and is the
 * reference the others are tested against.
 *
 * Tensor conventions (row-major, fp32 unless stated; "ld" = elements between rows):
 *   weight W  [n_out, n_in]   as in PyTorch; a linear layer computes Y = X W^T + b
 *   X         [m, n_in]       activations, one row per token
 *   qkv       [T, 3H]         per token: Q (H) | K (H) | V (H), each head-major (head h at h*head_dim)
 *   ctx       [T, H]          attention output, head-major
 *   cu_seqlens[n_seq + 1]     token offsets of the sequences packed in the T rows; cu_seqlens[0] = 0
 *
 * Memory: packed weights belong to the rr_linear; every other buffer, scratch included, belongs to
 * the caller (no kernel allocates after rr_linear_pack). Kernels are reentrant: any number of threads
 * may run them on shared rr_linear objects, each with its own scratch and pool.
 *
 * Precision semantics (what the tests hold every table to):
 *   fp32  fp32 products and fp32 accumulation (FMA allowed: order and fusing of roundings differ).
 *   bf16  W rounded to bf16 at pack time, X rounded to bf16 (nearest even) per call, products exact
 *         in fp32, fp32 accumulation; the bias and epilogue stay fp32.
 *   int8  W symmetric per output channel and per group g of G = rr_kern_int8_group(K) consecutive k
 *         (kern_int.h: 256 at K = 768 or 3072; groups start at k = 0, the last one may be short):
 *         w8 = round(w / s_gn),
 *         s_gn = max_{k in g} |w_nk| / Q (1 for an all-zero group), Q = 127, or 63 on the avx2
 *         table, whose vpmaddubsw sums stay exact only with 7-bit weights. X asymmetric per row (token),
 *         as ONNX Runtime's dynamic quantization: lo = min(0, min x), hi = max(0, max x),
 *         s_m = (hi - lo) / 255, z_m = round(-lo / s_m), x8 = clamp(round(x / s_m) + z_m, 0, 255)
 *         (uint8). Exact int32 sums per group, fp32 across groups:
 *             y = s_m (sum_g s_gn sum_{k in g} x8 w8  -  z_m C_n) + b,  C_n = sum_g s_gn sum_{k in g} w8
 *         (C_n an fp32 constant of the packed layer). This is s_m sum_g s_gn sum_{k in g} (x8 - z_m) w8
 *         up to fp32 rounding of the group sums. (Rounding is to nearest even, in fp32 with
 *         inv = 1 / s as the multiplier.)
 */
#ifndef RR_KERNELS_H
#define RR_KERNELS_H

#include "kernels/pool.h"
#include "rerank.h"

#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------ dispatch */

typedef enum rr_kern_isa {
    RR_KERN_ISA_SCALAR = 0,     /* portable C: the reference */
    RR_KERN_ISA_AVX2 = 1,       /* AVX2 + FMA + F16C */
    RR_KERN_ISA_AVX512 = 2,     /* AVX-512 F/BW/DQ/VL */
    RR_KERN_ISA_AVX512BF16 = 3, /* + AVX512_BF16 (vdpbf16ps) and AVX512_VNNI (vpdpbusd) */
    RR_KERN_ISA_AMX = 4,        /* AMX-BF16/INT8: detected, no table built yet */
    RR_KERN_ISA_COUNT = 5,
} rr_kern_isa;

typedef struct rr_kern_table rr_kern_table; /* defined in kern_int.h */

/* The table in use: chosen on the first call (thread-safe) as the best one this CPU and OS support,
 * or the one $RR_ISA names (scalar|avx2|avx512|avx512bf16|amx), falling back to the best supported
 * one below it. Never NULL. */
const rr_kern_table *rr_kern_get(void);
/* Makes `isa` (a name as for RR_ISA) the table rr_kern_get returns from now on; NULL, "" or "auto"
 * restores the start-up choice (the best, or what $RR_ISA asked for). An unsupported request falls
 * back as above and still returns RR_OK; see rr_kern_reason. RR_ERR_INVALID for an unknown name.
 * Not meant to race with running kernels that call rr_kern_get (tests and start-up only); packed
 * layers keep the table they were packed with. */
rr_status rr_kern_select(const char *isa);
/* The table for one ISA, or NULL when it is not built or this CPU/OS cannot run it. */
const rr_kern_table *rr_kern_table_for(rr_kern_isa isa);
/* Why the table in use is not the one requested or detected as best ("" when nothing to say). */
const char *rr_kern_reason(void);
/* A table's short name ("scalar", "avx2", "avx512", "avx512bf16") and ISA. */
const char *rr_kern_name(const rr_kern_table *k);
rr_kern_isa rr_kern_isa_of(const rr_kern_table *k);
/* Parses an ISA name; -1 if unknown. */
int rr_kern_isa_parse(const char *name);
const char *rr_kern_isa_name(rr_kern_isa isa);
/* True when this CPU/OS supports `isa` (independently of which tables are built). */
int rr_kern_cpu_has(rr_kern_isa isa);
/* The best precision the table runs fast: bf16 where it has native bf16 dot products, else fp32. */
rr_precision rr_kern_auto_precision(const rr_kern_table *k);
/* Q of the table's INT8 weights, quantized to [-Q, Q] (the contract above): 127, or 63 on avx2. k NULL
 * = the selected table. */
int rr_kern_int8_wmax(const rr_kern_table *k);

/* ------------------------------------------------------------------ linear layers */

typedef enum rr_kern_dtype {
    RR_KERN_DTYPE_F32 = 0,
    RR_KERN_DTYPE_F16 = 1,
    RR_KERN_DTYPE_BF16 = 2,
} rr_kern_dtype;

typedef enum rr_kern_epilogue {
    RR_KERN_EPI_NONE = 0,     /* y = x W^T + b */
    RR_KERN_EPI_GELU = 1,     /* y = gelu(x W^T + b), exact erf GELU */
    RR_KERN_EPI_RESIDUAL = 2, /* y = x W^T + b + r; y must not overlap r */
} rr_kern_epilogue;

typedef struct rr_linear rr_linear;

/* Packs W [n_out, n_in] (row-major, dtype wdtype, any alignment: read with memcpy) and bias
 * [n_out] (fp32, may be NULL for zero) into the layout table k wants for precision p (AUTO =
 * rr_kern_auto_precision(k)). Copies what it needs; w and bias may be freed afterwards. k NULL =
 * rr_kern_get(). */
rr_status rr_linear_pack(const rr_kern_table *k, rr_precision p, const void *w, rr_kern_dtype wdtype,
                         int n_out, int n_in, const float *bias, rr_linear **out);
void rr_linear_free(rr_linear *l);
/* Scratch bytes rr_linear_run needs for up to max_m rows (0 for fp32). */
size_t rr_linear_scratch_bytes(const rr_linear *l, int max_m);
/* Bytes of packed weights, scales and bias held. */
size_t rr_linear_weight_bytes(const rr_linear *l);
rr_precision rr_linear_precision(const rr_linear *l);
int rr_linear_n_out(const rr_linear *l);
int rr_linear_n_in(const rr_linear *l);
/* INT8: k per weight scale group of the layer (kern_int.h rr_kern_int8_group); 0 for other precisions. */
int rr_linear_int8_group(const rr_linear *l);

/* Y[m, n_out] (row stride ldy) = epilogue(X[m, n_in] (stride ldx) W^T + b [, R (stride ldres)]).
 * scratch: at least rr_linear_scratch_bytes(l, m) bytes, 64-byte aligned (may be NULL when that is
 * 0). y must not overlap x or res. pool may be NULL (single thread). */
void rr_linear_run(const rr_linear *l, int m, const float *x, int ldx, float *y, int ldy,
                   rr_kern_epilogue epi, const float *res, int ldres, void *scratch, rr_pool *pool);
/* The same for output columns [c0, c1) only: y (and res) column 0 is output column c0, ldy (ldres)
 * >= c1 - c0. c0 a multiple of rr_linear_col_step(l), c1 one too or n_out. Each output is bit for
 * bit what rr_linear_run gives it (a row's outputs depend on that row and column alone). */
void rr_linear_run_cols(const rr_linear *l, int c0, int c1, int m, const float *x, int ldx, float *y, int ldy,
                        rr_kern_epilogue epi, const float *res, int ldres, void *scratch, rr_pool *pool);
/* Column granularity of rr_linear_run_cols: the table's panel width for this layer's precision. */
int rr_linear_col_step(const rr_linear *l);

/* ------------------------------------------------------------------ attention */

/* Scratch bytes rr_attention needs with a pool of n_threads threads and at most n_seq sequences. */
size_t rr_attention_scratch_bytes(int n_threads, int n_seq, int head_dim);

/* Multi-head self-attention of each sequence of a packed batch (no mask inside a sequence, nothing
 * across sequences): ctx[t, h*D:(h+1)*D] = softmax(scale * q_t K^T) V over the keys of t's sequence.
 * qkv [T, 3 n_heads D] with row stride ldqkv; ctx [T, n_heads D] with row stride ldctx. Tiled with
 * an online softmax: memory does not grow with the sequence length. precision FP32 or BF16 (Q, K, V
 * and the probabilities rounded to bf16 for the two products; softmax and sums in fp32); INT8 runs
 * as BF16, except that a table with an int8 attention kernel (kern_int.h attn_q8_d64: avx512bf16
 * and avx2, head_dim 64) computes both products in int8: q K^T from int8 q and k (each query row and each key
 * row of a head quantized with its own symmetric scale, max |x| / 127, round half to even; the int32
 * dot products times both scales), and P V from u8 probabilities and int8 values per key tile of
 * RR_KERN_ATTN_KT_BF16 keys: p8 = round_even(255 e^(s - tm)) against the row's maximum tm over the
 * tile, V per dim with the symmetric scale of its column over the tile; the softmax sums the rounded
 * p8, so the weights used are exactly those normalized.
 * Work items are (sequence, head, query tile). k NULL = rr_kern_get(). */
void rr_attention(const rr_kern_table *k, const float *qkv, int ldqkv, const int *cu_seqlens, int n_seq,
                  int n_heads, int head_dim, float scale, float *ctx, int ldctx, rr_precision precision,
                  void *scratch, rr_pool *pool);

/* The same for the first token of each sequence only (what a classification head reads, so the
 * last layer needs no other query): ctx row s (stride ldctx) gets the attention output of row
 * cu_seqlens[s]. Work items are (sequence, head). Scratch as for rr_attention. */
void rr_attention_first(const rr_kern_table *k, const float *qkv, int ldqkv, const int *cu_seqlens, int n_seq,
                        int n_heads, int head_dim, float scale, float *ctx, int ldctx, rr_precision precision,
                        void *scratch, rr_pool *pool);

/* Position terms inside attention (the encoders' position schemes that act on scores):
 *   alibi   [n_heads] slopes or NULL: score(i, j) -= alibi[h] * |i - j| (symmetric ALiBi, JinaBERT)
 *   window  > 0: query i sees key j only when |i - j| <= window (ModernBERT's local layers); 0 = all
 * Positions are inside each sequence, so neither depends on the batch. With a window the keys a
 * query tile reads are cut to the ones it can see, so work and memory stay linear in the length. */
typedef struct rr_attn_opts {
    const float *alibi;
    int window;
} rr_attn_opts;

/* rr_attention / rr_attention_first with position terms (opts NULL = none). */
void rr_attention_ex(const rr_kern_table *k, const float *qkv, int ldqkv, const int *cu_seqlens, int n_seq,
                     int n_heads, int head_dim, float scale, const rr_attn_opts *opts, float *ctx, int ldctx,
                     rr_precision precision, void *scratch, rr_pool *pool);
void rr_attention_first_ex(const rr_kern_table *k, const float *qkv, int ldqkv, const int *cu_seqlens, int n_seq,
                           int n_heads, int head_dim, float scale, const rr_attn_opts *opts, float *ctx, int ldctx,
                           rr_precision precision, void *scratch, rr_pool *pool);

/* Scratch bytes rr_attention_causal needs for at most n_seq sequences of n_tokens rows in all: that
 * of rr_attention, plus in bf16 with head_dim 128 the keys and values of every KV head converted
 * once to bf16 (4 n_tokens n_kv_heads head_dim bytes, rounded up to blocks of 64 rows). */
size_t rr_attention_causal_scratch_bytes(int n_threads, int n_seq, int n_tokens, int n_kv_heads, int head_dim,
                                         rr_precision precision);

/* Causal grouped-query attention of each sequence of a packed batch (decoders): query head h reads
 * KV head h / (n_heads / n_kv_heads), and row t of a sequence sees the keys of rows 0..t of it only.
 * q, kk and v point at head 0 of row 0 of their blocks, all with row stride ld (heads at h*D);
 * ctx [T, n_heads D] with row stride ldctx. last_only: only each sequence's last row is a query
 * (it sees the whole sequence) and its output goes to ctx row s. Tiled with an online softmax as
 * rr_attention; scratch of rr_attention_causal_scratch_bytes. Work items: (sequence, head, query
 * tile), query tiles reading only keys up to their last row; in bf16 with head_dim 128 on a table
 * with the packed kernel, K and V are converted once and an item is (sequence, query tile, KV head)
 * for all the query heads that share it. */
void rr_attention_causal(const rr_kern_table *k, const float *q, const float *kk, const float *v, int ld,
                         const int *cu_seqlens, int n_seq, int n_heads, int n_kv_heads, int head_dim, float scale,
                         float *ctx, int ldctx, int last_only, rr_precision precision, void *scratch,
                         rr_pool *pool);
/* Causal attention for chosen query rows only (jina-reranker-v3's last layer, whose output is read
 * at its marker tokens alone): row rows[i] (an index into q, kk, v as for rr_attention_causal) sees
 * the keys of rows row_start[i] .. rows[i], its sequence so far, and its output goes to ctx row i.
 * One item per (row, head); scratch of rr_attention_causal_scratch_bytes with n_seq >= n_rows. */
void rr_attention_causal_rows(const rr_kern_table *k, const float *q, const float *kk, const float *v, int ld,
                              const int *rows, const int *row_start, int n_rows, int n_heads, int n_kv_heads,
                              int head_dim, float scale, float *ctx, int ldctx, rr_precision precision, void *scratch,
                              rr_pool *pool);

/* ------------------------------------------------------------------ element-wise */

/* Activations of the gated feed-forwards. */
typedef enum rr_kern_act {
    RR_KERN_ACT_GELU = 0, /* exact erf GELU */
    RR_KERN_ACT_RELU = 1,
    RR_KERN_ACT_SILU = 2, /* x sigmoid(x) */
} rr_kern_act;

/* Gated linear unit over rows: y[i, j] = act(x[i, a_off + j]) * x[i, b_off + j] for j < n, x rows
 * of stride ldx, y rows of stride ldy (y must not overlap x). GEGLU/ReGLU/SwiGLU halves of one
 * [rows, 2n] projection; which half is activated is the caller's a_off / b_off. Relative error of
 * act < 1e-6 (tested). Parallel over rows. */
void rr_glu(const rr_kern_table *k, int rows, int n, const float *x, int ldx, int a_off, int b_off, float *y,
            int ldy, rr_kern_act act, rr_pool *pool);

/* Rotary position embedding, half-split (GPT-NeoX) form, in place on rows of x (stride ldx), each
 * holding n_heads head vectors of d floats from offset 0: with h = d/2, c = cos(pos inv_freq[j]) and
 * s = sin(...), v[j] <- v[j] c - v[j+h] s and v[j+h] <- v[j+h] c + v[j] s. table [P][d] rows hold
 * cos [d/2] then sin [d/2] for position p; pos [rows] names each row's position. */
void rr_rope(const rr_kern_table *k, int rows, float *x, int ldx, int n_heads, int d, const int *pos,
             const float *table, rr_pool *pool);


/* y[i, :] = LN(x[i, :] + r[i, :]) * g + b over rows of n (r may be NULL; y may alias x or r).
 * Mean and variance are computed in fp32 in two passes (as PyTorch on CPU); eps added to the
 * variance. Parallel over rows. */
void rr_layernorm(const rr_kern_table *k, int rows, int n, const float *x, int ldx, const float *r,
                  int ldr, const float *g, const float *b, float eps, float *y, int ldy, rr_pool *pool);
/* x = 0.5 x (1 + erf(x / sqrt 2)) in place, relative error < 1e-6 (tested). */
void rr_gelu(const rr_kern_table *k, float *x, size_t n);
/* x = tanh(x) in place, relative error < 1e-6 (tested). */
void rr_tanh(const rr_kern_table *k, float *x, size_t n);

#endif

/*
 * attention.c -- the drivers of the attention kernels: they split the work into items for the pool
 * and hand each to the chosen table.
 *
 * Attention work items are (sequence, head, query tile of RR_KERN_ATTN_QT rows, or the table's
 * attn_qt_bf16_d64 for its bf16 head-dim-64 kernel); a sequence of S tokens gives
 * n_heads * ceil(S / QT) items, so short and long sequences balance across threads.
 * Items are numbered sequence by sequence through a prefix table of tile counts kept in scratch.
 */
#include "kernels/kern_int.h"

#include "core/core.h"

static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

/* floats of one kernel's tiles: Q tile, K^T tile, V tile, scores, output accumulators, row max
 * and sum, for qt query rows, kt keys and dp (padded) dimensions */
static size_t tile_floats(size_t qt, size_t kt, size_t dp) {
    return qt * dp + dp * kt + kt * dp + qt * kt + qt * dp + 2 * round16(qt) + 16;
}

size_t rr_kern_attn_scratch_floats(int d) {
    size_t gen = tile_floats(RR_KERN_ATTN_QT, RR_KERN_ATTN_KT, round16((size_t)d));
    /* the avx512bf16 kernel for head_dim 64 and 128 lays out the same with its own, larger tiles */
    size_t bf = d == 128 ? tile_floats(RR_KERN_ATTN_QT, RR_KERN_ATTN_KT_BF16, 128)
                         : tile_floats(RR_KERN_ATTN_QT_BF16, RR_KERN_ATTN_KT_BF16, 64);
    return (d == 64 || d == 128) && bf > gen ? bf : gen;
}

/* The scratch every driver below lays out: an [n + 1] int table (first item or block of each
 * sequence), then one tile area per thread, each rounded to 64 bytes. */
static size_t round64(size_t n) { return (n + 63) & ~(size_t)63; }
static size_t prefix_bytes(int n) { return round64(((size_t)n + 1) * sizeof(int)); }
static size_t thread_floats(int head_dim) {
    return round64(rr_kern_attn_scratch_floats(head_dim) * sizeof(float)) / sizeof(float);
}
/* bf16 products unless the precision is fp32 (AUTO reaching the kernels unresolved counts as fp32) */
static int prec_bf16(rr_precision p) { return p != RR_PRECISION_FP32 && p != RR_PRECISION_AUTO; }

size_t rr_attention_scratch_bytes(int n_threads, int n_seq, int head_dim) {
    if (n_threads < 1) n_threads = 1;
    return prefix_bytes(n_seq) + thread_floats(head_dim) * sizeof(float) * (size_t)n_threads;
}

typedef struct {
    const rr_kern_table *k;
    const float *qkv;
    int ldqkv;
    const int *cu;
    int n_seq, n_heads, d;
    float scale;
    float *ctx;
    int ldctx;
    int bf16;
    int q8;           /* int8 precision: S in int8 where the table can (kern_int.h rr_kern_attn) */
    int qt;           /* query rows per item */
    const int *first; /* [n_seq + 1]: first item of each sequence (NULL: first-token mode) */
    const float *alibi; /* [n_heads] or NULL */
    int window;         /* 0: every key */
    float *thread_scratch;
    size_t per_thread;
} attn_job;

static void attn_item_first(void *arg, int item, int tid) {
    attn_job *j = arg;
    int s = item / j->n_heads, h = item % j->n_heads;
    int H = j->n_heads * j->d, t0 = j->cu[s];
    rr_kern_attn a;
    a.causal = a.q_pos = 0;
    a.q = j->qkv + (size_t)t0 * j->ldqkv + (size_t)h * j->d;
    a.k = a.q + H;
    a.v = a.q + 2 * H;
    a.ld = j->ldqkv;
    a.nq = 1;
    a.nk = j->cu[s + 1] - t0;
    if (j->window > 0) a.nk = RR_MIN(a.nk, j->window + 1); /* token 0 sees keys 0..window */
    a.alibi = j->alibi ? j->alibi[h] : 0.f;
    a.window = j->window;
    a.qoff = 0;
    a.d = j->d;
    a.scale = j->scale;
    a.bf16 = j->bf16;
    a.q8 = j->q8;
    a.o = j->ctx + (size_t)s * j->ldctx + (size_t)h * j->d;
    a.ldo = j->ldctx;
    a.scratch = j->thread_scratch + j->per_thread * (size_t)tid;
    if (a.nk > 0) j->k->attn(&a);
}

static void attn_item(void *arg, int item, int tid) {
    attn_job *j = arg;
    /* binary search for the sequence holding this item */
    int lo = 0, hi = j->n_seq - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (j->first[mid] <= item) lo = mid;
        else hi = mid - 1;
    }
    int s = lo, rel = item - j->first[s];
    int len = j->cu[s + 1] - j->cu[s];
    int n_qt = (len + j->qt - 1) / j->qt;
    int h = rel / n_qt, qt = rel % n_qt;
    int H = j->n_heads * j->d;
    int t0 = j->cu[s], q0 = t0 + qt * j->qt;
    rr_kern_attn a;
    a.causal = a.q_pos = 0;
    a.nq = RR_MIN(j->qt, len - qt * j->qt);
    /* keys [k0, k1) of the sequence: all of them, or those some query of the tile can see */
    int k0 = 0, k1 = len;
    if (j->window > 0) {
        k0 = RR_MAX(0, qt * j->qt - j->window);
        k1 = RR_MIN(len, qt * j->qt + a.nq + j->window);
    }
    a.q = j->qkv + (size_t)q0 * j->ldqkv + (size_t)h * j->d;
    a.k = j->qkv + (size_t)(t0 + k0) * j->ldqkv + H + (size_t)h * j->d;
    a.v = j->qkv + (size_t)(t0 + k0) * j->ldqkv + 2 * H + (size_t)h * j->d;
    a.ld = j->ldqkv;
    a.nk = k1 - k0;
    a.alibi = j->alibi ? j->alibi[h] : 0.f;
    a.window = j->window;
    a.qoff = qt * j->qt - k0;
    a.d = j->d;
    a.scale = j->scale;
    a.bf16 = j->bf16;
    a.q8 = j->q8;
    a.o = j->ctx + (size_t)q0 * j->ldctx + (size_t)h * j->d;
    a.ldo = j->ldctx;
    a.scratch = j->thread_scratch + j->per_thread * (size_t)tid;
    j->k->attn(&a);
}

void rr_attention(const rr_kern_table *k, const float *qkv, int ldqkv, const int *cu_seqlens, int n_seq,
                  int n_heads, int head_dim, float scale, float *ctx, int ldctx, rr_precision precision,
                  void *scratch, rr_pool *pool) {
    rr_attention_ex(k, qkv, ldqkv, cu_seqlens, n_seq, n_heads, head_dim, scale, NULL, ctx, ldctx, precision, scratch,
                    pool);
}

void rr_attention_first(const rr_kern_table *k, const float *qkv, int ldqkv, const int *cu_seqlens, int n_seq,
                        int n_heads, int head_dim, float scale, float *ctx, int ldctx, rr_precision precision,
                        void *scratch, rr_pool *pool) {
    rr_attention_first_ex(k, qkv, ldqkv, cu_seqlens, n_seq, n_heads, head_dim, scale, NULL, ctx, ldctx, precision,
                          scratch, pool);
}

void rr_attention_ex(const rr_kern_table *k, const float *qkv, int ldqkv, const int *cu_seqlens, int n_seq,
                     int n_heads, int head_dim, float scale, const rr_attn_opts *opts, float *ctx, int ldctx,
                     rr_precision precision, void *scratch, rr_pool *pool) {
    if (n_seq <= 0) return;
    if (!k) k = rr_kern_get();
    RR_ASSERT(qkv && cu_seqlens && ctx && scratch && n_heads > 0 && head_dim > 0);
    RR_ASSERT(ldqkv >= 3 * n_heads * head_dim && ldctx >= n_heads * head_dim);
    attn_job j;
    j.k = k, j.qkv = qkv, j.ldqkv = ldqkv, j.cu = cu_seqlens, j.n_seq = n_seq, j.n_heads = n_heads;
    j.d = head_dim, j.scale = scale, j.ctx = ctx, j.ldctx = ldctx;
    j.alibi = opts ? opts->alibi : NULL;
    j.window = opts ? opts->window : 0;
    j.bf16 = prec_bf16(precision);
    j.q8 = precision == RR_PRECISION_INT8;
    j.qt = j.bf16 && head_dim == 64 && k->attn_qt_bf16_d64 ? k->attn_qt_bf16_d64 : RR_KERN_ATTN_QT;
    int *first = scratch;
    int total = 0;
    for (int s = 0; s < n_seq; s++) {
        int len = cu_seqlens[s + 1] - cu_seqlens[s];
        RR_ASSERT(len >= 0);
        first[s] = total;
        total += n_heads * ((len + j.qt - 1) / j.qt);
    }
    first[n_seq] = total;
    j.first = first;
    size_t pre = prefix_bytes(n_seq);
    j.thread_scratch = (float *)((uint8_t *)scratch + pre);
    j.per_thread = thread_floats(head_dim);
    rr_pool_run(pool, total, attn_item, &j);
}

void rr_attention_first_ex(const rr_kern_table *k, const float *qkv, int ldqkv, const int *cu_seqlens, int n_seq,
                           int n_heads, int head_dim, float scale, const rr_attn_opts *opts, float *ctx, int ldctx,
                           rr_precision precision, void *scratch, rr_pool *pool) {
    if (n_seq <= 0) return;
    if (!k) k = rr_kern_get();
    RR_ASSERT(qkv && cu_seqlens && ctx && scratch && n_heads > 0 && head_dim > 0);
    attn_job j;
    memset(&j, 0, sizeof j);
    j.k = k, j.qkv = qkv, j.ldqkv = ldqkv, j.cu = cu_seqlens, j.n_seq = n_seq, j.n_heads = n_heads;
    j.d = head_dim, j.scale = scale, j.ctx = ctx, j.ldctx = ldctx;
    j.alibi = opts ? opts->alibi : NULL;
    j.window = opts ? opts->window : 0;
    j.bf16 = prec_bf16(precision);
    j.q8 = precision == RR_PRECISION_INT8;
    size_t pre = prefix_bytes(n_seq);
    j.thread_scratch = (float *)((uint8_t *)scratch + pre);
    j.per_thread = thread_floats(head_dim);
    rr_pool_run(pool, n_seq * n_heads, attn_item_first, &j);
}

/* ------------------------------------------------------------------ causal grouped-query attention */

/* The packed path (bf16, head_dim 128, a table with attn_gqa128): K and V of every KV head are
 * converted to bf16 once per call into scratch (blocks of 64 rows from each sequence's first,
 * kern_int.h), instead of once per (head, query tile) item; then each item is n_rep query heads x
 * RR_KERN_ATTN_QT / n_rep positions of one KV head, so a tile of K and V read from the packed buffer
 * serves every head of its group. Its results are bit for bit those of the per-head kernel, so when a
 * batch of many short sequences needs more blocks than the scratch holds (it is sized for the tokens
 * plus PACK_SPARE_BLOCKS of padding) the call takes the per-head path with no change in any output. */
#define PACK_SPARE_BLOCKS 64
static int use_packed(const rr_kern_table *k, int bf16, int head_dim, int n_rep) {
    return bf16 && head_dim == 128 && k->attn_gqa128 && k->kv_pack128 && n_rep <= 16 &&
           RR_KERN_ATTN_QT % n_rep == 0;
}

/* blocks of 64 rows per KV head the packed buffers hold for n_tokens rows */
static size_t pack_capacity(int n_tokens) {
    return ((size_t)n_tokens + RR_KERN_KV_BLOCK - 1) / RR_KERN_KV_BLOCK + PACK_SPARE_BLOCKS;
}

size_t rr_attention_causal_scratch_bytes(int n_threads, int n_seq, int n_tokens, int n_kv_heads, int head_dim,
                                         rr_precision precision) {
    size_t b = rr_attention_scratch_bytes(n_threads, n_seq, head_dim);
    int bf16 = prec_bf16(precision);
    if (bf16 && head_dim == 128) /* the blocks' prefix per sequence, then packed K and V */
        b += prefix_bytes(n_seq) +
             2 * pack_capacity(n_tokens) * (size_t)(n_kv_heads > 0 ? n_kv_heads : 1) * RR_KERN_KV_BLOCK_DWORDS * 4;
    return b;
}

typedef struct {
    const rr_kern_table *k;
    const float *q, *kk, *v;
    int ld;
    const int *cu;
    int n_seq, n_heads, n_kv, n_rep, d;
    float scale;
    float *ctx;
    int ldctx;
    int bf16, qt;
    const int *first; /* [n_seq + 1] first item of each sequence; NULL: one query row per item */
    const int *rows;  /* rows mode: query row i is rows[i], in the sequence starting at row_start[i] */
    const int *row_start;
    float *thread_scratch;
    size_t per_thread;
    int packed;        /* items are (sequence, position tile, KV head) over kp / vp */
    int kv_blocks;     /* blocks of 64 rows per KV head in use */
    const int *blk;    /* [n_seq + 1] first block of each sequence */
    uint32_t *kp, *vp; /* [n_kv][kv_blocks] blocks */
} causal_job;

/* the last s with pre[s] <= item (binary search of an [n_seq + 1] prefix table) */
static int prefix_seq(const causal_job *j, const int *pre, int item) {
    int lo = 0, hi = j->n_seq - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (pre[mid] <= item) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

static int item_seq(const causal_job *j, int item) { return prefix_seq(j, j->first, item); }

static void causal_item(void *arg, int item, int tid) {
    causal_job *j = arg;
    int s, h, q0, nq, nk, qpos;
    if (j->first) {
        s = item_seq(j, item);
        int rel = item - j->first[s], len = j->cu[s + 1] - j->cu[s];
        int n_qt = (len + j->qt - 1) / j->qt;
        h = rel / n_qt;
        qpos = (rel % n_qt) * j->qt;
        nq = RR_MIN(j->qt, len - qpos);
        nk = qpos + nq; /* keys past the tile's last row are masked for every row: not read */
        q0 = j->cu[s] + qpos;
    } else {
        s = item / j->n_heads, h = item % j->n_heads;
        int end = j->rows ? j->rows[s] + 1 : j->cu[s + 1];
        nk = end - (j->rows ? j->row_start[s] : j->cu[s]);
        qpos = nk - 1, nq = 1;
        q0 = end - 1;
    }
    int g = h / j->n_rep, t0 = j->rows ? j->row_start[s] : j->cu[s];
    rr_kern_attn a;
    memset(&a, 0, sizeof a);
    a.q = j->q + (size_t)q0 * j->ld + (size_t)h * j->d;
    a.k = j->kk + (size_t)t0 * j->ld + (size_t)g * j->d;
    a.v = j->v + (size_t)t0 * j->ld + (size_t)g * j->d;
    a.ld = j->ld;
    a.nq = nq;
    a.nk = nk;
    a.d = j->d;
    a.scale = j->scale;
    a.bf16 = j->bf16;
    a.o = j->ctx + (size_t)(j->first ? q0 : s) * j->ldctx + (size_t)h * j->d;
    a.ldo = j->ldctx;
    a.scratch = j->thread_scratch + j->per_thread * (size_t)tid;
    /* rows mode too (one row at position nk - 1: nothing masked), so that every table runs it on the
     * same causal kernel as the all-rows mode and the two agree bit for bit */
    a.causal = 1;
    a.q_pos = qpos;
    a.alibi = 0.f, a.window = 0, a.qoff = 0; /* no position terms on scores: the decoders use rotary */
    if (nk > 0) j->k->attn(&a);
}

/* packing item: block b (of all sequences' blocks) of KV head g */
static void pack_item(void *arg, int item, int tid) {
    (void)tid;
    causal_job *j = arg;
    int g = item / j->kv_blocks, b = item % j->kv_blocks;
    int s = prefix_seq(j, j->blk, b);
    while (j->blk[s + 1] <= b) s++; /* past empty sequences (no blocks) */
    size_t off = ((size_t)g * j->kv_blocks + b) * RR_KERN_KV_BLOCK_DWORDS, row = (size_t)j->cu[s] * j->ld;
    j->k->kv_pack128(j->kk + row + (size_t)g * j->d, j->v + row + (size_t)g * j->d, j->ld,
                     j->cu[s + 1] - j->cu[s], b - j->blk[s], j->kp + off, j->vp + off);
}

/* packed item: within a sequence, position tiles from the last (the most keys) to the first, each
 * for every KV head, so the costliest items start first and the pool's tail stays short */
static void packed_item(void *arg, int item, int tid) {
    causal_job *j = arg;
    int s = item_seq(j, item);
    int rel = item - j->first[s], len = j->cu[s + 1] - j->cu[s];
    int n_qt = (len + j->qt - 1) / j->qt;
    int g = rel % j->n_kv, qt = n_qt - 1 - rel / j->n_kv;
    int t0 = j->cu[s], qpos = qt * j->qt, nq = RR_MIN(j->qt, len - qpos), b0 = j->blk[s];
    rr_kern_attn a;
    memset(&a, 0, sizeof a);
    a.q = j->q + (size_t)(t0 + qpos) * j->ld + (size_t)g * j->n_rep * j->d;
    a.ld = j->ld;
    a.nq = nq;
    a.n_rep = j->n_rep;
    a.nk = qpos + nq;
    a.q_pos = qpos;
    a.causal = 1;
    a.d = j->d;
    a.scale = j->scale;
    a.bf16 = 1;
    a.kp = j->kp + ((size_t)g * j->kv_blocks + b0) * RR_KERN_KV_BLOCK_DWORDS;
    a.vp = j->vp + ((size_t)g * j->kv_blocks + b0) * RR_KERN_KV_BLOCK_DWORDS;
    a.o = j->ctx + (size_t)(t0 + qpos) * j->ldctx + (size_t)g * j->n_rep * j->d;
    a.ldo = j->ldctx;
    a.scratch = j->thread_scratch + j->per_thread * (size_t)tid;
    j->k->attn_gqa128(&a);
}

void rr_attention_causal(const rr_kern_table *k, const float *q, const float *kk, const float *v, int ld,
                         const int *cu_seqlens, int n_seq, int n_heads, int n_kv_heads, int head_dim, float scale,
                         float *ctx, int ldctx, int last_only, rr_precision precision, void *scratch,
                         rr_pool *pool) {
    if (n_seq <= 0) return;
    if (!k) k = rr_kern_get();
    RR_ASSERT(q && kk && v && cu_seqlens && ctx && scratch && n_heads > 0 && n_kv_heads > 0 && head_dim > 0);
    RR_ASSERT(n_heads % n_kv_heads == 0 && ldctx >= n_heads * head_dim);
    causal_job j;
    memset(&j, 0, sizeof j);
    j.k = k, j.q = q, j.kk = kk, j.v = v, j.ld = ld, j.cu = cu_seqlens, j.n_seq = n_seq;
    j.n_heads = n_heads, j.n_kv = n_kv_heads, j.n_rep = n_heads / n_kv_heads, j.d = head_dim, j.scale = scale;
    j.ctx = ctx, j.ldctx = ldctx;
    j.bf16 = prec_bf16(precision);
    j.packed = !last_only && use_packed(k, j.bf16, head_dim, j.n_rep);
    /* scratch: [first][packed path: blocks' prefix, packed K, packed V][thread tiles] */
    size_t pre = prefix_bytes(n_seq);
    uint8_t *p = (uint8_t *)scratch + pre;
    if (j.packed) {
        int *blk = (int *)p, nb = 0;
        for (int s = 0; s < n_seq; s++) {
            blk[s] = nb;
            nb += (cu_seqlens[s + 1] - cu_seqlens[s] + RR_KERN_KV_BLOCK - 1) / RR_KERN_KV_BLOCK;
        }
        blk[n_seq] = nb;
        size_t cap = pack_capacity(cu_seqlens[n_seq]);
        if ((size_t)nb <= cap) {
            size_t pb = cap * (size_t)n_kv_heads * RR_KERN_KV_BLOCK_DWORDS * 4;
            p += pre;
            j.blk = blk;
            j.kv_blocks = nb;
            j.kp = (uint32_t *)p;
            j.vp = (uint32_t *)(p + pb);
            p += 2 * pb;
        } else {
            j.packed = 0;
            p = (uint8_t *)scratch + pre;
        }
    }
    j.qt = j.packed ? RR_KERN_ATTN_QT / j.n_rep
         : j.bf16 && head_dim == 64 && k->attn_qt_bf16_d64 ? k->attn_qt_bf16_d64 : RR_KERN_ATTN_QT;
    j.thread_scratch = (float *)p;
    j.per_thread = thread_floats(head_dim);
    int total;
    if (last_only) {
        total = n_seq * n_heads;
    } else {
        int *first = scratch;
        int per_tile = j.packed ? n_kv_heads : n_heads;
        total = 0;
        for (int s = 0; s < n_seq; s++) {
            int len = cu_seqlens[s + 1] - cu_seqlens[s];
            RR_ASSERT(len >= 0);
            first[s] = total;
            total += per_tile * ((len + j.qt - 1) / j.qt);
        }
        first[n_seq] = total;
        j.first = first;
    }
    if (j.packed) {
        rr_pool_run(pool, n_kv_heads * j.kv_blocks, pack_item, &j);
        rr_pool_run(pool, total, packed_item, &j);
    } else {
        rr_pool_run(pool, total, causal_item, &j);
    }
}

void rr_attention_causal_rows(const rr_kern_table *k, const float *q, const float *kk, const float *v, int ld,
                              const int *rows, const int *row_start, int n_rows, int n_heads, int n_kv_heads,
                              int head_dim, float scale, float *ctx, int ldctx, rr_precision precision, void *scratch,
                              rr_pool *pool) {
    if (n_rows <= 0) return;
    if (!k) k = rr_kern_get();
    RR_ASSERT(q && kk && v && rows && row_start && ctx && scratch && n_heads > 0 && n_kv_heads > 0 && head_dim > 0);
    RR_ASSERT(n_heads % n_kv_heads == 0 && ldctx >= n_heads * head_dim);
    causal_job j;
    memset(&j, 0, sizeof j);
    j.k = k, j.q = q, j.kk = kk, j.v = v, j.ld = ld, j.rows = rows, j.row_start = row_start, j.n_seq = n_rows;
    j.n_heads = n_heads, j.n_kv = n_kv_heads, j.n_rep = n_heads / n_kv_heads, j.d = head_dim, j.scale = scale;
    j.ctx = ctx, j.ldctx = ldctx;
    j.bf16 = prec_bf16(precision);
    for (int i = 0; i < n_rows; i++) RR_ASSERT(row_start[i] <= rows[i]);
    size_t pre = prefix_bytes(n_rows);
    j.thread_scratch = (float *)((uint8_t *)scratch + pre);
    j.per_thread = thread_floats(head_dim);
    rr_pool_run(pool, n_rows * n_heads, causal_item, &j);
}

/*
 * encoder.c -- the exact fp32 forward pass over a packed batch, and rr_ctx, its scratch memory.
 *
 * A pass takes n sequences whose T token rows are concatenated (no padding) and computes one logit
 * per sequence:
 *
 *   x = LN(word[id] + pos[p] + type[tt])                      x: [T, H]
 *   for each layer:
 *     qkv = x Wqkv^T + b                                      qkv: [T, 3H] = Q | K | V, head-major
 *     ctx = softmax(Q K^T / sqrt(d)) V   per sequence, head   ctx: [T, H]
 *     h   = LN(x + ctx Wo^T + bo)                             h: [T, H]
 *     x   = LN(h + GELU(h W1^T + b1) W2^T + b2)               ff: [T, I]
 *   logit = Wout tanh(Wd x[first token] + bd) + bout          one per sequence
 *
 * The families of config_ext.c vary this per rr_config switch, never per family name: no position
 * table (ALiBi slopes or rotary Q/K inside attend(), positions 0.. per sequence), a sliding window
 * per layer, a gated FFN (act(one half of x W1^T) * the other, ffn()), pre-norm blocks
 * (layer_forward_prenorm) with a final norm, mean pooling, and the heads of head().
 *
 * Attention never crosses a sequence boundary, so the result of a sequence does not depend on what
 * else is in the batch. Only the first token feeds the head, so the last layer computes attention
 * outputs and the FFN for those rows alone (exact, and ~1/L of the work saved).
 *
 * The matrices run through the kernels of src/kernels (packed at load by rr_model_pack for the
 * table and precision chosen then); residual adds and GELU are fused into the matmuls' epilogues.
 * All buffers, the thread pool included, are allocated by rr_ctx_new for max_batch_tokens rows;
 * the forward pass allocates nothing.
 */
#include "encoder/encoder.h"

#include "decoder/decoder.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#define FF_ROWS 256 /* token rows per FFN step: bounds the [rows, I] hidden state */

struct rr_ctx {
    const rr_model *m;
    int max_tokens; /* T budget of one pass */
    float *x;       /* [T, H] layer input/output */
    float *qkv;     /* [T, 3H] */
    float *att;     /* [T, H] attention output (before Wo) */
    float *h;       /* [T, H] after the first LayerNorm */
    float *ff;      /* [FF_ROWS, I] FFN hidden state of one row block ([FF_ROWS, 2I] gated) */
    float *ffg;     /* [FF_ROWS, I] gated FFN: act(one half) * the other (NULL otherwise) */
    float *row;     /* [max(H, I)] scratch row */
    void *raw;      /* [threads, H] floats: one embedding row in the file's dtype per thread */
    float *erow;    /* [threads, H] embedding scratch row per thread */
    int *ids;       /* [T] token ids of the pass, flattened */
    int *types;     /* [T] token type ids of the pass, flattened (0 where a sequence gives none) */
    float *logit;   /* [T] head output */
    void *scratch;  /* kernel scratch: max of the linears' and attention's needs */
    rr_pool *pool;  /* m->n_threads threads (0 = cores), caller included */
    int *start;     /* [T + 1] first row of each sequence in the pass */
    int *pos;       /* [T] position id of each row */
    rr_dec_ctx *dec; /* decoders: their own scratch (decoder.c); the buffers above stay NULL */
};

rr_ctx_params rr_ctx_default_params(void) {
    /* 1024 rows keep every GEMM efficient (each weight row is reused 1024 times) while the
     * activations of a pass stay small next to the weights */
    rr_ctx_params p = {1024};
    return p;
}

rr_status rr_ctx_new(const rr_model *m, const rr_ctx_params *params, rr_ctx **out) {
    if (!m || !out) return rr_fail(RR_ERR_INVALID, "rr_ctx_new: NULL argument");
    rr_ctx_params p = params ? *params : rr_ctx_default_params();
    const rr_config *c = &m->cfg;
    if (p.max_batch_tokens <= 0) p.max_batch_tokens = rr_ctx_default_params().max_batch_tokens;
    int T = RR_MAX(p.max_batch_tokens, c->max_length);
    size_t H = (size_t)c->hidden, I = (size_t)c->intermediate, wide = RR_MAX(H, I);
    size_t ffw = c->glu ? 2 * I : I; /* width of the FFN up projection */
    rr_ctx *x = rr_calloc(1, sizeof *x);
    if (!x) return rr_fail(RR_ERR_NOMEM, "out of memory");
    x->m = m;
    x->max_tokens = T;
    rr_status st = rr_pool_new(m->n_threads, &x->pool);
    if (!st && m->dec) st = rr_dec_ctx_new(m, T, x->pool, &x->dec);
    if (st) {
        rr_ctx_free(x);
        return st;
    }
    if (m->dec) {
        *out = x;
        return RR_OK;
    }
    x->x = rr_aligned_alloc((size_t)T * H * 4);
    x->qkv = rr_aligned_alloc((size_t)T * 3 * H * 4);
    x->att = rr_aligned_alloc((size_t)T * H * 4);
    x->h = rr_aligned_alloc((size_t)T * H * 4);
    x->ff = rr_aligned_alloc((size_t)RR_MIN(T, FF_ROWS) * ffw * 4);
    if (c->glu) x->ffg = rr_aligned_alloc((size_t)RR_MIN(T, FF_ROWS) * I * 4);
    x->row = rr_aligned_alloc(wide * 4);
    size_t nt = (size_t)rr_pool_size(x->pool);
    x->raw = rr_aligned_alloc(nt * H * 4);
    x->erow = rr_aligned_alloc(nt * H * 4);
    x->ids = rr_malloc((size_t)T * sizeof *x->ids);
    x->types = rr_malloc((size_t)T * sizeof *x->types);
    x->logit = rr_aligned_alloc((size_t)T * 4);
    x->start = rr_malloc(((size_t)T + 1) * sizeof *x->start);
    x->pos = rr_malloc((size_t)T * sizeof *x->pos);
    size_t sb = rr_attention_scratch_bytes(rr_pool_size(x->pool), T, c->hidden / c->n_heads);
    for (int l = 0; l < c->n_layers; l++) {
        const rr_layer *ly = &m->layers[l];
        sb = RR_MAX(sb, rr_linear_scratch_bytes(ly->lin_qkv, T));
        sb = RR_MAX(sb, rr_linear_scratch_bytes(ly->lin_o, T));
        sb = RR_MAX(sb, rr_linear_scratch_bytes(ly->lin_1, T));
        sb = RR_MAX(sb, rr_linear_scratch_bytes(ly->lin_2, T));
    }
    x->scratch = rr_aligned_alloc(sb);
    if (!x->x || !x->qkv || !x->att || !x->h || !x->ff || (c->glu && !x->ffg) || !x->row || !x->raw || !x->erow ||
        !x->ids || !x->types || !x->logit || !x->start || !x->pos || !x->scratch) {
        rr_ctx_free(x);
        return rr_fail(RR_ERR_NOMEM, "out of memory allocating scratch for %d tokens", T);
    }
    *out = x;
    return RR_OK;
}

void rr_ctx_free(rr_ctx *c) {
    if (!c) return;
    rr_dec_ctx_free(c->dec);
    rr_aligned_free(c->x);
    rr_aligned_free(c->qkv);
    rr_aligned_free(c->att);
    rr_aligned_free(c->h);
    rr_aligned_free(c->ff);
    rr_aligned_free(c->ffg);
    rr_aligned_free(c->row);
    rr_aligned_free(c->raw);
    rr_aligned_free(c->erow);
    rr_free(c->ids);
    rr_free(c->types);
    rr_aligned_free(c->logit);
    rr_aligned_free(c->scratch);
    rr_pool_free(c->pool);
    rr_free(c->start);
    rr_free(c->pos);
    rr_free(c);
}

const rr_model *rr_ctx_model(const rr_ctx *c) { return c->m; }
int rr_ctx_max_tokens(const rr_ctx *c) { return c->max_tokens; }

float rr_sigmoid(float x) {
    if (x >= 0) return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}

/* ------------------------------------------------------------------ fp32 building blocks */

/* y = LN(a + b) * g + beta over rows of n; b may be NULL. Statistics in double: the reference is
 * float64 and H is small, so this costs nothing and removes one source of drift. */
static void layernorm(float *y, const float *a, const float *b, const float *g, const float *beta, int n, float eps) {
    double sum = 0, sq = 0;
    for (int i = 0; i < n; i++) {
        float v = a[i] + (b ? b[i] : 0.0f);
        y[i] = v;
        sum += v;
    }
    double mean = sum / n;
    for (int i = 0; i < n; i++) {
        double d = y[i] - mean;
        sq += d * d;
    }
    float inv = (float)(1.0 / sqrt(sq / n + eps)), mu = (float)mean;
    for (int i = 0; i < n; i++) y[i] = (y[i] - mu) * inv * g[i] + beta[i];
}


/* ------------------------------------------------------------------ forward */

/* One embedding pass, shared by the pool's threads: rows are independent once positions are known. */
typedef struct {
    rr_ctx *c;
    int T, per;                     /* rows, rows per item */
    atomic_int failed;              /* 0, or 1 + the table (0 word, 1 position) a read failed in */
    atomic_int failed_row;
} embed_job;

/* Records the first failed read (table 1 word, 2 position) for the caller's message. */
static void embed_fail(embed_job *j, int table, int row) {
    int none = 0;
    if (atomic_compare_exchange_strong(&j->failed, &none, table)) atomic_store(&j->failed_row, row);
}

/* Rows [item per, ...): word row + position row + type row, then the embedding LayerNorm. */
static void embed_item(void *arg, int item, int tid) {
    embed_job *j = arg;
    rr_ctx *c = j->c;
    const rr_model *m = c->m;
    const rr_config *cf = &m->cfg;
    int H = cf->hidden;
    size_t wbytes = (size_t)H * rr_dtype_size(m->word_emb.dtype), pbytes = (size_t)H * rr_dtype_size(m->pos_emb.dtype);
    void *raw = (uint8_t *)c->raw + (size_t)tid * H * 4; /* this thread's [H] row in the file's dtype */
    float *tmp = c->erow + (size_t)tid * H;
    int r1 = RR_MIN(j->T, (item + 1) * j->per);
    for (int r = item * j->per; r < r1; r++) {
        float *x = c->x + (size_t)r * H;
        int id = c->ids[r], p = c->pos[r];
        if (!rr_st_copy(m->word_t, (size_t)id * wbytes, raw, wbytes)) {
            embed_fail(j, 1, id);
            return;
        }
        rr_mat row = {raw, m->word_emb.dtype, 1, H};
        rr_mat_row_f32(&row, 0, x);
        if (m->pos_t) { /* a learned position table (XLM-R, BERT), read like the word rows */
            if (!rr_st_copy(m->pos_t, (size_t)p * pbytes, raw, pbytes)) {
                embed_fail(j, 2, p);
                return;
            }
            row.dtype = m->pos_emb.dtype;
            rr_mat_row_f32(&row, 0, tmp);
            for (int i = 0; i < H; i++) x[i] += tmp[i];
        }
        if (m->type_f32) { /* NULL for a model without a type table (ModernBERT) */
            /* a single-row table (mGTE, XLM-R) is row 0 whatever type the tokenizer reports */
            int tt = m->type_emb.rows > 1 ? c->types[r] : 0;
            const float *ty = m->type_f32 + (size_t)tt * H;
            for (int i = 0; i < H; i++) x[i] += ty[i];
        }
        layernorm(x, x, NULL, m->emb_ln_g, m->emb_ln_b ? m->emb_ln_b : m->zeros, H, cf->eps);
    }
}

/* Word and position rows come from the weight files with pread (rr_st_copy): false, with the
 * message set, when a file no longer holds them (truncated under the running process). Positions
 * and the flattened ids first (one pass, in order), then the rows on the pool's threads. */
static bool embed(rr_ctx *c, const rr_seq *seqs, int n) {
    const rr_model *m = c->m;
    const rr_config *cf = &m->cfg;
    for (int s = 0; s < n; s++) {
        int base = c->start[s], count = 0;
        for (int t = 0; t < seqs[s].len; t++) {
            int id = seqs[s].ids[t];
            /* XLM-R counts only non-pad tokens and gives pads the pad position (HF's
             * create_position_ids_from_input_ids); BERT numbers every token from 0 */
            int p;
            if (cf->family == RR_FAMILY_BERT || !m->pos_t) p = t; /* BERT, and ALiBi / rotary (no table) */
            else if (id == cf->pad_id) p = cf->pad_id;
            else p = cf->pad_id + (++count);
            c->pos[base + t] = p;
            c->ids[base + t] = id;
            c->types[base + t] = seqs[s].type_ids ? seqs[s].type_ids[t] : 0; /* none given: type 0 */
        }
    }
    int T = c->start[n];
    embed_job j = {.c = c, .T = T};
    int items = RR_MIN(T, 4 * rr_pool_size(c->pool));
    j.per = (T + items - 1) / items;
    atomic_init(&j.failed, 0);
    atomic_init(&j.failed_row, 0);
    rr_pool_run(c->pool, (T + j.per - 1) / j.per, embed_item, &j);
    int f = atomic_load(&j.failed);
    if (f) {
        const rr_st_tensor *t = f == 1 ? m->word_t : m->pos_t;
        rr_fail(RR_ERR_IO, "%s: cannot read row %d of %s: the file was truncated or removed under the running process "
                "(reload the model)", t->file, atomic_load(&j.failed_row), t->name);
        return false;
    }
    return true;
}

/* Rotary positions on Q and K, then attention from c->qkv into c->att; returns the rows carried on:
 * T, or in the last layer (when the head reads first tokens only) n, with the first rows of x
 * gathered to the front. */
static int attend(rr_ctx *c, const rr_layer *ly, int n, int T, int last, float *x) {
    const rr_model *m = c->m;
    const rr_config *cf = &m->cfg;
    int H = cf->hidden, nh = cf->n_heads, d = H / nh;
    float scale = 1.0f / sqrtf((float)d);
    if (ly->rope) {
        rr_rope(m->kern, T, c->qkv, 3 * H, nh, d, c->pos, ly->rope, c->pool);     /* Q */
        rr_rope(m->kern, T, c->qkv + H, 3 * H, nh, d, c->pos, ly->rope, c->pool); /* K */
    }
    rr_attn_opts o = {m->alibi, ly->window};
    if (last && !cf->mean_pool) {
        /* only each sequence's first row matters from here: attention for those rows alone, and
         * their x rows gathered to the front */
        rr_attention_first_ex(m->kern, c->qkv, 3 * H, c->start, n, nh, d, scale, &o, c->att, H, m->precision,
                              c->scratch, c->pool);
        for (int s = 0; s < n; s++)
            if (s != c->start[s]) memcpy(x + (size_t)s * H, x + (size_t)c->start[s] * H, (size_t)H * 4);
        return n;
    }
    rr_attention_ex(m->kern, c->qkv, 3 * H, c->start, n, nh, d, scale, &o, c->att, H, m->precision, c->scratch,
                    c->pool);
    return T;
}

/* out = res + FFN(in) for `rows` rows (out must not overlap in or res): GELU(in W1^T + b1) W2^T + b2,
 * or for a gated FFN act(one half of in W1^T) * the other half, then W2. */
static void ffn(rr_ctx *c, const rr_layer *ly, int rows, const float *in, float *out, const float *res) {
    const rr_model *m = c->m;
    const rr_config *cf = &m->cfg;
    int H = cf->hidden, I = cf->intermediate;
    if (!cf->glu) {
        rr_linear_run(ly->lin_1, rows, in, H, c->ff, I, RR_KERN_EPI_GELU, NULL, 0, c->scratch, c->pool);
        rr_linear_run(ly->lin_2, rows, c->ff, I, out, H, RR_KERN_EPI_RESIDUAL, res, H, c->scratch, c->pool);
        return;
    }
    rr_linear_run(ly->lin_1, rows, in, H, c->ff, 2 * I, RR_KERN_EPI_NONE, NULL, 0, c->scratch, c->pool);
    int a = cf->glu == RR_GLU_FIRST ? 0 : I;
    rr_glu(m->kern, rows, I, c->ff, 2 * I, a, I - a, c->ffg, I, (rr_kern_act)cf->act, c->pool);
    rr_linear_run(ly->lin_2, rows, c->ffg, I, out, H, RR_KERN_EPI_RESIDUAL, res, H, c->scratch, c->pool);
}

/* c->qkv [T, 3H] = in W_qkv^T + b. The keys and values of all tokens are needed even in the last
 * layer, but when only first rows go on (attend) only their queries are: K and V for every row,
 * then Q for the n first rows, gathered into c->att (free until attention) and put back in place
 * (skips 1/3 of the last layer's QKV product; every value is what the full product gives). */
static void qkv(rr_ctx *c, const rr_layer *ly, int n, int T, int last, const float *in) {
    const rr_config *cf = &c->m->cfg;
    int H = cf->hidden;
    if (!last || cf->mean_pool || 2 * n > T || H % rr_linear_col_step(ly->lin_qkv)) {
        rr_linear_run(ly->lin_qkv, T, in, H, c->qkv, 3 * H, RR_KERN_EPI_NONE, NULL, 0, c->scratch, c->pool);
        return;
    }
    rr_linear_run_cols(ly->lin_qkv, H, 3 * H, T, in, H, c->qkv + H, 3 * H, RR_KERN_EPI_NONE, NULL, 0, c->scratch,
                       c->pool);
    float *first = c->att, *q = c->att + (size_t)n * H; /* [n, H] each: 2n <= T rows of att */
    for (int s = 0; s < n; s++) memcpy(first + (size_t)s * H, in + (size_t)c->start[s] * H, (size_t)H * 4);
    rr_linear_run_cols(ly->lin_qkv, 0, H, n, first, H, q, H, RR_KERN_EPI_NONE, NULL, 0, c->scratch, c->pool);
    for (int s = 0; s < n; s++) memcpy(c->qkv + (size_t)c->start[s] * 3 * H, q + (size_t)s * H, (size_t)H * 4);
}

static void layer_forward(rr_ctx *c, const rr_layer *ly, int n, int T, int last) {
    const rr_model *m = c->m;
    const rr_config *cf = &m->cfg;
    int H = cf->hidden;
    qkv(c, ly, n, T, last, c->x);
    int R = attend(c, ly, n, T, last, c->x); /* rows carried past attention */
    /* h = LN(x + att Wo^T + bo) */
    rr_linear_run(ly->lin_o, R, c->att, H, c->h, H, RR_KERN_EPI_RESIDUAL, c->x, H, c->scratch, c->pool);
    rr_layernorm(m->kern, R, H, c->h, H, NULL, 0, ly->ln1_g, ly->ln1_b, cf->eps, c->h, H, c->pool);
    /* x = LN(h + GELU(h W1^T + b1) W2^T + b2), FF_ROWS rows at a time: the [rows, I] hidden state is
     * the largest activation, and rows are independent here */
    for (int r0 = 0; r0 < R; r0 += FF_ROWS) {
        int rows = RR_MIN(FF_ROWS, R - r0);
        const float *h = c->h + (size_t)r0 * H;
        float *x = c->x + (size_t)r0 * H;
        ffn(c, ly, rows, h, x, h);
        rr_layernorm(m->kern, rows, H, x, H, NULL, 0, ly->ln2_g, ly->ln2_b, cf->eps, x, H, c->pool);
    }
}

/* Pre-norm block (ModernBERT): x += attn(LN1(x)) Wo^T; x += ffn(LN2(x)); LN1 absent in layer 0.
 * The sums go to c->h and the buffers swap, since a linear's output may not overlap its residual. */
static void layer_forward_prenorm(rr_ctx *c, const rr_layer *ly, int n, int T, int last) {
    const rr_model *m = c->m;
    const rr_config *cf = &m->cfg;
    int H = cf->hidden;
    const float *in = c->x;
    if (ly->ln1_g) {
        rr_layernorm(m->kern, T, H, c->x, H, NULL, 0, ly->ln1_g, ly->ln1_b ? ly->ln1_b : m->zeros, cf->eps, c->h, H,
                     c->pool);
        in = c->h;
    }
    qkv(c, ly, n, T, last, in);
    int R = attend(c, ly, n, T, last, c->x);
    rr_linear_run(ly->lin_o, R, c->att, H, c->h, H, RR_KERN_EPI_RESIDUAL, c->x, H, c->scratch, c->pool);
    float *t = c->x; /* x <- x + attention */
    c->x = c->h, c->h = t;
    /* x <- x + ffn(LN2(x)) in row blocks: LN2 into att (free now), the sum into h */
    for (int r0 = 0; r0 < R; r0 += FF_ROWS) {
        int rows = RR_MIN(FF_ROWS, R - r0);
        float *xn = c->att + (size_t)r0 * H;
        rr_layernorm(m->kern, rows, H, c->x + (size_t)r0 * H, H, NULL, 0, ly->ln2_g, ly->ln2_b ? ly->ln2_b : m->zeros,
                     cf->eps, xn, H, c->pool);
        ffn(c, ly, rows, xn, c->h + (size_t)r0 * H, c->x + (size_t)r0 * H);
    }
    t = c->x;
    c->x = c->h, c->h = t;
}

/* After the last layer row s of x is sequence s's first token (all T rows stay when the head
 * pools the mean). Pre-norm models first take their final norm; mean pooling then leaves each
 * sequence's mean in row s. */
static void head(rr_ctx *c, int n, int T, float *logits) {
    const rr_model *m = c->m;
    const rr_config *cf = &m->cfg;
    int H = cf->hidden;
    if (cf->prenorm)
        rr_layernorm(m->kern, cf->mean_pool ? T : n, H, c->x, H, NULL, 0, m->final_ln_g,
                     m->final_ln_b ? m->final_ln_b : m->zeros, cf->eps, c->x, H, c->pool);
    if (cf->mean_pool)
        for (int s = 0; s < n; s++) { /* rows of sequence s start at or after row s: earlier ones are done */
            int len = c->start[s + 1] - c->start[s];
            for (int i = 0; i < H; i++) {
                double sum = 0;
                for (int t = c->start[s]; t < c->start[s + 1]; t++) sum += c->x[(size_t)t * H + i];
                c->row[i] = (float)(sum / len);
            }
            memcpy(c->x + (size_t)s * H, c->row, (size_t)H * 4);
        }
    const float *z = c->x;
    if (cf->head != RR_HEAD_PLAIN) {
        rr_linear_run(m->lin_head, n, c->x, H, c->h, H, RR_KERN_EPI_NONE, NULL, 0, c->scratch, c->pool);
        if (cf->head == RR_HEAD_TANH) {
            rr_tanh(m->kern, c->h, (size_t)n * H);
        } else {
            if (cf->head_act == RR_KERN_ACT_GELU) rr_gelu(m->kern, c->h, (size_t)n * H);
            else
                for (size_t i = 0; i < (size_t)n * H; i++) {
                    double v = c->h[i];
                    c->h[i] = (float)(cf->head_act == RR_KERN_ACT_RELU ? (v > 0 ? v : 0) : v / (1 + exp(-v)));
                }
            rr_layernorm(m->kern, n, H, c->h, H, NULL, 0, m->head_ln_g, m->head_ln_b ? m->head_ln_b : m->zeros,
                         cf->eps, c->h, H, c->pool);
        }
        z = c->h;
    }
    rr_linear_run(m->lin_out, n, z, H, c->logit, 1, RR_KERN_EPI_NONE, NULL, 0, c->scratch, c->pool);
    memcpy(logits, c->logit, (size_t)n * sizeof *logits);
}

/* One pass over seqs[0..n) whose lengths sum to at most max_tokens (and n <= max_tokens). */
static rr_status forward_pass(rr_ctx *c, const rr_seq *seqs, int n, float *logits) {
    int T = 0;
    for (int s = 0; s < n; s++) {
        c->start[s] = T;
        T += seqs[s].len;
    }
    c->start[n] = T;
    if (!embed(c, seqs, n)) return RR_ERR_IO;
    const rr_model *m = c->m;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        if (m->cfg.prenorm) layer_forward_prenorm(c, &m->layers[l], n, T, l == m->cfg.n_layers - 1);
        else layer_forward(c, &m->layers[l], n, T, l == m->cfg.n_layers - 1);
    }
    head(c, n, T, logits);
    return RR_OK;
}

rr_status rr_enc_check_seq(const rr_model *m, const rr_seq *s, int i) {
    const rr_config *cf = &m->cfg;
    char who[32] = "sequence";
    if (i >= 0) snprintf(who, sizeof who, "sequence %d", i);
    if (!s->ids || s->len <= 0) return rr_fail(RR_ERR_RANGE, "%s is empty", who);
    if (s->len > cf->max_length)
        return rr_fail(RR_ERR_RANGE, "%s has %d tokens; the model accepts at most %d", who, s->len, cf->max_length);
    for (int t = 0; t < s->len; t++) {
        if (s->ids[t] < 0 || s->ids[t] >= cf->vocab_size)
            return rr_fail(RR_ERR_INVALID, "%s: token id %d at position %d is outside the vocabulary [0, %d)", who,
                           s->ids[t], t, cf->vocab_size);
        /* a model without a type table (ModernBERT) ignores the tokenizer's type ids */
        if (s->type_ids && cf->type_vocab_size > 0 && (s->type_ids[t] < 0 || s->type_ids[t] >= cf->type_vocab_size))
            return rr_fail(RR_ERR_INVALID, "%s: token type id %d at position %d is outside [0, %d)", who,
                           s->type_ids[t], t, cf->type_vocab_size);
    }
    return RR_OK;
}

rr_status rr_model_check_seq(const rr_model *m, const rr_seq *s) {
    if (!m || !s) return rr_fail(RR_ERR_INVALID, "rr_model_check_seq: NULL argument");
    return rr_enc_check_seq(m, s, -1);
}

rr_status rr_hook_call(rr_hook *h) {
    if (!h || !h->fn || !h->fn(h->user, h->done, h->total)) return RR_OK;
    return rr_fail(RR_ERR_CANCELLED, "cancelled by the caller after %ld of %ld sequences", h->done, h->total);
}

rr_status rr_score_ids(rr_ctx *c, const rr_seq *seqs, int n, float *logits) {
    return rr_score_ids_hooked(c, seqs, n, logits, NULL);
}

rr_status rr_score_ids_hooked(rr_ctx *c, const rr_seq *seqs, int n, float *logits, rr_hook *h) {
    if (!c || (n > 0 && (!seqs || !logits)) || n < 0) return rr_fail(RR_ERR_INVALID, "rr_score_ids: bad arguments");
    for (int i = 0; i < n; i++) {
        rr_status s = rr_enc_check_seq(c->m, &seqs[i], i);
        if (s) return s;
        if (c->m->cfg.family == RR_FAMILY_JINA_V3 && (!seqs[i].emb || seqs[i].n_emb < 1))
            return rr_fail(RR_ERR_INVALID, "sequence %d: a jina-reranker-v3 pass writes marker embeddings; give it "
                           "rr_seq.emb with n_emb >= 1 rows", i);
    }
    /* consecutive passes, each filled up to the token budget */
    int i = 0;
    while (i < n) {
        int j = i, T = 0;
        while (j < n && T + seqs[j].len <= c->max_tokens) T += seqs[j++].len;
        rr_status s = c->dec ? rr_dec_forward(c->dec, seqs + i, j - i, logits + i)
                             : forward_pass(c, seqs + i, j - i, logits + i);
        if (s) return s;
        /* between passes: the scratch holds nothing a later call needs, so stopping here is clean */
        if (h) {
            h->done += j - i;
            if ((s = rr_hook_call(h))) return s;
        }
        i = j;
    }
    return RR_OK;
}

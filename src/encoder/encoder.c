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
 * Attention never crosses a sequence boundary, so the result of a sequence does not depend on what
 * else is in the batch. Only the first token feeds the head, so the last layer computes attention
 * outputs and the FFN for those rows alone (exact, and ~1/L of the work saved).
 *
 * All buffers are allocated by rr_ctx_new for max_batch_tokens rows; the forward pass allocates
 * nothing.
 */
#include "encoder/encoder.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define GEMM_NB 32  /* rows of W converted to fp32 at a time: 32 x 4096 x 4 B = 512 KiB at most */
#define FF_ROWS 256 /* token rows per FFN step: bounds the [rows, I] hidden state */

struct rr_ctx {
    const rr_model *m;
    int max_tokens; /* T budget of one pass */
    float *x;       /* [T, H] layer input/output */
    float *qkv;     /* [T, 3H] */
    float *att;     /* [T, H] attention output (before Wo) */
    float *h;       /* [T, H] after the first LayerNorm */
    float *ff;      /* [FF_ROWS, I] FFN hidden state of one row block */
    float *scores;  /* [max_length] one row of attention probabilities */
    float *wbuf;    /* [GEMM_NB, max(H, I)] weight rows converted to fp32 */
    float *row;     /* [max(H, I)] scratch row */
    void *raw;      /* [H] one embedding row in the file's dtype */
    int *start;     /* [T + 1] first row of each sequence in the pass */
    int *pos;       /* [T] position id of each row */
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
    rr_ctx *x = rr_calloc(1, sizeof *x);
    if (!x) return rr_fail(RR_ERR_NOMEM, "out of memory");
    x->m = m;
    x->max_tokens = T;
    x->x = rr_aligned_alloc((size_t)T * H * 4);
    x->qkv = rr_aligned_alloc((size_t)T * 3 * H * 4);
    x->att = rr_aligned_alloc((size_t)T * H * 4);
    x->h = rr_aligned_alloc((size_t)T * H * 4);
    x->ff = rr_aligned_alloc((size_t)RR_MIN(T, FF_ROWS) * I * 4);
    x->scores = rr_aligned_alloc((size_t)c->max_length * 4);
    x->wbuf = rr_aligned_alloc(GEMM_NB * wide * 4);
    x->row = rr_aligned_alloc(wide * 4);
    x->raw = rr_aligned_alloc(H * 4);
    x->start = rr_malloc(((size_t)T + 1) * sizeof *x->start);
    x->pos = rr_malloc((size_t)T * sizeof *x->pos);
    if (!x->x || !x->qkv || !x->att || !x->h || !x->ff || !x->scores || !x->wbuf || !x->row || !x->raw ||
        !x->start || !x->pos) {
        rr_ctx_free(x);
        return rr_fail(RR_ERR_NOMEM, "out of memory allocating scratch for %d tokens", T);
    }
    *out = x;
    return RR_OK;
}

void rr_ctx_free(rr_ctx *c) {
    if (!c) return;
    rr_aligned_free(c->x);
    rr_aligned_free(c->qkv);
    rr_aligned_free(c->att);
    rr_aligned_free(c->h);
    rr_aligned_free(c->ff);
    rr_aligned_free(c->scores);
    rr_aligned_free(c->wbuf);
    rr_aligned_free(c->row);
    rr_aligned_free(c->raw);
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

typedef float v8f __attribute__((vector_size(32)));

/* Macros rather than functions: passing 32-byte vectors by value changes the ABI on baseline x86-64. */
#define load8(p) ({ v8f v_; memcpy(&v_, (p), sizeof v_); v_; })
#define hsum8(v) ({ v8f h_ = (v); ((h_[0] + h_[4]) + (h_[1] + h_[5])) + ((h_[2] + h_[6]) + (h_[3] + h_[7])); })

/* The dot product every output element of gemm() uses: one 8-lane accumulator over k, lanes summed
 * in a fixed order, then the scalar tail. The 4x4 tiles below follow the same order, so an element's
 * value does not depend on which tile (or which batch) its row lands in. */
static float dot(const float *a, const float *b, int k) {
    v8f acc = {0};
    int i = 0;
    for (; i + 8 <= k; i += 8) acc += load8(a + i) * load8(b + i);
    float s = hsum8(acc);
    for (; i < k; i++) s += a[i] * b[i];
    return s;
}

/* y += a * x over n floats */
static void axpy(float *y, float a, const float *x, int n) {
    int i = 0;
    v8f av = {a, a, a, a, a, a, a, a};
    for (; i + 8 <= n; i += 8) {
        v8f r = load8(y + i) + av * load8(x + i);
        memcpy(y + i, &r, sizeof r);
    }
    for (; i < n; i++) y[i] += a * x[i];
}

/* Y[M, N] = X[M, K] W^T + bias, W = w [N, K] in any float dtype. X rows are ldx apart, Y rows ldy.
 * W is converted GEMM_NB rows at a time into wbuf, then a 4x4 tile of dot products is computed per
 * step so each loaded X and W vector is used four times. */
static void gemm(int M, const float *X, int ldx, const rr_mat *w, const float *bias, float *Y, int ldy, float *wbuf) {
    int N = w->rows, K = w->cols;
    for (int n0 = 0; n0 < N; n0 += GEMM_NB) {
        int nb = RR_MIN(GEMM_NB, N - n0);
        for (int j = 0; j < nb; j++) rr_mat_row_f32(w, n0 + j, wbuf + (size_t)j * K);
        int m = 0;
        for (; m + 4 <= M; m += 4) {
            const float *x0 = X + (size_t)m * ldx, *x1 = x0 + ldx, *x2 = x1 + ldx, *x3 = x2 + ldx;
            int j = 0;
            for (; j + 4 <= nb; j += 4) {
                const float *w0 = wbuf + (size_t)j * K, *w1 = w0 + K, *w2 = w1 + K, *w3 = w2 + K;
                v8f a[4][4] = {{{0}}};
                int k = 0;
                for (; k + 8 <= K; k += 8) {
                    v8f xv[4] = {load8(x0 + k), load8(x1 + k), load8(x2 + k), load8(x3 + k)};
                    v8f wv[4] = {load8(w0 + k), load8(w1 + k), load8(w2 + k), load8(w3 + k)};
                    for (int r = 0; r < 4; r++)
                        for (int q = 0; q < 4; q++) a[r][q] += xv[r] * wv[q];
                }
                const float *xs[4] = {x0, x1, x2, x3}, *ws[4] = {w0, w1, w2, w3};
                for (int r = 0; r < 4; r++)
                    for (int q = 0; q < 4; q++) {
                        float s = hsum8(a[r][q]);
                        for (int kk = k; kk < K; kk++) s += xs[r][kk] * ws[q][kk];
                        Y[(size_t)(m + r) * ldy + n0 + j + q] = s + (bias ? bias[n0 + j + q] : 0.0f);
                    }
            }
            for (; j < nb; j++)
                for (int r = 0; r < 4; r++)
                    Y[(size_t)(m + r) * ldy + n0 + j] =
                        dot(X + (size_t)(m + r) * ldx, wbuf + (size_t)j * K, K) + (bias ? bias[n0 + j] : 0.0f);
        }
        for (; m < M; m++)
            for (int j = 0; j < nb; j++)
                Y[(size_t)m * ldy + n0 + j] =
                    dot(X + (size_t)m * ldx, wbuf + (size_t)j * K, K) + (bias ? bias[n0 + j] : 0.0f);
    }
}

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

static inline float gelu(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752440f)); }

/* ------------------------------------------------------------------ forward */

static void embed(rr_ctx *c, const rr_seq *seqs, int n) {
    const rr_model *m = c->m;
    const rr_config *cf = &m->cfg;
    int H = cf->hidden;
    float *tmp = c->row;
    for (int s = 0; s < n; s++) {
        int base = c->start[s], count = 0;
        for (int t = 0; t < seqs[s].len; t++) {
            int id = seqs[s].ids[t];
            /* XLM-R counts only non-pad tokens and gives pads the pad position (HF's
             * create_position_ids_from_input_ids); BERT numbers every token from 0 */
            int p;
            if (cf->family == RR_FAMILY_BERT) p = t;
            else if (id == cf->pad_id) p = cf->pad_id;
            else p = cf->pad_id + (++count);
            c->pos[base + t] = p;
            float *x = c->x + (size_t)(base + t) * H;
            size_t rowbytes = (size_t)H * rr_dtype_size(m->word_emb.dtype);
            rr_st_copy(m->word_t, (size_t)id * rowbytes, c->raw, rowbytes);
            rr_mat raw = {c->raw, m->word_emb.dtype, 1, H};
            rr_mat_row_f32(&raw, 0, x);
            rr_mat_row_f32(&m->pos_emb, p, tmp);
            for (int i = 0; i < H; i++) x[i] += tmp[i];
            rr_mat_row_f32(&m->type_emb, seqs[s].type_ids ? seqs[s].type_ids[t] : 0, tmp);
            for (int i = 0; i < H; i++) x[i] += tmp[i];
            layernorm(x, x, NULL, m->emb_ln_g, m->emb_ln_b, H, cf->eps);
        }
    }
}

/* Attention of query row qrow (within sequence s) over all rows of s, for every head; writes the
 * [H] output row to out. */
static void attend_row(rr_ctx *c, int s, int qrow, float *out) {
    const rr_config *cf = &c->m->cfg;
    int H = cf->hidden, nh = cf->n_heads, d = H / nh, H3 = 3 * H;
    int b = c->start[s], L = c->start[s + 1] - b;
    float scale = 1.0f / sqrtf((float)d), *p = c->scores;
    for (int h = 0; h < nh; h++) {
        const float *q = c->qkv + (size_t)qrow * H3 + h * d;
        float mx = -INFINITY;
        for (int j = 0; j < L; j++) {
            p[j] = dot(q, c->qkv + (size_t)(b + j) * H3 + H + h * d, d) * scale;
            mx = p[j] > mx ? p[j] : mx;
        }
        float sum = 0;
        for (int j = 0; j < L; j++) sum += (p[j] = expf(p[j] - mx));
        float *o = out + h * d, inv = 1.0f / sum;
        memset(o, 0, (size_t)d * sizeof *o);
        for (int j = 0; j < L; j++) axpy(o, p[j] * inv, c->qkv + (size_t)(b + j) * H3 + 2 * H + h * d, d);
    }
}

static void layer_forward(rr_ctx *c, const rr_layer *ly, int n, int T, int last) {
    const rr_config *cf = &c->m->cfg;
    int H = cf->hidden, I = cf->intermediate;
    /* qkv for every row: the keys and values of all tokens are needed even in the last layer */
    gemm(T, c->x, H, &ly->wq, ly->bqkv, c->qkv, 3 * H, c->wbuf);
    gemm(T, c->x, H, &ly->wk, ly->bqkv + H, c->qkv + H, 3 * H, c->wbuf);
    gemm(T, c->x, H, &ly->wv, ly->bqkv + 2 * H, c->qkv + 2 * H, 3 * H, c->wbuf);
    int R; /* rows carried past attention */
    if (last) {
        /* only each sequence's first row matters from here: gather those rows to the front */
        for (int s = 0; s < n; s++) {
            attend_row(c, s, c->start[s], c->att + (size_t)s * H);
            if (s != c->start[s]) memcpy(c->x + (size_t)s * H, c->x + (size_t)c->start[s] * H, (size_t)H * 4);
        }
        R = n;
    } else {
        for (int s = 0; s < n; s++)
            for (int r = c->start[s]; r < c->start[s + 1]; r++) attend_row(c, s, r, c->att + (size_t)r * H);
        R = T;
    }
    gemm(R, c->att, H, &ly->wo, ly->bo, c->h, H, c->wbuf);
    for (int r = 0; r < R; r++) {
        float *h = c->h + (size_t)r * H;
        layernorm(h, c->x + (size_t)r * H, h, ly->ln1_g, ly->ln1_b, H, cf->eps);
    }
    /* the FFN runs FF_ROWS rows at a time: its [rows, I] hidden state is the largest activation,
     * and rows are independent here */
    for (int r0 = 0; r0 < R; r0 += FF_ROWS) {
        int rows = RR_MIN(FF_ROWS, R - r0);
        const float *h = c->h + (size_t)r0 * H;
        float *x = c->x + (size_t)r0 * H;
        gemm(rows, h, H, &ly->w1, ly->b1, c->ff, I, c->wbuf);
        for (size_t i = 0; i < (size_t)rows * I; i++) c->ff[i] = gelu(c->ff[i]);
        gemm(rows, c->ff, I, &ly->w2, ly->b2, x, H, c->wbuf);
        for (int r = 0; r < rows; r++)
            layernorm(x + (size_t)r * H, h + (size_t)r * H, x + (size_t)r * H, ly->ln2_g, ly->ln2_b, H, cf->eps);
    }
}

/* After the last layer row s of x is sequence s's first token. */
static void head(rr_ctx *c, int n, float *logits) {
    const rr_model *m = c->m;
    int H = m->cfg.hidden;
    float *t = c->row;
    gemm(n, c->x, H, &m->head_dense, m->head_dense_b, c->h, H, c->wbuf);
    for (int s = 0; s < n; s++) {
        float *hrow = c->h + (size_t)s * H;
        for (int i = 0; i < H; i++) hrow[i] = tanhf(hrow[i]);
    }
    gemm(n, c->h, H, &m->head_out, &m->head_out_b, t, 1, c->wbuf);
    memcpy(logits, t, (size_t)n * sizeof *logits);
}

/* One pass over seqs[0..n) whose lengths sum to at most max_tokens (and n <= max_tokens). */
static void forward_pass(rr_ctx *c, const rr_seq *seqs, int n, float *logits) {
    int T = 0;
    for (int s = 0; s < n; s++) {
        c->start[s] = T;
        T += seqs[s].len;
    }
    c->start[n] = T;
    embed(c, seqs, n);
    const rr_model *m = c->m;
    for (int l = 0; l < m->cfg.n_layers; l++) layer_forward(c, &m->layers[l], n, T, l == m->cfg.n_layers - 1);
    head(c, n, logits);
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
        if (s->type_ids && (s->type_ids[t] < 0 || s->type_ids[t] >= cf->type_vocab_size))
            return rr_fail(RR_ERR_INVALID, "%s: token type id %d at position %d is outside [0, %d)", who,
                           s->type_ids[t], t, cf->type_vocab_size);
    }
    return RR_OK;
}

rr_status rr_model_check_seq(const rr_model *m, const rr_seq *s) {
    if (!m || !s) return rr_fail(RR_ERR_INVALID, "rr_model_check_seq: NULL argument");
    return rr_enc_check_seq(m, s, -1);
}

rr_status rr_score_ids(rr_ctx *c, const rr_seq *seqs, int n, float *logits) {
    if (!c || (n > 0 && (!seqs || !logits)) || n < 0) return rr_fail(RR_ERR_INVALID, "rr_score_ids: bad arguments");
    for (int i = 0; i < n; i++) {
        rr_status s = rr_enc_check_seq(c->m, &seqs[i], i);
        if (s) return s;
    }
    /* consecutive passes, each filled up to the token budget */
    int i = 0;
    while (i < n) {
        int j = i, T = 0;
        while (j < n && T + seqs[j].len <= c->max_tokens) T += seqs[j++].len;
        forward_pass(c, seqs + i, j - i, logits + i);
        i = j;
    }
    return RR_OK;
}

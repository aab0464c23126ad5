/*
 * decoder.c -- the Qwen3 / Qwen2 forward pass over a packed batch, up to the score of each
 * sequence's last token.
 *
 * n sequences are concatenated into T rows without padding; positions restart at 0 in each, and
 * attention is causal within each sequence only, so a sequence's score does not depend on the others:
 *
 *   x = embed_tokens[id]                                           x: [T, H]
 *   for each layer:
 *     a   = RMSNorm(x) ln1                                         a: [T, H]
 *     qkv = a Wqkv^T (+ b, Qwen2)                                  qkv: [T, (nh + 2 nkv) d] = Q | K | V
 *     q, k = RMSNorm per head (Qwen3), then RoPE(position)         in place, pairs (i, i + d/2)
 *     att = softmax(q k^T / sqrt(d), causal) v; head j reads KV head j / (nh / nkv)   att: [T, nh d]
 *     h   = x + att Wo^T                                           h: [T, H]
 *     x   = h + (silu(m Wg^T) * (m Wu^T)) Wd^T,  m = RMSNorm(h) ln2   ([rows, 2I] per FFN block)
 *   raw = head . RMSNorm(x[last]) final_norm                       one per sequence
 *
 * Only the last token is scored, so the last layer runs attention for each sequence's last row alone
 * (its keys and values still come from every row), then carries those n rows through Wo and the FFN.
 * RMSNorm statistics and the score's dot products are summed in double; the matrices run through the
 * packed kernels (fp32 exact, bf16 or int8 as the model was packed). The rotary angles follow the
 * models' fp32 recipe: inv_freq = fp32(1 / fp32(theta^(2i/d))), angle = fp32(p * inv_freq), whose cos
 * and sin are then taken exactly -- an angle computed in double would drift from the checkpoint's
 * behaviour by up to 5e-4 rad at position 8000. All buffers come from rr_dec_ctx_new.
 *
 * jina-reranker-v3 (listwise) reads the states of marker tokens anywhere in the sequence, so every
 * layer but the last runs every row; the last runs attention, Wo and the FFN for the marker rows
 * alone (gathered to the front of x; keys and values still from every row); then, at each of them:
 *
 *   h = RMSNorm(x[r]) final_norm                                   h: [H]
 *   e = P2 relu(P1 h)                                              [H] -> [H/2] -> [E], sums in double
 *
 * written into the sequence's emb rows (document markers in order, the query marker last).
 */
#include "decoder/decoder.h"

#include <math.h>

#define FF_ROWS 256 /* token rows per FFN step: bounds the [rows, 2I] gate|up state */
#define ROW_BLOCK 32 /* rows per element-wise work item */

struct rr_dec_ctx {
    const rr_model *m;
    rr_pool *pool;
    int max_tokens;
    float *x, *h, *a; /* [T, H] */
    float *qkv;       /* [T, (nh + 2 nkv) d] */
    float *att;       /* [T, nh d] */
    float *gu;        /* [FF_ROWS, 2I] */
    float *ff;        /* [FF_ROWS, I] */
    float *inv_freq;  /* [d/2] */
    float *cosb, *sinb; /* [T, d/2]: rotary tables of positions 0..longest sequence of the pass */
    void *raw;        /* one embedding row in the file's dtype */
    double *mid;      /* [H/2] jina-reranker-v3 projector hidden layer */
    int *start;       /* [T + 1] first row of each sequence; start[n] = T */
    int *pos;         /* [T] position of each row */
    int *mrow, *mstart; /* [T] jina-reranker-v3: the rows of marker tokens and their sequences' first rows */
    int n_mark;
    void *scratch;
};

static size_t qkv_width(const rr_config *c) { return (size_t)(c->n_heads + 2 * c->n_kv_heads) * c->head_dim; }

rr_status rr_dec_ctx_new(const rr_model *m, int T, rr_pool *pool, rr_dec_ctx **out) {
    const rr_config *c = &m->cfg;
    size_t H = (size_t)c->hidden, I = (size_t)c->intermediate, d = (size_t)c->head_dim, W = qkv_width(c);
    size_t ffr = (size_t)RR_MIN(T, FF_ROWS);
    rr_dec_ctx *x = rr_calloc(1, sizeof *x);
    if (!x) return rr_fail(RR_ERR_NOMEM, "out of memory");
    x->m = m;
    x->pool = pool;
    x->max_tokens = T;
    x->x = rr_aligned_alloc((size_t)T * H * 4);
    x->h = rr_aligned_alloc((size_t)T * H * 4);
    x->a = rr_aligned_alloc((size_t)T * H * 4);
    x->qkv = rr_aligned_alloc((size_t)T * W * 4);
    x->att = rr_aligned_alloc((size_t)T * c->n_heads * d * 4);
    x->gu = rr_aligned_alloc(ffr * 2 * I * 4);
    x->ff = rr_aligned_alloc(ffr * I * 4);
    x->inv_freq = rr_aligned_alloc(d / 2 * 4);
    x->cosb = rr_aligned_alloc((size_t)T * (d / 2) * 4);
    x->sinb = rr_aligned_alloc((size_t)T * (d / 2) * 4);
    x->raw = rr_aligned_alloc(H * 4);
    x->mid = rr_malloc((H / 2 + 1) * sizeof(double));
    x->start = rr_malloc(((size_t)T + 1) * sizeof *x->start);
    x->pos = rr_malloc((size_t)T * sizeof *x->pos);
    x->mrow = rr_malloc((size_t)T * sizeof *x->mrow);
    x->mstart = rr_malloc((size_t)T * sizeof *x->mstart);
    size_t sb = rr_attention_causal_scratch_bytes(rr_pool_size(pool), T, T, c->n_kv_heads, c->head_dim,
                                                  m->precision);
    for (int l = 0; l < c->n_layers; l++) {
        const rr_dec_layer *ly = &m->dec->layers[l];
        sb = RR_MAX(sb, rr_linear_scratch_bytes(ly->lin_qkv, T));
        sb = RR_MAX(sb, rr_linear_scratch_bytes(ly->lin_o, T));
        sb = RR_MAX(sb, rr_linear_scratch_bytes(ly->lin_gu, (int)ffr));
        sb = RR_MAX(sb, rr_linear_scratch_bytes(ly->lin_d, (int)ffr));
    }
    x->scratch = rr_aligned_alloc(sb);
    if (!x->x || !x->h || !x->a || !x->qkv || !x->att || !x->gu || !x->ff || !x->inv_freq || !x->cosb || !x->sinb ||
        !x->raw || !x->mid || !x->start || !x->pos || !x->mrow || !x->mstart || !x->scratch) {
        rr_dec_ctx_free(x);
        return rr_fail(RR_ERR_NOMEM, "out of memory allocating decoder scratch for %d tokens", T);
    }
    for (size_t i = 0; i < d / 2; i++) {
        float e = (float)(2 * i) / (float)d; /* fp32 exponent, then a correctly rounded power */
        float p = (float)pow(c->rope_theta, (double)e);
        x->inv_freq[i] = 1.0f / p;
    }
    *out = x;
    return RR_OK;
}

void rr_dec_ctx_free(rr_dec_ctx *c) {
    if (!c) return;
    rr_aligned_free(c->x);
    rr_aligned_free(c->h);
    rr_aligned_free(c->a);
    rr_aligned_free(c->qkv);
    rr_aligned_free(c->att);
    rr_aligned_free(c->gu);
    rr_aligned_free(c->ff);
    rr_aligned_free(c->inv_freq);
    rr_aligned_free(c->cosb);
    rr_aligned_free(c->sinb);
    rr_aligned_free(c->raw);
    rr_free(c->mid);
    rr_aligned_free(c->scratch);
    rr_free(c->start);
    rr_free(c->pos);
    rr_free(c->mrow);
    rr_free(c->mstart);
    rr_free(c);
}

/* ------------------------------------------------------------------ element-wise steps */

/* y = w * x / sqrt(mean(x^2) + eps) over n; the sum of squares in double. y may alias x. */
static void rms_norm(float *y, const float *x, const float *w, int n, float eps) {
    double sq = 0;
    for (int i = 0; i < n; i++) sq += (double)x[i] * x[i];
    float inv = (float)(1.0 / sqrt(sq / n + eps));
    for (int i = 0; i < n; i++) y[i] = (x[i] * inv) * w[i];
}

/* x[0..d) rotated by the angles of one position: (x_i, x_{i+d/2}) -> (x_i c - x_{i+d/2} s, x_{i+d/2} c + x_i s) */
static void rope(float *x, const float *cs, const float *sn, int d) {
    int h = d / 2;
    for (int i = 0; i < h; i++) {
        float a = x[i], b = x[i + h];
        x[i] = a * cs[i] - b * sn[i];
        x[i + h] = b * cs[i] + a * sn[i];
    }
}

typedef struct rows_job {
    rr_dec_ctx *c;
    const rr_dec_layer *ly;
    int rows;
    float *dst;
    const float *src, *w;
    int ld, n;
    int q_only_rows;   /* qk step: queries of each sequence's last row only (the last layer) */
} rows_job;

static void run_rows(rr_pool *pool, int rows, void (*fn)(void *, int, int), rows_job *j) {
    j->rows = rows;
    rr_pool_run(pool, (rows + ROW_BLOCK - 1) / ROW_BLOCK, fn, j);
}

static void norm_item(void *arg, int item, int tid) {
    rows_job *j = arg;
    float eps = j->c->m->cfg.eps;
    for (int r = item * ROW_BLOCK; r < RR_MIN(j->rows, (item + 1) * ROW_BLOCK); r++)
        rms_norm(j->dst + (size_t)r * j->ld, j->src + (size_t)r * j->ld, j->w, j->n, eps);
}

/* q/k RMSNorm per head (Qwen3) and rotary positions, in place on rows of qkv. */
static void qk_row(rr_dec_ctx *c, const rr_dec_layer *ly, int r, int do_q, int do_k) {
    const rr_config *cf = &c->m->cfg;
    int d = cf->head_dim, hd = d / 2;
    float *row = c->qkv + (size_t)r * qkv_width(cf);
    const float *cs = c->cosb + (size_t)c->pos[r] * hd, *sn = c->sinb + (size_t)c->pos[r] * hd;
    if (do_q)
        for (int j = 0; j < cf->n_heads; j++) {
            float *q = row + (size_t)j * d;
            if (ly->q_norm) rms_norm(q, q, ly->q_norm, d, cf->eps);
            rope(q, cs, sn, d);
        }
    if (do_k)
        for (int g = 0; g < cf->n_kv_heads; g++) {
            float *k = row + (size_t)(cf->n_heads + g) * d;
            if (ly->k_norm) rms_norm(k, k, ly->k_norm, d, cf->eps);
            rope(k, cs, sn, d);
        }
}

static void qk_item(void *arg, int item, int tid) {
    rows_job *j = arg;
    for (int r = item * ROW_BLOCK; r < RR_MIN(j->rows, (item + 1) * ROW_BLOCK); r++) {
        /* in the last layer only a sequence's last row (the next row starts a sequence) is a query */
        int is_last = r + 1 == j->rows || j->c->pos[r + 1] == 0;
        qk_row(j->c, j->ly, r, !j->q_only_rows || is_last, 1);
    }
}

/* gu [rows, 2I] = gate | up  ->  ff [rows, I] = silu(gate) * up */
static void swiglu_item(void *arg, int item, int tid) {
    rows_job *j = arg;
    int I = j->n;
    for (int r = item * ROW_BLOCK; r < RR_MIN(j->rows, (item + 1) * ROW_BLOCK); r++) {
        const float *g = j->src + (size_t)r * 2 * I, *u = g + I;
        float *y = j->dst + (size_t)r * I;
        for (int i = 0; i < I; i++) y[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
    }
}

/* ------------------------------------------------------------------ forward */

/* Embedding rows come from the weight file with pread (rr_st_copy; the file is not mapped once the
 * model is loaded): RR_ERR_IO, with the message set, when the file no longer holds them (truncated
 * or emptied under the running process). */
static rr_status embed(rr_dec_ctx *c, const rr_seq *seqs, int n) {
    const rr_model *m = c->m;
    int H = m->cfg.hidden;
    size_t rowbytes = (size_t)H * rr_dtype_size(m->word_emb.dtype);
    for (int s = 0; s < n; s++)
        for (int t = 0; t < seqs[s].len; t++) {
            int r = c->start[s] + t, id = seqs[s].ids[t];
            c->pos[r] = t;
            if (!rr_st_copy(m->word_t, (size_t)id * rowbytes, c->raw, rowbytes))
                return rr_fail(RR_ERR_IO, "%s: cannot read row %d of %s: the file was truncated or removed under the "
                               "running process (reload the model)", m->word_t->file, id, m->word_t->name);
            rr_mat raw = {c->raw, m->word_emb.dtype, 1, H};
            rr_mat_row_f32(&raw, 0, c->x + (size_t)r * H);
        }
    return RR_OK;
}

/* cos/sin of positions 0..maxlen-1 (angles as fp32 products, their cos/sin exact) */
static void rope_tables(rr_dec_ctx *c, int maxlen) {
    int hd = c->m->cfg.head_dim / 2;
    for (int p = 0; p < maxlen; p++)
        for (int i = 0; i < hd; i++) {
            float ang = (float)p * c->inv_freq[i];
            c->cosb[(size_t)p * hd + i] = (float)cos((double)ang);
            c->sinb[(size_t)p * hd + i] = (float)sin((double)ang);
        }
}

/* rows whose output the layer computes (attention queries, Wo, FFN): all, each sequence's last, or
 * jina-reranker-v3's marker rows (c->mrow) */
enum { ROWS_ALL = 0, ROWS_LAST = 1, ROWS_MARKERS = 2 };

static void layer_forward(rr_dec_ctx *c, const rr_dec_layer *ly, int n, int T, int last) {
    const rr_model *m = c->m;
    const rr_config *cf = &m->cfg;
    int H = cf->hidden, I = cf->intermediate, d = cf->head_dim, nh = cf->n_heads, nkv = cf->n_kv_heads;
    int W = (int)qkv_width(cf), A = nh * d;
    rows_job j = {.c = c, .ly = ly};
    /* a = RMSNorm(x) ln1; qkv = a Wqkv^T (+ b) for every row: keys and values of all rows are needed */
    j.dst = c->a, j.src = c->x, j.w = ly->ln1, j.ld = H, j.n = H;
    run_rows(c->pool, T, norm_item, &j);
    rr_linear_run(ly->lin_qkv, T, c->a, H, c->qkv, W, RR_KERN_EPI_NONE, NULL, 0, c->scratch, c->pool);
    j.q_only_rows = last == ROWS_LAST;
    run_rows(c->pool, T, qk_item, &j);
    float scale = 1.0f / sqrtf((float)d);
    const float *q = c->qkv, *k = c->qkv + A, *v = c->qkv + A + nkv * d;
    int R = T;
    if (last == ROWS_MARKERS) {
        /* only the marker rows are read after this layer: their attention (into att row i), and their
         * x rows gathered to the front (mrow increases, row i <= mrow[i]) */
        rr_attention_causal_rows(m->kern, q, k, v, W, c->mrow, c->mstart, c->n_mark, nh, nkv, d, scale, c->att, A,
                                 m->precision, c->scratch, c->pool);
        for (int i = 0; i < c->n_mark; i++)
            if (c->mrow[i] != i) memcpy(c->x + (size_t)i * H, c->x + (size_t)c->mrow[i] * H, (size_t)H * 4);
        R = c->n_mark;
        if (R == 0) return;
    } else if (last == ROWS_LAST) {
        /* only each sequence's last row is scored: attention for those rows (into att row s), and
         * their x rows gathered to the front (row s <= its source row, so nothing is overwritten
         * before it is read) */
        rr_attention_causal(m->kern, q, k, v, W, c->start, n, nh, nkv, d, scale, c->att, A, 1, m->precision,
                            c->scratch, c->pool);
        for (int s = 0; s < n; s++) {
            int src = c->start[s + 1] - 1;
            if (src != s) memcpy(c->x + (size_t)s * H, c->x + (size_t)src * H, (size_t)H * 4);
        }
        R = n;
    } else {
        rr_attention_causal(m->kern, q, k, v, W, c->start, n, nh, nkv, d, scale, c->att, A, 0, m->precision,
                            c->scratch, c->pool);
    }
    /* h = x + att Wo^T */
    rr_linear_run(ly->lin_o, R, c->att, A, c->h, H, RR_KERN_EPI_RESIDUAL, c->x, H, c->scratch, c->pool);
    /* x = h + SwiGLU(RMSNorm(h) ln2), FF_ROWS rows at a time */
    for (int r0 = 0; r0 < R; r0 += FF_ROWS) {
        int rows = RR_MIN(FF_ROWS, R - r0);
        const float *h = c->h + (size_t)r0 * H;
        float *a = c->a + (size_t)r0 * H;
        j.dst = a, j.src = h, j.w = ly->ln2, j.ld = H, j.n = H;
        run_rows(c->pool, rows, norm_item, &j);
        rr_linear_run(ly->lin_gu, rows, a, H, c->gu, 2 * I, RR_KERN_EPI_NONE, NULL, 0, c->scratch, c->pool);
        j.dst = c->ff, j.src = c->gu, j.n = I;
        run_rows(c->pool, rows, swiglu_item, &j);
        rr_linear_run(ly->lin_d, rows, c->ff, I, c->x + (size_t)r0 * H, H, RR_KERN_EPI_RESIDUAL, h, H, c->scratch,
                      c->pool);
    }
}

/* e[E] = P2 relu(P1 h) for one final-normed row h[H] */
static void project(rr_dec_ctx *c, const float *h, float *e) {
    const rr_dec *dm = c->m->dec;
    int H = c->m->cfg.hidden, P = dm->proj_mid;
    for (int i = 0; i < P; i++) {
        const float *w = dm->proj1 + (size_t)i * H;
        double acc = 0;
        for (int k = 0; k < H; k++) acc += (double)w[k] * h[k];
        c->mid[i] = acc > 0 ? (double)(float)acc : 0; /* the reference's intermediate is an fp32 tensor */
    }
    for (int o = 0; o < dm->embed_size; o++) {
        const float *w = dm->proj2 + (size_t)o * P;
        double acc = 0;
        for (int k = 0; k < P; k++) acc += (double)w[k] * c->mid[k];
        e[o] = (float)acc;
    }
}

/* jina-reranker-v3: every row ran every layer; project the rows of marker tokens. raw[s] = number of
 * document markers, or -1 without exactly one query marker. */
static void markers_forward(rr_dec_ctx *c, const rr_seq *seqs, int n, float *raw) {
    const rr_model *m = c->m;
    const rr_dec *dm = m->dec;
    int H = m->cfg.hidden, E = dm->embed_size;
    float *h = c->a; /* one row of scratch: the layers are done */
    int k = 0;       /* x row k holds the k-th marker row (the last layer ran those only) */
    for (int s = 0; s < n; s++) {
        const rr_seq *q = &seqs[s];
        int docs = 0, queries = 0;
        for (int t = 0; t < q->len; t++) {
            int32_t id = q->ids[t];
            if (id != dm->doc_marker && id != dm->query_marker) continue;
            const float *xr = c->x + (size_t)k++ * H;
            int row;
            if (id == dm->query_marker) row = queries++ ? -1 : q->n_emb - 1;
            else row = docs++ < q->n_emb - 1 ? docs - 1 : -1;
            if (row < 0 || !q->emb) continue;
            rms_norm(h, xr, dm->final_norm, H, m->cfg.eps);
            project(c, h, q->emb + (size_t)row * E);
        }
        raw[s] = queries == 1 ? (float)docs : -1.0f;
    }
}

rr_status rr_dec_forward(rr_dec_ctx *c, const rr_seq *seqs, int n, float *raw) {
    const rr_model *m = c->m;
    const rr_config *cf = &m->cfg;
    const rr_dec *dm = m->dec;
    int T = 0, maxlen = 0, H = cf->hidden;
    for (int s = 0; s < n; s++) {
        c->start[s] = T;
        T += seqs[s].len;
        maxlen = RR_MAX(maxlen, seqs[s].len);
    }
    c->start[n] = T;
    rr_status st = embed(c, seqs, n);
    if (st) return st;
    rope_tables(c, maxlen);
    if (cf->family == RR_FAMILY_JINA_V3) {
        c->n_mark = 0;
        for (int s = 0; s < n; s++)
            for (int t = 0; t < seqs[s].len; t++)
                if (seqs[s].ids[t] == dm->doc_marker || seqs[s].ids[t] == dm->query_marker) {
                    c->mrow[c->n_mark] = c->start[s] + t;
                    c->mstart[c->n_mark++] = c->start[s];
                }
        for (int l = 0; l < cf->n_layers; l++)
            layer_forward(c, &dm->layers[l], n, T, l == cf->n_layers - 1 ? ROWS_MARKERS : ROWS_ALL);
        markers_forward(c, seqs, n, raw);
        return RR_OK;
    }
    for (int l = 0; l < cf->n_layers; l++)
        layer_forward(c, &dm->layers[l], n, T, l == cf->n_layers - 1 ? ROWS_LAST : ROWS_ALL);
    /* row s of x is sequence s's last token now */
    for (int s = 0; s < n; s++) {
        float *h = c->a; /* one row of scratch */
        rms_norm(h, c->x + (size_t)s * H, dm->final_norm, H, cf->eps);
        double l0 = 0, l1 = 0;
        for (int i = 0; i < H; i++) l0 += (double)dm->head[i] * h[i];
        if (dm->n_head == 2)
            for (int i = 0; i < H; i++) l1 += (double)dm->head[H + i] * h[i];
        raw[s] = (float)(l0 - l1);
    }
    return RR_OK;
}

/*
 * pack.c -- the load-time step that turns a model's mapped matrices into the kernels' packed
 * layout: every layer's Q|K|V, output, FFN up and FFN down become rr_linear objects for the kernel
 * table and precision chosen at load (the head stays fp32), layers packed in parallel on a
 * temporary pool; afterwards the pages of the mapped matrices are released. The forward pass
 * (src/encoder) reads only the packed copies.
 */
#include "model/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* Packs the row-stack of n_mats matrices (same cols, same dtype) with `bias` into one linear
 * layer, straight from the file's dtype. Matrices already adjacent in memory (jina's Q|K|V views of
 * Wqkv, or a single matrix) are packed in place; others are first copied side by side into w (the
 * caller's buffer, large enough for the stack), so the load never holds an fp32 copy of a matrix. */
static rr_status pack_mats(const rr_kern_table *k, rr_precision p, const rr_mat *const *mats, int n_mats,
                           const float *bias, void *w, rr_linear **out) {
    int rows = 0, cols = mats[0]->cols;
    rr_dtype dt = mats[0]->dtype;
    size_t es = rr_dtype_size(dt);
    const uint8_t *first = mats[0]->data, *next = first;
    int adjacent = 1;
    for (int i = 0; i < n_mats; i++) {
        if (mats[i]->dtype != dt || mats[i]->cols != cols)
            return rr_fail(RR_ERR_UNSUPPORTED, "the query, key and value weights differ in dtype or width");
        adjacent &= (const uint8_t *)mats[i]->data == next;
        next = (const uint8_t *)mats[i]->data + (size_t)mats[i]->rows * cols * es;
        rows += mats[i]->rows;
    }
    const void *src = first;
    if (!adjacent) {
        uint8_t *dst = w;
        for (int i = 0; i < n_mats; i++) {
            size_t n = (size_t)mats[i]->rows * cols * es;
            memcpy(dst, mats[i]->data, n);
            dst += n;
        }
        src = w;
    }
    rr_kern_dtype kd = dt == RR_DTYPE_F32 ? RR_KERN_DTYPE_F32 : dt == RR_DTYPE_F16 ? RR_KERN_DTYPE_F16 : RR_KERN_DTYPE_BF16;
    return rr_linear_pack(k, p, src, kd, rows, cols, bias, out);
}

/* The packed copy replaces the mapped matrix: drop its pages from memory. Safe because rr_mat
 * views point into read-only MAP_PRIVATE file mappings (safetensors.c): dropped pages would be read
 * back from the file on access (which no longer happens). On anonymous memory this would zero the
 * data, so keep it to mapped weights. Only whole pages inside the matrix are released. */
static void release_mat(const rr_mat *mt) {
    long pg = sysconf(_SC_PAGESIZE);
    if (pg <= 0 || !mt->data) return;
    uintptr_t b = (uintptr_t)mt->data, e = b + (size_t)mt->rows * mt->cols * rr_dtype_size(mt->dtype);
    b = (b + (uintptr_t)pg - 1) & ~((uintptr_t)pg - 1);
    e &= ~((uintptr_t)pg - 1);
    if (e > b) madvise((void *)b, e - b, MADV_DONTNEED);
}

/* Packing is independent per layer: one work item per layer, each thread with its own stacking
 * buffer. A failing item keeps its message, since rr_errmsg() is per thread. */
typedef struct pack_job {
    rr_model *m;
    const rr_kern_table *k;
    rr_precision p;
    void **bufs;       /* [threads] buffers for stacking separate Q, K, V */
    rr_status *st;     /* [n_layers] */
    char (*msg)[256];  /* [n_layers] */
    size_t *mapped, *packed; /* [n_layers] bytes before and after */
} pack_job;

static void pack_layer(void *arg, int l, int tid) {
    pack_job *j = arg;
    rr_layer *ly = &j->m->layers[l];
    void *w = j->bufs[tid];
    const rr_mat *qkv[3] = {&ly->wq, &ly->wk, &ly->wv};
    const rr_mat *o = &ly->wo, *w1 = &ly->w1, *w2 = &ly->w2;
    rr_status s = pack_mats(j->k, j->p, qkv, 3, ly->bqkv, w, &ly->lin_qkv);
    if (!s) s = pack_mats(j->k, j->p, &o, 1, ly->bo, w, &ly->lin_o);
    if (!s) s = pack_mats(j->k, j->p, &w1, 1, ly->b1, w, &ly->lin_1);
    if (!s) s = pack_mats(j->k, j->p, &w2, 1, ly->b2, w, &ly->lin_2);
    j->st[l] = s;
    if (s) {
        snprintf(j->msg[l], sizeof j->msg[l], "layer %d: %s", l, rr_errmsg());
        return;
    }
    const rr_mat *all[6] = {&ly->wq, &ly->wk, &ly->wv, &ly->wo, &ly->w1, &ly->w2};
    for (int i = 0; i < 6; i++) {
        j->mapped[l] += (size_t)all[i]->rows * all[i]->cols * rr_dtype_size(all[i]->dtype);
        release_mat(all[i]);
    }
    j->packed[l] = rr_linear_weight_bytes(ly->lin_qkv) + rr_linear_weight_bytes(ly->lin_o) +
                   rr_linear_weight_bytes(ly->lin_1) + rr_linear_weight_bytes(ly->lin_2);
}

rr_status rr_model_pack(rr_model *m, rr_precision p) {
    const rr_kern_table *k = rr_kern_get();
    if (p == RR_PRECISION_AUTO) p = rr_kern_auto_precision(k);
    m->kern = k;
    m->precision = p;
    const rr_config *cf = &m->cfg;
    int L = cf->n_layers;
    size_t stack = (size_t)3 * cf->hidden * cf->hidden * rr_dtype_size(m->layers[0].wq.dtype);
    rr_pool *pool = NULL; /* a temporary pool for the load */
    rr_status ps = rr_pool_new(RR_MIN(m->n_threads > 0 ? m->n_threads : rr_pool_cpu_count(), L), &pool);
    if (ps) return ps;
    int nt = rr_pool_size(pool);
    pack_job j = {m, k, p, rr_calloc((size_t)nt, sizeof(void *)), rr_calloc((size_t)L, sizeof(rr_status)),
                  rr_calloc((size_t)L, 256), rr_calloc((size_t)L, sizeof(size_t)), rr_calloc((size_t)L, sizeof(size_t))};
    rr_status s = RR_OK;
    if (!j.bufs || !j.st || !j.msg || !j.mapped || !j.packed) s = rr_fail(RR_ERR_NOMEM, "out of memory packing weights");
    for (int t = 0; t < nt && !s; t++)
        if (!(j.bufs[t] = rr_malloc(stack))) s = rr_fail(RR_ERR_NOMEM, "out of memory packing weights");
    if (!s) {
        rr_pool_run(pool, L, pack_layer, &j);
        for (int l = 0; l < L && !s; l++)
            if (j.st[l]) s = rr_fail(j.st[l], "%s", j.msg[l]);
    }
    const rr_mat *hd = &m->head_dense, *ho = &m->head_out;
    if (!s && hd->data) /* no dense layer in heads that read the pooled row directly */
        s = pack_mats(k, RR_PRECISION_FP32, &hd, 1, m->head_dense_b, j.bufs[0], &m->lin_head);
    if (!s) s = pack_mats(k, RR_PRECISION_FP32, &ho, 1, &m->head_out_b, j.bufs[0], &m->lin_out);
    if (!s) {
        size_t mapped = 0, packed = 0;
        for (int l = 0; l < L; l++) mapped += j.mapped[l], packed += j.packed[l];
        if (m->weight_bytes >= mapped) m->weight_bytes = m->weight_bytes - mapped + packed;
    }
    for (int t = 0; j.bufs && t < nt; t++) rr_free(j.bufs[t]);
    rr_free(j.bufs);
    rr_free(j.st);
    rr_free(j.msg);
    rr_free(j.mapped);
    rr_free(j.packed);
    rr_pool_free(pool);
    return s;
}

void rr_model_unpack(rr_model *m) {
    if (m->layers)
        for (int l = 0; l < m->cfg.n_layers; l++) {
            rr_layer *ly = &m->layers[l];
            rr_linear_free(ly->lin_qkv);
            rr_linear_free(ly->lin_o);
            rr_linear_free(ly->lin_1);
            rr_linear_free(ly->lin_2);
            ly->lin_qkv = ly->lin_o = ly->lin_1 = ly->lin_2 = NULL;
        }
    rr_linear_free(m->lin_head);
    rr_linear_free(m->lin_out);
    m->lin_head = m->lin_out = NULL;
}

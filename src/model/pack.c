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

rr_status rr_pack_stack(const rr_kern_table *k, rr_precision p, const rr_mat *const *mats, int n_mats,
                        const float *bias, void *w, rr_linear **out) {
    int rows = 0, cols = mats[0]->cols;
    rr_dtype dt = mats[0]->dtype;
    size_t es = rr_dtype_size(dt);
    const uint8_t *first = mats[0]->data, *next = first;
    int adjacent = 1;
    for (int i = 0; i < n_mats; i++) {
        if (mats[i]->dtype != dt || mats[i]->cols != cols)
            return rr_fail(RR_ERR_UNSUPPORTED, "the matrices stacked into one linear (query, key and value, or gate "
                           "and up) differ in dtype or width");
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
void rr_mat_release(const rr_mat *mt) {
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
    rr_pack_layer_fn one;
    void **bufs;       /* [threads] stacking buffers */
    rr_status *st;     /* [n_layers] */
    char (*msg)[256];  /* [n_layers] */
    size_t *mapped, *packed; /* [n_layers] bytes before and after */
} pack_job;

static void pack_item(void *arg, int l, int tid) {
    pack_job *j = arg;
    j->st[l] = j->one(j->m, l, j->bufs[tid], &j->mapped[l], &j->packed[l]);
    if (j->st[l]) snprintf(j->msg[l], sizeof j->msg[l], "layer %d: %s", l, rr_errmsg());
}

rr_status rr_pack_layers(rr_model *m, rr_precision p, size_t stack_bytes, rr_pack_layer_fn one) {
    m->kern = rr_kern_get();
    m->precision = p == RR_PRECISION_AUTO ? rr_kern_auto_precision(m->kern) : p;
    int L = m->cfg.n_layers;
    rr_pool *pool = NULL; /* a temporary pool for the load */
    rr_status s = rr_pool_new(RR_MIN(m->n_threads > 0 ? m->n_threads : rr_pool_cpu_count(), L), &pool);
    if (s) return s;
    int nt = rr_pool_size(pool);
    pack_job j = {m, one, rr_calloc((size_t)nt, sizeof(void *)), rr_calloc((size_t)L, sizeof(rr_status)),
                  rr_calloc((size_t)L, 256), rr_calloc((size_t)L, sizeof(size_t)), rr_calloc((size_t)L, sizeof(size_t))};
    if (!j.bufs || !j.st || !j.msg || !j.mapped || !j.packed) s = rr_fail(RR_ERR_NOMEM, "out of memory packing weights");
    for (int t = 0; t < nt && !s; t++)
        if (!(j.bufs[t] = rr_malloc(stack_bytes))) s = rr_fail(RR_ERR_NOMEM, "out of memory packing weights");
    if (!s) {
        rr_pool_run(pool, L, pack_item, &j);
        for (int l = 0; l < L && !s; l++)
            if (j.st[l]) s = rr_fail(j.st[l], "%s", j.msg[l]);
    }
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

/* An encoder layer: Q|K|V (adjacent views of a fused matrix are packed in place), output, FFN up
 * and down. */
static rr_status pack_layer(rr_model *m, int l, void *w, size_t *mapped, size_t *packed) {
    rr_layer *ly = &m->layers[l];
    const rr_kern_table *k = m->kern;
    rr_precision p = m->precision;
    const rr_mat *qkv[3] = {&ly->wq, &ly->wk, &ly->wv};
    const rr_mat *o = &ly->wo, *w1 = &ly->w1, *w2 = &ly->w2;
    rr_status s = rr_pack_stack(k, p, qkv, 3, ly->bqkv, w, &ly->lin_qkv);
    if (!s) s = rr_pack_stack(k, p, &o, 1, ly->bo, w, &ly->lin_o);
    if (!s) s = rr_pack_stack(k, p, &w1, 1, ly->b1, w, &ly->lin_1);
    if (!s) s = rr_pack_stack(k, p, &w2, 1, ly->b2, w, &ly->lin_2);
    if (s) return s;
    const rr_mat *all[6] = {&ly->wq, &ly->wk, &ly->wv, &ly->wo, &ly->w1, &ly->w2};
    for (int i = 0; i < 6; i++) {
        *mapped += (size_t)all[i]->rows * all[i]->cols * rr_dtype_size(all[i]->dtype);
        rr_mat_release(all[i]);
    }
    *packed = rr_linear_weight_bytes(ly->lin_qkv) + rr_linear_weight_bytes(ly->lin_o) +
              rr_linear_weight_bytes(ly->lin_1) + rr_linear_weight_bytes(ly->lin_2);
    return RR_OK;
}

rr_status rr_model_pack(rr_model *m, rr_precision p) {
    const rr_config *cf = &m->cfg;
    size_t stack = (size_t)3 * cf->hidden * cf->hidden * rr_dtype_size(m->layers[0].wq.dtype);
    rr_status s = rr_pack_layers(m, p, stack, pack_layer);
    /* the head stays fp32 (one row per sequence: exactness is free); single matrices need no buffer */
    const rr_mat *hd = &m->head_dense, *ho = &m->head_out;
    if (!s && hd->data) /* no dense layer in heads that read the pooled row directly */
        s = rr_pack_stack(m->kern, RR_PRECISION_FP32, &hd, 1, m->head_dense_b, NULL, &m->lin_head);
    if (!s) s = rr_pack_stack(m->kern, RR_PRECISION_FP32, &ho, 1, &m->head_out_b, NULL, &m->lin_out);
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

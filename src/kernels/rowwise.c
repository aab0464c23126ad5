/*
 * rowwise.c -- the drivers of the row-wise and element-wise kernels the encoder runs between matrix
 * products: LayerNorm (with an optional residual) split into items of whole rows for the pool, and
 * GELU and tanh over a flat array, the gated activation of GLU feed-forwards and rotary positions (in
 * place on Q and K), each handed to the chosen table.
 */
#include "kernels/kern_int.h"

#include "core/core.h"

typedef struct {
    const rr_kern_table *k;
    int rows, n, rows_per;
    const float *x, *r, *g, *b;
    int ldx, ldr, ldy;
    float eps;
    float *y;
} ln_job;

static void ln_item(void *arg, int item, int tid) {
    ln_job *j = arg;
    int r0 = item * j->rows_per, r1 = RR_MIN(j->rows, r0 + j->rows_per);
    for (int i = r0; i < r1; i++)
        j->k->layernorm(j->x + (size_t)i * j->ldx, j->r ? j->r + (size_t)i * j->ldr : NULL, j->g, j->b, j->eps,
                        j->y + (size_t)i * j->ldy, j->n);
}

void rr_layernorm(const rr_kern_table *k, int rows, int n, const float *x, int ldx, const float *r,
                  int ldr, const float *g, const float *b, float eps, float *y, int ldy, rr_pool *pool) {
    if (rows <= 0) return;
    if (!k) k = rr_kern_get();
    ln_job j = {k, rows, n, 0, x, r, g, b, ldx, ldr, ldy, eps, y};
    int nt = rr_pool_size(pool);
    /* about 64 KiB of input per item, at least 4 items per thread when there are enough rows */
    int per = RR_MAX(1, (16384 + n - 1) / RR_MAX(n, 1));
    per = RR_MIN(per, RR_MAX(1, rows / (4 * nt)));
    j.rows_per = per;
    rr_pool_run(pool, (rows + per - 1) / per, ln_item, &j);
}

void rr_gelu(const rr_kern_table *k, float *x, size_t n) {
    if (!k) k = rr_kern_get();
    k->gelu(x, n);
}

void rr_tanh(const rr_kern_table *k, float *x, size_t n) {
    if (!k) k = rr_kern_get();
    k->tanh_(x, n);
}

/* ------------------------------------------------------------------ GLU and rotary */

typedef struct {
    const rr_kern_table *k;
    int rows, n, rows_per;
    const float *x;
    int ldx, a_off, b_off;
    float *y;
    int ldy, act;
} glu_job;

static void glu_item(void *arg, int item, int tid) {
    glu_job *j = arg;
    int r0 = item * j->rows_per, r1 = RR_MIN(j->rows, r0 + j->rows_per);
    for (int i = r0; i < r1; i++) {
        const float *x = j->x + (size_t)i * j->ldx;
        j->k->glu(x + j->a_off, x + j->b_off, j->y + (size_t)i * j->ldy, (size_t)j->n, j->act);
    }
}

void rr_glu(const rr_kern_table *k, int rows, int n, const float *x, int ldx, int a_off, int b_off, float *y,
            int ldy, rr_kern_act act, rr_pool *pool) {
    if (rows <= 0) return;
    if (!k) k = rr_kern_get();
    glu_job j = {k, rows, n, 1, x, ldx, a_off, b_off, y, ldy, (int)act};
    int nt = rr_pool_size(pool);
    j.rows_per = RR_MAX(1, rows / (4 * nt));
    rr_pool_run(pool, (rows + j.rows_per - 1) / j.rows_per, glu_item, &j);
}

typedef struct {
    const rr_kern_table *k;
    int rows, rows_per;
    float *x;
    int ldx, n_heads, d;
    const int *pos;
    const float *table;
} rope_job;

static void rope_item(void *arg, int item, int tid) {
    rope_job *j = arg;
    int r0 = item * j->rows_per, r1 = RR_MIN(j->rows, r0 + j->rows_per);
    for (int i = r0; i < r1; i++)
        j->k->rope(j->x + (size_t)i * j->ldx, j->n_heads, j->d, j->table + (size_t)j->pos[i] * j->d);
}

void rr_rope(const rr_kern_table *k, int rows, float *x, int ldx, int n_heads, int d, const int *pos,
             const float *table, rr_pool *pool) {
    if (rows <= 0) return;
    if (!k) k = rr_kern_get();
    RR_ASSERT(d % 2 == 0);
    rope_job j = {k, rows, 1, x, ldx, n_heads, d, pos, table};
    int nt = rr_pool_size(pool);
    j.rows_per = RR_MAX(1, rows / (4 * nt));
    rr_pool_run(pool, (rows + j.rows_per - 1) / j.rows_per, rope_item, &j);
}

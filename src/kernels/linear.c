/*
 * linear.c -- packed linear layers: weight packing at load and the threaded driver around the
 * per-ISA micro-kernels (layouts in kern_int.h).
 *
 * rr_linear_run splits Y into (row block x column block) work items; each item walks its panels
 * and, inside a panel, its rows MR at a time, so one packed panel is reused from cache by all rows
 * of the block and the epilogue runs on a tile that is still in registers or L1. BF16/INT8 rows of
 * X are first converted or quantized into the caller's scratch: by the first item of each row block
 * when there are at least as many row blocks as threads, else by a parallel pass before. On tables
 * without bf16 products (widen_w16) an item widens each bf16 panel chunk to fp32 once, on its stack,
 * and runs the fp32 kernel on the copy.
 */
#include "kernels/kern_int.h"

#include "core/core.h"

#include <math.h>
#include <stdatomic.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <sys/mman.h>

struct rr_linear {
    const rr_kern_table *k;
    rr_precision prec;
    rr_kern_layout lay;
    int n_out, n_in;
    int kp, n_panels;
    size_t panel_bytes;
    void *w;         /* n_panels * panel_bytes, 64-byte aligned */
    float *bias;     /* [n_panels * nr], zero-padded */
    int group;       /* INT8: k per scale group (rr_kern_int8_group(n_in)) */
    int n_sg;        /* INT8: scale groups along K (kp * kg / group) */
    float *wscale;   /* INT8: [n_panels][n_sg][nr] scale of each channel in each group (kern_int.h) */
    float *wcorr;    /* INT8: [n_panels * nr] C_j = sum_s scale(s, j) sum_{k in s} w8_kj */
    int w16;         /* FP32 with the weights stored as bf16 (all exact bf16 values) */
};

static size_t elem_size(rr_precision p) { return p == RR_PRECISION_FP32 ? 4 : p == RR_PRECISION_BF16 ? 2 : 1; }
/* bytes per element of a prepared activation row (BF16 / INT8; FP32 rows are the input's) */
static size_t a_elem_size(const rr_linear *l) {
    if (l->prec == RR_PRECISION_BF16 && l->k->bf16_wide) return 4;
    return elem_size(l->prec);
}

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

/* 16-byte vectors (SSE2 on any x86-64, NEON elsewhere): this file is built without ISA flags. */
typedef float pf4 __attribute__((vector_size(16)));
typedef int32_t pi4 __attribute__((vector_size(16)));
typedef uint32_t pu4 __attribute__((vector_size(16)));
typedef int8_t pb4 __attribute__((vector_size(4)));

/* The first n / 8 * 8 of n bf16 values at b (any alignment) to fp32: the bits shifted into the high
 * half of each word, eight at a time. Returns how many it converted. */
static size_t widen_bf16(const void *b, size_t n, float *out) {
    typedef uint16_t ph8 __attribute__((vector_size(16)));
    typedef uint32_t pu8 __attribute__((vector_size(32)));
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        ph8 h;
        memcpy(&h, (const uint8_t *)b + 2 * i, sizeof h);
        pu8 u = __builtin_convertvector(h, pu8) << 16;
        memcpy(out + i, &u, sizeof u);
    }
    return i;
}

/* Row r of the source weight as fp32 (unaligned source: memcpy). bf16 is a 16-bit shift
 * (widen_bf16), f16 and the tail one value at a time. */
static void load_row(const void *w, rr_kern_dtype dt, int n_in, int r, float *out) {
    const uint8_t *base = (const uint8_t *)w;
    if (dt == RR_KERN_DTYPE_F32) {
        memcpy(out, base + (size_t)r * n_in * 4, (size_t)n_in * 4);
        return;
    }
    const uint8_t *src = base + (size_t)r * n_in * 2;
    int k = dt == RR_KERN_DTYPE_BF16 ? (int)widen_bf16(src, (size_t)n_in, out) : 0;
    for (; k < n_in; k++) {
        uint16_t h;
        memcpy(&h, src + (size_t)k * 2, 2);
        out[k] = dt == RR_KERN_DTYPE_BF16 ? rr_bf16_to_f32(h) : rr_f16_to_f32(h);
    }
}

/* Asks for transparent huge pages on a large buffer before its first touch: packing a model
 * otherwise spends much of its time in page faults (one per 4 KiB, costly under a hypervisor). */
static void big_pages(void *p, size_t n) {
#ifdef MADV_HUGEPAGE
    const uintptr_t huge = (uintptr_t)2 << 20;
    uintptr_t b = ((uintptr_t)p + huge - 1) & ~(huge - 1), e = ((uintptr_t)p + n) & ~(huge - 1);
    if (e > b) madvise((void *)b, e - b, MADV_HUGEPAGE);
#else
    (void)p, (void)n;
#endif
}

/* True when every float of w (unaligned) is exactly a bf16 value (low 16 bits zero). */
static int all_bf16(const void *w, size_t n) {
    const uint8_t *b = w;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, b + 4 * i, 4);
        if (u & 0xffffu) return 0;
    }
    return 1;
}

/* Packing step 1: the layout for precision p: K groups, panels, scale groups, whether fp32 weights
 * are kept as bf16. */
static void pack_layout(rr_linear *l, const void *w, rr_kern_dtype wdtype) {
    const int nr = l->lay.nr, kg = l->lay.kg, n_in = l->n_in;
    RR_ASSERT(l->prec != RR_PRECISION_FP32 || kg == 1); /* write_panel's fp32 loop assumes it */
    l->kp = (n_in + kg - 1) / kg;
    if (l->prec == RR_PRECISION_INT8) {
        /* K padded to whole scale groups, so every kernel runs whole groups (zeros cost nothing
         * to the sums: the padded weights are 0) */
        l->group = rr_kern_int8_group(n_in);
        RR_ASSERT(l->group % kg == 0);
        l->n_sg = (n_in + l->group - 1) / l->group;
        l->kp = l->n_sg * (l->group / kg);
    }
    l->n_panels = (l->n_out + nr - 1) / nr;
    /* fp32 weights that are all exact bf16 values (a bf16 checkpoint) are stored as bf16: half the
     * memory, the same products */
    l->w16 = l->prec == RR_PRECISION_FP32 &&
             (wdtype == RR_KERN_DTYPE_BF16 || (wdtype == RR_KERN_DTYPE_F32 && all_bf16(w, (size_t)l->n_out * n_in)));
    l->panel_bytes = (size_t)l->kp * nr * kg * (l->w16 ? 2 : elem_size(l->prec));
}

/* Packing step 2: the packed weights (in huge pages), the padded bias, and for INT8 the scales and
 * the per-column corrections. */
static bool pack_alloc(rr_linear *l, const float *bias) {
    size_t ncols = (size_t)l->n_panels * l->lay.nr;
    l->w = rr_aligned_alloc(l->panel_bytes * l->n_panels);
    l->bias = rr_aligned_alloc(ncols * sizeof(float));
    if (!l->w || !l->bias) return false;
    big_pages(l->w, l->panel_bytes * l->n_panels);
    for (size_t j = 0; j < ncols; j++) l->bias[j] = bias && j < (size_t)l->n_out ? bias[j] : 0.f;
    if (l->prec == RR_PRECISION_INT8) {
        size_t nsc = (size_t)l->n_panels * l->n_sg * l->lay.nr;
        l->wscale = rr_aligned_alloc(nsc * sizeof(float));
        l->wcorr = rr_aligned_alloc(ncols * sizeof(float));
        if (!l->wscale || !l->wcorr) return false;
        for (size_t j = 0; j < nsc; j++) l->wscale[j] = 0;
        for (size_t j = 0; j < ncols; j++) l->wcorr[j] = 0;
    }
    return true;
}

static pi4 pvsel(pi4 m, pi4 a, pi4 b) { return (a & m) | (b & ~m); }

/* Packing step 3 (INT8): quantizes row r (output channel n, row j of panel pn) to integers in
 * [-wmax, wmax] in q (rr_kern_int8_wmax), one symmetric scale per group of l->group
 * inputs (an outlier weight costs the resolution of its group only, not of the whole row), recording
 * the scales and the row's correction sum(scale * q). Four at a time; the same values as the scalar
 * tail. */
static rr_status quantize_row_int8(rr_linear *l, const float *r, int8_t *q, int n, int pn, int j) {
    const int n_in = l->n_in, nr = l->lay.nr, wmax = rr_kern_int8_wmax(l->k);
    const float fmax = (float)wmax;
    /* finite: exponent bits not all ones (a reduction first; the error path finds the index) */
    pi4 inf4 = {0};
    int kk = 0;
    for (; kk + 4 <= n_in; kk += 4) {
        pi4 b;
        memcpy(&b, r + kk, 16);
        inf4 |= (b & 0x7f800000) == 0x7f800000;
    }
    int bad = inf4[0] | inf4[1] | inf4[2] | inf4[3];
    for (; kk < n_in; kk++) bad |= !isfinite(r[kk]);
    if (bad)
        for (kk = 0; kk < n_in; kk++)
            if (!isfinite(r[kk])) return rr_fail(RR_ERR_FORMAT, "linear: weight [%d, %d] is not finite", n, kk);
    double corr = 0;
    for (int s = 0; s < l->n_sg; s++) {
        int k0 = s * l->group, k1 = RR_MIN(n_in, k0 + l->group);
        /* max |w|: on finite values the bit patterns of |w| order as the values do */
        pi4 m4 = {0};
        for (kk = k0; kk + 4 <= k1; kk += 4) {
            pi4 b;
            memcpy(&b, r + kk, 16);
            b &= 0x7fffffff;
            m4 = pvsel(b > m4, b, m4);
        }
        int32_t mb = 0;
        for (int e = 0; e < 4; e++) mb = m4[e] > mb ? m4[e] : mb;
        float amax;
        memcpy(&amax, &mb, 4);
        for (; kk < k1; kk++) { /* finite (checked above): a comparison, not a libm fmaxf call */
            float a = fabsf(r[kk]);
            amax = a > amax ? a : amax;
        }
        float sc = amax > 0 ? amax / fmax : 1.f, inv = 1.f / sc;
        pi4 sum4 = {0};
        for (kk = k0; kk + 4 <= k1; kk += 4) {
            pf4 v;
            memcpy(&v, r + kk, 16);
            v = (v * inv + 12582912.f) - 12582912.f;
            pi4 vi = __builtin_convertvector(v, pi4); /* exact: v is an integer */
            vi = pvsel(vi > wmax, (pi4){0} + wmax, vi);
            vi = pvsel(vi < -wmax, (pi4){0} - wmax, vi);
            sum4 += vi;
#ifdef __SSE2__
            /* |vi| <= wmax <= 127: the saturating packs are the plain narrowing (which GCC does byte by byte) */
            __m128i b16 = _mm_packs_epi32((__m128i)vi, (__m128i)vi);
            int32_t b = _mm_cvtsi128_si32(_mm_packs_epi16(b16, b16));
#else
            pb4 b = __builtin_convertvector(vi, pb4);
#endif
            memcpy(q + kk, &b, 4);
        }
        int32_t sum = sum4[0] + sum4[1] + sum4[2] + sum4[3];
        for (; kk < k1; kk++) {
            /* round half to even (as lrintf) with the 1.5 * 2^23 trick: |r * inv| <= wmax */
            float v = (r[kk] * inv + 12582912.f) - 12582912.f;
            v = v > fmax ? fmax : v < -fmax ? -fmax : v;
            q[kk] = (int8_t)v;
            sum += (int32_t)v;
        }
        l->wscale[((size_t)pn * l->n_sg + s) * nr + j] = sc;
        corr += (double)sc * sum;
    }
    l->wcorr[n] = (float)corr;
    return RR_OK;
}

/* Packing step 3 (BF16, and FP32 weights kept as bf16): row to bf16, nearest even, NaN kept quiet,
 * as rr_f32_to_bf16, four at a time: the rounded bf16 is formed in the high half of each 32-bit
 * word, then an arithmetic shift and a signed pack (exact on 16-bit values) narrow it. */
static void row_to_bf16(const float *r, int n, uint16_t *y) {
    int k = 0;
#ifdef __SSE2__
    for (; k + 4 <= n; k += 4) {
        pu4 u;
        memcpy(&u, r + k, 16);
        pi4 nan = (pi4)(u & 0x7fffffffu) > 0x7f800000;
        pu4 rounded = u + 0x7fffu + ((u >> 16) & 1u), quiet = u | 0x400000u;
        pi4 hi = ((pi4)quiet & nan) | ((pi4)rounded & ~nan);
        __m128i h = _mm_srai_epi32((__m128i)hi, 16);
        _mm_storel_epi64((__m128i *)(y + k), _mm_packs_epi32(h, h));
    }
#endif
    for (; k < n; k++) y[k] = rr_f32_to_bf16(r[k]);
}

/* Packing step 4: writes panel pn from its j1 converted rows ([nr, n_in] in `row`) in the kernel's
 * order (K groups of kg, nr columns each), sequentially; padding rows and columns are zero. */
static void write_panel(rr_linear *l, const float *row, const void *rowq, int pn, int j1) {
    const int nr = l->lay.nr, kg = l->lay.kg, n_in = l->n_in;
    const rr_precision p = l->prec;
    uint8_t *panel = (uint8_t *)l->w + (size_t)pn * l->panel_bytes;
    const size_t es = l->w16 ? 2 : elem_size(p);
    for (int g = 0; g < l->kp; g++) {
        int q1 = RR_MAX(0, RR_MIN(kg, n_in - g * kg)); /* 0 in INT8's padding to whole scale groups */
        size_t base = (size_t)g * nr * kg;
        /* rows past n_out and k past n_in are zero; full groups are overwritten entirely */
        if (j1 < nr || q1 < kg) memset(panel + base * es, 0, (size_t)nr * kg * es);
        if (q1 == 0) continue;
        const float *src = row + (size_t)g * kg;
        if (p == RR_PRECISION_INT8) {
            int8_t *d = (int8_t *)panel + base;
            const int8_t *s8 = (const int8_t *)rowq + (size_t)g * kg;
            if (q1 == 4) /* constant sizes: moves, not calls */
                for (int j = 0; j < j1; j++) memcpy(d + j * 4, s8 + (size_t)j * n_in, 4);
            else
                for (int j = 0; j < j1; j++) memcpy(d + j * kg, s8 + (size_t)j * n_in, (size_t)q1);
        } else if (p == RR_PRECISION_BF16 || l->w16) {
            uint16_t *d = (uint16_t *)panel + base;
            const uint16_t *s16 = (const uint16_t *)rowq + (size_t)g * kg;
            if (q1 == 2 && kg == 2) /* constant sizes: moves, not calls */
                for (int j = 0; j < j1; j++) memcpy(d + j * 2, s16 + (size_t)j * n_in, 4);
            else if (q1 == 1 && kg == 1)
                for (int j = 0; j < j1; j++) memcpy(d + j, s16 + (size_t)j * n_in, 2);
            else
                for (int j = 0; j < j1; j++) memcpy(d + j * kg, s16 + (size_t)j * n_in, (size_t)q1 * 2);
        } else {
            float *d = (float *)panel + base;
            for (int j = 0; j < j1; j++) d[j] = src[(size_t)j * n_in]; /* KG 1 */
        }
    }
}

rr_status rr_linear_pack(const rr_kern_table *k, rr_precision p, const void *w, rr_kern_dtype wdtype,
                         int n_out, int n_in, const float *bias, rr_linear **out) {
    if (!k) k = rr_kern_get();
    if (p == RR_PRECISION_AUTO) p = rr_kern_auto_precision(k);
    if (p != RR_PRECISION_FP32 && p != RR_PRECISION_BF16 && p != RR_PRECISION_INT8)
        return rr_fail(RR_ERR_INVALID, "linear: unknown precision %d", (int)p);
    if ((unsigned)wdtype > RR_KERN_DTYPE_BF16) return rr_fail(RR_ERR_INVALID, "linear: unknown weight dtype %d", (int)wdtype);
    if (!w || n_out <= 0 || n_in <= 0 || n_out > (1 << 24) || n_in > (1 << 24))
        return rr_fail(RR_ERR_INVALID, "linear: bad shape [%d, %d]", n_out, n_in);
    rr_linear *l = rr_calloc(1, sizeof *l);
    if (!l) return rr_fail(RR_ERR_NOMEM, "linear: out of memory");
    l->k = k;
    l->prec = p;
    l->lay = k->lay[p];
    l->n_out = n_out;
    l->n_in = n_in;
    pack_layout(l, w, wdtype);
    const int nr = l->lay.nr;
    /* INT8 and bf16 panels: one row at a time converted to fp32 in `row`, then quantized or rounded
     * into the panel's rows `rowq` (int8 or bf16); fp32 panels keep the panel's rows in `row` */
    const int q8 = p == RR_PRECISION_INT8, b16 = !q8 && (p == RR_PRECISION_BF16 || l->w16);
    float *row = rr_malloc((size_t)(q8 || b16 ? 1 : nr) * n_in * sizeof(float));
    void *rowq = q8 || b16 ? rr_malloc((size_t)nr * n_in * (q8 ? 1 : 2)) : NULL;
    if (!row || ((q8 || b16) && !rowq) || !pack_alloc(l, bias)) {
        rr_free(row);
        rr_free(rowq);
        rr_linear_free(l);
        return rr_fail(RR_ERR_NOMEM, "linear: out of memory packing [%d, %d] weights", n_out, n_in);
    }
    /* Panel by panel: the panel's source rows are converted (and quantized or rounded), then the
     * panel is written. */
    rr_status st = RR_OK;
    for (int pn = 0; pn < l->n_panels && !st; pn++) {
        int j1 = RR_MIN(nr, n_out - pn * nr);
        for (int j = 0; j < j1 && !st; j++) {
            float *r = row + (q8 || b16 ? 0 : (size_t)j * n_in);
            load_row(w, wdtype, n_in, pn * nr + j, r);
            if (q8) st = quantize_row_int8(l, r, (int8_t *)rowq + (size_t)j * n_in, pn * nr + j, pn, j);
            if (b16) row_to_bf16(r, n_in, (uint16_t *)rowq + (size_t)j * n_in);
        }
        if (!st) write_panel(l, row, rowq, pn, j1);
    }
    rr_free(rowq);
    rr_free(row);
    if (st) {
        rr_linear_free(l);
        return st;
    }
    *out = l;
    return RR_OK;
}

void rr_linear_view_of(const rr_linear *l, rr_linear_view *v) {
    *v = (rr_linear_view){l->lay, l->kp, l->n_panels, l->n_sg, l->group, l->w16, l->panel_bytes,
                          l->w, l->bias, l->wscale, l->wcorr};
}

void rr_linear_free(rr_linear *l) {
    if (!l) return;
    rr_aligned_free(l->w);
    rr_aligned_free(l->bias);
    rr_aligned_free(l->wscale);
    rr_aligned_free(l->wcorr);
    rr_free(l);
}

/* bytes of one prepared activation row */
static size_t prep_lda(const rr_linear *l) {
    return align64((size_t)l->kp * l->lay.kg * a_elem_size(l));
}

size_t rr_linear_scratch_bytes(const rr_linear *l, int max_m) {
    if (!l || l->prec == RR_PRECISION_FP32 || max_m <= 0) return 0;
    return prep_lda(l) * (size_t)max_m + 2 * align64((size_t)max_m * sizeof(float));
}

size_t rr_linear_weight_bytes(const rr_linear *l) {
    if (!l) return 0;
    size_t ncols = (size_t)l->n_panels * l->lay.nr;
    size_t b = l->panel_bytes * l->n_panels + ncols * 4; /* weights, bias */
    if (l->prec == RR_PRECISION_INT8) b += ((size_t)l->n_sg + 1) * ncols * 4; /* group scales, C_j */
    return b;
}

rr_precision rr_linear_precision(const rr_linear *l) { return l->prec; }
int rr_linear_n_out(const rr_linear *l) { return l->n_out; }
int rr_linear_n_in(const rr_linear *l) { return l->n_in; }
int rr_linear_int8_group(const rr_linear *l) { return l->prec == RR_PRECISION_INT8 ? l->group : 0; }

/* ------------------------------------------------------------------ run */

typedef struct {
    const rr_linear *l;
    int m;
    const float *x;
    int ldx;
    float *y;
    int ldy;
    int epi;
    const float *res;
    int ldres;
    uint8_t *a;     /* prepared rows (BF16/INT8) */
    size_t lda;
    float *ascale;  /* INT8 row scales */
    int32_t *azp;   /* INT8 row zero points */
    int rows_per_prep;
    int mb, n_rb;   /* rows per block, row blocks */
    int pb, n_cb;   /* panels per column block, column blocks */
    int p_lo, p_hi; /* the panels computed: [p_lo, p_hi); y and res column 0 is output column p_lo nr */
    int kc;         /* K groups per chunk */
    int widen;      /* bf16 weights widened to fp32 per chunk for ukr[FP32] (kern_int.h widen_w16) */
    atomic_int *rb_state; /* fused preparation: per row block 0 = to do, 1 = being done, 2 = done */
} run_job;

/* Row blocks whose preparation can be fused into the GEMM items (the state words live on the stack). */
#define RB_FUSE_MAX 256

static void prep_rows(const run_job *j, int r0, int r1) {
    const rr_linear *l = j->l;
    int kpad = l->kp * l->lay.kg;
    for (int r = r0; r < r1; r++) {
        const float *xr = j->x + (size_t)r * j->ldx;
        if (l->prec == RR_PRECISION_BF16)
            l->k->to_bf16(xr, l->n_in, kpad, j->a + (size_t)r * j->lda);
        else
            j->ascale[r] = l->k->quant_row(xr, l->n_in, kpad, j->a + (size_t)r * j->lda, j->azp + r);
    }
}

static void prep_item(void *arg, int item, int tid) {
    run_job *j = arg;
    int r0 = item * j->rows_per_prep;
    prep_rows(j, r0, RR_MIN(j->m, r0 + j->rows_per_prep));
}

/* Fused preparation: the first item of a row block converts its rows, items of the same block that
 * start meanwhile wait for it (rare: consecutive items take different row blocks). */
static void prep_block(run_job *j, int rb, int r0, int r1) {
    atomic_int *s = &j->rb_state[rb];
    int todo = 0;
    if (atomic_compare_exchange_strong_explicit(s, &todo, 1, memory_order_acquire, memory_order_relaxed)) {
        prep_rows(j, r0, r1);
        atomic_store_explicit(s, 2, memory_order_release);
        return;
    }
    while (atomic_load_explicit(s, memory_order_acquire) != 2) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    }
}

/* The widened panel chunk of a work item lives on its thread's stack: L1-sized (the chunk rule of
 * rr_linear_run_cols keeps kc * nr within it), and nothing to allocate or share. */
#define WIDE_FLOATS 8192

static void gemm_item(void *arg, int item, int tid) {
    run_job *j = arg;
    const rr_linear *l = j->l;
    const rr_kern_table *k = l->k;
    const int mr = l->lay.mr, nr = l->lay.nr, kg = l->lay.kg;
    const size_t es = l->w16 ? 2 : elem_size(l->prec), ea = a_elem_size(l);
    int rb = item % j->n_rb, cb = item / j->n_rb;
    int r0 = rb * j->mb, r1 = RR_MIN(j->m, r0 + j->mb);
    int p0 = j->p_lo + cb * j->pb, p1 = RR_MIN(j->p_hi, p0 + j->pb);
    if (j->rb_state) prep_block(j, rb, r0, r1);
    const int n_tiles = (r1 - r0 + mr - 1) / mr;
    void (*ukr)(const rr_kern_tile *) = j->widen ? k->ukr[RR_PRECISION_FP32]
                                        : l->w16   ? k->ukr_f32_w16
                                                   : k->ukr[l->prec];
    _Alignas(64) float w32[WIDE_FLOATS];
    rr_kern_tile t;
    memset(&t, 0, sizeof t);
    t.ldc = (size_t)j->ldy;
    t.epi = j->epi;
    t.ldres = (size_t)j->ldres;
    t.group = l->group;
    for (int p = p0; p < p1; p++) {
        int c0 = p * nr;
        t.n = RR_MIN(nr, l->n_out - c0);
        t.bias = l->bias + c0;
        t.b_corr = l->wcorr ? l->wcorr + c0 : NULL;
        const uint8_t *panel = (const uint8_t *)l->w + (size_t)p * l->panel_bytes;
        /* K in chunks of kc groups: the panel chunk stays in cache while every row of the block uses it */
        for (int g0 = 0; g0 < l->kp; g0 += j->kc) {
            t.kp = RR_MIN(j->kc, l->kp - g0);
            t.first = g0 == 0;
            t.last = g0 + t.kp == l->kp;
            t.b = panel + (size_t)g0 * nr * kg * es;
            const uint8_t *nx = NULL; /* the next chunk's weights, prefetched nx_step lines per row tile */
            size_t nx_lines = 0, nx_step = 0;
            if (j->widen) { /* once here, then read from L1 by every row tile below */
                k->widen_w16(t.b, (size_t)t.kp * nr, w32); /* all of it: nr is a multiple of 8 */
                t.b = w32;
                /* so that the next widening reads its weights from cache rather than waiting on memory */
                int gn = g0 + j->kc < l->kp ? g0 + j->kc : 0;
                if (gn > 0 || p + 1 < p1) {
                    nx = (gn > 0 ? panel : panel + l->panel_bytes) + (size_t)gn * nr * es;
                    nx_lines = ((size_t)RR_MIN(j->kc, l->kp - gn) * nr * es + 63) / 64;
                    nx_step = (nx_lines + (size_t)n_tiles - 1) / (size_t)n_tiles;
                }
            }
            if (l->wscale) /* INT8: the scales of the chunk's first group (chunks are whole groups) */
                t.b_scale = l->wscale + ((size_t)p * l->n_sg + (size_t)g0 * kg / l->group) * nr;
            for (int r = r0; r < r1; r += mr) {
                t.m = RR_MIN(mr, r1 - r);
                if (l->prec == RR_PRECISION_FP32) {
                    t.a = j->x + (size_t)r * j->ldx + (size_t)g0;
                    t.lda = (size_t)j->ldx * sizeof(float);
                } else {
                    t.a = j->a + (size_t)r * j->lda + (size_t)g0 * kg * ea;
                    t.lda = j->lda;
                    t.a_scale = j->ascale ? j->ascale + r : NULL;
                    t.a_zp = j->azp ? j->azp + r : NULL;
                }
                t.c = j->y + (size_t)r * j->ldy + (c0 - j->p_lo * nr);
                t.res = j->res ? j->res + (size_t)r * j->ldres + (c0 - j->p_lo * nr) : NULL;
                for (size_t q = 0; q < nx_step && nx_lines > 0; q++, nx_lines--, nx += 64)
                    __builtin_prefetch(nx, 0, 2); /* locality 0, 2 and 3 measured alike (docs/KERNELS.md) */
                ukr(&t);
            }
        }
    }
}

int rr_linear_col_step(const rr_linear *l) { return l ? l->lay.nr : 1; }

void rr_linear_run(const rr_linear *l, int m, const float *x, int ldx, float *y, int ldy,
                   rr_kern_epilogue epi, const float *res, int ldres, void *scratch, rr_pool *pool) {
    rr_linear_run_cols(l, 0, l ? l->n_out : 0, m, x, ldx, y, ldy, epi, res, ldres, scratch, pool);
}

void rr_linear_run_cols(const rr_linear *l, int c0, int c1, int m, const float *x, int ldx, float *y, int ldy,
                        rr_kern_epilogue epi, const float *res, int ldres, void *scratch, rr_pool *pool) {
    if (m <= 0 || c1 <= c0) return;
    RR_ASSERT(l && x && y && ldx >= l->n_in && ldy >= c1 - c0);
    RR_ASSERT(c0 >= 0 && c0 % l->lay.nr == 0 && (c1 == l->n_out || (c1 < l->n_out && c1 % l->lay.nr == 0)));
    RR_ASSERT(epi != RR_KERN_EPI_RESIDUAL || (res && ldres >= c1 - c0));
    int nt = rr_pool_size(pool);
    run_job j;
    memset(&j, 0, sizeof j);
    j.l = l, j.m = m, j.x = x, j.ldx = ldx, j.y = y, j.ldy = ldy, j.epi = epi;
    j.res = epi == RR_KERN_EPI_RESIDUAL ? res : NULL;
    j.ldres = ldres;
    if (l->prec != RR_PRECISION_FP32) {
        RR_ASSERT(scratch);
        j.a = scratch;
        j.lda = prep_lda(l);
        j.ascale = (float *)(j.a + j.lda * (size_t)m);
        j.azp = (int32_t *)((uint8_t *)j.ascale + align64((size_t)m * sizeof(float)));
    }
    /* K chunks. FP32: a panel chunk of about 32 KiB stays in L1 across the rows of a block. BF16
     * and INT8 take up to 160 KiB, streamed from L2 (48-channel panels: BF16 K = 768 one chunk of
     * 72 KiB, 3072 two of 144 KiB; INT8 one chunk for both, 36 and 144 KiB; the 36 KiB panel is
     * just over Zen 4's 32 KiB L1, yet chunks of 384 k were no faster, docs/KERNELS.md): their
     * kernels pay a call, a tile load and a tile store per chunk and row block of MR,
     * which cost more than the L2 reads (INT8 at K = 3072: 1.10 / 1.15 / 1.19-1.23 TOP/s with 48 /
     * 96 / 160 KiB; BF16 at M = 1024, 2 threads: 560-640 GFLOP/s with 32 KiB, 700-720 with 160).
     * The chunks of one K are balanced (3 x 128 groups rather than 170 + 170 + 44 for fp32 at
     * K = 768), so no short chunk pays the per-chunk costs for little work.
     * Row blocks: the A block (mb rows of one chunk) about 96 KiB (BF16: 192 KiB), in L2: INT8 128
     * rows at K = 768, 32 at 3072 (BF16 128 and 64); 48 or 192 KiB measured no different for INT8. */
    const int mr = l->lay.mr;
    /* Widened bf16 weights are chunked as fp32 ones: the fp32 copy is what stays in L1. */
    j.widen = l->k->widen_w16 != NULL && (l->w16 || (l->prec == RR_PRECISION_BF16 && l->k->bf16_wide));
    /* the copy is then an fp32 panel chunk, as ukr[FP32] reads, and widen_w16 converts all of it */
    RR_ASSERT(!j.widen || (l->lay.kg == 1 && l->lay.nr % 8 == 0));
    const int wide = l->prec != RR_PRECISION_FP32 && !j.widen;
    size_t group_bytes = (size_t)l->lay.nr * l->lay.kg * (j.widen ? 4 : elem_size(l->prec));
    size_t chunk_bytes = (size_t)(wide ? 160 : 32) << 10;
    int kc_max = (int)RR_MIN((size_t)l->kp, RR_MAX((size_t)8, chunk_bytes / group_bytes));
    int n_chunks = (l->kp + kc_max - 1) / kc_max;
    j.kc = (l->kp + n_chunks - 1) / n_chunks;
    RR_ASSERT(!j.widen || (size_t)j.kc * l->lay.nr <= WIDE_FLOATS);
    if (l->prec == RR_PRECISION_INT8) { /* whole scale groups per chunk (kp is a multiple) */
        int gk = l->group / l->lay.kg;
        j.kc = (j.kc + gk - 1) / gk * gk;
    }
    size_t row_bytes = (size_t)j.kc * l->lay.kg * a_elem_size(l);
    size_t a_block = (size_t)(wide && l->prec == RR_PRECISION_BF16 ? 192 : 96) << 10;
    int mb = (int)RR_MAX((size_t)1, a_block / row_bytes);
    mb = RR_MAX(mr, RR_MIN(mb, 256) / mr * mr);
    mb = RR_MIN(mb, (m + mr - 1) / mr * mr);
    j.mb = mb;
    j.n_rb = (m + mb - 1) / mb;
    /* Column blocks: about 32 items per thread, so the threads' shares end close together. The pool
     * hands items out one at a time, and the items are equal, so a thread slowed for a while (a
     * shared VM's core, the row block whose preparation an item does first) leaves up to one item of
     * idle time at the job's end on the others. With 4 items per thread that idle time was 3-8% of
     * the GEMMs' time in W1 int8 (2 threads, AMD EPYC Zen 4), with 32 1-1.7%: W1 +2% (int8 and bf16,
     * docs/KERNELS.md). Smaller items cost little: an item re-reads only its A block, from L2. */
    int target = 32 * nt;
    j.p_lo = c0 / l->lay.nr;
    j.p_hi = c1 == l->n_out ? l->n_panels : c1 / l->lay.nr;
    int np = j.p_hi - j.p_lo;
    int n_cb = RR_MAX(1, RR_MIN(np, (target + j.n_rb - 1) / j.n_rb));
    if (nt == 1) n_cb = 1;
    j.pb = (np + n_cb - 1) / n_cb;
    j.n_cb = (np + j.pb - 1) / j.pb;
    /* BF16/INT8 rows are prepared by the first item of their row block when every thread starts on a
     * block of its own (no separate pass and pool barrier, and the block's rows are still in cache when
     * its first tiles read them); with fewer row blocks than threads, by a parallel pass first. */
    atomic_int rb_state[RB_FUSE_MAX];
    if (l->prec != RR_PRECISION_FP32 && j.n_rb >= nt && j.n_rb <= RB_FUSE_MAX) {
        for (int i = 0; i < j.n_rb; i++) atomic_init(&rb_state[i], 0);
        j.rb_state = rb_state;
    } else if (l->prec != RR_PRECISION_FP32) {
        j.rows_per_prep = RR_MAX(1, (m + 4 * nt - 1) / (4 * nt));
        rr_pool_run(pool, (m + j.rows_per_prep - 1) / j.rows_per_prep, prep_item, &j);
    }
    rr_pool_run(pool, j.n_rb * j.n_cb, gemm_item, &j);
}

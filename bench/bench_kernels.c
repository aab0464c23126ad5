/*
 * bench_kernels.c -- throughput of the kernels on the encoder's shapes, next to oneDNN's matmul on
 * the same shapes, so the choice between them (docs/KERNELS.md) rests on numbers from one run.
 *
 *   build/bench_kernels [--threads N] [--isa NAME|all] [--secs S] [--no-dnnl] [--only linear|attn|causal]
 *                       [--prec fp32|bf16|int8] [--m M] [--causal-t T] [--attn-len L]
 *
 * Linear layers: M = 256 and 2560 token rows, (N, K) = (2304, 768) qkv, (768, 768) attention out,
 * (3072, 768) FFN up, (768, 3072) FFN down; fp32, bf16 and int8 (rr_linear_run with the bias
 * epilogue, activation conversion included). oneDNN: matmul with weights pre-reordered to its
 * preferred layout (format any), f32, bf16 x bf16 -> f32, u8 x s8 -> s32 (its int8 rate). Also
 * attention (W1: 100 sequences of 256 tokens, 12 heads of 64; --attn-len L: 25600 / L sequences of
 * L tokens, e.g. 1024 for W3) in each precision (int8: S = Q K^T in int8 where the table has that
 * kernel, else as bf16) and LayerNorm. Prints the median
 * rate of short repeated runs (about --secs seconds per line, default 0.4).
 * Causal attention (--only causal, not in the default run): the decoders' grouped-query shape of
 * Qwen3-0.6B / jina-reranker-v3, one sequence of T tokens (default 4096; a v3 block of 100 documents
 * of 256 tokens is about 27,000), 16 query heads and 8 KV heads of 128, counted as 4 d nh T(T+1)/2
 * flops (the products under the causal mask only).
 */
#include "core/core.h"
#include "kernels/kern_int.h"

#include <math.h>
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void omp_set_num_threads(int n) __attribute__((weak));

static double g_secs = 0.4;

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median seconds of one call over about g_secs. */
static double time_it(void (*fn)(void *), void *arg) {
    fn(arg); /* warm up */
    double t0 = rr_now();
    fn(arg);
    double one = rr_now() - t0;
    int reps = (int)(g_secs / (one > 1e-6 ? one : 1e-6));
    if (reps < 3) reps = 3;
    if (reps > 200) reps = 200;
    double *t = malloc(sizeof(double) * reps);
    for (int r = 0; r < reps; r++) {
        double s = rr_now();
        fn(arg);
        t[r] = rr_now() - s;
    }
    qsort(t, reps, sizeof(double), cmpd);
    double med = t[reps / 2];
    free(t);
    return med;
}

static void fill(float *p, size_t n, float amp) {
    uint32_t s = 12345;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = ((float)(s >> 8) / 16777216.f * 2 - 1) * amp;
    }
}

/* ------------------------------------------------------------------ ours */

typedef struct {
    rr_linear *l;
    int m;
    float *x, *y;
    void *scratch;
    rr_pool *pool;
} lin_arg;

static void lin_run(void *v) {
    lin_arg *a = v;
    rr_linear_run(a->l, a->m, a->x, rr_linear_n_in(a->l), a->y, rr_linear_n_out(a->l), RR_KERN_EPI_NONE, NULL, 0,
                  a->scratch, a->pool);
}

static double bench_ours(const rr_kern_table *k, rr_precision p, int M, int N, int K, rr_pool *pool) {
    float *w = malloc(sizeof(float) * N * K), *b = calloc(N, sizeof(float));
    fill(w, (size_t)N * K, 0.05f);
    rr_linear *l;
    if (rr_linear_pack(k, p, w, RR_KERN_DTYPE_F32, N, K, b, &l) != RR_OK) {
        fprintf(stderr, "pack: %s\n", rr_errmsg());
        exit(1);
    }
    lin_arg a = {l, M, rr_aligned_alloc(sizeof(float) * M * K), rr_aligned_alloc(sizeof(float) * M * N), NULL, pool};
    fill(a.x, (size_t)M * K, 1.f);
    size_t sb = rr_linear_scratch_bytes(l, M);
    a.scratch = sb ? rr_aligned_alloc(sb) : NULL;
    double t = time_it(lin_run, &a);
    rr_aligned_free(a.x), rr_aligned_free(a.y), rr_aligned_free(a.scratch);
    rr_linear_free(l);
    free(w), free(b);
    return 2.0 * M * N * K / t / 1e9;
}

/* ------------------------------------------------------------------ oneDNN */

#define DN(f)                                                                                      \
    do {                                                                                           \
        dnnl_status_t s_ = (f);                                                                    \
        if (s_ != dnnl_success) {                                                                  \
            fprintf(stderr, "oneDNN: %s failed (%d)\n", #f, (int)s_);                              \
            return -1;                                                                             \
        }                                                                                          \
    } while (0)

typedef struct {
    dnnl_primitive_t prim;
    dnnl_stream_t strm;
    dnnl_exec_arg_t args[4];
    int nargs;
} dn_arg;

static void dn_run(void *v) {
    dn_arg *a = v;
    dnnl_primitive_execute(a->prim, a->strm, a->nargs, a->args);
    dnnl_stream_wait(a->strm);
}

/* mode 0 f32, 1 bf16 x bf16 -> f32, 2 u8 x s8 -> s32. Returns G(FL)OP/s, or -1. */
static double bench_dnnl(int mode, int M, int N, int K, const char **impl_out) {
    static dnnl_engine_t eng;
    static dnnl_stream_t strm;
    if (!eng) {
        DN(dnnl_engine_create(&eng, dnnl_cpu, 0));
        DN(dnnl_stream_create(&strm, eng, dnnl_stream_default_flags));
    }
    dnnl_data_type_t st = mode == 0 ? dnnl_f32 : mode == 1 ? dnnl_bf16 : dnnl_u8;
    dnnl_data_type_t wt = mode == 0 ? dnnl_f32 : mode == 1 ? dnnl_bf16 : dnnl_s8;
    dnnl_data_type_t dt = mode == 2 ? dnnl_s32 : dnnl_f32;
    dnnl_memory_desc_t smd, wany, wplain, dmd;
    dnnl_dims_t sd = {M, K}, wd = {K, N}, dd = {M, N};
    DN(dnnl_memory_desc_init_by_tag(&smd, 2, sd, st, dnnl_ab));
    DN(dnnl_memory_desc_init_by_tag(&wany, 2, wd, wt, dnnl_format_tag_any));
    DN(dnnl_memory_desc_init_by_tag(&wplain, 2, wd, wt, dnnl_ba)); /* W^T of an [N, K] row-major weight */
    DN(dnnl_memory_desc_init_by_tag(&dmd, 2, dd, dt, dnnl_ab));
    dnnl_matmul_desc_t desc;
    DN(dnnl_matmul_desc_init(&desc, &smd, &wany, NULL, &dmd));
    dnnl_primitive_desc_t pd;
    DN(dnnl_primitive_desc_create(&pd, &desc, NULL, eng, NULL));
    const char *impl = "?";
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    *impl_out = impl;
    const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *scr = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    dnnl_memory_t ms, mwp, mw, md, mscr = NULL;
    DN(dnnl_memory_create(&ms, &smd, eng, DNNL_MEMORY_ALLOCATE));
    DN(dnnl_memory_create(&mwp, &wplain, eng, DNNL_MEMORY_ALLOCATE));
    DN(dnnl_memory_create(&mw, wmd, eng, DNNL_MEMORY_ALLOCATE));
    DN(dnnl_memory_create(&md, &dmd, eng, DNNL_MEMORY_ALLOCATE));
    if (scr && dnnl_memory_desc_get_size(scr) > 0) DN(dnnl_memory_create(&mscr, scr, eng, DNNL_MEMORY_ALLOCATE));
    /* small values of the right type (random bytes would make denormal floats) */
    void *p;
    size_t es = mode == 0 ? 4 : mode == 1 ? 2 : 1;
    DN(dnnl_memory_get_data_handle(ms, &p));
    for (size_t i = 0; i < (size_t)M * K; i++) {
        if (mode == 0) ((float *)p)[i] = (float)((i * 7) % 13) / 13.f - 0.5f;
        else if (mode == 1) ((uint16_t *)p)[i] = rr_f32_to_bf16((float)((i * 7) % 13) / 13.f - 0.5f);
        else ((uint8_t *)p)[i] = (uint8_t)(i * 7 % 251);
    }
    DN(dnnl_memory_get_data_handle(mwp, &p));
    memset(p, 0, (size_t)K * N * es);
    for (size_t i = 0; i < (size_t)K * N; i++) {
        if (mode == 0) ((float *)p)[i] = (float)((i * 5) % 11) / 11.f - 0.5f;
        else if (mode == 1) ((uint16_t *)p)[i] = rr_f32_to_bf16((float)((i * 5) % 11) / 11.f - 0.5f);
        else ((int8_t *)p)[i] = (int8_t)((int)(i * 5 % 251) - 125);
    }
    dnnl_primitive_desc_t rpd;
    dnnl_primitive_t r;
    DN(dnnl_reorder_primitive_desc_create(&rpd, &wplain, eng, wmd, eng, NULL));
    DN(dnnl_primitive_create(&r, rpd));
    dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, mwp}, {DNNL_ARG_TO, mw}};
    DN(dnnl_primitive_execute(r, strm, 2, ra));
    DN(dnnl_stream_wait(strm));
    dn_arg a;
    DN(dnnl_primitive_create(&a.prim, pd));
    a.strm = strm;
    a.args[0] = (dnnl_exec_arg_t){DNNL_ARG_SRC, ms};
    a.args[1] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, mw};
    a.args[2] = (dnnl_exec_arg_t){DNNL_ARG_DST, md};
    a.args[3] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, mscr};
    a.nargs = mscr ? 4 : 3;
    double t = time_it(dn_run, &a);
    dnnl_primitive_destroy(a.prim);
    dnnl_primitive_destroy(r);
    dnnl_primitive_desc_destroy(rpd);
    dnnl_memory_destroy(ms), dnnl_memory_destroy(mwp), dnnl_memory_destroy(mw), dnnl_memory_destroy(md);
    if (mscr) dnnl_memory_destroy(mscr);
    /* impl string belongs to pd: copy before destroying */
    static char implbuf[8][96];
    static int ib;
    char *keep = implbuf[ib++ & 7];
    snprintf(keep, 96, "%s", impl);
    *impl_out = keep;
    dnnl_primitive_desc_destroy(pd);
    return 2.0 * M * N * K / t / 1e9;
}

/* ------------------------------------------------------------------ attention, layernorm */

typedef struct {
    const rr_kern_table *k;
    float *qkv, *ctx;
    int *cu;
    int n_seq;
    rr_precision p;
    void *scratch;
    rr_pool *pool;
} att_arg;

typedef struct {
    const rr_kern_table *k;
    float *qkv, *ctx;
    int cu[2];
    rr_precision p;
    void *scratch;
    rr_pool *pool;
} causal_arg;

enum { CZ_NH = 16, CZ_NKV = 8, CZ_D = 128, CZ_W = (CZ_NH + 2 * CZ_NKV) * CZ_D };

static void causal_run(void *v) {
    causal_arg *a = v;
    const float *q = a->qkv, *k = q + CZ_NH * CZ_D, *vv = k + CZ_NKV * CZ_D;
    rr_attention_causal(a->k, q, k, vv, CZ_W, a->cu, 1, CZ_NH, CZ_NKV, CZ_D, 1.f / sqrtf((float)CZ_D), a->ctx,
                        CZ_NH * CZ_D, 0, a->p, a->scratch, a->pool);
}

static void att_run(void *v) {
    att_arg *a = v;
    rr_attention(a->k, a->qkv, 3 * 768, a->cu, a->n_seq, 12, 64, 0.125f, a->ctx, 768, a->p, a->scratch, a->pool);
}

typedef struct {
    const rr_kern_table *k;
    float *x, *r, *g, *b;
    int rows;
    rr_pool *pool;
} ln_arg;

static void ln_run(void *v) {
    ln_arg *a = v;
    rr_layernorm(a->k, a->rows, 768, a->x, 768, a->r, 768, a->g, a->b, 1e-5f, a->x, 768, a->pool);
}

int main(int argc, char **argv) {
    int threads = 2, all = 0, dnnl = 1, do_lin = 1, do_attn = 1, do_causal = 0, only_prec = 0, only_m = 0;
    int causal_t = 4096, attn_len = 256;
    const char *isa = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--isa") && i + 1 < argc) isa = argv[++i];
        else if (!strcmp(argv[i], "--secs") && i + 1 < argc) g_secs = atof(argv[++i]);
        else if (!strcmp(argv[i], "--no-dnnl")) dnnl = 0;
        else if (!strcmp(argv[i], "--m") && i + 1 < argc) only_m = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--causal-t") && i + 1 < argc) causal_t = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--attn-len") && i + 1 < argc) attn_len = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--prec") && i + 1 < argc) {
            const char *w = argv[++i];
            only_prec = !strcmp(w, "fp32") ? RR_PRECISION_FP32 : !strcmp(w, "bf16") ? RR_PRECISION_BF16
                      : !strcmp(w, "int8") ? RR_PRECISION_INT8 : -1;
            if (only_prec < 0) {
                fprintf(stderr, "--prec: fp32, bf16 or int8\n");
                return 2;
            }
        }
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
            const char *w = argv[++i];
            do_lin = !strcmp(w, "linear");
            do_attn = !strcmp(w, "attn");
            do_causal = !strcmp(w, "causal");
        }
        else {
            fprintf(stderr, "usage: %s [--threads N] [--isa NAME|all] [--secs S] [--no-dnnl] [--only linear|attn|causal] [--prec P] "
                    "[--m M] [--causal-t T] [--attn-len L]\n",
                    argv[0]);
            return 2;
        }
    }
    if (attn_len < 1 || attn_len > 25600) { /* 25600 / L sequences: at least one */
        fprintf(stderr, "--attn-len: a sequence length in 1..25600\n");
        return 2;
    }
    if (isa && !strcmp(isa, "all")) all = 1, isa = NULL;
    if (isa && rr_kern_select(isa) != RR_OK) {
        fprintf(stderr, "%s\n", rr_errmsg());
        return 2;
    }
    if (omp_set_num_threads) omp_set_num_threads(threads);
    rr_pool *pool;
    if (rr_pool_new(threads, &pool) != RR_OK) return 1;
    const rr_kern_table *best = rr_kern_get();
    printf("kernel table in use: %s%s%s; threads: %d\n", rr_kern_name(best), rr_kern_reason()[0] ? " -- " : "",
           rr_kern_reason(), threads);
    const rr_kern_table *ts[RR_KERN_ISA_COUNT];
    int nt = 0;
    if (all) {
        for (int i = RR_KERN_ISA_COUNT - 1; i >= 0; i--)
            if (rr_kern_table_for((rr_kern_isa)i)) ts[nt++] = rr_kern_table_for((rr_kern_isa)i);
    } else {
        ts[nt++] = best;
    }
    int Ms[] = {256, 2560};
    if (only_m > 0) Ms[0] = Ms[1] = only_m;
    static const int NK[][2] = {{2304, 768}, {768, 768}, {3072, 768}, {768, 3072}};
    static const char *pn[] = {"", "fp32", "bf16", "int8"};
    printf("\n%-12s %-5s %5s %5s %5s %10s\n", "impl", "prec", "M", "N", "K", "GFLOP/s");
    for (int mi = 0; mi < (only_m > 0 ? 1 : 2) && do_lin; mi++) {
        for (int s = 0; s < 4; s++) {
            int M = Ms[mi], N = NK[s][0], K = NK[s][1];
            for (int p = RR_PRECISION_FP32; p <= RR_PRECISION_INT8; p++) {
                if (only_prec && p != only_prec) continue;
                for (int t = 0; t < nt; t++) {
                    if (ts[t]->isa == RR_KERN_ISA_SCALAR && M > 256) continue; /* minutes, not seconds */
                    double g = bench_ours(ts[t], (rr_precision)p, M, N, K, pool);
                    printf("%-12s %-5s %5d %5d %5d %10.1f\n", ts[t]->name, pn[p], M, N, K, g);
                    fflush(stdout);
                }
                if (dnnl) {
                    const char *impl = "";
                    double g = bench_dnnl(p - 1, M, N, K, &impl);
                    printf("%-12s %-5s %5d %5d %5d %10.1f   (%s)\n", "onednn", pn[p], M, N, K, g, impl);
                    fflush(stdout);
                }
            }
        }
    }
    /* attention: W1-like, 100 sequences of 256 tokens (or 25600 tokens in sequences of attn_len) */
    if (do_attn) {
        if (attn_len < 1 || attn_len > 25600) attn_len = 256;
        int n_seq = 25600 / attn_len, T = n_seq * attn_len;
        att_arg a = {NULL, rr_aligned_alloc(sizeof(float) * T * 3 * 768), rr_aligned_alloc(sizeof(float) * T * 768),
                     malloc(sizeof(int) * (n_seq + 1)), n_seq, RR_PRECISION_FP32, NULL, pool};
        fill(a.qkv, (size_t)T * 3 * 768, 1.f);
        for (int i = 0; i <= n_seq; i++) a.cu[i] = i * attn_len;
        a.scratch = rr_aligned_alloc(rr_attention_scratch_bytes(threads, n_seq, 64));
        double flops = 4.0 * n_seq * (double)attn_len * attn_len * 768;
        printf("\nattention, %d x %d tokens, 12 heads x 64 (4 S^2 H flops per sequence):\n", n_seq, attn_len);
        for (int t = 0; t < nt; t++) {
            a.k = ts[t];
            for (int p = RR_PRECISION_FP32; p <= RR_PRECISION_INT8; p++) {
                if (only_prec && p != only_prec) continue;
                a.p = (rr_precision)p;
                double sec = time_it(att_run, &a);
                printf("%-12s %-5s %8.1f GFLOP/s  %7.2f ms\n", ts[t]->name, pn[p], flops / sec / 1e9, sec * 1e3);
            }
        }
        rr_aligned_free(a.qkv), rr_aligned_free(a.ctx), rr_aligned_free(a.scratch), free(a.cu);
    }
    if (do_causal) {
        int T = causal_t > 0 ? causal_t : 4096;
        causal_arg a = {NULL, rr_aligned_alloc(sizeof(float) * (size_t)T * CZ_W),
                        rr_aligned_alloc(sizeof(float) * (size_t)T * CZ_NH * CZ_D), {0, T}, RR_PRECISION_BF16, NULL,
                        pool};
        fill(a.qkv, (size_t)T * CZ_W, 1.f);
        a.scratch =
            rr_aligned_alloc(rr_attention_causal_scratch_bytes(threads, 1, T, CZ_NKV, CZ_D, RR_PRECISION_BF16));
        double flops = 4.0 * CZ_D * CZ_NH * ((double)T * (T + 1) / 2);
        printf("\ncausal attention, 1 x %d tokens, %d query heads / %d KV heads x %d (4 d nh T(T+1)/2 flops):\n", T,
               CZ_NH, CZ_NKV, CZ_D);
        for (int t = 0; t < nt; t++) {
            a.k = ts[t];
            for (int p = RR_PRECISION_FP32; p <= RR_PRECISION_BF16; p++) {
                if (only_prec ? p != only_prec : p != RR_PRECISION_BF16) continue;
                a.p = (rr_precision)p;
                double sec = time_it(causal_run, &a);
                printf("%-12s %-5s %8.1f GFLOP/s  %7.2f ms\n", ts[t]->name, pn[p], flops / sec / 1e9, sec * 1e3);
                fflush(stdout);
            }
        }
        rr_aligned_free(a.qkv), rr_aligned_free(a.ctx), rr_aligned_free(a.scratch);
    }
    if (do_attn) {
        int rows = 2560;
        ln_arg a = {NULL, rr_aligned_alloc(sizeof(float) * rows * 768), rr_aligned_alloc(sizeof(float) * rows * 768),
                    malloc(sizeof(float) * 768), malloc(sizeof(float) * 768), rows, pool};
        fill(a.x, (size_t)rows * 768, 1.f), fill(a.r, (size_t)rows * 768, 1.f);
        fill(a.g, 768, 1.f), fill(a.b, 768, 1.f);
        printf("\nlayernorm + residual, 2560 x 768:\n");
        for (int t = 0; t < nt; t++) {
            a.k = ts[t];
            double sec = time_it(ln_run, &a);
            printf("%-12s %7.3f ms (%.1f GB/s)\n", ts[t]->name, sec * 1e3, 3.0 * rows * 768 * 4 / sec / 1e9);
        }
        rr_aligned_free(a.x), rr_aligned_free(a.r), free(a.g), free(a.b);
    }
    rr_pool_free(pool);
    return 0;
}

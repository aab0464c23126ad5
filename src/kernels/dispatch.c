/*
 * dispatch.c -- chooses the kernel table once per process: CPUID says what the CPU implements,
 * XGETBV says whether the OS saves the YMM/ZMM (and AMX tile) state, and for AMX Linux must grant
 * the tile data permission (arch_prctl ARCH_REQ_XCOMP_PERM) before the first tile instruction.
 * $RR_ISA or rr_kern_select can ask for a lower table (to test or compare); a request the CPU cannot
 * run falls back to the best supported table below it, and rr_kern_reason says why.
 */
#include "kernels/kern_int.h"

#include "core/core.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

static const char *const g_isa_names[RR_KERN_ISA_COUNT] = {"scalar", "avx2", "avx512", "avx512bf16", "amx"};

static int g_cpu_has[RR_KERN_ISA_COUNT];
static char g_cpu_note[160]; /* e.g. "amx: no table built" */
static _Atomic(const rr_kern_table *) g_table;
static char g_reason[512];
/* the start-up choice ($RR_ISA honoured) and its reason, which rr_kern_select(NULL) restores */
static const rr_kern_table *g_start_table;
static char g_start_reason[512];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

#if defined(__x86_64__)
static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

/* Linux: ask for permission to use AMX tile data (XFEATURE_XTILEDATA = 18). */
static int amx_request_perm(void) {
#ifndef ARCH_REQ_XCOMP_PERM
#define ARCH_REQ_XCOMP_PERM 0x1023
#endif
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, 18) == 0;
}

static void detect(void) {
    unsigned a, b, c, d;
    g_cpu_has[RR_KERN_ISA_SCALAR] = 1;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
    int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, f16c = (c >> 29) & 1;
    if (!osxsave || !avx) return;
    uint64_t xcr0 = xgetbv0();
    int os_ymm = (xcr0 & 0x6) == 0x6;
    int os_zmm = os_ymm && (xcr0 & 0xe0) == 0xe0;
    int os_tile = (xcr0 & 0x60000) == 0x60000;
    unsigned max_leaf = __get_cpuid_max(0, NULL);
    if (max_leaf < 7) return;
    __cpuid_count(7, 0, a, b, c, d);
    int avx2 = (b >> 5) & 1;
    int avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1, avx512bw = (b >> 30) & 1, avx512vl = (b >> 31) & 1;
    int vnni = (c >> 11) & 1;
    int amx_bf16 = (d >> 22) & 1, amx_tile = (d >> 24) & 1, amx_int8 = (d >> 25) & 1;
    unsigned a1, b1, c1, d1;
    __cpuid_count(7, 1, a1, b1, c1, d1);
    int avx512bf16 = (a1 >> 5) & 1;
    g_cpu_has[RR_KERN_ISA_AVX2] = os_ymm && avx2 && fma && f16c;
    g_cpu_has[RR_KERN_ISA_AVX512] = g_cpu_has[RR_KERN_ISA_AVX2] && os_zmm && avx512f && avx512dq && avx512bw && avx512vl;
    g_cpu_has[RR_KERN_ISA_AVX512BF16] = g_cpu_has[RR_KERN_ISA_AVX512] && avx512bf16 && vnni;
    if (g_cpu_has[RR_KERN_ISA_AVX512BF16] && amx_tile && amx_bf16 && amx_int8) {
        if (!os_tile) snprintf(g_cpu_note, sizeof g_cpu_note, "amx: the OS does not enable tile state");
        else if (!amx_request_perm()) snprintf(g_cpu_note, sizeof g_cpu_note, "amx: arch_prctl(ARCH_REQ_XCOMP_PERM) refused");
        else g_cpu_has[RR_KERN_ISA_AMX] = 1;
    }
}
#else
static void detect(void) { g_cpu_has[RR_KERN_ISA_SCALAR] = 1; }
#endif

/* The built table for an ISA, ignoring CPU support. */
static const rr_kern_table *built(rr_kern_isa isa) {
    switch (isa) {
    case RR_KERN_ISA_SCALAR: return &rr_kern_scalar;
#if defined(__x86_64__)
    case RR_KERN_ISA_AVX2: return &rr_kern_avx2;
    case RR_KERN_ISA_AVX512: return &rr_kern_avx512;
    case RR_KERN_ISA_AVX512BF16: return &rr_kern_avx512bf16;
#endif
    default: return NULL;
    }
}

const rr_kern_table *rr_kern_table_for(rr_kern_isa isa) {
    if ((unsigned)isa >= RR_KERN_ISA_COUNT) return NULL;
    rr_kern_get();
    return g_cpu_has[isa] ? built(isa) : NULL;
}

int rr_kern_cpu_has(rr_kern_isa isa) {
    if ((unsigned)isa >= RR_KERN_ISA_COUNT) return 0;
    rr_kern_get();
    return g_cpu_has[isa];
}

int rr_kern_isa_parse(const char *name) {
    for (int i = 0; i < RR_KERN_ISA_COUNT; i++)
        if (name && !strcasecmp(name, g_isa_names[i])) return i;
    return -1;
}

const char *rr_kern_isa_name(rr_kern_isa isa) {
    return (unsigned)isa < RR_KERN_ISA_COUNT ? g_isa_names[isa] : "?";
}

/* Best usable table at or below `want`, with the reason for any step down. */
static const rr_kern_table *choose(int want, char *why, size_t whylen) {
    why[0] = 0;
    for (int i = want; i >= 0; i--) {
        const rr_kern_table *t = g_cpu_has[i] ? built((rr_kern_isa)i) : NULL;
        if (t) {
            if (i != want)
                snprintf(why, whylen, "%s requested: %s; using %s", g_isa_names[want],
                         g_cpu_has[want] ? "no kernel table built for it" : "not supported by this CPU/OS",
                         g_isa_names[i]);
            return t;
        }
    }
    return &rr_kern_scalar;
}

static void init_once(void) {
    detect();
    const char *env = getenv("RR_ISA");
    int want = RR_KERN_ISA_COUNT - 1, asked = 0;
    char why[320] = "";
    if (env && *env && strcasecmp(env, "auto") != 0) {
        int w = rr_kern_isa_parse(env);
        if (w >= 0) want = w, asked = 1;
        else snprintf(why, sizeof why, "RR_ISA=%.40s is not an ISA name, ignored", env);
    }
    char step[200];
    const rr_kern_table *t = choose(want, step, sizeof step);
    /* stepping down from the top when nothing was asked is the normal case, not news */
    if (asked && step[0]) snprintf(why, sizeof why, "RR_ISA: %s", step);
    snprintf(g_reason, sizeof g_reason, "%s%s%s", why, why[0] && g_cpu_note[0] ? "; " : "", g_cpu_note);
    g_start_table = t;
    snprintf(g_start_reason, sizeof g_start_reason, "%s", g_reason);
    atomic_store(&g_table, t);
}

const rr_kern_table *rr_kern_get(void) {
    pthread_once(&g_once, init_once);
    return atomic_load_explicit(&g_table, memory_order_acquire);
}

rr_status rr_kern_select(const char *isa) {
    rr_kern_get();
    if (!isa || !*isa || !strcasecmp(isa, "auto")) {
        /* back to the start-up choice, so a test that restores after forcing tables keeps a whole run
         * started with $RR_ISA on the table that run asked for */
        pthread_mutex_lock(&g_lock);
        snprintf(g_reason, sizeof g_reason, "%s", g_start_reason);
        atomic_store(&g_table, g_start_table);
        pthread_mutex_unlock(&g_lock);
        return RR_OK;
    }
    int want = rr_kern_isa_parse(isa);
    if (want < 0) return rr_fail(RR_ERR_INVALID, "kernels: unknown ISA '%s' (scalar, avx2, avx512, avx512bf16, amx)", isa);
    pthread_mutex_lock(&g_lock);
    char why[200];
    const rr_kern_table *t = choose(want, why, sizeof why);
    snprintf(g_reason, sizeof g_reason, "%s", why);
    atomic_store(&g_table, t);
    pthread_mutex_unlock(&g_lock);
    return RR_OK;
}

const char *rr_kern_reason(void) {
    rr_kern_get();
    return g_reason;
}

const char *rr_kern_name(const rr_kern_table *k) { return k ? k->name : "none"; }
rr_kern_isa rr_kern_isa_of(const rr_kern_table *k) { return k ? k->isa : RR_KERN_ISA_SCALAR; }

int rr_kern_int8_wmax(const rr_kern_table *k) {
    if (!k) k = rr_kern_get();
    return k->q8_wmax ? k->q8_wmax : 127;
}

rr_precision rr_kern_auto_precision(const rr_kern_table *k) {
    if (!k) k = rr_kern_get();
    return k->native_bf16 ? RR_PRECISION_BF16 : RR_PRECISION_FP32;
}

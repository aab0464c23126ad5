#!/usr/bin/env bash
# dnnl_ceiling.sh SHARED_BENCH BUILD_DIR [threads=2] -- oneDNN's GEMM rates on the encoder's shapes, the
# lines of ../shared/bench/run_gemm.sh that side_by_side.sh reads ("onednn MODE M= K= N= ...: median X"),
# without its OpenBLAS part. run_gemm.sh forces OpenBLAS's SkylakeX kernels, which stop with an illegal
# instruction on a CPU without AVX-512 (an AMD EPYC Zen 3, say) before any oneDNN line is printed;
# side_by_side.sh runs this instead there. Modes: f32, bf16, bf16f32 (a mode oneDNN cannot run on this
# CPU prints nothing), u8s8, s8s8; the shapes interleaved as run_gemm.sh does.
set -u
SB=${1:?shared bench dir}
B=${2:?build dir}
T=${3:-2}
mkdir -p "$B"
gcc -O2 -o "$B/gemm_dnnl" "$SB/gemm_dnnl.c" -ldnnl || exit 1
export OMP_NUM_THREADS=$T
for s in 256,768,3072 256,3072,768 256,768,768 8192,768,768 8192,768,3072 8192,3072,768; do
    IFS=, read -r M K N <<<"$s"
    for m in f32 bf16f32 bf16 u8s8 s8s8; do "$B/gemm_dnnl" $m "$M" "$K" "$N" 11 2>/dev/null; done
done

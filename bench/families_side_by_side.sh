#!/usr/bin/env bash
# families_side_by_side.sh -- rerank bench against the PyTorch peer (bench/bench_torch_ext.py) on the full-size
# jina-reranker-v1-base-en and gte-multilingual-reranker-base shapes, same workload, same thread count, bf16.
# Needs the full-size test models: /usr/bin/python3 tools/gen_models.py --out build/testdata --full-ext
# Usage: bench/families_side_by_side.sh [w1|w2] [threads] [repeats]   (one line per family and the ratio;
#        repeats: runs of each side, best of them for rerank, median for PyTorch; default 3)
set -u
BUILD=${RR_BUILD:-build}
TD=${RR_TESTDATA:-build/testdata}
WL=${1:-w1}
TH=${2:-2}
REPS=${3:-3}
FAMS=${RR_FAMILIES:-jina_v1 mgte}
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
for fam in $FAMS; do
    M=$TD/full/${fam}_bf16
    if [ ! -f "$M/config.json" ]; then echo "$fam: no full-size model ($M): run gen_models.py --full-ext"; continue; fi
    rr=$("$BUILD/rerank" bench -m "$M" --workload "$WL" --precision bf16 --threads "$TH" --repeat "$REPS" | grep 'pairs/s')
    rps=$(sed -n 's/^pairs\/s \([0-9.]*\).*/\1/p' <<<"$rr")
    pt=$(/usr/bin/python3 bench/bench_torch_ext.py --family "$fam" --precision bf16 --workload "$WL" --threads "$TH" --reps "$REPS")
    tps=$(sed -n 's/.*"pairs_per_s": \([0-9.]*\).*/\1/p' <<<"$pt")
    ratio=$(awk -v a="$rps" -v b="$tps" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')
    echo "$rr"
    echo "$pt"
    echo "$fam $WL bf16 ($TH threads): rerank $rps pairs/s, PyTorch $tps pairs/s, ratio $ratio"
done

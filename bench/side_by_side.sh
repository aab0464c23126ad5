#!/usr/bin/env bash
# side_by_side.sh [quick] -- rerank and the peers of ../shared/bench on one machine, in one run, on the
# same model (the peers' random-weight XLM-R cross-encoder with the jina-reranker-v2 shape) and the
# same token ids (W1: 100 pairs of 256 tokens; W2: 100 pairs of 32..512 tokens), 2 threads.
#
# rerank is timed as a whole process (`rerank score` reading the token ids, model load included) and
# through `rerank bench` (the forward pass alone). The oneDNN GEMM ceiling of the same run gives the
# efficiency of the bf16 path. Results: build/bench/out/{results.jsonl,rss.txt,gemm.txt,table.md}.
#
# Needs (installed here when missing): python3-torch python3-onnx python3-numpy time libdnnl-dev
# libopenblas-dev, and onnxruntime-node@1.30.0 from npm (into build/bench). Takes 15-25 minutes;
# `quick` runs one repetition of each peer.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
SHARED=${RR_SHARED:-../shared}
SB=$(cd "$SHARED/bench" && pwd)
WORK=$ROOT/build/bench
OUT=$WORK/out
QUICK=${1:-}
R=$ROOT/build/rerank
PY=/usr/bin/python3
mkdir -p "$WORK" "$OUT"
: >"$OUT/results.jsonl"
: >"$OUT/rss.txt"

need=""
for p in python3-torch python3-onnx python3-numpy time libdnnl-dev libopenblas-dev; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need="$need $p"
done
[ -z "$need" ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need; }
[ -d "$WORK/node_modules/onnxruntime-node" ] ||
    (cd "$WORK" && npm install --no-audit --no-fund --ignore-scripts --loglevel=error onnxruntime-node@1.30.0)
[ -f "$WORK/models/workloads.json" ] || (cd "$WORK" && $PY "$SB/export_onnx.py" models)
[ -f "$WORK/rerank/xlmr_bf16/model.safetensors" ] || $PY bench/export_bench_model.py "$SB" "$WORK/rerank"
[ -x "$R" ] || make -j2
$PY - "$WORK" <<'EOF'
import json, sys
w = json.load(open(sys.argv[1] + "/models/workloads.json"))
for k in ("w1", "w2"):
    with open("%s/%s.jsonl" % (sys.argv[1], k), "w") as f:
        f.writelines(json.dumps({"input_ids": s}) + "\n" for s in w[k])
EOF

echo "== machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores" | tee "$OUT/machine.txt"
echo "== oneDNN GEMM ceiling"
bash "$SB/run_gemm.sh" "$WORK/gemm" 2 2>/dev/null | grep onednn | tee "$OUT/gemm.txt"

echo "== rerank"
REPS=3; [ -n "$QUICK" ] && REPS=1
for prec in fp32 bf16 int8 auto; do
    model=$WORK/rerank/xlmr_bf16
    [ $prec = fp32 ] && model=$WORK/rerank/xlmr_f32
    for w in w1 w2; do
        best=""
        for rep in $(seq $REPS); do # whole process: load + tokenized input + scoring + output
            t=$( { /usr/bin/time -f "%e %M" "$R" score -m "$model" --precision $prec --threads 2 --raw \
                   <"$WORK/$w.jsonl" >"$OUT/rerank_${prec}_$w.scores"; } 2>&1 | tail -n 1)
            echo "rerank_${prec}_$w rep $rep: $t" >>"$OUT/rss.txt"
            best="$best $t"
        done
        $PY - "$prec" "$w" "$best" "$OUT/rerank_${prec}_$w.scores" >>"$OUT/results.jsonl" <<'EOF'
import json, statistics, sys
prec, w, runs, scores = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4]
secs = [float(x) for x in runs[0::2]]
rss = max(int(x) for x in runs[1::2]) // 1024
med = statistics.median(secs)
s0 = float(json.loads(open(scores).readline())["score"])
print(json.dumps({"peer": "rerank-process", "precision": prec, "workload": w, "latency_100_s": round(med, 3),
                  "pairs_per_s": round(100 / med, 3), "all_s": secs, "maxrss_mb": rss, "score0": s0}))
EOF
        "$R" bench -m "$model" --precision $prec --threads 2 --workload "$WORK/models/workloads.json" --key $w \
            --repeat $REPS >"$OUT/rerank_bench_${prec}_$w.txt" 2>&1 || true
    done
done

echo "== peers"
bash "$SB/run_peers.sh" "$WORK" "$OUT" $QUICK

$PY bench/side_by_side_table.py "$OUT" | tee "$OUT/table.md"

#!/usr/bin/env bash
# side_by_side.sh [full|quick|accept] -- rerank and the peers of ../shared/bench on one machine, in one run, on the
# same model (the peers' random-weight XLM-R cross-encoder with the jina-reranker-v2 shape) and the
# same token ids (W1: 100 pairs of 256 tokens; W2: 100 pairs of 32..512 tokens), 2 threads; rerank also
# on W3 (20 pairs of 1024 tokens, `rerank bench --workload w3`; the peers have no W3).
#
# rerank is timed as a whole process (`rerank score` reading the token ids, model load included) and
# through `rerank bench` (the forward pass alone). The oneDNN GEMM ceilings of the same run (bf16 and
# int8, best per-shape median on the encoder's shapes, measured before and after the rerank part, the
# larger used) give the efficiency of the bf16 and int8 paths;
# bench_kernels puts rerank's int8 GEMMs next to oneDNN's on the encoder's shapes (three rounds, each
# shape's median used). Results:
# build/bench/out/{results.jsonl,rss.txt,gemm.txt,kernels.txt,table.md}.
#
# Needs (installed here when missing): python3-torch python3-onnx python3-numpy time libdnnl-dev
# libopenblas-dev, and onnxruntime-node@1.30.0 from npm (into build/bench). Modes:
#   full    (default) every peer configuration of ../shared/bench/run_peers.sh, 3 repetitions (45+ min)
#   quick   the same, one repetition each
#   accept  only what issue 16's acceptance compares (W1: PyTorch bf16, ONNX Runtime fp32 and int8;
#           rerank on W1, W2 and W3), 3 repetitions each; each peer is stopped after RR_SBS_PEER_LIMIT_S
#           seconds (default 600). 43 minutes on a 2-core AMD EPYC Zen 3 with PyTorch bf16, which gets
#           no result there, stopped after 300 s
# RR_SBS_PARTS=gemm,rerank,peers (default all three) runs only those parts, appending to the results of
# the earlier parts, so a long run can be split into short ones on a shared machine; RR_SBS_PRECS="bf16 int8"
# overrides the mode's list of rerank precisions.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
SHARED=${RR_SHARED:-../shared}
SB=$(cd "$SHARED/bench" && pwd)
WORK=$ROOT/build/bench
OUT=$WORK/out
MODE=${1:-full}
case $MODE in full | quick | accept) ;; *) echo "usage: bench/side_by_side.sh [full|quick|accept]" >&2; exit 2 ;; esac
R=$ROOT/build/rerank
PY=/usr/bin/python3
mkdir -p "$WORK" "$OUT"
PARTS=${RR_SBS_PARTS:-gemm,rerank,peers}
part() { case ",$PARTS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
if part gemm; then # a new run: nothing from an earlier run in this run's table
    rm -f "$OUT"/rerank_bench_*.txt "$OUT"/rerank_*.scores "$OUT/kernels.txt"
    : >"$OUT/results.jsonl"
    : >"$OUT/rss.txt"
fi

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

echo "== machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') (family $(grep -m1 '^cpu family' /proc/cpuinfo | cut -d: -f2 | tr -d ' ') model $(grep -m1 '^model\s*:' /proc/cpuinfo | cut -d: -f2 | tr -d ' ')), $(nproc) cores" | tee "$OUT/machine.txt"
ceiling_run() { # appends oneDNN's GEMM rates on the encoder's shapes to gemm.txt
    local t
    t=$(bash "$SB/run_gemm.sh" "$WORK/gemm" 2 2>/dev/null | grep onednn)
    # without AVX-512, run_gemm.sh stops at its first OpenBLAS SkylakeX call, before any oneDNN line
    [ -n "$t" ] || t=$(bash bench/dnnl_ceiling.sh "$SB" "$WORK/gemm" 2)
    echo "$t" | tee -a "$OUT/gemm.txt"
}
if part gemm; then
    echo "== oneDNN GEMM ceiling"
    : >"$OUT/gemm.txt"
    ceiling_run
    echo "== int8 GEMMs: rerank and oneDNN on the encoder's shapes (passes of 1024 rows, FFN blocks of 256), 3 rounds"
    [ -x "$ROOT/build/bench_kernels" ] || make -j2 bench
    # Three rounds over all shapes, each shape's median taken by the table: one shape measured once for
    # 0.6 s can land in a slow minute of these VMs and decide a worst-shape ratio on its own.
    for round in 1 2 3; do
        for m in 1024 256; do # oneDNN's OpenMP threads sleep between its calls so they do not slow ours
            OMP_WAIT_POLICY=passive "$ROOT/build/bench_kernels" --threads 2 --only linear --prec int8 --m $m --secs 0.6 |
                grep ' int8 ' | tee -a "$OUT/kernels.txt"
        done
    done
fi

part rerank && echo "== rerank"
REPS=3; [ "$MODE" = quick ] && REPS=1
PRECS="fp32 bf16 int8 auto"; [ "$MODE" = accept ] && PRECS="bf16 int8 auto"
PRECS=${RR_SBS_PRECS:-$PRECS}
part rerank || PRECS=""
for prec in $PRECS; do
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
    # W3: 20 pairs of 1024 tokens (the forward pass; ids drawn by rerank bench, only the lengths matter)
    "$R" bench -m "$model" --precision $prec --threads 2 --workload w3 --repeat $REPS \
        >"$OUT/rerank_bench_${prec}_w3.txt" 2>&1 || true
done

# The ceiling again right after the rerank part: these VMs' speed drifts by up to 2x within a run, so the
# rerank figures are bracketed by two measurements of the ceiling, and the table divides by the larger.
if part gemm && part rerank; then
    echo "== oneDNN GEMM ceiling, after the rerank part"
    echo "# after the rerank part" >>"$OUT/gemm.txt"
    ceiling_run
fi

part peers && echo "== peers"
if ! part peers; then
    :
elif [ "$MODE" = accept ]; then
    # the three W1 configurations the acceptance ratios use, as run_peers.sh runs them
    # Each peer stops after RR_SBS_PEER_LIMIT_S seconds (default 600): PyTorch bf16 without bf16 products
    # (AVX2 only) gives no result in hours. A stopped peer leaves a line with the limit in results.jsonl,
    # which the table shows instead of a rate.
    LIMIT=${RR_SBS_PEER_LIMIT_S:-600}
    case $LIMIT in '' | *[!0-9]* | 0) echo "RR_SBS_PEER_LIMIT_S must be a whole number of seconds > 0, not '$LIMIT'" >&2; exit 2 ;; esac
    peer() { # label, json fields of the stopped line, command...
        local label=$1 fields=$2 rc; shift 2
        echo "== $label: $*"
        (cd "$WORK" && timeout "$LIMIT" /usr/bin/time -f "$label maxrss_kb=%M wall_s=%e" -a -o "$OUT/rss.txt" \
            "$@" >>"$OUT/results.jsonl" 2>>"$OUT/stderr.log")
        rc=$?
        if [ $rc = 124 ]; then
            echo "$label: no result in $LIMIT s (stopped)" | tee -a "$OUT/rss.txt"
            echo "{$fields, \"workload\": \"w1\", \"stopped_after_s\": $LIMIT}" >>"$OUT/results.jsonl"
        fi
    }
    # run_peers.sh's OpenBLAS core (AVX-512 kernels), or Haswell's (AVX2) on a CPU without AVX-512, where
    # SkylakeX's stop with an illegal instruction
    core=SkylakeX; grep -qw avx512f /proc/cpuinfo || core=Haswell
    OPENBLAS_CORETYPE=$core peer torch_bf16_b16 \
        "\"peer\": \"torch\", \"precision\": \"bf16\", \"batch\": 16, \"openblas_coretype\": \"$core\"" \
        $PY "$SB/bench_torch.py" --threads 2 --precision bf16 --batch 16 --reps 3 --workloads w1
    peer ort_fp32_b16 "\"peer\": \"ort\", \"precision\": \"fp32\", \"batch\": 16" \
        node "$SB/bench_ort.js" "$WORK/models/xlmr_fp32.onnx" "$WORK/models/workloads.json" --batch 16 --reps 3 --workloads w1
    peer ort_int8_b16 "\"peer\": \"ort\", \"precision\": \"int8\", \"batch\": 16" \
        node "$SB/bench_ort.js" "$WORK/models/xlmr_int8.onnx" "$WORK/models/workloads.json" --batch 16 --reps 3 --workloads w1
else
    bash "$SB/run_peers.sh" "$WORK" "$OUT" $([ "$MODE" = quick ] && echo quick)
fi

$PY bench/side_by_side_table.py "$OUT" | tee "$OUT/table.md"

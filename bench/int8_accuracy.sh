#!/usr/bin/env bash
# int8_accuracy.sh [LABEL=RERANK_BINARY ...] -- int8 accuracy of rerank next to ONNX Runtime's dynamic int8
# quantization, both against their own fp32 path, on the same 1,000 pairs (tests/suite_fullmodel.sh's
# generator: <s> q </s></s> d </s>, q 4..24 and d 8..100 random ids, seed 2026) of the same full-size
# random model: the peers' XLM-R cross-encoder of ../shared/bench (jina-reranker-v2 shape, seed 0),
# exported to ONNX (fp32 and dynamic int8: uint8 activations per tensor, int8 weights per output
# column) and to a rerank folder in fp32. Prints max / p99 / mean |d sigmoid| and Spearman against fp32.
# RR_ACC_MODEL=DIR takes a rerank XLM-R / jina-reranker-v2 folder instead (e.g. the full-size random model
# of `tools/gen_models.py --full`, build/testdata/full/jina_v2_bf16), exported to ONNX by
# bench/export_onnx_from_model.py.
#
# Each LABEL=BINARY pair is a rerank build to compare (default: int8=build/rerank), e.g. builds with
# another RR_KERN_INT8_GROUP. Uses what bench/side_by_side.sh prepares in build/bench (models,
# onnxruntime-node), preparing it the same way when missing.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
SHARED=${RR_SHARED:-../shared}
SB=$(cd "$SHARED/bench" && pwd)
WORK=$ROOT/build/bench
PY=/usr/bin/python3
mkdir -p "$WORK"
[ -d "$WORK/node_modules/onnxruntime-node" ] ||
    (cd "$WORK" && npm install --no-audit --no-fund --ignore-scripts --loglevel=error onnxruntime-node@1.30.0)
if [ -n "${RR_ACC_MODEL:-}" ]; then
    MD=$(cd "$RR_ACC_MODEL" && pwd)
    ONNX=$WORK/acc_$(basename "$MD")
    [ -f "$ONNX/xlmr_int8.onnx" ] || $PY bench/export_onnx_from_model.py "$SB" "$MD" "$ONNX" || exit 1
    A=$ONNX
else
    [ -f "$WORK/models/xlmr_int8.onnx" ] || (cd "$WORK" && $PY "$SB/export_onnx.py" models)
    [ -f "$WORK/rerank/xlmr_f32/model.safetensors" ] || $PY bench/export_bench_model.py "$SB" "$WORK/rerank"
    MD=$WORK/rerank/xlmr_f32
    ONNX=$WORK/models
    A=$WORK/acc
fi
mkdir -p "$A"
$PY tools/accuracy_pairs.py "$A/pairs.jsonl"
for p in fp32 int8; do
    (cd "$WORK" && node "$ROOT/bench/ort_scores.js" "$ONNX/xlmr_$p.onnx" "$A/pairs.jsonl") >"$A/ort_$p" || exit 1
done
[ $# -gt 0 ] || set -- "int8=$ROOT/build/rerank"
"$ROOT/build/rerank" score -m "$MD" --precision fp32 --threads 2 --raw <"$A/pairs.jsonl" >"$A/rr_fp32" || exit 1
labels=""
for lb in "$@"; do
    l=${lb%%=*}
    "${lb#*=}" score -m "$MD" --precision int8 --threads 2 --raw <"$A/pairs.jsonl" >"$A/rr_$l" || exit 1
    labels="$labels $l"
done
$PY - "$A" $labels <<'PYEOF'
import json, sys
import numpy as np
d, labels = sys.argv[1], sys.argv[2:]
ld = lambda n: np.array([json.loads(l)["score"] for l in open("%s/%s" % (d, n)) if l.strip()])
sig = lambda x: 1 / (1 + np.exp(-x))
def spearman(a, b):
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return np.corrcoef(ra, rb)[0, 1]
of, rf = ld("ort_fp32"), ld("rr_fp32")
print("fp32 logits over %d pairs: mean %.2f, std %.2f, range %.2f..%.2f; rerank fp32 vs ONNX Runtime fp32: max |d logit| %.2g"
      % (len(rf), rf.mean(), rf.std(), rf.min(), rf.max(), np.abs(rf - of).max()))
print("| int8 vs its own fp32 | max \\|d sigmoid\\| | p99 | mean | Spearman |")
print("|---|---|---|---|---|")
rows = [("ONNX Runtime dynamic int8", ld("ort_int8"), of)] + [("rerank " + l, ld("rr_" + l), rf) for l in labels]
for name, x, ref in rows:
    e = np.abs(sig(x) - sig(ref))
    print("| %s | %.4f | %.4f | %.4f | %.5f |" % (name, e.max(), np.percentile(e, 99), e.mean(), spearman(x, ref)))
PYEOF
